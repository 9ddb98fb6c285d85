/*
 * proxy/drain.c: the drain window (see drain.h).
 *
 * One window at a time (one migrator runs one step at a time). Holding is
 * the PAUSE machinery: Pool.draining makes proxy_paused() true for the
 * database's pools, so a client at a transaction boundary is not read and
 * pool_dispatch hands no server to a waiting one. In flight: a server of
 * those pools running pgflip's route query (SV_PREPARING: its client's
 * request follows) or carrying a client inside a transaction (SV_ACTIVE,
 * not at its boundary). Each transaction end of a server asks again
 * (drain_tx_end, from server.c), so the answer comes at the end of the
 * last one, not at a poll.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "proxy/drain.h"
#include "proxy/pool.h"
#include "proxy/proxy.h"
#include "proxy/server.h"

typedef struct Drain {
	bool on;
	bool answered;        /* DONE was called */
	char *database;
	uint64_t began_us;
	int timeout_ms;
	DrainDone done;
	void *arg;
	struct event *timer;
	DrainStats stats;
} Drain;

static Drain drain;

static void drain_set_pools(const char *database, bool on)
{
	Pool *p;
	TAILQ_FOREACH(p, &proxy.pools, link)
		if (strcmp(p->database, database) == 0)
			p->draining = on;
}

static bool server_in_flight(const Server *s)
{
	return s->state == SV_PREPARING || (s->state == SV_ACTIVE && !server_at_boundary(s));
}

/* Servers of the window's database inside a transaction. */
static int in_flight(void)
{
	int n = 0;
	Pool *p;
	const Server *s;
	TAILQ_FOREACH(p, &proxy.pools, link) {
		if (!p->draining)
			continue;
		TAILQ_FOREACH(s, &p->servers, link)
			n += server_in_flight(s);
	}
	return n;
}

/* Whether one of PIDS is a backend of DATABASE's servers. */
static bool holders_ours(const char *database, const int *pids, size_t n)
{
	Pool *p;
	const Server *s;
	TAILQ_FOREACH(p, &proxy.pools, link) {
		if (strcmp(p->database, database) != 0)
			continue;
		TAILQ_FOREACH(s, &p->servers, link)
			for (size_t i = 0; i < n; i++)
				if (s->backend_pid == pids[i])
					return true;
	}
	return false;
}

static void drain_answer(int left_ms)
{
	if (drain.answered)
		return;
	drain.answered = true;
	if (left_ms > 0)
		drain.stats.drained++;
	else
		drain.stats.timed_out++;
	drain.done(drain.arg, left_ms);
}

void drain_end(void)
{
	if (!drain.on)
		return;
	uint64_t held = proxy_now_us() - drain.began_us;
	int n = in_flight();
	drain_answer(0);
	drain.on = false;
	event_del(drain.timer);
	drain_set_pools(drain.database, false);
	drain.stats.held_us += held;
	if (held > drain.stats.max_held_us)
		drain.stats.max_held_us = held;
	log_info("drain %s: new transactions held %.1f ms%s", drain.database, held / 1000.0,
		 n ? ", ended with transactions still in flight" : "");
	free(drain.database);
	drain.database = NULL;
	proxy_update_clients(true);
}

static void drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	drain_end();
}

void drain_tx_end(void)
{
	if (!drain.on || drain.answered || in_flight() > 0)
		return;
	int left = drain.timeout_ms - (int)((proxy_now_us() - drain.began_us) / 1000);
	drain_answer(left > 0 ? left : 1);
}

int drain_begin(const char *database, int timeout_ms, const int *pids, size_t n, DrainDone done, void *arg, char *why,
		size_t whylen)
{
	if (drain.on) {
		snprintf(why, whylen, "a drain window is open on %s", drain.database);
		return -1;
	}
	if (!holders_ours(database, pids, n)) {
		drain.stats.refused++;
		snprintf(why, whylen, "no session in the way is one of pgflip's servers of %s", database);
		return -1;
	}
	if (!drain.timer)
		drain.timer = evtimer_new(proxy.base, drain_timer_cb, NULL);
	char *db = strdup(database);
	if (!drain.timer || !db) {
		free(db);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	drain = (Drain){.on = true, .database = db, .began_us = proxy_now_us(), .timeout_ms = timeout_ms,
			.done = done, .arg = arg, .timer = drain.timer, .stats = drain.stats};
	drain.stats.windows++;
	evtimer_add(drain.timer, &tv);
	drain_set_pools(db, true);
	proxy_update_clients(false);
	log_info("drain %s: holding new transactions for at most %d ms (%d in flight)", db, timeout_ms, in_flight());
	drain_tx_end();
	return 0;
}

const DrainStats *drain_stats(void) { return &drain.stats; }

const char *drain_open(void) { return drain.on ? drain.database : NULL; }
