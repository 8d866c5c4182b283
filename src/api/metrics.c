/*
 * GET /v1/metrics: Prometheus text exposition format 0.0.4, admin token
 * only (it names every account).  The store's numbers are read through
 * the library at each scrape; the request counters and the latency
 * histogram live here, one slot a route of mx_api_routes, under m_mu.
 */
#include <string.h>
#include <time.h>

#include "account/account.h"
#include "api/api_int.h"
#include "events/events.h"
#include "send/outbox.h"

/* Upper bounds of the latency buckets, in seconds (1 ms ... 1 s; +Inf
 * is the count). */
static const double lat_le[API_LAT_BUCKETS] = {0.001, 0.005, 0.010, 0.025,
					       0.050, 0.100, 0.250, 1.000};
static const char *const lat_le_s[API_LAT_BUCKETS] = {
	"0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "1"};

int mx_api_metrics_init(struct mx_api *api)
{
	pthread_mutex_init(&api->m_mu, NULL);
	api->rstats = calloc(mx_api_nroutes, sizeof(*api->rstats));
	return api->rstats ? 0 : -1;
}

void mx_api_metrics_free(struct mx_api *api)
{
	free(api->rstats);
	api->rstats = NULL;
	pthread_mutex_destroy(&api->m_mu);
}

void mx_api_metrics_record(struct mx_api *api, const struct api_route *rt,
			   unsigned status, double secs)
{
	struct api_route_stats *s;
	size_t i = (size_t)(rt - mx_api_routes);
	unsigned cls = status / 100;

	if (api->rstats == NULL || i >= mx_api_nroutes || cls < 1 || cls > 5)
		return;
	pthread_mutex_lock(&api->m_mu);
	s = &api->rstats[i];
	s->codes[cls]++;
	/* Buckets are kept per bound, made cumulative when written. */
	for (size_t b = 0; b < API_LAT_BUCKETS; b++)
		if (secs <= lat_le[b]) {
			s->bucket[b]++;
			break;
		}
	s->count++;
	s->sum += secs;
	pthread_mutex_unlock(&api->m_mu);
}

void mx_api_prom_label(struct mx_buf *b, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\')
			mx_buf_puts(b, "\\\\");
		else if (*v == '"')
			mx_buf_puts(b, "\\\"");
		else if (*v == '\n')
			mx_buf_puts(b, "\\n");
		else
			mx_buf_append(b, v, 1);
	}
}

static void head(struct mx_buf *b, const char *name, const char *type,
		 const char *help)
{
	mx_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
		      type);
}

/* NAME{KEY="VALUE"} N */
static void sample1(struct mx_buf *b, const char *name, const char *key,
		    const char *value, unsigned long long n)
{
	mx_buf_printf(b, "%s{%s=\"", name, key);
	mx_api_prom_label(b, value);
	mx_buf_printf(b, "\"} %llu\n", n);
}

struct acct_row {
	const char *name;
	char state[32];
	int64_t last_success;
	size_t messages;
};

/* Per account: its state, last success and messages, read in one
 * transaction. */
static int store_rows(struct mx_api *api, const struct mx_account *v,
		      size_t n, struct acct_row *rows, unsigned *ob,
		      uint64_t *oldest, struct mx_error *err)
{
	struct mx_txn t;
	int rc;

	rc = mx_txn_begin(api->st, false, &t, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		struct mx_acctstate s;
		unsigned c[MX_OB_CANCELLED + 1] = {0};
		uint64_t *ids = NULL;

		rows[i].name = v[i].name ? v[i].name : "";
		rc = mx_acctstate_get(&t, v[i].id, &s, err);
		if (rc == MX_ERR_NOTFOUND) {
			strcpy(rows[i].state, "unknown");
		} else if (rc) {
			goto out;
		} else {
			snprintf(rows[i].state, sizeof(rows[i].state), "%s",
				 s.state);
			rows[i].last_success = s.last_success;
		}
		rc = mx_store_account_msgs(&t, v[i].id, &ids, &rows[i].messages,
					   err);
		free(ids);
		if (rc)
			goto out;
		rc = mx_outbox_counts(&t, v[i].id, c, err);
		if (rc)
			goto out;
		for (int k = 0; k <= MX_OB_CANCELLED; k++)
			ob[k] += c[k];
	}
	rc = mx_events_oldest(&t, oldest, err);
out:
	mx_txn_abort(&t);
	return rc;
}

static void accounts_part(struct mx_buf *b, const struct acct_row *rows,
			  size_t n)
{
	int64_t now = mx_wall_s();

	head(b, "mxsync_accounts", "gauge", "Accounts in each sync state "
	     "(unknown: the daemon has recorded none yet).");
	for (size_t i = 0; i < n; i++) {
		unsigned long long k = 0;
		bool first = true;

		/* Each state once, counted over all rows. */
		for (size_t j = 0; j < n; j++) {
			if (strcmp(rows[j].state, rows[i].state) != 0)
				continue;
			if (j < i)
				first = false;
			k++;
		}
		if (first)
			sample1(b, "mxsync_accounts", "state", rows[i].state, k);
	}
	head(b, "mxsync_account_sync_lag_seconds", "gauge", "Seconds since "
	     "the account's last successful sync (absent before the first).");
	for (size_t i = 0; i < n; i++)
		if (rows[i].last_success > 0)
			sample1(b, "mxsync_account_sync_lag_seconds", "account",
				rows[i].name,
				now > rows[i].last_success
					? (unsigned long long)(now -
							       rows[i].last_success)
					: 0);
	head(b, "mxsync_account_messages", "gauge",
	     "Messages stored for the account.");
	for (size_t i = 0; i < n; i++)
		sample1(b, "mxsync_account_messages", "account", rows[i].name,
			rows[i].messages);
}

static void requests_part(struct mx_api *api, struct mx_buf *b)
{
	head(b, "mxsync_api_requests_total", "counter", "API requests answered, "
	     "by route template and status class.");
	pthread_mutex_lock(&api->m_mu);
	for (size_t i = 0; i < mx_api_nroutes; i++)
		for (unsigned c = 1; c <= 5; c++)
			if (api->rstats[i].codes[c])
				mx_buf_printf(b, "mxsync_api_requests_total{route=\"%s\","
					      "code=\"%uxx\"} %llu\n",
					      mx_api_routes[i].path, c,
					      (unsigned long long)
						      api->rstats[i].codes[c]);
	head(b, "mxsync_api_request_duration_seconds", "histogram", "Time from "
	     "a whole request to its answer being ready, by route template.");
	for (size_t i = 0; i < mx_api_nroutes; i++) {
		const struct api_route_stats *s = &api->rstats[i];
		const char *p = mx_api_routes[i].path;
		unsigned long long cum = 0;

		if (s->count == 0)
			continue;
		for (size_t k = 0; k < API_LAT_BUCKETS; k++) {
			cum += s->bucket[k];
			mx_buf_printf(b, "mxsync_api_request_duration_seconds_bucket"
				      "{route=\"%s\",le=\"%s\"} %llu\n", p,
				      lat_le_s[k], cum);
		}
		mx_buf_printf(b, "mxsync_api_request_duration_seconds_bucket"
			      "{route=\"%s\",le=\"+Inf\"} %llu\n"
			      "mxsync_api_request_duration_seconds_sum"
			      "{route=\"%s\"} %.6f\n"
			      "mxsync_api_request_duration_seconds_count"
			      "{route=\"%s\"} %llu\n", p,
			      (unsigned long long)s->count, p, s->sum, p,
			      (unsigned long long)s->count);
	}
	pthread_mutex_unlock(&api->m_mu);
}

/* Per webhook endpoint (mxsync.conf's and the API's): events delivered
 * and failed attempts by this daemon's delivery thread, failures in a
 * row, and how far its cursor is behind the feed (LAST: the newest
 * event's id). */
static int webhooks_part(struct mx_api *api, struct mx_buf *b, uint64_t last,
			 struct mx_error *err)
{
	static const struct {
		const char *metric, *field, *type, *help;
	} m[] = {
		{"mxsync_webhook_delivered_total", "delivered", "counter",
		 "Events delivered to the endpoint since the daemon started."},
		{"mxsync_webhook_failures_total", "failures", "counter",
		 "Failed delivery attempts since the daemon started."},
		{"mxsync_webhook_consecutive_failures", "consecutive_failures",
		 "gauge", "Failed attempts since the last success."},
	};
	json_t *arr = NULL, *e;
	size_t i;

	if (mx_webhook_ep_list(api->st, &arr, err) != MX_OK)
		return err->code;
	for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
		head(b, m[k].metric, m[k].type, m[k].help);
		json_array_foreach(arr, i, e) {
			json_t *st = json_object_get(e, "status");

			sample1(b, m[k].metric, "endpoint",
				json_string_value(json_object_get(e, "name")),
				(unsigned long long)json_integer_value(
					json_object_get(st, m[k].field)));
		}
	}
	head(b, "mxsync_webhook_lag_events", "gauge",
	     "Events written after the endpoint's cursor (not yet delivered).");
	json_array_foreach(arr, i, e) {
		json_int_t cur = json_integer_value(
			json_object_get(json_object_get(e, "status"), "cursor"));

		sample1(b, "mxsync_webhook_lag_events", "endpoint",
			json_string_value(json_object_get(e, "name")),
			(unsigned long long)(last > (uint64_t)cur
						     ? last - (uint64_t)cur : 0));
	}
	json_decref(arr);
	return MX_OK;
}

void api_metrics(struct api_req *r)
{
	struct mx_account *v = NULL;
	struct acct_row *rows = NULL;
	struct mx_buf b = {0};
	struct mx_error err;
	unsigned ob[MX_OB_CANCELLED + 1] = {0};
	uint64_t last = 0, oldest = 0;
	size_t n = 0;
	char *s;

	if (!r->tok.admin) {
		api_error(r, 403, "forbidden", NULL, "Metrics need an admin "
			  "token.");
		return;
	}
	if (mx_account_list_all(r->api->st, &v, &n, &err) != MX_OK)
		goto fail;
	rows = calloc(n + 1, sizeof(*rows));
	if (rows == NULL) {
		mx_error_set(&err, MX_ERR_NOMEM, NULL);
		goto fail;
	}
	if (store_rows(r->api, v, n, rows, ob, &oldest, &err) != MX_OK ||
	    mx_events_last_id(r->api->st, &last, &err) != MX_OK)
		goto fail;
	accounts_part(&b, rows, n);
	head(&b, "mxsync_events_written_total", "counter",
	     "Events written to the feed (the id of the newest).");
	mx_buf_printf(&b, "mxsync_events_written_total %llu\n",
		      (unsigned long long)last);
	head(&b, "mxsync_events_oldest_retained", "gauge",
	     "Id of the oldest event the feed still holds.");
	mx_buf_printf(&b, "mxsync_events_oldest_retained %llu\n",
		      (unsigned long long)oldest);
	head(&b, "mxsync_outbox_entries", "gauge",
	     "Outbox entries in each state, all accounts.");
	for (int k = 0; k <= MX_OB_CANCELLED; k++)
		sample1(&b, "mxsync_outbox_entries", "state",
			mx_ob_state_name((enum mx_ob_state)k), ob[k]);
	if (webhooks_part(r->api, &b, last, &err) != MX_OK)
		goto fail;
	requests_part(r->api, &b);
	if (b.data == NULL) {
		mx_error_set(&err, MX_ERR_NOMEM, NULL);
		goto fail;
	}
	s = mx_buf_steal(&b);
	r->status = 200;
	r->resp = MHD_create_response_from_buffer(strlen(s), s,
						  MHD_RESPMEM_MUST_FREE);
	if (r->resp == NULL)
		free(s);
	api_header(r, "Content-Type", "text/plain; version=0.0.4; "
		   "charset=utf-8");
	goto out;
fail:
	api_fail(r, &err);
out:
	mx_buf_free(&b);
	free(rows);
	mx_accounts_free(v, n);
}
