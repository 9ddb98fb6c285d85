/* TEMPORARY shim until the token-level scanner lands: substring scan. */
#ifndef PGFLIP_SQLSCAN_H
#define PGFLIP_SQLSCAN_H
#include <stdbool.h>
#include <stddef.h>
enum {
	SQLSCAN_PATH = 1 << 0,
	SQLSCAN_SETTINGS = 1 << 1,
	SQLSCAN_ROLE = 1 << 2,
	SQLSCAN_DISCARD_ALL = 1 << 3,
	SQLSCAN_DEALLOCATE = 1 << 4,
	SQLSCAN_LISTEN = 1 << 5,
	SQLSCAN_MULTI = 1 << 6,
};
unsigned sqlscan_text(const char *sql, size_t n, bool standard_conforming_strings);
#endif
