/* Buffers, logging, hashing and small file helpers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util.h"

int mx_log_level = MX_LOG_INFO;
const char *mx_log_ident = "mxsync";
unsigned mx_trace_mask;

int mx_trace_parse(const char *spec, unsigned *mask_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} cats[] = {{"imap", MX_TRACE_IMAP}, {"sync", MX_TRACE_SYNC},
		    {"store", MX_TRACE_STORE}, {"webhook", MX_TRACE_WEBHOOK},
		    {"smtp", MX_TRACE_SMTP}, {"pop3", MX_TRACE_POP3},
		    {"backend", MX_TRACE_BACKEND},
		    {"all", ~0u}};
	unsigned mask = 0;
	const char *p = spec;

	while (*p) {
		size_t n = strcspn(p, ",");
		bool found = false;

		for (size_t i = 0; i < MX_ARRAY_SIZE(cats); i++) {
			if (strlen(cats[i].name) == n &&
			    strncmp(p, cats[i].name, n) == 0) {
				mask |= cats[i].bit;
				found = true;
			}
		}
		if (!found && n > 0)
			return -1;
		p += n;
		if (*p == ',')
			p++;
	}
	*mask_r = mask;
	return 0;
}

void mx_trace(unsigned cat, const char *fmt, ...)
{
	va_list ap;

	if (!(mx_trace_mask & cat))
		return;
	fprintf(stderr, "%s: trace: ", mx_log_ident);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int mx_buf_reserve(struct mx_buf *b, size_t extra)
{
	size_t need, ncap;
	char *p;

	if (extra > SIZE_MAX - b->len - 1)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
	p = realloc(b->data, ncap);
	if (p == NULL)
		return -1;
	b->data = p;
	b->cap = ncap;
	return 0;
}

int mx_buf_append(struct mx_buf *b, const void *p, size_t n)
{
	if (mx_buf_reserve(b, n) < 0)
		return -1;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int mx_buf_puts(struct mx_buf *b, const char *s)
{
	return mx_buf_append(b, s, strlen(s));
}

int mx_buf_vprintf(struct mx_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || mx_buf_reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int mx_buf_printf(struct mx_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = mx_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void mx_buf_reset(struct mx_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void mx_buf_free(struct mx_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *mx_buf_steal(struct mx_buf *b)
{
	char *p;

	if (b->data == NULL && mx_buf_reserve(b, 0) < 0)
		return NULL;
	p = b->data;
	p[b->len] = '\0';
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

static bool log_to_syslog;

void mx_log_syslog(const char *ident)
{
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_to_syslog = true;
}

void mx_log(enum mx_log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	va_list ap;

	if ((int)lvl > mx_log_level)
		return;
	if (log_to_syslog) {
		va_start(ap, fmt);
		vsyslog(prio[lvl], fmt, ap);
		va_end(ap);
		return;
	}
	{
		/* Log lines carry folder names, subjects and server replies:
		 * escaped, so that none can send control sequences to the
		 * terminal. */
		struct mx_buf line = {0}, safe = {0};
		int rc;

		va_start(ap, fmt);
		rc = mx_buf_vprintf(&line, fmt, ap);
		va_end(ap);
		if (rc == 0 && mx_term_escape(&safe, line.data, line.len,
					      false) == 0)
			fprintf(stderr, "%s: %s: %s\n", mx_log_ident,
				names[lvl], safe.data);
		mx_buf_free(&line);
		mx_buf_free(&safe);
	}
}

void mx_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int mx_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int mx_unhex(const char *in, uint8_t *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		int hi = mx_hexval(in[2 * i]), lo;

		if (hi < 0)
			return -1;
		lo = mx_hexval(in[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *mx_base64_encode(const void *in, size_t n)
{
	const unsigned char *p = in;
	size_t o = 0;
	char *out;

	if (n > SIZE_MAX / 2)
		return NULL;
	out = malloc(4 * ((n + 2) / 3) + 1);
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		size_t left = n - i;
		uint32_t v = (uint32_t)p[i] << 16;

		if (left > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (left > 2)
			v |= p[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = left > 1 ? b64_alphabet[v >> 6 & 63] : '=';
		out[o++] = left > 2 ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int mx_base64_decode(const char *s, size_t n, unsigned flags,
		     unsigned char *out, size_t cap, size_t *len_r)
{
	uint32_t acc = 0;
	size_t o = 0, k = 0, pad = 0;
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			if (!(flags & MX_BASE64_SKIP_SPACE))
				return -1;
			continue;
		}
		if (c == '=') {
			/* Only the 3rd and 4th character of the last group. */
			if (k % 4 < 2)
				return -1;
			pad++;
		} else {
			if (pad > 0 || (v = b64_value(c)) < 0)
				return -1;
			acc = acc << 6 | (uint32_t)v;
		}
		if (++k % 4 != 0)
			continue;
		/* A whole group: 3 bytes, less one per "=". */
		if (pad > 0 && !(flags & MX_BASE64_ANY_TAIL) &&
		    (v & (pad == 1 ? 0x3 : 0xf)) != 0)
			return -1;
		acc <<= 6 * pad;
		if (cap - o < 3 - pad)
			return -1;
		for (size_t b = 0; b < 3 - pad; b++)
			out[o++] = (unsigned char)(acc >> (16 - 8 * b));
		acc = 0;
	}
	if (k % 4 != 0)
		return -1;
	*len_r = o;
	return 0;
}

void mx_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned int outlen = 32;

	EVP_Digest(data, len, out, &outlen, EVP_sha256(), NULL);
}

bool mx_utf8_valid_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n;

		if (*p < 0x80)
			n = 0;
		else if (*p >= 0xc2 && *p <= 0xdf)
			n = 1;
		else if (*p >= 0xe0 && *p <= 0xef)
			n = 2;
		else if (*p >= 0xf0 && *p <= 0xf4)
			n = 3;
		else
			return false;
		p++;
		while (n-- > 0) {
			if ((*p & 0xc0) != 0x80)
				return false;
			p++;
		}
	}
	return true;
}

int mx_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *v_r)
{
	uint64_t v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (i = 0; s[i]; i++) {
		unsigned d = (unsigned char)s[i] - '0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < lo || v > hi)
		return -1;
	*v_r = v;
	return 0;
}

/* Length of the valid UTF-8 sequence at P (at most N bytes), or 0. */
static size_t utf8_seq_len(const unsigned char *p, size_t n)
{
	size_t len;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
		return 0;
	return len;
}

int mx_term_escape(struct mx_buf *out, const char *s, size_t n, bool keep_nl)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		size_t len = utf8_seq_len(p + i, n - i);
		int rc;

		if (len == 1 && p[i] >= 0x20 && p[i] != 0x7f)
			rc = mx_buf_append(out, p + i, 1);
		else if (len == 1 && keep_nl &&
			 (p[i] == '\n' || p[i] == '\t' ||
			  (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')))
			rc = mx_buf_append(out, p + i, 1);
		else if (len == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)
			rc = mx_buf_printf(out, "\\u%04x", p[i + 1]);
		else if (len >= 2)
			rc = mx_buf_append(out, p + i, len);
		else {
			rc = mx_buf_printf(out, "\\x%02x", p[i]);
			len = 1;
		}
		if (rc < 0)
			return -1;
		i += len;
	}
	return mx_buf_append(out, "", 0); /* NUL-terminated even if empty */
}

bool mx_term_safe(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0;

	while (i < n) {
		size_t len = utf8_seq_len(p + i, n - i);

		if (len == 0 || (len == 1 && (p[i] < 0x20 || p[i] == 0x7f)) ||
		    (len == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0))
			return false;
		i += len;
	}
	return true;
}

char *mx_json_term_safe(const char *enc)
{
	const unsigned char *p = (const unsigned char *)enc;
	struct mx_buf out = {0};
	char esc[8];

	for (size_t i = 0; p[i]; i++) {
		unsigned cp = p[i];

		if (p[i] == 0xc2 && p[i + 1] >= 0x80 && p[i + 1] < 0xa0)
			cp = p[++i]; /* U+0080..U+009F */
		else if (p[i] != 0x7f) {
			if (mx_buf_append(&out, &p[i], 1) != 0)
				goto oom;
			continue;
		}
		snprintf(esc, sizeof(esc), "\\u%04x", cp);
		if (mx_buf_append(&out, esc, 6) != 0)
			goto oom;
	}
	if (mx_buf_append(&out, "", 1) != 0)
		goto oom;
	return (char *)out.data;
oom:
	mx_buf_free(&out);
	return NULL;
}

bool mx_name_valid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= 'a' && s[n] <= 'z') ||
		      (s[n] >= '0' && s[n] <= '9') || s[n] == '.' ||
		      s[n] == '_' || s[n] == '-'))
			return false;
	return n >= 1 && n <= 64;
}

size_t mx_utf8_encode(uint32_t cp, char out[4])
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

char *mx_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *mx_strndup(const char *s, size_t n)
{
	char *p;

	if (s == NULL)
		return NULL;
	p = malloc(n + 1);
	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

uint64_t mx_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int mx_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t ca;
	int rc;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = pthread_cond_init(cv, &ca);
	pthread_condattr_destroy(&ca);
	return rc;
}

void mx_deadline_mono(uint64_t ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

int64_t mx_wall_s(void)
{
	return (int64_t)time(NULL);
}

int mx_mkdir_p(const char *dir, unsigned mode, struct mx_error *err)
{
	char *p, *s;
	int rc = MX_OK;

	/* The loop starts after the first byte (a leading '/'). */
	if (*dir == '\0')
		return mx_error_set(err, MX_ERR_INVAL,
				    "empty directory path");
	s = strdup(dir);
	if (s == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	for (p = s + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(s, mode) < 0 && errno != EEXIST) {
				rc = mx_error_set(err, MX_ERR_IO, "mkdir %s: %s",
						  s, strerror(errno));
				break;
			}
			*p = c;
			if (c == '\0')
				break;
		}
	}
	free(s);
	return rc;
}

int mx_write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		if (w == 0) {
			errno = EIO;
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

int mx_read_file(const char *path, size_t max, char **data_r, size_t *len_r,
		 struct mx_error *err)
{
	struct mx_buf b = {0};
	char chunk[65536];
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mx_error_set(err, MX_ERR_IO, "open %s: %s", path,
				    strerror(errno));
	for (;;) {
		n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			close(fd);
			mx_buf_free(&b);
			return mx_error_set(err, MX_ERR_IO, "read %s: %s",
					    path, strerror(e));
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			close(fd);
			mx_buf_free(&b);
			return mx_error_set(err, MX_ERR_IO,
					    "%s: larger than %zu bytes", path,
					    max);
		}
		if (mx_buf_append(&b, chunk, (size_t)n) < 0) {
			close(fd);
			mx_buf_free(&b);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
	}
	close(fd);
	if (len_r)
		*len_r = b.len;
	*data_r = mx_buf_steal(&b);
	return *data_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
}

void mx_free(void *p)
{
	free(p);
}
