/*
 * migrate/cli_check.c: `pgflip migrate convert | lint | validate` (see
 * cli_check.h): read the input, call the module, print.
 */
#include "migrate/cli_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/convert.h"
#include "migrate/lint.h"
#include "migrate/load.h"

/* All of FP as a NUL-terminated string, at most MIGFILE_MAX_BYTES; NULL with
 * a message on stderr. */
static char *read_all(FILE *fp, const char *name)
{
	char *buf = malloc(MIGFILE_MAX_BYTES + 1);
	size_t n = buf ? fread(buf, 1, MIGFILE_MAX_BYTES + 1, fp) : 0;
	if (!buf || ferror(fp) || n > MIGFILE_MAX_BYTES) {
		fprintf(stderr, "pgflip migrate: %s: cannot read (or larger than %zu bytes)\n", name, MIGFILE_MAX_BYTES);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (strlen(buf) != n) {
		fprintf(stderr, "pgflip migrate: %s: a NUL byte in the SQL\n", name);
		free(buf);
		return NULL;
	}
	return buf;
}

int cli_convert(const char *schema, const char *path, bool json)
{
	bool in = !path || strcmp(path, "-") == 0;
	const char *name = in ? "stdin" : path;
	FILE *fp = in ? stdin : fopen(path, "rb");
	if (!fp)
		return fprintf(stderr, "pgflip migrate: %s: cannot open: %m\n", path), 1;
	char *text = read_all(fp, name);
	if (!in)
		fclose(fp);
	if (!text)
		return 1;
	Conversion c;
	char err[1024];
	bool ok = convert_sql(name, text, schema, &c, err, sizeof err);
	free(text);
	if (!ok)
		return fprintf(stderr, "pgflip migrate: %s\n", err), 1;
	char *out = json ? convert_json(&c) : convert_yaml(&c, name);
	if (json) {
		size_t i;
		json_t *v;
		json_array_foreach(c.skipped, i, v) fprintf(stderr, "pgflip migrate: note: %s\n", json_string_value(v));
		json_array_foreach(c.notes, i, v) if (json_is_string(v))
			fprintf(stderr, "pgflip migrate: note: operations[%zu]: %s\n", i, json_string_value(v));
	}
	convert_free(&c);
	if (!out)
		return fprintf(stderr, "pgflip migrate: out of memory\n"), 1;
	fputs(out, stdout);
	free(out);
	return 0;
}

static int print_findings(const LintReport *r, bool json, json_t *extra)
{
	if (r->oom)
		return fprintf(stderr, "pgflip migrate: out of memory\n"), 1;
	if (json) {
		json_t *j = lint_json(r);
		if (extra)
			json_object_update(j, extra);
		char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
		json_decref(j);
		if (!s)
			return fprintf(stderr, "pgflip migrate: out of memory\n"), 1;
		puts(s);
		free(s);
		return 0;
	}
	char *s = lint_format(r);
	if (!s)
		return fprintf(stderr, "pgflip migrate: out of memory\n"), 1;
	fputs(s, stdout);
	free(s);
	return 0;
}

int cli_lint(const char *path, bool json)
{
	LintReport r = {0};
	char err[1024];
	if (!lint_path(path, &r, err, sizeof err)) {
		lint_report_free(&r);
		return fprintf(stderr, "pgflip migrate: %s\n", err), 1;
	}
	int rc = print_findings(&r, json, NULL);
	if (rc == 0 && r.errors)
		rc = 1;
	lint_report_free(&r);
	return rc;
}

int cli_validate(const MigrateRequest *rq, const char *path, bool json)
{
	LintReport r = {0};
	MigrateResult res;
	MigrateStatus st = migrate_validate(rq, path, &r, &res);
	json_t *verdict = json_pack("{s:s, s:b, s:s}", "file", path, "valid", st == MIGRATE_OK, "reason", res.err);
	int rc = print_findings(&r, json, verdict);
	json_decref(verdict);
	lint_report_free(&r);
	if (rc)
		return rc;
	if (st != MIGRATE_OK)
		return json ? 1 : (fprintf(stderr, "pgflip migrate: %s\n", res.err), 1);
	if (!json)
		printf("%s: valid (loads, plans against the database, lint finds no error)\n", path);
	return 0;
}
