/*
 * The HTTP server: libmicrohttpd's lifecycle, the limits of [api] and the
 * dispatch of a request to its route (doc/internals/api.md).
 *
 * Threads: MHD's internal polling thread accepts connections and each
 * connection gets a thread of its own (MHD_USE_THREAD_PER_CONNECTION), so
 * a long-poll or an event stream may wait there without holding up other
 * requests, the daemon's epoll loop or its sync workers.  Handlers only
 * open LMDB read transactions, which never block the writer.
 */
#include <errno.h>
#include <stdarg.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"
#include "secrets/secrets.h"

/* ---- listening ---- */

static int listen_unix(struct mx_api *api, const char *path,
		       struct mx_error *err)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct stat sb;
	int fd;

	if (*path != '/' || strlen(path) >= sizeof(sun.sun_path))
		return mx_error_set(err, MX_ERR_CONFIG, "[api] listen: unix:PATH "
				    "needs an absolute path of at most %zu bytes",
				    sizeof(sun.sun_path) - 1);
	/* A socket left by an earlier run is replaced; anything else at
	 * PATH is not ours to delete. */
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode))
			return mx_error_set(err, MX_ERR_CONFIG, "[api] listen: "
					    "%s exists and is not a socket", path);
		unlink(path);
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    listen(fd, 128) != 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		return mx_error_set(err, MX_ERR_IO, "[api] listen on unix:%s: %s",
				    path, strerror(e));
	}
	api->unix_path = strdup(path);
	api->lfd = fd;
	snprintf(api->addr, sizeof(api->addr), "unix:%s", path);
	return MX_OK;
}

static int listen_tcp(struct mx_api *api, const char *spec,
		      struct mx_error *err)
{
	struct addrinfo hints = {0}, *ai = NULL;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[128], serv[16], hbuf[NI_MAXHOST], sbuf[NI_MAXSERV];
	const char *colon;
	size_t hl;
	uint64_t port;
	int fd = -1, one = 1, rc;

	/* HOST:PORT or [V6]:PORT */
	colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec ||
	    mx_parse_u64(colon + 1, 0, 65535, &port) < 0)
		return mx_error_set(err, MX_ERR_CONFIG, "[api] listen '%s': "
				    "HOST:PORT, [IPV6]:PORT or unix:/path", spec);
	hl = (size_t)(colon - spec);
	if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		return mx_error_set(err, MX_ERR_CONFIG, "[api] listen '%s': bad "
				    "host", spec);
	memcpy(host, spec, hl);
	host[hl] = '\0';
	snprintf(serv, sizeof(serv), "%llu", (unsigned long long)port);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host, serv, &hints, &ai);
	if (rc != 0)
		return mx_error_set(err, MX_ERR_CONFIG, "[api] listen: host %s: %s",
				    host, gai_strerror(rc));
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
	    listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return mx_error_set(err, MX_ERR_IO, "[api] listen on %s:%s: %s",
				    host, serv, strerror(e));
	}
	freeaddrinfo(ai);
	if (getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), sbuf,
			sizeof(sbuf), NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(hbuf, sizeof(hbuf), "%s", host);
	snprintf(api->addr, sizeof(api->addr),
		 ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", hbuf, sbuf);
	api->lfd = fd;
	return MX_OK;
}

/* ---- one request ---- */

/* MHD calls this first with the raw URI: the request's context is made
 * here, and the query is decoded by our own strict decoder. */
static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
	struct api_req *r = calloc(1, sizeof(*r));
	const char *q;

	if (r == NULL)
		return NULL;
	r->api = cls;
	q = uri ? strchr(uri, '?') : NULL;
	if (q && !mx_api_query_decode(q + 1, strlen(q + 1), r->qk, r->qv,
				      API_MAX_QUERY, &r->nq, &r->q_bad_name))
		r->q_bad = true;
	return r;
}

static void req_free(struct api_req *r)
{
	for (size_t i = 0; i < r->nq; i++) {
		free(r->qk[i]);
		free(r->qv[i]);
	}
	free(r->q_bad_name);
	mx_buf_free(&r->body);
	if (r->resp)
		MHD_destroy_response(r->resp);
	mx_apitoken_free(&r->tok);
	free(r);
}

/* ---- slow clients ----
 *
 * MHD_OPTION_CONNECTION_TIMEOUT only cuts a connection that sends nothing
 * for that long: every byte restarts it, so a client that sends a header
 * byte a second would hold its connection (and, here, a thread) for ever.
 * So each connection also gets a deadline: from its start, and again after
 * each answered request, the next request must arrive whole (headers and
 * body) within [api] timeout.  While a handler runs (a long-poll, a
 * stream) there is none.  A watchdog thread shuts down the socket of a
 * connection past its deadline; MHD then closes it as a dropped client. */

static struct api_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

static void conn_phase(struct mx_api *api, struct MHD_Connection *c,
		       bool handling)
{
	struct api_conn *k = conn_of(c);

	if (k == NULL)
		return;
	pthread_mutex_lock(&api->conn_mu);
	k->handling = handling;
	k->start_ms = mx_now_ms();
	pthread_mutex_unlock(&api->conn_mu);
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **sctx,
			enum MHD_ConnectionNotificationCode toe)
{
	struct mx_api *api = cls;
	struct api_conn *k = *sctx;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
			c, MHD_CONNECTION_INFO_CONNECTION_FD);

		k = calloc(1, sizeof(*k));
		if (k == NULL || ci == NULL) {
			free(k); /* no deadline: the idle timeout still holds */
			return;
		}
		k->fd = ci->connect_fd;
		k->start_ms = mx_now_ms();
		pthread_mutex_lock(&api->conn_mu);
		k->next = api->conns;
		if (api->conns)
			api->conns->prev = k;
		api->conns = k;
		pthread_mutex_unlock(&api->conn_mu);
		*sctx = k;
		return;
	}
	if (k == NULL)
		return;
	pthread_mutex_lock(&api->conn_mu);
	if (k->prev)
		k->prev->next = k->next;
	else
		api->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	pthread_mutex_unlock(&api->conn_mu);
	free(k);
	*sctx = NULL;
}

static void *watchdog_main(void *arg)
{
	struct mx_api *api = arg;
	uint64_t limit = (uint64_t)api->cfg.timeout_s * 1000;

	pthread_mutex_lock(&api->conn_mu);
	while (!atomic_load(&api->stopping)) {
		struct timespec ts;
		uint64_t now = mx_now_ms();

		for (struct api_conn *k = api->conns; k; k = k->next) {
			if (k->handling || k->cut || now - k->start_ms <= limit)
				continue;
			k->cut = true;
			mx_debug("api: a client sent no whole request within "
				 "%u s: connection closed", api->cfg.timeout_s);
			shutdown(k->fd, SHUT_RDWR);
		}
		mx_deadline_mono(250, &ts);
		pthread_cond_timedwait(&api->conn_cv, &api->conn_mu, &ts);
	}
	pthread_mutex_unlock(&api->conn_mu);
	return NULL;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	/* The next request on this connection gets a deadline again. */
	conn_phase(cls, c, false);
	if (*con_cls)
		req_free(*con_cls);
	*con_cls = NULL;
}

static enum MHD_Result queue(struct api_req *r)
{
	enum MHD_Result ret;

	if (r->resp == NULL)
		return MHD_NO; /* out of memory: drop the connection */
	ret = MHD_queue_response(r->conn, r->status, r->resp);
	MHD_destroy_response(r->resp);
	r->resp = NULL;
	return ret;
}

/* 413, and the connection is closed after it (the rest of the body is
 * never read). */
static enum MHD_Result too_large(struct api_req *r)
{
	uint64_t max = r->api->cfg.max_body;

	r->too_large = true;
	api_error(r, 413, "payload_too_large",
		  json_pack("{s:I}", "max_body", (json_int_t)max),
		  "The request body is larger than %llu bytes.",
		  (unsigned long long)max);
	api_header(r, "Connection", "close");
	return queue(r);
}

/* 400 invalid_id for the N bytes at SEG (shown in details when they are
 * printable UTF-8 of reasonable length). */
static void bad_id(struct api_req *r, const char *seg, size_t n,
		   enum api_idkind kind)
{
	char *id = mx_strndup(seg, n > 64 ? 64 : n);

	api_error(r, 400, "invalid_id",
		  json_pack("{s:s}", "id", id && mx_utf8_valid_str(id) &&
				       mx_term_safe(id) ? id : "(unprintable)"),
		  kind == API_ID_TEXT
			  ? "Not a contact id: 1 to 128 bytes of printable "
			    "UTF-8 are expected."
		  : kind == API_ID_DEC || kind == API_ID_DEC64
			  ? "Not an id: a decimal number is expected."
			  : "Not a message id: 16 lower-case hexadecimal "
			    "digits are expected.");
	free(id);
}

static void dispatch(struct api_req *r)
{
	char allow[64];
	unsigned status = 404;
	const struct api_route *rt;

	rt = mx_api_route_find(r->method, r->url, r, &status, allow,
			       sizeof(allow));
	if (rt == NULL && status == 404) {
		const struct api_route *bad;
		const char *seg;
		size_t n;

		/* An id position holding something else (dots, slashes
		 * decoded from %2F) is a bad id, not a missing resource. */
		bad = mx_api_bad_id_route(r->url, &seg, &n);
		if (bad) {
			bad_id(r, seg, n, bad->idkind);
			return;
		}
	}
	if (rt == NULL) {
		if (status == 405) {
			api_error(r, 405, "method_not_allowed", NULL,
				  "%s is not allowed on this resource.",
				  r->method);
			api_header(r, "Allow", allow);
		} else {
			api_error(r, 404, "not_found", NULL,
				  "No such resource.");
		}
		return;
	}
	r->route = rt;
	/* Stopping: nothing new starts (health says so itself). */
	if (atomic_load(&r->api->stopping) && rt->fn != api_health) {
		api_error(r, 503, "unavailable", NULL,
			  "mxsyncd is stopping; retry in a few seconds.");
		api_header(r, "Retry-After", "5");
		return;
	}
	/* An id is checked before anything looks for it. */
	if (rt->idkind != API_ID_NONE &&
	    !mx_api_id_parse(rt->idkind, r->pv[0], &r->id)) {
		bad_id(r, r->pv[0], strlen(r->pv[0]), rt->idkind);
		return;
	}
	if (rt->auth && !api_authenticate(r))
		return;
	if ((rt->flags & API_R_ADMIN) && !api_require_admin(r))
		return;
	if (!api_query_check(r, rt->params))
		return;
	if (r->body_len && !(rt->flags & API_R_BODY)) {
		api_error(r, 400, "bad_request", NULL,
			  "%s %s takes no request body.", rt->method, rt->path);
		return;
	}
	rt->fn(r);
	if (r->resp == NULL && r->status == 0)
		api_error(r, 500, "internal", NULL, "No answer.");
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn,
				 const char *url, const char *method,
				 const char *version, const char *upload_data,
				 size_t *upload_data_size, void **con_cls)
{
	struct mx_api *api = cls;
	struct api_req *r = *con_cls;

	if (r == NULL)
		return MHD_NO;
	r->conn = conn;
	r->url = url;
	r->method = method;
	if (!r->started) {
		const char *cl = MHD_lookup_connection_value(
			conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		const struct api_route *rt;
		struct api_req probe = {0};
		unsigned st;
		uint64_t n;

		r->started = true;
		/* Refused before a byte of it is read. */
		if (cl && (mx_parse_u64(cl, 0, UINT64_MAX, &n) < 0 ||
			   n > api->cfg.max_body))
			return too_large(r);
		/* Only a route that reads a body gets it kept. */
		rt = mx_api_route_find(method, url, &probe, &st, NULL, 0);
		r->keep_body = rt && (rt->flags & API_R_BODY);
		if (r->keep_body && cl && n &&
		    mx_buf_reserve(&r->body, (size_t)n + 1) != 0)
			return MHD_NO;
		return MHD_YES;
	}
	if (*upload_data_size) {
		/* Counted against the limit (chunked uploads have no
		 * Content-Length); kept for a route that reads it, else
		 * dropped (dispatch() refuses it). */
		r->body_len += *upload_data_size;
		if (r->body_len > api->cfg.max_body && !r->too_large) {
			*upload_data_size = 0;
			return too_large(r);
		}
		if (r->keep_body && !r->too_large &&
		    mx_buf_append(&r->body, upload_data, *upload_data_size) != 0)
			return MHD_NO; /* out of memory: drop the connection */
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->too_large)
		return MHD_YES;
	conn_phase(api, conn, true);
	clock_gettime(CLOCK_MONOTONIC, &r->t0);
	dispatch(r);
	/* Counted once its answer is made (before it is sent: a client
	 * that scrapes right after an answer sees it counted). */
	if (r->route && r->resp) {
		struct timespec t1;

		clock_gettime(CLOCK_MONOTONIC, &t1);
		mx_api_metrics_record(api, r->route, r->status,
				      (double)(t1.tv_sec - r->t0.tv_sec) +
					      (t1.tv_nsec - r->t0.tv_nsec) / 1e9);
	}
	return queue(r);
}

/* ---- lifecycle ---- */

/* MHD's own messages (a client that hung up mid-request, ...) are about
 * clients, not the daemon: debug level. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	mx_log(MX_LOG_DEBUG, "api: %s", msg);
}

static int read_pem(const char *what, const char *path, char **out,
		    struct mx_error *err)
{
	size_t len;

	if (mx_read_file(path, 1 << 20, out, &len, err) != MX_OK) {
		mx_error_prefix(err, "[api] %s", what);
		return MX_ERR_CONFIG;
	}
	return MX_OK;
}

/* Each connection is a descriptor: raise the soft limit toward the hard
 * one so that max_connections can be reached (systemd's default soft
 * limit is 1024), and say so when it cannot. */
static void fd_limit(unsigned max_connections)
{
	rlim_t want = (rlim_t)max_connections + 256;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
		return;
	rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		mx_warn("api: open file limit %llu is below max_connections "
			"+ 256 (%llu): connections beyond it are refused",
			(unsigned long long)rl.rlim_cur,
			(unsigned long long)want);
}

int mx_api_start(const struct mx_api_cfg *cfg, struct mx_store *st,
		 int workers, const struct mx_api_hooks *hooks,
		 struct mx_api **api_r, struct mx_error *err)
{
	struct mx_api *api;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
			 MHD_USE_ERROR_LOG;
	int rc;

	mx_error_clear(err);
	*api_r = NULL;
	api = calloc(1, sizeof(*api));
	if (api == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	api->st = st;
	api->workers = workers;
	api->lfd = -1;
	api->cfg = *cfg;
	if (hooks)
		api->hooks = *hooks;
	api->cfg.listen = mx_strdup(cfg->listen);
	api->cfg.tls_cert = mx_strdup(cfg->tls_cert);
	api->cfg.tls_key = mx_strdup(cfg->tls_key);
	api->cfg.public_url = mx_strdup(cfg->public_url);
	api->cfg.oauth_return = mx_strdup(cfg->oauth_return);
	pthread_mutex_init(&api->ev_mu, NULL);
	mx_cond_init_mono(&api->ev_cv);
	pthread_mutex_init(&api->rl_mu, NULL);
	pthread_mutex_init(&api->conn_mu, NULL);
	mx_cond_init_mono(&api->conn_cv);
	if (mx_api_metrics_init(api) != 0) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto fail;
	}
	if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
		rc = mx_error_set(err, MX_ERR_CONFIG, "[api] tls_cert and tls_key "
				  "go together");
		goto fail;
	}
	if (cfg->tls_cert) {
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			rc = mx_error_set(err, MX_ERR_CONFIG, "[api] tls_cert: "
					  "this libmicrohttpd has no TLS");
			goto fail;
		}
		if ((rc = read_pem("tls_cert", cfg->tls_cert,
				   &api->tls_cert_pem, err)) ||
		    (rc = read_pem("tls_key", cfg->tls_key, &api->tls_key_pem,
				   err)))
			goto fail;
		flags |= MHD_USE_TLS;
	}
	fd_limit(cfg->max_connections);
	if (strncmp(cfg->listen, "unix:", 5) == 0)
		rc = listen_unix(api, cfg->listen + 5, err);
	else
		rc = listen_tcp(api, cfg->listen, err);
	if (rc)
		goto fail;
	api->mhd = MHD_start_daemon(
		flags, 0, NULL, NULL, access_cb, api,
		MHD_OPTION_LISTEN_SOCKET, api->lfd,
		MHD_OPTION_URI_LOG_CALLBACK, uri_log, api,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, api,
		MHD_OPTION_NOTIFY_COMPLETED, completed, api,
		MHD_OPTION_NOTIFY_CONNECTION, notify_conn, api,
		MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)1 << 20,
		cfg->tls_cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END,
		api->tls_cert_pem,
		MHD_OPTION_HTTPS_MEM_KEY, api->tls_key_pem,
		MHD_OPTION_END);
	if (api->mhd == NULL) {
		rc = mx_error_set(err, MX_ERR_IO, "[api] cannot start the HTTP "
				  "server on %s", api->addr);
		goto fail;
	}
	if (cfg->timeout_s > 0) {
		if (pthread_create(&api->watchdog, NULL, watchdog_main, api) !=
		    0) {
			rc = mx_error_set(err, MX_ERR_NOMEM, "[api] cannot start "
					  "the slow-client watchdog");
			goto fail;
		}
		api->watchdog_running = true;
	}
	mx_info("api: listening on %s%s", api->addr,
		cfg->tls_cert ? " (https)" : "");
	*api_r = api;
	return MX_OK;
fail:
	mx_api_stop(&api);
	return rc;
}

const char *mx_api_address(const struct mx_api *api)
{
	return api->addr;
}

void mx_api_notify(struct mx_api *api)
{
	if (api == NULL)
		return;
	pthread_mutex_lock(&api->ev_mu);
	api->ev_gen++;
	pthread_cond_broadcast(&api->ev_cv);
	pthread_mutex_unlock(&api->ev_mu);
}

void mx_api_drain(struct mx_api *api)
{
	if (api == NULL)
		return;
	atomic_store(&api->stopping, true);
	mx_api_notify(api); /* ends long-polls and streams */
}

void mx_api_stop(struct mx_api **apip)
{
	struct mx_api *api = *apip;

	if (api == NULL)
		return;
	*apip = NULL;
	atomic_store(&api->stopping, true);
	mx_api_notify(api); /* ends long-polls and streams */
	if (api->watchdog_running) {
		pthread_mutex_lock(&api->conn_mu);
		pthread_cond_broadcast(&api->conn_cv);
		pthread_mutex_unlock(&api->conn_mu);
		pthread_join(api->watchdog, NULL);
	}
	/* MHD closes the listening socket it was given. */
	if (api->mhd)
		MHD_stop_daemon(api->mhd);
	else if (api->lfd >= 0)
		close(api->lfd);
	if (api->unix_path)
		unlink(api->unix_path);
	free(api->unix_path);
	free(api->tls_cert_pem);
	mx_secret_free(api->tls_key_pem);
	free(api->buckets);
	free(api->cfg.listen);
	free(api->cfg.tls_cert);
	free(api->cfg.tls_key);
	free(api->cfg.public_url);
	free(api->cfg.oauth_return);
	pthread_mutex_destroy(&api->ev_mu);
	pthread_cond_destroy(&api->ev_cv);
	pthread_mutex_destroy(&api->rl_mu);
	pthread_mutex_destroy(&api->conn_mu);
	pthread_cond_destroy(&api->conn_cv);
	mx_api_metrics_free(api);
	free(api);
}
