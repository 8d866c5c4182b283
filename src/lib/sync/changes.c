/*
 * The change-log model's driver (MX_CAP_MODEL_CHANGES: the Gmail API
 * mode): metadata only, through the backend's changes() slot.
 *
 *  - The account has one folder, the one the backend lists ("All Mail").
 *    Each message gets a location there with a synthetic UID (the
 *    folder's uidnext, counting up); its flags come from the labels
 *    (no UNREAD -> \Seen, STARRED -> \Flagged) and its keywords are the
 *    label ids, so status, ls and export treat it like any message.
 *  - What is stored of a message is what the backend reports and nothing
 *    else: the record holds the sender address and the internal date
 *    (ingest.h, mx_ingest_prepare_meta(): no subject, no Message-ID, no
 *    body -- the blob is empty), the location the labels, and the map
 *    below the server's message id and thread id.
 *  - The map: meta key "apiid" + u32 account id + message id, value u64
 *    record id + u32 UID + thread id, written in the same transaction as
 *    the record, its location and its message.new event.  A message
 *    already in the map is never stored again: a rerun after a crash, a
 *    full relisting after an expired cursor, two syncs at once -- each
 *    message.new happens once.
 *    The reverse map, meta key "apimsg" + u32 account id + u64 record
 *    id, value the message id, is what `show` fetches live by.
 *  - The cursor: meta key "apicursor" + u32 account id, the string the
 *    backend returned, written only after every batch of the run has
 *    committed.  A crash replays from the old cursor: applying a change
 *    twice is harmless (present: compared with what is stored; removed:
 *    gone already).
 *  - A cursor the server no longer knows (MX_ERR_EXPIRED) means a full
 *    listing; stored messages the listing did not report are then gone
 *    from the server and are removed like the others.
 *  - Removed: the location and the record go, with message.deleted (the
 *    record has no other location: API mode has one folder).  Labels
 *    changed: the location is updated, with message.updated.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "account/account.h"
#include "events/types.h"
#include "mime/mime.h"
#include "sync/ingest.h"
#include "sync/sync.h"

#define MAP_PREFIX "apiid" /* mx_store_remote_key() */
#define CURSOR_PREFIX "apicursor"
#define MAP_KEY_MAX MX_STORE_REMOTE_KEY_MAX

struct csync {
	struct mx_store *st;
	struct mx_account *a;             /* foreign */
	const struct mx_sync_opts *opts;
	struct mx_sync_stats *stats;
	const struct mx_backend_ops *be;
	struct mx_conn *conn;
	struct mx_folder folder;
	/* The batch being committed (borrowed from the backend's call). */
	const struct mx_change *v;
	size_t n;
	/* Full listing: the record ids reported present (to find what is
	 * gone afterwards). */
	bool full;
	uint64_t *seen;
	size_t nseen, capseen;
	char *cursor;                     /* to store after the run */
	uint64_t created, updated, removed; /* of the batch, once committed */
	struct mx_sync_progress prog;
};

#define map_key mx_store_remote_key
#define rev_key mx_store_remote_rev_key

int mx_changes_remote_id(struct mx_txn *t, uint32_t account_id, uint64_t msg,
			 char **id_r, struct mx_error *err)
{
	return mx_store_remote_get(t, account_id, msg, id_r, NULL, err);
}

static void cursor_key(uint32_t account_id,
		       uint8_t out[sizeof(CURSOR_PREFIX) - 1 + 4])
{
	memcpy(out, CURSOR_PREFIX, sizeof(CURSOR_PREFIX) - 1);
	mx_put_be32(out + sizeof(CURSOR_PREFIX) - 1, account_id);
}

/* The record and UID stored for message ID; MX_ERR_NOTFOUND if none. */
static int map_lookup(struct mx_txn *t, uint32_t account_id, const char *id,
		      uint64_t *msg_r, uint32_t *uid_r, struct mx_error *err)
{
	uint8_t k[MAP_KEY_MAX];
	size_t kl = map_key(account_id, id, k);
	MDB_val v;
	int rc;

	rc = mx_db_get(t, MX_DB_META, k, kl, &v, NULL);
	if (rc == MX_ERR_NOTFOUND)
		return rc;
	if (rc)
		return mx_error_set(err, rc, "message map");
	if (v.mv_size < 12)
		return mx_error_set(err, MX_ERR_STORE, "message map entry of "
				    "%s is damaged", id);
	*msg_r = mx_get_be64(v.mv_data);
	*uid_r = mx_get_be32((const uint8_t *)v.mv_data + 8);
	return MX_OK;
}

static uint32_t label_flags(const char *labels)
{
	uint32_t fl = MX_FL_SEEN;
	const char *p = labels;

	while (*p) {
		size_t n = strcspn(p, " ");

		if (n == 6 && memcmp(p, "UNREAD", 6) == 0)
			fl &= ~MX_FL_SEEN;
		else if (n == 7 && memcmp(p, "STARRED", 7) == 0)
			fl |= MX_FL_FLAGGED;
		else if (n == 5 && memcmp(p, "DRAFT", 5) == 0)
			fl |= MX_FL_DRAFT;
		p += n;
		p += strspn(p, " ");
	}
	return fl;
}

static int folder_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct csync *c = ctx;
	struct mx_remote_folder *rf = NULL;
	size_t nrf = 0;
	int rc;

	rc = mx_account_check_current(t, c->a, err);
	if (rc)
		return rc;
	rc = c->be->list(c->conn, &rf, &nrf, err);
	if (rc)
		return rc;
	if (nrf != 1) {
		mx_remote_folders_free(rf, nrf);
		return mx_error_set(err, MX_ERR_PROTOCOL, "the %s backend "
				    "lists %zu folders, expected one",
				    c->be->title, nrf);
	}
	mx_folder_free(&c->folder);
	memset(&c->folder, 0, sizeof(c->folder));
	rc = mx_store_folder_find(t, c->a->id, rf[0].name, &c->folder, NULL);
	if (rc != MX_ERR_NOTFOUND) {
		mx_remote_folders_free(rf, nrf);
		return rc ? mx_error_set(err, rc, "folder %s", rf[0].name)
			  : MX_OK;
	}
	c->folder.account_id = c->a->id;
	c->folder.name = strdup(rf[0].name);
	c->folder.wire = strdup(rf[0].wire);
	c->folder.delim = rf[0].delim;
	c->folder.special = rf[0].special;
	mx_remote_folders_free(rf, nrf);
	if (c->folder.name == NULL || c->folder.wire == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	/* Synthetic UIDs that never change meaning. */
	c->folder.uidvalidity = 1;
	c->folder.uidnext = 1;
	c->folder.initial_top = 1;
	c->folder.initial_low = 1;
	c->folder.initial_done = true;
	return mx_store_folder_put(t, &c->folder, err);
}

/* Removes message MSG (location UID) and its map entry KEY. */
static int remove_msg(struct mx_txn *t, struct csync *c, uint64_t msg,
		      uint32_t uid, const uint8_t *k, size_t kl,
		      struct mx_error *err)
{
	int rc;

	rc = mx_store_loc_del(t, c->folder.id, uid, err);
	if (rc == MX_ERR_NOTFOUND)
		rc = MX_OK;
	if (rc == MX_OK)
		rc = mx_store_msg_del(t, msg, err);
	if (rc == MX_ERR_NOTFOUND)
		rc = MX_OK;
	if (rc == MX_OK)
		rc = mx_event_message_deleted(t, c->a->id, msg, err);
	if (rc == MX_OK && k)
		rc = mx_db_del(t, MX_DB_META, k, kl, NULL, 0, err);
	if (rc == MX_OK) {
		uint8_t rk[MX_STORE_REMOTE_REV_KEY];

		rev_key(c->a->id, msg, rk);
		rc = mx_db_del(t, MX_DB_META, rk, sizeof(rk), NULL, 0, err);
		if (rc == MX_ERR_NOTFOUND)
			rc = MX_OK;
	}
	if (rc == MX_OK)
		c->removed++;
	return rc;
}

/* Whether the space-separated label lists A and B (NULL: none) hold the
 * same labels, in any order (`mxsync flag` appends, Gmail has its own
 * order). */
static bool same_labels(const char *a, const char *b)
{
	size_t na = 0, nb = 0;

	for (int pass = 0; pass < 2; pass++) {
		const char *p = pass ? b : a, *other = pass ? a : b;

		while (p && *p) {
			size_t n = strcspn(p, " ");
			const char *q = other;
			bool found = false;

			while (q && *q && !found) {
				size_t m = strcspn(q, " ");

				found = m == n && memcmp(p, q, n) == 0;
				q += m;
				q += strspn(q, " ");
			}
			if (!found)
				return false;
			*(pass ? &nb : &na) += 1;
			p += n;
			p += strspn(p, " ");
		}
	}
	return na == nb;
}

static int update_labels(struct mx_txn *t, struct csync *c, uint64_t msg,
			 uint32_t uid, const struct mx_change *ch,
			 struct mx_error *err)
{
	struct mx_loc l;
	uint32_t fl = label_flags(ch->labels);
	const char *kw = ch->labels[0] ? ch->labels : NULL;
	int rc;

	rc = mx_store_loc_get(t, c->folder.id, uid, &l, err);
	if (rc)
		return rc;
	if (l.flags == fl && same_labels(l.keywords, kw)) {
		free(l.keywords);
		return MX_OK;
	}
	free(l.keywords);
	l.flags = fl;
	l.keywords = (char *)(uintptr_t)kw;
	rc = mx_store_loc_put(t, &l, err);
	if (rc)
		return rc;
	rc = mx_event_message_labels(t, c->a->id, c->folder.id, msg, uid, fl,
				     ch->labels, err);
	if (rc == MX_OK)
		c->updated++;
	return rc;
}

static int add_msg(struct mx_txn *t, struct csync *c, struct mx_folder *f,
		   const struct mx_change *ch, const uint8_t *k, size_t kl,
		   uint64_t *msg_r, struct mx_error *err)
{
	struct mx_ingest_new n = {0};
	struct mx_parsed parsed;
	uint8_t sha[32], identity[32];
	struct mx_buf v = {0};
	uint64_t id;
	int rc;

	rc = mx_ingest_prepare_meta(ch->id, ch->from, sha, identity, &parsed,
				    err);
	if (rc)
		return rc;
	n.account_id = c->a->id;
	n.folder_id = f->id;
	n.folder_name = f->name;
	n.uid = f->uidnext++;
	n.flags = label_flags(ch->labels);
	n.keywords = ch->labels[0] ? ch->labels : NULL;
	n.internaldate = ch->date;
	n.raw = "";
	n.len = 0;
	n.sha = sha;
	n.identity = identity;
	n.parsed = &parsed;
	n.remote_id = ch->id;
	rc = mx_ingest_store(t, &n, &id, err);
	mx_parsed_free(&parsed);
	if (rc)
		return rc;
	if (mx_buf_reserve(&v, 12 + strlen(ch->thread)) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	mx_put_be64((uint8_t *)v.data, id);
	mx_put_be32((uint8_t *)v.data + 8, n.uid);
	memcpy(v.data + 12, ch->thread, strlen(ch->thread));
	rc = mx_db_put(t, MX_DB_META, k, kl, v.data, 12 + strlen(ch->thread),
		       0, err);
	mx_buf_free(&v);
	if (rc == MX_OK) {
		uint8_t rk[MX_STORE_REMOTE_REV_KEY];

		rev_key(c->a->id, id, rk);
		rc = mx_db_put(t, MX_DB_META, rk, sizeof(rk), ch->id,
			       strlen(ch->id), 0, err);
	}
	if (rc == MX_OK) {
		c->created++;
		*msg_r = id;
	}
	return rc;
}

static int seen_add(struct csync *c, uint64_t id, struct mx_error *err)
{
	if (c->nseen == c->capseen) {
		size_t cap = c->capseen ? c->capseen * 2 : 1024;
		uint64_t *v = realloc(c->seen, cap * sizeof(*v));

		if (v == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		c->seen = v;
		c->capseen = cap;
	}
	c->seen[c->nseen++] = id;
	return MX_OK;
}

/* One write transaction per batch: records, locations, map, events and
 * the folder's uidnext.  Counters are reset at the start so that a
 * MAP_FULL retry starts over. */
static int commit_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct csync *c = ctx;
	struct mx_folder f;
	size_t nseen0 = c->nseen;
	int rc;

	c->created = c->updated = c->removed = 0;
	c->nseen = nseen0;
	rc = mx_account_check_current(t, c->a, err);
	if (rc)
		return rc;
	rc = mx_store_folder_get(t, c->folder.id, &f, err);
	if (rc)
		return rc;
	for (size_t i = 0; rc == MX_OK && i < c->n; i++) {
		const struct mx_change *ch = &c->v[i];
		uint8_t k[MAP_KEY_MAX];
		size_t kl = map_key(c->a->id, ch->id, k);
		uint64_t msg = 0;
		uint32_t uid = 0;

		rc = map_lookup(t, c->a->id, ch->id, &msg, &uid, err);
		if (rc == MX_ERR_NOTFOUND) {
			rc = MX_OK;
			if (!ch->removed)
				rc = add_msg(t, c, &f, ch, k, kl, &msg, err);
		} else if (rc == MX_OK) {
			if (ch->removed)
				rc = remove_msg(t, c, msg, uid, k, kl, err);
			else
				rc = update_labels(t, c, msg, uid, ch, err);
		}
		if (rc == MX_OK && c->full && !ch->removed && msg)
			rc = seen_add(c, msg, err);
	}
	if (rc == MX_OK) {
		f.last_sync = mx_wall_s();
		rc = mx_store_folder_put(t, &f, err);
	}
	mx_folder_free(&f);
	if (rc)
		c->nseen = nseen0;
	return rc;
}

static bool cancelled(const struct csync *c)
{
	return c->opts && c->opts->cancel && *c->opts->cancel;
}

static int batch_cb(const struct mx_change *v, size_t n, void *ctx,
		    struct mx_error *err)
{
	struct csync *c = ctx;
	int rc;

	if (cancelled(c))
		return mx_error_set(err, MX_ERR_CANCELLED,
				    "interrupted; committed work is kept");
	c->v = v;
	c->n = n;
	rc = mx_store_write(c->st, commit_fn, c, err);
	c->v = NULL;
	c->n = 0;
	if (rc)
		return rc;
	c->stats->new_msgs += c->created;
	c->stats->updated += c->updated;
	c->stats->expunged += c->removed;
	c->stats->deleted += c->removed;
	c->prog.msgs_done += n;
	mx_trace(MX_TRACE_SYNC, "%s: committed %zu changes (%" PRIu64
		 " new, %" PRIu64 " updated, %" PRIu64 " removed)",
		 c->a->name, n, c->created, c->updated, c->removed);
	if (c->opts && c->opts->progress)
		c->opts->progress(&c->prog, c->opts->progress_ctx);
	return MX_OK;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct gone {
	uint64_t msg;
	uint32_t uid;
};

struct gone_ctx {
	const struct csync *c;
	struct gone *v;
	size_t n, cap;
};

/* Map entries of records the full listing did not report: collected and
 * deleted here, their records removed after the walk (removing writes
 * META too: the event counter). */
static int gone_fn(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		   void *ctx, struct mx_error *err)
{
	struct gone_ctx *g = ctx;
	uint64_t msg;

	(void)t;
	(void)k;
	if (v->mv_size < 12)
		return MX_OK; /* damaged: left for map_lookup() to report */
	msg = mx_get_be64(v->mv_data);
	if (g->c->nseen &&
	    bsearch(&msg, g->c->seen, g->c->nseen, sizeof(msg), cmp_u64))
		return MX_OK;
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;
		struct gone *nv = realloc(g->v, cap * sizeof(*nv));

		if (nv == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		g->v = nv;
		g->cap = cap;
	}
	g->v[g->n].msg = msg;
	g->v[g->n].uid = mx_get_be32((const uint8_t *)v->mv_data + 8);
	g->n++;
	return MX_WALK_DELETE;
}

/* The folder's last sync is now (also when nothing changed). */
static int touch_folder(struct mx_txn *t, struct csync *c,
			struct mx_error *err)
{
	struct mx_folder f;
	int rc;

	rc = mx_store_folder_get(t, c->folder.id, &f, err);
	if (rc)
		return rc;
	f.last_sync = mx_wall_s();
	rc = mx_store_folder_put(t, &f, err);
	mx_folder_free(&f);
	return rc;
}

/* After a complete run: with a full listing, what is stored but was not
 * listed is gone from the server; then the cursor is stored. */
static int finish_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct csync *c = ctx;
	uint8_t ck[sizeof(CURSOR_PREFIX) - 1 + 4];
	uint8_t pre[sizeof(MAP_PREFIX) - 1 + 4];
	struct gone_ctx g = {c, NULL, 0, 0};
	int rc;

	c->removed = 0;
	rc = mx_account_check_current(t, c->a, err);
	if (rc)
		return rc;
	if (c->full) {
		memcpy(pre, MAP_PREFIX, sizeof(MAP_PREFIX) - 1);
		mx_put_be32(pre + sizeof(MAP_PREFIX) - 1, c->a->id);
		rc = mx_store_walk(t, MX_DB_META, pre, sizeof(pre), NULL, 0, 0,
				   "message map", gone_fn, &g, err);
		for (size_t i = 0; rc == MX_OK && i < g.n; i++)
			rc = remove_msg(t, c, g.v[i].msg, g.v[i].uid, NULL, 0,
					err);
		free(g.v);
		if (rc)
			return rc;
	}
	rc = touch_folder(t, c, err);
	if (rc)
		return rc;
	cursor_key(c->a->id, ck);
	if (c->cursor)
		return mx_db_put(t, MX_DB_META, ck, sizeof(ck), c->cursor,
				 strlen(c->cursor), 0, err);
	rc = mx_db_del(t, MX_DB_META, ck, sizeof(ck), NULL, 0, err);
	return rc == MX_ERR_NOTFOUND ? MX_OK : rc;
}

static int load_cursor(struct csync *c, char **cursor_r, struct mx_error *err)
{
	uint8_t ck[sizeof(CURSOR_PREFIX) - 1 + 4];
	struct mx_txn t;
	MDB_val v;
	int rc;

	*cursor_r = NULL;
	cursor_key(c->a->id, ck);
	rc = mx_txn_begin(c->st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_db_get(&t, MX_DB_META, ck, sizeof(ck), &v, NULL);
	if (rc == MX_OK) {
		*cursor_r = mx_strndup(v.mv_data, v.mv_size);
		if (*cursor_r == NULL)
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	} else if (rc == MX_ERR_NOTFOUND) {
		rc = MX_OK;
	} else {
		rc = mx_error_set(err, rc, "sync cursor");
	}
	mx_txn_abort(&t);
	return rc;
}

static int run(struct csync *c, struct mx_error *err)
{
	char *cursor = NULL;
	int rc;

	rc = mx_store_write(c->st, folder_fn, c, err);
	if (rc == MX_OK)
		rc = load_cursor(c, &cursor, err);
	if (rc)
		return rc;
	c->full = cursor == NULL;
	rc = c->be->changes(c->conn, cursor, batch_cb, c, &c->cursor, err);
	if (rc == MX_ERR_EXPIRED && cursor) {
		mx_info("%s: %s; listing every message again (nothing is "
			"stored twice)", c->a->name,
			err ? err->detail : "history expired");
		mx_error_clear(err);
		c->full = true;
		rc = c->be->changes(c->conn, NULL, batch_cb, c, &c->cursor,
				    err);
	}
	free(cursor);
	if (rc)
		return rc;
	if (c->full && c->nseen)
		qsort(c->seen, c->nseen, sizeof(*c->seen), cmp_u64);
	rc = mx_store_write(c->st, finish_fn, c, err);
	if (rc == MX_OK) {
		c->stats->expunged += c->removed;
		c->stats->deleted += c->removed;
	}
	return rc;
}

int mx_changes_sync(struct mx_store *st, struct mx_account *a,
		    const struct mx_sync_opts *opts,
		    struct mx_sync_stats *stats_r, struct mx_error *err)
{
	struct mx_sync_stats stats = {0};
	struct csync c = {0};
	int rc;

	mx_error_clear(err);
	rc = mx_sync_opts_check(opts, err);
	if (rc)
		return rc;
	c.st = st;
	c.a = a;
	c.opts = opts;
	c.stats = &stats;
	c.prog.account = a->name;
	c.be = mx_backend_for_account(a);
	if (c.be == NULL || !(c.be->caps & MX_CAP_MODEL_CHANGES))
		rc = mx_error_set(err, MX_ERR_UNSUPPORTED,
				  "its backend has no change log");
	else
		rc = mx_backend_connect(st, a, NULL, &c.conn, err);
	if (rc) {
		mx_error_prefix(err, "account %s", a->name);
		goto out;
	}
	stats.folders = 1;
	rc = run(&c, err);
	if (rc == MX_OK && opts && opts->folders && opts->nfolders)
		for (size_t i = 0; i < opts->nfolders; i++)
			if (strcmp(opts->folders[i], c.folder.name) != 0)
				mx_warn("%s: API mode has one folder, %s; "
					"'%s' ignored", a->name,
					c.folder.name, opts->folders[i]);
out:
	if (c.conn)
		c.be->disconnect(&c.conn);
	free(c.seen);
	free(c.cursor);
	mx_folder_free(&c.folder);
	if (stats_r)
		*stats_r = stats;
	return rc;
}
