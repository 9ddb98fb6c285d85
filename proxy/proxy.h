/*
 * proxy: the pgflip daemon. Internal header shared by the files of proxy/.
 *
 * One libevent loop runs everything. Objects:
 *   Proxy   the daemon: config snapshot, listeners, router, pools, clients;
 *   Client  one application connection (state enum ClientState);
 *   Server  one upstream connection, logged in with libpq's non-blocking
 *           connect, then carrying raw protocol messages (ServerState);
 *   Pool    the servers of one (database, user) pair and its waiting clients.
 *
 * A client is linked to a server for its session (pool_mode = session) or
 * for each transaction (pool_mode = transaction). The route (search_path) of
 * a client is enforced when its request starts on an idle server: the proxy
 * puts one Query that sets search_path (and tracked settings) ahead of the
 * client's bytes, in the same write, and swallows its reply.
 *
 * Connections are never freed inside their own callbacks: *_close() moves
 * them to a graveyard that a deferred event empties (proxy_reap).
 */
#ifndef PGFLIP_PROXY_H
#define PGFLIP_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <libpq-fe.h>

#include "conf/conf.h"
#include "protocol/protocol.h"
#include "proxy/log.h"
#include "proxy/sock.h"

/* Output buffered towards a peer above which we stop reading from the
 * other side (backpressure); reading resumes at SOCK_LOW_WATERMARK. 256 KiB
 * keeps a few TCP windows in flight without letting a slow reader grow us. */
#define PROXY_HIGH_WATERMARK (256 * 1024)
/* Server messages can be as long as PostgreSQL allows (1 GiB); we stream
 * them, so this bound only guards the length field. */
#define PROXY_SERVER_MAX_MESSAGE 0x3fffffffu
/* How often the janitor checks timeouts (ms): the resolution of every
 * timeout in the config. */
#define PROXY_JANITOR_MS 100
/* A closing client whose last bytes cannot be written within this time is
 * dropped anyway (ms). */
#define PROXY_CLOSE_FLUSH_MS 5000

/* Calls whose failure the caller must look at. */
#define PROXY_MUSTCHECK __attribute__((warn_unused_result))

typedef struct Pool Pool;
typedef struct Client Client;
typedef struct Server Server;

/* ---- params.c: small allocation helpers and settings lists ---- */

/*
 * proxy_strdup / proxy_grow: allocation that cannot fail quietly. The proxy
 * allocates only small bookkeeping with them (names, settings, tables); when
 * even that fails there is nothing sensible left to do, so they abort.
 * proxy_grow makes room for one more item in ITEMS (N used, *CAP allocated,
 * SIZE bytes each), doubling from 8, and returns the (maybe moved) array.
 */
char *proxy_strdup(const char *s);
/* proxy_u64_str: V in decimal, written at the end of BUF (24 bytes, enough
 * for any uint64_t with its NUL); returns where the digits start. For hot
 * paths that would otherwise call printf for one number. */
const char *proxy_u64_str(char buf[24], uint64_t v);
void *proxy_grow(void *items, size_t n, size_t *cap, size_t size);

/* A name = value setting (GUC), as a small growable list. */
typedef struct Param {
	char *name;
	char *value;
} Param;

typedef struct ParamList {
	Param *items;
	size_t n;
	size_t cap;
} ParamList;

/* params_set: true when NAME was added or its value changed. */
bool params_set(ParamList *l, const char *name, const char *value);
/* params_signature: a hash of the whole list (never 0). */
uint64_t params_signature(const ParamList *l);
const char *params_get(const ParamList *l, const char *name);
void params_remove(ParamList *l, const char *name);
void params_clear(ParamList *l);
void params_copy(ParamList *dst, const ParamList *src);

/* ---- prepared statements in transaction mode (prepared.c) ---- */

/* A named statement as the client prepared it: its Parse body after the
 * name (query text, parameter count and types). */
typedef struct PsClientStmt {
	char *name;
	uint8_t *body;
	uint32_t len;
	uint64_t hash;
	uint64_t born;     /* proxy.ps_clock at its Parse */
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
	PS_SYNTH_CLOSE,        /* answer CloseComplete ourselves when reached */
} PsExpectKind;

typedef struct PsExpect {
	PsExpectKind kind;
	uint64_t stmt_id;      /* PARSE kinds: the server statement; BIND/DESCRIBE:
				* the server statement pgflip named, when it is older
				* than the client's Parse (else 0) */
} PsExpect;

/* The client messages of a request that starts a transaction with a
 * statement pgflip reuses, older than the client's own Parse of it, kept
 * until its first answer: if that is 0A000 (the statement is older than a
 * DDL), pgflip prepares it again and sends the request once more
 * (prepared.c). */
typedef enum {
	PS_REPLAY_OFF = 0,     /* nothing kept */
	PS_REPLAY_TAKING,      /* keeping the messages of a request, up to its Sync */
	PS_REPLAY_WHOLE,       /* its Sync is in: it can be sent again */
	PS_REPLAY_DUE,         /* its 0A000 was swallowed: send it again now */
	PS_REPLAY_SENDING,     /* sending it again (what is sent is not kept) */
} PsReplayState;

typedef struct PsReplay {
	PsReplayState state;
	uint8_t *data;         /* whole messages, as the client sent them */
	size_t len;
	size_t cap;
	bool described;        /* a Describe came before any Execute */
	bool executed;         /* an Execute is in */
} PsReplay;

typedef struct PsQueue {
	PsExpect *items;
	size_t head;
	size_t count;
	size_t cap;
} PsQueue;

typedef enum {
	CL_STARTUP = 0,  /* reading SSLRequest / StartupMessage / CancelRequest */
	CL_WAIT_LOGIN,   /* startup read; waiting for a server to finish the login */
	CL_IDLE,         /* logged in, no server (transaction mode, between transactions) */
	CL_WAITING,      /* has a request and waits for a server */
	CL_ACTIVE,       /* linked to a server */
	CL_CLOSING,      /* flushing its last bytes; freed by the reaper */
} ClientState;

const char *client_state_to_str(ClientState st);
/* client_set_state: the one place a client changes state; a bad value aborts. */
void client_set_state(Client *c, ClientState st);

struct Client {
	TAILQ_ENTRY(Client) link;       /* proxy.clients or proxy.graveyard */
	TAILQ_ENTRY(Client) wait_link;  /* pool->waiting while CL_WAITING / CL_WAIT_LOGIN */
	ClientState state;
	uint64_t id;
	Sock sock;
	struct sockaddr_storage addr;
	char addr_str[64];              /* "ip:port" or "unix" */
	bool is_unix;
	time_t connect_time;
	uint64_t wait_start_ms;         /* when it started waiting for a server */
	uint64_t close_start_ms;

	char *user;                     /* from StartupMessage */
	char *database;
	char *app_name;                 /* "" when not given */
	ParamList params;               /* settings the client expects on its server */
	uint64_t params_sig;            /* params_signature(params), fixed after login */

	Pool *pool;
	Server *server;                 /* linked server, or NULL */

	char *route;                    /* its version schema, owned copy */
	uint64_t route_gen;             /* router generation route was computed at */

	uint32_t cancel_pid;            /* BackendKeyData we gave it */
	uint32_t cancel_key;

	uint32_t fwd_left;              /* bytes of a message still to stream to the server */
	bool fwd_discard;               /* ... or to drop (discarding after a failed route) */
	bool discarding;                /* dropping a request after a route error */
	char *discard_error;            /* the error to answer once the request ends */
	char discard_sqlstate[6];

	uint64_t n_transactions;
	uint64_t n_queries;

	PsClientStmt *ps;               /* its named prepared statements (transaction mode) */
	size_t n_ps;
	size_t cap_ps;
};

typedef enum {
	SV_CONNECTING = 0,  /* libpq login in progress */
	SV_IDLE,            /* logged in, in the pool */
	SV_ACTIVE,          /* linked to a client */
	SV_RESETTING,       /* running server_reset_query after a session ended */
	SV_CLOSING,         /* freed by the reaper */
} ServerState;

const char *server_state_to_str(ServerState st);

struct Server {
	TAILQ_ENTRY(Server) link;       /* pool->servers or proxy.server_graveyard */
	TAILQ_ENTRY(Server) idle_link;  /* pool->idle while SV_IDLE */
	ServerState state;
	uint64_t id;
	Pool *pool;
	PGconn *pg;                     /* owns the socket */
	struct event *connect_ev;       /* PQconnectPoll driver */
	Sock sock;                      /* after login (sock.in != NULL) */
	uint64_t connect_start_ms;
	uint64_t login_ms;              /* when the login finished */
	uint64_t idle_since_ms;
	int backend_pid;

	Client *client;

	ParamList params;               /* settings as we know them on this backend */
	uint64_t params_sig;            /* the client signature they match, 0 = check */
	char *search_path;              /* its current search_path, NULL = unknown */

	char tx_status;                 /* of the last ReadyForQuery: 'I', 'T', 'E' */
	uint32_t pending;               /* client Query/Sync/FunctionCall not yet answered */
	bool open_cycle;                /* extended-protocol messages sent since the last Sync */
	bool reset_role;                /* a client may have changed its role: reset before reuse */
	uint32_t swallow_rfq;           /* ReadyForQuery of injected queries still to come */
	bool checking_route;            /* the injected query is a route check */
	bool check_found;               /* its CommandComplete said the schema exists */
	char *check_error;              /* its ErrorResponse text, if any */

	uint32_t fwd_left;              /* bytes of a message still to stream */
	bool fwd_swallow;               /* ... to drop instead of forwarding */

	PsServerStmt *ps;               /* statements prepared here, LRU-bounded */
	size_t n_ps;
	size_t cap_ps;
	uint64_t ps_next_id;
	uint64_t ps_tick;
	PsQueue expect;                 /* answers still to come, in order */
	PsReplay replay;                /* the request a stale statement may make pgflip retry */
};

struct Pool {
	TAILQ_ENTRY(Pool) link;
	char *database;                 /* [databases] key */
	char *user;                     /* upstream user (entry's user or the client's) */
	ConfPoolMode mode;
	int size;
	TAILQ_HEAD(, Server) servers;   /* every server of the pool, any state */
	TAILQ_HEAD(Server_idle_head, Server) idle; /* SV_IDLE, most recently used first */
	TAILQ_HEAD(, Client) waiting;   /* FIFO */
	int n_servers;
	int n_connecting;
	int n_waiting;
	ParamList server_params;        /* ParameterStatus of its first login */
	bool have_params;
	char **verified;                /* route schemas known to exist */
	size_t n_verified;
	size_t cap_verified;
	uint64_t verified_gen;          /* router generation the list is valid for */
	char *last_error;               /* last login error, for clients and `pools` */
	uint64_t n_transactions;
	uint64_t n_route_sets;      /* injected SETs of search_path (route changes on a server) */
	uint64_t last_connect_fail_ms;
	struct RouteCount *route_counts; /* transactions per route */
	size_t n_route_counts;
	size_t cap_route_counts;
};

typedef struct RouteCount {
	char *route;
	uint64_t n;
} RouteCount;

/* ---- router.c ---------------------------------------------------------- */

typedef struct RoutePin {
	ConfPinKind kind;
	char *key;
	char *schema;
	ConfCidr cidr;
} RoutePin;

typedef struct Router {
	char *default_schema;
	RoutePin *pins;
	size_t n_pins;
	size_t cap_pins;
	char *canary_schema;
	int canary_percent;
	uint64_t generation;   /* bumped at every change: clients recompute lazily */
} Router;

void router_init(Router *r);
void router_free(Router *r);
/* router_load: replaces the whole table with the one of a config snapshot. */
void router_load(Router *r, const ConfRoutes *routes);
/* router_equal_conf: true when the table equals that of ROUTES. */
bool router_equal_conf(const ConfRoutes *a, const ConfRoutes *b);
/*
 * router_route: the schema for a client (APP may be "", ADDR may be NULL for
 * Unix sockets); first match in the order app, user, addr; then canary (by
 * CLIENT_ID, stable for the client), then default. The string belongs to the
 * router: copy it.
 */
const char *router_route(const Router *r, const char *app, const char *user, const struct sockaddr *addr,
			 uint64_t client_id);
/* router_set_pin / router_set_default / router_unset_pin / router_set_canary:
 * admin changes. False with ERR filled on a bad key or schema. */
bool router_set_default(Router *r, const char *schema, char *err, size_t errlen) PROXY_MUSTCHECK;
bool router_set_pin(Router *r, ConfPinKind kind, const char *key, const char *schema, char *err, size_t errlen) PROXY_MUSTCHECK;
bool router_unset_pin(Router *r, ConfPinKind kind, const char *key, char *err, size_t errlen) PROXY_MUSTCHECK;
bool router_set_canary(Router *r, const char *schema, int percent, char *err, size_t errlen) PROXY_MUSTCHECK;
/* router_schema_ok: a name the proxy can route to (see router.c). */
bool router_schema_ok(const char *schema, char *err, size_t errlen);
const char *router_pin_kind_to_str(ConfPinKind kind);

/* ---- the daemon -------------------------------------------------------- */

typedef struct Proxy {
	struct event_base *base;
	Conf *conf;
	Router router;
	struct evconnlistener *listeners[4];
	int n_listeners;
	char *unix_path;
	struct event *janitor;
	struct event *reaper;
	struct event *sig_hup, *sig_term, *sig_int;
	TAILQ_HEAD(, Client) clients;
	TAILQ_HEAD(, Client) graveyard;
	TAILQ_HEAD(, Server) server_graveyard;
	TAILQ_HEAD(, Pool) pools;
	int n_clients;
	uint64_t next_id;
	time_t start_time;
	bool paused;
	bool shutting_down;
	uint64_t shutdown_deadline_ms;
	uint64_t n_transactions;
	uint64_t n_clients_total;
	uint64_t ps_clock;      /* orders the Parses of clients and of pgflip (prepared.c) */
} Proxy;

extern Proxy proxy;

uint64_t proxy_now_ms(void);
/* proxy_reap_soon: schedule the reaper (frees the graveyards). */
void proxy_reap_soon(void);
bool proxy_reload(char *err, size_t errlen) PROXY_MUSTCHECK;
void proxy_begin_shutdown(void);
void proxy_pause(void);
void proxy_resume(void);
int proxy_serve(const char *conf_path);

/* ---- client.c ---------------------------------------------------------- */

void client_accept(evutil_socket_t fd, const struct sockaddr *addr, int socklen, bool is_unix);
/* client_close: one teardown path; REASON goes to the log. ERROR_SQLSTATE,
 * when not NULL, sends the client a FATAL ErrorResponse with MESSAGE first. */
void client_close(Client *c, const char *sqlstate, const char *reason, ...) __attribute__((format(printf, 3, 4)));
void client_free(Client *c);
/* client_linked: the pool gave C the server S. */
void client_linked(Client *c, Server *s);
/* client_pump: moves what the client sent towards its server as far as the
 * state allows. */
void client_pump(Client *c);
/* client_server_failed: the login for C failed or its server died. */
void client_server_failed(Client *c, const char *message);
/* client_discard_request: drop C's current (or next) request up to its
 * Query or Sync, then answer ErrorResponse SQLSTATE MESSAGE + ReadyForQuery. */
void client_discard_request(Client *c, const char *sqlstate, const char *message);
/* client_route: the client's current route (recomputed if routes changed). */
const char *client_route(Client *c);
/* client_route_checked: the route check S ran for C has its answer. */
void client_route_checked(Client *c, Server *s);
void client_cancel_request(uint32_t pid, uint32_t key);

/* ---- server.c ---------------------------------------------------------- */

/* server_connect: starts a libpq login for POOL; false if it cannot start. */
bool server_connect(Pool *pool) PROXY_MUSTCHECK;
void server_close(Server *s, const char *reason, ...) __attribute__((format(printf, 2, 3)));
void server_free(Server *s);
void server_pump(Server *s);
/* server_release: the client let go of S (end of transaction or session). */
void server_release(Server *s);
/* server_at_boundary: no request of the client is open on S and S is idle
 * (ReadyForQuery 'I'): the next client message starts a new transaction. */
bool server_at_boundary(const Server *s);
/* server_output_full: the client should stop sending towards S. */
bool server_output_full(const Server *s);
/* server_set_active / server_set_idle: pool transitions (idle list kept). */
void server_set_active(Server *s);
void server_set_idle(Server *s);

/* ---- pool.c ------------------------------------------------------------ */

Pool *pool_get(const char *database, const char *user);
void pool_free(Pool *p);
/* pool_refresh_conf: re-reads mode and size from the current snapshot. */
void pool_refresh_conf(Pool *p);
/* pool_enqueue: C wants a server; it gets one through client_linked(). */
void pool_enqueue(Pool *p, Client *c);
void pool_dequeue(Pool *p, Client *c);
/* pool_dispatch: links waiting clients to idle servers, starts logins. */
void pool_dispatch(Pool *p);
void pool_server_idle(Pool *p, Server *s);
void pool_login_failed(Pool *p, const char *message);
bool pool_route_verified(Pool *p, const char *schema);
void pool_route_verified_add(Pool *p, const char *schema);
void pool_janitor(Pool *p, uint64_t now_ms);
/* pool_count_transaction: one more transaction ended on ROUTE. */
void pool_count_transaction(Pool *p, const char *route);
/* pool_conf: the [databases] entry of POOL in the current snapshot, or NULL. */
const ConfDatabase *pool_conf(const Pool *p);

/* ---- prepared.c ------------------------------------------------------- */

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
/* ps_server_swallow: should the server message MSG (whole, header H) be
 * dropped? True for an answer to pgflip's own Parse/Close, and for an
 * ErrorResponse that pgflip answers itself by retrying the request
 * (ps_server_after then sends it again). An ErrorResponse 0A000 for a
 * statement pgflip reused marks that statement stale. */
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

/* ---- admin.c ----------------------------------------------------------- */

bool admin_listen(const char *path, char *err, size_t errlen) PROXY_MUSTCHECK;
void admin_close(void);
/* admin_command: runs one command line; returns the JSON reply (caller
 * frees with free()), always an object with "ok". */
char *admin_command(const char *line);

/* ---- ctl.c ------------------------------------------------------------- */

int ctl_main(int argc, char **argv);

#endif
