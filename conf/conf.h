/*
 * conf: pgflip's INI configuration file (parsed with inih) turned into one
 * immutable snapshot.
 *
 * A Conf is built whole by conf_load() and never changed afterwards; a reload
 * builds a new snapshot and the proxy swaps it in, so code holding the old one
 * keeps a consistent view until it lets go. Key names follow pgbouncer.ini
 * wherever the meaning is the same. Every error names FILE:LINE.
 *
 * Sections:
 *   [pgflip]     settings (see conf/pgflip.ini for each key and its default)
 *   [databases]  NAME = libpq conninfo of the upstream, plus the PgBouncer-style
 *                per-database keys pool_mode= and pool_size=
 *   [routes]     default = SCHEMA; app.GLOB = SCHEMA; user.NAME = SCHEMA;
 *                addr.CIDR = SCHEMA; canary = SCHEMA PERCENT
 */
#ifndef PGFLIP_CONF_H
#define PGFLIP_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_MUSTCHECK __attribute__((warn_unused_result))

/* NAMEDATALEN - 1: the longest identifier PostgreSQL keeps. */
#define CONF_MAX_IDENT 63

typedef enum { CONF_POOL_SESSION = 0, CONF_POOL_TRANSACTION = 1 } ConfPoolMode;

typedef enum { CONF_LOG_ERROR = 0, CONF_LOG_WARNING, CONF_LOG_INFO, CONF_LOG_DEBUG } ConfLogLevel;

typedef enum { CONF_AUTH_TRUST = 0 } ConfAuthType;

/* server_check_search_path: how pgflip knows a server's search_path (see
 * the README, "Route integrity"). */
typedef enum { CONF_CHECK_AUTO = 0, CONF_CHECK_ALWAYS = 1 } ConfCheckSearchPath;

/* An IPv4 or IPv6 network, e.g. 10.0.0.0/8 or ::1/128. */
typedef struct ConfCidr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network byte order; 4 bytes used for AF_INET */
	int prefix_len;    /* 0..32 or 0..128 */
} ConfCidr;

typedef struct ConfDatabase {
	char *name;          /* the key: what clients give as `database` */
	char *conninfo;      /* the value as written (password included: never log it) */
	char *user;          /* user= of the conninfo, or NULL: log in as the client's user */
	char *dbname;        /* dbname= of the conninfo, or NULL: same as name */
	int pool_mode;       /* ConfPoolMode, or -1: the global pool_mode */
	int pool_size;       /* > 0, or 0: the global default_pool_size */
	/* libpq keyword/value arrays for PQconnectStartParams: every non-empty
	 * option of the conninfo (pool_mode/pool_size removed), NULL-terminated. */
	char **keywords;
	char **values;
	int line;            /* line of the entry in the file */
} ConfDatabase;

typedef enum { CONF_PIN_APP = 0, CONF_PIN_USER = 1, CONF_PIN_ADDR = 2 } ConfPinKind;

typedef struct ConfPin {
	ConfPinKind kind;
	char *key;           /* the glob (app), the user name (user), the CIDR text (addr) */
	char *schema;        /* the version schema this pin routes to */
	ConfCidr cidr;       /* parsed key when kind == CONF_PIN_ADDR */
	int line;
} ConfPin;

typedef struct ConfRoutes {
	char *default_schema;   /* required */
	ConfPin *pins;          /* in file order; first match wins within a kind */
	size_t n_pins;
	char *canary_schema;    /* NULL when there is no canary */
	int canary_percent;     /* 0..100: share of unpinned clients sent to canary_schema */
} ConfRoutes;

typedef struct Conf {
	char *path;                   /* the file it was loaded from */

	/* [pgflip] */
	char *listen_addr;            /* default "127.0.0.1"; "" = no TCP listener; "*" = all */
	int listen_port;              /* default 6432 */
	char *unix_socket_dir;        /* default "/tmp"; "" = no Unix listener */
	char *admin_socket;           /* default "<unix_socket_dir>/pgflip-<port>.admin"; "" = none */
	ConfPoolMode pool_mode;       /* default session */
	int default_pool_size;        /* default 20 */
	int min_pool_size;            /* default 0 */
	int reserve_pool_size;        /* default 0 */
	int max_client_conn;          /* default 100 */
	int max_db_connections;       /* default 0 = unlimited */
	int max_prepared_statements;  /* default 200; 0 disables protocol-level prepared statement support */
	char *logfile;                /* default NULL = stderr */
	char *pidfile;                /* default NULL = none */
	char **admin_users;           /* comma-separated list, NULL-terminated array (maybe empty) */
	ConfLogLevel log_level;       /* default info */
	ConfAuthType auth_type;       /* default trust */
	/* times in milliseconds; the file gives seconds (decimals allowed), as pgbouncer.ini */
	int server_connect_timeout_ms;   /* default 15 s */
	int server_login_retry_ms;       /* default 15 s */
	int server_idle_timeout_ms;      /* default 600 s; 0 = never */
	int server_lifetime_ms;          /* default 3600 s; 0 = never */
	int query_wait_timeout_ms;       /* default 120 s; 0 = forever */
	int reserve_pool_timeout_ms;     /* default 5 s: a client waiting this long may use the reserve */
	int shutdown_timeout_ms;         /* default 30 s: how long SIGTERM waits for clients */
	uint32_t max_packet_size;        /* bytes, default 64 MiB; 1 KiB .. 1 GiB */
	char *server_reset_query;        /* default "DISCARD ALL" (session mode) */
	int client_login_timeout_ms;     /* default 60 s: StartupMessage to login; 0 = never */
	int client_idle_timeout_ms;      /* default 0 = off: a logged-in client idle this long is closed */
	/* startup parameters: names a client may send beyond the tracked ones
	 * (applied on its servers), and names accepted but dropped;
	 * NULL-terminated arrays, maybe empty */
	char **track_extra_parameters;
	char **ignore_startup_parameters;
	ConfCheckSearchPath server_check_search_path; /* default auto */

	ConfDatabase *databases;
	size_t n_databases;

	ConfRoutes routes;
} Conf;

/*
 * conf_load: reads and validates the INI file at PATH.
 * Returns a new snapshot (caller frees with conf_free), or NULL when the file
 * cannot be read or has an error; then ERR (ERRLEN bytes, always
 * NUL-terminated) holds "FILE:LINE: what is wrong" (LINE 0 when the problem is
 * the file as a whole, e.g. a missing required key or an unreadable file).
 * Errors: unknown section or key, bad value (number out of range, bad enum,
 * bad CIDR, bad conninfo), missing [routes] default, no [databases] entry,
 * line longer than inih's buffer, a control character outside a comment, a
 * NUL byte anywhere.
 */
Conf *conf_load(const char *path, char *err, size_t errlen) CONF_MUSTCHECK;

/* conf_free: frees a snapshot and everything it owns; NULL is fine. */
void conf_free(Conf *conf);

/* conf_find_database: the [databases] entry named NAME, or NULL. */
const ConfDatabase *conf_find_database(const Conf *conf, const char *name);

/*
 * conf_cidr_parse: parses "ADDR/LEN" or a bare "ADDR" (a host: /32 or /128)
 * into OUT (host bits beyond the prefix are masked off). Returns false on
 * anything else: a bad address, a length out of range, trailing text.
 */
bool conf_cidr_parse(const char *text, ConfCidr *out) CONF_MUSTCHECK;

/*
 * conf_cidr_match: true when the address ADDR (FAMILY AF_INET: 4 bytes,
 * AF_INET6: 16 bytes, network order) lies in CIDR. An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) matches IPv4 networks.
 */
bool conf_cidr_match(const ConfCidr *cidr, int family, const uint8_t *addr);

/*
 * conf_name_ok: true when NAME can be a [databases] key: 1 to
 * CONF_MAX_IDENT bytes, no control characters.
 */
bool conf_name_ok(const char *name);

/*
 * conf_route_schema_check: THE rule for a schema a client can be routed to,
 * used by the config file, the admin commands and the migrations' version
 * schemas alike. The name is sent verbatim as the value of search_path and
 * compared verbatim by the sync triggers, so it must read back as exactly
 * itself: a lower-case identifier [a-z_][a-z0-9_$]*, 1 to CONF_MAX_IDENT
 * bytes, that is not a system schema (pg_catalog, pg_toast, pg_temp...: any
 * name starting with "pg_", and information_schema). Returns true, or false
 * with ERR (ERRLEN bytes, NUL-terminated) saying why.
 */
bool conf_route_schema_check(const char *name, char *err, size_t errlen);

#endif
