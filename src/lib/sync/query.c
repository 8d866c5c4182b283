/* Message reads for the HTTP API (query.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "sync/query.h"

#define DATE_BIAS (UINT64_C(1) << 63) /* as in the BYDATE key */

void mx_fmt_rfc3339(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

static json_t *addrs(const struct mx_addr_list *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_pack(
			"{s:o,s:o}", "name",
			l->v[i].name ? json_string(l->v[i].name) : json_null(),
			"address",
			l->v[i].email ? json_string(l->v[i].email) : json_null()));
	return a;
}

static const struct {
	uint32_t bit;
	const char *name;
} flag_table[] = {{MX_FL_SEEN, "seen"}, {MX_FL_ANSWERED, "answered"},
		  {MX_FL_FLAGGED, "flagged"}, {MX_FL_DELETED, "deleted"},
		  {MX_FL_DRAFT, "draft"}};
#define NFLAGS (sizeof(flag_table) / sizeof(flag_table[0]))

static json_t *flag_names(uint32_t fl)
{
	json_t *a = json_array();

	for (size_t i = 0; i < NFLAGS; i++)
		if (fl & flag_table[i].bit)
			json_array_append_new(a, json_string(flag_table[i].name));
	return a;
}

static bool addr_in(const struct mx_addr_list *l, const char *addr)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].email && strcasecmp(l->v[i].email, addr) == 0)
			return true;
	return false;
}

static int64_t sort_date(const struct mx_msg *m)
{
	return m->p.date >= 0 ? m->p.date : m->internaldate;
}

static bool account_in(const uint32_t *v, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

/* Whether M with locations L matches F (the account is checked by the
 * caller). */
static bool matches(const struct mx_msg_filter *f, const struct mx_msg *m,
		    const struct mx_loc *l, size_t nl, uint32_t *flags_r)
{
	uint32_t any = 0;
	bool in_folder = f->folder == 0, seen = false;
	int64_t d = sort_date(m);

	for (size_t i = 0; i < nl; i++) {
		any |= l[i].flags;
		seen |= (l[i].flags & MX_FL_SEEN) != 0;
		if (l[i].folder_id == f->folder)
			in_folder = true;
	}
	*flags_r = any;
	if (!in_folder || (f->thread && m->thread_id != f->thread))
		return false;
	if (f->unread >= 0 && (f->unread ? seen : !seen))
		return false;
	if (f->flagged >= 0 && !!(any & MX_FL_FLAGGED) != f->flagged)
		return false;
	if (f->from && !addr_in(&m->p.from, f->from))
		return false;
	if (f->to && !addr_in(&m->p.to, f->to))
		return false;
	if (f->subject && (m->p.subject == NULL ||
			   strcasestr(m->p.subject, f->subject) == NULL))
		return false;
	if (f->has_since && d < f->since)
		return false;
	if (f->has_until && d > f->until)
		return false;
	return true;
}

static uint32_t attachments(const struct mx_msg *m)
{
	uint32_t n = 0;

	for (size_t k = 0; k < m->p.nparts; k++)
		n += m->p.parts[k].attachment;
	return n;
}

/*
 * Summaries are written as JSON text straight into one buffer a page:
 * building jansson values for 50 of them and dumping the page cost most
 * of a request (bench/README.md).  FAIL collects out-of-memory.
 */

/* S as a JSON string (NULL: null).  S is valid UTF-8 (parsed strings
 * are, summaries are checked when decoded): only '"', '\\' and the C0
 * controls need escaping. */
static void text_str(struct mx_buf *b, const char *s, int *fail)
{
	const char *run = s, *p;

	if (s == NULL) {
		*fail |= mx_buf_append(b, "null", 4);
		return;
	}
	*fail |= mx_buf_append(b, "\"", 1);
	for (p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		*fail |= mx_buf_append(b, run, (size_t)(p - run));
		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else if (c == '\n')
			snprintf(esc, sizeof(esc), "\\n");
		else if (c == '\r')
			snprintf(esc, sizeof(esc), "\\r");
		else if (c == '\t')
			snprintf(esc, sizeof(esc), "\\t");
		else
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		*fail |= mx_buf_puts(b, esc);
		run = p + 1;
	}
	*fail |= mx_buf_append(b, run, (size_t)(p - run));
	*fail |= mx_buf_append(b, "\"", 1);
}

static void text_addrs(struct mx_buf *b, const struct mx_addr_list *l,
		       int *fail)
{
	*fail |= mx_buf_append(b, "[", 1);
	for (size_t i = 0; i < l->n; i++) {
		*fail |= mx_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		text_str(b, l->v[i].name, fail);
		*fail |= mx_buf_puts(b, ",\"address\":");
		text_str(b, l->v[i].email, fail);
		*fail |= mx_buf_append(b, "}", 1);
	}
	*fail |= mx_buf_append(b, "]", 1);
}

/* M's summary as the API shows it ({"id","account","thread","subject",
 * "from","to","date","snippet","flags","folders","attachments","size"}),
 * appended to B: M needs only the fields mx_msg_summary_decode fills,
 * plus id, account and a date. */
static void summary_text(struct mx_buf *b, const struct mx_msg *m,
			 const struct mx_loc *l, size_t nl, uint32_t flags,
			 uint32_t natt, int *fail)
{
	char idstr[17], when[32];
	bool first = true;

	mx_msg_id_str(m->id, idstr);
	mx_fmt_rfc3339(sort_date(m), when);
	*fail |= mx_buf_printf(b, "{\"id\":\"%s\",\"account\":%" PRIu32
			       ",\"thread\":%" PRIu64 ",\"subject\":", idstr,
			       m->account_id, m->thread_id) < 0;
	text_str(b, m->p.subject ? m->p.subject : "", fail);
	*fail |= mx_buf_puts(b, ",\"from\":");
	text_addrs(b, &m->p.from, fail);
	*fail |= mx_buf_puts(b, ",\"to\":");
	text_addrs(b, &m->p.to, fail);
	*fail |= mx_buf_printf(b, ",\"date\":\"%s\",\"snippet\":", when) < 0;
	text_str(b, m->p.snippet, fail);
	*fail |= mx_buf_puts(b, ",\"flags\":[");
	for (size_t i = 0; i < NFLAGS; i++)
		if (flags & flag_table[i].bit) {
			*fail |= mx_buf_printf(b, "%s\"%s\"", first ? "" : ",",
					       flag_table[i].name) < 0;
			first = false;
		}
	*fail |= mx_buf_puts(b, "],\"folders\":[");
	for (size_t i = 0; i < nl; i++)
		*fail |= mx_buf_printf(b, "%s%" PRIu32, i ? "," : "",
				       l[i].folder_id) < 0;
	*fail |= mx_buf_printf(b, "],\"attachments\":%" PRIu32 ",\"size\":%"
			       PRIu64 "}", natt, m->size) < 0;
}

/* A message found, its summary at OFF (LEN bytes) in the walk's text. */
struct cand {
	int64_t date;
	uint64_t id;
	size_t off, len;
};

/* Appends a candidate for M (its summary from L, NL, FLAGS, NATT) to
 * *V / *N / *CAP with its text in TEXT.  MX_OK or MX_ERR_NOMEM. */
static int cand_add(struct cand **v, size_t *n, size_t *cap,
		    struct mx_buf *text, int64_t date, const struct mx_msg *m,
		    const struct mx_loc *l, size_t nl, uint32_t flags,
		    uint32_t natt, struct mx_error *err)
{
	size_t off = text->len;
	int fail = 0;

	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct cand *nv = realloc(*v, ncap * sizeof(*nv));

		if (nv == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		*v = nv;
		*cap = ncap;
	}
	summary_text(text, m, l, nl, flags, natt, &fail);
	if (fail)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	(*v)[*n] = (struct cand){date, m->id, off, text->len - off};
	(*n)++;
	return MX_OK;
}

/* The summaries of V[0..N) (backwards: from the last) as a JSON array:
 * malloc()ed text in *TEXT_R, its length in *LEN_R. */
static int cands_array(const struct cand *v, size_t n, bool backwards,
		       const struct mx_buf *text, char **text_r,
		       size_t *len_r, struct mx_error *err)
{
	struct mx_buf out = {0};
	int fail = 0;

	fail |= mx_buf_reserve(&out, text->len + n + 2);
	fail |= mx_buf_append(&out, "[", 1);
	for (size_t i = 0; i < n; i++) {
		const struct cand *c = &v[backwards ? n - 1 - i : i];

		if (i)
			fail |= mx_buf_append(&out, ",", 1);
		fail |= mx_buf_append(&out, text->data + c->off, c->len);
	}
	fail |= mx_buf_append(&out, "]", 1);
	if (fail) {
		mx_buf_free(&out);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	*len_r = out.len;
	*text_r = mx_buf_steal(&out);
	return MX_OK;
}

/* TEXT (LEN bytes, a JSON array cands_array made) as a jansson array. */
static int array_json(const char *text, size_t len, json_t **arr_r,
		      struct mx_error *err)
{
	json_error_t je;

	*arr_r = json_loadb(text, len, 0, &je);
	if (!json_is_array(*arr_r)) {
		json_decref(*arr_r);
		*arr_r = NULL;
		return mx_error_set(err, MX_ERR_NOMEM, "message summaries as "
				    "JSON: %s", je.text);
	}
	return MX_OK;
}

struct walk_ctx {
	const struct mx_msg_filter *f;
	size_t want;
	struct cand *v;
	size_t n, cap, found;
	struct mx_buf text;
};

/*
 * The message of date index entry K/V, with what a summary and the
 * filters need, in *M: from the summary kept as V, so that a page costs
 * no decode of full records; from the full record when V holds none (a
 * store from before summaries) or one that does not decode.  MX_OK, or
 * MX_ERR_NOTFOUND for an unreadable message (skipped, as by ls), or
 * MX_ERR_NOMEM.
 */
static int entry_msg(struct mx_txn *t, const uint8_t kb[20], const MDB_val *v,
		     struct mx_msg *m, uint32_t *natt_r, struct mx_error *err)
{
	struct mx_error merr;
	int rc;

	rc = mx_msg_summary_decode(v->mv_data, v->mv_size, m, natt_r, &merr);
	if (rc == MX_OK) {
		m->id = mx_get_be64(kb + 12);
		m->account_id = mx_get_be32(kb);
		/* The key's date is the sort date: Date:, else INTERNALDATE. */
		m->p.date = m->internaldate =
			(int64_t)(mx_get_be64(kb + 4) ^ DATE_BIAS);
		return MX_OK;
	}
	if (rc == MX_ERR_NOMEM)
		return mx_error_set(err, rc, NULL);
	if (mx_store_msg_get(t, mx_get_be64(kb + 12), m, &merr) != MX_OK)
		return MX_ERR_NOTFOUND;
	*natt_r = attachments(m);
	return MX_OK;
}

static int walk_fn(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		   void *vctx, struct mx_error *err)
{
	struct walk_ctx *c = vctx;
	const uint8_t *kb = k->mv_data;
	struct mx_loc *l = NULL;
	struct mx_msg m;
	size_t nl = 0;
	uint32_t flags, natt;
	int rc;

	if (k->mv_size != 20)
		return mx_error_set(err, MX_ERR_STORE, "date index: corrupt "
				    "entry (%zu bytes)", k->mv_size);
	rc = entry_msg(t, kb, v, &m, &natt, err);
	if (rc == MX_ERR_NOTFOUND)
		return MX_OK; /* an unreadable record: skipped, as by ls */
	if (rc)
		return rc;
	rc = mx_store_msg_locs(t, m.id, &l, &nl, err);
	if (rc) {
		mx_msg_free(&m);
		return rc;
	}
	if (matches(c->f, &m, l, nl, &flags)) {
		rc = cand_add(&c->v, &c->n, &c->cap, &c->text,
			      (int64_t)(mx_get_be64(kb + 4) ^ DATE_BIAS), &m, l,
			      nl, flags, natt, err);
		if (rc == MX_OK && ++c->found >= c->want)
			rc = MX_WALK_STOP;
	}
	mx_locs_free(l, nl);
	mx_msg_free(&m);
	return rc;
}

static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	if (x->date != y->date)
		return x->date > y->date ? -1 : 1;
	if (x->id != y->id)
		return x->id > y->id ? -1 : 1;
	return 0;
}

int mx_msg_query_text(struct mx_store *st, const struct mx_msg_filter *f,
		       const struct mx_msg_cursor *after, size_t limit,
		       char **text_r, size_t *len_r, bool *more_r,
		       struct mx_msg_cursor *next_r, struct mx_error *err)
{
	struct walk_ctx c = {f, limit + 1, NULL, 0, 0, 0, {0}};
	struct mx_txn t;
	size_t n;
	int rc;

	mx_error_clear(err);
	*text_r = NULL;
	*len_r = 0;
	*more_r = false;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	/* Each account's date index is walked backwards from the cursor
	 * until it yields LIMIT + 1 matches; the merge of those is exact
	 * for the first LIMIT of all. */
	for (size_t i = 0; i < f->naccounts && rc == MX_OK; i++) {
		uint8_t pre[4], start[20];

		mx_put_be32(pre, f->accounts[i]);
		memcpy(start, pre, 4);
		if (after) {
			mx_put_be64(start + 4, (uint64_t)after->date ^ DATE_BIAS);
			mx_put_be64(start + 12, after->id);
		}
		c.found = 0;
		rc = mx_store_walk(&t, MX_DB_BYDATE, pre, 4, start,
				   after ? 20 : 0, MX_WALK_REVERSE,
				   "date index", walk_fn, &c, err);
	}
	mx_txn_abort(&t);
	if (rc == MX_OK) {
		if (c.n) /* qsort(NULL, 0) is undefined */
			qsort(c.v, c.n, sizeof(*c.v), cand_cmp);
		n = c.n < limit ? c.n : limit;
		if (n) {
			next_r->date = c.v[n - 1].date;
			next_r->id = c.v[n - 1].id;
		}
		*more_r = c.n > limit;
		rc = cands_array(c.v, n, false, &c.text, text_r, len_r, err);
	}
	mx_buf_free(&c.text);
	free(c.v);
	return rc;
}

int mx_msg_query(struct mx_store *st, const struct mx_msg_filter *f,
		 const struct mx_msg_cursor *after, size_t limit,
		 json_t **msgs_r, bool *more_r, struct mx_msg_cursor *next_r,
		 struct mx_error *err)
{
	char *text;
	size_t len;
	int rc;

	*msgs_r = NULL;
	rc = mx_msg_query_text(st, f, after, limit, &text, &len, more_r,
			       next_r, err);
	if (rc == MX_OK)
		rc = array_json(text, len, msgs_r, err);
	free(text);
	return rc;
}

int mx_msg_get_json(struct mx_store *st, uint64_t id,
		    const uint32_t *accounts, size_t naccounts,
		    json_t **msg_r, struct mx_error *err)
{
	struct mx_loc *l = NULL;
	struct mx_txn t;
	struct mx_msg m;
	size_t nl = 0;
	uint32_t flags = 0;
	json_t *o, *parts, *locs;
	char idstr[17], when[32], idate[32];
	int rc;

	mx_error_clear(err);
	*msg_r = NULL;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_msg_get(&t, id, &m, err);
	if (rc)
		goto out_txn;
	if (!account_in(accounts, naccounts, m.account_id)) {
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "no message %016" PRIx64,
				  id);
		goto out_msg;
	}
	rc = mx_store_msg_locs(&t, id, &l, &nl, err);
	if (rc)
		goto out_msg;
	parts = json_array();
	for (size_t i = 0; i < m.p.nparts; i++) {
		const struct mx_part *p = &m.p.parts[i];

		json_array_append_new(parts, json_pack(
			"{s:s,s:s,s:o,s:I,s:o}", "part",
			p->part_id ? p->part_id : "", "type",
			p->content_type ? p->content_type : "application/octet-stream",
			"filename", p->filename ? json_string(p->filename) : json_null(),
			"size", (json_int_t)p->size, "disposition",
			p->disposition ? json_string(p->disposition) : json_null()));
	}
	locs = json_array();
	for (size_t i = 0; i < nl; i++) {
		struct mx_folder f;
		json_t *name = json_null();

		flags |= l[i].flags;
		if (mx_store_folder_get(&t, l[i].folder_id, &f, NULL) == MX_OK) {
			json_decref(name);
			name = json_string(f.name);
			mx_folder_free(&f);
		}
		json_array_append_new(locs, json_pack(
			"{s:I,s:o,s:I}", "folder", (json_int_t)l[i].folder_id,
			"folder_name", name, "uid", (json_int_t)l[i].uid));
	}
	mx_msg_id_str(m.id, idstr);
	mx_fmt_rfc3339(sort_date(&m), when);
	mx_fmt_rfc3339(m.internaldate, idate);
	o = json_pack("{s:s,s:I,s:I,s:o,s:o,s:o,s:o,s:o,s:s,s:s,s:s,s:o,"
		      "s:o,s:o,s:o,s:I}",
		      "id", idstr, "account", (json_int_t)m.account_id,
		      "thread", (json_int_t)m.thread_id, "message_id",
		      m.p.message_id ? json_string(m.p.message_id) : json_null(),
		      "from", addrs(&m.p.from), "to", addrs(&m.p.to), "cc",
		      addrs(&m.p.cc), "reply_to", addrs(&m.p.reply_to),
		      "subject", m.p.subject ? m.p.subject : "", "date", when,
		      "internal_date", idate, "snippet",
		      m.p.snippet ? json_string(m.p.snippet) : json_null(),
		      "flags", flag_names(flags), "parts", parts, "locations",
		      locs, "size", (json_int_t)m.size);
	if (o == NULL)
		rc = mx_error_set(err, MX_ERR_NOMEM, "message %s as JSON", idstr);
	*msg_r = o;
	mx_locs_free(l, nl);
out_msg:
	mx_msg_free(&m);
out_txn:
	mx_txn_abort(&t);
	return rc;
}

struct thread_ctx {
	const uint32_t *accounts;
	size_t naccounts;
	struct cand *v;
	size_t n, cap;
	struct mx_buf text;
};

static int thread_fn(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		     void *vctx, struct mx_error *err)
{
	struct thread_ctx *c = vctx;
	struct mx_loc *l = NULL;
	struct mx_msg m;
	struct mx_error merr;
	size_t nl = 0;
	uint32_t flags = 0;
	int rc = MX_OK;

	(void)v;
	if (k->mv_size != 16)
		return mx_error_set(err, MX_ERR_STORE, "thread index: corrupt "
				    "entry (%zu bytes)", k->mv_size);
	if (mx_store_msg_get(t, mx_get_be64((const uint8_t *)k->mv_data + 8),
			     &m, &merr) != MX_OK)
		return MX_OK; /* an unreadable record: skipped, as by ls */
	/* Threads are per account, but a thread id is never shown for an
	 * account the caller may not use: those messages are left out. */
	if (!account_in(c->accounts, c->naccounts, m.account_id))
		goto out;
	rc = mx_store_msg_locs(t, m.id, &l, &nl, err);
	if (rc)
		goto out;
	for (size_t i = 0; i < nl; i++)
		flags |= l[i].flags;
	rc = cand_add(&c->v, &c->n, &c->cap, &c->text, sort_date(&m), &m, l,
		      nl, flags, attachments(&m), err);
out:
	mx_locs_free(l, nl);
	mx_msg_free(&m);
	return rc;
}

int mx_thread_get_json(struct mx_store *st, uint64_t thread,
		       const uint32_t *accounts, size_t naccounts,
		       json_t **msgs_r, struct mx_error *err)
{
	struct thread_ctx c = {accounts, naccounts, NULL, 0, 0, {0}};
	struct mx_txn t;
	uint8_t pre[8];
	int rc;

	mx_error_clear(err);
	*msgs_r = NULL;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	mx_put_be64(pre, thread);
	rc = mx_store_walk(&t, MX_DB_THREADS, pre, 8, NULL, 0, 0,
			   "thread index", thread_fn, &c, err);
	mx_txn_abort(&t);
	if (rc == MX_OK && c.n == 0)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "no thread %" PRIu64,
				  thread);
	if (rc == MX_OK) {
		char *text;
		size_t len;

		/* Oldest first: cand_cmp's order backwards. */
		qsort(c.v, c.n, sizeof(*c.v), cand_cmp);
		rc = cands_array(c.v, c.n, true, &c.text, &text, &len, err);
		if (rc == MX_OK)
			rc = array_json(text, len, msgs_r, err);
		free(text);
	}
	mx_buf_free(&c.text);
	free(c.v);
	return rc;
}

void mx_msg_cursor_str(const struct mx_msg_cursor *c, char out[48])
{
	snprintf(out, 48, "%" PRId64 ".%016" PRIx64, c->date, c->id);
}

bool mx_msg_cursor_parse(const char *s, struct mx_msg_cursor *c)
{
	const char *dot = strchr(s, '.');
	char num[24];
	bool neg = s[0] == '-';
	uint64_t d, id;
	size_t n;

	if (dot == NULL)
		return false;
	n = (size_t)(dot - s) - neg;
	if (n == 0 || n >= sizeof(num))
		return false;
	memcpy(num, s + neg, n);
	num[n] = '\0';
	if (mx_parse_u64(num, 0, INT64_MAX, &d) < 0 || strlen(dot + 1) != 16 ||
	    mx_msg_id_parse(dot + 1, &id) < 0)
		return false;
	c->date = neg ? -(int64_t)d : (int64_t)d;
	c->id = id;
	return true;
}
