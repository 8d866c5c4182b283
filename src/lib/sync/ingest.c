/*
 * One ingest path for every sync driver; see ingest.h.  Both drivers
 * commit through these functions inside their own write transactions, so
 * the invariants of doc/internals/sync.md (a message keeps its id, the
 * cursor moves with the messages) hold alike for IMAP and POP3.
 */
#include <stdlib.h>
#include <string.h>

#include "events/types.h"
#include "sync/ingest.h"

int mx_ingest_prepare(const char *raw, size_t len, uint8_t sha_r[32],
		      uint8_t identity_r[32], struct mx_parsed *parsed_r,
		      struct mx_error *err)
{
	mx_sha256(raw, len, sha_r);
	mx_mime_identity(raw, len, identity_r);
	return mx_mime_parse(raw, len, parsed_r, err);
}

int mx_ingest_prepare_meta(const char *remote_id, const char *from,
			   uint8_t sha_r[32], uint8_t identity_r[32],
			   struct mx_parsed *parsed_r, struct mx_error *err)
{
	struct mx_buf k = {0};

	memset(parsed_r, 0, sizeof(*parsed_r));
	parsed_r->date = -1;
	mx_sha256("", 0, sha_r);
	/* A prefix no header-block identity can produce by accident. */
	if (mx_buf_printf(&k, "remote-id\n%s", remote_id) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	mx_sha256(k.data, k.len, identity_r);
	mx_buf_free(&k);
	if (from == NULL)
		return MX_OK;
	parsed_r->from.v = calloc(1, sizeof(*parsed_r->from.v));
	if (parsed_r->from.v == NULL ||
	    (parsed_r->from.v[0].email = strdup(from)) == NULL) {
		mx_parsed_free(parsed_r);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	parsed_r->from.n = 1;
	return MX_OK;
}

int mx_ingest_find(struct mx_txn *t, uint32_t account_id,
		   const uint8_t identity[32], const uint8_t *sha,
		   uint64_t size, mx_ingest_match_cb *cb, void *ctx,
		   struct mx_error *err)
{
	uint64_t *ids = NULL;
	size_t n = 0;
	bool stop = false;
	int rc;

	rc = mx_store_identity_find(t, account_id, identity, &ids, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n && !stop; i++) {
		struct mx_msg m;
		bool same;

		if (mx_store_msg_get(t, ids[i], &m, NULL) != MX_OK)
			continue;
		same = sha ? memcmp(m.sha256, sha, 32) == 0 : m.size == size;
		mx_msg_free(&m);
		if (same)
			rc = cb(t, ids[i], ctx, &stop, err);
	}
	free(ids);
	return rc;
}

static int new_event(struct mx_txn *t, const struct mx_ingest_new *n,
		     const struct mx_msg *m, struct mx_error *err)
{
	struct mx_event_new e = {
		.uid = n->uid,
		.folder_name = n->folder_name,
		.uidl = n->drop_id,
		.remote_id = n->remote_id,
		.message_id = m->p.message_id,
		.thread = m->thread_id,
	};

	return mx_event_message_new(t, n->account_id, n->folder_id, m->id, &e,
				    err);
}

int mx_ingest_store(struct mx_txn *t, const struct mx_ingest_new *n,
		    uint64_t *id_r, struct mx_error *err)
{
	struct mx_msg m = {0};
	struct mx_loc l = {0};
	int rc;

	m.account_id = n->account_id;
	memcpy(m.sha256, n->sha, 32);
	memcpy(m.identity, n->identity, 32);
	m.size = n->len;
	m.internaldate = n->internaldate;
	m.added = mx_wall_s();
	/* The record borrows the parsed fields; not freed here. */
	m.p = *n->parsed;
	rc = mx_store_msg_add(t, &m, n->raw, err);
	if (rc)
		return rc;
	l.folder_id = n->folder_id;
	l.uid = n->uid;
	l.msg_id = m.id;
	l.modseq = n->modseq;
	l.flags = n->flags;
	l.keywords = (char *)(uintptr_t)n->keywords;
	rc = mx_store_loc_put(t, &l, err);
	if (rc == MX_OK)
		rc = new_event(t, n, &m, err);
	if (rc == MX_OK)
		*id_r = m.id;
	return rc;
}
