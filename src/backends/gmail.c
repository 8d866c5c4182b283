/*
 * The Gmail API backend (API mode): the change-log model over the Gmail
 * REST client (gmail_api.h).  What it reports of a message is what API
 * mode keeps: id, thread id, sender address, internal date, label ids.
 * Bodies are fetched live (fetch_live, format=raw) and never stored.
 *
 *  - connect: checks the access token with users.labels.list (1 quota
 *    unit); a refused token is MX_ERR_AUTH, which mx_backend_connect()
 *    answers with one refresh.
 *  - list: one folder, "All Mail" (MX_SU_ALL): Gmail's labels are not
 *    folders (a message has several), so they are kept per message (the
 *    location's keywords) and every message has one location.
 *  - changes(NULL): messages.list (500 a page) + metadata gets in batches
 *    of at most 100; the cursor is the highest historyId among the
 *    messages listed (Google's full-sync recipe).  changes(C):
 *    history.list from C, page by page; a message added or relabelled is
 *    fetched again (its whole current state), a deleted one reported
 *    removed; the cursor is the historyId the last page returned.
 *
 * Design: doc/internals/backends.md.
 */
#include <config.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "backends/gmail_conn.h"
#include "backends/gmail_send.h"

#define ALL_MAIL "All Mail"

char *mx_gmail_account_url(const struct mx_account *a)
{
	struct mx_buf b = {0};
	bool v6 = a->host && strchr(a->host, ':') != NULL;

	if (mx_buf_printf(&b, "%s://%s%s%s",
			  a->tls == MX_TLS_NONE ? "http" : "https",
			  v6 ? "[" : "", a->host ? a->host : "",
			  v6 ? "]" : "") < 0 ||
	    ((a->tls == MX_TLS_NONE ? a->port != 80 : a->port != 443) &&
	     mx_buf_printf(&b, ":%u", (unsigned)a->port) < 0)) {
		mx_buf_free(&b);
		return NULL;
	}
	return mx_buf_steal(&b);
}

static int get_token(void *ctx, bool force, char **token_r,
		     struct mx_error *err)
{
	struct mx_conn *c = ctx;

	*token_r = NULL;
	if (force || c->token == NULL)
		return mx_error_set(err, MX_ERR_AUTH,
				    "Google refused the access token (HTTP "
				    "401)");
	*token_r = strdup(c->token);
	if (*token_r == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	return MX_OK;
}

static void gm_disconnect(struct mx_conn **conn)
{
	struct mx_conn *c = *conn;

	if (c == NULL)
		return;
	mx_gmail_close(&c->g);
	if (c->token)
		memset(c->token, 0, strlen(c->token));
	free(c->token);
	free(c->base_url);
	free(c);
	*conn = NULL;
}

static int gm_connect(const struct mx_account *a, struct mx_conn **conn_r,
		      struct mx_error *err)
{
	struct mx_gmail_cfg cfg = {0};
	struct mx_gmail_label_list labels = {0};
	struct mx_conn *c;
	int rc;

	*conn_r = NULL;
	if (a->access_token == NULL)
		return mx_error_set(err, MX_ERR_AUTH,
				    "API mode needs OAuth2 (no access token)");
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	c->token = strdup(a->access_token);
	c->base_url = mx_gmail_account_url(a);
	if (c->token == NULL || c->base_url == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	cfg.base_url = c->base_url;
	cfg.ca_file = a->ca_file;
	cfg.timeout_s = a->timeout_s;
	cfg.get_token = get_token;
	cfg.token_ctx = c;
	cfg.cancel = &c->cancel;
	rc = mx_gmail_open(&cfg, &c->g, err);
	if (rc)
		goto out;
	/* The cheapest call that proves the token and the scope to read. */
	rc = mx_gmail_labels_list(c->g, &labels, err);
	mx_gmail_label_list_free(&labels);
out:
	if (rc)
		gm_disconnect(&c);
	*conn_r = c;
	return rc;
}

static unsigned gm_server_caps(struct mx_conn *conn)
{
	(void)conn;
	return MX_CAP_LABELS;
}

static int gm_list(struct mx_conn *conn, struct mx_remote_folder **v_r,
		   size_t *n_r, struct mx_error *err)
{
	struct mx_remote_folder *v = calloc(1, sizeof(*v));

	(void)conn;
	*v_r = NULL;
	*n_r = 0;
	if (v == NULL || (v->name = strdup(ALL_MAIL)) == NULL ||
	    (v->wire = strdup(ALL_MAIL)) == NULL) {
		mx_remote_folders_free(v, v ? 1 : 0);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	v->delim = '/';
	v->special = MX_SU_ALL;
	*v_r = v;
	*n_r = 1;
	return MX_OK;
}

/* ---- changes ---- */

/* The changes of one batch being built: their strings live in BUF-like
 * owned arrays until the callback has run. */
struct chg_batch {
	struct mx_change v[MX_GMAIL_LIST_MAX];
	char *labels[MX_GMAIL_LIST_MAX]; /* owned */
	char *from[MX_GMAIL_LIST_MAX];   /* owned */
	char id[MX_GMAIL_LIST_MAX][MX_GMAIL_ID_MAX + 1];
	char thread[MX_GMAIL_LIST_MAX][MX_GMAIL_ID_MAX + 1];
	size_t n;
};

static void batch_reset(struct chg_batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		free(b->labels[i]);
		free(b->from[i]);
		b->labels[i] = b->from[i] = NULL;
	}
	b->n = 0;
}

static int batch_add_removed(struct chg_batch *b, const char *id)
{
	struct mx_change *ch = &b->v[b->n];

	memset(ch, 0, sizeof(*ch));
	snprintf(b->id[b->n], sizeof(b->id[0]), "%s", id);
	ch->removed = true;
	ch->id = b->id[b->n];
	ch->thread = "";
	ch->labels = "";
	b->n++;
	return MX_OK;
}

static int batch_add_msg(struct chg_batch *b, const struct mx_gmail_msg *m,
			 struct mx_error *err)
{
	struct mx_change *ch = &b->v[b->n];
	struct mx_buf lb = {0};

	memset(ch, 0, sizeof(*ch));
	for (size_t i = 0; i < m->labels.n; i++)
		if (mx_buf_printf(&lb, "%s%s", i ? " " : "",
				  m->labels.v[i]) < 0) {
			mx_buf_free(&lb);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
	b->labels[b->n] = lb.data ? mx_buf_steal(&lb) : strdup("");
	b->from[b->n] = m->from ? strdup(m->from) : NULL;
	if (b->labels[b->n] == NULL || (m->from && b->from[b->n] == NULL)) {
		b->n++; /* batch_reset() frees what was allocated */
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	snprintf(b->id[b->n], sizeof(b->id[0]), "%s", m->id);
	snprintf(b->thread[b->n], sizeof(b->thread[0]), "%s", m->thread_id);
	ch->id = b->id[b->n];
	ch->thread = b->thread[b->n];
	ch->from = b->from[b->n];
	ch->labels = b->labels[b->n];
	/* internalDate is milliseconds; the store keeps seconds. */
	ch->date = m->internal_date_ms / 1000;
	b->n++;
	return MX_OK;
}

/*
 * Fetches the metadata of the N ids at IDS (at most MX_GMAIL_BATCH_MAX)
 * into B, in one batch request (the client asks again, in a smaller
 * batch, for the items refused with a rate limit or a 5xx): a message
 * that is gone meanwhile is reported removed (it will not come back:
 * Gmail ids are never reused); an item still refused or not decodable
 * fails the whole batch before anything of it is handed over, so the
 * store does not change.  *MAXH_R is raised to the highest historyId
 * seen.
 */
static int fetch_meta(struct mx_conn *c, const char *const *ids, size_t n,
		      struct chg_batch *b, uint64_t *maxh_r,
		      struct mx_error *err)
{
	struct mx_gmail_batch_item items[MX_GMAIL_BATCH_MAX];
	int rc;

	memset(items, 0, sizeof(items));
	rc = mx_gmail_message_get_batch(c->g, ids, n, items, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && rc == MX_OK; i++) {
		struct mx_gmail_batch_item *it = &items[i];

		if (it->rc == MX_ERR_NOTFOUND) {
			rc = batch_add_removed(b, ids[i]);
		} else if (it->rc) {
			if (err) {
				*err = it->err;
				mx_error_prefix(err, "message %s", ids[i]);
			}
			rc = it->rc;
		} else {
			if (it->msg.history_id > *maxh_r)
				*maxh_r = it->msg.history_id;
			rc = batch_add_msg(b, &it->msg, err);
		}
	}
	mx_gmail_batch_free(items, n);
	return rc;
}

/* Fetches the ids at IDS (N) in batches of MX_GMAIL_BATCH_MAX into B,
 * handing each batch (with what B held before) to CB: the caller commits
 * every hundred messages, so an interruption loses little. */
static int fetch_all(struct mx_conn *c, const char *const *ids, size_t n,
		     struct chg_batch *b, uint64_t *maxh_r, mx_changes_cb *cb,
		     void *ctx, struct mx_error *err)
{
	for (size_t i = 0; i < n; i += MX_GMAIL_BATCH_MAX) {
		size_t k = n - i < MX_GMAIL_BATCH_MAX ? n - i
						      : MX_GMAIL_BATCH_MAX;
		int rc = fetch_meta(c, ids + i, k, b, maxh_r, err);

		if (rc == MX_OK && b->n)
			rc = cb(b->v, b->n, ctx, err);
		batch_reset(b);
		if (rc)
			return rc;
	}
	return MX_OK;
}

static char *cursor_str(uint64_t h)
{
	char *s = NULL;

	if (h == 0)
		return NULL;
	if (asprintf(&s, "%" PRIu64, h) < 0)
		return NULL;
	return s;
}

static int full_listing(struct mx_conn *c, mx_changes_cb *cb, void *ctx,
			char **next_r, struct mx_error *err)
{
	struct mx_gmail_pager pager = {0};
	struct mx_gmail_list_page page = {0};
	struct chg_batch *b = calloc(1, sizeof(*b));
	const char *ids[MX_GMAIL_LIST_MAX];
	char *token = NULL;
	uint64_t maxh = 0;
	int rc = MX_OK;

	if (b == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	for (;;) {
		rc = mx_gmail_messages_list(c->g, token, MX_GMAIL_LIST_MAX,
					    NULL, 0, &page, err);
		if (rc)
			break;
		for (size_t i = 0; i < page.n; i++)
			ids[i] = page.v[i].id;
		rc = fetch_all(c, ids, page.n, b, &maxh, cb, ctx, err);
		if (rc)
			break;
		free(token);
		token = page.next_page_token;
		page.next_page_token = NULL;
		mx_gmail_list_page_free(&page);
		if (token == NULL)
			break;
		rc = mx_gmail_pager_next(&pager, "users.messages.list", token,
					 err);
		if (rc)
			break;
	}
	mx_gmail_list_page_free(&page);
	mx_gmail_pager_free(&pager);
	free(token);
	free(b);
	if (rc == MX_OK)
		*next_r = cursor_str(maxh);
	return rc;
}

static bool seen_id(const char *const *v, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], id) == 0)
			return true;
	return false;
}

/* One history page: every message it names once, in the order first
 * named; a deletion anywhere in the page wins (ids are not reused). */
static int history_page(struct mx_conn *c,
			const struct mx_gmail_history_page *p,
			struct chg_batch *b, mx_changes_cb *cb, void *ctx,
			struct mx_error *err)
{
	const char **upd = NULL, **del = NULL;
	size_t nupd = 0, ndel = 0;
	uint64_t maxh = 0;
	int rc = MX_OK;

	upd = calloc(p->n + 1, sizeof(*upd));
	del = calloc(p->n + 1, sizeof(*del));
	if (upd == NULL || del == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].kind == MX_GMAIL_DELETED &&
		    !seen_id(del, ndel, p->v[i].msg.id))
			del[ndel++] = p->v[i].msg.id;
	for (size_t i = 0; i < p->n; i++)
		if (p->v[i].kind != MX_GMAIL_DELETED &&
		    !seen_id(del, ndel, p->v[i].msg.id) &&
		    !seen_id(upd, nupd, p->v[i].msg.id))
			upd[nupd++] = p->v[i].msg.id;
	for (size_t i = 0; i < ndel && rc == MX_OK; i++)
		rc = batch_add_removed(b, del[i]);
	if (rc == MX_OK && nupd)
		rc = fetch_all(c, upd, nupd, b, &maxh, cb, ctx, err);
	else if (rc == MX_OK && b->n)
		rc = cb(b->v, b->n, ctx, err);
	batch_reset(b);
out:
	free(upd);
	free(del);
	return rc;
}

static int incremental(struct mx_conn *c, const char *cursor,
		       mx_changes_cb *cb, void *ctx, char **next_r,
		       struct mx_error *err)
{
	struct mx_gmail_pager pager = {0};
	struct mx_gmail_history_page page = {0};
	struct chg_batch *b;
	char *token = NULL, *end;
	uint64_t start, last = 0;
	int rc = MX_OK;

	start = strtoull(cursor, &end, 10);
	if (*cursor < '0' || *cursor > '9' || *end != '\0' || start == 0)
		return mx_error_set(err, MX_ERR_EXPIRED,
				    "stored history id '%s' is not a number",
				    cursor);
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	for (;;) {
		rc = mx_gmail_history_list(c->g, start, token, 0, &page, err);
		if (rc)
			break;
		/* A page of many records may name more messages than one
		 * batch holds: hand them over in slices. */
		for (size_t off = 0; off < page.n && rc == MX_OK;
		     off += MX_GMAIL_LIST_MAX / 2) {
			struct mx_gmail_history_page slice = page;

			slice.v = page.v + off;
			slice.n = page.n - off < MX_GMAIL_LIST_MAX / 2
					  ? page.n - off
					  : MX_GMAIL_LIST_MAX / 2;
			rc = history_page(c, &slice, b, cb, ctx, err);
		}
		if (rc)
			break;
		last = page.history_id;
		free(token);
		token = page.next_page_token;
		page.next_page_token = NULL;
		mx_gmail_history_page_free(&page);
		if (token == NULL)
			break;
		rc = mx_gmail_pager_next(&pager, "users.history.list", token,
					 err);
		if (rc)
			break;
	}
	mx_gmail_history_page_free(&page);
	mx_gmail_pager_free(&pager);
	free(token);
	free(b);
	if (rc == MX_OK)
		*next_r = cursor_str(last ? last : start);
	return rc;
}

static int gm_changes(struct mx_conn *c, const char *cursor,
		      mx_changes_cb *cb, void *ctx, char **next_r,
		      struct mx_error *err)
{
	*next_r = NULL;
	if (cursor == NULL)
		return full_listing(c, cb, ctx, next_r, err);
	return incremental(c, cursor, cb, ctx, next_r, err);
}

static int gm_fetch_live(struct mx_conn *c, const char *id, mx_data_cb *cb,
			 void *ctx, struct mx_error *err)
{
	struct mx_buf raw = {0};
	int rc;

	if (!mx_gmail_id_valid(id))
		return mx_error_set(err, MX_ERR_INVAL, "bad Gmail message id");
	rc = mx_gmail_message_get_raw(c->g, id, &raw, err);
	if (rc == MX_OK)
		rc = cb(raw.data ? raw.data : "", raw.len, ctx, err);
	mx_buf_free(&raw);
	return rc;
}

/* \Seen is the absence of UNREAD, \Flagged the STARRED label
 * (users.messages.modify, gmail.modify scope). */
static int gm_store_flags_id(struct mx_conn *c, const char *id, uint32_t add,
			     uint32_t remove, struct mx_error *err)
{
	const char *ladd[2], *lrem[2];
	size_t nadd = 0, nrem = 0;

	if (((add | remove) & ~(MX_FL_SEEN | MX_FL_FLAGGED)) != 0)
		return mx_error_set(err, MX_ERR_UNSUPPORTED, "Gmail API mode "
				    "keeps only \\Seen and \\Flagged");
	if (!mx_gmail_id_valid(id))
		return mx_error_set(err, MX_ERR_INVAL, "bad Gmail message id");
	if (add & MX_FL_SEEN)
		lrem[nrem++] = "UNREAD";
	if (remove & MX_FL_SEEN)
		ladd[nadd++] = "UNREAD";
	if (add & MX_FL_FLAGGED)
		ladd[nadd++] = "STARRED";
	if (remove & MX_FL_FLAGGED)
		lrem[nrem++] = "STARRED";
	return mx_gmail_message_modify(c->g, id, ladd, nadd, lrem, nrem, err);
}

/* The outbox's sending through users.messages.send (gmail_send.c). */
static int gm_send(struct mx_conn *c, const char *raw, size_t len,
		   const char *const *rcpts, size_t nrcpts, const char *thread,
		   char **id_r, bool *maybe_sent_r, struct mx_error *err)
{
	return mx_gmail_send_envelope(c->g, raw, len, rcpts, nrcpts, thread,
				      id_r, maybe_sent_r, err);
}

const struct mx_backend_ops mx_backend_gmail = {
	.name = "gmail",
	.title = "Gmail API",
	.proto = MX_PROTO_GMAIL,
	.caps = MX_CAP_LABELS | MX_CAP_MODEL_CHANGES | MX_CAP_FETCH_LIVE |
		MX_CAP_TWO_WAY_FLAGS | MX_CAP_FLAGS_BY_ID | MX_CAP_SEND,
	.description = "message id, thread, sender, date and labels only; "
		       "bodies fetched live; history polled",
	.mode_new_mail = "users.history.list every api_poll_interval "
			 "(default 30 s)",
	.mode_folders = "one folder, All Mail; labels per message",
	.mode_stored = "message id, thread id, sender, date, label ids only",
	.mode_offline = "sender, date and labels; no body (fetched live)",
	.mode_limits = "quota units: 15000/min per user (list/get 5, "
		       "history 2, send 100)",
	.connect = gm_connect,
	.disconnect = gm_disconnect,
	.server_caps = gm_server_caps,
	.list = gm_list,
	.changes = gm_changes,
	.fetch_live = gm_fetch_live,
	.store_flags_id = gm_store_flags_id,
	.send = gm_send,
};
