/*
 * migrate/schema_ddl_tmp.c: TEMPORARY stand-in for migrate_schema_ddl()
 * (migrate/api.h), written on the `rstore` branch so that the proxy's route
 * store (proxy/routestore.c) can be built and tested before the migrate/
 * implementation lands. The lead drops this file when merging that one.
 *
 * The SQL follows api.h's description word for word: schema pgflip,
 * pgflip.migrations exactly as state.c's STATE_DDL creates it, the three
 * tables of the route store, and the single pgflip.route_state row with
 * generation 0 when absent, in one transaction under the state schema's
 * advisory lock (state.c's STATE_LOCK_CLASS, 0x7067666c, sub-key 0), so that
 * two instances starting at once do not race on CREATE ... IF NOT EXISTS.
 */
#include "migrate/api.h"

static const char SCHEMA_DDL_TMP[] =
	"BEGIN;\n"
	"SELECT pg_advisory_xact_lock(1885824620, 0);\n"
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
	"INSERT INTO pgflip.route_state (id, generation, changed_at, changed_by)\n"
	"  VALUES (true, 0, now(), 'pgflip schema') ON CONFLICT (id) DO NOTHING;\n"
	"CREATE TABLE IF NOT EXISTS pgflip.instances (\n"
	"  id text PRIMARY KEY,\n"
	"  host text,\n"
	"  pid int,\n"
	"  started_at timestamptz,\n"
	"  seen_at timestamptz NOT NULL,\n"
	"  clients jsonb NOT NULL DEFAULT '{}');\n"
	"COMMIT";

const char *migrate_schema_ddl(void) { return SCHEMA_DDL_TMP; }
