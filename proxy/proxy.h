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
#include "proxy/params.h"
#include "proxy/sock.h"
#include "proxy/sqlscan.h"

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

/* ---- prepared statements in transaction mode (prepared.c) ---- */

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

typedef enum {
	CL_STARTUP = 0,  /* reading SSLRequest / StartupMessage / CancelRequest */
	CL_WAIT_LOGIN,   /* startup read; waiting for a server to finish the login (in pool->waiting) */
	CL_IDLE,         /* logged in, no server (transaction mode, between transactions) */
	CL_WAITING,      /* has a request and waits for a server (in pool->waiting) */
	CL_ACTIVE,       /* linked to a server */
	CL_CLOSING,      /* flushing its last bytes; in proxy.graveyard, freed by the reaper */
} ClientState;

const char *client_state_to_str(ClientState st);
/* client_set_state: the one place a client changes state. It also moves the
 * client between lists (pool->waiting, proxy.graveyard) and counters, and
 * sets whether its socket is read (client_update_read). A bad value aborts. */
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
	uint64_t connect_ms;            /* accept time (client_login_timeout) */
	uint64_t wait_start_ms;         /* when it started waiting for a server */
	uint64_t close_start_ms;
	uint64_t active_ms;             /* last time it sent bytes (client_idle_timeout) */
	uint64_t partial_ms;            /* since when its input ends inside a message, 0 = it does not */

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

	/* Request sub-state, within CL_IDLE / CL_WAITING / CL_ACTIVE:
	 *   fwd_left > 0    the rest of a message streams to the server
	 *                   (or is dropped, fwd_discard);
	 *   discard_error   set: the current request is dropped up to its
	 *                   Query or Sync, then answered with this error;
	 *   need            bytes of a message that must be whole before the
	 *                   pump can go on (its input may grow to that much). */
	uint32_t fwd_left;
	bool fwd_discard;
	bool scanning;                  /* ... a Query, fed to scan as it streams */
	SqlScan scan;
	char *discard_error;
	char discard_sqlstate[6];
	size_t need;
	size_t whole_counted;           /* its share of proxy.whole_bytes */

	uint64_t n_transactions;
	uint64_t n_queries;

	PsClientStmt *ps;               /* its named prepared statements (transaction mode) */
	size_t n_ps;
	size_t cap_ps;

	/* Prepared statements whose Parse text the scanner flagged (a
	 * set_config in a statement): every Bind of one applies the flags
	 * again, on whichever server runs it. Past CLIENT_MAX_FLAGGED names,
	 * every Bind applies the union (bind_flags). */
	struct FlaggedStmt *flagged;
	size_t n_flagged;
	size_t cap_flagged;
	unsigned bind_flags;
};

typedef struct FlaggedStmt {
	char *name;
	unsigned flags;
} FlaggedStmt;

typedef enum {
	SV_CONNECTING = 0,  /* libpq login in progress */
	SV_IDLE,            /* logged in, in pool->idle */
	SV_PREPARING,       /* linked to a client: pgflip's query that gives it the client's route and
			     * settings is running; the client's request waits for its answer */
	SV_ACTIVE,          /* linked to a client, carrying its requests */
	SV_RESETTING,       /* running reset queries (ROLLBACK, server_reset_query, RESET ALL...) */
	SV_CLOSING,         /* in proxy.server_graveyard, freed by the reaper */
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

	/* What the server confirmed. Settings are set by pgflip's queries or
	 * reported by ParameterStatus; search_path is recorded only when the
	 * query that set it succeeded (or when the server reports it). */
	ParamList params;               /* settings as we know them on this backend */
	uint64_t params_sig;            /* the client signature they match, 0 = compare */
	char *search_path;              /* its current search_path, NULL = unknown */
	bool reports_search_path;       /* the server sends ParameterStatus for it (PostgreSQL 18) */
	bool scs;                       /* standard_conforming_strings, as reported: how SQL is lexed */
	int sql_enc;                    /* SqlScanEncoding of its client and server encodings */
	bool lex_unsure;                /* a SET is in the pipeline: scs and encoding may change */

	char tx_status;                 /* of the last ReadyForQuery: 'I', 'T', 'E' */
	uint32_t pending;               /* client Query/Sync/FunctionCall not yet answered */
	bool open_cycle;                /* extended-protocol messages sent since the last Sync */
	uint32_t swallow_rfq;           /* SV_PREPARING / SV_RESETTING: ReadyForQuery still to come */
	/* Dirt a client may have left: reset before the server serves another
	 * client (transaction mode). */
	bool reset_role;                /* SET ROLE / SESSION AUTHORIZATION may have run */
	bool reset_settings;            /* a session-level SET may have run */
	bool reset_listen;              /* a LISTEN may have run (in a Query too long to hold) */

	/* SV_PREPARING: the query being answered */
	char *prep_route;               /* the route it sets */
	bool prep_check;                /* it also checks that the schema exists */
	bool prep_found;                /* ... and the schema does */
	char *prep_error;               /* its ErrorResponse message, if any */
	char prep_sqlstate[6];

	uint32_t fwd_left;              /* bytes of a message still to stream */
	bool fwd_swallow;               /* ... to drop instead of forwarding */

	PsServerStmt *ps;               /* statements prepared here, LRU-bounded */
	size_t n_ps;
	size_t cap_ps;
	uint64_t ps_next_id;
	uint64_t ps_tick;
	PsQueue expect;                 /* answers still to come, in order */
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
	struct event *dispatch_ev;      /* deferred pool_dispatch (pool_dispatch_soon) */
	char *dns_host;                 /* the entry's host name being or last resolved */
	char *dns_addr;                 /* its address, given to libpq as hostaddr; NULL = resolve */
	struct evdns_getaddrinfo_request *dns_req; /* a lookup under way */
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
	int n_clients;                  /* connected (not closing), logging in or not */
	int n_startup;                  /* of them, still in CL_STARTUP (no max_client_conn slot) */
	size_t whole_bytes;             /* client input held beyond each one's cap (whole messages) */
	struct event *accept_resume;    /* re-enables the listeners after EMFILE */
	struct evdns_base *dns;         /* resolves [databases] host names (resolve.c) */
	bool accept_paused;
	uint64_t next_id;
	time_t start_time;
	bool paused;
	bool shutting_down;
	uint64_t shutdown_deadline_ms;
	uint64_t n_transactions;
	uint64_t n_clients_total;
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
/* client_close: one teardown path; REASON goes to the log. SQLSTATE, when
 * not NULL, sends the client a FATAL ErrorResponse with the reason first. */
void client_close(Client *c, const char *sqlstate, const char *reason, ...) __attribute__((format(printf, 3, 4)));
void client_free(Client *c);
/* client_linked: the pool gave C the server S (S is SV_ACTIVE). */
void client_linked(Client *c, Server *s);
/* client_pump: moves what the client sent towards its server as far as the
 * state allows, then sets whether its socket is read. */
void client_pump(Client *c);
/* client_update_read: reads C's socket exactly when its state allows it
 * (client_may_read in client.c); called by every state change and at the
 * end of every pump. */
void client_update_read(Client *c);
/* client_server_failed: the login for C failed or its server died, with the
 * SQLSTATE and MESSAGE that say why (the backend's own, when it sent a FATAL). */
void client_server_failed(Client *c, const char *sqlstate, const char *message);
/* client_discard_request: drop C's current (or next) request up to its
 * Query or Sync, then answer ErrorResponse SQLSTATE MESSAGE + ReadyForQuery. */
void client_discard_request(Client *c, const char *sqlstate, const char *message);
/* client_route: the client's current route (recomputed if routes changed). */
const char *client_route(Client *c);
/* client_prepared: the query that set C's route and settings on S (now
 * SV_ACTIVE again) has its answer in S's prep_* fields. */
void client_prepared(Client *c, Server *s);
void client_cancel_request(uint32_t pid, uint32_t key);
/* client_janitor: login, idle and partial-message timeouts of C at NOW_MS. */
void client_janitor(Client *c, uint64_t now_ms);

/* ---- server.c ---------------------------------------------------------- */

/* What server_connect did: STARTED (a login is under way), FAILED (libpq
 * refused at once: counted as a failed login, server_login_retry applies),
 * CANNOT (no config entry or no memory: nothing was tried). */
typedef enum { SERVER_CONNECT_STARTED = 0, SERVER_CONNECT_FAILED, SERVER_CONNECT_CANNOT } ServerConnectResult;
ServerConnectResult server_connect(Pool *pool) PROXY_MUSTCHECK;
/* server_close: one teardown path; REASON goes to the log and, as a lost
 * connection (08006), to the linked client. */
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
/* server_set_state: the one place a server changes state; it also moves the
 * server in and out of pool->idle, keeps the pool's counters, and schedules
 * a dispatch when the server becomes idle. */
void server_set_state(Server *s, ServerState st);
/* server_prepare: sends on S (linked to its client) the Query SQL (LEN
 * bytes, a whole Query message) that sets ROUTE (checking that its schema
 * exists when CHECK) and the client's settings; S is SV_PREPARING until
 * its ReadyForQuery, then client_prepared() is called. */
void server_prepare(Server *s, const char *route, bool check, const uint8_t *msg, size_t len);
/* server_forget_settings: what pgflip set on S is unknown from now on
 * (after RESET ALL, DISCARD ALL, a failed query...): only the settings the
 * server reports are kept, search_path is unknown. */
void server_forget_settings(Server *s);

/* ---- pool.c ------------------------------------------------------------ */

Pool *pool_get(const char *database, const char *user);
void pool_free(Pool *p);
/* pool_refresh_conf: re-reads mode and size from the current snapshot. */
void pool_refresh_conf(Pool *p);
/* pool_waiting_add / pool_waiting_remove: list membership of a waiting
 * client; only client_set_state calls them. Adding schedules a dispatch. */
void pool_waiting_add(Pool *p, Client *c);
void pool_waiting_remove(Pool *p, Client *c);
/* pool_dispatch_soon: links waiting clients to idle servers and starts
 * logins, from a deferred event of the pool (never inside the caller). */
void pool_dispatch_soon(Pool *p);
void pool_login_failed(Pool *p, const char *message);
bool pool_route_verified(Pool *p, const char *schema);
void pool_route_verified_add(Pool *p, const char *schema);
void pool_janitor(Pool *p, uint64_t now_ms);
/* pool_count_transaction: one more transaction ended on ROUTE. */
void pool_count_transaction(Pool *p, const char *route);
/* pool_conf: the [databases] entry of POOL in the current snapshot, or NULL. */
const ConfDatabase *pool_conf(const Pool *p);

/* ---- resolve.c ---------------------------------------------------------- */

struct evdns_getaddrinfo_request;
struct evdns_base;
/* resolve_host: the host name of DB that pgflip resolves itself before a
 * login (one host given by name, no hostaddr), or NULL (libpq's business). */
const char *resolve_host(const ConfDatabase *db);
/* resolve_start: looks HOST up for P without blocking; the answer sets
 * P->dns_addr (or fails P's waiting logins) and schedules a dispatch. False
 * when there is no resolver. */
bool resolve_start(Pool *p, const char *host);
/* resolve_forget: the address is stale (a login failed): look it up again. */
void resolve_forget(Pool *p);
/* resolve_cancel: P goes away. */
void resolve_cancel(Pool *p);

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

/* ---- admin.c ----------------------------------------------------------- */

bool admin_listen(const char *path, char *err, size_t errlen) PROXY_MUSTCHECK;
void admin_close(void);
/* admin_command: runs one command line; returns the JSON reply (caller
 * frees with free()), always an object with "ok". */
char *admin_command(const char *line);

/* ---- ctl.c ------------------------------------------------------------- */

int ctl_main(int argc, char **argv);

#endif
