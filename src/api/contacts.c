/*
 * /v1/contacts...: the CRM's contacts (doc/crm.md) and their timelines.
 * Any token may read contacts; changing them is for admin tokens (the
 * CRM's backend pushes them).  A timeline lists only messages of the
 * accounts the caller may use.
 */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "crm/contacts.h"
#include "crm/timeline.h"

#define LIMIT_MAX 500

void api_contacts_list(struct api_req *r)
{
	const char *cur = api_query(r, "cursor");
	uint64_t limit = 50;
	struct mx_error err;
	struct mx_txn t;
	json_t *arr, *last;
	const char *next = NULL;

	if (!api_q_u64(r, "limit", 1, LIMIT_MAX, &limit))
		return;
	if (cur && (strlen(cur) == 0 || strlen(cur) > MX_CONTACT_ID_MAX)) {
		api_bad_param(r, "cursor", "'cursor' must be a next_cursor "
			      "value of an earlier page.");
		return;
	}
	if (!api_read_begin(r, &t))
		return;
	arr = json_array();
	/* one more than asked: whether there is a next page */
	if (mx_contact_list(&t, cur, (size_t)limit + 1, arr, &err) != MX_OK) {
		mx_txn_abort(&t);
		json_decref(arr);
		api_fail(r, &err);
		return;
	}
	mx_txn_abort(&t);
	if (json_array_size(arr) > limit) {
		json_array_remove(arr, json_array_size(arr) - 1);
		last = json_array_get(arr, json_array_size(arr) - 1);
		next = json_string_value(json_object_get(last, "id"));
	}
	api_reply_json(r, 200, json_pack("{s:o,s:s?}", "contacts", arr,
					 "next_cursor", next));
}

void api_contact_get(struct api_req *r)
{
	struct mx_error err;
	struct mx_txn t;
	json_t *c = NULL;
	int rc;

	if (!api_read_begin(r, &t))
		return;
	rc = mx_contact_get(&t, r->pv[0], &c, &err);
	mx_txn_abort(&t);
	if (rc != MX_OK) {
		api_fail(r, &err);
		return;
	}
	api_reply_json(r, 200, c);
}

void api_contact_put(struct api_req *r)
{
	static const char *const fields[] = {
		"id", "email", "emails", "created", "owner", "assigned",
		"categories", "company", "workspace", "deleted", NULL,
	};
	struct mx_error err;
	struct mx_txn t;
	json_t *body = NULL, *id, *stored = NULL;
	bool created = false;

	if (!api_body_json(r, &body))
		return;
	if (!api_fields_check(r, body, fields, NULL))
		goto out;
	id = json_object_get(body, "id");
	if (id && (!json_is_string(id) ||
		   strcmp(json_string_value(id), r->pv[0]) != 0)) {
		api_error(r, 422, "invalid_value",
			  json_pack("{s:s}", "field", "id"),
			  "Field 'id' must be the id in the path (or absent).");
		goto out;
	}
	json_object_set_new(body, "id", json_string(r->pv[0]));
	if (mx_contact_upsert(r->api->st, body, &created, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	if (!api_read_begin(r, &t))
		goto out;
	if (mx_contact_get(&t, r->pv[0], &stored, &err) != MX_OK) {
		mx_txn_abort(&t);
		api_fail(r, &err);
		goto out;
	}
	mx_txn_abort(&t);
	api_reply_json(r, created ? 201 : 200, stored);
out:
	json_decref(body);
}

void api_contact_delete(struct api_req *r)
{
	struct mx_error err;
	int hard = -1;

	if (!api_q_bool(r, "hard", &hard))
		return;
	if (mx_contact_delete(r->api->st, r->pv[0], hard == 1, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	api_reply_no_content(r);
}

void api_contact_timeline(struct api_req *r)
{
	const char *cur = api_query(r, "cursor");
	uint64_t limit = 50;
	struct mx_error err;
	struct mx_txn t;
	uint32_t *ids = NULL;
	size_t nids = 0;
	json_t *arr, *c = NULL;
	char *next = NULL;
	int rc;

	if (!api_q_u64(r, "limit", 1, LIMIT_MAX, &limit))
		return;
	if (!api_visible_accounts(r, &ids, &nids))
		return;
	if (!api_read_begin(r, &t)) {
		free(ids);
		return;
	}
	arr = json_array();
	rc = mx_contact_get(&t, r->pv[0], &c, &err);
	json_decref(c);
	if (rc == MX_OK)
		rc = mx_crm_timeline_of(&t, r->pv[0], ids, nids, cur,
					(size_t)limit, arr, &next, &err);
	mx_txn_abort(&t);
	free(ids);
	if (rc == MX_ERR_INVAL) {
		json_decref(arr);
		api_bad_param(r, "cursor", "'cursor' must be a next_cursor "
			      "value of an earlier page.");
		return;
	}
	if (rc != MX_OK) {
		json_decref(arr);
		api_fail(r, &err);
		return;
	}
	api_reply_json(r, 200, json_pack("{s:o,s:s?}", "timeline", arr,
					 "next_cursor", next));
	free(next);
}

void api_contacts_link(struct api_req *r)
{
	static const char *const fields[] = {"history", "create", NULL};
	struct mx_crm_opts o = {0};
	struct mx_crm_relink_stats s;
	struct mx_error err;
	json_t *body = NULL;
	int history = -1, create = -1;
	size_t n;

	/* an empty body is allowed: the defaults */
	api_body_raw(r, &n);
	if (n) {
		if (!api_body_json(r, &body))
			return;
		if (!api_fields_check(r, body, fields, NULL) ||
		    !api_j_bool(r, body, "history", false, &history) ||
		    !api_j_bool(r, body, "create", false, &create)) {
			json_decref(body);
			return;
		}
		json_decref(body);
	}
	o.history = history == 1;
	o.auto_create = create == 1;
	if (mx_crm_relink(r->api->st, 0, &o, &s, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	api_reply_json(r, 200, json_pack("{s:I,s:I,s:I}", "messages",
					 (json_int_t)s.messages, "linked",
					 (json_int_t)s.linked, "changed",
					 (json_int_t)s.changed));
}
