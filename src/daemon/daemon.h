/*
 * mxsyncd internals: configuration, the event loop and account runtime.
 *
 * Threads: the main thread owns the epoll loop, every account's state and
 * timers; blocking protocol work (connect, sync, IDLE start/done) runs as
 * jobs on a small worker pool.  An account is handed to at most one worker
 * at a time and its fields are only touched by that worker while the job
 * runs (the loop waits for the completion before looking again).
 */
#ifndef MX_DAEMON_H
#define MX_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "backends/backend.h"
#include "events/events.h"
#include "store/store.h"

#define MX_MAX_WEBHOOKS 32
#define MX_MAX_ACCT_CFG 256

struct mx_acct_cfg {
	char *name;
	char **folders;     /* NULL = default set */
	size_t nfolders;
	bool disabled;
	int idle_connection;    /* MX_IDLE_CONN_*; 0 = the [daemon] value */
	int api_poll_interval_s; /* API mode; 0 = the [daemon] value */
};

/* Where IDLE runs (idle_connection =): on a second connection that stays
 * in IDLE while syncs run on the first (push without the server's
 * re-IDLE delay), or on the one connection between syncs. */
enum { MX_IDLE_CONN_SEPARATE = 1, MX_IDLE_CONN_SHARED = 2 };

struct mx_config {
	int workers;            /* worker threads (default 4) */
	int poll_interval_s;    /* servers without IDLE (default 60) */
	int api_poll_interval_s; /* API mode: history.list (default 30) */
	int folder_interval_s;  /* other folders / full resync (default 120) */
	int idle_restart_s;     /* re-issue IDLE before 29 min (default 1500) */
	int idle_connection;    /* MX_IDLE_CONN_* (default separate) */
	int backoff_min_s;      /* first retry delay (default 5) */
	int backoff_max_s;      /* retry cap (default 900) */
	int64_t retention_days; /* events (default 30, 0 = keep) */
	uint64_t retention_count; /* events (default 0 = no count limit) */
	bool syslog;
	int log_level;
	unsigned trace;
	struct mx_webhook_cfg webhooks[MX_MAX_WEBHOOKS];
	char *webhook_strs[MX_MAX_WEBHOOKS][4]; /* owned strings */
	char **webhook_types[MX_MAX_WEBHOOKS];
	size_t nwebhooks;
	struct mx_acct_cfg accts[MX_MAX_ACCT_CFG];
	size_t naccts;
	bool api_enabled;       /* an [api] section: serve the HTTP API */
	struct mx_api_cfg api;  /* strings owned */
};

/* Loads PATH (missing file = defaults).  Errors name the file and line. */
int mx_config_load(const char *path, struct mx_config *cfg,
		   struct mx_error *err);
void mx_config_free(struct mx_config *cfg);
const struct mx_acct_cfg *mx_config_account(const struct mx_config *cfg,
					    const char *name);

/* Visible per-account states (also in `mxsync status`). */
enum mx_acct_state {
	MX_ST_CONNECTING = 0,
	MX_ST_INITIAL_SYNC,
	MX_ST_SYNCING,
	MX_ST_IDLE,
	MX_ST_POLLING,   /* no IDLE: waiting for the next poll */
	MX_ST_BACKOFF,
	MX_ST_AUTH_FAILED,
	MX_ST_DISABLED,
	MX_ST_STOPPED    /* the daemon shut down cleanly */
};

const char *mx_acct_state_name(enum mx_acct_state s);

#endif
