/*
 * tests/fuzz/fuzz_startup.c: proto_startup_parse, the first packet of a
 * connection (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest).
 *
 * The input is the bytes a client sent first. Checked besides memory safety:
 * PROTO_OK means a packet of packet_len bytes within the input, of the kind
 * its code says, with parameters that each lie inside the packet and that
 * proto_startup_get finds again; the same packet given as an exact copy of
 * packet_len bytes parses the same, and one byte short of it needs more;
 * under 8 bytes always need more; PROTO_BAD always has a reason. A
 * StartupMessage's "options" go on to proto_options_parse.
 * Seeds: tests/fuzz/corpus/startup/ (captured by tests/fuzz/capture.py).
 */
#include "tests/fuzz/fuzz.h"

#include "protocol/protocol.h"

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void check_params(const ProtoStartup *st, const uint8_t *pkt)
{
	const char *base = (const char *)pkt;
	FUZZ_CHECK(st->n_params <= PROTO_STARTUP_MAX_PARAMS);
	for (size_t i = 0; i < st->n_params; i++) {
		FUZZ_CHECK(fuzz_inside(st->names[i], base, st->packet_len));
		FUZZ_CHECK(fuzz_inside(st->values[i], base, st->packet_len));
		FUZZ_CHECK(st->names[i] >= base + 8);
		/* the first parameter of a name wins */
		const char *got = proto_startup_get(st, st->names[i]);
		FUZZ_CHECK(got != NULL);
		size_t first = 0;
		while (strcmp(st->names[first], st->names[i]) != 0)
			first++;
		FUZZ_CHECK(got == st->values[first]);
	}
	const char *user = proto_startup_get(st, "user");
	FUZZ_CHECK(user != NULL && *user != '\0');
	(void)proto_startup_get(st, "database");
	(void)proto_startup_get(st, "");

	const char *options = proto_startup_get(st, "options");
	if (options) {
		size_t worklen = PROTO_OPTIONS_WORK_SIZE(strlen(options));
		char *work = malloc(worklen);
		FUZZ_CHECK(work != NULL);
		ProtoSetting set[PROTO_STARTUP_MAX_PARAMS];
		size_t n;
		const char *why = NULL;
		if (proto_options_parse(options, work, worklen, set, PROTO_STARTUP_MAX_PARAMS, &n, &why) == PROTO_OK)
			FUZZ_CHECK(n <= PROTO_STARTUP_MAX_PARAMS);
		else
			FUZZ_CHECK(why != NULL);
		free(work);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtoStartup st;
	const char *why = NULL;
	ProtoStatus s = proto_startup_parse(data, size, &st, &why);
	if (size < 8)
		FUZZ_CHECK(s == PROTO_NEED_MORE);
	if (s == PROTO_BAD) {
		FUZZ_CHECK(why != NULL && *why != '\0');
		return 0;
	}
	if (s == PROTO_NEED_MORE) {
		if (size >= 8)
			FUZZ_CHECK(be32(data) > size);
		return 0;
	}

	FUZZ_CHECK(st.packet_len >= 8 && st.packet_len <= PROTO_STARTUP_MAX && st.packet_len <= size);
	FUZZ_CHECK(st.packet_len == be32(data));
	uint32_t code = be32(data + 4);
	switch (st.kind) {
	case PROTO_SSL_REQUEST: FUZZ_CHECK(code == PROTO_SSL_REQUEST_CODE && st.packet_len == 8); break;
	case PROTO_GSSENC_REQUEST: FUZZ_CHECK(code == PROTO_GSSENC_REQUEST_CODE && st.packet_len == 8); break;
	case PROTO_CANCEL_REQUEST:
		FUZZ_CHECK(code == PROTO_CANCEL_REQUEST_CODE && st.packet_len == 16);
		FUZZ_CHECK(st.cancel_pid == be32(data + 8) && st.cancel_key == be32(data + 12));
		break;
	case PROTO_STARTUP_MESSAGE:
		FUZZ_CHECK((code >> 16) == 3 && st.version == code);
		check_params(&st, data);
		break;
	default: FUZZ_CHECK(!"unknown startup kind");
	}

	/* The packet alone parses the same, and one byte short needs more. */
	uint8_t *pkt = fuzz_copy(data, st.packet_len);
	ProtoStartup again;
	why = NULL;
	FUZZ_CHECK(proto_startup_parse(pkt, st.packet_len, &again, &why) == PROTO_OK);
	FUZZ_CHECK(again.kind == st.kind && again.packet_len == st.packet_len && again.n_params == st.n_params);
	if (again.kind == PROTO_STARTUP_MESSAGE)
		check_params(&again, pkt);
	free(pkt);
	pkt = fuzz_copy(data, st.packet_len - 1);
	FUZZ_CHECK(proto_startup_parse(pkt, st.packet_len - 1, &again, &why) == PROTO_NEED_MORE);
	free(pkt);
	return 0;
}
