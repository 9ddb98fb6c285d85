/*
 * proxy/pool.c: server pools, one per (database, upstream user).
 *
 * Clients that need a server wait in FIFO order; idle servers are reused
 * most-recently-used first, which keeps the working set of backends small
 * and warm and lets the idle timeout close the rest. A pool never holds more
 * than its size of servers (logged in or logging in).
 *
 * Dispatch runs from a deferred event of each pool (pool_dispatch_soon):
 * a state change that may let a client have a server (a client starts
 * waiting, a server becomes idle or goes away, a login fails) schedules it,
 * and nothing re-enters client, pool and server code synchronously.
 * libevent runs an activated event in the same loop turn, before it polls
 * again, so this costs no extra wait.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"
#include "proxy/pool.h"
#include "proxy/client.h"
#include "proxy/drain.h"
#include "proxy/server.h"
#include "proxy/resolve.h"

static void pool_dispatch_cb(evutil_socket_t fd, short what, void *arg);

void pool_refresh_conf(Pool *p)
{
	const ConfDatabase *db = pool_conf(p);
	p->mode = db && db->pool_mode >= 0 ? (ConfPoolMode)db->pool_mode : proxy.conf->pool_mode;
	p->size = db && db->pool_size > 0 ? db->pool_size : proxy.conf->default_pool_size;
}

const ConfDatabase *pool_conf(const Pool *p) { return conf_find_database(proxy.conf, p->database); }

Pool *pool_get(const char *database, const char *user)
{
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link) {
		if (strcmp(p->database, database) == 0 && strcmp(p->user, user) == 0) {
			pool_refresh_conf(p);
			return p;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->database = strdup(database);
	p->user = strdup(user);
	TAILQ_INIT(&p->servers);
	TAILQ_INIT(&p->idle);
	TAILQ_INIT(&p->waiting);
	p->dispatch_ev = p->database && p->user ? event_new(proxy.base, -1, 0, pool_dispatch_cb, p) : NULL;
	if (!p->dispatch_ev) {
		free(p->database);
		free(p->user);
		free(p);
		return NULL;
	}
	pool_refresh_conf(p);
	p->paused = params_get(&proxy.paused_dbs, p->database) != NULL;
	p->draining = drain_open() && strcmp(drain_open(), p->database) == 0;
	p->stats_mark_us = proxy_now_us();
	TAILQ_INSERT_TAIL(&proxy.pools, p, link);
	return p;
}

void pool_free(Pool *p)
{
	if (!p)
		return;
	if (p->dispatch_ev)
		event_free(p->dispatch_ev);
	resolve_cancel(p);
	params_clear(&p->server_params);
	for (size_t i = 0; i < p->n_verified; i++)
		free(p->verified[i]);
	free(p->verified);
	free(p->route_tx);
	free(p->last_error);
	login_keys_free(p->scram_keys);
	free(p->database);
	free(p->user);
	free(p);
}

void pool_set_scram_keys(Pool *p, const ScramKeys *keys)
{
	if (!p->scram_keys && !(p->scram_keys = malloc(sizeof(*p->scram_keys))))
		return; /* out of memory: logins go on without keys (libpq's) */
	memcpy(p->scram_keys, keys, sizeof(*keys));
}

void pool_waiting_add(Pool *p, Client *c)
{
	TAILQ_INSERT_TAIL(&p->waiting, c, wait_link);
	p->n_waiting++;
	c->wait_start_ms = proxy_now_ms();
	pool_dispatch_soon(p);
}

void pool_waiting_remove(Pool *p, Client *c)
{
	TAILQ_REMOVE(&p->waiting, c, wait_link);
	p->n_waiting--;
}

void pool_dispatch_soon(Pool *p)
{
	if (p->dispatch_ev)
		event_active(p->dispatch_ev, 0, 0);
}

/* Logins failed recently and no server is up: fail fast instead of waiting. */
static bool pool_login_backoff(const Pool *p, uint64_t now)
{
	return p->last_connect_fail_ms && p->n_servers == 0 &&
	       now - p->last_connect_fail_ms < (uint64_t)proxy.conf->server_login_retry_ms;
}

static int db_connections(const char *database)
{
	int n = 0;
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
		if (strcmp(p->database, database) == 0)
			n += p->n_servers;
	return n;
}

/* max_db_connections is reached but P has clients waiting: close an idle
 * server of another pool of the same database to make room (as PgBouncer). */
static bool pool_close_idle_elsewhere(Pool *p)
{
	Pool *o;
	TAILQ_FOREACH(o, &proxy.pools, link) {
		if (o == p || strcmp(o->database, p->database) != 0 || TAILQ_EMPTY(&o->idle))
			continue;
		server_close(TAILQ_LAST(&o->idle, Server_idle_head), "making room for another pool (max_db_connections)");
		return true;
	}
	return false;
}

/*
 * Route affinity: the idle server that already has C's route and settings,
 * so that its transaction needs nothing injected; else the most recently
 * used one. Two versions of an application sharing a pool would otherwise
 * switch search_path on most transactions.
 */
static Server *pool_pick_idle(Pool *p, Client *c)
{
	const char *route = c->state == CL_WAIT_LOGIN ? NULL : client_route(c);
	Server *s;
	if (route) {
		TAILQ_FOREACH(s, &p->idle, idle_link)
			if (s->search_path && s->params_sig == c->params_sig && strcmp(s->search_path, route) == 0)
				return s;
	}
	return TAILQ_FIRST(&p->idle);
}

/* Every waiting client gets the message: logins keep failing. */
static void pool_fail_waiting(Pool *p, const char *message)
{
	while (!TAILQ_EMPTY(&p->waiting)) {
		Client *c = TAILQ_FIRST(&p->waiting);
		client_set_state(c, CL_IDLE);
		client_server_failed(c, "08006", message);
	}
}

/* Starts logins while clients wait for more servers than are logging in,
 * within the pool's size (plus the reserve once a client waited
 * reserve_pool_timeout) and max_db_connections. */
static void pool_grow(Pool *p, uint64_t now)
{
	int max_db = proxy.conf->max_db_connections;
	int limit = p->size;
	Client *oldest = TAILQ_FIRST(&p->waiting);
	if (oldest && proxy.conf->reserve_pool_size > 0 &&
	    now - oldest->wait_start_ms >= (uint64_t)proxy.conf->reserve_pool_timeout_ms)
		limit += proxy.conf->reserve_pool_size;
	while (p->n_waiting > p->n_connecting && p->n_servers < limit && !pool_login_backoff(p, now)) {
		if (max_db > 0 && db_connections(p->database) >= max_db && !pool_close_idle_elsewhere(p))
			return;
		if (server_connect(p) != SERVER_CONNECT_STARTED)
			return; /* a failure now is a failed login: the backoff applies */
	}
}

/* RECONNECT: the idle servers it marked go now, before any is handed out. */
/* Closes the idle servers RECONNECT marked; a no-op (no walk) unless one
 * is still marked: pool_dispatch runs at every transaction's end. */
static void pool_close_marked(Pool *p)
{
	if (!p->close_pending)
		return;
	Server *s, *next;
	for (s = TAILQ_FIRST(&p->idle); s; s = next) {
		next = TAILQ_NEXT(s, idle_link);
		if (s->close_needed)
			server_close(s, "RECONNECT: closed once idle");
	}
	p->close_pending = false;
	TAILQ_FOREACH(s, &p->servers, link)
		p->close_pending = p->close_pending || s->close_needed;
}

static void pool_dispatch(Pool *p)
{
	pool_close_marked(p);
	while (!TAILQ_EMPTY(&p->waiting) && !TAILQ_EMPTY(&p->idle)) {
		Client *c = TAILQ_FIRST(&p->waiting);
		if (c->state == CL_WAITING && proxy_paused(p))
			break; /* PAUSE or a drain window: no transaction starts (resume dispatches) */
		Server *s = pool_pick_idle(p, c);
		server_set_state(s, SV_ACTIVE);
		client_linked(c, s); /* takes c off the waiting list */
	}
	uint64_t now = proxy_now_ms();
	if (!TAILQ_EMPTY(&p->waiting) && pool_login_backoff(p, now)) {
		char msg[600];
		snprintf(msg, sizeof(msg), "server login has been failing, try again later (server_login_retry): %s",
			 p->last_error ? p->last_error : "?");
		pool_fail_waiting(p, msg);
	}
	pool_grow(p, now);
	if (proxy.conf->max_db_connections > 0 && TAILQ_EMPTY(&p->waiting) && !TAILQ_EMPTY(&p->idle)) {
		/* a pool of the same database may be waiting for a free slot */
		Pool *o;
		TAILQ_FOREACH(o, &proxy.pools, link)
			if (o != p && !TAILQ_EMPTY(&o->waiting) && strcmp(o->database, p->database) == 0)
				pool_dispatch_soon(o);
	}
}

static void pool_dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pool_dispatch(arg);
}

void pool_login_failed(Pool *p, const char *message)
{
	free(p->last_error);
	p->last_error = strdup(message); /* NULL: no message to show, nothing else lost */
	p->last_connect_fail_ms = proxy_now_ms();
	if (p->n_servers > 0)
		return; /* other servers may still serve the waiting clients */
	pool_fail_waiting(p, message);
}

bool pool_route_verified(Pool *p, const char *schema)
{
	if (p->verified_gen != proxy.router.generation) {
		/* routes changed: schemas may have been dropped since; check again */
		for (size_t i = 0; i < p->n_verified; i++)
			free(p->verified[i]);
		p->n_verified = 0;
		p->verified_gen = proxy.router.generation;
		return false;
	}
	for (size_t i = 0; i < p->n_verified; i++)
		if (strcmp(p->verified[i], schema) == 0)
			return true;
	return false;
}

void pool_route_verified_add(Pool *p, const char *schema)
{
	if (pool_route_verified(p, schema))
		return;
	char **grown = proxy_grow_try(p->verified, p->n_verified, &p->cap_verified, sizeof(char *));
	char *copy = grown && schema ? strdup(schema) : NULL;
	if (!copy)
		return; /* not cached: the next client checks the schema again */
	p->verified = grown;
	p->verified[p->n_verified++] = copy;
}

void pool_count_servers(const Pool *p, int counts[POOL_SERVER_STATES])
{
	memset(counts, 0, POOL_SERVER_STATES * sizeof(int));
	const Server *s;
	TAILQ_FOREACH(s, &p->servers, link)
		if ((int)s->state >= 0 && s->state < POOL_SERVER_STATES)
			counts[s->state]++;
}

uint64_t pool_wait_max_ms(const Pool *p, uint64_t now_ms)
{
	uint64_t longest = 0;
	const Client *c;
	TAILQ_FOREACH(c, &p->waiting, wait_link)
		if (c->wait_start_ms && now_ms > c->wait_start_ms && now_ms - c->wait_start_ms > longest)
			longest = now_ms - c->wait_start_ms;
	return longest;
}

void pool_count_transaction(Pool *p, const RouteStatsEntry *e)
{
	p->stats.xact_count++;
	if (!e)
		return;
	if (e->index >= p->n_route_tx) {
		/* the first transaction of a route new to this pool: the one
		 * allocation, never one per transaction */
		size_t n = e->index + 8;
		uint64_t *grown = realloc(p->route_tx, n * sizeof(*grown));
		if (!grown)
			return;
		memset(grown + p->n_route_tx, 0, (n - p->n_route_tx) * sizeof(*grown));
		p->route_tx = grown;
		p->n_route_tx = n;
	}
	p->route_tx[e->index]++;
}

/* Every stats_period: the growth of P's counters over the period that
 * ended (the averages of SHOW STATS). */
static void pool_stats_period(Pool *p)
{
	uint64_t now_us = proxy_now_us();
	if (now_us - p->stats_mark_us < (uint64_t)proxy.conf->stats_period * 1000000)
		return;
	p->stats_delta = stats_diff(&p->stats, &p->stats_mark);
	p->stats_delta_us = now_us - p->stats_mark_us;
	p->stats_mark = p->stats;
	p->stats_mark_us = now_us;
}

void pool_reconnect(Pool *p)
{
	Server *s;
	TAILQ_FOREACH(s, &p->servers, link)
		s->close_needed = true;
	p->close_pending = true;
	pool_close_marked(p);
}

void pool_janitor(Pool *p, uint64_t now)
{
	const Conf *conf = proxy.conf;
	pool_stats_period(p);
	/* keep min_pool_size servers open, and let waiting clients reach the reserve */
	if ((p->n_servers < conf->min_pool_size && !pool_login_backoff(p, now) && p->have_params) ||
	    !TAILQ_EMPTY(&p->waiting)) {
		if (p->n_servers < conf->min_pool_size && p->n_connecting == 0 &&
		    server_connect(p) == SERVER_CONNECT_CANNOT && !p->dns_req)
			log_warning("pool %s/%s: cannot start a login for min_pool_size", p->database, p->user);
		pool_dispatch_soon(p);
	}
	Client *c, *cnext;
	for (c = TAILQ_FIRST(&p->waiting); c; c = cnext) {
		cnext = TAILQ_NEXT(c, wait_link);
		if (conf->query_wait_timeout_ms > 0 && now - c->wait_start_ms > (uint64_t)conf->query_wait_timeout_ms)
			client_close(c, "08P01", "query_wait_timeout: no server connection became free in %d ms",
				     conf->query_wait_timeout_ms);
	}
	Server *s, *snext;
	for (s = TAILQ_FIRST(&p->servers); s; s = snext) {
		snext = TAILQ_NEXT(s, link);
		if (s->state == SV_CONNECTING && now - s->connect_start_ms > (uint64_t)s->connect_timeout_ms) {
			char msg[128];
			snprintf(msg, sizeof(msg), "server_connect_timeout: no login within %d ms", s->connect_timeout_ms);
			server_close(s, "%s", msg);
			pool_login_failed(p, msg);
			continue;
		}
		if (s->state != SV_IDLE)
			continue;
		if (conf->server_lifetime_ms > 0 && now - s->login_ms > (uint64_t)conf->server_lifetime_ms)
			server_close(s, "server_lifetime reached");
		else if (conf->server_idle_timeout_ms > 0 && p->n_servers > conf->min_pool_size &&
			 now - s->idle_since_ms > (uint64_t)conf->server_idle_timeout_ms)
			server_close(s, "server_idle_timeout reached");
	}
}
