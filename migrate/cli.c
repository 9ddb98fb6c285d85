/*
 * migrate/cli.c: `pgflip migrate` — the command line over the migration API
 * (api.h): it parses arguments, calls one API function and prints what it
 * answers. The flows themselves are in api.c, shared with the daemon.
 *
 *   pgflip migrate [--dsn CONNINFO] [--schema NAME] [options] COMMAND [ARG]
 *
 * Exit status: 0 done, 1 failed (one line on stderr, "pgflip migrate:
 * REASON"), 2 usage. Informational lines go to stderr as the flows log them
 * (--quiet: none); the plan (plan, start --dry-run), status and latest go
 * to stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/api.h"
#include "migrate/cli_check.h"
#include "migrate/migrate.h"

typedef struct Cli {
	MigrateRequest rq;
	bool complete;
	bool dry_run;
	bool force;
	bool no_chain;
	bool from_pgroll;           /* baseline --from-pgroll */
	const char *pgroll_schema;  /* --pgroll-schema NAME (pgroll) */
	const char *dir;            /* create --dir DIR (.) */
	bool json;            /* convert --json, lint/validate --format json */
	const char *pos[3];   /* COMMAND [ARG] */
	size_t npos;
} Cli;

enum { O_LOCK = 256, O_RETRY, O_BATCH, O_DELAY, O_QUIET, O_NOPROG, O_NOCHAIN, O_ROLE, O_FROM_PGROLL, O_PGROLL_SCHEMA, O_DIR, O_WORKERS,
       O_JSON, O_FORMAT };

static const struct option CLI_OPTS[] = {
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
	{"role", required_argument, NULL, O_ROLE},
	{"from-pgroll", no_argument, NULL, O_FROM_PGROLL},
	{"pgroll-schema", required_argument, NULL, O_PGROLL_SCHEMA},
	{"dir", required_argument, NULL, O_DIR},
	{"backfill-workers", required_argument, NULL, O_WORKERS},
	{"json", no_argument, NULL, O_JSON},
	{"format", required_argument, NULL, O_FORMAT},
	{NULL, 0, NULL, 0},
};

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
	      "  baseline NAME        record the schema as it is as migration NAME (a database never\n"
	      "                       migrated with pgflip); --from-pgroll [--pgroll-schema S]: adopt\n"
	      "                       pgroll's history instead (no NAME)\n"
	      "  pull DIR             write the migrations stored in the database to DIR\n"
	      "  create NAME          new empty migration NN_NAME.yaml in --dir DIR (.)\n"
	      "  convert [FILE|-]     SQL DDL (Alembic's offline SQL, Django sqlmigrate, drizzle-kit) to a\n"
	      "                       migration file on stdout: YAML, or JSON with --json\n"
	      "  lint FILE|DIR        rules on locks and old-code breakage; exit 1 on an error\n"
	      "                       [--format text|json]\n"
	      "  validate FILE        load, plan against the database and lint; changes nothing\n"
	      "                       [--format text|json]\n"
	      "start refuses a file with lint errors unless --force.\n"
	      "options: --lock-timeout MS (500) --retry-total MS (60000) --backfill-batch-size N (10000)\n"
	      "         --backfill-batch-delay MS (0) --backfill-workers N (1: connections, each\n"
	      "         filling its own key range) --quiet --no-progress\n"
	      "         --role ROLE (SET ROLE before the DDL: what the migration creates is ROLE's)\n"
	      "The DSN defaults to libpq's environment (PGHOST, PGPORT, PGDATABASE...).\n",
	      out);
}

/* Exit status of a flow's result: its status, and its reason on stderr. */
static int report(const MigrateResult *r)
{
	if (r->status != MIGRATE_OK)
		fprintf(stderr, "pgflip migrate: %s\n", r->err);
	return (int)r->status;
}

/* ---- status and latest, from migrate_history ---- */

/* "TABLE N rows (finished), ..." of a state row's backfill object, or "-". */
static void print_backfill(FILE *out, json_t *bf)
{
	const char *table;
	json_t *v;
	bool any = false;
	json_object_foreach(bf, table, v) {
		json_int_t done = json_integer_value(json_object_get(v, "done"));
		json_t *ranges = json_object_get(v, "ranges"), *r; /* a parallel backfill running */
		size_t i;
		json_array_foreach(ranges, i, r)
			done += json_integer_value(json_object_get(r, "done"));
		fprintf(out, "%s%s %" JSON_INTEGER_FORMAT " rows%s", any ? ", " : "", table, done,
			json_is_true(json_object_get(v, "finished"))
				? " (finished)"
				: ranges ? " (in progress, parallel)" : " (in progress)");
		any = true;
	}
	if (!any)
		fputs("-", out);
}

static int cmd_status(const Cli *c)
{
	char err[1024] = "";
	json_t *h = migrate_history(&c->rq, err, sizeof err);
	if (!h)
		return fprintf(stderr, "pgflip migrate: %s\n", err), 1;
	if (json_array_size(h) == 0)
		printf("no migrations in schema %s\n", c->rq.schema);
	size_t i;
	json_t *m;
	json_array_foreach(h, i, m) {
		/* updated_at as JSON is "YYYY-MM-DDTHH:MM:SS.ffffff+TZ" */
		char updated[20];
		snprintf(updated, sizeof updated, "%s", mj_str(m, "updated_at", ""));
		char *t = strchr(updated, 'T');
		if (t)
			*t = ' ';
		printf("%s\t%s\tversion_schema=%s\tparent=%s\tbackfill=", mj_str(m, "name", ""), mj_str(m, "status", ""),
		       mj_str(m, "version_schema", ""), mj_str(m, "parent", "-"));
		print_backfill(stdout, json_object_get(m, "backfill"));
		const char *origin = mj_str(m, "origin", "pgflip");
		printf("\tupdated=%s%s%s\n", updated, strcmp(origin, "pgflip") ? "\torigin=" : "",
		       strcmp(origin, "pgflip") ? origin : "");
	}
	json_decref(h);
	return 0;
}

/* The latest version schema: the active migration's, else the newest
 * completed one's (history is oldest first). */
static int cmd_latest(const Cli *c)
{
	char err[1024] = "";
	json_t *h = migrate_history(&c->rq, err, sizeof err);
	if (!h)
		return fprintf(stderr, "pgflip migrate: %s\n", err), 1;
	const char *vschema = NULL;
	size_t i;
	json_t *m;
	json_array_foreach(h, i, m) {
		const char *st = mj_str(m, "status", "");
		if (strcmp(st, "active") == 0) {
			vschema = mj_str(m, "version_schema", NULL);
			break;
		}
		if (strcmp(st, "complete") == 0)
			vschema = mj_str(m, "version_schema", NULL);
	}
	int rc = 0;
	if (vschema) {
		printf("%s\n", vschema);
	} else {
		fprintf(stderr, "pgflip migrate: no migrations in schema %s\n", c->rq.schema);
		rc = 1;
	}
	json_decref(h);
	return rc;
}

static int cmd_plan(const Cli *c, const char *path)
{
	MigrateResult r;
	char *text = migrate_plan(&c->rq, path, !c->no_chain, &r);
	if (!text)
		return report(&r);
	fputs(text, stdout);
	free(text);
	return 0;
}

/* ---- arguments ---- */

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

/* One option CH (getopt_long's answer) with ARG. Returns -1 when taken,
 * else the exit status (0 after --help, 2 on a usage error). */
static int cli_option(Cli *c, int ch, const char *arg, const char *word)
{
	ExecOptions *o = &c->rq.opt;
	switch (ch) {
	case 'd': c->rq.dsn = arg; break;
	case 's': c->rq.schema = arg; break;
	case 'c': c->complete = true; break;
	case 'n': c->dry_run = true; break;
	case 'f': c->force = c->rq.lint_force = true; break;
	case 'h': usage(stdout); return 0;
	case O_LOCK:
		if (!parse_int(arg, 1, 3600000, &o->lock_timeout_ms))
			return fprintf(stderr, "pgflip migrate: --lock-timeout: expected milliseconds, 1..3600000\n"), 2;
		break;
	case O_RETRY:
		if (!parse_int(arg, 0, 86400000, &o->retry_total_ms))
			return fprintf(stderr, "pgflip migrate: --retry-total: expected milliseconds, 0..86400000\n"), 2;
		break;
	case O_BATCH:
		if (!parse_int(arg, 1, EXEC_MAX_BATCH_SIZE, &o->batch_size))
			return fprintf(stderr, "pgflip migrate: --backfill-batch-size: expected 1..%d\n", EXEC_MAX_BATCH_SIZE), 2;
		break;
	case O_DELAY:
		if (!parse_int(arg, 0, 3600000, &o->batch_delay_ms))
			return fprintf(stderr, "pgflip migrate: --backfill-batch-delay: expected milliseconds\n"), 2;
		break;
	case O_WORKERS:
		if (!parse_int(arg, 1, EXEC_MAX_BACKFILL_WORKERS, &o->backfill_workers))
			return fprintf(stderr, "pgflip migrate: --backfill-workers: expected 1..%d\n", EXEC_MAX_BACKFILL_WORKERS),
			       2;
		break;
	case O_QUIET: o->quiet = true; break;
	case O_NOPROG: o->progress = false; break;
	case O_NOCHAIN: c->no_chain = true; break;
	case O_ROLE:
		if (!arg[0])
			return fprintf(stderr, "pgflip migrate: --role: expected a role name\n"), 2;
		o->role = arg;
		break;
	case O_FROM_PGROLL: c->from_pgroll = true; break;
	case O_PGROLL_SCHEMA: c->pgroll_schema = arg; break;
	case O_DIR: c->dir = arg; break;
	case O_JSON: c->json = true; break;
	case O_FORMAT:
		if (strcmp(arg, "json") != 0 && strcmp(arg, "text") != 0)
			return fprintf(stderr, "pgflip migrate: --format: expected text or json\n"), 2;
		c->json = strcmp(arg, "json") == 0;
		break;
	default:
		fprintf(stderr, "pgflip migrate: unknown option %s\n", word);
		usage(stderr);
		return 2;
	}
	return -1;
}

/* Positional arguments, in order, skipping options and their values.
 * Returns -1, or 2 when there are too many. */
static int cli_positionals(Cli *c, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1] == '-' && a[2]) {
			const char *name = a + 2;
			bool has_eq = strchr(name, '=') != NULL;
			for (const struct option *o = CLI_OPTS; o->name; o++)
				if (strcmp(o->name, name) == 0 && o->has_arg == required_argument && !has_eq)
					i++;
			continue;
		}
		if (c->npos == 3)
			return fprintf(stderr, "pgflip migrate: too many arguments\n"), 2;
		c->pos[c->npos++] = a;
	}
	return -1;
}

/* Options may come before or after the command. Returns -1 when C is
 * filled, else the exit status. */
static int cli_parse(Cli *c, int argc, char **argv)
{
	optind = 1;
	opterr = 0;
	int ch;
	while ((ch = getopt_long(argc, argv, "+", CLI_OPTS, NULL)) != -1 || optind < argc) {
		if (ch == -1) {
			/* a positional argument: keep scanning after it */
			optind++;
			continue;
		}
		int rc = cli_option(c, ch, optarg, argv[optind - 1]);
		if (rc >= 0)
			return rc;
	}
	return cli_positionals(c, argc, argv);
}

static bool known_command(const char *cmd)
{
	static const char *const known[] = {"init", "start", "complete", "rollback", "status", "migrate", "latest", "plan",
					    "baseline", "pull", "create", "convert", "lint", "validate", NULL};
	for (const char *const *k = known; *k; k++)
		if (strcmp(*k, cmd) == 0)
			return true;
	return false;
}

/* ---- baseline, pull, create ---- */

/* Whether command CMD takes one argument (else none). */
static bool cli_needs_arg(const Cli *c, const char *cmd)
{
	if (strcmp(cmd, "baseline") == 0)
		return !c->from_pgroll;
	return strcmp(cmd, "start") == 0 || strcmp(cmd, "plan") == 0 || strcmp(cmd, "migrate") == 0 ||
	       strcmp(cmd, "pull") == 0 || strcmp(cmd, "create") == 0 || strcmp(cmd, "lint") == 0 ||
	       strcmp(cmd, "validate") == 0;
}

/* baseline, pull or create with ARG: the exit status, or -1 for another CMD. */
static int cli_run_history(Cli *c, const char *cmd, const char *arg)
{
	MigrateResult r;
	if (strcmp(cmd, "baseline") == 0 && c->from_pgroll)
		migrate_adopt_pgroll(&c->rq, c->pgroll_schema, &r);
	else if (strcmp(cmd, "baseline") == 0)
		migrate_baseline(&c->rq, arg, &r);
	else if (strcmp(cmd, "pull") == 0)
		migrate_pull(&c->rq, arg, &r);
	else if (strcmp(cmd, "create") == 0) {
		char path[4096];
		if (migrate_create(&c->rq, c->dir ? c->dir : ".", arg, path, sizeof path, &r) == MIGRATE_OK)
			printf("%s\n", path);
	} else
		return -1;
	return report(&r);
}

/* Runs command CMD (known) with its argument ARG (or NULL). */
static int cli_run(Cli *c, const char *cmd, const char *arg)
{
	MigrateResult r;
	int hrc = cli_run_history(c, cmd, arg);
	if (hrc >= 0)
		return hrc;
	if (strcmp(cmd, "plan") == 0)
		return cmd_plan(c, arg);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(c);
	if (strcmp(cmd, "latest") == 0)
		return cmd_latest(c);
	if (strcmp(cmd, "convert") == 0)
		return cli_convert(c->rq.schema, arg, c->json);
	if (strcmp(cmd, "lint") == 0)
		return cli_lint(arg, c->json);
	if (strcmp(cmd, "validate") == 0)
		return cli_validate(&c->rq, arg, c->json);
	if (strcmp(cmd, "init") == 0)
		migrate_init(&c->rq, &r);
	else if (strcmp(cmd, "start") == 0)
		migrate_start_file(&c->rq, arg, c->complete, c->dry_run, &r);
	else if (strcmp(cmd, "complete") == 0)
		migrate_complete(&c->rq, &r);
	else if (strcmp(cmd, "rollback") == 0)
		migrate_rollback(&c->rq, c->force, &r);
	else
		migrate_dir(&c->rq, arg, &r);
	return report(&r);
}

int migrate_main(int argc, char **argv)
{
	Cli c = {.rq = {.dsn = "", .schema = "public"}};
	exec_options_default(&c.rq.opt);
	int rc = cli_parse(&c, argc, argv);
	if (rc >= 0)
		return rc;
	if (c.npos == 0) {
		usage(stderr);
		return 2;
	}
	const char *cmd = c.pos[0];
	bool needs_arg = cli_needs_arg(&c, cmd);
	bool may_arg = strcmp(cmd, "convert") == 0;
	if (may_arg ? c.npos > 2 : needs_arg != (c.npos == 2)) {
		fprintf(stderr, "pgflip migrate: %s %s\n", cmd,
			may_arg ? "takes at most one argument" : needs_arg ? "needs one argument" : "takes no argument");
		return 2;
	}
	if (!known_command(cmd)) {
		fprintf(stderr, "pgflip migrate: unknown command '%s'\n", cmd);
		usage(stderr);
		return 2;
	}
	return cli_run(&c, cmd, c.npos == 2 ? c.pos[1] : NULL);
}
