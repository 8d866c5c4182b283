/*
 * /v1/events (long-poll) and /v1/events/stream (Server-Sent Events): the
 * event feed (src/lib/events) filtered to the accounts the caller may
 * use; the cursor still moves past the events it does not see.  Events
 * that name no account are shown to admin tokens only.
 *
 * Waiting: mx_api_notify() (the daemon calls it after every commit to
 * the store, its own and, through an inotify watch on data.mdb, those of
 * other processes: the CLI writes events too) bumps a generation counter
 * and wakes every waiter; a waiter re-reads the feed when the counter
 * moved, or after at most FALLBACK_MS in case a wake-up was missed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "events/events.h"

#define LIMIT_DEFAULT 100
#define LIMIT_MAX 500
#define WAIT_MAX 60
#define FALLBACK_MS 1000

/* FALLBACK_MS, or MX_API_POLL_MS from the environment: the test that
 * shows the daemon's watch alone wakes a long-poll (t-api-wake.sh) turns
 * the fallback off with a large value. */
static uint64_t fallback_ms(void)
{
	const char *s = getenv("MX_API_POLL_MS");
	uint64_t v;

	if (s && mx_parse_u64(s, 1, UINT32_MAX, &v) == 0)
		return v;
	return FALLBACK_MS;
}
#define KEEPALIVE_MS 15000
#define READ_ROUNDS 8 /* batches read a request while filtering */

static uint64_t gen_now(struct mx_api *api)
{
	uint64_t g;

	pthread_mutex_lock(&api->ev_mu);
	g = api->ev_gen;
	pthread_mutex_unlock(&api->ev_mu);
	return g;
}

/* Waits until the generation differs from SEEN, UNTIL_MS passes (the
 * mx_now_ms clock) or the API stops. */
static void wait_events(struct mx_api *api, uint64_t seen, uint64_t until_ms)
{
	struct timespec ts;
	uint64_t now = mx_now_ms();

	if (until_ms <= now)
		return;
	mx_deadline_mono(until_ms - now, &ts);
	pthread_mutex_lock(&api->ev_mu);
	while (api->ev_gen == seen && !atomic_load(&api->stopping))
		if (pthread_cond_timedwait(&api->ev_cv, &api->ev_mu, &ts) ==
		    ETIMEDOUT)
			break;
	pthread_mutex_unlock(&api->ev_mu);
}

static bool visible(const json_t *ev, const uint32_t *ids, size_t n,
		    bool admin)
{
	json_int_t a = json_integer_value(json_object_get(ev, "account"));

	if (a <= 0)
		return admin;
	for (size_t i = 0; i < n; i++)
		if (ids[i] == (uint64_t)a)
			return true;
	return false;
}

/*
 * Up to LIMIT events after *CURSOR the token may see, appended to OUT;
 * *CURSOR moves past every event read, seen or not.  MX_ERR_EXPIRED when
 * the cursor is older than the retained feed.
 */
static int read_visible(struct mx_api *api, const struct mx_apitoken *tok,
			uint64_t *cursor, size_t limit, json_t *out,
			bool *at_end, struct mx_error *err)
{
	uint32_t *ids = NULL;
	size_t nids = 0;
	int rc;

	*at_end = false;
	rc = api_visible_ids(api, tok, &ids, &nids, err);
	for (int round = 0; rc == MX_OK && round < READ_ROUNDS &&
			    json_array_size(out) < limit; round++) {
		json_t *arr = NULL, *ev;
		uint64_t last = *cursor;
		size_t i;

		rc = mx_events_read(api->st, *cursor,
				    limit - json_array_size(out), &arr, &last,
				    err);
		if (rc)
			break;
		json_array_foreach(arr, i, ev)
			if (visible(ev, ids, nids, tok->admin))
				json_array_append(out, ev);
		json_decref(arr);
		if (last == *cursor) {
			*at_end = true; /* the end of the feed */
			break;
		}
		*cursor = last;
	}
	free(ids);
	return rc;
}

/* The cursor to start from: AFTER, or just before the oldest retained
 * event. */
static bool start_cursor(struct api_req *r, const char *after, uint64_t *c)
{
	struct mx_error err;
	struct mx_txn t = {0};
	uint64_t oldest = 1;

	if (after) {
		if (mx_parse_u64(after, 0, INT64_MAX, c) < 0) {
			api_bad_param(r, "after", "'after' must be a "
				      "next_cursor value (a decimal number).");
			return false;
		}
		return true;
	}
	if (mx_txn_begin(r->api->st, false, &t, &err) != MX_OK ||
	    mx_events_oldest(&t, &oldest, &err) != MX_OK) {
		if (t.txn)
			mx_txn_abort(&t);
		api_fail(r, &err);
		return false;
	}
	mx_txn_abort(&t);
	*c = oldest ? oldest - 1 : 0;
	return true;
}

void api_events(struct api_req *r)
{
	struct mx_api *api = r->api;
	struct mx_error err;
	uint64_t cursor = 0, limit = LIMIT_DEFAULT, wait = 0, deadline;
	bool at_end;
	json_t *out;
	char cs[24];
	int rc;

	if (!api_q_u64(r, "limit", 1, LIMIT_MAX, &limit) ||
	    !api_q_u64(r, "wait", 0, WAIT_MAX, &wait) ||
	    !start_cursor(r, api_query(r, "after"), &cursor))
		return;
	deadline = mx_now_ms() + wait * 1000;
	out = json_array();
	for (;;) {
		uint64_t gen = gen_now(api), now;

		rc = read_visible(api, &r->tok, &cursor, (size_t)limit, out,
				  &at_end, &err);
		if (rc) {
			json_decref(out);
			api_fail(r, &err);
			return;
		}
		now = mx_now_ms();
		if (json_array_size(out) || now >= deadline ||
		    atomic_load(&api->stopping))
			break;
		/* Only events the caller may not see so far: read on
		 * before waiting. */
		if (!at_end)
			continue;
		wait_events(api, gen, now + fallback_ms() < deadline
					      ? now + fallback_ms() : deadline);
	}
	snprintf(cs, sizeof(cs), "%llu", (unsigned long long)cursor);
	api_reply_json(r, 200, json_pack("{s:o,s:s}", "events", out,
					 "next_cursor", cs));
}

/* ---- Server-Sent Events ---- */

struct sse {
	struct mx_api *api;
	struct mx_apitoken tok;  /* owned copy */
	uint64_t cursor;
	uint64_t next_keepalive;
	struct mx_buf out;
	size_t sent;             /* of out */
};

static void sse_fill(struct sse *s, bool *at_end)
{
	struct mx_error err;
	json_t *arr = json_array(), *ev;
	size_t i;

	if (read_visible(s->api, &s->tok, &s->cursor, LIMIT_MAX, arr,
			 at_end, &err) != MX_OK) {
		/* Said on the stream (a comment), then the stream ends: the
		 * client reconnects with Last-Event-ID and gets the error as
		 * an answer (410 when its cursor expired). */
		mx_buf_printf(&s->out, ": error: %s\n\n", err.detail);
		s->cursor = UINT64_MAX;
		json_decref(arr);
		return;
	}
	json_array_foreach(arr, i, ev) {
		char *d = json_dumps(ev, JSON_COMPACT);

		if (d == NULL)
			continue;
		mx_buf_printf(&s->out, "id: %lld\nevent: %s\ndata: %s\n\n",
			      (long long)json_integer_value(json_object_get(ev, "id")),
			      json_string_value(json_object_get(ev, "type"))
				      ? json_string_value(json_object_get(ev, "type"))
				      : "event",
			      d);
		free(d);
	}
	json_decref(arr);
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct sse *s = cls;

	while (s->sent == s->out.len) {
		uint64_t gen, now;
		bool at_end;

		mx_buf_reset(&s->out);
		s->sent = 0;
		if (atomic_load(&s->api->stopping) || s->cursor == UINT64_MAX)
			return MHD_CONTENT_READER_END_OF_STREAM;
		gen = gen_now(s->api);
		sse_fill(s, &at_end);
		if (s->out.len)
			break;
		if (!at_end)
			continue; /* read on past events the caller may not see */
		now = mx_now_ms();
		if (now >= s->next_keepalive) {
			mx_buf_puts(&s->out, ": keepalive\n\n");
			s->next_keepalive = now + KEEPALIVE_MS;
			break;
		}
		wait_events(s->api, gen, now + fallback_ms() < s->next_keepalive
						 ? now + fallback_ms()
						 : s->next_keepalive);
	}
	{
		size_t n = s->out.len - s->sent;

		if (n > max)
			n = max;
		memcpy(buf, s->out.data + s->sent, n);
		s->sent += n;
		return (ssize_t)n;
	}
}

static void sse_free(void *cls)
{
	struct sse *s = cls;

	mx_apitoken_free(&s->tok);
	mx_buf_free(&s->out);
	free(s);
}

void api_events_stream(struct api_req *r)
{
	const char *lei = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						      "Last-Event-ID");
	struct mx_error err;
	struct sse *s;
	json_t *probe = NULL;
	uint64_t cursor = 0, last;

	if (lei) {
		if (mx_parse_u64(lei, 0, INT64_MAX, &cursor) < 0) {
			api_error(r, 400, "bad_request",
				  json_pack("{s:s}", "header", "Last-Event-ID"),
				  "Last-Event-ID must be the id of an event.");
			return;
		}
	} else if (!start_cursor(r, api_query(r, "after"), &cursor)) {
		return;
	}
	/* An expired cursor is an answer (410), not a stream. */
	if (mx_events_read(r->api->st, cursor, 1, &probe, &last, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	json_decref(probe);
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		api_error(r, 500, "internal", NULL, "Out of memory.");
		return;
	}
	s->api = r->api;
	s->cursor = cursor;
	s->tok = r->tok;
	s->tok.user = mx_strdup(r->tok.user);
	s->tok.name = mx_strdup(r->tok.name);
	s->next_keepalive = mx_now_ms() + KEEPALIVE_MS;
	/* The first bytes go out at once: the client knows it is
	 * connected. */
	mx_buf_puts(&s->out, ": connected\n\n");
	r->status = 200;
	r->resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
						    sse_read, s, sse_free);
	if (r->resp == NULL) {
		sse_free(s);
		api_error(r, 500, "internal", NULL, "Out of memory.");
		return;
	}
	api_header(r, "Content-Type", "text/event-stream");
	api_header(r, "Cache-Control", "no-store");
}
