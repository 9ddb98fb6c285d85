/*
 * migrate/plan.c: the planner core — step lists, the shared builders (column
 * definitions, constraints, views, sync triggers, backfills), the derived
 * contract/rollback, and the plan's printable and stored forms.
 *
 * Operations (plan_ops.c) only change the simulated snapshot (new-version
 * names, new physical columns) and add the few steps that cannot be derived;
 * the structural part of complete and rollback is derived here from the final
 * snapshot: every column or table hidden from the new version is dropped at
 * complete, every physical name that differs from its new-version name is
 * renamed, and rollback drops everything the old version cannot see.
 */
#include "migrate/plan.h"
#include "conf/conf.h"
#include "migrate/plan_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- step lists ---- */

static PlanStep *steps_push(StepList *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		PlanStep *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return NULL;
		l->v = v;
		l->cap = cap;
	}
	PlanStep *s = &l->v[l->n++];
	memset(s, 0, sizeof *s);
	return s;
}

static void step_free(PlanStep *s)
{
	free(s->sql);
	free(s->cleanup);
	free(s->note);
	free(s->vschema);
	json_decref(s->viewmap);
	free(s->table);
	free(s->assign);
	for (size_t i = 0; i < s->nkeys; i++) {
		free(s->keys[i]);
		free(s->key_types[i]);
	}
	free(s->keys);
	free(s->key_types);
	free(s->drops);
}

void plan_steps_free(StepList *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		step_free(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

void plan_free(Plan *p)
{
	if (!p)
		return;
	free(p->name);
	free(p->schema);
	free(p->vschema);
	free(p->prev_vschema);
	plan_steps_free(&p->start);
	plan_steps_free(&p->complete);
	plan_steps_free(&p->rollback);
	plan_steps_free(&p->check);
	free(p->irreversible);
	snapshot_free(p->after);
	free(p);
}

bool pl_fail(Planner *pl, const char *fmt, ...)
{
	if (pl->failed)
		return false;
	pl->failed = true;
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (pl->opname)
		snprintf(pl->err, pl->errlen, "%s: operations[%zu].%s: %s", pl->f->path, pl->opi, pl->opname, msg);
	else
		snprintf(pl->err, pl->errlen, "%s: %s", pl->f->path, msg);
	return false;
}

/* Adds a step of KIND to L whose SQL is the text built so far in pl->b. */
PlanStep *pl_emit(Planner *pl, StepList *l, StepKind kind, const char *note)
{
	char *sql = sqlbuf_steal(&pl->b);
	PlanStep *s = sql ? steps_push(l) : NULL;
	if (!s) {
		free(sql);
		pl_fail(pl, "out of memory or SQL longer than %zu bytes", (size_t)SQLBUF_MAX);
		return NULL;
	}
	s->kind = kind;
	s->sql = sql;
	s->note = note ? strdup(note) : NULL;
	return s;
}

/* ---- shared builders ---- */

void pl_table(Planner *pl, const SnapTable *t)
{
	sqlbuf_qname(&pl->b, pl->schema, t->name);
}

/* Appends EXPR with every column of T that has a different physical name
 * referred to by its physical name (expressions are written with
 * new-version names); all names at once, so a swap of names comes out right. */
void pl_expr_phys(Planner *pl, const SnapTable *t, const char *expr)
{
	const char **from = calloc(t->ncols + 1, sizeof *from), **to = calloc(t->ncols + 1, sizeof *to);
	size_t n = 0;
	for (size_t i = 0; from && to && i < t->ncols; i++) {
		const SnapColumn *c = t->cols[i];
		if (!c->vname || strcmp(c->vname, c->name) == 0)
			continue;
		from[n] = c->vname;
		to[n++] = c->name;
	}
	if (!from || !to)
		pl->b.failed = true;
	else
		sqlbuf_rename_idents(&pl->b, expr, from, to, n);
	free(from);
	free(to);
}

/* Physical name of the table a migration calls NAME in the new version, or
 * NAME itself when it is not in the snapshot (a table made by raw SQL). */
const char *pl_ref_table(Planner *pl, const char *name)
{
	const SnapTable *t = snapshot_vtable(pl->s, name);
	return t ? t->name : name;
}

/* " MATCH x ON DELETE y ON UPDATE z [DEFERRABLE [INITIALLY DEFERRED]]" of a
 * ForeignKeyReference / TableForeignKeyReference object. */
void pl_fk_tail(Planner *pl, const json_t *ref)
{
	const char *match = mj_str(ref, "match_type", NULL);
	if (match && strcmp(match, "SIMPLE") != 0)
		sqlbuf_printf(&pl->b, " MATCH %s", match);
	const char *del = mj_str(ref, "on_delete", NULL);
	if (del && strcmp(del, "NO ACTION") != 0) {
		sqlbuf_printf(&pl->b, " ON DELETE %s", del);
		json_t *set = json_object_get(ref, "on_delete_set_columns");
		if (json_array_size(set) > 0) {
			sqlbuf_add(&pl->b, " (");
			pl_ident_list(pl, set, NULL);
			sqlbuf_add(&pl->b, ")");
		}
	}
	const char *upd = mj_str(ref, "on_update", NULL);
	if (upd && strcmp(upd, "NO ACTION") != 0)
		sqlbuf_printf(&pl->b, " ON UPDATE %s", upd);
	if (mj_bool(ref, "deferrable", false))
		sqlbuf_add(&pl->b, " DEFERRABLE");
	if (mj_bool(ref, "initially_deferred", false))
		sqlbuf_add(&pl->b, " INITIALLY DEFERRED");
}

/* Comma-separated quoted identifiers from a JSON array of strings; with T the
 * names are new-version column names turned into physical ones. */
void pl_ident_list(Planner *pl, const json_t *arr, const SnapTable *t)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		const char *name = json_string_value(v);
		if (t) {
			const SnapColumn *c = snapshot_vcolumn(t, name);
			if (c)
				name = c->name;
		}
		if (i)
			sqlbuf_add(&pl->b, ", ");
		sqlbuf_ident(&pl->b, name);
	}
}

/* Index parameters of a unique/primary key/exclude constraint. */
void pl_index_params(Planner *pl, const json_t *ip, const SnapTable *t)
{
	if (!ip)
		return;
	json_t *inc = json_object_get(ip, "include_columns");
	if (json_array_size(inc) > 0) {
		sqlbuf_add(&pl->b, " INCLUDE (");
		pl_ident_list(pl, inc, t);
		sqlbuf_add(&pl->b, ")");
	}
	const char *sp = mj_str(ip, "storage_parameters", "");
	if (sp[0])
		sqlbuf_printf(&pl->b, " WITH (%s)", sp);
	const char *ts = mj_str(ip, "tablespace", "");
	if (ts[0]) {
		sqlbuf_add(&pl->b, " USING INDEX TABLESPACE ");
		sqlbuf_ident(&pl->b, ts);
	}
}

/* Column definition of a Column object (create_table, add_column): type,
 * identity/generation, default. Constraints are added by the caller. */
void pl_column_type(Planner *pl, const json_t *col)
{
	sqlbuf_add(&pl->b, mj_str(col, "type", ""));
	json_t *gen = json_object_get(col, "generated");
	if (gen) {
		json_t *id = json_object_get(gen, "identity");
		const char *expr = mj_str(gen, "expression", "");
		if (id) {
			sqlbuf_printf(&pl->b, " GENERATED %s AS IDENTITY", mj_str(id, "user_specified_values", "ALWAYS"));
			const char *so = mj_str(id, "sequence_options", "");
			if (so[0])
				sqlbuf_printf(&pl->b, " (%s)", so);
		} else if (expr[0]) {
			sqlbuf_printf(&pl->b, " GENERATED ALWAYS AS (%s) STORED", expr);
		}
	}
	const char *def = mj_str(col, "default", NULL);
	if (def)
		sqlbuf_printf(&pl->b, " DEFAULT %s", def);
}

/* A name for a temporary object: PREFIX + NAME cut to 63 bytes. */
char *pl_tmp_name(const char *prefix, const char *name)
{
	char buf[64];
	snprintf(buf, sizeof buf, "%s%s", prefix, name);
	return strdup(buf);
}

static void pre_names_free(Planner *pl)
{
	for (size_t j = 0; j < pl->npre; j++)
		free(pl->pre_names[j]);
	free(pl->pre_names);
	pl->pre_names = NULL;
	pl->npre = 0;
	pl->pre_table = NULL;
}

/* Remembers the column names of OP's table before OP changes them
 * (Planner.pre_names): an up expression of OP is written in them. */
static void pre_names_take(Planner *pl, const MigOp *op)
{
	pre_names_free(pl);
	const SnapTable *t = snapshot_vtable(pl->s, mj_str(op->body, "table", ""));
	if (!t)
		return;
	pl->pre_names = calloc(t->ncols + 1, sizeof *pl->pre_names);
	if (!pl->pre_names) {
		pl_fail(pl, "out of memory");
		return;
	}
	pl->pre_table = t;
	for (size_t j = 0; j < t->ncols; j++) {
		if (t->cols[j]->vname && !(pl->pre_names[j] = strdup(t->cols[j]->vname))) {
			pl_fail(pl, "out of memory");
			break;
		}
		pl->npre = j + 1;
	}
}

/* Adds a sync rule: in table T, the writer of version UP ? old : new gets
 * NEW.TARGET := (EXPR). */
bool pl_rule(Planner *pl, SnapTable *t, const char *target, const char *expr, bool up)
{
	if (strstr(expr, PLAN_DOLLAR))
		return pl_fail(pl, "an up/down expression may not contain %s", PLAN_DOLLAR);
	if (pl->nrules >= PLAN_MAX_RULES)
		return pl_fail(pl, "more than %d up/down expressions", PLAN_MAX_RULES);
	SyncRule *r = &pl->rules[pl->nrules];
	memset(r, 0, sizeof *r);
	r->table = t;
	r->target = strdup(target);
	r->expr = strdup(expr);
	r->src = strdup(expr);
	r->up = up;
	r->opi = pl->opi;
	r->opname = pl->opname;
	r->late = pl->raw_sql_seen || !t->oname;
	r->at = calloc(t->ncols + 1, sizeof *r->at);
	bool ok = r->target && r->expr && r->src && r->at;
	/* up: the names before this operation; down: the names it leaves
	 * (columns are only ever appended while planning: indexes match) */
	bool before = up && t == pl->pre_table;
	size_t n = before ? pl->npre : t->ncols;
	for (size_t j = 0; ok && j < n; j++) {
		const char *name = before ? pl->pre_names[j] : t->cols[j]->vname;
		r->at[j] = name ? strdup(name) : NULL;
		ok = r->at[j] || !name;
		r->nat = j + 1;
	}
	pl->nrules++;
	return ok ? true : pl_fail(pl, "out of memory");
}

/* True for the names of pgflip's temporary objects (defined with the views). */
static bool is_tmp(const char *name);

const char *pl_rule_var(const SyncRule *sr, const SnapColumn *c)
{
	const char *v = sr->up ? c->oname : c->vname;
	if (v)
		return v;
	/* pgflip's own names and the columns of a table this migration creates
	 * cannot collide with a version's names */
	return is_tmp(c->name) || !sr->table->oname ? c->name : NULL;
}

/* The variable the finished rule SR has for the column that was
 * SR->table->cols[J] when SR was written: a column a later operation copied
 * is its copy (a down expression sees the new version's value), or NULL. */
static const char *rule_var_at(const Planner *pl, const SyncRule *sr, size_t j)
{
	const SnapColumn *c = sr->table->cols[j];
	const char *v = pl_rule_var(sr, c);
	const char *copy = v ? NULL : pl_copy_of(pl, sr->table, c->name);
	const SnapColumn *cc = copy ? snapshot_column(sr->table, copy) : NULL;
	return cc ? pl_rule_var(sr, cc) : v;
}

/* Rewrites every rule's expression from the names it was written with
 * (SyncRule.at) into those of the version that runs it (pl_rule_var), all
 * names at once. A rule of a single-operation migration comes out as
 * written. */
static void pl_rules_finish(Planner *pl)
{
	for (size_t r = 0; r < pl->nrules && !pl->failed; r++) {
		SyncRule *sr = &pl->rules[r];
		const char **from = calloc(sr->nat + 1, sizeof *from), **to = calloc(sr->nat + 1, sizeof *to);
		size_t n = 0;
		for (size_t j = 0; from && to && j < sr->nat; j++) {
			const char *var = rule_var_at(pl, sr, j);
			if (sr->at[j] && var && strcmp(sr->at[j], var) != 0) {
				from[n] = sr->at[j];
				to[n++] = var;
			}
		}
		SqlBuf b;
		sqlbuf_init(&b);
		if (from && to)
			sqlbuf_rename_idents(&b, sr->expr, from, to, n);
		char *e = from && to ? sqlbuf_steal(&b) : NULL;
		free(from);
		free(to);
		if (!e) {
			pl_fail(pl, "out of memory or expression too long");
			return;
		}
		free(sr->expr);
		sr->expr = e;
	}
}

bool pl_copy_record(Planner *pl, const SnapTable *t, const char *from, const char *to)
{
	ColumnCopy *v = realloc(pl->copies, (pl->ncopies + 1) * sizeof *v);
	if (!v)
		return pl_fail(pl, "out of memory");
	pl->copies = v;
	v[pl->ncopies] = (ColumnCopy){t, strdup(from), strdup(to)};
	if (!v[pl->ncopies].from || !v[pl->ncopies].to) {
		free(v[pl->ncopies].from);
		free(v[pl->ncopies].to);
		return pl_fail(pl, "out of memory");
	}
	pl->ncopies++;
	return true;
}

const char *pl_copy_of(const Planner *pl, const SnapTable *t, const char *from)
{
	for (size_t i = 0; i < pl->ncopies; i++)
		if (pl->copies[i].table == t && strcmp(pl->copies[i].from, from) == 0)
			return pl->copies[i].to;
	return NULL;
}

void pl_want_backfill(Planner *pl, SnapTable *t)
{
	if (!t->oname)
		return; /* created by this migration: no old rows */
	for (size_t i = 0; i < pl->nbackfill; i++)
		if (pl->backfill[i] == t)
			return;
	if (pl->nbackfill < PLAN_MAX_RULES)
		pl->backfill[pl->nbackfill++] = t;
}

/* NAME of the sync function of physical table TABLE. */
static char *trigger_function(const char *table)
{
	return pl_tmp_name(PLAN_TRIGGER "_", table);
}

/* Name of the function that runs the up (UP) or down rules of physical table
 * TABLE. */
static char *rules_function(const char *table, bool up)
{
	return pl_tmp_name(up ? MIGRATE_TMP_PREFIX "up_" : MIGRATE_TMP_PREFIX "down_", table);
}

/*
 * The function running one direction's rules on a row of T: it takes the row,
 * declares the variables the expressions can use (each visible column of that
 * version, named as that version names it, holding the row's value of its
 * physical column), assigns the targets and returns the row. It runs with
 * search_path = the tables' schema, so the expressions find the schema's
 * functions, sequences and tables whatever the writer's search_path is (a
 * version schema).
 */
static void rules_function_sql(Planner *pl, const SnapTable *t, bool up, const char *fn)
{
	sqlbuf_add(&pl->b, "CREATE OR REPLACE FUNCTION ");
	sqlbuf_qname(&pl->b, pl->schema, fn);
	sqlbuf_add(&pl->b, "(r ");
	pl_table(pl, t);
	sqlbuf_add(&pl->b, ") RETURNS ");
	pl_table(pl, t);
	sqlbuf_add(&pl->b, " LANGUAGE plpgsql SET search_path = ");
	sqlbuf_ident(&pl->b, pl->schema);
	sqlbuf_add(&pl->b, " AS " PLAN_DOLLAR "\n#variable_conflict use_variable\n");
	bool any = false;
	for (size_t i = 0; i < t->ncols; i++) {
		const SnapColumn *c = t->cols[i];
		const char *var = NULL;
		for (size_t r = 0; r < pl->nrules && !var; r++) {
			const char *v = pl_rule_var(&pl->rules[r], c);
			if (pl->rules[r].table == t && pl->rules[r].up == up && v && sql_mentions(pl->rules[r].expr, v))
				var = v;
		}
		if (!var)
			continue;
		sqlbuf_add(&pl->b, any ? "\n  " : "DECLARE\n  ");
		any = true;
		sqlbuf_ident(&pl->b, var);
		sqlbuf_add(&pl->b, " ");
		pl_table(pl, t);
		sqlbuf_add(&pl->b, ".");
		sqlbuf_ident(&pl->b, c->name);
		sqlbuf_add(&pl->b, "%TYPE := r.");
		sqlbuf_ident(&pl->b, c->name);
		sqlbuf_add(&pl->b, ";");
	}
	sqlbuf_add(&pl->b, any ? "\nBEGIN\n" : "BEGIN\n");
	for (size_t r = 0; r < pl->nrules; r++) {
		const SyncRule *sr = &pl->rules[r];
		if (sr->table != t || sr->up != up)
			continue;
		sqlbuf_add(&pl->b, "  r.");
		sqlbuf_ident(&pl->b, sr->target);
		sqlbuf_printf(&pl->b, " := (%s);\n", sr->expr);
	}
	sqlbuf_add(&pl->b, "  RETURN r;\nEND\n" PLAN_DOLLAR ";\n");
}

/* TYPE as a cast can name it: the serial pseudo-types are their integer
 * types (a column declared serial is an integer with a sequence default). */
static const char *cast_type(const char *type)
{
	static const char *const serials[][2] = {{"smallserial", "smallint"}, {"serial2", "smallint"},
						 {"serial", "integer"},       {"serial4", "integer"},
						 {"bigserial", "bigint"},     {"serial8", "bigint"}};
	for (size_t i = 0; i < sizeof serials / sizeof serials[0]; i++)
		if (strcasecmp(type, serials[i][0]) == 0)
			return serials[i][1];
	return type;
}

/*
 * A check of rule SR: the server plans the expression over the table, with
 * the variables the rules function declares (the writing version's names for
 * the columns it mentions) as columns of a subquery, and returns no row
 * (LIMIT 0): an unknown function, column, operator or type fails here as it
 * would in the trigger. Names resolve in the tables' schema, as in the rules
 * function. BEFORE_DDL: start has not run, so a column it adds is NULL::type.
 * Emitted into L with a note naming the operation and the expression.
 */
static void emit_check(Planner *pl, const SyncRule *sr, StepList *l, bool before_ddl)
{
	const SnapTable *t = sr->table;
	sqlbuf_add(&pl->b, "SET LOCAL search_path = ");
	sqlbuf_ident(&pl->b, pl->schema);
	sqlbuf_printf(&pl->b, ";\nSELECT (%s) FROM (SELECT ", sr->expr);
	const char *sep = "";
	for (size_t i = 0; i < t->ncols; i++) {
		const SnapColumn *c = t->cols[i];
		const char *var = pl_rule_var(sr, c);
		if (!var || !sql_mentions(sr->expr, var))
			continue;
		sqlbuf_add(&pl->b, sep);
		sep = ", ";
		if (before_ddl && !c->oname) {
			sqlbuf_printf(&pl->b, "NULL::%s", cast_type(c->type));
		} else {
			sqlbuf_add(&pl->b, "r.");
			sqlbuf_ident(&pl->b, c->name);
		}
		sqlbuf_add(&pl->b, " AS ");
		sqlbuf_ident(&pl->b, var);
	}
	sqlbuf_add(&pl->b, " FROM ");
	pl_table(pl, t);
	sqlbuf_add(&pl->b, " AS r) AS " MIGRATE_TMP_PREFIX "row LIMIT 0;\nRESET search_path");
	char note[600];
	snprintf(note, sizeof note, "operations[%zu].%s: %s expression \"%.400s\" on table \"%s\"", sr->opi,
		 sr->opname ? sr->opname : "?", sr->up ? "up" : "down", sr->src, t->vname ? t->vname : t->name);
	pl_emit(pl, l, STEP_SQL, note);
}

/* Plan.check: the rules that can be checked before start runs. */
static void plan_checks(Planner *pl)
{
	for (size_t r = 0; r < pl->nrules; r++)
		if (!pl->rules[r].late)
			emit_check(pl, &pl->rules[r], &pl->p->check, true);
}

/* True for the built-in types that have no equality operator (IS DISTINCT
 * FROM on them fails when the trigger is created): compared as text. */
static bool type_lacks_equality(const char *type)
{
	static const char *const types[] = {"json", "json[]", "xml", "xml[]", "point", "line", "lseg", "box",
					    "path", "polygon", "circle", NULL};
	for (const char *const *t = types; *t; t++)
		if (type && strcasecmp(type, *t) == 0)
			return true;
	return false;
}

/* The trigger function FN: picks the direction from the writer's
 * search_path and runs FUP (old-version writers) or FDOWN (new-version
 * writers); a NULL name means that direction has no rules. */
static void sync_function_sql(Planner *pl, const char *fn, const char *fup, const char *fdown)
{
	sqlbuf_add(&pl->b, "CREATE OR REPLACE FUNCTION ");
	sqlbuf_qname(&pl->b, pl->schema, fn);
	sqlbuf_add(&pl->b, "() RETURNS trigger LANGUAGE plpgsql AS " PLAN_DOLLAR "\nBEGIN\n");
	sqlbuf_add(&pl->b, "  IF current_setting('search_path') = ");
	sqlbuf_literal(&pl->b, pl->vschema);
	sqlbuf_add(&pl->b, " THEN\n");
	if (fdown) {
		sqlbuf_add(&pl->b, "    NEW := ");
		sqlbuf_qname(&pl->b, pl->schema, fdown);
		sqlbuf_add(&pl->b, "(NEW);\n");
	} else {
		sqlbuf_add(&pl->b, "    NULL;\n");
	}
	if (fup) {
		sqlbuf_add(&pl->b, "  ELSE\n    NEW := ");
		sqlbuf_qname(&pl->b, pl->schema, fup);
		sqlbuf_add(&pl->b, "(NEW);\n");
	}
	sqlbuf_add(&pl->b, "  END IF;\n  RETURN NEW;\nEND\n" PLAN_DOLLAR ";\n");
}

/* True when an up or down expression of T can read column C (by the name
 * the writing version gives it). */
static bool column_read_by_rules(const Planner *pl, const SnapTable *t, const SnapColumn *c)
{
	for (size_t r = 0; r < pl->nrules; r++) {
		const SyncRule *sr = &pl->rules[r];
		const char *var = pl_rule_var(sr, c);
		if (sr->table == t && var && sql_mentions(sr->expr, var))
			return true;
	}
	return false;
}

/*
 * The UPDATE trigger of T (HAS_UP: T has up rules), or nothing when no
 * update can need it. It fires
 *  - when a column an up/down expression reads changed (an expression of
 *    unchanged inputs gives what it gave before), for either version;
 *  - for writers of the old version, when a column an up expression fills is
 *    still NULL in the new row: the backfill has not reached the row yet, and
 *    the new row version must not carry the NULL (the NOT NULL CHECK is NOT
 *    VALID, which spares only the existing row versions). A backfilled row
 *    pays nothing on an unrelated update.
 * Never inside a backfill batch, which computes up() itself. New-version
 * writers do not get the NULL rule: their trigger runs down(), which would
 * overwrite the old columns from new ones that are still NULL.
 */
static void update_trigger_sql(Planner *pl, const SnapTable *t, const char *fn, bool has_up)
{
	SqlBuf *b = &pl->b;
	bool any = has_up;
	for (size_t j = 0; j < t->ncols && !any; j++)
		any = column_read_by_rules(pl, t, t->cols[j]);
	if (!any)
		return;
	sqlbuf_add(b, ";\nCREATE TRIGGER " PLAN_TRIGGER "_update BEFORE UPDATE ON ");
	pl_table(pl, t);
	sqlbuf_add(b, " FOR EACH ROW WHEN ((");
	const char *sep = "";
	for (size_t j = 0; j < t->ncols; j++) {
		const SnapColumn *c = t->cols[j];
		if (!column_read_by_rules(pl, t, c))
			continue;
		const char *cast = type_lacks_equality(c->type) ? "::text" : "";
		sqlbuf_printf(b, "%sOLD.", sep);
		sqlbuf_ident(b, c->name);
		sqlbuf_printf(b, "%s IS DISTINCT FROM NEW.", cast);
		sqlbuf_ident(b, c->name);
		sqlbuf_add(b, cast);
		sep = " OR ";
	}
	if (has_up) {
		sqlbuf_printf(b, "%s(current_setting('search_path') <> ", sep);
		sqlbuf_literal(b, pl->vschema);
		sqlbuf_add(b, " AND (");
		sep = "";
		for (size_t r = 0; r < pl->nrules; r++) {
			const SyncRule *sr = &pl->rules[r];
			if (sr->table != t || !sr->up)
				continue;
			sqlbuf_printf(b, "%sNEW.", sep);
			sqlbuf_ident(b, sr->target);
			sqlbuf_add(b, " IS NULL");
			sep = " OR ";
		}
		sqlbuf_add(b, "))");
	}
	sqlbuf_add(b, ") AND current_setting('" PLAN_BACKFILL_GUC "', true) IS DISTINCT FROM 'on') EXECUTE FUNCTION ");
	sqlbuf_qname(b, pl->schema, fn);
	sqlbuf_add(b, "()");
}

/* Complete and rollback both drop T's sync functions (CASCADE takes the
 * triggers): one step into each of c_head and rb_head. */
static void drop_sync_functions(Planner *pl, const SnapTable *t, const char *fn, const char *fup, const char *fdown)
{
	char note[200];
	snprintf(note, sizeof note, "drop the sync trigger on %s", t->name);
	for (int k = 0; k < 2; k++) {
		sqlbuf_add(&pl->b, "DROP FUNCTION IF EXISTS ");
		sqlbuf_qname(&pl->b, pl->schema, fn);
		sqlbuf_add(&pl->b, "() CASCADE");
		const char *rules_fns[2] = {fup, fdown};
		for (int d = 0; d < 2; d++) {
			if (!rules_fns[d])
				continue;
			sqlbuf_add(&pl->b, ";\nDROP FUNCTION IF EXISTS ");
			sqlbuf_qname(&pl->b, pl->schema, rules_fns[d]);
			sqlbuf_add(&pl->b, "(");
			pl_table(pl, t);
			sqlbuf_add(&pl->b, ")");
		}
		pl_emit(pl, k ? &pl->rb_head : &pl->c_head, STEP_SQL, note);
	}
}

/* One sync function + triggers per table that has rules. */
static void plan_triggers(Planner *pl)
{
	for (size_t i = 0; i < pl->s->ntables; i++) {
		SnapTable *t = pl->s->tables[i];
		bool has_up = false, has_down = false;
		for (size_t r = 0; r < pl->nrules; r++)
			if (pl->rules[r].table == t) {
				if (pl->rules[r].up)
					has_up = true;
				else
					has_down = true;
			}
		if (!has_up && !has_down)
			continue;
		char *fn = trigger_function(t->name), *fup = rules_function(t->name, true),
		     *fdown = rules_function(t->name, false);
		if (!fn || !fup || !fdown) {
			free(fn);
			free(fup);
			free(fdown);
			pl_fail(pl, "out of memory");
			return;
		}
		/* the checks start could not run beforehand, in the trigger's
		 * transaction: the trigger goes live only with expressions that work */
		for (size_t r = 0; r < pl->nrules; r++)
			if (pl->rules[r].table == t && pl->rules[r].late)
				emit_check(pl, &pl->rules[r], &pl->p->start, false);
		if (has_up)
			rules_function_sql(pl, t, true, fup);
		if (has_down)
			rules_function_sql(pl, t, false, fdown);
		sync_function_sql(pl, fn, has_up ? fup : NULL, has_down ? fdown : NULL);
		sqlbuf_add(&pl->b, "DROP TRIGGER IF EXISTS " PLAN_TRIGGER " ON ");
		pl_table(pl, t);
		sqlbuf_add(&pl->b, ";\nDROP TRIGGER IF EXISTS " PLAN_TRIGGER "_update ON ");
		pl_table(pl, t);
		sqlbuf_add(&pl->b, ";\nCREATE TRIGGER " PLAN_TRIGGER " BEFORE INSERT ON ");
		pl_table(pl, t);
		sqlbuf_add(&pl->b, " FOR EACH ROW EXECUTE FUNCTION ");
		sqlbuf_qname(&pl->b, pl->schema, fn);
		sqlbuf_add(&pl->b, "()");
		update_trigger_sql(pl, t, fn, has_up);
		char note[200];
		snprintf(note, sizeof note, "sync trigger on %s", t->name);
		pl_emit(pl, &pl->p->start, STEP_SQL, note);
		drop_sync_functions(pl, t, fn, has_up ? fup : NULL, has_down ? fdown : NULL);
		free(fn);
		free(fup);
		free(fdown);
	}
}

/* True when every column of K is one the old version has (filled in the
 * existing rows): not a column start adds, which the backfill fills. */
static bool constraint_on_old_columns(const SnapTable *t, const SnapConstraint *k)
{
	for (size_t j = 0; j < k->ncols; j++) {
		const SnapColumn *c = snapshot_column(t, k->cols[j]);
		if (!c || !c->oname)
			return false;
	}
	return k->ncols > 0;
}

/* Keyset for backfilling T: primary key, else a unique constraint on NOT NULL
 * columns, else none (ctid); only over columns the existing rows have
 * filled (a key this migration adds is NULL until the backfill). */
static bool backfill_keys(const SnapTable *t, const SnapConstraint **out)
{
	const SnapConstraint *best = NULL;
	for (size_t i = 0; i < t->ncons; i++) {
		const SnapConstraint *k = t->cons[i];
		if (!constraint_on_old_columns(t, k))
			continue;
		if (k->type == 'p') {
			best = k;
			break;
		}
		if (k->type != 'u' || best)
			continue;
		bool nn = k->ncols > 0;
		for (size_t j = 0; j < k->ncols; j++) {
			const SnapColumn *c = snapshot_column(t, k->cols[j]);
			if (!c || !c->notnull)
				nn = false;
		}
		if (nn)
			best = k;
	}
	*out = best;
	return best != NULL;
}

/* "(k1, k2)" of S's keys. */
static void keys_list(SqlBuf *b, const PlanStep *s)
{
	sqlbuf_add(b, "(");
	for (size_t i = 0; i < s->nkeys; i++) {
		sqlbuf_add(b, i ? ", " : "");
		sqlbuf_ident(b, s->keys[i]);
	}
	sqlbuf_add(b, ")");
}

/* "($FIRST::type1, $FIRST+1::type2)" */
static void keys_params(SqlBuf *b, const PlanStep *s, size_t first)
{
	sqlbuf_add(b, "(");
	for (size_t i = 0; i < s->nkeys; i++)
		sqlbuf_printf(b, "%s$%zu::%s", i ? ", " : "", first + i, s->key_types[i]);
	sqlbuf_add(b, ")");
}

char *plan_backfill_bound_sql(const char *schema, const PlanStep *s, bool lower, bool upper)
{
	SqlBuf b;
	sqlbuf_init(&b);
	/* the inner query returns bare key columns, so the rows OFFSET skips
	 * cost an index entry each and no expression evaluation */
	sqlbuf_add(&b, "SELECT json_build_array(");
	for (size_t i = 0; i < s->nkeys; i++) {
		sqlbuf_add(&b, i ? ", " : "");
		sqlbuf_ident(&b, s->keys[i]);
		sqlbuf_add(&b, "::text");
	}
	sqlbuf_add(&b, ") FROM (SELECT ");
	for (size_t i = 0; i < s->nkeys; i++) {
		sqlbuf_add(&b, i ? ", " : "");
		sqlbuf_ident(&b, s->keys[i]);
	}
	sqlbuf_add(&b, " FROM ");
	sqlbuf_qname(&b, schema, s->table);
	if (lower) {
		sqlbuf_add(&b, " WHERE ");
		keys_list(&b, s);
		sqlbuf_add(&b, " > ");
		keys_params(&b, s, 2);
	}
	if (upper) {
		sqlbuf_add(&b, lower ? " AND " : " WHERE ");
		keys_list(&b, s);
		sqlbuf_add(&b, " <= ");
		keys_params(&b, s, 2 + (lower ? s->nkeys : 0));
	}
	sqlbuf_add(&b, " ORDER BY ");
	for (size_t i = 0; i < s->nkeys; i++) {
		sqlbuf_add(&b, i ? ", " : "");
		sqlbuf_ident(&b, s->keys[i]);
	}
	sqlbuf_add(&b, " OFFSET $1::bigint LIMIT 1) AS bound");
	return sqlbuf_steal(&b);
}

char *plan_backfill_update_sql(const char *schema, const PlanStep *s, bool lower, bool upper, const char *touch)
{
	SqlBuf b;
	sqlbuf_init(&b);
	sqlbuf_add(&b, "UPDATE ");
	sqlbuf_qname(&b, schema, s->table);
	sqlbuf_add(&b, " SET ");
	if (s->assign && s->assign[0]) {
		sqlbuf_add(&b, s->assign);
	} else {
		const char *col = s->nkeys ? s->keys[0] : touch;
		sqlbuf_ident(&b, col);
		sqlbuf_add(&b, " = ");
		sqlbuf_ident(&b, col);
	}
	if (s->nkeys == 0) {
		sqlbuf_add(&b, " WHERE ctid >= format('(%s,0)', $1::bigint)::tid "
			       "AND ctid < format('(%s,0)', $1::bigint + $2::bigint)::tid");
		return sqlbuf_steal(&b);
	}
	size_t next = 1;
	if (lower || upper)
		sqlbuf_add(&b, " WHERE ");
	if (lower) {
		keys_list(&b, s);
		sqlbuf_add(&b, " > ");
		keys_params(&b, s, next);
		next += s->nkeys;
	}
	if (upper) {
		sqlbuf_add(&b, lower ? " AND " : "");
		keys_list(&b, s);
		sqlbuf_add(&b, " <= ");
		keys_params(&b, s, next);
	}
	return sqlbuf_steal(&b);
}

/* What a backfill step S of table T prints (PlanStep.sql): one batch's
 * transaction as exec.c runs it, with its parameters named. */
static char *backfill_text(const char *schema, const PlanStep *s, const SnapTable *t)
{
	const char *touch = t->ncols ? t->cols[0]->name : "";
	char *bound = s->nkeys ? plan_backfill_bound_sql(schema, s, true, false) : NULL;
	char *update = plan_backfill_update_sql(schema, s, s->nkeys > 0, s->nkeys > 0, touch);
	SqlBuf b;
	sqlbuf_init(&b);
	sqlbuf_add(&b, "-- each batch, one transaction (BEGIN; SET LOCAL lock_timeout ...; ...; COMMIT):\n"
		       "SET LOCAL " PLAN_BACKFILL_GUC " = 'on';\nSET LOCAL search_path = ");
	sqlbuf_ident(&b, schema);
	if (s->nkeys) {
		sqlbuf_printf(&b, ";\n-- the batch's last key: $1 = batch size - 1, $2.. = the previous batch's last key "
				  "(the first batch: no WHERE)\n%s;\n"
				  "-- $1.. = the previous batch's last key, $%zu.. = this batch's (the first batch has no "
				  "lower bound; the last, once no bound is found, no upper one)\n%s",
			      bound ? bound : "", s->nkeys + 1, update ? update : "");
	} else {
		sqlbuf_printf(&b, ";\n-- no primary or unique NOT NULL key: by heap blocks, $1 = first block, "
				  "$2 = blocks per batch (batch size / 100)\n%s",
			      update ? update : "");
	}
	sqlbuf_add(&b, ";\n-- its progress, in the same transaction: $3 = table, $4 = {\"done\", \"last\", "
		       "\"finished\"}\n" PLAN_BACKFILL_SAVE_SQL);
	free(bound);
	free(update);
	return sqlbuf_steal(&b);
}

/*
 * Start's index builds (CREATE [UNIQUE] INDEX CONCURRENTLY, outside any
 * transaction: the steps with a cleanup) go after the sync trigger and the
 * views. Each takes seconds on a large table, and before the trigger is
 * live the new columns are not kept: an old-version UPDATE in that time
 * would write a row whose new column is NULL, against the NOT NULL CHECK
 * (NOT VALID spares only rows that exist) and the new version's view. The
 * indexes are over new columns the trigger and the backfill fill, so
 * building them later changes nothing else; raw SQL stays where it is (a
 * later step may need what it made).
 */
static void start_builds_after_sync(StepList *l)
{
	size_t n = l->n, w = 0, m = 0;
	PlanStep *builds = n ? malloc(n * sizeof *builds) : NULL;
	if (!builds)
		return; /* order kept: a gap as before, nothing lost */
	for (size_t i = 0; i < n; i++) {
		if (l->v[i].kind == STEP_OUTSIDE_TX && l->v[i].cleanup)
			builds[m++] = l->v[i];
		else
			l->v[w++] = l->v[i];
	}
	memcpy(l->v + w, builds, m * sizeof *builds);
	free(builds);
}

static void plan_backfills(Planner *pl)
{
	for (size_t i = 0; i < pl->nbackfill; i++) {
		SnapTable *t = pl->backfill[i];
		const SnapConstraint *k = NULL;
		backfill_keys(t, &k);
		char note[200];
		snprintf(note, sizeof note, "backfill %s in batches", t->name);
		PlanStep *s = pl_emit(pl, &pl->p->start, STEP_BACKFILL, note);
		if (!s)
			return;
		s->table = strdup(t->name);
		/* up() in the old version's names, which are the physical names of
		 * the columns it can read (the previous migration completed) */
		for (size_t r = 0; r < pl->nrules; r++) {
			const SyncRule *sr = &pl->rules[r];
			if (sr->table != t || !sr->up)
				continue;
			sqlbuf_add(&pl->b, pl->b.len ? ", " : "");
			sqlbuf_ident(&pl->b, sr->target);
			sqlbuf_printf(&pl->b, " = (%s)", sr->expr);
		}
		s->assign = sqlbuf_steal(&pl->b);
		size_t n = k ? k->ncols : 0;
		s->keys = calloc(n + 1, sizeof *s->keys);
		s->key_types = calloc(n + 1, sizeof *s->key_types);
		if (!s->table || !s->assign || !s->keys || !s->key_types) {
			pl_fail(pl, "out of memory");
			return;
		}
		for (size_t j = 0; j < n; j++) {
			const SnapColumn *c = snapshot_column(t, k->cols[j]);
			s->keys[j] = strdup(k->cols[j]);
			s->key_types[j] = strdup(c ? c->type : "text");
			s->nkeys++;
		}
		free(s->sql);
		if (!(s->sql = backfill_text(pl->schema, s, t))) {
			pl_fail(pl, "out of memory");
			return;
		}
	}
}

/* ---- views ---- */

static const json_t *map_find(const json_t *arr, const char *name)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
		if (strcmp(mj_str(v, "name", ""), name) == 0)
			return v;
	return NULL;
}

static bool is_tmp(const char *name)
{
	return strncmp(name, MIGRATE_TMP_PREFIX, strlen(MIGRATE_TMP_PREFIX)) == 0;
}

/* The name column C of a table shows in the version schema under MCOLS (the
 * table's view map columns, or NULL), or NULL when it is hidden there. */
static const char *view_column(const json_t *mcols, const SnapColumn *c)
{
	const json_t *mc = map_find(mcols, c->name);
	return mc ? mj_str(mc, "as", NULL) : (is_tmp(c->name) ? NULL : c->name);
}

/* "TO PUBLIC" or "TO role". */
static void grantee_sql(SqlBuf *b, const char *grantee)
{
	sqlbuf_add(b, " TO ");
	if (grantee[0])
		sqlbuf_ident(b, grantee);
	else
		sqlbuf_add(b, "PUBLIC");
}

/* GRANT G (a privilege on table T) on its view VSCHEMA.VNAME, the columns
 * of a column-level grant by their names there (none shown: nothing). */
static void view_grant_sql(SqlBuf *b, const SnapTable *t, const SnapGrant *g, const json_t *mcols,
			   const char *vschema, const char *vname)
{
	const char *cv[SNAP_MAX_COLUMNS];
	size_t shown = 0;
	for (size_t i = 0; i < g->ncols && shown < SNAP_MAX_COLUMNS; i++) {
		const SnapColumn *c = snapshot_column(t, g->cols[i]);
		if (c && (cv[shown] = view_column(mcols, c)) != NULL)
			shown++;
	}
	if (g->ncols && !shown)
		return;
	sqlbuf_printf(b, ";\nGRANT %s", g->privilege);
	for (size_t i = 0; i < shown; i++) {
		sqlbuf_add(b, i ? ", " : " (");
		sqlbuf_ident(b, cv[i]);
	}
	sqlbuf_add(b, shown ? ") ON " : " ON ");
	sqlbuf_qname(b, vschema, vname);
	grantee_sql(b, g->grantee);
}

/* CREATE VIEW of table T as VSCHEMA.VNAME, its column defaults and its
 * grants. */
static void view_sql(SqlBuf *b, const Snapshot *snap, const SnapTable *t, const json_t *mt, const char *vschema,
		     const char *vname)
{
	const json_t *mcols = mt ? json_object_get(mt, "columns") : NULL;
	sqlbuf_add(b, ";\nCREATE VIEW ");
	sqlbuf_qname(b, vschema, vname);
	sqlbuf_add(b, " WITH (security_invoker = true) AS SELECT ");
	bool first = true;
	for (size_t j = 0; j < t->ncols; j++) {
		const SnapColumn *c = t->cols[j];
		const char *cv = view_column(mcols, c);
		if (!cv)
			continue;
		sqlbuf_add(b, first ? "" : ", ");
		first = false;
		sqlbuf_ident(b, c->name);
		if (strcmp(cv, c->name) != 0) {
			sqlbuf_add(b, " AS ");
			sqlbuf_ident(b, cv);
		}
	}
	sqlbuf_add(b, " FROM ");
	sqlbuf_qname(b, snap->schema, t->name);
	for (size_t j = 0; j < t->ncols; j++) {
		const SnapColumn *c = t->cols[j];
		const json_t *mc = map_find(mcols, c->name);
		const char *cv = view_column(mcols, c);
		const char *def = mc && json_object_get(mc, "default") ? mj_str(mc, "default", NULL) : c->def;
		if (!cv || !def)
			continue;
		sqlbuf_add(b, ";\nALTER VIEW ");
		sqlbuf_qname(b, vschema, vname);
		sqlbuf_add(b, " ALTER COLUMN ");
		sqlbuf_ident(b, cv);
		sqlbuf_printf(b, " SET DEFAULT %s", def);
	}
	for (size_t j = 0; j < t->ngrants; j++)
		view_grant_sql(b, t, t->grants[j], mcols, vschema, vname);
}

/*
 * The views carry the privileges of the tables under them: each role gets on
 * a view what it holds on its table (SNAP's grants, read from the catalog),
 * and USAGE on the version schema when it has USAGE on the tables' schema.
 * The views stay security_invoker, so the caller's own rights on the table
 * (and its row-level security policies) apply as well: a REVOKE on a table
 * takes effect through every version schema at once, and the view owner's
 * rights (the migrating role's) lend nothing.
 */
void plan_views_sql(SqlBuf *b, const Snapshot *snap, const json_t *map, const char *vschema)
{
	const json_t *mtables = map ? json_object_get(map, "tables") : NULL;
	sqlbuf_add(b, "DROP SCHEMA IF EXISTS ");
	sqlbuf_ident(b, vschema);
	sqlbuf_add(b, " CASCADE;\nCREATE SCHEMA ");
	sqlbuf_ident(b, vschema);
	for (size_t i = 0; i < snap->nusage; i++) {
		sqlbuf_add(b, ";\nGRANT USAGE ON SCHEMA ");
		sqlbuf_ident(b, vschema);
		grantee_sql(b, snap->usage[i]);
	}
	for (size_t i = 0; i < snap->ntables; i++) {
		const SnapTable *t = snap->tables[i];
		const json_t *mt = map_find(mtables, t->name);
		const char *vname = t->name;
		if (mt)
			vname = mj_str(mt, "as", NULL);
		else if (is_tmp(t->name))
			vname = NULL;
		if (vname)
			view_sql(b, snap, t, mt, vschema, vname);
	}
}

/* The view map of the planned snapshot: every table and column by physical
 * name with its new-version name (or null) and overridden default. */
static json_t *views_map(const Snapshot *s)
{
	json_t *tables = json_array();
	for (size_t i = 0; i < s->ntables; i++) {
		const SnapTable *t = s->tables[i];
		json_t *cols = json_array();
		for (size_t j = 0; j < t->ncols; j++) {
			const SnapColumn *c = t->cols[j];
			json_t *mc = json_pack("{s:s, s:o}", "name", c->name, "as", c->vname ? json_string(c->vname) : json_null());
			if (mc && c->vdef_set)
				json_object_set_new(mc, "default", c->vdef ? json_string(c->vdef) : json_null());
			json_array_append_new(cols, mc);
		}
		json_array_append_new(tables, json_pack("{s:s, s:o, s:o}", "name", t->name, "as",
							t->vname ? json_string(t->vname) : json_null(), "columns", cols));
	}
	return json_pack("{s:o}", "tables", tables);
}

/* ---- derived contract and rollback ---- */

/*
 * Drops the physical columns one version does not see, in tables it keeps:
 * at complete (NEW_VERSION) the columns the new version hides, into
 * c_drop; at rollback the columns the old version never had, into rb_tail,
 * with IF EXISTS since a failed start may not have made them all.
 */
static void plan_drop_hidden_columns(Planner *pl, bool new_version)
{
	Snapshot *s = pl->s;
	for (size_t i = 0; i < s->ntables; i++) {
		SnapTable *t = s->tables[i];
		if (!(new_version ? t->vname : t->oname))
			continue;
		for (size_t j = 0; j < t->ncols; j++) {
			SnapColumn *c = t->cols[j];
			if (new_version ? c->vname : c->oname)
				continue;
			sqlbuf_add(&pl->b, new_version ? "ALTER TABLE " : "ALTER TABLE IF EXISTS ");
			pl_table(pl, t);
			sqlbuf_add(&pl->b, new_version ? " DROP COLUMN " : " DROP COLUMN IF EXISTS ");
			sqlbuf_ident(&pl->b, c->name);
			pl_emit(pl, new_version ? &pl->c_drop : &pl->rb_tail, STEP_SQL,
				new_version ? "drop old column" : "drop new column");
		}
	}
}

static void plan_derived(Planner *pl)
{
	Snapshot *s = pl->s;
	/* complete, structural: drop hidden tables and columns */
	for (size_t i = 0; i < s->ntables; i++) {
		SnapTable *t = s->tables[i];
		if (t->vname)
			continue;
		sqlbuf_add(&pl->b, "DROP TABLE ");
		pl_table(pl, t);
		pl_emit(pl, &pl->c_drop, STEP_SQL, "drop table");
	}
	plan_drop_hidden_columns(pl, true);
	/* complete, renames (after the constraint steps, which use physical names) */
	for (size_t i = 0; i < s->ntables; i++) {
		SnapTable *t = s->tables[i];
		if (!t->vname)
			continue;
		for (size_t j = 0; j < t->ncols; j++) {
			SnapColumn *c = t->cols[j];
			if (!c->vname || strcmp(c->vname, c->name) == 0)
				continue;
			sqlbuf_add(&pl->b, "ALTER TABLE ");
			pl_table(pl, t);
			sqlbuf_add(&pl->b, " RENAME COLUMN ");
			sqlbuf_ident(&pl->b, c->name);
			sqlbuf_add(&pl->b, " TO ");
			sqlbuf_ident(&pl->b, c->vname);
			pl_emit(pl, &pl->c_rename, STEP_SQL, "rename column to its final name");
		}
	}
	for (size_t i = 0; i < s->ntables; i++) {
		SnapTable *t = s->tables[i];
		if (!t->vname || strcmp(t->vname, t->name) == 0)
			continue;
		sqlbuf_add(&pl->b, "ALTER TABLE ");
		pl_table(pl, t);
		sqlbuf_add(&pl->b, " RENAME TO ");
		sqlbuf_ident(&pl->b, t->vname);
		pl_emit(pl, &pl->c_rename, STEP_SQL, "rename table to its final name");
	}
	pl_names_finish(pl);
	/* rollback: columns the old version cannot see, then created tables (newest first) */
	plan_drop_hidden_columns(pl, false);
	for (size_t i = s->ntables; i-- > 0;) {
		SnapTable *t = s->tables[i];
		if (t->oname)
			continue;
		sqlbuf_add(&pl->b, "DROP TABLE IF EXISTS ");
		pl_table(pl, t);
		pl_emit(pl, &pl->rb_tail, STEP_SQL, "drop created table");
	}
}

/* The last step of complete, into FINAL: the version schema rebuilt from the
 * catalog (its SQL here is the printed form, over the contracted snapshot).
 * In a transaction of its own: clients lock a view before its tables, so
 * rebuilding the views while holding the contract's table locks would
 * deadlock with every new-version client between the two. */
static void plan_final_views(Planner *pl, StepList *final)
{
	Snapshot *snap = snapshot_copy(pl->s);
	if (!snap) {
		pl_fail(pl, "out of memory");
		return;
	}
	plan_contract_snapshot(snap);
	plan_views_sql(&pl->b, snap, NULL, pl->vschema);
	snapshot_free(snap);
	PlanStep *fv = pl_emit(pl, final, STEP_VIEWS, "rebuild the version schema over the final tables");
	if (fv) {
		fv->vschema = strdup(pl->vschema);
		fv->own_tx = true;
	}
}

/* Moves every step of SRC to the end of DST (SRC left empty). */
static bool steps_move(StepList *dst, StepList *src, bool reverse)
{
	for (size_t k = 0; k < src->n; k++) {
		size_t i = reverse ? src->n - 1 - k : k;
		PlanStep *d = steps_push(dst);
		if (!d)
			return false;
		*d = src->v[i];
	}
	free(src->v);
	memset(src, 0, sizeof *src);
	return true;
}

char *plan_vschema_name(const MigFile *f, const char *schema)
{
	if (f->version_schema && f->version_schema[0])
		return strdup(f->version_schema);
	size_t n = strlen(schema) + 1 + strlen(f->name) + 1;
	char *name = malloc(n);
	if (name)
		snprintf(name, n, "%s_%s", schema, f->name);
	return name;
}

bool plan_vschema_check(const MigFile *f, const char *schema, const char *vschema, char *err, size_t errlen)
{
	char why[256];
	bool explicit = f->version_schema && f->version_schema[0];
	if (!conf_route_schema_check(vschema, why, sizeof why)) {
		if (explicit)
			snprintf(err, errlen, "%s: version_schema \"%s\" cannot be a route: %s", f->path, vschema, why);
		else
			snprintf(err, errlen,
				 "%s: version schema \"%s\" (schema \"%s\" + \"_\" + migration name \"%s\") cannot be a "
				 "route: %s; set version_schema or rename the migration",
				 f->path, vschema, schema, f->name, why);
		return false;
	}
	if (strcmp(vschema, schema) == 0) {
		snprintf(err, errlen,
			 "%s: version_schema \"%s\" is the schema of the tables: starting the migration would drop it",
			 f->path, vschema);
		return false;
	}
	if (strcmp(vschema, MIGRATE_STATE_SCHEMA) == 0) {
		snprintf(err, errlen,
			 "%s: version_schema \"%s\" is pgflip's state schema: starting the migration would drop it",
			 f->path, vschema);
		return false;
	}
	return true;
}

Plan *plan_build(const MigFile *f, const Snapshot *snap, const char *schema, const char *prev_vschema, char *err,
		 size_t errlen)
{
	Planner pl;
	memset(&pl, 0, sizeof pl);
	pl.f = f;
	pl.err = err;
	pl.errlen = errlen;
	err[0] = '\0';
	pl.p = calloc(1, sizeof *pl.p);
	pl.rules = calloc(PLAN_MAX_RULES, sizeof *pl.rules);
	pl.backfill = calloc(PLAN_MAX_RULES, sizeof *pl.backfill);
	pl.s = snapshot_copy(snap);
	sqlbuf_init(&pl.b);
	Plan *p = pl.p;
	if (!p || !pl.rules || !pl.backfill || !pl.s) {
		pl_fail(&pl, "out of memory");
		goto out;
	}
	p->name = strdup(f->name);
	p->schema = strdup(schema);
	p->vschema = plan_vschema_name(f, schema);
	p->prev_vschema = prev_vschema ? strdup(prev_vschema) : NULL;
	pl.schema = p->schema;
	pl.vschema = p->vschema;
	if (!p->name || !p->schema || !p->vschema || (prev_vschema && !p->prev_vschema)) {
		pl_fail(&pl, "out of memory");
		goto out;
	}
	if (!plan_vschema_check(f, schema, p->vschema, err, errlen)) {
		pl.failed = true;
		goto out;
	}
	if (prev_vschema && strcmp(prev_vschema, p->vschema) == 0) {
		pl_fail(&pl, "version schema \"%s\" is already the current version", p->vschema);
		goto out;
	}

	for (size_t i = 0; i < f->nops && !pl.failed; i++) {
		pl.opi = i;
		pl.opname = migop_name(f->ops[i].kind);
		pre_names_take(&pl, &f->ops[i]);
		if (!pl.failed)
			plan_op(&pl, &f->ops[i]);
	}
	pl.opname = NULL;
	if (!pl.failed)
		plan_copies_finish(&pl);
	if (!pl.failed)
		pl_rules_finish(&pl);
	if (pl.failed)
		goto out;

	/* start: op steps (already in p->start), sync triggers, views, backfills */
	plan_checks(&pl);
	plan_triggers(&pl);
	json_t *map = views_map(pl.s);
	plan_views_sql(&pl.b, pl.s, map, p->vschema);
	PlanStep *vs = pl_emit(&pl, &p->start, STEP_VIEWS, "create the new version schema");
	if (vs) {
		vs->vschema = strdup(p->vschema);
		vs->viewmap = map;
		/* after the DDL and its triggers have committed: the catalog read
		 * and the views need no lock of theirs held (nobody routes to the
		 * version schema before start ends) */
		vs->own_tx = true;
	} else {
		json_decref(map);
	}
	start_builds_after_sync(&p->start);
	plan_backfills(&pl);

	/* complete: validations, then one transaction: previous version schema,
	 * triggers, pre steps, drops, post steps, renames; then outside-transaction
	 * steps; then, in its own transaction, the final version schema from the
	 * catalog (the new version's views never need the tables renamed or
	 * dropped in between: they follow renames and read no hidden column) */
	plan_derived(&pl);
	if (p->prev_vschema) {
		sqlbuf_add(&pl.b, "DROP SCHEMA IF EXISTS ");
		sqlbuf_ident(&pl.b, p->prev_vschema);
		sqlbuf_add(&pl.b, " CASCADE");
		PlanStep *d = pl_emit(&pl, &p->complete, STEP_SQL, PLAN_NOTE_DROP_PREVIOUS);
		if (d && !(d->drops = strdup(p->prev_vschema)))
			pl_fail(&pl, "out of memory");
	}
	StepList final = {0};
	plan_final_views(&pl, &final);

	/* rollback: drop the new version schema, triggers, op undo (reverse), derived */
	StepList rb_first = {0};
	sqlbuf_add(&pl.b, "DROP SCHEMA IF EXISTS ");
	sqlbuf_ident(&pl.b, p->vschema);
	sqlbuf_add(&pl.b, " CASCADE");
	PlanStep *rd = pl_emit(&pl, &rb_first, STEP_SQL, PLAN_NOTE_DROP_NEW);
	if (rd && !(rd->drops = strdup(p->vschema)))
		pl_fail(&pl, "out of memory");
	if (pl.failed) {
		plan_steps_free(&final);
		plan_steps_free(&rb_first);
		goto out;
	}
	StepList complete = {0};
	bool ok = steps_move(&complete, &pl.c_validate, false) && steps_move(&complete, &p->complete, false) &&
		  steps_move(&complete, &pl.c_head, false) && steps_move(&complete, &pl.c_pre, false) &&
		  steps_move(&complete, &pl.c_drop, false) && steps_move(&complete, &pl.c_post, false) &&
		  steps_move(&complete, &pl.c_rename, false) && steps_move(&complete, &pl.c_outside, false) &&
		  steps_move(&complete, &final, false);
	p->complete = complete;
	StepList rollback = {0};
	ok = ok && steps_move(&rollback, &pl.rb_pre, false) && steps_move(&rollback, &rb_first, false) &&
	     steps_move(&rollback, &pl.rb_head, false) &&
	     steps_move(&rollback, &pl.rb_ops, true) && steps_move(&rollback, &pl.rb_tail, false);
	p->rollback = rollback;
	if (!ok)
		pl_fail(&pl, "out of memory");

out:
	for (size_t i = 0; i < pl.nrules; i++) {
		free(pl.rules[i].target);
		free(pl.rules[i].expr);
		free(pl.rules[i].src);
		for (size_t j = 0; j < pl.rules[i].nat; j++)
			free(pl.rules[i].at[j]);
		free(pl.rules[i].at);
	}
	free(pl.rules);
	for (size_t i = 0; i < pl.ncopies; i++) {
		free(pl.copies[i].from);
		free(pl.copies[i].to);
	}
	free(pl.copies);
	pl_names_free(&pl);
	pre_names_free(&pl);
	free(pl.backfill);
	StepList *tmp[] = {&pl.c_validate, &pl.c_head, &pl.c_pre, &pl.c_drop, &pl.c_post,
			   &pl.c_rename, &pl.c_outside, &pl.rb_pre, &pl.rb_head, &pl.rb_ops, &pl.rb_tail};
	for (size_t i = 0; i < sizeof tmp / sizeof tmp[0]; i++)
		plan_steps_free(tmp[i]);
	sqlbuf_free(&pl.b);
	if (pl.failed) {
		snapshot_free(pl.s);
		plan_free(p);
		return NULL;
	}
	p->after = pl.s;
	return p;
}

/* ---- printing and storing ---- */

void plan_format_steps(SqlBuf *b, const StepList *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const PlanStep *s = &l->v[i];
		sqlbuf_printf(b, "-- step %zu: %s", i + 1, s->note ? s->note : "");
		switch (s->kind) {
		case STEP_OUTSIDE_TX: sqlbuf_add(b, " [outside transaction]"); break;
		case STEP_VIEWS:
			sqlbuf_add(b, s->own_tx ? " [views and their grants, built from the catalog when run; own transaction]"
						: " [views and their grants, built from the catalog when run]");
			break;
		case STEP_BACKFILL: sqlbuf_add(b, " [backfill: keyset batches, one transaction each]"); break;
		case STEP_SQL: if (s->own_tx) sqlbuf_add(b, " [own transaction]"); break;
		}
		sqlbuf_printf(b, "\n%s;\n", s->sql ? s->sql : "");
	}
}

char *plan_format(const Plan *p)
{
	SqlBuf b;
	sqlbuf_init(&b);
	sqlbuf_printf(&b, "-- migration %s: version schema %s (previous: %s)\n", p->name, p->vschema,
		      p->prev_vschema ? p->prev_vschema : p->schema);
	if (p->irreversible)
		sqlbuf_printf(&b, "-- warning: rollback cannot undo start: %s\n", p->irreversible);
	const char *names[] = {"check (before start changes anything; no row is read)", "start", "complete", "rollback"};
	const StepList *lists[] = {&p->check, &p->start, &p->complete, &p->rollback};
	for (int i = 0; i < 4; i++) {
		sqlbuf_printf(&b, "\n-- %s\n", names[i]);
		plan_format_steps(&b, lists[i]);
	}
	return sqlbuf_steal(&b);
}

static const char *const KIND_NAMES[] = {"sql", "outside_tx", "views", "backfill"};

json_t *plan_steps_to_json(const StepList *l)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < l->n; i++) {
		const PlanStep *s = &l->v[i];
		json_t *o = json_pack("{s:s, s:b}", "kind", KIND_NAMES[s->kind], "own_tx", s->own_tx);
		if (!o) {
			json_decref(arr);
			return NULL;
		}
		if (s->sql)
			json_object_set_new(o, "sql", json_string(s->sql));
		if (s->cleanup)
			json_object_set_new(o, "cleanup", json_string(s->cleanup));
		if (s->note)
			json_object_set_new(o, "note", json_string(s->note));
		if (s->vschema)
			json_object_set_new(o, "vschema", json_string(s->vschema));
		if (s->viewmap)
			json_object_set(o, "viewmap", s->viewmap);
		if (s->assign)
			json_object_set_new(o, "assign", json_string(s->assign));
		if (s->drops)
			json_object_set_new(o, "drops", json_string(s->drops));
		if (s->table) {
			json_object_set_new(o, "table", json_string(s->table));
			json_t *keys = json_array(), *types = json_array();
			for (size_t k = 0; k < s->nkeys; k++) {
				json_array_append_new(keys, json_string(s->keys[k]));
				json_array_append_new(types, json_string(s->key_types[k]));
			}
			json_object_set_new(o, "keys", keys);
			json_object_set_new(o, "key_types", types);
		}
		json_array_append_new(arr, o);
	}
	return arr;
}

static char *dup_or_null(const json_t *o, const char *key)
{
	const char *v = mj_str(o, key, NULL);
	return v ? strdup(v) : NULL;
}

bool plan_steps_from_json(const json_t *j, StepList *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (!json_is_array(j)) {
		snprintf(err, errlen, "stored plan: expected an array of steps");
		return false;
	}
	size_t i;
	json_t *o;
	json_array_foreach(j, i, o) {
		PlanStep *s = steps_push(out);
		if (!s)
			goto oom;
		const char *kind = mj_str(o, "kind", "");
		int k = -1;
		for (int n = 0; n < 4; n++)
			if (strcmp(kind, KIND_NAMES[n]) == 0)
				k = n;
		if (k < 0) {
			snprintf(err, errlen, "stored plan: step %zu has unknown kind '%s'", i, kind);
			plan_steps_free(out);
			return false;
		}
		s->kind = (StepKind)k;
		s->own_tx = mj_bool(o, "own_tx", false);
		s->sql = dup_or_null(o, "sql");
		s->cleanup = dup_or_null(o, "cleanup");
		s->note = dup_or_null(o, "note");
		s->vschema = dup_or_null(o, "vschema");
		s->viewmap = json_incref(json_object_get(o, "viewmap"));
		s->table = dup_or_null(o, "table");
		s->assign = dup_or_null(o, "assign");
		s->drops = dup_or_null(o, "drops");
		json_t *keys = json_object_get(o, "keys"), *types = json_object_get(o, "key_types");
		size_t n = json_array_size(keys);
		if (s->table) {
			s->keys = calloc(n + 1, sizeof *s->keys);
			s->key_types = calloc(n + 1, sizeof *s->key_types);
			if (!s->keys || !s->key_types)
				goto oom;
			for (size_t x = 0; x < n; x++) {
				s->keys[x] = strdup(json_string_value(json_array_get(keys, x)) ?: "");
				s->key_types[x] = strdup(json_string_value(json_array_get(types, x)) ?: "text");
				s->nkeys++;
			}
		}
	}
	return true;
oom:
	snprintf(err, errlen, "stored plan: out of memory");
	plan_steps_free(out);
	return false;
}

void plan_contract_snapshot(Snapshot *s)
{
	for (size_t i = 0; i < s->ntables;) {
		SnapTable *t = s->tables[i];
		if (!t->vname) {
			snapshot_remove_table(s, t);
			continue;
		}
		snap_set(&t->name, t->vname);
		snap_set(&t->oname, t->vname);
		for (size_t j = 0; j < t->ncols;) {
			SnapColumn *c = t->cols[j];
			for (size_t k = 0; k < t->ncons;) {
				SnapConstraint *kc = t->cons[k];
				bool gone = false;
				for (size_t x = 0; x < kc->ncols; x++)
					if (strcmp(kc->cols[x], c->name) == 0) {
						if (c->vname)
							snap_set(&kc->cols[x], c->vname);
						else
							gone = true;
					}
				if (gone)
					snapshot_remove_constraint(t, kc->name);
				else
					k++;
			}
			snapshot_grants_column(t, c->name, c->vname);
			if (!c->vname) {
				snapshot_remove_column(t, c);
				continue;
			}
			snap_set(&c->name, c->vname);
			snap_set(&c->oname, c->vname);
			if (c->vdef_set) {
				snap_set(&c->def, c->vdef);
				c->vdef_set = false;
			}
			j++;
		}
		i++;
	}
}
