/*
 * migrate/exec.h: the only part of the migration module that talks to
 * PostgreSQL (libpq): the catalog reader, the step executor with lock_timeout
 * and retries, the batched backfill, and the state schema.
 *
 * Every step runs under lock_timeout (ExecOptions.lock_timeout_ms). A step
 * that fails with SQLSTATE 55P03 (lock_not_available) is retried after an
 * exponential backoff with jitter until ExecOptions.retry_total_ms is spent,
 * and each retry is logged with the step that waited (its number in the list
 * and its note, not the first step of its transaction);
 * while a step waits longer than a quarter of the lock timeout, a second connection
 * asks pg_blocking_pids() who holds the lock and the wait is logged with the
 * blockers' pid, state and query. Adjacent transactional steps share one
 * transaction (retried whole); STEP_OUTSIDE_TX steps run alone.
 *
 * Nothing here keeps state outside the Exec: one Exec per thread, and several
 * threads may each run their own (migrate/api.h runs flows on the daemon's
 * worker thread). ExecHooks let the caller see what happens (log lines, step
 * starts, backfill batches, lock waits), gate a group of steps, and cancel a
 * backfill at a batch boundary.
 */
#ifndef PGFLIP_MIGRATE_EXEC_H
#define PGFLIP_MIGRATE_EXEC_H

#include <libpq-fe.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "migrate/plan.h"
#include "migrate/snapshot.h"

#define EXEC_MUSTCHECK __attribute__((warn_unused_result))

/* Defaults, with the reason for each value. */
#define EXEC_LOCK_TIMEOUT_MS 500    /* a blocked DDL queues every reader behind it; half a second is what a user notices */
#define EXEC_RETRY_TOTAL_MS 60000   /* a minute of retries rides out a typical long transaction */
#define EXEC_BACKOFF_MIN_MS 50      /* first retry soon: most lock holders are short transactions */
#define EXEC_BACKOFF_MAX_MS 5000    /* never sleep so long that a free window is missed by much */
#define EXEC_BATCH_SIZE 10000       /* rows per backfill transaction: big enough to amortise the round trips, small
				     * enough to keep row locks and WAL per transaction modest */
#define EXEC_MAX_BATCH_SIZE 1000000
#define EXEC_MAX_BACKFILL_WORKERS 64 /* connections of one parallel backfill at most */
/* The first attempt at a group of steps waits for its locks at most this
 * long (or lock_timeout, when that is shorter), each retry twice as long up
 * to lock_timeout: while a DDL statement waits in the lock queue, every
 * client queues behind it, and the short transactions of live traffic let
 * go well within this. */
#define EXEC_FIRST_LOCK_TIMEOUT_MS 100
/* The lock-queue guard (guard.c) does not queue a step behind a session
 * whose transaction is older than this (or half the lock timeout, when that
 * is shorter) and that holds a lock on a relation the step locks. */
#define EXEC_GUARD_OLD_MS 100
/* Drain windows (ExecHooks.drain): asked for before the attempt that
 * follows EXEC_DRAIN_AFTER lock timeouts in a row, or when the guard has
 * held a group back EXEC_DRAIN_GUARD_MS; then at most one each
 * EXEC_DRAIN_EVERY_MS, doubling after each, up to EXEC_DRAIN_EVERY_MAX_MS
 * (a window that cannot help costs the clients its pause: not often). */
#define EXEC_DRAIN_AFTER 2
#define EXEC_DRAIN_GUARD_MS 1000
#define EXEC_DRAIN_EVERY_MS 1000
#define EXEC_DRAIN_EVERY_MAX_MS 16000
#define EXEC_DRAIN_PIDS 16          /* lock holders a drain request names, at most */

typedef struct ExecOptions {
	int lock_timeout_ms;
	int retry_total_ms;
	int batch_size;
	int batch_delay_ms;
	/* connections a keyset backfill runs on, each on its own key range
	 * (backfill.c); 1 (the default): this one alone */
	int backfill_workers;
	/* a backfill slows down while hooks.load says the foreground latency is
	 * above this ratio to its baseline (exec_pace); 0: never */
	double max_latency_ratio;
	bool progress;      /* progress bar on stderr */
	bool quiet;         /* no informational lines */
	/* SET ROLE to this role right after connecting, so that every statement
	 * (DDL, backfill, state) runs as it and what start creates is owned by
	 * it, as pgroll's --role; NULL or "" = the login's own role. The string
	 * must outlive the call. */
	const char *role;
} ExecOptions;

typedef struct Exec Exec;

/* A backfill's progress, reported at its start and after each batch. */
typedef struct ExecBackfill {
	const char *table;   /* physical table */
	int64_t done;        /* rows filled so far, earlier (resumed) runs included */
	int64_t total;       /* estimate taken at this run's start (see run_backfill), -1 unknown */
	double rows_per_s;   /* over this run's batches; 0 before the first */
	double eta_s;        /* (total - done) / rows_per_s; -1 unknown */
} ExecBackfill;

/*
 * What the executor tells its caller, and asks it. Every member may be NULL.
 * Called on the thread running the Exec; strings are valid during the call.
 */
typedef struct ExecHooks {
	/* an informational line (no "pgflip migrate: " prefix, no newline);
	 * NULL: stderr, unless ExecOptions.quiet */
	void (*log)(void *arg, const char *line);
	/* step I (0-based) of L starts (a group reports each of its steps) */
	void (*step)(void *arg, const StepList *l, size_t i);
	/* backfill progress */
	void (*backfill)(void *arg, const ExecBackfill *b);
	/* a statement has waited WAITED_MS on a lock and the monitor looked up
	 * its blockers, or the lock-queue guard waits WAITED_MS for an old
	 * transaction in the way (guard.c): the first blocker's PID, QUERY and
	 * WHO (one line: pid, user, application, state, age, locks held), 0/NULL
	 * when unknown; once more with WAITED_MS 0 when that wait is over */
	void (*lock_wait)(void *arg, int64_t waited_ms, int pid, const char *query, const char *who);
	/* before exec_steps runs the group of steps [A, B) of L: false stops the
	 * list (E->err set by the hook) and best-effort mode does not skip it */
	bool (*before)(void *arg, Exec *e, const StepList *l, size_t a, size_t b);
	/* a drain window (the proxy's ddl_drain_timeout): the proxy holds the
	 * new transactions of the migrated database and returns once its
	 * transactions in flight have ended, with the ms of the window left
	 * (> 0: run the step now, then undrain); 0: the window ended first
	 * (nothing is held any more); < 0: no window (WHY says why: none of
	 * PIDS, the N backends holding locks the step needs, is the proxy's;
	 * drains are off). NULL: no drain windows (the CLI) */
	int (*drain)(void *arg, const int *pids, size_t n, char *why, size_t whylen);
	void (*undrain)(void *arg);
	/* the foreground's latency now against before the migration (p99 over
	 * the last seconds / p99 before it began), or < 0 when unknown; asked
	 * after each backfill batch (exec_pace) */
	double (*load)(void *arg);
	/* set by another thread: exec_steps stops before its next group and a
	 * backfill before its next batch, with E->cancelled and e->err set */
	const atomic_bool *cancel;
	void *arg;
} ExecHooks;

struct Exec {
	PGconn *conn;
	PGconn *monitor;    /* opened on the first long wait */
	char *dsn;
	char *schema;       /* schema of the tables being migrated */
	ExecOptions opt;
	char err[1024];     /* last failure, one line */
	char sqlstate[6];   /* SQLSTATE of the last exec_query that failed on the server, "" otherwise */
	/* set by exec_steps for the state row being run */
	const char *mig_name;
	ExecHooks hooks;    /* zeroed by exec_connect; set after it */
	bool cancelled;     /* the last failure was hooks.cancel */
	/* the longest time a group of steps held a lock stronger than SHARE
	 * UPDATE EXCLUSIVE on a relation others may wait for (guard_strong_lock;
	 * from the start of the statement that took it, its own lock wait
	 * included, to the end of COMMIT), and that group's first step,
	 * since exec_connect; 0 and "" when none did */
	int64_t strong_lock_ms;
	char strong_lock_step[256];
	/* drain windows of the running group: the next allowed (exec_now_ms) and
	 * the gap after it; windows asked for and drained, since connect */
	int64_t drain_next_ms;
	int drain_every_ms;
	int drains, drains_ok;
	/* lock_timeout of the running transaction (exec_begin_tx), ms; 0: the
	 * session's, opt.lock_timeout_ms */
	int tx_lock_timeout_ms;
	struct drand48_data rng;  /* retry jitter, per Exec (drand48() shares one state) */
};

void exec_options_default(ExecOptions *o);

/*
 * The backfill's pace: rows per batch, and a pause after each batch in
 * percent of the time that batch took (a duty cycle), adapted to the
 * foreground's latency. Smaller batches hold their row locks for less
 * time; pauses leave the server's CPU and disks to the clients. exec_pace
 * moves P, given RATIO (ExecHooks.load: p99 now / p99 before the migration,
 * < 0 unknown). The backfill asks it after every batch while the ratio is
 * over the limit, else at most once every EXEC_PACE_EVERY_MS: the ratio is
 * new once a second, and speeding up at every batch on a stale one ran
 * full batches into a load already slowed:
 *   RATIO > MAX_RATIO          batch halves (down to EXEC_MIN_BATCH_SIZE), pause
 *                              doubles (from EXEC_PACE_MIN_PAUSE_PCT up to
 *                              EXEC_PACE_MAX_PAUSE_PCT): "slower", returns -1;
 *   RATIO < 0.8 x MAX_RATIO    pause halves (under the minimum: none), then batch
 *                              grows by a quarter up to MAX_BATCH: "faster", +1;
 *   else, unknown, or MAX_RATIO 0   unchanged (a dead band, so the pace does
 *                              not swing with every noisy second), 0.
 * Never stops: at its slowest a backfill works one 33rd of the time, in
 * batches of EXEC_MIN_BATCH_SIZE rows.
 */
typedef struct ExecPace {
	int batch;          /* rows per batch now */
	int pause_pct;      /* pause after each batch, in % of its time */
} ExecPace;
#define EXEC_MIN_BATCH_SIZE 1000
#define EXEC_PACE_MIN_PAUSE_PCT 25
#define EXEC_PACE_MAX_PAUSE_PCT 3200
#define EXEC_PACE_EVERY_MS 1000
int exec_pace(ExecPace *p, double ratio, double max_ratio, int max_batch);

/* Connects with conninfo DSN ("" = libpq environment), then SET ROLE
 * opt->role when set. False with e->err set (one line: "cannot connect:
 * ...", "cannot SET ROLE \"r\": ERROR: ..."). E is zeroed first: set
 * e->hooks after. */
bool exec_connect(Exec *e, const char *dsn, const char *schema, const ExecOptions *opt) EXEC_MUSTCHECK;
/* Closes both connections; accepts a never-connected Exec. */
void exec_close(Exec *e);

/*
 * catalog_read: the tables of SCHEMA (ordinary and partitioned) with columns,
 * types (format_type), defaults, NOT NULL, comments, constraints and indexes.
 * Returns a new snapshot (caller frees) or NULL with e->err set (and
 * e->sqlstate when the server failed it). Outside a transaction it runs in
 * its own, retried on lock_timeout; inside one, in that transaction, once.
 */
Snapshot *catalog_read(Exec *e, const char *schema);

/* Callback after each finished step group: NEXT is the index of the first step
 * not yet done. Returns false to stop (e->err set). */
typedef bool (*ExecProgressFn)(Exec *e, size_t next, void *arg);

/*
 * exec_steps: runs L->v[FROM..] in order (groups as described above). Before
 * each group asks hooks.before and polls hooks.cancel; after each group calls
 * PROGRESS (may be NULL). BEST_EFFORT: a failed group is re-run step by step
 * and failing steps are logged and skipped (rollback); a refusal of
 * hooks.before or a cancel is never skipped. Returns true when every step
 * ran; false with e->err set (and e->cancelled when hooks.cancel stopped it).
 */
bool exec_steps(Exec *e, const StepList *l, size_t from, bool best_effort, ExecProgressFn progress, void *arg)
	EXEC_MUSTCHECK;

/*
 * exec_checks: runs CHECKS (Plan.check) in one transaction that is rolled
 * back, under lock_timeout with the same retries as a step. Returns true
 * when every check passed; false with e->err = "NOTE: server error" for the
 * first check that failed (the note names the operation and expression), or
 * the retry or connection failure.
 */
bool exec_checks(Exec *e, const StepList *checks) EXEC_MUSTCHECK;

/* ---- state schema (state.c) ---- */

typedef struct MigState {
	char *name;
	char *parent;
	char *vschema;
	char *status;       /* active, complete, rolled_back */
	json_t *migration;  /* the migration file's tree */
	json_t *plan;       /* {"start": [...], "complete": [...], "rollback": [...], "irreversible": ...} */
	json_t *backfill;   /* {"table": {"done": N, "last": [...], "finished": bool}} */
	int start_done;
	int complete_done;
} MigState;

void migstate_free(MigState *s);

/* Creates schema pgflip and its tables if missing (idempotent): runs
 * migrate_schema_ddl() (api.h). */
bool state_init(Exec *e) EXEC_MUSTCHECK;
/* Session advisory lock serialising migrators of e->schema; waits up to the
 * retry budget. */
bool state_lock(Exec *e) EXEC_MUSTCHECK;
/* The row of NAME (FOUND false when absent). */
bool state_get(Exec *e, const char *name, MigState *out, bool *found) EXEC_MUSTCHECK;
/* The active migration of e->schema. */
bool state_active(Exec *e, MigState *out, bool *found) EXEC_MUSTCHECK;
/* The newest completed migration of e->schema. */
bool state_latest(Exec *e, MigState *out, bool *found) EXEC_MUSTCHECK;
/* Inserts (or revives a rolled back) row NAME as active with PLAN. */
bool state_begin(Exec *e, const char *name, const char *parent, const char *vschema, const json_t *migration,
		 const json_t *plan) EXEC_MUSTCHECK;
bool state_set_done(Exec *e, const char *name, const char *field, size_t next) EXEC_MUSTCHECK;
bool state_set_status(Exec *e, const char *name, const char *status) EXEC_MUSTCHECK;
/* Whether pgflip.migrations exists (false also when the query fails). */
bool state_exists(Exec *e);
/* Every migration of e->schema as migrate_history() describes (api.h);
 * NULL with e->err set. */
json_t *state_history(Exec *e);
/* The migrations of e->schema that are not rolled back, oldest first, as a
 * JSON array of {"name", "status", "migration" (the file's tree as
 * started)}; NULL with e->err set. Caller decrefs. */
json_t *state_files(Exec *e);
/*
 * state_adopt_pgroll: copies pgroll's history of e->schema from state schema
 * PGROLL (PGROLL.migrations, pgroll's pkg/state) into pgflip.migrations, in
 * one transaction: every migration complete, with its parent, its migration
 * tree and plan {"origin": "pgroll", "pgroll_type": pgroll's migration_type,
 * empty step lists}; its version schema is pgroll's name for it
 * (SCHEMA_<version_schema or name>) when that schema exists, else the one
 * before it (an inferred migration has none). LATEST gets the last row's
 * version schema, *COUNT the rows. False with e->err when the history is
 * empty or not linear, its last migration is active (done = false), none of
 * its version schemas exists, or a query fails. The caller holds the lock
 * and has checked that pgflip has no history of e->schema.
 */
bool state_adopt_pgroll(Exec *e, const char *pgroll, char *latest, size_t latestlen, int *count) EXEC_MUSTCHECK;

/* ---- helpers shared by exec.c and state.c ---- */

/* Runs SQL with text PARAMS on e->conn; returns the result when it succeeded
 * (caller PQclear()s) or NULL with e->err set. */
PGresult *exec_query(Exec *e, const char *sql, int nparams, const char *const *params);
/* Informational line: to hooks.log when set, else on stderr unless quiet. */
void exec_log(Exec *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line that is not the final error but must be seen (e.g. a rollback's own
 * failure while a failed start is rolled back): to hooks.log when set, else
 * on stderr whatever quiet says. */
void exec_warn(Exec *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether hooks.cancel is set; sets e->cancelled and e->err ("cancelled")
 * when it is. */
bool exec_cancelled(Exec *e);
/* Milliseconds on the monotonic clock; sleeps MS milliseconds (EINTR resumed). */
int64_t exec_now_ms(void);
void exec_sleep_ms(int64_t ms);
/* exec_vsay: one line "pgflip migrate: MESSAGE" on stderr (exec_log and the
 * CLI's errors both go through it). */
void exec_vsay(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

#endif
