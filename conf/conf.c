/*
 * conf.c: loads pgflip.ini into one immutable Conf snapshot.
 *
 * Design. inih does the INI grammar (sections, comments, KEY = VALUE); this
 * file does everything else. inih is fed through our own line reader
 * (conf_read_line) rather than ini_parse(), because the reader is the only
 * place that sees raw lines, and Debian's libinih is built without line
 * numbers for handlers (INI_HANDLER_LINENO=0) and with a fixed line buffer.
 * The reader therefore:
 *   - counts lines, so "lines read so far" is the line the handler is on;
 *   - refuses a NUL byte anywhere (fgets would hide what follows it);
 *   - reports a line that does not fit inih's buffer instead of letting inih
 *     cut it in two (long comment lines are simply skipped);
 *   - strips leading blanks, so an indented line is an ordinary KEY = VALUE
 *     line and never one of inih's multi-line continuations (which would
 *     silently overwrite the previous key, and pgbouncer has no such thing);
 *   - makes '=' the only key/value separator, as in pgbouncer.ini: inih also
 *     splits at ':', which would cut "addr.::1/128 = x" after "addr.". Every
 *     ':' left of the first '=' is swapped for CONF_COLON_STANDIN and the
 *     handler swaps it back; a line with no '=' becomes a syntax error;
 *   - checks [section] headers, so an unknown section is reported at its
 *     header even when it holds no key.
 * The NUL and long-line checks are conf_line_read's, the one line reader of
 * conf/ (auth.c reads auth_file and auth_hba_file with it too).
 * The handler (conf_handle) dispatches on the section. [pgflip] keys are one
 * table (conf_settings) read by one setter; [databases] values are libpq
 * conninfo strings from which the PgBouncer-style pool_mode=/pool_size= pairs
 * are taken out before PQconninfoParse() checks the rest.
 *
 * After the last line, conf_finish checks the keys that depend on each other
 * (TLS mode and its files, auth_type and its sources) and has auth.c read the
 * auth files into the snapshot.
 *
 * Errors: the first one wins and stops the reader; it is written as
 * "FILE:LINE: what" into the caller's buffer, and the half-built Conf is
 * freed with conf_free(), which copes with any partly filled state.
 */
#include "conf/conf.h"
#include "conf/conf_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>

#include <ini.h>
#include <libpq-fe.h>

/*
 * Stands for ':' in a key while inih looks at the line. ASCII "unit
 * separator": a control character, which the reader refuses in real input,
 * so it can never be confused with a byte the user wrote.
 */
#define CONF_COLON_STANDIN '\x1f'

/* Longest time a *_timeout key takes, in seconds: its milliseconds must fit
 * an int (INT_MAX ms is about 24.8 days). */
#define CONF_MAX_SECONDS (INT_MAX / 1000)

/* The upper bounds of [pgflip] counts. Far above any sane setting; they exist
 * so that a typo (an extra zero or two) is an error instead of a pool that
 * tries to open a million connections. */
#define CONF_MAX_POOL_SIZE 10000
#define CONF_MAX_CLIENT_CONN 1000000
#define CONF_MAX_PREPARED_STATEMENTS 100000

/* max_packet_size bounds: below 1 KiB even a startup packet with a few
 * parameters does not fit; 1 GiB is PostgreSQL's own MaxAllocSize, the
 * largest message a server builds or takes. */
#define CONF_MIN_PACKET_SIZE 1024u
#define CONF_MAX_PACKET_SIZE (1024u * 1024u * 1024u)

/* Bytes of a Unix socket path, terminating NUL included (sun_path). */
#define CONF_SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

/* State of one conf_load() call, shared by the reader and the handler. */
typedef struct ConfLoad {
	Conf *conf;
	FILE *file;
	int line;             /* lines handed to inih so far: the current line */
	int read_errno;       /* errno of a failed read, or 0 */
	bool failed;          /* an error is recorded; stop reading */
	int err_line;         /* its line */
	char *err;
	size_t errlen;
	bool seen_routes;     /* a [routes] header was read */
	int admin_socket_line;
	int unix_socket_dir_line;
	int route_db_line;    /* where route_db was set, 0 = not set */
	int admin_db_line;    /* where admin_db was set, 0 = not set */
	size_t db_cap;
	size_t pin_cap;
} ConfLoad;

/* A name in a closed set of words; value -1: a word we know (pgbouncer has
 * it) but do not implement yet. */
typedef struct ConfWord {
	const char *name;
	int value;
} ConfWord;

static const ConfWord conf_pool_modes[] = {
	{"session", CONF_POOL_SESSION},
	{"transaction", CONF_POOL_TRANSACTION},
	{"statement", -1},
	{NULL, 0},
};

static const ConfWord conf_log_levels[] = {
	{"error", CONF_LOG_ERROR},
	{"warning", CONF_LOG_WARNING},
	{"info", CONF_LOG_INFO},
	{"debug", CONF_LOG_DEBUG},
	{NULL, 0},
};

static const ConfWord conf_log_formats[] = {
	{"text", CONF_LOG_TEXT},
	{"json", CONF_LOG_JSON},
	{NULL, 0},
};

/* syslog_facility: pgbouncer.ini's words, each its <syslog.h> value. */
static const ConfWord conf_syslog_facilities[] = {
	{"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
	{"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},     {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
	{"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},     {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
	{NULL, 0},
};

static const ConfWord conf_check_modes[] = {
	{"auto", CONF_CHECK_AUTO},
	{"always", CONF_CHECK_ALWAYS},
	{NULL, 0},
};

/* auth_type: PgBouncer's methods; reject, password and peer are methods of
 * auth_hba_file lines only (auth.c). */
static const ConfWord conf_auth_types[] = {
	{"trust", CONF_AUTH_TRUST},
	{"md5", CONF_AUTH_MD5},
	{"scram-sha-256", CONF_AUTH_SCRAM},
	{"cert", CONF_AUTH_CERT},
	{"hba", CONF_AUTH_HBA},
	{"any", -1},
	{"plain", -1},
	{"pam", -1},
	{"ldap", -1},
	{NULL, 0},
};

/* client_tls_sslmode, server_tls_sslmode: libpq's sslmode words, in the order
 * of ConfTlsMode (conf_tls_mode_to_str reads them back from here). */
static const ConfWord conf_tls_modes[] = {
	{"disable", CONF_TLS_DISABLE},
	{"allow", CONF_TLS_ALLOW},
	{"prefer", CONF_TLS_PREFER},
	{"require", CONF_TLS_REQUIRE},
	{"verify-ca", CONF_TLS_VERIFY_CA},
	{"verify-full", CONF_TLS_VERIFY_FULL},
	{NULL, 0},
};

/* canary_key, in the order of ConfCanaryKey (conf_canary_key_to_str reads
 * them back from here). */
static const ConfWord conf_canary_keys[] = {
	{"addr", CONF_CANARY_KEY_ADDR},
	{"application_name", CONF_CANARY_KEY_APPLICATION_NAME},
	{"connection", CONF_CANARY_KEY_CONNECTION},
	{NULL, 0},
};

/* client_tls_protocols: PgBouncer's words (libusual's
 * tls_config_parse_protocols, plus "legacy" that its documentation names),
 * each a set of CONF_TLS_V1_* bits. */
static const ConfWord conf_tls_protocols[] = {
	{"tlsv1.0", CONF_TLS_V1_0},
	{"tlsv1.1", CONF_TLS_V1_1},
	{"tlsv1.2", CONF_TLS_V1_2},
	{"tlsv1.3", CONF_TLS_V1_3},
	{"all", CONF_TLS_ALL},
	{"secure", CONF_TLS_SECURE},
	{"legacy", CONF_TLS_ALL},
	{"default", CONF_TLS_SECURE},
	{NULL, 0},
};

typedef enum {
	CONF_KIND_STR,        /* char *, "" kept */
	CONF_KIND_PATH,       /* char *, "" becomes NULL (not set): paths, optional names */
	CONF_KIND_INT,        /* int in [min, max] */
	CONF_KIND_OCTAL,      /* int in [min, max], written in octal with a leading 0 (a file mode) */
	CONF_KIND_MS,         /* seconds in the file, int milliseconds in Conf */
	CONF_KIND_BYTES,      /* uint32_t, kB/MB/GB suffixes allowed */
	CONF_KIND_RATIO,      /* double in [min, max], a decimal number */
	CONF_KIND_LIST,       /* char **, comma separated */
	CONF_KIND_WORD,       /* int-sized enum, one of words */
	CONF_KIND_WORD_SET,   /* unsigned, the union of words' bits (list, '!' removes) */
} ConfKind;

/* One [pgflip] key. For CONF_KIND_MS, min/max are milliseconds. */
typedef struct ConfSetting {
	const char *name;
	ConfKind kind;
	size_t offset;
	long min;
	long max;
	const ConfWord *words;
} ConfSetting;

#define CONF_AT(field) offsetof(Conf, field)

static const ConfSetting conf_settings[] = {
	{"listen_addr", CONF_KIND_STR, CONF_AT(listen_addr), 0, 0, NULL},
	{"listen_port", CONF_KIND_INT, CONF_AT(listen_port), 1, 65535, NULL},
	{"unix_socket_dir", CONF_KIND_STR, CONF_AT(unix_socket_dir), 0, 0, NULL},
	{"admin_socket", CONF_KIND_STR, CONF_AT(admin_socket), 0, 0, NULL},
	{"pool_mode", CONF_KIND_WORD, CONF_AT(pool_mode), 0, 0, conf_pool_modes},
	{"default_pool_size", CONF_KIND_INT, CONF_AT(default_pool_size), 1, CONF_MAX_POOL_SIZE,
	 NULL},
	{"min_pool_size", CONF_KIND_INT, CONF_AT(min_pool_size), 0, CONF_MAX_POOL_SIZE, NULL},
	{"reserve_pool_size", CONF_KIND_INT, CONF_AT(reserve_pool_size), 0, CONF_MAX_POOL_SIZE,
	 NULL},
	{"max_client_conn", CONF_KIND_INT, CONF_AT(max_client_conn), 1, CONF_MAX_CLIENT_CONN, NULL},
	{"max_db_connections", CONF_KIND_INT, CONF_AT(max_db_connections), 0, CONF_MAX_CLIENT_CONN,
	 NULL},
	{"max_prepared_statements", CONF_KIND_INT, CONF_AT(max_prepared_statements), 0,
	 CONF_MAX_PREPARED_STATEMENTS, NULL},
	{"logfile", CONF_KIND_PATH, CONF_AT(logfile), 0, 0, NULL},
	{"pidfile", CONF_KIND_PATH, CONF_AT(pidfile), 0, 0, NULL},
	{"admin_users", CONF_KIND_LIST, CONF_AT(admin_users), 0, 0, NULL},
	{"log_level", CONF_KIND_WORD, CONF_AT(log_level), 0, 0, conf_log_levels},
	{"auth_type", CONF_KIND_WORD, CONF_AT(auth_type), 0, 0, conf_auth_types},
	{"server_connect_timeout", CONF_KIND_MS, CONF_AT(server_connect_timeout_ms), 1, INT_MAX,
	 NULL},
	{"server_login_retry", CONF_KIND_MS, CONF_AT(server_login_retry_ms), 1, INT_MAX, NULL},
	{"server_idle_timeout", CONF_KIND_MS, CONF_AT(server_idle_timeout_ms), 0, INT_MAX, NULL},
	{"server_lifetime", CONF_KIND_MS, CONF_AT(server_lifetime_ms), 0, INT_MAX, NULL},
	{"query_wait_timeout", CONF_KIND_MS, CONF_AT(query_wait_timeout_ms), 0, INT_MAX, NULL},
	{"reserve_pool_timeout", CONF_KIND_MS, CONF_AT(reserve_pool_timeout_ms), 0, INT_MAX, NULL},
	{"shutdown_timeout", CONF_KIND_MS, CONF_AT(shutdown_timeout_ms), 1, INT_MAX, NULL},
	{"max_packet_size", CONF_KIND_BYTES, CONF_AT(max_packet_size), CONF_MIN_PACKET_SIZE,
	 CONF_MAX_PACKET_SIZE, NULL},
	{"server_reset_query", CONF_KIND_STR, CONF_AT(server_reset_query), 0, 0, NULL},
	{"client_login_timeout", CONF_KIND_MS, CONF_AT(client_login_timeout_ms), 0, INT_MAX, NULL},
	{"client_idle_timeout", CONF_KIND_MS, CONF_AT(client_idle_timeout_ms), 0, INT_MAX, NULL},
	{"track_extra_parameters", CONF_KIND_LIST, CONF_AT(track_extra_parameters), 0, 0, NULL},
	{"ignore_startup_parameters", CONF_KIND_LIST, CONF_AT(ignore_startup_parameters), 0, 0, NULL},
	{"server_check_search_path", CONF_KIND_WORD, CONF_AT(server_check_search_path), 0, 0,
	 conf_check_modes},
	{"auth_file", CONF_KIND_PATH, CONF_AT(auth_file), 0, 0, NULL},
	{"auth_hba_file", CONF_KIND_PATH, CONF_AT(auth_hba_file), 0, 0, NULL},
	{"auth_query", CONF_KIND_STR, CONF_AT(auth_query), 0, 0, NULL},
	{"auth_user", CONF_KIND_PATH, CONF_AT(auth_user), 0, 0, NULL},
	{"stats_users", CONF_KIND_LIST, CONF_AT(stats_users), 0, 0, NULL},
	{"unix_socket_mode", CONF_KIND_OCTAL, CONF_AT(unix_socket_mode), 0, 0777, NULL},
	{"unix_socket_group", CONF_KIND_PATH, CONF_AT(unix_socket_group), 0, 0, NULL},
	{"client_tls_sslmode", CONF_KIND_WORD, CONF_AT(client_tls_sslmode), 0, 0, conf_tls_modes},
	{"client_tls_cert_file", CONF_KIND_PATH, CONF_AT(client_tls_cert_file), 0, 0, NULL},
	{"client_tls_key_file", CONF_KIND_PATH, CONF_AT(client_tls_key_file), 0, 0, NULL},
	{"client_tls_ca_file", CONF_KIND_PATH, CONF_AT(client_tls_ca_file), 0, 0, NULL},
	{"client_tls_protocols", CONF_KIND_WORD_SET, CONF_AT(client_tls_protocols), 0, 0,
	 conf_tls_protocols},
	{"client_tls_ciphers", CONF_KIND_STR, CONF_AT(client_tls_ciphers), 0, 0, NULL},
	{"server_tls_sslmode", CONF_KIND_WORD, CONF_AT(server_tls_sslmode), 0, 0, conf_tls_modes},
	{"server_tls_ca_file", CONF_KIND_PATH, CONF_AT(server_tls_ca_file), 0, 0, NULL},
	{"server_tls_cert_file", CONF_KIND_PATH, CONF_AT(server_tls_cert_file), 0, 0, NULL},
	{"server_tls_key_file", CONF_KIND_PATH, CONF_AT(server_tls_key_file), 0, 0, NULL},
	{"route_db", CONF_KIND_STR, CONF_AT(route_db), 0, 0, NULL},
	{"backfill_max_latency_ratio", CONF_KIND_RATIO, CONF_AT(backfill_max_latency_ratio), 0, 1000, NULL},
	{"ddl_drain_timeout", CONF_KIND_MS, CONF_AT(ddl_drain_timeout_ms), 0, 10000, NULL},
	{"log_format", CONF_KIND_WORD, CONF_AT(log_format), 0, 0, conf_log_formats},
	{"syslog", CONF_KIND_INT, CONF_AT(syslog), 0, 1, NULL},
	{"syslog_ident", CONF_KIND_STR, CONF_AT(syslog_ident), 0, 0, NULL},
	{"syslog_facility", CONF_KIND_WORD, CONF_AT(syslog_facility), 0, 0, conf_syslog_facilities},
	{"metrics_listen", CONF_KIND_PATH, CONF_AT(metrics_listen), 0, 0, NULL},
	{"admin_db", CONF_KIND_STR, CONF_AT(admin_db), 0, 0, NULL},
	{"stats_period", CONF_KIND_INT, CONF_AT(stats_period), 1, 86400, NULL},
	{NULL, CONF_KIND_STR, 0, 0, 0, NULL},
};

/* ---- errors and small helpers ---- */

static void conf_fail(ConfLoad *ld, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

void conf_error_v(char *err, size_t errlen, const char *file, int line, const char *fmt,
		  va_list ap)
{
	if (errlen == 0)
		return;
	int n = snprintf(err, errlen, "%s:%d: ", file, line);
	if (n < 0 || (size_t)n >= errlen)
		return;
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

/* Records the first error as "FILE:LINE: message"; later ones are dropped. */
static void conf_fail(ConfLoad *ld, int line, const char *fmt, ...)
{
	if (ld->failed)
		return;
	ld->failed = true;
	ld->err_line = line;
	va_list ap;
	va_start(ap, fmt);
	conf_error_v(ld->err, ld->errlen, ld->conf->path, line, fmt, ap);
	va_end(ap);
}

/* strdup that records "out of memory" on failure. */
static char *conf_strdup(ConfLoad *ld, const char *s)
{
	char *copy = strdup(s);
	if (!copy)
		conf_fail(ld, ld->line, "out of memory");
	return copy;
}

/* Replaces the string at *SLOT by a copy of VALUE. */
static bool conf_set_string(ConfLoad *ld, char **slot, const char *value)
{
	char *copy = conf_strdup(ld, value);
	if (!copy)
		return false;
	free(*slot);
	*slot = copy;
	return true;
}

static bool conf_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool conf_is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

void conf_strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

/* The value of WORD in WORDS, -1 for a known but unsupported word, or -2. */
static int conf_word_value(const ConfWord *words, const char *word)
{
	for (const ConfWord *w = words; w->name; w++) {
		if (strcmp(w->name, word) == 0)
			return w->value;
	}
	return -2;
}

/* Checks WORD against WORDS and stores its value; errors name LABEL. */
static bool conf_parse_word(ConfLoad *ld, const char *label, const ConfWord *words,
			    const char *word, int *out)
{
	int v = conf_word_value(words, word);
	if (v == -1) {
		conf_fail(ld, ld->line, "%s %s is not supported yet", label, word);
		return false;
	}
	if (v < 0) {
		char expected[128] = "";
		size_t used = 0;
		for (const ConfWord *w = words; w->name; w++) {
			if (w->value < 0)
				continue;
			int n = snprintf(expected + used, sizeof(expected) - used, "%s%s",
					 used ? ", " : "", w->name);
			if (n < 0 || (size_t)n >= sizeof(expected) - used)
				break;
			used += (size_t)n;
		}
		conf_fail(ld, ld->line, "%s: '%s' is not one of %s", label, word, expected);
		return false;
	}
	*out = v;
	return true;
}

/* Parses TEXT as a whole decimal integer in [MIN, MAX]; errors name LABEL. */
static bool conf_parse_int(ConfLoad *ld, const char *label, const char *text, long min, long max,
			   int *out)
{
	/* strtol alone would take leading blanks, a '+' and an empty string. */
	const char *digits = text[0] == '-' ? text + 1 : text;
	if (!isdigit((unsigned char)digits[0])) {
		conf_fail(ld, ld->line, "%s: '%s' is not a number", label, text);
		return false;
	}
	errno = 0;
	char *end;
	long v = strtol(text, &end, 10);
	if (*end != '\0') {
		conf_fail(ld, ld->line, "%s: '%s' is not a number", label, text);
		return false;
	}
	if (errno == ERANGE || v < min || v > max) {
		conf_fail(ld, ld->line, "%s: %s is out of range (%ld..%ld)", label, text, min, max);
		return false;
	}
	*out = (int)v;
	return true;
}

/*
 * Parses a file mode written in octal with a leading 0 ("0777", "0660", or
 * "0") into [MIN, MAX]. PgBouncer reads unix_socket_mode with strtol(..., 0),
 * so "0660" is octal there too, but "660" would be decimal 660 (octal 01224):
 * a number without the leading 0 is refused rather than read either way.
 */
static bool conf_parse_octal(ConfLoad *ld, const char *label, const char *text, long min,
			     long max, int *out)
{
	size_t digits = strspn(text, "01234567");
	if (text[0] != '0' || text[digits] != '\0') {
		conf_fail(ld, ld->line,
			  "%s: '%s' is not an octal mode (write it with a leading 0, such as 0660)",
			  label, text);
		return false;
	}
	long v = 0;
	for (const char *p = text; *p; p++) {
		v = v * 8 + (*p - '0');
		if (v > max)
			break;
	}
	if (v < min || v > max) {
		conf_fail(ld, ld->line, "%s: %s is out of range (%#lo..%#lo)", label, text, min, max);
		return false;
	}
	*out = (int)v;
	return true;
}

/*
 * Parses a set of WORDS as PgBouncer's client_tls_protocols: items separated
 * by ',' or ':', blanks around them dropped, empty items skipped, words
 * compared without case ("TLSv1.2" is tlsv1.2); "!WORD" takes WORD's bits
 * out (starting from every bit when it comes first: "!tlsv1.0"). The
 * result must hold a bit.
 */
static bool conf_parse_word_set(ConfLoad *ld, const char *label, const ConfWord *words,
				const char *text, unsigned *out)
{
	unsigned all = 0, set = 0;
	bool any = false;
	for (const ConfWord *w = words; w->name; w++)
		all |= (unsigned)w->value;
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, ",:");
		const char *next = p[len] ? p + len + 1 : p + len;
		while (len > 0 && isspace((unsigned char)*p))
			p++, len--;
		while (len > 0 && isspace((unsigned char)p[len - 1]))
			len--;
		bool negate = len > 0 && *p == '!';
		if (negate)
			p++, len--;
		const ConfWord *w = words;
		while (w->name && !(strlen(w->name) == len && strncasecmp(w->name, p, len) == 0))
			w++;
		if ((len > 0 || negate) && !w->name) {
			conf_fail(ld, ld->line, "%s: '%.*s' is not a TLS protocol (tlsv1.0, tlsv1.1, "
				  "tlsv1.2, tlsv1.3, all, secure or legacy)", label, (int)len, p);
			return false;
		}
		if (len > 0 && negate)
			set = (any ? set : all) & ~(unsigned)w->value;
		else if (len > 0)
			set |= (unsigned)w->value;
		any = any || len > 0;
		p = next;
	}
	if (set == 0) {
		conf_fail(ld, ld->line, "%s: '%s' leaves no TLS protocol", label, text);
		return false;
	}
	*out = set;
	return true;
}

/*
 * Parses seconds as pgbouncer.ini writes them ("15", "0.5", at most three
 * decimals, since the unit kept is the millisecond) into milliseconds in
 * [MIN_MS, MAX_MS]. Parsed by hand rather than with strtod so that the locale's
 * decimal point, exponents, "inf" and "nan" never come in.
 */
static bool conf_parse_ms(ConfLoad *ld, const char *label, const char *text, long min_ms,
			  long max_ms, int *out)
{
	const char *p = text;
	long long ms = 0;
	if (!isdigit((unsigned char)*p))
		goto not_seconds;
	for (; isdigit((unsigned char)*p); p++) {
		ms = ms * 10 + (*p - '0');
		if (ms > CONF_MAX_SECONDS)
			goto out_of_range;
	}
	ms *= 1000;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			goto not_seconds;
		long long unit = 100;
		for (; isdigit((unsigned char)*p); p++) {
			if (unit == 0) {
				conf_fail(ld, ld->line,
					  "%s: '%s' has more than 3 decimals (milliseconds)", label,
					  text);
				return false;
			}
			ms += unit * (*p - '0');
			unit /= 10;
		}
	}
	if (*p != '\0')
		goto not_seconds;
	if (ms < min_ms || ms > max_ms)
		goto out_of_range;
	*out = (int)ms;
	return true;

not_seconds:
	conf_fail(ld, ld->line, "%s: '%s' is not a number of seconds", label, text);
	return false;
out_of_range:
	conf_fail(ld, ld->line, "%s: %s is out of range (%s..%ld seconds)", label, text,
		  min_ms == 0 ? "0" : "0.001", max_ms / 1000);
	return false;
}

/* Parses a decimal number (strtod's syntax, nothing after it) in [MIN, MAX]. */
static bool conf_parse_ratio(ConfLoad *ld, const char *label, const char *text, long min, long max, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(text, &end);
	if (end == text || *end != '\0' || errno != 0 || !isfinite(v)) {
		conf_fail(ld, ld->line, "%s: '%s' is not a number", label, text);
		return false;
	}
	if (v < (double)min || v > (double)max) {
		conf_fail(ld, ld->line, "%s: %s is out of range (%ld..%ld)", label, text, min, max);
		return false;
	}
	*out = v;
	return true;
}

/* Parses a byte count with an optional kB, MB or GB suffix (1024-based and
 * spelt as in postgresql.conf) into [MIN, MAX]. */
static bool conf_parse_bytes(ConfLoad *ld, const char *label, const char *text, long min, long max,
			     uint32_t *out)
{
	static const struct {
		const char *unit;
		unsigned long long factor;
	} units[] = {
		{"", 1}, {"B", 1}, {"kB", 1024}, {"MB", 1024 * 1024}, {"GB", 1024 * 1024 * 1024},
	};
	const char *p = text;
	unsigned long long n = 0;
	if (!isdigit((unsigned char)*p))
		goto not_size;
	for (; isdigit((unsigned char)*p); p++) {
		n = n * 10 + (unsigned)(*p - '0');
		if (n > (unsigned long long)max)
			goto out_of_range;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		n *= units[i].factor; /* n <= max <= 2^30 before: no overflow */
		if (n < (unsigned long long)min || n > (unsigned long long)max)
			goto out_of_range;
		*out = (uint32_t)n;
		return true;
	}
not_size:
	conf_fail(ld, ld->line,
		  "%s: '%s' is not a size (bytes, or a number followed by kB, MB or GB)", label,
		  text);
	return false;
out_of_range:
	conf_fail(ld, ld->line, "%s: %s is out of range (%ld..%ld bytes)", label, text, min, max);
	return false;
}

/* Splits a comma-separated list of names, blanks trimmed, empty items
 * skipped, into a new NULL-terminated array at *OUT. */
static bool conf_parse_list(ConfLoad *ld, const char *label, const char *text, char ***out)
{
	size_t cap = 1;
	for (const char *p = text; *p; p++)
		cap += *p == ',';
	char **v = calloc(cap + 1, sizeof(*v));
	if (!v) {
		conf_fail(ld, ld->line, "out of memory");
		return false;
	}
	size_t n = 0;
	const char *p = text;
	for (;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		while (p < end && isspace((unsigned char)*p))
			p++;
		const char *last = end;
		while (last > p && isspace((unsigned char)last[-1]))
			last--;
		size_t len = (size_t)(last - p);
		if (len > CONF_MAX_IDENT) {
			conf_fail(ld, ld->line, "%s: '%.*s' is longer than %d bytes", label,
				  (int)len, p, CONF_MAX_IDENT);
			conf_strv_free(v);
			return false;
		}
		if (len > 0) {
			v[n] = strndup(p, len);
			if (!v[n]) {
				conf_fail(ld, ld->line, "out of memory");
				conf_strv_free(v);
				return false;
			}
			n++;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	conf_strv_free(*out);
	*out = v;
	return true;
}

/* ---- [pgflip] ---- */

static bool conf_set_setting(ConfLoad *ld, const char *key, const char *value)
{
	const ConfSetting *s = conf_settings;
	while (s->name && strcmp(s->name, key) != 0)
		s++;
	if (!s->name) {
		conf_fail(ld, ld->line, "unknown key '%s' in [pgflip]", key);
		return false;
	}
	if (strcmp(key, "admin_socket") == 0)
		ld->admin_socket_line = ld->line;
	if (strcmp(key, "unix_socket_dir") == 0)
		ld->unix_socket_dir_line = ld->line;
	if (strcmp(key, "route_db") == 0)
		ld->route_db_line = ld->line;
	char host[CONF_MAX_HOST + 1];
	int port;
	if (strcmp(key, "metrics_listen") == 0 && value[0] && !conf_hostport_parse(value, host, sizeof(host), &port)) {
		conf_fail(ld, ld->line, "metrics_listen: '%s' is not HOST:PORT (such as 127.0.0.1:9127 or [::1]:9127)",
			  value);
		return false;
	}
	if (strcmp(key, "admin_db") == 0)
		ld->admin_db_line = ld->line;

	char *field = (char *)ld->conf + s->offset;
	switch (s->kind) {
	case CONF_KIND_STR:
		return conf_set_string(ld, (char **)(void *)field, value);
	case CONF_KIND_PATH:
		if (value[0] == '\0') {
			free(*(char **)(void *)field);
			*(char **)(void *)field = NULL;
			return true;
		}
		return conf_set_string(ld, (char **)(void *)field, value);
	case CONF_KIND_INT:
		return conf_parse_int(ld, key, value, s->min, s->max, (int *)(void *)field);
	case CONF_KIND_OCTAL:
		return conf_parse_octal(ld, key, value, s->min, s->max, (int *)(void *)field);
	case CONF_KIND_MS:
		return conf_parse_ms(ld, key, value, s->min, s->max, (int *)(void *)field);
	case CONF_KIND_BYTES:
		return conf_parse_bytes(ld, key, value, s->min, s->max, (uint32_t *)(void *)field);
	case CONF_KIND_LIST:
		return conf_parse_list(ld, key, value, (char ***)(void *)field);
	case CONF_KIND_RATIO:
		return conf_parse_ratio(ld, key, value, s->min, s->max, (double *)(void *)field);
	case CONF_KIND_WORD: {
		int v;
		if (!conf_parse_word(ld, key, s->words, value, &v))
			return false;
		/* The enums of Conf are int-sized (checked below). */
		memcpy(field, &v, sizeof(v));
		return true;
	}
	case CONF_KIND_WORD_SET:
		return conf_parse_word_set(ld, key, s->words, value, (unsigned *)(void *)field);
	}
	return false;
}

static void conf_free_fields(Conf *conf);
static bool conf_set_defaults(Conf *conf);

/* The words of WORDS whose bits are all in SET, comma-separated, into
 * OUT (N bytes): the first word of each exact match only, so "secure"
 * rather than "tlsv1.2,tlsv1.3". */
static void conf_word_set_text(const ConfWord *words, unsigned set, char *out, size_t n)
{
	for (const ConfWord *w = words; w->name; w++)
		if ((unsigned)w->value == set) {
			snprintf(out, n, "%s", w->name);
			return;
		}
	size_t o = 0;
	out[0] = '\0';
	for (const ConfWord *w = words; w->name && o < n; w++)
		if ((unsigned)w->value && ((unsigned)w->value & (unsigned)(w->value - 1)) == 0 &&
		    (set & (unsigned)w->value))
			o += (size_t)snprintf(out + o, n - o, "%s%s", o ? "," : "", w->name);
}

/* The value of setting S in CONF, as the file writes it, into OUT (N bytes). */
static void conf_setting_text(const Conf *conf, const ConfSetting *s, char *out, size_t n)
{
	const char *field = (const char *)conf + s->offset;
	int iv;
	out[0] = '\0';
	switch (s->kind) {
	case CONF_KIND_STR:
	case CONF_KIND_PATH: {
		const char *v = *(char *const *)(const void *)field;
		snprintf(out, n, "%s", v ? v : "");
		return;
	}
	case CONF_KIND_INT:
		memcpy(&iv, field, sizeof(iv));
		snprintf(out, n, "%d", iv);
		return;
	case CONF_KIND_OCTAL:
		memcpy(&iv, field, sizeof(iv));
		snprintf(out, n, "0%o", (unsigned)iv);
		return;
	case CONF_KIND_MS:
		memcpy(&iv, field, sizeof(iv));
		if (iv % 1000 == 0)
			snprintf(out, n, "%d", iv / 1000);
		else
			snprintf(out, n, "%.3f", iv / 1000.0);
		return;
	case CONF_KIND_BYTES: {
		uint32_t b;
		memcpy(&b, field, sizeof(b));
		snprintf(out, n, "%u", (unsigned)b);
		return;
	}
	case CONF_KIND_RATIO: {
		double d;
		memcpy(&d, field, sizeof(d));
		snprintf(out, n, "%g", d);
		return;
	}
	case CONF_KIND_LIST: {
		char *const *v = *(char **const *)(const void *)field;
		size_t o = 0;
		for (size_t i = 0; v && v[i] && o < n; i++)
			o += (size_t)snprintf(out + o, n - o, "%s%s", i ? "," : "", v[i]);
		return;
	}
	case CONF_KIND_WORD:
		memcpy(&iv, field, sizeof(iv));
		for (const ConfWord *w = s->words; w->name; w++)
			if (w->value == iv) {
				snprintf(out, n, "%s", w->name);
				return;
			}
		return;
	case CONF_KIND_WORD_SET: {
		unsigned set;
		memcpy(&set, field, sizeof(set));
		conf_word_set_text(s->words, set, out, n);
		return;
	}
	}
}

/* Keys that a reload reads but the running process does not apply: the
 * listening sockets and the pidfile are set up at start only. */
static bool conf_setting_changeable(const char *name)
{
	static const char *const fixed[] = {"listen_addr", "listen_port", "unix_socket_dir", "admin_socket",
					    "unix_socket_mode", "unix_socket_group", "pidfile", "metrics_listen"};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if (strcmp(fixed[i], name) == 0)
			return false;
	return true;
}

bool conf_setting_show(const Conf *conf, size_t i, const char **name, char *value, char *deflt, size_t n,
		       bool *changeable)
{
	if (i >= sizeof(conf_settings) / sizeof(conf_settings[0]) - 1)
		return false;
	const ConfSetting *s = &conf_settings[i];
	*name = s->name;
	*changeable = conf_setting_changeable(s->name);
	conf_setting_text(conf, s, value, n);
	Conf defaults;
	memset(&defaults, 0, sizeof(defaults));
	if (conf_set_defaults(&defaults))
		conf_setting_text(&defaults, s, deflt, n);
	else
		snprintf(deflt, n, "?");
	conf_free_fields(&defaults);
	return true;
}

_Static_assert(sizeof(ConfPoolMode) == sizeof(int) && sizeof(ConfLogLevel) == sizeof(int) &&
		       sizeof(ConfLogFormat) == sizeof(int) &&
		       sizeof(ConfAuthType) == sizeof(int) && sizeof(ConfTlsMode) == sizeof(int) &&
		       sizeof(ConfCheckSearchPath) == sizeof(int),
	       "conf_set_setting stores enum keys as int");

bool conf_hostport_parse(const char *text, char *host, size_t hostlen, int *port)
{
	const char *colon, *h = text;
	size_t hlen;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close || close[1] != ':')
			return false;
		h = text + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(text, ':');
		if (!colon || memchr(text, ':', (size_t)(colon - text)))
			return false; /* an IPv6 address needs its brackets */
		hlen = (size_t)(colon - text);
	}
	if (hlen == 0 || hlen >= hostlen)
		return false;
	const char *digits = colon + 1;
	char *end;
	errno = 0;
	long v = strtol(digits, &end, 10);
	if (!isdigit((unsigned char)digits[0]) || *end || errno || v < 1 || v > 65535)
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)v;
	return true;
}

const char *conf_canary_key_to_str(ConfCanaryKey key)
{
	for (const ConfWord *w = conf_canary_keys; w->name; w++) {
		if (w->value == (int)key)
			return w->name;
	}
	return "unknown";
}

bool conf_canary_key_parse(const char *word, ConfCanaryKey *key)
{
	int v = conf_word_value(conf_canary_keys, word);
	if (v < 0)
		return false;
	*key = (ConfCanaryKey)v;
	return true;
}

const char *conf_tls_mode_to_str(ConfTlsMode mode)
{
	for (const ConfWord *w = conf_tls_modes; w->name; w++) {
		if (w->value == (int)mode)
			return w->name;
	}
	return "unknown";
}

/* ---- [databases] ---- */

static void conf_database_clear(ConfDatabase *db)
{
	free(db->name);
	free(db->conninfo);
	free(db->user);
	free(db->dbname);
	conf_strv_free(db->keywords);
	conf_strv_free(db->values);
	memset(db, 0, sizeof(*db));
}

/*
 * Scans the "keyword = value" pair of a libpq conninfo that starts at P (no
 * leading blank) with libpq's grammar: blanks around '=', a value either
 * single-quoted or up to the next blank, backslash escapes in both. Fills
 * PAIR, with the value unquoted into VAL (room for strlen(P) + 1 bytes).
 * Returns false where the grammar breaks (no '=', unterminated quote).
 */
typedef struct ConfPair {
	const char *kw;
	size_t kw_len;
	const char *end;   /* just after the value */
} ConfPair;

static bool conf_scan_pair(const char *p, ConfPair *pair, char *val)
{
	pair->kw = p;
	while (*p && !isspace((unsigned char)*p) && *p != '=')
		p++;
	pair->kw_len = (size_t)(p - pair->kw);
	while (isspace((unsigned char)*p))
		p++;
	if (*p != '=')
		return false;
	p++;
	while (isspace((unsigned char)*p))
		p++;
	size_t n = 0;
	if (*p == '\'') {
		for (p++; *p && *p != '\''; p++) {
			if (*p == '\\' && p[1])
				p++;
			val[n++] = *p;
		}
		if (*p != '\'')
			return false;
		p++;
	} else {
		for (; *p && !isspace((unsigned char)*p); p++) {
			if (*p == '\\' && p[1])
				p++;
			val[n++] = *p;
		}
	}
	val[n] = '\0';
	pair->end = p;
	return true;
}

/*
 * Copies CONNINFO to a new string at *REST without its pool_mode=X and
 * pool_size=X pairs, which go into DB. Pairs are walked with libpq's grammar
 * (conf_scan_pair), so a password that happens to contain "pool_size=" is
 * left alone. Where the grammar breaks, the rest is copied as it is and
 * PQconninfoParse() reports it in its own words. A URI (postgresql://...)
 * may be followed by blank-separated pool_* pairs and nothing else.
 */
static bool conf_split_pool_keys(ConfLoad *ld, ConfDatabase *db, const char *conninfo, char **rest)
{
	size_t len = strlen(conninfo);
	char *out = malloc(len + 1);
	char *val = malloc(len + 1);
	if (!out || !val) {
		conf_fail(ld, ld->line, "out of memory");
		goto fail;
	}
	size_t n = 0;
	const char *p = conninfo;
	bool uri = conf_has_prefix(p, "postgresql://") || conf_has_prefix(p, "postgres://");
	if (uri) {
		while (*p && !isspace((unsigned char)*p))
			out[n++] = *p++;
	}
	while (*p) {
		const char *start = p;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		ConfPair pair;
		bool scanned = conf_scan_pair(p, &pair, val);
		bool pool_key = scanned && pair.kw_len == 9 &&
				(strncmp(pair.kw, "pool_mode", 9) == 0 ||
				 strncmp(pair.kw, "pool_size", 9) == 0);
		if (uri && !pool_key) {
			conf_fail(ld, ld->line,
				  "database '%s': only pool_mode= and pool_size= may follow a URI, "
				  "not '%s'",
				  db->name, p);
			goto fail;
		}
		if (!scanned) {
			memcpy(out + n, start, strlen(start));
			n += strlen(start);
			break;
		}
		if (pool_key) {
			bool ok;
			if (pair.kw[5] == 'm')
				ok = conf_parse_word(ld, "pool_mode", conf_pool_modes, val,
						     &db->pool_mode);
			else
				ok = conf_parse_int(ld, "pool_size", val, 1, CONF_MAX_POOL_SIZE,
						    &db->pool_size);
			if (!ok)
				goto fail;
		} else {
			memcpy(out + n, start, (size_t)(pair.end - start));
			n += (size_t)(pair.end - start);
		}
		p = pair.end;
	}
	out[n] = '\0';
	free(val);
	*rest = out;
	return true;

fail:
	free(out);
	free(val);
	return false;
}

/* Checks CONNINFO with libpq and fills DB's keywords/values, user, dbname. */
static bool conf_database_options(ConfLoad *ld, ConfDatabase *db, const char *conninfo)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &errmsg);
	if (!opts) {
		if (errmsg) {
			size_t len = strlen(errmsg);
			while (len > 0 && isspace((unsigned char)errmsg[len - 1]))
				errmsg[--len] = '\0';
			conf_fail(ld, ld->line, "database '%s': %s", db->name, errmsg);
			PQfreemem(errmsg);
		} else {
			conf_fail(ld, ld->line, "out of memory");
		}
		return false;
	}
	size_t count = 0;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		count += o->val && o->val[0];
	db->keywords = calloc(count + 1, sizeof(char *));
	db->values = calloc(count + 1, sizeof(char *));
	bool ok = db->keywords && db->values;
	size_t i = 0;
	for (PQconninfoOption *o = opts; ok && o->keyword; o++) {
		if (!o->val || !o->val[0])
			continue;
		db->keywords[i] = strdup(o->keyword);
		db->values[i] = strdup(o->val);
		ok = db->keywords[i] && db->values[i];
		i++;
		if (ok && strcmp(o->keyword, "user") == 0)
			ok = (db->user = strdup(o->val)) != NULL;
		if (ok && strcmp(o->keyword, "dbname") == 0)
			ok = (db->dbname = strdup(o->val)) != NULL;
	}
	PQconninfoFree(opts);
	if (!ok)
		conf_fail(ld, ld->line, "out of memory");
	return ok;
}

static bool conf_add_database(ConfLoad *ld, const char *name, const char *value)
{
	Conf *conf = ld->conf;
	if (!conf_name_ok(name)) {
		conf_fail(ld, ld->line, "database name '%s' is not 1 to %d bytes", name,
			  CONF_MAX_IDENT);
		return false;
	}
	for (size_t i = 0; i < conf->n_databases; i++) {
		if (strcmp(conf->databases[i].name, name) == 0) {
			conf_fail(ld, ld->line, "database '%s' is already defined at line %d", name,
				  conf->databases[i].line);
			return false;
		}
	}
	if (conf->n_databases == ld->db_cap) {
		size_t cap = ld->db_cap ? ld->db_cap * 2 : 4;
		ConfDatabase *grown = realloc(conf->databases, cap * sizeof(*grown));
		if (!grown) {
			conf_fail(ld, ld->line, "out of memory");
			return false;
		}
		conf->databases = grown;
		ld->db_cap = cap;
	}

	ConfDatabase db = {.pool_mode = -1, .line = ld->line};
	char *rest = NULL;
	bool ok = (db.name = conf_strdup(ld, name)) && (db.conninfo = conf_strdup(ld, value)) &&
		  conf_split_pool_keys(ld, &db, value, &rest) &&
		  conf_database_options(ld, &db, rest);
	free(rest);
	if (!ok) {
		conf_database_clear(&db);
		return false;
	}
	conf->databases[conf->n_databases++] = db;
	return true;
}

/* ---- [routes] ---- */

static bool conf_check_schema(ConfLoad *ld, const char *label, const char *schema)
{
	char why[200];
	if (conf_route_schema_check(schema, why, sizeof(why)))
		return true;
	conf_fail(ld, ld->line, "%s: %s", label, why);
	return false;
}

/* canary = SCHEMA PERCENT (a '%' after PERCENT is allowed). */
static bool conf_set_canary(ConfLoad *ld, const char *value)
{
	ConfRoutes *r = &ld->conf->routes;
	const char *sp = value;
	while (*sp && !isspace((unsigned char)*sp))
		sp++;
	const char *pct = sp;
	while (isspace((unsigned char)*pct))
		pct++;
	size_t schema_len = (size_t)(sp - value);
	if (schema_len == 0 || *pct == '\0' || strpbrk(pct, " \t")) {
		conf_fail(ld, ld->line, "canary: expected SCHEMA PERCENT, got '%s'", value);
		return false;
	}
	char number[16];
	size_t pct_len = strlen(pct);
	if (pct[pct_len - 1] == '%')
		pct_len--;
	if (pct_len >= sizeof(number)) {
		conf_fail(ld, ld->line, "canary: '%s' is not a number", pct);
		return false;
	}
	memcpy(number, pct, pct_len);
	number[pct_len] = '\0';
	int percent;
	if (!conf_parse_int(ld, "canary", number, 0, 100, &percent))
		return false;
	char *schema = strndup(value, schema_len);
	if (!schema) {
		conf_fail(ld, ld->line, "out of memory");
		return false;
	}
	if (!conf_check_schema(ld, "canary", schema)) {
		free(schema);
		return false;
	}
	free(r->canary_schema);
	r->canary_schema = schema;
	r->canary_percent = percent;
	return true;
}

static bool conf_add_pin(ConfLoad *ld, ConfPinKind kind, const char *key, const char *pattern,
			 const char *schema)
{
	ConfRoutes *r = &ld->conf->routes;
	ConfPin pin = {.kind = kind, .line = ld->line};
	if (pattern[0] == '\0') {
		conf_fail(ld, ld->line, "%s: nothing after the '.'", key);
		return false;
	}
	if (kind == CONF_PIN_USER && strlen(pattern) > CONF_MAX_IDENT) {
		conf_fail(ld, ld->line, "%s: user name longer than %d bytes", key, CONF_MAX_IDENT);
		return false;
	}
	if (kind == CONF_PIN_ADDR && !conf_cidr_parse(pattern, &pin.cidr)) {
		conf_fail(ld, ld->line,
			  "%s: '%s' is not an address or CIDR (such as 10.0.0.0/8 or ::1/128)", key,
			  pattern);
		return false;
	}
	if (!conf_check_schema(ld, key, schema))
		return false;
	for (size_t i = 0; i < r->n_pins; i++) {
		const ConfPin *other = &r->pins[i];
		bool same = other->kind == kind &&
			    (kind == CONF_PIN_ADDR
				     ? memcmp(&other->cidr, &pin.cidr, sizeof(pin.cidr)) == 0
				     : strcmp(other->key, pattern) == 0);
		if (same) {
			conf_fail(ld, ld->line, "%s is already routed at line %d", key,
				  other->line);
			return false;
		}
	}
	if (r->n_pins == ld->pin_cap) {
		size_t cap = ld->pin_cap ? ld->pin_cap * 2 : 8;
		ConfPin *grown = realloc(r->pins, cap * sizeof(*grown));
		if (!grown) {
			conf_fail(ld, ld->line, "out of memory");
			return false;
		}
		r->pins = grown;
		ld->pin_cap = cap;
	}
	pin.key = conf_strdup(ld, pattern);
	pin.schema = conf_strdup(ld, schema);
	if (!pin.key || !pin.schema) {
		free(pin.key);
		free(pin.schema);
		return false;
	}
	r->pins[r->n_pins++] = pin;
	return true;
}

static bool conf_set_route(ConfLoad *ld, const char *key, const char *value)
{
	static const struct {
		const char *prefix;
		ConfPinKind kind;
	} pins[] = {
		{"app.", CONF_PIN_APP},
		{"user.", CONF_PIN_USER},
		{"addr.", CONF_PIN_ADDR},
	};
	if (strcmp(key, "default") == 0) {
		return conf_check_schema(ld, "default", value) &&
		       conf_set_string(ld, &ld->conf->routes.default_schema, value);
	}
	if (strcmp(key, "canary") == 0)
		return conf_set_canary(ld, value);
	if (strcmp(key, "canary_key") == 0) {
		int v;
		if (!conf_parse_word(ld, key, conf_canary_keys, value, &v))
			return false;
		ld->conf->routes.canary_key = (ConfCanaryKey)v;
		return true;
	}
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		if (conf_has_prefix(key, pins[i].prefix)) {
			const char *pattern = key + strlen(pins[i].prefix);
			return conf_add_pin(ld, pins[i].kind, key, pattern, value);
		}
	}
	conf_fail(ld, ld->line,
		  "unknown key '%s' in [routes] (expected default, canary, canary_key, app.*, "
		  "user.* or addr.*)",
		  key);
	return false;
}

/* ---- inih glue ---- */

static bool conf_known_section(const char *name, size_t len)
{
	static const char *const sections[] = {"pgflip", "databases", "routes"};
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (strlen(sections[i]) == len && strncmp(sections[i], name, len) == 0)
			return true;
	}
	return false;
}

/* After fgets filled its buffer with no '\n': true when the line ends right
 * there (end of file, or a '\n', which is consumed). */
static bool conf_line_ends(FILE *f)
{
	int c = getc(f);
	if (c == EOF || c == '\n')
		return true;
	ungetc(c, f);
	return false;
}

ConfLineStatus conf_line_read(FILE *f, char *buf, int size, size_t *len)
{
	/* fgets ends what it read with a NUL, and the bytes it read may hold
	 * NULs of their own, which strlen cannot tell from the end. With the
	 * buffer filled beforehand with a byte that is not NUL, the last NUL is
	 * the end, and one before it a NUL in the file. */
	memset(buf, '\n', (size_t)size);
	errno = 0;
	if (!fgets(buf, size, f)) {
		if (!ferror(f))
			return CONF_LINE_EOF;
		errno = errno ? errno : EIO;
		return CONF_LINE_ERROR;
	}
	*len = strlen(buf);
	if ((char *)memrchr(buf, '\0', (size_t)size) != buf + *len)
		return CONF_LINE_NUL;
	if ((*len == 0 || buf[*len - 1] != '\n') && !conf_line_ends(f))
		return CONF_LINE_LONG;
	return CONF_LINE_OK;
}

ConfLineStatus conf_line_skip(FILE *f)
{
	int c;
	errno = 0;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == '\0')
			return CONF_LINE_NUL;
	}
	if (c == EOF && ferror(f)) {
		errno = errno ? errno : EIO;
		return CONF_LINE_ERROR;
	}
	return CONF_LINE_OK;
}

/*
 * ini_reader: one line from conf_line_read with the checks of the file
 * header. Returns BUF with one line, or NULL at end of file, on a read error
 * (read_errno set) or once an error is recorded (which ends the parse early).
 */
static char *conf_read_line(char *buf, int size, void *stream)
{
	ConfLoad *ld = stream;
	if (ld->failed)
		return NULL;
	size_t len = 0;
	ConfLineStatus st = conf_line_read(ld->file, buf, size, &len);
	if (st == CONF_LINE_EOF || st == CONF_LINE_ERROR) {
		if (st == CONF_LINE_ERROR)
			ld->read_errno = errno;
		return NULL;
	}
	ld->line++;
	if (st == CONF_LINE_NUL) {
		/* refused even in a comment: the rest of the line would be
		 * lost, and the skip of a long comment would eat the next line */
		conf_fail(ld, ld->line, "NUL byte (a config file is text)");
		return NULL;
	}
	if (ld->line == 1 && conf_has_prefix(buf, "\xEF\xBB\xBF")) {
		memmove(buf, buf + 3, len - 3 + 1);
		len -= 3;
	}
	size_t lead = strspn(buf, " \t");
	bool comment = buf[lead] == ';' || buf[lead] == '#';
	if (st == CONF_LINE_LONG) {
		if (!comment) {
			/* fgets keeps SIZE - 1 bytes: the longest line, '\n' not counted. */
			conf_fail(ld, ld->line, "line too long (max %d bytes)", size - 1);
			return NULL;
		}
		st = conf_line_skip(ld->file);
		if (st == CONF_LINE_NUL) {
			conf_fail(ld, ld->line, "NUL byte (a config file is text)");
			return NULL;
		}
		if (st == CONF_LINE_ERROR) {
			ld->read_errno = errno;
			return NULL;
		}
	}
	if (comment)
		return buf;
	memmove(buf, buf + lead, len - lead + 1);
	len -= lead;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (conf_is_control(c) && c != '\t' && c != '\r' && c != '\n') {
			conf_fail(ld, ld->line, "control character 0x%02x", c);
			return NULL;
		}
	}
	if (buf[0] == '[') {
		char *close = strchr(buf, ']');
		if (!close)
			return buf; /* inih reports it as a syntax error */
		size_t name_len = (size_t)(close - buf - 1);
		if (!conf_known_section(buf + 1, name_len)) {
			conf_fail(ld, ld->line,
				  "unknown section [%.*s] "
				  "(expected [pgflip], [databases] or [routes])",
				  (int)name_len, buf + 1);
			return NULL;
		}
		if (name_len == 6 && strncmp(buf + 1, "routes", 6) == 0)
			ld->seen_routes = true;
		return buf;
	}
	char *eq = strchr(buf, '=');
	char *end = eq ? eq : buf + len;
	for (char *p = buf; p < end; p++) {
		if (*p == ':')
			*p = CONF_COLON_STANDIN;
	}
	return buf;
}

/* ini_handler: one KEY = VALUE of SECTION. Returns 1 when taken, 0 on error. */
static int conf_handle(void *user, const char *section, const char *name, const char *value)
{
	ConfLoad *ld = user;
	if (ld->failed)
		return 0;
	char *key = conf_strdup(ld, name);
	if (!key)
		return 0;
	for (char *p = key; *p; p++) {
		if (*p == CONF_COLON_STANDIN)
			*p = ':';
	}
	bool ok;
	if (strcmp(section, "pgflip") == 0) {
		ok = conf_set_setting(ld, key, value);
	} else if (strcmp(section, "databases") == 0) {
		ok = conf_add_database(ld, key, value);
	} else if (strcmp(section, "routes") == 0) {
		ok = conf_set_route(ld, key, value);
	} else if (section[0] == '\0') {
		conf_fail(ld, ld->line, "key '%s' before any [section]", key);
		ok = false;
	} else {
		conf_fail(ld, ld->line, "unknown section [%s]", section);
		ok = false;
	}
	free(key);
	return ok;
}

/* Default values of conf.h; false when out of memory. */
static bool conf_set_defaults(Conf *conf)
{
	conf->listen_addr = strdup("127.0.0.1");
	conf->listen_port = 6432;
	conf->unix_socket_dir = strdup("/tmp");
	conf->pool_mode = CONF_POOL_SESSION;
	conf->default_pool_size = 20;
	conf->min_pool_size = 0;
	conf->reserve_pool_size = 0;
	conf->max_client_conn = 100;
	conf->max_db_connections = 0;
	conf->max_prepared_statements = 200;
	conf->admin_users = calloc(1, sizeof(char *));
	conf->log_level = CONF_LOG_INFO;
	conf->auth_type = CONF_AUTH_TRUST;
	conf->server_connect_timeout_ms = 15 * 1000;
	conf->server_login_retry_ms = 15 * 1000;
	conf->backfill_max_latency_ratio = 1.2;
	conf->ddl_drain_timeout_ms = 100;
	conf->server_idle_timeout_ms = 600 * 1000;
	conf->server_lifetime_ms = 3600 * 1000;
	conf->query_wait_timeout_ms = 120 * 1000;
	conf->reserve_pool_timeout_ms = 5 * 1000;
	conf->shutdown_timeout_ms = 30 * 1000;
	conf->max_packet_size = 64u * 1024u * 1024u;
	conf->server_reset_query = strdup("DISCARD ALL");
	conf->client_login_timeout_ms = 60 * 1000;
	conf->client_idle_timeout_ms = 0;
	conf->track_extra_parameters = calloc(1, sizeof(char *));
	conf->ignore_startup_parameters = calloc(1, sizeof(char *));
	conf->server_check_search_path = CONF_CHECK_AUTO;
	/* PgBouncer's defaults (its auth_query as documented up to 1.22; newer
	 * releases read pg_authid, which needs a superuser) */
	conf->auth_query = strdup("SELECT usename, passwd FROM pg_shadow WHERE usename=$1");
	conf->stats_users = calloc(1, sizeof(char *));
	conf->unix_socket_mode = 0777;
	conf->client_tls_sslmode = CONF_TLS_DISABLE;
	conf->client_tls_protocols = CONF_TLS_SECURE;
	conf->client_tls_ciphers = strdup("default");
	conf->server_tls_sslmode = CONF_TLS_PREFER;
	conf->log_format = CONF_LOG_TEXT;
	conf->syslog_ident = strdup("pgflip");
	conf->syslog_facility = LOG_DAEMON;
	conf->admin_db = strdup("pgflip");
	conf->stats_period = 60;
	return conf->syslog_ident && conf->admin_db && conf->listen_addr && conf->unix_socket_dir && conf->admin_users &&
	       conf->server_reset_query && conf->track_extra_parameters &&
	       conf->ignore_startup_parameters && conf->auth_query && conf->stats_users &&
	       conf->client_tls_ciphers;
}

/*
 * The [pgflip] keys that need each other, as PgBouncer's documentation of
 * each states them ("TLS settings", "Authentication settings"). The files
 * are not opened here: TLS files are the proxy's to load. Errors are of the
 * file as a whole (line 0).
 */
static bool conf_check_auth_keys(ConfLoad *ld)
{
	const Conf *c = ld->conf;
	const char *mode = conf_tls_mode_to_str(c->client_tls_sslmode);
	bool verify = c->client_tls_sslmode >= CONF_TLS_VERIFY_CA;
	const char *auth = conf_auth_type_to_str(c->auth_type);
	if (c->client_tls_sslmode != CONF_TLS_DISABLE && !c->client_tls_cert_file)
		conf_fail(ld, 0, "client_tls_sslmode = %s needs client_tls_cert_file", mode);
	else if (c->client_tls_sslmode != CONF_TLS_DISABLE && !c->client_tls_key_file)
		conf_fail(ld, 0, "client_tls_sslmode = %s needs client_tls_key_file", mode);
	else if (verify && !c->client_tls_ca_file)
		conf_fail(ld, 0,
			  "client_tls_sslmode = %s needs client_tls_ca_file (to verify client "
			  "certificates)",
			  mode);
	else if (c->auth_type == CONF_AUTH_CERT && !verify)
		conf_fail(ld, 0,
			  "auth_type = cert needs client_tls_sslmode = verify-ca or verify-full "
			  "(only then is a client certificate asked for and verified), not %s",
			  mode);
	else if (c->auth_type == CONF_AUTH_HBA && !c->auth_hba_file)
		conf_fail(ld, 0, "auth_type = hba needs auth_hba_file");
	else if ((c->auth_type == CONF_AUTH_MD5 || c->auth_type == CONF_AUTH_SCRAM ||
		  c->auth_type == CONF_AUTH_HBA) &&
		 !c->auth_file && !c->auth_user)
		conf_fail(ld, 0, "auth_type = %s needs auth_file or auth_user (where the users' "
			  "secrets come from)", auth);
	else if (!c->server_tls_cert_file != !c->server_tls_key_file)
		conf_fail(ld, 0, "%s needs %s",
			  c->server_tls_cert_file ? "server_tls_cert_file" : "server_tls_key_file",
			  c->server_tls_cert_file ? "server_tls_key_file" : "server_tls_cert_file");
	return !ld->failed;
}

/* route_db: unset, the first [databases] entry other than the fallback
 * "*"; empty, none (routes in memory only); else an entry of its own. */
static bool conf_finish_route_db(ConfLoad *ld)
{
	Conf *conf = ld->conf;
	if (!ld->route_db_line) {
		for (size_t i = 0; i < conf->n_databases; i++)
			if (strcmp(conf->databases[i].name, "*") != 0)
				return conf_set_string(ld, &conf->route_db, conf->databases[i].name);
		return true;
	}
	if (conf->route_db[0] == '\0') {
		free(conf->route_db);
		conf->route_db = NULL;
		return true;
	}
	if (strcmp(conf->route_db, "*") == 0) {
		conf_fail(ld, ld->route_db_line,
			  "route_db: '*' is the fallback entry, it names no database of its own");
		return false;
	}
	for (size_t i = 0; i < conf->n_databases; i++)
		if (strcmp(conf->databases[i].name, conf->route_db) == 0)
			return true;
	conf_fail(ld, ld->route_db_line, "route_db: no [databases] entry '%s'", conf->route_db);
	return false;
}

/* admin_db: a name a client can give (conf_name_ok), and not one of
 * [databases]: the console would hide that entry. "" = no console. */
static bool conf_finish_admin_db(ConfLoad *ld)
{
	Conf *conf = ld->conf;
	if (conf->admin_db[0] == '\0')
		return true;
	if (!conf_name_ok(conf->admin_db) || strcmp(conf->admin_db, "*") == 0) {
		conf_fail(ld, ld->admin_db_line, "admin_db: '%s' is not a database name", conf->admin_db);
		return false;
	}
	for (size_t i = 0; i < conf->n_databases; i++) {
		const ConfDatabase *db = &conf->databases[i];
		if (strcmp(db->name, conf->admin_db) != 0)
			continue;
		conf_fail(ld, ld->admin_db_line ? ld->admin_db_line : db->line,
			  "admin_db: '%s' is also a [databases] entry (the admin console would hide it)",
			  conf->admin_db);
		return false;
	}
	return true;
}

/* Checks of the file as a whole, and values derived from several keys. */
static bool conf_finish(ConfLoad *ld)
{
	Conf *conf = ld->conf;
	if (conf->n_databases == 0) {
		conf_fail(ld, 0, "[databases] has no entry");
		return false;
	}
	if (!ld->seen_routes || !conf->routes.default_schema) {
		conf_fail(ld, 0, "[routes] default is required");
		return false;
	}
	if (!ld->admin_socket_line && conf->unix_socket_dir[0] != '\0') {
		size_t dir_len = strlen(conf->unix_socket_dir);
		/* "/run/" and "/" must not give "//" */
		while (dir_len > 0 && conf->unix_socket_dir[dir_len - 1] == '/')
			dir_len--;
		char *path;
		if (asprintf(&path, "%.*s/pgflip-%d.admin", (int)dir_len, conf->unix_socket_dir,
			     conf->listen_port) < 0) {
			conf_fail(ld, 0, "out of memory");
			return false;
		}
		free(conf->admin_socket);
		conf->admin_socket = path;
	} else if (!ld->admin_socket_line && !conf_set_string(ld, &conf->admin_socket, "")) {
		return false;
	}
	if (strlen(conf->admin_socket) >= CONF_SUN_PATH_SIZE) {
		int line = ld->admin_socket_line ? ld->admin_socket_line : ld->unix_socket_dir_line;
		conf_fail(ld, line,
			  "admin_socket: '%s' is longer than a Unix socket path may be (%zu bytes)",
			  conf->admin_socket, CONF_SUN_PATH_SIZE - 1);
		return false;
	}
	if (!conf_check_auth_keys(ld) || !conf_finish_route_db(ld) || !conf_finish_admin_db(ld))
		return false;
	if (!conf_auth_load(conf, ld->err, ld->errlen)) {
		ld->failed = true;
		return false;
	}
	return true;
}

Conf *conf_load(const char *path, char *err, size_t errlen)
{
	if (errlen > 0)
		err[0] = '\0';
	Conf *conf = calloc(1, sizeof(*conf));
	if (!conf || !(conf->path = strdup(path)) || !conf_set_defaults(conf)) {
		if (errlen > 0)
			snprintf(err, errlen, "%s:0: out of memory", path);
		conf_free(conf);
		return NULL;
	}
	ConfLoad ld = {.conf = conf, .err = err, .errlen = errlen};

	ld.file = fopen(path, "r");
	if (!ld.file) {
		conf_fail(&ld, 0, "cannot open: %s", strerror(errno));
		conf_free(conf);
		return NULL;
	}
	int rc = ini_parse_stream(conf_read_line, &ld, conf_handle, &ld);
	fclose(ld.file);

	if (rc > 0 && (!ld.failed || rc < ld.err_line)) {
		/* inih found a line it could not read (and called no handler). */
		ld.failed = false;
		conf_fail(&ld, rc, "syntax error (expected [section] or KEY = VALUE)");
	} else if (rc < 0) {
		conf_fail(&ld, 0, "out of memory");
	}
	if (ld.read_errno)
		conf_fail(&ld, 0, "cannot read: %s", strerror(ld.read_errno));
	if (ld.failed || !conf_finish(&ld)) {
		conf_free(conf);
		return NULL;
	}
	return conf;
}

/* Everything a Conf owns, not the Conf itself (conf_setting_show's
 * defaults live on the stack). */
static void conf_free_fields(Conf *conf)
{
	free(conf->path);
	free(conf->listen_addr);
	free(conf->unix_socket_dir);
	free(conf->admin_socket);
	free(conf->logfile);
	free(conf->pidfile);
	conf_strv_free(conf->admin_users);
	conf_strv_free(conf->track_extra_parameters);
	conf_strv_free(conf->ignore_startup_parameters);
	free(conf->server_reset_query);
	for (size_t i = 0; i < conf->n_databases; i++)
		conf_database_clear(&conf->databases[i]);
	free(conf->databases);
	for (size_t i = 0; i < conf->routes.n_pins; i++) {
		free(conf->routes.pins[i].key);
		free(conf->routes.pins[i].schema);
	}
	free(conf->routes.pins);
	free(conf->routes.default_schema);
	free(conf->routes.canary_schema);
	free(conf->auth_file);
	free(conf->auth_hba_file);
	free(conf->auth_query);
	free(conf->auth_user);
	conf_strv_free(conf->stats_users);
	free(conf->unix_socket_group);
	free(conf->client_tls_cert_file);
	free(conf->client_tls_key_file);
	free(conf->client_tls_ca_file);
	free(conf->client_tls_ciphers);
	free(conf->server_tls_ca_file);
	free(conf->server_tls_cert_file);
	free(conf->server_tls_key_file);
	free(conf->route_db);
	free(conf->syslog_ident);
	free(conf->metrics_listen);
	free(conf->admin_db);
	conf_auth_clear(conf);
}

void conf_free(Conf *conf)
{
	if (!conf)
		return;
	conf_free_fields(conf);
	free(conf);
}

const ConfDatabase *conf_find_database(const Conf *conf, const char *name)
{
	const ConfDatabase *fallback = NULL;
	if (!conf || !name)
		return NULL;
	for (size_t i = 0; i < conf->n_databases; i++) {
		const ConfDatabase *db = &conf->databases[i];
		if (strcmp(db->name, name) == 0)
			return db;
		if (strcmp(db->name, "*") == 0)
			fallback = db;
	}
	return fallback;
}

/* ---- addresses ---- */

bool conf_cidr_parse(const char *text, ConfCidr *out)
{
	if (!text || !out)
		return false;
	/* An IPv6 address in text is at most 45 bytes (INET6_ADDRSTRLEN - 1). */
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t addr_len = slash ? (size_t)(slash - text) : strlen(text);
	if (addr_len == 0 || addr_len >= sizeof(addr))
		return false;
	memcpy(addr, text, addr_len);
	addr[addr_len] = '\0';

	ConfCidr c = {0};
	int max_len;
	if (inet_pton(AF_INET, addr, c.addr) == 1) {
		c.family = AF_INET;
		max_len = 32;
	} else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
		c.family = AF_INET6;
		max_len = 128;
	} else {
		return false;
	}

	c.prefix_len = max_len;
	if (slash) {
		const char *p = slash + 1;
		/* 1 to 3 digits: no sign, no blanks, nothing after. */
		size_t digits = strspn(p, "0123456789");
		if (digits == 0 || digits > 3 || p[digits] != '\0')
			return false;
		c.prefix_len = atoi(p);
		if (c.prefix_len > max_len)
			return false;
	}
	for (int bit = c.prefix_len; bit < max_len; bit++)
		c.addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	*out = c;
	return true;
}

/* True when the first PREFIX_LEN bits of A and B are equal. */
static bool conf_prefix_equal(const uint8_t *a, const uint8_t *b, int prefix_len)
{
	int whole = prefix_len / 8;
	if (memcmp(a, b, (size_t)whole) != 0)
		return false;
	int rest = prefix_len % 8;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool conf_cidr_match(const ConfCidr *cidr, int family, const uint8_t *addr)
{
	/* ::ffff:a.b.c.d, RFC 4291 section 2.5.5.2 */
	static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (!cidr || !addr)
		return false;
	if (cidr->family == AF_INET && family == AF_INET6 && memcmp(addr, v4_mapped, 12) == 0)
		return conf_prefix_equal(cidr->addr, addr + 12, cidr->prefix_len);
	if (cidr->family != family || (family != AF_INET && family != AF_INET6))
		return false;
	return conf_prefix_equal(cidr->addr, addr, cidr->prefix_len);
}

bool conf_route_schema_check(const char *name, char *err, size_t errlen)
{
	size_t n = name ? strlen(name) : 0;
	bool ok = n > 0 && n <= CONF_MAX_IDENT && ((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_');
	for (size_t i = 1; ok && i < n; i++) {
		char ch = name[i];
		ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '$';
	}
	if (!ok) {
		snprintf(err, errlen,
			 "invalid schema name \"%s\": a route must be a lower-case identifier "
			 "([a-z_][a-z0-9_$]*, at most %d bytes)",
			 name ? name : "", CONF_MAX_IDENT);
		return false;
	}
	if (strncmp(name, "pg_", 3) == 0 || strcmp(name, "information_schema") == 0) {
		snprintf(err, errlen, "schema \"%s\" is a system schema: it cannot be a route", name);
		return false;
	}
	return true;
}

bool conf_name_ok(const char *name)
{
	if (!name)
		return false;
	size_t len = strlen(name);
	if (len == 0 || len > CONF_MAX_IDENT)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (conf_is_control((unsigned char)name[i]))
			return false;
	}
	return true;
}
