/*
 * migrate/plan_names.c: final names of the objects of a table that this
 * migration creates under a temporary physical name (_pgflip_new_<name>),
 * because the old version still has a table of that name until complete
 * (pgroll's "drop table, create table" and "rename table, create table" in
 * one file).
 *
 * PostgreSQL names a table's implicit objects after the table when it
 * creates them (src/backend/commands/indexcmds.c, makeObjectName and
 * ChooseRelationName): the primary key <table>_pkey, a column's unique key
 * <table>_<column>_key, a serial or identity column's sequence
 * <table>_<column>_seq, taking <label>1, <label>2, ... when the name is
 * taken. Created under the temporary name, they carry it; at complete, once
 * the old table is dropped (or renamed) and the new one has its name, each
 * takes the name PostgreSQL would have given it creating the table under its
 * final name at that moment. Names the migration gave (an index-backed
 * constraint of create_table's "constraints") take exactly that name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/plan_int.h"

/* How many of ChooseRelationName's candidates a step tries. */
#define LATER_CANDIDATES 10

/* Length of the first LEN bytes of S cut back to a UTF-8 character boundary
 * (pg_mbcliplen for UTF-8). */
static size_t clip_utf8(const char *s, size_t len)
{
	while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
		len--;
	return len;
}

void pl_object_name(char *out, const char *name1, const char *name2, const char *label)
{
	size_t n1 = strlen(name1), n2 = name2 ? strlen(name2) : 0;
	size_t overhead = (label ? strlen(label) + 1 : 0) + (name2 ? 1 : 0);
	size_t avail = overhead < 63 ? 63 - overhead : 0;
	while (n1 + n2 > avail) {
		if (n1 > n2)
			n1--;
		else
			n2--;
	}
	n1 = clip_utf8(name1, n1);
	n2 = name2 ? clip_utf8(name2, n2) : 0;
	int w = snprintf(out, 64, "%.*s", (int)n1, name1);
	if (name2)
		w += snprintf(out + w, 64 - (size_t)w, "_%.*s", (int)n2, name2);
	if (label)
		snprintf(out + w, 64 - (size_t)w, "_%s", label);
}

bool pl_name_later(Planner *pl, const SnapTable *t, const char *phys, const char *name2, const char *fixed,
		   const char *label, bool index)
{
	LaterName *v = realloc(pl->later, (pl->nlater + 1) * sizeof *v);
	if (!v)
		return pl_fail(pl, "out of memory");
	pl->later = v;
	LaterName *ln = &v[pl->nlater];
	*ln = (LaterName){.table = t, .label = label, .index = index};
	ln->phys = strdup(phys);
	ln->name2 = name2 ? strdup(name2) : NULL;
	ln->fixed = fixed ? strdup(fixed) : NULL;
	pl->nlater++;
	if (!ln->phys || (name2 && !ln->name2) || (fixed && !ln->fixed))
		return pl_fail(pl, "out of memory");
	return true;
}

/* Appends 'SCHEMA.NAME' (both quoted inside) as a string literal. */
static void qname_literal(Planner *pl, const char *name)
{
	SqlBuf q;
	sqlbuf_init(&q);
	sqlbuf_qname(&q, pl->schema, name);
	char *text = sqlbuf_steal(&q);
	if (!text) {
		pl_fail(pl, "out of memory");
		return;
	}
	sqlbuf_literal(&pl->b, text);
	free(text);
}

/* ARRAY['c0', 'c1', ...]: FIXED alone, or ChooseRelationName's candidates
 * for table FINAL. */
static void candidates_sql(Planner *pl, const LaterName *ln, const char *final)
{
	sqlbuf_add(&pl->b, "ARRAY[");
	if (ln->fixed) {
		sqlbuf_literal(&pl->b, ln->fixed);
	} else {
		for (int pass = 0; pass < LATER_CANDIDATES; pass++) {
			char label[32], name[64];
			snprintf(label, sizeof label, pass ? "%s%d" : "%s", ln->label, pass);
			pl_object_name(name, final, ln->name2, label);
			sqlbuf_add(&pl->b, pass ? ", " : "");
			sqlbuf_literal(&pl->b, name);
		}
	}
	sqlbuf_add(&pl->b, "]::text[]");
}

/* The DO block that renames LN's object of table FINAL to its first free
 * candidate (a name the migration gave is checked against relations only:
 * PostgreSQL lets another table's check or foreign key share it). */
static void later_name_sql(Planner *pl, const LaterName *ln, const char *final)
{
	sqlbuf_add(&pl->b, "DO " PLAN_DOLLAR "\nDECLARE n text;\nBEGIN\n  IF to_regclass(");
	qname_literal(pl, ln->phys);
	sqlbuf_add(&pl->b, ") IS NULL THEN\n    RETURN;\n  END IF;\n  FOREACH n IN ARRAY ");
	candidates_sql(pl, ln, final);
	sqlbuf_add(&pl->b, " LOOP\n    IF to_regclass(format('%I.%I', ");
	sqlbuf_literal(&pl->b, pl->schema);
	sqlbuf_add(&pl->b, ", n)) IS NULL");
	if (ln->index && !ln->fixed) {
		sqlbuf_add(&pl->b, " AND NOT EXISTS (SELECT FROM pg_constraint k JOIN pg_namespace s ON s.oid = "
				   "k.connamespace\n        WHERE s.nspname = ");
		sqlbuf_literal(&pl->b, pl->schema);
		sqlbuf_add(&pl->b, " AND k.conname = n)");
	}
	sqlbuf_printf(&pl->b, " THEN\n      EXECUTE format('ALTER %s %%I.%%I RENAME TO %%I', ",
		      ln->index ? "INDEX" : "SEQUENCE");
	sqlbuf_literal(&pl->b, pl->schema);
	sqlbuf_add(&pl->b, ", ");
	sqlbuf_literal(&pl->b, ln->phys);
	sqlbuf_add(&pl->b, ", n);\n      RETURN;\n    END IF;\n  END LOOP;\n  RAISE EXCEPTION 'no free name for %', ");
	sqlbuf_literal(&pl->b, ln->phys);
	sqlbuf_add(&pl->b, " USING ERRCODE = 'duplicate_object';\nEND\n" PLAN_DOLLAR);
}

void pl_names_finish(Planner *pl)
{
	/* names the migration gave first, then PostgreSQL's choices around them */
	for (size_t k = 0; k < 2 * pl->nlater && !pl->failed; k++) {
		const LaterName *ln = &pl->later[k % pl->nlater];
		const char *final = ln->table->vname;
		if (!final || (k < pl->nlater) != (ln->fixed != NULL))
			continue; /* (no final name: dropped again, complete drops it with its objects) */
		const char *names[] = {pl->schema, final, ln->phys, ln->name2, ln->fixed};
		for (size_t j = 0; j < sizeof names / sizeof names[0]; j++)
			if (names[j] && strstr(names[j], PLAN_DOLLAR)) {
				pl_fail(pl, "name \"%s\" contains %s", names[j], PLAN_DOLLAR);
				return;
			}
		later_name_sql(pl, ln, final);
		pl_emit(pl, &pl->c_rename, STEP_SQL, ln->index ? "give the created table's index its name"
							       : "give the created table's sequence its name");
	}
}

void pl_names_free(Planner *pl)
{
	for (size_t i = 0; i < pl->nlater; i++) {
		free(pl->later[i].phys);
		free(pl->later[i].name2);
		free(pl->later[i].fixed);
	}
	free(pl->later);
	pl->later = NULL;
	pl->nlater = 0;
}
