/*
 * Internal utilities shared by every module of libmxsync: error filling,
 * growable byte buffers, logging, hex, base64, small string helpers.
 */
#ifndef MX_UTIL_H
#define MX_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "mxsync/mxsync.h"

#define MX_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Records CODE and a printf-style detail in ERR (NULL-safe) and returns CODE,
 * so callers write `return mx_error_set(err, MX_ERR_IO, "open %s: %s", ...)`.
 * Scope and retry class default from the code; see mx_error_classify().
 */
enum mx_err mx_error_set(struct mx_error *err, enum mx_err code,
			 const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefixes the existing detail with "PREFIX: " (keeps code and class). */
void mx_error_prefix(struct mx_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Sets the scope (keeps code, detail and retry class). */
void mx_error_scope(struct mx_error *err, enum mx_err_scope scope);

void mx_error_clear(struct mx_error *err);

/* Default retry class for a code (e.g. MX_ERR_NET -> MX_RETRY_TEMP). */
enum mx_err_retry mx_error_default_retry(enum mx_err code);

/* Growable byte buffer.  Always NUL-terminated after data[len]. */
struct mx_buf {
	char *data; /* owned */
	size_t len;
	size_t cap;
};

int mx_buf_reserve(struct mx_buf *b, size_t extra); /* 0 or -1 (ENOMEM) */
int mx_buf_append(struct mx_buf *b, const void *p, size_t n);
int mx_buf_puts(struct mx_buf *b, const char *s);
int mx_buf_printf(struct mx_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int mx_buf_vprintf(struct mx_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void mx_buf_reset(struct mx_buf *b); /* len = 0, keeps memory */
void mx_buf_free(struct mx_buf *b);
/* Hands the data to the caller (NUL-terminated) and empties the buffer. */
char *mx_buf_steal(struct mx_buf *b);

/* Logging to stderr.  Levels: 0 error, 1 warn, 2 info, 3 debug. */
enum mx_log_level { MX_LOG_ERROR = 0, MX_LOG_WARN, MX_LOG_INFO, MX_LOG_DEBUG };
extern int mx_log_level;
extern const char *mx_log_ident; /* prefix on stderr, default "mxsync" */
void mx_log(enum mx_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Sends log lines to syslog (daemon facility) instead of stderr. */
void mx_log_syslog(const char *ident);
#define mx_warn(...) mx_log(MX_LOG_WARN, __VA_ARGS__)
#define mx_info(...) mx_log(MX_LOG_INFO, __VA_ARGS__)
#define mx_debug(...) mx_log(MX_LOG_DEBUG, __VA_ARGS__)

/* Protocol/debug trace categories, switched on with -D or MXSYNC_TRACE
 * (comma-separated names: imap, sync, store, webhook, smtp, pop3,
 * backend). */
#define MX_TRACE_IMAP 0x1u
#define MX_TRACE_SYNC 0x2u
#define MX_TRACE_STORE 0x4u
#define MX_TRACE_WEBHOOK 0x8u
#define MX_TRACE_SMTP 0x10u
#define MX_TRACE_POP3 0x20u
#define MX_TRACE_BACKEND 0x40u /* every backend slot call (backend.c) */
extern unsigned mx_trace_mask;
/* Parses "imap,sync" into a mask; -1 on an unknown name. */
int mx_trace_parse(const char *spec, unsigned *mask_r);
void mx_trace(unsigned cat, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Lower-case hex of N bytes into OUT (2N+1 bytes). */
void mx_hex(const uint8_t *in, size_t n, char *out);
/* Parses 2N hex chars into N bytes; -1 on bad input. */
int mx_unhex(const char *in, uint8_t *out, size_t n);
/* The value 0-15 of the hex digit C (either case), or -1. */
int mx_hexval(int c);

/*
 * Standard base64 (RFC 4648 section 4: alphabet A-Z a-z 0-9 + /, padded
 * with "=" to a multiple of 4 characters, no line breaks) of the N bytes at
 * IN.  Returns a malloc()ed NUL-terminated string of 4 * ((N + 2) / 3)
 * characters, owned by the caller (who wipes it first if IN was a secret);
 * NULL if out of memory.  N == 0 gives "".
 */
char *mx_base64_encode(const void *in, size_t n);

/* Flags for mx_base64_decode(). */
enum mx_base64_flags {
	/* Skip SP, HT, CR and LF anywhere (text wrapped by hand or in
	 * lines); without it any of them is an error. */
	MX_BASE64_SKIP_SPACE = 1u << 0,
	/* Accept non-zero unused bits in the character before the padding
	 * (RFC 4648 3.5 lets decoders reject them, and by default we do:
	 * else two different texts decode to the same bytes). */
	MX_BASE64_ANY_TAIL = 1u << 1,
};

/*
 * Decodes the N characters at S (no NUL needed) as standard padded base64
 * (RFC 4648 section 4) into OUT, which has room for CAP bytes; N / 4 * 3
 * is always enough.  FLAGS is 0 or a mask of enum mx_base64_flags.
 * Strict: only the alphabet, the character count (spaces skipped under
 * MX_BASE64_SKIP_SPACE) a multiple of 4, "=" only as the last one or two
 * characters.  Empty input is valid (0 bytes).  On success returns 0 and
 * sets *LEN_R; returns -1 on any deviation or when the result would not fit
 * in CAP bytes (OUT may then hold partial output; *LEN_R is untouched).
 */
int mx_base64_decode(const char *s, size_t n, unsigned flags,
		     unsigned char *out, size_t cap, size_t *len_r);

void mx_sha256(const void *data, size_t len, uint8_t out[32]);

/* True if the NUL-terminated S is valid UTF-8 (no overlongs). */
bool mx_utf8_valid_str(const char *s);
/*
 * Writes the UTF-8 form of the code point CP (below 0x110000) into OUT and
 * returns its length, 1 to 4.  Any such CP is encoded as it is, U+0000 and
 * surrogates included: callers that must not produce them check first.
 */
size_t mx_utf8_encode(uint32_t cp, char out[4]);

/*
 * True if S is a name for an account or a webhook: 1 to 64 characters of
 * A-Z a-z 0-9 . _ - (names go into config section headers, file names and
 * events unquoted).
 */
bool mx_name_valid(const char *s);

/*
 * Parses S as a decimal number from LO to HI: ASCII digits only (no sign,
 * no space, no "0x"), nothing after them.  Returns 0 and sets *V_R, or -1
 * for an empty string, garbage, overflow or a value outside LO..HI (*V_R
 * untouched).  One strict parser for every numeric option and setting:
 * strtoul() would take "-1" as 2^64-1 and atoi() "abc" as 0.
 */
int mx_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *v_r);

/*
 * Appends the N bytes at S to OUT in a form safe to print on a terminal:
 * C0 controls and DEL as \xNN, C1 controls (U+0080..U+009F) as \uNNNN,
 * and every byte of invalid UTF-8 as \xNN; everything else, valid UTF-8
 * and backslashes included, is copied.  KEEP_NL keeps \n, CR LF and \t
 * for multi-line text (a lone CR, which could hide what precedes it on
 * the line, is still escaped).  Text from a server or a message must go
 * through this before it reaches a terminal: ESC sequences can retitle or
 * rewrite the screen.  Returns 0, or -1 when out of memory.
 */
int mx_term_escape(struct mx_buf *out, const char *s, size_t n, bool keep_nl);
/* True if the NUL-terminated S needs no escaping by mx_term_escape(). */
bool mx_term_safe(const char *s);
/*
 * JSON text ENC (as jansson encodes it: valid UTF-8, C0 controls already
 * escaped) with DEL and the C1 controls U+0080..U+009F, which JSON allows
 * raw and some terminals obey, written as \u007f and \u0080..\u009f.  Such
 * bytes only occur inside strings, so the result is the same JSON value.
 * malloc()ed; NULL when out of memory.
 */
char *mx_json_term_safe(const char *enc);

/* malloc-or-NULL duplicates; NULL in -> NULL out. */
char *mx_strdup(const char *s);
char *mx_strndup(const char *s, size_t n);

/* Big-endian helpers for LMDB keys. */
static inline void mx_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}
static inline uint32_t mx_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static inline void mx_put_be64(uint8_t *p, uint64_t v)
{
	mx_put_be32(p, (uint32_t)(v >> 32));
	mx_put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t mx_get_be64(const uint8_t *p)
{
	return (uint64_t)mx_get_be32(p) << 32 | mx_get_be32(p + 4);
}

/* Monotonic and wall clock in milliseconds. */
uint64_t mx_now_ms(void);
int64_t mx_wall_s(void);

/* Condition variables that time out on the monotonic clock, so that a
 * wall-clock step (NTP, an operator) neither cuts a wait short nor
 * stretches it: mx_cond_init_mono() initialises CV for that clock and
 * mx_deadline_mono() fills TS with "MS milliseconds from now" for
 * pthread_cond_timedwait() on it. */
struct timespec;
int mx_cond_init_mono(pthread_cond_t *cv);
void mx_deadline_mono(uint64_t ms, struct timespec *ts);

/* Creates DIR and its parents with MODE (existing is fine). */
int mx_mkdir_p(const char *dir, unsigned mode, struct mx_error *err);

/*
 * Writes the N bytes at P to FD, again after short writes and EINTR.
 * Returns 0, or -1 with errno set (EIO if write() wrote nothing).
 */
int mx_write_all(int fd, const void *p, size_t n);

/* Reads a whole file (up to MAX bytes) into a NUL-terminated buffer. */
int mx_read_file(const char *path, size_t max, char **data_r, size_t *len_r,
		 struct mx_error *err);

#endif
