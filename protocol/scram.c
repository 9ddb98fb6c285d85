/*
 * protocol/scram.c: SCRAM-SHA-256 both sides, tls-server-end-point, md5.
 *
 * Design: the messages are small and bounded (PROTO_SCRAM_MSG_MAX), so every
 * piece of an exchange is copied into the state the caller owns and nothing
 * is allocated but OpenSSL's digest contexts, freed on the spot. A message is
 * read with a cursor over its bytes (attributes "x=value" separated by
 * commas, RFC 5802 section 5.1); the values point into the caller's buffer
 * until they are copied. Any failure ends the exchange (stage END), so a
 * caller cannot retry a half-read step.
 *
 * Cryptography is libcrypto's only: PKCS5_PBKDF2_HMAC, HMAC and EVP digests,
 * EVP_EncodeBlock/EVP_DecodeBlock wrapped for exact padding, RAND_bytes.
 * Secret comparisons use CRYPTO_memcmp; keys, proofs and signatures are
 * wiped with OPENSSL_cleanse once used. What is not secret (nonces, the
 * channel-binding attribute) is compared with memcmp.
 *
 * Where RFC 5802 leaves a choice, the server side accepts what PostgreSQL's
 * server does (extensions after the nonce are ignored, "n=" is not used) and
 * the client side what libpq does (nothing after the iteration count).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "protocol/scram.h"

_Static_assert(PROTO_SCRAM_CBIND_MAX >= EVP_MAX_MD_SIZE, "channel-binding data is a digest");

/* Random bytes in a nonce we make: libpq's and PostgreSQL's SCRAM_RAW_NONCE_LEN. */
#define SCRAM_RAW_NONCE_LEN 18
/* A verifier's text is about 130 bytes with a 16-byte salt; 512 holds one
 * with the largest salt we accept. */
#define SCRAM_SECRET_TEXT_MAX 512
/* Characters of the base64 of N bytes, without the NUL. */
#define B64_LEN(n) (((n) + 2) / 3 * 4)
/* The gs2 header with channel binding, the only one we accept with 'p'. */
#define GS2_PLUS "p=" PROTO_SCRAM_CBIND_TYPE ",,"
/* AuthMessage = client-first-message-bare "," server-first-message ","
 * client-final-message-without-proof; each part is bounded by its buffer. */
#define AUTH_MESSAGE_MAX (PROTO_SCRAM_MSG_MAX + 2 * PROTO_SCRAM_OUT_MAX + 2)

/* ---- primitives ------------------------------------------------------------ */

static bool sha256(const void *data, size_t n, uint8_t out[PROTO_SCRAM_KEY_LEN])
{
	unsigned int len = 0;
	return EVP_Digest(data, n, out, &len, EVP_sha256(), NULL) == 1 && len == PROTO_SCRAM_KEY_LEN;
}

static bool hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t n,
			uint8_t out[PROTO_SCRAM_KEY_LEN])
{
	unsigned int len = 0;
	return HMAC(EVP_sha256(), key, (int)key_len, data, n, out, &len) != NULL && len == PROTO_SCRAM_KEY_LEN;
}

/* salted_keys: ClientKey and ServerKey of PASSWORD (RFC 5802 section 3). */
static bool salted_keys(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
			uint8_t client_key[PROTO_SCRAM_KEY_LEN], uint8_t server_key[PROTO_SCRAM_KEY_LEN])
{
	uint8_t salted[PROTO_SCRAM_KEY_LEN];
	size_t plen = strlen(password);
	bool ok = plen <= INT_MAX && salt_len <= INT_MAX && iterations >= 1 &&
		  PKCS5_PBKDF2_HMAC(password, (int)plen, salt, (int)salt_len, iterations, EVP_sha256(),
				    (int)sizeof(salted), salted) == 1 &&
		  hmac_sha256(salted, sizeof(salted), "Client Key", 10, client_key) &&
		  hmac_sha256(salted, sizeof(salted), "Server Key", 10, server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	return ok;
}

/* b64_encode: the base64 of IN[0..N) in OUT (B64_LEN(N) characters and a
 * NUL); returns its length. */
static size_t b64_encode(const uint8_t *in, size_t n, char *out)
{
	return (size_t)EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* b64_value: the 6-bit value of base64 character C, -1 for any other. */
static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* The largest result b64_decode is asked for: a salt. */
#define B64_DECODE_MAX PROTO_SCRAM_SALT_MAX

/*
 * b64_decode: strict, canonical base64 of IN[0..N) (RFC 4648 section 4): N a
 * multiple of 4, the alphabet only, '=' only as the last one or two
 * characters, and the bits the padding leaves unused zero (so each byte
 * string has one encoding). EVP_DecodeBlock itself would skip white space
 * and count the padding as zero bytes; we check the text first and take the
 * length from the padding. The result (at most MAX <= B64_DECODE_MAX bytes)
 * goes to OUT, its length to *OUT_LEN.
 */
static bool b64_decode(const char *in, size_t n, uint8_t *out, size_t max, size_t *out_len)
{
	uint8_t tmp[B64_DECODE_MAX + 3];
	size_t pad = 0;
	if (n % 4 != 0 || max > B64_DECODE_MAX)
		return false;
	if (n > 0 && in[n - 1] == '=')
		pad = in[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (b64_value(in[i]) < 0)
			return false;
	/* one '=': the last character's low 2 bits are unused; two: 4 bits */
	if (pad > 0 && (b64_value(in[n - pad - 1]) & (pad == 1 ? 0x3 : 0xF)) != 0)
		return false;
	size_t len = n / 4 * 3 - pad;
	if (len > max)
		return false;
	if (n > 0) {
		int got = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n);
		if (got < 0 || (size_t)got != n / 4 * 3)
			return false;
		memcpy(out, tmp, len);
		OPENSSL_cleanse(tmp, sizeof(tmp));
	}
	*out_len = len;
	return true;
}

/* RFC 5802 printable: %x21-2B / %x2D-7E, printable ASCII but ','; a nonce
 * is one or more of them. */
static bool scram_printable(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7E || s[i] == ',')
			return false;
	return true;
}

/* parse_count: decimal digits S[0..N) to 1..INT_MAX (an iteration count). */
static bool parse_count(const char *s, size_t n, int *out)
{
	long v = 0;
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
		if (v > INT_MAX)
			return false;
	}
	if (v < 1)
		return false;
	*out = (int)v;
	return true;
}

/* make_nonce: GIVEN (printable, 1..PROTO_SCRAM_NONCE_MAX) or, when NULL,
 * SCRAM_RAW_NONCE_LEN random bytes in base64, into OUT with a NUL. */
static bool make_nonce(const char *given, char out[PROTO_SCRAM_NONCE_MAX + 1], size_t *len)
{
	if (given) {
		size_t n = strnlen(given, PROTO_SCRAM_NONCE_MAX + 1);
		if (n > PROTO_SCRAM_NONCE_MAX || !scram_printable(given, n))
			return false;
		memcpy(out, given, n + 1);
		*len = n;
		return true;
	}
	uint8_t raw[SCRAM_RAW_NONCE_LEN];
	_Static_assert(B64_LEN(SCRAM_RAW_NONCE_LEN) <= PROTO_SCRAM_NONCE_MAX, "random nonce fits");
	if (RAND_bytes(raw, (int)sizeof(raw)) != 1)
		return false;
	*len = b64_encode(raw, sizeof(raw), out);
	return true;
}

/* auth_signatures: AuthMessage = A "," B "," C (RFC 5802 section 3), then
 * HMAC(KEY1, AuthMessage) in OUT1 and HMAC(KEY2, AuthMessage) in OUT2. */
static bool auth_signatures(const char *a, size_t alen, const char *b, size_t blen, const char *c, size_t clen,
			    const uint8_t *key1, uint8_t *out1, const uint8_t *key2, uint8_t *out2)
{
	char msg[AUTH_MESSAGE_MAX];
	if (alen + blen + clen + 2 > sizeof(msg))
		return false;
	memcpy(msg, a, alen);
	msg[alen] = ',';
	memcpy(msg + alen + 1, b, blen);
	msg[alen + 1 + blen] = ',';
	memcpy(msg + alen + 2 + blen, c, clen);
	size_t n = alen + blen + clen + 2;
	return hmac_sha256(key1, PROTO_SCRAM_KEY_LEN, msg, n, out1) &&
	       hmac_sha256(key2, PROTO_SCRAM_KEY_LEN, msg, n, out2);
}

/* why_false: sets *WHY to REASON and returns false, for the readers below. */
static bool why_false(const char **why, const char *reason)
{
	*why = reason;
	return false;
}

/* ---- reading "x=value" attributes -------------------------------------------- */

typedef struct ScramCursor {
	const char *p;
	const char *end;
} ScramCursor;

static bool cursor_at(const ScramCursor *c, char ch) { return c->p < c->end && *c->p == ch; }

/* cursor_comma: consumes one ','; false (nothing consumed) when there is none. */
static bool cursor_comma(ScramCursor *c)
{
	if (!cursor_at(c, ','))
		return false;
	c->p++;
	return true;
}

/*
 * cursor_attr: at "X=value" with X an ASCII letter (and NAME when NAME is not
 * 0): sets *GOT to X and *VAL, *LEN to the value, which runs to the next ','
 * or the end (maybe empty), and moves to that ',' (not past it). False,
 * nothing consumed, otherwise.
 */
static bool cursor_attr(ScramCursor *c, char name, char *got, const char **val, size_t *len)
{
	if (c->end - c->p < 2 || c->p[1] != '=')
		return false;
	char x = c->p[0];
	if (!((x >= 'a' && x <= 'z') || (x >= 'A' && x <= 'Z')) || (name && x != name))
		return false;
	const char *v = c->p + 2;
	const char *comma = memchr(v, ',', (size_t)(c->end - v));
	const char *stop = comma ? comma : c->end;
	*got = x;
	*val = v;
	*len = (size_t)(stop - v);
	c->p = stop;
	return true;
}

static bool cursor_named(ScramCursor *c, char name, const char **val, size_t *len)
{
	char got;
	return cursor_attr(c, name, &got, val, len);
}

/* scram_input_ok: a peer's SCRAM message is 1..PROTO_SCRAM_MSG_MAX bytes
 * with no NUL (PostgreSQL: "malformed SCRAM message (length mismatch)"). */
static bool scram_input_ok(const uint8_t *data, size_t n, const char **why)
{
	if (n == 0) {
		*why = "malformed SCRAM message (empty message)";
		return false;
	}
	if (n > PROTO_SCRAM_MSG_MAX) {
		*why = "malformed SCRAM message (too long)";
		return false;
	}
	if (memchr(data, '\0', n)) {
		*why = "malformed SCRAM message (NUL byte)";
		return false;
	}
	return true;
}

/* ---- verifiers ----------------------------------------------------------------- */

/* secret_read_parts: the four fields of a verifier's text P[0..N) after
 * "SCRAM-SHA-256$": "<iterations>:<salt>$<StoredKey>:<ServerKey>". */
static bool secret_read_parts(const char *p, const char *end, ProtoScramSecret *out)
{
	size_t len;
	const char *colon = memchr(p, ':', (size_t)(end - p));
	if (!colon || !parse_count(p, (size_t)(colon - p), &out->iterations))
		return false;
	p = colon + 1;
	const char *dollar = memchr(p, '$', (size_t)(end - p));
	if (!dollar || !b64_decode(p, (size_t)(dollar - p), out->salt, sizeof(out->salt), &out->salt_len) ||
	    out->salt_len == 0)
		return false;
	p = dollar + 1;
	colon = memchr(p, ':', (size_t)(end - p));
	if (!colon || !b64_decode(p, (size_t)(colon - p), out->stored_key, PROTO_SCRAM_KEY_LEN, &len) ||
	    len != PROTO_SCRAM_KEY_LEN)
		return false;
	p = colon + 1;
	return b64_decode(p, (size_t)(end - p), out->server_key, PROTO_SCRAM_KEY_LEN, &len) &&
	       len == PROTO_SCRAM_KEY_LEN;
}

bool proto_scram_secret_parse(const char *text, ProtoScramSecret *out)
{
	static const char prefix[] = PROTO_SCRAM_SHA_256 "$";
	memset(out, 0, sizeof(*out));
	size_t n = strnlen(text, SCRAM_SECRET_TEXT_MAX + 1);
	if (n > SCRAM_SECRET_TEXT_MAX || strncmp(text, prefix, sizeof(prefix) - 1) != 0 ||
	    !secret_read_parts(text + sizeof(prefix) - 1, text + n, out)) {
		proto_scram_secret_clear(out);
		return false;
	}
	return true;
}

bool proto_scram_secret_make(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
			     ProtoScramSecret *out)
{
	uint8_t client_key[PROTO_SCRAM_KEY_LEN];
	memset(out, 0, sizeof(*out));
	if (salt_len == 0 || salt_len > sizeof(out->salt) || iterations < 1)
		return false;
	bool ok = salted_keys(password, salt, salt_len, iterations, client_key, out->server_key) &&
		  sha256(client_key, sizeof(client_key), out->stored_key);
	OPENSSL_cleanse(client_key, sizeof(client_key));
	if (!ok) {
		proto_scram_secret_clear(out);
		return false;
	}
	out->iterations = iterations;
	memcpy(out->salt, salt, salt_len);
	out->salt_len = salt_len;
	return true;
}

void proto_scram_secret_mock(const uint8_t key[32], const char *user, ProtoScramSecret *out)
{
	/* mac = HMAC(KEY, USER): its head is the salt; the keys are HMAC(KEY,
	 * mac || label), unknown to anyone without KEY. */
	uint8_t mac[PROTO_SCRAM_KEY_LEN + 16];
	memset(out, 0, sizeof(*out));
	out->iterations = PROTO_SCRAM_DEFAULT_ITERATIONS;
	out->salt_len = PROTO_SCRAM_MOCK_SALT_LEN;
	out->mock = true;
	if (!hmac_sha256(key, 32, user, strlen(user), mac))
		return;
	memcpy(mac + PROTO_SCRAM_KEY_LEN, "mock StoredKey\0\0", 16);
	bool ok = hmac_sha256(key, 32, mac, sizeof(mac), out->stored_key);
	memcpy(mac + PROTO_SCRAM_KEY_LEN, "mock ServerKey\0\0", 16);
	ok = ok && hmac_sha256(key, 32, mac, sizeof(mac), out->server_key);
	if (ok) {
		memcpy(out->salt, mac, PROTO_SCRAM_MOCK_SALT_LEN);
	} else {
		memset(out->stored_key, 0, sizeof(out->stored_key));
		memset(out->server_key, 0, sizeof(out->server_key));
	}
	OPENSSL_cleanse(mac, sizeof(mac));
}

void proto_scram_secret_clear(ProtoScramSecret *s) { OPENSSL_cleanse(s, sizeof(*s)); }

/* ---- server side ----------------------------------------------------------------- */

void proto_scram_server_init(ProtoScramServer *st, const ProtoScramSecret *secret, bool mock, const uint8_t *cbind,
			     size_t cbind_len)
{
	memset(st, 0, sizeof(*st));
	st->stage = PROTO_SCRAM_STAGE_FIRST;
	st->secret = *secret;
	st->mock = mock || secret->mock;
	if (cbind && cbind_len > 0 && cbind_len <= sizeof(st->cbind)) {
		memcpy(st->cbind, cbind, cbind_len);
		st->cbind_len = cbind_len;
	}
}

size_t proto_scram_server_mechanisms(const ProtoScramServer *st, const char *out[PROTO_SCRAM_MECHANISMS_MAX])
{
	size_t n = 0;
	if (st->cbind_len > 0)
		out[n++] = PROTO_SCRAM_SHA_256_PLUS;
	out[n++] = PROTO_SCRAM_SHA_256;
	return n;
}

/* server_end: ends the exchange with STATUS (FAIL or BAD), nothing to send. */
static ProtoScramStatus server_end(ProtoScramServer *st, ProtoScramStatus status, const char **why, const char *reason)
{
	st->stage = PROTO_SCRAM_STAGE_END;
	st->msg_len = 0;
	st->msg[0] = '\0';
	OPENSSL_cleanse(st->client_key, sizeof(st->client_key));
	if (reason)
		*why = reason;
	return status;
}

/*
 * server_read_gs2: the gs2 header at C (RFC 5802 section 7: gs2-cbind-flag ","
 * [authzid] ","), checked against the mechanism (PLUS or not) and what we
 * offered, as PostgreSQL's read_client_first_message. Sets st->cbind_flag.
 */
static bool server_read_gs2(ProtoScramServer *st, ScramCursor *c, bool plus, const char **why)
{
	char flag = cursor_at(c, 'n') ? 'n' : cursor_at(c, 'y') ? 'y' : cursor_at(c, 'p') ? 'p' : '\0';
	const char *type;
	size_t len;
	if (flag == 'p') {
		if (!cursor_named(c, 'p', &type, &len))
			return why_false(why, "malformed SCRAM message (channel-binding type)");
		if (len != strlen(PROTO_SCRAM_CBIND_TYPE) || memcmp(type, PROTO_SCRAM_CBIND_TYPE, len) != 0)
			return why_false(why, "unsupported SCRAM channel-binding type");
	} else if (flag) {
		c->p++;
	} else {
		return why_false(why, "malformed SCRAM message (unexpected channel-binding flag)");
	}
	if (!cursor_comma(c))
		return why_false(why, "malformed SCRAM message (gs2 header)");
	if (cursor_at(c, 'a'))
		return why_false(why, "client uses authorization identity, but it is not supported");
	if (!cursor_comma(c))
		return why_false(why, "malformed SCRAM message (gs2 header)");
	if (plus && flag != 'p')
		return why_false(why, "client selected SCRAM-SHA-256-PLUS, but the SCRAM message has no channel-binding data");
	if (!plus && flag == 'p')
		return why_false(why, "client selected SCRAM-SHA-256 without channel binding, but the SCRAM message has "
			      "channel-binding data");
	if (flag == 'y' && st->cbind_len > 0)
		return why_false(why, "SCRAM channel-binding negotiation error: the client supports channel binding but thinks "
			      "the server does not, and this server does (downgrade?)");
	st->cbind_flag = flag;
	return true;
}

/* server_read_first_bare: client-first-message-bare at C: [reserved-mext ","]
 * username "," nonce ["," extensions]; *NONCE, *NONCE_LEN point into it. */
static bool server_read_first_bare(ScramCursor *c, const char **nonce, size_t *nonce_len, const char **why)
{
	const char *user;
	size_t user_len;
	if (cursor_at(c, 'm'))
		return why_false(why, "client requires an unsupported SCRAM extension");
	if (!cursor_named(c, 'n', &user, &user_len) || !cursor_comma(c))
		return why_false(why, "malformed SCRAM message (no user name attribute)");
	if (!cursor_named(c, 'r', nonce, nonce_len))
		return why_false(why, "malformed SCRAM message (no nonce attribute)");
	if (!scram_printable(*nonce, *nonce_len))
		return why_false(why, "malformed SCRAM message (nonce empty or not printable)");
	while (c->p < c->end) {
		char name;
		const char *val;
		size_t len;
		if (!cursor_comma(c) || !cursor_attr(c, 0, &name, &val, &len))
			return why_false(why, "malformed SCRAM message (extension after the nonce)");
	}
	return true;
}

/* server_write_first: server-first-message "r=<c-nonce><s-nonce>,s=<salt>,i=<count>"
 * (RFC 5802 section 7) in st->server_first and st->msg. */
static bool server_write_first(ProtoScramServer *st, const char *cnonce, size_t cnonce_len, const char *snonce,
			       size_t snonce_len)
{
	char salt64[B64_LEN(PROTO_SCRAM_SALT_MAX) + 1];
	b64_encode(st->secret.salt, st->secret.salt_len, salt64);
	int w = snprintf(st->server_first, sizeof(st->server_first), "r=%.*s%s,s=%s,i=%d", (int)cnonce_len, cnonce,
			 snonce, salt64, st->secret.iterations);
	if (w < 0 || (size_t)w >= sizeof(st->server_first))
		return false;
	st->server_first_len = (size_t)w;
	st->nonce_len = cnonce_len + snonce_len;
	memcpy(st->msg, st->server_first, st->server_first_len + 1);
	st->msg_len = st->server_first_len;
	return true;
}

ProtoScramStatus proto_scram_server_first(ProtoScramServer *st, const char *mechanism, const uint8_t *data, size_t n,
					  const char *server_nonce, const char **why)
{
	if (st->stage != PROTO_SCRAM_STAGE_FIRST)
		return server_end(st, PROTO_SCRAM_BAD, why, "SCRAM client-first-message out of turn");
	bool plus = strcmp(mechanism, PROTO_SCRAM_SHA_256_PLUS) == 0;
	if (!(plus && st->cbind_len > 0) && strcmp(mechanism, PROTO_SCRAM_SHA_256) != 0)
		return server_end(st, PROTO_SCRAM_BAD, why, "client selected an invalid SASL authentication mechanism");
	if (!scram_input_ok(data, n, why))
		return server_end(st, PROTO_SCRAM_BAD, why, NULL);
	ScramCursor c = {(const char *)data, (const char *)data + n};
	if (!server_read_gs2(st, &c, plus, why))
		return server_end(st, PROTO_SCRAM_BAD, why, NULL);
	const char *bare = c.p, *cnonce;
	size_t cnonce_len;
	if (!server_read_first_bare(&c, &cnonce, &cnonce_len, why))
		return server_end(st, PROTO_SCRAM_BAD, why, NULL);
	char snonce[PROTO_SCRAM_NONCE_MAX + 1];
	size_t snonce_len;
	if (!make_nonce(server_nonce, snonce, &snonce_len))
		return server_end(st, PROTO_SCRAM_BAD, why, "could not make a SCRAM server nonce");
	st->client_first_bare_len = (size_t)(c.end - bare);
	memcpy(st->client_first_bare, bare, st->client_first_bare_len);
	st->client_first_bare[st->client_first_bare_len] = '\0';
	if (!server_write_first(st, cnonce, cnonce_len, snonce, snonce_len))
		return server_end(st, PROTO_SCRAM_BAD, why, "SCRAM server-first-message too long");
	st->stage = PROTO_SCRAM_STAGE_FINAL;
	return PROTO_SCRAM_CONTINUE;
}

/* server_cbind_ok: the c= value (base64) must be the client's gs2 header,
 * plus our channel-binding data after "p=tls-server-end-point,,". */
static bool server_cbind_ok(const ProtoScramServer *st, const char *val, size_t len)
{
	uint8_t input[sizeof(GS2_PLUS) - 1 + PROTO_SCRAM_CBIND_MAX];
	char want[B64_LEN(sizeof(input)) + 1];
	size_t n;
	if (st->cbind_flag == 'p') {
		memcpy(input, GS2_PLUS, sizeof(GS2_PLUS) - 1);
		memcpy(input + sizeof(GS2_PLUS) - 1, st->cbind, st->cbind_len);
		n = sizeof(GS2_PLUS) - 1 + st->cbind_len;
	} else {
		input[0] = (uint8_t)st->cbind_flag;
		input[1] = input[2] = ',';
		n = 3;
	}
	size_t wlen = b64_encode(input, n, want);
	return len == wlen && memcmp(val, want, len) == 0;
}

/*
 * server_read_final: client-final-message at C: channel-binding "," nonce
 * ["," extensions] "," proof (RFC 5802 section 7). Sets *WITHOUT_PROOF to the
 * length of client-final-message-without-proof and PROOF to the decoded proof.
 */
static bool server_read_final(const ProtoScramServer *st, ScramCursor *c, size_t *without_proof,
			      uint8_t proof[PROTO_SCRAM_KEY_LEN], const char **why)
{
	const char *start = c->p, *val;
	size_t len;
	char name;
	if (!cursor_named(c, 'c', &val, &len) || !cursor_comma(c))
		return why_false(why, "malformed SCRAM message (no channel-binding attribute)");
	if (!server_cbind_ok(st, val, len))
		return why_false(why, "SCRAM channel binding check failed");
	if (!cursor_named(c, 'r', &val, &len))
		return why_false(why, "malformed SCRAM message (no nonce attribute)");
	if (len != st->nonce_len || memcmp(val, st->server_first + 2, len) != 0)
		return why_false(why, "SCRAM nonce mismatch");
	do {
		*without_proof = (size_t)(c->p - start);
		if (!cursor_comma(c))
			return why_false(why, "malformed SCRAM message (no proof)");
		if (!cursor_attr(c, 0, &name, &val, &len))
			return why_false(why, "malformed SCRAM message (attribute expected)");
	} while (name != 'p');
	size_t got;
	if (!b64_decode(val, len, proof, PROTO_SCRAM_KEY_LEN, &got) || got != PROTO_SCRAM_KEY_LEN)
		return why_false(why, "malformed SCRAM message (malformed proof)");
	if (c->p != c->end)
		return why_false(why, "malformed SCRAM message (garbage after the proof)");
	return true;
}

/*
 * server_check_proof: RFC 5802 section 3: ClientSignature = HMAC(StoredKey,
 * AuthMessage), ClientKey = ClientProof XOR ClientSignature, and H(ClientKey)
 * must be StoredKey. The same work is done for a mock secret, which fails.
 */
static ProtoScramStatus server_check_proof(ProtoScramServer *st, const char *final, size_t final_len,
					   const uint8_t proof[PROTO_SCRAM_KEY_LEN], const char **why)
{
	uint8_t client_sig[PROTO_SCRAM_KEY_LEN], server_sig[PROTO_SCRAM_KEY_LEN];
	uint8_t client_key[PROTO_SCRAM_KEY_LEN], stored[PROTO_SCRAM_KEY_LEN];
	bool ok = auth_signatures(st->client_first_bare, st->client_first_bare_len, st->server_first,
				  st->server_first_len, final, final_len, st->secret.stored_key, client_sig,
				  st->secret.server_key, server_sig);
	for (size_t i = 0; i < PROTO_SCRAM_KEY_LEN; i++)
		client_key[i] = proof[i] ^ client_sig[i];
	ok = ok && sha256(client_key, sizeof(client_key), stored);
	bool match = ok && CRYPTO_memcmp(stored, st->secret.stored_key, sizeof(stored)) == 0;
	ProtoScramStatus status;
	if (!ok) {
		status = server_end(st, PROTO_SCRAM_BAD, why, "SCRAM computation failed (libcrypto)");
	} else if (!match || st->mock) {
		status = server_end(st, PROTO_SCRAM_FAIL, why, "SCRAM proof does not match");
	} else {
		memcpy(st->msg, "v=", 2);
		st->msg_len = 2 + b64_encode(server_sig, sizeof(server_sig), st->msg + 2);
		memcpy(st->client_key, client_key, sizeof(client_key));
		st->stage = PROTO_SCRAM_STAGE_END;
		status = PROTO_SCRAM_DONE;
	}
	OPENSSL_cleanse(client_sig, sizeof(client_sig));
	OPENSSL_cleanse(server_sig, sizeof(server_sig));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored, sizeof(stored));
	return status;
}

ProtoScramStatus proto_scram_server_final(ProtoScramServer *st, const uint8_t *data, size_t n, const char **why)
{
	if (st->stage != PROTO_SCRAM_STAGE_FINAL)
		return server_end(st, PROTO_SCRAM_BAD, why, "SCRAM client-final-message out of turn");
	if (!scram_input_ok(data, n, why))
		return server_end(st, PROTO_SCRAM_BAD, why, NULL);
	ScramCursor c = {(const char *)data, (const char *)data + n};
	uint8_t proof[PROTO_SCRAM_KEY_LEN];
	size_t without_proof;
	if (!server_read_final(st, &c, &without_proof, proof, why)) {
		OPENSSL_cleanse(proof, sizeof(proof));
		return server_end(st, PROTO_SCRAM_BAD, why, NULL);
	}
	ProtoScramStatus status = server_check_proof(st, (const char *)data, without_proof, proof, why);
	OPENSSL_cleanse(proof, sizeof(proof));
	return status;
}

void proto_scram_server_clear(ProtoScramServer *st) { OPENSSL_cleanse(st, sizeof(*st)); }

/* ---- client side ----------------------------------------------------------------- */

void proto_scram_client_init_keys(ProtoScramClient *st, const uint8_t client_key[32], const uint8_t server_key[32])
{
	memset(st, 0, sizeof(*st));
	st->stage = PROTO_SCRAM_STAGE_FIRST;
	st->have_keys = true;
	memcpy(st->client_key, client_key, PROTO_SCRAM_KEY_LEN);
	memcpy(st->server_key, server_key, PROTO_SCRAM_KEY_LEN);
}

bool proto_scram_client_init_password(ProtoScramClient *st, const char *password)
{
	memset(st, 0, sizeof(*st));
	size_t n = strnlen(password, PROTO_SCRAM_PASSWORD_MAX + 1);
	if (n > PROTO_SCRAM_PASSWORD_MAX) {
		st->stage = PROTO_SCRAM_STAGE_END;
		return false;
	}
	memcpy(st->password, password, n + 1);
	st->stage = PROTO_SCRAM_STAGE_FIRST;
	return true;
}

bool proto_scram_client_first(ProtoScramClient *st, const char *client_nonce)
{
	char nonce[PROTO_SCRAM_NONCE_MAX + 1];
	size_t len;
	if (st->stage != PROTO_SCRAM_STAGE_FIRST)
		return false;
	st->stage = PROTO_SCRAM_STAGE_END;
	if (!make_nonce(client_nonce, nonce, &len))
		return false;
	/* "n=" + empty user name + ",r=" + nonce: the buffers fit by their sizes. */
	int w = snprintf(st->client_first_bare, sizeof(st->client_first_bare), "n=,r=%s", nonce);
	st->client_first_bare_len = (size_t)w;
	st->client_nonce_len = len;
	w = snprintf(st->msg, sizeof(st->msg), "n,,%s", st->client_first_bare);
	st->msg_len = (size_t)w;
	st->stage = PROTO_SCRAM_STAGE_FINAL;
	return true;
}

/* client_end: ends the exchange with STATUS, nothing to send. */
static ProtoScramStatus client_end(ProtoScramClient *st, ProtoScramStatus status, const char **why, const char *reason)
{
	st->stage = PROTO_SCRAM_STAGE_END;
	st->msg_len = 0;
	st->msg[0] = '\0';
	if (reason)
		*why = reason;
	return status;
}

/* client_read_first: server-first-message at C: nonce "," salt "," count
 * (RFC 5802 section 7; libpq's read_server_first_message refuses more). */
static bool client_read_first(const ProtoScramClient *st, ScramCursor *c, const char **nonce, size_t *nonce_len,
			      uint8_t salt[PROTO_SCRAM_SALT_MAX], size_t *salt_len, int *iterations, const char **why)
{
	const char *val;
	size_t len;
	const char *mine = st->client_first_bare + 5; /* after "n=,r=" */
	if (cursor_at(c, 'm'))
		return why_false(why, "server requires an unsupported SCRAM extension");
	if (!cursor_named(c, 'r', nonce, nonce_len) || !cursor_comma(c))
		return why_false(why, "malformed SCRAM message (no nonce attribute)");
	if (*nonce_len <= st->client_nonce_len || memcmp(*nonce, mine, st->client_nonce_len) != 0 ||
	    !scram_printable(*nonce, *nonce_len))
		return why_false(why, "invalid SCRAM response (nonce mismatch)");
	if (!cursor_named(c, 's', &val, &len) || !cursor_comma(c))
		return why_false(why, "malformed SCRAM message (no salt attribute)");
	if (!b64_decode(val, len, salt, PROTO_SCRAM_SALT_MAX, salt_len) || *salt_len == 0)
		return why_false(why, "malformed SCRAM message (invalid salt)");
	if (!cursor_named(c, 'i', &val, &len) || !parse_count(val, len, iterations))
		return why_false(why, "malformed SCRAM message (invalid iteration count)");
	if (c->p != c->end)
		return why_false(why, "malformed SCRAM message (garbage at end of server-first-message)");
	return true;
}

/* client_write_final: "c=biws,r=<nonce>,p=<proof>" in st->msg, the expected
 * ServerSignature in st->server_signature (RFC 5802 section 3). */
static bool client_write_final(ProtoScramClient *st, const char *server_first, size_t first_len, const char *nonce,
			       size_t nonce_len)
{
	uint8_t stored[PROTO_SCRAM_KEY_LEN], client_sig[PROTO_SCRAM_KEY_LEN], proof[PROTO_SCRAM_KEY_LEN];
	int w = snprintf(st->msg, sizeof(st->msg), "c=biws,r=%.*s", (int)nonce_len, nonce);
	if (w < 0 || (size_t)w + 3 + B64_LEN(PROTO_SCRAM_KEY_LEN) >= sizeof(st->msg))
		return false;
	size_t without_proof = (size_t)w;
	bool ok = sha256(st->client_key, PROTO_SCRAM_KEY_LEN, stored) &&
		  auth_signatures(st->client_first_bare, st->client_first_bare_len, server_first, first_len, st->msg,
				  without_proof, stored, client_sig, st->server_key, st->server_signature);
	for (size_t i = 0; i < PROTO_SCRAM_KEY_LEN; i++)
		proof[i] = st->client_key[i] ^ client_sig[i];
	if (ok) {
		memcpy(st->msg + without_proof, ",p=", 3);
		st->msg_len = without_proof + 3 + b64_encode(proof, sizeof(proof), st->msg + without_proof + 3);
	}
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(client_sig, sizeof(client_sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	return ok;
}

ProtoScramStatus proto_scram_client_final(ProtoScramClient *st, const uint8_t *server_first, size_t n,
					  const char **why)
{
	if (st->stage != PROTO_SCRAM_STAGE_FINAL)
		return client_end(st, PROTO_SCRAM_BAD, why, "SCRAM server-first-message out of turn");
	if (!scram_input_ok(server_first, n, why))
		return client_end(st, PROTO_SCRAM_BAD, why, NULL);
	ScramCursor c = {(const char *)server_first, (const char *)server_first + n};
	const char *nonce;
	size_t nonce_len, salt_len;
	uint8_t salt[PROTO_SCRAM_SALT_MAX];
	int iterations;
	if (!client_read_first(st, &c, &nonce, &nonce_len, salt, &salt_len, &iterations, why))
		return client_end(st, PROTO_SCRAM_BAD, why, NULL);
	if (!st->have_keys) {
		bool ok = salted_keys(st->password, salt, salt_len, iterations, st->client_key, st->server_key);
		OPENSSL_cleanse(st->password, sizeof(st->password));
		if (!ok)
			return client_end(st, PROTO_SCRAM_BAD, why, "SCRAM computation failed (libcrypto)");
		st->have_keys = true;
	}
	if (!client_write_final(st, (const char *)server_first, n, nonce, nonce_len))
		return client_end(st, PROTO_SCRAM_BAD, why, "SCRAM computation failed (libcrypto)");
	st->stage = PROTO_SCRAM_STAGE_VERIFY;
	return PROTO_SCRAM_CONTINUE;
}

ProtoScramStatus proto_scram_client_verify(ProtoScramClient *st, const uint8_t *server_final, size_t n,
					   const char **why)
{
	static const char invalid_proof[] = "invalid-proof";
	if (st->stage != PROTO_SCRAM_STAGE_VERIFY)
		return client_end(st, PROTO_SCRAM_BAD, why, "SCRAM server-final-message out of turn");
	if (!scram_input_ok(server_final, n, why))
		return client_end(st, PROTO_SCRAM_BAD, why, NULL);
	ScramCursor c = {(const char *)server_final, (const char *)server_final + n};
	const char *val;
	size_t len;
	uint8_t sig[PROTO_SCRAM_KEY_LEN];
	if (cursor_named(&c, 'e', &val, &len)) {
		if (len == sizeof(invalid_proof) - 1 && memcmp(val, invalid_proof, len) == 0)
			return client_end(st, PROTO_SCRAM_FAIL, why, "server says the SCRAM proof is invalid");
		return client_end(st, PROTO_SCRAM_BAD, why, "server reports a SCRAM error");
	}
	if (!cursor_named(&c, 'v', &val, &len) || c.p != c.end || !b64_decode(val, len, sig, sizeof(sig), &len) ||
	    len != sizeof(sig))
		return client_end(st, PROTO_SCRAM_BAD, why, "malformed SCRAM message (server-final-message)");
	bool match = CRYPTO_memcmp(sig, st->server_signature, sizeof(sig)) == 0;
	OPENSSL_cleanse(sig, sizeof(sig));
	if (!match)
		return client_end(st, PROTO_SCRAM_BAD, why, "invalid SCRAM server signature");
	st->stage = PROTO_SCRAM_STAGE_END;
	st->msg_len = 0;
	st->msg[0] = '\0';
	return PROTO_SCRAM_DONE;
}

void proto_scram_client_clear(ProtoScramClient *st) { OPENSSL_cleanse(st, sizeof(*st)); }

/* ---- channel binding ----------------------------------------------------------- */

bool proto_tls_server_end_point(const X509 *cert, uint8_t *out, size_t *out_len)
{
	int md_nid = NID_undef;
	/* X509_get_signature_info takes a non-const X509 because it caches the
	 * decoded extensions inside it; nothing the caller sees changes. It knows
	 * RSA-PSS's hash from the parameters, which OBJ_find_sigid_algs does not. */
	if (X509_get_signature_info((X509 *)cert, &md_nid, NULL, NULL, NULL) != 1)
		return false;
	if (md_nid == NID_md5 || md_nid == NID_sha1)
		md_nid = NID_sha256; /* RFC 5929 section 4.1 */
	const EVP_MD *md = md_nid == NID_undef ? NULL : EVP_get_digestbynid(md_nid);
	unsigned int len = 0;
	if (!md || X509_digest(cert, md, out, &len) != 1 || len == 0 || len > EVP_MAX_MD_SIZE)
		return false;
	*out_len = len;
	return true;
}

/* ---- md5 ----------------------------------------------------------------------- */

/* md5_hex: hex(md5(A || B)) in lower case, 32 characters and a NUL, in OUT. */
static bool md5_hex(const void *a, size_t alen, const void *b, size_t blen, char out[33])
{
	static const char digits[] = "0123456789abcdef";
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1 &&
		  EVP_DigestUpdate(ctx, b, blen) == 1 && EVP_DigestFinal_ex(ctx, d, &len) == 1 && len == 16;
	EVP_MD_CTX_free(ctx);
	if (ok) {
		for (size_t i = 0; i < 16; i++) {
			out[2 * i] = digits[d[i] >> 4];
			out[2 * i + 1] = digits[d[i] & 15];
		}
		out[32] = '\0';
	}
	OPENSSL_cleanse(d, sizeof(d));
	return ok;
}

bool proto_md5_secret(const char *user, const char *password, char out[PROTO_MD5_SECRET_SIZE])
{
	memcpy(out, "md5", 3);
	if (md5_hex(password, strlen(password), user, strlen(user), out + 3))
		return true;
	out[0] = '\0';
	return false;
}

/* is_md5_hash: PostgreSQL's test for a stored md5 password (get_password_type):
 * "md5" and 32 lower-case hex digits, nothing else. */
static bool is_md5_hash(const char *s)
{
	return strncmp(s, "md5", 3) == 0 && strlen(s) == PROTO_MD5_SECRET_LEN &&
	       strspn(s + 3, "0123456789abcdef") == PROTO_MD5_SECRET_LEN - 3;
}

bool proto_md5_check(const char *secret, const char *user, const uint8_t salt[4], const char *response)
{
	static const char scram_prefix[] = PROTO_SCRAM_SHA_256 "$";
	char hash[PROTO_MD5_SECRET_SIZE], want[PROTO_MD5_SECRET_SIZE];
	if (strncmp(secret, scram_prefix, sizeof(scram_prefix) - 1) == 0)
		return false;
	if (is_md5_hash(secret))
		memcpy(hash, secret, PROTO_MD5_SECRET_SIZE);
	else if (!proto_md5_secret(user, secret, hash))
		return false;
	memcpy(want, "md5", 3);
	bool ok = md5_hex(hash + 3, 32, salt, 4, want + 3);
	bool match = ok && strnlen(response, PROTO_MD5_SECRET_SIZE) == PROTO_MD5_SECRET_LEN &&
		     CRYPTO_memcmp(want, response, PROTO_MD5_SECRET_LEN) == 0;
	OPENSSL_cleanse(hash, sizeof(hash));
	OPENSSL_cleanse(want, sizeof(want));
	return match;
}
