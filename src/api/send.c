/*
 * POST /v1/send: queues a message in the outbox, as `mxsync send --json
 * --queue-only` does, and wakes the daemon's sender.  The body is the
 * document of `mxsync send --json` plus "account", either as
 * application/json (attachments inline in base64) or as
 * multipart/form-data (a part "message" holding that document, file
 * parts as attachments; src/api/multipart.c).  Everything is checked
 * before anything is stored: the shape here (400), the values by the
 * composer (422: addresses, header injection, sizes).  Attachments that
 * name a file on the server ("path") are refused: the API never reads
 * local files for a remote caller.
 *
 * Idempotency-Key (header, or "idempotency_key" in the document): per API
 * user, 24 h (src/lib/send/outbox_idem.c).  The digest that tells a
 * repeat from another request covers the document and every file part's
 * name, file name, type and content, not the multipart framing (clients
 * pick a new boundary for each try).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "account/account.h"
#include "api/api_int.h"
#include "api/multipart.h"
#include "send/outbox.h"

/* At most this many file parts besides the message (the composer's
 * attachment limit). */
#define MAX_PARTS (MX_COMPOSE_MAX_ATT + 1)

static const char *const send_fields[] = {
	"account", "to", "cc", "bcc", "subject", "text", "html",
	"attachments", "reply_to_message", "idempotency_key", "bulk", NULL};
static const char *const att_fields[] = {
	"filename", "content_type", "content_base64", "path", NULL};

struct send_req {
	json_t *doc;                /* owned */
	struct mx_api_part *parts;  /* owned, multipart only */
	size_t nparts;
	const struct mx_api_part *msg; /* the "message" part */
	uint64_t account;
	const char *idem;           /* header or document, may be NULL */
};

/* Whether content type CT is TYPE, parameters (a charset) aside. */
static bool type_is(const char *ct, const char *type)
{
	size_t n = strlen(type);

	return strncasecmp(ct, type, n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t');
}

/* The multipart form: one "message" part (JSON), the rest files. */
static bool from_multipart(struct api_req *r, const char *ct,
			   struct send_req *s)
{
	char b[71], msg[300];
	const char *body;
	json_error_t je;
	size_t len;

	if (!mx_api_multipart_boundary(ct, b)) {
		api_error(r, 400, "bad_request",
			  json_pack("{s:s}", "header", "Content-Type"),
			  "multipart/form-data needs exactly one boundary "
			  "parameter of 1 to 70 characters (RFC 2046).");
		return false;
	}
	body = api_body_raw(r, &len);
	if (!mx_api_multipart_parse(b, body, len, MAX_PARTS, &s->parts,
				    &s->nparts, msg, sizeof(msg))) {
		api_error(r, 400, "bad_request", NULL, "%s.", msg);
		return false;
	}
	for (size_t i = 0; i < s->nparts; i++) {
		const struct mx_api_part *p = &s->parts[i];

		/* With or without a file name: some clients upload the
		 * document as a file. */
		if (strcmp(p->name, "message") == 0) {
			if (s->msg) {
				api_error(r, 400, "bad_request", NULL,
					  "Only one part may be named "
					  "\"message\".");
				return false;
			}
			s->msg = p;
		} else if (p->filename == NULL) {
			api_error(r, 400, "unknown_field",
				  json_pack("{s:s}", "field", p->name),
				  "Part \"%s\" is not known: the form has a "
				  "\"message\" part and file parts (with a "
				  "filename).", p->name);
			return false;
		}
	}
	if (s->msg == NULL) {
		api_error(r, 400, "missing_field",
			  json_pack("{s:s}", "field", "message"),
			  "The form has no \"message\" part (the JSON "
			  "document of the message).");
		return false;
	}
	if (s->msg->content_type && !type_is(s->msg->content_type,
					     "application/json") &&
	    !type_is(s->msg->content_type, "text/plain")) {
		api_error(r, 415, "unsupported_media_type",
			  json_pack("{s:s}", "expected", "application/json"),
			  "The \"message\" part must be application/json.");
		return false;
	}
	s->doc = json_loadb(s->msg->data, s->msg->len, JSON_REJECT_DUPLICATES,
			    &je);
	if (s->doc == NULL) {
		api_error(r, 400, "bad_json",
			  json_pack("{s:i,s:i}", "line", je.line, "column",
				    je.column),
			  "The \"message\" part is not valid JSON: %s (line "
			  "%d, column %d).", je.text, je.line, je.column);
		return false;
	}
	if (!json_is_object(s->doc)) {
		api_error(r, 400, "bad_request", NULL,
			  "The \"message\" part must be a JSON object.");
		return false;
	}
	return true;
}

/* The shape of the document: field names and types (400). */
static bool check_doc(struct api_req *r, struct send_req *s)
{
	static const char *const addrs[] = {"to", "cc", "bcc"};
	static const char *const strs[] = {"subject", "text", "html",
					   "reply_to_message"};
	const char *str = NULL;
	json_t *atts, *e;
	int bulk = -1;
	size_t i;

	if (!api_fields_check(r, s->doc, send_fields, NULL) ||
	    !api_j_u64(r, s->doc, "account", true, 1, UINT32_MAX, &s->account,
		       NULL) ||
	    !api_j_bool(r, s->doc, "bulk", false, &bulk) ||
	    !api_j_str(r, s->doc, "idempotency_key", false, &str))
		return false;
	for (i = 0; i < MX_ARRAY_SIZE(strs); i++)
		if (!api_j_str(r, s->doc, strs[i], false, &str))
			return false;
	for (i = 0; i < MX_ARRAY_SIZE(addrs); i++) {
		json_t *v = json_object_get(s->doc, addrs[i]);
		bool ok = v == NULL || json_is_string(v) || json_is_array(v);
		size_t j;

		json_array_foreach(v, j, e)
			ok &= json_is_string(e);
		if (!ok) {
			api_error(r, 400, "invalid_field",
				  json_pack("{s:s}", "field", addrs[i]),
				  "'%s' must be a string or an array of "
				  "strings.", addrs[i]);
			return false;
		}
	}
	atts = json_object_get(s->doc, "attachments");
	if (atts && !json_is_array(atts)) {
		api_error(r, 400, "invalid_field",
			  json_pack("{s:s}", "field", "attachments"),
			  "'attachments' must be an array of objects.");
		return false;
	}
	json_array_foreach(atts, i, e) {
		char where[48];

		snprintf(where, sizeof(where), "attachments[%zu].", i);
		if (!json_is_object(e)) {
			where[strlen(where) - 1] = '\0';
			api_error(r, 400, "invalid_field",
				  json_pack("{s:s}", "field", where),
				  "'%s' must be an object.", where);
			return false;
		}
		if (!api_fields_check(r, e, att_fields, where))
			return false;
		for (size_t k = 0; att_fields[k]; k++) {
			json_t *v = json_object_get(e, att_fields[k]);

			if (v == NULL || json_is_string(v))
				continue;
			api_error(r, 400, "invalid_field",
				  json_pack("{s:s+}", "field", where,
					    att_fields[k]),
				  "'%s%s' must be a string.", where,
				  att_fields[k]);
			return false;
		}
		if (json_object_get(e, "path")) {
			api_error(r, 422, "invalid_value",
				  json_pack("{s:s+}", "field", where, "path"),
				  "'%spath': the API does not read files on "
				  "the server; send the content in "
				  "content_base64 or as a file part of a "
				  "multipart/form-data request.", where);
			return false;
		}
	}
	return true;
}

/* The Idempotency-Key: the header, else the document's key; both must
 * agree. */
static bool idem_key(struct api_req *r, struct send_req *s)
{
	const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						    "Idempotency-Key");
	const char *d = json_string_value(json_object_get(s->doc,
							  "idempotency_key"));
	const char *k = h ? h : d;
	size_t n = k ? strlen(k) : 0;
	bool ok = k == NULL || (n > 0 && n <= MX_OB_IDEM_MAX);

	for (size_t i = 0; ok && i < n; i++)
		ok = k[i] > 0x20 && k[i] < 0x7f;
	if (!ok) {
		api_error(r, 400, "bad_request",
			  json_pack("{s:s}", "header", "Idempotency-Key"),
			  "The idempotency key must be 1 to %d printable ASCII "
			  "characters without blanks.", MX_OB_IDEM_MAX);
		return false;
	}
	if (h && d && strcmp(h, d) != 0) {
		api_error(r, 400, "bad_request",
			  json_pack("{s:s}", "header", "Idempotency-Key"),
			  "The Idempotency-Key header and the document's "
			  "idempotency_key differ.");
		return false;
	}
	s->idem = k;
	return true;
}

/* SHA-256 over the document (keys sorted, without the key itself) and
 * every file part (its name, file name, type and the SHA-256 of its
 * content). */
static bool digest(struct send_req *s, uint8_t out[32])
{
	struct mx_buf b = {0};
	json_t *doc = json_deep_copy(s->doc);
	char *txt = NULL;
	bool ok = false;

	if (doc == NULL)
		goto out;
	json_object_del(doc, "idempotency_key");
	txt = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (txt == NULL || mx_buf_append(&b, txt, strlen(txt) + 1) < 0)
		goto out;
	for (size_t i = 0; i < s->nparts; i++) {
		const struct mx_api_part *p = &s->parts[i];
		uint8_t sha[32];

		if (p == s->msg)
			continue;
		mx_sha256(p->data, p->len, sha);
		if (mx_buf_append(&b, p->name, strlen(p->name) + 1) < 0 ||
		    mx_buf_append(&b, p->filename, strlen(p->filename) + 1) < 0 ||
		    mx_buf_puts(&b, p->content_type ? p->content_type : "") < 0 ||
		    mx_buf_append(&b, "", 1) < 0 ||
		    mx_buf_append(&b, sha, 32) < 0)
			goto out;
	}
	mx_sha256(b.data, b.len, out);
	ok = true;
out:
	mx_buf_free(&b);
	free(txt);
	json_decref(doc);
	return ok;
}

/* The account of the request, if the caller may use it (else 404). */
static bool load_account(struct api_req *r, uint64_t id, struct mx_account *a)
{
	struct mx_account *v = NULL;
	struct mx_error err;
	size_t n = 0;
	bool found = false;

	memset(a, 0, sizeof(*a));
	if (mx_account_list_all(r->api->st, &v, &n, &err) != MX_OK) {
		api_fail(r, &err);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (!found && v[i].id == id && api_may_use(r, &v[i])) {
			*a = v[i];
			memset(&v[i], 0, sizeof(v[i]));
			found = true;
		}
	mx_accounts_free(v, n);
	if (!found)
		api_error(r, 404, "not_found",
			  json_pack("{s:s}", "field", "account"),
			  "No account %llu.", (unsigned long long)id);
	return found;
}

/* Answers CODE with outbox entry ID (202 after queueing). */
static void reply_entry(struct api_req *r, unsigned code, uint64_t id,
			const struct mx_account *a)
{
	struct mx_ob_entry e = {0};
	struct mx_error err;
	char loc[48];

	if (mx_outbox_get(r->api->st, id, &e, &err) != MX_OK) {
		api_fail(r, &err);
		return;
	}
	api_reply_json(r, code, api_outbox_json(&e, a->name));
	snprintf(loc, sizeof(loc), "/v1/outbox/%llu", (unsigned long long)id);
	api_header(r, "Location", loc);
	mx_ob_entry_free(&e);
}

/* Queues the checked request S for account A. */
static void enqueue(struct api_req *r, struct send_req *s,
		    struct mx_account *a, const struct mx_ob_idem *idem)
{
	struct mx_compose_req *req = NULL;
	struct mx_compose_att *att = NULL;
	struct mx_compose c;
	struct mx_error err;
	char *irt = NULL, *refs = NULL, *re_subject = NULL, *thread = NULL;
	size_t natt;
	uint64_t id = 0;
	bool existing = false;
	int rc;

	json_object_del(s->doc, "account");
	json_object_del(s->doc, "idempotency_key");
	rc = mx_compose_req_from_value(s->doc, &req, &err);
	if (rc) {
		api_fail(r, &err);
		goto out;
	}
	c = req->c;
	/* File parts follow the document's attachments. */
	natt = c.natt + (s->nparts - (s->msg ? 1 : 0));
	if (natt > MX_COMPOSE_MAX_ATT) {
		api_error(r, 422, "invalid_value",
			  json_pack("{s:s}", "field", "attachments"),
			  "%zu attachments, at most %d.", natt,
			  MX_COMPOSE_MAX_ATT);
		goto out;
	}
	if (natt > c.natt) {
		size_t k = c.natt;

		att = calloc(natt, sizeof(*att));
		if (att == NULL) {
			api_error(r, 500, "internal", NULL, "Out of memory.");
			goto out;
		}
		if (c.natt > 0) /* c.att is NULL without any */
			memcpy(att, c.att, c.natt * sizeof(*att));
		for (size_t i = 0; i < s->nparts; i++) {
			if (&s->parts[i] == s->msg)
				continue;
			att[k].filename = s->parts[i].filename;
			att[k].content_type = s->parts[i].content_type;
			att[k].data = s->parts[i].data;
			att[k].len = s->parts[i].len;
			k++;
		}
		c.att = att;
		c.natt = natt;
	}
	if (req->reply_to_message) {
		rc = mx_outbox_reply_headers(r->api->st, a,
					     req->reply_to_message, &irt,
					     &refs, &re_subject, &thread, &err);
		if (rc == MX_ERR_NOTFOUND || rc == MX_ERR_INVAL) {
			api_error(r, 422, "invalid_value",
				  json_pack("{s:s}", "field",
					    "reply_to_message"),
				  "reply_to_message: %s.", err.detail);
			goto out;
		}
		if (rc) {
			api_fail(r, &err);
			goto out;
		}
		c.in_reply_to = irt;
		c.references = refs;
		c.thread = thread;
		if (c.subject == NULL)
			c.subject = re_subject;
	}
	if (idem)
		rc = mx_outbox_enqueue_idem(r->api->st, a, &c, idem, c.bulk,
					    &id, &existing, &err);
	else
		rc = mx_outbox_enqueue(r->api->st, a, &c, NULL, c.bulk, &id,
				       &existing, &err);
	if (rc == MX_ERR_EXISTS) {
		api_error(r, 409, "idempotency_conflict",
			  json_pack("{s:s}", "header", "Idempotency-Key"),
			  "%s.", err.detail);
		goto out;
	}
	if (rc == MX_ERR_CONFIG) {
		/* No From address, SMTP server or relay: the account cannot
		 * send this until an administrator sets one. */
		api_error(r, 422, "unsupported", NULL, "%s.", err.detail);
		goto out;
	}
	if (rc) {
		api_fail(r, &err);
		goto out;
	}
	if (!existing)
		api_kick(r, MX_API_KICK_OUTBOX, a->id);
	reply_entry(r, 202, id, a);
out:
	free(att);
	free(irt);
	free(refs);
	free(re_subject);
	free(thread);
	mx_compose_req_free(&req);
}

void api_send(struct api_req *r)
{
	struct send_req s = {0};
	struct mx_account a = {0};
	struct mx_ob_idem idem;
	struct mx_error err;
	const char *ct = api_content_type(r);
	uint64_t id;
	int rc;

	if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0) {
		if (!from_multipart(r, ct, &s))
			goto out;
	} else if (!api_body_json(r, &s.doc)) {
		goto out;
	}
	if (!check_doc(r, &s) || !idem_key(r, &s) ||
	    !load_account(r, s.account, &a))
		goto out;
	if (s.idem) {
		idem.user = r->tok.user;
		idem.key = s.idem;
		if (!digest(&s, idem.digest)) {
			api_error(r, 500, "internal", NULL, "Out of memory.");
			goto out;
		}
		/* A repeat answers the first answer again, before anything
		 * is composed. */
		rc = mx_outbox_idem_find(r->api->st, &idem, &id, &err);
		if (rc == MX_OK) {
			reply_entry(r, 202, id, &a);
			goto out;
		}
		if (rc == MX_ERR_EXISTS) {
			api_error(r, 409, "idempotency_conflict",
				  json_pack("{s:s}", "header",
					    "Idempotency-Key"),
				  "%s.", err.detail);
			goto out;
		}
		if (rc != MX_ERR_NOTFOUND) {
			api_fail(r, &err);
			goto out;
		}
	}
	enqueue(r, &s, &a, s.idem ? &idem : NULL);
out:
	mx_account_free(&a);
	mx_api_parts_free(s.parts, s.nparts);
	json_decref(s.doc);
}
