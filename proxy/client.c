/*
 * proxy/client.c: the client connection state machine (ClientState).
 *
 * Reading: every client message passes through client_pump(), which runs
 * named steps (client_step_*) until one of them cannot go on. Most messages
 * are moved whole, or streamed in pieces when long, from the client's input
 * buffer to its server's output buffer without a copy
 * (evbuffer_remove_buffer). A few are looked at first:
 *   - Terminate ends the client; its server goes back to the pool;
 *   - Query and Parse text goes through the SQL scanner (sqlscan.h), which
 *     says what session state it may change: search_path (then the server's
 *     is unknown, and it is set again before the next transaction),
 *     settings and roles (reset before the server serves another client in
 *     transaction mode), LISTEN (refused in transaction mode);
 *   - the first message of a request on a server whose route or settings
 *     differ from the client's waits while the server runs pgflip's query
 *     that sets them (SV_PREPARING); only when the server answered it
 *     without error does the request go on. A route whose schema has not
 *     been seen on this database yet is checked by the same query: a missing
 *     schema, or any failure of that query, answers the client's request
 *     with an ErrorResponse and nothing of that request runs.
 *
 * Whether the socket is read at all follows from the state alone
 * (client_may_read): every state change and every pump ends with
 * client_update_read(), so no early return can forget it.
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

#include "proxy/proxy.h"
#include "proxy/auth.h"
#include "proxy/authq.h"
#include "proxy/client.h"
#include "proxy/console.h"
#include "proxy/server.h"
#include "proxy/pool.h"

#include "proxy/sqlscan.h"
#include "proxy/startup.h"
#include "proxy/tls.h"

static void client_on_read(void *arg);
static void client_on_drain(void *arg);
static void client_on_close(void *arg, int err);
static const SockCallbacks client_sock_cb = {client_on_read, client_on_drain, client_on_close};
static bool client_random(void *out, size_t n);

/* Input a client may have buffered beyond the message the pump waits for
 * (bytes): enough to see the next message header and keep a pipelined
 * client busy, small enough that 10,000 clients cost at most a few hundred
 * MB. A message that must be seen whole may grow the input to its own
 * length (bounded by max_packet_size). */
#define CLIENT_INPUT_CAP (64 * 1024)
/* A client whose input ends in the middle of a message for this long is
 * closed (ms): a slowloris client must not hold a server or memory. */
#define CLIENT_PARTIAL_TIMEOUT_MS (60 * 1000)
/* Flagged prepared statement names kept per client; past that, every Bind
 * is treated as flagged (a client with hundreds of statements that each
 * call set_config is odd; correctness over speed then). */
#define CLIENT_MAX_FLAGGED 256
/* Input all clients together may hold beyond CLIENT_INPUT_CAP each, for
 * messages that must be whole (a named Parse or a Bind in transaction mode):
 * 256 MiB, or one max_packet_size message if that is larger. A client whose
 * message does not fit waits (unread) until others' leave. */
#define CLIENT_WHOLE_BUDGET ((size_t)256 * 1024 * 1024)

const char *client_state_to_str(ClientState st)
{
	switch (st) {
	case CL_STARTUP: return "startup";
	case CL_AUTH: return "auth";
	case CL_AUTH_LOOKUP: return "auth_lookup";
	case CL_WAIT_LOGIN: return "login";
	case CL_IDLE: return "idle";
	case CL_WAITING: return "waiting";
	case CL_ACTIVE: return "active";
	case CL_CONSOLE: return "console";
	case CL_CLOSING: return "closing";
	}
	return "?";
}

/* Connected but not logged in: no max_client_conn slot, client_login_timeout runs. */
static bool client_logging_in(ClientState st) { return st == CL_STARTUP || st == CL_AUTH || st == CL_AUTH_LOOKUP; }

void client_set_state(Client *c, ClientState st)
{
	ClientState old = c->state;
	switch (st) {
	case CL_STARTUP:
	case CL_AUTH:
	case CL_AUTH_LOOKUP:
	case CL_WAIT_LOGIN:
	case CL_IDLE:
	case CL_WAITING:
	case CL_ACTIVE:
	case CL_CONSOLE:
	case CL_CLOSING:
		break;
	default:
		log_error("client_set_state: bad state %d", (int)st);
		abort();
	}
	if (old == st)
		return;
	clog_debug(c, "state %s -> %s", client_state_to_str(old), client_state_to_str(st));
	if (old == CL_WAITING || old == CL_WAIT_LOGIN) {
		pool_waiting_remove(c->pool, c);
		c->pool->stats.wait_time_us += (proxy_now_ms() - c->wait_start_ms) * 1000;
	}
	if (client_logging_in(old) && !client_logging_in(st))
		proxy.n_startup--;
	c->state = st;
	if (st == CL_WAITING || st == CL_WAIT_LOGIN)
		pool_waiting_add(c->pool, c);
	if (st == CL_CLOSING) {
		TAILQ_REMOVE(&proxy.clients, c, link);
		TAILQ_INSERT_TAIL(&proxy.graveyard, c, link);
		proxy.n_clients--;
		c->close_start_ms = proxy_now_ms();
		proxy_reap_soon();
	}
	client_update_read(c);
}

/*
 * The reading predicate: the one place that decides whether pgflip reads
 * from a client. Not before it logged in past its StartupMessage while a
 * lookup or a server login runs, not while its server runs pgflip's route
 * query or has a full output, not at a transaction boundary (or waiting)
 * while the proxy is paused, and never past the input cap
 * (CLIENT_INPUT_CAP, or the whole message the pump waits for). A client
 * waiting for a server is read up to the cap: it may queue its request.
 */
static bool client_may_read(const Client *c)
{
	size_t have = evbuffer_get_length(c->sock.in);
	if (have >= c->sock.in_cap)
		return false;
	size_t budget = CLIENT_WHOLE_BUDGET > proxy.conf->max_packet_size ? CLIENT_WHOLE_BUDGET
									   : proxy.conf->max_packet_size;
	if (have >= CLIENT_INPUT_CAP && proxy.whole_bytes >= budget)
		return false; /* the janitor asks again */
	switch (c->state) {
	case CL_STARTUP:
	case CL_AUTH:
	case CL_CONSOLE:
		return true;
	case CL_IDLE:
	case CL_WAITING:
		/* a waiting client may queue its request: the input cap bounds
		 * it, and reading on saves two epoll_ctl per transaction */
		return !proxy_paused(c->pool);
	case CL_ACTIVE: {
		const Server *s = c->server;
		if (!s || s->state == SV_PREPARING || server_output_full(s) || ps_holding(s))
			return false;
		return !(proxy_paused(c->pool) && server_at_boundary(s));
	}
	case CL_AUTH_LOOKUP:
	case CL_WAIT_LOGIN:
	case CL_CLOSING:
		return false;
	}
	return false;
}

void client_update_read(Client *c)
{
	size_t have = evbuffer_get_length(c->sock.in);
	size_t over = c->state != CL_CLOSING && have > CLIENT_INPUT_CAP ? have - CLIENT_INPUT_CAP : 0;
	proxy.whole_bytes = proxy.whole_bytes - c->whole_counted + over;
	c->whole_counted = over;
	c->sock.in_cap = c->need > CLIENT_INPUT_CAP ? c->need : CLIENT_INPUT_CAP;
	sock_read(&c->sock, client_may_read(c));
}

static void client_send(Client *c, ProtoBuf *b)
{
	if (!protobuf_ok(b)) {
		client_close(c, NULL, "out of memory building a reply");
		return;
	}
	sock_write(&c->sock, b->data, b->len);
}

/* Too many connections that have not logged in: the oldest goes, so that
 * idle sockets cannot keep logins out. */
static void client_evict_startup(void)
{
	Client *c;
	TAILQ_FOREACH(c, &proxy.clients, link) {
		if (client_logging_in(c->state)) {
			client_close(c, NULL, "too many connections logging in: the oldest is closed");
			return;
		}
	}
}

void client_accept(evutil_socket_t fd, const struct sockaddr *addr, int socklen, bool is_unix)
{
	Client *c = calloc(1, sizeof(*c));
	if (!c) {
		log_warning("out of memory accepting a connection");
		evutil_closesocket(fd);
		return;
	}
	c->id = ++proxy.next_id;
	c->is_unix = is_unix;
	c->connect_time = time(NULL);
	c->connect_ms = c->active_ms = proxy_now_ms();
	if (!client_random(&c->canary_nonce, sizeof(c->canary_nonce)))
		c->canary_nonce = c->id; /* hashed all the same: spread, only guessable */
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
		log_warning("out of memory setting up a connection");
		sock_close(&c->sock);
		free(c);
		return;
	}
	c->state = CL_STARTUP;
	TAILQ_INSERT_TAIL(&proxy.clients, c, link);
	proxy.n_clients++;
	proxy.n_startup++;
	proxy.n_clients_total++;
	if (proxy.n_startup > proxy.conf->max_client_conn)
		client_evict_startup();
	client_update_read(c);
	clog_debug(c, "connection accepted");
}

/* The SCRAM keys C proved go: handed to its pool, or not needed. */
static void client_drop_keys(Client *c)
{
	login_keys_free(c->scram_keys);
	c->scram_keys = NULL;
}

void client_free(Client *c)
{
	if (!c)
		return;
	sock_close(&c->sock);
	params_clear(&c->params);
	ps_client_clear(c);
	auth_free(c);
	client_drop_keys(c);
	console_free(c->console);
	free(c->user);
	free(c->database);
	free(c->app_name);
	free(c->route);
	free(c->discard_error);
	for (size_t i = 0; i < c->n_flagged; i++)
		free(c->flagged[i].name);
	free(c->flagged);
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
		/* a connection that never logged in is noise, unless its TLS failed */
		bool quiet = c->state == CL_STARTUP && !c->sock.ssl_error;
		clog(quiet ? CONF_LOG_DEBUG : CONF_LOG_INFO, c, "closing: %s", text);
	}
	authq_forget(c);
	auth_free(c); /* secrets of an unfinished exchange go now */
	if (c->tx_start_us && (sqlstate || c->tx_failed)) {
		/* closed inside a transaction that failed: it counts as ended */
		if (sqlstate)
			client_tx_error(c, sqlstate);
		client_tx_end(c, false);
	}
	Server *s = c->server;
	client_set_state(c, CL_CLOSING);
	if (s)
		server_release(s);
	c->server = NULL;
	sock_flush(&c->sock); /* its last words (a FATAL error) leave now */
}

/* ---- login ------------------------------------------------------------- */

static void client_login_reply(Client *c, const ParamList *server_params)
{
	uint8_t space[1024];
	ProtoBuf b;
	protobuf_init_on(&b, space, sizeof(space));
	/* the carried settings the client did not give take the pool's login
	 * values, so that a server left with another client's gets them back */
	for (size_t i = 0; i < server_params->n; i++) {
		const Param *p = &server_params->items[i];
		if (startup_carried(proxy.conf, p->name) && !params_get(&c->params, p->name))
			params_set(&c->params, p->name, p->value);
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
	const char *route = client_route(c);
	clog_info(c, "login: application_name=\"%s\" route=%s pool_mode=%s", c->app_name, route ? route : "?",
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

/* Authenticated: the database entry, the pool, the cancel key, then the
 * login's answer (from the pool's cached server parameters) or a wait for
 * the first server login. Returns false when the client was closed. */
static bool client_enter(Client *c)
{
	if (proxy.conf->admin_db[0] && strcmp(c->database, proxy.conf->admin_db) == 0) {
		client_drop_keys(c);
		return console_enter(c);
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
	/* SCRAM passthrough: what C proved logs the pool in upstream as C,
	 * when the pool's user is C and the login has no password of its own;
	 * newer keys replace older ones (a changed verifier) */
	if (c->scram_keys && strcmp(c->pool->user, c->user) == 0 && !server_login_has_password(c->pool))
		pool_set_scram_keys(c->pool, c->scram_keys);
	client_drop_keys(c);
	c->sock.count_in = &c->pool->stats.bytes_received;
	c->sock.count_out = &c->pool->stats.bytes_sent;
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
	}
	return c->state != CL_CLOSING;
}

/* After the StartupMessage: what the exchange of auth.c answered. */
static bool client_authenticate(Client *c)
{
	switch (auth_start(c)) {
	case AUTH_DONE:
		return client_enter(c);
	case AUTH_WAIT:
		client_set_state(c, CL_AUTH);
		return true;
	case AUTH_LOOKUP:
		client_set_state(c, CL_AUTH_LOOKUP);
		return false;
	case AUTH_FAILED:
		break;
	}
	return false;
}

void client_auth_continue(Client *c, AuthStatus st)
{
	if (st == AUTH_WAIT) {
		client_set_state(c, CL_AUTH);
		client_pump(c); /* its answer may be there already */
	} else if (st == AUTH_DONE && client_enter(c)) {
		client_pump(c);
	}
}

/* C's canary buckets, once, at login (router_canary_draw): from its address
 * (a Unix socket: its peer's uid), its application_name, the nonce drawn at
 * accept. Its canary decision follows from them for its whole life. */
static void client_draw_canary(Client *c)
{
	uid_t uid;
	RouterKeys k = {
		.addr = c->is_unix ? NULL : (const struct sockaddr *)&c->addr,
		.peer_uid = c->is_unix && sock_peer_uid(c->sock.fd, &uid) ? (long)uid : -1,
		.app = c->app_name,
		.nonce = c->canary_nonce,
	};
	router_canary_draw(&proxy.canary_hash, &k, c->canary_buckets);
}

/* The StartupMessage was read: checks that may refuse the login, then the
 * authentication. Returns false when the client was closed. */
static bool client_login(Client *c, const ProtoStartup *st)
{
	StartupResult res;
	const char *user = proto_startup_get(st, "user");
	const char *db = proto_startup_get(st, "database");
	c->user = strdup(user);
	c->database = strdup(db && *db ? db : user);
	bool ok = startup_collect(proxy.conf, st, &c->params, &res);
	/* from the packet, or from options (-c application_name=x) */
	const char *app = params_get(&c->params, "application_name");
	c->app_name = strdup(app ? app : "");
	if (c->app_name)
		params_set(&c->params, "application_name", c->app_name);
	if (!c->user || !c->database || !c->app_name || c->params.oom) {
		client_close(c, "53200", "out of memory at login");
		return false;
	}
	client_draw_canary(c);
	client_negotiate(c, st);
	if (!ok) {
		client_close(c, "08P01", "%s", res.why);
		return false;
	}
	if (res.route_ignored)
		clog_info(c, "search_path given at startup is ignored: the route decides it");
	if (proxy.shutting_down) {
		client_close(c, "57P03", "pgflip is shutting down");
		return false;
	}
	if (proxy.tls && proxy.tls->mode >= CONF_TLS_REQUIRE && !c->sock.ssl && !c->is_unix) {
		client_close(c, "28000", "SSL required (client_tls_sslmode = %s)",
			     conf_tls_mode_to_str(proxy.tls->mode));
		return false;
	}
	if (proxy.n_clients - proxy.n_startup >= proxy.conf->max_client_conn) {
		client_close(c, "53300", "no more connections allowed (max_client_conn)");
		return false;
	}
	return client_authenticate(c);
}

/* SSLRequest: 'S' and a TLS handshake when client_tls_sslmode allows it
 * (TCP clients only, as PgBouncer), else 'N' and plain text. Bytes already
 * behind the SSLRequest were sent before the client could have read our
 * answer: a man in the middle's, so the client is closed (PostgreSQL does
 * the same since CVE-2021-23214). */
static bool client_start_tls(Client *c)
{
	if (c->sock.ssl) {
		client_close(c, "08P01", "SSLRequest inside TLS");
		return false;
	}
	if (!proxy.tls || c->is_unix) {
		sock_write(&c->sock, "N", 1);
		return true;
	}
	if (evbuffer_get_length(c->sock.in) > 0) {
		client_close(c, "08P01", "received unencrypted data after SSLRequest");
		return false;
	}
	SSL *ssl = tls_accept(proxy.tls, c->sock.fd);
	if (!ssl) {
		client_close(c, "53200", "out of memory starting TLS");
		return false;
	}
	sock_write(&c->sock, "S", 1);
	sock_flush(&c->sock);
	if (sock_out_len(&c->sock) > 0 || c->sock.failed) {
		SSL_free(ssl);
		client_close(c, NULL, "cannot send the SSLRequest answer");
		return false;
	}
	sock_start_tls(&c->sock, ssl);
	return true;
}

/* Reads the first packet(s). Returns false when the pump must stop. */
static bool client_step_startup(Client *c)
{
	struct evbuffer *in = c->sock.in;
	size_t avail = evbuffer_get_length(in);
	size_t look = avail < PROTO_STARTUP_MAX ? avail : PROTO_STARTUP_MAX;
	const uint8_t *buf = evbuffer_pullup(in, (ev_ssize_t)look);
	if (!buf) {
		client_close(c, "53200", "out of memory reading the startup packet");
		return false;
	}
	if (buf[0] == PROTO_FE_TERMINATE) {
		/* a typed message before any StartupMessage (its length would be
		 * over 1 GiB): PostgreSQL closes such a connection without a word */
		client_close(c, NULL, "Terminate before the StartupMessage");
		return false;
	}
	ProtoStartup st;
	const char *why = "";
	switch (proto_startup_parse(buf, look, &st, &why)) {
	case PROTO_NEED_MORE:
		c->need = avail + 1;
		return false;
	case PROTO_BAD:
		client_close(c, strstr(why, "protocol") ? "0A000" : "08P01", "%s", why);
		return false;
	case PROTO_OK:
		break;
	}
	if (st.kind == PROTO_SSL_REQUEST) {
		evbuffer_drain(in, st.packet_len);
		return client_start_tls(c);
	}
	if (st.kind == PROTO_GSSENC_REQUEST) {
		evbuffer_drain(in, st.packet_len);
		sock_write(&c->sock, "N", 1); /* no GSSAPI encryption: go on */
		return true;
	}
	if (st.kind == PROTO_CANCEL_REQUEST) {
		evbuffer_drain(in, st.packet_len);
		client_cancel_request(st.cancel_pid, st.cancel_key);
		client_close(c, NULL, "cancel request handled");
		return false;
	}
	bool ok = client_login(c, &st); /* st points into the buffer: drain after */
	if (c->state != CL_CLOSING)
		evbuffer_drain(in, st.packet_len);
	return ok;
}

/* CL_AUTH: one whole authentication message ('p'), to auth.c. */
static bool client_step_auth(Client *c, size_t avail)
{
	uint8_t hdr[PROTO_HEADER_SIZE];
	ProtoHeader h;
	const char *why = "";
	if (evbuffer_copyout(c->sock.in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr)) {
		c->need = PROTO_HEADER_SIZE;
		return false;
	}
	if (proto_header_parse(hdr, sizeof(hdr), AUTH_MESSAGE_MAX, &h, &why) == PROTO_BAD) {
		client_close(c, "08P01", "bad authentication message: %s", why);
		return false;
	}
	if (h.type == PROTO_FE_TERMINATE) {
		client_close(c, NULL, "client close request during authentication");
		return false;
	}
	if (h.type != PROTO_FE_PASSWORD) {
		client_close(c, "08P01", "expected a password message, got %s", proto_fe_type_to_str(h.type));
		return false;
	}
	size_t total = (size_t)h.len + 1;
	if (avail < total) {
		c->need = total;
		return false;
	}
	const uint8_t *msg = evbuffer_pullup(c->sock.in, (ev_ssize_t)total);
	if (!msg) {
		client_close(c, "53200", "out of memory reading an authentication message");
		return false;
	}
	AuthStatus st = auth_message(c, msg + PROTO_HEADER_SIZE, total - PROTO_HEADER_SIZE);
	if (c->state != CL_CLOSING)
		evbuffer_drain(c->sock.in, total);
	if (st == AUTH_WAIT)
		return true;
	return st == AUTH_DONE && client_enter(c);
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
	client_pump(c);
}

void client_server_failed(Client *c, const char *sqlstate, const char *message)
{
	/* In both modes, as a direct connection and PgBouncer: the backend's
	 * FATAL (its SQLSTATE and message) ends the client's session too. A
	 * transaction-mode client keeping its session would see its
	 * transaction vanish under a terminate that meant to end it. */
	c->server = NULL;
	client_close(c, sqlstate, "%s", message);
}

/* ---- transactions: what routestats.c counts ------------------------------- */

/* One more Query or Parse of C (its pool counts the requests it answers:
 * PoolStats.query_count, stats.h). */
static void client_count_query(Client *c)
{
	c->n_queries++;
}

/* The stats entry of C's route, looked up at its first transaction there. */
static RouteStatsEntry *client_stats(Client *c)
{
	if (!c->rstats && c->route)
		c->rstats = routestats_get(&proxy.rstats, c->route);
	return c->rstats;
}

void client_tx_error(Client *c, const char *sqlstate)
{
	c->tx_failed = true;
	RouteStatsEntry *e = client_stats(c);
	if (e)
		routestats_error(e, sqlstate);
}

void client_tx_end(Client *c, bool ready)
{
	RouteStatsEntry *e = client_stats(c);
	uint64_t now_us = proxy_now_us();
	if (e)
		routestats_end(e, now_us, ready ? c->tx_start_us : 0, c->tx_failed);
	c->n_transactions++;
	if (c->pool) {
		pool_count_transaction(c->pool, e);
		if (ready && c->tx_start_us && now_us > c->tx_start_us)
			c->pool->stats.xact_time_us += now_us - c->tx_start_us;
	}
	proxy.n_transactions++;
	c->tx_start_us = 0;
	c->tx_failed = false;
}

/* ---- routing ----------------------------------------------------------- */

const char *client_route(Client *c)
{
	if (!c->route || c->route_gen != proxy.router.generation) {
		const struct sockaddr *addr = c->is_unix ? NULL : (const struct sockaddr *)&c->addr;
		const char *r = router_route(&proxy.router, c->app_name, c->user, addr, c->canary_buckets);
		if (!c->route || strcmp(c->route, r) != 0) {
			if (c->route)
				clog_info(c, "route %s -> %s", c->route, r);
			free(c->route);
			c->route = strdup(r); /* NULL: out of memory, the caller closes */
			c->rstats = NULL; /* found again at its first transaction there */
		}
		c->route_gen = proxy.router.generation;
	}
	return c->route;
}

const char *client_next_route(const Client *c)
{
	if (c->route && c->server && !server_at_boundary(c->server))
		return c->route; /* inside a transaction or a request: its route holds until the boundary */
	const struct sockaddr *addr = c->is_unix ? NULL : (const struct sockaddr *)&c->addr;
	return router_route(&proxy.router, c->app_name, c->user, addr, c->canary_buckets);
}

/* Appends "pg_catalog.set_config('NAME', VALUE, false)" to the SELECT list
 * of pgflip's query (", " first unless FIRST). VALUE is a literal, or, when
 * NULL, the setting's reset value (what RESET NAME would give). set_config
 * takes the value verbatim, so search_path reads back as exactly the schema
 * name. */
static void put_set_config(ProtoBuf *b, const char *name, const char *value, bool first)
{
	static const char fn[] = "pg_catalog.set_config(";
	static const char reset[] = "(SELECT reset_val FROM pg_catalog.pg_settings WHERE name = ";
	if (!first)
		proto_put_bytes(b, ", ", 2);
	proto_put_bytes(b, fn, sizeof(fn) - 1);
	proto_quote_literal(b, name);
	proto_put_bytes(b, ", ", 2);
	if (value) {
		proto_quote_literal(b, value);
	} else {
		proto_put_bytes(b, reset, sizeof(reset) - 1);
		proto_quote_literal(b, name);
		proto_put_uint8(b, ')');
	}
	proto_put_bytes(b, ", false)", 8);
}

/* The settings S must change to match C: C's values it lacks, and carried
 * settings an earlier client left that C did not give (reset). Appended to
 * B; returns how many. */
static size_t put_settings(ProtoBuf *b, const Client *c, const Server *s, bool first)
{
	size_t n = 0;
	for (size_t i = 0; i < c->params.n; i++) {
		const Param *p = &c->params.items[i];
		const char *have = params_get(&s->params, p->name);
		if (have && strcmp(have, p->value) == 0)
			continue;
		put_set_config(b, p->name, p->value, first && n == 0);
		n++;
	}
	for (size_t i = 0; i < s->params.n; i++) {
		const Param *p = &s->params.items[i];
		if (params_get(&c->params, p->name) || !startup_carried(proxy.conf, p->name))
			continue;
		put_set_config(b, p->name, NULL, first && n == 0);
		n++;
	}
	return n;
}

/*
 * Makes S carry C's route and settings before C's next request. Returns
 * true when the request can go out now, false when pgflip's query was sent
 * (S is SV_PREPARING) and the request waits for client_prepared().
 */
static bool client_prepare_server(Client *c, Server *s)
{
	const char *route = client_route(c);
	if (!route) {
		client_close(c, "53200", "out of memory choosing its route");
		return false;
	}
	bool need_route = !s->search_path || strcmp(s->search_path, route) != 0;
	/* the server's settings were last made to match a client with the
	 * same ones: nothing to compare (the hot path in transaction mode) */
	bool need_settings = s->params_sig != c->params_sig;
	if (!need_route && !need_settings)
		return true;
	uint8_t space[512];
	ProtoBuf b;
	protobuf_init_on(&b, space, sizeof(space));
	size_t m = proto_msg_begin(&b, PROTO_FE_QUERY);
	static const char head[] = "SELECT ";
	proto_put_bytes(&b, head, sizeof(head) - 1);
	size_t n = 0;
	if (need_route) {
		put_set_config(&b, "search_path", route, true);
		c->pool->n_route_sets++;
		n++;
	}
	if (need_settings)
		n += put_settings(&b, c, s, n == 0);
	bool check = need_route && !pool_route_verified(c->pool, route);
	if (check) {
		static const char where[] = " FROM pg_catalog.pg_namespace WHERE nspname = ";
		proto_put_bytes(&b, where, sizeof(where) - 1);
		proto_quote_literal(&b, route);
	}
	proto_put_uint8(&b, 0);
	proto_msg_end(&b, m);
	if (n == 0) {
		s->params_sig = c->params_sig; /* same values after all */
		protobuf_free(&b);
		return true;
	}
	if (!protobuf_ok(&b)) {
		protobuf_free(&b);
		client_close(c, "53200", "out of memory building the route query");
		return false;
	}
	clog_debug(c, "setting route %s%s and %zu settings on S-%llu", route, check ? " (checked)" : "",
		   n - (need_route ? 1 : 0), (unsigned long long)s->id);
	server_prepare(s, route, check, b.data, b.len);
	protobuf_free(&b);
	return false;
}

void client_prepared(Client *c, Server *s)
{
	if (s->prep_sqlstate[0]) {
		/* nothing it set holds: the server's session state is unknown, and
		 * nothing of the request runs */
		server_forget_settings(s);
		char text[600];
		snprintf(text, sizeof(text), "pgflip could not set the route and settings of this client: %s",
			 s->prep_error ? s->prep_error : s->prep_sqlstate);
		clog_warning(c, "on S-%llu: %s", (unsigned long long)s->id, text);
		client_discard_request(c, s->prep_sqlstate, text);
	} else if (s->prep_check && !s->prep_found) {
		char text[512];
		snprintf(text, sizeof(text), "schema \"%s\" does not exist (route of this client)", s->prep_route);
		clog_warning(c, "%s", text);
		client_discard_request(c, "3F000", text);
	} else {
		/* confirmed by the server: now it is so */
		if (s->prep_check)
			pool_route_verified_add(c->pool, s->prep_route);
		free(s->search_path);
		s->search_path = s->prep_route ? strdup(s->prep_route) : NULL; /* NULL: unknown, set again next time */
		for (size_t i = 0; i < s->params.n;) {
			const char *name = s->params.items[i].name;
			if (!params_get(&c->params, name) && startup_carried(proxy.conf, name))
				params_remove(&s->params, name);
			else
				i++;
		}
		params_copy(&s->params, &c->params);
		s->params_sig = c->params_sig;
	}
	client_pump(c);
}

/* ---- what the client's SQL may change ----------------------------------- */

/*
 * The flags of sqlscan.h for a Query or Parse text, and what pgflip does:
 *   PATH      the server's search_path is unknown: set again before the next
 *             transaction, of this client or another (unless the server
 *             reports search_path itself);
 *   SETTINGS  in transaction mode, RESET ALL before the server serves
 *             another client; the settings pgflip set are unknown;
 *   ROLE      in transaction mode, RESET SESSION AUTHORIZATION and RESET
 *             ROLE before the server serves another client;
 *   DISCARD_ALL  the server's prepared statements are gone, and the
 *             client's.
 * So a client's own changes last its own transaction at most (in session
 * mode: until its next transaction starts) and never reach another client.
 */
static void client_scan_sql(Client *c, Server *s, unsigned found)
{
	if (!found)
		return;
	bool tx = c->pool->mode == CONF_POOL_TRANSACTION;
	if ((found & SQLSCAN_PATH) && !s->reports_search_path) {
		free(s->search_path);
		s->search_path = NULL;
	}
	if (found & SQLSCAN_SETTINGS) {
		s->params_sig = 0;
		if (tx)
			s->reset_settings = true;
	}
	if (found & SQLSCAN_DISCARD_ALL) {
		ps_server_clear(s);
		ps_client_clear(c);
		server_forget_settings(s);
	}
	if ((found & SQLSCAN_ROLE) && tx)
		s->reset_role = true;
}

/* Answers a request pgflip refuses or handles itself (it never reaches the
 * server): ERROR SQLSTATE MESSAGE, or the command tag TAG when SQLSTATE is
 * NULL, then ReadyForQuery. */
static void client_answer(Client *c, Server *s, const char *sqlstate, const char *text)
{
	ProtoBuf b;
	protobuf_init(&b);
	if (sqlstate) {
		proto_put_error(&b, "ERROR", sqlstate, "%s", text);
	} else {
		size_t m = proto_msg_begin(&b, PROTO_BE_COMMAND_COMPLETE);
		proto_put_cstring(&b, text);
		proto_msg_end(&b, m);
	}
	proto_put_ready_for_query(&b, s->tx_status);
	client_send(c, &b);
	protobuf_free(&b);
	if (sqlstate && c->state != CL_CLOSING)
		client_tx_error(c, sqlstate);
	if (server_at_boundary(s)) {
		if (c->state != CL_CLOSING)
			client_tx_end(c, true);
		server_release(s);
	}
}

/* The statement NAME ("" = unnamed) was parsed from flagged text. */
static void client_flag_stmt(Client *c, const char *name, unsigned flags)
{
	for (size_t i = 0; i < c->n_flagged; i++) {
		if (strcmp(c->flagged[i].name, name) == 0) {
			c->flagged[i].flags |= flags;
			return;
		}
	}
	if (c->n_flagged >= CLIENT_MAX_FLAGGED) {
		c->bind_flags |= flags;
		return;
	}
	FlaggedStmt *grown = proxy_grow_try(c->flagged, c->n_flagged, &c->cap_flagged, sizeof(FlaggedStmt));
	char *copy = grown ? strdup(name) : NULL;
	if (!copy) {
		c->bind_flags |= flags; /* out of memory: every Bind applies them, as past the limit */
		return;
	}
	c->flagged = grown;
	c->flagged[c->n_flagged++] = (FlaggedStmt){copy, flags};
}

/* A whole Bind: the flags of its statement, if its Parse was flagged. */
static unsigned client_bind_flags(const Client *c, const ProtoHeader *h, const uint8_t *msg)
{
	ProtoReader r;
	const char *portal, *name;
	proto_reader_init(&r, msg + PROTO_HEADER_SIZE, proto_body_len(h));
	if (!proto_get_cstring(&r, &portal) || !proto_get_cstring(&r, &name))
		return SQLSCAN_SUSPECT; /* the server will refuse it; flag anyway */
	unsigned flags = c->bind_flags;
	for (size_t i = 0; i < c->n_flagged; i++)
		if (strcmp(c->flagged[i].name, name) == 0)
			flags |= c->flagged[i].flags;
	return flags;
}

static const char listen_refused[] =
	"LISTEN is not supported in transaction pooling mode: use a database entry with pool_mode=session";

/*
 * Scans SQL as the server will lex it: with its standard_conforming_strings
 * and encodings as last reported. A SET earlier in the same pipeline may
 * change those before the server lexes this text (its ParameterStatus is
 * still to come): then every combination is scanned and the flags joined.
 */
static unsigned client_scan_text(Server *s, const char *sql)
{
	if (!(s->lex_unsure && s->pending > 0)) {
		unsigned found = sqlscan_text(sql, SQLSCAN_CSTRING, s->scs, (SqlScanEncoding)s->sql_enc);
		s->lex_unsure = (found & SQLSCAN_SETTINGS) != 0;
		return found;
	}
	unsigned found = 0;
	for (int scs = 0; scs < 2; scs++)
		for (int enc = SQLSCAN_ENC_BYTES; enc <= SQLSCAN_ENC_PAIRS; enc++)
			found |= sqlscan_text(sql, SQLSCAN_CSTRING, scs, (SqlScanEncoding)enc);
	return found;
}

/*
 * A Parse of LISTEN in transaction mode: replaced, at the front of the
 * input, by a Parse of the same name whose statement fails with 0A000 when
 * it runs. The server then answers, and skips to the Sync, exactly where
 * the LISTEN would have, whatever else the client pipelined around it.
 * Returns true: the pump reads the new message.
 */
static bool client_replace_parse(Client *c, const char *name, size_t total)
{
	static const char body[] = "DO $pgflip$BEGIN RAISE EXCEPTION USING ERRCODE = '0A000', MESSAGE = '";
	static const char tail[] = "'; END$pgflip$";
	uint8_t space[512];
	ProtoBuf b;
	protobuf_init_on(&b, space, sizeof(space));
	size_t m = proto_msg_begin(&b, PROTO_FE_PARSE);
	proto_put_cstring(&b, name);
	proto_put_bytes(&b, body, sizeof(body) - 1);
	proto_put_bytes(&b, listen_refused, sizeof(listen_refused) - 1);
	proto_put_bytes(&b, tail, sizeof(tail)); /* with its NUL */
	proto_put_uint16(&b, 0);
	proto_msg_end(&b, m);
	evbuffer_drain(c->sock.in, total); /* NAME pointed into it: copied above */
	if (!protobuf_ok(&b) || evbuffer_prepend(c->sock.in, b.data, b.len) != 0) {
		protobuf_free(&b);
		client_close(c, "53200", "out of memory refusing LISTEN");
		return false;
	}
	protobuf_free(&b);
	clog_info(c, "LISTEN in a Parse refused (transaction mode)");
	return true;
}

/*
 * A whole Query or Parse (MSG, TOTAL bytes) on its way to S. Returns true
 * when it goes on to the server, false when pgflip answered it (drained)
 * or closed the client.
 */
static bool client_inspect(Client *c, Server *s, const ProtoHeader *h, const uint8_t *msg, size_t total)
{
	const char *sql = NULL, *name = NULL;
	bool ok = h->type == PROTO_FE_QUERY ? proto_query_parse(msg + PROTO_HEADER_SIZE, proto_body_len(h), &sql)
					   : proto_parse_parse(msg + PROTO_HEADER_SIZE, proto_body_len(h), &name, &sql);
	if (!ok) {
		client_close(c, "08P01", "malformed %s message", proto_fe_type_to_str(h->type));
		return false;
	}
	unsigned found = client_scan_text(s, sql);
	bool tx = c->pool->mode == CONF_POOL_TRANSACTION;
	char tag[32];
	if (tx && (found & SQLSCAN_LISTEN)) {
		if (h->type == PROTO_FE_PARSE)
			return client_replace_parse(c, name, total);
		evbuffer_drain(c->sock.in, total);
		client_answer(c, s, "0A000", listen_refused);
		return false;
	}
	if (h->type == PROTO_FE_QUERY && (found & SQLSCAN_DEALLOCATE) && ps_enabled(c) &&
	    ps_deallocate(c, sql, tag, sizeof(tag))) {
		evbuffer_drain(c->sock.in, total);
		client_answer(c, s, NULL, tag);
		return false;
	}
	if (h->type == PROTO_FE_PARSE && (found & SQLSCAN_SUSPECT))
		client_flag_stmt(c, name, found & SQLSCAN_SUSPECT);
	client_scan_sql(c, s, found);
	client_count_query(c);
	return true;
}

void client_discard_request(Client *c, const char *sqlstate, const char *message)
{
	free(c->discard_error);
	c->discard_error = strdup(message);
	snprintf(c->discard_sqlstate, sizeof(c->discard_sqlstate), "%s", sqlstate);
	if (!c->discard_error)
		client_close(c, sqlstate, "%s", message); /* the error all the same, as the last word */
}

/* Ends a discarded request: its error and ReadyForQuery. */
static void client_discard_done(Client *c)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_error(&b, "ERROR", c->discard_sqlstate, "%s", c->discard_error ? c->discard_error : "request failed");
	char status = c->server ? c->server->tx_status : 'I';
	proto_put_ready_for_query(&b, status);
	client_send(c, &b);
	protobuf_free(&b);
	free(c->discard_error);
	c->discard_error = NULL;
	if (c->state != CL_CLOSING) {
		client_tx_error(c, c->discard_sqlstate);
		if (status == 'I' && (!c->server || server_at_boundary(c->server)))
			client_tx_end(c, true);
	}
	/* transaction mode: the request is over, so is its hold on the server */
	if (c->server && c->pool->mode == CONF_POOL_TRANSACTION && server_at_boundary(c->server))
		server_release(c->server);
}

/* ---- the pump ---------------------------------------------------------- */

static void client_scan_input(Client *c, size_t off, size_t n);
static void client_scan_done(Client *c, Server *s);

/* Streams the rest of a long message (fwd_left bytes) to the server, or
 * drops it. */
static bool client_step_stream(Client *c, size_t avail)
{
	Server *s = c->server;
	size_t n = avail < c->fwd_left ? avail : c->fwd_left;
	if (c->scanning)
		client_scan_input(c, 0, n);
	if (c->fwd_discard || !s)
		evbuffer_drain(c->sock.in, n);
	else
		sock_write_buffer(&s->sock, c->sock.in, n);
	c->fwd_left -= (uint32_t)n;
	if (c->scanning && c->fwd_left == 0)
		client_scan_done(c, s);
	if (s && server_output_full(s)) {
		sock_want_drain(&s->sock); /* server_on_drain pumps again */
		return false;
	}
	return true;
}

/* Drops one message of a discarded request; its end gets the error. */
static bool client_step_discard(Client *c, const ProtoHeader *h, size_t avail, size_t total)
{
	if (avail < total) {
		c->fwd_left = (uint32_t)(total - avail);
		c->fwd_discard = true;
		evbuffer_drain(c->sock.in, avail);
		return true;
	}
	evbuffer_drain(c->sock.in, total);
	if (h->type == PROTO_FE_QUERY || h->type == PROTO_FE_SYNC)
		client_discard_done(c);
	return true;
}

/* What a message sent to S makes the server owe: a ReadyForQuery (Query,
 * Sync, FunctionCall) or the end of an extended-protocol cycle. */
static void client_count_request(Client *c, Server *s, uint8_t type)
{
	switch (type) {
	case PROTO_FE_FUNCTION_CALL:
		/* a function may change anything: search_path, settings, role */
		client_scan_sql(c, s, SQLSCAN_PATH | SQLSCAN_SETTINGS | SQLSCAN_ROLE);
		/* fall through */
	case PROTO_FE_QUERY:
	case PROTO_FE_SYNC:
		if (s->pending == 0)
			s->query_start_us = proxy_now_us();
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
}

/* One message to the server: whole, or its first part (the rest streams). */
static bool client_step_forward(Client *c, Server *s, size_t avail, size_t total)
{
	if (avail >= total) {
		sock_write_buffer(&s->sock, c->sock.in, total);
	} else {
		sock_write_buffer(&s->sock, c->sock.in, avail);
		c->fwd_left = (uint32_t)(total - avail);
		c->fwd_discard = false;
	}
	if (server_output_full(s)) {
		sock_want_drain(&s->sock);
		return false;
	}
	return true;
}

/* A named Parse past max_prepared_statements: its request is answered with
 * 53400 and dropped to its Sync. When the client already sent other
 * messages of that cycle, which the server is running, its Sync must reach
 * the server: then the client is closed instead (a clear error; a driver
 * pipelines that many statements by mistake). */
static bool client_refuse_parse(Client *c, Server *s, const ProtoHeader *h, size_t avail, size_t total)
{
	(void)avail;
	clog_info(c, "Parse refused: too many prepared statements (max_prepared_statements = %d)",
		  proxy.conf->max_prepared_statements);
	client_count_request(c, s, PROTO_FE_DESCRIBE); /* what goes in its place */
	ps_client_refuse(c, s, PS_REFUSAL_TOO_MANY);
	evbuffer_drain(c->sock.in, total); /* whole: ps_needs_whole */
	return c->state != CL_CLOSING;
}

/* Feeds the scanner the next N input bytes (from offset OFF) of a Query
 * that streams, before they move. */
static void client_scan_input(Client *c, size_t off, size_t n)
{
	struct evbuffer_ptr pos;
	if (n == 0 || evbuffer_ptr_set(c->sock.in, &pos, off, EVBUFFER_PTR_SET) != 0)
		return;
	struct evbuffer_iovec v[8];
	while (n > 0) {
		int k = evbuffer_peek(c->sock.in, (ev_ssize_t)n, &pos, v, 8);
		if (k <= 0)
			return;
		for (int i = 0; i < k && i < 8 && n > 0; i++) {
			size_t len = v[i].iov_len < n ? v[i].iov_len : n;
			sqlscan_feed(&c->scan, v[i].iov_base, len);
			n -= len;
			evbuffer_ptr_set(c->sock.in, &pos, len, EVBUFFER_PTR_ADD);
		}
	}
}

/* The last byte of a streamed Query left: what its text may change. A
 * LISTEN in it cannot be refused any more (it has run): its server gets
 * UNLISTEN * before it serves anyone else. */
static void client_scan_done(Client *c, Server *s)
{
	unsigned found = sqlscan_finish(&c->scan);
	c->scanning = false;
	if (!s)
		return;
	if ((found & SQLSCAN_LISTEN) && c->pool->mode == CONF_POOL_TRANSACTION) {
		clog_warning(c, "a LISTEN in a Query too long to hold ran; it is undone before the server serves another client");
		s->reset_listen = true;
	}
	client_scan_sql(c, s, found);
	client_count_query(c);
}

/* A Query longer than the input cap: it goes out as it arrives, through
 * the incremental scanner. */
static bool client_stream_query(Client *c, Server *s, const ProtoHeader *h, size_t avail, size_t total)
{
	client_count_request(c, s, h->type);
	if (ps_enabled(c))
		(void)ps_client_message(c, s, h, NULL); /* a Query: its answer is awaited, nothing rewritten */
	sqlscan_init(&c->scan, s->scs, (SqlScanEncoding)s->sql_enc);
	c->scanning = true;
	client_scan_input(c, PROTO_HEADER_SIZE, avail - PROTO_HEADER_SIZE);
	return client_step_forward(c, s, avail, total);
}

/* One message of a linked client (header H already read). */
static bool client_step_message(Client *c, const ProtoHeader *h, size_t avail)
{
	Server *s = c->server;
	size_t total = (size_t)h->len + 1;
	if (s->state == SV_PREPARING || server_output_full(s) || ps_holding(s))
		return false;
	if (c->discard_error)
		return client_step_discard(c, h, avail, total);
	bool ps = ps_enabled(c);
	bool inspect = h->type == PROTO_FE_QUERY || h->type == PROTO_FE_PARSE;
	bool bind_check = h->type == PROTO_FE_BIND && (c->n_flagged || c->bind_flags);
	bool whole = inspect || bind_check || (ps && ps_needs_whole(h->type));
	/* a long Query streams, scanned as it goes, rather than grow the
	 * input to its length */
	bool stream = h->type == PROTO_FE_QUERY && total > CLIENT_INPUT_CAP && avail < total;
	if (whole && avail < total && !stream) {
		c->need = total; /* bounded by max_packet_size */
		return false;
	}
	if (server_at_boundary(s)) {
		if (proxy_paused(c->pool))
			return false;
		if (!client_prepare_server(c, s))
			return false;
	}
	if (stream)
		return client_stream_query(c, s, h, avail, total);
	const uint8_t *msg = whole ? evbuffer_pullup(c->sock.in, (ev_ssize_t)total) : NULL;
	if (whole && !msg) {
		client_close(c, "53200", "out of memory holding a %s message", proto_fe_type_to_str(h->type));
		return false;
	}
	if (inspect) {
		size_t before = evbuffer_get_length(c->sock.in);
		if (!client_inspect(c, s, h, msg, total))
			return c->state != CL_CLOSING;
		if (evbuffer_get_length(c->sock.in) != before)
			return true; /* the message was replaced: read it again */
	}
	if (ps && ps_client_hold(c, s, h, msg))
		return false; /* it comes again once pgflip's Describe is answered */
	if (bind_check)
		client_scan_sql(c, s, client_bind_flags(c, h, msg));
	if (ps && h->type == PROTO_FE_PARSE && ps_client_full(c, h, msg))
		return client_refuse_parse(c, s, h, avail, total);
	client_count_request(c, s, h->type);
	if (ps) {
		if (!ps_client_message(c, s, h, msg)) {
			evbuffer_drain(c->sock.in, total); /* pgflip sent what the server needs */
			if (server_output_full(s)) {
				sock_want_drain(&s->sock);
				return false;
			}
			return true;
		}
	}
	return client_step_forward(c, s, avail, total);
}

/* One step of the pump; false when it cannot go on now. */
static bool client_step(Client *c)
{
	struct evbuffer *in = c->sock.in;
	c->need = 0;
	if (c->state == CL_CLOSING || c->state == CL_WAIT_LOGIN || c->state == CL_WAITING)
		return false;
	size_t avail = evbuffer_get_length(in);
	if (avail == 0)
		return false;
	if (c->state == CL_STARTUP)
		return client_step_startup(c);
	if (c->state == CL_AUTH)
		return client_step_auth(c, avail);
	if (c->fwd_left > 0)
		return client_step_stream(c, avail);
	uint8_t hdr[PROTO_HEADER_SIZE];
	ProtoHeader h;
	const char *why = "";
	if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr)) {
		c->need = PROTO_HEADER_SIZE;
		return false;
	}
	switch (proto_header_parse(hdr, sizeof(hdr), proxy.conf->max_packet_size, &h, &why)) {
	case PROTO_NEED_MORE:
		c->need = PROTO_HEADER_SIZE;
		return false;
	case PROTO_BAD:
		client_close(c, "08P01", "bad packet header: %s", why);
		return false;
	case PROTO_OK:
		break;
	}
	clog_debug(c, "-> %s (%u bytes)", proto_fe_type_to_str(h.type), h.len);
	if (h.type == PROTO_FE_TERMINATE) {
		size_t total = (size_t)h.len + 1;
		evbuffer_drain(in, avail < total ? avail : total);
		client_close(c, NULL, "client close request");
		return false;
	}
	if (c->state == CL_CONSOLE)
		return console_message(c, &h, avail);
	if (!c->tx_start_us)
		c->request_us = c->tx_start_us = proxy_now_us(); /* the first message of a transaction */
	if (!c->server) {
		if (c->discard_error)
			return client_step_discard(c, &h, avail, (size_t)h.len + 1);
		/* transaction mode: a new request needs a server */
		if (!proxy_paused(c->pool))
			client_set_state(c, CL_WAITING);
		return false;
	}
	return client_step_message(c, &h, avail);
}

void client_pump(Client *c)
{
	while (client_step(c))
		;
	if (c->state == CL_CLOSING)
		return;
	client_update_read(c);
	/* a client that stops in the middle of a message is timed */
	size_t avail = evbuffer_get_length(c->sock.in);
	bool partial = c->sock.reading && (c->fwd_left > 0 || (avail > 0 && c->need > avail));
	if (!partial)
		c->partial_ms = 0;
	else if (!c->partial_ms)
		c->partial_ms = proxy_now_ms();
}

static void client_on_read(void *arg)
{
	Client *c = arg;
	if (proxy.conf->client_idle_timeout_ms > 0) /* the clock only when it is used */
		c->active_ms = proxy_now_ms();
	client_pump(c);
}

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
	else if (c->sock.ssl_error)
		client_close(c, NULL, "TLS error: %s", tls_error_string(c->sock.ssl_error));
	else
		client_close(c, NULL, "client socket error: %s", strerror(err));
}

void client_janitor(Client *c, uint64_t now)
{
	const Conf *conf = proxy.conf;
	if (c->need > CLIENT_INPUT_CAP)
		client_update_read(c); /* the whole-message budget may have room now */
	if (client_logging_in(c->state)) {
		if (conf->client_login_timeout_ms > 0 && now - c->connect_ms > (uint64_t)conf->client_login_timeout_ms) {
			clog_info(c, "client_login_timeout: no login within %d ms", conf->client_login_timeout_ms);
			client_close(c, NULL, "client_login_timeout");
		}
		return;
	}
	if (c->state == CL_CONSOLE && proxy.shutting_down) {
		client_close(c, "57P01", "pgflip is shutting down");
		return;
	}
	if (c->partial_ms && now - c->partial_ms > CLIENT_PARTIAL_TIMEOUT_MS) {
		client_close(c, "08P01", "the client stopped in the middle of a message for %d s",
			     CLIENT_PARTIAL_TIMEOUT_MS / 1000);
		return;
	}
	bool idle = c->state == CL_IDLE || (c->state == CL_ACTIVE && server_at_boundary(c->server));
	if (conf->client_idle_timeout_ms > 0 && idle &&
	    now - c->active_ms > (uint64_t)conf->client_idle_timeout_ms)
		client_close(c, "08P01", "client_idle_timeout: idle for %d ms", conf->client_idle_timeout_ms);
}

/* ---- cancel ------------------------------------------------------------ */

void client_cancel_request(uint32_t pid, uint32_t key)
{
	Client *c;
	TAILQ_FOREACH(c, &proxy.clients, link) {
		if (c->cancel_pid != pid || c->cancel_key != key)
			continue;
		Server *s = c->server;
		if (!s || (s->pending == 0 && !s->open_cycle)) {
			clog_debug(c, "cancel request for an idle client dropped");
			return;
		}
		if (server_cancel(s))
			clog_info(c, "cancel request forwarded to backend %d", s->backend_pid);
		else
			clog_warning(c, "cancel request for backend %d could not be sent", s->backend_pid);
		return;
	}
	log_debug("cancel request with an unknown key dropped");
}
