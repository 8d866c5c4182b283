/*
 * Our libetpan mailstream low driver: a non-blocking TCP socket, optionally
 * wrapped in OpenSSL, with every wait done by poll() under a timeout.
 *
 * Why our own driver: Debian's libetpan is built against GnuTLS and its
 * TLS paths verify neither the certificate chain nor the host name.  Here
 * the peer is always verified (SSL_VERIFY_PEER against the system store or
 * a configured CA file, host name or IP address bound to the certificate,
 * TLS >= 1.2), and a failed verification is an error, never a warning.
 *
 * The socket stays non-blocking for its whole life so that no read, write,
 * connect or handshake can wait longer than the configured timeout.
 *
 * Deadlines (doc/internals/net.md): the timeout bounds each wait for the
 * peer (inactivity), and a step deadline bounds a whole exchange, so that
 * a server sending one byte now and then cannot hold a connection for
 * ever.  A step starts at mx_net_connect() (TCP connect, TLS handshake and
 * the greeting share it), at every write (a command goes out: its
 * response is a new step) and at mx_net_step().  It may last the timeout
 * plus one second per MX_NET_MIN_RATE bytes moved in the step, so a large
 * FETCH at any sane speed never hits it while a drip does within about
 * the timeout.
 *
 * Interruption: mx_net_interrupt() (async-signal-safe) sets a process-wide
 * flag and writes to a self-pipe that every wait polls too, so a signal
 * ends a blocked read, write, connect or handshake at once, in any
 * thread, without racing with the poll() call.
 *
 * SIGPIPE: plain writes use send(MSG_NOSIGNAL), but OpenSSL writes through
 * its socket BIO, which calls write(): a peer that reset the connection
 * can still raise SIGPIPE.  Every program must ignore SIGPIPE (STYLE.md,
 * libetpan pitfall 6).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "net.h"

#define MX_NET_BUFFER 8192
#define MX_NET_DEFAULT_TIMEOUT 60
/* Bytes per second a step must average to earn time beyond the timeout. */
#define MX_NET_MIN_RATE 1024

/* The driver data of one connection (mailstream_low->data). */
struct mx_net_conn {
	int fd;               /* owned; -1 once closed */
	SSL *ssl;             /* owned; NULL while the stream is plain */
	SSL_CTX *ctx;         /* a reference; NULL while the stream is plain */
	int timeout_s;        /* per read, write, connect or handshake */
	uint64_t step_start;  /* monotonic ms when the current step began */
	uint64_t step_bytes;  /* bytes read and written in the step */
	bool eof;             /* the peer closed the connection */
	bool broken;          /* unusable: fatal error, no close_notify */
	atomic_bool cancelled; /* set by mailstream_cancel(), any thread */
	struct mx_error last; /* last transport error (MX_OK if none) */
	mx_net_read_filter *filter; /* sees every byte read; may be NULL */
	void *filter_ctx;
};

static ssize_t conn_read(mailstream_low *low, void *buf, size_t count);
static ssize_t conn_write(mailstream_low *low, const void *buf, size_t count);
static int conn_close(mailstream_low *low);
static int conn_get_fd(mailstream_low *low);
static void conn_free(mailstream_low *low);
static void conn_cancel(mailstream_low *low);

/*
 * libetpan 1.9.4 calls read, write, close, get_fd and free unchecked; the
 * other members are NULL-checked.  No mailstream_cancel object: libetpan's
 * own IDLE wait (mailstream_low_wait_idle) is not used, mxsync waits on the
 * fd in its own loop.  No certificate chain export: nothing needs it and
 * the chain was verified during the handshake.
 */
static mailstream_low_driver mx_net_driver = {
	.mailstream_read = conn_read,
	.mailstream_write = conn_write,
	.mailstream_close = conn_close,
	.mailstream_get_fd = conn_get_fd,
	.mailstream_free = conn_free,
	.mailstream_cancel = conn_cancel,
	.mailstream_get_cancel = NULL,
	.mailstream_get_certificate_chain = NULL,
	.mailstream_setup_idle = NULL,
	.mailstream_unsetup_idle = NULL,
	.mailstream_interrupt_idle = NULL,
};

/*
 * Copies S with a lower-case first letter ("Connection refused" reads
 * better after "connect HOST:PORT: "); acronyms ("TLS ...") are kept.
 */
static const char *lower_first(char *buf, size_t n, const char *s)
{
	snprintf(buf, n, "%s", s);
	if (buf[0] >= 'A' && buf[0] <= 'Z' && (buf[1] < 'A' || buf[1] > 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

/* strerror() for error details; thread-safe (GNU strerror_r). */
static const char *errtext(int e, char *buf, size_t n)
{
	char tmp[128];

	return lower_first(buf, n, strerror_r(e, tmp, sizeof(tmp)));
}

/* The reason of the newest OpenSSL error, or FALLBACK; clears the queue. */
static const char *ossl_text(char *buf, size_t n, const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r;

	if (e == 0) {
		snprintf(buf, n, "%s", fallback);
	} else if ((r = ERR_reason_error_string(e)) != NULL) {
		snprintf(buf, n, "%s", r);
	} else {
		ERR_error_string_n(e, buf, n);
	}
	ERR_clear_error();
	return buf;
}

/*
 * The process-wide interrupt.  The pipe is made once, before the first
 * connection can wait, and never read: once written it stays readable, so
 * every later poll() returns at once too.
 */
static atomic_bool interrupted;
static atomic_int intr_rd = -1, intr_wr = -1;
static atomic_int live_conns; /* connections open or being opened */
static pthread_once_t intr_once = PTHREAD_ONCE_INIT;

static void intr_init(void)
{
	int p[2];

	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return; /* the flag alone still stops the next wait */
	atomic_store(&intr_rd, p[0]);
	atomic_store(&intr_wr, p[1]);
	/* A signal that came before the pipe existed must still wake. */
	if (atomic_load(&interrupted))
		(void)!write(p[1], "", 1);
}

void mx_net_interrupt(void)
{
	int saved = errno, fd;

	atomic_store(&interrupted, true);
	fd = atomic_load(&intr_wr);
	if (fd >= 0)
		(void)!write(fd, "", 1);
	errno = saved;
}

bool mx_net_interrupted(void)
{
	return atomic_load(&interrupted);
}

bool mx_net_active(void)
{
	return atomic_load(&live_conns) > 0;
}

static int timeout_of(const struct mx_net_opts *opts)
{
	return opts && opts->timeout_s > 0 ? opts->timeout_s
					   : MX_NET_DEFAULT_TIMEOUT;
}

static uint64_t deadline_in(int timeout_s)
{
	return mx_now_ms() + (uint64_t)timeout_s * 1000;
}

/*
 * Waits until FD is ready for EVENTS or DEADLINE passes.  Returns 0 when
 * ready (POLLERR/POLLHUP count as ready: the next call reports them),
 * MX_ERR_TIMEOUT, MX_ERR_CANCELLED after mx_net_interrupt(), or
 * MX_ERR_NET with errno set.
 */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd p[2] = {{.fd = fd, .events = events},
			      {.fd = atomic_load(&intr_rd), .events = POLLIN}};

	for (;;) {
		uint64_t now = mx_now_ms(), left;
		int r;

		if (atomic_load(&interrupted))
			return MX_ERR_CANCELLED;
		if (now >= deadline)
			return MX_ERR_TIMEOUT;
		left = deadline - now;
		/* A negative fd (no pipe) is ignored by poll(). */
		r = poll(p, 2, left > INT_MAX ? INT_MAX : (int)left);
		if (atomic_load(&interrupted))
			return MX_ERR_CANCELLED;
		if (r > 0 && p[0].revents != 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return MX_ERR_NET;
	}
}

/* When the current step of C must be over (see the top of this file). */
static uint64_t step_deadline(const struct mx_net_conn *c)
{
	return c->step_start + (uint64_t)c->timeout_s * 1000 +
	       c->step_bytes * 1000 / MX_NET_MIN_RATE;
}

static void step_begin(struct mx_net_conn *c)
{
	c->step_start = mx_now_ms();
	c->step_bytes = 0;
}

static struct mx_net_conn *conn_of(mailstream *s)
{
	if (s == NULL || s->low == NULL || s->low->driver != &mx_net_driver)
		return NULL;
	return s->low->data;
}

/* Records a failure of the connection; returns -1 for the driver. */
static ssize_t conn_fail(struct mx_net_conn *c, enum mx_err code,
			 const char *what, const char *why)
{
	mx_error_set(&c->last, code, "%s: %s", what, why);
	c->broken = true;
	return -1;
}

/* An errno from a socket call: EOF-like errors mark eof, others fail. */
static ssize_t conn_sys_error(struct mx_net_conn *c, int e, const char *what)
{
	char buf[128];

	if (e == EPIPE) {
		c->eof = true;
		return -1;
	}
	return conn_fail(c, MX_ERR_NET, what, errtext(e, buf, sizeof(buf)));
}

/* An SSL_get_error() result other than WANT_*: EOF or a fatal error. */
static ssize_t conn_tls_error(struct mx_net_conn *c, int e, const char *what)
{
	char buf[256];

	if (e == SSL_ERROR_ZERO_RETURN) {
		c->eof = true;
		return -1;
	}
	/* After SSL_ERROR_SYSCALL/SSL no more I/O, not even close_notify. */
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
		if (errno == 0 || errno == EPIPE) {
			c->eof = true;
			c->broken = true;
			return -1;
		}
		return conn_fail(c, MX_ERR_NET, what,
				 errtext(errno, buf, sizeof(buf)));
	}
	return conn_fail(c, MX_ERR_TLS, what,
			 ossl_text(buf, sizeof(buf), "TLS error"));
}

/*
 * Waits for the socket as OpenSSL or the kernel asked, at most until the
 * timeout of this call (DEADLINE) or the end of the step.  A timeout is
 * kept as the connection's error; CANCELLED when mailstream_cancel() or
 * mx_net_interrupt() woke us.
 */
static int conn_wait(struct mx_net_conn *c, short events, uint64_t deadline)
{
	uint64_t step_end = step_deadline(c);
	char buf[128];
	int r = wait_fd(c->fd, events, step_end < deadline ? step_end
							    : deadline);

	if (atomic_load(&c->cancelled)) {
		mx_error_set(&c->last, MX_ERR_CANCELLED, "cancelled");
		c->broken = true;
		return -1;
	}
	if (r == MX_ERR_CANCELLED) {
		mx_error_set(&c->last, MX_ERR_CANCELLED, "interrupted");
		c->broken = true;
		return -1;
	}
	/*
	 * A timed-out connection is dead: the late answer would be read as
	 * the answer to the next command, and a polite LOGOUT would only
	 * wait for another timeout (why "timed out after 5 s" took 10 s).
	 */
	if (r == MX_ERR_TIMEOUT)
		c->broken = true;
	if (r == MX_ERR_TIMEOUT && step_end < deadline && c->step_bytes > 0) {
		/* Bytes kept coming, too few for the time: a drip. */
		mx_error_set(&c->last, MX_ERR_TIMEOUT,
			     "timed out after %d s (server too slow: %llu "
			     "bytes in %llu s)", c->timeout_s,
			     (unsigned long long)c->step_bytes,
			     (unsigned long long)((mx_now_ms() - c->step_start +
						   500) / 1000));
		return -1;
	}
	if (r == MX_ERR_TIMEOUT) {
		mx_error_set(&c->last, MX_ERR_TIMEOUT, "timed out after %d s",
			     c->timeout_s);
		return -1;
	}
	if (r != MX_OK) {
		conn_fail(c, MX_ERR_NET, "poll",
			  errtext(errno, buf, sizeof(buf)));
		return -1;
	}
	return 0;
}

/* Starts one driver call: refuses a dead stream, forgets older errors. */
static bool conn_begin(struct mx_net_conn *c)
{
	if (atomic_load(&c->cancelled)) {
		mx_error_set(&c->last, MX_ERR_CANCELLED, "cancelled");
		return false;
	}
	if (atomic_load(&interrupted)) {
		mx_error_set(&c->last, MX_ERR_CANCELLED, "interrupted");
		c->broken = true;
		return false;
	}
	if (c->broken || c->eof || c->fd < 0)
		return false;
	mx_error_clear(&c->last);
	return true;
}

/* Hands N bytes just read to the protocol's filter; -1 if it refused them. */
static ssize_t conn_filtered(struct mx_net_conn *c, const void *buf, ssize_t n)
{
	if (c->filter != NULL &&
	    c->filter(c->filter_ctx, buf, (size_t)n, &c->last) != MX_OK) {
		c->broken = true;
		return -1;
	}
	return n;
}

/*
 * libetpan treats a 0 return as "no more data for this line" and hands a
 * truncated response to the protocol parser, so EOF is reported as an
 * error (-1) with the eof flag set: mx_net_stream_error() then says
 * "connection closed by server" instead of a parse error.
 */
static ssize_t conn_read(mailstream_low *low, void *buf, size_t count)
{
	struct mx_net_conn *c = low->data;
	uint64_t deadline;

	if (!conn_begin(c))
		return -1;
	if (count == 0)
		return 0;
	deadline = deadline_in(c->timeout_s);
	for (;;) {
		short ev = POLLIN;

		if (c->ssl != NULL) {
			int n, e;

			/*
			 * SSL_read first: it returns what OpenSSL already
			 * decrypted (SSL_pending) without touching the fd, so
			 * we poll only when it really needs more bytes.
			 */
			ERR_clear_error();
			errno = 0;
			n = SSL_read(c->ssl, buf,
				     count > INT_MAX ? INT_MAX : (int)count);
			if (n > 0) {
				c->step_bytes += (uint64_t)n;
				return conn_filtered(c, buf, n);
			}
			e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_WRITE)
				ev = POLLOUT;
			else if (e != SSL_ERROR_WANT_READ)
				return conn_tls_error(c, e, "read");
		} else {
			ssize_t n = recv(c->fd, buf, count, 0);

			if (n > 0) {
				c->step_bytes += (uint64_t)n;
				return conn_filtered(c, buf, n);
			}
			if (n == 0) {
				c->eof = true;
				return -1;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				return conn_sys_error(c, errno, "read");
		}
		if (conn_wait(c, ev, deadline) < 0)
			return -1;
	}
}

/* Never returns 0: libetpan's flush loops until the buffer is written. */
static ssize_t conn_write(mailstream_low *low, const void *buf, size_t count)
{
	struct mx_net_conn *c = low->data;
	uint64_t deadline;

	if (!conn_begin(c))
		return -1;
	if (count == 0)
		return 0;
	/*
	 * Output means a command (or more of one): what the server sends
	 * next answers it, so a new step begins.  A literal that waits for
	 * the server's continuation starts one again when it goes out.
	 */
	step_begin(c);
	deadline = deadline_in(c->timeout_s);
	for (;;) {
		short ev = POLLOUT;

		if (c->ssl != NULL) {
			int n, e;

			/* Retried with the same buffer, as OpenSSL requires. */
			ERR_clear_error();
			errno = 0;
			n = SSL_write(c->ssl, buf,
				      count > INT_MAX ? INT_MAX : (int)count);
			if (n > 0) {
				c->step_bytes += (uint64_t)n;
				return n;
			}
			e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_READ)
				ev = POLLIN;
			else if (e != SSL_ERROR_WANT_WRITE)
				return conn_tls_error(c, e, "write");
		} else {
			ssize_t n = send(c->fd, buf, count, MSG_NOSIGNAL);

			if (n > 0) {
				c->step_bytes += (uint64_t)n;
				return n;
			}
			if (n < 0 && errno != EAGAIN &&
			    errno != EWOULDBLOCK && errno != EINTR)
				return conn_sys_error(c, errno, "write");
		}
		if (conn_wait(c, ev, deadline) < 0) {
			/* A TLS write cannot be resumed with other data. */
			c->broken = true;
			return -1;
		}
	}
}

static int conn_close(mailstream_low *low)
{
	struct mx_net_conn *c = low->data;

	if (c->fd < 0)
		return 0;
	/*
	 * One close_notify attempt, without waiting for the peer's: the
	 * socket is non-blocking and we close it right away anyway.
	 */
	if (c->ssl != NULL && !c->broken && SSL_is_init_finished(c->ssl)) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	close(c->fd);
	c->fd = -1;
	return 0;
}

static int conn_get_fd(mailstream_low *low)
{
	struct mx_net_conn *c = low->data;

	return c->fd;
}

static void conn_destroy(struct mx_net_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	SSL_free(c->ssl);
	SSL_CTX_free(c->ctx);
	free(c);
	atomic_fetch_sub(&live_conns, 1);
}

/* libetpan expects the driver to free the mailstream_low itself. */
static void conn_free(mailstream_low *low)
{
	conn_destroy(low->data);
	low->data = NULL;
	free(low);
}

/*
 * May run in another thread while a read or write is blocked in poll():
 * shutdown() wakes it (the fd stays open until close).  Must not race
 * with mailstream_close().
 */
static void conn_cancel(mailstream_low *low)
{
	struct mx_net_conn *c = low->data;

	atomic_store(&c->cancelled, true);
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR);
}

static bool is_ip_literal(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, a) == 1 ||
	       inet_pton(AF_INET6, host, a) == 1;
}

/*
 * A client context that verifies: TLS >= 1.2, SSL_VERIFY_PEER, trust from
 * CA_FILE or (NULL) the system store.  A CA file we cannot use is a
 * configuration error, not a reason to fall back to anything weaker.
 */
static int tls_ctx_new(const char *ca_file, SSL_CTX **ctx_r,
		       struct mx_error *err)
{
	char buf[256];
	SSL_CTX *ctx;
	int rc = MX_OK;

	*ctx_r = NULL;
	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL)
		return mx_error_set(err, MX_ERR_TLS, "TLS context: %s",
				    ossl_text(buf, sizeof(buf), "failed"));
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		rc = mx_error_set(err, MX_ERR_TLS, "TLS minimum version: %s",
				  ossl_text(buf, sizeof(buf), "failed"));
		goto out;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	/*
	 * Many mail servers close without close_notify.  Mail protocols
	 * frame their own data, so a truncated reply is caught by the
	 * protocol parser; treat such an EOF as a plain EOF.
	 */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (ca_file != NULL) {
		/* access() first: OpenSSL's text for ENOENT is cryptic. */
		if (access(ca_file, R_OK) < 0) {
			rc = mx_error_set(err, MX_ERR_CONFIG, "CA file %s: %s",
					  ca_file,
					  errtext(errno, buf, sizeof(buf)));
			goto out;
		}
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			rc = mx_error_set(err, MX_ERR_CONFIG, "CA file %s: %s",
					  ca_file,
					  ossl_text(buf, sizeof(buf),
						    "cannot load"));
			goto out;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		rc = mx_error_set(err, MX_ERR_TLS, "system CA store: %s",
				  ossl_text(buf, sizeof(buf), "cannot load"));
		goto out;
	}
	*ctx_r = ctx;
	ctx = NULL;
out:
	SSL_CTX_free(ctx);
	return rc;
}

/*
 * Client contexts are shared: loading the system CA store costs about
 * 800 kB per SSL_CTX (measured on Debian 12), which a thousand idle
 * accounts cannot each pay.  One context per CA file (NULL: the system
 * store), built again when that file changes on disk, so a rotated CA
 * takes effect on the next connection.  Each connection holds its own
 * reference; the cache keeps one for the life of the process.  A shared
 * SSL_CTX is safe across threads as long as nobody modifies it.
 */
struct ctx_cache {
	struct ctx_cache *next;
	char *ca_file;  /* owned; NULL for the system store */
	struct stat st; /* of the CA file when loaded (zero if missing) */
	SSL_CTX *ctx;   /* the cache's reference */
};

static struct ctx_cache *ctx_cache;
static pthread_mutex_t ctx_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	       a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* A reference to the shared client context for OPTS. */
static int tls_ctx_get(const struct mx_net_opts *opts, SSL_CTX **ctx_r,
		       struct mx_error *err)
{
	const char *ca_file = opts ? opts->ca_file : NULL;
	struct ctx_cache *e;
	struct stat st;
	int rc = MX_OK;

	/* A missing file is reported by tls_ctx_new, and never cached. */
	memset(&st, 0, sizeof(st));
	(void)stat(ca_file ? ca_file : X509_get_default_cert_file(), &st);
	pthread_mutex_lock(&ctx_cache_lock);
	for (e = ctx_cache; e != NULL; e = e->next)
		if (ca_file ? e->ca_file && strcmp(e->ca_file, ca_file) == 0
			    : e->ca_file == NULL)
			break;
	if (e != NULL && same_file(&e->st, &st)) {
		SSL_CTX_up_ref(e->ctx);
		*ctx_r = e->ctx;
		goto out;
	}
	rc = tls_ctx_new(ca_file, ctx_r, err);
	if (rc != MX_OK)
		goto out;
	if (e == NULL) {
		/* Out of memory here only costs the sharing. */
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			goto out;
		e->ca_file = mx_strdup(ca_file);
		if (ca_file != NULL && e->ca_file == NULL) {
			free(e);
			goto out;
		}
		e->next = ctx_cache;
		ctx_cache = e;
	} else {
		SSL_CTX_free(e->ctx);
	}
	e->ctx = *ctx_r;
	e->st = st;
	SSL_CTX_up_ref(e->ctx);
out:
	pthread_mutex_unlock(&ctx_cache_lock);
	return rc;
}

/* Turns a failed SSL_connect into the most useful error. */
static int tls_handshake_error(SSL *ssl, int e, const char *host,
			       struct mx_error *err)
{
	long vr = SSL_get_verify_result(ssl);
	char buf[256];

	/*
	 * The verify result is X509_V_OK unless verification ran and
	 * failed, so a protocol failure is never blamed on the certificate.
	 */
	if (vr == X509_V_ERR_HOSTNAME_MISMATCH ||
	    vr == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		ERR_clear_error();
		return mx_error_set(err, MX_ERR_TLS_VERIFY,
				    "host name mismatch: certificate is not valid for %s",
				    host);
	}
	if (vr != X509_V_OK) {
		ERR_clear_error();
		return mx_error_set(err, MX_ERR_TLS_VERIFY,
				    "certificate verify failed: %s (host %s)",
				    X509_verify_cert_error_string(vr), host);
	}
	if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
		return mx_error_set(err, MX_ERR_TLS,
				    "TLS handshake with %s: %s", host,
				    errno ? errtext(errno, buf, sizeof(buf))
					  : "connection closed by server");
	return mx_error_set(err, MX_ERR_TLS, "TLS handshake with %s: %s", host,
			    ossl_text(buf, sizeof(buf), "failed"));
}

/*
 * Runs the client handshake on C's socket and, on success, switches C to
 * TLS.  Takes the reference CTX in all cases.  On failure C is marked broken: the peer
 * saw a partial handshake and the connection cannot be used any more.
 */
static int tls_start(struct mx_net_conn *c, SSL_CTX *ctx, const char *host,
		     struct mx_error *err)
{
	/* Part of the current step: connect or the STARTTLS command. */
	uint64_t deadline = step_deadline(c);
	struct mx_error e;
	char buf[256];
	SSL *ssl;
	int rc = MX_OK;

	mx_error_clear(&e);
	ERR_clear_error();
	ssl = SSL_new(ctx);
	if (ssl == NULL) {
		rc = mx_error_set(&e, MX_ERR_NOMEM, "TLS session: %s",
				  ossl_text(buf, sizeof(buf), "failed"));
		goto out;
	}
	/*
	 * Bind the certificate to what the user asked for: an IP literal must
	 * be in the certificate's IP SANs, a name in its DNS names (no
	 * partial wildcards like f*.example.com).  SNI carries names only;
	 * RFC 6066 forbids IP addresses there.
	 */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (is_ip_literal(host)) {
		X509_VERIFY_PARAM *param = SSL_get0_param(ssl);

		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
			rc = MX_ERR_TLS;
	} else if (SSL_set1_host(ssl, host) != 1 ||
		   SSL_set_tlsext_host_name(ssl, (char *)(uintptr_t)host) != 1) {
		rc = MX_ERR_TLS;
	}
	/* A socket BIO (read()/write() on our fd); see SIGPIPE above. */
	if (rc == MX_OK && SSL_set_fd(ssl, c->fd) != 1)
		rc = MX_ERR_TLS;
	if (rc != MX_OK) {
		rc = mx_error_set(&e, MX_ERR_TLS, "TLS setup for %s: %s", host,
				  ossl_text(buf, sizeof(buf), "failed"));
		goto out;
	}
	for (;;) {
		int r, se;
		short ev;

		ERR_clear_error();
		errno = 0;
		r = SSL_connect(ssl);
		if (r == 1)
			break;
		se = SSL_get_error(ssl, r);
		if (se == SSL_ERROR_WANT_READ) {
			ev = POLLIN;
		} else if (se == SSL_ERROR_WANT_WRITE) {
			ev = POLLOUT;
		} else {
			rc = tls_handshake_error(ssl, se, host, &e);
			goto out;
		}
		r = wait_fd(c->fd, ev, deadline);
		if (r == MX_ERR_TIMEOUT) {
			rc = mx_error_set(&e, MX_ERR_TIMEOUT,
					  "TLS handshake with %s: timed out after %d s",
					  host, c->timeout_s);
			goto out;
		} else if (r == MX_ERR_CANCELLED) {
			rc = mx_error_set(&e, MX_ERR_CANCELLED,
					  "TLS handshake with %s: interrupted",
					  host);
			goto out;
		} else if (r != MX_OK) {
			rc = mx_error_set(&e, MX_ERR_NET,
					  "TLS handshake with %s: %s", host,
					  errtext(errno, buf, sizeof(buf)));
			goto out;
		}
	}
	/*
	 * SSL_VERIFY_PEER already aborts the handshake on any verification
	 * failure; checking again costs nothing and guards this code against
	 * a future change of the verify mode or callback.
	 */
	if (SSL_get0_peer_certificate(ssl) == NULL ||
	    SSL_get_verify_result(ssl) != X509_V_OK) {
		rc = mx_error_set(&e, MX_ERR_TLS_VERIFY,
				  "certificate verify failed: no verified certificate (host %s)",
				  host);
		goto out;
	}
	c->ssl = ssl;
	c->ctx = ctx;
	ssl = NULL;
	ctx = NULL;
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (rc != MX_OK) {
		/* Kept for mx_net_stream_error() if the caller reads on. */
		c->last = e;
		c->broken = true;
		mx_error_set(err, e.code, "%s", e.detail);
	}
	return rc;
}

/*
 * Connects one resolved address before DEADLINE.  Returns the socket, or
 * -1 with *ERRNO_R set (ETIMEDOUT when the deadline passed).
 */
static int connect_one(const struct addrinfo *ai, uint64_t deadline,
		       int *errno_r)
{
	socklen_t len = sizeof(int);
	int fd, soerr = 0, one = 1;

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0) {
		*errno_r = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		/* After EINTR the connection goes on, as with EINPROGRESS. */
		if (errno != EINPROGRESS && errno != EINTR) {
			soerr = errno;
		} else {
			int r = wait_fd(fd, POLLOUT, deadline);

			if (r == MX_ERR_TIMEOUT)
				soerr = ETIMEDOUT;
			else if (r == MX_ERR_CANCELLED)
				soerr = ECANCELED;
			else if (r != MX_OK)
				soerr = errno;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr,
					    &len) < 0)
				soerr = errno;
		}
	}
	if (soerr != 0) {
		close(fd);
		*errno_r = soerr;
		return -1;
	}
	/*
	 * Protocol commands are small request/response exchanges: do not let
	 * Nagle delay them.  Keepalive lets the kernel notice a dead peer on
	 * a long-idle connection (IDLE) even when no timeout is running.
	 */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	{
		/* The kernel's default waits two hours before the first probe;
		 * an idling mail connection whose peer vanished should be
		 * noticed within about two minutes. */
		int idle = 60, intvl = 10, cnt = 6;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
				 sizeof(intvl));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	}
	return fd;
}

/*
 * Tries every address of HOST:PORT in turn before DEADLINE (the step's:
 * connect, handshake and greeting share the timeout); each address gets
 * an equal share of the time left, so one that never answers leaves time
 * for the next.
 */
static int tcp_connect(const char *host, uint16_t port, int timeout_s,
		       uint64_t deadline, int *fd_r, struct mx_error *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	const char *lb = "", *rb = "";
	char portstr[8], buf[128];
	int r, fd = -1, e = EHOSTUNREACH;

	*fd_r = -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0) {
		if (r == EAI_SYSTEM)
			errtext(errno, buf, sizeof(buf));
		else
			lower_first(buf, sizeof(buf), gai_strerror(r));
		return mx_error_set(err, MX_ERR_NET, "resolve %s: %s", host,
				    buf);
	}
	for (ai = res; ai != NULL && fd < 0 && e != ECANCELED;
	     ai = ai->ai_next) {
		uint64_t now = mx_now_ms(), left = 0, share;
		unsigned naddr = 0;

		for (const struct addrinfo *x = ai; x != NULL; x = x->ai_next)
			naddr++;
		if (deadline > now)
			left = deadline - now;
		share = now + left / naddr;
		fd = connect_one(ai, share, &e);
	}
	freeaddrinfo(res);
	if (fd >= 0) {
		*fd_r = fd;
		return MX_OK;
	}
	if (strchr(host, ':') != NULL) {
		lb = "[";
		rb = "]";
	}
	if (e == ECANCELED)
		return mx_error_set(err, MX_ERR_CANCELLED,
				    "connect %s%s%s:%u: interrupted", lb, host,
				    rb, (unsigned)port);
	if (e == ETIMEDOUT)
		return mx_error_set(err, MX_ERR_TIMEOUT,
				    "connect %s%s%s:%u: timed out after %d s",
				    lb, host, rb, (unsigned)port, timeout_s);
	return mx_error_set(err, MX_ERR_NET, "connect %s%s%s:%u: %s", lb, host,
			    rb, (unsigned)port, errtext(e, buf, sizeof(buf)));
}

int mx_net_connect(const char *host, uint16_t port, bool tls,
		   const struct mx_net_opts *opts, mailstream **s_r,
		   struct mx_error *err)
{
	int timeout_s = timeout_of(opts);
	uint64_t start = mx_now_ms();
	struct mx_net_conn *c = NULL;
	mailstream_low *low = NULL;
	SSL_CTX *ctx = NULL;
	bool counted = true; /* in live_conns until conn_destroy(c) */
	int rc, fd = -1;

	*s_r = NULL;
	if (host == NULL || *host == '\0')
		return mx_error_set(err, MX_ERR_INVAL, "connect: no host name");
	/* Counted before the check, so an interrupting signal handler sees
	 * a connection in progress (mx_net_active) or this sees the flag. */
	atomic_fetch_add(&live_conns, 1);
	pthread_once(&intr_once, intr_init);
	if (atomic_load(&interrupted)) {
		rc = mx_error_set(err, MX_ERR_CANCELLED,
				  "connect %s: interrupted", host);
		goto out;
	}
	/* Before any traffic: a bad CA file should not cost a connection. */
	if (tls && (rc = tls_ctx_get(opts, &ctx, err)) != MX_OK)
		goto out;
	rc = tcp_connect(host, port, timeout_s,
			 start + (uint64_t)timeout_s * 1000, &fd, err);
	if (rc != MX_OK)
		goto out;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	counted = false;
	c->fd = fd;
	fd = -1;
	c->timeout_s = timeout_s;
	/* The greeting must come within the timeout of the connect. */
	c->step_start = start;
	atomic_init(&c->cancelled, false);
	if (tls) {
		rc = tls_start(c, ctx, host, err);
		ctx = NULL;
		if (rc != MX_OK)
			goto out;
	}
	low = mailstream_low_new(c, &mx_net_driver);
	if (low == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	c = NULL;
	*s_r = mailstream_new(low, MX_NET_BUFFER);
	if (*s_r == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	low = NULL;
out:
	if (low != NULL)
		mailstream_low_free(low); /* frees c through conn_free */
	conn_destroy(c);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	if (counted)
		atomic_fetch_sub(&live_conns, 1);
	return rc;
}

int mx_net_starttls(mailstream *s, const char *host,
		    const struct mx_net_opts *opts, struct mx_error *err)
{
	struct mx_net_conn *c = conn_of(s);
	SSL_CTX *ctx = NULL;
	int rc;

	if (c == NULL || host == NULL || *host == '\0')
		return mx_error_set(err, MX_ERR_INVAL,
				    "STARTTLS: not an mxsync stream or no host");
	if (c->ssl != NULL)
		return mx_error_set(err, MX_ERR_INVAL,
				    "STARTTLS: stream is already encrypted");
	/*
	 * Whatever the server sent after its STARTTLS reply arrived in clear
	 * text and would otherwise be read as if it came over TLS: an
	 * attacker in the path could inject responses this way (CVE-2011-0411
	 * and its many siblings).  Bytes still in the kernel cannot hurt:
	 * OpenSSL reads them as TLS records and the handshake fails.
	 */
	if (s->read_buffer_len > 0)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "data received before TLS handshake (possible STARTTLS injection)");
	/* Unflushed output would go out encrypted, after the handshake. */
	if (s->write_buffer_len > 0)
		return mx_error_set(err, MX_ERR_INVAL,
				    "STARTTLS: unsent data before TLS handshake");
	if (c->broken || c->eof || c->fd < 0)
		return mx_net_stream_error(s, err);
	/* The handshake keeps the timeout the stream was opened with. */
	rc = tls_ctx_get(opts, &ctx, err);
	if (rc != MX_OK)
		return rc;
	return tls_start(c, ctx, host, err);
}

void mx_net_set_read_filter(mailstream *s, mx_net_read_filter *fn, void *ctx)
{
	struct mx_net_conn *c = conn_of(s);

	if (c != NULL) {
		c->filter = fn;
		c->filter_ctx = ctx;
	}
}

void mx_net_step(mailstream *s)
{
	struct mx_net_conn *c = conn_of(s);

	if (c != NULL)
		step_begin(c);
}

bool mx_net_is_tls(mailstream *s)
{
	struct mx_net_conn *c = conn_of(s);

	return c != NULL && c->ssl != NULL;
}

int mx_net_stream_error(mailstream *s, struct mx_error *err)
{
	struct mx_net_conn *c = conn_of(s);

	if (c != NULL && c->last.code != MX_OK)
		return mx_error_set(err, c->last.code, "%s", c->last.detail);
	if (c != NULL && c->eof)
		return mx_error_set(err, MX_ERR_NET,
				    "connection closed by server");
	return mx_error_set(err, MX_ERR_NET, "stream error");
}

size_t mx_net_pending(mailstream *s)
{
	struct mx_net_conn *c = conn_of(s);
	size_t n;

	if (s == NULL)
		return 0;
	n = s->read_buffer_len;
	/*
	 * SSL_pending counts decrypted bytes of the current record; without
	 * read-ahead OpenSSL leaves undecoded records in the kernel, where
	 * poll() sees them.
	 */
	if (c != NULL && c->ssl != NULL)
		n += (size_t)SSL_pending(c->ssl);
	return n;
}

int mx_net_fd(mailstream *s)
{
	struct mx_net_conn *c = conn_of(s);

	if (c != NULL)
		return c->fd;
	/* A driver stacked on ours (COMPRESS) still reports the socket. */
	if (s != NULL && s->low != NULL)
		return mailstream_low_get_fd(s->low);
	return -1;
}

int mx_net_set_timeout(mailstream *s, int timeout_s)
{
	struct mx_net_conn *c = conn_of(s);
	int old;

	if (c == NULL)
		return 0;
	old = c->timeout_s;
	c->timeout_s = timeout_of(&(struct mx_net_opts){.timeout_s = timeout_s});
	return old;
}

bool mx_net_is_loopback(const char *host)
{
	unsigned char a[sizeof(struct in6_addr)];
	struct in6_addr a6;
	char buf[64];
	size_t n;

	if (host == NULL)
		return false;
	/* URL form of an IPv6 literal: "[::1]". */
	n = strlen(host);
	if (n >= 2 && n < sizeof(buf) && host[0] == '[' && host[n - 1] == ']') {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		host = buf;
	}
	if (strcasecmp(host, "localhost") == 0 ||
	    strcasecmp(host, "localhost.") == 0)
		return true;
	if (inet_pton(AF_INET, host, a) == 1)
		return a[0] == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}
