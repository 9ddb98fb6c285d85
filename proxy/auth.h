/*
 * proxy/auth.h: client authentication (auth.c), between the StartupMessage
 * and AuthenticationOk: auth_type (or the matching auth_hba_file line)
 * decides the method, auth_file gives the secrets, and the exchange follows
 * PostgreSQL's (protocol docs, "Start-up" and "SASL Authentication").
 */
#ifndef PGFLIP_AUTH_H
#define PGFLIP_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/proxy.h"

typedef enum {
	AUTH_DONE = 0, /* the client is who it says: go on with the login */
	AUTH_WAIT,     /* a request went out: the client's next message goes to auth_message */
	AUTH_FAILED,   /* refused: the client got its FATAL and is closing */
	AUTH_LOOKUP,   /* its secret is being looked up (auth_query): auth_lookup_done follows */
} AuthStatus;

/* auth_start: C's StartupMessage was read (user, database, address, TLS
 * known). Trusted methods answer AUTH_DONE at once; password methods send
 * their first request (AuthenticationMD5Password, AuthenticationSASL,
 * AuthenticationCleartextPassword) and answer AUTH_WAIT; a refusal (reject,
 * no hba line, a certificate or peer that does not match, a user missing
 * from auth_file under trust) closes C with 28000 and answers AUTH_FAILED. */
AuthStatus auth_start(Client *c);

/* auth_message: BODY (LEN bytes, without the 5-byte header) of the 'p'
 * message C sent while in CL_AUTH: PasswordMessage, SASLInitialResponse or
 * SASLResponse, as the method expects. AUTH_WAIT: the next request went out;
 * AUTH_DONE: proven; AUTH_FAILED: C was closed with 28P01 (wrong secret or
 * unknown user, told apart in the log only) or 08P01 (malformed). */
AuthStatus auth_message(Client *c, const uint8_t *body, size_t len);

/* auth_verifiers_new: SCRAM verifiers (random salt, 4096 iterations) of
 * CONF's plain auth_file passwords, made once per config snapshot so that a
 * login never runs PBKDF2 (about 1.5 ms a user, at load); NULL when out of
 * memory (then plain passwords cannot serve SCRAM). The result belongs with
 * CONF: proxy.auth_verifiers is swapped with proxy.conf. */
AuthVerifiers *auth_verifiers_new(const Conf *conf);
void auth_verifiers_free(AuthVerifiers *v);

/* auth_lookup_done / auth_lookup_failed: the answer to C's auth_query
 * lookup (authq.c): SECRET (NULL = no such user, or no password; copied),
 * or REASON (for the log) when the lookup could not run. The exchange goes
 * on (client_auth_continue), or C is closed. */
void auth_lookup_done(Client *c, const char *secret);
void auth_lookup_failed(Client *c, const char *reason);

/* auth_free: wipes and frees C's exchange state (NULL-safe: C may have none). */
void auth_free(Client *c);

/* Largest authentication message a client may send (bytes): a SCRAM
 * client-final-message is about 150 bytes, a password 1 KiB at most in
 * PostgreSQL's own limit. */
#define AUTH_MESSAGE_MAX 8192

#endif
