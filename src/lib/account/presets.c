/* The provider presets table (see presets.h). */
#include <string.h>
#include <strings.h>

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
