/*
 * The event feed: reading by cursor and retention.  Events themselves are
 * appended by mx_store_event() in the transaction of the change they
 * describe; this file never writes one.
 *
 * Retention only ever deletes a prefix of the log (oldest first, stopping
 * at the first event it must keep), so that one number, the lowest
 * retained id in META, is enough to tell a reader its cursor fell off the
 * end.  Skipping a kept event to delete a later one would leave a hole no
 * cursor check could see.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "events/events.h"
#include "events/events_int.h"

/* Deletions per write transaction: keeps the writer lock short so a sync
 * running at the same time is not stalled by a large prune. */
#define PRUNE_BATCH 10000

static int get_u64(struct mx_txn *t, enum mx_dbi db, const char *key,
		   uint64_t *v_r, struct mx_error *err)
{
	MDB_val v;
	int rc;

	rc = mx_db_get(t, db, key, strlen(key), &v, err);
	if (rc)
		return rc;
	if (v.mv_size != 8)
		return mx_error_set(err, MX_ERR_STORE, "corrupt value for %s",
				    key);
	*v_r = mx_get_be64(v.mv_data);
	return MX_OK;
}

int mx_events_oldest(struct mx_txn *t, uint64_t *oldest_r,
		     struct mx_error *err)
{
	uint64_t v = 1;
	int rc;

	rc = get_u64(t, MX_DB_META, MX_EVENTS_OLDEST_KEY, &v, err);
	if (rc == MX_ERR_NOTFOUND)
		v = 1;
	else if (rc)
		return rc;
	*oldest_r = v ? v : 1;
	return MX_OK;
}

/* The last key of the log, if it is a well-formed id above *ID_R. */
static int last_key(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		    void *ctx, struct mx_error *err)
{
	uint64_t *id_r = ctx;

	(void)t;
	(void)v;
	(void)err;
	if (k->mv_size == 8 && mx_get_be64(k->mv_data) > *id_r)
		*id_r = mx_get_be64(k->mv_data);
	return MX_WALK_STOP;
}

/* Newest id handed out: the counter is authoritative (it survives a prune
 * that emptied the log), the last key covers a store without it. */
static int last_id(struct mx_txn *t, uint64_t *id_r, struct mx_error *err)
{
	uint64_t next = 0, id = 0;
	int rc;

	rc = get_u64(t, MX_DB_META, "next_event", &next, err);
	if (rc == MX_OK && next > 0)
		id = next - 1;
	else if (rc != MX_OK && rc != MX_ERR_NOTFOUND)
		return rc;
	rc = mx_store_walk(t, MX_DB_EVENTS, NULL, 0, NULL, 0, MX_WALK_REVERSE,
			   "events", last_key, &id, err);
	if (rc)
		return rc;
	*id_r = id;
	return MX_OK;
}

int mx_events_last_id(struct mx_store *st, uint64_t *id_r,
		      struct mx_error *err)
{
	struct mx_txn t;
	int rc;

	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = last_id(&t, id_r, err);
	mx_txn_abort(&t);
	return rc;
}

struct read_ctx {
	json_t *arr;
	size_t max;
	uint64_t last;
};

static int read_one(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		    void *ctx, struct mx_error *err)
{
	struct read_ctx *c = ctx;
	json_error_t jerr;
	json_t *ev;
	uint64_t id;

	(void)t;
	if (json_array_size(c->arr) >= c->max)
		return MX_WALK_STOP;
	if (k->mv_size != 8)
		return mx_error_set(err, MX_ERR_STORE, "events: corrupt key");
	id = mx_get_be64(k->mv_data);
	ev = json_loadb(v->mv_data, v->mv_size, 0, &jerr);
	if (ev == NULL || !json_is_object(ev)) {
		json_decref(ev);
		return mx_error_set(err, MX_ERR_STORE,
				    "event %" PRIu64 ": corrupt record", id);
	}
	if (json_array_append_new(c->arr, ev) != 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	c->last = id;
	return MX_OK;
}

int mx_events_read(struct mx_store *st, uint64_t after, size_t max,
		   json_t **arr_r, uint64_t *last_r, struct mx_error *err)
{
	struct read_ctx rctx = {NULL, max, after};
	struct mx_txn t;
	json_t *arr = NULL;
	uint64_t oldest;
	uint8_t kb[8];
	int rc;

	*arr_r = NULL;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	/* One read transaction: the boundary and the events are checked
	 * against the same snapshot, so a prune committing meanwhile cannot
	 * slip between them. */
	rc = mx_events_oldest(&t, &oldest, err);
	if (rc)
		goto out;
	if (after < oldest - 1) {
		rc = mx_error_set(err, MX_ERR_EXPIRED,
				  "cursor %" PRIu64 " is older than the "
				  "retained feed (oldest %" PRIu64 "): resync",
				  after, oldest);
		goto out;
	}
	arr = json_array();
	if (arr == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	if (max == 0 || after == UINT64_MAX)
		goto done;
	mx_put_be64(kb, after + 1);
	rctx.arr = arr;
	rc = mx_store_walk(&t, MX_DB_EVENTS, NULL, 0, kb, 8, 0, "events",
			   read_one, &rctx, err);
	if (rc)
		goto out;
done:
	*arr_r = arr;
	arr = NULL;
	if (last_r)
		*last_r = rctx.last;
	rc = MX_OK;
out:
	mx_txn_abort(&t);
	json_decref(arr);
	return rc;
}

struct prune_ctx {
	int64_t now;
	int64_t max_age_s;
	uint64_t max_count;
	uint64_t deleted; /* by the last run of prune_batch */
	bool more;        /* the batch was full: run again */
};

static int min_one(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		   void *ctx, struct mx_error *err)
{
	uint64_t *min = ctx;

	(void)t;
	(void)err;
	/* A malformed cursor protects nothing rather than everything:
	 * retention must not stall on it. */
	if (v->mv_size != 8) {
		mx_warn("webhook cursor %.*s is corrupt; ignored",
			(int)k->mv_size, (const char *)k->mv_data);
		return MX_OK;
	}
	if (mx_get_be64(v->mv_data) < *min)
		*min = mx_get_be64(v->mv_data);
	return MX_OK;
}

/* Lowest cursor of any webhook endpoint (UINT64_MAX when none): events
 * after it have not reached every endpoint yet. */
static int min_cursor(struct mx_txn *t, uint64_t *min_r, struct mx_error *err)
{
	uint64_t min = UINT64_MAX;
	int rc;

	rc = mx_store_walk(t, MX_DB_WEBHOOKS, NULL, 0, NULL, 0, 0, "webhooks",
			   min_one, &min, err);
	if (rc)
		return rc;
	*min_r = min;
	return MX_OK;
}

/* Event time, or INT64_MAX (never too old) when the record has none. */
static int64_t event_time(uint64_t id, const MDB_val *v)
{
	json_t *ev = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	json_t *tm = json_object_get(ev, "time");
	int64_t t = INT64_MAX;

	if (json_is_integer(tm))
		t = (int64_t)json_integer_value(tm);
	else
		mx_warn("event %" PRIu64 " has no time; age limit not applied",
			id);
	json_decref(ev);
	return t;
}

/*
 * Whether event ID may go.  The soft limits apply to events every
 * endpoint has; twice the limits apply to all, so that a dead endpoint
 * cannot make the log grow without bound.
 */
static bool prunable(const struct prune_ctx *c, uint64_t id, const MDB_val *v,
		     uint64_t last, uint64_t min_cur)
{
	bool soft = false, hard = false;

	if (c->max_count) {
		if (last >= c->max_count && id <= last - c->max_count)
			soft = true;
		if (c->max_count <= UINT64_MAX / 2 &&
		    last >= 2 * c->max_count && id <= last - 2 * c->max_count)
			hard = true;
	}
	if (c->max_age_s > 0 && !hard && (!soft || id > min_cur)) {
		int64_t t = event_time(id, v);

		if (t < c->now - c->max_age_s)
			soft = true;
		if (c->max_age_s <= INT64_MAX / 4 &&
		    t < c->now - 2 * c->max_age_s)
			hard = true;
	}
	return hard || (soft && id <= min_cur);
}

/* One prune_batch walk over the head of the log. */
struct prune_walk {
	struct prune_ctx *c;
	uint64_t last, min_cur;
	bool stopped;     /* at event KEPT, which stays */
	uint64_t kept;
};

static int prune_one(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		     void *ctx, struct mx_error *err)
{
	struct prune_walk *pw = ctx;
	uint64_t id;

	(void)t;
	if (k->mv_size != 8)
		return mx_error_set(err, MX_ERR_STORE, "events: corrupt key");
	id = mx_get_be64(k->mv_data);
	if (prunable(pw->c, id, v, pw->last, pw->min_cur)) {
		if (pw->c->deleted < PRUNE_BATCH) {
			pw->c->deleted++;
			return MX_WALK_DELETE;
		}
		pw->c->more = true;
	}
	pw->stopped = true;
	pw->kept = id;
	return MX_WALK_STOP;
}

static int prune_batch(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct prune_ctx *c = vctx;
	struct prune_walk pw = {c, 0, UINT64_MAX, false, 0};
	uint64_t oldest = 1, boundary;
	uint8_t be[8];
	int rc;

	/* mx_store_write() may run us again after growing the map. */
	c->deleted = 0;
	c->more = false;
	rc = last_id(t, &pw.last, err);
	if (rc == MX_OK)
		rc = min_cursor(t, &pw.min_cur, err);
	if (rc == MX_OK)
		rc = mx_events_oldest(t, &oldest, err);
	if (rc == MX_OK)
		rc = mx_store_walk(t, MX_DB_EVENTS, NULL, 0, NULL, 0, 0,
				   "events", prune_one, &pw, err);
	if (rc || c->deleted == 0)
		return rc;
	/* The first kept event, or the next id when the log is now empty. */
	boundary = pw.stopped ? pw.kept : pw.last + 1;
	if (boundary > oldest) {
		mx_put_be64(be, boundary);
		rc = mx_db_put(t, MX_DB_META, MX_EVENTS_OLDEST_KEY,
			       strlen(MX_EVENTS_OLDEST_KEY), be, 8, 0, err);
	}
	return rc;
}

int mx_events_prune(struct mx_store *st, int64_t max_age_s,
		    uint64_t max_count, uint64_t *pruned_r,
		    struct mx_error *err)
{
	struct prune_ctx c = {0};
	uint64_t total = 0;
	int rc = MX_OK;

	if (pruned_r)
		*pruned_r = 0;
	if (max_age_s < 0)
		return mx_error_set(err, MX_ERR_INVAL,
				    "event retention: negative maximum age");
	if (max_age_s == 0 && max_count == 0)
		return MX_OK;
	c.now = mx_wall_s();
	c.max_age_s = max_age_s;
	c.max_count = max_count;
	do {
		rc = mx_store_write(st, prune_batch, &c, err);
		if (rc)
			break;
		total += c.deleted;
	} while (c.more);
	if (pruned_r)
		*pruned_r = total;
	if (total)
		mx_debug("events: pruned %" PRIu64, total);
	return rc;
}
