/*
 * migrate/plan_int.h: what plan.c (core, shared builders) and plan_ops.c (one
 * function per operation) share. Not for use outside the planner.
 */
#ifndef PGFLIP_MIGRATE_PLAN_INT_H
#define PGFLIP_MIGRATE_PLAN_INT_H

#include "migrate/plan.h"

/* Up/down expressions and backfilled tables in one migration. */
#define PLAN_MAX_RULES 4096

typedef struct SyncRule {
	SnapTable *table;
	char *target;   /* physical column the rule writes */
	char *expr;     /* up or down expression; once the operations are planned
			 * (pl_rules_finish), in the names of the version that runs it */
	char *src;      /* the expression as the migration file wrote it */
	/* how EXPR named the columns when it was written: at[j] is the name of
	 * table->cols[j] (NULL: not visible then). An up expression sees the
	 * schema as the earlier operations left it, a down expression as its own
	 * operation leaves it (pgroll's multi-operation migrations). */
	char **at;
	size_t nat;
	bool up;        /* true: old-version writers run it; false: new-version writers */
	size_t opi;     /* the operation it comes from: operations[opi].opname */
	const char *opname;
	bool late;      /* checkable only once start's earlier steps ran: its table is new,
			 * or a raw sql operation runs before it (it may define what EXPR uses) */
} SyncRule;

/* A column dup_column copied: FROM (physical, old version) is TO (physical,
 * new version) in the new version; multi-column constraints and indexes over
 * FROM are copied onto TO once every operation is planned. */
typedef struct ColumnCopy {
	const SnapTable *table;
	char *from;
	char *to;
} ColumnCopy;

/* An object a table this migration creates under a temporary name (its name
 * taken until complete) got from PostgreSQL or from the planner, named after
 * that temporary name: it takes its final name at complete (pl_name_later). */
typedef struct LaterName {
	const SnapTable *table;
	char *phys;      /* its name during start */
	char *name2;     /* a column name (sequence, unique key), or NULL (primary key) */
	char *fixed;     /* the name the migration gave it, or NULL: PostgreSQL's choice */
	const char *label; /* "pkey", "key", "seq" */
	bool index;      /* an index (else a sequence) */
} LaterName;

typedef struct Planner {
	const MigFile *f;
	Snapshot *s;          /* simulated: physical tables after start */
	/* the new-version names of the columns of the current operation's table
	 * (its "table" field) before the operation: pre_names[j] of
	 * pre_table->cols[j], NULL when hidden */
	const SnapTable *pre_table;
	char **pre_names;
	size_t npre;
	ColumnCopy *copies;
	size_t ncopies;
	LaterName *later;
	size_t nlater;
	const char *schema;
	const char *vschema;
	Plan *p;              /* start steps go straight to p->start */
	SqlBuf b;             /* the statement being built */
	SyncRule *rules;
	size_t nrules;
	SnapTable **backfill;
	size_t nbackfill;
	/* complete, in run order */
	StepList c_validate;  /* VALIDATE CONSTRAINT, each in its own transaction */
	StepList c_head;      /* drop sync functions */
	StepList c_pre;       /* SET NOT NULL, defaults, comments (physical names) */
	StepList c_drop;      /* derived: drop hidden tables and columns */
	StepList c_post;      /* constraint renames, ADD ... USING INDEX */
	StepList c_rename;    /* derived: final column and table names */
	StepList c_outside;   /* DROP INDEX CONCURRENTLY, onComplete raw SQL */
	/* rollback, in run order */
	StepList rb_pre;      /* DROP INDEX CONCURRENTLY of start's indexes (index_built) */
	StepList rb_head;     /* drop sync functions */
	StepList rb_ops;      /* per operation undo, run in reverse */
	StepList rb_tail;     /* derived: drop new columns, created tables */
	size_t opi;
	const char *opname;
	bool raw_sql_seen;    /* a raw sql operation runs at start before the current one */
	char *err;
	size_t errlen;
	bool failed;
} Planner;

/* Records the first failure as "FILE: operations[N].op: message" in pl->err
 * and marks the planner failed; later calls are ignored. Returns false. */
bool pl_fail(Planner *pl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Moves the statement built in pl->b into a new step of KIND at the end of L
 * (NOTE copied). Returns the step, or NULL with the planner failed (out of
 * memory, or SQL past SQLBUF_MAX). */
PlanStep *pl_emit(Planner *pl, StepList *l, StepKind kind, const char *note);
/* Appends the quoted schema-qualified physical name of T to pl->b. */
void pl_table(Planner *pl, const SnapTable *t);
/* Appends EXPR (written with new-version column names) with each column of T
 * whose physical name differs replaced by the physical name. */
void pl_expr_phys(Planner *pl, const SnapTable *t, const char *expr);
/* Physical name of the table the new version calls NAME; NAME when unknown
 * (e.g. made by raw SQL). The string belongs to the snapshot or to the caller. */
const char *pl_ref_table(Planner *pl, const char *name);
/* Appends " MATCH .. ON DELETE .. ON UPDATE .. [DEFERRABLE ..]" of a
 * (Table)ForeignKeyReference object; defaults are left out. */
void pl_fk_tail(Planner *pl, const json_t *ref);
/* Appends the strings of ARR as quoted identifiers, comma separated; with T,
 * new-version column names become physical names. */
void pl_ident_list(Planner *pl, const json_t *arr, const SnapTable *t);
/* Appends INCLUDE / WITH / USING INDEX TABLESPACE of an index_parameters
 * object (NULL: nothing). */
void pl_index_params(Planner *pl, const json_t *ip, const SnapTable *t);
/* Appends the type, GENERATED clause and DEFAULT of a Column object. */
void pl_column_type(Planner *pl, const json_t *col);
/* malloc'd PREFIX + NAME cut to 63 bytes (PostgreSQL's NAMEDATALEN - 1), or
 * NULL when out of memory. Caller frees. */
char *pl_tmp_name(const char *prefix, const char *name);
/* Adds the rule NEW.TARGET := (EXPR) for writers of the old version (UP) or
 * of the new version (!UP) of T. EXPR names the columns as the schema was
 * before the current operation (UP) or as it is now (!UP). False (planner
 * failed) when EXPR contains PLAN_DOLLAR, past PLAN_MAX_RULES, or out of
 * memory. */
bool pl_rule(Planner *pl, SnapTable *t, const char *target, const char *expr, bool up);
/* Name the rule SR's expression gives column C once the rules are finished:
 * the old version's name (up) or the new version's (down); the physical name
 * when that version has none (a column new in, or dropped by, this
 * migration). */
const char *pl_rule_var(const SyncRule *sr, const SnapColumn *c);
/* Records that dup_column copied FROM into TO in T (pl->copies). */
bool pl_copy_record(Planner *pl, const SnapTable *t, const char *from, const char *to);
/* The new-version physical column TO that column FROM of T was copied into,
 * or NULL. */
const char *pl_copy_of(const Planner *pl, const SnapTable *t, const char *from);
/* Asks for a backfill of T (once; none for a table this migration creates). */
void pl_want_backfill(Planner *pl, SnapTable *t);

/* plan_names.c: records that object PHYS (an index, or a sequence) of table
 * T, which this migration creates under a temporary name, takes at complete
 * FIXED, or (FIXED NULL) the name PostgreSQL gives it creating the table
 * under its final name: ChooseRelationName(table, NAME2, LABEL). False
 * (planner failed) when out of memory. */
bool pl_name_later(Planner *pl, const SnapTable *t, const char *phys, const char *name2, const char *fixed,
		   const char *label, bool index);
/* plan_names.c: PostgreSQL's makeObjectName: NAME1_NAME2_LABEL (NAME2 may be
 * NULL), the longer of NAME1 and NAME2 cut until it fits 63 bytes (at a UTF-8
 * character boundary), into OUT (64 bytes). */
void pl_object_name(char *out, const char *name1, const char *name2, const char *label);
/* plan_names.c: the complete steps (into pl->c_rename, once the tables have
 * their final names) giving each recorded object (pl_name_later) of a table
 * the new version keeps its name: the first of ChooseRelationName's
 * candidates (NAME, NAME1, NAME2, ...) no relation of the schema has, nor,
 * for an index, a constraint; FIXED or nothing else. An object already gone
 * (its column dropped) is skipped; no free name fails the step. */
void pl_names_finish(Planner *pl);
/* plan_names.c: frees pl->later. */
void pl_names_free(Planner *pl);

/* plan_ops.c: plans operation OP (checked by the loader) against pl->s,
 * changing the snapshot and adding steps; failures go through pl_fail(). */
void plan_op(Planner *pl, const MigOp *op);
/* plan_ops.c: once every operation is planned, copies onto the new-version
 * columns each multi-column constraint (unique, primary key, check, foreign
 * key) over a column dup_column copied, and each plain index that mentions
 * one (key, expression or predicate); each copy takes the original's name at
 * complete. An exclusion constraint cannot be copied (ADD CONSTRAINT ...
 * USING INDEX takes no EXCLUDE), nor can a copied column that a foreign key
 * references (complete drops the old column): the planner fails. */
void plan_copies_finish(Planner *pl);

#endif
