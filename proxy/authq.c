/*
 * proxy/authq.c: auth_query lookups on the event loop.
 *
 * One AuthLookup per [databases] entry that had a lookup: a libpq
 * connection as auth_user (its password from auth_file, or the entry's own
 * when the entry logs in as auth_user), a FIFO of clients waiting
 * (CL_AUTH_LOOKUP: nothing is read from them meanwhile), at most one query
 * in flight, and a small cache of answers. The connection is opened at the
 * first lookup and kept; it fails every waiting client when it breaks or
 * when a query has no answer after AUTHQ_QUERY_TIMEOUT_MS, and the next
 * lookup opens a new one. A host name of the entry is resolved with evdns
 * first, as server logins do.
 *
 * Results reach auth.c only from this file's own callbacks, never inside
 * the caller of authq_lookup, so a client is never re-entered.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "proxy/auth.h"
#include "proxy/authq.h"
#include "proxy/log.h"
#include "proxy/resolve.h"
#include "proxy/server.h"

/* Answers kept per entry: a burst of logins of many users. */
#define AUTHQ_CACHE_MAX 64

typedef enum { AQ_OFF = 0, AQ_RESOLVING, AQ_CONNECTING, AQ_READY, AQ_BUSY } AuthqState;

typedef struct AuthqCache {
	char *user;
	char *secret;           /* NULL: no such user, or no password */
	uint64_t expires_ms;
} AuthqCache;

struct AuthLookup {
	TAILQ_ENTRY(AuthLookup) link;
	char *database;
	AuthqState state;
	PGconn *pg;
	struct event *ev;
	struct event *kick;     /* deferred: connect or send the next query (authq_kick_cb) */
	struct evdns_getaddrinfo_request *dns_req;
	char addr[64];          /* the entry's host, resolved; "" = libpq's business */
	uint64_t since_ms;      /* when the current state began */
	TAILQ_HEAD(, Client) waiting;
	Client *inflight;       /* whose query runs; NULL when it left meanwhile */
	char *inflight_user;
	AuthqCache cache[AUTHQ_CACHE_MAX];
};

static void authq_connect(AuthLookup *l);
static void authq_next(AuthLookup *l);
static void authq_kick_cb(evutil_socket_t fd, short what, void *arg);

static void cache_clear(AuthqCache *e)
{
	free(e->user);
	if (e->secret) {
		OPENSSL_cleanse(e->secret, strlen(e->secret));
		free(e->secret);
	}
	memset(e, 0, sizeof(*e));
}

static const AuthqCache *cache_find(const AuthLookup *l, const char *user, uint64_t now)
{
	for (size_t i = 0; i < AUTHQ_CACHE_MAX; i++)
		if (l->cache[i].user && l->cache[i].expires_ms > now && !strcmp(l->cache[i].user, user))
			return &l->cache[i];
	return NULL;
}

/* Keeps USER's answer in an expired or the oldest slot. */
static void cache_put(AuthLookup *l, const char *user, const char *secret)
{
	AuthqCache *slot = &l->cache[0];
	for (size_t i = 0; i < AUTHQ_CACHE_MAX; i++) {
		AuthqCache *e = &l->cache[i];
		if (!e->user || !strcmp(e->user, user)) {
			slot = e;
			break;
		}
		if (e->expires_ms < slot->expires_ms)
			slot = e;
	}
	cache_clear(slot);
	slot->user = strdup(user);
	slot->secret = secret ? strdup(secret) : NULL;
	if (!slot->user || (secret && !slot->secret)) {
		cache_clear(slot);
		return;
	}
	slot->expires_ms = proxy_now_ms() + AUTHQ_CACHE_MS;
}

static AuthLookup *authq_find(const char *database, bool create)
{
	AuthLookup *l;
	TAILQ_FOREACH(l, &proxy.lookups, link)
		if (!strcmp(l->database, database))
			return l;
	if (!create || !(l = calloc(1, sizeof(*l))))
		return NULL;
	l->database = strdup(database);
	l->kick = event_new(proxy.base, -1, 0, authq_kick_cb, l);
	if (!l->database || !l->kick) {
		free(l->database);
		if (l->kick)
			event_free(l->kick);
		free(l);
		return NULL;
	}
	TAILQ_INIT(&l->waiting);
	TAILQ_INSERT_TAIL(&proxy.lookups, l, link);
	return l;
}

static void authq_set_state(AuthLookup *l, AuthqState st)
{
	l->state = st;
	l->since_ms = proxy_now_ms();
}

/* Closes L's connection and fails every client waiting on it. */
static void authq_fail(AuthLookup *l, const char *reason)
{
	log_warning("auth_query for database %s: %s", l->database, reason);
	if (l->dns_req) {
		evdns_getaddrinfo_cancel(l->dns_req);
		l->dns_req = NULL;
	}
	if (l->ev)
		event_free(l->ev);
	l->ev = NULL;
	if (l->pg)
		PQfinish(l->pg);
	l->pg = NULL;
	authq_set_state(l, AQ_OFF);
	l->addr[0] = '\0'; /* the host may have moved: resolve it again */
	free(l->inflight_user);
	l->inflight_user = NULL;
	Client *c = l->inflight;
	l->inflight = NULL;
	if (c) {
		c->lookup = NULL;
		auth_lookup_failed(c, reason);
	}
	while ((c = TAILQ_FIRST(&l->waiting))) {
		TAILQ_REMOVE(&l->waiting, c, lookup_link);
		c->lookup = NULL;
		auth_lookup_failed(c, reason);
	}
}

/* (Re)arms L's socket event for WHAT, calling CB. */
static bool authq_watch(AuthLookup *l, short what, event_callback_fn cb)
{
	if (l->ev)
		event_free(l->ev);
	l->ev = event_new(proxy.base, PQsocket(l->pg), what, cb, l);
	return l->ev && event_add(l->ev, NULL) == 0;
}

static void authq_result_cb(evutil_socket_t fd, short what, void *arg)
{
	AuthLookup *l = arg;
	(void)fd;
	(void)what;
	if (!PQconsumeInput(l->pg) || PQstatus(l->pg) == CONNECTION_BAD) {
		authq_fail(l, PQerrorMessage(l->pg));
		return;
	}
	if (l->state != AQ_BUSY) {
		/* input while idle: the backend's last words (a terminate, an
		 * idle_session_timeout), or a notice */
		PGresult *res;
		while (!PQisBusy(l->pg) && (res = PQgetResult(l->pg)))
			PQclear(res);
		if (PQstatus(l->pg) == CONNECTION_BAD)
			authq_fail(l, PQerrorMessage(l->pg));
		return;
	}
	if (PQisBusy(l->pg))
		return;
	char *secret = NULL, reason[256] = "";
	PGresult *res;
	bool first = true;
	while ((res = PQgetResult(l->pg))) {
		if (first && PQresultStatus(res) == PGRES_TUPLES_OK) {
			if (PQntuples(res) > 0 && PQnfields(res) >= 2 && !PQgetisnull(res, 0, 1))
				secret = strdup(PQgetvalue(res, 0, 1));
		} else if (first) {
			snprintf(reason, sizeof(reason), "auth_query failed: %s", PQresultErrorMessage(res));
		}
		first = false;
		PQclear(res);
	}
	if (first && !reason[0])
		snprintf(reason, sizeof(reason), "auth_query: no result (%s)", PQerrorMessage(l->pg));
	if (reason[0]) {
		free(secret);
		authq_fail(l, reason);
		return;
	}
	cache_put(l, l->inflight_user, secret);
	free(l->inflight_user);
	l->inflight_user = NULL;
	Client *c = l->inflight;
	l->inflight = NULL;
	authq_set_state(l, AQ_READY);
	if (c) {
		c->lookup = NULL;
		auth_lookup_done(c, secret);
	}
	if (secret) {
		OPENSSL_cleanse(secret, strlen(secret));
		free(secret);
	}
	authq_next(l);
}

/* Answers the waiting clients the cache knows; sends the first other one's query. */
static void authq_next(AuthLookup *l)
{
	Client *c;
	while (l->state == AQ_READY && (c = TAILQ_FIRST(&l->waiting))) {
		TAILQ_REMOVE(&l->waiting, c, lookup_link);
		const AuthqCache *hit = cache_find(l, c->user, proxy_now_ms());
		if (hit) {
			c->lookup = NULL;
			auth_lookup_done(c, hit->secret);
			continue;
		}
		const char *params[1] = {c->user};
		if (!PQsendQueryParams(l->pg, proxy.conf->auth_query, 1, NULL, params, NULL, NULL, 0) ||
		    PQflush(l->pg) < 0 || !(l->inflight_user = strdup(c->user))) {
			TAILQ_INSERT_HEAD(&l->waiting, c, lookup_link);
			authq_fail(l, PQerrorMessage(l->pg));
			return;
		}
		l->inflight = c;
		authq_set_state(l, AQ_BUSY);
		if (!authq_watch(l, EV_READ | EV_PERSIST, authq_result_cb))
			authq_fail(l, "cannot watch the auth_query socket");
	}
}

/* libpq's notices (and the text of a FATAL that ends the connection) go
 * to pgflip's log, not to stderr. */
static void authq_notice(void *arg, const char *message)
{
	const AuthLookup *l = arg;
	log_info("auth_query connection for database %s: %.*s", l->database, (int)strcspn(message, "\n"), message);
}

static void authq_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	AuthLookup *l = arg;
	(void)fd;
	(void)what;
	switch (PQconnectPoll(l->pg)) {
	case PGRES_POLLING_OK:
		PQsetNoticeProcessor(l->pg, authq_notice, l);
		if (PQsetnonblocking(l->pg, 1) != 0) {
			authq_fail(l, "cannot make the auth_query connection non-blocking");
			return;
		}
		event_free(l->ev);
		l->ev = NULL;
		authq_set_state(l, AQ_READY);
		log_info("auth_query connection for database %s logged in as %s", l->database, proxy.conf->auth_user);
		authq_next(l);
		return;
	case PGRES_POLLING_READING:
		if (!authq_watch(l, EV_READ, authq_poll_cb))
			authq_fail(l, "cannot watch the auth_query socket");
		return;
	case PGRES_POLLING_WRITING:
		if (!authq_watch(l, EV_WRITE, authq_poll_cb))
			authq_fail(l, "cannot watch the auth_query socket");
		return;
	default: {
		char msg[512];
		snprintf(msg, sizeof(msg), "login as %s failed: %s", proxy.conf->auth_user, PQerrorMessage(l->pg));
		authq_fail(l, msg);
		return;
	}
	}
}

/* L's connection: the entry's options, logged in as auth_user (its
 * password from auth_file, or the entry's when the entry logs in as
 * auth_user), as server_login_keywords builds them. */
static PGconn *authq_start(AuthLookup *l, const ConfDatabase *db)
{
	const ServerLoginAs as = {.user = proxy.conf->auth_user,
				  .replace_user = true,
				  .dbname = l->database,
				  .app_name = "pgflip auth_query",
				  .addr = l->addr[0] ? l->addr : NULL};
	const char *kw[SERVER_MAX_KEYWORDS + 1], *val[SERVER_MAX_KEYWORDS + 1];
	if (!server_login_keywords(db, &as, kw, val))
		return NULL;
	return PQconnectStartParams(kw, val, 0);
}

static void authq_resolved(int result, struct evutil_addrinfo *res, void *arg)
{
	if (result == EVUTIL_EAI_CANCEL)
		return;
	AuthLookup *l = arg;
	l->dns_req = NULL;
	resolve_answer(result, res, l->addr, sizeof(l->addr));
	if (!l->addr[0]) {
		authq_fail(l, "cannot resolve the host of the [databases] entry");
		return;
	}
	authq_connect(l);
}

static void authq_connect(AuthLookup *l)
{
	const ConfDatabase *db = conf_find_database(proxy.conf, l->database);
	if (!db) {
		authq_fail(l, "no such database entry");
		return;
	}
	const char *host = resolve_host(db);
	if (host && !l->addr[0] && proxy.dns) {
		struct evutil_addrinfo hints;
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		authq_set_state(l, AQ_RESOLVING);
		struct evdns_getaddrinfo_request *req = evdns_getaddrinfo(proxy.dns, host, NULL, &hints, authq_resolved, l);
		if (req)
			l->dns_req = req; /* else authq_resolved ran already */
		return;
	}
	l->pg = authq_start(l, db);
	if (!l->pg || PQstatus(l->pg) == CONNECTION_BAD) {
		authq_fail(l, l->pg ? PQerrorMessage(l->pg) : "cannot start the login (too many keywords in the entry, or out of memory)");
		return;
	}
	authq_set_state(l, AQ_CONNECTING);
	if (!authq_watch(l, EV_WRITE, authq_poll_cb))
		authq_fail(l, "cannot watch the auth_query socket");
}

AuthqStatus authq_lookup(Client *c, const char **secret)
{
	*secret = NULL;
	AuthLookup *l = authq_find(c->database, true);
	if (!l || !proxy.conf->auth_user)
		return AUTHQ_FAIL;
	const AuthqCache *hit = cache_find(l, c->user, proxy_now_ms());
	if (hit) {
		*secret = hit->secret;
		return AUTHQ_HIT;
	}
	TAILQ_INSERT_TAIL(&l->waiting, c, lookup_link);
	c->lookup = l;
	event_active(l->kick, 0, 0); /* answers come from callbacks, never from here */
	return AUTHQ_WAIT;
}

static void authq_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	AuthLookup *l = arg;
	(void)fd;
	(void)what;
	if (l->state == AQ_OFF && !TAILQ_EMPTY(&l->waiting))
		authq_connect(l);
	else if (l->state == AQ_READY)
		authq_next(l);
}

void authq_forget(Client *c)
{
	AuthLookup *l = c->lookup;
	if (!l)
		return;
	if (l->inflight == c)
		l->inflight = NULL; /* its answer still fills the cache */
	else
		TAILQ_REMOVE(&l->waiting, c, lookup_link);
	c->lookup = NULL;
}

void authq_janitor(uint64_t now)
{
	AuthLookup *l;
	TAILQ_FOREACH(l, &proxy.lookups, link) {
		uint64_t age = now - l->since_ms;
		if ((l->state == AQ_CONNECTING || l->state == AQ_RESOLVING) &&
		    age > (uint64_t)proxy.conf->server_connect_timeout_ms)
			authq_fail(l, "server_connect_timeout");
		else if (l->state == AQ_BUSY && age > AUTHQ_QUERY_TIMEOUT_MS)
			authq_fail(l, "no answer to auth_query in time");
	}
}

void authq_reset(void)
{
	AuthLookup *l;
	while ((l = TAILQ_FIRST(&proxy.lookups))) {
		if (l->state != AQ_OFF || !TAILQ_EMPTY(&l->waiting))
			authq_fail(l, "closed (reload or exit)");
		TAILQ_REMOVE(&proxy.lookups, l, link);
		for (size_t i = 0; i < AUTHQ_CACHE_MAX; i++)
			cache_clear(&l->cache[i]);
		event_free(l->kick);
		free(l->database);
		free(l);
	}
}
