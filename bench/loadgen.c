/*
 * bench/loadgen.c: a fixed-rate load generator for PostgreSQL and for the
 * proxies in front of it (pgflip, PgBouncer), on libpq.
 *
 * Why a fixed rate. A benchmark that runs as fast as it can hides a stall:
 * a client that waits 800 ms on a lock just sends fewer transactions, and
 * the stall becomes a dip in throughput that averages away. Here every
 * transaction has a scheduled start (a group's rate, spread evenly over its
 * connections: connection c of n runs the group's transactions c, c + n,
 * c + 2n, ... at t0 + k / rate), and its latency is counted from that
 * scheduled time, not from when it could be sent. A connection that is
 * stuck falls behind its schedule, and every transaction it owes carries
 * the wait (an open-loop load: no "coordinated omission").
 *
 * One thread, one loop. Every connection is a non-blocking libpq connection
 * (PQconnectStartParams + PQconnectPoll, then PQsetnonblocking and pipeline
 * mode). One ppoll() waits on every socket and on the earliest of: the next
 * due transaction, the next check of the start and stop files, the lock
 * sampler's next sample, a reconnect. Nothing blocks: a slow connection
 * delays only its own transactions.
 *
 * A transaction is one statement from the group's SQL templates (an insert
 * of a new row, an update by key, a read by key, drawn by the group's
 * --mix weights) and, with --route, `SELECT current_setting('search_path')`,
 * both sent as one pipeline that ends in one Sync. PostgreSQL runs the
 * statements before a Sync as one implicit transaction, so the route read
 * is the route that the statement ran on, and it costs no round trip. With
 * --prepared, the statement is a named prepared statement (lg_insert,
 * lg_update, lg_read), which each connection prepares in the pipeline of
 * its first use, and again after a reconnect, as drivers do.
 *
 * Templates take three parameters, always sent, typed: $1 the key (bigint),
 * $2 a text value, $3 an integer value; a template may leave any of them
 * out. Values are made from (group, id, the number of the write to that
 * key), so a checker can tell each write apart.
 *
 * Keys. An insert's id is ID_BASE + (group index + 1) * 10^12 + connection
 * index * 10^8 + sequence (from 1): unique per run without any
 * coordination. Updates and reads pick a key among those their connection
 * owns: the ids it inserted (committed) and, with --keys N, its share of the
 * rows 1..N that exist before the run (key k belongs to the connection whose
 * index over all groups is (k - 1) mod total connections). One writer per
 * key means that the order of a key's ledger lines is the order of its
 * commits, and --check can compare a read with the last values written.
 *
 * Outputs. --csv: one line per transaction (scheduled start, wall clock in
 * microseconds since the epoch, so that a script can line it up with its
 * own `date +%s%N`; lag from schedule to send; latency from schedule to the
 * end; outcome `ok` or the SQLSTATE; route). --ledger: one line per
 * committed write (a write whose connection died before its answer is
 * listed with status `unknown`: it may or may not have committed). The
 * summary (stdout, and --summary FILE) per group: sent, ok, failed with
 * their SQLSTATEs and first messages (failed transactions, and also logins
 * that failed and sessions that the server ended between transactions:
 * 08001 for a login, the FATAL's SQLSTATE such as 57P01, else 08006),
 * transactions never sent (due before the stop, still not sent when the
 * drain ended), p50/p99/max latency of every finished transaction, the
 * longest lag (a due transaction that its connection could not send yet,
 * because its previous one was still running, or because this process did
 * not run: a lag on every connection at once is the generator's, not the
 * target's), seconds
 * of its running time with zero commits, and, with --lock-dsn, the longest
 * lock wait of its backends.
 *
 * The lock sampler (--lock-dsn CONNINFO, straight to PostgreSQL) queries
 * pg_locks every --lock-every ms for locks not granted, with their
 * waitstart and pg_blocking_pids() (each blocker named by its
 * application_name, else its backend_type, else, where pg_stat_activity
 * hides both from this user, by the locks it holds on that relation), and
 * keeps the longest wait per
 * application_name: a group's (pgflip carries the client's
 * application_name to the backend) and every other session's, such as a
 * migrator's. It sees waits of at least the sampling period, and is low by
 * at most one period.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

/* Ids: a group's inserted ids start at (group index + 1) * LG_GROUP_SPAN, a
 * connection's at connection index * LG_CONN_SPAN within it; --keys must
 * stay below LG_GROUP_SPAN. */
#define LG_GROUP_SPAN 1000000000000LL
#define LG_CONN_SPAN 100000000LL
#define LG_MAX_GROUPS 64
#define LG_MAX_ERRORS 16          /* distinct SQLSTATEs kept per group; more go to "other" */
#define LG_MAX_OTHERS 16          /* sessions of no group whose lock waits are kept */
#define LG_FILE_CHECK_US 10000    /* start/stop files are looked at every 10 ms */
#define LG_CONNECT_GRACE_US 5000000 /* a group's schedule starts when its connections are up, or after 5 s */
#define LG_RECONNECT_MIN_US 100000  /* a broken connection is reopened after 100 ms, doubling to 2 s */
#define LG_RECONNECT_MAX_US 2000000
#define LG_FLUSH_US 1000000       /* the CSV and the ledger reach their files at least every second */

/* Parameter types of every template: $1 bigint, $2 text, $3 integer. */
static const Oid lg_param_types[3] = {20, 25, 23};
static const char lg_route_sql[] = "SELECT pg_catalog.current_setting('search_path')";

typedef enum { OP_INSERT, OP_UPDATE, OP_READ, OP_COUNT } OpKind;
static const char *const op_names[OP_COUNT] = {"insert", "update", "read"};

/* What each result of a transaction's pipeline answers, in order. */
typedef enum { R_PREPARE, R_STATEMENT, R_ROUTE } ResultRole;

typedef enum { G_WAITING, G_CONNECTING, G_RUNNING, G_STOPPING, G_DONE } GroupState;
typedef enum { C_OFF, C_CONNECTING, C_READY, C_BUSY, C_BROKEN, C_CLOSED } ConnState;

typedef struct ErrCount {
	char code[12];
	uint64_t n;
	char first[256];          /* the first message of that SQLSTATE */
} ErrCount;

typedef struct LockMax {
	char app[64];
	int64_t wait_us;
	char detail[200];         /* mode, relation, blockers of the longest wait */
} LockMax;

typedef struct Group Group;

/* A key a connection owns: how many writes to it were tried (each write's
 * values carry its number), and whether the last one's outcome is unknown. */
typedef struct OwnKey {
	int64_t id;
	uint32_t writes;
	bool uncertain;
} OwnKey;

typedef struct Tx {
	OpKind op;
	int64_t id;
	size_t key;               /* index into the connection's keys (update, read) */
	uint32_t write_no;        /* the number of this write to its key */
	char text[96];
	int32_t num;
	int64_t sched_us, sent_us; /* monotonic */
	uint64_t seq;
	bool failed;
	bool unknown;             /* a write whose connection died before its answer */
	char code[12];
	char msg[256];
	char route[64];
	ResultRole roles[3];      /* what the pipeline's results answer, in order */
	int n_roles;
	int results;              /* results seen so far */
} Tx;

typedef struct Conn {
	Group *g;
	int index;                /* within the group */
	int global;               /* over all groups */
	PGconn *pg;
	ConnState state;
	bool want_write;          /* connecting: poll for write; else: PQflush has more */
	uint64_t k;               /* transactions of this connection scheduled so far */
	int64_t next_due_us;
	uint64_t ins_seq;
	OwnKey *keys;             /* the --keys share first, then inserted ids */
	size_t n_keys, cap_keys;
	uint64_t rng;
	int64_t reconnect_at_us;
	int64_t backoff_us;
	int nulls;                /* consecutive NULL results (pipeline separators) */
	bool prepared[OP_COUNT];  /* --prepared: lg_<op> exists on this session */
	char fatal_code[12];      /* a FATAL the server sent while no query ran (libpq */
	char fatal_msg[256];      /* hands those to the notice receiver), e.g. 57P01 */
	Tx tx;
} Conn;

typedef struct Stats {
	uint64_t sent, ok, failed, unsent, unfinished;
	ErrCount errs[LG_MAX_ERRORS];
	size_t n_errs;
	uint64_t other_errs;
	uint32_t *lat;            /* latency (us) of every finished transaction */
	int64_t max_lag_us;       /* the longest a due transaction waited to be sent */
	size_t n_lat, cap_lat;
	uint32_t *per_sec;        /* commits per second since t0 */
	size_t n_sec;
	LockMax lock;
	uint64_t iv_ok, iv_failed; /* since the last --progress line */
	uint32_t iv_max;
} Stats;

struct Group {
	char *name;               /* also its application_name */
	char *dsn;                /* the target (a group may have its own: a control group straight to PostgreSQL) */
	int index;
	int n_conns;
	double rate;              /* transactions per second, whole group */
	int mix[OP_COUNT];
	char *sql[OP_COUNT];
	char *table, *columns;
	double start_after_s, stop_after_s; /* < 0: not set */
	char *start_file, *stop_file;
	bool check;
	bool prepared;            /* named prepared statements (Parse once per connection) */
	GroupState state;
	int64_t t0_us, begin_us, stop_us; /* schedule start, start condition met, stop */
	Conn *conns;
	Stats st;
};

typedef struct Sampler {
	char *dsn;
	PGconn *pg;
	ConnState state;
	bool want_write;
	int64_t every_us;
	int64_t next_us;
	int64_t reconnect_at_us;
	FILE *csv;
	LockMax others[LG_MAX_OTHERS];
	size_t n_others;
	uint64_t samples;
} Sampler;

typedef struct Loadgen {
	double duration_s;        /* < 0: none */
	char *stop_file;
	bool route;
	int64_t id_base;
	int64_t n_keys;
	double drain_s;
	double progress_s;        /* 0: none */
	uint64_t seed;
	FILE *csv, *ledger;
	char *summary_path;
	Group defaults;
	Group *groups[LG_MAX_GROUPS];
	int n_groups;
	int total_conns;
	int64_t mono0_us, wall0_us;
	int64_t next_file_check_us;
	int64_t next_progress_us;
	int64_t next_flush_us;
	bool stopping;
	int64_t stop_at_us;
	Sampler lock;
} Loadgen;

static volatile sig_atomic_t lg_signalled;

/* ---- small helpers ------------------------------------------------------ */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("loadgen: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p)
		die("out of memory");
	return p;
}

static void *xgrow(void *p, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return p;
	*cap = *cap ? *cap * 2 : 64;
	p = realloc(p, *cap * size);
	if (!p)
		die("out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		die("out of memory");
	return d;
}

/* Monotonic time in microseconds. */
static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Wall-clock time (microseconds since the epoch) of monotonic time T. */
static int64_t wall_of(const Loadgen *lg, int64_t t) { return lg->wall0_us + (t - lg->mono0_us); }

static bool file_exists(const char *path)
{
	struct stat sb;
	return path && stat(path, &sb) == 0;
}

/* xorshift64*: a connection's own random numbers (no shared state). */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static double parse_num(const char *opt, const char *v, double min)
{
	char *end;
	errno = 0;
	double d = strtod(v, &end);
	if (errno || end == v || *end || !isfinite(d) || d < min)
		die("%s: \"%s\" is not a number >= %g", opt, v, min);
	return d;
}

static bool name_ok(const char *s)
{
	if (!*s || strlen(s) >= 63)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

/* Writes S as one CSV field (RFC 4180: quoted when it holds a comma, a
 * quote or a line break; quotes doubled). */
static void csv_field(FILE *f, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* ---- statistics ---------------------------------------------------------- */

static void stats_error(Stats *st, const char *code, const char *msg)
{
	for (size_t i = 0; i < st->n_errs; i++)
		if (!strcmp(st->errs[i].code, code)) {
			st->errs[i].n++;
			return;
		}
	if (st->n_errs == LG_MAX_ERRORS) {
		st->other_errs++;
		return;
	}
	ErrCount *e = &st->errs[st->n_errs++];
	snprintf(e->code, sizeof(e->code), "%s", code);
	e->n = 1;
	snprintf(e->first, sizeof(e->first), "%s", msg);
	for (char *p = e->first; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

static void stats_latency(Stats *st, int64_t us)
{
	st->lat = xgrow(st->lat, st->n_lat, &st->cap_lat, sizeof(uint32_t));
	uint32_t v = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	st->lat[st->n_lat++] = v;
	if (v > st->iv_max)
		st->iv_max = v;
}

/* One more commit in second SEC of the group's running time. */
static void stats_commit_at(Stats *st, int64_t sec)
{
	if (sec < 0)
		return;
	if ((size_t)sec >= st->n_sec) {
		size_t n = (size_t)sec + 64;
		st->per_sec = realloc(st->per_sec, n * sizeof(uint32_t));
		if (!st->per_sec)
			die("out of memory");
		memset(st->per_sec + st->n_sec, 0, (n - st->n_sec) * sizeof(uint32_t));
		st->n_sec = n;
	}
	st->per_sec[sec]++;
}

/* A longer wait than M's replaces it. Its detail is kept from an earlier
 * sample when this one names no blocker: the last sample of a wait often
 * comes after the blocker let go and before the waiter got the lock. */
static void lockmax_note(LockMax *m, const char *app, int64_t wait_us, const char *detail)
{
	if (wait_us <= m->wait_us)
		return;
	snprintf(m->app, sizeof(m->app), "%s", app);
	m->wait_us = wait_us;
	size_t n = strlen(detail);
	if (!m->detail[0] || n < 2 || strcmp(detail + n - 2, " ?") != 0)
		snprintf(m->detail, sizeof(m->detail), "%s", detail);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* ---- options ------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: loadgen --dsn CONNINFO [OPTION...] --group NAME:CONNS [GROUP OPTION...] [--group ...]\n"
	      "Drives a PostgreSQL target at a fixed rate: every transaction has a scheduled start,\n"
	      "and its latency counts from then, so a stall shows as latency.\n"
	      "\n"
	      "Run options:\n"
	      "  --dsn CONNINFO       libpq conninfo of the target (each group sets application_name); also a\n"
	      "                       group option: a group with a target of its own (a control group)\n"
	      "  --duration S         stop after S seconds             --stop-file PATH  stop when PATH exists\n"
	      "  --csv FILE           one line per transaction: group,conn,seq,op,id,sched_us,lag_us,\n"
	      "                       latency_us,outcome,route (sched_us: wall clock, us since the epoch)\n"
	      "  --ledger FILE        one line per committed write: end_us,group,conn,id,op,text,int,route,status\n"
	      "  --summary FILE       the summary there too (always on stdout)\n"
	      "  --route              each transaction also reads current_setting('search_path'), in its pipeline\n"
	      "  --keys N             rows 1..N exist: updates and reads also pick among them (split by connection)\n"
	      "  --id-base N          added to every inserted id (ids: N + (group+1)*10^12 + conn*10^8 + seq)\n"
	      "  --drain S            after the stop, wait S s for transactions in flight (5)\n"
	      "  --lock-dsn CONNINFO  sample pg_locks there (straight to PostgreSQL) for waits per application_name\n"
	      "  --lock-every MS      sampling period (10)              --lock-csv FILE  every wait sampled\n"
	      "  --progress S         a line per group on stderr every S seconds\n"
	      "  --seed N             random seed (1)\n"
	      "\n"
	      "Group options (before the first --group: defaults for every group; after one: that group):\n"
	      "  --group NAME:CONNS   a group of CONNS connections with application_name NAME\n"
	      "  --rate TPS           transactions per second of the group, spread evenly (10)\n"
	      "  --mix I:U:R          weights of insert, update by key, read by key (1:1:2)\n"
	      "  --table T --columns KEY,TEXT,INT   templates from names (TEXT may be empty: id,,qty)\n"
	      "  --insert SQL --update SQL --read SQL   templates: $1 key (bigint), $2 text, $3 integer\n"
	      "  --check              an update or insert must change 1 row; a read must return 1 row whose\n"
	      "                       first two columns (text, integer; NULL: not compared) equal the last write\n"
	      "  --prepared           named prepared statements (lg_insert...), prepared by each connection\n"
	      "                       in the pipeline of its first use, as drivers do (default: unnamed)\n"
	      "  --start-after S      start S seconds after launch     --start-file PATH  start when PATH exists\n"
	      "  --stop-after S       stop S seconds after launch      --group-stop-file PATH  stop when PATH exists\n"
	      "\n"
	      "Exit status: 0 when every transaction succeeded, 1 when any failed or was not sent, 2 on a usage\n"
	      "or setup error.\n",
	      f);
}

static void group_init_defaults(Group *g)
{
	memset(g, 0, sizeof(*g));
	g->rate = 10;
	g->mix[OP_INSERT] = 1;
	g->mix[OP_UPDATE] = 1;
	g->mix[OP_READ] = 2;
	g->start_after_s = -1;
	g->stop_after_s = -1;
}

static Group *group_new(Loadgen *lg, const char *spec)
{
	if (lg->n_groups == LG_MAX_GROUPS)
		die("at most %d groups", LG_MAX_GROUPS);
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec)
		die("--group %s: expected NAME:CONNS", spec);
	char name[64];
	snprintf(name, sizeof(name), "%.*s", (int)(colon - spec), spec);
	if (!name_ok(name))
		die("--group %s: a name is letters, digits, '-', '_' and '.' (at most 62)", spec);
	double n = parse_num("--group", colon + 1, 1);
	if (n != floor(n) || n > 10000)
		die("--group %s: CONNS must be a whole number from 1 to 10000", spec);
	Group *g = xcalloc(1, sizeof(*g));
	*g = lg->defaults; /* the strings stay shared with the defaults: never freed */
	g->name = xstrdup(name);
	g->index = lg->n_groups;
	g->n_conns = (int)n;
	lg->groups[lg->n_groups++] = g;
	return g;
}

/* Parses I:U:R into G's mix. */
static void parse_mix(Group *g, const char *v)
{
	int a, b, c;
	char tail;
	if (sscanf(v, "%d:%d:%d%c", &a, &b, &c, &tail) != 3 || a < 0 || b < 0 || c < 0 || a + b + c == 0)
		die("--mix %s: expected I:U:R, three weights >= 0, not all 0", v);
	g->mix[OP_INSERT] = a;
	g->mix[OP_UPDATE] = b;
	g->mix[OP_READ] = c;
}

static void parse_args(Loadgen *lg, int argc, char **argv)
{
	Group *g = &lg->defaults;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "-h") || !strcmp(o, "--help")) {
			usage(stdout);
			exit(0);
		}
		if (!strcmp(o, "--route")) {
			lg->route = true;
			continue;
		}
		if (!strcmp(o, "--check")) {
			g->check = true;
			continue;
		}
		if (!strcmp(o, "--prepared")) {
			g->prepared = true;
			continue;
		}
		if (i + 1 >= argc)
			die("%s: unknown option, or its value is missing (see --help)", o);
		const char *v = argv[++i];
		if (!strcmp(o, "--dsn"))
			g->dsn = xstrdup(v);
		else if (!strcmp(o, "--duration"))
			lg->duration_s = parse_num(o, v, 0);
		else if (!strcmp(o, "--stop-file"))
			lg->stop_file = xstrdup(v);
		else if (!strcmp(o, "--csv") || !strcmp(o, "--ledger")) {
			FILE *f = fopen(v, "w");
			if (!f)
				die("%s %s: %s", o, v, strerror(errno));
			setvbuf(f, NULL, _IOFBF, 1 << 20);
			*(!strcmp(o, "--csv") ? &lg->csv : &lg->ledger) = f;
		} else if (!strcmp(o, "--summary"))
			lg->summary_path = xstrdup(v);
		else if (!strcmp(o, "--keys"))
			lg->n_keys = (int64_t)parse_num(o, v, 0);
		else if (!strcmp(o, "--id-base"))
			lg->id_base = (int64_t)parse_num(o, v, 0);
		else if (!strcmp(o, "--drain"))
			lg->drain_s = parse_num(o, v, 0);
		else if (!strcmp(o, "--lock-dsn"))
			lg->lock.dsn = xstrdup(v);
		else if (!strcmp(o, "--lock-every"))
			lg->lock.every_us = (int64_t)(parse_num(o, v, 1) * 1000);
		else if (!strcmp(o, "--lock-csv")) {
			lg->lock.csv = fopen(v, "w");
			if (!lg->lock.csv)
				die("%s %s: %s", o, v, strerror(errno));
		} else if (!strcmp(o, "--progress"))
			lg->progress_s = parse_num(o, v, 0.1);
		else if (!strcmp(o, "--seed"))
			lg->seed = (uint64_t)parse_num(o, v, 0);
		else if (!strcmp(o, "--group"))
			g = group_new(lg, v);
		else if (!strcmp(o, "--rate"))
			g->rate = parse_num(o, v, 0.001);
		else if (!strcmp(o, "--mix"))
			parse_mix(g, v);
		else if (!strcmp(o, "--table"))
			g->table = xstrdup(v);
		else if (!strcmp(o, "--columns"))
			g->columns = xstrdup(v);
		else if (!strcmp(o, "--insert"))
			g->sql[OP_INSERT] = xstrdup(v);
		else if (!strcmp(o, "--update"))
			g->sql[OP_UPDATE] = xstrdup(v);
		else if (!strcmp(o, "--read"))
			g->sql[OP_READ] = xstrdup(v);
		else if (!strcmp(o, "--start-after"))
			g->start_after_s = parse_num(o, v, 0);
		else if (!strcmp(o, "--start-file"))
			g->start_file = xstrdup(v);
		else if (!strcmp(o, "--stop-after"))
			g->stop_after_s = parse_num(o, v, 0);
		else if (!strcmp(o, "--group-stop-file"))
			g->stop_file = xstrdup(v);
		else
			die("%s: unknown option (see --help)", o);
	}
	for (int i = 0; i < lg->n_groups; i++)
		if (!lg->groups[i]->dsn)
			die("group %s: --dsn CONNINFO is required (see --help)", lg->groups[i]->name);
	if (!lg->n_groups)
		die("at least one --group NAME:CONNS is required (see --help)");
	if (lg->n_keys >= LG_GROUP_SPAN)
		die("--keys must be below 10^12 (inserted ids start there)");
}

/* The templates of G from --table and --columns, where --insert/--update/
 * --read did not give them. */
static void group_templates(Group *g)
{
	if (g->table && g->columns) {
		char key[64], text[64] = "", num[64];
		bool three = sscanf(g->columns, "%63[^,],%63[^,],%63s", key, text, num) == 3;
		if (!three && sscanf(g->columns, "%63[^,],,%63s", key, num) != 2)
			die("group %s: --columns %s: expected KEY,TEXT,INT (TEXT may be empty)", g->name, g->columns);
		if (!three)
			text[0] = '\0';
		/* without a TEXT column, the templates leave $2 out */
		char tcol[80] = "", tset[80] = "", buf[1024];
		if (text[0]) {
			snprintf(tcol, sizeof(tcol), ", %s", text);
			snprintf(tset, sizeof(tset), "%s = $2, ", text);
		}
		if (!g->sql[OP_INSERT]) {
			snprintf(buf, sizeof(buf), "INSERT INTO %s (%s%s, %s) VALUES ($1%s, $3)", g->table, key, tcol, num,
				 text[0] ? ", $2" : "");
			g->sql[OP_INSERT] = xstrdup(buf);
		}
		if (!g->sql[OP_UPDATE]) {
			snprintf(buf, sizeof(buf), "UPDATE %s SET %s%s = $3 WHERE %s = $1", g->table, tset, num, key);
			g->sql[OP_UPDATE] = xstrdup(buf);
		}
		if (!g->sql[OP_READ]) {
			snprintf(buf, sizeof(buf), "SELECT %s, %s FROM %s WHERE %s = $1", text[0] ? text : "NULL::text", num,
				 g->table, key);
			g->sql[OP_READ] = xstrdup(buf);
		}
	}
	for (int op = 0; op < OP_COUNT; op++)
		if (g->mix[op] && !g->sql[op])
			die("group %s: no %s template (--%s SQL, or --table and --columns)", g->name, op_names[op],
			    op_names[op]);
}

/* ---- keys and values ----------------------------------------------------- */

/* C's share of the rows 1..n_keys. */
static void conn_init_keys(Loadgen *lg, Conn *c)
{
	for (int64_t k = c->global + 1; k <= lg->n_keys; k += lg->total_conns) {
		c->keys = xgrow(c->keys, c->n_keys, &c->cap_keys, sizeof(OwnKey));
		c->keys[c->n_keys++] = (OwnKey){.id = k, .writes = 0};
	}
}

/* The values of write number N of key ID by group G. */
static void write_values(const Group *g, int64_t id, uint32_t n, char *text, size_t len, int32_t *num)
{
	snprintf(text, len, "%s:%" PRId64 ":%" PRIu32, g->name, id, n);
	*num = (int32_t)(((uint64_t)id * 2654435761u + n * 40503u) % 1000000u);
}

static OpKind pick_op(Conn *c)
{
	const int *mix = c->g->mix;
	int total = mix[0] + mix[1] + mix[2];
	int r = (int)(rng_next(&c->rng) % (uint64_t)total);
	OpKind op = r < mix[0] ? OP_INSERT : r < mix[0] + mix[1] ? OP_UPDATE : OP_READ;
	/* a connection that owns no key yet inserts */
	if (op != OP_INSERT && c->n_keys == 0)
		op = c->g->mix[OP_INSERT] ? OP_INSERT : op;
	return op;
}

/* ---- connections --------------------------------------------------------- */

static void record_tx(Loadgen *lg, Conn *c, int64_t end_us);
static void conn_broken(Loadgen *lg, Conn *c, const char *code, const char *msg, int64_t now);

/* libpq's notice receiver: keeps a FATAL (or PANIC) that came while no
 * query ran, such as 57P01 from pg_terminate_backend, so that the end of
 * the session is reported with its SQLSTATE and not as a lost connection;
 * other notices are dropped. */
static void conn_notice(void *arg, const PGresult *r)
{
	Conn *c = arg;
	const char *sev = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
	const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (!sev || (strcmp(sev, "FATAL") != 0 && strcmp(sev, "PANIC") != 0) || c->fatal_code[0])
		return;
	snprintf(c->fatal_code, sizeof(c->fatal_code), "%s", code ? code : "08006");
	snprintf(c->fatal_msg, sizeof(c->fatal_msg), "%s", PQresultErrorMessage(r));
}

/* Starts C's login (libpq's non-blocking connect, application_name = the
 * group's name). */
static void conn_connect(Loadgen *lg, Conn *c, int64_t now)
{
	const char *kw[] = {"dbname", "application_name", NULL};
	const char *val[] = {c->g->dsn, c->g->name, NULL};
	c->pg = PQconnectStartParams(kw, val, 1);
	c->state = C_CONNECTING;
	c->want_write = true;
	c->fatal_code[0] = '\0';
	memset(c->prepared, 0, sizeof(c->prepared));
	if (c->pg)
		PQsetNoticeReceiver(c->pg, conn_notice, c);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD)
		conn_broken(lg, c, "08001", c->pg ? PQerrorMessage(c->pg) : "out of memory", now);
}

/* C's connection is gone: its transaction in flight (if any) ends with
 * CODE, and C reconnects after a backoff. */
static void conn_broken(Loadgen *lg, Conn *c, const char *code, const char *msg, int64_t now)
{
	if (c->fatal_code[0]) {
		code = c->fatal_code;
		msg = c->fatal_msg;
	}
	if (c->state == C_BUSY) {
		if (!c->tx.failed) {
			c->tx.failed = true;
			snprintf(c->tx.code, sizeof(c->tx.code), "%s", code);
			snprintf(c->tx.msg, sizeof(c->tx.msg), "%s", msg);
			/* a write whose answer did not come: its commit is unknown */
			c->tx.unknown = c->tx.op != OP_READ;
		}
		record_tx(lg, c, now);
	} else if (c->state == C_CONNECTING) {
		Stats *st = &c->g->st;
		st->failed++;
		stats_error(st, code, msg);
		if (lg->csv)
			fprintf(lg->csv, "%s,%d,0,connect,0,%" PRId64 ",0,0,%s,\n", c->g->name, c->index, wall_of(lg, now),
				code);
	} else {
		/* an idle connection closed by the server: no transaction lost, but
		 * the group saw its session end */
		stats_error(&c->g->st, code, msg);
		c->g->st.failed++;
	}
	if (c->pg)
		PQfinish(c->pg);
	c->pg = NULL;
	c->state = C_BROKEN;
	c->backoff_us = c->backoff_us ? c->backoff_us * 2 : LG_RECONNECT_MIN_US;
	if (c->backoff_us > LG_RECONNECT_MAX_US)
		c->backoff_us = LG_RECONNECT_MAX_US;
	c->reconnect_at_us = now + c->backoff_us;
}

/* Advances C's login. */
static void conn_poll(Loadgen *lg, Conn *c, int64_t now)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING: c->want_write = false; return;
	case PGRES_POLLING_WRITING: c->want_write = true; return;
	case PGRES_POLLING_OK:
		if (PQsetnonblocking(c->pg, 1) != 0 || !PQenterPipelineMode(c->pg)) {
			conn_broken(lg, c, "08001", PQerrorMessage(c->pg), now);
			return;
		}
		c->state = C_READY;
		c->want_write = false;
		c->backoff_us = 0;
		return;
	default: conn_broken(lg, c, "08001", PQerrorMessage(c->pg), now); return;
	}
}

/* ---- transactions -------------------------------------------------------- */

static int64_t conn_due(const Conn *c, uint64_t k)
{
	const Group *g = c->g;
	return g->t0_us + (int64_t)(((double)c->index + (double)k * g->n_conns) * 1e6 / g->rate);
}

/* Sends C's next transaction, scheduled at SCHED. */
static void tx_send(Loadgen *lg, Conn *c, int64_t sched, int64_t now)
{
	Group *g = c->g;
	Tx *t = &c->tx;
	memset(t, 0, sizeof(*t));
	t->op = pick_op(c);
	t->sched_us = sched;
	t->sent_us = now;
	t->seq = c->k;
	if (t->op == OP_INSERT) {
		c->ins_seq++;
		t->id = lg->id_base + (int64_t)(g->index + 1) * LG_GROUP_SPAN + (int64_t)c->index * LG_CONN_SPAN +
			(int64_t)c->ins_seq;
		t->write_no = 1;
	} else {
		t->key = (size_t)(rng_next(&c->rng) % c->n_keys);
		t->id = c->keys[t->key].id;
		t->write_no = c->keys[t->key].writes + 1;
	}
	write_values(g, t->id, t->write_no, t->text, sizeof(t->text), &t->num);
	char idbuf[24], numbuf[16];
	snprintf(idbuf, sizeof(idbuf), "%" PRId64, t->id);
	snprintf(numbuf, sizeof(numbuf), "%" PRId32, t->num);
	const char *params[3] = {idbuf, t->text, numbuf};
	bool ok = true;
	if (g->prepared) {
		char name[16];
		snprintf(name, sizeof(name), "lg_%s", op_names[t->op]);
		if (!c->prepared[t->op]) {
			ok = PQsendPrepare(c->pg, name, g->sql[t->op], 3, lg_param_types);
			t->roles[t->n_roles++] = R_PREPARE;
		}
		ok = ok && PQsendQueryPrepared(c->pg, name, 3, params, NULL, NULL, 0);
	} else {
		ok = PQsendQueryParams(c->pg, g->sql[t->op], 3, lg_param_types, params, NULL, NULL, 0);
	}
	t->roles[t->n_roles++] = R_STATEMENT;
	if (ok && lg->route) {
		ok = PQsendQueryParams(c->pg, lg_route_sql, 0, NULL, NULL, NULL, NULL, 0);
		t->roles[t->n_roles++] = R_ROUTE;
	}
	ok = ok && PQpipelineSync(c->pg);
	g->st.sent++;
	c->k++;
	c->state = C_BUSY;
	c->nulls = 0;
	if (!ok) {
		conn_broken(lg, c, "08006", PQerrorMessage(c->pg), now);
		return;
	}
	int f = PQflush(c->pg);
	if (f < 0)
		conn_broken(lg, c, "08006", PQerrorMessage(c->pg), now);
	c->want_write = f == 1;
}

/* The key bookkeeping of C's finished transaction: a committed insert
 * adds a key (one of unknown outcome does not: its row may not exist); a
 * committed update or one of unknown outcome uses up its number; a failed
 * write changes nothing. */
static void tx_keys(Conn *c)
{
	Tx *t = &c->tx;
	if (t->op == OP_INSERT && !t->failed) {
		c->keys = xgrow(c->keys, c->n_keys, &c->cap_keys, sizeof(OwnKey));
		c->keys[c->n_keys++] = (OwnKey){.id = t->id, .writes = 1};
	} else if (t->op == OP_UPDATE && (!t->failed || t->unknown)) {
		c->keys[t->key].writes = t->write_no;
		c->keys[t->key].uncertain = t->unknown;
	}
}

static void record_tx(Loadgen *lg, Conn *c, int64_t end_us)
{
	Group *g = c->g;
	Tx *t = &c->tx;
	Stats *st = &g->st;
	int64_t lat = end_us - t->sched_us;
	stats_latency(st, lat);
	if (t->sent_us - t->sched_us > st->max_lag_us)
		st->max_lag_us = t->sent_us - t->sched_us;
	if (t->failed) {
		st->failed++;
		st->iv_failed++;
		stats_error(st, t->code, t->msg);
	} else {
		st->ok++;
		st->iv_ok++;
		stats_commit_at(st, (end_us - g->t0_us) / 1000000);
	}
	if (lg->csv) {
		fprintf(lg->csv, "%s,%d,%" PRIu64 ",%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%s,", g->name,
			c->index, t->seq, op_names[t->op], t->id, wall_of(lg, t->sched_us), t->sent_us - t->sched_us, lat,
			t->failed ? t->code : "ok");
		csv_field(lg->csv, t->route);
		fputc('\n', lg->csv);
	}
	if (lg->ledger && t->op != OP_READ && (!t->failed || t->unknown)) {
		fprintf(lg->ledger, "%" PRId64 ",%s,%d,%" PRId64 ",%s,%s,%" PRId32 ",", wall_of(lg, end_us), g->name,
			c->index, t->id, op_names[t->op], t->text, t->num);
		csv_field(lg->ledger, t->route);
		fprintf(lg->ledger, ",%s\n", t->unknown ? "unknown" : "commit");
	}
	tx_keys(c);
	c->state = C_READY;
}

static void tx_fail(Tx *t, const char *code, const char *msg)
{
	if (t->failed)
		return;
	t->failed = true;
	snprintf(t->code, sizeof(t->code), "%s", code);
	snprintf(t->msg, sizeof(t->msg), "%s", msg);
}

/* --check: does result R of C's statement show what its write or the key's
 * last write should? */
static void tx_check(Conn *c, const PGresult *r)
{
	Tx *t = &c->tx;
	char msg[256];
	if (t->op != OP_READ) {
		const char *n = PQcmdTuples((PGresult *)r);
		if (strcmp(n, "1") != 0) {
			snprintf(msg, sizeof(msg), "%s of id %" PRId64 " changed %s rows, not 1", op_names[t->op], t->id,
				 *n ? n : "no");
			tx_fail(t, "NOROW", msg);
		}
		return;
	}
	if (PQntuples(r) != 1) {
		snprintf(msg, sizeof(msg), "read of id %" PRId64 " returned %d rows, not 1", t->id, PQntuples(r));
		tx_fail(t, "NOROW", msg);
		return;
	}
	uint32_t w = c->keys[t->key].writes;
	if (w == 0 || c->keys[t->key].uncertain)
		return; /* not written by this run, or unknown: only its existence is checked */
	char text[96];
	int32_t num;
	write_values(c->g, t->id, w, text, sizeof(text), &num);
	char numbuf[16];
	snprintf(numbuf, sizeof(numbuf), "%" PRId32, num);
	for (int col = 0; col < 2 && col < PQnfields(r); col++) {
		if (PQgetisnull(r, 0, col))
			continue;
		const char *want = col == 0 ? text : numbuf, *got = PQgetvalue(r, 0, col);
		if (strcmp(got, want) != 0) {
			snprintf(msg, sizeof(msg), "read of id %" PRId64 ": column %d is \"%.40s\", the last write was \"%s\"",
				 t->id, col + 1, got, want);
			tx_fail(t, "MISMATCH", msg);
			return;
		}
	}
}

/* One result of C's pipeline. */
static void tx_result(Loadgen *lg, Conn *c, PGresult *r, int64_t now)
{
	Tx *t = &c->tx;
	ResultRole role = t->results < t->n_roles ? t->roles[t->results] : R_ROUTE;
	switch (PQresultStatus(r)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
		if (role == R_PREPARE)
			c->prepared[t->op] = true;
		else if (role == R_STATEMENT && c->g->check)
			tx_check(c, r);
		else if (role == R_ROUTE && PQntuples(r) == 1)
			snprintf(t->route, sizeof(t->route), "%s", PQgetvalue(r, 0, 0));
		t->results++;
		break;
	case PGRES_PIPELINE_ABORTED: t->results++; break;
	case PGRES_PIPELINE_SYNC: record_tx(lg, c, now); break;
	default: {
		const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
		tx_fail(t, code ? code : "CLIENT", PQresultErrorMessage(r));
		t->results++;
		break;
	}
	}
}

/* Reads what C's socket has. */
static void conn_read(Loadgen *lg, Conn *c, int64_t now)
{
	/* PQconsumeInput only reads; PQisBusy parses, which hands a FATAL of an
	 * idle session to conn_notice */
	bool read_ok = PQconsumeInput(c->pg);
	(void)PQisBusy(c->pg);
	if (!read_ok) {
		conn_broken(lg, c, "08006", PQerrorMessage(c->pg), now);
		return;
	}
	while (c->state == C_BUSY && !PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		if (!r) {
			/* one NULL ends each statement's results; two in a row: nothing more yet */
			if (++c->nulls >= 2 || PQstatus(c->pg) == CONNECTION_BAD)
				break;
			continue;
		}
		c->nulls = 0;
		tx_result(lg, c, r, now);
		PQclear(r);
	}
	if (PQstatus(c->pg) == CONNECTION_BAD) {
		const char *code = c->tx.failed ? c->tx.code : "08006";
		conn_broken(lg, c, code, PQerrorMessage(c->pg), now);
	}
}

/* ---- the lock sampler ---------------------------------------------------- */

static const char lg_lock_sql[] =
	"SELECT a.application_name, l.pid, "
	"(extract(epoch FROM clock_timestamp() - l.waitstart) * 1000000)::bigint, "
	"l.locktype || ' ' || l.mode || coalesce(' on ' || l.relation::regclass::text, '') || ' blocked by ' || "
	"coalesce((SELECT string_agg(b.pid || ' (' || coalesce(nullif(s.application_name, ''), s.backend_type, "
	"'holds ' || (SELECT string_agg(DISTINCT h.mode, '+') FROM pg_catalog.pg_locks h "
	"WHERE h.pid = b.pid AND h.granted AND h.relation = l.relation), '?') || ')', ', ') "
	"FROM unnest(pg_catalog.pg_blocking_pids(l.pid)) b(pid) "
	"LEFT JOIN pg_catalog.pg_stat_activity s ON s.pid = b.pid), '?') "
	"FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
	"WHERE NOT l.granted AND l.waitstart IS NOT NULL";

static Group *group_by_name(Loadgen *lg, const char *name)
{
	for (int i = 0; i < lg->n_groups; i++)
		if (!strcmp(lg->groups[i]->name, name))
			return lg->groups[i];
	return NULL;
}

static void sampler_note(Loadgen *lg, const char *app, int64_t wait_us, const char *detail)
{
	Group *g = group_by_name(lg, app);
	if (g) {
		lockmax_note(&g->st.lock, app, wait_us, detail);
		return;
	}
	Sampler *s = &lg->lock;
	for (size_t i = 0; i < s->n_others; i++)
		if (!strcmp(s->others[i].app, app)) {
			lockmax_note(&s->others[i], app, wait_us, detail);
			return;
		}
	if (s->n_others < LG_MAX_OTHERS)
		lockmax_note(&s->others[s->n_others++], app, wait_us, detail);
}

static void sampler_broken(Sampler *s, int64_t now)
{
	if (s->pg)
		PQfinish(s->pg);
	s->pg = NULL;
	s->state = C_BROKEN;
	s->reconnect_at_us = now + LG_RECONNECT_MAX_US;
}

static void sampler_poll(Sampler *s, int64_t now)
{
	if (s->state == C_BROKEN || s->state == C_OFF) {
		if (now < s->reconnect_at_us)
			return;
		const char *kw[] = {"dbname", "application_name", NULL};
		const char *val[] = {s->dsn, "loadgen-locks", NULL};
		s->pg = PQconnectStartParams(kw, val, 1);
		s->state = C_CONNECTING;
		s->want_write = true;
		if (!s->pg || PQstatus(s->pg) == CONNECTION_BAD) {
			fprintf(stderr, "loadgen: lock sampler: %s", s->pg ? PQerrorMessage(s->pg) : "out of memory\n");
			sampler_broken(s, now);
		}
		return;
	}
	if (s->state != C_CONNECTING)
		return;
	switch (PQconnectPoll(s->pg)) {
	case PGRES_POLLING_READING: s->want_write = false; return;
	case PGRES_POLLING_WRITING: s->want_write = true; return;
	case PGRES_POLLING_OK:
		PQsetnonblocking(s->pg, 1);
		s->state = C_READY;
		s->want_write = false;
		s->next_us = now;
		return;
	default:
		fprintf(stderr, "loadgen: lock sampler: %s", PQerrorMessage(s->pg));
		sampler_broken(s, now);
	}
}

static void sampler_read(Loadgen *lg, int64_t now)
{
	Sampler *s = &lg->lock;
	if (!PQconsumeInput(s->pg)) {
		sampler_broken(s, now);
		return;
	}
	while (s->state == C_BUSY && !PQisBusy(s->pg)) {
		PGresult *r = PQgetResult(s->pg);
		if (!r) {
			s->state = C_READY;
			break;
		}
		if (PQresultStatus(r) == PGRES_TUPLES_OK) {
			s->samples++;
			for (int i = 0; i < PQntuples(r); i++) {
				const char *app = PQgetvalue(r, i, 0);
				int64_t wait = strtoll(PQgetvalue(r, i, 2), NULL, 10);
				sampler_note(lg, *app ? app : "(none)", wait, PQgetvalue(r, i, 3));
				if (s->csv) {
					fprintf(s->csv, "%" PRId64 ",", wall_of(lg, now));
					csv_field(s->csv, app);
					fprintf(s->csv, ",%s,%" PRId64 ",", PQgetvalue(r, i, 1), wait);
					csv_field(s->csv, PQgetvalue(r, i, 3));
					fputc('\n', s->csv);
				}
			}
		} else if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "loadgen: lock sampler: %s", PQresultErrorMessage(r));
		}
		PQclear(r);
	}
	if (PQstatus(s->pg) == CONNECTION_BAD)
		sampler_broken(s, now);
}

static void sampler_tick(Loadgen *lg, int64_t now)
{
	Sampler *s = &lg->lock;
	if (!s->dsn)
		return;
	if (s->state != C_READY && s->state != C_BUSY) {
		sampler_poll(s, now);
		return;
	}
	if (s->state == C_READY && now >= s->next_us) {
		/* a sample that takes longer than the period delays the next one */
		s->next_us = now + s->every_us;
		if (!PQsendQuery(s->pg, lg_lock_sql)) {
			sampler_broken(s, now);
			return;
		}
		s->state = C_BUSY;
		s->want_write = PQflush(s->pg) == 1;
	}
}

/* ---- groups and the loop ------------------------------------------------- */

static bool group_should_start(const Loadgen *lg, const Group *g, int64_t now)
{
	bool timed = g->start_after_s >= 0, filed = g->start_file != NULL;
	if (!timed && !filed)
		return true;
	if (timed && now - lg->mono0_us >= (int64_t)(g->start_after_s * 1e6))
		return true;
	return filed && file_exists(g->start_file);
}

static bool group_should_stop(const Loadgen *lg, const Group *g, int64_t now)
{
	if (lg->stopping)
		return true;
	if (g->stop_after_s >= 0 && now - lg->mono0_us >= (int64_t)(g->stop_after_s * 1e6))
		return true;
	return g->stop_file && file_exists(g->stop_file);
}

/* May C send its next transaction now? While G runs, when it is due; once
 * G stopped, the ones that were due before the stop still go (the drain):
 * a backlog at the stop is latency, not transactions lost. */
static bool conn_may_send(const Group *g, const Conn *c, int64_t now)
{
	if (c->state != C_READY || c->next_due_us > now)
		return false;
	return g->state == G_RUNNING || (g->state == G_STOPPING && c->next_due_us < g->stop_us);
}

/* G's transactions that were due before its stop and not sent by the end of
 * the drain. */
static void group_count_unsent(Group *g)
{
	if (!g->t0_us)
		return;
	for (int i = 0; i < g->n_conns; i++) {
		Conn *c = &g->conns[i];
		uint64_t k = c->k;
		while (conn_due(c, k) < g->stop_us)
			k++;
		g->st.unsent += k - c->k;
	}
}

static void flush_outputs(Loadgen *lg)
{
	if (lg->csv)
		fflush(lg->csv);
	if (lg->ledger)
		fflush(lg->ledger);
	if (lg->lock.csv)
		fflush(lg->lock.csv);
}

/* Ends G: its connections close, and what it wrote reaches the files
 * before the notice on stderr, so that a script that waits for
 * "group NAME stopped" can read all of G's lines. */
static void group_close(Loadgen *lg, Group *g, int64_t now)
{
	group_count_unsent(g);
	for (int i = 0; i < g->n_conns; i++) {
		Conn *c = &g->conns[i];
		if (c->state == C_BUSY)
			g->st.unfinished++;
		if (c->pg)
			PQfinish(c->pg);
		c->pg = NULL;
		c->state = C_CLOSED;
	}
	bool ran = g->state != G_WAITING;
	g->state = G_DONE;
	flush_outputs(lg);
	if (ran)
		fprintf(stderr, "loadgen: group %s stopped at +%.3f s (%" PRIu64 " ok, %" PRIu64 " failed)\n", g->name,
			(double)(now - lg->mono0_us) / 1e6, g->st.ok, g->st.failed);
}

/* Moves G through its states at NOW. */
static void group_tick(Loadgen *lg, Group *g, int64_t now, bool check_files)
{
	switch (g->state) {
	case G_WAITING:
		if (lg->stopping) {
			g->state = G_DONE;
		} else if (check_files && group_should_start(lg, g, now)) {
			g->state = G_CONNECTING;
			g->begin_us = now;
			for (int i = 0; i < g->n_conns; i++)
				conn_connect(lg, &g->conns[i], now);
		}
		break;
	case G_CONNECTING: {
		int ready = 0;
		for (int i = 0; i < g->n_conns; i++)
			ready += g->conns[i].state == C_READY;
		if (ready == g->n_conns || now - g->begin_us >= LG_CONNECT_GRACE_US) {
			g->state = G_RUNNING;
			g->t0_us = now;
			for (int i = 0; i < g->n_conns; i++)
				g->conns[i].next_due_us = conn_due(&g->conns[i], 0);
			fprintf(stderr, "loadgen: group %s running at +%.3f s (%d of %d connections up)\n", g->name,
				(double)(now - lg->mono0_us) / 1e6, ready, g->n_conns);
		}
		if (lg->stopping || (check_files && group_should_stop(lg, g, now))) {
			g->stop_us = now;
			group_close(lg, g, now);
		}
		break;
	}
	case G_RUNNING:
		if (check_files && group_should_stop(lg, g, now)) {
			g->state = G_STOPPING;
			g->stop_us = now;
		}
		break;
	case G_STOPPING: {
		/* done when no connection is in a transaction or owes one due before
		 * the stop (a broken one owes nothing more: it is not reopened) */
		bool pending = false;
		for (int i = 0; i < g->n_conns; i++) {
			const Conn *c = &g->conns[i];
			pending |= c->state == C_BUSY || (c->state == C_READY && conn_due(c, c->k) < g->stop_us);
		}
		if (!pending || now - g->stop_us >= (int64_t)(lg->drain_s * 1e6))
			group_close(lg, g, now);
		break;
	}
	case G_DONE: break;
	}
}

/* Sends what is due, reconnects what is broken, logs in what connects. */
static void conns_tick(Loadgen *lg, Group *g, int64_t now)
{
	for (int i = 0; i < g->n_conns; i++) {
		Conn *c = &g->conns[i];
		if (c->state == C_BROKEN && now >= c->reconnect_at_us && (g->state == G_RUNNING || g->state == G_CONNECTING))
			conn_connect(lg, c, now);
		if (c->state == C_READY)
			c->next_due_us = conn_due(c, c->k);
		if ((g->state == G_RUNNING || g->state == G_STOPPING) && conn_may_send(g, c, now))
			tx_send(lg, c, c->next_due_us, now);
	}
}

static bool all_done(const Loadgen *lg)
{
	for (int i = 0; i < lg->n_groups; i++)
		if (lg->groups[i]->state != G_DONE)
			return false;
	return true;
}

/* The earliest time the loop must wake up at, after NOW. */
static int64_t next_wakeup(const Loadgen *lg, int64_t now)
{
	int64_t t = lg->next_file_check_us;
	for (int i = 0; i < lg->n_groups; i++) {
		const Group *g = lg->groups[i];
		for (int j = 0; j < g->n_conns; j++) {
			const Conn *c = &g->conns[j];
			bool owes = g->state == G_RUNNING || (g->state == G_STOPPING && c->next_due_us < g->stop_us);
			if (owes && c->state == C_READY && c->next_due_us < t)
				t = c->next_due_us;
			if (c->state == C_BROKEN && c->reconnect_at_us < t)
				t = c->reconnect_at_us;
		}
	}
	if (lg->lock.dsn) {
		int64_t s = lg->lock.state == C_READY ? lg->lock.next_us : lg->lock.reconnect_at_us;
		if (lg->lock.state != C_BUSY && lg->lock.state != C_CONNECTING && s < t)
			t = s;
	}
	if (lg->progress_s > 0 && lg->next_progress_us < t)
		t = lg->next_progress_us;
	return t < now ? now : t;
}

static void progress_line(Loadgen *lg, int64_t now)
{
	fprintf(stderr, "loadgen t=%.1fs", (double)(now - lg->mono0_us) / 1e6);
	for (int i = 0; i < lg->n_groups; i++) {
		Group *g = lg->groups[i];
		if (g->state == G_WAITING)
			continue;
		fprintf(stderr, "  %s ok %" PRIu64 " failed %" PRIu64 " max %.1fms", g->name, g->st.iv_ok, g->st.iv_failed,
			g->st.iv_max / 1000.0);
		g->st.iv_ok = g->st.iv_failed = 0;
		g->st.iv_max = 0;
	}
	fputc('\n', stderr);
}

/* One pollfd per live connection, and the sampler's; OWNER says whose. */
typedef struct PollSet {
	struct pollfd *fds;
	Conn **owner;             /* NULL: the sampler */
	size_t n, cap;
} PollSet;

static void pollset_add(PollSet *ps, int fd, bool want_write, Conn *c)
{
	if (fd < 0)
		return;
	if (ps->n == ps->cap) {
		ps->cap = ps->cap ? ps->cap * 2 : 64;
		ps->fds = realloc(ps->fds, ps->cap * sizeof(*ps->fds));
		ps->owner = realloc(ps->owner, ps->cap * sizeof(*ps->owner));
		if (!ps->fds || !ps->owner)
			die("out of memory");
	}
	ps->fds[ps->n] = (struct pollfd){.fd = fd, .events = (short)(POLLIN | (want_write ? POLLOUT : 0))};
	ps->owner[ps->n++] = c;
}

static void pollset_build(Loadgen *lg, PollSet *ps)
{
	ps->n = 0;
	for (int i = 0; i < lg->n_groups; i++) {
		Group *g = lg->groups[i];
		for (int j = 0; j < g->n_conns; j++) {
			Conn *c = &g->conns[j];
			if (c->pg && (c->state == C_CONNECTING || c->state == C_READY || c->state == C_BUSY))
				pollset_add(ps, PQsocket(c->pg), c->want_write, c);
		}
	}
	Sampler *s = &lg->lock;
	if (s->pg && (s->state == C_CONNECTING || s->state == C_READY || s->state == C_BUSY))
		pollset_add(ps, PQsocket(s->pg), s->want_write, NULL);
}

/* An event on connection C (NULL: the sampler). */
static void on_event(Loadgen *lg, Conn *c, short revents, int64_t now)
{
	if (!c) {
		Sampler *s = &lg->lock;
		if (s->state == C_CONNECTING)
			sampler_poll(s, now);
		else {
			if (s->want_write && PQflush(s->pg) != 1)
				s->want_write = false;
			if (revents & (POLLIN | POLLHUP | POLLERR))
				sampler_read(lg, now);
		}
		return;
	}
	if (c->state == C_CONNECTING) {
		conn_poll(lg, c, now);
		return;
	}
	if (c->want_write) {
		int f = PQflush(c->pg);
		if (f < 0) {
			conn_broken(lg, c, "08006", PQerrorMessage(c->pg), now);
			return;
		}
		c->want_write = f == 1;
	}
	if (revents & (POLLIN | POLLHUP | POLLERR))
		conn_read(lg, c, now);
}

static void on_signal(int sig)
{
	(void)sig;
	lg_signalled = 1;
}

static void run(Loadgen *lg)
{
	PollSet ps = {0};
	for (;;) {
		int64_t now = mono_us();
		bool check_files = now >= lg->next_file_check_us;
		if (check_files) {
			lg->next_file_check_us = now + LG_FILE_CHECK_US;
			if (!lg->stopping && (lg_signalled || file_exists(lg->stop_file) ||
					      (lg->duration_s >= 0 && now - lg->mono0_us >= (int64_t)(lg->duration_s * 1e6)))) {
				lg->stopping = true;
				lg->stop_at_us = now;
			}
		}
		for (int i = 0; i < lg->n_groups; i++) {
			group_tick(lg, lg->groups[i], now, check_files || lg->stopping);
			conns_tick(lg, lg->groups[i], now);
		}
		sampler_tick(lg, now);
		if (now >= lg->next_flush_us) {
			flush_outputs(lg);
			lg->next_flush_us = now + LG_FLUSH_US;
		}
		if (lg->progress_s > 0 && now >= lg->next_progress_us) {
			progress_line(lg, now);
			lg->next_progress_us = now + (int64_t)(lg->progress_s * 1e6);
		}
		if (all_done(lg))
			break;
		pollset_build(lg, &ps);
		int64_t wait = next_wakeup(lg, now) - mono_us();
		if (wait < 0)
			wait = 0;
		struct timespec ts = {.tv_sec = wait / 1000000, .tv_nsec = (wait % 1000000) * 1000};
		int n = ppoll(ps.fds, ps.n, &ts, NULL);
		if (n < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		now = mono_us();
		for (size_t i = 0; n > 0 && i < ps.n; i++)
			if (ps.fds[i].revents)
				on_event(lg, ps.owner[i], ps.fds[i].revents, now);
	}
	free(ps.fds);
	free(ps.owner);
}

/* ---- the summary --------------------------------------------------------- */

static double pct_ms(const uint32_t *sorted, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)ceil(p * (double)n) - 1;
	if (i >= n)
		i = n - 1;
	return sorted[i] / 1000.0;
}

/* Seconds of G's running time (whole seconds from t0 to the stop) with no
 * commit. */
static uint64_t zero_seconds(const Group *g)
{
	if (!g->t0_us || g->stop_us <= g->t0_us)
		return 0;
	int64_t whole = (g->stop_us - g->t0_us) / 1000000;
	uint64_t zero = 0;
	for (int64_t s = 0; s < whole; s++)
		zero += (size_t)s >= g->st.n_sec || g->st.per_sec[s] == 0;
	return zero;
}

static void summary_print(const Loadgen *lg, FILE *f, int64_t end)
{
	fprintf(f, "loadgen: %d group(s), %d connection(s), %.1f s\n", lg->n_groups, lg->total_conns,
		(double)(end - lg->mono0_us) / 1e6);
	if (lg->lock.dsn)
		fprintf(f, "lock sampler: every %.0f ms, %" PRIu64 " samples\n", lg->lock.every_us / 1000.0, lg->lock.samples);
	fprintf(f, "%-16s %5s %8s %9s %9s %7s %7s %9s %9s %9s %8s %6s %10s  %s\n", "group", "conns", "rate/s", "sent", "ok",
		"failed", "unsent", "p50_ms", "p99_ms", "max_ms", "lag_ms", "zero_s", "lockw_ms", "errors");
	for (int i = 0; i < lg->n_groups; i++) {
		const Group *g = lg->groups[i];
		const Stats *st = &g->st;
		uint32_t *sorted = xcalloc(st->n_lat, sizeof(uint32_t));
		if (st->n_lat)
			memcpy(sorted, st->lat, st->n_lat * sizeof(uint32_t));
		qsort(sorted, st->n_lat, sizeof(uint32_t), cmp_u32);
		char errs[512] = "-";
		size_t len = 0;
		for (size_t e = 0; e < st->n_errs && len < sizeof(errs); e++)
			len += (size_t)snprintf(errs + len, sizeof(errs) - len, "%s%s:%" PRIu64, e ? "," : "", st->errs[e].code,
						st->errs[e].n);
		if (st->other_errs && len < sizeof(errs))
			snprintf(errs + len, sizeof(errs) - len, ",other:%" PRIu64, st->other_errs);
		char lockw[16] = "-";
		if (lg->lock.dsn)
			snprintf(lockw, sizeof(lockw), "%.1f", st->lock.wait_us / 1000.0);
		fprintf(f, "%-16s %5d %8.1f %9" PRIu64 " %9" PRIu64 " %7" PRIu64 " %7" PRIu64 " %9.3f %9.3f %9.3f %8.1f %6" PRIu64
			   " %10s  %s\n",
			g->name, g->n_conns, g->rate, st->sent, st->ok, st->failed, st->unsent + st->unfinished,
			pct_ms(sorted, st->n_lat, 0.50), pct_ms(sorted, st->n_lat, 0.99),
			st->n_lat ? sorted[st->n_lat - 1] / 1000.0 : 0.0, st->max_lag_us / 1000.0, zero_seconds(g), lockw, errs);
		free(sorted);
	}
	for (int i = 0; i < lg->n_groups; i++) {
		const Stats *st = &lg->groups[i]->st;
		for (size_t e = 0; e < st->n_errs; e++)
			fprintf(f, "  error of %s: %s x%" PRIu64 ": %s\n", lg->groups[i]->name, st->errs[e].code, st->errs[e].n,
				st->errs[e].first);
		if (st->lock.wait_us > 0)
			fprintf(f, "  longest lock wait of %s: %.1f ms, %s\n", lg->groups[i]->name, st->lock.wait_us / 1000.0,
				st->lock.detail);
		if (st->unfinished)
			fprintf(f, "  unfinished in %s: %" PRIu64 " transaction(s) still in flight after the drain\n",
				lg->groups[i]->name, st->unfinished);
	}
	for (size_t i = 0; i < lg->lock.n_others; i++)
		fprintf(f, "  longest lock wait of other session '%s': %.1f ms, %s\n", lg->lock.others[i].app,
			lg->lock.others[i].wait_us / 1000.0, lg->lock.others[i].detail);
}

int main(int argc, char **argv)
{
	Loadgen lg;
	memset(&lg, 0, sizeof(lg));
	lg.duration_s = -1;
	lg.drain_s = 5;
	lg.seed = 1;
	lg.lock.every_us = 10000;
	group_init_defaults(&lg.defaults);
	parse_args(&lg, argc, argv);
	for (int i = 0; i < lg.n_groups; i++) {
		Group *g = lg.groups[i];
		group_templates(g);
		g->conns = xcalloc((size_t)g->n_conns, sizeof(Conn));
		for (int j = 0; j < g->n_conns; j++) {
			Conn *c = &g->conns[j];
			c->g = g;
			c->index = j;
			c->global = lg.total_conns++;
			c->rng = (lg.seed + 1) * 0x9E3779B97F4A7C15ULL ^ ((uint64_t)c->global + 1) * 0xBF58476D1CE4E5B9ULL;
			if (!c->rng)
				c->rng = 1;
		}
	}
	for (int i = 0; i < lg.n_groups; i++) {
		/* a group that never inserts needs a key per connection from the start */
		if (!lg.groups[i]->mix[OP_INSERT] && lg.n_keys < lg.total_conns)
			die("group %s never inserts (--mix 0:...): --keys must be at least the %d connections",
			    lg.groups[i]->name, lg.total_conns);
		for (int j = 0; j < lg.groups[i]->n_conns; j++)
			conn_init_keys(&lg, &lg.groups[i]->conns[j]);
	}
	if (lg.csv)
		fputs("group,conn,seq,op,id,sched_us,lag_us,latency_us,outcome,route\n", lg.csv);
	if (lg.ledger)
		fputs("end_us,group,conn,id,op,text,int,route,status\n", lg.ledger);
	if (lg.lock.csv)
		fputs("sample_us,application_name,pid,wait_us,lock\n", lg.lock.csv);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	struct timespec w;
	clock_gettime(CLOCK_REALTIME, &w);
	lg.wall0_us = (int64_t)w.tv_sec * 1000000 + w.tv_nsec / 1000;
	lg.mono0_us = mono_us();
	lg.next_progress_us = lg.mono0_us + (int64_t)(lg.progress_s * 1e6);
	run(&lg);
	int64_t end = mono_us();

	summary_print(&lg, stdout, end);
	if (lg.summary_path) {
		FILE *f = fopen(lg.summary_path, "w");
		if (!f)
			die("--summary %s: %s", lg.summary_path, strerror(errno));
		summary_print(&lg, f, end);
		fclose(f);
	}
	bool bad = false;
	for (int i = 0; i < lg.n_groups; i++) {
		const Stats *st = &lg.groups[i]->st;
		bad |= st->failed || st->unsent || st->unfinished;
	}
	if ((lg.csv && fclose(lg.csv) != 0) || (lg.ledger && fclose(lg.ledger) != 0) ||
	    (lg.lock.csv && fclose(lg.lock.csv) != 0))
		die("writing the output files: %s", strerror(errno));
	return bad ? 1 : 0;
}
