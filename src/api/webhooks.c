/*
 * /v1/webhooks...: webhook endpoints (admin tokens only: API_R_ADMIN).  Those made here
 * live in the store (src/lib/events/endpoints.c) and are delivered by
 * mxsyncd, which api_kick(MX_API_KICK_WEBHOOKS) tells to start, restart or
 * stop their threads; mxsync.conf's are listed read-only ("source":
 * "config": 409 conflict on a change).  A secret is write-only: the 201 of
 * a create that did not give one is the only answer that shows it.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "events/events.h"
#include "secrets/secrets.h"
#include "sync/query.h"

static const char *const wh_fields[] = {"url", "secret", "events", "enabled",
					NULL};

/* The library's unix times as RFC 3339, as the rest of the API. */
static void time_field(json_t *obj, const char *name)
{
	json_t *v = json_object_get(obj, name);
	char buf[32];

	if (!json_is_integer(v))
		return;
	mx_fmt_rfc3339((int64_t)json_integer_value(v), buf);
	json_object_set_new(obj, name, json_string(buf));
}

static json_t *view_out(json_t *view)
{
	json_t *st = json_object_get(view, "status");

	time_field(view, "created");
	time_field(view, "updated");
	time_field(st, "last_delivery");
	time_field(st, "next_attempt");
	return view;
}

/*
 * The body's fields into IN: url, secret (strings), events (an array of
 * event types, or null for all), enabled; CREATE: url is required.  Answers and returns false on a
 * body that is not a JSON object of those with the right types.  *TYPES_R
 * is the malloc()ed vector IN->types borrows (strings from *OBJ_R).
 */
static bool parse_body(struct api_req *r, bool create, json_t **obj_r,
		       struct mx_webhook_ep_in *in, const char ***types_r)
{
	json_t *obj = NULL, *ev;
	int enabled = -1;

	*obj_r = NULL;
	*types_r = NULL;
	memset(in, 0, sizeof(*in));
	in->enabled = -1;
	if (!api_body_json(r, &obj))
		return false;
	*obj_r = obj;
	if (!api_fields_check(r, obj, wh_fields, NULL) ||
	    !api_j_str(r, obj, "url", create, &in->url) ||
	    !api_j_str(r, obj, "secret", false, &in->secret) ||
	    !api_j_bool(r, obj, "enabled", false, &enabled))
		return false;
	in->enabled = enabled;
	ev = json_object_get(obj, "events");
	if (ev != NULL) {
		in->types_set = true;
		if (!json_is_null(ev) &&
		    !api_j_strv(r, obj, "events", false, types_r, &in->ntypes))
			return false;
		in->types = *types_r;
	}
	return true;
}

void api_webhooks_list(struct api_req *r)
{
	struct mx_error err;
	json_t *arr = NULL, *v;
	size_t i;

	if (mx_webhook_ep_list(r->api->st, &arr, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	json_array_foreach(arr, i, v)
		view_out(v);
	api_reply_json(r, 200, json_pack("{s:o}", "webhooks", arr));
}

void api_webhook_create(struct api_req *r)
{
	struct mx_webhook_ep_in in;
	struct mx_error err;
	const char **types = NULL;
	char *secret = NULL, loc[64];
	json_t *obj = NULL, *view = NULL;
	uint64_t id = 0;

	if (!parse_body(r, true, &obj, &in, &types))
		goto out;
	if (in.enabled < 0)
		in.enabled = 1;
	if (mx_webhook_ep_create(r->api->st, &in, &id, &secret, &err) !=
	    MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	api_kick(r, MX_API_KICK_WEBHOOKS, 0);
	if (mx_webhook_ep_get(r->api->st, id, &view, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	/* Shown once: only a generated secret, which the caller does not
	 * know yet. */
	if (secret)
		json_object_set_new(view, "secret", json_string(secret));
	snprintf(loc, sizeof(loc), "/v1/webhooks/%" PRIu64, id);
	api_reply_json(r, 201, view_out(view));
	api_header(r, "Location", loc);
out:
	mx_secret_free(secret);
	free(types);
	json_decref(obj);
}

void api_webhook_get(struct api_req *r)
{
	struct mx_error err;
	json_t *view = NULL;

	if (mx_webhook_ep_get(r->api->st, r->id, &view, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	api_reply_json(r, 200, view_out(view));
}

void api_webhook_update(struct api_req *r)
{
	struct mx_webhook_ep_in in;
	struct mx_error err;
	const char **types = NULL;
	json_t *obj = NULL, *view = NULL;

	if (!parse_body(r, false, &obj, &in, &types))
		goto out;
	if (mx_webhook_ep_update(r->api->st, r->id, &in, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	api_kick(r, MX_API_KICK_WEBHOOKS, 0);
	if (mx_webhook_ep_get(r->api->st, r->id, &view, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	api_reply_json(r, 200, view_out(view));
out:
	free(types);
	json_decref(obj);
}

void api_webhook_delete(struct api_req *r)
{
	struct mx_error err;

	if (mx_webhook_ep_delete(r->api->st, r->id, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	api_kick(r, MX_API_KICK_WEBHOOKS, 0);
	api_reply_no_content(r);
}
