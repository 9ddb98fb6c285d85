/*
 * proxy/loadwatch.h: the foreground latency that a backfill run by the
 * daemon adapts to (loadwatch.c). Once a second the loop sums the latency
 * histograms of every route (proxy.rstats, routestats.h) into a ring of
 * LOADWATCH_SLOTS snapshots; the difference of two snapshots is the
 * histogram of the transactions that ended between them.
 *
 * Loop thread only: the migrator copies the ratio it needs into its own
 * mutex-guarded state for the worker (migrator.c).
 */
#ifndef PGFLIP_LOADWATCH_H
#define PGFLIP_LOADWATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/routestats.h"

#define LOADWATCH_SLOTS 16      /* one-second snapshots kept: more than either window below */
#define LOADWATCH_RECENT_S 3    /* "now": the p99 of the last 3 seconds */
#define LOADWATCH_BASELINE_S 10 /* the baseline: the p99 of the 10 seconds before a job */
#define LOADWATCH_MIN_TX 30     /* a window with fewer transactions has no p99 */
#define LOADWATCH_FLOOR_US 1000 /* a baseline counts as 1 ms at least: below it, noise swings the ratio */

typedef struct LoadWatch {
	uint64_t hist[LOADWATCH_SLOTS][ROUTESTATS_BUCKETS];
	uint64_t count[LOADWATCH_SLOTS];
	size_t next;            /* the slot the next snapshot goes to */
	size_t filled;          /* snapshots taken, at most LOADWATCH_SLOTS */
	uint64_t baseline_us;   /* loadwatch_set_baseline's p99, 0 unknown */
} LoadWatch;

/* loadwatch_tick: takes this second's snapshot of RS. O(routes x buckets). */
void loadwatch_tick(LoadWatch *w, const RouteStats *rs);
/* loadwatch_p99: the p99 latency (us) of the transactions that ended in the
 * last SECONDS (1..LOADWATCH_SLOTS - 1) snapshots; false when there were
 * fewer than LOADWATCH_MIN_TX, or fewer snapshots than two. */
bool loadwatch_p99(const LoadWatch *w, int seconds, uint64_t *us);
/* loadwatch_set_baseline: the baseline becomes the p99 of the last
 * LOADWATCH_BASELINE_S seconds (0, unknown, without one). */
void loadwatch_set_baseline(LoadWatch *w);
/* loadwatch_ratio: the p99 of the last LOADWATCH_RECENT_S seconds over the
 * baseline (at least LOADWATCH_FLOOR_US); -1 when either is unknown. */
double loadwatch_ratio(const LoadWatch *w);

#endif
