/* Answers, the error shape and the query (api_int.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
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
		api_error(r, 400, "bad_request", NULL, "%s.", d);
		break;
	case MX_ERR_NET:
	case MX_ERR_TIMEOUT:
	case MX_ERR_TLS:
	case MX_ERR_SERVER:
	case MX_ERR_AUTH:
		/* A live fetch from the provider (API-mode bodies). */
		api_error(r, 503, "unavailable", NULL, "%s.", d);
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
