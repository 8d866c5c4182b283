/* Accounts: URL parsing, creation, listing. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include <jansson.h>

#include <openssl/crypto.h>

#include "auth/oauth.h"
#include "account/presets.h"
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
			      "pop3://USER@HOST[:PORT] (STLS)", &u, err);
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

/* Kept mail of a removed account with A's name and server: A takes over
 * its id, so the folders, locations and records are A's again and the
 * next sync remaps rather than duplicates.  Another server's kept mail
 * stays kept (`account purge NAME` deletes it). */
static int reattach_kept(struct mx_txn *t, struct mx_account *a,
			 struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	MDB_val nv;
	int rc;

	rc = mx_db_get(t, MX_DB_ACCOUNT_NAMES, a->name, strlen(a->name), &nv,
		       err);
	if (rc == MX_OK)
		return mx_error_set(err, MX_ERR_EXISTS,
				    "account '%s' already exists", a->name);
	if (rc != MX_ERR_NOTFOUND)
		return rc;
	mx_error_clear(err);
	rc = mx_store_kept_list(t, a->name, &v, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n; i++)
		if (v[i].proto == a->proto && v[i].port == a->port &&
		    v[i].host && strcasecmp(v[i].host, a->host) == 0 &&
		    v[i].user && strcmp(v[i].user, a->user) == 0) {
			a->id = v[i].id;
			rc = mx_store_kept_del(t, v[i].id, err);
			break;
		}
	mx_accounts_free(v, n);
	return rc;
}

static int add_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct mx_account *a = ctx;
	int rc;

	a->id = 0; /* a MAP_FULL retry must assign it again */
	rc = mx_db_next_id(t, "next_account_generation", &a->generation, err);
	if (rc == MX_OK)
		rc = reattach_kept(t, a, err);
	if (rc == MX_OK)
		rc = mx_store_account_put(t, a, err);
	return rc;
}

int mx_account_check_current(struct mx_txn *t, const struct mx_account *a,
			     struct mx_error *err)
{
	struct mx_account cur;
	uint64_t gen;
	uint8_t k[4];
	MDB_val v;
	int rc;

	mx_put_be32(k, a->id);
	rc = mx_db_get(t, MX_DB_ACCOUNTS, k, 4, &v, err);
	if (rc && rc != MX_ERR_NOTFOUND)
		return rc;
	if (rc == MX_OK) {
		rc = mx_account_decode(v.mv_data, v.mv_size, &cur, err);
		if (rc)
			return rc;
		gen = cur.generation;
		mx_account_free(&cur);
		if (gen == a->generation)
			return MX_OK;
	}
	rc = mx_error_set(err, MX_ERR_CANCELLED, "account %s was removed while "
			  "this ran (or removed and added again); nothing more "
			  "is stored for it", a->name ? a->name : "?");
	mx_error_scope(err, MX_SCOPE_ACCOUNT);
	return rc;
}

/* "yes"/"no" into *B; -1 on anything else. */
static int parse_yes_no(const char *v, bool *b)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
	    strcmp(v, "1") == 0)
		*b = true;
	else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
		 strcmp(v, "0") == 0)
		*b = false;
	else
		return -1;
	return 0;
}

/* Digits with an optional K, M or G (powers of 1024, as the composer
 * counts: the default "25 MB" is 25 MiB). */
static int parse_bytes(const char *v, uint64_t *r)
{
	uint64_t n = 0, mul = 1;
	const char *p = v;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (n > UINT64_MAX / 10 - 9)
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	switch (*p) {
	case '\0': break;
	case 'k': case 'K': mul = 1024; p++; break;
	case 'm': case 'M': mul = 1024 * 1024; p++; break;
	case 'g': case 'G': mul = 1024 * 1024 * 1024; p++; break;
	default: return -1;
	}
	if ((*p == 'B' || *p == 'b') && mul > 1)
		p++;
	if (*p != '\0' || n > UINT64_MAX / mul)
		return -1;
	*r = n * mul;
	return 0;
}

/* An addr-spec as a From address: one '@', no spaces, controls, angle
 * brackets, commas or quotes (header injection and address lists). */
static bool valid_email(const char *v)
{
	const char *at = strchr(v, '@');

	if (at == NULL || at == v || at[1] == '\0' || strchr(at + 1, '@') ||
	    strlen(v) > 254)
		return false;
	for (const char *q = v; *q; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f ||
		    strchr("<>,;\"()[]\\", *q))
			return false;
	return mx_utf8_valid_str(v);
}

/* API user names: what an HTTP API token maps to. */
static bool valid_user_name(const char *v)
{
	size_t n = strlen(v);

	if (n == 0 || n > 128)
		return false;
	for (const char *q = v; *q; q++)
		if (!(isalnum((unsigned char)*q) || strchr("._@+-", *q)))
			return false;
	return true;
}

static int set_dup(char **f, const char *v)
{
	char *n = NULL;

	if (v != NULL && v[0] != '\0' && (n = strdup(v)) == NULL)
		return -1;
	if (*f)
		OPENSSL_cleanse(*f, strlen(*f)); /* may be a secret */
	free(*f);
	*f = n;
	return 0;
}

static bool str_changed(const char *v, const char *old)
{
	return v && (old == NULL || strcmp(v, old) != 0);
}

/* A file name as stored: absolute, because the daemon and later commands
 * run in another directory.  A relative one is resolved now (the file
 * must exist); unchanged names of older records are left alone. */
static int abs_file(char **f, const char *old, const char *opt,
		    struct mx_error *err)
{
	char *abs;

	if (!str_changed(*f, old) || (*f)[0] == '/')
		return MX_OK;
	abs = realpath(*f, NULL);
	if (abs == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "%s '%s': %s (a relative "
				    "name is made absolute now, so the file "
				    "must exist)", opt, *f, strerror(errno));
	free(*f);
	*f = abs;
	return MX_OK;
}

int mx_account_check_local(struct mx_account *a, const struct mx_account *old,
			   struct mx_error *err)
{
	int rc;

	if (str_changed(a->display_name, old ? old->display_name : NULL)) {
		const unsigned char *q = (const unsigned char *)a->display_name;

		if (!mx_utf8_valid_str(a->display_name))
			return mx_error_set(err, MX_ERR_INVAL, "bad "
					    "--display-name: not UTF-8");
		/* C0, DEL and C1 (U+0080-U+009F, C2 80..C2 9F in UTF-8):
		 * a CR or LF would end the From: header of every send. */
		for (; *q; q++)
			if (*q < 0x20 || *q == 0x7f ||
			    (q[0] == 0xc2 && q[1] >= 0x80 && q[1] <= 0x9f))
				return mx_error_set(err, MX_ERR_INVAL, "bad "
						    "--display-name: control "
						    "character 0x%02x (CR, LF "
						    "and others are not "
						    "allowed)", q[0] == 0xc2 ?
						    q[1] : q[0]);
	}
	if (str_changed(a->oauth_token_url, old ? old->oauth_token_url : NULL)) {
		rc = mx_oauth_check_url("--oauth-token-url", a->oauth_token_url,
					err);
		if (rc)
			return rc;
	}
	rc = abs_file(&a->password_file, old ? old->password_file : NULL,
		      "--password-file", err);
	if (rc == MX_OK)
		rc = abs_file(&a->ca_file, old ? old->ca_file : NULL,
			      "--ca-file", err);
	return rc;
}

int mx_account_apply_settings(struct mx_account *a,
			      const struct mx_account_settings *s,
			      struct mx_error *err)
{
	struct mx_smtp_server smtp = {0}, relay = {0};
	bool saves_sent = a->saves_sent, pop3_delete = a->pop3_delete;
	int daily = a->daily_limit;
	enum mx_quota_policy qp = a->quota_policy;
	enum mx_access access = a->access;
	uint64_t max_attach = a->max_attach;
	char **allowed = NULL;
	int rc = MX_OK;

	if (s == NULL)
		return MX_OK;
	/* Check everything first: nothing changes on error. */
	if (s->email && !valid_email(s->email))
		return mx_error_set(err, MX_ERR_INVAL, "bad --email '%s': "
				    "expected one address like user@example.org",
				    s->email);
	if (s->provider && mx_preset_find(s->provider) == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "unknown provider '%s'",
				    s->provider);
	if (s->saves_sent && parse_yes_no(s->saves_sent, &saves_sent) < 0)
		return mx_error_set(err, MX_ERR_INVAL, "bad --saves-sent '%s': "
				    "yes or no", s->saves_sent);
	if (s->pop3_delete && parse_yes_no(s->pop3_delete, &pop3_delete) < 0)
		return mx_error_set(err, MX_ERR_INVAL, "bad --pop3-delete '%s': "
				    "yes or no", s->pop3_delete);
	if (s->daily_limit) {
		uint64_t n;

		if (parse_bytes(s->daily_limit, &n) < 0 || n > 1000000 ||
		    strspn(s->daily_limit, "0123456789") !=
			    strlen(s->daily_limit))
			return mx_error_set(err, MX_ERR_INVAL, "bad --daily-limit "
					    "'%s': 0 (none) to 1000000 messages",
					    s->daily_limit);
		daily = (int)n;
	}
	if (s->quota_policy) {
		if (strcmp(s->quota_policy, "hold") == 0)
			qp = MX_QUOTA_HOLD;
		else if (strcmp(s->quota_policy, "relay") == 0)
			qp = MX_QUOTA_RELAY;
		else
			return mx_error_set(err, MX_ERR_INVAL, "bad --quota-policy "
					    "'%s': hold or relay",
					    s->quota_policy);
	}
	if (s->max_attach && (parse_bytes(s->max_attach, &max_attach) < 0 ||
			      max_attach == 0))
		return mx_error_set(err, MX_ERR_INVAL, "bad --max-attachment "
				    "'%s': a size such as 25M", s->max_attach);
	if (s->access) {
		if (strcmp(s->access, "owner") == 0)
			access = MX_ACCESS_OWNER;
		else if (strcmp(s->access, "selected") == 0)
			access = MX_ACCESS_SELECTED;
		else if (strcmp(s->access, "all") == 0)
			access = MX_ACCESS_ALL;
		else
			return mx_error_set(err, MX_ERR_INVAL, "bad --access '%s': "
					    "owner, selected or all", s->access);
	}
	if (s->owner && s->owner[0] && !valid_user_name(s->owner))
		return mx_error_set(err, MX_ERR_INVAL, "bad --owner '%s': use "
				    "A-Z a-z 0-9 . _ @ + -", s->owner);
	for (size_t i = 0; i < s->nallow; i++)
		if (!valid_user_name(s->allow[i]))
			return mx_error_set(err, MX_ERR_INVAL, "bad --allow '%s': "
					    "use A-Z a-z 0-9 . _ @ + -",
					    s->allow[i]);
	if (access == MX_ACCESS_SELECTED && s->nallow == 0 && a->nallowed == 0)
		return mx_error_set(err, MX_ERR_INVAL, "--access selected needs "
				    "at least one --allow USER");
	if (s->smtp_mechanism && s->smtp_mechanism[0] &&
	    strcasecmp(s->smtp_mechanism, "PLAIN") != 0 &&
	    strcasecmp(s->smtp_mechanism, "LOGIN") != 0 &&
	    strcasecmp(s->smtp_mechanism, "XOAUTH2") != 0 &&
	    strcasecmp(s->smtp_mechanism, "OAUTHBEARER") != 0)
		return mx_error_set(err, MX_ERR_INVAL, "bad --smtp-mechanism '%s': "
				    "PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER",
				    s->smtp_mechanism);
	if ((s->smtp_password && !mx_utf8_valid_str(s->smtp_password)) ||
	    (s->relay_password && !mx_utf8_valid_str(s->relay_password)))
		return mx_error_set(err, MX_ERR_INVAL, "passwords must be UTF-8");
	if (s->smtp_url && s->smtp_url[0] &&
	    (rc = mx_smtp_url_parse(s->smtp_url, &smtp, err)) != MX_OK)
		goto out;
	if (s->relay_url && s->relay_url[0] &&
	    (rc = mx_smtp_url_parse(s->relay_url, &relay, err)) != MX_OK)
		goto out;
	/* A password for a server that is not there would be dropped
	 * without a word: say so instead. */
	if (s->smtp_password && s->smtp_password[0] &&
	    (s->smtp_url ? smtp.host == NULL : a->smtp.host == NULL)) {
		rc = mx_error_set(err, MX_ERR_INVAL, "--smtp-password-file "
				  "needs an SMTP server (--smtp URL)");
		goto out;
	}
	if (s->relay_password && s->relay_password[0] &&
	    (s->relay_url ? relay.host == NULL : a->relay.host == NULL)) {
		rc = mx_error_set(err, MX_ERR_INVAL, "--relay-password-file "
				  "needs a relay (--relay URL)");
		goto out;
	}
	if (qp == MX_QUOTA_RELAY &&
	    (s->relay_url ? relay.host == NULL : a->relay.host == NULL)) {
		rc = mx_error_set(err, MX_ERR_INVAL, "--quota-policy relay needs "
				  "a fallback relay (--relay URL)");
		goto out;
	}
	if (s->nallow) {
		allowed = calloc(s->nallow, sizeof(*allowed));
		if (allowed == NULL)
			goto nomem;
		for (size_t i = 0; i < s->nallow; i++)
			if ((allowed[i] = strdup(s->allow[i])) == NULL)
				goto nomem;
	}
	/* Apply. */
	if (set_dup(&a->email, s->email ? s->email : a->email) < 0 ||
	    set_dup(&a->provider, s->provider ? s->provider : a->provider) < 0 ||
	    (s->owner && set_dup(&a->owner, s->owner) < 0))
		goto nomem;
	if (s->smtp_url) {
		smtp.password = a->smtp.password; /* kept unless replaced */
		smtp.mechanism = a->smtp.mechanism;
		a->smtp.password = a->smtp.mechanism = NULL;
		mx_smtp_server_free(&a->smtp);
		a->smtp = smtp;
		memset(&smtp, 0, sizeof(smtp));
	}
	if (s->relay_url) {
		relay.password = a->relay.password;
		a->relay.password = NULL;
		mx_smtp_server_free(&a->relay);
		a->relay = relay;
		memset(&relay, 0, sizeof(relay));
	}
	if ((s->smtp_mechanism &&
	     set_dup(&a->smtp.mechanism, s->smtp_mechanism) < 0) ||
	    (s->smtp_password && set_dup(&a->smtp.password, s->smtp_password) < 0) ||
	    (s->relay_password && set_dup(&a->relay.password, s->relay_password) < 0))
		goto nomem;
	if (allowed) {
		for (size_t i = 0; i < a->nallowed; i++)
			free(a->allowed[i]);
		free(a->allowed);
		a->allowed = allowed;
		a->nallowed = s->nallow;
		allowed = NULL;
	}
	a->saves_sent = saves_sent;
	a->pop3_delete = pop3_delete;
	a->daily_limit = daily;
	a->quota_policy = qp;
	a->max_attach = max_attach;
	a->access = access;
	goto out;
nomem:
	rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
out:
	if (allowed) {
		for (size_t i = 0; i < s->nallow; i++)
			free(allowed[i]);
		free(allowed);
	}
	mx_smtp_server_free(&smtp);
	mx_smtp_server_free(&relay);
	return rc;
}

enum mx_err mx_account_add(struct mx_store *st,
			   const struct mx_account_params *p,
			   struct mx_error *err)
{
	return (enum mx_err)mx_account_add_with(st, p, NULL, err);
}

int mx_account_add_with(struct mx_store *st,
			const struct mx_account_params *p,
			const struct mx_account_settings *set,
			struct mx_error *err)
{
	struct mx_account a = {0};
	int rc;

	mx_error_clear(err);
	if (p->name == NULL || !mx_name_valid(p->name))
		return mx_error_set(err, MX_ERR_INVAL,
				    "bad account name '%s': use 1-64 of "
				    "A-Z a-z 0-9 . _ -",
				    p->name ? p->name : "");
	if (p->imap_url == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "missing --imap URL");
	rc = mx_account_parse_url(p->imap_url, &a, err);
	if (rc)
		goto out;
	if ((p->password && !mx_utf8_valid_str(p->password)) ||
	    (p->password_file && !mx_utf8_valid_str(p->password_file)) ||
	    (p->ca_file && !mx_utf8_valid_str(p->ca_file)) ||
	    !mx_utf8_valid_str(p->imap_url) || !mx_utf8_valid_str(a.user)) {
		rc = mx_error_set(err, MX_ERR_INVAL,
				  "password, URL and file names must be UTF-8 "
				  "(use --password-file for other bytes)");
		goto out;
	}
	a.name = strdup(p->name);
	a.imap_url = strdup(p->imap_url);
	a.password = mx_strdup(p->password);
	a.password_file = mx_strdup(p->password_file);
	a.ca_file = mx_strdup(p->ca_file);
	a.insecure_plaintext = p->insecure_plaintext;
	a.timeout_s = p->timeout_s;
	a.refresh_token = mx_strdup(p->refresh_token);
	a.oauth_token_url = mx_strdup(p->oauth_token_url);
	a.oauth_client_id = mx_strdup(p->oauth_client_id);
	a.client_secret = mx_strdup(p->oauth_client_secret);
	a.oauth_scope = mx_strdup(p->oauth_scope);
	a.display_name = mx_strdup(p->display_name);
	if ((p->refresh_token == NULL) != (p->oauth_token_url == NULL)) {
		rc = mx_error_set(err, MX_ERR_INVAL,
				  "OAuth2 needs both a refresh token and the "
				  "token endpoint URL");
		goto out;
	}
	a.created = mx_wall_s();
	if (p->insecure_plaintext && a.tls == MX_TLS_STARTTLS)
		a.tls = MX_TLS_NONE; /* explicit opt-in: no STARTTLS */
	rc = mx_account_check_local(&a, NULL, err);
	if (rc == MX_OK)
		rc = mx_account_apply_settings(&a, set, err);
	if (rc == MX_OK)
		rc = mx_store_write(st, add_fn, &a, err);
out:
	mx_account_free(&a);
	return rc;
}

int mx_account_load(struct mx_store *st, const char *name,
		    struct mx_account *a, struct mx_error *err)
{
	struct mx_txn t;
	int rc;

	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_get(&t, name, a, err);
	mx_txn_abort(&t);
	return rc;
}

/* An SMTP endpoint for listings: where, never the password. */
static void smtp_json(json_t *o, const char *key,
		      const struct mx_smtp_server *sv)
{
	json_t *j;

	if (sv->host == NULL)
		return;
	j = json_object();
	json_object_set_new(j, "url", json_string(sv->url));
	json_object_set_new(j, "host", json_string(sv->host));
	json_object_set_new(j, "port", json_integer(sv->port));
	json_object_set_new(j, "tls", json_string(
		sv->tls == MX_TLS_IMPLICIT ? "implicit"
		: sv->tls == MX_TLS_STARTTLS ? "starttls" : "none"));
	if (sv->user)
		json_object_set_new(j, "user", json_string(sv->user));
	if (sv->mechanism)
		json_object_set_new(j, "mechanism", json_string(sv->mechanism));
	json_object_set_new(j, "credentials", json_string(
		sv->password ? "stored"
		: strcmp(key, "smtp") == 0 ? "account" : "none"));
	json_object_set_new(o, key, j);
}

uint64_t mx_account_max_attach(const struct mx_account *a)
{
	return a->max_attach ? a->max_attach : MX_DEFAULT_MAX_ATTACH;
}

int mx_account_list_all(struct mx_store *st, struct mx_account **v_r,
			size_t *n_r, struct mx_error *err)
{
	struct mx_txn t;
	int rc;

	*v_r = NULL;
	*n_r = 0;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_list(&t, v_r, n_r, err);
	mx_txn_abort(&t);
	return rc;
}

void mx_accounts_free(struct mx_account *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mx_account_free(&v[i]);
	free(v);
}

int mx_account_load_id(struct mx_store *st, uint32_t id,
		       struct mx_account *a, struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	int rc;

	memset(a, 0, sizeof(*a));
	rc = mx_account_list_all(st, &v, &n, err);
	if (rc)
		return rc;
	rc = mx_error_set(err, MX_ERR_NOTFOUND, "no account with id %u", id);
	for (size_t i = 0; i < n; i++)
		if (v[i].id == id) {
			*a = v[i];
			memset(&v[i], 0, sizeof(v[i]));
			mx_error_clear(err);
			rc = MX_OK;
			break;
		}
	mx_accounts_free(v, n);
	return rc;
}

enum mx_err mx_account_list_json(struct mx_store *st, char **json_r,
				 struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	json_t *arr;
	int rc;

	rc = mx_account_list_all(st, &v, &n, err);
	if (rc)
		return rc;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		/* Never the password: only where it comes from. */
		json_object_set_new(o, "name", json_string(v[i].name));
		/* The number events carry as "account". */
		json_object_set_new(o, "id", json_integer(v[i].id));
		json_object_set_new(o, "imap", json_string(v[i].imap_url));
		json_object_set_new(o, "host", json_string(v[i].host));
		json_object_set_new(o, "port", json_integer(v[i].port));
		json_object_set_new(o, "user", json_string(v[i].user));
		json_object_set_new(o, "tls",
				    json_string(v[i].tls == MX_TLS_IMPLICIT ? "implicit"
						: v[i].tls == MX_TLS_STARTTLS ? "starttls"
									       : "none"));
		json_object_set_new(o, "credentials",
				    json_string(v[i].refresh_token ? "oauth2"
						: v[i].password ? "stored"
						: v[i].password_file ? "file"
								     : "none"));
		if (v[i].display_name)
			json_object_set_new(o, "display_name",
					    json_string(v[i].display_name));
		json_object_set_new(o, "enabled", json_boolean(!v[i].disabled));
		if (v[i].password_file)
			json_object_set_new(o, "password_file",
					    json_string(v[i].password_file));
		if (v[i].ca_file)
			json_object_set_new(o, "ca_file",
					    json_string(v[i].ca_file));
		json_object_set_new(o, "protocol", json_string(
			v[i].proto == MX_PROTO_POP3 ? "pop3" : "imap"));
		if (v[i].proto == MX_PROTO_POP3)
			json_object_set_new(o, "pop3_delete",
					    json_boolean(v[i].pop3_delete));
		if (mx_account_from(&v[i]))
			json_object_set_new(o, "email",
					    json_string(mx_account_from(&v[i])));
		if (v[i].provider)
			json_object_set_new(o, "provider",
					    json_string(v[i].provider));
		smtp_json(o, "smtp", &v[i].smtp);
		smtp_json(o, "relay", &v[i].relay);
		json_object_set_new(o, "saves_sent", json_boolean(v[i].saves_sent));
		json_object_set_new(o, "daily_limit",
				    json_integer(v[i].daily_limit));
		json_object_set_new(o, "quota_policy", json_string(
			v[i].quota_policy == MX_QUOTA_RELAY ? "relay" : "hold"));
		json_object_set_new(o, "max_attachment", json_integer(
			(json_int_t)mx_account_max_attach(&v[i])));
		{
			static const char *const acc[] = {"owner", "selected",
							  "all"};
			json_t *al = json_array();

			json_object_set_new(o, "access",
					    json_string(acc[v[i].access]));
			if (v[i].owner)
				json_object_set_new(o, "owner",
						    json_string(v[i].owner));
			for (size_t k = 0; k < v[i].nallowed; k++)
				json_array_append_new(al,
					json_string(v[i].allowed[k]));
			json_object_set_new(o, "allowed", al);
		}
		json_object_set_new(o, "created", json_integer(v[i].created));
		json_array_append_new(arr, o);
		mx_account_free(&v[i]);
	}
	free(v);
	*json_r = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(arr);
	return *json_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
}

/* ---- OAuth2 tokens and connecting ---- */

struct put_ctx {
	struct mx_account *a;
};

static int put_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct put_ctx *pc = ctx;
	int rc;

	/* A removed account must not come back through a token refresh of
	 * a sync that was still running. */
	rc = mx_account_check_current(t, pc->a, err);
	return rc ? rc : mx_store_account_put(t, pc->a, err);
}

int mx_account_save(struct mx_store *st, struct mx_account *a,
		    struct mx_error *err)
{
	struct put_ctx pc = {a};

	if (a->id == 0)
		return mx_error_set(err, MX_ERR_INVAL, "account has no id");
	return mx_store_write(st, put_fn, &pc, err);
}

int mx_account_fresh_token(struct mx_store *st, struct mx_account *a,
			   bool force, struct mx_error *err)
{
	struct mx_oauth_cfg cfg = {0};
	struct mx_oauth_token tok = {0};
	int rc;

	if (a->refresh_token == NULL || a->oauth_token_url == NULL)
		return MX_OK; /* password account, or a fixed token */
	/* Refreshed ahead of expiry: a token that dies mid-sync costs a
	 * reconnect. */
	if (!force && a->access_token) {
		/* Two minutes before expiry, or a fifth of a short lifetime. */
		int64_t margin = 120, life = a->token_expires - a->token_refreshed;

		if (a->token_refreshed && life > 0 && life / 5 < margin)
			margin = life / 5;
		if (a->token_expires == 0 || a->token_expires - margin > mx_wall_s())
			return MX_OK;
	}
	cfg.token_url = a->oauth_token_url;
	cfg.client_id = a->oauth_client_id;
	cfg.client_secret = a->client_secret;
	cfg.scope = a->oauth_scope;
	cfg.ca_file = a->ca_file;
	cfg.timeout_s = a->timeout_s > 0 ? a->timeout_s : 15;
	rc = mx_oauth_refresh(&cfg, a->refresh_token, &tok, err);
	if (rc) {
		mx_error_prefix(err, "account %s: token refresh", a->name);
		return rc;
	}
	if (a->access_token)
		memset(a->access_token, 0, strlen(a->access_token));
	free(a->access_token);
	a->access_token = tok.access_token;
	tok.access_token = NULL;
	a->token_expires = tok.expires_at;
	a->token_refreshed = mx_wall_s();
	if (tok.refresh_token) { /* rotated (RFC 6749 6) */
		memset(a->refresh_token, 0, strlen(a->refresh_token));
		free(a->refresh_token);
		a->refresh_token = tok.refresh_token;
		tok.refresh_token = NULL;
	}
	mx_oauth_token_free(&tok);
	mx_debug("account %s: access token refreshed", a->name);
	return st ? mx_account_save(st, a, err) : MX_OK;
}

/* ---- lifecycle ---- */

struct edit_ctx {
	const char *name;
	int (*apply)(struct mx_account *a, const void *arg,
		     struct mx_error *err);
	const void *arg;
};

static int edit_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct edit_ctx *ec = ctx;
	struct mx_account a, old;
	int rc;

	rc = mx_store_account_get(t, ec->name, &a, err);
	if (rc)
		return rc;
	rc = mx_store_account_get(t, ec->name, &old, err);
	if (rc) {
		mx_account_free(&a);
		return rc;
	}
	rc = ec->apply(&a, ec->arg, err);
	if (rc == MX_OK)
		rc = mx_account_check_local(&a, &old, err);
	if (rc == MX_OK)
		rc = mx_store_account_put(t, &a, err);
	mx_account_free(&old);
	mx_account_free(&a);
	return rc;
}

int mx_account_edit(struct mx_store *st, const char *name,
		    int (*apply)(struct mx_account *a, const void *arg,
				 struct mx_error *err),
		    const void *arg, struct mx_error *err)
{
	struct edit_ctx ec = {name, apply, arg};

	return mx_store_write(st, edit_fn, &ec, err);
}

/* Deletes everything the store holds for account ID except its record
 * and what modules above keep (the outbox, through ON_REMOVED): locations, folders,
 * message records and their blob references, the indexes keyed by the
 * account, POP3 unique-ids, daemon state, its events, a kept record. */
static int purge_data(struct mx_txn *t, uint32_t id, struct mx_error *err)
{
	static const enum mx_dbi by_account[] = {
		MX_DB_FOLDER_NAMES, MX_DB_IDENTITY, MX_DB_MSGID,
		MX_DB_THREADREFS, MX_DB_THREADSUBJ, MX_DB_BYDATE, MX_DB_SENDLOG,
	};
	uint8_t k[4], uidl[sizeof("pop3uidl") - 1 + 4];
	struct mx_folder *f = NULL;
	uint64_t *ids = NULL;
	size_t nf = 0, n = 0;
	int rc;

	mx_put_be32(k, id);
	rc = mx_store_folder_list(t, id, &f, &nf, err);
	for (size_t i = 0; rc == MX_OK && i < nf; i++) {
		struct mx_loc *locs = NULL;
		size_t nl = 0;
		uint8_t fk[4];

		rc = mx_store_folder_locs(t, f[i].id, &locs, &nl, err);
		for (size_t j = 0; rc == MX_OK && j < nl; j++)
			rc = mx_store_loc_del(t, f[i].id, locs[j].uid, err);
		mx_locs_free(locs, nl);
		mx_put_be32(fk, f[i].id);
		if (rc == MX_OK)
			rc = mx_db_del(t, MX_DB_FOLDERS, fk, 4, NULL, 0, err);
	}
	mx_folders_free(f, nf);
	if (rc == MX_OK)
		rc = mx_store_account_msgs(t, id, &ids, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n; i++) {
		rc = mx_store_msg_del(t, ids[i], err);
		if (rc == MX_OK)
			rc = mx_store_orphan_del(t, ids[i], err);
		if (rc == MX_ERR_NOTFOUND) /* was not an orphan */
			rc = MX_OK;
	}
	free(ids);
	/* What no message or folder deletion reached (references to mail
	 * that never arrived, entries of records that did not decode). */
	for (size_t i = 0; rc == MX_OK && i < sizeof(by_account) /
						  sizeof(by_account[0]); i++)
		rc = mx_store_del_prefix(t, by_account[i], k, 4, err);
	memcpy(uidl, "pop3uidl", sizeof("pop3uidl") - 1);
	memcpy(uidl + sizeof("pop3uidl") - 1, k, 4);
	if (rc == MX_OK)
		rc = mx_store_del_prefix(t, MX_DB_META, uidl, sizeof(uidl), err);
	if (rc == MX_OK)
		rc = mx_store_del_prefix(t, MX_DB_ACCTSTATE, k, 4, err);
	if (rc == MX_OK)
		rc = mx_store_account_events_del(t, id, err);
	if (rc == MX_OK)
		rc = mx_store_kept_del(t, id, err);
	return rc;
}

/* Purges the kept mail of removed accounts named NAME; *N_R: how many. */
static int purge_kept(struct mx_txn *t, const char *name,
		      mx_account_removed_fn on_removed, size_t *n_r,
		      struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	int rc;

	rc = mx_store_kept_list(t, name, &v, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n; i++) {
		json_t *x = json_object();

		rc = on_removed ? on_removed(t, v[i].id, true, err) : MX_OK;
		if (rc == MX_OK)
			rc = purge_data(t, v[i].id, err);
		json_object_set_new(x, "account_name", json_string(name));
		json_object_set_new(x, "purged", json_true());
		if (rc == MX_OK)
			rc = mx_store_event(t, "account.removed", v[i].id, 0, 0,
					    x, err);
		json_decref(x);
	}
	mx_accounts_free(v, n);
	*n_r = n;
	return rc;
}

struct remove_ctx {
	const char *name;
	bool purge;
	mx_account_removed_fn on_removed;
};

static int remove_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	const struct remove_ctx *rx = ctx;
	const char *name = rx->name;
	bool purge = rx->purge;
	struct mx_account a;
	json_t *x = NULL;
	size_t nkept = 0;
	uint64_t removals;
	uint8_t k[4];
	int rc;

	/* mxsyncd polls this counter to drop a removed account at once. */
	rc = mx_db_next_id(t, MX_ACCOUNT_REMOVALS_KEY, &removals, err);
	if (rc)
		return rc;
	rc = mx_store_account_get(t, name, &a, err);
	if (rc == MX_ERR_NOTFOUND && purge) {
		/* Removed earlier without --purge: its kept mail. */
		mx_error_clear(err);
		rc = purge_kept(t, name, rx->on_removed, &nkept, err);
		if (rc == MX_OK && nkept == 0)
			rc = mx_error_set(err, MX_ERR_NOTFOUND, "no account "
					  "and no kept mail named '%s'", name);
		return rc;
	}
	if (rc)
		return rc;
	/* Its queued mail has nobody to send it any more. */
	if (rx->on_removed) {
		rc = rx->on_removed(t, a.id, purge, err);
		if (rc)
			goto out;
	}
	/* Purge: also what earlier accounts of this name left behind.
	 * Keep: remember where the mail came from, for a re-add. */
	if (purge)
		rc = purge_data(t, a.id, err);
	if (purge && rc == MX_OK)
		rc = purge_kept(t, name, rx->on_removed, &nkept, err);
	if (!purge)
		rc = mx_store_kept_put(t, &a, err);
	if (rc)
		goto out;
	mx_put_be32(k, a.id);
	rc = mx_db_del(t, MX_DB_ACCOUNTS, k, 4, NULL, 0, err);
	if (rc == MX_OK)
		rc = mx_db_del(t, MX_DB_ACCOUNT_NAMES, a.name, strlen(a.name),
			       NULL, 0, err);
	if (rc == MX_OK) {
		int r2 = mx_db_del(t, MX_DB_ACCTSTATE, k, 4, NULL, 0, NULL);

		(void)r2; /* absent unless a daemon ran */
		x = json_object();
		json_object_set_new(x, "account_name", json_string(a.name));
		if (purge)
			json_object_set_new(x, "purged", json_true());
		rc = mx_store_event(t, "account.removed", a.id, 0, 0, x, err);
	}
out:
	json_decref(x);
	mx_account_free(&a);
	return rc;
}

int mx_account_remove(struct mx_store *st, const char *name, bool purge,
		      mx_account_removed_fn on_removed, struct mx_error *err)
{
	struct remove_ctx rx = {name, purge, on_removed};

	return mx_store_write(st, remove_fn, &rx, err);
}

int mx_account_removals(struct mx_store *st, uint64_t *n_r,
			struct mx_error *err)
{
	struct mx_txn t;
	MDB_val v;
	int rc;

	*n_r = 0;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_db_get(&t, MX_DB_META, MX_ACCOUNT_REMOVALS_KEY,
		       strlen(MX_ACCOUNT_REMOVALS_KEY), &v, err);
	if (rc == MX_OK && v.mv_size == 8)
		*n_r = mx_get_be64(v.mv_data);
	else if (rc == MX_OK)
		rc = mx_error_set(err, MX_ERR_STORE, "corrupt counter %s",
				  MX_ACCOUNT_REMOVALS_KEY);
	else if (rc == MX_ERR_NOTFOUND)
		rc = MX_OK;
	mx_txn_abort(&t);
	return rc;
}
