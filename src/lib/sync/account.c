/* Accounts: URL parsing, creation, listing. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/oauth.h"
#include "sync/sync.h"

static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			uint8_t b;

			mx_unhex(s + i + 1, &b, 1);
			if (b == 0) { /* no NUL inside a user name */
				free(out);
				return NULL;
			}
			*o++ = (char)b;
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

int mx_account_parse_url(const char *url, struct mx_account *a,
			 struct mx_error *err)
{
	const char *p, *at, *hostp, *end;
	unsigned long port = 0;

	if (strncmp(url, "imaps://", 8) == 0) {
		a->tls = MX_TLS_IMPLICIT;
		p = url + 8;
		a->port = 993;
	} else if (strncmp(url, "imap://", 7) == 0) {
		a->tls = MX_TLS_STARTTLS;
		p = url + 7;
		a->port = 143;
	} else {
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': expected imaps://USER@HOST"
				    "[:PORT] or imap://USER@HOST[:PORT]", url);
	}
	end = p + strcspn(p, "/?#");
	if (*end != '\0' && !(end[0] == '/' && end[1] == '\0'))
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': no path or query allowed",
				    url);
	at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at == NULL || at == p)
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': missing USER@", url);
	hostp = at + 1;
	if (memchr(p, ':', (size_t)(at - p)))
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL: a password does not belong in the "
				    "URL; use --password-file");
	free(a->user);
	a->user = pct_decode(p, (size_t)(at - p));
	if (a->user == NULL)
		return mx_error_set(err, MX_ERR_PARSE, "bad user in URL '%s'",
				    url);
	for (const char *q = a->user; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL: control character in the "
					    "user name");
	free(a->host);
	a->host = NULL;
	if (*hostp == '[') {
		const char *rb = memchr(hostp, ']', (size_t)(end - hostp));

		if (rb == NULL)
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s': unterminated [", url);
		a->host = mx_strndup(hostp + 1, (size_t)(rb - hostp - 1));
		hostp = rb + 1;
		if (hostp < end && *hostp != ':')
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s'", url);
	} else {
		const char *colon = memchr(hostp, ':', (size_t)(end - hostp));
		const char *hend = colon ? colon : end;

		a->host = mx_strndup(hostp, (size_t)(hend - hostp));
		hostp = hend;
	}
	if (a->host == NULL || a->host[0] == '\0')
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': missing host", url);
	for (const char *q = a->host; *q; q++)
		if (!(isalnum((unsigned char)*q) || strchr(".-_:", *q)))
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s': invalid host", url);
	if (hostp < end && *hostp == ':') {
		char *e;

		/* strtoul would accept "+993" and " 993": digits only. */
		for (const char *q = hostp + 1; q < end; q++)
			if (*q < '0' || *q > '9')
				return mx_error_set(err, MX_ERR_PARSE,
						    "bad URL '%s': bad port", url);
		port = strtoul(hostp + 1, &e, 10);
		if (e != end || port == 0 || port > 65535 || e == hostp + 1)
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s': bad port", url);
		a->port = (uint16_t)port;
	}
	return MX_OK;
}

static bool valid_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char)n[i]) || strchr("._-", n[i])))
			return false;
	return true;
}

static int add_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct mx_account *a = ctx;

	a->id = 0; /* a MAP_FULL retry must assign it again */
	return mx_store_account_put(t, a, err);
}

enum mx_err mx_account_add(struct mx_store *st,
			   const struct mx_account_params *p,
			   struct mx_error *err)
{
	struct mx_account a = {0};
	int rc;

	mx_error_clear(err);
	if (p->name == NULL || !valid_name(p->name))
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
	if ((p->refresh_token == NULL) != (p->oauth_token_url == NULL)) {
		rc = mx_error_set(err, MX_ERR_INVAL,
				  "OAuth2 needs both a refresh token and the "
				  "token endpoint URL");
		goto out;
	}
	a.created = mx_wall_s();
	if (p->insecure_plaintext && a.tls == MX_TLS_STARTTLS)
		a.tls = MX_TLS_NONE; /* explicit opt-in: no STARTTLS */
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

enum mx_err mx_account_list_json(struct mx_store *st, char **json_r,
				 struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	struct mx_txn t;
	json_t *arr;
	int rc;

	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_list(&t, &v, &n, err);
	mx_txn_abort(&t);
	if (rc)
		return rc;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		/* Never the password: only where it comes from. */
		json_object_set_new(o, "name", json_string(v[i].name));
		json_object_set_new(o, "imap", json_string(v[i].imap_url));
		json_object_set_new(o, "host", json_string(v[i].host));
		json_object_set_new(o, "port", json_integer(v[i].port));
		json_object_set_new(o, "user", json_string(v[i].user));
		json_object_set_new(o, "tls",
				    json_string(v[i].tls == MX_TLS_IMPLICIT ? "implicit"
						: v[i].tls == MX_TLS_STARTTLS ? "starttls"
									       : "none"));
		json_object_set_new(o, "credentials",
				    json_string(v[i].refresh_token ? "oauth2"
						: v[i].password ? "stored"
						: v[i].password_file ? "file"
								     : "none"));
		if (v[i].display_name)
			json_object_set_new(o, "display_name",
					    json_string(v[i].display_name));
		json_object_set_new(o, "enabled", json_boolean(!v[i].disabled));
		if (v[i].password_file)
			json_object_set_new(o, "password_file",
					    json_string(v[i].password_file));
		if (v[i].ca_file)
			json_object_set_new(o, "ca_file",
					    json_string(v[i].ca_file));
		json_object_set_new(o, "created", json_integer(v[i].created));
		json_array_append_new(arr, o);
		mx_account_free(&v[i]);
	}
	free(v);
	*json_r = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(arr);
	return *json_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
}

/* ---- OAuth2 tokens and connecting ---- */

struct put_ctx {
	struct mx_account *a;
};

static int put_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct put_ctx *pc = ctx;

	return mx_store_account_put(t, pc->a, err);
}

int mx_account_save(struct mx_store *st, struct mx_account *a,
		    struct mx_error *err)
{
	struct put_ctx pc = {a};

	if (a->id == 0)
		return mx_error_set(err, MX_ERR_INVAL, "account has no id");
	return mx_store_write(st, put_fn, &pc, err);
}

int mx_account_fresh_token(struct mx_store *st, struct mx_account *a,
			   bool force, struct mx_error *err)
{
	struct mx_oauth_cfg cfg = {0};
	struct mx_oauth_token tok = {0};
	int rc;

	if (a->refresh_token == NULL || a->oauth_token_url == NULL)
		return MX_OK; /* password account, or a fixed token */
	/* Refreshed ahead of expiry: a token that dies mid-sync costs a
	 * reconnect. */
	if (!force && a->access_token) {
		/* Two minutes before expiry, or a fifth of a short lifetime. */
		int64_t margin = 120, life = a->token_expires - a->token_refreshed;

		if (a->token_refreshed && life > 0 && life / 5 < margin)
			margin = life / 5;
		if (a->token_expires == 0 || a->token_expires - margin > mx_wall_s())
			return MX_OK;
	}
	cfg.token_url = a->oauth_token_url;
	cfg.client_id = a->oauth_client_id;
	cfg.client_secret = a->client_secret;
	cfg.scope = a->oauth_scope;
	cfg.ca_file = a->ca_file;
	cfg.timeout_s = a->timeout_s > 0 ? a->timeout_s : 15;
	rc = mx_oauth_refresh(&cfg, a->refresh_token, &tok, err);
	if (rc) {
		mx_error_prefix(err, "account %s: token refresh", a->name);
		return rc;
	}
	if (a->access_token)
		memset(a->access_token, 0, strlen(a->access_token));
	free(a->access_token);
	a->access_token = tok.access_token;
	tok.access_token = NULL;
	a->token_expires = tok.expires_at;
	a->token_refreshed = mx_wall_s();
	if (tok.refresh_token) { /* rotated (RFC 6749 6) */
		memset(a->refresh_token, 0, strlen(a->refresh_token));
		free(a->refresh_token);
		a->refresh_token = tok.refresh_token;
		tok.refresh_token = NULL;
	}
	mx_oauth_token_free(&tok);
	mx_debug("account %s: access token refreshed", a->name);
	return st ? mx_account_save(st, a, err) : MX_OK;
}

int mx_account_connect(struct mx_store *st, struct mx_account *a,
		       struct mx_conn **conn_r, struct mx_error *err)
{
	const struct mx_backend_ops *be = &mx_backend_imap;
	int rc;

	if (a->disabled)
		return mx_error_set(err, MX_ERR_CONFIG,
				    "account %s is disabled", a->name);
	rc = mx_account_fresh_token(st, a, false, err);
	if (rc)
		return rc;
	rc = be->connect(a, conn_r, err);
	if (rc == MX_ERR_AUTH && a->refresh_token && a->oauth_token_url) {
		/* The server refused the token before we thought it expired
		 * (revoked, clock skew): refresh once, then stop. */
		struct mx_error first = err ? *err : (struct mx_error){0};

		rc = mx_account_fresh_token(st, a, true, err);
		if (rc == MX_OK)
			rc = be->connect(a, conn_r, err);
		else if (rc != MX_ERR_AUTH && err)
			mx_error_prefix(err, "after %s", first.detail);
	}
	return rc;
}

/* ---- lifecycle ---- */

struct edit_ctx {
	const char *name;
	int (*apply)(struct mx_account *a, const void *arg,
		     struct mx_error *err);
	const void *arg;
};

static int edit_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct edit_ctx *ec = ctx;
	struct mx_account a;
	int rc;

	rc = mx_store_account_get(t, ec->name, &a, err);
	if (rc)
		return rc;
	rc = ec->apply(&a, ec->arg, err);
	if (rc == MX_OK)
		rc = mx_store_account_put(t, &a, err);
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

static int remove_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	const char *name = ((const void **)ctx)[0];
	bool purge = *(const bool *)((const void **)ctx)[1];
	struct mx_account a;
	struct mx_folder *f = NULL;
	size_t nf = 0;
	uint8_t k[4];
	int rc;

	rc = mx_store_account_get(t, name, &a, err);
	if (rc)
		return rc;
	if (purge) {
		uint64_t *ids = NULL;
		size_t n = 0;

		rc = mx_store_folder_list(t, a.id, &f, &nf, err);
		for (size_t i = 0; rc == MX_OK && i < nf; i++) {
			struct mx_loc *locs = NULL;
			size_t nl = 0;

			rc = mx_store_folder_locs(t, f[i].id, &locs, &nl, err);
			for (size_t j = 0; rc == MX_OK && j < nl; j++)
				rc = mx_store_loc_del(t, f[i].id, locs[j].uid, err);
			mx_locs_free(locs, nl);
		}
		if (rc == MX_OK)
			rc = mx_store_account_msgs(t, a.id, &ids, &n, err);
		for (size_t i = 0; rc == MX_OK && i < n; i++) {
			rc = mx_store_msg_del(t, ids[i], err);
			if (rc == MX_OK)
				rc = mx_store_orphan_del(t, ids[i], err);
		}
		free(ids);
		mx_folders_free(f, nf);
		if (rc)
			goto out;
	}
	mx_put_be32(k, a.id);
	rc = mx_db_del(t, MX_DB_ACCOUNTS, k, 4, NULL, 0, err);
	if (rc == MX_OK)
		rc = mx_db_del(t, MX_DB_ACCOUNT_NAMES, a.name, strlen(a.name),
			       NULL, 0, err);
	if (rc == MX_OK) {
		int r2 = mx_db_del(t, MX_DB_ACCTSTATE, k, 4, NULL, 0, NULL);

		(void)r2; /* absent unless a daemon ran */
		rc = mx_store_event(t, "account.removed", a.id, 0, 0, NULL, err);
	}
out:
	mx_account_free(&a);
	return rc;
}

int mx_account_remove(struct mx_store *st, const char *name, bool purge,
		      struct mx_error *err)
{
	const void *ctx[2] = {name, &purge};

	return mx_store_write(st, remove_fn, ctx, err);
}
