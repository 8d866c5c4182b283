/* The outbox: putting mail in (enqueue, idempotency) and reply headers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "mime/mime.h"
#include "send/outbox_int.h"

/* ---- enqueue ---- */

struct enq_ctx {
	const struct mx_account *a;
	struct mx_compose *c;
	struct mx_compose_out *out;
	const char *idem_key;
	const struct mx_ob_idem *api_idem;
	bool bulk;
	FILE *spool;
	uint8_t sha[32];
	uint64_t id;
	bool existing;
};

/* A's backend when it sends mail itself (the Gmail API mode), else NULL:
 * then personal mail goes through SMTP. */
const struct mx_backend_ops *sending_backend(const struct mx_account *a)
{
	const struct mx_backend_ops *be = mx_backend_for_account(a);

	return be && (be->caps & MX_CAP_SEND) && be->send ? be : NULL;
}

size_t idem_key(uint8_t *k, uint32_t account, const char *key)
{
	size_t n = strlen(key);

	mx_put_be32(k, account);
	memcpy(k + 4, key, n);
	return 4 + n;
}

static int idem_find(struct mx_txn *t, uint32_t account, const char *key,
		     uint64_t *id_r, struct mx_error *err)
{
	uint8_t k[4 + 256];
	MDB_val v;
	int rc;

	rc = mx_db_get(t, MX_DB_OUTBOX_KEYS, k, idem_key(k, account, key), &v,
		       err);
	if (rc)
		return rc;
	if (v.mv_size != 8)
		return mx_error_set(err, MX_ERR_STORE, "corrupt outbox key");
	*id_r = mx_get_be64(v.mv_data);
	return MX_OK;
}

static int enq_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct enq_ctx *q = ctx;
	struct mx_ob_entry e = {0};
	uint8_t k[4 + 256], idbe[8];
	void *dst;
	int rc;

	q->existing = false;
	if (q->api_idem) {
		rc = api_idem_lookup(t, q->api_idem, mx_wall_s(), &q->id, err);
		if (rc == MX_OK) {
			q->existing = true;
			return MX_OK;
		}
		if (rc != MX_ERR_NOTFOUND)
			return rc;
	}
	if (q->idem_key) {
		rc = idem_find(t, q->a->id, q->idem_key, &q->id, err);
		if (rc == MX_OK) {
			q->existing = true;
			return MX_OK;
		}
		if (rc != MX_ERR_NOTFOUND)
			return rc;
	}
	rc = mx_db_next_id(t, "next_outbox", &q->id, err);
	if (rc)
		return rc;
	/* The bytes go straight from the spool file into the store. */
	rc = mx_store_blob_reserve(t, q->sha, q->out->size, &dst, err);
	if (rc)
		return rc;
	if (dst) {
		size_t got = 0;

		rewind(q->spool);
		while (got < q->out->size) {
			size_t r = fread((char *)dst + got, 1,
					 q->out->size - got, q->spool);

			if (r == 0)
				return mx_error_set(err, MX_ERR_IO, "reading "
						    "the composed message: %s",
						    strerror(errno));
			got += r;
		}
	}
	e.id = q->id;
	e.account_id = q->a->id;
	e.state = MX_OB_QUEUED;
	e.bulk = q->bulk;
	e.relay = q->bulk;
	e.message_id = q->out->message_id;
	e.from = (char *)(uintptr_t)q->c->from_addr;
	e.subject = (char *)(uintptr_t)q->c->subject;
	e.rcpts = q->out->rcpts;
	e.nrcpts = q->out->nrcpts;
	memcpy(e.sha256, q->sha, 32);
	e.size = q->out->size;
	e.idem_key = (char *)(uintptr_t)q->idem_key;
	e.thread = (char *)(uintptr_t)q->c->thread;
	e.created = e.next_attempt = mx_wall_s();
	rc = entry_put(t, &e, err);
	if (rc == MX_OK && q->idem_key) {
		mx_put_be64(idbe, q->id);
		rc = mx_db_put(t, MX_DB_OUTBOX_KEYS, k,
			       idem_key(k, q->a->id, q->idem_key), idbe, 8, 0,
			       err);
	}
	if (rc == MX_OK && q->api_idem)
		rc = api_idem_put(t, q->api_idem, q->id, e.created, err);
	if (rc == MX_OK) {
		json_t *x = json_object();

		json_object_set_new(x, "rcpts", json_integer((json_int_t)e.nrcpts));
		json_object_set_new(x, "bulk", json_boolean(e.bulk));
		rc = entry_event(t, "message.queued", &e, x, err);
		json_decref(x);
	}
	return rc;
}

/* SHA-256 of the spool file, streamed. */
static int file_sha256(FILE *f, uint8_t out[32], struct mx_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char buf[65536];
	size_t n;
	unsigned len = 32;
	int rc = MX_OK;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	rewind(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(md, buf, n);
	if (ferror(f))
		rc = mx_error_set(err, MX_ERR_IO, "reading the composed "
				  "message: %s", strerror(errno));
	EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
	return rc;
}

static int enqueue(struct mx_store *st, const struct mx_account *a,
		   struct mx_compose *c, const char *idem_key,
		   const struct mx_ob_idem *api_idem, bool bulk, uint64_t *id_r,
		   bool *existing_r, struct mx_error *err)
{
	struct mx_compose_out out = {0};
	struct enq_ctx q = {a, c, &out, idem_key, api_idem, bulk, NULL, {0},
			    0, false};
	struct mx_txn t;
	int rc;

	*existing_r = false;
	if (api_idem) {
		rc = mx_outbox_idem_find(st, api_idem, id_r, err);
		if (rc == MX_OK)
			*existing_r = true;
		if (rc != MX_ERR_NOTFOUND)
			return rc;
		mx_error_clear(err);
	}
	if (idem_key) {
		size_t n = strlen(idem_key);
		bool printable = n > 0 && n <= 200;

		for (size_t i = 0; printable && i < n; i++)
			printable = idem_key[i] > 0x20 && idem_key[i] < 0x7f;
		if (!printable)
			return mx_error_set(err, MX_ERR_INVAL, "idempotency key: "
					    "1 to 200 printable ASCII "
					    "characters, no spaces");
	}
	if (idem_key) {
		rc = mx_txn_begin(st, false, &t, err);
		if (rc)
			return rc;
		rc = idem_find(&t, a->id, idem_key, id_r, err);
		mx_txn_abort(&t);
		if (rc == MX_OK) {
			*existing_r = true;
			return MX_OK;
		}
		if (rc != MX_ERR_NOTFOUND)
			return rc;
		mx_error_clear(err);
	}
	c->from_addr = mx_account_from(a);
	if (c->from_addr == NULL)
		return mx_error_set(err, MX_ERR_CONFIG, "account %s has no "
				    "From address: set one with 'mxsync "
				    "account edit %s --email ADDR'", a->name,
				    a->name);
	if (c->from_name == NULL)
		c->from_name = a->display_name;
	c->max_attach_bytes = mx_account_max_attach(a);
	c->bulk = bulk;
	if (bulk && a->relay.host == NULL)
		return mx_error_set(err, MX_ERR_CONFIG, "bulk mail goes only "
				    "through a fallback relay, and account %s "
				    "has none (--relay URL)", a->name);
	if (!bulk && a->smtp.host == NULL && a->relay.host == NULL &&
	    !sending_backend(a))
		return mx_error_set(err, MX_ERR_CONFIG, "account %s has no "
				    "SMTP server (account edit --smtp URL)",
				    a->name);
	q.spool = tmpfile();
	if (q.spool == NULL)
		return mx_error_set(err, MX_ERR_IO, "temporary file for the "
				    "message: %s", strerror(errno));
	rc = mx_compose_write(c, q.spool, &out, err);
	if (rc == MX_OK && fflush(q.spool) != 0)
		rc = mx_error_set(err, MX_ERR_IO, "writing the message: %s",
				  strerror(errno));
	if (rc == MX_OK)
		rc = file_sha256(q.spool, q.sha, err);
	if (rc == MX_OK)
		rc = mx_store_write(st, enq_fn, &q, err);
	if (rc == MX_OK) {
		*id_r = q.id;
		*existing_r = q.existing;
	}
	fclose(q.spool);
	mx_compose_out_free(&out);
	return rc;
}

int mx_outbox_enqueue(struct mx_store *st, const struct mx_account *a,
		      struct mx_compose *c, const char *idem_key, bool bulk,
		      uint64_t *id_r, bool *existing_r, struct mx_error *err)
{
	return enqueue(st, a, c, idem_key, NULL, bulk, id_r, existing_r, err);
}

int mx_outbox_enqueue_idem(struct mx_store *st, const struct mx_account *a,
			   struct mx_compose *c, const struct mx_ob_idem *idem,
			   bool bulk, uint64_t *id_r, bool *existing_r,
			   struct mx_error *err)
{
	return enqueue(st, a, c, NULL, idem, bulk, id_r, existing_r, err);
}

/* ---- replies ---- */

static int live_append(const char *data, size_t len, void *ctx,
		       struct mx_error *err)
{
	if (mx_buf_append(ctx, data, len) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	return MX_OK;
}

/* The headers of API-mode message M (server id RID), which the store does
 * not keep, into M->p: read from the provider. */
static int live_headers(struct mx_store *st, struct mx_account *a,
			const char *rid, struct mx_msg *m, struct mx_error *err)
{
	const struct mx_backend_ops *be = NULL;
	struct mx_conn *conn = NULL;
	struct mx_parsed p;
	struct mx_buf raw = {0};
	int rc;

	rc = mx_backend_connect(st, a, &be, &conn, err);
	if (rc == MX_OK && be->fetch_live == NULL)
		rc = mx_error_set(err, MX_ERR_UNSUPPORTED, "%s cannot fetch "
				  "a message", be->title);
	if (rc == MX_OK)
		rc = be->fetch_live(conn, rid, live_append, &raw, err);
	if (conn)
		be->disconnect(&conn);
	if (rc == MX_OK)
		rc = mx_mime_parse(raw.data ? raw.data : "", raw.len, &p, err);
	mx_buf_free(&raw);
	if (rc) {
		mx_error_prefix(err, "message %s: API mode stores no "
				"Message-ID to reply to, and reading it from "
				"the server failed", rid);
		return rc;
	}
	mx_parsed_free(&m->p);
	m->p = p;
	return MX_OK;
}

int mx_outbox_reply_headers(struct mx_store *st, struct mx_account *a,
			    const char *ref, char **irt_r, char **refs_r,
			    char **subject_r, char **thread_r,
			    struct mx_error *err)
{
	struct mx_msg m = {0};
	struct mx_buf refs = {0};
	struct mx_txn t;
	uint64_t id = 0;
	char *rid = NULL, *thread = NULL;
	const char *subj;
	int rc;

	*irt_r = *refs_r = *subject_r = NULL;
	if (thread_r)
		*thread_r = NULL;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	if (strlen(ref) == 16 && strspn(ref, "0123456789abcdef") == 16) {
		uint8_t b[8];

		mx_unhex(ref, b, 8);
		id = mx_get_be64(b);
	} else {
		char *mid = mx_strndup(ref + (ref[0] == '<'),
				       strlen(ref) - (ref[0] == '<') -
					       (ref[0] == '<' &&
						ref[strlen(ref) - 1] == '>'));
		uint64_t *ids = NULL;
		size_t n = 0;

		if (mid == NULL)
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		else
			rc = mx_store_msgid_find(&t, a->id, mid, &ids, &n, err);
		free(mid);
		if (rc == MX_OK && n > 0)
			id = ids[0];
		free(ids);
	}
	if (rc == MX_OK && id == 0)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "no stored message %s "
				  "in account %s", ref, a->name);
	if (rc == MX_OK)
		rc = mx_store_msg_get(&t, id, &m, err);
	/* An API-mode message: its thread on the server, which Gmail needs
	 * to file the reply there (users.messages.send's threadId). */
	if (rc == MX_OK && m.account_id == a->id) {
		rc = mx_store_remote_get(&t, a->id, id, &rid, &thread, err);
		if (rc == MX_ERR_NOTFOUND)
			rc = MX_OK;
	}
	mx_txn_abort(&t);
	if (rc == MX_OK && m.account_id != a->id)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "message %s belongs to "
				  "another account", ref);
	if (rc == MX_OK && rid != NULL &&
	    (m.p.message_id == NULL || !*m.p.message_id))
		rc = live_headers(st, a, rid, &m, err);
	if (rc == MX_OK && (m.p.message_id == NULL || !*m.p.message_id))
		rc = mx_error_set(err, MX_ERR_INVAL, "message %s has no "
				  "Message-ID to reply to", ref);
	free(rid);
	if (rc) {
		free(thread);
		mx_msg_free(&m);
		return rc;
	}
	for (size_t i = 0; i < m.p.nreferences; i++)
		mx_buf_printf(&refs, "<%s> ", m.p.references[i]);
	mx_buf_printf(&refs, "<%s>", m.p.message_id);
	subj = m.p.subject ? m.p.subject : "";
	if (strncasecmp(subj, "re:", 3) == 0)
		*subject_r = strdup(subj);
	else if (asprintf(subject_r, "Re: %s", subj) < 0)
		*subject_r = NULL;
	if (asprintf(irt_r, "<%s>", m.p.message_id) < 0)
		*irt_r = NULL;
	*refs_r = mx_buf_steal(&refs);
	mx_msg_free(&m);
	if (*irt_r == NULL || *refs_r == NULL || *subject_r == NULL) {
		free(*irt_r);
		free(*refs_r);
		free(*subject_r);
		free(thread);
		*irt_r = *refs_r = *subject_r = NULL;
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	if (thread_r)
		*thread_r = thread;
	else
		free(thread);
	return MX_OK;
}
