/*
 * tests/fuzz/fuzz_scram.c: protocol/scram.c (both sides of SCRAM-SHA-256,
 * verifiers, md5) and the authentication message readers of parse.c.
 *
 * Input: a selector byte, then what it drives:
 *   's' the server exchange fed arbitrary client-first and client-final
 *       messages, against RFC 7677's verifier ("pencil"), with or without
 *       channel-binding data (the bytes 0..31) and a mock twin:
 *       flags byte (bit 0 TLS, bit 1 mock, bits 2-3 mechanism), a 2-byte
 *       length L, L bytes of client-first, the rest client-final
 *   'h' an honest exchange, our client (RFC keys) against our server, with
 *       one byte of client-first or client-final maybe flipped:
 *       flags byte (bit 0 mock, bit 1 flip first, bit 2 flip final), a
 *       2-byte position, the xor byte, then the client nonce
 *   'c' the client side fed an arbitrary server-first (2-byte length L, L
 *       bytes) and server-final (the rest)
 *   'p' proto_scram_secret_parse on a text
 *   'm' proto_md5_check: 4 bytes of salt, then secret, user and response
 *       separated by NULs
 *   'I' SASLInitialResponse  'R' SASLResponse  'P' PasswordMessage
 *   'A' an Authentication message body
 * Any other byte picks one of these by its value.
 *
 * Contracts (FUZZ_CHECK): a mock exchange never answers DONE, and the first
 * step's verdict does not depend on the secret; an honest exchange is DONE
 * (and returns the RFC's ClientKey) exactly when nothing was flipped and the
 * secret is real; a DONE of the server means H(client_key) = StoredKey, of
 * the client that the signature is the HMAC computed here; an ended exchange
 * refuses every further call; a parsed verifier re-encodes to the same text
 * (base64 is canonical); md5_check accepts exactly the response computed
 * here; every reader that accepts a body is given back that body by its
 * builder. Seeds: tests/fuzz/corpus/scram/ (written by hand).
 */
#include "tests/fuzz/fuzz.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "protocol/protocol.h"
#include "protocol/scram.h"

#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_VERIFIER                                                                                                   \
	"SCRAM-SHA-256$4096:" RFC_SALT "$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"                                \
	"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
/* ClientKey of "pencil" with the RFC's salt (python3 hashlib/hmac). */
static const uint8_t rfc_client_key[32] = {0xa6, 0x0f, 0xc9, 0x23, 0xd6, 0x7e, 0x86, 0x44, 0xa9, 0x2d, 0x16,
					   0xb9, 0x6e, 0xda, 0x5e, 0xf4, 0x65, 0x6b, 0x0c, 0x72, 0x5c, 0x48,
					   0x43, 0x74, 0xbe, 0x25, 0x53, 0x55, 0x76, 0x99, 0x6e, 0x8b};
static const uint8_t cbind_data[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
				       16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

static ProtoScramSecret rfc_secret(void)
{
	ProtoScramSecret s;
	FUZZ_CHECK(proto_scram_secret_parse(RFC_VERIFIER, &s));
	return s;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

/* An ended exchange: nothing to send, and every further call is BAD. */
static void check_server_ended(ProtoScramServer *st)
{
	const char *why = NULL;
	FUZZ_CHECK(st->stage == PROTO_SCRAM_STAGE_END);
	FUZZ_CHECK(proto_scram_server_final(st, (const uint8_t *)"c=biws", 6, &why) == PROTO_SCRAM_BAD && why);
	FUZZ_CHECK(st->msg_len == 0 && st->msg[0] == '\0');
}

/* server-first as we build it: "r=" + the client's nonce + ours + salt + count. */
static void check_server_first_msg(const ProtoScramServer *st)
{
	static const char tail[] = RFC_SNONCE ",s=" RFC_SALT ",i=4096";
	FUZZ_CHECK(st->msg_len == strlen(st->msg) && st->msg_len < sizeof(st->msg));
	FUZZ_CHECK(st->msg_len > 2 + sizeof(tail) - 1 && memcmp(st->msg, "r=", 2) == 0);
	FUZZ_CHECK(strcmp(st->msg + st->msg_len - (sizeof(tail) - 1), tail) == 0);
}

/* DONE: "v=" + 44 base64 characters, and the ClientKey hashes to StoredKey. */
static void check_server_done(const ProtoScramServer *st, const ProtoScramSecret *s)
{
	uint8_t stored[32];
	unsigned int len;
	FUZZ_CHECK(st->msg_len == 46 && memcmp(st->msg, "v=", 2) == 0 && st->msg[46] == '\0');
	FUZZ_CHECK(EVP_Digest(st->client_key, 32, stored, &len, EVP_sha256(), NULL) == 1);
	FUZZ_CHECK(memcmp(stored, s->stored_key, 32) == 0);
}

static void fuzz_server(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = {"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", ""};
	if (size < 3)
		return;
	uint8_t flags = data[0];
	size_t l1 = get16(data + 1);
	data += 3, size -= 3;
	l1 = l1 < size ? l1 : size;
	uint8_t *first = fuzz_copy(data, l1), *final = fuzz_copy(data + l1, size - l1);
	ProtoScramSecret s = rfc_secret();
	ProtoScramServer st, twin;
	const char *mech = mechs[(flags >> 2) & 3], *why = NULL, *twin_why = NULL;
	bool tls = flags & 1, mock = flags & 2;
	proto_scram_server_init(&st, &s, mock, tls ? cbind_data : NULL, tls ? 32 : 0);
	proto_scram_server_init(&twin, &s, !mock, tls ? cbind_data : NULL, tls ? 32 : 0);
	ProtoScramStatus r = proto_scram_server_first(&st, mech, first, l1, RFC_SNONCE, &why);
	ProtoScramStatus t = proto_scram_server_first(&twin, mech, first, l1, RFC_SNONCE, &twin_why);
	FUZZ_CHECK(r == t && (r == PROTO_SCRAM_CONTINUE || r == PROTO_SCRAM_BAD));
	if (r == PROTO_SCRAM_BAD) {
		FUZZ_CHECK(why != NULL);
		check_server_ended(&st);
	} else {
		check_server_first_msg(&st);
		FUZZ_CHECK(st.msg_len == twin.msg_len && memcmp(st.msg, twin.msg, st.msg_len) == 0);
		why = NULL;
		r = proto_scram_server_final(&st, final, size - l1, &why);
		t = proto_scram_server_final(&twin, final, size - l1, &twin_why);
		FUZZ_CHECK(!(mock && r == PROTO_SCRAM_DONE) && !(!mock && t == PROTO_SCRAM_DONE));
		if (r == PROTO_SCRAM_DONE)
			check_server_done(&st, &s);
		else
			FUZZ_CHECK(why != NULL && (r == PROTO_SCRAM_FAIL || r == PROTO_SCRAM_BAD));
		if (r != PROTO_SCRAM_DONE)
			check_server_ended(&st);
	}
	proto_scram_server_clear(&st);
	proto_scram_server_clear(&twin);
	free(first);
	free(final);
}

/* The honest exchange, one byte maybe flipped on the way to the server. */
static void fuzz_honest(const uint8_t *data, size_t size)
{
	if (size < 4 || data[3] == 0)
		return;
	bool mock = data[0] & 1, flip_first = data[0] & 2, flip_final = data[0] & 4;
	size_t pos = get16(data + 1);
	uint8_t x = data[3];
	char *nonce = fuzz_cstring(data + 4, size - 4);
	ProtoScramSecret s = rfc_secret();
	ProtoScramClient cl;
	ProtoScramServer st;
	const char *why = NULL;
	proto_scram_client_init_keys(&cl, rfc_client_key, s.server_key);
	proto_scram_server_init(&st, &s, mock, NULL, 0);
	if (!proto_scram_client_first(&cl, nonce[0] ? nonce : NULL))
		goto out;
	uint8_t *msg = fuzz_copy((const uint8_t *)cl.msg, cl.msg_len);
	if (flip_first)
		msg[pos % cl.msg_len] ^= x;
	ProtoScramStatus r = proto_scram_server_first(&st, PROTO_SCRAM_SHA_256, msg, cl.msg_len, NULL, &why);
	free(msg);
	FUZZ_CHECK(flip_first || r == PROTO_SCRAM_CONTINUE);
	if (r != PROTO_SCRAM_CONTINUE)
		goto out;
	r = proto_scram_client_final(&cl, (const uint8_t *)st.msg, st.msg_len, &why);
	FUZZ_CHECK(flip_first || r == PROTO_SCRAM_CONTINUE);
	if (r != PROTO_SCRAM_CONTINUE)
		goto out;
	msg = fuzz_copy((const uint8_t *)cl.msg, cl.msg_len);
	if (flip_final)
		msg[pos % cl.msg_len] ^= x;
	r = proto_scram_server_final(&st, msg, cl.msg_len, &why);
	free(msg);
	bool flipped = flip_first || flip_final;
	FUZZ_CHECK((r == PROTO_SCRAM_DONE) == (!mock && !flipped));
	if (r == PROTO_SCRAM_DONE) {
		FUZZ_CHECK(memcmp(st.client_key, rfc_client_key, 32) == 0);
		FUZZ_CHECK(proto_scram_client_verify(&cl, (const uint8_t *)st.msg, st.msg_len, &why) ==
			   PROTO_SCRAM_DONE);
	} else if (!flipped) {
		FUZZ_CHECK(r == PROTO_SCRAM_FAIL); /* mock: runs to the end, then fails */
	}
out:
	proto_scram_client_clear(&cl);
	proto_scram_server_clear(&st);
	free(nonce);
}

/* The signature a server-final must carry: HMAC(ServerKey, bare "," first
 * "," without-proof), computed here. */
static void expected_signature(const ProtoScramClient *cl, const uint8_t *first, size_t n, const uint8_t key[32],
			       uint8_t out[32])
{
	size_t without = (size_t)(strstr(cl->msg, ",p=") - cl->msg);
	size_t bare = cl->client_first_bare_len, len = bare + 1 + n + 1 + without;
	uint8_t *am = malloc(len);
	unsigned int mlen;
	FUZZ_CHECK(am != NULL);
	memcpy(am, cl->client_first_bare, bare);
	am[bare] = ',';
	memcpy(am + bare + 1, first, n);
	am[bare + 1 + n] = ',';
	memcpy(am + bare + 2 + n, cl->msg, without);
	FUZZ_CHECK(HMAC(EVP_sha256(), key, 32, am, len, out, &mlen) != NULL && mlen == 32);
	free(am);
}

static void fuzz_client(const uint8_t *data, size_t size)
{
	if (size < 2)
		return;
	size_t l1 = get16(data);
	data += 2, size -= 2;
	l1 = l1 < size ? l1 : size;
	uint8_t *first = fuzz_copy(data, l1), *final = fuzz_copy(data + l1, size - l1);
	ProtoScramSecret s = rfc_secret();
	ProtoScramClient cl;
	const char *why = NULL;
	proto_scram_client_init_keys(&cl, rfc_client_key, s.server_key);
	FUZZ_CHECK(proto_scram_client_first(&cl, RFC_CNONCE));
	FUZZ_CHECK(strcmp(cl.msg, "n,,n=,r=" RFC_CNONCE) == 0);
	ProtoScramStatus r = proto_scram_client_final(&cl, first, l1, &why);
	FUZZ_CHECK(r == PROTO_SCRAM_CONTINUE || (r == PROTO_SCRAM_BAD && why && cl.msg_len == 0));
	if (r == PROTO_SCRAM_CONTINUE) {
		FUZZ_CHECK(cl.msg_len == strlen(cl.msg) && strncmp(cl.msg, "c=biws,r=" RFC_CNONCE, 29) == 0);
		const char *p = strstr(cl.msg, ",p=");
		FUZZ_CHECK(p && strlen(p) == 3 + 44);
		uint8_t want[32];
		expected_signature(&cl, first, l1, s.server_key, want);
		why = NULL;
		r = proto_scram_client_verify(&cl, final, size - l1, &why);
		if (r == PROTO_SCRAM_DONE) {
			char v[64] = "v=";
			EVP_EncodeBlock((unsigned char *)v + 2, want, 32);
			FUZZ_CHECK(size - l1 == 46 && memcmp(final, v, 46) == 0);
		} else {
			FUZZ_CHECK(why != NULL);
		}
	}
	FUZZ_CHECK(proto_scram_client_verify(&cl, final, size - l1, &why) == PROTO_SCRAM_BAD);
	proto_scram_client_clear(&cl);
	free(first);
	free(final);
}

/* A verifier that parses is written back to the same text (canonical
 * base64), unless its count has leading zeros. */
static void fuzz_secret(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstring(data, size);
	ProtoScramSecret s, again;
	if (proto_scram_secret_parse(text, &s)) {
		FUZZ_CHECK(s.iterations >= 1 && s.salt_len >= 1 && s.salt_len <= PROTO_SCRAM_SALT_MAX && !s.mock);
		char out[600], salt64[100], stored64[50], server64[50];
		EVP_EncodeBlock((unsigned char *)salt64, s.salt, (int)s.salt_len);
		EVP_EncodeBlock((unsigned char *)stored64, s.stored_key, 32);
		EVP_EncodeBlock((unsigned char *)server64, s.server_key, 32);
		snprintf(out, sizeof(out), "SCRAM-SHA-256$%d:%s$%s:%s", s.iterations, salt64, stored64, server64);
		FUZZ_CHECK(proto_scram_secret_parse(out, &again) && memcmp(&s, &again, sizeof(s)) == 0);
		FUZZ_CHECK(text[14] == '0' || strcmp(out, text) == 0);
	}
	free(text);
}

/* md5_hex_here: hex(md5(A || B)), computed here, in OUT (33 bytes). */
static void md5_hex_here(const void *a, size_t alen, const void *b, size_t blen, char *out)
{
	uint8_t *buf = malloc(alen + blen + 1), d[16];
	unsigned int len;
	FUZZ_CHECK(buf != NULL);
	memcpy(buf, a, alen);
	memcpy(buf + alen, b, blen);
	FUZZ_CHECK(EVP_Digest(buf, alen + blen, d, &len, EVP_md5(), NULL) == 1);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
	free(buf);
}

static void fuzz_md5(const uint8_t *data, size_t size)
{
	if (size < 4)
		return;
	uint8_t salt[4];
	memcpy(salt, data, 4);
	char *all = malloc(size - 4 + 3);
	FUZZ_CHECK(all != NULL);
	memcpy(all, data + 4, size - 4);
	memset(all + size - 4, 0, 3); /* at least three strings */
	const char *secret = all, *user = secret + strlen(secret) + 1, *resp = user + strlen(user) + 1;
	char hash[36], want[36];
	bool is_hash = strncmp(secret, "md5", 3) == 0 && strlen(secret) == 35 &&
		       strspn(secret + 3, "0123456789abcdef") == 32;
	if (is_hash)
		memcpy(hash, secret + 3, 33);
	else
		md5_hex_here(secret, strlen(secret), user, strlen(user), hash);
	memcpy(want, "md5", 3);
	md5_hex_here(hash, 32, salt, 4, want + 3);
	bool scram = strncmp(secret, "SCRAM-SHA-256$", 14) == 0;
	FUZZ_CHECK(proto_md5_check(secret, user, salt, want) == !scram);
	FUZZ_CHECK(proto_md5_check(secret, user, salt, resp) == (!scram && strcmp(resp, want) == 0));
	if (!is_hash && !scram) {
		char stored[PROTO_MD5_SECRET_SIZE];
		FUZZ_CHECK(proto_md5_secret(user, secret, stored) && strcmp(stored + 3, hash) == 0);
		FUZZ_CHECK(proto_md5_check(stored, "ignored", salt, want));
	}
	free(all);
}

/* The one message in B, of TYPE: its body must be BODY[0..LEN). */
static void check_rebuilt(const ProtoBuf *b, uint8_t type, const uint8_t *body, size_t len)
{
	ProtoHeader h;
	const char *why = NULL;
	FUZZ_CHECK(protobuf_ok(b));
	FUZZ_CHECK(proto_header_parse(b->data, b->len, UINT32_MAX, &h, &why) == PROTO_OK);
	FUZZ_CHECK(h.type == type && (size_t)h.len + 1 == b->len && proto_body_len(&h) == len);
	FUZZ_CHECK(len == 0 || memcmp(b->data + PROTO_HEADER_SIZE, body, len) == 0);
}

static void fuzz_sasl_initial(const uint8_t *body, size_t len)
{
	const char *mech, *why = NULL;
	const uint8_t *data;
	size_t n;
	if (proto_read_sasl_initial(body, len, &mech, &data, &n, &why) != PROTO_OK) {
		FUZZ_CHECK(why != NULL);
		return;
	}
	FUZZ_CHECK(mech == (const char *)body);
	size_t ml = strlen(mech) + 1 + 4;
	FUZZ_CHECK(data ? (data == body + ml && ml + n == len) : (n == 0 && ml == len));
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_sasl_initial_response(&b, mech, data, n);
	check_rebuilt(&b, PROTO_FE_PASSWORD, body, len);
	protobuf_free(&b);
}

static void fuzz_password(const uint8_t *body, size_t len)
{
	const char *text, *why = NULL;
	if (proto_read_password(body, len, &text, &why) != PROTO_OK) {
		FUZZ_CHECK(why != NULL);
		return;
	}
	FUZZ_CHECK(text == (const char *)body && strlen(text) + 1 == len);
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_password(&b, text);
	check_rebuilt(&b, PROTO_FE_PASSWORD, body, len);
	protobuf_free(&b);
}

static void fuzz_sasl_response(const uint8_t *body, size_t len)
{
	const uint8_t *data;
	const char *why = NULL;
	size_t n;
	FUZZ_CHECK(proto_read_sasl_response(body, len, &data, &n, &why) == PROTO_OK && data == body && n == len);
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_sasl_response(&b, data, n);
	check_rebuilt(&b, PROTO_FE_PASSWORD, body, len);
	protobuf_free(&b);
}

/* An Authentication body that reads is rebuilt by the builder of its code. */
static void fuzz_auth(const uint8_t *body, size_t len)
{
	enum { MAX_MECHS = 32 };
	uint32_t code;
	const uint8_t *rest;
	size_t n;
	const char *why = NULL;
	if (proto_read_auth(body, len, &code, &rest, &n, &why) != PROTO_OK) {
		FUZZ_CHECK(why != NULL);
		return;
	}
	FUZZ_CHECK(rest == body + 4 && n == len - 4);
	ProtoBuf b;
	protobuf_init(&b);
	const char *mechs[MAX_MECHS];
	size_t k = 0;
	switch (code) {
	case PROTO_AUTH_OK: proto_put_auth_ok(&b); break;
	case PROTO_AUTH_CLEARTEXT_PASSWORD: proto_put_auth_cleartext(&b); break;
	case PROTO_AUTH_MD5_PASSWORD: proto_put_auth_md5(&b, rest); break;
	case PROTO_AUTH_SASL:
		for (const char *p = (const char *)rest; *p && k < MAX_MECHS; p += strlen(p) + 1)
			mechs[k++] = p;
		for (size_t i = 0; i < k; i++)
			FUZZ_CHECK(proto_auth_sasl_has(rest, n, mechs[i]));
		if (k == MAX_MECHS)
			goto out;
		proto_put_auth_sasl(&b, mechs, k);
		break;
	case PROTO_AUTH_SASL_CONTINUE: proto_put_auth_sasl_continue(&b, rest, n); break;
	case PROTO_AUTH_SASL_FINAL: proto_put_auth_sasl_final(&b, rest, n); break;
	default: goto out;
	}
	check_rebuilt(&b, PROTO_BE_AUTHENTICATION, body, len);
out:
	protobuf_free(&b);
}

static const uint8_t selectors[] = {'s', 'h', 'c', 'p', 'm', 'I', 'R', 'P', 'A'};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	if (!memchr(selectors, sel, sizeof(selectors)))
		sel = selectors[sel % sizeof(selectors)];
	uint8_t *body = fuzz_copy(data + 1, size - 1);
	size_t len = size - 1;
	switch (sel) {
	case 's': fuzz_server(body, len); break;
	case 'h': fuzz_honest(body, len); break;
	case 'c': fuzz_client(body, len); break;
	case 'p': fuzz_secret(body, len); break;
	case 'm': fuzz_md5(body, len); break;
	case 'I': fuzz_sasl_initial(body, len); break;
	case 'R': fuzz_sasl_response(body, len); break;
	case 'P': fuzz_password(body, len); break;
	case 'A': fuzz_auth(body, len); break;
	default: FUZZ_CHECK(!"selector");
	}
	free(body);
	return 0;
}
