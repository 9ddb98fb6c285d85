/*
 * proxy/client.c: the client connection state machine (ClientState).
 *
 * Reading: every client message passes through client_pump(). Most are moved
 * whole, or streamed in pieces when long, from the client's input buffer to
 * its server's output buffer without a copy (evbuffer_remove_buffer). A few
 * are looked at first:
 *   - Terminate ends the client; its server goes back to the pool;
 *   - Query and Parse are scanned for settings that change search_path behind
 *     our back (SET search_path, set_config, RESET, DISCARD), which makes the
 *     server's search_path unknown so that it is set again at the next
 *     transaction boundary;
 *   - the first message of a request on an idle server gets the injected
 *     Query that sets the client's route and settings ahead of it.
 *
 * A route whose schema has not been seen on this database yet is checked
 * first, in its own round trip (once per schema and route change): a missing
 * schema answers the client's request with ErrorResponse 3F000 and nothing of
 * that request runs, rather than running it against the wrong tables.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>

#include "proxy/proxy.h"

static void client_on_read(void *arg);
static void client_on_drain(void *arg);
static void client_on_close(void *arg, int err);
static const SockCallbacks client_sock_cb = {client_on_read, client_on_drain, client_on_close};

/* Settings a pooled server must match for each client, whether or not the
 * client gave them at startup: the defaults come from the pool's first
 * login. (PgBouncer tracks the same set.) */
static const char *const tracked_params[] = {
	"client_encoding", "DateStyle", "IntervalStyle", "TimeZone", "standard_conforming_strings",
};

const char *client_state_to_str(ClientState st)
{
	switch (st) {
	case CL_STARTUP: return "startup";
	case CL_WAIT_LOGIN: return "login";
	case CL_IDLE: return "idle";
	case CL_WAITING: return "waiting";
	case CL_ACTIVE: return "active";
	case CL_CLOSING: return "closing";
	}
	return "?";
}

void client_set_state(Client *c, ClientState st)
{
	switch (st) {
	case CL_STARTUP:
	case CL_WAIT_LOGIN:
	case CL_IDLE:
	case CL_WAITING:
	case CL_ACTIVE:
	case CL_CLOSING:
		clog_debug(c, "state %s -> %s", client_state_to_str(c->state), client_state_to_str(st));
		c->state = st;
		return;
	}
	log_error("client_set_state: bad state %d", (int)st);
	abort();
}


static void client_send(Client *c, ProtoBuf *b)
{
	if (!protobuf_ok(b)) {
		client_close(c, NULL, "out of memory building a reply");
		return;
	}
	sock_write(&c->sock, b->data, b->len);
}

void client_accept(evutil_socket_t fd, const struct sockaddr *addr, int socklen, bool is_unix)
{
	Client *c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->id = ++proxy.next_id;
	c->is_unix = is_unix;
	c->connect_time = time(NULL);
	if (socklen > 0 && (size_t)socklen <= sizeof(c->addr))
		memcpy(&c->addr, addr, (size_t)socklen);
	if (is_unix) {
		snprintf(c->addr_str, sizeof(c->addr_str), "unix");
	} else {
		char host[INET6_ADDRSTRLEN] = "?";
		int port = 0;
		if (addr->sa_family == AF_INET) {
			const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			port = ntohs(in->sin_port);
		} else if (addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			port = ntohs(in6->sin6_port);
		}
		snprintf(c->addr_str, sizeof(c->addr_str), "%s:%d", host, port);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (!sock_open(&c->sock, proxy.base, fd, NULL, true, &client_sock_cb, c)) {
		sock_close(&c->sock);
		free(c);
		return;
	}
	c->state = CL_STARTUP;
	TAILQ_INSERT_TAIL(&proxy.clients, c, link);
	proxy.n_clients++;
	proxy.n_clients_total++;
	sock_read(&c->sock, true);
	clog_debug(c, "connection accepted");
}

void client_free(Client *c)
{
	if (!c)
		return;
	sock_close(&c->sock);
	params_clear(&c->params);
	ps_client_clear(c);
	free(c->user);
	free(c->database);
	free(c->app_name);
	free(c->route);
	free(c->discard_error);
	free(c);
}

void client_close(Client *c, const char *sqlstate, const char *reason, ...)
{
	if (c->state == CL_CLOSING)
		return;
	char text[512];
	va_list ap;
	va_start(ap, reason);
	vsnprintf(text, sizeof(text), reason, ap);
	va_end(ap);
	if (sqlstate) {
		ProtoBuf b;
		protobuf_init(&b);
		proto_put_error(&b, "FATAL", sqlstate, "%s", text);
		client_send(c, &b);
		protobuf_free(&b);
		clog_info(c, "closing: %s", text);
	} else {
		clog(c->state == CL_STARTUP ? CONF_LOG_DEBUG : CONF_LOG_INFO, c, "closing: %s", text);
	}
	if (c->state == CL_WAITING || c->state == CL_WAIT_LOGIN)
		pool_dequeue(c->pool, c);
	Server *s = c->server;
	client_set_state(c, CL_CLOSING);
	if (s)
		server_release(s);
	c->server = NULL;
	TAILQ_REMOVE(&proxy.clients, c, link);
	TAILQ_INSERT_TAIL(&proxy.graveyard, c, link);
	proxy.n_clients--;
	c->close_start_ms = proxy_now_ms();
	sock_read(&c->sock, false);
	sock_flush(&c->sock); /* its last words (a FATAL error) leave now */
	proxy_reap_soon();
}

/* ---- login ------------------------------------------------------------- */

static void client_login_reply(Client *c, const ParamList *server_params)
{
	uint8_t space[1024];
	ProtoBuf b;
	protobuf_init_on(&b, space, sizeof(space));
	for (size_t i = 0; i < sizeof(tracked_params) / sizeof(tracked_params[0]); i++) {
		const char *v = params_get(server_params, tracked_params[i]);
		if (v && !params_get(&c->params, tracked_params[i]))
			params_set(&c->params, tracked_params[i], v);
	}
	c->params_sig = params_signature(&c->params);
	proto_put_auth_ok(&b);
	for (size_t i = 0; i < server_params->n; i++) {
		const Param *p = &server_params->items[i];
		const char *v = params_get(&c->params, p->name);
		proto_put_parameter_status(&b, p->name, v ? v : p->value);
	}
	proto_put_backend_key_data(&b, c->cancel_pid, c->cancel_key);
	proto_put_ready_for_query(&b, 'I');
	client_send(c, &b);
	protobuf_free(&b);
	clog_info(c, "login: application_name=\"%s\" route=%s pool_mode=%s", c->app_name, client_route(c),
		  c->pool->mode == CONF_POOL_TRANSACTION ? "transaction" : "session");
}

static void client_negotiate(Client *c, const ProtoStartup *st)
{
	const char *unknown[PROTO_STARTUP_MAX_PARAMS];
	size_t n = 0;
	for (size_t i = 0; i < st->n_params; i++)
		if (strncmp(st->names[i], "_pq_.", 5) == 0)
			unknown[n++] = st->names[i];
	if (n == 0 && (st->version & 0xffff) == 0)
		return;
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_negotiate_protocol_version(&b, 0, unknown, n);
	client_send(c, &b);
	protobuf_free(&b);
}

/*
 * Cancel keys come from OpenSSL's CSPRNG, drawn 4 KiB at a time: one
 * RAND_bytes call costs about as much as the rest of a login, and a pool of
 * CSPRNG output is as unpredictable as fresh output (it is never reused).
 */
static bool client_random(void *out, size_t n)
{
	static unsigned char pool[4096];
	static size_t left;
	if (n > sizeof(pool))
		return RAND_bytes(out, (int)n) == 1;
	if (left < n) {
		if (RAND_bytes(pool, sizeof(pool)) != 1)
			return false;
		left = sizeof(pool);
	}
	memcpy(out, pool + sizeof(pool) - left, n);
	OPENSSL_cleanse(pool + sizeof(pool) - left, n); /* handed out once */
	left -= n;
	return true;
}

/* Reads the first packet(s). Returns false when the client was closed. */
static bool client_startup(Client *c)
{
	struct evbuffer *in = c->sock.in;
	size_t avail = evbuffer_get_length(in);
	size_t look = avail < PROTO_STARTUP_MAX ? avail : PROTO_STARTUP_MAX;
	const uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)look);
	ProtoStartup st;
	const char *why = "";
	switch (proto_startup_parse(buf, look, &st, &why)) {
	case PROTO_NEED_MORE:
		return true;
	case PROTO_BAD:
		client_close(c, strstr(why, "protocol") ? "0A000" : "08P01", "%s", why);
		return false;
	case PROTO_OK:
		break;
	}
	if (st.kind == PROTO_SSL_REQUEST || st.kind == PROTO_GSSENC_REQUEST) {
		evbuffer_drain(in, st.packet_len);
		sock_write(&c->sock, "N", 1); /* no TLS/GSS yet: go on in the clear */
		return true;
	}
	if (st.kind == PROTO_CANCEL_REQUEST) {
		evbuffer_drain(in, st.packet_len);
		client_cancel_request(st.cancel_pid, st.cancel_key);
		client_close(c, NULL, "cancel request handled");
		return false;
	}

	const char *user = proto_startup_get(&st, "user");
	const char *db = proto_startup_get(&st, "database");
	const char *app = proto_startup_get(&st, "application_name");
	c->user = proxy_strdup(user);
	c->database = proxy_strdup(db && *db ? db : user);
	c->app_name = proxy_strdup(app ? app : "");
	char bad_param[32] = ""; /* copied: the packet is drained before we answer */
	for (size_t i = 0; i < st.n_params; i++) {
		const char *name = st.names[i];
		if (!strcmp(name, "user") || !strcmp(name, "database") || !strncmp(name, "_pq_.", 5))
			continue;
		if (!strcmp(name, "options") || !strcmp(name, "replication")) {
			snprintf(bad_param, sizeof(bad_param), "%s", name);
			continue;
		}
		params_set(&c->params, name, st.values[i]);
	}
	params_set(&c->params, "application_name", c->app_name);
	client_negotiate(c, &st);
	evbuffer_drain(in, st.packet_len);

	if (bad_param[0]) {
		client_close(c, "08P01", "unsupported startup parameter: %s", bad_param);
		return false;
	}
	if (proxy.shutting_down) {
		client_close(c, "57P03", "pgflip is shutting down");
		return false;
	}
	if (proxy.n_clients > proxy.conf->max_client_conn) {
		client_close(c, "53300", "no more connections allowed (max_client_conn)");
		return false;
	}
	const ConfDatabase *entry = conf_find_database(proxy.conf, c->database);
	if (!entry) {
		client_close(c, "3D000", "no such database: %s", c->database);
		return false;
	}
	c->pool = pool_get(c->database, entry->user ? entry->user : c->user);
	if (!c->pool) {
		client_close(c, "53200", "out of memory");
		return false;
	}
	uint32_t key[2];
	if (!client_random(key, sizeof(key))) {
		client_close(c, "58000", "no random bytes for the cancel key");
		return false;
	}
	c->cancel_pid = key[0] & 0x7fffffff; /* a pid is positive */
	c->cancel_key = key[1];

	/* Like PgBouncer, answer the login from the pool's cached server
	 * parameters; a server is linked at the first request (and kept for the
	 * session in session mode). */
	if (c->pool->have_params) {
		client_login_reply(c, &c->pool->server_params);
		client_set_state(c, CL_IDLE);
	} else {
		client_set_state(c, CL_WAIT_LOGIN);
		pool_enqueue(c->pool, c);
	}
	return c->state != CL_CLOSING;
}

void client_linked(Client *c, Server *s)
{
	c->server = s;
	s->client = c;
	if (c->state == CL_WAIT_LOGIN) {
		if (!c->pool->have_params) {
			params_copy(&c->pool->server_params, &s->params);
			c->pool->have_params = true;
		}
		client_set_state(c, CL_ACTIVE);
		client_login_reply(c, &c->pool->server_params);
		if (c->pool->mode == CONF_POOL_TRANSACTION && evbuffer_get_length(c->sock.in) == 0) {
			server_release(s);
			return;
		}
	} else {
		client_set_state(c, CL_ACTIVE);
	}
	sock_read(&c->sock, true);
	client_pump(c);
}

void client_server_failed(Client *c, const char *message)
{
	Server *s = c->server;
	c->server = NULL;
	if (c->state == CL_ACTIVE && c->pool->mode == CONF_POOL_TRANSACTION) {
		/* the transaction is lost, the session is not: the request under
		 * way, or else the client's next one, gets the error */
		char text[600];
		snprintf(text, sizeof(text), "server connection lost, transaction rolled back: %s", message);
		c->fwd_left = 0;
		client_set_state(c, CL_IDLE);
		if (s && s->pending > 0) {
			ProtoBuf b;
			protobuf_init(&b);
			proto_put_error(&b, "ERROR", "08006", "%s", text);
			proto_put_ready_for_query(&b, 'I');
			client_send(c, &b);
			protobuf_free(&b);
		} else {
			client_discard_request(c, "08006", text);
		}
		return;
	}
	client_close(c, "08006", "%s", message);
}

/* ---- routing ----------------------------------------------------------- */

const char *client_route(Client *c)
{
	if (!c->route || c->route_gen != proxy.router.generation) {
		const struct sockaddr *addr = c->is_unix ? NULL : (const struct sockaddr *)&c->addr;
		const char *r = router_route(&proxy.router, c->app_name, c->user, addr, c->id);
		if (!c->route || strcmp(c->route, r) != 0) {
			if (c->route)
				clog_info(c, "route %s -> %s", c->route, r);
			free(c->route);
			c->route = proxy_strdup(r);
		}
		c->route_gen = proxy.router.generation;
	}
	return c->route;
}

/* Appends ", pg_catalog.set_config('NAME', 'VALUE', false)" to an injected
 * SELECT. set_config takes the value verbatim, so search_path reads back as
 * exactly the schema name. */
static void put_set_config(ProtoBuf *b, const char *name, const char *value, bool first)
{
	static const char head[] = "SELECT ";
	static const char sep[] = ", ";
	static const char fn[] = "pg_catalog.set_config(";
	if (first)
		proto_put_bytes(b, head, sizeof(head) - 1);
	else
		proto_put_bytes(b, sep, sizeof(sep) - 1);
	proto_put_bytes(b, fn, sizeof(fn) - 1);
	proto_quote_literal(b, name);
	proto_put_bytes(b, ", ", 2);
	proto_quote_literal(b, value);
	proto_put_bytes(b, ", false)", 8);
}

/* The route as search_path, counted for `pools` (route_sets). */
static void put_route(ProtoBuf *b, Client *c, const char *route, bool first)
{
	put_set_config(b, "search_path", route, first);
	c->pool->n_route_sets++;
}

/*
 * Makes S carry C's route and settings before C's next request. Returns true
 * when the request can go out now (the injected Query, if any, is already in
 * S's output, ahead of it), false when a route check was sent and the request
 * must wait for its answer.
 */
static bool client_prepare_server(Client *c, Server *s)
{
	const char *route = client_route(c);
	bool need_route = !s->search_path || strcmp(s->search_path, route) != 0;
	uint8_t space[512];
	ProtoBuf b;
	protobuf_init_on(&b, space, sizeof(space));
	if (need_route && !pool_route_verified(c->pool, route)) {
		size_t m = proto_msg_begin(&b, PROTO_FE_QUERY);
		put_route(&b, c, route, true);
		static const char where[] = " FROM pg_catalog.pg_namespace WHERE nspname = ";
		proto_put_bytes(&b, where, sizeof(where) - 1);
		proto_quote_literal(&b, route);
		proto_put_uint8(&b, 0);
		proto_msg_end(&b, m);
		s->checking_route = true;
		s->check_found = false;
		free(s->check_error);
		s->check_error = NULL;
		s->swallow_rfq++;
		clog_debug(c, "checking route schema %s", route);
		sock_write(&s->sock, b.data, b.len);
		protobuf_free(&b);
		return false;
	}
	bool first = true;
	size_t m = proto_msg_begin(&b, PROTO_FE_QUERY);
	if (need_route) {
		put_route(&b, c, route, true);
		first = false;
		free(s->search_path);
		s->search_path = proxy_strdup(route);
	}
	/* the server's settings were last made to match a client with the
	 * same ones: nothing to compare (the hot path in transaction mode) */
	for (size_t i = 0; s->params_sig != c->params_sig && i < c->params.n; i++) {
		const Param *p = &c->params.items[i];
		const char *have = params_get(&s->params, p->name);
		if (have && strcmp(have, p->value) == 0)
			continue;
		put_set_config(&b, p->name, p->value, first);
		first = false;
		params_set(&s->params, p->name, p->value);
	}
	s->params_sig = c->params_sig;
	if (!first) {
		proto_put_uint8(&b, 0);
		proto_msg_end(&b, m);
		if (!protobuf_ok(&b)) {
			protobuf_free(&b);
			return false;
		}
		s->swallow_rfq++;
		sock_write(&s->sock, b.data, b.len);
	}
	protobuf_free(&b);
	return true;
}

/*
 * Settings a client changes with SQL, and what pgflip does about them. The
 * text of each Query and Parse is scanned (case-insensitive substrings, so
 * a false alarm costs one extra SET, never a wrong search_path):
 *   search_path, set_config(...)  the server's search_path becomes unknown:
 *                                 the route is set again before the next
 *                                 transaction, of this client or another;
 *   RESET, DISCARD                the same, and the client's startup
 *                                 settings are set again too;
 *   SET ROLE, SESSION AUTHORIZATION
 *                                 in transaction mode the server gets
 *                                 RESET SESSION AUTHORIZATION and RESET ROLE
 *                                 before it serves anyone else.
 * So a client's own SET search_path lasts its own transaction at most (in
 * session mode: until its next transaction starts) and never reaches
 * another client.
 */
enum {
	SQL_SEARCH_PATH = 1 << 0,
	SQL_RESET = 1 << 1,
	SQL_DISCARD = 1 << 2,
	SQL_ROLE = 1 << 3,      /* "role" or "authorization" */
};

/* The words of the table above and what each one means. */
static const struct {
	const char *word;
	size_t len;
	unsigned flag;
} sql_words[] = {
	{"search_path", 11, SQL_SEARCH_PATH}, {"reset", 5, SQL_RESET},	   {"discard", 7, SQL_DISCARD},
	{"role", 4, SQL_ROLE},		      {"authorization", 13, SQL_ROLE},
};

/* The words of sql_words found anywhere in SQL (case-insensitive
 * substrings), in one pass. The first three letters are compared inline, in
 * ASCII lower case (| 0x20; no other byte can match), so the library call is
 * made for likely hits only. Every word is longer than 3, so p[1] and p[2]
 * are read only while the bytes before them are not NUL. */
static unsigned sql_scan(const char *sql)
{
	unsigned found = 0;
	for (const char *p = sql; *p; p++) {
		char a = (char)(*p | 0x20);
		if (a != 's' && a != 'r' && a != 'd' && a != 'a')
			continue;
		if (!p[1] || !p[2])
			break;
		char b = (char)(p[1] | 0x20), c = (char)(p[2] | 0x20);
		for (size_t i = 0; i < sizeof(sql_words) / sizeof(sql_words[0]); i++) {
			const char *w = sql_words[i].word;
			if (w[0] == a && w[1] == b && w[2] == c && !strncasecmp(p, w, sql_words[i].len))
				found |= sql_words[i].flag;
		}
	}
	return found;
}

static void client_scan_sql(Client *c, Server *s, const char *sql)
{
	unsigned found = sql_scan(sql);
	if (!found)
		return;
	if (found & (SQL_SEARCH_PATH | SQL_RESET | SQL_DISCARD)) {
		free(s->search_path);
		s->search_path = NULL;
	}
	if (found & (SQL_RESET | SQL_DISCARD)) {
		params_clear(&s->params);
		s->params_sig = 0;
	}
	if (found & SQL_DISCARD) {
		/* DISCARD ALL drops the server's prepared statements, and the client's */
		ps_server_clear(s);
		if (strcasestr(sql, "all"))
			ps_client_clear(c);
	}
	if ((found & SQL_ROLE) && c->pool->mode == CONF_POOL_TRANSACTION)
		s->reset_role = true;
}

/* LISTEN needs the same backend for the whole session, which transaction
 * pooling cannot promise. */
static bool sql_is_listen(const char *sql)
{
	while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' || *sql == '(')
		sql++;
	return strncasecmp(sql, "listen", 6) == 0 && !((sql[6] >= 'a' && sql[6] <= 'z') || (sql[6] >= 'A' && sql[6] <= 'Z') || sql[6] == '_');
}

/* Answer of a route check (server.c calls it through client_pump). */
static void client_check_done(Client *c, Server *s)
{
	s->checking_route = false;
	if (s->check_found) {
		pool_route_verified_add(c->pool, c->route);
		free(s->search_path);
		s->search_path = proxy_strdup(c->route);
		return;
	}
	char text[512];
	if (s->check_error)
		snprintf(text, sizeof(text), "route %s: %s", c->route, s->check_error);
	else
		snprintf(text, sizeof(text), "schema \"%s\" does not exist (route of this client)", c->route);
	clog_warning(c, "%s", text);
	client_discard_request(c, "3F000", text);
}

void client_discard_request(Client *c, const char *sqlstate, const char *message)
{
	free(c->discard_error);
	c->discard_error = proxy_strdup(message);
	snprintf(c->discard_sqlstate, sizeof(c->discard_sqlstate), "%s", sqlstate);
	c->discarding = true;
}

/* Ends a discarded request: its error and ReadyForQuery. */
static void client_discard_done(Client *c)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_error(&b, "ERROR", c->discard_sqlstate, "%s", c->discard_error ? c->discard_error : "request failed");
	proto_put_ready_for_query(&b, c->server ? c->server->tx_status : 'I');
	client_send(c, &b);
	protobuf_free(&b);
	c->discarding = false;
	free(c->discard_error);
	c->discard_error = NULL;
	/* transaction mode: the request is over, so is its hold on the server */
	if (c->server && c->pool->mode == CONF_POOL_TRANSACTION && server_at_boundary(c->server))
		server_release(c->server);
}

/* Backpressure: the server's output is over the high watermark; read from
 * the client again once it drains (server.c's drain callback). */
static void client_pause_for(Client *c, Server *s)
{
	sock_read(&c->sock, false);
	sock_want_drain(&s->sock);
}

void client_pump(Client *c)
{
	struct evbuffer *in = c->sock.in;
	for (;;) {
		if (c->state == CL_CLOSING || c->state == CL_WAIT_LOGIN || c->state == CL_WAITING)
			return;
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return;
		if (c->state == CL_STARTUP) {
			if (!client_startup(c))
				return;
			if (c->state == CL_STARTUP && evbuffer_get_length(in) == avail)
				return; /* need more bytes */
			continue;
		}
		Server *s = c->server;
		if (c->fwd_left > 0) {
			size_t n = avail < c->fwd_left ? avail : c->fwd_left;
			if (c->fwd_discard || !s)
				evbuffer_drain(in, n);
			else
				sock_write_buffer(&s->sock, in, n);
			c->fwd_left -= (uint32_t)n;
			if (s && server_output_full(s)) {
				client_pause_for(c, s);
				return;
			}
			continue;
		}
		uint8_t hdr[PROTO_HEADER_SIZE];
		ProtoHeader h;
		const char *why = "";
		if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
			return;
		switch (proto_header_parse(hdr, sizeof(hdr), proxy.conf->max_packet_size, &h, &why)) {
		case PROTO_NEED_MORE:
			return;
		case PROTO_BAD:
			client_close(c, "08P01", "bad packet header: %s", why);
			return;
		case PROTO_OK:
			break;
		}
		size_t total = (size_t)h.len + 1;
		clog_debug(c, "-> %s (%u bytes)", proto_fe_type_to_str(h.type), h.len);
		if (h.type == PROTO_FE_TERMINATE) {
			evbuffer_drain(in, avail < total ? avail : total);
			client_close(c, NULL, "client close request");
			return;
		}
		if (!s && !c->discarding) {
			/* transaction mode: a new request needs a server */
			if (proxy.paused)
				return;
			client_set_state(c, CL_WAITING);
			pool_enqueue(c->pool, c);
			/* no idle server: stop reading until one is linked (an
			 * idle server links at once, without touching epoll) */
			if (c->state == CL_WAITING)
				sock_read(&c->sock, false);
			return;
		}
		if (s && (s->checking_route || server_output_full(s)))
			return;
		if (c->discarding) {
			if (avail < total) {
				c->fwd_left = (uint32_t)(total - avail);
				c->fwd_discard = true;
				evbuffer_drain(in, avail);
				continue;
			}
			evbuffer_drain(in, total);
			if (h.type == PROTO_FE_QUERY || h.type == PROTO_FE_SYNC)
				client_discard_done(c);
			continue;
		}
		bool ps = ps_enabled(c);
		bool inspect = h.type == PROTO_FE_QUERY || h.type == PROTO_FE_PARSE;
		bool whole = inspect || (ps && ps_needs_whole(h.type));
		if (whole && avail < total)
			return; /* wait for the whole message; bounded by max_packet_size */
		if (server_at_boundary(s) && !s->swallow_rfq) {
			if (proxy.paused) {
				sock_read(&c->sock, false);
				return;
			}
			if (!client_prepare_server(c, s))
				return;
			if (c->discarding)
				continue;
		}
		if (inspect) {
			const uint8_t *msg = evbuffer_pullup(in, (ev_ssize_t)total);
			const char *sql = NULL, *name = NULL;
			bool ok = h.type == PROTO_FE_QUERY
					  ? proto_query_parse(msg + PROTO_HEADER_SIZE, proto_body_len(&h), &sql)
					  : proto_parse_parse(msg + PROTO_HEADER_SIZE, proto_body_len(&h), &name, &sql);
			if (!ok) {
				client_close(c, "08P01", "malformed %s message", proto_fe_type_to_str(h.type));
				return;
			}
			char tag[32];
			bool listen = h.type == PROTO_FE_QUERY && c->pool->mode == CONF_POOL_TRANSACTION && sql_is_listen(sql);
			if (listen || (h.type == PROTO_FE_QUERY && ps && ps_deallocate(c, sql, tag, sizeof(tag)))) {
				/* answered by pgflip: the request never reaches the server */
				evbuffer_drain(in, total);
				ProtoBuf b;
				protobuf_init(&b);
				if (listen) {
					proto_put_error(&b, "ERROR", "0A000",
							"LISTEN is not supported in transaction pooling mode: use a database "
							"entry with pool_mode=session");
				} else {
					size_t m = proto_msg_begin(&b, PROTO_BE_COMMAND_COMPLETE);
					proto_put_cstring(&b, tag);
					proto_msg_end(&b, m);
				}
				proto_put_ready_for_query(&b, s->tx_status);
				client_send(c, &b);
				protobuf_free(&b);
				if (server_at_boundary(s))
					server_release(s);
				continue;
			}
			client_scan_sql(c, s, sql);
			c->n_queries++;
		}
		switch (h.type) {
		case PROTO_FE_QUERY:
		case PROTO_FE_SYNC:
		case PROTO_FE_FUNCTION_CALL:
			s->pending++;
			s->open_cycle = false;
			break;
		case PROTO_FE_PARSE:
		case PROTO_FE_BIND:
		case PROTO_FE_DESCRIBE:
		case PROTO_FE_EXECUTE:
		case PROTO_FE_CLOSE:
		case PROTO_FE_FLUSH:
			s->open_cycle = true;
			break;
		default:
			break; /* CopyData/CopyDone/CopyFail belong to a request already open */
		}
		if (ps) {
			const uint8_t *msg = whole ? evbuffer_pullup(in, (ev_ssize_t)total) : NULL;
			if (!ps_client_message(c, s, &h, msg)) {
				evbuffer_drain(in, total); /* pgflip sent what the server needs */
				if (server_output_full(s)) {
					client_pause_for(c, s);
					return;
				}
				continue;
			}
		}
		if (avail >= total) {
			sock_write_buffer(&s->sock, in, total);
		} else {
			sock_write_buffer(&s->sock, in, avail);
			c->fwd_left = (uint32_t)(total - avail);
			c->fwd_discard = false;
		}
		if (server_output_full(s)) {
			client_pause_for(c, s);
			return;
		}
	}
}

void client_route_checked(Client *c, Server *s)
{
	client_check_done(c, s);
	client_pump(c);
}

static void client_on_read(void *arg) { client_pump(arg); }

/* The client's output drained after the server was paused for it. */
static void client_on_drain(void *arg)
{
	Client *c = arg;
	if (c->state == CL_CLOSING) {
		proxy_reap_soon();
		return;
	}
	if (c->server && c->server->sock.in) {
		sock_read(&c->server->sock, true);
		server_pump(c->server);
	}
}

static void client_on_close(void *arg, int err)
{
	Client *c = arg;
	if (err == 0)
		client_close(c, NULL, "client disconnected");
	else
		client_close(c, NULL, "client socket error: %s", strerror(err));
}

/* ---- cancel ------------------------------------------------------------ */

static void *cancel_thread(void *arg)
{
	PGcancel *cancel = arg;
	char err[256];
	if (!PQcancel(cancel, err, sizeof(err)))
		log_warning("cancel request failed: %s", err);
	PQfreeCancel(cancel);
	return NULL;
}

void client_cancel_request(uint32_t pid, uint32_t key)
{
	Client *c;
	TAILQ_FOREACH(c, &proxy.clients, link) {
		if (c->cancel_pid != pid || c->cancel_key != key)
			continue;
		Server *s = c->server;
		if (!s || !s->pg || (s->pending == 0 && !s->open_cycle)) {
			clog_debug(c, "cancel request for an idle client dropped");
			return;
		}
		PGcancel *cancel = PQgetCancel(s->pg);
		if (!cancel)
			return;
		/* PQcancel blocks (connect + send), so it gets its own short thread
		 * rather than stall the event loop. */
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, cancel_thread, cancel) != 0)
			PQfreeCancel(cancel);
		pthread_attr_destroy(&attr);
		clog_info(c, "cancel request forwarded to backend %d", s->backend_pid);
		return;
	}
	log_debug("cancel request with an unknown key dropped");
}
