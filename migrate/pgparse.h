/*
 * migrate/pgparse.h: SQL text through PostgreSQL's own parser (libpg_query),
 * for `convert` and `lint`.
 *
 * pg_query_parse gives the raw parse tree as JSON (the node names of
 * PostgreSQL's parsenodes.h: CreateStmt, AlterTableStmt, IndexStmt...), read
 * here into a jansson tree; pg_query_scan gives the tokens with their byte
 * offsets. The tree says what a statement is; the tokens give back the text
 * of a clause as it was written (a type, a DEFAULT expression, a CHECK, an
 * index predicate), since libpg_query deparses whole statements only.
 * Offsets are bytes into the text given, as the tree's "location" fields.
 */
#ifndef PGFLIP_MIGRATE_PGPARSE_H
#define PGFLIP_MIGRATE_PGPARSE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct PgToken {
	int start, end;   /* byte offsets, end exclusive */
	int kind;         /* pg_query's Token enum (ASCII characters as themselves) */
	bool keyword;     /* a keyword of any kind (reserved or not) */
} PgToken;

typedef struct PgStmt {
	const char *type; /* node name, e.g. "AlterTableStmt" */
	json_t *node;     /* its fields (borrowed from PgParse.root) */
	int start, end;   /* the statement's text, comments and blanks around it excluded */
} PgStmt;

typedef struct PgParse {
	const char *text; /* borrowed, NUL-terminated */
	json_t *root;
	PgStmt *stmts;
	size_t nstmts;
	PgToken *tok;     /* comments excluded */
	size_t ntok;
} PgParse;

/*
 * pgparse_run: parses TEXT (NUL-terminated, kept borrowed by P until
 * pgparse_free). Returns true with P filled; false with ERR "LINE: message"
 * (the parser's own message, e.g. `3: syntax error at or near "TABL"`, LINE
 * 1-based in TEXT) and P freed. Empty text or only comments: true, 0 stmts.
 */
bool pgparse_run(PgParse *p, const char *text, char *err, size_t errlen) __attribute__((warn_unused_result));
void pgparse_free(PgParse *p);

/* 1-based line of byte OFFSET in P's text. */
int pgparse_line(const PgParse *p, int offset);

/* The statement's text (STMT's start to end), a new string; NULL when out of memory. */
char *pgparse_stmt_text(const PgParse *p, const PgStmt *s);

/*
 * pgparse_clause: the text of the clause that starts at the first token at
 * or after FROM and ends before END: at the first token, outside brackets,
 * that is ',', ';', a closing bracket that was not opened, or (after the
 * first token) one of the STOP keywords (lower case, NULL-terminated list;
 * NULL: none). Column constraints end a type or a DEFAULT this way
 * ("varchar(255) NOT NULL" gives "varchar(255)"). A new string, "" when no
 * token is there; NULL when out of memory.
 */
char *pgparse_clause(const PgParse *p, int from, int end, const char *const *stop);

/* Stop words of a column definition's clauses (type, DEFAULT): the column
 * constraint keywords, COLLATE and USING. */
extern const char *const PGPARSE_COLUMN_STOP[];

/* The text inside the first parenthesis opened at or after FROM (before END),
 * up to its matching ')'; "" when there is none. New string or NULL (OOM). */
char *pgparse_parens(const PgParse *p, int from, int end);

/* Offset of the first keyword WORD (lower case) outside parentheses in
 * [FROM, END), or -1. */
int pgparse_keyword(const PgParse *p, int from, int end, const char *word);

/* The end offset of the last keyword WORD (lower case) before offset AT, or
 * -1: where the clause of an expression at AT begins ("DEFAULT (x)::text"). */
int pgparse_keyword_before(const PgParse *p, int at, const char *word);

/* Helpers over the parse tree: the String nodes of a list joined by '.'
 * ("pg_catalog.int4"), a new string or NULL; the "sval" of a String node. */
char *pgparse_names(const json_t *list);
const char *pgparse_sval(const json_t *node);
/* Smallest "location" in the subtree of NODE, or -1. */
int pgparse_min_location(const json_t *node);

#endif
