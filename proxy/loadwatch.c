/*
 * proxy/loadwatch.c: the foreground latency ring (see loadwatch.h).
 */
#include "proxy/proxy.h"
#include "proxy/loadwatch.h"

#include <string.h>

void loadwatch_tick(LoadWatch *w, const RouteStats *rs)
{
	routestats_latency_sum(rs, w->hist[w->next], &w->count[w->next]);
	w->next = (w->next + 1) % LOADWATCH_SLOTS;
	if (w->filled < LOADWATCH_SLOTS)
		w->filled++;
}

bool loadwatch_p99(const LoadWatch *w, int seconds, uint64_t *us)
{
	if (w->filled < 2 || seconds < 1)
		return false;
	size_t span = (size_t)seconds < w->filled - 1 ? (size_t)seconds : w->filled - 1;
	size_t last = (w->next + LOADWATCH_SLOTS - 1) % LOADWATCH_SLOTS;
	size_t first = (last + LOADWATCH_SLOTS - span) % LOADWATCH_SLOTS;
	uint64_t n = w->count[last] - w->count[first];
	if (n < LOADWATCH_MIN_TX)
		return false;
	uint64_t diff[ROUTESTATS_BUCKETS];
	for (size_t b = 0; b < ROUTESTATS_BUCKETS; b++)
		diff[b] = w->hist[last][b] - w->hist[first][b];
	return routestats_hist_percentile(diff, n, 0.99, us);
}

void loadwatch_set_baseline(LoadWatch *w)
{
	uint64_t us;
	w->baseline_us = loadwatch_p99(w, LOADWATCH_BASELINE_S, &us) ? us : 0;
}

double loadwatch_ratio(const LoadWatch *w)
{
	uint64_t now;
	if (w->baseline_us == 0 || !loadwatch_p99(w, LOADWATCH_RECENT_S, &now))
		return -1.0;
	uint64_t base = w->baseline_us < LOADWATCH_FLOOR_US ? LOADWATCH_FLOOR_US : w->baseline_us;
	return (double)now / (double)base;
}
