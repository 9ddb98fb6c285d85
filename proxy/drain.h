/*
 * proxy/drain.h: the drain window (ddl_drain_timeout) that a migration step
 * asks for when its lock attempts keep failing under load (issue 11).
 *
 * For at most TIMEOUT_MS, pgflip holds the new transactions of one database
 * at their boundary, as PAUSE does (a client's next request waits unread, a
 * waiting client gets no server); as soon as no server of that database is
 * inside a transaction it tells the migrator, which runs its step on its own
 * connection and ends the window. Whatever happens, the window ends at
 * TIMEOUT_MS and everything held goes on: clients see at most that pause,
 * never an error. Event loop only.
 */
#ifndef PGFLIP_PROXY_DRAIN_H
#define PGFLIP_PROXY_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Called once per window, in the loop: LEFT_MS > 0 when the transactions
 * in flight ended with that many ms of the window left (new ones are held
 * until drain_end or the window's end); 0 when the window ended first
 * (nothing is held any more). */
typedef void (*DrainDone)(void *arg, int left_ms);

/* What the windows did since start (SHOW DRAINS is not a command: these go
 * to `status` and the metrics). */
typedef struct DrainStats {
	uint64_t windows;      /* opened */
	uint64_t drained;      /* in-flight transactions ended within the window */
	uint64_t timed_out;    /* the window ended with transactions in flight */
	uint64_t refused;      /* not opened: no holder of PIDS was pgflip's (drain_begin) */
	uint64_t held_us;      /* the windows' total length (us) */
	uint64_t max_held_us;  /* the longest (us) */
} DrainStats;

/*
 * drain_begin: opens a window on DATABASE (a [databases] entry name) for
 * at most TIMEOUT_MS (> 0). PIDS (N of them) are the backends that hold
 * locks the step needs: when none of them is one of DATABASE's servers
 * (or N is 0), a window could not help and none opens. DONE(ARG, ...) is
 * called later, or at once when nothing is in flight. Returns 0 when the
 * window opened; -1 with WHY (a sentence) when it did not (a window is
 * already open, none of PIDS is pgflip's); DONE is not called then.
 */
int drain_begin(const char *database, int timeout_ms, const int *pids, size_t n, DrainDone done, void *arg, char *why,
		size_t whylen);
/* drain_end: ends the open window (held clients go on); no-op when none. */
void drain_end(void);
/* drain_tx_end: a server ended a transaction or closed; answers DONE when
 * that was the last one in flight. Cheap when no window is open. */
void drain_tx_end(void);
/* drain_stats: the counters since start. */
const DrainStats *drain_stats(void);
/* drain_open: whether a window is open now (its database, or NULL). */
const char *drain_open(void);

#endif
