/* Accounts: adding (with the kept mail of a removed account of that name
 * and server re-attached), loading, listing, saving and editing. */
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include <jansson.h>

#include "account/account.h"
#include "secrets/secrets.h"

/* Kept mail of a removed account with A's name and server: A takes over
 * its id, so the folders, locations and records are A's again and the
 * next sync remaps rather than duplicates.  Another server's kept mail
 * stays kept (`account purge NAME` deletes it). */
static int reattach_kept(struct mx_txn *t, struct mx_account *a,
			 struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	MDB_val nv;
	int rc;

	rc = mx_db_get(t, MX_DB_ACCOUNT_NAMES, a->name, strlen(a->name), &nv,
		       err);
	if (rc == MX_OK)
		return mx_error_set(err, MX_ERR_EXISTS,
				    "account '%s' already exists", a->name);
	if (rc != MX_ERR_NOTFOUND)
		return rc;
	mx_error_clear(err);
	rc = mx_store_kept_list(t, a->name, &v, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n; i++)
		if (v[i].proto == a->proto && v[i].port == a->port &&
		    v[i].host && strcasecmp(v[i].host, a->host) == 0 &&
		    v[i].user && strcmp(v[i].user, a->user) == 0) {
			a->id = v[i].id;
			rc = mx_store_kept_del(t, v[i].id, err);
			break;
		}
	mx_accounts_free(v, n);
	return rc;
}

static int add_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct mx_account *a = ctx;
	int rc;

	a->id = 0; /* a MAP_FULL retry must assign it again */
	rc = mx_db_next_id(t, "next_account_generation", &a->generation, err);
	if (rc == MX_OK)
		rc = reattach_kept(t, a, err);
	if (rc == MX_OK)
		rc = mx_store_account_put(t, a, err);
	return rc;
}

enum mx_err mx_account_add(struct mx_store *st,
			   const struct mx_account_params *p,
			   struct mx_error *err)
{
	return (enum mx_err)mx_account_add_with(st, p, NULL, err);
}

int mx_account_add_with(struct mx_store *st,
			const struct mx_account_params *p,
			const struct mx_account_settings *set,
			struct mx_error *err)
{
	struct mx_account a = {0};
	int rc;

	mx_error_clear(err);
	if (p->name == NULL || !mx_name_valid(p->name))
		return mx_error_set(err, MX_ERR_INVAL,
				    "bad account name '%s': use 1-64 of "
				    "A-Z a-z 0-9 . _ -",
				    p->name ? p->name : "");
	if (p->imap_url == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "missing --imap URL");
	rc = mx_account_parse_url(p->imap_url, &a, err);
	if (rc)
		goto out;
	if ((p->password && !mx_utf8_valid_str(p->password)) ||
	    (p->password_file && !mx_utf8_valid_str(p->password_file)) ||
	    (p->ca_file && !mx_utf8_valid_str(p->ca_file)) ||
	    !mx_utf8_valid_str(p->imap_url) || !mx_utf8_valid_str(a.user)) {
		rc = mx_error_set(err, MX_ERR_INVAL,
				  "password, URL and file names must be UTF-8 "
				  "(use --password-file for other bytes)");
		goto out;
	}
	a.name = strdup(p->name);
	a.imap_url = strdup(p->imap_url);
	a.password = mx_strdup(p->password);
	a.password_file = mx_strdup(p->password_file);
	a.ca_file = mx_strdup(p->ca_file);
	a.insecure_plaintext = p->insecure_plaintext;
	a.timeout_s = p->timeout_s;
	a.refresh_token = mx_strdup(p->refresh_token);
	a.oauth_token_url = mx_strdup(p->oauth_token_url);
	a.oauth_client_id = mx_strdup(p->oauth_client_id);
	a.client_secret = mx_strdup(p->oauth_client_secret);
	a.oauth_scope = mx_strdup(p->oauth_scope);
	a.display_name = mx_strdup(p->display_name);
	/* A token endpoint without a refresh token is an account waiting
	 * for the browser flow (POST /v1/accounts/{id}/oauth/start). */
	if (p->refresh_token && p->oauth_token_url == NULL) {
		rc = mx_error_set(err, MX_ERR_INVAL,
				  "OAuth2 needs both a refresh token and the "
				  "token endpoint URL");
		goto out;
	}
	a.created = mx_wall_s();
	if (p->insecure_plaintext && a.tls == MX_TLS_STARTTLS)
		a.tls = MX_TLS_NONE; /* explicit opt-in: no STARTTLS */
	rc = mx_account_check_local(&a, NULL, err);
	if (rc == MX_OK)
		rc = mx_account_apply_settings(&a, set, err);
	if (rc == MX_OK)
		rc = mx_store_write(st, add_fn, &a, err);
out:
	mx_account_free(&a);
	return rc;
}

int mx_account_load(struct mx_store *st, const char *name,
		    struct mx_account *a, struct mx_error *err)
{
	struct mx_txn t;
	int rc;

	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_get(&t, name, a, err);
	mx_txn_abort(&t);
	return rc;
}

/* An SMTP endpoint for listings: where, never the password. */
static void smtp_json(json_t *o, const char *key,
		      const struct mx_smtp_server *sv)
{
	json_t *j;

	if (sv->host == NULL)
		return;
	j = json_object();
	json_object_set_new(j, "url", json_string(sv->url));
	json_object_set_new(j, "host", json_string(sv->host));
	json_object_set_new(j, "port", json_integer(sv->port));
	json_object_set_new(j, "tls", json_string(
		sv->tls == MX_TLS_IMPLICIT ? "implicit"
		: sv->tls == MX_TLS_STARTTLS ? "starttls" : "none"));
	if (sv->user)
		json_object_set_new(j, "user", json_string(sv->user));
	if (sv->mechanism)
		json_object_set_new(j, "mechanism", json_string(sv->mechanism));
	json_object_set_new(j, "credentials", json_string(
		sv->password ? "stored"
		: strcmp(key, "smtp") == 0 ? "account" : "none"));
	json_object_set_new(o, key, j);
}

int mx_account_list_all(struct mx_store *st, struct mx_account **v_r,
			size_t *n_r, struct mx_error *err)
{
	struct mx_txn t;
	int rc;

	*v_r = NULL;
	*n_r = 0;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_list(&t, v_r, n_r, err);
	mx_txn_abort(&t);
	return rc;
}

void mx_accounts_free(struct mx_account *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mx_account_free(&v[i]);
	free(v);
}

int mx_account_load_id(struct mx_store *st, uint32_t id,
		       struct mx_account *a, struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	int rc;

	memset(a, 0, sizeof(*a));
	rc = mx_account_list_all(st, &v, &n, err);
	if (rc)
		return rc;
	rc = mx_error_set(err, MX_ERR_NOTFOUND, "no account with id %u", id);
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id) {
			*a = v[i];
			memset(&v[i], 0, sizeof(v[i]));
			mx_error_clear(err);
			rc = MX_OK;
			break;
		}
	mx_accounts_free(v, n);
	return rc;
}

json_t *mx_account_json(const struct mx_account *a)
{
	json_t *o = json_object();

	/* Never the password: only where it comes from. */
	json_object_set_new(o, "name", json_string(a->name));
	/* The number events carry as "account". */
	json_object_set_new(o, "id", json_integer(a->id));
	json_object_set_new(o, "imap", json_string(a->imap_url));
	json_object_set_new(o, "host", json_string(a->host));
	json_object_set_new(o, "port", json_integer(a->port));
	json_object_set_new(o, "user", json_string(a->user));
	json_object_set_new(o, "tls",
			    json_string(a->tls == MX_TLS_IMPLICIT ? "implicit"
					: a->tls == MX_TLS_STARTTLS ? "starttls"
								       : "none"));
	json_object_set_new(o, "credentials",
			    json_string(a->refresh_token ? "oauth2"
					: a->password ? "stored"
					: a->password_file ? "file"
							     : "none"));
	if (a->display_name)
		json_object_set_new(o, "display_name",
				    json_string(a->display_name));
	json_object_set_new(o, "enabled", json_boolean(!a->disabled));
	if (a->password_file)
		json_object_set_new(o, "password_file",
				    json_string(a->password_file));
	if (a->ca_file)
		json_object_set_new(o, "ca_file",
				    json_string(a->ca_file));
	json_object_set_new(o, "protocol", json_string(
		a->proto == MX_PROTO_POP3    ? "pop3"
		: a->proto == MX_PROTO_GMAIL ? "gmail-api"
					       : "imap"));
	if (a->proto == MX_PROTO_POP3)
		json_object_set_new(o, "pop3_delete",
				    json_boolean(a->pop3_delete));
	if (mx_account_from(a))
		json_object_set_new(o, "email",
				    json_string(mx_account_from(a)));
	if (a->provider)
		json_object_set_new(o, "provider",
				    json_string(a->provider));
	smtp_json(o, "smtp", &a->smtp);
	smtp_json(o, "relay", &a->relay);
	json_object_set_new(o, "saves_sent", json_boolean(a->saves_sent));
	json_object_set_new(o, "daily_limit",
			    json_integer(a->daily_limit));
	json_object_set_new(o, "quota_policy", json_string(
		a->quota_policy == MX_QUOTA_RELAY ? "relay" : "hold"));
	json_object_set_new(o, "max_attachment", json_integer(
		(json_int_t)mx_account_max_attach(a)));
	{
		static const char *const acc[] = {"owner", "selected",
						  "all"};
		json_t *al = json_array();

		json_object_set_new(o, "access",
				    json_string(acc[a->access]));
		if (a->owner)
			json_object_set_new(o, "owner",
					    json_string(a->owner));
		for (size_t k = 0; k < a->nallowed; k++)
			json_array_append_new(al,
				json_string(a->allowed[k]));
		json_object_set_new(o, "allowed", al);
	}
	json_object_set_new(o, "created", json_integer(a->created));
	return o;
}

enum mx_err mx_account_list_json(struct mx_store *st, char **json_r,
				 struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	rc = mx_account_list_all(st, &v, &n, err);
	if (rc)
		return rc;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = mx_account_json(&v[i]);

		json_array_append_new(arr, o);
		mx_account_free(&v[i]);
	}
	free(v);
	*json_r = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(arr);
	return *json_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
}

struct put_ctx {
	struct mx_account *a;
};

static int put_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct put_ctx *pc = ctx;
	int rc;

	/* A removed account must not come back through a token refresh of
	 * a sync that was still running. */
	rc = mx_account_check_current(t, pc->a, err);
	return rc ? rc : mx_store_account_put(t, pc->a, err);
}

int mx_account_save(struct mx_store *st, struct mx_account *a,
		    struct mx_error *err)
{
	struct put_ctx pc = {a};

	if (a->id == 0)
		return mx_error_set(err, MX_ERR_INVAL, "account has no id");
	return mx_store_write(st, put_fn, &pc, err);
}

struct edit_ctx {
	const char *name;
	int (*apply)(struct mx_account *a, const void *arg,
		     struct mx_error *err);
	const void *arg;
};

static int edit_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct edit_ctx *ec = ctx;
	struct mx_account a, old;
	int rc;

	rc = mx_store_account_get(t, ec->name, &a, err);
	if (rc)
		return rc;
	rc = mx_store_account_get(t, ec->name, &old, err);
	if (rc) {
		mx_account_free(&a);
		return rc;
	}
	rc = ec->apply(&a, ec->arg, err);
	if (rc == MX_OK)
		rc = mx_account_check_local(&a, &old, err);
	if (rc == MX_OK)
		rc = mx_store_account_put(t, &a, err);
	mx_account_free(&old);
	mx_account_free(&a);
	return rc;
}

int mx_account_edit(struct mx_store *st, const char *name,
		    int (*apply)(struct mx_account *a, const void *arg,
				 struct mx_error *err),
		    const void *arg, struct mx_error *err)
{
	struct edit_ctx ec = {name, apply, arg};

	return mx_store_write(st, edit_fn, &ec, err);
}

int mx_account_set_str(char **f, const char *v)
{
	char *n;

	if (v == NULL)
		return 0;
	n = strdup(v);
	if (n == NULL)
		return -1;
	free(*f);
	*f = n;
	return 0;
}

int mx_account_apply_change(struct mx_account *a, const void *arg,
			    struct mx_error *err)
{
	const struct mx_account_change *e = arg;
	int rc;

	if (e->id && a->id != e->id)
		return mx_error_set(err, MX_ERR_NOTFOUND, "account %s is not "
				    "account %u any more", a->name, e->id);
	if (e->imap_url) {
		/* Same account, new address or server: the stored mail
		 * stays; the next sync checks UIDVALIDITY per folder. */
		rc = mx_account_set_incoming(a, e->imap_url, err);
		if (rc)
			return rc;
	}
	if (e->password && !mx_utf8_valid_str(e->password))
		return mx_error_set(err, MX_ERR_INVAL, "the password must be "
				    "UTF-8");
	if (e->password_file) {
		if (mx_account_set_str(&a->password_file, e->password_file) < 0)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		mx_secret_free(a->password);
		a->password = NULL;
	}
	if (e->password) {
		char *pw = strdup(e->password);

		if (pw == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		mx_secret_free(a->password);
		a->password = pw;
		free(a->password_file);
		a->password_file = NULL;
	}
	if (e->refresh_token) {
		if (mx_account_set_str(&a->refresh_token, e->refresh_token) < 0)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		mx_secret_free(a->access_token);
		a->access_token = NULL;
		a->token_expires = 0;
	}
	if (mx_account_set_str(&a->ca_file, e->ca_file) < 0 ||
	    mx_account_set_str(&a->display_name, e->display_name) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (e->disabled >= 0)
		a->disabled = e->disabled;
	return mx_account_apply_settings(a, e->settings, err);
}
