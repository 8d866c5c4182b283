/*
 * The HTTP/JSON API served by mxsyncd (doc/openapi.yaml is the contract,
 * doc/internals/api.md how it works).  This header is the daemon's
 * interface to it; nothing below the daemon includes it.
 */
#ifndef MX_API_H
#define MX_API_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

/* [api] of mxsync.conf (doc/mxsync.conf.5). */
struct mx_api_cfg {
	char *listen;           /* owned: "HOST:PORT", "[V6]:PORT" or
				   "unix:/path" */
	char *tls_cert;         /* owned, PEM file; NULL = plain HTTP */
	char *tls_key;          /* owned, PEM file */
	uint64_t max_body;      /* bytes (default 64 MiB) */
	unsigned max_connections; /* default 1000 */
	unsigned timeout_s;     /* idle or slow connection (default 30) */
	unsigned rate_limit;    /* requests a second a token (default 100) */
	/* The browser OAuth flow (src/api/oauth.c). */
	char *public_url;       /* owned: how browsers reach the API,
				   "https://mx.example"; NULL: http(s)://
				   and the listen address */
	char *oauth_return;     /* owned: origins the callback may send the
				   browser on to, space separated; NULL */
};

#define MX_API_LISTEN_DEFAULT "127.0.0.1:7780"

/* Parsed and defaulted by the daemon's configuration (src/daemon/
 * config.c); mx_api_start copies what it keeps. */

struct mx_api;

/*
 * What a write through the API asks the daemon's loop to do
 * (api_kick() in the handlers).  ACCOUNT is 0 for the whole kinds.
 */
enum mx_api_kick {
	MX_API_KICK_ACCOUNTS = 1, /* accounts added, changed or removed:
				     re-read them */
	MX_API_KICK_SYNC,         /* sync ACCOUNT now */
	MX_API_KICK_RECONNECT,    /* drop ACCOUNT's connections, connect again
				     (backoff and auth_failed reset) */
	MX_API_KICK_OUTBOX,       /* wake the outbox sender */
	MX_API_KICK_WEBHOOKS,     /* re-read the webhook endpoints */
};

/* Callbacks of the daemon.  KICK is called on an API thread and must
 * only queue the request and wake the loop. */
struct mx_api_hooks {
	void *ctx;
	void (*kick)(void *ctx, enum mx_api_kick what, uint32_t account);
};

/*
 * Starts listening on CFG->listen and serving requests on threads of its
 * own (one a connection: long-polls and event streams wait there, never
 * on the daemon's loop or its workers).  ST is the daemon's store (write
 * routes change it through the library, as the CLI does); WORKERS is
 * reported by /v1/health; HOOKS (copied; may be NULL) is how writes reach
 * the daemon's loop.  Logs
 * the address it listens on.  Errors: MX_ERR_CONFIG (bad listen address,
 * unreadable TLS files, TLS not supported), MX_ERR_IO (bind/listen),
 * MX_ERR_NOMEM.
 */
int mx_api_start(const struct mx_api_cfg *cfg, struct mx_store *st,
		 int workers, const struct mx_api_hooks *hooks,
		 struct mx_api **api_r, struct mx_error *err);

/* Events were committed: wake long-polls and streams.  NULL-safe; cheap
 * (a mutex and a broadcast), callable from any thread. */
void mx_api_notify(struct mx_api *api);

/* The bound address ("127.0.0.1:7780", "unix:/path"). */
const char *mx_api_address(const struct mx_api *api);

/* The daemon is stopping (SIGTERM): from now on every request is
 * answered 503 unavailable with Retry-After (/v1/health: 503 too), and
 * long-polls and event streams end; the listener stays open until
 * mx_api_stop(), so clients get an answer rather than a refused
 * connection while the daemon finishes its batches.  NULL-safe. */
void mx_api_drain(struct mx_api *api);

/* Answers 503 from now on, ends waits, closes the listener and every
 * connection, frees API and sets *API to NULL.  NULL-safe. */
void mx_api_stop(struct mx_api **api);

/* Prints the route table, "METHOD /path/{param}" a line (mxsyncd
 * --api-routes; the contract test compares it with doc/openapi.yaml). */
void mx_api_print_routes(FILE *fp);

#endif
