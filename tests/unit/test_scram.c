/*
 * tests/unit/test_scram.c: unit tests for protocol/scram.c (SCRAM-SHA-256
 * both sides, tls-server-end-point, md5) and the authentication messages of
 * build.c and parse.c.
 *
 * Where the expected values come from, so that the module is never checked
 * only against itself:
 *   - RFC 7677 section 3's example (user "user", password "pencil"): proof
 *     and server signature as printed in the RFC;
 *   - verifiers made by a real PostgreSQL 15 (`SET password_encryption =
 *     'scram-sha-256'; CREATE ROLE x PASSWORD 'secret'`, then `SELECT
 *     rolpassword FROM pg_authid`), on a throwaway server from tests/lib/pg.sh;
 *   - every other literal (keys, proofs and signatures of variants of the
 *     RFC exchange, md5 values, a mock salt) computed with python3's hashlib
 *     and hmac modules (pbkdf2_hmac, sha256, md5), as each comment says.
 * Where a test needs a valid message that no literal covers (an extension, a
 * flag), test_proof() computes the proof with libcrypto's HMAC and SHA-256
 * directly; test_proof itself is checked against the RFC's proof first.
 *
 * Every buffer handed to the module is an exact heap copy, so that
 * AddressSanitizer catches a read one past its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "protocol/protocol.h"
#include "protocol/scram.h"

/* ---- the RFC 7677 example ------------------------------------------------- */

#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_NONCE RFC_CNONCE RFC_SNONCE
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CLIENT_FIRST "n,,n=user,r=" RFC_CNONCE
#define RFC_SERVER_FIRST "r=" RFC_NONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CLIENT_FINAL "c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The verifier of "pencil" with the RFC's salt and count. python3:
 *   sp = hashlib.pbkdf2_hmac('sha256', b'pencil', b64decode(RFC_SALT), 4096)
 *   ck = hmac.new(sp, b'Client Key', 'sha256').digest()
 *   StoredKey = sha256(ck), ServerKey = hmac.new(sp, b'Server Key', 'sha256') */
#define RFC_VERIFIER                                                                                                   \
	"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"                                \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
/* ck and ServerKey of the same computation, in hex. */
static const char rfc_client_key_hex[] = "a60fc923d67e8644a92d16b96eda5ef4656b0c725c484374be25535576996e8b";
static const char rfc_server_key_hex[] = "c1f3cbc1c13a9d35a14c0990eed97629ea225863e566a4314ab99f3f00e5d9d5";

/* The RFC exchange as our client sends it (empty user name, as libpq):
 * client-first-bare "n=,r=" RFC_CNONCE. python3, with the keys above:
 *   am = bare + ',' + RFC_SERVER_FIRST + ',' + 'c=biws,r=' + RFC_NONCE
 *   proof = ck XOR hmac(StoredKey, am); signature = hmac(ServerKey, am) */
#define EMPTY_USER_CLIENT_FINAL "c=biws,r=" RFC_NONCE ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k="
#define EMPTY_USER_SERVER_FINAL "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="

/* The same with channel binding: gs2 header "p=tls-server-end-point,,", the
 * channel-binding data the 32 bytes 0x00..0x1f; c= is base64(header + data),
 * proof and signature as above (python3). */
#define PLUS_CLIENT_FIRST "p=tls-server-end-point,,n=,r=" RFC_CNONCE
#define PLUS_C "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define PLUS_CLIENT_FINAL PLUS_C ",r=" RFC_NONCE ",p=Q8h71kjaoMzNI7dPksDrhRE/5mTUObF0fUHVIgBOWQg="
#define PLUS_SERVER_FINAL "v=ykwoqH8mLqO5AQCeuwwf6lsj9f8zyJZT/CcvAbN4Ssc="

/* Verifiers made by PostgreSQL 15 (see the file comment): role x with
 * password "secret"; role y with E'I\u00ADX' (a soft hyphen, which SASLprep
 * maps to nothing); role z with E'caf\u00e9' (NFC, which SASLprep keeps). */
#define PG_VERIFIER_SECRET                                                                                             \
	"SCRAM-SHA-256$4096:AmWTz2/Rk8b68uKJuZh/qw==$JPDOa2OMMvJtYu86h2YqB9LcDQi9Yb+3bFtN+SecZXk=:"                    \
	"Bur0RCZyo1anQgV/FNlln9pMhLLDC0F9L2UWc6eNZr4="
#define PG_VERIFIER_SOFT_HYPHEN                                                                                        \
	"SCRAM-SHA-256$4096:IGx9pazXJhA8e23R395ZMQ==$F5UIZL12NFtZzoOLYkkbCzlXR+OA6QnnNspIuyPWNMg=:"                    \
	"nt0pDSsnz+tSr0bWmBWSV2uHvGipujf3eXaRnb0KAd0="
#define PG_VERIFIER_CAFE                                                                                               \
	"SCRAM-SHA-256$4096:ihsHfZhSa0w5RvfQW7Q4Jg==$LgBg5x5+O9gJnVQc3kIEKif12smxpI8jmNnEQh4nOck=:"                    \
	"PhYjY0xQ02R2mXVFal73AjWrm89pCv8sdjnNNJaeKBM="

/* ---- helpers ---------------------------------------------------------------- */

static uint8_t *heap_copy(const void *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	assert_non_null(c);
	if (n)
		memcpy(c, p, n);
	return c;
}

static void hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void b64(const uint8_t *in, size_t n, char *out) { EVP_EncodeBlock((unsigned char *)out, in, (int)n); }

static ProtoScramSecret secret_of(const char *text)
{
	ProtoScramSecret s;
	assert_true(proto_scram_secret_parse(text, &s));
	return s;
}

/* The module's calls on exact heap copies of MSG (its bytes, no NUL). */
static ProtoScramStatus srv_first(ProtoScramServer *st, const char *mech, const char *msg, const char *snonce,
				  const char **why)
{
	size_t n = strlen(msg);
	uint8_t *copy = heap_copy(msg, n);
	*why = NULL;
	ProtoScramStatus s = proto_scram_server_first(st, mech, copy, n, snonce, why);
	free(copy);
	return s;
}

static ProtoScramStatus srv_final(ProtoScramServer *st, const char *msg, const char **why)
{
	size_t n = strlen(msg);
	uint8_t *copy = heap_copy(msg, n);
	*why = NULL;
	ProtoScramStatus s = proto_scram_server_final(st, copy, n, why);
	free(copy);
	return s;
}

static ProtoScramStatus cli_final(ProtoScramClient *st, const char *msg, const char **why)
{
	size_t n = strlen(msg);
	uint8_t *copy = heap_copy(msg, n);
	*why = NULL;
	ProtoScramStatus s = proto_scram_client_final(st, copy, n, why);
	free(copy);
	return s;
}

static ProtoScramStatus cli_verify(ProtoScramClient *st, const char *msg, const char **why)
{
	size_t n = strlen(msg);
	uint8_t *copy = heap_copy(msg, n);
	*why = NULL;
	ProtoScramStatus s = proto_scram_client_verify(st, copy, n, why);
	free(copy);
	return s;
}

/* Asserts a BAD with a non-empty reason in *WHY (a pointer, as the call that
 * sets it is the other argument, evaluated in no set order). */
static void assert_bad(ProtoScramStatus s, const char *const *why)
{
	assert_int_equal(s, PROTO_SCRAM_BAD);
	assert_non_null(*why);
	assert_true((*why)[0] != '\0');
}

/*
 * test_proof: "p=<base64 proof>" for AuthMessage BARE "," SERVER_FIRST ","
 * WITHOUT_PROOF with ClientKey CK (RFC 5802 section 3), computed here with
 * libcrypto directly, into OUT (at least 48 bytes).
 */
static void test_proof(const uint8_t ck[32], const char *bare, const char *server_first, const char *without_proof,
		       char *out)
{
	char am[8192];
	uint8_t stored[32], sig[32], proof[32];
	unsigned int len;
	int w = snprintf(am, sizeof(am), "%s,%s,%s", bare, server_first, without_proof);
	assert_true(w > 0 && (size_t)w < sizeof(am));
	assert_int_equal(EVP_Digest(ck, 32, stored, &len, EVP_sha256(), NULL), 1);
	assert_non_null(HMAC(EVP_sha256(), stored, 32, (const uint8_t *)am, (size_t)w, sig, &len));
	for (int i = 0; i < 32; i++)
		proof[i] = ck[i] ^ sig[i];
	memcpy(out, "p=", 2);
	b64(proof, 32, out + 2);
}

static void rfc_client_key(uint8_t ck[32]) { hex_to_bytes(rfc_client_key_hex, ck, 32); }

/* A server against the RFC verifier (with CBIND, maybe NULL), after a
 * CONTINUE on CLIENT_FIRST with mechanism MECH and the RFC's server nonce. */
static void server_after_first(ProtoScramServer *st, const char *mech, const char *client_first,
			       const uint8_t *cbind, size_t cbind_len)
{
	ProtoScramSecret s = secret_of(RFC_VERIFIER);
	const char *why;
	proto_scram_server_init(st, &s, false, cbind, cbind_len);
	assert_int_equal(srv_first(st, mech, client_first, RFC_SNONCE, &why), PROTO_SCRAM_CONTINUE);
	assert_string_equal(st->msg, RFC_SERVER_FIRST);
}

static const uint8_t cbind_data[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
				       16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

/* ---- verifiers ------------------------------------------------------------- */

static void test_secret_parse_rfc_verifier(void **state)
{
	ProtoScramSecret s = secret_of(RFC_VERIFIER);
	uint8_t server_key[32];
	const uint8_t salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
				  0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81}; /* base64 -d of RFC_SALT */
	hex_to_bytes(rfc_server_key_hex, server_key, 32);
	assert_int_equal(s.iterations, 4096);
	assert_int_equal(s.salt_len, 16);
	assert_memory_equal(s.salt, salt, 16);
	assert_memory_equal(s.server_key, server_key, 32);
	assert_false(s.mock);
}

static void test_secret_make_equals_rfc_verifier(void **state)
{
	ProtoScramSecret want = secret_of(RFC_VERIFIER), got;
	assert_true(proto_scram_secret_make("pencil", want.salt, want.salt_len, 4096, &got));
	assert_int_equal(got.iterations, 4096);
	assert_int_equal(got.salt_len, want.salt_len);
	assert_memory_equal(got.salt, want.salt, want.salt_len);
	assert_memory_equal(got.stored_key, want.stored_key, 32);
	assert_memory_equal(got.server_key, want.server_key, 32);
	assert_false(got.mock);
}

/* PostgreSQL's verifier of "secret" and ours from the same salt agree. */
static void test_secret_postgres_verifier(void **state)
{
	ProtoScramSecret pg = secret_of(PG_VERIFIER_SECRET), ours;
	assert_int_equal(pg.iterations, 4096);
	assert_int_equal(pg.salt_len, 16);
	assert_true(proto_scram_secret_make("secret", pg.salt, pg.salt_len, pg.iterations, &ours));
	assert_memory_equal(ours.stored_key, pg.stored_key, 32);
	assert_memory_equal(ours.server_key, pg.server_key, 32);
	assert_true(proto_scram_secret_make("Secret", pg.salt, pg.salt_len, pg.iterations, &ours));
	assert_memory_not_equal(ours.stored_key, pg.stored_key, 32);
}

/* The documented SASLprep gap: PostgreSQL stored "I<soft hyphen>X" as "IX";
 * our raw bytes differ. Already-normalized UTF-8 ("café" in NFC) agrees. */
static void test_secret_make_no_saslprep(void **state)
{
	ProtoScramSecret pg = secret_of(PG_VERIFIER_SOFT_HYPHEN), ours;
	assert_true(proto_scram_secret_make("I\xC2\xADX", pg.salt, pg.salt_len, pg.iterations, &ours));
	assert_memory_not_equal(ours.stored_key, pg.stored_key, 32);
	assert_true(proto_scram_secret_make("IX", pg.salt, pg.salt_len, pg.iterations, &ours));
	assert_memory_equal(ours.stored_key, pg.stored_key, 32);
	pg = secret_of(PG_VERIFIER_CAFE);
	assert_true(proto_scram_secret_make("caf\xC3\xA9", pg.salt, pg.salt_len, pg.iterations, &ours));
	assert_memory_equal(ours.stored_key, pg.stored_key, 32);
	assert_memory_equal(ours.server_key, pg.server_key, 32);
}

static void test_secret_parse_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"SCRAM-SHA-256",
		"SCRAM-SHA-1$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"scram-sha-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		/* iterations: zero, negative, signed, not a number, over INT_MAX, empty */
		"SCRAM-SHA-256$0:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$-1:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$+4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096x:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$2147483648:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		/* salt: empty, missing padding, a bad character, '=' inside */
		"SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6g*==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22Z=J0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		/* not canonical: the bits the padding leaves unused are not zero */
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gR==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qZ=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		/* keys: 31 bytes, 33 bytes, one missing, whitespace, trailing text */
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4g==:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dXX",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU= ",
		"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=$x",
		/* an md5 password is not a SCRAM verifier */
		"md5b52328d7451bfeace80c4b8c338106f9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ProtoScramSecret s, zero;
		memset(&s, 0xA5, sizeof(s));
		memset(&zero, 0, sizeof(zero));
		if (proto_scram_secret_parse(bad[i], &s))
			fail_msg("accepted: %s", bad[i]);
		assert_memory_equal(&s, &zero, sizeof(s)); /* nothing half-filled is left */
	}
}

/* The largest salt (64 bytes) parses; 65 bytes and a text over 512 bytes do not. */
static void test_secret_parse_salt_bounds(void **state)
{
	uint8_t salt[65];
	char salt64[100], text[1024];
	ProtoScramSecret s;
	memset(salt, 7, sizeof(salt));
	b64(salt, 64, salt64);
	snprintf(text, sizeof(text), "SCRAM-SHA-256$1:%s$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		 "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", salt64);
	assert_true(proto_scram_secret_parse(text, &s));
	assert_int_equal(s.salt_len, 64);
	assert_int_equal(s.iterations, 1);
	b64(salt, 65, salt64);
	snprintf(text, sizeof(text), "SCRAM-SHA-256$1:%s$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		 "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=", salt64);
	assert_false(proto_scram_secret_parse(text, &s));
	/* 2147483647 iterations is the largest count */
	assert_true(proto_scram_secret_parse("SCRAM-SHA-256$2147483647:" RFC_SALT
					     "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
					     "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
					     &s));
	assert_int_equal(s.iterations, 2147483647);
	memset(text, 'A', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	memcpy(text, "SCRAM-SHA-256$", 14);
	assert_false(proto_scram_secret_parse(text, &s));
}

static void test_secret_make_bad_arguments(void **state)
{
	uint8_t salt[65] = {1};
	ProtoScramSecret s;
	assert_false(proto_scram_secret_make("pencil", salt, 0, 4096, &s));
	assert_false(proto_scram_secret_make("pencil", salt, 65, 4096, &s));
	assert_false(proto_scram_secret_make("pencil", salt, 16, 0, &s));
	assert_false(proto_scram_secret_make("pencil", salt, 16, -5, &s));
	assert_true(proto_scram_secret_make("", salt, 16, 1, &s)); /* an empty password is still a password */
}

/* ---- mock verifiers -------------------------------------------------------- */

static void test_mock_salt_stable_per_user(void **state)
{
	uint8_t key[32], other_key[32];
	ProtoScramSecret a1, a2, b, a_other;
	memset(key, 0x42, sizeof(key));
	memset(other_key, 0x43, sizeof(other_key));
	proto_scram_secret_mock(key, "alice", &a1);
	proto_scram_secret_mock(key, "alice", &a2);
	proto_scram_secret_mock(key, "bob", &b);
	proto_scram_secret_mock(other_key, "alice", &a_other);
	assert_true(a1.mock);
	assert_int_equal(a1.iterations, 4096);
	assert_int_equal(a1.salt_len, 16); /* as long as PostgreSQL's salts */
	assert_memory_equal(&a1, &a2, sizeof(a1));
	assert_memory_not_equal(a1.salt, b.salt, 16);
	assert_memory_not_equal(a1.salt, a_other.salt, 16);
	/* python3: base64(hmac.new(b'\x42' * 32, b'alice', 'sha256').digest()[:16]) */
	char salt64[32];
	b64(a1.salt, a1.salt_len, salt64);
	assert_string_equal(salt64, "ch6VvL7L4Aa0fpfMxo2W5Q==");
}

/* A mock exchange looks like a real one up to the end, and fails whatever the
 * client sends: here a client that knows the "real" password. */
static void test_mock_secret_fails(void **state)
{
	uint8_t key[32];
	ProtoScramSecret mock;
	ProtoScramServer st;
	ProtoScramClient cl;
	const char *why;
	memset(key, 0x42, sizeof(key));
	proto_scram_secret_mock(key, "alice", &mock);
	proto_scram_server_init(&st, &mock, false, NULL, 0); /* mock comes from the secret */
	assert_true(proto_scram_client_init_password(&cl, "pencil"));
	assert_true(proto_scram_client_first(&cl, RFC_CNONCE));
	assert_int_equal(srv_first(&st, "SCRAM-SHA-256", cl.msg, RFC_SNONCE, &why), PROTO_SCRAM_CONTINUE);
	assert_string_equal(st.msg, "r=" RFC_NONCE ",s=ch6VvL7L4Aa0fpfMxo2W5Q==,i=4096");
	assert_int_equal(cli_final(&cl, st.msg, &why), PROTO_SCRAM_CONTINUE);
	assert_int_equal(srv_final(&st, cl.msg, &why), PROTO_SCRAM_FAIL);
	assert_int_equal(st.msg_len, 0);
	proto_scram_server_clear(&st);
	proto_scram_client_clear(&cl);
}

/* MOCK on a real secret: the right proof still fails, and no key leaks. */
static void test_mock_flag_fails_right_proof(void **state)
{
	ProtoScramSecret s = secret_of(RFC_VERIFIER);
	ProtoScramServer st;
	const char *why;
	uint8_t zero[32] = {0};
	proto_scram_server_init(&st, &s, true, NULL, 0);
	assert_int_equal(srv_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, RFC_SNONCE, &why), PROTO_SCRAM_CONTINUE);
	assert_string_equal(st.msg, RFC_SERVER_FIRST);
	assert_int_equal(srv_final(&st, RFC_CLIENT_FINAL, &why), PROTO_SCRAM_FAIL);
	assert_memory_equal(st.client_key, zero, 32);
	assert_int_equal(st.msg_len, 0);
	/* malformed input is BAD for a mock as for a real secret */
	proto_scram_server_init(&st, &s, true, NULL, 0);
	assert_bad(srv_first(&st, "SCRAM-SHA-256", "n,,n=,r=", RFC_SNONCE, &why), &why);
}

/* ---- the RFC 7677 exchange ------------------------------------------------- */

static void test_server_rfc7677(void **state)
{
	ProtoScramServer st;
	const char *why;
	uint8_t ck[32];
	server_after_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, NULL, 0);
	assert_int_equal(st.msg_len, strlen(RFC_SERVER_FIRST));
	assert_int_equal(srv_final(&st, RFC_CLIENT_FINAL, &why), PROTO_SCRAM_DONE);
	assert_string_equal(st.msg, RFC_SERVER_FINAL);
	assert_int_equal(st.msg_len, strlen(RFC_SERVER_FINAL));
	rfc_client_key(ck);
	assert_memory_equal(st.client_key, ck, 32);
	proto_scram_server_clear(&st);
	uint8_t zero[sizeof(st)];
	memset(zero, 0, sizeof(zero));
	assert_memory_equal(&st, zero, sizeof(st));
}

/* test_proof reproduces the RFC's proof, so it can be trusted below. */
static void test_helper_proof_matches_rfc(void **state)
{
	uint8_t ck[32];
	char proof[64];
	rfc_client_key(ck);
	test_proof(ck, "n=user,r=" RFC_CNONCE, RFC_SERVER_FIRST, "c=biws,r=" RFC_NONCE, proof);
	assert_string_equal(proof, "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
}

static void test_client_rfc7677_password(void **state)
{
	ProtoScramClient cl;
	const char *why;
	assert_true(proto_scram_client_init_password(&cl, "pencil"));
	assert_true(proto_scram_client_first(&cl, RFC_CNONCE));
	assert_string_equal(cl.msg, "n,,n=,r=" RFC_CNONCE);
	assert_int_equal(cl.msg_len, strlen("n,,n=,r=" RFC_CNONCE));
	assert_int_equal(cli_final(&cl, RFC_SERVER_FIRST, &why), PROTO_SCRAM_CONTINUE);
	assert_string_equal(cl.msg, EMPTY_USER_CLIENT_FINAL);
	assert_int_equal(cli_verify(&cl, EMPTY_USER_SERVER_FINAL, &why), PROTO_SCRAM_DONE);
	proto_scram_client_clear(&cl);
}

static void test_client_rfc7677_keys(void **state)
{
	ProtoScramClient cl;
	const char *why;
	uint8_t ck[32], sk[32];
	rfc_client_key(ck);
	hex_to_bytes(rfc_server_key_hex, sk, 32);
	proto_scram_client_init_keys(&cl, ck, sk);
	assert_true(proto_scram_client_first(&cl, RFC_CNONCE));
	assert_int_equal(cli_final(&cl, RFC_SERVER_FIRST, &why), PROTO_SCRAM_CONTINUE);
	assert_string_equal(cl.msg, EMPTY_USER_CLIENT_FINAL);
	assert_int_equal(cli_verify(&cl, EMPTY_USER_SERVER_FINAL, &why), PROTO_SCRAM_DONE);
}

/* Our server accepts what our client sends (empty user name), with the
 * signature python computed. */
static void test_server_empty_user_name(void **state)
{
	ProtoScramServer st;
	const char *why;
	server_after_first(&st, "SCRAM-SHA-256", "n,,n=,r=" RFC_CNONCE, NULL, 0);
	assert_int_equal(srv_final(&st, EMPTY_USER_CLIENT_FINAL, &why), PROTO_SCRAM_DONE);
	assert_string_equal(st.msg, EMPTY_USER_SERVER_FINAL);
}

/* ---- our client against our server ------------------------------------------ */

/* One whole exchange with random nonces; returns the server's verdict and
 * leaves the server state in *ST for the caller to inspect. */
static ProtoScramStatus exchange(ProtoScramClient *cl, ProtoScramServer *st, const ProtoScramSecret *secret)
{
	const char *why;
	proto_scram_server_init(st, secret, false, NULL, 0);
	assert_true(proto_scram_client_first(cl, NULL));
	assert_int_equal(srv_first(st, "SCRAM-SHA-256", cl->msg, NULL, &why), PROTO_SCRAM_CONTINUE);
	assert_int_equal(cli_final(cl, st->msg, &why), PROTO_SCRAM_CONTINUE);
	ProtoScramStatus s = srv_final(st, cl->msg, &why);
	if (s == PROTO_SCRAM_DONE)
		assert_int_equal(cli_verify(cl, st->msg, &why), PROTO_SCRAM_DONE);
	return s;
}

/* A client proves "secret" against PostgreSQL's verifier; the ClientKey the
 * server recovers logs in to an "upstream" with the same verifier (the
 * passthrough PgBouncer does), and the upstream's signature checks out. */
static void test_passthrough_with_recovered_keys(void **state)
{
	ProtoScramSecret pg = secret_of(PG_VERIFIER_SECRET);
	ProtoScramClient app, proxy;
	ProtoScramServer front, upstream;
	assert_true(proto_scram_client_init_password(&app, "secret"));
	assert_int_equal(exchange(&app, &front, &pg), PROTO_SCRAM_DONE);
	proto_scram_client_init_keys(&proxy, front.client_key, pg.server_key);
	assert_int_equal(exchange(&proxy, &upstream, &pg), PROTO_SCRAM_DONE);
	assert_memory_equal(upstream.client_key, front.client_key, 32);
	/* random nonces: the two exchanges differ */
	assert_memory_not_equal(front.server_first, upstream.server_first, 40);
	/* against another verifier of the same password (other salt) the keys
	 * do not work: the upstream must hold the same verifier */
	ProtoScramSecret other;
	const uint8_t salt[16] = {9, 9, 9};
	assert_true(proto_scram_secret_make("secret", salt, sizeof(salt), 4096, &other));
	proto_scram_client_init_keys(&proxy, front.client_key, pg.server_key);
	assert_int_equal(exchange(&proxy, &upstream, &other), PROTO_SCRAM_FAIL);
	proto_scram_server_clear(&front);
	proto_scram_server_clear(&upstream);
	proto_scram_client_clear(&app);
	proto_scram_client_clear(&proxy);
}

static void test_wrong_password_fails(void **state)
{
	ProtoScramSecret pg = secret_of(PG_VERIFIER_SECRET);
	ProtoScramClient cl;
	ProtoScramServer st;
	uint8_t zero[32] = {0};
	const char *why;
	assert_true(proto_scram_client_init_password(&cl, "secreT"));
	assert_int_equal(exchange(&cl, &st, &pg), PROTO_SCRAM_FAIL);
	assert_int_equal(st.msg_len, 0);
	assert_string_equal(st.msg, "");
	assert_memory_equal(st.client_key, zero, 32);
	/* the exchange is over */
	assert_bad(srv_final(&st, cl.msg, &why), &why);
}

/* A server that signs with the wrong ServerKey is not trusted. */
static void test_client_wrong_server_signature_bad(void **state)
{
	ProtoScramSecret pg = secret_of(PG_VERIFIER_SECRET);
	ProtoScramClient cl;
	ProtoScramServer st;
	const char *why;
	assert_true(proto_scram_client_init_password(&cl, "secret"));
	proto_scram_server_init(&st, &pg, false, NULL, 0);
	assert_true(proto_scram_client_first(&cl, NULL));
	assert_int_equal(srv_first(&st, "SCRAM-SHA-256", cl.msg, NULL, &why), PROTO_SCRAM_CONTINUE);
	assert_int_equal(cli_final(&cl, st.msg, &why), PROTO_SCRAM_CONTINUE);
	st.secret.server_key[0] ^= 1; /* an impostor that knows StoredKey only */
	assert_int_equal(srv_final(&st, cl.msg, &why), PROTO_SCRAM_DONE);
	assert_bad(cli_verify(&cl, st.msg, &why), &why);
}

static void test_client_verify_messages(void **state)
{
	static const struct {
		const char *msg;
		ProtoScramStatus want;
	} cases[] = {
		{EMPTY_USER_SERVER_FINAL, PROTO_SCRAM_DONE},
		{"e=invalid-proof", PROTO_SCRAM_FAIL},
		{"e=other-error", PROTO_SCRAM_BAD},
		{"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOh=", PROTO_SCRAM_BAD}, /* not canonical */
		{"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOk=", PROTO_SCRAM_BAD}, /* one bit differs */
		{"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg", PROTO_SCRAM_BAD},  /* no padding */
		{"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBt", PROTO_SCRAM_BAD},
		{EMPTY_USER_SERVER_FINAL ",x=1", PROTO_SCRAM_BAD},
		{"x" EMPTY_USER_SERVER_FINAL, PROTO_SCRAM_BAD},
		{"v=", PROTO_SCRAM_BAD},
		{"", PROTO_SCRAM_BAD},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ProtoScramClient cl;
		const char *why = NULL;
		assert_true(proto_scram_client_init_password(&cl, "pencil"));
		assert_true(proto_scram_client_first(&cl, RFC_CNONCE));
		assert_int_equal(cli_final(&cl, RFC_SERVER_FIRST, &why), PROTO_SCRAM_CONTINUE);
		ProtoScramStatus s = cli_verify(&cl, cases[i].msg, &why);
		if (s != cases[i].want)
			fail_msg("\"%s\": status %d, want %d", cases[i].msg, (int)s, (int)cases[i].want);
		if (s != PROTO_SCRAM_DONE)
			assert_non_null(why);
		/* the exchange is over whatever happened */
		assert_bad(cli_verify(&cl, EMPTY_USER_SERVER_FINAL, &why), &why);
	}
}

static void test_client_server_first_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"r=" RFC_NONCE,                                       /* no salt */
		"r=" RFC_NONCE ",s=" RFC_SALT,                        /* no count */
		"r=" RFC_NONCE ",s=" RFC_SALT ",i=0",
		"r=" RFC_NONCE ",s=" RFC_SALT ",i=-1",
		"r=" RFC_NONCE ",s=" RFC_SALT ",i=4096x",
		"r=" RFC_NONCE ",s=" RFC_SALT ",i=99999999999",
		"r=" RFC_NONCE ",s=" RFC_SALT ",i=4096,x=1",         /* libpq refuses trailing attributes */
		"r=" RFC_NONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096",    /* unpadded */
		"r=" RFC_NONCE ",s=,i=4096",                          /* empty salt */
		"r=" RFC_CNONCE ",s=" RFC_SALT ",i=4096",             /* no server part */
		"r=XOprNGfwEbeRWgbNEkqOabc,s=" RFC_SALT ",i=4096",    /* not our nonce */
		"r=rOprNGfwEbeRWgbNEkq,s=" RFC_SALT ",i=4096",        /* shorter than ours */
		"r=" RFC_CNONCE "\x7f,s=" RFC_SALT ",i=4096",         /* not printable */
		"m=ext,r=" RFC_NONCE ",s=" RFC_SALT ",i=4096",
		"s=" RFC_SALT ",r=" RFC_NONCE ",i=4096",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ProtoScramClient cl;
		const char *why = NULL;
		assert_true(proto_scram_client_init_password(&cl, "pencil"));
		assert_true(proto_scram_client_first(&cl, RFC_CNONCE));
		ProtoScramStatus s = cli_final(&cl, bad[i], &why);
		if (s != PROTO_SCRAM_BAD)
			fail_msg("accepted server-first \"%s\"", bad[i]);
		assert_non_null(why);
		assert_int_equal(cl.msg_len, 0);
	}
	/* a NUL inside, and a message over PROTO_SCRAM_MSG_MAX */
	ProtoScramClient cl;
	const char *why;
	uint8_t withnul[] = "r=" RFC_NONCE ",s=" RFC_SALT ",i=4096";
	withnul[5] = 0;
	assert_true(proto_scram_client_init_password(&cl, "pencil"));
	assert_true(proto_scram_client_first(&cl, RFC_CNONCE));
	assert_bad(proto_scram_client_final(&cl, withnul, sizeof(withnul) - 1, &why), &why);
	char *big = malloc(PROTO_SCRAM_MSG_MAX + 2);
	assert_non_null(big);
	snprintf(big, PROTO_SCRAM_MSG_MAX + 2, "r=%s", RFC_CNONCE);
	memset(big + strlen(big), 'x', PROTO_SCRAM_MSG_MAX + 1 - strlen(big));
	big[PROTO_SCRAM_MSG_MAX + 1] = '\0';
	assert_true(proto_scram_client_init_password(&cl, "pencil"));
	assert_true(proto_scram_client_first(&cl, RFC_CNONCE));
	assert_bad(cli_final(&cl, big, &why), &why);
	free(big);
}

static void test_client_out_of_turn_and_bounds(void **state)
{
	ProtoScramClient cl;
	const char *why;
	char longpw[PROTO_SCRAM_PASSWORD_MAX + 2];
	memset(longpw, 'p', sizeof(longpw) - 1);
	longpw[sizeof(longpw) - 1] = '\0';
	assert_false(proto_scram_client_init_password(&cl, longpw));
	assert_false(proto_scram_client_first(&cl, NULL));
	longpw[PROTO_SCRAM_PASSWORD_MAX] = '\0'; /* exactly the maximum */
	assert_true(proto_scram_client_init_password(&cl, longpw));
	/* final before first */
	assert_bad(cli_final(&cl, RFC_SERVER_FIRST, &why), &why);
	/* bad nonces: empty, a comma, a space, too long */
	char longnonce[PROTO_SCRAM_NONCE_MAX + 2];
	memset(longnonce, 'n', sizeof(longnonce) - 1);
	longnonce[sizeof(longnonce) - 1] = '\0';
	const char *const nonces[] = {"", "a,b", "a b", longnonce};
	for (size_t i = 0; i < sizeof(nonces) / sizeof(nonces[0]); i++) {
		assert_true(proto_scram_client_init_password(&cl, "pencil"));
		assert_false(proto_scram_client_first(&cl, nonces[i]));
	}
	/* a random nonce: 24 base64 characters */
	assert_true(proto_scram_client_init_password(&cl, "pencil"));
	assert_true(proto_scram_client_first(&cl, NULL));
	assert_int_equal(cl.msg_len, strlen("n,,n=,r=") + 24);
	assert_false(proto_scram_client_first(&cl, NULL)); /* twice */
	/* verify before final */
	assert_true(proto_scram_client_init_password(&cl, "pencil"));
	assert_true(proto_scram_client_first(&cl, RFC_CNONCE));
	assert_bad(cli_verify(&cl, EMPTY_USER_SERVER_FINAL, &why), &why);
}

/* ---- server: client-first-message ---------------------------------------------- */

typedef struct FirstCase {
	const char *mech;
	const char *msg;
	bool cbind; /* the link is TLS: PLUS offered */
} FirstCase;

static void test_server_first_malformed(void **state)
{
	static const FirstCase bad[] = {
		{"SCRAM-SHA-256", "", false},
		{"SCRAM-SHA-256", "n,,n=,r=", false},                  /* empty nonce */
		{"SCRAM-SHA-256", "n,,n=", false},                     /* no nonce */
		{"SCRAM-SHA-256", "n,,n=,x=abc", false},
		{"SCRAM-SHA-256", "n,,r=abc", false},                  /* no user name attribute */
		{"SCRAM-SHA-256", "n,,n=,r=a\x7f" "b", false},         /* not printable */
		{"SCRAM-SHA-256", "n,,n=,r=a\x01" "b", false},
		{"SCRAM-SHA-256", "n,,n=,r=a b", false},
		{"SCRAM-SHA-256", "n,,n=,r=abc,", false},              /* trailing comma */
		{"SCRAM-SHA-256", "n,,n=,r=abc,x", false},             /* extension without '=' */
		{"SCRAM-SHA-256", "n,,n=,r=abc,1=x", false},           /* extension name not a letter */
		{"SCRAM-SHA-256", "n,,m=ext,n=,r=abc", false},         /* mandatory extension */
		{"SCRAM-SHA-256", "x,,n=,r=abc", false},               /* unknown flag */
		{"SCRAM-SHA-256", ",,n=,r=abc", false},
		{"SCRAM-SHA-256", "n,n=,r=abc", false},                /* one comma */
		{"SCRAM-SHA-256", "nn,,n=,r=abc", false},
		{"SCRAM-SHA-256", "n,a=bob,n=,r=abc", false},          /* authzid */
		{"SCRAM-SHA-256", "n", false},
		{"SCRAM-SHA-256", "n,,", false},
		{"SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc", false}, /* p without PLUS, no TLS */
		{"SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abc", true},  /* p without PLUS */
		{"SCRAM-SHA-256", "y,,n=,r=abc", true},                /* downgrade: we offered PLUS */
		{"SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc", false}, /* PLUS not offered */
		{"SCRAM-SHA-256-PLUS", "n,,n=,r=abc", true},           /* PLUS without binding */
		{"SCRAM-SHA-256-PLUS", "y,,n=,r=abc", true},
		{"SCRAM-SHA-256-PLUS", "p=tls-unique,,n=,r=abc", true},
		{"SCRAM-SHA-256-PLUS", "p=,,n=,r=abc", true},
		{"SCRAM-SHA-256-PLUS", "p,,n=,r=abc", true},
		{"SCRAM-SHA-256-PLUS", "p=tls-server-end-point,a=x,n=,r=abc", true},
		{"SCRAM-SHA-1", "n,,n=,r=abc", false},
		{"scram-sha-256", "n,,n=,r=abc", false},
		{"", "n,,n=,r=abc", false},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ProtoScramSecret s = secret_of(RFC_VERIFIER);
		ProtoScramServer st;
		const char *why = NULL;
		proto_scram_server_init(&st, &s, false, bad[i].cbind ? cbind_data : NULL, bad[i].cbind ? 32 : 0);
		ProtoScramStatus status = srv_first(&st, bad[i].mech, bad[i].msg, RFC_SNONCE, &why);
		if (status != PROTO_SCRAM_BAD)
			fail_msg("%s \"%s\" (cbind %d): status %d, want BAD", bad[i].mech, bad[i].msg, bad[i].cbind,
				 (int)status);
		assert_non_null(why);
		assert_int_equal(st.msg_len, 0);
		/* and the exchange is over */
		assert_bad(srv_final(&st, RFC_CLIENT_FINAL, &why), &why);
	}
}

static void test_server_first_accepted_variants(void **state)
{
	static const FirstCase ok[] = {
		{"SCRAM-SHA-256", "n,,n=,r=abc", false},
		{"SCRAM-SHA-256", "n,,n=,r=abc", true},                /* TLS, but the client cannot bind */
		{"SCRAM-SHA-256", "y,,n=,r=abc", false},               /* could bind, we do not offer it */
		{"SCRAM-SHA-256", "n,,n=someone=2Celse,r=abc", false}, /* user name ignored */
		{"SCRAM-SHA-256", "n,,n=,r=abc,x=1,y=", false},        /* extensions after the nonce, ignored */
		{"SCRAM-SHA-256", "n,,n=,r=!\"#$%&'()*+-./~", false},  /* every kind of printable */
		{"SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc", true},
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ProtoScramSecret s = secret_of(RFC_VERIFIER);
		ProtoScramServer st;
		const char *why = NULL;
		proto_scram_server_init(&st, &s, false, ok[i].cbind ? cbind_data : NULL, ok[i].cbind ? 32 : 0);
		ProtoScramStatus status = srv_first(&st, ok[i].mech, ok[i].msg, RFC_SNONCE, &why);
		if (status != PROTO_SCRAM_CONTINUE)
			fail_msg("%s \"%s\": status %d (%s)", ok[i].mech, ok[i].msg, (int)status, why ? why : "");
		const char *r = strstr(ok[i].msg, ",r=") + 3;
		size_t rlen = strcspn(r, ",");
		assert_true(strncmp(st.msg, "r=", 2) == 0 && strncmp(st.msg + 2, r, rlen) == 0);
		assert_true(strncmp(st.msg + 2 + rlen, RFC_SNONCE ",s=" RFC_SALT ",i=4096", 30) == 0);
	}
}

/* Lengths: PROTO_SCRAM_MSG_MAX bytes are fine, one more is BAD; a NUL inside
 * is BAD; a random server nonce is 24 base64 characters; the server nonce
 * we are given must be printable and bounded. */
static void test_server_first_bounds(void **state)
{
	ProtoScramSecret s = secret_of(RFC_VERIFIER);
	ProtoScramServer st;
	const char *why;
	char *msg = malloc(PROTO_SCRAM_MSG_MAX + 2);
	assert_non_null(msg);
	strcpy(msg, "n,,n=,r=");
	memset(msg + 8, 'a', PROTO_SCRAM_MSG_MAX - 8);
	msg[PROTO_SCRAM_MSG_MAX] = '\0';
	proto_scram_server_init(&st, &s, false, NULL, 0);
	assert_int_equal(srv_first(&st, "SCRAM-SHA-256", msg, RFC_SNONCE, &why), PROTO_SCRAM_CONTINUE);
	assert_int_equal(st.msg_len, 2 + (PROTO_SCRAM_MSG_MAX - 8) + strlen(RFC_SNONCE ",s=" RFC_SALT ",i=4096"));
	msg[PROTO_SCRAM_MSG_MAX] = 'a';
	msg[PROTO_SCRAM_MSG_MAX + 1] = '\0';
	proto_scram_server_init(&st, &s, false, NULL, 0);
	assert_bad(srv_first(&st, "SCRAM-SHA-256", msg, RFC_SNONCE, &why), &why);
	free(msg);

	uint8_t withnul[] = "n,,n=,r=abc";
	withnul[9] = 0;
	proto_scram_server_init(&st, &s, false, NULL, 0);
	assert_bad(proto_scram_server_first(&st, "SCRAM-SHA-256", withnul, sizeof(withnul) - 1, NULL, &why), &why);

	proto_scram_server_init(&st, &s, false, NULL, 0);
	assert_int_equal(srv_first(&st, "SCRAM-SHA-256", "n,,n=,r=abc", NULL, &why), PROTO_SCRAM_CONTINUE);
	assert_int_equal(st.msg_len, strlen("r=abc") + 24 + strlen(",s=" RFC_SALT ",i=4096"));
	assert_int_equal(st.nonce_len, 3 + 24);

	char longnonce[PROTO_SCRAM_NONCE_MAX + 2];
	memset(longnonce, 'n', sizeof(longnonce) - 1);
	longnonce[sizeof(longnonce) - 1] = '\0';
	const char *const snonces[] = {"", "a,b", "a b", longnonce};
	for (size_t i = 0; i < sizeof(snonces) / sizeof(snonces[0]); i++) {
		proto_scram_server_init(&st, &s, false, NULL, 0);
		assert_bad(srv_first(&st, "SCRAM-SHA-256", "n,,n=,r=abc", snonces[i], &why), &why);
	}
	/* first twice, final before first */
	proto_scram_server_init(&st, &s, false, NULL, 0);
	assert_int_equal(srv_first(&st, "SCRAM-SHA-256", "n,,n=,r=abc", NULL, &why), PROTO_SCRAM_CONTINUE);
	assert_bad(srv_first(&st, "SCRAM-SHA-256", "n,,n=,r=abc", NULL, &why), &why);
	proto_scram_server_init(&st, &s, false, NULL, 0);
	assert_bad(srv_final(&st, RFC_CLIENT_FINAL, &why), &why);
}

static void test_server_mechanisms(void **state)
{
	ProtoScramSecret s = secret_of(RFC_VERIFIER);
	ProtoScramServer st;
	const char *mechs[PROTO_SCRAM_MECHANISMS_MAX];
	proto_scram_server_init(&st, &s, false, NULL, 0);
	assert_int_equal(proto_scram_server_mechanisms(&st, mechs), 1);
	assert_string_equal(mechs[0], "SCRAM-SHA-256");
	proto_scram_server_init(&st, &s, false, cbind_data, 32);
	assert_int_equal(proto_scram_server_mechanisms(&st, mechs), 2);
	assert_string_equal(mechs[0], "SCRAM-SHA-256-PLUS");
	assert_string_equal(mechs[1], "SCRAM-SHA-256");
	/* a CBIND_LEN over PROTO_SCRAM_CBIND_MAX counts as none */
	uint8_t big[PROTO_SCRAM_CBIND_MAX + 1] = {0};
	proto_scram_server_init(&st, &s, false, big, sizeof(big));
	assert_int_equal(proto_scram_server_mechanisms(&st, mechs), 1);
}

/* ---- server: client-final-message ------------------------------------------------ */

static void test_server_final_malformed(void **state)
{
	static const char *const bad[] = {
		"",
		"c=biws",
		"c=biws,r=" RFC_NONCE,                                      /* no proof */
		"c=biws,r=" RFC_NONCE ",",
		"c=eSws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", /* y,, for n,, */
		"c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws=,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" RFC_CNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",      /* client nonce only */
		"c=biws,r=" RFC_NONCE "x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",      /* longer */
		"c=biws,r=" RFC_CNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",                      /* no nonce */
		"r=" RFC_NONCE ",c=biws,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",      /* order */
		"c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",       /* no padding */
		"c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And",         /* 30 bytes */
		"c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQAAAA=",  /* 35 bytes */
		"c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7And*Q=",      /* bad character */
		"c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1",  /* after the proof */
		"c=biws,r=" RFC_NONCE ",p=",
		"c=biws,r=" RFC_NONCE ",x,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",   /* bad extension */
		"c=biws,r=" RFC_NONCE ",,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ProtoScramServer st;
		const char *why = NULL;
		server_after_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, NULL, 0);
		ProtoScramStatus s = srv_final(&st, bad[i], &why);
		if (s != PROTO_SCRAM_BAD)
			fail_msg("\"%s\": status %d, want BAD", bad[i], (int)s);
		assert_non_null(why);
		assert_int_equal(st.msg_len, 0);
	}
	/* a NUL, an overlong message, and a second final after DONE */
	ProtoScramServer st;
	const char *why;
	uint8_t withnul[] = RFC_CLIENT_FINAL;
	withnul[3] = 0;
	server_after_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, NULL, 0);
	assert_bad(proto_scram_server_final(&st, withnul, sizeof(withnul) - 1, &why), &why);
	char *big = malloc(PROTO_SCRAM_MSG_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', PROTO_SCRAM_MSG_MAX + 1);
	memcpy(big, RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL));
	big[PROTO_SCRAM_MSG_MAX + 1] = '\0';
	server_after_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, NULL, 0);
	assert_bad(srv_final(&st, big, &why), &why);
	free(big);
	server_after_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, NULL, 0);
	assert_int_equal(srv_final(&st, RFC_CLIENT_FINAL, &why), PROTO_SCRAM_DONE);
	assert_bad(srv_final(&st, RFC_CLIENT_FINAL, &why), &why);
}

/* A flipped bit of the proof is a wrong password (FAIL), not malformed. */
static void test_server_final_wrong_proof_fails(void **state)
{
	ProtoScramServer st;
	const char *why;
	server_after_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, NULL, 0);
	assert_int_equal(srv_final(&st, "c=biws,r=" RFC_NONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVU=", &why),
			 PROTO_SCRAM_FAIL);
	/* the proof of another exchange (empty user) is wrong for this one */
	server_after_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, NULL, 0);
	assert_int_equal(srv_final(&st, EMPTY_USER_CLIENT_FINAL, &why), PROTO_SCRAM_FAIL);
}

/* Extensions between nonce and proof are part of AuthMessage, and ignored. */
static void test_server_final_extension_accepted(void **state)
{
	ProtoScramServer st;
	const char *why;
	uint8_t ck[32];
	char msg[512], proof[64];
	rfc_client_key(ck);
	server_after_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, NULL, 0);
	test_proof(ck, "n=user,r=" RFC_CNONCE, RFC_SERVER_FIRST, "c=biws,r=" RFC_NONCE ",x=ext", proof);
	snprintf(msg, sizeof(msg), "%s%s", "c=biws,r=" RFC_NONCE ",x=ext,", proof);
	assert_int_equal(srv_final(&st, msg, &why), PROTO_SCRAM_DONE);
	assert_memory_equal(st.client_key, ck, 32);
	/* the RFC's proof with an extension added does not cover it */
	server_after_first(&st, "SCRAM-SHA-256", RFC_CLIENT_FIRST, NULL, 0);
	assert_int_equal(srv_final(&st, "c=biws,r=" RFC_NONCE ",x=ext,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
				   &why),
			 PROTO_SCRAM_FAIL);
}

/* "y,," (client could bind, we offer no PLUS) must carry c=eSws. */
static void test_server_final_y_flag(void **state)
{
	ProtoScramServer st;
	const char *why;
	uint8_t ck[32];
	char msg[512], proof[64];
	rfc_client_key(ck);
	server_after_first(&st, "SCRAM-SHA-256", "y,,n=,r=" RFC_CNONCE, NULL, 0);
	test_proof(ck, "n=,r=" RFC_CNONCE, RFC_SERVER_FIRST, "c=eSws,r=" RFC_NONCE, proof);
	snprintf(msg, sizeof(msg), "%s%s", "c=eSws,r=" RFC_NONCE ",", proof);
	assert_int_equal(srv_final(&st, msg, &why), PROTO_SCRAM_DONE);
	server_after_first(&st, "SCRAM-SHA-256", "y,,n=,r=" RFC_CNONCE, NULL, 0);
	test_proof(ck, "n=,r=" RFC_CNONCE, RFC_SERVER_FIRST, "c=biws,r=" RFC_NONCE, proof);
	snprintf(msg, sizeof(msg), "%s%s", "c=biws,r=" RFC_NONCE ",", proof);
	assert_bad(srv_final(&st, msg, &why), &why);
}

/* ---- channel binding ------------------------------------------------------- */

static void test_channel_binding_right(void **state)
{
	ProtoScramServer st;
	const char *why;
	uint8_t ck[32];
	server_after_first(&st, "SCRAM-SHA-256-PLUS", PLUS_CLIENT_FIRST, cbind_data, 32);
	assert_int_equal(srv_final(&st, PLUS_CLIENT_FINAL, &why), PROTO_SCRAM_DONE);
	assert_string_equal(st.msg, PLUS_SERVER_FINAL);
	rfc_client_key(ck);
	assert_memory_equal(st.client_key, ck, 32);
}

static void test_channel_binding_wrong(void **state)
{
	ProtoScramServer st;
	const char *why;
	uint8_t other[32];
	uint8_t ck[32];
	char msg[512], proof[64], c[128];
	rfc_client_key(ck);
	/* the client saw another certificate (a man in the middle): data differ in the last byte */
	memcpy(other, cbind_data, 32);
	other[31] ^= 0xff;
	server_after_first(&st, "SCRAM-SHA-256-PLUS", PLUS_CLIENT_FIRST, other, 32);
	assert_bad(srv_final(&st, PLUS_CLIENT_FINAL, &why), &why);
	/* the gs2 header alone, without the data (with a proof that covers it) */
	uint8_t hdr[] = "p=tls-server-end-point,,";
	strcpy(c, "c=");
	b64(hdr, sizeof(hdr) - 1, c + 2);
	snprintf(msg, sizeof(msg), "%s,r=%s", c, RFC_NONCE);
	test_proof(ck, "n=,r=" RFC_CNONCE, RFC_SERVER_FIRST, msg, proof);
	strcat(msg, ",");
	strcat(msg, proof);
	server_after_first(&st, "SCRAM-SHA-256-PLUS", PLUS_CLIENT_FIRST, cbind_data, 32);
	assert_bad(srv_final(&st, msg, &why), &why);
	/* c=biws after p=... */
	test_proof(ck, "n=,r=" RFC_CNONCE, RFC_SERVER_FIRST, "c=biws,r=" RFC_NONCE, proof);
	snprintf(msg, sizeof(msg), "%s%s", "c=biws,r=" RFC_NONCE ",", proof);
	server_after_first(&st, "SCRAM-SHA-256-PLUS", PLUS_CLIENT_FIRST, cbind_data, 32);
	assert_bad(srv_final(&st, msg, &why), &why);
	/* the PLUS c= when the client said n,, */
	server_after_first(&st, "SCRAM-SHA-256", "n,,n=,r=" RFC_CNONCE, cbind_data, 32);
	assert_bad(srv_final(&st, PLUS_CLIENT_FINAL, &why), &why);
	/* n,, over TLS with c=biws is fine: the client cannot bind */
	server_after_first(&st, "SCRAM-SHA-256", "n,,n=,r=" RFC_CNONCE, cbind_data, 32);
	assert_int_equal(srv_final(&st, EMPTY_USER_CLIENT_FINAL, &why), PROTO_SCRAM_DONE);
}

/* Certificates for tls-server-end-point, made here and read back from DER
 * (as a loaded certificate is). MD is the signature's hash; PSS selects
 * RSA-PSS padding. */
static X509 *make_cert(EVP_PKEY *key, const EVP_MD *md, bool pss)
{
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 1), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
	X509_NAME *name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"pgflip", -1, -1, 0),
			 1);
	assert_int_equal(X509_set_issuer_name(x, name), 1);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (pss) {
		EVP_MD_CTX *mctx = EVP_MD_CTX_new();
		EVP_PKEY_CTX *pctx = NULL;
		assert_int_equal(EVP_DigestSignInit(mctx, &pctx, md, NULL, key), 1);
		assert_true(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
		assert_true(X509_sign_ctx(x, mctx) > 0);
		EVP_MD_CTX_free(mctx);
	} else {
		assert_true(X509_sign(x, key, md) > 0);
	}
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	assert_true(len > 0);
	X509_free(x);
	const unsigned char *p = der;
	x = d2i_X509(NULL, &p, len);
	assert_non_null(x);
	OPENSSL_free(der);
	return x;
}

/* The hash of CERT's DER with WANT, computed here. */
static void assert_end_point(X509 *cert, const EVP_MD *want)
{
	uint8_t got[EVP_MAX_MD_SIZE], expect[EVP_MAX_MD_SIZE];
	size_t got_len = 0;
	unsigned int expect_len = 0;
	unsigned char *der = NULL;
	int len = i2d_X509(cert, &der);
	assert_true(len > 0);
	assert_int_equal(EVP_Digest(der, (size_t)len, expect, &expect_len, want, NULL), 1);
	OPENSSL_free(der);
	assert_true(proto_tls_server_end_point(cert, got, &got_len));
	assert_int_equal(got_len, expect_len);
	assert_memory_equal(got, expect, got_len);
}

static void test_tls_server_end_point(void **state)
{
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	EVP_PKEY *rsa = EVP_RSA_gen(2048);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(ec);
	assert_non_null(rsa);
	assert_non_null(ed);
	static const struct {
		int key; /* 0 EC, 1 RSA, 2 RSA-PSS */
		const char *sig_md;
		const char *want_md;
	} cases[] = {
		{0, "SHA256", "SHA256"}, {0, "SHA384", "SHA384"}, {0, "SHA512", "SHA512"},
		{0, "SHA1", "SHA256"},   {1, "SHA1", "SHA256"},   {1, "MD5", "SHA256"},
		{1, "SHA384", "SHA384"}, {2, "SHA384", "SHA384"}, {2, "SHA256", "SHA256"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		X509 *cert = make_cert(cases[i].key == 0 ? ec : rsa, EVP_get_digestbyname(cases[i].sig_md),
				       cases[i].key == 2);
		assert_end_point(cert, EVP_get_digestbyname(cases[i].want_md));
		X509_free(cert);
	}
	/* Ed25519 signs without a separate hash: cannot tell */
	X509 *cert = make_cert(ed, NULL, false);
	uint8_t out[EVP_MAX_MD_SIZE];
	size_t out_len = 0;
	assert_false(proto_tls_server_end_point(cert, out, &out_len));
	X509_free(cert);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}

/* ---- md5 ------------------------------------------------------------------- */

static const uint8_t salt1234[4] = {1, 2, 3, 4};
static const uint8_t salt_deadbeef[4] = {0xde, 0xad, 0xbe, 0xef};
/* python3: 'md5' + hashlib.md5(b'secretalice').hexdigest() */
#define MD5_ALICE "md54a0a68b43b6cd5cf266fa02f196e2371"
/* python3: 'md5' + hashlib.md5(MD5_ALICE[3:].encode() + bytes([1, 2, 3, 4])).hexdigest() */
#define MD5_ALICE_RESPONSE "md598a0412b9c31436fc53776e863350083"
/* PostgreSQL 15's stored hash of role m, password 'secret' (SET
 * password_encryption = 'md5'); the response to salt de ad be ef by python3. */
#define MD5_PG_M "md5b52328d7451bfeace80c4b8c338106f9"
#define MD5_PG_M_RESPONSE "md5e94258703c5e85e9c397b79dffe5a5ef"

static void test_md5_secret_known(void **state)
{
	char out[PROTO_MD5_SECRET_SIZE];
	assert_true(proto_md5_secret("alice", "secret", out));
	assert_string_equal(out, MD5_ALICE);
	assert_true(proto_md5_secret("m", "secret", out));
	assert_string_equal(out, MD5_PG_M);
}

static void test_md5_check(void **state)
{
	/* plain password and stored hash */
	assert_true(proto_md5_check("secret", "alice", salt1234, MD5_ALICE_RESPONSE));
	assert_true(proto_md5_check(MD5_ALICE, "alice", salt1234, MD5_ALICE_RESPONSE));
	assert_true(proto_md5_check(MD5_ALICE, "anyone", salt1234, MD5_ALICE_RESPONSE)); /* the hash holds the user */
	assert_true(proto_md5_check(MD5_PG_M, "m", salt_deadbeef, MD5_PG_M_RESPONSE));
	assert_true(proto_md5_check("secret", "m", salt_deadbeef, MD5_PG_M_RESPONSE));
	/* wrong salt, user, password, response shape */
	assert_false(proto_md5_check("secret", "alice", salt_deadbeef, MD5_ALICE_RESPONSE));
	assert_false(proto_md5_check("secret", "bob", salt1234, MD5_ALICE_RESPONSE));
	assert_false(proto_md5_check("Secret", "alice", salt1234, MD5_ALICE_RESPONSE));
	assert_false(proto_md5_check("secret", "alice", salt1234, "md598A0412B9C31436FC53776E863350083"));
	assert_false(proto_md5_check("secret", "alice", salt1234, MD5_ALICE_RESPONSE "0"));
	assert_false(proto_md5_check("secret", "alice", salt1234, "md598a0412b9c31436fc53776e86335008"));
	assert_false(proto_md5_check("secret", "alice", salt1234, ""));
	assert_false(proto_md5_check("secret", "alice", salt1234, "secret"));
	assert_false(proto_md5_check(MD5_ALICE, "alice", salt1234, MD5_ALICE)); /* the hash is not a response */
	/* a SCRAM verifier cannot answer md5 */
	assert_false(proto_md5_check(PG_VERIFIER_SECRET, "x", salt1234, MD5_ALICE_RESPONSE));
	/* upper-case hex is no stored hash (PostgreSQL's rule): it is a password */
	char upper[] = "MD54A0A68B43B6CD5CF266FA02F196E2371", resp[PROTO_MD5_SECRET_SIZE], inner[PROTO_MD5_SECRET_SIZE];
	assert_false(proto_md5_check(upper, "alice", salt1234, MD5_ALICE_RESPONSE));
	assert_true(proto_md5_secret("alice", upper, inner));
	/* the response to that password, built from md5_secret of the inner hash */
	unsigned char d[16];
	unsigned int dl;
	uint8_t buf[36];
	memcpy(buf, inner + 3, 32);
	memcpy(buf + 32, salt1234, 4);
	assert_int_equal(EVP_Digest(buf, 36, d, &dl, EVP_md5(), NULL), 1);
	strcpy(resp, "md5");
	for (int i = 0; i < 16; i++)
		sprintf(resp + 3 + 2 * i, "%02x", d[i]);
	assert_true(proto_md5_check(upper, "alice", salt1234, resp));
}

/* ---- messages: builders ---------------------------------------------------------- */

/* Asserts that B holds exactly WANT[0..N). */
static void assert_bytes(const ProtoBuf *b, const void *want, size_t n)
{
	assert_true(protobuf_ok(b));
	assert_int_equal(b->len, n);
	assert_memory_equal(b->data, want, n);
}

static void test_put_auth_requests_bytes(void **state)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_auth_cleartext(&b);
	assert_bytes(&b, "R\0\0\0\x08\0\0\0\x03", 9); /* length 4 + code */
	protobuf_reset(&b);
	proto_put_auth_md5(&b, salt_deadbeef);
	assert_bytes(&b, "R\0\0\0\x0c\0\0\0\x05\xde\xad\xbe\xef", 13); /* 4 + code + salt */
	protobuf_reset(&b);
	const char *mechs[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
	proto_put_auth_sasl(&b, mechs, 2);
	/* 4 + code 4 + "SCRAM-SHA-256-PLUS\0" 19 + "SCRAM-SHA-256\0" 14 + "\0" 1 = 42 */
	assert_bytes(&b, "R\0\0\0\x2a\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0", 43);
	protobuf_reset(&b);
	proto_put_auth_sasl_continue(&b, (const uint8_t *)"r=abc", 5);
	assert_bytes(&b, "R\0\0\0\x0d\0\0\0\x0br=abc", 14); /* 4 + 4 + 5 */
	protobuf_reset(&b);
	proto_put_auth_sasl_final(&b, (const uint8_t *)"v=xy", 4);
	assert_bytes(&b, "R\0\0\0\x0c\0\0\0\x0cv=xy", 13); /* 4 + 4 + 4 */
	protobuf_free(&b);
}

static void test_put_frontend_auth_bytes(void **state)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_sasl_initial_response(&b, "SCRAM-SHA-256", (const uint8_t *)"n,,n=,r=x", 9);
	/* 4 + "SCRAM-SHA-256\0" 14 + int32 9 + 9 bytes = 31 */
	assert_bytes(&b, "p\0\0\0\x1fSCRAM-SHA-256\0\0\0\0\x09n,,n=,r=x", 32);
	protobuf_reset(&b);
	proto_put_sasl_initial_response(&b, "SCRAM-SHA-256", NULL, 0);
	assert_bytes(&b, "p\0\0\0\x16SCRAM-SHA-256\0\xff\xff\xff\xff", 23); /* 4 + 14 + -1 */
	protobuf_reset(&b);
	proto_put_sasl_response(&b, (const uint8_t *)"c=biws", 6);
	assert_bytes(&b, "p\0\0\0\x0a" "c=biws", 11);
	protobuf_reset(&b);
	proto_put_password(&b, "md5abc");
	assert_bytes(&b, "p\0\0\0\x0bmd5abc\0", 12); /* 4 + 7 */
	protobuf_free(&b);
}

/* ---- messages: readers ---------------------------------------------------------- */

/* The body of the one message in B, as an exact heap copy. */
static uint8_t *body_of(const ProtoBuf *b, uint8_t type, size_t *len)
{
	ProtoHeader h;
	const char *why;
	assert_int_equal(proto_header_parse(b->data, b->len, 1u << 20, &h, &why), PROTO_OK);
	assert_int_equal(h.type, type);
	assert_int_equal((size_t)h.len + 1, b->len);
	*len = proto_body_len(&h);
	return heap_copy(b->data + PROTO_HEADER_SIZE, *len);
}

static void test_read_auth_roundtrip(void **state)
{
	ProtoBuf b;
	uint8_t *body;
	size_t len, n;
	uint32_t code;
	const uint8_t *rest;
	const char *why;
	protobuf_init(&b);
	const char *mechs[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"};
	proto_put_auth_sasl(&b, mechs, 2);
	body = body_of(&b, 'R', &len);
	assert_int_equal(proto_read_auth(body, len, &code, &rest, &n, &why), PROTO_OK);
	assert_int_equal(code, PROTO_AUTH_SASL);
	assert_int_equal(n, 34);
	assert_true(proto_auth_sasl_has(rest, n, "SCRAM-SHA-256"));
	assert_true(proto_auth_sasl_has(rest, n, "SCRAM-SHA-256-PLUS"));
	assert_false(proto_auth_sasl_has(rest, n, "SCRAM-SHA"));
	assert_false(proto_auth_sasl_has(rest, n, ""));
	free(body);

	protobuf_reset(&b);
	proto_put_auth_md5(&b, salt_deadbeef);
	body = body_of(&b, 'R', &len);
	assert_int_equal(proto_read_auth(body, len, &code, &rest, &n, &why), PROTO_OK);
	assert_int_equal(code, PROTO_AUTH_MD5_PASSWORD);
	assert_int_equal(n, 4);
	assert_memory_equal(rest, salt_deadbeef, 4);
	free(body);

	protobuf_reset(&b);
	proto_put_auth_sasl_continue(&b, (const uint8_t *)RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST));
	body = body_of(&b, 'R', &len);
	assert_int_equal(proto_read_auth(body, len, &code, &rest, &n, &why), PROTO_OK);
	assert_int_equal(code, PROTO_AUTH_SASL_CONTINUE);
	assert_int_equal(n, strlen(RFC_SERVER_FIRST));
	assert_memory_equal(rest, RFC_SERVER_FIRST, n);
	free(body);

	protobuf_reset(&b);
	proto_put_auth_ok(&b);
	proto_put_auth_cleartext(&b);
	body = heap_copy(b.data + 5, 4);
	assert_int_equal(proto_read_auth(body, 4, &code, &rest, &n, &why), PROTO_OK);
	assert_int_equal(code, PROTO_AUTH_OK);
	assert_int_equal(n, 0);
	free(body);
	body = heap_copy(b.data + 14, 4);
	assert_int_equal(proto_read_auth(body, 4, &code, &rest, &n, &why), PROTO_OK);
	assert_int_equal(code, PROTO_AUTH_CLEARTEXT_PASSWORD);
	free(body);
	protobuf_free(&b);
}

static void test_read_auth_malformed(void **state)
{
	static const struct {
		const char *body;
		size_t len;
		ProtoStatus want;
	} cases[] = {
		{"", 0, PROTO_BAD},
		{"\0\0\0", 3, PROTO_BAD},
		{"\0\0\0\0x", 5, PROTO_BAD},                  /* Ok with bytes */
		{"\0\0\0\x03x", 5, PROTO_BAD},                /* cleartext with bytes */
		{"\0\0\0\x05\1\2\3", 7, PROTO_BAD},           /* md5: 3-byte salt */
		{"\0\0\0\x05\1\2\3\4\5", 9, PROTO_BAD},       /* md5: 5 bytes */
		{"\0\0\0\x0a", 4, PROTO_BAD},                 /* SASL: no list */
		{"\0\0\0\x0a\0", 5, PROTO_BAD},               /* SASL: empty list */
		{"\0\0\0\x0aSCRAM-SHA-256\0", 18, PROTO_BAD}, /* SASL: no terminator */
		{"\0\0\0\x0aSCRAM-SHA-256", 17, PROTO_BAD},
		{"\0\0\0\x0aSCRAM-SHA-256\0\0x", 20, PROTO_BAD}, /* after the terminator */
		{"\0\0\0\x0aSCRAM-SHA-256\0\0", 19, PROTO_OK},
		{"\0\0\0\x0c", 4, PROTO_OK},                  /* SASLFinal, empty */
		{"\0\0\0\x63whatever", 12, PROTO_OK},         /* unknown code 99: the caller decides */
		{"\0\0\0\x07x", 5, PROTO_BAD},                /* GSS with bytes */
		{"\0\0\0\x08xyz", 7, PROTO_OK},               /* GSSContinue */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t *body = heap_copy(cases[i].body, cases[i].len);
		uint32_t code;
		const uint8_t *rest;
		size_t n;
		const char *why = NULL;
		ProtoStatus s = proto_read_auth(body, cases[i].len, &code, &rest, &n, &why);
		if (s != cases[i].want)
			fail_msg("case %zu: status %d, want %d", i, (int)s, (int)cases[i].want);
		if (s == PROTO_BAD)
			assert_non_null(why);
		free(body);
	}
}

static void test_read_sasl_initial(void **state)
{
	ProtoBuf b;
	uint8_t *body;
	size_t len, n;
	const char *mech, *why;
	const uint8_t *data;
	protobuf_init(&b);
	proto_put_sasl_initial_response(&b, "SCRAM-SHA-256", (const uint8_t *)RFC_CLIENT_FIRST,
					strlen(RFC_CLIENT_FIRST));
	body = body_of(&b, 'p', &len);
	assert_int_equal(proto_read_sasl_initial(body, len, &mech, &data, &n, &why), PROTO_OK);
	assert_string_equal(mech, "SCRAM-SHA-256");
	assert_int_equal(n, strlen(RFC_CLIENT_FIRST));
	assert_memory_equal(data, RFC_CLIENT_FIRST, n);
	assert_true(data == body + 18);
	free(body);
	protobuf_reset(&b);
	proto_put_sasl_initial_response(&b, "SCRAM-SHA-256-PLUS", NULL, 0);
	body = body_of(&b, 'p', &len);
	assert_int_equal(proto_read_sasl_initial(body, len, &mech, &data, &n, &why), PROTO_OK);
	assert_string_equal(mech, "SCRAM-SHA-256-PLUS");
	assert_null(data);
	assert_int_equal(n, 0);
	free(body);
	protobuf_reset(&b);
	proto_put_sasl_initial_response(&b, "X", (const uint8_t *)"", 0); /* length 0, not -1 */
	body = body_of(&b, 'p', &len);
	assert_int_equal(proto_read_sasl_initial(body, len, &mech, &data, &n, &why), PROTO_OK);
	assert_non_null(data);
	assert_int_equal(n, 0);
	free(body);
	protobuf_free(&b);

	static const struct {
		const char *body;
		size_t len;
	} bad[] = {
		{"", 0},
		{"SCRAM-SHA-256", 13},                     /* no NUL */
		{"SCRAM-SHA-256\0", 14},                   /* no length */
		{"SCRAM-SHA-256\0\0\0\0", 17},             /* short length */
		{"SCRAM-SHA-256\0\0\0\0\x05n,,n", 22},     /* 5 claimed, 4 there */
		{"SCRAM-SHA-256\0\0\0\0\x03n,,n", 22},     /* 3 claimed, 4 there */
		{"SCRAM-SHA-256\0\xff\xff\xff\xffx", 19},  /* -1 with bytes after */
		{"SCRAM-SHA-256\0\xff\xff\xff\xfe", 18},   /* -2 */
		{"SCRAM-SHA-256\0\x80\0\0\0", 18},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *copy = heap_copy(bad[i].body, bad[i].len);
		why = NULL;
		if (proto_read_sasl_initial(copy, bad[i].len, &mech, &data, &n, &why) != PROTO_BAD)
			fail_msg("case %zu accepted", i);
		assert_non_null(why);
		free(copy);
	}
}

static void test_read_sasl_response_and_password(void **state)
{
	ProtoBuf b;
	uint8_t *body;
	size_t len, n;
	const char *why, *text;
	const uint8_t *data;
	protobuf_init(&b);
	proto_put_sasl_response(&b, (const uint8_t *)RFC_CLIENT_FINAL, strlen(RFC_CLIENT_FINAL));
	body = body_of(&b, 'p', &len);
	assert_int_equal(proto_read_sasl_response(body, len, &data, &n, &why), PROTO_OK);
	assert_true(data == body);
	assert_int_equal(n, strlen(RFC_CLIENT_FINAL));
	free(body);
	protobuf_reset(&b);
	proto_put_password(&b, MD5_ALICE_RESPONSE);
	body = body_of(&b, 'p', &len);
	assert_int_equal(proto_read_password(body, len, &text, &why), PROTO_OK);
	assert_string_equal(text, MD5_ALICE_RESPONSE);
	free(body);
	protobuf_free(&b);

	static const struct {
		const char *body;
		size_t len;
	} bad[] = {{"", 0}, {"secret", 6}, {"secret\0x", 8}, {"secret\0\0", 8}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t *copy = heap_copy(bad[i].body, bad[i].len);
		why = NULL;
		assert_int_equal(proto_read_password(copy, bad[i].len, &text, &why), PROTO_BAD);
		assert_non_null(why);
		free(copy);
	}
	uint8_t *empty = heap_copy("", 1);
	assert_int_equal(proto_read_password(empty, 1, &text, &why), PROTO_OK); /* an empty password */
	assert_string_equal(text, "");
	free(empty);
}

/* The messages of a whole exchange through builders and readers: what the
 * proxy does, minus the sockets. */
static void test_exchange_through_messages(void **state)
{
	ProtoScramSecret pg = secret_of(PG_VERIFIER_SECRET);
	ProtoScramServer st;
	ProtoScramClient cl;
	ProtoBuf b;
	uint8_t *body;
	size_t len, n;
	uint32_t code;
	const uint8_t *rest, *data;
	const char *why, *mech, *mechs[PROTO_SCRAM_MECHANISMS_MAX];
	protobuf_init(&b);
	proto_scram_server_init(&st, &pg, false, NULL, 0);
	proto_put_auth_sasl(&b, mechs, proto_scram_server_mechanisms(&st, mechs));
	body = body_of(&b, 'R', &len);
	assert_int_equal(proto_read_auth(body, len, &code, &rest, &n, &why), PROTO_OK);
	assert_true(code == PROTO_AUTH_SASL && proto_auth_sasl_has(rest, n, PROTO_SCRAM_SHA_256));
	free(body);

	assert_true(proto_scram_client_init_password(&cl, "secret"));
	assert_true(proto_scram_client_first(&cl, NULL));
	protobuf_reset(&b);
	proto_put_sasl_initial_response(&b, PROTO_SCRAM_SHA_256, (const uint8_t *)cl.msg, cl.msg_len);
	body = body_of(&b, 'p', &len);
	assert_int_equal(proto_read_sasl_initial(body, len, &mech, &data, &n, &why), PROTO_OK);
	assert_int_equal(proto_scram_server_first(&st, mech, data, n, NULL, &why), PROTO_SCRAM_CONTINUE);
	free(body);

	protobuf_reset(&b);
	proto_put_auth_sasl_continue(&b, (const uint8_t *)st.msg, st.msg_len);
	body = body_of(&b, 'R', &len);
	assert_int_equal(proto_read_auth(body, len, &code, &rest, &n, &why), PROTO_OK);
	assert_int_equal(code, PROTO_AUTH_SASL_CONTINUE);
	assert_int_equal(proto_scram_client_final(&cl, rest, n, &why), PROTO_SCRAM_CONTINUE);
	free(body);

	protobuf_reset(&b);
	proto_put_sasl_response(&b, (const uint8_t *)cl.msg, cl.msg_len);
	body = body_of(&b, 'p', &len);
	assert_int_equal(proto_read_sasl_response(body, len, &data, &n, &why), PROTO_OK);
	assert_int_equal(proto_scram_server_final(&st, data, n, &why), PROTO_SCRAM_DONE);
	free(body);

	protobuf_reset(&b);
	proto_put_auth_sasl_final(&b, (const uint8_t *)st.msg, st.msg_len);
	body = body_of(&b, 'R', &len);
	assert_int_equal(proto_read_auth(body, len, &code, &rest, &n, &why), PROTO_OK);
	assert_int_equal(code, PROTO_AUTH_SASL_FINAL);
	assert_int_equal(proto_scram_client_verify(&cl, rest, n, &why), PROTO_SCRAM_DONE);
	free(body);
	protobuf_free(&b);
	proto_scram_server_clear(&st);
	proto_scram_client_clear(&cl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* verifiers */
		cmocka_unit_test(test_secret_parse_rfc_verifier),
		cmocka_unit_test(test_secret_make_equals_rfc_verifier),
		cmocka_unit_test(test_secret_postgres_verifier),
		cmocka_unit_test(test_secret_make_no_saslprep),
		cmocka_unit_test(test_secret_parse_malformed),
		cmocka_unit_test(test_secret_parse_salt_bounds),
		cmocka_unit_test(test_secret_make_bad_arguments),
		cmocka_unit_test(test_mock_salt_stable_per_user),
		cmocka_unit_test(test_mock_secret_fails),
		cmocka_unit_test(test_mock_flag_fails_right_proof),
		/* RFC 7677 */
		cmocka_unit_test(test_server_rfc7677),
		cmocka_unit_test(test_helper_proof_matches_rfc),
		cmocka_unit_test(test_client_rfc7677_password),
		cmocka_unit_test(test_client_rfc7677_keys),
		cmocka_unit_test(test_server_empty_user_name),
		/* client against server */
		cmocka_unit_test(test_passthrough_with_recovered_keys),
		cmocka_unit_test(test_wrong_password_fails),
		cmocka_unit_test(test_client_wrong_server_signature_bad),
		cmocka_unit_test(test_client_verify_messages),
		cmocka_unit_test(test_client_server_first_malformed),
		cmocka_unit_test(test_client_out_of_turn_and_bounds),
		/* server */
		cmocka_unit_test(test_server_first_malformed),
		cmocka_unit_test(test_server_first_accepted_variants),
		cmocka_unit_test(test_server_first_bounds),
		cmocka_unit_test(test_server_mechanisms),
		cmocka_unit_test(test_server_final_malformed),
		cmocka_unit_test(test_server_final_wrong_proof_fails),
		cmocka_unit_test(test_server_final_extension_accepted),
		cmocka_unit_test(test_server_final_y_flag),
		/* channel binding */
		cmocka_unit_test(test_channel_binding_right),
		cmocka_unit_test(test_channel_binding_wrong),
		cmocka_unit_test(test_tls_server_end_point),
		/* md5 */
		cmocka_unit_test(test_md5_secret_known),
		cmocka_unit_test(test_md5_check),
		/* messages */
		cmocka_unit_test(test_put_auth_requests_bytes),
		cmocka_unit_test(test_put_frontend_auth_bytes),
		cmocka_unit_test(test_read_auth_roundtrip),
		cmocka_unit_test(test_read_auth_malformed),
		cmocka_unit_test(test_read_sasl_initial),
		cmocka_unit_test(test_read_sasl_response_and_password),
		cmocka_unit_test(test_exchange_through_messages),
	};
	return cmocka_run_group_tests_name("scram", tests, NULL, NULL);
}
