/*
 * proxy/routestats.h: statistics per route (version schema name):
 * transactions, failed transactions, ErrorResponses by SQLSTATE class,
 * a latency histogram, a window of the last 60 seconds; and the canary's
 * automatic rollback verdict drawn from them (routestats.c).
 */
#ifndef PGFLIP_ROUTESTATS_H
#define PGFLIP_ROUTESTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/router.h"

/* Latency histogram: log-linear, as HdrHistogram. Values below
 * 2^ROUTESTATS_SUB_BITS us are exact; above, each power of two is cut in
 * 2^ROUTESTATS_SUB_BITS buckets, so a bucket is at most 1/64 (1.6 %) of its
 * lower bound wide and its midpoint within 0.8 % of any value in it. */
#define ROUTESTATS_SUB_BITS 6
/* Latencies of 2^32 us (71 minutes) and more count in the last bucket. */
#define ROUTESTATS_MAX_BITS 32
#define ROUTESTATS_BUCKETS ((ROUTESTATS_MAX_BITS - ROUTESTATS_SUB_BITS + 1) << ROUTESTATS_SUB_BITS)
/* One-second slots of the window: the longest verdict window, and the
 * "transactions per second now" of the admin replies. */
#define ROUTESTATS_WINDOW ROUTER_MAX_WINDOW_S
/* SQLSTATE classes: two characters of [0-9A-Z]; one more slot, "??", for
 * an ErrorResponse without a well-formed SQLSTATE. */
#define ROUTESTATS_CLASSES (36 * 36 + 1)
/* Routes kept at most: names come from the admin and the config only, so
 * this is far above any real table; the stats of routes beyond it are not
 * kept (and that is logged once). */
#define ROUTESTATS_MAX_ROUTES 1024
/* The lowest error rate a verdict assumes for the default route (see
 * routestats_canary_verdict). */
#define ROUTESTATS_FLOOR_RATE 0.01

/* The upper bounds (us) of the transaction latency buckets the Prometheus
 * endpoint exports (metrics.c), Prometheus' own default buckets (5 ms ..
 * 10 s) with 0.5 and 1 ms below them, for a pooler's short transactions,
 * and 30 and 60 s above; +Inf is latency_count. ROUTESTATS_LE_N of them. */
#define ROUTESTATS_LE_US                                                                                          \
	{500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, \
	 30000000, 60000000}
#define ROUTESTATS_LE_N 16

/* RouteStatsPromLatency: the transaction latency as Prometheus counts it
 * (issue 13): exact per bound rather than the log-linear histogram's
 * 1.6 % wide buckets, and the sum of every latency. */
typedef struct RouteStatsPromLatency {
	uint64_t le[ROUTESTATS_LE_N]; /* latencies above bound i - 1 and at most bound i (not cumulative) */
	uint64_t sum_us;              /* of every latency counted in latency_count */
} RouteStatsPromLatency;

typedef struct RouteStatsSlot {
	uint64_t second;        /* the monotonic second it counts, 0 = never used */
	uint32_t transactions;
	uint32_t failed;
} RouteStatsSlot;

typedef struct RouteStatsEntry {
	char *route;
	size_t index;           /* its place in RouteStats.entries (pools count by it) */
	uint64_t transactions;  /* ended: ReadyForQuery 'I', or pgflip's own answer, or a close with an error */
	uint64_t failed;        /* of them, those in which the client received an ErrorResponse */
	uint64_t errors[ROUTESTATS_CLASSES]; /* ErrorResponses the clients received, by SQLSTATE class */
	uint64_t latency_count; /* transactions with a latency (those that ended with ReadyForQuery) */
	uint64_t latency[ROUTESTATS_BUCKETS];
	RouteStatsPromLatency prom;
	RouteStatsSlot window[ROUTESTATS_WINDOW];
} RouteStatsEntry;

/* Every route that served a transaction, in order of first use. Entries
 * are allocated once each and never move or go before routestats_free,
 * so clients may keep pointers to them. */
typedef struct RouteStats {
	RouteStatsEntry **entries;
	size_t n;
	size_t cap;
	bool full_logged;       /* ROUTESTATS_MAX_ROUTES was reached and said */
} RouteStats;

/* A window's sums (routestats_window). */
typedef struct RouteStatsSums {
	uint64_t transactions;
	uint64_t failed;
} RouteStatsSums;

void routestats_init(RouteStats *rs);
/* routestats_free: frees every entry; RS is empty afterwards. */
void routestats_free(RouteStats *rs);
/* routestats_get: the entry of ROUTE, added when there is none (copying
 * the name). NULL when ROUTESTATS_MAX_ROUTES are kept already. */
RouteStatsEntry *routestats_get(RouteStats *rs, const char *route);
/* routestats_find: the entry of ROUTE, or NULL; adds nothing. */
const RouteStatsEntry *routestats_find(const RouteStats *rs, const char *route);

/* routestats_error: a client of E received an ErrorResponse whose SQLSTATE
 * is SQLSTATE (5 characters; NULL or malformed counts as class "??"). */
void routestats_error(RouteStatsEntry *e, const char *sqlstate);
/*
 * routestats_end: a transaction of E ended at NOW_US (monotonic
 * microseconds), FAILED when its client received an ErrorResponse in it.
 * START_US is when its first message came; 0 when it has no latency (it
 * ended without ReadyForQuery). O(1), no allocation.
 */
void routestats_end(RouteStatsEntry *e, uint64_t now_us, uint64_t start_us, bool failed);

/* routestats_le_bound: the upper bound (us) of Prometheus bucket I
 * (0 <= I < ROUTESTATS_LE_N), from ROUTESTATS_LE_US. */
uint64_t routestats_le_bound(size_t i);

/* routestats_class_index / routestats_class_name: the errors[] slot of a
 * SQLSTATE, and the two-character name of a slot ("??" for the last) into
 * BUF (3 bytes). */
size_t routestats_class_index(const char *sqlstate);
const char *routestats_class_name(size_t index, char buf[3]);
/* routestats_bucket / routestats_bucket_value: the histogram bucket of
 * V us, and the value that stands for a bucket (its midpoint, in us). */
size_t routestats_bucket(uint64_t v);
uint64_t routestats_bucket_value(size_t bucket);
/* routestats_percentile: the latency (us) that Q (0 < Q <= 1) of E's
 * transactions did not exceed, within the histogram's precision; false
 * when E has no latency recorded. */
bool routestats_percentile(const RouteStatsEntry *e, double q, uint64_t *us) PROXY_MUSTCHECK;
/* routestats_hist_percentile: as routestats_percentile, over the histogram
 * HIST (ROUTESTATS_BUCKETS counts) of COUNT transactions. */
bool routestats_hist_percentile(const uint64_t *hist, uint64_t count, double q, uint64_t *us) PROXY_MUSTCHECK;
/* routestats_latency_sum: HIST (ROUTESTATS_BUCKETS counts) = the sum of
 * every route's latency histogram since the start, *COUNT their count. */
void routestats_latency_sum(const RouteStats *rs, uint64_t *hist, uint64_t *count);
/* routestats_window: E's transactions and failed ones in the SECONDS
 * (1..ROUTESTATS_WINDOW) one-second slots that end with LAST_SECOND
 * (monotonic seconds) included. */
RouteStatsSums routestats_window(const RouteStatsEntry *e, uint64_t last_second, int seconds);

/*
 * routestats_canary_verdict: whether R's canary failed by R's canary_check,
 * at the monotonic second NOW_S, over the check's window_s seconds up to
 * NOW_S (the current second included) but none before SINCE_S (when the
 * canary was set: older failures of its schema do not count), from the
 * stats in RS of the canary schema and of the default schema. It failed when the canary had at least
 * min_transactions (N) transactions in the window and
 *     canary_failed / canary_tx > R x max(default_failed / default_tx, floor)
 * with R = max_error_ratio and floor = max(ROUTESTATS_FLOOR_RATE,
 * 1 / (R x N)): a default without errors counts as 1 % at least, and at
 * least so much that one failed transaction among the canary's N or more
 * never passes (1/N is not above R x floor). A default without
 * transactions in the window counts as rate 0. WHY (WHYLEN bytes) gets
 * both rates and the limit, whether it failed or not. False, with WHY
 * saying so, when R has no canary or no verdict is asked.
 */
bool routestats_canary_verdict(const RouteStats *rs, const Router *r, uint64_t since_s, uint64_t now_s, char *why,
			       size_t whylen);

#endif
