/*
 * Message composition: validation, then one streaming pass that writes the
 * header and the MIME tree to a FILE.  Why this does not use libetpan's
 * mailmime writer is in doc/internals/send.md ("Composition").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "mime/mime.h" /* mx_utf8_decode1(): one UTF-8 decoder */
#include "send/compose.h"

/* ------------------------------------------------------------------ */
/* Output: counts bytes and the column, remembers the first error.     */

struct wr {
	FILE *f;
	uint64_t n;
	size_t col;      /* characters on the current line so far */
	bool line_tok;   /* header writer: a token is on the current line */
	bool failed;
};

static void w_put(struct wr *w, const char *s, size_t n)
{
	const char *nl;

	if (n == 0 || w->failed)
		return;
	if (fwrite(s, 1, n, w->f) != n) {
		w->failed = true;
		return;
	}
	w->n += n;
	nl = memrchr(s, '\n', n);
	w->col = nl ? (size_t)(s + n - nl - 1) : w->col + n;
}

static void w_puts(struct wr *w, const char *s)
{
	w_put(w, s, strlen(s));
}

/* ------------------------------------------------------------------ */
/* Validation helpers                                                  */

/* Refuses controls (line breaks named as such) and invalid UTF-8. */
static int check_value(const char *field, const char *s, size_t max,
		       struct mx_error *err)
{
	const unsigned char *p;
	size_t n = strlen(s);

	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '\r' || *p == '\n')
			return mx_error_set(err, MX_ERR_INVAL,
					    "%s contains a line break (CR/LF): "
					    "refused", field);
		if (*p < 0x20 || *p == 0x7f)
			return mx_error_set(err, MX_ERR_INVAL,
					    "%s contains a control character "
					    "(0x%02x): refused", field, *p);
	}
	if (!mx_utf8_valid_str(s))
		return mx_error_set(err, MX_ERR_INVAL,
				    "%s is not valid UTF-8: refused", field);
	if (max > 0 && n > max)
		return mx_error_set(err, MX_ERR_INVAL,
				    "%s is too long (%zu bytes, at most %zu)",
				    field, n, max);
	return MX_OK;
}

static bool is_ascii(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return false;
	return true;
}

/* RFC 5322 atext. */
static bool is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* ------------------------------------------------------------------ */
/* Addresses: a strict reader for what a user or a program gives us.   */
/* (src/lib/mime's reader is tolerant by design: it reads whatever a    */
/* server sent and never fails, which is the wrong contract here.)      */

struct addr {
	char *name; /* UTF-8 display name or NULL */
	char *spec; /* local@domain, domain lower-cased */
};

struct alist {
	struct addr *v;
	size_t n;
};

static void alist_free(struct alist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].spec);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Why SPEC (N bytes, trimmed) is not an ASCII addr-spec, or NULL. */
static const char *spec_problem(const char *s, size_t n)
{
	const char *at = NULL, *p, *e = s + n, *d;
	size_t lab;

	if (n == 0)
		return "empty address";
	if (!is_ascii(s, n))
		return "non-ASCII addresses are not supported (use the xn-- "
		       "form of an international domain)";
	if (n > 254)
		return "longer than 254 characters";
	if (*s == '"') {
		for (p = s + 1; p < e && *p != '"'; p++)
			if (*p == '\\' && ++p == e)
				break;
		if (p >= e)
			return "unterminated quoted local part";
		at = p + 1;
		if (at >= e || *at != '@')
			return "no '@' after the quoted local part";
	} else {
		for (p = s; p < e && *p != '@'; p++)
			if (!is_atext((unsigned char)*p) &&
			    !(*p == '.' && p > s && p[-1] != '.'))
				return "invalid character in the local part";
		if (p == e)
			return "no '@'";
		if (p == s)
			return "empty local part";
		if (p[-1] == '.')
			return "local part ends with a dot";
		at = p;
	}
	if (at - s > 64)
		return "local part longer than 64 characters";
	d = at + 1;
	if (d == e)
		return "empty domain";
	if (*d == '[') {
		if (e[-1] != ']' || e - d < 3)
			return "unterminated domain literal";
		for (p = d + 1; p < e - 1; p++)
			if (*p == '[' || *p == ']' || *p == '\\' || *p == ' ')
				return "invalid domain literal";
		return NULL;
	}
	for (lab = 0, p = d; p <= e; p++) {
		if (p == e || *p == '.') {
			if (lab == 0)
				return "empty label in the domain";
			if (lab > 63)
				return "domain label longer than 63 characters";
			if (p[-1] == '-' || p[-(ptrdiff_t)lab] == '-')
				return "domain label begins or ends with '-'";
			lab = 0;
		} else if ((*p >= 'a' && *p <= 'z') ||
			   (*p >= 'A' && *p <= 'Z') ||
			   (*p >= '0' && *p <= '9') || *p == '-') {
			lab++;
		} else {
			return "invalid character in the domain";
		}
	}
	return NULL;
}

static int bad_addr(const char *field, const char *s, size_t n,
		    const char *why, struct mx_error *err)
{
	return mx_error_set(err, MX_ERR_INVAL, "%s: invalid address '%.*s': %s",
			    field, (int)(n > 120 ? 120 : n), s, why);
}

/* The display name before '<': words joined by one space, quotes
 * removed.  *NAME_R NULL when empty. */
static int read_phrase(const char *field, const char *s, size_t n,
		       char **name_r, struct mx_error *err)
{
	struct mx_buf b = {0};
	const char *p = s, *e = s + n;
	bool sep = false;

	*name_r = NULL;
	while (p < e) {
		if (*p == ' ' || *p == '\t') {
			sep = b.len > 0;
			p++;
			continue;
		}
		if (sep && mx_buf_append(&b, " ", 1) < 0)
			goto nomem;
		sep = false;
		if (*p == '"') {
			for (p++; p < e && *p != '"'; p++) {
				if (*p == '\\' && p + 1 < e)
					p++;
				if (mx_buf_append(&b, p, 1) < 0)
					goto nomem;
			}
			if (p == e) {
				mx_buf_free(&b);
				return bad_addr(field, s, n, "unterminated quoted "
						"display name", err);
			}
			p++;
		} else if (strchr("()<>[]:;@\\,", *p)) {
			mx_buf_free(&b);
			return bad_addr(field, s, n, *p == '(' ?
					"comments are not supported" :
					*p == ':' ? "group syntax is not supported" :
					"special character in the display name "
					"(quote it)", err);
		} else {
			const char *w = p;

			while (p < e && !strchr(" \t\"()<>[]:;@\\,", *p))
				p++;
			if (mx_buf_append(&b, w, (size_t)(p - w)) < 0)
				goto nomem;
		}
	}
	if (b.len > MX_COMPOSE_MAX_NAME) {
		mx_buf_free(&b);
		return bad_addr(field, s, n, "display name too long", err);
	}
	if (b.len > 0)
		*name_r = mx_buf_steal(&b);
	mx_buf_free(&b);
	return MX_OK;
nomem:
	mx_buf_free(&b);
	return mx_error_set(err, MX_ERR_NOMEM, "out of memory");
}

static char *spec_dup(const char *s, size_t n)
{
	char *r = mx_strndup(s, n), *at, *q;

	if (r == NULL)
		return NULL;
	at = strrchr(r, '@');
	for (q = at; q && *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	return r;
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* One entry (between commas): "addr-spec" or "[phrase] <addr-spec>". */
static int read_entry(const char *field, const char *s, size_t n,
		      struct alist *l, struct mx_error *err)
{
	const char *lt = NULL, *gt = NULL, *p, *spec;
	size_t sn;
	char *name = NULL, *sp;
	const char *why;
	struct addr *v;
	bool q = false;
	int rc;

	for (p = s; p < s + n; p++) {
		if (*p == '\\' && q)
			p++;
		else if (*p == '"')
			q = !q;
		else if (!q && *p == '<' && lt == NULL)
			lt = p;
		else if (!q && *p == '>' && lt != NULL && gt == NULL)
			gt = p;
	}
	if (lt != NULL) {
		if (gt == NULL)
			return bad_addr(field, s, n, "missing '>'", err);
		for (p = gt + 1; p < s + n; p++)
			if (*p != ' ' && *p != '\t')
				return bad_addr(field, s, n, "text after '>'",
						err);
		rc = read_phrase(field, s, (size_t)(lt - s), &name, err);
		if (rc != MX_OK)
			return rc;
		spec = lt + 1;
		sn = (size_t)(gt - spec);
	} else {
		for (q = false, p = s; p < s + n; p++)
			if (*p == '"' && (p == s || p[-1] != '\\'))
				q = !q;
			else if (!q && (*p == ':' || *p == ';' || *p == '('))
				return bad_addr(field, s, n, *p == '(' ?
						"comments are not supported" :
						"group syntax is not supported",
						err);
		spec = s;
		sn = n;
	}
	trim(&spec, &sn);
	why = spec_problem(spec, sn);
	if (why == NULL && (memchr(spec, '<', sn) || memchr(spec, '>', sn)))
		why = "stray '<' or '>'";
	if (why != NULL) {
		free(name);
		return bad_addr(field, s, n, why, err);
	}
	sp = spec_dup(spec, sn);
	v = sp ? realloc(l->v, (l->n + 1) * sizeof(*v)) : NULL;
	if (v == NULL) {
		free(sp);
		free(name);
		return mx_error_set(err, MX_ERR_NOMEM, "out of memory");
	}
	l->v = v;
	l->v[l->n].name = name;
	l->v[l->n].spec = sp;
	l->n++;
	return MX_OK;
}

static int read_alist(const char *field, const char *s, struct alist *l,
		      struct mx_error *err)
{
	const char *p, *start;
	size_t n;
	bool q = false, angle = false;
	int rc;

	if (s == NULL)
		return MX_OK;
	rc = check_value(field, s, 0, err);
	if (rc != MX_OK)
		return rc;
	for (start = p = s;; p++) {
		if (*p == '\\' && q && p[1] != '\0') {
			p++;
			continue;
		}
		if (*p == '"')
			q = !q;
		else if (!q && *p == '<')
			angle = true;
		else if (!q && *p == '>')
			angle = false;
		if (*p != '\0' && (*p != ',' || q || angle))
			continue;
		n = (size_t)(p - start);
		trim(&start, &n);
		if (n > 0) {
			if (l->n >= MX_COMPOSE_MAX_RCPTS)
				return mx_error_set(err, MX_ERR_INVAL,
						    "%s: more than %d addresses",
						    field, MX_COMPOSE_MAX_RCPTS);
			rc = read_entry(field, start, n, l, err);
			if (rc != MX_OK)
				return rc;
		}
		if (*p == '\0')
			break;
		start = p + 1;
	}
	return MX_OK;
}

/* ------------------------------------------------------------------ */
/* Header writing: tokens, folding at 78, RFC 2047 encoded words.      */

#define FOLD_AT 78
#define EW_LINE 76 /* RFC 2047 2: lines with encoded words */

static void h_begin(struct wr *w, const char *name)
{
	w_puts(w, name);
	w_put(w, ":", 1);
	w->line_tok = false;
}

/* A token preceded by a blank, folded onto a new line when it would
 * cross column 78 and the line already holds one. */
static void h_tok(struct wr *w, const char *t, size_t n)
{
	if (w->line_tok && w->col + 1 + n > FOLD_AT)
		w_put(w, "\r\n", 2);
	w_put(w, " ", 1);
	w_put(w, t, n);
	w->line_tok = true;
}

static void h_end(struct wr *w)
{
	w_put(w, "\r\n", 2);
}

/* RFC 2047 5(3): the characters a Q-encoded word may carry as they are
 * anywhere (the phrase rules, the strictest). */
static bool q_plain(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '!' || c == '*' || c == '+' ||
	       c == '-' || c == '/';
}

static size_t q_len(unsigned char c)
{
	return q_plain(c) || c == ' ' ? 1 : 3;
}

/*
 * Writes S (N bytes of valid UTF-8) as a run of encoded words separated by
 * folding blanks.  B or Q, whichever is shorter for the whole text; a word
 * never splits a UTF-8 sequence and no line goes past 76 characters.
 */
static void h_ew(struct wr *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	char word[80];
	size_t i, qn = 0, wl, pay, cap, k, seq;
	bool b64;
	uint32_t cp;

	for (i = 0; i < n; i++)
		qn += q_len((unsigned char)s[i]);
	b64 = qn > (n + 2) / 3 * 4;
	i = 0;
	while (i < n) {
		/* Room for the prefix, suffix and one 4-byte character. */
		if (w->line_tok && w->col + 1 + 12 + 12 > EW_LINE) {
			w_put(w, "\r\n", 2);
			w->line_tok = false;
		}
		cap = w->col + 1 + 24 <= EW_LINE ? EW_LINE - w->col - 1 : 24;
		if (cap > 75)
			cap = 75;
		cap -= 12;
		memcpy(word, b64 ? "=?UTF-8?B?" : "=?UTF-8?Q?", 10);
		wl = 10;
		pay = 0;
		k = i;
		while (k < n) {
			seq = mx_utf8_decode1((const unsigned char *)s + k,
					      n - k, &cp);
			if (seq == 0)
				seq = 1; /* validated before; never */
			if (b64) {
				if ((k + seq - i + 2) / 3 * 4 > cap)
					break;
			} else {
				size_t add = 0, j;

				for (j = 0; j < seq; j++)
					add += q_len((unsigned char)s[k + j]);
				if (pay + add > cap)
					break;
				for (j = 0; j < seq; j++) {
					unsigned char c = (unsigned char)s[k + j];

					if (q_plain(c)) {
						word[wl++] = (char)c;
					} else if (c == ' ') {
						word[wl++] = '_';
					} else {
						word[wl++] = '=';
						word[wl++] = hex[c >> 4];
						word[wl++] = hex[c & 15];
					}
				}
				pay += add;
			}
			k += seq;
		}
		if (k == i)
			return; /* cannot happen (cap >= 12); never loop */
		if (b64)
			wl += (size_t)EVP_EncodeBlock((unsigned char *)word + wl,
						      (const unsigned char *)s + i,
						      (int)(k - i));
		memcpy(word + wl, "?=", 2);
		wl += 2;
		w_put(w, " ", 1);
		w_put(w, word, wl);
		w->line_tok = true;
		i = k;
	}
}

/* An unstructured value (the subject): plain when it is ASCII, has no
 * "=?" and no word longer than 66 characters; encoded words otherwise. */
static void h_text(struct wr *w, const char *s)
{
	size_t n = strlen(s), i, start;
	bool plain = is_ascii(s, n) && strstr(s, "=?") == NULL;

	for (i = 0, start = 0; plain && i <= n; i++)
		if (i == n || s[i] == ' ') {
			if (i - start > 66)
				plain = false;
			start = i + 1;
		}
	if (!plain) {
		h_ew(w, s, n);
		return;
	}
	/* One blank between tokens is the folding point; more blanks stay
	 * in the next token. */
	for (i = 0, start = 0; i <= n; i++) {
		if (i < n && (s[i] != ' ' || i == start))
			continue;
		h_tok(w, s + start, i - start);
		start = i + 1;
	}
}

/* A display name as atoms, one quoted string or encoded words. */
static void h_name(struct wr *w, const char *name)
{
	size_t n = strlen(name), i, start;
	bool atoms = true;
	struct mx_buf q = {0};

	if (!is_ascii(name, n) || strstr(name, "=?") != NULL) {
		h_ew(w, name, n);
		return;
	}
	for (i = 0; i < n; i++)
		if (!is_atext((unsigned char)name[i]) && name[i] != ' ')
			atoms = false;
	if (atoms && name[0] != ' ' && name[n - 1] != ' ' &&
	    strstr(name, "  ") == NULL) {
		for (i = 0, start = 0; i <= n; i++)
			if (i == n || name[i] == ' ') {
				h_tok(w, name + start, i - start);
				start = i + 1;
			}
		return;
	}
	mx_buf_append(&q, "\"", 1);
	for (i = 0; i < n; i++) {
		if (name[i] == '"' || name[i] == '\\')
			mx_buf_append(&q, "\\", 1);
		mx_buf_append(&q, name + i, 1);
	}
	mx_buf_append(&q, "\"", 1);
	/* A long quoted string cannot fold cleanly: encode it instead. */
	if (q.data == NULL || q.len > 70)
		h_ew(w, name, n);
	else
		h_tok(w, q.data, q.len);
	mx_buf_free(&q);
}

static void h_addrs(struct wr *w, const char *hname, const struct alist *l)
{
	char tok[300];
	size_t i;
	int k;

	h_begin(w, hname);
	for (i = 0; i < l->n; i++) {
		if (l->v[i].name != NULL)
			h_name(w, l->v[i].name);
		k = snprintf(tok, sizeof(tok), l->v[i].name ? "<%s>%s" : "%s%s",
			     l->v[i].spec, i + 1 < l->n ? "," : "");
		h_tok(w, tok, (size_t)k);
	}
	h_end(w);
}

/* ------------------------------------------------------------------ */
/* Bodies                                                              */

enum cte { CTE_7BIT, CTE_QP, CTE_B64 };

static const char *cte_name[] = { "7bit", "quoted-printable", "base64" };

struct body {
	const char *s;
	size_t n;
	const char *type; /* "text/plain" or "text/html" */
	enum cte cte;
};

/*
 * Checks a text body (UTF-8, no NUL) and picks its encoding: 7bit for
 * ASCII with lines of at most 78 characters, no controls other than TAB,
 * no blanks at a line end and no "From " at a line start; quoted-printable when at most a third of the bytes are non-ASCII;
 * base64 otherwise.
 */
static int body_check(const char *field, struct body *b, struct mx_error *err)
{
	size_t i = 0, line = 0, maxline = 0, high = 0, seq;
	bool ctl = false, fragile = false;
	uint32_t cp;

	if (b->s == NULL && b->n > 0)
		return mx_error_set(err, MX_ERR_INVAL, "%s: no data", field);
	while (i < b->n) {
		unsigned char c = (unsigned char)b->s[i];

		if (c == '\0')
			return mx_error_set(err, MX_ERR_INVAL, "%s contains a "
					    "NUL byte: refused", field);
		if (c == '\r' || c == '\n') {
			/* Blanks before a line end may be stripped on the way,
			 * "From " at a line start may become ">From ". */
			if (i > 0 && (b->s[i - 1] == ' ' || b->s[i - 1] == '\t'))
				fragile = true;
			line = 0;
			i++;
			continue;
		}
		if (line == 0 && b->n - i >= 5 && memcmp(b->s + i, "From ", 5) == 0)
			fragile = true;
		if (c >= 0x80) {
			seq = mx_utf8_decode1((const unsigned char *)b->s + i,
					      b->n - i, &cp);
			if (seq == 0)
				return mx_error_set(err, MX_ERR_INVAL,
						    "%s is not valid UTF-8 "
						    "(at byte %zu): refused",
						    field, i);
			high += seq;
			line += seq;
			i += seq;
		} else {
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				ctl = true;
			line++;
			i++;
		}
		if (line > maxline)
			maxline = line;
	}
	if (b->n > 0 && (b->s[b->n - 1] == ' ' || b->s[b->n - 1] == '\t'))
		fragile = true;
	if (high == 0 && !ctl && !fragile && maxline <= FOLD_AT)
		b->cte = CTE_7BIT;
	else if (high <= b->n / 3)
		b->cte = CTE_QP;
	else
		b->cte = CTE_B64;
	return MX_OK;
}

/* Streaming base64: 57 input bytes make one 76-character line; the line
 * break comes before each line but the first, so the part ends without
 * one and the boundary delimiter supplies it. */
struct b64 {
	unsigned char in[57];
	size_t n;
	bool started;
};

static void b64_line(struct wr *w, struct b64 *st)
{
	char out[80];
	int k;

	k = EVP_EncodeBlock((unsigned char *)out, st->in, (int)st->n);
	if (st->started)
		w_put(w, "\r\n", 2);
	w_put(w, out, (size_t)k);
	st->started = true;
	st->n = 0;
}

static void b64_feed(struct wr *w, struct b64 *st, const void *data, size_t n)
{
	const unsigned char *p = data;
	size_t k;

	while (n > 0) {
		k = sizeof(st->in) - st->n;
		if (k > n)
			k = n;
		memcpy(st->in + st->n, p, k);
		st->n += k;
		p += k;
		n -= k;
		if (st->n == sizeof(st->in))
			b64_line(w, st);
	}
}

static void b64_finish(struct wr *w, struct b64 *st)
{
	if (st->n > 0)
		b64_line(w, st);
}

/* Line end at S[I]: its length (1 or 2), 0 if none. */
static size_t eol_len(const char *s, size_t n, size_t i)
{
	if (s[i] == '\n')
		return 1;
	if (s[i] == '\r')
		return i + 1 < n && s[i + 1] == '\n' ? 2 : 1;
	return 0;
}

/* Quoted-printable (RFC 2045 6.7) of one line, without its end. */
static void qp_line(struct wr *w, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	char u[3];
	size_t i, ul, col = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool enc = c == '=' || c >= 0x7f || (c < 0x20 && c != '\t') ||
			   ((c == ' ' || c == '\t') && i + 1 == n) ||
			   (i == 0 && n >= 5 && memcmp(s, "From ", 5) == 0);

		if (enc) {
			u[0] = '=';
			u[1] = hex[c >> 4];
			u[2] = hex[c & 15];
			ul = 3;
		} else {
			u[0] = (char)c;
			ul = 1;
		}
		/* A soft break keeps lines at 76 with the '='. */
		if (col + ul > 75) {
			w_put(w, "=\r\n", 3);
			col = 0;
		}
		w_put(w, u, ul);
		col += ul;
	}
}

/* The content of a text part in canonical form (CRLF line ends). */
static void body_write(struct wr *w, const struct body *b)
{
	struct b64 st = {0};
	size_t i = 0, start = 0, e;

	for (i = 0; i <= b->n; i++) {
		e = i < b->n ? eol_len(b->s, b->n, i) : 0;
		if (i < b->n && e == 0)
			continue;
		if (b->cte == CTE_B64) {
			b64_feed(w, &st, b->s + start, i - start);
			if (e)
				b64_feed(w, &st, "\r\n", 2);
		} else {
			if (b->cte == CTE_QP)
				qp_line(w, b->s + start, i - start);
			else
				w_put(w, b->s + start, i - start);
			if (e)
				w_put(w, "\r\n", 2);
		}
		if (i == b->n)
			break;
		i += e - 1;
		start = i + 1;
	}
	b64_finish(w, &st);
}

static void leaf_text(struct wr *w, const struct body *b)
{
	w_puts(w, "Content-Type: ");
	w_puts(w, b->type);
	w_puts(w, "; charset=utf-8\r\nContent-Transfer-Encoding: ");
	w_puts(w, cte_name[b->cte]);
	w_puts(w, "\r\n\r\n");
	body_write(w, b);
}

/* ------------------------------------------------------------------ */
/* Attachments                                                         */

struct att {
	const struct mx_compose_att *a;
	char *filename; /* owned */
	char *ctype;    /* owned, lower-case */
	uint64_t size;
	int fd;         /* -1 for inline data */
};

static const struct {
	const char *ext, *type;
} ext_types[] = {
	{ "pdf", "application/pdf" },     { "png", "image/png" },
	{ "jpg", "image/jpeg" },          { "jpeg", "image/jpeg" },
	{ "gif", "image/gif" },           { "webp", "image/webp" },
	{ "svg", "image/svg+xml" },       { "txt", "text/plain" },
	{ "csv", "text/csv" },            { "html", "text/html" },
	{ "htm", "text/html" },           { "ics", "text/calendar" },
	{ "xml", "application/xml" },     { "json", "application/json" },
	{ "zip", "application/zip" },     { "gz", "application/gzip" },
	{ "tar", "application/x-tar" },   { "7z", "application/x-7z-compressed" },
	{ "doc", "application/msword" },  { "xls", "application/vnd.ms-excel" },
	{ "ppt", "application/vnd.ms-powerpoint" },
	{ "docx", "application/vnd.openxmlformats-officedocument."
		  "wordprocessingml.document" },
	{ "xlsx", "application/vnd.openxmlformats-officedocument."
		  "spreadsheetml.sheet" },
	{ "pptx", "application/vnd.openxmlformats-officedocument."
		  "presentationml.presentation" },
	{ "odt", "application/vnd.oasis.opendocument.text" },
	{ "ods", "application/vnd.oasis.opendocument.spreadsheet" },
	{ "mp3", "audio/mpeg" },          { "wav", "audio/wav" },
	{ "ogg", "audio/ogg" },           { "mp4", "video/mp4" },
};

static const char *guess_type(const char *filename)
{
	const char *dot = strrchr(filename, '.');
	size_t i;

	if (dot != NULL)
		for (i = 0; i < MX_ARRAY_SIZE(ext_types); i++)
			if (strcasecmp(dot + 1, ext_types[i].ext) == 0)
				return ext_types[i].type;
	return "application/octet-stream";
}

/* RFC 2045 token characters. */
static bool is_tchar(unsigned char c)
{
	return c > 0x20 && c < 0x7f && !strchr("()<>@,;:\\\"/[]?=", c);
}

/* "type/subtype", lower-cased into a new string; NULL when malformed. */
static char *ctype_norm(const char *s)
{
	const char *p = s, *slash = NULL;
	char *r, *q;

	for (; *p; p++) {
		if (*p == '/' && slash == NULL && p > s)
			slash = p;
		else if (!is_tchar((unsigned char)*p))
			return NULL;
	}
	if (slash == NULL || slash[1] == '\0' || p - s > 127)
		return NULL;
	r = mx_strdup(s);
	for (q = r; q && *q; q++)
		if (*q >= 'A' && *q <= 'Z')
			*q = (char)(*q - 'A' + 'a');
	return r;
}

static int att_check(const struct mx_compose_att *a, size_t idx, struct att *t,
		     struct mx_error *err)
{
	struct stat st;
	const char *fn = a->filename, *slash;
	char field[64];
	int rc;

	t->a = a;
	t->fd = -1;
	if (a->path != NULL) {
		/* O_NONBLOCK: opening a FIFO for reading would otherwise
		 * wait for a writer forever, before the check below. */
		t->fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (t->fd < 0)
			return mx_error_set(err, MX_ERR_IO, "attachment %s: %s",
					    a->path, strerror(errno));
		if (fstat(t->fd, &st) < 0)
			return mx_error_set(err, MX_ERR_IO, "attachment %s: %s",
					    a->path, strerror(errno));
		if (!S_ISREG(st.st_mode))
			return mx_error_set(err, MX_ERR_IO, "attachment %s: "
					    "not a regular file (a FIFO, device "
					    "or directory cannot be attached)",
					    a->path);
		if (fcntl(t->fd, F_SETFL, 0) < 0)
			return mx_error_set(err, MX_ERR_IO, "attachment %s: %s",
					    a->path, strerror(errno));
		t->size = (uint64_t)st.st_size;
		if (fn == NULL) {
			slash = strrchr(a->path, '/');
			fn = slash ? slash + 1 : a->path;
		}
	} else {
		if (a->data == NULL && a->len > 0)
			return mx_error_set(err, MX_ERR_INVAL, "attachment %zu: "
					    "no path and no data", idx + 1);
		t->size = a->len;
	}
	if (fn == NULL || *fn == '\0')
		return mx_error_set(err, MX_ERR_INVAL, "attachment %zu: no file "
				    "name", idx + 1);
	snprintf(field, sizeof(field), "attachment %zu file name", idx + 1);
	rc = check_value(field, fn, MX_COMPOSE_MAX_FILENAME, err);
	if (rc != MX_OK)
		return rc;
	if (a->content_type != NULL) {
		snprintf(field, sizeof(field), "attachment %zu content type",
			 idx + 1);
		rc = check_value(field, a->content_type, 0, err);
		if (rc != MX_OK)
			return rc;
		t->ctype = ctype_norm(a->content_type);
		if (t->ctype == NULL)
			return mx_error_set(err, MX_ERR_INVAL, "%s '%s' is not "
					    "a type/subtype", field,
					    a->content_type);
		if (strncmp(t->ctype, "multipart/", 10) == 0 ||
		    strncmp(t->ctype, "message/", 8) == 0)
			return mx_error_set(err, MX_ERR_INVAL, "%s '%s': "
					    "composite types cannot be base64 "
					    "encoded (RFC 2046)", field,
					    t->ctype);
	} else {
		t->ctype = mx_strdup(guess_type(fn));
	}
	t->filename = mx_strdup(fn);
	if (t->filename == NULL || t->ctype == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "out of memory");
	return MX_OK;
}

/* RFC 2231 attribute-char: safe unencoded in an extended value. */
static bool attr_char(unsigned char c)
{
	return is_tchar(c) && c != '*' && c != '\'' && c != '%';
}

/*
 * NAME="VALUE" with non-ASCII characters as '_', at most LIMIT characters
 * of VALUE (then the extension, when short ASCII, is kept).
 */
static void param_plain(struct mx_buf *b, const char *name, const char *v,
			size_t limit)
{
	size_t n = strlen(v), i, k, seq;
	const char *dot;
	uint32_t cp;

	mx_buf_printf(b, "%s=\"", name);
	for (i = 0, k = 0; i < n && k < limit; i += seq, k++) {
		seq = mx_utf8_decode1((const unsigned char *)v + i, n - i, &cp);
		if (seq == 0)
			seq = 1;
		if (seq == 1 && (v[i] == '"' || v[i] == '\\'))
			mx_buf_append(b, "\\", 1);
		mx_buf_append(b, seq > 1 ? "_" : v + i, 1);
	}
	dot = strrchr(v, '.');
	if (i < n && dot && strlen(dot) <= 8 && is_ascii(dot, strlen(dot)))
		mx_buf_puts(b, dot);
	mx_buf_append(b, "\"", 1);
}

/*
 * One parameter NAME with a UTF-8 VALUE.  Short printable ASCII: NAME="..."
 * alone.  Otherwise RFC 2231: NAME*=utf-8''%.. (or NAME*0*=, NAME*1*= ...
 * segments of whole characters, lines within 78) followed by a plain ASCII
 * fallback NAME="..." (RFC 2183) for readers without RFC 2231.  The
 * extended form comes first: readers that take the first of two values
 * (Python's email package) then get the real name, and readers that
 * prefer NAME* (most, and src/lib/mime) do so whatever the order.
 */
static void h_param(struct wr *w, const char *name, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	struct mx_buf fb = {0}, all = {0}, seg = {0};
	size_t n = strlen(v), i, k, j, seq, nseg = 0, chars = 0, pre;
	uint32_t cp;
	bool one;

	/* Reserved up front, the appends below cannot fail. */
	if (mx_buf_reserve(&fb, 2 * n + 64) < 0 ||
	    mx_buf_reserve(&all, 4 * n + 64) < 0 ||
	    mx_buf_reserve(&seg, 128) < 0) {
		w->failed = true;
		errno = ENOMEM;
		goto out;
	}
	param_plain(&fb, name, v, SIZE_MAX);
	if (is_ascii(v, n) && fb.len <= 70) {
		h_tok(w, fb.data, fb.len);
		goto out;
	}
	/* The extended value, percent-encoded; \001 marks where a
	 * character starts, the only places a segment may end. */
	mx_buf_puts(&all, "utf-8''");
	for (i = 0; i < n; i += seq) {
		seq = mx_utf8_decode1((const unsigned char *)v + i, n - i, &cp);
		if (seq == 0)
			seq = 1;
		mx_buf_append(&all, "\001", 1);
		for (j = 0; j < seq; j++) {
			unsigned char c = (unsigned char)v[i + j];
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };

			if (attr_char(c))
				mx_buf_append(&all, v + i + j, 1);
			else
				mx_buf_append(&all, e, 3);
		}
	}
	for (i = 0; i < all.len; i++)
		chars += all.data[i] != '\001';
	one = strlen(name) + 2 + chars <= 72;
	for (i = 0; i < all.len;) {
		mx_buf_reset(&seg);
		if (one)
			mx_buf_printf(&seg, "%s*=", name);
		else
			mx_buf_printf(&seg, "%s*%zu*=", name, nseg++);
		pre = seg.len;
		do {
			k = i + 1;
			while (k < all.len && all.data[k] != '\001')
				k++;
			if (!one && seg.len + (k - i) > 70 && seg.len > pre)
				break;
			for (j = i; j < k; j++)
				if (all.data[j] != '\001')
					mx_buf_append(&seg, all.data + j, 1);
			i = k;
		} while (i < all.len);
		mx_buf_append(&seg, ";", 1);
		h_tok(w, seg.data, seg.len);
	}
	mx_buf_reset(&fb);
	param_plain(&fb, name, v, 40);
	h_tok(w, fb.data, fb.len);
out:
	mx_buf_free(&fb);
	mx_buf_free(&all);
	mx_buf_free(&seg);
}

#define CHUNK (57 * 1024)

static int att_write(struct wr *w, struct att *t, char *chunk,
		     struct mx_error *err)
{
	struct b64 st = {0};
	uint64_t left = t->size;
	ssize_t r;

	h_begin(w, "Content-Type");
	h_tok(w, t->ctype, strlen(t->ctype));
	w_put(w, ";", 1);
	h_param(w, "name", t->filename);
	h_end(w);
	h_begin(w, "Content-Disposition");
	h_tok(w, "attachment;", 11);
	h_param(w, "filename", t->filename);
	h_end(w);
	w_puts(w, "Content-Transfer-Encoding: base64\r\n\r\n");
	if (t->fd < 0) {
		b64_feed(w, &st, t->a->data, t->a->len);
		b64_finish(w, &st);
		return MX_OK;
	}
	while (left > 0) {
		r = read(t->fd, chunk, left < CHUNK ? (size_t)left : CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return mx_error_set(err, MX_ERR_IO, "attachment %s: %s",
					    t->a->path, strerror(errno));
		if (r == 0)
			return mx_error_set(err, MX_ERR_IO, "attachment %s: "
					    "shrank while being read",
					    t->a->path);
		b64_feed(w, &st, chunk, (size_t)r);
		left -= (uint64_t)r;
	}
	if (read(t->fd, chunk, 1) != 0)
		return mx_error_set(err, MX_ERR_IO, "attachment %s: grew while "
				    "being read", t->a->path);
	b64_finish(w, &st);
	return MX_OK;
}

/* ------------------------------------------------------------------ */
/* Ids, date, boundaries                                               */

static bool random_hex(char *out, size_t nbytes)
{
	unsigned char r[32];

	if (nbytes > sizeof(r) || RAND_bytes(r, (int)nbytes) != 1)
		return false;
	mx_hex(r, nbytes, out);
	return true;
}

/* "<id-left@id-right>" of printable ASCII without blanks or <>. */
static bool msgid_valid(const char *s, size_t n)
{
	size_t i, at = 0;

	if (n < 5 || n > 250 || s[0] != '<' || s[n - 1] != '>')
		return false;
	for (i = 1; i + 1 < n; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '<' || s[i] == '>')
			return false;
		if (s[i] == '@')
			at = i;
	}
	return at > 1 && at < n - 2;
}

static int check_msgid(const char *field, const char *s, struct mx_error *err)
{
	int rc = check_value(field, s, 0, err);

	if (rc == MX_OK && !msgid_valid(s, strlen(s)))
		rc = mx_error_set(err, MX_ERR_INVAL, "%s '%.100s' is not a "
				  "message id (<left@right>)", field, s);
	return rc;
}

/* Splits REFS at blanks into at most 40 ids (the first and the last 39). */
static int refs_split(const char *refs, const char ***ids_r, size_t **lens_r,
		      size_t *n_r, struct mx_error *err)
{
	const char *p = refs, *s;
	const char **ids = NULL;
	size_t *lens = NULL, n = 0, cap = 0;
	void *t;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		s = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		if (!msgid_valid(s, (size_t)(p - s))) {
			free(ids);
			free(lens);
			return mx_error_set(err, MX_ERR_INVAL, "references: "
					    "'%.*s' is not a message id",
					    (int)(p - s > 100 ? 100 : p - s), s);
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			t = realloc(ids, cap * sizeof(*ids));
			if (t != NULL)
				ids = t;
			t = t ? realloc(lens, cap * sizeof(*lens)) : NULL;
			if (t == NULL) {
				free(ids);
				free(lens);
				return mx_error_set(err, MX_ERR_NOMEM,
						    "out of memory");
			}
			lens = t;
		}
		ids[n] = s;
		lens[n++] = (size_t)(p - s);
	}
	if (n > 40) {
		memmove(ids + 1, ids + n - 39, 39 * sizeof(*ids));
		memmove(lens + 1, lens + n - 39, 39 * sizeof(*lens));
		n = 40;
	}
	*ids_r = ids;
	*lens_r = lens;
	*n_r = n;
	return MX_OK;
}

static void date_write(struct wr *w, int64_t when)
{
	static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu",
					    "Fri", "Sat" };
	static const char *const mons[] = { "Jan", "Feb", "Mar", "Apr", "May",
					    "Jun", "Jul", "Aug", "Sep", "Oct",
					    "Nov", "Dec" };
	time_t t = (time_t)when;
	struct tm tm;
	char buf[64];
	long off;
	int k;

	if (localtime_r(&t, &tm) == NULL) {
		gmtime_r(&t, &tm);
		tm.tm_gmtoff = 0;
	}
	off = tm.tm_gmtoff / 60;
	k = snprintf(buf, sizeof(buf),
		     "Date: %s, %02d %s %04d %02d:%02d:%02d %c%02ld%02ld\r\n",
		     days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
		     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     off < 0 ? '-' : '+', labs(off) / 60, labs(off) % 60);
	w_put(w, buf, (size_t)k);
}

/* A boundary: "=_" cannot occur in quoted-printable or base64 output, so
 * only 7bit parts need the search. */
static int make_boundary(char out[40], const struct body *const *bodies,
			 size_t nb, const char *other, struct mx_error *err)
{
	char pat[44];
	size_t i, tries;
	bool clash;

	for (tries = 0; tries < 8; tries++) {
		memcpy(out, "=_mx", 4);
		if (!random_hex(out + 4, 16))
			return mx_error_set(err, MX_ERR_NOMEM, "no randomness");
		snprintf(pat, sizeof(pat), "--%s", out);
		clash = other != NULL && strcmp(other, out) == 0;
		for (i = 0; i < nb && !clash; i++)
			if (bodies[i]->cte == CTE_7BIT &&
			    memmem(bodies[i]->s, bodies[i]->n, pat,
				   strlen(pat)) != NULL)
				clash = true;
		if (!clash)
			return MX_OK;
	}
	return mx_error_set(err, MX_ERR_INVAL, "no boundary outside the text");
}

/* ------------------------------------------------------------------ */

void mx_compose_out_free(struct mx_compose_out *o)
{
	size_t i;

	if (o == NULL)
		return;
	free(o->message_id);
	for (i = 0; i < o->nrcpts; i++)
		free(o->rcpts[i]);
	free(o->rcpts);
	memset(o, 0, sizeof(*o));
}

/* "26.2 MB", "25 MB" or "1200 bytes" (MB = 2^20 bytes). */
static void size_fmt(char *buf, size_t cap, uint64_t bytes)
{
	if (bytes < 1024 * 1024)
		snprintf(buf, cap, "%llu bytes", (unsigned long long)bytes);
	else if (bytes % (1024 * 1024) == 0)
		snprintf(buf, cap, "%llu MB", (unsigned long long)(bytes >> 20));
	else
		snprintf(buf, cap, "%.1f MB", (double)bytes / (1024.0 * 1024.0));
}

/* Envelope: To, Cc, Bcc specs, first occurrence kept. */
static int rcpts_build(const struct alist *const *ls, size_t nl,
		       struct mx_compose_out *o, struct mx_error *err)
{
	size_t i, j, k, total = 0;

	for (i = 0; i < nl; i++)
		total += ls[i]->n;
	if (total == 0)
		return mx_error_set(err, MX_ERR_INVAL,
				    "no recipients (to, cc and bcc are empty)");
	o->rcpts = calloc(total, sizeof(*o->rcpts));
	if (o->rcpts == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "out of memory");
	for (i = 0; i < nl; i++)
		for (j = 0; j < ls[i]->n; j++) {
			for (k = 0; k < o->nrcpts; k++)
				if (strcmp(o->rcpts[k], ls[i]->v[j].spec) == 0)
					break;
			if (k < o->nrcpts)
				continue;
			o->rcpts[o->nrcpts] = mx_strdup(ls[i]->v[j].spec);
			if (o->rcpts[o->nrcpts] == NULL)
				return mx_error_set(err, MX_ERR_NOMEM,
						    "out of memory");
			o->nrcpts++;
		}
	if (o->nrcpts > MX_COMPOSE_MAX_RCPTS)
		return mx_error_set(err, MX_ERR_INVAL, "more than %d recipients",
				    MX_COMPOSE_MAX_RCPTS);
	return MX_OK;
}

int mx_compose_write(const struct mx_compose *c, FILE *out,
		     struct mx_compose_out *res, struct mx_error *err)
{
	struct alist to = {0}, cc = {0}, bcc = {0}, from = {0};
	const struct alist *lists[3] = { &to, &cc, &bcc };
	struct mx_compose_out o = {0};
	struct body text = {0}, html = {0};
	const struct body *bodies[2];
	size_t nbodies = 0, i, nrefs = 0;
	struct att *atts = NULL;
	const char **refs = NULL;
	size_t *reflens = NULL;
	uint64_t total = 0, max;
	char bmix[40] = "", balt[40] = "", idbuf[300], hexid[33], lim[32],
	     tot[32];
	char *chunk = NULL;
	const char *domain;
	struct wr w = { .f = out };
	int rc;

	if (c->from_addr == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "from: no sender address");
	/* -- validation: nothing is written before it is all done -- */
	if ((rc = check_value("from address", c->from_addr, 0, err)) ||
	    (c->from_name &&
	     (rc = check_value("from name", c->from_name, MX_COMPOSE_MAX_NAME,
			       err))) ||
	    (rc = read_alist("from", c->from_addr, &from, err)))
		goto out;
	if (from.n != 1 || from.v[0].name != NULL) {
		rc = mx_error_set(err, MX_ERR_INVAL, "from: '%s' is not one "
				  "plain address", c->from_addr);
		goto out;
	}
	if ((rc = read_alist("to", c->to, &to, err)) ||
	    (rc = read_alist("cc", c->cc, &cc, err)) ||
	    (rc = read_alist("bcc", c->bcc, &bcc, err)) ||
	    (rc = rcpts_build(lists, 3, &o, err)))
		goto out;
	if (c->subject &&
	    (rc = check_value("subject", c->subject, MX_COMPOSE_MAX_SUBJECT,
			      err)))
		goto out;
	if ((c->message_id && (rc = check_msgid("message-id", c->message_id,
						err))) ||
	    (c->in_reply_to && (rc = check_msgid("in-reply-to",
						 c->in_reply_to, err))))
		goto out;
	if (c->references &&
	    ((rc = check_value("references", c->references, 0, err)) ||
	     (rc = refs_split(c->references, &refs, &reflens, &nrefs, err))))
		goto out;
	if (c->text != NULL) {
		text = (struct body){ c->text, c->text_len, "text/plain", 0 };
		if ((rc = body_check("text", &text, err)))
			goto out;
		bodies[nbodies++] = &text;
	}
	if (c->html != NULL) {
		html = (struct body){ c->html, c->html_len, "text/html", 0 };
		if ((rc = body_check("html", &html, err)))
			goto out;
		bodies[nbodies++] = &html;
	}
	if (c->natt > MX_COMPOSE_MAX_ATT) {
		rc = mx_error_set(err, MX_ERR_INVAL, "%zu attachments, at most %d",
				  c->natt, MX_COMPOSE_MAX_ATT);
		goto out;
	}
	atts = calloc(c->natt + 1, sizeof(*atts));
	if (atts == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < c->natt; i++)
		atts[i].fd = -1;
	for (i = 0; i < c->natt; i++) {
		if ((rc = att_check(&c->att[i], i, &atts[i], err)))
			goto out;
		total += atts[i].size;
	}
	max = c->max_attach_bytes ? c->max_attach_bytes
				  : MX_COMPOSE_MAX_ATTACH_DEFAULT;
	if (total > max) {
		size_fmt(tot, sizeof(tot), total);
		size_fmt(lim, sizeof(lim), max);
		rc = mx_error_set(err, MX_ERR_INVAL, "attachments total %s, "
				  "over the %s limit", tot, lim);
		goto out;
	}
	if (c->natt > 0 &&
	    (rc = make_boundary(bmix, bodies, nbodies, NULL, err)))
		goto out;
	if (nbodies == 2 &&
	    (rc = make_boundary(balt, bodies, nbodies, bmix, err)))
		goto out;
	domain = strrchr(from.v[0].spec, '@') + 1;
	if (c->message_id != NULL) {
		snprintf(idbuf, sizeof(idbuf), "%s", c->message_id);
	} else {
		if (!random_hex(hexid, 16)) {
			rc = mx_error_set(err, MX_ERR_NOMEM, "no randomness");
			goto out;
		}
		snprintf(idbuf, sizeof(idbuf), "<%s.%lld@%s>", hexid,
			 (long long)mx_wall_s(), domain);
	}
	o.message_id = mx_strdup(idbuf);
	chunk = c->natt > 0 ? malloc(CHUNK) : NULL;
	if (o.message_id == NULL || (c->natt > 0 && chunk == NULL)) {
		rc = mx_error_set(err, MX_ERR_NOMEM, "out of memory");
		goto out;
	}

	/* -- writing -- */
	date_write(&w, c->date ? c->date : mx_wall_s());
	h_begin(&w, "From");
	if (c->from_name != NULL && *c->from_name != '\0')
		h_name(&w, c->from_name);
	snprintf(idbuf, sizeof(idbuf),
		 c->from_name && *c->from_name ? "<%s>" : "%s",
		 from.v[0].spec);
	h_tok(&w, idbuf, strlen(idbuf));
	h_end(&w);
	if (to.n > 0)
		h_addrs(&w, "To", &to);
	if (cc.n > 0)
		h_addrs(&w, "Cc", &cc);
	if (to.n == 0 && cc.n == 0)
		w_puts(&w, "To: undisclosed-recipients:;\r\n");
	if (c->subject != NULL && *c->subject != '\0') {
		h_begin(&w, "Subject");
		h_text(&w, c->subject);
		h_end(&w);
	}
	h_begin(&w, "Message-ID");
	h_tok(&w, o.message_id, strlen(o.message_id));
	h_end(&w);
	if (c->in_reply_to != NULL) {
		h_begin(&w, "In-Reply-To");
		h_tok(&w, c->in_reply_to, strlen(c->in_reply_to));
		h_end(&w);
	}
	if (nrefs > 0) {
		h_begin(&w, "References");
		for (i = 0; i < nrefs; i++)
			h_tok(&w, refs[i], reflens[i]);
		h_end(&w);
	}
	if (c->bulk)
		w_puts(&w, "Precedence: bulk\r\n");
	w_puts(&w, "MIME-Version: 1.0\r\n");
	if (c->natt > 0) {
		w_puts(&w, "Content-Type: multipart/mixed;\r\n boundary=\"");
		w_puts(&w, bmix);
		w_puts(&w, "\"\r\n\r\n");
		if (nbodies > 0) {
			w_puts(&w, "--");
			w_puts(&w, bmix);
			w_puts(&w, "\r\n");
		}
	}
	if (nbodies == 2) {
		w_puts(&w, "Content-Type: multipart/alternative;\r\n boundary=\"");
		w_puts(&w, balt);
		w_puts(&w, "\"\r\n\r\n--");
		w_puts(&w, balt);
		w_puts(&w, "\r\n");
		leaf_text(&w, &text);
		w_puts(&w, "\r\n--");
		w_puts(&w, balt);
		w_puts(&w, "\r\n");
		leaf_text(&w, &html);
		w_puts(&w, "\r\n--");
		w_puts(&w, balt);
		w_puts(&w, "--");
	} else if (nbodies == 1) {
		leaf_text(&w, bodies[0]);
	} else if (c->natt == 0) {
		text = (struct body){ "", 0, "text/plain", CTE_7BIT };
		leaf_text(&w, &text);
	}
	for (i = 0; i < c->natt; i++) {
		if (nbodies > 0 || i > 0)
			w_puts(&w, "\r\n");
		w_puts(&w, "--");
		w_puts(&w, bmix);
		w_puts(&w, "\r\n");
		if ((rc = att_write(&w, &atts[i], chunk, err)))
			goto out;
	}
	if (c->natt > 0) {
		w_puts(&w, "\r\n--");
		w_puts(&w, bmix);
		w_puts(&w, "--");
	}
	if (w.col != 0)
		w_put(&w, "\r\n", 2);
	if (!w.failed && fflush(out) != 0)
		w.failed = true;
	if (w.failed) {
		rc = mx_error_set(err, MX_ERR_IO, "writing the message: %s",
				  strerror(errno));
		goto out;
	}
	o.size = w.n;
	o.has_8bit = false;
	rc = MX_OK;
out:
	for (i = 0; atts && i < c->natt; i++) {
		if (atts[i].fd >= 0)
			close(atts[i].fd);
		free(atts[i].filename);
		free(atts[i].ctype);
	}
	free(atts);
	free(chunk);
	free(refs);
	free(reflens);
	alist_free(&from);
	alist_free(&to);
	alist_free(&cc);
	alist_free(&bcc);
	if (rc == MX_OK && res != NULL)
		*res = o;
	else
		mx_compose_out_free(&o);
	return rc;
}
