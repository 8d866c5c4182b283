/*
 * The I/O half of the Gmail API client (see gmail_api.h): requests over
 * libcurl, the quota bucket's waits, retries.  Answers are decoded by
 * gmail_json.c.
 */
#include <config.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/oauth.h" /* mx_oauth_check_url(): one rule for http:// */
#include "backends/gmail_api.h"
#include "net/interrupt.h"
#include "util/http.h"

#define WAIT_SLICE_MS 100
#define JSON_OVERHEAD (64 * 1024)

struct mx_gmail {
	char *base;      /* owned; no trailing '/' */
	char *ca_file;   /* owned; NULL: system store */
	long timeout_s;
	uint64_t max_raw;
	mx_gmail_token_fn get_token;
	void *token_ctx;
	volatile int *cancel;
	unsigned max_retries;
	uint64_t max_backoff_ms;
	struct mx_gmail_bucket bucket;
	uint64_t requests, units;
};

static bool stopped(const struct mx_gmail *g)
{
	return mx_net_interrupted() || (g->cancel != NULL && *g->cancel != 0);
}

/* Sleeps MS in slices; MX_ERR_CANCELLED as soon as the process or the
 * caller asks to stop. */
static int wait_ms(const struct mx_gmail *g, uint64_t ms, const char *why,
		   struct mx_error *err)
{
	uint64_t end = mx_now_ms() + ms;

	for (;;) {
		uint64_t now = mx_now_ms();
		uint64_t slice;
		struct timespec ts;

		if (stopped(g))
			return mx_error_set(err, MX_ERR_CANCELLED,
					    "interrupted while waiting (%s)",
					    why);
		if (now >= end)
			return MX_OK;
		slice = end - now < WAIT_SLICE_MS ? end - now : WAIT_SLICE_MS;
		ts.tv_sec = (time_t)(slice / 1000);
		ts.tv_nsec = (long)(slice % 1000) * 1000000L;
		nanosleep(&ts, NULL);
	}
}

int mx_gmail_open(const struct mx_gmail_cfg *cfg, struct mx_gmail **g_r,
		  struct mx_error *err)
{
	const char *url = cfg->base_url ? cfg->base_url : MX_GMAIL_DEFAULT_URL;
	struct mx_gmail *g;
	size_t n;
	int rc;

	*g_r = NULL;
	if ((rc = mx_oauth_check_url("Gmail API", url, err)) != MX_OK)
		return rc;
	if (cfg->get_token == NULL)
		return mx_error_set(err, MX_ERR_CONFIG,
				    "Gmail API: no access token source");
	if ((rc = mx_http_global_init(err)) != MX_OK)
		return rc;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	g->base = mx_strdup(url);
	g->ca_file = cfg->ca_file ? mx_strdup(cfg->ca_file) : NULL;
	if (g->base == NULL || (cfg->ca_file != NULL && g->ca_file == NULL)) {
		mx_gmail_close(&g);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	n = strlen(g->base);
	while (n > 0 && g->base[n - 1] == '/')
		g->base[--n] = '\0';
	g->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 30;
	g->max_raw = cfg->max_raw ? cfg->max_raw : 50u * 1024 * 1024;
	g->get_token = cfg->get_token;
	g->token_ctx = cfg->token_ctx;
	g->cancel = cfg->cancel;
	g->max_retries = cfg->max_retries ? cfg->max_retries : 5;
	g->max_backoff_ms = cfg->max_backoff_ms ? cfg->max_backoff_ms : 64000;
	mx_gmail_bucket_init(&g->bucket, cfg->quota_per_min, cfg->quota_burst,
			     mx_now_ms());
	*g_r = g;
	return MX_OK;
}

void mx_gmail_close(struct mx_gmail **g)
{
	if (g == NULL || *g == NULL)
		return;
	free((*g)->base);
	free((*g)->ca_file);
	free(*g);
	*g = NULL;
}

void mx_gmail_stats(const struct mx_gmail *g, uint64_t *requests_r,
		    uint64_t *units_r)
{
	*requests_r = g->requests;
	*units_r = g->units;
}

/* ---- one HTTP exchange ---- */

struct exchange {
	long status;
	struct mx_http_sink sink;
	char retry_after[64]; /* the header's value, "" if none */
	char content_type[256]; /* the same */
};

/* Copies the value of header NAME (lower-case, with the colon) from the
 * header line P (N bytes) into OUT; too long a value is left empty. */
static void header_value(const char *p, size_t n, const char *name,
			 char *out, size_t cap)
{
	size_t nl = strlen(name), off, len;

	if (n <= nl || strncasecmp(p, name, nl) != 0)
		return;
	off = nl;
	while (off < n && (p[off] == ' ' || p[off] == '\t'))
		off++;
	len = n - off;
	while (len > 0 && (p[off + len - 1] == '\r' ||
			   p[off + len - 1] == '\n' || p[off + len - 1] == ' '))
		len--;
	if (len >= cap)
		len = 0; /* no valid value is that long */
	memcpy(out, p + off, len);
	out[len] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct exchange *x = ud;
	size_t n = size * nmemb;

	header_value(p, n, "retry-after:", x->retry_after,
		     sizeof(x->retry_after));
	header_value(p, n, "content-type:", x->content_type,
		     sizeof(x->content_type));
	return n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
		       curl_off_t un)
{
	(void)dt, (void)dn, (void)ut, (void)un;
	return stopped(ud) ? 1 : 0;
}

static int map_curl(CURLcode cc, const char *ebuf, const char *what,
		    struct mx_error *err)
{
	char w[96];

	if (cc == CURLE_ABORTED_BY_CALLBACK)
		return mx_error_set(err, MX_ERR_CANCELLED, "%s: interrupted",
				    what);
	snprintf(w, sizeof(w), "Gmail API %s", what);
	return mx_http_curl_error(cc, ebuf, w, err);
}

/*
 * One request: METHOD_S (GET/POST) to URL with the bearer TOKEN and, for a
 * POST, the JSON BODY.  Fills X on any HTTP answer (a body over MAX is
 * MX_ERR_PROTOCOL); transport failures are errors, never retried here:
 * the request may have reached the server.
 */
static int perform(struct mx_gmail *g, const char *what, const char *url,
		   const char *token, const char *body, const char *ctype,
		   size_t max, struct exchange *x, struct mx_error *err)
{
	struct curl_slist *hdrs = NULL, *h;
	struct mx_buf auth = {0}, cth = {0};
	char ebuf[CURL_ERROR_SIZE] = "";
	CURLcode cc = CURLE_OK;
	CURL *c = NULL;
	int rc = MX_OK;

	memset(x, 0, sizeof(*x));
	x->sink.max = max;
	if (mx_buf_printf(&auth, "Authorization: Bearer %s", token) != 0 ||
	    mx_buf_printf(&cth, "Content-Type: %s", ctype) != 0 ||
	    (h = curl_slist_append(hdrs, auth.data)) == NULL ||
	    (hdrs = h, body != NULL &&
	     (h = curl_slist_append(hdrs, cth.data)) == NULL) ||
	    (hdrs = h, (c = curl_easy_init()) == NULL)) {
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
	SET(CURLOPT_TIMEOUT, g->timeout_s);
	SET(CURLOPT_CONNECTTIMEOUT, g->timeout_s);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (g->ca_file != NULL)
		SET(CURLOPT_CAINFO, g->ca_file);
	if (body != NULL) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDS, body);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_USERAGENT, "mxsync/" MX_VERSION_STRING);
	SET(CURLOPT_ERRORBUFFER, ebuf);
	SET(CURLOPT_WRITEFUNCTION, mx_http_sink_write);
	SET(CURLOPT_WRITEDATA, &x->sink);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, x);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, g);
#undef SET
	if (cc != CURLE_OK) {
		rc = mx_error_set(err, MX_ERR_CONFIG, "Gmail API %s: libcurl: %s",
				  what, curl_easy_strerror(cc));
		goto out;
	}
	g->requests++;
	cc = curl_easy_perform(c);
	if (x->sink.too_big) {
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "Gmail API %s: answer over %zu bytes", what,
				  max);
		goto out;
	}
	if (cc != CURLE_OK) {
		rc = map_curl(cc, ebuf, what, err);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &x->status);
out:
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	if (auth.data != NULL)
		OPENSSL_cleanse(auth.data, auth.len);
	mx_buf_free(&auth);
	mx_buf_free(&cth);
	if (rc != MX_OK)
		mx_buf_free(&x->sink.body);
	return rc;
}

static void free_token(char **t)
{
	if (*t != NULL) {
		OPENSSL_cleanse(*t, strlen(*t));
		free(*t);
		*t = NULL;
	}
}

/*
 * NCALLS calls of METHOD M in one request (a batch: Google charges each),
 * with the quota, token and retry rules of gmail_api.h.  PATH follows the
 * base URL ("/gmail/v1/users/me/..."); BODY, of type CTYPE, is for a POST
 * (NULL for a GET).  On MX_OK, X holds a 2xx answer (the caller frees
 * X->sink.body).  RETRY_UNSENT_ONLY: no retry once the request may have
 * been acted on (send).
 */
static int call_n(struct mx_gmail *g, enum mx_gmail_method m, size_t ncalls,
		  const char *path, const char *body, const char *ctype,
		  size_t max, bool retry_unsent_only, struct exchange *x,
		  struct mx_error *err)
{
	const char *what = mx_gmail_method_name(m);
	struct mx_buf url = {0};
	char *token = NULL;
	bool refreshed = false;
	unsigned attempt = 0;
	int rc;

	if (mx_buf_printf(&url, "%s%s", g->base, path) != 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	for (;;) {
		enum mx_gmail_action act;
		uint64_t w, ra;
		int64_t after = -1;
		uint32_t jitter = 0;

		for (size_t i = 0; i < ncalls; i++) {
			while ((w = mx_gmail_bucket_take(&g->bucket,
							 mx_gmail_cost(m),
							 mx_now_ms())) > 0)
				if ((rc = wait_ms(g, w, "Gmail API quota",
						  err)) != MX_OK)
					goto out;
			g->units += mx_gmail_cost(m);
		}
		free_token(&token);
		if ((rc = g->get_token(g->token_ctx, refreshed, &token, err)) !=
		    MX_OK)
			goto out;
		if (token == NULL || token[0] == '\0' ||
		    strpbrk(token, "\r\n") != NULL) {
			rc = mx_error_set(err, MX_ERR_AUTH,
					  "Gmail API %s: no usable access "
					  "token", what);
			goto out;
		}
		rc = perform(g, what, url.data, token, body, ctype, max, x, err);
		if (rc != MX_OK)
			goto out; /* transport: the caller's scheduler retries */
		if (x->status >= 200 && x->status <= 299)
			goto out;
		act = mx_gmail_map_error(m, x->status, x->sink.body.data,
					 x->sink.body.len, err);
		mx_buf_free(&x->sink.body);
		rc = err != NULL ? (int)err->code : MX_ERR_SERVER;
		if (act == MX_GMAIL_REFRESH) {
			if (refreshed)
				goto out;
			refreshed = true;
			continue;
		}
		if (act == MX_GMAIL_FAIL || attempt >= g->max_retries ||
		    (retry_unsent_only && act == MX_GMAIL_BACKOFF))
			goto out;
		if (act == MX_GMAIL_RATE) {
			mx_gmail_bucket_drain(&g->bucket, mx_now_ms());
			if (mx_gmail_retry_after(x->retry_after, mx_wall_s(),
						 &ra) == 0)
				after = (int64_t)ra;
		}
		if (RAND_bytes((unsigned char *)&jitter, sizeof(jitter)) != 1)
			jitter = (uint32_t)mx_now_ms();
		w = mx_gmail_backoff_ms(attempt++, after, g->max_backoff_ms,
					jitter);
		/* The backend seam traces calls (-D backend); a wait this
		 * long is worth a line of its own. */
		mx_debug("Gmail API %s: HTTP %ld, retrying in %llu ms", what,
			 x->status, (unsigned long long)w);
		if ((rc = wait_ms(g, w, "Gmail API backoff", err)) != MX_OK)
			goto out;
	}
out:
	free_token(&token);
	mx_buf_free(&url);
	return rc;
}

/* call_n() for one call with a JSON body (or none). */
static int call(struct mx_gmail *g, enum mx_gmail_method m, const char *path,
		const char *body, size_t max, bool retry_unsent_only,
		struct exchange *x, struct mx_error *err)
{
	return call_n(g, m, 1, path, body, "application/json", max,
		      retry_unsent_only, x, err);
}

/* Appends "&KEY=escaped(VALUE)" to a query. */
static int query_add(struct mx_buf *q, const char *key, const char *value)
{
	char *esc = curl_easy_escape(NULL, value, 0);
	int rc;

	if (esc == NULL)
		return -1;
	rc = mx_buf_printf(q, "%s%s=%s", strchr(q->data ? q->data : "", '?')
					      ? "&" : "?", key, esc);
	curl_free(esc);
	return rc;
}

static int check_id(const char *what, const char *field, const char *id,
		    struct mx_error *err)
{
	if (!mx_gmail_id_valid(id))
		return mx_error_set(err, MX_ERR_INVAL,
				    "Gmail API %s: %s is not a Gmail id "
				    "(1 to 64 of A-Z a-z 0-9 _ -)", what, field);
	return MX_OK;
}

static int check_ids(const char *what, const char *field,
		     const char *const *ids, size_t n, struct mx_error *err)
{
	for (size_t i = 0; i < n; i++)
		if (check_id(what, field, ids[i], err) != MX_OK)
			return MX_ERR_INVAL;
	return MX_OK;
}

#define USERS "/gmail/v1/users/me"

int mx_gmail_messages_list(struct mx_gmail *g, const char *page_token,
			   unsigned max_results,
			   const char *const *label_ids, size_t nlabels,
			   struct mx_gmail_list_page *out,
			   struct mx_error *err)
{
	const char *what = mx_gmail_method_name(MX_GMAIL_MESSAGES_LIST);
	struct mx_buf q = {0};
	struct exchange x = {0};
	char n[16];
	int rc;

	memset(out, 0, sizeof(*out));
	if (max_results < 1 || max_results > MX_GMAIL_LIST_MAX)
		return mx_error_set(err, MX_ERR_INVAL,
				    "Gmail API %s: maxResults %u not in 1..%d",
				    what, max_results, MX_GMAIL_LIST_MAX);
	if ((rc = check_ids(what, "label id", label_ids, nlabels, err)) !=
	    MX_OK)
		return rc;
	snprintf(n, sizeof(n), "%u", max_results);
	if (mx_buf_puts(&q, USERS "/messages") != 0 ||
	    query_add(&q, "maxResults", n) != 0 ||
	    (page_token != NULL && query_add(&q, "pageToken", page_token) != 0))
		goto nomem;
	for (size_t i = 0; i < nlabels; i++)
		if (query_add(&q, "labelIds", label_ids[i]) != 0)
			goto nomem;
	rc = call(g, MX_GMAIL_MESSAGES_LIST, q.data, NULL, MX_GMAIL_JSON_MAX,
		  false, &x, err);
	if (rc == MX_OK)
		rc = mx_gmail_parse_list(x.sink.body.data, x.sink.body.len, out,
					 err);
	mx_buf_free(&x.sink.body);
	mx_buf_free(&q);
	return rc;
nomem:
	mx_buf_free(&q);
	return mx_error_set(err, MX_ERR_NOMEM, NULL);
}

int mx_gmail_message_get(struct mx_gmail *g, const char *id,
			 struct mx_gmail_msg *out, struct mx_error *err)
{
	struct mx_buf q = {0};
	struct exchange x = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = check_id("users.messages.get", "message id", id, err)) !=
	    MX_OK)
		return rc;
	if (mx_buf_printf(&q, USERS "/messages/%s?format=metadata"
			      "&metadataHeaders=From&metadataHeaders=Date",
			  id) != 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = call(g, MX_GMAIL_MESSAGES_GET, q.data, NULL, MX_GMAIL_JSON_MAX,
		  false, &x, err);
	if (rc == MX_OK)
		rc = mx_gmail_parse_msg(x.sink.body.data, x.sink.body.len, out,
					err);
	if (rc == MX_OK && strcmp(out->id, id) != 0) {
		mx_gmail_msg_free(out);
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "Gmail API users.messages.get: asked for %s, "
				  "got another message", id);
	}
	mx_buf_free(&x.sink.body);
	mx_buf_free(&q);
	return rc;
}

int mx_gmail_message_get_raw(struct mx_gmail *g, const char *id,
			     struct mx_buf *raw, struct mx_error *err)
{
	struct mx_buf q = {0};
	struct exchange x = {0};
	size_t max;
	int rc;

	if ((rc = check_id("users.messages.get", "message id", id, err)) !=
	    MX_OK)
		return rc;
	if (mx_buf_printf(&q, USERS "/messages/%s?format=raw", id) != 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	/* base64 takes 4 characters for 3 bytes; the rest of the resource
	 * (ids, labels, snippet) fits in the overhead. */
	max = g->max_raw > (SIZE_MAX - JSON_OVERHEAD) / 4 * 3
		      ? SIZE_MAX
		      : (size_t)(g->max_raw / 3 * 4 + 4 + JSON_OVERHEAD);
	rc = call(g, MX_GMAIL_MESSAGES_GET_RAW, q.data, NULL, max, false, &x,
		  err);
	if (rc == MX_OK)
		rc = mx_gmail_parse_raw(x.sink.body.data, x.sink.body.len,
					(size_t)g->max_raw, raw, err);
	mx_buf_free(&x.sink.body);
	mx_buf_free(&q);
	return rc;
}

int mx_gmail_history_list(struct mx_gmail *g, uint64_t start_history_id,
			  const char *page_token, unsigned types,
			  struct mx_gmail_history_page *out,
			  struct mx_error *err)
{
	static const char *const names[] = {"messageAdded", "messageDeleted",
					    "labelAdded", "labelRemoved"};
	struct mx_buf q = {0};
	struct exchange x = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	if (mx_buf_printf(&q, USERS "/history?startHistoryId=%llu",
			  (unsigned long long)start_history_id) != 0 ||
	    (page_token != NULL && query_add(&q, "pageToken", page_token) != 0))
		goto nomem;
	for (unsigned k = 0; k < MX_ARRAY_SIZE(names); k++)
		if ((types & (1u << k)) != 0 &&
		    query_add(&q, "historyTypes", names[k]) != 0)
			goto nomem;
	rc = call(g, MX_GMAIL_HISTORY_LIST, q.data, NULL, MX_GMAIL_JSON_MAX,
		  false, &x, err);
	if (rc == MX_OK)
		rc = mx_gmail_parse_history(x.sink.body.data, x.sink.body.len,
					    start_history_id, out, err);
	mx_buf_free(&x.sink.body);
	mx_buf_free(&q);
	return rc;
nomem:
	mx_buf_free(&q);
	return mx_error_set(err, MX_ERR_NOMEM, NULL);
}

/* Serializes O (consumed) for a POST body. */
static int json_body(json_t *o, char **body_r, struct mx_error *err)
{
	*body_r = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return *body_r == NULL ? mx_error_set(err, MX_ERR_NOMEM, NULL) : MX_OK;
}

static json_t *id_array(const char *const *ids, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		if (json_array_append_new(a, json_string(ids[i])) != 0) {
			json_decref(a);
			a = NULL;
		}
	return a;
}

int mx_gmail_message_send(struct mx_gmail *g, const void *raw, size_t len,
			  const char *thread_id, struct mx_gmail_ref *sent_r,
			  struct mx_error *err)
{
	struct mx_gmail_ref ref;
	struct exchange x = {0};
	char *b64, *body = NULL;
	json_t *o;
	int rc;

	if (thread_id != NULL &&
	    (rc = check_id("users.messages.send", "thread id", thread_id,
			   err)) != MX_OK)
		return rc;
	b64 = mx_gmail_b64url_encode(raw, len);
	o = b64 ? json_pack("{ss}", "raw", b64) : NULL;
	free(b64);
	if (o != NULL && thread_id != NULL &&
	    json_object_set_new(o, "threadId", json_string(thread_id)) != 0) {
		json_decref(o);
		o = NULL;
	}
	if ((rc = json_body(o, &body, err)) != MX_OK)
		return rc;
	rc = call(g, MX_GMAIL_MESSAGES_SEND, USERS "/messages/send", body,
		  MX_GMAIL_JSON_MAX, true, &x, err);
	if (rc == MX_OK)
		rc = mx_gmail_parse_ref(x.sink.body.data, x.sink.body.len, &ref,
					err);
	if (rc == MX_OK && sent_r != NULL)
		*sent_r = ref;
	mx_buf_free(&x.sink.body);
	free(body);
	return rc;
}

/* {"ids":[..]?, "addLabelIds":[..], "removeLabelIds":[..]} */
static int modify_body(const char *what, const char *const *ids, size_t nids,
		       const char *const *add, size_t nadd,
		       const char *const *remove, size_t nremove,
		       char **body_r, struct mx_error *err)
{
	json_t *o;
	int rc;

	*body_r = NULL;
	if ((rc = check_ids(what, "label id", add, nadd, err)) != MX_OK ||
	    (rc = check_ids(what, "label id", remove, nremove, err)) != MX_OK)
		return rc;
	o = json_pack("{soso}", "addLabelIds", id_array(add, nadd),
		      "removeLabelIds", id_array(remove, nremove));
	if (o != NULL && ids != NULL &&
	    json_object_set_new(o, "ids", id_array(ids, nids)) != 0) {
		json_decref(o);
		o = NULL;
	}
	return json_body(o, body_r, err);
}

int mx_gmail_message_modify(struct mx_gmail *g, const char *id,
			    const char *const *add, size_t nadd,
			    const char *const *remove, size_t nremove,
			    struct mx_error *err)
{
	const char *what = mx_gmail_method_name(MX_GMAIL_MESSAGES_MODIFY);
	struct mx_buf q = {0};
	struct exchange x = {0};
	char *body = NULL;
	int rc;

	if ((rc = check_id(what, "message id", id, err)) != MX_OK ||
	    (rc = modify_body(what, NULL, 0, add, nadd, remove, nremove, &body,
			      err)) != MX_OK)
		return rc;
	if (mx_buf_printf(&q, USERS "/messages/%s/modify", id) != 0)
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	else
		rc = call(g, MX_GMAIL_MESSAGES_MODIFY, q.data, body,
			  MX_GMAIL_JSON_MAX, false, &x, err);
	mx_buf_free(&x.sink.body);
	mx_buf_free(&q);
	free(body);
	return rc;
}

int mx_gmail_batch_modify(struct mx_gmail *g, const char *const *ids,
			  size_t nids, const char *const *add, size_t nadd,
			  const char *const *remove, size_t nremove,
			  struct mx_error *err)
{
	const char *what = mx_gmail_method_name(MX_GMAIL_MESSAGES_BATCH_MODIFY);
	struct exchange x = {0};
	char *body = NULL;
	int rc;

	if (nids < 1 || nids > MX_GMAIL_BATCH_MODIFY_MAX)
		return mx_error_set(err, MX_ERR_INVAL,
				    "Gmail API %s: %zu ids, not 1..%d", what,
				    nids, MX_GMAIL_BATCH_MODIFY_MAX);
	if ((rc = check_ids(what, "message id", ids, nids, err)) != MX_OK ||
	    (rc = modify_body(what, ids, nids, add, nadd, remove, nremove,
			      &body, err)) != MX_OK)
		return rc;
	rc = call(g, MX_GMAIL_MESSAGES_BATCH_MODIFY,
		  USERS "/messages/batchModify", body, MX_GMAIL_JSON_MAX, false,
		  &x, err);
	mx_buf_free(&x.sink.body);
	free(body);
	return rc;
}

int mx_gmail_labels_list(struct mx_gmail *g, struct mx_gmail_label_list *out,
			 struct mx_error *err)
{
	struct exchange x = {0};
	int rc;

	memset(out, 0, sizeof(*out));
	rc = call(g, MX_GMAIL_LABELS_LIST, USERS "/labels", NULL,
		  MX_GMAIL_JSON_MAX, false, &x, err);
	if (rc == MX_OK)
		rc = mx_gmail_parse_labels(x.sink.body.data, x.sink.body.len,
					   out, err);
	mx_buf_free(&x.sink.body);
	return rc;
}

int mx_gmail_label_create(struct mx_gmail *g, const char *name,
			  struct mx_gmail_label *out, struct mx_error *err)
{
	struct exchange x = {0};
	char *body = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (name == NULL || !mx_gmail_label_name_valid(name, strlen(name)))
		return mx_error_set(err, MX_ERR_INVAL,
				    "Gmail API users.labels.create: a label "
				    "name is 1 to %d bytes of UTF-8 without "
				    "control characters",
				    MX_GMAIL_LABEL_NAME_MAX);
	if ((rc = json_body(json_pack("{ssssss}", "name", name,
				      "labelListVisibility", "labelShow",
				      "messageListVisibility", "show"),
			    &body, err)) != MX_OK)
		return rc;
	rc = call(g, MX_GMAIL_LABELS_CREATE, USERS "/labels", body,
		  MX_GMAIL_JSON_MAX, false, &x, err);
	if (rc == MX_OK)
		rc = mx_gmail_parse_label(x.sink.body.data, x.sink.body.len,
					  out, err);
	mx_buf_free(&x.sink.body);
	free(body);
	return rc;
}

/* One request of mx_gmail_message_get_batch() for NIDS checked ids. */
static int get_batch_once(struct mx_gmail *g, const char *const *ids,
			  size_t nids, struct mx_gmail_batch_item *items,
			  struct mx_error *err)
{
	static const char what[] = "batch of users.messages.get";
	struct mx_buf body = {0}, ctype = {0};
	struct exchange x = {0};
	unsigned char rnd[12];
	char boundary[48], hex[2 * sizeof(rnd) + 1];
	int rc;

	/* A random boundary: ids cannot hold it, but it costs nothing. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return mx_error_set(err, MX_ERR_NOMEM, "Gmail API %s: no "
				    "random bytes for a boundary", what);
	mx_hex(rnd, sizeof(rnd), hex);
	snprintf(boundary, sizeof(boundary), "mxsync_batch_%s", hex);
	if (mx_gmail_batch_body(ids, nids, boundary, &body) != 0 ||
	    mx_buf_printf(&ctype, "multipart/mixed; boundary=%s",
			  boundary) != 0) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	rc = call_n(g, MX_GMAIL_MESSAGES_GET, nids, "/batch/gmail/v1",
		    body.data, ctype.data, MX_GMAIL_JSON_MAX, false, &x, err);
	if (rc == MX_OK)
		rc = mx_gmail_parse_batch(x.content_type, x.sink.body.data,
					  x.sink.body.len, ids, nids, items,
					  err);
out:
	mx_buf_free(&x.sink.body);
	mx_buf_free(&body);
	mx_buf_free(&ctype);
	return rc;
}

int mx_gmail_message_get_batch(struct mx_gmail *g, const char *const *ids,
			       size_t nids, struct mx_gmail_batch_item *items,
			       struct mx_error *err)
{
	static const char what[] = "batch of users.messages.get";
	struct mx_gmail_batch_item *again = NULL;
	const char *sub[MX_GMAIL_BATCH_MAX];
	size_t at[MX_GMAIL_BATCH_MAX];
	int rc;

	memset(items, 0, nids * sizeof(*items));
	if (nids < 1 || nids > MX_GMAIL_BATCH_MAX)
		return mx_error_set(err, MX_ERR_INVAL,
				    "Gmail API %s: %zu ids, not 1..%d", what,
				    nids, MX_GMAIL_BATCH_MAX);
	if ((rc = check_ids(what, "message id", ids, nids, err)) != MX_OK)
		return rc;
	rc = get_batch_once(g, ids, nids, items, err);
	/* A rate limit or a 5xx inside the batch is the item's, not the
	 * batch's: back off as for a single call, then ask again for those
	 * items only, in one batch (Google's batch guide). */
	for (unsigned attempt = 0; rc == MX_OK; attempt++) {
		int64_t after = -1;
		bool rate = false;
		uint32_t jitter = 0;
		uint64_t w, ra;
		size_t k = 0;

		for (size_t i = 0; i < nids; i++) {
			if (!items[i].retry)
				continue;
			rate |= items[i].rate;
			if (items[i].rate &&
			    mx_gmail_retry_after(items[i].retry_after,
						 mx_wall_s(), &ra) == 0 &&
			    (int64_t)ra > after)
				after = (int64_t)ra;
			at[k] = i;
			sub[k++] = ids[i];
		}
		if (k == 0 || attempt >= g->max_retries)
			break;
		if (again == NULL &&
		    (again = calloc(MX_GMAIL_BATCH_MAX, sizeof(*again))) == NULL) {
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
			break;
		}
		if (rate)
			mx_gmail_bucket_drain(&g->bucket, mx_now_ms());
		if (RAND_bytes((unsigned char *)&jitter, sizeof(jitter)) != 1)
			jitter = (uint32_t)mx_now_ms();
		w = mx_gmail_backoff_ms(attempt, after, g->max_backoff_ms,
					jitter);
		mx_debug("Gmail API %s: %zu of %zu items refused (%s), asking "
			 "again in %llu ms", what, k, nids,
			 rate ? "rate limit" : "server error",
			 (unsigned long long)w);
		if ((rc = wait_ms(g, w, "Gmail API backoff", err)) != MX_OK)
			break;
		if ((rc = get_batch_once(g, sub, k, again, err)) != MX_OK)
			break;
		for (size_t j = 0; j < k; j++) {
			mx_gmail_batch_free(&items[at[j]], 1);
			items[at[j]] = again[j];
		}
		memset(again, 0, MX_GMAIL_BATCH_MAX * sizeof(*again));
	}
	free(again);
	if (rc != MX_OK)
		mx_gmail_batch_free(items, nids);
	return rc;
}
