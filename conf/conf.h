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
 *                addr.CIDR = SCHEMA; canary = SCHEMA PERCENT;
 *                canary_key = connection | application_name | addr
 *
 * The files that [pgflip] auth_file and auth_hba_file name are read by
 * conf_load into the same snapshot (conf/auth.c), so a reload re-reads them
 * too and a snapshot never mixes an old user list with new settings.
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

/* log_format: one line of text per event, or one JSON object per line. */
typedef enum { CONF_LOG_TEXT = 0, CONF_LOG_JSON = 1 } ConfLogFormat;

/* Longest host part of metrics_listen (an IPv6 address or a host name). */
#define CONF_MAX_HOST 255

/*
 * How a client logs in to pgflip. auth_type takes TRUST .. HBA; REJECT,
 * PASSWORD and PEER are methods that only appear on auth_hba_file lines
 * (PostgreSQL's "reject", "password" and "peer"), and conf_hba_match never
 * returns HBA. The text of each is conf_auth_type_to_str().
 */
typedef enum {
	CONF_AUTH_TRUST = 0,   /* trust: no password asked */
	CONF_AUTH_MD5,         /* md5 (SCRAM is used for a user whose secret is SCRAM, as PgBouncer) */
	CONF_AUTH_SCRAM,       /* scram-sha-256 */
	CONF_AUTH_CERT,        /* cert: a verified TLS client certificate, CN = user name */
	CONF_AUTH_HBA,         /* hba: the method of the matching auth_hba_file line */
	CONF_AUTH_REJECT,      /* hba lines only: refused */
	CONF_AUTH_PASSWORD,    /* hba lines only: clear-text password */
	CONF_AUTH_PEER,        /* hba lines only, local lines only: the peer's Unix user */
} ConfAuthType;

/* client_tls_sslmode and server_tls_sslmode, in libpq's order and spelling
 * (conf_tls_mode_to_str). For clients, as in PgBouncer: allow and prefer
 * take TLS when the client asks for it, require refuses plain connections,
 * verify-ca and verify-full also ask for a client certificate and verify it
 * against client_tls_ca_file (the two are the same on the client side). */
typedef enum {
	CONF_TLS_DISABLE = 0,
	CONF_TLS_ALLOW,
	CONF_TLS_PREFER,
	CONF_TLS_REQUIRE,
	CONF_TLS_VERIFY_CA,
	CONF_TLS_VERIFY_FULL,
} ConfTlsMode;

/* client_tls_protocols: a set of these bits. */
#define CONF_TLS_V1_0 0x1u
#define CONF_TLS_V1_1 0x2u
#define CONF_TLS_V1_2 0x4u
#define CONF_TLS_V1_3 0x8u
#define CONF_TLS_SECURE (CONF_TLS_V1_2 | CONF_TLS_V1_3) /* "secure", the default */
#define CONF_TLS_ALL (CONF_TLS_V1_0 | CONF_TLS_V1_1 | CONF_TLS_V1_2 | CONF_TLS_V1_3) /* "all", "legacy" */

/* The shape of a secret in auth_file (PostgreSQL's pg_authid.rolpassword). */
typedef enum {
	CONF_SECRET_PLAIN = 0,  /* the password itself */
	CONF_SECRET_MD5,        /* "md5" + 32 lower-case hex digits: md5(password || user) */
	CONF_SECRET_SCRAM,      /* SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey> (RFC 5803) */
} ConfSecretKind;

/* One user of auth_file. */
typedef struct ConfUser {
	char *name;             /* 1 to CONF_MAX_IDENT bytes */
	char *secret;           /* never empty; never log it */
	ConfSecretKind kind;    /* its shape: only the shape is checked, not the base64 or the hex */
	int line;               /* its line in auth_file */
} ConfUser;

/* The connection type of an auth_hba_file line. */
typedef enum { CONF_HBA_LOCAL = 0, CONF_HBA_HOST, CONF_HBA_HOSTSSL, CONF_HBA_HOSTNOSSL } ConfHbaType;

/* server_check_search_path: how pgflip knows a server's search_path (see
 * the README, "Route integrity"). */
typedef enum { CONF_CHECK_AUTO = 0, CONF_CHECK_ALWAYS = 1 } ConfCheckSearchPath;

/* An IPv4 or IPv6 network, e.g. 10.0.0.0/8 or ::1/128. */
typedef struct ConfCidr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network byte order; 4 bytes used for AF_INET */
	int prefix_len;    /* 0..32 or 0..128 */
} ConfCidr;

/*
 * One line of auth_hba_file. A client matches it when the connection type,
 * the database, the user and (for host lines) the address all match; the
 * first line that matches decides (conf_hba_match).
 */
typedef struct ConfHbaRule {
	ConfHbaType type;
	bool all_databases;     /* "all" */
	bool sameuser;          /* "sameuser": the database named as the user */
	char **databases;       /* the other names, NULL-terminated, never NULL (maybe empty) */
	bool all_users;         /* "all" */
	char **users;           /* the names, NULL-terminated, never NULL (maybe empty) */
	bool all_addresses;     /* "all", and every local line */
	ConfCidr address;       /* host lines: ADDR/LEN, or ADDR with its NETMASK */
	ConfAuthType method;    /* TRUST, REJECT, MD5, PASSWORD, SCRAM, CERT or PEER */
	int line;               /* its line in auth_hba_file */
} ConfHbaRule;

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

/*
 * canary_key: what a client's canary share is drawn from (proxy/router.c
 * hashes it): its address without the port (Unix socket clients: their peer
 * uid), its startup application_name, or a random value per connection.
 * The default, addr, puts every connection of one application host on the
 * same side. The text of each is conf_canary_key_to_str().
 */
typedef enum {
	CONF_CANARY_KEY_ADDR = 0,
	CONF_CANARY_KEY_APPLICATION_NAME,
	CONF_CANARY_KEY_CONNECTION,
} ConfCanaryKey;
#define CONF_CANARY_KEYS 3

typedef struct ConfRoutes {
	char *default_schema;   /* required */
	ConfPin *pins;          /* in file order; first match wins within a kind */
	size_t n_pins;
	char *canary_schema;    /* NULL when there is no canary */
	int canary_percent;     /* 0..100: share of unpinned clients sent to canary_schema */
	ConfCanaryKey canary_key; /* default CONF_CANARY_KEY_ADDR */
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
	ConfLogFormat log_format;     /* default text */
	/* syslog as in pgbouncer.ini: syslog = 1 sends every log line to
	 * syslog(3) too, as syslog_ident (default "pgflip"), with
	 * syslog_facility (default daemon; one of auth, authpriv, daemon, user,
	 * local0 .. local7: the value is the LOG_* facility of <syslog.h>) */
	int syslog;
	char *syslog_ident;
	int syslog_facility;
	/* metrics_listen: HOST:PORT (or [IPv6]:PORT) of the Prometheus
	 * endpoint, GET /metrics (proxy/metrics.c); NULL = off, the default.
	 * conf_hostport_parse checked it. */
	char *metrics_listen;
	ConfAuthType auth_type;       /* default trust; TRUST, MD5, SCRAM, CERT or HBA */
	/* client authentication, keys of pgbouncer.ini. Paths are as written: a
	 * relative one is taken from pgflip's working directory, as PgBouncer
	 * does. NULL = not set. */
	char *auth_file;              /* userlist.txt, read into users */
	char *auth_hba_file;          /* a pg_hba.conf subset, read into hba */
	char *auth_query;             /* default "SELECT usename, passwd FROM pg_shadow WHERE usename=$1" */
	char *auth_user;              /* default NULL: user that runs auth_query */
	char **stats_users;           /* like admin_users: read-only admin console users */
	int unix_socket_mode;         /* default 0777: mode of the Unix socket, 0..0777 */
	char *unix_socket_group;      /* default NULL: group of the Unix socket (a name, not resolved here) */
	/* TLS between clients and pgflip. The files are not read here (the
	 * proxy loads them with OpenSSL); conf only checks that the keys a mode
	 * needs are given. */
	ConfTlsMode client_tls_sslmode;  /* default disable */
	char *client_tls_cert_file;      /* needed unless client_tls_sslmode is disable */
	char *client_tls_key_file;       /* needed unless client_tls_sslmode is disable */
	char *client_tls_ca_file;        /* needed by verify-ca and verify-full */
	unsigned client_tls_protocols;   /* CONF_TLS_V1_* bits, never 0; default CONF_TLS_SECURE */
	/* OpenSSL cipher list (TLS 1.2 and older) as written; PgBouncer's
	 * shortcuts are kept as words for the proxy to map: default, secure,
	 * fast, normal (OpenSSL's defaults), all. Default "default". */
	char *client_tls_ciphers;
	/* TLS between pgflip and its servers (libpq's sslmode, sslrootcert,
	 * sslcert, sslkey for a database whose conninfo does not set them). */
	ConfTlsMode server_tls_sslmode;  /* default prefer, as PgBouncer and libpq */
	char *server_tls_ca_file;
	char *server_tls_cert_file;      /* given together with server_tls_key_file */
	char *server_tls_key_file;
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
	/* The [databases] entry whose database stores the routes (pgflip's
	 * schema there, proxy/routestore.c). Unset: the first entry other than
	 * the fallback "*"; empty: NULL, routes live in memory only. Always the
	 * name of an entry of its own when not NULL. */
	char *route_db;
	/* A backfill run by the daemon slows down (smaller batches, pauses)
	 * while the p99 latency of the transactions pgflip carries is above
	 * this many times its p99 before the migration began, and speeds up
	 * again below it (migrate/backfill.c). 0: never slows down. Default 1.2. */
	double backfill_max_latency_ratio;
	/* The longest a drain window holds a database's new transactions (ms):
	 * when a migration step's lock attempts keep failing, the migrator asks
	 * pgflip to hold them at their boundary until the transactions in
	 * flight end, runs the step, and lets them go (proxy/drain.c). 0: no
	 * drain windows. Default 100. */
	int ddl_drain_timeout_ms;
	/* The admin console's virtual database (proxy/console.c): a client that
	 * logs in to it gets the console, not a pool. Default "pgflip"; "" =
	 * no console. Never the name of a [databases] entry. */
	char *admin_db;
	/* Seconds between the snapshots that SHOW STATS' averages are taken
	 * over (PgBouncer's stats_period). Default 60, 1 .. 86400. */
	int stats_period;

	ConfDatabase *databases;
	size_t n_databases;

	ConfRoutes routes;

	/* auth_file, read by conf_load: sorted by name (bytewise), no name twice */
	ConfUser *users;
	size_t n_users;
	bool have_auth_file;          /* auth_file is set (and was read) */
	/* auth_hba_file, read by conf_load when set: in file order */
	ConfHbaRule *hba;
	size_t n_hba;
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
 * NUL byte anywhere, a route_db that names no entry of its own (at its
 * line); keys that do not go together (LINE 0): a
 * client_tls_sslmode other than disable without client_tls_cert_file and
 * client_tls_key_file, verify-ca/verify-full without client_tls_ca_file,
 * auth_type = cert without client_tls_sslmode verify-ca or verify-full,
 * md5/scram-sha-256/hba without auth_file or auth_user, hba without
 * auth_hba_file, server_tls_cert_file without server_tls_key_file or the
 * reverse. Then auth_file and auth_hba_file are read (see conf/auth.c); their
 * errors name that file instead: "AUTHFILE:LINE: what" (LINE 0: cannot open
 * or read it, not a regular file, no rules in auth_hba_file). Secrets never
 * appear in a message.
 */
Conf *conf_load(const char *path, char *err, size_t errlen) CONF_MUSTCHECK;

/* conf_free: frees a snapshot and everything it owns; NULL is fine. */
void conf_free(Conf *conf);

/*
 * conf_hostport_parse: TEXT as "HOST:PORT" or "[IPV6]:PORT" (metrics_listen)
 * into HOST (HOSTLEN bytes, NUL-terminated, brackets removed) and *PORT
 * (1..65535). False when TEXT has no port, an empty host, a port out of
 * range or trailing text, or a host longer than HOSTLEN - 1; HOST and
 * *PORT are then unspecified.
 */
bool conf_hostport_parse(const char *text, char *host, size_t hostlen, int *port) CONF_MUSTCHECK;

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

/* conf_auth_type_to_str: "trust", "md5", "scram-sha-256", "cert", "hba",
 * "reject", "password", "peer" (the words of pgbouncer.ini and
 * pg_hba.conf); "unknown" for any other value. */
const char *conf_auth_type_to_str(ConfAuthType type);

/* conf_tls_mode_to_str: libpq's sslmode keyword for MODE ("disable",
 * "allow", "prefer", "require", "verify-ca", "verify-full"); "unknown" for
 * any other value. */
const char *conf_tls_mode_to_str(ConfTlsMode mode);

/* conf_canary_key_to_str: "addr", "application_name", "connection" (the
 * words of canary_key); "unknown" for any other value. */
const char *conf_canary_key_to_str(ConfCanaryKey key);

/* conf_canary_key_parse: the ConfCanaryKey named WORD (a word of canary_key)
 * into *KEY; false when WORD is none of them (*KEY untouched). For the admin
 * command's --key, so that file and command take the same words. */
bool conf_canary_key_parse(const char *word, ConfCanaryKey *key) CONF_MUSTCHECK;

/*
 * conf_secret_classify: the kind of SECRET (PostgreSQL's rolpassword shapes:
 * "md5" + 32 lower-case hex, "SCRAM-SHA-256$<iter>:<salt>$<stored>:<server>",
 * anything else plain) into *KIND; false when it starts as a SCRAM secret
 * but is malformed (*KIND is then CONF_SECRET_SCRAM). For auth_file lines and
 * for what auth_query returns.
 */
bool conf_secret_classify(const char *secret, ConfSecretKind *kind) CONF_MUSTCHECK;

/*
 * conf_find_user: the auth_file entry of the user NAME (exact, bytewise, as
 * PostgreSQL compares role names), or NULL when there is none, when no
 * auth_file is set, or when CONF or NAME is NULL. Binary search: O(log n).
 */
const ConfUser *conf_find_user(const Conf *conf, const char *name);

/*
 * conf_hba_match: the method of the first auth_hba_file line that matches a
 * client, as PostgreSQL picks a pg_hba.conf record (Client Authentication,
 * "The pg_hba.conf File": first match wins, no fall-through).
 *   IS_UNIX   the client came in on the Unix socket: only local lines match;
 *             otherwise only host, hostssl (when TLS) and hostnossl (when not);
 *   TLS       the client's link is TLS;
 *   DATABASE, USER  the names of its StartupMessage (exact, bytewise);
 *   FAMILY, ADDR    its address as conf_cidr_match takes it (ignored when
 *             IS_UNIX; an ADDR of NULL matches only lines with address all).
 * Returns that line's method (never CONF_AUTH_HBA) and puts its line number
 * in *LINE; when no line matches, or CONF, DATABASE or USER is NULL, returns
 * CONF_AUTH_REJECT with *LINE = 0 (PostgreSQL: "no pg_hba.conf entry for
 * host ..."). LINE may be NULL.
 */
ConfAuthType conf_hba_match(const Conf *conf, bool is_unix, bool tls, const char *database,
			    const char *user, int family, const uint8_t *addr, int *line);

/*
 * conf_setting_show: the [pgflip] key number I (0, 1, ... in the order of
 * conf/pgflip.ini's table) as SHOW CONFIG prints it: its NAME, its VALUE
 * in CONF and its DEFAULT, each written as the file would take it (times in
 * seconds, lists comma-separated, words as words; "" for a key not set);
 * *CHANGEABLE is false for the keys a reload does not apply (listening
 * sockets, pidfile). VALUE and DEFAULT hold N bytes each (cut if longer).
 * Returns false past the last key (then nothing is written).
 */
bool conf_setting_show(const Conf *conf, size_t i, const char **name, char *value, char *deflt, size_t n,
		       bool *changeable);

#endif
