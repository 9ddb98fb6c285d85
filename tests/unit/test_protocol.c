/*
 * tests/unit/test_protocol.c: unit tests for protocol/ (parse.c, build.c,
 * options.c).
 *
 * Packets are assembled by a small test-side builder (Pkt) that writes
 * big-endian integers by hand, so the parsers are never checked only against
 * the module's own encoders. Every buffer handed to a parser is a heap copy
 * of exactly the bytes it is allowed to see: under AddressSanitizer a read
 * one byte past the end is a failure, not luck.
 *
 * Expected encodings of the builders carry their length fields as literal
 * numbers counted by hand (see the comment beside each one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

/* ---- test-side packet builder ------------------------------------------ */

/* Room for the largest startup packet (PROTO_STARTUP_MAX) and then some. */
#define PKT_CAP 16384

typedef struct Pkt {
	uint8_t data[PKT_CAP];
	size_t len;
} Pkt;

static void pkt_bytes(Pkt *p, const void *s, size_t n)
{
	assert_true(n <= PKT_CAP - p->len);
	memcpy(p->data + p->len, s, n);
	p->len += n;
}

static void pkt_u8(Pkt *p, uint8_t v) { pkt_bytes(p, &v, 1); }

static void pkt_u16(Pkt *p, uint16_t v)
{
	pkt_u8(p, (uint8_t)(v >> 8));
	pkt_u8(p, (uint8_t)v);
}

static void pkt_u32(Pkt *p, uint32_t v)
{
	pkt_u8(p, (uint8_t)(v >> 24));
	pkt_u8(p, (uint8_t)(v >> 16));
	pkt_u8(p, (uint8_t)(v >> 8));
	pkt_u8(p, (uint8_t)v);
}

/* A string and its terminating NUL. */
static void pkt_str(Pkt *p, const char *s) { pkt_bytes(p, s, strlen(s) + 1); }

/* A string without its NUL (for unterminated fields). */
static void pkt_raw(Pkt *p, const char *s) { pkt_bytes(p, s, strlen(s)); }

static void pkt_set_u32(Pkt *p, size_t at, uint32_t v)
{
	assert_true(at + 4 <= p->len);
	p->data[at] = (uint8_t)(v >> 24);
	p->data[at + 1] = (uint8_t)(v >> 16);
	p->data[at + 2] = (uint8_t)(v >> 8);
	p->data[at + 3] = (uint8_t)v;
}

/* Startup packet: length placeholder, then the version or request code. */
static void startup_begin(Pkt *p, uint32_t code)
{
	p->len = 0;
	pkt_u32(p, 0);
	pkt_u32(p, code);
}

static void startup_param(Pkt *p, const char *name, const char *value)
{
	pkt_str(p, name);
	pkt_str(p, value);
}

/* Writes the current size into the length field (no terminator added). */
static void startup_fix_len(Pkt *p) { pkt_set_u32(p, 0, (uint32_t)p->len); }

/* The final NUL after the pairs, then the length. */
static void startup_end(Pkt *p)
{
	pkt_u8(p, 0);
	startup_fix_len(p);
}

/* The StartupMessage most tests start from: user, database, application_name. */
static void startup_typical(Pkt *p)
{
	startup_begin(p, PROTO_VERSION_3_0);
	startup_param(p, "user", "alice");
	startup_param(p, "database", "shop");
	startup_param(p, "application_name", "psql");
	startup_end(p);
}

/* A request packet (SSLRequest, GSSENCRequest, CancelRequest) claiming
 * LEN bytes, zero-filled after the code so that all LEN bytes are at hand. */
static void request_packet(Pkt *p, uint32_t len, uint32_t code)
{
	startup_begin(p, code);
	while (p->len < len)
		pkt_u8(p, 0);
	pkt_set_u32(p, 0, len);
}

/* ErrorResponse/NoticeResponse field: code byte and NUL-terminated value. */
static void err_field(Pkt *p, char code, const char *value)
{
	pkt_u8(p, (uint8_t)code);
	pkt_str(p, value);
}

/* ---- exact-size heap copies --------------------------------------------- */

/* A heap copy of exactly N bytes of P, so that ASan reports any read past N.
 * The caller frees it. */
static uint8_t *heap_copy(const void *p, size_t n)
{
	uint8_t *c = malloc(n);
	assert_true(c != NULL || n == 0);
	if (n)
		memcpy(c, p, n);
	return c;
}

typedef struct StartupResult {
	uint8_t *copy; /* the parsed bytes; st's strings point here */
	ProtoStartup st;
	const char *why;
	ProtoStatus status;
} StartupResult;

/* Parses the first AVAIL bytes of P from an exact heap copy. The result's
 * fields are poisoned first, so a field the parser forgets shows. */
static void startup_parse_prefix(const Pkt *p, size_t avail, StartupResult *r)
{
	r->copy = heap_copy(p->data, avail);
	memset(&r->st, 0xA5, sizeof(r->st));
	r->why = NULL;
	r->status = proto_startup_parse(r->copy, avail, &r->st, &r->why);
}

static void startup_parse_all(const Pkt *p, StartupResult *r) { startup_parse_prefix(p, p->len, r); }

static void startup_result_free(StartupResult *r)
{
	free(r->copy);
	r->copy = NULL;
}

/* Asserts that the first AVAIL bytes of P are rejected with a reason. */
static void assert_startup_bad_prefix(const Pkt *p, size_t avail)
{
	StartupResult r;
	startup_parse_prefix(p, avail, &r);
	assert_int_equal(r.status, PROTO_BAD);
	assert_non_null(r.why);
	assert_true(r.why[0] != '\0');
	startup_result_free(&r);
}

static void assert_startup_bad(const Pkt *p) { assert_startup_bad_prefix(p, p->len); }

/* Asserts PROTO_NEED_MORE for every prefix of P shorter than the whole. */
static void assert_every_prefix_needs_more(const Pkt *p)
{
	for (size_t avail = 0; avail < p->len; avail++) {
		StartupResult r;
		startup_parse_prefix(p, avail, &r);
		if (r.status != PROTO_NEED_MORE)
			fail_msg("prefix of %zu/%zu bytes: status %d, want PROTO_NEED_MORE", avail, p->len,
				 (int)r.status);
		startup_result_free(&r);
	}
}

/* Asserts that B holds exactly the bytes of WANT. */
static void assert_buf_equals(const ProtoBuf *b, const Pkt *want)
{
	assert_true(protobuf_ok(b));
	assert_int_equal(b->len, want->len);
	assert_memory_equal(b->data, want->data, want->len);
}

/* Asserts that B holds exactly one message of TYPE and returns an exact heap
 * copy of its body (*LEN bytes), found through proto_header_parse. */
static uint8_t *only_message_body(const ProtoBuf *b, uint8_t type, size_t *len)
{
	ProtoHeader h;
	const char *why = NULL;
	assert_true(protobuf_ok(b));
	assert_int_equal(proto_header_parse(b->data, b->len, 1u << 20, &h, &why), PROTO_OK);
	assert_int_equal(h.type, type);
	assert_int_equal((size_t)h.len + 1, b->len);
	*len = proto_body_len(&h);
	return heap_copy(b->data + PROTO_HEADER_SIZE, *len);
}

/* ---- message type names ------------------------------------------------- */

typedef struct TypeName {
	int type;
	const char *name;
} TypeName;

static const TypeName fe_names[] = {
	{'B', "Bind"},
	{'C', "Close"},
	{'d', "CopyData"},
	{'c', "CopyDone"},
	{'f', "CopyFail"},
	{'D', "Describe"},
	{'E', "Execute"},
	{'H', "Flush"},
	{'F', "FunctionCall"},
	{'P', "Parse"},
	{'p', "PasswordMessage"},
	{'Q', "Query"},
	{'S', "Sync"},
	{'X', "Terminate"},
};

static const TypeName be_names[] = {
	{'R', "Authentication"},
	{'K', "BackendKeyData"},
	{'2', "BindComplete"},
	{'3', "CloseComplete"},
	{'C', "CommandComplete"},
	{'d', "CopyData"},
	{'c', "CopyDone"},
	{'G', "CopyInResponse"},
	{'H', "CopyOutResponse"},
	{'W', "CopyBothResponse"},
	{'D', "DataRow"},
	{'I', "EmptyQueryResponse"},
	{'E', "ErrorResponse"},
	{'V', "FunctionCallResponse"},
	{'v', "NegotiateProtocolVersion"},
	{'n', "NoData"},
	{'N', "NoticeResponse"},
	{'A', "NotificationResponse"},
	{'t', "ParameterDescription"},
	{'S', "ParameterStatus"},
	{'1', "ParseComplete"},
	{'s', "PortalSuspended"},
	{'Z', "ReadyForQuery"},
	{'T', "RowDescription"},
};

/* Every byte value: the table's name for the types in TABLE, "unknown" for
 * the rest; and "unknown" for ints outside a byte. */
static void check_type_names(const char *(*to_str)(int), const TypeName *table, size_t n)
{
	for (int t = 0; t < 256; t++) {
		const char *want = "unknown";
		for (size_t i = 0; i < n; i++)
			if (table[i].type == t)
				want = table[i].name;
		const char *got = to_str(t);
		assert_non_null(got);
		if (strcmp(got, want) != 0)
			fail_msg("type 0x%02x ('%c'): \"%s\", want \"%s\"", t, t >= 32 && t < 127 ? t : '?', got,
				 want);
	}
	assert_string_equal(to_str(-1), "unknown");
	assert_string_equal(to_str(256 + 'Q'), "unknown");
}

static void test_fe_type_names(void **state)
{
	check_type_names(proto_fe_type_to_str, fe_names, sizeof(fe_names) / sizeof(fe_names[0]));
}

static void test_be_type_names(void **state)
{
	check_type_names(proto_be_type_to_str, be_names, sizeof(be_names) / sizeof(be_names[0]));
}

/* ---- proto_header_parse ------------------------------------------------- */

static ProtoStatus header_parse_exact(const uint8_t *bytes, size_t avail, uint32_t max_len, ProtoHeader *h,
				      const char **why)
{
	uint8_t *copy = heap_copy(bytes, avail);
	*why = NULL;
	ProtoStatus st = proto_header_parse(copy, avail, max_len, h, why);
	free(copy);
	return st;
}

static void test_header_need_more_under_5_bytes(void **state)
{
	const uint8_t hdr[] = {'Q', 0, 0, 0, 13};
	for (size_t avail = 0; avail < PROTO_HEADER_SIZE; avail++) {
		ProtoHeader h;
		const char *why;
		assert_int_equal(header_parse_exact(hdr, avail, 1000, &h, &why), PROTO_NEED_MORE);
	}
}

static void test_header_length_under_4_bad(void **state)
{
	for (uint8_t len = 0; len < 4; len++) {
		const uint8_t hdr[] = {'Q', 0, 0, 0, len};
		ProtoHeader h;
		const char *why;
		assert_int_equal(header_parse_exact(hdr, sizeof(hdr), 1000, &h, &why), PROTO_BAD);
		assert_non_null(why);
	}
}

static void test_header_length_over_max_bad(void **state)
{
	const uint8_t over[] = {'Q', 0, 0, 0x03, 0xE9};       /* 1001 */
	const uint8_t huge[] = {'Q', 0xFF, 0xFF, 0xFF, 0xFF}; /* 4 GiB - 1 */
	ProtoHeader h;
	const char *why;
	assert_int_equal(header_parse_exact(over, sizeof(over), 1000, &h, &why), PROTO_BAD);
	assert_non_null(why);
	assert_int_equal(header_parse_exact(huge, sizeof(huge), 1000, &h, &why), PROTO_BAD);
	assert_non_null(why);
}

/* The header alone (5 bytes) is enough: the body is not looked at. */
static void test_header_exact_max_ok(void **state)
{
	const uint8_t hdr[] = {'Q', 0, 0, 0x03, 0xE8}; /* 1000 */
	ProtoHeader h;
	const char *why;
	assert_int_equal(header_parse_exact(hdr, sizeof(hdr), 1000, &h, &why), PROTO_OK);
	assert_int_equal(h.type, 'Q');
	assert_int_equal(h.len, 1000);
	assert_int_equal(proto_body_len(&h), 996);
}

static void test_header_empty_body_ok(void **state)
{
	const uint8_t sync[] = {'S', 0, 0, 0, 4};
	ProtoHeader h;
	const char *why;
	assert_int_equal(header_parse_exact(sync, sizeof(sync), 1000, &h, &why), PROTO_OK);
	assert_int_equal(h.type, 'S');
	assert_int_equal(h.len, 4);
	assert_int_equal(proto_body_len(&h), 0);
}

/* ---- proto_startup_parse: StartupMessage --------------------------------- */

static void test_startup_message_valid(void **state)
{
	Pkt p;
	StartupResult r;
	startup_typical(&p);
	/* 8 + "user\0alice\0" 11 + "database\0shop\0" 14 + "application_name\0psql\0" 22 + 1 */
	assert_int_equal(p.len, 56);
	startup_parse_all(&p, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.kind, PROTO_STARTUP_MESSAGE);
	assert_int_equal(r.st.packet_len, 56);
	assert_int_equal(r.st.version, PROTO_VERSION_3_0);
	assert_int_equal(r.st.n_params, 3);
	assert_string_equal(r.st.names[0], "user");
	assert_string_equal(r.st.values[0], "alice");
	assert_string_equal(r.st.names[1], "database");
	assert_string_equal(r.st.values[1], "shop");
	assert_string_equal(r.st.names[2], "application_name");
	assert_string_equal(r.st.values[2], "psql");
	/* The strings point into the parsed buffer, not into copies. */
	assert_ptr_equal(r.st.names[0], (const char *)r.copy + 8);
	startup_result_free(&r);
}

static void test_startup_get(void **state)
{
	Pkt p;
	StartupResult r;
	startup_typical(&p);
	startup_parse_all(&p, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_string_equal(proto_startup_get(&r.st, "user"), "alice");
	assert_string_equal(proto_startup_get(&r.st, "database"), "shop");
	assert_string_equal(proto_startup_get(&r.st, "application_name"), "psql");
	assert_null(proto_startup_get(&r.st, "options"));
	assert_null(proto_startup_get(&r.st, "use")); /* no prefix match */
	startup_result_free(&r);
}

static void test_startup_message_every_truncation_needs_more(void **state)
{
	Pkt p;
	startup_typical(&p);
	assert_every_prefix_needs_more(&p);
}

/* Bytes after the packet are the caller's: packet_len says how many to drain. */
static void test_startup_message_followed_by_more_bytes(void **state)
{
	Pkt p;
	StartupResult r;
	startup_typical(&p);
	size_t packet_len = p.len;
	pkt_raw(&p, "Qxyz");
	startup_parse_all(&p, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.packet_len, packet_len);
	assert_int_equal(r.st.n_params, 3);
	startup_result_free(&r);
}

static void test_startup_protocol_2_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION(2, 0));
	startup_param(&p, "user", "alice");
	startup_end(&p);
	assert_startup_bad(&p);
}

static void test_startup_protocol_4_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION(4, 0));
	startup_param(&p, "user", "alice");
	startup_end(&p);
	assert_startup_bad(&p);
}

static void test_startup_minor_version_accepted(void **state)
{
	Pkt p;
	StartupResult r;
	startup_begin(&p, PROTO_VERSION(3, 2));
	startup_param(&p, "user", "alice");
	startup_param(&p, "_pq_.some_option", "on");
	startup_end(&p);
	startup_parse_all(&p, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.kind, PROTO_STARTUP_MESSAGE);
	assert_int_equal(r.st.version, 0x00030002);
	assert_string_equal(proto_startup_get(&r.st, "_pq_.some_option"), "on");
	startup_result_free(&r);
}

static void test_startup_length_under_8_bad(void **state)
{
	for (uint32_t len = 0; len < 8; len++) {
		Pkt p;
		startup_begin(&p, PROTO_VERSION_3_0);
		pkt_set_u32(&p, 0, len);
		assert_startup_bad(&p);
	}
}

/* Only the first 8 bytes are given: an oversized length must be refused at
 * once, not waited for (a client could claim 4 GiB). */
static void test_startup_length_over_max_bad(void **state)
{
	const uint32_t lens[] = {PROTO_STARTUP_MAX + 1, 0x7FFFFFFF, 0xFFFFFFFF};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		Pkt p;
		startup_begin(&p, PROTO_VERSION_3_0);
		pkt_set_u32(&p, 0, lens[i]);
		assert_startup_bad(&p);
	}
}

static void test_startup_length_exact_max_ok(void **state)
{
	Pkt p;
	StartupResult r;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_param(&p, "user", "alice");
	/* Fill "options" so that the packet, with its two NULs, is exactly the max. */
	pkt_str(&p, "options");
	while (p.len < PROTO_STARTUP_MAX - 2)
		pkt_u8(&p, 'x');
	pkt_u8(&p, 0);
	startup_end(&p);
	assert_int_equal(p.len, PROTO_STARTUP_MAX);
	startup_parse_all(&p, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.packet_len, PROTO_STARTUP_MAX);
	assert_int_equal(strlen(proto_startup_get(&r.st, "options")), PROTO_STARTUP_MAX - 2 - 8 - 11 - 8);
	startup_result_free(&r);
}

static void test_startup_missing_terminator_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_param(&p, "user", "alice");
	startup_fix_len(&p); /* no final NUL */
	assert_startup_bad(&p);
}

static void test_startup_no_params_no_terminator_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_fix_len(&p); /* length 8: nothing after the version */
	assert_startup_bad(&p);
}

static void test_startup_unterminated_name_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_param(&p, "user", "alice");
	pkt_raw(&p, "database");
	startup_fix_len(&p);
	assert_startup_bad(&p);
}

static void test_startup_name_without_value_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_param(&p, "user", "alice");
	pkt_str(&p, "database");
	startup_fix_len(&p);
	assert_startup_bad(&p);
}

static void test_startup_unterminated_value_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_param(&p, "user", "alice");
	pkt_str(&p, "database");
	pkt_raw(&p, "shop");
	startup_fix_len(&p);
	assert_startup_bad(&p);
}

static void test_startup_trailing_bytes_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_param(&p, "user", "alice");
	pkt_u8(&p, 0);
	pkt_raw(&p, "junk");
	startup_fix_len(&p);
	assert_startup_bad(&p);
}

static void test_startup_no_user_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_param(&p, "database", "shop");
	startup_end(&p);
	assert_startup_bad(&p);
}

static void test_startup_no_params_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_end(&p);
	assert_startup_bad(&p);
}

static void test_startup_empty_user_bad(void **state)
{
	Pkt p;
	startup_begin(&p, PROTO_VERSION_3_0);
	startup_param(&p, "user", "");
	startup_param(&p, "database", "shop");
	startup_end(&p);
	assert_startup_bad(&p);
}

/* "user" plus N - 1 more parameters. */
static void startup_with_n_params(Pkt *p, size_t n)
{
	startup_begin(p, PROTO_VERSION_3_0);
	startup_param(p, "user", "alice");
	for (size_t i = 1; i < n; i++) {
		char name[24]; /* "p" and any size_t */
		snprintf(name, sizeof(name), "p%zu", i);
		startup_param(p, name, "v");
	}
	startup_end(p);
}

static void test_startup_max_params_ok(void **state)
{
	Pkt p;
	StartupResult r;
	startup_with_n_params(&p, PROTO_STARTUP_MAX_PARAMS);
	startup_parse_all(&p, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.n_params, PROTO_STARTUP_MAX_PARAMS);
	assert_string_equal(r.st.names[PROTO_STARTUP_MAX_PARAMS - 1], "p63");
	startup_result_free(&r);
}

static void test_startup_too_many_params_bad(void **state)
{
	Pkt p;
	startup_with_n_params(&p, PROTO_STARTUP_MAX_PARAMS + 1);
	assert_true(p.len <= PROTO_STARTUP_MAX); /* refused for the count, not the size */
	assert_startup_bad(&p);
}

/* ---- proto_startup_parse: request packets -------------------------------- */

static void test_ssl_request(void **state)
{
	Pkt p;
	StartupResult r;
	request_packet(&p, 8, PROTO_SSL_REQUEST_CODE);
	assert_int_equal(PROTO_SSL_REQUEST_CODE, 80877103); /* the number in the docs */
	startup_parse_all(&p, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.kind, PROTO_SSL_REQUEST);
	assert_int_equal(r.st.packet_len, 8);
	startup_result_free(&r);
}

static void test_gssenc_request(void **state)
{
	Pkt p;
	StartupResult r;
	request_packet(&p, 8, PROTO_GSSENC_REQUEST_CODE);
	assert_int_equal(PROTO_GSSENC_REQUEST_CODE, 80877104);
	startup_parse_all(&p, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.kind, PROTO_GSSENC_REQUEST);
	assert_int_equal(r.st.packet_len, 8);
	startup_result_free(&r);
}

static void test_cancel_request(void **state)
{
	Pkt p;
	StartupResult r;
	startup_begin(&p, PROTO_CANCEL_REQUEST_CODE);
	pkt_u32(&p, 0x01020304);
	pkt_u32(&p, 0xDEADBEEF);
	startup_fix_len(&p);
	assert_int_equal(PROTO_CANCEL_REQUEST_CODE, 80877102);
	startup_parse_all(&p, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.kind, PROTO_CANCEL_REQUEST);
	assert_int_equal(r.st.packet_len, 16);
	assert_int_equal(r.st.cancel_pid, 0x01020304);
	assert_int_equal(r.st.cancel_key, 0xDEADBEEF);
	startup_result_free(&r);
}

static void test_request_every_truncation_needs_more(void **state)
{
	Pkt p;
	request_packet(&p, 8, PROTO_SSL_REQUEST_CODE);
	assert_every_prefix_needs_more(&p);
	request_packet(&p, 8, PROTO_GSSENC_REQUEST_CODE);
	assert_every_prefix_needs_more(&p);
	request_packet(&p, 16, PROTO_CANCEL_REQUEST_CODE);
	assert_every_prefix_needs_more(&p);
}

static void test_ssl_request_wrong_length_bad(void **state)
{
	Pkt p;
	request_packet(&p, 12, PROTO_SSL_REQUEST_CODE);
	assert_startup_bad(&p);
	request_packet(&p, 16, PROTO_SSL_REQUEST_CODE);
	assert_startup_bad(&p);
}

static void test_gssenc_request_wrong_length_bad(void **state)
{
	Pkt p;
	request_packet(&p, 12, PROTO_GSSENC_REQUEST_CODE);
	assert_startup_bad(&p);
	request_packet(&p, 16, PROTO_GSSENC_REQUEST_CODE);
	assert_startup_bad(&p);
}

static void test_cancel_request_wrong_length_bad(void **state)
{
	const uint32_t lens[] = {8, 12, 15, 17, 20};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		Pkt p;
		request_packet(&p, lens[i], PROTO_CANCEL_REQUEST_CODE);
		assert_startup_bad(&p);
	}
}

/* ---- ProtoReader -------------------------------------------------------- */

static void test_reader_reads_values_in_network_order(void **state)
{
	Pkt p = {.len = 0};
	pkt_u8(&p, 0x7F);
	pkt_u16(&p, 0x1234);
	pkt_u32(&p, 0xDEADBEEF);
	pkt_str(&p, "hi");
	pkt_u16(&p, 0xFFFF); /* skipped */
	uint8_t *body = heap_copy(p.data, p.len);
	ProtoReader r;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	const char *s;
	proto_reader_init(&r, body, p.len);
	assert_true(proto_get_uint8(&r, &u8));
	assert_int_equal(u8, 0x7F);
	assert_true(proto_get_uint16(&r, &u16));
	assert_int_equal(u16, 0x1234);
	assert_true(proto_get_uint32(&r, &u32));
	assert_int_equal(u32, 0xDEADBEEF);
	assert_true(proto_get_cstring(&r, &s));
	assert_string_equal(s, "hi");
	assert_ptr_equal(s, (const char *)body + 7);
	assert_false(proto_reader_done(&r)); /* two bytes left */
	assert_true(proto_get_skip(&r, 2));
	assert_true(proto_reader_done(&r));
	assert_false(r.bad);
	free(body);
}

static void test_reader_uint8_past_end(void **state)
{
	uint8_t *body = heap_copy("", 0);
	ProtoReader r;
	uint8_t v;
	proto_reader_init(&r, body, 0);
	assert_false(proto_get_uint8(&r, &v));
	assert_true(r.bad);
	assert_false(proto_reader_done(&r));
	free(body);
}

static void test_reader_uint16_past_end(void **state)
{
	uint8_t *body = heap_copy("\x12", 1);
	ProtoReader r;
	uint16_t v;
	proto_reader_init(&r, body, 1);
	assert_false(proto_get_uint16(&r, &v));
	assert_true(r.bad);
	assert_false(proto_reader_done(&r));
	free(body);
}

static void test_reader_uint32_past_end(void **state)
{
	uint8_t *body = heap_copy("\x12\x34\x56", 3);
	ProtoReader r;
	uint32_t v;
	proto_reader_init(&r, body, 3);
	assert_false(proto_get_uint32(&r, &v));
	assert_true(r.bad);
	assert_false(proto_reader_done(&r));
	free(body);
}

static void test_reader_cstring_unterminated(void **state)
{
	uint8_t *body = heap_copy("abc", 3);
	ProtoReader r;
	const char *s;
	proto_reader_init(&r, body, 3);
	assert_false(proto_get_cstring(&r, &s));
	assert_true(r.bad);
	assert_false(proto_reader_done(&r));
	free(body);
}

static void test_reader_cstring_at_end(void **state)
{
	uint8_t *body = heap_copy("a", 2); /* "a\0" */
	ProtoReader r;
	const char *s;
	proto_reader_init(&r, body, 2);
	assert_true(proto_get_cstring(&r, &s));
	assert_string_equal(s, "a");
	assert_true(proto_reader_done(&r));
	assert_false(proto_get_cstring(&r, &s)); /* nothing left, not even a NUL */
	assert_true(r.bad);
	free(body);
}

static void test_reader_skip_past_end(void **state)
{
	uint8_t *body = heap_copy("abc", 3);
	ProtoReader r;
	proto_reader_init(&r, body, 3);
	assert_false(proto_get_skip(&r, 4));
	assert_true(r.bad);
	proto_reader_init(&r, body, 3);
	assert_false(proto_get_skip(&r, SIZE_MAX)); /* no pointer wrap-around */
	assert_true(r.bad);
	proto_reader_init(&r, body, 3);
	assert_true(proto_get_skip(&r, 3));
	assert_true(proto_reader_done(&r));
	free(body);
}

/* After one failed get, every get fails, even one that would fit. */
static void test_reader_bad_is_sticky(void **state)
{
	uint8_t *body = heap_copy("a\0bc", 4);
	ProtoReader r;
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	const char *s;
	proto_reader_init(&r, body, 4);
	assert_false(proto_get_skip(&r, 5));
	assert_true(r.bad);
	assert_false(proto_get_uint8(&r, &u8));
	assert_false(proto_get_uint16(&r, &u16));
	assert_false(proto_get_cstring(&r, &s));
	assert_false(proto_get_skip(&r, 0));
	assert_true(r.bad);
	assert_false(proto_reader_done(&r));
	proto_reader_init(&r, body, 4);
	assert_false(proto_get_uint32(&r, &u32) && proto_get_uint8(&r, &u8)); /* second one past the end */
	assert_true(r.bad);
	free(body);
}

/* ---- body parsers ------------------------------------------------------- */

static void test_ready_for_query_valid_statuses(void **state)
{
	const char statuses[] = {'I', 'T', 'E'};
	for (size_t i = 0; i < sizeof(statuses); i++) {
		uint8_t *body = heap_copy(&statuses[i], 1);
		char st = 0;
		assert_true(proto_ready_for_query_parse(body, 1, &st));
		assert_int_equal(st, statuses[i]);
		free(body);
	}
}

static void test_ready_for_query_other_byte_false(void **state)
{
	for (int c = 0; c < 256; c++) {
		if (c == 'I' || c == 'T' || c == 'E')
			continue;
		uint8_t byte = (uint8_t)c;
		uint8_t *body = heap_copy(&byte, 1);
		char st;
		if (proto_ready_for_query_parse(body, 1, &st))
			fail_msg("status byte 0x%02x accepted", c);
		free(body);
	}
}

static void test_ready_for_query_wrong_length_false(void **state)
{
	uint8_t *empty = heap_copy("", 0);
	uint8_t *two = heap_copy("II", 2);
	char st;
	assert_false(proto_ready_for_query_parse(empty, 0, &st));
	assert_false(proto_ready_for_query_parse(two, 2, &st));
	free(empty);
	free(two);
}

/* The body of a real ErrorResponse (as PostgreSQL 16 sends for a bad column),
 * with a localized severity and the fields pgflip does not read. */
static void error_body_typical(Pkt *p)
{
	p->len = 0;
	err_field(p, 'S', "FEHLER");
	err_field(p, 'V', "ERROR");
	err_field(p, 'C', "42703");
	err_field(p, 'M', "column \"nme\" does not exist");
	err_field(p, 'D', "some detail");
	err_field(p, 'H', "Perhaps you meant to reference the column \"users.name\".");
	err_field(p, 'P', "8");
	err_field(p, 'F', "parse_relation.c");
	err_field(p, 'L', "3722");
	err_field(p, 'R', "errorMissingColumn");
	pkt_u8(p, 0);
}

static void test_error_parse_fields(void **state)
{
	Pkt p;
	error_body_typical(&p);
	uint8_t *body = heap_copy(p.data, p.len);
	ProtoErrorFields f;
	assert_true(proto_error_parse(body, p.len, &f));
	assert_string_equal(f.severity, "ERROR");
	assert_string_equal(f.sqlstate, "42703");
	assert_string_equal(f.message, "column \"nme\" does not exist");
	assert_string_equal(f.detail, "some detail");
	assert_string_equal(f.hint, "Perhaps you meant to reference the column \"users.name\".");
	free(body);
}

/* V wins over S whichever comes first. */
static void test_error_parse_v_preferred_over_s(void **state)
{
	Pkt p = {.len = 0};
	err_field(&p, 'V', "FATAL");
	err_field(&p, 'S', "SCHWERWIEGEND");
	err_field(&p, 'M', "m");
	pkt_u8(&p, 0);
	uint8_t *body = heap_copy(p.data, p.len);
	ProtoErrorFields f;
	assert_true(proto_error_parse(body, p.len, &f));
	assert_string_equal(f.severity, "FATAL");
	free(body);
}

/* Before 9.6 servers sent only S; it is then the severity. */
static void test_error_parse_s_only(void **state)
{
	Pkt p = {.len = 0};
	err_field(&p, 'S', "ERROR");
	err_field(&p, 'M', "m");
	pkt_u8(&p, 0);
	uint8_t *body = heap_copy(p.data, p.len);
	ProtoErrorFields f;
	assert_true(proto_error_parse(body, p.len, &f));
	assert_string_equal(f.severity, "ERROR");
	assert_null(f.sqlstate);
	assert_null(f.detail);
	assert_null(f.hint);
	free(body);
}

static void test_error_parse_empty_fields_ok(void **state)
{
	uint8_t *body = heap_copy("", 1); /* just the terminator */
	ProtoErrorFields f;
	memset(&f, 0xA5, sizeof(f));
	assert_true(proto_error_parse(body, 1, &f));
	assert_null(f.severity);
	assert_null(f.sqlstate);
	assert_null(f.message);
	assert_null(f.detail);
	assert_null(f.hint);
	free(body);
}

static void test_error_parse_missing_terminator_false(void **state)
{
	Pkt p;
	error_body_typical(&p);
	p.len--; /* drop the final NUL */
	uint8_t *body = heap_copy(p.data, p.len);
	ProtoErrorFields f;
	assert_false(proto_error_parse(body, p.len, &f));
	free(body);
}

static void test_error_parse_unterminated_field_false(void **state)
{
	Pkt p = {.len = 0};
	err_field(&p, 'S', "ERROR");
	pkt_u8(&p, 'M');
	pkt_raw(&p, "no end");
	uint8_t *body = heap_copy(p.data, p.len);
	ProtoErrorFields f;
	assert_false(proto_error_parse(body, p.len, &f));
	free(body);
}

static void test_error_parse_code_without_value_false(void **state)
{
	Pkt p = {.len = 0};
	err_field(&p, 'S', "ERROR");
	pkt_u8(&p, 'M');
	uint8_t *body = heap_copy(p.data, p.len);
	ProtoErrorFields f;
	assert_false(proto_error_parse(body, p.len, &f));
	free(body);
}

static void test_error_parse_trailing_bytes_false(void **state)
{
	Pkt p;
	error_body_typical(&p);
	pkt_raw(&p, "x");
	uint8_t *body = heap_copy(p.data, p.len);
	ProtoErrorFields f;
	assert_false(proto_error_parse(body, p.len, &f));
	free(body);
}

static void test_error_parse_empty_body_false(void **state)
{
	uint8_t *body = heap_copy("", 0);
	ProtoErrorFields f;
	assert_false(proto_error_parse(body, 0, &f));
	free(body);
}

static void test_query_parse_ok(void **state)
{
	Pkt p = {.len = 0};
	pkt_str(&p, "SELECT 1");
	uint8_t *body = heap_copy(p.data, p.len);
	const char *sql = NULL;
	assert_true(proto_query_parse(body, p.len, &sql));
	assert_string_equal(sql, "SELECT 1");
	assert_ptr_equal(sql, (const char *)body);
	free(body);
}

static void test_query_parse_empty_query_ok(void **state)
{
	uint8_t *body = heap_copy("", 1);
	const char *sql = NULL;
	assert_true(proto_query_parse(body, 1, &sql));
	assert_string_equal(sql, "");
	free(body);
}

static void test_query_parse_trailing_junk_false(void **state)
{
	Pkt p = {.len = 0};
	pkt_str(&p, "SELECT 1");
	pkt_raw(&p, "; DROP");
	uint8_t *body = heap_copy(p.data, p.len);
	const char *sql;
	assert_false(proto_query_parse(body, p.len, &sql));
	free(body);
}

static void test_query_parse_unterminated_false(void **state)
{
	uint8_t *body = heap_copy("SELECT 1", 8);
	uint8_t *empty = heap_copy("", 0);
	const char *sql;
	assert_false(proto_query_parse(body, 8, &sql));
	assert_false(proto_query_parse(empty, 0, &sql));
	free(body);
	free(empty);
}

/* Parse body: name, SQL, int16 count, then that many int32 type OIDs. */
static void parse_body(Pkt *p, const char *name, const char *sql, uint16_t n_declared, size_t n_oids)
{
	p->len = 0;
	pkt_str(p, name);
	pkt_str(p, sql);
	pkt_u16(p, n_declared);
	for (size_t i = 0; i < n_oids; i++)
		pkt_u32(p, 23 + (uint32_t)i); /* int4, int8 ... */
}

static void test_parse_parse_with_param_oids_ok(void **state)
{
	Pkt p;
	parse_body(&p, "stmt1", "SELECT $1::int + $2", 2, 2);
	uint8_t *body = heap_copy(p.data, p.len);
	const char *name = NULL, *sql = NULL;
	assert_true(proto_parse_parse(body, p.len, &name, &sql));
	assert_string_equal(name, "stmt1");
	assert_string_equal(sql, "SELECT $1::int + $2");
	free(body);
}

static void test_parse_parse_unnamed_no_oids_ok(void **state)
{
	Pkt p;
	parse_body(&p, "", "SELECT 1", 0, 0);
	uint8_t *body = heap_copy(p.data, p.len);
	const char *name = NULL, *sql = NULL;
	assert_true(proto_parse_parse(body, p.len, &name, &sql));
	assert_string_equal(name, "");
	assert_string_equal(sql, "SELECT 1");
	free(body);
}

static void test_parse_parse_oid_count_over_body_false(void **state)
{
	Pkt p;
	parse_body(&p, "s", "SELECT $1, $2, $3", 3, 2);
	uint8_t *body = heap_copy(p.data, p.len);
	const char *name, *sql;
	assert_false(proto_parse_parse(body, p.len, &name, &sql));
	free(body);
	parse_body(&p, "s", "SELECT $1", 0xFFFF, 1);
	body = heap_copy(p.data, p.len);
	assert_false(proto_parse_parse(body, p.len, &name, &sql));
	free(body);
}

static void test_parse_parse_oid_count_under_body_false(void **state)
{
	Pkt p;
	parse_body(&p, "s", "SELECT $1", 1, 2);
	uint8_t *body = heap_copy(p.data, p.len);
	const char *name, *sql;
	assert_false(proto_parse_parse(body, p.len, &name, &sql));
	free(body);
}

static void test_parse_parse_missing_count_false(void **state)
{
	Pkt p = {.len = 0};
	pkt_str(&p, "s");
	pkt_str(&p, "SELECT 1");
	pkt_u8(&p, 0); /* half of the int16 */
	uint8_t *body = heap_copy(p.data, p.len);
	const char *name, *sql;
	assert_false(proto_parse_parse(body, p.len, &name, &sql));
	free(body);
}

static void test_parameter_status_parse_ok(void **state)
{
	Pkt p = {.len = 0};
	pkt_str(&p, "server_version");
	pkt_str(&p, "16.2");
	uint8_t *body = heap_copy(p.data, p.len);
	const char *name = NULL, *value = NULL;
	assert_true(proto_parameter_status_parse(body, p.len, &name, &value));
	assert_string_equal(name, "server_version");
	assert_string_equal(value, "16.2");
	free(body);
}

static void test_parameter_status_parse_missing_value_false(void **state)
{
	Pkt p = {.len = 0};
	pkt_str(&p, "server_version");
	pkt_raw(&p, "16.2");
	uint8_t *body = heap_copy(p.data, p.len);
	const char *name, *value;
	assert_false(proto_parameter_status_parse(body, p.len, &name, &value));
	free(body);
	p.len = 0;
	pkt_str(&p, "server_version");
	body = heap_copy(p.data, p.len);
	assert_false(proto_parameter_status_parse(body, p.len, &name, &value));
	free(body);
}

static void test_parameter_status_parse_trailing_false(void **state)
{
	Pkt p = {.len = 0};
	pkt_str(&p, "TimeZone");
	pkt_str(&p, "UTC");
	pkt_str(&p, "extra");
	uint8_t *body = heap_copy(p.data, p.len);
	const char *name, *value;
	assert_false(proto_parameter_status_parse(body, p.len, &name, &value));
	free(body);
}

static void test_command_complete_parse_ok(void **state)
{
	Pkt p = {.len = 0};
	pkt_str(&p, "INSERT 0 3");
	uint8_t *body = heap_copy(p.data, p.len);
	const char *tag = NULL;
	assert_true(proto_command_complete_parse(body, p.len, &tag));
	assert_string_equal(tag, "INSERT 0 3");
	free(body);
}

static void test_command_complete_parse_malformed_false(void **state)
{
	Pkt p = {.len = 0};
	pkt_str(&p, "SET");
	pkt_raw(&p, "x");
	uint8_t *trailing = heap_copy(p.data, p.len);
	uint8_t *unterminated = heap_copy("SELECT 1", 8);
	const char *tag;
	assert_false(proto_command_complete_parse(trailing, p.len, &tag));
	assert_false(proto_command_complete_parse(unterminated, 8, &tag));
	free(trailing);
	free(unterminated);
}

static void test_backend_key_data_parse_ok(void **state)
{
	Pkt p = {.len = 0};
	pkt_u32(&p, 4242);
	pkt_u32(&p, 0xDEADBEEF);
	uint8_t *body = heap_copy(p.data, p.len);
	uint32_t pid = 0, key = 0;
	assert_true(proto_backend_key_data_parse(body, p.len, &pid, &key));
	assert_int_equal(pid, 4242);
	assert_int_equal(key, 0xDEADBEEF);
	free(body);
}

/* Protocol 3.0 keys are exactly 4 bytes: shorter, longer and empty bodies fail. */
static void test_backend_key_data_parse_wrong_length_false(void **state)
{
	static const uint8_t bytes[9] = {0, 0, 0, 1, 0, 0, 0, 2, 3};
	const size_t lens[] = {0, 4, 7, 9};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint8_t *body = heap_copy(bytes, lens[i]);
		uint32_t pid, key;
		assert_false(proto_backend_key_data_parse(body, lens[i], &pid, &key));
		free(body);
	}
}

/* The builder's output reads back through the reader. */
static void test_negotiate_protocol_version_parse_ok(void **state)
{
	ProtoBuf b;
	const char *const options[] = {"_pq_.foo", "_pq_.bar"};
	protobuf_init(&b);
	proto_put_negotiate_protocol_version(&b, 0, options, 2);
	size_t len;
	uint8_t *body = only_message_body(&b, 'v', &len);
	uint32_t version = 0, n = 0;
	assert_true(proto_negotiate_protocol_version_parse(body, len, &version, &n));
	assert_int_equal(version, PROTO_VERSION_3_0);
	assert_int_equal(n, 2);
	free(body);
	protobuf_free(&b);
}

static void test_negotiate_protocol_version_parse_no_options_ok(void **state)
{
	Pkt p = {.len = 0};
	pkt_u32(&p, PROTO_VERSION(3, 1));
	pkt_u32(&p, 0);
	uint8_t *body = heap_copy(p.data, p.len);
	uint32_t version, n = 7;
	assert_true(proto_negotiate_protocol_version_parse(body, p.len, &version, &n));
	assert_int_equal(version, PROTO_VERSION(3, 1));
	assert_int_equal(n, 0);
	free(body);
}

/* A count past the body, an unterminated name, bytes after the last name,
 * a body cut inside the count: all malformed. */
static void test_negotiate_protocol_version_parse_malformed_false(void **state)
{
	Pkt p[5];
	for (size_t i = 0; i < 5; i++) {
		p[i].len = 0;
		pkt_u32(&p[i], PROTO_VERSION_3_0);
	}
	pkt_u32(&p[0], 0x7fffffff); /* a count no body can hold */
	pkt_str(&p[0], "_pq_.a");
	pkt_u32(&p[1], 2);          /* says two, has one */
	pkt_str(&p[1], "_pq_.a");
	pkt_u32(&p[2], 1);
	pkt_raw(&p[2], "_pq_.a");   /* no NUL */
	pkt_u32(&p[3], 1);
	pkt_str(&p[3], "_pq_.a");
	pkt_u8(&p[3], 'x');         /* trailing */
	pkt_u8(&p[4], 0);           /* a third of the count */
	pkt_u8(&p[4], 0);
	for (size_t i = 0; i < 5; i++) {
		uint8_t *body = heap_copy(p[i].data, p[i].len);
		uint32_t version, n;
		if (proto_negotiate_protocol_version_parse(body, p[i].len, &version, &n))
			fail_msg("case %zu parsed", i);
		free(body);
	}
}

/* ---- builders: exact encodings ------------------------------------------ */

static void test_put_auth_ok_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_auth_ok(&b);
	pkt_u8(&want, 'R');
	pkt_u32(&want, 8); /* 4 + int32 0 */
	pkt_u32(&want, 0);
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

static void test_put_parameter_status_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_parameter_status(&b, "client_encoding", "UTF8");
	pkt_u8(&want, 'S');
	pkt_u32(&want, 25); /* 4 + "client_encoding\0" 16 + "UTF8\0" 5 */
	pkt_str(&want, "client_encoding");
	pkt_str(&want, "UTF8");
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

static void test_put_backend_key_data_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_backend_key_data(&b, 0x01020304, 0xA0B0C0D0);
	pkt_u8(&want, 'K');
	pkt_u32(&want, 12); /* 4 + pid 4 + key 4 */
	pkt_bytes(&want, "\x01\x02\x03\x04\xA0\xB0\xC0\xD0", 8);
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

static void test_put_ready_for_query_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_ready_for_query(&b, 'T');
	pkt_u8(&want, 'Z');
	pkt_u32(&want, 5); /* 4 + status byte */
	pkt_u8(&want, 'T');
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

/* The fields S, V, C, M in this order, then the terminating zero byte. */
static void want_error_fields(Pkt *want, uint8_t type, uint32_t len, const char *severity, const char *sqlstate,
			      const char *message)
{
	want->len = 0;
	pkt_u8(want, type);
	pkt_u32(want, len);
	err_field(want, 'S', severity);
	err_field(want, 'V', severity);
	err_field(want, 'C', sqlstate);
	err_field(want, 'M', message);
	pkt_u8(want, 0);
}

static void test_put_error_bytes(void **state)
{
	ProtoBuf b;
	Pkt want;
	protobuf_init(&b);
	proto_put_error(&b, "FATAL", "28000", "role \"%s\" does not exist", "bob");
	/* 4 + S"FATAL\0" 7 + V"FATAL\0" 7 + C"28000\0" 7
	 *   + M"role \"bob\" does not exist\0" 27 + 0 1 */
	want_error_fields(&want, 'E', 53, "FATAL", "28000", "role \"bob\" does not exist");
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

static void test_put_notice_bytes(void **state)
{
	ProtoBuf b;
	Pkt want;
	protobuf_init(&b);
	proto_put_notice(&b, "WARNING", "01000", "version %d is retired", 3);
	/* 4 + S"WARNING\0" 9 + V"WARNING\0" 9 + C"01000\0" 7
	 *   + M"version 3 is retired\0" 22 + 0 1 */
	want_error_fields(&want, 'N', 52, "WARNING", "01000", "version 3 is retired");
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

/* RowDescription, DataRow, CommandComplete and EmptyQueryResponse, as the
 * protocol's "Message Formats" lays them out (text format, no table). */
static void test_put_result_set_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {0};
	protobuf_init(&b);
	const char *names[] = {"list", "items"};
	const uint32_t types[] = {PROTO_OID_TEXT, PROTO_OID_INT4};
	proto_put_row_description(&b, 2, names, types);
	const char *values[] = {"pools", NULL};
	const int32_t lens[] = {5, -1};
	proto_put_data_row(&b, 2, values, lens);
	proto_put_command_complete(&b, "SHOW");
	proto_put_empty_query_response(&b);
	/* T: 4 + 2 + ("list\0" 5 + 18) + ("items\0" 6 + 18) */
	pkt_u8(&want, 'T'), pkt_u32(&want, 53), pkt_u16(&want, 2);
	pkt_str(&want, "list"), pkt_u32(&want, 0), pkt_u16(&want, 0), pkt_u32(&want, 25), pkt_u16(&want, 0xffff);
	pkt_u32(&want, 0xffffffffu), pkt_u16(&want, 0);
	pkt_str(&want, "items"), pkt_u32(&want, 0), pkt_u16(&want, 0), pkt_u32(&want, 23), pkt_u16(&want, 4);
	pkt_u32(&want, 0xffffffffu), pkt_u16(&want, 0);
	/* D: 4 + 2 + (4 + 5) + 4 (NULL) */
	pkt_u8(&want, 'D'), pkt_u32(&want, 19), pkt_u16(&want, 2);
	pkt_u32(&want, 5), pkt_raw(&want, "pools"), pkt_u32(&want, 0xffffffffu);
	pkt_u8(&want, 'C'), pkt_u32(&want, 9), pkt_str(&want, "SHOW");
	pkt_u8(&want, 'I'), pkt_u32(&want, 4);
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

/* A NoticeResponse with a DETAIL field: M then D, then the end. */
static void test_put_notice_detail_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {0};
	protobuf_init(&b);
	proto_put_notice_detail(&b, "NOTICE", "00000", "Console usage", "SHOW HELP");
	pkt_u8(&want, 'N'), pkt_u32(&want, 4 + 8 + 8 + 7 + 15 + 11 + 1);
	pkt_u8(&want, 'S'), pkt_str(&want, "NOTICE"), pkt_u8(&want, 'V'), pkt_str(&want, "NOTICE");
	pkt_u8(&want, 'C'), pkt_str(&want, "00000"), pkt_u8(&want, 'M'), pkt_str(&want, "Console usage");
	pkt_u8(&want, 'D'), pkt_str(&want, "SHOW HELP"), pkt_u8(&want, 0);
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

static void put_verror_helper(ProtoBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put_verror_helper(ProtoBuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	proto_put_verror(b, "ERROR", "08P01", fmt, ap);
	va_end(ap);
}

static void test_put_verror_same_as_put_error(void **state)
{
	ProtoBuf a, b;
	protobuf_init(&a);
	protobuf_init(&b);
	proto_put_error(&a, "ERROR", "08P01", "bad %s at %u", "packet", 42u);
	put_verror_helper(&b, "bad %s at %u", "packet", 42u);
	assert_true(protobuf_ok(&a) && protobuf_ok(&b));
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.data, b.data, a.len);
	protobuf_free(&a);
	protobuf_free(&b);
}

static void test_put_negotiate_protocol_version_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	const char *const options[] = {"_pq_.foo", "_pq_.bar"};
	protobuf_init(&b);
	proto_put_negotiate_protocol_version(&b, 0, options, 2);
	pkt_u8(&want, 'v');
	pkt_u32(&want, 30); /* 4 + version 4 + count 4 + "_pq_.foo\0" 9 + "_pq_.bar\0" 9 */
	pkt_bytes(&want, "\x00\x03\x00\x00", 4);
	pkt_bytes(&want, "\x00\x00\x00\x02", 4);
	pkt_str(&want, "_pq_.foo");
	pkt_str(&want, "_pq_.bar");
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

/* What pgflip's own server login sends first; it reads back as the same
 * parameters through the server-side parser. */
static void test_put_startup_message_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	const char *const names[] = {"user", "database"};
	const char *const values[] = {"alice", "shop"};
	protobuf_init(&b);
	proto_put_startup_message(&b, names, values, 2);
	pkt_u32(&want, 34); /* 4 + version 4 + "user\0alice\0" 11 + "database\0shop\0" 14 + terminator 1 */
	pkt_u32(&want, 196608);
	pkt_str(&want, "user");
	pkt_str(&want, "alice");
	pkt_str(&want, "database");
	pkt_str(&want, "shop");
	pkt_u8(&want, 0);
	assert_buf_equals(&b, &want);
	StartupResult r;
	Pkt got = {.len = 0};
	pkt_bytes(&got, b.data, b.len);
	startup_parse_all(&got, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.kind, PROTO_STARTUP_MESSAGE);
	assert_int_equal(r.st.n_params, 2);
	assert_string_equal(proto_startup_get(&r.st, "user"), "alice");
	assert_string_equal(proto_startup_get(&r.st, "database"), "shop");
	startup_result_free(&r);
	protobuf_free(&b);
}

static void test_put_ssl_request_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_ssl_request(&b);
	pkt_u32(&want, 8); /* 4 + code 4 */
	pkt_u32(&want, 80877103); /* 1234 << 16 | 5679 */
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

static void test_put_cancel_request_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_cancel_request(&b, 4242, 0xA0B0C0D0);
	pkt_u32(&want, 16); /* 4 + code 4 + pid 4 + key 4 */
	pkt_u32(&want, 80877102); /* 1234 << 16 | 5678 */
	pkt_u32(&want, 4242);
	pkt_u32(&want, 0xA0B0C0D0);
	assert_buf_equals(&b, &want);
	StartupResult r;
	startup_parse_all(&want, &r);
	assert_int_equal(r.status, PROTO_OK);
	assert_int_equal(r.st.kind, PROTO_CANCEL_REQUEST);
	assert_int_equal(r.st.cancel_pid, 4242);
	assert_int_equal(r.st.cancel_key, 0xA0B0C0D0);
	startup_result_free(&r);
	protobuf_free(&b);
}

static void test_put_query_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_query(&b, "SELECT 1");
	pkt_u8(&want, 'Q');
	pkt_u32(&want, 13); /* 4 + "SELECT 1\0" 9 */
	pkt_str(&want, "SELECT 1");
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

static void test_put_terminate_bytes(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_terminate(&b);
	pkt_u8(&want, 'X');
	pkt_u32(&want, 4);
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

/* A reply of several messages is their encodings back to back. */
static void test_builders_append_messages(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_auth_ok(&b);
	proto_put_parameter_status(&b, "a", "b");
	proto_put_ready_for_query(&b, 'I');
	pkt_bytes(&want, "R\0\0\0\x08\0\0\0\0", 9);
	pkt_u8(&want, 'S');
	pkt_u32(&want, 8); /* 4 + "a\0" 2 + "b\0" 2 */
	pkt_str(&want, "a");
	pkt_str(&want, "b");
	pkt_bytes(&want, "Z\0\0\0\x05I", 6);
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

/* proto_msg_begin returns the message's offset even after earlier content,
 * and proto_msg_end patches that message's length only. */
static void test_msg_begin_end_generic(void **state)
{
	ProtoBuf b;
	Pkt want = {.len = 0};
	protobuf_init(&b);
	proto_put_bytes(&b, "xyz", 3);
	size_t m = proto_msg_begin(&b, 'D');
	assert_int_equal(m, 3);
	proto_put_uint16(&b, 1);
	proto_put_uint32(&b, 0xFFFFFFFF); /* NULL column */
	proto_msg_end(&b, m);
	pkt_raw(&want, "xyz");
	pkt_u8(&want, 'D');
	pkt_u32(&want, 10); /* 4 + int16 2 + int32 4 */
	pkt_u16(&want, 1);
	pkt_u32(&want, 0xFFFFFFFF);
	assert_buf_equals(&b, &want);
	protobuf_free(&b);
}

/* ---- builders: round trips through the parsers -------------------------- */

static void test_roundtrip_error(void **state)
{
	ProtoBuf b;
	size_t len;
	ProtoErrorFields f;
	protobuf_init(&b);
	proto_put_error(&b, "FATAL", "53300", "too many connections for %s", "shop");
	uint8_t *body = only_message_body(&b, PROTO_BE_ERROR_RESPONSE, &len);
	assert_true(proto_error_parse(body, len, &f));
	assert_string_equal(f.severity, "FATAL");
	assert_string_equal(f.sqlstate, "53300");
	assert_string_equal(f.message, "too many connections for shop");
	assert_null(f.detail);
	assert_null(f.hint);
	free(body);
	protobuf_free(&b);
}

static void test_roundtrip_parameter_status(void **state)
{
	ProtoBuf b;
	size_t len;
	const char *name, *value;
	protobuf_init(&b);
	proto_put_parameter_status(&b, "application_name", "");
	uint8_t *body = only_message_body(&b, PROTO_BE_PARAMETER_STATUS, &len);
	assert_true(proto_parameter_status_parse(body, len, &name, &value));
	assert_string_equal(name, "application_name");
	assert_string_equal(value, "");
	free(body);
	protobuf_free(&b);
}

static void test_roundtrip_ready_for_query(void **state)
{
	const char statuses[] = {'I', 'T', 'E'};
	for (size_t i = 0; i < sizeof(statuses); i++) {
		ProtoBuf b;
		size_t len;
		char st = 0;
		protobuf_init(&b);
		proto_put_ready_for_query(&b, statuses[i]);
		uint8_t *body = only_message_body(&b, PROTO_BE_READY_FOR_QUERY, &len);
		assert_true(proto_ready_for_query_parse(body, len, &st));
		assert_int_equal(st, statuses[i]);
		free(body);
		protobuf_free(&b);
	}
}

static void test_roundtrip_query(void **state)
{
	ProtoBuf b;
	size_t len;
	const char *sql;
	const char *text = "SET search_path TO v2, public";
	protobuf_init(&b);
	proto_put_query(&b, text);
	uint8_t *body = only_message_body(&b, PROTO_FE_QUERY, &len);
	assert_true(proto_query_parse(body, len, &sql));
	assert_string_equal(sql, text);
	free(body);
	protobuf_free(&b);
}

/* A message text far over any sane size is cut, but the message stays a
 * well-formed ErrorResponse whose M is a prefix of the text. */
static void test_long_error_truncated_well_framed(void **state)
{
	enum { TEXT_LEN = 5000 };
	char *text = malloc(TEXT_LEN + 1);
	assert_non_null(text);
	for (size_t i = 0; i < TEXT_LEN; i++)
		text[i] = (char)('a' + i % 26);
	text[TEXT_LEN] = '\0';
	ProtoBuf b;
	size_t len;
	ProtoErrorFields f;
	protobuf_init(&b);
	proto_put_error(&b, "ERROR", "XX000", "%s", text);
	assert_true(b.len < TEXT_LEN);
	uint8_t *body = only_message_body(&b, PROTO_BE_ERROR_RESPONSE, &len);
	assert_true(proto_error_parse(body, len, &f));
	assert_string_equal(f.sqlstate, "XX000");
	size_t mlen = strlen(f.message);
	assert_true(mlen >= 256 && mlen < TEXT_LEN);
	assert_memory_equal(f.message, text, mlen);
	free(body);
	free(text);
	protobuf_free(&b);
}

/* ---- proto_quote_literal ------------------------------------------------ */

static void assert_quoted(const char *s, const char *want)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_quote_literal(&b, s);
	assert_true(protobuf_ok(&b));
	if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
		fail_msg("quote(%s) = %.*s, want %s", s, (int)b.len, (const char *)b.data, want);
	protobuf_free(&b);
}

static void test_quote_literal_plain(void **state) { assert_quoted("v2_schema", "'v2_schema'"); }

static void test_quote_literal_quote(void **state)
{
	assert_quoted("it's", "'it''s'");
	assert_quoted("''", "''''''");
}

static void test_quote_literal_backslash(void **state)
{
	assert_quoted("a\\b", "E'a\\\\b'");
	assert_quoted("it's a\\b", "E'it''s a\\\\b'");
	assert_quoted("\\", "E'\\\\'");
}

static void test_quote_literal_empty(void **state) { assert_quoted("", "''"); }

/* Unframed: the literal is appended after what the buffer holds. */
static void test_quote_literal_appends(void **state)
{
	ProtoBuf b;
	const char *want = "SET x = 'y'";
	protobuf_init(&b);
	proto_put_bytes(&b, "SET x = ", 8);
	proto_quote_literal(&b, "y");
	assert_int_equal(b.len, strlen(want));
	assert_memory_equal(b.data, want, b.len);
	protobuf_free(&b);
}

/* ---- ProtoBuf ------------------------------------------------------------ */

static uint8_t pattern_byte(size_t i) { return (uint8_t)(i * 7 + i / 251); }

/* On the caller's storage: no heap while it fits, then moved to the heap
 * with its content; the storage itself is never written past its size. */
static void test_protobuf_on_storage_moves_to_heap(void **state)
{
	uint8_t storage[40];
	memset(storage, 0xEE, sizeof(storage));
	ProtoBuf b;
	protobuf_init_on(&b, storage, 32);
	proto_put_parameter_status(&b, "TimeZone", "UTC"); /* 1 + 4 + 9 + 4 = 18 bytes */
	assert_true(protobuf_ok(&b));
	assert_ptr_equal(b.data, storage);
	assert_int_equal(b.len, 18);
	proto_put_parameter_status(&b, "DateStyle", "ISO, MDY"); /* 1 + 4 + 10 + 9 = 24 more */
	assert_true(protobuf_ok(&b));
	assert_ptr_not_equal(b.data, storage);
	assert_int_equal(b.len, 42);
	assert_memory_equal(b.data, storage, 18);
	assert_memory_equal(b.data + 19, "\0\0\0\x17" "DateStyle", 13);
	for (size_t i = 32; i < sizeof(storage); i++)
		assert_int_equal(storage[i], 0xEE);
	protobuf_free(&b); /* frees the heap copy only (ASan checks the rest) */
	protobuf_init_on(&b, storage, 32);
	protobuf_free(&b);
}

static void test_protobuf_growth_keeps_content(void **state)
{
	enum { TOTAL = 100000 };
	uint8_t chunk[300];
	ProtoBuf b;
	protobuf_init(&b);
	size_t step = 0;
	while (b.len < TOTAL) {
		size_t n = 1 + (step++ * 37) % sizeof(chunk);
		if (n > TOTAL - b.len)
			n = TOTAL - b.len;
		for (size_t i = 0; i < n; i++)
			chunk[i] = pattern_byte(b.len + i);
		if (n == 1)
			proto_put_uint8(&b, chunk[0]);
		else
			proto_put_bytes(&b, chunk, n);
	}
	assert_true(protobuf_ok(&b));
	assert_int_equal(b.len, TOTAL);
	assert_true(b.cap >= b.len);
	for (size_t i = 0; i < TOTAL; i++)
		if (b.data[i] != pattern_byte(i))
			fail_msg("byte %zu: 0x%02x, want 0x%02x", i, b.data[i], pattern_byte(i));
	protobuf_free(&b);
}

static void test_protobuf_one_large_append(void **state)
{
	enum { TOTAL = 100000 };
	uint8_t *src = malloc(TOTAL);
	assert_non_null(src);
	for (size_t i = 0; i < TOTAL; i++)
		src[i] = pattern_byte(i);
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_uint8(&b, 0xEE);
	proto_put_bytes(&b, src, TOTAL);
	assert_true(protobuf_ok(&b));
	assert_int_equal(b.len, TOTAL + 1);
	assert_int_equal(b.data[0], 0xEE);
	assert_memory_equal(b.data + 1, src, TOTAL);
	free(src);
	protobuf_free(&b);
}

static void test_protobuf_reset_keeps_memory(void **state)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_query(&b, "SELECT 1");
	uint8_t *data = b.data;
	size_t cap = b.cap;
	protobuf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_ptr_equal(b.data, data);
	assert_int_equal(b.cap, cap);
	proto_put_terminate(&b);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "X\0\0\0\x04", 5);
	protobuf_free(&b);
}

static void test_protobuf_free_then_reuse(void **state)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_auth_ok(&b);
	protobuf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	protobuf_free(&b); /* twice is harmless */
	protobuf_init(&b);
	proto_put_ready_for_query(&b, 'I');
	assert_int_equal(b.len, 6);
	protobuf_free(&b);
}

/* A size no allocation can hold makes the buffer oom; builders then do
 * nothing until reset. (The size is refused before any allocation.) */
static void test_protobuf_oom_is_sticky(void **state)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_query(&b, "SELECT 1");
	size_t len = b.len;
	proto_put_bytes(&b, "", SIZE_MAX - 8);
	assert_false(protobuf_ok(&b));
	assert_int_equal(b.len, len);
	proto_put_terminate(&b);
	proto_put_error(&b, "ERROR", "XX000", "x");
	assert_false(protobuf_ok(&b));
	assert_int_equal(b.len, len);
	protobuf_reset(&b);
	assert_true(protobuf_ok(&b));
	proto_put_terminate(&b);
	assert_int_equal(b.len, 5);
	protobuf_free(&b);
}

/* Zero bytes onto a buffer that has no memory yet is a no-op. */
static void test_protobuf_put_zero_bytes_on_empty(void **state)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_bytes(&b, "", 0);
	assert_true(protobuf_ok(&b));
	assert_int_equal(b.len, 0);
	protobuf_free(&b);
}

/* ---- options parameter ------------------------------------------------- */

/* Room for the settings of one test call. */
#define OPT_MAX 8

typedef struct OptRun {
	ProtoStatus st;
	ProtoSetting set[OPT_MAX];
	size_t n;
	const char *why;
	char *options; /* exact heap copy of the input */
	char *work;    /* exact heap block of PROTO_OPTIONS_WORK_SIZE bytes */
	size_t worklen;
} OptRun;

/* Parses TEXT from an exact heap copy into an exact heap WORK (so ASan sees a
 * byte read or written past either), with room for MAX settings. */
static void opt_run_max(OptRun *r, const char *text, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->options = strdup(text);
	r->worklen = PROTO_OPTIONS_WORK_SIZE(strlen(text));
	r->work = malloc(r->worklen);
	assert_non_null(r->options);
	assert_non_null(r->work);
	r->st = proto_options_parse(r->options, r->work, r->worklen, r->set, max, &r->n, &r->why);
	if (r->st == PROTO_OK) {
		for (size_t i = 0; i < r->n; i++) {
			assert_true(r->set[i].name >= r->work && r->set[i].name < r->work + r->worklen);
			assert_true(r->set[i].value >= r->work && r->set[i].value < r->work + r->worklen);
		}
	}
}

static void opt_run(OptRun *r, const char *text) { opt_run_max(r, text, OPT_MAX); }

static void opt_free(OptRun *r)
{
	free(r->options);
	free(r->work);
}

/* Expects TEXT to be refused with a reason that contains PART. */
static void opt_expect_bad(const char *text, const char *part)
{
	OptRun r;
	opt_run(&r, text);
	assert_int_equal(r.st, PROTO_BAD);
	assert_int_equal(r.n, 0);
	assert_non_null(r.why);
	if (!strstr(r.why, part))
		fail_msg("reason '%s' lacks '%s'", r.why, part);
	opt_free(&r);
}

static void test_options_empty_ok(void **state)
{
	(void)state;
	const char *inputs[] = {"", " ", " \t\n\r\v\f  "};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		OptRun r;
		opt_run(&r, inputs[i]);
		assert_int_equal(r.st, PROTO_OK);
		assert_int_equal(r.n, 0);
		opt_free(&r);
	}
}

static void test_options_c_two_words(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "-c search_path=app_v2");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.set[0].name, "search_path");
	assert_string_equal(r.set[0].value, "app_v2");
	opt_free(&r);
}

static void test_options_c_one_word(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "-cwork_mem=64MB");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.set[0].name, "work_mem");
	assert_string_equal(r.set[0].value, "64MB");
	opt_free(&r);
}

static void test_options_long_form_dashes(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "--statement-timeout=5s");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.set[0].name, "statement_timeout");
	assert_string_equal(r.set[0].value, "5s");
	opt_free(&r);
}

/* ParseLongOption changes '-' in the name only, with -c as with --. */
static void test_options_dashes_in_value_kept(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "-c lock-timeout=1-2 --x-y=-a-");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.set[0].name, "lock_timeout");
	assert_string_equal(r.set[0].value, "1-2");
	assert_string_equal(r.set[1].name, "x_y");
	assert_string_equal(r.set[1].value, "-a-");
	opt_free(&r);
}

static void test_options_several_in_order(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "  -c a=1\t-cb=2\n--c=3  -c d=  ");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 4);
	assert_string_equal(r.set[0].name, "a");
	assert_string_equal(r.set[0].value, "1");
	assert_string_equal(r.set[1].name, "b");
	assert_string_equal(r.set[1].value, "2");
	assert_string_equal(r.set[2].name, "c");
	assert_string_equal(r.set[2].value, "3");
	assert_string_equal(r.set[3].name, "d");
	assert_string_equal(r.set[3].value, ""); /* an empty value is a value */
	opt_free(&r);
}

static void test_options_escaped_space(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "-c application_name=a\\ b");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.set[0].name, "application_name");
	assert_string_equal(r.set[0].value, "a b");
	opt_free(&r);
}

static void test_options_escaped_backslash(void **state)
{
	(void)state;
	OptRun r;
	/* \\ is one backslash; \\\  a backslash and then a space */
	opt_run(&r, "-c x=C:\\\\dir -c y=a\\\\\\ b");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.set[0].value, "C:\\dir");
	assert_string_equal(r.set[1].value, "a\\ b");
	opt_free(&r);
}

/* A backslash before an ordinary character just drops out, and one at the
 * very end is dropped too (pg_split_opts). */
static void test_options_escape_other_and_trailing(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "-c x=\\a\\=b\\");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.set[0].name, "x");
	assert_string_equal(r.set[0].value, "a=b");
	opt_free(&r);
}

/* An escaped space inside "-c\ x=1" makes one word: -c with argument " x=1"
 * in the same word, as the server's getopt would see it. */
static void test_options_escaped_space_joins_switch(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "-c\\ x=1");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.set[0].name, " x");
	assert_string_equal(r.set[0].value, "1");
	opt_free(&r);
}

static void test_options_value_with_equals(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "--options=a=b");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.set[0].name, "options");
	assert_string_equal(r.set[0].value, "a=b");
	opt_free(&r);
}

/* getopt takes the next word as -c's argument whatever it looks like. */
static void test_options_c_argument_starting_with_dash(void **state)
{
	(void)state;
	OptRun r;
	opt_run(&r, "-c -x=1");
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.set[0].name, "_x");
	assert_string_equal(r.set[0].value, "1");
	opt_free(&r);
}

static void test_options_other_switch_bad(void **state)
{
	(void)state;
	opt_expect_bad("-d 5", "\"-d\" is not a setting");
	opt_expect_bad("-c a=1 -F", "\"-F\" is not a setting");
	opt_expect_bad("-", "\"-\" is not a setting");
	opt_expect_bad("--", "\"--\" is not a setting");
	opt_expect_bad("-ec a=1", "\"-ec\" is not a setting");
}

static void test_options_not_a_switch_bad(void **state)
{
	(void)state;
	opt_expect_bad("a=1", "\"a=1\" is not a switch");
	opt_expect_bad("-c a=1 mydb", "\"mydb\" is not a switch");
	opt_expect_bad("\\", "\"\" is not a switch"); /* a word of one escape is empty */
}

static void test_options_c_without_argument_bad(void **state)
{
	(void)state;
	opt_expect_bad("-c", "\"-c\" needs an argument");
	opt_expect_bad("-c a=1 -c  ", "\"-c\" needs an argument");
}

static void test_options_no_value_bad(void **state)
{
	(void)state;
	opt_expect_bad("-c foo", "\"-c foo\" has no value");
	opt_expect_bad("-cfoo", "\"-cfoo\" has no value");
	opt_expect_bad("--foo", "\"--foo\" has no value");
}

static void test_options_empty_name_bad(void **state)
{
	(void)state;
	opt_expect_bad("-c =x", "\"-c =x\" has an empty setting name");
	opt_expect_bad("--=x", "\"--=x\" has an empty setting name");
	opt_expect_bad("-c=x", "\"-c=x\" has an empty setting name");
}

static void test_options_too_many_bad(void **state)
{
	(void)state;
	OptRun r;
	opt_run_max(&r, "-c a=1 -c b=2 -c c=3", 2);
	assert_int_equal(r.st, PROTO_BAD);
	assert_int_equal(r.n, 0);
	assert_non_null(strstr(r.why, "\"-c c=3\" is past the most settings allowed"));
	opt_free(&r);
	opt_run_max(&r, "-c a=1 -c b=2", 2);
	assert_int_equal(r.st, PROTO_OK);
	assert_int_equal(r.n, 2);
	opt_free(&r);
	opt_run_max(&r, "", 0);
	assert_int_equal(r.st, PROTO_OK);
	opt_free(&r);
}

/* The reason shows control bytes as '?' and cuts a long word. */
static void test_options_reason_shown_safely(void **state)
{
	(void)state;
	char text[300];
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	text[1] = '\x1b';
	OptRun r;
	opt_run(&r, text);
	assert_int_equal(r.st, PROTO_BAD);
	assert_true(strlen(r.why) < PROTO_OPTIONS_WHY_MAX);
	assert_non_null(strstr(r.why, "\"x?xx"));
	assert_non_null(strstr(r.why, "...\" is not a switch"));
	for (const char *p = r.why; *p; p++)
		assert_true((unsigned char)*p >= 0x20);
	opt_free(&r);
}

/* Both words cut: the reason still fits its room, verdict included. */
static void test_options_reason_two_long_words_fit(void **state)
{
	(void)state;
	char text[2 * 100 + 8];
	strcpy(text, "-c ");
	memset(text + 3, 'n', 150);
	text[153] = '\0';
	/* "-c nnn..." with no '=': the longest reason there is */
	OptRun r;
	opt_run(&r, text);
	assert_int_equal(r.st, PROTO_BAD);
	assert_true(strlen(r.why) < PROTO_OPTIONS_WHY_MAX);
	assert_non_null(strstr(r.why, "...\" has no value (name=value)"));
	opt_free(&r);
}

static void test_options_work_too_small_bad(void **state)
{
	(void)state;
	char work[PROTO_OPTIONS_WHY_MAX + 4];
	ProtoSetting set[1];
	size_t n = 99;
	const char *why = NULL;
	/* strlen 4: needs 5 + WHY_MAX bytes */
	assert_int_equal(proto_options_parse("-c a", work, sizeof(work), set, 1, &n, &why), PROTO_BAD);
	assert_int_equal(n, 0);
	assert_string_equal(why, "options: work buffer too small");
	assert_int_equal(proto_options_parse("-c=", work, sizeof(work), set, 1, &n, &why), PROTO_BAD);
	assert_non_null(strstr(why, "empty setting name")); /* 4 + WHY_MAX: enough */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* type names */
		cmocka_unit_test(test_fe_type_names),
		cmocka_unit_test(test_be_type_names),
		/* header */
		cmocka_unit_test(test_header_need_more_under_5_bytes),
		cmocka_unit_test(test_header_length_under_4_bad),
		cmocka_unit_test(test_header_length_over_max_bad),
		cmocka_unit_test(test_header_exact_max_ok),
		cmocka_unit_test(test_header_empty_body_ok),
		/* StartupMessage */
		cmocka_unit_test(test_startup_message_valid),
		cmocka_unit_test(test_startup_get),
		cmocka_unit_test(test_startup_message_every_truncation_needs_more),
		cmocka_unit_test(test_startup_message_followed_by_more_bytes),
		cmocka_unit_test(test_startup_protocol_2_bad),
		cmocka_unit_test(test_startup_protocol_4_bad),
		cmocka_unit_test(test_startup_minor_version_accepted),
		cmocka_unit_test(test_startup_length_under_8_bad),
		cmocka_unit_test(test_startup_length_over_max_bad),
		cmocka_unit_test(test_startup_length_exact_max_ok),
		cmocka_unit_test(test_startup_missing_terminator_bad),
		cmocka_unit_test(test_startup_no_params_no_terminator_bad),
		cmocka_unit_test(test_startup_unterminated_name_bad),
		cmocka_unit_test(test_startup_name_without_value_bad),
		cmocka_unit_test(test_startup_unterminated_value_bad),
		cmocka_unit_test(test_startup_trailing_bytes_bad),
		cmocka_unit_test(test_startup_no_user_bad),
		cmocka_unit_test(test_startup_no_params_bad),
		cmocka_unit_test(test_startup_empty_user_bad),
		cmocka_unit_test(test_startup_max_params_ok),
		cmocka_unit_test(test_startup_too_many_params_bad),
		/* request packets */
		cmocka_unit_test(test_ssl_request),
		cmocka_unit_test(test_gssenc_request),
		cmocka_unit_test(test_cancel_request),
		cmocka_unit_test(test_request_every_truncation_needs_more),
		cmocka_unit_test(test_ssl_request_wrong_length_bad),
		cmocka_unit_test(test_gssenc_request_wrong_length_bad),
		cmocka_unit_test(test_cancel_request_wrong_length_bad),
		/* reader */
		cmocka_unit_test(test_reader_reads_values_in_network_order),
		cmocka_unit_test(test_reader_uint8_past_end),
		cmocka_unit_test(test_reader_uint16_past_end),
		cmocka_unit_test(test_reader_uint32_past_end),
		cmocka_unit_test(test_reader_cstring_unterminated),
		cmocka_unit_test(test_reader_cstring_at_end),
		cmocka_unit_test(test_reader_skip_past_end),
		cmocka_unit_test(test_reader_bad_is_sticky),
		/* body parsers */
		cmocka_unit_test(test_ready_for_query_valid_statuses),
		cmocka_unit_test(test_ready_for_query_other_byte_false),
		cmocka_unit_test(test_ready_for_query_wrong_length_false),
		cmocka_unit_test(test_error_parse_fields),
		cmocka_unit_test(test_error_parse_v_preferred_over_s),
		cmocka_unit_test(test_error_parse_s_only),
		cmocka_unit_test(test_error_parse_empty_fields_ok),
		cmocka_unit_test(test_error_parse_missing_terminator_false),
		cmocka_unit_test(test_error_parse_unterminated_field_false),
		cmocka_unit_test(test_error_parse_code_without_value_false),
		cmocka_unit_test(test_error_parse_trailing_bytes_false),
		cmocka_unit_test(test_error_parse_empty_body_false),
		cmocka_unit_test(test_query_parse_ok),
		cmocka_unit_test(test_query_parse_empty_query_ok),
		cmocka_unit_test(test_query_parse_trailing_junk_false),
		cmocka_unit_test(test_query_parse_unterminated_false),
		cmocka_unit_test(test_parse_parse_with_param_oids_ok),
		cmocka_unit_test(test_parse_parse_unnamed_no_oids_ok),
		cmocka_unit_test(test_parse_parse_oid_count_over_body_false),
		cmocka_unit_test(test_parse_parse_oid_count_under_body_false),
		cmocka_unit_test(test_parse_parse_missing_count_false),
		cmocka_unit_test(test_parameter_status_parse_ok),
		cmocka_unit_test(test_parameter_status_parse_missing_value_false),
		cmocka_unit_test(test_parameter_status_parse_trailing_false),
		cmocka_unit_test(test_command_complete_parse_ok),
		cmocka_unit_test(test_command_complete_parse_malformed_false),
		cmocka_unit_test(test_backend_key_data_parse_ok),
		cmocka_unit_test(test_backend_key_data_parse_wrong_length_false),
		cmocka_unit_test(test_negotiate_protocol_version_parse_ok),
		cmocka_unit_test(test_negotiate_protocol_version_parse_no_options_ok),
		cmocka_unit_test(test_negotiate_protocol_version_parse_malformed_false),
		/* builders */
		cmocka_unit_test(test_put_auth_ok_bytes),
		cmocka_unit_test(test_put_parameter_status_bytes),
		cmocka_unit_test(test_put_backend_key_data_bytes),
		cmocka_unit_test(test_put_ready_for_query_bytes),
		cmocka_unit_test(test_put_error_bytes),
		cmocka_unit_test(test_put_notice_bytes),
		cmocka_unit_test(test_put_result_set_bytes),
		cmocka_unit_test(test_put_notice_detail_bytes),
		cmocka_unit_test(test_put_verror_same_as_put_error),
		cmocka_unit_test(test_put_negotiate_protocol_version_bytes),
		cmocka_unit_test(test_put_startup_message_bytes),
		cmocka_unit_test(test_put_ssl_request_bytes),
		cmocka_unit_test(test_put_cancel_request_bytes),
		cmocka_unit_test(test_put_query_bytes),
		cmocka_unit_test(test_put_terminate_bytes),
		cmocka_unit_test(test_builders_append_messages),
		cmocka_unit_test(test_msg_begin_end_generic),
		cmocka_unit_test(test_roundtrip_error),
		cmocka_unit_test(test_roundtrip_parameter_status),
		cmocka_unit_test(test_roundtrip_ready_for_query),
		cmocka_unit_test(test_roundtrip_query),
		cmocka_unit_test(test_long_error_truncated_well_framed),
		/* quoting */
		cmocka_unit_test(test_quote_literal_plain),
		cmocka_unit_test(test_quote_literal_quote),
		cmocka_unit_test(test_quote_literal_backslash),
		cmocka_unit_test(test_quote_literal_empty),
		cmocka_unit_test(test_quote_literal_appends),
		/* ProtoBuf */
		cmocka_unit_test(test_protobuf_growth_keeps_content),
		cmocka_unit_test(test_protobuf_on_storage_moves_to_heap),
		cmocka_unit_test(test_protobuf_one_large_append),
		cmocka_unit_test(test_protobuf_reset_keeps_memory),
		cmocka_unit_test(test_protobuf_free_then_reuse),
		cmocka_unit_test(test_protobuf_oom_is_sticky),
		cmocka_unit_test(test_protobuf_put_zero_bytes_on_empty),
		/* options parameter */
		cmocka_unit_test(test_options_empty_ok),
		cmocka_unit_test(test_options_c_two_words),
		cmocka_unit_test(test_options_c_one_word),
		cmocka_unit_test(test_options_long_form_dashes),
		cmocka_unit_test(test_options_dashes_in_value_kept),
		cmocka_unit_test(test_options_several_in_order),
		cmocka_unit_test(test_options_escaped_space),
		cmocka_unit_test(test_options_escaped_backslash),
		cmocka_unit_test(test_options_escape_other_and_trailing),
		cmocka_unit_test(test_options_escaped_space_joins_switch),
		cmocka_unit_test(test_options_value_with_equals),
		cmocka_unit_test(test_options_c_argument_starting_with_dash),
		cmocka_unit_test(test_options_other_switch_bad),
		cmocka_unit_test(test_options_not_a_switch_bad),
		cmocka_unit_test(test_options_c_without_argument_bad),
		cmocka_unit_test(test_options_no_value_bad),
		cmocka_unit_test(test_options_empty_name_bad),
		cmocka_unit_test(test_options_too_many_bad),
		cmocka_unit_test(test_options_reason_shown_safely),
		cmocka_unit_test(test_options_reason_two_long_words_fit),
		cmocka_unit_test(test_options_work_too_small_bad),
	};
	return cmocka_run_group_tests_name("protocol", tests, NULL, NULL);
}
