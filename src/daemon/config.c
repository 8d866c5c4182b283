/*
 * mxsync.conf: an INI file (doc/mxsync.conf.5).
 *
 *   [daemon]            workers, poll_interval, api_poll_interval,
 *                       folder_interval,
 *                       idle_restart, idle_connection, backoff_min,
 *                       backoff_max, log, log_level, trace
 *   [events]            retention_days, retention_count
 *   [webhook NAME]      url, secret | secret_file, events, ca_file,
 *                       timeout, max_backoff
 *   [account NAME]      folders, enabled, idle_connection,
 *                       api_poll_interval
 *   [api]               listen, tls_cert, tls_key, max_body,
 *                       max_connections, timeout, rate_limit,
 *                       public_url, oauth_return
 *
 * Unknown sections or keys are errors (a typo must not silently change
 * behaviour); values are checked for range.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "daemon/daemon.h"
#include "secrets/secrets.h"
#include "util/http.h"

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Values are trimmed already; the digits-only parser refuses signs, so
 * "-1" is an error rather than a huge count. */
static int parse_int(const char *v, long lo, long hi, long *out)
{
	uint64_t n;

	if (mx_parse_u64(v, (uint64_t)lo, (uint64_t)hi, &n) < 0)
		return -1;
	*out = (long)n;
	return 0;
}

static int parse_bool(const char *v, bool *out)
{
	if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") ||
		 !strcmp(v, "0"))
		*out = false;
	else
		return -1;
	return 0;
}

static int parse_idle_conn(const char *v, int *out)
{
	if (!strcmp(v, "separate"))
		*out = MX_IDLE_CONN_SEPARATE;
	else if (!strcmp(v, "shared"))
		*out = MX_IDLE_CONN_SHARED;
	else
		return -1;
	return 0;
}

/* Splits "a, b,c" into a NULL-terminated array. */
static char **split_list(const char *v, size_t *n_r)
{
	char *dup = strdup(v), *save = NULL, *tok;
	char **out = calloc(strlen(v) / 2 + 2, sizeof(char *));
	size_t n = 0;

	if (dup == NULL || out == NULL) {
		free(dup);
		free(out);
		return NULL;
	}
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *t = trim(tok);

		if (*t)
			out[n++] = strdup(t);
	}
	free(dup);
	*n_r = n;
	return out;
}

/* Frees a list made by split_list().  NULL-safe. */
static void free_list(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void defaults(struct mx_config *c)
{
	memset(c, 0, sizeof(*c));
	c->workers = 4;
	c->poll_interval_s = 60;
	c->api_poll_interval_s = 30;
	c->folder_interval_s = 120;
	c->idle_restart_s = 1500;
	c->idle_connection = MX_IDLE_CONN_SEPARATE;
	c->backoff_min_s = 5;
	c->backoff_max_s = 900;
	c->retention_days = 30;
	c->log_level = MX_LOG_INFO;
	c->api.max_body = (uint64_t)64 << 20;
	c->api.max_connections = 1000;
	c->api.timeout_s = 30;
	c->api.rate_limit = 100;
}

enum section { SEC_NONE, SEC_DAEMON, SEC_EVENTS, SEC_WEBHOOK, SEC_ACCOUNT,
	       SEC_API };

/* listen = HOST:PORT, [V6]:PORT or unix:/ABSOLUTE/PATH (the server
 * resolves the host when it starts). */
static bool api_listen_valid(const char *v)
{
	const char *colon = strrchr(v, ':');
	uint64_t port;

	if (strncmp(v, "unix:", 5) == 0)
		return v[5] == '/';
	return colon && colon > v && mx_parse_u64(colon + 1, 0, 65535, &port) == 0;
}

/* public_url: an http(s) URL without user info, query, fragment or
 * space (the API builds the OAuth redirect URI from it); an origin of
 * oauth_return: that without a path, too. */
static bool api_http_url_valid(const char *v, bool origin_only)
{
	const char *rest;
	char o[512];

	if (!mx_url_origin(v, o, sizeof(o), &rest) || strpbrk(rest, "?#"))
		return false;
	return !origin_only || rest[0] == '\0' || strcmp(rest, "/") == 0;
}

static bool api_origins_valid(const char *v)
{
	char one[512];
	bool any = false;

	while (*v) {
		size_t n;

		v += strspn(v, " \t");
		n = strcspn(v, " \t");
		if (n == 0)
			break;
		if (n >= sizeof(one))
			return false;
		memcpy(one, v, n);
		one[n] = '\0';
		if (!api_http_url_valid(one, true))
			return false;
		any = true;
		v += n;
	}
	return any;
}

static int api_str(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -1;
}

int mx_config_load(const char *path, struct mx_config *cfg,
		   struct mx_error *err)
{
	enum section sec = SEC_NONE;
	/* The file holds webhook secrets: read through our own buffer (not
	 * stdio's), and both are wiped at the end. */
	char line[4096], iobuf[4096];
	/* Where each section started, for errors found after the parse. */
	int wh_line[MX_MAX_WEBHOOKS], acct_line[MX_MAX_ACCT_CFG];
	struct mx_error e2;
	struct stat sb;
	FILE *fp;
	int lineno = 0, rc = MX_OK;

	defaults(cfg);
	fp = fopen(path, "re");
	if (fp == NULL) {
		if (errno == ENOENT)
			return MX_OK;
		return mx_error_set(err, MX_ERR_CONFIG, "%s: %s", path,
				    strerror(errno));
	}
	setvbuf(fp, iobuf, _IOFBF, sizeof(iobuf));
#define BAD(...) do { rc = mx_error_set(err, MX_ERR_CONFIG, __VA_ARGS__); goto out; } while (0)
	/* fopen() opens a directory and fgets() then just ends: "-c DIR"
	 * would run on silent defaults. */
	if (fstat(fileno(fp), &sb) != 0)
		BAD("%s: %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		BAD("%s: not a regular file%s", path,
		    S_ISDIR(sb.st_mode) ? " (a directory: give the path of "
		    "the configuration file itself)" : "");
	while (fgets(line, sizeof(line), fp)) {
		char *s, *eq, *k, *v;
		long n;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp))
			BAD("%s:%d: line too long", path, lineno);
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *e = strchr(s, ']'), *name;

			if (e == NULL || *trim(e + 1) != '\0')
				BAD("%s:%d: bad section header", path, lineno);
			*e = '\0';
			s = trim(s + 1);
			name = strchr(s, ' ');
			if (name) {
				*name++ = '\0';
				name = trim(name);
			}
			if (!strcmp(s, "daemon") && !name)
				sec = SEC_DAEMON;
			else if (!strcmp(s, "events") && !name)
				sec = SEC_EVENTS;
			else if (!strcmp(s, "api") && !name) {
				/* The section turns the listener on, at the
				 * default address unless listen says. */
				if (!cfg->api_enabled &&
				    api_str(&cfg->api.listen, MX_API_LISTEN_DEFAULT))
					BAD("%s:%d: out of memory", path, lineno);
				cfg->api_enabled = true;
				sec = SEC_API;
			}
			else if (!strcmp(s, "webhook") && name && mx_name_valid(name)) {
				if (cfg->nwebhooks == MX_MAX_WEBHOOKS)
					BAD("%s:%d: too many webhooks", path, lineno);
				for (size_t i = 0; i < cfg->nwebhooks; i++)
					if (!strcmp(cfg->webhooks[i].name, name))
						BAD("%s:%d: webhook %s defined twice "
						    "(lines %d and %d)", path, lineno,
						    name, wh_line[i], lineno);
				wh_line[cfg->nwebhooks] = lineno;
				cfg->webhook_strs[cfg->nwebhooks][0] = strdup(name);
				cfg->webhooks[cfg->nwebhooks].name =
					cfg->webhook_strs[cfg->nwebhooks][0];
				cfg->webhooks[cfg->nwebhooks].timeout_s = 10;
				cfg->webhooks[cfg->nwebhooks].max_backoff_s = 300;
				cfg->nwebhooks++;
				sec = SEC_WEBHOOK;
			} else if (!strcmp(s, "account") && name && mx_name_valid(name)) {
				if (cfg->naccts == MX_MAX_ACCT_CFG)
					BAD("%s:%d: too many account sections", path, lineno);
				/* Two sections would leave one silently unused. */
				for (size_t i = 0; i < cfg->naccts; i++)
					if (!strcmp(cfg->accts[i].name, name))
						BAD("%s:%d: account %s defined twice "
						    "(lines %d and %d)", path, lineno,
						    name, acct_line[i], lineno);
				acct_line[cfg->naccts] = lineno;
				cfg->accts[cfg->naccts].name = strdup(name);
				cfg->naccts++;
				sec = SEC_ACCOUNT;
			} else {
				BAD("%s:%d: unknown section [%s%s%s]", path,
				    lineno, s, name ? " " : "", name ? name : "");
			}
			continue;
		}
		eq = strchr(s, '=');
		if (eq == NULL)
			BAD("%s:%d: expected key = value", path, lineno);
		*eq = '\0';
		k = trim(s);
		v = trim(eq + 1);
		switch (sec) {
		case SEC_NONE:
			BAD("%s:%d: key outside a section", path, lineno);
		case SEC_DAEMON:
			if (!strcmp(k, "workers") && !parse_int(v, 1, 64, &n))
				cfg->workers = (int)n;
			else if (!strcmp(k, "poll_interval") && !parse_int(v, 5, 86400, &n))
				cfg->poll_interval_s = (int)n;
			else if (!strcmp(k, "api_poll_interval") && !parse_int(v, 1, 86400, &n))
				cfg->api_poll_interval_s = (int)n;
			else if (!strcmp(k, "folder_interval") && !parse_int(v, 10, 86400, &n))
				cfg->folder_interval_s = (int)n;
			else if (!strcmp(k, "idle_restart") && !parse_int(v, 30, 1740, &n))
				cfg->idle_restart_s = (int)n;
			else if (!strcmp(k, "idle_connection") && parse_idle_conn(v, &cfg->idle_connection) == 0)
				;
			else if (!strcmp(k, "backoff_min") && !parse_int(v, 1, 3600, &n))
				cfg->backoff_min_s = (int)n;
			else if (!strcmp(k, "backoff_max") && !parse_int(v, 1, 86400, &n))
				cfg->backoff_max_s = (int)n;
			else if (!strcmp(k, "log") && (!strcmp(v, "stderr") || !strcmp(v, "syslog")))
				cfg->syslog = !strcmp(v, "syslog");
			else if (!strcmp(k, "log_level") && !strcmp(v, "error"))
				cfg->log_level = MX_LOG_ERROR;
			else if (!strcmp(k, "log_level") && !strcmp(v, "warning"))
				cfg->log_level = MX_LOG_WARN;
			else if (!strcmp(k, "log_level") && !strcmp(v, "info"))
				cfg->log_level = MX_LOG_INFO;
			else if (!strcmp(k, "log_level") && !strcmp(v, "debug"))
				cfg->log_level = MX_LOG_DEBUG;
			else if (!strcmp(k, "trace") && mx_trace_parse(v, &cfg->trace) == 0)
				;
			else
				BAD("%s:%d: bad [daemon] setting '%s = %s'", path, lineno, k, v);
			break;
		case SEC_EVENTS:
			if (!strcmp(k, "retention_days") && !parse_int(v, 0, 36500, &n))
				cfg->retention_days = n;
			else if (!strcmp(k, "retention_count") && !parse_int(v, 0, 2000000000L, &n))
				cfg->retention_count = (uint64_t)n;
			else
				BAD("%s:%d: bad [events] setting '%s'", path, lineno, k);
			break;
		case SEC_API:
			if (!strcmp(k, "listen") && api_listen_valid(v)) {
				if (api_str(&cfg->api.listen, v))
					BAD("%s:%d: out of memory", path, lineno);
			} else if (!strcmp(k, "tls_cert") && *v) {
				if (api_str(&cfg->api.tls_cert, v))
					BAD("%s:%d: out of memory", path, lineno);
			} else if (!strcmp(k, "tls_key") && *v) {
				if (api_str(&cfg->api.tls_key, v))
					BAD("%s:%d: out of memory", path, lineno);
			} else if (!strcmp(k, "max_body") &&
				   !parse_int(v, 1024, 1L << 40, &n)) {
				cfg->api.max_body = (uint64_t)n;
			} else if (!strcmp(k, "max_connections") &&
				   !parse_int(v, 1, 100000, &n)) {
				cfg->api.max_connections = (unsigned)n;
			} else if (!strcmp(k, "timeout") && !parse_int(v, 1, 3600, &n)) {
				cfg->api.timeout_s = (unsigned)n;
			} else if (!strcmp(k, "rate_limit") &&
				   !parse_int(v, 0, 1000000, &n)) {
				cfg->api.rate_limit = (unsigned)n;
			} else if (!strcmp(k, "public_url") &&
				   api_http_url_valid(v, false)) {
				if (api_str(&cfg->api.public_url, v))
					BAD("%s:%d: out of memory", path, lineno);
			} else if (!strcmp(k, "oauth_return") &&
				   api_origins_valid(v)) {
				if (api_str(&cfg->api.oauth_return, v))
					BAD("%s:%d: out of memory", path, lineno);
			} else {
				BAD("%s:%d: bad [api] setting '%s = %s'", path,
				    lineno, k, v);
			}
			break;
		case SEC_WEBHOOK: {
			size_t w = cfg->nwebhooks - 1;
			struct mx_webhook_cfg *wc = &cfg->webhooks[w];

			if (!strcmp(k, "url")) {
				free(cfg->webhook_strs[w][1]);
				wc->url = cfg->webhook_strs[w][1] = strdup(v);
			} else if (!strcmp(k, "secret")) {
				free(cfg->webhook_strs[w][2]);
				wc->secret = cfg->webhook_strs[w][2] = strdup(v);
			} else if (!strcmp(k, "secret_file")) {
				char *data = NULL;
				size_t len = 0;

				if (mx_read_file(v, 4096, &data, &len, &e2))
					BAD("%s:%d: %s", path, lineno, e2.detail);
				while (len && (data[len - 1] == '\n' || data[len - 1] == '\r'))
					data[--len] = '\0';
				free(cfg->webhook_strs[w][2]);
				wc->secret = cfg->webhook_strs[w][2] = data;
			} else if (!strcmp(k, "ca_file")) {
				free(cfg->webhook_strs[w][3]);
				wc->ca_file = cfg->webhook_strs[w][3] = strdup(v);
			} else if (!strcmp(k, "events")) {
				size_t nt = 0;
				char **t = split_list(v, &nt);

				if (t == NULL)
					BAD("%s:%d: out of memory", path, lineno);
				/* A repeated key replaces the earlier list. */
				free_list(cfg->webhook_types[w]);
				cfg->webhook_types[w] = t;
				wc->types = (const char *const *)t;
				wc->ntypes = nt;
			} else if (!strcmp(k, "timeout") && !parse_int(v, 1, 300, &n)) {
				wc->timeout_s = (int)n;
			} else if (!strcmp(k, "max_backoff") && !parse_int(v, 1, 86400, &n)) {
				wc->max_backoff_s = (int)n;
			} else {
				BAD("%s:%d: bad [webhook] setting '%s'", path, lineno, k);
			}
			break;
		}
		case SEC_ACCOUNT: {
			struct mx_acct_cfg *a = &cfg->accts[cfg->naccts - 1];
			bool b;

			if (!strcmp(k, "folders")) {
				size_t nf = 0;
				char **f = split_list(v, &nf);

				if (f == NULL)
					BAD("%s:%d: out of memory", path, lineno);
				/* A repeated key replaces the earlier list. */
				free_list(a->folders);
				a->folders = f;
				a->nfolders = nf;
			} else if (!strcmp(k, "enabled") && !parse_bool(v, &b)) {
				a->disabled = !b;
			} else if (!strcmp(k, "idle_connection") &&
				   parse_idle_conn(v, &a->idle_connection) == 0) {
				;
			} else if (!strcmp(k, "api_poll_interval") &&
				   !parse_int(v, 1, 86400, &n)) {
				a->api_poll_interval_s = (int)n;
			} else {
				BAD("%s:%d: bad [account] setting '%s'", path, lineno, k);
			}
			break;
		}
		}
	}
	if (ferror(fp))
		BAD("%s: %s", path, strerror(errno));
	if ((cfg->api.tls_cert == NULL) != (cfg->api.tls_key == NULL))
		BAD("%s: [api] tls_cert and tls_key go together", path);
	for (size_t i = 0; i < cfg->nwebhooks; i++) {
		if (cfg->webhooks[i].url == NULL)
			BAD("%s: webhook %s has no url", path, cfg->webhooks[i].name);
		if (cfg->webhooks[i].secret == NULL || !*cfg->webhooks[i].secret)
			BAD("%s: webhook %s has no secret (secret or secret_file)",
			    path, cfg->webhooks[i].name);
		/* URL and event types: refused here, so a bad webhook stops
		 * the start (and a reload keeps the old configuration). */
		if (mx_webhook_check(&cfg->webhooks[i], &e2) != MX_OK)
			BAD("%s:%d: %s", path, wh_line[i], e2.detail);
	}
#undef BAD
out:
	fclose(fp);
	OPENSSL_cleanse(iobuf, sizeof(iobuf));
	OPENSSL_cleanse(line, sizeof(line));
	if (rc)
		mx_config_free(cfg);
	return rc;
}

void mx_config_free(struct mx_config *cfg)
{
	for (size_t i = 0; i < cfg->nwebhooks; i++) {
		for (int j = 0; j < 4; j++) {
			if (j == 2) /* the secret */
				mx_secret_free(cfg->webhook_strs[i][j]);
			else
				free(cfg->webhook_strs[i][j]);
		}
		free_list(cfg->webhook_types[i]);
	}
	for (size_t i = 0; i < cfg->naccts; i++) {
		free_list(cfg->accts[i].folders);
		free(cfg->accts[i].name);
	}
	free(cfg->api.listen);
	free(cfg->api.tls_cert);
	free(cfg->api.tls_key);
	free(cfg->api.public_url);
	free(cfg->api.oauth_return);
	defaults(cfg);
}

const struct mx_acct_cfg *mx_config_account(const struct mx_config *cfg,
					    const char *name)
{
	for (size_t i = 0; i < cfg->naccts; i++)
		if (!strcmp(cfg->accts[i].name, name))
			return &cfg->accts[i];
	return NULL;
}

const char *mx_acct_state_name(enum mx_acct_state s)
{
	static const char *const names[] = {
		"connecting", "initial_sync", "syncing", "idle",
		"polling", "backoff", "auth_failed", "disabled", "stopped"};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s]
							      : "unknown";
}
