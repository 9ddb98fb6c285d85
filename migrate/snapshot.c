/*
 * migrate/snapshot.c: the in-memory schema facts shared by the planner and the
 * catalog reader (see snapshot.h). Arrays hold pointers so that an element's
 * address stays valid while its parent grows.
 */
#include "migrate/snapshot.h"

#include <stdlib.h>
#include <string.h>

bool snap_set(char **dst, const char *src)
{
	char *c = NULL;
	if (src && !(c = strdup(src)))
		return false;
	free(*dst);
	*dst = c;
	return true;
}

/* Appends P to *ARR (*N elements), bounded by MAX. */
static bool ptr_push(void *arr, size_t *n, size_t max, void *p)
{
	void ***a = arr;
	if (*n >= max)
		return false;
	/* grow in powers of two: capacity is implied by n */
	if ((*n & (*n - 1)) == 0) {
		size_t cap = *n ? *n * 2 : 4;
		void **v = realloc(*a, cap * sizeof *v);
		if (!v)
			return false;
		*a = v;
	}
	(*a)[(*n)++] = p;
	return true;
}

static void column_free(SnapColumn *c)
{
	if (!c)
		return;
	free(c->name);
	free(c->vname);
	free(c->oname);
	free(c->type);
	free(c->def);
	free(c->comment);
	free(c->vdef);
	free(c);
}

static void constraint_free(SnapConstraint *k)
{
	if (!k)
		return;
	free(k->name);
	for (size_t i = 0; i < k->ncols; i++)
		free(k->cols[i]);
	free(k->cols);
	free(k->def);
	free(k);
}

static void index_free(SnapIndex *x)
{
	if (!x)
		return;
	free(x->name);
	free(x->def);
	for (size_t i = 0; i < x->ncols; i++)
		free(x->cols[i]);
	free(x->cols);
	free(x);
}

static void strings_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void grant_free(SnapGrant *g)
{
	if (!g)
		return;
	free(g->grantee);
	free(g->privilege);
	strings_free(g->cols, g->ncols);
	free(g);
}

static void table_free(SnapTable *t)
{
	if (!t)
		return;
	free(t->name);
	free(t->vname);
	free(t->oname);
	for (size_t i = 0; i < t->ncols; i++)
		column_free(t->cols[i]);
	free(t->cols);
	for (size_t i = 0; i < t->ncons; i++)
		constraint_free(t->cons[i]);
	free(t->cons);
	for (size_t i = 0; i < t->nidx; i++)
		index_free(t->idx[i]);
	free(t->idx);
	for (size_t i = 0; i < t->ngrants; i++)
		grant_free(t->grants[i]);
	free(t->grants);
	free(t);
}

Snapshot *snapshot_new(const char *schema)
{
	Snapshot *s = calloc(1, sizeof *s);
	if (!s || !(s->schema = strdup(schema))) {
		free(s);
		return NULL;
	}
	return s;
}

void snapshot_free(Snapshot *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->ntables; i++)
		table_free(s->tables[i]);
	free(s->tables);
	strings_free(s->usage, s->nusage);
	free(s->schema);
	free(s);
}

SnapTable *snapshot_add_table(Snapshot *s, const char *name)
{
	SnapTable *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->replident = 'd';
	if (!snap_set(&t->name, name) || !snap_set(&t->vname, name) || !snap_set(&t->oname, name) ||
	    !ptr_push(&s->tables, &s->ntables, SNAP_MAX_TABLES, t)) {
		table_free(t);
		return NULL;
	}
	return t;
}

SnapColumn *snapshot_add_column(SnapTable *t, const char *name, const char *type, bool notnull, const char *def)
{
	SnapColumn *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->notnull = notnull;
	if (!snap_set(&c->name, name) || !snap_set(&c->vname, name) || !snap_set(&c->oname, name) ||
	    !snap_set(&c->type, type) || !snap_set(&c->def, def) ||
	    !ptr_push(&t->cols, &t->ncols, SNAP_MAX_COLUMNS, c)) {
		column_free(c);
		return NULL;
	}
	return c;
}

SnapConstraint *snapshot_add_constraint(SnapTable *t, const char *name, char type, const char *const *cols,
					size_t ncols, const char *def)
{
	SnapConstraint *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->type = type;
	k->cols = calloc(ncols ? ncols : 1, sizeof *k->cols);
	bool ok = k->cols && snap_set(&k->name, name) && snap_set(&k->def, def);
	for (size_t i = 0; ok && i < ncols; i++) {
		ok = snap_set(&k->cols[i], cols[i]);
		if (ok)
			k->ncols++;
	}
	if (!ok || !ptr_push(&t->cons, &t->ncons, SNAP_MAX_CONSTRAINTS, k)) {
		constraint_free(k);
		return NULL;
	}
	return k;
}

bool snapshot_add_grant(SnapTable *t, const char *grantee, const char *privilege, const char *const *cols,
			size_t ncols)
{
	SnapGrant *g = calloc(1, sizeof *g);
	if (!g)
		return false;
	g->cols = calloc(ncols ? ncols : 1, sizeof *g->cols);
	bool ok = g->cols && snap_set(&g->grantee, grantee) && snap_set(&g->privilege, privilege);
	for (size_t i = 0; ok && i < ncols; i++) {
		ok = snap_set(&g->cols[i], cols[i]);
		if (ok)
			g->ncols++;
	}
	if (!ok || !ptr_push(&t->grants, &t->ngrants, SNAP_MAX_CONSTRAINTS, g)) {
		grant_free(g);
		return false;
	}
	return true;
}

bool snapshot_add_usage(Snapshot *s, const char *grantee)
{
	char *g = NULL;
	if (!snap_set(&g, grantee) || !ptr_push(&s->usage, &s->nusage, SNAP_MAX_CONSTRAINTS, g)) {
		free(g);
		return false;
	}
	return true;
}

void snapshot_grants_column(SnapTable *t, const char *col, const char *to)
{
	for (size_t i = 0; i < t->ngrants;) {
		SnapGrant *g = t->grants[i];
		bool column_level = g->ncols > 0;
		for (size_t j = 0; j < g->ncols;) {
			if (strcmp(g->cols[j], col) != 0 || (to && snap_set(&g->cols[j], to))) {
				j++;
				continue;
			}
			/* dropped (or no memory for the new name: lose it, never widen the grant) */
			free(g->cols[j]);
			memmove(&g->cols[j], &g->cols[j + 1], (g->ncols - j - 1) * sizeof *g->cols);
			g->ncols--;
		}
		if (column_level && g->ncols == 0) {
			grant_free(g);
			memmove(&t->grants[i], &t->grants[i + 1], (t->ngrants - i - 1) * sizeof *t->grants);
			t->ngrants--;
			continue;
		}
		i++;
	}
}

SnapIndex *snapshot_add_index(SnapTable *t, const char *name, bool unique, bool constraint)
{
	SnapIndex *x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->unique = unique;
	x->constraint = constraint;
	if (!snap_set(&x->name, name) || !ptr_push(&t->idx, &t->nidx, SNAP_MAX_CONSTRAINTS, x)) {
		index_free(x);
		return NULL;
	}
	return x;
}

bool snapshot_index_define(SnapIndex *x, const char *def, const char *const *cols, size_t ncols)
{
	if (!snap_set(&x->def, def))
		return false;
	char **v = calloc(ncols ? ncols : 1, sizeof *v);
	if (!v)
		return false;
	for (size_t i = 0; i < ncols; i++)
		if (!(v[i] = strdup(cols[i] ? cols[i] : ""))) {
			while (i-- > 0)
				free(v[i]);
			free(v);
			return false;
		}
	for (size_t i = 0; i < x->ncols; i++)
		free(x->cols[i]);
	free(x->cols);
	x->cols = v;
	x->ncols = ncols;
	return true;
}

static bool eq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

SnapTable *snapshot_table(const Snapshot *s, const char *name)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (eq(s->tables[i]->name, name))
			return s->tables[i];
	return NULL;
}

SnapTable *snapshot_vtable(const Snapshot *s, const char *vname)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (eq(s->tables[i]->vname, vname))
			return s->tables[i];
	return NULL;
}

SnapTable *snapshot_otable(const Snapshot *s, const char *oname)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (eq(s->tables[i]->oname, oname))
			return s->tables[i];
	return NULL;
}

SnapColumn *snapshot_column(const SnapTable *t, const char *name)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (eq(t->cols[i]->name, name))
			return t->cols[i];
	return NULL;
}

SnapColumn *snapshot_vcolumn(const SnapTable *t, const char *vname)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (eq(t->cols[i]->vname, vname))
			return t->cols[i];
	return NULL;
}

SnapConstraint *snapshot_constraint(const SnapTable *t, const char *name)
{
	for (size_t i = 0; i < t->ncons; i++)
		if (eq(t->cons[i]->name, name))
			return t->cons[i];
	return NULL;
}

SnapTable *snapshot_index_table(const Snapshot *s, const char *name, SnapIndex **idx)
{
	for (size_t i = 0; i < s->ntables; i++)
		for (size_t j = 0; j < s->tables[i]->nidx; j++)
			if (eq(s->tables[i]->idx[j]->name, name)) {
				if (idx)
					*idx = s->tables[i]->idx[j];
				return s->tables[i];
			}
	return NULL;
}

void snapshot_remove_constraint(SnapTable *t, const char *name)
{
	for (size_t i = 0; i < t->ncons; i++)
		if (eq(t->cons[i]->name, name)) {
			constraint_free(t->cons[i]);
			memmove(&t->cons[i], &t->cons[i + 1], (t->ncons - i - 1) * sizeof *t->cons);
			t->ncons--;
			return;
		}
}

void snapshot_remove_index(SnapTable *t, const char *name)
{
	for (size_t i = 0; i < t->nidx; i++)
		if (eq(t->idx[i]->name, name)) {
			index_free(t->idx[i]);
			memmove(&t->idx[i], &t->idx[i + 1], (t->nidx - i - 1) * sizeof *t->idx);
			t->nidx--;
			return;
		}
}

void snapshot_remove_table(Snapshot *s, const SnapTable *t)
{
	for (size_t i = 0; i < s->ntables; i++)
		if (s->tables[i] == t) {
			table_free(s->tables[i]);
			memmove(&s->tables[i], &s->tables[i + 1], (s->ntables - i - 1) * sizeof *s->tables);
			s->ntables--;
			return;
		}
}

void snapshot_remove_column(SnapTable *t, const SnapColumn *c)
{
	for (size_t i = 0; i < t->ncols; i++)
		if (t->cols[i] == c) {
			column_free(t->cols[i]);
			memmove(&t->cols[i], &t->cols[i + 1], (t->ncols - i - 1) * sizeof *t->cols);
			t->ncols--;
			return;
		}
}

Snapshot *snapshot_copy(const Snapshot *s)
{
	Snapshot *d = snapshot_new(s->schema);
	if (!d)
		return NULL;
	for (size_t i = 0; i < s->ntables; i++) {
		const SnapTable *st = s->tables[i];
		SnapTable *t = snapshot_add_table(d, st->name);
		if (!t || !snap_set(&t->vname, st->vname) || !snap_set(&t->oname, st->oname))
			goto fail;
		t->replident = st->replident;
		for (size_t j = 0; j < st->ncols; j++) {
			const SnapColumn *sc = st->cols[j];
			SnapColumn *c = snapshot_add_column(t, sc->name, sc->type, sc->notnull, sc->def);
			if (!c || !snap_set(&c->vname, sc->vname) || !snap_set(&c->oname, sc->oname) ||
			    !snap_set(&c->comment, sc->comment) || !snap_set(&c->vdef, sc->vdef))
				goto fail;
			c->vdef_set = sc->vdef_set;
		}
		for (size_t j = 0; j < st->ncons; j++) {
			const SnapConstraint *k = st->cons[j];
			if (!snapshot_add_constraint(t, k->name, k->type, (const char *const *)k->cols, k->ncols, k->def))
				goto fail;
		}
		for (size_t j = 0; j < st->nidx; j++) {
			const SnapIndex *sx = st->idx[j];
			SnapIndex *x = snapshot_add_index(t, sx->name, sx->unique, sx->constraint);
			if (!x || (sx->def && !snapshot_index_define(x, sx->def, (const char *const *)sx->cols, sx->ncols)))
				goto fail;
		}
		for (size_t j = 0; j < st->ngrants; j++) {
			const SnapGrant *g = st->grants[j];
			if (!snapshot_add_grant(t, g->grantee, g->privilege, (const char *const *)g->cols, g->ncols))
				goto fail;
		}
	}
	for (size_t i = 0; i < s->nusage; i++)
		if (!snapshot_add_usage(d, s->usage[i]))
			goto fail;
	return d;
fail:
	snapshot_free(d);
	return NULL;
}
