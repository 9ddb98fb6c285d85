/*
 * tests/integration/it_migrate_api.c: the migration API (migrate/api.h)
 * called directly, as the daemon's worker calls it, against the database
 * named by the conninfo in argv[1] (tests/integration/it_migrate_api.sh
 * makes it). Prints TAP lines.
 *
 * What it shows: files from memory (YAML and JSON, the name from the file
 * name); the progress hook's phases (plan, start, backfill, done) and a
 * backfill's rows rising batch by batch to the estimate; the log hook taking
 * the lines stderr would have had; a cancel from another thread stopping a
 * backfill at a batch boundary, the migration left active and resumed by the
 * next start; the drop guard holding rollback and complete while a route,
 * a live instance's clients or may_drop say the version schema is in use,
 * and letting them go once nothing does (an expired instance counts for
 * nothing); migrate_history and migrate_schema_ddl.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/api.h"
#include "tests/integration/it_tap.h"

#define ROWS 20000
#define BATCH 1000
#define MAX_REPORTS 4096

static PGconn *db;

/* One value of SQL on the test connection ("" when none or on error). */
static const char *q(const char *sql)
{
	static char val[1024]; /* test program: one thread asks */
	PGresult *r = PQexec(db, sql);
	val[0] = '\0';
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
		snprintf(val, sizeof val, "%s", PQgetvalue(r, 0, 0));
	else if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		printf("# %s: %s", sql, PQerrorMessage(db));
	PQclear(r);
	return val;
}

/* ---- what the hooks saw ---- */

typedef struct Report {
	MigratePhase phase;
	size_t step;
	char note[256];
	int64_t rows_done, rows_total;
	double rows_per_s, eta_s;
	int64_t lock_wait_ms;
	int blocker_pid;
	char blocker_query[128];
	bool backfill_report; /* a report with a table and a total (the backfill's own) */
} Report;

typedef struct Seen {
	Report r[MAX_REPORTS];
	size_t n;
	char log[16384];
	atomic_llong rows_done;   /* read by the cancelling thread */
	int may_drop_calls, may_drop_no; /* may_drop refuses its first MAY_DROP_NO calls */
	char may_drop_vschema[64];
} Seen;

static void on_progress(void *arg, const MigrateProgress *p)
{
	Seen *s = arg;
	if (s->n < MAX_REPORTS) {
		Report *r = &s->r[s->n++];
		r->phase = p->phase;
		r->step = p->step;
		snprintf(r->note, sizeof r->note, "%s", p->note ? p->note : "");
		r->rows_done = p->rows_done;
		r->rows_total = p->rows_total;
		r->rows_per_s = p->rows_per_s;
		r->eta_s = p->eta_s;
		r->lock_wait_ms = p->lock_wait_ms;
		r->blocker_pid = p->blocker_pid;
		snprintf(r->blocker_query, sizeof r->blocker_query, "%s", p->blocker_query ? p->blocker_query : "");
		r->backfill_report = p->phase == MIGRATE_PHASE_BACKFILL && p->rows_total >= 0;
	}
	if (p->phase == MIGRATE_PHASE_BACKFILL)
		atomic_store(&s->rows_done, p->rows_done);
}

static void on_log(void *arg, const char *line)
{
	Seen *s = arg;
	size_t n = strlen(s->log);
	snprintf(s->log + n, sizeof s->log - n, "%s\n", line);
}

static bool on_may_drop(void *arg, const char *vschema, char *err, size_t errlen)
{
	Seen *s = arg;
	snprintf(s->may_drop_vschema, sizeof s->may_drop_vschema, "%s", vschema);
	if (s->may_drop_calls++ < s->may_drop_no) {
		snprintf(err, errlen, "2 clients still routed to %s: 17, 18", vschema);
		return false;
	}
	return true;
}

/* The phases reported, consecutive repeats folded: "plan start ...". */
static void phases(const Seen *s, char *out, size_t len)
{
	out[0] = '\0';
	MigratePhase last = MIGRATE_PHASE_IDLE;
	for (size_t i = 0; i < s->n; i++) {
		if (i > 0 && s->r[i].phase == last)
			continue;
		last = s->r[i].phase;
		size_t n = strlen(out);
		snprintf(out + n, len - n, "%s%s", n ? " " : "", migrate_phase_name(last));
	}
}

static bool saw_note(const Seen *s, MigratePhase phase, const char *part)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->r[i].phase == phase && strstr(s->r[i].note, part))
			return true;
	return false;
}

static MigrateRequest request(const char *dsn, Seen *s)
{
	MigrateRequest rq = {.dsn = dsn, .schema = "public"};
	exec_options_default(&rq.opt);
	rq.opt.progress = false;
	rq.opt.batch_size = BATCH;
	memset(s, 0, sizeof *s);
	rq.hooks = (MigrateHooks){.progress = on_progress, .log = on_log, .arg = s};
	return rq;
}

/* ---- stderr, captured around a call ---- */

static int saved_stderr = -1;
static char stderr_path[] = "/tmp/it_migrate_api.XXXXXX";

static void stderr_capture(void)
{
	int fd = mkstemp(stderr_path);
	fflush(stderr);
	saved_stderr = dup(2);
	dup2(fd, 2);
	close(fd);
}

/* Bytes written to stderr since stderr_capture(). */
static long stderr_release(void)
{
	fflush(stderr);
	dup2(saved_stderr, 2);
	close(saved_stderr);
	FILE *f = fopen(stderr_path, "r");
	long n = -1;
	if (f && fseek(f, 0, SEEK_END) == 0)
		n = ftell(f);
	if (f)
		fclose(f);
	unlink(stderr_path);
	return n;
}

/* ---- the migrations ---- */

static const char BASE_YAML[] = "operations:\n"
				"  - create_table:\n"
				"      name: t\n"
				"      columns: [{name: id, type: integer, pk: true}, {name: v, type: text}]\n";
static const char UPPER_JSON[] = "{\"operations\": [{\"add_column\": {\"table\": \"t\", \"up\": \"upper(v)\","
				 " \"column\": {\"name\": \"u\", \"type\": \"text\", \"nullable\": true}}}]}";

static void test_base(const char *dsn)
{
	Seen s;
	MigrateRequest rq = request(dsn, &s);
	MigrateResult out;
	MigrateStatus st = migrate_start(&rq, "01_base.yaml", BASE_YAML, strlen(BASE_YAML), true, false, &out);
	tap_check(st == MIGRATE_OK && out.status == MIGRATE_OK, "base from memory (YAML) started and completed: %s", out.err);
	tap_check(strcmp(out.migration, "01_base") == 0 && strcmp(out.vschema, "public_01_base") == 0 && !out.previous[0],
	      "base: the name comes from the file name (%s, %s, previous '%s')", out.migration, out.vschema, out.previous);
	char sql[128];
	snprintf(sql, sizeof sql, "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, %d) g", ROWS);
	q(sql);
	tap_check(atoi(q("SELECT count(*) FROM t")) == ROWS, "base: %d rows", ROWS);
}

static void test_progress_and_log(const char *dsn)
{
	Seen s;
	MigrateRequest rq = request(dsn, &s);
	MigrateResult out;
	stderr_capture();
	MigrateStatus st = migrate_start(&rq, "02_upper.json", UPPER_JSON, strlen(UPPER_JSON), false, false, &out);
	long on_stderr = stderr_release();
	tap_check(st == MIGRATE_OK, "start 02_upper from memory (JSON): %s", out.err);
	tap_check(strcmp(out.vschema, "public_02_upper") == 0 && strcmp(out.previous, "public_01_base") == 0,
	      "result names the version schema and the previous one (%s, %s)", out.vschema, out.previous);
	char ph[256];
	phases(&s, ph, sizeof ph);
	tap_check(strcmp(ph, "plan start backfill done") == 0, "phases: '%s'", ph);

	size_t nbf = 0;
	bool rising = true, by_batch = true;
	const Report *first = NULL, *last = NULL;
	for (size_t i = 0; i < s.n; i++) {
		const Report *r = &s.r[i];
		if (!r->backfill_report)
			continue;
		if (last && r->rows_done < last->rows_done)
			rising = false;
		if (last && r->rows_done != last->rows_done + BATCH && r->rows_done != last->rows_done)
			by_batch = false;
		if (!first)
			first = r;
		last = r;
		nbf++;
	}
	tap_check(first && first->rows_done == 0 && first->rows_total == ROWS,
	      "backfill: first report 0 of an estimate of %d rows (got %lld of %lld)", ROWS,
	      first ? (long long)first->rows_done : -1LL, first ? (long long)first->rows_total : -1LL);
	tap_check(nbf >= ROWS / BATCH + 1, "backfill: a report after each batch (%zu reports)", nbf);
	tap_check(rising && by_batch, "backfill: rows_done rises by %d a batch", BATCH);
	tap_check(last && last->rows_done == ROWS && last->rows_total == ROWS && last->eta_s == 0,
	      "backfill: last report %d of %d rows, ETA 0 (got %lld of %lld, ETA %.3f)", ROWS, ROWS,
	      last ? (long long)last->rows_done : -1LL, last ? (long long)last->rows_total : -1LL, last ? last->eta_s : -1);
	tap_check(last && last->rows_per_s > 0, "backfill: rows/s measured (%.0f)", last ? last->rows_per_s : 0.0);
	tap_check(atoi(q("SELECT count(*) FROM t WHERE _pgflip_new_u IS DISTINCT FROM upper(v)")) == 0,
	      "backfill: every row filled");
	tap_check(strstr(s.log, "backfilling public.t (keyset batches)\n") && strstr(s.log, "started 02_upper: version schema public_02_upper\n"),
	      "log hook received the flow's lines");
	tap_check(on_stderr == 0, "log hook: nothing written to stderr (%ld bytes)", on_stderr);
}

/* The migration's state row: "status start_done done finished". */
static const char *state_of(const char *name)
{
	char sql[512];
	snprintf(sql, sizeof sql,
		 "SELECT status || ' ' || coalesce(backfill -> 't' ->> 'done', '-') || ' ' || "
		 "coalesce(backfill -> 't' ->> 'finished', '-') FROM pgflip.migrations WHERE name = '%s'",
		 name);
	return q(sql);
}

/* A row of pgflip.routes, as the proxy's route store writes it. */
static void add_route(const char *kind, const char *key, const char *schema)
{
	char sql[256];
	snprintf(sql, sizeof sql, "INSERT INTO pgflip.routes (kind, key, schema, position) VALUES ('%s', '%s', '%s', 1)",
		 kind, key, schema);
	q(sql);
}

static void test_rollback_guard(const char *dsn)
{
	Seen s;
	MigrateRequest rq = request(dsn, &s);
	rq.unused_timeout_ms = 300;
	MigrateResult out;
	add_route("app", "billing-*", "public_02_upper");
	int64_t t0 = exec_now_ms();
	MigrateStatus st = migrate_rollback(&rq, false, &out);
	int64_t took = exec_now_ms() - t0;
	tap_check(st == MIGRATE_FAILED && strstr(out.err, "public_02_upper") && strstr(out.err, "app billing-*"),
	      "rollback waits for a route naming its version schema, then fails naming it: %s", out.err);
	tap_check(took >= 300 && took < 5000, "rollback: waited unused_timeout_ms (%lld ms)", (long long)took);
	tap_check(saw_note(&s, MIGRATE_PHASE_WAIT_UNUSED, "app billing-*"), "rollback: reported wait_unused with the route");
	tap_check(strncmp(state_of("02_upper"), "active", 6) == 0 && atoi(q("SELECT count(*) FROM pg_namespace WHERE nspname = 'public_02_upper'")) == 1,
	      "rollback held: migration still active, version schema still there");

	q("DELETE FROM pgflip.routes");
	q("INSERT INTO pgflip.instances (id, host, pid, started_at, seen_at, clients) "
	  "VALUES ('web-1', 'h', 1, now(), now(), '{\"public_02_upper\": 2, \"public_01_base\": 0}')");
	st = migrate_rollback(&rq, false, &out);
	tap_check(st == MIGRATE_FAILED && strstr(out.err, "web-1 (2 clients)"),
	      "rollback waits for a live instance's clients, then fails naming it: %s", out.err);

	q("UPDATE pgflip.instances SET seen_at = now() - interval '1 minute'");
	st = migrate_rollback(&rq, false, &out);
	tap_check(st == MIGRATE_OK, "an expired instance does not hold rollback: %s", out.err);
	char sv[64];
	snprintf(sv, sizeof sv, "%s", state_of("02_upper"));
	tap_check(strncmp(sv, "rolled_back", 11) == 0 &&
		      atoi(q("SELECT count(*) FROM pg_namespace WHERE nspname = 'public_02_upper'")) == 0,
	      "rolled back: state row and version schema (%s)", sv);
	q("DELETE FROM pgflip.instances");
}

typedef struct Canceller {
	Seen *seen;
	atomic_bool *cancel;
	long long at;
} Canceller;

static void *cancel_thread(void *arg)
{
	Canceller *c = arg;
	for (int i = 0; i < 30000 && atomic_load(&c->seen->rows_done) < c->at; i++)
		usleep(1000);
	atomic_store(c->cancel, true);
	return NULL;
}

static void test_cancel_resume(const char *dsn)
{
	Seen s;
	MigrateRequest rq = request(dsn, &s);
	rq.opt.batch_delay_ms = 20;
	atomic_bool cancel = false;
	rq.hooks.cancel = &cancel;
	Canceller c = {&s, &cancel, 3 * BATCH};
	pthread_t th;
	pthread_create(&th, NULL, cancel_thread, &c);
	MigrateResult out;
	MigrateStatus st = migrate_start(&rq, "02_upper.json", UPPER_JSON, strlen(UPPER_JSON), false, false, &out);
	pthread_join(th, NULL);
	tap_check(st == MIGRATE_CANCELLED && out.status == MIGRATE_CANCELLED, "cancel from another thread: %d, %s", st, out.err);
	char ph[256];
	phases(&s, ph, sizeof ph);
	const char *lastp = strrchr(ph, ' ');
	tap_check(lastp && strcmp(lastp + 1, "cancelled") == 0, "cancel: last phase reported is cancelled (%s)", ph);
	const char *sv = state_of("02_upper");
	long long saved = 0;
	char status[32] = "", fin[16] = "";
	sscanf(sv, "%31s %lld %15s", status, &saved, fin);
	tap_check(strcmp(status, "active") == 0 && strcmp(fin, "false") == 0, "cancel: migration still active, backfill unfinished (%s)", sv);
	tap_check(saved >= 3 * BATCH && saved < ROWS && saved % BATCH == 0, "cancel: stopped at a batch boundary, progress saved (%lld rows)", saved);
	int left = atoi(q("SELECT count(*) FROM t WHERE _pgflip_new_u IS NULL"));
	tap_check(left == ROWS - saved, "cancel: the rows saved are filled, the others not (%d left)", left);

	rq = request(dsn, &s);
	st = migrate_start(&rq, "02_upper.json", UPPER_JSON, strlen(UPPER_JSON), false, false, &out);
	tap_check(st == MIGRATE_OK, "start again resumes and finishes: %s", out.err);
	tap_check(strstr(s.log, "resuming start of 02_upper") != NULL, "resumed, not restarted (log)");
	const Report *first = NULL;
	for (size_t i = 0; i < s.n && !first; i++)
		if (s.r[i].backfill_report)
			first = &s.r[i];
	tap_check(first && first->rows_done == saved, "resumed backfill starts at the saved %lld rows (%lld)", saved,
	      first ? (long long)first->rows_done : -1LL);
	tap_check(atoi(q("SELECT count(*) FROM t WHERE _pgflip_new_u IS DISTINCT FROM upper(v)")) == 0, "resumed: every row filled");
	tap_check(strcmp(state_of("02_upper"), "active 20000 true") == 0, "resumed: backfill finished (%s)", state_of("02_upper"));
}

static void test_complete_guard(const char *dsn)
{
	Seen s;
	MigrateRequest rq = request(dsn, &s);
	rq.unused_timeout_ms = 300;
	add_route("default", "", "public_01_base");
	MigrateResult out;
	MigrateStatus st = migrate_complete(&rq, &out);
	tap_check(st == MIGRATE_FAILED && strstr(out.err, "public_01_base") && strstr(out.err, "routes naming it: default"),
	      "complete waits for the previous version's route, then fails naming it: %s", out.err);
	q("DELETE FROM pgflip.routes");

	rq = request(dsn, &s);
	rq.unused_timeout_ms = 300;
	rq.hooks.may_drop = on_may_drop;
	s.may_drop_no = 1000;
	st = migrate_complete(&rq, &out);
	tap_check(st == MIGRATE_FAILED && strstr(out.err, "2 clients still routed to public_01_base: 17, 18"),
	      "may_drop refusing: complete fails with its reason: %s", out.err);
	tap_check(s.may_drop_calls >= 2 && strcmp(s.may_drop_vschema, "public_01_base") == 0,
	      "may_drop asked again about public_01_base (%d calls)", s.may_drop_calls);

	rq = request(dsn, &s);
	rq.unused_timeout_ms = 5000;
	rq.hooks.may_drop = on_may_drop;
	s.may_drop_no = 2;
	st = migrate_complete(&rq, &out);
	tap_check(st == MIGRATE_OK && s.may_drop_calls >= 3, "may_drop false, false, true: complete goes on (%d calls, one more per later step): %s",
	      s.may_drop_calls, out.err);
	tap_check(saw_note(&s, MIGRATE_PHASE_WAIT_UNUSED, "17, 18"), "complete: reported wait_unused with may_drop's reason");
	tap_check(atoi(q("SELECT count(*) FROM pg_namespace WHERE nspname = 'public_01_base'")) == 0 &&
		      strncmp(state_of("02_upper"), "complete", 8) == 0,
	      "completed: the previous version schema is gone");
}

static void test_history_and_ddl(const char *dsn)
{
	Seen s;
	MigrateRequest rq = request(dsn, &s);
	char err[256] = "";
	json_t *h = migrate_history(&rq, err, sizeof err);
	tap_check(json_array_size(h) == 2, "history: two migrations (%s)", err);
	json_t *m = json_array_get(h, 1);
	tap_check(strcmp(mj_str(json_array_get(h, 0), "name", ""), "01_base") == 0 &&
		      strcmp(mj_str(m, "name", ""), "02_upper") == 0 && strcmp(mj_str(m, "parent", ""), "01_base") == 0 &&
		      strcmp(mj_str(m, "status", ""), "complete") == 0 &&
		      strcmp(mj_str(m, "version_schema", ""), "public_02_upper") == 0,
	      "history: oldest first, with parents and status");
	tap_check(json_integer_value(json_object_get(m, "start_done")) == json_integer_value(json_object_get(m, "start_steps")) &&
		      json_integer_value(json_object_get(m, "complete_done")) ==
			      json_integer_value(json_object_get(m, "complete_steps")) &&
		      json_integer_value(json_object_get(m, "start_steps")) > 0 &&
		      json_integer_value(json_object_get(json_object_get(json_object_get(m, "backfill"), "t"), "done")) == ROWS &&
		      json_is_string(json_object_get(m, "created_at")) && json_is_string(json_object_get(m, "updated_at")),
	      "history: steps done of steps, backfill, timestamps");
	json_decref(h);
	rq.schema = "nothing_here";
	h = migrate_history(&rq, err, sizeof err);
	tap_check(h && json_array_size(h) == 0, "history of a schema without migrations: []");
	json_decref(h);

	for (int i = 0; i < 2; i++) {
		PGresult *r = PQexec(db, migrate_schema_ddl());
		tap_check(PQresultStatus(r) == PGRES_COMMAND_OK, "migrate_schema_ddl runs again (%d): %s", i + 1, PQerrorMessage(db));
		PQclear(r);
	}
	tap_check(strcmp(q("SELECT count(*) || ' ' || min(generation) FROM pgflip.route_state"), "1 0") == 0,
	      "route_state: one row, generation 0");
}

typedef struct Holder {
	int hold_ms;
	bool ok;
} Holder;

/* Ends, after HOLD_MS, the test connection's transaction that holds a lock. */
static void *lock_thread(void *arg)
{
	Holder *h = arg;
	usleep((useconds_t)h->hold_ms * 1000);
	PGresult *r = PQexec(db, "COMMIT");
	h->ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	return NULL;
}

static void test_lock_wait(const char *dsn)
{
	static const char more[] = "operations:\n  - add_column: {table: t, up: \"v || 'x'\", column: {name: w, type: text}}\n";
	Seen s;
	MigrateRequest rq = request(dsn, &s);
	rq.opt.lock_timeout_ms = 400;
	/* EXCLUSIVE: the catalog reader and the checks (reads) pass, the first
	 * DDL step waits */
	PGresult *r = PQexec(db, "BEGIN; LOCK TABLE t IN EXCLUSIVE MODE");
	tap_check(PQresultStatus(r) == PGRES_COMMAND_OK, "lock: t held by the test connection");
	PQclear(r);
	Holder h = {1500, false};
	pthread_t th;
	pthread_create(&th, NULL, lock_thread, &h);
	MigrateResult out;
	MigrateStatus st = migrate_start(&rq, "03_more.yaml", more, strlen(more), false, false, &out);
	pthread_join(th, NULL);
	tap_check(st == MIGRATE_OK && h.ok, "lock: start waits and retries until the lock is gone: %s", out.err);
	int pid = PQbackendPID(db);
	size_t at = 0;
	for (size_t i = 0; i < s.n && !at; i++)
		if (s.r[i].lock_wait_ms > 0)
			at = i + 1;
	const Report *w = at ? &s.r[at - 1] : NULL;
	tap_check(w && w->blocker_pid == pid && strstr(w->blocker_query, "LOCK TABLE t"),
	      "lock: progress names the blocker (pid %d, want %d; query '%s')", w ? w->blocker_pid : 0, pid,
	      w ? w->blocker_query : "");
	/* the blockers are looked up a quarter into the attempt's lock timeout
	 * (the first attempt's is EXEC_FIRST_LOCK_TIMEOUT_MS; or the guard saw
	 * the holder, its transaction old by then, before an attempt) */
	tap_check(w && w->lock_wait_ms >= EXEC_FIRST_LOCK_TIMEOUT_MS / 4 && w->lock_wait_ms < 400 && at < s.n &&
			  s.r[at].lock_wait_ms == 0,
	      "lock: reported after %lld ms of a 400 ms lock_timeout, and no wait in the next report",
	      w ? (long long)w->lock_wait_ms : -1LL);
	tap_check(strstr(s.log, "lock_timeout on step") != NULL, "lock: the retries are logged");
}

static void test_bad_text(const char *dsn)
{
	Seen s;
	MigrateRequest rq = request(dsn, &s);
	MigrateResult out;
	static const char bad[] = "operations:\n  - add_column:\n      table: t\n      column: {name: x, type: [text]}\n";
	MigrateStatus st = migrate_start(&rq, "03_bad.yaml", bad, strlen(bad), false, false, &out);
	tap_check(st == MIGRATE_FAILED &&
		      strcmp(out.err, "03_bad.yaml:4: operations[0].add_column.column.type: expected string, got array") == 0,
	      "bad text: the loader's message with the file name and line: %s", out.err);
	char ph[256];
	phases(&s, ph, sizeof ph);
	tap_check(strcmp(ph, "plan failed") == 0, "bad text: phases '%s'", ph);
}

static void quiet_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: it_migrate_api CONNINFO\n");
		return 2;
	}
	db = PQconnectdb(argv[1]);
	if (PQstatus(db) != CONNECTION_OK) {
		printf("not ok - connect: %s", PQerrorMessage(db));
		return 1;
	}
	PQsetNoticeProcessor(db, quiet_notice, NULL);
	test_base(argv[1]);
	test_progress_and_log(argv[1]);
	test_rollback_guard(argv[1]);
	test_cancel_resume(argv[1]);
	test_complete_guard(argv[1]);
	test_history_and_ddl(argv[1]);
	test_lock_wait(argv[1]);
	test_bad_text(argv[1]);
	PQfinish(db);
	return tap_failures ? 1 : 0;
}
