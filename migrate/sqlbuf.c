/*
 * migrate/sqlbuf.c: bounded SQL text builder, quoting, and the one expression
 * rewrite (column rename) the planner needs. See sqlbuf.h for the contracts.
 */
#include "migrate/sqlbuf.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void sqlbuf_init(SqlBuf *b)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->failed = false;
}

void sqlbuf_free(SqlBuf *b)
{
	if (!b)
		return;
	free(b->data);
	sqlbuf_init(b);
}

void sqlbuf_reset(SqlBuf *b)
{
	b->len = 0;
	b->failed = false;
	if (b->data)
		b->data[0] = '\0';
}

/* Makes room for N more bytes plus the NUL; false (and failed) past the cap. */
static bool sqlbuf_reserve(SqlBuf *b, size_t n)
{
	if (b->failed)
		return false;
	if (n > SQLBUF_MAX || b->len > SQLBUF_MAX - n) {
		b->failed = true;
		return false;
	}
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->data = p;
	b->cap = cap;
	return true;
}

void sqlbuf_addn(SqlBuf *b, const char *s, size_t n)
{
	if (!sqlbuf_reserve(b, n))
		return;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void sqlbuf_add(SqlBuf *b, const char *s)
{
	sqlbuf_addn(b, s, strlen(s));
}

void sqlbuf_printf(SqlBuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = true;
		return;
	}
	if (!sqlbuf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Appends S between Q characters, doubling each Q inside. */
static void sqlbuf_quoted(SqlBuf *b, const char *s, char q)
{
	sqlbuf_addn(b, &q, 1);
	for (const char *p = s; *p; p++) {
		if (*p == q)
			sqlbuf_addn(b, &q, 1);
		sqlbuf_addn(b, p, 1);
	}
	sqlbuf_addn(b, &q, 1);
}

void sqlbuf_ident(SqlBuf *b, const char *id)
{
	sqlbuf_quoted(b, id, '"');
}

void sqlbuf_qname(SqlBuf *b, const char *schema, const char *name)
{
	sqlbuf_ident(b, schema);
	sqlbuf_add(b, ".");
	sqlbuf_ident(b, name);
}

void sqlbuf_literal(SqlBuf *b, const char *s)
{
	if (!s) {
		sqlbuf_add(b, "NULL");
		return;
	}
	sqlbuf_quoted(b, s, '\'');
}

static bool ident_start(char c)
{
	return isalpha((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

static bool ident_char(char c)
{
	return ident_start(c) || isdigit((unsigned char)c) || c == '$';
}

/* Index of the last non-space byte before POS in S, or -1. */
static long prev_nonspace(const char *s, size_t pos)
{
	long i = (long)pos - 1;
	while (i >= 0 && isspace((unsigned char)s[i]))
		i--;
	return i;
}

static bool is_reference(const char *s, size_t start, size_t end)
{
	long p = prev_nonspace(s, start);
	if (p >= 0 && s[p] == '.')
		return false;
	if (p >= 1 && s[p] == ':' && s[p - 1] == ':')
		return false;
	size_t n = end;
	while (s[n] && isspace((unsigned char)s[n]))
		n++;
	return s[n] != '(';
}

/* Index in FROM of the name a reference spelled as S[0..N) (QUOTED: exactly,
 * else ignoring case) stands for, or -1. */
static long rename_find(const char *s, size_t n, bool quoted, const char *const *from, size_t nfrom)
{
	for (size_t k = 0; k < nfrom; k++) {
		if (strlen(from[k]) != n)
			continue;
		if (quoted ? strncmp(s, from[k], n) == 0 : strncasecmp(s, from[k], n) == 0)
			return (long)k;
	}
	return -1;
}

void sqlbuf_rename_ident(SqlBuf *b, const char *s, const char *from, const char *to)
{
	sqlbuf_rename_idents(b, s, &from, &to, 1);
}

void sqlbuf_rename_idents(SqlBuf *b, const char *s, const char *const *from, const char *const *to, size_t n)
{
	size_t i = 0;
	while (s[i]) {
		char c = s[i];
		if (c == '\'') { /* string literal, '' escapes */
			size_t j = i + 1;
			while (s[j] && !(s[j] == '\'' && s[j + 1] != '\'')) {
				if (s[j] == '\'')
					j++;
				j++;
			}
			if (s[j])
				j++;
			sqlbuf_addn(b, s + i, j - i);
			i = j;
		} else if (c == '-' && s[i + 1] == '-') { /* line comment */
			size_t j = i;
			while (s[j] && s[j] != '\n')
				j++;
			sqlbuf_addn(b, s + i, j - i);
			i = j;
		} else if (c == '$' && (s[i + 1] == '$' || ident_start(s[i + 1]))) { /* dollar quote */
			size_t j = i + 1;
			while (s[j] && s[j] != '$' && ident_char(s[j]))
				j++;
			if (s[j] != '$') {
				sqlbuf_addn(b, s + i, 1);
				i++;
				continue;
			}
			size_t taglen = j - i + 1;
			const char *close = NULL;
			for (const char *q = s + j + 1; *q; q++)
				if (strncmp(q, s + i, taglen) == 0) {
					close = q;
					break;
				}
			size_t end = close ? (size_t)(close - s) + taglen : strlen(s);
			sqlbuf_addn(b, s + i, end - i);
			i = end;
		} else if (c == '"') { /* quoted identifier */
			SqlBuf id;
			sqlbuf_init(&id);
			size_t j = i + 1;
			while (s[j]) {
				if (s[j] == '"') {
					if (s[j + 1] == '"') {
						sqlbuf_addn(&id, "\"", 1);
						j += 2;
						continue;
					}
					break;
				}
				sqlbuf_addn(&id, s + j, 1);
				j++;
			}
			if (s[j])
				j++;
			long k = id.data ? rename_find(id.data, id.len, true, from, n) : -1;
			if (k >= 0 && is_reference(s, i, j))
				sqlbuf_ident(b, to[k]);
			else
				sqlbuf_addn(b, s + i, j - i);
			sqlbuf_free(&id);
			i = j;
		} else if (ident_start(c) && (i == 0 || !ident_char(s[i - 1]))) {
			size_t j = i;
			while (ident_char(s[j]))
				j++;
			long k = rename_find(s + i, j - i, false, from, n);
			if (k >= 0 && is_reference(s, i, j))
				sqlbuf_ident(b, to[k]);
			else
				sqlbuf_addn(b, s + i, j - i);
			i = j;
		} else {
			sqlbuf_addn(b, s + i, 1);
			i++;
		}
	}
}

bool sql_mentions(const char *expr, const char *name)
{
	size_t n = strlen(name);
	if (n == 0)
		return false;
	for (const char *p = expr; *p; p++) {
		if (strncasecmp(p, name, n) != 0)
			continue;
		bool start = p == expr || !ident_char(p[-1]);
		bool end = !ident_char(p[n]);
		if (start && end)
			return true;
	}
	return false;
}

char *sqlbuf_steal(SqlBuf *b)
{
	if (b->failed) {
		sqlbuf_free(b);
		return NULL;
	}
	char *s = b->data ? b->data : strdup("");
	sqlbuf_init(b);
	return s;
}
