/*
 * The browser OAuth flow of the HTTP API: started flows are records in
 * MX_DB_META under "oauth_flow:" + hex SHA-256 of the state (the state
 * itself, the callback's only credential, is stored nowhere), JSON
 * {"account","name","generation","verifier","redirect_uri","return_to",
 * "token_url","client_id","scope","expires"}.  A record lives until its
 * callback takes it or, expired, until the next start drops it.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "auth/oauth.h"
#include "account/account.h"
#include "secrets/secrets.h"

#define FLOW_PREFIX "oauth_flow:"
#define FLOW_KEY_LEN (sizeof(FLOW_PREFIX) - 1 + 64)

void mx_oauth_flow_free(struct mx_oauth_flow *f)
{
	if (f == NULL)
		return;
	free(f->account);
	mx_secret_free(f->verifier);
	free(f->redirect_uri);
	free(f->return_to);
	free(f->token_url);
	free(f->client_id);
	free(f->scope);
	memset(f, 0, sizeof(*f));
}

static void flow_key(const char *state, char key[FLOW_KEY_LEN + 1])
{
	uint8_t md[32];

	mx_sha256(state, strlen(state), md);
	memcpy(key, FLOW_PREFIX, sizeof(FLOW_PREFIX) - 1);
	mx_hex(md, sizeof(md), key + sizeof(FLOW_PREFIX) - 1);
	key[FLOW_KEY_LEN] = '\0';
}

/* ---- start ---- */

struct begin_ctx {
	const char *key;
	const char *json;
	int64_t now;
};

/* Drops expired flows (and records that do not decode). */
static int prune_fn(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		    void *ctx, struct mx_error *err)
{
	const struct begin_ctx *bc = ctx;
	json_t *j = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	json_int_t exp = json_integer_value(json_object_get(j, "expires"));

	(void)t;
	(void)k;
	(void)err;
	json_decref(j);
	return exp <= bc->now ? MX_WALK_DELETE : MX_OK;
}

static int begin_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct begin_ctx *bc = ctx;
	int rc;

	rc = mx_store_walk(t, MX_DB_META, FLOW_PREFIX,
			   sizeof(FLOW_PREFIX) - 1, NULL, 0, 0,
			   "OAuth flows", prune_fn, bc, err);
	if (rc == MX_OK)
		rc = mx_db_put(t, MX_DB_META, bc->key, strlen(bc->key),
			       bc->json, strlen(bc->json), 0, err);
	return rc;
}

int mx_account_oauth_begin(struct mx_store *st, const struct mx_account *a,
			   const struct mx_oauth_cfg *cfg,
			   const char *redirect_uri, const char *return_to,
			   char **url_r, char state_r[MX_OAUTH_STATE_LEN + 1],
			   int64_t *expires_r, struct mx_error *err)
{
	char verifier[MX_PKCE_VERIFIER_CAP], challenge[MX_PKCE_CHALLENGE_CAP];
	char key[FLOW_KEY_LEN + 1], sbuf[48];
	struct begin_ctx bc = {0};
	json_t *j = NULL;
	char *json = NULL;
	int rc;

	*url_r = NULL;
	state_r[0] = '\0';
	/* mx_random_b64url wants room for a partial group; the state is
	 * 43 characters. */
	if (!mx_oauth_pkce_pair(verifier, challenge) ||
	    !mx_random_b64url(32, sbuf, sizeof(sbuf)) ||
	    strlen(sbuf) != MX_OAUTH_STATE_LEN)
		return mx_error_set(err, MX_ERR_IO, "oauth: no random bytes");
	memcpy(state_r, sbuf, MX_OAUTH_STATE_LEN + 1);
	rc = mx_oauth_authorize_url(cfg, redirect_uri, state_r, challenge,
				    url_r, err);
	if (rc)
		goto out;
	bc.now = mx_wall_s();
	*expires_r = bc.now + MX_OAUTH_FLOW_TTL;
	j = json_pack("{s:I,s:s,s:I,s:s,s:s,s:s?,s:s?,s:s,s:s?,s:I}",
		      "account", (json_int_t)a->id, "name", a->name,
		      "generation", (json_int_t)a->generation,
		      "verifier", verifier, "redirect_uri", redirect_uri,
		      "return_to", return_to, "token_url", cfg->token_url,
		      "client_id", cfg->client_id, "scope", cfg->scope,
		      "expires", (json_int_t)*expires_r);
	if (j)
		json = json_dumps(j, JSON_COMPACT);
	if (json == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	flow_key(state_r, key);
	bc.key = key;
	bc.json = json;
	rc = mx_store_write(st, begin_fn, &bc, err);
out:
	if (rc) {
		free(*url_r);
		*url_r = NULL;
		OPENSSL_cleanse(state_r, MX_OAUTH_STATE_LEN + 1);
	}
	json_decref(j);
	mx_secret_free(json);
	OPENSSL_cleanse(verifier, sizeof(verifier));
	return rc;
}

/* ---- callback ---- */

struct take_ctx {
	const char *key;
	char *json; /* owned: the record, copied out */
};

static int take_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct take_ctx *tc = ctx;
	MDB_val v;
	int rc;

	mx_secret_free(tc->json); /* a retry after MAP_FULL */
	tc->json = NULL;
	rc = mx_db_get(t, MX_DB_META, tc->key, strlen(tc->key), &v, err);
	if (rc == MX_ERR_NOTFOUND) {
		mx_error_clear(err);
		return MX_OK;
	}
	if (rc)
		return rc;
	tc->json = malloc(v.mv_size + 1);
	if (tc->json == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	memcpy(tc->json, v.mv_data, v.mv_size);
	tc->json[v.mv_size] = '\0';
	return mx_db_del(t, MX_DB_META, tc->key, strlen(tc->key), NULL, 0, err);
}

static int dup_member(json_t *j, const char *name, bool required, char **r)
{
	const char *s = json_string_value(json_object_get(j, name));

	*r = NULL;
	if (s == NULL)
		return required ? -1 : 0;
	*r = strdup(s);
	return *r ? 0 : -1;
}

int mx_account_oauth_take(struct mx_store *st, const char *state,
			  struct mx_oauth_flow *f_r, struct mx_error *err)
{
	char key[FLOW_KEY_LEN + 1];
	struct take_ctx tc = {key, NULL};
	json_t *j = NULL;
	int rc;

	memset(f_r, 0, sizeof(*f_r));
	flow_key(state, key);
	/* The callback needs no token: a state nobody handed out costs a
	 * read, not a write transaction that would queue behind the sync's
	 * writers. */
	{
		struct mx_txn t;
		MDB_val v;

		rc = mx_txn_begin(st, false, &t, err);
		if (rc)
			return rc;
		rc = mx_db_get(&t, MX_DB_META, key, strlen(key), &v, err);
		mx_txn_abort(&t);
		if (rc == MX_ERR_NOTFOUND)
			return mx_error_set(err, MX_ERR_NOTFOUND,
					    "unknown or already used OAuth "
					    "state");
		if (rc)
			return rc;
	}
	rc = mx_store_write(st, take_fn, &tc, err);
	if (rc)
		goto out;
	if (tc.json == NULL) {
		rc = mx_error_set(err, MX_ERR_NOTFOUND,
				  "unknown or already used OAuth state");
		goto out;
	}
	j = json_loads(tc.json, 0, NULL);
	f_r->account_id = (uint32_t)json_integer_value(
		json_object_get(j, "account"));
	f_r->generation = (uint64_t)json_integer_value(
		json_object_get(j, "generation"));
	f_r->expires = json_integer_value(json_object_get(j, "expires"));
	if (dup_member(j, "name", true, &f_r->account) ||
	    dup_member(j, "verifier", true, &f_r->verifier) ||
	    dup_member(j, "redirect_uri", true, &f_r->redirect_uri) ||
	    dup_member(j, "return_to", false, &f_r->return_to) ||
	    dup_member(j, "token_url", true, &f_r->token_url) ||
	    dup_member(j, "client_id", true, &f_r->client_id) ||
	    dup_member(j, "scope", false, &f_r->scope)) {
		rc = j ? mx_error_set(err, MX_ERR_STORE,
				      "OAuth flow: corrupt record")
		       : mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	if (f_r->expires <= mx_wall_s())
		rc = mx_error_set(err, MX_ERR_EXPIRED,
				  "the OAuth authorization request expired "
				  "(it is valid for %d minutes)",
				  MX_OAUTH_FLOW_TTL / 60);
out:
	if (rc)
		mx_oauth_flow_free(f_r);
	if (j) {
		json_t *v = json_object_get(j, "verifier");

		if (json_is_string(v))
			OPENSSL_cleanse((void *)(uintptr_t)json_string_value(v),
					json_string_length(v));
	}
	json_decref(j);
	mx_secret_free(tc.json);
	return rc;
}

struct finish_ctx {
	const struct mx_oauth_flow *f;
	const struct mx_oauth_token *tok;
	mx_account_oauth_fn in_txn;
	void *ctx;
};

/* Whether flow F uses A's own OAuth client (endpoint and client id). */
static bool same_client(const struct mx_account *a,
			const struct mx_oauth_flow *f)
{
	return a->oauth_token_url && a->oauth_client_id &&
	       strcmp(a->oauth_token_url, f->token_url) == 0 &&
	       strcmp(a->oauth_client_id, f->client_id) == 0;
}

static int finish_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct finish_ctx *fc = ctx;
	const struct mx_oauth_flow *f = fc->f;
	struct mx_account a = {0};
	int rc;

	rc = mx_store_account_get(t, f->account, &a, err);
	if (rc == MX_OK && (a.id != f->account_id ||
			    a.generation != f->generation))
		rc = MX_ERR_NOTFOUND;
	if (rc == MX_ERR_NOTFOUND) {
		rc = mx_error_set(err, MX_ERR_NOTFOUND,
				  "account %s was removed while it was being "
				  "authorized", f->account);
		goto out;
	}
	if (rc)
		goto out;
	/* The account's client secret belongs to its client at its token
	 * endpoint: another client (named in the start request) is public,
	 * and the secret must not follow the refresh token elsewhere. */
	if (!same_client(&a, f)) {
		mx_secret_free(a.client_secret);
		a.client_secret = NULL;
	}
	rc = mx_account_set_tokens(&a, fc->tok, f->token_url, f->client_id,
				   f->scope, err);
	if (rc == MX_OK)
		rc = mx_store_account_put(t, &a, err);
	if (rc == MX_OK && fc->in_txn)
		rc = fc->in_txn(t, a.id, fc->ctx, err);
out:
	mx_account_free(&a);
	return rc;
}

int mx_account_oauth_finish(struct mx_store *st,
			    const struct mx_oauth_flow *f, const char *code,
			    mx_account_oauth_fn in_txn, void *ctx,
			    struct mx_error *err)
{
	struct mx_oauth_cfg cfg = {0};
	struct mx_oauth_token tok = {0};
	struct mx_account a = {0};
	struct finish_ctx fc = {f, &tok, in_txn, ctx};
	int rc;

	/* The client secret stays in the account record, not the flow's. */
	rc = mx_account_load(st, f->account, &a, err);
	if (rc == MX_OK && a.id != f->account_id)
		rc = mx_error_set(err, MX_ERR_NOTFOUND,
				  "account %s was removed while it was being "
				  "authorized", f->account);
	if (rc)
		goto out;
	cfg.token_url = f->token_url;
	cfg.client_id = f->client_id;
	cfg.client_secret = same_client(&a, f) ? a.client_secret : NULL;
	cfg.scope = f->scope;
	cfg.ca_file = a.ca_file;
	cfg.timeout_s = a.timeout_s > 0 ? a.timeout_s : 15;
	rc = mx_oauth_exchange_code(&cfg, code, f->redirect_uri, f->verifier,
				    NULL, &tok, err);
	if (rc == MX_OK)
		rc = mx_store_write(st, finish_fn, &fc, err);
out:
	mx_oauth_token_free(&tok);
	mx_account_free(&a);
	return rc;
}
