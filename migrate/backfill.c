/*
 * migrate/backfill.c: the batched backfill of a STEP_BACKFILL step (see
 * exec.h): keyset batches (or heap-block ranges without a key), each in one
 * transaction that also saves its progress, so a stopped backfill resumes
 * where its last committed batch ended.
 */
#include "migrate/exec.h"
#include "migrate/exec_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *exec_qname(const char *schema, const char *name)
{
	SqlBuf b;
	sqlbuf_init(&b);
	sqlbuf_qname(&b, schema, name);
	return sqlbuf_steal(&b);
}

/* SQL whose $1 is the quoted name of TABLE in e->schema (for ::regclass). */
PGresult *exec_table_query(Exec *e, const char *table, const char *sql)
{
	char *t = exec_qname(e->schema, table);
	const char *params[1] = {t};
	PGresult *r = t ? exec_query(e, sql, 1, params) : NULL;
	if (!t)
		exec_set_err(e, "out of memory");
	free(t);
	return r;
}

/* Saves PROGRESS as backfill[TABLE] of the running migration, or as its
 * range RANGE (>= 0) of a parallel backfill. */
static bool backfill_save(Exec *e, const char *table, int range, json_t *progress)
{
	char *js = json_dumps(progress, JSON_COMPACT);
	char idx[16];
	snprintf(idx, sizeof idx, "%d", range);
	const char *params[5] = {e->schema, e->mig_name, table, js, idx};
	PGresult *r = js ? exec_query(e, range >= 0 ? PLAN_BACKFILL_SAVE_RANGE_SQL : PLAN_BACKFILL_SAVE_SQL,
				      range >= 0 ? 5 : 4, params)
			 : NULL;
	free(js);
	PQclear(r);
	return r != NULL;
}

static json_t *backfill_load(Exec *e, const char *table)
{
	const char *params[3] = {e->schema, e->mig_name, table};
	PGresult *r = exec_query(e, "SELECT backfill -> $3 FROM pgflip.migrations WHERE schema = $1 AND name = $2", 3, params);
	json_t *j = NULL;
	if (r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		j = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
	PQclear(r);
	return j ? j : json_object();
}

static void progress_bar(Exec *e, const char *table, long long done, long long total, bool end)
{
	if (!e->opt.progress || e->opt.quiet)
		return;
	if (total > 0)
		fprintf(stderr, "\rbackfill %s: %lld / ~%lld rows (%3.0f%%)", table, done, total,
			done >= total ? 100.0 : 100.0 * (double)done / (double)total);
	else
		fprintf(stderr, "\rbackfill %s: %lld rows", table, done);
	if (end)
		fputc('\n', stderr);
	fflush(stderr);
}

/* Most key columns a keyset backfill handles (parameters per statement). */
#define BACKFILL_MAX_KEYS 32

/* One run of a backfill step (backfill_run): where it resumes, how far it
 * got, and what it needs for each batch. */
typedef struct Backfill {
	const PlanStep *s;
	json_t *last;              /* keyset: key of the last row done (array of text), or NULL */
	long long done, done0;     /* rows filled so far, and when this run began */
	long long next_block;      /* ctid mode: first heap block of the next batch */
	long long end_block;       /* ctid mode: the table's size in blocks at the run's start */
	long long blocks_per_batch;
	long long total;           /* rows to fill, estimated at the run's start (-1 unknown) */
	char touch[128];           /* ctid mode: a column to set to itself when there is no assignment */
	char *begin;               /* BEGIN + SET LOCALs of every batch */
	long began;                /* this run's start, exec_now_ms() */
	ExecPace pace;             /* rows per batch and pause now (exec_pace) */
	long paced_at;             /* exec_now_ms() of exec_pace's last look (0: none yet) */
	json_t *hi;                /* a worker's range: its last key, inclusive (NULL: to the end) */
	json_t *lo;                /* and the key before its first (NULL: from the start) */
	int range;                 /* the range's index in backfill[table].ranges, -1: not a worker */
} Backfill;

typedef enum BatchResult { BATCH_MORE, BATCH_FINISHED, BATCH_FAILED } BatchResult;

static void backfill_free(Backfill *b)
{
	json_decref(b->last);
	json_decref(b->hi);
	json_decref(b->lo);
	free(b->begin);
}

/*
 * The rows to fill, for progress: pg_class.reltuples when the table was ever
 * vacuumed or analyzed (reltuples >= 0: free, and what the planner believes),
 * else count(*) under lock_timeout (a table that new has not had the time to
 * grow large); -1 when that count cannot get its lock. Also the table's size
 * in blocks, where a ctid backfill ends. False with e->err on a failure.
 */
static bool backfill_estimate(Exec *e, Backfill *b)
{
	PGresult *r = exec_table_query(e, b->s->table,
				  "SELECT c.reltuples::bigint, pg_relation_size(c.oid) / current_setting('block_size')::bigint "
				  "FROM pg_class c WHERE c.oid = $1::regclass");
	if (!r)
		return false;
	b->total = atoll(PQgetvalue(r, 0, 0));
	b->end_block = atoll(PQgetvalue(r, 0, 1));
	PQclear(r);
	if (b->total < 0) {
		SqlBuf q;
		sqlbuf_init(&q);
		sqlbuf_add(&q, "SELECT count(*) FROM ");
		sqlbuf_qname(&q, e->schema, b->s->table);
		char *sql = sqlbuf_steal(&q);
		PGresult *c = sql && exec_begin_tx(e, e->opt.lock_timeout_ms) ? exec_query(e, sql, 0, NULL) : NULL;
		b->total = c ? atoll(PQgetvalue(c, 0, 0)) : -1;
		PQclear(c);
		free(sql);
		exec_rollback_quietly(e);
		e->err[0] = '\0'; /* an unknown total is no failure */
	}
	return true;
}

/* ctid mode: the table's first column, which a batch without assignments
 * sets to itself. */
static bool backfill_touch(Exec *e, Backfill *b)
{
	PGresult *cr = exec_table_query(e, b->s->table,
				   "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
				   "AND NOT attisdropped ORDER BY attnum LIMIT 1");
	if (!cr || PQntuples(cr) != 1) {
		PQclear(cr);
		if (!e->err[0])
			exec_set_err(e, "table %s has no columns", b->s->table);
		return false;
	}
	snprintf(b->touch, sizeof b->touch, "%s", PQgetvalue(cr, 0, 0));
	PQclear(cr);
	return true;
}

/* Fills B for a run of step S from its saved progress PROG (consumed). */
static bool backfill_init(Exec *e, const PlanStep *s, json_t *prog, Backfill *b)
{
	memset(b, 0, sizeof *b);
	b->s = s;
	b->done = b->done0 = json_integer_value(json_object_get(prog, "done"));
	b->last = json_incref(json_object_get(prog, "last"));
	b->next_block = json_integer_value(json_object_get(prog, "next_block"));
	json_decref(prog);
	b->range = -1;
	b->pace.batch = e->opt.batch_size;
	b->pace.pause_pct = 0;
	b->blocks_per_batch = e->opt.batch_size / 100 > 0 ? e->opt.batch_size / 100 : 1;
	if (s->nkeys > BACKFILL_MAX_KEYS) {
		exec_set_err(e, "backfill key of %s has more than %d columns", s->table, BACKFILL_MAX_KEYS);
		return false;
	}
	if (!backfill_estimate(e, b) || (s->nkeys == 0 && !backfill_touch(e, b)))
		return false;
	/* up() runs as the trigger's rules do: names resolve in the tables' schema */
	SqlBuf ltb;
	sqlbuf_init(&ltb);
	sqlbuf_printf(&ltb, "BEGIN; SET LOCAL lock_timeout = '%dms'; SET LOCAL " PLAN_BACKFILL_GUC " = 'on'; "
			    "SET LOCAL search_path = ", e->opt.lock_timeout_ms);
	sqlbuf_ident(&ltb, e->schema);
	b->begin = sqlbuf_steal(&ltb);
	if (!b->begin) {
		exec_set_err(e, "out of memory");
		return false;
	}
	b->began = exec_now_ms();
	e->tx_lock_timeout_ms = 0; /* each batch's BEGIN sets opt.lock_timeout_ms */
	return true;
}

/* Runs a batch's UPDATE SQL (freed here): rows updated, or -1 with e->err
 * and SQLSTATE. */
static long long batch_exec(Exec *e, char *sql, int np, const char *const *params, char st[6])
{
	if (!sql) {
		exec_set_err(e, "out of memory");
		return -1;
	}
	PGresult *r = exec_run_wait(e, sql, np, params, "backfill batch", st);
	free(sql);
	long long n = r ? atoll(PQcmdTuples(r)) : -1;
	PQclear(r);
	return n;
}

/* A keyset batch: its bound (the key BATCH_SIZE rows on), then the UPDATE of
 * (last, bound]; *UPPER gets the bound, NULL when this is the final batch. */
static long long batch_keyset(Exec *e, const Backfill *b, json_t **upper, char st[6])
{
	const PlanStep *s = b->s;
	const char *params[1 + 2 * BACKFILL_MAX_KEYS];
	char off[24];
	bool lower = json_array_size(b->last) == s->nkeys;
	int np = 0;
	snprintf(off, sizeof off, "%d", b->pace.batch - 1);
	params[np++] = off;
	for (size_t i = 0; lower && i < s->nkeys; i++)
		params[np++] = json_string_value(json_array_get(b->last, i));
	bool hi = b->hi != NULL;
	for (size_t i = 0; hi && i < s->nkeys; i++)
		params[np++] = json_string_value(json_array_get(b->hi, i));
	char *bsql = plan_backfill_bound_sql(e->schema, s, lower, hi);
	PGresult *br = bsql ? exec_run_wait(e, bsql, np, params, "backfill batch", st) : NULL;
	free(bsql);
	if (!br) {
		if (!st[0] && !e->err[0])
			exec_set_err(e, "out of memory");
		return -1;
	}
	*upper = PQntuples(br) == 1 ? json_loads(PQgetvalue(br, 0, 0), 0, NULL) : NULL;
	PQclear(br);
	np = 0;
	for (size_t i = 0; lower && i < s->nkeys; i++)
		params[np++] = json_string_value(json_array_get(b->last, i));
	/* the final batch of a range ends at the range's end */
	const json_t *end = *upper ? *upper : b->hi;
	for (size_t i = 0; end && i < s->nkeys; i++)
		params[np++] = json_string_value(json_array_get(end, i));
	return batch_exec(e, plan_backfill_update_sql(e->schema, s, lower, end != NULL, b->touch), np, params, st);
}

/* A ctid batch: BLOCKS_PER_BATCH heap blocks from NEXT_BLOCK. */
static long long batch_ctid(Exec *e, const Backfill *b, char st[6])
{
	char a1[24], a2[24];
	snprintf(a1, sizeof a1, "%lld", b->next_block);
	snprintf(a2, sizeof a2, "%lld", b->blocks_per_batch);
	const char *params[2] = {a1, a2};
	return batch_exec(e, plan_backfill_update_sql(e->schema, b->s, false, false, b->touch), 2, params, st);
}

/*
 * One batch in one transaction, which also saves its progress: B moves on
 * only once that transaction committed, so a failed batch (retried on a lock
 * timeout, SQLSTATE in ST) runs again from the same place.
 */
static BatchResult backfill_batch(Exec *e, Backfill *b, char st[6])
{
	st[0] = '\0';
	if (!exec_simple(e, b->begin))
		return BATCH_FAILED;
	json_t *upper = NULL;
	long long n = b->s->nkeys ? batch_keyset(e, b, &upper, st) : batch_ctid(e, b, st);
	long long next_block = b->next_block + (b->s->nkeys ? 0 : b->blocks_per_batch);
	bool finished = b->s->nkeys ? upper == NULL : next_block > b->end_block;
	json_t *last = upper ? upper : b->last;
	json_t *prog = n >= 0 ? json_pack("{s:I, s:b}", "done", (json_int_t)(b->done + n), "finished", finished) : NULL;
	if (prog && last)
		json_object_set(prog, "last", last);
	if (prog && b->s->nkeys == 0)
		json_object_set_new(prog, "next_block", json_integer(next_block));
	if (prog && b->range >= 0) {
		json_object_set(prog, "lo", b->lo ? b->lo : json_null());
		json_object_set(prog, "hi", b->hi ? b->hi : json_null());
	}
	bool saved = prog && backfill_save(e, b->s->table, b->range, prog);
	json_decref(prog);
	PGresult *cr = saved ? exec_run_wait(e, "COMMIT", 0, NULL, NULL, st) : NULL;
	PQclear(cr);
	if (!cr) {
		if (n >= 0 && !prog)
			exec_set_err(e, "out of memory");
		json_decref(upper);
		exec_rollback_quietly(e);
		return BATCH_FAILED;
	}
	b->done += n;
	b->next_block = next_block;
	if (upper) {
		json_decref(b->last);
		b->last = upper;
	}
	return finished ? BATCH_FINISHED : BATCH_MORE;
}

/* P at full speed: whole batches, no pause. */
static bool pace_full(const ExecPace *p, int max_batch)
{
	return p->batch >= max_batch && p->pause_pct == 0;
}

int exec_pace(ExecPace *p, double ratio, double max_ratio, int max_batch)
{
	if (max_ratio <= 0 || ratio < 0)
		return 0;
	if (ratio > max_ratio) {
		int batch = p->batch / 2;
		p->batch = batch < EXEC_MIN_BATCH_SIZE ? (max_batch < EXEC_MIN_BATCH_SIZE ? max_batch : EXEC_MIN_BATCH_SIZE)
						       : batch;
		int pause = p->pause_pct < EXEC_PACE_MIN_PAUSE_PCT ? EXEC_PACE_MIN_PAUSE_PCT : p->pause_pct * 2;
		p->pause_pct = pause > EXEC_PACE_MAX_PAUSE_PCT ? EXEC_PACE_MAX_PAUSE_PCT : pause;
		return -1;
	}
	if (ratio >= 0.8 * max_ratio || pace_full(p, max_batch))
		return 0;
	if (p->pause_pct > 0) {
		p->pause_pct /= 2;
		if (p->pause_pct < EXEC_PACE_MIN_PAUSE_PCT)
			p->pause_pct = 0;
	} else {
		long batch = (long)p->batch + p->batch / 4 + 1;
		p->batch = batch > max_batch ? max_batch : (int)batch;
	}
	return 1;
}

/* After a batch: the pace by the foreground's latency (hooks.load): slower
 * at once when over the limit, faster at most every EXEC_PACE_EVERY_MS; a
 * change of direction is logged. */
static void backfill_adapt(Exec *e, Backfill *b)
{
	if (!e->hooks.load || e->opt.max_latency_ratio <= 0)
		return;
	double ratio = e->hooks.load(e->hooks.arg);
	long now = exec_now_ms();
	bool over = ratio > e->opt.max_latency_ratio;
	if (!over && now - b->paced_at < EXEC_PACE_EVERY_MS)
		return;
	b->paced_at = now;
	bool was_full = pace_full(&b->pace, e->opt.batch_size);
	int dir = exec_pace(&b->pace, ratio, e->opt.max_latency_ratio, e->opt.batch_size);
	if (b->s->nkeys == 0)
		b->blocks_per_batch = b->pace.batch / 100 > 0 ? b->pace.batch / 100 : 1;
	if (dir < 0 && was_full)
		exec_log(e, "backfill of %s slows down: foreground p99 is %.2fx its baseline (limit %.2fx): %d rows a "
			    "batch, pauses of %d %% of a batch's time",
			 b->s->table, ratio, e->opt.max_latency_ratio, b->pace.batch, b->pace.pause_pct);
	if (dir > 0 && pace_full(&b->pace, e->opt.batch_size))
		exec_log(e, "backfill of %s back at full speed: foreground p99 is %.2fx its baseline", b->s->table,
			 ratio);
}

/* Reports B's progress to hooks.backfill and the progress bar; at the END,
 * the total is what was done. */
static void backfill_report(Exec *e, const Backfill *b, bool end)
{
	long took = exec_now_ms() - b->began;
	double rate = took > 0 && b->done > b->done0 ? (double)(b->done - b->done0) * 1000.0 / (double)took : 0.0;
	long long total = b->total;
	if (end || (total >= 0 && b->done > total))
		total = b->done; /* the estimate was off: now the count is known, or at least this */
	if (e->hooks.backfill) {
		ExecBackfill p = {b->s->table, b->done, total, rate,
				  rate > 0 && total >= 0 ? (double)(total - b->done) / rate : -1.0};
		e->hooks.backfill(e->hooks.arg, &p);
	}
	progress_bar(e, b->s->table, b->done, total, end);
}

/* What backfill_loop calls after each committed batch: B's progress, at
 * the END of its rows. */
typedef void (*BatchDone)(Exec *e, Backfill *b, bool end, void *arg);

/* Runs B's batches until its rows are done (true), a cancel or a failure
 * (false, e->err); retries a batch that hit lock_timeout; paces itself
 * (backfill_adapt, ExecOptions.batch_delay_ms). */
static bool backfill_loop(Exec *e, Backfill *b, BatchDone after, void *arg)
{
	int attempt = 0;
	long start = exec_now_ms();
	while (b->s->nkeys > 0 || b->next_block <= b->end_block) {
		if (exec_cancelled(e))
			return false;
		char st[6];
		int64_t t0 = exec_now_ms();
		BatchResult r = backfill_batch(e, b, st);
		int64_t took = exec_now_ms() - t0;
		if (r == BATCH_FAILED) {
			if (strcmp(st, SQLSTATE_LOCK_NOT_AVAILABLE) == 0 && exec_backoff(e, attempt++, start, "backfill batch"))
				continue;
			return false;
		}
		attempt = 0;
		start = exec_now_ms();
		after(e, b, r == BATCH_FINISHED, arg);
		if (r == BATCH_FINISHED)
			break;
		backfill_adapt(e, b);
		int64_t pause = e->opt.batch_delay_ms + took * b->pace.pause_pct / 100;
		if (pause > 0)
			exec_sleep_ms(pause);
	}
	return true;
}

static void report_after(Exec *e, Backfill *b, bool end, void *arg)
{
	(void)arg;
	backfill_report(e, b, end);
}

static void log_done(Exec *e, const PlanStep *s, long long done, long began)
{
	long took = exec_now_ms() - began;
	exec_log(e, "backfilled %lld rows of %s.%s in %ld ms (%.0f rows/s)", done, e->schema, s->table, took,
		 took > 0 ? (double)done * 1000.0 / (double)took : 0.0);
}

/* ---- parallel backfill: disjoint key ranges on ExecOptions.backfill_workers connections ---- */

typedef struct Shared {
	pthread_mutex_t mu;
	long long done;            /* rows done in every range, earlier runs included */
	int running;               /* workers still running */
	char err[1024];            /* the first worker's failure, "" none */
	bool cancelled;
} Shared;

typedef struct Worker {
	pthread_t th;
	Exec *parent;
	Backfill b;                /* its range; b.done counts its rows */
	Shared *sh;
	bool started;
} Worker;

static void worker_after(Exec *e, Backfill *b, bool end, void *arg)
{
	(void)e;
	(void)end;
	Worker *w = arg;
	pthread_mutex_lock(&w->sh->mu);
	w->sh->done += b->done - b->done0;
	b->done0 = b->done;
	pthread_mutex_unlock(&w->sh->mu);
}

static void *worker_main(void *arg)
{
	Worker *w = arg;
	Exec *p = w->parent, we;
	ExecOptions opt = p->opt;
	opt.progress = false;
	bool ok = exec_connect(&we, p->dsn, p->schema, &opt);
	if (ok) {
		/* thread-safe hooks only: log, load and cancel */
		we.hooks = (ExecHooks){.log = p->hooks.log, .load = p->hooks.load, .cancel = p->hooks.cancel,
				       .arg = p->hooks.arg};
		we.mig_name = p->mig_name;
		ok = backfill_loop(&we, &w->b, worker_after, w);
	}
	pthread_mutex_lock(&w->sh->mu);
	if (!ok && !w->sh->err[0])
		snprintf(w->sh->err, sizeof w->sh->err, "backfill worker %d: %.900s", w->b.range + 1, we.err);
	w->sh->cancelled |= we.cancelled;
	w->sh->running--;
	pthread_mutex_unlock(&w->sh->mu);
	exec_close(&we);
	return NULL;
}

/* The keys that cut S's table into N ranges of about TOTAL / N rows: a JSON
 * array of keys (each a JSON array of texts), fewer when the table is
 * smaller than its estimate; NULL with e->err on a failure. */
static json_t *split_keys(Exec *e, const PlanStep *s, long long total, int n)
{
	json_t *cuts = json_array();
	char *sql = plan_backfill_bound_sql(e->schema, s, false, false);
	for (int k = 1; cuts && sql && k < n; k++) {
		char off[24];
		snprintf(off, sizeof off, "%lld", total * k / n - 1);
		const char *params[1] = {off};
		PGresult *r = exec_query(e, sql, 1, params);
		if (!r) {
			json_decref(cuts);
			cuts = NULL;
			break;
		}
		json_t *key = PQntuples(r) == 1 ? json_loads(PQgetvalue(r, 0, 0), 0, NULL) : NULL;
		PQclear(r);
		if (!key)
			break;
		json_t *prev = json_array_get(cuts, json_array_size(cuts) - 1);
		if (prev && json_equal(prev, key))
			json_decref(key);
		else
			json_array_append_new(cuts, key);
	}
	free(sql);
	if (!sql && cuts) {
		exec_set_err(e, "out of memory");
		json_decref(cuts);
		cuts = NULL;
	}
	return cuts;
}

/* The ranges of a new parallel backfill (cut at CUTS), saved as
 * backfill[table] before any worker starts. */
static json_t *ranges_new(Exec *e, const PlanStep *s, json_t *cuts)
{
	json_t *ranges = json_array();
	size_t n = json_array_size(cuts) + 1;
	for (size_t i = 0; ranges && i < n; i++) {
		json_t *lo = i ? json_array_get(cuts, i - 1) : json_null(), *hi = i + 1 < n ? json_array_get(cuts, i) : json_null();
		json_array_append_new(ranges, json_pack("{s:O, s:O, s:O, s:I, s:b}", "lo", lo, "hi", hi, "last", lo, "done",
							 (json_int_t)0, "finished", 0));
	}
	json_t *prog = ranges ? json_pack("{s:O}", "ranges", ranges) : NULL;
	bool ok = prog && backfill_save(e, s->table, -1, prog);
	json_decref(prog);
	if (!ok) {
		json_decref(ranges);
		if (!e->err[0])
			exec_set_err(e, "out of memory");
		return NULL;
	}
	return ranges;
}

/* Runs the unfinished RANGES (JSON array, see ranges_new) of S on one
 * worker thread each, reporting their progress from here every 200 ms. */
static bool workers_run(Exec *e, const PlanStep *s, json_t *ranges, Backfill *b)
{
	size_t n = json_array_size(ranges);
	Worker *w = calloc(n, sizeof *w);
	Shared sh = {.done = b->done};
	if (!w) {
		exec_set_err(e, "out of memory");
		return false;
	}
	pthread_mutex_init(&sh.mu, NULL);
	size_t started = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_array_get(ranges, i);
		if (json_is_true(json_object_get(r, "finished")))
			continue;
		Backfill *wb = &w[i].b;
		*wb = *b; /* the step, its estimate, BEGIN text (shared, read only) and pace */
		wb->range = (int)i;
		wb->done = wb->done0 = json_integer_value(json_object_get(r, "done"));
		wb->last = json_is_array(json_object_get(r, "last")) ? json_incref(json_object_get(r, "last")) : NULL;
		wb->lo = json_is_array(json_object_get(r, "lo")) ? json_incref(json_object_get(r, "lo")) : NULL;
		wb->hi = json_is_array(json_object_get(r, "hi")) ? json_incref(json_object_get(r, "hi")) : NULL;
		w[i].parent = e;
		w[i].sh = &sh;
		pthread_mutex_lock(&sh.mu);
		sh.running++;
		pthread_mutex_unlock(&sh.mu);
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
			pthread_mutex_lock(&sh.mu);
			sh.running--;
			snprintf(sh.err, sizeof sh.err, "cannot start a backfill worker thread");
			pthread_mutex_unlock(&sh.mu);
			break;
		}
		w[i].started = true;
		started++;
	}
	exec_log(e, "backfilling %s.%s on %zu connections (disjoint key ranges)", e->schema, s->table, started);
	for (;;) {
		pthread_mutex_lock(&sh.mu);
		int running = sh.running;
		b->done = sh.done;
		pthread_mutex_unlock(&sh.mu);
		backfill_report(e, b, false);
		if (running == 0)
			break;
		exec_sleep_ms(200);
	}
	for (size_t i = 0; i < n; i++) {
		if (w[i].started)
			pthread_join(w[i].th, NULL);
		json_decref(w[i].b.last);
		json_decref(w[i].b.lo);
		json_decref(w[i].b.hi);
	}
	free(w);
	pthread_mutex_destroy(&sh.mu);
	if (sh.err[0]) {
		e->cancelled = sh.cancelled;
		exec_set_err(e, "%s", sh.cancelled ? "cancelled" : sh.err);
		return false;
	}
	json_t *prog = json_pack("{s:I, s:b}", "done", (json_int_t)b->done, "finished", 1);
	bool ok = prog && backfill_save(e, s->table, -1, prog);
	json_decref(prog);
	backfill_report(e, b, true);
	return ok;
}

/* Whether step S, with saved progress PROG, runs on workers: its ranges
 * (a new reference; new ones cut and saved when the backfill begins), or
 * NULL to run on this connection alone (one worker, no key, a backfill
 * begun alone, a table too small to cut, or a failure with e->err). */
static json_t *parallel_ranges(Exec *e, const PlanStep *s, const json_t *prog, const Backfill *b)
{
	json_t *saved = json_object_get(prog, "ranges");
	if (json_is_array(saved))
		return json_incref(saved); /* a parallel backfill resumes as it began */
	int n = e->opt.backfill_workers;
	if (n <= 1 || s->nkeys == 0 || b->done > 0 || b->last || b->total < 2LL * e->opt.batch_size)
		return NULL;
	json_t *cuts = split_keys(e, s, b->total, n);
	json_t *ranges = cuts && json_array_size(cuts) > 0 ? ranges_new(e, s, cuts) : NULL;
	json_decref(cuts);
	return ranges;
}

bool backfill_run(Exec *e, const PlanStep *s)
{
	json_t *prog = backfill_load(e, s->table);
	if (json_is_true(json_object_get(prog, "finished"))) {
		json_decref(prog);
		return true;
	}
	Backfill b;
	json_t *hold = json_incref(prog); /* backfill_init consumes PROG */
	if (!backfill_init(e, s, prog, &b)) {
		json_decref(hold);
		backfill_free(&b);
		return false;
	}
	e->err[0] = '\0'; /* parallel_ranges says a failure by e->err alone */
	json_t *ranges = parallel_ranges(e, s, hold, &b);
	json_decref(hold);
	if (!ranges && e->err[0]) {
		backfill_free(&b);
		return false;
	}
	bool ok;
	if (ranges) {
		long long done = 0;
		for (size_t i = 0; i < json_array_size(ranges); i++)
			done += json_integer_value(json_object_get(json_array_get(ranges, i), "done"));
		b.done = b.done0 = done;
		ok = workers_run(e, s, ranges, &b);
		json_decref(ranges);
	} else {
		exec_log(e, "backfilling %s.%s (%s)", e->schema, s->table, s->nkeys ? "keyset batches" : "by ctid ranges");
		backfill_report(e, &b, false);
		ok = backfill_loop(e, &b, report_after, NULL);
	}
	if (ok)
		log_done(e, s, b.done, b.began);
	backfill_free(&b);
	return ok;
}

