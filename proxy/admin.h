/*
 * proxy/admin.h: the admin command layer and its Unix-socket front end (admin.c), and
 * pgflip ctl (ctl.c).
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
	uid_t uid;             /* (uid_t)-1 when unknown */
	char name[64];         /* OS user name, "?" when unknown */
	AdminAccess access;
} AdminPeer;

/* admin_listen: the admin socket at PATH, 0600 (0666 when admin_users or
 * stats_users name other OS users). False with ERR when it cannot listen. */
bool admin_listen(const char *path, char *err, size_t errlen) PROXY_MUSTCHECK;
void admin_close(void);
/* admin_access: what the OS user UID (NAME, or NULL when it has none) may
 * do, by the running config's admin_users and stats_users. */
AdminAccess admin_access(uid_t uid, const char *name);
/* admin_command: runs one command line sent by PEER; returns the JSON reply
 * (caller frees with free()), always an object with "ok"; a command PEER
 * may not send answers ok: false, "permission denied: CMD". Commands that
 * change something are logged with PEER's uid and name. */
char *admin_command(const AdminPeer *peer, const char *line);
/* admin_route_stats: the stats object of ROUTE as `routes` shows it
 * (transactions, failed_transactions, errors, p50_us, p99_us, tps), or JSON
 * null when it served nothing yet. Caller owns the reference. */
json_t *admin_route_stats(const char *route);
/* admin_json_text: a JSON string for text from a client or a server, which
 * may not be UTF-8 (an application_name of "\xff"): valid UTF-8 as is,
 * else every byte of an invalid sequence written as the four characters
 * \xNN, so that the text is shown rather than dropped ("?" when memory
 * runs out). NULL stays NULL (for "s:o?"). Caller owns the reference. Also
 * what the JSON log and the metrics' label values are made of. */
json_t *admin_json_text(const char *s);
/* reply_ok / reply_error: the two shapes of every reply of the command
 * layer: {"ok": true[, "message": MESSAGE]} (MESSAGE may be NULL) and
 * {"ok": false, "error": TEXT} (printf, cut at 1 KiB). Caller owns them. */
json_t *reply_ok(const char *message);
json_t *reply_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- ctl.c ------------------------------------------------------------- */

int ctl_main(int argc, char **argv);

#endif
