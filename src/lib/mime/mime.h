/*
 * MIME parsing into mxsync's own structures.  libetpan's mailmime/mailimf
 * types never leave src/lib/mime/.
 *
 * Contract: mx_mime_parse() never fails on bad input.  Whatever the bytes,
 * it returns MX_OK with as much as could be understood and sets
 * MX_PARSED_BROKEN plus a reason when the structure could not be parsed;
 * only MX_ERR_NOMEM is an error.  All strings in struct mx_parsed are
 * UTF-8 (invalid sequences replaced by U+FFFD), NUL-terminated, owned by
 * the struct and released by mx_parsed_free().
 */
#ifndef MX_MIME_H
#define MX_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

struct mx_addr {
	char *name;  /* display name, decoded; NULL if none */
	char *email; /* local@domain, domain lower-cased, IDN kept as UTF-8;
			NULL for a group name or an unparsable entry */
};

struct mx_addr_list {
	struct mx_addr *v;
	size_t n;
	bool truncated; /* the header had more than MX_MAX_ADDRS entries:
			   only the first ones are in V */
};

/* Limits what one address header can cost. */
#define MX_MAX_ADDRS 2000

/* Leaf parts; a message/rfc822 part is a leaf (not descended into). */
struct mx_part {
	char *part_id;      /* IMAP-style section number: "1", "2.1" ... */
	char *content_type; /* "text/plain", lower-case */
	char *charset;      /* lower-case, NULL if none */
	char *filename;     /* RFC 2231/2047 decoded, NULL if none */
	char *content_id;   /* without <>, NULL if none */
	char *disposition;  /* "inline", "attachment" or NULL */
	uint64_t size;      /* decoded size in bytes */
	bool attachment;    /* true if it is an attachment (named or
			       disposition attachment, non-text) */
};

#define MX_PARSED_BROKEN 0x1u   /* structure could not be parsed */
#define MX_PARSED_CHARSET 0x2u  /* an unknown charset was met */
#define MX_PARSED_CALENDAR 0x4u /* has a text/calendar part */
#define MX_PARSED_ADDRS_TRUNCATED 0x8u /* an address list was cut at
					  MX_MAX_ADDRS entries */
#define MX_PARSED_BULK 0x10u   /* says it is bulk or automatic mail:
				  mx_mime_bulk() of its header */

struct mx_parsed {
	char *message_id;      /* without <>, NULL if none */
	char *in_reply_to;     /* first msg-id, without <>, NULL if none */
	char **references;     /* msg-ids without <> */
	size_t nreferences;
	char *subject;         /* decoded, NULL if none */
	int64_t date;          /* Date: as Unix time, -1 if none/bad */
	struct mx_addr_list from, sender, reply_to, to, cc, bcc;
	char *snippet;         /* first ~200 chars of text, whitespace
				  collapsed, NULL if no text */
	struct mx_part *parts; /* leaf parts in document order */
	size_t nparts;
	unsigned flags;        /* MX_PARSED_* */
	char *error;           /* why MX_PARSED_BROKEN, else NULL */
};

/* Parses RAW (LEN bytes, need not be NUL-terminated). */
int mx_mime_parse(const char *raw, size_t len, struct mx_parsed *out,
		  struct mx_error *err);
void mx_parsed_free(struct mx_parsed *p);

/*
 * Decoded bodies for display: the first text/plain part and the first
 * text/html part, converted to UTF-8.  Either may be set to NULL.
 * Returns MX_OK or MX_ERR_NOMEM.
 */
int mx_mime_bodies(const char *raw, size_t len, char **text_r, char **html_r,
		   struct mx_error *err);

/*
 * The decoded bytes (base64 or quoted-printable undone, no charset
 * conversion) of leaf part PART_ID ("1", "2.1", as mx_parsed's part_id)
 * of RAW, malloc()ed in *DATA_R (NUL-terminated; *LEN_R bytes without
 * it).  MX_ERR_NOTFOUND when RAW has no such part; MX_ERR_NOMEM.
 */
int mx_mime_part(const char *raw, size_t len, const char *part_id,
		 char **data_r, size_t *len_r, struct mx_error *err);

/*
 * Stable identity of a message from its header block (or the whole
 * message: only the header is read): SHA-256 over the unfolded,
 * whitespace-trimmed values of Message-ID, Date, From, Subject, To, in that
 * order, each preceded by its name and followed by a NUL.  The same bytes
 * given as a full message or as the output of
 * BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE FROM SUBJECT TO)] give the
 * same identity.
 */
void mx_mime_identity(const char *raw, size_t len, uint8_t out[32]);

/*
 * Decodes an unstructured header value: unfolds, decodes RFC 2047 encoded
 * words (adjacent encoded words joined), converts to UTF-8; raw 8-bit text
 * is taken as UTF-8 when valid, else as windows-1252.  Returns a malloc()ed
 * string or NULL on ENOMEM.
 */
char *mx_mime_decode_header(const char *value, size_t len);

/*
 * Converts LEN bytes in CHARSET to UTF-8 (NUL-terminated, *OUT_R malloc()ed).
 * Supports at least UTF-8, US-ASCII, ISO-8859-*, windows-125x, KOI8-R/U,
 * ISO-2022-JP, Shift_JIS, EUC-JP, GB2312/GBK/GB18030, Big5, EUC-KR, UTF-7,
 * UTF-16 (with aliases such as ks_c_5601-1987, latin1, utf8).
 * Returns MX_OK, MX_ERR_CHARSET (unknown charset: *OUT_R is still set, with
 * the input taken as UTF-8/windows-1252) or MX_ERR_NOMEM.
 */
int mx_charset_to_utf8(const char *charset, const char *in, size_t len,
		       char **out_r);

/*
 * Normalizes an address: trims, removes surrounding <>, lower-cases the
 * domain (ASCII and UTF-8), decodes an "xn--" IDN label to UTF-8 for
 * readability.  The local part is kept as is.  Returns malloc()ed string or
 * NULL on ENOMEM or if ADDR has no '@'.
 */
char *mx_addr_normalize(const char *addr);

/*
 * Subject normalized for thread matching: decoded, leading "Re:", "Fwd:",
 * "Fw:", "AW:", "SV:", "[list tag]" prefixes removed repeatedly,
 * whitespace collapsed, lower-cased.  *IS_REPLY_R set when a reply/forward
 * prefix was removed.  malloc()ed; NULL on ENOMEM.
 */
char *mx_subject_normalize(const char *subject, bool *is_reply_r);

/*
 * Whether a message's header says it is bulk or automatic mail (the CRM's
 * rule 11, doc/crm.md): List-Id or List-Unsubscribe present (RFC 2919,
 * 2369), Precedence bulk, list or junk, Auto-Submitted other than "no"
 * (RFC 3834).  Values as in the header (unfolded or not), NULL when
 * absent.  mx_mime_parse() sets MX_PARSED_BULK from it.
 */
bool mx_mime_bulk(const char *list_id, const char *list_unsub,
		  const char *precedence, const char *auto_submitted);

/* ---- helpers other modules use (charset.c, addr.c) ---- */

/*
 * Decodes one UTF-8 sequence at S (LEN bytes available): returns its length
 * and sets *CP, or 0 for an invalid, overlong, surrogate or truncated one.
 */
size_t mx_utf8_decode1(const unsigned char *s, size_t len, uint32_t *cp);
bool mx_utf8_valid(const char *s, size_t len);
int mx_utf8_put(struct mx_buf *b, uint32_t cp);
/* Copies S, replacing invalid sequences and NUL bytes by U+FFFD. */
int mx_utf8_sanitize_append(struct mx_buf *b, const char *s, size_t len);

/*
 * Parses an address-list header value (raw, possibly folded, possibly
 * broken) into OUT.  Never fails on bad input; -1 only on ENOMEM.
 */
int mx_addr_list_parse(const char *value, size_t len,
		       struct mx_addr_list *out, bool *unknown_r);
void mx_addr_list_free(struct mx_addr_list *l);

#endif
