/*
 * tests/unit/test_migrate_lint.c: every lint rule (migrate/lint.c) on a
 * migration or SQL file that breaks it (the finding, its line) and on one
 * that does the same thing the safe way (no finding of that rule); pgroll's
 * own examples have no lint error (start runs them); convert's YAML loads
 * back as the same tree (migrate/convert.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "migrate/convert.h"
#include "migrate/lint.h"
#include "migrate/load.h"

typedef struct Case {
	const char *rule;
	const char *ext;   /* "yaml", "json" or "sql" */
	const char *text;
	int line;          /* > 0: the rule fires on this line; 0: it does not fire */
} Case;

#define SQL_OP(sql) "operations:\n  - sql:\n      up: |\n" sql "      down: SELECT 1\n"

static const Case CASES[] = {
	/* index-not-concurrent */
	{"index-not-concurrent", "yaml", SQL_OP("        CREATE INDEX i ON t (a);\n"), 4},
	{"index-not-concurrent", "yaml", SQL_OP("        CREATE INDEX CONCURRENTLY i ON t (a);\n"), 0},
	{"index-not-concurrent", "yaml", SQL_OP("        CREATE TABLE n (a int);\n        CREATE INDEX i ON n (a);\n"), 0},
	/* constraint-not-valid */
	{"constraint-not-valid", "yaml", SQL_OP("        SELECT 1;\n        ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);\n"), 5},
	{"constraint-not-valid", "yaml", SQL_OP("        ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;\n"), 0},
	{"constraint-not-valid", "sql", "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES o (id);\n", 1},
	{"constraint-not-valid", "sql", "ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX t_a_idx;\n", 0},
	{"constraint-not-valid", "sql", "SELECT 1;\nALTER TABLE t ADD CONSTRAINT x EXCLUDE USING gist (a WITH =);\n", 2},
	/* set-not-null */
	{"set-not-null", "sql", "SET lock_timeout = '1s';\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\n", 2},
	{"set-not-null", "sql",
	 "ALTER TABLE t ADD CONSTRAINT a_nn CHECK (a IS NOT NULL) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT a_nn;\n"
	 "ALTER TABLE t ALTER COLUMN a SET NOT NULL;\n",
	 0},
	/* raw-type-change */
	{"raw-type-change", "yaml", SQL_OP("        ALTER TABLE t ALTER COLUMN a TYPE bigint;\n"), 4},
	{"raw-type-change", "yaml",
	 "operations:\n  - alter_column: {table: t, column: a, type: bigint, up: a, down: a}\n", 0},
	/* raw-rename */
	{"raw-rename", "yaml", SQL_OP("        ALTER TABLE t RENAME COLUMN a TO b;\n"), 4},
	{"raw-rename", "yaml", "operations:\n  - rename_column: {table: t, from: a, to: b}\n", 0},
	/* volatile-default (raw SQL) */
	{"volatile-default", "sql", "ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid();\n", 1},
	{"volatile-default", "sql", "ALTER TABLE t ADD COLUMN at timestamptz DEFAULT now();\n", 0},
	/* volatile-default-op (an operation) */
	{"volatile-default-op", "yaml",
	 "operations:\n  - add_column:\n      table: t\n      column:\n        name: u\n        type: uuid\n"
	 "        default: gen_random_uuid()\n",
	 7},
	{"volatile-default-op", "yaml",
	 "operations:\n  - add_column:\n      table: t\n      column:\n        name: at\n        type: timestamptz\n"
	 "        default: now()\n",
	 0},
	/* table-rewrite */
	{"table-rewrite", "sql", "VACUUM FULL t;\n", 1},
	{"table-rewrite", "sql", "ALTER TABLE t ADD COLUMN id bigserial;\n", 1},
	{"table-rewrite", "sql", "VACUUM (ANALYZE) t;\n", 0},
	/* lock-timeout */
	{"lock-timeout", "sql", "-- no timeout\nALTER TABLE t ADD COLUMN b text;\n", 2},
	{"lock-timeout", "sql", "SET lock_timeout = '2s';\nALTER TABLE t ADD COLUMN b text;\n", 0},
	{"lock-timeout", "yaml", SQL_OP("        SET lock_timeout = 0;\n        ALTER TABLE t ADD COLUMN b text;\n"), 4},
	/* int-primary-key */
	{"int-primary-key", "yaml",
	 "operations:\n  - create_table:\n      name: t\n      columns:\n        - name: id\n          type: integer\n"
	 "          pk: true\n",
	 6},
	{"int-primary-key", "yaml",
	 "operations:\n  - create_table:\n      name: t\n      columns:\n        - {name: id, type: bigint, pk: true}\n", 0},
	{"int-primary-key", "sql", "CREATE TABLE t (id serial PRIMARY KEY);\n", 1},
	/* varchar-length */
	{"varchar-length", "json",
	 "{\"operations\": [\n  {\"add_column\": {\"table\": \"t\",\n    \"column\": {\"name\": \"n\", \"type\": \"varchar(40)\", "
	 "\"nullable\": true}}}\n]}\n",
	 3},
	{"varchar-length", "json",
	 "{\"operations\": [{\"add_column\": {\"table\": \"t\", \"column\": {\"name\": \"n\", \"type\": \"text\", "
	 "\"nullable\": true}}}]}\n",
	 0},
	/* drop-without-contract */
	{"drop-without-contract", "yaml", SQL_OP("        DROP TABLE old;\n"), 4},
	{"drop-without-contract", "yaml", "operations:\n  - sql:\n      up: ALTER TABLE t DROP COLUMN x\n      onComplete: true\n", 0},
	{"drop-without-contract", "yaml", "operations:\n  - drop_column: {table: t, column: x}\n", 0},
	/* placeholder */
	{"placeholder", "yaml",
	 "operations:\n  - alter_column:\n      table: t\n      column: a\n      type: bigint\n      up: a\n"
	 "      down: \"TODO(pgflip convert): the old type's value\"\n",
	 7},
	{"placeholder", "yaml", "operations:\n  - alter_column: {table: t, column: a, type: bigint, up: a, down: a::int}\n", 0},
	/* sql-syntax */
	{"sql-syntax", "yaml", SQL_OP("        SELECT 1;\n        CREAT TABLE x ();\n"), 5},
	{"sql-syntax", "yaml", SQL_OP("        CREATE TABLE x ();\n"), 0},
};

/* Lints C's text, written to a file of its extension. */
static void lint_case(const Case *c, LintReport *r)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/pgflip-lint-%d.%s", (int)getpid(), c->ext);
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(c->text, fp);
	fclose(fp);
	char err[1024] = "";
	bool ok = lint_path(path, r, err, sizeof err);
	unlink(path);
	if (!ok)
		fail_msg("lint failed: %s\n%s", err, c->text);
}

static void test_case(void **state)
{
	const Case *c = *state;
	LintReport r = {0};
	lint_case(c, &r);
	int found = -1;
	for (size_t i = 0; i < r.n; i++)
		if (strcmp(r.v[i].rule->name, c->rule) == 0)
			found = r.v[i].line;
	if (c->line > 0 && found != c->line)
		fail_msg("%s: want a finding on line %d, got %d\n%s", c->rule, c->line, found, c->text);
	if (c->line == 0 && found >= 0)
		fail_msg("%s: want no finding, got one on line %d\n%s", c->rule, found, c->text);
	lint_report_free(&r);
}

/* Every rule has a case that fires and a case that does not. */
static void test_every_rule_covered(void **state)
{
	(void)state;
	for (const LintRule *rule = LINT_RULES; rule->name; rule++) {
		bool fires = false, quiet = false;
		for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
			if (strcmp(CASES[i].rule, rule->name) != 0)
				continue;
			fires = fires || CASES[i].line > 0;
			quiet = quiet || CASES[i].line == 0;
		}
		if (!fires || !quiet)
			fail_msg("rule %s: fires %d, quiet %d", rule->name, fires, quiet);
	}
}

/* start runs pgroll's examples today: lint may warn on them, never refuse. */
static void test_examples_no_error(void **state)
{
	(void)state;
	LintReport r = {0};
	char err[1024] = "";
	if (access("../shared/pgroll-format/examples", R_OK) != 0)
		skip();
	assert_true(lint_path("../shared/pgroll-format/examples", &r, err, sizeof err));
	if (r.errors) {
		char *first = lint_first_error(&r);
		fail_msg("%zu error(s), first: %s", r.errors, first);
	}
	assert_true(r.n > 0); /* example 01's integer keys, at least */
	lint_report_free(&r);
}

static void test_text_and_json(void **state)
{
	(void)state;
	LintReport r = {0};
	lint_case(&CASES[0], &r);
	char *t = lint_format(&r);
	assert_non_null(strstr(t, ":4: error index-not-concurrent: CREATE INDEX i ON t: CREATE INDEX holds a SHARE lock"));
	assert_non_null(strstr(t, "Fix: CREATE INDEX CONCURRENTLY"));
	assert_non_null(strstr(t, "1 error(s), 0 warning(s)"));
	json_t *j = lint_json(&r);
	json_t *f0 = json_array_get(json_object_get(j, "findings"), 0);
	assert_string_equal(json_string_value(json_object_get(f0, "severity")), "error");
	assert_int_equal(json_integer_value(json_object_get(f0, "line")), 4);
	assert_int_equal(json_integer_value(json_object_get(j, "errors")), 1);
	json_decref(j);
	free(t);
	lint_report_free(&r);
}

/* convert's YAML, loaded by the loader, is the tree convert made. */
static void test_convert_yaml_round_trip(void **state)
{
	(void)state;
	const char *sql = "CREATE TABLE \"a b\" (id bigint PRIMARY KEY, \"yes\" text DEFAULT 'no' NOT NULL,\n"
			  "  n numeric(10,2) CHECK (n > 0), note text DEFAULT E'x\\ny');\n"
			  "ALTER TABLE t ADD COLUMN c int NOT NULL;\n"
			  "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$\n  SELECT 1\n$$;\n";
	Conversion c;
	char err[1024];
	assert_true(convert_sql("x.sql", sql, "public", &c, err, sizeof err));
	char *y = convert_yaml(&c, "x.sql");
	MigFile f;
	if (!migfile_parse("x.yaml", y, strlen(y), false, &f, err, sizeof err))
		fail_msg("%s\n%s", err, y);
	if (!json_equal(f.root, c.migration))
		fail_msg("not the same tree:\n%s", y);
	assert_non_null(strstr(y, "# a NOT NULL column without default: write up"));
	assert_non_null(strstr(y, "up: \"TODO(pgflip convert):"));
	migfile_free(&f);
	free(y);
	convert_free(&c);
}

int main(void)
{
	struct CMUnitTest tests[sizeof CASES / sizeof CASES[0] + 4];
	size_t n = 0;
	for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
		tests[n++] = (struct CMUnitTest)cmocka_unit_test_prestate(test_case, (void *)&CASES[i]);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_every_rule_covered);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_examples_no_error);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_text_and_json);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_convert_yaml_round_trip);
	return _cmocka_run_group_tests("migrate_lint", tests, n, NULL, NULL);
}
