/*
 * tests/lib/failmalloc.c: an LD_PRELOAD shim for fault tests. While the
 * file named by $FAILMALLOC_FILE exists, about one malloc, calloc or
 * realloc in $FAILMALLOC_EVERY (default 50) returns NULL; otherwise they are
 * glibc's. The file is looked at once a millisecond at most (the coarse
 * monotonic clock is a vDSO read, a stat per call would change the timing
 * too much), so a window opens and closes within a few milliseconds.
 *
 * Built by the Makefile as build/tests/libfailmalloc.so; used by
 * tests/integration/proxy_oom.sh.
 */
#include <stddef.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>

void *__libc_malloc(size_t n);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t n);

static long long checked_ms = -1;
static int failing;
static unsigned long every;
static unsigned long long state = 88172645463325252ull;

static int should_fail(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	long long now_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (now_ms != checked_ms) {
		checked_ms = now_ms;
		const char *path = getenv("FAILMALLOC_FILE");
		struct stat st;
		failing = path && stat(path, &st) == 0;
		if (!every) {
			const char *e = getenv("FAILMALLOC_EVERY");
			every = e && atol(e) > 0 ? (unsigned long)atol(e) : 50;
		}
	}
	if (!failing)
		return 0;
	state ^= state << 13; /* xorshift64 */
	state ^= state >> 7;
	state ^= state << 17;
	return state % every == 0;
}

void *malloc(size_t n) { return should_fail() ? NULL : __libc_malloc(n); }
void *calloc(size_t n, size_t size) { return should_fail() ? NULL : __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { return should_fail() ? NULL : __libc_realloc(p, n); }
