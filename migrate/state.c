/*
 * migrate/state.c: pgflip's own state in the database, schema "pgflip".
 *
 * One row per (schema, migration): its parent (the migration completed
 * before it: history is linear), its version schema, the migration file's
 * tree, the plan's step lists as run (so complete and rollback do not depend
 * on re-planning against a changed catalog), how many start/complete steps
 * are done (a killed run resumes there), and backfill progress per table
 * (written in the same transaction as each batch). A partial unique index
 * allows one active migration per schema; a session advisory lock
 * serialises migrators.
 *
 * The same schema holds what the proxy's route store shares with every
 * pgflip instance (DESIGN.md decision 8): pgflip.routes, pgflip.route_state
 * and pgflip.instances, described in api.h. migrate_schema_ddl() creates them
 * all, so whichever side comes first (a migration or a proxy) makes the
 * whole schema, in one transaction under one advisory lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/api.h"
#include "migrate/exec.h"
#include "migrate/exec_int.h"
#include "migrate/sqlbuf.h"

/* Advisory lock key: first half fixed ("pgfl" in ASCII), second half the
 * schema's hash. */
#define STATE_LOCK_CLASS "1885824620" /* 0x7067666c */

/* CREATE ... IF NOT EXISTS still races with itself: the transaction-level
 * advisory lock serialises every creator of the schema (migrators of any
 * schema, proxies). */
static const char STATE_DDL[] =
	"BEGIN;\n"
	"SELECT pg_advisory_xact_lock(" STATE_LOCK_CLASS ", 0);\n"
	"CREATE SCHEMA IF NOT EXISTS pgflip;\n"
	"CREATE SEQUENCE IF NOT EXISTS pgflip.migrations_seq;\n"
	"CREATE TABLE IF NOT EXISTS pgflip.migrations (\n"
	"  schema text NOT NULL,\n"
	"  name text NOT NULL,\n"
	"  seq bigint NOT NULL DEFAULT nextval('pgflip.migrations_seq'),\n"
	"  parent text,\n"
	"  version_schema text NOT NULL,\n"
	"  status text NOT NULL CHECK (status IN ('active', 'complete', 'rolled_back')),\n"
	"  migration jsonb NOT NULL,\n"
	"  plan jsonb NOT NULL,\n"
	"  start_done int NOT NULL DEFAULT 0,\n"
	"  complete_done int NOT NULL DEFAULT 0,\n"
	"  backfill jsonb NOT NULL DEFAULT '{}',\n"
	"  created_at timestamptz NOT NULL DEFAULT now(),\n"
	"  updated_at timestamptz NOT NULL DEFAULT now(),\n"
	"  PRIMARY KEY (schema, name));\n"
	"CREATE UNIQUE INDEX IF NOT EXISTS migrations_one_active ON pgflip.migrations (schema) WHERE status = 'active';\n"
	"CREATE TABLE IF NOT EXISTS pgflip.routes (\n"
	"  kind text,\n"
	"  key text,\n"
	"  schema text,\n"
	"  percent int,\n"
	"  canary_key text,\n"
	"  position int,\n"
	"  PRIMARY KEY (kind, key));\n"
	"CREATE TABLE IF NOT EXISTS pgflip.route_state (\n"
	"  id boolean PRIMARY KEY DEFAULT true CHECK (id),\n"
	"  generation bigint NOT NULL,\n"
	"  changed_at timestamptz NOT NULL,\n"
	"  changed_by text NOT NULL);\n"
	"INSERT INTO pgflip.route_state (id, generation, changed_at, changed_by) VALUES (true, 0, now(), 'init')\n"
	"  ON CONFLICT DO NOTHING;\n"
	"CREATE TABLE IF NOT EXISTS pgflip.instances (\n"
	"  id text PRIMARY KEY,\n"
	"  host text,\n"
	"  pid int,\n"
	"  started_at timestamptz,\n"
	"  seen_at timestamptz NOT NULL,\n"
	"  clients jsonb NOT NULL DEFAULT '{}');\n"
	"COMMIT;\n";

const char *migrate_schema_ddl(void)
{
	return STATE_DDL;
}

void migstate_free(MigState *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->parent);
	free(s->vschema);
	free(s->status);
	json_decref(s->migration);
	json_decref(s->plan);
	json_decref(s->backfill);
	memset(s, 0, sizeof *s);
}

bool state_init(Exec *e)
{
	PGresult *r = exec_query(e, migrate_schema_ddl(), 0, NULL);
	PQclear(r);
	/* a failed statement leaves the text's transaction open and aborted */
	if (!r)
		exec_rollback_quietly(e);
	return r != NULL;
}

bool state_exists(Exec *e)
{
	PGresult *r = exec_query(e, "SELECT to_regclass('pgflip.migrations') IS NOT NULL", 0, NULL);
	bool yes = r && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return yes;
}

bool state_lock(Exec *e)
{
	const char *params[1] = {e->schema};
	long waited = 0;
	for (;;) {
		PGresult *r = exec_query(e, "SELECT pg_try_advisory_lock(" STATE_LOCK_CLASS ", hashtext($1))", 1, params);
		if (!r)
			return false;
		bool got = PQgetvalue(r, 0, 0)[0] == 't';
		PQclear(r);
		if (got)
			return true;
		if (waited == 0)
			exec_log(e, "another migrator holds the lock of schema %s; waiting", e->schema);
		if (waited >= e->opt.retry_total_ms) {
			snprintf(e->err, sizeof e->err, "another migrator holds the lock of schema %s", e->schema);
			return false;
		}
		PQclear(exec_query(e, "SELECT pg_sleep(0.2)", 0, NULL));
		waited += 200;
	}
}

static const char STATE_COLS[] =
	"SELECT name, parent, version_schema, status, migration::text, plan::text, backfill::text, start_done, complete_done "
	"FROM pgflip.migrations ";

static bool state_row(Exec *e, const char *where, int nparams, const char *const *params, MigState *out, bool *found)
{
	memset(out, 0, sizeof *out);
	*found = false;
	char sql[1024];
	snprintf(sql, sizeof sql, "%s%s", STATE_COLS, where);
	PGresult *r = exec_query(e, sql, nparams, params);
	if (!r)
		return false;
	if (PQntuples(r) > 0) {
		*found = true;
		out->name = strdup(PQgetvalue(r, 0, 0));
		out->parent = PQgetisnull(r, 0, 1) ? NULL : strdup(PQgetvalue(r, 0, 1));
		out->vschema = strdup(PQgetvalue(r, 0, 2));
		out->status = strdup(PQgetvalue(r, 0, 3));
		out->migration = json_loads(PQgetvalue(r, 0, 4), 0, NULL);
		out->plan = json_loads(PQgetvalue(r, 0, 5), 0, NULL);
		out->backfill = json_loads(PQgetvalue(r, 0, 6), 0, NULL);
		out->start_done = atoi(PQgetvalue(r, 0, 7));
		out->complete_done = atoi(PQgetvalue(r, 0, 8));
		if (!out->name || !out->vschema || !out->status || !out->migration || !out->plan) {
			PQclear(r);
			migstate_free(out);
			snprintf(e->err, sizeof e->err, "cannot read the state row (out of memory or bad JSON)");
			return false;
		}
	}
	PQclear(r);
	return true;
}

bool state_get(Exec *e, const char *name, MigState *out, bool *found)
{
	const char *params[2] = {e->schema, name};
	return state_row(e, "WHERE schema = $1 AND name = $2", 2, params, out, found);
}

bool state_active(Exec *e, MigState *out, bool *found)
{
	const char *params[1] = {e->schema};
	return state_row(e, "WHERE schema = $1 AND status = 'active'", 1, params, out, found);
}

bool state_latest(Exec *e, MigState *out, bool *found)
{
	const char *params[1] = {e->schema};
	return state_row(e, "WHERE schema = $1 AND status = 'complete' ORDER BY seq DESC LIMIT 1", 1, params, out, found);
}

bool state_begin(Exec *e, const char *name, const char *parent, const char *vschema, const json_t *migration,
		 const json_t *plan)
{
	char *mj = json_dumps(migration, JSON_COMPACT), *pj = json_dumps(plan, JSON_COMPACT);
	const char *params[6] = {e->schema, name, parent, vschema, mj, pj};
	PGresult *r = mj && pj ? exec_query(e,
					    "INSERT INTO pgflip.migrations (schema, name, parent, version_schema, status, migration, plan) "
					    "VALUES ($1, $2, $3, $4, 'active', $5::jsonb, $6::jsonb) "
					    "ON CONFLICT (schema, name) DO UPDATE SET parent = $3, version_schema = $4, status = 'active', "
					    "migration = $5::jsonb, plan = $6::jsonb, start_done = 0, complete_done = 0, backfill = '{}', "
					    "seq = nextval('pgflip.migrations_seq'), created_at = now(), updated_at = now() "
					    "WHERE pgflip.migrations.status = 'rolled_back'",
					    6, params)
				 : NULL;
	free(mj);
	free(pj);
	if (!r)
		return false;
	bool ok = atoi(PQcmdTuples(r)) == 1;
	PQclear(r);
	if (!ok)
		snprintf(e->err, sizeof e->err, "migration %s already exists in schema %s and is not rolled back", name, e->schema);
	return ok;
}

bool state_set_done(Exec *e, const char *name, const char *field, size_t next)
{
	char sql[256], n[24];
	snprintf(sql, sizeof sql, "UPDATE pgflip.migrations SET %s = $3::int, updated_at = now() WHERE schema = $1 AND name = $2",
		 strcmp(field, "complete_done") == 0 ? "complete_done" : "start_done");
	snprintf(n, sizeof n, "%zu", next);
	const char *params[3] = {e->schema, name, n};
	PGresult *r = exec_query(e, sql, 3, params);
	PQclear(r);
	return r != NULL;
}

bool state_set_status(Exec *e, const char *name, const char *status)
{
	const char *params[3] = {e->schema, name, status};
	PGresult *r = exec_query(e, "UPDATE pgflip.migrations SET status = $3, updated_at = now() WHERE schema = $1 AND name = $2",
				 3, params);
	PQclear(r);
	return r != NULL;
}

json_t *state_history(Exec *e)
{
	e->err[0] = '\0';
	if (!state_exists(e))
		return e->err[0] ? NULL : json_array();
	const char *params[1] = {e->schema};
	PGresult *r = exec_query(e,
				 "SELECT coalesce(json_agg(json_build_object('name', name, 'parent', parent, "
				 "'version_schema', version_schema, 'status', status, 'start_done', start_done, "
				 "'start_steps', jsonb_array_length(plan -> 'start'), 'complete_done', complete_done, "
				 "'complete_steps', jsonb_array_length(plan -> 'complete'), 'backfill', backfill, "
				 "'origin', coalesce(plan ->> 'origin', 'pgflip'), "
				 "'created_at', created_at, 'updated_at', updated_at) ORDER BY seq), '[]') "
				 "FROM pgflip.migrations WHERE schema = $1",
				 1, params);
	if (!r)
		return NULL;
	json_error_t je;
	json_t *j = json_loads(PQgetvalue(r, 0, 0), 0, &je);
	PQclear(r);
	if (!json_is_array(j)) {
		json_decref(j);
		snprintf(e->err, sizeof e->err, "cannot read the migrations' history: %s", je.text);
		return NULL;
	}
	return j;
}

json_t *state_files(Exec *e)
{
	const char *params[1] = {e->schema};
	PGresult *r = exec_query(e,
				 "SELECT coalesce(json_agg(json_build_object('name', name, 'status', status, 'migration', migration) "
				 "ORDER BY seq), '[]') FROM pgflip.migrations WHERE schema = $1 AND status <> 'rolled_back'",
				 1, params);
	if (!r)
		return NULL;
	json_t *j = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
	PQclear(r);
	if (!json_is_array(j)) {
		json_decref(j);
		snprintf(e->err, sizeof e->err, "cannot read the stored migrations (out of memory)");
		return NULL;
	}
	return j;
}

/*
 * pgroll's history of e->schema in state schema PG (pkg/state/init.sql:
 * PG.migrations (schema, name, migration jsonb, created_at, updated_at,
 * parent, done, resulting_schema, migration_type), linear through parent),
 * oldest first: name, parent, migration, created_at, updated_at, done, its
 * type ("pgroll" when the column predates it), and its version schema as
 * pgroll names it (SCHEMA_ + migration.version_schema, else the name) with
 * whether that schema exists. $1 = PG.migrations as text, $2 = schema.
 */
static const char PGROLL_CHAIN[] =
	"WITH RECURSIVE m AS (SELECT to_jsonb(x) AS j FROM %s.migrations x WHERE x.schema = $1), "
	"chain AS (SELECT j, 0 AS depth FROM m WHERE j ->> 'parent' IS NULL "
	"UNION ALL SELECT m.j, chain.depth + 1 FROM m JOIN chain ON m.j ->> 'parent' = chain.j ->> 'name' "
	"WHERE chain.depth < 100000) "
	"SELECT j ->> 'name', j ->> 'parent', (j -> 'migration')::text, j ->> 'created_at', j ->> 'updated_at', "
	"coalesce((j ->> 'done')::boolean, true), coalesce(j ->> 'migration_type', 'pgroll'), "
	"$1 || '_' || coalesce(j -> 'migration' ->> 'version_schema', j ->> 'name'), "
	"EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1 || '_' || coalesce(j -> 'migration' ->> 'version_schema', "
	"j ->> 'name')), (SELECT count(*) FROM m) FROM chain ORDER BY depth";

/* Inserts row I of pgroll's chain R as a complete migration whose version
 * schema is VSCHEMA. */
static bool adopt_row(Exec *e, PGresult *r, int i, const char *vschema)
{
	const char *params[8] = {e->schema,
				 PQgetvalue(r, i, 0),
				 PQgetisnull(r, i, 1) ? NULL : PQgetvalue(r, i, 1),
				 vschema,
				 PQgetvalue(r, i, 2),
				 PQgetvalue(r, i, 6),
				 PQgetvalue(r, i, 3),
				 PQgetvalue(r, i, 4)};
	PGresult *x = exec_query(e,
				 "INSERT INTO pgflip.migrations (schema, name, parent, version_schema, status, migration, plan, "
				 "created_at, updated_at) VALUES ($1, $2, $3, $4, 'complete', $5::jsonb, "
				 "jsonb_build_object('start', '[]'::jsonb, 'complete', '[]'::jsonb, 'rollback', '[]'::jsonb, "
				 "'origin', 'pgroll', 'pgroll_type', $6::text), $7::timestamptz, $8::timestamptz)",
				 8, params);
	PQclear(x);
	return x != NULL;
}

bool state_adopt_pgroll(Exec *e, const char *pg, char *latest, size_t latestlen, int *count)
{
	*count = 0;
	SqlBuf q;
	sqlbuf_init(&q);
	sqlbuf_ident(&q, pg);
	char *qpg = sqlbuf_steal(&q);
	char sql[sizeof PGROLL_CHAIN + 200];
	if (!qpg || strlen(qpg) > 150) {
		free(qpg);
		snprintf(e->err, sizeof e->err, "pgroll schema name too long");
		return false;
	}
	snprintf(sql, sizeof sql, PGROLL_CHAIN, qpg);
	free(qpg);
	const char *params[1] = {e->schema};
	PGresult *r = exec_query(e, sql, 1, params);
	if (!r)
		return false;
	int n = PQntuples(r);
	char msg[512] = "";
	/* the version schema of each row: its own when it exists (pgroll keeps
	 * only the latest ones), else the one before it, as pgroll's
	 * find_version_schema ignores migrations without one (inferred) */
	int last_vs = -1;
	for (int i = 0; i < n; i++)
		if (PQgetvalue(r, i, 8)[0] == 't')
			last_vs = i;
	if (n == 0) {
		snprintf(msg, sizeof msg, "%s.migrations has no migration of schema %s", pg, e->schema);
	} else if (n != atoi(PQgetvalue(r, 0, 9))) {
		snprintf(msg, sizeof msg, "%s.migrations of schema %s is not one linear history (%d of %s rows chain from the first)",
			 pg, e->schema, n, PQgetvalue(r, 0, 9));
	} else if (PQgetvalue(r, n - 1, 5)[0] != 't') {
		snprintf(msg, sizeof msg, "pgroll migration %s is active in schema %s: complete or roll it back with pgroll first",
			 PQgetvalue(r, n - 1, 0), e->schema);
	} else if (last_vs < 0) {
		snprintf(msg, sizeof msg, "no version schema of pgroll's history of schema %s exists (looked for %s...)",
			 e->schema, PQgetvalue(r, n - 1, 7));
	}
	if (msg[0]) {
		PQclear(r);
		snprintf(e->err, sizeof e->err, "%s", msg);
		return false;
	}
	bool ok = exec_simple(e, "BEGIN");
	const char *vs = PQgetvalue(r, 0, 7);
	for (int i = 0; ok && i < n; i++) {
		if (PQgetvalue(r, i, 8)[0] == 't' || i == 0)
			vs = PQgetvalue(r, i, 7);
		ok = adopt_row(e, r, i, i >= last_vs ? PQgetvalue(r, last_vs, 7) : vs);
	}
	ok = ok && exec_simple(e, "COMMIT");
	if (!ok)
		exec_rollback_quietly(e);
	if (ok) {
		snprintf(latest, latestlen, "%s", PQgetvalue(r, last_vs, 7));
		*count = n;
	}
	PQclear(r);
	return ok;
}
