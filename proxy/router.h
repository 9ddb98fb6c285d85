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

/*
 * The table as rows, the shape of pgflip.routes (migrate/api.h): KIND is
 * "default", "app", "user", "addr" or "canary"; KEY is "" for default and
 * canary; PERCENT is the canary's share (0 for the others). The route store
 * (routestore.c) writes and reads them.
 */
typedef struct RouteRow {
	const char *kind;
	const char *key;
	const char *schema;
	int percent;
} RouteRow;

/* router_to_rows: R's table as rows in table order (default, the pins in
 * their order, the canary if any) into *N rows; the array is the caller's
 * (free()), its strings are R's (valid until R changes). */
RouteRow *router_to_rows(const Router *r, size_t *n);
/*
 * router_from_rows: a new table in OUT (router_init'ed by this call) from N
 * rows in order, under the same rules as the config file and the admin
 * commands (conf_route_schema_check; a CIDR for addr; 0..100 for canary). A
 * row that breaks them, or names a (kind, key) already seen, is skipped and
 * logged with SOURCE (e.g. "database shop") and its reason; never applied.
 * False, OUT empty and ERR filled when no valid default row is left.
 */
bool router_from_rows(Router *out, const RouteRow *rows, size_t n, const char *source, char *err,
		      size_t errlen) PROXY_MUSTCHECK;
/* router_equal: A and B route every client alike (same table, in order). */
bool router_equal(const Router *a, const Router *b);
/* router_replace: R takes WITH's table (WITH is left empty) and its
 * generation is bumped, so clients recompute at their next boundary. */
void router_replace(Router *r, Router *with);

#endif
