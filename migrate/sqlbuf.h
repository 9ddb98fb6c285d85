/*
 * migrate/sqlbuf.h: the one SQL-building layer of the migration module.
 *
 * Every statement pgflip writes is built in a SqlBuf, and every identifier and
 * literal goes through sqlbuf_ident() / sqlbuf_literal(), so quoting lives in
 * exactly one place. A SqlBuf grows up to SQLBUF_MAX bytes; past that (or when
 * memory runs out) it turns "failed" and stays so, and sqlbuf_steal() returns
 * NULL: callers check once at the end instead of after every append (the same
 * contract as PostgreSQL's PQExpBuffer).
 *
 * Expressions written by the user (types, defaults, up/down, CHECK bodies,
 * predicates) are SQL by design and are copied verbatim; the only rewrite
 * applied to them is sqlbuf_rename_idents(), a tokenizer-level rename of
 * column names used when a constraint moves to a duplicated column and when
 * an expression written against one state of the schema is turned into the
 * names of another.
 */
#ifndef PGFLIP_MIGRATE_SQLBUF_H
#define PGFLIP_MIGRATE_SQLBUF_H

#include <stdbool.h>
#include <stddef.h>

/* 8 MiB: a migration's SQL is written by people; a plan bigger than this is a
 * runaway loop, not a migration. */
#define SQLBUF_MAX ((size_t)8 << 20)

typedef struct SqlBuf {
	char *data;   /* NUL-terminated once anything was appended */
	size_t len;
	size_t cap;
	bool failed;  /* sticky: overflow or out of memory */
} SqlBuf;

void sqlbuf_init(SqlBuf *b);
/* Frees the text; B may be reused after sqlbuf_init(). Accepts NULL. */
void sqlbuf_free(SqlBuf *b);
/* Empties B, keeping its memory; clears the failed flag. */
void sqlbuf_reset(SqlBuf *b);

void sqlbuf_add(SqlBuf *b, const char *s);
void sqlbuf_addn(SqlBuf *b, const char *s, size_t n);
void sqlbuf_printf(SqlBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends ID as a double-quoted identifier ("a""b"). Always quotes: names in
 * migration files are case-sensitive, exactly as PostgreSQL stores them. */
void sqlbuf_ident(SqlBuf *b, const char *id);
/* Appends SCHEMA.NAME, both quoted. */
void sqlbuf_qname(SqlBuf *b, const char *schema, const char *name);
/* Appends S as a standard string literal ('it''s'); NULL appends NULL. */
void sqlbuf_literal(SqlBuf *b, const char *s);

/*
 * sqlbuf_rename_ident: appends EXPR with every reference to column FROM
 * replaced by the quoted identifier TO. A reference is an unquoted word equal
 * to FROM ignoring case, or a quoted identifier equal to FROM exactly, that is
 * not qualified (no '.' before it), not a type (no '::' before it) and not a
 * function name ('(' after it). String literals, dollar quotes and comments are
 * copied untouched.
 */
void sqlbuf_rename_ident(SqlBuf *b, const char *expr, const char *from, const char *to);
/* The same for N names at once: a reference to FROM[k] becomes TO[k]. Every
 * reference is renamed once, by the first FROM it matches, so a swap (a -> b,
 * b -> a) comes out right. */
void sqlbuf_rename_idents(SqlBuf *b, const char *expr, const char *const *from, const char *const *to, size_t n);

/* True when EXPR may refer to NAME: NAME occurs in EXPR as a whole word,
 * ignoring case (an over-approximation: the word may sit in a string). Used to
 * declare only the trigger variables an expression can use and to list the
 * columns whose change fires the UPDATE sync trigger. */
bool sql_mentions(const char *expr, const char *name);

/* Returns the text (malloc'd, caller frees) and leaves B empty, or NULL when B
 * failed (B is then reset). */
char *sqlbuf_steal(SqlBuf *b);

#endif
