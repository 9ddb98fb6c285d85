/*
 * migrate/guard.c: the executor's lock-queue guard and its strong-lock clock
 * (see exec.h).
 *
 * Why a guard. A DDL statement that asks for ACCESS EXCLUSIVE while another
 * session holds any lock on the table waits in the lock queue, and every
 * client that comes after it queues behind it: one idle-in-transaction
 * session stalls the whole table for lock_timeout at each attempt. So before
 * a group of transactional steps, the guard looks (pg_locks and
 * pg_stat_activity) for sessions that hold a lock on a relation the group
 * will lock and whose transaction is old (started more than
 * exec_guard_old_ms() ago, or idle in transaction that long): such a holder
 * will not let go within the lock timeout, and trying would only queue. The
 * guard waits without queueing, polling with jitter, until none is left;
 * short transactions of the live traffic do not count (the attempt waits
 * for them, briefly, under its lock_timeout).
 *
 * Which relations. The planner writes every relation as "schema"."name"
 * and every schema it drops or re-creates as SCHEMA "name"; the guard reads
 * those from the SQL of every step of the list (a step may lock a table it
 * does not name: DROP FUNCTION ... CASCADE drops a table's trigger), and a
 * views step also locks every view of its version schema. Which modes: a
 * group that only validates constraints takes SHARE UPDATE EXCLUSIVE,
 * which readers and writers do not conflict with; any other group may take
 * ACCESS EXCLUSIVE, which every lock conflicts with.
 */
#include "migrate/exec.h"
#include "migrate/exec_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "migrate/sqlbuf.h"

/* Polling period of a guard wait, before jitter (ms). */
#define GUARD_POLL_MS 50

int exec_guard_old_ms(const Exec *e)
{
	int half = e->opt.lock_timeout_ms / 2;
	return half < EXEC_GUARD_OLD_MS ? (half > 1 ? half : 1) : EXEC_GUARD_OLD_MS;
}

/* The double-quoted identifier at *P (P after its opening quote), its ""
 * undone, as a new string; *P moves past the closing quote. NULL when it
 * does not end (or out of memory). */
static char *read_ident(const char **p)
{
	SqlBuf b;
	sqlbuf_init(&b);
	for (const char *s = *p;;) {
		const char *q = strchr(s, '"');
		if (!q) {
			sqlbuf_free(&b);
			return NULL;
		}
		sqlbuf_addn(&b, s, (size_t)(q - s) + (q[1] == '"'));
		if (q[1] != '"') {
			*p = q + 1;
			return sqlbuf_steal(&b);
		}
		s = q + 2;
	}
}

/* Whether SQL's text before AT ends with WORD. */
static bool ends_with(const char *sql, const char *at, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(at - sql) >= n && strncmp(at - n, word, n) == 0;
}

/* Appends to RELS ("schema.name" strings) the "a"."b" names of SQL, and to
 * SCHEMAS the names that follow SCHEMA [IF EXISTS]. */
static void scan_names(const char *sql, json_t *rels, json_t *schemas)
{
	for (const char *p = sql; (p = strchr(p, '"')) != NULL;) {
		bool schema = ends_with(sql, p, "SCHEMA ") || ends_with(sql, p, "SCHEMA IF EXISTS ");
		p++;
		char *a = read_ident(&p);
		if (!a)
			return;
		if (p[0] == '.' && p[1] == '"') {
			p += 2;
			char *n = read_ident(&p), *rel = NULL;
			if (n && asprintf(&rel, "%s.%s", a, n) >= 0) {
				json_array_append_new(rels, json_string(rel));
				free(rel);
			}
			free(n);
		} else if (schema) {
			json_array_append_new(schemas, json_string(a));
		}
		free(a);
	}
}

/* The sessions, other than this one, that hold a lock on a relation of RELS
 * or SCHEMAS (WEAK: only a lock that conflicts with SHARE UPDATE EXCLUSIVE)
 * and either are in a transaction older than MIN_AGE_MS or hide
 * their transaction's start from this role (another role's session, an
 * autovacuum worker, to a role without pg_read_all_stats): one row each,
 * pid, description, query, virtual transaction, hidden ("t"/"f"), the
 * visible old ones first, oldest first. NULL when the query fails (the
 * attempt then simply runs under its lock_timeout), with e->err cleared. */
static PGresult *lock_holders(Exec *e, const char *rels, const char *schemas, bool weak, int min_age_ms)
{
	char age[16];
	snprintf(age, sizeof age, "%d", min_age_ms);
	const char *params[4] = {rels, schemas, age, weak ? "t" : "f"};
	PGresult *r = exec_query(
		e,
		"SELECT a.pid, format('pid %s (%s, %s, %s, %s s in transaction, holds %s on %s)', a.pid, "
		"coalesce(a.usename, '?'), coalesce(nullif(a.application_name, ''), a.backend_type, '?'), "
		"coalesce(a.state, '?'), coalesce(round(extract(epoch FROM now() - a.xact_start)::numeric, 1)::text, '?'), "
		"string_agg(DISTINCT l.mode, ', '), string_agg(DISTINCT c.relname, ', ')), left(a.query, 200), "
		"l.virtualtransaction, a.xact_start IS NULL "
		"FROM pg_locks l JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace "
		"JOIN pg_stat_activity a ON a.pid = l.pid "
		"WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid() "
		"AND (n.nspname IN (SELECT jsonb_array_elements_text($2::jsonb)) "
		"OR n.nspname || '.' || c.relname IN (SELECT jsonb_array_elements_text($1::jsonb))) "
		"AND (a.xact_start IS NULL OR a.xact_start < now() - make_interval(secs => $3::int / 1000.0)) "
		"AND (NOT $4::bool OR l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock')) "
		"GROUP BY a.pid, a.usename, a.application_name, a.backend_type, a.state, a.xact_start, a.query, "
		"l.virtualtransaction ORDER BY a.xact_start IS NULL, a.xact_start",
		4, params);
	if (!r)
		e->err[0] = '\0';
	return r;
}

/* Hidden holders seen so far (their virtual transaction, and since when):
 * a transaction whose start this role may not read is old once the same
 * virtual transaction held its lock at two looks GUARD's age apart. */
#define GUARD_MAX_HIDDEN 32
typedef struct GuardSeen {
	char vxid[GUARD_MAX_HIDDEN][32];
	int64_t first[GUARD_MAX_HIDDEN];
	size_t n;
} GuardSeen;

/* The row of R to wait for: a visible old holder, else a hidden one seen
 * holding for exec_guard_old_ms() at least (NOW, ms); -1 when none. SEEN
 * keeps the hidden ones present now; *NEW_HIDDEN says one was first seen
 * now (its age is unknown until the next look). */
static int pick_holder(const Exec *e, const PGresult *r, GuardSeen *seen, int64_t now, bool *new_hidden)
{
	GuardSeen next = {.n = 0};
	int pick = -1;
	*new_hidden = false;
	for (int i = 0; i < PQntuples(r); i++) {
		if (strcmp(PQgetvalue(r, i, 4), "t") != 0) {
			if (pick < 0)
				pick = i;
			continue;
		}
		const char *vx = PQgetvalue(r, i, 3);
		int64_t first = now;
		for (size_t k = 0; k < seen->n; k++)
			if (strcmp(seen->vxid[k], vx) == 0)
				first = seen->first[k];
		if (first == now)
			*new_hidden = true;
		else if (pick < 0 && now - first >= exec_guard_old_ms(e))
			pick = i;
		if (next.n < GUARD_MAX_HIDDEN) {
			snprintf(next.vxid[next.n], sizeof next.vxid[0], "%s", vx);
			next.first[next.n++] = first;
		}
	}
	*seen = next;
	return pick;
}

/* Cancels PID when it is an autovacuum worker that does not prevent
 * wraparound, as PostgreSQL itself does for a lock waiter after
 * deadlock_timeout; true when it was cancelled. (Needs the right to signal
 * it: a superuser's; otherwise the guard just waits.) */
static bool cancel_autovacuum(Exec *e, const char *pid)
{
	const char *params[1] = {pid};
	PGresult *r = exec_query(e,
				 "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE pid = $1::int "
				 "AND backend_type = 'autovacuum worker' AND query NOT LIKE '%(to prevent wraparound)%'",
				 1, params);
	bool done = r && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	if (!r)
		e->err[0] = '\0';
	PQclear(r);
	return done;
}

/* The relations and schemas the steps of L lock, as JSON arrays (texts
 * for lock_holders's $1 and $2, caller frees). False when out of memory. */
static bool list_names(const StepList *l, char **rels, char **schemas)
{
	json_t *r = json_array(), *s = json_array();
	for (size_t i = 0; r && s && i < l->n; i++) {
		const PlanStep *st = &l->v[i];
		if (st->sql)
			scan_names(st->sql, r, s);
		if (st->kind == STEP_VIEWS && st->vschema)
			json_array_append_new(s, json_string(st->vschema));
	}
	*rels = r ? json_dumps(r, JSON_COMPACT) : NULL;
	*schemas = s ? json_dumps(s, JSON_COMPACT) : NULL;
	json_decref(r);
	json_decref(s);
	if (*rels && *schemas)
		return true;
	free(*rels);
	free(*schemas);
	return false;
}

/* Whether the group [A, B) of L takes only locks that conflict with no
 * more than SHARE UPDATE EXCLUSIVE's (a lone VALIDATE CONSTRAINT). */
static bool group_weak(const StepList *l, size_t a, size_t b)
{
	bool weak = true;
	for (size_t i = a; i < b; i++)
		weak = weak && l->v[i].sql && strncmp(l->v[i].sql, "ALTER TABLE ", 12) == 0 &&
		       strstr(l->v[i].sql, " VALIDATE CONSTRAINT ") && !strchr(l->v[i].sql, ';');
	return weak;
}

size_t guard_holders(Exec *e, const StepList *l, size_t a, size_t b, int *pids, size_t max)
{
	char *rels, *schemas;
	if (!list_names(l, &rels, &schemas))
		return 0;
	PGresult *r = lock_holders(e, rels, schemas, group_weak(l, a, b), 0);
	size_t n = 0;
	for (int i = 0; r && i < PQntuples(r) && n < max; i++)
		pids[n++] = atoi(PQgetvalue(r, i, 0));
	PQclear(r);
	free(rels);
	free(schemas);
	return n;
}

GuardResult guard_wait(Exec *e, const StepList *l, size_t a, size_t b, long start, const char *what, long hold_ms)
{
	char *rels, *schemas;
	if (!list_names(l, &rels, &schemas))
		return GUARD_CLEAR; /* out of memory: no guard, the attempt's lock_timeout still holds */
	bool weak = group_weak(l, a, b);
	GuardResult res = GUARD_CLEAR;
	bool waited = false, looked_again = false;
	long began = exec_now_ms();
	char last_pid[16] = "";
	GuardSeen seen = {.n = 0};
	PGresult *r;
	while ((r = lock_holders(e, rels, schemas, weak, exec_guard_old_ms(e))) != NULL) {
		bool new_hidden;
		int row = pick_holder(e, r, &seen, exec_now_ms(), &new_hidden);
		if (row < 0) {
			PQclear(r);
			if (!new_hidden || looked_again)
				break;
			/* a holder whose age this role cannot read: look again once,
			 * the guard's age later, whether it is the same transaction */
			looked_again = true;
			exec_sleep_ms(exec_guard_old_ms(e));
			continue;
		}
		const char *pid = PQgetvalue(r, row, 0), *who = PQgetvalue(r, row, 1);
		long spent = exec_now_ms() - start;
		if (strcmp(pid, last_pid) != 0) {
			exec_log(e, "not queueing %s behind a long transaction: %s%s", what, who,
				 strcmp(PQgetvalue(r, row, 4), "t") == 0 ? " (its start hidden from this role; held a while)" : "");
			snprintf(last_pid, sizeof last_pid, "%s", pid);
			if (cancel_autovacuum(e, pid))
				exec_log(e, "cancelled autovacuum pid %s, which would block %s", pid, what);
		}
		waited = true;
		if (e->hooks.lock_wait)
			e->hooks.lock_wait(e->hooks.arg, spent > 0 ? spent : 1, atoi(pid), PQgetvalue(r, row, 2), who);
		bool spent_all = spent + GUARD_POLL_MS > e->opt.retry_total_ms;
		if (spent_all)
			exec_set_err(e, "gave up on %s after %ld ms: %s held its lock the whole time", what, spent, who);
		PQclear(r);
		if (spent_all || exec_cancelled(e)) {
			res = GUARD_FAILED;
			break;
		}
		if (hold_ms > 0 && exec_now_ms() - began >= hold_ms) {
			res = GUARD_HELD;
			break;
		}
		double j = 0.5;
		drand48_r(&e->rng, &j);
		exec_sleep_ms((int64_t)(GUARD_POLL_MS * (0.5 + j)));
	}
	if (waited && e->hooks.lock_wait)
		e->hooks.lock_wait(e->hooks.arg, 0, 0, NULL, NULL);
	free(rels);
	free(schemas);
	return res;
}

bool guard_strong_lock(Exec *e, const char *fresh_schema, char *what, size_t whatlen)
{
	const char *params[1] = {fresh_schema};
	/* a relation this transaction dropped is not in its pg_class any more,
	 * but others still wait for it: it counts, by its OID */
	PGresult *r = exec_query(e,
				 "SELECT string_agg(DISTINCT l.mode || ' on ' || coalesce(c.relname, 'dropped relation ' || "
				 "l.relation), ', ') FROM pg_locks l LEFT JOIN pg_class c ON c.oid = l.relation "
				 "LEFT JOIN pg_namespace n ON n.oid = c.relnamespace WHERE l.pid = pg_backend_pid() "
				 "AND l.granted AND l.locktype = 'relation' AND l.mode NOT IN ('AccessShareLock', "
				 "'RowShareLock', 'RowExclusiveLock', 'ShareUpdateExclusiveLock') "
				 "AND ($1::text IS NULL OR n.nspname IS DISTINCT FROM $1)",
				 1, params);
	bool held = r && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
	if (held)
		snprintf(what, whatlen, "%s", PQgetvalue(r, 0, 0));
	if (!r)
		e->err[0] = '\0';
	PQclear(r);
	return held;
}

void guard_strong_record(Exec *e, int64_t held_ms, const char *step, const char *locks)
{
	exec_log(e, "strong lock held %lld ms: %s (%s)", (long long)held_ms, step, locks);
	if (held_ms >= e->strong_lock_ms) {
		e->strong_lock_ms = held_ms;
		snprintf(e->strong_lock_step, sizeof e->strong_lock_step, "%s", step);
	}
}
