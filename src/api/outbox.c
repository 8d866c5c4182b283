/*
 * /v1/outbox...: the mail queued by POST /v1/send (and by `mxsync send`)
 * of the accounts the caller may use, newest first; retry and cancel as
 * `mxsync outbox retry|cancel`.  An entry of an account the caller may
 * not use is 404 and never listed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account/account.h"
#include "api/api_int.h"
#include "send/outbox.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 500

static bool visible(const uint32_t *ids, size_t n, uint32_t account)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == account)
			return true;
	return false;
}

json_t *api_outbox_json(const struct mx_ob_entry *e, const char *account)
{
	json_t *o = mx_ob_entry_json(e, account);
	char hex[17];

	/* The API names messages by their 16-hex id; which process holds
	 * an entry is the daemon's business. */
	if (e->msg_id) {
		mx_msg_id_str(e->msg_id, hex);
		json_object_del(o, "msg");
		json_object_set_new(o, "message", json_string(hex));
	}
	json_object_del(o, "owner_pid");
	json_object_del(o, "owner_start");
	return o;
}

/* The name of account ID for the answer (NULL if it is gone). */
static char *account_name(struct api_req *r, uint32_t id)
{
	struct mx_account *v = NULL;
	struct mx_error err;
	size_t n = 0;
	char *name = NULL;

	if (mx_account_list_all(r->api->st, &v, &n, &err) != MX_OK)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id)
			name = mx_strdup(v[i].name);
	mx_accounts_free(v, n);
	return name;
}

void api_outbox_list(struct api_req *r)
{
	struct mx_ob_entry *v = NULL;
	struct mx_account *accts = NULL;
	struct mx_error err;
	uint64_t account = 0, limit = LIMIT_DEFAULT, after = 0;
	uint32_t *ids = NULL;
	size_t nids = 0, n = 0, nacct = 0, got = 0;
	const char *state = api_query(r, "state"), *cur = api_query(r, "cursor");
	int want = -1;
	json_t *arr;
	bool more = false;
	char cs[24];

	if (!api_q_u64(r, "account", 1, UINT32_MAX, &account) ||
	    !api_q_u64(r, "limit", 1, LIMIT_MAX, &limit))
		return;
	if (state) {
		for (int s = MX_OB_QUEUED; s <= MX_OB_CANCELLED; s++)
			if (strcmp(state, mx_ob_state_name(s)) == 0)
				want = s;
		if (want < 0) {
			api_bad_param(r, "state", "'state' must be queued, "
				      "sending, sent, failed or cancelled.");
			return;
		}
	}
	if (cur && (cur[0] == '0' ||
		    mx_parse_u64(cur, 1, INT64_MAX, &after) != 0)) {
		api_bad_param(r, "cursor", "'cursor' must be a next_cursor "
			      "value of an earlier page.");
		return;
	}
	if (!api_visible_accounts(r, &ids, &nids))
		return;
	if (mx_outbox_list(r->api->st, (uint32_t)account, &v, &n, &err) !=
		    MX_OK ||
	    mx_account_list_all(r->api->st, &accts, &nacct, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	arr = json_array();
	/* The list is oldest first: walk it backwards. */
	for (size_t i = n; i-- > 0;) {
		const struct mx_ob_entry *e = &v[i];
		const char *an = NULL;

		if ((cur && e->id >= after) || !visible(ids, nids, e->account_id) ||
		    (want >= 0 && (int)e->state != want))
			continue;
		if (got == limit) {
			more = true;
			break;
		}
		for (size_t j = 0; j < nacct; j++)
			if (accts[j].id == e->account_id)
				an = accts[j].name;
		json_array_append_new(arr, api_outbox_json(e, an));
		after = e->id;
		got++;
	}
	snprintf(cs, sizeof(cs), "%llu", (unsigned long long)after);
	api_reply_json(r, 200, json_pack("{s:o,s:o}", "entries", arr,
					 "next_cursor",
					 more ? json_string(cs) : json_null()));
out:
	mx_accounts_free(accts, nacct);
	mx_ob_entries_free(v, n);
	free(ids);
}

/* The path's entry, if it belongs to an account the caller may use
 * (else 404 answered, false). */
static bool load(struct api_req *r, struct mx_ob_entry *e)
{
	struct mx_error err;
	uint32_t *ids = NULL;
	size_t nids = 0;
	int rc;

	memset(e, 0, sizeof(*e));
	if (!api_visible_accounts(r, &ids, &nids))
		return false;
	rc = mx_outbox_get(r->api->st, r->id, e, &err);
	if (rc == MX_OK && !visible(ids, nids, e->account_id)) {
		mx_ob_entry_free(e);
		memset(e, 0, sizeof(*e));
		rc = MX_ERR_NOTFOUND;
	}
	free(ids);
	if (rc == MX_ERR_NOTFOUND)
		api_error(r, 404, "not_found", NULL, "No outbox entry %llu.",
			  (unsigned long long)r->id);
	else if (rc)
		api_fail(r, &err);
	return rc == MX_OK;
}

static void reply(struct api_req *r, unsigned code)
{
	struct mx_ob_entry e;
	char *an;

	if (!load(r, &e))
		return;
	an = account_name(r, e.account_id);
	api_reply_json(r, code, api_outbox_json(&e, an));
	free(an);
	mx_ob_entry_free(&e);
}

void api_outbox_get(struct api_req *r)
{
	reply(r, 200);
}

/* Retry or cancel: the library refuses an entry in another state with
 * MX_ERR_INVAL, which is a conflict with its state here. */
static void act(struct api_req *r, bool retry)
{
	struct mx_ob_entry e;
	struct mx_error err;
	uint32_t account;
	int rc;

	if (!load(r, &e))
		return;
	account = e.account_id;
	mx_ob_entry_free(&e);
	rc = retry ? mx_outbox_retry(r->api->st, r->id, &err)
		   : mx_outbox_cancel(r->api->st, r->id, &err);
	if (rc == MX_ERR_INVAL) {
		api_error(r, 409, "conflict", NULL, "%s.", err.detail);
		return;
	}
	if (rc) {
		api_fail(r, &err);
		return;
	}
	if (retry)
		api_kick(r, MX_API_KICK_OUTBOX, account);
	reply(r, retry ? 202 : 200);
}

void api_outbox_retry(struct api_req *r)
{
	act(r, true);
}

void api_outbox_cancel(struct api_req *r)
{
	act(r, false);
}
