/* Answers, the error shape and the query (api_int.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api_int.h"

#define JSON_TYPE "application/json; charset=utf-8"

void api_header(struct api_req *r, const char *name, const char *value)
{
	if (r->resp)
		MHD_add_response_header(r->resp, name, value);
}

void api_reply_json(struct api_req *r, unsigned status, json_t *body)
{
	char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;

	json_decref(body);
	api_reply_json_text(r, status, s);
}

void api_reply_json_text(struct api_req *r, unsigned status, char *s)
{
	if (r->resp)
		MHD_destroy_response(r->resp);
	r->resp = NULL;
	if (s == NULL) {
		static const char oom[] = "{\"error\":{\"code\":\"internal\","
			"\"message\":\"Out of memory.\",\"details\":{}}}";

		r->status = 500;
		r->resp = MHD_create_response_from_buffer(
			sizeof(oom) - 1, (void *)(uintptr_t)oom,
			MHD_RESPMEM_PERSISTENT);
	} else {
		r->status = status;
		r->resp = MHD_create_response_from_buffer(
			strlen(s), s, MHD_RESPMEM_MUST_FREE);
		if (r->resp == NULL)
			free(s);
	}
	api_header(r, "Content-Type", JSON_TYPE);
	api_header(r, "Cache-Control", "no-store");
}

static void verror(struct api_req *r, unsigned status, const char *code,
		   json_t *details, const char *fmt, va_list ap)
	__attribute__((format(printf, 5, 0)));

static void verror(struct api_req *r, unsigned status, const char *code,
		   json_t *details, const char *fmt, va_list ap)
{
	char msg[512];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	api_reply_json(r, status,
		       json_pack("{s:{s:s,s:s,s:o}}", "error", "code", code,
				 "message", msg, "details",
				 details ? details : json_object()));
	if (status == 401)
		api_header(r, "WWW-Authenticate", "Bearer realm=\"mxsync\"");
}

void api_error(struct api_req *r, unsigned status, const char *code,
	       json_t *details, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(r, status, code, details, fmt, ap);
	va_end(ap);
}

void api_bad_param(struct api_req *r, const char *name, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verror(r, 400, "invalid_parameter",
	       json_pack("{s:s}", "parameter", name), fmt, ap);
	va_end(ap);
}

void api_fail(struct api_req *r, const struct mx_error *err)
{
	const char *d = err->detail[0] ? err->detail : mx_strerror(err->code);

	switch (err->code) {
	case MX_ERR_NOTFOUND:
		api_error(r, 404, "not_found", NULL, "Not found.");
		break;
	case MX_ERR_EXPIRED:
		api_error(r, 410, "cursor_expired", NULL,
			  "The cursor is older than the retained event feed "
			  "(%s): resync.", d);
		break;
	case MX_ERR_INVAL:
	case MX_ERR_PARSE:
	case MX_ERR_CHARSET:
		/* What the request asked for is well-formed but not valid
		 * (a bad setting, address or header): semantic. */
		api_error(r, 422, "invalid_value", NULL, "%s.", d);
		break;
	case MX_ERR_EXISTS:
		api_error(r, 409, "conflict", NULL, "%s.", d);
		break;
	case MX_ERR_UNSUPPORTED:
		api_error(r, 422, "unsupported", NULL, "%s.", d);
		break;
	case MX_ERR_NET:
	case MX_ERR_TIMEOUT:
	case MX_ERR_TLS:
	case MX_ERR_TLS_VERIFY:
	case MX_ERR_SERVER:
	case MX_ERR_AUTH:
	case MX_ERR_PROTOCOL:
	case MX_ERR_INSECURE:
		/* The mail server or provider refused or did not answer (a
		 * live fetch, a flag change, a move): its words are in D. */
		api_error(r, 502, "upstream", NULL, "%s.", d);
		break;
	default:
		mx_log(MX_LOG_ERROR, "api: %s %s: %s", r->method, r->url, d);
		api_error(r, 500, "internal", NULL, "Internal error (logged).");
		break;
	}
}

/* ---- the query ---- */

const char *api_query(struct api_req *r, const char *name)
{
	for (size_t i = 0; i < r->nq; i++)
		if (strcmp(r->qk[i], name) == 0)
			return r->qv[i];
	return NULL;
}

bool api_query_check(struct api_req *r, const char *const *allowed)
{
	if (r->q_bad) {
		api_bad_param(r, r->q_bad_name ? r->q_bad_name : "(query)",
			      "Query parameters must be valid UTF-8 without "
			      "NUL bytes, at most %d of them.", API_MAX_QUERY);
		return false;
	}
	for (size_t i = 0; i < r->nq; i++) {
		bool ok = false;

		for (size_t k = 0; allowed[k]; k++)
			if (strcmp(allowed[k], r->qk[i]) == 0)
				ok = true;
		if (!ok) {
			api_bad_param(r, r->qk[i], "Unknown query parameter "
				      "'%s'.", r->qk[i]);
			return false;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(r->qk[k], r->qk[i]) == 0) {
				api_bad_param(r, r->qk[i], "Query parameter "
					      "'%s' given twice.", r->qk[i]);
				return false;
			}
	}
	return true;
}

bool api_q_u64(struct api_req *r, const char *name, uint64_t lo,
	       uint64_t hi, uint64_t *v)
{
	const char *s = api_query(r, name);

	if (s == NULL)
		return true;
	if (mx_parse_u64(s, lo, hi, v) < 0) {
		api_bad_param(r, name, "'%s' must be a whole number from %llu "
			      "to %llu.", name, (unsigned long long)lo,
			      (unsigned long long)hi);
		return false;
	}
	return true;
}

bool api_q_bool(struct api_req *r, const char *name, int *v)
{
	const char *s = api_query(r, name);

	*v = -1;
	if (s == NULL)
		return true;
	if (strcmp(s, "true") == 0)
		*v = 1;
	else if (strcmp(s, "false") == 0)
		*v = 0;
	else {
		api_bad_param(r, name, "'%s' must be true or false.", name);
		return false;
	}
	return true;
}

bool api_q_time(struct api_req *r, const char *name, int64_t *v, bool *set)
{
	const char *s = api_query(r, name);

	*set = false;
	if (s == NULL)
		return true;
	if (!mx_api_parse_time(s, v)) {
		api_bad_param(r, name, "'%s' must be an RFC 3339 date-time "
			      "(2026-01-31T09:00:00Z).", name);
		return false;
	}
	*set = true;
	return true;
}

/* N digits at S as a number, or -1. */
static int digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

bool mx_api_parse_time(const char *s, int64_t *t_r)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
				    30, 31};
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, off = 0;
	const char *p;

	if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
		return false;
	y = digits(s, 4);
	mo = digits(s + 5, 2);
	d = digits(s + 8, 2);
	h = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	sec = digits(s + 17, 2);
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return false;
	p = s + 19;
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;

		/* "+HH:MM" exactly: nothing is read past the string. */
		if (strlen(p) != 6 || p[3] != ':')
			return false;
		oh = digits(p + 1, 2);
		om = digits(p + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return false;
		off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*t_r = (int64_t)timegm(&tm) - off;
	return true;
}

/* Percent-decodes N bytes at S ('+' is a space) into a new string; NULL
 * on a bad escape, a NUL byte or invalid UTF-8. */
static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	size_t o = 0;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 2 >= n || mx_hexval(s[i + 1]) < 0 ||
			    mx_hexval(s[i + 2]) < 0) {
				free(out);
				return NULL;
			}
			c = mx_hexval(s[i + 1]) * 16 + mx_hexval(s[i + 2]);
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c == 0) {
			free(out);
			return NULL;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (!mx_utf8_valid_str(out)) {
		free(out);
		return NULL;
	}
	return out;
}

bool mx_api_query_decode(const char *qs, size_t n, char **keys,
			 char **vals, size_t cap, size_t *n_r, char **bad_r)
{
	size_t i = 0, nk = 0;

	*n_r = 0;
	*bad_r = NULL;
	while (i < n) {
		size_t e = i, eq;

		while (e < n && qs[e] != '&')
			e++;
		if (e > i) {
			for (eq = i; eq < e && qs[eq] != '='; eq++)
				;
			char *key = pct_decode(qs + i, eq - i), *val;

			if (key == NULL)
				goto bad;
			val = nk < cap ? pct_decode(qs + eq + (eq < e),
						    e - eq - (eq < e)) : NULL;
			if (val == NULL) {
				*bad_r = key;
				goto bad;
			}
			keys[nk] = key;
			vals[nk] = val;
			nk++;
		}
		i = e + 1;
	}
	*n_r = nk;
	return true;
bad:
	for (size_t k = 0; k < nk; k++) {
		free(keys[k]);
		free(vals[k]);
	}
	return false;
}

bool mx_api_part_id_ok(const char *s)
{
	size_t n = strlen(s), digits = 0;

	if (n == 0 || n > 64)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			digits++;
		} else if (*p == '.' && digits) {
			digits = 0;
		} else {
			return false;
		}
	}
	return digits > 0; /* no empty section, none after a last dot */
}

char *mx_api_disposition(const char *filename)
{
	static const char attr[] = "!#$&+-.^_`|~"; /* RFC 5987 attr-char */
	static const char hex[] = "0123456789ABCDEF";
	struct mx_buf b = {0};

	if (mx_buf_append(&b, "attachment", 10) < 0)
		goto nomem;
	if (filename && *filename) {
		/* Every byte but an attr-char is %XX: nothing from the mail
		 * (quotes, CR, LF, ';', non-ASCII) reaches the header raw. */
		if (mx_buf_append(&b, "; filename*=UTF-8''", 19) < 0)
			goto nomem;
		for (const unsigned char *p = (const unsigned char *)filename;
		     *p; p++) {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};

			if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || strchr(attr, *p) != NULL) {
				if (mx_buf_append(&b, p, 1) < 0)
					goto nomem;
			} else if (mx_buf_append(&b, e, 3) < 0) {
				goto nomem;
			}
		}
	}
	return mx_buf_steal(&b);
nomem:
	mx_buf_free(&b);
	return NULL;
}

/* ---- the request body ---- */

const char *api_body_raw(struct api_req *r, size_t *len_r)
{
	if (r->body.data == NULL || r->body.len == 0) {
		*len_r = 0;
		return "";
	}
	/* mx_buf keeps room for a terminator after its bytes. */
	if (mx_buf_reserve(&r->body, 1) == 0)
		r->body.data[r->body.len] = '\0';
	*len_r = r->body.len;
	return r->body.data;
}

const char *api_content_type(struct api_req *r)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
					   MHD_HTTP_HEADER_CONTENT_TYPE);
}

/* Whether CT is application/json with no charset or charset=utf-8. */
static bool json_type_ok(const char *ct)
{
	static const char want[] = "application/json";
	const char *p;

	if (ct == NULL || strncasecmp(ct, want, sizeof(want) - 1) != 0)
		return false;
	p = ct + sizeof(want) - 1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0')
		return true;
	if (*p++ != ';')
		return false;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncasecmp(p, "charset=", 8) != 0)
		return false;
	p += 8;
	if (*p == '"')
		return strncasecmp(p, "\"utf-8\"", 7) == 0 && p[7] == '\0';
	return strcasecmp(p, "utf-8") == 0;
}

bool api_body_json(struct api_req *r, json_t **obj_r)
{
	json_error_t je;
	const char *b;
	size_t n;
	json_t *v;

	*obj_r = NULL;
	if (!json_type_ok(api_content_type(r))) {
		api_error(r, 415, "unsupported_media_type",
			  json_pack("{s:s}", "expected", "application/json"),
			  "The body must be application/json (UTF-8).");
		return false;
	}
	b = api_body_raw(r, &n);
	if (n == 0) {
		api_error(r, 400, "bad_json", NULL,
			  "The request body is empty: a JSON object is "
			  "expected.");
		return false;
	}
	/* jansson checks UTF-8 and refuses \u0000 in strings. */
	v = json_loadb(b, n, JSON_REJECT_DUPLICATES, &je);
	if (v == NULL) {
		api_error(r, 400, "bad_json",
			  json_pack("{s:i,s:i}", "line", je.line, "column",
				    je.column),
			  "Invalid JSON at line %d, column %d: %s.", je.line,
			  je.column, je.text);
		return false;
	}
	if (!json_is_object(v)) {
		json_decref(v);
		api_error(r, 400, "bad_request", NULL,
			  "The request body must be a JSON object.");
		return false;
	}
	*obj_r = v;
	return true;
}

bool api_fields_check(struct api_req *r, json_t *obj,
		      const char *const *allowed, const char *where)
{
	const char *k;
	json_t *v;

	json_object_foreach(obj, k, v) {
		size_t i;

		for (i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], k) == 0)
				break;
		if (allowed[i] == NULL) {
			char name[160];
			bool ok = mx_utf8_valid_str(k) && mx_term_safe(k) &&
				  strlen(k) < 100;

			snprintf(name, sizeof(name), "%s%s", where ? where : "",
				 ok ? k : "(unprintable)");
			api_error(r, 400, "unknown_field",
				  json_pack("{s:s}", "field", name),
				  "Unknown field '%s' (unknown fields are refused, "
				  "not ignored).", name);
			return false;
		}
	}
	return true;
}

static bool bad_type(struct api_req *r, const char *name, const char *what)
{
	api_error(r, 400, "invalid_field", json_pack("{s:s}", "field", name),
		  "Field '%s' must be %s.", name, what);
	return false;
}

/* The member NAME of OBJ, or NULL; a missing REQUIRED one is answered
 * (*FAILED_R set). */
static json_t *member(struct api_req *r, json_t *obj, const char *name,
		      bool required, bool *failed_r)
{
	json_t *v = json_object_get(obj, name);

	*failed_r = false;
	if (v == NULL && required) {
		api_error(r, 400, "missing_field",
			  json_pack("{s:s}", "field", name),
			  "Field '%s' is required.", name);
		*failed_r = true;
	}
	return v;
}

bool api_j_str(struct api_req *r, json_t *obj, const char *name,
	       bool required, const char **v)
{
	bool failed;
	json_t *j = member(r, obj, name, required, &failed);

	if (failed)
		return false;
	if (j == NULL)
		return true;
	if (!json_is_string(j) ||
	    strlen(json_string_value(j)) != json_string_length(j))
		return bad_type(r, name, "a string (without NUL bytes)");
	*v = json_string_value(j);
	return true;
}

bool api_j_bool(struct api_req *r, json_t *obj, const char *name,
		bool required, int *v)
{
	bool failed;
	json_t *j = member(r, obj, name, required, &failed);

	if (failed)
		return false;
	if (j == NULL) {
		*v = -1;
		return true;
	}
	if (!json_is_boolean(j))
		return bad_type(r, name, "true or false");
	*v = json_is_true(j);
	return true;
}

bool api_j_u64(struct api_req *r, json_t *obj, const char *name,
	       bool required, uint64_t lo, uint64_t hi, uint64_t *v,
	       bool *set_r)
{
	bool failed;
	json_t *j = member(r, obj, name, required, &failed);
	json_int_t x;

	if (set_r)
		*set_r = false;
	if (failed)
		return false;
	if (j == NULL)
		return true;
	if (!json_is_integer(j) || (x = json_integer_value(j)) < 0 ||
	    (uint64_t)x < lo || (uint64_t)x > hi) {
		char what[80];

		snprintf(what, sizeof(what), "an integer from %llu to %llu",
			 (unsigned long long)lo, (unsigned long long)hi);
		return bad_type(r, name, what);
	}
	*v = (uint64_t)x;
	if (set_r)
		*set_r = true;
	return true;
}

bool api_j_strv(struct api_req *r, json_t *obj, const char *name,
		bool required, const char ***v, size_t *n)
{
	bool failed;
	json_t *j = member(r, obj, name, required, &failed), *e;
	const char **vec;
	size_t i;

	if (failed)
		return false;
	if (j == NULL)
		return true;
	if (!json_is_array(j))
		return bad_type(r, name, "an array of strings");
	vec = calloc(json_array_size(j) + 1, sizeof(*vec));
	if (vec == NULL) {
		api_error(r, 500, "internal", NULL, "Out of memory.");
		return false;
	}
	json_array_foreach(j, i, e) {
		if (!json_is_string(e) ||
		    strlen(json_string_value(e)) != json_string_length(e)) {
			free(vec);
			return bad_type(r, name, "an array of strings (without "
					"NUL bytes)");
		}
		vec[i] = json_string_value(e);
	}
	*v = vec;
	*n = json_array_size(j);
	return true;
}

bool api_require_admin(struct api_req *r)
{
	if (r->authed && r->tok.admin)
		return true;
	api_error(r, 403, "forbidden", NULL,
		  "This needs an admin token (mxsync token create --admin).");
	return false;
}

void api_kick(struct api_req *r, enum mx_api_kick what, uint32_t account_id)
{
	struct mx_api *api = r->api;

	if (api->hooks.kick)
		api->hooks.kick(api->hooks.ctx, what, account_id);
}

void api_reply_no_content(struct api_req *r)
{
	if (r->resp)
		MHD_destroy_response(r->resp);
	r->status = 204;
	r->resp = MHD_create_response_from_buffer(0, NULL,
						  MHD_RESPMEM_PERSISTENT);
	if (r->resp == NULL) {
		api_error(r, 500, "internal", NULL, "Out of memory.");
		return;
	}
	api_header(r, "Cache-Control", "no-store");
}

bool api_read_begin(struct api_req *r, struct mx_txn *t)
{
	struct mx_error err;

	if (mx_txn_begin(r->api->st, false, t, &err) != MX_OK) {
		api_fail(r, &err);
		return false;
	}
	return true;
}
