/*
 * IMAP backend on libetpan, over our OpenSSL transport (src/lib/net/).
 *
 * Every libetpan return code goes through imap_fail(), which copies the
 * server's response text at once (the next command overwrites it) and
 * turns stream errors into the transport's own detail (timeout, reset,
 * TLS alert).  FETCH results are streamed: libetpan's msg_att handler and
 * body handler hand each message to the caller's callback as it is parsed,
 * so memory stays flat whatever the mailbox size (DESIGN.md, "Stream,
 * don't accumulate").
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libetpan/libetpan.h>

#include "backends/backend.h"
#include "backends/imap_guard.h"
#include "auth/oauth.h"
#include "net/net.h"
#include "secrets/secrets.h"
#include "util/mutf7.h"

/* Largest message we accept (providers cap at 25-50 MB). */
#define MX_IMAP_MAX_MESSAGE (256 << 20)

struct mx_conn {
	mailimap *imap;
	mailstream *stream; /* foreign once mailimap_connect took it */
	char *host;
	unsigned caps;
	bool condstore_enabled;
	bool qresync_enabled;
	/* Streaming FETCH state. */
	struct mx_buf body;
	bool have_body;
	struct mx_buf idle_line; /* partial line read during IDLE */
	struct mx_imap_guard guard; /* sees every byte before libetpan */
	mx_fetch_cb *cb;
	void *cb_ctx;
	int cb_rc;
	struct mx_error *cb_err;
};

void mx_remote_folders_free(struct mx_remote_folder *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].wire);
	}
	free(v);
}

void mx_select_result_free(struct mx_select_result *r)
{
	if (r == NULL)
		return;
	free(r->vanished);
	for (size_t i = 0; i < r->nchanges; i++)
		free(r->changes[i].keywords);
	free(r->changes);
	memset(r, 0, sizeof(*r));
}

/* The server's last response text, sanitized for one log line. */
static const char *resp_text(struct mx_conn *c)
{
	static __thread char buf[256];
	const char *r = c->imap ? c->imap->imap_response : NULL;
	size_t i;

	if (r == NULL)
		return "(no response text)";
	for (i = 0; r[i] && i < sizeof(buf) - 1; i++)
		buf[i] = (r[i] >= 0x20 && r[i] < 0x7f) ? r[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* Maps a libetpan IMAP error to an mxsync error with detail. */
static int imap_fail(struct mx_conn *c, int r, const char *what,
		     struct mx_error *err)
{
	switch (r) {
	case MAILIMAP_ERROR_STREAM:
	case MAILIMAP_ERROR_CONNECTION_REFUSED:
		mx_net_stream_error(c->stream, err);
		mx_error_prefix(err, "%s", what);
		return err ? (int)err->code : MX_ERR_NET;
	case MAILIMAP_ERROR_PARSE:
		/* A read the guard refused can surface as a parse error. */
		if (c->guard.failed)
			return mx_error_set(err, c->guard.fail.code, "%s: %s",
					    what, c->guard.fail.detail);
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "%s: unparsable server response", what);
	case MAILIMAP_ERROR_MEMORY:
		/* Our body handler refuses data when a callback failed. */
		if (c->cb_rc != MX_OK)
			return c->cb_rc;
		return mx_error_set(err, MX_ERR_NOMEM, "%s", what);
	case MAILIMAP_ERROR_LOGIN:
		return mx_error_set(err, MX_ERR_AUTH,
				    "login rejected by server: %s",
				    resp_text(c));
	case MAILIMAP_ERROR_BAD_STATE:
		return mx_error_set(err, MX_ERR_PROTOCOL, "%s: bad state",
				    what);
	default:
		return mx_error_set(err, MX_ERR_SERVER, "%s: server said: %s",
				    what, resp_text(c));
	}
}

/*
 * Protocol trace (-D imap).  Credentials never reach the log: libetpan
 * marks secrets as private, and any LOGIN/AUTHENTICATE line is redacted
 * whole as a second line of defence.  Literal data is cut short.
 */
static void trace_logger(mailimap *imap, int type, const char *str,
			 size_t size, void *ctx)
{
	const char *dir;
	size_t n = size;

	(void)imap;
	(void)ctx;
	if (!(mx_trace_mask & MX_TRACE_IMAP))
		return;
	switch (type) {
	case MAILSTREAM_LOG_TYPE_DATA_SENT_PRIVATE:
		mx_trace(MX_TRACE_IMAP, "C: <redacted %zu bytes>", size);
		return;
	case MAILSTREAM_LOG_TYPE_DATA_SENT:
		dir = "C";
		break;
	case MAILSTREAM_LOG_TYPE_DATA_RECEIVED:
		dir = "S";
		break;
	default:
		return;
	}
	if (*dir == 'C' && (memmem(str, size, "LOGIN ", 6) ||
			    memmem(str, size, "AUTHENTICATE ", 13))) {
		mx_trace(MX_TRACE_IMAP, "C: <authentication redacted>");
		return;
	}
	while (n > 0 && (str[n - 1] == '\n' || str[n - 1] == '\r'))
		n--;
	mx_trace(MX_TRACE_IMAP, "%s: %.*s%s", dir, n > 2000 ? 2000 : (int)n, str,
		 n > 200 ? " [...]" : "");
}

static bool has_cap(struct mx_conn *c, const char *name)
{
	return mailimap_has_extension(c->imap, name) != 0;
}

static void read_caps(struct mx_conn *c)
{
	c->caps = MX_CAP_STORES_BODIES | MX_CAP_TWO_WAY_FLAGS;
	if (mailimap_has_idle(c->imap))
		c->caps |= MX_CAP_IDLE;
	if (mailimap_has_condstore(c->imap))
		c->caps |= MX_CAP_CONDSTORE;
	if (mailimap_has_qresync(c->imap))
		c->caps |= MX_CAP_QRESYNC | MX_CAP_CONDSTORE;
	if (has_cap(c, "MOVE"))
		c->caps |= MX_CAP_MOVE;
	if (has_cap(c, "UIDPLUS"))
		c->caps |= MX_CAP_UIDPLUS;
	if (has_cap(c, "X-GM-EXT-1"))
		c->caps |= MX_CAP_LABELS;
}

static int refresh_caps(struct mx_conn *c, struct mx_error *err)
{
	struct mailimap_connection_info *ci = c->imap->imap_connection_info;
	struct mailimap_capability_data *cap = NULL;
	clist *l;
	int r;

	/*
	 * After the tagged OK, libetpan copies the session's capability list
	 * without checking it exists: a server that answers without a
	 * "* CAPABILITY" line crashed us.  Start from an empty list, so that
	 * such an answer also leaves nothing from before (TLS) behind.
	 */
	if (ci != NULL) {
		l = clist_new();
		cap = l ? mailimap_capability_data_new(l) : NULL;
		if (cap == NULL) {
			if (l)
				clist_free(l);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
		if (ci->imap_capability != NULL)
			mailimap_capability_data_free(ci->imap_capability);
		ci->imap_capability = cap;
		cap = NULL;
	}
	r = mailimap_capability(c->imap, &cap);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, "CAPABILITY", err);
	mailimap_capability_data_free(cap);
	read_caps(c);
	return MX_OK;
}

static int enable_qresync(struct mx_conn *c, struct mx_error *err)
{
	struct mailimap_capability_data *want, *got = NULL;
	struct mailimap_capability *cap;
	clist *l;
	char *name;
	int r;

	if (!(c->caps & MX_CAP_QRESYNC))
		return MX_OK;
	l = clist_new();
	name = strdup("QRESYNC");
	cap = name ? mailimap_capability_new(MAILIMAP_CAPABILITY_NAME, NULL,
					     name) : NULL;
	if (l == NULL || cap == NULL || clist_append(l, cap) < 0) {
		if (cap)
			mailimap_capability_free(cap);
		else
			free(name);
		if (l)
			clist_free(l);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	want = mailimap_capability_data_new(l);
	r = mailimap_enable(c->imap, want, &got);
	mailimap_capability_data_free(want);
	if (got)
		mailimap_capability_data_free(got);
	if (r != MAILIMAP_NO_ERROR) {
		/* Not fatal: fall back to CONDSTORE. */
		mx_warn("%s: ENABLE QRESYNC failed: %s", c->host,
			resp_text(c));
		c->caps &= ~MX_CAP_QRESYNC;
		return MX_OK;
	}
	c->qresync_enabled = true;
	c->condstore_enabled = true;
	return MX_OK;
}

static void imap_disconnect(struct mx_conn **cp)
{
	struct mx_conn *c;

	if (cp == NULL || *cp == NULL)
		return;
	c = *cp;
	if (c->imap) {
		if (c->imap->imap_stream)
			mailimap_logout(c->imap);
		mailimap_free(c->imap); /* closes the stream */
	} else if (c->stream) {
		mailstream_close(c->stream);
	}
	mx_buf_free(&c->body);
	mx_buf_free(&c->idle_line);
	free(c->host);
	free(c);
	*cp = NULL;
}

/*
 * AUTHENTICATE MECH with initial response IR (base64; owned, wiped and
 * freed here), sent inline when the server has SASL-IR.  On failure an
 * OAuth2 server sends a "+ <base64 JSON>" challenge that must be answered
 * before the tagged NO arrives (RFC 7628 3.2.2); libetpan only knows
 * XOAUTH2 and does not answer it, so the exchange is done here and
 * libetpan is told the session is authenticated.
 */
static int sasl_auth(struct mx_conn *c, const char *mech, char *ir,
		     struct mx_error *err)
{
	MMAPString *line;
	bool sent_ir, ir_inline = has_cap(c, "SASL-IR");
	int rc = MX_OK;

	line = mmap_string_new("");
	if (ir == NULL || line == NULL) {
		free(ir);
		if (line)
			mmap_string_free(line);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	/* The token travels in its own writes: no protocol trace of any of
	 * them, whatever the trace settings. */
	mailimap_set_logger(c->imap, NULL, NULL);
	mx_trace(MX_TRACE_IMAP, "C: AUTHENTICATE %s <redacted>", mech);
	if (mailimap_send_current_tag(c->imap) != MAILIMAP_NO_ERROR ||
	    mailstream_write(c->stream, "AUTHENTICATE ", 13) != 13 ||
	    mailstream_write(c->stream, mech, strlen(mech)) !=
		    (ssize_t)strlen(mech) ||
	    (ir_inline &&
	     (mailstream_write(c->stream, " ", 1) != 1 ||
	      mailstream_write(c->stream, ir, strlen(ir)) != (ssize_t)strlen(ir))) ||
	    mailstream_write(c->stream, "\r\n", 2) != 2 ||
	    mailstream_flush(c->stream) < 0) {
		rc = imap_fail(c, MAILIMAP_ERROR_STREAM, "AUTHENTICATE", err);
		goto out;
	}
	sent_ir = ir_inline;
	for (int guard = 0; guard < 16; guard++) {
		const char *l = mailstream_read_line_remove_eol(c->stream, line);

		if (l == NULL) {
			rc = imap_fail(c, MAILIMAP_ERROR_STREAM, "AUTHENTICATE",
				       err);
			goto out;
		}
		if (l[0] == '+') {
			/* Our initial response (no SASL-IR), or the failure
			 * challenge, which is answered with an empty (XOAUTH2)
			 * or %x01 (OAUTHBEARER) response to end the exchange. */
			const char *reply = !sent_ir ? ir
				: strcmp(mech, "OAUTHBEARER") == 0 ? "AQ=="
				: strcmp(mech, "XOAUTH2") == 0 ? "" : "*";

			sent_ir = true;
			if (mailstream_write(c->stream, reply, strlen(reply)) !=
				    (ssize_t)strlen(reply) ||
			    mailstream_write(c->stream, "\r\n", 2) != 2 ||
			    mailstream_flush(c->stream) < 0) {
				rc = imap_fail(c, MAILIMAP_ERROR_STREAM,
					       "AUTHENTICATE", err);
				goto out;
			}
			continue;
		}
		if (l[0] == '*')
			continue;
		/* The tagged response: "<tag> OK|NO|BAD text". */
		{
			const char *sp = strchr(l, ' ');

			if (sp && strncasecmp(sp + 1, "OK", 2) == 0) {
				c->imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
				rc = MX_OK;
			} else {
				char safe[200];
				size_t i;

				for (i = 0; sp && sp[i + 1] && i < sizeof(safe) - 1; i++)
					safe[i] = (sp[i + 1] >= 0x20 && sp[i + 1] < 0x7f)
							  ? sp[i + 1] : '?';
				safe[i] = '\0';
				rc = mx_error_set(err, MX_ERR_AUTH,
						  "AUTHENTICATE %s rejected by "
						  "server: %s", mech, safe);
			}
			goto out;
		}
	}
	rc = mx_error_set(err, MX_ERR_PROTOCOL,
			  "AUTHENTICATE %s: no end to the exchange", mech);
out:
	if (mx_trace_mask & MX_TRACE_IMAP)
		mailimap_set_logger(c->imap, trace_logger, NULL);
	mx_trace(MX_TRACE_IMAP, "S: AUTHENTICATE %s: %s", mech,
		 rc == MX_OK ? "OK" : "failed");
	/* The response held a bearer token or a password: wipe it. */
	mx_secret_free(ir);
	mmap_string_free(line);
	return rc;
}

/*
 * Logs in with the strongest mechanism the server offers for the
 * credentials we have: a token → OAUTHBEARER, else XOAUTH2; a password →
 * AUTHENTICATE PLAIN (one round trip with SASL-IR, no LOGIN quoting rules
 * for the password), else LOGIN unless LOGINDISABLED.
 */
static int imap_login(struct mx_conn *c, const struct mx_account *a,
		      struct mx_error *err)
{
	char *pw = NULL, *ir;
	int rc, r;

	if (a->access_token) {
		if (mailimap_has_authentication(c->imap, "OAUTHBEARER"))
			return sasl_auth(c, "OAUTHBEARER",
					 mx_sasl_oauthbearer(a->user, a->host,
							     a->port,
							     a->access_token),
					 err);
		if (mailimap_has_authentication(c->imap, "XOAUTH2"))
			return sasl_auth(c, "XOAUTH2",
					 mx_sasl_xoauth2(a->user,
							 a->access_token),
					 err);
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "%s offers neither AUTH=OAUTHBEARER nor "
				    "AUTH=XOAUTH2", a->host);
	}
	rc = mx_account_password(a, &pw, err);
	if (rc)
		return rc;
	if (mailimap_has_authentication(c->imap, "PLAIN")) {
		ir = mx_sasl_plain(a->user, pw);
		rc = sasl_auth(c, "PLAIN", ir, err);
	} else if (has_cap(c, "LOGINDISABLED")) {
		rc = mx_error_set(err, MX_ERR_UNSUPPORTED,
				  "%s: server has LOGINDISABLED and no "
				  "AUTH=PLAIN", a->host);
	} else {
		r = mailimap_login(c->imap, a->user, pw);
		if (r != MAILIMAP_NO_ERROR)
			rc = imap_fail(c, r, "LOGIN", err);
	}
	mx_secret_free(pw);
	return rc;
}

static int guard_filter(void *ctx, const void *buf, size_t len,
			struct mx_error *err)
{
	return mx_imap_guard_feed(ctx, buf, len, err);
}

static int imap_connect(const struct mx_account *a, struct mx_conn **conn_r,
			struct mx_error *err)
{
	struct mx_net_opts opts = {a->ca_file, a->timeout_s};
	struct mx_conn *c;
	int rc, r;

	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->host = strdup(a->host)) == NULL) {
		free(c);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	if (a->tls == MX_TLS_NONE && !a->insecure_plaintext) {
		rc = mx_error_set(err, MX_ERR_INSECURE,
				  "%s: plaintext IMAP refused; use imaps:// or "
				  "imap:// (STARTTLS), or allow it explicitly "
				  "with --insecure-plaintext", a->host);
		goto fail;
	}
	rc = mx_net_connect(a->host, a->port, a->tls == MX_TLS_IMPLICIT, &opts,
			    &c->stream, err);
	if (rc)
		goto fail;
	/* From the greeting on: libetpan must never see what the guard
	 * refuses (a hostile greeting can crash it as well as a FETCH). */
	mx_imap_guard_init(&c->guard);
	mx_net_set_read_filter(c->stream, guard_filter, &c->guard);
	c->imap = mailimap_new(0, NULL);
	if (c->imap == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto fail;
	}
	mailimap_set_timeout(c->imap, a->timeout_s > 0 ? a->timeout_s : 60);
	if (mx_trace_mask & MX_TRACE_IMAP)
		mailimap_set_logger(c->imap, trace_logger, NULL);
	r = mailimap_connect(c->imap, c->stream);
	if (r != MAILIMAP_NO_ERROR && r != MAILIMAP_NO_ERROR_AUTHENTICATED &&
	    r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		rc = imap_fail(c, r, "greeting", err);
		goto fail;
	}
	if (a->tls == MX_TLS_STARTTLS) {
		rc = refresh_caps(c, err);
		if (rc)
			goto fail;
		if (!has_cap(c, "STARTTLS")) {
			rc = mx_error_set(err, MX_ERR_INSECURE,
					  "%s: server does not offer STARTTLS; "
					  "refusing to log in without TLS",
					  a->host);
			goto fail;
		}
		r = mailimap_starttls(c->imap);
		if (r != MAILIMAP_NO_ERROR && c->imap->imap_stream &&
		    c->imap->imap_stream->read_buffer_len > 0) {
			/* libetpan (CVE-2020-15953 fix) fails STARTTLS when
			 * bytes follow the reply before the handshake: they
			 * would be read as if they came over TLS. */
			rc = mx_error_set(err, MX_ERR_INSECURE,
					  "%s: server sent data after its "
					  "STARTTLS reply, before the TLS "
					  "handshake (possible STARTTLS "
					  "injection); refusing to log in",
					  a->host);
			goto fail;
		}
		if (r != MAILIMAP_NO_ERROR) {
			rc = imap_fail(c, r, "STARTTLS", err);
			if (rc == MX_ERR_SERVER)
				rc = mx_error_set(err, MX_ERR_INSECURE,
						  "%s: STARTTLS refused by "
						  "server (%s); refusing to log "
						  "in without TLS", a->host,
						  resp_text(c));
			goto fail;
		}
		rc = mx_net_starttls(c->stream, a->host, &opts, err);
		if (rc)
			goto fail;
	} else if (a->tls == MX_TLS_NONE) {
		mx_warn("%s: logging in over an unencrypted connection "
			"(--insecure-plaintext)", a->host);
	}
	/* Capabilities seen before TLS must not be trusted: ask again. */
	rc = refresh_caps(c, err);
	if (rc)
		goto fail;
	rc = imap_login(c, a, err);
	if (rc)
		goto fail;
	rc = refresh_caps(c, err);
	if (rc == MX_OK)
		rc = enable_qresync(c, err);
	if (rc)
		goto fail;
	*conn_r = c;
	return MX_OK;
fail:
	imap_disconnect(&c);
	return rc;
}

static unsigned imap_server_caps(struct mx_conn *c)
{
	return c->caps;
}

static unsigned special_use(const char *flag)
{
	static const struct {
		const char *name;
		unsigned bit;
	} t[] = {
		{"All", MX_SU_ALL},         {"Archive", MX_SU_ARCHIVE},
		{"Drafts", MX_SU_DRAFTS},   {"Flagged", MX_SU_FLAGGED},
		{"Junk", MX_SU_JUNK},       {"Spam", MX_SU_JUNK},
		{"Sent", MX_SU_SENT},       {"Trash", MX_SU_TRASH},
	};

	for (size_t i = 0; i < MX_ARRAY_SIZE(t); i++)
		if (strcasecmp(flag, t[i].name) == 0)
			return t[i].bit;
	return 0;
}

static int imap_list(struct mx_conn *c, struct mx_remote_folder **v_r,
		     size_t *n_r, struct mx_error *err)
{
	struct mx_remote_folder *v = NULL;
	clist *res = NULL;
	clistiter *it;
	size_t n = 0;
	int r;

	r = mailimap_list(c->imap, "", "*", &res);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, "LIST", err);
	v = calloc(clist_count(res) + 1, sizeof(*v));
	if (v == NULL) {
		mailimap_list_result_free(res);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	for (it = clist_begin(res); it; it = clist_next(it)) {
		struct mailimap_mailbox_list *mb = clist_content(it);
		struct mx_remote_folder *f = &v[n];

		if (mb->mb_name == NULL)
			continue;
		f->wire = strdup(mb->mb_name);
		f->delim = mb->mb_delimiter;
		if (strcasecmp(mb->mb_name, "INBOX") == 0) {
			f->name = strdup("INBOX");
			f->special |= MX_SU_INBOX;
		} else {
			f->name = mx_mutf7_decode(mb->mb_name);
			if (f->name == NULL) /* malformed: keep wire name */
				f->name = strdup(mb->mb_name);
			/* Servers are supposed to send 7-bit names; raw 8-bit
			 * ones are shown with '?' for non-UTF-8 bytes. */
			if (f->name && !mx_utf8_valid_str(f->name))
				for (char *q = f->name; *q; q++)
					if ((unsigned char)*q >= 0x80)
						*q = '?';
		}
		if (f->wire == NULL || f->name == NULL) {
			mx_remote_folders_free(v, n + 1);
			mailimap_list_result_free(res);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
		if (mb->mb_flag) {
			struct mailimap_mbx_list_flags *fl = mb->mb_flag;
			clistiter *oi;

			if (fl->mbf_type == MAILIMAP_MBX_LIST_FLAGS_SFLAG &&
			    fl->mbf_sflag == MAILIMAP_MBX_LIST_SFLAG_NOSELECT)
				f->noselect = true;
			for (oi = fl->mbf_oflags ? clist_begin(fl->mbf_oflags)
						 : NULL;
			     oi; oi = clist_next(oi)) {
				struct mailimap_mbx_list_oflag *of =
					clist_content(oi);

				if (of->of_type !=
					    MAILIMAP_MBX_LIST_OFLAG_FLAG_EXT ||
				    of->of_flag_ext == NULL)
					continue;
				if (strcasecmp(of->of_flag_ext,
					       "NonExistent") == 0)
					f->noselect = true;
				f->special |= special_use(of->of_flag_ext);
			}
		}
		n++;
	}
	mailimap_list_result_free(res);
	*v_r = v;
	*n_r = n;
	return MX_OK;
}

static uint32_t flags_from_list(clist *l, struct mx_buf *kw)
{
	uint32_t fl = 0;

	for (clistiter *it = l ? clist_begin(l) : NULL; it;
	     it = clist_next(it)) {
		struct mailimap_flag_fetch *ff = clist_content(it);
		struct mailimap_flag *f;

		if (ff->fl_type != MAILIMAP_FLAG_FETCH_OTHER || !ff->fl_flag)
			continue;
		f = ff->fl_flag;
		switch (f->fl_type) {
		case MAILIMAP_FLAG_ANSWERED:
			fl |= MX_FL_ANSWERED;
			break;
		case MAILIMAP_FLAG_FLAGGED:
			fl |= MX_FL_FLAGGED;
			break;
		case MAILIMAP_FLAG_DELETED:
			fl |= MX_FL_DELETED;
			break;
		case MAILIMAP_FLAG_SEEN:
			fl |= MX_FL_SEEN;
			break;
		case MAILIMAP_FLAG_DRAFT:
			fl |= MX_FL_DRAFT;
			break;
		case MAILIMAP_FLAG_KEYWORD:
			if (kw && f->fl_data.fl_keyword) {
				if (kw->len)
					mx_buf_puts(kw, " ");
				mx_buf_puts(kw, f->fl_data.fl_keyword);
			}
			break;
		default:
			break;
		}
	}
	return fl;
}

static int64_t date_time_to_unix(const struct mailimap_date_time *d)
{
	struct tm tm = {0};
	int64_t t;
	int zone, zh, zm;

	tm.tm_year = d->dt_year - 1900;
	tm.tm_mon = d->dt_month - 1;
	tm.tm_mday = d->dt_day;
	tm.tm_hour = d->dt_hour;
	tm.tm_min = d->dt_min;
	tm.tm_sec = d->dt_sec;
	t = (int64_t)timegm(&tm);
	/* dt_zone is +HHMM as an integer, e.g. -130 for -01:30. */
	zone = d->dt_zone;
	zh = abs(zone) / 100;
	zm = abs(zone) % 100;
	t -= (zone < 0 ? -1 : 1) * (int64_t)(zh * 3600 + zm * 60);
	return t;
}

/* libetpan body handler: collect the literal in our buffer. */
static bool body_handler(int type, struct mailimap_msg_att_body_section *sec,
			 const char *bytes, size_t len, void *ctx)
{
	struct mx_conn *c = ctx;

	(void)type;
	(void)sec;
	if (c->cb_rc != MX_OK)
		return true; /* drain, keep the connection usable */
	/* A hostile or broken server must not make us buffer without end. */
	if (c->body.len + len > MX_IMAP_MAX_MESSAGE) {
		c->cb_rc = mx_error_set(c->cb_err, MX_ERR_PROTOCOL,
					"server sent a message larger than %d MiB",
					MX_IMAP_MAX_MESSAGE >> 20);
		return false;
	}
	if (mx_buf_append(&c->body, bytes, len) < 0) {
		c->cb_rc = mx_error_set(c->cb_err, MX_ERR_NOMEM,
					"message body of %zu bytes", len);
		return false;
	}
	c->have_body = true;
	return true;
}

static void att_handler(struct mailimap_msg_att *att, void *ctx)
{
	struct mx_conn *c = ctx;
	struct mx_fetched m = {0};
	struct mx_buf kw = {0};
	clistiter *it;

	for (it = clist_begin(att->att_list); it; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
			m.flags = flags_from_list(
				item->att_data.att_dyn->att_list, &kw);
		} else if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC) {
			struct mailimap_msg_att_static *s =
				item->att_data.att_static;

			switch (s->att_type) {
			case MAILIMAP_MSG_ATT_UID:
				m.uid = s->att_data.att_uid;
				break;
			case MAILIMAP_MSG_ATT_INTERNALDATE:
				m.internaldate = date_time_to_unix(
					s->att_data.att_internal_date);
				break;
			case MAILIMAP_MSG_ATT_RFC822_SIZE:
				m.size = s->att_data.att_rfc822_size;
				break;
			case MAILIMAP_MSG_ATT_BODY_SECTION:
				/* BODY[] NIL: no body at all (sec_body_part
				 * is NULL; a streamed or empty literal leaves
				 * ""), never an empty message. */
				if (!c->have_body &&
				    (s->att_data.att_body_section == NULL ||
				     s->att_data.att_body_section->sec_body_part ==
					     NULL))
					break;
				/* Without a body handler (never, here) the
				 * literal would be in sec_body_part. */
				if (!c->have_body)
					mx_buf_append(&c->body,
						s->att_data.att_body_section->sec_body_part,
						s->att_data.att_body_section->sec_length);
				c->have_body = true;
				break;
			default:
				break;
			}
		} else if (item->att_type == MAILIMAP_MSG_ATT_ITEM_EXTENSION) {
			struct mailimap_extension_data *ext =
				item->att_data.att_extension_data;

			if (ext && ext->ext_extension ==
					   &mailimap_extension_condstore &&
			    ext->ext_type ==
				    MAILIMAP_CONDSTORE_TYPE_FETCH_DATA) {
				struct mailimap_condstore_fetch_mod_resp *mr =
					ext->ext_data;

				m.modseq = mr->cs_modseq_value;
			}
		}
	}
	if (m.uid != 0 && c->cb_rc == MX_OK && c->cb) {
		m.keywords = kw.len ? kw.data : NULL;
		if (c->have_body) {
			m.body = c->body.data ? c->body.data : "";
			m.body_len = c->body.len;
		}
		c->cb_rc = c->cb(&m, c->cb_ctx, c->cb_err);
	}
	mx_buf_free(&kw);
	mx_buf_reset(&c->body);
	c->have_body = false;
}

/*
 * libetpan 1.9.4 only passes the msg_att handler to its parser when a
 * progress callback is installed (mailimap.c, mailimap_parse_response), so
 * streaming FETCH needs this no-op.
 */
static void progress_noop(size_t current, size_t maximum, void *ctx)
{
	(void)current;
	(void)maximum;
	(void)ctx;
}

static struct mailimap_set *make_set(const struct mx_uid_range *u, size_t n)
{
	struct mailimap_set *set = mailimap_set_new_empty();

	for (size_t i = 0; set && i < n; i++) {
		if (mailimap_set_add_interval(set, u[i].lo, u[i].hi) !=
		    MAILIMAP_NO_ERROR) {
			mailimap_set_free(set);
			return NULL;
		}
	}
	return set;
}

static struct mailimap_fetch_type *make_fetch_type(struct mx_conn *c,
						   enum mx_fetch_what what)
{
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
	bool ok = ft != NULL;

#define ADD(att) (ok = ok && mailimap_fetch_type_new_fetch_att_list_add(ft, (att)) == MAILIMAP_NO_ERROR)
	ADD(mailimap_fetch_att_new_uid());
	if (what != MX_FETCH_SIZES)
		ADD(mailimap_fetch_att_new_flags());
	if (what == MX_FETCH_FULL || what == MX_FETCH_SIZES ||
	    what == MX_FETCH_IDENTITY)
		ADD(mailimap_fetch_att_new_rfc822_size());
	if (what == MX_FETCH_FULL)
		ADD(mailimap_fetch_att_new_internaldate());
	if (what != MX_FETCH_SIZES && (c->caps & MX_CAP_CONDSTORE))
		ADD(mailimap_fetch_att_new_modseq());
	if (what == MX_FETCH_FULL)
		ADD(mailimap_fetch_att_new_body_peek_section(
			mailimap_section_new(NULL)));
	if (what == MX_FETCH_IDENTITY) {
		static const char *const names[] = {MX_IDENTITY_FIELDS};
		clist *hl = clist_new();

		for (size_t i = 0; hl && i < MX_ARRAY_SIZE(names); i++)
			clist_append(hl, strdup(names[i]));
		ADD(mailimap_fetch_att_new_body_peek_section(
			mailimap_section_new_header_fields(
				mailimap_header_list_new(hl))));
	}
#undef ADD
	if (!ok && ft) {
		mailimap_fetch_type_free(ft);
		ft = NULL;
	}
	return ft;
}

static int imap_fetch(struct mx_conn *c, const struct mx_uid_range *uids,
		      size_t nuids, enum mx_fetch_what what,
		      uint64_t changedsince, mx_fetch_cb *cb, void *ctx,
		      struct mx_error *err)
{
	struct mailimap_set *set;
	struct mailimap_fetch_type *ft;
	clist *res = NULL;
	int r, rc;

	if (nuids == 0)
		return MX_OK;
	set = make_set(uids, nuids);
	ft = make_fetch_type(c, what);
	if (set == NULL || ft == NULL) {
		if (set)
			mailimap_set_free(set);
		if (ft)
			mailimap_fetch_type_free(ft);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	c->cb = cb;
	c->cb_ctx = ctx;
	c->cb_rc = MX_OK;
	c->cb_err = err;
	mx_buf_reset(&c->body);
	c->have_body = false;
	mailimap_set_progress_callback(c->imap, progress_noop, NULL, NULL);
	mailimap_set_msg_att_handler(c->imap, att_handler, c);
	mailimap_set_msg_body_handler(c->imap, body_handler, c);
	/* Bodies go to body_handler chunk by chunk, not into memory. */
	mx_imap_guard_stream_literals(&c->guard, true);
	if (changedsince && (c->caps & MX_CAP_CONDSTORE))
		r = mailimap_uid_fetch_changedsince(c->imap, set, ft,
						    changedsince, &res);
	else
		r = mailimap_uid_fetch(c->imap, set, ft, &res);
	mx_imap_guard_stream_literals(&c->guard, false);
	mailimap_set_msg_att_handler(c->imap, NULL, NULL);
	mailimap_set_msg_body_handler(c->imap, NULL, NULL);
	mailimap_set_progress_callback(c->imap, NULL, NULL, NULL);
	c->cb = NULL;
	/* On a NO or BAD, libetpan has freed the list already but leaves
	 * RES pointing at it: free it only after a success. */
	if (r == MAILIMAP_NO_ERROR && res)
		mailimap_fetch_list_free(res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	/* libetpan reports "no FETCH response" (e.g. all UIDs expunged) as
	 * success with an empty list; a NO is a real error. */
	if (r != MAILIMAP_NO_ERROR) {
		if (c->cb_rc != MX_OK)
			return c->cb_rc;
		return imap_fail(c, r, "UID FETCH", err);
	}
	rc = c->cb_rc;
	return rc;
}

static int set_to_ranges(struct mailimap_set *set, struct mx_uid_range **v_r,
			 size_t *n_r)
{
	struct mx_uid_range *v;
	size_t n = 0;

	if (set == NULL || set->set_list == NULL) {
		*v_r = NULL;
		*n_r = 0;
		return 0;
	}
	v = calloc(clist_count(set->set_list) + 1, sizeof(*v));
	if (v == NULL)
		return -1;
	for (clistiter *it = clist_begin(set->set_list); it;
	     it = clist_next(it)) {
		struct mailimap_set_item *si = clist_content(it);
		uint32_t lo = si->set_first, hi = si->set_last;

		/* "*" is 0 in libetpan: means the largest UID. */
		if (hi == 0)
			hi = UINT32_MAX;
		if (lo == 0)
			lo = UINT32_MAX;
		if (lo > hi) {
			uint32_t t = lo;

			lo = hi;
			hi = t;
		}
		v[n].lo = lo;
		v[n].hi = hi;
		n++;
	}
	*v_r = v;
	*n_r = n;
	return 0;
}

static int collect_changes(struct mx_conn *c, clist *fetch_result,
			   struct mx_select_result *out)
{
	size_t cap = fetch_result ? clist_count(fetch_result) : 0;

	if (cap == 0)
		return 0;
	out->changes = calloc(cap, sizeof(*out->changes));
	if (out->changes == NULL)
		return -1;
	for (clistiter *it = clist_begin(fetch_result); it;
	     it = clist_next(it)) {
		struct mailimap_msg_att *att = clist_content(it);
		struct mx_flag_change *ch = &out->changes[out->nchanges];
		struct mx_buf kw = {0};
		bool have_flags = false;

		memset(ch, 0, sizeof(*ch));
		for (clistiter *ai = clist_begin(att->att_list); ai;
		     ai = clist_next(ai)) {
			struct mailimap_msg_att_item *item = clist_content(ai);

			if (item->att_type == MAILIMAP_MSG_ATT_ITEM_DYNAMIC) {
				ch->flags = flags_from_list(
					item->att_data.att_dyn->att_list, &kw);
				have_flags = true;
			} else if (item->att_type ==
					   MAILIMAP_MSG_ATT_ITEM_STATIC &&
				   item->att_data.att_static->att_type ==
					   MAILIMAP_MSG_ATT_UID) {
				ch->uid = item->att_data.att_static->att_data
						  .att_uid;
			} else if (item->att_type ==
				   MAILIMAP_MSG_ATT_ITEM_EXTENSION) {
				struct mailimap_extension_data *ext =
					item->att_data.att_extension_data;

				if (ext && ext->ext_extension ==
						   &mailimap_extension_condstore &&
				    ext->ext_type ==
					    MAILIMAP_CONDSTORE_TYPE_FETCH_DATA)
					ch->modseq = ((struct mailimap_condstore_fetch_mod_resp *)
							      ext->ext_data)
							     ->cs_modseq_value;
			}
		}
		if (ch->uid == 0 || !have_flags) {
			mx_buf_free(&kw);
			continue;
		}
		ch->keywords = kw.len ? mx_buf_steal(&kw) : NULL;
		mx_buf_free(&kw);
		out->nchanges++;
	}
	(void)c;
	return 0;
}

/* Appends WIRE as an IMAP quoted string; false if it cannot be quoted. */
static bool quote_mailbox(struct mx_buf *b, const char *wire)
{
	mx_buf_puts(b, "\"");
	for (const char *p = wire; *p; p++) {
		unsigned char ch = (unsigned char)*p;

		if (ch < 0x20 || ch >= 0x7f)
			return false;
		if (ch == '"' || ch == '\\')
			mx_buf_puts(b, "\\");
		mx_buf_append(b, p, 1);
	}
	return mx_buf_puts(b, "\"") == 0;
}

/*
 * SELECT mailbox (QRESYNC (uidvalidity modseq)), RFC 7162 section 3.2.5.
 * libetpan 1.9.4's mailimap_select_qresync() omits the parentheses around
 * the select parameters, which Dovecot silently ignores (no VANISHED, no
 * FETCH), so the command is sent here and libetpan only parses the reply.
 */
static int select_qresync(struct mx_conn *c, const char *wire,
			  uint32_t uidvalidity, uint64_t modseq,
			  struct mx_select_result *out, uint64_t *modseq_r)
{
	mailimap *imap = c->imap;
	struct mailimap_response *resp = NULL;
	struct mx_buf cmd = {0};
	clist *fr;
	int r, state;

	if (!quote_mailbox(&cmd, wire)) {
		mx_buf_free(&cmd);
		return mailimap_select_condstore(imap, wire, modseq_r);
	}
	mx_buf_printf(&cmd, " (QRESYNC (%u %" PRIu64 "))", uidvalidity, modseq);
	r = mailimap_send_current_tag(imap);
	if (r == MAILIMAP_NO_ERROR &&
	    (mailstream_write(imap->imap_stream, "SELECT ", 7) != 7 ||
	     mailstream_write(imap->imap_stream, cmd.data, cmd.len) !=
		     (ssize_t)cmd.len ||
	     mailstream_write(imap->imap_stream, "\r\n", 2) != 2 ||
	     mailstream_flush(imap->imap_stream) == -1))
		r = MAILIMAP_ERROR_STREAM;
	mx_buf_free(&cmd);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	if (mailimap_read_line(imap) == NULL)
		return MAILIMAP_ERROR_STREAM;
	if (imap->imap_selection_info)
		mailimap_selection_info_free(imap->imap_selection_info);
	imap->imap_selection_info = mailimap_selection_info_new();
	r = mailimap_parse_response(imap, &resp);
	if (r != MAILIMAP_NO_ERROR)
		return r;
	state = resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type;
	mailimap_response_free(resp);
	fr = imap->imap_response_info->rsp_fetch_list;
	imap->imap_response_info->rsp_fetch_list = NULL;
	*modseq_r = 0;
	for (clistiter *it = imap->imap_response_info->rsp_extension_list
				     ? clist_begin(imap->imap_response_info->rsp_extension_list)
				     : NULL;
	     it; it = clist_next(it)) {
		struct mailimap_extension_data *ext = clist_content(it);

		if (ext->ext_extension->ext_id == MAILIMAP_EXTENSION_QRESYNC &&
		    ext->ext_type == MAILIMAP_QRESYNC_TYPE_VANISHED) {
			struct mailimap_qresync_vanished *v = ext->ext_data;
			struct mx_uid_range *add = NULL, *nv;
			size_t nadd = 0;

			if (set_to_ranges(v->qr_known_uids, &add, &nadd) < 0)
				goto nomem;
			nv = realloc(out->vanished, (out->nvanished + nadd + 1) *
							    sizeof(*nv));
			if (nv == NULL) {
				free(add);
				goto nomem;
			}
			memcpy(nv + out->nvanished, add, nadd * sizeof(*nv));
			out->vanished = nv;
			out->nvanished += nadd;
			free(add);
		} else if (ext->ext_extension->ext_id ==
				   MAILIMAP_EXTENSION_CONDSTORE &&
			   ext->ext_type ==
				   MAILIMAP_CONDSTORE_TYPE_RESP_TEXT_CODE) {
			struct mailimap_condstore_resptextcode *rc =
				ext->ext_data;

			if (rc->cs_type ==
			    MAILIMAP_CONDSTORE_RESPTEXTCODE_HIGHESTMODSEQ)
				*modseq_r = rc->cs_data.cs_modseq_value;
		}
	}
	if (collect_changes(c, fr, out) < 0)
		goto nomem;
	if (fr)
		mailimap_fetch_list_free(fr);
	if (state != MAILIMAP_RESP_COND_STATE_OK) {
		mailimap_selection_info_free(imap->imap_selection_info);
		imap->imap_selection_info = NULL;
		imap->imap_state = MAILIMAP_STATE_AUTHENTICATED;
		return MAILIMAP_ERROR_SELECT;
	}
	imap->imap_state = MAILIMAP_STATE_SELECTED;
	out->qresync = true;
	return MAILIMAP_NO_ERROR;
nomem:
	if (fr)
		mailimap_fetch_list_free(fr);
	return MAILIMAP_ERROR_MEMORY;
}

static int imap_select(struct mx_conn *c, const char *wire,
		       uint32_t known_uidvalidity, uint64_t known_modseq,
		       struct mx_select_result *out, struct mx_error *err)
{
	struct mailimap_selection_info *si;
	uint64_t modseq = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if (c->qresync_enabled && known_uidvalidity && known_modseq) {
		r = select_qresync(c, wire, known_uidvalidity, known_modseq,
				   out, &modseq);
		if (r == MAILIMAP_ERROR_MEMORY) {
			mx_select_result_free(out);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
	} else if (c->caps & MX_CAP_CONDSTORE) {
		r = mailimap_select_condstore(c->imap, wire, &modseq);
	} else {
		r = mailimap_select(c->imap, wire);
	}
	if (r != MAILIMAP_NO_ERROR) {
		mx_select_result_free(out);
		return imap_fail(c, r, "SELECT", err);
	}
	si = c->imap->imap_selection_info;
	if (si == NULL) {
		mx_select_result_free(out);
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "SELECT %s: no selection info", wire);
	}
	out->uidvalidity = si->sel_uidvalidity;
	out->uidnext = si->sel_uidnext;
	out->exists = si->sel_exists;
	out->highestmodseq = modseq;
	if (out->uidvalidity == 0) {
		mx_select_result_free(out);
		/* Only this folder is unusable: skip it, sync the rest. */
		return mx_error_set(err, MX_ERR_SERVER,
				    "SELECT %s: server sent no UIDVALIDITY",
				    wire);
	}
	return MX_OK;
}

static int imap_uids(struct mx_conn *c, uint32_t **uids_r, size_t *n_r,
		     struct mx_error *err)
{
	struct mailimap_search_key *key = mailimap_search_key_new_all();
	clist *res = NULL;
	uint32_t *v;
	size_t n = 0;
	int r;

	if (key == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	r = mailimap_uid_search(c->imap, NULL, key, &res);
	mailimap_search_key_free(key);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, "UID SEARCH", err);
	v = malloc((clist_count(res) + 1) * sizeof(*v));
	if (v == NULL) {
		mailimap_search_result_free(res);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	for (clistiter *it = clist_begin(res); it; it = clist_next(it))
		v[n++] = *(uint32_t *)clist_content(it);
	mailimap_search_result_free(res);
	*uids_r = v;
	*n_r = n;
	return MX_OK;
}

static struct mailimap_flag_list *flag_list(uint32_t fl)
{
	struct mailimap_flag_list *l = mailimap_flag_list_new_empty();

	if (l == NULL)
		return NULL;
	if (fl & MX_FL_SEEN)
		mailimap_flag_list_add(l, mailimap_flag_new_seen());
	if (fl & MX_FL_FLAGGED)
		mailimap_flag_list_add(l, mailimap_flag_new_flagged());
	if (fl & MX_FL_ANSWERED)
		mailimap_flag_list_add(l, mailimap_flag_new_answered());
	if (fl & MX_FL_DELETED)
		mailimap_flag_list_add(l, mailimap_flag_new_deleted());
	if (fl & MX_FL_DRAFT)
		mailimap_flag_list_add(l, mailimap_flag_new_draft());
	return l;
}

static int imap_store_flags(struct mx_conn *c, uint32_t uid, uint32_t add,
			    uint32_t remove, struct mx_error *err)
{
	for (int pass = 0; pass < 2; pass++) {
		uint32_t fl = pass == 0 ? add : remove;
		struct mailimap_store_att_flags *sa;
		struct mailimap_flag_list *l;
		struct mailimap_set *set;
		int r;

		if (fl == 0)
			continue;
		l = flag_list(fl);
		if (l == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		sa = pass == 0 ? mailimap_store_att_flags_new_add_flags_silent(l)
			       : mailimap_store_att_flags_new_remove_flags_silent(l);
		set = mailimap_set_new_single(uid);
		if (sa == NULL || set == NULL) {
			if (sa)
				mailimap_store_att_flags_free(sa);
			else
				mailimap_flag_list_free(l);
			if (set)
				mailimap_set_free(set);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
		r = mailimap_uid_store(c->imap, set, sa);
		mailimap_store_att_flags_free(sa);
		mailimap_set_free(set);
		if (r != MAILIMAP_NO_ERROR)
			return imap_fail(c, r, "UID STORE", err);
	}
	return MX_OK;
}

static int imap_append(struct mx_conn *c, const char *wire, uint32_t flags,
		       const char *data, size_t len, uint32_t *uid_r,
		       struct mx_error *err)
{
	struct mailimap_flag_list *l = flag_list(flags);
	uint32_t uidvalidity = 0, uid = 0;
	int r;

	if (l == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (mailimap_has_extension(c->imap, "UIDPLUS"))
		r = mailimap_uidplus_append(c->imap, wire, l, NULL, data, len,
					    &uidvalidity, &uid);
	else
		r = mailimap_append(c->imap, wire, l, NULL, data, len);
	mailimap_flag_list_free(l);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, "APPEND", err);
	if (uid_r)
		*uid_r = uid;
	return MX_OK;
}

/* The single UID of SET (COPYUID's destination), or 0. */
static uint32_t set_single(struct mailimap_set *set)
{
	struct mailimap_set_item *it;

	if (set == NULL || clist_count(set->set_list) != 1)
		return 0;
	it = clist_content(clist_begin(set->set_list));
	return it->set_first == it->set_last ? it->set_first : 0;
}

/* UID STORE +FLAGS.SILENT (\Deleted) then UID EXPUNGE of UID alone. */
static int expunge_one(struct mx_conn *c, uint32_t uid, struct mx_error *err)
{
	struct mailimap_set *set;
	int rc, r;

	rc = imap_store_flags(c, uid, MX_FL_DELETED, 0, err);
	if (rc)
		return rc;
	set = mailimap_set_new_single(uid);
	if (set == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	r = mailimap_uid_expunge(c->imap, set);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, "UID EXPUNGE", err);
	return MX_OK;
}

static int imap_move_uid(struct mx_conn *c, uint32_t uid, const char *wire,
			 uint32_t *uidvalidity_r, uint32_t *uid_r,
			 struct mx_error *err)
{
	struct mailimap_set *set, *src = NULL, *dst = NULL;
	uint32_t uidvalidity = 0;
	bool move = (c->caps & MX_CAP_MOVE) != 0;
	int r;

	*uidvalidity_r = *uid_r = 0;
	/* Without MOVE the copy is removed by UID EXPUNGE (UIDPLUS); a
	 * bare EXPUNGE would also remove every other \Deleted message. */
	if (!move && !(c->caps & MX_CAP_UIDPLUS))
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "%s offers neither MOVE nor UIDPLUS: a "
				    "message cannot be moved without "
				    "expunging others", c->host);
	set = mailimap_set_new_single(uid);
	if (set == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (move && (c->caps & MX_CAP_UIDPLUS))
		r = mailimap_uidplus_uid_move(c->imap, set, wire, &uidvalidity,
					      &src, &dst);
	else if (move)
		r = mailimap_uid_move(c->imap, set, wire);
	else
		r = mailimap_uidplus_uid_copy(c->imap, set, wire, &uidvalidity,
					      &src, &dst);
	mailimap_set_free(set);
	if (r == MAILIMAP_NO_ERROR && set_single(dst)) {
		*uidvalidity_r = uidvalidity;
		*uid_r = set_single(dst);
	}
	if (src)
		mailimap_set_free(src);
	if (dst)
		mailimap_set_free(dst);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, move ? "UID MOVE" : "UID COPY", err);
	return move ? MX_OK : expunge_one(c, uid, err);
}

static int imap_expunge_uid(struct mx_conn *c, uint32_t uid,
			    struct mx_error *err)
{
	if (!(c->caps & MX_CAP_UIDPLUS))
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "%s has no UIDPLUS: a message cannot be "
				    "removed without expunging others",
				    c->host);
	return expunge_one(c, uid, err);
}

static int imap_search_header(struct mx_conn *c, const char *field,
			      const char *value, uint32_t **uids_r,
			      size_t *n_r, struct mx_error *err)
{
	struct mailimap_search_key *key;
	char *f = strdup(field), *v = strdup(value);
	clist *res = NULL;
	uint32_t *out;
	size_t n = 0;
	int r;

	/* The value goes out as an IMAP string: libetpan quotes it, or
	 * sends a literal for bytes a quoted string cannot carry. */
	key = f && v ? mailimap_search_key_new_header(f, v) : NULL;
	if (key == NULL) {
		free(f);
		free(v);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	r = mailimap_uid_search(c->imap, NULL, key, &res);
	mailimap_search_key_free(key);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, "UID SEARCH HEADER", err);
	out = malloc((clist_count(res) + 1) * sizeof(*out));
	if (out == NULL) {
		mailimap_search_result_free(res);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	for (clistiter *it = clist_begin(res); it; it = clist_next(it))
		out[n++] = *(uint32_t *)clist_content(it);
	mailimap_search_result_free(res);
	*uids_r = out;
	*n_r = n;
	return MX_OK;
}

static int imap_idle_start(struct mx_conn *c, const char *wire,
			   struct mx_error *err)
{
	int r;

	if (!(c->caps & MX_CAP_IDLE))
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "%s: server has no IDLE", c->host);
	r = mailimap_select(c->imap, wire);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, "SELECT", err);
	r = mailimap_idle(c->imap);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, "IDLE", err);
	return MX_OK;
}

static int imap_idle_fd(struct mx_conn *c)
{
	return mailimap_idle_get_fd(c->imap);
}

static int imap_idle_check(struct mx_conn *c, bool *changed_r,
			   struct mx_error *err)
{
	char buf[4096];
	ssize_t n;
	size_t start = 0;

	*changed_r = false;
	/* The server speaks after a wait of ours, not in answer to the IDLE
	 * command sent minutes ago: a new deadline step (net.h). */
	mx_net_step(c->stream);
	/* One read: the socket is readable (or bytes are buffered), so this
	 * returns what is there without waiting for more. */
	n = mailstream_read(c->stream, buf, sizeof(buf));
	if (n <= 0) {
		mx_net_stream_error(c->stream, err);
		mx_error_prefix(err, "IDLE");
		return err ? (int)err->code : MX_ERR_NET;
	}
	if (mx_buf_append(&c->idle_line, buf, (size_t)n) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	for (;;) {
		char *nl = memchr(c->idle_line.data + start, '\n',
				  c->idle_line.len - start);
		const char *l = c->idle_line.data + start;

		if (nl == NULL)
			break;
		if (strncasecmp(l, "* BYE", 5) == 0) {
			mx_buf_reset(&c->idle_line);
			return mx_error_set(err, MX_ERR_NET,
					    "server ended IDLE: %.*s",
					    (int)(nl - l > 200 ? 200 : nl - l), l);
		}
		/* Untagged OK is Dovecot's "Still here" and friends; any
		 * other response (EXISTS, EXPUNGE, FETCH, VANISHED) is a
		 * change. */
		if (strncasecmp(l, "* OK", 4) != 0)
			*changed_r = true;
		start = (size_t)(nl - c->idle_line.data) + 1;
	}
	/* A line can still be partial; keep the rest.  A server that never
	 * ends a line does not get to fill our memory. */
	if (start) {
		memmove(c->idle_line.data, c->idle_line.data + start,
			c->idle_line.len - start);
		c->idle_line.len -= start;
	}
	if (c->idle_line.len > 65536) {
		/* Keep one byte: imap_idle_done() must still know that the
		 * server is in the middle of a line. */
		c->idle_line.len = 1;
		*changed_r = true;
	}
	return MX_OK;
}

static bool imap_idle_pending(struct mx_conn *c)
{
	return mx_net_pending(c->stream) > 0;
}

/*
 * mailimap_idle_done() without its one flaw: imap_idle_check() may have
 * consumed the first part of a line (a response split across TCP reads),
 * and libetpan would then parse the rest of that line as a response of
 * its own ("unparsable server response").  So DONE is sent here, the
 * partial line is completed and dropped (the server may well finish it
 * only after DONE), and libetpan parses from a line start.
 */
static int imap_idle_done(struct mx_conn *c, struct mx_error *err)
{
	struct mailimap_response *resp = NULL;
	bool midline = c->idle_line.len > 0;
	int r, state;

	mx_buf_reset(&c->idle_line);
	if (mailstream_write(c->stream, "DONE\r\n", 6) != 6 ||
	    mailstream_flush(c->stream) == -1)
		return imap_fail(c, MAILIMAP_ERROR_STREAM, "IDLE DONE", err);
	if (midline) {
		MMAPString *rest = mmap_string_new("");

		if (rest == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		if (mailstream_read_line(c->stream, rest) == NULL) {
			mmap_string_free(rest);
			return imap_fail(c, MAILIMAP_ERROR_STREAM, "IDLE DONE",
					 err);
		}
		mmap_string_free(rest);
	}
	if (mailimap_read_line(c->imap) == NULL)
		return imap_fail(c, MAILIMAP_ERROR_STREAM, "IDLE DONE", err);
	r = mailimap_parse_response(c->imap, &resp);
	if (r != MAILIMAP_NO_ERROR)
		return imap_fail(c, r, "IDLE DONE", err);
	state = resp->rsp_resp_done->rsp_type == MAILIMAP_RESP_DONE_TYPE_TAGGED
			? resp->rsp_resp_done->rsp_data.rsp_tagged->rsp_cond_state->rsp_type
			: -1;
	mailimap_response_free(resp);
	if (state != MAILIMAP_RESP_COND_STATE_OK)
		return imap_fail(c, MAILIMAP_ERROR_EXTENSION, "IDLE DONE", err);
	return MX_OK;
}

const struct mx_backend_ops mx_backend_imap = {
	.name = "imap",
	.title = "IMAP",
	.proto = MX_PROTO_IMAP,
	.caps = MX_CAP_IDLE | MX_CAP_CONDSTORE | MX_CAP_QRESYNC | MX_CAP_MOVE |
		MX_CAP_UIDPLUS | MX_CAP_STORES_BODIES | MX_CAP_TWO_WAY_FLAGS |
		MX_CAP_STORE_FLAGS | MX_CAP_APPEND | MX_CAP_SEARCH |
		MX_CAP_MODEL_UID | MX_CAP_REMOVE,
	.description = "every folder and message in the store, flags both "
		       "ways; push by IDLE on INBOX",
	.mode_new_mail = "INBOX within seconds (IDLE); other folders every "
			 "folder_interval",
	.mode_folders = "every folder (Gmail labels as folders)",
	.mode_stored = "whole messages, flags, folders",
	.mode_offline = "everything stored: full messages",
	.mode_limits = "1 connection per account, 2 while idling; servers "
		       "cap connections per user (Gmail 15)",
	.connect = imap_connect,
	.disconnect = imap_disconnect,
	.server_caps = imap_server_caps,
	.list = imap_list,
	.select = imap_select,
	.fetch = imap_fetch,
	.uids = imap_uids,
	.store_flags = imap_store_flags,
	.append = imap_append,
	.search_header = imap_search_header,
	.move_uid = imap_move_uid,
	.expunge_uid = imap_expunge_uid,
	.idle_start = imap_idle_start,
	.idle_fd = imap_idle_fd,
	.idle_check = imap_idle_check,
	.idle_pending = imap_idle_pending,
	.idle_done = imap_idle_done,
};
