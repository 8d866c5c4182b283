/*
 * Export of the stored original bytes: one Maildir per folder, or one
 * mboxrd file per folder.  A message present in two folders is written to
 * both.  Nothing is re-encoded: Maildir files are byte for byte what the
 * server delivered; mbox adds the From_ separator and >From quoting that
 * the format requires (mboxrd, reversible).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sync/sync.h"

/*
 * Folder name -> relative path, one to one: the hierarchy delimiter nests;
 * in each component '%' and '/' are percent-encoded, and the components
 * that mean something to a file system ("", ".", "..") are written as
 * "%00", "%2E" and "%2E%2E", so two folders never share a path and no
 * name can leave the output directory.
 */
static char *folder_path(const struct mx_folder *f)
{
	struct mx_buf b = {0};
	const char *p = f->name;
	char delim = f->delim ? f->delim : '/';

	for (;;) {
		size_t n = 0;

		while (p[n] && p[n] != delim)
			n++;
		if (b.len)
			mx_buf_puts(&b, "/");
		if (n == 0)
			mx_buf_puts(&b, "%00");
		else if (n == 1 && p[0] == '.')
			mx_buf_puts(&b, "%2E");
		else if (n == 2 && p[0] == '.' && p[1] == '.')
			mx_buf_puts(&b, "%2E%2E");
		else
			for (size_t i = 0; i < n; i++) {
				if (p[i] == '%' || p[i] == '/')
					mx_buf_printf(&b, "%%%02X",
						      (unsigned char)p[i]);
				else
					mx_buf_append(&b, p + i, 1);
			}
		p += n;
		if (*p == '\0')
			break;
		p++;
	}
	return mx_buf_steal(&b);
}

static void maildir_flags(uint32_t fl, char *out)
{
	/* Maildir info flags must be in ASCII order. */
	if (fl & MX_FL_DRAFT)
		*out++ = 'D';
	if (fl & MX_FL_FLAGGED)
		*out++ = 'F';
	if (fl & MX_FL_ANSWERED)
		*out++ = 'R';
	if (fl & MX_FL_SEEN)
		*out++ = 'S';
	if (fl & MX_FL_DELETED)
		*out++ = 'T';
	*out = '\0';
}

static int export_maildir_msg(const char *dir, const struct mx_loc *l,
			      const char *data, size_t len,
			      struct mx_error *err)
{
	char id[17], fl[8], tmp[4400], dst[4400];
	int fd;

	mx_msg_id_str(l->msg_id, id);
	maildir_flags(l->flags, fl);
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s/tmp/%s.%u.mxsync", dir, id,
			     l->uid) >= sizeof(tmp) ||
	    (size_t)snprintf(dst, sizeof(dst), "%s/cur/%s.%u.mxsync:2,%s", dir,
			     id, l->uid, fl) >= sizeof(dst))
		return mx_error_set(err, MX_ERR_IO, "export path too long: %s",
				    dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return mx_error_set(err, MX_ERR_IO, "create %s: %s", tmp,
				    strerror(errno));
	if (mx_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		int e = errno;

		close(fd);
		unlink(tmp);
		return mx_error_set(err, MX_ERR_IO, "write %s: %s", tmp,
				    strerror(e));
	}
	close(fd);
	if (rename(tmp, dst) < 0)
		return mx_error_set(err, MX_ERR_IO, "rename %s: %s", dst,
				    strerror(errno));
	return MX_OK;
}

static int mbox_write_msg(FILE *fp, int64_t date, const char *data,
			  size_t len)
{
	time_t t = (time_t)date;
	struct tm tm;
	char when[64];
	const char *p = data, *end = data + len;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S %Y", &tm);
	fprintf(fp, "From MAILER-DAEMON %s\n", when);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl + 1 : end;
		const char *q = p;

		/* mboxrd: any line matching ^>*From  gets one more '>' */
		while (q < le && *q == '>')
			q++;
		if (le - q >= 5 && memcmp(q, "From ", 5) == 0)
			fputc('>', fp);
		fwrite(p, 1, (size_t)(le - p), fp);
		p = le;
	}
	if (len == 0 || data[len - 1] != '\n')
		fputc('\n', fp);
	fputc('\n', fp);
	return ferror(fp) ? -1 : 0;
}

enum mx_err mx_export(struct mx_store *st, const char *name,
		      enum mx_export_format fmt, const char *out_dir,
		      uint64_t *count_r, struct mx_error *err)
{
	struct mx_account a = {0};
	struct mx_folder *f = NULL;
	size_t nf = 0;
	uint64_t count = 0, skipped = 0;
	struct mx_txn t;
	int rc;

	mx_error_clear(err);
	if (fmt != MX_EXPORT_MAILDIR && fmt != MX_EXPORT_MBOX)
		return mx_error_set(err, MX_ERR_INVAL, "bad export format");
	rc = mx_mkdir_p(out_dir, 0700, err);
	if (rc)
		return rc;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_get(&t, name, &a, err);
	/* API mode keeps no message bytes: empty files would pass for a
	 * backup. */
	if (rc == MX_OK && mx_backend_for_account(&a) &&
	    !(mx_backend_for_account(&a)->caps & MX_CAP_STORES_BODIES) &&
	    (mx_backend_for_account(&a)->caps & MX_CAP_FETCH_LIVE))
		rc = mx_error_set(err, MX_ERR_UNSUPPORTED,
				  "account %s is in %s mode: the store keeps "
				  "no message bodies to export", a.name,
				  mx_backend_for_account(&a)->title);
	if (rc == MX_OK)
		rc = mx_store_folder_list(&t, a.id, &f, &nf, err);
	for (size_t i = 0; rc == MX_OK && i < nf; i++) {
		struct mx_loc *locs = NULL;
		size_t n = 0;
		char *rel, dir[4096];
		FILE *fp = NULL;

		if (f[i].gone || f[i].noselect)
			continue;
		rc = mx_store_folder_locs(&t, f[i].id, &locs, &n, err);
		if (rc)
			break;
		rel = folder_path(&f[i]);
		if (rel == NULL) {
			mx_locs_free(locs, n);
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
			break;
		}
		if ((size_t)snprintf(dir, sizeof(dir), "%s/%s.mbox/cur", out_dir,
				     rel) >= sizeof(dir)) {
			rc = mx_error_set(err, MX_ERR_IO,
					  "export path too long for folder %s",
					  f[i].name);
		} else if (fmt == MX_EXPORT_MAILDIR) {
			static const char *const sub[] = {"cur", "new", "tmp"};

			for (int s = 0; rc == MX_OK && s < 3; s++) {
				snprintf(dir, sizeof(dir), "%s/%s/%s", out_dir,
					 rel, sub[s]);
				rc = mx_mkdir_p(dir, 0700, err);
			}
			snprintf(dir, sizeof(dir), "%s/%s", out_dir, rel);
		} else {
			char *slash;

			snprintf(dir, sizeof(dir), "%s/%s.mbox", out_dir, rel);
			slash = strrchr(dir, '/');
			*slash = '\0';
			rc = mx_mkdir_p(dir, 0700, err);
			*slash = '/';
			if (rc == MX_OK) {
				/* O_EXCL: never silently overwrite.  0600 like
				 * the Maildir files: it is someone's mail. */
				int fd = open(dir, O_WRONLY | O_CREAT | O_EXCL |
							   O_CLOEXEC, 0600);

				if (fd >= 0 && (fp = fdopen(fd, "w")) == NULL)
					close(fd);
				if (fp == NULL)
					rc = mx_error_set(err, MX_ERR_IO,
							  "create %s: %s", dir,
							  strerror(errno));
				if (rc == MX_ERR_IO && errno == EEXIST)
					mx_error_prefix(err, "export into an empty directory");
			}
		}
		for (size_t j = 0; rc == MX_OK && j < n; j++) {
			struct mx_error rerr;
			struct mx_msg m;
			const char *data;
			size_t len;

			mx_error_clear(&rerr);
			rc = mx_store_msg_get(&t, locs[j].msg_id, &m, &rerr);
			if (rc == MX_OK) {
				rc = mx_store_blob_get(&t, m.sha256, &data,
						       &len, &rerr);
				if (rc)
					mx_msg_free(&m);
			}
			if (rc == MX_ERR_NOMEM) {
				if (err)
					*err = rerr;
				break;
			}
			if (rc) {
				/* One unreadable record must not cost the
				 * others their export: name it, go on, and
				 * fail at the end. */
				char id[17];

				mx_msg_id_str(locs[j].msg_id, id);
				mx_warn("export: message %s (%s UID %u): "
					"unreadable record skipped: %s", id,
					f[i].name, locs[j].uid,
					rerr.detail[0] ? rerr.detail
						       : mx_strerror(rerr.code));
				skipped++;
				rc = MX_OK;
				continue;
			}
			if (fp) {
				if (mbox_write_msg(fp, m.internaldate, data,
						   len) < 0)
					rc = mx_error_set(err, MX_ERR_IO,
							  "write %s", dir);
			} else {
				rc = export_maildir_msg(dir, &locs[j], data,
							len, err);
			}
			mx_msg_free(&m);
			if (rc == MX_OK)
				count++;
		}
		if (fp && fclose(fp) != 0 && rc == MX_OK)
			rc = mx_error_set(err, MX_ERR_IO, "close %s: %s", dir,
					  strerror(errno));
		free(rel);
		mx_locs_free(locs, n);
	}
	mx_txn_abort(&t);
	mx_folders_free(f, nf);
	mx_account_free(&a);
	if (rc == MX_OK && skipped)
		rc = mx_error_set(err, MX_ERR_STORE,
				  "%" PRIu64 " message(s) not exported: their "
				  "records are unreadable (named above)",
				  skipped);
	if (count_r)
		*count_r = count;
	return rc;
}
