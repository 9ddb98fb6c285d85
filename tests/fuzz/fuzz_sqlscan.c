/*
 * tests/fuzz/fuzz_sqlscan.c: libFuzzer harness for proxy/sqlscan.c.
 *
 * Input: one byte that chooses a split point, then the SQL text. The text is
 * scanned whole, in two chunks cut at (first byte) % (length + 1), and one
 * byte at a time, with standard_conforming_strings on and off and in each
 * encoding class; the flags must not depend on the chunking (abort() if they
 * do). The first chunk is a heap copy of exactly its bytes, so that under
 * AddressSanitizer a read past either chunk is a crash.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_sqlscan.c \
 *       proxy/sqlscan.c -o /tmp/fz && /tmp/fz tests/fuzz/corpus/sqlscan
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/sqlscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void differ(const char *how, size_t cut, bool scs, SqlScanEncoding enc, unsigned whole, unsigned got)
{
	fprintf(stderr, "sqlscan: %s (cut %zu, scs %d, enc %d): flags 0x%x, whole text 0x%x\n", how, cut, scs, (int)enc,
	        got, whole);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	const char *text = (const char *)data + 1;
	size_t n = size - 1, cut = data[0] % (n + 1);
	char *head = malloc(cut ? cut : 1);
	if (!head)
		return 0;
	memcpy(head, text, cut);
	static const SqlScanEncoding encs[] = {SQLSCAN_ENC_BYTES, SQLSCAN_ENC_SJIS, SQLSCAN_ENC_PAIRS};
	for (int scs = 0; scs <= 1; scs++)
		for (size_t e = 0; e < sizeof(encs) / sizeof(encs[0]); e++) {
			unsigned whole = sqlscan_text(text, n, scs, encs[e]);
			SqlScan s;
			sqlscan_init(&s, scs, encs[e]);
			sqlscan_feed(&s, head, cut);
			sqlscan_feed(&s, text + cut, n - cut);
			unsigned got = sqlscan_finish(&s);
			if (got != whole)
				differ("two chunks", cut, scs, encs[e], whole, got);
			sqlscan_init(&s, scs, encs[e]);
			for (size_t i = 0; i < n; i++)
				sqlscan_feed(&s, text + i, 1);
			got = sqlscan_finish(&s);
			if (got != whole)
				differ("byte by byte", cut, scs, encs[e], whole, got);
		}
	free(head);
	return 0;
}
