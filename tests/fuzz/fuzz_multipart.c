/*
 * libFuzzer target for POST /v1/send's multipart/form-data parser
 * (src/api/multipart.c).  Input: the request's Content-Type value, a line
 * feed, then the body.  The invariants: an accepted body has 1..MAX
 * parts, each with a UTF-8 name without controls, its content inside the
 * body and followed there by CRLF "--" boundary; a refused one leaves
 * nothing allocated and says why.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"
#include "util/util.h"

#define MAX 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size < 200 ? size : 200);
	char ctype[201], b[71], msg[256];
	struct mx_api_part *v = NULL;
	size_t n = 0, blen, clen;
	char *body;

	if (nl == NULL)
		return 0;
	clen = (size_t)(nl - data);
	memcpy(ctype, data, clen);
	ctype[clen] = '\0';
	if (memchr(ctype, '\0', clen) || !mx_api_multipart_boundary(ctype, b))
		return 0;
	blen = strlen(b);
	if (blen == 0 || blen > 70)
		abort();
	/* An exact-size copy, so reading past the end is caught. */
	size -= clen + 1;
	body = malloc(size ? size : 1);
	if (body == NULL)
		abort();
	memcpy(body, nl + 1, size);
	msg[0] = '\0';
	if (mx_api_multipart_parse(b, body, size, MAX, &v, &n, msg,
				   sizeof(msg))) {
		if (n == 0 || n > MAX)
			abort();
		for (size_t i = 0; i < n; i++) {
			const char *after = v[i].data + v[i].len;

			if (!v[i].name[0] || !mx_utf8_valid_str(v[i].name) ||
			    (v[i].filename && !mx_utf8_valid_str(v[i].filename)))
				abort();
			if (v[i].data < body || after + 4 + blen > body + size ||
			    memcmp(after, "\r\n--", 4) != 0 ||
			    memcmp(after + 4, b, blen) != 0)
				abort();
		}
		mx_api_parts_free(v, n);
	} else if (v != NULL || n != 0 || msg[0] == '\0') {
		abort();
	}
	free(body);
	return 0;
}
