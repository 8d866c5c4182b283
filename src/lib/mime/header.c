/*
 * Header blocks, RFC 2047 encoded words and RFC 2045/2231 parameters.
 *
 * This is our own tolerant code rather than libetpan's mailimf: it must
 * accept anything (8-bit bytes, lines without colons, bare LF, NUL bytes)
 * and give the same answer for a whole message and for the header lines an
 * IMAP server returns, which the identity of a message depends on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_int.h"

static bool is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

static int hdrs_add(struct mx_hdrs *h, const char *name, size_t name_len,
		    const char *value, size_t value_len)
{
	struct mx_hdr *v;
	size_t ncap;

	if (h->n == h->cap) {
		ncap = h->cap ? h->cap * 2 : 16;
		v = realloc(h->v, ncap * sizeof(*v));
		if (v == NULL)
			return -1;
		h->v = v;
		h->cap = ncap;
	}
	h->v[h->n].name = name;
	h->v[h->n].name_len = name_len;
	h->v[h->n].value = value;
	h->v[h->n].value_len = value_len;
	h->n++;
	return 0;
}

/* A field name is printable US-ASCII without colon (RFC 5322 ftext). */
static bool valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 33 || c > 126)
			return false;
	}
	return true;
}

int mx_hdrs_parse(const char *raw, size_t len, struct mx_hdrs *h)
{
	size_t pos = 0, next, end, name_end;
	const char *lf, *colon;
	struct mx_hdr *cur = NULL;

	memset(h, 0, sizeof(*h));
	/* An mbox separator line is not part of the message. */
	if (len >= 5 && memcmp(raw, "From ", 5) == 0) {
		lf = memchr(raw, '\n', len);
		pos = lf ? (size_t)(lf - raw) + 1 : len;
	}
	while (pos < len) {
		lf = memchr(raw + pos, '\n', len - pos);
		end = lf ? (size_t)(lf - raw) : len;
		next = lf ? end + 1 : len;
		if (end > pos && raw[end - 1] == '\r')
			end--;
		if (end == pos) {
			h->body_off = next;
			return 0;
		}
		if (is_wsp(raw[pos])) {
			/* A folded continuation extends the current field. */
			if (cur != NULL)
				cur->value_len = (size_t)(raw + end - cur->value);
			else
				h->junk = true;
			pos = next;
			continue;
		}
		cur = NULL;
		colon = memchr(raw + pos, ':', end - pos);
		name_end = colon ? (size_t)(colon - raw) : pos;
		/* Obsolete syntax allows blanks before the colon. */
		while (name_end > pos && is_wsp(raw[name_end - 1]))
			name_end--;
		if (colon == NULL || !valid_name(raw + pos, name_end - pos)) {
			h->junk = true;
		} else if (h->n >= MX_MAX_HEADERS) {
			h->truncated = true;
		} else {
			if (hdrs_add(h, raw + pos, name_end - pos, colon + 1,
				     (size_t)(raw + end - (colon + 1))) < 0)
				return -1;
			cur = &h->v[h->n - 1];
		}
		pos = next;
	}
	h->body_off = len;
	h->no_separator = true;
	return 0;
}

void mx_hdrs_free(struct mx_hdrs *h)
{
	free(h->v);
	memset(h, 0, sizeof(*h));
}

const struct mx_hdr *mx_hdrs_get(const struct mx_hdrs *h, const char *name)
{
	size_t i, n = strlen(name);

	for (i = 0; i < h->n; i++) {
		if (h->v[i].name_len == n &&
		    strncasecmp(h->v[i].name, name, n) == 0)
			return &h->v[i];
	}
	return NULL;
}

int mx_unfold_append(struct mx_buf *b, const char *v, size_t len)
{
	size_t i, start = 0, end = len;

	while (start < end && (is_wsp(v[start]) || v[start] == '\r' ||
			       v[start] == '\n'))
		start++;
	while (end > start && (is_wsp(v[end - 1]) || v[end - 1] == '\r' ||
			       v[end - 1] == '\n'))
		end--;
	if (mx_buf_reserve(b, end - start) < 0)
		return -1;
	for (i = start; i < end; i++) {
		if (v[i] != '\r' && v[i] != '\n')
			b->data[b->len++] = v[i];
	}
	b->data[b->len] = '\0';
	return 0;
}

/* Base64 and quoted-printable, tolerant of junk. */

static const signed char b64tab[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63,
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,
	-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

int mx_base64_append(struct mx_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + len;
	uint32_t acc = 0;
	char *out;
	int bits = 0;

	if (mx_buf_reserve(b, len / 4 * 3 + 3) < 0)
		return -1;
	out = b->data + b->len;
	/* Characters outside the alphabet (line ends, junk) are skipped;
	   padding ends the data as decoders commonly do.  Whole quads are
	   decoded four characters at a time: this is the hot loop of a
	   sync full of attachments. */
	while (p < end) {
		if (end - p >= 4) {
			int a = b64tab[p[0]], c = b64tab[p[1]];
			int d = b64tab[p[2]], e = b64tab[p[3]];

			if ((a | c | d | e) >= 0 && bits == 0) {
				uint32_t v = (uint32_t)a << 18 | (uint32_t)c << 12 |
					     (uint32_t)d << 6 | (uint32_t)e;

				out[0] = (char)(v >> 16);
				out[1] = (char)(v >> 8);
				out[2] = (char)v;
				out += 3;
				p += 4;
				continue;
			}
		}
		if (*p == '=')
			break;
		if (b64tab[*p] >= 0) {
			acc = acc << 6 | (uint32_t)b64tab[*p];
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				*out++ = (char)(acc >> bits & 0xff);
			}
		}
		p++;
	}
	b->len = (size_t)(out - b->data);
	b->data[b->len] = '\0';
	return 0;
}

/* 1 for a byte of the base64 alphabet (b64tab[c] >= 0), without a table
   or a branch, so that the loop below can test many bytes at once. */
static inline unsigned b64_is_alpha(unsigned char c)
{
	return ((unsigned char)((c | 0x20) - 'a') < 26) |
	       ((unsigned char)(c - '0') < 10) | (c == '+') | (c == '/');
}

size_t mx_base64_decoded_len(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *eq = len ? memchr(p, '=', len) : NULL;
	size_t end = eq ? (size_t)(eq - p) : len, i = 0, n = 0;

	/*
	 * Sizing every attachment of an initial sync this way was a byte
	 * loop through b64tab with a branch on '=' per byte (6 % of the
	 * sync's CPU): find the padding with memchr() and count the
	 * alphabet in fixed blocks the compiler vectorizes.  Junk and line
	 * breaks are still skipped exactly as mx_base64_append() skips them.
	 */
	for (; end - i >= 64; i += 64) {
		unsigned char k = 0;

		for (size_t j = 0; j < 64; j++)
			k += (unsigned char)b64_is_alpha(p[i + j]);
		n += k;
	}
	for (; i < end; i++)
		n += b64_is_alpha(p[i]);
	return n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
}

int mx_qp_append(struct mx_buf *b, const char *s, size_t len, bool header)
{
	size_t i, j;
	int hi, lo;

	if (mx_buf_reserve(b, len) < 0)
		return -1;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (header && c == '_') {
			c = ' ';
		} else if (c == '=') {
			hi = i + 1 < len ? mx_hexval(s[i + 1]) : -1;
			lo = i + 2 < len ? mx_hexval(s[i + 2]) : -1;
			if (hi >= 0 && lo >= 0) {
				c = (char)(hi << 4 | lo);
				i += 2;
			} else {
				/* A soft line break: "=" and blanks, then
				   the end of the line. */
				j = i + 1;
				while (j < len && is_wsp(s[j]))
					j++;
				if (j < len && s[j] == '\r')
					j++;
				if (j == len || s[j] == '\n') {
					i = j;
					continue;
				}
				/* Otherwise a broken escape stays as text. */
			}
		}
		b->data[b->len++] = c;
	}
	b->data[b->len] = '\0';
	return 0;
}

/* RFC 2047 encoded words. */

struct ew {
	const char *charset;
	size_t charset_len;
	char enc;
	const char *text;
	size_t text_len;
	size_t len; /* whole word */
};

/* Parses "=?charset?e?text?=" at S; false when it is not one. */
static bool parse_ew(const char *s, size_t len, struct ew *w)
{
	size_t i = 2, cs;

	if (len < 8 || s[0] != '=' || s[1] != '?')
		return false;
	cs = i;
	while (i < len && s[i] != '?' && !is_wsp(s[i]) && i - cs < 64)
		i++;
	if (i == cs || i + 3 > len || s[i] != '?')
		return false;
	w->charset = s + cs;
	w->charset_len = i - cs;
	w->enc = s[i + 1];
	if (!strchr("BbQq", w->enc) || w->enc == '\0' || s[i + 2] != '?')
		return false;
	i += 3;
	w->text = s + i;
	while (i < len && s[i] != '?')
		i++;
	if (i + 1 >= len || s[i + 1] != '=')
		return false;
	w->text_len = (size_t)(s + i - w->text);
	w->len = i + 2;
	return true;
}

static bool all_wsp(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!is_wsp(s[i]))
			return false;
	return true;
}

struct ew_state {
	struct mx_buf pend; /* decoded bytes not yet converted */
	char charset[72];
	bool unknown;
};

static int ew_flush(struct mx_buf *b, struct ew_state *st)
{
	int rc = 0;

	if (st->pend.len > 0)
		rc = mx_charset_append(b, st->charset, st->pend.data,
				       st->pend.len, &st->unknown);
	mx_buf_reset(&st->pend);
	return rc;
}

int mx_decode_header_append(struct mx_buf *b, const char *value, size_t len,
			    bool *unknown_r)
{
	struct mx_buf u = {0}, tmp = {0};
	struct ew_state st = {0};
	size_t i = 0, text_start = 0;
	bool last_ew = false;
	struct ew w;
	int rc = -1;

	if (mx_unfold_append(&u, value, len) < 0)
		goto out;
	while (i + 1 < u.len) {
		if (u.data[i] != '=' || u.data[i + 1] != '?' ||
		    !parse_ew(u.data + i, u.len - i, &w)) {
			i++;
			continue;
		}
		/* Blanks between two encoded words are not part of the text
		   (RFC 2047 section 6.2). */
		if (!(last_ew && all_wsp(u.data + text_start, i - text_start)) &&
		    i > text_start) {
			if (ew_flush(b, &st) < 0 ||
			    mx_text8_append(b, u.data + text_start,
					    i - text_start) < 0)
				goto out;
		}
		mx_buf_reset(&tmp);
		if ((w.enc == 'B' || w.enc == 'b') ?
		    mx_base64_append(&tmp, w.text, w.text_len) < 0 :
		    mx_qp_append(&tmp, w.text, w.text_len, true) < 0)
			goto out;
		/* Adjacent words in one charset are joined before conversion
		   since senders split multi-byte characters across words. */
		if (st.pend.len > 0 &&
		    (strlen(st.charset) != w.charset_len ||
		     strncasecmp(st.charset, w.charset, w.charset_len) != 0)) {
			if (ew_flush(b, &st) < 0)
				goto out;
		}
		memcpy(st.charset, w.charset, w.charset_len);
		st.charset[w.charset_len] = '\0';
		if (mx_buf_append(&st.pend, tmp.data, tmp.len) < 0)
			goto out;
		i += w.len;
		text_start = i;
		last_ew = true;
	}
	if (ew_flush(b, &st) < 0 ||
	    mx_text8_append(b, u.data + text_start, u.len - text_start) < 0)
		goto out;
	rc = 0;
out:
	if (st.unknown && unknown_r)
		*unknown_r = true;
	mx_buf_free(&u);
	mx_buf_free(&tmp);
	mx_buf_free(&st.pend);
	return rc;
}

char *mx_mime_decode_header(const char *value, size_t len)
{
	struct mx_buf b = {0};

	if (mx_decode_header_append(&b, value, len, NULL) < 0) {
		mx_buf_free(&b);
		return NULL;
	}
	return mx_buf_steal(&b);
}

/* Parameters of Content-Type and Content-Disposition. */

void mx_params_free(struct mx_params *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].value);
	}
	free(p->v);
	free(p->token);
	memset(p, 0, sizeof(*p));
}

static int params_add(struct mx_params *p, const char *name, size_t nlen,
		      const char *value, size_t vlen)
{
	struct mx_param *v;
	size_t i;

	if (p->n >= MX_MAX_PARAMS)
		return 0;
	v = realloc(p->v, (p->n + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	p->v = v;
	v = &p->v[p->n];
	v->name = mx_strndup(name, nlen);
	v->value = mx_strndup(value, vlen);
	v->value_len = vlen;
	if (v->name == NULL || v->value == NULL) {
		free(v->name);
		free(v->value);
		return -1;
	}
	for (i = 0; i < nlen; i++)
		if (v->name[i] >= 'A' && v->name[i] <= 'Z')
			v->name[i] = (char)(v->name[i] - 'A' + 'a');
	p->n++;
	return 0;
}

int mx_params_parse(const char *raw, size_t len, struct mx_params *p)
{
	struct mx_buf u = {0}, val = {0};
	size_t i = 0, s, e, ns, ne;
	int rc = -1;

	memset(p, 0, sizeof(*p));
	if (mx_unfold_append(&u, raw, len) < 0)
		goto out;
	/* The leading token: a type/subtype or a disposition type. */
	while (i < u.len && u.data[i] != ';')
		i++;
	e = i;
	while (e > 0 && is_wsp(u.data[e - 1]))
		e--;
	if (mx_buf_reserve(&val, 0) < 0 ||
	    mx_utf8_lower_append(&val, u.data, e) < 0)
		goto out;
	/* Comments and blanks inside the token are dropped. */
	for (s = e = 0; s < val.len; s++)
		if (!is_wsp(val.data[s]) && val.data[s] != '"')
			val.data[e++] = val.data[s];
	val.len = e;
	val.data[e] = '\0';
	p->token = mx_buf_steal(&val);
	if (p->token == NULL)
		goto out;
	while (i < u.len) {
		i++; /* the ';' */
		while (i < u.len && (is_wsp(u.data[i]) || u.data[i] == ';'))
			i++;
		ns = i;
		while (i < u.len && u.data[i] != '=' && u.data[i] != ';')
			i++;
		ne = i;
		while (ne > ns && is_wsp(u.data[ne - 1]))
			ne--;
		if (i >= u.len || u.data[i] != '=') {
			continue;
		}
		i++;
		while (i < u.len && is_wsp(u.data[i]))
			i++;
		mx_buf_reset(&val);
		if (mx_buf_reserve(&val, 0) < 0)
			goto out;
		if (i < u.len && u.data[i] == '"') {
			for (i++; i < u.len && u.data[i] != '"'; i++) {
				if (u.data[i] == '\\' && i + 1 < u.len)
					i++;
				if (mx_buf_append(&val, u.data + i, 1) < 0)
					goto out;
			}
			/* Anything between the closing quote and ';'. */
			while (i < u.len && u.data[i] != ';')
				i++;
		} else {
			s = i;
			while (i < u.len && u.data[i] != ';')
				i++;
			e = i;
			while (e > s && is_wsp(u.data[e - 1]))
				e--;
			if (mx_buf_append(&val, u.data + s, e - s) < 0)
				goto out;
		}
		if (ne > ns && params_add(p, u.data + ns, ne - ns, val.data,
					  val.len) < 0)
			goto out;
	}
	rc = 0;
out:
	mx_buf_free(&u);
	mx_buf_free(&val);
	if (rc < 0)
		mx_params_free(p);
	return rc;
}

static const struct mx_param *param_find(const struct mx_params *p,
					 const char *name)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0)
			return &p->v[i];
	return NULL;
}

/* %XX decoding of RFC 2231 extended values. */
static int pct_append(struct mx_buf *b, const char *s, size_t len)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			hi = i + 1 < len ? mx_hexval(s[i + 1]) : -1;
			lo = i + 2 < len ? mx_hexval(s[i + 2]) : -1;
			if (hi >= 0 && lo >= 0) {
				c = (char)(hi << 4 | lo);
				i += 2;
			}
		}
		if (mx_buf_append(b, &c, 1) < 0)
			return -1;
	}
	return 0;
}

/*
 * Splits "charset'lang'value" of an RFC 2231 initial section: sets the
 * charset (into CS) and returns where the value starts.
 */
static const char *split_2231(const char *v, char *cs, size_t cs_size)
{
	const char *q1 = strchr(v, '\''), *q2;
	size_t n;

	cs[0] = '\0';
	if (q1 == NULL)
		return v;
	q2 = strchr(q1 + 1, '\'');
	if (q2 == NULL)
		return v;
	n = (size_t)(q1 - v);
	if (n < cs_size) {
		memcpy(cs, v, n);
		cs[n] = '\0';
	}
	return q2 + 1;
}

int mx_param_get(const struct mx_params *p, const char *name, char **out_r,
		 bool *unknown_r)
{
	struct mx_buf b = {0}, raw = {0};
	const struct mx_param *pa;
	char key[96], cs[72] = "";
	bool encoded = false;
	const char *v;
	int k, rc = -1;

	*out_r = NULL;
	if (strlen(name) > 64)
		return 0;
	if (mx_buf_reserve(&b, 0) < 0 || mx_buf_reserve(&raw, 0) < 0)
		goto out;
	snprintf(key, sizeof(key), "%s*", name);
	if ((pa = param_find(p, key)) != NULL) {
		v = split_2231(pa->value, cs, sizeof(cs));
		if (pct_append(&raw, v, strlen(v)) < 0)
			goto out;
		encoded = true;
	} else {
		/* Continuations: name*0, name*1* ... in order until one
		   is missing. */
		for (k = 0; k < MX_MAX_PARAMS; k++) {
			snprintf(key, sizeof(key), "%s*%d*", name, k);
			if ((pa = param_find(p, key)) != NULL) {
				v = pa->value;
				if (k == 0)
					v = split_2231(v, cs, sizeof(cs));
				if (pct_append(&raw, v, strlen(v)) < 0)
					goto out;
				encoded = true;
				continue;
			}
			snprintf(key, sizeof(key), "%s*%d", name, k);
			if ((pa = param_find(p, key)) == NULL)
				break;
			if (mx_buf_append(&raw, pa->value, pa->value_len) < 0)
				goto out;
		}
		if (k == 0) {
			if ((pa = param_find(p, name)) == NULL) {
				rc = 0;
				goto out;
			}
			/* Plain values often carry RFC 2047 words or raw
			   8-bit text despite the RFCs. */
			if (mx_decode_header_append(&b, pa->value,
						    pa->value_len,
						    unknown_r) < 0)
				goto out;
			goto done;
		}
	}
	if (encoded && cs[0] != '\0') {
		if (mx_charset_append(&b, cs, raw.data, raw.len, unknown_r) < 0)
			goto out;
	} else if (mx_decode_header_append(&b, raw.data, raw.len,
					   unknown_r) < 0) {
		goto out;
	}
done:
	*out_r = mx_buf_steal(&b);
	rc = *out_r ? 0 : -1;
out:
	mx_buf_free(&b);
	mx_buf_free(&raw);
	return rc;
}
