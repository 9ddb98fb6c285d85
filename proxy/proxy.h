/*
 * proxy/proxy.h: the objects of the pgflip daemon, shared by the files of
 * proxy/, and the daemon's own functions (daemon.c). Each file's functions
 * are declared in its own header (client.h, server.h, pool.h, router.h,
 * prepared.h, resolve.h, admin.h, sock.h, startup.h, sqlscan.h).
 *
 * One libevent loop runs everything. Objects:
 *   Proxy   the daemon: config snapshot, listeners, router, pools, clients;
 *   Client  one application connection (state enum ClientState);
 *   Server  one upstream connection, logged in with libpq's non-blocking
 *           connect, or by login.c with a SCRAM client's keys (SCRAM
 *           passthrough), then carrying raw protocol messages (ServerState);
 *   Pool    the servers of one (database, user) pair and its waiting clients.
 *
 * A client is linked to a server for its session (pool_mode = session) or
 * for each transaction (pool_mode = transaction). The route (search_path) of
 * a client is enforced when its request starts on a server whose confirmed
 * search_path or settings differ: the request waits while the server runs
 * pgflip's query that sets them (SV_PREPARING), and goes on only when the
 * server answered it without error.
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
#include "proxy/login.h"
#include "proxy/params.h"
#include "proxy/sock.h"
#include "proxy/prepared.h"
#include "proxy/router.h"
#include "proxy/routestats.h"
#include "proxy/sqlscan.h"
#include "proxy/stats.h"

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
/* Seconds of event-loop lag kept for `status` (loop_lag_ms.last_10s). */
#define PROXY_LAG_SLOTS 10


typedef struct Pool Pool;
typedef struct AuthState AuthState;
typedef struct AuthVerifiers AuthVerifiers;
typedef struct AuthLookup AuthLookup;
typedef struct RouteStore RouteStore;
typedef struct Console Console;

typedef enum {
	CL_STARTUP = 0,  /* reading SSLRequest / StartupMessage / CancelRequest (TLS handshake inside) */
	CL_AUTH,         /* startup read; authenticating: waits for its PasswordMessage / SASL messages */
	CL_AUTH_LOOKUP,  /* startup read; waits for auth_query to give its secret (authq.c); not read */
	CL_WAIT_LOGIN,   /* startup read; waiting for a server to finish the login (in pool->waiting) */
	CL_IDLE,         /* logged in, no server (transaction mode, between transactions) */
	CL_WAITING,      /* has a request and waits for a server (in pool->waiting) */
	CL_ACTIVE,       /* linked to a server */
	CL_CONSOLE,      /* logged in to admin_db: its Query messages are admin commands (console.c); no pool */
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
	RouteStatsEntry *rstats;        /* proxy.rstats' entry of route, NULL until it ends a transaction there */
	uint64_t canary_nonce;          /* random, drawn at accept: its key under canary_key = connection */
	uint16_t canary_buckets[CONF_CANARY_KEYS]; /* its canary bucket under each key, drawn at login */
	/* The open transaction, as the client sees it: from its first message
	 * (tx_start_us, monotonic us; 0 = none open) to the ReadyForQuery 'I'
	 * that ends it; tx_failed once it received an ErrorResponse in it. */
	uint64_t tx_start_us;
	bool tx_failed;
	uint64_t request_us;            /* monotonic us of its last transaction's start (SHOW CLIENTS request_time), 0 = none yet */
	Console *console;               /* CL_CONSOLE: what it may do, its protocol state (console.c); else NULL */

	struct AuthState *auth;         /* the exchange while CL_AUTH / CL_AUTH_LOOKUP (auth.c), else NULL */
	AuthLookup *lookup;             /* the auth_query lookup it waits for (authq.c), else NULL */
	TAILQ_ENTRY(Client) lookup_link; /* in that lookup's queue */
	ScramKeys *scram_keys;          /* what it proved with SCRAM, until client_enter hands them to its pool */

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
	SV_CONNECTING = 0,  /* login in progress: libpq's, or login.c's (SCRAM passthrough) */
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
	/* The link: libpq's (pg owns the socket and the SSL object; PQfinish
	 * says Terminate) or login.c's (login until it is done; then sock owns
	 * both, and cancel_key says where a CancelRequest goes). */
	PGconn *pg;
	struct event *connect_ev;       /* PQconnectPoll driver */
	Login *login;                   /* an own login under way, else NULL */
	LoginCancelKey cancel_key;      /* own logins, once logged in */
	Sock sock;                      /* after login (sock.in != NULL); own logins: during it too */
	uint64_t connect_start_ms;
	int connect_timeout_ms;         /* the login's deadline: server_connect_timeout, or the entry's connect_timeout */
	uint64_t login_ms;              /* when the login finished */
	uint64_t idle_since_ms;
	int backend_pid;
	bool close_needed;              /* RECONNECT: closed once idle, never given to a client again */
	uint64_t query_start_us;        /* when the oldest unanswered request went out (Pool.stats query_time) */

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
	bool broken;                    /* what pgflip knows of it is wrong (out of memory): closed when
					 * released, never given to another client */

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
	ScramKeys *scram_keys;          /* SCRAM passthrough: the last keys a client of this pool proved, or NULL */
	uint64_t n_route_sets;      /* injected SETs of search_path (route changes on a server) */
	uint64_t last_connect_fail_ms;
	uint64_t *route_tx;             /* transactions per route: [i] of proxy.rstats.entries[i] */
	size_t n_route_tx;
	bool paused;                    /* PAUSE of its database (or of all): no new transaction starts */
	bool draining;                  /* a drain window holds its database (drain.c): the same, briefly */
	bool close_pending;             /* a server RECONNECT marked (close_needed) is not closed yet */
	PoolStats stats;                /* its counters since it was made (stats.h) */
	PoolStats stats_mark;           /* stats at the start of the current stats_period */
	PoolStats stats_delta;          /* growth over the last full stats_period ... */
	uint64_t stats_delta_us;        /* ... which lasted this long (0 = none ended yet) */
	uint64_t stats_mark_us;         /* monotonic us of stats_mark */
};

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
	int n_startup;                  /* of them, not logged in yet: CL_STARTUP, CL_AUTH* (no max_client_conn slot) */
	size_t whole_bytes;             /* client input held beyond each one's cap (whole messages) */
	struct event *accept_resume;    /* re-enables the listeners after EMFILE */
	struct evdns_base *dns;         /* resolves [databases] host names (resolve.c) */
	uint64_t n_dns_queries;         /* host name lookups started (SHOW LISTS dns_queries) */
	bool accept_paused;
	uint64_t next_id;
	time_t start_time;
	bool paused;                    /* PAUSE of everything */
	ParamList paused_dbs;           /* databases paused one by one (PAUSE db): name = "1" */
	bool shutting_down;
	uint64_t shutdown_deadline_ms;
	uint64_t n_transactions;
	uint64_t n_clients_total;
	/* The event loop's lag: how much later than due the janitor ran (ms),
	 * the longest since start and per second for the last PROXY_LAG_SLOTS
	 * seconds (`status`). A loop that something blocks shows it here. */
	uint64_t janitor_last_ms;
	uint64_t loop_lag_max_ms;
	uint64_t lag_slot_s[PROXY_LAG_SLOTS];
	uint64_t lag_slot_ms[PROXY_LAG_SLOTS];
	uint64_t ps_clock;              /* orders the Parses of clients and of pgflip (prepared.c) */
	struct TlsServer *tls;          /* client_tls_* context (tls.c), NULL when client_tls_sslmode = disable */
	TAILQ_HEAD(, AuthLookup) lookups; /* auth_query connections and caches (authq.c) */
	AuthVerifiers *auth_verifiers;  /* of proxy.conf's plain auth_file passwords (auth.c) */
	uint8_t auth_mock_key[32];      /* random per process: the salts of made-up SCRAM verifiers (auth.c) */
	LIST_HEAD(, LoginCancel) cancels; /* CancelRequests to own-login backends under way (login.c) */
	RouteStats rstats;              /* per route: transactions, errors, latency, the last 60 s */
	RouterHash canary_hash;         /* keyed at start with random bytes: the canary buckets' hash */
	uint64_t canary_check_s;        /* the monotonic second of the last canary verdict */
	uint64_t canary_since_s;        /* the first monotonic second a canary's verdict counts: the one after its command */
	/* The canary failed its verdict (routestats_canary_verdict): CANARY_SCHEMA
	 * (a copy: the hook may change the routes) and WHY, both rates. The
	 * default, proxy_canary_rollback, ends the canary and flips every route
	 * of its schema to the default's. */
	void (*on_canary_failed)(const char *canary_schema, const char *why);
	struct Migrator *migrator;      /* the migration worker (migrator.c), NULL before it starts */
	RouteStore *store;              /* the routes in route_db's database (routestore.c), NULL: memory only */
	/* log.c's settings (log_configure): log_format = json, and syslog =
	 * 1 with openlog's own copy of syslog_ident and the facility */
	bool log_json;
	bool log_syslog;
	char *log_ident;
	int log_facility;
	bool started;                   /* proxy_serve set everything up: the loop runs next */
	bool ready_notified;            /* READY=1 went to systemd (sd_notify) */
	struct evhttp *metrics_http;    /* the metrics_listen endpoint (metrics.c), NULL when off */
} Proxy;

extern Proxy proxy;

uint64_t proxy_now_ms(void);
/* proxy_loop_lag_recent_ms: the event loop's worst lag (ms) over the last
 * PROXY_LAG_SLOTS seconds, as the janitor measured it. */
uint64_t proxy_loop_lag_recent_ms(void);
/* proxy_now_us: the monotonic clock in microseconds (clock_gettime, a vDSO
 * call on Linux: no system call). */
uint64_t proxy_now_us(void);
/* proxy_canary_rollback: the default on_canary_failed: router_flip of the
 * canary schema to the default's (the canary ends), logged with WHY. */
void proxy_canary_rollback(const char *canary_schema, const char *why);
/* proxy_reap_soon: schedule the reaper (frees the graveyards). */
void proxy_reap_soon(void);
bool proxy_reload(char *err, size_t errlen) PROXY_MUSTCHECK;
void proxy_begin_shutdown(void);
/* proxy_accept_update: the listeners accept exactly when nothing holds
 * them: not shutting down, not paused after EMFILE, not waiting for the
 * stored routes (routestore_holding). */
void proxy_accept_update(void);
/* proxy_pause / proxy_resume: no transaction starts (clients are not read
 * at a transaction boundary) until resumed, for DATABASE only or, when
 * NULL, for all; a database's own pause outlasts a RESUME of all, as in
 * PgBouncer. */
void proxy_pause(const char *database);
void proxy_resume(const char *database);
/* proxy_paused: whether a client of pool P (NULL: the console) is held by a pause. */
static inline bool proxy_paused(const Pool *p) { return proxy.paused || (p && (p->paused || p->draining)); }
/* proxy_update_clients: every client's reading follows the pause flags
 * again; PUMP: a client that may go on also steps its buffered input. */
void proxy_update_clients(bool pump);
int proxy_serve(const char *conf_path);

#endif
