/*
 * proxy/sqlscan.c: the SQL scanner of sqlscan.h.
 *
 * Design. One state machine, driven one byte at a time by sqlscan_step(),
 * holds the whole of the lexing rules; it is what a reader should check
 * against scan.l. Chunks may end anywhere because every multi-byte decision
 * (`--`, `/ *`, E', U&", $tag$, '' and the lookahead after a closing quote)
 * is a state of its own rather than a peek at the next byte. For speed,
 * sqlscan_skip() runs tight loops over the bytes that the current state
 * would pass over anyway (spaces, the inside of a word, string, comment or
 * dollar-quoted body); it never decides anything sqlscan_step() would not.
 * A plain SELECT costs one pass with a table lookup per byte: its words are
 * matched where they lie in the chunk, most of them by one lookup of their
 * length and first letter, and only bytes such as ; ' " $ - / take a step.
 *
 * Above the lexer, each complete token is reported to stmt_token(), which
 * knows where statements start and the few keyword sequences that matter
 * (SET LOCAL, SET ... ROLE, DISCARD ALL). A word cut by the end of a chunk
 * is kept, lower-cased, in a 32-byte buffer; a longer word, or one with a
 * byte >= 0x80, matches no keyword since all of them are short and ASCII.
 *
 * Client-only encodings (SJIS, BIG5, ...): the byte after a lead byte is
 * read as a neutral non-ASCII letter (sym 0x80), whatever its value; only a
 * dollar-quote tag keeps its real bytes, since tags compare byte for byte.
 */
#include "proxy/sqlscan.h"

#include <string.h>

/* ---- byte classes ------------------------------------------------------ */

enum {
	K_SPACE = 1 << 0,     /* [ \t\n\r\f\v] (scan.l: space) */
	K_NL = 1 << 1,        /* [\n\r] (scan.l: newline) */
	K_IDSTART = 1 << 2,   /* [A-Za-z\200-\377_] (ident_start, dolq_start) */
	K_IDCONT = 1 << 3,    /* ident_start, digits, $ (ident_cont) */
	K_DOLCONT = 1 << 4,   /* ident_start, digits (dolq_cont) */
	K_HIGH = 1 << 5,      /* >= 0x80 */
	K_NUL = 1 << 6,       /* ends the text */
	K_PLAIN = 1 << 7,     /* outside tokens: a one-byte token that needs no state */
	K_STOP_Q = 1 << 8,    /* ends a run of '...' without escapes: ' NUL */
	K_STOP_E = 1 << 9,    /* ends a run of E'...': ' \ NUL */
	K_STOP_D = 1 << 10,   /* ends a run of "...": " NUL */
	K_STOP_C = 1 << 11,   /* ends a run of a block comment: * / NUL */
	K_STOP_L = 1 << 12,   /* ends a line comment: \n \r NUL */
	K_STOP_DOL = 1 << 13, /* ends a run of a dollar-quoted body: $ NUL */
	K_PAREN = 1 << 14     /* ( ) */
};

#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_SPACE(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r' || (c) == '\f' || (c) == '\v')
#define IS_IDSTART(c) (IS_ALPHA(c) || (c) == '_' || (c) >= 0x80)
/* Bytes that start a token with state of its own, or matter to statements
 * other than STMT_OTHER ones ("." in SET LOCAL.x; the fast loop knows that
 * "." and the parentheses need nothing more in a STMT_OTHER statement). */
#define IS_SPECIAL(c)                                                                                                  \
	((c) == '\'' || (c) == '"' || (c) == '$' || (c) == '-' || (c) == '/' || (c) == ';' || (c) == '(' || (c) == ')')
#define CLASS(c)                                                                                                       \
	(uint16_t)((IS_SPACE(c) ? K_SPACE : 0) | ((c) == '\n' || (c) == '\r' ? K_NL | K_STOP_L : 0) |                  \
	           (IS_IDSTART(c) ? K_IDSTART | K_IDCONT | K_DOLCONT : 0) | (IS_DIGIT(c) ? K_IDCONT | K_DOLCONT : 0) | \
	           ((c) == '$' ? K_IDCONT | K_STOP_DOL : 0) | ((c) >= 0x80 ? K_HIGH : 0) |                             \
	           ((c) == 0 ? K_NUL | K_STOP_Q | K_STOP_E | K_STOP_D | K_STOP_C | K_STOP_L | K_STOP_DOL : 0) |        \
	           ((c) != 0 && !IS_SPACE(c) && !IS_IDSTART(c) && !IS_SPECIAL(c) ? K_PLAIN : 0) |                      \
	           ((c) == '\'' ? K_STOP_Q | K_STOP_E : 0) | ((c) == '\\' ? K_STOP_E : 0) |                            \
	           ((c) == '"' ? K_STOP_D : 0) | ((c) == '*' || (c) == '/' ? K_STOP_C : 0) |                           \
	           ((c) == '(' || (c) == ')' ? K_PAREN : 0))
#define C4(c) CLASS(c), CLASS((c) + 1), CLASS((c) + 2), CLASS((c) + 3)
#define C16(c) C4(c), C4((c) + 4), C4((c) + 8), C4((c) + 12)
#define C64(c) C16(c), C16((c) + 16), C16((c) + 32), C16((c) + 48)

static const uint16_t sqlscan_class[256] = {C64(0), C64(64), C64(128), C64(192)};

/* The inside of a word, for the fast loop: ident_cont, without the bytes
 * >= 0x80 in a client-only encoding (sqlscan_step looks at those). */
#define W(c, mb) (uint8_t)(((IS_IDSTART(c) || IS_DIGIT(c) || (c) == '$') && !((mb) && (c) >= 0x80)) ? 1 : 0)
#define W4(c, mb) W(c, mb), W((c) + 1, mb), W((c) + 2, mb), W((c) + 3, mb)
#define W16(c, mb) W4(c, mb), W4((c) + 4, mb), W4((c) + 8, mb), W4((c) + 12, mb)
#define W64(c, mb) W16(c, mb), W16((c) + 16, mb), W16((c) + 32, mb), W16((c) + 48, mb)

static const uint8_t sqlscan_word[2][256] = {{W64(0, 0), W64(64, 0), W64(128, 0), W64(192, 0)},
                                             {W64(0, 1), W64(64, 1), W64(128, 1), W64(192, 1)}};

/* The class of the byte after a lead byte: a letter that is no keyword. */
#define K_TRAIL (K_IDSTART | K_IDCONT | K_DOLCONT | K_HIGH)
#define SYM_TRAIL 0x80

static inline unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

/* ---- states ------------------------------------------------------------ */

enum {
	ST_NORMAL,        /* between tokens */
	ST_WORD,          /* in an unquoted identifier or keyword */
	ST_UAMP,          /* after a word "u" and "&": U&'...', U&"..." or not */
	ST_DASH,          /* after "-": a line comment or an operator */
	ST_SLASH,         /* after "/": a block comment or an operator */
	ST_LINE_COMMENT,  /* -- to the end of the line */
	ST_BLOCK_COMMENT, /* sub: '*' or '/' just seen; comment_depth nesting */
	ST_STR,           /* in a literal of str_kind; sub: backslash just seen */
	ST_STR_END,       /* after the quote that may close it ('' doubles it) */
	ST_STR_GAP,       /* after a closing quote: a continuation ahead? sub: GAP_* */
	ST_QIDENT,        /* in "..." (quoted_u: U&"...") */
	ST_QIDENT_END,    /* after the quote that may close it ("" doubles it) */
	ST_DOLLAR,        /* after "$" outside tokens */
	ST_DOLTAG,        /* in $tag, before its closing "$" */
	ST_DOLBODY        /* in $tag$...; cand_*: a closing tag being matched */
};

/* Literal kinds: which bytes the literal's body treats specially. */
enum {
	STR_Q, /* '...' with standard_conforming_strings, N'...' likewise, U&'...' */
	STR_E, /* E'...', and '...' without standard_conforming_strings: backslash escapes */
	STR_B  /* B'...', X'...': no escapes, and '' ends it (scan.l: xb, xh) */
};

/* ST_STR_GAP: what was seen since the closing quote. scan.l continues the
 * literal (in the same kind) when the quote is followed by whitespace and
 * -- comments containing a newline, then another quote. */
enum { GAP_NL = 1, GAP_DASH = 2, GAP_COMMENT = 4 };

/* ---- statements -------------------------------------------------------- */

enum { TOK_OTHER, TOK_WORD, TOK_QWORD, TOK_SEMI, TOK_DOT };

enum {
	STMT_NONE,    /* no token of the current statement yet */
	STMT_OTHER,   /* nothing more to learn from its tokens */
	STMT_SET,     /* SET ...; stmt_step: SET_* */
	STMT_RESET,   /* RESET ... */
	STMT_DISCARD, /* DISCARD, before its second token */
};

enum {
	SET_NAME,   /* next token: LOCAL, TRANSACTION, CONSTRAINTS or a session change */
	SET_EXEMPT, /* after SET LOCAL|TRANSACTION|CONSTRAINTS: a "." makes it a name */
	SET_DONE
};

enum {
	KW_NONE,
	KW_SET,
	KW_RESET,
	KW_DISCARD,
	KW_DO,
	KW_LISTEN,
	KW_DEALLOCATE,
	KW_EXECUTE,
	KW_LOCAL,
	KW_TRANSACTION,
	KW_CONSTRAINTS,
	KW_ALL,
	KW_SCHEMA,
	KW_ROLE,
	KW_AUTHORIZATION,
	KW_SESSION_AUTHORIZATION,
	KW_SEARCH_PATH,
	KW_SET_CONFIG,
	KW_PG_SETTINGS
};

#define EQ(w, lit) (memcmp((w), (lit), sizeof(lit) - 1) == 0)
#define L(c) (1u << ((c) - 'a'))

/* By length, the first letters of the keywords of kw_lookup: most words
 * are dismissed by this one lookup (the compiler makes it a table). */
static uint32_t kw_first(size_t len)
{
	switch (len) {
	case 2: return L('d');                             /* do */
	case 3: return L('s') | L('a');                    /* set, all */
	case 4: return L('r');                             /* role */
	case 5: return L('r') | L('l');                    /* reset, local */
	case 6: return L('l') | L('s');                    /* listen, schema */
	case 7: return L('d') | L('e');                    /* discard, execute */
	case 10: return L('s') | L('d');                   /* set_config, deallocate */
	case 11: return L('s') | L('p') | L('t') | L('c'); /* search_path, pg_settings, transaction, constraints */
	case 13: return L('a');                            /* authorization */
	case 21: return L('s');                            /* session_authorization */
	default: return 0;
	}
}

/* The keyword a lower-cased word is, by length then bytes. */
static int kw_lookup(const char *w, size_t len)
{
	switch (len) {
	case 2: return EQ(w, "do") ? KW_DO : KW_NONE;
	case 3: return EQ(w, "set") ? KW_SET : EQ(w, "all") ? KW_ALL : KW_NONE;
	case 4: return EQ(w, "role") ? KW_ROLE : KW_NONE;
	case 5: return EQ(w, "reset") ? KW_RESET : EQ(w, "local") ? KW_LOCAL : KW_NONE;
	case 6: return EQ(w, "listen") ? KW_LISTEN : EQ(w, "schema") ? KW_SCHEMA : KW_NONE;
	case 7: return EQ(w, "discard") ? KW_DISCARD : EQ(w, "execute") ? KW_EXECUTE : KW_NONE;
	case 10: return EQ(w, "set_config") ? KW_SET_CONFIG : EQ(w, "deallocate") ? KW_DEALLOCATE : KW_NONE;
	case 11:
		return EQ(w, "search_path")   ? KW_SEARCH_PATH
		       : EQ(w, "pg_settings") ? KW_PG_SETTINGS
		       : EQ(w, "transaction") ? KW_TRANSACTION
		       : EQ(w, "constraints") ? KW_CONSTRAINTS
		                              : KW_NONE;
	case 13: return EQ(w, "authorization") ? KW_AUTHORIZATION : KW_NONE;
	case 21: return EQ(w, "session_authorization") ? KW_SESSION_AUTHORIZATION : KW_NONE;
	default: return KW_NONE;
	}
}

/* The keyword the word w[0, len) is, in any case. */
static int kw_find(const unsigned char *w, size_t len)
{
	unsigned char c = lower(w[0]);
	if (c < 'a' || c > 'z' || !(kw_first(len) & L(c)))
		return KW_NONE;
	char folded[21]; /* session_authorization */
	for (size_t i = 0; i < len; i++)
		folded[i] = (char)lower(w[i]);
	return kw_lookup(folded, len);
}

/* The end of a statement: a top-level ";" or the end of the text. A SET
 * whose kind was not decided (SET; SET LOCAL<end>) is flagged: it errs
 * towards flagging and such a text fails anyway. */
static void stmt_end(SqlScan *s)
{
	if (s->stmt == STMT_SET && s->stmt_step != SET_DONE)
		s->flags |= SQLSCAN_SETTINGS;
	s->stmt = STMT_NONE;
	s->stmt_step = 0;
}

/* In SET and RESET statements, the words that name the role settings. */
static void stmt_role_words(SqlScan *s, int kw)
{
	if (kw == KW_ROLE || kw == KW_AUTHORIZATION || kw == KW_SESSION_AUTHORIZATION)
		s->flags |= SQLSCAN_ROLE;
	else if (kw == KW_SCHEMA && s->stmt == STMT_SET)
		s->flags |= SQLSCAN_PATH;
}

/* A first token of a statement. */
static void stmt_first(SqlScan *s, int tok, int kw)
{
	if (s->nstmt < 2 && ++s->nstmt == 2)
		s->flags |= SQLSCAN_MULTI;
	s->stmt = STMT_OTHER;
	if (tok != TOK_WORD)
		return;
	switch (kw) {
	case KW_SET:
		s->stmt = STMT_SET;
		s->stmt_step = SET_NAME;
		break;
	case KW_RESET:
		s->flags |= SQLSCAN_PATH | SQLSCAN_SETTINGS;
		s->stmt = STMT_RESET;
		break;
	case KW_DISCARD:
		s->flags |= SQLSCAN_PATH | SQLSCAN_SETTINGS;
		s->stmt = STMT_DISCARD;
		break;
	case KW_DO: s->flags |= SQLSCAN_SUSPECT; break;
	case KW_LISTEN: s->flags |= SQLSCAN_LISTEN; break;
	case KW_DEALLOCATE: s->flags |= SQLSCAN_DEALLOCATE; break;
	default: break;
	}
}

/* One complete token, for statement tracking. tok: TOK_*; kw: its keyword
 * (words only). Only words may be keywords: "SET" quoted is an identifier. */
static void stmt_token(SqlScan *s, int tok, int kw)
{
	if (tok == TOK_SEMI) {
		if (s->paren_depth == 0)
			stmt_end(s);
		return;
	}
	switch (s->stmt) {
	case STMT_NONE: stmt_first(s, tok, kw); return;
	case STMT_SET:
		stmt_role_words(s, kw);
		if (s->stmt_step == SET_NAME) {
			if (tok == TOK_WORD && (kw == KW_LOCAL || kw == KW_TRANSACTION || kw == KW_CONSTRAINTS)) {
				s->stmt_step = SET_EXEMPT;
			} else {
				s->flags |= SQLSCAN_SETTINGS;
				s->stmt_step = SET_DONE;
			}
		} else if (s->stmt_step == SET_EXEMPT) {
			/* SET local.x = 1 sets the custom setting local.x */
			if (tok == TOK_DOT)
				s->flags |= SQLSCAN_SETTINGS;
			s->stmt_step = SET_DONE;
		}
		return;
	case STMT_RESET: stmt_role_words(s, kw); return;
	case STMT_DISCARD:
		if (tok == TOK_WORD && kw == KW_ALL)
			s->flags |= SQLSCAN_DISCARD_ALL | SQLSCAN_ROLE;
		s->stmt = STMT_OTHER;
		return;
	default: return;
	}
}

/* A token that is not a word: cheap when the statement needs no more. */
static inline void token(SqlScan *s, int tok)
{
	if (s->stmt != STMT_OTHER || tok == TOK_SEMI)
		stmt_token(s, tok, KW_NONE);
}

/* ---- words, identifiers, tags ------------------------------------------ */

static inline void word_add(SqlScan *s, unsigned char c)
{
	if (s->word_len < SQLSCAN_WORD_MAX)
		s->word[s->word_len++] = (char)lower(c);
	else
		s->word_len = SQLSCAN_WORD_MAX + 1; /* too long: matches nothing */
}

/* The first bytes of a word, lower-cased, after those kept already. */
static void word_store(SqlScan *s, const unsigned char *p, size_t n)
{
	size_t len = s->word_len;
	for (size_t i = 0; i < n && len < SQLSCAN_WORD_MAX; i++)
		s->word[len++] = (char)lower(p[i]);
	s->word_len = (uint8_t)(s->word_len + n <= SQLSCAN_WORD_MAX ? len : SQLSCAN_WORD_MAX + 1);
}

/* The end of an unquoted word (identifier or keyword) w[0, len). */
static void word_end_at(SqlScan *s, const unsigned char *w, size_t len)
{
	int kw = len ? kw_find(w, len) : KW_NONE;
	if (kw == KW_SEARCH_PATH)
		s->flags |= SQLSCAN_PATH;
	else if (kw == KW_SET_CONFIG || kw == KW_PG_SETTINGS || kw == KW_EXECUTE)
		s->flags |= SQLSCAN_SUSPECT;
	if (s->stmt != STMT_OTHER)
		stmt_token(s, TOK_WORD, kw);
}

static void word_end(SqlScan *s)
{
	word_end_at(s, (const unsigned char *)s->word, s->word_len);
}

/* The end of a quoted identifier "..." or U&"...". */
static void qword_end(SqlScan *s)
{
	int kw = KW_NONE;
	if (s->quoted_u) {
		/* its escapes, and a UESCAPE clause after it, can spell any name */
		s->flags |= SQLSCAN_SUSPECT;
	} else {
		kw = s->word_len ? kw_find((const unsigned char *)s->word, s->word_len) : KW_NONE;
		if (kw == KW_SEARCH_PATH)
			s->flags |= SQLSCAN_PATH;
		else if (kw == KW_SET_CONFIG || kw == KW_PG_SETTINGS)
			s->flags |= SQLSCAN_SUSPECT;
	}
	if (s->stmt != STMT_OTHER)
		stmt_token(s, TOK_QWORD, kw);
}

/* FNV-1a, 64 bits: compares dollar-quote tags longer than SQLSCAN_TAG_MAX. */
#define FNV_BASIS 0xcbf29ce484222325u
#define FNV_PRIME 0x100000001b3u

static inline void tag_add(SqlScan *s, unsigned char raw)
{
	if (s->tag_len < SQLSCAN_TAG_MAX)
		s->tag[s->tag_len] = raw;
	if (s->tag_len < UINT32_MAX)
		s->tag_len++;
	s->tag_hash = (s->tag_hash ^ raw) * FNV_PRIME;
}

/* "$tag" not followed by "$": the "$" is a character of its own and the tag
 * an identifier (scan.l: dolqfailed), whose end is the byte being read. */
static void tag_to_word(SqlScan *s)
{
	s->word_len = 0;
	for (uint32_t i = 0; i < s->tag_len && i < SQLSCAN_TAG_MAX; i++)
		word_add(s, s->tag[i]);
	if (s->tag_len > SQLSCAN_WORD_MAX)
		s->word_len = SQLSCAN_WORD_MAX + 1;
}

static void dolbody_open(SqlScan *s)
{
	if (s->tag_len > SQLSCAN_TAG_MAX)
		s->flags |= SQLSCAN_SUSPECT;
	s->cand_active = false;
	s->state = ST_DOLBODY;
}

/* A byte of a candidate closing tag (after a "$" in a dollar-quoted body). */
static inline void cand_add(SqlScan *s, unsigned char raw)
{
	if (!s->cand_ok)
		return;
	if (s->cand_len >= s->tag_len || (s->cand_len < SQLSCAN_TAG_MAX && s->tag[s->cand_len] != raw)) {
		s->cand_ok = false;
		return;
	}
	s->cand_len++;
	s->cand_hash = (s->cand_hash ^ raw) * FNV_PRIME;
}

static inline bool cand_closes(const SqlScan *s)
{
	return s->cand_active && s->cand_ok && s->cand_len == s->tag_len &&
	       (s->tag_len <= SQLSCAN_TAG_MAX || s->cand_hash == s->tag_hash);
}

/* Parentheses: a ";" inside them ends no statement (CREATE RULE ... DO
 * (INSERT ...; INSERT ...)). Unbalanced ones make the text fail anyway. */
static inline void paren(SqlScan *s, unsigned char c)
{
	if (c == '(' && s->paren_depth < UINT32_MAX)
		s->paren_depth++;
	else if (c == ')' && s->paren_depth > 0)
		s->paren_depth--;
}

static void string_begin(SqlScan *s, int kind)
{
	token(s, TOK_OTHER);
	s->str_kind = (uint8_t)kind;
	s->sub = 0;
	s->state = ST_STR;
}

static inline int plain_kind(const SqlScan *s)
{
	return s->scs ? STR_Q : STR_E;
}

/* ---- the state machine ------------------------------------------------- */

/*
 * One byte. c: the byte as the rules see it (SYM_TRAIL for the second byte
 * of a client-only multibyte character); raw: its real value (for tags);
 * k: its class. States that do not consume the byte change state and
 * `continue` to read it again.
 */
static void sqlscan_step(SqlScan *s, unsigned char c, unsigned char raw, unsigned k)
{
	if (k & K_NUL) {
		s->ended = true;
		return;
	}
	for (;;) {
		switch (s->state) {
		case ST_NORMAL:
			if (k & K_SPACE)
				return;
			if (k & K_IDSTART) {
				s->word_len = 0;
				word_add(s, c);
				s->state = ST_WORD;
				return;
			}
			switch (c) {
			case '\'': string_begin(s, plain_kind(s)); return;
			case '"':
				s->word_len = 0;
				s->quoted_u = false;
				s->state = ST_QIDENT;
				return;
			case '$':
				token(s, TOK_OTHER);
				s->state = ST_DOLLAR;
				return;
			case '-': s->state = ST_DASH; return;
			case '/': s->state = ST_SLASH; return;
			case ';': token(s, TOK_SEMI); return;
			case '.': token(s, TOK_DOT); return;
			case '(':
			case ')':
				token(s, TOK_OTHER);
				paren(s, c);
				return;
			default: token(s, TOK_OTHER); return;
			}

		case ST_WORD:
			if (k & K_IDCONT) {
				word_add(s, c);
				return;
			}
			if (s->word_len == 1) {
				/* E'..', B'..', X'..', N'..', U&'..', U&".." (xestart, ...) */
				char w = s->word[0];
				if (c == '\'' && w == 'e') {
					string_begin(s, STR_E);
					return;
				}
				if (c == '\'' && (w == 'b' || w == 'x')) {
					string_begin(s, STR_B);
					return;
				}
				if (c == '\'' && w == 'n') {
					string_begin(s, plain_kind(s));
					return;
				}
				if (c == '&' && w == 'u') {
					s->state = ST_UAMP;
					return;
				}
			}
			word_end(s);
			s->state = ST_NORMAL;
			continue;

		case ST_UAMP:
			if (c == '\'') {
				/* U&'...' has no backslash escapes in any setting */
				string_begin(s, STR_Q);
				return;
			}
			if (c == '"') {
				s->word_len = 0;
				s->quoted_u = true;
				s->state = ST_QIDENT;
				return;
			}
			word_end(s);         /* the identifier u */
			token(s, TOK_OTHER); /* and the operator & */
			s->state = ST_NORMAL;
			continue;

		case ST_DASH:
			if (c == '-') {
				s->state = ST_LINE_COMMENT;
				return;
			}
			token(s, TOK_OTHER);
			s->state = ST_NORMAL;
			continue;

		case ST_SLASH:
			if (c == '*') {
				s->comment_depth = 0;
				s->sub = 0;
				s->state = ST_BLOCK_COMMENT;
				return;
			}
			token(s, TOK_OTHER);
			s->state = ST_NORMAL;
			continue;

		case ST_LINE_COMMENT:
			if (k & K_NL)
				s->state = ST_NORMAL;
			return;

		case ST_BLOCK_COMMENT:
			/* pairs are consumed whole: "/ * /" opens and does not close */
			if (s->sub == '*' && c == '/') {
				s->sub = 0;
				if (s->comment_depth == 0)
					s->state = ST_NORMAL;
				else
					s->comment_depth--;
				return;
			}
			if (s->sub == '/' && c == '*') {
				s->sub = 0;
				if (s->comment_depth < UINT32_MAX)
					s->comment_depth++;
				return;
			}
			s->sub = c == '*' || c == '/' ? c : 0;
			return;

		case ST_STR:
			if (s->str_kind == STR_E) {
				if (s->sub) { /* the escaped byte, whatever it is */
					s->sub = 0;
					return;
				}
				if (c == '\\') {
					s->sub = 1;
					return;
				}
			}
			if (c == '\'')
				s->state = ST_STR_END;
			return;

		case ST_STR_END:
			if (c == '\'') {
				if (s->str_kind == STR_B) /* xb, xh: no '' inside; a new literal */
					string_begin(s, plain_kind(s));
				else
					s->state = ST_STR; /* '' is a quote inside */
				return;
			}
			s->sub = 0;
			s->state = ST_STR_GAP;
			continue;

		case ST_STR_GAP:
			if (s->sub & GAP_COMMENT) {
				if (k & K_NL)
					s->sub = GAP_NL;
				return;
			}
			if (s->sub & GAP_DASH) {
				if (c == '-') {
					s->sub = GAP_COMMENT;
					return;
				}
				s->state = ST_DASH; /* a lone "-": an operator after the literal */
				continue;
			}
			if (k & K_NL) {
				s->sub |= GAP_NL;
				return;
			}
			if (k & K_SPACE)
				return;
			if (c == '-') {
				s->sub |= GAP_DASH;
				return;
			}
			if (c == '\'') {
				if (s->sub & GAP_NL) { /* continued, in the same kind */
					s->sub = 0;
					s->state = ST_STR;
				} else {
					string_begin(s, plain_kind(s));
				}
				return;
			}
			s->state = ST_NORMAL;
			continue;

		case ST_QIDENT:
			if (c == '"')
				s->state = ST_QIDENT_END;
			else
				word_add(s, c);
			return;

		case ST_QIDENT_END:
			if (c == '"') {
				word_add(s, '"');
				s->state = ST_QIDENT;
				return;
			}
			qword_end(s);
			s->state = ST_NORMAL;
			continue;

		case ST_DOLLAR:
			if (c == '$' || (k & K_IDSTART)) {
				s->tag_len = 0;
				s->tag_hash = FNV_BASIS;
				if (c == '$') {
					dolbody_open(s);
				} else {
					tag_add(s, raw);
					s->state = ST_DOLTAG;
				}
				return;
			}
			s->state = ST_NORMAL; /* a parameter $1, or a lone $ */
			continue;

		case ST_DOLTAG:
			if (k & K_DOLCONT) {
				tag_add(s, raw);
				return;
			}
			if (c == '$') {
				dolbody_open(s);
				return;
			}
			tag_to_word(s);
			s->state = ST_WORD;
			continue;

		case ST_DOLBODY:
			if (c == '$') {
				if (cand_closes(s)) {
					s->state = ST_NORMAL;
					return;
				}
				/* $delim$...$junk$delim$: each "$" may start the end */
				s->cand_active = true;
				s->cand_ok = true;
				s->cand_len = 0;
				s->cand_hash = FNV_BASIS;
				return;
			}
			if (s->cand_active) {
				if (k & K_DOLCONT)
					cand_add(s, raw);
				else
					s->cand_active = false;
			}
			return;

		default: return;
		}
	}
}

/*
 * Passes over the bytes that the current state would read without a
 * decision, and returns the first one it must see. In a client-only
 * encoding every byte >= 0x80 is left to sqlscan_step (it may lead a pair).
 */
static const unsigned char *sqlscan_skip(SqlScan *s, const unsigned char *p, const unsigned char *end)
{
	const uint16_t *cls = sqlscan_class;
	unsigned hi = s->enc != SQLSCAN_ENC_BYTES ? K_HIGH : 0;
	if (s->trail)
		return p;
	switch (s->state) {
	case ST_NORMAL:
	case ST_WORD:
		/* the hot path: words, spaces and one-byte tokens, in one loop */
		for (;;) {
			if (s->state == ST_WORD) {
				const unsigned char *start = p;
				const uint8_t *inside = sqlscan_word[hi != 0];
				while (p < end && inside[*p])
					p++;
				size_t len = (size_t)(p - start);
				/* a word begun in an earlier chunk, cut by this chunk's end, or
				 * perhaps a prefix (E', U&): its bytes are kept, and
				 * sqlscan_step decides on its end */
				if (s->word_len > 0 || p == end || !(cls[*p] & (K_SPACE | K_PLAIN)) ||
				    (len == 1 && *p == '&')) {
					word_store(s, start, len);
					return p;
				}
				word_end_at(s, start, len);
				s->state = ST_NORMAL;
			}
			unsigned pass = s->stmt == STMT_OTHER ? K_SPACE | K_PLAIN : K_SPACE;
			for (;;) {
				while (p < end && (cls[*p] & pass))
					p++;
				if (p == end || s->stmt != STMT_OTHER || !(cls[*p] & K_PAREN))
					break;
				paren(s, *p++);
			}
			if (p == end || (cls[*p] & (K_IDSTART | hi)) != K_IDSTART)
				return p;
			s->word_len = 0;
			s->state = ST_WORD;
		}
	case ST_QIDENT: {
		unsigned len = s->word_len;
		while (p < end && !(cls[*p] & (K_STOP_D | hi))) {
			if (len < SQLSCAN_WORD_MAX)
				s->word[len] = (char)lower(*p);
			len++;
			p++;
		}
		s->word_len = (uint8_t)(len <= SQLSCAN_WORD_MAX ? len : SQLSCAN_WORD_MAX + 1);
		break;
	}
	case ST_STR: {
		unsigned stop = s->str_kind == STR_E ? K_STOP_E : K_STOP_Q;
		if (s->sub)
			break;
		while (p < end && !(cls[*p] & (stop | hi)))
			p++;
		break;
	}
	case ST_LINE_COMMENT:
		while (p < end && !(cls[*p] & (K_STOP_L | hi)))
			p++;
		break;
	case ST_BLOCK_COMMENT:
		if (s->sub)
			break;
		while (p < end && !(cls[*p] & (K_STOP_C | hi)))
			p++;
		break;
	case ST_DOLBODY:
		if (s->cand_active)
			break;
		while (p < end && !(cls[*p] & (K_STOP_DOL | hi)))
			p++;
		break;
	default: break;
	}
	return p;
}

/* Whether a byte >= 0x80 starts a two-byte character in this encoding. */
static inline bool lead_byte(int enc, unsigned char c)
{
	if (enc == SQLSCAN_ENC_SJIS)
		return !(c >= 0xa1 && c <= 0xdf);
	return enc == SQLSCAN_ENC_PAIRS;
}

void sqlscan_feed(SqlScan *s, const char *text, size_t n)
{
	if (n == 0 || s->ended)
		return;
	const unsigned char *p = (const unsigned char *)text, *end = p + n;
	while (p < end && !s->ended) {
		p = sqlscan_skip(s, p, end);
		if (p == end)
			break;
		unsigned char c = *p++;
		unsigned k = sqlscan_class[c];
		if (s->trail) {
			s->trail = false;
			if (c != 0) {
				sqlscan_step(s, SYM_TRAIL, c, K_TRAIL);
				continue;
			}
		} else if ((k & K_HIGH) && s->enc != SQLSCAN_ENC_BYTES && lead_byte(s->enc, c)) {
			s->trail = true;
		}
		sqlscan_step(s, c, c, k);
	}
}

void sqlscan_init(SqlScan *s, bool standard_conforming_strings, SqlScanEncoding enc)
{
	memset(s, 0, sizeof(*s));
	s->scs = standard_conforming_strings;
	s->enc = (uint8_t)enc;
	s->state = ST_NORMAL;
	s->stmt = STMT_NONE;
}

unsigned sqlscan_finish(SqlScan *s)
{
	if (s->state == ST_NORMAL && s->stmt == STMT_NONE)
		return s->flags;
	/* the token the text ended in */
	switch (s->state) {
	case ST_WORD: word_end(s); break;
	case ST_UAMP:
		word_end(s);
		token(s, TOK_OTHER);
		break;
	case ST_DASH:
	case ST_SLASH: token(s, TOK_OTHER); break;
	case ST_DOLTAG:
		tag_to_word(s);
		word_end(s);
		break;
	case ST_QIDENT: /* unterminated: an error for the server; flagged anyway */
	case ST_QIDENT_END: qword_end(s); break;
	default: break;
	}
	stmt_end(s);
	s->state = ST_NORMAL;
	s->ended = true;
	return s->flags;
}

unsigned sqlscan_text(const char *sql, size_t n, bool standard_conforming_strings, SqlScanEncoding enc)
{
	SqlScan s;
	sqlscan_init(&s, standard_conforming_strings, enc);
	sqlscan_feed(&s, sql, n == SQLSCAN_CSTRING ? strlen(sql) : n);
	return sqlscan_finish(&s);
}

/* ---- encodings --------------------------------------------------------- */

/* a equals the lower-case alphanumeric name b once a's case and
 * non-alphanumerics are dropped (PostgreSQL's clean_encoding_name). */
static bool encoding_is(const char *a, const char *b)
{
	for (;; a++) {
		unsigned char c = (unsigned char)*a;
		if (c == 0)
			return *b == 0;
		if (!IS_ALPHA(c) && !IS_DIGIT(c))
			continue;
		if (lower(c) != (unsigned char)*b++)
			return false;
	}
}

SqlScanEncoding sqlscan_encoding(const char *client_encoding, const char *server_encoding)
{
	/* pg_encname_tbl's names for the client-only encodings (the server
	 * reports the first of each, SJIS, BIG5, ...; the others are aliases) */
	static const char *const sjis[] = {"sjis", "shiftjis", "mskanji", "win932", "windows932", "shiftjis2004", NULL};
	static const char *const pairs[] = {"big5", "win950", "windows950", "gbk",     "win936", "windows936",
	                                    "uhc",  "win949", "windows949", "gb18030", NULL};
	if (!client_encoding || (server_encoding && encoding_is(server_encoding, "sqlascii")))
		return SQLSCAN_ENC_BYTES;
	for (size_t i = 0; sjis[i]; i++)
		if (encoding_is(client_encoding, sjis[i]))
			return SQLSCAN_ENC_SJIS;
	for (size_t i = 0; pairs[i]; i++)
		if (encoding_is(client_encoding, pairs[i]))
			return SQLSCAN_ENC_PAIRS;
	return SQLSCAN_ENC_BYTES;
}
