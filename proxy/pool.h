/*
 * proxy/pool.h: server pools per (database, upstream user) and their dispatch (pool.c).
 */
#ifndef PGFLIP_POOL_H
#define PGFLIP_POOL_H

#include "proxy/proxy.h"

Pool *pool_get(const char *database, const char *user);
void pool_free(Pool *p);
/* pool_refresh_conf: re-reads mode and size from the current snapshot. */
void pool_refresh_conf(Pool *p);
/* pool_waiting_add / pool_waiting_remove: list membership of a waiting
 * client; only client_set_state calls them. Adding schedules a dispatch. */
void pool_waiting_add(Pool *p, Client *c);
void pool_waiting_remove(Pool *p, Client *c);
/* pool_dispatch_soon: links waiting clients to idle servers and starts
 * logins, from a deferred event of the pool (never inside the caller). */
void pool_dispatch_soon(Pool *p);
void pool_login_failed(Pool *p, const char *message);
/* pool_set_scram_keys: P's logins use KEYS (copied) from now on (SCRAM
 * passthrough, server_connect); the older ones are wiped. They live in
 * memory only, and are wiped when P goes (pool_free). */
void pool_set_scram_keys(Pool *p, const ScramKeys *keys);
bool pool_route_verified(Pool *p, const char *schema);
void pool_route_verified_add(Pool *p, const char *schema);
void pool_janitor(Pool *p, uint64_t now_ms);
/* pool_reconnect: RECONNECT of P: every server it has now is closed as
 * soon as it is idle (at once for the idle ones; a linked one at the end
 * of its transaction, or of its session in session mode), and never given
 * to a client again; new logins replace them as clients need. */
void pool_reconnect(Pool *p);
/* pool_count_transaction: one more transaction of P ended (stats.xact_count),
 * on the route of E (proxy.rstats' entry; NULL: a route whose stats are not
 * kept). */
void pool_count_transaction(Pool *p, const RouteStatsEntry *e);
/* The number of ServerState values (counts of pool_count_servers). */
#define POOL_SERVER_STATES (SV_CLOSING + 1)
/* pool_count_servers: COUNTS[st] = P's servers in state st, for every
 * ServerState (what `pools` and the metrics show). */
void pool_count_servers(const Pool *p, int counts[POOL_SERVER_STATES]);
/* pool_wait_max_ms: how long the longest-waiting client of P (CL_WAITING
 * or CL_WAIT_LOGIN) has waited at NOW_MS, in ms; 0 when none waits. */
uint64_t pool_wait_max_ms(const Pool *p, uint64_t now_ms);
/* pool_conf: the [databases] entry of POOL in the current snapshot, or NULL. */
const ConfDatabase *pool_conf(const Pool *p);

#endif
