/* The provider presets table (see presets.h) and what a preset fills in
 * for an account (mx_account_preset_fill(), account.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "account/account.h"
#include "account/presets.h"

static const struct mx_preset table[] = {
	{
		.name = "gmail",
		.imap_host = "imap.gmail.com", .imap_port = 993,
		.imap_implicit_tls = true,
		.smtp_host = "smtp.gmail.com", .smtp_port = 465,
		.smtp_implicit_tls = true,
		.auth = MX_AUTH_XOAUTH2 | MX_AUTH_OAUTHBEARER,
		.token_url = "https://oauth2.googleapis.com/token",
		.device_url = "https://oauth2.googleapis.com/device/code",
		.auth_url = "https://accounts.google.com/o/oauth2/v2/auth",
		.scope = "https://mail.google.com/",
		.saves_sent = true,
		.daily_limit = 500,
		.note = "Google Workspace accounts: 2000 per day",
	},
	{
		.name = "outlook",
		.imap_host = "outlook.office365.com", .imap_port = 993,
		.imap_implicit_tls = true,
		.smtp_host = "smtp.office365.com", .smtp_port = 587,
		.smtp_implicit_tls = false,
		.auth = MX_AUTH_XOAUTH2,
		.token_url = "https://login.microsoftonline.com/common/oauth2/v2.0/token",
		.device_url = "https://login.microsoftonline.com/common/oauth2/v2.0/devicecode",
		.auth_url = "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
		.scope = "https://outlook.office.com/IMAP.AccessAsUser.All "
			 "https://outlook.office.com/SMTP.Send offline_access",
		.saves_sent = true,
		.daily_limit = 10000,
		.note = "Microsoft 365; outlook.com consumer accounts: 300 per day",
	},
	{
		.name = "yahoo",
		.imap_host = "imap.mail.yahoo.com", .imap_port = 993,
		.imap_implicit_tls = true,
		.smtp_host = "smtp.mail.yahoo.com", .smtp_port = 465,
		.smtp_implicit_tls = true,
		.auth = MX_AUTH_XOAUTH2 | MX_AUTH_PLAIN,
		.token_url = "https://api.login.yahoo.com/oauth2/get_token",
		.auth_url = "https://api.login.yahoo.com/oauth2/request_auth",
		.scope = "mail-w",
		.saves_sent = false,
		.daily_limit = 500,
		.note = "PLAIN needs an app password",
	},
	{
		.name = "icloud",
		.imap_host = "imap.mail.me.com", .imap_port = 993,
		.imap_implicit_tls = true,
		.smtp_host = "smtp.mail.me.com", .smtp_port = 587,
		.smtp_implicit_tls = false,
		.auth = MX_AUTH_PLAIN,
		.saves_sent = false,
		.daily_limit = 1000,
		.note = "app-specific password; no OAuth2 for IMAP",
	},
	{
		.name = "fastmail",
		.imap_host = "imap.fastmail.com", .imap_port = 993,
		.imap_implicit_tls = true,
		.smtp_host = "smtp.fastmail.com", .smtp_port = 465,
		.smtp_implicit_tls = true,
		.auth = MX_AUTH_PLAIN,
		.saves_sent = false,
		.daily_limit = 1000,
		.note = "app password; limit depends on the plan",
	},
	{
		.name = "generic",
		.imap_host = NULL, .imap_port = 993, .imap_implicit_tls = true,
		.smtp_host = NULL, .smtp_port = 587, .smtp_implicit_tls = false,
		.auth = MX_AUTH_PLAIN | MX_AUTH_XOAUTH2 | MX_AUTH_OAUTHBEARER,
		.saves_sent = false,
		.daily_limit = 0,
		.note = "hosts from the address's domain (imap.DOMAIN, smtp.DOMAIN)",
	},
	{.name = NULL},
};

const struct mx_preset *mx_presets(void)
{
	return table;
}

const struct mx_preset *mx_preset_find(const char *name)
{
	for (const struct mx_preset *p = table; p->name; p++)
		if (strcasecmp(p->name, name) == 0)
			return p;
	return NULL;
}

/* Gmail's limit depends on the account kind: consumer addresses are
 * @gmail.com / @googlemail.com, anything else is Google Workspace. */
static int preset_daily_limit(const struct mx_preset *pr, const char *email)
{
	const char *dom = strrchr(email, '@');

	if (strcmp(pr->name, "gmail") == 0 && dom &&
	    strcasecmp(dom + 1, "gmail.com") != 0 &&
	    strcasecmp(dom + 1, "googlemail.com") != 0)
		return 2000;
	return pr->daily_limit;
}

void mx_preset_fill_free(struct mx_preset_fill *f)
{
	free(f->imap_url);
	free(f->smtp_url);
	memset(f, 0, sizeof(*f));
}

int mx_account_preset_fill(const char *provider, const char *email,
			   bool oauth_pending, struct mx_account_params *p,
			   struct mx_account_settings *s,
			   struct mx_preset_fill *f, struct mx_error *err)
{
	const struct mx_preset *pr = mx_preset_find(provider);
	const char *dom = email ? strrchr(email, '@') : NULL;
	char host[300];

	memset(f, 0, sizeof(*f));
	if (pr == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "unknown provider '%s' "
				    "(see 'mxsync providers')", provider);
	if (email == NULL || dom == NULL || dom == email || dom[1] == '\0')
		return mx_error_set(err, MX_ERR_INVAL, "provider %s needs the "
				    "address (email) as USER@DOMAIN", pr->name);
	if (!(pr->auth & MX_AUTH_PLAIN) && p->refresh_token == NULL &&
	    !oauth_pending)
		return mx_error_set(err, MX_ERR_INVAL, "%s accepts only OAuth2: "
				    "give a refresh token (and the client id)",
				    pr->name);
	s->provider = pr->name;
	if (s->smtp_url == NULL) {
		snprintf(host, sizeof(host), "%s%s",
			 pr->smtp_host ? pr->smtp_host : "smtp.",
			 pr->smtp_host ? "" : dom + 1);
		/* The user part is percent-encoded by nobody here: the URL
		 * parser takes the last '@' as the split. */
		if (asprintf(&f->smtp_url, "%s://%s@%s:%d",
			     pr->smtp_implicit_tls ? "smtps" : "smtp", email,
			     host, pr->smtp_port) < 0) {
			f->smtp_url = NULL;
			goto nomem;
		}
		s->smtp_url = f->smtp_url;
	}
	if (s->saves_sent == NULL)
		s->saves_sent = pr->saves_sent ? "yes" : "no";
	if (s->daily_limit == NULL) {
		snprintf(f->daily_limit, sizeof(f->daily_limit), "%d",
			 preset_daily_limit(pr, email));
		s->daily_limit = f->daily_limit;
	}
	if (p->imap_url == NULL) {
		snprintf(host, sizeof(host), "%s%s",
			 pr->imap_host ? pr->imap_host : "imap.",
			 pr->imap_host ? "" : dom + 1);
		if (asprintf(&f->imap_url, "%s://%s@%s:%d",
			     pr->imap_implicit_tls ? "imaps" : "imap", email,
			     host, pr->imap_port) < 0) {
			f->imap_url = NULL;
			goto nomem;
		}
		p->imap_url = f->imap_url;
	}
	if (p->refresh_token == NULL && !oauth_pending) {
		p->oauth_token_url = NULL; /* password login */
	} else {
		if (p->oauth_token_url == NULL)
			p->oauth_token_url = pr->token_url;
		if (p->oauth_scope == NULL)
			p->oauth_scope = pr->scope;
	}
	return MX_OK;
nomem:
	mx_preset_fill_free(f);
	return mx_error_set(err, MX_ERR_NOMEM, NULL);
}
