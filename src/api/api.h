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
};

#define MX_API_LISTEN_DEFAULT "127.0.0.1:7780"

/* Parsed and defaulted by the daemon's configuration (src/daemon/
 * config.c); mx_api_start copies what it keeps. */

struct mx_api;

/*
 * Starts listening on CFG->listen and serving requests on threads of its
 * own (one a connection: long-polls and event streams wait there, never
 * on the daemon's loop or its workers).  ST is the daemon's store, used
 * for read transactions only; WORKERS is reported by /v1/health.  Logs
 * the address it listens on.  Errors: MX_ERR_CONFIG (bad listen address,
 * unreadable TLS files, TLS not supported), MX_ERR_IO (bind/listen),
 * MX_ERR_NOMEM.
 */
int mx_api_start(const struct mx_api_cfg *cfg, struct mx_store *st,
		 int workers, struct mx_api **api_r, struct mx_error *err);

/* Events were committed: wake long-polls and streams.  NULL-safe; cheap
 * (a mutex and a broadcast), callable from any thread. */
void mx_api_notify(struct mx_api *api);

/* The bound address ("127.0.0.1:7780", "unix:/path"). */
const char *mx_api_address(const struct mx_api *api);

/* Answers 503 from now on, ends waits, closes the listener and every
 * connection, frees API and sets *API to NULL.  NULL-safe. */
void mx_api_stop(struct mx_api **api);

/* Prints the route table, "METHOD /path/{param}" a line (mxsyncd
 * --api-routes; the contract test compares it with doc/openapi.yaml). */
void mx_api_print_routes(FILE *fp);

#endif
