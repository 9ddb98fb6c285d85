/*
 * proxy/login.h: pgflip's own server login (login.c), for SCRAM
 * passthrough: logging in upstream with the keys a client proved to pgflip,
 * where libpq 15 would need the password. Every other server login goes
 * through libpq (server.c, DESIGN.md decision 1).
 *
 * One login, non-blocking on the event loop: TCP or Unix-socket connect,
 * SSLRequest and the TLS handshake as sslmode says, StartupMessage, the
 * SCRAM-SHA-256 exchange, then ParameterStatus and BackendKeyData up to
 * ReadyForQuery (PostgreSQL docs, "Message Flow / Start-up"). The link it
 * makes is the caller's Sock, which owns the socket and the SSL object.
 */
#ifndef PGFLIP_LOGIN_H
#define PGFLIP_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "protocol/scram.h"
#include "proxy/params.h"
#include "proxy/sock.h"

/* What a client proved in a SCRAM-SHA-256 exchange with pgflip (auth.c):
 * its ClientKey, and the ServerKey of the verifier it proved against. They
 * log in to a server that holds the same verifier, as that client. Wipe
 * with OPENSSL_cleanse. */
typedef struct ScramKeys {
	uint8_t client_key[PROTO_SCRAM_KEY_LEN];
	uint8_t server_key[PROTO_SCRAM_KEY_LEN];
} ScramKeys;

/* login_keys_free: wipes (OPENSSL_cleanse) and frees K; NULL is fine. */
void login_keys_free(ScramKeys *k);

/* Where a CancelRequest for a backend goes, and what it carries
 * (BackendKeyData). addr_len 0: none known. */
typedef struct LoginCancelKey {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint32_t pid;
	uint32_t key;
} LoginCancelKey;

typedef struct Login Login;
/* A CancelRequest under way (login_cancel), in proxy.cancels. */
typedef struct LoginCancel LoginCancel;

/* The outcome, called once, with the caller's ARG: done (ReadyForQuery
 * came: the Sock is logged in, with no unread login message), or failed
 * with MESSAGE (libpq's shape: "connection to server at \"h\" (a), port p
 * failed: FATAL:  ..."). Either call is the last thing login.c does with
 * the Login: the callee may login_free it there. */
typedef struct LoginCallbacks {
	void (*done)(void *arg);
	void (*failed)(void *arg, const char *message);
} LoginCallbacks;

/* What login_start did: STARTED (the outcome comes through a callback),
 * FAILED (at once, ERR says why: counts as a failed login), CANNOT (out of
 * memory: nothing was tried). */
typedef enum { LOGIN_STARTED = 0, LOGIN_FAILED, LOGIN_CANNOT } LoginStartResult;

/*
 * login_supported: whether login.c can make the login that the libpq
 * keywords KW[i] = VAL[i] (NULL-terminated, as PQconnectStartParams takes
 * them) describe. It knows host (one name or address, or a socket directory
 * starting with '/'), hostaddr (one), port, dbname, user, password,
 * application_name, fallback_application_name, options, client_encoding
 * (not "auto"), sslmode, sslrootcert, sslcert, sslkey, sslsni,
 * sslcompression (no effect, as in libpq with OpenSSL 3), connect_timeout,
 * keepalives, keepalives_idle, keepalives_interval, keepalives_count, and
 * gssencmode, channel_binding and target_session_attrs at the values that
 * ask nothing of it (disable/prefer, disable/prefer, any). For anything
 * else *WHY names the keyword and it answers false: leave that login to
 * libpq. No file under ~/.postgresql is read: give sslrootcert and
 * sslcert/sslkey.
 */
bool login_supported(const char *const *kw, const char *const *val, const char **why);

/*
 * login_start: starts the login that KW/VAL describe (login_supported must
 * have said yes), proving the identity with KEYS (copied). SOCK is the
 * caller's storage, zeroed or closed: login.c opens it once the socket is
 * connected (owning the fd, and the SSL object once TLS starts); whatever
 * the outcome, the caller closes it with sock_close. PARAMS gets the
 * server's ParameterStatus values. The strings of KW/VAL are copied; the
 * login takes no more than its caller lets it (the caller's timeout,
 * login_connect_timeout_ms), and bounds what it reads (message lengths and
 * counts, login.c). *OUT is the Login when STARTED, else NULL.
 */
LoginStartResult login_start(Login **out, Sock *sock, const char *const *kw, const char *const *val,
			     const ScramKeys *keys, ParamList *params, const LoginCallbacks *cb, void *arg, char *err,
			     size_t errlen) PROXY_MUSTCHECK;

/* login_connect_timeout_ms: the entry's connect_timeout in ms (libpq's
 * rule: at least 2 s), 0 when it sets none. */
int login_connect_timeout_ms(const char *const *kw, const char *const *val);

/* login_cancel_key: after done, where and what a CancelRequest for the
 * backend takes. */
const LoginCancelKey *login_cancel_key(const Login *l);

/* login_abort: no callback comes any more and nothing more is sent or read
 * (the caller gave up: a timeout, a shutdown). Safe in any state. */
void login_abort(Login *l);

/* login_free: frees L and wipes its SCRAM state; NULL is fine. The Sock is
 * the caller's (sock_close). Not inside L's own callbacks except as their
 * last act (see LoginCallbacks). */
void login_free(Login *l);

/*
 * login_cancel: sends a CancelRequest for K's backend on a new connection
 * to K->addr (PostgreSQL docs, "Canceling Requests in Progress"), without
 * blocking: connect, write the 16 bytes, wait for the server to close (as
 * libpq's PQcancel, so that the cancel lands before the caller's next
 * request), all within TIMEOUT_MS. Plain text, as libpq 15 sends it. False
 * when it cannot even start (no address, no socket, no memory); failures
 * later are logged.
 */
bool login_cancel(const LoginCancelKey *k, int timeout_ms);

/* login_cancel_free_all: frees the cancel requests still under way (at
 * shutdown, before the event base goes). */
void login_cancel_free_all(void);

#endif
