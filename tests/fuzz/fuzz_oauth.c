/*
 * libFuzzer target for what an OAuth2 server or a browser sends to
 * src/lib/auth/oauth.c: the token endpoint's answer (RFC 6749 5.1/5.2,
 * RFC 8628 3.5), received through the same libcurl write callback
 * (mx_http_sink_write, with the same size cap), and the query string of
 * the PKCE loopback redirect.  Those parsers are static, so the source
 * file is included here (the target defines its symbols instead of the
 * library's copy).  The first byte chooses the HTTP status and the size
 * of the pieces the body arrives in:
 *   bits 0-2  status: 200 400 401 403 408 429 500 503
 *   bits 3-5  pieces of at most 1 << (n + 3) bytes (7: whole)
 * then comes the body; the same bytes are also parsed as a redirect's
 * request target ("code=...&state=...").
 */
#include "auth/oauth.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 400, 401, 403, 408, 429, 500, 503};
	static const char *const params[] = {"code", "state", "error",
					     "error_description"};
	struct http_resp r = {0};
	struct mx_oauth_token tok = {0};
	struct mx_error err = {0};
	char ecode[64], *buf;
	size_t piece, off;
	unsigned opt;
	int rc;

	if (size < 1)
		return 0;
	opt = data[0];
	size--;
	/* libcurl hands over writable bytes; the redirect's query arrives
	 * NUL-terminated (read_request()). */
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size);
	buf[size] = '\0';
	r.status = statuses[opt & 7];
	r.sink.max = MAX_RESPONSE;
	piece = ((opt >> 3) & 7) == 7 ? size : (size_t)1 << (((opt >> 3) & 7) + 3);
	for (off = 0; off < size; off += piece) {
		size_t n = size - off < piece ? size - off : piece;

		if (mx_http_sink_write(buf + off, 1, n, &r.sink) != n)
			break;
	}
	if (r.sink.too_big) {
		if (size <= MAX_RESPONSE || r.sink.body.len > MAX_RESPONSE)
			abort();
	} else {
		rc = token_parse("token endpoint", &r, &tok, ecode,
				 sizeof(ecode), &err);
		if (rc == MX_OK) {
			if (r.status != 200 || tok.access_token == NULL ||
			    tok.access_token[0] == '\0')
				abort();
			mx_oauth_token_free(&tok);
		} else if (err.detail[0] == '\0' ||
			   strlen(ecode) >= sizeof(ecode)) {
			abort();
		}
	}
	mx_buf_free(&r.sink.body);
	for (size_t i = 0; i < MX_ARRAY_SIZE(params); i++)
		free(query_get(buf, params[i]));
	free(buf);
	return 0;
}
