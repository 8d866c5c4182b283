/*
 * What the parts of the outbox share; private to src/lib/send/ (the
 * interface for everyone else is outbox.h).  The parts:
 *   outbox_entry.c    who works on an entry, the record codec, states
 *   outbox_quota.c    the daily quota (the send log)
 *   outbox_enqueue.c  enqueue (idempotency key) and reply headers
 *   outbox_run.c      working it off: steps, SMTP, through the backend,
 *                     the copy to Sent, recovery
 *   outbox_admin.c    listing and user actions, retention, account
 *                     removal, counts for status
 *   outbox_idem.c     the HTTP API's idempotency keys
 */
#ifndef MX_OUTBOX_INT_H
#define MX_OUTBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "account/account.h"
#include "backends/backend.h"
#include "send/outbox.h"

#define OB_MAX_ATTEMPTS 12       /* then failed */
#define OB_MAX_AGE (2 * 86400)   /* queued longer than this: failed */
#define OB_BACKOFF_MIN 60
#define OB_BACKOFF_MAX 3600
#define OB_APPEND_MAX_ATTEMPTS 8 /* copies to Sent: then given up (logged) */
#define OB_WINDOW 86400          /* the daily quota's rolling window */

/* ---- outbox_entry.c ---- */

/* Test hook MXSYNC_TEST_KILL_AT (see outbox_entry.c). */
void test_kill_at(const char *point);

/* Who works on an entry: this process claims and releases it; mine() and
 * held_elsewhere() tell whose claim it is. */
void claim(struct mx_ob_entry *e);
void release(struct mx_ob_entry *e);
bool mine(const struct mx_ob_entry *e);
bool held_elsewhere(const struct mx_ob_entry *e);

/* The record codec and the store access for one entry. */
bool set_opt_str(json_t *o, const char *k, const char *v);
int entry_decode(const void *data, size_t len, struct mx_ob_entry *e,
		 struct mx_error *err);
int entry_get(struct mx_txn *t, uint64_t id, struct mx_ob_entry *e,
	      struct mx_error *err);
bool entry_pending(const struct mx_ob_entry *e);
int entry_put(struct mx_txn *t, const struct mx_ob_entry *e,
	      struct mx_error *err);
char *clean_dup(const char *v);
int replace_str(char **f, const char *v);
int entry_event(struct mx_txn *t, const char *type,
		const struct mx_ob_entry *e, json_t *x, struct mx_error *err);

/* ---- outbox_quota.c ---- */

size_t sendlog_key(uint8_t *k, uint32_t account, int64_t when, uint64_t id);
int sendlog_trim(struct mx_txn *t, uint32_t account_id, int64_t now,
		 struct mx_error *err);

/* ---- outbox_enqueue.c ---- */

const struct mx_backend_ops *sending_backend(const struct mx_account *a);
size_t idem_key(uint8_t *k, uint32_t account, const char *key);

/* ---- outbox_idem.c (the API's keys, MX_DB_API_IDEM) ---- */

/* In T at time NOW: MX_OK with *ID_R (same request), MX_ERR_EXISTS (the
 * key was used for another request; *ID_R is its entry), MX_ERR_NOTFOUND
 * (none or expired), MX_ERR_INVAL (a bad key), MX_ERR_STORE. */
int api_idem_lookup(struct mx_txn *t, const struct mx_ob_idem *idem,
		    int64_t now, uint64_t *id_r, struct mx_error *err);
int api_idem_put(struct mx_txn *t, const struct mx_ob_idem *idem,
		 uint64_t id, int64_t now, struct mx_error *err);
/* Deletes the records older than MX_OB_IDEM_TTL. */
int api_idem_prune(struct mx_txn *t, int64_t now, struct mx_error *err);

/* ---- outbox_run.c ---- */

int run_step(struct mx_store *st, struct mx_ob_entry *e,
	     int (*apply)(struct mx_txn *, struct mx_ob_entry *, void *,
			  struct mx_error *),
	     void *arg, struct mx_error *err);
int scan_entries(struct mx_store *st, enum mx_dbi db, uint32_t account_id,
		 struct mx_ob_entry **v_r, size_t *n_r, struct mx_error *err);
int pending_entries(struct mx_store *st, struct mx_ob_entry **v_r,
		    size_t *n_r, struct mx_error *err);

#endif
