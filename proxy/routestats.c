/*
 * proxy/routestats.c: statistics per route, and the canary's verdict.
 *
 * Design. Recording is on the hot path, so it is a handful of increments:
 * each client keeps a pointer to its route's entry (looked up again only
 * when its route changes), an entry is allocated once, the first time its
 * route ends a transaction, and never moves. The latency histogram is
 * log-linear with fixed buckets (HdrHistogram's layout: 64 sub-buckets per
 * power of two, exact below 64 us), so a record is a count of leading
 * zeros, a shift and an increment, and p50/p99 are one walk over the
 * buckets when the admin asks. The window is a ring of one-second slots
 * stamped with their second: a slot found with an older stamp is reset
 * before it counts, so seconds without traffic cost nothing.
 *
 * What counts (client.c calls these): a transaction ends at the
 * ReadyForQuery 'I' that leaves its server at a boundary, or when pgflip
 * answers a request itself (an ErrorResponse or a tag, then ReadyForQuery),
 * or when the client is closed with an error inside it. It failed when the
 * client received an ErrorResponse in it. Its latency runs from its first
 * client message to that ReadyForQuery, waiting for a server included.
 *
 * No state outside the RouteStats given (DESIGN.md decision 11).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"
#include "proxy/routestats.h"

#define ROUTESTATS_SUB (1u << ROUTESTATS_SUB_BITS)

void routestats_init(RouteStats *rs) { memset(rs, 0, sizeof(*rs)); }

void routestats_free(RouteStats *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->entries[i]->route);
		free(rs->entries[i]);
	}
	free(rs->entries);
	memset(rs, 0, sizeof(*rs));
}

const RouteStatsEntry *routestats_find(const RouteStats *rs, const char *route)
{
	for (size_t i = 0; route && i < rs->n; i++)
		if (strcmp(rs->entries[i]->route, route) == 0)
			return rs->entries[i];
	return NULL;
}

RouteStatsEntry *routestats_get(RouteStats *rs, const char *route)
{
	RouteStatsEntry *e = (RouteStatsEntry *)routestats_find(rs, route);
	if (e || !route)
		return e;
	if (rs->n >= ROUTESTATS_MAX_ROUTES) {
		if (!rs->full_logged)
			log_warning("route stats: %d routes are kept already; route %s and later ones are not counted",
				    ROUTESTATS_MAX_ROUTES, route);
		rs->full_logged = true;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	RouteStatsEntry **grown = e ? proxy_grow_try(rs->entries, rs->n, &rs->cap, sizeof(*rs->entries)) : NULL;
	if (e)
		e->route = grown ? strdup(route) : NULL;
	if (!e || !e->route) {
		free(e);
		return NULL; /* out of memory: not counted, as past the limit */
	}
	e->index = rs->n;
	rs->entries = grown;
	rs->entries[rs->n++] = e;
	return e;
}

/* ---- SQLSTATE classes ---------------------------------------------------- */

/* A SQLSTATE character's value among [0-9A-Z], or -1. */
static int class_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A' + 10;
	return -1;
}

size_t routestats_class_index(const char *sqlstate)
{
	if (!sqlstate || strlen(sqlstate) != 5)
		return ROUTESTATS_CLASSES - 1;
	int a = class_digit(sqlstate[0]), b = class_digit(sqlstate[1]);
	if (a < 0 || b < 0)
		return ROUTESTATS_CLASSES - 1;
	return (size_t)(a * 36 + b);
}

const char *routestats_class_name(size_t index, char buf[3])
{
	static const char digits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
	if (index >= ROUTESTATS_CLASSES - 1) {
		memcpy(buf, "??", 3);
	} else {
		buf[0] = digits[index / 36];
		buf[1] = digits[index % 36];
		buf[2] = '\0';
	}
	return buf;
}

void routestats_error(RouteStatsEntry *e, const char *sqlstate) { e->errors[routestats_class_index(sqlstate)]++; }

/* ---- latency histogram ----------------------------------------------------- */

size_t routestats_bucket(uint64_t v)
{
	if (v >= (1ull << ROUTESTATS_MAX_BITS))
		v = (1ull << ROUTESTATS_MAX_BITS) - 1;
	if (v < ROUTESTATS_SUB)
		return (size_t)v;
	unsigned top = 63u - (unsigned)__builtin_clzll(v); /* >= ROUTESTATS_SUB_BITS */
	unsigned shift = top - ROUTESTATS_SUB_BITS;
	/* v >> shift is in [SUB, 2 SUB): one power of two per SUB buckets */
	return ((size_t)shift << ROUTESTATS_SUB_BITS) + (size_t)(v >> shift);
}

uint64_t routestats_bucket_value(size_t bucket)
{
	if (bucket < 2 * ROUTESTATS_SUB)
		return bucket; /* one value each */
	unsigned shift = (unsigned)(bucket >> ROUTESTATS_SUB_BITS) - 1;
	uint64_t low = (uint64_t)(ROUTESTATS_SUB + (bucket & (ROUTESTATS_SUB - 1))) << shift;
	return low + (((uint64_t)1 << shift) - 1) / 2;
}

bool routestats_percentile(const RouteStatsEntry *e, double q, uint64_t *us)
{
	return routestats_hist_percentile(e->latency, e->latency_count, q, us);
}

void routestats_latency_sum(const RouteStats *rs, uint64_t *hist, uint64_t *count)
{
	memset(hist, 0, ROUTESTATS_BUCKETS * sizeof(*hist));
	*count = 0;
	for (size_t i = 0; i < rs->n; i++) {
		const RouteStatsEntry *e = rs->entries[i];
		for (size_t b = 0; b < ROUTESTATS_BUCKETS; b++)
			hist[b] += e->latency[b];
		*count += e->latency_count;
	}
}

bool routestats_hist_percentile(const uint64_t *hist, uint64_t count, double q, uint64_t *us)
{
	if (count == 0)
		return false;
	/* the smallest value with at least ceil(q n) transactions at or below it */
	double want = q * (double)count;
	uint64_t rank = (uint64_t)want;
	if ((double)rank < want)
		rank++;
	if (rank < 1)
		rank = 1;
	uint64_t seen = 0;
	for (size_t b = 0; b < ROUTESTATS_BUCKETS; b++) {
		seen += hist[b];
		if (seen >= rank) {
			*us = routestats_bucket_value(b);
			return true;
		}
	}
	*us = routestats_bucket_value(ROUTESTATS_BUCKETS - 1);
	return true;
}

/* ---- the window ------------------------------------------------------------ */

uint64_t routestats_le_bound(size_t i)
{
	static const uint64_t bounds[ROUTESTATS_LE_N] = ROUTESTATS_LE_US; /* constant */
	return i < ROUTESTATS_LE_N ? bounds[i] : UINT64_MAX;
}

/* The Prometheus bucket of a latency of US: the first bound not below it,
 * ROUTESTATS_LE_N when it is above them all (+Inf only). */
static size_t le_index(uint64_t us)
{
	size_t i = 0;
	while (i < ROUTESTATS_LE_N && us > routestats_le_bound(i))
		i++;
	return i;
}

void routestats_end(RouteStatsEntry *e, uint64_t now_us, uint64_t start_us, bool failed)
{
	e->transactions++;
	e->failed += failed;
	if (start_us) {
		uint64_t us = now_us >= start_us ? now_us - start_us : 0;
		e->latency[routestats_bucket(us)]++;
		e->latency_count++;
		size_t le = le_index(us);
		if (le < ROUTESTATS_LE_N)
			e->prom.le[le]++;
		e->prom.sum_us += us;
	}
	uint64_t second = now_us / 1000000;
	RouteStatsSlot *slot = &e->window[second % ROUTESTATS_WINDOW];
	if (slot->second != second) {
		slot->second = second;
		slot->transactions = 0;
		slot->failed = 0;
	}
	slot->transactions++;
	slot->failed += failed;
}

RouteStatsSums routestats_window(const RouteStatsEntry *e, uint64_t last_second, int seconds)
{
	RouteStatsSums sums = {0, 0};
	if (!e)
		return sums;
	if (seconds > ROUTESTATS_WINDOW)
		seconds = ROUTESTATS_WINDOW;
	for (int i = 0; i < seconds && (uint64_t)i <= last_second; i++) {
		uint64_t second = last_second - (uint64_t)i;
		const RouteStatsSlot *slot = &e->window[second % ROUTESTATS_WINDOW];
		if (slot->second == second) {
			sums.transactions += slot->transactions;
			sums.failed += slot->failed;
		}
	}
	return sums;
}

/* ---- the canary's verdict ---------------------------------------------------- */

static double rate(RouteStatsSums s) { return s.transactions ? (double)s.failed / (double)s.transactions : 0; }

bool routestats_canary_verdict(const RouteStats *rs, const Router *r, uint64_t since_s, uint64_t now_s, char *why,
			       size_t whylen)
{
	const RouterCanaryCheck *chk = &r->canary_check;
	if (!r->canary_schema || chk->max_error_ratio <= 0) {
		snprintf(why, whylen, "no canary verdict is asked");
		return false;
	}
	int seconds = chk->window_s;
	if (since_s > now_s)
		seconds = 0; /* nothing counts yet */
	else if (now_s - since_s + 1 < (uint64_t)seconds)
		seconds = (int)(now_s - since_s + 1);
	RouteStatsSums c = routestats_window(routestats_find(rs, r->canary_schema), now_s, seconds);
	RouteStatsSums d = routestats_window(routestats_find(rs, r->default_schema), now_s, seconds);
	double ratio = chk->max_error_ratio;
	uint64_t n = (uint64_t)chk->min_transactions;
	double floor = 1.0 / (ratio * (double)n);
	if (floor < ROUTESTATS_FLOOR_RATE)
		floor = ROUTESTATS_FLOOR_RATE;
	double limit = ratio * (rate(d) > floor ? rate(d) : floor);
	bool enough = c.transactions >= n;
	/* canary rate > R x default rate, > R x 1 %, > 1/N: the last in
	 * integers, so that one failure among N is never enough, exactly */
	bool failed = enough && c.failed * n > c.transactions &&
		      (double)c.failed > ratio * ROUTESTATS_FLOOR_RATE * (double)c.transactions &&
		      (d.transactions == 0 ||
		       (double)c.failed * (double)d.transactions > ratio * (double)d.failed * (double)c.transactions);
	snprintf(why, whylen,
		 "canary %s: %llu of %llu transactions failed (%.1f %%) in the last %d s, default %s: %llu of %llu "
		 "(%.1f %%); limit %g x max(%.1f %%, floor %.1f %%) = %.1f %%%s",
		 r->canary_schema, (unsigned long long)c.failed, (unsigned long long)c.transactions, 100 * rate(c),
		 seconds, r->default_schema, (unsigned long long)d.failed, (unsigned long long)d.transactions,
		 100 * rate(d), ratio, 100 * rate(d), 100 * floor, 100 * limit,
		 enough ? "" : "; too few canary transactions for a verdict");
	return failed;
}
