/*
 * tests/unit/test_pace.c: unit tests of the backfill's pace (exec_pace,
 * migrate/backfill.c) and of the foreground latency ring it is fed from
 * (proxy/loadwatch.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "migrate/exec.h"
#include "proxy/proxy.h"
#include "proxy/loadwatch.h"

/* Over the limit: halves the batch down to the minimum, pauses longer up
 * to the maximum, and never stops. */
static void test_pace_slows_down(void **state)
{
	(void)state;
	ExecPace p = {10000, 0};
	assert_int_equal(exec_pace(&p, 1.5, 1.2, 10000), -1);
	assert_int_equal(p.batch, 5000);
	assert_int_equal(p.pause_pct, EXEC_PACE_MIN_PAUSE_PCT);
	for (int i = 0; i < 20; i++)
		assert_int_equal(exec_pace(&p, 3.0, 1.2, 10000), -1);
	assert_int_equal(p.batch, EXEC_MIN_BATCH_SIZE);
	assert_int_equal(p.pause_pct, EXEC_PACE_MAX_PAUSE_PCT);
}

/* Under 0.8 x the limit: the pause goes first, then the batch grows back
 * to the configured size, not past it. */
static void test_pace_speeds_up(void **state)
{
	(void)state;
	ExecPace p = {EXEC_MIN_BATCH_SIZE, EXEC_PACE_MAX_PAUSE_PCT};
	int steps = 0;
	while (exec_pace(&p, 0.5, 1.2, 10000) > 0 && steps < 100) {
		if (p.batch > EXEC_MIN_BATCH_SIZE)
			assert_int_equal(p.pause_pct, 0);
		steps++;
	}
	assert_int_equal(p.batch, 10000);
	assert_int_equal(p.pause_pct, 0);
	assert_true(steps > 5);
	assert_int_equal(exec_pace(&p, 0.5, 1.2, 10000), 0);
}

/* In the dead band, unknown load, or no limit: nothing moves. */
static void test_pace_holds(void **state)
{
	(void)state;
	ExecPace p = {2000, 40};
	assert_int_equal(exec_pace(&p, 1.1, 1.2, 10000), 0);
	assert_int_equal(exec_pace(&p, -1, 1.2, 10000), 0);
	assert_int_equal(exec_pace(&p, 9.0, 0, 10000), 0);
	assert_int_equal(p.batch, 2000);
	assert_int_equal(p.pause_pct, 40);
	/* a configured batch under the minimum stays the floor */
	ExecPace q = {100, 0};
	exec_pace(&q, 5.0, 1.2, 100);
	assert_int_equal(q.batch, 100);
	assert_int_equal(q.pause_pct, EXEC_PACE_MIN_PAUSE_PCT);
}

/* Transactions of LAT_US each, N of them, ended into RS's route "r". */
static void end_n(RouteStats *rs, int n, uint64_t lat_us)
{
	RouteStatsEntry *e = routestats_get(rs, "r");
	for (int i = 0; i < n; i++)
		routestats_end(e, 1000000 + lat_us, 1000000, false);
}

/* The ring's p99 covers the last seconds only; the ratio is against the
 * baseline taken before, with its 1 ms floor. */
static void test_loadwatch(void **state)
{
	(void)state;
	RouteStats rs;
	routestats_init(&rs);
	LoadWatch *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	uint64_t us;
	assert_false(loadwatch_p99(w, 3, &us));
	loadwatch_tick(w, &rs);
	for (int s = 0; s < 10; s++) { /* 10 seconds of 100 transactions of 2 ms */
		end_n(&rs, 100, 2000);
		loadwatch_tick(w, &rs);
	}
	loadwatch_set_baseline(w);
	assert_true(w->baseline_us > 1950 && w->baseline_us < 2050);
	assert_true(loadwatch_ratio(w) > 0.95 && loadwatch_ratio(w) < 1.05);
	for (int s = 0; s < 3; s++) { /* then 3 seconds at 6 ms */
		end_n(&rs, 100, 6000);
		loadwatch_tick(w, &rs);
	}
	assert_true(loadwatch_ratio(w) > 2.9 && loadwatch_ratio(w) < 3.1);
	assert_true(loadwatch_p99(w, 3, &us) && us > 5900 && us < 6100);
	loadwatch_tick(w, &rs); /* a second without transactions: 2 of 3 seconds at 6 ms still */
	assert_true(loadwatch_ratio(w) > 2.9);
	for (int s = 0; s < 3; s++)
		loadwatch_tick(w, &rs); /* quiet: too few to say */
	assert_true(loadwatch_ratio(w) < 0);
	/* a baseline under 1 ms counts as 1 ms */
	for (int s = 0; s < 10; s++) {
		end_n(&rs, 100, 200);
		loadwatch_tick(w, &rs);
	}
	loadwatch_set_baseline(w);
	end_n(&rs, 100, 900);
	loadwatch_tick(w, &rs);
	assert_true(loadwatch_ratio(w) < 1.0);
	free(w);
	routestats_free(&rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pace_slows_down),
		cmocka_unit_test(test_pace_speeds_up),
		cmocka_unit_test(test_pace_holds),
		cmocka_unit_test(test_loadwatch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
