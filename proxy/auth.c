/*
 * proxy/auth.c: who may log in, and the exchange that proves it.
 *
 * The method is auth_type, or with auth_type = hba the method of the first
 * auth_hba_file line that matches the client (connection type, TLS,
 * database, user, address). Secrets come from auth_file (PgBouncer's
 * userlist.txt: plain passwords, md5 hashes, SCRAM verifiers).
 *
 * What a client can learn is what PostgreSQL lets it learn: an unknown user
 * gets the same exchange as a known one with a wrong password (for SCRAM a
 * made-up verifier whose salt is stable per user name), and the same 28P01
 * answer; only the log tells them apart. Secrets are compared in constant
 * time (protocol/scram.c) and never logged. A stored secret that cannot
 * serve the method (an md5 hash under scram-sha-256) fails the same way, as
 * in PostgreSQL; an md5 method with a SCRAM verifier runs SCRAM instead, as
 * PostgreSQL does.
 *
 * The exchange state lives in Client.auth only between auth_start and the
 * end of the exchange; client_free wipes it if the client leaves midway.
 *
 * SCRAM passthrough: a SCRAM exchange that ends DONE against a verifier of
 * auth_file (not a made-up one, not one pgflip made from a plain password,
 * whose salt no server has) leaves the client's ClientKey and the
 * verifier's ServerKey in Client.scram_keys; client_enter hands them to
 * the client's pool, whose server logins can then prove the same identity
 * upstream (login.c), and wipes them.
 */
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "protocol/protocol.h"
#include "protocol/scram.h"
#include "proxy/auth.h"
#include "proxy/authq.h"
#include "proxy/client.h"
#include "proxy/log.h"
#include "proxy/tls.h"

/* Iterations of a verifier pgflip makes from a plain auth_file password:
 * PostgreSQL's default (scram_iterations). */
#define AUTH_SCRAM_ITERATIONS 4096
#define AUTH_SALT_LEN 16

typedef enum { STEP_FIRST = 0, STEP_FINAL } ScramStep;

/* SCRAM verifiers of the plain auth_file passwords of one config snapshot,
 * in the order of conf->users (unused for other kinds). */
struct AuthVerifiers {
	const Conf *conf;
	ProtoScramSecret *items;
	bool *ok;
};

AuthVerifiers *auth_verifiers_new(const Conf *conf)
{
	AuthVerifiers *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->conf = conf;
	if (conf->n_users > 0) {
		v->items = calloc(conf->n_users, sizeof(*v->items));
		v->ok = calloc(conf->n_users, sizeof(*v->ok));
		if (!v->items || !v->ok) {
			auth_verifiers_free(v);
			return NULL;
		}
	}
	for (size_t i = 0; i < conf->n_users; i++) {
		const ConfUser *u = &conf->users[i];
		uint8_t salt[AUTH_SALT_LEN];
		if (u->kind == CONF_SECRET_PLAIN)
			v->ok[i] = RAND_bytes(salt, sizeof(salt)) == 1 &&
				   proto_scram_secret_make(u->secret, salt, sizeof(salt), AUTH_SCRAM_ITERATIONS, &v->items[i]);
	}
	return v;
}

void auth_verifiers_free(AuthVerifiers *v)
{
	if (!v)
		return;
	if (v->items) {
		OPENSSL_cleanse(v->items, v->conf->n_users * sizeof(*v->items));
		free(v->items);
	}
	free(v->ok);
	free(v);
}

/* The verifier made from USER's plain password, or NULL. */
static const ProtoScramSecret *auth_verifier(const char *user)
{
	const AuthVerifiers *v = proxy.auth_verifiers;
	const ConfUser *u = conf_find_user(proxy.conf, user);
	if (!v || v->conf != proxy.conf || !u)
		return NULL;
	size_t i = (size_t)(u - proxy.conf->users);
	return v->ok[i] ? &v->items[i] : NULL;
}

struct AuthState {
	ConfAuthType method;   /* CONF_AUTH_MD5, CONF_AUTH_PASSWORD or CONF_AUTH_SCRAM */
	char *secret;          /* copy of the auth_file secret, NULL when mock */
	ConfSecretKind kind;
	const char *mock;      /* non-NULL: why this exchange can only fail (for the log) */
	uint8_t md5_salt[4];
	ScramStep step;
	ProtoScramServer scram;
	bool keep_keys;        /* the verifier is auth_file's own: keep what the client proves */
	uint8_t server_key[PROTO_SCRAM_KEY_LEN]; /* ... its ServerKey */
};

static void auth_send(Client *c, ProtoBuf *b)
{
	if (protobuf_ok(b))
		sock_write(&c->sock, b->data, b->len);
	else
		client_close(c, NULL, "out of memory building an authentication request");
	protobuf_free(b);
}

void auth_free(Client *c)
{
	AuthState *a = c->auth;
	if (!a)
		return;
	if (a->secret) {
		OPENSSL_cleanse(a->secret, strlen(a->secret));
		free(a->secret);
	}
	proto_scram_server_clear(&a->scram);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
	c->auth = NULL;
}

/* The one refusal path: FATAL SQLSTATE to the client, the reason to the log. */
static AuthStatus auth_refuse(Client *c, const char *sqlstate, const char *log_reason, const char *client_text)
{
	clog_info(c, "authentication failed: %s", log_reason);
	auth_free(c);
	client_close(c, sqlstate, "%s", client_text);
	return AUTH_FAILED;
}

static AuthStatus auth_password_failed(Client *c, const char *log_reason)
{
	char text[CONF_MAX_IDENT * 4 + 64];
	snprintf(text, sizeof(text), "password authentication failed for user \"%s\"", c->user);
	return auth_refuse(c, "28P01", log_reason, text);
}

static void auth_client_addr(const Client *c, int *family, const uint8_t **addr)
{
	*family = c->addr.ss_family;
	*addr = NULL;
	if (c->addr.ss_family == AF_INET)
		*addr = (const uint8_t *)&((const struct sockaddr_in *)&c->addr)->sin_addr;
	else if (c->addr.ss_family == AF_INET6)
		*addr = (const uint8_t *)&((const struct sockaddr_in6 *)&c->addr)->sin6_addr;
}

/* The method for C: auth_type, or its auth_hba_file line (*LINE, 0 = none). */
static ConfAuthType auth_method(const Client *c, int *line)
{
	const Conf *conf = proxy.conf;
	*line = 0;
	if (conf->auth_type != CONF_AUTH_HBA)
		return conf->auth_type;
	int family;
	const uint8_t *addr;
	auth_client_addr(c, &family, &addr);
	return conf_hba_match(conf, c->is_unix, c->sock.ssl != NULL, c->database, c->user, family, addr, line);
}

/* peer: the OS user at the other end of the Unix socket must be the user. */
static AuthStatus auth_peer(Client *c)
{
	uid_t uid;
	char name[256], why[400];
	int got = c->is_unix ? sock_peer_user(c->sock.fd, &uid, name, sizeof(name)) : -1;
	if (got < 0)
		return auth_refuse(c, "28000", "peer: no peer credentials", "peer authentication failed");
	if (got == 0) {
		snprintf(why, sizeof(why), "peer: uid %u has no user name", (unsigned)uid);
		return auth_refuse(c, "28000", why, "peer authentication failed");
	}
	if (strcmp(name, c->user) != 0) {
		snprintf(why, sizeof(why), "peer: OS user %s is not %s", name, c->user);
		return auth_refuse(c, "28000", why, "peer authentication failed");
	}
	return AUTH_DONE;
}

/* cert: a verified client certificate whose CommonName is the user (as
 * PgBouncer and PostgreSQL's cert method). */
static AuthStatus auth_cert(Client *c)
{
	char cn[256], why[400];
	if (!tls_peer_name(c->sock.ssl, cn, sizeof(cn)))
		return auth_refuse(c, "28000", "cert: no verified client certificate",
				   "certificate authentication failed: no valid client certificate");
	if (strcmp(cn, c->user) != 0) {
		snprintf(why, sizeof(why), "cert: certificate CN \"%s\" is not the user", cn);
		return auth_refuse(c, "28000", why, "certificate authentication failed: the certificate is for another user");
	}
	return AUTH_DONE;
}

/* The verifier a SCRAM exchange runs on: the user's, or a made-up one. */
static void auth_scram_secret(AuthState *a, const char *user, ProtoScramSecret *sec)
{
	if (!a->mock && a->kind == CONF_SECRET_SCRAM && !proto_scram_secret_parse(a->secret, sec))
		a->mock = "its auth_file SCRAM verifier cannot be read";
	if (!a->mock && a->kind == CONF_SECRET_MD5)
		a->mock = "its auth_file secret is an md5 hash, which cannot serve SCRAM";
	if (!a->mock && a->kind == CONF_SECRET_PLAIN) {
		/* made when auth_file was loaded (auth_verifiers_new): deriving it
		 * here would make known users slower to answer than unknown ones */
		const ProtoScramSecret *made = auth_verifier(user);
		if (made)
			*sec = *made;
		else
			a->mock = "no verifier could be made from its password";
	}
	if (a->mock)
		proto_scram_secret_mock(proxy.auth_mock_key, user, sec);
}

static AuthStatus auth_scram_begin(Client *c, AuthState *a)
{
	ProtoScramSecret sec;
	auth_scram_secret(a, c->user, &sec);
	if (!a->mock && a->kind == CONF_SECRET_SCRAM) {
		a->keep_keys = true;
		memcpy(a->server_key, sec.server_key, sizeof(a->server_key));
	}
	uint8_t cbind[EVP_MAX_MD_SIZE];
	size_t cbind_len = 0;
	bool plus = c->sock.ssl && tls_end_point(c->sock.ssl, cbind, &cbind_len);
	proto_scram_server_init(&a->scram, &sec, a->mock != NULL, plus ? cbind : NULL, plus ? cbind_len : 0);
	proto_scram_secret_clear(&sec);
	const char *mechs[PROTO_SCRAM_MECHANISMS_MAX];
	size_t n = proto_scram_server_mechanisms(&a->scram, mechs);
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_auth_sasl(&b, mechs, n);
	auth_send(c, &b);
	return c->state == CL_CLOSING ? AUTH_FAILED : AUTH_WAIT;
}

/* The first request of A's method, A's secret known (or A->mock). */
static AuthStatus auth_password_request(Client *c, AuthState *a)
{
	if (a->method == CONF_AUTH_MD5 && a->kind == CONF_SECRET_SCRAM && !a->mock)
		a->method = CONF_AUTH_SCRAM; /* as PostgreSQL: a SCRAM verifier cannot answer md5 */
	if (a->method == CONF_AUTH_SCRAM)
		return auth_scram_begin(c, a);
	ProtoBuf b;
	protobuf_init(&b);
	if (a->method == CONF_AUTH_MD5) {
		if (RAND_bytes(a->md5_salt, sizeof(a->md5_salt)) != 1) {
			protobuf_free(&b);
			return auth_refuse(c, "58000", "no random bytes for the md5 salt", "internal error");
		}
		proto_put_auth_md5(&b, a->md5_salt);
	} else {
		proto_put_auth_cleartext(&b);
	}
	auth_send(c, &b);
	return c->state == CL_CLOSING ? AUTH_FAILED : AUTH_WAIT;
}

/* A's secret from TEXT (auth_file's or auth_query's), or a mock when it is
 * NULL or unusable (WHY_NONE says why, for the log). */
static void auth_take_secret(AuthState *a, const char *text, const char *why_none)
{
	if (!text) {
		a->mock = why_none;
		return;
	}
	if (!conf_secret_classify(text, &a->kind)) {
		a->mock = "its SCRAM verifier is malformed";
		return;
	}
	a->secret = strdup(text);
	if (!a->secret)
		a->mock = "out of memory";
}

/* md5, password, scram-sha-256: the secret (auth_file, else auth_query),
 * then the first request. */
static AuthStatus auth_password_begin(Client *c, ConfAuthType method)
{
	const Conf *conf = proxy.conf;
	const ConfUser *u = conf_find_user(conf, c->user);
	AuthState *a = calloc(1, sizeof(*a));
	if (!a) {
		client_close(c, "53200", "out of memory");
		return AUTH_FAILED;
	}
	c->auth = a;
	a->method = method;
	if (!u && conf->auth_user && conf->auth_query && *conf->auth_query) {
		const char *secret;
		switch (authq_lookup(c, &secret)) {
		case AUTHQ_WAIT:
			return AUTH_LOOKUP;
		case AUTHQ_HIT:
			auth_take_secret(a, secret, "auth_query knows no password for it");
			return auth_password_request(c, a);
		case AUTHQ_FAIL:
			break;
		}
		return auth_refuse(c, "28000", "auth_query cannot run", "authentication failed");
	}
	auth_take_secret(a, u ? u->secret : NULL, conf->have_auth_file ? "no such user in auth_file" : "no auth_file");
	return auth_password_request(c, a);
}

void auth_lookup_done(Client *c, const char *secret)
{
	AuthState *a = c->auth;
	if (!a || c->state != CL_AUTH_LOOKUP)
		return;
	auth_take_secret(a, secret, "auth_query knows no password for it");
	client_auth_continue(c, auth_password_request(c, a));
}

void auth_lookup_failed(Client *c, const char *reason)
{
	if (c->state != CL_AUTH_LOOKUP)
		return;
	auth_refuse(c, "28000", reason, "authentication failed: the auth_query lookup failed");
}

AuthStatus auth_start(Client *c)
{
	int line;
	char why[CONF_MAX_IDENT * 3 + 160];
	ConfAuthType m = auth_method(c, &line);
	switch (m) {
	case CONF_AUTH_TRUST:
		if (proxy.conf->have_auth_file && !conf_find_user(proxy.conf, c->user))
			return auth_refuse(c, "28000", "trust: the user is not in auth_file",
					   "no such user in auth_file");
		return AUTH_DONE;
	case CONF_AUTH_REJECT:
		if (line)
			snprintf(why, sizeof(why), "auth_hba_file line %d rejects host %s, user %s, database %s", line,
				 c->addr_str, c->user, c->database);
		else
			snprintf(why, sizeof(why), "no auth_hba_file line for host %s, user %s, database %s%s",
				 c->addr_str, c->user, c->database, c->sock.ssl ? ", TLS" : ", no encryption");
		return auth_refuse(c, "28000", why, why);
	case CONF_AUTH_PEER:
		return auth_peer(c);
	case CONF_AUTH_CERT:
		return auth_cert(c);
	case CONF_AUTH_MD5:
	case CONF_AUTH_PASSWORD:
	case CONF_AUTH_SCRAM:
		return auth_password_begin(c, m);
	case CONF_AUTH_HBA:
		break;
	}
	return auth_refuse(c, "28000", "no authentication method", "authentication method not supported");
}

/* A cleartext password against any kind of stored secret. */
static bool auth_password_ok(const AuthState *a, const char *user, const char *given)
{
	switch (a->kind) {
	case CONF_SECRET_PLAIN: {
		size_t n = strlen(a->secret);
		return strlen(given) == n && CRYPTO_memcmp(given, a->secret, n) == 0;
	}
	case CONF_SECRET_MD5: {
		char hash[PROTO_MD5_SECRET_SIZE];
		bool ok = proto_md5_secret(user, given, hash) && strlen(a->secret) == 35 &&
			  CRYPTO_memcmp(hash, a->secret, 35) == 0;
		OPENSSL_cleanse(hash, sizeof(hash));
		return ok;
	}
	case CONF_SECRET_SCRAM: {
		ProtoScramSecret stored, made;
		bool ok = proto_scram_secret_parse(a->secret, &stored) &&
			  proto_scram_secret_make(given, stored.salt, stored.salt_len, stored.iterations, &made) &&
			  CRYPTO_memcmp(stored.stored_key, made.stored_key, sizeof(made.stored_key)) == 0;
		OPENSSL_cleanse(&made, sizeof(made));
		return ok;
	}
	}
	return false;
}

/* The exchange proved C against auth_file's verifier: its keys, for the
 * pool's server logins (SCRAM passthrough). Out of memory: none kept. */
static void auth_keep_keys(Client *c, const AuthState *a)
{
	if (!a->keep_keys || c->scram_keys || !(c->scram_keys = malloc(sizeof(*c->scram_keys))))
		return;
	memcpy(c->scram_keys->client_key, a->scram.client_key, sizeof(c->scram_keys->client_key));
	memcpy(c->scram_keys->server_key, a->server_key, sizeof(c->scram_keys->server_key));
}

static AuthStatus auth_scram_message(Client *c, AuthState *a, const uint8_t *body, size_t len)
{
	const char *why = "";
	ProtoScramStatus st;
	const uint8_t *data;
	size_t n;
	if (a->step == STEP_FIRST) {
		const char *mech;
		if (proto_read_sasl_initial(body, len, &mech, &data, &n, &why) != PROTO_OK)
			return auth_refuse(c, "08P01", why, "malformed SASLInitialResponse message");
		st = proto_scram_server_first(&a->scram, mech, data, n, NULL, &why);
	} else {
		if (proto_read_sasl_response(body, len, &data, &n, &why) != PROTO_OK)
			return auth_refuse(c, "08P01", why, "malformed SASLResponse message");
		st = proto_scram_server_final(&a->scram, data, n, &why);
	}
	switch (st) {
	case PROTO_SCRAM_BAD:
		return auth_refuse(c, "08P01", why, why);
	case PROTO_SCRAM_FAIL:
		return auth_password_failed(c, a->mock ? a->mock : "wrong password (SCRAM proof)");
	case PROTO_SCRAM_CONTINUE:
	case PROTO_SCRAM_DONE:
		break;
	}
	ProtoBuf b;
	protobuf_init(&b);
	if (st == PROTO_SCRAM_CONTINUE)
		proto_put_auth_sasl_continue(&b, (const uint8_t *)a->scram.msg, a->scram.msg_len);
	else
		proto_put_auth_sasl_final(&b, (const uint8_t *)a->scram.msg, a->scram.msg_len);
	auth_send(c, &b);
	if (c->state == CL_CLOSING)
		return AUTH_FAILED;
	a->step = STEP_FINAL;
	if (st == PROTO_SCRAM_CONTINUE)
		return AUTH_WAIT;
	auth_keep_keys(c, a);
	auth_free(c);
	return AUTH_DONE;
}

AuthStatus auth_message(Client *c, const uint8_t *body, size_t len)
{
	AuthState *a = c->auth;
	if (!a)
		return auth_refuse(c, "08P01", "a password message nobody asked for", "unexpected password message");
	if (a->method == CONF_AUTH_SCRAM)
		return auth_scram_message(c, a, body, len);
	const char *text, *why = "";
	if (proto_read_password(body, len, &text, &why) != PROTO_OK)
		return auth_refuse(c, "08P01", why, "malformed password message");
	bool ok;
	if (a->mock)
		ok = false;
	else if (a->method == CONF_AUTH_MD5)
		ok = proto_md5_check(a->secret, c->user, a->md5_salt, text);
	else
		ok = auth_password_ok(a, c->user, text);
	if (!ok)
		return auth_password_failed(c, a->mock ? a->mock : "wrong password");
	auth_free(c);
	return AUTH_DONE;
}
