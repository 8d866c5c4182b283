/* multipart/form-data, strictly (multipart.h has the grammar accepted). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/multipart.h"
#include "util/util.h"

#define MAX_HEADER 8192
#define MAX_NAME 255
#define MAX_FILENAME 1024
#define MAX_CTYPE 255

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 2045's token characters (tspecials and controls excluded). */
static bool is_tchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* RFC 2046's bchars; SPACE only inside (the caller checks the end). */
static bool is_bchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c && strchr("'()+_,-./:=? ", c));
}

bool mx_api_multipart_boundary(const char *ctype, char buf[71])
{
	static const char type[] = "multipart/form-data";
	const char *p = ctype;
	bool have = false;

	while (is_ws(*p))
		p++;
	if (strncasecmp(p, type, sizeof(type) - 1) != 0)
		return false;
	p += sizeof(type) - 1;
	for (;;) {
		size_t n = 0;

		while (is_ws(*p))
			p++;
		if (*p == '\0')
			break;
		if (*p++ != ';')
			return false;
		while (is_ws(*p))
			p++;
		if (strncasecmp(p, "boundary=", 9) != 0 || have)
			return false;
		p += 9;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (!is_bchar((unsigned char)*p) || n == 70)
					return false;
				buf[n++] = *p;
			}
			if (*p++ != '"')
				return false;
		} else {
			for (; is_tchar((unsigned char)*p) &&
			       is_bchar((unsigned char)*p); p++) {
				if (n == 70)
					return false;
				buf[n++] = *p;
			}
		}
		if (n == 0 || buf[n - 1] == ' ')
			return false;
		buf[n] = '\0';
		have = true;
	}
	return have;
}

struct mp {
	char *errbuf;
	size_t errcap;
	size_t part; /* 1-based, for messages */
};

static bool fail(struct mp *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static bool fail(struct mp *m, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (m->part)
		n = snprintf(m->errbuf, m->errcap, "multipart part %zu: ",
			     m->part);
	if (n < 0 || (size_t)n >= m->errcap)
		n = 0;
	va_start(ap, fmt);
	vsnprintf(m->errbuf + n, m->errcap - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

/* V (N bytes) as a new string: valid UTF-8, no control characters, at
 * most MAX bytes.  NULL with the message set otherwise. */
static char *clean_value(struct mp *m, const char *what, const char *v,
			 size_t n, size_t max)
{
	char *s;

	if (n == 0 || n > max) {
		fail(m, "%s must be 1 to %zu bytes", what, max);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) {
			fail(m, "%s contains a control character", what);
			return NULL;
		}
	s = mx_strndup(v, n);
	if (s == NULL) {
		fail(m, "out of memory");
		return NULL;
	}
	if (!mx_utf8_valid_str(s)) {
		free(s);
		fail(m, "%s is not valid UTF-8", what);
		return NULL;
	}
	return s;
}

/* One parameter value of Content-Disposition from *PP (up to END): a
 * quoted string (with '\' escapes) or a token, decoded into OUT. */
static bool param_value(struct mp *m, const char **pp, const char *end,
			const char *what, size_t max, char **out)
{
	const char *p = *pp;
	char buf[MAX_FILENAME + 1];
	size_t n = 0;

	if (p < end && *p == '"') {
		for (p++; p < end && *p != '"'; p++) {
			if (*p == '\\' && p + 1 < end)
				p++;
			if (n == max)
				return fail(m, "%s must be 1 to %zu bytes", what,
					    max);
			buf[n++] = *p;
		}
		if (p == end)
			return fail(m, "%s: unterminated quoted string", what);
		p++;
	} else {
		for (; p < end && is_tchar((unsigned char)*p); p++) {
			if (n == max)
				return fail(m, "%s must be 1 to %zu bytes", what,
					    max);
			buf[n++] = *p;
		}
	}
	*out = clean_value(m, what, buf, n, max);
	*pp = p;
	return *out != NULL;
}

static bool disposition(struct mp *m, const char *v, const char *end,
			struct mx_api_part *pt)
{
	static const char fd[] = "form-data";
	const char *p = v;

	if ((size_t)(end - p) < sizeof(fd) - 1 ||
	    strncasecmp(p, fd, sizeof(fd) - 1) != 0)
		return fail(m, "Content-Disposition must be form-data");
	p += sizeof(fd) - 1;
	if (p < end && !is_ws(*p) && *p != ';')
		return fail(m, "Content-Disposition must be form-data");
	for (;;) {
		const char *pn;
		size_t pl;

		while (p < end && is_ws(*p))
			p++;
		if (p == end)
			break;
		if (*p++ != ';')
			return fail(m, "Content-Disposition: ';' expected "
				    "between parameters");
		while (p < end && is_ws(*p))
			p++;
		pn = p;
		while (p < end && is_tchar((unsigned char)*p) && *p != '*')
			p++;
		pl = (size_t)(p - pn);
		if (p < end && *p == '*')
			return fail(m, "Content-Disposition: extended "
				    "parameters (filename*) are not used in "
				    "form-data (RFC 7578 4.2); send the UTF-8 "
				    "file name in filename=\"...\"");
		if (p == end || *p != '=')
			return fail(m, "Content-Disposition: parameter without "
				    "'=value'");
		p++;
		if (pl == 4 && strncasecmp(pn, "name", 4) == 0) {
			if (pt->name)
				return fail(m, "Content-Disposition: name "
					    "given twice");
			if (!param_value(m, &p, end, "the part name", MAX_NAME,
					 &pt->name))
				return false;
		} else if (pl == 8 && strncasecmp(pn, "filename", 8) == 0) {
			if (pt->filename)
				return fail(m, "Content-Disposition: filename "
					    "given twice");
			if (!param_value(m, &p, end, "the file name",
					 MAX_FILENAME, &pt->filename))
				return false;
		} else {
			return fail(m, "Content-Disposition: unknown parameter "
				    "'%.*s'", (int)(pl > 40 ? 40 : pl), pn);
		}
	}
	if (pt->name == NULL)
		return fail(m, "Content-Disposition has no name");
	return true;
}

/* One header line LINE..END (CRLF excluded) of part PT; SEEN counts
 * Content-Disposition, Content-Type and Content-Transfer-Encoding. */
static bool header(struct mp *m, const char *line, const char *end,
		   struct mx_api_part *pt, unsigned seen[3])
{
	const char *colon, *v, *ve;
	size_t nl;

	if (memchr(line, '\0', (size_t)(end - line)) ||
	    memchr(line, '\n', (size_t)(end - line)) ||
	    memchr(line, '\r', (size_t)(end - line)))
		return fail(m, "a header line contains NUL, CR or LF");
	if (is_ws(*line))
		return fail(m, "folded header lines are not accepted");
	colon = memchr(line, ':', (size_t)(end - line));
	if (colon == NULL)
		return fail(m, "a header line has no ':'");
	nl = (size_t)(colon - line);
	for (const char *p = line; p < colon; p++)
		if (!is_tchar((unsigned char)*p))
			return fail(m, "bad header name");
	v = colon + 1;
	while (v < end && is_ws(*v))
		v++;
	ve = end;
	while (ve > v && is_ws(ve[-1]))
		ve--;
	if (nl == 19 && strncasecmp(line, "Content-Disposition", nl) == 0) {
		if (seen[0]++)
			return fail(m, "Content-Disposition given twice");
		return disposition(m, v, ve, pt);
	}
	if (nl == 12 && strncasecmp(line, "Content-Type", nl) == 0) {
		if (seen[1]++)
			return fail(m, "Content-Type given twice");
		pt->content_type = clean_value(m, "Content-Type", v,
					       (size_t)(ve - v), MAX_CTYPE);
		return pt->content_type != NULL;
	}
	if (nl == 25 &&
	    strncasecmp(line, "Content-Transfer-Encoding", nl) == 0) {
		size_t n = (size_t)(ve - v);

		if (seen[2]++)
			return fail(m, "Content-Transfer-Encoding given twice");
		if ((n == 4 && strncasecmp(v, "7bit", 4) == 0) ||
		    (n == 4 && strncasecmp(v, "8bit", 4) == 0) ||
		    (n == 6 && strncasecmp(v, "binary", 6) == 0))
			return true;
		return fail(m, "Content-Transfer-Encoding must be 7bit, 8bit "
			    "or binary (RFC 7578 4.7)");
	}
	return fail(m, "header '%.*s' is not accepted (only "
		    "Content-Disposition, Content-Type, "
		    "Content-Transfer-Encoding)", (int)(nl > 40 ? 40 : nl), line);
}

void mx_api_parts_free(struct mx_api_part *parts, size_t n)
{
	for (size_t i = 0; parts && i < n; i++) {
		free(parts[i].name);
		free(parts[i].filename);
		free(parts[i].content_type);
	}
	free(parts);
}

bool mx_api_multipart_parse(const char *boundary, const char *body,
			    size_t len, size_t max_parts,
			    struct mx_api_part **parts_r, size_t *n_r,
			    char *errbuf, size_t errcap)
{
	struct mp m = {errbuf, errcap, 0};
	struct mx_api_part *v = NULL;
	const char *p = body, *end = body + len;
	char delim[2 + 2 + 70 + 1];
	size_t bl = strlen(boundary), n = 0;
	bool ok = false;

	*parts_r = NULL;
	*n_r = 0;
	if (bl == 0 || bl > 70)
		return fail(&m, "bad boundary");
	/* The delimiter is CRLF "--" boundary; the first one has no CRLF. */
	snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	if (len < bl + 2 || memcmp(p, delim + 2, bl + 2) != 0)
		return fail(&m, "the body must start with the boundary line "
			    "\"--%s\"", boundary);
	p += bl + 2;
	v = calloc(max_parts ? max_parts : 1, sizeof(*v));
	if (v == NULL)
		return fail(&m, "out of memory");
	for (;;) {
		const char *hend, *d;
		unsigned seen[3] = {0, 0, 0};
		struct mx_api_part *pt;

		if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
			p += 2;
			if (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
				p += 2;
			m.part = 0;
			if (p != end)
				fail(&m, "data after the closing boundary");
			else if (n == 0)
				fail(&m, "no parts");
			else
				ok = true;
			break;
		}
		m.part = n + 1;
		while (p < end && is_ws(*p))
			p++;
		if (end - p < 2 || p[0] != '\r' || p[1] != '\n') {
			fail(&m, "the boundary line must end in CRLF "
			     "(or the body is cut short)");
			break;
		}
		p += 2;
		if (n == max_parts) {
			fail(&m, "more than %zu parts", max_parts);
			break;
		}
		pt = &v[n++];
		/* The header lines, up to the empty line. */
		hend = p + MAX_HEADER < end ? p + MAX_HEADER : end;
		for (;;) {
			const char *eol = memmem(p, (size_t)(hend - p), "\r\n", 2);

			if (eol == NULL) {
				fail(&m, "the header lines must end in an empty "
				     "line within %d bytes", MAX_HEADER);
				goto out;
			}
			if (eol == p) {
				p += 2;
				break;
			}
			if (!header(&m, p, eol, pt, seen))
				goto out;
			p = eol + 2;
		}
		if (!seen[0]) {
			fail(&m, "no Content-Disposition header");
			break;
		}
		d = memmem(p, (size_t)(end - p), delim, bl + 4);
		if (d == NULL) {
			fail(&m, "no boundary after its content (the body is "
			     "cut short?)");
			break;
		}
		pt->data = p;
		pt->len = (size_t)(d - p);
		p = d + bl + 4;
	}
out:
	if (!ok) {
		mx_api_parts_free(v, n);
		return false;
	}
	*parts_r = v;
	*n_r = n;
	return true;
}
