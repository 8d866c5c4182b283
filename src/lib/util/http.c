/* libcurl initialization and capped body capture: see http.h. */
#include <pthread.h>

#include <curl/curl.h>

#include "util/http.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int mx_http_global_init(struct mx_error *err)
{
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK)
		return mx_error_set(err, MX_ERR_CONFIG, "libcurl init: %s",
				    curl_easy_strerror(curl_init_rc));
	return MX_OK;
}

size_t mx_http_sink_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct mx_http_sink *s = ud;
	size_t n = size * nmemb;

	if (n > s->max - s->body.len) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (mx_buf_append(&s->body, p, n) < 0)
		return 0;
	return n;
}
