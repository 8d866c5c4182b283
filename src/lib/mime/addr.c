/*
 * Address lists (From, To, Cc ...), address normalization and the
 * punycode decoding of IDN labels (RFC 3492).
 *
 * The parser is our own and deliberately forgiving: real headers carry
 * unquoted commas in names, raw 8-bit names, missing brackets and bare
 * groups.  Every entry yields something; nothing makes it fail but ENOMEM.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_int.h"

/* RFC 3492 parameters. */
enum {
	PC_BASE = 36,
	PC_TMIN = 1,
	PC_TMAX = 26,
	PC_SKEW = 38,
	PC_DAMP = 700,
	PC_BIAS = 72,
	PC_N = 128,
	PC_MAX_OUT = 256,
};

static uint32_t pc_adapt(uint32_t delta, uint32_t npoints, bool first)
{
	uint32_t k = 0;

	delta = first ? delta / PC_DAMP : delta / 2;
	delta += delta / npoints;
	while (delta > ((PC_BASE - PC_TMIN) * PC_TMAX) / 2) {
		delta /= PC_BASE - PC_TMIN;
		k += PC_BASE;
	}
	return k + (PC_BASE - PC_TMIN + 1) * delta / (delta + PC_SKEW);
}

static int pc_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0' + 26;
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	return -1;
}

/*
 * Decodes the punycode S (without "xn--") into code points.  Returns the
 * count, or -1 on malformed input or overflow.
 */
static int punycode_decode(const char *s, size_t len, uint32_t *out)
{
	uint64_t n = PC_N, i = 0, bias = PC_BIAS, oldi, w, k, t;
	size_t b = 0, in, j, nout = 0;
	int digit;

	for (j = 0; j < len; j++)
		if (s[j] == '-')
			b = j;
	for (j = 0; j < b; j++) {
		if ((unsigned char)s[j] >= 0x80 || nout >= PC_MAX_OUT)
			return -1;
		out[nout++] = (unsigned char)s[j];
	}
	for (in = b > 0 ? b + 1 : 0; in < len;) {
		oldi = i;
		w = 1;
		for (k = PC_BASE;; k += PC_BASE) {
			if (in >= len)
				return -1;
			digit = pc_digit(s[in++]);
			if (digit < 0)
				return -1;
			i += (uint64_t)digit * w;
			if (i > 0xffffffffu)
				return -1;
			t = k <= bias ? PC_TMIN :
			    k >= bias + PC_TMAX ? PC_TMAX : k - bias;
			if ((uint64_t)digit < t)
				break;
			w *= PC_BASE - t;
			if (w > 0xffffffffu)
				return -1;
		}
		if (nout >= PC_MAX_OUT)
			return -1;
		bias = pc_adapt((uint32_t)(i - oldi), (uint32_t)nout + 1,
				oldi == 0);
		n += i / (nout + 1);
		i %= nout + 1;
		if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff))
			return -1;
		memmove(out + i + 1, out + i, (nout - i) * sizeof(*out));
		out[i++] = (uint32_t)n;
		nout++;
	}
	return (int)nout;
}

/* Appends one domain label, lower-cased, IDN-decoded when possible. */
static int label_append(struct mx_buf *b, const char *s, size_t len)
{
	uint32_t cps[PC_MAX_OUT];
	int n, k;

	if (len > 4 && strncasecmp(s, "xn--", 4) == 0) {
		n = punycode_decode(s + 4, len - 4, cps);
		/* Only a label that decodes to what a host name may hold:
		 * no controls (C0, DEL, C1), blanks, dots or '@', which
		 * would change the address when it is read again.  Else
		 * the label stays as written (lower-cased). */
		for (k = 0; k < n; k++)
			if (cps[k] <= 0x20 || (cps[k] >= 0x7f && cps[k] < 0xa0) ||
			    cps[k] == '.' || cps[k] == '@' || cps[k] == 0x3002 ||
			    cps[k] == 0xff0e || cps[k] == 0xff61)
				n = -1;
		if (n > 0) {
			for (k = 0; k < n; k++)
				if (mx_utf8_put(b, mx_unicode_lower(cps[k])) < 0)
					return -1;
			return 0;
		}
	}
	return mx_utf8_lower_append(b, s, len);
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

char *mx_addr_normalize(const char *addr)
{
	struct mx_buf b = {0};
	const char *s = addr, *e, *at, *p, *dot;

	if (addr == NULL)
		return NULL;
	e = s + strlen(s);
	while (s < e && is_blank(*s))
		s++;
	while (e > s && is_blank(e[-1]))
		e--;
	if (s < e && *s == '<')
		s++;
	if (e > s && e[-1] == '>')
		e--;
	while (s < e && is_blank(*s))
		s++;
	while (e > s && is_blank(e[-1]))
		e--;
	at = NULL;
	for (p = s; p < e; p++)
		if (*p == '@')
			at = p;
	if (at == NULL)
		return NULL;
	if (mx_buf_reserve(&b, (size_t)(e - s) + 8) < 0 ||
	    mx_utf8_sanitize_append(&b, s, (size_t)(at - s)) < 0 ||
	    mx_buf_append(&b, "@", 1) < 0)
		goto fail;
	for (p = at + 1; p <= e; p = dot + 1) {
		dot = memchr(p, '.', (size_t)(e - p));
		if (dot == NULL)
			dot = e;
		if (label_append(&b, p, (size_t)(dot - p)) < 0)
			goto fail;
		if (dot < e && mx_buf_append(&b, ".", 1) < 0)
			goto fail;
	}
	return mx_buf_steal(&b);
fail:
	mx_buf_free(&b);
	return NULL;
}

void mx_addr_list_free(struct mx_addr_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].email);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* The pieces of one entry while it is being read. */
struct entry {
	struct mx_buf phrase;  /* display-name words, unquoted */
	struct mx_buf spec;    /* the same words as an addr-spec */
	struct mx_buf angle;   /* inside <...> */
	struct mx_buf comment; /* the last (comment) */
	bool has_angle;
	bool space;            /* a blank precedes the next word */
};

static void entry_reset(struct entry *e)
{
	mx_buf_reset(&e->phrase);
	mx_buf_reset(&e->spec);
	mx_buf_reset(&e->angle);
	mx_buf_reset(&e->comment);
	e->has_angle = false;
	e->space = false;
}

static void entry_free(struct entry *e)
{
	mx_buf_free(&e->phrase);
	mx_buf_free(&e->spec);
	mx_buf_free(&e->angle);
	mx_buf_free(&e->comment);
}

/* Decoded and trimmed display name, or NULL (*NOMEM_R on ENOMEM). */
static char *decode_name(const struct mx_buf *raw, bool *unknown_r,
			 bool *nomem_r)
{
	struct mx_buf b = {0};
	size_t s = 0;

	if (raw->len == 0)
		return NULL;
	if (mx_decode_header_append(&b, raw->data, raw->len, unknown_r) < 0) {
		mx_buf_free(&b);
		*nomem_r = true;
		return NULL;
	}
	while (s < b.len && (b.data[s] == ' ' || b.data[s] == '\t'))
		s++;
	if (s == b.len) {
		mx_buf_free(&b);
		return NULL;
	}
	memmove(b.data, b.data + s, b.len - s + 1);
	b.len -= s;
	return mx_buf_steal(&b);
}

static int list_add(struct mx_addr_list *l, char *name, char *email)
{
	struct mx_addr *v;

	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (v == NULL) {
		free(name);
		free(email);
		return -1;
	}
	l->v = v;
	l->v[l->n].name = name;
	l->v[l->n].email = email;
	l->n++;
	return 0;
}

static int entry_end(struct entry *e, struct mx_addr_list *l, bool *unknown_r)
{
	char *name = NULL, *email = NULL, *a;
	bool nomem = false;

	if (l->n >= MX_MAX_ADDRS) {
		/* Recorded, so that a reader knows the list is not whole
		 * (an empty entry, as after a trailing comma, drops
		 * nothing). */
		if (e->has_angle || e->spec.len || e->phrase.len ||
		    e->comment.len)
			l->truncated = true;
		goto done;
	}
	if (e->has_angle) {
		/* Drop an obsolete source route "@a,@b:". */
		a = e->angle.data ? e->angle.data : "";
		if (a[0] == '@' && strchr(a, ':'))
			a = strrchr(a, ':') + 1;
		email = mx_addr_normalize(a);
		name = decode_name(&e->phrase, unknown_r, &nomem);
		if (name == NULL && !nomem)
			name = decode_name(&e->comment, unknown_r, &nomem);
	} else if (e->spec.len > 0 && memchr(e->spec.data, '@', e->spec.len)) {
		email = mx_addr_normalize(e->spec.data);
		name = decode_name(&e->comment, unknown_r, &nomem);
	} else {
		name = decode_name(&e->phrase, unknown_r, &nomem);
	}
	if (nomem) {
		free(email);
		return -1;
	}
	if (name == NULL && email == NULL)
		goto done;
	if (list_add(l, name, email) < 0)
		return -1;
done:
	entry_reset(e);
	return 0;
}

/* Adds a word (atom or quoted string) to the phrase and the addr-spec. */
static int entry_word(struct entry *e, const char *w, size_t n,
		      const char *raw, size_t rn)
{
	if (e->space && e->phrase.len > 0 &&
	    mx_buf_append(&e->phrase, " ", 1) < 0)
		return -1;
	e->space = false;
	if (mx_buf_append(&e->phrase, w, n) < 0 ||
	    mx_buf_append(&e->spec, raw, rn) < 0)
		return -1;
	return 0;
}

/*
 * Reads an angle-addr's inside from S[I] (just after '<') to its '>' into
 * OUT without what RFC 5322 allows around and between its tokens: blanks
 * and comments (nested, with quoted-pairs), as in
 * "<pete(his account)@silly.test(his host)>" and the obsolete
 * "<jdoe@machine(comment).  example>" (appendix A.5, A.6.3).  A quoted
 * local part is kept as written, quotes and escapes included; a '>' or
 * '(' inside it or inside a comment does not end or start anything.
 * Returns the index after the '>' (or N when it is missing), SIZE_MAX on
 * ENOMEM.
 */
static size_t angle_read(const char *s, size_t n, size_t i,
			 struct mx_buf *out)
{
	while (i < n && s[i] != '>') {
		char c = s[i];

		if (c == '"') {
			size_t q = i++;

			while (i < n && s[i] != '"') {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				i++;
			}
			if (i < n)
				i++;
			if (mx_buf_append(out, s + q, i - q) < 0)
				return SIZE_MAX;
		} else if (c == '(') {
			int depth = 0;

			for (; i < n; i++) {
				if (s[i] == '\\' && i + 1 < n)
					i++;
				else if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0)
					break;
			}
			if (i < n)
				i++;
		} else if (is_blank(c)) {
			i++;
		} else {
			if (mx_buf_append(out, s + i, 1) < 0)
				return SIZE_MAX;
			i++;
		}
	}
	if (mx_buf_reserve(out, 1) < 0)
		return SIZE_MAX;
	if (out->data)
		out->data[out->len] = '\0';
	return i < n ? i + 1 : n;
}

int mx_addr_list_parse(const char *value, size_t len,
		       struct mx_addr_list *out, bool *unknown_r)
{
	struct mx_buf u = {0}, q = {0};
	struct entry e = {0};
	bool in_group = false;
	size_t i = 0, s;
	int depth, rc = -1;
	char c;

	memset(out, 0, sizeof(*out));
	if (mx_unfold_append(&u, value, len) < 0)
		goto out;
	while (i < u.len) {
		c = u.data[i];
		if (c == ' ' || c == '\t') {
			e.space = true;
			i++;
		} else if (c == '"') {
			s = i++;
			mx_buf_reset(&q);
			for (; i < u.len && u.data[i] != '"'; i++) {
				if (u.data[i] == '\\' && i + 1 < u.len)
					i++;
				if (mx_buf_append(&q, u.data + i, 1) < 0)
					goto out;
			}
			if (i < u.len)
				i++;
			if (entry_word(&e, q.data ? q.data : "", q.len,
				       u.data + s, i - s) < 0)
				goto out;
		} else if (c == '(') {
			mx_buf_reset(&e.comment);
			for (depth = 0; i < u.len; i++) {
				if (u.data[i] == '\\' && i + 1 < u.len) {
					i++;
				} else if (u.data[i] == '(') {
					if (depth++ == 0)
						continue;
				} else if (u.data[i] == ')') {
					if (--depth == 0)
						break;
				}
				if (mx_buf_append(&e.comment, u.data + i, 1) < 0)
					goto out;
			}
			i++;
			e.space = true;
		} else if (c == '<') {
			mx_buf_reset(&e.angle);
			i = angle_read(u.data, u.len, i + 1, &e.angle);
			if (i == SIZE_MAX)
				goto out;
			e.has_angle = true;
		} else if (c == ',') {
			if (entry_end(&e, out, unknown_r) < 0)
				goto out;
			i++;
		} else if (c == ':' && !in_group && !e.has_angle) {
			/* A group: its name is listed with no address. */
			mx_buf_reset(&e.spec);
			if (entry_end(&e, out, unknown_r) < 0)
				goto out;
			in_group = true;
			i++;
		} else if (c == ';') {
			if (entry_end(&e, out, unknown_r) < 0)
				goto out;
			in_group = false;
			i++;
		} else {
			s = i;
			while (i < u.len && !strchr(" \t\"(<,;", u.data[i]) &&
			       !(u.data[i] == ':' && !in_group) &&
			       u.data[i] != '\0')
				i++;
			if (i == s)
				i++; /* a NUL byte or a stray '>' */
			else if (entry_word(&e, u.data + s, i - s, u.data + s,
					    i - s) < 0)
				goto out;
		}
	}
	if (entry_end(&e, out, unknown_r) < 0)
		goto out;
	rc = 0;
out:
	mx_buf_free(&u);
	mx_buf_free(&q);
	entry_free(&e);
	if (rc < 0)
		mx_addr_list_free(out);
	return rc;
}
