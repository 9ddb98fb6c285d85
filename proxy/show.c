/*
 * proxy/show.c: the SHOW tables of the command layer (admin.h).
 *
 * Each `show WHAT` builds one table reply, {"ok", "columns", "rows"}, which
 * the admin socket sends as JSON and the console (console.c) as
 * RowDescription, DataRow and CommandComplete. Where PgBouncer has the same
 * SHOW, the columns are PgBouncer 1.18's names, types and order, so that
 * tools written for its console (prometheus-pgbouncer-exporter, scripts)
 * read pgflip's; pgflip's own columns come after them. A PgBouncer column
 * for something pgflip does not have (cancel requests in flight, tested
 * servers, free lists) is 0, which is what it is here.
 *
 * Tables are built from the live objects (Proxy, pools, clients, servers)
 * when asked: nothing here is kept between calls.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include <jansson.h>

#include "proxy/proxy.h"
#include "proxy/admin.h"
#include "proxy/migrator.h"
#include "proxy/pool.h"

/* ---- tables ------------------------------------------------------------ */

/*
 * A table reply with the columns of SPEC: "name:type name:type ...", the
 * types of admin.h ("text", "int4", "int8", "numeric", "bool"); "rows"
 * empty. NULL when out of memory.
 */
static json_t *table_new(const char *spec)
{
	json_t *r = reply_ok(NULL), *cols = json_array(), *rows = json_array();
	if (!r || !cols || !rows) {
		json_decref(r);
		json_decref(cols);
		json_decref(rows);
		return NULL;
	}
	const char *p = spec;
	while (*p) {
		size_t len = strcspn(p, " ");
		const char *colon = memchr(p, ':', len);
		if (colon)
			json_array_append_new(cols, json_pack("{s:s%, s:s%}", "name", p, (size_t)(colon - p), "type",
			                                      colon + 1, len - (size_t)(colon - p) - 1));
		p += len;
		while (*p == ' ')
			p++;
	}
	json_object_set_new(r, "columns", cols);
	json_object_set_new(r, "rows", rows);
	return r;
}

/* Appends ROW (an array, stolen) to table T. */
static void table_add(json_t *t, json_t *row)
{
	if (row)
		json_array_append_new(json_object_get(t, "rows"), row);
}

/* TABLE's rows from the objects of ARRAY: per row, each column's value is
 * the object's member of the column's name (null when missing). */
static void table_add_objects(json_t *t, const json_t *array)
{
	const json_t *cols = json_object_get(t, "columns");
	size_t i, j;
	json_t *obj, *col;
	json_array_foreach(array, i, obj)
	{
		json_t *row = json_array();
		json_array_foreach(cols, j, col)
		{
			json_t *v = json_object_get(obj, json_string_value(json_object_get(col, "name")));
			json_array_append(row, v ? v : json_null());
		}
		table_add(t, row);
	}
}

/* The name = value rows of a two-column (list, items) table. */
static void table_add_item(json_t *t, const char *name, json_int_t v)
{
	table_add(t, json_pack("[s, I]", name, v));
}

/* ---- common values --------------------------------------------------- */

/* Wall-clock time of the monotonic MONO_US, "YYYY-MM-DD HH:MM:SS UTC" as
 * PgBouncer prints its times, into OUT (32 bytes); "" for 0. */
static void wall_text(uint64_t mono_us, char out[32])
{
	out[0] = '\0';
	if (!mono_us)
		return;
	uint64_t now_us = proxy_now_us();
	time_t t = time(NULL) - (time_t)((now_us > mono_us ? now_us - mono_us : 0) / 1000000);
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* The address of FD's peer (PEER) or its own (!PEER): text into HOST (64
 * bytes, "unix" for a Unix socket, "" when unknown) and *PORT (0 then). */
static void fd_addr(int fd, bool peer, char host[64], int *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	host[0] = '\0';
	*port = 0;
	if (fd < 0 ||
	    (peer ? getpeername(fd, (struct sockaddr *)&ss, &len) : getsockname(fd, (struct sockaddr *)&ss, &len)))
		return;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &in->sin_addr, host, 64);
		*port = ntohs(in->sin_port);
	} else if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, 64);
		*port = ntohs(in6->sin6_port);
	} else if (ss.ss_family == AF_UNIX) {
		snprintf(host, 64, "unix");
	}
}

/* The TLS of SSL as PgBouncer shows it ("TLSv1.3/TLS_AES_256_GCM_SHA384"),
 * or "" for none, into OUT (128 bytes). */
static void tls_text(SSL *ssl, char out[128])
{
	out[0] = '\0';
	if (ssl)
		snprintf(out, 128, "%s/%s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}

/* The "ptr" of a client or server, which "link" refers to: its id in hex
 * (ids of clients and servers come from one counter, proxy.next_id). */
static json_t *ptr_json(uint64_t id)
{
	return json_sprintf("0x%llx", (unsigned long long)id);
}

static const char *pool_mode_text(ConfPoolMode m)
{
	return m == CONF_POOL_TRANSACTION ? "transaction" : "session";
}

/* ---- show help, version, config -------------------------------------- */

static json_t *show_help(void)
{
	json_t *r = reply_ok("Console usage");
	json_object_set_new(
	        r, "detail",
	        json_string(
	                "\tSHOW HELP|VERSION|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|LISTS\n"
	                "\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES\n"
	                "\tSHOW ROUTES|VERSIONS|MIGRATION\n"
	                "\tPAUSE [<db>]\n\tRESUME [<db>]\n\tRECONNECT [<db>]\n\tKILL_CLIENT <id>\n"
	                "\tRELOAD\n\tSHUTDOWN\n"
	                "\tROUTE DEFAULT <schema> | ROUTE APP|USER|ADDR <key> <schema> | UNROUTE APP|USER|ADDR <key>\n"
	                "\tCANARY <schema> <percent> [options] | CANARY OFF\n"
	                "\tPROMOTE <schema>\n\tROLLBACK [--db <db>]\n"
	                "\tMIGRATE STATUS|COMPLETE|ROLLBACK|CANCEL [--db <db>]"));
	return r;
}

static json_t *show_version(void)
{
	json_t *t = table_new("version:text");
	if (t)
		table_add(t, json_pack("[s]", "pgflip " PGFLIP_VERSION));
	return t;
}

/* SHOW CONFIG: every [pgflip] key, its value, its default, whether a
 * reload applies it. */
static json_t *show_config(void)
{
	json_t *t = table_new("key:text value:text default:text changeable:text");
	const char *name;
	char value[1024], deflt[1024];
	bool changeable;
	for (size_t i = 0; t && conf_setting_show(proxy.conf, i, &name, value, deflt, sizeof(value), &changeable); i++)
		table_add(t, json_pack("[s, o, o, s]", name, admin_text(value), admin_text(deflt),
		                       changeable ? "yes" : "no"));
	return t;
}

/* ---- show pools, clients, servers ------------------------------------ */

/* SHOW POOLS: clients and servers of each pool by state, the longest wait. */
static json_t *show_pools(void)
{
	json_t *t = table_new("database:text user:text cl_active:int4 cl_waiting:int4 cl_active_cancel_req:int4 "
	                      "cl_waiting_cancel_req:int4 sv_active:int4 sv_active_cancel:int4 sv_being_canceled:int4 "
	                      "sv_idle:int4 sv_used:int4 sv_tested:int4 sv_login:int4 maxwait:int4 maxwait_us:int4 "
	                      "pool_mode:text");
	uint64_t now = proxy_now_ms();
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
	{
		int cl_active = 0, cl_waiting = p->n_waiting, sv[POOL_SERVER_STATES];
		uint64_t maxwait_ms = pool_wait_max_ms(p, now);
		Client *c;
		TAILQ_FOREACH(c, &proxy.clients, link)
		cl_active += c->pool == p && (c->state == CL_IDLE || c->state == CL_ACTIVE);
		pool_count_servers(p, sv);
		table_add(t, json_pack("[o, o, i, i, i, i, i, i, i, i, i, i, i, I, I, s]", admin_text(p->database),
		                       admin_text(p->user), cl_active, cl_waiting, 0, 0,
		                       sv[SV_ACTIVE] + sv[SV_PREPARING], 0, 0, sv[SV_IDLE], sv[SV_RESETTING], 0,
		                       sv[SV_CONNECTING], (json_int_t)(maxwait_ms / 1000),
		                       (json_int_t)(maxwait_ms % 1000) * 1000, pool_mode_text(p->mode)));
	}
	return t;
}

/* The columns SHOW CLIENTS and SHOW SERVERS share (PgBouncer's), then pgflip's. */
#define SHOW_SOCKET_COLUMNS                                                                                            \
	"type:text user:text database:text state:text addr:text port:int4 local_addr:text local_port:int4 "            \
	"connect_time:text request_time:text wait:int4 wait_us:int4 close_needed:int4 ptr:text link:text "             \
	"remote_pid:int4 tls:text application_name:text "

/* One row of SHOW CLIENTS/SERVERS, from what differs between the two. */
typedef struct SocketRow {
	const char *type, *user, *database, *state;
	int fd;
	SSL *ssl;
	uint64_t connect_us, request_us, wait_us;
	bool close_needed;
	uint64_t id, link_id;
	int remote_pid;
	const char *app;
} SocketRow;

static json_t *socket_row(const SocketRow *r)
{
	char addr[64], laddr[64], conn[32], req[32], tls[128];
	int port, lport;
	fd_addr(r->fd, true, addr, &port);
	fd_addr(r->fd, false, laddr, &lport);
	wall_text(r->connect_us, conn);
	wall_text(r->request_us, req);
	tls_text(r->ssl, tls);
	return json_pack("[s, o?, o?, s, s, i, s, i, s, s, I, I, i, o, o, i, s, o]", r->type, admin_text(r->user),
	                 admin_text(r->database), r->state, addr, port, laddr, lport, conn, req,
	                 (json_int_t)(r->wait_us / 1000000), (json_int_t)(r->wait_us % 1000000), r->close_needed,
	                 ptr_json(r->id), r->link_id ? ptr_json(r->link_id) : json_string(""), r->remote_pid, tls,
	                 admin_text(r->app ? r->app : ""));
}

/* Monotonic us of a monotonic ms value of pgflip's clock. */
static uint64_t ms_to_us(uint64_t ms)
{
	return ms * 1000;
}

/* PgBouncer's state words: active (linked or idle between transactions),
 * waiting (for a server), login (not logged in yet). */
static const char *client_state_word(ClientState st)
{
	switch (st) {
	case CL_WAITING:
	case CL_WAIT_LOGIN: return "waiting";
	case CL_STARTUP:
	case CL_AUTH:
	case CL_AUTH_LOOKUP: return "login";
	default: return "active";
	}
}

static json_t *show_clients(void)
{
	json_t *t = table_new(SHOW_SOCKET_COLUMNS "id:int8 route:text pgflip_state:text transactions:int8");
	uint64_t now_ms = proxy_now_ms();
	Client *c;
	TAILQ_FOREACH(c, &proxy.clients, link)
	{
		if (c->state == CL_STARTUP)
			continue;
		bool waiting = c->state == CL_WAITING || c->state == CL_WAIT_LOGIN;
		SocketRow r = {
		        .type = "C",
		        .user = c->user,
		        .database = c->database,
		        .state = client_state_word(c->state),
		        .fd = c->sock.fd,
		        .ssl = c->sock.ssl,
		        .connect_us = ms_to_us(c->connect_ms),
		        .request_us = c->request_us ? c->request_us : ms_to_us(c->connect_ms),
		        .wait_us = waiting ? (now_ms - c->wait_start_ms) * 1000 : 0,
		        .id = c->id,
		        .link_id = c->server ? c->server->id : 0,
		        .app = c->app_name,
		};
		json_t *row = socket_row(&r);
		json_array_append_new(row, json_integer((json_int_t)c->id));
		json_array_append_new(row, c->route ? json_string(c->route) : json_null());
		json_array_append_new(row, json_string(client_state_to_str(c->state)));
		json_array_append_new(row, json_integer((json_int_t)c->n_transactions));
		table_add(t, row);
	}
	return t;
}

/* PgBouncer's words: active (linked), idle, used (being reset), login. */
static const char *server_state_word(ServerState st)
{
	switch (st) {
	case SV_CONNECTING: return "login";
	case SV_IDLE: return "idle";
	case SV_RESETTING: return "used";
	default: return "active";
	}
}

static json_t *show_servers(void)
{
	json_t *t = table_new(SHOW_SOCKET_COLUMNS "id:int8 search_path:text pgflip_state:text");
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
	{
		Server *s;
		TAILQ_FOREACH(s, &p->servers, link)
		{
			int fd = s->sock.in ? s->sock.fd : s->pg ? PQsocket(s->pg) : -1;
			SocketRow r = {
			        .type = "S",
			        .user = p->user,
			        .database = p->database,
			        .state = server_state_word(s->state),
			        .fd = fd,
			        .ssl = s->sock.in ? s->sock.ssl
			               : s->pg    ? PQgetssl(s->pg)
			                          : NULL,
			        .connect_us = ms_to_us(s->connect_start_ms),
			        .request_us = s->client && s->client->request_us
			                              ? s->client->request_us
			                              : ms_to_us(s->idle_since_ms ? s->idle_since_ms : s->login_ms),
			        .close_needed = s->close_needed,
			        .id = s->id,
			        .link_id = s->client ? s->client->id : 0,
			        .remote_pid = s->backend_pid,
			        .app = s->client ? s->client->app_name : "",
			};
			json_t *row = socket_row(&r);
			json_array_append_new(row, json_integer((json_int_t)s->id));
			json_array_append_new(row, s->search_path ? json_string(s->search_path) : json_null());
			json_array_append_new(row, json_string(server_state_to_str(s->state)));
			table_add(t, row);
		}
	}
	return t;
}

/* ---- show databases, lists ------------------------------------------- */

/* The value of libpq keyword KEY in ENTRY, or NULL. */
static const char *entry_option(const ConfDatabase *entry, const char *key)
{
	for (size_t i = 0; entry->keywords && entry->keywords[i]; i++)
		if (!strcmp(entry->keywords[i], key))
			return entry->values[i];
	return NULL;
}

static int db_servers(const char *database)
{
	int n = 0;
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
	if (!strcmp(p->database, database))
		n += p->n_servers;
	return n;
}

static json_t *show_databases(void)
{
	json_t *t = table_new("name:text host:text port:int4 database:text force_user:text pool_size:int4 "
	                      "min_pool_size:int4 reserve_pool:int4 pool_mode:text max_connections:int4 "
	                      "current_connections:int4 paused:int4 disabled:int4");
	const Conf *conf = proxy.conf;
	for (size_t i = 0; i < conf->n_databases; i++) {
		const ConfDatabase *e = &conf->databases[i];
		const char *host = entry_option(e, "host"), *port = entry_option(e, "port");
		if (!host)
			host = entry_option(e, "hostaddr");
		bool paused = proxy.paused || params_get(&proxy.paused_dbs, e->name);
		table_add(t,
		          json_pack("[o, o?, i, o, o?, i, i, i, s?, i, i, i, i]", admin_text(e->name), admin_text(host),
		                    port ? atoi(port) : 5432, admin_text(e->dbname ? e->dbname : e->name),
		                    admin_text(e->user), e->pool_size > 0 ? e->pool_size : conf->default_pool_size,
		                    conf->min_pool_size, conf->reserve_pool_size,
		                    e->pool_mode >= 0 ? pool_mode_text((ConfPoolMode)e->pool_mode) : NULL,
		                    conf->max_db_connections, db_servers(e->name), paused, 0));
	}
	return t;
}

/* Whether NAME is among the pools' users before POOL, or in auth_file. */
static bool user_seen(const Pool *pool, const char *name)
{
	if (conf_find_user(proxy.conf, name))
		return true;
	const Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
	{
		if (p == pool)
			return false;
		if (!strcmp(p->user, name))
			return true;
	}
	return false;
}

/* SHOW LISTS: how many of each object. pgflip keeps no free lists
 * (free_clients, free_servers are 0) and no DNS zones. */
static json_t *show_lists(void)
{
	json_t *t = table_new("list:text items:int4");
	int pools = 0, users = (int)proxy.conf->n_users, servers = 0, dns_names = 0, dns_pending = 0;
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
	{
		pools++;
		servers += p->n_servers;
		users += !user_seen(p, p->user);
		dns_names += p->dns_addr != NULL;
		dns_pending += p->dns_req != NULL;
	}
	table_add_item(t, "databases", (json_int_t)proxy.conf->n_databases + (proxy.conf->admin_db[0] != '\0'));
	table_add_item(t, "users", users);
	table_add_item(t, "pools", pools);
	table_add_item(t, "free_clients", 0);
	table_add_item(t, "used_clients", proxy.n_clients);
	table_add_item(t, "login_clients", proxy.n_startup);
	table_add_item(t, "free_servers", 0);
	table_add_item(t, "used_servers", servers);
	table_add_item(t, "dns_names", dns_names);
	table_add_item(t, "dns_zones", 0);
	table_add_item(t, "dns_queries", (json_int_t)proxy.n_dns_queries);
	table_add_item(t, "dns_pending", dns_pending);
	return t;
}

/* ---- show stats ------------------------------------------------------ */

/* The databases SHOW STATS lists: the [databases] entries (not "*"), then
 * the databases of pools that came through "*". Calls FN(NAME, ARG) for
 * each once. */
static void each_database(void (*fn)(const char *name, void *arg), void *arg)
{
	const Conf *conf = proxy.conf;
	for (size_t i = 0; i < conf->n_databases; i++)
		if (strcmp(conf->databases[i].name, "*") != 0)
			fn(conf->databases[i].name, arg);
	Pool *p, *q;
	TAILQ_FOREACH(p, &proxy.pools, link)
	{
		bool named = false;
		for (size_t i = 0; i < conf->n_databases && !named; i++)
			named = !strcmp(conf->databases[i].name, p->database);
		for (q = TAILQ_FIRST(&proxy.pools); q != p && !named; q = TAILQ_NEXT(q, link))
			named = !strcmp(q->database, p->database);
		if (!named)
			fn(p->database, arg);
	}
}

/* DATABASE's totals (its pools' sum) and averages over the last
 * stats_period: rates are summed over its pools, times per item taken from
 * the summed growth. */
static void db_stats(const char *database, PoolStats *total, PoolStats *avg)
{
	PoolStats delta = {0};
	memset(total, 0, sizeof(*total));
	memset(avg, 0, sizeof(*avg));
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
	{
		if (strcmp(p->database, database) != 0)
			continue;
		stats_add(total, &p->stats);
		stats_add(&delta, &p->stats_delta);
		PoolStats a = stats_averages(&p->stats_delta, p->stats_delta_us);
		a.xact_time_us = a.query_time_us = 0;
		stats_add(avg, &a);
	}
	avg->xact_time_us = delta.xact_count ? delta.xact_time_us / delta.xact_count : 0;
	avg->query_time_us = delta.query_count ? delta.query_time_us / delta.query_count : 0;
}

typedef enum { STATS_ALL, STATS_TOTALS, STATS_AVERAGES } StatsKind;

typedef struct StatsTable {
	json_t *t;
	StatsKind kind;
} StatsTable;

static json_t *stats_values(const PoolStats *s)
{
	return json_pack("[I, I, I, I, I, I, I]", (json_int_t)s->xact_count, (json_int_t)s->query_count,
	                 (json_int_t)s->bytes_received, (json_int_t)s->bytes_sent, (json_int_t)s->xact_time_us,
	                 (json_int_t)s->query_time_us, (json_int_t)s->wait_time_us);
}

static void stats_row(const char *database, void *arg)
{
	StatsTable *st = arg;
	PoolStats total, avg;
	db_stats(database, &total, &avg);
	json_t *row = json_pack("[o]", admin_text(database));
	json_t *tv = st->kind != STATS_AVERAGES ? stats_values(&total) : NULL;
	json_t *av = st->kind != STATS_TOTALS ? stats_values(&avg) : NULL;
	if (tv)
		json_array_extend(row, tv);
	if (av)
		json_array_extend(row, av);
	json_decref(tv);
	json_decref(av);
	if (st->kind == STATS_ALL) /* PgBouncer before 1.8: total_requests */
		json_array_append_new(row, json_integer((json_int_t)total.query_count));
	table_add(st->t, row);
}

#define STATS_COLUMNS(prefix, recv, sent)                                                                              \
	prefix "xact_count:numeric " prefix "query_count:numeric " prefix recv ":numeric " prefix sent                 \
	       ":numeric " prefix "xact_time:numeric " prefix "query_time:numeric " prefix "wait_time:numeric"

static json_t *show_stats(StatsKind kind)
{
	const char *spec = kind == STATS_ALL
	                           ? "database:text " STATS_COLUMNS("total_", "received", "sent") " " STATS_COLUMNS(
	                                     "avg_", "recv", "sent") " total_requests:numeric"
	                           : "database:text " STATS_COLUMNS("", "bytes_received", "bytes_sent");
	StatsTable st = {table_new(spec), kind};
	if (st.t)
		each_database(stats_row, &st);
	return st.t;
}

/* ---- show routes, versions, migration -------------------------------- */

static void route_row(json_t *t, const char *kind, const char *key, const char *schema, int percent)
{
	const RouteStatsEntry *e = routestats_find(&proxy.rstats, schema);
	json_t *stats = admin_route_stats(schema);
	json_t *none = json_null();
	json_t *p50 = json_object_get(stats, "p50_us"), *p99 = json_object_get(stats, "p99_us");
	json_t *tps = json_object_get(stats, "tps");
	table_add(t,
	          json_pack("[s, s?, s, o, I, I, O, O, O]", kind, key, schema,
	                    percent >= 0 ? json_integer(percent) : json_null(), (json_int_t)(e ? e->transactions : 0),
	                    (json_int_t)(e ? e->failed : 0), p50 ? p50 : none, p99 ? p99 : none, tps ? tps : none));
	json_decref(stats);
}

/* SHOW ROUTES: the default, each pin, the canary: one row each, with the
 * stats of its schema. */
static json_t *show_routes(void)
{
	json_t *t = table_new("kind:text key:text schema:text percent:int4 transactions:int8 "
	                      "failed_transactions:int8 p50_us:int8 p99_us:int8 tps:numeric");
	const Router *r = &proxy.router;
	if (!t)
		return NULL;
	if (r->default_schema)
		route_row(t, "default", NULL, r->default_schema, -1);
	for (size_t i = 0; i < r->n_pins; i++)
		route_row(t, router_pin_kind_to_str(r->pins[i].kind), r->pins[i].key, r->pins[i].schema, -1);
	if (r->canary_schema)
		route_row(t, "canary", conf_canary_key_to_str(r->canary_key), r->canary_schema, r->canary_percent);
	return t;
}

/* A table of the objects under KEY of the reply of the migrator's command
 * ARGV (an array, or one object), in the columns of SPEC; the migrator's
 * error as it is. */
static json_t *migrator_table(int argc, char **argv, const char *key, const char *spec)
{
	json_t *r = migrator_command(argc, argv, NULL);
	if (!r || !json_is_true(json_object_get(r, "ok")))
		return r;
	json_t *t = table_new(spec), *v = json_object_get(r, key);
	if (t && json_is_array(v)) {
		table_add_objects(t, v);
	} else if (t && json_is_object(v)) {
		json_t *one = json_pack("[O]", v);
		table_add_objects(t, one);
		json_decref(one);
	}
	json_decref(r);
	return t;
}

static json_t *show_versions(void)
{
	char versions[] = "versions";
	char *argv[] = {versions};
	return migrator_table(1, argv, "versions",
	                      "database:text version_schema:text migration:text state:text default:bool routes:text "
	                      "clients:int4 clients_elsewhere:int4 stats:text");
}

static json_t *show_migration(void)
{
	char migrate[] = "migrate", status[] = "status";
	char *argv[] = {migrate, status};
	return migrator_table(2, argv, "migration",
	                      "running:bool command:text database:text phase:text migration:text version_schema:text "
	                      "step:int4 steps:int4 note:text table:text rows_done:int8 rows_total:int8 "
	                      "rows_per_s:numeric eta_s:numeric lock_wait_ms:int8 elapsed_s:numeric blocked_by:text "
	                      "result:text");
}

/* ---- dispatch -------------------------------------------------------- */

static json_t *show_stats_all(void)
{
	return show_stats(STATS_ALL);
}
static json_t *show_stats_totals(void)
{
	return show_stats(STATS_TOTALS);
}
static json_t *show_stats_averages(void)
{
	return show_stats(STATS_AVERAGES);
}

/* Every SHOW: its word (lower-case) and the function that builds it. */
static const struct {
	const char *what;
	json_t *(*fn)(void);
} show_tables[] = {
        {"help", show_help},
        {"version", show_version},
        {"config", show_config},
        {"pools", show_pools},
        {"clients", show_clients},
        {"servers", show_servers},
        {"databases", show_databases},
        {"lists", show_lists},
        {"stats", show_stats_all},
        {"stats_totals", show_stats_totals},
        {"stats_averages", show_stats_averages},
        {"routes", show_routes},
        {"versions", show_versions},
        {"migration", show_migration},
};

json_t *show_command(int argc, char **argv)
{
	const char *what = argc >= 2 ? argv[1] : "";
	if (argc > 2)
		return reply_error_state("42601", "show %s takes no arguments", what);
	for (size_t i = 0; i < sizeof(show_tables) / sizeof(show_tables[0]); i++) {
		if (strcmp(what, show_tables[i].what) != 0)
			continue;
		json_t *t = show_tables[i].fn();
		return t ? t : reply_error_state("53200", "out of memory building the table");
	}
	return reply_error_state("42601", "unknown SHOW \"%s\" (SHOW HELP lists them)", what);
}
