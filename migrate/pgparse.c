/*
 * migrate/pgparse.c: SQL through libpg_query (see pgparse.h).
 *
 * One parse gives two views of the text: the JSON parse tree of
 * pg_query_parse (what each statement is) and the token list of
 * pg_query_scan, unpacked from its protobuf with the unpacker libpg_query
 * ships (what the text of a clause was). Clause text is cut from the tokens,
 * never from a hand-written lexer, so string literals, dollar quotes,
 * quoted identifiers and comments are as PostgreSQL sees them.
 */
#include "migrate/pgparse.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const PGPARSE_COLUMN_STOP[] = {"not",	"null",	"constraint", "primary", "unique", "check",
					   "references", "default", "collate",    "generated", "using",  NULL};

/* Statements as the tree gives them: stmt_location and stmt_len (0: to the
 * end) span from after the previous ';', comments included; the statement
 * proper is from its first token to its last. */
static bool stmts_fill(PgParse *p)
{
	json_t *stmts = json_object_get(p->root, "stmts");
	size_t n = json_array_size(stmts);
	p->stmts = calloc(n ? n : 1, sizeof *p->stmts);
	if (!p->stmts)
		return false;
	size_t i;
	json_t *raw;
	int len = (int)strlen(p->text);
	json_array_foreach(stmts, i, raw) {
		int loc = (int)json_integer_value(json_object_get(raw, "stmt_location"));
		int slen = (int)json_integer_value(json_object_get(raw, "stmt_len"));
		int end = slen ? loc + slen : len;
		json_t *stmt = json_object_get(raw, "stmt");
		void *it = json_object_iter(stmt);
		if (!it)
			continue;
		PgStmt *s = &p->stmts[p->nstmts++];
		s->type = json_object_iter_key(it);
		s->node = json_object_iter_value(it);
		s->start = end;
		s->end = loc;
		for (size_t t = 0; t < p->ntok; t++) {
			if (p->tok[t].start < loc || p->tok[t].start >= end)
				continue;
			if (p->tok[t].start < s->start)
				s->start = p->tok[t].start;
			if (p->tok[t].end > s->end && p->tok[t].kind != ';')
				s->end = p->tok[t].end;
		}
		if (s->start > s->end)
			s->start = s->end = loc;
	}
	return true;
}

/* The tokens of P's text, comments left out. */
static bool tokens_fill(PgParse *p)
{
	PgQueryScanResult sr = pg_query_scan(p->text);
	bool ok = false;
	if (sr.error) {
		pg_query_free_scan_result(sr);
		return false;
	}
	PgQuery__ScanResult *u = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
	if (u) {
		p->tok = calloc(u->n_tokens ? u->n_tokens : 1, sizeof *p->tok);
		if (p->tok) {
			for (size_t i = 0; i < u->n_tokens; i++) {
				const PgQuery__ScanToken *t = u->tokens[i];
				if (t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT)
					continue;
				p->tok[p->ntok++] = (PgToken){.start = t->start,
							      .end = t->end,
							      .kind = (int)t->token,
							      .keyword = t->keyword_kind != PG_QUERY__KEYWORD_KIND__NO_KEYWORD};
			}
			ok = true;
		}
		pg_query__scan_result__free_unpacked(u, NULL);
	}
	pg_query_free_scan_result(sr);
	return ok;
}

bool pgparse_run(PgParse *p, const char *text, char *err, size_t errlen)
{
	memset(p, 0, sizeof *p);
	p->text = text;
	PgQueryParseResult r = pg_query_parse(text);
	if (r.error) {
		int pos = r.error->cursorpos > 0 ? r.error->cursorpos - 1 : 0;
		snprintf(err, errlen, "%d: %s", pgparse_line(p, pos), r.error->message);
		pg_query_free_parse_result(r);
		return false;
	}
	json_error_t je;
	p->root = json_loads(r.parse_tree, 0, &je);
	pg_query_free_parse_result(r);
	if (!p->root || !tokens_fill(p) || !stmts_fill(p)) {
		snprintf(err, errlen, "1: cannot read the parse tree (out of memory?)");
		pgparse_free(p);
		return false;
	}
	return true;
}

void pgparse_free(PgParse *p)
{
	if (!p)
		return;
	json_decref(p->root);
	free(p->stmts);
	free(p->tok);
	memset(p, 0, sizeof *p);
}

int pgparse_line(const PgParse *p, int offset)
{
	int line = 1;
	for (int i = 0; i < offset && p->text[i]; i++)
		if (p->text[i] == '\n')
			line++;
	return line;
}

char *pgparse_stmt_text(const PgParse *p, const PgStmt *s)
{
	return strndup(p->text + s->start, (size_t)(s->end - s->start));
}

/* Index of the first token at or after FROM, or p->ntok. */
static size_t tok_at(const PgParse *p, int from)
{
	size_t i = 0;
	while (i < p->ntok && p->tok[i].start < from)
		i++;
	return i;
}

static bool tok_is(const PgParse *p, size_t i, const char *word)
{
	const PgToken *t = &p->tok[i];
	size_t n = strlen(word);
	return t->keyword && (size_t)(t->end - t->start) == n && strncasecmp(p->text + t->start, word, n) == 0;
}

static bool tok_stop(const PgParse *p, size_t i, const char *const *stop)
{
	for (; stop && *stop; stop++)
		if (tok_is(p, i, *stop))
			return true;
	return false;
}

char *pgparse_clause(const PgParse *p, int from, int end, const char *const *stop)
{
	size_t i = tok_at(p, from), first = i;
	int depth = 0, a = -1, b = -1;
	for (; i < p->ntok && p->tok[i].start < end; i++) {
		int k = p->tok[i].kind;
		if (depth == 0 && (k == ',' || k == ';' || k == ')' || k == ']' || (i > first && tok_stop(p, i, stop))))
			break;
		if (k == '(' || k == '[')
			depth++;
		else if (k == ')' || k == ']')
			depth--;
		if (a < 0)
			a = p->tok[i].start;
		b = p->tok[i].end;
	}
	return a < 0 ? strdup("") : strndup(p->text + a, (size_t)(b - a));
}

char *pgparse_parens(const PgParse *p, int from, int end)
{
	size_t i = tok_at(p, from);
	while (i < p->ntok && p->tok[i].start < end && p->tok[i].kind != '(')
		i++;
	if (i >= p->ntok || p->tok[i].start >= end)
		return strdup("");
	int depth = 0, a = p->tok[i].end;
	for (; i < p->ntok; i++) {
		int k = p->tok[i].kind;
		depth += k == '(' ? 1 : k == ')' ? -1 : 0;
		if (depth == 0) {
			const char *s = p->text + a, *e = p->text + p->tok[i].start;
			while (s < e && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r'))
				s++;
			while (e > s && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t' || e[-1] == '\r'))
				e--;
			return strndup(s, (size_t)(e - s));
		}
	}
	return strdup("");
}

int pgparse_keyword(const PgParse *p, int from, int end, const char *word)
{
	int depth = 0;
	for (size_t i = tok_at(p, from); i < p->ntok && p->tok[i].start < end; i++) {
		int k = p->tok[i].kind;
		depth += k == '(' ? 1 : k == ')' ? -1 : 0;
		if (depth == 0 && tok_is(p, i, word))
			return p->tok[i].start;
	}
	return -1;
}

int pgparse_keyword_before(const PgParse *p, int at, const char *word)
{
	int found = -1;
	for (size_t i = 0; i < p->ntok && p->tok[i].start < at; i++)
		if (tok_is(p, i, word))
			found = p->tok[i].end;
	return found;
}

const char *pgparse_sval(const json_t *node)
{
	return json_string_value(json_object_get(json_object_get(node, "String"), "sval"));
}

char *pgparse_names(const json_t *list)
{
	size_t i, n = 0;
	json_t *v;
	json_array_foreach(list, i, v) {
		const char *s = pgparse_sval(v);
		n += (s ? strlen(s) : 0) + 1;
	}
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	out[0] = '\0';
	json_array_foreach(list, i, v) {
		const char *s = pgparse_sval(v);
		if (i)
			strcat(out, ".");
		strcat(out, s ? s : "");
	}
	return out;
}

int pgparse_min_location(const json_t *node)
{
	int best = -1;
	if (json_is_object(node)) {
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)node, k, v) {
			int l = strcmp(k, "location") == 0 && json_is_integer(v) ? (int)json_integer_value(v)
										: pgparse_min_location(v);
			if (l >= 0 && (best < 0 || l < best))
				best = l;
		}
	} else if (json_is_array(node)) {
		size_t i;
		json_t *v;
		json_array_foreach(node, i, v) {
			int l = pgparse_min_location(v);
			if (l >= 0 && (best < 0 || l < best))
				best = l;
		}
	}
	return best;
}
