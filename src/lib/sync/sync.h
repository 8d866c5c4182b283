/* Sync engine internals shared by sync.c, account.c, api.c and export.c. */
#ifndef MX_SYNC_H
#define MX_SYNC_H

#include "backends/backend.h"
#include "store/store.h"

/*
 * Parses an account URL: imaps://USER@HOST[:PORT] (implicit TLS, 993),
 * imap://USER@HOST[:PORT] (STARTTLS required, 143).  USER may contain '@'
 * (the last '@' separates the host) and %XX escapes; HOST may be an IPv6
 * literal in brackets.  Fills host, port, user, tls of A.
 */
int mx_account_parse_url(const char *url, struct mx_account *a,
			 struct mx_error *err);

/*
 * Syncs ACCT over an already connected CONN (both borrowed), like mx_sync().
 * Used by the daemon, which keeps one connection per account.
 */
int mx_sync_conn(struct mx_store *st, const struct mx_account *acct,
		 struct mx_conn *conn, const struct mx_sync_opts *opts,
		 struct mx_sync_stats *stats_r, struct mx_error *err);

/* Writes A (which has an id) back to the store. */
int mx_account_save(struct mx_store *st, struct mx_account *a,
		    struct mx_error *err);

/*
 * For OAuth2 accounts (a refresh token and a token endpoint): makes sure
 * A->access_token is valid for two more minutes, refreshing it (FORCE:
 * always) and saving the new tokens.  MX_ERR_AUTH from the endpoint
 * (invalid_grant: revoked) is final; other errors are temporary.  A
 * password account is left alone.
 */
int mx_account_fresh_token(struct mx_store *st, struct mx_account *a,
			   bool force, struct mx_error *err);

/*
 * Connects A: a fresh token first; when the server still refuses the
 * token, one forced refresh and one more try -- then the error stands
 * (no loop).
 */
int mx_account_connect(struct mx_store *st, struct mx_account *a,
		       struct mx_conn **conn_r, struct mx_error *err);

/* Loads NAME, calls APPLY on it and writes it back, in one transaction. */
int mx_account_edit(struct mx_store *st, const char *name,
		    int (*apply)(struct mx_account *a, const void *arg,
				 struct mx_error *err),
		    const void *arg, struct mx_error *err);

/* Removes account NAME; its stored mail too with PURGE (else the messages
 * stay in the store, reachable by id, and come back if it is re-added). */
int mx_account_remove(struct mx_store *st, const char *name, bool purge,
		      struct mx_error *err);

/* Loads account NAME inside its own read transaction. */
int mx_account_load(struct mx_store *st, const char *name,
		    struct mx_account *a, struct mx_error *err);

#endif
