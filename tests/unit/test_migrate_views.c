/*
 * tests/unit/test_migrate_views.c: what the pure planner prints for a
 * version schema's views and a backfill (migrate/plan.c), against a
 * hand-built snapshot: the tables' grants carried onto the views (renamed
 * and hidden columns, PUBLIC, USAGE), grants following a rename through the
 * simulated contract, and a backfill step printed as the statements of a
 * batch, with no placeholder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/load.h"
#include "migrate/plan.h"
#include "migrate/snapshot.h"

static void contains(const char *hay, const char *needle)
{
	if (!hay || !strstr(hay, needle))
		fail_msg("'%s'\nnot in\n%s", needle, hay ? hay : "(null)");
}

static void lacks(const char *hay, const char *needle)
{
	if (hay && strstr(hay, needle))
		fail_msg("'%s' unexpectedly in\n%s", needle, hay);
}

/* items(id integer PK, name text, secret text): reader SELECT, PUBLIC
 * SELECT (id), writer UPDATE (name, secret); USAGE on public for PUBLIC and
 * reader. */
static Snapshot *granted_snapshot(void)
{
	Snapshot *s = snapshot_new("public");
	SnapTable *t = snapshot_add_table(s, "items");
	snapshot_add_column(t, "id", "integer", true, NULL);
	snapshot_add_column(t, "name", "text", false, NULL);
	snapshot_add_column(t, "secret", "text", false, NULL);
	const char *id[] = {"id"}, *ns[] = {"name", "secret"};
	snapshot_add_constraint(t, "items_pkey", 'p', id, 1, "PRIMARY KEY (id)");
	assert_true(snapshot_add_grant(t, "reader", "SELECT", NULL, 0));
	assert_true(snapshot_add_grant(t, "", "SELECT", id, 1));
	assert_true(snapshot_add_grant(t, "writer", "UPDATE", ns, 2));
	assert_true(snapshot_add_usage(s, ""));
	assert_true(snapshot_add_usage(s, "reader"));
	return s;
}

static Plan *plan_text(const Snapshot *s, const char *ops, char *err, size_t errlen, MigFile *f)
{
	char text[4096];
	snprintf(text, sizeof text, "operations:\n%s", ops);
	if (!migfile_parse("m/02_x.yaml", text, strlen(text), false, f, err, errlen))
		fail_msg("load: %s", err);
	Plan *p = plan_build(f, s, "public", "public_01_base", err, errlen);
	if (!p)
		fail_msg("plan: %s", err);
	return p;
}

static const PlanStep *step_of(const StepList *l, StepKind kind)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].kind == kind)
			return &l->v[i];
	fail_msg("no step of kind %d", kind);
	return NULL;
}

static void test_views_carry_grants(void **state)
{
	(void)state;
	Snapshot *s = granted_snapshot();
	SqlBuf b;
	sqlbuf_init(&b);
	plan_views_sql(&b, s, NULL, "public_01_base");
	char *sql = sqlbuf_steal(&b);
	contains(sql, "CREATE SCHEMA \"public_01_base\";\nGRANT USAGE ON SCHEMA \"public_01_base\" TO PUBLIC;\n"
		      "GRANT USAGE ON SCHEMA \"public_01_base\" TO \"reader\";\n");
	contains(sql, "GRANT SELECT ON \"public_01_base\".\"items\" TO \"reader\"");
	contains(sql, "GRANT SELECT (\"id\") ON \"public_01_base\".\"items\" TO PUBLIC");
	contains(sql, "GRANT UPDATE (\"name\", \"secret\") ON \"public_01_base\".\"items\" TO \"writer\"");
	lacks(sql, "GRANT ALL");
	free(sql);

	/* a snapshot without grants (a table the migration creates, or `plan`
	 * with no database) grants nothing */
	Snapshot *bare = snapshot_new("public");
	SnapTable *t = snapshot_add_table(bare, "t");
	snapshot_add_column(t, "a", "integer", false, NULL);
	sqlbuf_init(&b);
	plan_views_sql(&b, bare, NULL, "public_01_base");
	sql = sqlbuf_steal(&b);
	lacks(sql, "GRANT");
	free(sql);
	snapshot_free(bare);
	snapshot_free(s);
}

static void test_grants_follow_names(void **state)
{
	(void)state;
	Snapshot *s = granted_snapshot();
	char err[1024];
	MigFile f;
	Plan *p = plan_text(s,
			    "  - rename_column: {table: items, from: name, to: title}\n"
			    "  - drop_column: {table: items, column: secret, down: \"''\"}\n",
			    err, sizeof err, &f);
	const PlanStep *v = step_of(&p->start, STEP_VIEWS);
	/* the new version names name "title" and hides secret */
	contains(v->sql, "GRANT UPDATE (\"title\") ON \"public_02_x\".\"items\" TO \"writer\"");
	contains(v->sql, "GRANT SELECT ON \"public_02_x\".\"items\" TO \"reader\"");
	lacks(v->sql, "\"secret\") ON");
	/* complete's rebuild: the column is renamed, secret dropped */
	const PlanStep *c = step_of(&p->complete, STEP_VIEWS);
	contains(c->sql, "CREATE VIEW \"public_02_x\".\"items\" WITH (security_invoker = true) AS SELECT \"id\", \"title\" FROM");
	contains(c->sql, "GRANT UPDATE (\"title\") ON \"public_02_x\".\"items\" TO \"writer\"");
	lacks(c->sql, "secret");
	plan_free(p);
	migfile_free(&f);

	/* a column grant whose every column goes is gone, not widened to the table */
	SnapTable *t = snapshot_table(s, "items");
	snapshot_grants_column(t, "name", NULL);
	snapshot_grants_column(t, "secret", NULL);
	for (size_t i = 0; i < t->ngrants; i++)
		assert_false(strcmp(t->grants[i]->grantee, "writer") == 0);
	assert_int_equal(t->ngrants, 2);
	snapshot_free(s);
}

static void test_backfill_printed(void **state)
{
	(void)state;
	Snapshot *s = granted_snapshot();
	char err[1024];
	MigFile f;
	Plan *p = plan_text(s,
			    "  - add_column:\n"
			    "      table: items\n"
			    "      up: upper(name)\n"
			    "      column: {name: label, type: text, nullable: true}\n",
			    err, sizeof err, &f);
	const PlanStep *b = step_of(&p->start, STEP_BACKFILL);
	char *bound = plan_backfill_bound_sql("public", b, true, false);
	char *update = plan_backfill_update_sql("public", b, true, true, "id");
	/* what the plan prints is what the executor builds */
	contains(b->sql, bound);
	contains(b->sql, update);
	contains(update, "UPDATE \"public\".\"items\" SET \"_pgflip_new_label\" = (upper(name)) WHERE (\"id\") > ($1::integer) "
			 "AND (\"id\") <= ($2::integer)");
	contains(b->sql, "SET LOCAL pgflip.backfill = 'on';");
	contains(b->sql, PLAN_BACKFILL_SAVE_SQL);
	lacks(b->sql, "last key of");
	free(bound);
	free(update);
	/* the first batch has no lower bound, the last no upper one */
	char *first = plan_backfill_update_sql("public", b, false, true, "id");
	contains(first, "WHERE (\"id\") <= ($1::integer)");
	free(first);
	plan_free(p);
	migfile_free(&f);
	snapshot_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_views_carry_grants),
		cmocka_unit_test(test_grants_follow_names),
		cmocka_unit_test(test_backfill_printed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
