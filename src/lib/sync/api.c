/* Read-side public API (status, ls, show) and the two-way flag change. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "account/account.h"
#include "events/types.h"
#include "mime/mime.h"
#include "send/outbox.h"
#include "sync/sync.h"

static enum mx_err open_dir(const char *dir, unsigned flags,
			   struct mx_store **store_r, struct mx_error *err)
{
	const char *env, *home;
	char path[4096];

	mx_error_clear(err);
	if (dir == NULL) {
		if ((env = getenv("MXSYNC_DATA_DIR")) && *env)
			dir = env;
		else if ((env = getenv("XDG_DATA_HOME")) && *env) {
			snprintf(path, sizeof(path), "%s/mxsync", env);
			dir = path;
		} else if ((home = getenv("HOME")) && *home) {
			snprintf(path, sizeof(path), "%s/.local/share/mxsync",
				 home);
			dir = path;
		} else {
			return mx_error_set(err, MX_ERR_CONFIG,
					    "no data directory: set "
					    "MXSYNC_DATA_DIR or HOME");
		}
	}
	return mx_store_open_flags(dir, 0, 0, flags, store_r, err);
}

enum mx_err mx_store_open(const char *dir, struct mx_store **store_r,
			  struct mx_error *err)
{
	return open_dir(dir, 0, store_r, err);
}

enum mx_err mx_store_open_existing(const char *dir, struct mx_store **store_r,
				   struct mx_error *err)
{
	return open_dir(dir, MX_STORE_NOCREATE, store_r, err);
}

static json_t *flags_json(uint32_t fl, const char *kw)
{
	json_t *a = json_array();

	if (fl & MX_FL_SEEN)
		json_array_append_new(a, json_string("\\Seen"));
	if (fl & MX_FL_ANSWERED)
		json_array_append_new(a, json_string("\\Answered"));
	if (fl & MX_FL_FLAGGED)
		json_array_append_new(a, json_string("\\Flagged"));
	if (fl & MX_FL_DELETED)
		json_array_append_new(a, json_string("\\Deleted"));
	if (fl & MX_FL_DRAFT)
		json_array_append_new(a, json_string("\\Draft"));
	if (kw) {
		char *dup = strdup(kw), *save = NULL;

		for (char *tok = dup ? strtok_r(dup, " ", &save) : NULL; tok;
		     tok = strtok_r(NULL, " ", &save))
			json_array_append_new(a, json_string(tok));
		free(dup);
	}
	return a;
}

static char *dump_free(json_t *o)
{
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(o);
	return s;
}

static json_t *status_account(struct mx_txn *t, const struct mx_account *a)
{
	struct mx_error ferr = {0};
	struct mx_folder *f = NULL;
	size_t nf = 0;
	bool complete = true;
	json_t *o = json_object(), *fa = json_array();
	uint64_t total = 0;
	int64_t last = 0;

	/* Display only: a folder the store cannot read is shown with its
	 * error instead of counts, never with counts of part of it. */
	json_object_set_new(o, "account", json_string(a->name));
	if (mx_store_folder_list(t, a->id, &f, &nf, &ferr) != MX_OK) {
		json_object_set_new(o, "error", json_string(ferr.detail));
		complete = false;
	} else {
		for (size_t i = 0; i < nf; i++) {
			struct mx_loc *locs = NULL;
			size_t n = 0, unseen = 0;
			json_t *fo;
			const char *state;
			bool ok;

			if (f[i].gone)
				continue;
			mx_error_clear(&ferr);
			ok = mx_store_folder_locs(t, f[i].id, &locs, &n,
						  &ferr) == MX_OK;
			for (size_t j = 0; j < n; j++)
				if (!(locs[j].flags & MX_FL_SEEN))
					unseen++;
			mx_locs_free(locs, n);
			total += n;
			if (f[i].last_sync > last)
				last = f[i].last_sync;
			state = f[i].noselect ? "noselect"
				: f[i].initial_done ? "synced"
				: f[i].initial_top ? "partial"
						   : "never";
			fo = json_object();
			json_object_set_new(fo, "folder", json_string(f[i].name));
			json_object_set_new(fo, "state", json_string(state));
			if (ok) {
				json_object_set_new(fo, "messages", json_integer((json_int_t)n));
				json_object_set_new(fo, "unseen", json_integer((json_int_t)unseen));
			} else {
				json_object_set_new(fo, "error", json_string(ferr.detail));
				complete = false;
			}
			json_object_set_new(fo, "server_messages",
					    json_integer(f[i].server_exists));
			json_object_set_new(fo, "uidvalidity",
					    json_integer(f[i].uidvalidity));
			json_object_set_new(fo, "uidnext", json_integer(f[i].uidnext));
			json_object_set_new(fo, "highestmodseq",
					    json_integer((json_int_t)f[i].highestmodseq));
			json_object_set_new(fo, "last_sync",
					    json_integer(f[i].last_sync));
			if (f[i].special) {
				static const char *const su[] = {
					"\\All", "\\Archive", "\\Drafts",
					"\\Flagged", "\\Junk", "\\Sent",
					"\\Trash", "inbox"};
				json_t *sa = json_array();

				for (int b = 0; b < 8; b++)
					if (f[i].special & (1u << b))
						json_array_append_new(sa, json_string(su[b]));
				json_object_set_new(fo, "special_use", sa);
			}
			json_array_append_new(fa, fo);
		}
		mx_folders_free(f, nf);
	}
	if (complete)
		json_object_set_new(o, "messages", json_integer((json_int_t)total));
	json_object_set_new(o, "last_sync", json_integer(last));
	{
		/* The daemon's view, if one runs or ran on this data dir. */
		uint8_t k[4];
		MDB_val v;

		mx_put_be32(k, a->id);
		if (mx_db_get(t, MX_DB_ACCTSTATE, k, 4, &v, NULL) == MX_OK) {
			json_t *ds = json_loadb(v.mv_data, v.mv_size, 0, NULL);

			if (ds)
				json_object_set_new(o, "daemon", ds);
		}
	}
	{
		/* Mail on its way out (src/lib/send/outbox.c). */
		unsigned c[MX_OB_CANCELLED + 1];

		if (mx_outbox_counts(t, a->id, c, NULL) == MX_OK &&
		    (c[MX_OB_QUEUED] || c[MX_OB_SENDING] || c[MX_OB_FAILED] ||
		     c[MX_OB_SENT])) {
			json_t *ob = json_object();

			for (int s = MX_OB_QUEUED; s <= MX_OB_FAILED; s++)
				json_object_set_new(ob, mx_ob_state_name(s),
						    json_integer(c[s]));
			json_object_set_new(o, "outbox", ob);
		}
	}
	json_object_set_new(o, "folders", fa);
	return o;
}

enum mx_err mx_status_json(struct mx_store *st, const char *name,
			   char **json_r, struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	struct mx_txn t;
	json_t *arr;
	bool found = name == NULL;
	int rc;

	mx_error_clear(err);
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_list(&t, &v, &n, err);
	if (rc) {
		mx_txn_abort(&t);
		return rc;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		if (name == NULL || strcmp(name, v[i].name) == 0) {
			json_array_append_new(arr, status_account(&t, &v[i]));
			found = true;
		}
		mx_account_free(&v[i]);
	}
	free(v);
	mx_txn_abort(&t);
	if (!found) {
		json_decref(arr);
		return mx_error_set(err, MX_ERR_NOTFOUND,
				    "no account named '%s'", name);
	}
	*json_r = dump_free(arr);
	return *json_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
}

/* The locations of message ID as a JSON array in *A_R.  A store error
 * is returned: an empty list would say the message is on no server. */
static int locs_json(struct mx_txn *t, uint64_t id, json_t **a_r,
		     struct mx_error *err)
{
	struct mx_loc *locs = NULL;
	size_t n = 0;
	json_t *a;
	int rc;

	*a_r = NULL;
	rc = mx_store_msg_locs(t, id, &locs, &n, err);
	if (rc)
		return rc;
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		struct mx_folder f;
		json_t *o = json_object();

		if (mx_store_folder_get(t, locs[i].folder_id, &f, NULL) == MX_OK) {
			json_object_set_new(o, "folder", json_string(f.name));
			json_object_set_new(o, "uidvalidity",
					    json_integer(f.uidvalidity));
			mx_folder_free(&f);
		}
		json_object_set_new(o, "uid", json_integer(locs[i].uid));
		json_object_set_new(o, "flags",
				    flags_json(locs[i].flags, locs[i].keywords));
		if (locs[i].modseq)
			json_object_set_new(o, "modseq",
					    json_integer((json_int_t)locs[i].modseq));
		json_array_append_new(a, o);
	}
	mx_locs_free(locs, n);
	*a_r = a;
	return MX_OK;
}

enum mx_err mx_list_json(struct mx_store *st, const char *name,
			 const char *folder, char **json_r,
			 struct mx_error *err)
{
	struct mx_list_opts o = {.folder = folder};

	return mx_list_json_opts(st, name, &o, json_r, err);
}

enum mx_err mx_list_json_opts(struct mx_store *st, const char *name,
			      const struct mx_list_opts *opts, char **json_r,
			      struct mx_error *err)
{
	const char *folder = opts ? opts->folder : NULL;
	uint64_t limit = opts ? opts->limit : 0, listed = 0;
	struct mx_account a;
	struct mx_folder f = {0};
	struct mx_txn t;
	uint64_t *ids = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	mx_error_clear(err);
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_get(&t, name, &a, err);
	if (rc)
		goto out_txn;
	if (folder) {
		rc = mx_store_folder_find(&t, a.id, folder, &f, err);
		if (rc)
			goto out_acct;
	}
	rc = mx_store_account_msgs(&t, a.id, &ids, &n, err);
	if (rc)
		goto out_acct;
	arr = json_array();
	/* The id index is small (8 bytes a message); the records, their
	 * locations and the JSON are the cost, so stop at the limit. */
	for (size_t i = 0; i < n && (limit == 0 || listed < limit); i++) {
		struct mx_msg m;
		struct mx_error merr;
		json_t *o, *locs;
		char idstr[17];

		mx_error_clear(&merr);
		if (mx_store_msg_get(&t, ids[i], &m, &merr) != MX_OK) {
			mx_msg_id_str(ids[i], idstr);
			mx_warn("message %s: unreadable record skipped (%s)",
				idstr, merr.detail[0] ? merr.detail
						      : mx_strerror(merr.code));
			continue;
		}
		rc = locs_json(&t, ids[i], &locs, err);
		if (rc) {
			mx_msg_free(&m);
			json_decref(arr);
			free(ids);
			goto out_acct;
		}
		if (folder) {
			bool in = false;
			size_t k;
			json_t *l;

			json_array_foreach(locs, k, l) {
				const char *fn = json_string_value(json_object_get(l, "folder"));

				if (fn && strcmp(fn, folder) == 0)
					in = true;
			}
			if (!in) {
				json_decref(locs);
				mx_msg_free(&m);
				continue;
			}
		}
		o = json_object();
		mx_msg_id_str(m.id, idstr);
		json_object_set_new(o, "id", json_string(idstr));
		json_object_set_new(o, "date", json_integer(m.p.date >= 0 ? m.p.date : m.internaldate));
		if (m.p.from.n) {
			json_object_set_new(o, "from",
					    json_string(m.p.from.v[0].email ? m.p.from.v[0].email : ""));
			if (m.p.from.v[0].name)
				json_object_set_new(o, "from_name",
						    json_string(m.p.from.v[0].name));
		}
		json_object_set_new(o, "subject", json_string(m.p.subject ? m.p.subject : ""));
		if (m.p.message_id)
			json_object_set_new(o, "message_id",
					    json_string(m.p.message_id));
		json_object_set_new(o, "size", json_integer((json_int_t)m.size));
		json_object_set_new(o, "thread", json_integer((json_int_t)m.thread_id));
		json_object_set_new(o, "attachments", json_integer(0));
		{
			json_int_t na = 0;

			for (size_t k = 0; k < m.p.nparts; k++)
				na += m.p.parts[k].attachment;
			json_object_set_new(o, "attachments", json_integer(na));
		}
		if (m.p.flags & MX_PARSED_BROKEN)
			json_object_set_new(o, "unparsable", json_true());
		json_object_set_new(o, "locations", locs);
		json_array_append_new(arr, o);
		mx_msg_free(&m);
		listed++;
	}
	free(ids);
	*json_r = dump_free(arr);
	if (*json_r == NULL)
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
out_acct:
	mx_folder_free(&f);
	mx_account_free(&a);
out_txn:
	mx_txn_abort(&t);
	return rc;
}

static int parse_id(const char *s, uint64_t *id, struct mx_error *err)
{
	if (mx_msg_id_parse(s, id) < 0)
		return mx_error_set(err, MX_ERR_INVAL,
				    "bad message id '%s' (16 hex digits, as "
				    "shown by mxsync ls)", s);
	return MX_OK;
}

/* API mode (change-log model): the server's id, and that the body is
 * not stored but fetched live. */
static int remote_json(struct mx_txn *t, const struct mx_msg *m, json_t *o,
		       struct mx_error *err)
{
	char *rid = NULL;
	int rc = mx_changes_remote_id(t, m->account_id, m->id, &rid, err);

	if (rc == MX_ERR_NOTFOUND)
		return MX_OK;
	if (rc)
		return rc;
	json_object_set_new(o, "remote_id", json_string(rid));
	json_object_set_new(o, "body", json_string("live"));
	/* The record's size is that of the (empty) stored body. */
	json_object_del(o, "size");
	free(rid);
	return MX_OK;
}

enum mx_err mx_message_json(struct mx_store *st, const char *id_s,
			    char **json_r, struct mx_error *err)
{
	struct mx_txn t;
	struct mx_msg m;
	uint64_t id;
	json_t *o, *locs = NULL;
	char *s;
	int rc;

	mx_error_clear(err);
	if ((rc = parse_id(id_s, &id, err)))
		return rc;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_msg_get(&t, id, &m, err);
	if (rc) {
		mx_txn_abort(&t);
		return rc;
	}
	s = mx_msg_to_json(&m, 0);
	o = s ? json_loads(s, 0, NULL) : NULL;
	free(s);
	/* Spelled out: parse_flags is a bit mask readers must decode. */
	if (o && (m.p.flags & MX_PARSED_ADDRS_TRUNCATED))
		json_object_set_new(o, "addresses_truncated", json_true());
	rc = o ? locs_json(&t, id, &locs, err) : MX_OK;
	if (rc == MX_OK && o)
		rc = remote_json(&t, &m, o, err);
	mx_msg_free(&m);
	mx_txn_abort(&t);
	if (rc) {
		json_decref(o);
		return rc;
	}
	*json_r = NULL;
	if (o) {
		json_object_set_new(o, "locations", locs);
		*json_r = dump_free(o);
	}
	return *json_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
}

static int live_cb(const char *data, size_t len, void *ctx,
		   struct mx_error *err)
{
	if (mx_buf_append(ctx, data, len) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	return MX_OK;
}

/* API mode: the message's bytes from the server (REMOTE_ID of account
 * ACCOUNT_ID), since the store has none. */
static int raw_live(struct mx_store *st, uint32_t account_id,
		    const char *remote_id, char **data_r, size_t *len_r,
		    struct mx_error *err)
{
	const struct mx_backend_ops *be = NULL;
	struct mx_account a = {0};
	struct mx_conn *conn = NULL;
	struct mx_buf b = {0};
	int rc;

	rc = mx_account_load_id(st, account_id, &a, err);
	if (rc == MX_OK)
		rc = mx_backend_connect(st, &a, &be, &conn, err);
	if (rc == MX_OK && !(be->caps & MX_CAP_FETCH_LIVE))
		rc = mx_error_set(err, MX_ERR_UNSUPPORTED,
				  "its backend cannot fetch a message");
	if (rc == MX_OK)
		rc = be->fetch_live(conn, remote_id, live_cb, &b, err);
	if (conn)
		be->disconnect(&conn);
	if (rc == MX_OK && mx_buf_append(&b, "", 1) < 0)
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (rc == MX_OK) {
		*len_r = b.len - 1;
		*data_r = mx_buf_steal(&b);
	} else {
		mx_error_prefix(err, "the body is not stored in API mode "
				"and fetching it from %s failed",
				be ? be->title : "the server");
	}
	mx_buf_free(&b);
	mx_account_free(&a);
	return rc;
}

enum mx_err mx_message_raw(struct mx_store *st, const char *id_s,
			   char **data_r, size_t *len_r, struct mx_error *err)
{
	struct mx_txn t;
	struct mx_msg m;
	const char *data;
	size_t len;
	uint64_t id;
	char *rid = NULL;
	int rc;

	mx_error_clear(err);
	if ((rc = parse_id(id_s, &id, err)))
		return rc;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_msg_get(&t, id, &m, err);
	if (rc == MX_OK &&
	    mx_changes_remote_id(&t, m.account_id, id, &rid, NULL) == MX_OK) {
		uint32_t acct = m.account_id;

		mx_msg_free(&m);
		mx_txn_abort(&t);
		rc = raw_live(st, acct, rid, data_r, len_r, err);
		free(rid);
		return rc;
	}
	if (rc == MX_OK) {
		rc = mx_store_blob_get(&t, m.sha256, &data, &len, err);
		if (rc == MX_OK) {
			*data_r = mx_strndup(data, len);
			*len_r = len;
			if (*data_r == NULL)
				rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
		mx_msg_free(&m);
	}
	mx_txn_abort(&t);
	return rc;
}

enum mx_err mx_message_text(struct mx_store *st, const char *id,
			    char **text_r, struct mx_error *err)
{
	char *raw = NULL, *text = NULL, *html = NULL;
	size_t len;
	int rc;

	rc = mx_message_raw(st, id, &raw, &len, err);
	if (rc)
		return rc;
	rc = mx_mime_bodies(raw, len, &text, &html, err);
	free(raw);
	if (rc)
		return rc;
	if (text == NULL && html != NULL) {
		text = html;
		html = NULL;
	}
	free(html);
	*text_r = text ? text : strdup("");
	return *text_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
}

struct flag_ctx {
	struct mx_loc *locs;
	size_t n;
	uint32_t add, remove;
	uint32_t account_id;
	const struct mx_account *acct; /* for the generation check */
	/* API mode: the labels (keywords) follow the flags. */
	bool labels;
};

/* KW (space-separated labels, may be NULL) without DEL and with ADD
 * (either NULL), malloc()ed; NULL for none.  *NOMEM_R on ENOMEM. */
static char *kw_edit(const char *kw, const char *add, const char *del,
		     bool *nomem_r)
{
	struct mx_buf b = {0};
	const char *p = kw ? kw : "";
	int bad = 0;

	while (*p) {
		size_t n = strcspn(p, " ");

		if (n && !(del && strlen(del) == n && !memcmp(p, del, n)) &&
		    !(add && strlen(add) == n && !memcmp(p, add, n)))
			bad |= mx_buf_printf(&b, "%s%.*s", b.len ? " " : "",
					     (int)n, p);
		p += n;
		p += strspn(p, " ");
	}
	if (add)
		bad |= mx_buf_printf(&b, "%s%s", b.len ? " " : "", add);
	*nomem_r = bad != 0;
	if (bad || b.len == 0) {
		mx_buf_free(&b);
		return NULL;
	}
	return mx_buf_steal(&b);
}

/* The labels that mean the flags changed by FC (Gmail API mode). */
static int labels_follow(const struct flag_ctx *fc, struct mx_loc *l,
			 struct mx_error *err)
{
	const char *add = NULL, *del = NULL;
	char *kw;
	bool nomem = false;

	if (fc->add & MX_FL_SEEN)
		del = "UNREAD";
	else if (fc->remove & MX_FL_SEEN)
		add = "UNREAD";
	else if (fc->add & MX_FL_FLAGGED)
		add = "STARRED";
	else if (fc->remove & MX_FL_FLAGGED)
		del = "STARRED";
	kw = kw_edit(l->keywords, add, del, &nomem);
	if (nomem)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	free(l->keywords);
	l->keywords = kw;
	return MX_OK;
}

static int flag_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct flag_ctx *fc = ctx;
	int rc;

	/* The server was told; if the account was removed (or removed and
	 * added again) meanwhile, its records are not ours to change. */
	rc = mx_account_check_current(t, fc->acct, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < fc->n; i++) {
		struct mx_loc l;

		rc = mx_store_loc_get(t, fc->locs[i].folder_id, fc->locs[i].uid,
				      &l, err);
		if (rc == MX_ERR_NOTFOUND)
			continue;
		if (rc)
			return rc;
		l.flags = (l.flags | fc->add) & ~fc->remove;
		rc = fc->labels ? labels_follow(fc, &l, err) : MX_OK;
		if (rc == MX_OK)
			rc = mx_store_loc_put(t, &l, err);
		if (rc == MX_OK)
			rc = mx_event_message_updated(t, fc->account_id,
						      l.folder_id, l.msg_id,
						      l.uid, l.flags, true, err);
		free(l.keywords);
		if (rc)
			return rc;
	}
	return MX_OK;
}

enum mx_err mx_message_flag(struct mx_store *st, const char *id_s,
			    enum mx_flag_op op, struct mx_error *err)
{
	const struct mx_backend_ops *be = NULL;
	struct flag_ctx fc = {0};
	struct mx_account a = {0};
	struct mx_conn *conn = NULL;
	struct mx_txn t;
	struct mx_msg m;
	uint64_t id;
	int rc;

	mx_error_clear(err);
	if ((rc = parse_id(id_s, &id, err)))
		return rc;
	switch (op) {
	case MX_FLAG_SEEN: fc.add = MX_FL_SEEN; break;
	case MX_FLAG_UNSEEN: fc.remove = MX_FL_SEEN; break;
	case MX_FLAG_FLAGGED: fc.add = MX_FL_FLAGGED; break;
	case MX_FLAG_UNFLAGGED: fc.remove = MX_FL_FLAGGED; break;
	default:
		return mx_error_set(err, MX_ERR_INVAL, "bad flag operation");
	}
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_msg_get(&t, id, &m, err);
	if (rc == MX_OK) {
		fc.account_id = m.account_id;
		mx_msg_free(&m);
		rc = mx_store_msg_locs(&t, id, &fc.locs, &fc.n, err);
	}
	if (rc == MX_OK && fc.n == 0)
		rc = mx_error_set(err, MX_ERR_NOTFOUND,
				  "message %s is no longer on the server", id_s);
	if (rc == MX_OK) {
		struct mx_account *v = NULL;
		size_t n = 0;

		rc = mx_store_account_list(&t, &v, &n, err);
		for (size_t i = 0; i < n; i++) {
			if (v[i].id == fc.account_id)
				a = v[i];
			else
				mx_account_free(&v[i]);
		}
		free(v);
	}
	if (rc == MX_OK && a.id == 0)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "account of %s", id_s);
	if (rc == MX_OK)
		be = mx_backend_for_account(&a);
	if (rc == MX_OK && be && (be->caps & MX_CAP_FLAGS_BY_ID)) {
		/* API mode: by the server's id, no folder to select. */
		char *rid = NULL;

		rc = mx_changes_remote_id(&t, fc.account_id, id, &rid, err);
		mx_txn_abort(&t);
		if (rc == MX_OK)
			rc = mx_backend_connect(st, &a, &be, &conn, err);
		if (rc == MX_OK)
			rc = be->store_flags_id(conn, rid, fc.add, fc.remove,
						err);
		free(rid);
		fc.labels = true;
		goto store;
	}
	/* Flags go to the server first, in a folder selected by UID. */
	if (rc == MX_OK && (be == NULL ||
			    !(be->caps & MX_CAP_STORE_FLAGS) ||
			    !(be->caps & MX_CAP_MODEL_UID)))
		rc = mx_error_set(err, MX_ERR_UNSUPPORTED,
				  "account %s is %s: its server keeps no "
				  "flags; nothing to change there", a.name,
				  be ? be->title : "of no backend");
	/* The server is told first; the store follows only on success. */
	for (size_t i = 0; rc == MX_OK && i < fc.n; i++) {
		struct mx_folder f;
		struct mx_select_result sel;

		rc = mx_store_folder_get(&t, fc.locs[i].folder_id, &f, err);
		if (rc)
			break;
		if (conn == NULL) {
			mx_txn_abort(&t);
			rc = mx_backend_connect(st, &a, &be, &conn, err);
			if (rc == MX_OK)
				rc = mx_txn_begin(st, false, &t, err);
			if (rc) {
				mx_folder_free(&f);
				break;
			}
		}
		rc = be->select(conn, f.wire, 0, 0, &sel, err);
		if (rc == MX_OK && sel.uidvalidity != f.uidvalidity)
			rc = mx_error_set(err, MX_ERR_PROTOCOL,
					  "%s changed UIDVALIDITY; run mxsync "
					  "sync %s first", f.name, a.name);
		mx_select_result_free(&sel);
		if (rc == MX_OK)
			rc = be->store_flags(conn, fc.locs[i].uid, fc.add,
					     fc.remove, err);
		mx_folder_free(&f);
	}
	if (t.txn)
		mx_txn_abort(&t);
store:
	fc.acct = &a;
	if (rc == MX_OK)
		rc = mx_store_write(st, flag_fn, &fc, err);
	if (conn)
		be->disconnect(&conn);
	mx_locs_free(fc.locs, fc.n);
	mx_account_free(&a);
	return rc;
}
