/*
 * OAuth2 client (RFC 6749) for mail providers: refresh_token grant, the
 * device authorization grant (RFC 8628) and the authorization-code grant
 * with PKCE (RFC 7636) over a loopback redirect; and the SASL initial
 * responses for XOAUTH2 and OAUTHBEARER (RFC 7628).  libcurl + jansson.
 *
 * Error classes matter to the scheduler (see mxsyncd): a token endpoint
 * that says invalid_grant (revoked, expired refresh token) or
 * invalid_client is MX_ERR_AUTH (final: the account goes to auth_failed);
 * network errors, timeouts, 5xx and 429 are MX_ERR_NET / MX_ERR_SERVER
 * (temporary: backoff).  The detail carries the endpoint's "error" and
 * "error_description" but never a token or secret.
 */
#ifndef MX_OAUTH_H
#define MX_OAUTH_H

#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

struct mx_oauth_cfg {
	const char *token_url;     /* https:// (http:// only for loopback) */
	const char *device_url;    /* device authorization endpoint, or NULL */
	const char *auth_url;      /* authorization endpoint (PKCE), or NULL */
	const char *client_id;
	const char *client_secret; /* may be NULL (public client) */
	const char *scope;         /* space separated, may be NULL */
	const char *ca_file;       /* NULL = system store */
	int timeout_s;             /* default 15 */
};

struct mx_oauth_token {
	char *access_token;
	char *refresh_token;  /* NULL if the endpoint did not rotate it */
	int64_t expires_at;   /* unix time; 0 if unknown */
	char *scope;
};

void mx_oauth_token_free(struct mx_oauth_token *t);

/* The rule every OAuth2 endpoint URL follows (requests carry secrets):
 * https://, or http:// to a loopback host.  Errors, WHAT naming the
 * setting: MX_ERR_CONFIG (not set, malformed, another scheme),
 * MX_ERR_INSECURE (http:// elsewhere), MX_ERR_NOMEM. */
int mx_oauth_check_url(const char *what, const char *url,
		       struct mx_error *err);

/* grant_type=refresh_token.  Client credentials go in HTTP Basic auth when
 * a secret is set (RFC 6749 2.3.1), else client_id in the body. */
int mx_oauth_refresh(const struct mx_oauth_cfg *cfg, const char *refresh_token,
		     struct mx_oauth_token *out, struct mx_error *err);

/* RFC 8628. */
struct mx_oauth_device {
	char *device_code;
	char *user_code;
	char *verification_uri;
	char *verification_uri_complete; /* may be NULL */
	int interval_s;                  /* default 5 */
	int64_t expires_at;
};
void mx_oauth_device_free(struct mx_oauth_device *d);
int mx_oauth_device_start(const struct mx_oauth_cfg *cfg,
			  struct mx_oauth_device *dev_r, struct mx_error *err);
/* Polls until the user approves (MX_OK with the token), denies
 * (MX_ERR_AUTH "access_denied"), the code expires (MX_ERR_AUTH
 * "expired_token"), or *CANCEL becomes non-zero (MX_ERR_CANCELLED).
 * Honours "slow_down". */
int mx_oauth_device_poll(const struct mx_oauth_cfg *cfg,
			 const struct mx_oauth_device *dev,
			 volatile int *cancel, struct mx_oauth_token *out,
			 struct mx_error *err);

/* PKCE with a loopback redirect: listens on 127.0.0.1 (random port),
 * builds the authorization URL (S256 challenge, random state) and calls
 * SHOW_URL(url, ctx) so the caller can print it; waits up to TIMEOUT_S
 * for the browser's redirect, checks state, and exchanges the code. */
int mx_oauth_pkce(const struct mx_oauth_cfg *cfg,
		  void (*show_url)(const char *url, void *ctx), void *ctx,
		  int timeout_s, volatile int *cancel,
		  struct mx_oauth_token *out, struct mx_error *err);

/*
 * The pieces of the authorization-code grant with PKCE (RFC 7636), for a
 * caller that owns the redirect (the HTTP API's /v1/oauth/callback):
 *
 * mx_oauth_pkce_pair: a fresh code verifier (86 characters of base64url
 * from 64 random bytes) and its S256 challenge; false when the random
 * generator fails.
 *
 * mx_oauth_authorize_url: the authorization request URL (RFC 6749 4.1.1)
 * for CFG (auth_url, client_id, scope), REDIRECT_URI, STATE and
 * CHALLENGE, malloc()ed in *URL_R.  Checks both endpoint URLs first
 * (mx_oauth_check_url's errors); MX_ERR_CONFIG when CFG has no client_id
 * or auth_url.
 *
 * mx_oauth_exchange_code: grant_type=authorization_code (RFC 6749 4.1.3)
 * with CODE, the same REDIRECT_URI and the VERIFIER; errors as for
 * mx_oauth_refresh (invalid_grant: MX_ERR_AUTH).
 */
#define MX_PKCE_VERIFIER_CAP 100
#define MX_PKCE_CHALLENGE_CAP 48
bool mx_oauth_pkce_pair(char verifier[MX_PKCE_VERIFIER_CAP],
			char challenge[MX_PKCE_CHALLENGE_CAP]);
int mx_oauth_authorize_url(const struct mx_oauth_cfg *cfg,
			   const char *redirect_uri, const char *state,
			   const char *challenge, char **url_r,
			   struct mx_error *err);
int mx_oauth_exchange_code(const struct mx_oauth_cfg *cfg, const char *code,
			   const char *redirect_uri, const char *verifier,
			   volatile int *cancel, struct mx_oauth_token *out,
			   struct mx_error *err);

/* SASL initial responses, base64, malloc()ed:
 * XOAUTH2:     "user=" USER "\x01auth=Bearer " TOKEN "\x01\x01"
 * OAUTHBEARER: "n,a=" USER "," "\x01host=" HOST "\x01port=" PORT
 *              "\x01auth=Bearer " TOKEN "\x01\x01"  (RFC 7628 3.1) */
char *mx_sasl_xoauth2(const char *user, const char *token);
char *mx_sasl_oauthbearer(const char *user, const char *host, int port,
			  const char *token);
/* PLAIN (RFC 4616): "" NUL USER NUL PASSWORD, base64, malloc()ed; NULL on
 * a NULL argument or out of memory.  Wipe it after use: it holds the
 * password. */
char *mx_sasl_plain(const char *user, const char *password);

/* NBYTES (at most 96) random bytes (OpenSSL RAND_bytes) as unpadded
 * base64url in OUT (CAP bytes, room for 4 * NBYTES / 3 + 2).  False when
 * the generator fails or NBYTES is too large.  PKCE verifiers, states and
 * the HTTP API's bearer tokens (src/lib/users/tokens.c). */
bool mx_random_b64url(size_t nbytes, char *out, size_t cap);

#endif
