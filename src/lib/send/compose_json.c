/*
 * JSON front end of the composer: checks the shape of a request document
 * (types, known keys, sizes) and maps it onto struct mx_compose.  The
 * values themselves (addresses, control characters, UTF-8 of the bodies)
 * are checked by mx_compose_write().
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "send/compose.h"

#define MAX_DOC ((size_t)48 * 1024 * 1024)
#define MAX_BODY ((size_t)16 * 1024 * 1024)
#define MAX_ALIST ((size_t)64 * 1024)
#define MAX_ATT_B64 ((size_t)40 * 1024 * 1024)
#define MAX_SMALL 1024 /* file names, content types, message ids */
#define MAX_IDEM 200

/* KEY for messages: controls shown as '?', at most 40 bytes. */
static const char *key_show(const char *key, char buf[48])
{
	size_t i;

	for (i = 0; key[i] && i < 40; i++)
		buf[i] = (unsigned char)key[i] < 0x20 ? '?' : key[i];
	buf[i] = '\0';
	return buf;
}

static int get_str(const char *what, json_t *v, size_t max, const char **s_r,
		   size_t *len_r, struct mx_error *err)
{
	size_t n;

	if (!json_is_string(v))
		return mx_error_set(err, MX_ERR_PARSE, "%s: must be a string",
				    what);
	n = json_string_length(v);
	if (n > max)
		return mx_error_set(err, MX_ERR_INVAL, "%s: %zu bytes, at most "
				    "%zu", what, n, max);
	*s_r = json_string_value(v);
	if (len_r != NULL)
		*len_r = n;
	return MX_OK;
}

/* "to": a string, or an array of strings joined with ", ". */
static int get_alist(const char *what, json_t *v, const char **s_r,
		     char **joined_r, struct mx_error *err)
{
	struct mx_buf b = {0};
	const char *s;
	size_t i;
	json_t *e;
	char name[32];
	int rc;

	if (json_is_string(v))
		return get_str(what, v, MAX_ALIST, s_r, NULL, err);
	if (!json_is_array(v))
		return mx_error_set(err, MX_ERR_PARSE, "%s: must be a string or "
				    "an array of strings", what);
	json_array_foreach(v, i, e) {
		snprintf(name, sizeof(name), "%s[%zu]", what, i);
		rc = get_str(name, e, MAX_ALIST, &s, NULL, err);
		if (rc != MX_OK) {
			mx_buf_free(&b);
			return rc;
		}
		if ((b.len > 0 && mx_buf_append(&b, ", ", 2) < 0) ||
		    mx_buf_puts(&b, s) < 0) {
			mx_buf_free(&b);
			return mx_error_set(err, MX_ERR_NOMEM, "out of memory");
		}
		if (b.len > MAX_ALIST) {
			mx_buf_free(&b);
			return mx_error_set(err, MX_ERR_INVAL, "%s: more than "
					    "%zu bytes", what, MAX_ALIST);
		}
	}
	*joined_r = mx_buf_steal(&b);
	*s_r = *joined_r;
	if (*s_r == NULL) /* an empty array */
		*s_r = "";
	return MX_OK;
}

/* Base64 (RFC 4648 4; line breaks and blanks ignored) into a malloc()ed
 * buffer. */
static int b64_decode(const char *what, const char *s, size_t n, void **out_r,
		      size_t *len_r, struct mx_error *err)
{
	unsigned char *out = malloc(n / 4 * 3 + 1);

	if (out == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "out of memory");
	if (mx_base64_decode(s, n, MX_BASE64_SKIP_SPACE | MX_BASE64_ANY_TAIL,
			     out, n / 4 * 3, len_r) < 0) {
		free(out);
		return mx_error_set(err, MX_ERR_PARSE, "%s: not valid base64",
				    what);
	}
	*out_r = out;
	return MX_OK;
}

static int get_att(json_t *o, size_t idx, struct mx_compose_att *a,
		   void **data_r, struct mx_error *err)
{
	const char *key, *b64 = NULL;
	size_t b64len = 0;
	json_t *v;
	char what[96], kb[48];
	int rc = MX_OK;

	if (!json_is_object(o))
		return mx_error_set(err, MX_ERR_PARSE, "attachments[%zu]: must "
				    "be an object", idx);
	json_object_foreach(o, key, v) {
		snprintf(what, sizeof(what), "attachments[%zu].%s", idx,
			 key_show(key, kb));
		if (strcmp(key, "path") == 0)
			rc = get_str(what, v, 4096, &a->path, NULL, err);
		else if (strcmp(key, "filename") == 0)
			rc = get_str(what, v, MAX_SMALL, &a->filename, NULL, err);
		else if (strcmp(key, "content_type") == 0)
			rc = get_str(what, v, MAX_SMALL, &a->content_type, NULL,
				     err);
		else if (strcmp(key, "content_base64") == 0)
			rc = get_str(what, v, MAX_ATT_B64, &b64, &b64len, err);
		else
			rc = mx_error_set(err, MX_ERR_PARSE, "%s: unknown key",
					  what);
		if (rc != MX_OK)
			return rc;
	}
	if ((a->path == NULL) == (b64 == NULL))
		return mx_error_set(err, MX_ERR_PARSE, "attachments[%zu]: give "
				    "either path or content_base64", idx);
	if (b64 != NULL) {
		if (a->filename == NULL)
			return mx_error_set(err, MX_ERR_PARSE, "attachments[%zu]:"
					    " content_base64 needs a filename",
					    idx);
		snprintf(what, sizeof(what), "attachments[%zu].content_base64",
			 idx);
		rc = b64_decode(what, b64, b64len, data_r, &a->len, err);
		a->data = *data_r;
	}
	return rc;
}

static int get_atts(json_t *v, struct mx_compose_req *r, struct mx_error *err)
{
	size_t i, n;
	json_t *e;
	int rc;

	if (!json_is_array(v))
		return mx_error_set(err, MX_ERR_PARSE, "attachments: must be an "
				    "array");
	n = json_array_size(v);
	if (n > MX_COMPOSE_MAX_ATT)
		return mx_error_set(err, MX_ERR_INVAL, "attachments: %zu, at "
				    "most %d", n, MX_COMPOSE_MAX_ATT);
	r->atts = calloc(n + 1, sizeof(*r->atts));
	r->att_data = calloc(n + 1, sizeof(*r->att_data));
	if (r->atts == NULL || r->att_data == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "out of memory");
	r->c.att = r->atts;
	r->c.natt = n;
	json_array_foreach(v, i, e) {
		rc = get_att(e, i, &r->atts[i], &r->att_data[i], err);
		if (rc != MX_OK)
			return rc;
	}
	return MX_OK;
}

static int get_field(struct mx_compose_req *r, const char *key, json_t *v,
		     struct mx_error *err)
{
	struct mx_compose *c = &r->c;
	const char *s;
	char kb[48];
	size_t i;
	int rc;

	if (strcmp(key, "to") == 0)
		return get_alist("to", v, &c->to, &r->joined[0], err);
	if (strcmp(key, "cc") == 0)
		return get_alist("cc", v, &c->cc, &r->joined[1], err);
	if (strcmp(key, "bcc") == 0)
		return get_alist("bcc", v, &c->bcc, &r->joined[2], err);
	if (strcmp(key, "subject") == 0)
		return get_str("subject", v, MX_COMPOSE_MAX_SUBJECT, &c->subject,
			       NULL, err);
	if (strcmp(key, "text") == 0)
		return get_str("text", v, MAX_BODY, &c->text, &c->text_len, err);
	if (strcmp(key, "html") == 0)
		return get_str("html", v, MAX_BODY, &c->html, &c->html_len, err);
	if (strcmp(key, "attachments") == 0)
		return get_atts(v, r, err);
	if (strcmp(key, "bulk") == 0) {
		if (!json_is_boolean(v))
			return mx_error_set(err, MX_ERR_PARSE, "bulk: must be "
					    "true or false");
		c->bulk = json_is_true(v);
		return MX_OK;
	}
	if (strcmp(key, "reply_to_message") == 0) {
		rc = get_str(key, v, MAX_SMALL, &s, NULL, err);
		if (rc == MX_OK && (r->reply_to_message = mx_strdup(s)) == NULL)
			rc = mx_error_set(err, MX_ERR_NOMEM, "out of memory");
		return rc;
	}
	if (strcmp(key, "idempotency_key") == 0) {
		rc = get_str(key, v, MAX_IDEM, &s, NULL, err);
		if (rc != MX_OK)
			return rc;
		for (i = 0; s[i]; i++)
			if (s[i] <= 0x20 || s[i] >= 0x7f)
				break;
		if (i == 0 || s[i] != '\0')
			return mx_error_set(err, MX_ERR_INVAL, "idempotency_key: "
					    "1 to %d printable ASCII characters "
					    "without blanks", MAX_IDEM);
		r->idempotency_key = mx_strdup(s);
		return r->idempotency_key ? MX_OK
			: mx_error_set(err, MX_ERR_NOMEM, "out of memory");
	}
	return mx_error_set(err, MX_ERR_PARSE, "unknown key '%s'",
			    key_show(key, kb));
}

void mx_compose_req_free(struct mx_compose_req **req)
{
	struct mx_compose_req *r;
	size_t i;

	if (req == NULL || *req == NULL)
		return;
	r = *req;
	for (i = 0; r->att_data && i < r->c.natt; i++)
		free(r->att_data[i]);
	free(r->att_data);
	free(r->atts);
	for (i = 0; i < MX_ARRAY_SIZE(r->joined); i++)
		free(r->joined[i]);
	free(r->reply_to_message);
	free(r->idempotency_key);
	json_decref(r->doc);
	free(r);
	*req = NULL;
}

int mx_compose_req_from_json(const char *json, size_t len,
			     struct mx_compose_req **req_r,
			     struct mx_error *err)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	*req_r = NULL;
	if (len > MAX_DOC)
		return mx_error_set(err, MX_ERR_INVAL, "JSON document of %zu "
				    "bytes, at most %zu", len, MAX_DOC);
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return mx_error_set(err, MX_ERR_PARSE, "JSON: %s (line %d, "
				    "column %d)", jerr.text, jerr.line,
				    jerr.column);
	rc = mx_compose_req_from_value(root, req_r, err);
	json_decref(root);
	return rc;
}

int mx_compose_req_from_value(void *doc, struct mx_compose_req **req_r,
			      struct mx_error *err)
{
	struct mx_compose_req *r;
	json_t *root = doc, *v;
	const char *key;
	int rc = MX_OK;

	*req_r = NULL;
	if (!json_is_object(root))
		return mx_error_set(err, MX_ERR_PARSE, "JSON: the document must "
				    "be an object");
	json_incref(root);
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		json_decref(root);
		return mx_error_set(err, MX_ERR_NOMEM, "out of memory");
	}
	r->doc = root;
	json_object_foreach(root, key, v) {
		rc = get_field(r, key, v, err);
		if (rc != MX_OK)
			break;
	}
	if (rc != MX_OK) {
		mx_compose_req_free(&r);
		return rc;
	}
	*req_r = r;
	return MX_OK;
}
