/*
 * migrate/exec.c: runs plan steps against PostgreSQL (see exec.h for the
 * contract): lock_timeout + retry with backoff and jitter, blocker logging
 * through a second connection, keyset backfill with progress persisted in
 * the same transaction as each batch, and the catalog reader.
 *
 * No static state: everything lives in the Exec (the retry jitter's random
 * state too), so flows may run on several threads at once. What happens is
 * reported through e->hooks (exec.h) as well as logged.
 */
#include "migrate/exec.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* SQLSTATE lock_not_available: lock_timeout expired (PostgreSQL appendix A). */
#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"

void exec_options_default(ExecOptions *o)
{
	o->lock_timeout_ms = EXEC_LOCK_TIMEOUT_MS;
	o->retry_total_ms = EXEC_RETRY_TOTAL_MS;
	o->batch_size = EXEC_BATCH_SIZE;
	o->batch_delay_ms = 0;
	o->progress = isatty(2);
	o->quiet = false;
}

int64_t exec_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void exec_sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void exec_vsay(const char *fmt, va_list ap)
{
	fputs("pgflip migrate: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* To hooks.log when set, else on stderr (unless QUIET). */
static void exec_vline(Exec *e, bool quiet, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
static void exec_vline(Exec *e, bool quiet, const char *fmt, va_list ap)
{
	if (e->hooks.log) {
		char line[2048];
		vsnprintf(line, sizeof line, fmt, ap);
		e->hooks.log(e->hooks.arg, line);
	} else if (!quiet) {
		exec_vsay(fmt, ap);
	}
}

void exec_log(Exec *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	exec_vline(e, e->opt.quiet, fmt, ap);
	va_end(ap);
}

void exec_warn(Exec *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	exec_vline(e, false, fmt, ap);
	va_end(ap);
}

static void set_err(Exec *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(Exec *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->err, sizeof e->err, fmt, ap);
	va_end(ap);
	/* one line: libpq messages end in newlines and may carry DETAIL lines */
	for (char *p = e->err; *p; p++)
		if (*p == '\n')
			*p = (p[1] ? ' ' : '\0');
}

bool exec_cancelled(Exec *e)
{
	if (!e->hooks.cancel || !atomic_load(e->hooks.cancel))
		return false;
	e->cancelled = true;
	set_err(e, "cancelled");
	return true;
}

static void notice_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* SET ROLE e->opt.role on e->conn (nothing when unset). */
static bool exec_set_role(Exec *e)
{
	const char *role = e->opt.role;
	if (!role || !role[0])
		return true;
	SqlBuf b;
	sqlbuf_init(&b);
	sqlbuf_add(&b, "SET ROLE ");
	sqlbuf_ident(&b, role);
	char *sql = sqlbuf_steal(&b);
	if (!sql) {
		set_err(e, "out of memory");
		return false;
	}
	PGresult *r = exec_query(e, sql, 0, NULL);
	free(sql);
	PQclear(r);
	if (!r) {
		char keep[sizeof e->err];
		memcpy(keep, e->err, sizeof keep);
		set_err(e, "cannot SET ROLE \"%s\": %s", role, keep);
	}
	return r != NULL;
}

bool exec_connect(Exec *e, const char *dsn, const char *schema, const ExecOptions *opt)
{
	memset(e, 0, sizeof *e);
	e->opt = *opt;
	e->dsn = strdup(dsn ? dsn : "");
	e->schema = strdup(schema);
	if (!e->dsn || !e->schema) {
		set_err(e, "out of memory");
		return false;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	srand48_r((long)ts.tv_nsec ^ (long)ts.tv_sec ^ (long)(uintptr_t)e, &e->rng);
	e->conn = PQconnectdb(e->dsn);
	if (PQstatus(e->conn) != CONNECTION_OK) {
		set_err(e, "cannot connect: %s", PQerrorMessage(e->conn));
		return false;
	}
	PQsetNoticeProcessor(e->conn, notice_quiet, NULL);
	PGresult *r = exec_query(e, "SET application_name = 'pgflip migrate'", 0, NULL);
	PQclear(r);
	return r != NULL && exec_set_role(e);
}

void exec_close(Exec *e)
{
	if (e->conn)
		PQfinish(e->conn);
	if (e->monitor)
		PQfinish(e->monitor);
	free(e->dsn);
	free(e->schema);
	e->conn = e->monitor = NULL;
	e->dsn = e->schema = NULL;
}

/* Who blocks backend PID, as one line, from the monitor connection; reports
 * the first blocker to hooks.lock_wait with WAITED_MS. */
static void log_blockers(Exec *e, int pid, const char *what, long waited_ms)
{
	if (!e->monitor) {
		e->monitor = PQconnectdb(e->dsn);
		if (PQstatus(e->monitor) != CONNECTION_OK) {
			exec_log(e, "waiting for a lock (%s); cannot open a monitor connection: %s", what,
				 PQerrorMessage(e->monitor));
			PQfinish(e->monitor);
			e->monitor = NULL;
			return;
		}
	}
	char spid[16];
	snprintf(spid, sizeof spid, "%d", pid);
	const char *params[1] = {spid};
	/* blockers in pg_blocking_pids() order: the first is the one reported */
	PGresult *r = PQexecParams(e->monitor,
				   /* what a role without pg_read_all_stats may see of another
				    * role's session is its user, application_name or backend
				    * type and its locks (state, query and times read NULL or
				    * "<insufficient privilege>"): all are shown */
				   "SELECT coalesce(string_agg(format('pid %s (%s, %s, %s, %s s, holds %s: %s)', a.pid, "
				   "coalesce(a.usename, '?'), coalesce(nullif(a.application_name, ''), a.backend_type, '?'), "
				   "coalesce(a.state, '?'), coalesce(round(extract(epoch FROM now() - a.xact_start)::numeric, 1)::text, '?'), "
				   "coalesce((SELECT string_agg(DISTINCT l.mode, ', ') FROM pg_locks l WHERE l.pid = a.pid AND l.granted "
				   "AND l.locktype = 'relation'), 'no table lock'), coalesce(left(a.query, 60), '?')), '; ' "
				   "ORDER BY b.n), 'none'), (array_agg(a.pid ORDER BY b.n))[1], (array_agg(a.query ORDER BY b.n))[1] "
				   "FROM unnest(pg_blocking_pids($1::int)) WITH ORDINALITY AS b(pid, n) "
				   "JOIN pg_stat_activity a ON a.pid = b.pid",
				   1, NULL, params, NULL, NULL, 0);
	/* "none": the wait ended (timeout or grant) before the monitor looked */
	bool found = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "none") != 0;
	if (found)
		exec_log(e, "waiting for a lock (%s); blocked by %s", what, PQgetvalue(r, 0, 0));
	if (e->hooks.lock_wait)
		e->hooks.lock_wait(e->hooks.arg, waited_ms, found ? atoi(PQgetvalue(r, 0, 1)) : 0,
				   found && !PQgetisnull(r, 0, 2) ? PQgetvalue(r, 0, 2) : NULL);
	PQclear(r);
}

/* Sends SQL and waits for all its results, logging blockers once when the wait
 * passes a quarter of the lock timeout. Returns the last result (caller clears) or
 * NULL with e->err; *SQLSTATE receives the error code ("" when none). */
static PGresult *run_wait(Exec *e, const char *sql, int nparams, const char *const *params, const char *what,
			  char sqlstate[6])
{
	sqlstate[0] = '\0';
	int ok = nparams ? PQsendQueryParams(e->conn, sql, nparams, NULL, params, NULL, NULL, 0) : PQsendQuery(e->conn, sql);
	if (!ok) {
		set_err(e, "%s", PQerrorMessage(e->conn));
		return NULL;
	}
	long start = exec_now_ms();
	bool logged = false;
	int sock = PQsocket(e->conn);
	/* look for blockers a quarter into the lock timeout, so the monitor's
	 * query lands while the wait is still on */
	long look_after = e->opt.lock_timeout_ms / 4 > 10 ? e->opt.lock_timeout_ms / 4 : 10;
	while (PQisBusy(e->conn)) {
		struct pollfd pfd = {.fd = sock, .events = POLLIN};
		int n = poll(&pfd, 1, 20);
		if (n < 0 && errno != EINTR) {
			char buf[128];
			set_err(e, "poll: %s", strerror_r(errno, buf, sizeof buf));
			return NULL;
		}
		if (!PQconsumeInput(e->conn)) {
			set_err(e, "%s", PQerrorMessage(e->conn));
			return NULL;
		}
		if (!logged && what && exec_now_ms() - start > look_after && PQisBusy(e->conn)) {
			logged = true;
			log_blockers(e, PQbackendPID(e->conn), what, exec_now_ms() - start);
		}
	}
	if (logged && e->hooks.lock_wait)
		e->hooks.lock_wait(e->hooks.arg, 0, 0, NULL);
	PGresult *last = NULL, *r;
	bool failed = false;
	while ((r = PQgetResult(e->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
			if (!failed) {
				const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
				snprintf(sqlstate, 6, "%s", code ? code : "");
				set_err(e, "%s", PQresultErrorMessage(r));
			}
			failed = true;
			PQclear(r);
			continue;
		}
		PQclear(last);
		last = r;
	}
	if (failed) {
		PQclear(last);
		return NULL;
	}
	if (!last)
		last = PQmakeEmptyPGresult(e->conn, PGRES_COMMAND_OK);
	return last;
}

PGresult *exec_query(Exec *e, const char *sql, int nparams, const char *const *params)
{
	char st[6] = "";
	PGresult *r = run_wait(e, sql, nparams, params, NULL, st);
	memcpy(e->sqlstate, r ? "" : st, r ? 1 : sizeof(e->sqlstate));
	return r;
}

static bool exec_simple(Exec *e, const char *sql)
{
	PGresult *r = exec_query(e, sql, 0, NULL);
	PQclear(r);
	return r != NULL;
}

static void rollback_quietly(Exec *e)
{
	if (PQtransactionStatus(e->conn) != PQTRANS_IDLE) {
		PGresult *r = PQexec(e->conn, "ROLLBACK");
		PQclear(r);
	}
}

/* Sleeps before retry ATTEMPT (0-based) unless the budget since START is
 * spent; false when it is. */
static bool backoff(Exec *e, int attempt, long start, const char *what)
{
	double base = EXEC_BACKOFF_MIN_MS * pow(2.0, attempt);
	if (base > EXEC_BACKOFF_MAX_MS)
		base = EXEC_BACKOFF_MAX_MS;
	double r = 0.5;
	drand48_r(&e->rng, &r);
	long delay = (long)(base * (0.5 + 0.5 * r)); /* jitter: migrators must not retry in step */
	long spent = exec_now_ms() - start;
	if (spent + delay > e->opt.retry_total_ms) {
		set_err(e, "gave up on %s after %d attempts in %ld ms: lock_timeout (%d ms) kept expiring", what, attempt + 1,
			spent, e->opt.lock_timeout_ms);
		return false;
	}
	exec_log(e, "lock_timeout on %s (attempt %d); retrying in %ld ms", what, attempt + 1, delay);
	if (!e->monitor) {
		/* ready for the next wait: connecting takes longer than a short lock_timeout */
		e->monitor = PQconnectdb(e->dsn);
		if (PQstatus(e->monitor) != CONNECTION_OK) {
			PQfinish(e->monitor);
			e->monitor = NULL;
		}
	}
	exec_sleep_ms(delay);
	return true;
}

static bool run_views(Exec *e, const PlanStep *s, char sqlstate[6]);

/* BEGIN a transaction whose statements wait for a lock at most lock_timeout. */
static bool begin_tx(Exec *e)
{
	char sql[96];
	snprintf(sql, sizeof sql, "BEGIN; SET LOCAL lock_timeout = '%dms'", e->opt.lock_timeout_ms);
	return exec_simple(e, sql);
}

static void step_started(Exec *e, const StepList *l, size_t i)
{
	if (e->hooks.step)
		e->hooks.step(e->hooks.arg, l, i);
}

/* One attempt at steps [A, B) as a group. On failure *AT is the index of
 * the step that failed (the one that waited, on a lock timeout). */
static bool group_attempt(Exec *e, const StepList *l, size_t a, size_t b, char sqlstate[6], size_t *at)
{
	const PlanStep *first = &l->v[a];
	char lt[96];
	sqlstate[0] = '\0';
	*at = a;
	if (first->kind == STEP_OUTSIDE_TX) {
		step_started(e, l, a);
		snprintf(lt, sizeof lt, "SET lock_timeout = '%dms'", e->opt.lock_timeout_ms);
		if (!exec_simple(e, lt))
			return false;
		PGresult *r = run_wait(e, first->sql, 0, NULL, first->note, sqlstate);
		PQclear(r);
		rollback_quietly(e);
		if (!exec_simple(e, "RESET lock_timeout"))
			return false;
		if (!r && first->cleanup) {
			char keep[sizeof e->err];
			memcpy(keep, e->err, sizeof keep);
			PGresult *c = exec_query(e, first->cleanup, 0, NULL);
			PQclear(c);
			memcpy(e->err, keep, sizeof keep);
		}
		return r != NULL;
	}
	if (!begin_tx(e))
		return false;
	for (size_t i = a; i < b; i++) {
		const PlanStep *s = &l->v[i];
		bool ok;
		step_started(e, l, i);
		if (s->kind == STEP_VIEWS) {
			ok = run_views(e, s, sqlstate);
		} else {
			PGresult *r = run_wait(e, s->sql, 0, NULL, s->note, sqlstate);
			ok = r != NULL;
			PQclear(r);
		}
		if (!ok) {
			char keep[sizeof e->err];
			memcpy(keep, e->err, sizeof keep);
			*at = i;
			rollback_quietly(e);
			snprintf(e->err, sizeof e->err, "step %zu (%s): %s", i + 1, s->note ? s->note : "", keep);
			return false;
		}
	}
	char st2[6];
	PGresult *r = run_wait(e, "COMMIT", 0, NULL, NULL, st2);
	PQclear(r);
	return r != NULL;
}

/* Runs steps [A, B) as one group with retries on lock timeouts; the retry
 * log names the step that waited ("step 3 (drop the sync trigger on t)"). */
static bool group_run(Exec *e, const StepList *l, size_t a, size_t b)
{
	long start = exec_now_ms();
	for (int attempt = 0;; attempt++) {
		char st[6];
		size_t at;
		if (group_attempt(e, l, a, b, st, &at))
			return true;
		if (strcmp(st, SQLSTATE_LOCK_NOT_AVAILABLE) != 0)
			return false;
		char what[256];
		snprintf(what, sizeof what, "step %zu (%s)", at + 1, l->v[at].note ? l->v[at].note : "");
		if (!backoff(e, attempt, start, what))
			return false;
	}
}

bool exec_checks(Exec *e, const StepList *checks)
{
	if (checks->n == 0)
		return true;
	long start = exec_now_ms();
	for (int attempt = 0;; attempt++) {
		char st[6] = "";
		size_t i = 0;
		bool ok = begin_tx(e);
		for (; ok && i < checks->n; i++) {
			PGresult *r = run_wait(e, checks->v[i].sql, 0, NULL, checks->v[i].note, st);
			ok = r != NULL;
			PQclear(r);
		}
		rollback_quietly(e);
		if (ok)
			return true;
		const char *note = i > 0 && checks->v[i - 1].note ? checks->v[i - 1].note : "check";
		if (strcmp(st, SQLSTATE_LOCK_NOT_AVAILABLE) == 0) {
			if (backoff(e, attempt, start, note))
				continue;
			return false; /* backoff said why */
		}
		if (st[0]) {
			char keep[sizeof e->err];
			memcpy(keep, e->err, sizeof keep);
			snprintf(e->err, sizeof e->err, "%.300s: %.700s", note, keep);
		}
		return false;
	}
}

static bool run_backfill(Exec *e, const PlanStep *s);

/* End of the group that starts at step I: adjacent transactional steps
 * share one transaction unless one wants its own. */
static size_t group_end(const StepList *l, size_t i)
{
	const PlanStep *s = &l->v[i];
	size_t end = i + 1;
	if (s->kind == STEP_SQL || s->kind == STEP_VIEWS)
		while (!s->own_tx && end < l->n && (l->v[end].kind == STEP_SQL || l->v[end].kind == STEP_VIEWS) &&
		       !l->v[end].own_tx)
			end++;
	return end;
}

/* Best effort: the group [A, B) failed as a whole; runs its steps one by
 * one, logging and skipping the failing ones. False when one was skipped. */
static bool group_one_by_one(Exec *e, const StepList *l, size_t a, size_t b)
{
	bool all_ok = true;
	if (b - a > 1)
		exec_log(e, "%s; retrying the steps one by one", e->err);
	for (size_t k = a; k < b; k++)
		if (b - a == 1 || !group_run(e, l, k, k + 1)) {
			exec_log(e, "skipped step %zu (%s): %s", k + 1, l->v[k].note ? l->v[k].note : "", e->err);
			all_ok = false;
		}
	return all_ok;
}

bool exec_steps(Exec *e, const StepList *l, size_t from, bool best_effort, ExecProgressFn progress, void *arg)
{
	bool all_ok = true;
	e->cancelled = false;
	e->err[0] = '\0';
	for (size_t i = from; i < l->n;) {
		const PlanStep *s = &l->v[i];
		size_t end = s->kind == STEP_BACKFILL ? i + 1 : group_end(l, i);
		if (exec_cancelled(e))
			return false;
		if (e->hooks.before && !e->hooks.before(e->hooks.arg, e, l, i, end))
			return false;
		bool ok;
		if (s->kind == STEP_BACKFILL) {
			step_started(e, l, i);
			ok = run_backfill(e, s);
		} else {
			ok = group_run(e, l, i, end);
			if (!ok && best_effort) {
				if (!group_one_by_one(e, l, i, end))
					all_ok = false;
				ok = true;
			}
		}
		if (!ok)
			return false;
		i = end;
		if (progress && !progress(e, i, arg))
			return false;
	}
	if (!all_ok)
		set_err(e, "some steps failed (see above)");
	return all_ok;
}

/* ---- views from the catalog ---- */

static bool run_views(Exec *e, const PlanStep *s, char sqlstate[6])
{
	Snapshot *snap = catalog_read(e, e->schema);
	if (!snap)
		return false;
	SqlBuf b;
	sqlbuf_init(&b);
	plan_views_sql(&b, snap, s->viewmap, s->vschema);
	snapshot_free(snap);
	char *sql = sqlbuf_steal(&b);
	if (!sql) {
		set_err(e, "views SQL too long");
		return false;
	}
	PGresult *r = run_wait(e, sql, 0, NULL, s->note, sqlstate);
	free(sql);
	PQclear(r);
	return r != NULL;
}

/* ---- backfill ---- */

static char *qname(const char *schema, const char *name)
{
	SqlBuf b;
	sqlbuf_init(&b);
	sqlbuf_qname(&b, schema, name);
	return sqlbuf_steal(&b);
}

/* SQL whose $1 is the quoted name of TABLE in e->schema (for ::regclass). */
static PGresult *table_query(Exec *e, const char *table, const char *sql)
{
	char *t = qname(e->schema, table);
	const char *params[1] = {t};
	PGresult *r = t ? exec_query(e, sql, 1, params) : NULL;
	if (!t)
		set_err(e, "out of memory");
	free(t);
	return r;
}

/* Saves PROGRESS as backfill[TABLE] of the running migration. */
static bool backfill_save(Exec *e, const char *table, json_t *progress)
{
	char *js = json_dumps(progress, JSON_COMPACT);
	const char *params[4] = {e->schema, e->mig_name, table, js};
	PGresult *r = exec_query(e, PLAN_BACKFILL_SAVE_SQL, 4, params);
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

/* One run of a backfill step (run_backfill): where it resumes, how far it
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
} Backfill;

typedef enum BatchResult { BATCH_MORE, BATCH_FINISHED, BATCH_FAILED } BatchResult;

static void backfill_free(Backfill *b)
{
	json_decref(b->last);
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
	PGresult *r = table_query(e, b->s->table,
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
		PGresult *c = sql && begin_tx(e) ? exec_query(e, sql, 0, NULL) : NULL;
		b->total = c ? atoll(PQgetvalue(c, 0, 0)) : -1;
		PQclear(c);
		free(sql);
		rollback_quietly(e);
		e->err[0] = '\0'; /* an unknown total is no failure */
	}
	return true;
}

/* ctid mode: the table's first column, which a batch without assignments
 * sets to itself. */
static bool backfill_touch(Exec *e, Backfill *b)
{
	PGresult *cr = table_query(e, b->s->table,
				   "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
				   "AND NOT attisdropped ORDER BY attnum LIMIT 1");
	if (!cr || PQntuples(cr) != 1) {
		PQclear(cr);
		if (!e->err[0])
			set_err(e, "table %s has no columns", b->s->table);
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
	b->blocks_per_batch = e->opt.batch_size / 100 > 0 ? e->opt.batch_size / 100 : 1;
	if (s->nkeys > BACKFILL_MAX_KEYS) {
		set_err(e, "backfill key of %s has more than %d columns", s->table, BACKFILL_MAX_KEYS);
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
		set_err(e, "out of memory");
		return false;
	}
	b->began = exec_now_ms();
	return true;
}

/* Runs a batch's UPDATE SQL (freed here): rows updated, or -1 with e->err
 * and SQLSTATE. */
static long long batch_exec(Exec *e, char *sql, int np, const char *const *params, char st[6])
{
	if (!sql) {
		set_err(e, "out of memory");
		return -1;
	}
	PGresult *r = run_wait(e, sql, np, params, "backfill batch", st);
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
	snprintf(off, sizeof off, "%d", e->opt.batch_size - 1);
	params[np++] = off;
	for (size_t i = 0; lower && i < s->nkeys; i++)
		params[np++] = json_string_value(json_array_get(b->last, i));
	char *bsql = plan_backfill_bound_sql(e->schema, s, lower);
	PGresult *br = bsql ? run_wait(e, bsql, np, params, "backfill batch", st) : NULL;
	free(bsql);
	if (!br) {
		if (!st[0] && !e->err[0])
			set_err(e, "out of memory");
		return -1;
	}
	*upper = PQntuples(br) == 1 ? json_loads(PQgetvalue(br, 0, 0), 0, NULL) : NULL;
	PQclear(br);
	np = 0;
	for (size_t i = 0; lower && i < s->nkeys; i++)
		params[np++] = json_string_value(json_array_get(b->last, i));
	for (size_t i = 0; *upper && i < s->nkeys; i++)
		params[np++] = json_string_value(json_array_get(*upper, i));
	return batch_exec(e, plan_backfill_update_sql(e->schema, s, lower, *upper != NULL, b->touch), np, params, st);
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
	bool saved = prog && backfill_save(e, b->s->table, prog);
	json_decref(prog);
	PGresult *cr = saved ? run_wait(e, "COMMIT", 0, NULL, NULL, st) : NULL;
	PQclear(cr);
	if (!cr) {
		if (n >= 0 && !prog)
			set_err(e, "out of memory");
		json_decref(upper);
		rollback_quietly(e);
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

static bool run_backfill(Exec *e, const PlanStep *s)
{
	json_t *prog = backfill_load(e, s->table);
	if (json_is_true(json_object_get(prog, "finished"))) {
		json_decref(prog);
		return true;
	}
	Backfill b;
	if (!backfill_init(e, s, prog, &b)) {
		backfill_free(&b);
		return false;
	}
	exec_log(e, "backfilling %s.%s (%s)", e->schema, s->table, s->nkeys ? "keyset batches" : "by ctid ranges");
	backfill_report(e, &b, false);
	bool ok = true;
	int attempt = 0;
	long start = exec_now_ms();
	while (s->nkeys > 0 || b.next_block <= b.end_block) {
		if (exec_cancelled(e)) {
			ok = false;
			break;
		}
		char st[6];
		BatchResult r = backfill_batch(e, &b, st);
		if (r == BATCH_FAILED) {
			if (strcmp(st, SQLSTATE_LOCK_NOT_AVAILABLE) == 0 && backoff(e, attempt++, start, "backfill batch"))
				continue;
			ok = false;
			break;
		}
		attempt = 0;
		start = exec_now_ms();
		backfill_report(e, &b, r == BATCH_FINISHED);
		if (r == BATCH_FINISHED)
			break;
		if (e->opt.batch_delay_ms > 0)
			exec_sleep_ms(e->opt.batch_delay_ms);
	}
	if (ok) {
		long took = exec_now_ms() - b.began;
		exec_log(e, "backfilled %lld rows of %s.%s in %ld ms (%.0f rows/s)", b.done, e->schema, s->table, took,
			 took > 0 ? (double)b.done * 1000.0 / (double)took : 0.0);
	}
	backfill_free(&b);
	return ok;
}

/* ---- catalog ---- */

/* Strings of a JSON array text (from array_to_json) into V (max MAX). */
static size_t json_strings(const char *text, const char **v, size_t max, json_t **hold)
{
	*hold = json_loads(text, 0, NULL);
	size_t n = 0;
	for (size_t i = 0; i < json_array_size(*hold) && n < max; i++) {
		const char *s = json_string_value(json_array_get(*hold, i));
		v[n++] = s ? s : "";
	}
	return n;
}

static Snapshot *catalog_read_once(Exec *e, const char *schema);

/* The catalog read takes ACCESS SHARE on the tables it describes (through
 * pg_get_indexdef and the like): it runs in one transaction under
 * lock_timeout and is retried as a step is, so that a session holding a
 * table in ACCESS EXCLUSIVE delays the plan, never stalls it for good. */
Snapshot *catalog_read(Exec *e, const char *schema)
{
	long start = exec_now_ms();
	for (int attempt = 0;; attempt++) {
		if (!begin_tx(e))
			return NULL;
		Snapshot *s = catalog_read_once(e, schema);
		if (s && exec_simple(e, "COMMIT"))
			return s;
		snapshot_free(s);
		bool lock = strcmp(e->sqlstate, "55P03") == 0;
		rollback_quietly(e);
		if (!lock || exec_cancelled(e) || !backoff(e, attempt, start, "reading the catalog"))
			return NULL;
	}
}

/*
 * The privileges the views of a version schema carry (plan_views_sql): per
 * table, what each role but the one migrating (which owns the views) holds,
 * table-level (relacl, or the owner's default rights when it is NULL) and
 * column-level (attacl, one row per role and privilege with its columns);
 * and who has USAGE on the schema. Only what a view can take: SELECT, INSERT,
 * UPDATE, DELETE (TRUNCATE, REFERENCES and TRIGGER do not apply to views).
 */
static const char CATALOG_GRANTS[] =
	"WITH me AS (SELECT oid FROM pg_roles WHERE rolname = current_user), "
	"t AS (SELECT c.oid, c.relname, c.relacl, c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
	"WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')) "
	"SELECT t.relname, coalesce(r.rolname, ''), a.privilege_type, NULL::text "
	"FROM t CROSS JOIN LATERAL aclexplode(coalesce(t.relacl, acldefault('r', t.relowner))) a "
	"LEFT JOIN pg_roles r ON r.oid = a.grantee "
	"WHERE a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') AND a.grantee NOT IN (SELECT oid FROM me) "
	"UNION ALL "
	"SELECT t.relname, coalesce(r.rolname, ''), a.privilege_type, json_agg(att.attname ORDER BY att.attnum)::text "
	"FROM t JOIN pg_attribute att ON att.attrelid = t.oid AND att.attnum > 0 AND NOT att.attisdropped "
	"AND att.attacl IS NOT NULL CROSS JOIN LATERAL aclexplode(att.attacl) a LEFT JOIN pg_roles r ON r.oid = a.grantee "
	"WHERE a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE') AND a.grantee NOT IN (SELECT oid FROM me) "
	"GROUP BY 1, 2, 3 ORDER BY 1, 2, 3, 4 NULLS FIRST";

static const char CATALOG_USAGE[] =
	"SELECT coalesce(r.rolname, '') FROM pg_namespace n "
	"CROSS JOIN LATERAL aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a "
	"LEFT JOIN pg_roles r ON r.oid = a.grantee WHERE n.nspname = $1 AND a.privilege_type = 'USAGE' "
	"AND a.grantee <> (SELECT oid FROM pg_roles WHERE rolname = current_user) ORDER BY 1";

/* Fills S's grants and USAGE grantees (see CATALOG_GRANTS). */
static bool catalog_read_grants(Exec *e, Snapshot *s)
{
	const char *params[1] = {s->schema};
	PGresult *r = exec_query(e, CATALOG_GRANTS, 1, params);
	if (!r)
		return false;
	bool ok = true;
	for (int i = 0; ok && i < PQntuples(r); i++) {
		SnapTable *t = snapshot_table(s, PQgetvalue(r, i, 0));
		if (!t)
			continue;
		const char *cols[SNAP_MAX_COLUMNS];
		json_t *hold = NULL;
		size_t n = PQgetisnull(r, i, 3) ? 0 : json_strings(PQgetvalue(r, i, 3), cols, SNAP_MAX_COLUMNS, &hold);
		ok = snapshot_add_grant(t, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), cols, n);
		json_decref(hold);
	}
	PQclear(r);
	r = ok ? exec_query(e, CATALOG_USAGE, 1, params) : NULL;
	if (ok && !r)
		return false;
	for (int i = 0; ok && i < PQntuples(r); i++)
		ok = snapshot_add_usage(s, PQgetvalue(r, i, 0));
	PQclear(r);
	if (!ok)
		set_err(e, "out of memory or too many grants");
	return ok;
}

static Snapshot *catalog_read_once(Exec *e, const char *schema)
{
	Snapshot *s = snapshot_new(schema);
	if (!s) {
		set_err(e, "out of memory");
		return NULL;
	}
	const char *params[1] = {schema};
	PGresult *r = exec_query(e,
				 "SELECT c.relname, c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
				 "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname",
				 1, params);
	if (!r)
		goto fail;
	for (int i = 0; i < PQntuples(r); i++) {
		SnapTable *t = snapshot_add_table(s, PQgetvalue(r, i, 0));
		if (!t) {
			PQclear(r);
			set_err(e, "out of memory or more than %d tables", SNAP_MAX_TABLES);
			goto fail;
		}
		t->replident = PQgetvalue(r, i, 1)[0];
	}
	PQclear(r);
	r = exec_query(e,
		       "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
		       "pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum) "
		       "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
		       "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated = '' "
		       "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped "
		       "ORDER BY c.relname, a.attnum",
		       1, params);
	if (!r)
		goto fail;
	for (int i = 0; i < PQntuples(r); i++) {
		SnapTable *t = snapshot_table(s, PQgetvalue(r, i, 0));
		if (!t)
			continue;
		const char *name = PQgetvalue(r, i, 1);
		SnapColumn *c = snapshot_add_column(t, name, PQgetvalue(r, i, 2), PQgetvalue(r, i, 3)[0] == 't',
						    PQgetisnull(r, i, 4) ? NULL : PQgetvalue(r, i, 4));
		if (!c || !snap_set(&c->comment, PQgetisnull(r, i, 5) ? NULL : PQgetvalue(r, i, 5))) {
			PQclear(r);
			set_err(e, "out of memory or too many columns");
			goto fail;
		}
		if (strncmp(name, MIGRATE_TMP_PREFIX, strlen(MIGRATE_TMP_PREFIX)) == 0) {
			snap_set(&c->vname, NULL);
			snap_set(&c->oname, NULL);
		}
	}
	PQclear(r);
	r = exec_query(e,
		       "SELECT c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid), "
		       "array_to_json(ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, o) "
		       "JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.o)) "
		       "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
		       "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname, k.conname",
		       1, params);
	if (!r)
		goto fail;
	for (int i = 0; i < PQntuples(r); i++) {
		SnapTable *t = snapshot_table(s, PQgetvalue(r, i, 0));
		if (!t)
			continue;
		const char *cols[64];
		json_t *hold;
		size_t n = json_strings(PQgetvalue(r, i, 4), cols, 64, &hold);
		SnapConstraint *k = snapshot_add_constraint(t, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)[0], cols, n,
							    PQgetvalue(r, i, 3));
		json_decref(hold);
		if (!k) {
			PQclear(r);
			set_err(e, "out of memory or too many constraints");
			goto fail;
		}
	}
	PQclear(r);
	r = exec_query(e,
		       "SELECT c.relname, i.relname, x.indisunique, EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid "
		       "AND k.conrelid = x.indrelid), pg_get_indexdef(x.indexrelid), "
		       "array_to_json(ARRAY(SELECT coalesce(a.attname, '') FROM unnest(x.indkey::int2[]) WITH ORDINALITY u(n, o) "
		       "LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = u.n ORDER BY u.o)) "
		       "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid "
		       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') "
		       "ORDER BY c.relname, i.relname",
		       1, params);
	if (!r)
		goto fail;
	for (int i = 0; i < PQntuples(r); i++) {
		SnapTable *t = snapshot_table(s, PQgetvalue(r, i, 0));
		if (!t)
			continue;
		SnapIndex *x = snapshot_add_index(t, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)[0] == 't',
						  PQgetvalue(r, i, 3)[0] == 't');
		const char *cols[64];
		json_t *hold;
		size_t n = json_strings(PQgetvalue(r, i, 5), cols, 64, &hold);
		bool ok = x && snapshot_index_define(x, PQgetvalue(r, i, 4), cols, n);
		json_decref(hold);
		if (!ok) {
			PQclear(r);
			set_err(e, "out of memory or too many indexes");
			goto fail;
		}
	}
	PQclear(r);
	if (!catalog_read_grants(e, s))
		goto fail;
	return s;
fail:
	snapshot_free(s);
	return NULL;
}
