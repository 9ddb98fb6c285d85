/*
 * tests/fuzz/fuzz_messages.c: every message-body reader of protocol/, and the
 * builders that have a reader to check them against.
 *
 * Input: a selector byte, then a message body (an exact heap copy is what
 * the reader sees). The selector is the message's own type byte where there
 * is one, so a captured backend message minus its length field is a seed:
 *   'Z' ReadyForQuery    'E' ErrorResponse    'N' NoticeResponse
 *   'Q' Query            'P' Parse            'S' ParameterStatus
 *   'C' CommandComplete  'r' ProtoReader driven by a small program
 *   'q' proto_quote_literal                   'v' NegotiateProtocolVersion
 *   'K' BackendKeyData
 * Any other byte picks one of these by its value. Where a builder writes the
 * message, a body that parses is rebuilt, framed, parsed again and compared.
 * Seeds: tests/fuzz/corpus/messages/ (captured by tests/fuzz/capture.py).
 */
#include "tests/fuzz/fuzz.h"

#include "protocol/protocol.h"

/* reframe: checks that B holds exactly one message of TYPE with a
 * well-formed header; returns its body (inside B) and sets *LEN. */
static const uint8_t *reframe(const ProtoBuf *b, uint8_t type, uint32_t *len)
{
	ProtoHeader h;
	const char *why = NULL;
	FUZZ_CHECK(protobuf_ok(b));
	FUZZ_CHECK(proto_header_parse(b->data, b->len, UINT32_MAX, &h, &why) == PROTO_OK);
	FUZZ_CHECK(h.type == type && (size_t)h.len + 1 == b->len);
	*len = proto_body_len(&h);
	return b->data + PROTO_HEADER_SIZE;
}

static void fuzz_ready_for_query(const uint8_t *body, size_t len)
{
	char status;
	if (!proto_ready_for_query_parse(body, len, &status))
		return;
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_ready_for_query(&b, status);
	uint32_t n;
	const uint8_t *again = reframe(&b, PROTO_BE_READY_FOR_QUERY, &n);
	char status2;
	FUZZ_CHECK(proto_ready_for_query_parse(again, n, &status2) && status2 == status);
	FUZZ_CHECK(n == len && memcmp(again, body, len) == 0);
	protobuf_free(&b);
}

/* PROTO_ERROR_TEXT_MAX of build.c, less the NUL: the longest message text. */
#define ERROR_TEXT_KEPT 1023

static void fuzz_error(uint8_t type, const uint8_t *body, size_t len)
{
	ProtoErrorFields f;
	if (!proto_error_parse(body, len, &f))
		return;
	const char *base = (const char *)body;
	const char *fields[] = {f.severity, f.sqlstate, f.message, f.detail, f.hint};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		FUZZ_CHECK(!fields[i] || fuzz_inside(fields[i], base, len));
	if (!f.severity || !f.sqlstate || !f.message)
		return;

	ProtoBuf b;
	uint8_t storage[64]; /* small on purpose: most rebuilds move to the heap */
	protobuf_init_on(&b, storage, sizeof(storage));
	if (type == PROTO_BE_NOTICE_RESPONSE)
		proto_put_notice(&b, f.severity, f.sqlstate, "%s", f.message);
	else
		proto_put_error(&b, f.severity, f.sqlstate, "%s", f.message);
	uint32_t n;
	const uint8_t *again = reframe(&b, type == PROTO_BE_NOTICE_RESPONSE ? type : PROTO_BE_ERROR_RESPONSE, &n);
	ProtoErrorFields g;
	FUZZ_CHECK(proto_error_parse(again, n, &g));
	FUZZ_CHECK(g.severity && strcmp(g.severity, f.severity) == 0);
	FUZZ_CHECK(g.sqlstate && strcmp(g.sqlstate, f.sqlstate) == 0);
	size_t mlen = strlen(f.message);
	size_t kept = mlen < ERROR_TEXT_KEPT ? mlen : ERROR_TEXT_KEPT;
	FUZZ_CHECK(g.message && strlen(g.message) == kept && memcmp(g.message, f.message, kept) == 0);
	FUZZ_CHECK(!g.detail && !g.hint);
	protobuf_free(&b);
}

static void fuzz_query(const uint8_t *body, size_t len)
{
	const char *sql;
	if (!proto_query_parse(body, len, &sql))
		return;
	FUZZ_CHECK(strlen(sql) + 1 == len);
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_query(&b, sql);
	uint32_t n;
	const uint8_t *again = reframe(&b, PROTO_FE_QUERY, &n);
	FUZZ_CHECK(n == len && memcmp(again, body, len) == 0);
	protobuf_free(&b);
}

static void fuzz_parse(const uint8_t *body, size_t len)
{
	const char *name, *sql;
	if (!proto_parse_parse(body, len, &name, &sql))
		return;
	size_t nl = strlen(name), sl = strlen(sql);
	FUZZ_CHECK(name == (const char *)body && sql == name + nl + 1);
	FUZZ_CHECK(nl + 1 + sl + 1 + 2 <= len);
	const uint8_t *count = body + nl + 1 + sl + 1;
	FUZZ_CHECK(nl + 1 + sl + 1 + 2 + (size_t)((count[0] << 8) | count[1]) * 4 == len);
}

static void fuzz_parameter_status(const uint8_t *body, size_t len)
{
	const char *name, *value;
	if (!proto_parameter_status_parse(body, len, &name, &value))
		return;
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_parameter_status(&b, name, value);
	uint32_t n;
	const uint8_t *again = reframe(&b, PROTO_BE_PARAMETER_STATUS, &n);
	FUZZ_CHECK(n == len && memcmp(again, body, len) == 0);
	protobuf_free(&b);
}

static void fuzz_command_complete(const uint8_t *body, size_t len)
{
	const char *tag;
	if (proto_command_complete_parse(body, len, &tag))
		FUZZ_CHECK(tag == (const char *)body && strlen(tag) + 1 == len);
}

/* The ProtoReader driven by a program: byte 0 is the program's length K,
 * bytes 1..K the program, the rest the data. Each op's low 3 bits pick a
 * get; a skip takes the op's high 5 bits as its count. */
static void fuzz_reader(const uint8_t *body, size_t len)
{
	if (len < 1)
		return;
	size_t k = body[0] < len - 1 ? body[0] : len - 1;
	const uint8_t *prog = body + 1;
	uint8_t *data = fuzz_copy(body + 1 + k, len - 1 - k);
	size_t dlen = len - 1 - k;
	ProtoReader r;
	proto_reader_init(&r, data, dlen);
	for (size_t i = 0; i < k; i++) {
		const uint8_t *before = r.p;
		bool was_bad = r.bad;
		size_t left = (size_t)(r.end - r.p);
		bool ok;
		size_t want;
		uint8_t u8;
		uint16_t u16;
		uint32_t u32;
		const char *s = NULL;
		switch (prog[i] & 7) {
		case 0: ok = proto_get_uint8(&r, &u8), want = 1; break;
		case 1: ok = proto_get_uint16(&r, &u16), want = 2; break;
		case 2: ok = proto_get_uint32(&r, &u32), want = 4; break;
		case 3:
			ok = proto_get_cstring(&r, &s);
			want = ok ? strlen(s) + 1 : left + 1;
			if (ok)
				FUZZ_CHECK(s == (const char *)before);
			break;
		case 4: ok = proto_get_skip(&r, prog[i] >> 3), want = prog[i] >> 3; break;
		default: FUZZ_CHECK(proto_reader_done(&r) == (!r.bad && r.p == r.end)); continue;
		}
		FUZZ_CHECK(r.p >= data && r.p <= r.end && r.end == data + dlen);
		if (was_bad) {
			FUZZ_CHECK(!ok && r.bad && r.p == before); /* bad is sticky */
		} else if (want <= left) {
			FUZZ_CHECK(ok && !r.bad && r.p == before + want);
		} else {
			FUZZ_CHECK(!ok && r.bad && r.p == before);
		}
	}
	free(data);
}

/* proto_quote_literal, undone by hand: E'...' unescapes \\ and '', '...'
 * only ''; the result must be the input. */
static void fuzz_quote(const uint8_t *body, size_t len)
{
	char *s = fuzz_cstring(body, len);
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_bytes(&b, "x", 1); /* appends after what is there */
	proto_quote_literal(&b, s);
	FUZZ_CHECK(protobuf_ok(&b) && b.len >= 3 && b.data[0] == 'x');
	const uint8_t *p = b.data + 1, *end = b.data + b.len;
	bool e = *p == 'E';
	if (e)
		p++;
	FUZZ_CHECK(*p == '\'' && end[-1] == '\'' && p < end - 1);
	p++;
	end--;
	size_t slen = strlen(s), j = 0;
	while (p < end) {
		char c = (char)*p++;
		if (c == '\'' || (e && c == '\\')) {
			FUZZ_CHECK(p < end && *p == (uint8_t)c); /* doubled */
			p++;
		}
		FUZZ_CHECK(j < slen && s[j] == c);
		j++;
	}
	FUZZ_CHECK(j == slen);
	FUZZ_CHECK(e == (strchr(s, '\\') != NULL));
	protobuf_free(&b);
	free(s);
}

/* NegotiateProtocolVersion: the body's NUL-separated strings (up to 16) as
 * the options; the reader reads back what was written. */
static void fuzz_negotiate(const uint8_t *body, size_t len)
{
	enum { MAX_OPTIONS = 16 };
	uint32_t version0, count0;
	if (proto_negotiate_protocol_version_parse(body, len, &version0, &count0))
		FUZZ_CHECK(count0 <= len - 8); /* each name holds at least its NUL */
	char *text = malloc(len + 1);
	FUZZ_CHECK(text != NULL);
	if (len)
		memcpy(text, body, len);
	text[len] = '\0';
	const char *opts[MAX_OPTIONS];
	size_t n = 0;
	for (char *p = text; n < MAX_OPTIONS && p < text + len; p += strlen(p) + 1)
		opts[n++] = p;
	uint32_t minor = len ? body[0] : 0;
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_negotiate_protocol_version(&b, minor, opts, n);
	uint32_t blen;
	const uint8_t *got = reframe(&b, PROTO_BE_NEGOTIATE_PROTOCOL_VERSION, &blen);
	ProtoReader r;
	uint32_t version, count;
	proto_reader_init(&r, got, blen);
	FUZZ_CHECK(proto_get_uint32(&r, &version) && version == PROTO_VERSION(3, minor));
	FUZZ_CHECK(proto_get_uint32(&r, &count) && count == n);
	for (size_t i = 0; i < n; i++) {
		const char *s;
		FUZZ_CHECK(proto_get_cstring(&r, &s) && strcmp(s, opts[i]) == 0);
	}
	FUZZ_CHECK(proto_reader_done(&r));
	FUZZ_CHECK(proto_negotiate_protocol_version_parse(got, blen, &version, &count));
	FUZZ_CHECK(version == PROTO_VERSION(3, minor) && count == n);
	protobuf_free(&b);
	free(text);
}

/* BackendKeyData: exactly 8 bytes parse, and rebuild to the same body. */
static void fuzz_backend_key_data(const uint8_t *body, size_t len)
{
	uint32_t pid, key;
	bool ok = proto_backend_key_data_parse(body, len, &pid, &key);
	FUZZ_CHECK(ok == (len == 8));
	if (!ok)
		return;
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_backend_key_data(&b, pid, key);
	uint32_t n;
	const uint8_t *again = reframe(&b, PROTO_BE_BACKEND_KEY_DATA, &n);
	FUZZ_CHECK(n == len && memcmp(again, body, len) == 0);
	protobuf_free(&b);
}

static const uint8_t selectors[] = {'Z', 'E', 'N', 'Q', 'P', 'S', 'C', 'r', 'q', 'v', 'K'};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t sel = data[0];
	(void)proto_fe_type_to_str(sel);
	(void)proto_be_type_to_str(sel);
	if (!memchr(selectors, sel, sizeof(selectors)))
		sel = selectors[sel % sizeof(selectors)];
	uint8_t *body = fuzz_copy(data + 1, size - 1);
	size_t len = size - 1;
	switch (sel) {
	case 'Z': fuzz_ready_for_query(body, len); break;
	case 'E':
	case 'N': fuzz_error(sel, body, len); break;
	case 'Q': fuzz_query(body, len); break;
	case 'P': fuzz_parse(body, len); break;
	case 'S': fuzz_parameter_status(body, len); break;
	case 'C': fuzz_command_complete(body, len); break;
	case 'r': fuzz_reader(body, len); break;
	case 'q': fuzz_quote(body, len); break;
	case 'v': fuzz_negotiate(body, len); break;
	case 'K': fuzz_backend_key_data(body, len); break;
	default: FUZZ_CHECK(!"selector");
	}
	free(body);
	return 0;
}
