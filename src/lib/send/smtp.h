/*
 * SMTP submission client (RFC 5321, RFC 6409) on our OpenSSL transport
 * (src/lib/net): implicit TLS or STARTTLS (RFC 3207), AUTH (RFC 4954:
 * OAUTHBEARER RFC 7628, XOAUTH2, PLAIN, LOGIN), PIPELINING (RFC 2920),
 * SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531) and
 * enhanced status codes (RFC 2034/3463).  The message is streamed from a
 * read callback with dot-stuffing and CRLF normalisation on the fly, so
 * memory stays bounded whatever its size.  Why libetpan's mailsmtp is not
 * used: doc/internals/send.md, "SMTP client".
 *
 * Error classes (struct mx_error's retry field) follow the reply codes:
 * 4xx -> MX_ERR_SERVER, MX_RETRY_TEMP; 5xx -> MX_ERR_SERVER (or MX_ERR_AUTH
 * for 530/534/535/538 during AUTH), MX_RETRY_FINAL.  The detail quotes the
 * server's reply ("RCPT TO:<x@y>: 550 5.1.1 no such user"), never a
 * password or token.  Trace: -D smtp (every command and reply; AUTH lines
 * redacted; message content never traced).
 */
#ifndef MX_SMTP_H
#define MX_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"
#include "util/util.h"

/* Longest reply line accepted (RFC 5321 says 512; servers exceed it). */
#define MX_SMTP_MAX_LINE 4096

/* EHLO keywords we understand (mx_smtp_ext()). */
#define MX_SMTP_EXT_PIPELINING 0x001u
#define MX_SMTP_EXT_SIZE 0x002u
#define MX_SMTP_EXT_8BITMIME 0x004u
#define MX_SMTP_EXT_SMTPUTF8 0x008u
#define MX_SMTP_EXT_STARTTLS 0x010u
#define MX_SMTP_EXT_ENHANCEDSTATUSCODES 0x020u
#define MX_SMTP_EXT_AUTH 0x040u
#define MX_SMTP_EXT_CHUNKING 0x080u
#define MX_SMTP_EXT_DSN 0x100u

struct mx_smtp_cfg {
	const char *host;
	uint16_t port;
	/* MX_TLS_IMPLICIT (465) or MX_TLS_STARTTLS (587; a server without
	 * STARTTLS is refused).  MX_TLS_NONE only with insecure_plaintext
	 * or a loopback host. */
	enum mx_tls_mode tls;
	bool insecure_plaintext;
	const char *user;         /* NULL: no AUTH (e.g. a local relay) */
	const char *password;     /* PLAIN / LOGIN */
	const char *access_token; /* OAUTHBEARER / XOAUTH2; wins over password */
	/* Forces one mechanism ("PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER",
	 * case-insensitive); NULL chooses the strongest one offered. */
	const char *mechanism;
	const char *ca_file;      /* NULL: system CA store */
	int timeout_s;            /* per read/write/connect; <= 0: 60 */
	/* EHLO argument; NULL: "[127.0.0.1]".  An address literal passes
	 * every EHLO syntax check (unlike "localhost") and does not leak the
	 * machine's host name or its private address into Received: fields. */
	const char *helo_name;
	bool no_pipelining;       /* one command per round trip (tests, bench) */
};

/* One session: connected, greeted, TLS, authenticated. */
struct mx_smtp;

/*
 * Connects to CFG->host:port, reads the greeting, says EHLO (HELO only
 * if EHLO is refused with 5xx), upgrades with STARTTLS when asked (and
 * forgets everything EHLO said before TLS), and authenticates with the
 * strongest mechanism the server offers for the credentials given:
 * access_token -> OAUTHBEARER, else XOAUTH2; password -> PLAIN (initial
 * response), else LOGIN.  CFG's strings are copied; CFG may go away.
 * *S_R is the caller's, released with mx_smtp_close().
 * Errors:
 *  MX_ERR_INVAL     bad CFG (no host, bad helo_name, unknown mechanism,
 *                   user without password or token)
 *  MX_ERR_INSECURE  plaintext to a non-loopback host without
 *                   insecure_plaintext; STARTTLS not offered or refused
 *                   (no credentials are sent then)
 *  MX_ERR_NET, MX_ERR_TIMEOUT, MX_ERR_TLS, MX_ERR_TLS_VERIFY  transport
 *  MX_ERR_PROTOCOL  malformed, overlong or inconsistent reply
 *  MX_ERR_SERVER    greeting or EHLO refused (4xx temporary, 5xx final)
 *  MX_ERR_UNSUPPORTED  no usable AUTH mechanism (or the forced one is
 *                   not offered)
 *  MX_ERR_AUTH      credentials rejected (530/534/535/538), server text
 *                   in the detail
 *  MX_ERR_NOMEM
 */
int mx_smtp_open(const struct mx_smtp_cfg *cfg, struct mx_smtp **s_r,
		 struct mx_error *err);

/* SIZE limit the server advertised (bytes); 0 = none or unlimited. */
uint64_t mx_smtp_size_limit(const struct mx_smtp *s);

/* MX_SMTP_EXT_* bits of the last EHLO (after TLS when TLS is on). */
unsigned mx_smtp_ext(const struct mx_smtp *s);

/* The AUTH mechanism used ("PLAIN", ...), or NULL if none.  Static. */
const char *mx_smtp_mechanism(const struct mx_smtp *s);

/* One recipient's outcome. */
struct mx_smtp_rcpt {
	const char *addr; /* foreign: the caller's rcpts[i] */
	int code;         /* reply code, e.g. 250 or 550; 0 = no reply */
	char enh[16];     /* enhanced status code "5.1.1", or "" */
	char *reply;      /* owned: "550 5.1.1 no such user" (lines joined
			   * by a space, control bytes as '?'), or NULL */
};

struct mx_smtp_result {
	struct mx_smtp_rcpt *rcpt; /* owned, nrcpt entries */
	size_t nrcpt;
	size_t accepted;           /* recipients with a 2xx reply */
	int data_code;             /* final reply to the message; 0 = not sent */
	char *data_reply;          /* owned, like mx_smtp_rcpt.reply */
};

/* Frees what a result holds and zeroes it.  NULL-safe. */
void mx_smtp_result_free(struct mx_smtp_result *r);

/*
 * Message source: copies up to CAP bytes into BUF; returns the count,
 * 0 at the end, -1 on error.  Any line endings (CRLF, LF, CR).
 */
typedef ssize_t mx_smtp_read_fn(void *ctx, char *buf, size_t cap);

/* What the caller knows about the message's bytes (mx_smtp_send FLAGS). */
#define MX_SMTP_8BIT 0x1u /* has bytes >= 0x80: BODY=8BITMIME, refused
			   * up front if the server lacks 8BITMIME */
#define MX_SMTP_7BIT 0x2u /* 7-bit only: no BODY= parameter */

/*
 * One mail transaction: MAIL FROM:<FROM> (SIZE=n when the server has SIZE
 * and SIZE > 0; BODY=8BITMIME, SMTPUTF8 as needed), RCPT TO for each of
 * RCPTS, DATA, then the message from READ(CTX) streamed with dot-stuffing
 * and bare LF / bare CR turned into CRLF, ended with CRLF.CRLF.  With
 * PIPELINING (and !no_pipelining) MAIL, RCPT... and DATA go out in one
 * write and the replies are read in order.  FROM may be "" (null
 * reverse-path).  SIZE is the message size in bytes or 0 if unknown.
 * FLAGS: MX_SMTP_8BIT, MX_SMTP_7BIT or 0 (unknown: BODY=8BITMIME is
 * declared if the server offers it; if it does not and an 8-bit byte
 * shows up, the connection is dropped before the final dot so that
 * nothing is delivered, and the call fails with MX_ERR_INVAL).
 *
 * RES (required) receives every recipient's reply and the final DATA
 * reply, on success and on failure; free it with mx_smtp_result_free().
 * MX_OK means the server accepted the message for RES->accepted
 * recipients, which may be fewer than NRCPTS: partial acceptance is
 * success, and the rejected ones are in RES.  A session can carry many
 * transactions; after a failed one the next begins with RSET.
 * Errors:
 *  MX_ERR_INVAL     bad address (CR, LF, '<', '>', control bytes), no
 *                   recipient, SIZE above the server's limit, 8-bit
 *                   content the server cannot take (nothing sent)
 *  MX_ERR_UNSUPPORTED  non-ASCII address and no SMTPUTF8
 *  MX_ERR_SERVER    MAIL FROM, DATA or the message refused, or no
 *                   recipient accepted (the first refusal in the detail;
 *                   TEMP if any refusal was 4xx, else FINAL)
 *  MX_ERR_IO        READ failed (the connection is dropped: nothing
 *                   delivered)
 *  MX_ERR_NET, MX_ERR_TIMEOUT, MX_ERR_TLS  transport (the session is
 *                   unusable afterwards)
 *  MX_ERR_PROTOCOL  malformed reply (session unusable)
 *  MX_ERR_NOMEM
 */
int mx_smtp_send(struct mx_smtp *s, const char *from,
		 const char *const *rcpts, size_t nrcpts, mx_smtp_read_fn *read,
		 void *ctx, uint64_t size, unsigned flags,
		 struct mx_smtp_result *res, struct mx_error *err);

/* Sends QUIT (best effort), closes, frees, sets *S to NULL.  NULL-safe. */
void mx_smtp_close(struct mx_smtp **s);

/*
 * DATA encoder, exposed for the unit tests and for anyone who must
 * produce SMTP DATA bytes: dot-stuffing (RFC 5321 4.5.2) and line ending
 * normalisation, chunk by chunk with state carried across chunks.
 */
struct mx_smtp_enc {
	bool bol;       /* at the beginning of a line */
	bool cr;        /* last input byte was a CR not yet resolved */
	bool eight_bit; /* a byte >= 0x80 was seen */
};

void mx_smtp_enc_init(struct mx_smtp_enc *e);

/* Encodes N bytes of IN into OUT, which must hold 2 * N + 2 bytes;
 * returns the bytes written. */
size_t mx_smtp_enc_chunk(struct mx_smtp_enc *e, const char *in, size_t n,
			 char *out);

/* Writes the end: CRLF if the last line is open, then ".\r\n" into OUT
 * (7 bytes at most); returns the bytes written. */
size_t mx_smtp_enc_end(struct mx_smtp_enc *e, char *out);

/*
 * Reply line parser, exposed for the unit tests.  Feed each line of a
 * reply (without CRLF) in order; returns 1 if it was the last line, 0 if
 * more follow, -1 on a malformed line (detail in ERR, MX_ERR_PROTOCOL).
 * *CODE holds the reply code; it must be 0 before the first line and is
 * checked for consistency on the next ones.  *TEXT_R points into LINE at
 * the text after "NNN-" / "NNN ".
 */
int mx_smtp_parse_line(const char *line, size_t len, int *code,
		       const char **text_r, struct mx_error *err);

#endif
