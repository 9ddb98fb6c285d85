/*
 * proxy/params.c: small name = value lists for the settings (GUCs) of a
 * client or a server. They hold a dozen entries at most, so a linear array
 * beats any map here.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

static char *dup_or_die(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort(); /* a few bytes of settings: nothing sensible to do without them */
	return d;
}

void params_set(ParamList *l, const char *name, const char *value)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].name, name) == 0) {
			if (strcmp(l->items[i].value, value) != 0) {
				free(l->items[i].value);
				l->items[i].value = dup_or_die(value);
			}
			return;
		}
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		Param *items = realloc(l->items, cap * sizeof(Param));
		if (!items)
			abort();
		l->items = items;
		l->cap = cap;
	}
	l->items[l->n].name = dup_or_die(name);
	l->items[l->n].value = dup_or_die(value);
	l->n++;
}

const char *params_get(const ParamList *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->items[i].name, name) == 0)
			return l->items[i].value;
	return NULL;
}

void params_remove(ParamList *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].name, name) == 0) {
			free(l->items[i].name);
			free(l->items[i].value);
			l->items[i] = l->items[--l->n];
			return;
		}
	}
}

void params_clear(ParamList *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].name);
		free(l->items[i].value);
	}
	free(l->items);
	memset(l, 0, sizeof(*l));
}

void params_copy(ParamList *dst, const ParamList *src)
{
	for (size_t i = 0; i < src->n; i++)
		params_set(dst, src->items[i].name, src->items[i].value);
}
