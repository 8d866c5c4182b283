/*
 * Webhook delivery: one thread and one libcurl easy handle per endpoint.
 *
 * The thread reads the feed from the endpoint's cursor (MX_DB_WEBHOOKS,
 * key = endpoint name, u64 big-endian id of the last event the endpoint
 * acknowledged), POSTs one event at a time and moves the cursor after
 * each 2xx.  Delivery is therefore at-least-once: a crash between the
 * receiver's answer and the cursor commit sends that one event again.
 *
 * Waiting (nothing new, or backoff after a failure) is a timed wait on a
 * condition variable, so mx_webhook_notify() and mx_webhook_stop() end it
 * at once; a request in flight is aborted by the transfer callback, which
 * libcurl calls at least about once a second even on a silent connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "events/events.h"
#include "events/types.h"
#include "net/net.h"
#include "events/events_int.h"
#include "util/http.h"

#define FETCH_BATCH 100
/* Other processes (mxsync sync) append events without telling us: look
 * for new ones this often even when nobody calls mx_webhook_notify(). */
#define IDLE_POLL_MS 500
#define DEFAULT_TIMEOUT_S 10
#define DEFAULT_MAX_BACKOFF_S 300

struct mx_webhook {
	struct mx_store *st;     /* foreign */
	char *name;              /* owned */
	char *url;               /* owned */
	char *secret;            /* owned; never logged */
	char **types;            /* owned, NULL = all */
	size_t ntypes;
	int timeout_s;
	int max_backoff_s;
	CURL *curl;              /* owned; used by the thread only */
	char curl_err[CURL_ERROR_SIZE];
	long retry_after;        /* seconds from the last response, -1 none */
	char resp[200];          /* start of the last response body */
	size_t resp_len;

	uint64_t cursor;         /* thread: last event handled */
	uint64_t saved;          /* thread: last cursor persisted */
	unsigned attempt;        /* thread: failed attempts in a row */

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* waits on CLOCK_MONOTONIC */
	bool stopping;           /* under mu */
	bool kicked;             /* under mu: mx_webhook_notify() */
	atomic_bool abort_io;    /* read by the transfer callback */
	struct mx_webhook_status status; /* under mu */
	struct mx_webhook *reg_next; /* under reg_mu */
};

/* The running endpoints of this process, for mx_webhook_status_of(): the
 * HTTP API shows their delivery status.  Lock order: reg_mu, then an
 * endpoint's mu. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct mx_webhook *reg_head;

void mx_webhook_sign(const char *secret, int64_t t, const char *body,
		     size_t len, char out[65])
{
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	unsigned char md[EVP_MAX_MD_SIZE];
	char prefix[32];
	size_t mdlen = 0;
	int n;

	out[0] = '\0';
	n = snprintf(prefix, sizeof(prefix), "%" PRId64 ".", t);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	/* Streamed in two pieces: the body is not copied to prepend the
	 * time stamp. */
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (ctx = EVP_MAC_CTX_new(mac)) == NULL ||
	    !EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret),
			  params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)prefix, (size_t)n) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)body, len) ||
	    !EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) || mdlen != 32)
		goto out;
	mx_hex(md, 32, out);
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
}

/* ---- configuration checks ---- */

/* https:// anywhere, http:// only to this machine: the signature proves
 * who sent an event but hides nothing of the mail metadata in it. */
static int check_url(const char *name, const char *url, struct mx_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = MX_OK;

	if (u == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		rc = mx_error_set(err, MX_ERR_PARSE,
				  "webhook %s: malformed URL", name);
		goto out;
	}
	/* The scheme before the host: "file:///x" has no host, and "not
	 * file://" says more than "malformed". */
	if (strcasecmp(scheme, "https") != 0 &&
	    strcasecmp(scheme, "http") != 0) {
		rc = mx_error_set(err, MX_ERR_CONFIG,
				  "webhook %s: URL scheme must be https:// "
				  "(or http:// to a loopback address), not "
				  "%s://", name, scheme);
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		rc = mx_error_set(err, MX_ERR_PARSE,
				  "webhook %s: malformed URL (no host)", name);
		goto out;
	}
	if (strcasecmp(scheme, "https") == 0)
		goto out;
	if (!mx_net_is_loopback(host))
		rc = mx_error_set(err, MX_ERR_INSECURE,
				  "webhook %s: refusing plain http:// to %s: "
				  "use https:// (http:// is allowed only for "
				  "loopback addresses)", name, host);
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* A filter naming a type not in mx_event_types (events/types.h) would
 * silently match nothing. */
static int check_types(const struct mx_webhook_cfg *cfg, struct mx_error *err)
{
	const size_t ntypes = MX_EVENT_NTYPES;
	char valid[512] = "";
	size_t i, k, off = 0;

	for (i = 0; cfg->types && i < cfg->ntypes; i++) {
		for (k = 0; k < ntypes; k++)
			if (strcmp(cfg->types[i], mx_event_types[k]) == 0)
				break;
		if (k < ntypes)
			continue;
		for (k = 0; k < ntypes && off < sizeof(valid); k++)
			off += (size_t)snprintf(valid + off, sizeof(valid) - off,
						"%s%s", k ? ", " : "",
						mx_event_types[k]);
		return mx_error_set(err, MX_ERR_CONFIG,
				    "webhook %s: unknown event type \"%s\" "
				    "(valid: %s)", cfg->name, cfg->types[i],
				    valid);
	}
	return MX_OK;
}

bool mx_webhook_api_name(const char *name)
{
	uint64_t id;

	return name[0] == '#' && name[1] >= '1' && name[1] <= '9' &&
	       mx_parse_u64(name + 1, 1, UINT64_MAX, &id) == 0;
}

int mx_webhook_check(const struct mx_webhook_cfg *cfg, struct mx_error *err)
{
	int rc;

	if (cfg->name == NULL ||
	    !(mx_name_valid(cfg->name) || mx_webhook_api_name(cfg->name)))
		return mx_error_set(err, MX_ERR_INVAL,
				    "webhook name must be 1 to 64 of "
				    "[A-Za-z0-9._-]");
	if (cfg->url == NULL || cfg->secret == NULL || cfg->secret[0] == '\0')
		return mx_error_set(err, MX_ERR_CONFIG,
				    "webhook %s: a URL and a secret are "
				    "required", cfg->name);
	rc = check_url(cfg->name, cfg->url, err);
	return rc ? rc : check_types(cfg, err);
}

/* ---- cursor ---- */

struct cursor_put {
	const char *name;
	uint64_t id;
};

static int cursor_put_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	const struct cursor_put *c = vctx;
	uint8_t be[8];

	mx_put_be64(be, c->id);
	return mx_db_put(t, MX_DB_WEBHOOKS, c->name, strlen(c->name), be, 8,
			 0, err);
}

static int cursor_save(struct mx_store *st, const char *name, uint64_t id,
		       struct mx_error *err)
{
	struct cursor_put c = {name, id};

	return mx_store_write(st, cursor_put_fn, &c, err);
}

/* The persisted cursor; the first time, the newest event, persisted at
 * once so that retention keeps what this endpoint has not seen from now
 * on, and a restart before the first delivery starts from the same
 * place. */
static int cursor_load(struct mx_store *st, const char *name,
		       uint64_t *id_r, struct mx_error *err)
{
	struct mx_txn t;
	MDB_val v;
	int rc;

	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_db_get(&t, MX_DB_WEBHOOKS, name, strlen(name), &v, err);
	if (rc == MX_OK && v.mv_size != 8)
		rc = mx_error_set(err, MX_ERR_STORE,
				  "webhook %s: corrupt cursor", name);
	else if (rc == MX_OK)
		*id_r = mx_get_be64(v.mv_data);
	mx_txn_abort(&t);
	if (rc != MX_ERR_NOTFOUND)
		return rc;
	rc = mx_events_last_id(st, id_r, err);
	if (rc == MX_OK)
		rc = cursor_save(st, name, *id_r, err);
	if (rc == MX_OK)
		mx_info("webhook %s: no cursor yet, starting after the newest "
			"event (%" PRIu64 ")", name, *id_r);
	return rc;
}

/* ---- thread helpers ---- */

static bool is_stopping(struct mx_webhook *wh)
{
	bool s;

	pthread_mutex_lock(&wh->mu);
	s = wh->stopping;
	pthread_mutex_unlock(&wh->mu);
	return s;
}

/*
 * Waits up to MS milliseconds; true if the endpoint is stopping.
 * mx_webhook_notify() ends only an idle wait (NOTIFY_WAKES): new events
 * must not cut short the backoff of an endpoint that is failing.
 */
static bool wait_ms(struct mx_webhook *wh, uint64_t ms, bool notify_wakes)
{
	struct timespec ts;
	bool stop;

	mx_deadline_mono(ms, &ts);
	pthread_mutex_lock(&wh->mu);
	while (!wh->stopping && !(notify_wakes && wh->kicked))
		if (pthread_cond_timedwait(&wh->cv, &wh->mu, &ts) == ETIMEDOUT)
			break;
	if (notify_wakes)
		wh->kicked = false;
	stop = wh->stopping;
	pthread_mutex_unlock(&wh->mu);
	return stop;
}

static void set_cursor(struct mx_webhook *wh, uint64_t id)
{
	wh->cursor = id;
	pthread_mutex_lock(&wh->mu);
	wh->status.cursor = id;
	pthread_mutex_unlock(&wh->mu);
}

static void persist_cursor(struct mx_webhook *wh)
{
	struct mx_error err;

	if (wh->saved == wh->cursor)
		return;
	mx_error_clear(&err);
	if (cursor_save(wh->st, wh->name, wh->cursor, &err) != MX_OK) {
		/* The delivery stands; after a restart the events since the
		 * last saved cursor are sent again (at-least-once). */
		mx_log(MX_LOG_ERROR, "webhook %s: saving cursor %" PRIu64
		       ": %s", wh->name, wh->cursor, err.detail);
		pthread_mutex_lock(&wh->mu);
		snprintf(wh->status.last_error, sizeof(wh->status.last_error),
			 "saving cursor: %.200s", err.detail);
		pthread_mutex_unlock(&wh->mu);
		return;
	}
	wh->saved = wh->cursor;
}

static void note_failure(struct mx_webhook *wh, int64_t next_attempt,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void note_failure(struct mx_webhook *wh, int64_t next_attempt,
			 const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&wh->mu);
	wh->status.failures++;
	wh->status.consecutive++;
	wh->status.next_attempt = next_attempt;
	va_start(ap, fmt);
	vsnprintf(wh->status.last_error, sizeof(wh->status.last_error), fmt,
		  ap);
	va_end(ap);
	pthread_mutex_unlock(&wh->mu);
}

/* Exponential backoff from 1 s, doubling up to max_backoff_s, +-20%
 * jitter so that endpoints failing together do not retry in step. */
static uint64_t backoff_ms(const struct mx_webhook *wh)
{
	unsigned shift = wh->attempt > 0 ? wh->attempt - 1 : 0;
	uint64_t base = (uint64_t)wh->max_backoff_s;
	uint32_t r = 0;

	if (shift < 31 && ((uint64_t)1 << shift) < base)
		base = (uint64_t)1 << shift;
	if (RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
		r = (uint32_t)rand();
	/* factor in [0.8, 1.2] */
	return base * 1000 * (800 + r % 401) / 1000;
}

/* ---- libcurl callbacks ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct mx_webhook *wh = ctx;
	size_t len = size * n, room = sizeof(wh->resp) - 1 - wh->resp_len;

	/* Kept for the error message of a refused event; rest discarded. */
	if (room > len)
		room = len;
	memcpy(wh->resp + wh->resp_len, p, room);
	wh->resp_len += room;
	wh->resp[wh->resp_len] = '\0';
	return len;
}

static long parse_retry_after(const char *v, size_t len)
{
	char buf[64];
	long secs = 0;
	size_t i;

	while (len && (*v == ' ' || *v == '\t')) {
		v++;
		len--;
	}
	while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' ||
		       v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	for (i = 0; i < len && buf[i] >= '0' && buf[i] <= '9'; i++)
		if (secs < 1000000)
			secs = secs * 10 + (buf[i] - '0');
	if (i == len)
		return secs;
	/* HTTP-date form */
	{
		time_t when = curl_getdate(buf, NULL);
		int64_t now = mx_wall_s();

		if (when == (time_t)-1)
			return -1;
		return (int64_t)when > now ? (long)((int64_t)when - now) : 0;
	}
}

static size_t on_header(char *p, size_t size, size_t n, void *ctx)
{
	struct mx_webhook *wh = ctx;
	size_t len = size * n;
	static const char name[] = "retry-after:";

	/* A new status line (after 100 Continue, say): a new response. */
	if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
		wh->retry_after = -1;
	else if (len > sizeof(name) - 1 &&
		 strncasecmp(p, name, sizeof(name) - 1) == 0)
		wh->retry_after = parse_retry_after(p + sizeof(name) - 1,
						    len - (sizeof(name) - 1));
	return len;
}

static int on_progress(void *ctx, curl_off_t dlt, curl_off_t dln,
		       curl_off_t ult, curl_off_t uln)
{
	struct mx_webhook *wh = ctx;

	(void)dlt;
	(void)dln;
	(void)ult;
	(void)uln;
	return atomic_load(&wh->abort_io) ? 1 : 0;
}

static int curl_setup(struct mx_webhook *wh, const struct mx_webhook_cfg *cfg,
		      struct mx_error *err)
{
	CURL *c = curl_easy_init();
	CURLcode cc = CURLE_OK;

	if (c == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "webhook %s: curl",
				    wh->name);
	wh->curl = c;
#define SET(opt, val)                                                    \
	do {                                                             \
		if (cc == CURLE_OK)                                      \
			cc = curl_easy_setopt(c, opt, val);              \
	} while (0)
	SET(CURLOPT_URL, wh->url);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT, (long)wh->timeout_s);
	SET(CURLOPT_CONNECTTIMEOUT, (long)wh->timeout_s);
	/* Verification stays on (libcurl's default); say so anyway so that
	 * nobody flips it by accident. */
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (cfg->ca_file)
		SET(CURLOPT_CAINFO, cfg->ca_file);
	SET(CURLOPT_POST, 1L);
	SET(CURLOPT_USERAGENT, "mxsync/" MX_VERSION_STRING);
	SET(CURLOPT_ERRORBUFFER, wh->curl_err);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, wh);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, wh);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, wh);
#undef SET
	if (cc != CURLE_OK)
		return mx_error_set(err, MX_ERR_CONFIG, "webhook %s: %s",
				    wh->name, curl_easy_strerror(cc));
	return MX_OK;
}

/* ---- delivery ---- */

enum post_result { POST_OK, POST_REFUSED, POST_RETRY, POST_STOPPED };

/* One attempt.  On failure, DETAIL says why (no secret in it: the URL,
 * which may carry credentials, is not quoted either). */
static enum post_result post_event(struct mx_webhook *wh, uint64_t id,
				   const char *body, size_t len,
				   char *detail, size_t dcap)
{
	struct curl_slist *hdrs = NULL, *h;
	char sig[65], idh[64], sigh[160];
	const char *lines[] = {
		"Content-Type: application/json",
		"Expect:", /* no 100-continue: one round trip per event */
		idh, sigh,
	};
	int64_t t = mx_wall_s();
	long code = 0;
	CURLcode cc;
	enum post_result res;

	mx_webhook_sign(wh->secret, t, body, len, sig);
	if (sig[0] == '\0') {
		snprintf(detail, dcap, "event %" PRIu64 ": signing failed", id);
		return POST_RETRY;
	}
	snprintf(idh, sizeof(idh), "X-Mxsync-Event-Id: %" PRIu64, id);
	snprintf(sigh, sizeof(sigh), "X-Mxsync-Signature: t=%" PRId64 ",v1=%s",
		 t, sig);
	for (size_t i = 0; i < MX_ARRAY_SIZE(lines); i++) {
		h = curl_slist_append(hdrs, lines[i]);
		if (h == NULL) {
			curl_slist_free_all(hdrs);
			snprintf(detail, dcap, "out of memory");
			return POST_RETRY;
		}
		hdrs = h;
	}
	wh->retry_after = -1;
	wh->resp_len = 0;
	wh->resp[0] = '\0';
	wh->curl_err[0] = '\0';
	curl_easy_setopt(wh->curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(wh->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(wh->curl, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)len);
	cc = curl_easy_perform(wh->curl);
	curl_easy_setopt(wh->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (cc == CURLE_ABORTED_BY_CALLBACK && atomic_load(&wh->abort_io))
		return POST_STOPPED;
	if (cc != CURLE_OK) {
		/* The error buffer is the more specific text when set. */
		snprintf(detail, dcap, "event %" PRIu64 ": %.200s", id,
			 wh->curl_err[0] ? wh->curl_err
					 : curl_easy_strerror(cc));
		return POST_RETRY;
	}
	curl_easy_getinfo(wh->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code >= 200 && code < 300)
		return POST_OK;
	/* 408 and 429 are about timing, not about the event. */
	if (code >= 400 && code < 500 && code != 408 && code != 429)
		res = POST_REFUSED;
	else
		res = POST_RETRY; /* 5xx, 429, and a redirect we won't follow */
	snprintf(detail, dcap, "event %" PRIu64 ": HTTP %ld%s%.120s", id, code,
		 wh->resp_len ? ": " : "", wh->resp);
	return res;
}

static bool type_wanted(const struct mx_webhook *wh, const char *type)
{
	if (wh->types == NULL)
		return true;
	for (size_t i = 0; i < wh->ntypes; i++)
		if (type && strcmp(wh->types[i], type) == 0)
			return true;
	return false;
}

/* Delivers EV until acknowledged or refused; false when stopping. */
static bool deliver(struct mx_webhook *wh, json_t *ev)
{
	json_t *jid = json_object_get(ev, "id");
	uint64_t id = json_is_integer(jid) ? (uint64_t)json_integer_value(jid)
					   : 0;
	char *body;
	size_t len;
	bool go_on = true;

	if (id <= wh->cursor) /* corrupt record: never go backwards */
		return true;
	if (!type_wanted(wh, json_string_value(json_object_get(ev, "type")))) {
		set_cursor(wh, id);
		return true;
	}
	/* Same serialization as mx_store_event(): the stored text. */
	body = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (body == NULL)
		return !wait_ms(wh, 1000, false);
	len = strlen(body);
	for (;;) {
		char detail[256];
		enum post_result r;
		uint64_t delay;

		mx_trace(MX_TRACE_WEBHOOK, "webhook %s: POST event %" PRIu64
			 " (%zu bytes)", wh->name, id, len);
		r = post_event(wh, id, body, len, detail, sizeof(detail));
		mx_trace(MX_TRACE_WEBHOOK, "webhook %s: event %" PRIu64 ": %s",
			 wh->name, id, r == POST_OK ? "acknowledged" : detail);
		if (r == POST_STOPPED) {
			go_on = false;
			break;
		}
		if (r == POST_OK) {
			wh->attempt = 0;
			wh->cursor = id;
			persist_cursor(wh);
			/* One snapshot: never the new cursor with the old
			 * count. */
			pthread_mutex_lock(&wh->mu);
			wh->status.cursor = id;
			wh->status.delivered++;
			wh->status.consecutive = 0;
			wh->status.last_delivery = mx_wall_s();
			wh->status.next_attempt = 0;
			pthread_mutex_unlock(&wh->mu);
			break;
		}
		if (r == POST_REFUSED) {
			mx_warn("webhook %s: %s; event skipped", wh->name,
				detail);
			note_failure(wh, 0, "%s (skipped)", detail);
			wh->attempt = 0;
			set_cursor(wh, id);
			persist_cursor(wh);
			break;
		}
		wh->attempt++;
		if (wh->retry_after >= 0) {
			long ra = wh->retry_after;

			if (ra > wh->max_backoff_s)
				ra = wh->max_backoff_s;
			delay = (uint64_t)(ra < 1 ? 1 : ra) * 1000;
		} else {
			delay = backoff_ms(wh);
		}
		mx_warn("webhook %s: %s; retrying in %.1f s", wh->name, detail,
			(double)delay / 1000.0);
		note_failure(wh, mx_wall_s() + (int64_t)((delay + 999) / 1000),
			     "%s", detail);
		if (wait_ms(wh, delay, false)) {
			go_on = false;
			break;
		}
	}
	free(body);
	return go_on;
}

/* The cursor fell behind retention: the events in between are gone. */
static void jump_expired(struct mx_webhook *wh, const struct mx_error *e)
{
	struct mx_error err;
	struct mx_txn t;
	uint64_t oldest = 0;
	int rc;

	mx_error_clear(&err);
	rc = mx_txn_begin(wh->st, false, &t, &err);
	if (rc == MX_OK) {
		rc = mx_events_oldest(&t, &oldest, &err);
		mx_txn_abort(&t);
	}
	if (rc != MX_OK) {
		note_failure(wh, 0, "%s", err.detail);
		return;
	}
	mx_log(MX_LOG_ERROR, "webhook %s: %s; events %" PRIu64 "..%" PRIu64
	       " were pruned before delivery, continuing from %" PRIu64
	       " (the receiver must resync)", wh->name, e->detail,
	       wh->cursor + 1, oldest - 1, oldest);
	note_failure(wh, 0, "%s; skipped to %" PRIu64, e->detail, oldest);
	set_cursor(wh, oldest - 1);
	persist_cursor(wh);
}

static void *wh_main(void *arg)
{
	struct mx_webhook *wh = arg;

	while (!is_stopping(wh)) {
		struct mx_error err;
		json_t *arr = NULL, *ev;
		size_t i;
		int rc;

		mx_error_clear(&err);
		rc = mx_events_read(wh->st, wh->cursor, FETCH_BATCH, &arr,
				    NULL, &err);
		if (rc == MX_ERR_EXPIRED) {
			jump_expired(wh, &err);
			continue;
		}
		if (rc != MX_OK) {
			uint64_t delay;

			wh->attempt++;
			delay = backoff_ms(wh);
			mx_log(MX_LOG_ERROR, "webhook %s: reading events: %s",
			       wh->name, err.detail);
			note_failure(wh, mx_wall_s() +
					 (int64_t)((delay + 999) / 1000),
				     "reading events: %s", err.detail);
			wait_ms(wh, delay, false);
			continue;
		}
		if (wh->attempt) { /* a read error is over */
			wh->attempt = 0;
			pthread_mutex_lock(&wh->mu);
			wh->status.next_attempt = 0;
			pthread_mutex_unlock(&wh->mu);
		}
		if (json_array_size(arr) == 0) {
			json_decref(arr);
			wait_ms(wh, IDLE_POLL_MS, true);
			continue;
		}
		json_array_foreach(arr, i, ev) {
			if (!deliver(wh, ev))
				break;
		}
		json_decref(arr);
		/* Events filtered out by type move the cursor too. */
		persist_cursor(wh);
	}
	return NULL;
}

/* ---- public ---- */

static void wh_free(struct mx_webhook *wh)
{
	if (wh == NULL)
		return;
	if (wh->curl)
		curl_easy_cleanup(wh->curl);
	for (size_t i = 0; wh->types && i < wh->ntypes; i++)
		free(wh->types[i]);
	free(wh->types);
	if (wh->secret) /* do not leave the key in freed memory */
		OPENSSL_cleanse(wh->secret, strlen(wh->secret));
	free(wh->secret);
	free(wh->url);
	free(wh->name);
	pthread_mutex_destroy(&wh->mu);
	pthread_cond_destroy(&wh->cv);
	free(wh);
}

int mx_webhook_start(struct mx_store *st, const struct mx_webhook_cfg *cfg,
		     struct mx_webhook **wh_r, struct mx_error *err)
{
	struct mx_webhook *wh = NULL;
	int rc;

	*wh_r = NULL;
	rc = mx_webhook_check(cfg, err);
	if (rc)
		return rc;
	rc = mx_http_global_init(err);
	if (rc)
		return rc;
	wh = calloc(1, sizeof(*wh));
	if (wh == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "webhook %s: out of "
				    "memory", cfg->name);
	pthread_mutex_init(&wh->mu, NULL);
	mx_cond_init_mono(&wh->cv);
	atomic_init(&wh->abort_io, false);
	wh->st = st;
	wh->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
	wh->max_backoff_s = cfg->max_backoff_s > 0 ? cfg->max_backoff_s
						   : DEFAULT_MAX_BACKOFF_S;
	wh->name = strdup(cfg->name);
	wh->url = strdup(cfg->url);
	wh->secret = strdup(cfg->secret);
	if (wh->name == NULL || wh->url == NULL || wh->secret == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM,
				  "webhook %s: out of memory", cfg->name);
		goto fail;
	}
	/* A non-NULL list with no entries is taken as "all", like NULL:
	 * an endpoint that wants nothing would be a configuration slip. */
	if (cfg->types && cfg->ntypes) {
		wh->types = calloc(cfg->ntypes, sizeof(*wh->types));
		if (wh->types == NULL) {
			rc = mx_error_set(err, MX_ERR_NOMEM,
					  "webhook %s: out of memory", cfg->name);
			goto fail;
		}
		wh->ntypes = cfg->ntypes;
		for (size_t i = 0; i < cfg->ntypes; i++)
			if ((wh->types[i] = mx_strdup(cfg->types[i])) == NULL) {
				rc = mx_error_set(err, MX_ERR_NOMEM,
						  "webhook %s: out of memory",
						  cfg->name);
				goto fail;
			}
	}
	rc = curl_setup(wh, cfg, err);
	if (rc)
		goto fail;
	rc = cursor_load(st, wh->name, &wh->cursor, err);
	if (rc) {
		/* Every error of this function names the webhook. */
		mx_error_prefix(err, "webhook %s", cfg->name);
		goto fail;
	}
	wh->saved = wh->cursor;
	wh->status.cursor = wh->cursor;
	if (pthread_create(&wh->thread, NULL, wh_main, wh) != 0) {
		rc = mx_error_set(err, MX_ERR_NOMEM,
				  "webhook %s: cannot start thread", wh->name);
		goto fail;
	}
	wh->thread_started = true;
	pthread_mutex_lock(&reg_mu);
	wh->reg_next = reg_head;
	reg_head = wh;
	pthread_mutex_unlock(&reg_mu);
	*wh_r = wh;
	return MX_OK;
fail:
	wh_free(wh);
	return rc;
}

void mx_webhook_notify(struct mx_webhook *wh)
{
	if (wh == NULL)
		return;
	pthread_mutex_lock(&wh->mu);
	wh->kicked = true;
	pthread_cond_signal(&wh->cv);
	pthread_mutex_unlock(&wh->mu);
}

void mx_webhook_status(struct mx_webhook *wh, struct mx_webhook_status *s)
{
	pthread_mutex_lock(&wh->mu);
	*s = wh->status;
	pthread_mutex_unlock(&wh->mu);
}

bool mx_webhook_status_of(const struct mx_store *st, const char *name,
			  struct mx_webhook_status *s)
{
	bool found = false;

	pthread_mutex_lock(&reg_mu);
	for (struct mx_webhook *wh = reg_head; wh; wh = wh->reg_next)
		if (wh->st == st && strcmp(wh->name, name) == 0) {
			mx_webhook_status(wh, s);
			found = true;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	return found;
}

void mx_webhook_stop(struct mx_webhook **whp)
{
	struct mx_webhook *wh;

	if (whp == NULL || *whp == NULL)
		return;
	wh = *whp;
	pthread_mutex_lock(&reg_mu);
	for (struct mx_webhook **pp = &reg_head; *pp; pp = &(*pp)->reg_next)
		if (*pp == wh) {
			*pp = wh->reg_next;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	pthread_mutex_lock(&wh->mu);
	wh->stopping = true;
	atomic_store(&wh->abort_io, true);
	pthread_cond_broadcast(&wh->cv);
	pthread_mutex_unlock(&wh->mu);
	if (wh->thread_started)
		pthread_join(wh->thread, NULL);
	wh_free(wh);
	*whp = NULL;
}
