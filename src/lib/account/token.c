/* OAuth2 access tokens of an account: refreshed ahead of expiry through
 * src/lib/auth/ and saved in the account's record. */
#include <stdlib.h>
#include <string.h>

#include "auth/oauth.h"
#include "account/account.h"
#include "secrets/secrets.h"

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

/* Replaces *F with a copy of V (NULL: left as it is); the old value is
 * wiped when SECRET. */
static int set_field(char **f, const char *v, bool secret)
{
	char *n;

	if (v == NULL)
		return 0;
	n = strdup(v);
	if (n == NULL)
		return -1;
	if (secret)
		mx_secret_free(*f);
	else
		free(*f);
	*f = n;
	return 0;
}

int mx_account_set_tokens(struct mx_account *a,
			  const struct mx_oauth_token *tok,
			  const char *token_url, const char *client_id,
			  const char *scope, struct mx_error *err)
{
	if (tok->refresh_token == NULL)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "the provider returned no refresh token "
				    "(is offline access in the scope?)");
	/* The account now logs in with these tokens, and refreshes them at
	 * the endpoint that issued them. */
	if (set_field(&a->refresh_token, tok->refresh_token, true) < 0 ||
	    set_field(&a->access_token, tok->access_token, true) < 0 ||
	    set_field(&a->oauth_token_url, token_url, false) < 0 ||
	    set_field(&a->oauth_client_id, client_id, false) < 0 ||
	    set_field(&a->oauth_scope, scope, false) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	a->token_expires = tok->expires_at;
	a->token_refreshed = mx_wall_s();
	return MX_OK;
}
