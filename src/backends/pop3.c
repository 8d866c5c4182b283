/*
 * POP3 client on our transport.  See pop3.h and doc/internals/pop3.md.
 *
 * Replies are read through P->rbuf, our own buffer over mailstream_read():
 * status and listing lines are bounded (MAX_LINE), and RETR bodies run
 * through a small state machine that removes dot-stuffing and finds the
 * terminating "." without ever holding more than one buffer.
 *
 * mailstream_read() copies what libetpan has buffered and then does one
 * more low-level read, which blocks when the server has nothing more to
 * send; so fill() asks for no more than what is buffered when something
 * is, and only reads from the socket when libetpan's buffer is empty.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/oauth.h"
#include "backends/backend.h"
#include "backends/pop3.h"
#include "net/net.h"
#include "secrets/secrets.h"

/* RFC 2449 4: response lines up to 512 octets; we allow more slack but
 * never an unbounded line. */
#define MAX_LINE 4096
/* RFC 2449 4: a command line is at most 255 octets including CRLF. */
#define MAX_CMD 255
/* A maildrop listing larger than this is not a maildrop. */
#define MAX_MSGS 5000000u

struct mx_pop3 {
	mailstream *s;     /* owned */
	char *host;        /* owned */
	bool broken;       /* desynchronized: no more commands */
	unsigned caps;     /* MX_POP3_CAP_* */
	char *sasl;        /* " MECH MECH " from CAPA, upper case (owned) */
	const char *mech;  /* static string once logged in */
	char rbuf[16384];
	size_t rpos, rlen;
	char line[MAX_LINE + 1]; /* the last line read, NUL-terminated */
	size_t linelen;
};

/* ---- errors and trace ---- */

/* S made printable for one log line / error detail (at most 200 chars). */
static const char *safe(const char *s)
{
	static __thread char buf[201];
	size_t i;

	for (i = 0; s[i] && i < sizeof(buf) - 1; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

static int broken(struct mx_pop3 *p, struct mx_error *err, enum mx_err code,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Records an error after which the session cannot go on. */
static int broken(struct mx_pop3 *p, struct mx_error *err, enum mx_err code,
		  const char *fmt, ...)
{
	char msg[MX_ERROR_DETAIL];
	va_list ap;

	p->broken = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return mx_error_set(err, code, "%s: %s", p->host, msg);
}

static int stream_fail(struct mx_pop3 *p, const char *what,
		       struct mx_error *err)
{
	int rc;

	p->broken = true;
	rc = mx_net_stream_error(p->s, err);
	mx_error_prefix(err, "%s: %s", p->host, what);
	return rc;
}

/* ---- reading ---- */

static int fill(struct mx_pop3 *p, const char *what, struct mx_error *err)
{
	size_t want;
	ssize_t n;

	if (p->rpos > 0) {
		memmove(p->rbuf, p->rbuf + p->rpos, p->rlen - p->rpos);
		p->rlen -= p->rpos;
		p->rpos = 0;
	}
	want = sizeof(p->rbuf) - p->rlen;
	if (want == 0)
		return broken(p, err, MX_ERR_PROTOCOL, "%s: read buffer full",
			      what);
	/* Never block for more than libetpan already holds (see top). */
	if (p->s->read_buffer_len > 0 && p->s->read_buffer_len < want)
		want = p->s->read_buffer_len;
	n = mailstream_read(p->s, p->rbuf + p->rlen, want);
	if (n <= 0)
		return stream_fail(p, what, err);
	p->rlen += (size_t)n;
	return MX_OK;
}

/* Reads one line into P->line (CRLF or LF removed). */
static int read_line(struct mx_pop3 *p, const char *what, struct mx_error *err)
{
	for (;;) {
		char *nl = memchr(p->rbuf + p->rpos, '\n', p->rlen - p->rpos);

		if (nl) {
			const char *start = p->rbuf + p->rpos;
			size_t n = (size_t)(nl - start);

			p->rpos += n + 1;
			if (n > 0 && start[n - 1] == '\r')
				n--;
			if (n > MAX_LINE)
				return broken(p, err, MX_ERR_PROTOCOL,
					      "%s: reply line longer than %d "
					      "bytes", what, MAX_LINE);
			memcpy(p->line, start, n);
			p->line[n] = '\0';
			p->linelen = n;
			if (memchr(p->line, '\0', n))
				return broken(p, err, MX_ERR_PROTOCOL,
					      "%s: NUL byte in a reply line",
					      what);
			return MX_OK;
		}
		if (p->rlen - p->rpos > MAX_LINE + 1)
			return broken(p, err, MX_ERR_PROTOCOL,
				      "%s: reply line longer than %d bytes",
				      what, MAX_LINE);
		if (fill(p, what, err))
			return err ? (int)err->code : MX_ERR_NET;
	}
}

/* ---- writing ---- */

/* Sends one line (CRLF added).  SECRET: the trace shows TRACE_AS only. */
static int send_raw(struct mx_pop3 *p, const char *line, size_t len,
		    const char *trace_as, struct mx_error *err)
{
	if (p->broken)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "%s: session unusable after an earlier "
				    "error", p->host);
	mx_trace(MX_TRACE_POP3, "C: %s", trace_as ? trace_as : line);
	if (mailstream_write(p->s, line, len) != (ssize_t)len ||
	    mailstream_write(p->s, "\r\n", 2) != 2 ||
	    mailstream_flush(p->s) < 0)
		return stream_fail(p, "write", err);
	return MX_OK;
}

static int send_cmd(struct mx_pop3 *p, const char *trace_as,
		    struct mx_error *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Formats and sends a command of at most MAX_CMD octets with its CRLF. */
static int send_cmd(struct mx_pop3 *p, const char *trace_as,
		    struct mx_error *err, const char *fmt, ...)
{
	char buf[MAX_CMD + 1];
	va_list ap;
	int n;
	int rc;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || n + 2 > MAX_CMD)
		return mx_error_set(err, MX_ERR_INVAL,
				    "%s: POP3 command longer than %d octets",
				    p->host, MAX_CMD);
	rc = send_raw(p, buf, (size_t)n, trace_as, err);
	OPENSSL_cleanse(buf, sizeof(buf)); /* may have held a password */
	return rc;
}

/* ---- responses ---- */

/* "[CODE] ..." or "[CODE/SUB] ..." at the start of TEXT (RFC 2449 8). */
static bool has_code(const char *text, const char *code)
{
	size_t n = strlen(code);

	return text[0] == '[' && strncasecmp(text + 1, code, n) == 0 &&
	       (text[1 + n] == ']' || text[1 + n] == '/');
}

/* Error code for an -ERR answer to WHAT (TEXT after "-ERR "). */
static int err_reply(struct mx_pop3 *p, const char *what, const char *text,
		     bool login, struct mx_error *err)
{
	int rc;

	if (has_code(text, "SYS/TEMP") || has_code(text, "IN-USE") ||
	    has_code(text, "LOGIN-DELAY")) {
		/* RFC 3206 / 2449: try again later. */
		rc = mx_error_set(err, MX_ERR_SERVER, "%s: %s: server said: %s",
				  p->host, what, safe(text));
		if (err)
			err->retry = has_code(text, "SYS/TEMP") ? MX_RETRY_TEMP
								: MX_RETRY_WAIT;
		return rc;
	}
	if (login && !has_code(text, "SYS"))
		return mx_error_set(err, MX_ERR_AUTH,
				    "%s: %s rejected by server: %s", p->host,
				    what, safe(text));
	return mx_error_set(err, MX_ERR_SERVER, "%s: %s: server said: %s",
			    p->host, what, safe(text));
}

/*
 * Reads a status line: MX_OK for "+OK", err_reply() for "-ERR", and
 * MX_ERR_PROTOCOL for anything else.  LOGIN: an -ERR without a response
 * code is an authentication failure.
 */
static int status(struct mx_pop3 *p, const char *what, bool login,
		  struct mx_error *err)
{
	int rc = read_line(p, what, err);

	if (rc)
		return rc;
	mx_trace(MX_TRACE_POP3, "S: %s", safe(p->line));
	if (strncmp(p->line, "+OK", 3) == 0 &&
	    (p->line[3] == '\0' || p->line[3] == ' '))
		return MX_OK;
	if (strncmp(p->line, "-ERR", 4) == 0 &&
	    (p->line[4] == '\0' || p->line[4] == ' '))
		return err_reply(p, what, p->line + (p->line[4] ? 5 : 4), login,
				 err);
	return broken(p, err, MX_ERR_PROTOCOL, "%s: unexpected reply: %s",
		      what, safe(p->line));
}

/*
 * Reads one line of a multi-line reply.  *END_R is true at the
 * terminating "."; otherwise the line (dot-unstuffed) starts at *LINE_R.
 */
static int multi_line(struct mx_pop3 *p, const char *what, const char **line_r,
		      bool *end_r, struct mx_error *err)
{
	int rc = read_line(p, what, err);

	if (rc)
		return rc;
	*end_r = strcmp(p->line, ".") == 0;
	*line_r = p->line[0] == '.' ? p->line + 1 : p->line;
	return MX_OK;
}

/* ---- CAPA ---- */

static int capa(struct mx_pop3 *p, struct mx_error *err)
{
	struct mx_buf sasl = {0};
	int rc;

	p->caps = 0;
	free(p->sasl);
	p->sasl = NULL;
	rc = send_cmd(p, NULL, err, "CAPA");
	if (rc == MX_OK)
		rc = status(p, "CAPA", false, err);
	if (rc == MX_ERR_SERVER) {
		/* An RFC 1939 server without CAPA: nothing is known. */
		mx_error_clear(err);
		return MX_OK;
	}
	if (rc)
		return rc;
	p->caps |= MX_POP3_CAP_CAPA;
	for (unsigned guard = 0;; guard++) {
		const char *l;
		char word[32];
		bool end;
		size_t i;

		if (guard > 1000) {
			rc = broken(p, err, MX_ERR_PROTOCOL,
				    "CAPA: endless capability list");
			goto out; /* SASL may hold what earlier lines said */
		}
		rc = multi_line(p, "CAPA", &l, &end, err);
		if (rc)
			goto out;
		if (end)
			break;
		mx_trace(MX_TRACE_POP3, "S: %s", safe(l));
		for (i = 0; l[i] && l[i] != ' ' && i < sizeof(word) - 1; i++)
			word[i] = (char)toupper((unsigned char)l[i]);
		word[i] = '\0';
		if (strcmp(word, "STLS") == 0)
			p->caps |= MX_POP3_CAP_STLS;
		else if (strcmp(word, "UIDL") == 0)
			p->caps |= MX_POP3_CAP_UIDL;
		else if (strcmp(word, "USER") == 0)
			p->caps |= MX_POP3_CAP_USER;
		else if (strcmp(word, "TOP") == 0)
			p->caps |= MX_POP3_CAP_TOP;
		else if (strcmp(word, "RESP-CODES") == 0)
			p->caps |= MX_POP3_CAP_RESP_CODES;
		else if (strcmp(word, "SASL") == 0) {
			p->caps |= MX_POP3_CAP_SASL;
			if (sasl.len == 0 && mx_buf_puts(&sasl, " ") < 0)
				goto nomem;
			for (const char *q = l + 4; *q; q++)
				if (mx_buf_printf(&sasl, "%c",
						  *q == ' ' ? ' '
						  : toupper((unsigned char)*q)) < 0)
					goto nomem;
			if (mx_buf_puts(&sasl, " ") < 0)
				goto nomem;
		}
	}
	p->sasl = sasl.len ? mx_buf_steal(&sasl) : NULL;
out:
	mx_buf_free(&sasl);
	return rc;
nomem:
	mx_buf_free(&sasl);
	return mx_error_set(err, MX_ERR_NOMEM, NULL);
}

static bool offers(const struct mx_pop3 *p, const char *mech)
{
	char pat[40];

	if (p->sasl == NULL)
		return false;
	snprintf(pat, sizeof(pat), " %s ", mech);
	return strstr(p->sasl, pat) != NULL;
}

/* ---- login ---- */

/* The decoded SASL challenge in "+ BASE64", for error details. */
static void challenge_text(const char *line, char *out, size_t cap)
{
	unsigned char dec[301];
	size_t n = strlen(line), r = 0;

	out[0] = '\0';
	if (n == 0 || n > 400 || cap == 0)
		return;
	if (mx_base64_decode(line, n, MX_BASE64_SKIP_SPACE | MX_BASE64_ANY_TAIL,
			     dec, sizeof(dec) - 1, &r) < 0 || r == 0)
		return;
	dec[r] = '\0';
	snprintf(out, cap, " (%s)", safe((const char *)dec));
}

/*
 * AUTH MECH with initial response IR (base64) (RFC 5034).  The response
 * goes on the AUTH line when the line fits 255 octets, else after the
 * server's "+ ".  A second challenge (the OAuth2 failure report, RFC 7628
 * 3.2.2) is answered with the empty response (OAUTHBEARER: %x01) so that
 * the server sends its -ERR; any other mechanism cancels with "*".
 */
static int sasl(struct mx_pop3 *p, const char *mech, const char *ir,
		struct mx_error *err)
{
	bool bearer = strcmp(mech, "XOAUTH2") == 0 ||
		      strcmp(mech, "OAUTHBEARER") == 0;
	bool sent = false;
	char what[32], info[240] = "";
	struct mx_buf cmd = {0};
	int rc;

	snprintf(what, sizeof(what), "AUTH %s", mech);
	if (strlen(what) + 1 + strlen(ir) + 2 <= MAX_CMD) {
		if (mx_buf_printf(&cmd, "%s %s", what, ir) < 0)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		sent = true;
	} else if (mx_buf_puts(&cmd, what) < 0) {
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	{
		char tr[48];

		snprintf(tr, sizeof(tr), "%s%s", what,
			 sent ? " <redacted>" : "");
		rc = send_raw(p, cmd.data, cmd.len, tr, err);
	}
	memset(cmd.data, 0, cmd.len);
	mx_buf_free(&cmd);
	for (int round = 0; rc == MX_OK; round++) {
		rc = read_line(p, what, err);
		if (rc)
			break;
		if (p->line[0] != '+' || strncmp(p->line, "+OK", 3) == 0) {
			mx_trace(MX_TRACE_POP3, "S: %s", safe(p->line));
			/* Re-parse the line already read as a status. */
			if (strncmp(p->line, "+OK", 3) == 0 &&
			    (p->line[3] == '\0' || p->line[3] == ' '))
				return MX_OK;
			if (strncmp(p->line, "-ERR", 4) == 0) {
				const char *t = p->line + (p->line[4] ? 5 : 4);

				rc = err_reply(p, what, t, true, err);
				if (rc == MX_ERR_AUTH && info[0] && err)
					snprintf(err->detail + strlen(err->detail),
						 sizeof(err->detail) -
							 strlen(err->detail),
						 "%s", info);
				return rc;
			}
			return broken(p, err, MX_ERR_PROTOCOL,
				      "%s: unexpected reply: %s", what,
				      safe(p->line));
		}
		/* A continuation "+ [base64]". */
		mx_trace(MX_TRACE_POP3, "S: %s", safe(p->line));
		if (round >= 3)
			return broken(p, err, MX_ERR_PROTOCOL,
				      "%s: no end to the exchange", what);
		if (!sent) {
			sent = true;
			rc = send_raw(p, ir, strlen(ir), "<redacted>", err);
		} else if (bearer) {
			challenge_text(p->line[1] == ' ' ? p->line + 2 : "",
				       info, sizeof(info));
			rc = send_raw(p, strcmp(mech, "OAUTHBEARER") == 0 ? "AQ=="
									 : "",
				      strcmp(mech, "OAUTHBEARER") == 0 ? 4 : 0,
				      NULL, err);
		} else {
			rc = send_raw(p, "*", 1, NULL, err);
		}
	}
	return rc;
}

static int login_user_pass(struct mx_pop3 *p, const struct mx_pop3_cfg *cfg,
			   struct mx_error *err)
{
	int rc;

	if (strchr(cfg->user, ' ') || strchr(cfg->password, '\r') ||
	    strchr(cfg->password, '\n'))
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "%s: user or password not expressible "
				    "with USER/PASS", p->host);
	rc = send_cmd(p, NULL, err, "USER %s", cfg->user);
	if (rc == MX_OK)
		rc = status(p, "USER", true, err);
	if (rc == MX_OK)
		rc = send_cmd(p, "PASS <redacted>", err, "PASS %s",
			      cfg->password);
	if (rc == MX_OK)
		rc = status(p, "PASS", true, err);
	return rc;
}

static int login(struct mx_pop3 *p, const struct mx_pop3_cfg *cfg,
		 struct mx_error *err)
{
	const char *mech = cfg->mech;
	char *ir = NULL;
	int rc;

	if (cfg->user == NULL || cfg->user[0] == '\0' ||
	    (cfg->access_token == NULL && cfg->password == NULL))
		return mx_error_set(err, MX_ERR_CONFIG,
				    "%s: no user name or no credentials",
				    p->host);
	if (mech == NULL && cfg->access_token) {
		if (offers(p, "OAUTHBEARER"))
			mech = "OAUTHBEARER";
		else if (offers(p, "XOAUTH2"))
			mech = "XOAUTH2";
		else
			return mx_error_set(err, MX_ERR_UNSUPPORTED,
					    "%s: POP3 server offers neither "
					    "SASL OAUTHBEARER nor XOAUTH2",
					    p->host);
	} else if (mech == NULL) {
		if (offers(p, "PLAIN"))
			mech = "PLAIN";
		else if ((p->caps & MX_POP3_CAP_USER) ||
			 !(p->caps & MX_POP3_CAP_CAPA))
			mech = "USER";
		else
			return mx_error_set(err, MX_ERR_UNSUPPORTED,
					    "%s: POP3 server offers neither "
					    "SASL PLAIN nor USER", p->host);
	}
	if (strcmp(mech, "OAUTHBEARER") == 0 && cfg->access_token) {
		p->mech = "OAUTHBEARER";
		ir = mx_sasl_oauthbearer(cfg->user, cfg->host, cfg->port,
					 cfg->access_token);
	} else if (strcmp(mech, "XOAUTH2") == 0 && cfg->access_token) {
		p->mech = "XOAUTH2";
		ir = mx_sasl_xoauth2(cfg->user, cfg->access_token);
	} else if (strcmp(mech, "PLAIN") == 0 && cfg->password) {
		/* RFC 4616: authzid NUL authcid NUL passwd. */
		size_t ul = strlen(cfg->user), pl = strlen(cfg->password);
		char *raw = malloc(ul + pl + 2);

		p->mech = "PLAIN";
		if (raw) {
			raw[0] = '\0';
			memcpy(raw + 1, cfg->user, ul);
			raw[1 + ul] = '\0';
			memcpy(raw + 2 + ul, cfg->password, pl);
			ir = mx_base64_encode(raw, ul + pl + 2);
			OPENSSL_cleanse(raw, ul + pl + 2);
			free(raw);
		}
	} else if (strcmp(mech, "USER") == 0 && cfg->password) {
		p->mech = "USER";
		return login_user_pass(p, cfg, err);
	} else {
		return mx_error_set(err, MX_ERR_CONFIG,
				    "%s: login mechanism '%s' does not fit the "
				    "account's credentials", p->host, mech);
	}
	if (ir == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = sasl(p, p->mech, ir, err);
	mx_secret_free(ir);
	return rc;
}

/* ---- session ---- */

int mx_pop3_connect(const struct mx_pop3_cfg *cfg, struct mx_pop3 **p_r,
		    struct mx_error *err)
{
	struct mx_net_opts opts = {cfg->ca_file, cfg->timeout_s};
	struct mx_pop3 *p;
	int rc;

	*p_r = NULL;
	if (cfg->tls == MX_TLS_NONE && !cfg->insecure_plaintext)
		return mx_error_set(err, MX_ERR_INSECURE,
				    "%s: plaintext POP3 refused; use pop3s:// "
				    "or pop3:// (STLS), or allow it explicitly "
				    "with --insecure-plaintext", cfg->host);
	p = calloc(1, sizeof(*p));
	if (p == NULL || (p->host = strdup(cfg->host)) == NULL) {
		free(p);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	rc = mx_net_connect(cfg->host, cfg->port, cfg->tls == MX_TLS_IMPLICIT,
			    &opts, &p->s, err);
	if (rc)
		goto fail;
	rc = status(p, "greeting", false, err);
	if (rc)
		goto fail;
	rc = capa(p, err);
	if (rc)
		goto fail;
	if (cfg->tls == MX_TLS_STARTTLS) {
		if (!(p->caps & MX_POP3_CAP_STLS)) {
			rc = mx_error_set(err, MX_ERR_INSECURE,
					  "%s: POP3 server does not offer STLS; "
					  "refusing to log in without TLS",
					  p->host);
			goto fail;
		}
		rc = send_cmd(p, NULL, err, "STLS");
		if (rc == MX_OK)
			rc = status(p, "STLS", false, err);
		if (rc == MX_ERR_SERVER) {
			rc = mx_error_set(err, MX_ERR_INSECURE,
					  "%s: STLS refused by server (%s); "
					  "refusing to log in without TLS",
					  p->host, safe(p->line));
			goto fail;
		}
		if (rc)
			goto fail;
		/* Bytes after "+OK" would be read as if they came over TLS
		 * (a STARTTLS injection, CVE-2011-0411 style). */
		if (p->rpos != p->rlen) {
			rc = broken(p, err, MX_ERR_PROTOCOL,
				    "STLS: data received before the TLS "
				    "handshake; refused");
			goto fail;
		}
		rc = mx_net_starttls(p->s, cfg->host, &opts, err);
		if (rc)
			goto fail;
		/* What was said before TLS must not be trusted. */
		rc = capa(p, err);
		if (rc)
			goto fail;
	} else if (cfg->tls == MX_TLS_NONE) {
		mx_warn("%s: logging in over an unencrypted connection "
			"(--insecure-plaintext)", cfg->host);
	}
	rc = login(p, cfg, err);
	if (rc)
		goto fail;
	*p_r = p;
	return MX_OK;
fail:
	mx_pop3_close(&p);
	return rc;
}

int mx_pop3_connect_account(const struct mx_account *a, struct mx_pop3 **p_r,
			    struct mx_error *err)
{
	struct mx_pop3_cfg cfg = {0};
	char *pw = NULL;
	int rc;

	cfg.host = a->host;
	cfg.port = a->port;
	cfg.tls = a->tls;
	cfg.insecure_plaintext = a->insecure_plaintext;
	cfg.ca_file = a->ca_file;
	cfg.timeout_s = a->timeout_s;
	cfg.user = a->user;
	cfg.access_token = a->access_token;
	cfg.mech = getenv("MXSYNC_POP3_MECH");
	if (cfg.mech && cfg.mech[0] == '\0')
		cfg.mech = NULL;
	if (a->access_token == NULL) {
		rc = mx_account_password(a, &pw, err);
		if (rc)
			return rc;
		cfg.password = pw;
	}
	rc = mx_pop3_connect(&cfg, p_r, err);
	mx_secret_free(pw);
	return rc;
}

const char *mx_pop3_mech(const struct mx_pop3 *p)
{
	return p->mech ? p->mech : "";
}

unsigned mx_pop3_caps(const struct mx_pop3 *p)
{
	return p->caps;
}

void mx_pop3_close(struct mx_pop3 **pp)
{
	struct mx_pop3 *p;

	if (pp == NULL || *pp == NULL)
		return;
	p = *pp;
	if (p->s)
		mailstream_close(p->s);
	free(p->sasl);
	free(p->host);
	free(p);
	*pp = NULL;
}

int mx_pop3_quit(struct mx_pop3 *p, struct mx_error *err)
{
	int rc = send_cmd(p, NULL, err, "QUIT");

	if (rc == MX_OK)
		rc = status(p, "QUIT", false, err);
	p->broken = true; /* the server closes */
	return rc;
}

int mx_pop3_dele(struct mx_pop3 *p, uint32_t num, struct mx_error *err)
{
	int rc = send_cmd(p, NULL, err, "DELE %" PRIu32, num);

	return rc ? rc : status(p, "DELE", false, err);
}

/* ---- listings ---- */

/* A decimal number of at most MAXDIG digits at *S; advances *S. */
static bool parse_num(const char **s, unsigned maxdig, uint64_t *v_r)
{
	const char *q = *s;
	uint64_t v = 0;
	unsigned n = 0;

	while (*q >= '0' && *q <= '9') {
		if (++n > maxdig)
			return false;
		v = v * 10 + (uint64_t)(*q - '0');
		q++;
	}
	if (n == 0)
		return false;
	*s = q;
	*v_r = v;
	return true;
}

int mx_pop3_parse_uidl(const char *line, uint32_t *num_r,
		       char uidl_r[MX_POP3_UIDL_MAX + 1], struct mx_error *err)
{
	const char *q = line, *u;
	uint64_t num;
	size_t n;

	if (!parse_num(&q, 9, &num) || num == 0 || *q != ' ')
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "bad UIDL line: %s", safe(line));
	u = q + 1;
	n = strlen(u);
	if (n == 0 || n > MX_POP3_UIDL_MAX)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "bad UIDL line (unique-id of %zu "
				    "characters, RFC 1939 allows 1 to 70): %s",
				    n, safe(line));
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] < 0x21 || (unsigned char)u[i] > 0x7e)
			return mx_error_set(err, MX_ERR_PROTOCOL,
					    "bad UIDL line (character 0x%02x "
					    "in unique-id): %s",
					    (unsigned char)u[i], safe(line));
	memcpy(uidl_r, u, n + 1);
	*num_r = (uint32_t)num;
	return MX_OK;
}

int mx_pop3_parse_list(const char *line, uint32_t *num_r, uint64_t *size_r,
		       struct mx_error *err)
{
	const char *q = line;
	uint64_t num, size;

	/* RFC 1939 5: "msg-number SP size"; anything after the size is
	 * server-specific information a server may add. */
	if (!parse_num(&q, 9, &num) || num == 0 || *q != ' ')
		return mx_error_set(err, MX_ERR_PROTOCOL, "bad LIST line: %s",
				    safe(line));
	q++;
	if (!parse_num(&q, 15, &size) || (*q != '\0' && *q != ' '))
		return mx_error_set(err, MX_ERR_PROTOCOL, "bad LIST line: %s",
				    safe(line));
	*num_r = (uint32_t)num;
	*size_r = size;
	return MX_OK;
}

static int cmp_num(const void *a, const void *b)
{
	const struct mx_pop3_msg *x = a, *y = b;

	return x->num < y->num ? -1 : x->num > y->num;
}

static int cmp_uidl(const void *a, const void *b)
{
	const struct mx_pop3_msg *const *x = a, *const *y = b;

	return strcmp((*x)->uidl, (*y)->uidl);
}

/* Reads the UIDL listing into *V_R. */
static int read_uidl(struct mx_pop3 *p, struct mx_pop3_msg **v_r,
		     size_t *n_r, struct mx_error *err)
{
	struct mx_pop3_msg *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	rc = send_cmd(p, NULL, err, "UIDL");
	if (rc == MX_OK)
		rc = status(p, "UIDL", false, err);
	if (rc == MX_ERR_SERVER)
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "%s: POP3 server does not support UIDL "
				    "(%s); without unique ids mxsync cannot "
				    "tell which messages it already has",
				    p->host, safe(p->line));
	while (rc == MX_OK) {
		const char *l;
		bool end;

		rc = multi_line(p, "UIDL", &l, &end, err);
		if (rc || end)
			break;
		if (n == MAX_MSGS) {
			rc = broken(p, err, MX_ERR_PROTOCOL,
				    "UIDL: more than %u messages", MAX_MSGS);
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 256;
			struct mx_pop3_msg *nv = realloc(v, ncap * sizeof(*nv));

			if (nv == NULL) {
				rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
				break;
			}
			v = nv;
			cap = ncap;
		}
		memset(&v[n], 0, sizeof(v[n]));
		rc = mx_pop3_parse_uidl(l, &v[n].num, v[n].uidl, err);
		if (rc) {
			/* The rest of the listing is unread. */
			p->broken = true;
			mx_error_prefix(err, "%s", p->host);
			break;
		}
		n++;
	}
	if (rc) {
		free(v);
		return rc;
	}
	mx_trace(MX_TRACE_POP3, "S: (UIDL: %zu messages)", n);
	*v_r = v;
	*n_r = n;
	return MX_OK;
}

int mx_pop3_list(struct mx_pop3 *p, struct mx_pop3_msg **v_r, size_t *n_r,
		 struct mx_error *err)
{
	struct mx_pop3_msg *v = NULL, **byuid = NULL;
	size_t n = 0, nlist = 0;
	int rc;

	*v_r = NULL;
	*n_r = 0;
	rc = read_uidl(p, &v, &n, err);
	if (rc)
		return rc;
	/* An empty maildrop leaves V NULL, which qsort() and bsearch() must
	 * not be given even with a count of 0 (C11 7.22.5). */
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_num);
	for (size_t i = 1; i < n; i++)
		if (v[i].num == v[i - 1].num) {
			rc = mx_error_set(err, MX_ERR_PROTOCOL,
					  "%s: UIDL lists message %" PRIu32
					  " twice", p->host, v[i].num);
			goto out;
		}
	byuid = malloc((n ? n : 1) * sizeof(*byuid));
	if (byuid == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		byuid[i] = &v[i];
	if (n > 1)
		qsort(byuid, n, sizeof(*byuid), cmp_uidl);
	for (size_t i = 1; i < n; i++)
		if (strcmp(byuid[i]->uidl, byuid[i - 1]->uidl) == 0) {
			rc = mx_error_set(err, MX_ERR_PROTOCOL,
					  "%s: UIDL gives messages %" PRIu32
					  " and %" PRIu32 " the same unique-id "
					  "'%s'; refusing to guess which is "
					  "which", p->host, byuid[i - 1]->num,
					  byuid[i]->num, byuid[i]->uidl);
			goto out;
		}
	/* LIST: the sizes, for progress and buffer reservation. */
	rc = send_cmd(p, NULL, err, "LIST");
	if (rc == MX_OK)
		rc = status(p, "LIST", false, err);
	while (rc == MX_OK) {
		const char *l;
		bool end;
		uint32_t num;
		uint64_t size;
		struct mx_pop3_msg key, *hit;

		rc = multi_line(p, "LIST", &l, &end, err);
		if (rc || end)
			break;
		rc = mx_pop3_parse_list(l, &num, &size, err);
		if (rc) {
			p->broken = true;
			mx_error_prefix(err, "%s", p->host);
			break;
		}
		key.num = num;
		hit = n ? bsearch(&key, v, n, sizeof(*v), cmp_num) : NULL;
		if (hit == NULL || hit->size != 0 || ++nlist > n) {
			rc = broken(p, err, MX_ERR_PROTOCOL,
				    "LIST: message %" PRIu32 " %s", num,
				    hit ? "listed twice" : "not in UIDL");
			break;
		}
		/* 0 marks "not listed yet"; a real 0-octet message gets 1. */
		hit->size = size ? size : 1;
	}
	if (rc == MX_OK && nlist != n)
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "%s: LIST has %zu messages, UIDL %zu",
				  p->host, nlist, n);
out:
	free(byuid);
	if (rc) {
		free(v);
		return rc;
	}
	*v_r = v;
	*n_r = n;
	return MX_OK;
}

/* ---- RETR ---- */

enum retr_state { AT_BOL, IN_LINE, AT_DOT, AT_DOT_CR, DONE };

/*
 * After a "." line in RETR: true when more bytes have already arrived.
 * Nothing is pipelined, so a server that has ended its reply sends
 * nothing until the next command; more bytes mean the "." was a line of
 * the message that the server did not stuff (RFC 1939 3 requires it),
 * and it is kept as such instead of cutting the message there.  Bytes
 * still on their way are not waited for: then the message is cut and
 * the rest is a protocol error at the next command.
 */
static bool more_follows(struct mx_pop3 *p)
{
	struct pollfd pfd = {.fd = mx_net_fd(p->s), .events = POLLIN};

	if (p->rpos < p->rlen || mx_net_pending(p->s) > 0)
		return true;
	return pfd.fd >= 0 && poll(&pfd, 1, 0) > 0 &&
	       (pfd.revents & POLLIN);
}

int mx_pop3_retr(struct mx_pop3 *p, uint32_t num, mx_pop3_data_cb *cb,
		 void *ctx, struct mx_error *err)
{
	enum retr_state st = AT_BOL;
	char out[8192];
	size_t on = 0;
	uint64_t total = 0;
	int rc;

	rc = send_cmd(p, NULL, err, "RETR %" PRIu32, num);
	if (rc == MX_OK)
		rc = status(p, "RETR", false, err);
	if (rc)
		return rc;
	while (st != DONE) {
		if (p->rpos == p->rlen) {
			p->rpos = p->rlen = 0;
			rc = fill(p, "RETR", err);
			if (rc) {
				mx_error_prefix(err, "message %" PRIu32 " "
						"incomplete (no terminating "
						"\".\")", num);
				if (rc == MX_ERR_NET)
					rc = MX_ERR_PROTOCOL;
				if (err)
					err->code = rc;
				return rc;
			}
		}
		while (p->rpos < p->rlen && st != DONE) {
			char ch = p->rbuf[p->rpos++];

			switch (st) {
			case AT_BOL:
				if (ch == '.') {
					st = AT_DOT;
					continue;
				}
				st = ch == '\n' ? AT_BOL : IN_LINE;
				break;
			case IN_LINE:
				if (ch == '\n')
					st = AT_BOL;
				break;
			case AT_DOT:
				if (ch == '\r') {
					st = AT_DOT_CR;
					continue;
				}
				if (ch == '\n' && !more_follows(p)) {
					st = DONE; /* bare-LF server */
					continue;
				}
				if (ch == '\n') { /* an unstuffed "." line */
					out[on++] = '.';
					st = AT_BOL;
					break;
				}
				/* ".." or ".x": the stuffed dot goes. */
				st = IN_LINE;
				break;
			case AT_DOT_CR:
				if (ch == '\n' && !more_follows(p)) {
					st = DONE;
					continue;
				}
				if (ch == '\n') { /* an unstuffed "." line */
					out[on++] = '.';
					out[on++] = '\r';
					st = AT_BOL;
					break;
				}
				/* ".\rx": keep the CR, lose the dot. */
				out[on++] = '\r';
				st = IN_LINE;
				break;
			case DONE:
				break;
			}
			out[on++] = ch;
			if (on >= sizeof(out) - 2) { /* room for 3 */
				total += on;
				if (total > MX_POP3_MAX_MESSAGE)
					return broken(p, err, MX_ERR_PROTOCOL,
						      "RETR %" PRIu32 ": message "
						      "larger than %" PRIu64
						      " bytes", num,
						      MX_POP3_MAX_MESSAGE);
				rc = cb(out, on, ctx, err);
				if (rc) {
					p->broken = true;
					return rc;
				}
				on = 0;
			}
		}
	}
	total += on;
	if (total > MX_POP3_MAX_MESSAGE)
		return broken(p, err, MX_ERR_PROTOCOL,
			      "RETR %" PRIu32 ": message larger than %" PRIu64
			      " bytes", num, MX_POP3_MAX_MESSAGE);
	if (on > 0) {
		rc = cb(out, on, ctx, err);
		if (rc) {
			p->broken = true;
			return rc;
		}
	}
	mx_trace(MX_TRACE_POP3, "S: (message %" PRIu32 ": %" PRIu64 " bytes)",
		 num, total);
	return MX_OK;
}

/* ---- the backend table (src/backends/backend.h) ---- */

_Static_assert(MX_POP3_UIDL_MAX == MX_DROP_ID_MAX, "unique-id sizes differ");

/* The backend's connection: one POP3 session. */
struct mx_conn {
	struct mx_pop3 *p; /* owned */
};

static int pop3_be_connect(const struct mx_account *a, struct mx_conn **conn_r,
			   struct mx_error *err)
{
	struct mx_conn *c = calloc(1, sizeof(*c));
	int rc;

	*conn_r = NULL;
	if (c == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = mx_pop3_connect_account(a, &c->p, err);
	if (rc) {
		free(c);
		return rc;
	}
	*conn_r = c;
	return MX_OK;
}

static void pop3_be_disconnect(struct mx_conn **conn)
{
	if (*conn == NULL)
		return;
	mx_pop3_close(&(*conn)->p);
	free(*conn);
	*conn = NULL;
}

static unsigned pop3_be_server_caps(struct mx_conn *conn)
{
	(void)conn;
	return 0; /* none of the MX_CAP_* server extensions */
}

/* A maildrop is one folder: INBOX. */
static int pop3_be_list(struct mx_conn *conn, struct mx_remote_folder **v_r,
			size_t *n_r, struct mx_error *err)
{
	struct mx_remote_folder *v = calloc(1, sizeof(*v));

	(void)conn;
	*v_r = NULL;
	*n_r = 0;
	if (v == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	v->name = strdup("INBOX");
	v->wire = strdup("INBOX");
	if (v->name == NULL || v->wire == NULL) {
		mx_remote_folders_free(v, 1);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	v->delim = '/';
	v->special = MX_SU_INBOX;
	*v_r = v;
	*n_r = 1;
	return MX_OK;
}

static int pop3_be_drop_list(struct mx_conn *conn, struct mx_drop_msg **v_r,
			     size_t *n_r, struct mx_error *err)
{
	struct mx_pop3_msg *v = NULL;
	struct mx_drop_msg *out;
	size_t n = 0;
	int rc;

	*v_r = NULL;
	*n_r = 0;
	rc = mx_pop3_list(conn->p, &v, &n, err);
	if (rc)
		return rc;
	out = malloc((n ? n : 1) * sizeof(*out));
	if (out == NULL) {
		free(v);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		out[i].num = v[i].num;
		out[i].size = v[i].size;
		memcpy(out[i].id, v[i].uidl, sizeof(out[i].id));
	}
	free(v);
	*v_r = out;
	*n_r = n;
	return MX_OK;
}

static int pop3_be_drop_retr(struct mx_conn *conn, uint32_t num,
			     mx_data_cb *cb, void *ctx, struct mx_error *err)
{
	return mx_pop3_retr(conn->p, num, cb, ctx, err);
}

static int pop3_be_drop_remove(struct mx_conn *conn, uint32_t num,
			       struct mx_error *err)
{
	return mx_pop3_dele(conn->p, num, err);
}

static int pop3_be_drop_commit(struct mx_conn *conn, struct mx_error *err)
{
	return mx_pop3_quit(conn->p, err);
}

const struct mx_backend_ops mx_backend_pop3 = {
	.name = "pop3",
	.title = "POP3",
	.proto = MX_PROTO_POP3,
	.caps = MX_CAP_STORES_BODIES | MX_CAP_MODEL_DROP,
	.description = "INBOX downloaded into the store (optionally deleted "
		       "on the server); polled",
	.mode_new_mail = "every poll_interval (default 60 s)",
	.mode_folders = "INBOX only",
	.mode_stored = "whole messages (no flags on the server)",
	.mode_offline = "everything stored: full messages",
	.mode_limits = "1 session at a time: the server locks the maildrop",
	.connect = pop3_be_connect,
	.disconnect = pop3_be_disconnect,
	.server_caps = pop3_be_server_caps,
	.list = pop3_be_list,
	.drop_list = pop3_be_drop_list,
	.drop_retr = pop3_be_drop_retr,
	.drop_remove = pop3_be_drop_remove,
	.drop_commit = pop3_be_drop_commit,
};
