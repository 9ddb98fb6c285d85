/*
 * proxy/params.h: small allocation helpers and name = value settings lists
 * (GUCs of a client or a server). The lists hold a dozen entries at most, so
 * a linear array beats any map here.
 */
#ifndef PGFLIP_PARAMS_H
#define PGFLIP_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Calls whose failure the caller must look at. */
#define PROXY_MUSTCHECK __attribute__((warn_unused_result))

/*
 * proxy_strdup / proxy_grow: allocation that cannot fail quietly. The proxy
 * allocates only small bookkeeping with them (names, settings, tables); when
 * even that fails there is nothing sensible left to do, so they abort.
 * proxy_grow makes room for one more item in ITEMS (N used, *CAP allocated,
 * SIZE bytes each), doubling from 8, and returns the (maybe moved) array.
 */
char *proxy_strdup(const char *s);
/* proxy_u64_str: V in decimal, written at the end of BUF (24 bytes, enough
 * for any uint64_t with its NUL); returns where the digits start. For hot
 * paths that would otherwise call printf for one number. */
const char *proxy_u64_str(char buf[24], uint64_t v);
void *proxy_grow(void *items, size_t n, size_t *cap, size_t size);
/* proxy_grow_try: the same, but NULL when the memory is not there (ITEMS
 * and *CAP are then unchanged): for callers that close one connection
 * instead. */
void *proxy_grow_try(void *items, size_t n, size_t *cap, size_t size) PROXY_MUSTCHECK;

/* A name = value setting (GUC), as a small growable list. */
typedef struct Param {
	char *name;
	char *value;
} Param;

typedef struct ParamList {
	Param *items;
	size_t n;
	size_t cap;
	bool oom;       /* a params_set ran out of memory: the list lacks a setting it was given */
} ParamList;

/* params_set: true when NAME was added or its value changed. Out of
 * memory, the setting is not there (an old value of NAME is removed, not
 * kept) and L->oom is set: the owner closes its connection. */
bool params_set(ParamList *l, const char *name, const char *value);
/* params_signature: a hash of the whole list (never 0). */
uint64_t params_signature(const ParamList *l);
const char *params_get(const ParamList *l, const char *name);
void params_remove(ParamList *l, const char *name);
void params_clear(ParamList *l);
void params_copy(ParamList *dst, const ParamList *src);

#endif
