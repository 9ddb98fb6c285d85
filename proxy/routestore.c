/*
 * proxy/routestore.c: the routes kept in the database (DESIGN.md decision
 * 8: PostgreSQL holds the truth, pgflip instances converge).
 *
 * The table lives in pgflip's schema of route_db's database
 * (migrate/api.h): pgflip.routes holds the rows, pgflip.route_state the
 * generation of their content, pgflip.instances one row per running
 * pgflip with its clients per version schema. One libpq connection per
 * store, driven by the event loop (never blocking it), carries everything,
 * one query at a time:
 *
 *   SETUP    migrate_schema_ddl() (idempotent), LISTEN pgflip_routes;
 *   READ     the generation and every row, in one statement (one snapshot);
 *   PUBLISH  the whole local table in one transaction: the route_state row
 *            locked FOR UPDATE, the rows replaced, generation + 1, NOTIFY
 *            with the new generation as payload;
 *   BEAT     every second: this instance's row upserted, the other live
 *            rows read (their clients count for `versions` and the drop
 *            guards).
 *
 * Applying: a notification (or a reconnect) asks for a READ; a generation
 * other than the one applied replaces proxy.router (router_replace bumps
 * the router's generation, clients follow at their next transaction
 * boundary). A bad row is skipped with a log line, never applied
 * (router_from_rows). A local change (routestore_publish) is in
 * proxy.router already; it is `pending` until its PUBLISH commits, and no
 * READ overwrites it meanwhile.
 *
 * Rules (README, "Route store"):
 *   - start: the table wins; an empty table is seeded with the running
 *     routes (the file's); clients wait for that first read
 *     (ROUTESTORE_HOLD_MS);
 *   - two instances publishing at once: the row lock orders them, the later
 *     commit has the higher generation, and both end with it;
 *   - a change made while the store is not in step with the database
 *     (unreachable, not read yet, or a publish whose outcome is unknown) is
 *     "blind": it remembers the generation it was based on, and at the next
 *     READ it is published only if the database is still there; otherwise
 *     the database's newer table wins and the change is dropped, logged;
 *   - unreachable: routing goes on with the last routes; reconnects back
 *     off from 100 ms to 5 s; one warning per outage.
 *
 * State: the RouteStore below, owned by proxy.store (no file-static state).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <libpq-fe.h>

#include "migrate/api.h"
#include "proxy/proxy.h"
#include "proxy/client.h"
#include "proxy/resolve.h"
#include "proxy/routestore.h"
#include "proxy/server.h"

typedef enum {
	RS_WAITING = 0,  /* not connected: connects at retry_at_ms */
	RS_RESOLVING,    /* the entry's host name is being looked up (evdns) */
	RS_CONNECTING,   /* PQconnectPoll under way */
	RS_READY,        /* logged in; no query in flight; notifications are read */
	RS_BUSY,         /* one query (job) in flight */
} RouteStoreState;

typedef enum { RSJ_NONE = 0, RSJ_SETUP, RSJ_READ, RSJ_PUBLISH, RSJ_BEAT } RouteStoreJob;

/* Another live instance, as its last row said. */
typedef struct StoreInstance {
	char *id;
	char *host;
	int pid;
	char *started_at;
	json_t *clients;         /* {"VSCHEMA": n} */
} StoreInstance;

struct RouteStore {
	char *database;          /* route_db: its [databases] entry */
	RouteStoreState state;
	RouteStoreJob job;       /* RS_BUSY: what is in flight */
	PGresult *job_rows;      /* its last result with rows so far */
	char job_err[400];       /* its first error so far, "" = none */
	PGconn *pg;
	struct event *ev;        /* the socket: login polls, then read (+ write while flushing) */
	bool ev_write;           /* ev watches EV_WRITE too */
	struct event *kick;      /* deferred: start the next job (store_kick_cb) */
	struct evdns_getaddrinfo_request *dns_req;
	char addr[64];           /* the entry's host, resolved; "" = libpq's business */
	char *login_sig;         /* the login's keywords and values: a reload that changes them reconnects */
	uint64_t since_ms;       /* when the state began (connect and query timeouts) */
	uint64_t retry_at_ms;    /* RS_WAITING: when to connect */
	int backoff_ms;          /* the wait after the next failure */
	bool outage_logged;      /* this outage has had its warning */
	uint64_t down_since_ms;  /* when it began (0: connected, or never was) */
	char last_error[512];

	int64_t generation;      /* of the database table proxy.router holds, -1 = none read yet */
	bool synced;             /* a READ completed on this connection */
	bool loaded;             /* a READ ever completed */
	bool holding;            /* clients are not accepted until the first READ */
	uint64_t hold_until_ms;
	bool need_setup;         /* jobs wanted */
	bool need_read;
	bool need_beat;

	/* The local change (proxy.router as it is) not published yet. */
	bool pending;
	bool pending_blind;      /* made out of step: published only if the database is still at pending_base */
	int64_t pending_base;
	uint64_t change_seq;     /* bumped at every local change */
	uint64_t publishing_seq; /* the change_seq that the PUBLISH in flight carries */
	char *pending_who;       /* changed_by of the next PUBLISH */

	uint64_t last_beat_ms;
	char id[300];            /* host:pid:start time */
	char app_name[64];       /* its application_name: "pgflip route store (pid N)" */
	char host[256];
	StoreInstance *others;   /* live others, by the last BEAT */
	size_t n_others;
	uint64_t others_ms;      /* when they were read, 0 = never */
};

static void store_connect(RouteStore *st);
static void store_next(RouteStore *st);
static void store_socket_cb(evutil_socket_t fd, short what, void *arg);

static const char *store_state_to_str(RouteStoreState s)
{
	switch (s) {
	case RS_WAITING: return "waiting";
	case RS_RESOLVING: return "resolving";
	case RS_CONNECTING: return "connecting";
	case RS_READY: return "ready";
	case RS_BUSY: return "busy";
	}
	return "?";
}

static void store_set_state(RouteStore *st, RouteStoreState s)
{
	switch (s) {
	case RS_WAITING:
	case RS_RESOLVING:
	case RS_CONNECTING:
	case RS_READY:
	case RS_BUSY:
		break;
	default:
		log_error("route store: bad state %d", (int)s);
		abort();
	}
	log_debug("route store (database %s): %s -> %s", st->database, store_state_to_str(st->state),
		  store_state_to_str(s));
	st->state = s;
	st->since_ms = proxy_now_ms();
}

/* libpq's message as one line into BUF (N > 0 bytes): its newlines and
 * tabs ("server closed the connection unexpectedly\n\tThis probably...")
 * become single spaces, trailing ones go. */
static void pq_message(const char *msg, char *buf, size_t n)
{
	const char *s = msg && *msg ? msg : "unknown error";
	size_t o = 0;
	for (; *s && o + 1 < n; s++) {
		bool blank = *s == '\n' || *s == '\t' || *s == ' ';
		if (blank && (o == 0 || buf[o - 1] == ' '))
			continue;
		buf[o++] = blank ? ' ' : *s;
	}
	while (o && buf[o - 1] == ' ')
		o--;
	buf[o] = '\0';
}

/* The others' rows were read within MIGRATE_INSTANCE_TTL_S. */
static bool others_fresh(const RouteStore *st)
{
	return st->others_ms && proxy_now_ms() - st->others_ms <= (uint64_t)MIGRATE_INSTANCE_TTL_S * 1000;
}

static void others_clear(RouteStore *st)
{
	for (size_t i = 0; i < st->n_others; i++) {
		free(st->others[i].id);
		free(st->others[i].host);
		free(st->others[i].started_at);
		json_decref(st->others[i].clients);
	}
	free(st->others);
	st->others = NULL;
	st->n_others = 0;
}

static void store_hold_end(RouteStore *st, const char *why)
{
	if (!st->holding)
		return;
	st->holding = false;
	if (why)
		log_warning("routes: %s: serving with the file's [routes] until database %s answers", why,
			    st->database);
	proxy_accept_update();
}

/* Closes the connection, and ends any job. */
static void store_close(RouteStore *st)
{
	if (st->dns_req) {
		evdns_getaddrinfo_cancel(st->dns_req);
		st->dns_req = NULL;
	}
	if (st->ev)
		event_free(st->ev);
	st->ev = NULL;
	st->ev_write = false;
	if (st->pg)
		PQfinish(st->pg);
	st->pg = NULL;
	st->job = RSJ_NONE;
	PQclear(st->job_rows);
	st->job_rows = NULL;
	st->job_err[0] = '\0';
	st->synced = false;
	/* whatever is pending may or may not have committed: out of step now */
	if (st->pending)
		st->pending_blind = true;
}

/* The connection failed (REASON): close, and connect again after the
 * backoff. The first failure of an outage is a warning, the rest debug. */
static void store_fail(RouteStore *st, const char *reason)
{
	store_close(st);
	st->addr[0] = '\0'; /* the host may have moved: resolve it again */
	snprintf(st->last_error, sizeof(st->last_error), "%s", reason);
	uint64_t now = proxy_now_ms();
	if (!st->outage_logged) {
		char gen[32] = "none yet";
		if (st->generation >= 0)
			snprintf(gen, sizeof(gen), "%lld", (long long)st->generation);
		log_warning("route store (database %s): %s; routing goes on with the last routes (generation %s), "
			    "reconnecting with backoff",
			    st->database, reason, gen);
		st->outage_logged = true;
		st->down_since_ms = now;
	} else {
		log_debug("route store (database %s): %s (retry in %d ms)", st->database, reason, st->backoff_ms);
	}
	store_set_state(st, RS_WAITING);
	st->retry_at_ms = now + (uint64_t)st->backoff_ms;
	st->backoff_ms = st->backoff_ms * 2 > ROUTESTORE_RETRY_MAX_MS ? ROUTESTORE_RETRY_MAX_MS : st->backoff_ms * 2;
	store_hold_end(st, "the route store is unreachable");
}

/* Watches the socket for reading (and writing while libpq has output). */
static bool store_watch(RouteStore *st, bool write)
{
	if (st->ev && st->ev_write == write)
		return true;
	if (st->ev)
		event_free(st->ev);
	st->ev = event_new(proxy.base, PQsocket(st->pg), EV_READ | EV_PERSIST | (write ? EV_WRITE : 0),
			   store_socket_cb, st);
	st->ev_write = write;
	return st->ev && event_add(st->ev, NULL) == 0;
}

static void store_kick(RouteStore *st) { event_active(st->kick, 0, 0); }

/* ---- connecting ------------------------------------------------------- */

static void store_notice(void *arg, const char *message)
{
	const RouteStore *st = arg;
	log_info("route store (database %s): %.*s", st->database, (int)strcspn(message, "\n"), message);
}

static void store_login_done(RouteStore *st)
{
	PQsetNoticeProcessor(st->pg, store_notice, st);
	if (PQsetnonblocking(st->pg, 1) != 0) {
		store_fail(st, "cannot make the connection non-blocking");
		return;
	}
	if (st->ev)
		event_free(st->ev);
	st->ev = NULL;
	if (!store_watch(st, false)) {
		store_fail(st, "cannot watch the connection's socket");
		return;
	}
	log_debug("route store (database %s): logged in as %s", st->database, PQuser(st->pg));
	st->need_setup = true;
	st->need_read = true;
	store_set_state(st, RS_READY);
	store_next(st);
}

static void store_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	RouteStore *st = arg;
	(void)fd;
	(void)what;
	PostgresPollingStatusType r = PQconnectPoll(st->pg);
	if (r == PGRES_POLLING_OK) {
		store_login_done(st);
		return;
	}
	if (r == PGRES_POLLING_READING || r == PGRES_POLLING_WRITING) {
		if (st->ev)
			event_free(st->ev);
		st->ev = event_new(proxy.base, PQsocket(st->pg), r == PGRES_POLLING_READING ? EV_READ : EV_WRITE,
				   store_poll_cb, st);
		if (!st->ev || event_add(st->ev, NULL) != 0)
			store_fail(st, "cannot watch the login socket");
		return;
	}
	char msg[400], reason[480];
	pq_message(PQerrorMessage(st->pg), msg, sizeof(msg));
	snprintf(reason, sizeof(reason), "login failed: %s", msg);
	store_fail(st, reason);
}

/* The store's login: route_db's entry as its user= (or auth_user, or
 * libpq's default user), keywords built as a pool's are. */
static bool store_login_keywords(const RouteStore *st, const ConfDatabase *db, const char **kw, const char **val)
{
	const ServerLoginAs as = {.user = db->user ? NULL : proxy.conf->auth_user,
				  .dbname = db->name,
				  .app_name = st->app_name,
				  .addr = st->addr[0] ? st->addr : NULL};
	return server_login_keywords(db, &as, kw, val);
}

/* B's bytes as a NUL-terminated string, or NULL. Caller frees. */
static char *store_buffer_string(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);
	if (s && evbuffer_remove(b, s, n) != (int)n) {
		free(s);
		return NULL;
	}
	if (s)
		s[n] = '\0';
	return s;
}

/* KW=VAL pairs as one string (hostaddr left out: a moved host is no new
 * login). Caller frees. */
static char *store_login_sig(const char *const *kw, const char *const *val)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return NULL;
	for (size_t i = 0; kw[i]; i++)
		if (strcmp(kw[i], "hostaddr") != 0 && evbuffer_add_printf(b, "%s=%s\n", kw[i], val[i]) < 0) {
			evbuffer_free(b);
			return NULL;
		}
	char *s = store_buffer_string(b);
	evbuffer_free(b);
	return s;
}

static void store_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	if (result == EVUTIL_EAI_CANCEL)
		return;
	RouteStore *st = arg;
	st->dns_req = NULL;
	resolve_answer(result, res, st->addr, sizeof(st->addr));
	if (!st->addr[0]) {
		store_fail(st, "cannot resolve the host of its [databases] entry");
		return;
	}
	store_connect(st);
}

static void store_connect(RouteStore *st)
{
	const ConfDatabase *db = conf_find_database(proxy.conf, st->database);
	if (!db || strcmp(db->name, st->database) != 0) {
		store_fail(st, "no such [databases] entry");
		return;
	}
	const char *host = resolve_host(db);
	if (host && !st->addr[0] && proxy.dns) {
		struct evutil_addrinfo hints;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		store_set_state(st, RS_RESOLVING);
		struct evdns_getaddrinfo_request *req = evdns_getaddrinfo(proxy.dns, host, NULL, &hints, store_resolved, st);
		if (req)
			st->dns_req = req; /* else store_resolved ran already */
		return;
	}
	const char *kw[SERVER_MAX_KEYWORDS + 1], *val[SERVER_MAX_KEYWORDS + 1];
	if (!store_login_keywords(st, db, kw, val)) {
		store_fail(st, "too many keywords in its [databases] entry");
		return;
	}
	free(st->login_sig);
	st->login_sig = store_login_sig(kw, val);
	st->pg = PQconnectStartParams(kw, val, 0);
	if (!st->pg || PQstatus(st->pg) == CONNECTION_BAD) {
		char msg[400];
		pq_message(st->pg ? PQerrorMessage(st->pg) : "out of memory", msg, sizeof(msg));
		store_fail(st, msg);
		return;
	}
	store_set_state(st, RS_CONNECTING);
	st->ev = event_new(proxy.base, PQsocket(st->pg), EV_WRITE, store_poll_cb, st);
	if (!st->ev || event_add(st->ev, NULL) != 0)
		store_fail(st, "cannot watch the login socket");
}

/* ---- applying what the database holds ---------------------------------- */

/* Clients routed per version schema, into O. */
static void count_clients(json_t *o)
{
	Client *c;
	TAILQ_FOREACH(c, &proxy.clients, link) {
		if (c->state != CL_WAIT_LOGIN && c->state != CL_IDLE && c->state != CL_WAITING && c->state != CL_ACTIVE)
			continue;
		const char *route = client_next_route(c);
		if (!route)
			continue;
		json_t *n = json_object_get(o, route);
		json_object_set_new(o, route, json_integer(n ? json_integer_value(n) + 1 : 1));
	}
}

/* Rows of a READ (generation, kind, key, schema, percent, canary_key; a single row of
 * NULLs after the generation when the table is empty) into a router in OUT.
 * Returns the number of rows; -1 when no valid default is left (logged). */
static long rows_to_router(const RouteStore *st, PGresult *res, Router *out)
{
	int n = PQntuples(res);
	RouteRow *rows = calloc((size_t)n + 1, sizeof(RouteRow));
	if (!rows) {
		log_error("routes: out of memory reading them; the running routes are kept");
		return -1;
	}
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 1))
			continue; /* the LEFT JOIN's row of an empty table */
		rows[k].kind = PQgetvalue(res, i, 1);
		rows[k].key = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
		rows[k].schema = PQgetisnull(res, i, 3) ? NULL : PQgetvalue(res, i, 3);
		rows[k].percent = PQgetisnull(res, i, 4) ? 0 : atoi(PQgetvalue(res, i, 4));
		rows[k].canary_key = PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5);
		k++;
	}
	if (k == 0) {
		free(rows);
		router_init(out);
		return 0;
	}
	char source[128], err[256];
	snprintf(source, sizeof(source), "database %s", st->database);
	bool ok = router_from_rows(out, rows, k, source, err, sizeof(err));
	free(rows);
	if (!ok) {
		log_error("routes: %s; the running routes are kept", err);
		return -1;
	}
	return (long)k;
}

/* The table of generation GEN (TABLE, consumed) replaces proxy.router when
 * it routes differently. */
static void store_apply(RouteStore *st, int64_t gen, Router *table)
{
	bool first = !st->loaded;
	if (!router_equal(&proxy.router, table)) {
		router_replace(&proxy.router, table);
		st->need_beat = true; /* the counts per route moved: say so now, not in a second */
		if (!first)
			log_info("routes: generation %lld from database %s applied (default %s)", (long long)gen,
				 st->database, proxy.router.default_schema);
	} else {
		router_free(table);
	}
	if (first)
		log_info("routes: loaded generation %lld from database %s (the file's [routes] are only a seed)",
			 (long long)gen, st->database);
	st->generation = gen;
}

static void store_read_done(RouteStore *st, PGresult *res)
{
	int64_t gen = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
	Router table;
	long n = rows_to_router(st, res, &table);
	/* in step: the outage (if any) is over; the backoff starts again small
	 * only now, so that a login whose setup fails keeps backing off */
	if (st->outage_logged && st->down_since_ms)
		log_info("route store (database %s): connected again after %llu ms", st->database,
			 (unsigned long long)(proxy_now_ms() - st->down_since_ms));
	else if (!st->synced)
		log_info("route store (database %s): connected as %s", st->database, PQuser(st->pg));
	st->outage_logged = false;
	st->down_since_ms = 0;
	st->backoff_ms = ROUTESTORE_RETRY_MIN_MS;
	st->last_error[0] = '\0';
	st->synced = true;
	if (n == 0) {
		/* an empty table: the running routes (the file's at a start) seed it */
		log_info("routes: database %s holds no routes: seeding it with the running ones (default %s)",
			 st->database, proxy.router.default_schema);
		if (!st->pending) {
			st->pending = true;
			st->change_seq++;
			free(st->pending_who);
			st->pending_who = strdup("seed"); /* NULL: shown as "?" */
		}
		st->pending_blind = false;
		st->generation = gen;
	} else if (n < 0) {
		/* not applied (logged); a blind change goes out, as it would over
		 * any table: the database holds nothing better */
		st->generation = gen;
		st->pending_blind = false;
	} else if (st->pending && !st->pending_blind) {
		router_free(&table); /* our PUBLISH follows and overwrites it */
	} else if (st->pending && gen == st->pending_base) {
		log_info("routes: publishing the change made while database %s was out of reach (it is still at "
			 "generation %lld)",
			 st->database, (long long)gen);
		st->pending_blind = false;
		router_free(&table);
	} else if (st->pending) {
		if (!router_equal(&proxy.router, &table))
			log_warning("routes: the change made here while database %s was out of reach (%s) is dropped: "
				    "the database moved from generation %lld to %lld meanwhile, and its routes win",
				    st->database, st->pending_who ? st->pending_who : "?", (long long)st->pending_base,
				    (long long)gen);
		st->pending = false;
		st->pending_blind = false;
		store_apply(st, gen, &table);
	} else if (gen != st->generation || !st->loaded) {
		store_apply(st, gen, &table);
	} else {
		router_free(&table);
	}
	st->loaded = true;
	store_hold_end(st, NULL);
}

static void store_publish_done(RouteStore *st, PGresult *res)
{
	if (!res || PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
		store_fail(st, "publish: pgflip.route_state has no row");
		return;
	}
	int64_t gen = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	log_info("routes: published generation %lld to database %s (%s)", (long long)gen, st->database,
		 st->pending_who ? st->pending_who : "?");
	st->generation = gen;
	st->loaded = true;
	st->need_beat = true; /* the counts per route moved: say so now, not in a second */
	if (st->change_seq == st->publishing_seq) {
		st->pending = false;
		st->pending_blind = false;
	} else {
		st->pending_base = gen; /* another change came meanwhile: it goes next */
	}
}

static void store_beat_done(RouteStore *st, PGresult *res)
{
	others_clear(st);
	int n = PQntuples(res);
	bool lost = false;
	st->others = calloc((size_t)n + 1, sizeof(StoreInstance));
	if (!st->others) {
		st->others_ms = 0; /* stale: routestore_clients_elsewhere says -1, and the guards wait */
		return;
	}
	for (int i = 0; i < n; i++) {
		StoreInstance *o = &st->others[st->n_others];
		json_error_t jerr;
		o->clients = json_loads(PQgetvalue(res, i, 4), 0, &jerr);
		if (!json_is_object(o->clients)) {
			log_warning("route store (database %s): instance %s: clients is not a JSON object, ignored",
				    st->database, PQgetvalue(res, i, 0));
			json_decref(o->clients);
			o->clients = json_object();
		}
		o->id = strdup(PQgetvalue(res, i, 0));
		o->host = strdup(PQgetvalue(res, i, 1));
		o->pid = PQgetisnull(res, i, 2) ? 0 : atoi(PQgetvalue(res, i, 2));
		o->started_at = strdup(PQgetvalue(res, i, 3));
		if (!o->id || !o->host || !o->started_at || !o->clients) {
			/* out of memory: this instance is not listed; its clients
			 * are unknown, and the guards treat unknown as in use */
			free(o->id);
			free(o->host);
			free(o->started_at);
			json_decref(o->clients);
			memset(o, 0, sizeof(*o));
			lost = true;
			continue;
		}
		st->n_others++;
	}
	st->others_ms = lost ? 0 : proxy_now_ms(); /* 0: stale, routestore_clients_elsewhere says -1 */
}

/* ---- jobs --------------------------------------------------------------- */

static const char STORE_READ_SQL[] =
	"SELECT s.generation, r.kind, r.key, r.schema, r.percent, r.canary_key FROM pgflip.route_state s "
	"LEFT JOIN pgflip.routes r ON true WHERE s.id ORDER BY r.position, r.kind, r.key";

static const char STORE_BEAT_SQL[] =
	"WITH me AS (INSERT INTO pgflip.instances (id, host, pid, started_at, seen_at, clients) "
	"VALUES ($1, $2, $3::int, to_timestamp($4::bigint), now(), $5::jsonb) "
	"ON CONFLICT (id) DO UPDATE SET seen_at = now(), clients = EXCLUDED.clients RETURNING 1), "
	"gone AS (DELETE FROM pgflip.instances WHERE id IN (SELECT id FROM pgflip.instances "
	"WHERE seen_at < now() - make_interval(secs => $7::int) FOR UPDATE SKIP LOCKED) RETURNING 1) "
	"SELECT id, host, pid, started_at::text, clients::text FROM pgflip.instances "
	"WHERE id <> $1 AND seen_at > now() - make_interval(secs => $6::int) ORDER BY id";

static bool put_literal(RouteStore *st, struct evbuffer *b, const char *s)
{
	char *lit = PQescapeLiteral(st->pg, s, strlen(s));
	if (!lit)
		return false;
	int r = evbuffer_add(b, lit, strlen(lit));
	PQfreemem(lit);
	return r == 0;
}

/* The PUBLISH transaction (one Query: an implicit transaction, all or
 * nothing) for proxy.router as it is now; NULL on failure. Caller frees. */
static char *store_publish_sql(RouteStore *st)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		return NULL;
	size_t n = 0;
	RouteRow *rows = router_to_rows(&proxy.router, &n);
	if (!rows) {
		evbuffer_free(b);
		return NULL;
	}
	bool ok = evbuffer_add_printf(b, "SELECT generation FROM pgflip.route_state WHERE id FOR UPDATE;\n"
					 "DELETE FROM pgflip.routes;\n"
					 "INSERT INTO pgflip.routes (kind, key, schema, percent, canary_key, position) VALUES ") >= 0;
	for (size_t i = 0; ok && i < n; i++) {
		bool canary = !strcmp(rows[i].kind, "canary");
		ok = evbuffer_add_printf(b, "%s(", i ? ", " : "") >= 0 && put_literal(st, b, rows[i].kind) &&
		     evbuffer_add(b, ", ", 2) == 0 && put_literal(st, b, rows[i].key) && evbuffer_add(b, ", ", 2) == 0 &&
		     put_literal(st, b, rows[i].schema) &&
		     (canary ? evbuffer_add_printf(b, ", %d, '%s', %zu)", rows[i].percent,
						   rows[i].canary_key ? rows[i].canary_key : "addr", i)
			     : evbuffer_add_printf(b, ", NULL, NULL, %zu)", i)) >= 0;
	}
	free(rows);
	char who[600];
	snprintf(who, sizeof(who), "%s: %s", st->id, st->pending_who ? st->pending_who : "?");
	ok = ok &&
	     evbuffer_add_printf(b, ";\nWITH s AS (UPDATE pgflip.route_state SET generation = generation + 1, "
				    "changed_at = now(), changed_by = ") >= 0 &&
	     put_literal(st, b, who) &&
	     evbuffer_add_printf(b, " WHERE id RETURNING generation) SELECT generation, pg_notify('%s', "
				    "generation::text) FROM s",
				 MIGRATE_ROUTES_CHANNEL) >= 0;
	char *sql = ok ? store_buffer_string(b) : NULL;
	evbuffer_free(b);
	return sql;
}

/* The SETUP text: quiet notices (IF NOT EXISTS says "skipping" for each
 * object), the schema, then LISTEN before the first READ, so that no
 * change slips between them. */
static char *store_setup_sql(void)
{
	char *sql = NULL;
	if (asprintf(&sql, "SET client_min_messages = warning;\n%s;\nLISTEN %s", migrate_schema_ddl(),
		     MIGRATE_ROUTES_CHANNEL) < 0)
		return NULL;
	return sql;
}

/* Sends the job's query; RS_BUSY until its results are in. */
static void store_send(RouteStore *st, RouteStoreJob job)
{
	char *sql = NULL;
	int ok = 0;
	switch (job) {
	case RSJ_SETUP:
		st->need_setup = false;
		if ((sql = store_setup_sql()))
			ok = PQsendQuery(st->pg, sql);
		break;
	case RSJ_READ:
		st->need_read = false;
		ok = PQsendQuery(st->pg, STORE_READ_SQL);
		break;
	case RSJ_PUBLISH:
		st->publishing_seq = st->change_seq;
		if ((sql = store_publish_sql(st)))
			ok = PQsendQuery(st->pg, sql);
		break;
	case RSJ_BEAT: {
		st->need_beat = false;
		st->last_beat_ms = proxy_now_ms();
		json_t *counts = json_object();
		count_clients(counts);
		char *clients = json_dumps(counts, JSON_COMPACT);
		json_decref(counts);
		char pid[24], started[24], ttl[24], forget[24];
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		snprintf(started, sizeof(started), "%lld", (long long)proxy.start_time);
		snprintf(ttl, sizeof(ttl), "%d", MIGRATE_INSTANCE_TTL_S);
		snprintf(forget, sizeof(forget), "%d", ROUTESTORE_FORGET_S);
		const char *params[7] = {st->id, st->host, pid, started, clients, ttl, forget};
		if (!clients) {
			store_fail(st, "heartbeat: out of memory");
			return;
		}
		ok = PQsendQueryParams(st->pg, STORE_BEAT_SQL, 7, NULL, params, NULL, NULL, 0);
		free(clients);
		break;
	}
	case RSJ_NONE:
	default:
		log_error("route store: bad job %d", (int)job);
		abort();
	}
	free(sql);
	if (!ok) {
		char msg[400];
		pq_message(PQerrorMessage(st->pg), msg, sizeof(msg));
		store_fail(st, msg);
		return;
	}
	int f = PQflush(st->pg);
	if (f < 0) {
		char msg[400];
		pq_message(PQerrorMessage(st->pg), msg, sizeof(msg));
		store_fail(st, msg);
		return;
	}
	st->job = job;
	st->job_err[0] = '\0';
	store_set_state(st, RS_BUSY);
	if (!store_watch(st, f == 1))
		store_fail(st, "cannot watch the connection's socket");
}

/* The next job, if the connection is free: SETUP first; a READ before a
 * blind PUBLISH (to see whether the database moved); then PUBLISH, READ,
 * BEAT. */
static void store_next(RouteStore *st)
{
	if (st->state != RS_READY)
		return;
	if (st->need_setup)
		store_send(st, RSJ_SETUP);
	else if (!st->synced || (st->pending && st->pending_blind))
		store_send(st, RSJ_READ);
	else if (st->pending)
		store_send(st, RSJ_PUBLISH);
	else if (st->need_read)
		store_send(st, RSJ_READ);
	else if (st->need_beat)
		store_send(st, RSJ_BEAT);
}

static void store_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	store_next(arg);
}

/* The job's results, as far as they came (a multi-statement Query gives
 * one per statement, maybe over several reads): the first error is kept,
 * and the last result with rows. At the end (PQgetResult gives NULL), an
 * error fails the connection; else the rows go to the job's handler. */
static void store_results(RouteStore *st)
{
	PGresult *res;
	for (;;) {
		if (PQisBusy(st->pg))
			return; /* the rest comes with more input */
		if (!(res = PQgetResult(st->pg)))
			break;
		ExecStatusType s = PQresultStatus(res);
		if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && !st->job_err[0])
			pq_message(PQresultErrorMessage(res), st->job_err, sizeof(st->job_err));
		if (s == PGRES_TUPLES_OK) {
			PQclear(st->job_rows);
			st->job_rows = res;
		} else {
			PQclear(res);
		}
	}
	RouteStoreJob job = st->job;
	PGresult *rows = st->job_rows;
	st->job = RSJ_NONE;
	st->job_rows = NULL;
	if (st->job_err[0]) {
		static const char *const what[] = {"?", "setup", "read", "publish", "heartbeat"};
		char reason[480];
		snprintf(reason, sizeof(reason), "%s: %s", what[job], st->job_err);
		PQclear(rows);
		store_fail(st, reason);
		return;
	}
	store_set_state(st, RS_READY);
	switch (job) {
	case RSJ_READ:
		if (rows)
			store_read_done(st, rows);
		else
			store_fail(st, "read: no rows");
		break;
	case RSJ_PUBLISH: store_publish_done(st, rows); break;
	case RSJ_BEAT:
		if (rows)
			store_beat_done(st, rows);
		break;
	case RSJ_SETUP:
	case RSJ_NONE:
	default: break;
	}
	PQclear(rows);
	store_next(st);
}

/* Notifications on pgflip_routes: a generation other than ours asks for a
 * READ (our own PUBLISH's comes back with ours). */
static void store_notifications(RouteStore *st)
{
	PGnotify *n;
	while ((n = PQnotifies(st->pg))) {
		if (!strcmp(n->relname, MIGRATE_ROUTES_CHANNEL)) {
			char *end;
			long long gen = strtoll(n->extra, &end, 10);
			if (*end || end == n->extra || gen != st->generation) {
				log_debug("route store (database %s): notified of generation %s", st->database, n->extra);
				st->need_read = true;
			}
		}
		PQfreemem(n);
	}
}

static void store_socket_cb(evutil_socket_t fd, short what, void *arg)
{
	RouteStore *st = arg;
	(void)fd;
	char msg[400];
	if (what & EV_WRITE) {
		int f = PQflush(st->pg);
		if (f < 0) {
			pq_message(PQerrorMessage(st->pg), msg, sizeof(msg));
			store_fail(st, msg);
			return;
		}
		if (f == 0 && !store_watch(st, false)) {
			store_fail(st, "cannot watch the connection's socket");
			return;
		}
	}
	if (!(what & EV_READ))
		return;
	if (!PQconsumeInput(st->pg) || PQstatus(st->pg) == CONNECTION_BAD) {
		pq_message(PQerrorMessage(st->pg), msg, sizeof(msg));
		store_fail(st, msg);
		return;
	}
	store_notifications(st);
	if (st->state == RS_BUSY) {
		store_results(st);
		return;
	}
	if (st->state == RS_READY) {
		PGresult *res;
		while (!PQisBusy(st->pg) && (res = PQgetResult(st->pg)))
			PQclear(res); /* nothing is asked: an error the backend sends before it goes */
		if (PQstatus(st->pg) == CONNECTION_BAD) {
			pq_message(PQerrorMessage(st->pg), msg, sizeof(msg));
			store_fail(st, msg);
			return;
		}
		store_next(st);
	}
}

/* ---- the module's interface ---------------------------------------------- */

static RouteStore *store_new(const char *database)
{
	RouteStore *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->database = strdup(database);
	st->kick = event_new(proxy.base, -1, 0, store_kick_cb, st);
	if (!st->database || !st->kick) {
		free(st->database);
		if (st->kick)
			event_free(st->kick);
		free(st);
		return NULL;
	}
	st->generation = -1;
	st->pending_base = -1;
	st->backoff_ms = ROUTESTORE_RETRY_MIN_MS;
	if (gethostname(st->host, sizeof(st->host)) != 0)
		snprintf(st->host, sizeof(st->host), "unknown");
	st->host[sizeof(st->host) - 1] = '\0';
	snprintf(st->id, sizeof(st->id), "%s:%d:%lld", st->host, (int)getpid(), (long long)proxy.start_time);
	snprintf(st->app_name, sizeof(st->app_name), "pgflip route store (pid %d)", (int)getpid());
	st->state = RS_WAITING;
	st->since_ms = proxy_now_ms();
	st->retry_at_ms = 0; /* the first janitor turn connects; a kick does it sooner */
	return st;
}

static void store_free(RouteStore *st)
{
	if (!st)
		return;
	store_close(st);
	if (st->kick)
		event_free(st->kick);
	others_clear(st);
	free(st->pending_who);
	free(st->login_sig);
	free(st->database);
	free(st);
}

bool routestore_start(void)
{
	if (!proxy.conf->route_db)
		return true;
	RouteStore *st = store_new(proxy.conf->route_db);
	if (!st)
		return false;
	uint64_t hold = ROUTESTORE_HOLD_MS;
	if ((uint64_t)proxy.conf->server_connect_timeout_ms < hold)
		hold = (uint64_t)proxy.conf->server_connect_timeout_ms;
	st->holding = true;
	st->hold_until_ms = proxy_now_ms() + hold;
	proxy.store = st;
	log_info("route store: database %s (pgflip's schema there holds the routes), instance %s", st->database, st->id);
	store_connect(st);
	return true;
}

/* The login the running config gives ST (its signature), or NULL. */
static char *store_current_sig(const RouteStore *st)
{
	const ConfDatabase *db = conf_find_database(proxy.conf, st->database);
	const char *kw[SERVER_MAX_KEYWORDS + 1], *val[SERVER_MAX_KEYWORDS + 1];
	if (!db || !store_login_keywords(st, db, kw, val))
		return NULL;
	return store_login_sig(kw, val);
}

void routestore_reconfigure(void)
{
	RouteStore *st = proxy.store;
	const char *want = proxy.conf->route_db;
	if (st && (!want || strcmp(want, st->database) != 0)) {
		log_info("reload: route_db changed from %s to %s%s", st->database, want ? want : "(none)",
			 want ? " (its table wins, as at a start)" : ": routes live in memory only");
		store_free(st); /* its instance row expires (MIGRATE_INSTANCE_TTL_S) */
		proxy.store = st = NULL;
	}
	if (!want)
		return;
	if (!st) {
		st = store_new(want);
		if (!st) {
			log_error("reload: cannot set up the route store of database %s: out of memory", want);
			return;
		}
		proxy.store = st;
		log_info("reload: route store on database %s, instance %s", st->database, st->id);
		store_connect(st);
		return;
	}
	char *sig = store_current_sig(st);
	bool same = sig && st->login_sig && !strcmp(sig, st->login_sig);
	free(sig);
	if (same || st->state == RS_WAITING)
		return; /* a waiting store logs in with the new config anyway */
	log_info("reload: the login of the route store (database %s) changed: connecting again", st->database);
	store_close(st);
	st->addr[0] = '\0';
	store_set_state(st, RS_WAITING);
	st->retry_at_ms = 0;
	store_connect(st);
}

void routestore_publish(const char *who)
{
	RouteStore *st = proxy.store;
	if (!st)
		return;
	if (!st->pending) {
		st->pending_base = st->generation;
		st->pending_blind = !st->synced;
	}
	st->pending = true;
	st->change_seq++;
	free(st->pending_who);
	st->pending_who = strdup(who ? who : "?"); /* NULL: shown as "?" */
	if (st->pending_blind)
		log_info("routes: database %s is out of reach: the change is applied here and published when it "
			 "answers (if its routes have not moved meanwhile)",
			 st->database);
	store_kick(st);
}

void routestore_janitor(uint64_t now)
{
	RouteStore *st = proxy.store;
	if (!st)
		return;
	uint64_t age = now - st->since_ms;
	if (st->holding && now >= st->hold_until_ms)
		store_hold_end(st, "the stored routes were not read in time");
	switch (st->state) {
	case RS_WAITING:
		if (now >= st->retry_at_ms)
			store_connect(st);
		break;
	case RS_RESOLVING:
	case RS_CONNECTING:
		if (age > (uint64_t)proxy.conf->server_connect_timeout_ms)
			store_fail(st, "login: server_connect_timeout");
		break;
	case RS_BUSY:
		if (age > ROUTESTORE_QUERY_TIMEOUT_MS) {
			char reason[64];
			snprintf(reason, sizeof(reason), "no answer in %d ms", ROUTESTORE_QUERY_TIMEOUT_MS);
			store_fail(st, reason);
			break;
		}
		/* a beat that is due waits for the job */
		/* fall through */
	case RS_READY:
		if (st->synced && now - st->last_beat_ms >= ROUTESTORE_BEAT_MS && !st->need_beat) {
			st->need_beat = true;
			if (st->state == RS_READY)
				store_next(st);
		}
		break;
	}
}

bool routestore_holding(void) { return proxy.store && proxy.store->holding; }

/* Waits (blocking, until DEADLINE_MS) for the query in flight to end;
 * true when it did, without error. */
static bool store_wait(RouteStore *st, uint64_t deadline_ms)
{
	bool ok = !st->job_err[0];
	for (;;) {
		int f = PQflush(st->pg);
		if (f < 0)
			return false;
		while (f == 0 && !PQisBusy(st->pg)) {
			PGresult *res = PQgetResult(st->pg);
			if (!res)
				return ok;
			if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
				ok = false;
			PQclear(res);
		}
		uint64_t now = proxy_now_ms();
		if (now >= deadline_ms)
			return false;
		struct pollfd pfd = {.fd = PQsocket(st->pg), .events = (short)(POLLIN | (f == 1 ? POLLOUT : 0))};
		int r = poll(&pfd, 1, (int)(deadline_ms - now));
		if (r < 0 && errno != EINTR)
			return false;
		if (r > 0 && !PQconsumeInput(st->pg))
			return false;
	}
}

void routestore_stop(void)
{
	RouteStore *st = proxy.store;
	if (!st)
		return;
	if (st->state == RS_READY || st->state == RS_BUSY) {
		uint64_t deadline = proxy_now_ms() + ROUTESTORE_BYE_MS;
		const char *params[1] = {st->id};
		(void)store_wait(st, deadline); /* a job in flight first: its outcome no longer matters */
		st->job_err[0] = '\0';
		bool ok = PQsendQueryParams(st->pg, "DELETE FROM pgflip.instances WHERE id = $1", 1, NULL, params,
					    NULL, NULL, 0) &&
			  store_wait(st, deadline);
		if (ok)
			log_info("route store (database %s): instance %s signed off", st->database, st->id);
		else
			log_warning("route store (database %s): could not delete the row of instance %s (it expires "
				    "in %d s)",
				    st->database, st->id, MIGRATE_INSTANCE_TTL_S);
	}
	store_free(st);
	proxy.store = NULL;
}

/* ---- what the admin commands show ---------------------------------------- */

json_t *routestore_clients_here(void)
{
	json_t *o = json_object();
	count_clients(o);
	return o;
}

int routestore_clients_elsewhere(const char *vschema)
{
	const RouteStore *st = proxy.store;
	if (!st)
		return 0;
	if (!others_fresh(st))
		return -1;
	json_int_t sum = 0;
	for (size_t i = 0; i < st->n_others; i++) {
		json_t *n = json_object_get(st->others[i].clients, vschema);
		if (json_is_integer(n) && json_integer_value(n) > 0)
			sum += json_integer_value(n);
	}
	return sum > 1000000000 ? 1000000000 : (int)sum;
}

json_t *routestore_instances_json(void)
{
	const RouteStore *st = proxy.store;
	json_t *a = json_array();
	char started[64];
	struct tm tm;
	time_t t = proxy.start_time;
	if (gmtime_r(&t, &tm))
		strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S+00", &tm);
	else
		snprintf(started, sizeof(started), "?");
	json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:s, s:o, s:b}", "id", st ? st->id : "local", "host",
					   st ? st->host : "", "pid", (int)getpid(), "started_at", started, "clients",
					   routestore_clients_here(), "self", 1));
	for (size_t i = 0; st && others_fresh(st) && i < st->n_others; i++) {
		const StoreInstance *o = &st->others[i];
		json_array_append_new(a, json_pack("{s:s, s:s, s:i, s:s, s:O, s:b}", "id", o->id, "host", o->host, "pid",
						   o->pid, "started_at", o->started_at, "clients", o->clients, "self", 0));
	}
	return a;
}

json_t *routestore_status_json(void)
{
	const RouteStore *st = proxy.store;
	if (!st)
		return json_pack("{s:n, s:s, s:b, s:n, s:b, s:n}", "database", "state", "memory only", "connected", 0,
				 "generation", "pending", 0, "last_error");
	bool connected = st->state == RS_READY || st->state == RS_BUSY;
	json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:s, s:o}", "database", st->database, "state",
			      store_state_to_str(st->state), "connected", connected, "pending", st->pending,
			      "instance", st->id, "instances", routestore_instances_json());
	json_object_set_new(o, "generation", st->generation >= 0 ? json_integer((json_int_t)st->generation) : json_null());
	json_object_set_new(o, "last_error", st->last_error[0] ? json_string(st->last_error) : json_null());
	return o;
}
