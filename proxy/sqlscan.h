/*
 * proxy/sqlscan.h: which session state a Query or Parse text may change.
 *
 * An incremental, token-level scanner of PostgreSQL SQL text. It follows the
 * server's lexer (src/backend/parser/scan.l), so it knows what is a comment,
 * a string, a dollar-quoted string, a quoted identifier and a keyword, and it
 * tracks statement starts (the start of the text, and each `;` outside
 * parentheses). The rules are those of PostgreSQL 13 and later; older servers
 * differ only in U&"..." UESCAPE '\' with standard_conforming_strings off,
 * and a U& identifier makes the text SQLSCAN_SUSPECT anyway. Its answers
 * are compared with what a real server does by tests/fuzz/oracle_sqlscan.c.
 *
 * It does not parse SQL: it answers with a set of SQLSCAN_* flags, and when
 * in doubt it flags. A false alarm costs the proxy one extra SET; a miss
 * would let one client's search_path or role reach another client, so every
 * rule below errs towards flagging.
 *
 * The state is fixed-size and lives in the caller's SqlScan (no heap, no
 * global state): texts can be fed in chunks split anywhere, as they arrive.
 * The module uses libc only, so that it can be tested and fuzzed alone.
 *
 * Flags (sqlscan_finish returns their union over the whole text):
 *
 *   SQLSCAN_PATH        search_path may have changed. Set by:
 *                       - an identifier search_path anywhere, unquoted or
 *                         quoted, in any case ("SEARCH_PATH" too: setting
 *                         names are case-insensitive);
 *                       - SET [SESSION | LOCAL] SCHEMA (an alias of
 *                         search_path);
 *                       - a statement starting with RESET, DISCARD or DO;
 *                       - everything listed under SQLSCAN_SUSPECT below.
 *   SQLSCAN_SETTINGS    other session settings may have changed. Set by a
 *                       statement starting with SET, except SET LOCAL ...,
 *                       SET TRANSACTION ... and SET CONSTRAINTS ...
 *                       (SET SESSION CHARACTERISTICS AS TRANSACTION is a
 *                       session change and is flagged; so is SET local.x,
 *                       a custom setting named local.x); by a statement
 *                       starting with RESET or DISCARD; by SQLSCAN_SUSPECT.
 *   SQLSCAN_ROLE        the role may have changed: SET [SESSION | LOCAL] ROLE,
 *                       SET [SESSION | LOCAL] SESSION AUTHORIZATION, RESET
 *                       ROLE, RESET SESSION AUTHORIZATION, DISCARD ALL (it
 *                       runs SET SESSION AUTHORIZATION DEFAULT), and in any
 *                       SET or RESET statement the words role, authorization
 *                       or session_authorization, quoted or not (SET "role"
 *                       = x is the setting role); and SQLSCAN_SUSPECT.
 *   SQLSCAN_DISCARD_ALL a statement DISCARD ALL (it drops the prepared
 *                       statements too).
 *   SQLSCAN_DEALLOCATE  a statement starting with DEALLOCATE.
 *   SQLSCAN_LISTEN      a statement starting with LISTEN, at any position of
 *                       a multi-statement text. `listen` as a column name, or
 *                       inside a string or comment, is not one.
 *   SQLSCAN_MULTI       more than one statement: tokens after a `;` outside
 *                       parentheses, when tokens came before it too (empty
 *                       statements, `SELECT 1;;`, do not count).
 *
 *   SQLSCAN_SUSPECT = SQLSCAN_PATH | SQLSCAN_SETTINGS | SQLSCAN_ROLE, set by
 *   whatever can change any setting at all:
 *                       - an identifier set_config or pg_settings anywhere,
 *                         unquoted or quoted, qualified or not (UPDATE
 *                         pg_settings SET setting = ... is set_config);
 *                       - any U&"..." identifier: its escapes can spell any
 *                         name, and its UESCAPE clause comes after it;
 *                       - a statement starting with DO (its body is not read);
 *                       - the keyword EXECUTE anywhere: it runs an SQL-level
 *                         prepared statement (PREPARE p AS SELECT set_config
 *                         (...)) whose text was seen, and flagged, earlier;
 *                       - a dollar-quote tag longer than SQLSCAN_TAG_MAX
 *                         bytes: its end is found by length, first bytes and
 *                         a 64-bit hash, and a crafted collision could make
 *                         the scanner lose its place.
 *
 * Not flagged: words inside string literals, dollar-quoted strings and
 * comments (SELECT current_setting('search_path') is common and is not a
 * change), `my_search_path_x` (whole words only), SET LOCAL statement_timeout.
 *
 * What the scanner cannot see. It reads the text it is given, so state that
 * changes inside code defined earlier is invisible to it:
 *   - a function or procedure whose body runs SET or set_config (SELECT f(),
 *     CALL p()), including PL/pgSQL EXECUTE of a string built at run time;
 *   - triggers, event triggers, rules, views, column defaults, check
 *     constraints, casts and operators whose functions do the same (an
 *     INSERT can run set_config through a trigger);
 *   - a protocol-level prepared statement: the scanner flags the Parse text,
 *     and the caller must apply those flags again at every Execute of it,
 *     on whichever server runs it;
 *   - a FunctionCall message (protocol 'F'), which calls a function by OID,
 *     set_config included, with no SQL text at all: the caller must take it
 *     as SQLSCAN_SUSPECT;
 *   - LISTEN run inside a function or DO body;
 *   - extension code (LOAD, or C functions that set options).
 * Known false alarms: the semicolons inside a BEGIN ATOMIC ... END function
 * body are taken as statement ends, so a statement keyword just after one
 * (LISTEN, DISCARD ALL, ...) is flagged as a statement of its own.
 *
 * Text and encoding. The scanner reads the bytes as the client sends them,
 * while the server lexes them after converting them to the server encoding.
 * In the client-only encodings SJIS, SHIFT_JIS_2004, BIG5, GBK, UHC and
 * GB18030 the second byte of a character may be an ASCII byte such as `\`,
 * and a scanner that read it as a backslash or as the end of a dollar-quote
 * tag would lose its place; sqlscan_init therefore takes the encoding class
 * (see sqlscan_encoding). Invalid text in those encodings is rejected by
 * the server before it is lexed, so the scanner only needs to be right on
 * valid text. standard_conforming_strings decides whether '...' takes
 * backslash escapes; a SET of it inside the same text takes effect only for
 * the next text (the server lexes the whole text before running any of it).
 * Both inputs are the values the server will lex this text with: when the
 * caller cannot be sure of one (say it sends a set_config of it just ahead
 * of the text), it scans with each candidate value and takes the union of
 * the flags, which covers whichever one the server uses.
 */
#ifndef PGFLIP_PROXY_SQLSCAN_H
#define PGFLIP_PROXY_SQLSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SQLSCAN_PATH (1u << 0)
#define SQLSCAN_SETTINGS (1u << 1)
#define SQLSCAN_ROLE (1u << 2)
#define SQLSCAN_DISCARD_ALL (1u << 3)
#define SQLSCAN_DEALLOCATE (1u << 4)
#define SQLSCAN_LISTEN (1u << 5)
#define SQLSCAN_MULTI (1u << 6)
#define SQLSCAN_SUSPECT (SQLSCAN_PATH | SQLSCAN_SETTINGS | SQLSCAN_ROLE)

/* The first bytes of a word kept for keyword matching: the longest word
 * matched is session_authorization (21); longer words match nothing. */
#define SQLSCAN_WORD_MAX 32
/* Dollar-quote tags up to this many bytes are compared exactly; a longer
 * one sets SQLSCAN_SUSPECT (see above). Real tags are a few bytes. */
#define SQLSCAN_TAG_MAX 64
/* sqlscan_text's n for a text that ends at its NUL. */
#define SQLSCAN_CSTRING SIZE_MAX

/* How the client's multibyte characters are built (sqlscan_encoding). */
typedef enum SqlScanEncoding {
	/* every byte of a multibyte character is >= 0x80: UTF8, the EUC
	 * family, LATIN*, WIN*, JOHAB (as PostgreSQL validates it), and any text
	 * the server does not convert (server or client SQL_ASCII) */
	SQLSCAN_ENC_BYTES = 0,
	/* SJIS, SHIFT_JIS_2004: a byte >= 0x80 outside 0xA1-0xDF (one-byte
	 * katakana) starts a two-byte character whose second byte may be ASCII */
	SQLSCAN_ENC_SJIS,
	/* BIG5, GBK, UHC, GB18030: every byte >= 0x80 starts a two-byte
	 * character (GB18030's four-byte ones are two such pairs) */
	SQLSCAN_ENC_PAIRS,
} SqlScanEncoding;

/* Scanner state: fixed-size, on the caller's storage, nothing to free.
 * Every field is private to sqlscan.c. */
typedef struct SqlScan {
	unsigned flags;
	uint32_t paren_depth;
	uint32_t comment_depth;
	uint32_t tag_len;  /* bytes of the open dollar-quote tag */
	uint32_t cand_len; /* bytes of a candidate closing tag */
	uint64_t tag_hash, cand_hash;
	uint8_t state, sub, str_kind, stmt, stmt_step, nstmt, word_len, enc;
	bool scs, ended, trail, quoted_u, cand_active, cand_ok;
	char word[SQLSCAN_WORD_MAX];
	unsigned char tag[SQLSCAN_TAG_MAX];
} SqlScan;

/*
 * The encoding class for the session's client_encoding and server_encoding,
 * as the server reported them in ParameterStatus (either may be NULL: not
 * known yet). Names are compared as PostgreSQL does, ignoring case and
 * non-alphanumerics, aliases included (Shift_JIS, WIN932, Windows936, ...).
 * When either side is SQL_ASCII the server converts nothing and lexes the
 * bytes as sent: SQLSCAN_ENC_BYTES.
 */
SqlScanEncoding sqlscan_encoding(const char *client_encoding, const char *server_encoding);

/*
 * Starts the scan of one text. standard_conforming_strings: the session's
 * setting on the server that will run the text, as the server last reported
 * it; when false, plain '...' literals take backslash escapes (as E'...'
 * always do). enc: the client encoding's class (sqlscan_encoding).
 */
void sqlscan_init(SqlScan *s, bool standard_conforming_strings, SqlScanEncoding enc);

/*
 * Feeds the next n bytes of the text. Chunks may be split anywhere, even
 * inside a token, a U& prefix, a dollar-quote tag, a comment opener or a
 * multibyte character: the flags do not depend on where. A NUL byte ends
 * the text, and every byte after it, in this call or later ones, is ignored.
 * n may be 0 (then p may be NULL). Not to be called after sqlscan_finish.
 */
void sqlscan_feed(SqlScan *s, const char *p, size_t n);

/*
 * Ends the text and returns its flags (SQLSCAN_*). The text may end
 * anywhere, inside a token or a literal: a word cut by the end still
 * counts (`DISCARD ALL` without `;`). Calling it again returns the same.
 */
unsigned sqlscan_finish(SqlScan *s);

/*
 * One-shot scan of a whole text: its first n bytes, or up to its first NUL
 * if that comes earlier; SQLSCAN_CSTRING scans a NUL-terminated string.
 */
unsigned sqlscan_text(const char *sql, size_t n, bool standard_conforming_strings, SqlScanEncoding enc);

#endif
