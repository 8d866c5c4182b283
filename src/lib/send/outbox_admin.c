/* The outbox: listing and user actions, retention, account removal and
 * the counts for status. */
#include <stdlib.h>
#include <string.h>

#include "send/outbox_int.h"

/* ---- listing and user actions ---- */

int mx_outbox_list(struct mx_store *st, uint32_t account_id,
		   struct mx_ob_entry **v_r, size_t *n_r, struct mx_error *err)
{
	return scan_entries(st, MX_DB_OUTBOX, account_id, v_r, n_r, err);
}

int mx_outbox_get(struct mx_store *st, uint64_t id, struct mx_ob_entry *e,
		  struct mx_error *err)
{
	struct mx_txn t;
	int rc = mx_txn_begin(st, false, &t, err);

	if (rc)
		return rc;
	rc = entry_get(&t, id, e, err);
	mx_txn_abort(&t);
	return rc;
}

int64_t mx_outbox_next_due(struct mx_store *st)
{
	struct mx_ob_entry *v = NULL;
	size_t n = 0;
	int64_t next = 0;

	if (pending_entries(st, &v, &n, NULL) != MX_OK)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int64_t when = v[i].next_attempt > 0 ? v[i].next_attempt : 1;

		/* Another process's entry: its commit wakes the daemon, but
		 * the process may die, so look again in a minute. */
		if (held_elsewhere(&v[i]))
			when = mx_wall_s() + OB_BACKOFF_MIN;
		if (next == 0 || when < next)
			next = when;
	}
	mx_ob_entries_free(v, n);
	return next;
}

/* What a user may retry or cancel: queued or failed mail, and an
 * interrupted send nobody is working on (its process is gone). */
static int user_may_touch(const struct mx_ob_entry *e, const char *what,
			  struct mx_error *err)
{
	if (e->state == MX_OB_QUEUED || e->state == MX_OB_FAILED ||
	    (e->state == MX_OB_SENDING && !held_elsewhere(e)))
		return MX_OK;
	return mx_error_set(err, MX_ERR_INVAL, "outbox entry %llu is %s%s: "
			    "only queued, failed or interrupted mail can be %s",
			    (unsigned long long)e->id,
			    mx_ob_state_name(e->state),
			    e->state == MX_OB_SENDING ? " right now" : "", what);
}

static int apply_retry(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
		       struct mx_error *err)
{
	int rc = user_may_touch(e, "retried", err);

	(void)t;
	(void)arg;
	if (rc)
		return rc;
	e->state = MX_OB_QUEUED;
	e->next_attempt = mx_wall_s();
	e->attempts = 0;
	e->first_try = 0; /* the age limit counts from the next attempt */
	e->finished_at = 0;
	release(e);
	return MX_OK;
}

static int apply_cancel(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
			struct mx_error *err)
{
	int rc = user_may_touch(e, "cancelled", err);

	(void)arg;
	if (rc)
		return rc;
	e->state = MX_OB_CANCELLED;
	e->finished_at = mx_wall_s();
	release(e);
	return mx_store_blob_unref(t, e->sha256, err);
}

int mx_outbox_retry(struct mx_store *st, uint64_t id, struct mx_error *err)
{
	struct mx_ob_entry e = {.id = id};
	int rc = run_step(st, &e, apply_retry, NULL, err);

	mx_ob_entry_free(&e);
	return rc;
}

int mx_outbox_cancel(struct mx_store *st, uint64_t id, struct mx_error *err)
{
	struct mx_ob_entry e = {.id = id};
	int rc = run_step(st, &e, apply_cancel, NULL, err);

	mx_ob_entry_free(&e);
	return rc;
}

/* ---- retention ---- */

struct prune_ctx {
	int64_t cutoff;
	uint64_t n;
};

static int prune_one(struct mx_txn *t, const MDB_val *key,
		     const MDB_val *val, void *ctx, struct mx_error *err)
{
	struct prune_ctx *pc = ctx;
	struct mx_ob_entry e;
	int64_t last;
	uint8_t k[4 + 256];
	int rc = MX_OK;

	(void)key;
	if (entry_decode(val->mv_data, val->mv_size, &e, NULL) != MX_OK)
		return MX_OK; /* left for a human to look at */
	/* Entries from before finished_at: their last known time. */
	last = e.finished_at ? e.finished_at
	       : e.sent_at > e.next_attempt ? e.sent_at : e.next_attempt;
	if (entry_pending(&e) || last >= pc->cutoff) {
		mx_ob_entry_free(&e);
		return MX_OK;
	}
	/* Still holding bytes: failed and cancelled-before-release
	 * entries, and sent ones whose copy to Sent was given up. */
	if (e.state == MX_OB_FAILED)
		rc = mx_store_blob_unref(t, e.sha256, err);
	if (rc == MX_OK && e.idem_key)
		rc = mx_db_del(t, MX_DB_OUTBOX_KEYS, k,
			       idem_key(k, e.account_id, e.idem_key),
			       NULL, 0, err);
	if (rc == MX_ERR_NOTFOUND)
		rc = MX_OK;
	mx_ob_entry_free(&e);
	if (rc)
		return rc;
	pc->n++;
	return MX_WALK_DELETE;
}

static int prune_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct prune_ctx *pc = ctx;

	int rc;

	pc->n = 0;
	rc = mx_store_walk(t, MX_DB_OUTBOX, NULL, 0, NULL, 0, 0, "outbox",
			   prune_one, pc, err);
	return rc ? rc : api_idem_prune(t, mx_wall_s(), err);
}

int mx_outbox_prune(struct mx_store *st, int64_t max_age_s, uint64_t *n_r,
		    struct mx_error *err)
{
	struct prune_ctx pc = {mx_wall_s() - max_age_s, 0};
	int rc = mx_store_write(st, prune_fn, &pc, err);

	if (n_r)
		*n_r = rc == MX_OK ? pc.n : 0;
	return rc;
}

/* ---- account removal ---- */

struct removed_ctx {
	uint32_t account_id;
	bool purge;
};

static int removed_one(struct mx_txn *t, const MDB_val *key,
		       const MDB_val *val, void *ctx, struct mx_error *err)
{
	const struct removed_ctx *rx = ctx;
	struct mx_ob_entry e;
	uint8_t k[4 + 256];
	bool holds;
	int rc = MX_OK;

	(void)key;
	if (entry_decode(val->mv_data, val->mv_size, &e, NULL) != MX_OK)
		return MX_OK;
	if (e.account_id != rx->account_id) {
		mx_ob_entry_free(&e);
		return MX_OK;
	}
	if (held_elsewhere(&e)) {
		rc = mx_error_set(err, MX_ERR_INVAL, "outbox entry %llu "
				  "of this account is being sent right "
				  "now (process %d); try again when it "
				  "is done", (unsigned long long)e.id,
				  e.owner_pid);
		mx_ob_entry_free(&e);
		return rc;
	}
	/* Entries that still hold their bytes. */
	holds = e.state == MX_OB_QUEUED || e.state == MX_OB_SENDING ||
		e.state == MX_OB_FAILED ||
		(e.state == MX_OB_SENT && !e.appended);
	if (holds)
		rc = mx_store_blob_unref(t, e.sha256, err);
	if (rc == MX_OK && (e.state == MX_OB_QUEUED ||
			    e.state == MX_OB_SENDING)) {
		json_t *x = json_object();

		json_object_set_new(x, "error", json_string("account removed"));
		rc = entry_event(t, "message.failed", &e, x, err);
		json_decref(x);
	}
	if (rc == MX_OK && rx->purge && e.idem_key) {
		rc = mx_db_del(t, MX_DB_OUTBOX_KEYS, k,
			       idem_key(k, e.account_id, e.idem_key),
			       NULL, 0, err);
		if (rc == MX_ERR_NOTFOUND)
			rc = MX_OK;
	}
	if (rc == MX_OK) {
		uint8_t ik[8];

		mx_put_be64(ik, e.id);
		rc = mx_db_del(t, MX_DB_OUTBOX_PENDING, ik, 8, NULL, 0, err);
		if (rc == MX_ERR_NOTFOUND)
			rc = MX_OK;
	}
	if (rc == MX_OK) {
		if (rx->purge) {
			rc = MX_WALK_DELETE;
		} else if (holds) {
			e.state = e.state == MX_OB_SENT ? MX_OB_SENT
							: MX_OB_CANCELLED;
			e.appended = true;
			e.finished_at = mx_wall_s();
			release(&e);
			rc = entry_put(t, &e, err);
		}
	}
	mx_ob_entry_free(&e);
	return rc;
}

int mx_outbox_account_removed(struct mx_txn *t, uint32_t account_id,
			      bool purge, struct mx_error *err)
{
	struct removed_ctx rctx = {account_id, purge};
	int rc;

	rc = mx_store_walk(t, MX_DB_OUTBOX, NULL, 0, NULL, 0, 0, "outbox",
			   removed_one, &rctx, err);
	if (rc == MX_OK && purge) {
		/* The send log of the account. */
		rc = sendlog_trim(t, account_id, INT64_MAX - OB_WINDOW, err);
	}
	return rc;
}

/* ---- counts for status ---- */

struct counts_ctx {
	uint32_t account_id;
	unsigned *counts;
};

static int count_one(struct mx_txn *t, const MDB_val *key, const MDB_val *val,
		     void *ctx, struct mx_error *err)
{
	const struct counts_ctx *cc = ctx;
	struct mx_ob_entry e;
	int rc = entry_decode(val->mv_data, val->mv_size, &e, err);

	(void)t;
	(void)key;
	if (rc)
		return rc;
	if (e.account_id == cc->account_id)
		cc->counts[e.state]++;
	mx_ob_entry_free(&e);
	return MX_OK;
}

int mx_outbox_counts(struct mx_txn *t, uint32_t account_id,
		     unsigned counts[MX_OB_CANCELLED + 1], struct mx_error *err)
{
	struct counts_ctx cc = {account_id, counts};

	memset(counts, 0, sizeof(unsigned) * (MX_OB_CANCELLED + 1));
	return mx_store_walk(t, MX_DB_OUTBOX, NULL, 0, NULL, 0, 0, "outbox",
			     count_one, &cc, err);
}
