/*
 * proxy/server.c: the server connection state machine (ServerState).
 *
 * Login goes through libpq's non-blocking connect (PQconnectStartParams and
 * PQconnectPoll driven by the event loop), which brings every authentication
 * method and TLS. Once logged in, the socket (and libpq's SSL object, if the
 * link is encrypted) is handed to a Sock (sock.h) and carries raw protocol
 * messages; the PGconn stays alive only to own the socket, to make cancel
 * requests (PQgetCancel) and to say Terminate at the end (PQfinish).
 *
 * The one exception is SCRAM passthrough: when the pool holds the SCRAM
 * keys a client proved and the login has no password, login.c logs in
 * with them (libpq 15 cannot), on the server's own Sock, which then owns
 * the socket and the SSL object. Both paths end in server_login_finish or
 * server_login_failed; afterwards only server_disconnect and server_cancel
 * tell them apart.
 *
 * Reading: server_pump() streams the server's messages to the linked client
 * and looks at a few: ReadyForQuery (transaction status, end of a request),
 * ParameterStatus (settings we track), ErrorResponse (a FATAL ends the
 * server; its SQLSTATE and message go to the client), and the replies to
 * pgflip's own queries, which it swallows: in SV_PREPARING the query that
 * sets a client's route and settings (recorded only once the server
 * answered it without error), in SV_RESETTING the reset queries.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/ssl.h>
#include <pthread.h>

#include "proxy/proxy.h"
#include "proxy/server.h"
#include "proxy/client.h"
#include "proxy/drain.h"
#include "proxy/pool.h"
#include "proxy/login.h"
#include "proxy/resolve.h"

#include "proxy/sqlscan.h"

static void server_on_read(void *arg);
static void server_on_drain(void *arg);
static void server_on_close(void *arg, int err);
static const SockCallbacks server_sock_cb = {server_on_read, server_on_drain, server_on_close};
static void server_connect_cb(evutil_socket_t fd, short what, void *arg);

/* The settings PostgreSQL 15 reports with ParameterStatus (GUC_REPORT):
 * libpq keeps their values from the login, and the server reports every
 * change, so we always know them. Others we set ourselves are forgotten
 * after a reset. */
static const char *const reported_params[] = {
	"application_name", "client_encoding", "DateStyle", "default_transaction_read_only",
	"in_hot_standby", "integer_datetimes", "IntervalStyle", "is_superuser",
	"server_encoding", "server_version", "session_authorization",
	"standard_conforming_strings", "TimeZone",
};
#define N_REPORTED (sizeof(reported_params) / sizeof(reported_params[0]))

const char *server_state_to_str(ServerState st)
{
	switch (st) {
	case SV_CONNECTING: return "connecting";
	case SV_IDLE: return "idle";
	case SV_PREPARING: return "preparing";
	case SV_ACTIVE: return "active";
	case SV_RESETTING: return "resetting";
	case SV_CLOSING: return "closing";
	}
	return "?";
}

/* What the SQL scanner needs to lex like this server: from the reported
 * standard_conforming_strings and encodings. */
static void server_lexing(Server *s)
{
	const char *scs = params_get(&s->params, "standard_conforming_strings");
	s->scs = !scs || strcmp(scs, "off") != 0;
	s->sql_enc = (int)sqlscan_encoding(params_get(&s->params, "client_encoding"),
					   params_get(&s->params, "server_encoding"));
}

void server_set_state(Server *s, ServerState st)
{
	Pool *p = s->pool;
	if (s->state == SV_IDLE)
		TAILQ_REMOVE(&p->idle, s, idle_link);
	if (s->state == SV_CONNECTING)
		p->n_connecting--;
	switch (st) {
	case SV_CONNECTING:
		p->n_connecting++;
		break;
	case SV_IDLE:
		TAILQ_INSERT_HEAD(&p->idle, s, idle_link);
		s->idle_since_ms = proxy_now_ms();
		pool_dispatch_soon(p);
		break;
	case SV_PREPARING:
	case SV_ACTIVE:
	case SV_RESETTING:
	case SV_CLOSING:
		break;
	default:
		log_error("server_set_state: bad state %d", (int)st);
		abort();
	}
	slog_debug(s, "state %s -> %s", server_state_to_str(s->state), server_state_to_str(st));
	s->state = st;
}

static bool is_reported(const char *name)
{
	for (size_t i = 0; i < N_REPORTED; i++)
		if (strcmp(reported_params[i], name) == 0)
			return true;
	return false;
}

/* ---- login: libpq's, or login.c's with a SCRAM client's keys ------------ */

/* The login failed with MESSAGE: S closes, and the pool counts a failed
 * login (server_login_retry), whichever path logged in. */
static void server_login_failed(Server *s, const char *message)
{
	Pool *p = s->pool;
	server_close(s, "login failed: %s", message);
	resolve_forget(p); /* the host may have moved */
	pool_login_failed(p, message);
}

/* libpq's message of PG, trailing newlines and spaces cut, into BUF. */
static void server_pq_error(PGconn *pg, char *buf, size_t n)
{
	snprintf(buf, n, "%s", PQerrorMessage(pg));
	size_t len = strlen(buf);
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = '\0';
}

static void server_wait(Server *s, PostgresPollingStatusType st)
{
	if (s->connect_ev)
		event_free(s->connect_ev);
	short what = st == PGRES_POLLING_READING ? EV_READ : EV_WRITE;
	s->connect_ev = event_new(proxy.base, PQsocket(s->pg), what, server_connect_cb, s);
	if (!s->connect_ev || event_add(s->connect_ev, NULL) != 0)
		server_login_failed(s, "internal error: cannot watch the login socket");
}

/* At most this many keywords that server_login_keywords adds to an entry's. */
#define SERVER_ADDED_KEYWORDS 10

static bool kw_has(const char *const *kw, size_t n, const char *keyword)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kw[i], keyword))
			return true;
	return false;
}

static bool db_has(const ConfDatabase *db, const char *keyword)
{
	size_t n = 0;
	while (db->keywords[n])
		n++;
	return kw_has((const char *const *)db->keywords, n, keyword);
}

bool server_login_has_password(const Pool *p)
{
	const ConfDatabase *db = pool_conf(p);
	const ConfUser *u = conf_find_user(proxy.conf, p->user);
	return (db && db_has(db, "password")) || (u && u->kind == CONF_SECRET_PLAIN);
}

bool server_login_keywords(const ConfDatabase *db, const ServerLoginAs *as, const char **kw, const char **val)
{
	const Conf *conf = proxy.conf;
	/* another user than the entry's: its password= is not that user's */
	bool other_user = as->replace_user && !(db->user && as->user && !strcmp(db->user, as->user));
	size_t k = 0;
	for (size_t i = 0; db->keywords[i]; i++) {
		if (other_user && (!strcmp(db->keywords[i], "user") || !strcmp(db->keywords[i], "password")))
			continue;
		if (k == SERVER_MAX_KEYWORDS - SERVER_ADDED_KEYWORDS)
			return false;
		kw[k] = db->keywords[i];
		val[k++] = db->values[i];
	}
#define ADD(key, value)                                                                                                \
	do {                                                                                                           \
		if ((value) && !kw_has(kw, k, key)) {                                                                  \
			kw[k] = key;                                                                                   \
			val[k++] = value;                                                                              \
		}                                                                                                      \
	} while (0)
	ADD("user", as->user);
	ADD("dbname", as->dbname);
	ADD("fallback_application_name", as->app_name);
	/* pgflip logs in with passwords, SCRAM or certificates; libpq's default,
	 * prefer, would first try GSSAPI encryption (a Kerberos credential
	 * lookup per login, and a round trip when the server has GSS) */
	ADD("gssencmode", "disable");
	ADD("sslmode", conf_tls_mode_to_str(conf->server_tls_sslmode));
	ADD("sslrootcert", conf->server_tls_ca_file);
	ADD("sslcert", conf->server_tls_cert_file);
	ADD("sslkey", conf->server_tls_key_file);
	const char *user = as->user ? as->user : other_user ? NULL : db->user;
	const ConfUser *u = user ? conf_find_user(conf, user) : NULL;
	if (u && u->kind == CONF_SECRET_PLAIN)
		ADD("password", u->secret);
	ADD("hostaddr", as->addr);
#undef ADD
	kw[k] = val[k] = NULL;
	return true;
}

/* The keywords of a login to P's upstream: P's user and database. */
static bool server_login_params(Pool *p, const ConfDatabase *db, const char *addr, const char **kw, const char **val)
{
	const ServerLoginAs as = {.user = p->user, .dbname = p->database, .app_name = "pgflip", .addr = addr};
	return server_login_keywords(db, &as, kw, val);
}

/* What both paths do once logged in: S carries raw messages from now on. */
static void server_login_finish(Server *s)
{
	Pool *p = s->pool;
	server_lexing(s);
	sock_read(&s->sock, true);
	s->login_ms = proxy_now_ms();
	slog_info(s, "login done in %llu ms%s%s", (unsigned long long)(s->login_ms - s->connect_start_ms),
		  s->sock.ssl ? " (TLS)" : "", s->pg ? "" : " (SCRAM passthrough)");
	free(p->last_error);
	p->last_error = NULL;
	if (!p->have_params) {
		params_copy(&p->server_params, &s->params);
		p->have_params = true;
	}
	server_set_state(s, SV_IDLE);
	if (evbuffer_get_length(s->sock.in) > 0)
		server_pump(s); /* what the server sent behind its ReadyForQuery */
}

/* libpq: PQconnectPoll said OK. */
static void server_login_done(Server *s)
{
	int fd = PQsocket(s->pg);
	s->backend_pid = PQbackendPID(s->pg);
	event_free(s->connect_ev);
	s->connect_ev = NULL;
	for (size_t i = 0; i < N_REPORTED; i++) {
		const char *v = PQparameterStatus(s->pg, reported_params[i]);
		if (v)
			params_set(&s->params, reported_params[i], v);
	}
	SSL *ssl = PQsslInUse(s->pg) ? PQsslStruct(s->pg, "OpenSSL") : NULL;
	/* libpq keeps the socket and the SSL object: PQfinish closes them */
	if (!sock_open(&s->sock, proxy.base, fd, ssl, false, &server_sock_cb, s)) {
		server_login_failed(s, "internal error: out of memory for the socket after login");
		return;
	}
	server_login_finish(s);
}

static void server_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	Server *s = arg;
	(void)fd;
	(void)what;
	char msg[512];
	PostgresPollingStatusType st = PQconnectPoll(s->pg);
	switch (st) {
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
		server_wait(s, st);
		return;
	case PGRES_POLLING_OK:
		server_login_done(s);
		return;
	case PGRES_POLLING_FAILED:
	default:
		server_pq_error(s->pg, msg, sizeof(msg));
		server_login_failed(s, msg);
		return;
	}
}

/* login.c: ReadyForQuery came; the Sock it opened is S's link now. */
static void server_own_done(void *arg)
{
	Server *s = arg;
	s->cancel_key = *login_cancel_key(s->login);
	s->backend_pid = (int)s->cancel_key.pid;
	login_free(s->login); /* its last act was to call us */
	s->login = NULL;
	sock_set_callbacks(&s->sock, &server_sock_cb, s);
	s->sock.in_cap = 0; /* the login's bound; the pump's watermarks rule now */
	server_login_finish(s);
}

static void server_own_failed(void *arg, const char *message) { server_login_failed(arg, message); }

static const LoginCallbacks server_login_cb = {server_own_done, server_own_failed};

/* The libpq path: PQconnectStartParams. */
static ServerConnectResult server_start_libpq(Server *s, const char **kw, const char **val, char *err, size_t n)
{
	s->pg = PQconnectStartParams(kw, val, 0);
	if (!s->pg)
		return SERVER_CONNECT_CANNOT;
	if (PQstatus(s->pg) == CONNECTION_BAD) {
		server_pq_error(s->pg, err, n);
		return SERVER_CONNECT_FAILED;
	}
	return SERVER_CONNECT_STARTED;
}

/* SCRAM passthrough: login.c with the pool's keys. */
static ServerConnectResult server_start_own(Server *s, const char **kw, const char **val, char *err, size_t n)
{
	int t = login_connect_timeout_ms(kw, val);
	if (t > 0 && t < s->connect_timeout_ms)
		s->connect_timeout_ms = t;
	switch (login_start(&s->login, &s->sock, kw, val, s->pool->scram_keys, &s->params, &server_login_cb, s, err, n)) {
	case LOGIN_STARTED: return SERVER_CONNECT_STARTED;
	case LOGIN_FAILED: return SERVER_CONNECT_FAILED;
	case LOGIN_CANNOT: break;
	}
	return SERVER_CONNECT_CANNOT;
}

/* Which path P's next login takes: login.c when P holds a client's SCRAM
 * keys and the login has no password of its own (and login.c knows every
 * keyword of the entry); libpq otherwise. */
static bool server_use_keys(const Pool *p, const char *const *kw, const char *const *val)
{
	const char *why = "";
	if (!p->scram_keys || server_login_has_password(p))
		return false;
	if (login_supported(kw, val, &why))
		return true;
	log_warning("pool %s/%s: SCRAM passthrough cannot honour the keyword %s; libpq logs in, without a password",
		    p->database, p->user, why);
	return false;
}

ServerConnectResult server_connect(Pool *p)
{
	const ConfDatabase *db = pool_conf(p);
	if (!db)
		return SERVER_CONNECT_CANNOT;
	const char *host = resolve_host(db);
	if (host && (!p->dns_addr || !p->dns_host || strcmp(p->dns_host, host) != 0)) {
		/* resolved first, without blocking; the answer dispatches again */
		if (!resolve_start(p, host))
			host = NULL; /* no resolver: libpq resolves */
		else if (!p->dns_addr || strcmp(p->dns_host, host) != 0)
			return SERVER_CONNECT_CANNOT;
	}
	const char *kw[SERVER_MAX_KEYWORDS + 1], *val[SERVER_MAX_KEYWORDS + 1];
	if (!server_login_params(p, db, host ? p->dns_addr : NULL, kw, val))
		return SERVER_CONNECT_CANNOT;
	Server *s = calloc(1, sizeof(*s));
	if (!s)
		return SERVER_CONNECT_CANNOT;
	s->id = ++proxy.next_id;
	s->pool = p;
	s->tx_status = 'I';
	s->connect_start_ms = proxy_now_ms();
	s->connect_timeout_ms = proxy.conf->server_connect_timeout_ms;
	char err[1024] = "";
	bool own = server_use_keys(p, kw, val);
	ServerConnectResult r = own ? server_start_own(s, kw, val, err, sizeof(err))
				    : server_start_libpq(s, kw, val, err, sizeof(err));
	if (r == SERVER_CONNECT_CANNOT) {
		server_free(s);
		return r;
	}
	s->state = SV_CONNECTING;
	p->n_connecting++;
	TAILQ_INSERT_TAIL(&p->servers, s, link);
	p->n_servers++;
	if (r == SERVER_CONNECT_FAILED) {
		server_login_failed(s, err);
		return r;
	}
	slog_debug(s, "login started%s", own ? " (SCRAM passthrough)" : "");
	if (s->pg)
		server_wait(s, PGRES_POLLING_WRITING);
	return s->state == SV_CONNECTING ? SERVER_CONNECT_STARTED : SERVER_CONNECT_FAILED;
}

/* The end of the link. libpq's PQfinish says Terminate and closes its
 * socket and SSL object; an own login's link is the Sock's, which says
 * Terminate itself when nothing else is queued, then closes. */
static void server_disconnect(Server *s)
{
	if (!s->pg && s->login_ms && !s->sock.failed && sock_out_len(&s->sock) == 0) {
		uint8_t space[8];
		ProtoBuf b;
		protobuf_init_on(&b, space, sizeof(space));
		proto_put_terminate(&b);
		sock_write(&s->sock, b.data, b.len);
		protobuf_free(&b);
		sock_flush(&s->sock);
	}
	sock_close(&s->sock);
	if (s->pg)
		PQfinish(s->pg);
}

void server_free(Server *s)
{
	if (!s)
		return;
	if (s->connect_ev)
		event_free(s->connect_ev);
	login_free(s->login);
	server_disconnect(s);
	params_clear(&s->params);
	ps_server_clear(s);
	free(s->ps);
	free(s->expect.items);
	free(s->search_path);
	free(s->prep_route);
	free(s->prep_error);
	free(s);
}

/* PQcancel blocks (connect, send, wait for the close), so libpq's cancel
 * runs on a short detached thread of its own. */
static void *server_cancel_thread(void *arg)
{
	PGcancel *cancel = arg;
	char err[256];
	if (!PQcancel(cancel, err, sizeof(err)))
		log_warning("cancel request failed: %s", err);
	PQfreeCancel(cancel);
	return NULL;
}

bool server_cancel(Server *s)
{
	if (!s->pg)
		return login_cancel(&s->cancel_key, proxy.conf->server_connect_timeout_ms);
	PGcancel *cancel = PQgetCancel(s->pg);
	if (!cancel)
		return false;
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	bool ok = pthread_create(&t, &attr, server_cancel_thread, cancel) == 0;
	if (!ok)
		PQfreeCancel(cancel);
	pthread_attr_destroy(&attr);
	return ok;
}

/* The one teardown path: the linked client hears SQLSTATE and TEXT. */
static void server_teardown(Server *s, const char *sqlstate, const char *text)
{
	if (s->state == SV_CLOSING)
		return;
	slog_info(s, "closing: %s", text);
	Pool *p = s->pool;
	Client *c = s->client;
	s->client = NULL;
	server_set_state(s, SV_CLOSING);
	TAILQ_REMOVE(&p->servers, s, link);
	p->n_servers--;
	TAILQ_INSERT_TAIL(&proxy.server_graveyard, s, link);
	if (s->connect_ev)
		event_del(s->connect_ev);
	login_abort(s->login);
	sock_read(&s->sock, false);
	proxy_reap_soon();
	if (c)
		client_server_failed(c, sqlstate, text);
	pool_dispatch_soon(p);
	drain_tx_end();
}

void server_close(Server *s, const char *reason, ...)
{
	char text[600];
	va_list ap;
	va_start(ap, reason);
	vsnprintf(text, sizeof(text), reason, ap);
	va_end(ap);
	server_teardown(s, "08006", text);
}

bool server_at_boundary(const Server *s)
{
	return s->pending == 0 && !s->open_cycle && s->tx_status == 'I';
}

bool server_output_full(const Server *s)
{
	return sock_out_len(&s->sock) > PROXY_HIGH_WATERMARK;
}

static void server_send_query(Server *s, const char *sql)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_query(&b, sql);
	if (protobuf_ok(&b)) {
		sock_write(&s->sock, b.data, b.len);
		s->swallow_rfq++;
	}
	protobuf_free(&b);
}

void server_forget_settings(Server *s)
{
	free(s->search_path);
	s->search_path = NULL;
	for (size_t i = 0; i < s->params.n;) {
		if (!is_reported(s->params.items[i].name))
			params_remove(&s->params, s->params.items[i].name);
		else
			i++;
	}
	s->params_sig = 0;
}

void server_prepare(Server *s, const char *route, bool check, const uint8_t *msg, size_t len)
{
	free(s->prep_route);
	s->prep_route = strdup(route); /* NULL (out of memory): the route is not recorded as set */
	s->prep_check = check;
	s->prep_found = false;
	free(s->prep_error);
	s->prep_error = NULL;
	s->prep_sqlstate[0] = '\0';
	s->swallow_rfq = 1;
	server_set_state(s, SV_PREPARING);
	sock_write(&s->sock, msg, len);
}

/* Transaction mode: what a client may have left on S is reset before S
 * serves anyone else: an open transaction (the client left inside it), a
 * role, session-level settings. Returns true when reset queries went out
 * (S is then SV_RESETTING). */
static bool server_reset_dirt(Server *s)
{
	if (s->tx_status == 'I' && !s->reset_role && !s->reset_settings && !s->reset_listen && s->swallow_rfq == 0)
		return false;
	server_set_state(s, SV_RESETTING);
	if (s->tx_status != 'I')
		server_send_query(s, "ROLLBACK");
	if (s->reset_role)
		server_send_query(s, "RESET SESSION AUTHORIZATION; RESET ROLE");
	if (s->reset_settings)
		server_send_query(s, "RESET ALL");
	if (s->reset_listen)
		server_send_query(s, "UNLISTEN *");
	s->reset_role = false;
	s->reset_settings = false;
	s->reset_listen = false;
	return true;
}

void server_release(Server *s)
{
	Client *c = s->client;
	Pool *p = s->pool;
	if (c) {
		c->server = NULL;
		s->client = NULL;
		if (c->state == CL_ACTIVE)
			client_set_state(c, CL_IDLE); /* transaction mode: between transactions */
	}
	if (s->state != SV_ACTIVE && s->state != SV_PREPARING)
		return;
	if (s->broken || s->params.oom) {
		server_close(s, "what pgflip knew of its session was lost (out of memory)");
		return;
	}
	if (s->state == SV_PREPARING || s->pending > 0 || s->open_cycle || s->fwd_left > 0) {
		server_close(s, "client left in the middle of a request");
		return;
	}
	bool session_end = !c || c->state == CL_CLOSING;
	if (session_end && p->mode == CONF_POOL_SESSION) {
		server_set_state(s, SV_RESETTING);
		if (s->tx_status != 'I')
			server_send_query(s, "ROLLBACK");
		if (proxy.conf->server_reset_query && *proxy.conf->server_reset_query)
			server_send_query(s, proxy.conf->server_reset_query);
		if (s->swallow_rfq == 0)
			server_set_state(s, SV_IDLE);
		return;
	}
	if (!server_reset_dirt(s))
		server_set_state(s, SV_IDLE);
}

/* After reset queries: what we set ourselves is gone; reported settings come
 * back through ParameterStatus. */
static void server_reset_done(Server *s)
{
	ps_server_clear(s); /* DISCARD ALL dropped them */
	server_forget_settings(s);
	server_set_state(s, SV_IDLE);
}

/* An ErrorResponse of the server. Returns true when it goes to the client. */
static bool server_error(Server *s, const uint8_t *body, uint32_t len, bool swallow)
{
	ProtoErrorFields f;
	bool parsed = proto_error_parse(body, len, &f);
	const char *text = parsed && f.message ? f.message : "unknown server error";
	const char *sqlstate = parsed && f.sqlstate && strlen(f.sqlstate) == 5 ? f.sqlstate : "08006";
	if (parsed && f.severity && (!strcmp(f.severity, "FATAL") || !strcmp(f.severity, "PANIC"))) {
		/* the backend is going away: its client hears the backend's own
		 * SQLSTATE and message, as a lost transaction (transaction mode)
		 * or a lost session */
		server_teardown(s, sqlstate, text);
		return false;
	}
	if (s->state == SV_PREPARING) {
		if (!s->prep_sqlstate[0]) {
			/* the SQLSTATE says it failed; the text is for the client
			 * (NULL when out of memory: the failure counts all the same) */
			s->prep_error = strdup(text);
			snprintf(s->prep_sqlstate, sizeof(s->prep_sqlstate), "%s", sqlstate);
		}
		return false;
	}
	if (!swallow) {
		if (s->client)
			client_tx_error(s->client, parsed ? f.sqlstate : NULL);
		return true;
	}
	if (s->state == SV_RESETTING)
		slog_warning(s, "reset query failed: %s", text);
	return false;
}

/* Handles one whole message the pump needed to see. MSG points at the type
 * byte. Returns true when it should be forwarded to the client. */
static bool server_inspect(Server *s, const ProtoHeader *h, const uint8_t *msg, bool swallow)
{
	const uint8_t *body = msg + PROTO_HEADER_SIZE;
	uint32_t len = proto_body_len(h);
	switch (h->type) {
	case PROTO_BE_PARAMETER_STATUS: {
		const char *name, *value;
		if (!proto_parameter_status_parse(body, len, &name, &value))
			return !swallow;
		if (strcmp(name, "search_path") == 0) {
			/* PostgreSQL 18 reports it: the server's word, at no cost */
			s->reports_search_path = true;
			free(s->search_path);
			s->search_path = strdup(value); /* NULL: unknown, set again next time */
		} else if (params_set(&s->params, name, value)) {
			s->params_sig = 0; /* changed behind our back (or by a client's SET) */
			server_lexing(s);
		}
		return !swallow;
	}
	case PROTO_BE_COMMAND_COMPLETE: {
		const char *tag;
		if (s->state == SV_PREPARING && proto_command_complete_parse(body, len, &tag))
			s->prep_found = strcmp(tag, "SELECT 1") == 0;
		return !swallow;
	}
	case PROTO_BE_ERROR_RESPONSE:
		return server_error(s, body, len, swallow);
	default:
		return !swallow;
	}
}

/* ReadyForQuery of one of pgflip's own queries. */
static void server_own_ready(Server *s)
{
	if (--s->swallow_rfq > 0)
		return;
	if (s->state == SV_RESETTING) {
		if (s->tx_status == 'I')
			server_reset_done(s);
		else
			server_close(s, "reset left a transaction open");
		return;
	}
	if (s->state == SV_PREPARING) {
		Client *c = s->client;
		server_set_state(s, SV_ACTIVE);
		if (s->tx_status != 'I') {
			server_close(s, "the route query left a transaction open");
			return;
		}
		if (c)
			client_prepared(c, s);
	}
}

/* ReadyForQuery: the end of a request (or of one of pgflip's queries). */
static void server_ready(Server *s, char status)
{
	slog_debug(s, "ReadyForQuery %c, pending %u, swallow %u", status, s->pending, s->swallow_rfq);
	s->tx_status = status;
	if (s->swallow_rfq > 0) {
		server_own_ready(s);
		return;
	}
	Client *c = s->client;
	if (s->pending > 0) {
		s->pending--;
		uint64_t now_us = proxy_now_us();
		s->pool->stats.query_count++;
		s->pool->stats.query_time_us += now_us > s->query_start_us ? now_us - s->query_start_us : 0;
		s->query_start_us = now_us; /* a pipelined next request's answer is timed from here */
	}
	if (!c || !server_at_boundary(s))
		return;
	client_tx_end(c, true);
	if (proxy.conf->server_check_search_path == CONF_CHECK_ALWAYS && !s->reports_search_path) {
		/* a function may have changed it unseen: set it again at the next
		 * transaction start, whoever runs it */
		free(s->search_path);
		s->search_path = NULL;
	}
	if (s->pool->mode == CONF_POOL_TRANSACTION) {
		server_release(s);
		client_pump(c); /* a pipelined next request may be waiting */
	}
	drain_tx_end();
}

/*
 * The hot path: the length of the run of whole messages at the front of IN,
 * within its first contiguous chunk, that go to the client untouched (rows,
 * descriptions, command tags...), so that they move in one call instead of
 * one call each. Stops before anything server_pump must look at, an
 * incomplete message, or a bad length (which server_pump then reports).
 * The expect-queue entries that the run's answers end are taken off as the
 * run grows, so the caller must move the whole run.
 */
static size_t server_plain_run(Server *s, struct evbuffer *in)
{
	struct evbuffer_iovec v;
	if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
		return 0;
	const uint8_t *p = v.iov_base;
	size_t len = v.iov_len, off = 0;
	while (len - off >= PROTO_HEADER_SIZE) {
		uint8_t type = p[off];
		uint32_t mlen = ((uint32_t)p[off + 1] << 24) | ((uint32_t)p[off + 2] << 16) |
				((uint32_t)p[off + 3] << 8) | (uint32_t)p[off + 4];
		if (mlen < 4 || mlen > PROXY_SERVER_MAX_MESSAGE || (size_t)mlen + 1 > len - off)
			break;
		if (type == PROTO_BE_READY_FOR_QUERY || type == PROTO_BE_PARAMETER_STATUS ||
		    type == PROTO_BE_ERROR_RESPONSE)
			break;
		/* extended protocol: the answers the expect queue waits for
		 * (ParseComplete, BindComplete...) go along in the run, unless one
		 * is to be swallowed or made-up answers are due after it */
		bool end_run = false;
		if (s->expect.count > 0 && !ps_server_pass(s, type, &end_run))
			break;
		off += (size_t)mlen + 1;
		if (end_run)
			break;
	}
	return off;
}

/* Streams the rest of a long message to the client, or drops it. */
static void server_step_stream(Server *s, Sock *out, size_t avail)
{
	size_t n = avail < s->fwd_left ? avail : s->fwd_left;
	if (s->fwd_swallow || !out)
		evbuffer_drain(s->sock.in, n);
	else
		sock_write_buffer(out, s->sock.in, n);
	s->fwd_left -= (uint32_t)n;
}

/* A whole message server_pump must look at (MSG, TOTAL bytes): forwarded,
 * swallowed or acted upon. Returns false when S was closed. */
static bool server_step_inspect(Server *s, Sock *out, const ProtoHeader *h, size_t total, bool swallow, bool ps_final)
{
	struct evbuffer *in = s->sock.in;
	const uint8_t *msg = evbuffer_pullup(in, (ev_ssize_t)total);
	if (!msg) {
		server_close(s, "out of memory holding a %s message", proto_be_type_to_str(h->type));
		return false;
	}
	if (h->type == PROTO_BE_READY_FOR_QUERY) {
		char status;
		if (!proto_ready_for_query_parse(msg + PROTO_HEADER_SIZE, proto_body_len(h), &status)) {
			server_close(s, "malformed ReadyForQuery");
			return false;
		}
		if (swallow || !out)
			evbuffer_drain(in, total);
		else
			sock_write_buffer(out, in, total);
		if (ps_final)
			ps_server_after(s, h->type);
		server_ready(s, status);
		return s->state != SV_CLOSING;
	}
	bool forward = server_inspect(s, h, msg, swallow);
	if (s->state == SV_CLOSING)
		return false;
	if (ps_final && ps_server_swallow(s, h, msg))
		forward = false;
	if (forward && out)
		sock_write_buffer(out, in, total);
	else
		evbuffer_drain(in, total);
	if (ps_final)
		ps_server_after(s, h->type);
	return true;
}

/* One message from its header: looked at whole, or moved (the first part
 * of a long one; the rest streams). Returns false when the pump must stop
 * (more bytes needed, or S closed). */
static bool server_step_message(Server *s, Sock *out, size_t avail)
{
	struct evbuffer *in = s->sock.in;
	uint8_t hdr[PROTO_HEADER_SIZE];
	ProtoHeader h;
	const char *why = "";
	if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return false;
	if (proto_header_parse(hdr, sizeof(hdr), PROXY_SERVER_MAX_MESSAGE, &h, &why) != PROTO_OK) {
		server_close(s, "bad message from server: %s", why);
		return false;
	}
	size_t total = (size_t)h.len + 1;
	bool swallow = s->swallow_rfq > 0 || !out;
	slog_debug(s, "<- %s (%u bytes)%s", proto_be_type_to_str(h.type), h.len, swallow ? " swallowed" : "");
	/* answers matched against the prepared-statement expect queue */
	bool ps_final = !swallow && s->expect.count > 0 && ps_server_final(s, h.type);
	bool inspect = h.type == PROTO_BE_READY_FOR_QUERY || h.type == PROTO_BE_PARAMETER_STATUS ||
		       h.type == PROTO_BE_ERROR_RESPONSE || (h.type == PROTO_BE_COMMAND_COMPLETE && swallow) ||
		       ps_final;
	if (inspect) {
		if (avail < total)
			return false; /* small messages: wait for the whole of it */
		return server_step_inspect(s, out, &h, total, swallow, ps_final);
	}
	size_t n = avail < total ? avail : total;
	if (swallow)
		evbuffer_drain(in, n);
	else
		sock_write_buffer(out, in, n);
	s->fwd_left = (uint32_t)(total - n);
	s->fwd_swallow = swallow;
	return true;
}

void server_pump(Server *s)
{
	struct evbuffer *in = s->sock.in;
	for (;;) {
		if (s->state == SV_CLOSING)
			return;
		size_t avail = evbuffer_get_length(in);
		if (avail == 0)
			return;
		Client *c = s->client;
		Sock *out = c ? &c->sock : NULL;
		size_t n;
		if (s->fwd_left > 0) {
			server_step_stream(s, out, avail);
		} else if (out && s->swallow_rfq == 0 && (n = server_plain_run(s, in)) > 0) {
			sock_write_buffer(out, in, n); /* whole messages nobody needs to look at */
			ps_server_emit_due(s);
		} else if (!server_step_message(s, out, avail)) {
			return;
		}
		if (out && sock_out_len(out) > PROXY_HIGH_WATERMARK) {
			/* the client reads slower than the server writes: stop reading
			 * until its output drains (client_on_drain) */
			sock_read(&s->sock, false);
			sock_want_drain(out);
			return;
		}
	}
}

static void server_on_read(void *arg) { server_pump(arg); }

/* Our output drained after the client was paused for it: it may send again. */
static void server_on_drain(void *arg)
{
	Server *s = arg;
	if (s->client && s->client->state == CL_ACTIVE)
		client_pump(s->client); /* which reads from the client again */
}

static void server_on_close(void *arg, int err)
{
	Server *s = arg;
	if (err == 0)
		server_close(s, "server closed the connection");
	else
		server_close(s, "server socket error: %s", strerror(err));
}
