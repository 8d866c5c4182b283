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
	/* The account's access token (owned, wiped on free); the token
	 * getter hands out copies.  When Google refuses it (401) the getter
	 * does not refresh by itself: the call fails with MX_ERR_AUTH and
	 * mx_backend_connect() refreshes once and saves the new token. */
	char *token;
	/* "https://HOST[:PORT]" the account's API URL names (owned). */
	char *base_url;
	volatile int cancel;
};

/* The API base URL of account A ("https://gmail.googleapis.com", or what
 * --api-url gave), malloc()ed; NULL on ENOMEM. */
char *mx_gmail_account_url(const struct mx_account *a);

#endif
