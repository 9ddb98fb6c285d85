/*
 * migrate/convert.h: SQL DDL into a pgroll-format migration (`pgflip migrate
 * convert`).
 *
 * The SQL goes through PostgreSQL's parser (pgparse.h); each statement of
 * the parse tree becomes pgroll operations: CREATE TABLE -> create_table,
 * ALTER TABLE ADD/DROP COLUMN, ALTER COLUMN TYPE/SET|DROP DEFAULT/SET|DROP
 * NOT NULL, ADD/DROP CONSTRAINT -> add_column, drop_column, alter_column,
 * create_constraint, drop_multicolumn_constraint; RENAME -> rename_table,
 * rename_column, rename_constraint; CREATE/DROP INDEX -> create_index,
 * drop_index; DROP TABLE -> drop_table. Transaction control (BEGIN/COMMIT),
 * SET, SET CONSTRAINTS and the ORMs' own bookkeeping tables (alembic_version,
 * django_migrations) are skipped with a note; anything else becomes a `sql`
 * operation whose note says it needs a `down`. What ORMs print is read as
 * is: Alembic's `--sql` offline mode, Django's `sqlmigrate`, drizzle-kit's
 * files (`--> statement-breakpoint` is a comment to the parser).
 *
 * Where an operation needs an expression that the SQL does not give (the
 * down of a type change, the up of a new NOT NULL column without default,
 * the down of DROP NOT NULL), the expression is CONVERT_PLACEHOLDER followed
 * by what to write; `validate` and `lint` reject it (rule "placeholder").
 */
#ifndef PGFLIP_MIGRATE_CONVERT_H
#define PGFLIP_MIGRATE_CONVERT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Opens every expression convert could not write; never valid SQL. */
#define CONVERT_PLACEHOLDER "TODO(pgflip convert):"

typedef struct Conversion {
	json_t *migration;  /* {"operations": [...]}: the pgroll format */
	json_t *notes;      /* one per operation: a comment (string) or null */
	json_t *skipped;    /* strings: "LINE: what was skipped and why" */
} Conversion;

/*
 * convert_sql: converts TEXT (NUL-terminated SQL) whose tables live in
 * SCHEMA (a table qualified with another schema stays raw SQL). NAME names
 * the input in errors. Returns true with OUT filled (free with
 * convert_free); false with ERR "NAME:LINE: the parser's message" (e.g.
 * `up.sql:3: syntax error at or near "TABL"`) or "NAME: no statement".
 */
bool convert_sql(const char *name, const char *text, const char *schema, Conversion *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));
void convert_free(Conversion *c);

/* The migration as YAML, each note a comment above its operation and the
 * skipped statements in the header (libyaml's emitter writes no comments,
 * hence a writer of the few shapes a migration has). Caller frees; NULL when
 * out of memory. */
char *convert_yaml(const Conversion *c, const char *source);
/* The migration as JSON (notes and skipped are not in it: JSON has no
 * comments; print them apart). Caller frees. */
char *convert_json(const Conversion *c);

#endif
