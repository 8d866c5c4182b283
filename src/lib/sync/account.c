/* Accounts: URL parsing, creation, listing. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "sync/sync.h"

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

int mx_account_parse_url(const char *url, struct mx_account *a,
			 struct mx_error *err)
{
	const char *p, *at, *hostp, *end;
	unsigned long port = 0;

	if (strncmp(url, "imaps://", 8) == 0) {
		a->tls = MX_TLS_IMPLICIT;
		p = url + 8;
		a->port = 993;
	} else if (strncmp(url, "imap://", 7) == 0) {
		a->tls = MX_TLS_STARTTLS;
		p = url + 7;
		a->port = 143;
	} else {
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': expected imaps://USER@HOST"
				    "[:PORT] or imap://USER@HOST[:PORT]", url);
	}
	end = p + strcspn(p, "/?#");
	if (*end != '\0' && !(end[0] == '/' && end[1] == '\0'))
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': no path or query allowed",
				    url);
	at = NULL;
	for (const char *q = p; q < end; q++)
		if (*q == '@')
			at = q;
	if (at == NULL || at == p)
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': missing USER@", url);
	hostp = at + 1;
	if (memchr(p, ':', (size_t)(at - p)))
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL: a password does not belong in the "
				    "URL; use --password-file");
	free(a->user);
	a->user = pct_decode(p, (size_t)(at - p));
	if (a->user == NULL)
		return mx_error_set(err, MX_ERR_PARSE, "bad user in URL '%s'",
				    url);
	for (const char *q = a->user; *q; q++)
		if ((unsigned char)*q < 0x20 || *q == 0x7f)
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL: control character in the "
					    "user name");
	free(a->host);
	a->host = NULL;
	if (*hostp == '[') {
		const char *rb = memchr(hostp, ']', (size_t)(end - hostp));

		if (rb == NULL)
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s': unterminated [", url);
		a->host = mx_strndup(hostp + 1, (size_t)(rb - hostp - 1));
		hostp = rb + 1;
		if (hostp < end && *hostp != ':')
			return mx_error_set(err, MX_ERR_PARSE,
					    "bad URL '%s'", url);
	} else {
		const char *colon = memchr(hostp, ':', (size_t)(end - hostp));
		const char *hend = colon ? colon : end;

		a->host = mx_strndup(hostp, (size_t)(hend - hostp));
		hostp = hend;
	}
	if (a->host == NULL || a->host[0] == '\0')
		return mx_error_set(err, MX_ERR_PARSE,
				    "bad URL '%s': missing host", url);
	for (const char *q = a->host; *q; q++)
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
		a->port = (uint16_t)port;
	}
	return MX_OK;
}

static bool valid_name(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(isalnum((unsigned char)n[i]) || strchr("._-", n[i])))
			return false;
	return true;
}

static int add_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct mx_account *a = ctx;

	a->id = 0; /* a MAP_FULL retry must assign it again */
	return mx_store_account_put(t, a, err);
}

enum mx_err mx_account_add(struct mx_store *st,
			   const struct mx_account_params *p,
			   struct mx_error *err)
{
	struct mx_account a = {0};
	int rc;

	mx_error_clear(err);
	if (p->name == NULL || !valid_name(p->name))
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
	a.created = mx_wall_s();
	if (p->insecure_plaintext && a.tls == MX_TLS_STARTTLS)
		a.tls = MX_TLS_NONE; /* explicit opt-in: no STARTTLS */
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

enum mx_err mx_account_list_json(struct mx_store *st, char **json_r,
				 struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	struct mx_txn t;
	json_t *arr;
	int rc;

	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_list(&t, &v, &n, err);
	mx_txn_abort(&t);
	if (rc)
		return rc;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();

		/* Never the password: only where it comes from. */
		json_object_set_new(o, "name", json_string(v[i].name));
		json_object_set_new(o, "imap", json_string(v[i].imap_url));
		json_object_set_new(o, "host", json_string(v[i].host));
		json_object_set_new(o, "port", json_integer(v[i].port));
		json_object_set_new(o, "user", json_string(v[i].user));
		json_object_set_new(o, "tls",
				    json_string(v[i].tls == MX_TLS_IMPLICIT ? "implicit"
						: v[i].tls == MX_TLS_STARTTLS ? "starttls"
									       : "none"));
		json_object_set_new(o, "credentials",
				    json_string(v[i].password ? "stored"
						: v[i].password_file ? "file"
								     : "none"));
		if (v[i].password_file)
			json_object_set_new(o, "password_file",
					    json_string(v[i].password_file));
		if (v[i].ca_file)
			json_object_set_new(o, "ca_file",
					    json_string(v[i].ca_file));
		json_object_set_new(o, "created", json_integer(v[i].created));
		json_array_append_new(arr, o);
		mx_account_free(&v[i]);
	}
	free(v);
	*json_r = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(arr);
	return *json_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
}
