/*
 * tests/fuzz/fuzz_framing.c: proto_header_parse over a stream of typed
 * messages, walked as the proxy walks its input buffers (client.c's
 * client_pump, server.c's server pump): header, then the whole message when
 * it is at hand, then the body readers the proxy applies to that direction.
 *
 * Input: one control byte, then the stream.
 *   bit 0      direction: 0 = frontend (client -> server), 1 = backend
 *   bits 1..3  the maximum length given to proto_header_parse (table below)
 *   bits 4..7  the read size of a second, incremental pass (table below)
 * The stream is read twice: once whole, once as it would arrive in reads of
 * that size into a growing buffer. Both passes must see the same messages
 * and stop at the same offset for the same reason. Bodies reach the readers
 * as exact heap copies.
 * Seeds: tests/fuzz/corpus/framing/ (captured by tests/fuzz/capture.py).
 */
#include "tests/fuzz/fuzz.h"

#include "protocol/protocol.h"

/* Maximum lengths: the smallest legal ones, the config's lower bound
 * (1 KiB), the server side's limit region, and no limit at all. */
static const uint32_t max_lens[8] = {4, 5, 64, 1024, 8192, 1u << 20, 64u << 20, UINT32_MAX};
/* Read sizes of the incremental pass: byte by byte up to one large read. */
static const size_t chunks[16] = {1, 2, 3, 4, 5, 6, 7, 8, 13, 16, 31, 64, 100, 512, 4096, 1u << 20};

typedef enum { END_CLEAN, END_NEED_HEADER, END_NEED_BODY, END_BAD } StreamEnd;

typedef struct Walk {
	size_t msgs;  /* whole messages seen */
	uint64_t sum; /* of (type, len) pairs, to compare the passes */
	size_t off;   /* bytes consumed */
	StreamEnd end;
} Walk;

/* The readers the proxy applies to whole messages of this direction. */
static void read_body(int backend, uint8_t type, const uint8_t *body, size_t len)
{
	const char *a, *b;
	char status;
	ProtoErrorFields f;
	if (!backend) {
		switch (type) {
		case PROTO_FE_QUERY:
			if (proto_query_parse(body, len, &a))
				FUZZ_CHECK(strlen(a) + 1 == len);
			break;
		case PROTO_FE_PARSE:
			if (proto_parse_parse(body, len, &a, &b))
				FUZZ_CHECK(strlen(a) + strlen(b) + 2 + 2 <= len);
			break;
		default: break;
		}
		return;
	}
	switch (type) {
	case PROTO_BE_READY_FOR_QUERY:
		if (proto_ready_for_query_parse(body, len, &status))
			FUZZ_CHECK(len == 1 && (status == 'I' || status == 'T' || status == 'E'));
		break;
	case PROTO_BE_PARAMETER_STATUS:
		if (proto_parameter_status_parse(body, len, &a, &b))
			FUZZ_CHECK(strlen(a) + strlen(b) + 2 == len);
		break;
	case PROTO_BE_COMMAND_COMPLETE:
		if (proto_command_complete_parse(body, len, &a))
			FUZZ_CHECK(strlen(a) + 1 == len);
		break;
	case PROTO_BE_ERROR_RESPONSE:
	case PROTO_BE_NOTICE_RESPONSE: (void)proto_error_parse(body, len, &f); break;
	default: break;
	}
}

/*
 * walk_step: one step of the proxy's loop over BUF[OFF..AVAIL): returns true
 * when a whole message was consumed (W->off moves past it), false when the
 * walk stops here (W->end says why).
 */
static bool walk_step(Walk *w, int backend, uint32_t max_len, const uint8_t *buf, size_t avail)
{
	ProtoHeader h;
	const char *why = NULL;
	size_t left = avail - w->off;
	/* the proxy copies the header out of its buffer first */
	uint8_t hdr[PROTO_HEADER_SIZE];
	size_t n = left < sizeof(hdr) ? left : sizeof(hdr);
	memcpy(hdr, buf + w->off, n);
	ProtoStatus s = proto_header_parse(hdr, n, max_len, &h, &why);
	if (s == PROTO_NEED_MORE) {
		FUZZ_CHECK(left < PROTO_HEADER_SIZE);
		w->end = left == 0 ? END_CLEAN : END_NEED_HEADER;
		return false;
	}
	uint32_t len = ((uint32_t)hdr[1] << 24) | ((uint32_t)hdr[2] << 16) | ((uint32_t)hdr[3] << 8) | hdr[4];
	if (s == PROTO_BAD) {
		FUZZ_CHECK(why != NULL && (len < 4 || len > max_len));
		w->end = END_BAD;
		return false;
	}
	FUZZ_CHECK(s == PROTO_OK && h.type == hdr[0] && h.len == len && len >= 4 && len <= max_len);
	size_t total = (size_t)h.len + 1;
	if (left < total) {
		w->end = END_NEED_BODY;
		return false;
	}
	uint32_t body_len = proto_body_len(&h);
	FUZZ_CHECK((size_t)body_len + PROTO_HEADER_SIZE == total);
	uint8_t *body = fuzz_copy(buf + w->off + PROTO_HEADER_SIZE, body_len);
	read_body(backend, h.type, body, body_len);
	free(body);
	w->msgs++;
	w->sum = w->sum * 1000003u + ((uint64_t)h.type << 32) + h.len;
	w->off += total;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int backend = data[0] & 1;
	uint32_t max_len = max_lens[(data[0] >> 1) & 7];
	size_t chunk = chunks[data[0] >> 4];
	const uint8_t *stream = data + 1;
	size_t len = size - 1;

	/* pass 1: the whole stream at hand */
	Walk whole = {0};
	while (walk_step(&whole, backend, max_len, stream, len))
		;

	/* pass 2: the stream arriving in reads of CHUNK bytes */
	uint8_t *buf = malloc(len ? len : 1);
	FUZZ_CHECK(buf != NULL);
	Walk inc = {0};
	size_t have = 0;
	for (;;) {
		if (walk_step(&inc, backend, max_len, buf, have))
			continue;
		if (inc.end == END_BAD || have == len)
			break;
		size_t n = len - have < chunk ? len - have : chunk;
		memcpy(buf + have, stream + have, n);
		have += n;
	}
	free(buf);
	FUZZ_CHECK(inc.msgs == whole.msgs && inc.sum == whole.sum && inc.off == whole.off);
	FUZZ_CHECK(inc.end == whole.end);
	return 0;
}
