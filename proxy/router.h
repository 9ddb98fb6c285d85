/*
 * proxy/router.h: which version schema a client sees: pins (application_name glob, user,
 * client address), a canary share drawn from a keyed hash, the default (router.c); and the
 * flip that moves every route of one schema to another (router_flip).
 */
#ifndef PGFLIP_ROUTER_H
#define PGFLIP_ROUTER_H

#include <stdint.h>
#include <sys/socket.h>

#include <openssl/types.h>

#include "conf/conf.h"
#include "proxy/params.h"

/* A client's canary bucket is its key's hash modulo this: 0.01 % steps, so
 * that a share of 1 % is 100 buckets and rounding costs nothing visible. */
#define ROUTER_BUCKETS 10000
/* Bytes of the per-process SipHash key (SipHash-2-4 takes 128 bits). */
#define ROUTER_HASH_KEY_LEN 16
/* The longest window an automatic rollback verdict may look at (seconds):
 * the per-route stats keep that many one-second slots (routestats.h). */
#define ROUTER_MAX_WINDOW_S 60
/* The canary's transactions in the window below which no verdict is given,
 * when --min-transactions is not given. */
#define ROUTER_DEFAULT_MIN_TX 20

typedef struct RoutePin {
	ConfPinKind kind;
	char *key;
	char *schema;
	ConfCidr cidr;
} RoutePin;

/*
 * The automatic rollback verdict of a canary (opt-in; see
 * routestats_canary_verdict for the rule). max_error_ratio 0 means none.
 */
typedef struct RouterCanaryCheck {
	double max_error_ratio; /* R >= 1, or 0: no verdict */
	int window_s;           /* 1..ROUTER_MAX_WINDOW_S */
	int min_transactions;   /* N >= 1 */
} RouterCanaryCheck;

/* What a canary command gives beyond SCHEMA PERCENT (router_set_canary_opts). */
typedef struct RouterCanaryOpts {
	bool has_key;           /* false: the file's canary_key */
	ConfCanaryKey key;
	RouterCanaryCheck check;
} RouterCanaryOpts;

typedef struct Router {
	char *default_schema;
	RoutePin *pins;
	size_t n_pins;
	size_t cap_pins;
	char *canary_schema;
	int canary_percent;
	ConfCanaryKey canary_key;      /* the key in effect: the canary's --key, else file_canary_key */
	ConfCanaryKey file_canary_key; /* the config's canary_key */
	RouterCanaryCheck canary_check; /* zero when there is no canary */
	uint64_t generation;   /* bumped at every change: clients recompute lazily */
} Router;

/*
 * The keyed hash of canary keys: SipHash-2-4 (Aumasson and Bernstein, 2012)
 * through OpenSSL's EVP_MAC "SIPHASH", keyed once. The key is random per
 * process (proxy_serve), so that nobody can pick keys that land on a side.
 */
typedef struct RouterHash {
	EVP_MAC_CTX *mac; /* keyed; each hash works on a copy */
} RouterHash;

/* What a client's canary buckets are drawn from (router_canary_draw). */
typedef struct RouterKeys {
	const struct sockaddr *addr; /* TCP: its address (the port is not used); NULL: a Unix socket */
	long peer_uid;               /* Unix socket: the peer's uid (SO_PEERCRED), -1 when unknown */
	const char *app;             /* its startup application_name, "" when none */
	uint64_t nonce;              /* random, drawn at accept */
} RouterKeys;

void router_init(Router *r);
void router_free(Router *r);
/* router_load: replaces the whole table with the one of a config snapshot. */
bool router_load(Router *r, const ConfRoutes *routes) PROXY_MUSTCHECK;
/* router_equal_conf: true when the table equals that of ROUTES. */
bool router_equal_conf(const ConfRoutes *a, const ConfRoutes *b);
/*
 * router_route: the schema for a client (APP may be "", ADDR may be NULL for
 * Unix sockets); first match in the order app, user, addr; then canary,
 * when the client's bucket under the key in effect, BUCKETS[r->canary_key]
 * (router_canary_draw; BUCKETS may be NULL: never the canary), is below
 * canary_percent x 100; then default. The string belongs to the router:
 * copy it.
 */
const char *router_route(const Router *r, const char *app, const char *user, const struct sockaddr *addr,
			 const uint16_t *buckets);
/* router_set_pin / router_set_default / router_unset_pin / router_set_canary:
 * admin changes. False with ERR filled on a bad key or schema. */
bool router_set_default(Router *r, const char *schema, char *err, size_t errlen) PROXY_MUSTCHECK;
bool router_set_pin(Router *r, ConfPinKind kind, const char *key, const char *schema, char *err, size_t errlen) PROXY_MUSTCHECK;
bool router_unset_pin(Router *r, ConfPinKind kind, const char *key, char *err, size_t errlen) PROXY_MUSTCHECK;
/* router_set_canary: router_set_canary_opts with no options (the file's
 * canary_key, no verdict). */
bool router_set_canary(Router *r, const char *schema, int percent, char *err, size_t errlen) PROXY_MUSTCHECK;
/*
 * router_set_canary_opts: the whole canary at once: SCHEMA (NULL or PERCENT
 * 0: no canary, options dropped), PERCENT 0..100, OPTS (NULL: none) with
 * the key override and the verdict. Checked in the order percent, schema,
 * verdict (ratio >= 1, window 1..ROUTER_MAX_WINDOW_S, min transactions
 * >= 1); false with ERR and nothing changed on the first bad one.
 */
bool router_set_canary_opts(Router *r, const char *schema, int percent, const RouterCanaryOpts *opts, char *err,
			    size_t errlen) PROXY_MUSTCHECK;
/*
 * router_flip: every route that names FROM, the default, pins and the
 * canary, names TO afterwards; then a canary that names the default's
 * schema ends (with its options). Returns how many routes changed (the
 * ended canary counts as one), and bumps the generation when that is not 0,
 * so clients follow at their next transaction boundary. TO must pass
 * conf_route_schema_check; when it does not, or FROM equals TO, nothing
 * changes and 0 is returned.
 */
size_t router_flip(Router *r, const char *from, const char *to);
const char *router_pin_kind_to_str(ConfPinKind kind);

/* router_hash_init: H keyed with KEY (ROUTER_HASH_KEY_LEN bytes). False when
 * OpenSSL has no SipHash or no memory; then H holds nothing. */
bool router_hash_init(RouterHash *h, const uint8_t *key) PROXY_MUSTCHECK;
/* router_hash_free: frees H's key (NULL-safe, H may be zeroed). */
void router_hash_free(RouterHash *h);
/* router_hash: SipHash-2-4 of LEN bytes at DATA, its 8 output bytes read as
 * a little-endian integer (the reference's convention). 0 when OpenSSL
 * fails (out of memory). */
uint64_t router_hash(const RouterHash *h, const void *data, size_t len);
/*
 * router_canary_draw: a client's bucket (0..ROUTER_BUCKETS-1) under each
 * canary_key, into BUCKETS[CONF_CANARY_KEYS]: router_hash of the key text
 * modulo ROUTER_BUCKETS. The texts: addr, the IP address as inet_ntop
 * writes it (an IPv4-mapped IPv6 address as IPv4), "uid N" for a Unix
 * socket peer, "unix" when its uid is unknown; application_name, the name;
 * connection, the nonce's 8 bytes. The same keys give the same buckets
 * within one process.
 */
void router_canary_draw(const RouterHash *h, const RouterKeys *k, uint16_t *buckets);
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
	const char *canary_key;  /* canary: its canary_key (conf_canary_key_to_str); NULL: the file's */
} RouteRow;

/* router_to_rows: R's table as rows in table order (default, the pins in
 * their order, the canary if any) into *N rows; the array is the caller's
 * (free()), its strings are R's (valid until R changes); NULL (and *N 0) when out of
 * memory. */
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
