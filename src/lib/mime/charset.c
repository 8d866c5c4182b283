/*
 * Charset conversion to UTF-8 with glibc's iconv, plus the small UTF-8
 * helpers of the MIME module.  Whatever the input, the output is valid
 * UTF-8: bytes that do not convert become U+FFFD, they are never dropped.
 */
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime_int.h"

size_t mx_utf8_decode1(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c;
	size_t n, i;

	if (len == 0)
		return 0;
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
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF are invalid. */
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c > 0x10ffff)
		return 0;
	*cp = c;
	return n;
}

bool mx_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = mx_utf8_decode1(p + i, len - i, &cp);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

int mx_utf8_put(struct mx_buf *b, uint32_t cp)
{
	char t[4];

	if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = MX_REPLACEMENT;
	return mx_buf_append(b, t, mx_utf8_encode(cp, t));
}

int mx_utf8_sanitize_append(struct mx_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, start = 0, n;
	uint32_t cp;

	if (mx_buf_reserve(b, len) < 0)
		return -1;
	while (i < len) {
		n = mx_utf8_decode1(p + i, len - i, &cp);
		if (n > 0 && cp != 0) {
			i += n;
			continue;
		}
		if (mx_buf_append(b, s + start, i - start) < 0 ||
		    mx_utf8_put(b, MX_REPLACEMENT) < 0)
			return -1;
		i++;
		start = i;
	}
	return mx_buf_append(b, s + start, i - start);
}

/*
 * windows-1252 for 0x80..0x9f; the rest of the high half is Latin-1.  Done
 * by hand because it is the fallback of every other path and must not
 * depend on iconv being able to load a module.
 */
static const uint16_t cp1252_high[32] = {
	0x20ac, 0xfffd, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0xfffd, 0x017d, 0xfffd,
	0xfffd, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0xfffd, 0x017e, 0x0178,
};

static int cp1252_append(struct mx_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;
	int rc = 0;

	for (i = 0; i < len && rc == 0; i++) {
		if (p[i] >= 0x80 && p[i] < 0xa0)
			rc = mx_utf8_put(b, cp1252_high[p[i] - 0x80]);
		else
			rc = mx_utf8_put(b, p[i]);
	}
	return rc;
}

int mx_text8_append(struct mx_buf *b, const char *s, size_t len)
{
	if (mx_utf8_valid(s, len))
		return mx_utf8_sanitize_append(b, s, len);
	return cp1252_append(b, s, len);
}

enum cs_kind { CS_ICONV, CS_UTF8, CS_ASCII, CS_CP1252, CS_UNKNOWN };

static const struct {
	const char *alias;
	enum cs_kind kind;
	const char *iconv_name;
} cs_aliases[] = {
	{"utf-8", CS_UTF8, NULL},
	{"utf8", CS_UTF8, NULL},
	{"x-utf8", CS_UTF8, NULL},
	{"us-ascii", CS_ASCII, NULL},
	{"ascii", CS_ASCII, NULL},
	{"us", CS_ASCII, NULL},
	{"ansi_x3.4-1968", CS_ASCII, NULL},
	{"iso646-us", CS_ASCII, NULL},
	/*
	 * Like browsers, take Latin-1 labels as windows-1252: mail labelled
	 * Latin-1 very often carries cp1252 quotes and dashes in 0x80..0x9f,
	 * where real Latin-1 has only invisible control characters.
	 */
	{"iso-8859-1", CS_CP1252, NULL},
	{"iso8859-1", CS_CP1252, NULL},
	{"iso_8859-1", CS_CP1252, NULL},
	{"latin1", CS_CP1252, NULL},
	{"latin-1", CS_CP1252, NULL},
	{"l1", CS_CP1252, NULL},
	{"windows-1252", CS_CP1252, NULL},
	{"cp1252", CS_CP1252, NULL},
	{"x-cp1252", CS_CP1252, NULL},
	{"iso-8859-8-i", CS_ICONV, "ISO-8859-8"},
	{"iso-8859-6-i", CS_ICONV, "ISO-8859-6"},
	/* Supersets, so that the extra characters real mail uses convert. */
	{"gb2312", CS_ICONV, "GB18030"},
	{"gbk", CS_ICONV, "GB18030"},
	{"x-gbk", CS_ICONV, "GB18030"},
	{"cp936", CS_ICONV, "GB18030"},
	{"euc-cn", CS_ICONV, "GB18030"},
	{"csgb2312", CS_ICONV, "GB18030"},
	{"gb18030", CS_ICONV, "GB18030"},
	{"ks_c_5601-1987", CS_ICONV, "CP949"},
	{"ks_c_5601", CS_ICONV, "CP949"},
	{"ksc5601", CS_ICONV, "CP949"},
	{"ksc_5601", CS_ICONV, "CP949"},
	{"euc-kr", CS_ICONV, "CP949"},
	{"cseuckr", CS_ICONV, "CP949"},
	{"korean", CS_ICONV, "CP949"},
	{"shift_jis", CS_ICONV, "CP932"},
	{"shift-jis", CS_ICONV, "CP932"},
	{"sjis", CS_ICONV, "CP932"},
	{"x-sjis", CS_ICONV, "CP932"},
	{"ms_kanji", CS_ICONV, "CP932"},
	{"windows-31j", CS_ICONV, "CP932"},
	{"cp932", CS_ICONV, "CP932"},
	{"euc-jp", CS_ICONV, "EUC-JP"},
	{"x-euc-jp", CS_ICONV, "EUC-JP"},
	{"iso-2022-jp", CS_ICONV, "ISO-2022-JP-2"},
	{"big5", CS_ICONV, "BIG5"},
	{"big-5", CS_ICONV, "BIG5"},
	{"x-big5", CS_ICONV, "BIG5"},
	{"cn-big5", CS_ICONV, "BIG5"},
	{"koi8-r", CS_ICONV, "KOI8-R"},
	{"koi8-u", CS_ICONV, "KOI8-U"},
	{"utf-7", CS_ICONV, "UTF-7"},
	{"utf7", CS_ICONV, "UTF-7"},
	{"unicode-1-1-utf-7", CS_ICONV, "UTF-7"},
	{"csunicode11utf7", CS_ICONV, "UTF-7"},
	{"utf-16", CS_ICONV, "UTF-16"},
	{"utf-16be", CS_ICONV, "UTF-16BE"},
	{"utf-16le", CS_ICONV, "UTF-16LE"},
	{"ucs-2", CS_ICONV, "UTF-16"},
	{"unicode", CS_ICONV, "UTF-16"},
	/* Labels that name no charset at all. */
	{"default", CS_UNKNOWN, NULL},
	{"default_charset", CS_UNKNOWN, NULL},
	{"unknown-8bit", CS_UNKNOWN, NULL},
	{"x-unknown", CS_UNKNOWN, NULL},
	{"x-user-defined", CS_UNKNOWN, NULL},
	{"unknown", CS_UNKNOWN, NULL},
};

/*
 * Maps a charset label to how it is converted.  NAME receives the label
 * lower-cased and cleaned: quotes, blanks and an RFC 2231 "*language"
 * suffix removed.  Labels with characters no charset name has are unknown,
 * so that nothing odd reaches iconv_open().
 */
static enum cs_kind cs_lookup(const char *charset, char *name, size_t size,
			      const char **iconv_name_r)
{
	size_t i, n = 0;
	const char *p = charset;

	while (*p == ' ' || *p == '\t' || *p == '"' || *p == '\'')
		p++;
	for (; *p && *p != '*' && *p != '"' && *p != '\'' && *p != ' ' &&
	       *p != '\t'; p++) {
		char c = *p;

		if (n + 1 >= size)
			return CS_UNKNOWN;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.' || c == ':'))
			return CS_UNKNOWN;
		name[n++] = c;
	}
	name[n] = '\0';
	if (n == 0)
		return CS_UNKNOWN;
	for (i = 0; i < MX_ARRAY_SIZE(cs_aliases); i++) {
		if (strcmp(name, cs_aliases[i].alias) == 0) {
			*iconv_name_r = cs_aliases[i].iconv_name;
			return cs_aliases[i].kind;
		}
	}
	*iconv_name_r = name;
	return CS_ICONV;
}

static int iconv_append(struct mx_buf *b, iconv_t cd, const char *in,
			size_t len)
{
	char out[4096];
	char *ip = (char *)(uintptr_t)in, *op;
	size_t il = len, ol, r;
	int e;

	for (;;) {
		op = out;
		ol = sizeof(out);
		if (ip != NULL)
			r = iconv(cd, &ip, &il, &op, &ol);
		else
			r = iconv(cd, NULL, NULL, &op, &ol);
		e = errno;
		if (mx_utf8_sanitize_append(b, out, sizeof(out) - ol) < 0)
			return -1;
		if (r != (size_t)-1) {
			if (ip == NULL)
				return 0;
			if (il == 0)
				ip = NULL; /* one more round flushes the state */
			continue;
		}
		if (e == E2BIG)
			continue;
		if (ip == NULL)
			return 0;
		/*
		 * EILSEQ is an invalid byte, EINVAL an incomplete sequence
		 * at the end: both become U+FFFD.  After EILSEQ conversion
		 * goes on with the next byte.
		 */
		if (mx_utf8_put(b, MX_REPLACEMENT) < 0)
			return -1;
		if (e == EILSEQ && il > 1) {
			ip++;
			il--;
			continue;
		}
		ip = NULL;
	}
}

/*
 * iconv_open() costs a gconv module lookup each time, which showed up as
 * a tenth of a sync's CPU; so each thread keeps its last few descriptors
 * (closed by the key's destructor when the thread ends, or at exit).
 */
#define CD_CACHE 8

struct cd_cache {
	struct {
		char name[64];
		iconv_t cd;
	} e[CD_CACHE];
	unsigned next;
};

static pthread_key_t cd_key;
static pthread_once_t cd_once = PTHREAD_ONCE_INIT;

static void cd_cache_free(void *p)
{
	struct cd_cache *cc = p;

	for (unsigned i = 0; i < CD_CACHE; i++)
		if (cc->e[i].name[0])
			iconv_close(cc->e[i].cd);
	free(cc);
}

static void cd_key_init(void)
{
	pthread_key_create(&cd_key, cd_cache_free);
}

static void cd_main_free(void)
{
	struct cd_cache *cc = pthread_getspecific(cd_key);

	if (cc) {
		pthread_setspecific(cd_key, NULL);
		cd_cache_free(cc);
	}
}

/* A descriptor from UTF-8 to NAME, in its initial state; (iconv_t)-1 if
 * the charset is unknown to iconv. */
static iconv_t cd_get(const char *name)
{
	struct cd_cache *cc;
	iconv_t cd;
	unsigned i;

	pthread_once(&cd_once, cd_key_init);
	cc = pthread_getspecific(cd_key);
	if (cc == NULL) {
		cc = calloc(1, sizeof(*cc));
		if (cc == NULL || pthread_setspecific(cd_key, cc) != 0) {
			free(cc);
			return iconv_open("UTF-8", name);
		}
		/* The main thread never runs key destructors. */
		static bool registered;
		if (!registered) {
			registered = true;
			atexit(cd_main_free);
		}
	}
	for (i = 0; i < CD_CACHE; i++) {
		if (cc->e[i].name[0] && strcmp(cc->e[i].name, name) == 0) {
			iconv(cc->e[i].cd, NULL, NULL, NULL, NULL);
			return cc->e[i].cd;
		}
	}
	cd = iconv_open("UTF-8", name);
	if (cd == (iconv_t)-1 || strlen(name) >= sizeof(cc->e[0].name))
		return cd;
	i = cc->next++ % CD_CACHE;
	if (cc->e[i].name[0])
		iconv_close(cc->e[i].cd);
	snprintf(cc->e[i].name, sizeof(cc->e[i].name), "%s", name);
	cc->e[i].cd = cd;
	return cd;
}

/* Releases CD unless it belongs to the cache. */
static void cd_put(const char *name, iconv_t cd)
{
	struct cd_cache *cc = pthread_getspecific(cd_key);

	for (unsigned i = 0; cc && i < CD_CACHE; i++)
		if (cc->e[i].name[0] && cc->e[i].cd == cd &&
		    strcmp(cc->e[i].name, name) == 0)
			return;
	iconv_close(cd);
}

int mx_charset_append(struct mx_buf *b, const char *charset, const char *in,
		      size_t len, bool *unknown_r)
{
	char name[64];
	const char *iname = NULL;
	iconv_t cd;
	int rc;

	if (charset == NULL)
		return mx_text8_append(b, in, len);
	switch (cs_lookup(charset, name, sizeof(name), &iname)) {
	case CS_UTF8:
		return mx_utf8_sanitize_append(b, in, len);
	case CS_ASCII:
		/* Declared ASCII with 8-bit bytes: the usual lie. */
		return mx_text8_append(b, in, len);
	case CS_CP1252:
		return cp1252_append(b, in, len);
	case CS_ICONV:
		cd = cd_get(iname);
		if (cd != (iconv_t)-1) {
			rc = iconv_append(b, cd, in, len);
			cd_put(iname, cd);
			return rc;
		}
		break;
	case CS_UNKNOWN:
		break;
	}
	if (unknown_r)
		*unknown_r = true;
	return mx_text8_append(b, in, len);
}

int mx_charset_to_utf8(const char *charset, const char *in, size_t len,
		       char **out_r)
{
	struct mx_buf b = {0};
	bool unknown = false;

	*out_r = NULL;
	if (mx_charset_append(&b, charset ? charset : "", in, len,
			      &unknown) < 0) {
		mx_buf_free(&b);
		return MX_ERR_NOMEM;
	}
	*out_r = mx_buf_steal(&b);
	if (*out_r == NULL)
		return MX_ERR_NOMEM;
	return unknown ? MX_ERR_CHARSET : MX_OK;
}

uint32_t mx_unicode_lower(uint32_t c)
{
	if (c < 0x80)
		return c >= 'A' && c <= 'Z' ? c + 32 : c;
	/* Latin-1, Latin Extended-A, Greek and Cyrillic cover what domains
	   and subjects need for matching; the rest is left as it is. */
	if ((c >= 0xc0 && c <= 0xde && c != 0xd7))
		return c + 32;
	if (c >= 0x100 && c <= 0x137 && !(c & 1))
		return c + 1;
	if (c >= 0x139 && c <= 0x148 && (c & 1))
		return c + 1;
	if (c >= 0x14a && c <= 0x177 && !(c & 1))
		return c + 1;
	if (c == 0x178)
		return 0xff;
	if (c >= 0x179 && c <= 0x17e && (c & 1))
		return c + 1;
	if (c >= 0x391 && c <= 0x3ab && c != 0x3a2)
		return c + 32;
	if (c >= 0x410 && c <= 0x42f)
		return c + 32;
	if (c >= 0x400 && c <= 0x40f)
		return c + 80;
	return c;
}

int mx_utf8_lower_append(struct mx_buf *b, const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n;
	uint32_t cp;

	while (i < len) {
		n = mx_utf8_decode1(p + i, len - i, &cp);
		if (n == 0) {
			cp = MX_REPLACEMENT;
			n = 1;
		}
		if (mx_utf8_put(b, mx_unicode_lower(cp)) < 0)
			return -1;
		i += n;
	}
	return 0;
}
