/*
 * migrate/lint.h: rules that catch what takes locks or breaks old code
 * (`pgflip migrate lint`, and `start` / `validate` before they run), in the
 * spirit of squawk and strong_migrations.
 *
 * Rules look at the operations of a migration file and at the SQL of its raw
 * `sql` operations, parsed with PostgreSQL's parser (pgparse.h); a plain
 * .sql file is linted as raw SQL. pgroll's operations themselves are what
 * pgflip runs safely (indexes CONCURRENTLY, constraints NOT VALID, NOT NULL
 * through a validated CHECK, every step under lock_timeout), so errors are
 * for raw SQL that bypasses that, and for placeholders `convert` left;
 * risky choices inside operations (an int primary key, varchar(n), a
 * volatile default) are warnings. The rules and their severities are
 * LINT_RULES, in lint.c, and in migrate/README.md.
 *
 * Pure: no database, no global state.
 */
#ifndef PGFLIP_MIGRATE_LINT_H
#define PGFLIP_MIGRATE_LINT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "migrate/load.h"

typedef enum LintSeverity {
	LINT_WARNING = 0,
	LINT_ERROR,
} LintSeverity;

typedef struct LintRule {
	const char *name;        /* e.g. "index-not-concurrent" */
	LintSeverity severity;
	const char *effect;      /* what happens in PostgreSQL: which lock, for how long */
	const char *fix;
} LintRule;

typedef struct LintFinding {
	char *file;
	int line;                /* 1-based line in FILE, 0 unknown */
	const LintRule *rule;    /* static */
	char *what;              /* the statement or operation it is about, one line */
} LintFinding;

typedef struct LintReport {
	LintFinding *v;
	size_t n, cap;
	size_t errors;           /* findings whose rule is LINT_ERROR */
	bool oom;                /* a finding could not be recorded */
} LintReport;

/* Every rule, ending with a NULL name. */
extern const LintRule LINT_RULES[];

/* lint_migfile: appends to OUT the findings of migration F (loaded). */
void lint_migfile(const MigFile *f, LintReport *out);

/*
 * lint_path: lints PATH: a migration file (.yaml, .yml, .json), a .sql file,
 * or a folder (each such file in it, in name order). Returns true with the
 * findings in OUT (none is a success too); false with ERR "PATH: why" when a
 * file cannot be read, loaded or parsed ("x.sql:3: syntax error at or near
 * ...") or the folder holds no such file.
 */
bool lint_path(const char *path, LintReport *out, char *err, size_t errlen) __attribute__((warn_unused_result));

/* The findings as text, one per line: "FILE:LINE: error|warning RULE: WHAT:
 * EFFECT. Fix: FIX", then a summary line. Caller frees; NULL when OOM. */
char *lint_format(const LintReport *r);
/* As a JSON object {"findings": [{"file", "line", "rule", "severity",
 * "what", "effect", "fix"}], "errors": N, "warnings": N}. Caller decrefs. */
json_t *lint_json(const LintReport *r);
/* The first error as one line ("FILE:LINE: RULE: WHAT"), for start's refusal;
 * NULL when there is none. Caller frees. */
char *lint_first_error(const LintReport *r);

void lint_report_free(LintReport *r);

#endif
