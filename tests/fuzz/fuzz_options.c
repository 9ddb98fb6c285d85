/*
 * tests/fuzz/fuzz_options.c: proto_options_parse, the StartupMessage's
 * options parameter.
 *
 * The input up to its first NUL is the options string (an exact heap copy),
 * parsed into an exact heap WORK of PROTO_OPTIONS_WORK_SIZE bytes with room
 * for FUZZ_MAX settings. Checked besides memory safety:
 *   PROTO_OK: *n <= FUZZ_MAX; every name non-empty, free of '-' and '=';
 *     every name and value (and its NUL) inside WORK; and the settings
 *     written back as "-c NAME=VALUE" words, escaped as libpq users escape
 *     PGOPTIONS, parse to the same settings.
 *   PROTO_BAD: *n == 0 and a reason inside WORK (or static), NUL-terminated
 *     within PROTO_OPTIONS_WHY_MAX bytes, printable.
 *   WORK one byte short of the contract is refused, not overrun.
 * Seeds: tests/fuzz/corpus/options/.
 */
#include "tests/fuzz/fuzz.h"

#include "protocol/protocol.h"

/* Small, so that "more settings than MAX" is reachable. */
#define FUZZ_MAX 8

/* Appends S to OUT with a backslash before each space, tab, newline and
 * other white space, and before each backslash. */
static char *escape_into(char *out, const char *s)
{
	for (; *s; s++) {
		if (strchr(" \t\n\v\f\r\\", *s))
			*out++ = '\\';
		*out++ = *s;
	}
	return out;
}

static void check_roundtrip(const ProtoSetting *set, size_t n)
{
	size_t cap = 1;
	for (size_t i = 0; i < n; i++)
		cap += 4 + 2 * (strlen(set[i].name) + strlen(set[i].value)) + 2;
	char *text = malloc(cap);
	FUZZ_CHECK(text != NULL);
	char *p = text;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, i ? " -c " : "-c ", i ? 4 : 3);
		p += i ? 4 : 3;
		p = escape_into(p, set[i].name);
		*p++ = '=';
		p = escape_into(p, set[i].value);
	}
	*p = '\0';
	FUZZ_CHECK((size_t)(p - text) < cap);

	size_t worklen = PROTO_OPTIONS_WORK_SIZE(strlen(text));
	char *work = malloc(worklen);
	FUZZ_CHECK(work != NULL);
	ProtoSetting again[FUZZ_MAX];
	size_t m = 99;
	const char *why = NULL;
	ProtoStatus s = proto_options_parse(text, work, worklen, again, FUZZ_MAX, &m, &why);
	if (s != PROTO_OK)
		fprintf(stderr, "round trip of '%s' refused: %s\n", text, why);
	FUZZ_CHECK(s == PROTO_OK && m == n);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(strcmp(again[i].name, set[i].name) == 0);
		FUZZ_CHECK(strcmp(again[i].value, set[i].value) == 0);
	}
	free(work);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *options = fuzz_cstring(data, size);
	size_t worklen = PROTO_OPTIONS_WORK_SIZE(strlen(options));
	char *work = malloc(worklen);
	FUZZ_CHECK(work != NULL);
	ProtoSetting set[FUZZ_MAX];
	size_t n = 99;
	const char *why = NULL;
	ProtoStatus s = proto_options_parse(options, work, worklen, set, FUZZ_MAX, &n, &why);
	if (s == PROTO_OK) {
		FUZZ_CHECK(n <= FUZZ_MAX);
		for (size_t i = 0; i < n; i++) {
			FUZZ_CHECK(fuzz_inside(set[i].name, work, worklen));
			FUZZ_CHECK(fuzz_inside(set[i].value, work, worklen));
			FUZZ_CHECK(set[i].name[0] != '\0');
			FUZZ_CHECK(!strchr(set[i].name, '-') && !strchr(set[i].name, '='));
		}
		check_roundtrip(set, n);
	} else {
		FUZZ_CHECK(s == PROTO_BAD && n == 0 && why != NULL);
		size_t wl = strnlen(why, PROTO_OPTIONS_WHY_MAX);
		FUZZ_CHECK(wl < PROTO_OPTIONS_WHY_MAX && wl > 0);
		for (size_t i = 0; i < wl; i++)
			FUZZ_CHECK((unsigned char)why[i] >= 0x20 && why[i] != 0x7f);
	}
	free(work);

	/* one byte short of the contract: refused with the static reason */
	work = malloc(worklen - 1);
	FUZZ_CHECK(work != NULL);
	FUZZ_CHECK(proto_options_parse(options, work, worklen - 1, set, FUZZ_MAX, &n, &why) == PROTO_BAD);
	FUZZ_CHECK(n == 0 && strcmp(why, "options: work buffer too small") == 0);
	free(work);
	free(options);
	return 0;
}
