/*
 * Guards around the LMDB files: the data file checked before it is mapped,
 * the lock file checked before each write, mxsyncd's lock on the data
 * directory, and a warning about modes that let others read the mail.
 * Why each exists: doc/internals/store.md ("Guarding the files").
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

/*
 * LMDB 0.9's on-disk meta page (lmdb.h does not export it; mdb.c, struct
 * MDB_page and MDB_meta): a page header (pgno_t mp_pgno, u16 pad, u16
 * flags, u32 bounds) and the meta: u32 magic, u32 version, void *address,
 * size_t mapsize, two MDB_db (u32 pad, u16 flags, u16 depth, four size_t
 * counts, pgno_t root), pgno_t last_pg, size_t txnid.  pgno_t is size_t
 * (LMDB without MDB_VL32).  The page size is stored in the free DB's pad.
 */
#define LM_W sizeof(size_t)
#define LM_HDR (LM_W + 8)
#define LM_FLAGS (LM_W + 2)
#define LM_MAGIC (LM_HDR)
#define LM_DBS (LM_HDR + 8 + 2 * LM_W)
#define LM_DB_SIZE (8 + 5 * LM_W)
#define LM_PSIZE (LM_DBS)
#define LM_LAST_PG (LM_DBS + 2 * LM_DB_SIZE)
#define LM_TXNID (LM_LAST_PG + LM_W)
#define LM_META_END (LM_TXNID + LM_W)
#define LM_P_META 0x08u
#define LM_MAGIC_VALUE 0xBEEFC0DEu

struct lm_meta {
	uint32_t psize;
	size_t root[2]; /* free DB, main DB; (size_t)-1 when empty */
	size_t last_pg;
	size_t txnid;
};

/*
 * A commit can end data.mdb before its last page: LMDB does not write
 * pages freed again in the transaction that allocated them, and
 * store_cover_last_page() extends the file only after the commit, so a
 * crash in between leaves a short file that is not damaged.  Up to this
 * many missing pages are taken for that, when both trees' roots are in
 * the file; a real truncation (to half, to a page, to nothing) is far
 * larger.
 */
#define LM_SLACK_PAGES 64u

/* Reads meta page I (at OFF); false if it is not a valid meta page. */
static bool read_meta(int fd, off_t off, struct lm_meta *m, int *errno_r)
{
	unsigned char b[LM_META_END];
	uint32_t magic;
	uint16_t flags;
	ssize_t n;

	*errno_r = 0;
	n = pread(fd, b, sizeof(b), off);
	if (n < 0)
		*errno_r = errno;
	if (n != (ssize_t)sizeof(b))
		return false;
	memcpy(&flags, b + LM_FLAGS, sizeof(flags));
	memcpy(&magic, b + LM_MAGIC, sizeof(magic));
	memcpy(&m->psize, b + LM_PSIZE, sizeof(m->psize));
	memcpy(&m->last_pg, b + LM_LAST_PG, sizeof(m->last_pg));
	for (int i = 0; i < 2; i++)
		memcpy(&m->root[i], b + LM_DBS + i * LM_DB_SIZE + 8 + 4 * LM_W,
		       sizeof(m->root[i]));
	memcpy(&m->txnid, b + LM_TXNID, sizeof(m->txnid));
	return (flags & LM_P_META) && magic == LM_MAGIC_VALUE &&
	       m->psize >= 512 && m->psize <= 65536 &&
	       (m->psize & (m->psize - 1)) == 0;
}

/* True if a file of SIZE bytes ends within LM_SLACK_PAGES of M's last
 * page and holds both roots (see LM_SLACK_PAGES). */
static bool short_by_a_commit(const struct lm_meta *m, unsigned long long size)
{
	unsigned long long pages = size / m->psize;

	if (pages + LM_SLACK_PAGES < (unsigned long long)m->last_pg + 1)
		return false;
	for (int i = 0; i < 2; i++)
		if (m->root[i] != (size_t)-1 && m->root[i] >= pages)
			return false;
	return true;
}

/* One look at the file: MX_OK or the error that describes it. */
static int check_once(int fd, const char *path, struct mx_error *err)
{
	struct lm_meta m0, m1, *m;
	struct stat sb;
	unsigned long long need;
	int e;

	if (!read_meta(fd, 0, &m0, &e)) {
		if (e)
			return mx_error_set(err, MX_ERR_IO, "read %s: %s",
					    path, strerror(e));
		if (fstat(fd, &sb) == 0 && sb.st_size < (off_t)LM_META_END)
			return mx_error_set(err, MX_ERR_STORE,
					    "store file %s is truncated (%lld "
					    "bytes, not even one meta page): "
					    "restore it from a backup",
					    path, (long long)sb.st_size);
		return mx_error_set(err, MX_ERR_STORE,
				    "store file %s is not an LMDB file (meta "
				    "page 0 is invalid)", path);
	}
	if (!read_meta(fd, (off_t)m0.psize, &m1, &e)) {
		if (e)
			return mx_error_set(err, MX_ERR_IO, "read %s: %s",
					    path, strerror(e));
		if (fstat(fd, &sb) == 0 &&
		    sb.st_size < (off_t)m0.psize + (off_t)LM_META_END)
			return mx_error_set(err, MX_ERR_STORE,
					    "store file %s is truncated (%lld "
					    "bytes, shorter than its two meta "
					    "pages of %u bytes): restore it "
					    "from a backup",
					    path, (long long)sb.st_size,
					    m0.psize);
		return mx_error_set(err, MX_ERR_STORE,
				    "store file %s is corrupt (meta page 1 "
				    "is invalid)", path);
	}
	/* LMDB uses the meta of the newer transaction. */
	m = m1.txnid > m0.txnid ? &m1 : &m0;
	need = ((unsigned long long)m->last_pg + 1) * m->psize;
	/* Stat after reading the metas: the file only grows, and a meta
	 * is written after the pages it points to. */
	if (fstat(fd, &sb) != 0)
		return mx_error_set(err, MX_ERR_IO, "stat %s: %s", path,
				    strerror(errno));
	if ((unsigned long long)sb.st_size < need &&
	    !short_by_a_commit(m, (unsigned long long)sb.st_size))
		return mx_error_set(err, MX_ERR_STORE,
				    "store file %s is truncated: %lld bytes, "
				    "but its last page (#%zu of %u bytes) "
				    "ends at byte %llu; restore it from a "
				    "backup",
				    path, (long long)sb.st_size, m->last_pg,
				    m->psize, need);
	return MX_OK;
}

int mx_store_check_file(const char *path, struct mx_error *err)
{
	struct stat sb;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return mx_error_set(err, MX_ERR_NOTFOUND,
					    "%s: no such file", path);
		return mx_error_set(err, MX_ERR_IO, "open %s: %s", path,
				    strerror(errno));
	}
	if (fstat(fd, &sb) != 0) {
		rc = mx_error_set(err, MX_ERR_IO, "stat %s: %s", path,
				  strerror(errno));
		goto out;
	}
	if (sb.st_size == 0) {
		rc = mx_error_set(err, MX_ERR_STORE,
				  "store file %s is empty (0 bytes): it was "
				  "truncated; restore it from a backup, or "
				  "move it away to start an empty store", path);
		goto out;
	}
	/* A writer in another process may be rewriting a meta page while
	 * we read it: only a result seen twice is an error. */
	rc = check_once(fd, path, err);
	if (rc == MX_ERR_STORE)
		rc = check_once(fd, path, err);
out:
	close(fd);
	return rc;
}

int mx_store_check_lock(struct mx_store *st, struct mx_error *err)
{
	char path[4096];
	struct stat sb;
	int rc;

	snprintf(path, sizeof(path), "%s/lock.mdb", st->dir);
	if (!atomic_load(&st->lock_lost)) {
		rc = stat(path, &sb);
		if (rc == 0 && sb.st_dev == st->lock_dev &&
		    sb.st_ino == st->lock_ino)
			return MX_OK;
		if (rc != 0 && errno != ENOENT)
			return mx_error_set(err, MX_ERR_IO, "stat %s: %s", path,
					    strerror(errno));
		atomic_store(&st->lock_lost, true);
	}
	return mx_error_set(err, MX_ERR_STORE,
			    "%s was deleted or replaced while the store was "
			    "open: writing now could corrupt the store, so "
			    "this process writes no more; stop every mxsync "
			    "and mxsyncd using %s, then start again", path,
			    st->dir);
}

/* What DIR/mxsync.lock says: the holder's pid and its lock.mdb. */
static void read_lock_file(int fd, long *pid_r, unsigned long long *dev_r,
			   unsigned long long *ino_r)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	*pid_r = 0;
	*dev_r = *ino_r = 0;
	if (n <= 0)
		return;
	buf[n] = '\0';
	if (sscanf(buf, "%ld %llu %llu", pid_r, dev_r, ino_r) < 1)
		*pid_r = 0;
}

/* True if an mxsyncd holds the lock on FD (an open DIR/mxsync.lock). */
static bool lock_held(int fd)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};

	/* Open file description locks: unlike classic POSIX locks, closing
	 * another descriptor of the file (this check in the daemon itself)
	 * does not drop them. */
	return fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK;
}

static int open_lock_file(const char *dir, int flags)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/mxsync.lock", dir);
	return open(path, flags | O_CLOEXEC, 0600);
}

pid_t mx_store_daemon_pid(const char *dir)
{
	unsigned long long dev, ino;
	long pid = 0;
	int fd = open_lock_file(dir, O_RDONLY);

	if (fd < 0)
		return 0;
	if (lock_held(fd)) {
		read_lock_file(fd, &pid, &dev, &ino);
		if (pid <= 0)
			pid = -1; /* held, contents not written yet */
	}
	close(fd);
	return (pid_t)pid;
}

int mx_store_daemon_lock(struct mx_store *st, struct mx_error *err)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	unsigned long long dev, ino;
	char buf[128];
	long pid;
	int fd, n;

	fd = open_lock_file(st->dir, O_RDWR | O_CREAT);
	if (fd < 0)
		return mx_error_set(err, MX_ERR_IO, "open %s/mxsync.lock: %s",
				    st->dir, strerror(errno));
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		int e = errno;

		read_lock_file(fd, &pid, &dev, &ino);
		close(fd);
		if (e == EAGAIN || e == EACCES)
			return mx_error_set(err, MX_ERR_EXISTS,
					    "mxsyncd (pid %ld) is already "
					    "running on %s (it holds %s/"
					    "mxsync.lock); one daemon per data "
					    "directory", pid, st->dir, st->dir);
		return mx_error_set(err, MX_ERR_IO, "lock %s/mxsync.lock: %s",
				    st->dir, strerror(e));
	}
	n = snprintf(buf, sizeof(buf), "%ld %llu %llu\n", (long)getpid(),
		     (unsigned long long)st->lock_dev,
		     (unsigned long long)st->lock_ino);
	if (ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
		int e = errno;

		close(fd);
		return mx_error_set(err, MX_ERR_IO, "write %s/mxsync.lock: %s",
				    st->dir, strerror(e));
	}
	st->daemon_fd = fd;
	return MX_OK;
}

/*
 * Called by the open after LMDB opened its files: remembers lock.mdb,
 * refuses to go on when a running mxsyncd uses another lock.mdb than the
 * one now in DIR (it was deleted or replaced under the daemon: two lock
 * tables would let both write at once), and warns about modes that let
 * other users read the mail.
 */
int mx_store_guard_open(struct mx_store *st, struct mx_error *err)
{
	unsigned long long dev, ino;
	char path[4096];
	struct stat sb;
	long pid;
	int fd;

	snprintf(path, sizeof(path), "%s/lock.mdb", st->dir);
	if (stat(path, &sb) != 0)
		return mx_error_set(err, MX_ERR_IO, "stat %s: %s", path,
				    strerror(errno));
	st->lock_dev = sb.st_dev;
	st->lock_ino = sb.st_ino;
	fd = open_lock_file(st->dir, O_RDONLY);
	if (fd >= 0) {
		bool held = lock_held(fd);

		read_lock_file(fd, &pid, &dev, &ino);
		close(fd);
		if (held && ino != 0 &&
		    (dev != (unsigned long long)sb.st_dev ||
		     ino != (unsigned long long)sb.st_ino))
			return mx_error_set(err, MX_ERR_STORE,
					    "mxsyncd (pid %ld) uses a lock file "
					    "that is no longer %s (it was "
					    "deleted or replaced): writing "
					    "beside it would corrupt the store; "
					    "stop mxsyncd first", pid, path);
	}
	if (stat(st->dir, &sb) == 0 && (sb.st_mode & 077))
		mx_warn("data directory %s is mode %04o: other users can "
			"reach the mail in it (chmod 700 %s)", st->dir,
			(unsigned)(sb.st_mode & 07777), st->dir);
	snprintf(path, sizeof(path), "%s/data.mdb", st->dir);
	if (stat(path, &sb) == 0 && (sb.st_mode & 077))
		mx_warn("store file %s is mode %04o: other users can read "
			"the mail in it (chmod 600 %s)", path,
			(unsigned)(sb.st_mode & 07777), path);
	return MX_OK;
}

int mx_store_watch(const struct mx_store *st)
{
	char path[4096];
	int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	if (fd < 0)
		return -1;
	if ((size_t)snprintf(path, sizeof(path), "%s/data.mdb", st->dir) >=
		    sizeof(path) ||
	    inotify_add_watch(fd, path, IN_MODIFY) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void mx_store_watch_drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}
