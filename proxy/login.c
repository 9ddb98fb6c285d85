/*
 * proxy/login.c: pgflip's own server login, for SCRAM passthrough.
 *
 * Why it exists: a client that logged in to pgflip with SCRAM-SHA-256 left
 * its ClientKey with us (protocol/scram.c recovers it from the proof), and
 * with the verifier's ServerKey that is enough to log in upstream as that
 * client when the server holds the same verifier, as PgBouncer does. libpq
 * 15 only logs in with a password, so this login is ours; it speaks only
 * what that needs, and every other login stays libpq's (server.c).
 *
 * The flow (PostgreSQL docs, "Message Flow / Start-up" and "SSL Session
 * Encryption"), each step a state of the Login:
 *
 *   CONNECTING   non-blocking connect (conn_ev waits for the socket to be
 *                writable, then SO_ERROR); the Sock opens on success
 *   SSL_ANSWER   SSLRequest sent: 'S' starts TLS (sock_start_tls; the
 *                handshake runs under the StartupMessage's SSL_write), 'N'
 *                goes on in plain text unless sslmode requires TLS
 *   AUTH         StartupMessage sent: Authentication requests (only SASL
 *                with SCRAM-SHA-256 can be answered), ErrorResponse,
 *                NoticeResponse, NegotiateProtocolVersion
 *   SETUP        AuthenticationOk came: ParameterStatus, BackendKeyData,
 *                NoticeResponse up to ReadyForQuery
 *   DONE/FAILED  the outcome, reported by login_report, the last call of
 *                every entry point (a socket callback, conn_ev, retry_ev), so
 *                that the callee may free the Login
 *   ENDED        reported or aborted: nothing more happens
 *
 * sslmode follows libpq: disable (no SSLRequest), allow (plain first; an
 * ErrorResponse before AuthenticationOk tries again with TLS), prefer (TLS
 * first; a failed handshake or such an error tries again in plain text),
 * require (TLS; the chain is checked too when sslrootcert is given),
 * verify-ca (the chain), verify-full (the chain and the host name). A Unix
 * socket never uses TLS (libpq ignores sslmode there). A retry runs from
 * retry_ev, never inside the Sock's callbacks, because it closes the Sock.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "proxy/proxy.h"
#include "proxy/login.h"
#include "proxy/tls.h"

/* Longest message accepted during a login (bytes, the length field's
 * units): libpq's own bound on an ErrorResponse there; Authentication and
 * ParameterStatus messages are far shorter. */
#define LOGIN_MESSAGE_MAX 30000
/* Messages accepted before ReadyForQuery: PostgreSQL 15 sends about 20
 * (a dozen ParameterStatus); more is a server that never ends its login. */
#define LOGIN_MAX_MESSAGES 256
/* Input held during a login: one whole message of the longest kind, plus
 * the read chunk the socket layer may add past its cap. */
#define LOGIN_INPUT_CAP (2 * LOGIN_MESSAGE_MAX)
/* libpq's floor for connect_timeout (seconds): shorter is taken as 2. */
#define LOGIN_MIN_CONNECT_TIMEOUT_S 2
/* Where libpq 15 (Debian's build, DEFAULT_PGSOCKET_DIR) looks for the
 * server when neither host nor hostaddr nor PGHOST says. */
#define LOGIN_DEFAULT_SOCKET_DIR "/var/run/postgresql"

typedef enum {
	LOGIN_ST_CONNECTING = 0,
	LOGIN_ST_SSL_ANSWER,
	LOGIN_ST_AUTH,
	LOGIN_ST_SETUP,
	LOGIN_ST_DONE,
	LOGIN_ST_FAILED,
	LOGIN_ST_ENDED,
} LoginState;

struct Login {
	LoginState state;
	Sock *sock;                       /* the caller's; open from the connect on */
	int fd;                           /* while CONNECTING: the socket, not yet in sock */
	struct event *conn_ev;            /* CONNECTING: the socket became writable */
	struct event *retry_ev;           /* the second attempt of allow/prefer */
	const LoginCallbacks *cb;
	void *arg;
	ParamList *params;

	ConfTlsMode sslmode;
	bool unix_socket;
	bool try_tls;                     /* this attempt sends SSLRequest */
	bool retried;                     /* the second attempt is under way (or was) */
	bool retry;                       /* the failure may be tried again the other way */
	bool verify;                      /* the context checks the chain */
	bool check_name;                  /* ... and the host name (verify-full) */
	bool sni;
	SSL_CTX *tls_ctx;                 /* NULL when no attempt can use TLS */
	char *host;                       /* the entry's host, for SNI, the name check and messages */
	char *user;
	char where[320];                  /* "server at \"h\" (a), port p" or "server on socket \"p\"" */
	LoginCancelKey cancel;            /* addr from the start; pid and key from BackendKeyData */
	int keepalive[4];                 /* keepalives, _idle, _interval, _count; -1 = the system's */
	ProtoBuf startup;                 /* the StartupMessage, built once */

	ScramKeys keys;
	ProtoScramClient scram;
	bool sasl_started;
	bool sasl_verified;               /* the server proved it knows the verifier */
	bool have_key_data;
	unsigned n_messages;
	char error[sizeof("connection to  failed: ") + 320 + 512];
};

/* The keywords login_supported knows, with the values that ask for
 * nothing we lack (NULL: any value is fine). */
static const struct {
	const char *keyword;
	const char *const values[3];
} login_keywords[] = {
	{"host", {NULL}}, {"hostaddr", {NULL}}, {"port", {NULL}}, {"dbname", {NULL}}, {"user", {NULL}},
	{"password", {NULL}}, {"application_name", {NULL}}, {"fallback_application_name", {NULL}},
	{"options", {NULL}}, {"client_encoding", {NULL}}, {"sslmode", {NULL}}, {"sslrootcert", {NULL}},
	{"sslcert", {NULL}}, {"sslkey", {NULL}}, {"sslsni", {NULL}}, {"sslcompression", {NULL}},
	{"connect_timeout", {NULL}}, {"keepalives", {NULL}}, {"keepalives_idle", {NULL}},
	{"keepalives_interval", {NULL}}, {"keepalives_count", {NULL}},
	{"gssencmode", {"disable", "prefer", NULL}}, {"channel_binding", {"disable", "prefer", NULL}},
	{"target_session_attrs", {"any", NULL}},
};
#define N_LOGIN_KEYWORDS (sizeof(login_keywords) / sizeof(login_keywords[0]))

static void login_on_read(void *arg);
static void login_on_drain(void *arg);
static void login_on_close(void *arg, int err);
static const SockCallbacks login_sock_cb = {login_on_read, login_on_drain, login_on_close};

static const char *kw_get(const char *const *kw, const char *const *val, const char *key)
{
	for (size_t i = 0; kw[i]; i++)
		if (strcmp(kw[i], key) == 0)
			return val[i];
	return NULL;
}

static bool login_value_ok(size_t k, const char *v)
{
	if (!login_keywords[k].values[0])
		return true;
	for (size_t j = 0; login_keywords[k].values[j]; j++)
		if (strcmp(login_keywords[k].values[j], v) == 0)
			return true;
	return false;
}

bool login_supported(const char *const *kw, const char *const *val, const char **why)
{
	for (size_t i = 0; kw[i]; i++) {
		size_t k = 0;
		while (k < N_LOGIN_KEYWORDS && strcmp(login_keywords[k].keyword, kw[i]) != 0)
			k++;
		if (k == N_LOGIN_KEYWORDS || !login_value_ok(k, val[i])) {
			*why = kw[i];
			return false;
		}
	}
	const char *host = kw_get(kw, val, "host"), *addr = kw_get(kw, val, "hostaddr");
	const char *port = kw_get(kw, val, "port"), *enc = kw_get(kw, val, "client_encoding");
	if ((host && (strchr(host, ',') || host[0] == '@')) || (addr && strchr(addr, ',')) ||
	    (port && strchr(port, ','))) {
		*why = "host (several hosts, or an abstract socket)";
		return false;
	}
	if (enc && strcmp(enc, "auto") == 0) {
		*why = "client_encoding=auto";
		return false;
	}
	return true;
}

/* A non-negative decimal number, or -1. */
static int login_number(const char *s)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > 1000000)
		return -1;
	return (int)v;
}

int login_connect_timeout_ms(const char *const *kw, const char *const *val)
{
	int s = login_number(kw_get(kw, val, "connect_timeout"));
	if (s <= 0)
		return 0;
	return (s < LOGIN_MIN_CONNECT_TIMEOUT_S ? LOGIN_MIN_CONNECT_TIMEOUT_S : s) * 1000;
}

/* ---- failure and outcome ----------------------------------------------------- */

/* The one failure path of an attempt: the first reason wins (libpq's
 * shape, "connection to WHERE failed: TEXT"); reading stops. RETRY: allow
 * or prefer may try again the other way. Returns false, for callers that
 * end their step with it. */
static bool login_fail(Login *l, bool retry, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool login_fail(Login *l, bool retry, const char *fmt, ...)
{
	if (l->state == LOGIN_ST_FAILED || l->state == LOGIN_ST_ENDED)
		return false;
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(l->error, sizeof(l->error), "connection to %s failed: %s", l->where, text);
	l->state = LOGIN_ST_FAILED;
	l->retry = retry;
	sock_read(l->sock, false);
	return false;
}

/* Whether a failed attempt is tried again the other way: libpq's allow
 * (plain, then TLS) and prefer (TLS, then plain), once. */
static bool login_may_retry(const Login *l)
{
	if (!l->retry || l->retried || l->unix_socket)
		return false;
	return (l->sslmode == CONF_TLS_ALLOW && !l->try_tls) || (l->sslmode == CONF_TLS_PREFER && l->try_tls);
}

/* The end of every entry point: DONE or FAILED is reported once, unless a
 * second attempt is due. The callbacks may free L: nothing follows them. */
static void login_report(Login *l)
{
	if (l->state == LOGIN_ST_DONE) {
		l->state = LOGIN_ST_ENDED;
		l->cb->done(l->arg);
		return;
	}
	if (l->state != LOGIN_ST_FAILED)
		return;
	if (login_may_retry(l)) {
		log_debug("server login: %s; trying again %s", l->error, l->try_tls ? "without TLS" : "with TLS");
		l->retried = true;
		event_active(l->retry_ev, 0, 0);
		return;
	}
	l->state = LOGIN_ST_ENDED;
	l->cb->failed(l->arg, l->error);
}

/* ---- sending ----------------------------------------------------------------- */

static bool login_send(Login *l, ProtoBuf *b)
{
	bool ok = protobuf_ok(b);
	if (ok)
		sock_write(l->sock, b->data, b->len);
	protobuf_free(b);
	return ok || login_fail(l, false, "out of memory building a login message");
}

static bool login_send_startup(Login *l)
{
	l->state = LOGIN_ST_AUTH;
	sock_write(l->sock, l->startup.data, l->startup.len);
	return true;
}

/* ---- connecting -------------------------------------------------------------- */

/* libpq's TCP options: no Nagle delay, and keepalives unless keepalives=0. */
static void login_tcp_options(const Login *l, int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (l->keepalive[0] == 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	static const int opts[3] = {TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT};
	for (int i = 0; i < 3; i++)
		if (l->keepalive[i + 1] > 0)
			setsockopt(fd, IPPROTO_TCP, opts[i], &l->keepalive[i + 1], sizeof(int));
}

static void login_connect_cb(evutil_socket_t fd, short what, void *arg);

/* Starts one attempt: a socket, a non-blocking connect, conn_ev. False
 * (and FAILED) when that cannot start. */
static bool login_connect(Login *l)
{
	int fd = socket(l->cancel.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return login_fail(l, false, "could not create socket: %s", strerror(errno));
	if (!l->unix_socket)
		login_tcp_options(l, fd);
	if (connect(fd, (const struct sockaddr *)&l->cancel.addr, l->cancel.addr_len) != 0 && errno != EINPROGRESS &&
	    errno != EAGAIN && errno != EINTR) {
		int e = errno;
		close(fd);
		return login_fail(l, false, "%s", strerror(e));
	}
	l->fd = fd;
	l->state = LOGIN_ST_CONNECTING;
	if (l->conn_ev)
		event_free(l->conn_ev);
	l->conn_ev = event_new(proxy.base, fd, EV_WRITE, login_connect_cb, l);
	if (!l->conn_ev || event_add(l->conn_ev, NULL) != 0)
		return login_fail(l, false, "out of memory watching the socket");
	return true;
}

/* The socket is connected (or failed): open the Sock, then SSLRequest or
 * StartupMessage. */
static void login_connected(Login *l)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err) {
		login_fail(l, false, "%s", strerror(err));
		return;
	}
	int fd = l->fd;
	l->fd = -1; /* the Sock's from now on, even if sock_open fails */
	if (!sock_open(l->sock, proxy.base, fd, NULL, true, &login_sock_cb, l)) {
		login_fail(l, false, "out of memory setting up the socket");
		return;
	}
	l->sock->in_cap = LOGIN_INPUT_CAP;
	sock_read(l->sock, true);
	if (!l->try_tls) {
		login_send_startup(l);
		return;
	}
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_ssl_request(&b);
	l->state = LOGIN_ST_SSL_ANSWER;
	login_send(l, &b);
}

static void login_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	Login *l = arg;
	(void)fd;
	(void)what;
	if (l->state != LOGIN_ST_CONNECTING)
		return;
	login_connected(l);
	login_report(l);
}

/* retry_ev: the second attempt, outside any callback of the Sock it closes. */
static void login_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	Login *l = arg;
	(void)fd;
	(void)what;
	if (l->state != LOGIN_ST_FAILED)
		return;
	sock_close(l->sock);
	proto_scram_client_clear(&l->scram);
	l->try_tls = !l->try_tls;
	l->sasl_started = l->sasl_verified = l->have_key_data = false;
	l->n_messages = 0;
	l->error[0] = '\0';
	l->state = LOGIN_ST_CONNECTING;
	login_connect(l);
	login_report(l);
}

/* ---- TLS ----------------------------------------------------------------------- */

/* SSL_ANSWER: the server's one byte. False when more bytes are needed or
 * the login failed. */
static bool login_ssl_answer(Login *l)
{
	struct evbuffer *in = l->sock->in;
	uint8_t c;
	if (evbuffer_copyout(in, &c, 1) < 1)
		return false;
	if (c == 'N') {
		evbuffer_drain(in, 1);
		if (l->sslmode >= CONF_TLS_REQUIRE)
			return login_fail(l, false, "server does not support SSL, but SSL was required");
		l->try_tls = false;
		return login_send_startup(l);
	}
	if (c == 'E') /* not trusted: nothing is authenticated yet (as libpq 17.2) */
		return login_fail(l, false, "server sent an error response during SSL exchange");
	if (c != 'S')
		return login_fail(l, false, "received invalid response to SSL negotiation");
	/* bytes behind the 'S' were sent before the handshake: anyone's (CVE-2021-23222) */
	if (evbuffer_get_length(in) > 1)
		return login_fail(l, false, "received unencrypted data after SSL response");
	evbuffer_drain(in, 1);
	SSL *ssl = tls_connect(l->tls_ctx, l->sock->fd, l->host, l->sni, l->check_name);
	if (!ssl)
		return login_fail(l, false, l->check_name && !l->host ? "host name must be specified for a verified SSL connection"
								     : "out of memory starting TLS");
	sock_start_tls(l->sock, ssl);
	return login_send_startup(l);
}

/* The Sock failed or the server closed: during a handshake, OpenSSL's or
 * the certificate check's reason (prefer tries again in plain text). */
static void login_on_close(void *arg, int err)
{
	Login *l = arg;
	if (l->state == LOGIN_ST_ENDED || l->state == LOGIN_ST_FAILED)
		return;
	SSL *ssl = l->sock->ssl;
	const char *bad_cert = ssl && l->verify ? tls_verify_error(ssl) : NULL;
	if (ssl && !SSL_is_init_finished(ssl)) {
		if (bad_cert)
			login_fail(l, true, "SSL error: certificate verify failed: %s", bad_cert);
		else
			login_fail(l, true, "SSL error: %s", tls_error_string(l->sock->ssl_error));
	} else if (err == 0) {
		login_fail(l, false, "server closed the connection unexpectedly");
	} else {
		login_fail(l, false, "%s", strerror(err));
	}
	login_report(l);
}

static void login_on_drain(void *arg) { (void)arg; }

/* ---- the server's messages ------------------------------------------------------ */

/* The authentication methods a server may ask for that we cannot answer. */
static const char *login_method_name(uint32_t code)
{
	switch (code) {
	case PROTO_AUTH_MD5_PASSWORD: return "md5";
	case PROTO_AUTH_CLEARTEXT_PASSWORD: return "password (cleartext)";
	case PROTO_AUTH_KERBEROS_V5: return "Kerberos V5";
	case PROTO_AUTH_GSS: return "GSSAPI";
	case PROTO_AUTH_SSPI: return "SSPI";
	default: return "an unknown method";
	}
}

/* SASL, SASLContinue, SASLFinal: the SCRAM-SHA-256 exchange with the keys. */
static bool login_sasl(Login *l, uint32_t code, const uint8_t *rest, size_t n)
{
	const char *why = "";
	ProtoBuf b;
	protobuf_init(&b);
	if (code == PROTO_AUTH_SASL) {
		if (l->sasl_started)
			return login_fail(l, false, "the server started a second SASL exchange");
		if (!proto_auth_sasl_has(rest, n, PROTO_SCRAM_SHA_256))
			return login_fail(l, false, "the server offers no SASL mechanism pgflip speaks (SCRAM-SHA-256)");
		l->sasl_started = true;
		proto_scram_client_init_keys(&l->scram, l->keys.client_key, l->keys.server_key);
		if (!proto_scram_client_first(&l->scram, NULL))
			return login_fail(l, false, "no random bytes for the SCRAM nonce");
		proto_put_sasl_initial_response(&b, PROTO_SCRAM_SHA_256, (const uint8_t *)l->scram.msg, l->scram.msg_len);
		return login_send(l, &b);
	}
	if (!l->sasl_started)
		return login_fail(l, false, "SASL message from the server without an exchange");
	if (code == PROTO_AUTH_SASL_CONTINUE) {
		if (proto_scram_client_final(&l->scram, rest, n, &why) != PROTO_SCRAM_CONTINUE)
			return login_fail(l, false, "bad SCRAM message from the server: %s", why);
		proto_put_sasl_response(&b, (const uint8_t *)l->scram.msg, l->scram.msg_len);
		return login_send(l, &b);
	}
	switch (proto_scram_client_verify(&l->scram, rest, n, &why)) {
	case PROTO_SCRAM_DONE:
		l->sasl_verified = true;
		return true;
	case PROTO_SCRAM_FAIL:
		return login_fail(l, false, "the server refused the SCRAM proof of user \"%s\"", l->user);
	default:
		return login_fail(l, false, "the server's SCRAM answer does not check out (%s): it may not be the server "
					    "it claims to be", why);
	}
}

static bool login_auth(Login *l, const uint8_t *body, size_t len)
{
	uint32_t code;
	const uint8_t *rest;
	size_t n;
	const char *why = "";
	if (l->state != LOGIN_ST_AUTH)
		return login_fail(l, false, "Authentication message after AuthenticationOk");
	if (proto_read_auth(body, len, &code, &rest, &n, &why) != PROTO_OK)
		return login_fail(l, false, "%s", why);
	switch (code) {
	case PROTO_AUTH_OK:
		if (l->sasl_started && !l->sasl_verified)
			return login_fail(l, false, "AuthenticationOk before the SCRAM exchange ended");
		l->state = LOGIN_ST_SETUP;
		return true;
	case PROTO_AUTH_SASL:
	case PROTO_AUTH_SASL_CONTINUE:
	case PROTO_AUTH_SASL_FINAL:
		return login_sasl(l, code, rest, n);
	default:
		return login_fail(l, false, "the server asks for %s authentication; pgflip has only the SCRAM keys of user "
					    "\"%s\" (SCRAM passthrough: no password is configured for it)",
				  login_method_name(code), l->user);
	}
}

/* ErrorResponse: the login ends with the server's words; before
 * AuthenticationOk, allow/prefer may try the other way (as libpq). */
static bool login_error(Login *l, const uint8_t *body, size_t len)
{
	ProtoErrorFields f;
	if (!proto_error_parse(body, len, &f))
		return login_fail(l, false, "malformed ErrorResponse");
	const char *sev = f.severity ? f.severity : "ERROR", *msg = f.message ? f.message : "(no message)";
	bool passthrough = l->sasl_started && f.sqlstate && strcmp(f.sqlstate, "28P01") == 0;
	return login_fail(l, l->state == LOGIN_ST_AUTH, "%s:  %s%s", sev, msg,
			  passthrough ? " (SCRAM passthrough: the server's verifier for this user must be the one in "
					"auth_file, the same salt and iterations as in pg_authid)"
				      : "");
}

/* NegotiateProtocolVersion: we ask for 3.0 with no options, so the only
 * answer we can live with names 3.0 and nothing we asked for. */
static bool login_negotiate(Login *l, const uint8_t *body, size_t len)
{
	uint32_t version, n;
	if (!proto_negotiate_protocol_version_parse(body, len, &version, &n))
		return login_fail(l, false, "malformed NegotiateProtocolVersion");
	if (version >> 16 != 3 || n != 0)
		return login_fail(l, false, "the server does not speak protocol 3.0 as pgflip asked");
	return true;
}

/* SETUP: ParameterStatus, BackendKeyData, ReadyForQuery. */
static bool login_setup(Login *l, uint8_t type, const uint8_t *body, size_t len)
{
	if (l->state != LOGIN_ST_SETUP)
		return login_fail(l, false, "%s before AuthenticationOk", proto_be_type_to_str(type));
	const char *name, *value;
	char status;
	switch (type) {
	case PROTO_BE_PARAMETER_STATUS:
		if (!proto_parameter_status_parse(body, len, &name, &value))
			return login_fail(l, false, "malformed ParameterStatus");
		params_set(l->params, name, value);
		return true;
	case PROTO_BE_BACKEND_KEY_DATA:
		if (!proto_backend_key_data_parse(body, len, &l->cancel.pid, &l->cancel.key))
			return login_fail(l, false, "malformed BackendKeyData");
		l->have_key_data = true;
		return true;
	default: /* ReadyForQuery */
		if (!proto_ready_for_query_parse(body, len, &status) || status != 'I')
			return login_fail(l, false, "unexpected ReadyForQuery at the end of the login");
		if (!l->have_key_data)
			l->cancel.addr_len = 0; /* nothing to cancel with */
		l->state = LOGIN_ST_DONE;
		return false; /* whatever follows is the server's (server.c) */
	}
}

static bool login_message(Login *l, uint8_t type, const uint8_t *body, size_t len)
{
	switch (type) {
	case PROTO_BE_AUTHENTICATION: return login_auth(l, body, len);
	case PROTO_BE_ERROR_RESPONSE: return login_error(l, body, len);
	case PROTO_BE_NOTICE_RESPONSE: return true;
	case PROTO_BE_NEGOTIATE_PROTOCOL_VERSION: return login_negotiate(l, body, len);
	case PROTO_BE_PARAMETER_STATUS:
	case PROTO_BE_BACKEND_KEY_DATA:
	case PROTO_BE_READY_FOR_QUERY: return login_setup(l, type, body, len);
	default: return login_fail(l, false, "unexpected %s during the login", proto_be_type_to_str(type));
	}
}

/* One whole message from the input, handled and drained. False when more
 * bytes are needed or the login ended. */
static bool login_next(Login *l)
{
	struct evbuffer *in = l->sock->in;
	uint8_t hdr[PROTO_HEADER_SIZE];
	ProtoHeader h;
	const char *why = "";
	if (evbuffer_copyout(in, hdr, sizeof(hdr)) < (ev_ssize_t)sizeof(hdr))
		return false;
	if (proto_header_parse(hdr, sizeof(hdr), LOGIN_MESSAGE_MAX, &h, &why) != PROTO_OK)
		return login_fail(l, false, "bad message from the server: %s", why);
	size_t total = (size_t)h.len + 1;
	if (evbuffer_get_length(in) < total)
		return false;
	if (++l->n_messages > LOGIN_MAX_MESSAGES)
		return login_fail(l, false, "more than %d messages before ReadyForQuery", LOGIN_MAX_MESSAGES);
	const uint8_t *msg = evbuffer_pullup(in, (ev_ssize_t)total);
	if (!msg)
		return login_fail(l, false, "out of memory reading a login message");
	bool go = login_message(l, h.type, msg + PROTO_HEADER_SIZE, proto_body_len(&h));
	evbuffer_drain(in, total);
	return go;
}

static void login_on_read(void *arg)
{
	Login *l = arg;
	for (;;) {
		bool more;
		if (l->state == LOGIN_ST_SSL_ANSWER)
			more = login_ssl_answer(l);
		else if (l->state == LOGIN_ST_AUTH || l->state == LOGIN_ST_SETUP)
			more = login_next(l);
		else
			break;
		if (!more)
			break;
	}
	if (l->state == LOGIN_ST_SSL_ANSWER || l->state == LOGIN_ST_AUTH || l->state == LOGIN_ST_SETUP)
		sock_read(l->sock, true); /* the cap may have turned it off */
	login_report(l);
}

/* ---- the start --------------------------------------------------------------------- */

/* The address to connect to: a Unix socket when HOST is a directory, else
 * HOSTADDR or HOST (a name is looked up here only when evdns could not do
 * it first, see resolve.c); "where" for messages. */
static bool login_address(Login *l, const char *host, const char *hostaddr, const char *port, char *err,
			  size_t errlen)
{
	if (!hostaddr && (!host || !*host))
		host = LOGIN_DEFAULT_SOCKET_DIR;
	if (!hostaddr && host[0] == '/') {
		struct sockaddr_un *un = (struct sockaddr_un *)&l->cancel.addr;
		un->sun_family = AF_UNIX;
		int n = snprintf(un->sun_path, sizeof(un->sun_path), "%s/.s.PGSQL.%s", host, port);
		if (n < 0 || (size_t)n >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "Unix-domain socket path \"%s/.s.PGSQL.%s\" is too long", host, port);
			return false;
		}
		l->cancel.addr_len = (socklen_t)sizeof(*un);
		l->unix_socket = true;
		snprintf(l->where, sizeof(l->where), "server on socket \"%s\"", un->sun_path);
		return true;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res = NULL;
	if (hostaddr)
		hints.ai_flags |= AI_NUMERICHOST;
	const char *node = hostaddr ? hostaddr : host;
	int rc = getaddrinfo(node, port, &hints, &res);
	if (rc != 0 || !res || res->ai_addrlen > sizeof(l->cancel.addr)) {
		snprintf(err, errlen, "could not translate host name \"%s\" to address: %s", node,
			 rc ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return false;
	}
	memcpy(&l->cancel.addr, res->ai_addr, res->ai_addrlen);
	l->cancel.addr_len = (socklen_t)res->ai_addrlen;
	freeaddrinfo(res);
	if (host && hostaddr && strcmp(host, hostaddr) != 0)
		snprintf(l->where, sizeof(l->where), "server at \"%s\" (%s), port %s", host, hostaddr, port);
	else
		snprintf(l->where, sizeof(l->where), "server at \"%s\", port %s", node, port);
	return true;
}

/* The StartupMessage parameters and the keywords they come from (NULL:
 * application_name, else fallback_application_name, as libpq). */
static const char *const login_startup_params[][2] = {
	{"user", "user"}, {"database", "dbname"}, {"application_name", NULL},
	{"options", "options"}, {"client_encoding", "client_encoding"},
};
#define N_STARTUP_PARAMS (sizeof(login_startup_params) / sizeof(login_startup_params[0]))

/* The StartupMessage, with the parameters that are given. */
static void login_build_startup(Login *l, const char *const *kw, const char *const *val)
{
	const char *names[N_STARTUP_PARAMS], *values[N_STARTUP_PARAMS];
	size_t n = 0;
	const char *app = kw_get(kw, val, "application_name");
	for (size_t i = 0; i < N_STARTUP_PARAMS; i++) {
		const char *key = login_startup_params[i][1];
		const char *v = key ? kw_get(kw, val, key)
				    : (app && *app ? app : kw_get(kw, val, "fallback_application_name"));
		if (!v || !*v)
			continue;
		names[n] = login_startup_params[i][0];
		values[n++] = v;
	}
	protobuf_init(&l->startup);
	proto_put_startup_message(&l->startup, names, values, n);
}

/* sslmode and the TLS context the attempts may need. */
static bool login_tls_setup(Login *l, const char *const *kw, const char *const *val, char *err, size_t errlen)
{
	const char *mode = kw_get(kw, val, "sslmode");
	int m = CONF_TLS_DISABLE;
	while (mode && m <= CONF_TLS_VERIFY_FULL && strcmp(conf_tls_mode_to_str((ConfTlsMode)m), mode) != 0)
		m++;
	if (m > CONF_TLS_VERIFY_FULL) {
		snprintf(err, errlen, "invalid sslmode value: \"%s\"", mode);
		return false;
	}
	l->sslmode = mode ? (ConfTlsMode)m : CONF_TLS_PREFER; /* libpq's default */
	const char *sni = kw_get(kw, val, "sslsni");
	l->sni = !sni || strcmp(sni, "0") != 0;
	l->try_tls = !l->unix_socket && l->sslmode != CONF_TLS_DISABLE && l->sslmode != CONF_TLS_ALLOW;
	if (l->unix_socket || l->sslmode == CONF_TLS_DISABLE)
		return true;
	const char *root = kw_get(kw, val, "sslrootcert");
	l->verify = l->sslmode >= CONF_TLS_VERIFY_CA || (l->sslmode == CONF_TLS_REQUIRE && root);
	l->check_name = l->sslmode == CONF_TLS_VERIFY_FULL;
	l->tls_ctx = tls_client_ctx(root, l->verify, kw_get(kw, val, "sslcert"), kw_get(kw, val, "sslkey"), err, errlen);
	return l->tls_ctx != NULL;
}

/* What KW/VAL leave open, from libpq's defaults (PGHOST, PGPORT... and
 * 5432): the one place the own login reads the environment, as libpq. */
static const char *login_default(PQconninfoOption *defs, const char *keyword)
{
	for (PQconninfoOption *o = defs; o && o->keyword; o++)
		if (strcmp(o->keyword, keyword) == 0)
			return o->val && *o->val ? o->val : NULL;
	return NULL;
}

static bool login_setup_target(Login *l, const char *const *kw, const char *const *val, char *err, size_t errlen)
{
	const char *host = kw_get(kw, val, "host"), *addr = kw_get(kw, val, "hostaddr");
	const char *port = kw_get(kw, val, "port");
	PQconninfoOption *defs = (!host && !addr) || !port ? PQconndefaults() : NULL;
	if (!host && !addr) {
		host = login_default(defs, "host");
		addr = login_default(defs, "hostaddr");
	}
	if (!port)
		port = login_default(defs, "port");
	bool ok = login_address(l, host, addr, port ? port : "5432", err, errlen);
	l->host = host ? strdup(host) : NULL;
	PQconninfoFree(defs);
	const char *user = kw_get(kw, val, "user");
	l->user = strdup(user ? user : "");
	const char *k[3] = {"keepalives_idle", "keepalives_interval", "keepalives_count"};
	l->keepalive[0] = login_number(kw_get(kw, val, "keepalives"));
	for (int i = 0; i < 3; i++)
		l->keepalive[i + 1] = login_number(kw_get(kw, val, k[i]));
	return ok && login_tls_setup(l, kw, val, err, errlen);
}

LoginStartResult login_start(Login **out, Sock *sock, const char *const *kw, const char *const *val,
			     const ScramKeys *keys, ParamList *params, const LoginCallbacks *cb, void *arg, char *err,
			     size_t errlen)
{
	*out = NULL;
	Login *l = calloc(1, sizeof(*l));
	if (!l)
		return LOGIN_CANNOT;
	l->sock = sock;
	l->fd = -1;
	l->cb = cb;
	l->arg = arg;
	l->params = params;
	l->keys = *keys;
	l->retry_ev = event_new(proxy.base, -1, 0, login_retry_cb, l);
	snprintf(l->where, sizeof(l->where), "server");
	if (!l->retry_ev) {
		login_free(l);
		return LOGIN_CANNOT;
	}
	login_build_startup(l, kw, val);
	if (!login_setup_target(l, kw, val, err, errlen)) {
		login_free(l);
		return LOGIN_FAILED;
	}
	if (!l->user || !protobuf_ok(&l->startup) || l->startup.len > PROTO_STARTUP_MAX) {
		snprintf(err, errlen, "the StartupMessage cannot be built (out of memory, or over %d bytes)",
			 PROTO_STARTUP_MAX);
		login_free(l);
		return LOGIN_FAILED;
	}
	if (!login_connect(l)) {
		snprintf(err, errlen, "%s", l->error);
		login_free(l);
		return LOGIN_FAILED;
	}
	*out = l;
	return LOGIN_STARTED;
}

const LoginCancelKey *login_cancel_key(const Login *l) { return &l->cancel; }

void login_keys_free(ScramKeys *k)
{
	if (!k)
		return;
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

void login_abort(Login *l)
{
	if (!l)
		return;
	if (l->conn_ev)
		event_del(l->conn_ev);
	if (l->retry_ev)
		event_del(l->retry_ev);
	l->state = LOGIN_ST_ENDED;
}

void login_free(Login *l)
{
	if (!l)
		return;
	if (l->conn_ev)
		event_free(l->conn_ev);
	if (l->retry_ev)
		event_free(l->retry_ev);
	if (l->fd >= 0)
		close(l->fd);
	SSL_CTX_free(l->tls_ctx);
	free(l->host);
	free(l->user);
	protobuf_free(&l->startup);
	proto_scram_client_clear(&l->scram);
	OPENSSL_cleanse(l, sizeof(*l));
	free(l);
}

/* ---- CancelRequest ---------------------------------------------------------------- */

/* One CancelRequest under way: connect, write, wait for the close. */
struct LoginCancel {
	LIST_ENTRY(LoginCancel) link;     /* proxy.cancels */
	int fd;
	struct event *ev;
	bool sent;
	uint64_t deadline_ms;
	uint8_t packet[16];
	char where[96];
};

static void login_cancel_free(LoginCancel *c)
{
	LIST_REMOVE(c, link);
	if (c->ev)
		event_free(c->ev);
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

/* Waits on C's socket (writable before the send, readable after) until
 * what is left of its deadline. */
static bool login_cancel_wait(LoginCancel *c, short what);

static void login_cancel_cb(evutil_socket_t fd, short what, void *arg)
{
	LoginCancel *c = arg;
	(void)fd;
	if (what & EV_TIMEOUT) {
		log_warning("cancel request to %s: no answer in time", c->where);
		login_cancel_free(c);
		return;
	}
	if (c->sent) { /* the server read it and closed (or sent something: done too) */
		login_cancel_free(c);
		return;
	}
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (!err && send(c->fd, c->packet, sizeof(c->packet), MSG_NOSIGNAL) != (ssize_t)sizeof(c->packet))
		err = errno ? errno : EIO;
	if (err) {
		log_warning("cancel request to %s failed: %s", c->where, strerror(err));
		login_cancel_free(c);
		return;
	}
	c->sent = true;
	if (!login_cancel_wait(c, EV_READ))
		login_cancel_free(c);
}

static bool login_cancel_wait(LoginCancel *c, short what)
{
	uint64_t now = proxy_now_ms();
	uint64_t left = c->deadline_ms > now ? c->deadline_ms - now : 1;
	struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
	if (c->ev)
		event_free(c->ev);
	c->ev = event_new(proxy.base, c->fd, what, login_cancel_cb, c);
	return c->ev && event_add(c->ev, &tv) == 0;
}

bool login_cancel(const LoginCancelKey *k, int timeout_ms)
{
	if (!k->addr_len)
		return false;
	LoginCancel *c = calloc(1, sizeof(*c));
	if (!c)
		return false;
	LIST_INSERT_HEAD(&proxy.cancels, c, link);
	c->fd = socket(k->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	c->deadline_ms = proxy_now_ms() + (uint64_t)timeout_ms;
	snprintf(c->where, sizeof(c->where), "backend %u", (unsigned)k->pid);
	ProtoBuf b;
	protobuf_init_on(&b, c->packet, sizeof(c->packet));
	proto_put_cancel_request(&b, k->pid, k->key);
	bool ok = c->fd >= 0 && b.len == sizeof(c->packet) && !b.oom && b.data == c->packet;
	protobuf_free(&b);
	if (ok && connect(c->fd, (const struct sockaddr *)&k->addr, k->addr_len) != 0 && errno != EINPROGRESS &&
	    errno != EAGAIN && errno != EINTR) {
		log_warning("cancel request to %s failed: %s", c->where, strerror(errno));
		ok = false;
	}
	if (!ok || !login_cancel_wait(c, EV_WRITE)) {
		login_cancel_free(c);
		return false;
	}
	return true;
}

void login_cancel_free_all(void)
{
	while (!LIST_EMPTY(&proxy.cancels))
		login_cancel_free(LIST_FIRST(&proxy.cancels));
}
