/*
 * proxy/prepared.h: protocol-level prepared statements in transaction mode (prepared.c):
 * the statement records and the expect queue, then the functions client.c
 * and server.c call.
 */
#ifndef PGFLIP_PREPARED_H
#define PGFLIP_PREPARED_H

#include "protocol/protocol.h"


/* A named statement as the client prepared it: its Parse body after the
 * name (query text, parameter count and types). */
typedef struct PsClientStmt {
	char *name;
	uint8_t *body;
	uint32_t len;
	uint64_t hash;
	uint64_t born;     /* proxy.ps_clock at its Parse; unique, so it also names the
			    * statement in the expect queue */
	bool closing;      /* the client's Close of it is on its way: gone for what the
			    * client sends after; forgotten when the server gets past the
			    * Close, kept if the server skips it */
	uint64_t shape;    /* a hash of the result columns the client was last
			    * told (its Describe of the statement), 0 = never described */
} PsClientStmt;

/* A statement prepared on one server connection, as pgflip_<id>, for one
 * route: the same text under two routes resolves to different views. */
typedef struct PsServerStmt {
	uint64_t id;
	char *route;
	uint8_t *body;
	uint32_t len;
	uint64_t hash;
	uint64_t last_used;
	uint64_t born;     /* proxy.ps_clock at its Parse */
	bool confirmed;    /* ParseComplete seen */
	bool stale;        /* refused with 0A000 (older than a DDL): prepare again before use */
	bool closing;      /* pgflip's Close of it is on its way: not used or counted any more;
			    * forgotten at its CloseComplete, kept if the server skips the Close */
	uint64_t shape;    /* its result columns, from a Describe answer (fixed for its
			    * life: PostgreSQL refuses it rather than change them); 0 = not known */
} PsServerStmt;

/* What the server will answer to each extended-protocol message sent, in
 * order, so that answers pgflip makes up (or swallows) land in the right
 * place of the stream. */
typedef enum {
	PS_EXPECT_PARSE = 0,   /* ParseComplete, forwarded */
	PS_EXPECT_BIND,        /* BindComplete */
	PS_EXPECT_DESCRIBE,    /* [ParameterDescription] RowDescription | NoData */
	PS_EXPECT_EXECUTE,     /* ... CommandComplete | EmptyQueryResponse | PortalSuspended */
	PS_EXPECT_CLOSE,       /* CloseComplete */
	PS_EXPECT_SYNC,        /* ReadyForQuery */
	PS_EXPECT_QUERY,       /* ... ReadyForQuery (Query, FunctionCall) */
	PS_SWALLOW_PARSE,      /* a Parse pgflip sent itself: swallow ParseComplete */
	PS_SWALLOW_CLOSE,      /* pgflip's Close (eviction, an older or stale statement):
				* swallow CloseComplete */
	PS_SYNTH_CLOSE,        /* the client's Close of a statement: answer CloseComplete
				* ourselves when reached */
	PS_REFUSE_PARSE,       /* the client's Parse of a name it has, sent so that the
				* server refuses it: ErrorResponse 42P05, renamed */
	PS_SWALLOW_DESCRIBE,   /* pgflip's Describe of its statement, to learn its result
				* columns: swallow ParameterDescription and RowDescription |
				* NoData, keep the shape; the client's message waits for it
				* (PsQueue.hold) */
	PS_REFUSE_WITH,        /* a Describe of a statement no server has, sent in place of a
				* client message that pgflip refuses (PsRefusal), so that
				* the server fails the transaction as PostgreSQL would and
				* skips to the Sync: its ErrorResponse becomes pgflip's */
} PsExpectKind;

/* Why pgflip refuses a client message (PS_REFUSE_WITH). */
typedef enum {
	PS_REFUSAL_SHAPE = 0,  /* a Bind or Describe of a statement whose result columns changed since
				* the client was told them: 0A000, as PostgreSQL says then */
	PS_REFUSAL_TOO_MANY,   /* a Parse past max_prepared_statements: 53400 */
} PsRefusal;

typedef struct PsExpect {
	PsExpectKind kind;
	uint64_t stmt_id;      /* PARSE kinds, SWALLOW_CLOSE: the server statement;
				* BIND/DESCRIBE: the server statement pgflip named, when
				* it is older than the client's Parse (else 0) */
	uint64_t client_stmt;  /* the client's statement (its born), or 0: EXPECT_PARSE:
				* the one it prepares; SYNTH_CLOSE: the one it closes
				* (0: a name the client does not have); REFUSE_PARSE:
				* the one of that name */
	PsRefusal refusal;     /* PS_REFUSE_WITH: which error the client gets */
	uint64_t shape_of;     /* the client's Describe of its statement: the server
				* statement it names (any age), whose answer gives both
				* their shapes; else 0 */
} PsExpect;

/* The client messages of a request that starts a transaction with a
 * statement pgflip reuses, older than the client's own Parse of it, kept
 * until its first answer: if that is 0A000 (the statement is older than a
 * DDL), pgflip prepares it again and sends the request once more
 * (prepared.c). */
typedef struct PsReplay {
	uint8_t *data;         /* whole messages, as the client sent them */
	size_t len;
	size_t cap;
	bool active;           /* a request is kept */
	bool complete;         /* its Sync is in */
	bool described;        /* a Describe came before any Execute */
	bool executed;         /* an Execute is in */
	bool retry_due;        /* its error was swallowed: replay it */
	bool replaying;        /* sending it again (not kept again) */
} PsReplay;

typedef struct PsQueue {
	PsExpect *items;
	size_t head;
	size_t count;
	size_t cap;
	bool skipping;         /* an error came before the Sync was sent: the server
				* skips (answers nothing) up to the next Sync */
	bool hold;             /* a PS_SWALLOW_DESCRIBE is on its way: the client's next
				* message waits for its answer (ps_client_hold) */
	bool released;         /* ... and was answered: pump the client again */
	bool oom;              /* an entry could not be recorded: the queue is wrong */
	PsExpect spare;        /* what queue_push hands out then */
} PsQueue;

typedef struct Client Client;
typedef struct Server Server;


/* ps_enabled: prepared statements are tracked and moved between servers for
 * this client (transaction mode, max_prepared_statements > 0). */
bool ps_enabled(const Client *c);
/* ps_needs_whole: the message type must be whole before ps_client_message. */
bool ps_needs_whole(uint8_t type);
/*
 * ps_client_hold: before a client Bind or Describe of its statement (MSG
 * whole, header H) goes to S. A client that was told the statement's result
 * columns must meet the same columns, or 0A000 "cached plan must not change
 * result type" as on a direct connection, where its own statement would be
 * older than the DDL that changed them. When the statement pgflip would use
 * on S has no known columns (pgflip prepares it there now, or nobody
 * described it), pgflip sends its Describe and a Flush and returns true: the
 * message waits (ps_holding) until the answer, then comes again, and
 * ps_client_message compares. False: go on now. Costs a round trip once per
 * statement and server, and only for clients that describe statements.
 */
bool ps_client_hold(Client *c, Server *s, const ProtoHeader *h, const uint8_t *msg);
/* ps_holding: the client's next message waits for pgflip's Describe on S. */
bool ps_holding(const Server *s);
/*
 * ps_client_message: a client message on its way to server S. MSG is the
 * whole message for the types of ps_needs_whole (else NULL). Records what
 * the server will answer; may write a rewritten or extra message to S
 * itself. Returns true when the caller must forward the original bytes,
 * false when they are consumed (drain them).
 */
bool ps_client_message(Client *c, Server *s, const ProtoHeader *h, const uint8_t *msg);
/* ps_client_full: the whole Parse MSG (header H) would give C one named
 * statement more than max_prepared_statements (a new name: a Parse of a
 * name it has is refused with 42P05 by ps_client_message, as PostgreSQL
 * does). The caller refuses it. */
bool ps_client_full(Client *c, const ProtoHeader *h, const uint8_t *msg);
/*
 * ps_client_refuse: C's current message is refused for WHY. pgflip sends S
 * a message that fails (a Describe of a statement no one has), so that the
 * server fails the transaction and skips to the Sync as PostgreSQL would
 * after that error; its ErrorResponse reaches C as pgflip's. The caller
 * drains the client's message and goes on forwarding: the rest of the
 * request meets the server's skipping, as it would on PostgreSQL.
 */
void ps_client_refuse(Client *c, Server *s, PsRefusal why);
/* ps_server_final: with answers expected, does a message of TYPE end the
 * current one (so the caller must see it whole)? */
bool ps_server_final(const Server *s, uint8_t type);
/* ps_server_swallow: should the server message MSG (whole, header H) be
 * dropped? True for an answer to pgflip's own Parse/Close, for an
 * ErrorResponse that pgflip answers itself by retrying the request
 * (ps_server_after then sends it again), and for the 42P05 of a client's
 * Parse of a name it has, which it replaces (written to the client here)
 * by the same error naming the client's statement. An ErrorResponse 0A000
 * for a statement pgflip reused marks that statement stale. */
bool ps_server_swallow(Server *s, const ProtoHeader *h, const uint8_t *msg);
/* ps_server_after: the message of TYPE went to the client (or was dropped):
 * advance the queue, make up answers that are now due. */
void ps_server_after(Server *s, uint8_t type);
/* ps_server_pass: a server message of TYPE (not ErrorResponse, not
 * ReadyForQuery) is about to join a run of messages moved to the client
 * unread. If it is the answer the queue's head waits for, the entry is
 * done (a Parse confirmed). Returns false, changing nothing, when the
 * message must not join the run (it is to be swallowed). Sets *END_RUN
 * when made-up answers are due right after it: the run must end there,
 * and the caller calls ps_server_emit_due once the run is moved. */
bool ps_server_pass(Server *s, uint8_t type, bool *end_run);
/* ps_server_emit_due: sends the made-up answers now due to the client. */
void ps_server_emit_due(Server *s);
/* ps_deallocate: a Query that is "DEALLOCATE [PREPARE] name|ALL" for a
 * statement of C: forgotten, and answered by pgflip. */
bool ps_deallocate(Client *c, const char *sql, char *tag, size_t taglen);
void ps_client_clear(Client *c);
void ps_server_clear(Server *s);

#endif
