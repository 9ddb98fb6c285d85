/*
 * proxy/client.h: the client connection state machine (client.c): ClientState and Client
 * are in proxy.h, with the other objects they point to.
 */
#ifndef PGFLIP_CLIENT_H
#define PGFLIP_CLIENT_H

#include "proxy/proxy.h"
#include "proxy/auth.h"

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
/* client_next_route: the route C's next statement runs with, changing
 * nothing: its route while it is inside a transaction or a request on its
 * server, else what the router gives it now (what client_route will give
 * at its next boundary). The string is C's or the router's: copy it. */
const char *client_next_route(const Client *c);
/* client_prepared: the query that set C's route and settings on S (now
 * SV_ACTIVE again) has its answer in S's prep_* fields. */
void client_prepared(Client *c, Server *s);
void client_cancel_request(uint32_t pid, uint32_t key);
/* client_auth_continue: C's auth_query lookup was answered and auth.c went
 * on with status ST (AUTH_WAIT: a request went out; AUTH_DONE: trusted;
 * AUTH_FAILED: C is closed already). */
void client_auth_continue(Client *c, AuthStatus st);
/* client_tx_error: C received an ErrorResponse with SQLSTATE (5
 * characters; NULL when it had none) inside its open transaction: counted
 * by class for its route, and the transaction fails. */
void client_tx_error(Client *c, const char *sqlstate);
/* client_tx_end: C's open transaction ended, READY when with a
 * ReadyForQuery 'I' (then its latency counts): counted for its route
 * (proxy.rstats), its pool, C and the proxy. No allocation, no system
 * call. */
void client_tx_end(Client *c, bool ready);
/* client_janitor: login, idle and partial-message timeouts of C at NOW_MS. */
void client_janitor(Client *c, uint64_t now_ms);

#endif
