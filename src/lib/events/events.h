/*
 * The durable event feed (reading, retention) and webhook delivery.
 *
 * Events are appended by the store in the same write transaction as the
 * change they describe (mx_store_event(), src/lib/store/store.h); this
 * module only reads and prunes them, and delivers them to webhooks.
 * Event ids are a monotonic sequence starting at 1 and never reused.
 */
#ifndef MX_EVENTS_H
#define MX_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

/*
 * Reads up to MAX events with id > AFTER, oldest first, into a new JSON
 * array (*ARR_R, caller json_decref()s it).  *LAST_R (may be NULL) gets the
 * id of the last event returned, or AFTER when none.
 * If events after AFTER were already pruned by retention, fails with
 * MX_ERR_EXPIRED ("cursor N is older than the retained feed (oldest M):
 * resync") instead of silently skipping them.
 */
int mx_events_read(struct mx_store *st, uint64_t after, size_t max,
		   json_t **arr_r, uint64_t *last_r, struct mx_error *err);

/* Id of the newest event (0 when none). */
int mx_events_last_id(struct mx_store *st, uint64_t *id_r,
		      struct mx_error *err);

/*
 * Retention: deletes events older than MAX_AGE_S seconds (0 = no age
 * limit) and beyond the newest MAX_COUNT (0 = no count limit), but never
 * an event a webhook endpoint has not delivered yet unless it is older
 * than twice the limits.  Records the lowest retained id so that
 * mx_events_read() can tell a too-old cursor.  *PRUNED_R may be NULL.
 */
int mx_events_prune(struct mx_store *st, int64_t max_age_s,
		    uint64_t max_count, uint64_t *pruned_r,
		    struct mx_error *err);

/* ---- the daemon's state record of an account ---- */

/*
 * One record per account in MX_DB_ACCTSTATE, the only channel between
 * the CLI and a running mxsyncd: the daemon writes its view of the
 * account at each change (`mxsync status` shows the record as its
 * "daemon" object), and `mxsync account reauth` replaces it with the
 * state "reauth", which the daemon looks for while the account is in
 * auth_failed.  JSON: {"state","since"[,"pid"][,"last_success"]
 * [,"last_error"][,"next_attempt"]}; a zero number or an empty
 * last_error is left out.
 */
#define MX_ACCTSTATE_REAUTH "reauth"

struct mx_acctstate {
	char state[32];          /* the daemon's state name, or "reauth" */
	int64_t since;           /* unix time the state began */
	int64_t pid;             /* the daemon's; 0 for the CLI's request */
	int64_t last_success;    /* unix time of the last good sync, 0 */
	char last_error[MX_ERROR_DETAIL]; /* "" if none */
	int64_t next_attempt;    /* backoff: unix time of the retry, 0 */
};

/* Replaces ACCOUNT_ID's record with S in T.  MX_ERR_INVAL for an empty
 * or too long state name, MX_ERR_NOMEM, and the store's errors. */
int mx_acctstate_put(struct mx_txn *t, uint32_t account_id,
		     const struct mx_acctstate *s, struct mx_error *err);

/* ACCOUNT_ID's record.  MX_ERR_NOTFOUND when there is none, MX_ERR_STORE
 * "daemon state of account N: corrupt record" when it does not decode. */
int mx_acctstate_get(struct mx_txn *t, uint32_t account_id,
		     struct mx_acctstate *s_r, struct mx_error *err);

/* `mxsync account reauth`, after a good login: the record becomes
 * {"state":"reauth","since":NOW} and an account.reauth event is appended,
 * in T. */
int mx_acctstate_request_reauth(struct mx_txn *t, uint32_t account_id,
				struct mx_error *err);

/* Whether ACCOUNT_ID's record is a reauth request (false when there is no
 * record or it does not decode). */
bool mx_acctstate_reauth_requested(struct mx_txn *t, uint32_t account_id);

/* ---- webhooks ---- */

struct mx_webhook_cfg {
	const char *name;      /* [A-Za-z0-9._-]{1,64}: key of the cursor;
				  "#ID" for an endpoint made through the
				  HTTP API (mx_webhook_api_name()) */
	const char *url;       /* http:// only for loopback, else https:// */
	const char *secret;    /* HMAC-SHA256 key */
	const char *const *types; /* event types to send; NULL = all */
	size_t ntypes;
	const char *ca_file;   /* PEM bundle for https; NULL = system store */
	int timeout_s;         /* per request, default 10 */
	int max_backoff_s;     /* retry cap, default 300 */
};

struct mx_webhook;

/* The checks mx_webhook_start() makes, without starting anything (the
 * daemon refuses a configuration that fails them): name, URL (https://,
 * or http:// to a loopback address), secret, event types.  Errors name
 * the webhook ("webhook NAME: ...") and what is wrong. */
int mx_webhook_check(const struct mx_webhook_cfg *cfg, struct mx_error *err);

/*
 * Starts delivering to one endpoint on its own thread, from the endpoint's
 * persisted cursor (the first time: from the newest event at that moment,
 * i.e. only new events).  Each event is POSTed alone, in order, as its
 * JSON object, with headers:
 *   Content-Type: application/json
 *   X-Mxsync-Event-Id: <id>
 *   X-Mxsync-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * 2xx advances the cursor (persisted in LMDB); network errors, timeouts,
 * 5xx and 429 are retried with exponential backoff and jitter (Retry-After
 * honoured, capped at max_backoff_s); other 4xx are logged and the event is
 * skipped (the receiver refused it; retrying cannot help).  A slow or dead
 * endpoint only delays itself.
 */
int mx_webhook_start(struct mx_store *st, const struct mx_webhook_cfg *cfg,
		     struct mx_webhook **wh_r, struct mx_error *err);

/* New events may be available: wake the endpoint up now. */
void mx_webhook_notify(struct mx_webhook *wh);

/* Delivery statistics for status output. */
struct mx_webhook_status {
	uint64_t cursor;       /* last delivered event id */
	uint64_t delivered;    /* since start */
	uint64_t failures;     /* failed attempts since start */
	uint64_t consecutive;  /* failed attempts since the last delivery */
	int64_t last_delivery; /* unix time of the last 2xx, 0 if none */
	int64_t next_attempt;  /* unix time of the next retry, 0 if none */
	char last_error[256];
};
void mx_webhook_status(struct mx_webhook *wh, struct mx_webhook_status *s);

/* The status of this process's running endpoint NAME on store ST; false
 * when none runs (not started, disabled, or another process's). */
bool mx_webhook_status_of(const struct mx_store *st, const char *name,
			  struct mx_webhook_status *s);

/* Whether NAME is an API endpoint's delivery name, "#" and its decimal
 * id: mxsync.conf's section names cannot take that form, so the cursors
 * of the two kinds never share a key. */
bool mx_webhook_api_name(const char *name);

/* Stops the thread (an in-flight request is aborted within ~1 s) and frees
 * WH; sets *WH to NULL.  NULL-safe. */
void mx_webhook_stop(struct mx_webhook **wh);

/* ---- endpoints kept in the store (endpoints.c): /v1/webhooks ---- */

/* Endpoints that can be made through the API (mxsync.conf's not counted):
 * one delivery thread each. */
#define MX_WEBHOOK_EPS_MAX 64

/* What a caller sets on an endpoint (create: URL required; update: NULL
 * or -1 leaves a field as it is). */
struct mx_webhook_ep_in {
	const char *url;          /* https://, or http:// to loopback */
	const char *secret;       /* 16..256 printable ASCII, no space;
				     create: NULL = generated */
	const char *const *types; /* with TYPES_SET: the filter; none = all */
	size_t ntypes;
	bool types_set;
	int enabled;              /* 0, 1; -1 = unchanged (create: give 1) */
};

/*
 * Creates an endpoint (source "api", delivery name "#ID") with its secret
 * sealed; *ID_R its id; *SECRET_R (may be NULL) the generated secret
 * when IN->secret was NULL (free it with mx_secret_free()), else NULL.
 * Errors: MX_ERR_INVAL naming what is wrong (URL, secret, an unknown event
 * type, more than MX_WEBHOOK_EPS_MAX endpoints), the store's.  Nothing is
 * written on error.
 */
int mx_webhook_ep_create(struct mx_store *st,
			 const struct mx_webhook_ep_in *in, uint64_t *id_r,
			 char **secret_r, struct mx_error *err);
/* Changes endpoint ID (its "rev" goes up: mxsyncd restarts its delivery).
 * MX_ERR_NOTFOUND, MX_ERR_EXISTS for an endpoint of mxsync.conf, and the
 * errors of create. */
int mx_webhook_ep_update(struct mx_store *st, uint64_t id,
			 const struct mx_webhook_ep_in *in,
			 struct mx_error *err);
/* Deletes endpoint ID and its cursor.  MX_ERR_NOTFOUND, MX_ERR_EXISTS for
 * an endpoint of mxsync.conf. */
int mx_webhook_ep_delete(struct mx_store *st, uint64_t id,
			 struct mx_error *err);
/*
 * The public view of endpoint ID (*VIEW_R, new reference), never its
 * secret (times as unix seconds, null for none): {"id","name","source","url","events" (null: all),"enabled",
 * "created","updated","status":{"running","cursor","last_delivery",
 * "last_error","consecutive_failures","failures","delivered",
 * "next_attempt"}}; the counters are this process's delivery thread's
 * (mx_webhook_status_of()), zero when none runs.  MX_ERR_NOTFOUND.
 */
int mx_webhook_ep_get(struct mx_store *st, uint64_t id, json_t **view_r,
		      struct mx_error *err);
/* Every endpoint's view, by id (*ARR_R, new reference). */
int mx_webhook_ep_list(struct mx_store *st, json_t **arr_r,
		       struct mx_error *err);
/* mxsyncd at start: CFGS (mxsync.conf's endpoints) become the records of
 * source "config" (added, brought up to date, or removed); their secrets
 * stay in mxsync.conf. */
int mx_webhook_ep_register_config(struct mx_store *st,
				  const struct mx_webhook_cfg *cfgs, size_t n,
				  struct mx_error *err);

/*
 * mxsyncd's delivery threads for the API's endpoints.  mx_webhook_set_sync
 * (the set is made on the first call) brings them in line with the store:
 * starts the enabled ones, restarts the changed ones, stops the deleted
 * and disabled ones, and drops cursors left by deleted endpoints.  An
 * endpoint that cannot start is logged and skipped.
 */
struct mx_webhook_set;
int mx_webhook_set_sync(struct mx_webhook_set **set, struct mx_store *st,
			struct mx_error *err);
void mx_webhook_set_notify(struct mx_webhook_set *set);
void mx_webhook_set_stop(struct mx_webhook_set **set); /* NULL-safe */

/* Signature helper (exposed for tests): hex HMAC-SHA256 of "<t>.<body>". */
void mx_webhook_sign(const char *secret, int64_t t, const char *body,
		     size_t len, char out[65]);

/*
 * Lowest retained event id in transaction T: the recorded retention
 * boundary, 1 when nothing was ever pruned.  A cursor AFTER is expired
 * when AFTER + 1 < *OLDEST_R.
 */
int mx_events_oldest(struct mx_txn *t, uint64_t *oldest_r,
		     struct mx_error *err);

#endif
