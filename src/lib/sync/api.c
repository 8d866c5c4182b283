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

/* The labels that mean the flags changed by FC (Gmail API mode):
 * \Seen is the absence of UNREAD, \Flagged is STARRED. */
static int labels_follow(const struct flag_ctx *fc, struct mx_loc *l,
			 struct mx_error *err)
{
	for (int pass = 0; pass < 2; pass++) {
		uint32_t bit = pass == 0 ? MX_FL_SEEN : MX_FL_FLAGGED;
		const char *label = pass == 0 ? "UNREAD" : "STARRED";
		const char *add = NULL, *del = NULL;
		bool on = (fc->add & bit) != 0, off = (fc->remove & bit) != 0;
		char *kw;
		bool nomem = false;

		if (!on && !off)
			continue;
		if (on == (pass == 0))
			del = label;
		else
			add = label;
		kw = kw_edit(l->keywords, add, del, &nomem);
		if (nomem)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		free(l->keywords);
		l->keywords = kw;
	}
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

/* Account ACCOUNT_ID into *A (free with mx_account_free). */
static int account_by_id(struct mx_txn *t, uint32_t account_id,
			 struct mx_account *a, struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	int rc;

	memset(a, 0, sizeof(*a));
	rc = mx_store_account_list(t, &v, &n, err);
	for (size_t i = 0; i < n; i++) {
		if (v[i].id == account_id)
			*a = v[i];
		else
			mx_account_free(&v[i]);
	}
	free(v);
	if (rc == MX_OK && a->id == 0)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "account %" PRIu32,
				  account_id);
	return rc;
}

enum mx_err mx_message_flag(struct mx_store *st, const char *id_s,
			    enum mx_flag_op op, struct mx_error *err)
{
	uint32_t add = 0, remove = 0;
	uint64_t id;
	int rc;

	mx_error_clear(err);
	if ((rc = parse_id(id_s, &id, err)))
		return rc;
	switch (op) {
	case MX_FLAG_SEEN: add = MX_FL_SEEN; break;
	case MX_FLAG_UNSEEN: remove = MX_FL_SEEN; break;
	case MX_FLAG_FLAGGED: add = MX_FL_FLAGGED; break;
	case MX_FLAG_UNFLAGGED: remove = MX_FL_FLAGGED; break;
	default:
		return mx_error_set(err, MX_ERR_INVAL, "bad flag operation");
	}
	return mx_msg_flags(st, id, add, remove, err);
}

int mx_msg_flags(struct mx_store *st, uint64_t id, uint32_t add,
		 uint32_t remove, struct mx_error *err)
{
	const struct mx_backend_ops *be = NULL;
	struct flag_ctx fc = {.add = add, .remove = remove};
	struct mx_account a = {0};
	struct mx_conn *conn = NULL;
	struct mx_txn t;
	struct mx_msg m;
	char id_s[17];
	int rc;

	mx_error_clear(err);
	if ((add | remove) & ~(MX_FL_SEEN | MX_FL_FLAGGED) || (add & remove))
		return mx_error_set(err, MX_ERR_INVAL, "bad flag operation");
	mx_msg_id_str(id, id_s);
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
	if (rc == MX_OK)
		rc = account_by_id(&t, fc.account_id, &a, err);
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

/* ---- move and delete ---- */

/*
 * What a move or a delete does to one location of the message: keep it
 * (it is in the destination already), move it there, or expunge it.
 * DONE once the server did it; NEW_UIDVALIDITY/NEW_UID where a moved copy
 * landed (0: the server did not say).
 */
enum reloc_op { RELOC_KEEP, RELOC_MOVE, RELOC_EXPUNGE };

struct reloc {
	struct mx_loc loc;
	struct mx_folder folder;
	enum reloc_op op;
	bool done;
	uint32_t new_uidvalidity, new_uid;
};

struct reloc_ctx {
	uint64_t id;
	struct mx_account a;
	struct mx_folder dest;   /* id 0: none (delete for good) */
	struct reloc *v;
	size_t n;
	bool deleting;
};

static void reloc_ctx_free(struct reloc_ctx *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].loc.keywords);
		mx_folder_free(&c->v[i].folder);
	}
	free(c->v);
	mx_account_free(&c->a);
	if (c->dest.id)
		mx_folder_free(&c->dest);
}

/* A folder of the account a message can be put in. */
static int dest_check(const struct reloc_ctx *c, const struct mx_folder *f,
		      struct mx_error *err)
{
	if (f->account_id != c->a.id)
		return mx_error_set(err, MX_ERR_INVAL, "folder %" PRIu32
				    " is not a folder of account %s", f->id,
				    c->a.name);
	if (f->noselect || f->gone)
		return mx_error_set(err, MX_ERR_INVAL, "folder '%s' of account "
				    "%s %s", f->name, c->a.name,
				    f->gone ? "is gone from the server"
					    : "cannot hold messages");
	return MX_OK;
}

/*
 * Loads message C->id, its account and locations, and the destination:
 * folder FOLDER_ID or named FOLDER_NAME (both unset: the account's Trash
 * when DELETING and not PERMANENT, else none).  Then decides each
 * location's fate: with a destination, a location already there is kept
 * and the others are expunged, or, when none is there, the first is moved
 * and the rest expunged -- the message ends up once in the destination
 * (the others are copies of the same bytes).  Without one, all go.
 */
static int reloc_plan(struct mx_store *st, struct reloc_ctx *c,
		      uint32_t folder_id, const char *folder_name,
		      bool permanent, struct mx_error *err)
{
	struct mx_loc *locs = NULL;
	struct mx_txn t;
	struct mx_msg m;
	size_t nlocs = 0;
	bool in_dest = false, moving = false;
	int rc;

	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_msg_get(&t, c->id, &m, err);
	if (rc == MX_OK) {
		uint32_t acct = m.account_id;

		mx_msg_free(&m);
		rc = account_by_id(&t, acct, &c->a, err);
	}
	if (rc == MX_OK) {
		const struct mx_backend_ops *be = mx_backend_for_account(&c->a);

		/* Before the folder: no folder makes it possible. */
		if (be == NULL || !(be->caps & MX_CAP_REMOVE) ||
		    !(be->caps & MX_CAP_MODEL_UID))
			rc = mx_error_set(err, MX_ERR_UNSUPPORTED,
					  "account %s is %s: messages cannot be "
					  "moved or deleted on its server",
					  c->a.name, be ? be->title
							: "of no backend");
	}
	if (rc == MX_OK)
		rc = mx_store_msg_locs(&t, c->id, &locs, &nlocs, err);
	if (rc == MX_OK && nlocs == 0)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "message %016" PRIx64
				  " is no longer on the server", c->id);
	if (rc == MX_OK && (folder_id || folder_name)) {
		if (folder_id)
			rc = mx_store_folder_get(&t, folder_id, &c->dest, err);
		else
			rc = mx_store_folder_find(&t, c->a.id, folder_name,
						  &c->dest, err);
		if (rc == MX_ERR_NOTFOUND) {
			memset(&c->dest, 0, sizeof(c->dest));
			if (folder_id)
				rc = mx_error_set(err, MX_ERR_INVAL, "no folder %"
						  PRIu32 " in account %s",
						  folder_id, c->a.name);
			else
				rc = mx_error_set(err, MX_ERR_INVAL, "no folder "
						  "'%s' in account %s",
						  folder_name, c->a.name);
		}
		if (rc == MX_OK)
			rc = dest_check(c, &c->dest, err);
	}
	if (rc == MX_OK && c->deleting && !permanent) {
		struct mx_folder *fv = NULL;
		size_t nf = 0;

		/* Deleting moves to Trash (SPECIAL-USE \Trash, RFC 6154). */
		rc = mx_store_folder_list(&t, c->a.id, &fv, &nf, err);
		for (size_t i = 0; rc == MX_OK && i < nf; i++) {
			if ((fv[i].special & MX_SU_TRASH) && !fv[i].noselect &&
			    !fv[i].gone && c->dest.id == 0) {
				c->dest = fv[i];
				memset(&fv[i], 0, sizeof(fv[i]));
			}
		}
		mx_folders_free(fv, nf);
	}
	if (rc == MX_OK && (c->v = calloc(nlocs, sizeof(*c->v))) == NULL)
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	for (size_t i = 0; rc == MX_OK && i < nlocs; i++) {
		c->v[i].loc = locs[i];
		locs[i].keywords = NULL;
		c->n++;
		rc = mx_store_folder_get(&t, locs[i].folder_id,
					 &c->v[i].folder, err);
		in_dest |= c->dest.id && locs[i].folder_id == c->dest.id;
	}
	mx_txn_abort(&t);
	mx_locs_free(locs, nlocs);
	if (rc)
		return rc;
	/* A delete of what is only in Trash removes it for good. */
	if (c->deleting && in_dest) {
		bool elsewhere = false;

		for (size_t i = 0; i < c->n; i++)
			elsewhere |= c->v[i].loc.folder_id != c->dest.id;
		if (!elsewhere) {
			mx_folder_free(&c->dest);
			memset(&c->dest, 0, sizeof(c->dest));
			in_dest = false;
		}
	}
	for (size_t i = 0; i < c->n; i++) {
		struct reloc *r = &c->v[i];

		if (c->dest.id && r->loc.folder_id == c->dest.id)
			r->op = RELOC_KEEP;
		else if (c->dest.id && !in_dest && !moving)
			r->op = RELOC_MOVE, moving = true;
		else
			r->op = RELOC_EXPUNGE;
	}
	return MX_OK;
}

/* The server's part, location by location; stops at the first error
 * (what was done stays marked DONE for the store). */
static int reloc_server(struct mx_store *st, struct reloc_ctx *c,
			struct mx_error *err)
{
	const struct mx_backend_ops *be = mx_backend_for_account(&c->a);
	struct mx_conn *conn = NULL;
	int rc = MX_OK;

	for (size_t i = 0; rc == MX_OK && i < c->n; i++) {
		struct reloc *r = &c->v[i];
		struct mx_select_result sel;

		if (r->op == RELOC_KEEP)
			continue;
		if (conn == NULL) {
			rc = mx_backend_connect(st, &c->a, &be, &conn, err);
			if (rc)
				break;
		}
		rc = be->select(conn, r->folder.wire, 0, 0, &sel, err);
		if (rc == MX_OK && sel.uidvalidity != r->folder.uidvalidity)
			rc = mx_error_set(err, MX_ERR_PROTOCOL,
					  "%s changed UIDVALIDITY; run mxsync "
					  "sync %s first", r->folder.name,
					  c->a.name);
		mx_select_result_free(&sel);
		if (rc == MX_OK && r->op == RELOC_MOVE)
			rc = be->move_uid(conn, r->loc.uid, c->dest.wire,
					  &r->new_uidvalidity, &r->new_uid,
					  err);
		else if (rc == MX_OK)
			rc = be->expunge_uid(conn, r->loc.uid, err);
		r->done = rc == MX_OK;
	}
	if (conn)
		be->disconnect(&conn);
	return rc;
}

/*
 * The store follows the server, as a sync would see it: the locations
 * gone are removed; a moved copy whose new UID the server told, in a
 * folder the daemon syncs and the store knows at that UIDVALIDITY, is
 * placed there (message.moved).  A message left without a location is deleted
 * (message.deleted), unless it was moved to a folder the store follows
 * but whose new UID is unknown: then it is an orphan the next sync
 * re-attaches.
 */
static int reloc_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct reloc_ctx *c = ctx;
	struct mx_loc *locs = NULL;
	size_t n = 0;
	bool moved = false;
	int rc;

	rc = mx_account_check_current(t, &c->a, err);
	for (size_t i = 0; rc == MX_OK && i < c->n; i++) {
		struct reloc *r = &c->v[i];
		struct mx_loc nl;

		if (!r->done)
			continue;
		rc = mx_store_loc_del(t, r->loc.folder_id, r->loc.uid, err);
		if (rc == MX_ERR_NOTFOUND)
			rc = MX_OK; /* a sync saw it go first */
		if (rc || r->op != RELOC_MOVE)
			continue;
		moved = true;
		if (r->new_uid == 0 || !mx_sync_follows(&c->dest) ||
		    c->dest.uidvalidity == 0 ||
		    r->new_uidvalidity != c->dest.uidvalidity)
			continue;
		/* A sync of the destination may have attached it first. */
		if (mx_store_loc_get(t, c->dest.id, r->new_uid, &nl, NULL) ==
		    MX_OK) {
			free(nl.keywords);
			continue;
		}
		nl = r->loc;
		nl.folder_id = c->dest.id;
		nl.uid = r->new_uid;
		nl.modseq = 0;
		nl.flags &= ~MX_FL_DELETED;
		rc = mx_store_loc_put(t, &nl, err);
		if (rc == MX_OK && mx_store_is_orphan(t, c->id))
			rc = mx_store_orphan_del(t, c->id, err);
		if (rc == MX_OK)
			rc = mx_event_message_placed(t, c->a.id, c->dest.id, c->id,
						     nl.uid, c->dest.name, true,
						     err);
	}
	if (rc == MX_OK)
		rc = mx_store_msg_locs(t, c->id, &locs, &n, err);
	mx_locs_free(locs, n);
	if (rc || n > 0)
		return rc;
	/* Moved to a folder the daemon syncs: the next sync finds it there
	 * and re-attaches it, keeping its id.  Into one it does not (Trash
	 * and Junk), the message has left what the store follows, as if
	 * gone for good. */
	if (moved && mx_sync_follows(&c->dest))
		return mx_store_orphan_add(t, c->id, err);
	rc = mx_store_msg_del(t, c->id, err);
	if (rc == MX_OK)
		rc = mx_event_message_deleted(t, c->a.id, c->id, err);
	return rc;
}

static int relocate(struct mx_store *st, struct reloc_ctx *c,
		    uint32_t folder_id, const char *folder_name,
		    bool permanent, struct mx_error *err)
{
	bool any = false;
	int rc, rc2;

	rc = reloc_plan(st, c, folder_id, folder_name, permanent, err);
	if (rc == MX_OK)
		rc = reloc_server(st, c, err);
	for (size_t i = 0; i < c->n; i++)
		any |= c->v[i].done;
	if (!any)
		return rc;
	/* What the server did is written even when a later step failed:
	 * the store must not keep a location the server removed. */
	rc2 = mx_store_write(st, reloc_fn, c, rc ? NULL : err);
	return rc ? rc : rc2;
}

int mx_msg_move(struct mx_store *st, uint64_t id, uint32_t folder_id,
		const char *folder_name, struct mx_error *err)
{
	struct reloc_ctx c = {.id = id};
	int rc;

	mx_error_clear(err);
	if (folder_id == 0 && (folder_name == NULL || *folder_name == '\0'))
		return mx_error_set(err, MX_ERR_INVAL, "no folder to move to");
	rc = relocate(st, &c, folder_id, folder_name, false, err);
	reloc_ctx_free(&c);
	return rc;
}

int mx_msg_delete(struct mx_store *st, uint64_t id, bool permanent,
		  struct mx_error *err)
{
	struct reloc_ctx c = {.id = id, .deleting = true};
	int rc;

	mx_error_clear(err);
	rc = relocate(st, &c, 0, NULL, permanent, err);
	reloc_ctx_free(&c);
	return rc;
}

enum mx_err mx_message_move(struct mx_store *st, const char *id_s,
			    const char *folder, struct mx_error *err)
{
	uint64_t id;
	int rc;

	mx_error_clear(err);
	if ((rc = parse_id(id_s, &id, err)))
		return rc;
	return mx_msg_move(st, id, 0, folder, err);
}

enum mx_err mx_message_delete(struct mx_store *st, const char *id_s,
			      bool permanent, struct mx_error *err)
{
	uint64_t id;
	int rc;

	mx_error_clear(err);
	if ((rc = parse_id(id_s, &id, err)))
		return rc;
	return mx_msg_delete(st, id, permanent, err);
}
