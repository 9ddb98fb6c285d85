/*
 * auth.c: the two files of client authentication, read by conf_load into the
 * snapshot: auth_file (PgBouncer's userlist.txt) and auth_hba_file (the
 * subset of pg_hba.conf that PgBouncer supports).
 *
 * Design. Both files are lines of blank-separated words in which a double-
 * quoted part may hold blanks, and "" inside quotes is one '"'. One
 * tokenizer (conf_token_next) serves both; it unquotes in place, remembers
 * whether any part was quoted (a quoted "all" is a name, not the keyword, as
 * in pg_hba.conf) and whether a ',' follows (the lists of pg_hba.conf). Lines
 * come from conf_line_read, the reader of pgflip.ini, so a NUL byte, a long
 * line or a control character is refused in the same way in all three files
 * (a long comment line is skipped).
 *
 * auth_file, as PgBouncer's "Authentication file format":
 *   "NAME" "SECRET" [anything]      blank lines, ';' and '#' lines skipped
 * The secret's shape gives its kind (PostgreSQL's get_password_type): md5 +
 * 32 lower-case hex digits, SCRAM-SHA-256$<iter>:<salt>$<stored>:<server>
 * (RFC 5803; a secret with that prefix and another shape is an error here,
 * not a plain password), else a plain password. Users are sorted by name
 * for conf_find_user; a name listed twice is an error.
 *
 * auth_hba_file, as PgBouncer's "HBA file format" and PostgreSQL's "The
 * pg_hba.conf File":
 *   local      DATABASE USER METHOD
 *   host       DATABASE USER ADDRESS METHOD      (hostssl, hostnossl alike)
 *   host       DATABASE USER IP-ADDRESS IP-MASK METHOD
 * '#' starts a comment. Refused, each with the word: +group, @file,
 * samerole, samegroup, replication, samehost, samenet, host names, include
 * directives, hostgssenc/hostnogssenc, methods other than trust, reject, md5,
 * password, scram-sha-256, cert and peer (peer on local lines only, cert on
 * hostssl lines only, as PostgreSQL), any option after the method (map=,
 * clientcert=...), and a line continued with a trailing backslash (write
 * the record on one line). A hostssl line while client_tls_sslmode is
 * disable, or a cert line without verify-ca/verify-full, is an error as in
 * PostgreSQL ("hostssl record cannot match because SSL is disabled"): it
 * could never do what it says.
 *
 * Errors: "AUTHFILE:LINE: what", the first one wins; secrets are never
 * written into a message.
 */
#include "conf/conf.h"
#include "conf/conf_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Longest line of an auth file, '\n' not counted: PostgreSQL's limit for a
 * pg_hba.conf line before release 16, far above a SCRAM-SHA-256 userlist
 * line (about 180 bytes). */
#define CONF_AUTH_LINE_MAX 8192

/* State of reading one auth file. */
typedef struct ConfAuthLoad {
	Conf *conf;
	const char *path;     /* the file being read: errors name it */
	int line;             /* the line being parsed */
	char *err;
	size_t errlen;
	bool failed;
	size_t cap;           /* room in conf->users or conf->hba */
} ConfAuthLoad;

static void auth_fail(ConfAuthLoad *al, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Records the first error as "AUTHFILE:LINE: message". */
static void auth_fail(ConfAuthLoad *al, int line, const char *fmt, ...)
{
	if (al->failed)
		return;
	al->failed = true;
	va_list ap;
	va_start(ap, fmt);
	conf_error_v(al->err, al->errlen, al->path, line, fmt, ap);
	va_end(ap);
}

/* ---- the tokenizer ---- */

typedef struct ConfToken {
	char *text;     /* unquoted, NUL-terminated, inside the line */
	bool quoted;    /* some part of it was in double quotes */
	bool bare;      /* some part of it was not */
	bool comma;     /* a ',' follows: the next token is in the same list */
} ConfToken;

typedef enum { CONF_TOKEN_OK, CONF_TOKEN_END, CONF_TOKEN_UNTERMINATED } ConfTokenStatus;

static bool conf_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * conf_token_next: the token at *CURSOR (a position in a NUL-terminated line
 * that this call may rewrite from there on). Blanks before it are skipped; a
 * token runs to a blank, a ',' or a '#' outside quotes; "" inside quotes is
 * one '"'. Blanks and one ',' after it are consumed (the ',' sets COMMA).
 * Returns CONF_TOKEN_END at the end of the line or at a '#' (the rest is a
 * comment), CONF_TOKEN_UNTERMINATED when a quote is not closed.
 */
static ConfTokenStatus conf_token_next(char **cursor, ConfToken *tok)
{
	char *p = *cursor;
	while (conf_blank(*p))
		p++;
	*cursor = p;
	if (*p == '\0' || *p == '#')
		return CONF_TOKEN_END;
	*tok = (ConfToken){.text = p};
	char *out = p;
	bool in_quote = false;
	for (;; p++) {
		if (*p == '\0' && in_quote)
			return CONF_TOKEN_UNTERMINATED;
		if (in_quote && *p == '"' && p[1] == '"') {
			*out++ = *p++;
		} else if (*p == '"') {
			in_quote = !in_quote;
			tok->quoted = true;
		} else if (in_quote) {
			*out++ = *p;
		} else if (*p == '\0' || conf_blank(*p) || *p == ',' || *p == '#') {
			break;
		} else {
			*out++ = *p;
			tok->bare = true;
		}
	}
	/* P is at the delimiter, OUT at or before it: read past it, then end
	 * the text (which may overwrite the delimiter, already looked at). */
	char *next = p;
	while (conf_blank(*next))
		next++;
	if (*next == ',') {
		tok->comma = true;
		next++;
	}
	*out = '\0';
	*cursor = next;
	return CONF_TOKEN_OK;
}

/* ---- the line reader of both files ---- */

typedef bool (*ConfAuthLineFn)(ConfAuthLoad *al, char *line);

/*
 * Opens the file at AL->path for reading, or records why not. Only a regular
 * file is read: conf_load also runs for a reload, on the proxy's event loop,
 * which a FIFO or a terminal named by mistake would block (O_NONBLOCK keeps
 * even the open of a FIFO from waiting for a writer).
 */
static FILE *conf_auth_open(ConfAuthLoad *al)
{
	int fd = open(al->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	FILE *f = NULL;
	if (fd < 0 || fstat(fd, &st) != 0) {
		auth_fail(al, 0, "cannot open: %s", strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		auth_fail(al, 0, "not a regular file");
	} else if (fcntl(fd, F_SETFL, 0) != 0 || !(f = fdopen(fd, "r"))) {
		auth_fail(al, 0, "cannot open: %s", strerror(errno));
	}
	if (!f && fd >= 0)
		close(fd);
	return f;
}

/*
 * Reads the file at AL->path line by line into PARSE, which gets each line
 * without its "\r\n". A line whose first non-blank byte is one of COMMENT
 * is a comment: it may hold control characters, and past the length limit
 * it is skipped without PARSE seeing it. Errors: cannot open or read (line
 * 0), not a regular file (line 0), NUL byte, line too long, control
 * character.
 */
static bool conf_auth_read(ConfAuthLoad *al, const char *comment, ConfAuthLineFn parse)
{
	FILE *f = conf_auth_open(al);
	if (!f)
		return false;
	/* conf_line_read keeps SIZE - 1 bytes: the longest line, '\n' not counted */
	char *buf = malloc(CONF_AUTH_LINE_MAX + 1);
	if (!buf)
		auth_fail(al, 0, "out of memory");
	while (!al->failed) {
		size_t len = 0;
		ConfLineStatus st = conf_line_read(f, buf, CONF_AUTH_LINE_MAX + 1, &len);
		if (st == CONF_LINE_EOF)
			break;
		if (st == CONF_LINE_ERROR) {
			auth_fail(al, 0, "cannot read: %s", strerror(errno));
			break;
		}
		al->line++;
		if (al->line == 1 && strncmp(buf, "\xEF\xBB\xBF", 3) == 0) { /* a UTF-8 BOM */
			memmove(buf, buf + 3, len - 3 + 1);
			len -= 3;
		}
		const char *first = buf + strspn(buf, " \t");
		bool is_comment = *first != '\0' && strchr(comment, *first) != NULL;
		bool skip = st == CONF_LINE_LONG && is_comment;
		if (skip)
			st = conf_line_skip(f);
		if (st == CONF_LINE_NUL)
			auth_fail(al, al->line, "NUL byte (an auth file is text)");
		else if (st == CONF_LINE_LONG)
			auth_fail(al, al->line, "line too long (max %d bytes)", CONF_AUTH_LINE_MAX);
		else if (st == CONF_LINE_ERROR)
			auth_fail(al, 0, "cannot read: %s", strerror(errno));
		if (al->failed || skip)
			continue;
		while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
			buf[--len] = '\0';
		for (size_t i = 0; i < len && !is_comment && !al->failed; i++) {
			unsigned char c = (unsigned char)buf[i];
			if (conf_is_control(c) && c != '\t')
				auth_fail(al, al->line, "control character 0x%02x", c);
		}
		if (!al->failed)
			parse(al, buf);
	}
	free(buf);
	fclose(f);
	return !al->failed;
}

/* ---- auth_file ---- */

/* True when P[0..N) is base64 (RFC 4648 section 4): a multiple of 4
 * characters of A-Z a-z 0-9 + /, with at most two '=' of padding at the end. */
static bool conf_base64_ok(const char *p, size_t n)
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t pad = 0;
	while (pad < 2 && pad < n && p[n - 1 - pad] == '=')
		pad++;
	if (n == 0 || n % 4 != 0)
		return false;
	for (size_t i = 0; i < n - pad; i++) {
		if (p[i] == '\0' || !strchr(alphabet, p[i]))
			return false;
	}
	return true;
}

/* True when S, after "SCRAM-SHA-256$", is <iterations>:<salt>$<storedkey>:
 * <serverkey>: a positive decimal that fits an int, then base64 parts. */
static bool conf_scram_shape_ok(const char *s)
{
	size_t digits = strspn(s, "0123456789");
	if (digits == 0 || digits > 10 || s[digits] != ':' || s[0] == '0')
		return false;
	if (strtoll(s, NULL, 10) > INT_MAX)
		return false;
	const char *salt = s + digits + 1;
	const char *dollar = strchr(salt, '$');
	if (!dollar || !conf_base64_ok(salt, (size_t)(dollar - salt)))
		return false;
	const char *stored = dollar + 1;
	const char *colon = strchr(stored, ':');
	return colon && conf_base64_ok(stored, (size_t)(colon - stored)) &&
	       conf_base64_ok(colon + 1, strlen(colon + 1));
}

bool conf_secret_classify(const char *secret, ConfSecretKind *kind)
{
	static const char scram[] = "SCRAM-SHA-256$";
	if (strlen(secret) == 35 && strncmp(secret, "md5", 3) == 0 &&
	    strspn(secret + 3, "0123456789abcdef") == 32)
		*kind = CONF_SECRET_MD5;
	else if (strncmp(secret, scram, sizeof(scram) - 1) == 0)
		*kind = CONF_SECRET_SCRAM;
	else
		*kind = CONF_SECRET_PLAIN;
	return *kind != CONF_SECRET_SCRAM || conf_scram_shape_ok(secret + sizeof(scram) - 1);
}

/* The kind of SECRET, or false (with the error recorded) for a malformed
 * SCRAM secret. */
static bool conf_secret_kind(ConfAuthLoad *al, const char *user, const char *secret,
			     ConfSecretKind *kind)
{
	if (conf_secret_classify(secret, kind))
		return true;
	auth_fail(al, al->line,
		  "user '%s': malformed SCRAM-SHA-256 secret (expected "
		  "SCRAM-SHA-256$<iterations>:<salt>$<storedkey>:<serverkey>, base64 "
		  "parts)",
		  user);
	return false;
}

/* A token that is one double-quoted field and nothing else. */
static bool conf_token_is_field(const ConfToken *tok)
{
	return tok->quoted && !tok->bare && !tok->comma;
}

/* One line of auth_file: "NAME" "SECRET", anything after ignored. */
static bool conf_userlist_line(ConfAuthLoad *al, char *line)
{
	char *p = line + strspn(line, " \t");
	if (*p == ';')
		return true;
	ConfToken name, secret;
	ConfTokenStatus st = conf_token_next(&p, &name);
	if (st == CONF_TOKEN_END)
		return true;
	if (st == CONF_TOKEN_OK && conf_token_is_field(&name))
		st = conf_token_next(&p, &secret);
	if (st == CONF_TOKEN_UNTERMINATED) {
		auth_fail(al, al->line, "unterminated quoted string");
		return false;
	}
	if (!conf_token_is_field(&name) || st == CONF_TOKEN_END || !conf_token_is_field(&secret)) {
		auth_fail(al, al->line, "expected \"NAME\" \"SECRET\" (each in double quotes)");
		return false;
	}
	size_t name_len = strlen(name.text);
	if (name_len == 0 || name_len > CONF_MAX_IDENT) {
		auth_fail(al, al->line, "user name '%s' is not 1 to %d bytes", name.text,
			  CONF_MAX_IDENT);
		return false;
	}
	if (secret.text[0] == '\0') {
		auth_fail(al, al->line, "user '%s': empty secret", name.text);
		return false;
	}
	ConfUser u = {.line = al->line};
	if (!conf_secret_kind(al, name.text, secret.text, &u.kind))
		return false;
	Conf *conf = al->conf;
	if (conf->n_users == al->cap) {
		size_t cap = al->cap ? al->cap * 2 : 16;
		ConfUser *grown = realloc(conf->users, cap * sizeof(*grown));
		if (!grown) {
			auth_fail(al, al->line, "out of memory");
			return false;
		}
		conf->users = grown;
		al->cap = cap;
	}
	u.name = strdup(name.text);
	u.secret = strdup(secret.text);
	if (!u.name || !u.secret) {
		free(u.name);
		free(u.secret);
		auth_fail(al, al->line, "out of memory");
		return false;
	}
	conf->users[conf->n_users++] = u;
	return true;
}

static int conf_user_cmp(const void *a, const void *b)
{
	const ConfUser *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->line > y->line) - (x->line < y->line);
}

/* Sorts the users by name, then line; a name listed twice is an error at
 * its second line (of all such lines, the first in the file). */
static bool conf_users_sort(ConfAuthLoad *al)
{
	const ConfUser *users = al->conf->users, *dup = NULL, *first = NULL;
	size_t n = al->conf->n_users;
	if (n > 1)
		qsort(al->conf->users, n, sizeof(*users), conf_user_cmp);
	for (size_t i = 1; i < n; i++) {
		if (strcmp(users[i].name, users[i - 1].name) != 0)
			continue;
		if (i >= 2 && strcmp(users[i].name, users[i - 2].name) == 0)
			continue; /* the third or a later line of that name */
		if (!dup || users[i].line < dup->line) {
			dup = &users[i];
			first = &users[i - 1];
		}
	}
	if (dup)
		auth_fail(al, dup->line, "user '%s' is already listed at line %d", dup->name,
			  first->line);
	return !dup;
}

/* ---- auth_hba_file ---- */

/* Adds a copy of NAME to the NULL-terminated array at *V (which may be NULL). */
static bool conf_strv_push(char ***v, const char *name)
{
	size_t n = 0;
	while (*v && (*v)[n])
		n++;
	char **grown = realloc(*v, (n + 2) * sizeof(char *));
	if (!grown)
		return false;
	*v = grown;
	grown[n] = strdup(name);
	grown[n + 1] = NULL;
	return grown[n] != NULL;
}

static void conf_hba_rule_clear(ConfHbaRule *rule)
{
	conf_strv_free(rule->databases);
	conf_strv_free(rule->users);
	memset(rule, 0, sizeof(*rule));
}

/* The next token of a field that must be there, with FIELD named in the
 * error when the line ends first. */
static bool conf_hba_token(ConfAuthLoad *al, char **cursor, const char *field, ConfToken *tok)
{
	ConfTokenStatus st = conf_token_next(cursor, tok);
	if (st == CONF_TOKEN_UNTERMINATED)
		auth_fail(al, al->line, "unterminated quoted string");
	else if (st == CONF_TOKEN_END)
		auth_fail(al, al->line, "the line ends before its %s field", field);
	return st == CONF_TOKEN_OK;
}

/* The connection type: local, host, hostssl or hostnossl. */
static bool conf_hba_type(ConfAuthLoad *al, const ConfToken *tok, ConfHbaType *type)
{
	static const char *const types[] = {"local", "host", "hostssl", "hostnossl"};
	static const char *const refused[] = {"hostgssenc", "hostnogssenc", "include",
					      "include_if_exists", "include_dir"};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(tok->text, types[i]) == 0 && !tok->comma) {
			*type = (ConfHbaType)i;
			if (*type == CONF_HBA_HOSTSSL &&
			    al->conf->client_tls_sslmode == CONF_TLS_DISABLE) {
				auth_fail(al, al->line, "hostssl never matches: client_tls_sslmode is "
					  "disable");
				return false;
			}
			return true;
		}
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		if (strcmp(tok->text, refused[i]) == 0) {
			auth_fail(al, al->line, "'%s' is not supported", tok->text);
			return false;
		}
	}
	auth_fail(al, al->line,
		  "'%s' is not a connection type (expected local, host, hostssl or hostnossl)",
		  tok->text);
	return false;
}

/* The word of an unquoted token that the DATABASE (or USER) field does not
 * support, or NULL. */
static const char *conf_hba_refused_name(const ConfToken *tok, bool database)
{
	static const char *const db_words[] = {"samerole", "samegroup", "replication"};
	if (tok->quoted)
		return NULL;
	if (tok->text[0] == '@')
		return "@file";
	if (!database && tok->text[0] == '+')
		return "+group";
	for (size_t i = 0; database && i < sizeof(db_words) / sizeof(db_words[0]); i++) {
		if (strcmp(tok->text, db_words[i]) == 0)
			return db_words[i];
	}
	return NULL;
}

/* The DATABASE (DATABASE true) or USER field: a comma-separated list of
 * names, "all", and for databases "sameuser". */
static bool conf_hba_names(ConfAuthLoad *al, char **cursor, bool database, ConfHbaRule *rule)
{
	const char *field = database ? "database" : "user";
	bool *all = database ? &rule->all_databases : &rule->all_users;
	char ***names = database ? &rule->databases : &rule->users;
	ConfToken tok;
	do {
		if (!conf_hba_token(al, cursor, field, &tok))
			return false;
		const char *refused = conf_hba_refused_name(&tok, database);
		if (refused) {
			auth_fail(al, al->line, "'%s': %s is not supported in the %s field", tok.text,
				  refused, field);
			return false;
		}
		if (!tok.quoted && strcmp(tok.text, "all") == 0) {
			*all = true;
		} else if (database && !tok.quoted && strcmp(tok.text, "sameuser") == 0) {
			rule->sameuser = true;
		} else if (tok.text[0] == '\0') {
			auth_fail(al, al->line, "empty name in the %s field", field);
			return false;
		} else if (!conf_strv_push(names, tok.text)) {
			auth_fail(al, al->line, "out of memory");
			return false;
		}
	} while (tok.comma);
	if (!*names && !(*names = calloc(1, sizeof(char *)))) {
		auth_fail(al, al->line, "out of memory");
		return false;
	}
	return true;
}

/* Number of leading one bits of the FAMILY netmask MASK, or -1 when the
 * ones are not contiguous (10.0.255.0). */
static int conf_mask_prefix(const uint8_t *mask, int family)
{
	int bits = family == AF_INET ? 32 : 128, prefix = 0;
	while (prefix < bits && (mask[prefix / 8] & (0x80u >> (prefix % 8))))
		prefix++;
	for (int b = prefix; b < bits; b++) {
		if (mask[b / 8] & (0x80u >> (b % 8)))
			return -1;
	}
	return prefix;
}

/* ADDRESS [NETMASK] of a host line: all, ADDR/LEN, or ADDR NETMASK. */
static bool conf_hba_address(ConfAuthLoad *al, char **cursor, ConfHbaRule *rule)
{
	ConfToken tok, mask_tok;
	if (!conf_hba_token(al, cursor, "address", &tok))
		return false;
	if (!tok.quoted && strcmp(tok.text, "all") == 0 && !tok.comma) {
		rule->all_addresses = true;
		return true;
	}
	if (!tok.quoted && (strcmp(tok.text, "samehost") == 0 || strcmp(tok.text, "samenet") == 0)) {
		auth_fail(al, al->line, "'%s' is not supported", tok.text);
		return false;
	}
	ConfCidr host, mask;
	if (tok.comma || !conf_cidr_parse(tok.text, &host)) {
		auth_fail(al, al->line,
			  "'%s' is not an IP address, a CIDR or all (host names are not supported)",
			  tok.text);
		return false;
	}
	if (strchr(tok.text, '/')) {
		rule->address = host;
		return true;
	}
	if (!conf_hba_token(al, cursor, "netmask", &mask_tok))
		return false;
	int prefix = -1;
	if (!strchr(mask_tok.text, '/') && conf_cidr_parse(mask_tok.text, &mask) &&
	    mask.family == host.family)
		prefix = conf_mask_prefix(mask.addr, mask.family);
	char cidr[INET6_ADDRSTRLEN + 8];
	snprintf(cidr, sizeof(cidr), "%s/%d", tok.text, prefix);
	if (prefix < 0 || mask_tok.comma || !conf_cidr_parse(cidr, &rule->address)) {
		auth_fail(al, al->line, "'%s' is not a netmask for %s (such as 255.255.255.0)",
			  mask_tok.text, tok.text);
		return false;
	}
	return true;
}

/* METHOD, and nothing after it. */
static bool conf_hba_method(ConfAuthLoad *al, char **cursor, ConfHbaRule *rule)
{
	ConfToken tok, extra;
	if (!conf_hba_token(al, cursor, "method", &tok))
		return false;
	int m = CONF_AUTH_TRUST;
	while (m <= CONF_AUTH_PEER && (m == CONF_AUTH_HBA || tok.comma ||
				       strcmp(tok.text, conf_auth_type_to_str((ConfAuthType)m)) != 0))
		m++;
	bool verify = al->conf->client_tls_sslmode >= CONF_TLS_VERIFY_CA;
	if (m > CONF_AUTH_PEER)
		auth_fail(al, al->line,
			  "authentication method '%s' is not supported (expected trust, reject, md5, "
			  "password, scram-sha-256, cert or peer)",
			  tok.text);
	else if (m == CONF_AUTH_PEER && rule->type != CONF_HBA_LOCAL)
		auth_fail(al, al->line, "peer is only supported on local lines");
	else if (m == CONF_AUTH_CERT && rule->type != CONF_HBA_HOSTSSL)
		auth_fail(al, al->line, "cert is only supported on hostssl lines");
	else if (m == CONF_AUTH_CERT && !verify)
		auth_fail(al, al->line,
			  "cert needs client_tls_sslmode = verify-ca or verify-full (a client "
			  "certificate is verified only then)");
	if (al->failed)
		return false;
	rule->method = (ConfAuthType)m;
	ConfTokenStatus st = conf_token_next(cursor, &extra);
	if (st == CONF_TOKEN_UNTERMINATED)
		auth_fail(al, al->line, "unterminated quoted string");
	else if (st == CONF_TOKEN_OK)
		auth_fail(al, al->line, "'%s': options after the method are not supported",
			  extra.text);
	return !al->failed;
}

/* One line of auth_hba_file. */
static bool conf_hba_line(ConfAuthLoad *al, char *line)
{
	size_t len = strlen(line);
	if (len > 0 && line[len - 1] == '\\') {
		auth_fail(al, al->line,
			  "a line continued with '\\' is not supported: write the record on one line");
		return false;
	}
	char *p = line;
	ConfToken tok;
	ConfTokenStatus st = conf_token_next(&p, &tok);
	if (st == CONF_TOKEN_END)
		return true;
	if (st == CONF_TOKEN_UNTERMINATED) {
		auth_fail(al, al->line, "unterminated quoted string");
		return false;
	}
	ConfHbaRule rule = {.line = al->line};
	bool ok = conf_hba_type(al, &tok, &rule.type) && conf_hba_names(al, &p, true, &rule) &&
		  conf_hba_names(al, &p, false, &rule) &&
		  (rule.type == CONF_HBA_LOCAL || conf_hba_address(al, &p, &rule)) &&
		  conf_hba_method(al, &p, &rule);
	if (rule.type == CONF_HBA_LOCAL)
		rule.all_addresses = true;
	Conf *conf = al->conf;
	if (ok && conf->n_hba == al->cap) {
		size_t cap = al->cap ? al->cap * 2 : 16;
		ConfHbaRule *grown = realloc(conf->hba, cap * sizeof(*grown));
		if (grown) {
			conf->hba = grown;
			al->cap = cap;
		} else {
			auth_fail(al, al->line, "out of memory");
			ok = false;
		}
	}
	if (!ok) {
		conf_hba_rule_clear(&rule);
		return false;
	}
	conf->hba[conf->n_hba++] = rule;
	return true;
}

/* ---- public ---- */

bool conf_auth_load(Conf *conf, char *err, size_t errlen)
{
	if (conf->auth_file) {
		ConfAuthLoad al = {.conf = conf, .path = conf->auth_file, .err = err, .errlen = errlen};
		if (!conf_auth_read(&al, ";#", conf_userlist_line) || !conf_users_sort(&al))
			return false;
		conf->have_auth_file = true;
	}
	if (conf->auth_hba_file) {
		ConfAuthLoad al = {
			.conf = conf, .path = conf->auth_hba_file, .err = err, .errlen = errlen};
		if (!conf_auth_read(&al, "#", conf_hba_line))
			return false;
		if (conf->n_hba == 0) {
			auth_fail(&al, 0, "no rules (every client would be refused)");
			return false;
		}
	}
	return true;
}

void conf_auth_clear(Conf *conf)
{
	for (size_t i = 0; i < conf->n_users; i++) {
		free(conf->users[i].name);
		free(conf->users[i].secret);
	}
	free(conf->users);
	conf->users = NULL;
	conf->n_users = 0;
	for (size_t i = 0; i < conf->n_hba; i++)
		conf_hba_rule_clear(&conf->hba[i]);
	free(conf->hba);
	conf->hba = NULL;
	conf->n_hba = 0;
}

const char *conf_auth_type_to_str(ConfAuthType type)
{
	switch (type) {
	case CONF_AUTH_TRUST:
		return "trust";
	case CONF_AUTH_MD5:
		return "md5";
	case CONF_AUTH_SCRAM:
		return "scram-sha-256";
	case CONF_AUTH_CERT:
		return "cert";
	case CONF_AUTH_HBA:
		return "hba";
	case CONF_AUTH_REJECT:
		return "reject";
	case CONF_AUTH_PASSWORD:
		return "password";
	case CONF_AUTH_PEER:
		return "peer";
	}
	return "unknown";
}

static int conf_user_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const ConfUser *)elem)->name);
}

const ConfUser *conf_find_user(const Conf *conf, const char *name)
{
	if (!conf || !name || !conf->have_auth_file || conf->n_users == 0)
		return NULL;
	return bsearch(name, conf->users, conf->n_users, sizeof(*conf->users), conf_user_key_cmp);
}

static bool conf_strv_has(char *const *v, const char *name)
{
	for (; v && *v; v++) {
		if (strcmp(*v, name) == 0)
			return true;
	}
	return false;
}

/* Whether RULE's connection type, address, database and user take the client. */
static bool conf_hba_rule_matches(const ConfHbaRule *r, bool is_unix, bool tls,
				  const char *database, const char *user, int family,
				  const uint8_t *addr)
{
	if (is_unix != (r->type == CONF_HBA_LOCAL))
		return false;
	if ((r->type == CONF_HBA_HOSTSSL && !tls) || (r->type == CONF_HBA_HOSTNOSSL && tls))
		return false;
	if (!is_unix && !r->all_addresses && !conf_cidr_match(&r->address, family, addr))
		return false;
	bool db = r->all_databases || (r->sameuser && strcmp(database, user) == 0) ||
		  conf_strv_has(r->databases, database);
	return db && (r->all_users || conf_strv_has(r->users, user));
}

ConfAuthType conf_hba_match(const Conf *conf, bool is_unix, bool tls, const char *database,
			    const char *user, int family, const uint8_t *addr, int *line)
{
	if (line)
		*line = 0;
	if (!conf || !database || !user)
		return CONF_AUTH_REJECT;
	for (size_t i = 0; i < conf->n_hba; i++) {
		const ConfHbaRule *r = &conf->hba[i];
		if (conf_hba_rule_matches(r, is_unix, tls, database, user, family, addr)) {
			if (line)
				*line = r->line;
			return r->method;
		}
	}
	return CONF_AUTH_REJECT;
}
