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

/* Loads account NAME inside its own read transaction. */
int mx_account_load(struct mx_store *st, const char *name,
		    struct mx_account *a, struct mx_error *err);

#endif
