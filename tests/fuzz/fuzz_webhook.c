/*
 * libFuzzer target for what a webhook endpoint sends back to mxsyncd
 * (src/lib/events/webhook.c): the response's header lines (Retry-After,
 * as seconds or an HTTP date, and status lines after 100 Continue) and
 * its body, through the libcurl callbacks the delivery thread installs,
 * plus the event record the thread decodes before posting it.  Those
 * functions are static, so the source file is included here.  Input: the
 * response headers, one per line, then an empty line, then the body; the
 * body is also decoded as an event record.
 */
#include "events/webhook.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char t_new[] = "message.new", t_state[] = "account.state";
	static char *types[] = {t_new, t_state};
	struct mx_webhook wh;
	char *buf, *p, *end;
	json_t *ev;

	/* libcurl hands over writable copies; so do we. */
	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	memset(&wh, 0, sizeof(wh));
	wh.retry_after = -1;
	p = buf;
	end = buf + size;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);

		if (on_header(p, 1, len, &wh) != len)
			abort();
		if (wh.retry_after < -1)
			abort();
		p += len;
		if (len <= 2 && (len == 1 || p[-2] == '\r'))
			break; /* the empty line: the body follows */
	}
	/* The event record: the same bytes as the body, decoded whole. */
	ev = json_loadb(p, (size_t)(end - p), 0, NULL);
	if (json_is_object(ev)) {
		wh.types = types;
		wh.ntypes = MX_ARRAY_SIZE(types);
		(void)type_wanted(&wh, json_string_value(json_object_get(ev,
								 "type")));
		wh.types = NULL;
	}
	json_decref(ev);
	/* The body in growing pieces: only its start is kept. */
	for (size_t piece = 1; p < end; piece *= 2) {
		size_t len = (size_t)(end - p) < piece ? (size_t)(end - p)
						       : piece;

		if (on_body(p, 1, len, &wh) != len)
			abort();
		if (wh.resp_len >= sizeof(wh.resp) ||
		    strlen(wh.resp) > wh.resp_len)
			abort();
		p += len;
	}
	free(buf);
	return 0;
}
