/*
 * migrate/plan.h: migration + schema snapshot -> PLAN, with no database.
 *
 * A plan is three ordered lists of steps: start (expand), complete (contract)
 * and rollback. The planner is pure: it reads a checked MigFile and a
 * Snapshot of the schema and returns SQL text, so every migration can be
 * printed (`plan FILE`, `start --dry-run`) and tested against expected SQL.
 *
 * How a migration is expanded (pgroll's model, pgflip's names):
 *  - changed or added columns are new physical columns named
 *    _pgflip_new_<column>; the old ones stay until complete; so is a table
 *    created with a name the old version keeps until complete (dropped or
 *    renamed by an earlier operation): _pgflip_new_<table>;
 *  - one sync function per changed table fills the other version's columns:
 *    when current_setting('search_path') equals the new version schema the
 *    writer is the new version and `down` fills the old columns, otherwise
 *    `up` fills the new ones. It runs BEFORE INSERT, and BEFORE UPDATE only
 *    when a column that an up/down expression mentions changed or, for
 *    old-version writers, when a column up fills is still NULL (a row the
 *    backfill has not reached) (WHEN), so unrelated updates of backfilled
 *    rows pay nothing; the backfill computes up directly;
 *  - the new version schema holds one view per table (security_invoker),
 *    mapping new-version names to physical columns, with defaults and the
 *    tables' privileges copied;
 *  - constraints are added NOT VALID (or as CONCURRENTLY built unique
 *    indexes) and validated at complete; NOT NULL goes through a validated
 *    CHECK so SET NOT NULL does not scan;
 *  - complete drops the previous version schema, the triggers and the old
 *    columns, renames new columns/tables to their final names and then, in a
 *    transaction of its own (clients lock views before tables), rebuilds the
 *    version schema from the catalog. Rollback drops the new version schema,
 *    the triggers and everything start added.
 * Semantic errors (missing table or column, name already taken) are found here,
 * before any DDL runs; so are, by Plan.check on the database, up/down
 * expressions that do not resolve (unknown function, column or type).
 */
#ifndef PGFLIP_MIGRATE_PLAN_H
#define PGFLIP_MIGRATE_PLAN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "migrate/load.h"
#include "migrate/snapshot.h"
#include "migrate/sqlbuf.h"

/* Name of the per-table sync trigger (and prefix of its function). */
#define PLAN_TRIGGER "_pgflip_sync"
/* Session setting the backfill sets (SET LOCAL) so that the UPDATE sync
 * trigger stays out of the way: the backfill computes the columns itself. */
#define PLAN_BACKFILL_GUC "pgflip.backfill"
/* Dollar-quote tag of trigger bodies; an up/down expression may not contain it. */
#define PLAN_DOLLAR "$pgflip$"
/* The schema of pgflip's own state (state.c): no version schema may take
 * its name. */
#define MIGRATE_STATE_SCHEMA "pgflip"

typedef enum StepKind {
	STEP_SQL = 0,     /* transactional; adjacent STEP_SQL steps share one transaction */
	STEP_OUTSIDE_TX,  /* runs alone, outside a transaction block (CONCURRENTLY, raw sql) */
	STEP_VIEWS,       /* (re)build a version schema from the catalog + a view map */
	STEP_BACKFILL,    /* keyset batches through the sync trigger */
} StepKind;

typedef struct PlanStep {
	StepKind kind;
	bool own_tx;      /* STEP_SQL or STEP_VIEWS that must not share its transaction (VALIDATE, the views) */
	char *sql;        /* SQL to run; STEP_VIEWS: the SQL as planned, for printing */
	char *cleanup;    /* STEP_OUTSIDE_TX: undo of a failed attempt (invalid index) or NULL */
	char *note;       /* what the step does, one line */
	char *vschema;    /* STEP_VIEWS: version schema to (re)build */
	json_t *viewmap;  /* STEP_VIEWS: name mapping (NULL: identity, temporary columns hidden) */
	char *table;      /* STEP_BACKFILL: physical table */
	char *assign;     /* STEP_BACKFILL: "col = (up), ..." computing the new columns directly */
	char **keys;      /* STEP_BACKFILL: keyset columns (physical); none: by ctid */
	char **key_types;
	size_t nkeys;
	/* the version schema this step drops for good (complete: the previous
	 * one; rollback: the migration's own), or NULL. Clients may be routed
	 * there: the flows (api.c) wait until it is unused before its group
	 * runs. (Start's and complete's views steps drop and re-create their own
	 * version schema in one transaction: not a drop in this sense.) */
	char *drops;
} PlanStep;

/* Notes of the steps that drop a version schema (PlanStep.drops); plans
 * stored before that field existed are recognised by them. */
#define PLAN_NOTE_DROP_PREVIOUS "drop the previous version schema"
#define PLAN_NOTE_DROP_NEW "drop the new version schema"

typedef struct StepList {
	PlanStep *v;
	size_t n;
	size_t cap;
} StepList;

typedef struct Plan {
	char *name;          /* migration name */
	char *schema;        /* schema of the physical tables */
	char *vschema;       /* version schema this migration creates */
	char *prev_vschema;  /* version schema it replaces, NULL when the old version is the plain schema */
	StepList start, complete, rollback;
	/* run before start changes anything: one STEP_SQL per up/down expression
	 * that can be checked on the tables as they are (the others are checked
	 * among the start steps, before the sync trigger of their table); the
	 * server plans the expression over the table and returns no row. The
	 * note names the operation and the expression. */
	StepList check;
	char *irreversible;  /* why rollback cannot fully undo start, or NULL */
	Snapshot *after;     /* physical tables after start, with new-version names */
} Plan;

/*
 * plan_build: plans migration F against SNAP (the schema as it is now: the
 * state after the previous migration completed). SCHEMA is the schema of the
 * tables; PREV_VSCHEMA is the previous version schema or NULL. Returns a plan
 * (free with plan_free) or NULL with a one-line reason in ERR, e.g.
 * "operations[1].add_column: table \"x\" does not exist".
 */
Plan *plan_build(const MigFile *f, const Snapshot *snap, const char *schema, const char *prev_vschema, char *err,
		 size_t errlen) __attribute__((warn_unused_result));
void plan_free(Plan *p);

/* Version schema of migration F in SCHEMA: F's version_schema, or (when it
 * has none, or an empty one, as in pgroll) SCHEMA_NAME with the migration's
 * name as written. Caller frees; NULL when out of memory. */
char *plan_vschema_name(const MigFile *f, const char *schema);

/*
 * plan_vschema_check: whether VSCHEMA, the version schema of F in SCHEMA
 * (plan_vschema_name), may be built. Clients are routed to it by name, so it
 * must pass conf_route_schema_check (pgroll would quote a name that does not,
 * and no route could then match it: refused, never altered); and it must be
 * neither SCHEMA nor pgflip's state schema, which start would drop (its views
 * step begins with DROP SCHEMA IF EXISTS ... CASCADE). plan_build checks it;
 * the start flow (api.c) asks first, before it touches the database. Returns true, or false
 * with ERR (ERRLEN bytes) "FILE: version schema NAME ...: why".
 */
bool plan_vschema_check(const MigFile *f, const char *schema, const char *vschema, char *err, size_t errlen);

/* Printable plan: "-- start" / "-- complete" / "-- rollback" sections, each
 * step a statement list ending in ';' with its flags as comments. Caller frees. */
char *plan_format(const Plan *p);
/* Formats one step list into B. */
void plan_format_steps(SqlBuf *b, const StepList *l);

/*
 * plan_views_sql: appends to B the SQL that (re)builds VSCHEMA over the tables
 * of SNAP: drop/create schema, one view per visible table (security_invoker),
 * column defaults, and the tables' grants (SnapTable.grants: the same
 * privileges on the view, column grants on the columns' names in VSCHEMA;
 * USAGE on VSCHEMA for Snapshot.usage). MAP (may be NULL) renames or hides
 * tables and columns by physical name; anything it does not name is shown as
 * is unless its name starts with MIGRATE_TMP_PREFIX.
 */
void plan_views_sql(SqlBuf *b, const Snapshot *snap, const json_t *map, const char *vschema);

/*
 * A backfill step's batches (exec.c runs them; the plan prints them), in
 * two statements, both plain index range scans:
 *   plan_backfill_bound_sql: the key of the batch's last row, found with an
 *       index-only scan ($1 = offset, i.e. batch size - 1; then, if LOWER,
 *       the previous batch's last key as $2..; then, if UPPER, the end of
 *       the key range a worker of a parallel backfill fills, inclusive),
 *       one row of a JSON array of the key's values as text, or none for
 *       the final batch;
 *   plan_backfill_update_sql: every row with lower < key <= bound ($1.. the
 *       lower key if LOWER, then the bound if UPPER), computing the new
 *       columns with up() (S->assign) while pgflip.backfill = 'on' keeps the
 *       UPDATE sync trigger out. Without keys (no primary key or unique NOT
 *       NULL key) a range of heap blocks ($1 first block, $2 block count); a
 *       row it moves to a later block is updated again, so ctid backfill is
 *       at-least-once. TOUCH: the column set to itself when S has no
 *       assignment.
 * SCHEMA is the tables' schema. Caller frees; NULL when out of memory.
 */
char *plan_backfill_bound_sql(const char *schema, const PlanStep *s, bool lower, bool upper);
char *plan_backfill_update_sql(const char *schema, const PlanStep *s, bool lower, bool upper, const char *touch);
/* A batch's progress, saved in its own transaction: $1 schema, $2 migration,
 * $3 table, $4 {"done": rows, "last": key, "finished": bool, "next_block"}. */
/* The same for range $5 (0-based) of a parallel backfill: backfill[$3] is
 * {"ranges": [{"lo", "hi", "last", "done", "finished"}...]}. */
#define PLAN_BACKFILL_SAVE_RANGE_SQL \
	"UPDATE pgflip.migrations SET backfill = jsonb_set(backfill, ARRAY[$3, 'ranges', $5], $4::jsonb), " \
	"updated_at = now() WHERE schema = $1 AND name = $2"
#define PLAN_BACKFILL_SAVE_SQL \
	"UPDATE pgflip.migrations SET backfill = jsonb_set(backfill, ARRAY[$3], $4::jsonb), updated_at = now() " \
	"WHERE schema = $1 AND name = $2"

/* Serialised step lists for the state table; NULL when out of memory. */
json_t *plan_steps_to_json(const StepList *l);
/* Parses what plan_steps_to_json wrote; false with ERR on a malformed list. */
bool plan_steps_from_json(const json_t *j, StepList *out, char *err, size_t errlen);
void plan_steps_free(StepList *l);

/* Turns a planned after-start snapshot into the one after complete (drops
 * hidden tables/columns, applies new names); used by `plan` to chain files
 * without a database. */
void plan_contract_snapshot(Snapshot *s);

#endif
