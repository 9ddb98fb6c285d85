/*
 * proxy/router.h: which version schema a client sees: pins (application_name glob, user,
 * client address), a canary share, the default (router.c).
 */
#ifndef PGFLIP_ROUTER_H
#define PGFLIP_ROUTER_H

#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "proxy/params.h"

typedef struct RoutePin {
	ConfPinKind kind;
	char *key;
	char *schema;
	ConfCidr cidr;
} RoutePin;

typedef struct Router {
	char *default_schema;
	RoutePin *pins;
	size_t n_pins;
	size_t cap_pins;
	char *canary_schema;
	int canary_percent;
	uint64_t generation;   /* bumped at every change: clients recompute lazily */
} Router;

void router_init(Router *r);
void router_free(Router *r);
/* router_load: replaces the whole table with the one of a config snapshot. */
void router_load(Router *r, const ConfRoutes *routes);
/* router_equal_conf: true when the table equals that of ROUTES. */
bool router_equal_conf(const ConfRoutes *a, const ConfRoutes *b);
/*
 * router_route: the schema for a client (APP may be "", ADDR may be NULL for
 * Unix sockets); first match in the order app, user, addr; then canary (by
 * CLIENT_ID, stable for the client), then default. The string belongs to the
 * router: copy it.
 */
const char *router_route(const Router *r, const char *app, const char *user, const struct sockaddr *addr,
			 uint64_t client_id);
/* router_set_pin / router_set_default / router_unset_pin / router_set_canary:
 * admin changes. False with ERR filled on a bad key or schema. */
bool router_set_default(Router *r, const char *schema, char *err, size_t errlen) PROXY_MUSTCHECK;
bool router_set_pin(Router *r, ConfPinKind kind, const char *key, const char *schema, char *err, size_t errlen) PROXY_MUSTCHECK;
bool router_unset_pin(Router *r, ConfPinKind kind, const char *key, char *err, size_t errlen) PROXY_MUSTCHECK;
bool router_set_canary(Router *r, const char *schema, int percent, char *err, size_t errlen) PROXY_MUSTCHECK;
const char *router_pin_kind_to_str(ConfPinKind kind);

#endif
