/*
 * proxy/tls.c: the TLS server context for client connections, and the
 * client contexts of pgflip's own server logins (login.c).
 *
 * One SSL_CTX per config snapshot. A reload builds a new one first; when a
 * certificate, key or CA file cannot be used, the reload is refused and the
 * running context stays (daemon.c). Handshakes run inside the socket layer
 * (sock_start_tls): SSL_read performs the handshake before the first bytes
 * of the StartupMessage, so a slow or silent client costs nothing but its
 * client_login_timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "protocol/scram.h"
#include "proxy/tls.h"

const char *tls_error_string(unsigned long e)
{
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	return r ? r : "TLS failure";
}

static bool tls_fail(char *err, size_t errlen, const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	snprintf(err, errlen, "%s %s: %s", what, file ? file : "", tls_error_string(e));
	ERR_clear_error();
	return false;
}

/* client_tls_protocols: the lowest and highest version allowed, and every
 * version between them that is not, switched off one by one. */
static bool tls_set_protocols(SSL_CTX *ctx, unsigned bits, char *err, size_t errlen)
{
	static const struct { unsigned bit; int version; long off; } v[] = {
		{CONF_TLS_V1_0, TLS1_VERSION, SSL_OP_NO_TLSv1},
		{CONF_TLS_V1_1, TLS1_1_VERSION, SSL_OP_NO_TLSv1_1},
		{CONF_TLS_V1_2, TLS1_2_VERSION, SSL_OP_NO_TLSv1_2},
		{CONF_TLS_V1_3, TLS1_3_VERSION, SSL_OP_NO_TLSv1_3},
	};
	int lo = 0, hi = 0;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (bits & v[i].bit) {
			if (!lo)
				lo = v[i].version;
			hi = v[i].version;
		}
	}
	if (!lo || !SSL_CTX_set_min_proto_version(ctx, lo) || !SSL_CTX_set_max_proto_version(ctx, hi))
		return tls_fail(err, errlen, "client_tls_protocols", "");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (v[i].version > lo && v[i].version < hi && !(bits & v[i].bit))
			SSL_CTX_set_options(ctx, v[i].off);
	return true;
}

/* client_tls_ciphers: OpenSSL's cipher list syntax (TLS 1.2 and older; TLS
 * 1.3 suites stay OpenSSL's), with PgBouncer's shortcuts: "default" and
 * "secure" keep OpenSSL's default list, "all"/"legacy"/"insecure" allow
 * every cipher OpenSSL has. */
static bool tls_set_ciphers(SSL_CTX *ctx, const char *ciphers, char *err, size_t errlen)
{
	if (!ciphers || !*ciphers || strcmp(ciphers, "default") == 0 || strcmp(ciphers, "secure") == 0)
		return true;
	if (strcmp(ciphers, "all") == 0 || strcmp(ciphers, "legacy") == 0 || strcmp(ciphers, "insecure") == 0)
		ciphers = "ALL";
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
		return tls_fail(err, errlen, "client_tls_ciphers", ciphers);
	return true;
}

static bool tls_load_files(SSL_CTX *ctx, const Conf *conf, char *err, size_t errlen)
{
	if (SSL_CTX_use_certificate_chain_file(ctx, conf->client_tls_cert_file) != 1)
		return tls_fail(err, errlen, "client_tls_cert_file", conf->client_tls_cert_file);
	if (SSL_CTX_use_PrivateKey_file(ctx, conf->client_tls_key_file, SSL_FILETYPE_PEM) != 1)
		return tls_fail(err, errlen, "client_tls_key_file", conf->client_tls_key_file);
	if (SSL_CTX_check_private_key(ctx) != 1)
		return tls_fail(err, errlen, "client_tls_key_file", conf->client_tls_key_file);
	if (conf->client_tls_ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, conf->client_tls_ca_file, NULL) != 1)
			return tls_fail(err, errlen, "client_tls_ca_file", conf->client_tls_ca_file);
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(conf->client_tls_ca_file);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
	}
	if (conf->client_tls_sslmode >= CONF_TLS_VERIFY_CA)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	else if (conf->client_tls_ca_file)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); /* a certificate, if the client has one, is checked */
	return true;
}

TlsServer *tls_server_new(const Conf *conf, char *err, size_t errlen)
{
	err[0] = '\0';
	if (conf->client_tls_sslmode == CONF_TLS_DISABLE)
		return NULL;
	TlsServer *t = calloc(1, sizeof(*t));
	SSL_CTX *ctx = t ? SSL_CTX_new(TLS_server_method()) : NULL;
	if (!ctx) {
		free(t);
		tls_fail(err, errlen, "client TLS", "");
		return NULL;
	}
	t->ctx = ctx;
	t->mode = conf->client_tls_sslmode;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* PostgreSQL does not resume sessions either: no cache, and no TLS 1.3
	 * tickets that nobody would use (about 20 us a handshake) */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (!tls_set_protocols(ctx, conf->client_tls_protocols, err, errlen) ||
	    !tls_set_ciphers(ctx, conf->client_tls_ciphers, err, errlen) || !tls_load_files(ctx, conf, err, errlen)) {
		tls_server_free(t);
		return NULL;
	}
	return t;
}

void tls_server_free(TlsServer *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

SSL *tls_accept(TlsServer *t, int fd)
{
	SSL *ssl = SSL_new(t->ctx);
	if (!ssl)
		return NULL;
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

bool tls_peer_name(SSL *ssl, char *out, size_t n)
{
	if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
		return false;
	X509 *cert = SSL_get0_peer_certificate(ssl);
	if (!cert)
		return false;
	X509_NAME *name = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0)
		return false;
	ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
	const unsigned char *p = ASN1_STRING_get0_data(cn);
	int len = ASN1_STRING_length(cn);
	if (len <= 0 || (size_t)len >= n || memchr(p, '\0', (size_t)len))
		return false;
	memcpy(out, p, (size_t)len);
	out[len] = '\0';
	return true;
}

bool tls_end_point(SSL *ssl, uint8_t *out, size_t *len)
{
	X509 *cert = ssl ? SSL_get_certificate(ssl) : NULL;
	return cert && proto_tls_server_end_point(cert, out, len);
}

/* ---- towards servers ------------------------------------------------------- */

SSL_CTX *tls_client_ctx(const char *rootcert, bool verify, const char *cert, const char *key, char *err,
			size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		tls_fail(err, errlen, "server TLS", "");
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 || tls_fail(err, errlen, "server TLS", "");
	if (ok && verify) {
		if (!rootcert) {
			snprintf(err, errlen, "sslrootcert (server_tls_ca_file) is needed to verify the server");
			ok = false;
		} else if (SSL_CTX_load_verify_locations(ctx, rootcert, NULL) != 1)
			ok = tls_fail(err, errlen, "sslrootcert", rootcert);
		else
			SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if (ok && cert && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		ok = tls_fail(err, errlen, "sslcert", cert);
	if (ok && cert && key &&
	    (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1))
		ok = tls_fail(err, errlen, "sslkey", key);
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* An IPv4 or IPv6 address rather than a host name. */
static bool tls_is_address(const char *host)
{
	struct in6_addr a;
	return inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1;
}

SSL *tls_connect(SSL_CTX *ctx, int fd, const char *host, bool sni, bool check_name)
{
	if (check_name && (!host || !*host))
		return NULL;
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return NULL;
	bool ok = SSL_set_fd(ssl, fd) == 1;
	bool address = host && tls_is_address(host);
	if (ok && sni && host && *host && !address)
		ok = SSL_set_tlsext_host_name(ssl, host) == 1;
	if (ok && check_name && address)
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
	else if (ok && check_name) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		ok = SSL_set1_host(ssl, host) == 1;
	}
	if (!ok) {
		SSL_free(ssl);
		ERR_clear_error();
		return NULL;
	}
	SSL_set_connect_state(ssl);
	return ssl;
}

const char *tls_verify_error(const SSL *ssl)
{
	long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	return v == X509_V_OK ? NULL : X509_verify_cert_error_string(v);
}
