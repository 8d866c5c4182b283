/*
 * Server discovery: DNS SRV (RFC 6186 / RFC 8314) through glibc's
 * resolver, then the autoconfig document over HTTPS (libcurl).  The XML
 * parser is in autoconfig.c; doc/internals/discovery.md explains the
 * order, the limits and the trust model.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <ctype.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "discover/discover.h"
#include "account/presets.h"
#include "util/http.h"

#define DEFAULT_TIMEOUT_S 15
#define MAX_REDIRS 3
/* Records taken from one SRV answer; the rest is logged and ignored. */
#define MAX_SRV_PER_NAME 16
/* Autoconfig entries sort after any SRV priority (0-65535). */
#define AUTOCONFIG_PRIO_BASE 100000

static const struct srv_service {
	const char *label;
	const char *proto;
	enum mx_tls_mode tls;
} srv_services[] = {
	{ "_imaps._tcp", "imap", MX_TLS_IMPLICIT },
	{ "_imap._tcp", "imap", MX_TLS_STARTTLS },
	{ "_pop3s._tcp", "pop3", MX_TLS_IMPLICIT },
	{ "_pop3._tcp", "pop3", MX_TLS_STARTTLS },
	{ "_submissions._tcp", "smtp", MX_TLS_IMPLICIT },
	{ "_submission._tcp", "smtp", MX_TLS_STARTTLS },
};

/* ---- the result list ---- */

static void server_free(struct mx_disc_server *s)
{
	free(s->proto);
	free(s->host);
	free(s->user);
	free(s->source);
}

void mx_discovery_free(struct mx_discovery *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++)
		server_free(&d->v[i]);
	free(d->v);
	free(d->log);
	memset(d, 0, sizeof(*d));
}

int mx_discovery_add(struct mx_discovery *d, const struct mx_disc_server *s)
{
	struct mx_disc_server c = *s, *v;

	c.proto = mx_strdup(s->proto);
	c.host = mx_strdup(s->host);
	c.user = mx_strdup(s->user);
	c.source = mx_strdup(s->source);
	if ((s->proto && !c.proto) || (s->host && !c.host) ||
	    (s->user && !c.user) || (s->source && !c.source))
		goto fail;
	v = realloc(d->v, (d->n + 1) * sizeof(*v));
	if (v == NULL)
		goto fail;
	d->v = v;
	d->v[d->n++] = c;
	return 0;
fail:
	server_free(&c);
	return -1;
}

/* Negative if A goes before B. */
static int server_cmp(const struct mx_disc_server *a,
		      const struct mx_disc_server *b)
{
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	/* RFC 8314 5.1: implicit TLS preferred at equal priority. */
	if (a->tls != b->tls)
		return a->tls == MX_TLS_IMPLICIT ? -1 : 1;
	/* RFC 2782 picks by weighted chance; we want a stable answer, so
	 * the heaviest first. */
	if (a->weight != b->weight)
		return a->weight > b->weight ? -1 : 1;
	return 0;
}

void mx_discovery_sort(struct mx_discovery *d)
{
	/* Insertion sort: stable, and the lists are short. */
	for (size_t i = 1; i < d->n; i++) {
		struct mx_disc_server s = d->v[i];
		size_t j = i;

		while (j > 0 && server_cmp(&s, &d->v[j - 1]) < 0) {
			d->v[j] = d->v[j - 1];
			j--;
		}
		d->v[j] = s;
	}
}

const struct mx_disc_server *mx_discovery_best(const struct mx_discovery *d,
					       const char *proto)
{
	if (d == NULL || proto == NULL)
		return NULL;
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->v[i].proto, proto) == 0)
			return &d->v[i];
	return NULL;
}

char *mx_disc_url(const struct mx_disc_server *sv, const char *email)
{
	const char *scheme;
	char *u;

	if (strcmp(sv->proto, "smtp") == 0)
		scheme = sv->tls == MX_TLS_IMPLICIT ? "smtps" : "smtp";
	else if (strcmp(sv->proto, "pop3") == 0)
		scheme = sv->tls == MX_TLS_IMPLICIT ? "pop3s" : "pop3";
	else
		scheme = sv->tls == MX_TLS_IMPLICIT ? "imaps" : "imap";
	if (asprintf(&u, "%s://%s@%s:%u", scheme, sv->user ? sv->user : email,
		     sv->host, (unsigned)sv->port) < 0)
		return NULL;
	return u;
}

/* ---- names ---- */

bool mx_disc_valid_host(const char *name)
{
	size_t len = name ? strlen(name) : 0, label = 0;
	const char *last = name;
	bool all_digits = true;

	if (len == 0 || len > 253)
		return false;
	for (const char *p = name;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-')
				return false;
			if (*p == '\0')
				break;
			label = 0;
			last = p + 1;
			continue;
		}
		if (!isalnum((unsigned char)*p) && *p != '-')
			return false;
		if (label == 0 && *p == '-')
			return false;
		label++;
	}
	for (const char *p = last; *p; p++)
		all_digits = all_digits && isdigit((unsigned char)*p);
	return !all_digits;
}

bool mx_disc_in_domain(const char *host, const char *domain)
{
	size_t h = strlen(host), d = strlen(domain);

	if (h == d)
		return strcasecmp(host, domain) == 0;
	return h > d && host[h - d - 1] == '.' &&
	       strcasecmp(host + h - d, domain) == 0;
}

/* ---- SRV ---- */

static void logf_(struct mx_buf *log, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void logf_(struct mx_buf *log, const char *fmt, ...)
{
	char line[600];
	va_list ap;

	if (log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	(void)mx_buf_printf(log, "%s\n", line);
}

int mx_srv_parse(const unsigned char *msg, size_t len, const char *qname,
		 const char *proto, enum mx_tls_mode tls, const char *domain,
		 struct mx_discovery *out, struct mx_buf *log)
{
	char want[NS_MAXDNAME], target[NS_MAXDNAME], source[NS_MAXDNAME + 8];
	ns_msg m;
	int count, added = 0;

	if (len > INT_MAX || ns_initparse(msg, (int)len, &m) < 0) {
		logf_(log, "SRV %s: malformed DNS answer, ignored", qname);
		return -1;
	}
	snprintf(want, sizeof(want), "%s", qname);
	snprintf(source, sizeof(source), "SRV %s", qname);
	count = ns_msg_count(m, ns_s_an);
	for (int i = 0; i < count; i++) {
		struct mx_disc_server s = {0};
		const unsigned char *rd;
		ns_rr rr;
		int tl;

		if (ns_parserr(&m, ns_s_an, i, &rr) < 0) {
			logf_(log, "SRV %s: answer record %d malformed, the "
				   "rest ignored", qname, i + 1);
			break;
		}
		rd = ns_rr_rdata(rr);
		if (ns_rr_class(rr) != ns_c_in ||
		    strcasecmp(ns_rr_name(rr), want) != 0) {
			logf_(log, "SRV %s: record for \"%.100s\" (class %d) "
				   "ignored", qname, ns_rr_name(rr),
			      (int)ns_rr_class(rr));
			continue;
		}
		if (ns_rr_type(rr) == ns_t_cname) {
			/* An alias owner (RFC 2782 forbids it, resolvers
			 * follow it anyway): the SRV records that follow
			 * carry the alias target's name. */
			if (dn_expand(ns_msg_base(m), ns_msg_end(m), rd, want,
				      sizeof(want)) < 0) {
				logf_(log, "SRV %s: bad CNAME target, answer "
					   "ignored", qname);
				return added;
			}
			continue;
		}
		if (ns_rr_type(rr) != ns_t_srv) {
			logf_(log, "SRV %s: record of type %d ignored", qname,
			      (int)ns_rr_type(rr));
			continue;
		}
		if (ns_rr_rdlen(rr) < 7) {
			logf_(log, "SRV %s: SRV record too short (%d bytes), "
				   "ignored", qname, (int)ns_rr_rdlen(rr));
			continue;
		}
		tl = dn_expand(ns_msg_base(m), ns_msg_end(m), rd + 6, target,
			       sizeof(target));
		if (tl < 0 || 6 + tl != (int)ns_rr_rdlen(rr)) {
			logf_(log, "SRV %s: SRV record with a malformed target, "
				   "ignored", qname);
			continue;
		}
		if (target[0] == '\0' || strcmp(target, ".") == 0) {
			logf_(log, "SRV %s: target \".\": service not offered",
			      qname);
			continue;
		}
		tl = (int)strlen(target);
		if (target[tl - 1] == '.')
			target[tl - 1] = '\0';
		if (!mx_disc_valid_host(target)) {
			logf_(log, "SRV %s: target \"%.100s\" is not a valid "
				   "host name, ignored", qname, target);
			continue;
		}
		s.port = (uint16_t)ns_get16(rd + 4);
		if (s.port == 0) {
			logf_(log, "SRV %s: %s with port 0, ignored", qname,
			      target);
			continue;
		}
		if (added == MAX_SRV_PER_NAME) {
			logf_(log, "SRV %s: more than %d records, the rest "
				   "ignored", qname, MAX_SRV_PER_NAME);
			break;
		}
		s.proto = (char *)(uintptr_t)proto;
		s.host = target;
		s.tls = tls;
		s.source = source;
		s.priority = (int)ns_get16(rd);
		s.weight = (int)ns_get16(rd + 2);
		s.foreign_domain = !mx_disc_in_domain(target, domain);
		if (mx_discovery_add(out, &s) < 0)
			return -1;
		added++;
	}
	return added;
}

static int parse_hostport(const char *spec, char *host, size_t hostsz,
			  unsigned *port_r)
{
	const char *colon = spec ? strrchr(spec, ':') : NULL;
	char *end;
	unsigned long port;

	if (colon == NULL || colon == spec ||
	    (size_t)(colon - spec) >= hostsz || colon[1] == '\0' ||
	    strlen(colon + 1) > 5 ||
	    colon[1 + strspn(colon + 1, "0123456789")] != '\0')
		return -1;
	port = strtoul(colon + 1, &end, 10);
	if (port < 1 || port > 65535)
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	*port_r = (unsigned)port;
	return 0;
}

/* Resolver state with our timeout and, if asked, our name server. */
static int resolver_init(struct __res_state *rs,
			 const struct mx_discover_opts *o, int timeout_s,
			 struct mx_error *err)
{
	memset(rs, 0, sizeof(*rs));
	if (res_ninit(rs) != 0) {
		res_nclose(rs);
		return mx_error_set(err, MX_ERR_NET, "resolver: cannot "
				    "initialize (resolv.conf)");
	}
	rs->retrans = timeout_s;
	rs->retry = 1;
	rs->options &= ~(unsigned long)(RES_DNSRCH | RES_DEFNAMES);
	if (o->dns_server) {
		struct sockaddr_in sin = { .sin_family = AF_INET };
		char ip[64];
		unsigned port;

		if (parse_hostport(o->dns_server, ip, sizeof(ip), &port) < 0 ||
		    inet_pton(AF_INET, ip, &sin.sin_addr) != 1) {
			res_nclose(rs);
			return mx_error_set(err, MX_ERR_INVAL, "bad DNS server "
					    "\"%s\" (want IPv4:PORT)",
					    o->dns_server);
		}
		sin.sin_port = htons((uint16_t)port);
		rs->nscount = 1;
		rs->nsaddr_list[0] = sin;
	}
	return MX_OK;
}

/* Queries every SRV name; SUMMARY gets "_imaps._tcp/...: outcome". */
static void srv_discover(struct __res_state *rs, const char *domain,
			 struct mx_discovery *out, struct mx_buf *log,
			 struct mx_buf *summary)
{
	const char *outcome[MX_ARRAY_SIZE(srv_services)];
	unsigned char *ans = malloc(NS_MAXMSG);
	bool done[MX_ARRAY_SIZE(srv_services)] = {0};

	for (size_t i = 0; i < MX_ARRAY_SIZE(srv_services); i++) {
		const struct srv_service *sv = &srv_services[i];
		char q[NS_MAXDNAME];
		int n, added;

		snprintf(q, sizeof(q), "%s.%s", sv->label, domain);
		n = ans ? res_nquery(rs, q, ns_c_in, ns_t_srv, ans, NS_MAXMSG)
			: -1;
		if (n < 0) {
			switch (ans ? rs->res_h_errno : NETDB_INTERNAL) {
			case HOST_NOT_FOUND:
			case NO_DATA:
				outcome[i] = "no records";
				break;
			case TRY_AGAIN:
				outcome[i] = "no answer (timeout or server "
					     "failure)";
				break;
			case NO_RECOVERY:
				outcome[i] = "query refused or answer unusable";
				break;
			default:
				outcome[i] = "resolver error";
				break;
			}
			logf_(log, "SRV %s: %s", q, outcome[i]);
			continue;
		}
		if (n > NS_MAXMSG)
			n = NS_MAXMSG;
		added = mx_srv_parse(ans, (size_t)n, q, sv->proto, sv->tls,
				     domain, out, log);
		if (added > 0) {
			outcome[i] = "found";
			logf_(log, "SRV %s: %d server(s)", q, added);
		} else {
			outcome[i] = added < 0 ? "malformed answer"
					       : "no usable record";
		}
	}
	free(ans);
	/* Group the names with the same outcome. */
	mx_buf_printf(summary, "SRV ");
	for (size_t i = 0; i < MX_ARRAY_SIZE(srv_services); i++) {
		bool first = true;

		if (done[i])
			continue;
		if (summary->len > 4)
			mx_buf_puts(summary, "; ");
		for (size_t j = i; j < MX_ARRAY_SIZE(srv_services); j++) {
			if (done[j] || strcmp(outcome[j], outcome[i]) != 0)
				continue;
			done[j] = true;
			mx_buf_printf(summary, "%s%s", first ? "" : "/",
				      srv_services[j].label);
			first = false;
		}
		mx_buf_printf(summary, ": %s", outcome[i]);
	}
}

/* ---- autoconfig over HTTPS ---- */

/*
 * GETs URL into F->body.  Returns 0 with an HTTP 200 body, else -1 with
 * the reason in WHY.  EFFECTIVE gets the URL after redirects.
 */
static int fetch_doc(const char *url, const struct mx_discover_opts *o,
		     int timeout_s, struct mx_http_sink *f, char *why,
		     size_t whysz, char *effective, size_t effsz)
{
	char ebuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *connect_to = NULL;
	CURLcode cc = CURLE_OK;
	CURL *c = NULL;
	char *eff = NULL;
	long status = 0;
	int rc = -1;

	snprintf(effective, effsz, "%s", url);
	if (mx_http_global_init(NULL) != MX_OK ||
	    (c = curl_easy_init()) == NULL) {
		snprintf(why, whysz, "libcurl initialization failed");
		return -1;
	}
	if (o->connect_to) {
		char spec[300];

		snprintf(spec, sizeof(spec), "::%s", o->connect_to);
		if ((connect_to = curl_slist_append(NULL, spec)) == NULL) {
			snprintf(why, whysz, "out of memory");
			goto out;
		}
	}
#define SET(opt, val)                                                    \
	do {                                                             \
		if (cc == CURLE_OK)                                      \
			cc = curl_easy_setopt(c, opt, val);              \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
	SET(CURLOPT_FOLLOWLOCATION, 1L);
	SET(CURLOPT_MAXREDIRS, (long)MAX_REDIRS);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT, (long)timeout_s);
	SET(CURLOPT_CONNECTTIMEOUT, (long)timeout_s);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (o->ca_file)
		SET(CURLOPT_CAINFO, o->ca_file);
	/* A server that announces a larger body is refused before it
	 * sends it; one that does not is cut off by mx_http_sink_write(). */
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MX_AUTOCONFIG_MAX);
	f->max = MX_AUTOCONFIG_MAX;
	SET(CURLOPT_USERAGENT, "mxsync/" MX_VERSION_STRING);
	SET(CURLOPT_ERRORBUFFER, ebuf);
	SET(CURLOPT_WRITEFUNCTION, mx_http_sink_write);
	SET(CURLOPT_WRITEDATA, f);
	if (connect_to) {
		SET(CURLOPT_CONNECT_TO, connect_to);
		/* The redirected connection must not leave through a
		 * proxy from the environment either. */
		SET(CURLOPT_PROXY, "");
	}
#undef SET
	if (cc != CURLE_OK) {
		snprintf(why, whysz, "libcurl: %s", curl_easy_strerror(cc));
		goto out;
	}
	cc = curl_easy_perform(c);
	if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK &&
	    eff)
		snprintf(effective, effsz, "%s", eff);
	if (f->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
		snprintf(why, whysz, "autoconfig document too large (over %d "
				     "bytes), refused", MX_AUTOCONFIG_MAX);
		goto out;
	}
	if (cc != CURLE_OK) {
		const char *detail = ebuf[0] ? ebuf : curl_easy_strerror(cc);

		if (cc == CURLE_UNSUPPORTED_PROTOCOL) /* the first URL is https */
			snprintf(why, whysz, "redirect to a non-https URL "
					     "refused (%s)", detail);
		else if (cc == CURLE_TOO_MANY_REDIRECTS)
			snprintf(why, whysz, "more than %d redirects",
				 MAX_REDIRS);
		else if (cc == CURLE_PEER_FAILED_VERIFICATION ||
			 cc == CURLE_SSL_CACERT_BADFILE)
			snprintf(why, whysz, "certificate not verified: %s",
				 detail);
		else if (cc == CURLE_OPERATION_TIMEDOUT)
			snprintf(why, whysz, "timed out after %d s", timeout_s);
		else
			snprintf(why, whysz, "%s", detail);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		snprintf(why, whysz, "HTTP %ld", status);
		goto out;
	}
	rc = 0;
out:
	curl_slist_free_all(connect_to);
	curl_easy_cleanup(c);
	return rc;
}

static void autoconfig_discover(const char *email, const char *domain,
				const struct mx_discover_opts *o,
				int timeout_s, struct mx_discovery *out,
				struct mx_buf *log, struct mx_buf *summary)
{
	char *q = curl_easy_escape(NULL, email, 0);
	char urls[2][700];

	snprintf(urls[0], sizeof(urls[0]),
		 "https://autoconfig.%s/mail/config-v1.1.xml?emailaddress=%s",
		 domain, q ? q : "");
	snprintf(urls[1], sizeof(urls[1]),
		 "https://%s/.well-known/autoconfig/mail/config-v1.1.xml",
		 domain);
	curl_free(q);
	for (size_t i = 0; i < MX_ARRAY_SIZE(urls); i++) {
		struct mx_http_sink f = {0};
		char why[400], eff[1600], source[1620];
		struct mx_error e;

		if (fetch_doc(urls[i], o, timeout_s, &f, why, sizeof(why), eff,
			      sizeof(eff)) < 0) {
			logf_(log, "autoconfig %s: %s", urls[i], why);
			mx_buf_printf(summary, "; %s: %s", urls[i], why);
			mx_buf_free(&f.body);
			continue;
		}
		snprintf(source, sizeof(source), "autoconfig %s", eff);
		if (mx_autoconfig_parse(f.body.data ? f.body.data : "",
					f.body.len, email, source,
					AUTOCONFIG_PRIO_BASE, out, log,
					&e) == MX_OK) {
			logf_(log, "%s: document accepted", source);
			mx_buf_free(&f.body);
			return;
		}
		logf_(log, "%s: %s", source, e.detail);
		mx_buf_printf(summary, "; %s: %s", urls[i], e.detail);
		mx_buf_free(&f.body);
	}
}

int mx_discover(const char *email, const struct mx_discover_opts *opts,
		struct mx_discovery *out, struct mx_error *err)
{
	static const struct mx_discover_opts defaults;
	const struct mx_discover_opts *o = opts ? opts : &defaults;
	struct mx_buf log = {0}, summary = {0};
	const char *at = email ? strrchr(email, '@') : NULL;
	char domain[256], ignored[256];
	int timeout_s = o->timeout_s > 0 ? o->timeout_s : DEFAULT_TIMEOUT_S;
	unsigned port;
	int rc = MX_OK;

	if (out)
		memset(out, 0, sizeof(*out));
	if (out == NULL || at == NULL || at == email ||
	    strlen(at + 1) >= sizeof(domain))
		return mx_error_set(err, MX_ERR_INVAL, "\"%s\" is not an e-mail "
				    "address (local@domain)",
				    email ? email : "(null)");
	for (size_t i = 0; at[1 + i]; i++)
		domain[i] = (char)tolower((unsigned char)at[1 + i]);
	domain[strlen(at + 1)] = '\0';
	if (strlen(domain) > 0 && domain[strlen(domain) - 1] == '.')
		domain[strlen(domain) - 1] = '\0';
	if (!mx_disc_valid_host(domain) || strchr(domain, '.') == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "\"%s\": \"%s\" is not a "
				    "mail domain", email, at + 1);
	for (const char *p = email; p < at; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return mx_error_set(err, MX_ERR_INVAL, "\"%s\": bad "
					    "character in the local part",
					    email);
	if (o->connect_to &&
	    parse_hostport(o->connect_to, ignored, sizeof(ignored), &port) < 0)
		return mx_error_set(err, MX_ERR_INVAL, "bad connect-to \"%s\" "
				    "(want HOST:PORT)", o->connect_to);
	if (!o->no_srv) {
		struct __res_state rs;

		rc = resolver_init(&rs, o, timeout_s, err);
		if (rc != MX_OK)
			goto out;
		srv_discover(&rs, domain, out, &log, &summary);
		res_nclose(&rs);
	}
	if (!o->no_autoconfig && mx_discovery_best(out, "imap") == NULL &&
	    mx_discovery_best(out, "pop3") == NULL)
		autoconfig_discover(email, domain, o, timeout_s, out, &log,
				    &summary);
	mx_discovery_sort(out);
	if (out->n == 0) {
		const char *s = summary.data ? summary.data : "";

		if (s[0] == ';')
			s += 2;
		/* Room is kept for the hint; the full story is in the log. */
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "no mail servers found "
				  "for %s: %.360s%s — give --imap URL or "
				  "--provider NAME", domain,
				  s[0] ? s : "SRV and autoconfig disabled",
				  strlen(s) > 360 ? "..." : "");
	}
out:
	if (log.data == NULL)
		mx_buf_puts(&log, "");
	out->log = mx_buf_steal(&log);
	mx_buf_free(&summary);
	return rc;
}
