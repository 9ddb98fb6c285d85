/*
 * migrate/api.c: the migration flows behind api.h (start, complete,
 * rollback, migrate DIR, init, plan, history), shared by `pgflip migrate`
 * (cli.c) and the daemon's migration worker.
 *
 * A flow is: connect, create the state schema if needed, take the schema's
 * advisory lock, read state and catalog, plan (pure), record the plan in the
 * state row, run its steps, record progress after each step group. A start
 * that fails is rolled back at once, so the database is left as before; a
 * start that is killed or cancelled is resumed by running the same start
 * again.
 *
 * One Flow per call, on the caller's stack: it holds the Exec (connections),
 * the result being filled and the progress report being kept up to date from
 * the executor's hooks (exec.h). Nothing is static, so calls may run on
 * several threads at once.
 *
 * The drop guard (DESIGN.md decision 9): before a group of steps that holds
 * a step dropping a version schema (PlanStep.drops: complete drops the
 * previous version's, rollback the migration's own), the flow waits until no
 * row of pgflip.routes names that schema, no live row of pgflip.instances
 * counts clients on it, and the caller's may_drop agrees. The check runs
 * just before the group, outside its transaction: a route written in between
 * is the route store's to refuse (the daemon serialises route changes with
 * its migrations); a client still inside a transaction on the schema holds
 * its views' locks, and the DROP waits for it under lock_timeout.
 */
#include "migrate/api.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"
#include "migrate/lint.h"
#include "migrate/load.h"
#include "migrate/plan.h"

/* Files considered by migrate_dir and by migrate_plan when chaining: a
 * folder with more is a mistake, and the list is one allocation. */
#define API_MAX_FILES 10000
/* How often the drop guard asks again (api.h: every 100 ms). */
#define API_GUARD_POLL_MS 100

static const char *const PHASE_NAMES[] = {"idle",     "plan", "start",  "backfill",  "wait_unused",
					  "complete", "rollback", "done", "failed", "cancelled"};

const char *migrate_phase_name(MigratePhase phase)
{
	return (unsigned)phase < sizeof PHASE_NAMES / sizeof PHASE_NAMES[0] ? PHASE_NAMES[phase] : "unknown";
}

typedef struct Flow {
	const MigrateRequest *rq;
	MigrateResult *out;
	Exec e;
	MigrateProgress cur;      /* the last report, kept up to date */
	MigratePhase list_phase;  /* phase of the step list running: START, COMPLETE or ROLLBACK */
	bool held;                /* the drop guard stopped the list (refused, cancelled or failed) */
	const char *origin;       /* a new state row's plan.origin ("baseline"), NULL for a migration file */
} Flow;

/* ---- results and reports ---- */

static void flow_report(Flow *f)
{
	f->cur.strong_lock_ms = f->e.strong_lock_ms;
	f->cur.strong_lock_step = f->e.strong_lock_step[0] ? f->e.strong_lock_step : NULL;
	if (f->rq->hooks.progress)
		f->rq->hooks.progress(f->rq->hooks.arg, &f->cur);
}

/* PHASE with no step, no backfill and no lock wait (the migration stays). */
static void progress_reset(MigrateProgress *p, MigratePhase phase)
{
	p->phase = phase;
	p->step = p->n_steps = 0;
	p->note = p->table = p->blocker_query = p->blocker = NULL;
	p->rows_done = p->lock_wait_ms = 0;
	p->blocker_pid = 0;
	p->rows_total = -1;
	p->rows_per_s = 0;
	p->eta_s = -1;
}

/* Enters PHASE with no step, and reports it. */
static void flow_phase(Flow *f, MigratePhase phase)
{
	progress_reset(&f->cur, phase);
	flow_report(f);
}

static void copy_name(char dst[MIGRATE_NAME_MAX], const char *src)
{
	snprintf(dst, MIGRATE_NAME_MAX, "%s", src ? src : "");
}

/* The migration the flow runs on, in the result and in the reports. */
static void flow_set_mig(Flow *f, const char *name, const char *vschema, const char *previous)
{
	copy_name(f->out->migration, name);
	copy_name(f->out->vschema, vschema);
	copy_name(f->out->previous, previous);
	f->cur.migration = f->out->migration[0] ? f->out->migration : NULL;
	f->cur.vschema = f->out->vschema[0] ? f->out->vschema : NULL;
}

static MigrateStatus flow_fail(Flow *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static MigrateStatus flow_fail(Flow *f, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->out->err, sizeof f->out->err, fmt, ap);
	va_end(ap);
	for (char *p = f->out->err; *p; p++)
		if (*p == '\n')
			*p = ' ';
	return MIGRATE_FAILED;
}

/* A step list stopped by a cancel (CANCELLED) or by the drop guard (FAILED
 * with the guard's reason). WHAT is the flow: start, complete, rollback. */
static MigrateStatus flow_stopped(Flow *f, const char *what, const char *name)
{
	if (f->e.cancelled) {
		flow_fail(f, "%s of %s cancelled; run %s again to resume", what, name, what);
		return MIGRATE_CANCELLED;
	}
	return flow_fail(f, "%s of %s stopped: %s", what, name, f->e.err);
}

/* A line for the log hook, else stderr whatever quiet says (no Exec yet). */
static void flow_note(Flow *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void flow_note(Flow *f, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (f->rq->hooks.log)
		f->rq->hooks.log(f->rq->hooks.arg, line);
	else
		fprintf(stderr, "pgflip migrate: %s\n", line);
}

/* ---- the executor's hooks ---- */

static void on_log(void *arg, const char *line)
{
	Flow *f = arg;
	f->rq->hooks.log(f->rq->hooks.arg, line);
}

static void on_step(void *arg, const StepList *l, size_t i)
{
	Flow *f = arg;
	const PlanStep *s = &l->v[i];
	MigrateProgress *p = &f->cur;
	progress_reset(p, s->kind == STEP_BACKFILL ? MIGRATE_PHASE_BACKFILL : f->list_phase);
	p->step = i + 1;
	p->n_steps = l->n;
	p->note = s->note;
	p->table = s->kind == STEP_BACKFILL ? s->table : NULL;
	flow_report(f);
}

static void on_backfill(void *arg, const ExecBackfill *b)
{
	Flow *f = arg;
	MigrateProgress *p = &f->cur;
	p->phase = MIGRATE_PHASE_BACKFILL;
	p->table = b->table;
	p->rows_done = b->done;
	p->rows_total = b->total;
	p->rows_per_s = b->rows_per_s;
	p->eta_s = b->eta_s;
	flow_report(f);
}

static double on_load(void *arg)
{
	Flow *f = arg;
	return f->rq->hooks.load(f->rq->hooks.arg);
}

static int on_drain(void *arg, const int *pids, size_t n, char *why, size_t whylen)
{
	Flow *f = arg;
	return f->rq->hooks.drain(f->rq->hooks.arg, pids, n, why, whylen);
}

static void on_undrain(void *arg)
{
	Flow *f = arg;
	f->rq->hooks.undrain(f->rq->hooks.arg);
}

static void on_lock_wait(void *arg, int64_t waited_ms, int pid, const char *query, const char *who)
{
	Flow *f = arg;
	f->cur.lock_wait_ms = waited_ms;
	f->cur.blocker_pid = pid;
	f->cur.blocker_query = query;
	f->cur.blocker = who;
	flow_report(f);
	f->cur.blocker_query = f->cur.blocker = NULL; /* valid during the call only */
}

/*
 * What uses VSCHEMA in the database, into WHY ("" when nothing): the rows of
 * pgflip.routes naming it and the live rows of pgflip.instances (seen within
 * MIGRATE_INSTANCE_TTL_S) counting clients on it. False with e->err when the
 * query fails.
 */
static bool guard_users(Flow *f, const char *vschema, char *why, size_t whylen)
{
	char ttl[16];
	snprintf(ttl, sizeof ttl, "%d", MIGRATE_INSTANCE_TTL_S);
	const char *params[2] = {vschema, ttl};
	PGresult *r = exec_query(&f->e,
				 "SELECT (SELECT string_agg(CASE WHEN coalesce(key, '') = '' THEN kind ELSE kind || ' ' || key END, "
				 "', ' ORDER BY position NULLS FIRST, kind, key) FROM pgflip.routes WHERE schema = $1), "
				 "(SELECT string_agg(format('%s (%s client%s)', id, clients ->> $1, "
				 "CASE WHEN clients ->> $1 = '1' THEN '' ELSE 's' END), ', ' ORDER BY id) "
				 "FROM pgflip.instances WHERE seen_at > now() - $2::int * interval '1 second' "
				 "AND CASE WHEN jsonb_typeof(clients -> $1) = 'number' THEN (clients ->> $1)::numeric > 0 "
				 "ELSE false END)",
				 2, params);
	if (!r)
		return false;
	const char *routes = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
	const char *inst = PQgetisnull(r, 0, 1) ? NULL : PQgetvalue(r, 0, 1);
	snprintf(why, whylen, "%s%s%s%s%s", routes ? "routes naming it: " : "", routes ? routes : "",
		 routes && inst ? "; " : "", inst ? "live pgflip instances with clients on it: " : "", inst ? inst : "");
	PQclear(r);
	return true;
}

/* Reports (and logs) that step I of L, which drops VSCHEMA, waits for WHY. */
static void guard_report(Flow *f, const StepList *l, size_t i, const char *vschema, const char *why)
{
	exec_log(&f->e, "waiting until version schema %s is unused: %s", vschema, why);
	progress_reset(&f->cur, MIGRATE_PHASE_WAIT_UNUSED);
	f->cur.step = i + 1;
	f->cur.n_steps = l->n;
	f->cur.note = why;
	flow_report(f);
	f->cur.note = NULL;
}

/*
 * The drop guard for step I of L, which drops VSCHEMA: returns true once
 * nothing uses it (database, then may_drop), asking every API_GUARD_POLL_MS;
 * false (f->held, e->err) after unused_timeout_ms, on a cancel, or when the
 * check fails.
 */
static bool drop_guard_wait(Flow *f, const StepList *l, size_t i)
{
	const char *vschema = l->v[i].drops;
	const MigrateRequest *rq = f->rq;
	int64_t timeout = rq->unused_timeout_ms > 0 ? rq->unused_timeout_ms : MIGRATE_UNUSED_TIMEOUT_MS;
	int64_t start = exec_now_ms();
	char why[768], shown[768] = "";
	for (;;) {
		if (!guard_users(f, vschema, why, sizeof why))
			break;
		if (!why[0] && rq->hooks.may_drop) {
			char herr[512] = "";
			if (!rq->hooks.may_drop(rq->hooks.arg, vschema, herr, sizeof herr))
				snprintf(why, sizeof why, "%s", herr[0] ? herr : "the caller's may_drop refused");
		}
		if (!why[0])
			return true;
		if (strcmp(why, shown) != 0) {
			snprintf(shown, sizeof shown, "%s", why);
			guard_report(f, l, i, vschema, shown);
		}
		if (exec_cancelled(&f->e))
			break;
		int64_t waited = exec_now_ms() - start;
		if (waited >= timeout) {
			snprintf(f->e.err, sizeof f->e.err, "version schema %s is still in use after %lld ms: %s", vschema,
				 (long long)waited, why);
			break;
		}
		exec_sleep_ms(timeout - waited < API_GUARD_POLL_MS ? timeout - waited : API_GUARD_POLL_MS);
	}
	f->held = true;
	return false;
}

/* hooks.before: the drop guard for each step of [A, B) that drops a version schema. */
static bool on_before(void *arg, Exec *e, const StepList *l, size_t a, size_t b)
{
	(void)e;
	for (size_t i = a; i < b; i++)
		if (l->v[i].drops && !drop_guard_wait(arg, l, i))
			return false;
	return true;
}

/* ---- opening and ending a flow ---- */

static void flow_init(Flow *f, const MigrateRequest *rq, MigrateResult *out)
{
	memset(f, 0, sizeof *f);
	memset(out, 0, sizeof *out);
	f->rq = rq;
	f->out = out;
	f->cur.rows_total = -1;
	f->cur.eta_s = -1;
}

static bool flow_connect(Flow *f)
{
	const MigrateRequest *rq = f->rq;
	if (!exec_connect(&f->e, rq->dsn, rq->schema ? rq->schema : "public", &rq->opt)) {
		flow_fail(f, "%s", f->e.err);
		return false;
	}
	f->e.hooks = (ExecHooks){
		.log = rq->hooks.log ? on_log : NULL,
		.step = on_step,
		.backfill = on_backfill,
		.lock_wait = on_lock_wait,
		.load = rq->hooks.load ? on_load : NULL,
		.drain = rq->hooks.drain && rq->hooks.undrain ? on_drain : NULL,
		.undrain = rq->hooks.drain && rq->hooks.undrain ? on_undrain : NULL,
		.before = on_before,
		.cancel = rq->hooks.cancel,
		.arg = f,
	};
	return true;
}

/* Closes the flow with status ST: the last report, the connections. */
static MigrateStatus flow_end(Flow *f, MigrateStatus st)
{
	f->out->status = st;
	if (st == MIGRATE_OK)
		f->out->err[0] = '\0';
	progress_reset(&f->cur, st == MIGRATE_OK	  ? MIGRATE_PHASE_DONE
				: st == MIGRATE_CANCELLED ? MIGRATE_PHASE_CANCELLED
							  : MIGRATE_PHASE_FAILED);
	f->cur.note = st == MIGRATE_OK ? NULL : f->out->err;
	flow_report(f);
	f->cur.note = NULL;
	f->out->strong_lock_ms = f->e.strong_lock_ms;
	snprintf(f->out->strong_lock_step, sizeof f->out->strong_lock_step, "%s", f->e.strong_lock_step);
	exec_close(&f->e);
	return st;
}

/* ---- the flows on the active migration ---- */

/* The result's migration from ST, with its parent's version schema. */
static void flow_set_state(Flow *f, const MigState *st)
{
	MigState parent = {0};
	bool found = false;
	if (st->parent && !state_get(&f->e, st->parent, &parent, &found))
		f->e.err[0] = '\0'; /* only the result's "previous" is missing */
	flow_set_mig(f, st->name, st->vschema, found ? parent.vschema : NULL);
	migstate_free(&parent);
}

/* Step list WHICH of ST's stored plan. A plan stored before PlanStep.drops
 * existed gets it from the notes of the steps that drop a version schema. */
static bool stored_steps(Flow *f, const MigState *st, const char *which, StepList *out)
{
	if (!plan_steps_from_json(json_object_get(st->plan, which), out, f->e.err, sizeof f->e.err))
		return false;
	for (size_t i = 0; i < out->n; i++) {
		PlanStep *s = &out->v[i];
		const char *vs = NULL;
		if (s->drops || !s->note)
			continue;
		if (strcmp(s->note, PLAN_NOTE_DROP_NEW) == 0)
			vs = st->vschema;
		else if (strcmp(s->note, PLAN_NOTE_DROP_PREVIOUS) == 0 && f->out->previous[0])
			vs = f->out->previous;
		if (vs && !(s->drops = strdup(vs))) {
			plan_steps_free(out);
			snprintf(f->e.err, sizeof f->e.err, "out of memory");
			return false;
		}
	}
	/* complete contracts the previous version (it drops its columns and
	 * triggers before any version schema): every step of it waits until
	 * nothing uses that version, the tables' own schema for a first
	 * migration, as the drop of a version schema does */
	const char *previous = f->out->previous[0] ? f->out->previous : f->e.schema;
	for (size_t i = 0; strcmp(which, "complete") == 0 && i < out->n; i++) {
		if (!out->v[i].drops && !(out->v[i].drops = strdup(previous))) {
			plan_steps_free(out);
			snprintf(f->e.err, sizeof f->e.err, "out of memory");
			return false;
		}
	}
	return true;
}

static bool save_start(Exec *e, size_t next, void *arg)
{
	(void)arg;
	return state_set_done(e, e->mig_name, "start_done", next);
}

static bool save_complete(Exec *e, size_t next, void *arg)
{
	(void)arg;
	return state_set_done(e, e->mig_name, "complete_done", next);
}

/* Runs step list WHICH of ST from step FROM as PHASE (see exec_steps).
 * False when the list cannot be read (e->err); else *OK is whether every
 * step ran. */
static bool run_list(Flow *f, const MigState *st, const char *which, MigratePhase phase, size_t from, bool best_effort,
		     ExecProgressFn save, bool *ok)
{
	StepList l;
	if (!stored_steps(f, st, which, &l))
		return false;
	f->e.mig_name = st->name;
	f->list_phase = phase;
	f->held = false;
	*ok = exec_steps(&f->e, &l, from, best_effort, save, NULL);
	plan_steps_free(&l);
	progress_reset(&f->cur, f->cur.phase); /* its notes and tables are gone with L */
	return true;
}

/* Runs the rollback steps of ST (best effort). A cancel or the drop guard
 * stops it before anything is marked: the migration stays active. */
static MigrateStatus do_rollback(Flow *f, const MigState *st, bool force)
{
	Exec *e = &f->e;
	json_t *irr = json_object_get(st->plan, "irreversible");
	if (json_is_string(irr) && !force)
		return flow_fail(f, "migration %s cannot be rolled back: %s (use --force to roll back the rest)", st->name,
				 json_string_value(irr));
	bool ok;
	if (!run_list(f, st, "rollback", MIGRATE_PHASE_ROLLBACK, 0, true, NULL, &ok))
		return flow_fail(f, "%s", e->err);
	if (!ok && (f->held || e->cancelled))
		return flow_stopped(f, "rollback", st->name);
	if (!state_set_status(e, st->name, "rolled_back"))
		return flow_fail(f, "rolled back, but the state update failed: %s", e->err);
	if (!ok)
		return flow_fail(f, "rollback of %s finished with errors: %s", st->name, e->err);
	exec_log(e, "rolled back %s", st->name);
	return MIGRATE_OK;
}

/* Runs (or resumes) the complete steps of ST, whose start must be done. */
static MigrateStatus do_complete(Flow *f, const MigState *st)
{
	Exec *e = &f->e;
	size_t nstart = json_array_size(json_object_get(st->plan, "start"));
	if ((size_t)st->start_done < nstart)
		return flow_fail(f, "start of %s has not finished (%d of %zu steps); run start again to resume", st->name,
				 st->start_done, nstart);
	bool ok;
	if (!run_list(f, st, "complete", MIGRATE_PHASE_COMPLETE, (size_t)st->complete_done, false, save_complete, &ok))
		return flow_fail(f, "%s", e->err);
	if (!ok && (f->held || e->cancelled))
		return flow_stopped(f, "complete", st->name);
	if (!ok)
		return flow_fail(f, "complete of %s failed: %s (fix the cause and run complete again, or roll back)",
				 st->name, e->err);
	if (!state_set_status(e, st->name, "complete"))
		return flow_fail(f, "%s", e->err);
	exec_log(e, "completed %s: version schema %s", st->name, st->vschema);
	return MIGRATE_OK;
}

/* Runs (or resumes) the start steps of ST; a failure (not a cancel) rolls
 * the migration back. */
static MigrateStatus run_start_steps(Flow *f, const MigState *st)
{
	Exec *e = &f->e;
	bool ok;
	if (!run_list(f, st, "start", MIGRATE_PHASE_START, (size_t)st->start_done, false, save_start, &ok))
		return flow_fail(f, "%s", e->err);
	if (ok) {
		exec_log(e, "started %s: version schema %s", st->name, st->vschema);
		return MIGRATE_OK;
	}
	if (e->cancelled)
		return flow_stopped(f, "start", st->name);
	char why[sizeof e->err];
	memcpy(why, e->err, sizeof why);
	exec_log(e, "start of %s failed: %s; rolling back", st->name, why);
	if (do_rollback(f, st, true) != MIGRATE_OK)
		exec_warn(e, "%s", f->out->err);
	return flow_fail(f, "start of %s failed: %s", st->name, why);
}

/* Start steps of the active migration NAME, then (COMPLETE) its complete. */
static MigrateStatus start_then(Flow *f, const char *name, bool complete)
{
	MigState st = {0};
	bool found;
	if (!state_active(&f->e, &st, &found) || !found) {
		migstate_free(&st);
		return flow_fail(f, "state row of %s vanished: %s", name, f->e.err);
	}
	flow_set_state(f, &st);
	MigrateStatus rc = run_start_steps(f, &st);
	if (rc == MIGRATE_OK && complete) {
		migstate_free(&st);
		if (!state_active(&f->e, &st, &found) || !found)
			rc = flow_fail(f, "state row of %s vanished: %s", name, f->e.err);
		else
			rc = do_complete(f, &st);
	}
	migstate_free(&st);
	return rc;
}

/* Takes the schema's lock and runs FN on its active migration. */
static MigrateStatus with_active(Flow *f, MigrateStatus (*fn)(Flow *, const MigState *, bool), bool force)
{
	MigState st;
	bool found;
	if (!state_init(&f->e) || !state_lock(&f->e) || !state_active(&f->e, &st, &found))
		return flow_fail(f, "%s", f->e.err);
	if (!found)
		return flow_fail(f, "no active migration in schema %s", f->e.schema);
	flow_set_state(f, &st);
	MigrateStatus rc = fn(f, &st, force);
	migstate_free(&st);
	return rc;
}

static MigrateStatus complete_fn(Flow *f, const MigState *st, bool force)
{
	(void)force;
	return do_complete(f, st);
}

MigrateStatus migrate_complete(const MigrateRequest *rq, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	flow_phase(&f, MIGRATE_PHASE_COMPLETE);
	return flow_end(&f, flow_connect(&f) ? with_active(&f, complete_fn, false) : MIGRATE_FAILED);
}

MigrateStatus migrate_rollback(const MigrateRequest *rq, bool force, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	flow_phase(&f, MIGRATE_PHASE_ROLLBACK);
	return flow_end(&f, flow_connect(&f) ? with_active(&f, do_rollback, force) : MIGRATE_FAILED);
}

/* ---- start ---- */

/* Reads the catalog and plans MF over it (PREV: the version schema it
 * replaces), then runs the plan's checks. */
static MigrateStatus plan_now(Flow *f, const MigFile *mf, const char *prev, Plan **out)
{
	char err[1024] = "";
	*out = NULL;
	Snapshot *snap = catalog_read(&f->e, f->e.schema);
	if (!snap)
		return flow_fail(f, "%s", f->e.err);
	Plan *p = plan_build(mf, snap, f->e.schema, prev, err, sizeof err);
	snapshot_free(snap);
	if (!p)
		return flow_fail(f, "%s", err);
	/* before anything changes, not even the state row: a migration whose
	 * expressions cannot run is refused like one the planner refuses */
	if (!exec_checks(&f->e, &p->check)) {
		plan_free(p);
		return flow_fail(f, "%s: %s", mf->path, f->e.err);
	}
	*out = p;
	return MIGRATE_OK;
}

/* start --dry-run: the plan over the catalog, checked, printed; no change. */
static MigrateStatus start_dry_run(Flow *f, const MigFile *mf)
{
	MigState latest = {0};
	bool has_latest = false;
	if (state_exists(&f->e) && !state_latest(&f->e, &latest, &has_latest))
		return flow_fail(f, "%s", f->e.err);
	Plan *p;
	if (has_latest)
		copy_name(f->out->previous, latest.vschema);
	MigrateStatus rc = plan_now(f, mf, has_latest ? latest.vschema : NULL, &p);
	migstate_free(&latest);
	if (rc != MIGRATE_OK)
		return rc;
	char *text = plan_format(p);
	plan_free(p);
	if (!text)
		return flow_fail(f, "out of memory");
	if (f->rq->hooks.plan)
		f->rq->hooks.plan(f->rq->hooks.arg, text);
	else
		fputs(text, stdout);
	free(text);
	return MIGRATE_OK;
}

/* A new start of MF after LATEST (NULL: the first migration): plan, store
 * the plan in a new state row, run it. */
static MigrateStatus start_new(Flow *f, const MigFile *mf, const MigState *latest, bool complete)
{
	Plan *p;
	MigrateStatus rc = plan_now(f, mf, latest ? latest->vschema : NULL, &p);
	if (rc != MIGRATE_OK)
		return rc;
	json_t *pj = json_pack("{s:o, s:o, s:o}", "start", plan_steps_to_json(&p->start), "complete",
			       plan_steps_to_json(&p->complete), "rollback", plan_steps_to_json(&p->rollback));
	if (pj && p->irreversible)
		json_object_set_new(pj, "irreversible", json_string(p->irreversible));
	if (pj && f->origin)
		json_object_set_new(pj, "origin", json_string(f->origin));
	if (!pj)
		rc = flow_fail(f, "out of memory");
	else if (!state_begin(&f->e, mf->name, latest ? latest->name : NULL, p->vschema, mf->root, pj))
		rc = flow_fail(f, "%s", f->e.err);
	json_decref(pj);
	plan_free(p);
	return rc == MIGRATE_OK ? start_then(f, mf->name, complete) : rc;
}

/* MF's version schema, named in the flow's reports; false (with the
 * flow's error set) when it could not be a route. */
static bool flow_vschema(Flow *f, const MigFile *mf)
{
	char err[1024] = "";
	char *vschema = plan_vschema_name(mf, f->e.schema);
	bool ok = vschema && plan_vschema_check(mf, f->e.schema, vschema, err, sizeof err);
	flow_set_mig(f, mf->name, vschema, NULL);
	free(vschema);
	if (!ok)
		flow_fail(f, "%s", err[0] ? err : "out of memory");
	return ok;
}

/* start of MF (loaded): refuses a version schema that could not be a
 * route before anything is read, then resumes MF when it is active, or
 * starts it anew. */
static MigrateStatus start_flow(Flow *f, const MigFile *mf, bool complete, bool dry_run)
{
	Exec *e = &f->e;
	bool vschema_ok = flow_vschema(f, mf);
	flow_phase(f, MIGRATE_PHASE_PLAN);
	if (!vschema_ok)
		return MIGRATE_FAILED;
	if (dry_run)
		return start_dry_run(f, mf);
	MigState active = {0}, latest = {0}, existing = {0};
	bool has_active = false, has_latest = false, has_existing = false;
	MigrateStatus rc;
	if (!state_init(e) || !state_lock(e) || !state_active(e, &active, &has_active) ||
	    !state_get(e, mf->name, &existing, &has_existing) || !state_latest(e, &latest, &has_latest)) {
		rc = flow_fail(f, "%s", e->err);
	} else if (has_active && strcmp(active.name, mf->name) != 0) {
		rc = flow_fail(f, "migration %s is active in schema %s; complete or roll it back first", active.name,
			       e->schema);
	} else if (has_active) {
		exec_log(e, "resuming start of %s at step %d", active.name, active.start_done + 1);
		rc = start_then(f, active.name, complete);
	} else if (has_existing && strcmp(existing.status, "complete") == 0) {
		rc = flow_fail(f, "migration %s is already complete in schema %s", mf->name, e->schema);
	} else {
		rc = start_new(f, mf, has_latest ? &latest : NULL, complete);
	}
	migstate_free(&active);
	migstate_free(&latest);
	migstate_free(&existing);
	return rc;
}

/* The syntax of a migration given as text: by FILENAME's extension, else
 * JSON when it opens with '{' (a YAML file would rarely). */
static bool text_is_json(const char *filename, const char *text, size_t len)
{
	const char *dot = filename ? strrchr(filename, '.') : NULL;
	if (dot && strcmp(dot, ".json") == 0)
		return true;
	if (dot && (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0))
		return false;
	size_t i = 0;
	while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r' || text[i] == '\n'))
		i++;
	return i < len && text[i] == '{';
}

/* Lint before start: an error refuses the start unless rq->lint_force;
 * warnings are for `lint` and `validate` to show. True when start may go on. */
static bool start_lint(Flow *f, const MigFile *mf)
{
	LintReport lr = {0};
	lint_migfile(mf, &lr);
	char *first = lr.errors && !f->rq->lint_force ? lint_first_error(&lr) : NULL;
	bool ok = !lr.errors || f->rq->lint_force;
	if (!ok)
		flow_fail(f, "%s (%zu lint error(s); `pgflip migrate lint` explains them, --force starts anyway)",
			  first ? first : "lint errors", lr.errors);
	free(first);
	lint_report_free(&lr);
	return ok;
}

/* The start flow of a file loaded (LOADED) into MF, or its load error ERR. */
static MigrateStatus start_loaded(Flow *f, MigFile *mf, bool loaded, const char *err, bool complete, bool dry_run)
{
	MigrateStatus rc;
	if (!loaded)
		rc = flow_fail(f, "%s", err);
	else if (!start_lint(f, mf))
		rc = MIGRATE_FAILED;
	else
		rc = flow_connect(f) ? start_flow(f, mf, complete, dry_run) : MIGRATE_FAILED;
	migfile_free(mf);
	return flow_end(f, rc);
}

MigrateStatus migrate_start(const MigrateRequest *rq, const char *filename, const char *text, size_t len,
			    bool complete, bool dry_run, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	flow_phase(&f, MIGRATE_PHASE_PLAN);
	char err[1024] = "";
	MigFile mf;
	bool loaded = migfile_parse(filename ? filename : "", text ? text : "", text ? len : 0,
				    text_is_json(filename, text ? text : "", text ? len : 0), &mf, err, sizeof err);
	return start_loaded(&f, &mf, loaded, err, complete, dry_run);
}

MigrateStatus migrate_start_file(const MigrateRequest *rq, const char *path, bool complete, bool dry_run,
				 MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	flow_phase(&f, MIGRATE_PHASE_PLAN);
	char err[1024] = "";
	MigFile mf;
	bool loaded = migfile_load(path, &mf, err, sizeof err);
	return start_loaded(&f, &mf, loaded, err, complete, dry_run);
}

/* ---- validate ---- */

/* validate of MF: what start would refuse before it changes anything, with
 * the reads start does (state, catalog, the checks' SELECTs) and no write. */
static MigrateStatus validate_flow(Flow *f, const MigFile *mf)
{
	Exec *e = &f->e;
	if (!flow_vschema(f, mf))
		return MIGRATE_FAILED;
	MigState active = {0}, latest = {0}, existing = {0};
	bool has_active = false, has_latest = false, has_existing = false;
	MigrateStatus rc = MIGRATE_OK;
	if (state_exists(e) && (!state_active(e, &active, &has_active) || !state_get(e, mf->name, &existing, &has_existing) ||
				!state_latest(e, &latest, &has_latest)))
		rc = flow_fail(f, "%s", e->err);
	else if (has_active)
		rc = flow_fail(f, "migration %s is active in schema %s; complete or roll it back first", active.name, e->schema);
	else if (has_existing && strcmp(existing.status, "complete") == 0)
		rc = flow_fail(f, "migration %s is already complete in schema %s", mf->name, e->schema);
	if (rc == MIGRATE_OK) {
		Plan *p = NULL;
		if (has_latest)
			copy_name(f->out->previous, latest.vschema);
		rc = plan_now(f, mf, has_latest ? latest.vschema : NULL, &p);
		plan_free(p);
	}
	migstate_free(&active);
	migstate_free(&latest);
	migstate_free(&existing);
	return rc;
}

MigrateStatus migrate_validate(const MigrateRequest *rq, const char *path, LintReport *lint, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	char err[1024] = "";
	MigFile mf;
	if (!migfile_load(path, &mf, err, sizeof err)) {
		flow_fail(&f, "%s", err);
		out->status = MIGRATE_FAILED;
		return MIGRATE_FAILED;
	}
	lint_migfile(&mf, lint);
	MigrateStatus rc = flow_connect(&f) ? validate_flow(&f, &mf) : MIGRATE_FAILED;
	if (rc == MIGRATE_OK && lint->errors) {
		char *first = lint_first_error(lint);
		rc = flow_fail(&f, "%s", first ? first : "lint errors");
		free(first);
	}
	migfile_free(&mf);
	exec_close(&f.e);
	out->status = rc;
	return rc;
}

/* ---- folders: migrate DIR and plan's chain ---- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_migration_file(const char *n)
{
	const char *dot = strrchr(n, '.');
	return n[0] != '.' && dot && (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0 || strcmp(dot, ".json") == 0);
}

static void free_files(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Sorted migration file names of DIR (caller frees with free_files), or
 * NULL with ERR. */
static char **list_files(const char *dir, size_t *n, char *err, size_t errlen)
{
	*n = 0;
	DIR *d = opendir(dir);
	if (!d) {
		char buf[128];
		snprintf(err, errlen, "%s: %s", dir, strerror_r(errno, buf, sizeof buf));
		return NULL;
	}
	char **v = calloc(API_MAX_FILES, sizeof *v);
	struct dirent *de;
	bool ok = v != NULL;
	while (ok && (de = readdir(d)) != NULL) {
		if (!is_migration_file(de->d_name))
			continue;
		if (*n >= API_MAX_FILES) {
			snprintf(err, errlen, "%s: more than %d migration files", dir, API_MAX_FILES);
			ok = false;
		} else if (!(v[*n] = strdup(de->d_name))) {
			ok = false;
		} else {
			(*n)++;
		}
	}
	closedir(d);
	if (!ok) {
		if (!err[0])
			snprintf(err, errlen, "out of memory");
		free_files(v, *n);
		*n = 0;
		return NULL;
	}
	qsort(v, *n, sizeof *v, cmp_names);
	return v;
}

static char *join_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* The migrations of DIR's files FILES, in order, each started and
 * completed unless it is complete already. */
static MigrateStatus dir_flow(Flow *f, const char *dir, char **files, size_t n)
{
	Exec *e = &f->e;
	char err[1024] = "";
	if (!state_init(e))
		return flow_fail(f, "%s", e->err);
	size_t applied = 0;
	for (size_t i = 0; i < n; i++) {
		char *p = join_path(dir, files[i]);
		MigFile mf;
		if (!p || !migfile_load(p, &mf, err, sizeof err)) {
			free(p);
			return flow_fail(f, "%s", p ? err : "out of memory");
		}
		free(p);
		MigState st;
		bool found;
		MigrateStatus rc = MIGRATE_OK;
		if (!state_get(e, mf.name, &st, &found)) {
			rc = flow_fail(f, "%s", e->err);
		} else if (!(found && strcmp(st.status, "complete") == 0)) {
			rc = start_lint(f, &mf) ? start_flow(f, &mf, true, false) : MIGRATE_FAILED;
			applied++;
		}
		migstate_free(&st);
		migfile_free(&mf);
		if (rc != MIGRATE_OK)
			return rc;
	}
	exec_log(e, "%zu migration(s) applied, %zu already complete", applied, n - applied);
	return MIGRATE_OK;
}

MigrateStatus migrate_dir(const MigrateRequest *rq, const char *dir, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	flow_phase(&f, MIGRATE_PHASE_PLAN);
	char err[1024] = "";
	size_t n = 0;
	char **files = list_files(dir, &n, err, sizeof err);
	MigrateStatus rc;
	if (!files)
		rc = flow_fail(&f, "%s", err);
	else
		rc = flow_connect(&f) ? dir_flow(&f, dir, files, n) : MIGRATE_FAILED;
	free_files(files, n);
	return flow_end(&f, rc);
}

/*
 * plan's simulation: the tables after the files of DIR that sort before
 * BASE, planned and contracted in turn from an empty schema. *SNAP and
 * *PREV (the last version schema) are replaced. False with ERR when an
 * earlier file cannot be read.
 */
static bool plan_chain(Flow *f, const char *dir, const char *base, Snapshot **snap, char **prev, char *err,
		       size_t errlen)
{
	size_t n = 0;
	char **files = list_files(dir, &n, err, errlen);
	bool ok = true;
	for (size_t i = 0; files && i < n && strcmp(files[i], base) < 0 && ok; i++) {
		char *p = join_path(dir, files[i]);
		MigFile pf;
		char perr[1024];
		if (!p || !migfile_load(p, &pf, perr, sizeof perr)) {
			snprintf(err, errlen, "while reading earlier migration %.150s: %.800s", files[i], p ? perr : "out of memory");
			free(p);
			ok = false;
			break;
		}
		Plan *pp = plan_build(&pf, *snap, f->rq->schema ? f->rq->schema : "public", *prev, perr, sizeof perr);
		Snapshot *next = pp ? snapshot_copy(pp->after) : NULL;
		if (!next) {
			/* e.g. a table made by raw SQL: without a database the
			 * planner cannot know it; keep going without that file */
			flow_note(f, "note: earlier migration not simulated: %s", pp ? "out of memory" : perr);
		} else {
			plan_contract_snapshot(next);
			snapshot_free(*snap);
			*snap = next;
			free(*prev);
			*prev = strdup(pp->vschema);
		}
		plan_free(pp);
		migfile_free(&pf);
		free(p);
	}
	free_files(files, n);
	return ok;
}

char *migrate_plan(const MigrateRequest *rq, const char *path, bool chain, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	const char *schema = rq->schema ? rq->schema : "public";
	char err[1024] = "";
	MigFile mf;
	if (!migfile_load(path, &mf, err, sizeof err)) {
		out->status = flow_fail(&f, "%s", err);
		return NULL;
	}
	Snapshot *snap = snapshot_new(schema);
	char *prev = NULL, *text = NULL;
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	bool ok = snap && dir;
	if (ok && chain)
		ok = plan_chain(&f, dir, slash ? slash + 1 : path, &snap, &prev, err, sizeof err);
	Plan *p = ok ? plan_build(&mf, snap, schema, prev, err, sizeof err) : NULL;
	if (p && !(text = plan_format(p)))
		snprintf(err, sizeof err, "out of memory");
	if (!text)
		out->status = flow_fail(&f, "%s", err[0] ? err : "out of memory");
	plan_free(p);
	free(dir);
	free(prev);
	snapshot_free(snap);
	migfile_free(&mf);
	return text;
}

/* ---- the state schema ---- */

MigrateStatus migrate_init(const MigrateRequest *rq, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	MigrateStatus rc = MIGRATE_FAILED;
	if (flow_connect(&f))
		rc = state_init(&f.e) ? MIGRATE_OK : flow_fail(&f, "%s", f.e.err);
	return flow_end(&f, rc);
}

json_t *migrate_history(const MigrateRequest *rq, char *err, size_t errlen)
{
	Exec e;
	json_t *h = NULL;
	if (exec_connect(&e, rq->dsn, rq->schema ? rq->schema : "public", &rq->opt))
		h = state_history(&e);
	if (!h)
		snprintf(err, errlen, "%s", e.err);
	exec_close(&e);
	return h;
}

/* ---- baseline, pull, create ---- */

/* The text of an empty migration file: what `create` writes and what a
 * baseline records. */
static const char API_EMPTY_YAML[] = "operations: []\n";

/* Whether pgroll's state schema PG holds a history of the flow's schema:
 * *N its rows (-1 when PG.migrations does not exist). False with e->err
 * when a query fails. */
static bool pgroll_rows(Flow *f, const char *pg, long *n)
{
	*n = -1;
	const char *params[2] = {pg, f->e.schema};
	PGresult *r = exec_query(&f->e, "SELECT to_regclass(format('%I.migrations', $1::text)) IS NOT NULL", 1, params);
	if (!r)
		return false;
	bool exists = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!exists)
		return true;
	SqlBuf b;
	sqlbuf_init(&b);
	sqlbuf_add(&b, "SELECT count(*) FROM ");
	sqlbuf_qname(&b, pg, "migrations");
	sqlbuf_add(&b, " WHERE schema = $1");
	char *sql = sqlbuf_steal(&b);
	r = sql ? exec_query(&f->e, sql, 1, params + 1) : NULL;
	free(sql);
	if (r)
		*n = atol(PQgetvalue(r, 0, 0));
	PQclear(r);
	return r != NULL;
}

/* Takes the schema's lock; fails unless pgflip has no migration of it
 * (WHAT: the command, for the reason). */
static MigrateStatus no_history(Flow *f, const char *what)
{
	Exec *e = &f->e;
	MigState active = {0}, latest = {0};
	bool has_active = false, has_latest = false;
	MigrateStatus rc = MIGRATE_OK;
	if (!state_init(e) || !state_lock(e) || !state_active(e, &active, &has_active) ||
	    !state_latest(e, &latest, &has_latest))
		rc = flow_fail(f, "%s", e->err);
	else if (has_active || has_latest)
		rc = flow_fail(f, "%s: schema %s already has pgflip migrations (latest: %s); %s is for a database never "
			       "migrated with pgflip", what, e->schema, has_active ? active.name : latest.name, what);
	migstate_free(&active);
	migstate_free(&latest);
	return rc;
}

static MigrateStatus baseline_flow(Flow *f, const char *name)
{
	Exec *e = &f->e;
	char err[1024] = "", path[MIGRATE_NAME_MAX + 8];
	if (!name[0] || strchr(name, '/') || strlen(name) >= MIGRATE_NAME_MAX)
		return flow_fail(f, "baseline: bad migration name \"%s\"", name);
	snprintf(path, sizeof path, "%s.yaml", name);
	MigFile mf;
	if (!migfile_parse(path, API_EMPTY_YAML, strlen(API_EMPTY_YAML), false, &mf, err, sizeof err))
		return flow_fail(f, "%s", err);
	long pgroll = 0;
	MigrateStatus rc = flow_vschema(f, &mf) ? no_history(f, "baseline") : MIGRATE_FAILED;
	if (rc == MIGRATE_OK && !pgroll_rows(f, "pgroll", &pgroll))
		rc = flow_fail(f, "%s", e->err);
	if (rc == MIGRATE_OK && pgroll > 0)
		rc = flow_fail(f, "baseline: schema %s is managed by pgroll (%ld migrations in pgroll.migrations); adopt its "
			       "history with `pgflip migrate baseline --from-pgroll`", e->schema, pgroll);
	if (rc == MIGRATE_OK) {
		f->origin = "baseline";
		rc = start_new(f, &mf, NULL, false);
	}
	if (rc == MIGRATE_OK && !state_set_status(e, mf.name, "complete"))
		rc = flow_fail(f, "%s", e->err);
	if (rc == MIGRATE_OK)
		exec_log(e, "baseline %s recorded: the schema as it is; later migrations chain from version schema %s",
			 mf.name, f->out->vschema);
	migfile_free(&mf);
	return rc;
}

MigrateStatus migrate_baseline(const MigrateRequest *rq, const char *name, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	flow_phase(&f, MIGRATE_PHASE_PLAN);
	return flow_end(&f, flow_connect(&f) ? baseline_flow(&f, name ? name : "") : MIGRATE_FAILED);
}

static MigrateStatus adopt_flow(Flow *f, const char *pg)
{
	Exec *e = &f->e;
	long n = 0;
	char latest[MIGRATE_NAME_MAX] = "", why[256];
	int count = 0;
	MigrateStatus rc = no_history(f, "baseline --from-pgroll");
	if (rc != MIGRATE_OK)
		return rc;
	if (!pgroll_rows(f, pg, &n))
		return flow_fail(f, "%s", e->err);
	if (n <= 0)
		return flow_fail(f, "baseline --from-pgroll: no pgroll history of schema %s (%s.migrations %s)", e->schema,
				 pg, n < 0 ? "does not exist" : "has no row of it");
	if (!state_adopt_pgroll(e, pg, latest, sizeof latest, &count))
		return flow_fail(f, "baseline --from-pgroll: %s", e->err);
	MigState st = {0};
	bool found = false;
	if (state_latest(e, &st, &found) && found)
		flow_set_mig(f, st.name, st.vschema, NULL);
	migstate_free(&st);
	if (!conf_route_schema_check(latest, why, sizeof why))
		exec_warn(e, "pgroll's latest version schema %s cannot be a route of the proxy: %s", latest, why);
	exec_log(e, "adopted %d pgroll migration(s) of schema %s; latest version schema %s (the next migration's "
		    "previous version)", count, e->schema, latest);
	return MIGRATE_OK;
}

MigrateStatus migrate_adopt_pgroll(const MigrateRequest *rq, const char *pgroll_schema, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	flow_phase(&f, MIGRATE_PHASE_PLAN);
	const char *pg = pgroll_schema && pgroll_schema[0] ? pgroll_schema : "pgroll";
	return flow_end(&f, flow_connect(&f) ? adopt_flow(&f, pg) : MIGRATE_FAILED);
}

/* A stored migration's file in DIR: NAME.json, or the NAME.yaml, .yml or
 * .json already there (*EXISTS then). NULL when out of memory. */
static char *pull_path(const char *dir, const char *name, bool *exists)
{
	static const char *const exts[] = {".json", ".yaml", ".yml"};
	char base[MIGRATE_NAME_MAX + 8];
	*exists = false;
	for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
		snprintf(base, sizeof base, "%s%s", name, exts[i]);
		char *p = join_path(dir, base);
		if (!p || access(p, F_OK) == 0) {
			*exists = p != NULL;
			return p;
		}
		free(p);
	}
	snprintf(base, sizeof base, "%s.json", name);
	return join_path(dir, base);
}

/* Checks that each migration of ROWS can be written to DIR: a name that is a
 * file name, and no file of that name there with other content. */
static MigrateStatus pull_check(Flow *f, const char *dir, json_t *rows)
{
	size_t i;
	json_t *row;
	json_array_foreach(rows, i, row) {
		const char *name = mj_str(row, "name", "");
		bool exists;
		if (!name[0] || name[0] == '.' || strchr(name, '/') || strlen(name) >= MIGRATE_NAME_MAX)
			return flow_fail(f, "pull: migration name \"%s\" cannot be a file name", name);
		char *p = pull_path(dir, name, &exists);
		if (!p)
			return flow_fail(f, "out of memory");
		MigFile mf;
		char err[1024] = "";
		bool same = true;
		if (exists) {
			same = migfile_load(p, &mf, err, sizeof err) && json_equal(mf.root, json_object_get(row, "migration"));
			if (!err[0])
				migfile_free(&mf);
		}
		json_object_set_new(row, "exists", json_boolean(exists));
		MigrateStatus rc = same ? MIGRATE_OK
					: flow_fail(f, "pull: %s differs from migration %s stored in the database%s%s; nothing "
						       "written (move it away to pull)", p, name, err[0] ? ": " : "", err);
		free(p);
		if (rc != MIGRATE_OK)
			return rc;
	}
	return MIGRATE_OK;
}

/* Writes migration TREE to a new file PATH (pretty JSON). */
static MigrateStatus pull_write(Flow *f, const char *path, const json_t *tree)
{
	char buf[128];
	FILE *fp = fopen(path, "wx");
	if (!fp)
		return flow_fail(f, "pull: %s: %s", path, strerror_r(errno, buf, sizeof buf));
	int w = json_dumpf(tree, fp, JSON_INDENT(2));
	bool ok = w == 0 && fputc('\n', fp) != EOF;
	if (fclose(fp) != 0 || !ok) {
		remove(path);
		return flow_fail(f, "pull: cannot write %s", path);
	}
	return MIGRATE_OK;
}

static MigrateStatus pull_flow(Flow *f, const char *dir)
{
	Exec *e = &f->e;
	json_t *rows = state_exists(e) ? state_files(e) : json_array();
	if (!rows)
		return flow_fail(f, "%s", e->err);
	MigrateStatus rc = MIGRATE_OK;
	char buf[128];
	if (json_array_size(rows) == 0)
		rc = flow_fail(f, "pull: no migrations in schema %s", e->schema);
	else if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		rc = flow_fail(f, "pull: %s: %s", dir, strerror_r(errno, buf, sizeof buf));
	else
		rc = pull_check(f, dir, rows);
	size_t i, wrote = 0;
	json_t *row;
	json_array_foreach(rows, i, row) {
		if (rc != MIGRATE_OK || json_is_true(json_object_get(row, "exists")))
			continue;
		bool exists;
		char *p = pull_path(dir, mj_str(row, "name", ""), &exists);
		rc = p ? pull_write(f, p, json_object_get(row, "migration")) : flow_fail(f, "out of memory");
		if (rc == MIGRATE_OK) {
			exec_log(e, "wrote %s", p);
			wrote++;
		}
		free(p);
	}
	if (rc == MIGRATE_OK)
		exec_log(e, "%zu file(s) written, %zu already there", wrote, json_array_size(rows) - wrote);
	json_decref(rows);
	return rc;
}

MigrateStatus migrate_pull(const MigrateRequest *rq, const char *dir, MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	return flow_end(&f, flow_connect(&f) ? pull_flow(&f, dir) : MIGRATE_FAILED);
}

/* The next number of DIR's migration files FILES (N): one more than the
 * largest leading number, *WIDTH its digits (at least 2, as pgroll's
 * examples: 01_...). */
static long next_number(char **files, size_t n, int *width)
{
	long max = 0;
	*width = 2;
	for (size_t i = 0; i < n; i++) {
		size_t d = strspn(files[i], "0123456789");
		if (d == 0 || d > 9)
			continue;
		long v = strtol(files[i], NULL, 10);
		if (v > max)
			max = v;
		if ((int)d > *width)
			*width = (int)d;
	}
	return max + 1;
}

MigrateStatus migrate_create(const MigrateRequest *rq, const char *dir, const char *name, char *path, size_t pathlen,
			     MigrateResult *out)
{
	Flow f;
	flow_init(&f, rq, out);
	path[0] = '\0';
	char err[1024] = "", base[MIGRATE_NAME_MAX], buf[128];
	size_t n = 0;
	const char *schema = rq->schema ? rq->schema : "public";
	if (!name[0] || name[0] == '.' || strchr(name, '/') || strlen(name) > 200 || strchr(name, '.'))
		return out->status = flow_fail(&f, "create: bad migration name \"%s\" (a file name, without extension)", name);
	char **files = list_files(dir, &n, err, sizeof err);
	if (!files)
		return out->status = flow_fail(&f, "create: %s", err);
	int width;
	long next = next_number(files, n, &width);
	free_files(files, n);
	snprintf(base, sizeof base, "%0*ld_%s.yaml", width, next, name);
	char *p = join_path(dir, base);
	MigFile mf;
	MigrateStatus rc = MIGRATE_OK;
	if (!p || !migfile_parse(p, API_EMPTY_YAML, strlen(API_EMPTY_YAML), false, &mf, err, sizeof err)) {
		free(p);
		return out->status = flow_fail(&f, "%s", p ? err : "out of memory");
	}
	char *vschema = plan_vschema_name(&mf, schema);
	if (!vschema || !plan_vschema_check(&mf, schema, vschema, err, sizeof err))
		rc = flow_fail(&f, "create: %s", vschema ? err : "out of memory");
	free(vschema);
	migfile_free(&mf);
	FILE *fp = rc == MIGRATE_OK ? fopen(p, "wx") : NULL;
	if (rc == MIGRATE_OK && !fp)
		rc = flow_fail(&f, "create: %s: %s", p, strerror_r(errno, buf, sizeof buf));
	if (fp) {
		bool written = fputs(API_EMPTY_YAML, fp) != EOF;
		if (fclose(fp) != 0 || !written) {
			remove(p);
			rc = flow_fail(&f, "create: cannot write %s", p);
		}
	}
	if (rc == MIGRATE_OK)
		snprintf(path, pathlen, "%s", p);
	free(p);
	return out->status = rc;
}
