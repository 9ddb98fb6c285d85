/*
 * migrate/cli.c: `pgflip migrate` — the command line and the flows behind
 * each command (start, complete, rollback, status, migrate DIR, latest,
 * plan, init).
 *
 *   pgflip migrate [--dsn CONNINFO] [--schema NAME] [options] COMMAND [ARG]
 *
 * A flow is: connect, create the state schema if needed, take the schema's
 * advisory lock, read state and catalog, plan (pure), record the plan in the
 * state row, run its steps, record progress after each step group. A start
 * that fails is rolled back at once, so the database is left as before; a
 * start that is killed is resumed by running the same start again. Exit
 * status: 0 done, 1 failed (one line on stderr), 2 usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/exec.h"
#include "migrate/load.h"
#include "migrate/migrate.h"
#include "migrate/plan.h"

/* Files considered by `migrate DIR` and by `plan` when chaining. */
#define CLI_MAX_FILES 10000

typedef struct Cli {
	const char *dsn;
	const char *schema;
	ExecOptions opt;
	bool complete;
	bool dry_run;
	bool force;
	bool no_chain;
} Cli;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	exec_vsay(fmt, ap);
	va_end(ap);
	return 1;
}

static void usage(FILE *out)
{
	fputs("usage: pgflip migrate [--dsn CONNINFO] [--schema NAME] [options] COMMAND\n"
	      "commands:\n"
	      "  init                 create the state schema (pgflip)\n"
	      "  start FILE           expand: new version schema, triggers, backfill\n"
	      "                       [--complete] [--dry-run]\n"
	      "  complete             contract the active migration\n"
	      "  rollback             undo the active migration [--force]\n"
	      "  status               migrations, their state and backfill progress\n"
	      "  migrate DIR          start and complete each pending file, in name order\n"
	      "  latest               print the latest version schema\n"
	      "  plan FILE            print the SQL of start, complete and rollback (no database;\n"
	      "                       earlier files of FILE's folder give the tables) [--no-chain]\n"
	      "options: --lock-timeout MS (500) --retry-total MS (60000) --backfill-batch-size N (10000)\n"
	      "         --backfill-batch-delay MS (0) --quiet --no-progress\n"
	      "The DSN defaults to libpq's environment (PGHOST, PGPORT, PGDATABASE...).\n",
	      out);
}

/* ---- plan (no database) ---- */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_migration_file(const char *n)
{
	const char *dot = strrchr(n, '.');
	return n[0] != '.' && dot && (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0 || strcmp(dot, ".json") == 0);
}

/* Sorted migration file names of DIR (caller frees each and the array). */
static char **list_files(const char *dir, size_t *n, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	*n = 0;
	if (!d) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return NULL;
	}
	char **v = calloc(CLI_MAX_FILES, sizeof *v);
	struct dirent *de;
	while (v && (de = readdir(d)) != NULL) {
		if (!is_migration_file(de->d_name))
			continue;
		if (*n >= CLI_MAX_FILES) {
			snprintf(err, errlen, "%s: more than %d migration files", dir, CLI_MAX_FILES);
			break;
		}
		v[(*n)++] = strdup(de->d_name);
	}
	closedir(d);
	if (v)
		qsort(v, *n, sizeof *v, cmp_names);
	else
		snprintf(err, errlen, "out of memory");
	return v;
}

static void free_files(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static char *join_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static int cmd_plan(Cli *c, const char *path)
{
	char err[1024] = "";
	MigFile f;
	if (!migfile_load(path, &f, err, sizeof err))
		return fail("%s", err);
	Snapshot *snap = snapshot_new(c->schema);
	char *prev = NULL;
	int rc = 0;
	if (!c->no_chain) {
		char *copy = strdup(path), *base_copy = strdup(path);
		const char *dir = dirname(copy), *base = basename(base_copy);
		size_t n = 0;
		char **files = list_files(dir, &n, err, sizeof err);
		for (size_t i = 0; files && i < n && strcmp(files[i], base) < 0 && rc == 0; i++) {
			char *p = join_path(dir, files[i]);
			MigFile pf;
			if (!p || !migfile_load(p, &pf, err, sizeof err)) {
				rc = fail("while reading earlier migration %s: %s", files[i], err);
				free(p);
				break;
			}
			Plan *pp = plan_build(&pf, snap, c->schema, prev, err, sizeof err);
			if (!pp) {
				/* e.g. a table made by raw SQL: without a database the
				 * planner cannot know it; keep going without that file */
				fprintf(stderr, "pgflip migrate: note: earlier migration not simulated: %s\n", err);
			} else {
				Snapshot *next = snapshot_copy(pp->after);
				plan_contract_snapshot(next);
				snapshot_free(snap);
				snap = next;
				free(prev);
				prev = strdup(pp->vschema);
				plan_free(pp);
			}
			migfile_free(&pf);
			free(p);
		}
		free_files(files, n);
		free(copy);
		free(base_copy);
	}
	if (rc == 0) {
		Plan *p = plan_build(&f, snap, c->schema, prev, err, sizeof err);
		if (!p) {
			rc = fail("%s", err);
		} else {
			char *text = plan_format(p);
			fputs(text ? text : "", stdout);
			free(text);
			plan_free(p);
		}
	}
	free(prev);
	snapshot_free(snap);
	migfile_free(&f);
	return rc;
}

/* ---- flows against the database ---- */

static bool save_start(Exec *e, size_t next, void *arg)
{
	(void)arg;
	return state_set_done(e, e->mig_name, "start_done", next);
}

static bool save_complete(Exec *e, size_t next, void *arg)
{
	(void)arg;
	return state_set_done(e, e->mig_name, "complete_done", next);
}

static bool stored_steps(Exec *e, const MigState *st, const char *which, StepList *out)
{
	return plan_steps_from_json(json_object_get(st->plan, which), out, e->err, sizeof e->err);
}

static int do_rollback(Exec *e, const MigState *st, bool force)
{
	json_t *irr = json_object_get(st->plan, "irreversible");
	if (json_is_string(irr) && !force)
		return fail("migration %s cannot be rolled back: %s (use --force to roll back the rest)", st->name,
			    json_string_value(irr));
	StepList rb;
	if (!stored_steps(e, st, "rollback", &rb))
		return fail("%s", e->err);
	e->mig_name = st->name;
	bool ok = exec_steps(e, &rb, 0, true, NULL, NULL);
	plan_steps_free(&rb);
	if (!state_set_status(e, st->name, "rolled_back"))
		return fail("rolled back, but the state update failed: %s", e->err);
	if (!ok)
		return fail("rollback of %s finished with errors: %s", st->name, e->err);
	exec_log(e, "rolled back %s", st->name);
	return 0;
}

static int do_complete(Exec *e, const MigState *st)
{
	StepList start, complete;
	if (!stored_steps(e, st, "start", &start))
		return fail("%s", e->err);
	size_t nstart = start.n;
	plan_steps_free(&start);
	if ((size_t)st->start_done < nstart)
		return fail("start of %s has not finished (%d of %zu steps); run start again to resume", st->name,
			    st->start_done, nstart);
	if (!stored_steps(e, st, "complete", &complete))
		return fail("%s", e->err);
	e->mig_name = st->name;
	bool ok = exec_steps(e, &complete, (size_t)st->complete_done, false, save_complete, NULL);
	plan_steps_free(&complete);
	if (!ok)
		return fail("complete of %s failed: %s (fix the cause and run complete again, or roll back)", st->name, e->err);
	if (!state_set_status(e, st->name, "complete"))
		return fail("%s", e->err);
	exec_log(e, "completed %s: version schema %s", st->name, st->vschema);
	return 0;
}

/* Runs (or resumes) the start of the active migration ST; on failure rolls back. */
static int run_start_steps(Exec *e, const MigState *st)
{
	StepList start;
	if (!stored_steps(e, st, "start", &start))
		return fail("%s", e->err);
	e->mig_name = st->name;
	bool ok = exec_steps(e, &start, (size_t)st->start_done, false, save_start, NULL);
	plan_steps_free(&start);
	if (ok) {
		exec_log(e, "started %s: version schema %s", st->name, st->vschema);
		return 0;
	}
	char why[sizeof e->err];
	memcpy(why, e->err, sizeof why);
	exec_log(e, "start of %s failed: %s; rolling back", st->name, why);
	do_rollback(e, st, true);
	return fail("start of %s failed: %s", st->name, why);
}

static bool state_exists(Exec *e)
{
	PGresult *r = exec_query(e, "SELECT to_regclass('pgflip.migrations') IS NOT NULL", 0, NULL);
	bool yes = r && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return yes;
}

static int cmd_start(Cli *c, Exec *e, const char *path, bool complete)
{
	char err[1024] = "";
	MigFile f;
	if (!migfile_load(path, &f, err, sizeof err))
		return fail("%s", err);
	/* a version schema that could not be a route stops here, before the
	 * state schema or anything else is touched (plan_build says the same) */
	char *vschema = plan_vschema_name(&f, e->schema);
	bool vschema_ok = vschema && plan_vschema_check(&f, e->schema, vschema, err, sizeof err);
	free(vschema);
	if (!vschema_ok) {
		migfile_free(&f);
		return fail("%s", err[0] ? err : "out of memory");
	}
	int rc = 1;
	MigState active = {0}, latest = {0}, existing = {0};
	bool has_active = false, has_latest = false, has_existing = false;
	Plan *p = NULL;
	Snapshot *snap = NULL;
	json_t *pj = NULL;
	if (c->dry_run) {
		if (state_exists(e) && !state_latest(e, &latest, &has_latest)) {
			rc = fail("%s", e->err);
			goto out;
		}
	} else {
		if (!state_init(e) || !state_lock(e) || !state_active(e, &active, &has_active) ||
		    !state_get(e, f.name, &existing, &has_existing) || !state_latest(e, &latest, &has_latest)) {
			rc = fail("%s", e->err);
			goto out;
		}
		if (has_active) {
			if (strcmp(active.name, f.name) != 0) {
				rc = fail("migration %s is active in schema %s; complete or roll it back first", active.name,
					  e->schema);
				goto out;
			}
			exec_log(e, "resuming start of %s at step %d", active.name, active.start_done + 1);
			rc = run_start_steps(e, &active);
			if (rc == 0 && complete) {
				migstate_free(&active);
				if (!state_active(e, &active, &has_active))
					rc = fail("%s", e->err);
				else
					rc = do_complete(e, &active);
			}
			goto out;
		}
		if (has_existing && strcmp(existing.status, "complete") == 0) {
			rc = fail("migration %s is already complete in schema %s", f.name, e->schema);
			goto out;
		}
	}
	snap = catalog_read(e, e->schema);
	if (!snap) {
		rc = fail("%s", e->err);
		goto out;
	}
	p = plan_build(&f, snap, e->schema, has_latest ? latest.vschema : NULL, err, sizeof err);
	if (!p) {
		rc = fail("%s", err);
		goto out;
	}
	/* before anything changes, not even the state row: a migration whose
	 * expressions cannot run is refused like one the planner refuses */
	if (!exec_checks(e, &p->check)) {
		rc = fail("%s: %s", path, e->err);
		goto out;
	}
	if (c->dry_run) {
		char *text = plan_format(p);
		fputs(text ? text : "", stdout);
		free(text);
		rc = 0;
		goto out;
	}
	pj = json_pack("{s:o, s:o, s:o}", "start", plan_steps_to_json(&p->start), "complete",
		       plan_steps_to_json(&p->complete), "rollback", plan_steps_to_json(&p->rollback));
	if (pj && p->irreversible)
		json_object_set_new(pj, "irreversible", json_string(p->irreversible));
	if (!pj) {
		rc = fail("out of memory");
		goto out;
	}
	if (!state_begin(e, f.name, has_latest ? latest.name : NULL, p->vschema, f.root, pj)) {
		rc = fail("%s", e->err);
		goto out;
	}
	MigState st = {0};
	bool found;
	if (!state_active(e, &st, &found) || !found) {
		rc = fail("state row vanished: %s", e->err);
		goto out;
	}
	rc = run_start_steps(e, &st);
	if (rc == 0 && complete) {
		migstate_free(&st);
		if (!state_active(e, &st, &found))
			rc = fail("%s", e->err);
		else
			rc = do_complete(e, &st);
	}
	migstate_free(&st);
out:
	json_decref(pj);
	plan_free(p);
	snapshot_free(snap);
	migstate_free(&active);
	migstate_free(&latest);
	migstate_free(&existing);
	migfile_free(&f);
	return rc;
}

static int with_active(Exec *e, int (*fn)(Exec *, const MigState *, bool), bool force)
{
	MigState st;
	bool found;
	if (!state_init(e) || !state_lock(e) || !state_active(e, &st, &found))
		return fail("%s", e->err);
	if (!found)
		return fail("no active migration in schema %s", e->schema);
	int rc = fn(e, &st, force);
	migstate_free(&st);
	return rc;
}

static int complete_fn(Exec *e, const MigState *st, bool force)
{
	(void)force;
	return do_complete(e, st);
}

static int cmd_latest(Exec *e)
{
	if (!state_exists(e))
		return fail("no migrations in schema %s (state not initialised)", e->schema);
	MigState st;
	bool found;
	if (!state_active(e, &st, &found))
		return fail("%s", e->err);
	if (!found && !state_latest(e, &st, &found))
		return fail("%s", e->err);
	if (!found)
		return fail("no migrations in schema %s", e->schema);
	printf("%s\n", st.vschema);
	migstate_free(&st);
	return 0;
}

static int cmd_dir(Cli *c, Exec *e, const char *dir)
{
	char err[1024] = "";
	size_t n = 0;
	char **files = list_files(dir, &n, err, sizeof err);
	if (!files || err[0]) {
		free_files(files, n);
		return fail("%s", err);
	}
	if (!state_init(e)) {
		free_files(files, n);
		return fail("%s", e->err);
	}
	int rc = 0;
	size_t applied = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		char *p = join_path(dir, files[i]);
		MigFile f;
		if (!p || !migfile_load(p, &f, err, sizeof err)) {
			rc = fail("%s", err);
			free(p);
			break;
		}
		MigState st;
		bool found;
		if (!state_get(e, f.name, &st, &found)) {
			rc = fail("%s", e->err);
		} else if (!(found && strcmp(st.status, "complete") == 0)) {
			rc = cmd_start(c, e, p, true);
			applied++;
		}
		migstate_free(&st);
		migfile_free(&f);
		free(p);
	}
	free_files(files, n);
	if (rc == 0)
		exec_log(e, "%zu migration(s) applied, %zu already complete", applied, n - applied);
	return rc;
}

static bool parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return false;
	*out = (int)v;
	return true;
}

int migrate_main(int argc, char **argv)
{
	Cli c = {.dsn = "", .schema = "public"};
	exec_options_default(&c.opt);
	enum { O_LOCK = 256, O_RETRY, O_BATCH, O_DELAY, O_QUIET, O_NOPROG, O_NOCHAIN };
	static const struct option opts[] = {
		{"dsn", required_argument, NULL, 'd'},
		{"schema", required_argument, NULL, 's'},
		{"complete", no_argument, NULL, 'c'},
		{"dry-run", no_argument, NULL, 'n'},
		{"force", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{"lock-timeout", required_argument, NULL, O_LOCK},
		{"retry-total", required_argument, NULL, O_RETRY},
		{"backfill-batch-size", required_argument, NULL, O_BATCH},
		{"backfill-batch-delay", required_argument, NULL, O_DELAY},
		{"quiet", no_argument, NULL, O_QUIET},
		{"no-progress", no_argument, NULL, O_NOPROG},
		{"no-chain", no_argument, NULL, O_NOCHAIN},
		{NULL, 0, NULL, 0},
	};
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "+", opts, NULL)) != -1 || optind < argc) {
		if (ch == -1) {
			/* a positional argument: keep scanning after it (options may follow the command) */
			optind++;
			continue;
		}
		switch (ch) {
		case 'd': c.dsn = optarg; break;
		case 's': c.schema = optarg; break;
		case 'c': c.complete = true; break;
		case 'n': c.dry_run = true; break;
		case 'f': c.force = true; break;
		case 'h': usage(stdout); return 0;
		case O_LOCK:
			if (!parse_int(optarg, 1, 3600000, &c.opt.lock_timeout_ms))
				return fprintf(stderr, "pgflip migrate: --lock-timeout: expected milliseconds, 1..3600000\n"), 2;
			break;
		case O_RETRY:
			if (!parse_int(optarg, 0, 86400000, &c.opt.retry_total_ms))
				return fprintf(stderr, "pgflip migrate: --retry-total: expected milliseconds, 0..86400000\n"), 2;
			break;
		case O_BATCH:
			if (!parse_int(optarg, 1, EXEC_MAX_BATCH_SIZE, &c.opt.batch_size))
				return fprintf(stderr, "pgflip migrate: --backfill-batch-size: expected 1..%d\n", EXEC_MAX_BATCH_SIZE), 2;
			break;
		case O_DELAY:
			if (!parse_int(optarg, 0, 3600000, &c.opt.batch_delay_ms))
				return fprintf(stderr, "pgflip migrate: --backfill-batch-delay: expected milliseconds\n"), 2;
			break;
		case O_QUIET: c.opt.quiet = true; break;
		case O_NOPROG: c.opt.progress = false; break;
		case O_NOCHAIN: c.no_chain = true; break;
		default:
			fprintf(stderr, "pgflip migrate: unknown option %s\n", argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	/* positional arguments, in order, skipping options and their values */
	const char *pos[3] = {NULL, NULL, NULL};
	size_t npos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1] == '-' && a[2]) {
			const char *name = a + 2;
			bool has_eq = strchr(name, '=') != NULL;
			for (const struct option *o = opts; o->name; o++)
				if (strcmp(o->name, name) == 0 && o->has_arg == required_argument && !has_eq)
					i++;
			continue;
		}
		if (npos < 3)
			pos[npos++] = a;
		else
			return fprintf(stderr, "pgflip migrate: too many arguments\n"), 2;
	}
	if (npos == 0) {
		usage(stderr);
		return 2;
	}
	const char *cmd = pos[0];
	bool needs_arg = strcmp(cmd, "start") == 0 || strcmp(cmd, "plan") == 0 || strcmp(cmd, "migrate") == 0;
	if (needs_arg != (npos == 2)) {
		fprintf(stderr, "pgflip migrate: %s %s\n", cmd, needs_arg ? "needs one argument" : "takes no argument");
		return 2;
	}
	if (strcmp(cmd, "plan") == 0)
		return cmd_plan(&c, pos[1]);
	static const char *const known[] = {"init", "start", "complete", "rollback", "status", "migrate", "latest", NULL};
	bool ok = false;
	for (const char *const *k = known; *k; k++)
		if (strcmp(*k, cmd) == 0)
			ok = true;
	if (!ok) {
		fprintf(stderr, "pgflip migrate: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	Exec e;
	if (!exec_connect(&e, c.dsn, c.schema, &c.opt)) {
		int rc = fail("%s", e.err);
		exec_close(&e);
		return rc;
	}
	int rc;
	if (strcmp(cmd, "init") == 0)
		rc = state_init(&e) ? 0 : fail("%s", e.err);
	else if (strcmp(cmd, "start") == 0)
		rc = cmd_start(&c, &e, pos[1], c.complete);
	else if (strcmp(cmd, "complete") == 0)
		rc = with_active(&e, complete_fn, false);
	else if (strcmp(cmd, "rollback") == 0)
		rc = with_active(&e, do_rollback, c.force);
	else if (strcmp(cmd, "status") == 0)
		rc = !state_exists(&e) ? (printf("state not initialised\n"), 0) : state_print(&e, stdout) ? 0 : fail("%s", e.err);
	else if (strcmp(cmd, "migrate") == 0)
		rc = cmd_dir(&c, &e, pos[1]);
	else
		rc = cmd_latest(&e);
	exec_close(&e);
	return rc;
}
