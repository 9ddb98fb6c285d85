/*
 * tests/unit/test_prepared.c: unit tests of protocol-level prepared
 * statements in transaction mode (proxy/prepared.c).
 *
 * The test plays client.c and server.c around the public ps_* functions:
 *   - a client message goes through ps_client_message as client_step_message
 *     sends it (whole for the types of ps_needs_whole); when it answers
 *     "forward", the test appends the original bytes to the server's output,
 *     as client_step_forward would;
 *   - server answers go through pump(), a copy of server_pump's use of the
 *     queue: runs of plain messages with ps_server_pass and then
 *     ps_server_emit_due (server_plain_run), and single messages with
 *     ps_server_final / ps_server_swallow / ps_server_after
 *     (server_step_message). Every scenario runs three times: all answers in
 *     one read (long runs), one message per read (runs of one), and without
 *     runs (every answer stepped), and must give the same bytes each time.
 *
 * What each side got is decoded back into text ("Parse(pgflip_1,SELECT 1,[])
 * Sync"), checking every length on the way, so the comparisons are of exact
 * bytes: a stray byte, a wrong length or a changed name fails the decode or
 * the comparison.
 *
 * Sockets are Socks with only their output evbuffer (no fd, no event loop):
 * sock_write queues there and nothing is flushed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "proxy/proxy.h"
#include "tests/unit/conf_text.h"

static char test_dir[] = "/tmp/pgflip-test-prepared-XXXXXX";
static char conf_path[2][256];
static Conf *conf_tx;  /* pool_mode = transaction, max_prepared_statements = 3 */
static Conf *conf_off; /* max_prepared_statements = 0 */

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(test_dir))
		return -1;
	for (int i = 0; i < 2; i++)
		snprintf(conf_path[i], sizeof(conf_path[i]), "%s/%d.ini", test_dir, i);
	conf_tx = load_text(conf_path[0], "[pgflip]\npool_mode = transaction\nmax_prepared_statements = 3\n"
	                                  "[databases]\ndemo = dbname=demo\n[routes]\ndefault = public_v1\n");
	conf_off = load_text(conf_path[1], "[pgflip]\npool_mode = transaction\nmax_prepared_statements = 0\n"
	                                   "[databases]\ndemo = dbname=demo\n[routes]\ndefault = public_v1\n");
	if (!conf_tx || !conf_off)
		return -1;
	if (conf_tx->pool_mode != CONF_POOL_TRANSACTION || conf_tx->max_prepared_statements != 3)
		return -1;
	proxy.conf = conf_tx;
	return 0;
}

static void fixture_free(void);

static int group_teardown(void **state)
{
	(void)state;
	fixture_free();
	proxy.conf = NULL;
	conf_free(conf_tx);
	conf_free(conf_off);
	for (int i = 0; i < 2; i++)
		unlink(conf_path[i]);
	return rmdir(test_dir);
}

/* ---- the fixture: one client, two servers of its pool -------------------- */

typedef struct Fixture {
	Pool pool;
	Client c;
	Server s1, s2;
} Fixture;

static Fixture fx;

/* A message ps_client_hold held (it waits for pgflip's Describe), which
 * send_held sends once the answer is in: client_pump does that. */
static ProtoBuf held;
static bool have_held;

/* Errors and notices are shown by SQLSTATE, or with all their fields
 * (decode_be). */
static bool error_fields;

static void sock_init_out(Sock *s)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->out = evbuffer_new();
	assert_non_null(s->out);
}

/* The client's transactions run on S from now on. */
static void link_to(Server *s)
{
	if (fx.c.server)
		fx.c.server->client = NULL;
	fx.c.server = s;
	s->client = &fx.c;
}

static void set_route(const char *route)
{
	free(fx.c.route);
	fx.c.route = proxy_strdup(route);
}

static void fixture_free(void)
{
	if (have_held)
		protobuf_free(&held);
	have_held = false;
	ps_client_clear(&fx.c);
	free(fx.c.route);
	sock_close(&fx.c.sock);
	Server *servers[] = {&fx.s1, &fx.s2};
	for (size_t i = 0; i < 2; i++) {
		ps_server_clear(servers[i]);
		free(servers[i]->ps);
		free(servers[i]->expect.items);
		sock_close(&servers[i]->sock);
	}
	memset(&fx, 0, sizeof(fx));
}

/* A fresh fixture; whatever a failed test left is freed first (its Socks
 * may still be on sock.c's list of sockets to flush). */
static void fixture_init(void)
{
	fixture_free();
	error_fields = false;
	fx.pool.mode = CONF_POOL_TRANSACTION;
	fx.pool.database = "demo";
	fx.pool.user = "alice";
	fx.c.pool = &fx.pool;
	fx.c.id = 1;
	sock_init_out(&fx.c.sock);
	fx.s1.id = 1;
	fx.s1.pool = &fx.pool;
	fx.s1.tx_status = 'I'; /* logged in, idle */
	sock_init_out(&fx.s1.sock);
	fx.s2.id = 2;
	fx.s2.pool = &fx.pool;
	fx.s2.tx_status = 'I';
	sock_init_out(&fx.s2.sock);
	set_route("public_v1");
	link_to(&fx.s1);
}

/* ---- the three ways answers reach prepared.c ------------------------------ */

typedef enum { FEED_ALL = 0, FEED_EACH, FEED_STEPS, FEED__COUNT } FeedMode;

static const char *const feed_names[] = {"all answers in one read", "one answer per read", "no runs"};
static FeedMode feed;

#define FOR_EACH_FEED for (feed = FEED_ALL; feed < FEED__COUNT; feed++)

static uint32_t get_u32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static size_t msg_total(const uint8_t *p)
{
	return (size_t)get_u32(p + 1) + 1;
}

/* server_plain_run: the whole messages at P (LEN bytes) that go to the
 * client in one move; the queue entries their answers end are taken off. */
static size_t plain_run(Server *s, const uint8_t *p, size_t len)
{
	size_t off = 0;
	while (len - off >= PROTO_HEADER_SIZE) {
		uint8_t type = p[off];
		size_t total = msg_total(p + off);
		if (total > len - off)
			break;
		if (type == PROTO_BE_READY_FOR_QUERY || type == PROTO_BE_PARAMETER_STATUS ||
		    type == PROTO_BE_ERROR_RESPONSE)
			break;
		bool end_run = false;
		if (s->expect.count > 0 && !ps_server_pass(s, type, &end_run))
			break;
		off += total;
		if (end_run)
			break;
	}
	return off;
}

/* server_step_message and server_step_inspect, for one whole message.
 * While swallow_rfq is set (a request pgflip retries: its first answers
 * are not the client's), everything up to that ReadyForQuery is dropped
 * and the queue is not looked at, as in server.c; a ReadyForQuery records
 * the transaction status (server_ready). */
static void step_message(Server *s, const uint8_t *p, size_t total)
{
	uint8_t type = p[0];
	Sock *out = s->client ? &s->client->sock : NULL;
	bool swallow = s->swallow_rfq > 0 || !out;
	bool ps_final = !swallow && s->expect.count > 0 && ps_server_final(s, type);
	bool inspect = type == PROTO_BE_READY_FOR_QUERY || type == PROTO_BE_PARAMETER_STATUS ||
	               type == PROTO_BE_ERROR_RESPONSE || ps_final;
	if (!inspect) {
		if (!swallow)
			sock_write(out, p, total);
		return;
	}
	bool forward = !swallow;
	ProtoHeader h = {.type = type, .len = (uint32_t)(total - 1)};
	if (type != PROTO_BE_READY_FOR_QUERY && ps_final && ps_server_swallow(s, &h, p))
		forward = false;
	if (forward)
		sock_write(out, p, total);
	if (ps_final)
		ps_server_after(s, type);
	if (type == PROTO_BE_READY_FOR_QUERY) {
		assert_int_equal(total, 6);
		s->tx_status = (char)p[5];
		if (s->swallow_rfq > 0)
			s->swallow_rfq--; /* server_own_ready */
	}
}

/* server_pump over the messages at P (LEN bytes, whole messages). */
static void pump_bytes(Server *s, const uint8_t *p, size_t len)
{
	size_t off = 0;
	while (off < len) {
		size_t n;
		if (feed != FEED_STEPS && s->client && s->swallow_rfq == 0 &&
		    (n = plain_run(s, p + off, len - off)) > 0) {
			sock_write(&s->client->sock, p + off, n);
			ps_server_emit_due(s);
			off += n;
			continue;
		}
		size_t total = msg_total(p + off);
		assert_true(total <= len - off);
		step_message(s, p + off, total);
		off += total;
	}
}

/* The answers built in B reach S as the feed mode says; B is reset. */
static void pump(Server *s, ProtoBuf *b)
{
	assert_true(protobuf_ok(b));
	if (feed == FEED_EACH) {
		for (size_t off = 0; off < b->len; off += msg_total(b->data + off))
			pump_bytes(s, b->data + off, msg_total(b->data + off));
	} else {
		pump_bytes(s, b->data, b->len);
	}
	protobuf_reset(b);
}

/* ---- client messages ------------------------------------------------------ */

/* The one message in B goes from the client towards its server, as
 * client_step_message moves it. Returns ps_client_message's answer (false
 * too when the message is held). */
static bool send_msg(ProtoBuf *b)
{
	ProtoHeader h;
	const char *why = "";
	assert_true(protobuf_ok(b));
	assert_int_equal(proto_header_parse(b->data, b->len, 0x3fffffff, &h, &why), PROTO_OK);
	assert_int_equal((size_t)h.len + 1, b->len);
	Server *s = fx.c.server;
	assert_false(have_held);
	if (ps_needs_whole(h.type) && ps_client_hold(&fx.c, s, &h, b->data)) {
		held = *b;
		have_held = true;
		assert_true(ps_holding(s));
		return false;
	}
	bool forward = ps_client_message(&fx.c, s, &h, ps_needs_whole(h.type) ? b->data : NULL);
	if (forward)
		sock_write(&s->sock, b->data, b->len);
	protobuf_free(b);
	return forward;
}

/* The held message goes on, as the pump sends it again when pgflip's
 * Describe is answered. */
static bool send_held(void)
{
	assert_true(have_held);
	assert_false(ps_holding(fx.c.server));
	have_held = false;
	return send_msg(&held);
}

static bool c_parse_typed(const char *name, const char *sql, int n_oids, const uint32_t *oids)
{
	ProtoBuf b;
	protobuf_init(&b);
	size_t m = proto_msg_begin(&b, PROTO_FE_PARSE);
	proto_put_cstring(&b, name);
	proto_put_cstring(&b, sql);
	proto_put_uint16(&b, (uint16_t)n_oids);
	for (int i = 0; i < n_oids; i++)
		proto_put_uint32(&b, oids[i]);
	proto_msg_end(&b, m);
	return send_msg(&b);
}

static bool c_parse(const char *name, const char *sql)
{
	return c_parse_typed(name, sql, 0, NULL);
}

/* Bind with one text parameter PARAM (NULL: none) and one result format
 * (binary), so that the bytes after the statement name are not empty. */
static bool c_bind(const char *portal, const char *stmt, const char *param)
{
	ProtoBuf b;
	protobuf_init(&b);
	size_t m = proto_msg_begin(&b, PROTO_FE_BIND);
	proto_put_cstring(&b, portal);
	proto_put_cstring(&b, stmt);
	proto_put_uint16(&b, 0); /* parameter formats: all text */
	proto_put_uint16(&b, param ? 1 : 0);
	if (param) {
		proto_put_uint32(&b, (uint32_t)strlen(param));
		proto_put_bytes(&b, param, strlen(param));
	}
	proto_put_uint16(&b, 1);
	proto_put_uint16(&b, 1);
	proto_msg_end(&b, m);
	return send_msg(&b);
}

static bool c_describe(char kind, const char *name)
{
	ProtoBuf b;
	protobuf_init(&b);
	size_t m = proto_msg_begin(&b, PROTO_FE_DESCRIBE);
	proto_put_uint8(&b, (uint8_t)kind);
	proto_put_cstring(&b, name);
	proto_msg_end(&b, m);
	return send_msg(&b);
}

static bool c_close(char kind, const char *name)
{
	ProtoBuf b;
	protobuf_init(&b);
	size_t m = proto_msg_begin(&b, PROTO_FE_CLOSE);
	proto_put_uint8(&b, (uint8_t)kind);
	proto_put_cstring(&b, name);
	proto_msg_end(&b, m);
	return send_msg(&b);
}

static bool c_execute(const char *portal, uint32_t max_rows)
{
	ProtoBuf b;
	protobuf_init(&b);
	size_t m = proto_msg_begin(&b, PROTO_FE_EXECUTE);
	proto_put_cstring(&b, portal);
	proto_put_uint32(&b, max_rows);
	proto_msg_end(&b, m);
	return send_msg(&b);
}

static bool c_bare(uint8_t type)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_msg_end(&b, proto_msg_begin(&b, type));
	return send_msg(&b);
}

static bool c_sync(void)
{
	return c_bare(PROTO_FE_SYNC);
}
static bool c_flush(void)
{
	return c_bare(PROTO_FE_FLUSH);
}

static bool c_query(const char *sql)
{
	ProtoBuf b;
	protobuf_init(&b);
	proto_put_query(&b, sql);
	return send_msg(&b);
}

/* ---- server answers ------------------------------------------------------- */

static void a_bare(ProtoBuf *b, uint8_t type)
{
	proto_msg_end(b, proto_msg_begin(b, type));
}
static void a_parse_complete(ProtoBuf *b)
{
	a_bare(b, PROTO_BE_PARSE_COMPLETE);
}
static void a_bind_complete(ProtoBuf *b)
{
	a_bare(b, PROTO_BE_BIND_COMPLETE);
}
static void a_close_complete(ProtoBuf *b)
{
	a_bare(b, PROTO_BE_CLOSE_COMPLETE);
}
static void a_no_data(ProtoBuf *b)
{
	a_bare(b, PROTO_BE_NO_DATA);
}
static void a_portal_suspended(ProtoBuf *b)
{
	a_bare(b, PROTO_BE_PORTAL_SUSPENDED);
}

static void a_parameter_description(ProtoBuf *b, uint32_t oid)
{
	size_t m = proto_msg_begin(b, PROTO_BE_PARAMETER_DESCRIPTION);
	proto_put_uint16(b, 1);
	proto_put_uint32(b, oid);
	proto_msg_end(b, m);
}

/* RowDescription of one int4 column NAME. */
static void a_row_description(ProtoBuf *b, const char *name)
{
	size_t m = proto_msg_begin(b, PROTO_BE_ROW_DESCRIPTION);
	proto_put_uint16(b, 1);
	proto_put_cstring(b, name);
	proto_put_uint32(b, 0);
	proto_put_uint16(b, 0);
	proto_put_uint32(b, 23);
	proto_put_uint16(b, 4);
	proto_put_uint32(b, 0xffffffffu);
	proto_put_uint16(b, 0);
	proto_msg_end(b, m);
}

static void a_data_row(ProtoBuf *b, const char *value)
{
	size_t m = proto_msg_begin(b, PROTO_BE_DATA_ROW);
	proto_put_uint16(b, 1);
	proto_put_uint32(b, (uint32_t)strlen(value));
	proto_put_bytes(b, value, strlen(value));
	proto_msg_end(b, m);
}

static void a_command_complete(ProtoBuf *b, const char *tag)
{
	size_t m = proto_msg_begin(b, PROTO_BE_COMMAND_COMPLETE);
	proto_put_cstring(b, tag);
	proto_msg_end(b, m);
}

static void a_rfq(ProtoBuf *b, char status)
{
	proto_put_ready_for_query(b, status);
}

/* ---- decoding what each side got ----------------------------------------- */

typedef struct Text {
	char s[8192];
	size_t n;
} Text;

static void text_add(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(Text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(t->s + t->n, sizeof(t->s) - t->n, fmt, ap);
	va_end(ap);
	assert_true(k >= 0 && (size_t)k < sizeof(t->s) - t->n);
	t->n += (size_t)k;
}

static const char *get_str(ProtoReader *r)
{
	const char *s = NULL;
	if (!proto_get_cstring(r, &s))
		fail_msg("[%s] message without its string", feed_names[feed]);
	return s;
}

static uint16_t get16(ProtoReader *r)
{
	uint16_t v = 0;
	if (!proto_get_uint16(r, &v))
		fail_msg("[%s] message cut short", feed_names[feed]);
	return v;
}

static uint32_t get32(ProtoReader *r)
{
	uint32_t v = 0;
	if (!proto_get_uint32(r, &v))
		fail_msg("[%s] message cut short", feed_names[feed]);
	return v;
}

static void a_bare(ProtoBuf *b, uint8_t type);
static void a_no_data(ProtoBuf *b);
static void a_parameter_description(ProtoBuf *b, uint32_t oid);
static void a_command_complete(ProtoBuf *b, const char *tag);

/* What a server that succeeds at everything answers to a frontend message
 * of TYPE (a Describe of KIND), into B. */
static void echo_answer(ProtoBuf *b, uint8_t type, uint8_t kind)
{
	switch (type) {
	case PROTO_FE_PARSE: a_bare(b, PROTO_BE_PARSE_COMPLETE); break;
	case PROTO_FE_BIND: a_bare(b, PROTO_BE_BIND_COMPLETE); break;
	case PROTO_FE_CLOSE: a_bare(b, PROTO_BE_CLOSE_COMPLETE); break;
	case PROTO_FE_DESCRIBE:
		if (kind == 'S')
			a_parameter_description(b, 0);
		a_no_data(b);
		break;
	case PROTO_FE_EXECUTE: a_command_complete(b, "SELECT 0"); break;
	case PROTO_FE_QUERY:
		a_command_complete(b, "SELECT 0");
		proto_put_ready_for_query(b, 'I');
		break;
	case PROTO_FE_SYNC: proto_put_ready_for_query(b, 'I'); break;
	default: break;
	}
}

/* One frontend message as text. */
static void decode_fe(Text *t, uint8_t type, ProtoReader *r)
{
	switch (type) {
	case PROTO_FE_PARSE: {
		const char *name = get_str(r);
		const char *sql = get_str(r);
		text_add(t, "Parse(%s,%s,[", name, sql);
		for (uint16_t i = 0, n = get16(r); i < n; i++)
			text_add(t, "%s%u", i ? "," : "", get32(r));
		text_add(t, "])");
		break;
	}
	case PROTO_FE_BIND: {
		const char *portal = get_str(r);
		const char *stmt = get_str(r);
		text_add(t, "Bind(%s,%s,[", portal, stmt);
		for (uint16_t i = 0, n = get16(r); i < n; i++)
			text_add(t, "%s%u", i ? "," : "", get16(r));
		text_add(t, "],[");
		for (uint16_t i = 0, n = get16(r); i < n; i++) {
			uint32_t len = get32(r);
			if (len == 0xffffffffu) {
				text_add(t, "%sNULL", i ? "," : "");
				continue;
			}
			const uint8_t *v = r->p;
			if (!proto_get_skip(r, len))
				fail_msg("[%s] Bind parameter past the end", feed_names[feed]);
			text_add(t, "%s%.*s", i ? "," : "", (int)len, (const char *)v);
		}
		text_add(t, "],[");
		for (uint16_t i = 0, n = get16(r); i < n; i++)
			text_add(t, "%s%u", i ? "," : "", get16(r));
		text_add(t, "])");
		break;
	}
	case PROTO_FE_DESCRIBE:
	case PROTO_FE_CLOSE: {
		uint8_t kind = 0;
		if (!proto_get_uint8(r, &kind))
			fail_msg("[%s] Describe/Close without its kind", feed_names[feed]);
		text_add(t, "%s(%c,%s)", type == PROTO_FE_CLOSE ? "Close" : "Describe", kind, get_str(r));
		break;
	}
	case PROTO_FE_EXECUTE: {
		const char *portal = get_str(r);
		text_add(t, "Execute(%s,%u)", portal, get32(r));
		break;
	}
	case PROTO_FE_QUERY: text_add(t, "Query(%s)", get_str(r)); break;
	default: text_add(t, "%s", proto_fe_type_to_str(type)); break;
	}
}

/* One backend message as text: the type, and the part of the body that
 * tells one answer from another. */
static void decode_be(Text *t, uint8_t type, ProtoReader *r)
{
	switch (type) {
	case PROTO_BE_COMMAND_COMPLETE: text_add(t, "CommandComplete(%s)", get_str(r)); break;
	case PROTO_BE_DATA_ROW: {
		uint16_t n = get16(r);
		uint32_t len = get32(r);
		const uint8_t *v = r->p;
		if (n != 1 || !proto_get_skip(r, len))
			fail_msg("[%s] unexpected DataRow", feed_names[feed]);
		text_add(t, "DataRow(%.*s)", (int)len, (const char *)v);
		break;
	}
	case PROTO_BE_READY_FOR_QUERY: {
		uint8_t st = 0;
		if (!proto_get_uint8(r, &st))
			fail_msg("[%s] ReadyForQuery without status", feed_names[feed]);
		text_add(t, "ReadyForQuery(%c)", st);
		break;
	}
	case PROTO_BE_ERROR_RESPONSE:
	case PROTO_BE_NOTICE_RESPONSE: {
		ProtoErrorFields ef;
		if (!proto_error_parse(r->p, (size_t)(r->end - r->p), &ef))
			fail_msg("[%s] bad ErrorResponse", feed_names[feed]);
		const char *what = type == PROTO_BE_ERROR_RESPONSE ? "ErrorResponse" : "NoticeResponse";
		if (!error_fields) {
			text_add(t, "%s(%s)", what, ef.sqlstate);
			r->p = r->end;
			break;
		}
		/* every field, in order: "ErrorResponse(S=ERROR|C=42P05|M=...)" */
		text_add(t, "%s(", what);
		uint8_t code = 0;
		for (int i = 0; proto_get_uint8(r, &code) && code; i++)
			text_add(t, "%s%c=%s", i ? "|" : "", code, get_str(r));
		if (code)
			fail_msg("[%s] ErrorResponse without its terminator", feed_names[feed]);
		text_add(t, ")");
		break;
	}
	case PROTO_BE_PARAMETER_STATUS: {
		const char *name = get_str(r);
		text_add(t, "ParameterStatus(%s=%s)", name, get_str(r));
		break;
	}
	default:
		text_add(t, "%s", proto_be_type_to_str(type));
		r->p = r->end; /* RowDescription, ParameterDescription: not looked into */
		break;
	}
}

/* Everything queued on SOCK so far, decoded and drained; messages are
 * separated by one space. ECHO (frontend only, may be NULL) gets the answers
 * of a server that succeeds at everything. */
static const char *take(Sock *sock, bool frontend, ProtoBuf *echo)
{
	static Text t;
	t.n = 0;
	t.s[0] = '\0';
	size_t len = evbuffer_get_length(sock->out);
	const uint8_t *p = evbuffer_pullup(sock->out, (ev_ssize_t)len);
	size_t off = 0;
	while (off < len) {
		ProtoHeader h;
		const char *why = "";
		if (proto_header_parse(p + off, len - off, 0x3fffffff, &h, &why) != PROTO_OK ||
		    (size_t)h.len + 1 > len - off)
			fail_msg("[%s] bad or cut message at byte %zu: %s", feed_names[feed], off, why);
		ProtoReader r;
		proto_reader_init(&r, p + off + PROTO_HEADER_SIZE, proto_body_len(&h));
		if (t.n)
			text_add(&t, " ");
		if (echo)
			echo_answer(echo, h.type, h.type == PROTO_FE_DESCRIBE && h.len > 4 ? p[off + 5] : 0);
		if (frontend)
			decode_fe(&t, h.type, &r);
		else
			decode_be(&t, h.type, &r);
		if (!proto_reader_done(&r))
			fail_msg("[%s] %s has %zu bytes more than its fields", feed_names[feed], t.s,
			         (size_t)(r.end - r.p));
		off += (size_t)h.len + 1;
	}
	evbuffer_drain(sock->out, len);
	return t.s;
}

/* What the server S / the client got since the last look, exactly. */
#define SERVER_GOT(s, want) expect_text(take(&(s)->sock, true, NULL), want, "server", __LINE__)
#define CLIENT_GOT(want) expect_text(take(&fx.c.sock, false, NULL), want, "client", __LINE__)
/* ... and the server S answers it all with success. */
#define SERVER_GOT_ANSWERS(s, want) server_got_answers(s, want, __LINE__)

static void expect_text(const char *got, const char *want, const char *who, int line)
{
	if (strcmp(got, want) != 0)
		fail_msg("line %d [%s] the %s got\n  %s\nwant\n  %s", line, feed_names[feed], who, got, want);
}

/* The kinds of S's expect queue, head first, as letters: p PARSE, b BIND,
 * d DESCRIBE, e EXECUTE, c CLOSE, s SYNC, q QUERY, P SWALLOW_PARSE,
 * C SWALLOW_CLOSE, 3 SYNTH_CLOSE, R REFUSE_PARSE, D SWALLOW_DESCRIBE, X REFUSE_WITH
 * (in PsExpectKind's order). */
static const char *queue_str(const Server *s)
{
	static char out[256];
	static const char letters[] = "pbdecsqPC3RDX";
	_Static_assert(sizeof(letters) - 1 == PS_REFUSE_WITH + 1, "one letter per PsExpectKind");
	size_t n = 0;
	for (size_t i = 0; i < s->expect.count && n + 1 < sizeof(out); i++)
		out[n++] = letters[s->expect.items[(s->expect.head + i) % s->expect.cap].kind];
	out[n] = '\0';
	return out;
}

static void server_got_answers(Server *s, const char *want, int line)
{
	ProtoBuf echo;
	protobuf_init(&echo);
	expect_text(take(&s->sock, true, &echo), want, "server", line);
	pump(s, &echo);
	protobuf_free(&echo);
}

#define QUEUE_IS(s, want) expect_text(queue_str(s), want, "queue", __LINE__)

/* The ids of the statements S has, in ascending order: "1,3,4"; one that
 * pgflip's Close is on its way for, not yet confirmed, in parentheses:
 * "(1),3,4". */
static const char *server_stmts(const Server *s)
{
	static char out[256];
	const PsServerStmt *sts[64];
	size_t n = s->n_ps;
	assert_true(n <= 64);
	for (size_t i = 0; i < n; i++)
		sts[i] = &s->ps[i];
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && sts[j - 1]->id > sts[j]->id; j--) {
			const PsServerStmt *x = sts[j];
			sts[j] = sts[j - 1];
			sts[j - 1] = x;
		}
	size_t k = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(out + k, sizeof(out) - k, sts[i]->closing ? "%s(%llu)" : "%s%llu", i ? "," : "",
		                      (unsigned long long)sts[i]->id);
	return out;
}

#define STMTS_ARE(s, want) expect_text(server_stmts(s), want, "statement list", __LINE__)

/* The client's statement names, in ascending order; one whose Close is on
 * its way, not yet answered, in parentheses: "(s1),s2". */
static const char *client_stmts(void)
{
	static char out[512];
	const PsClientStmt *sts[32];
	size_t n = fx.c.n_ps;
	assert_true(n <= 32);
	for (size_t i = 0; i < n; i++)
		sts[i] = &fx.c.ps[i];
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(sts[j - 1]->name, sts[j]->name) > 0; j--) {
			const PsClientStmt *x = sts[j];
			sts[j] = sts[j - 1];
			sts[j - 1] = x;
		}
	size_t k = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(out + k, sizeof(out) - k, sts[i]->closing ? "%s(%s)" : "%s%s", i ? "," : "",
		                      sts[i]->name);
	return out;
}

#define CLIENT_STMTS_ARE(want) expect_text(client_stmts(), want, "client statement list", __LINE__)

/* One whole transaction of statement NAME (the client's) on its server:
 * Bind + Execute + Sync, answered with success. LINE: the caller's. */
static void run_bound_at(const char *name, const char *server_want, int line)
{
	assert_false(c_bind("", name, NULL));
	assert_true(c_execute("", 0));
	assert_true(c_sync());
	server_got_answers(fx.c.server, server_want, line);
	expect_text(take(&fx.c.sock, false, NULL), "BindComplete CommandComplete(SELECT 0) ReadyForQuery(I)", "client",
	            line);
	expect_text(queue_str(fx.c.server), "", "queue", line);
}

/* Parse NAME as SQL + Sync, answered with success. */
static void run_parse_at(const char *name, const char *sql, const char *server_want, int line)
{
	assert_false(c_parse(name, sql));
	assert_true(c_sync());
	server_got_answers(fx.c.server, server_want, line);
	expect_text(take(&fx.c.sock, false, NULL), "ParseComplete ReadyForQuery(I)", "client", line);
	expect_text(queue_str(fx.c.server), "", "queue", line);
}

#define run_bound(name, server_want) run_bound_at(name, server_want, __LINE__)
#define run_parse(name, sql, server_want) run_parse_at(name, sql, server_want, __LINE__)

/* ---- tests ---------------------------------------------------------------- */

static void test_enabled(void **state)
{
	(void)state;
	fixture_init();
	assert_true(ps_enabled(&fx.c));
	fx.pool.mode = CONF_POOL_SESSION;
	assert_false(ps_enabled(&fx.c));
	fx.pool.mode = CONF_POOL_TRANSACTION;
	proxy.conf = conf_off;
	assert_false(ps_enabled(&fx.c));
	proxy.conf = conf_tx;
	fx.c.pool = NULL; /* still logging in */
	assert_false(ps_enabled(&fx.c));
	fx.c.pool = &fx.pool;
	fixture_free();

	/* Execute is held whole too (since 77bb2b4): a request that may meet a
	 * stale statement is kept, message by message, to be sent again
	 * (PsReplay), and an Execute is small (a portal name, a row count) */
	static const uint8_t whole[] = {PROTO_FE_PARSE, PROTO_FE_BIND, PROTO_FE_DESCRIBE, PROTO_FE_CLOSE,
	                                PROTO_FE_EXECUTE};
	static const uint8_t streamed[] = {PROTO_FE_SYNC, PROTO_FE_FLUSH, PROTO_FE_QUERY, PROTO_FE_COPY_DATA,
	                                   PROTO_FE_FUNCTION_CALL};
	for (size_t i = 0; i < sizeof(whole); i++)
		assert_true(ps_needs_whole(whole[i]));
	for (size_t i = 0; i < sizeof(streamed); i++)
		assert_false(ps_needs_whole(streamed[i]));
}

/* Unnamed statements and portals are not pgflip's business: everything
 * goes through unchanged, each message with its expected answer. */
static void test_unnamed(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		assert_true(c_parse("", "SELECT $1"));
		assert_true(c_bind("", "", "7"));
		assert_true(c_describe('P', ""));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(,SELECT $1,[]) Bind(,,[],[7],[1]) Describe(P,) Execute(,0) Sync");
		CLIENT_GOT("");
		QUEUE_IS(&fx.s1, "pbdes");
		a_parse_complete(&a);
		a_bind_complete(&a);
		a_row_description(&a, "x");
		a_data_row(&a, "7");
		a_command_complete(&a, "SELECT 1");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete BindComplete RowDescription DataRow(7) CommandComplete(SELECT 1) "
		           "ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		assert_int_equal(fx.s1.n_ps, 0);
		assert_int_equal(fx.c.n_ps, 0);
		protobuf_free(&a);
		fixture_free();
	}
}

/* A named statement: prepared on the server as pgflip_1, and every use of
 * it renamed; the server's answers reach the client as they are. */
static void test_named_parse_describe_bind(void **state)
{
	(void)state;
	static const uint32_t int4[] = {23};
	FOR_EACH_FEED
	{
		fixture_init();
		fx.c.state = CL_CLOSING; /* client_pump, when a hold ends, has nothing to do: send_held does it */
		ProtoBuf a;
		protobuf_init(&a);
		assert_false(c_parse_typed("s1", "SELECT $1::int", 1, int4));
		SERVER_GOT(&fx.s1, "Parse(pgflip_1,SELECT $1::int,[23])");
		assert_false(c_describe('S', "s1"));
		assert_false(c_bind("p1", "s1", "42"));
		assert_true(c_describe('P', "p1"));
		assert_true(c_execute("p1", 10));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1,
		           "Describe(S,pgflip_1) Bind(p1,pgflip_1,[],[42],[1]) Describe(P,p1) Execute(p1,10) Sync");
		CLIENT_GOT("");
		QUEUE_IS(&fx.s1, "pdbdes");
		assert_false(fx.s1.ps[0].confirmed);
		a_parse_complete(&a);
		a_parameter_description(&a, 23);
		a_row_description(&a, "int4");
		a_bind_complete(&a);
		a_row_description(&a, "int4");
		a_data_row(&a, "42");
		a_command_complete(&a, "SELECT 1");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete ParameterDescription RowDescription BindComplete RowDescription DataRow(42) "
		           "CommandComplete(SELECT 1) ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		STMTS_ARE(&fx.s1, "1");
		assert_true(fx.s1.ps[0].confirmed);
		assert_string_equal(fx.s1.ps[0].route, "public_v1");
		CLIENT_STMTS_ARE("s1");

		/* the next transaction uses it without a Parse */
		run_bound("s1", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		/* a Parse of the same text under another name reaches the server
		 * (77bb2b4): the server gets a new pgflip_2, and pgflip_1 is closed
		 * in the same write, so that the client's plan is as fresh as on a
		 * direct connection (pgflip_1 may be older than a DDL). The client
		 * gets the server's own ParseComplete, the CloseComplete is
		 * pgflip's and swallowed. Both of the client's names now use
		 * pgflip_2: one statement per route and text. */
		assert_false(c_parse_typed("s2", "SELECT $1::int", 1, int4));
		SERVER_GOT(&fx.s1, "Close(S,pgflip_1) Parse(pgflip_2,SELECT $1::int,[23])");
		CLIENT_GOT("");
		QUEUE_IS(&fx.s1, "Cp");
		STMTS_ARE(&fx.s1, "(1),2");
		a_close_complete(&a);
		a_parse_complete(&a);
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete");
		QUEUE_IS(&fx.s1, "");
		STMTS_ARE(&fx.s1, "2");
		run_bound("s2", "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		/* s1 was described and pgflip_2 was not: pgflip learns its
		 * columns before s1 uses it (a DDL may have come between) */
		assert_false(c_bind("", "s1", NULL));
		SERVER_GOT(&fx.s1, "Describe(S,pgflip_2) Flush");
		a_parameter_description(&a, 23);
		a_row_description(&a, "int4");
		pump(&fx.s1, &a);
		CLIENT_GOT("");
		assert_false(send_held());
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT_ANSWERS(&fx.s1, "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		CLIENT_GOT("BindComplete CommandComplete(SELECT 0) ReadyForQuery(I)");
		run_bound("s1", "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		/* the same text with other parameter types is another statement:
		 * nothing to close */
		run_parse("s3", "SELECT $1::int", "Parse(pgflip_3,SELECT $1::int,[]) Sync");
		STMTS_ARE(&fx.s1, "2,3");
		CLIENT_STMTS_ARE("s1,s2,s3");
		/* a long Parse, past prepared.c's stack buffer */
		char sql[3000];
		memset(sql, ' ', sizeof(sql) - 1);
		memcpy(sql, "SELECT 1", 8);
		sql[sizeof(sql) - 1] = '\0';
		char want[3100];
		snprintf(want, sizeof(want), "Parse(pgflip_4,%s,[]) Sync", sql);
		run_parse("long", sql, want);
		protobuf_free(&a);
		fixture_free();
	}
}

/* Made-up answers wait for the answers of what was sent before them. */
static void test_made_up_answers_in_order(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		/* The second Parse of the same text reaches the server too
		 * (77bb2b4), as pgflip_2, and pgflip_1, still in flight, is closed
		 * before it: the server runs Parse, Close, Parse in order, so that
		 * is fine. Its CloseComplete is swallowed (C); the client gets the
		 * server's two ParseCompletes; only the CloseCompletes of the
		 * client's own Closes are made up (3), each in its turn. */
		assert_false(c_parse("a", "SELECT 1"));
		assert_false(c_parse("b", "SELECT 1"));
		assert_false(c_bind("", "b", NULL));
		assert_false(c_close('S', "nosuch")); /* CloseComplete made up */
		assert_true(c_execute("", 0));
		assert_false(c_close('S', "a"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_1,SELECT 1,[]) Close(S,pgflip_1) Parse(pgflip_2,SELECT 1,[]) "
		                   "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		CLIENT_GOT(""); /* nothing may overtake the first ParseComplete */
		QUEUE_IS(&fx.s1, "pCpb3e3s");
		a_parse_complete(&a);
		a_close_complete(&a);
		a_parse_complete(&a);
		a_bind_complete(&a);
		a_data_row(&a, "1");
		a_command_complete(&a, "SELECT 1");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT(
		        "ParseComplete ParseComplete BindComplete CloseComplete DataRow(1) CommandComplete(SELECT 1) "
		        "CloseComplete ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		CLIENT_STMTS_ARE("b");
		STMTS_ARE(&fx.s1, "2"); /* closing a only forgot the client's name */

		/* notices and parameter reports in between change nothing */
		assert_false(c_parse("c", "SELECT 2"));
		assert_false(c_parse("d", "SELECT 2"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_3,SELECT 2,[]) Close(S,pgflip_3) Parse(pgflip_4,SELECT 2,[]) Sync");
		proto_put_notice(&a, "WARNING", "01000", "careful");
		a_parse_complete(&a);
		proto_put_parameter_status(&a, "TimeZone", "UTC");
		a_close_complete(&a);
		a_parse_complete(&a);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("NoticeResponse(01000) ParseComplete ParameterStatus(TimeZone=UTC) ParseComplete "
		           "ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		STMTS_ARE(&fx.s1, "2,4");
		protobuf_free(&a);
		fixture_free();
	}
}

/* A statement prepared on one server follows the client to another: pgflip
 * prepares it there first and swallows that ParseComplete. */
static void test_other_server(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("s1", "SELECT 1", "Parse(pgflip_1,SELECT 1,[]) Sync");
		run_parse("s2", "SELECT 2", "Parse(pgflip_2,SELECT 2,[]) Sync");
		link_to(&fx.s2);
		/* Bind: Parse first, its answer swallowed */
		assert_false(c_bind("", "s2", "x"));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Parse(pgflip_1,SELECT 2,[]) Bind(,pgflip_1,[],[x],[1]) Execute(,0) Sync");
		QUEUE_IS(&fx.s2, "Pbes");
		a_parse_complete(&a);
		a_bind_complete(&a);
		a_data_row(&a, "2");
		a_command_complete(&a, "SELECT 1");
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("BindComplete DataRow(2) CommandComplete(SELECT 1) ReadyForQuery(I)");
		QUEUE_IS(&fx.s2, "");
		STMTS_ARE(&fx.s2, "1");
		assert_true(fx.s2.ps[0].confirmed);
		/* Describe: the same */
		assert_false(c_describe('S', "s1"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Parse(pgflip_2,SELECT 1,[]) Describe(S,pgflip_2) Sync");
		QUEUE_IS(&fx.s2, "Pds");
		a_parse_complete(&a);
		a_parameter_description(&a, 0);
		a_no_data(&a);
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("ParameterDescription NoData ReadyForQuery(I)");
		/* now both are there */
		run_bound("s1", "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		run_bound("s2", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		/* and still on the first server, under its names */
		link_to(&fx.s1);
		run_bound("s2", "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		/* a Parse of a text the first server has reaches it (77bb2b4: its
		 * pgflip_1 of that text is closed, the client's Parse is pgflip_3
		 * there); on the other server, the statement pgflip prepared
		 * there for s1 serves s3 too */
		run_parse("s3", "SELECT 1", "Close(S,pgflip_1) Parse(pgflip_3,SELECT 1,[]) Sync");
		STMTS_ARE(&fx.s1, "2,3");
		link_to(&fx.s2);
		run_bound("s3", "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		protobuf_free(&a);
		fixture_free();
	}
}

/* The same text under two routes resolves to different views: two
 * statements. */
static void test_routes_apart(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		run_parse("s1", "SELECT * FROM t", "Parse(pgflip_1,SELECT * FROM t,[]) Sync");
		set_route("public_v2");
		run_bound("s1", "Parse(pgflip_2,SELECT * FROM t,[]) Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		assert_string_equal(fx.s1.ps[1].route, "public_v2");
		set_route("public_v1");
		run_bound("s1", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		STMTS_ARE(&fx.s1, "1,2");
		fixture_free();
	}
}

static void test_close(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("s1", "SELECT 1", "Parse(pgflip_1,SELECT 1,[]) Sync");
		/* Close of a statement: forgotten for the client, answered at once */
		assert_false(c_close('S', "s1"));
		SERVER_GOT(&fx.s1, "");
		CLIENT_GOT("CloseComplete");
		CLIENT_STMTS_ARE("");
		STMTS_ARE(&fx.s1, "1"); /* kept for the next client */
		/* the name is not pgflip's any more: the server answers it */
		assert_true(c_bind("", "s1", NULL));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Bind(,s1,[],[],[1]) Sync");
		QUEUE_IS(&fx.s1, "bs");
		proto_put_error(&a, "ERROR", "26000", "prepared statement \"s1\" does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(26000) ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		/* the same text again: the server still has pgflip_1, but the
		 * client's Parse reaches the server (77bb2b4) as pgflip_2, with
		 * pgflip_1 closed first; the client gets the server's
		 * ParseComplete */
		run_parse("s1", "SELECT 1", "Close(S,pgflip_1) Parse(pgflip_2,SELECT 1,[]) Sync");
		STMTS_ARE(&fx.s1, "2");
		/* Close of a portal goes to the server, its answer back */
		assert_false(c_bind("p", "s1", NULL));
		assert_true(c_close('P', "p"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Bind(p,pgflip_2,[],[],[1]) Close(P,p) Sync");
		QUEUE_IS(&fx.s1, "bcs");
		a_bind_complete(&a);
		a_close_complete(&a);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("BindComplete CloseComplete ReadyForQuery(I)");
		CLIENT_STMTS_ARE("s1");
		/* the unnamed statement's Close too */
		assert_true(c_close('S', ""));
		SERVER_GOT(&fx.s1, "Close(S,)");
		QUEUE_IS(&fx.s1, "c");
		a_close_complete(&a);
		pump(&fx.s1, &a);
		CLIENT_GOT("CloseComplete");
		protobuf_free(&a);
		fixture_free();
	}
}

/* At max_prepared_statements (3) on a server, the least recently used
 * statement is closed to make room; the CloseComplete is swallowed. */
static void test_lru_eviction(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("a", "SELECT 'a'", "Parse(pgflip_1,SELECT 'a',[]) Sync");
		run_parse("b", "SELECT 'b'", "Parse(pgflip_2,SELECT 'b',[]) Sync");
		run_parse("c", "SELECT 'c'", "Parse(pgflip_3,SELECT 'c',[]) Sync");
		run_bound("a", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync"); /* b is now the oldest */
		assert_false(c_parse("d", "SELECT 'd'"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Close(S,pgflip_2) Parse(pgflip_4,SELECT 'd',[]) Sync");
		QUEUE_IS(&fx.s1, "Cps");
		STMTS_ARE(&fx.s1, "1,(2),3,4"); /* pgflip_2 goes at its CloseComplete */
		a_close_complete(&a);
		a_parse_complete(&a);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		STMTS_ARE(&fx.s1, "1,3,4");
		/* b is still the client's: prepared again, c (now the oldest) closed */
		run_bound("b",
		          "Close(S,pgflip_3) Parse(pgflip_5,SELECT 'b',[]) Bind(,pgflip_5,[],[],[1]) Execute(,0) Sync");
		STMTS_ARE(&fx.s1, "1,4,5");
		CLIENT_STMTS_ARE("a,b,c,d");
		/* the order, for a Bind that needs room: Close, Parse, Bind; the
		 * Close's and the Parse's answers both swallowed */
		assert_false(c_bind("", "c", NULL));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Close(S,pgflip_1) Parse(pgflip_6,SELECT 'c',[]) Bind(,pgflip_6,[],[],[1]) Sync");
		QUEUE_IS(&fx.s1, "CPbs");
		a_close_complete(&a);
		a_parse_complete(&a);
		a_bind_complete(&a);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("BindComplete ReadyForQuery(I)");
		STMTS_ARE(&fx.s1, "4,5,6");
		protobuf_free(&a);
		fixture_free();
	}
}

/* Statements not yet confirmed are never closed to make room: a pipeline of
 * Parses goes past the limit rather than close what is in flight; the next
 * statement brings the server back to the limit. */
static void test_lru_spares_unconfirmed(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		assert_false(c_parse("a", "SELECT 'a'"));
		assert_false(c_parse("b", "SELECT 'b'"));
		assert_false(c_parse("c", "SELECT 'c'"));
		assert_false(c_parse("d", "SELECT 'd'"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_1,SELECT 'a',[]) Parse(pgflip_2,SELECT 'b',[]) "
		                   "Parse(pgflip_3,SELECT 'c',[]) Parse(pgflip_4,SELECT 'd',[]) Sync");
		QUEUE_IS(&fx.s1, "pppps");
		for (int i = 0; i < 4; i++)
			a_parse_complete(&a);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete ParseComplete ParseComplete ParseComplete ReadyForQuery(I)");
		STMTS_ARE(&fx.s1, "1,2,3,4");
		/* with all confirmed, the next one closes the two oldest, so that
		 * the server is back at the limit (closing only one, pgflip kept
		 * it above the limit for good: each Parse then made room for
		 * itself alone) */
		run_parse("e", "SELECT 'e'", "Close(S,pgflip_1) Close(S,pgflip_2) Parse(pgflip_5,SELECT 'e',[]) Sync");
		STMTS_ARE(&fx.s1, "3,4,5");
		run_parse("f", "SELECT 'f'", "Close(S,pgflip_3) Parse(pgflip_6,SELECT 'f',[]) Sync");
		STMTS_ARE(&fx.s1, "4,5,6");
		protobuf_free(&a);
		fixture_free();
	}
}

/* After an ErrorResponse the server skips to the next Sync: so does the
 * queue, and answers pgflip would have made up for the skipped messages are
 * not sent. */
static void test_error_skips_to_sync(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		/* the first Parse fails: the rest of the pipeline is skipped. The
		 * second Parse of the same text reaches the server (77bb2b4), after
		 * a Close of the first one: both are skipped, and the made-up
		 * CloseComplete is not sent */
		assert_false(c_parse("bad", "SELEC 1"));
		assert_false(c_bind("", "bad", NULL));
		assert_false(c_parse("bad2", "SELEC 1"));
		assert_false(c_close('S', "nosuch")); /* made-up CloseComplete: skipped */
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_1,SELEC 1,[]) Bind(,pgflip_1,[],[],[1]) Close(S,pgflip_1) "
		                   "Parse(pgflip_2,SELEC 1,[]) Execute(,0) Sync");
		QUEUE_IS(&fx.s1, "pbCp3es");
		proto_put_error(&a, "ERROR", "42601", "syntax error at or near \"SELEC\"");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(42601) ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		STMTS_ARE(&fx.s1, ""); /* the failed statement is not on the server, nor the skipped one */
		/* nor are they the client's: in PostgreSQL a failed or skipped
		 * Parse prepares nothing, so a Bind of the name fails (pgflip used
		 * to keep both names, and bound them to whatever it prepared) */
		CLIENT_STMTS_ARE("");
		assert_true(c_bind("", "bad2", NULL));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Bind(,bad2,[],[],[1]) Sync");
		proto_put_error(&a, "ERROR", "26000", "prepared statement \"bad2\" does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(26000) ReadyForQuery(I)");

		/* an error after a good Parse: that one stays. The next Parse of
		 * its text, after the error, comes with a Close of it: the server
		 * skips both, so it still has pgflip_3, and pgflip must know it
		 * (else it is never closed again and the server holds more than
		 * max_prepared_statements) */
		assert_false(c_parse("s1", "SELECT 1"));
		assert_true(c_bind("", "nosuch", NULL));
		assert_false(c_parse("s2", "SELECT 1"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_3,SELECT 1,[]) Bind(,nosuch,[],[],[1]) Close(S,pgflip_3) "
		                   "Parse(pgflip_4,SELECT 1,[]) Sync");
		QUEUE_IS(&fx.s1, "pbCps");
		a_parse_complete(&a);
		proto_put_error(&a, "ERROR", "26000", "prepared statement \"nosuch\" does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete ErrorResponse(26000) ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		STMTS_ARE(&fx.s1, "3");
		assert_true(fx.s1.ps[0].confirmed);
		CLIENT_STMTS_ARE("s1"); /* s2's Parse was skipped */

		/* the error of a Query does not skip anything: its ReadyForQuery ends it */
		assert_true(c_query("SELECT nosuch"));
		SERVER_GOT(&fx.s1, "Query(SELECT nosuch)");
		QUEUE_IS(&fx.s1, "q");
		proto_put_error(&a, "ERROR", "42703", "column \"nosuch\" does not exist");
		pump(&fx.s1, &a);
		QUEUE_IS(&fx.s1, "q");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		QUEUE_IS(&fx.s1, "");
		CLIENT_GOT("ErrorResponse(42703) ReadyForQuery(I)");

		/* an error at the Sync itself (a deferred constraint at commit) */
		run_bound("s1", "Bind(,pgflip_3,[],[],[1]) Execute(,0) Sync");
		assert_false(c_bind("", "s1", NULL));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Bind(,pgflip_3,[],[],[1]) Execute(,0) Sync");
		a_bind_complete(&a);
		a_command_complete(&a, "INSERT 0 1");
		proto_put_error(&a, "ERROR", "23503", "violates foreign key constraint");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("BindComplete CommandComplete(INSERT 0 1) ErrorResponse(23503) ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");

		/* pgflip's own Parse fails on another server (the table is gone):
		 * the client hears the error, the statement is not recorded there */
		link_to(&fx.s2);
		assert_false(c_bind("", "s1", NULL));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Parse(pgflip_1,SELECT 1,[]) Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		QUEUE_IS(&fx.s2, "Pbes");
		proto_put_error(&a, "ERROR", "42P01", "relation does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("ErrorResponse(42P01) ReadyForQuery(I)");
		QUEUE_IS(&fx.s2, "");
		STMTS_ARE(&fx.s2, "");
		/* the next use tries again */
		run_bound("s1", "Parse(pgflip_2,SELECT 1,[]) Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		protobuf_free(&a);
		fixture_free();
	}
}

/* A client's Parse of a text its server already has reaches the server
 * (77bb2b4): a new pgflip_N, the older one closed in the same write, and
 * the client hears the server's own ParseComplete, or its error. So a
 * statement the client prepares again after a DDL gets a plan as fresh as
 * on a direct connection, where pgflip used to answer ParseComplete itself
 * and reuse the old statement. */
static void test_repeated_parse_reaches_server(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("s1", "SELECT * FROM t", "Parse(pgflip_1,SELECT * FROM t,[]) Sync");
		run_bound("s1", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		/* the client closes it and prepares it again, as a driver does
		 * after an ALTER TABLE: nothing is made up, the client waits for
		 * the server */
		assert_false(c_close('S', "s1"));
		CLIENT_GOT("CloseComplete");
		assert_false(c_parse("s1", "SELECT * FROM t"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Close(S,pgflip_1) Parse(pgflip_2,SELECT * FROM t,[]) Sync");
		CLIENT_GOT("");
		QUEUE_IS(&fx.s1, "Cps");
		STMTS_ARE(&fx.s1, "(1),2");
		a_close_complete(&a);
		a_parse_complete(&a);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete ReadyForQuery(I)");
		run_bound("s1", "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");

		/* another name for the same text, in the pipeline right after the
		 * first Parse: it reaches the server too, after a Close of the
		 * statement still in flight */
		assert_false(c_parse("s2", "SELECT 2"));
		assert_false(c_parse("s3", "SELECT 2"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_3,SELECT 2,[]) Close(S,pgflip_3) Parse(pgflip_4,SELECT 2,[]) Sync");
		QUEUE_IS(&fx.s1, "pCps");
		a_parse_complete(&a);
		a_close_complete(&a);
		a_parse_complete(&a);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete ParseComplete ReadyForQuery(I)");
		STMTS_ARE(&fx.s1, "2,4");
		run_bound("s2", "Bind(,pgflip_4,[],[],[1]) Execute(,0) Sync");

		/* the server refuses the Parse (the table is gone): the client
		 * hears it, where a made-up ParseComplete would have hidden it
		 * until the first Bind */
		assert_false(c_parse("s4", "SELECT * FROM t"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Close(S,pgflip_2) Parse(pgflip_5,SELECT * FROM t,[]) Sync");
		a_close_complete(&a);
		proto_put_error(&a, "ERROR", "42P01", "relation \"t\" does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(42P01) ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		STMTS_ARE(&fx.s1, "4"); /* pgflip_2 closed, pgflip_5 never made */
		protobuf_free(&a);
		fixture_free();
	}
}

/* The client prepares S on server 1 and uses it on server 2 (pgflip_1
 * there); a DDL changes the result type of its text; the client then
 * prepares the text again on server 1, as S2, and binds S2 on server 2:
 * pgflip reuses server 2's pgflip_1, older than the client's Parse of S2,
 * and PostgreSQL refuses it with 0A000 where the client's own statement on
 * a direct connection would run. Returns with the client on server 2 and
 * nothing sent there yet. */
static void stale_setup(void)
{
	run_parse("s", "SELECT * FROM t", "Parse(pgflip_1,SELECT * FROM t,[]) Sync");
	link_to(&fx.s2);
	run_bound("s", "Parse(pgflip_1,SELECT * FROM t,[]) Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
	/* ALTER TABLE t ... */
	link_to(&fx.s1);
	run_parse("s2", "SELECT * FROM t", "Close(S,pgflip_1) Parse(pgflip_2,SELECT * FROM t,[]) Sync");
	link_to(&fx.s2);
}

static void a_stale(ProtoBuf *a)
{
	proto_put_error(a, "ERROR", "0A000", "cached plan must not change result type");
}

/* The stale statement at the start of a transaction, in a request that
 * describes what it executes (libpq's and node-postgres's Bind, Describe,
 * Execute, Sync): pgflip swallows the 0A000 and its ReadyForQuery, closes
 * and prepares the statement again and sends the request once more. The
 * server sees both tries; the client sees only the second one's answers,
 * with the new RowDescription. */
static void test_stale_retry(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		stale_setup();
		assert_false(c_bind("", "s2", "1"));
		assert_true(c_describe('P', ""));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Bind(,pgflip_1,[],[1],[1]) Describe(P,) Execute(,0) Sync");
		QUEUE_IS(&fx.s2, "bdes");
		/* the server skips to the Sync */
		a_stale(&a);
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("");
		SERVER_GOT(&fx.s2, "Close(S,pgflip_1) Parse(pgflip_2,SELECT * FROM t,[]) Bind(,pgflip_2,[],[1],[1]) "
		                   "Describe(P,) Execute(,0) Sync");
		QUEUE_IS(&fx.s2, "CPbdes");
		assert_int_equal(fx.s2.swallow_rfq, 0); /* the first try's ReadyForQuery was swallowed */
		a_close_complete(&a);
		a_parse_complete(&a);
		a_bind_complete(&a);
		a_row_description(&a, "x");
		a_data_row(&a, "1");
		a_command_complete(&a, "SELECT 1");
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("BindComplete RowDescription DataRow(1) CommandComplete(SELECT 1) ReadyForQuery(I)");
		QUEUE_IS(&fx.s2, "");
		STMTS_ARE(&fx.s2, "2");
		/* from now on both names use the fresh statement */
		run_bound("s", "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		run_bound("s2", "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");

		/* a Describe of the statement itself starts the request as well */
		fixture_init();
		stale_setup();
		assert_false(c_describe('S', "s2"));
		assert_false(c_bind("", "s2", NULL));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Describe(S,pgflip_1) Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		a_stale(&a);
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("");
		SERVER_GOT(&fx.s2, "Close(S,pgflip_1) Parse(pgflip_2,SELECT * FROM t,[]) Describe(S,pgflip_2) "
		                   "Bind(,pgflip_2,[],[],[1]) Execute(,0) Sync");
		a_close_complete(&a);
		a_parse_complete(&a);
		a_parameter_description(&a, 0);
		a_row_description(&a, "x");
		a_bind_complete(&a);
		a_command_complete(&a, "SELECT 0");
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("ParameterDescription RowDescription BindComplete CommandComplete(SELECT 0) "
		           "ReadyForQuery(I)");
		QUEUE_IS(&fx.s2, "");
		protobuf_free(&a);
		fixture_free();
	}
}

/* When pgflip cannot retry, the client gets the 0A000, as PostgreSQL gives
 * it; a statement pgflip reused that was older than the client's Parse is
 * marked stale all the same, and prepared again at its next use. */
static void test_stale_not_retried(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		/* inside a transaction: what ran before cannot be run again */
		stale_setup();
		assert_true(c_query("BEGIN"));
		a_command_complete(&a, "BEGIN");
		a_rfq(&a, 'T');
		SERVER_GOT(&fx.s2, "Query(BEGIN)");
		pump(&fx.s2, &a);
		CLIENT_GOT("CommandComplete(BEGIN) ReadyForQuery(T)");
		assert_false(c_bind("", "s2", NULL));
		assert_true(c_describe('P', ""));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Bind(,pgflip_1,[],[],[1]) Describe(P,) Execute(,0) Sync");
		a_stale(&a);
		a_rfq(&a, 'E');
		pump(&fx.s2, &a);
		CLIENT_GOT("ErrorResponse(0A000) ReadyForQuery(E)");
		QUEUE_IS(&fx.s2, "");
		assert_true(fx.s2.ps[0].stale);
		assert_true(c_query("ROLLBACK"));
		a_command_complete(&a, "ROLLBACK");
		a_rfq(&a, 'I');
		SERVER_GOT(&fx.s2, "Query(ROLLBACK)");
		pump(&fx.s2, &a);
		CLIENT_GOT("CommandComplete(ROLLBACK) ReadyForQuery(I)");
		/* the next use closes and prepares it again */
		run_bound("s2", "Close(S,pgflip_1) Parse(pgflip_2,SELECT * FROM t,[]) Bind(,pgflip_2,[],[],[1]) "
		                "Execute(,0) Sync");

		/* a request that does not describe what it executes: a retry would
		 * give the client rows of a shape it does not know */
		fixture_init();
		stale_setup();
		assert_false(c_bind("", "s2", NULL));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		a_stale(&a);
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("ErrorResponse(0A000) ReadyForQuery(I)");
		SERVER_GOT(&fx.s2, "");
		run_bound("s2", "Close(S,pgflip_1) Parse(pgflip_2,SELECT * FROM t,[]) Bind(,pgflip_2,[],[],[1]) "
		                "Execute(,0) Sync");

		/* a request whose Sync is not in yet (a Flush): not whole, not kept */
		fixture_init();
		stale_setup();
		assert_false(c_bind("", "s2", NULL));
		assert_true(c_describe('P', ""));
		assert_true(c_flush());
		SERVER_GOT(&fx.s2, "Bind(,pgflip_1,[],[],[1]) Describe(P,) Flush");
		a_stale(&a);
		pump(&fx.s2, &a);
		CLIENT_GOT("ErrorResponse(0A000)");
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Sync");
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("ReadyForQuery(I)");
		QUEUE_IS(&fx.s2, "");

		/* the statement pgflip reused is as new as the client's Parse (s
		 * was prepared before the DDL, server 2's pgflip_1 after it): a
		 * direct connection refuses the client's statement too, so the
		 * error stays and the statement is not marked */
		fixture_init();
		run_parse("s", "SELECT * FROM t", "Parse(pgflip_1,SELECT * FROM t,[]) Sync");
		link_to(&fx.s2);
		run_bound("s", "Parse(pgflip_1,SELECT * FROM t,[]) Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		/* ALTER TABLE t ... */
		assert_false(c_bind("", "s", NULL));
		assert_true(c_describe('P', ""));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Bind(,pgflip_1,[],[],[1]) Describe(P,) Execute(,0) Sync");
		a_stale(&a);
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("ErrorResponse(0A000) ReadyForQuery(I)");
		SERVER_GOT(&fx.s2, "");
		assert_false(fx.s2.ps[0].stale);
		run_bound("s", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		protobuf_free(&a);
		fixture_free();
	}
}

/* The server's 42P05 for a Parse of pgflip_N, with the fields PostgreSQL
 * sends (StorePreparedStatement). */
static void a_duplicate(ProtoBuf *a, const char *server_name)
{
	size_t m = proto_msg_begin(a, PROTO_BE_ERROR_RESPONSE);
	proto_put_uint8(a, 'S');
	proto_put_cstring(a, "ERROR");
	proto_put_uint8(a, 'V');
	proto_put_cstring(a, "ERROR");
	proto_put_uint8(a, 'C');
	proto_put_cstring(a, "42P05");
	proto_put_uint8(a, 'M');
	char text[128];
	snprintf(text, sizeof(text), "prepared statement \"%s\" already exists", server_name);
	proto_put_cstring(a, text);
	proto_put_uint8(a, 'F');
	proto_put_cstring(a, "prepare.c");
	proto_put_uint8(a, 'L');
	proto_put_cstring(a, "409");
	proto_put_uint8(a, 'R');
	proto_put_cstring(a, "StorePreparedStatement");
	proto_put_uint8(a, 0);
	proto_msg_end(a, m);
}

#define DUPLICATE_S1 \
	"ErrorResponse(S=ERROR|V=ERROR|C=42P05|M=prepared statement \"s1\" already exists|F=prepare.c|L=409|" \
	"R=StorePreparedStatement)"

/* A Parse of a name the client has: PostgreSQL refuses it with 42P05 (after
 * parsing and analysing the text), the transaction fails, the rest of the
 * request is skipped, and the client keeps its statement. pgflip used to
 * replace the client's statement silently. Now it sends the new text under
 * a name the server has, so that the server refuses it for the same
 * reasons and at the same place, and passes the 42P05 on under the
 * client's name, every other field as the server sent it. */
static void test_duplicate_parse_refused(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		error_fields = true;
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("s1", "SELECT 1", "Parse(pgflip_1,SELECT 1,[]) Sync");
		/* the same text: pgflip_1 is there to be refused */
		assert_false(c_parse("s1", "SELECT 1"));
		assert_false(c_bind("", "s1", NULL)); /* skipped after the error */
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_1,SELECT 1,[]) Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		QUEUE_IS(&fx.s1, "Rbes");
		a_duplicate(&a, "pgflip_1");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT(DUPLICATE_S1 " ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		CLIENT_STMTS_ARE("s1");
		STMTS_ARE(&fx.s1, "1");

		/* another text, which the server has no statement of: pgflip
		 * prepares it first (its ParseComplete swallowed), then has it
		 * refused; the client keeps its SELECT 1 */
		assert_false(c_parse("s1", "SELECT 2"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_2,SELECT 2,[]) Parse(pgflip_2,SELECT 2,[]) Sync");
		QUEUE_IS(&fx.s1, "PRs");
		a_parse_complete(&a);
		a_duplicate(&a, "pgflip_2");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT(DUPLICATE_S1 " ReadyForQuery(I)");
		STMTS_ARE(&fx.s1, "1,2");
		run_bound("s1", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");

		/* a text that does not parse: PostgreSQL says so before it looks
		 * for the name, and so does the server, at pgflip's first Parse */
		assert_false(c_parse("s1", "SELEC"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_3,SELEC,[]) Parse(pgflip_3,SELEC,[]) Sync");
		proto_put_error(&a, "ERROR", "42601", "syntax error at or near \"SELEC\"");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(S=ERROR|V=ERROR|C=42601|M=syntax error at or near \"SELEC\") "
		           "ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		STMTS_ARE(&fx.s1, "1,2");
		CLIENT_STMTS_ARE("s1");

		/* in a failed transaction the server answers 25P02 to the text,
		 * as PostgreSQL would: passed on as it is */
		assert_true(c_query("BEGIN"));
		a_command_complete(&a, "BEGIN");
		a_rfq(&a, 'T');
		pump(&fx.s1, &a);
		assert_true(c_query("SELECT 1/0"));
		proto_put_error(&a, "ERROR", "22012", "division by zero");
		a_rfq(&a, 'E');
		pump(&fx.s1, &a);
		SERVER_GOT(&fx.s1, "Query(BEGIN) Query(SELECT 1/0)");
		CLIENT_GOT("CommandComplete(BEGIN) ReadyForQuery(T) ErrorResponse(S=ERROR|V=ERROR|C=22012|M=division "
		           "by zero) ReadyForQuery(E)");
		assert_false(c_parse("s1", "SELECT 1"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_1,SELECT 1,[]) Sync");
		proto_put_error(&a, "ERROR", "25P02", "current transaction is aborted");
		a_rfq(&a, 'E');
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(S=ERROR|V=ERROR|C=25P02|M=current transaction is aborted) "
		           "ReadyForQuery(E)");
		assert_true(c_query("ROLLBACK"));
		a_command_complete(&a, "ROLLBACK");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		SERVER_GOT(&fx.s1, "Query(ROLLBACK)");
		CLIENT_GOT("CommandComplete(ROLLBACK) ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");

		/* the same new name twice in a pipeline: the first is the
		 * client's, the second refused under the first one's pgflip name */
		assert_false(c_parse("s2", "SELECT 5"));
		assert_false(c_parse("s2", "SELECT 6"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Parse(pgflip_4,SELECT 5,[]) Close(S,pgflip_2) Parse(pgflip_5,SELECT 6,[]) "
		                   "Parse(pgflip_5,SELECT 6,[]) Sync");
		QUEUE_IS(&fx.s1, "pCPRs"); /* pgflip_2 makes room: the limit is 3 */
		a_parse_complete(&a);
		a_close_complete(&a);
		a_parse_complete(&a);
		a_duplicate(&a, "pgflip_5");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete ErrorResponse(S=ERROR|V=ERROR|C=42P05|M=prepared statement \"s2\" already "
		           "exists|F=prepare.c|L=409|R=StorePreparedStatement) ReadyForQuery(I)");
		CLIENT_STMTS_ARE("s1,s2");
		STMTS_ARE(&fx.s1, "1,4,5");
		run_bound("s2", "Bind(,pgflip_4,[],[],[1]) Execute(,0) Sync");

		/* a Close of the name before it in the pipeline: no duplicate */
		assert_false(c_close('S', "s2"));
		assert_false(c_parse("s2", "SELECT 7"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Close(S,pgflip_1) Parse(pgflip_6,SELECT 7,[]) Sync");
		CLIENT_GOT("CloseComplete");
		a_close_complete(&a);
		a_parse_complete(&a);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete ReadyForQuery(I)");
		CLIENT_STMTS_ARE("s1,s2");
		run_bound("s2", "Bind(,pgflip_6,[],[],[1]) Execute(,0) Sync");
		protobuf_free(&a);
		fixture_free();
	}
}

/* Simple Query, FunctionCall and Flush: answers counted, nothing changed. */
static void test_query_flush_portal(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		assert_true(c_query("SELECT 1"));
		SERVER_GOT(&fx.s1, "Query(SELECT 1)");
		QUEUE_IS(&fx.s1, "q");
		a_row_description(&a, "x");
		a_data_row(&a, "1");
		a_command_complete(&a, "SELECT 1");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("RowDescription DataRow(1) CommandComplete(SELECT 1) ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");

		/* Flush asks for nothing of its own; a portal run in pieces */
		run_parse("s", "SELECT generate_series(1, 3)", "Parse(pgflip_1,SELECT generate_series(1, 3),[]) Sync");
		assert_false(c_bind("p", "s", NULL));
		assert_true(c_execute("p", 2));
		assert_true(c_flush());
		SERVER_GOT(&fx.s1, "Bind(p,pgflip_1,[],[],[1]) Execute(p,2) Flush");
		QUEUE_IS(&fx.s1, "be");
		a_bind_complete(&a);
		a_data_row(&a, "1");
		a_data_row(&a, "2");
		a_portal_suspended(&a);
		pump(&fx.s1, &a);
		CLIENT_GOT("BindComplete DataRow(1) DataRow(2) PortalSuspended");
		QUEUE_IS(&fx.s1, "");
		assert_true(c_execute("p", 2));
		assert_false(c_close('S', "s")); /* made up after the Execute's answer */
		assert_true(c_sync());
		a_data_row(&a, "3");
		a_command_complete(&a, "SELECT 1");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		SERVER_GOT(&fx.s1, "Execute(p,2) Sync");
		CLIENT_GOT("DataRow(3) CommandComplete(SELECT 1) CloseComplete ReadyForQuery(I)");

		/* an empty query */
		assert_true(c_parse("", ""));
		assert_true(c_bind("", "", NULL));
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		a_parse_complete(&a);
		a_bind_complete(&a);
		a_bare(&a, PROTO_BE_EMPTY_QUERY_RESPONSE);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		SERVER_GOT(&fx.s1, "Parse(,,[]) Bind(,,[],[],[1]) Execute(,0) Sync");
		CLIENT_GOT("ParseComplete BindComplete EmptyQueryResponse ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		protobuf_free(&a);
		fixture_free();
	}
}

/* A long pipeline answered in pieces: the expect queue's ring wraps and
 * grows while its head is not at the start. */
static void test_long_pipeline(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("s", "SELECT 1", "Parse(pgflip_1,SELECT 1,[]) Sync");
		Text want_server = {.n = 0}, want_client = {.n = 0};
		int sent = 0, answered = 0;
		for (int round = 0; round < 6; round++) {
			/* 7 Bind/Close/Execute triples: 21 entries, past the first 16 */
			for (int i = 0; i < 7; i++, sent++) {
				char portal[16];
				snprintf(portal, sizeof(portal), "p%d", sent);
				assert_false(c_bind(portal, "s", NULL));
				assert_false(c_close('S', "nosuch"));
				assert_true(c_execute(portal, 0));
				text_add(&want_server, "%sBind(%s,pgflip_1,[],[],[1]) Execute(%s,0)",
				         want_server.n ? " " : "", portal, portal);
			}
			/* answer all but the last 3 sent so far */
			for (; answered < sent - 3; answered++) {
				char row[16];
				snprintf(row, sizeof(row), "%d", answered);
				a_bind_complete(&a);
				a_data_row(&a, row);
				a_command_complete(&a, "SELECT 1");
				text_add(&want_client,
				         "%sBindComplete CloseComplete DataRow(%d) CommandComplete(SELECT 1)",
				         want_client.n ? " " : "", answered);
			}
			pump(&fx.s1, &a);
		}
		assert_true(c_sync());
		text_add(&want_server, " Sync");
		for (; answered < sent; answered++) {
			char row[16];
			snprintf(row, sizeof(row), "%d", answered);
			a_bind_complete(&a);
			a_data_row(&a, row);
			a_command_complete(&a, "SELECT 1");
			text_add(&want_client, " BindComplete CloseComplete DataRow(%d) CommandComplete(SELECT 1)",
			         answered);
		}
		a_rfq(&a, 'I');
		text_add(&want_client, " ReadyForQuery(I)");
		pump(&fx.s1, &a);
		SERVER_GOT(&fx.s1, want_server.s);
		CLIENT_GOT(want_client.s);
		QUEUE_IS(&fx.s1, "");
		assert_true(fx.s1.expect.cap >= 24);
		protobuf_free(&a);
		fixture_free();
	}
}

static void test_deallocate(void **state)
{
	(void)state;
	feed = FEED_ALL;
	fixture_init();
	char tag[32];
	static const char *const names[] = {"s1", "s2", "S3", "all", "prepare", "x y"};
	/* each Parse reaches the server (77bb2b4), the previous statement of
	 * that text closed: the six names share pgflip_6 in the end */
	run_parse(names[0], "SELECT 1", "Parse(pgflip_1,SELECT 1,[]) Sync");
	for (size_t i = 1; i < sizeof(names) / sizeof(names[0]); i++) {
		char want[128];
		snprintf(want, sizeof(want), "Close(S,pgflip_%zu) Parse(pgflip_%zu,SELECT 1,[]) Sync", i, i + 1);
		run_parse(names[i], "SELECT 1", want);
	}
	CLIENT_STMTS_ARE("S3,all,prepare,s1,s2,x y");

	/* not DEALLOCATE, or not only: the server's business */
	static const char *const not_ours[] = {
	        "SELECT 1",           "DEALLOCATE",       "DEALLOCATE ",
	        "DEALLOCATEs1",       "DEALLOCATE s1 s2", "DEALLOCATE s1; SELECT 1",
	        "DEALLOCATE nosuch", /* perhaps an SQL-level PREPARE */
	        "DEALLOCATE S3",     /* folded to s3, which is not the client's S3 */
	        "DEALLOCATE \"S1\"", /* quoted: exactly S1 */
	        "DEALLOCATE \"ALL\"",
	};
	for (size_t i = 0; i < sizeof(not_ours) / sizeof(not_ours[0]); i++) {
		strcpy(tag, "unset");
		if (ps_deallocate(&fx.c, not_ours[i], tag, sizeof(tag)))
			fail_msg("'%s' was taken as a DEALLOCATE of the client's", not_ours[i]);
		assert_string_equal(tag, "unset");
	}
	CLIENT_STMTS_ARE("S3,all,prepare,s1,s2,x y");

	assert_true(ps_deallocate(&fx.c, "DEALLOCATE s1", tag, sizeof(tag)));
	assert_string_equal(tag, "DEALLOCATE");
	CLIENT_STMTS_ARE("S3,all,prepare,s2,x y");
	assert_false(ps_deallocate(&fx.c, "DEALLOCATE s1", tag, sizeof(tag))); /* gone */
	/* PREPARE, case, white space and a semicolon */
	assert_true(ps_deallocate(&fx.c, " \n\tdeallocate\n PREPARE\tS2 ; \r\n", tag, sizeof(tag)));
	assert_string_equal(tag, "DEALLOCATE");
	CLIENT_STMTS_ARE("S3,all,prepare,x y");
	/* quoted names keep their case and spaces */
	assert_true(ps_deallocate(&fx.c, "DEALLOCATE \"S3\"", tag, sizeof(tag)));
	assert_true(ps_deallocate(&fx.c, "DEALLOCATE PREPARE \"x y\";", tag, sizeof(tag)));
	assert_true(ps_deallocate(&fx.c, "DEALLOCATE \"all\"", tag, sizeof(tag)));
	assert_string_equal(tag, "DEALLOCATE");
	CLIENT_STMTS_ARE("prepare");
	/* "DEALLOCATE prepare" names the statement prepare (as in PostgreSQL's grammar) */
	assert_true(ps_deallocate(&fx.c, "DEALLOCATE prepare", tag, sizeof(tag)));
	CLIENT_STMTS_ARE("");
	/* the server keeps pgflip_6 for whoever needs it next */
	STMTS_ARE(&fx.s1, "6");

	/* ALL, with or without PREPARE, in any case; each round's Parses reach
	 * the server and replace the previous round's statements */
	static const char *const all[] = {"DEALLOCATE ALL", "deallocate prepare all;", "DeAllocate All"};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		char want_a[128], want_b[128];
		snprintf(want_a, sizeof(want_a), "Close(S,pgflip_%zu) Parse(pgflip_%zu,SELECT 1,[]) Sync",
		         i == 0 ? 6 : 5 + 2 * i, 7 + 2 * i);
		if (i == 0)
			snprintf(want_b, sizeof(want_b), "Parse(pgflip_8,SELECT 2,[]) Sync");
		else
			snprintf(want_b, sizeof(want_b), "Close(S,pgflip_%zu) Parse(pgflip_%zu,SELECT 2,[]) Sync",
			         6 + 2 * i, 8 + 2 * i);
		run_parse("a", "SELECT 1", want_a);
		run_parse("b", "SELECT 2", want_b);
		strcpy(tag, "unset");
		assert_true(ps_deallocate(&fx.c, all[i], tag, sizeof(tag)));
		assert_string_equal(tag, "DEALLOCATE ALL");
		CLIENT_STMTS_ARE("");
		assert_null(fx.c.ps);
	}
	STMTS_ARE(&fx.s1, "11,12");
	/* ALL with nothing prepared is still pgflip's answer */
	assert_true(ps_deallocate(&fx.c, "DEALLOCATE ALL", tag, sizeof(tag)));
	/* and the statements are gone for Bind: forwarded as they are */
	assert_true(c_bind("", "a", NULL));
	SERVER_GOT(&fx.s1, "Bind(,a,[],[],[1])");
	fixture_free();
}

/* An eviction Close skipped by the server after an error: the statement is
 * still on the server, so pgflip keeps it in the server's list (as
 * PgBouncer puts a statement back when its Close fails) and closes it
 * later. pgflip used to forget it when the Close went by, never closed it
 * again, and the server ended up holding more than max_prepared_statements
 * (here 4 of 3). */
static void test_skipped_eviction_close(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("a", "SELECT 'a'", "Parse(pgflip_1,SELECT 'a',[]) Sync");
		run_parse("b", "SELECT 'b'", "Parse(pgflip_2,SELECT 'b',[]) Sync");
		run_parse("c", "SELECT 'c'", "Parse(pgflip_3,SELECT 'c',[]) Sync");
		assert_true(c_bind("", "nosuch", NULL));
		assert_false(c_parse("d", "SELECT 'd'"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Bind(,nosuch,[],[],[1]) Close(S,pgflip_1) Parse(pgflip_4,SELECT 'd',[]) Sync");
		proto_put_error(&a, "ERROR", "26000", "prepared statement \"nosuch\" does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(26000) ReadyForQuery(I)");
		QUEUE_IS(&fx.s1, "");
		/* the server still has pgflip_1..3, and pgflip knows it; d's
		 * Parse was skipped too */
		STMTS_ARE(&fx.s1, "1,2,3");
		CLIENT_STMTS_ARE("a,b,c");
		/* the next statement makes room again, by the same Close */
		assert_false(c_parse("e", "SELECT 'e'"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Close(S,pgflip_1) Parse(pgflip_5,SELECT 'e',[]) Sync");
		STMTS_ARE(&fx.s1, "(1),2,3,5");
		a_close_complete(&a);
		a_parse_complete(&a);
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParseComplete ReadyForQuery(I)");
		STMTS_ARE(&fx.s1, "2,3,5");
		protobuf_free(&a);
		fixture_free();
	}
}


/* The client's Close of a statement: answered by pgflip in its turn, and
 * the statement forgotten only then. A Close that the server skips after
 * an error leaves the statement to the client, as in PostgreSQL, so its
 * next Bind works. pgflip used to forget the name when the Close went by:
 * the next Bind was forwarded as it was, and the server answered 26000. */
static void test_skipped_close_keeps_statement(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("s1", "SELECT 1", "Parse(pgflip_1,SELECT 1,[]) Sync");
		assert_true(c_bind("", "nosuch", NULL));
		assert_false(c_close('S', "s1"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Bind(,nosuch,[],[],[1]) Sync");
		QUEUE_IS(&fx.s1, "b3s");
		CLIENT_STMTS_ARE("(s1)");
		proto_put_error(&a, "ERROR", "26000", "prepared statement \"nosuch\" does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(26000) ReadyForQuery(I)"); /* no CloseComplete */
		CLIENT_STMTS_ARE("s1");
		run_bound("s1", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");

		/* a Close and a Parse of the name, both skipped: the client keeps
		 * the statement it had, not the new text */
		assert_true(c_bind("", "nosuch", NULL));
		assert_false(c_close('S', "s1"));
		assert_false(c_parse("s1", "SELECT 2"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Bind(,nosuch,[],[],[1]) Parse(pgflip_2,SELECT 2,[]) Sync");
		QUEUE_IS(&fx.s1, "b3ps");
		CLIENT_STMTS_ARE("(s1),s1");
		proto_put_error(&a, "ERROR", "26000", "prepared statement \"nosuch\" does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(26000) ReadyForQuery(I)");
		CLIENT_STMTS_ARE("s1");
		STMTS_ARE(&fx.s1, "1");
		run_bound("s1", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");

		/* not skipped: gone for what follows the Close at once (a Bind of
		 * it goes to the server as it is, which refuses it as PostgreSQL
		 * would), gone for good when the server got past it */
		assert_false(c_bind("", "s1", NULL));
		assert_true(c_execute("", 0));
		assert_false(c_close('S', "s1"));
		assert_true(c_bind("", "s1", NULL));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Bind(,pgflip_1,[],[],[1]) Execute(,0) Bind(,s1,[],[],[1]) Sync");
		QUEUE_IS(&fx.s1, "be3bs");
		CLIENT_STMTS_ARE("(s1)");
		a_bind_complete(&a);
		a_command_complete(&a, "SELECT 1");
		proto_put_error(&a, "ERROR", "26000", "prepared statement \"s1\" does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("BindComplete CommandComplete(SELECT 1) CloseComplete ErrorResponse(26000) ReadyForQuery(I)");
		CLIENT_STMTS_ARE("");
		STMTS_ARE(&fx.s1, "1"); /* the server's statement stays for others */
		protobuf_free(&a);
		fixture_free();
	}
}

/* An error can arrive before the client sent its Sync (after a Flush):
 * the server then skips every message up to the Sync still to come, and
 * answers none of them. What the client sends meanwhile must get no made-up
 * answer and change nothing: a Close does not forget the statement, a Bind
 * prepares nothing (pgflip used to queue answers that never came, and the
 * queue lost step with the server). */
static void test_error_before_sync(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("s1", "SELECT 1", "Parse(pgflip_1,SELECT 1,[]) Sync");
		assert_true(c_bind("", "nosuch", NULL));
		assert_true(c_flush());
		SERVER_GOT(&fx.s1, "Bind(,nosuch,[],[],[1]) Flush");
		proto_put_error(&a, "ERROR", "26000", "prepared statement \"nosuch\" does not exist");
		pump(&fx.s1, &a);
		CLIENT_GOT("ErrorResponse(26000)");
		QUEUE_IS(&fx.s1, "");
		/* skipped by the server: forwarded as they are, nothing recorded */
		assert_true(c_close('S', "s1"));
		assert_true(c_parse("s2", "SELECT 2"));
		assert_true(c_bind("", "s1", NULL));
		assert_true(c_execute("", 0));
		SERVER_GOT(&fx.s1, "Close(S,s1) Parse(s2,SELECT 2,[]) Bind(,s1,[],[],[1]) Execute(,0)");
		CLIENT_GOT("");
		QUEUE_IS(&fx.s1, "");
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Sync");
		QUEUE_IS(&fx.s1, "s");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ReadyForQuery(I)");
		CLIENT_STMTS_ARE("s1");
		STMTS_ARE(&fx.s1, "1");
		/* the next request is answered in step */
		run_bound("s1", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");

		/* on a server that lacks the statement */
		link_to(&fx.s2);
		assert_true(c_bind("", "nosuch", NULL));
		assert_true(c_flush());
		proto_put_error(&a, "ERROR", "26000", "prepared statement \"nosuch\" does not exist");
		pump(&fx.s2, &a);
		assert_true(c_bind("", "s1", NULL));
		assert_true(c_sync());
		SERVER_GOT(&fx.s2, "Bind(,nosuch,[],[],[1]) Flush Bind(,s1,[],[],[1]) Sync");
		a_rfq(&a, 'I');
		pump(&fx.s2, &a);
		CLIENT_GOT("ErrorResponse(26000) ReadyForQuery(I)");
		STMTS_ARE(&fx.s2, "");
		run_bound("s1", "Parse(pgflip_1,SELECT 1,[]) Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		protobuf_free(&a);
		fixture_free();
	}
}

/* RowDescription of two columns A (int4) and B (text). */
static void a_row_description2(ProtoBuf *b, const char *a, const char *bname)
{
	size_t m = proto_msg_begin(b, PROTO_BE_ROW_DESCRIPTION);
	proto_put_uint16(b, 2);
	const char *names[2] = {a, bname};
	uint32_t types[2] = {23, 25};
	for (int i = 0; i < 2; i++) {
		proto_put_cstring(b, names[i]);
		proto_put_uint32(b, 0);
		proto_put_uint16(b, 0);
		proto_put_uint32(b, types[i]);
		proto_put_uint16(b, i ? 0xffff : 4);
		proto_put_uint32(b, 0xffffffffu);
		proto_put_uint16(b, 0);
	}
	proto_msg_end(b, m);
}

/*
 * A client that was told a statement's result columns (its Describe of the
 * statement) uses it on a server where pgflip must prepare it: pgflip
 * describes its statement first (Describe + Flush) and holds the client's
 * Bind until the answer. The same columns: the Bind goes on. Other columns
 * (a DDL came between): the server is made to fail the transaction by a
 * Bind of a statement no one has, and the client gets PostgreSQL's 0A000
 * with its routine, which drivers use to prepare again.
 */
static void test_shape_checked(void **state)
{
	(void)state;
	FOR_EACH_FEED
	{
		fixture_init();
		fx.c.state = CL_CLOSING; /* client_pump, when the hold ends, has nothing to do: send_held does it */
		ProtoBuf a;
		protobuf_init(&a);
		run_parse("s", "SELECT * FROM t", "Parse(pgflip_1,SELECT * FROM t,[]) Sync");
		assert_false(c_describe('S', "s"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Describe(S,pgflip_1) Sync");
		a_parameter_description(&a, 0);
		a_row_description(&a, "a");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		CLIENT_GOT("ParameterDescription RowDescription ReadyForQuery(I)");
		/* the same columns on the other server: one round trip, then on */
		link_to(&fx.s2);
		assert_false(c_bind("", "s", NULL));
		SERVER_GOT(&fx.s2, "Parse(pgflip_1,SELECT * FROM t,[]) Describe(S,pgflip_1) Flush");
		QUEUE_IS(&fx.s2, "PD");
		a_parse_complete(&a);
		a_parameter_description(&a, 0);
		a_row_description(&a, "a");
		pump(&fx.s2, &a);
		CLIENT_GOT("");
		QUEUE_IS(&fx.s2, "");
		assert_false(send_held());
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT_ANSWERS(&fx.s2, "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		CLIENT_GOT("BindComplete CommandComplete(SELECT 0) ReadyForQuery(I)");
		/* and no second round trip there */
		run_bound("s", "Bind(,pgflip_1,[],[],[1]) Execute(,0) Sync");
		/* the statement leaves the first server; the table changes; pgflip
		 * prepares it there again and meets two columns */
		link_to(&fx.s1);
		fx.s1.ps[0].stale = true;
		assert_false(c_bind("", "s", NULL));
		SERVER_GOT(&fx.s1, "Close(S,pgflip_1) Parse(pgflip_2,SELECT * FROM t,[]) Describe(S,pgflip_2) Flush");
		a_close_complete(&a);
		a_parse_complete(&a);
		a_parameter_description(&a, 0);
		a_row_description2(&a, "a", "b");
		pump(&fx.s1, &a);
		CLIENT_GOT("");
		assert_false(send_held());
		assert_true(c_execute("", 0));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Describe(S,pgflip_result_columns_changed_since_the_client_was_told_them_000000) "
				   "Execute(,0) Sync");
		QUEUE_IS(&fx.s1, "Xes");
		proto_put_error(&a, "ERROR", "26000", "prepared statement does not exist");
		a_rfq(&a, 'I');
		pump(&fx.s1, &a);
		error_fields = true;
		CLIENT_GOT("ErrorResponse(S=ERROR|V=ERROR|C=0A000|M=cached plan must not change result type|F=plancache.c|"
			   "R=RevalidateCachedQuery) ReadyForQuery(I)");
		error_fields = false;
		QUEUE_IS(&fx.s1, "");
		/* a Describe of it is refused the same way, with no round trip */
		assert_false(c_describe('S', "s"));
		assert_true(c_sync());
		SERVER_GOT(&fx.s1, "Describe(S,pgflip_result_columns_changed_since_the_client_was_told_them_000000) Sync");
		protobuf_free(&a);
		fixture_free();
	}
}

static int test_teardown(void **state)
{
	(void)state;
	fixture_free();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_enabled, test_teardown),
	        cmocka_unit_test_teardown(test_unnamed, test_teardown),
	        cmocka_unit_test_teardown(test_named_parse_describe_bind, test_teardown),
	        cmocka_unit_test_teardown(test_made_up_answers_in_order, test_teardown),
	        cmocka_unit_test_teardown(test_other_server, test_teardown),
	        cmocka_unit_test_teardown(test_routes_apart, test_teardown),
	        cmocka_unit_test_teardown(test_close, test_teardown),
	        cmocka_unit_test_teardown(test_lru_eviction, test_teardown),
	        cmocka_unit_test_teardown(test_lru_spares_unconfirmed, test_teardown),
	        cmocka_unit_test_teardown(test_error_skips_to_sync, test_teardown),
	        cmocka_unit_test_teardown(test_repeated_parse_reaches_server, test_teardown),
	        cmocka_unit_test_teardown(test_stale_retry, test_teardown),
	        cmocka_unit_test_teardown(test_stale_not_retried, test_teardown),
	        cmocka_unit_test_teardown(test_duplicate_parse_refused, test_teardown),
	        cmocka_unit_test_teardown(test_query_flush_portal, test_teardown),
	        cmocka_unit_test_teardown(test_long_pipeline, test_teardown),
	        cmocka_unit_test_teardown(test_deallocate, test_teardown),
	        cmocka_unit_test_teardown(test_skipped_eviction_close, test_teardown),
	        cmocka_unit_test_teardown(test_skipped_close_keeps_statement, test_teardown),
	        cmocka_unit_test_teardown(test_error_before_sync, test_teardown),
	        cmocka_unit_test_teardown(test_shape_checked, test_teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
