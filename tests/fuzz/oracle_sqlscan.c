/*
 * tests/fuzz/oracle_sqlscan.c: proxy/sqlscan.c checked against a real server.
 *
 * The fuzz harness shows that the scanner agrees with itself however a text
 * is split; this program shows that it agrees with PostgreSQL. It generates
 * texts that put statements which change state (SET search_path, SET ROLE,
 * LISTEN, set_config, DO, EXECUTE, ...) inside and around literals of every
 * kind, comments, dollar quotes and quoted identifiers, with contents that
 * try to break out of them; runs each text in a clean session (DISCARD ALL,
 * then standard_conforming_strings on or off and a client encoding, some of
 * them client-only: SJIS, BIG5, GBK, GB18030, UHC); and compares what
 * changed with the flags of sqlscan_text. A change the flags do not cover is
 * printed as a MISS. Texts the server rejects change nothing and only count.
 *
 * Observed: search_path (needs SQLSCAN_PATH); current_user and session_user
 * (SQLSCAN_ROLE); every other setting of pg_settings but transaction_* and
 * is_superuser, after the text's transaction ends, so that SET LOCAL does not
 * count (SQLSCAN_SETTINGS); pg_listening_channels() (SQLSCAN_LISTEN).
 *
 * Not built by make: it needs libpq and a server it may change the session
 * state of (a throwaway cluster, as superuser; it creates role sqlscan_r1).
 *
 *   cc -O1 -g -I. -I$(pg_config --includedir) tests/fuzz/oracle_sqlscan.c proxy/sqlscan.c \
 *       -lpq -o /tmp/oracle_sqlscan
 *   /tmp/oracle_sqlscan "host=/tmp/pg port=5432 user=postgres" [texts [seed]]
 *   /tmp/oracle_sqlscan CONNINFO 0 0 "SELECT E'\''; SET ROLE sqlscan_r1"   (given texts)
 *
 * Exit status: 0 no miss, 1 misses, 2 setup failure.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/sqlscan.h"

static PGconn *db;
static unsigned long long rng = 88172645463325252ull;

/* xorshift64: a seed gives the same texts again */
static unsigned rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void must(const char *sql)
{
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "oracle_sqlscan: %s: %s", sql, PQerrorMessage(db));
		exit(2);
	}
	PQclear(r);
}

/* ---- the session state observed ---------------------------------------- */

typedef struct State {
	char *path, *user, *session_user, *listening, *settings;
} State;

static char *query1(const char *sql)
{
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		fprintf(stderr, "oracle_sqlscan: %s: %s", sql, PQerrorMessage(db));
		exit(2);
	}
	char *v = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

static void state_get(State *st)
{
	st->path = query1("SELECT current_setting('search_path')");
	st->user = query1("SELECT current_user");
	st->session_user = query1("SELECT session_user");
	st->listening = query1("SELECT count(*) FROM pg_listening_channels()");
	st->settings = query1("SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings"
	                      " WHERE name NOT LIKE 'transaction%' AND name <> 'is_superuser'");
}

static void state_free(State *st)
{
	free(st->path);
	free(st->user);
	free(st->session_user);
	free(st->listening);
	free(st->settings);
}

/* The flags that the difference between two states needs. */
static unsigned state_needs(const State *a, const State *b)
{
	unsigned need = 0;
	if (strcmp(a->path, b->path))
		need |= SQLSCAN_PATH;
	if (strcmp(a->user, b->user) || strcmp(a->session_user, b->session_user))
		need |= SQLSCAN_ROLE;
	if (strcmp(a->settings, b->settings))
		need |= SQLSCAN_SETTINGS;
	if (strcmp(a->listening, b->listening))
		need |= SQLSCAN_LISTEN;
	return need;
}

/* ---- texts ------------------------------------------------------------- */

/* Client encodings, their scan class, and characters for them (most with an
 * ASCII second byte: backslash, "|", "@", "$", "'" or a letter). */
static const struct Encoding {
	const char *name;
	SqlScanEncoding scan;
	const char *chars[4];
} encodings[] = {
        {"UTF8", SQLSCAN_ENC_BYTES, {"\xc3\xa9", "\xe8\xa1\xa8", "\xc3\xa9", "\xc3\xa9"}},
        {"SJIS", SQLSCAN_ENC_SJIS, {"\x95\x5c", "\xb1", "\x83\x5c", "\x95\x7c"}},
        {"BIG5", SQLSCAN_ENC_PAIRS, {"\xa4\x5c", "\xa4\x40", "\xa4\x7c", "\xa4\x24"}},
        {"GBK", SQLSCAN_ENC_PAIRS, {"\x81\x5c", "\x81\x40", "\xb0\xa1", "\x81\x7c"}},
        {"GB18030", SQLSCAN_ENC_PAIRS, {"\x81\x30\x81\x30", "\x81\x5c", "\x81\x7c", "\x81\x5c"}},
        {"UHC", SQLSCAN_ENC_PAIRS, {"\x81\x41", "\xb0\xa1", "\x81\x61", "\x81\x41"}},
};

/* Statements that change what is observed, or nothing. */
static const char *const payloads[] = {
        " SET search_path = v2 ",
        " SET ROLE sqlscan_r1 ",
        " LISTEN c ",
        " SET application_name = z ",
        " SELECT set_config('search_path','v3',false) ",
        " SET LOCAL work_mem = 77 ",
        " SET local.x = 1 ",
        " SET \"SEARCH_PATH\" = v5 ",
        " SET SCHEMA 'v6' ",
        " SET SESSION AUTHORIZATION sqlscan_r1 ",
        " SET \"role\" = sqlscan_r1 ",
        " DO $$BEGIN PERFORM set_config('search_path','v4',false); END$$ ",
        " SELECT 1 ",
        " SET work_mem = 99 ",
        " SET U&\"search\\005fpath\" = v7 ",
        " PREPARE p AS SELECT set_config('role','sqlscan_r1',false) ",
        " EXECUTE p ",
};

/* Loose tokens, for texts made of them at random. */
static const char *const tokens[] = {
        "'",   "'",   "''", "E'", "e'", "N'", "B'", "X'", "U&'", "U&\"", "\"", "\"\"", "\\", "\\'", "\\\\", "$$",
        "$a$", "$b$", "$1", "$",  "$a", "--", "/*", "*/", "\n",  "\n",   " ",  " ",    "\t", "\r",  "-",    "*",
        "/",   ";",   "(",  ")",  ",",  ".",  "x",  "1",  "e",   "a",    "u&", "&",    "1e", "ab",
};

/* Literals: opener, closer. Some continue a literal on the next line. */
static const char *const literals[][2] = {
        {"'", "'"},          {"E'", "'"},          {"e'", "'"},      {"N'", "'"},
        {"B'", "'"},         {"X'", "'"},          {"U&'", "'"},     {"$$", "$$"},
        {"$a$", "$a$"},      {"$ab$", "$ab$"},     {"$_1$", "$_1$"}, {"1 AS \"", "\""},
        {"1 AS U&\"", "\""}, {"1 /*", "*/ 2"},     {"1 --", "\n"},   {"1 /* /*", "*/ */ 3"},
        {"'x'\n'", "'"},     {"E'x' --c\n'", "'"}, {"E'x' '", "'"},  {"B'1'\n'", "'"},
};

/* Contents of literals, many of them trying to end the literal early. */
static const char *const contents[] = {
        "'",
        "''",
        "\\",
        "\\'",
        "\\\\",
        "$",
        "$$",
        "$a$",
        "$a",
        "$b$",
        "\"",
        "\"\"",
        "/*",
        "*/",
        "--",
        "\n",
        " ",
        "x",
        ";",
        "; SET ROLE sqlscan_r1; SELECT ",
        "'; SET search_path = v2; SELECT '",
        "$$; LISTEN c; SELECT $$",
        "\"; SET work_mem = 99; SELECT \"",
        "*/; SET ROLE sqlscan_r1; SELECT /*",
        "\n; SET ROLE sqlscan_r1; SELECT 1 --",
        "$a$; SET search_path = v8; SELECT $a$",
};

static const char *const separators[] = {";", "; ", ";\n", "; -- c\n", "; /* c */ ", ";\n/* ; */\n"};

typedef struct Text {
	char buf[4096];
	size_t len;
} Text;

static void put(Text *t, const char *s)
{
	size_t n = strlen(s);
	if (n < sizeof(t->buf) - t->len) {
		memcpy(t->buf + t->len, s, n + 1);
		t->len += n;
	}
}

static const char *character(const struct Encoding *e)
{
	return e->chars[rnd(N(e->chars))];
}

static void gen_tokens(Text *t, const struct Encoding *e)
{
	put(t, "SELECT ");
	for (int i = 0, k = 1 + (int)rnd(14); i < k; i++) {
		unsigned c = rnd(100);
		put(t, c < 12   ? payloads[rnd(N(payloads))]
		       : c < 18 ? ";"
		       : c < 30 ? character(e)
		                : tokens[rnd(N(tokens))]);
	}
}

static void gen_literal(Text *t, const struct Encoding *e)
{
	unsigned l = rnd(N(literals));
	put(t, literals[l][0]);
	for (int i = 0, k = (int)rnd(5); i < k; i++)
		put(t, rnd(4) == 0 ? character(e) : contents[rnd(N(contents))]);
	put(t, literals[l][1]);
}

static void gen_statements(Text *t, const struct Encoding *e)
{
	if (rnd(2)) { /* a literal, then a payload */
		put(t, "SELECT ");
		gen_literal(t, e);
		put(t, separators[rnd(N(separators))]);
		put(t, payloads[rnd(N(payloads))]);
		return;
	}
	for (int i = 0, k = 1 + (int)rnd(3); i < k; i++) {
		if (i)
			put(t, separators[rnd(N(separators))]);
		if (rnd(3) == 0) {
			put(t, payloads[rnd(N(payloads))]);
			continue;
		}
		put(t, "SELECT ");
		gen_literal(t, e);
		if (rnd(2))
			put(t, ", ");
		if (rnd(2))
			gen_literal(t, e);
	}
}

/* ---- one text ---------------------------------------------------------- */

typedef struct Tally {
	long texts, ran, misses, flagged, false_alarms;
} Tally;

static void run(Tally *tally, const char *sql, bool scs, const struct Encoding *e)
{
	char set[128];
	if (PQtransactionStatus(db) != PQTRANS_IDLE)
		PQclear(PQexec(db, "ROLLBACK"));
	must("DISCARD ALL");
	must(scs ? "SET standard_conforming_strings = on" : "SET standard_conforming_strings = off");
	snprintf(set, sizeof(set), "SET client_encoding = '%s'", e->name);
	must(set);
	must("SET search_path = base");
	State before, after;
	state_get(&before);
	unsigned flags = sqlscan_text(sql, SQLSCAN_CSTRING, scs, e->scan);
	PGresult *r = PQexec(db, sql);
	ExecStatusType st = PQresultStatus(r);
	bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
	PQclear(r);
	/* end the text's transaction: SET LOCAL ends with it, SET stays */
	if (PQtransactionStatus(db) == PQTRANS_INERROR)
		PQclear(PQexec(db, "ROLLBACK"));
	else if (PQtransactionStatus(db) == PQTRANS_INTRANS)
		PQclear(PQexec(db, "COMMIT"));
	tally->texts++;
	if (ok) {
		tally->ran++;
		state_get(&after);
		unsigned need = state_needs(&before, &after);
		if (need & ~flags) {
			tally->misses++;
			printf("MISS: needs 0x%x, flags 0x%x, scs %s, %s: ", need, flags, scs ? "on" : "off", e->name);
			for (const char *p = sql; *p; p++) {
				if (*p == '\n' || *p == '\r')
					fputs(*p == '\n' ? "\\n" : "\\r", stdout);
				else
					putchar(*p);
			}
			putchar('\n');
		}
		if (flags & (SQLSCAN_SUSPECT | SQLSCAN_LISTEN)) {
			tally->flagged++;
			if (!need)
				tally->false_alarms++;
		}
		state_free(&after);
	}
	state_free(&before);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: oracle_sqlscan CONNINFO [texts [seed [given text...]]]\n");
		return 2;
	}
	long n = argc > 2 ? atol(argv[2]) : 10000;
	if (argc > 3 && atol(argv[3]) != 0)
		rng = strtoull(argv[3], NULL, 10);
	db = PQconnectdb(argv[1]);
	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "oracle_sqlscan: %s", PQerrorMessage(db));
		return 2;
	}
	PQsetNoticeProcessor(db, quiet, NULL);
	must("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sqlscan_r1') THEN "
	     "CREATE ROLE sqlscan_r1; END IF; END$$");
	Tally tally = {0};
	if (argc > 4) {
		for (int i = 4; i < argc; i++)
			run(&tally, argv[i], true, &encodings[0]);
	}
	for (long i = 0; argc <= 4 && i < n; i++) {
		Text t = {.len = 0};
		t.buf[0] = '\0';
		bool scs = rnd(2);
		const struct Encoding *e = &encodings[rnd(2) ? 0 : 1 + rnd(N(encodings) - 1)];
		if (rnd(4) == 0)
			gen_tokens(&t, e);
		else
			gen_statements(&t, e);
		run(&tally, t.buf, scs, e);
	}
	printf("%ld texts, %ld ran, %ld misses; %ld flagged SUSPECT or LISTEN, %ld of them changing nothing\n",
	       tally.texts, tally.ran, tally.misses, tally.flagged, tally.false_alarms);
	PQfinish(db);
	return tally.misses ? 1 : 0;
}
