/*
 * POP3 client (RFC 1939) over our OpenSSL transport (src/lib/net/):
 * CAPA (RFC 2449), STLS (RFC 2595), AUTH (RFC 5034) with PLAIN, XOAUTH2
 * and OAUTHBEARER (RFC 7628), USER/PASS, UIDL, LIST, streamed RETR, DELE,
 * QUIT.  Reasoning: doc/internals/pop3.md.
 *
 * libetpan's mailpop3 is not used: it does SASL only through cyrus-sasl
 * (no XOAUTH2/OAUTHBEARER) and RETR returns whole messages in memory.
 * Lines are read through our own bounded buffer, so a hostile server
 * cannot make us hold an endless line; message bodies are dot-unstuffed
 * and handed to a callback chunk by chunk.
 *
 * Every function that talks to the server fills ERR with the server's
 * sanitized reply or the transport's detail.  After a protocol or
 * transport error in the middle of a reply the session is desynchronized:
 * further commands fail with MX_ERR_PROTOCOL (close it with
 * mx_pop3_close()).
 *
 * Private to src/backends/ (and the unit tests and fuzz target of this
 * client): everyone else reaches POP3 through the backend table
 * mx_backend_pop3 (the maildrop model, src/backends/backend.h).
 *
 * Deletions (DELE) only take effect when the server gets QUIT
 * (mx_pop3_quit()); mx_pop3_close() without QUIT discards them.
 */
#ifndef MX_POP3_H
#define MX_POP3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/util.h"

/* Longest unique-id (RFC 1939 7: 1 to 70 characters 0x21-0x7E). */
#define MX_POP3_UIDL_MAX 70

/* Largest message accepted by RETR (providers cap at 25-50 MB). */
#define MX_POP3_MAX_MESSAGE ((uint64_t)256 << 20)

/* Capabilities from CAPA (RFC 2449). */
#define MX_POP3_CAP_STLS 0x01u
#define MX_POP3_CAP_UIDL 0x02u
#define MX_POP3_CAP_USER 0x04u
#define MX_POP3_CAP_SASL 0x08u
#define MX_POP3_CAP_TOP 0x10u
#define MX_POP3_CAP_RESP_CODES 0x20u
#define MX_POP3_CAP_CAPA 0x40u /* the server answered CAPA at all */

struct mx_pop3; /* one session */

/* How to connect and log in.  All strings are borrowed for the call. */
struct mx_pop3_cfg {
	const char *host;
	uint16_t port;
	enum mx_tls_mode tls;    /* IMPLICIT (pop3s), STARTTLS (STLS), NONE */
	bool insecure_plaintext; /* required for MX_TLS_NONE */
	const char *ca_file;     /* NULL = system store */
	int timeout_s;           /* <= 0: 60 */
	const char *user;
	const char *password;     /* password login, or NULL */
	const char *access_token; /* OAuth2 bearer login (wins), or NULL */
	/* NULL = the strongest the server offers for our credentials
	 * (token: OAUTHBEARER, else XOAUTH2; password: AUTH PLAIN, else
	 * USER/PASS).  Otherwise exactly one of "OAUTHBEARER", "XOAUTH2",
	 * "PLAIN", "USER" (tests, broken servers). */
	const char *mech;
};

/* One message of the maildrop (UIDL joined with LIST). */
struct mx_pop3_msg {
	uint32_t num;                     /* message number, this session */
	uint64_t size;                    /* LIST octets (may be approximate) */
	char uidl[MX_POP3_UIDL_MAX + 1];  /* unique-id, NUL-terminated */
};

/*
 * Connects, reads the greeting, CAPA; with MX_TLS_STARTTLS issues STLS
 * (refused before any credential is sent if the server does not offer it,
 * or if it sent bytes after its STLS answer), then CAPA again over TLS;
 * then logs in.  *P_R is the caller's (mx_pop3_close()).
 * Errors: MX_ERR_INSECURE (no TLS and no opt-in, no STLS), MX_ERR_NET,
 * MX_ERR_TIMEOUT, MX_ERR_TLS, MX_ERR_TLS_VERIFY, MX_ERR_AUTH (credentials
 * refused, "-ERR [AUTH]"), MX_ERR_SERVER ("-ERR [SYS/TEMP]", "[IN-USE]",
 * "[LOGIN-DELAY]": temporary), MX_ERR_UNSUPPORTED (no mechanism for our
 * credentials), MX_ERR_PROTOCOL (hostile or garbled replies),
 * MX_ERR_CONFIG (no credentials), MX_ERR_INVAL (user name too long for a
 * command line), MX_ERR_NOMEM.
 */
int mx_pop3_connect(const struct mx_pop3_cfg *cfg, struct mx_pop3 **p_r,
		    struct mx_error *err);

/*
 * mx_pop3_connect() for a stored account: host, port, TLS mode, user,
 * CA file and timeout from A; the access token if A has one, else the
 * password (mx_account_password(): stored, else the password file).  The
 * environment variable MXSYNC_POP3_MECH, if set, forces the mechanism
 * (see mx_pop3_cfg.mech; meant for tests).  Errors: as mx_pop3_connect(),
 * plus those of mx_account_password() (MX_ERR_CONFIG: no password,
 * MX_ERR_IO: unreadable password file).
 */
int mx_pop3_connect_account(const struct mx_account *a, struct mx_pop3 **p_r,
			    struct mx_error *err);

/* The login mechanism that succeeded ("OAUTHBEARER", "XOAUTH2", "PLAIN",
 * "USER"), borrowed from P. */
const char *mx_pop3_mech(const struct mx_pop3 *p);

/* MX_POP3_CAP_* bits of the last CAPA (after TLS when STLS was used). */
unsigned mx_pop3_caps(const struct mx_pop3 *p);

/*
 * UIDL and LIST: every message of the maildrop, ascending message number,
 * in *V_R (malloc()ed, free()) with *N_R entries.  Errors:
 * MX_ERR_UNSUPPORTED (the server has no UIDL: sync cannot tell messages
 * apart), MX_ERR_PROTOCOL (a garbled line, a unique-id outside 0x21-0x7E
 * or longer than 70, a duplicate unique-id or number, UIDL and LIST
 * disagreeing, a missing terminating "."), network errors, MX_ERR_NOMEM.
 */
int mx_pop3_list(struct mx_pop3 *p, struct mx_pop3_msg **v_r, size_t *n_r,
		 struct mx_error *err);

/* Receives message bytes in order (dot-unstuffed, CRLF as sent).  DATA is
 * borrowed for the call.  A non-zero return stops the transfer with that
 * error (the session is then unusable). */
typedef int mx_pop3_data_cb(const char *data, size_t len, void *ctx,
			    struct mx_error *err);

/*
 * RETR NUM, streamed to CB chunk by chunk (memory: one read buffer).
 * Errors: MX_ERR_SERVER (-ERR, e.g. no such message), MX_ERR_PROTOCOL
 * (more than MX_POP3_MAX_MESSAGE bytes; the connection closed before the
 * terminating "." arrived: then the message is incomplete and the caller
 * must discard what it got), network errors, or CB's error.
 */
int mx_pop3_retr(struct mx_pop3 *p, uint32_t num, mx_pop3_data_cb *cb,
		 void *ctx, struct mx_error *err);

/* DELE NUM: marks a message; it is removed only by mx_pop3_quit().
 * Errors: MX_ERR_SERVER, network errors, MX_ERR_PROTOCOL. */
int mx_pop3_dele(struct mx_pop3 *p, uint32_t num, struct mx_error *err);

/*
 * QUIT: the server removes the messages marked with DELE (UPDATE state)
 * and closes.  Errors: MX_ERR_SERVER (-ERR: the server says it could not
 * remove some), network errors.  Call mx_pop3_close() afterwards.
 */
int mx_pop3_quit(struct mx_pop3 *p, struct mx_error *err);

/* Closes the connection (without QUIT: pending DELEs are discarded by the
 * server), frees, sets *P to NULL.  NULL-safe. */
void mx_pop3_close(struct mx_pop3 **p);

/*
 * Parsers, exposed for unit tests.  Each takes one response line without
 * its CRLF.  mx_pop3_parse_uidl: "NUM SP UNIQUE-ID"; mx_pop3_parse_list:
 * "NUM SP OCTETS".  Return MX_OK or MX_ERR_PROTOCOL with a detail.
 */
int mx_pop3_parse_uidl(const char *line, uint32_t *num_r,
		       char uidl_r[MX_POP3_UIDL_MAX + 1], struct mx_error *err);
int mx_pop3_parse_list(const char *line, uint32_t *num_r, uint64_t *size_r,
		       struct mx_error *err);

#endif
