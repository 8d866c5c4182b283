/*
 * Network transport for every mail protocol: a libetpan mailstream whose
 * low-level driver is ours, on OpenSSL, so that the peer certificate and
 * the host name are always verified (Debian's libetpan uses GnuTLS and
 * verifies neither).
 *
 * One driver serves both plain and TLS connections: mx_net_starttls()
 * upgrades a plain stream in place after the protocol's STARTTLS command
 * succeeded, so no low driver has to be swapped.
 *
 * Every function fills ERR with an explicit detail, e.g.
 *   "connect 127.0.0.1:993: connection refused"
 *   "certificate verify failed: self-signed certificate (host mail.example)"
 *   "host name mismatch: certificate is not valid for mail.example"
 *   "timed out after 30 s"
 */
#ifndef MX_NET_H
#define MX_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <libetpan/libetpan.h>

#include "net/interrupt.h"
#include "util/util.h"

struct mx_net_opts {
	const char *ca_file; /* PEM bundle; NULL = system default CA store */
	int timeout_s;       /* connect/read/write timeout and step deadline
			      * (see mx_net_step); <= 0 means 60 */
};

/*
 * Connects to HOST:PORT (name resolved with getaddrinfo, every address
 * tried).  With TLS true, performs the TLS handshake at once (implicit
 * TLS: TLS >= 1.2, SNI, SSL_VERIFY_PEER, SSL_set1_host).  Returns a
 * mailstream (buffer 8192) in *S_R, owned by the caller (mailstream_close,
 * or via mailimap_free after mailimap_connect took it).
 * Errors: MX_ERR_NET, MX_ERR_TIMEOUT, MX_ERR_TLS, MX_ERR_TLS_VERIFY,
 * MX_ERR_NOMEM.
 */
int mx_net_connect(const char *host, uint16_t port, bool tls,
		   const struct mx_net_opts *opts, mailstream **s_r,
		   struct mx_error *err);

/*
 * Upgrades a plain stream made by mx_net_connect() to TLS, with the same
 * verification.  Fails with MX_ERR_PROTOCOL if the stream's read buffer
 * still holds bytes (data injected before the handshake).
 */
int mx_net_starttls(mailstream *s, const char *host,
		    const struct mx_net_opts *opts, struct mx_error *err);

/*
 * A protocol's check of what the server sends (IMAP: imap_guard.h).  It
 * sees every byte read from S, in order, before the protocol parser does;
 * returning non-MX_OK with ERR set fails that read, breaks the stream,
 * and mx_net_stream_error() reports ERR.
 */
typedef int mx_net_read_filter(void *ctx, const void *buf, size_t len,
			       struct mx_error *err);

/* Installs FN (NULL: none) on a stream made by mx_net_connect(). */
void mx_net_set_read_filter(mailstream *s, mx_net_read_filter *fn, void *ctx);

/*
 * Starts a new deadline step on S.  Every wait for the server is bounded
 * by the timeout, and every step (from the connect, or from a write, to
 * the next write) by the timeout plus 1 s per KiB moved in it, so that a
 * server dripping bytes cannot extend it for ever.  Call this before
 * reading what the server sent after a wait of the caller's own (IDLE),
 * which is not an answer to the last command.
 */
void mx_net_step(mailstream *s);

/* True if S is a stream of ours and is currently encrypted. */
bool mx_net_is_tls(mailstream *s);

/*
 * After a libetpan call failed with a stream error, copies the last
 * transport error of S (timeout, reset, TLS alert ...) into ERR and
 * returns its code; returns MX_ERR_NET with "connection closed by server"
 * when the driver saw EOF, MX_ERR_NET "stream error" otherwise.
 */
int mx_net_stream_error(mailstream *s, struct mx_error *err);

/* Bytes already buffered (mailstream + OpenSSL) that poll() cannot see. */
size_t mx_net_pending(mailstream *s);

/* The socket of S, or -1. */
int mx_net_fd(mailstream *s);

/*
 * Sets the timeout of every later wait on a stream made by mx_net_connect()
 * (seconds; <= 0 means 60) and returns the previous one; 0 and no change
 * if S is not ours.
 */
int mx_net_set_timeout(mailstream *s, int timeout_s);

/* True if HOST is a loopback name or address (localhost, 127/8, ::1, also
 * in URL brackets: [::1]). */
bool mx_net_is_loopback(const char *host);

#endif
