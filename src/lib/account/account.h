/* Accounts (src/lib/account/, doc/internals/accounts.md): server URLs
 * (url.c), settings (settings.c), adding, loading, listing, saving and
 * editing (account.c), OAuth2 token refresh (token.c), removal, purge and
 * generations (lifecycle.c).  Stands on the store and util's layer only. */
#ifndef MX_ACCOUNT_H
#define MX_ACCOUNT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

/* ---- server URLs (url.c) ---- */

/*
 * Parses an incoming-server URL: imaps://USER@HOST[:PORT] (implicit TLS,
 * 993), imap://USER@HOST[:PORT] (STARTTLS required, 143),
 * pop3s://USER@HOST[:PORT] (995) or pop3://USER@HOST[:PORT] (STLS
 * required, 110).  USER may contain '@' (the last '@' separates the host)
 * and %XX escapes; HOST may be an IPv6 literal in brackets.  Fills host,
 * port, user, tls and proto of A.  Errors: MX_ERR_PARSE, MX_ERR_NOMEM.
 */
int mx_account_parse_url(const char *url, struct mx_account *a,
			 struct mx_error *err);

/*
 * Points A at a new incoming server URL (account edit): parses it like
 * mx_account_parse_url() and keeps the sending side with the address:
 * when the user name changes, a From address and an SMTP user that were
 * the old user name become the new one (so new outgoing mail uses the
 * new address); explicitly different ones stay.  Nothing changes on
 * error (MX_ERR_PARSE, MX_ERR_NOMEM).
 */
int mx_account_set_incoming(struct mx_account *a, const char *url,
			    struct mx_error *err);

/*
 * Parses an SMTP URL: smtps://[USER@]HOST[:PORT] (implicit TLS, 465),
 * smtp://[USER@]HOST[:PORT] (STARTTLS required, 587) or
 * smtp+plain://[USER@]HOST[:PORT] (no TLS, 25; credentials are then only
 * sent to a loopback host).  Fills url, host, port, tls and user of S
 * (user NULL when the URL has none); keeps S->password.
 * Errors: MX_ERR_PARSE, MX_ERR_NOMEM.
 */
int mx_smtp_url_parse(const char *url, struct mx_smtp_server *s,
		      struct mx_error *err);

/* ---- OAuth2 tokens (token.c) ---- */

/*
 * For OAuth2 accounts (a refresh token and a token endpoint): makes sure
 * A->access_token is valid for two more minutes, refreshing it (FORCE:
 * always) and saving the new tokens.  MX_ERR_AUTH from the endpoint
 * (invalid_grant: revoked) is final; other errors are temporary.  A
 * password account is left alone.
 */
int mx_account_fresh_token(struct mx_store *st, struct mx_account *a,
			   bool force, struct mx_error *err);

struct mx_oauth_token;
struct mx_oauth_cfg;
/*
 * Makes A an OAuth2 account with TOK (from a token endpoint): its refresh
 * and access token, and the endpoint, client id and scope that issued
 * them (NULL leaves each as it is).  MX_ERR_PROTOCOL when TOK has no
 * refresh token (offline access missing from the scope), MX_ERR_NOMEM.
 */
int mx_account_set_tokens(struct mx_account *a,
			  const struct mx_oauth_token *tok,
			  const char *token_url, const char *client_id,
			  const char *scope, struct mx_error *err);

/* ---- the browser OAuth flow (oauthflow.c) ---- */

/*
 * The authorization-code grant with PKCE where the redirect comes to the
 * HTTP API (POST /v1/accounts/{id}/oauth/start, GET /v1/oauth/callback;
 * doc/internals/api.md, "OAuth").  A started flow is a record in the
 * store, found by the state: single use, MX_OAUTH_FLOW_TTL seconds.
 */
#define MX_OAUTH_FLOW_TTL 600
/* base64url of 32 random bytes. */
#define MX_OAUTH_STATE_LEN 43

struct mx_oauth_flow {
	uint32_t account_id;
	uint64_t generation;  /* of the account when the flow started */
	char *account;        /* name */
	char *verifier;       /* PKCE code verifier (secret) */
	char *redirect_uri;
	char *return_to;      /* may be NULL */
	char *token_url, *client_id, *scope; /* the client of the flow */
	int64_t expires;      /* unix time */
};
void mx_oauth_flow_free(struct mx_oauth_flow *f);

/*
 * Starts a flow for account A with the OAuth client CFG (auth_url,
 * token_url, client_id, scope; the client secret is A's): a new state and
 * verifier, stored (expired flows are dropped meanwhile), and the
 * authorization URL for REDIRECT_URI (*URL_R, malloc()ed).  RETURN_TO
 * (may be NULL) is kept for the callback.  STATE_R gets the state,
 * *EXPIRES_R its expiry.  Errors: those of mx_oauth_authorize_url() (a
 * bad or missing endpoint, no client id: MX_ERR_CONFIG / MX_ERR_INSECURE),
 * MX_ERR_IO (no random bytes), the store's.
 */
int mx_account_oauth_begin(struct mx_store *st, const struct mx_account *a,
			   const struct mx_oauth_cfg *cfg,
			   const char *redirect_uri, const char *return_to,
			   char **url_r, char state_r[MX_OAUTH_STATE_LEN + 1],
			   int64_t *expires_r, struct mx_error *err);

/*
 * Takes the flow of STATE out of the store (whatever follows, the state
 * is spent: single use).  MX_ERR_NOTFOUND when there is none (unknown,
 * already used), MX_ERR_EXPIRED when it had expired; F_R then holds
 * nothing.  The store's errors.
 */
int mx_account_oauth_take(struct mx_store *st, const char *state,
			  struct mx_oauth_flow *f_r, struct mx_error *err);

/*
 * Ends flow F with the authorization CODE: exchanges it at F's token
 * endpoint (with the account's client secret only when F's endpoint and
 * client id are the account's own; else as a public client, and the
 * stored secret is dropped with the new tokens), then, in one write
 * transaction, stores the tokens on the account (mx_account_set_tokens)
 * and calls IN_TXN (may be NULL; what layers above the account do about
 * new credentials, such as the daemon's reauth mark).  The account must
 * still be the one the flow started for (same id and generation), else
 * MX_ERR_NOTFOUND.  The token endpoint's errors (MX_ERR_AUTH for
 * invalid_grant, ...) change nothing.
 */
typedef int (*mx_account_oauth_fn)(struct mx_txn *t, uint32_t account_id,
				   void *ctx, struct mx_error *err);
int mx_account_oauth_finish(struct mx_store *st,
			    const struct mx_oauth_flow *f, const char *code,
			    mx_account_oauth_fn in_txn, void *ctx,
			    struct mx_error *err);

/* ---- settings (settings.c) ---- */

/*
 * Account settings that `account add` and `account edit` share.  Every
 * field is optional: NULL leaves the setting as it is.  Values are text as
 * an operator types them and are validated by mx_account_apply_settings().
 */
struct mx_account_settings {
	const char *email;          /* From address: addr-spec */
	const char *provider;       /* preset name, recorded */
	const char *smtp_url;       /* see mx_smtp_url_parse(); "" removes */
	const char *smtp_password;  /* "" = use the account's credentials */
	const char *smtp_mechanism; /* PLAIN|LOGIN|XOAUTH2|OAUTHBEARER, ""
				     * = the strongest offered */
	const char *relay_url;      /* fallback relay; "" removes it */
	const char *relay_password; /* "" = none */
	const char *saves_sent;     /* "yes" | "no" */
	const char *daily_limit;    /* 0 .. 1000000, 0 = no limit */
	const char *quota_policy;   /* "hold" | "relay" */
	const char *max_attach;     /* bytes, K/M/G suffix (powers of 1024) */
	const char *pop3_delete;    /* "yes" | "no" */
	const char *access;         /* "owner" | "selected" | "all" */
	const char *owner;          /* API user name */
	const char *const *allow;   /* users for "selected"; replaces the list */
	size_t nallow;
	bool allow_set;             /* ALLOW replaces the list even when empty
				     * (NALLOW 0 clears it: PUT permissions) */
};

/*
 * Applies S to A after checking every value, so nothing changes on error
 * (MX_ERR_INVAL or MX_ERR_PARSE naming the option and the bad value;
 * MX_ERR_NOMEM).  Also checks the result as a whole: quota policy "relay"
 * needs a relay, "selected" needs at least one allowed user.
 */
int mx_account_apply_settings(struct mx_account *a,
			      const struct mx_account_settings *s,
			      struct mx_error *err);

/*
 * Checks what an operator typed that settings do not cover, at add (OLD
 * NULL) and after an edit (OLD: the record before it; values that did not
 * change are not checked again): a display name with a control character
 * (CR, LF, ... would break every send) or not UTF-8 is MX_ERR_INVAL; a
 * token URL must pass mx_oauth_check_url(); a relative password or CA
 * file name is made absolute (realpath: MX_ERR_INVAL naming the file when
 * it cannot be resolved).
 */
int mx_account_check_local(struct mx_account *a, const struct mx_account *old,
			   struct mx_error *err);

/* Total attachment bytes per message unless the account says otherwise. */
#define MX_DEFAULT_MAX_ATTACH ((uint64_t)25 * 1024 * 1024)
uint64_t mx_account_max_attach(const struct mx_account *a);

/* ---- provider presets (presets.c) ---- */

/* The strings mx_account_preset_fill() made (owned). */
struct mx_preset_fill {
	char *imap_url, *smtp_url;
	char daily_limit[16];
};

/*
 * What `account add --provider NAME --email EMAIL` and POST /v1/accounts
 * with "provider" fill in, each only when not given already: P->imap_url
 * (the preset's IMAP server, user EMAIL; the generic preset's is
 * imap.DOMAIN), S->smtp_url, S->saves_sent, S->daily_limit (Gmail:
 * 2000 for Workspace domains); with a refresh token or OAUTH_PENDING
 * (the browser flow gets the token later) P->oauth_token_url and
 * P->oauth_scope, else no token URL (password login).
 * S->provider is set to the preset's name.  P and S point into F
 * afterwards: free F (mx_preset_fill_free()) after using them.
 * Errors (nothing filled): MX_ERR_INVAL (unknown provider, EMAIL not
 * USER@DOMAIN, a provider that accepts only OAuth2 and no refresh token),
 * MX_ERR_NOMEM.
 */
int mx_account_preset_fill(const char *provider, const char *email,
			   bool oauth_pending, struct mx_account_params *p,
			   struct mx_account_settings *s,
			   struct mx_preset_fill *f, struct mx_error *err);
void mx_preset_fill_free(struct mx_preset_fill *f);

/* ---- adding, loading, listing, saving, editing (account.c) ---- */

/* Writes A (which has an id) back to the store. */
int mx_account_save(struct mx_store *st, struct mx_account *a,
		    struct mx_error *err);

/* mx_account_add() with settings (may be NULL), in one transaction. */
int mx_account_add_with(struct mx_store *st,
			const struct mx_account_params *p,
			const struct mx_account_settings *s,
			struct mx_error *err);

/*
 * A change of an account as `account edit`, `enable`, `disable` and
 * PATCH /v1/accounts/{id} make it; NULL (DISABLED: -1) leaves a field
 * alone.  IMAP_URL: mx_account_set_incoming().  PASSWORD replaces the
 * stored password and drops a password file, PASSWORD_FILE the other way
 * round; REFRESH_TOKEN replaces the OAuth2 refresh token (the access
 * token goes).  SETTINGS: mx_account_apply_settings().  ID, when not 0,
 * is the id the record must have (MX_ERR_NOTFOUND otherwise: the account
 * was removed and another added under its name meanwhile).
 */
struct mx_account_change {
	uint32_t id;
	const char *imap_url;
	const char *password;
	const char *password_file;
	const char *ca_file;
	const char *display_name;
	const char *refresh_token;
	int disabled;
	const struct mx_account_settings *settings;
};
/* A string field of an account: *F = a copy of V (the old value freed)
 * unless V is NULL; -1 out of memory. */
int mx_account_set_str(char **f, const char *v);
/* Applies the struct mx_account_change ARG to A: mx_account_edit()'s
 * APPLY.  Errors: those of the parts, MX_ERR_NOMEM. */
int mx_account_apply_change(struct mx_account *a, const void *arg,
			    struct mx_error *err);

/* Loads NAME, calls APPLY on it and writes it back, in one transaction. */
int mx_account_edit(struct mx_store *st, const char *name,
		    int (*apply)(struct mx_account *a, const void *arg,
				 struct mx_error *err),
		    const void *arg, struct mx_error *err);

/* Loads account NAME inside its own read transaction. */
int mx_account_load(struct mx_store *st, const char *name,
		    struct mx_account *a, struct mx_error *err);
/* Account with id ID (MX_ERR_NOTFOUND), secrets in clear text. */
int mx_account_load_id(struct mx_store *st, uint32_t id,
		       struct mx_account *a, struct mx_error *err);
/* Every account, in one read transaction; free with mx_accounts_free(). */
int mx_account_list_all(struct mx_store *st, struct mx_account **v_r,
			size_t *n_r, struct mx_error *err);
void mx_accounts_free(struct mx_account *v, size_t n);
/* Account A as `mxsync account list --json` and the HTTP API show it:
 * settings and where the credentials come from, never a secret.  A new
 * reference (jansson). */
json_t *mx_account_json(const struct mx_account *a);

/* ---- removal, purge, generations (lifecycle.c) ---- */

/*
 * Removes account NAME (doc/internals/accounts.md, "Removing").  PURGE:
 * also everything stored for it (mail, folders, indexes, daemon state, its
 * events) and the kept mail of earlier accounts of that name; NAME may
 * then also be a name that only kept mail has left (MX_ERR_NOTFOUND when
 * there is neither).  Without PURGE the mail is kept under the account's
 * id, and re-adding NAME with the same server re-attaches it.  Writes one
 * account.removed event per account (with "purged": true when purged).
 *
 * ON_REMOVED (may be NULL: nothing above the store keeps data of
 * accounts) is what modules above the account layer do about a removed
 * account, called inside the removal's write transaction for each
 * account id removed (the live one with PURGE as given; with PURGE each
 * kept account of NAME, purge true), before the account's data is
 * purged; an error aborts the removal.  Today that is the outbox's
 * mx_outbox_account_removed() (send/outbox.h): send stands above
 * account, so the caller that knows both passes it
 * (doc/internals/accounts.md, "Removing").
 */
typedef int (*mx_account_removed_fn)(struct mx_txn *t, uint32_t account_id,
				     bool purge, struct mx_error *err);
int mx_account_remove(struct mx_store *st, const char *name, bool purge,
		      mx_account_removed_fn on_removed, struct mx_error *err);

/*
 * A number that changes with every account removal (0 before the first):
 * mxsyncd polls it to stop a removed account's work at once.
 */
#define MX_ACCOUNT_REMOVALS_KEY "account_removals"
int mx_account_removals(struct mx_store *st, uint64_t *n_r,
			struct mx_error *err);

/*
 * Inside a write transaction that stores something for account A: MX_OK
 * if A's record still exists with A's generation, else MX_ERR_CANCELLED
 * (account scope) "account NAME was removed while this ran ...": the
 * caller aborts the transaction.  Every sync, POP3 and token commit calls
 * it, so a sync that outlives its account stores nothing.
 */
int mx_account_check_current(struct mx_txn *t, const struct mx_account *a,
			     struct mx_error *err);

#endif
