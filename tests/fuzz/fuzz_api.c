/*
 * libFuzzer target for the HTTP API's request decoders (src/api/): the
 * input is a request line's target, "PATH?QUERY".  It goes through what
 * a request goes through before a handler runs: the query decoder
 * (percent escapes, UTF-8, the pair limit), the router (path matching,
 * path parameters into a fixed buffer, a non-id in an id position) and
 * the id check of the route;
 * then the value decoders the handlers use on parameters: RFC 3339
 * times, message cursors, decimal numbers.  The invariants: decoded
 * names and values are valid UTF-8 without NUL; a path parameter is one
 * non-empty segment; an accepted id prints back to the same text.
 * (The routes of this slice take no request body; JSON bodies come with
 * the first route that has one.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "sync/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void values(const char *v)
{
	struct mx_msg_cursor c;
	int64_t t;
	uint64_t n;

	(void)mx_api_parse_time(v, &t);
	if (mx_msg_cursor_parse(v, &c)) {
		char back[48];
		struct mx_msg_cursor c2;

		mx_msg_cursor_str(&c, back);
		if (!mx_msg_cursor_parse(back, &c2) || c2.date != c.date ||
		    c2.id != c.id)
			abort();
	}
	(void)mx_parse_u64(v, 0, UINT64_MAX, &n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *k[API_MAX_QUERY], *v[API_MAX_QUERY], *bad = NULL;
	char *in = malloc(size + 1), *q, allow[64];
	struct api_req *r = calloc(1, sizeof(*r));
	const struct api_route *rt;
	unsigned status = 0;
	size_t n = 0;

	if (in == NULL || r == NULL)
		abort();
	memcpy(in, data, size);
	in[size] = '\0';
	q = memchr(in, '?', size);
	if (q) {
		*q++ = '\0';
		if (mx_api_query_decode(q, size - (size_t)(q - in), k, v,
					API_MAX_QUERY, &n, &bad)) {
			for (size_t i = 0; i < n; i++) {
				if (!mx_utf8_valid_str(k[i]) ||
				    !mx_utf8_valid_str(v[i]))
					abort();
				values(v[i]);
				free(k[i]);
				free(v[i]);
			}
		} else if (n != 0 || (bad && !mx_utf8_valid_str(bad))) {
			abort();
		}
		free(bad);
	}
	/* The path as MHD hands it over: up to the first NUL. */
	rt = mx_api_route_find("GET", in, r, &status, allow, sizeof(allow));
	if (rt == NULL && status != 404 && status != 405)
		abort();
	if (rt == NULL && status == 404) {
		const char *seg;
		size_t nseg;

		/* A bad id is one non-empty segment of the path. */
		if (mx_api_bad_id_route(in, &seg, &nseg) &&
		    (nseg == 0 || seg < in || seg + nseg > in + strlen(in) ||
		     memchr(seg, '/', nseg)))
			abort();
	}
	if (rt && rt->idkind != API_ID_NONE) {
		uint64_t id;

		if (r->pv[0] == NULL || r->pv[0][0] == '\0' ||
		    strchr(r->pv[0], '/'))
			abort();
		/* A contact id is text: no number to spell back. */
		if (rt->idkind != API_ID_TEXT &&
		    mx_api_id_parse(rt->idkind, r->pv[0], &id)) {
			char back[24];

			if (rt->idkind == API_ID_HEX16)
				mx_msg_id_str(id, back);
			else
				snprintf(back, sizeof(back), "%llu",
					 (unsigned long long)id);
			if (strcmp(back, r->pv[0]) != 0)
				abort();
		}
	}
	free(r);
	free(in);
	return 0;
}
