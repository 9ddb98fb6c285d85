/*
 * protocol: the PostgreSQL frontend/backend protocol, version 3.0.
 *
 * Bytes in, messages out: this module knows nothing of sockets or event
 * loops, so it can be tested and fuzzed on its own. Parsers look at a
 * contiguous buffer and answer one of three things (ProtoStatus): the message
 * is complete, more bytes are needed, or the input is malformed (with a reason
 * for the log). Every length from the wire is checked against the bytes at
 * hand and against a caller-given maximum before it is used; after parsing a
 * message body, the bytes consumed must equal its length.
 *
 * Builders append whole messages to a ProtoBuf, so that a reply made of
 * several messages leaves in one write.
 *
 * Source: PostgreSQL documentation, chapter "Frontend/Backend Protocol",
 * sections "Message Flow" and "Message Formats" (protocol 3.0).
 */
#ifndef PGFLIP_PROTOCOL_H
#define PGFLIP_PROTOCOL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_MUSTCHECK __attribute__((warn_unused_result))

/* Protocol version codes of the startup packet (major << 16 | minor). */
#define PROTO_VERSION(major, minor) (((uint32_t)(major) << 16) | (uint32_t)(minor))
#define PROTO_VERSION_3_0 PROTO_VERSION(3, 0)
/* Request codes that take the place of a version in special startup packets. */
#define PROTO_CANCEL_REQUEST_CODE PROTO_VERSION(1234, 5678)
#define PROTO_SSL_REQUEST_CODE PROTO_VERSION(1234, 5679)
#define PROTO_GSSENC_REQUEST_CODE PROTO_VERSION(1234, 5680)

/* PostgreSQL's MAX_STARTUP_PACKET_LENGTH: the server refuses longer packets. */
#define PROTO_STARTUP_MAX 10000
/* A StartupMessage cannot carry more pairs than fit in PROTO_STARTUP_MAX. */
#define PROTO_STARTUP_MAX_PARAMS 64
/* Type byte plus the 4-byte length that every typed message starts with. */
#define PROTO_HEADER_SIZE 5

typedef enum {
	PROTO_OK = 0,       /* a whole, well-formed message */
	PROTO_NEED_MORE,    /* well-formed so far; call again with more bytes */
	PROTO_BAD,          /* malformed: close the peer; *why says what was wrong */
} ProtoStatus;

/* Message types sent by the frontend (client). */
typedef enum {
	PROTO_FE_BIND = 'B',
	PROTO_FE_CLOSE = 'C',
	PROTO_FE_COPY_DATA = 'd',
	PROTO_FE_COPY_DONE = 'c',
	PROTO_FE_COPY_FAIL = 'f',
	PROTO_FE_DESCRIBE = 'D',
	PROTO_FE_EXECUTE = 'E',
	PROTO_FE_FLUSH = 'H',
	PROTO_FE_FUNCTION_CALL = 'F',
	PROTO_FE_PARSE = 'P',
	PROTO_FE_PASSWORD = 'p', /* also SASLInitialResponse, SASLResponse, GSSResponse */
	PROTO_FE_QUERY = 'Q',
	PROTO_FE_SYNC = 'S',
	PROTO_FE_TERMINATE = 'X',
} ProtoFeType;

/* Message types sent by the backend (server). */
typedef enum {
	PROTO_BE_AUTHENTICATION = 'R',
	PROTO_BE_BACKEND_KEY_DATA = 'K',
	PROTO_BE_BIND_COMPLETE = '2',
	PROTO_BE_CLOSE_COMPLETE = '3',
	PROTO_BE_COMMAND_COMPLETE = 'C',
	PROTO_BE_COPY_DATA = 'd',
	PROTO_BE_COPY_DONE = 'c',
	PROTO_BE_COPY_IN_RESPONSE = 'G',
	PROTO_BE_COPY_OUT_RESPONSE = 'H',
	PROTO_BE_COPY_BOTH_RESPONSE = 'W',
	PROTO_BE_DATA_ROW = 'D',
	PROTO_BE_EMPTY_QUERY_RESPONSE = 'I',
	PROTO_BE_ERROR_RESPONSE = 'E',
	PROTO_BE_FUNCTION_CALL_RESPONSE = 'V',
	PROTO_BE_NEGOTIATE_PROTOCOL_VERSION = 'v',
	PROTO_BE_NO_DATA = 'n',
	PROTO_BE_NOTICE_RESPONSE = 'N',
	PROTO_BE_NOTIFICATION_RESPONSE = 'A',
	PROTO_BE_PARAMETER_DESCRIPTION = 't',
	PROTO_BE_PARAMETER_STATUS = 'S',
	PROTO_BE_PARSE_COMPLETE = '1',
	PROTO_BE_PORTAL_SUSPENDED = 's',
	PROTO_BE_READY_FOR_QUERY = 'Z',
	PROTO_BE_ROW_DESCRIPTION = 'T',
} ProtoBeType;

/* proto_fe_type_to_str / proto_be_type_to_str: "Query", "ReadyForQuery"...;
 * "unknown" for a byte that is no message type of that direction. */
const char *proto_fe_type_to_str(int type);
const char *proto_be_type_to_str(int type);

/* ---- framing ---------------------------------------------------------- */

/* The header of a typed message: type byte and the length field, which
 * counts itself (4) and the body but not the type byte. */
typedef struct ProtoHeader {
	uint8_t type;
	uint32_t len;
} ProtoHeader;

/* Body size of a message whose header is H (its length field minus 4). */
static inline uint32_t proto_body_len(const ProtoHeader *h) { return h->len - 4; }

/*
 * proto_header_parse: reads the 5-byte header of a typed message from BUF
 * (AVAIL bytes at hand). Returns PROTO_NEED_MORE under 5 bytes, PROTO_BAD
 * when the length field is under 4 or over MAX_LEN (bytes, the length field's
 * own units), else PROTO_OK with *OUT filled. The whole message spans
 * 1 + OUT->len bytes; this function never looks past the header.
 */
ProtoStatus proto_header_parse(const uint8_t *buf, size_t avail, uint32_t max_len, ProtoHeader *out,
			       const char **why) PROTO_MUSTCHECK;

/* ---- startup packets (no type byte) ------------------------------------ */

typedef enum {
	PROTO_STARTUP_MESSAGE = 0,
	PROTO_SSL_REQUEST,
	PROTO_GSSENC_REQUEST,
	PROTO_CANCEL_REQUEST,
} ProtoStartupKind;

typedef struct ProtoStartup {
	ProtoStartupKind kind;
	uint32_t packet_len;          /* bytes, the whole packet: drain this many */
	uint32_t version;             /* StartupMessage: the requested protocol version */
	/* StartupMessage parameters, pointing into the parsed buffer (valid while it is). */
	size_t n_params;
	const char *names[PROTO_STARTUP_MAX_PARAMS];
	const char *values[PROTO_STARTUP_MAX_PARAMS];
	/* CancelRequest */
	uint32_t cancel_pid;
	uint32_t cancel_key;
} ProtoStartup;

/*
 * proto_startup_parse: reads the first packet of a connection (section
 * "Message Flow / Start-up"): StartupMessage, SSLRequest, GSSENCRequest or
 * CancelRequest, from BUF (AVAIL bytes). Returns PROTO_NEED_MORE until the
 * whole packet is at hand; PROTO_BAD for a length under 8 or over
 * PROTO_STARTUP_MAX, a request packet of the wrong size, a protocol major
 * version other than 3, parameters not NUL-terminated within the packet,
 * more than PROTO_STARTUP_MAX_PARAMS pairs, or no "user" parameter.
 * A minor version above 0 is accepted (answer it with
 * proto_put_negotiate_protocol_version). OUT's strings point into BUF.
 */
ProtoStatus proto_startup_parse(const uint8_t *buf, size_t avail, ProtoStartup *out,
				const char **why) PROTO_MUSTCHECK;

/* proto_startup_get: the value of parameter NAME in S, or NULL. */
const char *proto_startup_get(const ProtoStartup *s, const char *name);

/* ---- the StartupMessage's options parameter ----------------------------- */

/* One setting of the options parameter: -c NAME=VALUE or --NAME=VALUE. */
typedef struct ProtoSetting {
	const char *name;   /* non-empty; '-' already turned into '_' */
	const char *value;  /* maybe empty */
} ProtoSetting;

/* Room for the reason of a refusal, which names the word (cut at 64 bytes):
 * a 55-byte verdict, two shown words and the quotes fit. */
#define PROTO_OPTIONS_WHY_MAX 224
/* Bytes of WORK that proto_options_parse needs for an options string of
 * OPTLEN bytes (strlen): the unescaped words, then the reason. */
#define PROTO_OPTIONS_WORK_SIZE(optlen) ((size_t)(optlen) + 1 + PROTO_OPTIONS_WHY_MAX)

/*
 * proto_options_parse: splits OPTIONS (NUL-terminated, the value of the
 * StartupMessage's "options" parameter) into settings, as the server does
 * with pg_split_opts() (postinit.c) and process_postgres_switches()
 * (postgres.c): words are separated by white space, a backslash makes the
 * next character literal ("\ " a space in a word, "\\" a backslash; one at the very end is
 * dropped).
 * Accepted words: "-c NAME=VALUE", "-cNAME=VALUE", "--NAME=VALUE"; each '-'
 * of NAME becomes '_' (ParseLongOption); NAME keeps its case.
 *
 * WORK is caller storage of at least PROTO_OPTIONS_WORK_SIZE(strlen(OPTIONS))
 * bytes (WORKLEN); the names and values point into it and stay valid while
 * it does. Fills OUT[0..*N) (at most MAX) in the order written.
 * Returns PROTO_OK (an empty or all-space string gives *N = 0), or PROTO_BAD
 * with *N = 0 and *WHY set to a reason naming the word, in WORK (or a static
 * string when WORKLEN is too small): any other switch ("-d 5"), a word that
 * is no switch, -c without an argument, a setting with no '=' or an empty
 * name, more than MAX settings.
 */
ProtoStatus proto_options_parse(const char *options, char *work, size_t worklen, ProtoSetting *out, size_t max,
				size_t *n, const char **why) PROTO_MUSTCHECK;

/* ---- authentication ------------------------------------------------------ */

/* The request codes of an Authentication message ('R'), the int32 after the
 * length (section "Message Formats"). */
typedef enum {
	PROTO_AUTH_OK = 0,
	PROTO_AUTH_KERBEROS_V5 = 2,
	PROTO_AUTH_CLEARTEXT_PASSWORD = 3,
	PROTO_AUTH_MD5_PASSWORD = 5,
	PROTO_AUTH_GSS = 7,
	PROTO_AUTH_GSS_CONTINUE = 8,
	PROTO_AUTH_SSPI = 9,
	PROTO_AUTH_SASL = 10,
	PROTO_AUTH_SASL_CONTINUE = 11,
	PROTO_AUTH_SASL_FINAL = 12,
} ProtoAuthCode;

/*
 * proto_read_password: a PasswordMessage body ('p', answering
 * AuthenticationCleartextPassword or AuthenticationMD5Password): one
 * NUL-terminated string that fills the body exactly; *TEXT points into BODY.
 * PROTO_OK, or PROTO_BAD with *WHY (no NUL, or bytes after it).
 */
ProtoStatus proto_read_password(const uint8_t *body, size_t len, const char **text, const char **why) PROTO_MUSTCHECK;

/*
 * proto_read_sasl_initial: a SASLInitialResponse body ('p', answering
 * AuthenticationSASL): the mechanism name (NUL-terminated), an int32 length
 * and that many bytes of initial response. A length of -1 means no initial
 * response: *DATA NULL, *N 0, and the body must end there. Any other length
 * must be exactly the rest of the body. PROTO_OK with *MECH and *DATA
 * pointing into BODY, or PROTO_BAD with *WHY.
 */
ProtoStatus proto_read_sasl_initial(const uint8_t *body, size_t len, const char **mech, const uint8_t **data,
				    size_t *n, const char **why) PROTO_MUSTCHECK;

/*
 * proto_read_sasl_response: a SASLResponse body ('p', answering
 * AuthenticationSASLContinue): the whole body is the mechanism's data
 * (*DATA = BODY, *N = LEN, maybe 0). Always PROTO_OK; *WHY is untouched. It
 * exists so that every 'p' body goes through a reader (the SCRAM functions
 * bound and check the bytes).
 */
ProtoStatus proto_read_sasl_response(const uint8_t *body, size_t len, const uint8_t **data, size_t *n,
				     const char **why) PROTO_MUSTCHECK;

/*
 * proto_read_auth: an Authentication message body ('R'): the int32 request
 * code in *CODE (ProtoAuthCode), the bytes after it in *REST, *N. The shape
 * of the codes pgflip knows is checked: Ok, KerberosV5, CleartextPassword,
 * GSS and SSPI carry nothing; MD5Password exactly a 4-byte salt; SASL one or
 * more non-empty NUL-terminated mechanism names, then an empty one, ending at
 * the body's end; SASLContinue, SASLFinal and GSSContinue any bytes. Other
 * codes are PROTO_OK with their bytes: unsupported is the caller's verdict.
 * PROTO_BAD with *WHY for a body under 4 bytes or a known code of the wrong
 * shape.
 */
ProtoStatus proto_read_auth(const uint8_t *body, size_t len, uint32_t *code, const uint8_t **rest, size_t *n,
			    const char **why) PROTO_MUSTCHECK;

/* proto_auth_sasl_has: whether the mechanism list REST[0..N) of an
 * AuthenticationSASL (as proto_read_auth gives it) names MECHANISM. */
bool proto_auth_sasl_has(const uint8_t *rest, size_t n, const char *mechanism);

/* ---- readers for message bodies ---------------------------------------- */

/* A bounds-checked cursor over a message body. Every get fails (returns
 * false and sets bad) rather than read past the end. */
typedef struct ProtoReader {
	const uint8_t *p;
	const uint8_t *end;
	bool bad;
} ProtoReader;

void proto_reader_init(ProtoReader *r, const uint8_t *body, size_t len);
bool proto_get_uint8(ProtoReader *r, uint8_t *out) PROTO_MUSTCHECK;
bool proto_get_uint16(ProtoReader *r, uint16_t *out) PROTO_MUSTCHECK;
bool proto_get_uint32(ProtoReader *r, uint32_t *out) PROTO_MUSTCHECK;
/* A NUL-terminated string inside the body; *OUT points into it. */
bool proto_get_cstring(ProtoReader *r, const char **out) PROTO_MUSTCHECK;
/* Skip N bytes. */
bool proto_get_skip(ProtoReader *r, size_t n) PROTO_MUSTCHECK;
/* True when the cursor consumed the body exactly, with no error. */
bool proto_reader_done(const ProtoReader *r);

/* ReadyForQuery body: one byte, 'I' (idle), 'T' (in a transaction block)
 * or 'E' (in a failed transaction block). False for anything else. */
bool proto_ready_for_query_parse(const uint8_t *body, size_t len, char *status) PROTO_MUSTCHECK;

/* Fields of an ErrorResponse or NoticeResponse (section "Error and Notice
 * Message Fields"); NULL when absent. Strings point into the body. */
typedef struct ProtoErrorFields {
	const char *severity;  /* 'V' (non-localized) if present, else 'S' */
	const char *sqlstate;  /* 'C' */
	const char *message;   /* 'M' */
	const char *detail;    /* 'D' */
	const char *hint;      /* 'H' */
} ProtoErrorFields;

/* proto_error_parse: reads an ErrorResponse/NoticeResponse body. False when
 * a field is not NUL-terminated or the terminator is missing. */
bool proto_error_parse(const uint8_t *body, size_t len, ProtoErrorFields *out) PROTO_MUSTCHECK;

/* proto_query_parse: reads a Query body: the SQL text, NUL-terminated,
 * ending exactly at the body's end. */
bool proto_query_parse(const uint8_t *body, size_t len, const char **sql) PROTO_MUSTCHECK;

/* proto_parse_parse: reads the statement name and SQL text of a Parse body
 * (parameter type OIDs are checked for length but not returned). */
bool proto_parse_parse(const uint8_t *body, size_t len, const char **name, const char **sql) PROTO_MUSTCHECK;

/* proto_parameter_status_parse: reads name and value of a ParameterStatus. */
bool proto_parameter_status_parse(const uint8_t *body, size_t len, const char **name,
				  const char **value) PROTO_MUSTCHECK;

/* proto_command_complete_parse: reads the command tag ("SELECT 1", "SET"). */
bool proto_command_complete_parse(const uint8_t *body, size_t len, const char **tag) PROTO_MUSTCHECK;

/* proto_backend_key_data_parse: reads a BackendKeyData body (protocol 3.0:
 * the backend's process id and secret key, int32 each, exactly 8 bytes);
 * what a CancelRequest for that backend carries. False for any other length. */
bool proto_backend_key_data_parse(const uint8_t *body, size_t len, uint32_t *pid, uint32_t *key) PROTO_MUSTCHECK;

/* proto_negotiate_protocol_version_parse: reads a NegotiateProtocolVersion
 * body: the newest protocol version the server speaks (major << 16 | minor)
 * in *VERSION, and the count of protocol options (_pq_.*) it did not
 * recognise in *N_OPTIONS, followed by that many NUL-terminated names, which
 * must fill the body exactly. The count is checked against the bytes at
 * hand before any name is read. False for anything malformed. */
bool proto_negotiate_protocol_version_parse(const uint8_t *body, size_t len, uint32_t *version,
					    uint32_t *n_options) PROTO_MUSTCHECK;

/* ---- builders ----------------------------------------------------------- */

/*
 * ProtoBuf: a growable byte buffer for whole messages. Memory errors are
 * sticky (oom): builders then do nothing and the caller checks once, before
 * sending, with protobuf_ok(). The owner frees with protobuf_free.
 */
typedef struct ProtoBuf {
	uint8_t *data;
	size_t len;
	size_t cap;
	bool oom;
	bool borrowed;  /* data is the caller's storage (protobuf_init_on) */
} ProtoBuf;

void protobuf_init(ProtoBuf *b);
/* protobuf_init_on: starts B on the caller's STORAGE of CAP bytes (a stack
 * array, say), so that messages up to CAP bytes need no heap memory; past
 * that B moves to the heap by itself. STORAGE must outlive B's use;
 * protobuf_free is still required. */
void protobuf_init_on(ProtoBuf *b, void *storage, size_t cap);
void protobuf_reset(ProtoBuf *b);   /* len = 0, keeps the memory */
void protobuf_free(ProtoBuf *b);    /* frees the memory; b can be reused after init */
static inline bool protobuf_ok(const ProtoBuf *b) { return !b->oom; }

/* Generic message assembly: begin returns the offset of the message, which
 * end needs to fill in the length. */
size_t proto_msg_begin(ProtoBuf *b, uint8_t type);
void proto_msg_end(ProtoBuf *b, size_t start);
void proto_put_uint8(ProtoBuf *b, uint8_t v);
void proto_put_uint16(ProtoBuf *b, uint16_t v);
void proto_put_uint32(ProtoBuf *b, uint32_t v);
void proto_put_bytes(ProtoBuf *b, const void *p, size_t n);
void proto_put_cstring(ProtoBuf *b, const char *s);

/* ErrorResponse ('E') with fields S and V (SEVERITY, e.g. "FATAL"), C
 * (SQLSTATE, five characters) and M (the formatted message). */
void proto_put_error(ProtoBuf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void proto_put_verror(ProtoBuf *b, const char *severity, const char *sqlstate, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
/* NoticeResponse ('N'), same fields. */
void proto_put_notice(ProtoBuf *b, const char *severity, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* pg_type OIDs of the types pgflip's own result sets use (pg_type.dat). */
#define PROTO_OID_BOOL 16
#define PROTO_OID_INT8 20
#define PROTO_OID_INT4 23
#define PROTO_OID_TEXT 25
#define PROTO_OID_NUMERIC 1700

/* NoticeResponse with a DETAIL field (D) after the message (NULL: none). */
void proto_put_notice_detail(ProtoBuf *b, const char *severity, const char *sqlstate, const char *message,
			     const char *detail);
/* Query results (section "Message Formats"), text format:
 * RowDescription of N columns, NAMES[i] of type OID TYPES[i] (no table, the
 * type's size -1 unless it is int4 or int8, typmod -1);
 * DataRow of N VALUES[i], LENS[i] bytes each (-1: NULL, VALUES[i] unused);
 * CommandComplete with TAG ("SHOW", "PAUSE");
 * EmptyQueryResponse (a Query of only white space). */
void proto_put_row_description(ProtoBuf *b, size_t n, const char *const *names, const uint32_t *types);
void proto_put_data_row(ProtoBuf *b, size_t n, const char *const *values, const int32_t *lens);
void proto_put_command_complete(ProtoBuf *b, const char *tag);
void proto_put_empty_query_response(ProtoBuf *b);
void proto_put_auth_ok(ProtoBuf *b);                                  /* AuthenticationOk */
void proto_put_parameter_status(ProtoBuf *b, const char *name, const char *value);
void proto_put_backend_key_data(ProtoBuf *b, uint32_t pid, uint32_t key);
void proto_put_ready_for_query(ProtoBuf *b, char status);            /* 'I', 'T' or 'E' */
/* NegotiateProtocolVersion: the newest minor version of major 3 we speak,
 * and the protocol options (_pq_.*) we did not recognise. */
void proto_put_negotiate_protocol_version(ProtoBuf *b, uint32_t minor, const char *const *options, size_t n);
/* Authentication requests ('R', section "Message Formats"):
 * AuthenticationCleartextPassword (3); AuthenticationMD5Password (5) with its
 * 4-byte SALT; AuthenticationSASL (10) with MECHANISMS[0..N) (each
 * NUL-terminated, then an empty one); AuthenticationSASLContinue (11) and
 * AuthenticationSASLFinal (12) with the mechanism's DATA[0..N). */
void proto_put_auth_cleartext(ProtoBuf *b);
void proto_put_auth_md5(ProtoBuf *b, const uint8_t salt[4]);
void proto_put_auth_sasl(ProtoBuf *b, const char *const *mechanisms, size_t n);
void proto_put_auth_sasl_continue(ProtoBuf *b, const uint8_t *data, size_t n);
void proto_put_auth_sasl_final(ProtoBuf *b, const uint8_t *data, size_t n);
/* Frontend 'p' messages: SASLInitialResponse with MECH and DATA[0..N) (DATA
 * NULL: length -1, no initial response), SASLResponse with DATA[0..N), and
 * PasswordMessage with TEXT (a password or an md5 response). N must be
 * under 2^31; the caller bounds it (SCRAM messages are a few hundred bytes). */
void proto_put_sasl_initial_response(ProtoBuf *b, const char *mech, const uint8_t *data, size_t n);
void proto_put_sasl_response(ProtoBuf *b, const uint8_t *data, size_t n);
void proto_put_password(ProtoBuf *b, const char *text);
void proto_put_query(ProtoBuf *b, const char *sql);                  /* frontend Query */
/* Frontend startup packets (no type byte; section "Message Formats"):
 * StartupMessage for protocol 3.0 with the parameters NAMES[i] = VALUES[i],
 * i < N (names non-empty), then the list's terminator: the caller keeps the
 * whole under PROTO_STARTUP_MAX, which PostgreSQL enforces; SSLRequest;
 * CancelRequest for the backend PID with its secret KEY (from
 * BackendKeyData), sent on a connection of its own. */
void proto_put_startup_message(ProtoBuf *b, const char *const *names, const char *const *values, size_t n);
void proto_put_ssl_request(ProtoBuf *b);
void proto_put_cancel_request(ProtoBuf *b, uint32_t pid, uint32_t key);
void proto_put_terminate(ProtoBuf *b);                               /* frontend Terminate */

/* ---- SQL text helpers --------------------------------------------------- */

/*
 * proto_quote_literal: appends SQL string literal syntax for S to B, without
 * the message framing: 'it''s' (and E'...' with doubled backslashes when S
 * holds a backslash, so the result is right whatever standard_conforming_strings).
 */
void proto_quote_literal(ProtoBuf *b, const char *s);

#endif
