/*
 * migrate/cli_check.h: the command line of `convert`, `lint` and `validate`
 * (cli.c parses the arguments and calls these; they call convert.h, lint.h
 * and api.h and print). Each returns the exit status: 0 done, 1 failed (or
 * lint/validate found an error), with the reason on stderr.
 */
#ifndef PGFLIP_MIGRATE_CLI_CHECK_H
#define PGFLIP_MIGRATE_CLI_CHECK_H

#include <stdbool.h>

#include "migrate/api.h"

/* convert [FILE|-]: PATH NULL or "-" reads stdin; YAML on stdout, or JSON
 * (JSON: the notes go to stderr, JSON has no comments). */
int cli_convert(const char *schema, const char *path, bool json);
/* lint FILE|DIR: findings on stdout as text or JSON (--format json). */
int cli_lint(const char *path, bool json);
/* validate FILE: findings on stdout, then the verdict ("FILE: valid" on
 * stdout, or the reason on stderr); JSON: one object with both. */
int cli_validate(const MigrateRequest *rq, const char *path, bool json);

#endif
