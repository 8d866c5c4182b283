/*
 * OAuth2 client: the token endpoint (refresh_token, device_code and
 * authorization_code grants), the device authorization request, the PKCE
 * loopback redirect listener, and the SASL XOAUTH2 / OAUTHBEARER strings.
 *
 * Every request is one blocking libcurl transfer with a fresh easy handle:
 * token requests are rare (once an hour per account), so a shared handle
 * would buy nothing and would need locking.  Request bodies and the
 * Authorization header hold secrets; they are wiped before being freed
 * and never appear in an error detail or a log line.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth/oauth.h"
#include "net/net.h"
#include "secrets/secrets.h"
#include "util/http.h"

#define DEFAULT_TIMEOUT_S 15
#define MAX_RESPONSE (64 * 1024)
/* How often waits look at the caller's cancel flag. */
#define CANCEL_SLICE_MS 100
#define DEVICE_DEFAULT_INTERVAL_S 5
#define DEVICE_MAX_INTERVAL_S 300
/* Transport failures in a row after which device polling gives up. */
#define DEVICE_MAX_TEMP_FAILURES 5
#define PKCE_DEFAULT_TIMEOUT_S 300
/* A browser gets this long to send its request once connected. */
#define REDIRECT_READ_MS 5000
#define REDIRECT_MAX_REQUEST 8192

void mx_oauth_token_free(struct mx_oauth_token *t)
{
	if (t == NULL)
		return;
	mx_secret_free(t->access_token);
	mx_secret_free(t->refresh_token);
	free(t->scope);
	memset(t, 0, sizeof(*t));
}

void mx_oauth_device_free(struct mx_oauth_device *d)
{
	if (d == NULL)
		return;
	mx_secret_free(d->device_code);
	free(d->user_code);
	free(d->verification_uri);
	free(d->verification_uri_complete);
	memset(d, 0, sizeof(*d));
}

/* ---- small helpers ---- */

static int timeout_of(const struct mx_oauth_cfg *cfg)
{
	return cfg->timeout_s > 0 ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
}

static bool cancelled(volatile int *cancel)
{
	return cancel != NULL && *cancel != 0;
}

/* Sleeps MS milliseconds in slices; true if *CANCEL was set meanwhile. */
static bool sleep_cancellable(uint64_t ms, volatile int *cancel)
{
	uint64_t end = mx_now_ms() + ms;

	for (;;) {
		uint64_t now = mx_now_ms();
		uint64_t slice;
		struct timespec ts;

		if (cancelled(cancel))
			return true;
		if (now >= end)
			return false;
		slice = end - now < CANCEL_SLICE_MS ? end - now
						    : CANCEL_SLICE_MS;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)slice * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/* base64url without padding (RFC 7636 appendix A) into OUT. */
static void b64url_encode(const unsigned char *in, size_t n, char *out,
			  size_t cap)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;

	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = n - i;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		if (o + 5 > cap)
			break;
		out[o++] = tab[(v >> 18) & 63];
		out[o++] = tab[(v >> 12) & 63];
		if (left > 1)
			out[o++] = tab[(v >> 6) & 63];
		if (left > 2)
			out[o++] = tab[v & 63];
	}
	out[o] = '\0';
}

static bool random_b64url(size_t nbytes, char *out, size_t cap)
{
	unsigned char raw[96];

	if (nbytes > sizeof(raw) || RAND_bytes(raw, (int)nbytes) != 1)
		return false;
	b64url_encode(raw, nbytes, out, cap);
	OPENSSL_cleanse(raw, sizeof(raw));
	return true;
}

bool mx_random_b64url(size_t nbytes, char *out, size_t cap)
{
	return random_b64url(nbytes, out, cap);
}

/*
 * Copies server-supplied text into OUT for an error detail: at most
 * CAP-1 bytes, control characters replaced, so that a hostile endpoint
 * cannot forge log lines.
 */
static void sanitize(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	for (; in && *in && o + 1 < cap; in++)
		out[o++] = ((unsigned char)*in < 0x20 || *in == 0x7f) ? '?'
								    : *in;
	out[o] = '\0';
}

/* ---- URLs and forms ---- */

/* https:// anywhere, http:// only to this machine: the requests carry
 * client secrets and refresh tokens. */
static int check_url(const char *what, const char *url, struct mx_error *err)
{
	CURLU *u;
	char *scheme = NULL, *host = NULL;
	int rc = MX_OK;

	if (url == NULL || url[0] == '\0')
		return mx_error_set(err, MX_ERR_CONFIG, "%s URL not set",
				    what);
	u = curl_url();
	if (u == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		rc = mx_error_set(err, MX_ERR_CONFIG, "%s: malformed URL",
				  what);
		goto out;
	}
	if (strcasecmp(scheme, "https") == 0)
		goto out;
	if (strcasecmp(scheme, "http") != 0)
		rc = mx_error_set(err, MX_ERR_CONFIG,
				  "%s: URL scheme must be https://, not %s://",
				  what, scheme);
	else if (!mx_net_is_loopback(host))
		rc = mx_error_set(err, MX_ERR_INSECURE,
				  "%s: refusing plain http:// to %s (allowed "
				  "only for loopback addresses)", what, host);
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/*
 * mx_buf_reserve() for a buffer that already holds secrets: realloc()
 * would leave the old copy in freed memory, so the data moves to a new
 * block and the old one is wiped before it is freed.
 */
static int secret_reserve(struct mx_buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (extra > SIZE_MAX / 2 - b->len - 1)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap > 128 ? b->cap : 128;
	while (ncap < need)
		ncap *= 2;
	p = malloc(ncap);
	if (p == NULL)
		return -1;
	if (b->data) {
		memcpy(p, b->data, b->len + 1);
		OPENSSL_cleanse(b->data, b->cap);
		free(b->data);
	} else {
		p[0] = '\0';
	}
	b->data = p;
	b->cap = ncap;
	return 0;
}

int mx_oauth_check_url(const char *what, const char *url,
		       struct mx_error *err)
{
	return check_url(what, url, err);
}

/* Appends "&NAME=escaped(VALUE)" (no '&' first) to a form body. */
static int form_add(struct mx_buf *b, const char *name, const char *value)
{
	char *esc;
	int rc;

	if (value == NULL)
		return 0;
	esc = curl_easy_escape(NULL, value, 0);
	if (esc == NULL)
		return -1;
	/* The body holds secrets: grown here so mx_buf_printf() does not
	 * realloc() it. */
	rc = secret_reserve(b, 1 + strlen(name) + 1 + strlen(esc));
	if (rc == 0)
		rc = mx_buf_printf(b, "%s%s=%s", b->len ? "&" : "", name,
				   esc);
	OPENSSL_cleanse(esc, strlen(esc));
	curl_free(esc);
	return rc;
}

/* ---- HTTP POST ---- */

struct http_resp {
	long status;
	struct mx_http_sink sink; /* the body, at most MAX_RESPONSE bytes */
	volatile int *cancel;
};

/*
 * curl_easy_perform() that looks at *CANCEL every CANCEL_SLICE_MS, also
 * while the server is silent (libcurl's progress callback slows down to
 * about once a second then).  *CANCELLED_R says why it stopped early.
 */
static CURLcode perform(CURL *c, volatile int *cancel, bool *cancelled_r)
{
	CURLM *m;
	CURLMsg *msg;
	CURLcode res = CURLE_OK;
	int running = 1, left;

	*cancelled_r = false;
	if (cancel == NULL)
		return curl_easy_perform(c);
	m = curl_multi_init();
	if (m == NULL)
		return CURLE_OUT_OF_MEMORY;
	if (curl_multi_add_handle(m, c) != CURLM_OK) {
		curl_multi_cleanup(m);
		return CURLE_OUT_OF_MEMORY;
	}
	while (running) {
		CURLMcode mc;

		if (cancelled(cancel)) {
			*cancelled_r = true;
			res = CURLE_ABORTED_BY_CALLBACK;
			break;
		}
		mc = curl_multi_perform(m, &running);
		if (mc == CURLM_OK && running)
			mc = curl_multi_poll(m, NULL, 0, CANCEL_SLICE_MS, NULL);
		if (mc != CURLM_OK) {
			res = mc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY
							: CURLE_RECV_ERROR;
			break;
		}
	}
	if (!running)
		while ((msg = curl_multi_info_read(m, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				res = msg->data.result;
	curl_multi_remove_handle(m, c);
	curl_multi_cleanup(m);
	return res;
}


/*
 * POSTs the form BODY to URL, with HTTP Basic client authentication when
 * CFG has a secret.  Fills R (status and body) on any HTTP answer;
 * transport failures, cancellation and oversized answers are errors.
 */
static int http_post(const struct mx_oauth_cfg *cfg, const char *what,
		     const char *url, const char *body, struct http_resp *r,
		     struct mx_error *err)
{
	CURL *c = NULL;
	struct curl_slist *hdrs = NULL, *h;
	char ebuf[CURL_ERROR_SIZE];
	char *authz = NULL;
	bool was_cancelled = false;
	CURLcode cc = CURLE_OK;
	int rc = MX_OK;
	long t = timeout_of(cfg);

	rc = mx_http_global_init(err);
	if (rc)
		return rc;
	rc = check_url(what, url, err);
	if (rc)
		return rc;
	if (cfg->client_secret != NULL) {
		/* RFC 6749 2.3.1: both parts form-urlencoded, then joined
		 * with ':' and base64-encoded. */
		struct mx_buf cred = {0};
		char *id = curl_easy_escape(NULL, cfg->client_id, 0);
		char *sec = curl_easy_escape(NULL, cfg->client_secret, 0);
		char *b64 = NULL;

		if (id && sec && mx_buf_printf(&cred, "%s:%s", id, sec) == 0)
			b64 = mx_base64_encode(cred.data, cred.len);
		if (b64) {
			size_t n = strlen(b64) + sizeof("Authorization: Basic ");

			authz = malloc(n);
			if (authz)
				snprintf(authz, n, "Authorization: Basic %s",
					 b64);
		}
		if (sec)
			OPENSSL_cleanse(sec, strlen(sec));
		curl_free(id);
		curl_free(sec);
		if (cred.data)
			OPENSSL_cleanse(cred.data, cred.len);
		mx_buf_free(&cred);
		mx_secret_free(b64);
		if (authz == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	{
		const char *lines[] = {
			"Content-Type: application/x-www-form-urlencoded",
			"Accept: application/json",
			"Expect:",
			authz,
		};

		for (size_t i = 0; i < MX_ARRAY_SIZE(lines); i++) {
			if (lines[i] == NULL)
				continue;
			h = curl_slist_append(hdrs, lines[i]);
			if (h == NULL) {
				rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
				goto out;
			}
			hdrs = h;
		}
	}
	c = curl_easy_init();
	if (c == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	ebuf[0] = '\0';
	r->status = 0;
	r->sink.max = MAX_RESPONSE;
	r->sink.too_big = false;
	mx_buf_reset(&r->sink.body);
	/* The answer holds tokens: all of it fits in one block, so no
	 * realloc() leaves a partial copy behind. */
	if (mx_buf_reserve(&r->sink.body, MAX_RESPONSE) < 0) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
#define SET(opt, val)                                                    \
	do {                                                             \
		if (cc == CURLE_OK)                                      \
			cc = curl_easy_setopt(c, opt, val);              \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT, t);
	SET(CURLOPT_CONNECTTIMEOUT, t);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->ca_file)
		SET(CURLOPT_CAINFO, cfg->ca_file);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_POSTFIELDS, body);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_USERAGENT, "mxsync/" MX_VERSION_STRING);
	SET(CURLOPT_ERRORBUFFER, ebuf);
	SET(CURLOPT_WRITEFUNCTION, mx_http_sink_write);
	SET(CURLOPT_WRITEDATA, &r->sink);
#undef SET
	if (cc != CURLE_OK) {
		rc = mx_error_set(err, MX_ERR_CONFIG, "%s: %s", what,
				  curl_easy_strerror(cc));
		goto out;
	}
	cc = perform(c, r->cancel, &was_cancelled);
	if (was_cancelled) {
		rc = mx_error_set(err, MX_ERR_CANCELLED, "%s: cancelled",
				  what);
		goto out;
	}
	if (r->sink.too_big) {
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "%s: response larger than %d bytes", what,
				  MAX_RESPONSE);
		goto out;
	}
	if (cc != CURLE_OK) {
		rc = mx_http_curl_error(cc, ebuf, what, err);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	mx_debug("oauth: %s: HTTP %ld (%zu bytes)", what, r->status,
		 r->sink.body.len);
out:
	if (c)
		curl_easy_cleanup(c);
	/* curl_slist_append() copied the Authorization line. */
	for (h = hdrs; h; h = h->next)
		OPENSSL_cleanse(h->data, strlen(h->data));
	curl_slist_free_all(hdrs);
	mx_secret_free(authz);
	return rc;
}

/* ---- token endpoint responses ---- */

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A JSON integer, or a string of digits (some providers send those). */
static bool jint(json_t *o, const char *key, int64_t *v_r)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	char *end;
	long long n;

	if (json_is_integer(v)) {
		*v_r = (int64_t)json_integer_value(v);
		return true;
	}
	if ((s = json_string_value(v)) == NULL || *s == '\0')
		return false;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || *end)
		return false;
	*v_r = (int64_t)n;
	return true;
}

/*
 * Interprets an RFC 6749 5.2 error answer.  ECODE_R gets the "error"
 * value (empty if the answer is not one) so that device polling can act
 * on authorization_pending and slow_down; the error is filled for every
 * case anyway.
 */
static int token_error(const char *what, long status, json_t *j,
		       char *ecode_r, size_t ecap, struct mx_error *err)
{
	const char *e = j ? jstr(j, "error") : NULL;
	const char *d = j ? jstr(j, "error_description") : NULL;
	char es[64], ds[240];
	enum mx_err code;

	ecode_r[0] = '\0';
	if (status >= 500 || status == 429 || status == 408) {
		/* Busy or broken: temporary, whatever the body says. */
		code = status == 408 ? MX_ERR_TIMEOUT : MX_ERR_SERVER;
		if (e == NULL)
			return mx_error_set(err, code, "%s: HTTP %ld", what,
					    status);
		sanitize(e, es, sizeof(es));
		return mx_error_set(err, code, "%s: HTTP %ld: %s", what,
				    status, es);
	}
	if (e == NULL)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "%s: unexpected HTTP %ld answer", what,
				    status);
	sanitize(e, es, sizeof(es));
	snprintf(ecode_r, ecap, "%s", es);
	if (strcmp(e, "invalid_grant") == 0 ||
	    strcmp(e, "invalid_client") == 0 ||
	    strcmp(e, "unauthorized_client") == 0 ||
	    strcmp(e, "access_denied") == 0 ||
	    strcmp(e, "expired_token") == 0)
		code = MX_ERR_AUTH;
	else if (strcmp(e, "invalid_request") == 0 ||
		 strcmp(e, "invalid_scope") == 0 ||
		 strcmp(e, "unsupported_grant_type") == 0)
		code = MX_ERR_CONFIG;
	else if (strcmp(e, "temporarily_unavailable") == 0 ||
		 strcmp(e, "server_error") == 0 ||
		 strcmp(e, "authorization_pending") == 0 ||
		 strcmp(e, "slow_down") == 0)
		code = MX_ERR_SERVER;
	else
		code = MX_ERR_AUTH; /* unknown: do not loop on it */
	if (d && *d) {
		sanitize(d, ds, sizeof(ds));
		return mx_error_set(err, code, "%s: %s: %s", what, es, ds);
	}
	return mx_error_set(err, code, "%s: %s", what, es);
}

static int dup_field(json_t *j, const char *key, char **out_r)
{
	const char *s = jstr(j, key);

	*out_r = NULL;
	if (s == NULL)
		return 0;
	*out_r = strdup(s);
	return *out_r ? 0 : -1;
}

/* Parses R (any status) into OUT.  ECODE_R as for token_error(). */
/* json_decref() for an endpoint's answer: jansson frees without wiping,
 * so its string values (access and refresh tokens, id_token, device_code)
 * are wiped first.  They are jansson's own heap copies. */
static void json_free_secret(json_t *j)
{
	const char *k;
	json_t *v;

	if (json_is_object(j))
		json_object_foreach(j, k, v)
			if (json_is_string(v))
				OPENSSL_cleanse((void *)(uintptr_t)
						json_string_value(v),
						json_string_length(v));
	json_decref(j);
}

static int token_parse(const char *what, const struct http_resp *r,
		       struct mx_oauth_token *out, char *ecode_r, size_t ecap,
		       struct mx_error *err)
{
	json_t *j = NULL;
	const char *tt;
	int64_t ein;
	int rc = MX_OK;

	ecode_r[0] = '\0';
	if (r->sink.body.len)
		j = json_loadb(r->sink.body.data, r->sink.body.len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	if (r->status != 200) {
		rc = token_error(what, r->status, j, ecode_r, ecap, err);
		goto out;
	}
	if (j == NULL) {
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "%s: answer is not a JSON object", what);
		goto out;
	}
	if (jstr(j, "access_token") == NULL || jstr(j, "access_token")[0] ==
						       '\0') {
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "%s: answer has no access_token", what);
		goto out;
	}
	tt = jstr(j, "token_type");
	if (tt && strcasecmp(tt, "bearer") != 0) {
		char ts[40];

		sanitize(tt, ts, sizeof(ts));
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "%s: unsupported token_type \"%s\"", what,
				  ts);
		goto out;
	}
	memset(out, 0, sizeof(*out));
	if (dup_field(j, "access_token", &out->access_token) ||
	    dup_field(j, "refresh_token", &out->refresh_token) ||
	    dup_field(j, "scope", &out->scope)) {
		mx_oauth_token_free(out);
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	if (out->refresh_token && out->refresh_token[0] == '\0') {
		free(out->refresh_token);
		out->refresh_token = NULL;
	}
	if (jint(j, "expires_in", &ein) && ein > 0 && ein < INT32_MAX)
		out->expires_at = mx_wall_s() + ein;
out:
	json_free_secret(j);
	return rc;
}

/* Adds client_id to a form when the client is public (no Basic auth). */
static int form_client(struct mx_buf *b, const struct mx_oauth_cfg *cfg)
{
	return cfg->client_secret ? 0 : form_add(b, "client_id", cfg->client_id);
}

static int check_cfg(const struct mx_oauth_cfg *cfg, struct mx_error *err)
{
	if (cfg == NULL || cfg->client_id == NULL || cfg->client_id[0] == '\0')
		return mx_error_set(err, MX_ERR_CONFIG,
				    "oauth: client_id not set");
	return MX_OK;
}

/*
 * One token request with the form BODY.  ECODE_R (may be NULL) gets the
 * endpoint's "error" value on an RFC 6749 5.2 answer.
 */
static int token_request(const struct mx_oauth_cfg *cfg, const char *body,
			 volatile int *cancel, struct mx_oauth_token *out,
			 char *ecode_r, size_t ecap, struct mx_error *err)
{
	struct http_resp r = {0};
	char dummy[64];
	int rc;

	if (ecode_r == NULL) {
		ecode_r = dummy;
		ecap = sizeof(dummy);
	}
	ecode_r[0] = '\0';
	r.cancel = cancel;
	rc = http_post(cfg, "token endpoint", cfg->token_url, body, &r, err);
	if (rc == MX_OK)
		rc = token_parse("token endpoint", &r, out, ecode_r, ecap,
				 err);
	if (r.sink.body.data)
		OPENSSL_cleanse(r.sink.body.data, r.sink.body.len);
	mx_buf_free(&r.sink.body);
	return rc;
}

static void body_free(struct mx_buf *b)
{
	if (b->data)
		OPENSSL_cleanse(b->data, b->len);
	mx_buf_free(b);
}

/* ---- refresh ---- */

int mx_oauth_refresh(const struct mx_oauth_cfg *cfg, const char *refresh_token,
		     struct mx_oauth_token *out, struct mx_error *err)
{
	struct mx_buf body = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_cfg(cfg, err);
	if (rc)
		return rc;
	if (refresh_token == NULL || refresh_token[0] == '\0')
		return mx_error_set(err, MX_ERR_AUTH,
				    "oauth: no refresh token");
	if (form_add(&body, "grant_type", "refresh_token") ||
	    form_add(&body, "refresh_token", refresh_token) ||
	    form_client(&body, cfg)) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	rc = token_request(cfg, body.data, NULL, out, NULL, 0, err);
out:
	body_free(&body);
	return rc;
}

/* ---- device authorization grant (RFC 8628) ---- */

int mx_oauth_device_start(const struct mx_oauth_cfg *cfg,
			  struct mx_oauth_device *dev_r, struct mx_error *err)
{
	struct mx_buf body = {0};
	struct http_resp r = {0};
	json_t *j = NULL;
	int64_t v;
	char ecode[64];
	int rc;

	memset(dev_r, 0, sizeof(*dev_r));
	rc = check_cfg(cfg, err);
	if (rc)
		return rc;
	if (cfg->device_url == NULL)
		return mx_error_set(err, MX_ERR_CONFIG,
				    "oauth: no device authorization endpoint");
	if (form_client(&body, cfg) || form_add(&body, "scope", cfg->scope)) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	rc = http_post(cfg, "device endpoint", cfg->device_url,
		       body.data ? body.data : "", &r, err);
	if (rc)
		goto out;
	if (r.sink.body.len)
		j = json_loadb(r.sink.body.data, r.sink.body.len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	if (r.status != 200) {
		rc = token_error("device endpoint", r.status, j, ecode,
				 sizeof(ecode), err);
		goto out;
	}
	if (j == NULL || jstr(j, "device_code") == NULL ||
	    jstr(j, "user_code") == NULL ||
	    (jstr(j, "verification_uri") == NULL &&
	     jstr(j, "verification_url") == NULL)) {
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "device endpoint: answer lacks device_code, "
				  "user_code or verification_uri");
		goto out;
	}
	if (dup_field(j, "device_code", &dev_r->device_code) ||
	    dup_field(j, "user_code", &dev_r->user_code) ||
	    /* "verification_url": Google's spelling. */
	    dup_field(j, jstr(j, "verification_uri") ? "verification_uri"
						     : "verification_url",
		      &dev_r->verification_uri) ||
	    dup_field(j, "verification_uri_complete",
		      &dev_r->verification_uri_complete)) {
		mx_oauth_device_free(dev_r);
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	dev_r->interval_s = DEVICE_DEFAULT_INTERVAL_S;
	if (jint(j, "interval", &v) && v >= 1 && v <= DEVICE_MAX_INTERVAL_S)
		dev_r->interval_s = (int)v;
	if (jint(j, "expires_in", &v) && v > 0 && v < INT32_MAX)
		dev_r->expires_at = mx_wall_s() + v;
out:
	json_free_secret(j);
	body_free(&body);
	body_free(&r.sink.body); /* the device_code */
	return rc;
}

int mx_oauth_device_poll(const struct mx_oauth_cfg *cfg,
			 const struct mx_oauth_device *dev,
			 volatile int *cancel, struct mx_oauth_token *out,
			 struct mx_error *err)
{
	struct mx_buf body = {0};
	int interval, temp_failures = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_cfg(cfg, err);
	if (rc)
		return rc;
	if (dev == NULL || dev->device_code == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "oauth: no device code");
	interval = dev->interval_s > 0 ? dev->interval_s
				       : DEVICE_DEFAULT_INTERVAL_S;
	if (form_add(&body, "grant_type",
		     "urn:ietf:params:oauth:grant-type:device_code") ||
	    form_add(&body, "device_code", dev->device_code) ||
	    form_client(&body, cfg)) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	for (;;) {
		char ecode[64];

		if (sleep_cancellable((uint64_t)interval * 1000, cancel)) {
			rc = mx_error_set(err, MX_ERR_CANCELLED,
					  "device authorization cancelled");
			break;
		}
		if (dev->expires_at && mx_wall_s() >= dev->expires_at) {
			rc = mx_error_set(err, MX_ERR_AUTH,
					  "token endpoint: expired_token: the "
					  "device code expired before the user "
					  "approved");
			break;
		}
		rc = token_request(cfg, body.data, cancel, out, ecode,
				   sizeof(ecode), err);
		if (rc == MX_OK || rc == MX_ERR_CANCELLED)
			break;
		if (strcmp(ecode, "authorization_pending") == 0) {
			temp_failures = 0;
			continue;
		}
		if (strcmp(ecode, "slow_down") == 0) {
			/* RFC 8628 3.5: +5 s for this and all later polls. */
			temp_failures = 0;
			if (interval + 5 <= DEVICE_MAX_INTERVAL_S)
				interval += 5;
			continue;
		}
		if ((rc == MX_ERR_NET || rc == MX_ERR_TIMEOUT ||
		     rc == MX_ERR_SERVER) &&
		    ++temp_failures < DEVICE_MAX_TEMP_FAILURES) {
			/* RFC 8628 3.5: back off on transport trouble. */
			mx_debug("oauth: device poll: %s; backing off",
				 err ? err->detail : "");
			if (interval * 2 <= DEVICE_MAX_INTERVAL_S)
				interval *= 2;
			continue;
		}
		break; /* access_denied, expired_token, invalid_*, ... */
	}
out:
	body_free(&body);
	return rc;
}

/* ---- authorization code + PKCE over a loopback redirect ---- */

/*
 * Finds NAME in the query string Q (up to the first space) and returns
 * its form-decoded value, malloc()ed; NULL if absent (or no memory).
 */
static char *query_get(const char *q, const char *name)
{
	size_t nlen = strlen(name);

	while (q && *q && *q != ' ') {
		const char *end = q + strcspn(q, "& ");

		if ((size_t)(end - q) > nlen && strncmp(q, name, nlen) == 0 &&
		    q[nlen] == '=') {
			const char *v = q + nlen + 1;
			char *out = malloc((size_t)(end - v) + 1);
			size_t o = 0;

			if (out == NULL)
				return NULL;
			while (v < end) {
				int hi, lo;

				if (*v == '%' && end - v >= 3 &&
				    (hi = mx_hexval(v[1])) >= 0 &&
				    (lo = mx_hexval(v[2])) >= 0) {
					out[o++] = (char)(hi << 4 | lo);
					v += 3;
				} else {
					out[o++] = *v == '+' ? ' ' : *v;
					v++;
				}
			}
			out[o] = '\0';
			return out;
		}
		q = *end == '&' ? end + 1 : end;
	}
	return NULL;
}

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void send_page(int fd, int status, const char *title,
		      const char *text)
{
	char body[512], head[256];
	int bn, hn;

	bn = snprintf(body, sizeof(body),
		      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
		      "<title>mxsync: %s</title></head>\n<body><h1>%s</h1>"
		      "<p>%s</p></body></html>\n", title, title, text);
	if (bn < 0 || (size_t)bn >= sizeof(body))
		bn = (int)strlen(body);
	hn = snprintf(head, sizeof(head),
		      "HTTP/1.1 %d %s\r\nContent-Type: text/html; "
		      "charset=utf-8\r\nContent-Length: %d\r\n"
		      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
		      status, status == 200 ? "OK" : status == 404
			      ? "Not Found" : "Bad Request", bn);
	send_all(fd, head, (size_t)hn);
	send_all(fd, body, (size_t)bn);
}

/* Reads one request head (up to the blank line) from FD into BUF. */
static bool read_request(int fd, char *buf, size_t cap, volatile int *cancel)
{
	uint64_t end = mx_now_ms() + REDIRECT_READ_MS;
	size_t len = 0;

	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		uint64_t now = mx_now_ms();
		ssize_t n;
		int pr;

		if (now >= end || cancelled(cancel))
			return false;
		pr = poll(&p, 1, CANCEL_SLICE_MS);
		if (pr < 0 && errno != EINTR)
			return false;
		if (pr <= 0)
			continue;
		n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return true;
		if (len + 1 >= cap)
			return false;
	}
}

struct redirect {
	char *code;  /* owned */
	char *error; /* owned: the authorization server's "error" */
	char *error_description; /* owned */
};

static void redirect_free(struct redirect *rd)
{
	mx_secret_free(rd->code);
	free(rd->error);
	free(rd->error_description);
	memset(rd, 0, sizeof(*rd));
}

/*
 * Waits for the browser's redirect on LFD.  Requests that carry neither
 * "code" nor "error" (a favicon, a stray probe) get a 404 and waiting goes
 * on; the first real redirect ends it, successful or not.
 */
static int wait_redirect(int lfd, const char *state, int timeout_s,
			 volatile int *cancel, struct redirect *rd,
			 struct mx_error *err)
{
	uint64_t end = mx_now_ms() + (uint64_t)timeout_s * 1000;
	char req[REDIRECT_MAX_REQUEST];

	for (;;) {
		struct pollfd p = {.fd = lfd, .events = POLLIN};
		char *q, *st = NULL;
		int fd, pr, rc;

		if (cancelled(cancel))
			return mx_error_set(err, MX_ERR_CANCELLED,
					    "authorization cancelled");
		if (mx_now_ms() >= end)
			return mx_error_set(err, MX_ERR_TIMEOUT,
					    "no authorization redirect within "
					    "%d s", timeout_s);
		pr = poll(&p, 1, CANCEL_SLICE_MS);
		if (pr < 0 && errno != EINTR)
			return mx_error_set(err, MX_ERR_IO, "poll: %s",
					    strerror(errno));
		if (pr <= 0)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		if (!read_request(fd, req, sizeof(req), cancel)) {
			close(fd);
			continue;
		}
		if (strncmp(req, "GET ", 4) != 0 ||
		    (q = strchr(req + 4, '?')) == NULL ||
		    q > req + 4 + strcspn(req + 4, " \r\n")) {
			send_page(fd, 404, "Not found", "Nothing here.");
			close(fd);
			continue;
		}
		q++;
		rd->code = query_get(q, "code");
		rd->error = query_get(q, "error");
		if (rd->code == NULL && rd->error == NULL) {
			send_page(fd, 404, "Not found", "Nothing here.");
			close(fd);
			continue;
		}
		rd->error_description = query_get(q, "error_description");
		st = query_get(q, "state");
		/* RFC 6749 10.12: the state binds the answer to our request;
		 * without it, a page could feed us an attacker's code. */
		if (st == NULL || strlen(st) != strlen(state) ||
		    CRYPTO_memcmp(st, state, strlen(state)) != 0) {
			send_page(fd, 400, "Authorization failed",
				  "The answer does not belong to this request "
				  "(state mismatch). Please start again.");
			rc = mx_error_set(err, MX_ERR_PROTOCOL,
					  "authorization redirect: state "
					  "mismatch");
		} else if (rd->error) {
			char es[64], ds[240];

			sanitize(rd->error, es, sizeof(es));
			sanitize(rd->error_description, ds, sizeof(ds));
			send_page(fd, 400, "Authorization failed",
				  "The authorization server refused access. "
				  "You can close this window.");
			rc = mx_error_set(err, MX_ERR_AUTH,
					  "authorization endpoint: %s%s%s", es,
					  ds[0] ? ": " : "", ds);
		} else {
			send_page(fd, 200, "Authorization complete",
				  "mxsync received the authorization. You can "
				  "close this window.");
			rc = MX_OK;
		}
		free(st);
		close(fd);
		OPENSSL_cleanse(req, sizeof(req));
		return rc;
	}
}

static int listen_loopback(int *fd_r, int *port_r, struct mx_error *err)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return mx_error_set(err, MX_ERR_IO, "socket: %s",
				    strerror(errno));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(fd, 8) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		int e = errno;

		close(fd);
		return mx_error_set(err, MX_ERR_IO,
				    "loopback redirect listener: %s",
				    strerror(e));
	}
	*fd_r = fd;
	*port_r = ntohs(a.sin_port);
	return MX_OK;
}

bool mx_oauth_pkce_pair(char verifier[MX_PKCE_VERIFIER_CAP],
			char challenge[MX_PKCE_CHALLENGE_CAP])
{
	uint8_t md[32];

	/* 64 random bytes -> 86 characters of [A-Za-z0-9-_], inside the
	 * 43..128 RFC 7636 4.1 allows. */
	if (!random_b64url(64, verifier, MX_PKCE_VERIFIER_CAP))
		return false;
	mx_sha256(verifier, strlen(verifier), md);
	b64url_encode(md, sizeof(md), challenge, MX_PKCE_CHALLENGE_CAP);
	return true;
}

int mx_oauth_authorize_url(const struct mx_oauth_cfg *cfg,
			   const char *redirect_uri, const char *state,
			   const char *challenge, char **url_r,
			   struct mx_error *err)
{
	struct mx_buf q = {0}, url = {0};
	int rc;

	*url_r = NULL;
	rc = check_cfg(cfg, err);
	if (rc)
		return rc;
	if (cfg->auth_url == NULL)
		return mx_error_set(err, MX_ERR_CONFIG,
				    "oauth: no authorization endpoint");
	/* Both URLs up front: no browser round trip for a doomed exchange. */
	rc = check_url("authorization endpoint", cfg->auth_url, err);
	if (rc == MX_OK)
		rc = check_url("token endpoint", cfg->token_url, err);
	if (rc)
		return rc;
	if (form_add(&q, "response_type", "code") ||
	    form_add(&q, "client_id", cfg->client_id) ||
	    form_add(&q, "redirect_uri", redirect_uri) ||
	    form_add(&q, "scope", cfg->scope) ||
	    form_add(&q, "state", state) ||
	    form_add(&q, "code_challenge", challenge) ||
	    form_add(&q, "code_challenge_method", "S256") ||
	    mx_buf_printf(&url, "%s%c%s", cfg->auth_url,
			  strchr(cfg->auth_url, '?') ? '&' : '?',
			  q.data) != 0) {
		mx_buf_free(&url);
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	} else {
		*url_r = url.data;
	}
	mx_buf_free(&q);
	return rc;
}

int mx_oauth_exchange_code(const struct mx_oauth_cfg *cfg, const char *code,
			   const char *redirect_uri, const char *verifier,
			   volatile int *cancel, struct mx_oauth_token *out,
			   struct mx_error *err)
{
	struct mx_buf body = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = check_cfg(cfg, err);
	if (rc)
		return rc;
	if (code == NULL || code[0] == '\0')
		return mx_error_set(err, MX_ERR_AUTH,
				    "oauth: no authorization code");
	/* RFC 6749 4.1.3 (redirect_uri as in the authorization request)
	 * and RFC 7636 4.5. */
	if (form_add(&body, "grant_type", "authorization_code") ||
	    form_add(&body, "code", code) ||
	    form_add(&body, "redirect_uri", redirect_uri) ||
	    form_add(&body, "code_verifier", verifier) ||
	    form_client(&body, cfg)) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	rc = token_request(cfg, body.data, cancel, out, NULL, 0, err);
out:
	body_free(&body);
	return rc;
}

int mx_oauth_pkce(const struct mx_oauth_cfg *cfg,
		  void (*show_url)(const char *url, void *ctx), void *ctx,
		  int timeout_s, volatile int *cancel,
		  struct mx_oauth_token *out, struct mx_error *err)
{
	char verifier[MX_PKCE_VERIFIER_CAP], challenge[MX_PKCE_CHALLENGE_CAP];
	char state[32], redirect_uri[64];
	char *url = NULL;
	struct redirect rd = {0};
	int lfd = -1, port = 0, rc;

	memset(out, 0, sizeof(*out));
	rc = check_cfg(cfg, err);
	if (rc)
		return rc;
	if (cfg->auth_url == NULL)
		return mx_error_set(err, MX_ERR_CONFIG,
				    "oauth: no authorization endpoint");
	rc = check_url("authorization endpoint", cfg->auth_url, err);
	if (rc == MX_OK)
		rc = check_url("token endpoint", cfg->token_url, err);
	if (rc)
		return rc;
	if (timeout_s <= 0)
		timeout_s = PKCE_DEFAULT_TIMEOUT_S;
	if (!mx_oauth_pkce_pair(verifier, challenge) ||
	    !random_b64url(16, state, sizeof(state)))
		return mx_error_set(err, MX_ERR_IO,
				    "oauth: no random bytes");
	rc = listen_loopback(&lfd, &port, err);
	if (rc)
		goto out;
	/* RFC 8252 7.3: the IP literal, not "localhost", and any port. */
	snprintf(redirect_uri, sizeof(redirect_uri), "http://127.0.0.1:%d/",
		 port);
	rc = mx_oauth_authorize_url(cfg, redirect_uri, state, challenge, &url,
				    err);
	if (rc)
		goto out;
	if (show_url)
		show_url(url, ctx);
	rc = wait_redirect(lfd, state, timeout_s, cancel, &rd, err);
	close(lfd);
	lfd = -1;
	if (rc)
		goto out;
	rc = mx_oauth_exchange_code(cfg, rd.code, redirect_uri, verifier,
				    cancel, out, err);
out:
	if (lfd >= 0)
		close(lfd);
	redirect_free(&rd);
	free(url);
	OPENSSL_cleanse(verifier, sizeof(verifier));
	return rc;
}

/* ---- SASL ---- */

static bool has_ctl1(const char *s)
{
	return strchr(s, '\x01') != NULL;
}

char *mx_sasl_xoauth2(const char *user, const char *token)
{
	struct mx_buf b = {0};
	char *out = NULL;

	if (user == NULL || token == NULL || has_ctl1(user) || has_ctl1(token))
		return NULL;
	if (mx_buf_printf(&b, "user=%s\x01" "auth=Bearer %s\x01\x01", user,
			  token) == 0)
		out = mx_base64_encode(b.data, b.len);
	body_free(&b);
	return out;
}

char *mx_sasl_oauthbearer(const char *user, const char *host, int port,
			  const char *token)
{
	struct mx_buf b = {0};
	char *out = NULL;
	bool ok;

	if (user == NULL || host == NULL || token == NULL || has_ctl1(user) ||
	    has_ctl1(host) || has_ctl1(token))
		return NULL;
	/* RFC 7628 3.1 / RFC 5801: in the GS2 header's saslname, ',' and
	 * '=' are written "=2C" and "=3D". */
	ok = mx_buf_puts(&b, "n,a=") == 0;
	for (const char *p = user; ok && *p; p++)
		ok = (*p == ',' ? mx_buf_puts(&b, "=2C")
		      : *p == '=' ? mx_buf_puts(&b, "=3D")
				  : mx_buf_append(&b, p, 1)) == 0;
	if (ok && mx_buf_printf(&b, ",\x01host=%s\x01port=%d\x01"
			       "auth=Bearer %s\x01\x01", host, port,
			       token) == 0)
		out = mx_base64_encode(b.data, b.len);
	body_free(&b);
	return out;
}

char *mx_sasl_plain(const char *user, const char *password)
{
	struct mx_buf b = {0};
	char *out = NULL;

	if (user == NULL || password == NULL)
		return NULL;
	/* authzid (empty) NUL authcid NUL passwd (RFC 4616); the strings
	 * cannot hold a NUL themselves. */
	if (mx_buf_append(&b, "", 1) == 0 && mx_buf_puts(&b, user) == 0 &&
	    mx_buf_append(&b, "", 1) == 0 && mx_buf_puts(&b, password) == 0)
		out = mx_base64_encode(b.data, b.len);
	body_free(&b);
	return out;
}
