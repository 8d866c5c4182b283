/*
 * libFuzzer target for the MIME module: every entry point a message from
 * the network reaches, plus the mailbox-name decoder, on the same bytes.
 * All results are freed so that leaks show up as well.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "util/mutf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *raw = (const char *)data;
	struct mx_parsed p;
	char *text = NULL, *html = NULL, *s, *z;
	uint8_t id[32];
	bool reply;

	if (mx_mime_parse(raw, size, &p, NULL) == MX_OK) {
		s = mx_subject_normalize(p.subject, &reply);
		free(s);
		mx_parsed_free(&p);
	}
	mx_mime_identity(raw, size, id);
	if (mx_mime_bodies(raw, size, &text, &html, NULL) == MX_OK) {
		free(text);
		free(html);
	}
	s = mx_mime_decode_header(raw, size);
	free(s);
	/* The string functions need a NUL-terminated copy. */
	z = malloc(size + 1);
	if (z == NULL)
		return 0;
	memcpy(z, data, size);
	z[size] = '\0';
	free(mx_subject_normalize(z, &reply));
	s = mx_mutf7_decode(z);
	if (s != NULL) {
		/* A name that decodes must encode back to a valid name. */
		char *w = mx_mutf7_encode(s);

		if (w != NULL) {
			char *back = mx_mutf7_decode(w);

			if (back == NULL || strcmp(back, s) != 0)
				abort();
			free(back);
		}
		free(w);
		free(s);
	}
	free(mx_addr_normalize(z));
	free(z);
	return 0;
}
