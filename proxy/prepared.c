/*
 * proxy/prepared.c: protocol-level named prepared statements in transaction
 * mode.
 *
 * In transaction mode a client's consecutive transactions may run on
 * different server connections, but its named statements must follow it.
 * pgflip keeps, per client, what it prepared (name -> Parse body) and, per
 * server connection, what is prepared there under pgflip's own names
 * (pgflip_<n>, keyed by route and Parse body, since the same text under two
 * routes resolves to different views). Then:
 *   Parse name      always reaches the server, as a new pgflip_<n> (an older
 *                   statement of the same text there is closed in the same
 *                   write): the client gets a plan as fresh as on a direct
 *                   connection, and the server's own ParseComplete; for a
 *                   name the client has, the server's 42P05, as PostgreSQL
 *                   refuses it (parse_refuse);
 *   Bind/Describe   prepare it first if this server lacks it (its
 *                   ParseComplete is swallowed), then rename: across clients
 *                   and servers, pgflip reuses its own statements;
 *   Close name      forget it for the client; answer CloseComplete;
 *   DEALLOCATE      the same, for the SQL spelling.
 * Each server keeps at most max_prepared_statements; the least recently used
 * is closed to make room.
 *
 * A reused statement can be older than a DDL that changed its result type:
 * PostgreSQL then refuses it with 0A000 "cached plan must not change result
 * type", where the client's own, newer, statement would have run. pgflip
 * marks it stale (the next use prepares it again) and, when the request is
 * the first of a transaction and describes what it executes, retries the
 * request once itself: the messages of such a request are kept until its
 * first answer (PsReplay), and replayed after a fresh Parse, so the client
 * sees only the answers of the retry.
 *
 * Made-up and swallowed answers must land at the right place of the
 * server's answer stream, so every extended-protocol message sent gets an
 * entry in the server's expect queue, and answers are matched to it in
 * order. After an ErrorResponse the server skips to the next Sync: so do we,
 * dropping the made-up answers of the skipped messages, as the server would
 * have sent nothing for them, and undoing what their sending recorded
 * (queue_skip_head): a statement is known to be on a server from its
 * ParseComplete, and gone from its CloseComplete; until then a Close only
 * hides it from what is sent after.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "proxy/proxy.h"
#include "proxy/prepared.h"
#include "proxy/client.h"
#include "proxy/server.h"

/* FNV-1a, 64 bits: a cheap filter before comparing whole bodies. */
static uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}
#define HASH_SEED 0xcbf29ce484222325ULL

/*
 * The result columns of a RowDescription body (BODY, LEN bytes; NULL for
 * NoData) as PostgreSQL compares them before it refuses a statement with
 * 0A000 (RevalidateCachedQuery: names, types, type modifiers; not the table
 * a column comes from, nor the format, which is 0 for a statement): a hash,
 * never 0; 0 for a malformed body. Protocol section "Message Formats",
 * RowDescription.
 */
static uint64_t shape_hash(const uint8_t *body, size_t len)
{
	ProtoReader r;
	uint16_t n = 0;
	proto_reader_init(&r, body, body ? len : 0);
	if (body && !proto_get_uint16(&r, &n))
		return 0;
	uint64_t h = hash_bytes(HASH_SEED, &n, sizeof(n));
	for (uint16_t i = 0; i < n; i++) {
		const char *name;
		uint32_t table, type, typmod;
		uint16_t attnum, typlen, format;
		if (!proto_get_cstring(&r, &name) || !proto_get_uint32(&r, &table) || !proto_get_uint16(&r, &attnum) ||
		    !proto_get_uint32(&r, &type) || !proto_get_uint16(&r, &typlen) || !proto_get_uint32(&r, &typmod) ||
		    !proto_get_uint16(&r, &format))
			return 0;
		h = hash_bytes(h, name, strlen(name) + 1);
		h = hash_bytes(h, &type, sizeof(type));
		h = hash_bytes(h, &typmod, sizeof(typmod));
	}
	return h ? h : 1;
}

/* A statement name no client can have made on a server: longer than
 * NAMEDATALEN, so SQL's PREPARE (which truncates identifiers) cannot make
 * it, and every named Parse of a client is renamed. A Bind or Describe of it
 * fails with 26000, which is what PS_REFUSE_WITH needs. */
static const char PS_NO_SUCH_STMT[] = "pgflip_result_columns_changed_since_the_client_was_told_them_000000";

bool ps_enabled(const Client *c)
{
	return c->pool && c->pool->mode == CONF_POOL_TRANSACTION && proxy.conf->max_prepared_statements > 0;
}

bool ps_needs_whole(uint8_t type)
{
	return type == PROTO_FE_PARSE || type == PROTO_FE_BIND || type == PROTO_FE_DESCRIBE ||
	       type == PROTO_FE_CLOSE || type == PROTO_FE_EXECUTE;
}

/* ---- the expect queue ---- */

static PsExpect *queue_push(Server *s, PsExpectKind kind, uint64_t stmt_id)
{
	PsQueue *q = &s->expect;
	if (q->count == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		PsExpect *items = malloc(cap * sizeof(PsExpect));
		if (!items) {
			/* the queue no longer matches the stream: ps_client_message
			 * closes the client, and with it the server (broken) */
			q->oom = true;
			q->spare = (PsExpect){.kind = kind};
			return &q->spare;
		}
		for (size_t i = 0; i < q->count; i++)
			items[i] = q->items[(q->head + i) % q->cap];
		free(q->items);
		q->items = items;
		q->head = 0;
		q->cap = cap;
	}
	PsExpect *e = &q->items[(q->head + q->count) % q->cap];
	*e = (PsExpect){.kind = kind, .stmt_id = stmt_id};
	q->count++;
	return e;
}

static PsExpect *queue_head(Server *s)
{
	return s->expect.count ? &s->expect.items[s->expect.head] : NULL;
}

static void queue_pop(Server *s);
static PsServerStmt *server_find_id(Server *s, uint64_t id);
static void server_stmt_remove(Server *s, size_t i);
static PsClientStmt *client_find_born(Client *c, uint64_t born);
static void client_stmt_remove(Client *c, PsClientStmt *cs);

/* The head entry's message was skipped by the server (after an error, up
 * to the Sync) or failed: what pgflip recorded when it was sent is
 * undone. A statement whose Parse did not run is not there, neither on
 * the server nor for the client (whose next Bind of it then fails, as in
 * PostgreSQL); one whose Close did not run still is. */
static void queue_skip_head(Server *s)
{
	PsExpect *e = queue_head(s);
	PsServerStmt *st = e->stmt_id ? server_find_id(s, e->stmt_id) : NULL;
	PsClientStmt *cs = s->client && e->client_stmt ? client_find_born(s->client, e->client_stmt) : NULL;
	switch (e->kind) {
	case PS_EXPECT_PARSE:
		if (cs)
			client_stmt_remove(s->client, cs);
		/* fall through */
	case PS_SWALLOW_PARSE:
		if (st && !st->confirmed)
			server_stmt_remove(s, (size_t)(st - s->ps));
		break;
	case PS_SWALLOW_CLOSE:
		if (st)
			st->closing = false;
		break;
	case PS_SYNTH_CLOSE:
		if (cs)
			cs->closing = false;
		break;
	default:
		break;
	}
	queue_pop(s);
}

/* Takes the head entry off; the end of pgflip's Describe lets the held
 * client message go (ps_server_after pumps the client). */
static void queue_pop(Server *s)
{
	PsExpect *e = queue_head(s);
	if (e->kind == PS_SWALLOW_DESCRIBE && s->expect.hold) {
		s->expect.hold = false;
		s->expect.released = true;
	}
	s->expect.head = (s->expect.head + 1) % s->expect.cap;
	s->expect.count--;
}

/* Made-up answers at the head of the queue are due now: the server got
 * past the client's Close (everything before it is answered), so the
 * client's statement is gone. */
void ps_server_emit_due(Server *s)
{
	PsExpect *e;
	while ((e = queue_head(s)) && e->kind == PS_SYNTH_CLOSE) {
		if (s->client) {
			static const uint8_t close_complete[5] = {PROTO_BE_CLOSE_COMPLETE, 0, 0, 0, 4};
			PsClientStmt *cs = e->client_stmt ? client_find_born(s->client, e->client_stmt) : NULL;
			if (cs)
				client_stmt_remove(s->client, cs);
			sock_write(&s->client->sock, close_complete, 5);
		}
		queue_pop(s);
	}
}

/* ---- per-server statements ---- */

/* The statement of ROUTE and BODY on S (maybe stale, not one being
 * closed), or NULL. */
static PsServerStmt *server_find(Server *s, const char *route, const uint8_t *body, uint32_t len, uint64_t hash)
{
	for (size_t i = 0; i < s->n_ps; i++) {
		PsServerStmt *st = &s->ps[i];
		if (!st->closing && st->hash == hash && st->len == len && memcmp(st->body, body, len) == 0 &&
		    strcmp(st->route, route) == 0)
			return st;
	}
	return NULL;
}

/* How many statements S will have when what was sent is done: those
 * being closed do not count. */
static size_t server_live(const Server *s)
{
	size_t n = 0;
	for (size_t i = 0; i < s->n_ps; i++)
		n += !s->ps[i].closing;
	return n;
}

static PsServerStmt *server_find_id(Server *s, uint64_t id)
{
	for (size_t i = 0; i < s->n_ps; i++)
		if (s->ps[i].id == id)
			return &s->ps[i];
	return NULL;
}

static void server_stmt_remove(Server *s, size_t i)
{
	free(s->ps[i].route);
	free(s->ps[i].body);
	s->ps[i] = s->ps[--s->n_ps];
}

static void replay_drop(Server *s);

void ps_server_clear(Server *s)
{
	while (s->n_ps)
		server_stmt_remove(s, s->n_ps - 1);
	replay_drop(s); /* it names statements that are gone */
	free(s->replay.data);
	s->replay.data = NULL;
	s->replay.cap = 0;
}

/* "pgflip_<id>" with its terminator (every Bind of a prepared statement
 * carries one, so no printf) */
static void put_stmt_name(ProtoBuf *b, uint64_t id)
{
	static const char prefix[] = "pgflip_";
	char digits[24];
	proto_put_bytes(b, prefix, sizeof(prefix) - 1);
	proto_put_cstring(b, proxy_u64_str(digits, id));
}

static void send_buf(Server *s, ProtoBuf *b)
{
	if (protobuf_ok(b))
		sock_write(&s->sock, b->data, b->len);
}

/* Closes statement I of S: the Close goes into B, its answer is swallowed.
 * What is sent after B must not use it, so it is marked closing at once;
 * but it is gone only when the server says so (CloseComplete): after an
 * error the server skips the Close, and the statement stays there
 * (queue_skip_head), to be counted and closed later. */
static void server_stmt_close(Server *s, size_t i, ProtoBuf *b)
{
	size_t m = proto_msg_begin(b, PROTO_FE_CLOSE);
	proto_put_uint8(b, 'S');
	put_stmt_name(b, s->ps[i].id);
	proto_msg_end(b, m);
	s->ps[i].closing = true;
	queue_push(s, PS_SWALLOW_CLOSE, s->ps[i].id);
}

/* Closes the least recently used confirmed statement to make room. False
 * when there is none (the others are in flight or being closed). */
static bool server_evict(Server *s, ProtoBuf *b)
{
	size_t victim = s->n_ps;
	for (size_t i = 0; i < s->n_ps; i++)
		if (s->ps[i].confirmed && !s->ps[i].closing &&
		    (victim == s->n_ps || s->ps[i].last_used < s->ps[victim].last_used))
			victim = i;
	if (victim == s->n_ps)
		return false;
	server_stmt_close(s, victim, b);
	return true;
}

/* A new server statement of the Parse body BODY (LEN bytes, hash HASH)
 * for C's route, prepared on S: its Parse goes into B, with the expect
 * entry KIND: PS_EXPECT_PARSE when it answers the client's own Parse of
 * its statement CLIENT_STMT (a born tick), PS_SWALLOW_PARSE (CLIENT_STMT
 * 0) when pgflip prepares it itself. */
static PsServerStmt *ps_prepare_on(Client *c, Server *s, const uint8_t *body, uint32_t len, uint64_t hash,
				   ProtoBuf *b, PsExpectKind kind, uint64_t client_stmt)
{
	/* as many as it takes: a pipeline of Parses can leave S above the
	 * limit (statements in flight are not closed), and one Close per new
	 * statement would keep it there */
	while (server_live(s) >= (size_t)proxy.conf->max_prepared_statements && server_evict(s, b))
		;
	PsServerStmt *grown = proxy_grow_try(s->ps, s->n_ps, &s->cap_ps, sizeof(PsServerStmt));
	char *route = strdup(c->route);
	uint8_t *copy = malloc(len ? len : 1);
	if (!grown || !route || !copy) {
		free(route);
		free(copy);
		s->expect.oom = true;
		return NULL;
	}
	s->ps = grown;
	PsServerStmt *st = &s->ps[s->n_ps++];
	memset(st, 0, sizeof(*st));
	st->id = ++s->ps_next_id;
	st->route = route;
	st->body = copy;
	memcpy(st->body, body, len);
	st->len = len;
	st->hash = hash;
	st->last_used = ++s->ps_tick;
	st->born = ++proxy.ps_clock;
	size_t m = proto_msg_begin(b, PROTO_FE_PARSE);
	put_stmt_name(b, st->id);
	proto_put_bytes(b, body, len);
	proto_msg_end(b, m);
	queue_push(s, kind, st->id)->client_stmt = client_stmt;
	return st;
}

/*
 * The server statement a Bind or Describe of CS uses on S: the one there,
 * or a new one prepared into B (*SENT true). A stale one (refused once with
 * 0A000) is closed and prepared again.
 */
static PsServerStmt *server_ensure(Client *c, Server *s, const PsClientStmt *cs, ProtoBuf *b, bool *sent)
{
	PsServerStmt *st = server_find(s, c->route, cs->body, cs->len, cs->hash);
	*sent = false;
	if (st && !st->stale) {
		st->last_used = ++s->ps_tick;
		return st;
	}
	if (st)
		server_stmt_close(s, (size_t)(st - s->ps), b);
	*sent = true;
	return ps_prepare_on(c, s, cs->body, cs->len, cs->hash, b, PS_SWALLOW_PARSE, 0); /* NULL: out of memory */
}

/* ---- replay of a request that met a stale statement ---- */

/* A request is kept for a replay up to this many bytes: statements with a
 * few parameters fit, bulk Binds are not worth a copy per transaction. */
#define PS_REPLAY_MAX (64 * 1024)

static void replay_drop(Server *s)
{
	s->replay.active = false;
	s->replay.len = 0;
}

static void replay_append(Server *s, const uint8_t *p, size_t n)
{
	PsReplay *r = &s->replay;
	if (r->len + n > PS_REPLAY_MAX) {
		replay_drop(s);
		return;
	}
	if (r->len + n > r->cap) {
		size_t cap = r->cap ? r->cap : 256;
		while (cap < r->len + n)
			cap *= 2;
		uint8_t *data = realloc(r->data, cap);
		if (!data) {
			replay_drop(s); /* no retry then: the client sees the refusal */
			return;
		}
		r->data = data;
		r->cap = cap;
	}
	memcpy(r->data + r->len, p, n);
	r->len += n;
}

/*
 * A Bind or Describe of the reused statement ST, for the client's CS,
 * starts a request on S: keep it, if
 *   - it is the first of a transaction (nothing else is under way: a replay
 *     repeats only what had no effect yet);
 *   - ST is older than the client's Parse of CS: only then can a DDL have
 *     come between them, so that ST is stale where the client's own
 *     statement on a direct connection would not be. When ST is as new as
 *     the client's Parse, a 0A000 is what a direct connection would say.
 */
static void replay_start(Server *s, const PsServerStmt *st, const PsClientStmt *cs, const ProtoHeader *h,
			 const uint8_t *msg)
{
	if (s->expect.count != 0 || s->tx_status != 'I' || s->replay.replaying || !st->confirmed ||
	    st->born > cs->born)
		return; /* (born values are never equal: one clock) */
	PsReplay *r = &s->replay;
	r->len = 0;
	r->active = true;
	r->complete = false;
	r->described = h->type == PROTO_FE_DESCRIBE;
	r->executed = false;
	r->retry_due = false;
	replay_append(s, msg, (size_t)h->len + 1);
}

/* The next client message of a kept request: taken up to its Sync.
 * Anything else than Bind, Describe, Execute and Flush, or anything after
 * the Sync (the replay must come before it), gives up the replay. */
static void replay_take(Server *s, const ProtoHeader *h, const uint8_t *msg)
{
	static const uint8_t sync[5] = {PROTO_FE_SYNC, 0, 0, 0, 4};
	static const uint8_t flush[5] = {PROTO_FE_FLUSH, 0, 0, 0, 4};
	PsReplay *r = &s->replay;
	if (r->complete) {
		replay_drop(s);
		return;
	}
	switch (h->type) {
	case PROTO_FE_BIND:
	case PROTO_FE_DESCRIBE:
	case PROTO_FE_EXECUTE:
		if (!msg) {
			replay_drop(s);
			return;
		}
		if (h->type == PROTO_FE_DESCRIBE && !r->executed)
			r->described = true;
		if (h->type == PROTO_FE_EXECUTE)
			r->executed = true;
		replay_append(s, msg, (size_t)h->len + 1);
		return;
	case PROTO_FE_FLUSH:
		replay_append(s, flush, sizeof(flush));
		return;
	case PROTO_FE_SYNC:
		replay_append(s, sync, sizeof(sync));
		r->complete = true;
		return;
	default:
		replay_drop(s);
		return;
	}
}

/*
 * The kept request met a stale statement at its first message; the server
 * skips to its Sync and answers ReadyForQuery. That answer is swallowed, the
 * queue loses the request's entries, and the request goes out again: its
 * first message now prepares the statement afresh (server_ensure). The
 * replay is not kept, so a second refusal reaches the client.
 */
static void replay_run(Server *s)
{
	PsReplay *r = &s->replay;
	Client *c = s->client;
	r->retry_due = false;
	r->active = false;
	while (s->expect.count)
		queue_skip_head(s); /* the Sync's too: its ReadyForQuery is swallowed */
	s->swallow_rfq++;
	slog_debug(s, "retrying a request whose statement was stale (%zu bytes)", r->len);
	r->replaying = true;
	for (size_t off = 0; c && off + PROTO_HEADER_SIZE <= r->len;) {
		ProtoHeader h;
		const char *why = "";
		if (proto_header_parse(r->data + off, r->len - off, PROXY_SERVER_MAX_MESSAGE, &h, &why) != PROTO_OK)
			break; /* cannot be: these are messages already checked */
		const uint8_t *msg = r->data + off;
		if (ps_client_message(c, s, &h, msg))
			sock_write(&s->sock, msg, (size_t)h.len + 1);
		off += (size_t)h.len + 1;
	}
	r->replaying = false;
	r->len = 0;
}

/* ---- per-client statements ---- */

/* The statement NAME of C, for a message the client sends now (one whose
 * Close is on its way is gone), or NULL. */
static PsClientStmt *client_find(Client *c, const char *name)
{
	for (size_t i = 0; i < c->n_ps; i++)
		if (!c->ps[i].closing && strcmp(c->ps[i].name, name) == 0)
			return &c->ps[i];
	return NULL;
}

static PsClientStmt *client_find_born(Client *c, uint64_t born)
{
	for (size_t i = 0; i < c->n_ps; i++)
		if (c->ps[i].born == born)
			return &c->ps[i];
	return NULL;
}

/* How many statements C has for what it sends now. */
static size_t client_live(const Client *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->n_ps; i++)
		n += !c->ps[i].closing;
	return n;
}

static void client_stmt_remove(Client *c, PsClientStmt *cs)
{
	free(cs->name);
	free(cs->body);
	*cs = c->ps[--c->n_ps];
}

void ps_client_clear(Client *c)
{
	while (c->n_ps)
		client_stmt_remove(c, &c->ps[c->n_ps - 1]);
	free(c->ps);
	c->ps = NULL;
	c->cap_ps = 0;
}

/* A new statement NAME of C (it has none of that name). */
static PsClientStmt *client_add(Client *c, const char *name, const uint8_t *body, uint32_t len)
{
	PsClientStmt *grown = proxy_grow_try(c->ps, c->n_ps, &c->cap_ps, sizeof(PsClientStmt));
	char *copy_name = strdup(name);
	uint8_t *copy = malloc(len ? len : 1);
	if (!grown || !copy_name || !copy) {
		free(copy_name);
		free(copy);
		return NULL;
	}
	c->ps = grown;
	PsClientStmt *cs = &c->ps[c->n_ps++];
	memset(cs, 0, sizeof(*cs));
	cs->name = copy_name;
	cs->body = copy;
	memcpy(cs->body, body, len);
	cs->len = len;
	cs->hash = hash_bytes(HASH_SEED, body, len);
	cs->born = ++proxy.ps_clock;
	return cs;
}

bool ps_client_full(Client *c, const ProtoHeader *h, const uint8_t *msg)
{
	ProtoReader r;
	const char *name;
	if (client_live(c) < (size_t)proxy.conf->max_prepared_statements)
		return false;
	proto_reader_init(&r, msg + PROTO_HEADER_SIZE, proto_body_len(h));
	return proto_get_cstring(&r, &name) && *name && !client_find(c, name);
}

/* ---- client messages ---- */

/* The client's Parse of NAME, new to it, body BODY (LEN bytes): a new
 * server statement, answered by the server; an older one of the same text
 * there is closed first, so that the client's plan is as fresh as on a
 * direct connection. Into B. */
static void parse_new(Client *c, Server *s, const char *name, const uint8_t *body, uint32_t len, ProtoBuf *b)
{
	PsClientStmt *cs = client_add(c, name, body, len);
	if (!cs) {
		s->expect.oom = true;
		return;
	}
	PsServerStmt *old = server_find(s, c->route, cs->body, cs->len, cs->hash);
	if (old)
		server_stmt_close(s, (size_t)(old - s->ps), b);
	ps_prepare_on(c, s, cs->body, cs->len, cs->hash, b, PS_EXPECT_PARSE, cs->born);
}

/*
 * The client's Parse of a name it has (HAVE), with the body BODY (LEN
 * bytes). PostgreSQL refuses it with 42P05 "prepared statement ... already
 * exists" once it has parsed and analysed the text (exec_parse_message,
 * then StorePreparedStatement), so a syntax error, a missing table or
 * 25P02 in a failed transaction comes first; the error fails the
 * transaction and the server skips to the Sync. To give the same answer,
 * at the same place of the stream, with the same effect, pgflip sends the
 * new text under a name the server has: a statement of that text (prepared
 * first, as pgflip's own, if there is none). The server refuses it for the
 * same reasons, and its 42P05 reaches the client under the client's name
 * (refuse_answer). The client keeps its statement.
 */
static void parse_refuse(Client *c, Server *s, const PsClientStmt *have, const uint8_t *body, uint32_t len,
			 ProtoBuf *b)
{
	uint64_t hash = hash_bytes(HASH_SEED, body, len);
	PsServerStmt *st = server_find(s, c->route, body, len, hash);
	if (!st)
		st = ps_prepare_on(c, s, body, len, hash, b, PS_SWALLOW_PARSE, 0);
	if (!st)
		return; /* out of memory: ps_client_message closes */
	size_t m = proto_msg_begin(b, PROTO_FE_PARSE);
	put_stmt_name(b, st->id);
	proto_put_bytes(b, body, len);
	proto_msg_end(b, m);
	queue_push(s, PS_REFUSE_PARSE, st->id)->client_stmt = have->born;
}

/* The statement name of a Bind or a Describe of a statement (MSG whole,
 * header H): *NAME, and *NAME_END just past its terminator. False for other
 * messages, a Describe of a portal, the unnamed statement, or a malformed
 * body (which the server refuses). */
static bool message_stmt(const ProtoHeader *h, const uint8_t *msg, const char **name, const uint8_t **name_end)
{
	ProtoReader r;
	const char *portal;
	uint8_t what;
	if (!msg)
		return false;
	proto_reader_init(&r, msg + PROTO_HEADER_SIZE, proto_body_len(h));
	if (h->type == PROTO_FE_BIND) {
		if (!proto_get_cstring(&r, &portal) || !proto_get_cstring(&r, name))
			return false;
	} else if (h->type == PROTO_FE_DESCRIBE) {
		if (!proto_get_uint8(&r, &what) || what != 'S' || !proto_get_cstring(&r, name))
			return false;
	} else {
		return false;
	}
	*name_end = r.p;
	return **name != '\0';
}

static bool ps_out_of_memory(Client *c, Server *s, const char *doing);

/* Into B: the message that makes S refuse (a Describe of a statement no
 * one has), answered as WHY says (PS_REFUSE_WITH). */
static void put_refusal(Server *s, ProtoBuf *b, PsRefusal why)
{
	size_t m = proto_msg_begin(b, PROTO_FE_DESCRIBE);
	proto_put_uint8(b, 'S');
	proto_put_cstring(b, PS_NO_SUCH_STMT);
	proto_msg_end(b, m);
	queue_push(s, PS_REFUSE_WITH, 0)->refusal = why;
}

void ps_client_refuse(Client *c, Server *s, PsRefusal why)
{
	ProtoBuf b;
	uint8_t space[128];
	if (s->expect.skipping)
		return; /* an error came first: the server skips this message, and PostgreSQL refuses nothing more */
	protobuf_init_on(&b, space, sizeof(space));
	put_refusal(s, &b, why);
	send_buf(s, &b);
	bool oom = s->expect.oom || !protobuf_ok(&b);
	protobuf_free(&b);
	if (oom)
		(void)ps_out_of_memory(c, s, "refusing a message");
}

/*
 * Bind or Describe naming statement NAME (ending at NAME_END): rewritten
 * for S into B, naming pgflip's statement. When the client was told other
 * result columns than that statement has (it is newer than the client's
 * Parse: ps_client_hold prepared it afresh, or another client did after a
 * DDL), the message names a statement no server has instead: the server
 * fails the transaction as PostgreSQL fails the client's own statement, and
 * its error reaches the client as that 0A000 (PS_REFUSE_WITH).
 */
static bool rewrite_with_stmt(Client *c, Server *s, const ProtoHeader *h, const uint8_t *msg, const char *name,
			      const uint8_t *name_end, ProtoBuf *b, PsExpectKind kind)
{
	PsClientStmt *cs = client_find(c, name);
	if (!cs)
		return false; /* not ours: the server answers (with an error) */
	bool sent;
	PsServerStmt *st = server_ensure(c, s, cs, b, &sent);
	if (!st)
		return true; /* out of memory: ps_client_message closes */
	bool refuse = cs->shape && st->shape && st->shape != cs->shape;
	if (!sent && !refuse)
		replay_start(s, st, cs, h, msg);
	const uint8_t *body = msg + PROTO_HEADER_SIZE;
	const uint8_t *end = body + proto_body_len(h);
	if (refuse) {
		slog_debug(s, "statement %s of client %llu: its result columns changed", cs->name,
			   (unsigned long long)c->id);
		put_refusal(s, b, PS_REFUSAL_SHAPE);
		send_buf(s, b);
		return true;
	}
	size_t m = proto_msg_begin(b, h->type);
	proto_put_bytes(b, body, (size_t)((const uint8_t *)name - body)); /* portal name or 'S' */
	put_stmt_name(b, st->id);
	proto_put_bytes(b, name_end, (size_t)(end - name_end));
	proto_msg_end(b, m);
	/* a 0A000 for it can be pgflip's doing only if it is older than the
	 * client's Parse (server_error) */
	PsExpect *e = queue_push(s, kind, st->born < cs->born ? st->id : 0);
	if (kind == PS_EXPECT_DESCRIBE) {
		e->client_stmt = cs->born;
		e->shape_of = st->id;
	}
	send_buf(s, b);
	return true;
}

bool ps_holding(const Server *s) { return s->expect.hold; }

/* Out of memory while recording what S will answer: the queue no longer
 * matches the stream, so the server cannot serve anyone again (broken:
 * closed when released) and C is closed with a reason. Returns true (the
 * message is consumed). */
static bool ps_out_of_memory(Client *c, Server *s, const char *doing)
{
	s->broken = true;
	client_close(c, "53200", "out of memory %s", doing);
	return true;
}

bool ps_client_hold(Client *c, Server *s, const ProtoHeader *h, const uint8_t *msg)
{
	const char *name;
	const uint8_t *name_end;
	if (s->expect.skipping || s->replay.replaying || !message_stmt(h, msg, &name, &name_end))
		return false;
	PsClientStmt *cs = client_find(c, name);
	if (!cs || !cs->shape)
		return false;
	PsServerStmt *st = server_find(s, c->route, cs->body, cs->len, cs->hash);
	if (st && !st->stale && st->shape && (st->shape == cs->shape || st->born > cs->born))
		return false; /* known: used, or refused, by rewrite_with_stmt */
	ProtoBuf b;
	uint8_t space[512];
	protobuf_init_on(&b, space, sizeof(space));
	if (st && !st->stale && st->shape)
		/* older than the client's Parse, and of other columns: a DDL came
		 * between them, and the client's own statement is the newer one */
		server_stmt_close(s, (size_t)(st - s->ps), &b);
	bool sent;
	st = server_ensure(c, s, cs, &b, &sent);
	if (!st) {
		protobuf_free(&b);
		return ps_out_of_memory(c, s, "preparing a statement");
	}
	static const uint8_t flush[5] = {PROTO_FE_FLUSH, 0, 0, 0, 4};
	size_t m = proto_msg_begin(&b, PROTO_FE_DESCRIBE);
	proto_put_uint8(&b, 'S');
	put_stmt_name(&b, st->id);
	proto_msg_end(&b, m);
	proto_put_bytes(&b, flush, sizeof(flush));
	queue_push(s, PS_SWALLOW_DESCRIBE, st->id);
	s->expect.hold = true;
	bool ok = protobuf_ok(&b);
	if (ok)
		sock_write(&s->sock, b.data, b.len);
	protobuf_free(&b);
	if (!ok || s->expect.oom)
		return ps_out_of_memory(c, s, "describing a statement"); /* what the queue expects never went */
	slog_debug(s, "describing statement pgflip_%llu for client %llu before its use", (unsigned long long)st->id,
		   (unsigned long long)c->id);
	return true;
}

/* A Parse (its body at R): a named one is pgflip's to send (into B, sent
 * here; true), the unnamed one goes as it is (false). */
static bool parse_named(Client *c, Server *s, ProtoReader *r, ProtoBuf *b)
{
	const char *name;
	if (!proto_get_cstring(r, &name) || !*name) {
		queue_push(s, PS_EXPECT_PARSE, 0);
		return false;
	}
	const uint8_t *body = r->p;
	uint32_t len = (uint32_t)(r->end - body);
	PsClientStmt *have = client_find(c, name);
	if (have)
		parse_refuse(c, s, have, body, len, b);
	else
		parse_new(c, s, name, body, len, b);
	send_buf(s, b);
	return true;
}

bool ps_client_message(Client *c, Server *s, const ProtoHeader *h, const uint8_t *msg)
{
	ProtoReader r;
	const char *name = NULL;
	uint8_t what = 0;
	ProtoBuf b;
	bool forward = true;
	uint8_t space[512];
	if (s->expect.skipping) {
		/* the server skips it, answering nothing, up to the Sync: it goes
		 * as it is, and nothing is recorded (a Close forgets nothing, a
		 * Parse adds nothing) */
		if (h->type == PROTO_FE_SYNC) {
			s->expect.skipping = false;
			queue_push(s, PS_EXPECT_SYNC, 0);
		}
		return true;
	}
	if (s->replay.active) /* (never while replay_run sends it again) */
		replay_take(s, h, msg);
	if (msg)
		proto_reader_init(&r, msg + PROTO_HEADER_SIZE, proto_body_len(h));
	protobuf_init_on(&b, space, sizeof(space));
	switch (h->type) {
	case PROTO_FE_PARSE:
		forward = !parse_named(c, s, &r, &b);
		break;
	case PROTO_FE_BIND:
	case PROTO_FE_DESCRIBE: {
		PsExpectKind kind = h->type == PROTO_FE_BIND ? PS_EXPECT_BIND : PS_EXPECT_DESCRIBE;
		const uint8_t *name_end;
		if (message_stmt(h, msg, &name, &name_end) && rewrite_with_stmt(c, s, h, msg, name, name_end, &b, kind))
			forward = false;
		else
			queue_push(s, kind, 0);
		break;
	}
	case PROTO_FE_CLOSE:
		if (proto_get_uint8(&r, &what) && proto_get_cstring(&r, &name) && what == 'S' && *name) {
			/* the server keeps it for others; the client is answered in
			 * turn, and forgets it then: a Close the server skips after an
			 * error leaves the statement to the client, as in PostgreSQL */
			PsClientStmt *cs = client_find(c, name);
			if (cs)
				cs->closing = true;
			queue_push(s, PS_SYNTH_CLOSE, 0)->client_stmt = cs ? cs->born : 0;
			forward = false;
		} else {
			queue_push(s, PS_EXPECT_CLOSE, 0);
		}
		break;
	case PROTO_FE_EXECUTE:
		queue_push(s, PS_EXPECT_EXECUTE, 0);
		break;
	case PROTO_FE_SYNC:
		queue_push(s, PS_EXPECT_SYNC, 0);
		break;
	case PROTO_FE_QUERY:
	case PROTO_FE_FUNCTION_CALL:
		queue_push(s, PS_EXPECT_QUERY, 0);
		break;
	default:
		break; /* Flush, CopyData/CopyDone/CopyFail: no answer of their own */
	}
	bool oom = s->expect.oom || !protobuf_ok(&b);
	protobuf_free(&b);
	if (oom)
		return !ps_out_of_memory(c, s, "tracking prepared statements");
	ps_server_emit_due(s);
	return forward;
}

bool ps_deallocate(Client *c, const char *sql, char *tag, size_t taglen)
{
	/* DEALLOCATE [PREPARE] { name | ALL } [;] */
	const char *p = sql;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (strncasecmp(p, "deallocate", 10) != 0 || !(p[10] == ' ' || p[10] == '\t' || p[10] == '\n'))
		return false;
	p += 10;
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (strncasecmp(p, "prepare", 7) == 0 && (p[7] == ' ' || p[7] == '\t' || p[7] == '\n')) {
		p += 7;
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
	}
	char name[CONF_MAX_IDENT + 1];
	size_t n = 0;
	bool quoted = *p == '"';
	if (quoted)
		p++;
	while (*p && n < CONF_MAX_IDENT && (quoted ? *p != '"' : (*p != ' ' && *p != ';' && *p != '\t' && *p != '\n')))
		name[n++] = *p++;
	name[n] = '\0';
	if (quoted && *p == '"')
		p++;
	while (*p == ' ' || *p == ';' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p || n == 0)
		return false;
	if (!quoted && strcasecmp(name, "all") == 0) {
		ps_client_clear(c);
		snprintf(tag, taglen, "DEALLOCATE ALL");
		return true;
	}
	if (!quoted)
		for (char *q = name; *q; q++)
			if (*q >= 'A' && *q <= 'Z')
				*q = (char)(*q - 'A' + 'a');
	PsClientStmt *cs = client_find(c, name);
	if (!cs)
		return false; /* perhaps an SQL-level PREPARE: the server's business */
	client_stmt_remove(c, cs);
	snprintf(tag, taglen, "DEALLOCATE");
	return true;
}

/* ---- server answers ---- */

static bool is_final(PsExpectKind kind, uint8_t type)
{
	switch (kind) {
	case PS_EXPECT_PARSE:
	case PS_SWALLOW_PARSE: return type == PROTO_BE_PARSE_COMPLETE;
	case PS_EXPECT_BIND: return type == PROTO_BE_BIND_COMPLETE;
	case PS_EXPECT_DESCRIBE: return type == PROTO_BE_ROW_DESCRIPTION || type == PROTO_BE_NO_DATA;
	case PS_EXPECT_EXECUTE:
		return type == PROTO_BE_COMMAND_COMPLETE || type == PROTO_BE_EMPTY_QUERY_RESPONSE ||
		       type == PROTO_BE_PORTAL_SUSPENDED;
	case PS_EXPECT_CLOSE:
	case PS_SWALLOW_CLOSE: return type == PROTO_BE_CLOSE_COMPLETE;
	case PS_EXPECT_SYNC:
	case PS_EXPECT_QUERY: return type == PROTO_BE_READY_FOR_QUERY;
	case PS_SYNTH_CLOSE: return false;
	case PS_REFUSE_PARSE: return type == PROTO_BE_PARSE_COMPLETE; /* cannot be: the server has the name */
	case PS_SWALLOW_DESCRIBE: return type == PROTO_BE_ROW_DESCRIPTION || type == PROTO_BE_NO_DATA;
	case PS_REFUSE_WITH: return false; /* only its ErrorResponse ends it */
	}
	return false;
}

bool ps_server_final(const Server *s, uint8_t type)
{
	if (!s->expect.count)
		return false;
	PsExpectKind kind = s->expect.items[s->expect.head].kind;
	/* pgflip's Describe: its ParameterDescription is swallowed too */
	return type == PROTO_BE_ERROR_RESPONSE || is_final(kind, type) || kind == PS_SWALLOW_DESCRIBE;
}

/* Does the answer of TYPE to the head entry E give a statement's result
 * columns, so that it must be read whole (ps_server_swallow records them)? */
static bool gives_shape(const PsExpect *e, uint8_t type)
{
	return (e->kind == PS_SWALLOW_DESCRIBE || (e->kind == PS_EXPECT_DESCRIBE && e->shape_of)) &&
	       (type == PROTO_BE_ROW_DESCRIPTION || type == PROTO_BE_NO_DATA);
}

/* The result columns of a RowDescription or NoData MSG (header H), the
 * answer to E: kept for the server statement and, for the client's own
 * Describe, for the client's statement (what it was told). */
static void record_shape(Server *s, const PsExpect *e, const ProtoHeader *h, const uint8_t *msg)
{
	uint64_t shape = h->type == PROTO_BE_NO_DATA ? shape_hash(NULL, 0)
						     : shape_hash(msg + PROTO_HEADER_SIZE, proto_body_len(h));
	PsServerStmt *st = server_find_id(s, e->kind == PS_SWALLOW_DESCRIBE ? e->stmt_id : e->shape_of);
	if (st)
		st->shape = shape;
	PsClientStmt *cs = e->kind == PS_EXPECT_DESCRIBE && s->client ? client_find_born(s->client, e->client_stmt) : NULL;
	if (cs)
		cs->shape = shape;
}

/* The ErrorResponse of refusal WHY, to the client of S, in place of the
 * server's 26000. PS_REFUSAL_SHAPE is 0A000 as PostgreSQL words it when a
 * prepared statement's result columns changed (RevalidateCachedQuery in
 * plancache.c: drivers such as postgres.js recognise it by that routine and
 * prepare again). */
static void refusal_answer(Server *s, PsRefusal why)
{
	if (!s->client)
		return;
	ProtoBuf b;
	uint8_t space[256];
	protobuf_init_on(&b, space, sizeof(space));
	if (why == PS_REFUSAL_SHAPE) {
		static const char *const fields[][2] = {
			{"S", "ERROR"}, {"V", "ERROR"}, {"C", "0A000"}, {"M", "cached plan must not change result type"},
			{"F", "plancache.c"}, {"R", "RevalidateCachedQuery"},
		};
		size_t m = proto_msg_begin(&b, PROTO_BE_ERROR_RESPONSE);
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			proto_put_uint8(&b, (uint8_t)fields[i][0][0]);
			proto_put_cstring(&b, fields[i][1]);
		}
		proto_put_uint8(&b, 0);
		proto_msg_end(&b, m);
	} else {
		proto_put_error(&b, "ERROR", "53400",
				"too many prepared statements for this client (max_prepared_statements = %d): close or "
				"deallocate some first",
				proxy.conf->max_prepared_statements);
	}
	if (protobuf_ok(&b))
		sock_write(&s->client->sock, b.data, b.len);
	protobuf_free(&b);
}

/* The ErrorResponse MSG (header H) for a PS_REFUSE_PARSE entry E: when it
 * is the server's 42P05 for pgflip's name, the same message with the
 * client's name in its place is written to the client, and the caller
 * drops MSG (true). Any other error (the text did not parse, the
 * transaction had failed) is the client's as it is, since PostgreSQL would
 * have given it first. Fields are copied in order; in the message, the
 * quoted "pgflip_<id>" (in whatever language the server speaks) becomes
 * the quoted client name. */
static bool refuse_answer(Server *s, const PsExpect *e, const ProtoHeader *h, const uint8_t *msg)
{
	const uint8_t *p = msg + PROTO_HEADER_SIZE, *end = p + proto_body_len(h);
	ProtoErrorFields f;
	PsClientStmt *cs = s->client ? client_find_born(s->client, e->client_stmt) : NULL;
	if (!cs || !proto_error_parse(p, (size_t)(end - p), &f) || !f.sqlstate || strcmp(f.sqlstate, "42P05") != 0)
		return false;
	char digits[24], ours[40];
	snprintf(ours, sizeof(ours), "\"pgflip_%s\"", proxy_u64_str(digits, e->stmt_id));
	size_t ours_len = strlen(ours);
	ProtoBuf b;
	protobuf_init(&b);
	size_t m = proto_msg_begin(&b, PROTO_BE_ERROR_RESPONSE);
	while (p < end && *p) {
		uint8_t code = *p++;
		const char *v = (const char *)p;
		size_t n = strlen(v); /* terminated within the body: proto_error_parse */
		const char *at = code == 'M' ? strstr(v, ours) : NULL;
		proto_put_uint8(&b, code);
		if (at) {
			proto_put_bytes(&b, v, (size_t)(at - v) + 1); /* up to the opening quote */
			proto_put_bytes(&b, cs->name, strlen(cs->name));
			proto_put_cstring(&b, at + ours_len - 1);     /* from the closing quote */
		} else {
			proto_put_cstring(&b, v);
		}
		p += n + 1;
	}
	proto_put_uint8(&b, 0);
	proto_msg_end(&b, m);
	bool ok = protobuf_ok(&b);
	if (ok)
		sock_write(&s->client->sock, b.data, b.len);
	protobuf_free(&b);
	return ok;
}

/* An ErrorResponse for the head of the queue. 0A000 for a Bind or Describe
 * that pgflip pointed at a statement older than the client's own Parse
 * ("cached plan must not change result type": a DDL came between them)
 * marks that statement stale; when the statement is as new as the client's
 * Parse, the refusal is what a direct connection would give, and stays.
 * Returns true when the request is replayed (replay_run, from
 * ps_server_after) and the error is not the client's to see: a kept
 * request, whole, that describes what it executes, so the client learns
 * the new result type from the retry. */
static bool server_error(Server *s, const ProtoHeader *h, const uint8_t *msg)
{
	PsExpect *e = queue_head(s);
	PsReplay *r = &s->replay;
	bool kept = r->active;
	r->active = false;
	if (e && e->kind == PS_REFUSE_PARSE)
		return refuse_answer(s, e, h, msg);
	if (e && e->kind == PS_REFUSE_WITH) {
		refusal_answer(s, e->refusal); /* in place of the server's 26000 */
		return true;
	}
	if (!e || !(e->kind == PS_EXPECT_BIND || e->kind == PS_EXPECT_DESCRIBE) || !e->stmt_id)
		return false;
	ProtoErrorFields f;
	if (!proto_error_parse(msg + PROTO_HEADER_SIZE, proto_body_len(h), &f) || !f.sqlstate ||
	    strcmp(f.sqlstate, "0A000") != 0)
		return false;
	PsServerStmt *st = server_find_id(s, e->stmt_id);
	if (!st)
		return false;
	st->stale = true;
	slog_debug(s, "statement pgflip_%llu is stale: %s", (unsigned long long)st->id, f.message ? f.message : "");
	if (!kept || !r->complete || !r->described || !s->client)
		return false;
	r->active = true;
	r->retry_due = true;
	return true;
}

bool ps_server_swallow(Server *s, const ProtoHeader *h, const uint8_t *msg)
{
	if (!s->expect.count)
		return false;
	if (h->type == PROTO_BE_ERROR_RESPONSE)
		return server_error(s, h, msg);
	const PsExpect *e = queue_head(s);
	if (gives_shape(e, h->type))
		record_shape(s, e, h, msg);
	if (e->kind == PS_SWALLOW_DESCRIBE)
		return true;
	return (e->kind == PS_SWALLOW_PARSE || e->kind == PS_SWALLOW_CLOSE) && is_final(e->kind, h->type);
}

/* An ErrorResponse: the server skips to the next Sync. Statements whose
 * Parse was skipped or failed are not there. */
static void skip_to_sync(Server *s)
{
	PsExpect *e;
	while ((e = queue_head(s)) && e->kind != PS_EXPECT_SYNC && e->kind != PS_EXPECT_QUERY)
		queue_skip_head(s);
	/* no Sync sent yet (the client sent a Flush): the server goes on
	 * skipping what comes up to it (ps_client_message) */
	s->expect.skipping = !e;
}

/* The head entry got its final answer: a Parse's statement is there now,
 * a Close's is gone. A kept request is past its first answer: it will not
 * be replayed. */
static void queue_finish_head(Server *s, PsExpect *e)
{
	PsServerStmt *st = e->stmt_id ? server_find_id(s, e->stmt_id) : NULL;
	if (st && (e->kind == PS_EXPECT_PARSE || e->kind == PS_SWALLOW_PARSE))
		st->confirmed = true;
	if (st && e->kind == PS_SWALLOW_CLOSE)
		server_stmt_remove(s, (size_t)(st - s->ps));
	if (s->replay.active)
		replay_drop(s);
	queue_pop(s);
}

bool ps_server_pass(Server *s, uint8_t type, bool *end_run)
{
	PsExpect *e = queue_head(s);
	*end_run = false;
	if (e && (e->kind == PS_SWALLOW_DESCRIBE || gives_shape(e, type)))
		return false; /* swallowed, or read for its columns */
	if (!e || !is_final(e->kind, type))
		return true;
	if (e->kind == PS_SWALLOW_PARSE || e->kind == PS_SWALLOW_CLOSE)
		return false;
	queue_finish_head(s, e);
	e = queue_head(s);
	*end_run = e && e->kind == PS_SYNTH_CLOSE;
	return true;
}

static void server_advance(Server *s, uint8_t type)
{
	PsExpect *e = queue_head(s);
	if (!e)
		return;
	if (type == PROTO_BE_ERROR_RESPONSE) {
		if (s->replay.retry_due)
			replay_run(s);
		else if (e->kind != PS_EXPECT_QUERY)
			skip_to_sync(s);
		return;
	}
	if (!is_final(e->kind, type))
		return;
	queue_finish_head(s, e);
	ps_server_emit_due(s);
}

void ps_server_after(Server *s, uint8_t type)
{
	server_advance(s, type);
	if (s->expect.released) {
		/* pgflip's Describe is answered: the client message it held goes on */
		s->expect.released = false;
		if (s->client)
			client_pump(s->client);
	}
}
