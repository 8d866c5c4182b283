/*
 * /v1/accounts...: the accounts the caller may use.  One the caller may
 * not use answers 404, the same as one that does not exist.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account/account.h"
#include "api/api_int.h"
#include "discover/discover.h"
#include "events/events.h"
#include "send/outbox.h"
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

void api_account_get(struct api_req *r)
{
	struct mx_account a;
	struct mx_txn t;

	if (!api_read_begin(r, &t))
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

	if (!api_read_begin(r, &t))
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

	if (!api_read_begin(r, &t))
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

/* ---- writes: create, update, delete, enable/disable, reconnect, sync,
 * permissions (doc/api.md, "Accounts") ---- */

/* The settings members (struct mx_account_settings), named as `account
 * edit`'s options are; "smtp" and "relay" are the URLs. */
#define SETTINGS_FIELDS \
	"email", "smtp", "smtp_password", "smtp_mechanism", "relay", \
	"relay_password", "saves_sent", "daily_limit", "quota_policy", \
	"max_attachment", "pop3_delete", "access", "owner", "allow"

static const char *const create_fields[] = {
	"name", "url", "provider", "discover", "password", "oauth", "auth",
	"display_name", "ca_file", "timeout", SETTINGS_FIELDS, NULL};
static const char *const oauth_fields[] = {
	"refresh_token", "client_id", "client_secret", "token_url", "scope",
	NULL};
static const char *const patch_fields[] = {
	"display_name", "password", "disabled", SETTINGS_FIELDS, NULL};
static const char *const perm_fields[] = {"owner", "access", "allow", NULL};

/* Text of the numbers and yes/no values of a settings body. */
struct settings_buf {
	char daily[24], max_attach[24];
	const char **allow; /* malloc()ed, strings borrowed */
};

/* The settings members of OBJ into S (strings borrowed from OBJ), or an
 * answer (400) and false. */
static bool settings_from_json(struct api_req *r, json_t *obj,
			       struct mx_account_settings *s,
			       struct settings_buf *b)
{
	int saves_sent, pop3_delete;
	uint64_t daily, max_attach;
	bool daily_set, max_set;

	if (!api_j_str(r, obj, "email", false, &s->email) ||
	    !api_j_str(r, obj, "smtp", false, &s->smtp_url) ||
	    !api_j_str(r, obj, "smtp_password", false, &s->smtp_password) ||
	    !api_j_str(r, obj, "smtp_mechanism", false, &s->smtp_mechanism) ||
	    !api_j_str(r, obj, "relay", false, &s->relay_url) ||
	    !api_j_str(r, obj, "relay_password", false, &s->relay_password) ||
	    !api_j_str(r, obj, "quota_policy", false, &s->quota_policy) ||
	    !api_j_str(r, obj, "access", false, &s->access) ||
	    !api_j_str(r, obj, "owner", false, &s->owner) ||
	    !api_j_bool(r, obj, "saves_sent", false, &saves_sent) ||
	    !api_j_bool(r, obj, "pop3_delete", false, &pop3_delete) ||
	    !api_j_u64(r, obj, "daily_limit", false, 0, 1000000, &daily,
		       &daily_set) ||
	    !api_j_u64(r, obj, "max_attachment", false, 1, (uint64_t)1 << 40,
		       &max_attach, &max_set) ||
	    !api_j_strv(r, obj, "allow", false, &b->allow, &s->nallow))
		return false;
	if (saves_sent >= 0)
		s->saves_sent = saves_sent ? "yes" : "no";
	if (pop3_delete >= 0)
		s->pop3_delete = pop3_delete ? "yes" : "no";
	if (daily_set) {
		snprintf(b->daily, sizeof(b->daily), "%llu",
			 (unsigned long long)daily);
		s->daily_limit = b->daily;
	}
	if (max_set) {
		snprintf(b->max_attach, sizeof(b->max_attach), "%llu",
			 (unsigned long long)max_attach);
		s->max_attach = b->max_attach;
	}
	s->allow = b->allow;
	s->allow_set = b->allow != NULL;
	return true;
}

static void empty_password(struct api_req *r)
{
	api_error(r, 400, "invalid_field", json_pack("{s:s}", "field",
						     "password"),
		  "Field 'password' must not be empty.");
}

/* Whether a setting that only admins may change is in OBJ. */
static bool has_permission_fields(json_t *obj)
{
	for (size_t i = 0; perm_fields[i]; i++)
		if (json_object_get(obj, perm_fields[i]))
			return true;
	return false;
}

/* The path's account, loaded (secrets included: never answered), or an
 * answer (404) and false. */
static bool load_path_account(struct api_req *r, struct mx_account *a)
{
	struct mx_txn t;
	bool ok;

	if (!api_read_begin(r, &t))
		return false;
	ok = load(r, &t, a);
	mx_txn_abort(&t);
	return ok;
}

static bool is_owner(struct api_req *r, const struct mx_account *a)
{
	return r->tok.admin || (a->owner && strcmp(a->owner, r->tok.user) == 0);
}

/* The owner or an admin, else 403 answered (the caller may use A, so it
 * may know it exists). */
static bool require_owner(struct api_req *r, const struct mx_account *a,
			  const char *what)
{
	if (is_owner(r, a))
		return true;
	api_error(r, 403, "forbidden", NULL, "Only the account's owner or an "
		  "admin may %s.", what);
	return false;
}

/* A refused account setting: the library says MX_ERR_INSECURE (a
 * token URL over plain HTTP) or MX_ERR_CONFIG (a file that is not
 * there) where the CLI's operator reads a configuration problem; to an
 * API client it is a bad value of its request, not an upstream error. */
static void fail_setting(struct api_req *r, const struct mx_error *err)
{
	if (err->code == MX_ERR_INSECURE || err->code == MX_ERR_CONFIG)
		api_error(r, 422, "invalid_value", NULL, "%s.", err->detail);
	else
		api_fail(r, err);
}

/* Answers STATUS with account ID as it is now in the store. */
static void reply_account(struct api_req *r, unsigned status, uint32_t id)
{
	struct mx_account a;
	struct mx_error err;
	char loc[48];

	if (mx_account_load_id(r->api->st, id, &a, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	api_reply_json(r, status, mx_account_json(&a));
	mx_account_free(&a);
	if (status == 201) {
		snprintf(loc, sizeof(loc), "/v1/accounts/%u", id);
		api_header(r, "Location", loc);
	}
}

/* Discovery for POST /v1/accounts {"email", "discover": true}: the
 * incoming URL (IMAP preferred) into *IN_R and, unless given, the SMTP
 * URL into *SMTP_R (both malloc()ed); or an answer and false. */
static bool discover_urls(struct api_req *r, const char *email,
			  const char *ca_file, char **in_r, char **smtp_r)
{
	struct mx_discover_opts o = {0};
	struct mx_discovery d = {0};
	const struct mx_disc_server *in, *out;
	struct mx_error err;
	bool ok = false;

	/* The same test hooks as `mxsync account add` (t-discover.sh). */
	o.dns_server = getenv("MXSYNC_DNS_SERVER");
	o.connect_to = getenv("MXSYNC_DISCOVER_CONNECT_TO");
	o.ca_file = ca_file;
	if (mx_discover(email, &o, &d, &err) != MX_OK) {
		if (err.code == MX_ERR_NOTFOUND)
			api_error(r, 422, "invalid_value",
				  json_pack("{s:s}", "field", "discover"),
				  "%s.", err.detail);
		else
			api_fail(r, &err);
		goto out;
	}
	in = mx_discovery_best(&d, "imap");
	if (in == NULL)
		in = mx_discovery_best(&d, "pop3");
	out = mx_discovery_best(&d, "smtp");
	if (in == NULL) {
		api_error(r, 422, "invalid_value",
			  json_pack("{s:s}", "field", "discover"),
			  "No IMAP or POP3 server found for %s (only SMTP): "
			  "give url.", email);
		goto out;
	}
	*in_r = mx_disc_url(in, email);
	if (out && smtp_r)
		*smtp_r = mx_disc_url(out, email);
	if (*in_r == NULL || (out && smtp_r && *smtp_r == NULL)) {
		api_error(r, 500, "internal", NULL, "Out of memory.");
		goto out;
	}
	ok = true;
out:
	mx_discovery_free(&d);
	return ok;
}

void api_account_create(struct api_req *r)
{
	struct mx_account_params p = {0};
	struct mx_account_settings s = {0};
	struct settings_buf sb = {0};
	struct mx_preset_fill pf = {0};
	struct mx_account a = {0};
	struct mx_error err;
	json_t *body = NULL, *oauth;
	const char *url = NULL, *provider = NULL, *auth = NULL;
	char *disc_in = NULL, *disc_smtp = NULL;
	int discover = -1;
	uint64_t timeout = 0;
	bool pending;

	if (!api_body_json(r, &body))
		return;
	if (!api_fields_check(r, body, create_fields, NULL) ||
	    !api_j_str(r, body, "name", true, &p.name) ||
	    !api_j_str(r, body, "url", false, &url) ||
	    !api_j_str(r, body, "provider", false, &provider) ||
	    !api_j_bool(r, body, "discover", false, &discover) ||
	    !api_j_str(r, body, "password", false, &p.password) ||
	    !api_j_str(r, body, "auth", false, &auth) ||
	    !api_j_str(r, body, "display_name", false, &p.display_name) ||
	    !api_j_str(r, body, "ca_file", false, &p.ca_file) ||
	    !api_j_u64(r, body, "timeout", false, 1, 3600, &timeout, NULL) ||
	    !settings_from_json(r, body, &s, &sb))
		goto out;
	p.timeout_s = (int)timeout;
	if (p.password && p.password[0] == '\0') {
		empty_password(r);
		goto out;
	}
	oauth = json_object_get(body, "oauth");
	if (oauth && !json_is_object(oauth)) {
		api_error(r, 400, "invalid_field",
			  json_pack("{s:s}", "field", "oauth"),
			  "Field 'oauth' must be an object {refresh_token, "
			  "client_id, client_secret, token_url, scope}.");
		goto out;
	}
	if (oauth && (!api_fields_check(r, oauth, oauth_fields, "oauth.") ||
		      !api_j_str(r, oauth, "refresh_token", false,
				 &p.refresh_token) ||
		      !api_j_str(r, oauth, "client_id", false,
				 &p.oauth_client_id) ||
		      !api_j_str(r, oauth, "client_secret", false,
				 &p.oauth_client_secret) ||
		      !api_j_str(r, oauth, "token_url", false,
				 &p.oauth_token_url) ||
		      !api_j_str(r, oauth, "scope", false, &p.oauth_scope)))
		goto out;
	/* Where the server comes from: a URL or a preset (both: the preset
	 * fills in what the URL does not say, as account add --provider
	 * --imap), or discovery. */
	if ((url || provider) == (discover == 1)) {
		api_error(r, 400, "bad_request", NULL, "Give url, provider "
			  "(with email; a url then overrides its server) or "
			  "discover: true (with email).");
		goto out;
	}
	if ((provider || discover == 1) && s.email == NULL) {
		api_error(r, 400, "missing_field",
			  json_pack("{s:s}", "field", "email"),
			  "Field 'email' is required with %s.",
			  provider ? "provider" : "discover");
		goto out;
	}
	/* Credentials: a password, an OAuth2 refresh token, or none yet
	 * ("auth": "oauth_pending": the browser flow brings the token). */
	if (auth && strcmp(auth, "oauth_pending") != 0) {
		api_error(r, 400, "invalid_field",
			  json_pack("{s:s}", "field", "auth"),
			  "Field 'auth' takes only \"oauth_pending\" (a "
			  "password or oauth.refresh_token need none).");
		goto out;
	}
	pending = auth != NULL;
	if ((p.password != NULL) + (p.refresh_token != NULL) + pending != 1) {
		api_error(r, 400, "bad_request", NULL, "Give exactly one of "
			  "password, oauth.refresh_token or auth: "
			  "\"oauth_pending\".");
		goto out;
	}
	if (oauth && p.refresh_token == NULL && !pending) {
		api_error(r, 400, "missing_field",
			  json_pack("{s:s}", "field", "oauth.refresh_token"),
			  "Field 'oauth.refresh_token' is required (or auth: "
			  "\"oauth_pending\").");
		goto out;
	}
	p.imap_url = url;
	if (provider && mx_account_preset_fill(provider, s.email, pending, &p,
					       &s, &pf, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	/* Discovery last: it goes to the network, and a request that is
	 * refused anyway should not wait for it. */
	if (discover == 1) {
		if (!discover_urls(r, s.email, p.ca_file, &disc_in,
				   s.smtp_url ? NULL : &disc_smtp))
			goto out;
		p.imap_url = disc_in;
		if (disc_smtp)
			s.smtp_url = disc_smtp;
	}
	if (mx_account_add_with(r->api->st, &p, &s, &err) != MX_OK) {
		fail_setting(r, &err);
		goto out;
	}
	if (mx_account_load(r->api->st, p.name, &a, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	api_kick(r, MX_API_KICK_ACCOUNTS, a.id);
	reply_account(r, 201, a.id);
out:
	mx_account_free(&a);
	mx_preset_fill_free(&pf);
	free(disc_in);
	free(disc_smtp);
	free(sb.allow);
	json_decref(body);
}

/* Account A changed as C says, then answered 200 with its new record. */
static void change_and_reply(struct api_req *r, const struct mx_account *a,
			     struct mx_account_change *c)
{
	struct mx_error err;

	c->id = a->id;
	if (mx_account_edit(r->api->st, a->name, mx_account_apply_change, c,
			    &err) != MX_OK) {
		fail_setting(r, &err);
		return;
	}
	/* New credentials, server or state: the daemon restarts it. */
	api_kick(r, MX_API_KICK_ACCOUNTS, a->id);
	reply_account(r, 200, a->id);
}

void api_account_update(struct api_req *r)
{
	struct mx_account_change c = {.disabled = -1};
	struct mx_account_settings s = {0};
	struct settings_buf sb = {0};
	struct mx_account a;
	json_t *body = NULL;
	int disabled = -1;

	if (!load_path_account(r, &a))
		return;
	if (!require_owner(r, &a, "change its settings") ||
	    !api_body_json(r, &body))
		goto out;
	if (!api_fields_check(r, body, patch_fields, NULL) ||
	    !api_j_str(r, body, "display_name", false, &c.display_name) ||
	    !api_j_str(r, body, "password", false, &c.password) ||
	    !api_j_bool(r, body, "disabled", false, &disabled) ||
	    !settings_from_json(r, body, &s, &sb))
		goto out;
	if (c.password && c.password[0] == '\0') {
		empty_password(r);
		goto out;
	}
	if (has_permission_fields(body) && !r->tok.admin) {
		api_error(r, 403, "forbidden", NULL, "Only an admin may change "
			  "an account's owner, access or allowed users.");
		goto out;
	}
	c.disabled = disabled;
	c.settings = &s;
	change_and_reply(r, &a, &c);
out:
	free(sb.allow);
	json_decref(body);
	mx_account_free(&a);
}

static void set_disabled(struct api_req *r, int disabled)
{
	struct mx_account_change c = {.disabled = disabled};
	struct mx_account a;

	if (!load_path_account(r, &a))
		return;
	if (require_owner(r, &a, disabled ? "disable it" : "enable it"))
		change_and_reply(r, &a, &c);
	mx_account_free(&a);
}

void api_account_enable(struct api_req *r)
{
	set_disabled(r, 0);
}

void api_account_disable(struct api_req *r)
{
	set_disabled(r, 1);
}

void api_account_delete(struct api_req *r)
{
	struct mx_account a;
	struct mx_error err;
	int purge = -1;

	if (!api_q_bool(r, "purge", &purge) || !load_path_account(r, &a))
		return;
	if (!r->tok.admin) {
		api_error(r, 403, "forbidden", NULL, "Only an admin may remove "
			  "an account.");
	} else if (mx_account_remove(r->api->st, a.name, purge == 1,
				     mx_outbox_account_removed,
				     &err) != MX_OK) {
		api_fail(r, &err);
	} else {
		api_kick(r, MX_API_KICK_ACCOUNTS, a.id);
		api_reply_no_content(r);
	}
	mx_account_free(&a);
}

/* POST .../reconnect and .../sync: anyone who may use the account. */
static void kick_account(struct api_req *r, enum mx_api_kick what,
			 const char *action)
{
	struct mx_account a;

	if (!load_path_account(r, &a))
		return;
	if (a.disabled) {
		api_error(r, 409, "conflict", NULL, "Account %s is disabled: "
			  "enable it first.", a.name);
	} else {
		api_kick(r, what, a.id);
		api_reply_json(r, 202, json_pack("{s:I,s:s}", "account",
						 (json_int_t)a.id, "action",
						 action));
	}
	mx_account_free(&a);
}

void api_account_reconnect(struct api_req *r)
{
	kick_account(r, MX_API_KICK_RECONNECT, "reconnect");
}

void api_account_sync(struct api_req *r)
{
	kick_account(r, MX_API_KICK_SYNC, "sync");
}

static json_t *permissions_json(const struct mx_account *a)
{
	static const char *const acc[] = {"owner", "selected", "all"};
	json_t *al = json_array();

	for (size_t k = 0; k < a->nallowed; k++)
		json_array_append_new(al, json_string(a->allowed[k]));
	return json_pack("{s:o,s:s,s:o}", "owner",
			 a->owner ? json_string(a->owner) : json_null(),
			 "access", acc[a->access], "allow", al);
}

void api_account_permissions_get(struct api_req *r)
{
	struct mx_account a;

	if (!load_path_account(r, &a))
		return;
	api_reply_json(r, 200, permissions_json(&a));
	mx_account_free(&a);
}

void api_account_permissions_put(struct api_req *r)
{
	struct mx_account_change c = {.disabled = -1};
	struct mx_account_settings s = {0};
	struct mx_account a, now;
	struct mx_error err;
	json_t *body = NULL, *owner;
	const char **allow = NULL;

	if (!load_path_account(r, &a))
		return;
	if (!r->tok.admin) {
		api_error(r, 403, "forbidden", NULL, "Only an admin may change "
			  "an account's permissions.");
		goto out;
	}
	if (!api_body_json(r, &body))
		goto out;
	/* The whole set: an absent owner or allow list is none. */
	owner = json_object_get(body, "owner");
	if (!api_fields_check(r, body, perm_fields, NULL) ||
	    !api_j_str(r, body, "access", true, &s.access) ||
	    (owner && !json_is_null(owner) &&
	     !api_j_str(r, body, "owner", false, &s.owner)) ||
	    !api_j_strv(r, body, "allow", false, &allow, &s.nallow))
		goto out;
	if (s.owner == NULL)
		s.owner = "";
	s.allow = allow;
	s.allow_set = true;
	c.settings = &s;
	c.id = a.id;
	if (mx_account_edit(r->api->st, a.name, mx_account_apply_change, &c,
			    &err) != MX_OK ||
	    mx_account_load_id(r->api->st, a.id, &now, &err) != MX_OK) {
		api_fail(r, &err);
		goto out;
	}
	api_reply_json(r, 200, permissions_json(&now));
	mx_account_free(&now);
out:
	free(allow);
	json_decref(body);
	mx_account_free(&a);
}
