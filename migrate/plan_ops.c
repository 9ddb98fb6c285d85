/*
 * migrate/plan_ops.c: one planning function per pgroll operation.
 *
 * Each function checks its operation against the simulated snapshot (tables
 * and columns are named as the NEW version sees them), changes the snapshot,
 * and adds the steps that cannot be derived from it. Everything about columns
 * goes through a few helpers shared by all operations: new_column() (a new
 * physical column), dup_column() (a copy of a column with its constraints,
 * for any change the old version must not see), and the constraint helpers
 * add_not_null(), add_check(), add_unique(), add_fk().
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "migrate/plan_int.h"

#define TMP_NEW MIGRATE_TMP_PREFIX "new_"
#define TMP_DUP MIGRATE_TMP_PREFIX "dup_"
#define TMP_NN MIGRATE_TMP_PREFIX "nn_"

static SnapTable *need_table(Planner *pl, const char *name)
{
	SnapTable *t = snapshot_vtable(pl->s, name);
	if (!t)
		pl_fail(pl, "table \"%s\" does not exist", name);
	return t;
}

static SnapColumn *need_column(Planner *pl, SnapTable *t, const char *name)
{
	SnapColumn *c = snapshot_vcolumn(t, name);
	if (!c)
		pl_fail(pl, "column \"%s\" of table \"%s\" does not exist", name, t->vname);
	return c;
}

static void alter_prefix(Planner *pl, const SnapTable *t)
{
	sqlbuf_add(&pl->b, "ALTER TABLE ");
	pl_table(pl, t);
	sqlbuf_add(&pl->b, " ");
}

/* VALIDATE CONSTRAINT NAME at complete, in its own transaction. */
static void validate_later(Planner *pl, const SnapTable *t, const char *name)
{
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "VALIDATE CONSTRAINT ");
	sqlbuf_ident(&pl->b, name);
	PlanStep *s = pl_emit(pl, &pl->c_validate, STEP_SQL, "validate constraint");
	if (s)
		s->own_tx = true;
}

/* NOT NULL on new column PHYS: CHECK NOT VALID now; at complete VALIDATE,
 * SET NOT NULL (no scan: the validated CHECK proves it), drop the CHECK. */
static void add_not_null(Planner *pl, SnapTable *t, const char *phys)
{
	char *nn = pl_tmp_name(TMP_NN, phys + (strncmp(phys, TMP_NEW, strlen(TMP_NEW)) == 0 ? strlen(TMP_NEW) : 0));
	if (!nn) {
		pl_fail(pl, "out of memory");
		return;
	}
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "ADD CONSTRAINT ");
	sqlbuf_ident(&pl->b, nn);
	sqlbuf_add(&pl->b, " CHECK (");
	sqlbuf_ident(&pl->b, phys);
	sqlbuf_add(&pl->b, " IS NOT NULL) NOT VALID");
	pl_emit(pl, &pl->p->start, STEP_SQL, "NOT NULL as a CHECK, not validated yet");
	validate_later(pl, t, nn);
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "ALTER COLUMN ");
	sqlbuf_ident(&pl->b, phys);
	sqlbuf_add(&pl->b, " SET NOT NULL");
	pl_emit(pl, &pl->c_pre, STEP_SQL, "set NOT NULL (proved by the validated CHECK)");
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "DROP CONSTRAINT ");
	sqlbuf_ident(&pl->b, nn);
	pl_emit(pl, &pl->c_pre, STEP_SQL, "drop the NOT NULL CHECK");
	free(nn);
}

/* NOT NULL on column C, new in this migration: at once in a table this
 * migration creates (it is empty), else through a CHECK (add_not_null). */
static void direct_not_null(Planner *pl, SnapTable *t, SnapColumn *c)
{
	if (c->notnull)
		return;
	c->notnull = true;
	if (t->oname)
		return add_not_null(pl, t, c->name);
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "ALTER COLUMN ");
	sqlbuf_ident(&pl->b, c->name);
	sqlbuf_add(&pl->b, " SET NOT NULL");
	pl_emit(pl, &pl->p->start, STEP_SQL, "set NOT NULL on a column of a new table");
}

/* CHECK (EXPR, in new-version names) named NAME, NOT VALID until complete.
 * FINAL_NAME non-NULL: NAME is temporary and is renamed at complete. */
static void add_check(Planner *pl, SnapTable *t, const char *name, const char *expr, bool no_inherit, bool is_def,
		      const char *final_name)
{
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "ADD CONSTRAINT ");
	sqlbuf_ident(&pl->b, name);
	if (is_def) {
		sqlbuf_add(&pl->b, " ");
		sqlbuf_add(&pl->b, expr); /* a whole constraint definition, already physical */
	} else {
		sqlbuf_add(&pl->b, " CHECK (");
		pl_expr_phys(pl, t, expr);
		sqlbuf_add(&pl->b, ")");
		if (no_inherit)
			sqlbuf_add(&pl->b, " NO INHERIT");
	}
	sqlbuf_add(&pl->b, " NOT VALID");
	pl_emit(pl, &pl->p->start, STEP_SQL, "add constraint, not validated yet");
	validate_later(pl, t, name);
	if (final_name) {
		alter_prefix(pl, t);
		sqlbuf_add(&pl->b, "RENAME CONSTRAINT ");
		sqlbuf_ident(&pl->b, name);
		sqlbuf_add(&pl->b, " TO ");
		sqlbuf_ident(&pl->b, final_name);
		pl_emit(pl, &pl->c_post, STEP_SQL, "give the copied constraint its name");
	}
}

/*
 * Index NAME, built CONCURRENTLY by start's step S (NULL: the planner
 * failed), is undone by DROP INDEX CONCURRENTLY IF EXISTS NAME twice: as
 * S's cleanup when the build fails, and as a step of rollback's rb_pre, which
 * runs before the rollback's transaction. That transaction drops the new
 * columns under ACCESS EXCLUSIVE; an index still on one of them would be
 * dropped with it, and the COMMIT that unlinks it (tens of ms for 1M rows)
 * would hold the lock that long.
 */
static void index_built(Planner *pl, PlanStep *s, const char *name)
{
	if (!s)
		return;
	sqlbuf_add(&pl->b, "DROP INDEX CONCURRENTLY IF EXISTS ");
	sqlbuf_qname(&pl->b, pl->schema, name);
	PlanStep *undo = pl_emit(pl, &pl->rb_pre, STEP_OUTSIDE_TX, "drop created index");
	if (undo && !(s->cleanup = strdup(undo->sql)))
		pl_fail(pl, "out of memory");
}

/* Unique index built CONCURRENTLY on physical columns COLS; at complete it
 * becomes constraint FINAL_NAME (UNIQUE or, with PK, PRIMARY KEY). */
static void add_unique(Planner *pl, SnapTable *t, const char *index, const char *const *cols, size_t ncols,
		       const json_t *params, bool pk, const char *final_name)
{
	sqlbuf_add(&pl->b, "CREATE UNIQUE INDEX CONCURRENTLY ");
	sqlbuf_ident(&pl->b, index);
	sqlbuf_add(&pl->b, " ON ");
	pl_table(pl, t);
	sqlbuf_add(&pl->b, " (");
	for (size_t i = 0; i < ncols; i++) {
		sqlbuf_add(&pl->b, i ? ", " : "");
		sqlbuf_ident(&pl->b, cols[i]);
	}
	sqlbuf_add(&pl->b, ")");
	if (params) {
		json_t *inc = json_object_get(params, "include_columns");
		if (json_array_size(inc) > 0) {
			sqlbuf_add(&pl->b, " INCLUDE (");
			pl_ident_list(pl, inc, t);
			sqlbuf_add(&pl->b, ")");
		}
		const char *sp = mj_str(params, "storage_parameters", "");
		if (sp[0])
			sqlbuf_printf(&pl->b, " WITH (%s)", sp);
		const char *ts = mj_str(params, "tablespace", "");
		if (ts[0]) {
			sqlbuf_add(&pl->b, " TABLESPACE ");
			sqlbuf_ident(&pl->b, ts);
		}
	}
	index_built(pl, pl_emit(pl, &pl->p->start, STEP_OUTSIDE_TX, "build unique index"), index);
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "ADD CONSTRAINT ");
	sqlbuf_ident(&pl->b, final_name);
	sqlbuf_add(&pl->b, pk ? " PRIMARY KEY USING INDEX " : " UNIQUE USING INDEX ");
	sqlbuf_ident(&pl->b, index);
	pl_emit(pl, &pl->c_post, STEP_SQL, "turn the unique index into a constraint");
	snapshot_add_index(t, index, true, false);
	snapshot_add_constraint(t, final_name, pk ? 'p' : 'u', cols, ncols, NULL);
}

/* FOREIGN KEY (COLS) REFERENCES ... NOT VALID until complete; REF is a
 * ForeignKeyReference (column) or TableForeignKeyReference (columns). */
static void add_fk(Planner *pl, SnapTable *t, const char *name, const char *const *cols, size_t ncols,
		   const json_t *ref, bool deferrable, bool deferred)
{
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "ADD CONSTRAINT ");
	sqlbuf_ident(&pl->b, name);
	sqlbuf_add(&pl->b, " FOREIGN KEY (");
	for (size_t i = 0; i < ncols; i++) {
		sqlbuf_add(&pl->b, i ? ", " : "");
		sqlbuf_ident(&pl->b, cols[i]);
	}
	sqlbuf_add(&pl->b, ") REFERENCES ");
	const char *rt = mj_str(ref, "table", "");
	sqlbuf_qname(&pl->b, pl->schema, pl_ref_table(pl, rt));
	sqlbuf_add(&pl->b, " (");
	SnapTable *rtab = snapshot_vtable(pl->s, rt);
	json_t *rcols = json_object_get(ref, "columns");
	if (rcols) {
		pl_ident_list(pl, rcols, rtab);
	} else {
		const char *rc = mj_str(ref, "column", "");
		SnapColumn *c = rtab ? snapshot_vcolumn(rtab, rc) : NULL;
		sqlbuf_ident(&pl->b, c ? c->name : rc);
	}
	sqlbuf_add(&pl->b, ")");
	pl_fk_tail(pl, ref);
	if (deferrable)
		sqlbuf_add(&pl->b, " DEFERRABLE");
	if (deferred)
		sqlbuf_add(&pl->b, " INITIALLY DEFERRED");
	sqlbuf_add(&pl->b, " NOT VALID");
	pl_emit(pl, &pl->p->start, STEP_SQL, "add foreign key, not validated yet");
	validate_later(pl, t, name);
	snapshot_add_constraint(t, name, 'f', cols, ncols, NULL);
}

static void comment_column(Planner *pl, StepList *l, const SnapTable *t, const char *phys, const char *comment)
{
	sqlbuf_add(&pl->b, "COMMENT ON COLUMN ");
	pl_table(pl, t);
	sqlbuf_add(&pl->b, ".");
	sqlbuf_ident(&pl->b, phys);
	sqlbuf_add(&pl->b, " IS ");
	sqlbuf_literal(&pl->b, comment);
	pl_emit(pl, l, STEP_SQL, "column comment");
}

/* The table that has an index NAME (or a unique, primary key or exclusion
 * constraint, whose index has its name) in S, or NULL. */
static SnapTable *index_owner(const Snapshot *s, const char *name)
{
	SnapTable *t = snapshot_index_table(s, name, NULL);
	for (size_t i = 0; i < s->ntables && !t; i++) {
		const SnapConstraint *k = snapshot_constraint(s->tables[i], name);
		if (k && k->type && strchr("pux", k->type))
			t = s->tables[i];
	}
	return t;
}

/* What a temporary name must not clash with. */
typedef enum { TAKEN_COLUMN, TAKEN_TABLE, TAKEN_RELATION } Taken;

/* True when NAME is taken in CTX: a column of a SnapTable, a table of a
 * Snapshot, or a table or index of a Snapshot (RELATION). */
static bool name_taken(const void *ctx, Taken kind, const char *name)
{
	if (kind == TAKEN_COLUMN)
		return snapshot_column(ctx, name) != NULL;
	return snapshot_table(ctx, name) || (kind == TAKEN_RELATION && index_owner(ctx, name));
}

/* _pgflip_new_NAME, or _pgflip_new2_NAME, ... when taken in CTX (see
 * name_taken). Caller frees; NULL when out of memory or after 100 tries. */
static char *free_tmp_name(const void *ctx, Taken kind, const char *name)
{
	char *phys = pl_tmp_name(TMP_NEW, name);
	for (int n = 2; phys && name_taken(ctx, kind, phys); n++) {
		free(phys);
		char prefix[32];
		snprintf(prefix, sizeof prefix, MIGRATE_TMP_PREFIX "new%d_", n);
		phys = n < 100 ? pl_tmp_name(prefix, name) : NULL;
	}
	return phys;
}

/*
 * A physical name no column of T has, for a new column the new version calls
 * VNAME: VNAME itself in a table this migration creates (the new version's
 * alone: its columns take their final names at once), else
 * _pgflip_new_VNAME; when that is taken (a name an earlier operation of the
 * file freed: renamed, or dropped), _pgflip_new2_VNAME, ... Caller frees;
 * NULL when out of memory or after 100 tries.
 */
static char *free_column_name(const SnapTable *t, const char *vname)
{
	return t->oname ? free_tmp_name(t, TAKEN_COLUMN, vname) : strdup(vname);
}

/* Adds a physical column (free_column_name; type clause from the Column
 * object COL, or TYPE + DEF) to T, visible to the new version as VNAME only. */
static SnapColumn *new_column(Planner *pl, SnapTable *t, const char *vname, const json_t *col, const char *type,
			      const char *def)
{
	char *phys = free_column_name(t, vname);
	if (!phys) {
		pl_fail(pl, "out of memory, or no free name for a new column \"%s\" of table \"%s\"", vname, t->vname);
		return NULL;
	}
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "ADD COLUMN ");
	sqlbuf_ident(&pl->b, phys);
	sqlbuf_add(&pl->b, " ");
	if (col) {
		/* a new column: its default fills the existing rows */
		pl_column_type(pl, col);
		type = mj_str(col, "type", "");
		def = mj_str(col, "default", NULL);
	} else {
		/* a copy: existing rows stay NULL until the backfill runs up(), so a
		 * default never collides with a unique index and never rewrites the
		 * table; new rows get the default */
		sqlbuf_add(&pl->b, type);
		if (def) {
			sqlbuf_add(&pl->b, ", ALTER COLUMN ");
			sqlbuf_ident(&pl->b, phys);
			sqlbuf_printf(&pl->b, " SET DEFAULT %s", def);
		}
	}
	pl_emit(pl, &pl->p->start, STEP_SQL, "add new column");
	SnapColumn *c = snapshot_add_column(t, phys, type, false, def);
	free(phys);
	if (!c || !snap_set(&c->vname, vname) || !snap_set(&c->oname, NULL)) {
		pl_fail(pl, "out of memory");
		return NULL;
	}
	return c;
}

static const char *strip_not_valid(char *def)
{
	size_t n = strlen(def);
	const char *suffix = " NOT VALID";
	size_t m = strlen(suffix);
	if (n > m && strcmp(def + n - m, suffix) == 0)
		def[n - m] = '\0';
	return def;
}

/*
 * Builds, CONCURRENTLY, a copy named TMP of index X (its pg_get_indexdef
 * text) with the N columns FROM[] replaced by TO[]. Returns false when X has
 * no definition to copy (planned in memory, not read from the catalog).
 */
static bool copy_index(Planner *pl, const SnapIndex *x, const char *tmp, const char *const *from, const char *const *to,
		       size_t n)
{
	/* "CREATE [UNIQUE] INDEX name ON ..." -> "... INDEX CONCURRENTLY tmp ON ..." */
	const char *on = x->def ? strstr(x->def, " ON ") : NULL;
	if (!on)
		return false;
	sqlbuf_add(&pl->b, x->unique ? "CREATE UNIQUE INDEX CONCURRENTLY " : "CREATE INDEX CONCURRENTLY ");
	sqlbuf_ident(&pl->b, tmp);
	sqlbuf_rename_idents(&pl->b, on, from, to, n);
	index_built(pl, pl_emit(pl, &pl->p->start, STEP_OUTSIDE_TX, "copy index to the new column"), tmp);
	return true;
}

/* The index of T named NAME, or NULL. */
static SnapIndex *table_index(const SnapTable *t, const char *name)
{
	for (size_t i = 0; i < t->nidx; i++)
		if (strcmp(t->idx[i]->name, name) == 0)
			return t->idx[i];
	return NULL;
}

/*
 * Copies constraint K of T (unique, primary key, check, foreign key) onto the
 * new-version columns: its columns FROM[] become TO[] (N pairs); NEWCOLS
 * (NCOLS) are K's columns after the copy. The copy is named
 * _pgflip_dup_<name> and takes K's name at complete, once the old columns
 * and K with them are dropped. An exclusion constraint fails the planner;
 * nothing for other kinds (NOT NULL is the column's own).
 */
static void copy_constraint(Planner *pl, SnapTable *t, const SnapConstraint *k, const char *const *from,
			    const char *const *to, size_t n, const char *const *newcols, size_t ncols)
{
	char *tmp = pl_tmp_name(TMP_DUP, k->name);
	char *name = strdup(k->name);
	char *kdef = k->def ? strdup(k->def) : NULL;
	char type_c = k->type;
	if (!tmp || !name || (k->def && !kdef)) {
		pl_fail(pl, "out of memory");
	} else if (type_c == 'x') {
		pl_fail(pl, "exclusion constraint \"%s\" of table \"%s\" is over a column this migration copies, and pgflip "
			    "cannot copy an exclusion constraint", k->name, t->vname ? t->vname : t->name);
	} else if (type_c == 'u' || type_c == 'p') {
		const SnapIndex *x = table_index(t, name);
		if (x && copy_index(pl, x, tmp, from, to, n)) {
			alter_prefix(pl, t);
			sqlbuf_add(&pl->b, "ADD CONSTRAINT ");
			sqlbuf_ident(&pl->b, name);
			sqlbuf_add(&pl->b, type_c == 'p' ? " PRIMARY KEY USING INDEX " : " UNIQUE USING INDEX ");
			sqlbuf_ident(&pl->b, tmp);
			pl_emit(pl, &pl->c_post, STEP_SQL, "turn the unique index into a constraint");
			snapshot_add_index(t, tmp, true, false);
			snapshot_add_constraint(t, name, type_c, newcols, ncols, NULL);
		} else {
			add_unique(pl, t, tmp, newcols, ncols, NULL, type_c == 'p', name);
		}
	} else if ((type_c == 'c' || type_c == 'f') && kdef) {
		SqlBuf d;
		sqlbuf_init(&d);
		strip_not_valid(kdef);
		/* a foreign key's referenced columns are another table's */
		char *refs = type_c == 'f' ? strstr(kdef, " REFERENCES ") : NULL;
		if (refs)
			*refs = '\0';
		sqlbuf_rename_idents(&d, kdef, from, to, n);
		if (refs) {
			*refs = ' ';
			sqlbuf_add(&d, refs);
		}
		char *text = sqlbuf_steal(&d);
		if (text)
			add_check(pl, t, tmp, text, false, true, name);
		free(text);
		snapshot_add_constraint(t, tmp, type_c, newcols, ncols, NULL);
	}
	free(tmp);
	free(name);
	free(kdef);
}

/* Copies plain index X of T with FROM[] replaced by TO[]; it takes X's name
 * at complete. */
static void copy_plain_index(Planner *pl, const SnapTable *t, const SnapIndex *x, const char *const *from,
			     const char *const *to, size_t n)
{
	char *tmp = pl_tmp_name(TMP_DUP, x->name);
	char *name = strdup(x->name);
	if (!tmp || !name) {
		pl_fail(pl, "out of memory");
	} else if (copy_index(pl, x, tmp, from, to, n)) {
		sqlbuf_add(&pl->b, "ALTER INDEX ");
		sqlbuf_qname(&pl->b, pl->schema, tmp);
		sqlbuf_add(&pl->b, " RENAME TO ");
		sqlbuf_ident(&pl->b, name);
		pl_emit(pl, &pl->c_post, STEP_SQL, "give the copied index its name");
	}
	free(tmp);
	free(name);
}

typedef enum { KEEP = 0, SET, DROP } Mode;

/*
 * dup_column: copies column C of T into a new physical column for the new
 * version (the old version keeps C): TYPE (NULL: C's type), default per
 * DEF_MODE/DEF, NOT NULL per NN_MODE (SET: NOT NULL, DROP: nullable), and
 * every single-column constraint of C except EXCLUDE; multi-column ones and
 * the indexes over C follow once every operation is planned
 * (plan_copies_finish), when the copies of their other columns are known. Returns the new column; C
 * becomes hidden from the new version. A column new in this migration has
 * no old version to keep: callers change it directly instead.
 */
static SnapColumn *dup_column(Planner *pl, SnapTable *t, SnapColumn *c, const char *type, Mode def_mode,
			      const char *def, Mode nn_mode, const char *exclude)
{
	if (!c->oname)
		return pl_fail(pl, "column \"%s\" is new in this migration; change its definition instead", c->vname),
		       NULL;
	bool type_changed = type && strcmp(type, c->type) != 0;
	const char *ntype = type ? type : c->type;
	char *ndef = NULL;
	if (def_mode == SET)
		ndef = strdup(def);
	else if (def_mode == KEEP && c->def) {
		size_t n = strlen(c->def) + strlen(ntype) + 8;
		ndef = malloc(n);
		if (ndef)
			snprintf(ndef, n, type_changed ? "(%s)::%s" : "%s", c->def, ntype);
	}
	char *vname = strdup(c->vname);
	char *oldphys = strdup(c->name);
	SnapColumn *nc = vname && oldphys ? new_column(pl, t, vname, NULL, ntype, ndef) : NULL;
	free(ndef);
	if (!nc || !pl_copy_record(pl, t, oldphys, nc->name)) {
		free(vname);
		free(oldphys);
		return NULL;
	}
	snap_set(&c->vname, NULL);
	snap_set(&nc->comment, c->comment);
	bool nn = nn_mode == SET || (nn_mode == KEEP && c->notnull);
	nc->notnull = nn;
	if (nn)
		add_not_null(pl, t, nc->name);
	/* copy single-column constraints; collect first, adding changes t->cons */
	size_t ncopy = 0;
	SnapConstraint **copy = calloc(t->ncons + 1, sizeof *copy);
	if (!copy)
		pl_fail(pl, "out of memory");
	for (size_t i = 0; copy && i < t->ncons; i++) {
		SnapConstraint *k = t->cons[i];
		if (k->ncols == 1 && strcmp(k->cols[0], oldphys) == 0 && !(exclude && strcmp(k->name, exclude) == 0))
			copy[ncopy++] = k;
	}
	const char *from[1] = {oldphys}, *to[1] = {nc->name};
	for (size_t i = 0; i < ncopy && !pl->failed; i++)
		copy_constraint(pl, t, copy[i], from, to, 1, to, 1);
	free(copy);
	free(vname);
	free(oldphys);
	return pl->failed ? NULL : nc;
}

/*
 * Maps the N columns COLS of a multi-column constraint or index of T onto
 * the new version: NEWCOLS[j] is the copy of a copied column, else the
 * column itself; FROM/TO (*NPAIRS) the copied ones. False when none was
 * copied or one is gone from the new version (the constraint goes with it).
 */
static bool map_columns(const Planner *pl, const SnapTable *t, char *const *cols, size_t n, const char **newcols,
			const char **from, const char **to, size_t *npairs)
{
	*npairs = 0;
	for (size_t j = 0; j < n; j++) {
		const char *copy = pl_copy_of(pl, t, cols[j]);
		const SnapColumn *c = snapshot_column(t, copy ? copy : cols[j]);
		if (!c || !c->vname)
			return false;
		newcols[j] = c->name;
		if (copy) {
			from[*npairs] = cols[j];
			to[(*npairs)++] = copy;
		}
	}
	return *npairs > 0;
}

/*
 * True when foreign key definition DEF (pg_get_constraintdef: "FOREIGN KEY
 * (a) REFERENCES [schema.]table(b, c) ...") references column COL of the
 * table physically named TABLE.
 */
static bool fk_references(const char *def, const char *table, const char *col)
{
	const char *r = def ? strstr(def, " REFERENCES ") : NULL;
	const char *open = r ? strchr(r, '(') : NULL;
	const char *close = open ? strchr(open, ')') : NULL;
	if (!close)
		return false;
	const char *name = r + strlen(" REFERENCES ");
	for (const char *p = name; p < open; p++)
		if (*p == '.')
			name = p + 1;
	SqlBuf want;
	sqlbuf_init(&want);
	sqlbuf_ident(&want, table);
	size_t n = (size_t)(open - name);
	bool same = want.data && ((strlen(table) == n && strncmp(name, table, n) == 0) ||
				  (want.len == n && strncmp(name, want.data, n) == 0));
	sqlbuf_free(&want);
	if (!same)
		return false;
	SqlBuf cols;
	sqlbuf_init(&cols);
	sqlbuf_addn(&cols, open + 1, (size_t)(close - open - 1));
	bool found = false;
	char *save = NULL;
	for (char *tok = cols.data ? strtok_r(cols.data, ", ", &save) : NULL; tok && !found;
	     tok = strtok_r(NULL, ", ", &save)) {
		size_t tl = strlen(tok);
		found = strcmp(tok, col) == 0 ||
			(tl == strlen(col) + 2 && tok[0] == '"' && strncmp(tok + 1, col, tl - 2) == 0);
	}
	sqlbuf_free(&cols);
	return found;
}

/* Fails when a foreign key of any table references a column the migration
 * copies: complete drops the old column, which the key depends on. */
static void refuse_referenced_copies(Planner *pl)
{
	for (size_t c = 0; c < pl->ncopies && !pl->failed; c++) {
		const ColumnCopy *cp = &pl->copies[c];
		for (size_t i = 0; i < pl->s->ntables && !pl->failed; i++) {
			const SnapTable *o = pl->s->tables[i];
			for (size_t k = 0; k < o->ncons; k++) {
				const SnapConstraint *kc = o->cons[k];
				if (kc->type != 'f' || !fk_references(kc->def, cp->table->name, cp->from))
					continue;
				const SnapColumn *col = snapshot_column(cp->table, cp->to);
				pl_fail(pl, "column \"%s\" of table \"%s\" is referenced by foreign key \"%s\" of table \"%s\", "
					    "which pgflip cannot move to the changed column: drop the foreign key in an earlier "
					    "migration", col && col->vname ? col->vname : cp->from,
					cp->table->vname ? cp->table->vname : cp->table->name, kc->name, o->vname ? o->vname : o->name);
				break;
			}
		}
	}
}

/*
 * For plain index X of T: the copied columns it uses, in its key, its
 * expressions or its predicate (a mention in its definition: pg_get_indexdef
 * names every column it reads), as FROM/TO pairs. False when it uses none,
 * or uses a column the new version drops (the index goes with it at
 * complete).
 */
static bool index_columns(const Planner *pl, const SnapTable *t, const SnapIndex *x, const char **from, const char **to,
			  size_t *npairs)
{
	*npairs = 0;
	const char *body = x->def && !x->constraint ? strstr(x->def, " USING ") : NULL;
	if (!body)
		return false;
	for (size_t j = 0; j < t->ncols; j++) {
		const SnapColumn *c = t->cols[j];
		if (c->vname || !c->oname || !sql_mentions(body, c->name))
			continue;
		const char *copy = pl_copy_of(pl, t, c->name);
		if (!copy || *npairs >= SNAP_MAX_COLUMNS)
			return false;
		from[*npairs] = c->name;
		to[(*npairs)++] = copy;
	}
	return *npairs > 0;
}

void plan_copies_finish(Planner *pl)
{
	refuse_referenced_copies(pl);
	const char *newcols[SNAP_MAX_COLUMNS], *from[SNAP_MAX_COLUMNS], *to[SNAP_MAX_COLUMNS];
	size_t np;
	for (size_t i = 0; i < pl->s->ntables && !pl->failed; i++) {
		SnapTable *t = pl->s->tables[i];
		bool any = false;
		for (size_t c = 0; c < pl->ncopies && !any; c++)
			any = pl->copies[c].table == t;
		if (!any)
			continue;
		size_t ncons = t->ncons, nidx = t->nidx; /* copies are appended: not visited */
		for (size_t k = 0; k < ncons && !pl->failed; k++) {
			const SnapConstraint *kc = t->cons[k];
			if (kc->ncols < 2 || kc->ncols > SNAP_MAX_COLUMNS ||
			    strncmp(kc->name, MIGRATE_TMP_PREFIX, strlen(MIGRATE_TMP_PREFIX)) == 0 ||
			    !map_columns(pl, t, kc->cols, kc->ncols, newcols, from, to, &np))
				continue;
			copy_constraint(pl, t, kc, from, to, np, newcols, kc->ncols);
		}
		for (size_t x = 0; x < nidx && !pl->failed; x++)
			if (index_columns(pl, t, t->idx[x], from, to, &np))
				copy_plain_index(pl, t, t->idx[x], from, to, np);
	}
}

/* ---- create_table ---- */

/* Appends CONSTRAINT NAME <definition> of Constraint object K of table T. */
static void constraint_def(Planner *pl, const json_t *k, const char *name, const SnapTable *t)
{
	const char *type = mj_str(k, "type", "");
	json_t *cols = json_object_get(k, "columns");
	sqlbuf_add(&pl->b, "CONSTRAINT ");
	sqlbuf_ident(&pl->b, name);
	if (strcmp(type, "check") == 0) {
		sqlbuf_printf(&pl->b, " CHECK (%s)", mj_str(k, "check", ""));
		if (mj_bool(k, "no_inherit", false))
			sqlbuf_add(&pl->b, " NO INHERIT");
		return;
	}
	if (strcmp(type, "unique") == 0 || strcmp(type, "primary_key") == 0) {
		sqlbuf_add(&pl->b, type[0] == 'u' ? " UNIQUE" : " PRIMARY KEY");
		if (type[0] == 'u' && mj_bool(k, "nulls_not_distinct", false))
			sqlbuf_add(&pl->b, " NULLS NOT DISTINCT");
		sqlbuf_add(&pl->b, " (");
		pl_ident_list(pl, cols, t);
		sqlbuf_add(&pl->b, ")");
		pl_index_params(pl, json_object_get(k, "index_parameters"), t);
	} else if (strcmp(type, "foreign_key") == 0) {
		const json_t *ref = json_object_get(k, "references");
		sqlbuf_add(&pl->b, " FOREIGN KEY (");
		pl_ident_list(pl, cols, t);
		sqlbuf_add(&pl->b, ") REFERENCES ");
		sqlbuf_qname(&pl->b, pl->schema, pl_ref_table(pl, mj_str(ref, "table", "")));
		sqlbuf_add(&pl->b, " (");
		pl_ident_list(pl, json_object_get(ref, "columns"), snapshot_vtable(pl->s, mj_str(ref, "table", "")));
		sqlbuf_add(&pl->b, ")");
		pl_fk_tail(pl, ref);
	} else if (strcmp(type, "exclude") == 0) {
		const json_t *ex = json_object_get(k, "exclude");
		const char *m = mj_str(ex, "index_method", "");
		sqlbuf_printf(&pl->b, " EXCLUDE USING %s (%s)", m[0] ? m : "gist", mj_str(ex, "elements", ""));
		pl_index_params(pl, json_object_get(k, "index_parameters"), t);
		const char *pred = mj_str(ex, "predicate", "");
		if (pred[0])
			sqlbuf_printf(&pl->b, " WHERE (%s)", pred);
	}
	if (mj_bool(k, "deferrable", false))
		sqlbuf_add(&pl->b, " DEFERRABLE");
	if (mj_bool(k, "initially_deferred", false))
		sqlbuf_add(&pl->b, " INITIALLY DEFERRED");
}

/* Checks the cross-field rules of a Constraint object (schema.json allOf). */
static bool constraint_check(Planner *pl, const json_t *k, size_t i)
{
	const char *type = mj_str(k, "type", "");
	const char *name = mj_str(k, "name", "");
	bool has_cols = json_array_size(json_object_get(k, "columns")) > 0;
	if ((strcmp(type, "unique") == 0 || strcmp(type, "primary_key") == 0 || strcmp(type, "foreign_key") == 0) &&
	    !has_cols)
		return pl_fail(pl, "constraints[%zu] (%s): a %s constraint needs columns", i, name, type);
	if (strcmp(type, "foreign_key") == 0 && !json_object_get(k, "references"))
		return pl_fail(pl, "constraints[%zu] (%s): a foreign_key constraint needs references", i, name);
	if (strcmp(type, "check") == 0 && !mj_str(k, "check", "")[0])
		return pl_fail(pl, "constraints[%zu] (%s): a check constraint needs check", i, name);
	if (strcmp(type, "exclude") == 0 && !json_object_get(k, "exclude"))
		return pl_fail(pl, "constraints[%zu] (%s): an exclude constraint needs exclude", i, name);
	return true;
}

/* True when a column of TYPE (a Column object COL) gets a sequence named
 * after its table: serial types and identity columns. */
static bool column_has_sequence(const json_t *col)
{
	static const char *const serials[] = {"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"};
	const char *type = mj_str(col, "type", "");
	for (size_t i = 0; i < sizeof serials / sizeof serials[0]; i++)
		if (strcasecmp(type, serials[i]) == 0)
			return true;
	return json_object_get(json_object_get(col, "generated"), "identity") != NULL;
}

/*
 * The name during start of index NAME (create_index's, or a unique, primary
 * key or exclusion constraint's) on table T: NAME, or, on a table this
 * migration creates when a table the new version drops has an index NAME
 * until complete, _pgflip_new_NAME, which takes NAME at complete (RENAME: a
 * step of pl_name_later renames it; else the caller's ADD CONSTRAINT ...
 * USING INDEX does, after the drop). Caller frees; NULL (planner failed)
 * when out of memory or when another index has NAME for good.
 */
static char *index_name_at_start(Planner *pl, const SnapTable *t, const char *name, bool rename)
{
	const SnapTable *owner = index_owner(pl->s, name);
	if (!owner)
		return strdup(name);
	if (owner == t || t->oname || owner->vname) {
		if (owner != t && !t->oname && owner->vname)
			pl_fail(pl, "index \"%s\" already exists on table \"%s\", which keeps it after complete", name,
				owner->vname);
		else
			pl_fail(pl, "index \"%s\" already exists", name);
		return NULL;
	}
	char *phys = free_tmp_name(pl->s, TAKEN_RELATION, name);
	if (!phys) {
		pl_fail(pl, "out of memory, or no free name for index \"%s\"", name);
		return NULL;
	}
	if (rename && !pl_name_later(pl, t, phys, NULL, name, NULL, true)) {
		free(phys);
		return NULL;
	}
	return phys;
}

/*
 * The table create_table NAME makes: NAME, or, when the old version still has
 * a table NAME until complete (an earlier operation dropped or renamed it),
 * _pgflip_new_NAME (see plan_names.c), which the new version calls NAME and
 * which takes the name at complete, after the old one is dropped or renamed.
 * NULL (planner failed) when the new version has NAME already.
 */
static SnapTable *create_table_target(Planner *pl, const char *name)
{
	if (snapshot_vtable(pl->s, name)) {
		pl_fail(pl, "table \"%s\" already exists", name);
		return NULL;
	}
	char *phys = snapshot_table(pl->s, name) ? free_tmp_name(pl->s, TAKEN_RELATION, name) : strdup(name);
	SnapTable *t = phys ? snapshot_add_table(pl->s, phys) : NULL;
	free(phys);
	if (!t || !snap_set(&t->oname, NULL) || !snap_set(&t->vname, name)) {
		pl_fail(pl, "out of memory");
		return NULL;
	}
	return t;
}

/* True when T, which create_table makes, has a temporary physical name. */
static bool table_renamed_later(const SnapTable *t)
{
	return strcmp(t->name, t->vname) != 0;
}

/* An implicit index (label "pkey" or "key", column NAME2 or NULL) of table T
 * that create_table makes: named as PostgreSQL names it after T's physical
 * name, into OUT (64 bytes); when that name is temporary, written out in the
 * CREATE TABLE (" CONSTRAINT name") and renamed at complete. */
static void implicit_index(Planner *pl, const SnapTable *t, const char *name2, const char *label, char *out)
{
	pl_object_name(out, t->name, name2, label);
	if (!table_renamed_later(t))
		return;
	sqlbuf_add(&pl->b, " CONSTRAINT ");
	sqlbuf_ident(&pl->b, out);
	pl_name_later(pl, t, out, name2, NULL, label, true);
}

/* One Column object COL of create_table into table T; a primary key column
 * is added to PKS. */
static void create_table_column(Planner *pl, SnapTable *t, const json_t *col, const char **pks, size_t *npk)
{
	const char *cn = mj_str(col, "name", "");
	if (snapshot_column(t, cn)) {
		pl_fail(pl, "column \"%s\" appears twice", cn);
		return;
	}
	bool pk = mj_bool(col, "pk", false);
	bool nn = pk || !mj_bool(col, "nullable", false);
	sqlbuf_ident(&pl->b, cn);
	sqlbuf_add(&pl->b, " ");
	pl_column_type(pl, col);
	if (nn && !pk)
		sqlbuf_add(&pl->b, " NOT NULL");
	SnapColumn *sc = snapshot_add_column(t, cn, mj_str(col, "type", ""), nn, mj_str(col, "default", NULL));
	if (!sc || !snap_set(&sc->oname, NULL) || !snap_set(&sc->comment, mj_str(col, "comment", NULL))) {
		pl_fail(pl, "out of memory");
		return;
	}
	if (pk && *npk < SNAP_MAX_COLUMNS)
		pks[(*npk)++] = sc->name;
	if (table_renamed_later(t) && column_has_sequence(col)) {
		char seq[64];
		pl_object_name(seq, t->name, cn, "seq");
		pl_name_later(pl, t, seq, cn, NULL, "seq", false);
	}
	if (mj_bool(col, "unique", false)) {
		char kn[64];
		implicit_index(pl, t, cn, "key", kn);
		sqlbuf_add(&pl->b, " UNIQUE");
		const char *kc[1] = {cn};
		snapshot_add_constraint(t, kn, 'u', kc, 1, NULL);
		snapshot_add_index(t, kn, true, true);
	}
	json_t *chk = json_object_get(col, "check");
	if (chk) {
		sqlbuf_add(&pl->b, " CONSTRAINT ");
		sqlbuf_ident(&pl->b, mj_str(chk, "name", ""));
		sqlbuf_printf(&pl->b, " CHECK (%s)", mj_str(chk, "constraint", ""));
		if (mj_bool(chk, "no_inherit", false))
			sqlbuf_add(&pl->b, " NO INHERIT");
	}
	json_t *ref = json_object_get(col, "references");
	if (ref) {
		const char *rt = mj_str(ref, "table", "");
		SnapTable *rtab = snapshot_vtable(pl->s, rt);
		SnapColumn *rc = rtab ? snapshot_vcolumn(rtab, mj_str(ref, "column", "")) : NULL;
		sqlbuf_add(&pl->b, " CONSTRAINT ");
		sqlbuf_ident(&pl->b, mj_str(ref, "name", ""));
		sqlbuf_add(&pl->b, " REFERENCES ");
		sqlbuf_qname(&pl->b, pl->schema, pl_ref_table(pl, rt));
		sqlbuf_add(&pl->b, " (");
		sqlbuf_ident(&pl->b, rc ? rc->name : mj_str(ref, "column", ""));
		sqlbuf_add(&pl->b, ")");
		pl_fk_tail(pl, ref);
		const char *kc[1] = {cn};
		snapshot_add_constraint(t, mj_str(ref, "name", ""), 'f', kc, 1, NULL);
	}
}

/* The "constraints" of create_table into table T. */
static void create_table_constraints(Planner *pl, SnapTable *t, const json_t *cons)
{
	size_t i;
	json_t *k;
	json_array_foreach(cons, i, k) {
		if (!constraint_check(pl, k, i))
			return;
		const char *type = mj_str(k, "type", "");
		bool index = strcmp(type, "unique") == 0 || strcmp(type, "primary_key") == 0 || strcmp(type, "exclude") == 0;
		char *kname = index ? index_name_at_start(pl, t, mj_str(k, "name", ""), true) : strdup(mj_str(k, "name", ""));
		if (!kname)
			return (void)pl_fail(pl, "out of memory");
		sqlbuf_add(&pl->b, ",\n  ");
		constraint_def(pl, k, kname, t);
		json_t *kcols = json_object_get(k, "columns");
		const char *kc[SNAP_MAX_COLUMNS];
		size_t nk = 0;
		for (size_t x = 0; x < json_array_size(kcols) && nk < SNAP_MAX_COLUMNS; x++)
			kc[nk++] = json_string_value(json_array_get(kcols, x));
		char ct = strcmp(type, "primary_key") == 0 ? 'p' : strcmp(type, "foreign_key") == 0 ? 'f' : strcmp(type, "exclude") == 0 ? 'x' : type[0];
		snapshot_add_constraint(t, kname, ct, kc, nk, NULL);
		if (index)
			snapshot_add_index(t, kname, ct != 'x', true);
		free(kname);
	}
}

static void op_create_table(Planner *pl, const json_t *op)
{
	SnapTable *t = create_table_target(pl, mj_str(op, "name", ""));
	if (!t)
		return;
	json_t *cols = json_object_get(op, "columns"), *cons = json_object_get(op, "constraints");
	sqlbuf_add(&pl->b, "CREATE TABLE ");
	pl_table(pl, t);
	sqlbuf_add(&pl->b, " (");
	size_t i, npk = 0;
	json_t *col;
	const char *pks[SNAP_MAX_COLUMNS];
	json_array_foreach(cols, i, col) {
		sqlbuf_add(&pl->b, i ? ",\n  " : "\n  ");
		create_table_column(pl, t, col, pks, &npk);
		if (pl->failed)
			return;
	}
	if (npk) {
		char kn[64];
		sqlbuf_add(&pl->b, ",\n ");
		implicit_index(pl, t, NULL, "pkey", kn);
		sqlbuf_add(&pl->b, " PRIMARY KEY (");
		for (size_t k = 0; k < npk; k++) {
			sqlbuf_add(&pl->b, k ? ", " : "");
			sqlbuf_ident(&pl->b, pks[k]);
		}
		sqlbuf_add(&pl->b, ")");
		snapshot_add_constraint(t, kn, 'p', pks, npk, NULL);
		snapshot_add_index(t, kn, true, true);
	}
	create_table_constraints(pl, t, cons);
	sqlbuf_add(&pl->b, "\n)");
	pl_emit(pl, &pl->p->start, STEP_SQL, "create table");
	const char *tc = mj_str(op, "comment", NULL);
	if (tc) {
		sqlbuf_add(&pl->b, "COMMENT ON TABLE ");
		pl_table(pl, t);
		sqlbuf_add(&pl->b, " IS ");
		sqlbuf_literal(&pl->b, tc);
		pl_emit(pl, &pl->p->start, STEP_SQL, "table comment");
	}
	json_array_foreach(cols, i, col) {
		const char *cc = mj_str(col, "comment", NULL);
		if (cc)
			comment_column(pl, &pl->p->start, t, mj_str(col, "name", ""), cc);
	}
}

/* ---- columns ---- */

/* Adds the constraints of a Column object (add_column) or of alter_column's
 * fields to new physical column NC. */
static void column_constraints(Planner *pl, SnapTable *t, SnapColumn *nc, const json_t *check, const char *unique_name,
			       const json_t *ref, bool pk)
{
	const char *cols[1] = {nc->name};
	if (check)
		add_check(pl, t, mj_str(check, "name", ""), mj_str(check, "constraint", ""),
			  mj_bool(check, "no_inherit", false), false, NULL);
	if (unique_name) {
		add_unique(pl, t, unique_name, cols, 1, NULL, false, unique_name);
	}
	if (pk) {
		char kn[128];
		snprintf(kn, sizeof kn, "%s_pkey", t->vname);
		add_unique(pl, t, kn, cols, 1, NULL, true, kn);
	}
	if (ref)
		add_fk(pl, t, mj_str(ref, "name", ""), cols, 1, ref, mj_bool(ref, "deferrable", false),
		       mj_bool(ref, "initially_deferred", false));
}

static void op_add_column(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "table", ""));
	if (!t)
		return;
	const json_t *col = json_object_get(op, "column");
	const char *name = mj_str(col, "name", "");
	if (snapshot_vcolumn(t, name)) {
		pl_fail(pl, "column \"%s\" of table \"%s\" already exists", name, t->vname);
		return;
	}
	bool pk = mj_bool(col, "pk", false);
	bool nn = pk || !mj_bool(col, "nullable", false);
	const char *up = mj_str(op, "up", "");
	const char *def = mj_str(col, "default", NULL);
	bool generated = json_object_get(col, "generated") != NULL;
	if (nn && !def && !up[0] && !generated && t->oname)
		return (void)pl_fail(pl, "column \"%s\" is NOT NULL without a default: existing rows need up", name);
	if (pk) {
		for (size_t i = 0; i < t->ncons; i++)
			if (t->cons[i]->type == 'p')
				return (void)pl_fail(pl, "table \"%s\" already has a primary key", t->vname);
	}
	SnapColumn *nc = new_column(pl, t, name, col, NULL, NULL);
	if (!nc)
		return;
	if (nn)
		direct_not_null(pl, t, nc);
	char kn[128];
	snprintf(kn, sizeof kn, "%s_%s_key", t->vname, name);
	column_constraints(pl, t, nc, json_object_get(col, "check"), mj_bool(col, "unique", false) ? kn : NULL,
			   json_object_get(col, "references"), pk);
	const char *comment = mj_str(col, "comment", NULL);
	if (comment)
		comment_column(pl, &pl->c_pre, t, nc->name, comment);
	if (up[0]) {
		pl_rule(pl, t, nc->name, up, true);
		pl_want_backfill(pl, t);
	}
}

static void op_drop_column(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "table", ""));
	SnapColumn *c = t ? need_column(pl, t, mj_str(op, "column", "")) : NULL;
	if (!c)
		return;
	snap_set(&c->vname, NULL);
	const char *down = mj_str(op, "down", "");
	if (down[0] && c->oname)
		pl_rule(pl, t, c->name, down, false);
}

static void op_rename_column(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "table", ""));
	SnapColumn *c = t ? need_column(pl, t, mj_str(op, "from", "")) : NULL;
	if (!c)
		return;
	const char *to = mj_str(op, "to", "");
	if (snapshot_vcolumn(t, to))
		return (void)pl_fail(pl, "column \"%s\" of table \"%s\" already exists", to, t->vname);
	if (!snap_set(&c->vname, to))
		pl_fail(pl, "out of memory");
}

/* ALTER TABLE T ALTER COLUMN C <WHAT><SQL>, at start (SQL: a type or a
 * default as the migration wrote it, or NULL). */
static void alter_column_now(Planner *pl, const SnapTable *t, const SnapColumn *c, const char *what, const char *sql,
			     const char *note)
{
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "ALTER COLUMN ");
	sqlbuf_ident(&pl->b, c->name);
	sqlbuf_printf(&pl->b, " %s%s", what, sql ? sql : "");
	pl_emit(pl, &pl->p->start, STEP_SQL, note);
}

/*
 * alter_column of column C, new in this migration (a column of a table it
 * creates, or one an add_column adds): only the new version sees C, so it
 * changes C itself, at start, instead of a copy. In a table this migration
 * creates (empty at start) every field applies at once and up/down have no
 * old version to serve. A column added to an existing table already holds
 * rows: its type and nullable: true belong in the add_column; an up fills
 * it (backfill) unless an up does so already.
 */
static void alter_new_column(Planner *pl, SnapTable *t, SnapColumn *c, const json_t *op)
{
	json_t *jdef = json_object_get(op, "default"), *jcomment = json_object_get(op, "comment");
	json_t *jnull = json_object_get(op, "nullable");
	const char *type = mj_str(op, "type", NULL), *up = mj_str(op, "up", "");
	bool existing = t->oname != NULL, retype = type && strcmp(type, c->type) != 0;
	if (existing && (retype || json_is_true(jnull)))
		return (void)pl_fail(pl, "column \"%s\" is added by this migration: give its %s in the add_column",
				     c->vname, retype ? "type" : "nullable");
	if (existing && up[0])
		for (size_t r = 0; r < pl->nrules; r++)
			if (pl->rules[r].table == t && pl->rules[r].up && strcmp(pl->rules[r].target, c->name) == 0)
				return (void)pl_fail(pl, "column \"%s\" is added by this migration with an up already: "
							 "put this up in the add_column", c->vname);
	if (retype) {
		alter_column_now(pl, t, c, "TYPE ", type, "change the type of a column of a new table");
		snap_set(&c->type, type);
	}
	if (json_is_true(jnull) && c->notnull) {
		alter_column_now(pl, t, c, "DROP NOT NULL", NULL, "drop NOT NULL of a column of a new table");
		c->notnull = false;
	} else if (json_is_false(jnull)) {
		direct_not_null(pl, t, c);
	}
	if (jdef) {
		const char *d = json_string_value(jdef);
		alter_column_now(pl, t, c, d ? "SET DEFAULT " : "DROP DEFAULT", d, "column default of a new column");
		snap_set(&c->def, d);
	}
	if (jcomment)
		comment_column(pl, &pl->p->start, t, c->name, json_string_value(jcomment));
	json_t *unique = json_object_get(op, "unique");
	column_constraints(pl, t, c, json_object_get(op, "check"), unique ? mj_str(unique, "name", "") : NULL,
			   json_object_get(op, "references"), false);
	if (existing && up[0]) {
		pl_rule(pl, t, c->name, up, true);
		pl_want_backfill(pl, t);
	}
}

static void op_alter_column(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "table", ""));
	SnapColumn *c = t ? need_column(pl, t, mj_str(op, "column", "")) : NULL;
	if (!c)
		return;
	json_t *jdef = json_object_get(op, "default"), *jcomment = json_object_get(op, "comment");
	json_t *jnull = json_object_get(op, "nullable"), *check = json_object_get(op, "check");
	json_t *unique = json_object_get(op, "unique"), *ref = json_object_get(op, "references");
	const char *type = mj_str(op, "type", NULL);
	if (!jdef && !jcomment && !jnull && !check && !unique && !ref && !type)
		return (void)pl_fail(pl, "nothing to change: give at least one of type, nullable, default, comment, check, unique, references");
	bool dup = type || jnull || check || unique || ref;
	if (!dup) {
		if (jdef) {
			const char *d = json_is_string(jdef) ? json_string_value(jdef) : NULL;
			c->vdef_set = true;
			snap_set(&c->vdef, d);
			alter_prefix(pl, t);
			sqlbuf_add(&pl->b, "ALTER COLUMN ");
			sqlbuf_ident(&pl->b, c->name);
			if (d)
				sqlbuf_printf(&pl->b, " SET DEFAULT %s", d);
			else
				sqlbuf_add(&pl->b, " DROP DEFAULT");
			pl_emit(pl, &pl->c_pre, STEP_SQL, "column default");
		}
		if (jcomment)
			comment_column(pl, &pl->c_pre, t, c->name, json_string_value(jcomment));
		return;
	}
	if (!c->oname)
		return alter_new_column(pl, t, c, op);
	Mode dm = !jdef ? KEEP : json_is_string(jdef) ? SET : DROP;
	Mode nm = !jnull ? KEEP : json_is_true(jnull) ? DROP : SET;
	char *oldphys = strdup(c->name);
	SnapColumn *nc = oldphys ? dup_column(pl, t, c, type, dm, json_string_value(jdef), nm, NULL) : NULL;
	if (!nc) {
		free(oldphys);
		return;
	}
	column_constraints(pl, t, nc, check, unique ? mj_str(unique, "name", "") : NULL, ref, false);
	if (jcomment)
		comment_column(pl, &pl->c_pre, t, nc->name, json_string_value(jcomment));
	pl_rule(pl, t, nc->name, mj_str(op, "up", ""), true);
	pl_rule(pl, t, oldphys, mj_str(op, "down", ""), false);
	pl_want_backfill(pl, t);
	free(oldphys);
}

/* ---- indexes ---- */

/* CREATE INDEX NAME of create_index OP on T, its cleanup and rollback. */
static void create_index_sql(Planner *pl, SnapTable *t, const json_t *op, const char *name)
{
	json_t *fields = json_object_get(op, "columns");
	sqlbuf_add(&pl->b, mj_bool(op, "unique", false) ? "CREATE UNIQUE INDEX CONCURRENTLY " : "CREATE INDEX CONCURRENTLY ");
	sqlbuf_ident(&pl->b, name);
	sqlbuf_add(&pl->b, " ON ");
	pl_table(pl, t);
	const char *method = mj_str(op, "method", "btree");
	if (strcmp(method, "btree") != 0)
		sqlbuf_printf(&pl->b, " USING %s", method);
	sqlbuf_add(&pl->b, " (");
	size_t i;
	json_t *f;
	const char *cols[SNAP_MAX_COLUMNS];
	json_array_foreach(fields, i, f) {
		SnapColumn *c = need_column(pl, t, mj_str(f, "column", ""));
		if (!c || i >= SNAP_MAX_COLUMNS)
			return;
		cols[i] = c->name;
		sqlbuf_add(&pl->b, i ? ", " : "");
		sqlbuf_ident(&pl->b, c->name);
		const char *coll = mj_str(f, "collate", "");
		if (coll[0]) {
			sqlbuf_add(&pl->b, " COLLATE ");
			sqlbuf_ident(&pl->b, coll);
		}
		json_t *oc = json_object_get(f, "opclass");
		const char *ocn = oc ? mj_str(oc, "name", "") : "";
		if (ocn[0]) {
			sqlbuf_printf(&pl->b, " %s", ocn);
			json_t *params = json_object_get(oc, "params");
			if (json_array_size(params) > 0) {
				sqlbuf_add(&pl->b, " (");
				for (size_t p = 0; p < json_array_size(params); p++)
					sqlbuf_printf(&pl->b, "%s%s", p ? ", " : "", json_string_value(json_array_get(params, p)));
				sqlbuf_add(&pl->b, ")");
			}
		}
		const char *sort = mj_str(f, "sort", "");
		if (sort[0])
			sqlbuf_printf(&pl->b, " %s", sort);
		const char *nulls = mj_str(f, "nulls", "");
		if (nulls[0])
			sqlbuf_printf(&pl->b, " NULLS %s", nulls);
	}
	sqlbuf_add(&pl->b, ")");
	const char *sp = mj_str(op, "storage_parameters", "");
	if (sp[0])
		sqlbuf_printf(&pl->b, " WITH (%s)", sp);
	const char *pred = mj_str(op, "predicate", "");
	if (pred[0]) {
		sqlbuf_add(&pl->b, " WHERE ");
		pl_expr_phys(pl, t, pred);
	}
	index_built(pl, pl_emit(pl, &pl->p->start, STEP_OUTSIDE_TX, "create index"), name);
	SnapIndex *x = snapshot_add_index(t, name, mj_bool(op, "unique", false), false);
	if (x)
		snapshot_index_define(x, NULL, cols, json_array_size(fields));
}

static void op_create_index(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "table", ""));
	if (!t)
		return;
	json_t *fields = json_object_get(op, "columns");
	if (json_array_size(fields) == 0)
		return (void)pl_fail(pl, "an index needs at least one column");
	char *name = index_name_at_start(pl, t, mj_str(op, "name", ""), true);
	if (!name)
		return;
	create_index_sql(pl, t, op, name);
	free(name);
}

static void op_drop_index(Planner *pl, const json_t *op)
{
	const char *name = mj_str(op, "name", "");
	SnapIndex *x = NULL;
	SnapTable *t = snapshot_index_table(pl->s, name, &x);
	if (!t)
		return (void)pl_fail(pl, "index \"%s\" does not exist", name);
	if (x->constraint)
		return (void)pl_fail(pl, "index \"%s\" belongs to a constraint; use drop_constraint", name);
	sqlbuf_add(&pl->b, "DROP INDEX CONCURRENTLY IF EXISTS ");
	sqlbuf_qname(&pl->b, pl->schema, name);
	pl_emit(pl, &pl->c_outside, STEP_OUTSIDE_TX, "drop index");
	snapshot_remove_index(t, name);
}

/* ---- tables ---- */

static void op_rename_table(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "from", ""));
	if (!t)
		return;
	const char *to = mj_str(op, "to", "");
	SnapTable *other = snapshot_table(pl->s, to);
	if (snapshot_vtable(pl->s, to) || (other && other != t))
		return (void)pl_fail(pl, "table \"%s\" already exists", to);
	if (!snap_set(&t->vname, to))
		pl_fail(pl, "out of memory");
}

static void op_drop_table(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "name", ""));
	if (t)
		snap_set(&t->vname, NULL);
}

/* ---- constraints ---- */

/* Looks up COL in the string map MAP (up/down of multi-column operations);
 * absent means the column is copied unchanged. */
static const char *map_expr(const json_t *map, const char *col)
{
	const char *e = mj_str(map, col, NULL);
	return e && e[0] ? e : col;
}

/* Columns of a constraint operation once its columns are copied (or, when
 * new in this migration, taken as they are), with the sync rules of each
 * copy: OLD[i] -> PHYS[i]; NAMES[i] the operation's name of column i. */
typedef struct ConstraintCols {
	size_t n;
	char *phys[SNAP_MAX_COLUMNS];
	char *old[SNAP_MAX_COLUMNS]; /* NULL: not copied */
	const char *names[SNAP_MAX_COLUMNS];
} ConstraintCols;

static void constraint_cols_free(ConstraintCols *cc)
{
	for (size_t i = 0; i < cc->n; i++) {
		free(cc->phys[i]);
		free(cc->old[i]);
	}
	cc->n = 0;
}

/* Adds the rules of CC's copies: up over the names before the operation,
 * down over the names it leaves (all columns copied by then). UP_MAP/DOWN_MAP
 * are the operation's column -> expression maps (absent: the column as is);
 * with ONE_UP/ONE_DOWN (drop_constraint) the single expression. */
static void constraint_rules(Planner *pl, SnapTable *t, const ConstraintCols *cc, const json_t *up_map,
			     const json_t *down_map, const char *one_up, const char *one_down)
{
	for (size_t i = 0; i < cc->n && !pl->failed; i++) {
		if (!cc->old[i])
			continue;
		pl_rule(pl, t, cc->phys[i], one_up ? one_up : map_expr(up_map, cc->names[i]), true);
		pl_rule(pl, t, cc->old[i], one_down ? one_down : map_expr(down_map, cc->names[i]), false);
	}
}

/* Copies column NAME of T for a constraint operation into CC (a column new
 * in this migration is taken as it is: nothing else sees it). PK: the
 * column becomes NOT NULL. EXCLUDE: the constraint not to copy. */
static bool constraint_col(Planner *pl, SnapTable *t, const char *name, bool pk, const char *exclude,
			   ConstraintCols *cc)
{
	SnapColumn *c = need_column(pl, t, name);
	if (!c || cc->n >= SNAP_MAX_COLUMNS)
		return false;
	size_t i = cc->n;
	cc->names[i] = name;
	cc->old[i] = NULL;
	if (!c->oname) {
		if (pk)
			direct_not_null(pl, t, c);
		cc->phys[i] = strdup(c->name);
	} else {
		char *oldphys = strdup(c->name);
		SnapColumn *nc = oldphys ? dup_column(pl, t, c, NULL, KEEP, NULL, pk ? SET : KEEP, exclude) : NULL;
		cc->phys[i] = nc ? strdup(nc->name) : NULL;
		cc->old[i] = oldphys;
	}
	cc->n++;
	if (!cc->phys[i])
		return pl_fail(pl, "out of memory");
	return !pl->failed;
}

static void op_create_constraint(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "table", ""));
	if (!t)
		return;
	const char *name = mj_str(op, "name", ""), *type = mj_str(op, "type", "");
	if (snapshot_constraint(t, name))
		return (void)pl_fail(pl, "constraint \"%s\" already exists on table \"%s\"", name, t->vname);
	json_t *cols = json_object_get(op, "columns"), *ref = json_object_get(op, "references");
	size_t n = json_array_size(cols);
	if (strcmp(type, "check") != 0 && n == 0)
		return (void)pl_fail(pl, "a %s constraint needs columns", type);
	if (strcmp(type, "check") == 0 && !mj_str(op, "check", "")[0])
		return (void)pl_fail(pl, "a check constraint needs check");
	if (strcmp(type, "foreign_key") == 0 && !ref)
		return (void)pl_fail(pl, "a foreign_key constraint needs references");
	if (n > SNAP_MAX_COLUMNS)
		return (void)pl_fail(pl, "too many columns");
	bool pk = strcmp(type, "primary_key") == 0;
	if (pk)
		for (size_t i = 0; i < t->ncons; i++)
			if (t->cons[i]->type == 'p')
				return (void)pl_fail(pl, "table \"%s\" already has a primary key (\"%s\")", t->vname,
						     t->cons[i]->name);
	ConstraintCols *cc = calloc(1, sizeof *cc);
	if (!cc)
		return (void)pl_fail(pl, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (!constraint_col(pl, t, json_string_value(json_array_get(cols, i)), pk, NULL, cc))
			break;
	constraint_rules(pl, t, cc, json_object_get(op, "up"), json_object_get(op, "down"), NULL, NULL);
	if (!pl->failed) {
		const json_t *ip = json_object_get(op, "index_parameters");
		if (strcmp(type, "unique") == 0 || pk) {
			char *index = index_name_at_start(pl, t, name, false);
			if (index)
				add_unique(pl, t, index, (const char *const *)cc->phys, cc->n, ip, pk, name);
			free(index);
		}
		else if (strcmp(type, "foreign_key") == 0)
			add_fk(pl, t, name, (const char *const *)cc->phys, cc->n, ref, false, false);
		else
			add_check(pl, t, name, mj_str(op, "check", ""), mj_bool(op, "no_inherit", false), false, NULL);
		bool copied = false;
		for (size_t i = 0; i < cc->n; i++)
			copied = copied || cc->old[i];
		if (copied)
			pl_want_backfill(pl, t);
	}
	constraint_cols_free(cc);
	free(cc);
}

static void op_drop_constraint(Planner *pl, const json_t *op, bool multi)
{
	SnapTable *t = need_table(pl, mj_str(op, "table", ""));
	if (!t)
		return;
	const char *name = mj_str(op, "name", "");
	SnapConstraint *k = snapshot_constraint(t, name);
	if (!k)
		return (void)pl_fail(pl, "constraint \"%s\" of table \"%s\" does not exist", name, t->vname);
	if (k->ncols == 0)
		return (void)pl_fail(pl, "constraint \"%s\" has no columns", name);
	if (!multi && k->ncols > 1)
		return (void)pl_fail(pl, "constraint \"%s\" spans %zu columns; use drop_multicolumn_constraint", name, k->ncols);
	size_t n = k->ncols;
	ConstraintCols *cc = calloc(1, sizeof *cc);
	char **vnames = calloc(n + 1, sizeof *vnames);
	char *kname = strdup(name);
	if (!cc || !vnames || !kname)
		pl_fail(pl, "out of memory");
	/* the new-version names of its columns, before any is copied; a column
	 * an earlier operation copied is its copy, which the constraint (over
	 * several columns: copied at the end, so not at all now) does not reach */
	for (size_t i = 0; i < n && !pl->failed; i++) {
		SnapColumn *c = snapshot_column(t, k->cols[i]);
		const char *copy = c && !c->vname ? pl_copy_of(pl, t, c->name) : NULL;
		if (copy)
			c = snapshot_column(t, copy);
		if (!c || !c->vname)
			pl_fail(pl, "column \"%s\" of constraint \"%s\" is not visible in the new version", k->cols[i], name);
		else if (copy && n == 1)
			pl_fail(pl, "constraint \"%s\" is on column \"%s\", which an earlier operation of this migration "
				    "changes (its copy keeps the constraint): drop the constraint first", name, c->vname);
		else if (!c->oname && !copy)
			pl_fail(pl, "constraint \"%s\" is on column \"%s\", new in this migration; change the operation that "
				    "added it instead", name, c->vname);
		else if (!(vnames[i] = strdup(c->vname)))
			pl_fail(pl, "out of memory");
	}
	for (size_t i = 0; i < n && !pl->failed; i++)
		if (!constraint_col(pl, t, vnames[i], false, kname, cc))
			break;
	if (multi)
		constraint_rules(pl, t, cc, json_object_get(op, "up"), json_object_get(op, "down"), NULL, NULL);
	else if (cc && cc->n == 1)
		constraint_rules(pl, t, cc, NULL, NULL, mj_str(op, "up", vnames[0]), mj_str(op, "down", vnames[0]));
	if (!pl->failed) {
		snapshot_remove_constraint(t, kname);
		pl_want_backfill(pl, t);
	}
	if (cc)
		constraint_cols_free(cc);
	free(cc);
	for (size_t i = 0; vnames && i < n; i++)
		free(vnames[i]);
	free(vnames);
	free(kname);
}

static void op_rename_constraint(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "table", ""));
	if (!t)
		return;
	const char *from = mj_str(op, "from", ""), *to = mj_str(op, "to", "");
	SnapConstraint *k = snapshot_constraint(t, from);
	if (!k)
		return (void)pl_fail(pl, "constraint \"%s\" of table \"%s\" does not exist", from, t->vname);
	if (snapshot_constraint(t, to))
		return (void)pl_fail(pl, "constraint \"%s\" already exists on table \"%s\"", to, t->vname);
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "RENAME CONSTRAINT ");
	sqlbuf_ident(&pl->b, from);
	sqlbuf_add(&pl->b, " TO ");
	sqlbuf_ident(&pl->b, to);
	pl_emit(pl, &pl->c_post, STEP_SQL, "rename constraint");
	snap_set(&k->name, to);
}

static void op_set_replica_identity(Planner *pl, const json_t *op)
{
	SnapTable *t = need_table(pl, mj_str(op, "table", ""));
	if (!t)
		return;
	const json_t *id = json_object_get(op, "identity");
	const char *type = mj_str(id, "type", ""), *index = mj_str(id, "index", "");
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "REPLICA IDENTITY ");
	if (strcasecmp(type, "index") == 0) {
		SnapIndex *x = NULL;
		if (snapshot_index_table(pl->s, index, &x) != t)
			return (void)pl_fail(pl, "index \"%s\" of table \"%s\" does not exist", index, t->vname);
		sqlbuf_add(&pl->b, "USING INDEX ");
		sqlbuf_ident(&pl->b, index);
	} else if (strcasecmp(type, "full") == 0 || strcasecmp(type, "default") == 0 || strcasecmp(type, "nothing") == 0) {
		for (const char *p = type; *p; p++) {
			char ch = (char)toupper((unsigned char)*p);
			sqlbuf_addn(&pl->b, &ch, 1);
		}
	} else {
		sqlbuf_reset(&pl->b);
		return (void)pl_fail(pl, "identity.type '%s' is not one of: full, default, nothing, index", type);
	}
	pl_emit(pl, &pl->p->start, STEP_SQL, "set replica identity");
	alter_prefix(pl, t);
	sqlbuf_add(&pl->b, "REPLICA IDENTITY ");
	sqlbuf_add(&pl->b, t->replident == 'f' ? "FULL" : t->replident == 'n' ? "NOTHING" : "DEFAULT");
	pl_emit(pl, &pl->rb_ops, STEP_SQL, "restore replica identity");
}

static void op_sql(Planner *pl, const json_t *op)
{
	const char *up = mj_str(op, "up", ""), *down = mj_str(op, "down", NULL);
	bool on_complete = mj_bool(op, "onComplete", false);
	if (json_object_get(op, "down") && json_object_get(op, "onComplete"))
		return (void)pl_fail(pl, "give either down or onComplete, not both");
	sqlbuf_add(&pl->b, up);
	pl_emit(pl, on_complete ? &pl->c_outside : &pl->p->start, STEP_OUTSIDE_TX, "raw SQL");
	if (!on_complete)
		pl->raw_sql_seen = true;
	if (down && down[0]) {
		sqlbuf_add(&pl->b, down);
		pl_emit(pl, &pl->rb_ops, STEP_OUTSIDE_TX, "raw SQL down");
	} else if (!on_complete && !pl->p->irreversible) {
		char why[128];
		snprintf(why, sizeof why, "operations[%zu].sql has no down", pl->opi);
		pl->p->irreversible = strdup(why);
	}
}

void plan_op(Planner *pl, const MigOp *op)
{
	switch (op->kind) {
	case MIGOP_CREATE_TABLE: op_create_table(pl, op->body); break;
	case MIGOP_ADD_COLUMN: op_add_column(pl, op->body); break;
	case MIGOP_DROP_COLUMN: op_drop_column(pl, op->body); break;
	case MIGOP_RENAME_COLUMN: op_rename_column(pl, op->body); break;
	case MIGOP_ALTER_COLUMN: op_alter_column(pl, op->body); break;
	case MIGOP_CREATE_INDEX: op_create_index(pl, op->body); break;
	case MIGOP_DROP_INDEX: op_drop_index(pl, op->body); break;
	case MIGOP_RENAME_TABLE: op_rename_table(pl, op->body); break;
	case MIGOP_DROP_TABLE: op_drop_table(pl, op->body); break;
	case MIGOP_CREATE_CONSTRAINT: op_create_constraint(pl, op->body); break;
	case MIGOP_DROP_CONSTRAINT: op_drop_constraint(pl, op->body, false); break;
	case MIGOP_DROP_MULTICOLUMN_CONSTRAINT: op_drop_constraint(pl, op->body, true); break;
	case MIGOP_RENAME_CONSTRAINT: op_rename_constraint(pl, op->body); break;
	case MIGOP_SET_REPLICA_IDENTITY: op_set_replica_identity(pl, op->body); break;
	case MIGOP_SQL: op_sql(pl, op->body); break;
	default: pl_fail(pl, "internal: unknown operation kind %d", (int)op->kind); break;
	}
}
