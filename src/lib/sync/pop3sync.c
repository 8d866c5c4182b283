/*
 * POP3 sync: download by UIDL, optional delete-after-store.
 * Reasoning and invariants: doc/internals/pop3.md.
 *
 *  - A POP3 account has one folder in the store, "INBOX".  Each downloaded
 *    message gets a location there with a synthetic UID (the folder's
 *    uidnext, counting up), so status, ls, show and export treat it like
 *    IMAP mail.
 *  - The UIDL of every stored message is recorded in the meta database,
 *    key "pop3uidl" + u32 account id + unique-id, value u64 message id,
 *    written in the same transaction as the message, its location and its
 *    message.new event: a crash at any point loses nothing and a rerun
 *    downloads again only what was not committed.
 *  - DELE only for messages whose UIDL is committed; the server applies
 *    deletions at QUIT, which comes last.
 *  - Messages that vanish from the server stay in the store: POP3 is a
 *    download protocol, the store is the mailbox.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "account/account.h"
#include "mime/mime.h"
#include "sync/ingest.h"
#include "sync/sync.h"

#define POP3_BATCH_MSGS 64
#define POP3_BATCH_BYTES ((uint64_t)16 << 20)
/* The most the download buffer is sized for ahead, whatever the listing
 * says (the backend limits the message itself). */
#define MAX_PREALLOC ((uint64_t)256 << 20)
#define UIDL_KEY_PREFIX "pop3uidl"
#define UIDL_KEY_MAX (sizeof(UIDL_KEY_PREFIX) - 1 + 4 + MX_DROP_ID_MAX)

struct dl {
	const struct mx_drop_msg *m; /* foreign (the listing) */
	char *raw;                   /* owned */
	size_t len;
	uint8_t sha[32];
	uint8_t identity[32];
	struct mx_parsed parsed;
	uint64_t msg_id;             /* after commit */
	enum { DL_CREATED, DL_REMAPPED, DL_KNOWN } state; /* after commit */
};

struct psync {
	struct mx_store *st;
	struct mx_account *a;        /* foreign */
	const struct mx_sync_opts *opts;
	struct mx_sync_stats *stats;
	const struct mx_backend_ops *be; /* the maildrop model */
	struct mx_conn *conn;
	struct mx_folder folder;     /* "INBOX" */
	uint32_t next_uid;           /* folder uidnext after the commit */
	/* Records already claimed by a unique-id on the server (sorted), so
	 * a new unique-id is attached only to a record nobody else has. */
	uint64_t *claimed;
	size_t nclaimed;
	/* The batch being downloaded. */
	struct dl *batch;
	size_t nbatch, capbatch;
	uint64_t batch_bytes;
	/* Download buffer for one message. */
	struct mx_buf body;
	struct mx_sync_progress prog;
};

static size_t uidl_key(uint32_t account_id, const char *uidl,
		       uint8_t out[UIDL_KEY_MAX])
{
	size_t pl = sizeof(UIDL_KEY_PREFIX) - 1, ul = strlen(uidl);

	memcpy(out, UIDL_KEY_PREFIX, pl);
	mx_put_be32(out + pl, account_id);
	memcpy(out + pl + 4, uidl, ul);
	return pl + 4 + ul;
}

/* The record stored for UIDL, or 0. */
static uint64_t uidl_lookup(struct mx_txn *t, uint32_t account_id,
			    const char *uidl)
{
	uint8_t k[UIDL_KEY_MAX];
	size_t kl = uidl_key(account_id, uidl, k);
	MDB_val v;

	if (mx_db_get(t, MX_DB_META, k, kl, &v, NULL) != MX_OK ||
	    v.mv_size != 8)
		return 0;
	return mx_get_be64(v.mv_data);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool is_claimed(const struct psync *c, uint64_t id)
{
	return bsearch(&id, c->claimed, c->nclaimed, sizeof(id), cmp_u64) !=
	       NULL;
}

static void dl_free(struct dl *d)
{
	free(d->raw);
	mx_parsed_free(&d->parsed);
	memset(d, 0, sizeof(*d));
}

static void batch_clear(struct psync *c)
{
	for (size_t i = 0; i < c->nbatch; i++)
		dl_free(&c->batch[i]);
	c->nbatch = 0;
	c->batch_bytes = 0;
}

/* ---- the folder ---- */

static int folder_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct psync *c = ctx;
	int rc;

	rc = mx_account_check_current(t, c->a, err);
	if (rc)
		return rc;
	mx_folder_free(&c->folder);
	memset(&c->folder, 0, sizeof(c->folder));
	rc = mx_store_folder_find(t, c->a->id, "INBOX", &c->folder, NULL);
	if (rc == MX_OK)
		return MX_OK;
	if (rc != MX_ERR_NOTFOUND)
		return mx_error_set(err, rc, "folder INBOX");
	c->folder.account_id = c->a->id;
	c->folder.name = strdup("INBOX");
	c->folder.wire = strdup("INBOX");
	if (c->folder.name == NULL || c->folder.wire == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	c->folder.delim = '/';
	c->folder.special = MX_SU_INBOX;
	/* Synthetic UIDs; there is no UIDVALIDITY in POP3, and they never
	 * change meaning. */
	c->folder.uidvalidity = 1;
	c->folder.uidnext = 1;
	c->folder.initial_top = 1;
	c->folder.initial_low = 1;
	c->folder.initial_done = true;
	return mx_store_folder_put(t, &c->folder, err);
}

/* ---- commit ---- */

struct same_ctx {
	const struct psync *c;
	const uint64_t *taken;
	size_t ntaken;
	uint64_t found;
};

static int same_cb(struct mx_txn *t, uint64_t msg_id, void *ctx,
		   bool *stop_r, struct mx_error *err)
{
	struct same_ctx *s = ctx;
	bool busy = is_claimed(s->c, msg_id);

	(void)t;
	(void)err;
	for (size_t j = 0; j < s->ntaken && !busy; j++)
		busy = s->taken[j] == msg_id;
	if (!busy) {
		s->found = msg_id;
		*stop_r = true;
	}
	return MX_OK;
}

/* A stored record of this account with the same identity and bytes that
 * no unique-id on the server claims (the server renumbered its UIDLs);
 * *FOUND_R 0 if none.  A store error is returned, not taken for "none":
 * that would store a second copy. */
static int find_same(struct mx_txn *t, struct psync *c, const struct dl *d,
		     const uint64_t *taken, size_t ntaken, uint64_t *found_r,
		     struct mx_error *err)
{
	struct same_ctx s = {c, taken, ntaken, 0};
	int rc;

	rc = mx_ingest_find(t, c->a->id, d->identity, d->sha, d->len, same_cb,
			    &s, err);
	*found_r = rc ? 0 : s.found;
	return rc;
}

static int commit_msgs(struct mx_txn *t, struct psync *c, struct mx_folder *fp,
		       uint64_t *taken, size_t *ntaken_r, struct mx_error *err);

/*
 * One write transaction for the batch: records, locations, events, the
 * UIDL map and the folder's uidnext.  Everything it decides is kept in
 * locals and the batch entries, so that a MAP_FULL retry starts over.
 */
static int commit_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct psync *c = ctx;
	struct mx_folder f;
	uint64_t taken[POP3_BATCH_MSGS];
	size_t ntaken = 0;
	int rc;

	/* Removed meanwhile: not one record may come back. */
	rc = mx_account_check_current(t, c->a, err);
	if (rc)
		return rc;
	/* The folder as committed: another process (a second `mxsync sync`,
	 * the daemon) may have stored messages of this account meanwhile. */
	rc = mx_store_folder_get(t, c->folder.id, &f, err);
	if (rc)
		return rc;
	rc = commit_msgs(t, c, &f, taken, &ntaken, err);
	if (rc == MX_OK) {
		f.last_sync = mx_wall_s();
		c->next_uid = f.uidnext; /* adopted once the commit succeeded */
		rc = mx_store_folder_put(t, &f, err);
	}
	mx_folder_free(&f);
	return rc;
}

static int commit_msgs(struct mx_txn *t, struct psync *c, struct mx_folder *fp,
		       uint64_t *taken, size_t *ntaken_r, struct mx_error *err)
{
	struct mx_folder f = *fp; /* borrowed strings; uidnext copied back */
	size_t ntaken = 0;
	int rc;

	for (size_t i = 0; i < c->nbatch; i++) {
		struct dl *d = &c->batch[i];
		uint8_t k[UIDL_KEY_MAX], v[8];
		size_t kl = uidl_key(c->a->id, d->m->id, k);
		uint64_t id;

		d->msg_id = 0;
		d->state = DL_REMAPPED;
		id = uidl_lookup(t, c->a->id, d->m->id);
		if (id) {
			d->state = DL_KNOWN; /* stored by another process */
			d->msg_id = id;
			continue;
		}
		rc = find_same(t, c, d, taken, ntaken, &id, err);
		if (rc)
			return rc;
		if (id == 0) {
			struct mx_ingest_new n = {0};

			n.account_id = c->a->id;
			n.folder_id = f.id;
			n.folder_name = c->folder.name;
			n.uid = f.uidnext++;
			n.internaldate = mx_wall_s(); /* POP3 has none */
			n.raw = d->raw;
			n.len = d->len;
			n.sha = d->sha;
			n.identity = d->identity;
			n.parsed = &d->parsed;
			n.drop_id = d->m->id;
			rc = mx_ingest_store(t, &n, &id, err);
			if (rc)
				return rc;
			d->state = DL_CREATED;
		}
		mx_put_be64(v, id);
		rc = mx_db_put(t, MX_DB_META, k, kl, v, 8, 0, err);
		if (rc)
			return rc;
		d->msg_id = id;
		if (ntaken < POP3_BATCH_MSGS)
			taken[ntaken++] = id;
	}
	fp->uidnext = f.uidnext;
	*ntaken_r = ntaken;
	return MX_OK;
}

/* Commits the batch, then (pop3_delete) marks its messages for deletion. */
static int commit_batch(struct psync *c, struct mx_error *err)
{
	int rc;

	if (c->nbatch == 0)
		return MX_OK;
	for (size_t i = 0; i < c->nbatch; i++) {
		struct dl *d = &c->batch[i];

		rc = mx_ingest_prepare(d->raw, d->len, d->sha, d->identity,
				       &d->parsed, err);
		if (rc)
			return rc;
	}
	rc = mx_store_write(c->st, commit_fn, c, err);
	if (rc)
		return rc;
	c->folder.uidnext = c->next_uid;
	for (size_t i = 0; i < c->nbatch; i++) {
		struct dl *d = &c->batch[i];

		c->stats->new_bytes += d->len;
		if (d->state == DL_CREATED)
			c->stats->new_msgs++;
		else if (d->state == DL_REMAPPED)
			c->stats->remapped++;
		if (d->parsed.flags & MX_PARSED_BROKEN)
			c->stats->parse_errors++;
		c->prog.msgs_done++;
		c->prog.bytes_done += d->len;
	}
	mx_trace(MX_TRACE_SYNC, "%s: committed %zu POP3 messages", c->a->name,
		 c->nbatch);
	/* Committed: now the server may forget them (at QUIT). */
	for (size_t i = 0; c->a->pop3_delete && i < c->nbatch; i++) {
		rc = c->be->drop_remove(c->conn, c->batch[i].m->num, err);
		if (rc)
			return rc;
		c->stats->expunged++;
	}
	batch_clear(c);
	if (c->opts && c->opts->progress)
		c->opts->progress(&c->prog, c->opts->progress_ctx);
	return MX_OK;
}

/* ---- download ---- */

static int body_cb(const char *data, size_t len, void *ctx,
		   struct mx_error *err)
{
	struct psync *c = ctx;

	if (mx_buf_append(&c->body, data, len) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	return MX_OK;
}

static int download(struct psync *c, const struct mx_drop_msg *m,
		    struct mx_error *err)
{
	struct dl *d;
	uint64_t want = m->size + 64;
	int rc;

	if (c->nbatch == c->capbatch) {
		size_t ncap = c->capbatch ? c->capbatch * 2 : 16;
		struct dl *nv = realloc(c->batch, ncap * sizeof(*nv));

		if (nv == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		c->batch = nv;
		c->capbatch = ncap;
	}
	/* LIST's size, so the buffer is not grown (and copied) on the way;
	 * a lying server only costs reallocations. */
	mx_buf_reset(&c->body);
	if (want > MAX_PREALLOC)
		want = MAX_PREALLOC;
	if (mx_buf_reserve(&c->body, (size_t)want) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = c->be->drop_retr(c->conn, m->num, body_cb, c, err);
	if (rc) {
		mx_error_prefix(err, "RETR %" PRIu32 " (UIDL %s)", m->num,
				m->id);
		return rc;
	}
	d = &c->batch[c->nbatch++];
	memset(d, 0, sizeof(*d));
	d->m = m;
	d->len = c->body.len;
	d->raw = mx_buf_steal(&c->body); /* the batch keeps the only copy */
	c->batch_bytes += d->len;
	return MX_OK;
}

/* ---- entry point ---- */

static bool cancelled(const struct psync *c)
{
	return c->opts && c->opts->cancel && *c->opts->cancel;
}

static int run(struct psync *c, struct mx_error *err)
{
	struct mx_drop_msg *v = NULL;
	const struct mx_drop_msg **todo = NULL;
	size_t n = 0, ntodo = 0;
	unsigned batch_msgs = c->opts && c->opts->batch_msgs
				      ? c->opts->batch_msgs : POP3_BATCH_MSGS;
	uint64_t batch_bytes = c->opts && c->opts->batch_bytes
				       ? c->opts->batch_bytes : POP3_BATCH_BYTES;
	struct mx_txn t;
	int rc;

	if (batch_msgs > POP3_BATCH_MSGS)
		batch_msgs = POP3_BATCH_MSGS;
	rc = mx_store_write(c->st, folder_fn, c, err);
	if (rc)
		return rc;
	rc = c->be->drop_list(c->conn, &v, &n, err);
	if (rc)
		return rc;
	todo = malloc((n ? n : 1) * sizeof(*todo));
	c->claimed = malloc((n ? n : 1) * sizeof(*c->claimed));
	if (todo == NULL || c->claimed == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	rc = mx_txn_begin(c->st, false, &t, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint64_t id = uidl_lookup(&t, c->a->id, v[i].id);

		if (id)
			c->claimed[c->nclaimed++] = id;
		else
			todo[ntodo++] = &v[i];
	}
	mx_txn_abort(&t);
	qsort(c->claimed, c->nclaimed, sizeof(*c->claimed), cmp_u64);
	mx_trace(MX_TRACE_SYNC, "%s: POP3 maildrop has %zu messages, %zu new",
		 c->a->name, n, ntodo);
	/* Stored by an earlier run whose QUIT never came (or before
	 * --pop3-delete was set): safe to delete now. */
	for (size_t i = 0; c->a->pop3_delete && i < n; i++) {
		bool known = true;

		for (size_t j = 0; j < ntodo && known; j++)
			known = todo[j] != &v[i];
		if (!known)
			continue;
		rc = c->be->drop_remove(c->conn, v[i].num, err);
		if (rc)
			goto out;
		c->stats->expunged++;
	}
	c->prog.msgs_total = ntodo;
	for (size_t i = 0; i < ntodo; i++)
		c->prog.bytes_total += todo[i]->size;
	for (size_t i = 0; i < ntodo; i++) {
		if (cancelled(c)) {
			rc = commit_batch(c, err);
			if (rc == MX_OK)
				rc = mx_error_set(err, MX_ERR_CANCELLED,
						  "interrupted; committed work "
						  "is kept");
			goto out;
		}
		rc = download(c, todo[i], err);
		if (rc)
			goto out;
		if (c->nbatch >= batch_msgs || c->batch_bytes >= batch_bytes) {
			rc = commit_batch(c, err);
			if (rc)
				goto out;
		}
	}
	rc = commit_batch(c, err);
	if (rc)
		goto out;
	c->folder.server_exists = (uint32_t)n;
	c->folder.last_sync = mx_wall_s();
	/* Deletions (if any) take effect now, after everything committed. */
	rc = c->be->drop_commit(c->conn, err);
out:
	batch_clear(c);
	free(todo);
	free(v);
	return rc;
}

static int folder_stat_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct psync *c = ctx;
	struct mx_folder f;
	int rc;

	rc = mx_account_check_current(t, c->a, err);
	if (rc)
		return rc;
	/* Re-read: only the server count and the time change here. */
	rc = mx_store_folder_get(t, c->folder.id, &f, err);
	if (rc)
		return rc;
	f.server_exists = c->folder.server_exists;
	f.last_sync = c->folder.last_sync;
	rc = mx_store_folder_put(t, &f, err);
	mx_folder_free(&f);
	return rc;
}

int mx_drop_sync(struct mx_store *st, struct mx_account *a,
		 const struct mx_sync_opts *opts,
		 struct mx_sync_stats *stats_r, struct mx_error *err)
{
	struct mx_sync_stats stats = {0};
	struct psync c = {0};
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
	c.prog.folder = "INBOX";
	if (opts && opts->folders && opts->nfolders) {
		for (size_t i = 0; i < opts->nfolders; i++)
			if (strcmp(opts->folders[i], "INBOX") != 0) {
				rc = mx_error_set(err, MX_ERR_NOTFOUND,
						  "no folder '%s': a POP3 "
						  "account has only INBOX",
						  opts->folders[i]);
				goto out;
			}
	}
	c.be = mx_backend_for_account(a);
	if (c.be == NULL || !(c.be->caps & MX_CAP_MODEL_DROP))
		rc = mx_error_set(err, MX_ERR_UNSUPPORTED,
				  "its backend has no maildrop");
	else
		rc = mx_backend_connect(st, a, NULL, &c.conn, err);
	if (rc) {
		mx_error_prefix(err, "account %s", a->name);
		goto out;
	}
	stats.folders = 1;
	rc = run(&c, err);
	if (rc == MX_OK && c.folder.id)
		rc = mx_store_write(st, folder_stat_fn, &c, err);
out:
	/* Without QUIT (an error), the server discards pending DELEs. */
	if (c.conn)
		c.be->disconnect(&c.conn);
	mx_buf_free(&c.body);
	free(c.batch);
	free(c.claimed);
	mx_folder_free(&c.folder);
	if (stats_r)
		*stats_r = stats;
	return rc;
}
