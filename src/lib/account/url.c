/* Server URLs of an account: the incoming server (IMAP, POP3) and SMTP
 * servers, parsed by one parser; pointing an account at a new incoming
 * server. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "account/account.h"

static char *pct_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n &&
		    isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2])) {
			uint8_t b;

			mx_unhex(s + i + 1, &b, 1);
			if (b == 0) { /* no NUL inside a user name */
				free(out);
				return NULL;
			}
			*o++ = (char)b;
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

struct scheme {
	const char *prefix;
	enum mx_tls_mode tls;
	uint16_t port;
	int proto; /* enum mx_proto, or -1 for SMTP */
};

static const struct scheme incoming[] = {
	{"imaps://", MX_TLS_IMPLICIT, 993, MX_PROTO_IMAP},
	{"imap://", MX_TLS_STARTTLS, 143, MX_PROTO_IMAP},
	{"pop3s://", MX_TLS_IMPLICIT, 995, MX_PROTO_POP3},
	{"pop3://", MX_TLS_STARTTLS, 110, MX_PROTO_POP3},
	/* Gmail API mode: the API's base URL with the mailbox as USER
	 * (`account add --mode api` writes it; http:// only to loopback,
	 * checked there and by the client). */
	{"gmail+https://", MX_TLS_IMPLICIT, 443, MX_PROTO_GMAIL},
	{"gmail+http://", MX_TLS_NONE, 80, MX_PROTO_GMAIL},
	{NULL, 0, 0, 0},
};

static const struct scheme outgoing[] = {
	{"smtps://", MX_TLS_IMPLICIT, 465, -1},
	{"smtp://", MX_TLS_STARTTLS, 587, -1},
	{"smtp+plain://", MX_TLS_NONE, 25, -1},
	{NULL, 0, 0, 0},
};

struct url_parts {
	const struct scheme *scheme;
	char *user; /* NULL when the URL has no USER@ */
	char *host;
	uint16_t port;
};

static void url_parts_free(struct url_parts *u)
{
	free(u->user);
	free(u->host);
	memset(u, 0, sizeof(*u));
}

/* SCHEME://[USER@]HOST[:PORT][/] with HOST a name, an IPv4 address or a
 * bracketed IPv6 address; USER percent-decoded.  USAGE names the accepted
 * forms for the error message. */
static int parse_server_url(const char *url, const struct scheme *schemes,
			    bool need_user, const char *usage,
			    struct url_parts *u, struct mx_error *err)
{
	const char *p = NULL, *at, *hostp, *end;
	unsigned long port = 0;

	memset(u, 0, sizeof(*u));
	for (const struct scheme *sc = schemes; sc->prefix; sc++)
		if (strncmp(url, sc->prefix, strlen(sc->prefix)) == 0) {
			u->scheme = sc;
			p = url + strlen(sc->prefix);
			break;
		}
	if (p == NULL)
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': expected %s", url, usage);
	u->port = u->scheme->port;
	end = p + strcspn(p, "/?#");
	if (*end != '\0' && !(end[0] == '/' && end[1] == '\0'))
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': no path or query allowed",
				    url);
	at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at == p || (at == NULL && need_user))
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': missing USER@", url);
	hostp = at ? at + 1 : p;
	if (at) {
		if (memchr(p, ':', (size_t)(at - p)))
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL: a password does not "
					    "belong in the URL; use a password "
					    "file");
		u->user = pct_decode(p, (size_t)(at - p));
		if (u->user == NULL)
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad user in URL '%s'", url);
		for (const char *q = u->user; *q; q++)
			if ((unsigned char)*q < 0x20 || *q == 0x7f)
				return mx_error_set(err, MX_ERR_PARSE,
						    "bad URL: control character "
						    "in the user name");
	}
	if (*hostp == '[') {
		const char *rb = memchr(hostp, ']', (size_t)(end - hostp));

		if (rb == NULL)
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s': unterminated [", url);
		u->host = mx_strndup(hostp + 1, (size_t)(rb - hostp - 1));
		hostp = rb + 1;
		if (hostp < end && *hostp != ':')
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s'", url);
	} else {
		const char *colon = memchr(hostp, ':', (size_t)(end - hostp));
		const char *hend = colon ? colon : end;

		u->host = mx_strndup(hostp, (size_t)(hend - hostp));
		hostp = hend;
	}
	if (u->host == NULL || u->host[0] == '\0')
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': missing host", url);
	for (const char *q = u->host; *q; q++)
		if (!(isalnum((unsigned char)*q) || strchr(".-_:", *q)))
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s': invalid host", url);
	if (hostp < end && *hostp == ':') {
		char *e;

		/* strtoul would accept "+993" and " 993": digits only. */
		for (const char *q = hostp + 1; q < end; q++)
			if (*q < '0' || *q > '9')
				return mx_error_set(err, MX_ERR_PARSE,
						    "bad URL '%s': bad port", url);
		port = strtoul(hostp + 1, &e, 10);
		if (e != end || port == 0 || port > 65535 || e == hostp + 1)
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s': bad port", url);
		u->port = (uint16_t)port;
	}
	return MX_OK;
}

int mx_account_parse_url(const char *url, struct mx_account *a,
			 struct mx_error *err)
{
	struct url_parts u;
	int rc;

	rc = parse_server_url(url, incoming, true,
			      "imaps://USER@HOST[:PORT], imap://USER@HOST"
			      "[:PORT] (STARTTLS), pop3s://USER@HOST[:PORT] or "
			      "pop3://USER@HOST[:PORT] (STLS) or "
			      "gmail+https://USER@HOST[:PORT] (API mode)", &u,
			      err);
	if (rc == MX_OK) {
		free(a->user);
		free(a->host);
		a->user = u.user;
		a->host = u.host;
		a->port = u.port;
		a->tls = u.scheme->tls;
		a->proto = (enum mx_proto)u.scheme->proto;
		u.user = u.host = NULL;
	}
	url_parts_free(&u);
	return rc;
}

/* A's SMTP URL with its user part replaced by USER (percent-encoding
 * what a URL's userinfo cannot hold). */
static char *smtp_url_with_user(const struct mx_smtp_server *s,
				const char *user)
{
	static const char *const schemes[] = {"smtps", "smtp", "smtp+plain"};
	const char *scheme = schemes[s->tls == MX_TLS_IMPLICIT ? 0
				     : s->tls == MX_TLS_STARTTLS ? 1 : 2];
	struct mx_buf b = {0};
	bool v6 = strchr(s->host, ':') != NULL;

	mx_buf_printf(&b, "%s://", scheme);
	for (const char *p = user; *p; p++) {
		if (isalnum((unsigned char)*p) || strchr("@.-_+", *p))
			mx_buf_append(&b, p, 1);
		else
			mx_buf_printf(&b, "%%%02X", (unsigned char)*p);
	}
	mx_buf_printf(&b, "@%s%s%s:%u", v6 ? "[" : "", s->host, v6 ? "]" : "",
		      (unsigned)s->port);
	return b.data ? mx_buf_steal(&b) : NULL;
}

int mx_account_set_incoming(struct mx_account *a, const char *url,
			    struct mx_error *err)
{
	struct mx_account n = {0};
	char *old_user = a->user ? strdup(a->user) : NULL, *copy = NULL;
	char *smtp_url = NULL;
	int rc;

	rc = mx_account_parse_url(url, &n, err);
	if (rc == MX_OK && (copy = strdup(url)) == NULL)
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (rc == MX_OK && old_user && strcmp(old_user, n.user) != 0 &&
	    a->smtp.host && a->smtp.user && strcmp(a->smtp.user, old_user) == 0 &&
	    (smtp_url = smtp_url_with_user(&a->smtp, n.user)) == NULL)
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (rc) {
		free(old_user);
		free(copy);
		mx_account_free(&n);
		return rc;
	}
	if (old_user && strcmp(old_user, n.user) != 0) {
		if (a->email && strcmp(a->email, old_user) == 0 &&
		    strchr(n.user, '@')) {
			free(a->email);
			a->email = strdup(n.user);
		}
		if (smtp_url) {
			free(a->smtp.user);
			free(a->smtp.url);
			a->smtp.user = strdup(n.user);
			a->smtp.url = smtp_url;
			smtp_url = NULL;
		}
	}
	free(a->user);
	free(a->host);
	free(a->imap_url);
	a->user = n.user;
	a->host = n.host;
	a->port = n.port;
	a->tls = n.tls;
	a->proto = n.proto;
	a->imap_url = copy;
	n.user = n.host = NULL;
	mx_account_free(&n);
	free(old_user);
	free(smtp_url);
	return MX_OK;
}

int mx_smtp_url_parse(const char *url, struct mx_smtp_server *s,
		      struct mx_error *err)
{
	struct url_parts u;
	char *copy;
	int rc;

	rc = parse_server_url(url, outgoing, false,
			      "smtps://[USER@]HOST[:PORT] (implicit TLS, 465), "
			      "smtp://[USER@]HOST[:PORT] (STARTTLS, 587) or "
			      "smtp+plain://HOST[:PORT] (no TLS)", &u, err);
	if (rc == MX_OK && (copy = strdup(url)) == NULL)
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (rc == MX_OK) {
		free(s->url);
		free(s->host);
		free(s->user);
		s->url = copy;
		s->host = u.host;
		s->user = u.user;
		s->port = u.port;
		s->tls = u.scheme->tls;
		u.user = u.host = NULL;
	}
	url_parts_free(&u);
	return rc;
}
