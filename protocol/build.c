/*
 * protocol/build.c: builders for the messages pgflip sends itself.
 *
 * A ProtoBuf grows geometrically; a failed allocation makes it sticky-bad
 * (oom) so that a sequence of builders needs one check, before the send.
 * Each message is framed by proto_msg_begin/proto_msg_end, which patch the
 * length in once the body is known.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/protocol.h"

/* Messages we build are small (errors, parameters); 256 bytes holds most
 * replies without a second allocation. */
#define PROTOBUF_MIN_CAP 256
/* An error message text is cut at this many bytes: it is for humans. */
#define PROTO_ERROR_TEXT_MAX 1024

void protobuf_init(ProtoBuf *b) { memset(b, 0, sizeof(*b)); }

void protobuf_reset(ProtoBuf *b)
{
	b->len = 0;
	b->oom = false;
}

void protobuf_init_on(ProtoBuf *b, void *storage, size_t cap)
{
	protobuf_init(b);
	b->data = storage;
	b->cap = cap;
	b->borrowed = true;
}

void protobuf_free(ProtoBuf *b)
{
	if (!b->borrowed)
		free(b->data);
	protobuf_init(b);
}

static bool protobuf_reserve(ProtoBuf *b, size_t n)
{
	if (b->oom)
		return false;
	if (b->cap - b->len >= n)
		return true;
	size_t cap = b->cap ? b->cap : PROTOBUF_MIN_CAP;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return false;
		}
		cap *= 2;
	}
	uint8_t *data = b->borrowed ? malloc(cap) : realloc(b->data, cap);
	if (!data) {
		b->oom = true;
		return false;
	}
	if (b->borrowed && b->len)
		memcpy(data, b->data, b->len);
	b->borrowed = false;
	b->data = data;
	b->cap = cap;
	return true;
}

void proto_put_bytes(ProtoBuf *b, const void *p, size_t n)
{
	/* n == 0 on a buffer with no memory yet would be memcpy(NULL, p, 0). */
	if (n == 0 || !protobuf_reserve(b, n))
		return;
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void proto_put_uint8(ProtoBuf *b, uint8_t v) { proto_put_bytes(b, &v, 1); }

void proto_put_uint16(ProtoBuf *b, uint16_t v)
{
	uint8_t be[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	proto_put_bytes(b, be, 2);
}

void proto_put_uint32(ProtoBuf *b, uint32_t v)
{
	uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	proto_put_bytes(b, be, 4);
}

void proto_put_cstring(ProtoBuf *b, const char *s) { proto_put_bytes(b, s, strlen(s) + 1); }

size_t proto_msg_begin(ProtoBuf *b, uint8_t type)
{
	size_t start = b->len;
	proto_put_uint8(b, type);
	proto_put_uint32(b, 0); /* patched by proto_msg_end */
	return start;
}

/* patch_len: writes the length of what follows offset AT (a length field
 * counts itself) into the 4 bytes at AT. */
static void patch_len(ProtoBuf *b, size_t at)
{
	if (b->oom)
		return;
	uint32_t len = (uint32_t)(b->len - at);
	uint8_t *p = b->data + at;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
}

void proto_msg_end(ProtoBuf *b, size_t start) { patch_len(b, start + 1); }

/* An ErrorResponse or NoticeResponse (TYPE) with severity, SQLSTATE, TEXT
 * and, when not NULL, DETAIL. */
static void put_fields(ProtoBuf *b, uint8_t type, const char *severity, const char *sqlstate, const char *text,
		       const char *detail)
{
	size_t m = proto_msg_begin(b, type);
	proto_put_uint8(b, 'S');
	proto_put_cstring(b, severity);
	proto_put_uint8(b, 'V');
	proto_put_cstring(b, severity);
	proto_put_uint8(b, 'C');
	proto_put_cstring(b, sqlstate);
	proto_put_uint8(b, 'M');
	proto_put_cstring(b, text);
	if (detail) {
		proto_put_uint8(b, 'D');
		proto_put_cstring(b, detail);
	}
	proto_put_uint8(b, 0);
	proto_msg_end(b, m);
}

static void put_error_fields(ProtoBuf *b, uint8_t type, const char *severity, const char *sqlstate,
			     const char *fmt, va_list ap) __attribute__((format(printf, 5, 0)));
static void put_error_fields(ProtoBuf *b, uint8_t type, const char *severity, const char *sqlstate,
			     const char *fmt, va_list ap)
{
	char text[PROTO_ERROR_TEXT_MAX];
	vsnprintf(text, sizeof(text), fmt, ap);
	put_fields(b, type, severity, sqlstate, text, NULL);
}

void proto_put_verror(ProtoBuf *b, const char *severity, const char *sqlstate, const char *fmt, va_list ap)
{
	put_error_fields(b, PROTO_BE_ERROR_RESPONSE, severity, sqlstate, fmt, ap);
}

void proto_put_error(ProtoBuf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	put_error_fields(b, PROTO_BE_ERROR_RESPONSE, severity, sqlstate, fmt, ap);
	va_end(ap);
}

void proto_put_notice(ProtoBuf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	put_error_fields(b, PROTO_BE_NOTICE_RESPONSE, severity, sqlstate, fmt, ap);
	va_end(ap);
}

void proto_put_notice_detail(ProtoBuf *b, const char *severity, const char *sqlstate, const char *message,
			     const char *detail)
{
	put_fields(b, PROTO_BE_NOTICE_RESPONSE, severity, sqlstate, message, detail);
}

void proto_put_row_description(ProtoBuf *b, size_t n, const char *const *names, const uint32_t *types)
{
	size_t m = proto_msg_begin(b, PROTO_BE_ROW_DESCRIPTION);
	proto_put_uint16(b, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		int16_t size = types[i] == PROTO_OID_INT4 ? 4 : types[i] == PROTO_OID_INT8 ? 8 : types[i] == PROTO_OID_BOOL ? 1 : -1;
		proto_put_cstring(b, names[i]);
		proto_put_uint32(b, 0); /* no table */
		proto_put_uint16(b, 0); /* no column of one */
		proto_put_uint32(b, types[i]);
		proto_put_uint16(b, (uint16_t)size);
		proto_put_uint32(b, 0xffffffffu); /* typmod -1 */
		proto_put_uint16(b, 0);           /* text format */
	}
	proto_msg_end(b, m);
}

void proto_put_data_row(ProtoBuf *b, size_t n, const char *const *values, const int32_t *lens)
{
	size_t m = proto_msg_begin(b, PROTO_BE_DATA_ROW);
	proto_put_uint16(b, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		proto_put_uint32(b, (uint32_t)lens[i]);
		if (lens[i] > 0)
			proto_put_bytes(b, values[i], (size_t)lens[i]);
	}
	proto_msg_end(b, m);
}

void proto_put_command_complete(ProtoBuf *b, const char *tag)
{
	size_t m = proto_msg_begin(b, PROTO_BE_COMMAND_COMPLETE);
	proto_put_cstring(b, tag);
	proto_msg_end(b, m);
}

void proto_put_empty_query_response(ProtoBuf *b)
{
	size_t m = proto_msg_begin(b, PROTO_BE_EMPTY_QUERY_RESPONSE);
	proto_msg_end(b, m);
}

void proto_put_auth_ok(ProtoBuf *b)
{
	size_t m = proto_msg_begin(b, PROTO_BE_AUTHENTICATION);
	proto_put_uint32(b, 0); /* AuthenticationOk */
	proto_msg_end(b, m);
}

/* put_auth: an Authentication message with CODE and DATA[0..N) after it. */
static void put_auth(ProtoBuf *b, ProtoAuthCode code, const void *data, size_t n)
{
	size_t m = proto_msg_begin(b, PROTO_BE_AUTHENTICATION);
	proto_put_uint32(b, (uint32_t)code);
	proto_put_bytes(b, data, n);
	proto_msg_end(b, m);
}

void proto_put_auth_cleartext(ProtoBuf *b) { put_auth(b, PROTO_AUTH_CLEARTEXT_PASSWORD, NULL, 0); }

void proto_put_auth_md5(ProtoBuf *b, const uint8_t salt[4]) { put_auth(b, PROTO_AUTH_MD5_PASSWORD, salt, 4); }

void proto_put_auth_sasl(ProtoBuf *b, const char *const *mechanisms, size_t n)
{
	size_t m = proto_msg_begin(b, PROTO_BE_AUTHENTICATION);
	proto_put_uint32(b, PROTO_AUTH_SASL);
	for (size_t i = 0; i < n; i++)
		proto_put_cstring(b, mechanisms[i]);
	proto_put_uint8(b, 0); /* the list's terminator */
	proto_msg_end(b, m);
}

void proto_put_auth_sasl_continue(ProtoBuf *b, const uint8_t *data, size_t n)
{
	put_auth(b, PROTO_AUTH_SASL_CONTINUE, data, n);
}

void proto_put_auth_sasl_final(ProtoBuf *b, const uint8_t *data, size_t n) { put_auth(b, PROTO_AUTH_SASL_FINAL, data, n); }

void proto_put_sasl_initial_response(ProtoBuf *b, const char *mech, const uint8_t *data, size_t n)
{
	size_t m = proto_msg_begin(b, PROTO_FE_PASSWORD);
	proto_put_cstring(b, mech);
	proto_put_uint32(b, data ? (uint32_t)n : UINT32_MAX); /* -1: no initial response */
	if (data)
		proto_put_bytes(b, data, n);
	proto_msg_end(b, m);
}

void proto_put_sasl_response(ProtoBuf *b, const uint8_t *data, size_t n)
{
	size_t m = proto_msg_begin(b, PROTO_FE_PASSWORD);
	proto_put_bytes(b, data, n);
	proto_msg_end(b, m);
}

void proto_put_password(ProtoBuf *b, const char *text)
{
	size_t m = proto_msg_begin(b, PROTO_FE_PASSWORD);
	proto_put_cstring(b, text);
	proto_msg_end(b, m);
}

void proto_put_parameter_status(ProtoBuf *b, const char *name, const char *value)
{
	size_t m = proto_msg_begin(b, PROTO_BE_PARAMETER_STATUS);
	proto_put_cstring(b, name);
	proto_put_cstring(b, value);
	proto_msg_end(b, m);
}

void proto_put_backend_key_data(ProtoBuf *b, uint32_t pid, uint32_t key)
{
	size_t m = proto_msg_begin(b, PROTO_BE_BACKEND_KEY_DATA);
	proto_put_uint32(b, pid);
	proto_put_uint32(b, key);
	proto_msg_end(b, m);
}

void proto_put_ready_for_query(ProtoBuf *b, char status)
{
	size_t m = proto_msg_begin(b, PROTO_BE_READY_FOR_QUERY);
	proto_put_uint8(b, (uint8_t)status);
	proto_msg_end(b, m);
}

void proto_put_negotiate_protocol_version(ProtoBuf *b, uint32_t minor, const char *const *options, size_t n)
{
	size_t m = proto_msg_begin(b, PROTO_BE_NEGOTIATE_PROTOCOL_VERSION);
	proto_put_uint32(b, PROTO_VERSION(3, minor));
	proto_put_uint32(b, (uint32_t)n);
	for (size_t i = 0; i < n; i++)
		proto_put_cstring(b, options[i]);
	proto_msg_end(b, m);
}

void proto_put_query(ProtoBuf *b, const char *sql)
{
	size_t m = proto_msg_begin(b, PROTO_FE_QUERY);
	proto_put_cstring(b, sql);
	proto_msg_end(b, m);
}

/* put_startup_begin / put_startup_end: a packet without a type byte, whose
 * length counts itself (section "Message Formats": StartupMessage,
 * SSLRequest, CancelRequest), starting with the version or request CODE. */
static size_t put_startup_begin(ProtoBuf *b, uint32_t code)
{
	size_t start = b->len;
	proto_put_uint32(b, 0); /* patched by put_startup_end */
	proto_put_uint32(b, code);
	return start;
}

static void put_startup_end(ProtoBuf *b, size_t start) { patch_len(b, start); }

void proto_put_startup_message(ProtoBuf *b, const char *const *names, const char *const *values, size_t n)
{
	size_t m = put_startup_begin(b, PROTO_VERSION_3_0);
	for (size_t i = 0; i < n; i++) {
		proto_put_cstring(b, names[i]);
		proto_put_cstring(b, values[i]);
	}
	proto_put_uint8(b, 0); /* the list's terminator */
	put_startup_end(b, m);
}

void proto_put_ssl_request(ProtoBuf *b) { put_startup_end(b, put_startup_begin(b, PROTO_SSL_REQUEST_CODE)); }

void proto_put_cancel_request(ProtoBuf *b, uint32_t pid, uint32_t key)
{
	size_t m = put_startup_begin(b, PROTO_CANCEL_REQUEST_CODE);
	proto_put_uint32(b, pid);
	proto_put_uint32(b, key);
	put_startup_end(b, m);
}

void proto_put_terminate(ProtoBuf *b)
{
	size_t m = proto_msg_begin(b, PROTO_FE_TERMINATE);
	proto_msg_end(b, m);
}

void proto_quote_literal(ProtoBuf *b, const char *s)
{
	bool backslash = strchr(s, '\\') != NULL;
	if (backslash)
		proto_put_uint8(b, 'E');
	proto_put_uint8(b, '\'');
	for (const char *p = s; *p; p++) {
		if (*p == '\'' || (*p == '\\' && backslash))
			proto_put_uint8(b, (uint8_t)*p);
		proto_put_uint8(b, (uint8_t)*p);
	}
	proto_put_uint8(b, '\'');
}
