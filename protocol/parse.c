/*
 * protocol/parse.c: framing and readers for PostgreSQL protocol 3.0.
 *
 * Everything here works on a contiguous buffer the caller owns. Lengths from
 * the wire are compared with the bytes at hand before they are used, and
 * unsigned lengths are compared before any subtraction. A reader consumes a
 * body exactly or reports it malformed ("message contents do not agree with
 * length", as the server says).
 */
#include <string.h>

#include "protocol/protocol.h"

static uint32_t get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

const char *proto_fe_type_to_str(int type)
{
	switch (type) {
	case PROTO_FE_BIND: return "Bind";
	case PROTO_FE_CLOSE: return "Close";
	case PROTO_FE_COPY_DATA: return "CopyData";
	case PROTO_FE_COPY_DONE: return "CopyDone";
	case PROTO_FE_COPY_FAIL: return "CopyFail";
	case PROTO_FE_DESCRIBE: return "Describe";
	case PROTO_FE_EXECUTE: return "Execute";
	case PROTO_FE_FLUSH: return "Flush";
	case PROTO_FE_FUNCTION_CALL: return "FunctionCall";
	case PROTO_FE_PARSE: return "Parse";
	case PROTO_FE_PASSWORD: return "PasswordMessage";
	case PROTO_FE_QUERY: return "Query";
	case PROTO_FE_SYNC: return "Sync";
	case PROTO_FE_TERMINATE: return "Terminate";
	default: return "unknown";
	}
}

const char *proto_be_type_to_str(int type)
{
	switch (type) {
	case PROTO_BE_AUTHENTICATION: return "Authentication";
	case PROTO_BE_BACKEND_KEY_DATA: return "BackendKeyData";
	case PROTO_BE_BIND_COMPLETE: return "BindComplete";
	case PROTO_BE_CLOSE_COMPLETE: return "CloseComplete";
	case PROTO_BE_COMMAND_COMPLETE: return "CommandComplete";
	case PROTO_BE_COPY_DATA: return "CopyData";
	case PROTO_BE_COPY_DONE: return "CopyDone";
	case PROTO_BE_COPY_IN_RESPONSE: return "CopyInResponse";
	case PROTO_BE_COPY_OUT_RESPONSE: return "CopyOutResponse";
	case PROTO_BE_COPY_BOTH_RESPONSE: return "CopyBothResponse";
	case PROTO_BE_DATA_ROW: return "DataRow";
	case PROTO_BE_EMPTY_QUERY_RESPONSE: return "EmptyQueryResponse";
	case PROTO_BE_ERROR_RESPONSE: return "ErrorResponse";
	case PROTO_BE_FUNCTION_CALL_RESPONSE: return "FunctionCallResponse";
	case PROTO_BE_NEGOTIATE_PROTOCOL_VERSION: return "NegotiateProtocolVersion";
	case PROTO_BE_NO_DATA: return "NoData";
	case PROTO_BE_NOTICE_RESPONSE: return "NoticeResponse";
	case PROTO_BE_NOTIFICATION_RESPONSE: return "NotificationResponse";
	case PROTO_BE_PARAMETER_DESCRIPTION: return "ParameterDescription";
	case PROTO_BE_PARAMETER_STATUS: return "ParameterStatus";
	case PROTO_BE_PARSE_COMPLETE: return "ParseComplete";
	case PROTO_BE_PORTAL_SUSPENDED: return "PortalSuspended";
	case PROTO_BE_READY_FOR_QUERY: return "ReadyForQuery";
	case PROTO_BE_ROW_DESCRIPTION: return "RowDescription";
	default: return "unknown";
	}
}

ProtoStatus proto_header_parse(const uint8_t *buf, size_t avail, uint32_t max_len, ProtoHeader *out,
			       const char **why)
{
	if (avail < PROTO_HEADER_SIZE)
		return PROTO_NEED_MORE;
	uint32_t len = get_be32(buf + 1);
	if (len < 4) {
		*why = "message length under 4";
		return PROTO_BAD;
	}
	if (len > max_len) {
		*why = "message length over max_packet_size";
		return PROTO_BAD;
	}
	out->type = buf[0];
	out->len = len;
	return PROTO_OK;
}

/* Fixed size of SSLRequest and GSSENCRequest (length + code), and of
 * CancelRequest (length + code + pid + key). */
#define REQUEST_PACKET_LEN 8
#define CANCEL_PACKET_LEN 16

ProtoStatus proto_startup_parse(const uint8_t *buf, size_t avail, ProtoStartup *out, const char **why)
{
	if (avail < 8)
		return PROTO_NEED_MORE;
	uint32_t len = get_be32(buf);
	if (len < 8 || len > PROTO_STARTUP_MAX) {
		*why = "invalid length of startup packet";
		return PROTO_BAD;
	}
	uint32_t code = get_be32(buf + 4);
	/* Decide the kind from the first 8 bytes, so a bad request code or
	 * version fails at once instead of waiting for a length that lies. */
	if (code == PROTO_SSL_REQUEST_CODE || code == PROTO_GSSENC_REQUEST_CODE) {
		if (len != REQUEST_PACKET_LEN) {
			*why = "invalid length of SSLRequest/GSSENCRequest";
			return PROTO_BAD;
		}
		memset(out, 0, sizeof(*out));
		out->kind = code == PROTO_SSL_REQUEST_CODE ? PROTO_SSL_REQUEST : PROTO_GSSENC_REQUEST;
		out->packet_len = len;
		return PROTO_OK;
	}
	if (code == PROTO_CANCEL_REQUEST_CODE) {
		if (len != CANCEL_PACKET_LEN) {
			*why = "invalid length of CancelRequest";
			return PROTO_BAD;
		}
		if (avail < len)
			return PROTO_NEED_MORE;
		memset(out, 0, sizeof(*out));
		out->kind = PROTO_CANCEL_REQUEST;
		out->packet_len = len;
		out->cancel_pid = get_be32(buf + 8);
		out->cancel_key = get_be32(buf + 12);
		return PROTO_OK;
	}
	if ((code >> 16) != 3) {
		*why = "unsupported frontend protocol";
		return PROTO_BAD;
	}
	if (avail < len)
		return PROTO_NEED_MORE;

	out->kind = PROTO_STARTUP_MESSAGE;
	out->packet_len = len;
	out->version = code;
	out->n_params = 0;
	out->cancel_pid = out->cancel_key = 0;

	/* Pairs of NUL-terminated strings, then one final NUL, ending exactly
	 * at the packet's end. */
	const char *p = (const char *)buf + 8;
	const char *end = (const char *)buf + len;
	for (;;) {
		if (p >= end) {
			*why = "startup packet has no terminator";
			return PROTO_BAD;
		}
		if (*p == '\0') {
			p++;
			break;
		}
		const char *name = p;
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul) {
			*why = "startup parameter name not terminated";
			return PROTO_BAD;
		}
		p = nul + 1;
		const char *value = p;
		nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
		if (!nul) {
			*why = "startup parameter value not terminated";
			return PROTO_BAD;
		}
		p = nul + 1;
		if (out->n_params == PROTO_STARTUP_MAX_PARAMS) {
			*why = "too many startup parameters";
			return PROTO_BAD;
		}
		out->names[out->n_params] = name;
		out->values[out->n_params] = value;
		out->n_params++;
	}
	if (p != end) {
		*why = "startup packet contents do not agree with length";
		return PROTO_BAD;
	}
	const char *user = proto_startup_get(out, "user");
	if (!user || !*user) {
		*why = "no PostgreSQL user name specified in startup packet";
		return PROTO_BAD;
	}
	return PROTO_OK;
}

const char *proto_startup_get(const ProtoStartup *s, const char *name)
{
	for (size_t i = 0; i < s->n_params; i++)
		if (strcmp(s->names[i], name) == 0)
			return s->values[i];
	return NULL;
}

void proto_reader_init(ProtoReader *r, const uint8_t *body, size_t len)
{
	r->p = body;
	r->end = body + len;
	r->bad = false;
}

static bool reader_need(ProtoReader *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return false;
	}
	return true;
}

bool proto_get_uint8(ProtoReader *r, uint8_t *out)
{
	if (!reader_need(r, 1))
		return false;
	*out = *r->p++;
	return true;
}

bool proto_get_uint16(ProtoReader *r, uint16_t *out)
{
	if (!reader_need(r, 2))
		return false;
	*out = (uint16_t)((r->p[0] << 8) | r->p[1]);
	r->p += 2;
	return true;
}

bool proto_get_uint32(ProtoReader *r, uint32_t *out)
{
	if (!reader_need(r, 4))
		return false;
	*out = get_be32(r->p);
	r->p += 4;
	return true;
}

bool proto_get_cstring(ProtoReader *r, const char **out)
{
	if (r->bad)
		return false;
	const uint8_t *nul = memchr(r->p, '\0', (size_t)(r->end - r->p));
	if (!nul) {
		r->bad = true;
		return false;
	}
	*out = (const char *)r->p;
	r->p = nul + 1;
	return true;
}

bool proto_get_skip(ProtoReader *r, size_t n)
{
	if (!reader_need(r, n))
		return false;
	r->p += n;
	return true;
}

bool proto_reader_done(const ProtoReader *r) { return !r->bad && r->p == r->end; }

bool proto_ready_for_query_parse(const uint8_t *body, size_t len, char *status)
{
	if (len != 1 || (body[0] != 'I' && body[0] != 'T' && body[0] != 'E'))
		return false;
	*status = (char)body[0];
	return true;
}

bool proto_error_parse(const uint8_t *body, size_t len, ProtoErrorFields *out)
{
	ProtoReader r;
	const char *severity_localized = NULL;
	memset(out, 0, sizeof(*out));
	proto_reader_init(&r, body, len);
	for (;;) {
		uint8_t code;
		const char *value;
		if (!proto_get_uint8(&r, &code))
			return false;
		if (code == 0)
			break;
		if (!proto_get_cstring(&r, &value))
			return false;
		switch (code) {
		case 'S': severity_localized = value; break;
		case 'V': out->severity = value; break;
		case 'C': out->sqlstate = value; break;
		case 'M': out->message = value; break;
		case 'D': out->detail = value; break;
		case 'H': out->hint = value; break;
		default: break; /* fields we do not use; the protocol allows new ones */
		}
	}
	if (!out->severity)
		out->severity = severity_localized;
	return proto_reader_done(&r);
}

bool proto_query_parse(const uint8_t *body, size_t len, const char **sql)
{
	ProtoReader r;
	proto_reader_init(&r, body, len);
	return proto_get_cstring(&r, sql) && proto_reader_done(&r);
}

bool proto_parse_parse(const uint8_t *body, size_t len, const char **name, const char **sql)
{
	ProtoReader r;
	uint16_t nparams;
	proto_reader_init(&r, body, len);
	if (!proto_get_cstring(&r, name) || !proto_get_cstring(&r, sql) || !proto_get_uint16(&r, &nparams))
		return false;
	return proto_get_skip(&r, (size_t)nparams * 4) && proto_reader_done(&r);
}

bool proto_parameter_status_parse(const uint8_t *body, size_t len, const char **name, const char **value)
{
	ProtoReader r;
	proto_reader_init(&r, body, len);
	return proto_get_cstring(&r, name) && proto_get_cstring(&r, value) && proto_reader_done(&r);
}

bool proto_command_complete_parse(const uint8_t *body, size_t len, const char **tag)
{
	return proto_query_parse(body, len, tag);
}

bool proto_backend_key_data_parse(const uint8_t *body, size_t len, uint32_t *pid, uint32_t *key)
{
	ProtoReader r;
	proto_reader_init(&r, body, len);
	return proto_get_uint32(&r, pid) && proto_get_uint32(&r, key) && proto_reader_done(&r);
}

bool proto_negotiate_protocol_version_parse(const uint8_t *body, size_t len, uint32_t *version, uint32_t *n_options)
{
	ProtoReader r;
	const char *name;
	proto_reader_init(&r, body, len);
	if (!proto_get_uint32(&r, version) || !proto_get_uint32(&r, n_options))
		return false;
	/* each name takes at least its NUL: a count past the bytes left is a lie */
	if (*n_options > (size_t)(r.end - r.p))
		return false;
	for (uint32_t i = 0; i < *n_options; i++)
		if (!proto_get_cstring(&r, &name))
			return false;
	return proto_reader_done(&r);
}

ProtoStatus proto_read_password(const uint8_t *body, size_t len, const char **text, const char **why)
{
	ProtoReader r;
	proto_reader_init(&r, body, len);
	if (!proto_get_cstring(&r, text) || !proto_reader_done(&r)) {
		*why = "invalid password packet size";
		return PROTO_BAD;
	}
	return PROTO_OK;
}

ProtoStatus proto_read_sasl_initial(const uint8_t *body, size_t len, const char **mech, const uint8_t **data,
				    size_t *n, const char **why)
{
	ProtoReader r;
	uint32_t dlen;
	proto_reader_init(&r, body, len);
	if (!proto_get_cstring(&r, mech) || !proto_get_uint32(&r, &dlen)) {
		*why = "malformed SASLInitialResponse";
		return PROTO_BAD;
	}
	size_t left = (size_t)(r.end - r.p);
	if (dlen == UINT32_MAX && left == 0) { /* -1: no initial response */
		*data = NULL;
		*n = 0;
		return PROTO_OK;
	}
	if ((size_t)dlen != left) {
		*why = "SASLInitialResponse contents do not agree with length";
		return PROTO_BAD;
	}
	*data = r.p;
	*n = left;
	return PROTO_OK;
}

ProtoStatus proto_read_sasl_response(const uint8_t *body, size_t len, const uint8_t **data, size_t *n,
				     const char **why)
{
	*data = body;
	*n = len;
	return PROTO_OK;
}

/* auth_sasl_list_ok: one or more non-empty NUL-terminated names, then an
 * empty one, ending exactly at P + N. */
static bool auth_sasl_list_ok(const uint8_t *p, size_t n)
{
	size_t count = 0;
	const uint8_t *end = p + n;
	while (p < end) {
		const uint8_t *nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul)
			return false;
		if (nul == p) /* the empty name that ends the list */
			return p + 1 == end && count > 0;
		count++;
		p = nul + 1;
	}
	return false;
}

ProtoStatus proto_read_auth(const uint8_t *body, size_t len, uint32_t *code, const uint8_t **rest, size_t *n,
			    const char **why)
{
	if (len < 4) {
		*why = "Authentication message under 4 bytes";
		return PROTO_BAD;
	}
	*code = get_be32(body);
	*rest = body + 4;
	*n = len - 4;
	bool ok;
	switch (*code) {
	case PROTO_AUTH_OK:
	case PROTO_AUTH_KERBEROS_V5:
	case PROTO_AUTH_CLEARTEXT_PASSWORD:
	case PROTO_AUTH_GSS:
	case PROTO_AUTH_SSPI: ok = *n == 0; break;
	case PROTO_AUTH_MD5_PASSWORD: ok = *n == 4; break;
	case PROTO_AUTH_SASL: ok = auth_sasl_list_ok(*rest, *n); break;
	default: ok = true; break; /* SASLContinue, SASLFinal, GSSContinue, unknown */
	}
	if (!ok) {
		*why = "Authentication message contents do not agree with its request code";
		return PROTO_BAD;
	}
	return PROTO_OK;
}

bool proto_auth_sasl_has(const uint8_t *rest, size_t n, const char *mechanism)
{
	ProtoReader r;
	const char *name;
	proto_reader_init(&r, rest, n);
	while (proto_get_cstring(&r, &name) && *name)
		if (strcmp(name, mechanism) == 0)
			return true;
	return false;
}
