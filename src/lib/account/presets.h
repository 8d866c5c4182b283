/*
 * Provider presets: what `mxsync account add --provider P --email A` fills
 * in.  Values are defaults an operator can override with the explicit
 * options; limits are the providers' published daily sending limits at the
 * time of writing (used by the sending issue's quota).
 */
#ifndef MX_PRESETS_H
#define MX_PRESETS_H

#include <stdbool.h>

#define MX_AUTH_PLAIN 0x1u       /* LOGIN / AUTH=PLAIN with a password */
#define MX_AUTH_XOAUTH2 0x2u
#define MX_AUTH_OAUTHBEARER 0x4u

struct mx_preset {
	const char *name;
	const char *imap_host;     /* NULL: derived from the address (generic) */
	int imap_port;
	bool imap_implicit_tls;    /* false: STARTTLS */
	const char *smtp_host;
	int smtp_port;
	bool smtp_implicit_tls;
	unsigned auth;             /* MX_AUTH_* the provider accepts */
	const char *token_url;     /* OAuth2, NULL if none */
	const char *device_url;
	const char *auth_url;
	const char *scope;
	bool saves_sent;           /* server files SMTP-sent mail in Sent */
	int daily_limit;           /* messages per rolling 24 h, 0 = unknown */
	const char *note;
};

/* NULL if unknown. */
const struct mx_preset *mx_preset_find(const char *name);
/* The table, terminated by an entry with name == NULL. */
const struct mx_preset *mx_presets(void);

#endif
