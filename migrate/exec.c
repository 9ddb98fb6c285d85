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
#include "migrate/exec_int.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void exec_options_default(ExecOptions *o)
{
	o->lock_timeout_ms = EXEC_LOCK_TIMEOUT_MS;
	o->retry_total_ms = EXEC_RETRY_TOTAL_MS;
	o->batch_size = EXEC_BATCH_SIZE;
	o->batch_delay_ms = 0;
	o->max_latency_ratio = 0;
	o->backfill_workers = 1;
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

void exec_set_err(Exec *e, const char *fmt, ...)
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
	exec_set_err(e, "cancelled");
	return true;
}

/* A NoticeResponse of the server (protocol "Message Formats"): a WARNING
 * is said (exec_warn: "server WARNING: MESSAGE"), as psql would; NOTICE and
 * below (IF EXISTS's "skipping") stay quiet. */
static void notice_received(void *arg, const PGresult *r)
{
	Exec *e = arg;
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	if (sev && strcmp(sev, "WARNING") == 0)
		exec_warn(e, "server WARNING: %s", msg ? msg : "(no message)");
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
		exec_set_err(e, "out of memory");
		return false;
	}
	PGresult *r = exec_query(e, sql, 0, NULL);
	free(sql);
	PQclear(r);
	if (!r) {
		char keep[sizeof e->err];
		memcpy(keep, e->err, sizeof keep);
		exec_set_err(e, "cannot SET ROLE \"%s\": %s", role, keep);
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
		exec_set_err(e, "out of memory");
		return false;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	srand48_r((long)ts.tv_nsec ^ (long)ts.tv_sec ^ (long)(uintptr_t)e, &e->rng);
	e->conn = PQconnectdb(e->dsn);
	if (PQstatus(e->conn) != CONNECTION_OK) {
		exec_set_err(e, "cannot connect: %s", PQerrorMessage(e->conn));
		return false;
	}
	PQsetNoticeReceiver(e->conn, notice_received, e);
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
/* Looks up what the backend PID waits for (pg_blocking_pids(), or the
 * session a CREATE INDEX CONCURRENTLY waits out, which pg_stat_progress_
 * create_index names); logs it and reports it through hooks.lock_wait when
 * the first blocker is not *LOGGED_PID (which it becomes; 0 when none). */
static void log_blockers(Exec *e, int pid, const char *what, long waited_ms, int *logged_pid)
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
				   "FROM unnest(coalesce(nullif(pg_blocking_pids($1::int), '{}'), "
				   "(SELECT array[p.current_locker_pid::int] FROM pg_stat_progress_create_index p "
				   "WHERE p.pid = $1::int AND p.current_locker_pid <> 0))) WITH ORDINALITY AS b(pid, n) "
				   "JOIN pg_stat_activity a ON a.pid = b.pid",
				   1, NULL, params, NULL, NULL, 0);
	/* "none": the wait ended (timeout or grant) before the monitor looked */
	bool found = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "none") != 0;
	int first = found ? atoi(PQgetvalue(r, 0, 1)) : 0;
	if (found && first != *logged_pid)
		exec_log(e, "waiting for a lock (%s); blocked by %s", what, PQgetvalue(r, 0, 0));
	/* reported when the blocker changes: a new one, or none any more (a
	 * statement that runs without waiting is not reported) */
	if (e->hooks.lock_wait && first != *logged_pid)
		e->hooks.lock_wait(e->hooks.arg, found ? waited_ms : 0, first,
				   found && !PQgetisnull(r, 0, 2) ? PQgetvalue(r, 0, 2) : NULL, found ? PQgetvalue(r, 0, 0) : NULL);
	*logged_pid = first;
	PQclear(r);
}

/* Sends SQL and waits for all its results, looking up its blockers each
 * quarter of the lock timeout while it runs (logged when they change). Returns the last result (caller clears) or
 * NULL with e->err; *SQLSTATE receives the error code ("" when none). */
PGresult *exec_run_wait(Exec *e, const char *sql, int nparams, const char *const *params, const char *what,
			  char sqlstate[6])
{
	sqlstate[0] = '\0';
	int ok = nparams ? PQsendQueryParams(e->conn, sql, nparams, NULL, params, NULL, NULL, 0) : PQsendQuery(e->conn, sql);
	if (!ok) {
		exec_set_err(e, "%s", PQerrorMessage(e->conn));
		return NULL;
	}
	long start = exec_now_ms();
	int sock = PQsocket(e->conn);
	/* look for blockers a quarter into the lock timeout, so the monitor's
	 * query lands while the wait is still on, and again as often while the
	 * statement runs (a CREATE INDEX CONCURRENTLY waits out one session
	 * after another, each under the lock timeout) */
	int timeout = e->tx_lock_timeout_ms > 0 ? e->tx_lock_timeout_ms : e->opt.lock_timeout_ms;
	long look_every = timeout / 4 > 10 ? timeout / 4 : 10;
	long next_look = start + look_every;
	int logged_pid = 0;
	while (PQisBusy(e->conn)) {
		struct pollfd pfd = {.fd = sock, .events = POLLIN};
		int n = poll(&pfd, 1, 20);
		if (n < 0 && errno != EINTR) {
			char buf[128];
			exec_set_err(e, "poll: %s", strerror_r(errno, buf, sizeof buf));
			return NULL;
		}
		if (!PQconsumeInput(e->conn)) {
			exec_set_err(e, "%s", PQerrorMessage(e->conn));
			return NULL;
		}
		long now = exec_now_ms();
		if (what && now > next_look && PQisBusy(e->conn)) {
			next_look = now + look_every;
			log_blockers(e, PQbackendPID(e->conn), what, now - start, &logged_pid);
		}
	}
	if (logged_pid && e->hooks.lock_wait) /* the wait reported last is over */
		e->hooks.lock_wait(e->hooks.arg, 0, 0, NULL, NULL);
	PGresult *last = NULL, *r;
	bool failed = false;
	while ((r = PQgetResult(e->conn)) != NULL) {
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
			if (!failed) {
				const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
				snprintf(sqlstate, 6, "%s", code ? code : "");
				exec_set_err(e, "%s", PQresultErrorMessage(r));
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

PGresult *exec_query_as(Exec *e, const char *what, const char *sql, int nparams, const char *const *params)
{
	char st[6] = "";
	PGresult *r = exec_run_wait(e, sql, nparams, params, what, st);
	memcpy(e->sqlstate, r ? "" : st, r ? 1 : sizeof(e->sqlstate));
	return r;
}

PGresult *exec_query(Exec *e, const char *sql, int nparams, const char *const *params)
{
	return exec_query_as(e, NULL, sql, nparams, params);
}

bool exec_simple(Exec *e, const char *sql)
{
	PGresult *r = exec_query(e, sql, 0, NULL);
	PQclear(r);
	return r != NULL;
}

void exec_rollback_quietly(Exec *e)
{
	if (PQtransactionStatus(e->conn) != PQTRANS_IDLE) {
		PGresult *r = PQexec(e->conn, "ROLLBACK");
		PQclear(r);
	}
}

/* Sleeps before retry ATTEMPT (0-based) unless the budget since START is
 * spent; false when it is. */
bool exec_backoff(Exec *e, int attempt, long start, const char *what)
{
	double base = EXEC_BACKOFF_MIN_MS * pow(2.0, attempt);
	if (base > EXEC_BACKOFF_MAX_MS)
		base = EXEC_BACKOFF_MAX_MS;
	double r = 0.5;
	drand48_r(&e->rng, &r);
	long delay = (long)(base * (0.5 + 0.5 * r)); /* jitter: migrators must not retry in step */
	long spent = exec_now_ms() - start;
	if (spent + delay > e->opt.retry_total_ms) {
		exec_set_err(e, "gave up on %s after %d attempts in %ld ms: lock_timeout (%d ms) kept expiring", what, attempt + 1,
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

bool exec_begin_tx(Exec *e, int lock_timeout_ms)
{
	char sql[96];
	snprintf(sql, sizeof sql, "BEGIN; SET LOCAL lock_timeout = '%dms'", lock_timeout_ms);
	e->tx_lock_timeout_ms = lock_timeout_ms;
	return exec_simple(e, sql);
}

static void step_started(Exec *e, const StepList *l, size_t i)
{
	if (e->hooks.step)
		e->hooks.step(e->hooks.arg, l, i);
}

/* "step N (NOTE)" of step I of L, as the log names it. */
static void step_label(char *buf, size_t n, const StepList *l, size_t i)
{
	snprintf(buf, n, "step %zu (%s)", i + 1, l->v[i].note ? l->v[i].note : "");
}

/* A STEP_OUTSIDE_TX step (CREATE INDEX CONCURRENTLY...): alone, under
 * lock_timeout; a failed attempt runs its cleanup (an invalid index). */
static bool outside_attempt(Exec *e, const StepList *l, size_t a, char sqlstate[6])
{
	const PlanStep *first = &l->v[a];
	char lt[96];
	step_started(e, l, a);
	e->tx_lock_timeout_ms = 0;
	snprintf(lt, sizeof lt, "SET lock_timeout = '%dms'", e->opt.lock_timeout_ms);
	if (!exec_simple(e, lt))
		return false;
	PGresult *r = exec_run_wait(e, first->sql, 0, NULL, first->note, sqlstate);
	PQclear(r);
	exec_rollback_quietly(e);
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

/* Runs step S of a group's transaction (a views step builds its SQL from
 * the catalog). */
static bool tx_step(Exec *e, const PlanStep *s, char sqlstate[6])
{
	if (s->kind == STEP_VIEWS)
		return run_views(e, s, sqlstate);
	PGresult *r = exec_run_wait(e, s->sql, 0, NULL, s->note, sqlstate);
	PQclear(r);
	return r != NULL;
}

/* One attempt at steps [A, B) as a group: one transaction whose statements
 * wait for a lock at most TIMEOUT_MS; its strong-lock time is recorded
 * (guard_strong_record). On failure *AT is the index of the step that
 * failed (the one that waited, on a lock timeout). */
static bool group_attempt(Exec *e, const StepList *l, size_t a, size_t b, int timeout_ms, char sqlstate[6],
			  size_t *at)
{
	sqlstate[0] = '\0';
	*at = a;
	if (l->v[a].kind == STEP_OUTSIDE_TX)
		return outside_attempt(e, l, a, sqlstate);
	if (!exec_begin_tx(e, timeout_ms))
		return false;
	int64_t strong_since = -1;
	char locks[256] = "";
	const char *fresh = NULL; /* the version schema a views step made anew: its new views lock no one out */
	for (size_t i = a; i < b; i++) {
		const PlanStep *s = &l->v[i];
		int64_t t0 = exec_now_ms();
		step_started(e, l, i);
		if (!tx_step(e, s, sqlstate)) {
			char keep[sizeof e->err];
			memcpy(keep, e->err, sizeof keep);
			*at = i;
			exec_rollback_quietly(e);
			snprintf(e->err, sizeof e->err, "step %zu (%s): %s", i + 1, s->note ? s->note : "", keep);
			return false;
		}
		if (s->kind == STEP_VIEWS)
			fresh = s->vschema;
		if (strong_since < 0 && guard_strong_lock(e, fresh, locks, sizeof locks))
			strong_since = t0;
	}
	char st2[6];
	PGresult *r = exec_run_wait(e, "COMMIT", 0, NULL, NULL, st2);
	PQclear(r);
	e->tx_lock_timeout_ms = 0;
	if (r && strong_since >= 0) {
		char step[256];
		step_label(step, sizeof step, l, a);
		guard_strong_record(e, exec_now_ms() - strong_since, step, locks);
	}
	return r != NULL;
}

/* Asks for a drain window before an attempt at the group [A, B) of L
 * (ExecHooks.drain), when one is due: the ms left in it (> 0: the caller
 * runs the attempt, then undrains), or 0 when there is none. */
static int drain_window(Exec *e, const StepList *l, size_t a, size_t b, const char *what)
{
	if (!e->hooks.drain || exec_now_ms() < e->drain_next_ms)
		return 0;
	int pids[EXEC_DRAIN_PIDS];
	size_t n = guard_holders(e, l, a, b, pids, EXEC_DRAIN_PIDS);
	char why[256] = "";
	int left = e->hooks.drain(e->hooks.arg, pids, n, why, sizeof why);
	e->drain_every_ms = e->drain_every_ms ? e->drain_every_ms * 2 : EXEC_DRAIN_EVERY_MS;
	if (e->drain_every_ms > EXEC_DRAIN_EVERY_MAX_MS)
		e->drain_every_ms = EXEC_DRAIN_EVERY_MAX_MS;
	e->drain_next_ms = exec_now_ms() + e->drain_every_ms;
	if (left >= 0)
		e->drains++;
	if (left > 0) {
		e->drains_ok++;
		exec_log(e, "drain window: the proxy's transactions in flight ended; %s runs (%d ms of the window left)", what,
			 left);
		return left;
	}
	exec_log(e, "no drain window for %s: %s; next one in %d ms at the soonest", what,
		 left == 0 ? "the transactions in flight did not end within ddl_drain_timeout" : why, e->drain_every_ms);
	return 0;
}

/* Runs steps [A, B) as one group with retries on lock timeouts; the retry
 * log names the step that waited ("step 3 (drop the sync trigger on t)").
 * Before each attempt at a transactional group the lock-queue guard waits
 * out long transactions in the way (guard.c); attempt K waits for its
 * locks at most EXEC_FIRST_LOCK_TIMEOUT_MS x 2^K, up to lock_timeout.
 * When the attempts keep failing, or the guard keeps holding the group
 * back, an attempt runs in a drain window when the proxy gives one. */
static bool group_run(Exec *e, const StepList *l, size_t a, size_t b)
{
	long start = exec_now_ms();
	char what[256];
	step_label(what, sizeof what, l, a);
	bool tx = l->v[a].kind != STEP_OUTSIDE_TX;
	e->drain_next_ms = 0;
	e->drain_every_ms = 0;
	for (int timeouts = 0;;) {
		char st[6];
		size_t at;
		int window = 0;
		if (tx) {
			GuardResult g = guard_wait(e, l, a, b, start, what, e->hooks.drain ? EXEC_DRAIN_GUARD_MS : 0);
			if (g == GUARD_FAILED)
				return false;
			if (g == GUARD_HELD || timeouts >= EXEC_DRAIN_AFTER)
				window = drain_window(e, l, a, b, what);
			if (g == GUARD_HELD && window <= 0)
				continue; /* never queue behind the old holder: the guard again */
		}
		int timeout = EXEC_FIRST_LOCK_TIMEOUT_MS << (timeouts < 16 ? timeouts : 16);
		if (timeout > e->opt.lock_timeout_ms || timeout <= 0)
			timeout = e->opt.lock_timeout_ms;
		if (window > 0 && window < timeout)
			timeout = window;
		bool ok = group_attempt(e, l, a, b, timeout, st, &at);
		if (window > 0)
			e->hooks.undrain(e->hooks.arg);
		if (ok) {
			e->err[0] = '\0'; /* an earlier attempt's lock timeout is no error of the flow's */
			return true;
		}
		if (strcmp(st, SQLSTATE_LOCK_NOT_AVAILABLE) != 0)
			return false;
		step_label(what, sizeof what, l, at);
		if (!exec_backoff(e, timeouts++, start, what))
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
		bool ok = exec_begin_tx(e, e->opt.lock_timeout_ms);
		for (; ok && i < checks->n; i++) {
			PGresult *r = exec_run_wait(e, checks->v[i].sql, 0, NULL, checks->v[i].note, st);
			ok = r != NULL;
			PQclear(r);
		}
		exec_rollback_quietly(e);
		if (ok)
			return true;
		const char *note = i > 0 && checks->v[i - 1].note ? checks->v[i - 1].note : "check";
		if (strcmp(st, SQLSTATE_LOCK_NOT_AVAILABLE) == 0) {
			if (exec_backoff(e, attempt, start, note))
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
			ok = backfill_run(e, s);
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
		exec_set_err(e, "some steps failed (see above)");
	return all_ok;
}

/* ---- views from the catalog ---- */

static bool run_views(Exec *e, const PlanStep *s, char sqlstate[6])
{
	Snapshot *snap = catalog_read(e, e->schema); /* in the group's transaction */
	if (!snap) {
		memcpy(sqlstate, e->sqlstate, sizeof e->sqlstate); /* a lock timeout: the group's attempt retries */
		return false;
	}
	SqlBuf b;
	sqlbuf_init(&b);
	plan_views_sql(&b, snap, s->viewmap, s->vschema);
	snapshot_free(snap);
	char *sql = sqlbuf_steal(&b);
	if (!sql) {
		exec_set_err(e, "views SQL too long");
		return false;
	}
	PGresult *r = exec_run_wait(e, sql, 0, NULL, s->note, sqlstate);
	free(sql);
	PQclear(r);
	return r != NULL;
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
 * table in ACCESS EXCLUSIVE delays the plan, never stalls it for good.
 * Inside a transaction (a views step of a group) it reads in that one: a
 * BEGIN and COMMIT of its own would commit the group's earlier steps there,
 * apart from the rest, and the group's attempt is what retries. */
Snapshot *catalog_read(Exec *e, const char *schema)
{
	if (PQtransactionStatus(e->conn) == PQTRANS_INTRANS)
		return catalog_read_once(e, schema);
	long start = exec_now_ms();
	for (int attempt = 0;; attempt++) {
		if (!exec_begin_tx(e, e->opt.lock_timeout_ms))
			return NULL;
		Snapshot *s = catalog_read_once(e, schema);
		if (s && exec_simple(e, "COMMIT"))
			return s;
		snapshot_free(s);
		bool lock = strcmp(e->sqlstate, SQLSTATE_LOCK_NOT_AVAILABLE) == 0;
		exec_rollback_quietly(e);
		if (!lock || exec_cancelled(e) || !exec_backoff(e, attempt, start, "reading the catalog"))
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
		exec_set_err(e, "out of memory or too many grants");
	return ok;
}

static Snapshot *catalog_read_once(Exec *e, const char *schema)
{
	Snapshot *s = snapshot_new(schema);
	if (!s) {
		exec_set_err(e, "out of memory");
		return NULL;
	}
	const char *params[1] = {schema};
	PGresult *r = exec_query_as(e, "reading the catalog",
				 "SELECT c.relname, c.relreplident FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
				 "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname",
				 1, params);
	if (!r)
		goto fail;
	for (int i = 0; i < PQntuples(r); i++) {
		SnapTable *t = snapshot_add_table(s, PQgetvalue(r, i, 0));
		if (!t) {
			PQclear(r);
			exec_set_err(e, "out of memory or more than %d tables", SNAP_MAX_TABLES);
			goto fail;
		}
		t->replident = PQgetvalue(r, i, 1)[0];
	}
	PQclear(r);
	r = exec_query_as(e, "reading the catalog",
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
			exec_set_err(e, "out of memory or too many columns");
			goto fail;
		}
		if (strncmp(name, MIGRATE_TMP_PREFIX, strlen(MIGRATE_TMP_PREFIX)) == 0) {
			snap_set(&c->vname, NULL);
			snap_set(&c->oname, NULL);
		}
	}
	PQclear(r);
	r = exec_query_as(e, "reading the catalog",
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
			exec_set_err(e, "out of memory or too many constraints");
			goto fail;
		}
	}
	PQclear(r);
	r = exec_query_as(e, "reading the catalog",
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
			exec_set_err(e, "out of memory or too many indexes");
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
