/*
 * proxy/migrator.c: migrations inside the daemon.
 *
 * One worker thread runs one job at a time (start, complete, rollback of a
 * database's migration) by calling migrate/api.h, which opens its own libpq
 * connection. Worker and event loop share one Migrator under a mutex:
 *   loop -> worker   the job (a copy of everything it needs: conninfo,
 *                    file content), and the cancel flag (atomic);
 *   worker -> loop   progress (copied into the Migrator), log lines (queued:
 *                    the log writer is not thread-safe), the result, and the
 *                    question "may VSCHEMA be dropped now?" (the answer needs
 *                    the router and the clients, which only the loop may
 *                    read: the worker waits on a condition variable while the
 *                    loop answers). Each of these writes one byte to a pipe
 *                    whose read end is an event of the loop.
 * The loop never blocks on the worker: it takes the mutex only to copy.
 *
 * After each job the worker reads the database's migration history
 * (migrate_history), which `versions` shows and the routing checks use:
 * the version schema of a migration whose start has not finished is not
 * routable.
 *
 * The instant rollback (`rollback`, `migrate rollback`) is two steps: the
 * routes that name the migration's version schema go back to the previous
 * one at once, in the loop (router_flip, published to the route store);
 * then the rollback job waits, through may_drop, until no client is still
 * routed there, and runs the rollback DDL.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "migrate/api.h"
#include "proxy/proxy.h"
#include "proxy/admin.h"
#include "proxy/client.h"
#include "proxy/drain.h"
#include "proxy/loadwatch.h"
#include "proxy/migrator.h"
#include "proxy/routestore.h"
#include "proxy/server.h"

#define MIGRATOR_NOTE_MAX 256
#define MIGRATOR_QUERY_MAX 512
#define MIGRATOR_LOG_MAX 64          /* queued log lines beyond this are counted, not kept */
#define MIGRATOR_DROP_WAIT_MS 2000   /* the loop answers may_drop within its next turn; past this, "no" */
#define MIGRATOR_PROGRESS_LOG_MS 5000 /* a running backfill is logged this often */

typedef enum {
	JOB_NONE = 0,
	JOB_START,
	JOB_COMPLETE,
	JOB_ROLLBACK,
	JOB_HISTORY,         /* only read the history (versions) */
} JobKind;

static const char *const job_names[] = {"none", "start", "complete", "rollback", "history"};

typedef struct Job {
	JobKind kind;
	char *db;            /* [databases] entry */
	char *conninfo;
	char *schema;        /* the tables' schema */
	char *filename;      /* start: the file's name and content */
	char *text;
	size_t len;
	bool complete;       /* start --complete */
	double max_latency_ratio; /* backfill_max_latency_ratio when it was submitted */
	int drain_ms;        /* ddl_drain_timeout when it was submitted (0: no drain windows) */
	int workers;         /* --backfill-workers, 0 = 1 */
	bool force;          /* rollback --force */
	char *role;          /* start --role: SET ROLE before the DDL (ExecOptions.role), or NULL */
} Job;

struct Migrator {
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pipe_rd, pipe_wr;
	struct event *wake_ev;
	atomic_bool cancel;

	/* under mu */
	bool quit;
	Job job;             /* pending (kind != JOB_NONE) until the worker takes it */
	Job running;         /* the one being run (kind JOB_NONE: idle) */
	MigratePhase phase;
	char migration[MIGRATE_NAME_MAX], vschema[MIGRATE_NAME_MAX];
	size_t step, n_steps;
	char note[MIGRATOR_NOTE_MAX], table[MIGRATE_NAME_MAX];
	int64_t rows_done, rows_total;
	double rows_per_s, eta_s;
	int64_t lock_wait_ms;
	int blocker_pid;
	char blocker_query[MIGRATOR_QUERY_MAX];
	char blocker[MIGRATOR_QUERY_MAX];
	int64_t strong_lock_ms;
	char strong_lock_step[MIGRATOR_NOTE_MAX];
	uint64_t started_ms, finished_ms;
	bool have_last;
	JobKind last_kind;
	MigrateResult last;
	char *log[MIGRATOR_LOG_MAX];
	size_t n_log, lost_log;
	bool drop_asked;     /* the worker waits for drop_ok/drop_err */
	bool drop_answered;
	char drop_vschema[MIGRATE_NAME_MAX];
	bool drop_ok;
	char drop_err[512];
	json_t *history_new; /* handed over by the worker: {"DB": [...]} for one db */
	double load_ratio;   /* the loop's loadwatch_ratio, for the worker's backfill (-1 unknown) */
	/* a drain window (hook_drain): asked by the worker, opened by the loop
	 * (drain_begin), answered by drain_answered; drain_end_asked closes it */
	bool drain_asked, drain_answered, drain_end_asked;
	int drain_left;      /* the answer: see ExecHooks.drain */
	int drain_pids[MIGRATE_DRAIN_PIDS];
	size_t n_drain_pids;
	char drain_why[256];

	/* worker only: what hook_progress last logged */
	MigratePhase logged_phase;
	size_t logged_step;
	uint64_t logged_ms;

	/* loop only */
	json_t *history;     /* {"DB": [rows of migrate_history]} */
	LoadWatch *load;     /* the foreground latency, snapshotted each second by load_ev */
	struct event *load_ev;
	bool reported;       /* the last result was logged */
};

/* ---- small helpers ------------------------------------------------------ */

static char *mstrdup(const char *s) { return s ? strdup(s) : NULL; }

static void job_free(Job *j)
{
	free(j->db);
	free(j->conninfo);
	free(j->schema);
	free(j->filename);
	free(j->text);
	free(j->role);
	memset(j, 0, sizeof(*j));
}

static void copy_str(char *dst, size_t cap, const char *src) { snprintf(dst, cap, "%s", src ? src : ""); }

/* Wakes the loop (one byte; a full pipe already means a wake-up is due). */
static void wake_loop(Migrator *m)
{
	char b = 1;
	ssize_t n = write(m->pipe_wr, &b, 1);
	(void)n;
}

/* A libpq conninfo string of KW/VAL: key='value' pairs, quotes and
 * backslashes escaped (libpq "Connection Strings", keyword/value form).
 * NULL when out of memory. */
static char *conninfo_from(const char **kw, const char **val)
{
	size_t cap = 1;
	for (size_t i = 0; kw[i]; i++)
		cap += strlen(kw[i]) + 2 * strlen(val[i]) + 4;
	char *s = malloc(cap), *p = s;
	if (!s)
		return NULL;
	for (size_t i = 0; kw[i]; i++) {
		p += sprintf(p, "%s%s='", i ? " " : "", kw[i]);
		for (const char *v = val[i]; *v; v++) {
			if (*v == '\'' || *v == '\\')
				*p++ = '\\';
			*p++ = *v;
		}
		*p++ = '\'';
	}
	*p = '\0';
	return s;
}

/* The [databases] entry a command names with --db NAME, or the only one.
 * NULL with ERR filled. */
static const ConfDatabase *pick_database(const char *name, char *err, size_t errlen)
{
	const Conf *conf = proxy.conf;
	if (name) {
		const ConfDatabase *db = conf_find_database(conf, name);
		if (!db)
			snprintf(err, errlen, "no [databases] entry %s", name);
		return db;
	}
	if (conf->n_databases == 1)
		return &conf->databases[0];
	snprintf(err, errlen, "%zu [databases] entries: say which one with --db NAME", conf->n_databases);
	return NULL;
}

/* The conninfo of migrations on DB: the entry's options, logged in as its
 * user=, else auth_user, else libpq's default user. */
static char *database_conninfo(const ConfDatabase *db)
{
	const char *kw[SERVER_MAX_KEYWORDS + 1], *val[SERVER_MAX_KEYWORDS + 1];
	const ServerLoginAs as = {.user = db->user ? db->user : proxy.conf->auth_user,
				  .dbname = db->dbname ? db->dbname : db->name,
				  .app_name = "pgflip migrate"};
	if (!server_login_keywords(db, &as, kw, val))
		return NULL;
	return conninfo_from(kw, val);
}

/* ---- the worker thread -------------------------------------------------- */

static void hook_log(void *arg, const char *line);

/* A log line for a progress report worth one: a new phase or step, and a
 * running backfill every MIGRATOR_PROGRESS_LOG_MS. Worker thread. */
static void log_progress(Migrator *m, const MigrateProgress *p)
{
	uint64_t now = proxy_now_ms();
	char line[600];
	if (p->phase == MIGRATE_PHASE_BACKFILL && p->table) {
		if (p->phase == m->logged_phase && p->step == m->logged_step && now - m->logged_ms < MIGRATOR_PROGRESS_LOG_MS)
			return;
		if (p->rows_total > 0)
			snprintf(line, sizeof(line), "backfill of %s: %lld of %lld rows (%.0f%%), %.0f rows/s, ETA %.0f s",
				 p->table, (long long)p->rows_done, (long long)p->rows_total,
				 100.0 * (double)p->rows_done / (double)p->rows_total, p->rows_per_s, p->eta_s);
		else
			snprintf(line, sizeof(line), "backfill of %s: %lld rows, %.0f rows/s", p->table,
				 (long long)p->rows_done, p->rows_per_s);
	} else if (p->lock_wait_ms == 0 && (p->phase != m->logged_phase || p->step != m->logged_step) && p->step) {
		snprintf(line, sizeof(line), "%s step %zu of %zu: %s", migrate_phase_name(p->phase), p->step, p->n_steps,
			 p->note ? p->note : "");
	} else {
		return;
	}
	m->logged_phase = p->phase;
	m->logged_step = p->step;
	m->logged_ms = now;
	hook_log(m, line);
}

static void hook_progress(void *arg, const MigrateProgress *p)
{
	Migrator *m = arg;
	log_progress(m, p);
	pthread_mutex_lock(&m->mu);
	m->phase = p->phase;
	if (p->migration)
		copy_str(m->migration, sizeof(m->migration), p->migration);
	if (p->vschema)
		copy_str(m->vschema, sizeof(m->vschema), p->vschema);
	m->step = p->step;
	m->n_steps = p->n_steps;
	copy_str(m->note, sizeof(m->note), p->note);
	copy_str(m->table, sizeof(m->table), p->table);
	m->rows_done = p->rows_done;
	m->rows_total = p->rows_total;
	m->rows_per_s = p->rows_per_s;
	m->eta_s = p->eta_s;
	m->lock_wait_ms = p->lock_wait_ms;
	m->blocker_pid = p->blocker_pid;
	copy_str(m->blocker_query, sizeof(m->blocker_query), p->blocker_query);
	copy_str(m->blocker, sizeof(m->blocker), p->blocker);
	m->strong_lock_ms = p->strong_lock_ms;
	copy_str(m->strong_lock_step, sizeof(m->strong_lock_step), p->strong_lock_step);
	pthread_mutex_unlock(&m->mu);
}

static void hook_log(void *arg, const char *line)
{
	Migrator *m = arg;
	char *copy = strdup(line);
	pthread_mutex_lock(&m->mu);
	if (copy && m->n_log < MIGRATOR_LOG_MAX)
		m->log[m->n_log++] = copy;
	else {
		m->lost_log++;
		free(copy);
	}
	pthread_mutex_unlock(&m->mu);
	wake_loop(m);
}

/* Asks the loop whether VSCHEMA may be dropped now (no local route names
 * it, no local client is routed there); waits for the answer. */
static bool hook_may_drop(void *arg, const char *vschema, char *err, size_t errlen)
{
	Migrator *m = arg;
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += MIGRATOR_DROP_WAIT_MS / 1000;
	pthread_mutex_lock(&m->mu);
	copy_str(m->drop_vschema, sizeof(m->drop_vschema), vschema);
	m->drop_asked = true;
	m->drop_answered = false;
	pthread_mutex_unlock(&m->mu);
	wake_loop(m);
	pthread_mutex_lock(&m->mu);
	int rc = 0;
	while (!m->drop_answered && !m->quit && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&m->cv, &m->mu, &until);
	bool ok = m->drop_answered && m->drop_ok;
	snprintf(err, errlen, "%s", m->drop_answered ? m->drop_err : "the proxy did not answer");
	m->drop_asked = false;
	pthread_mutex_unlock(&m->mu);
	return ok;
}

/* A drain window on the job's database (worker thread; ExecHooks.drain):
 * the loop opens it and answers; waits at most the window and a second. */
static int hook_drain(void *arg, const int *pids, size_t n, char *why, size_t whylen)
{
	Migrator *m = arg;
	struct timespec until;
	pthread_mutex_lock(&m->mu);
	int ms = m->running.drain_ms;
	m->n_drain_pids = n < MIGRATE_DRAIN_PIDS ? n : MIGRATE_DRAIN_PIDS;
	memcpy(m->drain_pids, pids, m->n_drain_pids * sizeof(int));
	m->drain_asked = true;
	m->drain_answered = false;
	m->drain_end_asked = false;
	pthread_mutex_unlock(&m->mu);
	wake_loop(m);
	clock_gettime(CLOCK_REALTIME, &until);
	long ns = until.tv_nsec + (ms % 1000) * 1000000L;
	until.tv_sec += ms / 1000 + 1 + ns / 1000000000L;
	until.tv_nsec = ns % 1000000000L;
	pthread_mutex_lock(&m->mu);
	int rc = 0;
	while (!m->drain_answered && !m->quit && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&m->cv, &m->mu, &until);
	int left = m->drain_answered ? m->drain_left : 0;
	snprintf(why, whylen, "%s", m->drain_answered ? m->drain_why : "the proxy did not answer");
	m->drain_asked = false;
	pthread_mutex_unlock(&m->mu);
	return left;
}

/* Ends the window hook_drain opened (worker thread). */
static void hook_undrain(void *arg)
{
	Migrator *m = arg;
	pthread_mutex_lock(&m->mu);
	m->drain_end_asked = true;
	pthread_mutex_unlock(&m->mu);
	wake_loop(m);
}

/* The loop's answer to hook_drain (drain.h's DrainDone). */
static void drain_done(void *arg, int left_ms)
{
	Migrator *m = arg;
	pthread_mutex_lock(&m->mu);
	m->drain_left = left_ms;
	m->drain_why[0] = '\0';
	if (left_ms <= 0)
		snprintf(m->drain_why, sizeof(m->drain_why), "the window ended with transactions in flight");
	m->drain_answered = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

/* In the loop, outside the mutex (drain_begin may answer at once): opens
 * the window the worker asked for, or answers why not. */
static void open_drain(Migrator *m, const char *db, int ms, const int *pids, size_t n)
{
	char why[256];
	if (drain_begin(db, ms, pids, n, drain_done, m, why, sizeof(why)) == 0)
		return;
	pthread_mutex_lock(&m->mu);
	m->drain_left = -1;
	copy_str(m->drain_why, sizeof(m->drain_why), why);
	m->drain_answered = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
}

/* The foreground latency ratio the loop last computed (worker thread). */
static double hook_load(void *arg)
{
	Migrator *m = arg;
	pthread_mutex_lock(&m->mu);
	double r = m->load_ratio;
	pthread_mutex_unlock(&m->mu);
	return r;
}

static MigrateStatus run_job(Migrator *m, const Job *j, MigrateResult *res)
{
	MigrateRequest rq = {
		.dsn = j->conninfo,
		.schema = j->schema,
		.hooks = {.progress = hook_progress, .log = hook_log, .may_drop = hook_may_drop, .cancel = &m->cancel,
			  .load = hook_load, .arg = m},
	};
	exec_options_default(&rq.opt);
	rq.opt.progress = false;
	rq.opt.max_latency_ratio = j->max_latency_ratio;
	rq.opt.role = j->role;
	if (j->workers > 0)
		rq.opt.backfill_workers = j->workers;
	if (j->drain_ms > 0) {
		rq.hooks.drain = hook_drain;
		rq.hooks.undrain = hook_undrain;
	}
	switch (j->kind) {
	case JOB_START: return migrate_start(&rq, j->filename, j->text, j->len, j->complete, false, res);
	case JOB_COMPLETE: return migrate_complete(&rq, res);
	case JOB_ROLLBACK: return migrate_rollback(&rq, j->force, res);
	case JOB_HISTORY: return res->status = MIGRATE_OK;
	case JOB_NONE: break;
	}
	snprintf(res->err, sizeof(res->err), "no job");
	return res->status = MIGRATE_FAILED;
}

/* The history of J's database, as {"DB": rows}, or NULL. */
static json_t *read_history(const Job *j)
{
	MigrateRequest rq = {.dsn = j->conninfo, .schema = j->schema};
	exec_options_default(&rq.opt);
	char err[512];
	json_t *rows = migrate_history(&rq, err, sizeof(err));
	return rows ? json_pack("{s:o}", j->db, rows) : NULL;
}

static void *worker_main(void *arg)
{
	Migrator *m = arg;
	pthread_mutex_lock(&m->mu);
	for (;;) {
		while (!m->quit && m->job.kind == JOB_NONE)
			pthread_cond_wait(&m->cv, &m->mu);
		if (m->quit)
			break;
		m->running = m->job;
		memset(&m->job, 0, sizeof(m->job));
		Job j = m->running; /* the strings stay owned by m->running until the end */
		pthread_mutex_unlock(&m->mu);

		MigrateResult res;
		memset(&res, 0, sizeof(res));
		run_job(m, &j, &res);
		json_t *hist = read_history(&j);

		pthread_mutex_lock(&m->mu);
		if (j.kind != JOB_HISTORY) {
			m->last = res;
			m->last_kind = j.kind;
			m->have_last = true;
			m->phase = res.status == MIGRATE_OK ? MIGRATE_PHASE_DONE
				   : res.status == MIGRATE_CANCELLED ? MIGRATE_PHASE_CANCELLED : MIGRATE_PHASE_FAILED;
			m->finished_ms = proxy_now_ms();
			m->lock_wait_ms = 0;
		}
		if (hist) {
			json_decref(m->history_new);
			m->history_new = hist;
		}
		job_free(&m->running);
		atomic_store(&m->cancel, false);
		pthread_mutex_unlock(&m->mu);
		wake_loop(m);
		pthread_mutex_lock(&m->mu);
	}
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

/* ---- the loop side ------------------------------------------------------- */

/* Does a route of the router name SCHEMA? Appends the kinds to WHY. */
static bool router_names(const Router *r, const char *schema, char *why, size_t whylen)
{
	bool named = false;
	size_t n = strlen(why);
#define NAMED(text)                                                                                                    \
	do {                                                                                                           \
		named = true;                                                                                          \
		n += (size_t)snprintf(why + n, n < whylen ? whylen - n : 0, "%s%s", n ? ", " : "", text);             \
		if (n >= whylen)                                                                                       \
			n = whylen - 1;                                                                                \
	} while (0)
	if (r->default_schema && !strcmp(r->default_schema, schema))
		NAMED("the default route");
	if (r->canary_schema && !strcmp(r->canary_schema, schema))
		NAMED("the canary");
	for (size_t i = 0; i < r->n_pins; i++)
		if (!strcmp(r->pins[i].schema, schema)) {
			char pin[300];
			snprintf(pin, sizeof(pin), "pin %s %s", router_pin_kind_to_str(r->pins[i].kind), r->pins[i].key);
			NAMED(pin);
		}
#undef NAMED
	return named;
}

/* Is client C still on SCHEMA: inside a transaction there, or routed there
 * by the router's current table (client_next_route)? A client between
 * transactions whose route is older takes the new one at its next
 * transaction. */
static bool client_on(const Client *c, const char *schema)
{
	const char *route = c->state == CL_CLOSING || !c->route ? NULL : client_next_route(c); /* !route: not logged in */
	return route && strcmp(route, schema) == 0;
}

/* The loop's answer to may_drop: into m->drop_ok/drop_err. */
/* The clients on SCHEMA (client_on); with IDS, the first ten of their ids
 * ("4, 9, 12") there too (IDSLEN bytes). */
static size_t clients_on(const char *schema, char *ids, size_t idslen)
{
	size_t n = 0, len = 0;
	Client *c;
	TAILQ_FOREACH(c, &proxy.clients, link) {
		if (!client_on(c, schema))
			continue;
		if (ids && n < 10 && len < idslen)
			len += (size_t)snprintf(ids + len, idslen - len, "%s%llu", len ? ", " : "",
						(unsigned long long)c->id);
		n++;
	}
	return n;
}

static void answer_drop(Migrator *m)
{
	char why[512] = "";
	const char *schema = m->drop_vschema;
	bool named = router_names(&proxy.router, schema, why, sizeof(why));
	char ids[256] = "";
	size_t n_on = clients_on(schema, ids, sizeof(ids));
	m->drop_ok = !named && n_on == 0;
	if (named)
		snprintf(m->drop_err, sizeof(m->drop_err), "%s still routed by %s", schema, why);
	else if (n_on)
		snprintf(m->drop_err, sizeof(m->drop_err), "%zu client(s) still on %s: %s%s", n_on, schema, ids,
			 n_on > 10 ? ", ..." : "");
	else
		m->drop_err[0] = '\0';
	m->drop_answered = true;
}

static void report_result(Migrator *m)
{
	const MigrateResult *r = &m->last;
	const char *what = job_names[m->last_kind];
	if (r->status == MIGRATE_OK)
		log_info("migrate: %s of %s done (version schema %s)", what, r->migration[0] ? r->migration : "?",
			 r->vschema[0] ? r->vschema : "?");
	else if (r->status == MIGRATE_CANCELLED)
		log_info("migrate: %s of %s cancelled: %s", what, r->migration, r->err);
	else
		log_warning("migrate: %s of %s failed: %s", what, r->migration[0] ? r->migration : "?", r->err);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)what;
	Migrator *m = arg;
	char buf[256];
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	char *lines[MIGRATOR_LOG_MAX];
	size_t n, lost;
	json_t *hist;
	pthread_mutex_lock(&m->mu);
	n = m->n_log;
	lost = m->lost_log;
	memcpy(lines, m->log, n * sizeof(char *));
	m->n_log = 0;
	m->lost_log = 0;
	if (m->drop_asked && !m->drop_answered) {
		answer_drop(m);
		pthread_cond_broadcast(&m->cv);
	}
	bool open = m->drain_asked && !m->drain_answered && m->running.db;
	m->drain_asked = m->drain_asked && !open; /* taken: asked once */
	bool end = m->drain_end_asked;
	m->drain_end_asked = false;
	char db[MIGRATE_NAME_MAX];
	copy_str(db, sizeof(db), m->running.db);
	int ms = m->running.drain_ms, pids[MIGRATE_DRAIN_PIDS];
	size_t n_pids = m->n_drain_pids;
	memcpy(pids, m->drain_pids, sizeof(pids));
	hist = m->history_new;
	m->history_new = NULL;
	bool report = m->have_last && !m->reported && m->running.kind == JOB_NONE && m->job.kind == JOB_NONE;
	if (report)
		m->reported = true;
	pthread_mutex_unlock(&m->mu);
	for (size_t i = 0; i < n; i++) {
		log_info("migrate: %s", lines[i]);
		free(lines[i]);
	}
	if (lost)
		log_info("migrate: (%zu more lines not shown)", lost);
	if (end && !open) /* both: the worker gave up on a window not yet opened */
		drain_end();
	if (open && !end)
		open_drain(m, db, ms, pids, n_pids);
	if (hist) {
		if (!m->history)
			m->history = json_object();
		json_object_update(m->history, hist);
		json_decref(hist);
	}
	if (report)
		report_result(m);
}

static void canary_failed(const char *canary_schema, const char *why);

/* Each second: the foreground latency snapshot, and the ratio for a
 * running backfill. */
static void load_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	Migrator *m = arg;
	loadwatch_tick(m->load, &proxy.rstats);
	double r = loadwatch_ratio(m->load);
	pthread_mutex_lock(&m->mu);
	m->load_ratio = r;
	pthread_mutex_unlock(&m->mu);
}

bool migrator_start(char *err, size_t errlen)
{
	Migrator *m = calloc(1, sizeof(*m));
	int fds[2];
	if (!m || pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
		snprintf(err, errlen, "migrator: %s", m ? strerror(errno) : "out of memory");
		free(m);
		return false;
	}
	m->pipe_rd = fds[0];
	m->pipe_wr = fds[1];
	pthread_mutex_init(&m->mu, NULL);
	pthread_cond_init(&m->cv, NULL);
	atomic_init(&m->cancel, false);
	m->wake_ev = event_new(proxy.base, m->pipe_rd, EV_READ | EV_PERSIST, wake_cb, m);
	m->load = calloc(1, sizeof(*m->load));
	m->load_ev = event_new(proxy.base, -1, EV_PERSIST, load_cb, m);
	m->load_ratio = -1;
	const struct timeval second = {1, 0};
	if (!m->wake_ev || !m->load || !m->load_ev || event_add(m->wake_ev, NULL) != 0 ||
	    event_add(m->load_ev, &second) != 0 || pthread_create(&m->thread, NULL, worker_main, m) != 0) {
		snprintf(err, errlen, "migrator: cannot start its thread or event");
		if (m->wake_ev)
			event_free(m->wake_ev);
		if (m->load_ev)
			event_free(m->load_ev);
		free(m->load);
		close(fds[0]);
		close(fds[1]);
		free(m);
		return false;
	}
	m->thread_started = true;
	proxy.migrator = m;
	proxy.on_canary_failed = canary_failed;
	return true;
}

void migrator_stop(void)
{
	Migrator *m = proxy.migrator;
	if (!m)
		return;
	atomic_store(&m->cancel, true);
	pthread_mutex_lock(&m->mu);
	m->quit = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	if (m->thread_started)
		pthread_join(m->thread, NULL);
	event_free(m->wake_ev);
	event_free(m->load_ev);
	free(m->load);
	close(m->pipe_rd);
	close(m->pipe_wr);
	for (size_t i = 0; i < m->n_log; i++)
		free(m->log[i]);
	job_free(&m->job);
	job_free(&m->running);
	json_decref(m->history_new);
	json_decref(m->history);
	pthread_mutex_destroy(&m->mu);
	pthread_cond_destroy(&m->cv);
	free(m);
	proxy.migrator = NULL;
}

/* ---- commands ------------------------------------------------------------ */

typedef struct Opts {
	const char *db;
	const char *schema;
	bool complete;
	bool force;
	const char *role;    /* --role ROLE: the migration's DDL runs as ROLE */
	int workers;         /* --backfill-workers N (ExecOptions.backfill_workers), 0 = 1 */
	const char *bad;     /* the first word that is none of these */
} Opts;

static Opts parse_opts(int argc, char **argv, int from)
{
	Opts o = {.schema = "public"};
	for (int i = from; i < argc; i++) {
		if (!strcmp(argv[i], "--db") && i + 1 < argc)
			o.db = argv[++i];
		else if (!strcmp(argv[i], "--schema") && i + 1 < argc)
			o.schema = argv[++i];
		else if (!strcmp(argv[i], "--complete"))
			o.complete = true;
		else if (!strcmp(argv[i], "--force"))
			o.force = true;
		else if (!strcmp(argv[i], "--role") && i + 1 < argc)
			o.role = argv[++i];
		else if (!strcmp(argv[i], "--backfill-workers") && i + 1 < argc && !o.bad &&
			 (o.workers = atoi(argv[i + 1])) >= 1 && o.workers <= EXEC_MAX_BACKFILL_WORKERS)
			i++;
		else if (!o.bad)
			o.bad = argv[i];
	}
	return o;
}

/* The rows of DB's history (loop's cache), or NULL. */
static json_t *history_of(Migrator *m, const char *db)
{
	return m->history ? json_object_get(m->history, db) : NULL;
}

/* The active migration of DB's history (row), or NULL. */
static json_t *active_row(Migrator *m, const char *db)
{
	json_t *rows = history_of(m, db), *row;
	size_t i;
	json_array_foreach(rows, i, row) {
		const char *st = json_string_value(json_object_get(row, "status"));
		if (st && !strcmp(st, "active"))
			return row;
	}
	return NULL;
}

/* The version schema a rollback of ROW goes back to: its parent's, or the
 * tables' SCHEMA for a first migration. */
static const char *previous_vschema(Migrator *m, const char *db, const json_t *row, const char *schema)
{
	const char *parent = json_string_value(json_object_get(row, "parent"));
	json_t *rows = history_of(m, db), *r;
	size_t i;
	json_array_foreach(rows, i, r) {
		const char *name = json_string_value(json_object_get(r, "name"));
		if (parent && name && !strcmp(name, parent))
			return json_string_value(json_object_get(r, "version_schema"));
	}
	return schema;
}

/* A job is queued or running (under m->mu). */
static bool busy(const Migrator *m) { return m->running.kind != JOB_NONE || m->job.kind != JOB_NONE; }

static bool busy_now(Migrator *m)
{
	pthread_mutex_lock(&m->mu);
	bool b = busy(m);
	pthread_mutex_unlock(&m->mu);
	return b;
}

/* Queues job J (taking its strings) for the worker; false when one runs. */
static bool submit(Migrator *m, Job *j, char *err, size_t errlen)
{
	pthread_mutex_lock(&m->mu);
	/* a real job may queue behind a history read, which is short */
	bool ok = j->kind == JOB_HISTORY ? !busy(m)
					 : m->job.kind == JOB_NONE && (m->running.kind == JOB_NONE || m->running.kind == JOB_HISTORY);
	if (ok && j->kind == JOB_HISTORY) {
		m->job = *j;
		memset(j, 0, sizeof(*j));
		pthread_cond_broadcast(&m->cv);
	} else if (ok) {
		m->job = *j;
		memset(j, 0, sizeof(*j));
		/* the latency a backfill of this job compares the foreground's with */
		loadwatch_set_baseline(m->load);
		m->load_ratio = -1;
		m->phase = MIGRATE_PHASE_PLAN;
		m->migration[0] = m->vschema[0] = m->note[0] = m->table[0] = m->blocker_query[0] = '\0';
		m->blocker[0] = m->strong_lock_step[0] = '\0';
		m->strong_lock_ms = 0;
		m->step = m->n_steps = 0;
		m->rows_done = 0;
		m->rows_total = -1;
		m->rows_per_s = 0;
		m->eta_s = -1;
		m->lock_wait_ms = 0;
		m->blocker_pid = 0;
		m->started_ms = proxy_now_ms();
		m->finished_ms = 0;
		m->reported = false;
		pthread_cond_broadcast(&m->cv);
	} else {
		snprintf(err, errlen, "a migration job is running (%s on %s): wait for it, or `migrate cancel`",
			 job_names[m->running.kind ? m->running.kind : m->job.kind],
			 m->running.db ? m->running.db : m->job.db ? m->job.db : "?");
	}
	pthread_mutex_unlock(&m->mu);
	job_free(j);
	return ok;
}

/* A job of KIND on the database O names; REQ's file for a start. */
static json_t *queue_job(Migrator *m, JobKind kind, const Opts *o, const json_t *req)
{
	char err[512];
	const ConfDatabase *db = pick_database(o->db, err, sizeof(err));
	if (!db)
		return reply_error("%s", err);
	Job j = {.kind = kind, .complete = o->complete, .force = o->force,
		 .max_latency_ratio = proxy.conf->backfill_max_latency_ratio, .workers = o->workers,
		 .drain_ms = proxy.conf->ddl_drain_timeout_ms};
	j.db = mstrdup(db->name);
	j.schema = mstrdup(o->schema);
	j.conninfo = database_conninfo(db);
	j.role = o->role ? mstrdup(o->role) : NULL;
	if (kind == JOB_START) {
		const char *file = json_string_value(json_object_get(req, "file"));
		json_t *content = json_object_get(req, "content");
		if (!file || !json_is_string(content)) {
			job_free(&j);
			return reply_error("migrate start needs the file: pgflip ctl migrate start FILE");
		}
		j.filename = mstrdup(file);
		j.len = json_string_length(content);
		j.text = malloc(j.len + 1);
		if (j.text)
			memcpy(j.text, json_string_value(content), j.len + 1);
	}
	if (!j.db || !j.schema || !j.conninfo || (o->role && !j.role) || (kind == JOB_START && (!j.filename || !j.text))) {
		job_free(&j);
		return reply_error("out of memory");
	}
	char what[600];
	snprintf(what, sizeof(what), "%s%s of %s on database %s: running (see migrate status)", job_names[kind],
		 kind == JOB_START && o->complete ? " --complete" : "", kind == JOB_START ? j.filename : "the active migration",
		 j.db);
	if (!submit(m, &j, err, sizeof(err)))
		return reply_error("%s", err);
	log_info("migrate: %s", what);
	return reply_ok(what);
}

static json_t *status_json(Migrator *m)
{
	pthread_mutex_lock(&m->mu);
	bool running = busy(m);
	const Job *j = m->running.kind ? &m->running : &m->job;
	uint64_t end = m->finished_ms ? m->finished_ms : proxy_now_ms();
	json_t *o = json_pack("{s:b, s:s, s:s?, s:s, s:s?, s:s?, s:I, s:I, s:s?, s:s?, s:I, s:I, s:f, s:f, s:I, s:f}",
			      "running", running, "command", job_names[running ? j->kind : m->last_kind], "database",
			      running ? j->db : NULL, "phase", migrate_phase_name(m->phase), "migration",
			      m->migration[0] ? m->migration : NULL, "version_schema", m->vschema[0] ? m->vschema : NULL,
			      "step", (json_int_t)m->step, "steps", (json_int_t)m->n_steps, "note",
			      m->note[0] ? m->note : NULL, "table", m->table[0] ? m->table : NULL, "rows_done",
			      (json_int_t)m->rows_done, "rows_total", (json_int_t)m->rows_total, "rows_per_s",
			      m->rows_per_s, "eta_s", m->eta_s, "lock_wait_ms", (json_int_t)m->lock_wait_ms, "elapsed_s",
			      m->started_ms ? (double)(end - m->started_ms) / 1000.0 : 0.0);
	if (o && m->lock_wait_ms > 0)
		json_object_set_new(o, "blocked_by", json_pack("{s:i, s:s, s:s}", "pid", m->blocker_pid, "query",
							       m->blocker_query, "who", m->blocker));
	if (o) {
		json_object_set_new(o, "strong_lock_ms", json_integer(m->strong_lock_ms));
		json_object_set_new(o, "strong_lock_step", m->strong_lock_step[0] ? json_string(m->strong_lock_step)
										 : json_null());
	}
	if (o && m->have_last && !running)
		json_object_set_new(o, "result", json_pack("{s:s, s:s, s:s, s:s}", "status",
							   m->last.status == MIGRATE_OK ? "ok"
							   : m->last.status == MIGRATE_CANCELLED ? "cancelled"
												  : "failed",
							   "error", m->last.err, "migration", m->last.migration,
							   "version_schema", m->last.vschema));
	pthread_mutex_unlock(&m->mu);
	json_t *r = json_pack("{s:b}", "ok", 1);
	json_object_set_new(r, "migration", o ? o : json_null());
	return r;
}

/* The instant rollback: routes first, then the rollback job. */
static json_t *cmd_rollback(Migrator *m, const Opts *o)
{
	char err[512];
	const ConfDatabase *db = pick_database(o->db, err, sizeof(err));
	if (!db)
		return reply_error("%s", err);
	json_t *row = active_row(m, db->name);
	const char *vschema = row ? json_string_value(json_object_get(row, "version_schema")) : NULL;
	if (!vschema) {
		if (busy_now(m))
			return reply_error("a migration job is running: `migrate cancel` it first");
		return reply_error("no active migration known on database %s", db->name);
	}
	char from[MIGRATE_NAME_MAX], to[MIGRATE_NAME_MAX];
	copy_str(from, sizeof(from), vschema);
	copy_str(to, sizeof(to), previous_vschema(m, db->name, row, o->schema));
	size_t moved = router_flip(&proxy.router, from, to); /* a canary on FROM moves, or ends on the default */
	log_info("migrate: rollback: %zu route(s) moved from %s to %s", moved, from, to);
	if (moved) {
		char who[600];
		snprintf(who, sizeof(who), "rollback of %s: %s -> %s", json_string_value(json_object_get(row, "name")), from,
			 to);
		routestore_publish(who);
	}
	json_t *r = queue_job(m, JOB_ROLLBACK, o, NULL);
	if (json_is_true(json_object_get(r, "ok"))) {
		char text[700];
		snprintf(text, sizeof(text),
			 "%zu route(s) moved from %s to %s; clients follow at their next transaction, then the rollback "
			 "runs",
			 moved, from, to);
		json_object_set_new(r, "message", json_string(text));
	}
	return r;
}

static json_t *cmd_promote(int argc, char **argv)
{
	char err[512];
	if (argc != 2)
		return reply_error("usage: promote SCHEMA");
	if (!migrator_routable(argv[1], err, sizeof(err)) || !router_set_default(&proxy.router, argv[1], err, sizeof(err)))
		return reply_error("%s", err);
	if (proxy.router.canary_schema && !router_set_canary(&proxy.router, NULL, 0, err, sizeof(err)))
		return reply_error("%s", err);
	log_info("migrate: promote %s: the default route; the canary ends", argv[1]);
	char who[300];
	snprintf(who, sizeof(who), "promote %s", argv[1]);
	routestore_publish(who);
	return reply_ok("default route changed; connected clients follow at their next transaction");
}

static json_t *cmd_migrate(Migrator *m, int argc, char **argv, const json_t *req)
{
	const char *sub = argc > 1 ? argv[1] : "";
	Opts o = parse_opts(argc, argv, 2);
	if (o.bad)
		return reply_error("migrate %s: unexpected \"%s\"", sub, o.bad);
	if (!strcmp(sub, "start"))
		return queue_job(m, JOB_START, &o, req);
	if (!strcmp(sub, "complete"))
		return queue_job(m, JOB_COMPLETE, &o, NULL);
	if (!strcmp(sub, "rollback"))
		return cmd_rollback(m, &o);
	if (!strcmp(sub, "status"))
		return status_json(m);
	if (!strcmp(sub, "cancel")) {
		if (!busy_now(m))
			return reply_error("no migration job is running");
		atomic_store(&m->cancel, true);
		log_info("migrate: cancel asked: the job stops at its next batch or step");
		return reply_ok("cancelling: the job stops at its next batch or step; start resumes it");
	}
	return reply_error("usage: migrate start FILE [--role ROLE] | status | complete | rollback [--force] | cancel [--db NAME]");
}


/* Asks the worker for DB's history when it is idle (`versions` shows the
 * cache; the next call shows the fresh one). */
static void refresh_history(Migrator *m, const ConfDatabase *db, const char *schema)
{
	char err[256];
	Job j = {.kind = JOB_HISTORY};
	j.db = mstrdup(db->name);
	j.schema = mstrdup(schema);
	j.conninfo = database_conninfo(db);
	if (j.db && j.schema && j.conninfo)
		(void)submit(m, &j, err, sizeof(err));
	else
		job_free(&j);
}

static json_t *cmd_versions(Migrator *m, int argc, char **argv)
{
	Opts o = parse_opts(argc, argv, 1);
	if (o.bad)
		return reply_error("versions: unexpected \"%s\"", o.bad);
	char err[256];
	const ConfDatabase *pick = o.db || proxy.conf->n_databases == 1 ? pick_database(o.db, err, sizeof(err)) : NULL;
	if (o.db && !pick)
		return reply_error("%s", err);
	if (pick)
		refresh_history(m, pick, o.schema);
	json_t *rows = json_array();
	const char *dbname;
	json_t *hist;
	json_object_foreach(m->history, dbname, hist) {
		size_t i;
		json_t *h;
		json_array_foreach(hist, i, h) {
			const char *vs = json_string_value(json_object_get(h, "version_schema"));
			if (!vs)
				continue;
			char why[512] = "";
			router_names(&proxy.router, vs, why, sizeof(why));
			int elsewhere = routestore_clients_elsewhere(vs);
			json_array_append_new(
				rows, json_pack("{s:s, s:s, s:O, s:O, s:b, s:s, s:i, s:o, s:o}", "database", dbname,
						"version_schema", vs, "migration", json_object_get(h, "name"), "state",
						json_object_get(h, "status"), "default",
						proxy.router.default_schema && !strcmp(proxy.router.default_schema, vs), "routes",
						why, "clients", (int)clients_on(vs, NULL, 0), "clients_elsewhere",
						elsewhere < 0 ? json_null() : json_integer(elsewhere), "stats",
						admin_route_stats(vs)));
		}
	}
	json_t *r = json_pack("{s:b}", "ok", 1);
	json_object_set_new(r, "versions", rows);
	return r;
}

bool migrator_routable(const char *schema, char *err, size_t errlen)
{
	Migrator *m = proxy.migrator;
	if (!m)
		return true;
	bool ok = true;
	pthread_mutex_lock(&m->mu);
	if (m->running.kind == JOB_START && !strcmp(m->vschema, schema) &&
	    (m->phase == MIGRATE_PHASE_PLAN || m->phase == MIGRATE_PHASE_START || m->phase == MIGRATE_PHASE_BACKFILL)) {
		snprintf(err, errlen, "%s is not routable yet: the start of %s is running (%s)", schema, m->migration,
			 migrate_phase_name(m->phase));
		ok = false;
	}
	pthread_mutex_unlock(&m->mu);
	const char *dbname;
	json_t *hist;
	json_object_foreach(m->history, dbname, hist) {
		size_t i;
		json_t *h;
		json_array_foreach(hist, i, h) {
			const char *vs = json_string_value(json_object_get(h, "version_schema"));
			const char *st = json_string_value(json_object_get(h, "status"));
			json_int_t done = json_integer_value(json_object_get(h, "start_done"));
			json_int_t steps = json_integer_value(json_object_get(h, "start_steps"));
			if (ok && vs && st && !strcmp(vs, schema) && !strcmp(st, "active") && done < steps) {
				snprintf(err, errlen, "%s is not routable yet: the start of %s has done %lld of %lld steps",
					 schema, json_string_value(json_object_get(h, "name")), (long long)done,
					 (long long)steps);
				ok = false;
			}
			if (ok && vs && st && !strcmp(vs, schema) && !strcmp(st, "rolled_back")) {
				snprintf(err, errlen, "%s is not routable: its migration %s was rolled back (start it again first)",
					 schema, json_string_value(json_object_get(h, "name")));
				ok = false;
			}
		}
	}
	return ok;
}

bool migrator_read_only(int argc, char **argv)
{
	return !strcmp(argv[0], "versions") || (!strcmp(argv[0], "migrate") && argc > 1 && !strcmp(argv[1], "status"));
}

json_t *migrator_command(int argc, char **argv, const json_t *req)
{
	Migrator *m = proxy.migrator;
	bool ours = !strcmp(argv[0], "migrate") || !strcmp(argv[0], "versions") || !strcmp(argv[0], "promote") ||
		    !strcmp(argv[0], "rollback");
	if (!ours)
		return NULL;
	if (!m)
		return reply_error("migrations are not available in this process");
	if (!strcmp(argv[0], "migrate"))
		return cmd_migrate(m, argc, argv, req);
	if (!strcmp(argv[0], "versions"))
		return cmd_versions(m, argc, argv);
	if (!strcmp(argv[0], "promote"))
		return cmd_promote(argc, argv);
	Opts o = parse_opts(argc, argv, 1);
	if (o.bad)
		return reply_error("rollback: unexpected \"%s\"", o.bad);
	return cmd_rollback(m, &o);
}

/* proxy.on_canary_failed while the migrator runs: a canary on the version
 * schema of a database's active migration is rolled back as `rollback`
 * does (routes, then the DDL in the background); any other canary as the
 * proxy's default hook does. */
static void canary_failed(const char *canary_schema, const char *why)
{
	Migrator *m = proxy.migrator;
	const char *dbname;
	json_t *hist;
	json_object_foreach(m->history, dbname, hist) {
		json_t *row = active_row(m, dbname);
		const char *vs = row ? json_string_value(json_object_get(row, "version_schema")) : NULL;
		if (!vs || strcmp(vs, canary_schema) != 0)
			continue;
		Opts o = {.db = dbname, .schema = "public"};
		log_warning("migrate: the canary on %s failed (%s): rolling back its migration", vs, why);
		json_t *r = cmd_rollback(m, &o);
		if (!json_is_true(json_object_get(r, "ok")))
			log_warning("migrate: rollback after the canary: %s", json_string_value(json_object_get(r, "error")));
		json_decref(r);
		return;
	}
	proxy_canary_rollback(canary_schema, why);
}
