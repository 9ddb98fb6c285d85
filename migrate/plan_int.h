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
	char *expr;     /* up or down expression */
	bool up;        /* true: old-version writers run it; false: new-version writers */
} SyncRule;

typedef struct Planner {
	const MigFile *f;
	Snapshot *s;          /* simulated: physical tables after start */
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
	StepList rb_head;     /* drop sync functions */
	StepList rb_ops;      /* per operation undo, run in reverse */
	StepList rb_tail;     /* derived: drop new columns, created tables */
	size_t opi;
	const char *opname;
	char *err;
	size_t errlen;
	bool failed;
} Planner;

bool pl_fail(Planner *pl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
PlanStep *pl_emit(Planner *pl, StepList *l, StepKind kind, const char *note);
void pl_table(Planner *pl, const SnapTable *t);
void pl_expr_phys(Planner *pl, const SnapTable *t, const char *expr);
const char *pl_ref_table(Planner *pl, const char *name);
void pl_fk_tail(Planner *pl, const json_t *ref);
void pl_ident_list(Planner *pl, const json_t *arr, const SnapTable *t);
void pl_index_params(Planner *pl, const json_t *ip, const SnapTable *t);
void pl_column_type(Planner *pl, const json_t *col);
char *pl_tmp_name(const char *prefix, const char *name);
bool pl_rule(Planner *pl, SnapTable *t, const char *target, const char *expr, bool up);
void pl_want_backfill(Planner *pl, SnapTable *t);

/* plan_ops.c: plans one operation. */
void plan_op(Planner *pl, const MigOp *op);

#endif
