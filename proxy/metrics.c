/*
 * proxy/metrics.c: the Prometheus endpoint. metrics_listen = HOST:PORT
 * serves GET /metrics (and HEAD) in the text exposition format, version
 * 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/);
 * any other path is 404, any other method 501 (evhttp's answer). evhttp does the
 * HTTP, on the event loop; nothing here parses a request.
 *
 * Design. A scrape reads what the admin socket reads (DESIGN.md decision
 * 10): the Proxy, Pool and RouteStats structs the `status`, `pools` and
 * `routes` commands are made of, pool_count_servers and pool_wait_max_ms
 * that `pools` calls too, routestore_clients_here and
 * routestore_status_json of `routes`, and the reply of the `migrate
 * status` command itself (migrator_command), so a number means the same
 * in `pgflip ctl` and in Prometheus. The counters that only the metrics
 * show are PoolMetricCounters (bytes, queries; proxy.h) and
 * RouteStatsPromLatency (routestats.h).
 *
 * Names follow Prometheus' conventions: the pgflip_ prefix, _total on
 * counters, base units (_seconds, _bytes), labels database and user (of
 * the pool: the [databases] entry and the upstream user) where a number
 * is a pool's, route where it is a version schema's. Label values are
 * made valid UTF-8 (admin_text) and escaped (\\, \", \n).
 *
 * The endpoint has no authentication: it is meant for 127.0.0.1 or a
 * private network, as the default example says. It shows names (databases,
 * users, schemas, migrations), never a secret.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>
#include <jansson.h>

#include "migrate/api.h"
#include "proxy/proxy.h"
#include "proxy/admin.h"
#include "proxy/client.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/drain.h"
#include "proxy/migrator.h"
#include "proxy/pool.h"
#include "proxy/routestore.h"
#include "proxy/server.h"

/* Bounds of a request (DESIGN.md decision 3): a scraper sends a short GET
 * without a body; a connection silent this long (s) is closed. */
#define METRICS_MAX_HEADERS 8192
#define METRICS_MAX_BODY 1024
#define METRICS_TIMEOUT_S 10

/* A label set as written between the braces: `database="x",user="y"`.
 * Names and schemas are at most CONF_MAX_IDENT bytes, a pool's user
 * comes from a client (bounded by the startup packet) and is cut here. */
#define METRICS_LABELS_MAX 1024

/* The number of ClientState values. */
#define METRICS_CLIENT_STATES (CL_CLOSING + 1)

typedef struct Labels {
	char text[METRICS_LABELS_MAX];
	size_t n;
} Labels;

/* Appends NAME="VALUE" to L, VALUE made UTF-8 and escaped. A label that
 * does not fit is left out whole. */
static void labels_add(Labels *l, const char *name, const char *value)
{
	json_t *utf8 = admin_text(value ? value : "");
	const char *v = json_string_value(utf8);
	char buf[METRICS_LABELS_MAX];
	size_t o = (size_t)snprintf(buf, sizeof(buf), "%s%s=\"", l->n ? "," : "", name);
	for (const char *p = v ? v : ""; *p && o + 4 < sizeof(buf); p++) {
		if (*p == '\\' || *p == '"')
			buf[o++] = '\\';
		if (*p == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
			continue;
		}
		buf[o++] = *p;
	}
	json_decref(utf8);
	if (o + 2 > sizeof(buf) || l->n + o + 2 > sizeof(l->text))
		return;
	buf[o++] = '"';
	memcpy(l->text + l->n, buf, o);
	l->n += o;
	l->text[l->n] = '\0';
}

static void labels_pool(Labels *l, const Pool *p)
{
	l->n = 0;
	l->text[0] = '\0';
	labels_add(l, "database", p->database);
	labels_add(l, "user", p->user);
}

static void labels_one(Labels *l, const char *name, const char *value)
{
	l->n = 0;
	l->text[0] = '\0';
	labels_add(l, name, value);
}

/* The writer of one scrape: OUT, and whether every append succeeded. */
typedef struct Scrape {
	struct evbuffer *out;
	bool ok;
} Scrape;

static void family(Scrape *s, const char *name, const char *type, const char *help)
{
	if (evbuffer_add_printf(s->out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type) < 0)
		s->ok = false;
}

/* NAME{LABELS} V: an integer (counters, counts). LABELS may be NULL. */
static void sample_u64(Scrape *s, const char *name, const Labels *l, uint64_t v)
{
	int rc = l && l->n ? evbuffer_add_printf(s->out, "%s{%s} %" PRIu64 "\n", name, l->text, v)
			   : evbuffer_add_printf(s->out, "%s %" PRIu64 "\n", name, v);
	if (rc < 0)
		s->ok = false;
}

/* NAME{LABELS} V: a real number (seconds, ratios). */
static void sample_f64(Scrape *s, const char *name, const Labels *l, double v)
{
	int rc = l && l->n ? evbuffer_add_printf(s->out, "%s{%s} %.9g\n", name, l->text, v)
			   : evbuffer_add_printf(s->out, "%s %.9g\n", name, v);
	if (rc < 0)
		s->ok = false;
}

/* ---- the process ------------------------------------------------------------ */

static void write_process(Scrape *s)
{
	Labels l;
	family(s, "pgflip_info", "gauge", "pgflip's version, as a label; always 1.");
	labels_one(&l, "version", PGFLIP_VERSION);
	sample_u64(s, "pgflip_info", &l, 1);
	family(s, "pgflip_start_time_seconds", "gauge", "When pgflip started, in seconds since the Unix epoch.");
	sample_u64(s, "pgflip_start_time_seconds", NULL, (uint64_t)proxy.start_time);
	family(s, "pgflip_client_connections_total", "counter", "Client connections accepted since start.");
	sample_u64(s, "pgflip_client_connections_total", NULL, proxy.n_clients_total);
	family(s, "pgflip_paused", "gauge", "1 while paused (pgflip ctl pause): new transactions wait.");
	sample_u64(s, "pgflip_paused", NULL, proxy.paused);
	const DrainStats *d = drain_stats();
	family(s, "pgflip_drain_windows_total", "counter",
	       "Drain windows (ddl_drain_timeout) by result: drained (the step ran), timed_out, refused (not pgflip's locks).");
	labels_one(&l, "result", "drained");
	sample_u64(s, "pgflip_drain_windows_total", &l, d->drained);
	labels_one(&l, "result", "timed_out");
	sample_u64(s, "pgflip_drain_windows_total", &l, d->timed_out);
	labels_one(&l, "result", "refused");
	sample_u64(s, "pgflip_drain_windows_total", &l, d->refused);
	family(s, "pgflip_drain_held_seconds_total", "counter", "Time drain windows held new transactions, in total.");
	sample_f64(s, "pgflip_drain_held_seconds_total", NULL, d->held_us / 1e6);
	family(s, "pgflip_event_loop_lag_seconds", "gauge",
	       "How late the event loop ran its 100 ms timer, the worst over the last 10 s (status loop_lag_ms).");
	sample_f64(s, "pgflip_event_loop_lag_seconds", NULL, (double)proxy_loop_lag_recent_ms() / 1000.0);
}

/* ---- pools: clients and servers by state, waits, traffic ------------------------ */

/* The pools in list order, and each one's clients by state; clients that
 * have no pool yet (logging in) count in row N_POOLS. */
typedef struct PoolTable {
	const Pool **pools;
	size_t n_pools;
	int (*clients)[METRICS_CLIENT_STATES]; /* n_pools + 1 rows */
} PoolTable;

static bool pool_table_build(PoolTable *t)
{
	memset(t, 0, sizeof(*t));
	const Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
		t->n_pools++;
	t->pools = calloc(t->n_pools + 1, sizeof(*t->pools));
	t->clients = calloc(t->n_pools + 1, sizeof(*t->clients));
	if (!t->pools || !t->clients)
		return false;
	size_t i = 0;
	TAILQ_FOREACH(p, &proxy.pools, link)
		t->pools[i++] = p;
	const Client *c;
	TAILQ_FOREACH(c, &proxy.clients, link) {
		size_t row = t->n_pools;
		for (size_t k = 0; c->pool && k < t->n_pools; k++)
			if (t->pools[k] == c->pool)
				row = k;
		if ((int)c->state >= 0 && c->state < METRICS_CLIENT_STATES)
			t->clients[row][c->state]++;
	}
	return true;
}

static void pool_table_free(PoolTable *t)
{
	free(t->pools);
	free(t->clients);
}

static void write_clients(Scrape *s, const PoolTable *t)
{
	Labels l;
	family(s, "pgflip_clients", "gauge",
	       "Client connections by state; those still logging in have empty database and user.");
	for (size_t row = 0; row <= t->n_pools; row++) {
		for (int st = 0; st < METRICS_CLIENT_STATES; st++) {
			bool login = st == CL_STARTUP || st == CL_AUTH || st == CL_AUTH_LOOKUP;
			if (st == CL_CLOSING || (row == t->n_pools) != login)
				continue; /* a pool's clients are past login; the closing are gone from the list */
			l.n = 0;
			labels_add(&l, "database", row < t->n_pools ? t->pools[row]->database : "");
			labels_add(&l, "user", row < t->n_pools ? t->pools[row]->user : "");
			labels_add(&l, "state", client_state_to_str((ClientState)st));
			sample_u64(s, "pgflip_clients", &l, (uint64_t)t->clients[row][st]);
		}
	}
}

static void write_servers(Scrape *s, const PoolTable *t)
{
	Labels l;
	family(s, "pgflip_servers", "gauge", "Server connections by state.");
	for (size_t i = 0; i < t->n_pools; i++) {
		int by_state[POOL_SERVER_STATES];
		pool_count_servers(t->pools[i], by_state);
		for (int st = 0; st < POOL_SERVER_STATES; st++) {
			if (st == SV_CLOSING)
				continue; /* closing servers are in the graveyard, not in a pool */
			labels_pool(&l, t->pools[i]);
			labels_add(&l, "state", server_state_to_str((ServerState)st));
			sample_u64(s, "pgflip_servers", &l, (uint64_t)by_state[st]);
		}
	}
}

/* One sample per pool of a family: the value GET gives for each pool. */
typedef enum {
	POOL_WAITING,
	POOL_WAIT_MAX,
	POOL_SIZE,
	POOL_TRANSACTIONS,
	POOL_QUERIES,
	POOL_RECEIVED,
	POOL_SENT,
	POOL_ROUTE_SETS,
} PoolValue;

typedef struct PoolFamily {
	const char *name;
	const char *type;
	PoolValue value;
	const char *help;
} PoolFamily;

static const PoolFamily pool_families[] = {
	{"pgflip_clients_waiting", "gauge", POOL_WAITING, "Clients waiting for a server (cl_waiting)."},
	{"pgflip_client_wait_max_seconds", "gauge", POOL_WAIT_MAX,
	 "How long the longest-waiting client has waited for a server (maxwait)."},
	{"pgflip_pool_size", "gauge", POOL_SIZE, "The pool's size: servers it may open (pool_size)."},
	{"pgflip_transactions_total", "counter", POOL_TRANSACTIONS, "Transactions the pool's clients ended."},
	{"pgflip_queries_total", "counter", POOL_QUERIES,
	 "Client requests the pool's servers answered with ReadyForQuery (SHOW STATS total_query_count)."},
	{"pgflip_received_bytes_total", "counter", POOL_RECEIVED,
	 "Bytes received from the pool's clients after their login (inside TLS)."},
	{"pgflip_sent_bytes_total", "counter", POOL_SENT, "Bytes sent to the pool's clients after their login (inside TLS)."},
	{"pgflip_route_sets_total", "counter", POOL_ROUTE_SETS,
	 "Times pgflip set search_path on a server of the pool to give it a client's route."},
};

static void write_pool_family(Scrape *s, const PoolTable *t, const PoolFamily *f, uint64_t now_ms)
{
	Labels l;
	family(s, f->name, f->type, f->help);
	for (size_t i = 0; i < t->n_pools; i++) {
		const Pool *p = t->pools[i];
		const PoolStats *k = &p->stats;
		labels_pool(&l, p);
		switch (f->value) {
		case POOL_WAITING: sample_u64(s, f->name, &l, (uint64_t)p->n_waiting); break;
		case POOL_WAIT_MAX: sample_f64(s, f->name, &l, (double)pool_wait_max_ms(p, now_ms) / 1000.0); break;
		case POOL_SIZE: sample_u64(s, f->name, &l, (uint64_t)p->size); break;
		case POOL_TRANSACTIONS: sample_u64(s, f->name, &l, p->stats.xact_count); break;
		case POOL_QUERIES: sample_u64(s, f->name, &l, k->query_count); break;
		case POOL_RECEIVED: sample_u64(s, f->name, &l, k->bytes_received); break;
		case POOL_SENT: sample_u64(s, f->name, &l, k->bytes_sent); break;
		case POOL_ROUTE_SETS: sample_u64(s, f->name, &l, p->n_route_sets); break;
		}
	}
}

/* Transactions per pool and route: `pools` transactions_by_route. */
static void write_pool_routes(Scrape *s, const PoolTable *t)
{
	Labels l;
	family(s, "pgflip_pool_route_transactions_total", "counter", "Transactions the pool's clients ended, by route.");
	for (size_t i = 0; i < t->n_pools; i++) {
		const Pool *p = t->pools[i];
		for (size_t r = 0; r < p->n_route_tx && r < proxy.rstats.n; r++) {
			if (!p->route_tx[r])
				continue;
			labels_pool(&l, p);
			labels_add(&l, "route", proxy.rstats.entries[r]->route);
			sample_u64(s, "pgflip_pool_route_transactions_total", &l, p->route_tx[r]);
		}
	}
}

static void write_pools(Scrape *s)
{
	PoolTable t;
	if (!pool_table_build(&t)) {
		pool_table_free(&t);
		s->ok = false;
		return;
	}
	uint64_t now_ms = proxy_now_ms();
	write_clients(s, &t);
	write_servers(s, &t);
	for (size_t i = 0; i < sizeof(pool_families) / sizeof(pool_families[0]); i++)
		write_pool_family(s, &t, &pool_families[i], now_ms);
	write_pool_routes(s, &t);
	pool_table_free(&t);
}

/* ---- routes: per version schema ---------------------------------------------- */

static void write_route_counts(Scrape *s)
{
	Labels l;
	family(s, "pgflip_route_transactions_total", "counter", "Transactions ended on the route (version schema).");
	for (size_t i = 0; i < proxy.rstats.n; i++) {
		labels_one(&l, "route", proxy.rstats.entries[i]->route);
		sample_u64(s, "pgflip_route_transactions_total", &l, proxy.rstats.entries[i]->transactions);
	}
	family(s, "pgflip_route_failed_transactions_total", "counter",
	       "Transactions on the route in which the client received an ErrorResponse.");
	for (size_t i = 0; i < proxy.rstats.n; i++) {
		labels_one(&l, "route", proxy.rstats.entries[i]->route);
		sample_u64(s, "pgflip_route_failed_transactions_total", &l, proxy.rstats.entries[i]->failed);
	}
	family(s, "pgflip_route_errors_total", "counter",
	       "ErrorResponses the route's clients received, by SQLSTATE class (its first two characters; ?? when malformed).");
	for (size_t i = 0; i < proxy.rstats.n; i++) {
		const RouteStatsEntry *e = proxy.rstats.entries[i];
		char cls[3];
		for (size_t k = 0; k < ROUTESTATS_CLASSES; k++) {
			if (!e->errors[k])
				continue;
			labels_one(&l, "route", e->route);
			labels_add(&l, "class", routestats_class_name(k, cls));
			sample_u64(s, "pgflip_route_errors_total", &l, e->errors[k]);
		}
	}
}

/* The latency histogram: cumulative buckets, +Inf, _sum and _count. */
static void write_route_latency(Scrape *s)
{
	Labels l;
	family(s, "pgflip_route_transaction_duration_seconds", "histogram",
	       "Transaction latency on the route, from the client's first message to the ReadyForQuery that ends it.");
	for (size_t i = 0; i < proxy.rstats.n; i++) {
		const RouteStatsEntry *e = proxy.rstats.entries[i];
		uint64_t cumulative = 0;
		for (size_t b = 0; b <= ROUTESTATS_LE_N; b++) {
			char le[32];
			if (b < ROUTESTATS_LE_N) {
				cumulative += e->prom.le[b];
				snprintf(le, sizeof(le), "%g", (double)routestats_le_bound(b) / 1e6);
			} else {
				cumulative = e->latency_count;
				snprintf(le, sizeof(le), "+Inf");
			}
			labels_one(&l, "route", e->route);
			labels_add(&l, "le", le);
			sample_u64(s, "pgflip_route_transaction_duration_seconds_bucket", &l, cumulative);
		}
		labels_one(&l, "route", e->route);
		sample_f64(s, "pgflip_route_transaction_duration_seconds_sum", &l, (double)e->prom.sum_us / 1e6);
		sample_u64(s, "pgflip_route_transaction_duration_seconds_count", &l, e->latency_count);
	}
}

/* Clients per route, as the route store's heartbeat counts them. */
static void write_route_clients(Scrape *s)
{
	Labels l;
	family(s, "pgflip_route_clients", "gauge",
	       "Logged-in clients of this instance by the route their next statement runs with.");
	json_t *here = routestore_clients_here();
	const char *route;
	json_t *n;
	json_object_foreach(here, route, n) {
		labels_one(&l, "route", route);
		sample_u64(s, "pgflip_route_clients", &l, (uint64_t)json_integer_value(n));
	}
	json_decref(here);
}

/* The routing table: generation, default, canary, the store's state. */
static void write_router(Scrape *s)
{
	const Router *r = &proxy.router;
	Labels l;
	family(s, "pgflip_routes_generation", "gauge", "The route table's generation here: bumped at every change.");
	sample_u64(s, "pgflip_routes_generation", NULL, r->generation);
	family(s, "pgflip_route_default", "gauge", "The default route (as a label); always 1.");
	labels_one(&l, "route", r->default_schema);
	sample_u64(s, "pgflip_route_default", &l, 1);
	family(s, "pgflip_route_pins", "gauge", "Pins of the route table (app., user. and addr. routes).");
	sample_u64(s, "pgflip_route_pins", NULL, r->n_pins);
	family(s, "pgflip_canary_share_ratio", "gauge",
	       "The canary's share of unpinned clients (0..1), labelled by its route; absent without a canary.");
	if (r->canary_schema) {
		labels_one(&l, "route", r->canary_schema);
		sample_f64(s, "pgflip_canary_share_ratio", &l, r->canary_percent / 100.0);
	}
	json_t *st = routestore_status_json();
	json_t *gen = json_object_get(st, "generation");
	family(s, "pgflip_route_store_connected", "gauge", "1 while the route store's database connection is up.");
	sample_u64(s, "pgflip_route_store_connected", NULL, json_is_true(json_object_get(st, "connected")));
	family(s, "pgflip_route_store_generation", "gauge",
	       "The generation of pgflip.route_state last read or written; absent before the first read.");
	if (json_is_integer(gen))
		sample_u64(s, "pgflip_route_store_generation", NULL, (uint64_t)json_integer_value(gen));
	json_decref(st);
}

/* ---- the migration: the reply of `migrate status` ------------------------------- */

/* Every phase of MigratePhase, for the state set pgflip_migration_phase. */
static void write_phase(Scrape *s, const char *current)
{
	Labels l;
	family(s, "pgflip_migration_phase", "gauge",
	       "The migration worker's phase (migrate status): 1 for the current one, 0 for the others.");
	for (int ph = MIGRATE_PHASE_IDLE; ph <= MIGRATE_PHASE_CANCELLED; ph++) {
		const char *name = migrate_phase_name((MigratePhase)ph);
		labels_one(&l, "phase", name);
		sample_u64(s, "pgflip_migration_phase", &l, current && strcmp(current, name) == 0);
	}
}

static void write_migration(Scrape *s)
{
	char cmd[] = "migrate", sub[] = "status";
	char *argv[] = {cmd, sub};
	json_t *reply = migrator_command(2, argv, NULL);
	json_t *m = json_object_get(reply, "migration");
	family(s, "pgflip_migration_running", "gauge", "1 while a migration job runs in pgflip.");
	sample_u64(s, "pgflip_migration_running", NULL, json_is_true(json_object_get(m, "running")));
	write_phase(s, json_string_value(json_object_get(m, "phase")));
	Labels l;
	labels_one(&l, "migration", json_string_value(json_object_get(m, "migration")));
	labels_add(&l, "table", json_string_value(json_object_get(m, "table")));
	bool backfill = json_is_string(json_object_get(m, "table"));
	json_int_t total = json_integer_value(json_object_get(m, "rows_total"));
	family(s, "pgflip_backfill_rows_done", "gauge", "Rows the current or last backfill step has done.");
	if (backfill)
		sample_u64(s, "pgflip_backfill_rows_done", &l, (uint64_t)json_integer_value(json_object_get(m, "rows_done")));
	family(s, "pgflip_backfill_rows_expected", "gauge",
	       "Rows the current or last backfill step has to do (an estimate; absent when unknown).");
	if (backfill && total >= 0)
		sample_u64(s, "pgflip_backfill_rows_expected", &l, (uint64_t)total);
	family(s, "pgflip_backfill_rows_per_second", "gauge", "The backfill's recent rate in rows per second.");
	if (backfill)
		sample_f64(s, "pgflip_backfill_rows_per_second", &l, json_real_value(json_object_get(m, "rows_per_s")));
	family(s, "pgflip_migration_lock_wait_seconds", "gauge",
	       "How long the migration's current statement has waited for a lock; 0 when it does not wait.");
	sample_f64(s, "pgflip_migration_lock_wait_seconds", NULL,
		   (double)json_integer_value(json_object_get(m, "lock_wait_ms")) / 1000.0);
	json_decref(reply);
}

bool metrics_write(struct evbuffer *out)
{
	Scrape s = {out, true};
	write_process(&s);
	write_pools(&s);
	write_route_counts(&s);
	write_route_latency(&s);
	write_route_clients(&s);
	write_router(&s);
	write_migration(&s);
	return s.ok;
}

/* ---- HTTP ----------------------------------------------------------------- */

static void metrics_request_cb(struct evhttp_request *req, void *arg)
{
	(void)arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	if (!path || strcmp(path, "/metrics") != 0) {
		evhttp_add_header(headers, "Content-Type", "text/plain; charset=utf-8");
		struct evbuffer *body = evbuffer_new();
		if (body)
			evbuffer_add_printf(body, "not found: pgflip serves /metrics\n");
		evhttp_send_reply(req, HTTP_NOTFOUND, "Not Found", body);
		if (body)
			evbuffer_free(body);
		return;
	}
	struct evbuffer *body = evbuffer_new();
	if (!body || !metrics_write(body)) {
		log_warning("metrics: out of memory building the reply");
		evhttp_send_error(req, HTTP_INTERNAL, "out of memory");
		if (body)
			evbuffer_free(body);
		return;
	}
	evhttp_add_header(headers, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	if (method == EVHTTP_REQ_HEAD)
		evbuffer_drain(body, evbuffer_get_length(body));
	evhttp_send_reply(req, HTTP_OK, "OK", body);
	evbuffer_free(body);
}

bool metrics_start(char *err, size_t errlen)
{
	const char *listen = proxy.conf->metrics_listen;
	if (!listen || !*listen)
		return true;
	char host[CONF_MAX_HOST + 1];
	int port;
	if (!conf_hostport_parse(listen, host, sizeof(host), &port)) {
		snprintf(err, errlen, "metrics_listen: '%s' is not HOST:PORT", listen); /* conf_load checked it */
		return false;
	}
	proxy.metrics_http = evhttp_new(proxy.base);
	if (!proxy.metrics_http) {
		snprintf(err, errlen, "metrics_listen: cannot create the HTTP server");
		return false;
	}
	/* other methods: evhttp answers 501 Not Implemented */
	evhttp_set_allowed_methods(proxy.metrics_http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(proxy.metrics_http, METRICS_MAX_HEADERS);
	evhttp_set_max_body_size(proxy.metrics_http, METRICS_MAX_BODY);
	evhttp_set_timeout(proxy.metrics_http, METRICS_TIMEOUT_S);
	evhttp_set_gencb(proxy.metrics_http, metrics_request_cb, NULL);
	if (!evhttp_bind_socket_with_handle(proxy.metrics_http, host, (ev_uint16_t)port)) {
		snprintf(err, errlen, "cannot listen on metrics_listen %s: %s", listen, strerror(errno));
		metrics_stop();
		return false;
	}
	log_info("metrics on http://%s/metrics", listen);
	return true;
}

void metrics_stop(void)
{
	if (proxy.metrics_http)
		evhttp_free(proxy.metrics_http);
	proxy.metrics_http = NULL;
}
