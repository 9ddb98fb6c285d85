/*
 * tests/unit/conf_text.h: a Conf snapshot from text, for unit tests that
 * need a configuration (written to PATH, then loaded with conf_load; the
 * load error goes to stderr). NULL when it cannot be written or loaded.
 * write_text writes the other files a configuration names (auth_file...).
 */
#ifndef PGFLIP_TEST_CONF_TEXT_H
#define PGFLIP_TEST_CONF_TEXT_H

#include <stdbool.h>
#include <stdio.h>

#include "conf/conf.h"

/* write_text: writes TEXT to the file PATH (replacing it); false on error. */
static inline bool write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	bool ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok;
}

static inline Conf *load_text(const char *path, const char *text)
{
	char err[512];
	if (!write_text(path, text))
		return NULL;
	Conf *c = conf_load(path, err, sizeof(err));
	if (!c)
		fprintf(stderr, "conf_load: %s\n", err);
	return c;
}

#endif
