/*
 * SMTP submission client.  See smtp.h for the contract and
 * doc/internals/send.md ("SMTP client") for the reasoning.
 *
 * Replies are read one byte at a time out of the mailstream's own buffer
 * (a memcpy, not a system call): no second buffer exists, so the
 * STARTTLS injection check of mx_net_starttls() sees every byte that
 * arrived before the handshake, and an overlong line is refused after
 * MX_SMTP_MAX_LINE bytes instead of being accumulated.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "auth/oauth.h"
#include "net/net.h"
#include "secrets/secrets.h"
#include "send/smtp.h"

/* Limits on one reply: lines and bytes (an EHLO reply is ~15 lines). */
#define REPLY_MAX_LINES 256
#define REPLY_MAX_BYTES (64 * 1024)
/* Bytes of the message read per callback call. */
#define DATA_CHUNK 16384
/*
 * RFC 5321 4.5.3.2.6: the reply to the final dot is waited for 10 minutes.
 * The server may still be receiving what socket buffers (ours, a proxy's)
 * hold, and checking the message; a client that gives up sooner retries a
 * message the server went on to accept, and the recipient gets it twice.
 */
#define DATA_DONE_TIMEOUT_S 600

enum mech { MECH_PLAIN = 0x1, MECH_LOGIN = 0x2, MECH_XOAUTH2 = 0x4,
	    MECH_OAUTHBEARER = 0x8 };

static const struct {
	const char *name;
	unsigned bit;
} mech_names[] = {
	{"PLAIN", MECH_PLAIN},
	{"LOGIN", MECH_LOGIN},
	{"XOAUTH2", MECH_XOAUTH2},
	{"OAUTHBEARER", MECH_OAUTHBEARER},
};

/* EHLO keywords we know (AUTH and SIZE arguments: parse_ehlo()). */
static const struct {
	const char *name;
	unsigned bit;
} ext_names[] = {
	{"PIPELINING", MX_SMTP_EXT_PIPELINING},
	{"SIZE", MX_SMTP_EXT_SIZE},
	{"8BITMIME", MX_SMTP_EXT_8BITMIME},
	{"SMTPUTF8", MX_SMTP_EXT_SMTPUTF8},
	{"STARTTLS", MX_SMTP_EXT_STARTTLS},
	{"ENHANCEDSTATUSCODES", MX_SMTP_EXT_ENHANCEDSTATUSCODES},
	{"AUTH", MX_SMTP_EXT_AUTH},
	{"CHUNKING", MX_SMTP_EXT_CHUNKING},
	{"DSN", MX_SMTP_EXT_DSN},
};

struct mx_smtp {
	mailstream *st;       /* owned; NULL once dropped */
	char *host;           /* owned */
	char *ca_file;        /* owned */
	struct mx_net_opts opts;
	uint16_t port;
	unsigned ext;         /* MX_SMTP_EXT_* */
	unsigned mechs;       /* enum mech bits offered */
	uint64_t size_limit;
	const char *mech;     /* static; NULL = no AUTH */
	bool no_pipelining;
	bool need_rset;       /* the last transaction failed half-way */
	bool broken;          /* no more commands on this connection */
	struct mx_buf line;   /* the reply line being read */
	struct mx_buf text;   /* reply text, lines joined by '\n' */
};

/* One reply: code, enhanced code, text (into s->text). */
struct reply {
	int code;
	char enh[16];
	const char *text;
};

/* ------------------------------------------------------------------ */
/* DATA encoder                                                         */

void mx_smtp_enc_init(struct mx_smtp_enc *e)
{
	e->bol = true;
	e->cr = false;
	e->eight_bit = false;
}

size_t mx_smtp_enc_chunk(struct mx_smtp_enc *e, const char *in, size_t n,
			 char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (e->cr) {
			/* CR then anything: the line ends here (CRLF, or a
			 * bare CR made into CRLF). */
			e->cr = false;
			out[o++] = '\r';
			out[o++] = '\n';
			e->bol = true;
			if (c == '\n')
				continue;
		}
		if (c == '\r') {
			e->cr = true;
			continue;
		}
		if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			e->bol = true;
			continue;
		}
		if (c >= 0x80)
			e->eight_bit = true;
		if (e->bol && c == '.')
			out[o++] = '.';
		out[o++] = (char)c;
		e->bol = false;
	}
	return o;
}

size_t mx_smtp_enc_end(struct mx_smtp_enc *e, char *out)
{
	size_t o = 0;

	if (e->cr || !e->bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	e->cr = false;
	e->bol = true;
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* ------------------------------------------------------------------ */
/* Replies                                                              */

/* Copies N bytes of IN to OUT for a log or an error detail: '\n' becomes
 * a space, other control bytes '?'.  OUT gets N bytes, no NUL. */
static void printable(char *out, const char *in, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		out[i] = c == '\n' ? ' ' : c < 0x20 || c == 0x7f ? '?'
								  : (char)c;
	}
}

int mx_smtp_parse_line(const char *line, size_t len, int *code,
		       const char **text_r, struct mx_error *err)
{
	int v;

	if (len < 3 || line[0] < '2' || line[0] > '5' ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-')) {
		char safe[41];
		size_t n = len < 40 ? len : 40;

		printable(safe, line, n);
		safe[n] = '\0';
		mx_error_set(err, MX_ERR_PROTOCOL,
			     "malformed reply line (no 3-digit code): "
			     "\"%s%s\"", safe, len > 40 ? "..." : "");
		return -1;
	}
	v = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (*code != 0 && *code != v) {
		mx_error_set(err, MX_ERR_PROTOCOL,
			     "inconsistent multi-line reply: %d after %d",
			     v, *code);
		return -1;
	}
	*code = v;
	*text_r = len > 4 ? line + 4 : line + len;
	return len > 3 && line[3] == '-' ? 0 : 1;
}

/* "5.1.1" at the start of TEXT whose class matches CODE (RFC 2034). */
static void parse_enh(const char *text, int code, char enh[16])
{
	const char *p = text;
	size_t n;

	enh[0] = '\0';
	if (p[0] != '0' + code / 100 || p[1] != '.')
		return;
	p += 2;
	for (int part = 0; part < 2; part++) {
		n = strspn(p, "0123456789");
		if (n < 1 || n > 3)
			return;
		p += n;
		if (part == 0 && *p++ != '.')
			return;
	}
	if (*p != '\0' && *p != ' ' && *p != '\n')
		return;
	n = (size_t)(p - text);
	memcpy(enh, text, n);
	enh[n] = '\0';
}

/* Printable copy of TEXT ('\n' -> ' ', other controls -> '?'), at most
 * MAX bytes, into a malloc()ed "CODE TEXT". */
static char *fmt_reply(int code, const char *text, size_t max)
{
	size_t n = strlen(text);
	char *out;
	int k;

	if (n > max)
		n = max;
	out = malloc(n + 16);
	if (out == NULL)
		return NULL;
	k = snprintf(out, 16, "%d ", code);
	printable(out + k, text, n);
	out[k + (int)n] = '\0';
	return out;
}

static void trace_line(const char *dir, const char *line, size_t len)
{
	char safe[201];
	size_t n = len < 200 ? len : 200;

	if (!(mx_trace_mask & MX_TRACE_SMTP))
		return;
	printable(safe, line, n);
	safe[n] = '\0';
	mx_trace(MX_TRACE_SMTP, "%s: %s%s", dir, safe,
		 len > 200 ? " [...]" : "");
}

/* The connection cannot carry another command: close it now. */
static void drop(struct mx_smtp *s)
{
	s->broken = true;
	if (s->st) {
		mailstream_close(s->st);
		s->st = NULL;
	}
}

static int stream_fail(struct mx_smtp *s, const char *what,
		       struct mx_error *err)
{
	int rc;

	if (s->st == NULL)
		rc = mx_error_set(err, MX_ERR_NET, "connection closed");
	else
		rc = mx_net_stream_error(s->st, err);
	mx_error_prefix(err, "%s %s", s->host, what);
	drop(s);
	return rc;
}

/* One line into s->line (CR LF / LF stripped). */
static int read_line(struct mx_smtp *s, const char *what,
		     struct mx_error *err)
{
	char c;

	mx_buf_reset(&s->line);
	for (;;) {
		if (s->st == NULL || mailstream_read(s->st, &c, 1) != 1)
			return stream_fail(s, what, err);
		if (c == '\n')
			break;
		if (s->line.len >= MX_SMTP_MAX_LINE) {
			mx_error_set(err, MX_ERR_PROTOCOL,
				     "%s %s: reply line longer than %d bytes",
				     s->host, what, MX_SMTP_MAX_LINE);
			drop(s);
			return MX_ERR_PROTOCOL;
		}
		if (mx_buf_append(&s->line, &c, 1) < 0)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	if (s->line.len > 0 && s->line.data[s->line.len - 1] == '\r')
		s->line.data[--s->line.len] = '\0';
	trace_line("S", s->line.data, s->line.len);
	return MX_OK;
}

static int read_reply(struct mx_smtp *s, struct reply *r, const char *what,
		      struct mx_error *err)
{
	int rc, last = 0, lines = 0;
	const char *t;

	r->code = 0;
	r->enh[0] = '\0';
	mx_buf_reset(&s->text);
	while (!last) {
		rc = read_line(s, what, err);
		if (rc)
			return rc;
		last = mx_smtp_parse_line(s->line.data, s->line.len, &r->code,
					  &t, err);
		if (last < 0) {
			mx_error_prefix(err, "%s %s", s->host, what);
			drop(s);
			return MX_ERR_PROTOCOL;
		}
		if (++lines > REPLY_MAX_LINES ||
		    s->text.len + s->line.len > REPLY_MAX_BYTES) {
			drop(s);
			return mx_error_set(err, MX_ERR_PROTOCOL,
					    "%s %s: reply longer than %d lines "
					    "or %d bytes", s->host, what,
					    REPLY_MAX_LINES, REPLY_MAX_BYTES);
		}
		if ((s->text.len > 0 && mx_buf_puts(&s->text, "\n") < 0) ||
		    mx_buf_append(&s->text, t,
				  s->line.len - (size_t)(t - s->line.data)) < 0)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	if (s->text.data == NULL && mx_buf_puts(&s->text, "") < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	r->text = s->text.data;
	parse_enh(r->text, r->code, r->enh);
	/* 421: the server is closing the connection (RFC 5321 3.8). */
	if (r->code == 421)
		s->broken = true;
	return MX_OK;
}

/* An error for a refusing reply: 4xx temporary, 5xx final. */
static int reply_error(struct mx_smtp *s, const struct reply *r,
		       enum mx_err code, const char *what, struct mx_error *err)
{
	char *txt = fmt_reply(r->code, r->text, 400);

	mx_error_set(err, code, "%s %s: %s", s->host, what,
		     txt ? txt : "(no memory for the reply text)");
	free(txt);
	if (err)
		err->retry = r->code / 100 == 4 ? MX_RETRY_TEMP
						: MX_RETRY_FINAL;
	return code;
}

/* ------------------------------------------------------------------ */
/* Commands                                                             */

/* Queues one command line; TRACE_AS replaces it in the trace (secrets). */
static int put_cmd(struct mx_smtp *s, const char *line, const char *trace_as,
		   struct mx_error *err)
{
	size_t n = strlen(line);

	if (s->st == NULL || s->broken)
		return mx_error_set(err, MX_ERR_NET,
				    "%s: connection already closed", s->host);
	if (trace_as)
		mx_trace(MX_TRACE_SMTP, "C: %s", trace_as);
	else
		trace_line("C", line, n);
	if (mailstream_write(s->st, line, n) != (ssize_t)n ||
	    mailstream_write(s->st, "\r\n", 2) != 2)
		return stream_fail(s, "write", err);
	return MX_OK;
}

static int flush(struct mx_smtp *s, struct mx_error *err)
{
	if (s->st == NULL || mailstream_flush(s->st) < 0)
		return stream_fail(s, "write", err);
	return MX_OK;
}

/* Sends one command and reads its reply. */
static int command(struct mx_smtp *s, const char *line, struct reply *r,
		   const char *what, struct mx_error *err)
{
	int rc = put_cmd(s, line, NULL, err);

	if (rc == MX_OK)
		rc = flush(s, err);
	if (rc == MX_OK)
		rc = read_reply(s, r, what, err);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Session setup                                                        */

static bool word_is(const char *p, size_t n, const char *w)
{
	return strlen(w) == n && strncasecmp(p, w, n) == 0;
}

static void parse_auth(struct mx_smtp *s, const char *p, const char *end)
{
	while (p < end) {
		size_t n;

		p += strspn(p, " ");
		n = strcspn(p, " \n");
		if ((size_t)(end - p) < n)
			n = (size_t)(end - p);
		for (size_t i = 0; i < MX_ARRAY_SIZE(mech_names); i++)
			if (word_is(p, n, mech_names[i].name))
				s->mechs |= mech_names[i].bit;
		if (n == 0)
			break;
		p += n;
	}
}

/* EHLO keywords, one per line after the first (RFC 5321 4.1.1.1). */
static void parse_ehlo(struct mx_smtp *s, const char *text)
{
	const char *l = strchr(text, '\n');

	while (l != NULL) {
		const char *p = l + 1, *end;
		size_t n;

		l = strchr(p, '\n');
		end = l ? l : p + strlen(p);
		n = strcspn(p, " =\n");
		if ((size_t)(end - p) < n)
			n = (size_t)(end - p);
		for (size_t i = 0; i < MX_ARRAY_SIZE(ext_names); i++)
			if (word_is(p, n, ext_names[i].name))
				s->ext |= ext_names[i].bit;
		if (word_is(p, n, "AUTH")) {
			parse_auth(s, p + n + (p[n] == ' ' || p[n] == '='),
				   end);
		} else if (word_is(p, n, "SIZE")) {
			uint64_t v = 0;
			const char *q = p + n;

			q += strspn(q, " ");
			/* A garbled number is no limit: the server still
			 * refuses what it cannot take (552). */
			while (q < end && isdigit((unsigned char)*q) &&
			       v < UINT64_MAX / 10 - 10)
				v = v * 10 + (uint64_t)(*q++ - '0');
			s->size_limit = q == end ? v : 0;
		}
	}
}

static int ehlo(struct mx_smtp *s, const char *name, struct mx_error *err)
{
	char line[300];
	struct reply r;
	int rc;

	/* Nothing said before TLS survives it (RFC 3207 4.2). */
	s->ext = 0;
	s->mechs = 0;
	s->size_limit = 0;
	snprintf(line, sizeof(line), "EHLO %s", name);
	rc = command(s, line, &r, "EHLO", err);
	if (rc)
		return rc;
	if (r.code == 250) {
		parse_ehlo(s, r.text);
		return MX_OK;
	}
	if (r.code / 100 != 5 || s->broken)
		return reply_error(s, &r, MX_ERR_SERVER, "EHLO", err);
	/* An old server: HELO, and no extension at all. */
	snprintf(line, sizeof(line), "HELO %s", name);
	rc = command(s, line, &r, "HELO", err);
	if (rc == MX_OK && r.code != 250)
		rc = reply_error(s, &r, MX_ERR_SERVER, "HELO", err);
	return rc;
}

/*
 * One SASL exchange (RFC 4954).  IR is the initial response (or NULL);
 * STEPS answer the server's 334 challenges in order; once they are used
 * up, a 334 is the OAuth failure challenge (base64 JSON), answered with
 * ON_FAIL so that the server sends its final 535 (RFC 7628 3.2.3).
 */
static int sasl(struct mx_smtp *s, const char *mech, const char *ir,
		char *const *steps, size_t nsteps, const char *on_fail,
		struct mx_error *err)
{
	struct mx_buf cmd = {0};
	char shown[64], what[64];
	struct reply r;
	size_t step = 0;
	bool failed_sent = false;
	int rc;

	snprintf(shown, sizeof(shown), "AUTH %s <redacted>", mech);
	snprintf(what, sizeof(what), "AUTH %s", mech);
	if (mx_buf_printf(&cmd, "AUTH %s%s%s", mech, ir ? " " : "",
			  ir ? ir : "") < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = put_cmd(s, cmd.data, ir ? shown : what, err);
	memset(cmd.data, 0, cmd.len);
	mx_buf_free(&cmd);
	for (int guard = 0; rc == MX_OK && guard < 8; guard++) {
		rc = flush(s, err);
		if (rc == MX_OK)
			rc = read_reply(s, &r, what, err);
		if (rc)
			break;
		if (r.code != 334)
			goto done;
		if (step < nsteps) {
			rc = put_cmd(s, steps[step++], "<redacted>", err);
		} else if (on_fail && !failed_sent) {
			failed_sent = true;
			rc = put_cmd(s, on_fail, "<end of failed exchange>",
				     err);
		} else {
			/* RFC 4954: "*" cancels the exchange. */
			rc = put_cmd(s, "*", NULL, err);
			if (rc == MX_OK)
				rc = flush(s, err);
			if (rc == MX_OK)
				rc = read_reply(s, &r, what, err);
			if (rc == MX_OK)
				rc = mx_error_set(err, MX_ERR_PROTOCOL,
						  "%s %s: unexpected challenge",
						  s->host, what);
			return rc;
		}
	}
	if (rc == MX_OK)
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "%s %s: no end to the exchange", s->host,
				  what);
	return rc;
done:
	if (r.code == 235)
		return MX_OK;
	if (r.code / 100 == 4)
		return reply_error(s, &r, MX_ERR_SERVER, what, err);
	if (r.code == 504)
		return reply_error(s, &r, MX_ERR_UNSUPPORTED, what, err);
	return reply_error(s, &r, MX_ERR_AUTH, what, err);
}

static unsigned mech_bit(const char *name)
{
	for (size_t i = 0; i < MX_ARRAY_SIZE(mech_names); i++)
		if (strcasecmp(name, mech_names[i].name) == 0)
			return mech_names[i].bit;
	return 0;
}

static int authenticate(struct mx_smtp *s, const struct mx_smtp_cfg *cfg,
			struct mx_error *err)
{
	unsigned want, pick = 0;
	char *ir = NULL, *steps[2] = {NULL, NULL};
	const char *on_fail = NULL;
	size_t nsteps = 0;
	int rc;

	if (cfg->user == NULL)
		return MX_OK;
	want = cfg->access_token ? MECH_OAUTHBEARER | MECH_XOAUTH2
				 : MECH_PLAIN | MECH_LOGIN;
	if (cfg->mechanism) {
		unsigned forced = mech_bit(cfg->mechanism);

		if (!(forced & want))
			return mx_error_set(err, MX_ERR_INVAL,
					    "AUTH %s needs %s", cfg->mechanism,
					    forced & (MECH_PLAIN | MECH_LOGIN)
						    ? "a password"
						    : "an access token");
		want = forced;
	}
	/* Strongest first: the order of the tests below. */
	if (want & s->mechs & MECH_OAUTHBEARER)
		pick = MECH_OAUTHBEARER;
	else if (want & s->mechs & MECH_XOAUTH2)
		pick = MECH_XOAUTH2;
	else if (want & s->mechs & MECH_PLAIN)
		pick = MECH_PLAIN;
	else if (want & s->mechs & MECH_LOGIN)
		pick = MECH_LOGIN;
	if (pick == 0)
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "%s offers no AUTH mechanism we can use "
				    "(wanted %s)", s->host,
				    cfg->mechanism ? cfg->mechanism
				    : cfg->access_token ? "OAUTHBEARER or XOAUTH2"
							: "PLAIN or LOGIN");
	/* Credentials in clear text: only where the user allowed it. */
	if (!mx_net_is_tls(s->st) && !cfg->insecure_plaintext &&
	    !mx_net_is_loopback(s->host))
		return mx_error_set(err, MX_ERR_INSECURE,
				    "%s: refusing to send credentials without "
				    "TLS", s->host);
	switch (pick) {
	case MECH_OAUTHBEARER:
		s->mech = "OAUTHBEARER";
		ir = mx_sasl_oauthbearer(cfg->user, s->host, s->port,
					 cfg->access_token);
		on_fail = "AQ==";
		break;
	case MECH_XOAUTH2:
		s->mech = "XOAUTH2";
		ir = mx_sasl_xoauth2(cfg->user, cfg->access_token);
		on_fail = "";
		break;
	case MECH_PLAIN: {
		struct mx_buf b = {0};

		s->mech = "PLAIN";
		/* authzid NUL authcid NUL passwd (RFC 4616) */
		if (mx_buf_append(&b, "", 1) == 0 &&
		    mx_buf_puts(&b, cfg->user) == 0 &&
		    mx_buf_append(&b, "", 1) == 0 &&
		    mx_buf_puts(&b, cfg->password) == 0)
			ir = mx_base64_encode(b.data, b.len);
		if (b.data)
			OPENSSL_cleanse(b.data, b.len);
		mx_buf_free(&b);
		break;
	}
	default:
		s->mech = "LOGIN";
		steps[0] = mx_base64_encode(cfg->user, strlen(cfg->user));
		steps[1] = mx_base64_encode(cfg->password,
					    strlen(cfg->password));
		nsteps = 2;
		ir = steps[0] && steps[1] ? strdup("") : NULL;
		break;
	}
	if (ir == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM,
				  "cannot build the AUTH %s response", s->mech);
		goto out;
	}
	rc = sasl(s, s->mech, *ir ? ir : NULL, steps, nsteps, on_fail, err);
out:
	mx_secret_free(ir);
	mx_secret_free(steps[0]);
	mx_secret_free(steps[1]);
	if (rc)
		s->mech = NULL;
	return rc;
}

static int check_cfg(const struct mx_smtp_cfg *cfg, struct mx_error *err)
{
	const char *h = cfg->helo_name;

	if (cfg->host == NULL || *cfg->host == '\0' || cfg->port == 0)
		return mx_error_set(err, MX_ERR_INVAL, "SMTP: no host or port");
	if (h && (*h == '\0' || strlen(h) > 255))
		return mx_error_set(err, MX_ERR_INVAL, "SMTP: bad EHLO name");
	for (; h && *h; h++)
		if (*h <= 0x20 || *h >= 0x7f)
			return mx_error_set(err, MX_ERR_INVAL,
					    "SMTP: bad EHLO name");
	if (cfg->mechanism && mech_bit(cfg->mechanism) == 0)
		return mx_error_set(err, MX_ERR_INVAL,
				    "unknown AUTH mechanism '%s'",
				    cfg->mechanism);
	if (cfg->user && cfg->password == NULL && cfg->access_token == NULL)
		return mx_error_set(err, MX_ERR_INVAL,
				    "SMTP: user %s has no password or token",
				    cfg->user);
	if (cfg->tls == MX_TLS_NONE && !cfg->insecure_plaintext &&
	    !mx_net_is_loopback(cfg->host))
		return mx_error_set(err, MX_ERR_INSECURE,
				    "%s: plaintext SMTP refused; use implicit "
				    "TLS or STARTTLS, or allow it explicitly "
				    "(insecure plaintext)", cfg->host);
	return MX_OK;
}

int mx_smtp_open(const struct mx_smtp_cfg *cfg, struct mx_smtp **s_r,
		 struct mx_error *err)
{
	const char *helo = cfg->helo_name ? cfg->helo_name : "[127.0.0.1]";
	struct mx_smtp *s;
	struct reply r;
	int rc;

	*s_r = NULL;
	rc = check_cfg(cfg, err);
	if (rc)
		return rc;
	s = calloc(1, sizeof(*s));
	if (s == NULL || (s->host = strdup(cfg->host)) == NULL ||
	    (cfg->ca_file && (s->ca_file = strdup(cfg->ca_file)) == NULL)) {
		mx_smtp_close(&s);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	s->port = cfg->port;
	s->opts.ca_file = s->ca_file;
	s->opts.timeout_s = cfg->timeout_s;
	s->no_pipelining = cfg->no_pipelining;
	mx_trace(MX_TRACE_SMTP, "connect %s:%u (%s)", s->host, s->port,
		 cfg->tls == MX_TLS_IMPLICIT ? "TLS"
		 : cfg->tls == MX_TLS_STARTTLS ? "STARTTLS" : "plain");
	rc = mx_net_connect(s->host, s->port, cfg->tls == MX_TLS_IMPLICIT,
			    &s->opts, &s->st, err);
	if (rc)
		goto fail;
	rc = read_reply(s, &r, "greeting", err);
	if (rc == MX_OK && r.code != 220)
		rc = reply_error(s, &r, r.code / 100 == 2 ? MX_ERR_PROTOCOL
				 : MX_ERR_SERVER, "greeting", err);
	if (rc == MX_OK)
		rc = ehlo(s, helo, err);
	if (rc)
		goto fail;
	if (cfg->tls == MX_TLS_STARTTLS) {
		if (!(s->ext & MX_SMTP_EXT_STARTTLS)) {
			rc = mx_error_set(err, MX_ERR_INSECURE,
					  "%s: server does not offer STARTTLS; "
					  "refusing to continue without TLS",
					  s->host);
			goto fail;
		}
		rc = command(s, "STARTTLS", &r, "STARTTLS", err);
		if (rc == MX_OK && r.code != 220) {
			rc = reply_error(s, &r, MX_ERR_INSECURE, "STARTTLS "
					 "refused, not continuing without TLS",
					 err);
		}
		if (rc == MX_OK)
			rc = mx_net_starttls(s->st, s->host, &s->opts, err);
		if (rc == MX_OK)
			rc = ehlo(s, helo, err);
		if (rc)
			goto fail;
	} else if (cfg->tls == MX_TLS_NONE && !mx_net_is_loopback(s->host)) {
		mx_warn("%s: SMTP over an unencrypted connection "
			"(insecure plaintext)", s->host);
	}
	rc = authenticate(s, cfg, err);
	if (rc)
		goto fail;
	*s_r = s;
	return MX_OK;
fail:
	mx_smtp_close(&s);
	return rc;
}

uint64_t mx_smtp_size_limit(const struct mx_smtp *s)
{
	return s->size_limit;
}

unsigned mx_smtp_ext(const struct mx_smtp *s)
{
	return s->ext;
}

const char *mx_smtp_mechanism(const struct mx_smtp *s)
{
	return s->mech;
}

/* ------------------------------------------------------------------ */
/* Mail transaction                                                     */

void mx_smtp_result_free(struct mx_smtp_result *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nrcpt && r->rcpt; i++)
		free(r->rcpt[i].reply);
	free(r->rcpt);
	free(r->data_reply);
	memset(r, 0, sizeof(*r));
}

/* 0 fine, 1 has non-ASCII bytes, -1 unusable in a path. */
static int check_addr(const char *a)
{
	int utf8 = 0;

	if (strlen(a) > 1000)
		return -1;
	for (const unsigned char *p = (const unsigned char *)a; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>')
			return -1;
		if (*p >= 0x80)
			utf8 = 1;
	}
	if (utf8 && !mx_utf8_valid_str(a))
		return -1;
	return utf8;
}

/* Copies reply R into a recipient or DATA slot. */
static int keep_reply(const struct reply *r, int *code, char *enh,
		      char **text, struct mx_error *err)
{
	*code = r->code;
	if (enh)
		memcpy(enh, r->enh, sizeof(r->enh));
	free(*text);
	*text = fmt_reply(r->code, r->text, 1000);
	return *text ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
}

/*
 * Streams the message after a 354.  On a source failure or 8-bit bytes
 * the server must not take, the connection is dropped before the final
 * dot: closing is the only way to abort DATA without delivering.
 */
static int send_body(struct mx_smtp *s, mx_smtp_read_fn *read, void *ctx,
		     bool may_8bit, struct mx_error *err)
{
	struct mx_smtp_enc enc;
	char *in = malloc(DATA_CHUNK), *out = malloc(2 * DATA_CHUNK + 8);
	uint64_t total = 0;
	size_t o;
	int rc = MX_OK;

	if (in == NULL || out == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		drop(s);
		goto out;
	}
	mx_smtp_enc_init(&enc);
	for (;;) {
		ssize_t n = read(ctx, in, DATA_CHUNK);

		if (n == 0)
			break;
		if (n < 0 || n > DATA_CHUNK) {
			drop(s);
			rc = mx_error_set(err, MX_ERR_IO,
					  "reading the message failed; "
					  "connection to %s dropped, nothing "
					  "delivered", s->host);
			goto out;
		}
		total += (uint64_t)n;
		o = mx_smtp_enc_chunk(&enc, in, (size_t)n, out);
		if (enc.eight_bit && !may_8bit) {
			drop(s);
			rc = mx_error_set(err, MX_ERR_INVAL,
					  "message has 8-bit bytes but %s "
					  "lacks 8BITMIME (or it was declared "
					  "7-bit); connection dropped, "
					  "nothing delivered", s->host);
			goto out;
		}
		if (mailstream_write(s->st, out, o) != (ssize_t)o) {
			rc = stream_fail(s, "DATA", err);
			goto out;
		}
	}
	o = mx_smtp_enc_end(&enc, out);
	if (mailstream_write(s->st, out, o) != (ssize_t)o) {
		rc = stream_fail(s, "DATA", err);
		goto out;
	}
	mx_trace(MX_TRACE_SMTP, "C: <message, %" PRIu64 " bytes> .", total);
	rc = flush(s, err);
out:
	free(in);
	free(out);
	return rc;
}

/* The error for "no recipient accepted": the first refusal quoted, TEMP
 * if any refusal was temporary. */
static int no_rcpt_error(struct mx_smtp *s, const struct mx_smtp_result *res,
			 struct mx_error *err)
{
	const struct mx_smtp_rcpt *first = NULL;
	bool temp = false;

	for (size_t i = 0; i < res->nrcpt; i++) {
		if (first == NULL && res->rcpt[i].reply)
			first = &res->rcpt[i];
		if (res->rcpt[i].code / 100 == 4)
			temp = true;
	}
	mx_error_set(err, MX_ERR_SERVER,
		     "%s: no recipient accepted (%zu refused); RCPT TO:<%s>: %s",
		     s->host, res->nrcpt, first ? first->addr : "?",
		     first ? first->reply : "no reply");
	if (err)
		err->retry = temp ? MX_RETRY_TEMP : MX_RETRY_FINAL;
	return MX_ERR_SERVER;
}

static int check_envelope(struct mx_smtp *s, const char *from,
			  const char *const *rcpts, size_t nrcpts,
			  uint64_t size, unsigned flags, bool *utf8_r,
			  struct mx_error *err)
{
	int k = from ? check_addr(from) : -1;
	bool utf8 = k > 0;

	if (k < 0)
		return mx_error_set(err, MX_ERR_INVAL, "bad sender address");
	if (nrcpts == 0 || rcpts == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "no recipient");
	for (size_t i = 0; i < nrcpts; i++) {
		k = rcpts[i] && *rcpts[i] ? check_addr(rcpts[i]) : -1;
		if (k < 0)
			return mx_error_set(err, MX_ERR_INVAL,
					    "bad recipient address #%zu", i + 1);
		utf8 = utf8 || k > 0;
	}
	if (utf8 && !(s->ext & MX_SMTP_EXT_SMTPUTF8))
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "%s lacks SMTPUTF8: cannot send to or "
				    "from a non-ASCII address", s->host);
	if (s->size_limit > 0 && size > s->size_limit)
		return mx_error_set(err, MX_ERR_INVAL,
				    "message of %" PRIu64 " bytes exceeds the "
				    "%" PRIu64 "-byte limit of %s; not sent",
				    size, s->size_limit, s->host);
	if ((flags & MX_SMTP_8BIT) && !(s->ext & MX_SMTP_EXT_8BITMIME))
		return mx_error_set(err, MX_ERR_INVAL,
				    "message has 8-bit bytes and %s lacks "
				    "8BITMIME; encode it (quoted-printable "
				    "or base64) first; not sent", s->host);
	*utf8_r = utf8;
	return MX_OK;
}

int mx_smtp_send(struct mx_smtp *s, const char *from,
		 const char *const *rcpts, size_t nrcpts, mx_smtp_read_fn *read,
		 void *ctx, uint64_t size, unsigned flags,
		 struct mx_smtp_result *res, struct mx_error *err)
{
	struct mx_buf cmd = {0};
	struct reply r;
	bool utf8 = false, pipelined, body8;
	bool mail_ok = false;
	int rc, data_code = 0;
	char *data_txt = NULL;

	if (res == NULL || read == NULL)
		return mx_error_set(err, MX_ERR_INVAL,
				    "no result or no message source");
	memset(res, 0, sizeof(*res));
	if (s->broken || s->st == NULL)
		return mx_error_set(err, MX_ERR_NET,
				    "%s: session closed after an earlier error",
				    s->host);
	rc = check_envelope(s, from, rcpts, nrcpts, size, flags, &utf8, err);
	if (rc)
		return rc;
	res->rcpt = calloc(nrcpts, sizeof(*res->rcpt));
	if (res->rcpt == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	res->nrcpt = nrcpts;
	for (size_t i = 0; i < nrcpts; i++)
		res->rcpt[i].addr = rcpts[i];
	/* Unknown content goes as 8BITMIME when the server takes it (RFC
	 * 6152 allows it for 7-bit content too). */
	body8 = (s->ext & MX_SMTP_EXT_8BITMIME) && !(flags & MX_SMTP_7BIT);
	pipelined = (s->ext & MX_SMTP_EXT_PIPELINING) && !s->no_pipelining;

	if (s->need_rset) {
		rc = command(s, "RSET", &r, "RSET", err);
		if (rc == MX_OK && r.code != 250) {
			rc = reply_error(s, &r, MX_ERR_SERVER, "RSET", err);
			drop(s);
		}
		if (rc)
			goto out;
		s->need_rset = false;
	}
	s->need_rset = true; /* until the transaction completes */
	if (mx_buf_printf(&cmd, "MAIL FROM:<%s>", from) < 0 ||
	    ((s->ext & MX_SMTP_EXT_SIZE) && size > 0 &&
	     mx_buf_printf(&cmd, " SIZE=%" PRIu64, size) < 0) ||
	    (body8 && mx_buf_puts(&cmd, " BODY=8BITMIME") < 0) ||
	    (utf8 && mx_buf_puts(&cmd, " SMTPUTF8") < 0)) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	rc = put_cmd(s, cmd.data, NULL, err);
	if (rc == MX_OK && !pipelined)
		rc = flush(s, err);
	if (rc == MX_OK && !pipelined) {
		rc = read_reply(s, &r, "MAIL FROM", err);
		if (rc == MX_OK && r.code / 100 != 2) {
			rc = reply_error(s, &r, MX_ERR_SERVER, "MAIL FROM", err);
			goto out;
		}
		mail_ok = true;
	}
	/* RCPT TO... (and DATA), pipelined: all queued, one flush. */
	for (size_t i = 0; rc == MX_OK && i < nrcpts; i++) {
		mx_buf_reset(&cmd);
		if (mx_buf_printf(&cmd, "RCPT TO:<%s>", rcpts[i]) < 0) {
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
			break;
		}
		rc = put_cmd(s, cmd.data, NULL, err);
		if (rc == MX_OK && !pipelined)
			rc = flush(s, err);
		if (rc == MX_OK && !pipelined) {
			rc = read_reply(s, &r, "RCPT TO", err);
			if (rc == MX_OK)
				rc = keep_reply(&r, &res->rcpt[i].code,
						res->rcpt[i].enh,
						&res->rcpt[i].reply, err);
			if (rc == MX_OK && r.code / 100 == 2)
				res->accepted++;
			if (s->broken)
				break;
		}
	}
	if (rc)
		goto out;
	if (!pipelined && res->accepted == 0) {
		rc = no_rcpt_error(s, res, err);
		goto out;
	}
	rc = put_cmd(s, "DATA", NULL, err);
	if (rc == MX_OK)
		rc = flush(s, err);
	if (rc == MX_OK && pipelined) {
		/* Replies in command order (RFC 2920 3.1). */
		rc = read_reply(s, &r, "MAIL FROM", err);
		if (rc == MX_OK && r.code / 100 == 2)
			mail_ok = true;
		else if (rc == MX_OK && s->broken)
			/* 421: the server closes the connection; its reply is
			 * the error, not the end of file the next read sees. */
			rc = reply_error(s, &r, MX_ERR_SERVER, "MAIL FROM", err);
		else if (rc == MX_OK)
			reply_error(s, &r, MX_ERR_SERVER, "MAIL FROM", err);
		for (size_t i = 0; rc == MX_OK && i < nrcpts; i++) {
			rc = read_reply(s, &r, "RCPT TO", err);
			if (rc == MX_OK)
				rc = keep_reply(&r, &res->rcpt[i].code,
						res->rcpt[i].enh,
						&res->rcpt[i].reply, err);
			if (rc == MX_OK && r.code / 100 == 2)
				res->accepted++;
			if (rc == MX_OK && s->broken) /* 421, as above */
				rc = reply_error(s, &r, MX_ERR_SERVER,
						 "RCPT TO", err);
		}
	}
	if (rc == MX_OK)
		rc = read_reply(s, &r, "DATA", err);
	if (rc)
		goto out;
	if (r.code != 354) {
		if (!mail_ok)
			rc = err ? err->code : MX_ERR_SERVER;
		else if (res->accepted == 0)
			rc = no_rcpt_error(s, res, err);
		else
			rc = reply_error(s, &r, MX_ERR_SERVER, "DATA", err);
		goto out;
	}
	if (!mail_ok || res->accepted == 0) {
		/* DATA accepted although the envelope was not: RFC 2920
		 * says to send a lone dot; its reply is of no interest. */
		int code = 0;
		char *txt = NULL;
		struct mx_error keep;

		if (mail_ok)
			no_rcpt_error(s, res, err);
		keep = err ? *err : (struct mx_error){0};
		rc = keep.code ? (int)keep.code : MX_ERR_SERVER;
		if (put_cmd(s, ".", NULL, NULL) == MX_OK &&
		    flush(s, NULL) == MX_OK &&
		    read_reply(s, &r, "DATA", NULL) == MX_OK)
			keep_reply(&r, &code, NULL, &txt, NULL);
		free(txt);
		if (err)
			*err = keep;
		goto out;
	}
	rc = send_body(s, read, ctx, body8, err);
	if (rc == MX_OK) {
		int t = mx_net_set_timeout(s->st, DATA_DONE_TIMEOUT_S);

		if (t > DATA_DONE_TIMEOUT_S)
			mx_net_set_timeout(s->st, t);
		rc = read_reply(s, &r, "end of DATA", err);
		mx_net_set_timeout(s->st, t);
	}
	if (rc)
		goto out;
	rc = keep_reply(&r, &data_code, NULL, &data_txt, err);
	if (rc)
		goto out;
	res->data_code = data_code;
	res->data_reply = data_txt;
	data_txt = NULL;
	if (r.code / 100 != 2) {
		rc = reply_error(s, &r, MX_ERR_SERVER, "message", err);
		goto out;
	}
	s->need_rset = false;
	mx_trace(MX_TRACE_SMTP, "sent to %zu of %zu recipients", res->accepted,
		 res->nrcpt);
out:
	free(data_txt);
	mx_buf_free(&cmd);
	return rc;
}

void mx_smtp_close(struct mx_smtp **sp)
{
	struct mx_smtp *s;
	struct reply r;

	if (sp == NULL || *sp == NULL)
		return;
	s = *sp;
	if (s->st && !s->broken && put_cmd(s, "QUIT", NULL, NULL) == MX_OK &&
	    flush(s, NULL) == MX_OK)
		(void)read_reply(s, &r, "QUIT", NULL);
	if (s->st)
		mailstream_close(s->st);
	mx_buf_free(&s->line);
	mx_buf_free(&s->text);
	free(s->host);
	free(s->ca_file);
	free(s);
	*sp = NULL;
}
