/*
 * /v1/accounts...: the accounts the caller may use.  One the caller may
 * not use answers 404, the same as one that does not exist.
 */
#include <string.h>

#include "account/account.h"
#include "api/api_int.h"
#include "events/events.h"
#include "sync/query.h"

void api_accounts_list(struct api_req *r)
{
	struct mx_account *v = NULL;
	struct mx_error err;
	size_t n = 0;
	json_t *arr;

	if (mx_account_list_all(r->api->st, &v, &n, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		if (api_may_use(r, &v[i]))
			json_array_append_new(arr, mx_account_json(&v[i]));
	mx_accounts_free(v, n);
	api_reply_json(r, 200, json_pack("{s:o}", "accounts", arr));
}

/* The path's account, loaded in T, or an answer (404) and false. */
static bool load(struct api_req *r, struct mx_txn *t, struct mx_account *a)
{
	struct mx_account *v = NULL;
	struct mx_error err;
	size_t n = 0;
	bool found = false;

	memset(a, 0, sizeof(*a));
	if (mx_store_account_list(t, &v, &n, &err) != MX_OK) {
		api_fail(r, &err);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (!found && v[i].id == r->id && api_may_use(r, &v[i])) {
			*a = v[i];
			memset(&v[i], 0, sizeof(v[i]));
			found = true;
		}
	mx_accounts_free(v, n);
	if (!found)
		api_error(r, 404, "not_found", NULL, "No account %llu.",
			  (unsigned long long)r->id);
	return found;
}

static bool begin(struct api_req *r, struct mx_txn *t)
{
	struct mx_error err;

	if (mx_txn_begin(r->api->st, false, t, &err) != MX_OK) {
		api_fail(r, &err);
		return false;
	}
	return true;
}

void api_account_get(struct api_req *r)
{
	struct mx_account a;
	struct mx_txn t;

	if (!begin(r, &t))
		return;
	if (load(r, &t, &a)) {
		api_reply_json(r, 200, mx_account_json(&a));
		mx_account_free(&a);
	}
	mx_txn_abort(&t);
}

static json_t *time_or_null(int64_t t)
{
	char buf[32];

	if (t <= 0)
		return json_null();
	mx_fmt_rfc3339(t, buf);
	return json_string(buf);
}

void api_account_state(struct api_req *r)
{
	struct mx_acctstate s;
	struct mx_account a;
	struct mx_error err;
	struct mx_txn t;
	uint64_t *ids = NULL;
	size_t n = 0;
	int rc;

	if (!begin(r, &t))
		return;
	if (!load(r, &t, &a))
		goto out;
	mx_account_free(&a);
	rc = mx_acctstate_get(&t, (uint32_t)r->id, &s, &err);
	if (rc == MX_ERR_NOTFOUND) {
		memset(&s, 0, sizeof(s));
		strcpy(s.state, "unknown");
	} else if (rc) {
		api_fail(r, &err);
		goto out;
	}
	if (mx_store_account_msgs(&t, (uint32_t)r->id, &ids, &n, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	free(ids);
	api_reply_json(r, 200, json_pack(
		"{s:s,s:o,s:o,s:o,s:I}", "state", s.state, "last_error",
		s.last_error[0] ? json_string(s.last_error) : json_null(),
		"last_success", time_or_null(s.last_success), "next_attempt",
		time_or_null(s.next_attempt), "messages", (json_int_t)n));
out:
	mx_txn_abort(&t);
}

void api_account_folders(struct api_req *r)
{
	struct mx_folder *f = NULL;
	struct mx_account a;
	struct mx_error err;
	struct mx_txn t;
	size_t nf = 0;
	json_t *arr = NULL;

	if (!begin(r, &t))
		return;
	if (!load(r, &t, &a))
		goto out;
	mx_account_free(&a);
	if (mx_store_folder_list(&t, (uint32_t)r->id, &f, &nf, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; i < nf; i++) {
		struct mx_loc *l = NULL;
		size_t nl = 0, unread = 0;

		if (f[i].gone)
			continue;
		if (mx_store_folder_locs(&t, f[i].id, &l, &nl, &err) != MX_OK) {
			json_decref(arr);
			api_fail(r, &err);
			goto out;
		}
		for (size_t k = 0; k < nl; k++)
			unread += !(l[k].flags & MX_FL_SEEN);
		mx_locs_free(l, nl);
		json_array_append_new(arr, json_pack(
			"{s:I,s:s,s:I,s:I}", "id", (json_int_t)f[i].id, "name",
			f[i].name, "messages", (json_int_t)nl, "unread",
			(json_int_t)unread));
	}
	api_reply_json(r, 200, json_pack("{s:o}", "folders", arr));
out:
	mx_folders_free(f, nf);
	mx_txn_abort(&t);
}

int api_visible_ids(struct mx_api *api, const struct mx_apitoken *tok,
		    uint32_t **ids_r, size_t *n_r, struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0, k = 0;
	uint32_t *ids;
	int rc;

	*ids_r = NULL;
	*n_r = 0;
	rc = mx_account_list_all(api->st, &v, &n, err);
	if (rc)
		return rc;
	ids = calloc(n + 1, sizeof(*ids));
	if (ids == NULL) {
		mx_accounts_free(v, n);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	for (size_t i = 0; i < n; i++)
		if (mx_api_may_use(&v[i], tok->user, tok->admin))
			ids[k++] = v[i].id;
	mx_accounts_free(v, n);
	*ids_r = ids;
	*n_r = k;
	return MX_OK;
}

bool api_visible_accounts(struct api_req *r, uint32_t **ids_r, size_t *n_r)
{
	struct mx_error err;

	if (api_visible_ids(r->api, &r->tok, ids_r, n_r, &err) != MX_OK) {
		api_fail(r, &err);
		return false;
	}
	return true;
}
