/*
 * proxy/params.c: small name = value lists for the settings (GUCs) of a
 * client or a server. They hold a dozen entries at most, so a linear array
 * beats any map here.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

char *proxy_strdup(const char *s)
{
	char *d = strdup(s);
	if (!d)
		abort();
	return d;
}

const char *proxy_u64_str(char buf[24], uint64_t v)
{
	size_t i = 23;
	buf[i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return buf + i;
}

void *proxy_grow_try(void *items, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return items;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *p = realloc(items, ncap * size);
	if (!p)
		return NULL;
	*cap = ncap;
	return p;
}

void *proxy_grow(void *items, size_t n, size_t *cap, size_t size)
{
	void *p = proxy_grow_try(items, n, cap, size);
	if (!p)
		abort();
	return p;
}

bool params_set(ParamList *l, const char *name, const char *value)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].name, name) == 0) {
			if (strcmp(l->items[i].value, value) == 0)
				return false;
			char *copy = strdup(value);
			if (!copy) {
				l->oom = true;
				params_remove(l, name);
				return true;
			}
			free(l->items[i].value);
			l->items[i].value = copy;
			return true;
		}
	}
	Param *grown = proxy_grow_try(l->items, l->n, &l->cap, sizeof(Param));
	char *n = grown ? strdup(name) : NULL, *v = n ? strdup(value) : NULL;
	if (!v) {
		free(n);
		l->oom = true;
		return false;
	}
	l->items = grown;
	l->items[l->n].name = n;
	l->items[l->n].value = v;
	l->n++;
	return true;
}

uint64_t params_signature(const ParamList *l)
{
	/* FNV-1a over name\0value\0 pairs, in list order */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < l->n; i++) {
		for (const char *s = l->items[i].name;; s++) {
			h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
			if (!*s)
				break;
		}
		for (const char *s = l->items[i].value;; s++) {
			h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
			if (!*s)
				break;
		}
	}
	return h ? h : 1; /* 0 means "unknown" to servers */
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
