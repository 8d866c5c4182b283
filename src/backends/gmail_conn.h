/*
 * The Gmail API backend's connection (src/backends/gmail.c), private to
 * src/backends/: the backend's slots and the API-mode sender
 * (src/backends/gmail_send.c) share it.  The registry (backend.c) wraps
 * it; nobody outside src/backends/ sees it.
 *
 * One connection is one struct mx_gmail client (gmail_api.h: quota
 * bucket, retries, 401 refresh) for one account, used by one thread.
 */
#ifndef MX_BACKENDS_GMAIL_CONN_H
#define MX_BACKENDS_GMAIL_CONN_H

#include "backends/gmail_api.h"
#include "store/store.h"

struct mx_conn {
	struct mx_gmail *g;     /* owned */
	/* The access token the client sends (owned, wiped on free); the
	 * token getter hands out copies.  A 401 makes the getter refresh
	 * it through the account's OAuth2 token URL (no store at hand:
	 * mx_backend_connect() saves refreshed tokens before connecting). */
	char *token;
	/* A copy of the account's OAuth2 settings for that refresh (owned,
	 * only the fields mx_account_fresh_token() reads). */
	struct mx_account acct;
	/* "https://HOST[:PORT]" the account's API URL names (owned). */
	char *base_url;
	volatile int cancel;
};

/* The API base URL of account A ("https://gmail.googleapis.com", or what
 * --api-url gave), malloc()ed; NULL on ENOMEM. */
char *mx_gmail_account_url(const struct mx_account *a);

#endif
