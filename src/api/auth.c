/*
 * Who is asking: the bearer token, the rate limit and the permission
 * rule (mx_api_may_use, src/lib/users/tokens.h).
 */
#include <string.h>
#include <strings.h>

#include "api/api_int.h"

bool mx_api_rate_take(struct mx_api *api, uint64_t token_id, uint64_t now_ms,
		      unsigned *retry_s_r)
{
	double rate = api->cfg.rate_limit, burst = 2.0 * rate;
	struct api_bucket *b = NULL;
	bool ok;

	if (api->cfg.rate_limit == 0)
		return true;
	pthread_mutex_lock(&api->rl_mu);
	for (size_t i = 0; i < api->nbuckets; i++)
		if (api->buckets[i].token_id == token_id)
			b = &api->buckets[i];
	if (b == NULL) {
		if (api->nbuckets == api->capbuckets) {
			size_t cap = api->capbuckets ? api->capbuckets * 2 : 16;
			struct api_bucket *nb = realloc(api->buckets,
							cap * sizeof(*nb));

			if (nb == NULL) {
				pthread_mutex_unlock(&api->rl_mu);
				return true; /* no memory to count with */
			}
			api->buckets = nb;
			api->capbuckets = cap;
		}
		b = &api->buckets[api->nbuckets++];
		b->token_id = token_id;
		b->tokens = burst;
		b->last_ms = now_ms;
	}
	if (now_ms > b->last_ms) {
		b->tokens += rate * (double)(now_ms - b->last_ms) / 1000.0;
		if (b->tokens > burst)
			b->tokens = burst;
		b->last_ms = now_ms;
	}
	ok = b->tokens >= 1.0;
	if (ok) {
		b->tokens -= 1.0;
	} else {
		double wait_s = (1.0 - b->tokens) / rate;

		*retry_s_r = (unsigned)wait_s + 1;
	}
	pthread_mutex_unlock(&api->rl_mu);
	return ok;
}

bool api_authenticate(struct api_req *r)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	struct mx_error err;
	unsigned retry = 1;
	char ra[16];
	int rc;

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
		api_error(r, 401, "unauthorized", NULL,
			  "A bearer token is required (Authorization: Bearer "
			  "mxs_...).");
		return false;
	}
	h += 7;
	while (*h == ' ')
		h++;
	rc = mx_apitoken_verify(r->api->st, h, mx_wall_s(), &r->tok, &err);
	if (rc == MX_ERR_AUTH) {
		api_error(r, 401, "unauthorized", NULL, "The token is %s.",
			  strcmp(err.detail, "token expired") == 0
				  ? "expired" : "unknown or revoked");
		return false;
	}
	if (rc) {
		api_fail(r, &err);
		return false;
	}
	r->authed = true;
	if (!mx_api_rate_take(r->api, r->tok.id, mx_now_ms(), &retry)) {
		snprintf(ra, sizeof(ra), "%u", retry);
		api_error(r, 429, "rate_limited",
			  json_pack("{s:i}", "retry_after", (int)retry),
			  "More than %u requests a second with this token.",
			  r->api->cfg.rate_limit);
		api_header(r, "Retry-After", ra);
		return false;
	}
	return true;
}

bool api_may_use(struct api_req *r, const struct mx_account *a)
{
	return r->authed && mx_api_may_use(a, r->tok.user, r->tok.admin);
}
