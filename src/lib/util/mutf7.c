/*
 * Modified UTF-7 (RFC 3501 section 5.1.3): printable ASCII stands for
 * itself except "&", which is written "&-"; everything else is UTF-16 in
 * base64 (with "," for "/", no padding) between "&" and "-".
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mutf7.h"
#include "util.h"

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_index(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(b64, c);
	return p ? (int)(p - b64) : -1;
}

static int put_utf8(struct mx_buf *b, uint32_t cp)
{
	char t[4];

	return mx_buf_append(b, t, mx_utf8_encode(cp, t));
}

/*
 * Decodes the base64 run at *PP (after "&", up to and including "-").
 * Returns 0, or -1 when the run is malformed or memory ran out.
 */
static int decode_run(const char **pp, struct mx_buf *out)
{
	const char *p = *pp;
	uint32_t acc = 0, hi = 0, u;
	int bits = 0, v;
	size_t units = 0;

	for (; *p != '-'; p++) {
		v = b64_index(*p);
		if (v < 0)
			return -1;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits < 16)
			continue;
		bits -= 16;
		u = acc >> bits & 0xffff;
		units++;
		if (hi != 0) {
			if (u < 0xdc00 || u > 0xdfff)
				return -1;
			if (put_utf8(out, 0x10000 + ((hi - 0xd800) << 10) +
					       (u - 0xdc00)) < 0)
				return -1;
			hi = 0;
		} else if (u >= 0xd800 && u <= 0xdbff) {
			hi = u;
		} else if (u >= 0xdc00 && u <= 0xdfff) {
			return -1;
		} else if (u >= 0x20 && u <= 0x7e) {
			/* Printable ASCII must be written directly. */
			return -1;
		} else if (put_utf8(out, u) < 0) {
			return -1;
		}
	}
	/* Leftover bits: fewer than six and all zero; no dangling
	   surrogate, no empty run ("&-" is handled by the caller). */
	if (hi != 0 || units == 0 || bits >= 6 ||
	    (acc & ((1u << bits) - 1)) != 0)
		return -1;
	*pp = p + 1;
	return 0;
}

char *mx_mutf7_decode(const char *in)
{
	struct mx_buf out = {0};
	const char *p = in;

	if (in == NULL || mx_buf_reserve(&out, strlen(in)) < 0)
		return NULL;
	while (*p) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c > 0x7e)
			goto fail;
		if (c != '&') {
			if (mx_buf_append(&out, p, 1) < 0)
				goto fail;
			p++;
			continue;
		}
		p++;
		if (*p == '-') {
			if (mx_buf_append(&out, "&", 1) < 0)
				goto fail;
			p++;
			continue;
		}
		if (decode_run(&p, &out) < 0)
			goto fail;
	}
	return mx_buf_steal(&out);
fail:
	mx_buf_free(&out);
	return NULL;
}

/* Decodes one UTF-8 character of S; 0 when invalid. */
static size_t utf8_char(const unsigned char *s, uint32_t *cp)
{
	uint32_t c;
	size_t n, i;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		c = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		c = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		c = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	*cp = c;
	return n;
}

static int put_bits(struct mx_buf *out, uint32_t *acc, int *bits, uint32_t u)
{
	char c;

	*acc = (*acc << 16 | u) & 0xffffff;
	*bits += 16;
	while (*bits >= 6) {
		*bits -= 6;
		c = b64[*acc >> *bits & 0x3f];
		if (mx_buf_append(out, &c, 1) < 0)
			return -1;
	}
	return 0;
}

char *mx_mutf7_encode(const char *in)
{
	const unsigned char *p = (const unsigned char *)in;
	struct mx_buf out = {0};
	bool shifted = false;
	uint32_t cp, acc = 0;
	int bits = 0;
	size_t n;
	char c;

	if (in == NULL || mx_buf_reserve(&out, strlen(in)) < 0)
		return NULL;
	while (*p) {
		n = utf8_char(p, &cp);
		if (n == 0)
			goto fail;
		if (cp >= 0x20 && cp <= 0x7e) {
			if (shifted) {
				if (bits > 0) {
					c = b64[acc << (6 - bits) & 0x3f];
					if (mx_buf_append(&out, &c, 1) < 0)
						goto fail;
				}
				if (mx_buf_append(&out, "-", 1) < 0)
					goto fail;
				shifted = false;
				acc = 0;
				bits = 0;
			}
			if (mx_buf_append(&out, cp == '&' ? "&-" : (const char *)p,
					  cp == '&' ? 2 : 1) < 0)
				goto fail;
		} else {
			if (!shifted) {
				if (mx_buf_append(&out, "&", 1) < 0)
					goto fail;
				shifted = true;
			}
			if (cp >= 0x10000) {
				cp -= 0x10000;
				if (put_bits(&out, &acc, &bits,
					     0xd800 | cp >> 10) < 0 ||
				    put_bits(&out, &acc, &bits,
					     0xdc00 | (cp & 0x3ff)) < 0)
					goto fail;
			} else if (put_bits(&out, &acc, &bits, cp) < 0) {
				goto fail;
			}
		}
		p += n;
	}
	if (shifted) {
		if (bits > 0) {
			c = b64[acc << (6 - bits) & 0x3f];
			if (mx_buf_append(&out, &c, 1) < 0)
				goto fail;
		}
		if (mx_buf_append(&out, "-", 1) < 0)
			goto fail;
	}
	return mx_buf_steal(&out);
fail:
	mx_buf_free(&out);
	return NULL;
}
