/*
 * proxy/tls.h: TLS towards clients (tls.c). The listener side of
 * client_tls_* in pgbouncer.ini's sense: one server context built from the
 * config snapshot, swapped whole at a reload (connections keep the context
 * they were accepted with: OpenSSL counts its references).
 *
 * Server connections use TLS through libpq (server_tls_* become libpq
 * keywords in server.c), except pgflip's own logins (login.c, SCRAM
 * passthrough), whose client contexts and SSL objects come from the
 * tls_client_* functions at the end of this header.
 */
#ifndef PGFLIP_TLS_H
#define PGFLIP_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "conf/conf.h"

typedef struct TlsServer {
	SSL_CTX *ctx;
	ConfTlsMode mode;                        /* client_tls_sslmode */
} TlsServer;

/*
 * tls_server_new: the context for CONF's client_tls_* keys: certificate
 * chain and key (PEM files), the CA file whose certificates client
 * certificates must chain to (asked for and required under verify-ca and
 * verify-full), the protocol versions and ciphers, renegotiation off.
 * Returns NULL with ERR[0] == 0 when client_tls_sslmode is disable; NULL
 * with ERR (ERRLEN bytes, NUL-terminated: "client_tls_cert_file FILE:
 * OpenSSL's reason") when a file cannot be used; the caller keeps what it
 * had. Free with tls_server_free (NULL is fine).
 */
TlsServer *tls_server_new(const Conf *conf, char *err, size_t errlen) __attribute__((warn_unused_result));
void tls_server_free(TlsServer *t);

/* tls_accept: an SSL object for the accepted socket FD, in accept state, or
 * NULL when OpenSSL cannot allocate one. */
SSL *tls_accept(TlsServer *t, int fd);

/* tls_peer_name: the CommonName of the client's verified certificate into
 * OUT (N bytes), or false when there is none (no certificate, not verified,
 * no CN, or a CN with a NUL byte). */
bool tls_peer_name(SSL *ssl, char *out, size_t n);

/* tls_end_point: RFC 5929's tls-server-end-point of the certificate SSL
 * presented (the channel binding data of SCRAM-SHA-256-PLUS) into OUT
 * (EVP_MAX_MD_SIZE bytes), or false when there is none. */
bool tls_end_point(SSL *ssl, uint8_t *out, size_t *len);

/* tls_error_string: OpenSSL's reason for error code E, for logs. */
const char *tls_error_string(unsigned long e);

/* ---- towards servers: pgflip's own logins (login.c) ------------------------ */

/*
 * tls_client_ctx: a client context for server logins, as libpq 15 makes
 * one: TLS 1.2 or newer (its ssl_min_protocol_version), no compression, no
 * renegotiation. VERIFY: the server's certificate must chain to ROOTCERT
 * (a PEM file; required then), else the handshake fails. CERT and KEY (PEM
 * files, both or neither): the certificate pgflip presents. NULL with ERR
 * (ERRLEN bytes, "sslrootcert FILE: OpenSSL's reason") when a file cannot be
 * used or OpenSSL cannot allocate. Free with SSL_CTX_free; SSL objects made
 * from it hold their own reference.
 */
SSL_CTX *tls_client_ctx(const char *rootcert, bool verify, const char *cert, const char *key, char *err,
			size_t errlen) __attribute__((warn_unused_result));

/*
 * tls_connect: an SSL object on FD in connect state, from CTX, no bytes
 * exchanged yet (give it to sock_start_tls). HOST (may be NULL) is sent as
 * SNI when SNI is set and HOST is a name rather than an IP address (libpq's
 * sslsni); with CHECK_NAME the certificate must be for HOST (verify-full:
 * X509_check_host rules for a name, X509_check_ip_asc for an address),
 * checked by OpenSSL inside the handshake, so that a server with another
 * name fails before the login sends anything. NULL when OpenSSL cannot
 * allocate, or CHECK_NAME without HOST.
 */
SSL *tls_connect(SSL_CTX *ctx, int fd, const char *host, bool sni, bool check_name);

/* tls_verify_error: why the peer's certificate was refused in the
 * handshake (X509_verify_cert_error_string: "certificate has expired",
 * "hostname mismatch"...), or NULL when it was not. Meaningful only for an
 * SSL whose context verifies (tls_client_ctx with VERIFY): OpenSSL records
 * a result even when it was told not to act on it. */
const char *tls_verify_error(const SSL *ssl);

#endif
