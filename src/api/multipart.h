/*
 * multipart/form-data (RFC 7578 on RFC 2046 5.1) for POST /v1/send: a
 * strict parser of a whole request body in memory.  What it accepts:
 *
 *  - Content-Type "multipart/form-data; boundary=B" (B 1..70 characters
 *    of RFC 2046's bchars, quoted or not; no other parameter);
 *  - the body starts with "--B" (no preamble) and ends with "--B--",
 *    optionally followed by CRLF (no epilogue); transport padding (spaces
 *    and tabs) is allowed after a boundary;
 *  - every part has CRLF-terminated header lines "Name: value" (no
 *    folding, 8 KB at most), exactly one Content-Disposition "form-data"
 *    with a non-empty name and maybe a filename (quoted strings may
 *    escape '"' and '\' with '\'; no filename*, RFC 7578 4.2), at most
 *    one Content-Type, and Content-Transfer-Encoding only as 7bit, 8bit
 *    or binary; no other header;
 *  - names, file names and content types are UTF-8 without control
 *    characters.
 * Anything else is refused with a message naming the part and what is
 * wrong.  The part contents are not looked at (they may be binary).
 */
#ifndef MX_API_MULTIPART_H
#define MX_API_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

struct mx_api_part {
	char *name;          /* owned */
	char *filename;      /* owned; NULL when the part has none */
	char *content_type;  /* owned; NULL when absent */
	const char *data;    /* foreign: points into the body */
	size_t len;
};

/* The boundary of the Content-Type CTYPE into BUF (71 bytes), or false
 * when CTYPE is not multipart/form-data with one good boundary. */
bool mx_api_multipart_boundary(const char *ctype, char buf[71]);

/*
 * Parses BODY (LEN bytes) with boundary BOUNDARY into *PARTS_R (*N_R
 * parts, at most MAX_PARTS; free with mx_api_parts_free()).  Returns
 * true, or false with a message in ERRBUF (ERRCAP bytes) and nothing
 * allocated.
 */
bool mx_api_multipart_parse(const char *boundary, const char *body,
			    size_t len, size_t max_parts,
			    struct mx_api_part **parts_r, size_t *n_r,
			    char *errbuf, size_t errcap);

void mx_api_parts_free(struct mx_api_part *parts, size_t n);

#endif
