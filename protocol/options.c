/*
 * protocol/options.c: the StartupMessage's `options` parameter.
 *
 * libpq sends PGOPTIONS (or options= of a conninfo) verbatim as a startup
 * parameter; the server splits it into words and reads them as its own
 * command-line switches. We split it the same way and keep only the switches
 * that are settings, so the proxy can tell what a client asked for.
 *
 * Splitting follows PostgreSQL's pg_split_opts() (src/backend/utils/init/
 * postinit.c): words are separated by white space (isspace() in the C
 * locale); a backslash makes the next character literal, so "\ " is a space
 * inside a word and "\\" a backslash; a backslash at the very end is dropped.
 * Reading follows process_postgres_switches() (src/backend/tcop/postgres.c),
 * which gives -c NAME=VALUE (argument in the same word or the next one) and
 * --NAME=VALUE to ParseLongOption() (src/backend/utils/misc/guc.c): the name
 * ends at the first '=', and each '-' in it becomes '_'.
 *
 * Storage: words are unescaped one after another into the caller's WORK
 * (never longer than their source, each ending in a NUL that takes the place
 * of the separator or the source's own NUL), and names and values are cut in
 * place. The reason for a refusal is written after that area, so it can name
 * the word without any heap memory.
 */
#include <string.h>

#include "protocol/protocol.h"

/* A word is shown in a reason up to this many bytes, then "...": enough to
 * recognise it, and a log line does not carry a 10 kB options string. */
#define OPTIONS_SHOWN_MAX 64

typedef struct OptionsCursor {
	const char *src; /* next unread byte of the options string */
	char *dst;       /* next free byte of the word area */
	char *why;       /* PROTO_OPTIONS_WHY_MAX bytes for the reason */
} OptionsCursor;

/* White space as isspace() sees it in the C locale, which is what
 * pg_split_opts() uses. */
static bool options_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* options_next_word: unescapes the next word into the word area and returns
 * it, or NULL when only white space is left. */
static char *options_next_word(OptionsCursor *cur)
{
	const char *s = cur->src;
	while (options_space(*s))
		s++;
	if (*s == '\0') {
		cur->src = s;
		return NULL;
	}
	char *word = cur->dst;
	char *d = word;
	bool escaped = false;
	for (; *s != '\0'; s++) {
		if (!escaped && options_space(*s))
			break;
		if (!escaped && *s == '\\') {
			escaped = true;
			continue;
		}
		escaped = false;
		*d++ = *s;
	}
	*d++ = '\0';
	cur->src = s;
	cur->dst = d;
	return word;
}

/* options_show: appends S to the reason at *AT (AVAIL bytes left), control
 * bytes as '?', at most OPTIONS_SHOWN_MAX bytes. */
static void options_show(char **at, size_t *avail, const char *s)
{
	size_t i = 0;
	for (; s[i] != '\0' && *avail > 1 && i < OPTIONS_SHOWN_MAX; i++) {
		unsigned char c = (unsigned char)s[i];
		*(*at)++ = c < 0x20 || c == 0x7f ? '?' : (char)c;
		(*avail)--;
	}
	if (s[i] != '\0' && i == OPTIONS_SHOWN_MAX) {
		for (const char *dots = "..."; *dots && *avail > 1; dots++) {
			*(*at)++ = *dots;
			(*avail)--;
		}
	}
	**at = '\0';
}

/* options_refuse: writes `options: "SWITCH ARG" WHAT` (ARG may be NULL) as
 * the reason, drops the settings found so far (*N = 0) and returns PROTO_BAD. */
static ProtoStatus options_refuse(OptionsCursor *cur, const char **why, size_t *n, const char *word, const char *arg,
				  const char *what)
{
	*n = 0;
	char *at = cur->why;
	size_t avail = PROTO_OPTIONS_WHY_MAX;
	/* The fixed parts fit: the longest WHAT is under 64 bytes and each shown
	 * word under OPTIONS_SHOWN_MAX + 3 (see PROTO_OPTIONS_WHY_MAX). */
	options_show(&at, &avail, "options: \"");
	options_show(&at, &avail, word);
	if (arg) {
		options_show(&at, &avail, " ");
		options_show(&at, &avail, arg);
	}
	options_show(&at, &avail, "\" ");
	options_show(&at, &avail, what);
	*why = cur->why;
	return PROTO_BAD;
}

ProtoStatus proto_options_parse(const char *options, char *work, size_t worklen, ProtoSetting *out, size_t max,
				size_t *n, const char **why)
{
	size_t optlen = strlen(options);
	*n = 0;
	if (worklen < optlen || worklen - optlen < 1 + PROTO_OPTIONS_WHY_MAX) {
		*why = "options: work buffer too small";
		return PROTO_BAD;
	}
	OptionsCursor cur = {.src = options, .dst = work, .why = work + optlen + 1};
	char *word;
	while ((word = options_next_word(&cur)) != NULL) {
		const char *arg = NULL; /* the next word, when it holds -c's argument */
		char *setting;
		if (word[0] == '-' && word[1] == 'c') {
			if (word[2] != '\0') {
				setting = word + 2;
			} else {
				setting = options_next_word(&cur);
				if (!setting)
					return options_refuse(&cur, why, n, word, NULL,
							      "needs an argument (-c name=value)");
				arg = setting;
			}
		} else if (word[0] == '-' && word[1] == '-' && word[2] != '\0') {
			setting = word + 2;
		} else {
			return options_refuse(&cur, why, n, word, NULL,
					      word[0] == '-' ? "is not a setting (only -c name=value and --name=value)"
							     : "is not a switch (only -c name=value and --name=value)");
		}
		char *eq = strchr(setting, '=');
		if (!eq || eq == setting)
			return options_refuse(&cur, why, n, word, arg,
					      !eq ? "has no value (name=value)" : "has an empty setting name");
		if (*n == max)
			return options_refuse(&cur, why, n, word, arg, "is past the most settings allowed");
		*eq = '\0';
		for (char *p = setting; *p != '\0'; p++)
			if (*p == '-')
				*p = '_';
		out[*n].name = setting;
		out[*n].value = eq + 1;
		(*n)++;
	}
	return PROTO_OK;
}
