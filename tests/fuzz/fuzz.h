/*
 * tests/fuzz/fuzz.h: helpers shared by the libFuzzer harnesses.
 *
 * A harness is one file tests/fuzz/fuzz_NAME.c defining
 * LLVMFuzzerTestOneInput; `make fuzz-build` links it with the module sources
 * under -fsanitize=fuzzer,address,undefined. Besides the sanitizers, a
 * harness checks the contracts of protocol.h and conf.h with FUZZ_CHECK,
 * which aborts (a crash for libFuzzer, so the input is kept).
 *
 * Parsers get exact heap copies (fuzz_copy) of the bytes they may see, as in
 * the unit tests, so AddressSanitizer reports a read one byte past them.
 */
#ifndef PGFLIP_FUZZ_H
#define PGFLIP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                                               \
	do {                                                                                                           \
		if (!(cond)) {                                                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                       \
			abort();                                                                                       \
		}                                                                                                      \
	} while (0)

/* fuzz_copy: a heap block of exactly N bytes holding P[0..N) (one byte for
 * N = 0, so the pointer is valid); the caller frees it. */
static inline uint8_t *fuzz_copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);
	if (!c)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

/* fuzz_cstring: a heap copy of P[0..N) up to its first NUL, NUL-terminated. */
static inline char *fuzz_cstring(const uint8_t *p, size_t n)
{
	const uint8_t *nul = memchr(p, '\0', n);
	size_t len = nul ? (size_t)(nul - p) : n;
	char *s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

/* fuzz_inside: true when the string S starts inside BASE[0..LEN) and its NUL
 * does too. */
static inline int fuzz_inside(const char *s, const char *base, size_t len)
{
	if (s < base || s >= base + len)
		return 0;
	return memchr(s, '\0', (size_t)(base + len - s)) != NULL;
}

#endif
