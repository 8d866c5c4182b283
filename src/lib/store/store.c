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
	struct mx_store *st;
	MDB_txn *txn = NULL;
	MDB_envinfo info;
	int rc;

	rc = mx_mkdir_p(dir, 0700, err);
	if (rc)
		return rc;
	st = calloc(1, sizeof(*st));
	if (st == NULL || (st->dir = strdup(dir)) == NULL) {
		free(st);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	pthread_mutex_init(&st->trim_mu, NULL);
	pthread_mutex_init(&st->secrets_mu, NULL);
	st->map_size = map_size ? map_size : MX_MAP_DEFAULT;
	st->map_max = map_max ? map_max : MX_MAP_MAX_DEFAULT;
	if ((rc = mdb_env_create(&st->env)) != 0 ||
	    (rc = mdb_env_set_maxdbs(st->env, 32)) != 0 ||
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

int mx_txn_commit(struct mx_txn *t, struct mx_error *err)
{
	int rc = mdb_txn_commit(t->txn);
	struct statvfs vfs;

	t->txn = NULL;
	if (rc == 0)
		return MX_OK;
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
	const char *env = getenv("MXSYNC_KEY");
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

int mx_store_account_list(struct mx_txn *t, struct mx_account **v_r,
			  size_t *n_r, struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	MDB_cursor *c;
	MDB_val k, d;
	int rc, mrc = MX_OK;

	rc = mdb_cursor_open(t->txn, t->st->dbi[MX_DB_ACCOUNTS], &c);
	if (rc)
		return mx_store_err(err, rc, "accounts");
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		struct mx_account *nv = realloc(v, (n + 1) * sizeof(*v));

		if (nv == NULL) {
			rc = ENOMEM;
			break;
		}
		v = nv;
		if (mx_account_decode(d.mv_data, d.mv_size, &v[n], err))
			continue;
		/* An account whose secrets do not open fails the whole
		 * list: skipping it would look like a removed account. */
		mrc = account_unseal(t, &v[n], err);
		if (mrc)
			break;
		n++;
	}
	mdb_cursor_close(c);
	if (mrc || rc != MDB_NOTFOUND) {
		for (size_t i = 0; i < n; i++)
			mx_account_free(&v[i]);
		free(v);
		if (mrc)
			return mrc;
		if (rc == ENOMEM)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		return mx_store_err(err, rc, "accounts");
	}
	*v_r = v;
	*n_r = n;
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

int mx_store_folder_list(struct mx_txn *t, uint32_t account_id,
			 struct mx_folder **v_r, size_t *n_r,
			 struct mx_error *err)
{
	struct mx_folder *v = NULL;
	size_t n = 0;
	MDB_cursor *c;
	MDB_val k, d;
	uint8_t pre[4];
	int rc;

	mx_put_be32(pre, account_id);
	k.mv_size = 4;
	k.mv_data = pre;
	rc = mdb_cursor_open(t->txn, t->st->dbi[MX_DB_FOLDER_NAMES], &c);
	if (rc)
		return mx_store_err(err, rc, "folder_names");
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		struct mx_folder *nv;

		if (k.mv_size < 4 || memcmp(k.mv_data, pre, 4) != 0)
			break;
		if (d.mv_size != 4)
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (nv == NULL) {
			mdb_cursor_close(c);
			mx_folders_free(v, n);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
		v = nv;
		rc = mx_store_folder_get(t, mx_get_be32(d.mv_data), &v[n], err);
		if (rc) {
			mdb_cursor_close(c);
			mx_folders_free(v, n);
			return rc;
		}
		n++;
	}
	mdb_cursor_close(c);
	*v_r = v;
	*n_r = n;
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

int mx_store_folder_locs(struct mx_txn *t, uint32_t folder_id,
			 struct mx_loc **v_r, size_t *n_r,
			 struct mx_error *err)
{
	struct mx_loc *v = NULL;
	size_t n = 0, cap = 0;
	MDB_cursor *c;
	MDB_val k, d;
	uint8_t pre[8];
	int rc;

	loc_key(pre, folder_id, 0);
	k.mv_size = 8;
	k.mv_data = pre;
	rc = mdb_cursor_open(t->txn, t->st->dbi[MX_DB_LOCS], &c);
	if (rc)
		return mx_store_err(err, rc, "locs");
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if (k.mv_size != 8 || memcmp(k.mv_data, pre, 4) != 0)
			break;
		if (n == cap) {
			struct mx_loc *nv;

			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				mdb_cursor_close(c);
				mx_locs_free(v, n);
				return mx_error_set(err, MX_ERR_NOMEM, NULL);
			}
			v = nv;
		}
		if (mx_loc_decode(d.mv_data, d.mv_size, &v[n]) < 0)
			continue;
		v[n].folder_id = folder_id;
		v[n].uid = mx_get_be32((const uint8_t *)k.mv_data + 4);
		n++;
	}
	mdb_cursor_close(c);
	*v_r = v;
	*n_r = n;
	return MX_OK;
}

int mx_store_msg_locs(struct mx_txn *t, uint64_t msg_id, struct mx_loc **v_r,
		      size_t *n_r, struct mx_error *err)
{
	struct mx_loc *v = NULL;
	size_t n = 0;
	MDB_cursor *c;
	MDB_val k, d;
	uint8_t pre[16];
	int rc;

	mx_put_be64(pre, msg_id);
	memset(pre + 8, 0, 8);
	k.mv_size = 16;
	k.mv_data = pre;
	rc = mdb_cursor_open(t->txn, t->st->dbi[MX_DB_MSGLOCS], &c);
	if (rc)
		return mx_store_err(err, rc, "msglocs");
	for (rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		const uint8_t *kp = k.mv_data;
		struct mx_loc *nv;

		if (k.mv_size != 16 || memcmp(kp, pre, 8) != 0)
			break;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (nv == NULL) {
			mdb_cursor_close(c);
			mx_locs_free(v, n);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
		v = nv;
		if (mx_store_loc_get(t, mx_get_be32(kp + 8),
				     mx_get_be32(kp + 12), &v[n], NULL) == 0)
			n++;
	}
	mdb_cursor_close(c);
	*v_r = v;
	*n_r = n;
	return MX_OK;
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
	rc = mx_db_put(t, MX_DB_BYDATE, bk, 20, "", 0, 0, err);
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

/*
 * Collects the u64 found in each entry a cursor walk visits: the data
 * (FROM_KEY false) or the key.  FIRST positions the cursor (with KEY when
 * it needs one), NEXT steps.  A failing LMDB call is an error, not a short
 * list.
 */
static int collect_u64(struct mx_txn *t, enum mx_dbi db, MDB_val *key,
		       MDB_cursor_op first, MDB_cursor_op next, bool from_key,
		       uint64_t **v_r, size_t *n_r, struct mx_error *err)
{
	MDB_val k = key ? *key : (MDB_val){0, NULL}, d;
	MDB_cursor *c;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	rc = mdb_cursor_open(t->txn, t->st->dbi[db], &c);
	if (rc)
		return mx_store_err(err, rc, db_defs[db].name);
	for (rc = mdb_cursor_get(c, &k, &d, first); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, next)) {
		const MDB_val *src = from_key ? &k : &d;

		if (src->mv_size != 8)
			continue;
		if (n == cap) {
			uint64_t *nv;

			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				rc = ENOMEM;
				break;
			}
			v = nv;
		}
		v[n++] = mx_get_be64(src->mv_data);
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND) {
		free(v);
		if (rc == ENOMEM)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		return mx_store_err(err, rc, db_defs[db].name);
	}
	*v_r = v;
	*n_r = n;
	return MX_OK;
}

int mx_store_identity_find(struct mx_txn *t, uint32_t account_id,
			   const uint8_t identity[32], uint64_t **ids_r,
			   size_t *n_r, struct mx_error *err)
{
	uint8_t k[36];
	MDB_val key = {36, k};

	mx_put_be32(k, account_id);
	memcpy(k + 4, identity, 32);
	return collect_u64(t, MX_DB_IDENTITY, &key, MDB_SET_KEY, MDB_NEXT_DUP,
			   false, ids_r, n_r, err);
}

int mx_store_msgid_find(struct mx_txn *t, uint32_t account_id,
			const char *message_id, uint64_t **ids_r, size_t *n_r,
			struct mx_error *err)
{
	uint8_t k[MX_KEY_MAX + 8];
	MDB_val key = {str_key(k, account_id, message_id), k};

	return collect_u64(t, MX_DB_MSGID, &key, MDB_SET_KEY, MDB_NEXT_DUP,
			   false, ids_r, n_r, err);
}

int mx_store_account_msgs(struct mx_txn *t, uint32_t account_id,
			  uint64_t **ids_r, size_t *n_r, struct mx_error *err)
{
	uint8_t pre[4];
	MDB_val k, d;
	MDB_cursor *c;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	mx_put_be32(pre, account_id + 1);
	rc = mdb_cursor_open(t->txn, t->st->dbi[MX_DB_BYDATE], &c);
	if (rc)
		return mx_store_err(err, rc, "bydate");
	/* Walk backwards from the first key of the next account. */
	k.mv_size = 4;
	k.mv_data = pre;
	rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &d, MDB_PREV);
	else
		rc = mdb_cursor_get(c, &k, &d, MDB_LAST);
	mx_put_be32(pre, account_id);
	for (; rc == 0; rc = mdb_cursor_get(c, &k, &d, MDB_PREV)) {
		if (k.mv_size != 20 || memcmp(k.mv_data, pre, 4) != 0)
			break;
		if (n == cap) {
			uint64_t *nv;

			cap = cap ? cap * 2 : 256;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				free(v);
				mdb_cursor_close(c);
				return mx_error_set(err, MX_ERR_NOMEM, NULL);
			}
			v = nv;
		}
		v[n++] = mx_get_be64((const uint8_t *)k.mv_data + 12);
	}
	mdb_cursor_close(c);
	*ids_r = v;
	*n_r = n;
	return MX_OK;
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
	return collect_u64(t, MX_DB_ORPHANS, NULL, MDB_FIRST, MDB_NEXT, true,
			   ids_r, n_r, err);
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
