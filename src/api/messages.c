/*
 * /v1/messages...: listing with filters and cursor pagination, one
 * message's record and its raw bytes; /v1/threads/{id}.  The reads are the library's
 * (src/lib/sync/query.h); a message of an account the caller may not use
 * is 404 and never listed.
 */
#include <string.h>

#include "api/api_int.h"
#include "mime/mime.h"
#include "sync/query.h"
#include "sync/sync.h"

#define LIMIT_DEFAULT 50
#define LIMIT_MAX 500

/* A text filter: at most MAX bytes. */
static bool text_param(struct api_req *r, const char *name, size_t max,
		       const char **v)
{
	*v = api_query(r, name);
	if (*v && (**v == '\0' || strlen(*v) > max)) {
		api_bad_param(r, name, "'%s' must be 1 to %zu bytes.", name, max);
		return false;
	}
	return true;
}

void api_messages_list(struct api_req *r)
{
	struct mx_msg_filter f = {.unread = -1, .flagged = -1};
	struct mx_msg_cursor after, next = {0, 0};
	struct mx_error err;
	uint64_t account = 0, folder = 0, thread = 0, limit = LIMIT_DEFAULT;
	uint32_t *ids = NULL;
	size_t nids = 0;
	const char *cur = api_query(r, "cursor");
	char cs[48], *msgs, *body;
	size_t len;
	bool more;

	if (!api_q_u64(r, "account", 1, UINT32_MAX, &account) ||
	    !api_q_u64(r, "folder", 1, UINT32_MAX, &folder) ||
	    !api_q_u64(r, "thread", 1, UINT64_MAX, &thread) ||
	    !api_q_u64(r, "limit", 1, LIMIT_MAX, &limit) ||
	    !api_q_bool(r, "unread", &f.unread) ||
	    !api_q_bool(r, "flagged", &f.flagged) ||
	    !text_param(r, "from", 320, &f.from) ||
	    !text_param(r, "to", 320, &f.to) ||
	    !text_param(r, "subject", 256, &f.subject) ||
	    !api_q_time(r, "since", &f.since, &f.has_since) ||
	    !api_q_time(r, "until", &f.until, &f.has_until))
		return;
	if (cur && !mx_msg_cursor_parse(cur, &after)) {
		api_bad_param(r, "cursor", "'cursor' must be a next_cursor "
			      "value of an earlier page.");
		return;
	}
	if (!api_visible_accounts(r, &ids, &nids))
		return;
	if (account) {
		bool ok = false;

		for (size_t i = 0; i < nids; i++)
			ok |= ids[i] == account;
		/* An account the caller may not use lists nothing, as one
		 * that does not exist. */
		ids[0] = (uint32_t)account;
		nids = ok ? 1 : 0;
	}
	f.accounts = ids;
	f.naccounts = nids;
	f.folder = (uint32_t)folder;
	f.thread = thread;
	if (mx_msg_query_text(r->api->st, &f, cur ? &after : NULL,
			      (size_t)limit, &msgs, &len, &more, &next,
			      &err) != MX_OK) {
		free(ids);
		api_fail(r, &err);
		return;
	}
	free(ids);
	/* The page comes as JSON text (no jansson values: they cost most of
	 * a page); the cursor is digits, a dot and hex digits. */
	mx_msg_cursor_str(&next, cs);
	if (asprintf(&body, "{\"messages\":%s,\"next_cursor\":%s%s%s}", msgs,
		     more ? "\"" : "", more ? cs : "null", more ? "\"" : "") < 0)
		body = NULL;
	free(msgs);
	api_reply_json_text(r, 200, body);
}

void api_message_get(struct api_req *r)
{
	struct mx_error err;
	uint32_t *ids = NULL;
	size_t nids = 0;
	json_t *m;
	int rc;

	if (!api_visible_accounts(r, &ids, &nids))
		return;
	rc = mx_msg_get_json(r->api->st, r->id, ids, nids, &m, &err);
	free(ids);
	if (rc)
		api_fail(r, &err);
	else
		api_reply_json(r, 200, m);
}

/* A thread's messages, oldest first: only those of accounts the caller
 * may use (none: 404, as for a thread that does not exist). */
void api_thread_get(struct api_req *r)
{
	struct mx_error err;
	uint32_t *ids = NULL;
	size_t nids = 0;
	json_t *msgs;
	int rc;

	if (!api_visible_accounts(r, &ids, &nids))
		return;
	rc = mx_thread_get_json(r->api->st, r->id, ids, nids, &msgs, &err);
	free(ids);
	if (rc)
		api_fail(r, &err);
	else
		api_reply_json(r, 200, json_pack("{s:I,s:o}", "thread",
						 (json_int_t)r->id, "messages",
						 msgs));
}

/* The raw bytes, streamed straight from the LMDB map: the read
 * transaction stays open until the response is done. */
struct raw_stream {
	struct mx_txn t;
	const char *data;
	size_t len;
};

static ssize_t raw_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct raw_stream *s = cls;
	size_t n;

	if (pos >= s->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = s->len - (size_t)pos < max ? s->len - (size_t)pos : max;
	memcpy(buf, s->data + pos, n);
	return (ssize_t)n;
}

static void raw_free(void *cls)
{
	struct raw_stream *s = cls;

	mx_txn_abort(&s->t);
	free(s);
}

void api_message_raw(struct api_req *r)
{
	struct raw_stream *s;
	struct mx_error err;
	struct mx_msg m;
	uint32_t *ids = NULL;
	size_t nids = 0;
	char idstr[17], *rid = NULL;
	bool visible = false;
	int rc;

	if (!api_visible_accounts(r, &ids, &nids))
		return;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		free(ids);
		api_error(r, 500, "internal", NULL, "Out of memory.");
		return;
	}
	rc = mx_txn_begin(r->api->st, false, &s->t, &err);
	if (rc) {
		free(ids);
		free(s);
		api_fail(r, &err);
		return;
	}
	rc = mx_store_msg_get(&s->t, r->id, &m, &err);
	if (rc == MX_OK) {
		for (size_t i = 0; i < nids; i++)
			visible |= ids[i] == m.account_id;
		if (!visible)
			rc = mx_error_set(&err, MX_ERR_NOTFOUND, NULL);
		else if (mx_changes_remote_id(&s->t, m.account_id, m.id, &rid,
					      NULL) == MX_OK) {
			/* API mode: no stored body; the library fetches it
			 * from the provider. */
			char *data = NULL;
			size_t len = 0;

			free(rid);
			mx_msg_free(&m);
			mx_txn_abort(&s->t);
			free(s);
			free(ids);
			mx_msg_id_str(r->id, idstr);
			if (mx_message_raw(r->api->st, idstr, &data, &len, &err) != MX_OK) {
				api_fail(r, &err);
				return;
			}
			r->status = 200;
			r->resp = MHD_create_response_from_buffer(
				len, data, MHD_RESPMEM_MUST_FREE);
			api_header(r, "Content-Type", "message/rfc822");
			return;
		} else {
			rc = mx_store_blob_get(&s->t, m.sha256, &s->data, &s->len,
					       &err);
		}
		mx_msg_free(&m);
	}
	free(ids);
	if (rc) {
		mx_txn_abort(&s->t);
		free(s);
		api_fail(r, &err);
		return;
	}
	r->status = 200;
	r->resp = MHD_create_response_from_callback(s->len, 64 * 1024, raw_read,
						    s, raw_free);
	if (r->resp == NULL) {
		raw_free(s);
		api_error(r, 500, "internal", NULL, "Out of memory.");
		return;
	}
	api_header(r, "Content-Type", "message/rfc822");
}

/* Whether S is a MIME token (type/subtype, charset) safe in a header. */
static bool mime_token(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 127)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("!#$&^_.+-/", *s)))
			return false;
	return true;
}

/* One part of a message, decoded (the body is copied out of the map and
 * decoded in one buffer); API-mode messages have no stored body: 409. */
void api_message_part(struct api_req *r)
{
	const char *pid = r->pv[1];
	const struct mx_part *p = NULL;
	struct mx_error err;
	struct mx_txn t;
	struct mx_msg m;
	uint32_t *ids = NULL;
	size_t nids = 0, blen = 0, len = 0;
	const char *body;
	char *data = NULL, *rid = NULL, *disp = NULL, ctype[160];
	bool visible = false, have_msg = false;
	int rc;

	if (!mx_api_part_id_ok(pid)) {
		api_error(r, 400, "invalid_id", json_pack("{s:s}", "part", pid),
			  "A part id is digits and dots, as a message's "
			  "parts[].part (\"2\", \"1.2\").");
		return;
	}
	if (!api_visible_accounts(r, &ids, &nids))
		return;
	rc = mx_txn_begin(r->api->st, false, &t, &err);
	if (rc) {
		free(ids);
		api_fail(r, &err);
		return;
	}
	rc = mx_store_msg_get(&t, r->id, &m, &err);
	have_msg = rc == MX_OK;
	for (size_t i = 0; rc == MX_OK && i < nids; i++)
		visible |= ids[i] == m.account_id;
	free(ids);
	if (rc == MX_OK && !visible)
		rc = mx_error_set(&err, MX_ERR_NOTFOUND, "no message");
	for (size_t i = 0; rc == MX_OK && i < m.p.nparts && p == NULL; i++)
		if (m.p.parts[i].part_id && strcmp(m.p.parts[i].part_id, pid) == 0)
			p = &m.p.parts[i];
	if (rc == MX_OK && p == NULL)
		rc = mx_error_set(&err, MX_ERR_NOTFOUND, "the message has no "
				  "part %s", pid);
	if (rc == MX_OK && mx_changes_remote_id(&t, m.account_id, m.id, &rid,
						NULL) == MX_OK) {
		free(rid);
		mx_txn_abort(&t);
		mx_msg_free(&m);
		api_error(r, 409, "body_not_stored", NULL,
			  "The message's account is in API mode: its body is "
			  "not stored; fetch it whole from /raw.");
		return;
	}
	if (rc == MX_OK)
		rc = mx_store_blob_get(&t, m.sha256, &body, &blen, &err);
	if (rc == MX_OK)
		rc = mx_mime_part(body, blen, pid, &data, &len, &err);
	mx_txn_abort(&t);
	if (rc) {
		if (have_msg)
			mx_msg_free(&m);
		api_fail(r, &err);
		return;
	}
	if (!mime_token(p->content_type))
		snprintf(ctype, sizeof(ctype), "application/octet-stream");
	else if (mime_token(p->charset) && strncmp(p->content_type, "text/", 5) == 0)
		snprintf(ctype, sizeof(ctype), "%s; charset=%s", p->content_type,
			 p->charset);
	else
		snprintf(ctype, sizeof(ctype), "%s", p->content_type);
	disp = mx_api_disposition(p->filename);
	mx_msg_free(&m);
	r->status = 200;
	r->resp = MHD_create_response_from_buffer(len, data,
						  MHD_RESPMEM_MUST_FREE);
	if (r->resp == NULL || disp == NULL) {
		if (r->resp == NULL)
			free(data);
		free(disp);
		api_error(r, 500, "internal", NULL, "Out of memory.");
		return;
	}
	api_header(r, "Content-Type", ctype);
	api_header(r, "Content-Disposition", disp);
	free(disp);
}

/* ---- writes: PATCH (flags), move, DELETE ---- */

/* Message R->id's record when the caller may use its account (else 404
 * answered, NULL): every write checks this before it changes anything. */
static json_t *msg_visible(struct api_req *r)
{
	struct mx_error err;
	uint32_t *ids = NULL;
	size_t nids = 0;
	json_t *m = NULL;

	if (!api_visible_accounts(r, &ids, &nids))
		return NULL;
	if (mx_msg_get_json(r->api->st, r->id, ids, nids, &m, &err) != MX_OK) {
		api_fail(r, &err);
		m = NULL;
	}
	free(ids);
	return m;
}

/* Answers 200 with message R->id as it is now.  When the write took it
 * out of the store (moved to a folder the store does not follow), BEFORE
 * (stolen) with no locations is what the client gets. */
static void reply_msg(struct api_req *r, json_t *before)
{
	struct mx_error err;
	uint32_t *ids = NULL;
	size_t nids = 0;
	json_t *m;
	int rc;

	if (!api_visible_accounts(r, &ids, &nids)) {
		json_decref(before);
		return;
	}
	rc = mx_msg_get_json(r->api->st, r->id, ids, nids, &m, &err);
	free(ids);
	if (rc == MX_ERR_NOTFOUND) {
		json_object_set_new(before, "locations", json_array());
		api_reply_json(r, 200, before);
		return;
	}
	json_decref(before);
	if (rc)
		api_fail(r, &err);
	else
		api_reply_json(r, 200, m);
}

static const char *const patch_fields[] = {"seen", "flagged", NULL};

void api_message_patch(struct api_req *r)
{
	struct mx_error err;
	uint32_t add = 0, remove = 0;
	json_t *body = NULL, *m;
	int seen = -1, flagged = -1;

	if (!api_body_json(r, &body))
		return;
	if (!api_fields_check(r, body, patch_fields, NULL) ||
	    !api_j_bool(r, body, "seen", false, &seen) ||
	    !api_j_bool(r, body, "flagged", false, &flagged)) {
		json_decref(body);
		return;
	}
	json_decref(body);
	if (seen < 0 && flagged < 0) {
		api_error(r, 400, "missing_field",
			  json_pack("{s:s}", "field", "seen"),
			  "Nothing to change: give 'seen' or 'flagged' (or "
			  "both).");
		return;
	}
	if ((m = msg_visible(r)) == NULL)
		return;
	if (seen >= 0)
		*(seen ? &add : &remove) |= MX_FL_SEEN;
	if (flagged >= 0)
		*(flagged ? &add : &remove) |= MX_FL_FLAGGED;
	/* The server first, then the store (mx_message_flag). */
	if (mx_msg_flags(r->api->st, r->id, add, remove, &err) != MX_OK) {
		json_decref(m);
		api_fail(r, &err);
		return;
	}
	reply_msg(r, m);
}

static const char *const move_fields[] = {"folder", NULL};

void api_message_move(struct api_req *r)
{
	struct mx_error err;
	json_t *body = NULL, *f, *m;
	const char *name = NULL;
	uint64_t fid = 0;
	bool ok;
	int rc;

	if (!api_body_json(r, &body))
		return;
	f = json_object_get(body, "folder");
	if (!api_fields_check(r, body, move_fields, NULL)) {
		ok = false;
	} else if (f == NULL || json_is_string(f)) {
		ok = api_j_str(r, body, "folder", true, &name);
		if (ok && (*name == '\0' || strlen(name) > 1000)) {
			api_error(r, 400, "invalid_field",
				  json_pack("{s:s}", "field", "folder"),
				  "'folder' must be a folder name of 1 to "
				  "1000 bytes or a folder id.");
			ok = false;
		}
	} else if (json_is_integer(f)) {
		ok = api_j_u64(r, body, "folder", true, 1, UINT32_MAX, &fid,
			       NULL);
	} else {
		api_error(r, 400, "invalid_field",
			  json_pack("{s:s}", "field", "folder"),
			  "'folder' must be a folder id (an integer) or a "
			  "folder name (a string).");
		ok = false;
	}
	if (!ok || (m = msg_visible(r)) == NULL) {
		json_decref(body);
		return;
	}
	rc = mx_msg_move(r->api->st, r->id, (uint32_t)fid, name, &err);
	json_decref(body); /* NAME was borrowed from it */
	if (rc == MX_ERR_INVAL) {
		json_decref(m);
		api_error(r, 422, "invalid_value",
			  json_pack("{s:s}", "field", "folder"), "%s.",
			  err.detail);
		return;
	}
	if (rc) {
		json_decref(m);
		api_fail(r, &err);
		return;
	}
	reply_msg(r, m);
}

void api_message_delete(struct api_req *r)
{
	struct mx_error err;
	int permanent = -1;
	json_t *m;

	if (!api_q_bool(r, "permanent", &permanent) ||
	    (m = msg_visible(r)) == NULL)
		return;
	json_decref(m);
	if (mx_msg_delete(r->api->st, r->id, permanent == 1, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	api_reply_no_content(r);
}
