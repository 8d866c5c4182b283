/*
 * The sync engine: one account, one connection, folder by folder.
 *
 * Invariants (doc/internals/sync.md):
 *  - A folder's cursor (initial_low during the initial sync, uidnext and
 *    highestmodseq afterwards) only moves in the same write transaction as
 *    the messages it covers, so a crash at any point loses nothing and a
 *    rerun fetches again only what was not committed.
 *  - A message keeps its id across moves and UIDVALIDITY resets: a new
 *    server message whose identity (mx_mime_identity) and bytes match a
 *    stored record is attached to it as a new location instead of
 *    becoming a second record.  Records that lose their last location are
 *    orphans, deleted only by the garbage collection at the end of a
 *    complete account sync, so a move whose source folder is synced first
 *    still keeps its id.
 *  - Bodies are FETCHed newest first in batches (count and bytes bounded);
 *    one write transaction per batch.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account/account.h"
#include "events/types.h"
#include "mime/mime.h"
#include "sync/ingest.h"
#include "sync/sync.h"

#define DEFAULT_BATCH_MSGS 256
#define DEFAULT_BATCH_BYTES ((uint64_t)16 << 20)

struct pending {
	uint32_t uid;
	uint32_t flags;
	char *keywords;
	int64_t internaldate;
	uint64_t modseq;
	char *raw;
	size_t len;
	uint8_t sha[32];
	uint8_t identity[32];
	struct mx_parsed parsed;
};

/* One FETCH batch: filled by the network side, committed by the writer. */
struct batch {
	struct pending *v;
	size_t n, cap;
	uint64_t bytes;
	uint32_t low;       /* lowest UID requested in this batch */
	uint32_t high;      /* highest UID requested */
	bool initial;       /* belongs to the initial sync */
	uint32_t *req;      /* requested UIDs in fetch order (owned) */
	size_t nreq;
	uint64_t created;   /* records created by its commit */
	uint64_t attached;  /* locations attached to existing records */
};

struct uid_size {
	uint32_t uid;
	uint64_t size;
};

struct sync_ctx {
	struct mx_store *st;
	const struct mx_backend_ops *be;
	struct mx_conn *conn;
	struct mx_account acct;
	const struct mx_sync_opts *opts;
	struct mx_sync_stats *stats;
	unsigned batch_msgs;
	uint64_t batch_bytes;

	/* Current folder. */
	struct mx_folder folder;
	struct mx_select_result sel;

	/* The batch being fetched (network side) and the one being
	 * committed (writer thread); see fetch_bodies(). */
	struct batch *fetching;
	struct batch *committing;
	/* A requested UID did not arrive in this pass (server error,
	 * expunged meanwhile): the cursor stops before it, so the next run
	 * asks again.  Written by the writer thread only. */
	bool gap;
	uint64_t missing;

	/* Progress. */
	struct mx_sync_progress prog;

	/* Collected sizes (MX_FETCH_SIZES). */
	struct uid_size *sizes;
	size_t nsizes, capsizes;
};

static void pending_free(struct pending *p)
{
	free(p->keywords);
	free(p->raw);
	mx_parsed_free(&p->parsed);
	memset(p, 0, sizeof(*p));
}

static void batch_free(struct batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		pending_free(&b->v[i]);
	free(b->v);
	free(b->req);
	free(b);
}

static bool cancelled(const struct sync_ctx *c)
{
	return c->opts && c->opts->cancel && *c->opts->cancel;
}

static void progress(struct sync_ctx *c)
{
	if (c->opts && c->opts->progress)
		c->opts->progress(&c->prog, c->opts->progress_ctx);
}

/* ---- fetch callbacks ---- */

static int collect_size(const struct mx_fetched *m, void *ctx,
			struct mx_error *err)
{
	struct sync_ctx *c = ctx;

	if (c->nsizes == c->capsizes) {
		size_t ncap = c->capsizes ? c->capsizes * 2 : 1024;
		struct uid_size *nv = realloc(c->sizes, ncap * sizeof(*nv));

		if (nv == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		c->sizes = nv;
		c->capsizes = ncap;
	}
	c->sizes[c->nsizes].uid = m->uid;
	c->sizes[c->nsizes].size = m->size;
	c->nsizes++;
	return MX_OK;
}

/* Network side: copies one FETCHed message into the current batch.
 * Hashing and MIME parsing happen on the writer thread. */
static int collect_body(const struct mx_fetched *m, void *ctx,
			struct mx_error *err)
{
	struct sync_ctx *c = ctx;
	struct batch *b = c->fetching;
	struct pending *p;

	/* Unsolicited FETCH responses (flag updates by another client,
	 * RFC 3501 7.4.2) and UIDs we did not ask for are not ours to store;
	 * a requested message that comes without a body is simply missing
	 * and is asked for again next time. */
	if (m->uid < b->low || m->uid > b->high || m->body == NULL)
		return MX_OK;
	/* RFC822.SIZE is the exact size of BODY[] (RFC 3501 2.3.4), but
	 * some servers are known to be off by a little: keep what came and
	 * say so.  An empty body for a message that has a size is not the
	 * message: it is treated as missing and asked for again. */
	if (m->size != 0 && m->size != m->body_len) {
		if (m->body_len == 0) {
			mx_warn("%s/%s: UID %u: server sent an empty body for "
				"a message of %" PRIu64 " bytes (RFC822.SIZE); "
				"not stored", c->acct.name, c->folder.name,
				m->uid, m->size);
			return MX_OK;
		}
		mx_warn("%s/%s: UID %u: server sent %zu bytes for a message "
			"of %" PRIu64 " bytes (RFC822.SIZE); stored as received",
			c->acct.name, c->folder.name, m->uid, m->body_len,
			m->size);
	}
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 64;
		struct pending *nv = realloc(b->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		b->v = nv;
		b->cap = ncap;
	}
	p = &b->v[b->n];
	memset(p, 0, sizeof(*p));
	p->uid = m->uid;
	p->flags = m->flags;
	p->keywords = mx_strdup(m->keywords);
	p->internaldate = m->internaldate;
	p->modseq = m->modseq;
	p->len = m->body_len;
	p->raw = malloc(m->body_len + 1);
	if (p->raw == NULL || (m->keywords && p->keywords == NULL)) {
		pending_free(p);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	memcpy(p->raw, m->body, m->body_len);
	p->raw[m->body_len] = '\0';
	b->n++;
	b->bytes += p->len;
	return MX_OK;
}

/* Writer side: hash, identity and MIME parse of a whole batch. */
static int prepare_batch(struct batch *b, struct mx_error *err)
{
	for (size_t i = 0; i < b->n; i++) {
		struct pending *p = &b->v[i];
		int rc;

		rc = mx_ingest_prepare(p->raw, p->len, p->sha, p->identity,
				       &p->parsed, err);
		if (rc)
			return rc;
	}
	return MX_OK;
}

/* ---- store helpers (run inside write transactions) ---- */

static int event_flags(struct mx_txn *t, struct sync_ctx *c, uint64_t msg_id,
		       uint32_t uid, uint32_t flags)
{
	return mx_event_message_updated(t, c->acct.id, c->folder.id, msg_id,
					uid, flags, false, NULL);
}

/* Removes a location; its message becomes an orphan if it was the last. */
static int remove_loc(struct mx_txn *t, uint32_t folder_id, uint32_t uid,
		      uint64_t msg_id, struct mx_error *err)
{
	struct mx_loc *locs = NULL;
	size_t n = 0;
	int rc;

	rc = mx_store_loc_del(t, folder_id, uid, err);
	if (rc == MX_ERR_NOTFOUND)
		return MX_OK;
	if (rc)
		return rc;
	rc = mx_store_msg_locs(t, msg_id, &locs, &n, err);
	if (rc)
		return rc;
	mx_locs_free(locs, n);
	if (n == 0)
		rc = mx_store_orphan_add(t, msg_id, err);
	return rc;
}

/* Whether MSG_ID has a location in FOLDER_ID; *NLOCS_R its count. */
static int has_loc_in_folder(struct mx_txn *t, uint64_t msg_id,
			     uint32_t folder_id, bool *found_r,
			     size_t *nlocs_r, struct mx_error *err)
{
	struct mx_loc *locs = NULL;
	size_t n = 0;
	int rc;

	rc = mx_store_msg_locs(t, msg_id, &locs, &n, err);
	if (rc)
		return rc;
	*found_r = false;
	for (size_t i = 0; i < n; i++)
		if (locs[i].folder_id == folder_id)
			*found_r = true;
	mx_locs_free(locs, n);
	*nlocs_r = n;
	return MX_OK;
}

/*
 * Finds a stored record this server message is another location of: same
 * identity and same bytes (SHA == NULL: same size, used when only headers
 * were fetched), not already present in this folder.  Orphans (moved
 * messages) are preferred.  *ID_R 0 if none.  A store error is returned:
 * a partial index must not make the caller store a second copy.
 */
struct attachable {
	uint32_t folder_id;
	uint64_t best;
	bool best_orphan;
};

static int attachable_cb(struct mx_txn *t, uint64_t msg_id, void *ctx,
			 bool *stop_r, struct mx_error *err)
{
	struct attachable *a = ctx;
	size_t nlocs = 0;
	bool here = false;
	int rc;

	(void)stop_r;
	rc = has_loc_in_folder(t, msg_id, a->folder_id, &here, &nlocs, err);
	if (rc || here)
		return rc;
	if (nlocs == 0 && !a->best_orphan) {
		a->best = msg_id;
		a->best_orphan = true;
	} else if (a->best == 0) {
		a->best = msg_id;
	}
	return MX_OK;
}

static int find_attachable(struct mx_txn *t, struct sync_ctx *c,
			   const uint8_t identity[32], const uint8_t *sha,
			   uint64_t size, uint64_t *id_r, struct mx_error *err)
{
	struct attachable a = {c->folder.id, 0, false};
	int rc;

	rc = mx_ingest_find(t, c->acct.id, identity, sha, size, attachable_cb,
			    &a, err);
	*id_r = rc ? 0 : a.best;
	return rc;
}

static int attach(struct mx_txn *t, struct sync_ctx *c, uint64_t msg_id,
		  uint32_t uid, uint32_t flags, const char *kw,
		  uint64_t modseq, struct mx_error *err)
{
	struct mx_loc l = {c->folder.id, uid, msg_id, modseq, flags,
			   (char *)(uintptr_t)kw};
	bool was_orphan = mx_store_is_orphan(t, msg_id);
	int rc;

	rc = mx_store_loc_put(t, &l, err);
	if (rc)
		return rc;
	if (was_orphan) {
		rc = mx_store_orphan_del(t, msg_id, err);
		if (rc)
			return rc;
	}
	return mx_event_message_placed(t, c->acct.id, c->folder.id, msg_id, uid,
				       c->folder.name, was_orphan, err);
}

static int put_folder(struct mx_txn *t, struct sync_ctx *c,
		      struct mx_error *err)
{
	return mx_store_folder_put(t, &c->folder, err);
}

static bool batch_has_uid(const struct batch *b, uint32_t uid)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->v[i].uid == uid)
			return true;
	return false;
}

/* Commits the current batch and advances the folder cursor with it. */
static int commit_batch_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct sync_ctx *c = ctx;
	struct batch *b = c->committing;
	uint64_t created = 0, attached = 0;
	int rc;

	/* Removed meanwhile (`account remove --purge` while the daemon
	 * syncs): not one record may come back. */
	rc = mx_account_check_current(t, &c->acct, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < b->n; i++) {
		struct pending *p = &b->v[i];
		struct mx_ingest_new n = {0};
		struct mx_loc old;
		uint64_t id;

		rc = mx_store_loc_get(t, c->folder.id, p->uid, &old, err);
		if (rc == MX_OK) { /* already stored by an earlier run */
			free(old.keywords);
			continue;
		}
		if (rc != MX_ERR_NOTFOUND)
			return rc;
		rc = find_attachable(t, c, p->identity, p->sha, p->len, &id,
				     err);
		if (rc)
			return rc;
		if (id) {
			rc = attach(t, c, id, p->uid, p->flags, p->keywords,
				    p->modseq, err);
			if (rc)
				return rc;
			attached++;
			continue;
		}
		n.account_id = c->acct.id;
		n.folder_id = c->folder.id;
		n.folder_name = c->folder.name;
		n.uid = p->uid;
		n.flags = p->flags;
		n.keywords = p->keywords;
		n.modseq = p->modseq;
		n.internaldate = p->internaldate;
		n.raw = p->raw;
		n.len = p->len;
		n.sha = p->sha;
		n.identity = p->identity;
		n.parsed = &p->parsed;
		rc = mx_ingest_store(t, &n, &id, err);
		if (rc)
			return rc;
		created++;
	}
	/* The cursor moves over the requested UIDs that all arrived, in
	 * fetch order, and stops at the first one that did not. */
	if (!c->gap) {
		uint32_t reached = 0;

		for (size_t i = 0; i < b->nreq; i++) {
			if (!batch_has_uid(b, b->req[i]))
				break;
			reached = b->req[i];
		}
		if (reached && b->initial) {
			if (c->folder.initial_low == 0 ||
			    reached < c->folder.initial_low)
				c->folder.initial_low = reached;
		} else if (reached && reached + 1 > c->folder.uidnext) {
			c->folder.uidnext = reached + 1;
		}
	}
	rc = put_folder(t, c, err);
	if (rc)
		return rc;
	/* Stats become final only once the commit succeeds (a MAP_FULL
	 * retry runs this function again); commit_batch() adds them. */
	b->created = created;
	b->attached = attached;
	return MX_OK;
}

/* Writer side: prepares and commits batch B (one write transaction). */
static int commit_batch(struct sync_ctx *c, struct batch *b,
			struct mx_error *err)
{
	uint32_t saved_low = c->folder.initial_low, saved_next = c->folder.uidnext;
	uint64_t t0 = mx_now_ms(), t1;
	int rc;

	rc = prepare_batch(b, err);
	if (rc)
		return rc;
	t1 = mx_now_ms();
	c->committing = b;
	rc = mx_store_write(c->st, commit_batch_fn, c, err);
	c->committing = NULL;
	mx_trace(MX_TRACE_SYNC, "batch of %zu (%" PRIu64 " KiB): parse %" PRIu64
		 " ms, commit %" PRIu64 " ms", b->n, b->bytes >> 10, t1 - t0,
		 mx_now_ms() - t1);
	if (rc) {
		c->folder.initial_low = saved_low;
		c->folder.uidnext = saved_next;
		return rc;
	}
	for (size_t i = 0; i < b->n; i++) {
		c->stats->new_bytes += b->v[i].len;
		if (b->v[i].parsed.flags & MX_PARSED_BROKEN)
			c->stats->parse_errors++;
	}
	c->stats->new_msgs += b->created;
	c->stats->remapped += b->attached;
	for (size_t i = 0; i < b->nreq; i++) {
		if (!batch_has_uid(b, b->req[i])) {
			c->missing++;
			if (!c->gap)
				mx_warn("%s/%s: UID %u was not returned by the "
					"server; it will be asked for again",
					c->acct.name, c->folder.name,
					b->req[i]);
			c->gap = true;
		}
	}
	c->prog.msgs_done += b->n;
	c->prog.bytes_done += b->bytes;
	progress(c);
	return MX_OK;
}

/*
 * The network and the disk work at the same time: while the writer thread
 * parses and commits batch k, this thread already FETCHes batch k+1.  At
 * most one finished batch waits in the queue, so memory stays bounded by
 * three batches whatever the mailbox size.  Batches are committed in
 * order, so the folder cursor only moves forward.
 */
struct writer {
	struct sync_ctx *c;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *queued;   /* handed over, not yet taken */
	bool closing;           /* no more batches will come */
	bool busy;              /* writer is committing one */
	int rc;                 /* first writer error */
	struct mx_error err;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct batch *b;
		int rc;

		while (w->queued == NULL && !w->closing)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->queued == NULL)
			break;
		b = w->queued;
		w->queued = NULL;
		w->busy = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		rc = w->rc == MX_OK ? commit_batch(w->c, b, &w->err) : w->rc;
		batch_free(b);
		pthread_mutex_lock(&w->mu);
		w->busy = false;
		if (rc != MX_OK && w->rc == MX_OK)
			w->rc = rc;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* Hands B to the writer; waits while the queue slot is taken.  Returns the
 * writer's first error, if any (then B is freed here). */
static int writer_push(struct writer *w, struct batch *b)
{
	int rc;

	pthread_mutex_lock(&w->mu);
	while (w->queued != NULL && w->rc == MX_OK)
		pthread_cond_wait(&w->cv, &w->mu);
	rc = w->rc;
	if (rc == MX_OK) {
		w->queued = b;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	if (rc != MX_OK)
		batch_free(b);
	return rc;
}

static int writer_rc(struct writer *w)
{
	int rc;

	pthread_mutex_lock(&w->mu);
	rc = w->rc;
	pthread_mutex_unlock(&w->mu);
	return rc;
}

/*
 * Fetches the bodies of SIZES[0..N) (already ordered) in batches, each
 * committed on its own.  INITIAL selects which cursor moves.
 */
static int fetch_bodies(struct sync_ctx *c, const struct uid_size *v,
			size_t n, bool initial, struct mx_error *err)
{
	struct writer w;
	struct mx_uid_range *ranges;
	pthread_t tid;
	size_t i = 0;
	int rc = MX_OK, wrc;

	if (n == 0)
		return MX_OK;
	c->gap = false;
	ranges = malloc((c->batch_msgs + 1) * sizeof(*ranges));
	if (ranges == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	memset(&w, 0, sizeof(w));
	w.c = c;
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	if (pthread_create(&tid, NULL, writer_main, &w) != 0) {
		free(ranges);
		return mx_error_set(err, MX_ERR_NOMEM, "cannot start writer");
	}
	while (i < n) {
		struct batch *b;
		size_t nr = 0, cnt = 0;
		uint64_t bytes = 0, t0;

		if (cancelled(c)) {
			rc = mx_error_set(err, MX_ERR_CANCELLED,
					  "interrupted; committed work is kept");
			break;
		}
		if (writer_rc(&w) != MX_OK)
			break;
		b = calloc(1, sizeof(*b));
		if (b == NULL) {
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
			break;
		}
		b->initial = initial;
		b->low = UINT32_MAX;
		b->high = 0;
		b->req = malloc(c->batch_msgs * sizeof(*b->req) + 1);
		if (b->req == NULL) {
			free(b);
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
			break;
		}
		while (i < n && cnt < c->batch_msgs &&
		       (cnt == 0 || bytes + v[i].size <= c->batch_bytes)) {
			uint32_t u = v[i].uid;

			if (nr > 0 && ranges[nr - 1].lo == u + 1)
				ranges[nr - 1].lo = u;
			else if (nr > 0 && ranges[nr - 1].hi + 1 == u)
				ranges[nr - 1].hi = u;
			else {
				ranges[nr].lo = ranges[nr].hi = u;
				nr++;
			}
			if (u < b->low)
				b->low = u;
			if (u > b->high)
				b->high = u;
			b->req[b->nreq++] = u;
			bytes += v[i].size;
			cnt++;
			i++;
		}
		c->fetching = b;
		t0 = mx_now_ms();
		rc = c->be->fetch(c->conn, ranges, nr, MX_FETCH_FULL, 0,
				  collect_body, c, err);
		c->fetching = NULL;
		mx_trace(MX_TRACE_SYNC, "fetched %zu in %" PRIu64 " ms", b->n,
			 mx_now_ms() - t0);
		if (rc) {
			batch_free(b);
			break;
		}
		if (writer_push(&w, b) != MX_OK)
			break;
	}
	/* Let the writer finish what was fetched completely, then stop. */
	pthread_mutex_lock(&w.mu);
	w.closing = true;
	pthread_cond_broadcast(&w.cv);
	pthread_mutex_unlock(&w.mu);
	pthread_join(tid, NULL);
	wrc = w.rc;
	if (rc == MX_OK && wrc != MX_OK) {
		rc = wrc;
		if (err)
			*err = w.err;
	}
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	free(ranges);
	return rc;
}

static int cmp_uid_desc(const void *a, const void *b)
{
	const struct uid_size *x = a, *y = b;

	return x->uid < y->uid ? 1 : x->uid > y->uid ? -1 : 0;
}

static int cmp_uid_asc(const void *a, const void *b)
{
	return -cmp_uid_desc(a, b);
}

/* UIDs in [LO, HI] on the server with their sizes, minus stored ones. */
static int list_missing(struct sync_ctx *c, uint32_t lo, uint32_t hi,
			struct mx_error *err)
{
	struct mx_uid_range r = {lo, hi};
	struct mx_txn t;
	size_t j = 0;
	int rc;

	c->nsizes = 0;
	if (lo == 0 || lo > hi)
		return MX_OK;
	rc = c->be->fetch(c->conn, &r, 1, MX_FETCH_SIZES, 0, collect_size, c,
			  err);
	if (rc)
		return rc;
	rc = mx_txn_begin(c->st, false, &t, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < c->nsizes; i++) {
		struct mx_loc l;
		uint32_t u = c->sizes[i].uid;

		/* "N:*" returns the last message even when its UID < N. */
		if (u < lo || u > hi)
			continue;
		if (mx_store_loc_get(&t, c->folder.id, u, &l, NULL) == MX_OK) {
			free(l.keywords);
			continue;
		}
		c->sizes[j++] = c->sizes[i];
	}
	mx_txn_abort(&t);
	mx_trace(MX_TRACE_SYNC, "%s: UIDs %u:%u: %zu on server, %zu to fetch",
		 c->folder.name, lo, hi, c->nsizes, j);
	c->nsizes = j;
	return MX_OK;
}

static void prog_totals(struct sync_ctx *c)
{
	c->prog.msgs_total = c->nsizes;
	c->prog.bytes_total = 0;
	for (size_t i = 0; i < c->nsizes; i++)
		c->prog.bytes_total += c->sizes[i].size;
	c->prog.msgs_done = 0;
	c->prog.bytes_done = 0;
}

/* ---- initial sync ---- */

static int folder_write_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct sync_ctx *c = ctx;
	int rc = mx_account_check_current(t, &c->acct, err);

	return rc ? rc : put_folder(t, c, err);
}

static int initial_sync(struct sync_ctx *c, struct mx_error *err)
{
	int rc;

	if (c->folder.initial_top == 0) {
		c->folder.uidvalidity = c->sel.uidvalidity;
		c->folder.initial_top = c->sel.uidnext ? c->sel.uidnext : 1;
		c->folder.initial_low = c->folder.initial_top;
		c->folder.highestmodseq = c->sel.highestmodseq;
		c->folder.uidnext = 0;
		rc = mx_store_write(c->st, folder_write_fn, c, err);
		if (rc)
			return rc;
	}
	if (c->folder.initial_low > 1) {
		rc = list_missing(c, 1, c->folder.initial_low - 1, err);
		if (rc)
			return rc;
		if (c->nsizes > 1) /* sizes is NULL when nothing is missing */
			qsort(c->sizes, c->nsizes, sizeof(*c->sizes),
			      cmp_uid_desc);
		prog_totals(c);
		progress(c);
		rc = fetch_bodies(c, c->sizes, c->nsizes, true, err);
		if (rc)
			return rc;
		if (c->gap)
			return MX_OK; /* not complete: the next run resumes */
	}
	c->folder.initial_done = true;
	c->folder.initial_low = 1;
	c->folder.uidnext = c->folder.initial_top;
	return mx_store_write(c->st, folder_write_fn, c, err);
}

/* ---- incremental sync ---- */

struct changes_ctx {
	struct sync_ctx *c;
	struct mx_flag_change *v;
	size_t n, cap;
};

static int collect_flags(const struct mx_fetched *m, void *ctx,
			 struct mx_error *err)
{
	struct changes_ctx *cc = ctx;
	struct mx_flag_change *ch;

	if (cc->n == cc->cap) {
		size_t ncap = cc->cap ? cc->cap * 2 : 256;
		struct mx_flag_change *nv = realloc(cc->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		cc->v = nv;
		cc->cap = ncap;
	}
	ch = &cc->v[cc->n];
	ch->uid = m->uid;
	ch->flags = m->flags;
	ch->modseq = m->modseq;
	ch->keywords = mx_strdup(m->keywords);
	cc->n++;
	return MX_OK;
}

struct apply_ctx {
	struct sync_ctx *c;
	const struct mx_flag_change *changes;
	size_t nchanges;
	const struct mx_uid_range *vanished;
	size_t nvanished;
	const uint32_t *server_uids; /* sorted; NULL = no diff */
	size_t nserver;
	uint64_t updated, expunged;
};

static bool kw_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static bool uid_in(const uint32_t *v, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid] == uid)
			return true;
		if (v[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static int cmp_range(const void *a, const void *b)
{
	const struct mx_uid_range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts and merges ranges in place; returns the new count. */
static size_t ranges_normalize(struct mx_uid_range *v, size_t n)
{
	size_t j = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_range);
	for (size_t i = 1; i < n; i++) {
		if (v[i].lo <= v[j].hi || v[j].hi == UINT32_MAX ||
		    v[i].lo == v[j].hi + 1) {
			if (v[i].hi > v[j].hi)
				v[j].hi = v[i].hi;
		} else {
			v[++j] = v[i];
		}
	}
	return j + 1;
}

static bool uid_in_ranges(const struct mx_uid_range *v, size_t n, uint32_t u)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (u < v[mid].lo)
			hi = mid;
		else if (u > v[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static int apply_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct apply_ctx *a = ctx;
	struct sync_ctx *c = a->c;
	int rc;

	rc = mx_account_check_current(t, &c->acct, err);
	if (rc)
		return rc;
	a->updated = a->expunged = 0;
	for (size_t i = 0; i < a->nchanges; i++) {
		const struct mx_flag_change *ch = &a->changes[i];
		struct mx_loc l;

		rc = mx_store_loc_get(t, c->folder.id, ch->uid, &l, err);
		if (rc == MX_ERR_NOTFOUND)
			continue; /* new mail: fetched separately */
		if (rc)
			return rc;
		if (l.flags != ch->flags || !kw_equal(l.keywords, ch->keywords)) {
			free(l.keywords);
			l.flags = ch->flags;
			l.keywords = ch->keywords;
			l.modseq = ch->modseq;
			rc = mx_store_loc_put(t, &l, err);
			if (rc == MX_OK)
				rc = event_flags(t, c, l.msg_id, l.uid, l.flags);
			if (rc)
				return rc;
			a->updated++;
		} else {
			free(l.keywords);
		}
	}
	if (a->nvanished || a->server_uids) {
		struct mx_loc *locs = NULL;
		size_t n = 0;

		rc = mx_store_folder_locs(t, c->folder.id, &locs, &n, err);
		if (rc)
			return rc;
		for (size_t i = 0; i < n; i++) {
			bool gone = false;

			if (a->server_uids)
				gone = !uid_in(a->server_uids, a->nserver,
					       locs[i].uid);
			if (!gone && a->nvanished)
				gone = uid_in_ranges(a->vanished, a->nvanished,
						     locs[i].uid);
			if (!gone)
				continue;
			rc = remove_loc(t, c->folder.id, locs[i].uid,
					locs[i].msg_id, err);
			if (rc) {
				mx_locs_free(locs, n);
				return rc;
			}
			a->expunged++;
		}
		mx_locs_free(locs, n);
	}
	return MX_OK;
}

static int apply_changes(struct sync_ctx *c, struct apply_ctx *a,
			 struct mx_error *err)
{
	int rc;

	if (a->nchanges == 0 && a->nvanished == 0 && a->server_uids == NULL)
		return MX_OK;
	a->c = c;
	rc = mx_store_write(c->st, apply_fn, a, err);
	if (rc == MX_OK) {
		c->stats->updated += a->updated;
		c->stats->expunged += a->expunged;
	}
	return rc;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int local_count(struct sync_ctx *c, size_t *n_r, struct mx_error *err)
{
	struct mx_loc *locs = NULL;
	struct mx_txn t;
	int rc;

	rc = mx_txn_begin(c->st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_folder_locs(&t, c->folder.id, &locs, n_r, err);
	mx_txn_abort(&t);
	mx_locs_free(locs, rc ? 0 : *n_r);
	return rc;
}

static int incremental_sync(struct sync_ctx *c, bool qresync_done,
			    struct mx_error *err)
{
	unsigned caps = c->be->server_caps(c->conn);
	struct apply_ctx a = {0};
	size_t nlocal = 0;
	bool backwards;
	int rc;

	/* 1. Flag changes (and, with QRESYNC, expunges). */
	if (qresync_done) {
		a.changes = c->sel.changes;
		a.nchanges = c->sel.nchanges;
		c->sel.nvanished = ranges_normalize(c->sel.vanished,
						    c->sel.nvanished);
		a.vanished = c->sel.vanished;
		a.nvanished = c->sel.nvanished;
		rc = apply_changes(c, &a, err);
		if (rc)
			return rc;
	} else if (c->folder.uidnext > 1 &&
		   (!(caps & MX_CAP_CONDSTORE) || c->folder.highestmodseq == 0 ||
		    c->sel.highestmodseq != c->folder.highestmodseq)) {
		struct changes_ctx cc = {c, NULL, 0, 0};
		struct mx_uid_range r = {1, c->folder.uidnext - 1};
		uint64_t since = (caps & MX_CAP_CONDSTORE)
					 ? c->folder.highestmodseq : 0;

		rc = c->be->fetch(c->conn, &r, 1, MX_FETCH_FLAGS, since,
				  collect_flags, &cc, err);
		if (rc == MX_OK) {
			a.changes = cc.v;
			a.nchanges = cc.n;
			rc = apply_changes(c, &a, err);
		}
		for (size_t i = 0; i < cc.n; i++)
			free(cc.v[i].keywords);
		free(cc.v);
		if (rc)
			return rc;
	}

	/* 2. New mail, oldest first.  A UIDNEXT below our cursor under the
	 * same UIDVALIDITY breaks RFC 3501 2.3.1.1, but the server will hand
	 * out UIDs from there: look for every UID we do not have (once; the
	 * cursor then follows the server's UIDNEXT). */
	c->gap = false;
	backwards = c->sel.uidnext != 0 && c->sel.uidnext < c->folder.uidnext;
	if (backwards)
		mx_warn("%s/%s: server's UIDNEXT went backwards (%u, was %u); "
			"looking for new mail below it", c->acct.name,
			c->folder.name, c->sel.uidnext, c->folder.uidnext);
	if (backwards || c->sel.uidnext == 0 ||
	    c->sel.uidnext > c->folder.uidnext) {
		rc = list_missing(c, backwards ? 1
				  : c->folder.uidnext ? c->folder.uidnext : 1,
				  UINT32_MAX, err);
		if (rc)
			return rc;
		if (c->nsizes > 1) /* sizes is NULL when nothing is new */
			qsort(c->sizes, c->nsizes, sizeof(*c->sizes),
			      cmp_uid_asc);
		prog_totals(c);
		if (c->nsizes)
			progress(c);
		rc = fetch_bodies(c, c->sizes, c->nsizes, false, err);
		if (rc)
			return rc;
	}

	/* 3. Expunges without QRESYNC: only when the counts disagree. */
	if (!qresync_done) {
		rc = local_count(c, &nlocal, err);
		if (rc)
			return rc;
		if (nlocal != c->sel.exists) {
			uint32_t *uids = NULL;
			size_t n = 0;

			rc = c->be->uids(c->conn, &uids, &n, err);
			if (rc)
				return rc;
			qsort(uids, n, sizeof(*uids), cmp_u32);
			memset(&a, 0, sizeof(a));
			a.server_uids = uids;
			a.nserver = n;
			rc = apply_changes(c, &a, err);
			free(uids);
			if (rc)
				return rc;
		}
	}

	/* 4. Advance the folder cursor (not past a message that did not
	 * arrive: it is asked for again next time). */
	if (!c->gap && (backwards || c->sel.uidnext > c->folder.uidnext))
		c->folder.uidnext = c->sel.uidnext;
	if (c->sel.highestmodseq)
		c->folder.highestmodseq = c->sel.highestmodseq;
	c->folder.last_sync = mx_wall_s();
	c->folder.server_exists = c->sel.exists;
	return mx_store_write(c->st, folder_write_fn, c, err);
}

/* ---- UIDVALIDITY change ---- */

struct ident {
	uint32_t uid, flags;
	uint64_t size, modseq;
	char *keywords;
	uint8_t identity[32];
};

struct remap_ctx {
	struct sync_ctx *c;
	uint32_t old_uidvalidity;
	struct ident *v;
	size_t n, cap;
	uint64_t remapped;
};

static int collect_ident(const struct mx_fetched *m, void *ctx,
			 struct mx_error *err)
{
	struct remap_ctx *r = ctx;
	struct ident *id;

	/* Without the header fields there is no identity to match on; a UID
	 * answered twice is taken once. */
	if (m->body == NULL)
		return MX_OK;
	for (size_t i = r->n; i > 0 && i + 8 > r->n; i--)
		if (r->v[i - 1].uid == m->uid)
			return MX_OK;
	if (r->n == r->cap) {
		size_t ncap = r->cap ? r->cap * 2 : 256;
		struct ident *nv = realloc(r->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		r->v = nv;
		r->cap = ncap;
	}
	id = &r->v[r->n++];
	id->uid = m->uid;
	id->flags = m->flags;
	id->size = m->size;
	id->modseq = m->modseq;
	id->keywords = mx_strdup(m->keywords);
	mx_mime_identity(m->body ? m->body : "", m->body ? m->body_len : 0,
			 id->identity);
	return MX_OK;
}

static int remap_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct remap_ctx *r = ctx;
	struct sync_ctx *c = r->c;
	struct mx_loc *old = NULL;
	size_t nold = 0;
	int rc;

	rc = mx_account_check_current(t, &c->acct, err);
	if (rc)
		return rc;
	r->remapped = 0;
	rc = mx_store_folder_locs(t, c->folder.id, &old, &nold, err);
	if (rc)
		return rc;
	/* Every old location goes; matched messages come back below. */
	for (size_t i = 0; i < nold; i++) {
		rc = remove_loc(t, c->folder.id, old[i].uid, old[i].msg_id, err);
		if (rc)
			goto out;
	}
	for (size_t i = 0; i < r->n; i++) {
		struct ident *id = &r->v[i];
		uint64_t msg = 0;
		struct mx_loc l, taken;

		rc = find_attachable(t, c, id->identity, NULL, id->size, &msg,
				     err);
		if (rc)
			goto out;
		if (msg == 0)
			continue;
		l = (struct mx_loc){c->folder.id, id->uid, msg, id->modseq,
				    id->flags, id->keywords};
		if (mx_store_loc_get(t, c->folder.id, id->uid, &taken, NULL) ==
		    MX_OK) {
			free(taken.keywords);
			continue;
		}
		rc = mx_store_loc_put(t, &l, err);
		if (rc == MX_OK)
			rc = mx_store_orphan_del(t, msg, err);
		if (rc)
			goto out;
		r->remapped++;
	}
	rc = mx_event_folder_reset(t, c->acct.id, c->folder.id, c->folder.name,
				   r->old_uidvalidity, c->sel.uidvalidity,
				   r->remapped, err);
	if (rc)
		goto out;
	/* Restart the folder as a resumable initial sync; the remapped UIDs
	 * are skipped by list_missing(). */
	c->folder.uidvalidity = c->sel.uidvalidity;
	c->folder.initial_top = c->sel.uidnext ? c->sel.uidnext : 1;
	c->folder.initial_low = c->folder.initial_top;
	c->folder.initial_done = false;
	c->folder.uidnext = 0;
	c->folder.highestmodseq = c->sel.highestmodseq;
	rc = put_folder(t, c, err);
out:
	mx_locs_free(old, nold);
	return rc;
}

static int uidvalidity_reset(struct sync_ctx *c, struct mx_error *err)
{
	struct remap_ctx r = {c, c->folder.uidvalidity, NULL, 0, 0, 0};
	struct mx_uid_range all = {1, UINT32_MAX};
	struct mx_folder saved;
	int rc;

	mx_warn("%s/%s: UIDVALIDITY changed (%u -> %u); re-mapping stored "
		"messages by identity", c->acct.name, c->folder.name,
		c->folder.uidvalidity, c->sel.uidvalidity);
	rc = c->be->fetch(c->conn, &all, 1, MX_FETCH_IDENTITY, 0,
			  collect_ident, &r, err);
	if (rc == MX_OK) {
		saved = c->folder;
		rc = mx_store_write(c->st, remap_fn, &r, err);
		if (rc) {
			c->folder = saved;
		} else {
			c->stats->remapped += r.remapped;
		}
	}
	for (size_t i = 0; i < r.n; i++)
		free(r.v[i].keywords);
	free(r.v);
	return rc;
}

/* ---- folders ---- */

static bool folder_wanted(const struct sync_ctx *c, const struct mx_folder *f)
{
	const struct mx_sync_opts *o = c->opts;

	if (f->noselect || f->gone)
		return false;
	if (o && o->folders && o->nfolders) {
		for (size_t i = 0; i < o->nfolders; i++)
			if (strcmp(o->folders[i], f->name) == 0)
				return true;
		return false;
	}
	return mx_sync_follows(f);
}

bool mx_sync_follows(const struct mx_folder *f)
{
	return !f->noselect && !f->gone &&
	       !(f->special & (MX_SU_JUNK | MX_SU_TRASH));
}

static int sync_folder(struct sync_ctx *c, struct mx_error *err)
{
	bool qresync_done = false;
	int rc;

	c->prog.folder = c->folder.name;
	c->prog.msgs_done = c->prog.msgs_total = 0;
	c->prog.bytes_done = c->prog.bytes_total = 0;
	rc = c->be->select(c->conn, c->folder.wire,
			   c->folder.initial_done ? c->folder.uidvalidity : 0,
			   c->folder.initial_done ? c->folder.highestmodseq : 0,
			   &c->sel, err);
	if (rc)
		return rc;
	if (c->folder.uidvalidity && c->sel.uidvalidity != c->folder.uidvalidity) {
		/* QRESYNC data refers to the old UIDVALIDITY: discard. */
		mx_select_result_free(&c->sel);
		rc = c->be->select(c->conn, c->folder.wire, 0, 0, &c->sel, err);
		if (rc == MX_OK)
			rc = uidvalidity_reset(c, err);
		if (rc)
			goto out;
	} else {
		qresync_done = c->sel.qresync;
	}
	if (!c->folder.initial_done) {
		c->gap = false;
		rc = initial_sync(c, err);
		if (rc || !c->folder.initial_done)
			goto out;
		qresync_done = false;
	}
	rc = incremental_sync(c, qresync_done, err);
out:
	mx_select_result_free(&c->sel);
	return rc;
}

struct folders_ctx {
	struct sync_ctx *c;
	struct mx_remote_folder *remote;
	size_t nremote;
	bool all; /* complete listing: mark missing folders gone */
};

/*
 * A folder whose wire name is not UTF-8 (a server sending raw 8-bit names
 * instead of modified UTF-7) cannot be stored: records are JSON.  It is
 * left out with a warning that shows its bytes escaped, and counted as a
 * folder error; the other folders sync.
 */
static void skip_unstorable_names(const char *acct,
				  struct mx_remote_folder *v, size_t *n,
				  struct mx_sync_stats *stats)
{
	size_t j = 0;

	for (size_t i = 0; i < *n; i++) {
		char shown[300];
		size_t k = 0;

		if (mx_utf8_valid_str(v[i].wire)) {
			v[j++] = v[i];
			continue;
		}
		for (const unsigned char *p = (const unsigned char *)v[i].wire;
		     *p && k + 5 < sizeof(shown); p++) {
			if (*p >= 0x20 && *p < 0x7f && *p != '\\')
				shown[k++] = (char)*p;
			else
				k += (size_t)snprintf(shown + k, sizeof(shown) - k,
						      "\\x%02x", *p);
		}
		shown[k] = '\0';
		mx_warn("%s: skipping folder \"%s\": its name is not valid "
			"UTF-8", acct, shown);
		stats->folder_errors++;
		free(v[i].name);
		free(v[i].wire);
	}
	*n = j;
}

static int folders_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct folders_ctx *fc = ctx;
	struct sync_ctx *c = fc->c;
	struct mx_folder *local = NULL;
	size_t nlocal = 0;
	int rc;

	rc = mx_account_check_current(t, &c->acct, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < fc->nremote; i++) {
		struct mx_remote_folder *r = &fc->remote[i];
		struct mx_folder f;

		rc = mx_store_folder_find(t, c->acct.id, r->name, &f, NULL);
		if (rc == MX_ERR_NOTFOUND) {
			memset(&f, 0, sizeof(f));
			f.account_id = c->acct.id;
			f.name = strdup(r->name);
			f.wire = strdup(r->wire);
			if (f.name == NULL || f.wire == NULL) {
				mx_folder_free(&f);
				return mx_error_set(err, MX_ERR_NOMEM, NULL);
			}
		} else if (rc) {
			return mx_error_set(err, rc, "folder %s", r->name);
		}
		if (f.special != r->special || f.noselect != r->noselect ||
		    f.delim != r->delim || f.gone || f.id == 0) {
			f.special = r->special;
			f.noselect = r->noselect;
			f.delim = r->delim;
			f.gone = false;
			rc = mx_store_folder_put(t, &f, err);
		}
		mx_folder_free(&f);
		if (rc)
			return rc;
	}
	if (!fc->all)
		return MX_OK;
	rc = mx_store_folder_list(t, c->acct.id, &local, &nlocal, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < nlocal; i++) {
		struct mx_folder *f = &local[i];
		struct mx_loc *locs = NULL;
		size_t n = 0;
		bool listed = false;

		for (size_t j = 0; j < fc->nremote && !listed; j++)
			listed = strcmp(fc->remote[j].name, f->name) == 0;
		if (listed)
			continue;
		if (!f->gone) {
			/* Missing from LIST once: could be a server hiccup.
			 * Keep its messages until a second listing agrees. */
			f->gone = true;
			rc = mx_store_folder_put(t, f, err);
			if (rc)
				break;
			continue;
		}
		/* Deleted or renamed on the server: its messages become
		 * orphans (re-attached if they show up elsewhere). */
		rc = mx_store_folder_locs(t, f->id, &locs, &n, err);
		for (size_t j = 0; rc == MX_OK && j < n; j++)
			rc = remove_loc(t, f->id, locs[j].uid, locs[j].msg_id,
					err);
		mx_locs_free(locs, n);
		if (rc)
			break;
		if (n == 0 && f->initial_top == 0)
			continue; /* already emptied */
		f->initial_done = false;
		f->initial_top = f->initial_low = f->uidnext = 0;
		f->uidvalidity = 0;
		rc = mx_store_folder_put(t, f, err);
		if (rc)
			break;
	}
	mx_folders_free(local, nlocal);
	return rc;
}

static int gc_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct sync_ctx *c = ctx;
	uint64_t *ids = NULL;
	size_t n = 0;
	int rc;

	c->stats->deleted = 0;
	rc = mx_account_check_current(t, &c->acct, err);
	if (rc)
		return rc;
	rc = mx_store_orphans(t, &ids, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n; i++) {
		struct mx_loc *locs = NULL;
		size_t nl = 0;
		struct mx_msg m;

		rc = mx_store_msg_get(t, ids[i], &m, err);
		if (rc == MX_ERR_NOTFOUND) {
			rc = mx_store_orphan_del(t, ids[i], err);
			continue;
		}
		if (rc)
			break;
		if (m.account_id != c->acct.id) {
			mx_msg_free(&m);
			continue;
		}
		mx_msg_free(&m);
		rc = mx_store_msg_locs(t, ids[i], &locs, &nl, err);
		mx_locs_free(locs, nl);
		if (rc)
			break;
		if (nl == 0) {
			rc = mx_store_msg_del(t, ids[i], err);
			if (rc == MX_OK)
				rc = mx_event_message_deleted(t, c->acct.id,
							      ids[i], err);
			c->stats->deleted++;
		}
		if (rc == MX_OK)
			rc = mx_store_orphan_del(t, ids[i], err);
	}
	free(ids);
	return rc;
}

static bool fatal_for_account(int rc)
{
	switch (rc) {
	case MX_ERR_SERVER:
	case MX_ERR_NOTFOUND:
		return false; /* e.g. SELECT refused: skip this folder */
	default:
		return true;
	}
}

int mx_sync_opts_check(const struct mx_sync_opts *opts, struct mx_error *err)
{
	if (opts && opts->batch_msgs > MX_SYNC_BATCH_MSGS_MAX)
		return mx_error_set(err, MX_ERR_INVAL,
				    "batch of %u messages: at most %u",
				    opts->batch_msgs, MX_SYNC_BATCH_MSGS_MAX);
	if (opts && opts->batch_bytes > MX_SYNC_BATCH_BYTES_MAX)
		return mx_error_set(err, MX_ERR_INVAL,
				    "batch of %" PRIu64 " bytes: at most %" PRIu64,
				    opts->batch_bytes, MX_SYNC_BATCH_BYTES_MAX);
	return MX_OK;
}

/* KNOWN: the folders of OPTS as the store knows them, no LIST. */
static int sync_conn(struct mx_store *st, const struct mx_account *acct,
		     struct mx_conn *conn, const struct mx_sync_opts *opts,
		     bool known, struct mx_sync_stats *stats_r,
		     struct mx_error *err)
{
	const char *name = acct->name;
	struct mx_sync_stats stats = {0};
	struct sync_ctx c = {0};
	struct folders_ctx fc = {0};
	struct mx_folder *folders = NULL;
	size_t nfolders = 0;
	struct mx_txn t;
	struct mx_error ferr;
	int rc;

	mx_error_clear(err);
	rc = mx_sync_opts_check(opts, err);
	if (rc)
		return rc;
	c.st = st;
	c.be = mx_backend_for_account(acct);
	if (c.be == NULL || !(c.be->caps & MX_CAP_MODEL_UID))
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "account %s: its backend has no folders "
				    "to sync by UID", name);
	c.opts = opts;
	c.stats = &stats;
	c.batch_msgs = opts && opts->batch_msgs ? opts->batch_msgs
						: DEFAULT_BATCH_MSGS;
	c.batch_bytes = opts && opts->batch_bytes ? opts->batch_bytes
						  : DEFAULT_BATCH_BYTES;
	/* Borrowed: the caller owns the account and the connection. */
	c.acct = *acct;
	c.conn = conn;
	c.prog.account = c.acct.name;
	if (known)
		goto listed;
	rc = c.be->list(c.conn, &fc.remote, &fc.nremote, err);
	if (rc)
		goto out;
	skip_unstorable_names(name, fc.remote, &fc.nremote, &stats);
	{
		bool inbox = false;

		for (size_t i = 0; i < fc.nremote; i++)
			inbox |= (fc.remote[i].special & MX_SU_INBOX) != 0;
		if (!inbox) {
			/* Every IMAP account has an INBOX (RFC 3501 6.3.8):
			 * a listing without it cannot be trusted to say what
			 * was deleted. */
			rc = mx_error_set(err, MX_ERR_PROTOCOL,
					  "LIST did not return INBOX");
			goto out;
		}
	}
	fc.c = &c;
	fc.all = !(opts && opts->folders && opts->nfolders);
	rc = mx_store_write(st, folders_fn, &fc, err);
	if (rc)
		goto out;
listed:
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		goto out;
	rc = mx_store_folder_list(&t, c.acct.id, &folders, &nfolders, err);
	mx_txn_abort(&t);
	if (rc)
		goto out;
	if (opts && opts->folders) {
		for (size_t i = 0; i < opts->nfolders; i++) {
			bool found = false;

			for (size_t j = 0; j < nfolders && !found; j++)
				found = strcmp(folders[j].name,
					       opts->folders[i]) == 0 &&
					!folders[j].gone;
			if (!found) {
				rc = mx_error_set(err, MX_ERR_NOTFOUND,
						  "no folder '%s' on the server",
						  opts->folders[i]);
				goto out;
			}
		}
	}
	/* INBOX first: it is what users look at. */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < nfolders; i++) {
			bool inbox = (folders[i].special & MX_SU_INBOX) != 0;

			if ((pass == 0) != inbox || !folder_wanted(&c, &folders[i]))
				continue;
			c.folder = folders[i];
			mx_error_clear(&ferr);
			rc = sync_folder(&c, &ferr);
			folders[i] = c.folder; /* keeps ownership in the array */
			stats.folders++;
			if (rc == MX_OK)
				continue;
			if (fatal_for_account(rc)) {
				if (err)
					*err = ferr;
				mx_error_prefix(err, "%s", folders[i].name);
				goto out;
			}
			mx_warn("%s/%s: %s", name, folders[i].name, ferr.detail);
			stats.folder_errors++;
			rc = MX_OK;
		}
	}
	memset(&c.folder, 0, sizeof(c.folder));
	if (fc.all && stats.folder_errors == 0)
		rc = mx_store_write(st, gc_fn, &c, err);
	if (rc == MX_OK && stats.folder_errors)
		rc = mx_error_set(err, MX_ERR_SERVER,
				  "%" PRIu64 " folder(s) could not be synced",
				  stats.folder_errors);
out:
	memset(&c.folder, 0, sizeof(c.folder));
	free(c.sizes);
	mx_folders_free(folders, nfolders);
	mx_remote_folders_free(fc.remote, fc.nremote);
	stats.missing = c.missing;
	if (stats_r)
		*stats_r = stats;
	return rc;
}

int mx_sync_conn(struct mx_store *st, const struct mx_account *acct,
		 struct mx_conn *conn, const struct mx_sync_opts *opts,
		 struct mx_sync_stats *stats_r, struct mx_error *err)
{
	return sync_conn(st, acct, conn, opts, false, stats_r, err);
}

int mx_sync_conn_known(struct mx_store *st, const struct mx_account *acct,
		       struct mx_conn *conn, const struct mx_sync_opts *opts,
		       struct mx_sync_stats *stats_r, struct mx_error *err)
{
	if (opts == NULL || opts->folders == NULL || opts->nfolders == 0)
		return mx_error_set(err, MX_ERR_INVAL,
				    "a sync without LIST needs its folders");
	return sync_conn(st, acct, conn, opts, true, stats_r, err);
}

enum mx_err mx_sync(struct mx_store *st, const char *name,
		    const struct mx_sync_opts *opts,
		    struct mx_sync_stats *stats_r, struct mx_error *err)
{
	const struct mx_backend_ops *be;
	struct mx_account acct = {0};
	struct mx_conn *conn = NULL;
	int rc;

	mx_error_clear(err);
	if (stats_r)
		memset(stats_r, 0, sizeof(*stats_r));
	rc = mx_sync_opts_check(opts, err);
	if (rc)
		return rc;
	rc = mx_account_load(st, name, &acct, err);
	if (rc)
		return rc;
	/* The driver follows the backend's sync model. */
	be = mx_backend_for_account(&acct);
	if (be && (be->caps & MX_CAP_MODEL_DROP)) { /* pop3sync.c */
		rc = mx_drop_sync(st, &acct, opts, stats_r, err);
		mx_account_free(&acct);
		return rc;
	}
	if (be && (be->caps & MX_CAP_MODEL_CHANGES)) { /* changes.c */
		rc = mx_changes_sync(st, &acct, opts, stats_r, err);
		mx_account_free(&acct);
		return rc;
	}
	rc = mx_backend_connect(st, &acct, &be, &conn, err);
	if (rc) {
		mx_error_prefix(err, "account %s", name);
		mx_account_free(&acct);
		return rc;
	}
	rc = mx_sync_conn(st, &acct, conn, opts, stats_r, err);
	be->disconnect(&conn);
	mx_account_free(&acct);
	return rc;
}
