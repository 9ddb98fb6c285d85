/*
 * tests/unit/test_migrate_load.c: the migration file loader and its
 * data-driven validator (migrate/load.c): YAML and JSON into one tree, field
 * paths and line numbers in every error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "migrate/load.h"

static char err[1024];

static bool parse_yaml(const char *text, MigFile *f)
{
	return migfile_parse("m/001_test.yaml", text, strlen(text), false, f, err, sizeof err);
}

static void expect_error(const char *text, const char *want)
{
	MigFile f;
	assert_false(parse_yaml(text, &f));
	if (strcmp(err, want) != 0)
		fail_msg("got  '%s'\nwant '%s'", err, want);
}

static void test_good_yaml(void **state)
{
	(void)state;
	MigFile f;
	const char *y = "operations:\n"
			"  - create_table:\n"
			"      name: t\n"
			"      columns:\n"
			"        - {name: id, type: integer, pk: true}\n"
			"        - name: price\n"
			"          type: text\n"
			"          default: \"100\"\n"
			"  - sql:\n"
			"      up: SELECT 1\n"
			"      onComplete: true\n";
	assert_true(parse_yaml(y, &f));
	assert_string_equal(f.name, "001_test");
	assert_null(f.version_schema);
	assert_int_equal(f.nops, 2);
	assert_int_equal(f.ops[0].kind, MIGOP_CREATE_TABLE);
	assert_int_equal(f.ops[1].kind, MIGOP_SQL);
	json_t *col = json_array_get(json_object_get(f.ops[0].body, "columns"), 1);
	assert_string_equal(mj_str(col, "default", ""), "100"); /* quoted scalar stays a string */
	assert_true(mj_bool(f.ops[1].body, "onComplete", false));
	assert_int_equal(migfile_line(&f, f.ops[0].body, "columns", 0), 4);
	migfile_free(&f);
}

static void test_type_error_with_path_and_line(void **state)
{
	(void)state;
	MigFile f;
	assert_false(migfile_load("tests/data/migrate/bad_type.yaml", &f, err, sizeof err));
	assert_string_equal(err, "tests/data/migrate/bad_type.yaml:12: operations[1].add_column.column.type: "
				 "expected string, got integer");
}

static void test_unknown_field(void **state)
{
	(void)state;
	MigFile f;
	assert_false(migfile_load("tests/data/migrate/unknown_field.yaml", &f, err, sizeof err));
	assert_string_equal(err, "tests/data/migrate/unknown_field.yaml:4: operations[0].create_table.colums: unknown field");
}

static void test_missing_required(void **state)
{
	(void)state;
	MigFile f;
	assert_false(migfile_load("tests/data/migrate/missing_field.yaml", &f, err, sizeof err));
	assert_string_equal(err, "tests/data/migrate/missing_field.yaml:2: operations[0].add_column.table: missing required field");
}

static void test_unknown_operation(void **state)
{
	(void)state;
	expect_error("operations:\n  - add_colum:\n      table: t\n",
		     "m/001_test.yaml:2: operations[0].add_colum: unknown operation");
}

static void test_two_operations_in_one_item(void **state)
{
	(void)state;
	expect_error("operations:\n  - drop_table: {name: a}\n    drop_index: {name: b}\n",
		     "m/001_test.yaml:2: operations[0]: expected a mapping with exactly one operation");
}

static void test_enum(void **state)
{
	(void)state;
	expect_error("operations:\n  - create_index:\n      name: i\n      table: t\n      method: btre\n"
		     "      columns: [{column: a}]\n",
		     "m/001_test.yaml:5: operations[0].create_index.method: 'btre' is not one of: btree, hash, gist, "
		     "spgist, gin, brin");
}

static void test_nested_array_item(void **state)
{
	(void)state;
	expect_error("operations:\n  - create_table:\n      name: t\n      columns:\n        - name: a\n          type: int\n"
		     "        - name: b\n          type: int\n          nullable: yes please\n",
		     "m/001_test.yaml:9: operations[0].create_table.columns[1].nullable: expected boolean, got string");
}

static void test_string_or_null(void **state)
{
	(void)state;
	MigFile f;
	assert_true(parse_yaml("operations:\n  - alter_column:\n      table: t\n      column: c\n      comment: null\n"
			       "      up: c\n      down: c\n",
			       &f));
	assert_true(json_is_null(json_object_get(f.ops[0].body, "comment")));
	migfile_free(&f);
	expect_error("operations:\n  - alter_column:\n      table: t\n      column: c\n      default: 3\n      up: c\n      down: c\n",
		     "m/001_test.yaml:5: operations[0].alter_column.default: expected string or null, got integer");
}

static void test_string_map(void **state)
{
	(void)state;
	expect_error("operations:\n  - create_constraint:\n      table: t\n      name: k\n      type: unique\n"
		     "      columns: [a]\n      up: {a: 1}\n      down: {a: a}\n",
		     "m/001_test.yaml:7: operations[0].create_constraint.up.a: expected string, got integer");
}

static void test_yaml_syntax(void **state)
{
	(void)state;
	MigFile f;
	assert_false(parse_yaml("operations:\n  - drop_table: {name: a\n", &f));
	assert_non_null(strstr(err, "m/001_test.yaml:3: YAML syntax"));
}

static void test_top_level(void **state)
{
	(void)state;
	expect_error("name: x\n", "m/001_test.yaml:1: operations: missing required field");
	expect_error("operations: {}\n", "m/001_test.yaml:1: operations: expected array, got object");
	expect_error("- 1\n", "m/001_test.yaml:1: (top): expected a mapping with 'operations', got array");
	expect_error("operations: []\nextra: 1\n", "m/001_test.yaml:2: extra: unknown field");
}

static void test_json_same_tree(void **state)
{
	(void)state;
	MigFile f;
	assert_true(migfile_load("tests/data/migrate/good.json", &f, err, sizeof err));
	assert_string_equal(f.name, "json_migration");
	assert_string_equal(f.version_schema, "v_json");
	assert_int_equal(f.ops[0].kind, MIGOP_ADD_COLUMN);
	assert_string_equal(mj_str(f.ops[0].body, "up", ""), "upper(name)");
	migfile_free(&f);
	assert_false(migfile_load("tests/data/migrate/bad_syntax.json", &f, err, sizeof err));
	assert_non_null(strstr(err, "tests/data/migrate/bad_syntax.json:3: JSON syntax"));
	assert_false(migfile_parse("x.json", "{\"operations\": [{\"drop_table\": {}}]}", 36, true, &f, err, sizeof err));
	assert_string_equal(err, "x.json:1: operations[0].drop_table.name: missing required field");
	/* JSON keeps its lines (read again by libyaml, same tree) */
	const char *j = "{\"operations\": [\n  {\"add_column\": {\"table\": \"t\",\n    \"column\": {\"name\": 1, \"type\": \"text\"}}}\n]}";
	assert_false(migfile_parse("y.json", j, strlen(j), true, &f, err, sizeof err));
	assert_string_equal(err, "y.json:3: operations[0].add_column.column.name: expected string, got integer");
}

static void test_every_example_loads(void **state)
{
	(void)state;
	/* the shared examples sit beside the checkout (CI layout) */
	char path[512];
	int loaded = 0;
	FILE *ls = popen("ls ../shared/pgroll-format/examples/*.yaml 2>/dev/null", "r");
	assert_non_null(ls);
	while (fgets(path, sizeof path, ls)) {
		path[strcspn(path, "\n")] = '\0';
		MigFile f;
		if (!migfile_load(path, &f, err, sizeof err))
			fail_msg("%s", err);
		migfile_free(&f);
		loaded++;
	}
	pclose(ls);
	if (loaded == 0)
		skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_yaml),
		cmocka_unit_test(test_type_error_with_path_and_line),
		cmocka_unit_test(test_unknown_field),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_unknown_operation),
		cmocka_unit_test(test_two_operations_in_one_item),
		cmocka_unit_test(test_enum),
		cmocka_unit_test(test_nested_array_item),
		cmocka_unit_test(test_string_or_null),
		cmocka_unit_test(test_string_map),
		cmocka_unit_test(test_yaml_syntax),
		cmocka_unit_test(test_top_level),
		cmocka_unit_test(test_json_same_tree),
		cmocka_unit_test(test_every_example_loads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
