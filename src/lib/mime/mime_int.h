/*
 * Helpers shared by the files of the MIME module (charset.c, addr.c,
 * mime.c, header.c).  Nothing here is visible outside src/lib/mime/.
 *
 * The *_append() functions add to an mx_buf and return 0, or -1 when
 * memory ran out (the buffer then holds a prefix of the result).  Their
 * output is always valid UTF-8 without NUL bytes.
 */
#ifndef MX_MIME_INT_H
#define MX_MIME_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime.h"
#include "util/util.h"

#define MX_REPLACEMENT 0xfffdu

/* charset.c */

/* UTF-8 helpers (mx_utf8_decode1, ...): public, in mime.h. */
/* Raw 8-bit text: taken as UTF-8 when valid, else as windows-1252. */
int mx_text8_append(struct mx_buf *b, const char *s, size_t len);
/*
 * Converts LEN bytes in CHARSET to UTF-8.  An unknown charset sets
 * *UNKNOWN_R (when not NULL) and falls back to mx_text8_append().
 */
int mx_charset_append(struct mx_buf *b, const char *charset, const char *in,
		      size_t len, bool *unknown_r);
/* Simple lower-casing of the scripts met in domains and subjects. */
uint32_t mx_unicode_lower(uint32_t cp);
int mx_utf8_lower_append(struct mx_buf *b, const char *s, size_t len);

/* mime.c */

/* mx_mime_decode_header() into a buffer; *UNKNOWN_R as above. */
int mx_decode_header_append(struct mx_buf *b, const char *value, size_t len,
			    bool *unknown_r);

/* addr.c */

/* mx_addr_list_parse(): public, in mime.h. */

/* header.c: the tolerant header-block parser of the module. */

struct mx_hdr {
	const char *name; /* foreign: points into the message */
	size_t name_len;
	const char *value; /* raw, still folded, without the final EOL */
	size_t value_len;
};

struct mx_hdrs {
	struct mx_hdr *v; /* owned */
	size_t n;
	size_t cap;
	size_t body_off; /* offset of the body (after the empty line) */
	bool no_separator; /* input ended without an empty line */
	bool truncated;    /* more than MX_MAX_HEADERS fields */
	bool junk;         /* lines that were neither field nor fold */
};

#define MX_MAX_HEADERS 4096

/*
 * Splits the header block at the start of RAW.  A leading mbox "From "
 * line is skipped; lines without a colon are skipped (as IMAP servers do)
 * and flagged.  Returns 0 or -1 on ENOMEM.
 */
int mx_hdrs_parse(const char *raw, size_t len, struct mx_hdrs *h);
void mx_hdrs_free(struct mx_hdrs *h);
/* First field named NAME (case-insensitive), or NULL. */
const struct mx_hdr *mx_hdrs_get(const struct mx_hdrs *h, const char *name);
/*
 * Unfolds a raw value: CR and LF removed, surrounding blanks trimmed.
 * Appends the bytes unchanged otherwise (not yet UTF-8 checked).
 */
int mx_unfold_append(struct mx_buf *b, const char *v, size_t len);

/* Transfer decodings, tolerant of junk.  HEADER: "_" is a space (Q). */
int mx_base64_append(struct mx_buf *b, const char *s, size_t len);
/* Number of bytes mx_base64_append() would produce, without decoding. */
size_t mx_base64_decoded_len(const char *s, size_t len);
int mx_qp_append(struct mx_buf *b, const char *s, size_t len, bool header);

/* Content-Type / Content-Disposition: "token; name=value; ...". */
struct mx_param {
	char *name; /* lower-case */
	char *value; /* unquoted, raw bytes */
	size_t value_len;
};

struct mx_params {
	char *token; /* "text/plain", "attachment": lower-case, may be "" */
	struct mx_param *v;
	size_t n;
};

#define MX_MAX_PARAMS 128

int mx_params_parse(const char *raw, size_t len, struct mx_params *p);
void mx_params_free(struct mx_params *p);
/*
 * Value of parameter NAME as UTF-8, RFC 2231 (name*, name*0*, charsets)
 * and RFC 2047 decoded; *OUT_R NULL when absent.  -1 on ENOMEM.
 */
int mx_param_get(const struct mx_params *p, const char *name, char **out_r,
		 bool *unknown_r);

#endif
