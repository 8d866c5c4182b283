/* Account settings (`account add` and `edit`): every value checked before
 * any is applied; what an operator types outside them
 * (mx_account_check_local()). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <string.h>

#include <openssl/crypto.h>

#include "auth/oauth.h"
#include "account/presets.h"
#include "account/account.h"

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
	if (access == MX_ACCESS_SELECTED && s->nallow == 0 &&
	    (a->nallowed == 0 || s->allow_set))
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
	if (s->nallow || s->allow_set) {
		allowed = calloc(s->nallow + 1, sizeof(*allowed));
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

uint64_t mx_account_max_attach(const struct mx_account *a)
{
	return a->max_attach ? a->max_attach : MX_DEFAULT_MAX_ATTACH;
}
