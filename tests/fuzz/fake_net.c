/*
 * The transport of src/lib/net/net.h, in memory, for the protocol fuzz
 * targets (POP3, SMTP, IMAP).  Linked into a target instead of tls.c: as
 * every symbol of tls.c is defined here, the linker never pulls tls.o out
 * of libmxsync-internal.la, so the real protocol code runs unchanged over
 * a stream whose "server" plays the fuzz input and swallows every write.
 * No socket, no TLS: STARTTLS succeeds at once (after the same check
 * against bytes sent before the handshake as the real one).
 */
#include <stdlib.h>
#include <string.h>

#include "fake_net.h"
#include "net/net.h"

struct fake_conn {
	const uint8_t *data; /* foreign: the fuzz input */
	size_t len, pos;
	size_t chunk;        /* bytes per read, 0 = as many as asked */
	bool lines;          /* a read ends at the end of a line */
	bool tls;
	mx_net_read_filter *filter; /* as in tls.c: sees every byte read */
	void *filter_ctx;
	struct mx_error last;       /* the filter's refusal */
	bool refused;
};

static const uint8_t *feed_data;
static size_t feed_len, feed_chunk;
static bool feed_lines;

int mx_fuzz_net_feed(const uint8_t *data, size_t len)
{
	unsigned opt;

	if (len < 1)
		return -1;
	opt = data[0];
	feed_data = data + 1;
	feed_len = len - 1;
	switch ((opt >> 4) & 7) {
	case 0:
		feed_chunk = 0;
		feed_lines = false;
		break;
	case 7:
		feed_chunk = 0;
		feed_lines = true;
		break;
	default:
		feed_chunk = (size_t)1 << ((opt >> 4) & 7);
		feed_lines = false;
		break;
	}
	return (int)opt;
}

static ssize_t fake_read(mailstream_low *low, void *buf, size_t n)
{
	struct fake_conn *c = low->data;
	size_t left = c->len - c->pos;

	/* The server closed the connection: -1, as src/lib/net/tls.c says
	 * (libetpan 1.9.4 loops forever on a 0 inside a literal). */
	if (left == 0)
		return -1;
	if (n > left)
		n = left;
	if (c->chunk > 0 && n > c->chunk)
		n = c->chunk;
	if (c->lines) {
		const uint8_t *nl = memchr(c->data + c->pos, '\n', n);

		if (nl != NULL)
			n = (size_t)(nl - (c->data + c->pos)) + 1;
	}
	if (c->refused)
		return -1;
	memcpy(buf, c->data + c->pos, n);
	c->pos += n;
	if (c->filter != NULL &&
	    c->filter(c->filter_ctx, buf, n, &c->last) != MX_OK) {
		c->refused = true;
		return -1;
	}
	return (ssize_t)n;
}

static ssize_t fake_write(mailstream_low *low, const void *buf, size_t n)
{
	(void)low;
	(void)buf;
	return (ssize_t)n;
}

static int fake_close(mailstream_low *low)
{
	(void)low;
	return 0;
}

static int fake_get_fd(mailstream_low *low)
{
	(void)low;
	return -1;
}

static void fake_free(mailstream_low *low)
{
	free(low->data);
	free(low);
}

static void fake_cancel(mailstream_low *low)
{
	(void)low;
}

static mailstream_low_driver fake_driver = {
	.mailstream_read = fake_read,
	.mailstream_write = fake_write,
	.mailstream_close = fake_close,
	.mailstream_get_fd = fake_get_fd,
	.mailstream_free = fake_free,
	.mailstream_cancel = fake_cancel,
};

static struct fake_conn *conn_of(mailstream *s)
{
	if (s == NULL || s->low == NULL || s->low->driver != &fake_driver)
		return NULL;
	return s->low->data;
}

int mx_net_connect(const char *host, uint16_t port, bool tls,
		   const struct mx_net_opts *opts, mailstream **s_r,
		   struct mx_error *err)
{
	struct fake_conn *c;
	mailstream_low *low;

	(void)port;
	(void)opts;
	*s_r = NULL;
	if (host == NULL || *host == '\0')
		return mx_error_set(err, MX_ERR_INVAL, "connect: no host name");
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	c->data = feed_data;
	c->len = feed_len;
	c->chunk = feed_chunk;
	c->lines = feed_lines;
	c->tls = tls;
	/* One connection per input: a reconnect finds a closed server. */
	feed_len = 0;
	low = mailstream_low_new(c, &fake_driver);
	if (low == NULL) {
		free(c);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	*s_r = mailstream_new(low, 8192);
	if (*s_r == NULL) {
		mailstream_low_free(low);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	return MX_OK;
}

int mx_net_starttls(mailstream *s, const char *host,
		    const struct mx_net_opts *opts, struct mx_error *err)
{
	struct fake_conn *c = conn_of(s);

	(void)opts;
	if (c == NULL || host == NULL || *host == '\0')
		return mx_error_set(err, MX_ERR_INVAL,
				    "STARTTLS: not an mxsync stream or no host");
	if (c->tls)
		return mx_error_set(err, MX_ERR_INVAL,
				    "STARTTLS: stream is already encrypted");
	if (s->read_buffer_len > 0)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "data received before TLS handshake");
	c->tls = true;
	return MX_OK;
}

void mx_net_set_read_filter(mailstream *s, mx_net_read_filter *fn, void *ctx)
{
	struct fake_conn *c = conn_of(s);

	if (c != NULL) {
		c->filter = fn;
		c->filter_ctx = ctx;
	}
}

void mx_net_step(mailstream *s)
{
	(void)s;
}

int mx_net_set_timeout(mailstream *s, int timeout_s)
{
	(void)s;
	(void)timeout_s;
	return 60;
}

bool mx_net_is_tls(mailstream *s)
{
	struct fake_conn *c = conn_of(s);

	return c != NULL && c->tls;
}

int mx_net_stream_error(mailstream *s, struct mx_error *err)
{
	struct fake_conn *c = conn_of(s);

	if (c != NULL && c->refused)
		return mx_error_set(err, c->last.code, "%s", c->last.detail);
	if (c != NULL && c->pos == c->len)
		return mx_error_set(err, MX_ERR_NET,
				    "connection closed by server");
	return mx_error_set(err, MX_ERR_NET, "stream error");
}

size_t mx_net_pending(mailstream *s)
{
	struct fake_conn *c = conn_of(s);

	if (s == NULL)
		return 0;
	/* Unlike a socket, the rest of the input is always "readable". */
	return s->read_buffer_len + (c != NULL ? c->len - c->pos : 0);
}

int mx_net_fd(mailstream *s)
{
	(void)s;
	return -1;
}

bool mx_net_is_loopback(const char *host)
{
	return host != NULL && strcmp(host, "127.0.0.1") == 0;
}
