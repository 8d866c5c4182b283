/*
 * The browser OAuth flow (doc/api.md "Connect an account with OAuth",
 * doc/internals/api.md "OAuth"): POST /v1/accounts/{id}/oauth/start hands
 * out the provider's authorization URL (PKCE S256, a single-use state
 * kept in the store for ten minutes) whose redirect_uri is this API's
 * GET /v1/oauth/callback; the callback exchanges the code, stores the
 * refresh token on the account and answers the user's browser.
 *
 * The callback carries no bearer token: the state is its credential.  It
 * answers HTML (a person reads it), never the JSON error shape, and
 * changes nothing but spending the state unless the code exchange
 * succeeded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "account/account.h"
#include "account/presets.h"
#include "auth/oauth.h"
#include "util/http.h"
#include "events/events.h"
#include "sync/query.h"
#include "api/api_int.h"

#define CALLBACK_PATH "/v1/oauth/callback"

/* ---- return_to and the redirect URI ---- */

/*
 * The redirect URI: [api] public_url, else http(s):// and the address
 * the API listens on.  False when there is none (a unix socket and no
 * public_url).
 */
static bool redirect_uri(const struct mx_api *api, char *out, size_t cap)
{
	const char *base = api->cfg.public_url;
	size_t n;

	if (base) {
		n = strlen(base);
		while (n > 0 && base[n - 1] == '/')
			n--;
		return snprintf(out, cap, "%.*s%s", (int)n, base,
				CALLBACK_PATH) < (int)cap;
	}
	if (strncmp(api->addr, "unix:", 5) == 0)
		return false;
	return snprintf(out, cap, "%s://%s%s",
			api->cfg.tls_cert ? "https" : "http", api->addr,
			CALLBACK_PATH) < (int)cap;
}

/* Whether the callback may send the browser on to RETURN_TO: the origin
 * of the API's public URL, or one listed in [api] oauth_return. */
static bool return_allowed(const struct mx_api *api, const char *ret,
			   const char *redirect)
{
	char want[256], have[256];
	const char *p;

	if (!mx_url_origin(ret, want, sizeof(want), NULL))
		return false;
	if (mx_url_origin(redirect, have, sizeof(have), NULL) &&
	    strcmp(want, have) == 0)
		return true;
	for (p = api->cfg.oauth_return; p && *p;) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, " \t,");
		if (n > 0 && n < sizeof(have)) {
			memcpy(have, p, n);
			have[n] = '\0';
			if (mx_url_origin(have, have, sizeof(have), NULL) &&
			    strcmp(want, have) == 0)
				return true;
		}
		p += n;
	}
	return false;
}

/* ---- the callback's answers ---- */

/* Appends S to B with &, <, >, " and ' escaped. */
static void html_text(struct mx_buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&': mx_buf_puts(b, "&amp;"); break;
		case '<': mx_buf_puts(b, "&lt;"); break;
		case '>': mx_buf_puts(b, "&gt;"); break;
		case '"': mx_buf_puts(b, "&quot;"); break;
		case '\'': mx_buf_puts(b, "&#39;"); break;
		default: mx_buf_append(b, s, 1); break;
		}
	}
}

/*
 * Answers STATUS with a small HTML page TITLE / TEXT (both escaped).  The
 * page's URL holds the code and the state: no referrer, no framing, no
 * scripts, no caching.
 */
static void html_page(struct api_req *r, unsigned status, const char *title,
		      const char *text)
{
	struct mx_buf b = {0};

	mx_buf_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
			"<title>mxsync: ");
	html_text(&b, title);
	mx_buf_puts(&b, "</title></head>\n<body><h1>");
	html_text(&b, title);
	mx_buf_puts(&b, "</h1>\n<p>");
	html_text(&b, text);
	mx_buf_puts(&b, "</p></body></html>\n");
	if (r->resp)
		MHD_destroy_response(r->resp);
	r->resp = NULL;
	r->status = status;
	if (b.data)
		r->resp = MHD_create_response_from_buffer(
			b.len, b.data, MHD_RESPMEM_MUST_FREE);
	if (r->resp == NULL) {
		mx_buf_free(&b);
		api_error(r, 500, "internal", NULL, "Out of memory.");
		return;
	}
	api_header(r, "Content-Type", "text/html; charset=utf-8");
	api_header(r, "Cache-Control", "no-store");
	api_header(r, "Referrer-Policy", "no-referrer");
	api_header(r, "X-Frame-Options", "DENY");
	api_header(r, "Content-Security-Policy",
		   "default-src 'none'; frame-ancestors 'none'");
}

static void failed(struct api_req *r, unsigned status, const char *text)
{
	html_page(r, status, "Account not connected", text);
}

/* In the transaction that stores the tokens: the same mark `mxsync
 * account reauth` leaves, so a running daemon takes the account out of
 * auth_failed with the new credentials (and an account.reauth event). */
static int mark_reauth(struct mx_txn *t, uint32_t account_id, void *ctx,
		       struct mx_error *err)
{
	(void)ctx;
	return mx_acctstate_request_reauth(t, account_id, err);
}

/* Whether S may be a state we handed out (no store lookup otherwise). */
static bool state_shaped(const char *s)
{
	if (s == NULL || strlen(s) != MX_OAUTH_STATE_LEN)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

void api_oauth_callback(struct api_req *r)
{
	const char *state = api_query(r, "state"), *code = api_query(r, "code");
	const char *oerr = api_query(r, "error");
	struct mx_oauth_flow f = {0};
	struct mx_error err;
	char page[768];
	int rc;

	if (!state_shaped(state)) {
		failed(r, 400, "This sign-in answer has no valid state: start "
			       "connecting the account again.");
		return;
	}
	if (oerr == NULL && (code == NULL || code[0] == '\0')) {
		failed(r, 400, "This sign-in answer has neither a code nor an "
			       "error: start connecting the account again.");
		return;
	}
	rc = mx_account_oauth_take(r->api->st, state, &f, &err);
	if (rc == MX_ERR_NOTFOUND) {
		failed(r, 400, "This sign-in link is unknown or was already "
			       "used: start connecting the account again.");
		return;
	}
	if (rc == MX_ERR_EXPIRED) {
		failed(r, 410, "This sign-in link expired (it is valid for ten "
			       "minutes): start connecting the account again.");
		return;
	}
	if (rc) {
		mx_log(MX_LOG_ERROR, "api: OAuth callback: %s", err.detail);
		failed(r, 500, "Internal error (logged).");
		return;
	}
	if (oerr) {
		/* RFC 6749 4.1.2.1: the provider's error code (a fixed
		 * vocabulary; escaped all the same). */
		snprintf(page, sizeof(page), "The provider refused access to "
			 "account %.64s (%.64s). Nothing was changed.", f.account,
			 oerr);
		failed(r, strcmp(oerr, "access_denied") == 0 ? 403 : 400, page);
		goto out;
	}
	rc = mx_account_oauth_finish(r->api->st, &f, code, mark_reauth, NULL,
				     &err);
	if (rc == MX_ERR_NOTFOUND) {
		failed(r, 404, "The account was removed while it was being "
			       "connected.");
		goto out;
	}
	if (rc) {
		mx_info("api: OAuth callback for account %s: %s", f.account,
			err.detail);
		snprintf(page, sizeof(page), "The provider's token endpoint "
			 "did not accept the sign-in for account %.64s: %.400s. "
			 "Nothing was changed.", f.account, err.detail);
		failed(r, rc == MX_ERR_NOMEM || rc == MX_ERR_STORE ||
				  rc == MX_ERR_STORE_FULL ? 500 : 502, page);
		goto out;
	}
	mx_info("api: account %s connected with OAuth", f.account);
	/* New credentials: the daemon restarts the account with them. */
	api_kick(r, MX_API_KICK_ACCOUNTS, f.account_id);
	if (f.return_to) {
		html_page(r, 303, "Account connected", "Continue to the "
			  "application.");
		api_header(r, "Location", f.return_to);
	} else {
		snprintf(page, sizeof(page), "Account %.64s is connected. You can "
			 "close this window.", f.account);
		html_page(r, 200, "Account connected", page);
	}
out:
	mx_oauth_flow_free(&f);
}

/* ---- POST /v1/accounts/{id}/oauth/start ---- */

/*
 * The authorization endpoint: the request's, else the account's provider
 * preset's, else that of a preset whose IMAP host is the account's.
 */
static const struct mx_preset *preset_of(const struct mx_account *a)
{
	const struct mx_preset *pr = a->provider ? mx_preset_find(a->provider)
						 : NULL;

	for (const struct mx_preset *p = mx_presets(); pr == NULL && p->name;
	     p++)
		if (p->imap_host && a->host &&
		    strcasecmp(p->imap_host, a->host) == 0)
			pr = p;
	return pr;
}

void api_oauth_start(struct api_req *r)
{
	static const char *const fields[] = {
		"return_to", "auth_url", "token_url", "client_id", "scope",
		NULL};
	const char *ret = NULL, *auth_url = NULL, *token_url = NULL;
	const char *client_id = NULL, *scope = NULL;
	const struct mx_preset *pr;
	struct mx_oauth_cfg cfg = {0};
	struct mx_account a = {0};
	struct mx_error err;
	char redirect[600], state[MX_OAUTH_STATE_LEN + 1], exp_s[32];
	char *url = NULL;
	json_t *body = NULL;
	int64_t exp = 0;
	size_t blen = 0;
	int rc;

	/* The body is optional: no body is {}. */
	if (api_body_raw(r, &blen) != NULL && blen > 0) {
		if (!api_body_json(r, &body) ||
		    !api_fields_check(r, body, fields, NULL) ||
		    !api_j_str(r, body, "return_to", false, &ret) ||
		    !api_j_str(r, body, "auth_url", false, &auth_url) ||
		    !api_j_str(r, body, "token_url", false, &token_url) ||
		    !api_j_str(r, body, "client_id", false, &client_id) ||
		    !api_j_str(r, body, "scope", false, &scope))
			goto out;
	}
	rc = mx_account_load_id(r->api->st, (uint32_t)r->id, &a, &err);
	if (rc == MX_ERR_NOTFOUND || (rc == MX_OK && !api_may_use(r, &a))) {
		api_error(r, 404, "not_found", NULL, "No account %llu.",
			  (unsigned long long)r->id);
		goto out;
	}
	if (rc) {
		api_fail(r, &err);
		goto out;
	}
	/* Its owner or an admin: the flow replaces its credentials. */
	if (!r->tok.admin &&
	    (a.owner == NULL || strcmp(a.owner, r->tok.user) != 0)) {
		api_error(r, 403, "forbidden", NULL, "Only the account's owner "
			  "or an admin may connect account %llu.",
			  (unsigned long long)r->id);
		goto out;
	}
	if (!redirect_uri(r->api, redirect, sizeof(redirect))) {
		api_error(r, 422, "unsupported", NULL, "The API listens on a "
			  "unix socket: set [api] public_url so that browsers "
			  "can come back to it.");
		goto out;
	}
	if (ret && !return_allowed(r->api, ret, redirect)) {
		api_error(r, 422, "invalid_value",
			  json_pack("{s:s}", "field", "return_to"),
			  "return_to must be an absolute http(s) URL on the "
			  "API's own origin or one listed in [api] "
			  "oauth_return.");
		goto out;
	}
	pr = preset_of(&a);
	cfg.auth_url = auth_url ? auth_url : pr ? pr->auth_url : NULL;
	cfg.token_url = token_url ? token_url : a.oauth_token_url
			? a.oauth_token_url : pr ? pr->token_url : NULL;
	cfg.client_id = client_id ? client_id : a.oauth_client_id;
	cfg.scope = scope ? scope : a.oauth_scope ? a.oauth_scope
			: pr ? pr->scope : NULL;
	cfg.client_secret = a.client_secret;
	if (cfg.auth_url == NULL || cfg.token_url == NULL ||
	    cfg.client_id == NULL) {
		api_error(r, 422, "invalid_value",
			  json_pack("{s:s}", "field", cfg.client_id == NULL
				    ? "client_id" : cfg.auth_url == NULL
				    ? "auth_url" : "token_url"),
			  "Account %s has no OAuth %s and its provider preset "
			  "gives none: send it in the request.", a.name,
			  cfg.client_id == NULL ? "client id" : cfg.auth_url ==
			  NULL ? "authorization endpoint" : "token endpoint");
		goto out;
	}
	rc = mx_account_oauth_begin(r->api->st, &a, &cfg, redirect, ret, &url,
				    state, &exp, &err);
	if (rc == MX_ERR_CONFIG || rc == MX_ERR_INSECURE) {
		api_error(r, 422, "invalid_value", NULL, "%s.", err.detail);
		goto out;
	}
	if (rc) {
		api_fail(r, &err);
		goto out;
	}
	mx_fmt_rfc3339(exp, exp_s);
	api_reply_json(r, 200, json_pack("{s:s,s:s,s:s}", "authorize_url", url,
					 "state", state, "expires_at", exp_s));
out:
	free(url);
	json_decref(body);
	mx_account_free(&a);
}
