/*
 * proxy/server.h: the server connection state machine (server.c): ServerState and Server
 * are in proxy.h.
 */
#ifndef PGFLIP_SERVER_H
#define PGFLIP_SERVER_H

#include "proxy/proxy.h"

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

#endif
