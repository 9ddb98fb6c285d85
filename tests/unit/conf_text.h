/*
 * tests/unit/conf_text.h: a Conf snapshot from text, for unit tests that
 * need a configuration (written to PATH, then loaded with conf_load; the
 * load error goes to stderr). NULL when it cannot be written or loaded.
 */
#ifndef PGFLIP_TEST_CONF_TEXT_H
#define PGFLIP_TEST_CONF_TEXT_H

#include <stdio.h>

#include "conf/conf.h"

static inline Conf *load_text(const char *path, const char *text)
{
	char err[512];
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		return NULL;
	Conf *c = conf_load(path, err, sizeof(err));
	if (!c)
		fprintf(stderr, "conf_load: %s\n", err);
	return c;
}

#endif
