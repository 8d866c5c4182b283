/*
 * LMDB store: environment, transactions with map growth, and the typed
 * accessors of store.h.  Layout and invariants: doc/internals/store.md.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <fcntl.h>
#include <unistd.h>

#include <jansson.h>

#include "secrets/secrets.h"
#include "store/store.h"

static const struct {
	const char *name;
	unsigned flags;
} db_defs[MX_DB_COUNT] = {
	[MX_DB_META] = {"meta", 0},
	[MX_DB_ACCOUNTS] = {"accounts", 0},
	[MX_DB_ACCOUNT_NAMES] = {"account_names", 0},
	[MX_DB_FOLDERS] = {"folders", 0},
	[MX_DB_FOLDER_NAMES] = {"folder_names", 0},
	[MX_DB_MESSAGES] = {"messages", 0},
	[MX_DB_BLOBS] = {"blobs", 0},
	[MX_DB_BLOBREFS] = {"blobrefs", 0},
	[MX_DB_LOCS] = {"locs", 0},
	[MX_DB_MSGLOCS] = {"msglocs", 0},
	[MX_DB_IDENTITY] = {"identity", MDB_DUPSORT},
	[MX_DB_MSGID] = {"msgid", MDB_DUPSORT},
	[MX_DB_THREADREFS] = {"threadrefs", 0},
	[MX_DB_THREADSUBJ] = {"threadsubj", 0},
	[MX_DB_THREADS] = {"threads", 0},
	[MX_DB_EVENTS] = {"events", 0},
	[MX_DB_BYDATE] = {"bydate", 0},
	[MX_DB_ORPHANS] = {"orphans", 0},
	[MX_DB_WEBHOOKS] = {"webhooks", 0},
	[MX_DB_ACCTSTATE] = {"acctstate", 0},
	[MX_DB_OUTBOX] = {"outbox", 0},
	[MX_DB_OUTBOX_KEYS] = {"outbox_keys", 0},
	[MX_DB_SENDLOG] = {"sendlog", 0},
	[MX_DB_OUTBOX_PENDING] = {"outbox_pending", 0},
	[MX_DB_APITOKENS] = {"apitokens", 0},
	[MX_DB_API_IDEM] = {"api_idem", 0},
	[MX_DB_CONTACTS] = {"contacts", 0},
	[MX_DB_CONTACT_ADDRS] = {"contact_addrs", 0},
	[MX_DB_LINKS] = {"links", 0},
	[MX_DB_TIMELINE] = {"timeline", 0},
	[MX_DB_WEBHOOK_EPS] = {"webhook_eps", 0},
};

/* Address space, not disk: on Linux the file only grows as data is
 * written.  Large enough that the daemon, whose threads cannot resize the
 * map while others hold transactions, practically never has to. */
#define MX_MAP_DEFAULT ((size_t)64 << 30)
#define MX_MAP_MAX_DEFAULT ((size_t)1 << 40) /* 1 TiB of address space */
#define MX_KEY_MAX 480 /* below LMDB's 511-byte key limit */

int mx_store_err(struct mx_error *err, int rc, const char *what)
{
	if (rc == MDB_NOTFOUND)
		return mx_error_set(err, MX_ERR_NOTFOUND, "%s: not found",
				    what);
	if (rc == MDB_MAP_FULL)
		return mx_error_set(err, MX_ERR_STORE_FULL,
				    "%s: store map full", what);
	if (rc == ENOSPC)
		return mx_error_set(err, MX_ERR_IO,
				    "%s: no space left on device", what);
	return mx_error_set(err, MX_ERR_STORE, "%s: %s", what,
			    mdb_strerror(rc));
}

static void store_find_map(struct mx_store *st);

static int check_schema(struct mx_store *st, struct mx_error *err)
{
	struct mx_txn t;
	MDB_val v;
	uint8_t be[4];
	int rc;

	rc = mx_txn_begin(st, true, &t, err);
	if (rc)
		return rc;
	rc = mx_db_get(&t, MX_DB_META, "schema_version", 14, &v, err);
	if (rc == MX_OK) {
		uint32_t ver = v.mv_size == 4 ? mx_get_be32(v.mv_data) : 0;

		mx_txn_abort(&t);
		if (ver == 0 || ver > MX_SCHEMA_VERSION)
			return mx_error_set(err, MX_ERR_SCHEMA,
					    "store schema version %u is not "
					    "supported (this mxsync reads up to "
					    "%u)", ver, MX_SCHEMA_VERSION);
		return MX_OK;
	}
	if (rc != MX_ERR_NOTFOUND) {
		mx_txn_abort(&t);
		return rc;
	}
	mx_put_be32(be, MX_SCHEMA_VERSION);
	rc = mx_db_put(&t, MX_DB_META, "schema_version", 14, be, 4, 0, err);
	if (rc) {
		mx_txn_abort(&t);
		return rc;
	}
	return mx_txn_commit(&t, err);
}

int mx_store_open_ex(const char *dir, size_t map_size, size_t map_max,
		     struct mx_store **store_r, struct mx_error *err)
{
	return mx_store_open_flags(dir, map_size, map_max, 0, store_r, err);
}

int mx_store_open_flags(const char *dir, size_t map_size, size_t map_max,
			unsigned flags, struct mx_store **store_r,
			struct mx_error *err)
{
	struct mx_store *st;
	MDB_txn *txn = NULL;
	MDB_envinfo info;
	char path[4096];
	int rc;

	if (dir == NULL || *dir == '\0')
		return mx_error_set(err, MX_ERR_INVAL,
				    "empty data directory path");
	if (!(flags & MX_STORE_NOCREATE)) {
		rc = mx_mkdir_p(dir, 0700, err);
		if (rc)
			return rc;
	}
	/* Before LMDB maps the file: LMDB would turn an empty data.mdb into
	 * a new store and die of SIGBUS reading past a truncated one. */
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	rc = mx_store_check_file(path, err);
	if (rc == MX_ERR_NOTFOUND && (flags & MX_STORE_NOCREATE))
		return mx_error_set(err, MX_ERR_NOTFOUND,
				    "no store in %s (no data.mdb there): check "
				    "-d and MXSYNC_DATA_DIR; 'mxsync account "
				    "add' creates a store", dir);
	if (rc && rc != MX_ERR_NOTFOUND)
		return rc;
	st = calloc(1, sizeof(*st));
	if (st == NULL || (st->dir = strdup(dir)) == NULL) {
		free(st);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	st->daemon_fd = -1;
	atomic_init(&st->lock_lost, false);
	pthread_mutex_init(&st->trim_mu, NULL);
	pthread_mutex_init(&st->secrets_mu, NULL);
	st->map_size = map_size ? map_size : MX_MAP_DEFAULT;
	st->map_max = map_max ? map_max : MX_MAP_MAX_DEFAULT;
	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, 64)) != 0 ||
	    /* Every open read transaction holds a reader slot (MDB_NOTLS):
	     * the HTTP API reads on many connections at once, and LMDB's
	     * default of 126 slots would fail requests past it. */
	    (rc = mdb_env_set_maxreaders(st->env, MX_STORE_MAX_READERS)) != 0 ||
	    (rc = mdb_env_set_mapsize(st->env, st->map_size)) != 0) {
		rc = mx_store_err(err, rc, "lmdb setup");
		goto fail;
	}
	/* MDB_NOTLS: transactions are tied to the handle, not to a thread,
	 * so the daemon's worker pool can share one environment. */
	rc = mdb_env_open(st->env, dir, MDB_NOTLS, 0600);
	if (rc != 0) {
		rc = mx_error_set(err, MX_ERR_STORE, "open store %s: %s", dir,
				  mdb_strerror(rc));
		goto fail;
	}
	rc = mx_store_guard_open(st, err);
	if (rc)
		goto fail;
	/* Another process may have grown the map: adopt its size. */
	if (mdb_env_info(st->env, &info) == 0 && info.me_mapsize > st->map_size)
		st->map_size = info.me_mapsize;
	rc = mdb_txn_begin(st->env, NULL, 0, &txn);
	if (rc != 0) {
		rc = mx_store_err(err, rc, "open store");
		goto fail;
	}
	for (int i = 0; i < MX_DB_COUNT; i++) {
		rc = mdb_dbi_open(txn, db_defs[i].name,
				  MDB_CREATE | db_defs[i].flags, &st->dbi[i]);
		if (rc != 0) {
			mdb_txn_abort(txn);
			rc = mx_store_err(err, rc, db_defs[i].name);
			goto fail;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		rc = mx_store_err(err, rc, "open store");
		goto fail;
	}
	rc = check_schema(st, err);
	if (rc)
		goto fail;
	store_find_map(st);
	*store_r = st;
	return MX_OK;
fail:
	mx_store_close(&st);
	return rc;
}

void mx_store_close(struct mx_store **store)
{
	struct mx_store *st;

	if (store == NULL || *store == NULL)
		return;
	st = *store;
	if (st->env)
		mdb_env_close(st->env);
	if (st->daemon_fd >= 0)
		close(st->daemon_fd);
	mx_secrets_close(&st->secrets);
	pthread_mutex_destroy(&st->trim_mu);
	pthread_mutex_destroy(&st->secrets_mu);
	free(st->dir);
	free(st);
	*store = NULL;
}

const char *mx_store_dir(const struct mx_store *store)
{
	return store->dir;
}

int mx_txn_begin(struct mx_store *st, bool write, struct mx_txn *t,
		 struct mx_error *err)
{
	int rc;

	t->st = st;
	t->write = write;
	t->txn = NULL;
	if (write && (rc = mx_store_check_lock(st, err)) != MX_OK)
		return rc;
	rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
	if (rc == MDB_MAP_RESIZED) {
		/* Another process grew the map; adopt the new size. */
		mdb_env_set_mapsize(st->env, 0);
		rc = mdb_txn_begin(st->env, NULL, write ? 0 : MDB_RDONLY,
				   &t->txn);
		if (rc == 0) {
			MDB_envinfo info;

			if (mdb_env_info(st->env, &info) == 0)
				st->map_size = info.me_mapsize;
			pthread_mutex_lock(&st->trim_mu);
			store_find_map(st);
			pthread_mutex_unlock(&st->trim_mu);
		}
	}
	if (rc != 0)
		return mx_store_err(err, rc, "begin transaction");
	return MX_OK;
}

/*
 * LMDB does not write pages freed again in the transaction that
 * allocated them, so after a commit data.mdb may end before the last page
 * the meta counts.  Nothing reads those pages, but the open's truncation
 * check could not tell that file from a truncated one: extend it to the
 * last page.  fallocate() never shrinks the file nor touches data a
 * concurrent writer has put there (ftruncate() could do both).
 */
static void store_cover_last_page(struct mx_store *st)
{
	MDB_envinfo info;
	MDB_stat stat;
	struct stat sb;
	off_t need;
	int fd;

	if (mdb_env_info(st->env, &info) != 0 ||
	    mdb_env_stat(st->env, &stat) != 0 ||
	    mdb_env_get_fd(st->env, &fd) != 0 || fstat(fd, &sb) != 0)
		return;
	need = (off_t)(info.me_last_pgno + 1) * stat.ms_psize;
	if (sb.st_size < need && fallocate(fd, 0, sb.st_size,
					   need - sb.st_size) != 0)
		mx_debug("store: cannot extend data.mdb to its last page: %s",
			 strerror(errno));
}

int mx_txn_commit(struct mx_txn *t, struct mx_error *err)
{
	struct statvfs vfs;
	int rc;

	/* The lock file may have been replaced while this transaction ran:
	 * then others may be writing beside us, so do not commit. */
	if (t->write && (rc = mx_store_check_lock(t->st, err)) != MX_OK) {
		mx_txn_abort(t);
		return rc;
	}
	rc = mdb_txn_commit(t->txn);
	t->txn = NULL;
	if (rc == 0) {
		if (t->write)
			store_cover_last_page(t->st);
		return MX_OK;
	}
	/* LMDB reports a short write on a full file system as EIO: say
	 * what it is, so the operator frees space instead of suspecting the
	 * disk.  The transaction was aborted whole either way. */
	if ((rc == EIO || rc == ENOSPC) && statvfs(t->st->dir, &vfs) == 0 &&
	    (uint64_t)vfs.f_bavail * vfs.f_frsize < ((uint64_t)64 << 20))
		return mx_error_set(err, MX_ERR_IO,
				    "commit: no space left on device (%llu KiB "
				    "free in %s); nothing of this batch was "
				    "written",
				    (unsigned long long)((uint64_t)vfs.f_bavail *
							 vfs.f_frsize >> 10),
				    t->st->dir);
	return mx_store_err(err, rc, "commit");
}

void mx_txn_abort(struct mx_txn *t)
{
	if (t->txn)
		mdb_txn_abort(t->txn);
	t->txn = NULL;
}

static int store_grow(struct mx_store *st, struct mx_error *err)
{
	size_t n = st->map_size * 2;
	int rc;

	if (st->map_size >= st->map_max)
		return mx_error_set(err, MX_ERR_STORE_FULL,
				    "store is full: map size %zu MiB reached "
				    "its limit (%zu MiB)",
				    st->map_size >> 20, st->map_max >> 20);
	if (n > st->map_max)
		n = st->map_max;
	rc = mdb_env_set_mapsize(st->env, n);
	if (rc != 0)
		return mx_store_err(err, rc, "grow store map");
	mx_debug("store map grown from %zu to %zu MiB", st->map_size >> 20,
		 n >> 20);
	st->map_size = n;
	pthread_mutex_lock(&st->trim_mu);
	store_find_map(st);
	pthread_mutex_unlock(&st->trim_mu);
	return MX_OK;
}

/*
 * Finds where LMDB mapped data.mdb (mdb_env_info() only reports the
 * address for MDB_FIXEDMAP) by matching the file's device and inode in
 * /proc/self/maps.  Linux only; elsewhere trimming is simply off.
 */
static void store_find_map(struct mx_store *st)
{
	struct stat sb;
	char line[4096];
	FILE *fp;
	int fd;

	st->map_addr = NULL;
	st->map_len = 0;
	if (mdb_env_get_fd(st->env, &fd) != 0 || fstat(fd, &sb) != 0)
		return;
	fp = fopen("/proc/self/maps", "re");
	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp)) {
		unsigned long lo, hi, ino;
		unsigned int maj, min;

		if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu", &lo, &hi, &maj,
			   &min, &ino) != 5)
			continue;
		if (ino == (unsigned long)sb.st_ino &&
		    makedev(maj, min) == sb.st_dev && hi - lo > st->map_len) {
			st->map_addr = (void *)(uintptr_t)lo;
			st->map_len = hi - lo;
		}
	}
	fclose(fp);
}

/*
 * Drops our page-table mappings of the LMDB file.  LMDB reads through its
 * map and every read fault maps a whole fault-around window of the file,
 * mostly neighbouring blob pages, so without this the resident size of a
 * long sync grows with the store although those pages are clean page
 * cache.  The map is read-only and shared (no MDB_WRITEMAP), so nothing is
 * lost: the next access faults the page back in from the page cache.
 */
static void store_trim(struct mx_store *st)
{
	/* Looked up again each time: the map moves when this or another
	 * process grows it, and MADV_DONTNEED on anything but our read-only
	 * file mapping would destroy data. */
	MDB_envinfo info;
	MDB_stat stat;
	size_t len;

	store_find_map(st);
	if (st->map_addr == NULL || st->map_len == 0)
		return;
	/* Only the part of the map the data file uses: the map itself is
	 * mostly empty address space (64 GiB by default). */
	len = st->map_len;
	if (mdb_env_info(st->env, &info) == 0 &&
	    mdb_env_stat(st->env, &stat) == 0 &&
	    (size_t)(info.me_last_pgno + 1) * stat.ms_psize < len)
		len = (size_t)(info.me_last_pgno + 1) * stat.ms_psize;
	madvise(st->map_addr, len, MADV_DONTNEED);
}

int mx_store_write(struct mx_store *st, mx_store_write_fn *fn, void *ctx,
		   struct mx_error *err)
{
	struct mx_txn t;
	int rc;

	for (;;) {
		rc = mx_txn_begin(st, true, &t, err);
		if (rc)
			return rc;
		rc = fn(&t, ctx, err);
		if (rc == MX_OK)
			rc = mx_txn_commit(&t, err);
		else
			mx_txn_abort(&t);
		if (rc == MX_OK) {
			pthread_mutex_lock(&st->trim_mu);
			store_trim(st);
			pthread_mutex_unlock(&st->trim_mu);
		}
		/* Only a full map is retried; a full disk (ENOSPC) is
		 * MX_ERR_IO and growing the map would not help. */
		if (rc != MX_ERR_STORE_FULL)
			return rc;
		rc = store_grow(st, err);
		if (rc)
			return rc;
	}
}

int mx_db_get(struct mx_txn *t, enum mx_dbi db, const void *k, size_t klen,
	      MDB_val *v, struct mx_error *err)
{
	MDB_val key = {klen, (void *)(uintptr_t)k};
	int rc = mdb_get(t->txn, t->st->dbi[db], &key, v);

	if (rc == MDB_NOTFOUND)
		return MX_ERR_NOTFOUND; /* expected: no detail */
	if (rc != 0)
		return mx_store_err(err, rc, db_defs[db].name);
	return MX_OK;
}

int mx_db_put(struct mx_txn *t, enum mx_dbi db, const void *k, size_t klen,
	      const void *v, size_t vlen, unsigned flags, struct mx_error *err)
{
	MDB_val key = {klen, (void *)(uintptr_t)k};
	MDB_val val = {vlen, (void *)(uintptr_t)v};
	int rc = mdb_put(t->txn, t->st->dbi[db], &key, &val, flags);

	if (rc == MDB_KEYEXIST)
		return MX_ERR_EXISTS;
	if (rc != 0)
		return mx_store_err(err, rc, db_defs[db].name);
	return MX_OK;
}

int mx_db_del(struct mx_txn *t, enum mx_dbi db, const void *k, size_t klen,
	      const void *v, size_t vlen, struct mx_error *err)
{
	MDB_val key = {klen, (void *)(uintptr_t)k};
	MDB_val val = {vlen, (void *)(uintptr_t)v};
	int rc = mdb_del(t->txn, t->st->dbi[db], &key, v ? &val : NULL);

	if (rc == MDB_NOTFOUND)
		return MX_ERR_NOTFOUND;
	if (rc != 0)
		return mx_store_err(err, rc, db_defs[db].name);
	return MX_OK;
}

int mx_db_next_id(struct mx_txn *t, const char *name, uint64_t *id_r,
		  struct mx_error *err)
{
	MDB_val v;
	uint64_t id = 1;
	uint8_t be[8];
	int rc;

	rc = mx_db_get(t, MX_DB_META, name, strlen(name), &v, err);
	if (rc == MX_OK && v.mv_size == 8)
		id = mx_get_be64(v.mv_data);
	else if (rc == MX_OK)
		return mx_error_set(err, MX_ERR_STORE, "corrupt counter %s",
				    name);
	else if (rc != MX_ERR_NOTFOUND)
		return rc;
	mx_put_be64(be, id + 1);
	rc = mx_db_put(t, MX_DB_META, name, strlen(name), be, 8, 0, err);
	if (rc)
		return rc;
	*id_r = id;
	return MX_OK;
}

/*
 * Builds "u32 prefix + string" keys.  Strings that would exceed LMDB's key
 * limit are replaced by "#" + their SHA-256 so lookups stay exact.
 */
static size_t str_key(uint8_t *buf, uint32_t prefix, const char *s)
{
	size_t n = strlen(s);

	mx_put_be32(buf, prefix);
	if (n + 4 <= MX_KEY_MAX) {
		memcpy(buf + 4, s, n);
		return 4 + n;
	}
	buf[4] = '#';
	mx_sha256(s, n, buf + 5);
	return 4 + 1 + 32;
}

/*
 * Cursor walks.  A walk visits DB from where FIRST puts the cursor (at
 * START for MDB_SET_KEY / MDB_SET_RANGE; MDB_PREV: just before START, or
 * at the last entry when START is empty or nothing is at or after it),
 * stepping with NEXT, and ends at the first key that does not begin with
 * the NPRE bytes of PRE.  (A key shorter than NPRE that starts like PRE
 * sorts before every key that has the prefix: outside the range too.)
 *
 * Each entry goes to FN, which returns MX_OK to go on, MX_WALK_STOP or
 * MX_WALK_DELETE (as for mx_store_walk), or an error to stop the walk with
 * it (MX_ERR_STORE prefixed "WHAT: ").  A failing LMDB call
 * is an error "WHAT: ..." too, never an early end: only MDB_NOTFOUND ends
 * a walk normally, so callers never take a short list for a complete one.
 */
struct walk {
	enum mx_dbi db;
	MDB_val start;
	MDB_cursor_op first, next;
	const void *pre;
	size_t npre;
	const char *what; /* for errors, e.g. "locations of folder #5" */
};

typedef int walk_fn(struct mx_txn *t, const struct walk *w, const MDB_val *k,
		    const MDB_val *d, void *ctx, struct mx_error *err);

static int walk(struct mx_txn *t, const struct walk *w, walk_fn *fn,
		void *ctx, struct mx_error *err)
{
	MDB_val k = w->start, d;
	MDB_cursor *c;
	int rc = MX_OK, mrc;

	mrc = mdb_cursor_open(t->txn, t->st->dbi[w->db], &c);
	if (mrc)
		return mx_store_err(err, mrc, w->what);
	if (w->first == MDB_PREV) {
		mrc = k.mv_size ? mdb_cursor_get(c, &k, &d, MDB_SET_RANGE)
				: MDB_NOTFOUND;
		if (mrc == 0)
			mrc = mdb_cursor_get(c, &k, &d, MDB_PREV);
		else if (mrc == MDB_NOTFOUND)
			mrc = mdb_cursor_get(c, &k, &d, MDB_LAST);
	} else {
		mrc = mdb_cursor_get(c, &k, &d, w->first);
	}
	for (; mrc == 0; mrc = mdb_cursor_get(c, &k, &d, w->next)) {
		if (w->npre && (k.mv_size < w->npre ||
				memcmp(k.mv_data, w->pre, w->npre) != 0)) {
			mrc = MDB_NOTFOUND;
			break;
		}
		rc = fn(t, w, &k, &d, ctx, err);
		if (rc == MX_WALK_DELETE) {
			/* The cursor now sits on the entry that followed, and
			 * the next step moves from there. */
			rc = MX_OK;
			mrc = mdb_cursor_del(c, 0);
			if (mrc)
				break;
			continue;
		}
		if (rc == MX_WALK_STOP) {
			rc = MX_OK;
			mrc = MDB_NOTFOUND;
			break;
		}
		if (rc == MX_ERR_STORE) /* a fault of the store: say where */
			mx_error_prefix(err, "%s", w->what);
		if (rc)
			break;
	}
	mdb_cursor_close(c);
	if (rc == MX_OK && mrc != MDB_NOTFOUND)
		rc = mx_store_err(err, mrc, w->what);
	return rc;
}

/* mx_store_walk's callback under walk(): its errors go back as the
 * caller made them, without walk()'s "WHAT: " prefix. */
struct pub_walk {
	mx_store_walk_fn *fn;
	void *ctx;
	int rc;
};

static int pub_walk_fn(struct mx_txn *t, const struct walk *w,
		       const MDB_val *k, const MDB_val *d, void *ctx,
		       struct mx_error *err)
{
	struct pub_walk *p = ctx;
	int rc = p->fn(t, k, d, p->ctx, err);

	(void)w;
	if (rc > 0) {
		p->rc = rc;
		return MX_WALK_STOP;
	}
	return rc;
}

int mx_store_walk(struct mx_txn *t, enum mx_dbi db, const void *pre,
		  size_t npre, const void *start, size_t nstart, unsigned flags,
		  const char *what, mx_store_walk_fn *fn, void *ctx,
		  struct mx_error *err)
{
	struct walk w = {db, {nstart, (void *)(uintptr_t)start}, MDB_SET_RANGE,
			 MDB_NEXT, pre, npre, what};
	struct pub_walk p = {fn, ctx, MX_OK};
	uint8_t after[MX_KEY_MAX];
	int rc;

	if (flags & MX_WALK_REVERSE) {
		w.first = w.next = MDB_PREV;
		if (nstart == 0) {
			/* The range ends before the smallest key above every
			 * key with the prefix: PRE without its trailing 0xff
			 * bytes, last byte plus one.  None (no prefix, or all
			 * 0xff): walk() starts at the last entry. */
			size_t n = npre;

			while (n > 0 && ((const uint8_t *)pre)[n - 1] == 0xff)
				n--;
			if (n > sizeof(after))
				return mx_error_set(err, MX_ERR_INVAL, "%s: "
						    "key prefix of %zu bytes "
						    "is too long", what, npre);
			if (n) {
				memcpy(after, pre, n);
				after[n - 1]++;
			}
			w.start.mv_size = n;
			w.start.mv_data = after;
		}
	} else if (nstart == 0) {
		w.start.mv_size = npre;
		w.start.mv_data = (void *)(uintptr_t)pre;
		if (npre == 0)
			w.first = MDB_FIRST;
	}
	rc = walk(t, &w, pub_walk_fn, &p, err);
	return rc ? rc : p.rc;
}

/* The error for an entry of the walk's range that has the wrong shape. */
static int walk_corrupt(const struct walk *w, const MDB_val *k,
			struct mx_error *err)
{
	char hex[2 * 24 + 1];
	size_t n = k->mv_size < 24 ? k->mv_size : 24;

	mx_hex(k->mv_data, n, hex);
	return mx_error_set(err, MX_ERR_STORE, "corrupt %s entry (key %s%s, "
			    "%zu bytes)", db_defs[w->db].name, hex,
			    n < k->mv_size ? "..." : "", k->mv_size);
}

/* Array V of capacity *CAP with room for element N of SIZE bytes:
 * reallocated when full, NULL (V untouched) when out of memory. */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	size_t nc = *cap ? *cap * 2 : 16;

	if (n < *cap)
		return v;
	v = realloc(v, nc * size);
	if (v)
		*cap = nc;
	return v;
}

/* ---- accounts ---- */

/* The fields sealed at rest; their JSON keys are the names here. */
static const char *const secret_names[] = {
	"password", "refresh_token", "access_token", "client_secret",
	"smtp_password", "relay_password",
};

static char **secret_field(struct mx_account *a, size_t i)
{
	char **f[] = {&a->password, &a->refresh_token, &a->access_token,
		      &a->client_secret, &a->smtp.password,
		      &a->relay.password};

	return f[i];
}

/* $MXSYNC_KEY_FILE, else NULL (mx_secrets_open: DIR/secret.key). */
static const char *key_file_env(void)
{
	const char *f = getenv("MXSYNC_KEY_FILE");

	return f && *f ? f : NULL;
}

/* Where the key comes from, for error messages. */
static void key_file_path(const struct mx_store *st, char *buf, size_t n)
{
	const char *f = key_file_env();

	if (f)
		snprintf(buf, n, "%s", f);
	else
		snprintf(buf, n, "%s/secret.key", st->dir);
}

/*
 * The store's secrets, opened on first use.  CREATE false (reading sealed
 * values): a missing key file is an error instead of a new key, which
 * could never open them and would be mistaken for the lost one.
 */
static int store_secrets(struct mx_store *st, bool create, const char *acct,
			 struct mx_secrets **s_r, struct mx_error *err)
{
	const char *env = mx_secrets_env_key();
	char path[4096];
	struct stat sb;
	int rc = MX_OK;

	pthread_mutex_lock(&st->secrets_mu);
	if (st->secrets == NULL) {
		key_file_path(st, path, sizeof(path));
		if (!create && !(env && *env) && stat(path, &sb) != 0 &&
		    errno == ENOENT)
			rc = mx_error_set(err, MX_ERR_CONFIG,
					  "cannot decrypt account %s's secrets: "
					  "key file %s is missing and MXSYNC_KEY "
					  "is not set (restore the key file or "
					  "set MXSYNC_KEY)", acct, path);
		else
			rc = mx_secrets_open(st->dir, key_file_env(),
					     &st->secrets, err);
	}
	*s_r = st->secrets;
	pthread_mutex_unlock(&st->secrets_mu);
	return rc;
}

/*
 * True if S has the shape of a sealed value: "v1:" and at least nonce +
 * tag in padded base64.  A clear-text password from before sealing that
 * merely starts with "v1:" fails this without the key being needed.
 */
static bool sealed_shape(const char *s)
{
	size_t n, pad = 0;

	if (!mx_secret_is_sealed(s))
		return false;
	s += 3;
	n = strlen(s);
	if (n < 40 || n % 4 != 0) /* 28 bytes take 40 characters */
		return false;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < n - pad; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '/'))
			return false;
	return true;
}

int mx_store_seal(struct mx_store *st, const char *what, const char *aad,
		  const char *plain, char **sealed_r, struct mx_error *err)
{
	struct mx_secrets *s = NULL;
	int rc;

	*sealed_r = NULL;
	rc = store_secrets(st, true, what, &s, err);
	return rc ? rc : mx_secret_seal(s, aad, plain, strlen(plain), sealed_r,
					err);
}

int mx_store_unseal(struct mx_store *st, const char *what, const char *aad,
		    const char *sealed, char **plain_r, struct mx_error *err)
{
	struct mx_secrets *s = NULL;
	int rc;

	*plain_r = NULL;
	if (!sealed_shape(sealed))
		return mx_error_set(err, MX_ERR_STORE, "%s: the stored secret "
				    "is not a sealed value", what);
	rc = store_secrets(st, false, what, &s, err);
	return rc ? rc : mx_secret_unseal(s, aad, sealed, plain_r, NULL, err);
}

static void secret_aad(char *buf, size_t n, uint32_t id, size_t i)
{
	snprintf(buf, n, "account:%u:%s", id, secret_names[i]);
}

/* Encodes A with its secrets sealed. */
static int account_encode_sealed(struct mx_txn *t, struct mx_account *a,
				 char **json_r, size_t *len_r,
				 struct mx_error *err)
{
	struct mx_account c = *a; /* shallow: only the secret slots change */
	char *sealed[MX_ARRAY_SIZE(secret_names)] = {NULL};
	struct mx_secrets *s = NULL;
	int rc = MX_OK;

	*json_r = NULL;
	for (size_t i = 0; i < MX_ARRAY_SIZE(secret_names); i++) {
		char **f = secret_field(&c, i), aad[64];

		if (*f == NULL)
			continue;
		if (!mx_utf8_valid_str(*f)) {
			rc = mx_error_set(err, MX_ERR_INVAL, "account fields "
					  "must be valid UTF-8");
			goto out;
		}
		if (s == NULL) {
			rc = store_secrets(t->st, true, a->name, &s, err);
			if (rc)
				goto out;
		}
		secret_aad(aad, sizeof(aad), a->id, i);
		rc = mx_secret_seal(s, aad, *f, strlen(*f), &sealed[i], err);
		if (rc)
			goto out;
		*f = sealed[i];
	}
	*json_r = mx_account_encode(&c, len_r);
	if (*json_r == NULL)
		rc = mx_error_set(err, MX_ERR_INVAL,
				  "account fields must be valid UTF-8");
out:
	for (size_t i = 0; i < MX_ARRAY_SIZE(sealed); i++)
		free(sealed[i]);
	return rc;
}

/*
 * Replaces A's sealed secrets by their clear text.  A value that is not
 * sealed is a record from before sealing: kept as it is (clear text).  On
 * error A is freed: no half-opened account leaves.
 */
static int account_unseal(struct mx_txn *t, struct mx_account *a,
			  struct mx_error *err)
{
	struct mx_secrets *s = NULL;
	const char *name = a->name ? a->name : "?";
	int rc = MX_OK;

	for (size_t i = 0; i < MX_ARRAY_SIZE(secret_names); i++) {
		char **f = secret_field(a, i), aad[64], *plain = NULL;

		if (!sealed_shape(*f))
			continue;
		if (s == NULL) {
			rc = store_secrets(t->st, false, name, &s, err);
			if (rc)
				break;
		}
		secret_aad(aad, sizeof(aad), a->id, i);
		rc = mx_secret_unseal(s, aad, *f, &plain, NULL, err);
		if (rc == MX_ERR_PARSE) {
			/* "v1:" + something that is no sealed value: a
			 * clear-text password from before sealing. */
			rc = MX_OK;
			continue;
		}
		if (rc == MX_ERR_CONFIG) {
			char path[4096];

			key_file_path(t->st, path, sizeof(path));
			rc = mx_error_set(err, MX_ERR_CONFIG,
					  "cannot decrypt account %s's secrets: "
					  "wrong key (MXSYNC_KEY / %s)", name,
					  path);
		}
		if (rc)
			break;
		free(*f);
		*f = plain;
	}
	if (rc) {
		mx_error_scope(err, MX_SCOPE_ACCOUNT);
		mx_account_free(a);
	}
	return rc;
}

int mx_store_account_put(struct mx_txn *t, struct mx_account *a,
			 struct mx_error *err)
{
	uint8_t k[4], idbe[4];
	char *json;
	size_t len;
	int rc;

	if (a->id == 0) {
		uint64_t id;
		MDB_val v;

		rc = mx_db_get(t, MX_DB_ACCOUNT_NAMES, a->name,
			       strlen(a->name), &v, err);
		if (rc == MX_OK)
			return mx_error_set(err, MX_ERR_EXISTS,
					    "account '%s' already exists",
					    a->name);
		if (rc != MX_ERR_NOTFOUND)
			return rc;
		rc = mx_db_next_id(t, "next_account", &id, err);
		if (rc)
			return rc;
		a->id = (uint32_t)id;
	}
	mx_put_be32(k, a->id);
	rc = account_encode_sealed(t, a, &json, &len, err);
	if (rc)
		return rc;
	rc = mx_db_put(t, MX_DB_ACCOUNTS, k, 4, json, len, 0, err);
	free(json);
	if (rc)
		return rc;
	mx_put_be32(idbe, a->id);
	return mx_db_put(t, MX_DB_ACCOUNT_NAMES, a->name, strlen(a->name),
			 idbe, 4, 0, err);
}

static int account_get_id(struct mx_txn *t, uint32_t id, struct mx_account *a,
			  struct mx_error *err)
{
	uint8_t k[4];
	MDB_val v;
	int rc;

	mx_put_be32(k, id);
	rc = mx_db_get(t, MX_DB_ACCOUNTS, k, 4, &v, err);
	if (rc == MX_ERR_NOTFOUND)
		return mx_error_set(err, rc, "account #%u not found", id);
	if (rc)
		return rc;
	rc = mx_account_decode(v.mv_data, v.mv_size, a, err);
	if (rc)
		return rc;
	return account_unseal(t, a, err);
}

int mx_store_account_get(struct mx_txn *t, const char *name,
			 struct mx_account *a, struct mx_error *err)
{
	MDB_val v;
	int rc;

	rc = mx_db_get(t, MX_DB_ACCOUNT_NAMES, name, strlen(name), &v, err);
	if (rc == MX_ERR_NOTFOUND)
		return mx_error_set(err, rc, "no account named '%s'", name);
	if (rc)
		return rc;
	if (v.mv_size != 4)
		return mx_error_set(err, MX_ERR_STORE, "corrupt account index");
	return account_get_id(t, mx_get_be32(v.mv_data), a, err);
}

struct account_list {
	struct mx_account *v;
	size_t n, cap;
};

static int add_account(struct mx_txn *t, const struct walk *w,
		       const MDB_val *k, const MDB_val *d, void *ctx,
		       struct mx_error *err)
{
	struct account_list *l = ctx;
	struct mx_account *nv = grow(l->v, &l->cap, l->n, sizeof(*l->v));
	int rc;

	(void)w;
	(void)k;
	if (nv == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	l->v = nv;
	if (mx_account_decode(d->mv_data, d->mv_size, &l->v[l->n], err))
		return MX_OK;
	/* An account whose secrets do not open fails the whole list:
	 * skipping it would look like a removed account. */
	rc = account_unseal(t, &l->v[l->n], err);
	if (rc == MX_OK)
		l->n++;
	return rc;
}

int mx_store_account_list(struct mx_txn *t, struct mx_account **v_r,
			  size_t *n_r, struct mx_error *err)
{
	struct account_list l = {NULL, 0, 0};
	struct walk w = {MX_DB_ACCOUNTS, {0, NULL}, MDB_FIRST, MDB_NEXT, NULL, 0,
			 "accounts"};
	int rc = walk(t, &w, add_account, &l, err);

	if (rc) {
		for (size_t i = 0; i < l.n; i++)
			mx_account_free(&l.v[i]);
		free(l.v);
		return rc;
	}
	*v_r = l.v;
	*n_r = l.n;
	return MX_OK;
}

/* ---- folders ---- */

int mx_store_folder_put(struct mx_txn *t, struct mx_folder *f,
			struct mx_error *err)
{
	uint8_t k[4], nk[MX_KEY_MAX + 8], idbe[4];
	size_t nklen, len;
	char *json;
	int rc;

	if (f->id == 0) {
		uint64_t id;

		rc = mx_db_next_id(t, "next_folder", &id, err);
		if (rc)
			return rc;
		f->id = (uint32_t)id;
	}
	mx_put_be32(k, f->id);
	json = mx_folder_encode(f, &len);
	if (json == NULL)
		return mx_error_set(err, MX_ERR_INVAL,
				    "folder name must be valid UTF-8");
	rc = mx_db_put(t, MX_DB_FOLDERS, k, 4, json, len, 0, err);
	free(json);
	if (rc)
		return rc;
	nklen = str_key(nk, f->account_id, f->name);
	mx_put_be32(idbe, f->id);
	return mx_db_put(t, MX_DB_FOLDER_NAMES, nk, nklen, idbe, 4, 0, err);
}

int mx_store_folder_get(struct mx_txn *t, uint32_t id, struct mx_folder *f,
			struct mx_error *err)
{
	uint8_t k[4];
	MDB_val v;
	int rc;

	mx_put_be32(k, id);
	rc = mx_db_get(t, MX_DB_FOLDERS, k, 4, &v, err);
	if (rc == MX_ERR_NOTFOUND)
		return mx_error_set(err, rc, "folder #%u not found", id);
	if (rc)
		return rc;
	return mx_folder_decode(v.mv_data, v.mv_size, f, err);
}

int mx_store_folder_find(struct mx_txn *t, uint32_t account_id,
			 const char *name, struct mx_folder *f,
			 struct mx_error *err)
{
	uint8_t nk[MX_KEY_MAX + 8];
	size_t nklen = str_key(nk, account_id, name);
	MDB_val v;
	int rc;

	rc = mx_db_get(t, MX_DB_FOLDER_NAMES, nk, nklen, &v, err);
	if (rc == MX_ERR_NOTFOUND)
		return mx_error_set(err, rc, "no folder '%s'", name);
	if (rc)
		return rc;
	if (v.mv_size != 4)
		return mx_error_set(err, MX_ERR_STORE, "corrupt folder index");
	return mx_store_folder_get(t, mx_get_be32(v.mv_data), f, err);
}

struct folder_list {
	struct mx_folder *v;
	size_t n, cap;
};

static int add_folder(struct mx_txn *t, const struct walk *w,
		      const MDB_val *k, const MDB_val *d, void *ctx,
		      struct mx_error *err)
{
	struct folder_list *l = ctx;
	struct mx_folder *nv;
	int rc;

	if (d->mv_size != 4)
		return walk_corrupt(w, k, err);
	nv = grow(l->v, &l->cap, l->n, sizeof(*l->v));
	if (nv == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	l->v = nv;
	rc = mx_store_folder_get(t, mx_get_be32(d->mv_data), &l->v[l->n], err);
	if (rc == MX_OK)
		l->n++;
	return rc;
}

int mx_store_folder_list(struct mx_txn *t, uint32_t account_id,
			 struct mx_folder **v_r, size_t *n_r,
			 struct mx_error *err)
{
	struct folder_list l = {NULL, 0, 0};
	char what[64];
	uint8_t pre[4];
	struct walk w = {MX_DB_FOLDER_NAMES, {4, pre}, MDB_SET_RANGE, MDB_NEXT,
			 pre, 4, what};
	int rc;

	mx_put_be32(pre, account_id);
	snprintf(what, sizeof(what), "folders of account #%u", account_id);
	*v_r = NULL;
	*n_r = 0;
	rc = walk(t, &w, add_folder, &l, err);
	if (rc) {
		mx_folders_free(l.v, l.n);
		return rc;
	}
	*v_r = l.v;
	*n_r = l.n;
	return MX_OK;
}

/* ---- locations ---- */

static void loc_key(uint8_t k[8], uint32_t folder_id, uint32_t uid)
{
	mx_put_be32(k, folder_id);
	mx_put_be32(k + 4, uid);
}

int mx_store_loc_get(struct mx_txn *t, uint32_t folder_id, uint32_t uid,
		     struct mx_loc *l, struct mx_error *err)
{
	uint8_t k[8];
	MDB_val v;
	int rc;

	loc_key(k, folder_id, uid);
	rc = mx_db_get(t, MX_DB_LOCS, k, 8, &v, err);
	if (rc)
		return rc;
	if (mx_loc_decode(v.mv_data, v.mv_size, l) < 0)
		return mx_error_set(err, MX_ERR_STORE, "corrupt location");
	l->folder_id = folder_id;
	l->uid = uid;
	return MX_OK;
}

int mx_store_loc_put(struct mx_txn *t, const struct mx_loc *l,
		     struct mx_error *err)
{
	uint8_t k[8], mk[16], buf[1024];
	size_t n;
	int rc;

	/* Replacing a location that pointed at another message: drop that
	 * message's reverse entry, or it would still list this UID. */
	{
		struct mx_loc old;

		if (mx_store_loc_get(t, l->folder_id, l->uid, &old, NULL) == MX_OK) {
			free(old.keywords);
			if (old.msg_id != l->msg_id) {
				loc_key(k, l->folder_id, l->uid);
				mx_put_be64(mk, old.msg_id);
				memcpy(mk + 8, k, 8);
				rc = mx_db_del(t, MX_DB_MSGLOCS, mk, 16, NULL, 0, err);
				if (rc && rc != MX_ERR_NOTFOUND)
					return rc;
			}
		}
	}
	n = mx_loc_encode(l, buf, sizeof(buf));
	if (n == 0) {
		/* Absurd keyword lists are dropped rather than failing. */
		struct mx_loc c = *l;

		c.keywords = NULL;
		n = mx_loc_encode(&c, buf, sizeof(buf));
	}
	loc_key(k, l->folder_id, l->uid);
	rc = mx_db_put(t, MX_DB_LOCS, k, 8, buf, n, 0, err);
	if (rc)
		return rc;
	mx_put_be64(mk, l->msg_id);
	memcpy(mk + 8, k, 8);
	return mx_db_put(t, MX_DB_MSGLOCS, mk, 16, "", 0, 0, err);
}

int mx_store_loc_del(struct mx_txn *t, uint32_t folder_id, uint32_t uid,
		     struct mx_error *err)
{
	struct mx_loc l;
	uint8_t k[8], mk[16];
	int rc;

	rc = mx_store_loc_get(t, folder_id, uid, &l, err);
	if (rc)
		return rc;
	free(l.keywords);
	loc_key(k, folder_id, uid);
	rc = mx_db_del(t, MX_DB_LOCS, k, 8, NULL, 0, err);
	if (rc)
		return rc;
	mx_put_be64(mk, l.msg_id);
	memcpy(mk + 8, k, 8);
	rc = mx_db_del(t, MX_DB_MSGLOCS, mk, 16, NULL, 0, err);
	return rc == MX_ERR_NOTFOUND ? MX_OK : rc;
}

struct loc_list {
	struct mx_loc *v;
	size_t n, cap;
	uint64_t msg_id; /* mx_store_msg_locs: whose */
};

/* Appends L (its keywords move into the list, or are freed on error). */
static int loc_append(struct loc_list *ll, struct mx_loc *l,
		      struct mx_error *err)
{
	struct mx_loc *nv = grow(ll->v, &ll->cap, ll->n, sizeof(*ll->v));

	if (nv == NULL) {
		free(l->keywords);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	ll->v = nv;
	ll->v[ll->n++] = *l;
	return MX_OK;
}

static int add_folder_loc(struct mx_txn *t, const struct walk *w,
			  const MDB_val *k, const MDB_val *d, void *ctx,
			  struct mx_error *err)
{
	struct mx_loc l;

	(void)t;
	if (k->mv_size != 8 || mx_loc_decode(d->mv_data, d->mv_size, &l) < 0)
		return walk_corrupt(w, k, err);
	l.folder_id = mx_get_be32(k->mv_data);
	l.uid = mx_get_be32((const uint8_t *)k->mv_data + 4);
	return loc_append(ctx, &l, err);
}

static int add_msg_loc(struct mx_txn *t, const struct walk *w,
		       const MDB_val *k, const MDB_val *d, void *ctx,
		       struct mx_error *err)
{
	struct loc_list *ll = ctx;
	const uint8_t *kp = k->mv_data;
	struct mx_loc l;
	int rc;

	(void)d;
	if (k->mv_size != 16)
		return walk_corrupt(w, k, err);
	rc = mx_store_loc_get(t, mx_get_be32(kp + 8), mx_get_be32(kp + 12), &l,
			      err);
	/* A reverse entry left behind by a store from before loc_put()
	 * dropped them: the location is gone or holds another message. */
	if (rc == MX_ERR_NOTFOUND)
		return MX_OK;
	if (rc)
		return rc;
	if (l.msg_id != ll->msg_id) {
		free(l.keywords);
		return MX_OK;
	}
	return loc_append(ll, &l, err);
}

/* Runs W with FN into a new list for *V_R / *N_R (NULL / 0 on error). */
static int collect_locs(struct mx_txn *t, const struct walk *w, walk_fn *fn,
			uint64_t msg_id, struct mx_loc **v_r, size_t *n_r,
			struct mx_error *err)
{
	struct loc_list l = {NULL, 0, 0, msg_id};
	int rc;

	*v_r = NULL;
	*n_r = 0;
	rc = walk(t, w, fn, &l, err);
	if (rc) {
		mx_locs_free(l.v, l.n);
		return rc;
	}
	*v_r = l.v;
	*n_r = l.n;
	return MX_OK;
}

int mx_store_folder_locs(struct mx_txn *t, uint32_t folder_id,
			 struct mx_loc **v_r, size_t *n_r,
			 struct mx_error *err)
{
	char what[64];
	uint8_t pre[8];
	struct walk w = {MX_DB_LOCS, {8, pre}, MDB_SET_RANGE, MDB_NEXT, pre, 4,
			 what};

	loc_key(pre, folder_id, 0);
	snprintf(what, sizeof(what), "locations of folder #%u", folder_id);
	return collect_locs(t, &w, add_folder_loc, 0, v_r, n_r, err);
}

int mx_store_msg_locs(struct mx_txn *t, uint64_t msg_id, struct mx_loc **v_r,
		      size_t *n_r, struct mx_error *err)
{
	char what[64], s[17];
	uint8_t pre[16];
	struct walk w = {MX_DB_MSGLOCS, {16, pre}, MDB_SET_RANGE, MDB_NEXT,
			 pre, 8, what};

	mx_put_be64(pre, msg_id);
	memset(pre + 8, 0, 8);
	mx_msg_id_str(msg_id, s);
	snprintf(what, sizeof(what), "locations of message %s", s);
	return collect_locs(t, &w, add_msg_loc, msg_id, v_r, n_r, err);
}

/* ---- blobs ---- */

static int blob_ref(struct mx_txn *t, const uint8_t sha[32], const char *raw,
		    size_t len, struct mx_error *err)
{
	void *dst;
	int rc = mx_store_blob_reserve(t, sha, len, &dst, err);

	if (rc == MX_OK && dst != NULL)
		memcpy(dst, raw, len);
	return rc;
}

static int blob_unref(struct mx_txn *t, const uint8_t sha[32],
		      struct mx_error *err)
{
	uint8_t be[4];
	uint32_t refs = 0;
	MDB_val v;
	int rc;

	rc = mx_db_get(t, MX_DB_BLOBREFS, sha, 32, &v, err);
	if (rc == MX_OK && v.mv_size == 4)
		refs = mx_get_be32(v.mv_data);
	else if (rc != MX_OK && rc != MX_ERR_NOTFOUND)
		return rc;
	if (refs <= 1) {
		rc = mx_db_del(t, MX_DB_BLOBS, sha, 32, NULL, 0, err);
		if (rc && rc != MX_ERR_NOTFOUND)
			return rc;
		rc = mx_db_del(t, MX_DB_BLOBREFS, sha, 32, NULL, 0, err);
		return rc == MX_ERR_NOTFOUND ? MX_OK : rc;
	}
	mx_put_be32(be, refs - 1);
	return mx_db_put(t, MX_DB_BLOBREFS, sha, 32, be, 4, 0, err);
}

int mx_store_blob_reserve(struct mx_txn *t, const uint8_t sha[32],
			  size_t len, void **dst_r, struct mx_error *err)
{
	MDB_val key = {32, (void *)(uintptr_t)sha}, val = {len, NULL};
	uint8_t be[4];
	uint32_t refs = 0;
	MDB_val v;
	int rc;

	*dst_r = NULL;
	rc = mx_db_get(t, MX_DB_BLOBREFS, sha, 32, &v, err);
	if (rc == MX_OK && v.mv_size == 4)
		refs = mx_get_be32(v.mv_data);
	else if (rc != MX_OK && rc != MX_ERR_NOTFOUND)
		return rc;
	mx_put_be32(be, refs + 1);
	rc = mx_db_put(t, MX_DB_BLOBREFS, sha, 32, be, 4, 0, err);
	if (rc || refs > 0)
		return rc;
	/* The reservation last: its memory is only valid until the next
	 * update in the transaction, which is the caller's fill. */
	rc = mdb_put(t->txn, t->st->dbi[MX_DB_BLOBS], &key, &val, MDB_RESERVE);
	if (rc != 0)
		return mx_store_err(err, rc, "blobs");
	*dst_r = val.mv_data;
	return MX_OK;
}

int mx_store_blob_ref(struct mx_txn *t, const uint8_t sha[32],
		      struct mx_error *err)
{
	void *dst;
	int rc = mx_store_blob_reserve(t, sha, 0, &dst, err);

	if (rc == MX_OK && dst != NULL)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "no such blob");
	return rc;
}

int mx_store_blob_unref(struct mx_txn *t, const uint8_t sha[32],
			struct mx_error *err)
{
	return blob_unref(t, sha, err);
}

int mx_store_blob_get(struct mx_txn *t, const uint8_t sha[32],
		      const char **data_r, size_t *len_r,
		      struct mx_error *err)
{
	MDB_val v;
	int rc = mx_db_get(t, MX_DB_BLOBS, sha, 32, &v, err);

	if (rc == MX_ERR_NOTFOUND) {
		char hex[65];

		mx_hex(sha, 32, hex);
		return mx_error_set(err, rc, "blob %s missing", hex);
	}
	if (rc)
		return rc;
	*data_r = v.mv_data;
	*len_r = v.mv_size;
	return MX_OK;
}

/* ---- threads ---- */

static int thread_lookup(struct mx_txn *t, uint32_t account, const char *mid,
			 uint64_t *thread_r, struct mx_error *err)
{
	uint8_t k[MX_KEY_MAX + 8];
	size_t kl;
	MDB_val v;
	int rc;

	if (mid == NULL || *mid == '\0')
		return MX_ERR_NOTFOUND;
	kl = str_key(k, account, mid);
	rc = mx_db_get(t, MX_DB_THREADREFS, k, kl, &v, err);
	if (rc == MX_OK && v.mv_size == 8)
		*thread_r = mx_get_be64(v.mv_data);
	return rc;
}

static int thread_register(struct mx_txn *t, uint32_t account,
			   const char *mid, uint64_t thread,
			   struct mx_error *err)
{
	uint8_t k[MX_KEY_MAX + 8], be[8];
	size_t kl;
	int rc;

	if (mid == NULL || *mid == '\0')
		return MX_OK;
	kl = str_key(k, account, mid);
	mx_put_be64(be, thread);
	rc = mx_db_put(t, MX_DB_THREADREFS, k, kl, be, 8, MDB_NOOVERWRITE,
		       err);
	return rc == MX_ERR_EXISTS ? MX_OK : rc;
}

/*
 * Thread assignment (documented in doc/internals/store.md): a message
 * joins the thread of any message it names (its own Message-ID, then
 * In-Reply-To, then References newest first) or that names it; failing
 * that, a reply/forward joins the latest thread with the same normalized
 * subject; otherwise it starts a thread.
 */
static int thread_assign(struct mx_txn *t, struct mx_msg *m,
			 struct mx_error *err)
{
	const struct mx_parsed *p = &m->p;
	uint64_t th = 0;
	char *subj = NULL;
	bool reply = false;
	uint8_t k[MX_KEY_MAX + 8], be[16];
	size_t kl = 0;
	int rc;

	rc = thread_lookup(t, m->account_id, p->message_id, &th, err);
	if (rc == MX_ERR_NOTFOUND)
		rc = thread_lookup(t, m->account_id, p->in_reply_to, &th, err);
	for (size_t i = p->nreferences; rc == MX_ERR_NOTFOUND && i > 0; i--)
		rc = thread_lookup(t, m->account_id, p->references[i - 1], &th,
				   err);
	if (rc != MX_OK && rc != MX_ERR_NOTFOUND)
		return rc;
	if (p->subject) {
		subj = mx_subject_normalize(p->subject, &reply);
		if (subj && *subj)
			kl = str_key(k, m->account_id, subj);
	}
	if (rc == MX_ERR_NOTFOUND && reply && kl) {
		MDB_val v;

		rc = mx_db_get(t, MX_DB_THREADSUBJ, k, kl, &v, err);
		if (rc == MX_OK && v.mv_size == 8)
			th = mx_get_be64(v.mv_data);
		else if (rc != MX_ERR_NOTFOUND)
			goto out;
	}
	if (th == 0) {
		rc = mx_db_next_id(t, "next_thread", &th, err);
		if (rc)
			goto out;
	}
	m->thread_id = th;
	rc = thread_register(t, m->account_id, p->message_id, th, err);
	if (rc == MX_OK)
		rc = thread_register(t, m->account_id, p->in_reply_to, th, err);
	for (size_t i = 0; rc == MX_OK && i < p->nreferences; i++)
		rc = thread_register(t, m->account_id, p->references[i], th,
				     err);
	if (rc)
		goto out;
	mx_put_be64(be, th);
	if (kl) {
		rc = mx_db_put(t, MX_DB_THREADSUBJ, k, kl, be, 8, 0, err);
		if (rc)
			goto out;
	}
	mx_put_be64(be + 8, m->id);
	rc = mx_db_put(t, MX_DB_THREADS, be, 16, "", 0, 0, err);
out:
	free(subj);
	return rc;
}

/* ---- messages ---- */

/*
 * "Newest first" means by the Date: header, which is what users see; the
 * server's INTERNALDATE stands in when there is none.
 */
static void bydate_key(uint8_t k[20], const struct mx_msg *m)
{
	int64_t when = m->p.date >= 0 ? m->p.date : m->internaldate;

	mx_put_be32(k, m->account_id);
	/* Offset so that negative dates still sort before positive ones. */
	mx_put_be64(k + 4, (uint64_t)when ^ (UINT64_C(1) << 63));
	mx_put_be64(k + 12, m->id);
}

int mx_store_msg_add(struct mx_txn *t, struct mx_msg *m, const char *raw,
		     struct mx_error *err)
{
	uint8_t k[MX_KEY_MAX + 8], idbe[8], bk[20];
	size_t kl, len;
	char *json;
	void *sum;
	int rc;

	rc = mx_db_next_id(t, "next_msg", &m->id, err);
	if (rc)
		return rc;
	rc = blob_ref(t, m->sha256, raw, m->size, err);
	if (rc)
		return rc;
	rc = thread_assign(t, m, err);
	if (rc)
		return rc;
	mx_put_be64(idbe, m->id);
	mx_put_be32(k, m->account_id);
	memcpy(k + 4, m->identity, 32);
	rc = mx_db_put(t, MX_DB_IDENTITY, k, 36, idbe, 8, 0, err);
	if (rc)
		return rc;
	if (m->p.message_id && *m->p.message_id) {
		kl = str_key(k, m->account_id, m->p.message_id);
		rc = mx_db_put(t, MX_DB_MSGID, k, kl, idbe, 8, 0, err);
		if (rc)
			return rc;
	}
	bydate_key(bk, m);
	sum = mx_msg_summary_encode(m, &len);
	if (sum == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = mx_db_put(t, MX_DB_BYDATE, bk, 20, sum, len, 0, err);
	free(sum);
	if (rc)
		return rc;
	json = mx_msg_encode(m, &len);
	if (json == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = mx_db_put(t, MX_DB_MESSAGES, idbe, 8, json, len, 0, err);
	free(json);
	return rc;
}

int mx_store_msg_get(struct mx_txn *t, uint64_t id, struct mx_msg *m,
		     struct mx_error *err)
{
	uint8_t k[8];
	MDB_val v;
	int rc;

	mx_put_be64(k, id);
	rc = mx_db_get(t, MX_DB_MESSAGES, k, 8, &v, err);
	if (rc == MX_ERR_NOTFOUND) {
		char s[17];

		mx_msg_id_str(id, s);
		return mx_error_set(err, rc, "no message %s", s);
	}
	if (rc)
		return rc;
	return mx_msg_decode(v.mv_data, v.mv_size, m, err);
}

int mx_store_msg_del(struct mx_txn *t, uint64_t id, struct mx_error *err)
{
	struct mx_msg m;
	uint8_t k[MX_KEY_MAX + 8], idbe[8], tk[16], bk[20];
	size_t kl;
	int rc;

	rc = mx_store_msg_get(t, id, &m, err);
	if (rc)
		return rc;
	mx_put_be64(idbe, id);
	mx_put_be32(k, m.account_id);
	memcpy(k + 4, m.identity, 32);
	rc = mx_db_del(t, MX_DB_IDENTITY, k, 36, idbe, 8, err);
	if (rc == MX_OK || rc == MX_ERR_NOTFOUND) {
		rc = MX_OK;
		if (m.p.message_id && *m.p.message_id) {
			kl = str_key(k, m.account_id, m.p.message_id);
			rc = mx_db_del(t, MX_DB_MSGID, k, kl, idbe, 8, err);
		}
	}
	if (rc == MX_OK || rc == MX_ERR_NOTFOUND) {
		mx_put_be64(tk, m.thread_id);
		mx_put_be64(tk + 8, id);
		rc = mx_db_del(t, MX_DB_THREADS, tk, 16, NULL, 0, err);
	}
	if (rc == MX_OK || rc == MX_ERR_NOTFOUND) {
		bydate_key(bk, &m);
		rc = mx_db_del(t, MX_DB_BYDATE, bk, 20, NULL, 0, err);
	}
	if (rc == MX_OK || rc == MX_ERR_NOTFOUND)
		rc = blob_unref(t, m.sha256, err);
	if (rc == MX_OK)
		rc = mx_db_del(t, MX_DB_MESSAGES, idbe, 8, NULL, 0, err);
	mx_msg_free(&m);
	return rc;
}

/* mx_store_summaries_fill: one batch. */
struct fill_ctx {
	size_t max, done;
	bool more;
	uint8_t pos[20];
};

static int fill_fn(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		   void *vctx, struct mx_error *err)
{
	struct fill_ctx *c = vctx;
	struct mx_error merr;
	struct mx_msg m;
	uint8_t key[20];
	void *sum;
	size_t len;
	int rc;

	if (k->mv_size != 20 || v->mv_size != 0)
		return MX_OK;
	if (c->done == c->max) {
		c->more = true;
		return MX_WALK_STOP;
	}
	memcpy(key, k->mv_data, 20);
	memcpy(c->pos, key, 20);
	/* An unreadable record keeps its empty value: the listing skips
	 * it, as before. */
	if (mx_store_msg_get(t, mx_get_be64(key + 12), &m, &merr) != MX_OK)
		return MX_OK;
	sum = mx_msg_summary_encode(&m, &len);
	mx_msg_free(&m);
	if (sum == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = mx_db_put(t, MX_DB_BYDATE, key, 20, sum, len, 0, err);
	free(sum);
	c->done++;
	return rc;
}

static int fill_batch(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct fill_ctx *c = vctx;
	uint8_t start[20];

	/* Again from the same place when mx_store_write runs us twice. */
	memcpy(start, c->pos, 20);
	c->done = 0;
	c->more = false;
	return mx_store_walk(t, MX_DB_BYDATE, NULL, 0, start, 20, 0,
			     "date index", fill_fn, c, err);
}

int mx_store_summaries_fill(struct mx_store *st, uint8_t pos[20],
			    size_t max, size_t *done_r, bool *more_r,
			    struct mx_error *err)
{
	struct fill_ctx c = {max, 0, false, {0}};
	int rc;

	memcpy(c.pos, pos, 20);
	rc = mx_store_write(st, fill_batch, &c, err);
	*done_r = rc == MX_OK ? c.done : 0;
	*more_r = rc == MX_OK && c.more;
	if (rc == MX_OK)
		memcpy(pos, c.pos, 20);
	return rc;
}

/*
 * A list of u64 collected by a walk: from each entry's key (FROM_KEY) or
 * data, which must be SIZE bytes, the big-endian u64 at offset OFF.
 */
struct u64_list {
	bool from_key;
	size_t size, off;
	uint64_t *v;
	size_t n, cap;
};

static int add_u64(struct mx_txn *t, const struct walk *w, const MDB_val *k,
		   const MDB_val *d, void *ctx, struct mx_error *err)
{
	struct u64_list *l = ctx;
	const MDB_val *src = l->from_key ? k : d;
	uint64_t *nv;

	(void)t;
	if (src->mv_size != l->size)
		return walk_corrupt(w, k, err);
	nv = grow(l->v, &l->cap, l->n, sizeof(*l->v));
	if (nv == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	l->v = nv;
	l->v[l->n++] = mx_get_be64((const uint8_t *)src->mv_data + l->off);
	return MX_OK;
}

/* The u64 list of W (see struct u64_list); *V_R NULL, *N_R 0 on error. */
static int collect_u64(struct mx_txn *t, const struct walk *w, bool from_key,
		       size_t size, size_t off, uint64_t **v_r, size_t *n_r,
		       struct mx_error *err)
{
	struct u64_list l = {from_key, size, off, NULL, 0, 0};
	int rc;

	*v_r = NULL;
	*n_r = 0;
	rc = walk(t, w, add_u64, &l, err);
	if (rc) {
		free(l.v);
		return rc;
	}
	*v_r = l.v;
	*n_r = l.n;
	return MX_OK;
}

int mx_store_identity_find(struct mx_txn *t, uint32_t account_id,
			   const uint8_t identity[32], uint64_t **ids_r,
			   size_t *n_r, struct mx_error *err)
{
	uint8_t k[36];
	struct walk w = {MX_DB_IDENTITY, {36, k}, MDB_SET_KEY, MDB_NEXT_DUP,
			 NULL, 0, "identity index"};

	mx_put_be32(k, account_id);
	memcpy(k + 4, identity, 32);
	return collect_u64(t, &w, false, 8, 0, ids_r, n_r, err);
}

int mx_store_msgid_find(struct mx_txn *t, uint32_t account_id,
			const char *message_id, uint64_t **ids_r, size_t *n_r,
			struct mx_error *err)
{
	uint8_t k[MX_KEY_MAX + 8];
	struct walk w = {MX_DB_MSGID, {str_key(k, account_id, message_id), k},
			 MDB_SET_KEY, MDB_NEXT_DUP, NULL, 0,
			 "Message-ID index"};

	return collect_u64(t, &w, false, 8, 0, ids_r, n_r, err);
}

int mx_store_account_msgs(struct mx_txn *t, uint32_t account_id,
			  uint64_t **ids_r, size_t *n_r, struct mx_error *err)
{
	char what[64];
	uint8_t next[4], pre[4];
	/* Backwards from the first key of the next account (or the end). */
	struct walk w = {MX_DB_BYDATE, {4, next}, MDB_PREV, MDB_PREV, pre, 4,
			 what};

	mx_put_be32(pre, account_id);
	mx_put_be32(next, account_id + 1);
	if (account_id == UINT32_MAX)
		w.start.mv_size = 0; /* no next account: from the end */
	snprintf(what, sizeof(what), "messages of account #%u", account_id);
	return collect_u64(t, &w, true, 20, 12, ids_r, n_r, err);
}

/* ---- orphans ---- */

int mx_store_orphan_add(struct mx_txn *t, uint64_t id, struct mx_error *err)
{
	uint8_t k[8];

	mx_put_be64(k, id);
	return mx_db_put(t, MX_DB_ORPHANS, k, 8, "", 0, 0, err);
}

int mx_store_orphan_del(struct mx_txn *t, uint64_t id, struct mx_error *err)
{
	uint8_t k[8];
	int rc;

	mx_put_be64(k, id);
	rc = mx_db_del(t, MX_DB_ORPHANS, k, 8, NULL, 0, err);
	return rc == MX_ERR_NOTFOUND ? MX_OK : rc;
}

bool mx_store_is_orphan(struct mx_txn *t, uint64_t id)
{
	uint8_t k[8];
	MDB_val v;

	mx_put_be64(k, id);
	return mx_db_get(t, MX_DB_ORPHANS, k, 8, &v, NULL) == MX_OK;
}

int mx_store_orphans(struct mx_txn *t, uint64_t **ids_r, size_t *n_r,
		     struct mx_error *err)
{
	struct walk w = {MX_DB_ORPHANS, {0, NULL}, MDB_FIRST, MDB_NEXT, NULL, 0,
			 "orphan list"};

	return collect_u64(t, &w, true, 8, 0, ids_r, n_r, err);
}

/* ---- events ---- */

int mx_store_event(struct mx_txn *t, const char *type, uint32_t account_id,
		   uint32_t folder_id, uint64_t msg_id, const void *extra,
		   struct mx_error *err)
{
	json_t *o = json_object();
	uint64_t seq;
	uint8_t k[8];
	char *s, idstr[17];
	int rc;

	rc = mx_db_next_id(t, "next_event", &seq, err);
	if (rc) {
		json_decref(o);
		return rc;
	}
	json_object_set_new(o, "id", json_integer((json_int_t)seq));
	json_object_set_new(o, "type", json_string(type));
	json_object_set_new(o, "time", json_integer(mx_wall_s()));
	json_object_set_new(o, "account", json_integer(account_id));
	if (folder_id)
		json_object_set_new(o, "folder", json_integer(folder_id));
	if (msg_id) {
		mx_msg_id_str(msg_id, idstr);
		json_object_set_new(o, "message", json_string(idstr));
	}
	if (extra) /* never overrides id, type, time, account */
		json_object_update_missing(o, (json_t *)(uintptr_t)extra);
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	mx_put_be64(k, seq);
	rc = mx_db_put(t, MX_DB_EVENTS, k, 8, s, strlen(s), 0, err);
	free(s);
	return rc;
}
