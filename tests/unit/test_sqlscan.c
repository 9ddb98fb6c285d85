/*
 * tests/unit/test_sqlscan.c: unit tests for proxy/sqlscan.c.
 *
 * Each case states the exact flags a text must get, so that a false alarm
 * shows up as plainly as a miss. Every case is also fed in pieces: split at
 * every byte, at every pair of bytes (texts up to 96 bytes) and one byte at
 * a time; each piece is a heap copy of exactly its bytes, so that under
 * AddressSanitizer a read past a chunk is a failure. All of these must give
 * the flags of the one-shot scan.
 *
 * The hostile texts come in pairs where it helps: the same bytes with and
 * without standard_conforming_strings, or in UTF8 and in SJIS, where the
 * right answer differs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/sqlscan.h"

#define PATH SQLSCAN_PATH
#define SETTINGS SQLSCAN_SETTINGS
#define ROLE SQLSCAN_ROLE
#define SUSPECT SQLSCAN_SUSPECT
#define DISCARD_ALL SQLSCAN_DISCARD_ALL
#define DEALLOCATE SQLSCAN_DEALLOCATE
#define LISTEN SQLSCAN_LISTEN
#define MULTI SQLSCAN_MULTI

typedef struct Case {
	const char *sql;
	unsigned want;
} Case;

/* ---- helpers ----------------------------------------------------------- */

static void flags_str(unsigned f, char *out, size_t cap)
{
	static const struct {
		unsigned flag;
		const char *name;
	} names[] = {{PATH, "PATH"},
	             {SETTINGS, "SETTINGS"},
	             {ROLE, "ROLE"},
	             {DISCARD_ALL, "DISCARD_ALL"},
	             {DEALLOCATE, "DEALLOCATE"},
	             {LISTEN, "LISTEN"},
	             {MULTI, "MULTI"}};
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (f & names[i].flag)
			n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "|" : "", names[i].name);
	if (n == 0)
		snprintf(out, cap, "0");
}

/* Feeds sql[from, to) as a heap copy of exactly those bytes. */
static void feed_exact(SqlScan *s, const char *sql, size_t from, size_t to)
{
	if (to == from) {
		sqlscan_feed(s, NULL, 0);
		return;
	}
	char *piece = malloc(to - from);
	assert_non_null(piece);
	memcpy(piece, sql + from, to - from);
	sqlscan_feed(s, piece, to - from);
	free(piece);
}

/* Flags of text (n bytes) fed in the pieces ending at cuts[0..ncuts). */
static unsigned scan_cut(const char *text, size_t n, bool scs, SqlScanEncoding enc, const size_t *cuts, size_t ncuts)
{
	SqlScan s;
	sqlscan_init(&s, scs, enc);
	size_t at = 0;
	for (size_t i = 0; i < ncuts; i++) {
		feed_exact(&s, text, at, cuts[i]);
		at = cuts[i];
	}
	feed_exact(&s, text, at, n);
	return sqlscan_finish(&s);
}

static void expect_flags(const char *what, const char *sql, unsigned got, unsigned want)
{
	if (got == want)
		return;
	char g[128], w[128];
	flags_str(got, g, sizeof(g));
	flags_str(want, w, sizeof(w));
	fail_msg("%s: \"%s\": got %s, want %s", what, sql, g, w);
}

/* The flags of text (n bytes) must be want, however it is split. */
static void check_n(const char *text, size_t n, bool scs, SqlScanEncoding enc, unsigned want)
{
	expect_flags("one-shot", text, sqlscan_text(text, n, scs, enc), want);
	for (size_t i = 0; i <= n; i++) {
		size_t cut[1] = {i};
		if (scan_cut(text, n, scs, enc, cut, 1) != want) {
			char what[64];
			snprintf(what, sizeof(what), "split at %zu", i);
			expect_flags(what, text, scan_cut(text, n, scs, enc, cut, 1), want);
		}
	}
	if (n <= 96) {
		for (size_t i = 0; i <= n; i++)
			for (size_t j = i; j <= n; j++) {
				size_t cut[2] = {i, j};
				unsigned got = scan_cut(text, n, scs, enc, cut, 2);
				if (got != want) {
					char what[64];
					snprintf(what, sizeof(what), "split at %zu and %zu", i, j);
					expect_flags(what, text, got, want);
				}
			}
	}
	SqlScan s;
	sqlscan_init(&s, scs, enc);
	for (size_t i = 0; i < n; i++)
		feed_exact(&s, text, i, i + 1);
	expect_flags("byte by byte", text, sqlscan_finish(&s), want);
}

static void check(const char *sql, bool scs, unsigned want)
{
	check_n(sql, strlen(sql), scs, SQLSCAN_ENC_BYTES, want);
}

static void check_cases(const Case *cases, size_t n, bool scs)
{
	for (size_t i = 0; i < n; i++)
		check(cases[i].sql, scs, cases[i].want);
}

#define CHECK_CASES(cases, scs) check_cases((cases), sizeof(cases) / sizeof((cases)[0]), (scs))

/* ---- search_path ------------------------------------------------------- */

static void test_path_identifier_any_quoting(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SET search_path = v2", PATH | SETTINGS},
	        {"set SEARCH_PATH to v2", PATH | SETTINGS},
	        {"SET \"search_path\" = v2", PATH | SETTINGS},
	        {"SET \"SEARCH_PATH\" = v2", PATH | SETTINGS},
	        {"SET \"Search_Path\" TO DEFAULT", PATH | SETTINGS},
	        {"SET SESSION search_path = v2", PATH | SETTINGS},
	        {"SET LOCAL search_path = v2", PATH},
	        {"/* c */ SET search_path=v2", PATH | SETTINGS},
	        {"SET search_path=v2;", PATH | SETTINGS},
	        {"SET search_path", PATH | SETTINGS},
	        {"RESET search_path", PATH | SETTINGS},
	        /* anywhere, not only in SET: false alarms, one extra SET each */
	        {"ALTER ROLE r SET search_path = x", PATH},
	        {"SELECT 1 AS search_path", PATH},
	        {"SELECT $a$x$a$search_path", PATH},
	};
	CHECK_CASES(cases, true);
}

static void test_path_schema_alias(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SET SCHEMA 'v2'", PATH | SETTINGS},
	        {"set session schema 'v2'", PATH | SETTINGS},
	        {"SET LOCAL SCHEMA 'v2'", PATH},
	        {"CREATE SCHEMA v2", 0},
	};
	CHECK_CASES(cases, true);
}

static void test_path_hostile(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SELECT set_config('search'||'_path', 'v2', false)", SUSPECT},
	        {"SELECT pg_catalog.set_config('search_path', 'v2', false)", SUSPECT},
	        {"SELECT \"set_config\"('search_path', 'v2', false)", SUSPECT},
	        {"SELECT pg_catalog . \"SET_CONFIG\"('role', 'x', false)", SUSPECT},
	        {"SELECT * FROM set_config('search_path', 'v2', false)", SUSPECT},
	        {"SET U&\"search\\005fpath\" = v2", SUSPECT},
	        {"SET U&\"search!005fpath\" UESCAPE '!' = v2", SUSPECT},
	        {"SET u&\"x\" = 1", SUSPECT},
	        {"SELECT U&\"x\"", SUSPECT},
	        {"SELECT U&\"set\\005fconfig\"('search_path', 'v2', false)", SUSPECT},
	        {"select 1; set search_path = v2", PATH | SETTINGS | MULTI},
	        {"SELECT 1;SET search_path=v2", PATH | SETTINGS | MULTI},
	        {"DO $$BEGIN SET search_path = v2; END$$", SUSPECT},
	        {"do 'begin perform 1; end'", SUSPECT},
	        {"DO LANGUAGE plpgsql $x$ BEGIN END $x$", SUSPECT},
	        {"UPDATE pg_settings SET setting='v2' WHERE name='search_path'", SUSPECT},
	        {"UPDATE pg_catalog.\"pg_settings\" SET setting = 'v2'", SUSPECT},
	        {"SELECT * FROM pg_settings", SUSPECT},
	        /* an SQL-level prepared statement runs a text seen earlier */
	        {"PREPARE p AS SELECT 1; EXECUTE p", SUSPECT | MULTI},
	        {"EXECUTE p", SUSPECT},
	        {"EXPLAIN ANALYZE EXECUTE p(1)", SUSPECT},
	        {"CREATE TABLE t AS EXECUTE p", SUSPECT},
	};
	CHECK_CASES(cases, true);
}

static void test_path_not_flagged(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SELECT current_setting('search_path')", 0},
	        {"SHOW search_pat", 0},
	        {"SELECT 'set search_path'", 0},
	        {"SELECT my_search_path_x FROM t", 0},
	        {"SELECT search_path1, xsearch_path, search_path$ FROM t", 0},
	        {"SELECT \"search_path \", \"search\"\"_path\" FROM t", 0},
	        {"SELECT search_pathxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0},
	        {"SELECT \"search_pathxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"", 0},
	        {"-- set search_path = v2\nSELECT 1", 0},
	        {"SELECT 1 /* set search_path = v2 */", 0},
	        {"SELECT 1 -- set search_path = v2", 0},
	        {"SELECT $$set search_path = v2$$", 0},
	        {"SELECT $tag$ $$ set search_path $$ $tag$", 0},
	        {"SELECT E'\\\\'' set search_path'", 0},
	        {"SELECT \"execute\", 'execute' FROM t", 0},
	        {"SELECT abalance FROM pgbench_accounts WHERE aid = 12345;", 0},
	        {"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", 0},
	        {"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 2, 3, -4, CURRENT_TIMESTAMP);",
	         0},
	        {"", 0},
	        {"   \n\t ", 0},
	        {";", 0},
	};
	CHECK_CASES(cases, true);
}

/* ---- other settings, role ---------------------------------------------- */

static void test_settings(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SET statement_timeout = 0", SETTINGS},
	        {"set application_name to 'x'", SETTINGS},
	        {"SET TIME ZONE 'UTC'", SETTINGS},
	        {"SET NAMES 'UTF8'", SETTINGS},
	        {"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", SETTINGS},
	        {"SET local.x = 1", SETTINGS},
	        {"SET transaction.x = 1", SETTINGS},
	        {"SET constraints . x = 1", SETTINGS},
	        {"SET \"local\" TO 1", SETTINGS},
	        {"SET", SETTINGS},
	        {"SET LOCAL", SETTINGS},
	        {"RESET ALL", PATH | SETTINGS},
	        {"reset statement_timeout", PATH | SETTINGS},
	        {"DISCARD PLANS", PATH | SETTINGS},
	        {"discard temp", PATH | SETTINGS},
	        {"DISCARD", PATH | SETTINGS},
	};
	CHECK_CASES(cases, true);
}

static void test_settings_exempt(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SET LOCAL statement_timeout = 1", 0},
	        {"set\tlocal\nwork_mem = '1MB'", 0},
	        {"SET/**/LOCAL work_mem = 1", 0},
	        {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 0},
	        {"SET TRANSACTION SNAPSHOT '00000003-0000001B-1'", 0},
	        {"SET CONSTRAINTS ALL DEFERRED", 0},
	        {"BEGIN; SET LOCAL work_mem = '1MB'; COMMIT", MULTI},
	        {"UPDATE t SET a = 1", 0},
	        {"SELECT 'SET x = 1'", 0},
	        {"SHOW statement_timeout", 0},
	};
	CHECK_CASES(cases, true);
}

static void test_role(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SET ROLE admin", SETTINGS | ROLE},
	        {"set session role admin", SETTINGS | ROLE},
	        {"SET LOCAL ROLE admin", ROLE},
	        {"SET ROLE NONE", SETTINGS | ROLE},
	        {"SET SESSION AUTHORIZATION bob", SETTINGS | ROLE},
	        {"SET SESSION AUTHORIZATION DEFAULT", SETTINGS | ROLE},
	        {"SET LOCAL SESSION AUTHORIZATION bob", ROLE},
	        {"SET \"role\" = 'admin'", SETTINGS | ROLE},
	        {"SET \"ROLE\" TO admin", SETTINGS | ROLE},
	        {"SET session_authorization = 'bob'", SETTINGS | ROLE},
	        {"RESET ROLE", PATH | SETTINGS | ROLE},
	        {"RESET SESSION AUTHORIZATION", PATH | SETTINGS | ROLE},
	        {"reset \"role\"", PATH | SETTINGS | ROLE},
	        {"DISCARD ALL", PATH | SETTINGS | ROLE | DISCARD_ALL},
	        {"SELECT set_config('role', 'admin', false)", SUSPECT},
	        {"SELECT 1; SET ROLE admin", SETTINGS | ROLE | MULTI},
	        /* role outside SET and RESET is a plain word */
	        {"SELECT * FROM t WHERE role = 'x'", 0},
	        {"UPDATE t SET role = 'admin'", 0},
	        {"ALTER ROLE admin LOGIN", 0},
	        {"GRANT admin TO bob", 0},
	};
	CHECK_CASES(cases, true);
}

/* ---- DISCARD ALL, DEALLOCATE, LISTEN, MULTI ---------------------------- */

static void test_discard_all(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"DISCARD ALL", PATH | SETTINGS | ROLE | DISCARD_ALL},
	        {"discard all;", PATH | SETTINGS | ROLE | DISCARD_ALL},
	        {"/* x */ DISCARD\n\tALL", PATH | SETTINGS | ROLE | DISCARD_ALL},
	        {"DISCARD \"all\"", PATH | SETTINGS},
	        {"SELECT 1; DISCARD ALL", PATH | SETTINGS | ROLE | DISCARD_ALL | MULTI},
	        {"SELECT 'DISCARD ALL'", 0},
	        {"SELECT discard, all_x FROM t", 0},
	};
	CHECK_CASES(cases, true);
}

static void test_deallocate(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"DEALLOCATE p", DEALLOCATE},
	        {"deallocate all", DEALLOCATE},
	        {"DEALLOCATE PREPARE \"p\";", DEALLOCATE},
	        {"SELECT 1; DEALLOCATE p", DEALLOCATE | MULTI},
	        {"DEALLOCATE p; SET ROLE admin", DEALLOCATE | SETTINGS | ROLE | MULTI},
	        {"SELECT deallocate FROM t", 0},
	        {"-- DEALLOCATE p\nSELECT 1", 0},
	};
	CHECK_CASES(cases, true);
}

static void test_listen(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"LISTEN x", LISTEN},
	        {"listen \"x\";", LISTEN},
	        {"LISTEN", LISTEN},
	        {"SELECT 1; LISTEN x", LISTEN | MULTI},
	        {"-- c\nLISTEN x", LISTEN},
	        {"/* a /* b */ c */ LISTEN x", LISTEN},
	        {"SELECT 1; /* c */ -- d\n listen x", LISTEN | MULTI},
	        {"SELECT 'a;'; LISTEN x", LISTEN | MULTI},
	        {"SELECT listen FROM t", 0},
	        {"SELECT listen()", 0},
	        {"SELECT 'LISTEN x'", 0},
	        {"SELECT 1 -- ; LISTEN x", 0},
	        {"SELECT $$; LISTEN x$$", 0},
	        {"UNLISTEN x", 0},
	        {"NOTIFY listen", 0},
	        /* a ";" inside parentheses ends no statement (rule actions) */
	        {"CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO u VALUES (1); NOTIFY c)", 0},
	        /* documented false alarm: ";" inside BEGIN ATOMIC is taken as an end */
	        {"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; LISTEN x; END", LISTEN | MULTI},
	};
	CHECK_CASES(cases, true);
}

static void test_multi(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SELECT 1; SELECT 2", MULTI},
	        {"SELECT 1;SELECT 2;", MULTI},
	        {"SELECT 1;", 0},
	        {"SELECT 1;;", 0},
	        {";;SELECT 1", 0},
	        {"SELECT 1; -- done", 0},
	        {"SELECT 1; /* done */", 0},
	        {"SELECT 1; \n\t ", 0},
	        {"SELECT ';'", 0},
	        {"SELECT \";\"", 0},
	        {"SELECT (1;2)", 0},
	        {"SELECT ((1)); SELECT 2", MULTI},
	        {"SELECT 1); SELECT 2", MULTI},
	};
	CHECK_CASES(cases, true);
}

/* ---- lexing: comments -------------------------------------------------- */

static void test_comments(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"/* /* */ SET search_path = v2 */ SELECT 1", 0},
	        {"/* /* */ */ SET search_path = v2", PATH | SETTINGS},
	        {"/* a */ */ SET search_path = v2", PATH},
	        {"/*/ SET search_path = v2 */", 0},
	        {"/*/**/ SET search_path = v2 */", 0},
	        {"/**/SET search_path=v2", PATH | SETTINGS},
	        {"/***/SET search_path=v2", PATH | SETTINGS},
	        {"/* **/ SET ROLE x", SETTINGS | ROLE},
	        {"/* */* SET ROLE x", 0},
	        {"SELECT 1 +/* c */ 2; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 1 --/* \n; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 1 /* -- */ ; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 1 -- c\r; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 1 -- c; SET ROLE x", 0},
	        {"SELECT 1 - - 1; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 1 /* ' */; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 1 -- '\n; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT a/b; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 1 /* unterminated; SET ROLE x", 0},
	};
	CHECK_CASES(cases, true);
}

/* ---- lexing: strings --------------------------------------------------- */

static void test_strings_scs_on(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SELECT 'it''s'; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT ''';SET ROLE x'", 0},
	        {"SELECT 'a\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT N'\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT E'\\''; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT e'\\\\'; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT E'\\\\\\''; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT E'\\'; SET ROLE x; '", 0},
	        {"SELECT E'it''s'; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT E'\\x27'; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT E'\\u0027'; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT B'\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT X'1''; SET ROLE x; '", 0},
	        {"SELECT B'1''\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT U&'\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT u&'d\\0061t\\+000061'; SET ROLE x", SETTINGS | ROLE | MULTI},
	        /* a prefix is one letter at a token's start */
	        {"SELECT ae'\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT 1e'\\'; SET ROLE x; '", 0},
	        {"SELECT $e'\\'; SET ROLE x; '", 0},
	        {"SELECT au&'\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT au&\"x\"", 0},
	        {"SELECT u & \"x\"", 0},
	        {"SELECT u&x", 0},
	        /* 'a' newline 'b' is one literal, still in the first one's kind */
	        {"SELECT E'a'\n'\\''; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT E'a' '\\''; SET ROLE x; '", 0},
	        {"SELECT E'a' -- c\n'\\''; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT E'a'\r\n  -- c\n\t'\\''; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT E'a'/* */\n'\\''; SET ROLE x; '", 0},
	        {"SELECT E'a'\n/* */'\\''; SET ROLE x; '", 0},
	        {"SELECT B'1'\n'\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT 'a'\n-1; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 'a' - 1; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 'a'\n--c\n--d\n 'b'; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 'a'-- c\n'b' -- ; SET ROLE x", 0},
	        {"SELECT 'a'e'\\'; SET ROLE x; '", 0},
	        {"SELECT 'unterminated; SET ROLE x", 0},
	};
	CHECK_CASES(cases, true);
}

static void test_strings_scs_off(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SELECT 'it''s'; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT 'a\\'; SET ROLE x; '", 0},
	        {"SELECT '\\''; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT '\\\\'; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT N'\\'; SET ROLE x; '", 0},
	        {"SELECT E'\\'; SET ROLE x; '", 0},
	        {"SELECT B'\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        /* after B'1' a quote starts a plain literal, with escapes now */
	        {"SELECT B'1''\\'; SET ROLE x; '", 0},
	        {"SELECT U&'\\'; SET ROLE x; '", SETTINGS | ROLE | MULTI},
	        {"SELECT 'a'\n'\\'; SET ROLE x; '", 0},
	        {"SELECT current_setting('search_path')", 0},
	        {"SELECT 'set search_path'", 0},
	        {"SET search_path = '\\'", PATH | SETTINGS},
	};
	CHECK_CASES(cases, false);
}

/* ---- lexing: quoted identifiers ---------------------------------------- */

static void test_quoted_identifiers(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SELECT \"a\"\"b\"; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT \"a\"\";SET ROLE x\"", 0},
	        {"SELECT \"a'b\"; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT \"$$\"; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT \"/*\"; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT \"unterminated; SET ROLE x", 0},
	        {"SELECT \"set_config", SUSPECT},
	};
	CHECK_CASES(cases, true);
}

/* ---- lexing: dollar quotes --------------------------------------------- */

static void test_dollar_quotes(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SELECT $$a$$; SET search_path = v2", PATH | SETTINGS | MULTI},
	        {"SELECT $$;SET ROLE x$$", 0},
	        {"SELECT $x$ $y$ ; SET search_path = v2 $y$ $x$", 0},
	        {"SELECT $x$ $X$ ; SET search_path = v2 $X$ $x$", 0},
	        {"SELECT $x$ a $x$; SET search_path = v2", PATH | SETTINGS | MULTI},
	        {"SELECT $a$ $ab$ $a$; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $ab$ $a$ ; SET ROLE x $ab$", 0},
	        {"SELECT $ab$ $a$b$ ; SET ROLE x $ab$", 0},
	        {"SELECT $q$ $$q$ ; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $q$ $1q$ $q$; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $_$ x $_$; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $a1$ x $a1$; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $\xc3\xa9$ x $\xc3\xa9$; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $\xc3\xa9$ x $\xc3\xa8$; SET ROLE x", 0},
	        {"SELECT $$ ' $$; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $$ /* $$; SET ROLE x", SETTINGS | ROLE | MULTI},
	        /* parameters, and "$" that does not open a quote */
	        {"SELECT $1; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $1$x$; SET ROLE x $x$", 0},
	        {"SELECT $12abc; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $abc; SET ROLE x", SETTINGS | ROLE | MULTI},
	        {"SELECT $abc", 0},
	        {"SELECT $set_config", SUSPECT},
	        {"SELECT $set_config(1)", SUSPECT},
	        {"SELECT $ $; SET ROLE x", SETTINGS | ROLE | MULTI},
	        /* "$" inside a word is a letter: a$b$ is an identifier */
	        {"SELECT a$b$ FROM t; SET search_path = v2", PATH | SETTINGS | MULTI},
	        {"SELECT 1$b$; SET ROLE x $b$", 0},
	        {"SELECT $1 FROM t WHERE a = $2", 0},
	        {"SELECT $unterminated$ SET ROLE x", 0},
	};
	CHECK_CASES(cases, true);
}

static void test_dollar_long_tag(void **state)
{
	(void)state;
	char tag[80], other[80], sql[512];
	memset(tag, 'q', 70);
	tag[70] = '\0';
	memcpy(other, tag, sizeof(other));
	other[69] = 'r';
	/* a tag over SQLSCAN_TAG_MAX bytes: found again, and SUSPECT */
	snprintf(sql, sizeof(sql), "SELECT $%s$ x $%s$; LISTEN c", tag, tag);
	check(sql, true, SUSPECT | LISTEN | MULTI);
	/* same first 64 bytes, other end: not the closing tag */
	snprintf(sql, sizeof(sql), "SELECT $%s$ x $%s$; LISTEN c", tag, other);
	check(sql, true, SUSPECT);
	/* one byte longer */
	snprintf(sql, sizeof(sql), "SELECT $%s$ x $%sq$; LISTEN c $%s$", tag, tag, tag);
	check(sql, true, SUSPECT);
	/* exactly SQLSCAN_TAG_MAX bytes: compared exactly, no SUSPECT */
	tag[SQLSCAN_TAG_MAX] = '\0';
	snprintf(sql, sizeof(sql), "SELECT $%s$ x $%s$; LISTEN c", tag, tag);
	check(sql, true, LISTEN | MULTI);
	/* a long failed tag is a long word: no keyword */
	snprintf(sql, sizeof(sql), "SELECT $%s; LISTEN c", tag);
	check(sql, true, LISTEN | MULTI);
}

/* ---- NUL, end of text, long words --------------------------------------- */

static void test_nul_ends_text(void **state)
{
	(void)state;
	static const char t1[] = "SELECT 1\0; SET ROLE x";
	check_n(t1, sizeof(t1) - 1, true, SQLSCAN_ENC_BYTES, 0);
	static const char t2[] = "DISCARD ALL\0garbage";
	check_n(t2, sizeof(t2) - 1, true, SQLSCAN_ENC_BYTES, PATH | SETTINGS | ROLE | DISCARD_ALL);
	static const char t3[] = "SELECT E'\\\0'; SET ROLE x";
	check_n(t3, sizeof(t3) - 1, true, SQLSCAN_ENC_BYTES, 0);
	static const char t4[] = "SELECT \x95\0\x5c'; SET ROLE x";
	check_n(t4, sizeof(t4) - 1, true, SQLSCAN_ENC_SJIS, 0);

	SqlScan s;
	sqlscan_init(&s, true, SQLSCAN_ENC_BYTES);
	sqlscan_feed(&s, "SELECT 1", 8);
	sqlscan_feed(&s, "\0", 1);
	sqlscan_feed(&s, "; SET ROLE x", 12);
	assert_int_equal(sqlscan_finish(&s), 0);
	assert_int_equal(sqlscan_text("LISTEN x", SQLSCAN_CSTRING, true, SQLSCAN_ENC_BYTES), LISTEN);
	assert_int_equal(sqlscan_text("LISTEN x", 3, true, SQLSCAN_ENC_BYTES), 0);
}

static void test_end_inside_token(void **state)
{
	(void)state;
	static const Case cases[] = {
	        {"SELECT 1; LISTEN", LISTEN | MULTI},
	        {"SET search_pa", SETTINGS},
	        {"SELECT set_config", SUSPECT},
	        {"SELECT \"search_path\"", PATH},
	        {"SELECT \"search_path", PATH},
	        {"SELECT u", 0},
	        {"SELECT u&", 0},
	        {"SELECT e", 0},
	        {"SELECT 1 -", 0},
	        {"SELECT 1 /", 0},
	        {"SELECT $", 0},
	        {"SELECT $a", 0},
	        {"SELECT E'\\", 0},
	        {"SELECT 'a'", 0},
	        {"SELECT 'a' -", 0},
	        {"SELECT 'a'\n", 0},
	};
	CHECK_CASES(cases, true);
}

static void test_finish_twice(void **state)
{
	(void)state;
	SqlScan s;
	sqlscan_init(&s, true, SQLSCAN_ENC_BYTES);
	sqlscan_feed(&s, "SET ROLE", 8);
	assert_int_equal(sqlscan_finish(&s), SETTINGS | ROLE);
	assert_int_equal(sqlscan_finish(&s), SETTINGS | ROLE);
}

/* ---- client-only encodings --------------------------------------------- */

static void test_encoding_sjis(void **state)
{
	(void)state;
	/* 0x95 0x5C is one SJIS character: its second byte is no backslash */
	static const char t1[] = "SELECT E'\x95\x5c'; SET ROLE x; SELECT ''";
	check_n(t1, sizeof(t1) - 1, true, SQLSCAN_ENC_SJIS, SETTINGS | ROLE | MULTI);
	check_n(t1, sizeof(t1) - 1, true, SQLSCAN_ENC_BYTES, 0);
	static const char t2[] = "SELECT '\x95\x5c'; SET ROLE x; SELECT ''";
	check_n(t2, sizeof(t2) - 1, false, SQLSCAN_ENC_SJIS, SETTINGS | ROLE | MULTI);
	/* nor does it end a word: a<95><5C>$x$ is one identifier, no quote */
	static const char t3[] = "SELECT a\x95\x5c$x$; SET ROLE y; SELECT $x$$x$";
	check_n(t3, sizeof(t3) - 1, true, SQLSCAN_ENC_SJIS, SETTINGS | ROLE | MULTI);
	check_n(t3, sizeof(t3) - 1, true, SQLSCAN_ENC_BYTES, 0);
	/* and it is part of a dollar-quote tag, compared byte for byte */
	static const char t4[] = "SELECT $\x95\x5c$ x $\x95\x5c$; SET ROLE y";
	check_n(t4, sizeof(t4) - 1, true, SQLSCAN_ENC_SJIS, SETTINGS | ROLE | MULTI);
	static const char t5[] = "SELECT $\x95\x5c$ x $\x95\x5d$; SET ROLE y";
	check_n(t5, sizeof(t5) - 1, true, SQLSCAN_ENC_SJIS, 0);
	/* 0xB1 is a one-byte katakana: the backslash after it is one */
	static const char t6[] = "SELECT E'\xb1\\'; SET ROLE x; '";
	check_n(t6, sizeof(t6) - 1, true, SQLSCAN_ENC_SJIS, 0);
	/* characters in a comment, a quoted identifier, a dollar body */
	static const char t7[] = "SELECT 1 /* \x95\x5c */, \"\x95\x5c\", $$\x95\x5c$$ -- \x95\x5c\n; SET ROLE x";
	check_n(t7, sizeof(t7) - 1, true, SQLSCAN_ENC_SJIS, SETTINGS | ROLE | MULTI);
	/* invalid SJIS (a lead byte, then "\n") fails in the server; the scan
	 * only must not read past the text */
	static const char t8[] = "SELECT 1 -- \x95\n; SET ROLE x";
	sqlscan_text(t8, sizeof(t8) - 1, true, SQLSCAN_ENC_SJIS);
}

static void test_encoding_pairs(void **state)
{
	(void)state;
	/* BIG5, GBK: 0xA4 0x5C is one character */
	static const char t1[] = "SELECT E'\xa4\x5c'; SET ROLE x; SELECT ''";
	check_n(t1, sizeof(t1) - 1, true, SQLSCAN_ENC_PAIRS, SETTINGS | ROLE | MULTI);
	check_n(t1, sizeof(t1) - 1, true, SQLSCAN_ENC_BYTES, 0);
	/* GB18030 four-byte characters are two pairs; 0xB1 leads one here */
	static const char t2[] = "SELECT '\x81\x30\x81\x30', E'\xb1\x5c'; SET ROLE x; SELECT ''";
	check_n(t2, sizeof(t2) - 1, true, SQLSCAN_ENC_PAIRS, SETTINGS | ROLE | MULTI);
	/* one word in BIG5; a high byte, "@" and search_path in UTF8 */
	static const char t3[] = "SELECT \xa4\x40search_path";
	check_n(t3, sizeof(t3) - 1, true, SQLSCAN_ENC_PAIRS, 0);
	check_n(t3, sizeof(t3) - 1, true, SQLSCAN_ENC_BYTES, PATH);
}

static void test_encoding_names(void **state)
{
	(void)state;
	assert_int_equal(sqlscan_encoding("SJIS", "UTF8"), SQLSCAN_ENC_SJIS);
	assert_int_equal(sqlscan_encoding("Shift_JIS", "EUC_JP"), SQLSCAN_ENC_SJIS);
	assert_int_equal(sqlscan_encoding("SHIFT_JIS_2004", "EUC_JIS_2004"), SQLSCAN_ENC_SJIS);
	assert_int_equal(sqlscan_encoding("win932", "UTF8"), SQLSCAN_ENC_SJIS);
	assert_int_equal(sqlscan_encoding("sjis", NULL), SQLSCAN_ENC_SJIS);
	assert_int_equal(sqlscan_encoding("BIG5", "UTF8"), SQLSCAN_ENC_PAIRS);
	assert_int_equal(sqlscan_encoding("GBK", "UTF8"), SQLSCAN_ENC_PAIRS);
	assert_int_equal(sqlscan_encoding("WIN936", "UTF8"), SQLSCAN_ENC_PAIRS);
	assert_int_equal(sqlscan_encoding("Windows-950", "UTF8"), SQLSCAN_ENC_PAIRS);
	assert_int_equal(sqlscan_encoding("windows932", "UTF8"), SQLSCAN_ENC_SJIS);
	assert_int_equal(sqlscan_encoding("UHC", "EUC_KR"), SQLSCAN_ENC_PAIRS);
	assert_int_equal(sqlscan_encoding("GB18030", "UTF8"), SQLSCAN_ENC_PAIRS);
	assert_int_equal(sqlscan_encoding("UTF8", "UTF8"), SQLSCAN_ENC_BYTES);
	assert_int_equal(sqlscan_encoding("LATIN1", "UTF8"), SQLSCAN_ENC_BYTES);
	assert_int_equal(sqlscan_encoding("JOHAB", "UTF8"), SQLSCAN_ENC_BYTES);
	assert_int_equal(sqlscan_encoding("EUC_JP", "UTF8"), SQLSCAN_ENC_BYTES);
	/* SQL_ASCII on either side: no conversion, the server lexes the bytes */
	assert_int_equal(sqlscan_encoding("SJIS", "SQL_ASCII"), SQLSCAN_ENC_BYTES);
	assert_int_equal(sqlscan_encoding("SQL_ASCII", "UTF8"), SQLSCAN_ENC_BYTES);
	assert_int_equal(sqlscan_encoding(NULL, "UTF8"), SQLSCAN_ENC_BYTES);
	assert_int_equal(sqlscan_encoding("SJISX", "UTF8"), SQLSCAN_ENC_BYTES);
}

/* ---- splits across every kind of boundary ------------------------------ */

/* A text holding every construct, checked at every split point and pair of
 * split points, in each encoding class and both settings. */
static void test_split_everything(void **state)
{
	(void)state;
	static const char sql[] = "/* a /* b */ */ SELECT E'\\'', U&\"x\" UESCAPE '!', $t$ $$ $t$, \"q\"\"\", 'a'\n"
	                          "-- c\n'b', x'1f', $1 -- d\n; SET LOCAL x.y = 1; listen c";
	unsigned want = SUSPECT | LISTEN | MULTI;
	size_t n = sizeof(sql) - 1;
	check_n(sql, n, true, SQLSCAN_ENC_BYTES, want);
	check_n(sql, n, true, SQLSCAN_ENC_SJIS, want);
	check_n(sql, n, true, SQLSCAN_ENC_PAIRS, want);
	for (size_t i = 0; i <= n; i++)
		for (size_t j = i; j <= n; j++) {
			size_t cut[2] = {i, j};
			if (scan_cut(sql, n, true, SQLSCAN_ENC_BYTES, cut, 2) != want)
				fail_msg("split at %zu and %zu", i, j);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_path_identifier_any_quoting),
	        cmocka_unit_test(test_path_schema_alias),
	        cmocka_unit_test(test_path_hostile),
	        cmocka_unit_test(test_path_not_flagged),
	        cmocka_unit_test(test_settings),
	        cmocka_unit_test(test_settings_exempt),
	        cmocka_unit_test(test_role),
	        cmocka_unit_test(test_discard_all),
	        cmocka_unit_test(test_deallocate),
	        cmocka_unit_test(test_listen),
	        cmocka_unit_test(test_multi),
	        cmocka_unit_test(test_comments),
	        cmocka_unit_test(test_strings_scs_on),
	        cmocka_unit_test(test_strings_scs_off),
	        cmocka_unit_test(test_quoted_identifiers),
	        cmocka_unit_test(test_dollar_quotes),
	        cmocka_unit_test(test_dollar_long_tag),
	        cmocka_unit_test(test_nul_ends_text),
	        cmocka_unit_test(test_end_inside_token),
	        cmocka_unit_test(test_finish_twice),
	        cmocka_unit_test(test_encoding_sjis),
	        cmocka_unit_test(test_encoding_pairs),
	        cmocka_unit_test(test_encoding_names),
	        cmocka_unit_test(test_split_everything),
	};
	return cmocka_run_group_tests_name("sqlscan", tests, NULL, NULL);
}
