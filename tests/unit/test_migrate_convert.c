/*
 * tests/unit/test_migrate_convert.c: SQL to pgroll operations
 * (migrate/convert.c), one statement shape at a time: what converts to
 * which operation, what folds into an earlier one, what stays raw SQL, and
 * the errors (the parser's message with its line, no statement).
 * The files of real ORMs are in tests/data/convert (migrate_convert.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/convert.h"

typedef struct Case {
	const char *sql;
	const char *ops;   /* the operations, compact JSON */
} Case;

static const Case CASES[] = {
	{"CREATE INDEX i ON t (lower(a));",
	 "[{\"sql\":{\"up\":\"CREATE INDEX i ON t (lower(a))\"}}]"},
	{"DROP TABLE a CASCADE;",
	 "[{\"sql\":{\"up\":\"DROP TABLE a CASCADE\"}}]"},
	{"DROP TABLE a, public.b;",
	 "[{\"drop_table\":{\"name\":\"a\"}},{\"drop_table\":{\"name\":\"b\"}}]"},
	{"ALTER TABLE t ALTER COLUMN a TYPE bigint USING (a::bigint + 1);",
	 "[{\"alter_column\":{\"table\":\"t\",\"column\":\"a\",\"up\":\"(a::bigint + 1)\",\"down\":\"TODO(pgflip convert): the old type's value from the new column\",\"type\":\"bigint\"}}]"},
	{"ALTER TABLE t ALTER COLUMN a SET NOT NULL, ALTER COLUMN b SET DEFAULT (now()), ALTER COLUMN c DROP DEFAULT;",
	 "[{\"alter_column\":{\"table\":\"t\",\"column\":\"a\",\"up\":\"a\",\"down\":\"a\",\"nullable\":false}},{\"alter_column\":{\"table\":\"t\",\"column\":\"b\",\"up\":\"b\",\"down\":\"b\",\"default\":\"(now())\"}},{\"alter_column\":{\"table\":\"t\",\"column\":\"c\",\"up\":\"c\",\"down\":\"c\",\"default\":null}}]"},
	{"ALTER TABLE t ALTER COLUMN a TYPE int USING (a)::int, ALTER COLUMN b SET DEFAULT (1)::text || $$x$$;",
	 "[{\"alter_column\":{\"table\":\"t\",\"column\":\"a\",\"up\":\"(a)::int\",\"down\":\"TODO(pgflip convert): the old type's value from the new column\",\"type\":\"int\"}},{\"alter_column\":{\"table\":\"t\",\"column\":\"b\",\"up\":\"b\",\"down\":\"b\",\"default\":\"(1)::text || $$x$$\"}}]"},
	{"CREATE TABLE t2 (); ALTER TABLE t ADD CONSTRAINT x EXCLUDE USING gist (a WITH =);",
	 "[{\"sql\":{\"up\":\"CREATE TABLE t2 ()\"}},{\"sql\":{\"up\":\"ALTER TABLE t ADD CONSTRAINT x EXCLUDE USING gist (a WITH =)\"}}]"},
	{"ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a, b) REFERENCES o (x, y) MATCH FULL ON DELETE SET NULL (a);",
	 "[{\"create_constraint\":{\"name\":\"fk\",\"type\":\"foreign_key\",\"columns\":[\"a\",\"b\"],\"references\":{\"table\":\"o\",\"columns\":[\"x\",\"y\"],\"on_delete\":\"SET NULL\",\"match_type\":\"FULL\",\"on_delete_set_columns\":[\"a\"]},\"table\":\"t\",\"up\":{\"a\":\"a\",\"b\":\"b\"},\"down\":{\"a\":\"a\",\"b\":\"b\"}}}]"},
	{"ALTER TABLE t DROP CONSTRAINT t_a_check;",
	 "[{\"drop_multicolumn_constraint\":{\"table\":\"t\",\"name\":\"t_a_check\",\"down\":{}}}]"},
	{"ALTER TABLE t RENAME TO u; ALTER TABLE u RENAME CONSTRAINT c1 TO c2;",
	 "[{\"rename_table\":{\"from\":\"t\",\"to\":\"u\"}},{\"rename_constraint\":{\"table\":\"u\",\"from\":\"c1\",\"to\":\"c2\"}}]"},
	{"CREATE TABLE t (a int, b int, c int GENERATED ALWAYS AS (a * 2) STORED, d text DEFAULT 'x'::text, CONSTRAINT t_pk PRIMARY KEY (a, b));",
	 "[{\"create_table\":{\"name\":\"t\",\"columns\":[{\"name\":\"a\",\"type\":\"int\",\"nullable\":true},{\"name\":\"b\",\"type\":\"int\",\"nullable\":true},{\"name\":\"c\",\"type\":\"int\",\"generated\":{\"expression\":\"a * 2\"},\"nullable\":true},{\"name\":\"d\",\"type\":\"text\",\"default\":\"'x'::text\",\"nullable\":true}],\"constraints\":[{\"name\":\"t_pk\",\"type\":\"primary_key\",\"columns\":[\"a\",\"b\"]}]}}]"},
	{"ALTER TABLE t ADD COLUMN e text UNIQUE CHECK (length(e) < 5) DEFAULT 'a';",
	 "[{\"add_column\":{\"table\":\"t\",\"column\":{\"name\":\"e\",\"type\":\"text\",\"unique\":true,\"check\":{\"name\":\"t_e_check\",\"constraint\":\"length(e) < 5\"},\"default\":\"'a'\",\"nullable\":true}}}]"},
	{"CREATE INDEX CONCURRENTLY i2 ON t USING gin (a DESC NULLS FIRST) WITH (fastupdate = off) WHERE b IS NOT NULL;",
	 "[{\"create_index\":{\"name\":\"i2\",\"table\":\"t\",\"columns\":[{\"column\":\"a\",\"sort\":\"DESC\",\"nulls\":\"FIRST\"}],\"method\":\"gin\",\"storage_parameters\":\"fastupdate = off\",\"predicate\":\"b IS NOT NULL\"}}]"},
	{"SET lock_timeout = '5s'; INSERT INTO django_migrations (app, name, applied) VALUES ('x', 'y', now()); ALTER TABLE t ADD CONSTRAINT u UNIQUE (a, b);",
	 "[{\"create_constraint\":{\"name\":\"u\",\"type\":\"unique\",\"columns\":[\"a\",\"b\"],\"table\":\"t\",\"up\":{\"a\":\"a\",\"b\":\"b\"},\"down\":{\"a\":\"a\",\"b\":\"b\"}}}]"},
	{"CREATE TABLE t (id bigint PRIMARY KEY); ALTER TABLE t ADD COLUMN a int, ALTER COLUMN id SET STATISTICS 100;",
	 "[{\"create_table\":{\"name\":\"t\",\"columns\":[{\"name\":\"id\",\"type\":\"bigint\",\"pk\":true}]}},{\"sql\":{\"up\":\"ALTER TABLE t ADD COLUMN a int, ALTER COLUMN id SET STATISTICS 100\"}}]"},
	{"CREATE TABLE t (id bigint PRIMARY KEY); ALTER TABLE t ADD COLUMN a int NOT NULL, ALTER COLUMN a SET DEFAULT 0; CREATE UNIQUE INDEX ON t (a);",
	 "[{\"create_table\":{\"name\":\"t\",\"columns\":[{\"name\":\"id\",\"type\":\"bigint\",\"pk\":true},{\"name\":\"a\",\"type\":\"int\",\"default\":\"0\"}]}},{\"create_index\":{\"name\":\"t_a_idx\",\"table\":\"t\",\"columns\":[{\"column\":\"a\"}],\"unique\":true}}]"},
	{"CREATE TABLE other.t (id int); ALTER TABLE \"Mixed\" RENAME COLUMN \"Old\" TO \"New\";",
	 "[{\"sql\":{\"up\":\"CREATE TABLE other.t (id int)\"}},{\"rename_column\":{\"table\":\"Mixed\",\"from\":\"Old\",\"to\":\"New\"}}]"},
};

static void test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
		Conversion c;
		char err[1024];
		if (!convert_sql("t.sql", CASES[i].sql, "public", &c, err, sizeof err))
			fail_msg("%s: %s", CASES[i].sql, err);
		char *got = json_dumps(json_object_get(c.migration, "operations"), JSON_COMPACT);
		if (strcmp(got, CASES[i].ops) != 0)
			fail_msg("%s\ngot  %s\nwant %s", CASES[i].sql, got, CASES[i].ops);
		free(got);
		convert_free(&c);
	}
}

static void test_notes_and_skipped(void **state)
{
	(void)state;
	Conversion c;
	char err[1024];
	assert_true(convert_sql("t.sql", "BEGIN;\nSET lock_timeout = 0;\nCREATE TYPE e AS ENUM ('a');\nCOMMIT;\n", "public", &c,
				err, sizeof err));
	assert_string_equal(json_string_value(json_array_get(c.skipped, 1)),
			    "line 2: skipped SET: pgflip sets lock_timeout and search_path itself");
	assert_string_equal(json_string_value(json_array_get(c.notes, 0)),
			    "kept as raw SQL (no pgroll operation says this): add a down, or rollback refuses");
	convert_free(&c);
}

static void test_errors(void **state)
{
	(void)state;
	Conversion c;
	char err[1024];
	assert_false(convert_sql("t.sql", "SELECT 1;\n\nALTER TABLE t ADD COLUMN;\n", "public", &c, err, sizeof err));
	assert_string_equal(err, "t.sql:3: syntax error at or near \";\"");
	assert_false(convert_sql("t.sql", "-- nothing\n", "public", &c, err, sizeof err));
	assert_string_equal(err, "t.sql: no statement to convert");
	assert_false(convert_sql("t.sql", "BEGIN; COMMIT;", "public", &c, err, sizeof err));
	assert_string_equal(err, "t.sql: no statement to convert (only transaction control, SET and ORM bookkeeping)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_notes_and_skipped),
		cmocka_unit_test(test_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
