/*
 * proxy/authq.h: auth_query lookups (authq.c). When a user is not in
 * auth_file and auth_user is set, its secret comes from the database, as
 * in PgBouncer: auth_query (default SELECT usename, passwd FROM pg_shadow
 * WHERE usename=$1, or a SECURITY DEFINER function) runs as auth_user on
 * one dedicated libpq connection per [databases] entry, driven by the event
 * loop, one lookup at a time, and its answers are kept for
 * AUTHQ_CACHE_MS.
 */
#ifndef PGFLIP_AUTHQ_H
#define PGFLIP_AUTHQ_H

#include "proxy/proxy.h"

/* How long an answer (a secret, or "no such user") is reused: a password
 * change or a new role shows within this time (ms). */
#define AUTHQ_CACHE_MS 5000
/* A lookup that has no answer after this long fails its clients and the
 * connection is closed (ms). */
#define AUTHQ_QUERY_TIMEOUT_MS 10000

typedef enum {
	AUTHQ_HIT = 0, /* answered from the cache: *SECRET is the secret, or NULL (no such user, no password) */
	AUTHQ_WAIT,    /* C was queued; auth_lookup_done or auth_lookup_failed will follow */
	AUTHQ_FAIL,    /* cannot look up (no memory, no entry): *SECRET is NULL */
} AuthqStatus;

/* authq_lookup: the secret of C's user for C's database. SECRET points
 * into the cache and stays valid until the next event-loop callback: copy
 * it at once. */
AuthqStatus authq_lookup(Client *c, const char **secret);
/* authq_forget: C goes away while queued (client_close calls it). */
void authq_forget(Client *c);
/* authq_janitor: connect and query timeouts at NOW_MS. */
void authq_janitor(uint64_t now_ms);
/* authq_reset: closes every lookup connection and empties the caches
 * (their clients fail); at a reload and at exit. */
void authq_reset(void);

#endif
