/*
 * libcurl pieces shared by the modules that speak HTTP (the OAuth2 token
 * endpoint, autoconfig discovery, webhooks): the process-wide libcurl
 * initialization and a response body captured in memory up to a cap.
 */
#ifndef MX_HTTP_H
#define MX_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/util.h"

/*
 * curl_global_init(CURL_GLOBAL_DEFAULT), once per process and thread-safe;
 * later calls return the outcome of the first.  Call it before
 * curl_easy_init().  Returns MX_OK, or MX_ERR_CONFIG with "libcurl init:
 * <libcurl's reason>" in ERR (may be NULL).
 */
int mx_http_global_init(struct mx_error *err);

/*
 * A response body kept in memory, at most MAX bytes.  Zero it, set MAX,
 * and give libcurl CURLOPT_WRITEFUNCTION mx_http_sink_write with
 * CURLOPT_WRITEDATA pointing at it.  BODY is owned by the caller:
 * mx_buf_free() it (after wiping it if it may hold a secret) in every case.
 */
struct mx_http_sink {
	struct mx_buf body; /* owned; NUL-terminated when not empty */
	size_t max;
	bool too_big; /* the server sent more than MAX bytes */
};

/*
 * libcurl write callback for the struct mx_http_sink at UD: appends the
 * SIZE * NMEMB bytes at P and returns their count.  Returns 0, which makes
 * libcurl abort the transfer with CURLE_WRITE_ERROR, when the body would
 * grow past MAX (TOO_BIG is then set; BODY keeps what came before) or when
 * memory runs out (TOO_BIG stays false).
 */
size_t mx_http_sink_write(char *p, size_t size, size_t nmemb, void *ud);

/*
 * Sets ERR for the libcurl failure CC (a CURLcode) of the request WHAT:
 * "WHAT: <EBUF, the CURLOPT_ERRORBUFFER text, or libcurl's text for CC>",
 * with MX_ERR_TIMEOUT, MX_ERR_TLS_VERIFY (certificate not trusted),
 * MX_ERR_TLS, MX_ERR_NOMEM, MX_ERR_CONFIG (bad URL or scheme) or
 * MX_ERR_NET (refused, reset, DNS, ...).  Returns the code.
 */
int mx_http_curl_error(int cc, const char *ebuf, const char *what,
		       struct mx_error *err);

/*
 * The origin of absolute http(s) URL U ("https://host:port", scheme and
 * host lower-cased) in OUT (CAP bytes); *REST_R (may be NULL) points at
 * what follows it in U (path, query, fragment).  False when U is not
 * such a URL, does not fit, or holds what a browser might read
 * differently from us: user info, a backslash, a space or a control
 * character.  For redirect targets (the HTTP API's OAuth return_to) and
 * the settings that allow them.
 */
bool mx_url_origin(const char *u, char *out, size_t cap, const char **rest_r);

#endif
