/*
 * tests/integration/it_tap.h: TAP lines for the C programs that the
 * integration scripts run (it_*.c): tap_check prints "ok - NAME" or
 * "not ok - NAME" and counts the failures, which main returns.
 */
#ifndef PGFLIP_IT_TAP_H
#define PGFLIP_IT_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

static int tap_failures;

static void tap_check(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3), unused));
static void tap_check(bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s - ", ok ? "ok" : "not ok");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
	if (!ok)
		tap_failures++;
}

#endif
