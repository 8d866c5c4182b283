/*
 * The pure half of the Gmail API client (see gmail_api.h): decoders of
 * Google's JSON answers, base64url, quota arithmetic, Retry-After, error
 * mapping.  No I/O here, so the unit tests and the fuzz target reach all
 * of it.  Every answer is treated as hostile: wrong types, missing
 * fields and bad ids are refused whole, never half-decoded.
 */
#include <config.h>

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/gmail_api.h"
#include "mime/mime.h" /* mx_addr_list_parse(): the one address parser */

static const struct {
	const char *name;
	unsigned cost;
	const char *scope;
} methods[MX_GMAIL_METHOD_COUNT] = {
	[MX_GMAIL_MESSAGES_LIST] = {"users.messages.list", 5, "gmail.metadata"},
	[MX_GMAIL_MESSAGES_GET] = {"users.messages.get", 5, "gmail.metadata"},
	[MX_GMAIL_MESSAGES_GET_RAW] = {"users.messages.get", 5,
				       "gmail.readonly"},
	[MX_GMAIL_HISTORY_LIST] = {"users.history.list", 2, "gmail.metadata"},
	[MX_GMAIL_MESSAGES_SEND] = {"users.messages.send", 100, "gmail.send"},
	[MX_GMAIL_MESSAGES_MODIFY] = {"users.messages.modify", 5,
				      "gmail.modify"},
	[MX_GMAIL_MESSAGES_BATCH_MODIFY] = {"users.messages.batchModify", 50,
					    "gmail.modify"},
	[MX_GMAIL_LABELS_LIST] = {"users.labels.list", 1, "gmail.metadata"},
	[MX_GMAIL_LABELS_CREATE] = {"users.labels.create", 5, "gmail.modify"},
};

#define SCOPE_PREFIX "https://www.googleapis.com/auth/"

unsigned mx_gmail_cost(enum mx_gmail_method m)
{
	return (unsigned)m < MX_GMAIL_METHOD_COUNT ? methods[m].cost : 0;
}

const char *mx_gmail_method_name(enum mx_gmail_method m)
{
	return (unsigned)m < MX_GMAIL_METHOD_COUNT ? methods[m].name : "?";
}

const char *mx_gmail_scope(enum mx_gmail_method m)
{
	static const char *const full[] = {
		SCOPE_PREFIX "gmail.metadata", SCOPE_PREFIX "gmail.readonly",
		SCOPE_PREFIX "gmail.send", SCOPE_PREFIX "gmail.modify"};
	size_t i;

	if ((unsigned)m >= MX_GMAIL_METHOD_COUNT)
		return "?";
	for (i = 0; i < MX_ARRAY_SIZE(full); i++)
		if (strcmp(full[i] + strlen(SCOPE_PREFIX),
			   methods[m].scope) == 0)
			return full[i];
	return "?";
}

/* ---- ids, names ---- */

bool mx_gmail_id_valid(const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0')
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (i >= MX_GMAIL_ID_MAX)
			return false;
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		      (c >= 'a' && c <= 'z') || c == '_' || c == '-'))
			return false;
	}
	return true;
}

bool mx_gmail_label_name_valid(const char *s, size_t len)
{
	size_t i;

	if (s == NULL || len == 0 || len > MX_GMAIL_LABEL_NAME_MAX ||
	    memchr(s, '\0', len) != NULL)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
		/* U+0080..U+009F are C2 80..C2 9F in UTF-8. */
		if (c == 0xc2 && i + 1 < len &&
		    (unsigned char)s[i + 1] >= 0x80 &&
		    (unsigned char)s[i + 1] <= 0x9f)
			return false;
	}
	/* S has no NUL: a terminated copy is not needed for the check. */
	{
		char *z = mx_strndup(s, len);
		bool ok = z != NULL && mx_utf8_valid_str(z);

		free(z);
		return ok;
	}
}

/* ---- base64url ---- */

int mx_gmail_b64url_decode(const char *s, size_t n, size_t max,
			   struct mx_buf *out, bool *too_big_r)
{
	char *t = NULL;
	size_t i, len, dec;
	int rc = -1;

	if (too_big_r != NULL)
		*too_big_r = false;
	while (n > 0 && s[n - 1] == '=')
		n--;
	if (n % 4 == 1)
		return -1;
	/* 3 bytes per 4 characters, rounded down: the exact decoded size. */
	dec = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
	if (dec > max) {
		if (too_big_r != NULL)
			*too_big_r = true;
		return -1;
	}
	t = malloc(n + 3);
	if (t == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		else if (c == '+' || c == '/' || c == '=')
			goto out; /* not the URL-safe alphabet */
		t[i] = c;
	}
	len = n;
	while (len % 4 != 0)
		t[len++] = '=';
	if (mx_buf_reserve(out, dec + 1) != 0)
		goto out;
	if (mx_base64_decode(t, len, 0, (unsigned char *)out->data + out->len,
			     dec + 1, &dec) != 0)
		goto out;
	out->len += dec;
	out->data[out->len] = '\0';
	rc = 0;
out:
	free(t);
	return rc;
}

char *mx_gmail_b64url_encode(const void *in, size_t n)
{
	char *s = mx_base64_encode(in, n);
	size_t i;

	if (s == NULL)
		return NULL;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '+')
			s[i] = '-';
		else if (s[i] == '/')
			s[i] = '_';
		else if (s[i] == '=') {
			s[i] = '\0';
			break;
		}
	}
	return s;
}

/* ---- quota ---- */

#define SCALE 60000u /* milliseconds in a minute */

void mx_gmail_bucket_init(struct mx_gmail_bucket *b, unsigned per_min,
			  unsigned burst, uint64_t now_ms)
{
	if (burst == 0 || per_min <= burst) {
		per_min = 15000;
		burst = 250;
	}
	b->cap = (uint64_t)burst * SCALE;
	b->level = b->cap;
	b->rate = per_min - burst;
	b->last_ms = now_ms;
}

static void refill(struct mx_gmail_bucket *b, uint64_t now_ms)
{
	uint64_t dt;

	/* A clock that goes back adds nothing (and takes nothing). */
	if (now_ms <= b->last_ms)
		return;
	dt = now_ms - b->last_ms;
	b->last_ms = now_ms;
	if (dt >= (b->cap - b->level) / b->rate + 1)
		b->level = b->cap;
	else
		b->level += dt * b->rate;
}

uint64_t mx_gmail_bucket_take(struct mx_gmail_bucket *b, unsigned cost,
			      uint64_t now_ms)
{
	uint64_t need = (uint64_t)cost * SCALE;

	if (need > b->cap)
		need = b->cap;
	refill(b, now_ms);
	if (b->level >= need) {
		b->level -= need;
		return 0;
	}
	return (need - b->level + b->rate - 1) / b->rate;
}

void mx_gmail_bucket_drain(struct mx_gmail_bucket *b, uint64_t now_ms)
{
	refill(b, now_ms);
	b->level = 0;
}

/* ---- retries ---- */

int mx_gmail_retry_after(const char *v, int64_t now_s, uint64_t *ms_r)
{
	uint64_t s;
	time_t t;

	if (v == NULL)
		return -1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v >= '0' && *v <= '9') {
		char num[24];
		size_t n = strspn(v, "0123456789");

		if (n >= sizeof(num) || v[n + strspn(v + n, " \t")] != '\0')
			return -1;
		memcpy(num, v, n);
		num[n] = '\0';
		/* A day is more than any wait honoured (the caller caps). */
		if (mx_parse_u64(num, 0, UINT64_MAX, &s) != 0 || s > 86400)
			s = 86400;
		*ms_r = s * 1000;
		return 0;
	}
	t = curl_getdate(v, NULL);
	if (t == (time_t)-1)
		return -1;
	*ms_r = (int64_t)t <= now_s ? 0
		: (uint64_t)((int64_t)t - now_s > 86400 ? 86400
						       : (int64_t)t - now_s) *
			  1000;
	return 0;
}

uint64_t mx_gmail_backoff_ms(unsigned attempt, int64_t retry_after_ms,
			     uint64_t cap_ms, uint32_t jitter)
{
	uint64_t ms, spread = cap_ms < 1000 ? cap_ms : 1000;

	if (retry_after_ms >= 0)
		ms = (uint64_t)retry_after_ms;
	else
		ms = attempt >= 20 ? cap_ms : (uint64_t)1000 << attempt;
	if (ms > cap_ms)
		ms = cap_ms;
	/* Jitter spreads clients that failed together; bounded by the cap
	 * so a caller that wants short waits gets them. */
	return ms + jitter % (spread + 1);
}

int mx_gmail_pager_next(struct mx_gmail_pager *p, const char *what,
			const char *token, struct mx_error *err)
{
	uint8_t h[32];
	size_t i;

	if (p->n >= MX_GMAIL_MAX_PAGES)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "%s: more than %d pages: refusing to go on",
				    what, MX_GMAIL_MAX_PAGES);
	mx_sha256(token, strlen(token), h);
	for (i = 0; i < p->n; i++)
		if (memcmp(p->seen[i], h, sizeof(p->seen[i])) == 0)
			return mx_error_set(err, MX_ERR_PROTOCOL,
					    "%s: the server sent page token "
					    "%zu again (a page loop)",
					    what, i + 1);
	if (p->n == p->cap) {
		size_t ncap = p->cap ? p->cap * 2 : 16;
		void *nv = realloc(p->seen, ncap * sizeof(*p->seen));

		if (nv == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		p->seen = nv;
		p->cap = ncap;
	}
	memcpy(p->seen[p->n++], h, sizeof(p->seen[0]));
	return MX_OK;
}

void mx_gmail_pager_free(struct mx_gmail_pager *p)
{
	free(p->seen);
	memset(p, 0, sizeof(*p));
}

/* ---- JSON helpers ---- */

static int bad(struct mx_error *err, const char *what, const char *field,
	       const char *why)
{
	return mx_error_set(err, MX_ERR_PROTOCOL, "Gmail API %s: %s %s",
			    what, field, why);
}

static int load_flags(const char *body, size_t len, const char *what,
		      size_t flags, json_t **r, struct mx_error *err)
{
	json_error_t je;

	if (len > MX_GMAIL_JSON_MAX)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "Gmail API %s: answer over %u bytes", what,
				    MX_GMAIL_JSON_MAX);
	*r = json_loadb(body, len, JSON_REJECT_DUPLICATES | flags, &je);
	if (*r == NULL) {
		/* jansson quotes the input near the fault: escape it. */
		struct mx_buf t = {0};
		int rc = mx_term_escape(&t, je.text, strnlen(je.text, 80),
					false);

		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "Gmail API %s: malformed JSON (line %d: %s)",
				  what, je.line, rc == 0 && t.data ? t.data : "");
		mx_buf_free(&t);
		return rc;
	}
	if (!json_is_object(*r)) {
		json_decref(*r);
		*r = NULL;
		return bad(err, what, "answer", "is not a JSON object");
	}
	return MX_OK;
}

static int load(const char *body, size_t len, const char *what, json_t **r,
		struct mx_error *err)
{
	return load_flags(body, len, what, 0, r, err);
}

/* Copies the id V (the value of FIELD) into OUT (MX_GMAIL_ID_MAX + 1
 * bytes). */
static int id_value(json_t *v, const char *field, char *out, const char *what,
		    struct mx_error *err)
{
	const char *s = json_string_value(v);

	out[0] = '\0';
	if (s == NULL)
		return bad(err, what, field, "is not a string");
	if (strlen(s) != json_string_length(v) || !mx_gmail_id_valid(s))
		return bad(err, what, field,
			   "is not an id (1 to 64 of A-Z a-z 0-9 _ -)");
	memcpy(out, s, strlen(s) + 1);
	return MX_OK;
}

static int get_id(json_t *o, const char *key, char *out, const char *what,
		  struct mx_error *err)
{
	json_t *v = json_object_get(o, key);

	out[0] = '\0';
	if (v == NULL)
		return bad(err, what, key, "missing");
	return id_value(v, key, out, what, err);
}

/* A decimal string (Google's int64/uint64 format) or a JSON integer. */
static int get_u64(json_t *o, const char *key, bool required, uint64_t hi,
		   uint64_t *v_r, const char *what, struct mx_error *err)
{
	json_t *v = json_object_get(o, key);

	*v_r = 0;
	if (v == NULL)
		return required ? bad(err, what, key, "missing") : MX_OK;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < 0 || (uint64_t)i > hi)
			return bad(err, what, key, "is out of range");
		*v_r = (uint64_t)i;
		return MX_OK;
	}
	if (!json_is_string(v) ||
	    strlen(json_string_value(v)) != json_string_length(v) ||
	    mx_parse_u64(json_string_value(v), 0, hi, v_r) != 0)
		return bad(err, what, key, "is not a decimal number in range");
	return MX_OK;
}

static int get_token(json_t *o, char **tok_r, const char *what,
		     struct mx_error *err)
{
	json_t *v = json_object_get(o, "nextPageToken");
	const char *s;
	size_t i;

	*tok_r = NULL;
	if (v == NULL)
		return MX_OK;
	s = json_string_value(v);
	if (s == NULL)
		return bad(err, what, "nextPageToken", "is not a string");
	/* It goes into a query string (escaped) and a page loop check;
	 * printable ASCII and a sane length are all a real one has. */
	if (s[0] == '\0' || json_string_length(v) > 4096)
		return bad(err, what, "nextPageToken", "is empty or too long");
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return bad(err, what, "nextPageToken",
				   "has a character outside printable ASCII");
	if (i != json_string_length(v))
		return bad(err, what, "nextPageToken", "holds a NUL");
	*tok_r = mx_strdup(s);
	return *tok_r == NULL ? mx_error_set(err, MX_ERR_NOMEM, NULL) : MX_OK;
}

/* O[KEY] as an optional array; *A_R NULL when absent. */
static int get_array(json_t *o, const char *key, json_t **a_r,
		     const char *what, struct mx_error *err)
{
	*a_r = json_object_get(o, key);
	if (*a_r != NULL && !json_is_array(*a_r))
		return bad(err, what, key, "is not an array");
	return MX_OK;
}

static int get_labels(json_t *o, const char *key, struct mx_gmail_labels_of *l,
		      const char *what, struct mx_error *err)
{
	json_t *a, *v;
	size_t i;
	int rc;

	l->v = NULL;
	l->n = 0;
	if ((rc = get_array(o, key, &a, what, err)) != MX_OK || a == NULL)
		return rc;
	if (json_array_size(a) == 0)
		return MX_OK;
	l->v = calloc(json_array_size(a), sizeof(*l->v));
	if (l->v == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	json_array_foreach(a, i, v) {
		if ((rc = id_value(v, key, l->v[i], what, err)) != MX_OK)
			return rc;
		l->n++;
	}
	return MX_OK;
}

static int get_ref(json_t *o, struct mx_gmail_ref *r, const char *what,
		   struct mx_error *err)
{
	int rc;

	if (!json_is_object(o))
		return bad(err, what, "message", "is not an object");
	if ((rc = get_id(o, "id", r->id, what, err)) != MX_OK)
		return rc;
	return get_id(o, "threadId", r->thread_id, what, err);
}

/* ---- decoders ---- */

void mx_gmail_list_page_free(struct mx_gmail_list_page *p)
{
	free(p->v);
	free(p->next_page_token);
	memset(p, 0, sizeof(*p));
}

int mx_gmail_parse_list(const char *body, size_t len,
			struct mx_gmail_list_page *out, struct mx_error *err)
{
	static const char what[] = "users.messages.list";
	json_t *root = NULL, *a, *v;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = load(body, len, what, &root, err)) != MX_OK)
		return rc;
	if ((rc = get_array(root, "messages", &a, what, err)) != MX_OK)
		goto out;
	if (a != NULL && json_array_size(a) > 0) {
		out->v = calloc(json_array_size(a), sizeof(*out->v));
		if (out->v == NULL) {
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
			goto out;
		}
		json_array_foreach(a, i, v) {
			if ((rc = get_ref(v, &out->v[i], what, err)) != MX_OK)
				goto out;
			out->n++;
		}
	}
	if ((rc = get_token(root, &out->next_page_token, what, err)) != MX_OK)
		goto out;
	rc = get_u64(root, "resultSizeEstimate", false, UINT32_MAX,
		     &out->result_size_estimate, what, err);
out:
	json_decref(root);
	if (rc != MX_OK)
		mx_gmail_list_page_free(out);
	return rc;
}

void mx_gmail_msg_free(struct mx_gmail_msg *m)
{
	free(m->labels.v);
	free(m->from);
	memset(m, 0, sizeof(*m));
}

/* The first address of the From header in PAYLOAD.headers, if any. */
static int get_from(json_t *msg, char **from_r, const char *what,
		    struct mx_error *err)
{
	json_t *payload = json_object_get(msg, "payload"), *hs, *h;
	struct mx_addr_list l = {0};
	bool unknown = false;
	size_t i;

	*from_r = NULL;
	if (payload == NULL)
		return MX_OK;
	if (!json_is_object(payload))
		return bad(err, what, "payload", "is not an object");
	hs = json_object_get(payload, "headers");
	if (hs == NULL)
		return MX_OK;
	if (!json_is_array(hs))
		return bad(err, what, "payload.headers", "is not an array");
	json_array_foreach(hs, i, h) {
		json_t *n = json_object_get(h, "name");
		json_t *v = json_object_get(h, "value");

		if (!json_is_object(h) || !json_is_string(n) ||
		    !json_is_string(v))
			return bad(err, what, "payload.headers",
				   "has an entry without string name and value");
		if (strcasecmp(json_string_value(n), "From") != 0)
			continue;
		/* A NUL in the header (real mail has them): unparsable. */
		if (strlen(json_string_value(v)) != json_string_length(v))
			break;
		if (mx_addr_list_parse(json_string_value(v),
				       strlen(json_string_value(v)), &l,
				       &unknown) != 0)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		for (size_t k = 0; k < l.n && *from_r == NULL; k++)
			if (l.v[k].email != NULL &&
			    mx_utf8_valid_str(l.v[k].email) &&
			    mx_term_safe(l.v[k].email)) {
				*from_r = mx_strdup(l.v[k].email);
				if (*from_r == NULL) {
					mx_addr_list_free(&l);
					return mx_error_set(err, MX_ERR_NOMEM,
							    NULL);
				}
			}
		mx_addr_list_free(&l);
		break;
	}
	return MX_OK;
}

int mx_gmail_parse_msg(const char *body, size_t len, struct mx_gmail_msg *out,
		       struct mx_error *err)
{
	static const char what[] = "users.messages.get";
	json_t *root = NULL;
	uint64_t date;
	int rc;

	memset(out, 0, sizeof(*out));
	/* Header values are the message's own bytes and may hold a NUL
	 * (\u0000): accepted here, and only From is used (checked). */
	if ((rc = load_flags(body, len, what, JSON_ALLOW_NUL, &root, err)) !=
	    MX_OK)
		return rc;
	if ((rc = get_id(root, "id", out->id, what, err)) != MX_OK ||
	    (rc = get_id(root, "threadId", out->thread_id, what,
			 err)) != MX_OK ||
	    (rc = get_labels(root, "labelIds", &out->labels, what, err)) !=
		    MX_OK ||
	    (rc = get_u64(root, "internalDate", true, INT64_MAX, &date, what,
			  err)) != MX_OK ||
	    (rc = get_u64(root, "historyId", true, UINT64_MAX,
			  &out->history_id, what, err)) != MX_OK ||
	    (rc = get_u64(root, "sizeEstimate", false, UINT32_MAX,
			  &out->size_estimate, what, err)) != MX_OK ||
	    (rc = get_from(root, &out->from, what, err)) != MX_OK)
		goto out;
	out->internal_date_ms = (int64_t)date;
out:
	json_decref(root);
	if (rc != MX_OK)
		mx_gmail_msg_free(out);
	return rc;
}

int mx_gmail_parse_ref(const char *body, size_t len, struct mx_gmail_ref *out,
		       struct mx_error *err)
{
	json_t *root = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = load(body, len, "users.messages.send", &root, err)) != MX_OK)
		return rc;
	rc = get_ref(root, out, "users.messages.send", err);
	json_decref(root);
	if (rc != MX_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

int mx_gmail_parse_raw(const char *body, size_t len, size_t max,
		       struct mx_buf *raw, struct mx_error *err)
{
	static const char what[] = "users.messages.get (raw)";
	json_t *root = NULL, *v;
	size_t old = raw->len;
	bool too_big;
	int rc;

	if ((rc = load(body, len, what, &root, err)) != MX_OK)
		return rc;
	v = json_object_get(root, "raw");
	if (v == NULL)
		rc = bad(err, what, "raw", "missing");
	else if (!json_is_string(v))
		rc = bad(err, what, "raw", "is not a string");
	else if (mx_gmail_b64url_decode(json_string_value(v),
					json_string_length(v), max, raw,
					&too_big) != 0)
		rc = too_big ? (int)mx_error_set(err, MX_ERR_PROTOCOL,
						 "Gmail API %s: message over "
						 "the %zu byte limit", what,
						 max)
			     : bad(err, what, "raw", "is not base64url");
	json_decref(root);
	if (rc != MX_OK)
		raw->len = old;
	return rc;
}

void mx_gmail_history_page_free(struct mx_gmail_history_page *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i].labels.v);
	free(p->v);
	free(p->next_page_token);
	memset(p, 0, sizeof(*p));
}

static const char *const change_keys[] = {
	[MX_GMAIL_ADDED] = "messagesAdded",
	[MX_GMAIL_DELETED] = "messagesDeleted",
	[MX_GMAIL_LABELS_ADDED] = "labelsAdded",
	[MX_GMAIL_LABELS_REMOVED] = "labelsRemoved",
};

int mx_gmail_parse_history(const char *body, size_t len, uint64_t start,
			   struct mx_gmail_history_page *out,
			   struct mx_error *err)
{
	static const char what[] = "users.history.list";
	json_t *root = NULL, *hist, *rec, *a, *c;
	size_t i, j, total = 0;
	unsigned k;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = load(body, len, what, &root, err)) != MX_OK)
		return rc;
	if ((rc = get_u64(root, "historyId", true, UINT64_MAX,
			  &out->history_id, what, err)) != MX_OK ||
	    (rc = get_token(root, &out->next_page_token, what, err)) != MX_OK ||
	    (rc = get_array(root, "history", &hist, what, err)) != MX_OK)
		goto out;
	if (out->history_id < start) {
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "Gmail API %s: historyId %llu is below the "
				  "start %llu (history went backwards)",
				  what, (unsigned long long)out->history_id,
				  (unsigned long long)start);
		goto out;
	}
	/* Count first, so the array is allocated once. */
	json_array_foreach(hist, i, rec) {
		if (!json_is_object(rec)) {
			rc = bad(err, what, "history[]", "is not an object");
			goto out;
		}
		for (k = 0; k < MX_ARRAY_SIZE(change_keys); k++) {
			if ((rc = get_array(rec, change_keys[k], &a, what,
					    err)) != MX_OK)
				goto out;
			total += json_array_size(a);
		}
	}
	if (total == 0)
		goto out;
	out->v = calloc(total, sizeof(*out->v));
	if (out->v == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	json_array_foreach(hist, i, rec) {
		uint64_t hid;

		if ((rc = get_u64(rec, "id", true, UINT64_MAX, &hid, what,
				  err)) != MX_OK)
			goto out;
		for (k = 0; k < MX_ARRAY_SIZE(change_keys); k++) {
			a = json_object_get(rec, change_keys[k]);
			json_array_foreach(a, j, c) {
				struct mx_gmail_change *ch = &out->v[out->n];
				json_t *m = json_object_get(c, "message");

				if (!json_is_object(c)) {
					rc = bad(err, what, change_keys[k],
						 "has an entry that is not an "
						 "object");
					goto out;
				}
				ch->kind = (enum mx_gmail_change_kind)k;
				ch->history_id = hid;
				if ((rc = get_ref(m, &ch->msg, what, err)) !=
				    MX_OK)
					goto out;
				rc = get_labels(k == MX_GMAIL_ADDED ? m : c,
						"labelIds", &ch->labels, what,
						err);
				out->n++; /* its labels are freed with it */
				if (rc != MX_OK)
					goto out;
			}
		}
	}
out:
	json_decref(root);
	if (rc != MX_OK)
		mx_gmail_history_page_free(out);
	return rc;
}

void mx_gmail_label_free(struct mx_gmail_label *l)
{
	free(l->name);
	memset(l, 0, sizeof(*l));
}

void mx_gmail_label_list_free(struct mx_gmail_label_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int get_label(json_t *o, struct mx_gmail_label *l, const char *what,
		     struct mx_error *err)
{
	json_t *n, *t;
	int rc;

	if (!json_is_object(o))
		return bad(err, what, "label", "is not an object");
	if ((rc = get_id(o, "id", l->id, what, err)) != MX_OK)
		return rc;
	n = json_object_get(o, "name");
	if (!json_is_string(n))
		return bad(err, what, "label name", "missing or not a string");
	if (!mx_gmail_label_name_valid(json_string_value(n),
				       json_string_length(n)))
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "Gmail API %s: label %s: name is empty, "
				    "too long, not UTF-8 or holds control "
				    "characters", what, l->id);
	t = json_object_get(o, "type");
	if (t != NULL && !json_is_string(t))
		return bad(err, what, "label type", "is not a string");
	l->system = t != NULL && strcmp(json_string_value(t), "system") == 0;
	l->name = mx_strdup(json_string_value(n));
	return l->name == NULL ? mx_error_set(err, MX_ERR_NOMEM, NULL) : MX_OK;
}

int mx_gmail_parse_labels(const char *body, size_t len,
			  struct mx_gmail_label_list *out,
			  struct mx_error *err)
{
	static const char what[] = "users.labels.list";
	json_t *root = NULL, *a, *v;
	size_t i;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = load(body, len, what, &root, err)) != MX_OK)
		return rc;
	if ((rc = get_array(root, "labels", &a, what, err)) != MX_OK ||
	    a == NULL || json_array_size(a) == 0)
		goto out;
	out->v = calloc(json_array_size(a), sizeof(*out->v));
	if (out->v == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	json_array_foreach(a, i, v) {
		rc = get_label(v, &out->v[i], what, err);
		out->n++; /* a half-filled label is freed with the list */
		if (rc != MX_OK)
			goto out;
	}
out:
	json_decref(root);
	if (rc != MX_OK)
		mx_gmail_label_list_free(out);
	return rc;
}

int mx_gmail_parse_label(const char *body, size_t len,
			 struct mx_gmail_label *out, struct mx_error *err)
{
	json_t *root = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = load(body, len, "users.labels.create", &root, err)) != MX_OK)
		return rc;
	rc = get_label(root, out, "users.labels.create", err);
	json_decref(root);
	if (rc != MX_OK)
		mx_gmail_label_free(out);
	return rc;
}

/* ---- errors ---- */

static bool is_rate_reason(const char *r)
{
	return strcmp(r, "rateLimitExceeded") == 0 ||
	       strcmp(r, "userRateLimitExceeded") == 0 ||
	       strcmp(r, "RATE_LIMIT_EXCEEDED") == 0;
}

static bool is_scope_reason(const char *r)
{
	return strcmp(r, "insufficientPermissions") == 0 ||
	       strcmp(r, "ACCESS_TOKEN_SCOPE_INSUFFICIENT") == 0;
}

enum mx_gmail_action mx_gmail_map_error(enum mx_gmail_method method,
					long status, const char *body,
					size_t len, struct mx_error *err)
{
	const char *name = mx_gmail_method_name(method);
	const char *msg = "", *reason = "", *gstatus = "";
	json_t *root = NULL, *e = NULL, *errs, *v;
	struct mx_buf safe = {0};
	enum mx_gmail_action act = MX_GMAIL_FAIL;
	enum mx_err code;
	bool scope = false;
	size_t i;

	/* The body is only a hint: anything that is not Google's shape
	 * leaves the status to speak alone. */
	if (len <= 64 * 1024)
		root = json_loadb(body, len, 0, NULL);
	if (json_is_object(root))
		e = json_object_get(root, "error");
	if (json_is_object(e)) {
		if (json_is_string(v = json_object_get(e, "message")))
			msg = json_string_value(v);
		if (json_is_string(v = json_object_get(e, "status")))
			gstatus = json_string_value(v);
		errs = json_object_get(e, "errors");
		json_array_foreach(errs, i, v) {
			json_t *r = json_object_get(v, "reason");

			if (!json_is_string(r))
				continue;
			if (reason[0] == '\0' || is_rate_reason(json_string_value(r)) ||
			    is_scope_reason(json_string_value(r)))
				reason = json_string_value(r);
		}
		/* The newer shape puts the reason in details[].reason. */
		json_array_foreach(json_object_get(e, "details"), i, v) {
			json_t *r = json_object_get(v, "reason");

			if (json_is_string(r) &&
			    (is_scope_reason(json_string_value(r)) ||
			     is_rate_reason(json_string_value(r))))
				reason = json_string_value(r);
		}
	}
	if (!mx_term_safe(reason))
		reason = "";
	scope = is_scope_reason(reason) ||
		(strcmp(gstatus, "PERMISSION_DENIED") == 0 &&
		 strstr(msg, "scope") != NULL);
	/* Server text goes into messages and terminals: escape it. */
	if (mx_term_escape(&safe, msg, strnlen(msg, 300), false) != 0)
		mx_buf_reset(&safe);

	if (status == 401) {
		code = MX_ERR_AUTH;
		act = MX_GMAIL_REFRESH;
	} else if (status == 403 && scope) {
		mx_error_set(err, MX_ERR_AUTH,
			     "%s: the access token lacks the scope %s (%s): "
			     "authorize the account again with it",
			     name, mx_gmail_scope(method),
			     reason[0] ? reason : "PERMISSION_DENIED");
		goto out;
	} else if (status == 429 || (status == 403 && is_rate_reason(reason))) {
		code = MX_ERR_SERVER;
		act = MX_GMAIL_RATE;
	} else if (status >= 500 && status <= 599) {
		code = MX_ERR_SERVER;
		act = MX_GMAIL_BACKOFF;
	} else if (status == 404 && method == MX_GMAIL_HISTORY_LIST) {
		code = MX_ERR_EXPIRED;
	} else if (status == 404) {
		code = MX_ERR_NOTFOUND;
	} else if (status == 403) {
		code = MX_ERR_AUTH;
	} else {
		code = MX_ERR_SERVER;
	}
	mx_error_set(err, code, "%s: HTTP %ld%s%.60s%s%s%s", name, status,
		     reason[0] ? " " : "", reason,
		     code == MX_ERR_EXPIRED ? " (history id too old: full "
					      "resync needed)" : "",
		     safe.len ? ": " : "", safe.len ? safe.data : "");
	if ((act == MX_GMAIL_RATE || act == MX_GMAIL_BACKOFF) && err != NULL)
		err->retry = MX_RETRY_WAIT;
out:
	mx_buf_free(&safe);
	json_decref(root);
	return act;
}

/* ---- batch (multipart/mixed) ---- */

void mx_gmail_batch_free(struct mx_gmail_batch_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		mx_gmail_msg_free(&items[i].msg);
		memset(&items[i], 0, sizeof(items[i]));
	}
}

int mx_gmail_batch_body(const char *const *ids, size_t n,
			const char *boundary, struct mx_buf *out)
{
	for (size_t i = 0; i < n; i++)
		if (mx_buf_printf(out,
				  "--%s\r\nContent-Type: application/http\r\n"
				  "Content-ID: <item-%zu>\r\n\r\n"
				  "GET /gmail/v1/users/me/messages/%s"
				  "?format=metadata&metadataHeaders=From"
				  "&metadataHeaders=Date\r\n\r\n",
				  boundary, i + 1, ids[i]) != 0)
			return -1;
	return mx_buf_printf(out, "--%s--\r\n", boundary);
}

/* The boundary parameter of a multipart/mixed CONTENT_TYPE into OUT. */
static bool batch_boundary(const char *ct, char *out, size_t cap)
{
	const char *p;
	size_t n;

	if (ct == NULL || strncasecmp(ct, "multipart/mixed", 15) != 0)
		return false;
	for (p = ct + 15; *p != '\0'; p++)
		if (strncasecmp(p, "boundary=", 9) == 0 &&
		    (p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t'))
			break;
	if (*p == '\0')
		return false;
	p += 9;
	if (*p == '"') {
		p++;
		n = strcspn(p, "\"");
		if (p[n] != '"')
			return false;
	} else {
		n = strcspn(p, "; \t");
	}
	/* RFC 2046 5.1.1: 1 to 70 characters. */
	if (n < 1 || n > 70 || n >= cap)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return strpbrk(out, "\r\n") == NULL;
}

/* The next "\r\n" or "\n" at or after P in [P, END); END if none. */
static const char *eol(const char *p, const char *end)
{
	const char *q = memchr(p, '\n', (size_t)(end - p));

	return q ? q : end;
}

/* The end of the header block at P (after the empty line), or NULL. */
static const char *headers_end(const char *p, const char *end,
			       const char **hend_r)
{
	while (p < end) {
		const char *e = eol(p, end);
		size_t n = (size_t)(e - p);

		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (e == end)
			return NULL;
		if (n == 0) {
			*hend_r = p;
			return e + 1;
		}
		p = e + 1;
	}
	return NULL;
}

/* In the header block [P, HEND), the value of header NAME; its length in
 * *LEN_R.  NULL if absent. */
static const char *header_get(const char *p, const char *hend,
			      const char *name, size_t *len_r)
{
	size_t nl = strlen(name);

	while (p < hend) {
		const char *e = eol(p, hend);

		if ((size_t)(e - p) > nl && strncasecmp(p, name, nl) == 0 &&
		    p[nl] == ':') {
			const char *v = p + nl + 1;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			*len_r = (size_t)(e - v);
			while (*len_r > 0 && (v[*len_r - 1] == '\r' ||
					      v[*len_r - 1] == ' '))
				(*len_r)--;
			return v;
		}
		p = e + 1;
	}
	return NULL;
}

/* "<response-item-N>" -> N - 1 if in 0..n-1; -1 otherwise. */
static long batch_index(const char *v, size_t len, size_t n)
{
	static const char pre[] = "<response-item-";
	char num[12];
	size_t dl;
	uint64_t k;

	if (v == NULL || len < sizeof(pre) || memcmp(v, pre, sizeof(pre) - 1) ||
	    v[len - 1] != '>')
		return -1;
	dl = len - sizeof(pre); /* digits between prefix and '>' */
	if (dl == 0 || dl >= sizeof(num))
		return -1;
	memcpy(num, v + sizeof(pre) - 1, dl);
	num[dl] = '\0';
	if (mx_parse_u64(num, 1, n, &k) != 0)
		return -1;
	return (long)(k - 1);
}

/* One part [P, END): outer headers, then an HTTP response. */
static int batch_part(const char *p, const char *end, const char *const *ids,
		      size_t n, struct mx_gmail_batch_item *items, bool *seen,
		      struct mx_error *err)
{
	static const char what[] = "Gmail API batch";
	const char *hend, *inner, *ihend, *body, *cid;
	struct mx_gmail_batch_item *it;
	enum mx_gmail_action act;
	size_t cidlen, ralen;
	long idx, status;

	inner = headers_end(p, end, &hend);
	if (inner == NULL)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "%s: a part without headers", what);
	cid = header_get(p, hend, "Content-ID", &cidlen);
	idx = batch_index(cid, cid ? cidlen : 0, n);
	if (idx < 0)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "%s: a part with no or an unknown "
				    "Content-ID", what);
	if (seen[idx])
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "%s: two answers for item %ld", what,
				    idx + 1);
	seen[idx] = true;
	/* "HTTP/1.1 200 OK" */
	if (end - inner < 12 || strncmp(inner, "HTTP/1.", 7) != 0 ||
	    inner[8] != ' ' || inner[9] < '1' || inner[9] > '5' ||
	    inner[10] < '0' || inner[10] > '9' || inner[11] < '0' ||
	    inner[11] > '9' || (end - inner > 12 && inner[12] != ' ' &&
				inner[12] != '\r' && inner[12] != '\n'))
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "%s: item %ld: no HTTP status line", what,
				    idx + 1);
	status = (inner[9] - '0') * 100 + (inner[10] - '0') * 10 +
		 (inner[11] - '0');
	body = headers_end(inner, end, &ihend);
	if (body == NULL) {
		body = end; /* a status without headers or body */
		ihend = inner;
	}
	it = &items[idx];
	if (status == 200) {
		it->rc = mx_gmail_parse_msg(body, (size_t)(end - body),
					    &it->msg, &it->err);
		if (it->rc == MX_OK && strcmp(it->msg.id, ids[idx]) != 0)
			return mx_error_set(err, MX_ERR_PROTOCOL,
					    "%s: item %ld answers for another "
					    "message", what, idx + 1);
		return MX_OK;
	}
	act = mx_gmail_map_error(MX_GMAIL_MESSAGES_GET, status, body,
				 (size_t)(end - body), &it->err);
	it->rc = it->err.code;
	it->rate = act == MX_GMAIL_RATE;
	it->retry = it->rate || act == MX_GMAIL_BACKOFF;
	if (it->rate) {
		const char *ra = header_get(inner, ihend, "Retry-After", &ralen);

		if (ra != NULL && ralen < sizeof(it->retry_after)) {
			memcpy(it->retry_after, ra, ralen);
			it->retry_after[ralen] = '\0';
		}
	}
	return MX_OK;
}

int mx_gmail_parse_batch(const char *content_type, const char *body,
			 size_t len, const char *const *ids, size_t n,
			 struct mx_gmail_batch_item *items,
			 struct mx_error *err)
{
	const char *end = body + len, *p, *part = NULL;
	char bnd[80], delim[84];
	bool seen[MX_GMAIL_BATCH_MAX] = {false}, any = false;
	size_t dl, i;
	int rc = MX_OK;

	memset(items, 0, n * sizeof(*items));
	if (n > MX_GMAIL_BATCH_MAX)
		return mx_error_set(err, MX_ERR_INVAL, "Gmail API batch: %zu "
				    "calls, at most %d", n, MX_GMAIL_BATCH_MAX);
	if (!batch_boundary(content_type, bnd, sizeof(bnd)))
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "Gmail API batch: the answer is not "
				    "multipart/mixed with a boundary");
	if (len > MX_GMAIL_JSON_MAX)
		return mx_error_set(err, MX_ERR_PROTOCOL,
				    "Gmail API batch: answer over %u bytes",
				    MX_GMAIL_JSON_MAX);
	dl = (size_t)snprintf(delim, sizeof(delim), "--%s", bnd);
	/* Delimiters start a line (RFC 2046 5.1.1); the CRLF before one
	 * belongs to it, not to the part. */
	for (p = body; p < end;) {
		const char *e = eol(p, end);
		size_t ll = (size_t)(e - p);

		if (ll > 0 && p[ll - 1] == '\r')
			ll--;
		if (ll >= dl && memcmp(p, delim, dl) == 0) {
			bool last = ll >= dl + 2 && p[dl] == '-' &&
				    p[dl + 1] == '-';

			if (part != NULL) {
				const char *pe = p;

				if (pe > part && pe[-1] == '\n')
					pe--;
				if (pe > part && pe[-1] == '\r')
					pe--;
				if ((rc = batch_part(part, pe, ids, n, items,
						     seen, err)) != MX_OK)
					goto out;
			}
			any = true;
			if (last) {
				part = NULL;
				break;
			}
			part = e < end ? e + 1 : end;
		}
		p = e < end ? e + 1 : end;
	}
	if (part != NULL || !any) {
		rc = mx_error_set(err, MX_ERR_PROTOCOL,
				  "Gmail API batch: the multipart answer is "
				  "cut short or has no parts");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!seen[i])
			items[i].rc = mx_error_set(&items[i].err,
						   MX_ERR_PROTOCOL,
						   "Gmail API batch: no answer "
						   "for message %s", ids[i]);
out:
	if (rc != MX_OK)
		mx_gmail_batch_free(items, n);
	return rc;
}
