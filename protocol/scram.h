/*
 * protocol/scram.h: client-authentication primitives: SCRAM-SHA-256 (the
 * server side for our clients, the client side for logging in upstream),
 * tls-server-end-point channel binding, and PostgreSQL's md5.
 *
 * Pure code, like the rest of protocol/: bytes in, bytes out, no sockets.
 * Every cryptographic step is OpenSSL's libcrypto (HMAC, SHA-256, PBKDF2,
 * MD5, base64, RAND_bytes); secrets are compared with CRYPTO_memcmp. The
 * exchanges keep their state in caller storage (no allocation); the caller
 * wipes it with proto_scram_server_clear / proto_scram_client_clear.
 *
 * One SCRAM exchange, server side (PostgreSQL docs, "SASL Authentication"):
 *
 *   proto_scram_server_init(&st, &secret, mock, cbind, cbind_len);
 *   send AuthenticationSASL with proto_scram_server_mechanisms(&st, mechs)
 *   SASLInitialResponse -> proto_scram_server_first()  CONTINUE: send st.msg as SASLContinue
 *   SASLResponse        -> proto_scram_server_final()  DONE: send st.msg as SASLFinal,
 *                                                      then AuthenticationOk
 *   proto_scram_server_clear(&st);
 *
 * Sources: RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256), RFC 5929 section 4.1
 * (tls-server-end-point), PostgreSQL docs "SASL Authentication" and
 * "Message Formats", and the behaviour of PostgreSQL's server
 * (auth-scram.c) and libpq (fe-auth-scram.c) where the RFC leaves a choice.
 */
#ifndef PGFLIP_PROTOCOL_SCRAM_H
#define PGFLIP_PROTOCOL_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "protocol/protocol.h"

/* SHA-256 output: ClientKey, StoredKey, ServerKey, proofs, signatures. */
#define PROTO_SCRAM_KEY_LEN 32
/* Longest salt of a verifier we read; PostgreSQL makes 16 bytes. */
#define PROTO_SCRAM_SALT_MAX 64
/* PostgreSQL's SCRAM_DEFAULT_SALT_LEN: a mock salt is as long as a real one. */
#define PROTO_SCRAM_MOCK_SALT_LEN 16
/* PostgreSQL's default scram_iterations: what a mock verifier claims. */
#define PROTO_SCRAM_DEFAULT_ITERATIONS 4096
/* Longest SCRAM message accepted from a peer, in bytes. libpq's are under
 * 300 (a 24-character nonce, an empty user name, 32-byte channel-binding
 * data); 2 KiB leaves room for other drivers' longer nonces and user names
 * and bounds every buffer below. */
#define PROTO_SCRAM_MSG_MAX 2048
/* Longest nonce part we make or are given (not the peer's): 18 random bytes
 * are 24 base64 characters, as libpq and PostgreSQL use. */
#define PROTO_SCRAM_NONCE_MAX 128
/* Room for a message we build: server-first is "r=" + the client's nonce
 * (under PROTO_SCRAM_MSG_MAX) + ours (PROTO_SCRAM_NONCE_MAX) + ",s=" + 88
 * base64 characters of salt + ",i=" + 10 digits; client-final is "c=biws,r="
 * + the server's nonce (under PROTO_SCRAM_MSG_MAX) + ",p=" + 44. */
#define PROTO_SCRAM_OUT_MAX (PROTO_SCRAM_MSG_MAX + PROTO_SCRAM_NONCE_MAX + 128)
/* Channel-binding data: a digest, at most EVP_MAX_MD_SIZE (64) bytes. */
#define PROTO_SCRAM_CBIND_MAX 64
/* Longest plain password the client side keeps. */
#define PROTO_SCRAM_PASSWORD_MAX 1024

/* SASL mechanism names (PostgreSQL docs, "SASL Authentication"). */
#define PROTO_SCRAM_SHA_256 "SCRAM-SHA-256"
#define PROTO_SCRAM_SHA_256_PLUS "SCRAM-SHA-256-PLUS"
/* The only channel-binding type PostgreSQL uses (RFC 5929 section 4). */
#define PROTO_SCRAM_CBIND_TYPE "tls-server-end-point"

/* ---- verifiers ------------------------------------------------------------ */

/* PostgreSQL's SCRAM verifier, as pg_authid.rolpassword holds it. */
typedef struct ProtoScramSecret {
	int iterations;                           /* PBKDF2 rounds, >= 1 */
	uint8_t salt[PROTO_SCRAM_SALT_MAX];
	size_t salt_len;                          /* 1..PROTO_SCRAM_SALT_MAX */
	uint8_t stored_key[PROTO_SCRAM_KEY_LEN];  /* H(ClientKey) */
	uint8_t server_key[PROTO_SCRAM_KEY_LEN];  /* HMAC(SaltedPassword, "Server Key") */
	bool mock;                                /* made by proto_scram_secret_mock */
} ProtoScramSecret;

/*
 * proto_scram_secret_parse: reads TEXT (NUL-terminated), PostgreSQL's format
 * "SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>"
 * (RFC 5803's layout as PostgreSQL writes it). Iterations are decimal digits,
 * 1..INT_MAX; the salt decodes to 1..PROTO_SCRAM_SALT_MAX bytes; each key to
 * exactly 32. Base64 is strict and canonical (RFC 4648 section 4): a length
 * that is a multiple of 4, only its alphabet, '=' only as the last one or two
 * characters, zero in the bits the padding leaves unused; every base64 value
 * in a SCRAM message is read the same way.
 * True with *OUT filled (mock false); false for anything else (a text over
 * 512 bytes included), with *OUT zeroed.
 */
bool proto_scram_secret_parse(const char *text, ProtoScramSecret *out) PROTO_MUSTCHECK;

/*
 * proto_scram_secret_make: the verifier of PASSWORD (NUL-terminated bytes)
 * with SALT (1..PROTO_SCRAM_SALT_MAX bytes) and ITERATIONS (>= 1), as
 * RFC 5802 section 3: SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt,
 * iterations), StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
 * HMAC(SaltedPassword, "Server Key"). False (and *OUT zeroed) for a bad salt
 * length or count, or when libcrypto fails.
 *
 * SASLprep (RFC 4013) is not applied: the password's bytes are used as they
 * are. PostgreSQL (server and libpq) normalizes a password that is valid
 * UTF-8 with SASLprep, and uses the raw bytes when it is not UTF-8 or holds a
 * prohibited character (an ASCII control character, for one). So the result
 * equals PostgreSQL's for every ASCII password, and for UTF-8 text that
 * SASLprep leaves unchanged (NFKC-normalized, no non-ASCII space, no
 * character "mapped to nothing"): "café" in NFC works. For others (a soft
 * hyphen, a ligature, a decomposed accent) a client that applies SASLprep
 * computes other keys, and its login fails (PROTO_SCRAM_FAIL; never a false
 * accept). Store such passwords as a verifier made by PostgreSQL instead.
 */
bool proto_scram_secret_make(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
			     ProtoScramSecret *out) PROTO_MUSTCHECK;

/*
 * proto_scram_secret_mock: a made-up verifier for a user we do not know, so
 * that the exchange looks the same as for a real one and probing user names
 * shows nothing (PostgreSQL does the same, "mock authentication"). KEY is a
 * 32-byte secret of the process (random at start, say); the salt is the first
 * PROTO_SCRAM_MOCK_SALT_LEN bytes of HMAC-SHA-256(KEY, USER), so a user sees
 * the same salt on each try for one KEY; iterations are
 * PROTO_SCRAM_DEFAULT_ITERATIONS. The keys are HMACs of KEY too, which no
 * proof matches short of a SHA-256 preimage, and OUT->mock is set, so that
 * proto_scram_server_init treats it as mock whatever its MOCK argument says.
 * Cannot fail: should libcrypto, the salt and keys are zeros (still stable).
 * The exchange costs the same for a mock as for a real verifier; making a
 * real one from a plain password (PBKDF2) per login would not, so make those
 * once, when the auth file is loaded.
 */
void proto_scram_secret_mock(const uint8_t key[32], const char *user, ProtoScramSecret *out);

/* proto_scram_secret_clear: wipes S (OPENSSL_cleanse). */
void proto_scram_secret_clear(ProtoScramSecret *s);

/* ---- the exchange ------------------------------------------------------------ */

typedef enum {
	PROTO_SCRAM_CONTINUE = 0, /* send the message in st->msg (SASLContinue), wait for the next */
	PROTO_SCRAM_DONE,         /* proof verified: send st->msg as SASLFinal, then AuthenticationOk */
	PROTO_SCRAM_FAIL,         /* wrong password (or mock secret): 28P01 */
	PROTO_SCRAM_BAD,          /* malformed / protocol violation / channel-binding mismatch: *why says what */
} ProtoScramStatus;

/* Where an exchange is; every call checks it (a call out of turn is BAD).
 * FAIL and BAD end the exchange. */
typedef enum {
	PROTO_SCRAM_STAGE_FIRST = 0, /* waiting for the first message */
	PROTO_SCRAM_STAGE_FINAL,     /* first answered, waiting for the final message */
	PROTO_SCRAM_STAGE_VERIFY,    /* client side: client-final sent, waiting for server-final */
	PROTO_SCRAM_STAGE_END,       /* DONE, FAIL or BAD given */
} ProtoScramStage;

/* Server side of one exchange. The caller reads msg/msg_len and client_key;
 * the rest is private. About 7 KiB. */
typedef struct ProtoScramServer {
	ProtoScramStage stage;
	ProtoScramSecret secret;
	bool mock;
	uint8_t cbind[PROTO_SCRAM_CBIND_MAX];
	size_t cbind_len;                               /* 0: the client link is not TLS */
	char cbind_flag;                                /* the client's gs2-cbind-flag: 'n', 'y' or 'p' */
	char client_first_bare[PROTO_SCRAM_MSG_MAX + 1];
	size_t client_first_bare_len;
	char server_first[PROTO_SCRAM_OUT_MAX];
	size_t server_first_len;
	size_t nonce_len;                               /* client + server nonce, at server_first + 2 */
	char msg[PROTO_SCRAM_OUT_MAX];                  /* to send; NUL-terminated, msg_len bytes */
	size_t msg_len;
	uint8_t client_key[PROTO_SCRAM_KEY_LEN];        /* after DONE: the client's ClientKey */
} ProtoScramServer;

/*
 * proto_scram_server_init: starts an exchange against SECRET (copied).
 * CBIND: the tls-server-end-point hash of our certificate when the client
 * link is TLS (proto_tls_server_end_point; CBIND_LEN 1..PROTO_SCRAM_CBIND_MAX
 * bytes), then SCRAM-SHA-256-PLUS is offered and accepted; NULL/0 otherwise
 * (a longer CBIND_LEN counts as none). MOCK (or SECRET->mock): SECRET is made
 * up; the exchange runs to the end, computing as much as a real one, and
 * answers FAIL.
 */
void proto_scram_server_init(ProtoScramServer *st, const ProtoScramSecret *secret, bool mock, const uint8_t *cbind,
			     size_t cbind_len);

/* The most mechanisms proto_scram_server_mechanisms names. */
#define PROTO_SCRAM_MECHANISMS_MAX 2

/*
 * proto_scram_server_mechanisms: the mechanisms to offer in
 * AuthenticationSASL, in PostgreSQL's order: "SCRAM-SHA-256-PLUS" (only when
 * ST has channel-binding data) then "SCRAM-SHA-256". Fills OUT (static
 * strings) and returns how many (1 or 2); give them to proto_put_auth_sasl.
 */
size_t proto_scram_server_mechanisms(const ProtoScramServer *st, const char *out[PROTO_SCRAM_MECHANISMS_MAX]);

/*
 * proto_scram_server_first: the client's SASLInitialResponse: MECHANISM
 * (NUL-terminated) and its client-first-message, DATA[0..N) (RFC 5802
 * section 7; proto_read_sasl_initial gives both). SERVER_NONCE: our nonce
 * part, printable and 1..PROTO_SCRAM_NONCE_MAX characters (tests pass RFC
 * 7677's); NULL makes one of 18 random bytes, base64.
 *
 * CONTINUE: st->msg holds server-first-message "r=<nonce>,s=<salt>,i=<n>"
 * (send it as SASLContinue; it stays there until the final step). BAD (the
 * exchange is over, st->msg empty; *WHY a static reason): called out of turn; a mechanism that is not one we offer (PLUS
 * without channel-binding data); N = 0, over PROTO_SCRAM_MSG_MAX or a NUL in
 * DATA; a gs2 header that does not parse; flag 'n' or 'y' with PLUS, 'p' with
 * plain SCRAM-SHA-256, 'p' with a type other than tls-server-end-point; 'y'
 * when we offered PLUS (the client could bind and thinks we cannot: a
 * downgrade); an authzid ("a="); a mandatory extension ("m="); no "n=" or
 * "r=" attribute; a nonce that is empty or not printable (%x21-2B / %x2D-7E);
 * a malformed extension after the nonce. Well-formed extensions after the
 * nonce are ignored, as PostgreSQL does. The "n=" user name is ignored: the
 * user is the StartupMessage's (PostgreSQL sends it empty). The outcome never
 * depends on the secret, mock or not.
 */
ProtoScramStatus proto_scram_server_first(ProtoScramServer *st, const char *mechanism, const uint8_t *data, size_t n,
					  const char *server_nonce, const char **why) PROTO_MUSTCHECK;

/*
 * proto_scram_server_final: the client's SASLResponse, client-final-message
 * DATA[0..N): "c=<base64 gs2 header + cbind data>,r=<nonce>[,ext...],p=<proof>"
 * (RFC 5802 sections 3 and 7).
 *
 * DONE: the proof is right: st->msg holds server-final-message "v=<base64
 * ServerSignature>" (send it as SASLFinal, then AuthenticationOk) and
 * st->client_key the client's ClientKey (ClientProof XOR ClientSignature),
 * for logging in upstream with it (proto_scram_client_init_keys).
 * FAIL: the proof is wrong, or the secret is mock (answer 28P01
 * invalid_password); st->msg is empty, client_key zeros, *WHY a static
 * reason for the log (the same for both, so the log cannot tell them apart
 * either).
 * BAD (*WHY a static reason): called out of turn; N = 0, over
 * PROTO_SCRAM_MSG_MAX or a NUL; no "c=" first; c= is not exactly the base64
 * of the client's gs2 header (plus our channel-binding data with 'p'): a
 * channel-binding mismatch; a nonce other than client + server nonce; a
 * malformed attribute; no proof, one that is not base64 of 32 bytes, or bytes
 * after it. Every path ends the exchange.
 */
ProtoScramStatus proto_scram_server_final(ProtoScramServer *st, const uint8_t *data, size_t n,
					  const char **why) PROTO_MUSTCHECK;

/* proto_scram_server_clear: wipes ST (keys, proof material, messages). */
void proto_scram_server_clear(ProtoScramServer *st);

/* ---- client side ------------------------------------------------------------- */

/* Client side of one exchange, for logging in to an upstream PostgreSQL:
 * with the keys a client proved (PgBouncer does the same) or a password. The
 * caller reads msg/msg_len; the rest is private. No channel binding ("n,,"). */
typedef struct ProtoScramClient {
	ProtoScramStage stage;
	bool have_keys;                                 /* keys given; else derive from password */
	char password[PROTO_SCRAM_PASSWORD_MAX + 1];
	uint8_t client_key[PROTO_SCRAM_KEY_LEN];
	uint8_t server_key[PROTO_SCRAM_KEY_LEN];
	char client_first_bare[PROTO_SCRAM_NONCE_MAX + 8];  /* "n=,r=" + nonce */
	size_t client_first_bare_len;
	size_t client_nonce_len;                        /* at client_first_bare + 5 */
	uint8_t server_signature[PROTO_SCRAM_KEY_LEN];  /* what server-final must carry */
	char msg[PROTO_SCRAM_OUT_MAX];                  /* to send; NUL-terminated, msg_len bytes */
	size_t msg_len;
} ProtoScramClient;

/*
 * proto_scram_client_init_keys: starts an exchange with CLIENT_KEY and
 * SERVER_KEY (from a verified client: its st->client_key and the verifier's
 * server_key). The server's salt and iteration count are then not used: the
 * login works when the upstream holds the same verifier as the one the
 * client proved against (same salt, count and password).
 */
void proto_scram_client_init_keys(ProtoScramClient *st, const uint8_t client_key[32], const uint8_t server_key[32]);

/*
 * proto_scram_client_init_password: starts an exchange with PASSWORD
 * (NUL-terminated, copied; no SASLprep, see proto_scram_secret_make); the
 * keys are derived from the server's salt and count. The count is the
 * server's (up to INT_MAX): the upstream is trusted with our CPU time.
 * False when PASSWORD is longer than PROTO_SCRAM_PASSWORD_MAX bytes (ST is
 * then cleared and unusable).
 */
bool proto_scram_client_init_password(ProtoScramClient *st, const char *password) PROTO_MUSTCHECK;

/*
 * proto_scram_client_first: client-first-message "n,,n=,r=<nonce>" in
 * st->msg (the user name is empty, as libpq sends it: the server takes the
 * StartupMessage's); send it in SASLInitialResponse with mechanism
 * "SCRAM-SHA-256". CLIENT_NONCE: printable, 1..PROTO_SCRAM_NONCE_MAX
 * characters (tests); NULL makes 18 random bytes, base64. False (the
 * exchange is over) when called out of turn, for a bad nonce or when the
 * random source fails.
 */
bool proto_scram_client_first(ProtoScramClient *st, const char *client_nonce) PROTO_MUSTCHECK;

/*
 * proto_scram_client_final: the server's SASLContinue, server-first-message
 * SERVER_FIRST[0..N): "r=<nonce>,s=<salt>,i=<count>". CONTINUE: st->msg holds
 * client-final-message "c=biws,r=<nonce>,p=<proof>" (send it as
 * SASLResponse). BAD (*WHY a static reason, the exchange is over): out of
 * turn; N = 0, over PROTO_SCRAM_MSG_MAX or a NUL; a mandatory extension; a
 * nonce that does not start with ours, has no server part or is not
 * printable; a salt that is not base64 of 1..PROTO_SCRAM_SALT_MAX bytes; a
 * count that is not 1..INT_MAX; anything after the count (libpq refuses it
 * too); libcrypto failing.
 */
ProtoScramStatus proto_scram_client_final(ProtoScramClient *st, const uint8_t *server_first, size_t n,
					  const char **why) PROTO_MUSTCHECK;

/*
 * proto_scram_client_verify: the server's SASLFinal, server-final-message
 * SERVER_FINAL[0..N). DONE when it is "v=<base64 ServerSignature>" with the
 * signature we expect (compared in constant time): the server knows the
 * verifier. FAIL for "e=invalid-proof" (the server says our proof is wrong).
 * BAD (*WHY): out of turn; a wrong signature (the peer does not know the
 * verifier: do not trust it); another "e=" error; anything malformed or
 * trailing. Every path ends the exchange.
 */
ProtoScramStatus proto_scram_client_verify(ProtoScramClient *st, const uint8_t *server_final, size_t n,
					   const char **why) PROTO_MUSTCHECK;

/* proto_scram_client_clear: wipes ST (password, keys, messages). */
void proto_scram_client_clear(ProtoScramClient *st);

/* ---- channel binding ----------------------------------------------------------- */

/*
 * proto_tls_server_end_point: RFC 5929 section 4.1 tls-server-end-point: the
 * hash of CERT's DER encoding with the hash algorithm of CERT's signature,
 * SHA-256 when that is MD5 or SHA-1 (RSA-PSS counts by its parameters'
 * hash). OUT has room for EVP_MAX_MD_SIZE (64) bytes; *OUT_LEN gets the
 * length. False when it cannot tell (a signature with no separate hash, such
 * as Ed25519, or an unknown one): then offer no SCRAM-SHA-256-PLUS.
 */
bool proto_tls_server_end_point(const X509 *cert, uint8_t *out, size_t *out_len) PROTO_MUSTCHECK;

/* ---- md5 ----------------------------------------------------------------------- */

/* Length of "md5" + 32 hex digits, and the buffer that holds it with a NUL. */
#define PROTO_MD5_SECRET_LEN 35
#define PROTO_MD5_SECRET_SIZE 36

/*
 * proto_md5_secret: PostgreSQL's stored md5 password, "md5" +
 * hex(md5(PASSWORD || USER)) in lower case, NUL-terminated in OUT. False
 * (OUT empty) when libcrypto has no MD5 (a FIPS provider).
 */
bool proto_md5_secret(const char *user, const char *password, char out[PROTO_MD5_SECRET_SIZE]) PROTO_MUSTCHECK;

/*
 * proto_md5_check: whether RESPONSE (the PasswordMessage's text, answering an
 * AuthenticationMD5Password with SALT) is "md5" + hex(md5(hex(md5(password
 * || USER)) || SALT)), as PostgreSQL's md5 method (docs: "Password
 * Authentication"). SECRET is a stored hash ("md5" + 32 lower-case hex
 * digits, which already holds the user; USER is then unused) or a plain
 * password; a SCRAM verifier ("SCRAM-SHA-256$...") cannot answer md5 and
 * gives false, as in PostgreSQL. The comparison is constant-time. False too
 * when libcrypto has no MD5.
 */
bool proto_md5_check(const char *secret, const char *user, const uint8_t salt[4], const char *response);

#endif
