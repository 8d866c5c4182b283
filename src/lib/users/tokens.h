/*
 * Users of the HTTP API: bearer tokens and the account permission rule.
 *
 * A token is "mxs_" followed by 43 characters of base64url (32 random
 * bytes).  It is shown once, at creation; the store keeps only its
 * SHA-256 (MX_DB_APITOKENS, doc/internals/store.md), so a presented token
 * is checked by hashing it and looking the hash up: no comparison of
 * secrets byte by byte, nothing to time.
 *
 * Every token acts as a user, a CRM's user id string; an admin token may
 * use every account.
 */
#ifndef MX_USERS_TOKENS_H
#define MX_USERS_TOKENS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

#define MX_APITOKEN_PREFIX "mxs_"
#define MX_APITOKEN_LEN 47 /* "mxs_" + 43 */
#define MX_APITOKEN_MAX_DAYS 36500

struct mx_apitoken {
	uint64_t id;       /* from the counter "next_apitoken_id" */
	char *name;        /* owned; "" when none was given */
	char *user;        /* owned */
	bool admin;
	int64_t created;   /* unix time */
	int64_t expires;   /* unix time; 0 = never */
};

void mx_apitoken_free(struct mx_apitoken *t);
void mx_apitokens_free(struct mx_apitoken *v, size_t n);

/* True if S may be a user id: 1 to 128 bytes of valid UTF-8 without
 * control characters. */
bool mx_api_user_valid(const char *s);

/*
 * Creates a token for USER (mx_api_user_valid), ADMIN or not, valid for
 * EXPIRES_DAYS days (0 = no expiry; at most MX_APITOKEN_MAX_DAYS), named
 * NAME (NULL or at most 64 bytes of printable UTF-8).  The token is
 * written to TOKEN_R (NUL-terminated) and is nowhere else afterwards;
 * INFO_R (may be NULL) gets the stored record (free with
 * mx_apitoken_free).  Errors: MX_ERR_INVAL naming the bad argument,
 * MX_ERR_IO (no randomness), the store's errors.
 */
int mx_apitoken_create(struct mx_store *st, const char *user, bool admin,
		       uint64_t expires_days, const char *name,
		       char token_r[MX_APITOKEN_LEN + 1],
		       struct mx_apitoken *info_r, struct mx_error *err);

/*
 * The record of TOKEN at time NOW.  MX_ERR_AUTH "unknown or revoked
 * token" (also for anything not shaped like a token, which is never
 * looked up), MX_ERR_AUTH "token expired"; the store's errors.  In a read
 * transaction of its own.
 */
int mx_apitoken_verify(struct mx_store *st, const char *token, int64_t now,
		       struct mx_apitoken *info_r, struct mx_error *err);

/* Every token's record, by id (free with mx_apitokens_free).  Errors: as
 * for the store's lists. */
int mx_apitoken_list(struct mx_store *st, struct mx_apitoken **v_r,
		     size_t *n_r, struct mx_error *err);

/* Deletes token ID: it stops working at once.  MX_ERR_NOTFOUND "no API
 * token ID". */
int mx_apitoken_revoke(struct mx_store *st, uint64_t id, struct mx_error *err);

/* The record as JSON ({"id","name","user","admin","created","expires"};
 * expires null when it never does).  A new reference, NULL when out of
 * memory. */
json_t *mx_apitoken_json(const struct mx_apitoken *t);

/*
 * The permission rule: whether USER (ADMIN: an admin token) may use
 * account A.  Admins may use every account; others when its access is
 * "all", when they own it, or when it is "selected" and they are listed.
 */
bool mx_api_may_use(const struct mx_account *a, const char *user, bool admin);

#endif
