/* libcurl initialization and capped body capture: see http.h. */
#include <pthread.h>
#include <string.h>
#include <strings.h>

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

int mx_http_curl_error(int cc, const char *ebuf, const char *what,
		       struct mx_error *err)
{
	const char *msg = ebuf && ebuf[0] ? ebuf
					 : curl_easy_strerror((CURLcode)cc);
	enum mx_err code;

	switch ((CURLcode)cc) {
	case CURLE_OPERATION_TIMEDOUT:
		code = MX_ERR_TIMEOUT;
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		code = MX_ERR_TLS_VERIFY;
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
		code = MX_ERR_TLS;
		break;
	case CURLE_OUT_OF_MEMORY:
		code = MX_ERR_NOMEM;
		break;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		code = MX_ERR_CONFIG;
		break;
	default:
		/* Refused, reset, DNS, empty reply, ... */
		code = MX_ERR_NET;
		break;
	}
	return mx_error_set(err, code, "%s: %.300s", what, msg);
}

bool mx_url_origin(const char *u, char *out, size_t cap, const char **rest_r)
{
	const char *p, *auth;
	size_t n, o;

	for (p = u; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\')
			return false;
	if (strncasecmp(u, "https://", 8) == 0)
		auth = u + 8;
	else if (strncasecmp(u, "http://", 7) == 0)
		auth = u + 7;
	else
		return false;
	n = strcspn(auth, "/?#");
	if (n == 0 || memchr(auth, '@', n) != NULL)
		return false;
	o = (size_t)(auth - u) + n;
	if (o >= cap)
		return false;
	for (size_t i = 0; i < o; i++)
		out[i] = (char)((u[i] >= 'A' && u[i] <= 'Z') ? u[i] + 32 : u[i]);
	out[o] = '\0';
	if (rest_r)
		*rest_r = u + o;
	return true;
}
