/*
 * migrate/exec_int.h: what exec.c shares with the other files of the
 * executor (backfill.c, guard.c); not for the rest of the module.
 */
#ifndef PGFLIP_MIGRATE_EXEC_INT_H
#define PGFLIP_MIGRATE_EXEC_INT_H

#include "migrate/exec.h"

/* SQLSTATE lock_not_available: lock_timeout expired (PostgreSQL appendix A). */
#define SQLSTATE_LOCK_NOT_AVAILABLE "55P03"

/* e->err = the formatted message, cut to one line. */
void exec_set_err(Exec *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends SQL (with NPARAMS text PARAMS) on e->conn and waits for all its
 * results; while it waits longer than a quarter of the lock timeout, looks
 * up and logs its blockers once, naming the step WHAT (NULL: no lookup).
 * Returns the last result (caller clears) or NULL with e->err; SQLSTATE
 * gets the error's code ("" when none). */
PGresult *exec_run_wait(Exec *e, const char *sql, int nparams, const char *const *params, const char *what,
			char sqlstate[6]);
/* exec_query, whose lock waits are logged with their blockers (as a
 * step's are) naming WHAT. */
PGresult *exec_query_as(Exec *e, const char *what, const char *sql, int nparams, const char *const *params);
/* exec_query without a result: true when SQL succeeded. */
bool exec_simple(Exec *e, const char *sql);
/* ROLLBACK when a transaction is open on e->conn; errors ignored. */
void exec_rollback_quietly(Exec *e);
/* Sleeps before retry ATTEMPT (0-based) of WHAT, exponential with jitter,
 * unless the retry budget since START (exec_now_ms) is spent: then false
 * with e->err saying so. */
bool exec_backoff(Exec *e, int attempt, long start, const char *what);
/* BEGIN a transaction whose statements wait for a lock at most
 * LOCK_TIMEOUT_MS. */
bool exec_begin_tx(Exec *e, int lock_timeout_ms);
/* "schema"."name", quoted (caller frees), NULL when out of memory. */
char *exec_qname(const char *schema, const char *name);
/* Runs SQL whose $1 is the quoted name of TABLE in e->schema (for
 * ::regclass); as exec_query. */
PGresult *exec_table_query(Exec *e, const char *table, const char *sql);

/* guard.c: the lock-queue guard. Before the group [A, B) of L, waits
 * (polling with jitter, without taking or requesting any lock) while a
 * session whose transaction is older than exec_guard_old_ms() holds a lock
 * on a relation the group names; each new such session is logged and
 * reported through hooks.lock_wait (and an autovacuum worker in the way is
 * cancelled, as PostgreSQL does after deadlock_timeout). WHAT names the
 * step in the log. GUARD_CLEAR when none is left (or the lookup failed:
 * the attempt's lock_timeout still bounds it); GUARD_FAILED with e->err
 * when the retry budget since START ran out or the flow was cancelled. */
typedef enum GuardResult {
	GUARD_FAILED = 0,   /* e->err: the retry budget ran out, or cancelled */
	GUARD_CLEAR,        /* no old holder is left: attempt now */
	GUARD_HELD,         /* one still is after HOLD_MS: the caller may ask for a drain window */
} GuardResult;
/* HOLD_MS: > 0 returns GUARD_HELD once the guard has held back that long;
 * 0 waits until clear or the budget is spent. */
GuardResult guard_wait(Exec *e, const StepList *l, size_t a, size_t b, long start, const char *what, long hold_ms);
/* The backends (at most MAX into PIDS) holding, at any age, a lock on a
 * relation the group [A, B) of L names that the group's locks conflict
 * with; 0 when none or the lookup failed. */
size_t guard_holders(Exec *e, const StepList *l, size_t a, size_t b, int *pids, size_t max);
int exec_guard_old_ms(const Exec *e);
/* Whether this session's transaction holds a lock stronger than SHARE
 * UPDATE EXCLUSIVE on a relation other sessions may wait for: one that
 * exists, or that it dropped (named "dropped relation OID"), but none in
 * FRESH_SCHEMA (NULL: none), a version schema the transaction made anew, as
 * a views step does (DROP SCHEMA, CREATE SCHEMA). WHAT gets them
 * ("AccessExclusiveLock on items, ..."). */
bool guard_strong_lock(Exec *e, const char *fresh_schema, char *what, size_t whatlen);
/* A group that started with STEP held LOCKS for HELD_MS: logged as "strong
 * lock held N ms: STEP (LOCKS)" and kept in e->strong_lock_ms when it is
 * the longest yet. */
void guard_strong_record(Exec *e, int64_t held_ms, const char *step, const char *locks);

/* backfill.c: runs backfill step S to its end (or a cancel, or a failure
 * with e->err). */
bool backfill_run(Exec *e, const PlanStep *s);

#endif
