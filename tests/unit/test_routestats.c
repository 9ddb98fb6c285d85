/*
 * tests/unit/test_routestats.c: unit tests of the per-route statistics and
 * the canary's verdict (proxy/routestats.c).
 *
 * The histogram is checked against the values it was given (every bucket's
 * value within its precision, percentiles of known distributions), the
 * window against seconds that pass, wrap and skip, the verdict on the rule
 * of routestats.h with its edges: one failure is never enough, the same
 * rate as the default never fails, the window forgets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

#define US 1000000ull /* one second in us */

/* ---- the histogram ------------------------------------------------------- */

static void test_buckets(void **state)
{
	(void)state;
	/* exact below 128 us */
	for (uint64_t v = 0; v < 128; v++) {
		assert_int_equal(routestats_bucket(v), v);
		assert_int_equal(routestats_bucket_value(routestats_bucket(v)), v);
	}
	/* above: a bucket's value is within 0.8 % of every value in it, and
	 * buckets grow with the value */
	size_t last = 0;
	for (uint64_t v = 128; v < (1ull << 32); v += v / 97 + 1) {
		size_t b = routestats_bucket(v);
		assert_true(b >= last);
		assert_true(b < ROUTESTATS_BUCKETS);
		last = b;
		double got = (double)routestats_bucket_value(b), err = (got - (double)v) / (double)v;
		if (err > 0.008 || err < -0.008)
			fail_msg("%llu us: bucket %zu stands for %.0f (%.2f %%)", (unsigned long long)v, b, got, 100 * err);
	}
	/* the edges of one power of two, and the top */
	assert_int_equal(routestats_bucket(255), routestats_bucket(254));
	assert_true(routestats_bucket(256) == routestats_bucket(255) + 1);
	assert_int_equal(routestats_bucket((1ull << 32) - 1), ROUTESTATS_BUCKETS - 1);
	assert_int_equal(routestats_bucket(1ull << 40), ROUTESTATS_BUCKETS - 1);
	assert_int_equal(routestats_bucket(UINT64_MAX), ROUTESTATS_BUCKETS - 1);
}

/* P of E is WANT us within 2 %. */
static void assert_percentile(const RouteStatsEntry *e, double p, double want)
{
	uint64_t got;
	assert_true(routestats_percentile(e, p, &got));
	if ((double)got < want * 0.98 || (double)got > want * 1.02)
		fail_msg("p%g: %llu us, want %.0f +- 2 %%", 100 * p, (unsigned long long)got, want);
}

static void test_percentiles(void **state)
{
	(void)state;
	RouteStatsEntry *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	uint64_t p = 0;
	assert_false(routestats_percentile(e, 0.5, &p)); /* nothing yet */

	/* 1..10000 us, once each */
	uint64_t t = 1000 * US;
	for (uint64_t v = 1; v <= 10000; v++)
		routestats_end(e, t + v, t, false);
	assert_int_equal(e->transactions, 10000);
	assert_int_equal(e->latency_count, 10000);
	assert_percentile(e, 0.5, 5000);
	assert_percentile(e, 0.99, 9900);
	assert_percentile(e, 1.0, 10000);

	/* a slow tail: 98 fast, 2 very slow: p50 fast, p99 slow */
	memset(e, 0, sizeof(*e));
	for (int i = 0; i < 98; i++)
		routestats_end(e, t + 300, t, false);
	routestats_end(e, t + 2 * US, t, false);
	routestats_end(e, t + 3 * US, t, false);
	assert_percentile(e, 0.5, 300);
	assert_percentile(e, 0.99, 2 * US);

	/* a transaction without latency counts, but not in the histogram; a
	 * clock that went back counts as 0 us */
	memset(e, 0, sizeof(*e));
	routestats_end(e, t, 0, true);
	assert_int_equal(e->transactions, 1);
	assert_int_equal(e->failed, 1);
	assert_false(routestats_percentile(e, 0.5, &p));
	routestats_end(e, t, t + 5, false);
	assert_true(routestats_percentile(e, 0.5, &p));
	assert_int_equal(p, 0);
	free(e);
}

/* ---- errors, entries ----------------------------------------------------- */

static void test_classes(void **state)
{
	(void)state;
	char name[3];
	assert_string_equal(routestats_class_name(routestats_class_index("42P01"), name), "42");
	assert_string_equal(routestats_class_name(routestats_class_index("3F000"), name), "3F");
	assert_string_equal(routestats_class_name(routestats_class_index("00000"), name), "00");
	assert_string_equal(routestats_class_name(routestats_class_index("ZZ999"), name), "ZZ");
	assert_int_equal(routestats_class_index("42P01"), routestats_class_index("42703"));
	assert_true(routestats_class_index("42P01") != routestats_class_index("24P01"));
	/* every well-formed class has a slot of its own, and reads back */
	for (size_t i = 0; i < ROUTESTATS_CLASSES - 1; i++) {
		char code[6];
		snprintf(code, sizeof(code), "%s000", routestats_class_name(i, name));
		assert_int_equal(routestats_class_index(code), i);
	}
	/* malformed: the "??" slot */
	size_t bad = ROUTESTATS_CLASSES - 1;
	assert_int_equal(routestats_class_index(NULL), bad);
	assert_int_equal(routestats_class_index("42"), bad);
	assert_int_equal(routestats_class_index("4p001"), bad);
	assert_int_equal(routestats_class_index("42P01x"), bad);
	assert_string_equal(routestats_class_name(bad, name), "??");

	RouteStats rs;
	routestats_init(&rs);
	RouteStatsEntry *e = routestats_get(&rs, "v2");
	routestats_error(e, "42P01");
	routestats_error(e, "42703");
	routestats_error(e, "57014");
	routestats_error(e, NULL);
	assert_int_equal(e->errors[routestats_class_index("42000")], 2);
	assert_int_equal(e->errors[routestats_class_index("57000")], 1);
	assert_int_equal(e->errors[bad], 1);
	assert_int_equal(e->transactions, 0); /* errors alone end nothing */
	routestats_free(&rs);
}

static void test_entries(void **state)
{
	(void)state;
	RouteStats rs;
	routestats_init(&rs);
	assert_null(routestats_find(&rs, "v1"));
	RouteStatsEntry *v1 = routestats_get(&rs, "v1");
	RouteStatsEntry *v2 = routestats_get(&rs, "v2");
	assert_non_null(v1);
	assert_ptr_equal(routestats_get(&rs, "v1"), v1);
	assert_ptr_equal(routestats_find(&rs, "v2"), v2);
	assert_int_equal(v1->index, 0);
	assert_int_equal(v2->index, 1);
	assert_string_equal(v2->route, "v2");
	assert_null(routestats_get(&rs, NULL));
	/* entries never move while the table grows */
	char name[16];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		assert_non_null(routestats_get(&rs, name));
	}
	assert_ptr_equal(routestats_find(&rs, "v1"), v1);
	assert_string_equal(rs.entries[1]->route, "v2");
	/* past ROUTESTATS_MAX_ROUTES, new routes are not kept */
	for (int i = 100; rs.n < ROUTESTATS_MAX_ROUTES; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		assert_non_null(routestats_get(&rs, name));
	}
	assert_null(routestats_get(&rs, "one_too_many"));
	assert_true(rs.full_logged);
	assert_ptr_equal(routestats_get(&rs, "v2"), v2); /* old ones still are */
	routestats_free(&rs);
	assert_int_equal(rs.n, 0);
	routestats_free(&rs); /* twice is fine */
}

/* ---- the window ------------------------------------------------------------ */

static void test_window(void **state)
{
	(void)state;
	RouteStatsEntry *e = calloc(1, sizeof(*e));
	assert_non_null(e);
	uint64_t s0 = 5000;
	/* second s0 + i: i transactions, of which i % 3 failed */
	for (int i = 0; i < 10; i++)
		for (int k = 0; k < i; k++)
			routestats_end(e, (s0 + (uint64_t)i) * US + (uint64_t)k, 0, k < i % 3);
	RouteStatsSums w = routestats_window(e, s0 + 9, 1);
	assert_int_equal(w.transactions, 9);
	assert_int_equal(w.failed, 0);
	w = routestats_window(e, s0 + 9, 5); /* 5..9 */
	assert_int_equal(w.transactions, 5 + 6 + 7 + 8 + 9);
	assert_int_equal(w.failed, 2 + 0 + 1 + 2 + 0);
	w = routestats_window(e, s0 + 9, 60);
	assert_int_equal(w.transactions, 45);
	/* seconds later, the old ones fall out; a second without traffic is 0 */
	w = routestats_window(e, s0 + 13, 5); /* 9..13 */
	assert_int_equal(w.transactions, 9);
	w = routestats_window(e, s0 + 100, 60);
	assert_int_equal(w.transactions, 0);
	/* a slot reused 60 s later counts the new second only */
	routestats_end(e, (s0 + 9 + ROUTESTATS_WINDOW) * US, 0, true);
	w = routestats_window(e, s0 + 9 + ROUTESTATS_WINDOW, 1);
	assert_int_equal(w.transactions, 1);
	assert_int_equal(w.failed, 1);
	w = routestats_window(e, s0 + 9, 1); /* that second is gone */
	assert_int_equal(w.transactions, 0);
	/* more than the window is the window; no entry is nothing */
	w = routestats_window(e, s0 + 9 + ROUTESTATS_WINDOW, 1000);
	assert_int_equal(w.transactions, 1);
	w = routestats_window(NULL, s0, 10);
	assert_int_equal(w.transactions, 0);
	/* the totals keep everything */
	assert_int_equal(e->transactions, 46);
	free(e);
}

/* ---- the canary's verdict ----------------------------------------------------- */

/* At second AT, TX transactions of ROUTE end, FAILED of them failed. */
static void traffic(RouteStats *rs, const char *route, uint64_t at, int tx, int failed)
{
	RouteStatsEntry *e = routestats_get(rs, route);
	for (int i = 0; i < tx; i++)
		routestats_end(e, at * US + (uint64_t)i, at * US, i < failed);
}

typedef struct Verdict {
	RouteStats rs;
	Router r;
	char why[600];
} Verdict;

/* A router with default v1 and canary v2 at 10 %, verdict R, S, N. */
static Verdict *verdict_new(double ratio, int window, int min_tx)
{
	Verdict *v = calloc(1, sizeof(*v));
	assert_non_null(v);
	routestats_init(&v->rs);
	router_init(&v->r);
	char err[256];
	assert_true(router_set_default(&v->r, "v1", err, sizeof(err)));
	RouterCanaryOpts o = {.check = {ratio, window, min_tx}};
	assert_true(router_set_canary_opts(&v->r, "v2", 10, &o, err, sizeof(err)));
	return v;
}

static void verdict_free(Verdict *v)
{
	routestats_free(&v->rs);
	router_free(&v->r);
	free(v);
}

static bool verdict_at(Verdict *v, uint64_t now)
{
	bool failed = routestats_canary_verdict(&v->rs, &v->r, 0, now, v->why, sizeof(v->why));
	print_message("# %s: %s\n", failed ? "FAILED" : "ok", v->why);
	return failed;
}

/* The first failing verdict says both rates and the limit; before N
 * canary transactions it says why there is none. */
static void test_verdict_why(void **state)
{
	(void)state;
	Verdict *v = verdict_new(2, 10, 20);
	uint64_t t = 10000;
	assert_false(verdict_at(v, t)); /* no traffic at all */
	traffic(&v->rs, "v1", t, 200, 0);
	traffic(&v->rs, "v2", t, 19, 19);
	assert_false(verdict_at(v, t)); /* 19 < N = 20: no verdict */
	assert_non_null(strstr(v->why, "too few canary transactions"));
	traffic(&v->rs, "v2", t + 1, 1, 1);
	assert_true(verdict_at(v, t + 1));
	assert_string_equal(v->why, "canary v2: 20 of 20 transactions failed (100.0 %) in the last 10 s, default v1: 0 "
				    "of 200 (0.0 %); limit 2 x max(0.0 %, floor 2.5 %) = 5.0 %");
	verdict_free(v);
}

/* One step of a verdict case: TX transactions of ROUTE (NULL: none), FAILED
 * of them failed, at second T0 + AT; then, unless WANT is 0, the verdict at
 * that second must fail (1) or not (-1). */
typedef struct VerdictStep {
	const char *route;
	uint64_t at;
	int tx, failed, want;
} VerdictStep;

typedef struct VerdictCase {
	const char *what;
	double ratio;
	int window, min_tx;
	VerdictStep steps[6];
} VerdictCase;

static const VerdictCase verdict_cases[] = {
	{"every canary transaction fails, the default's none; the window forgets",
	 2, 10, 20, {{"v1", 0, 200, 0, 0}, {"v2", 0, 20, 20, 1}, {NULL, 10, 0, 0, -1}}},
	{"one failure among N, or among more, never fails",
	 2, 10, 20, {{"v2", 0, 20, 1, -1}, {"v2", 0, 80, 0, -1}}},
	{"two among 20 do, with a default without errors", 2, 10, 20, {{"v2", 0, 20, 2, 1}}},
	/* one failure among N exactly at the limit in floating point: the
	 * integer check decides (3 x 1/21 = 1/7) */
	{"R 3, N 7: one failure among 7", 3, 10, 7, {{"v2", 0, 7, 1, -1}}},
	{"the default's error rate never fails, with R = 1; a little more does (34/110 > 30 %)",
	 1, 10, 20, {{"v1", 0, 1000, 300, 0}, {"v2", 0, 100, 30, -1}, {"v2", 0, 10, 4, 1}}},
	{"R x the default's rate above the floor: 2 x 20 % = 40 %, over a 30 s window",
	 2, 30, 20,
	 {{"v1", 0, 100, 20, 0}, {"v2", 0, 100, 40, 0}, {NULL, 29, 0, 0, -1}, {"v2", 29, 1, 1, 1}, {NULL, 30, 0, 0, -1}}},
	{"the floor: 2 % of failures with a perfect default is R = 2 x 1 %: no; 3 % is",
	 2, 10, 100, {{"v1", 0, 1000, 0, 0}, {"v2", 0, 1000, 20, -1}, {"v2", 1, 1000, 40, 1}}},
	{"a default without transactions counts as 0 %; the floor holds",
	 2, 10, 20, {{"v2", 0, 100, 3, -1}, {"v2", 0, 10, 10, 1}}},
};

static void test_verdict(void **state)
{
	(void)state;
	uint64_t t0 = 10000;
	for (size_t i = 0; i < sizeof(verdict_cases) / sizeof(verdict_cases[0]); i++) {
		const VerdictCase *vc = &verdict_cases[i];
		print_message("# %s\n", vc->what);
		Verdict *v = verdict_new(vc->ratio, vc->window, vc->min_tx);
		for (size_t k = 0; k < sizeof(vc->steps) / sizeof(vc->steps[0]); k++) {
			const VerdictStep *st = &vc->steps[k];
			if (st->route)
				traffic(&v->rs, st->route, t0 + st->at, st->tx, st->failed);
			if (st->want && verdict_at(v, t0 + st->at) != (st->want > 0))
				fail_msg("%s, step %zu: the verdict %s: %s", vc->what, k + 1,
					 st->want > 0 ? "did not fail" : "failed", v->why);
		}
		verdict_free(v);
	}
}

static void test_verdict_since(void **state)
{
	(void)state;
	Verdict *v = verdict_new(2, 30, 20);
	uint64_t t = 20000;
	traffic(&v->rs, "v2", t, 50, 50);
	char why[600];
	assert_true(routestats_canary_verdict(&v->rs, &v->r, t - 5, t + 3, why, sizeof(why)));
	/* a canary set after those failures does not see them */
	assert_false(routestats_canary_verdict(&v->rs, &v->r, t + 1, t + 3, why, sizeof(why)));
	assert_non_null(strstr(why, "0 of 0 transactions failed (0.0 %) in the last 3 s"));
	/* before its first second, nothing counts */
	assert_false(routestats_canary_verdict(&v->rs, &v->r, t + 1, t, why, sizeof(why)));
	assert_non_null(strstr(why, "0 of 0 transactions failed (0.0 %) in the last 0 s"));
	traffic(&v->rs, "v2", t + 3, 20, 20);
	assert_true(routestats_canary_verdict(&v->rs, &v->r, t + 1, t + 3, why, sizeof(why)));
	/* no canary, or no verdict asked: never */
	char err[256];
	assert_true(router_set_canary(&v->r, "v2", 10, err, sizeof(err)));
	assert_false(routestats_canary_verdict(&v->rs, &v->r, 0, t + 3, why, sizeof(why)));
	assert_string_equal(why, "no canary verdict is asked");
	assert_true(router_set_canary(&v->r, NULL, 0, err, sizeof(err)));
	assert_false(routestats_canary_verdict(&v->rs, &v->r, 0, t + 3, why, sizeof(why)));
	verdict_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets), cmocka_unit_test(test_percentiles), cmocka_unit_test(test_classes),
		cmocka_unit_test(test_entries), cmocka_unit_test(test_window),      cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_verdict_why), cmocka_unit_test(test_verdict_since),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
