/*
 * proxy/admin.h: the admin command layer (admin.c, with the SHOW tables of
 * show.c) and its front ends: the JSON Unix socket (admin.c), the psql
 * console (console.c, console.h), pgflip ctl (ctl.c).
 *
 * Every command answers one JSON object with "ok". Failures: {"ok": false,
 * "error": TEXT, "sqlstate": CODE} (the console sends CODE in its
 * ErrorResponse). Tables (SHOW ...): {"ok": true, "columns": [{"name":
 * N, "type": "text" | "int4" | "int8" | "numeric" | "bool"}, ...], "rows":
 * [[V, ...], ...]}, each V a JSON string, number, boolean or null (NULL),
 * or an object (shown as its JSON text). Other successes: {"ok": true,
 * "message": TEXT, ...} plus what the command returns; "detail" is the
 * DETAIL of the console's NOTICE.
 */
#ifndef PGFLIP_ADMIN_H
#define PGFLIP_ADMIN_H


#include <jansson.h>
#include <sys/types.h>

/* What an admin peer may do. */
typedef enum {
	ADMIN_ACCESS_NONE = 0, /* nothing: every command answers "permission denied" */
	ADMIN_ACCESS_STATS,    /* read-only commands (stats_users) */
	ADMIN_ACCESS_ALL,      /* every command (root, pgflip's own uid, admin_users) */
} AdminAccess;

typedef struct AdminPeer {
	uid_t uid;             /* (uid_t)-1 when unknown (and on the console) */
	char name[64];         /* OS user name, "?" when unknown; on the console, the database user */
	AdminAccess access;
	char label[160];       /* who it is, for the log: "uid 1000 (alice)", "console user admin (127.0.0.1:5000)" */
} AdminPeer;

/* admin_listen: the admin socket at PATH, 0600 (0666 when admin_users or
 * stats_users name other OS users). False with ERR when it cannot listen. */
bool admin_listen(const char *path, char *err, size_t errlen) PROXY_MUSTCHECK;
void admin_close(void);
/* admin_access: what the OS user UID (NAME, or NULL when it has none) may
 * do, by the running config's admin_users and stats_users. */
AdminAccess admin_access(uid_t uid, const char *name);
/* admin_access_user: what the database user USER of the console may do:
 * by name in admin_users, then stats_users (as PgBouncer's console matches
 * them); no uid rule applies there. */
AdminAccess admin_access_user(const char *user);
/* admin_execute: THE command layer, for every front end: runs the command
 * of ARGC words ARGV (the first ones lower-case: "show", "pools") from
 * PEER. REQ is the JSON request that carried them, or NULL; LINE is the
 * command as written, for the log. Returns the reply (caller owns it; NULL
 * only when out of memory). A command PEER may not send answers "permission
 * denied: CMD" (42501), and is logged; commands that change something are
 * logged with PEER's label. */
json_t *admin_execute(const AdminPeer *peer, int argc, char **argv, const json_t *req, const char *line);
/* admin_command: runs one command line sent by PEER; returns the JSON reply
 * (caller frees with free()), always an object with "ok"; a command PEER
 * may not send answers ok: false, "permission denied: CMD". Commands that
 * change something are logged with PEER's uid and name. */
char *admin_command(const AdminPeer *peer, const char *line);
/* admin_route_stats: the stats object of ROUTE as `routes` shows it
 * (transactions, failed_transactions, errors, p50_us, p99_us, tps), or JSON
 * null when it served nothing yet. Caller owns the reference. */
json_t *admin_route_stats(const char *route);
/* admin_text: a JSON string for text from a client or a server, which
 * may not be UTF-8 (an application_name of "\xff"): valid UTF-8 as is,
 * else every byte of an invalid sequence written as the four characters
 * \xNN, so that the text is shown rather than dropped ("?" when memory
 * runs out). NULL stays NULL (for "s:o?"). Caller owns the reference. Also
 * what the JSON log and the metrics' label values are made of. */
json_t *admin_text(const char *s);
/* reply_ok / reply_error: the two shapes of every reply of the command
 * layer: {"ok": true[, "message": MESSAGE]} (MESSAGE may be NULL) and
 * {"ok": false, "error": TEXT, "sqlstate": "22023"} (printf, cut at 1
 * KiB; 22023 invalid_parameter_value, what most refusals are: a bad
 * argument). reply_error_state gives the SQLSTATE (5 characters): 42601
 * for a command that does not parse, 42501 for permission, 3D000 for an
 * unknown database, 55000 for a state that refuses it, 53200 out of
 * memory, F0000 for a config that does not load. Caller owns them. */
json_t *reply_ok(const char *message);
json_t *reply_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
json_t *reply_error_state(const char *sqlstate, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- show.c: the SHOW tables ------------------------------------------- */

/* show_command: `show WHAT` (ARGV[1], lower-case), a table as above:
 * help, pools, clients, servers, databases, stats, stats_totals,
 * stats_averages, lists, config, version, routes, versions, migration.
 * Columns of the ones PgBouncer has are PgBouncer 1.18's, in its order
 * (pgflip's own columns after them). Errors: 42601 for an unknown WHAT. */
json_t *show_command(int argc, char **argv);

/* ---- ctl.c ------------------------------------------------------------- */

int ctl_main(int argc, char **argv);

#endif
