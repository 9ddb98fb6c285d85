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
	bool confirmed;    /* ParseComplete seen */
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
	PS_SWALLOW_CLOSE,      /* an eviction Close: swallow CloseComplete */
	PS_SYNTH_PARSE,        /* answer ParseComplete ourselves when reached */
	PS_SYNTH_CLOSE,        /* answer CloseComplete ourselves when reached */
} PsExpectKind;

typedef struct PsExpect {
	PsExpectKind kind;
	uint64_t stmt_id;      /* PARSE kinds: the server statement */
} PsExpect;

typedef struct PsQueue {
	PsExpect *items;
	size_t head;
	size_t count;
	size_t cap;
} PsQueue;

typedef struct Client Client;
typedef struct Server Server;


/* ps_enabled: prepared statements are tracked and moved between servers for
 * this client (transaction mode, max_prepared_statements > 0). */
bool ps_enabled(const Client *c);
/* ps_needs_whole: the message type must be whole before ps_client_message. */
bool ps_needs_whole(uint8_t type);
/*
 * ps_client_message: a client message on its way to server S. MSG is the
 * whole message for the types of ps_needs_whole (else NULL). Records what
 * the server will answer; may write a rewritten or extra message to S
 * itself. Returns true when the caller must forward the original bytes,
 * false when they are consumed (drain them).
 */
bool ps_client_message(Client *c, Server *s, const ProtoHeader *h, const uint8_t *msg);
/* ps_server_final: with answers expected, does a message of TYPE end the
 * current one (so the caller must see it whole)? */
bool ps_server_final(const Server *s, uint8_t type);
/* ps_server_swallow: should this server message be dropped (an answer to
 * pgflip's own Parse/Close)? */
bool ps_server_swallow(const Server *s, uint8_t type);
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
