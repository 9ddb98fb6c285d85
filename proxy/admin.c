/*
 * proxy/admin.c: the admin command layer and its Unix-socket front end.
 *
 * One command a line, one JSON object a line in reply, always with "ok".
 * admin_command() is the command layer: it knows nothing of sockets, so a
 * second front end (an admin console database, say) can reuse it.
 *
 * Who may ask: the peer of each connection is read with SO_PEERCRED. Root,
 * the uid pgflip runs as and the OS users named in admin_users may send
 * every command; stats_users may send the read-only ones (status, routes,
 * clients, pools); anyone else gets "permission denied", and is logged.
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
#include "proxy/client.h"
#include "proxy/log.h"
#include "proxy/routestore.h"

/* A command line longer than this is refused: commands are short. */
#define ADMIN_MAX_LINE 4096
#define ADMIN_MAX_ARGS 8

static struct evconnlistener *admin_listener;
static char *admin_path;

static json_t *reply_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *reply_error(const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	return json_pack("{s:b, s:s}", "ok", 0, "error", text);
}

/*
 * A JSON string for text from a client or a server, which may not be UTF-8
 * (an application_name of "\xff"): valid UTF-8 as is, else every byte of an
 * invalid sequence written as the four characters \xNN, so that the row is
 * shown rather than dropped. NULL stays NULL (for "s:o?").
 */
static json_t *json_text(const char *s)
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

static json_t *reply_ok(const char *message)
{
	json_t *r = json_pack("{s:b}", "ok", 1);
	if (message)
		json_object_set_new(r, "message", json_string(message));
	return r;
}

static json_t *routes_json(void)
{
	const Router *r = &proxy.router;
	json_t *pins = json_array();
	for (size_t i = 0; i < r->n_pins; i++)
		json_array_append_new(pins, json_pack("{s:s, s:s, s:s}", "kind", router_pin_kind_to_str(r->pins[i].kind),
						      "key", r->pins[i].key, "schema", r->pins[i].schema));
	json_t *o = json_pack("{s:s, s:o}", "default", r->default_schema, "pins", pins);
	if (r->canary_schema)
		json_object_set_new(o, "canary",
				    json_pack("{s:s, s:i}", "schema", r->canary_schema, "percent", r->canary_percent));
	else
		json_object_set_new(o, "canary", json_null());
	return o;
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
	json_object_set_new(r, "paused", json_boolean(proxy.paused));
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
					"address", c->addr_str, "user", json_text(c->user), "database",
					json_text(c->database), "application_name", json_text(c->app_name), "route", c->route ? c->route : "", "state",
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
		int active = 0, idle = 0, other = 0;
		Server *s;
		TAILQ_FOREACH(s, &p->servers, link) {
			if (s->state == SV_ACTIVE)
				active++;
			else if (s->state == SV_IDLE)
				idle++;
			else
				other++;
		}
		json_t *by_route = json_object();
		for (size_t i = 0; i < p->n_route_counts; i++)
			json_object_set_new(by_route, p->route_counts[i].route,
					    json_integer((json_int_t)p->route_counts[i].n));
		json_array_append_new(
			rows, json_pack("{s:o, s:o, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:o, s:I, s:o?}", "database",
					json_text(p->database), "user", json_text(p->user), "pool_mode",
					p->mode == CONF_POOL_TRANSACTION ? "transaction" : "session", "pool_size", p->size,
					"servers_active", active, "servers_idle", idle, "servers_connecting",
					p->n_connecting, "servers_other", other - p->n_connecting, "clients_waiting",
					p->n_waiting, "transactions", (json_int_t)p->n_transactions, "transactions_by_route",
					by_route, "route_sets", (json_int_t)p->n_route_sets, "last_error",
					json_text(p->last_error)));
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

static json_t *cmd_route(int argc, char **argv, const char *who)
{
	char err[256];
	ConfPinKind kind;
	bool ok;
	if (argc == 3 && !strcmp(argv[1], "default"))
		ok = router_set_default(&proxy.router, argv[2], err, sizeof(err));
	else if (argc == 4 && !strcmp(argv[1], "canary")) {
		char *end;
		long pct = strtol(argv[3], &end, 10);
		if (*end || end == argv[3])
			return reply_error("canary percent \"%s\" is not a number", argv[3]);
		ok = router_set_canary(&proxy.router, argv[2], (int)pct, err, sizeof(err));
	} else if (argc == 4 && pin_kind_parse(argv[1], &kind))
		ok = router_set_pin(&proxy.router, kind, argv[2], argv[3], err, sizeof(err));
	else
		return reply_error("usage: route default SCHEMA | route app|user|addr KEY SCHEMA | "
				   "route canary SCHEMA PERCENT");
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
	if (argc == 2 && !strcmp(argv[1], "canary"))
		ok = router_set_canary(&proxy.router, NULL, 0, err, sizeof(err));
	else if (argc == 3 && pin_kind_parse(argv[1], &kind))
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
	static const char *const ro[] = {"status", "routes", "clients", "pools"};
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

static json_t *admin_dispatch(int argc, char **argv, const char *who)
{
	const char *cmd = argv[0];
	if (!strcmp(cmd, "status") && argc == 1)
		return cmd_status();
	if (!strcmp(cmd, "routes") && argc == 1) {
		json_t *r = reply_ok(NULL);
		json_object_set_new(r, "routes", routes_json());
		json_object_set_new(r, "route_store", routestore_status_json());
		return r;
	}
	if (!strcmp(cmd, "route"))
		return cmd_route(argc, argv, who);
	if (!strcmp(cmd, "unroute"))
		return cmd_unroute(argc, argv, who);
	if (!strcmp(cmd, "clients") && argc == 1)
		return cmd_clients();
	if (!strcmp(cmd, "pools") && argc == 1)
		return cmd_pools();
	if (!strcmp(cmd, "pause") && argc == 1) {
		proxy_pause();
		return reply_ok("paused: new transactions wait until resume");
	}
	if (!strcmp(cmd, "resume") && argc == 1) {
		proxy_resume();
		return reply_ok("resumed");
	}
	if (!strcmp(cmd, "reload") && argc == 1) {
		char err[1024];
		if (!proxy_reload(err, sizeof(err)))
			return reply_error("reload failed, running config kept: %s", err);
		return reply_ok("config reloaded");
	}
	if (!strcmp(cmd, "shutdown") && argc == 1) {
		proxy_begin_shutdown();
		return reply_ok("shutting down: waiting for clients");
	}
	static const char *const known[] = {"status", "routes", "route", "unroute", "clients", "pools",
					    "pause", "resume", "reload", "shutdown"};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(cmd, known[i]))
			return reply_error("%s takes no arguments", cmd);
	return reply_error("unknown command \"%s\" (try: status, routes, route, unroute, clients, pools, pause, "
			   "resume, reload, shutdown)",
			   cmd);
}

char *admin_command(const AdminPeer *peer, const char *line)
{
	char buf[ADMIN_MAX_LINE + 1];
	char *argv[ADMIN_MAX_ARGS];
	int argc = 0;
	json_t *reply;
	snprintf(buf, sizeof(buf), "%s", line);
	char *save = NULL;
	for (char *tok = strtok_r(buf, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (argc == ADMIN_MAX_ARGS) {
			argc = -1;
			break;
		}
		argv[argc++] = tok;
	}
	if (argc < 0)
		reply = reply_error("too many arguments");
	else if (argc == 0)
		reply = reply_error("empty command");
	else if (peer->access == ADMIN_ACCESS_NONE ||
		 (peer->access == ADMIN_ACCESS_STATS && !admin_read_only(argv[0]))) {
		log_warning("admin: permission denied for uid %u (%s): %s", (unsigned)peer->uid, peer->name, argv[0]);
		reply = reply_error("permission denied: %s", argv[0]);
	} else {
		char who[ADMIN_MAX_LINE + 128];
		snprintf(who, sizeof(who), "admin uid %u (%s): %s", (unsigned)peer->uid, peer->name, line);
		if (!admin_read_only(argv[0]))
			log_info("admin: uid %u (%s) runs: %s", (unsigned)peer->uid, peer->name, line);
		reply = admin_dispatch(argc, argv, who);
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
		}
	}
	if (evbuffer_get_length(in) > ADMIN_MAX_LINE) {
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
