/*
 * proxy/server.h: the server connection state machine (server.c): ServerState and Server
 * are in proxy.h.
 */
#ifndef PGFLIP_SERVER_H
#define PGFLIP_SERVER_H

#include "proxy/proxy.h"

/* What server_connect did: STARTED (a login is under way), FAILED (refused
 * at once: counted as a failed login, server_login_retry applies), CANNOT
 * (no config entry or no memory: nothing was tried). */
typedef enum { SERVER_CONNECT_STARTED = 0, SERVER_CONNECT_FAILED, SERVER_CONNECT_CANNOT } ServerConnectResult;
/* server_connect: starts one login for POOL, on one of two paths: login.c
 * (SCRAM passthrough) when the pool holds a client's SCRAM keys and the
 * login has no password of its own (server_login_has_password), libpq's
 * non-blocking connect otherwise. Either way the outcome is the same:
 * SV_IDLE when logged in; a failure closes the server and counts as a
 * failed login of the pool (pool_login_failed); server_connect_timeout
 * (or the entry's connect_timeout, for own logins) ends it in the janitor. */
ServerConnectResult server_connect(Pool *pool) PROXY_MUSTCHECK;
/* server_login_has_password: POOL's upstream login has a password of its
 * own: the [databases] entry's password=, or a plain auth_file password
 * of the pool's user. Then SCRAM keys are neither kept nor used. */
bool server_login_has_password(const Pool *pool);
/* Keywords of one login: an entry's (libpq 15 knows about 45), plus the
 * few that server_login_keywords adds. */
#define SERVER_MAX_KEYWORDS 96
/* Who a login is for: a pool's (server.c), auth_query's (authq.c), the
 * route store's (routestore.c). */
typedef struct ServerLoginAs {
	const char *user;      /* the user to log in as when the entry has no user=; NULL: libpq's default */
	bool replace_user;     /* USER replaces the entry's user= too, and its password= unless it is the same user */
	const char *dbname;    /* when the entry has no dbname= (the [databases] key, or a client's database) */
	const char *app_name;  /* fallback_application_name, as pg_stat_activity shows it */
	const char *addr;      /* the host's address evdns found (hostaddr), or NULL */
} ServerLoginAs;
/*
 * server_login_keywords: the libpq keywords and values of a login to DB's
 * upstream for AS, NULL-terminated into KW and VAL (SERVER_MAX_KEYWORDS + 1
 * each), pointing into DB, AS and the running config: the entry's own
 * options, then what the entry leaves open: user and dbname from AS,
 * server_tls_* as sslmode/sslrootcert/sslcert/sslkey, the plain auth_file
 * password of the user when the entry gives none, hostaddr. False when the
 * entry has too many keywords. Both login paths of a pool, auth_query's
 * connections and the route store's read them.
 */
bool server_login_keywords(const ConfDatabase *db, const ServerLoginAs *as, const char **kw,
			   const char **val) PROXY_MUSTCHECK;
/* server_cancel: sends a CancelRequest for S's backend (PostgreSQL docs,
 * "Canceling Requests in Progress") without blocking the loop: libpq's
 * PQcancel on a short thread for libpq logins, login_cancel for own ones.
 * False when it could not be started. */
bool server_cancel(Server *s);
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


#endif
