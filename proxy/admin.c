/*
 * proxy/admin.c: the admin command layer and its Unix-socket front end.
 *
 * One command a line, one JSON object a line in reply, always with "ok".
 * admin_execute() is the command layer: it knows nothing of sockets, and
 * every front end calls it: this socket (admin_command), the psql console
 * (console.c); the SHOW tables are show.c's.
 *
 * Who may ask: the peer of each connection is read with SO_PEERCRED. Root,
 * the uid pgflip runs as and the OS users named in admin_users may send
 * every command; stats_users may send the read-only ones (status, routes,
 * clients, pools, show, versions, migrate status); anyone else gets
 * "permission denied" (42501), and is logged. (The console names its peer
 * by database user instead: admin_access_user.)
 * Every command that changes something is logged with the uid and user
 * name that sent it. The socket is created 0600; only when admin_users or
 * stats_users name other OS users is it opened to them (0666), and then
 * the peer check is what keeps everyone else out.
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "proxy/proxy.h"
#include "proxy/admin.h"
#include "proxy/drain.h"
#include "proxy/client.h"
#include "proxy/pool.h"
#include "proxy/log.h"
#include "proxy/migrator.h"
#include "proxy/routestore.h"

/* A command line longer than this is refused: commands are short. */
#define ADMIN_MAX_LINE 4096
/* A JSON request ({"command": [...], "file": ..., "content": ...}) may
 * carry a migration file: up to this many bytes. */
#define ADMIN_MAX_REQUEST (16 * 1024 * 1024)
#define ADMIN_MAX_ARGS 16

static struct evconnlistener *admin_listener;
static char *admin_path;

static json_t *reply_error_v(const char *sqlstate, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static json_t *reply_error_v(const char *sqlstate, const char *fmt, va_list ap)
{
	char text[1024];
	vsnprintf(text, sizeof(text), fmt, ap);
	return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", text, "sqlstate", sqlstate);
}

json_t *reply_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_t *r = reply_error_v("22023", fmt, ap);
	va_end(ap);
	return r;
}

json_t *reply_error_state(const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	json_t *r = reply_error_v(sqlstate, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * A JSON string for text from a client or a server, which may not be UTF-8
 * (an application_name of "\xff"): valid UTF-8 as is, else every byte of an
 * invalid sequence written as the four characters \xNN, so that the row is
 * shown rather than dropped. NULL stays NULL (for "s:o?").
 */
json_t *admin_text(const char *s)
{
	if (!s)
		return NULL;
	json_t *j = json_string(s);
	if (j)
		return j;
	size_t n = strlen(s);
	char *out = malloc(4 * n + 1);
	if (!out)
		return json_string("?");
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t len = 1;
		unsigned char ch = (unsigned char)s[i];
		if (ch >= 0xc2 && ch <= 0xf4)
			len = ch < 0xe0 ? 2 : ch < 0xf0 ? 3 : 4;
		json_t *piece = len > 1 && i + len <= n ? json_stringn(s + i, len) : NULL;
		if (ch < 0x80 || piece) {
			memcpy(out + o, s + i, ch < 0x80 ? 1 : len);
			o += ch < 0x80 ? 1 : len;
			i += ch < 0x80 ? 1 : len;
		} else {
			o += (size_t)snprintf(out + o, 5, "\\x%02x", ch);
			i++;
		}
		json_decref(piece);
	}
	out[o] = '\0';
	j = json_string(out);
	free(out);
	return j ? j : json_string("?");
}

json_t *reply_ok(const char *message)
{
	json_t *r = json_pack("{s:b}", "ok", 1);
	if (message)
		json_object_set_new(r, "message", json_string(message));
	return r;
}

/* The canary: schema, share, the key in effect, its verdict (or null). */
static json_t *canary_json(const Router *r)
{
	if (!r->canary_schema)
		return json_null();
	const RouterCanaryCheck *chk = &r->canary_check;
	json_t *rollback = chk->max_error_ratio > 0
				   ? json_pack("{s:f, s:i, s:i}", "max_error_ratio", chk->max_error_ratio, "window_s",
					       chk->window_s, "min_transactions", chk->min_transactions)
				   : json_null();
	return json_pack("{s:s, s:i, s:s, s:o}", "schema", r->canary_schema, "percent", r->canary_percent, "key",
			 conf_canary_key_to_str(r->canary_key), "rollback", rollback);
}

static json_t *routes_json(void)
{
	const Router *r = &proxy.router;
	json_t *pins = json_array();
	for (size_t i = 0; i < r->n_pins; i++)
		json_array_append_new(pins, json_pack("{s:s, s:s, s:s}", "kind", router_pin_kind_to_str(r->pins[i].kind),
						      "key", r->pins[i].key, "schema", r->pins[i].schema));
	return json_pack("{s:s, s:o, s:o, s:s}", "default", r->default_schema, "pins", pins, "canary", canary_json(r),
			 "canary_key", conf_canary_key_to_str(r->file_canary_key));
}

/* How long the "tps" of the route stats averages over (s): the last full
 * seconds, so that the current, partial one does not pull it down. */
#define ADMIN_TPS_SECONDS 5

static json_t *route_stats_json(const RouteStatsEntry *e, uint64_t now_s);

json_t *admin_route_stats(const char *route)
{
	const RouteStatsEntry *e = routestats_find(&proxy.rstats, route);
	return e ? route_stats_json(e, proxy_now_us() / 1000000) : json_null();
}

/* One route's stats: transactions, failed ones, errors by SQLSTATE class,
 * p50/p99 latency (us, null before the first), transactions per second. */
static json_t *route_stats_json(const RouteStatsEntry *e, uint64_t now_s)
{
	json_t *errors = json_object();
	char cls[3];
	for (size_t i = 0; i < ROUTESTATS_CLASSES; i++)
		if (e->errors[i])
			json_object_set_new(errors, routestats_class_name(i, cls), json_integer((json_int_t)e->errors[i]));
	uint64_t p50 = 0, p99 = 0;
	bool timed = routestats_percentile(e, 0.5, &p50) && routestats_percentile(e, 0.99, &p99);
	RouteStatsSums last = routestats_window(e, now_s - 1, ADMIN_TPS_SECONDS);
	return json_pack("{s:I, s:I, s:o, s:o, s:o, s:f}", "transactions", (json_int_t)e->transactions,
			 "failed_transactions", (json_int_t)e->failed, "errors", errors, "p50_us",
			 timed ? json_integer((json_int_t)p50) : json_null(), "p99_us",
			 timed ? json_integer((json_int_t)p99) : json_null(), "tps",
			 (double)last.transactions / ADMIN_TPS_SECONDS);
}

/* The `routes` reply: the table, and "stats" with one object per route
 * that served a transaction (or sent an error). */
static json_t *cmd_routes(void)
{
	json_t *routes = routes_json();
	json_t *stats = json_object();
	uint64_t now_s = proxy_now_us() / 1000000;
	for (size_t i = 0; i < proxy.rstats.n; i++) {
		const RouteStatsEntry *e = proxy.rstats.entries[i];
		json_object_set_new(stats, e->route, route_stats_json(e, now_s));
	}
	json_object_set_new(routes, "stats", stats);
	json_t *r = reply_ok(NULL);
	json_object_set_new(r, "routes", routes);
	json_object_set_new(r, "route_store", routestore_status_json());
	return r;
}

static json_t *cmd_status(void)
{
	int n_pools = 0, n_servers = 0, n_waiting = 0;
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link) {
		n_pools++;
		n_servers += p->n_servers;
		n_waiting += p->n_waiting;
	}
	json_t *r = reply_ok(NULL);
	json_object_set_new(r, "version", json_string(PGFLIP_VERSION));
	json_object_set_new(r, "pid", json_integer(getpid()));
	json_object_set_new(r, "uptime_s", json_integer((json_int_t)(time(NULL) - proxy.start_time)));
	json_object_set_new(r, "clients", json_integer(proxy.n_clients));
	json_object_set_new(r, "clients_waiting", json_integer(n_waiting));
	json_object_set_new(r, "pools", json_integer(n_pools));
	json_object_set_new(r, "servers", json_integer(n_servers));
	json_object_set_new(r, "transactions", json_integer((json_int_t)proxy.n_transactions));
	json_object_set_new(r, "loop_lag_ms", json_pack("{s:I, s:I}", "max", (json_int_t)proxy.loop_lag_max_ms, "last_10s",
						      (json_int_t)proxy_loop_lag_recent_ms()));
	json_object_set_new(r, "paused", json_boolean(proxy.paused));
	json_t *paused_dbs = json_array();
	for (size_t i = 0; i < proxy.paused_dbs.n; i++)
		json_array_append_new(paused_dbs, admin_text(proxy.paused_dbs.items[i].name));
	json_object_set_new(r, "paused_databases", paused_dbs);
	const DrainStats *d = drain_stats();
	json_object_set_new(r, "drain", json_pack("{s:o, s:I, s:I, s:I, s:I, s:f}", "open", drain_open() ?
						  admin_text(drain_open()) : json_null(), "windows", (json_int_t)d->windows,
						  "drained", (json_int_t)d->drained, "timed_out", (json_int_t)d->timed_out,
						  "refused", (json_int_t)d->refused, "max_held_ms", d->max_held_us / 1000.0));
	json_object_set_new(r, "shutting_down", json_boolean(proxy.shutting_down));
	json_object_set_new(r, "routes", routes_json());
	json_object_set_new(r, "route_store", routestore_status_json());
	return r;
}

static json_t *cmd_clients(void)
{
	json_t *rows = json_array();
	Client *c;
	TAILQ_FOREACH(c, &proxy.clients, link) {
		if (c->state == CL_STARTUP)
			continue;
		json_array_append_new(
			rows, json_pack("{s:I, s:s, s:o, s:o, s:o, s:s, s:s, s:I, s:i}", "id", (json_int_t)c->id,
					"address", c->addr_str, "user", admin_text(c->user), "database",
					admin_text(c->database), "application_name", admin_text(c->app_name), "route", c->route ? c->route : "", "state",
					client_state_to_str(c->state), "transactions", (json_int_t)c->n_transactions,
					"server_pid", c->server ? c->server->backend_pid : 0));
	}
	json_t *r = reply_ok(NULL);
	json_object_set_new(r, "clients", rows);
	return r;
}

static json_t *cmd_pools(void)
{
	json_t *rows = json_array();
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link) {
		int by_state[POOL_SERVER_STATES];
		pool_count_servers(p, by_state);
		int active = by_state[SV_ACTIVE], idle = by_state[SV_IDLE];
		int other = 0; /* connecting, preparing, resetting */
		for (int st = 0; st < POOL_SERVER_STATES; st++)
			other += st == SV_ACTIVE || st == SV_IDLE ? 0 : by_state[st];
		json_t *by_route = json_object();
		for (size_t i = 0; i < p->n_route_tx && i < proxy.rstats.n; i++)
			if (p->route_tx[i])
				json_object_set_new(by_route, proxy.rstats.entries[i]->route,
						    json_integer((json_int_t)p->route_tx[i]));
		json_array_append_new(
			rows, json_pack("{s:o, s:o, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:o, s:I, s:o?}", "database",
					admin_text(p->database), "user", admin_text(p->user), "pool_mode",
					p->mode == CONF_POOL_TRANSACTION ? "transaction" : "session", "pool_size", p->size,
					"servers_active", active, "servers_idle", idle, "servers_connecting",
					p->n_connecting, "servers_other", other - p->n_connecting, "clients_waiting",
					p->n_waiting, "transactions", (json_int_t)p->stats.xact_count, "transactions_by_route",
					by_route, "route_sets", (json_int_t)p->n_route_sets, "last_error",
					admin_text(p->last_error)));
	}
	json_t *r = reply_ok(NULL);
	json_object_set_new(r, "pools", rows);
	return r;
}

static bool pin_kind_parse(const char *s, ConfPinKind *kind)
{
	if (!strcmp(s, "app"))
		*kind = CONF_PIN_APP;
	else if (!strcmp(s, "user"))
		*kind = CONF_PIN_USER;
	else if (!strcmp(s, "addr"))
		*kind = CONF_PIN_ADDR;
	else
		return false;
	return true;
}

#define CANARY_USAGE                                                                                                   \
	"usage: canary SCHEMA PERCENT [--key connection|application_name|addr] [--max-error-ratio R --window S "     \
	"[--min-transactions N]] | canary off"

/* A whole decimal int in TEXT into *OUT; false otherwise. */
static bool int_arg(const char *text, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < -1000000000L || v > 1000000000L)
		return false;
	*out = (int)v;
	return true;
}

/* The options after `canary SCHEMA PERCENT` (ARGC words at ARGV) into
 * OPTS. NULL when they are good, else the error reply. */
static json_t *canary_opts_parse(int argc, char **argv, RouterCanaryOpts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->check.min_transactions = ROUTER_DEFAULT_MIN_TX;
	bool window = false, min_tx = false;
	for (int i = 0; i < argc; i += 2) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;
		if (!val)
			return reply_error("canary: %s needs a value; " CANARY_USAGE, opt);
		if (!strcmp(opt, "--key")) {
			if (!conf_canary_key_parse(val, &opts->key))
				return reply_error("canary: --key \"%s\" is not one of connection, application_name, addr",
						   val);
			opts->has_key = true;
		} else if (!strcmp(opt, "--max-error-ratio")) {
			opts->check.max_error_ratio = strtod(val, &end);
			if (end == val || *end || !(opts->check.max_error_ratio > 0))
				return reply_error("canary: --max-error-ratio \"%s\" is not a positive number", val);
		} else if (!strcmp(opt, "--window")) {
			if (!int_arg(val, &opts->check.window_s))
				return reply_error("canary: --window \"%s\" is not a number of seconds", val);
			window = true;
		} else if (!strcmp(opt, "--min-transactions")) {
			if (!int_arg(val, &opts->check.min_transactions))
				return reply_error("canary: --min-transactions \"%s\" is not a number", val);
			min_tx = true;
		} else {
			return reply_error("canary: unknown option \"%s\"; " CANARY_USAGE, opt);
		}
	}
	if ((opts->check.max_error_ratio > 0) != window || (min_tx && !window))
		return reply_error("canary: --max-error-ratio and --window go together (--min-transactions with "
				   "them); " CANARY_USAGE);
	return NULL;
}

/* A route change made here: applied already; published to the route store
 * (WHO: who asked, what) and the reply says where it stands. */
static json_t *reply_routes_changed(const char *message, const char *who)
{
	routestore_publish(who);
	json_t *r = reply_ok(message);
	json_object_set_new(r, "routes", routes_json());
	json_object_set_new(r, "route_store", routestore_status_json());
	return r;
}

/* `canary SCHEMA PERCENT [options]`, `canary off`; `route canary ...` and
 * `unroute canary` are aliases. ARGV[0] is the first word after "canary". */
static json_t *canary_set(int argc, char **argv, const char *who)
{
	char err[256];
	RouterCanaryOpts opts;
	bool ok;
	if (argc == 1 && !strcmp(argv[0], "off")) {
		ok = router_set_canary(&proxy.router, NULL, 0, err, sizeof(err));
	} else if (argc >= 2) {
		int pct;
		if (!int_arg(argv[1], &pct))
			return reply_error("canary percent \"%s\" is not a number", argv[1]);
		json_t *bad = canary_opts_parse(argc - 2, argv + 2, &opts);
		if (bad)
			return bad;
		if (!migrator_routable(argv[0], err, sizeof(err)))
			return reply_error("%s", err);
		ok = router_set_canary_opts(&proxy.router, argv[0], pct, &opts, err, sizeof(err));
	} else {
		return reply_error(CANARY_USAGE);
	}
	if (!ok)
		return reply_error("%s", err);
	/* the verdict counts from the next second on: this one holds traffic
	 * from before the command, of the default's clients too */
	proxy.canary_since_s = proxy_now_us() / 1000000 + 1;
	const Router *r = &proxy.router;
	if (r->canary_schema)
		log_info("admin: canary %s %d%% by %s%s", r->canary_schema, r->canary_percent,
			 conf_canary_key_to_str(r->canary_key),
			 r->canary_check.max_error_ratio > 0 ? ", automatic rollback on" : "");
	else
		log_info("admin: canary off");
	return reply_routes_changed(r->canary_schema ? "canary set; connected clients follow at their next transaction"
						     : "canary off; its clients follow the other routes at their next transaction",
				    who);
}

static json_t *cmd_route(int argc, char **argv, const char *who)
{
	char err[256];
	ConfPinKind kind;
	bool ok;
	if (argc >= 2 && !strcmp(argv[1], "canary"))
		return canary_set(argc - 2, argv + 2, who);
	if ((argc == 3 || argc == 4) && !migrator_routable(argv[argc - 1], err, sizeof(err)))
		return reply_error("%s", err);
	if (argc == 3 && !strcmp(argv[1], "default"))
		ok = router_set_default(&proxy.router, argv[2], err, sizeof(err));
	else if (argc == 4 && pin_kind_parse(argv[1], &kind))
		ok = router_set_pin(&proxy.router, kind, argv[2], argv[3], err, sizeof(err));
	else
		return reply_error("usage: route default SCHEMA | route app|user|addr KEY SCHEMA | "
				   "route canary SCHEMA PERCENT [options of canary]");
	if (!ok)
		return reply_error("%s", err);
	log_info("admin: %s %s%s%s%s%s", argv[0], argv[1], argc > 2 ? " " : "", argc > 2 ? argv[2] : "",
		 argc > 3 ? " " : "", argc > 3 ? argv[3] : "");
	return reply_routes_changed("route changed; connected clients follow at their next transaction", who);
}

static json_t *cmd_unroute(int argc, char **argv, const char *who)
{
	char err[256];
	ConfPinKind kind;
	bool ok;
	if (argc == 2 && !strcmp(argv[1], "canary")) {
		char off[] = "off";
		char *args[] = {off};
		return canary_set(1, args, who);
	}
	if (argc == 3 && pin_kind_parse(argv[1], &kind))
		ok = router_unset_pin(&proxy.router, kind, argv[2], err, sizeof(err));
	else
		return reply_error("usage: unroute app|user|addr KEY | unroute canary");
	if (!ok)
		return reply_error("%s", err);
	log_info("admin: unroute %s %s", argv[1], argc > 2 ? argv[2] : "");
	return reply_routes_changed("route removed", who);
}

/* Commands a stats_users peer may send: they change nothing. */
static bool admin_read_only(const char *cmd)
{
	static const char *const ro[] = {"status", "routes", "clients", "pools", "show"};
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		if (!strcmp(cmd, ro[i]))
			return true;
	return false;
}

static bool name_listed(char *const *list, const char *name)
{
	for (size_t i = 0; list && list[i]; i++)
		if (!strcmp(list[i], name))
			return true;
	return false;
}

AdminAccess admin_access(uid_t uid, const char *name)
{
	if (uid == 0 || uid == geteuid() || (name && name_listed(proxy.conf->admin_users, name)))
		return ADMIN_ACCESS_ALL;
	if (name && name_listed(proxy.conf->stats_users, name))
		return ADMIN_ACCESS_STATS;
	return ADMIN_ACCESS_NONE;
}

/* Whether DB names a database clients can reach: a [databases] entry of
 * its own, or one that a pool serves (through the "*" entry). */
static bool database_known(const char *db)
{
	for (size_t i = 0; i < proxy.conf->n_databases; i++)
		if (!strcmp(proxy.conf->databases[i].name, db))
			return true;
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
		if (!strcmp(p->database, db))
			return true;
	return false;
}

/* `pause [DB]`, `resume [DB]`, `reconnect [DB]` (CMD): of DB's pools, or of
 * all (DB NULL). */
static json_t *cmd_pool_control(const char *cmd, const char *db)
{
	char text[256];
	if (db && !database_known(db))
		return reply_error_state("3D000", "no such database: %s", db);
	if (!strcmp(cmd, "pause")) {
		proxy_pause(db);
		snprintf(text, sizeof(text), "paused%s%s: new transactions wait until resume", db ? " " : "",
			 db ? db : "");
		return reply_ok(text);
	}
	if (!strcmp(cmd, "resume")) {
		proxy_resume(db);
		snprintf(text, sizeof(text), "resumed%s%s%s", db ? " " : "", db ? db : "",
			 !db && proxy.paused_dbs.n ? " (databases paused by name stay paused)" : "");
		return reply_ok(text);
	}
	int n = 0;
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link) {
		if (db && strcmp(p->database, db) != 0)
			continue;
		n += p->n_servers;
		pool_reconnect(p);
	}
	log_info("admin: reconnect %s: %d server connection(s) close once idle", db ? db : "(all)", n);
	snprintf(text, sizeof(text), "%d server connection(s) close as soon as they are idle; new ones replace them", n);
	return reply_ok(text);
}

/* `kill_client ID`: that client is closed with 57P01, as
 * pg_terminate_backend ends a backend. */
static json_t *cmd_kill_client(const char *arg)
{
	char *end;
	errno = 0;
	unsigned long long id = strtoull(arg, &end, 10);
	if (errno || end == arg || *end)
		return reply_error("kill_client: \"%s\" is not a client id", arg);
	Client *c;
	TAILQ_FOREACH(c, &proxy.clients, link) {
		if (c->id != id)
			continue;
		client_close(c, "57P01", "terminating connection due to administrator command (kill_client)");
		return reply_ok("client closed");
	}
	return reply_error("kill_client: no client with id %llu", id);
}

AdminAccess admin_access_user(const char *user)
{
	if (name_listed(proxy.conf->admin_users, user))
		return ADMIN_ACCESS_ALL;
	if (name_listed(proxy.conf->stats_users, user))
		return ADMIN_ACCESS_STATS;
	return ADMIN_ACCESS_NONE;
}

static json_t *admin_dispatch(int argc, char **argv, const json_t *req, const char *who)
{
	const char *cmd = argv[0];
	json_t *mig = migrator_command(argc, argv, req);
	if (mig)
		return mig;
	if (!strcmp(cmd, "status") && argc == 1)
		return cmd_status();
	if (!strcmp(cmd, "routes") && argc == 1)
		return cmd_routes();
	if (!strcmp(cmd, "route"))
		return cmd_route(argc, argv, who);
	if (!strcmp(cmd, "canary"))
		return canary_set(argc - 1, argv + 1, who);
	if (!strcmp(cmd, "unroute"))
		return cmd_unroute(argc, argv, who);
	if (!strcmp(cmd, "clients") && argc == 1)
		return cmd_clients();
	if (!strcmp(cmd, "pools") && argc == 1)
		return cmd_pools();
	if (!strcmp(cmd, "show"))
		return show_command(argc, argv);
	if ((!strcmp(cmd, "pause") || !strcmp(cmd, "resume") || !strcmp(cmd, "reconnect")) && argc <= 2)
		return cmd_pool_control(cmd, argc == 2 ? argv[1] : NULL);
	if (!strcmp(cmd, "kill_client") && argc == 2)
		return cmd_kill_client(argv[1]);
	if (!strcmp(cmd, "reload") && argc == 1) {
		char err[1024];
		if (!proxy_reload(err, sizeof(err)))
			return reply_error_state("F0000", "reload failed, running config kept: %s", err);
		return reply_ok("config reloaded");
	}
	if (!strcmp(cmd, "shutdown") && argc == 1) {
		proxy_begin_shutdown();
		return reply_ok("shutting down: waiting for clients");
	}
	static const char *const known[] = {"status", "routes", "clients", "pools", "reload", "shutdown"};
	/* (migrate, versions, promote, rollback: migrator_command) */
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(cmd, known[i]))
			return reply_error_state("42601", "%s takes no arguments", cmd);
	if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume") || !strcmp(cmd, "reconnect"))
		return reply_error_state("42601", "usage: %s [DATABASE]", cmd);
	if (!strcmp(cmd, "kill_client"))
		return reply_error_state("42601", "usage: kill_client ID (the id column of show clients)");
	return reply_error_state("42601",
				 "unknown command \"%s\" (try: show help, status, routes, route, unroute, canary, "
				 "clients, pools, pause, resume, reconnect, kill_client, reload, shutdown, migrate, "
				 "versions, promote, rollback)",
				 cmd);
}

/* The words of a JSON request {"command": ["migrate", "start", ...], ...}
 * into ARGV (pointing into REQ); the count, -1 when malformed or too many. */
static int request_words(const json_t *req, char **argv)
{
	const json_t *words = json_object_get(req, "command");
	size_t n = json_array_size(words);
	if (!json_is_array(words) || n > ADMIN_MAX_ARGS)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const char *w = json_string_value(json_array_get(words, i));
		if (!w)
			return -1;
		argv[i] = (char *)w;
	}
	return (int)n;
}

json_t *admin_execute(const AdminPeer *peer, int argc, char **argv, const json_t *req, const char *line)
{
	bool read_only = argc > 0 && (admin_read_only(argv[0]) || migrator_read_only(argc, argv));
	if (argc < 0)
		return reply_error_state("42601", "too many arguments, or a malformed request");
	if (argc == 0)
		return reply_error_state("42601", "empty command");
	if (peer->access == ADMIN_ACCESS_NONE || (peer->access == ADMIN_ACCESS_STATS && !read_only)) {
		log_warning("admin: permission denied for %s: %s", peer->label, argv[0]);
		return reply_error_state("42501", "permission denied: %s", argv[0]);
	}
	if (!read_only)
		log_info("admin: %s runs: %s", peer->label, line);
	char who[ADMIN_MAX_LINE + 256];
	snprintf(who, sizeof(who), "admin %s: %s", peer->label, line);
	return admin_dispatch(argc, argv, req, who);
}

char *admin_command(const AdminPeer *peer, const char *line)
{
	char buf[ADMIN_MAX_LINE + 1];
	char *argv[ADMIN_MAX_ARGS];
	int argc = 0;
	json_t *reply;
	if (line[0] == '{') {
		/* a JSON request: for what a line cannot carry (a migration file) */
		json_error_t jerr;
		json_t *req = json_loads(line, 0, &jerr);
		argc = req ? request_words(req, argv) : -1;
		char shown[ADMIN_MAX_LINE];
		size_t n = 0;
		for (int i = 0; i < argc && n < sizeof(shown); i++)
			n += (size_t)snprintf(shown + n, sizeof(shown) - n, "%s%s", i ? " " : "", argv[i]);
		if (argc < 0)
			snprintf(shown, sizeof(shown), "(malformed JSON request)");
		reply = admin_execute(peer, argc, argv, req, shown);
		json_decref(req);
	} else if (strlen(line) > ADMIN_MAX_LINE) {
		reply = reply_error("command line too long");
	} else {
		snprintf(buf, sizeof(buf), "%s", line);
		char *save = NULL;
		for (char *tok = strtok_r(buf, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
			if (argc == ADMIN_MAX_ARGS) {
				argc = -1;
				break;
			}
			argv[argc++] = tok;
		}
		reply = admin_execute(peer, argc, argv, NULL, line);
	}
	char *text = json_dumps(reply, JSON_COMPACT);
	json_decref(reply);
	return text;
}

/* ---- socket front end --------------------------------------------------- */

static void admin_read_cb(struct bufferevent *bev, void *arg)
{
	AdminPeer *peer = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;
	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF))) {
		char *reply = admin_command(peer, line);
		sock_mem_free(line);
		if (reply) {
			bufferevent_write(bev, reply, strlen(reply));
			bufferevent_write(bev, "\n", 1);
			free(reply);
		} else {
			static const char oom[] = "{\"ok\": false, \"error\": \"out of memory building the reply\"}\n";
			bufferevent_write(bev, oom, sizeof(oom) - 1);
		}
	}
	if (evbuffer_get_length(in) > ADMIN_MAX_REQUEST) {
		static const char too_long[] = "{\"ok\": false, \"error\": \"command line too long\"}\n";
		evbuffer_drain(in, evbuffer_get_length(in));
		bufferevent_write(bev, too_long, sizeof(too_long) - 1);
	}
}

static void admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		bufferevent_free(bev);
		free(arg);
	}
}

/* The peer's uid and OS user name, and what it may do (SO_PEERCRED). */
static void admin_peer_identify(evutil_socket_t fd, AdminPeer *peer)
{
	peer->uid = (uid_t)-1;
	int got = sock_peer_user(fd, &peer->uid, peer->name, sizeof(peer->name));
	if (got <= 0)
		snprintf(peer->name, sizeof(peer->name), "?");
	peer->access = got < 0 ? ADMIN_ACCESS_NONE : admin_access(peer->uid, got > 0 ? peer->name : NULL);
	snprintf(peer->label, sizeof(peer->label), "uid %u (%s)", (unsigned)peer->uid, peer->name);
}

static void admin_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *addr, int socklen,
			    void *arg)
{
	(void)l;
	(void)addr;
	(void)socklen;
	(void)arg;
	AdminPeer *peer = calloc(1, sizeof(*peer));
	struct bufferevent *bev = peer ? bufferevent_socket_new(proxy.base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
	if (!bev) {
		free(peer);
		evutil_closesocket(fd);
		return;
	}
	admin_peer_identify(fd, peer);
	bufferevent_setcb(bev, admin_read_cb, NULL, admin_event_cb, peer);
	bufferevent_enable(bev, EV_READ);
}

/* Whether admin_users or stats_users name an OS user other than root and
 * the one pgflip runs as: then the socket must let them connect. */
static bool admin_others_listed(const Conf *conf)
{
	char *const *lists[2] = {conf->admin_users, conf->stats_users};
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; lists[k] && lists[k][i]; i++) {
			char buf[4096];
			struct passwd pw, *found = NULL;
			if (getpwnam_r(lists[k][i], &pw, buf, sizeof(buf), &found) == 0 && found && found->pw_uid != 0 &&
			    found->pw_uid != geteuid())
				return true;
		}
	}
	return false;
}

bool admin_listen(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "admin_socket path too long: %s", path);
		return false;
	}
	strcpy(sun.sun_path, path);
	unlink(path);
	/* created 0600 from the start: no window where others could connect */
	mode_t old = umask(0177);
	admin_listener = evconnlistener_new_bind(proxy.base, admin_accept_cb, NULL,
						 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
						 (struct sockaddr *)&sun, (int)sizeof(sun));
	umask(old);
	if (!admin_listener) {
		snprintf(err, errlen, "cannot listen on admin_socket %s: %s", path, strerror(errno));
		return false;
	}
	bool open_up = admin_others_listed(proxy.conf);
	if (open_up && chmod(path, 0666) != 0)
		log_warning("admin socket %s: chmod: %s", path, strerror(errno));
	admin_path = strdup(path);
	log_info("admin socket %s (%s)", path,
		 open_up ? "0666: admin_users/stats_users name other OS users; the peer check decides" : "0600");
	return true;
}

void admin_close(void)
{
	if (admin_listener)
		evconnlistener_free(admin_listener);
	admin_listener = NULL;
	if (admin_path) {
		unlink(admin_path);
		free(admin_path);
		admin_path = NULL;
	}
}
