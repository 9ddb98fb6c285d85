/*
 * migrate/api.h: the migration flows as one API, called by `pgflip migrate`
 * (cli.c, which only parses arguments and prints) and by the daemon's
 * migration worker thread (proxy/migrator.c). DESIGN.md decision 6.
 *
 * Every call is synchronous: it opens its own libpq connection(s) from
 * MigrateRequest.dsn, runs, and closes them before it returns. Nothing here
 * keeps mutable state outside the request and the result (no static or
 * global variables), so one call may run on a worker thread while the caller's
 * event loop goes on; two calls at once on different threads are safe too
 * (the state schema's advisory lock serialises them in the database).
 *
 * Hooks are called on the thread that made the call. Strings handed to a
 * hook are valid only during that call: copy what you keep.
 */
#ifndef PGFLIP_MIGRATE_API_H
#define PGFLIP_MIGRATE_API_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/exec.h"

/*
 * Errors: every call answers with a status and, when it is not MIGRATE_OK, a
 * one-line reason in MigrateResult.err, the same line `pgflip migrate`
 * prints after "pgflip migrate: " (a file error as "FILE:LINE: ...", a server
 * error as its message). The drop guard's refusal names what still uses the
 * version schema: "complete of 02_x stopped: version schema public_01_base is
 * still in use after 60000 ms: routes naming it: default; live pgflip
 * instances with clients on it: web-1 (3 clients)".
 */

/* What a flow is doing now (MigrateProgress.phase). */
typedef enum MigratePhase {
	MIGRATE_PHASE_IDLE = 0,
	MIGRATE_PHASE_PLAN,          /* loading the file, reading the catalog, planning, running the checks */
	MIGRATE_PHASE_START,         /* start's steps (expand) other than backfill */
	MIGRATE_PHASE_BACKFILL,      /* a backfill step: table, rows done/total, rows/s, ETA are set */
	MIGRATE_PHASE_WAIT_UNUSED,   /* waiting until no route and no client uses the version schema to drop */
	MIGRATE_PHASE_COMPLETE,      /* complete's steps (contract) */
	MIGRATE_PHASE_ROLLBACK,      /* rollback's steps */
	MIGRATE_PHASE_DONE,
	MIGRATE_PHASE_FAILED,
	MIGRATE_PHASE_CANCELLED,
} MigratePhase;

/* "idle", "plan", "start", "backfill", "wait_unused", "complete", "rollback",
 * "done", "failed", "cancelled". */
const char *migrate_phase_name(MigratePhase phase);

/* A progress report: when a flow begins (PLAN), at the start of each step,
 * at a backfill's start and after each of its batches, while a step waits on
 * a lock (when exec.c looks up the blockers, and once more with lock_wait_ms
 * 0 when that wait is over), when the drop guard starts waiting or what it
 * waits for changes (WAIT_UNUSED), and last with DONE, FAILED or CANCELLED.
 * Fields that do not apply are NULL, 0, or -1 where -1 means unknown. */
typedef struct MigrateProgress {
	MigratePhase phase;
	const char *migration;       /* the migration's name, or NULL before it is known */
	const char *vschema;         /* its version schema, or NULL */
	size_t step;                 /* 1-based index of the running step in its list, 0 none */
	size_t n_steps;              /* length of that list */
	const char *note;            /* the step's note (what it does); WAIT_UNUSED: what still uses the
				      * version schema; FAILED, CANCELLED: MigrateResult.err; else NULL */
	const char *table;           /* BACKFILL: the table being filled, else NULL */
	int64_t rows_done;           /* BACKFILL: rows filled so far (resumed runs count earlier batches) */
	int64_t rows_total;          /* BACKFILL: rows to fill (estimate at the backfill's start: reltuples,
				      * or count(*) for a table never vacuumed or analyzed), -1 unknown;
				      * raised to rows_done when that passes it, and equal to it at the end */
	double rows_per_s;           /* BACKFILL: over this run's batches, 0 before the first */
	double eta_s;                /* BACKFILL: seconds left at rows_per_s, -1 unknown */
	int64_t lock_wait_ms;        /* the running step has waited this long on a lock (0: not waiting) */
	int blocker_pid;             /* when waiting: the first pid pg_blocking_pids() names, 0 unknown */
	const char *blocker_query;   /* and its query (pg_stat_activity.query), or NULL */
	const char *blocker;         /* and who it is, one line: "pid 4242 (app, psql, idle in transaction,
				      * 12.5 s in transaction, holds AccessShareLock on items)", or NULL */
	int64_t strong_lock_ms;      /* the longest time a step of this flow held a lock stronger than SHARE
				      * UPDATE EXCLUSIVE so far (ExecOptions' strong-lock clock, exec.h), 0 none */
	const char *strong_lock_step; /* the step that held it ("step 1 (add new column)"), or NULL */
} MigrateProgress;

typedef struct MigrateHooks {
	/* progress: see MigrateProgress; NULL = none (the CLI's progress bar stays
	 * ExecOptions.progress). */
	void (*progress)(void *arg, const MigrateProgress *p);
	/* log: each informational line (what the CLI prints on stderr as
	 * "pgflip migrate: LINE", without that prefix and without newline);
	 * NULL = stderr as today, subject to ExecOptions.quiet; when set, it
	 * gets every line whatever quiet says. Lines that are not the final
	 * error but must be seen (a failed start's rollback that failed too)
	 * come here as well. */
	void (*log)(void *arg, const char *line);
	/* may_drop: called before the steps that drop version schema VSCHEMA
	 * (rollback: the migration's own; complete: its parent's), after the
	 * database-side guard (no row of pgflip.routes names VSCHEMA and no live
	 * row of pgflip.instances reports clients on it) has passed. Returns true
	 * when VSCHEMA may go now; false to make the flow wait (it asks again every
	 * 100 ms until MigrateRequest.unused_timeout_ms is spent, then fails with
	 * the last ERR, e.g. "2 clients still routed to public_002_x: 17, 18").
	 * NULL = only the database-side guard. */
	bool (*may_drop)(void *arg, const char *vschema, char *err, size_t errlen);
	/* cancel: when another thread sets it, a running backfill stops at the next
	 * batch boundary (its progress is saved: the next start resumes it) and the
	 * flow returns MIGRATE_CANCELLED without rolling back. Polled between
	 * batches and between steps only. NULL = cannot be cancelled. */
	const atomic_bool *cancel;
	/* load: the foreground latency ratio a backfill adapts to (ExecHooks.load,
	 * exec_pace; ExecOptions.max_latency_ratio sets the limit); NULL = the
	 * backfill never slows down. */
	double (*load)(void *arg);
	/* drain, undrain: a drain window for a step whose lock attempts keep
	 * failing (ExecHooks.drain); NULL = none. */
	int (*drain)(void *arg, const int *pids, size_t n, char *why, size_t whylen);
	void (*undrain)(void *arg);
	/* plan: start's DRY_RUN plan text (what `plan` prints); NULL = stdout. */
	void (*plan)(void *arg, const char *text);
	void *arg;
} MigrateHooks;

#define MIGRATE_DRAIN_PIDS EXEC_DRAIN_PIDS /* lock holders a drain request names, at most */
#define MIGRATE_UNUSED_TIMEOUT_MS 60000  /* how long complete/rollback wait for a version schema to be unused */

typedef struct MigrateRequest {
	const char *dsn;             /* libpq conninfo ("" = libpq's environment) */
	const char *schema;          /* schema of the tables being migrated, e.g. "public" */
	ExecOptions opt;             /* exec_options_default() then overrides */
	int unused_timeout_ms;       /* 0 = MIGRATE_UNUSED_TIMEOUT_MS */
	bool lint_force;             /* start: run even when lint finds errors (start --force) */
	MigrateHooks hooks;
} MigrateRequest;

typedef enum MigrateStatus {
	MIGRATE_OK = 0,
	MIGRATE_FAILED = 1,          /* err says why; a failed start was rolled back */
	MIGRATE_CANCELLED = 3,       /* cancel was set; start resumes where it stopped (complete too;
				      * a rollback stopped between its steps may simply run again) */
} MigrateStatus;

#define MIGRATE_NAME_MAX 256

typedef struct MigrateResult {
	MigrateStatus status;
	char err[1024];              /* one line, "" on success */
	char migration[MIGRATE_NAME_MAX];   /* the migration the flow ran on, "" when none */
	char vschema[MIGRATE_NAME_MAX];     /* its version schema */
	char previous[MIGRATE_NAME_MAX];    /* the version schema before it (its parent's), "" when none */
	int64_t strong_lock_ms;      /* as MigrateProgress.strong_lock_ms, for the whole flow */
	char strong_lock_step[256];  /* and its step, "" when none */
} MigrateResult;

/*
 * Start lints the file first (lint.h): a lint error refuses it with
 * "FILE:LINE: lint error RULE: WHAT (N lint error(s); ...)" before anything
 * is read from the database, unless rq->lint_force.
 *
 * migrate_start: starts (expand) the migration whose file content is TEXT
 * (LEN bytes, YAML or JSON, as `pgflip migrate start FILE` reads: JSON when
 * FILENAME ends in .json, YAML when in .yaml or .yml, else JSON when TEXT
 * opens with '{'; FILENAME names it in errors and gives the migration's name
 * when the file has none, as for a file on disk; NULL counts as ""). Resumes the same migration when it is active.
 * COMPLETE: complete it right after (start --complete). DRY_RUN: print the
 * plan to stdout, change nothing. Returns the status, also in OUT->status.
 */
MigrateStatus migrate_start(const MigrateRequest *rq, const char *filename, const char *text, size_t len,
			    bool complete, bool dry_run, MigrateResult *out);
/* migrate_start_file: the same, reading PATH (the CLI's start). */
MigrateStatus migrate_start_file(const MigrateRequest *rq, const char *path, bool complete, bool dry_run,
				 MigrateResult *out);
/* migrate_complete: contracts the active migration of rq->schema, after the
 * guard on its parent's version schema (see MigrateHooks.may_drop). */
MigrateStatus migrate_complete(const MigrateRequest *rq, MigrateResult *out);
/* migrate_rollback: runs the active migration's rollback steps, after the
 * guard on its version schema. FORCE: also when the plan says irreversible. */
MigrateStatus migrate_rollback(const MigrateRequest *rq, bool force, MigrateResult *out);
/* migrate_dir: starts and completes, in name order, every migration file of
 * DIR (*.yaml, *.yml, *.json) not yet complete (the CLI's `migrate DIR`);
 * stops at the first failure (a lint error too, unless rq->lint_force).
 * OUT names the last migration it ran. */
MigrateStatus migrate_dir(const MigrateRequest *rq, const char *dir, MigrateResult *out);
/* migrate_init: creates the state schema (migrate_schema_ddl) if missing;
 * `pgflip migrate init`. */
MigrateStatus migrate_init(const MigrateRequest *rq, MigrateResult *out);

/*
 * migrate_baseline: records the tables of rq->schema as they are as
 * migration NAME (`pgflip migrate baseline NAME`), the starting point of a
 * database never migrated with pgflip: a complete state row with no
 * operations and plan.origin "baseline", and its version schema
 * (<schema>_NAME, views over every table, privileges as on the tables), which
 * the next migration replaces as any migration's. Fails, changing nothing,
 * when NAME cannot name a version schema (the route rule), when the schema
 * has pgflip migrations already, or when pgroll.migrations has a history of
 * it (use migrate_adopt_pgroll). OUT names the migration and version schema.
 */
MigrateStatus migrate_baseline(const MigrateRequest *rq, const char *name, MigrateResult *out);
/*
 * migrate_adopt_pgroll: takes over a database that pgroll manages (`pgflip
 * migrate baseline --from-pgroll`): copies the history of rq->schema in
 * PGROLL_SCHEMA.migrations (NULL or "": "pgroll") into pgflip's state
 * (state_adopt_pgroll), so that the next migration's previous version is
 * pgroll's latest version schema, which stays as it is (no rebuild; clients
 * on it keep working). pgroll's own schema and event triggers are left
 * alone. Fails, changing nothing, when pgflip has a history of the schema,
 * pgroll has none, or pgroll's last migration is active. OUT->vschema is the
 * latest version schema.
 */
MigrateStatus migrate_adopt_pgroll(const MigrateRequest *rq, const char *pgroll_schema, MigrateResult *out);
/*
 * migrate_pull: writes the migrations stored in the database (those of
 * rq->schema that are not rolled back, oldest first) to DIR (made when
 * missing, one level), one file per migration: NAME.json holding the tree
 * as it was started (a start's file after YAML or JSON parsing; key order is
 * jsonb's). A file of that name already there (NAME.json, .yaml or .yml)
 * with the same tree is left as it is; with another, nothing is written and
 * the call fails naming it. So `migrate DIR` over the result finds every
 * migration complete.
 */
MigrateStatus migrate_pull(const MigrateRequest *rq, const char *dir, MigrateResult *out);
/*
 * migrate_create: writes an empty migration file (`operations: []`) to DIR,
 * named NN_NAME.yaml where NN is one more than the largest leading number of
 * DIR's migration files (the files migrate_dir reads), zero-padded to their
 * widest such number and at least 2 digits. NAME: a file name without
 * extension, and with rq->schema a version schema the proxy can route (the
 * rule plan_vschema_check applies). No database. PATH gets the file's path.
 * Never overwrites.
 */
MigrateStatus migrate_create(const MigrateRequest *rq, const char *dir, const char *name, char *path, size_t pathlen,
			     MigrateResult *out);
/*
 * migrate_validate: what `start PATH` would refuse, with nothing changed in
 * the database (`pgflip migrate validate`): loads PATH, lints it (every
 * finding into LINT, which the caller frees with lint_report_free), then
 * reads the state and the catalog, plans against them and runs the plan's
 * checks (SELECT ... LIMIT 0 of each up/down), as start does before its
 * first write. MIGRATE_OK when all of that passes and lint has no error;
 * else MIGRATE_FAILED with OUT->err the first reason: a load error, "migration
 * X is active...", the planner's or the server's refusal, or the first lint
 * error ("FILE:LINE: lint error RULE: ..."; LINT has them all).
 */
struct LintReport;
MigrateStatus migrate_validate(const MigrateRequest *rq, const char *path, struct LintReport *lint, MigrateResult *out);

/*
 * migrate_plan: the printable plan (start, complete, rollback) of the
 * migration file PATH, with no database: the tables are simulated from the
 * earlier files (in name order) of PATH's folder unless !CHAIN; an earlier
 * file the simulation cannot plan (tables made by raw SQL) is skipped with a
 * "note:" log line. Uses rq->schema and rq->hooks.log only. Returns the text
 * (caller frees), or NULL with OUT->err set.
 */
char *migrate_plan(const MigrateRequest *rq, const char *path, bool chain, MigrateResult *out);

/*
 * migrate_history: every migration of rq->schema, oldest first, as a JSON
 * array of {"name", "parent", "version_schema", "status" (active, complete,
 * rolled_back), "start_done", "start_steps", "complete_done",
 * "complete_steps", "backfill" (the state row's), "origin" (pgflip,
 * baseline or pgroll: who made the row), "created_at", "updated_at"}; an
 * empty array when the state schema does not exist yet.
 * NULL with ERR filled on a connection or query failure. Caller decrefs.
 */
json_t *migrate_history(const MigrateRequest *rq, char *err, size_t errlen);

/*
 * The schema pgflip, shared with the proxy's route store (DESIGN.md decision
 * 8). Besides pgflip.migrations (state.c):
 *
 *   pgflip.routes (kind text, key text, schema text, percent int,
 *                  canary_key text, position int, PRIMARY KEY (kind, key))
 *       kind is default | app | user | addr | canary; key is '' for default
 *       and canary; percent and canary_key are set for canary only; position
 *       keeps the file order of pins.
 *   pgflip.route_state (id boolean PRIMARY KEY DEFAULT true CHECK (id),
 *                       generation bigint NOT NULL, changed_at timestamptz
 *                       NOT NULL, changed_by text NOT NULL)
 *       one row: the generation of the table's content.
 *   pgflip.instances (id text PRIMARY KEY, host text, pid int, started_at
 *                     timestamptz, seen_at timestamptz NOT NULL,
 *                     clients jsonb NOT NULL DEFAULT '{}')
 *       one row per running pgflip, refreshed every second; clients is
 *       {"VSCHEMA": number of its connected clients routed there}. A row
 *       whose seen_at is older than MIGRATE_INSTANCE_TTL_S is not live.
 *
 * A change of routes is one transaction: SELECT ... FROM pgflip.route_state
 * FOR UPDATE, generation + 1, replace the rows of pgflip.routes, then
 * NOTIFY MIGRATE_ROUTES_CHANNEL with the new generation as payload.
 */
#define MIGRATE_ROUTES_CHANNEL "pgflip_routes"
#define MIGRATE_INSTANCE_TTL_S 5

/* migrate_schema_ddl: one SQL text (several statements, idempotent, its own
 * transaction under the state schema's advisory lock) that creates schema
 * pgflip and every table above and pgflip.migrations. Static storage. */
const char *migrate_schema_ddl(void);

#endif
