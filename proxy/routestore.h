/*
 * proxy/routestore.h: the routes kept in the database, shared by every
 * pgflip in front of it (routestore.c; DESIGN.md decision 8; the tables
 * are migrate/api.h's pgflip.routes, pgflip.route_state, pgflip.instances).
 */
#ifndef PGFLIP_ROUTESTORE_H
#define PGFLIP_ROUTESTORE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "proxy/params.h"

/* Reconnecting: the first retry after this long (ms), doubling at each
 * failure up to ROUTESTORE_RETRY_MAX_MS: a database restart (a few
 * seconds) is noticed within 5 s, and a long outage costs one login
 * attempt every 5 s. */
#define ROUTESTORE_RETRY_MIN_MS 100
#define ROUTESTORE_RETRY_MAX_MS 5000
/* This instance's row in pgflip.instances is refreshed this often (ms);
 * the others' rows are read at the same time. MIGRATE_INSTANCE_TTL_S (5 s)
 * is five missed beats. */
#define ROUTESTORE_BEAT_MS 1000
/* A query of the store with no answer after this long ends the connection
 * (ms): by then this instance's row has expired for everyone else
 * (MIGRATE_INSTANCE_TTL_S), so the database is as good as unreachable. */
#define ROUTESTORE_QUERY_TIMEOUT_MS 5000
/* At start, clients are not accepted until the stored routes were read,
 * for at most this long (ms, and at most server_connect_timeout): a client
 * routed by the file's [routes] for its first transaction could land on a
 * version schema that a flip left long ago. A login that fails ends the
 * wait at once: the file's routes serve until the database answers. */
#define ROUTESTORE_HOLD_MS 2000
/* Rows of pgflip.instances not refreshed for this long are deleted (s):
 * what an instance killed with SIGKILL leaves behind. */
#define ROUTESTORE_FORGET_S 3600
/* At a clean exit, how long pgflip waits for the delete of its own row (ms). */
#define ROUTESTORE_BYE_MS 1000

/* routestore_start: the store of the running config's route_db
 * (proxy.store; none when route_db is empty), connecting from the event
 * loop. False when it cannot be set up (no memory, no event). */
bool routestore_start(void) PROXY_MUSTCHECK;
/* routestore_reconfigure: after a reload swapped in a new proxy.conf: a
 * store whose database or login changed connects again (another database:
 * its table wins, as at a start); route_db emptied: the store goes, the
 * routes stay in memory. */
void routestore_reconfigure(void);
/*
 * routestore_publish: proxy.router was changed here (an admin command, a
 * reload with new [routes]); writes the whole table to the database in one
 * transaction (generation + 1, NOTIFY), from the event loop, soon. WHO says
 * what changed it (pgflip.route_state.changed_by). The router is not
 * touched: the change applies here at once, and everywhere once published.
 * While the database is unreachable the change waits, and is published at
 * reconnect if the database is still at the generation it was based on;
 * else the database's newer routes win (README, "Route store"). No-op
 * without a store.
 */
void routestore_publish(const char *who);
/* routestore_janitor: timeouts, reconnect backoff, heartbeat (NOW_MS). */
void routestore_janitor(uint64_t now_ms);
/* routestore_holding: accepting clients waits for the first read of the
 * stored routes (ROUTESTORE_HOLD_MS). */
bool routestore_holding(void);
/* routestore_stop: at exit: deletes this instance's row (waits at most
 * ROUTESTORE_BYE_MS, blocking: the loop has ended), closes, frees. */
void routestore_stop(void);

/* routestore_status_json: {"database", "state", "connected", "generation"
 * (null before the first read), "pending" (a local change not yet
 * published), "last_error", "instance" (this one's id), "instances"
 * (routestore_instances_json)}; database null when routes live in memory
 * only. Caller decrefs. */
json_t *routestore_status_json(void);
/* routestore_clients_here: {"VSCHEMA": n} over this instance's logged-in
 * clients (and those finishing their login), each counted under the route
 * its next statement runs with (client_next_route). Caller decrefs. */
json_t *routestore_clients_here(void);
/*
 * routestore_clients_elsewhere: clients of the other live pgflip instances
 * (pgflip.instances rows seen within MIGRATE_INSTANCE_TTL_S) routed to
 * VSCHEMA, as their last heartbeats said. 0 without a store (no other
 * instance can share memory-only routes); -1 when it is not known: the
 * store has not read the rows within MIGRATE_INSTANCE_TTL_S (database
 * unreachable, just started). Treat -1 as "in use".
 */
int routestore_clients_elsewhere(const char *vschema);
/* routestore_instances_json: every live instance as the last beat read
 * them, this one first: [{"id", "host", "pid", "started_at", "clients",
 * "self"}]; this one's clients are counted now; the others are left out
 * when they were not read within MIGRATE_INSTANCE_TTL_S (not known).
 * Caller decrefs. */
json_t *routestore_instances_json(void);

#endif
