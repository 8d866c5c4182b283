/* mxsync account add|list */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth/oauth.h"
#include "backends/backend.h"
#include "cli/cli.h"
#include "discover/discover.h"
#include "events/events.h"
#include "secrets/secrets.h"
#include "send/outbox.h"
#include "account/presets.h"
#include "account/account.h"

static const char usage[] =
	"usage: mxsync account add NAME --imap imaps://USER@HOST[:PORT]\n"
	"                 | --pop3 pop3s://USER@HOST[:PORT]\n"
	"                 | --provider gmail|outlook|yahoo|icloud|fastmail|generic\n"
	"                   --email USER@DOMAIN\n"
	"                 | --email USER@DOMAIN (servers discovered: SRV, autoconfig)\n"
	"                 [--password-file FILE] [--ca-file FILE]\n"
	"                 [--insecure-plaintext] [--timeout SECONDS]\n"
	"                 [--display-name NAME]\n"
	"                 [--oauth-token-url URL --refresh-token-file FILE\n"
	"                  [--oauth-client-id ID] [--oauth-client-secret-file FILE]\n"
	"                  [--oauth-scope SCOPE]]\n"
	"                 [SETTINGS]\n"
	"       mxsync account add NAME --provider gmail --email ADDR --mode api\n"
	"                 [--api-url URL] --refresh-token-file FILE [OAuth2 options]\n"
	"       mxsync account discover EMAIL [--json]\n"
	"       mxsync account list [--json]\n"
	"       mxsync account edit NAME [--imap URL|--pop3 URL] [--password-file FILE]\n"
	"                 [--ca-file FILE] [--display-name NAME]\n"
	"                 [--refresh-token-file FILE] [SETTINGS]\n"
	"       mxsync account disable|enable NAME\n"
	"       mxsync account remove NAME [--purge]\n"
	"       mxsync account reauth NAME\n"
	"       mxsync account oauth NAME --device|--pkce [--device-url URL]\n"
	"                 [--auth-url URL] [--oauth-client-id ID]\n"
	"                 [--oauth-client-secret-file FILE] [--timeout S]\n"
	"SETTINGS (add and edit):\n"
	"  --email ADDR               From address (default: the user name)\n"
	"  --smtp URL                 smtps://[USER@]HOST[:465] or smtp://[USER@]HOST[:587]\n"
	"  --smtp-password-file FILE  SMTP password if not the account's\n"
	"  --smtp-mechanism MECH      force PLAIN, LOGIN, XOAUTH2 or OAUTHBEARER\n"
	"  --relay URL                fallback relay (quota overflow, bulk mail)\n"
	"  --relay-password-file FILE\n"
	"  --saves-sent yes|no        the server files sent mail in Sent itself\n"
	"  --daily-limit N            messages per rolling 24 h (0 = none)\n"
	"  --quota-policy hold|relay  over the limit: wait, or use the relay\n"
	"  --max-attachment SIZE      total attachment size (default 25M)\n"
	"  --pop3-delete | --pop3-keep  POP3: delete mail on the server once stored\n"
	"  --access owner|selected|all, --owner USER, --allow USER (repeatable)\n"
	"\n"
	"imaps:// is implicit TLS (port 993), imap:// is STARTTLS (port 143,\n"
	"required); pop3s:// (995) and pop3:// (110, STLS required) likewise.\n"
	"--insecure-plaintext allows an imap:// account to log in\n"
	"without TLS (e.g. a loopback test server).  The password is read from\n"
	"--password-file at each sync (first line), or, without it, from the\n"
	"MXSYNC_PASSWORD environment variable at 'account add' time.  With\n"
	"--oauth-token-url and --refresh-token-file the account logs in with\n"
	"OAuth2 (AUTHENTICATE OAUTHBEARER or XOAUTH2), refreshing the access\n"
	"token itself.  Secrets are stored encrypted (AES-256-GCM).\n"
	"--provider fills in the IMAP and SMTP servers, OAuth2 endpoints, Sent\n"
	"behaviour and daily limit; explicit options win.\n"
	"--mode api (Gmail): the Gmail REST API instead of IMAP; the store keeps\n"
	"only each message's id, thread, sender, date and labels; 'show' fetches\n"
	"the message live.  --api-url (default https://gmail.googleapis.com;\n"
	"http:// only to a loopback address).  Scopes: listing needs\n"
	"gmail.metadata, 'show' gmail.readonly, label changes gmail.modify\n"
	"(--oauth-scope; default https://mail.google.com/).\n"
	"edit keeps the stored mail; remove keeps it too unless --purge.\n"
	"reauth logs in once with the account's current credentials (after\n"
	"'account edit' or 'account oauth') and, if that works, tells a\n"
	"running mxsyncd to take the account out of auth_failed.\n";

/* First line of FILE, malloc()ed; NULL with a message on error. */
static char *read_secret_file(const char *path)
{
	struct mx_error err;
	char *data = NULL;
	size_t len = 0;

	if (mx_read_file(path, 65536, &data, &len, &err) != MX_OK) {
		fprintf(stderr, "mxsync: %s\n", err.detail);
		return NULL;
	}
	data[strcspn(data, "\r\n")] = '\0';
	return data;
}


/* Settings options shared by add and edit (struct mx_account_settings),
 * with the secrets read from files kept here to be wiped afterwards. */
struct settings_args {
	struct mx_account_settings s;
	const char **allow;
	char *smtp_pw, *relay_pw;
};

static void settings_args_free(struct settings_args *sa)
{
	mx_secret_free(sa->smtp_pw);
	mx_secret_free(sa->relay_pw);
	free(sa->allow);
	memset(sa, 0, sizeof(*sa));
}

/* 1: argv[*I] was a setting (its value consumed), 0: not one, -1: error
 * (printed). */
static int settings_opt(int argc, char **argv, int *i, struct settings_args *sa)
{
	static const struct {
		const char *opt;
		size_t off;
	} plain[] = {
		{"--email", offsetof(struct mx_account_settings, email)},
		{"--smtp", offsetof(struct mx_account_settings, smtp_url)},
		{"--relay", offsetof(struct mx_account_settings, relay_url)},
		{"--saves-sent", offsetof(struct mx_account_settings, saves_sent)},
		{"--daily-limit", offsetof(struct mx_account_settings, daily_limit)},
		{"--quota-policy", offsetof(struct mx_account_settings, quota_policy)},
		{"--max-attachment", offsetof(struct mx_account_settings, max_attach)},
		{"--access", offsetof(struct mx_account_settings, access)},
		{"--owner", offsetof(struct mx_account_settings, owner)},
		{"--smtp-mechanism",
		 offsetof(struct mx_account_settings, smtp_mechanism)},
	};
	const char *a = argv[*i];
	bool has_val = *i + 1 < argc;

	for (size_t k = 0; k < MX_ARRAY_SIZE(plain); k++)
		if (strcmp(a, plain[k].opt) == 0 && has_val) {
			*(const char **)((char *)&sa->s + plain[k].off) =
				argv[++*i];
			return 1;
		}
	if (strcmp(a, "--pop3-delete") == 0 || strcmp(a, "--pop3-keep") == 0) {
		sa->s.pop3_delete = a[7] == 'd' ? "yes" : "no";
		return 1;
	}
	if (strcmp(a, "--allow") == 0 && has_val) {
		if (sa->allow == NULL &&
		    (sa->allow = calloc((size_t)argc, sizeof(char *))) == NULL)
			return -1;
		sa->allow[sa->s.nallow++] = argv[++*i];
		sa->s.allow = sa->allow;
		return 1;
	}
	if ((strcmp(a, "--smtp-password-file") == 0 ||
	     strcmp(a, "--relay-password-file") == 0) && has_val) {
		char **slot = a[2] == 's' ? &sa->smtp_pw : &sa->relay_pw;

		free(*slot);
		if ((*slot = read_secret_file(argv[++*i])) == NULL)
			return -1;
		if (a[2] == 's')
			sa->s.smtp_password = *slot;
		else
			sa->s.relay_password = *slot;
		return 1;
	}
	return 0;
}

/*
 * `account add NAME --email ADDR` without servers: RFC 6186 SRV records,
 * then the autoconfig document (src/lib/discover).  Fills the incoming
 * URL (IMAP preferred, else POP3) and, unless given, the SMTP URL.
 */
static int discover_servers(const char *email, struct mx_account_params *p,
			    struct settings_args *sa, char **in_url,
			    char **smtp_url)
{
	struct mx_discover_opts o = {0};
	struct mx_discovery d = {0};
	const struct mx_disc_server *in, *out;
	struct mx_error err;
	int rc = MX_EXIT_OK;

	o.dns_server = getenv("MXSYNC_DNS_SERVER");
	o.connect_to = getenv("MXSYNC_DISCOVER_CONNECT_TO");
	o.ca_file = p->ca_file;
	o.timeout_s = p->timeout_s;
	if (mx_discover(email, &o, &d, &err) != MX_OK) {
		mx_discovery_free(&d); /* the log of what was tried */
		return cli_fail(&err);
	}
	in = mx_discovery_best(&d, "imap");
	if (in == NULL)
		in = mx_discovery_best(&d, "pop3");
	out = mx_discovery_best(&d, "smtp");
	if (in == NULL) {
		fprintf(stderr, "mxsync: account add: no IMAP or POP3 server "
				"found for %s (only SMTP); give --imap URL\n%s",
			email, d.log);
		mx_discovery_free(&d);
		return MX_EXIT_NOTFOUND;
	}
	*in_url = mx_disc_url(in, email);
	if (out && sa->s.smtp_url == NULL) {
		*smtp_url = mx_disc_url(out, email);
		sa->s.smtp_url = *smtp_url;
	}
	if (*in_url == NULL || (out && sa->s.smtp_url == NULL)) {
		mx_discovery_free(&d);
		return MX_EXIT_FAIL;
	}
	p->imap_url = *in_url;
	printf("discovered %s (%s)\n", cli_safe(*in_url), in->source);
	if (out && *smtp_url)
		printf("discovered %s (%s)\n", cli_safe(*smtp_url), out->source);
	for (const struct mx_disc_server *sv = in; sv; sv = sv == in ? out : NULL)
		if (sv->foreign_domain)
			fprintf(stderr, "mxsync: warning: %s is outside %s's "
					"domain and DNS answers are not "
					"authenticated: check that it is your "
					"provider's server\n", cli_safe(sv->host), email);
	mx_discovery_free(&d);
	return rc;
}

/*
 * The incoming URL of an API-mode account of preset PR for EMAIL:
 * gmail+https://EMAIL@HOST[:PORT] from API_URL (NULL: Google's), which
 * must be https://, or http:// to a loopback address (the OAuth2 URL
 * rule), with no path.  *URL_R malloc()ed.
 */
static int api_mode_url(const struct mx_preset *pr, const char *email,
			const char *api_url, char **url_r)
{
	struct mx_error err;
	const char *rest;

	if (strcmp(pr->name, "gmail") != 0) {
		fprintf(stderr, "mxsync: account add: --mode api exists for "
				"--provider gmail only\n");
		return MX_EXIT_USAGE;
	}
	if (api_url == NULL)
		api_url = "https://gmail.googleapis.com";
	if (mx_oauth_check_url("--api-url", api_url, &err) != MX_OK)
		return cli_fail(&err);
	rest = api_url + (strncmp(api_url, "https://", 8) == 0 ? 8 : 7);
	if (*rest == '\0' || strcspn(rest, "/?#@") != strlen(rest) -
	    (rest[strlen(rest) - 1] == '/')) {
		fprintf(stderr, "mxsync: account add: bad --api-url '%s': give "
				"https://HOST[:PORT] (no path)\n",
			cli_safe(api_url));
		return MX_EXIT_USAGE;
	}
	if (asprintf(url_r, "gmail+%.*s%s@%.*s",
		     (int)(rest - api_url), api_url, email,
		     (int)strcspn(rest, "/"), rest) < 0)
		return MX_EXIT_FAIL;
	return MX_EXIT_OK;
}

static int account_add(struct cli *c, int argc, char **argv)
{
	struct mx_account_params p = {0};
	struct settings_args sa = {0};
	struct mx_store *st;
	struct mx_error err;
	struct mx_preset_fill pf = {0};
	char *refresh = NULL, *csecret = NULL, *url = NULL, *smtp_url = NULL;
	const char *provider = NULL, *email = NULL, *pop3 = NULL;
	const char *mode = NULL, *api_url = NULL;
	int rc = 0, r;

	if (argc < 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	p.name = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--imap") == 0 && i + 1 < argc)
			p.imap_url = argv[++i];
		else if (strcmp(a, "--pop3") == 0 && i + 1 < argc)
			pop3 = argv[++i];
		else if (strcmp(a, "--password-file") == 0 && i + 1 < argc)
			p.password_file = argv[++i];
		else if (strcmp(a, "--ca-file") == 0 && i + 1 < argc)
			p.ca_file = argv[++i];
		else if (strcmp(a, "--insecure-plaintext") == 0)
			p.insecure_plaintext = true;
		else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
			uint64_t v;

			if (!cli_number("account add", "--timeout", argv[++i],
					1, CLI_TIMEOUT_MAX, &v)) {
				rc = MX_EXIT_USAGE;
				goto out;
			}
			p.timeout_s = (int)v;
		} else if (strcmp(a, "--display-name") == 0 && i + 1 < argc)
			p.display_name = argv[++i];
		else if (strcmp(a, "--provider") == 0 && i + 1 < argc)
			provider = argv[++i];
		else if (strcmp(a, "--mode") == 0 && i + 1 < argc)
			mode = argv[++i];
		else if (strcmp(a, "--api-url") == 0 && i + 1 < argc)
			api_url = argv[++i];
		else if (strcmp(a, "--oauth-token-url") == 0 && i + 1 < argc)
			p.oauth_token_url = argv[++i];
		else if (strcmp(a, "--oauth-client-id") == 0 && i + 1 < argc)
			p.oauth_client_id = argv[++i];
		else if (strcmp(a, "--oauth-scope") == 0 && i + 1 < argc)
			p.oauth_scope = argv[++i];
		else if (strcmp(a, "--refresh-token-file") == 0 && i + 1 < argc) {
			free(refresh);
			if ((refresh = read_secret_file(argv[++i])) == NULL)
				return MX_EXIT_USAGE;
			p.refresh_token = refresh;
		} else if (strcmp(a, "--oauth-client-secret-file") == 0 && i + 1 < argc) {
			free(csecret);
			if ((csecret = read_secret_file(argv[++i])) == NULL)
				return MX_EXIT_USAGE;
			p.oauth_client_secret = csecret;
		} else if (cli_is_help(a)) {
			fputs(usage, stdout);
			rc = MX_EXIT_OK;
			goto out;
		} else if ((r = settings_opt(argc, argv, &i, &sa)) != 1) {
			if (r == 0)
				fprintf(stderr, "mxsync: account add: bad "
						"argument '%s'\n%s", a, usage);
			rc = MX_EXIT_USAGE;
			goto out;
		}
	}
	email = sa.s.email;
	if ((mode || api_url) &&
	    (provider == NULL || pop3 || p.imap_url ||
	     (mode && strcmp(mode, "api") != 0 && strcmp(mode, "imap") != 0))) {
		fprintf(stderr, "mxsync: account add: --mode takes api or imap, "
				"with --provider gmail (and --api-url only with "
				"--mode api), not with --imap/--pop3\n");
		rc = MX_EXIT_USAGE;
		goto out;
	}
	if (mode && strcmp(mode, "imap") == 0)
		mode = NULL;
	if (api_url && mode == NULL) {
		fprintf(stderr, "mxsync: account add: --api-url needs --mode "
				"api\n");
		rc = MX_EXIT_USAGE;
		goto out;
	}
	if (pop3 && p.imap_url) {
		fprintf(stderr, "mxsync: account add: give --imap or --pop3, "
				"not both\n");
		rc = MX_EXIT_USAGE;
		goto out;
	}
	if (pop3) {
		if (strncmp(pop3, "pop3://", 7) != 0 &&
		    strncmp(pop3, "pop3s://", 8) != 0) {
			fprintf(stderr, "mxsync: account add: --pop3 takes "
					"pop3s://USER@HOST[:PORT] or "
					"pop3://USER@HOST[:PORT]\n");
			rc = MX_EXIT_USAGE;
			goto out;
		}
		p.imap_url = pop3;
	} else if (p.imap_url && strncmp(p.imap_url, "pop3", 4) == 0) {
		fprintf(stderr, "mxsync: account add: use --pop3 for a POP3 "
				"URL\n");
		rc = MX_EXIT_USAGE;
		goto out;
	}
	if (provider) {
		const struct mx_preset *pr = mx_preset_find(provider);

		if (mode && pr && email && strchr(email, '@') &&
		    p.imap_url == NULL) {
			rc = api_mode_url(pr, email, api_url, &url);
			if (rc != MX_EXIT_OK)
				goto out;
			p.imap_url = url;
		}
		if (mx_account_preset_fill(provider, email, false, &p, &sa.s,
					   &pf, &err) != MX_OK) {
			rc = cli_fail(&err);
			goto out;
		}
	}
	if (p.imap_url == NULL && email != NULL) {
		rc = discover_servers(email, &p, &sa, &url, &smtp_url);
		if (rc != MX_EXIT_OK)
			goto out;
	}
	if (p.imap_url == NULL) {
		fprintf(stderr, "mxsync: account add: --imap URL (or --provider "
				"and --email) is required\n");
		rc = MX_EXIT_USAGE;
		goto out;
	}
	if (p.password_file == NULL && p.refresh_token == NULL)
		p.password = getenv("MXSYNC_PASSWORD");
	if (p.password_file == NULL && p.password == NULL &&
	    p.refresh_token == NULL) {
		fprintf(stderr, "mxsync: account add: give --password-file, "
				"set MXSYNC_PASSWORD, or use OAuth2 "
				"(--oauth-token-url + --refresh-token-file)\n");
		rc = MX_EXIT_USAGE;
		goto out;
	}
	if (p.insecure_plaintext)
		fprintf(stderr, "mxsync: warning: account %s will log in "
				"without TLS (--insecure-plaintext)\n", p.name);
	st = cli_open(c, &rc);
	if (st == NULL)
		goto out;
	if (mx_account_add_with(st, &p, &sa.s, &err) != MX_OK)
		rc = cli_fail(&err);
	else
		printf("account %s added\n", p.name);
	mx_store_close(&st);
out:
	settings_args_free(&sa);
	mx_preset_fill_free(&pf);
	free(smtp_url);
	mx_secret_free(refresh);
	mx_secret_free(csecret);
	free(url);
	return rc;
}

/* `mxsync providers [--json]` lives here: it is about adding accounts. */
int cli_providers(struct cli *c, int argc, char **argv)
{
	bool json = argc > 1 && strcmp(argv[1], "--json") == 0;
	json_t *arr = json_array();

	(void)c;
	for (const struct mx_preset *p = mx_presets(); p->name; p++) {
		json_t *o = json_object(), *auth = json_array();

		if (p->auth & MX_AUTH_PLAIN)
			json_array_append_new(auth, json_string("PLAIN"));
		if (p->auth & MX_AUTH_XOAUTH2)
			json_array_append_new(auth, json_string("XOAUTH2"));
		if (p->auth & MX_AUTH_OAUTHBEARER)
			json_array_append_new(auth, json_string("OAUTHBEARER"));
		json_object_set_new(o, "name", json_string(p->name));
		json_object_set_new(o, "imap", p->imap_host ? json_sprintf("%s:%d %s",
				    p->imap_host, p->imap_port,
				    p->imap_implicit_tls ? "TLS" : "STARTTLS")
				    : json_sprintf("imap.DOMAIN:%d", p->imap_port));
		json_object_set_new(o, "smtp", p->smtp_host ? json_sprintf("%s:%d %s",
				    p->smtp_host, p->smtp_port,
				    p->smtp_implicit_tls ? "TLS" : "STARTTLS")
				    : json_sprintf("smtp.DOMAIN:%d", p->smtp_port));
		json_object_set_new(o, "auth", auth);
		if (p->token_url)
			json_object_set_new(o, "token_url", json_string(p->token_url));
		if (p->scope)
			json_object_set_new(o, "scope", json_string(p->scope));
		json_object_set_new(o, "saves_sent", json_boolean(p->saves_sent));
		json_object_set_new(o, "daily_limit", json_integer(p->daily_limit));
		if (p->note)
			json_object_set_new(o, "note", json_string(p->note));
		json_array_append_new(arr, o);
	}
	if (json) {
		cli_print_json(arr, "[]");
	} else {
		size_t i;
		json_t *o;

		json_array_foreach(arr, i, o) {
			char *au = json_dumps(json_object_get(o, "auth"), JSON_COMPACT);

			printf("%-9s %-32s %-30s %-26s %5lld/day%s\n",
			       json_string_value(json_object_get(o, "name")),
			       json_string_value(json_object_get(o, "imap")),
			       json_string_value(json_object_get(o, "smtp")),
			       au ? au : "",
			       (long long)json_integer_value(json_object_get(o, "daily_limit")),
			       json_is_true(json_object_get(o, "saves_sent"))
				       ? "  saves Sent" : "");
			free(au);
		}
	}
	json_decref(arr);
	return MX_EXIT_OK;
}

/* ---- account reauth ---- */

static int reauth_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	const struct mx_account *a = ctx;

	/* The daemon looks for this mark while the account is in
	 * auth_failed (src/daemon/main.c, check_reauth). */
	return mx_acctstate_request_reauth(t, a->id, err);
}

static int account_reauth(struct cli *c, int argc, char **argv)
{
	const struct mx_backend_ops *be = NULL;
	struct mx_account a = {0};
	struct mx_conn *conn = NULL;
	struct mx_store *st;
	struct mx_error err;
	int rc = 0;

	if (argc != 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_account_load(st, argv[1], &a, &err) != MX_OK ||
	    mx_account_fresh_token(st, &a, a.refresh_token != NULL, &err) != MX_OK ||
	    mx_backend_connect(st, &a, &be, &conn, &err) != MX_OK ||
	    mx_store_write(st, reauth_fn, &a, &err) != MX_OK) {
		rc = cli_fail(&err);
	} else {
		printf("account %s: login OK; a running mxsyncd will reconnect "
		       "it within a second\n", a.name);
	}
	if (conn)
		be->disconnect(&conn);
	mx_account_free(&a);
	mx_store_close(&st);
	return rc;
}

/* ---- account oauth: obtain the first token ---- */

static volatile int oauth_cancel;

static void oauth_sig(int sig)
{
	(void)sig;
	oauth_cancel = 1;
}

static void show_url(const char *url, void *ctx)
{
	(void)ctx;
	printf("Open this URL in a browser and approve the access:\n  %s\n"
	       "Waiting for the browser to come back to this machine...\n",
	       cli_safe(url));
	fflush(stdout);
}

struct token_set {
	const struct mx_oauth_token *tok;
	const char *token_url, *client_id, *scope;
};

static int apply_tokens(struct mx_account *a, const void *arg,
			struct mx_error *err)
{
	const struct token_set *ts = arg;

	return mx_account_set_tokens(a, ts->tok, ts->token_url,
				     ts->client_id, ts->scope, err);
}

static int account_oauth(struct cli *c, int argc, char **argv)
{
	struct mx_oauth_cfg cfg = {0};
	struct mx_oauth_token tok = {0};
	struct mx_account a = {0};
	struct mx_store *st;
	struct mx_error err;
	const struct mx_preset *pr = NULL;
	char *csecret = NULL;
	bool device = false, pkce = false;
	int timeout = 300, rc = 0;

	if (argc < 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_account_load(st, argv[1], &a, &err) != MX_OK) {
		rc = cli_fail(&err);
		goto out;
	}
	/* Defaults from the account, then from a preset matching its host. */
	for (const struct mx_preset *p = mx_presets(); p->name; p++)
		if (p->imap_host && a.host && strcasecmp(p->imap_host, a.host) == 0)
			pr = p;
	cfg.token_url = a.oauth_token_url ? a.oauth_token_url
					  : pr ? pr->token_url : NULL;
	cfg.device_url = pr ? pr->device_url : NULL;
	cfg.auth_url = pr ? pr->auth_url : NULL;
	cfg.client_id = a.oauth_client_id;
	cfg.client_secret = a.client_secret;
	cfg.scope = a.oauth_scope ? a.oauth_scope : pr ? pr->scope : NULL;
	cfg.ca_file = a.ca_file;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--device") == 0)
			device = true;
		else if (strcmp(argv[i], "--pkce") == 0)
			pkce = true;
		else if (strcmp(argv[i], "--device-url") == 0 && i + 1 < argc)
			cfg.device_url = argv[++i];
		else if (strcmp(argv[i], "--auth-url") == 0 && i + 1 < argc)
			cfg.auth_url = argv[++i];
		else if (strcmp(argv[i], "--token-url") == 0 && i + 1 < argc)
			cfg.token_url = argv[++i];
		else if (strcmp(argv[i], "--oauth-client-id") == 0 && i + 1 < argc)
			cfg.client_id = argv[++i];
		else if (strcmp(argv[i], "--oauth-scope") == 0 && i + 1 < argc)
			cfg.scope = argv[++i];
		else if (strcmp(argv[i], "--oauth-client-secret-file") == 0 && i + 1 < argc) {
			free(csecret);
			if ((csecret = read_secret_file(argv[++i])) == NULL) {
				rc = MX_EXIT_USAGE;
				goto out;
			}
			cfg.client_secret = csecret;
		} else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
			uint64_t v;

			if (!cli_number("account oauth", "--timeout", argv[++i],
					1, CLI_TIMEOUT_MAX, &v)) {
				rc = MX_EXIT_USAGE;
				goto out;
			}
			timeout = (int)v;
		} else {
			fprintf(stderr, "mxsync: account oauth: bad argument '%s'\n%s",
				argv[i], usage);
			rc = MX_EXIT_USAGE;
			goto out;
		}
	}
	if (device == pkce || cfg.token_url == NULL || cfg.client_id == NULL ||
	    (device && cfg.device_url == NULL) || (pkce && cfg.auth_url == NULL)) {
		fprintf(stderr, "mxsync: account oauth: choose --device or --pkce, "
				"and give the endpoints (token, device or "
				"authorization URL) and --oauth-client-id unless "
				"the account or its provider preset has them\n");
		rc = MX_EXIT_USAGE;
		goto out;
	}
	signal(SIGINT, oauth_sig);
	signal(SIGTERM, oauth_sig);
	if (device) {
		struct mx_oauth_device dev = {0};

		rc = mx_oauth_device_start(&cfg, &dev, &err);
		if (rc == MX_OK) {
			printf("To authorize mxsync for %s, open\n  %s\nand enter "
			       "the code  %s\n", a.name,
			       cli_safe(dev.verification_uri_complete
						? dev.verification_uri_complete
						: dev.verification_uri),
			       cli_safe(dev.user_code));
			fflush(stdout);
			rc = mx_oauth_device_poll(&cfg, &dev, &oauth_cancel, &tok, &err);
		}
		mx_oauth_device_free(&dev);
	} else {
		rc = mx_oauth_pkce(&cfg, show_url, NULL, timeout, &oauth_cancel,
				   &tok, &err);
	}
	if (rc == MX_OK) {
		struct token_set ts = {&tok, cfg.token_url, cfg.client_id,
				       cfg.scope};

		rc = mx_account_edit(st, a.name, apply_tokens, &ts, &err);
	}
	if (rc != MX_OK) {
		rc = cli_fail(&err);
	} else {
		printf("account %s authorized; the refresh token is stored "
		       "encrypted\n", a.name);
	}
out:
	mx_oauth_token_free(&tok);
	mx_account_free(&a);
	mx_secret_free(csecret);
	mx_store_close(&st);
	return rc;
}

static int account_edit(struct cli *c, int argc, char **argv, int disabled)
{
	struct mx_account_change e = {.disabled = disabled};
	struct settings_args sa = {0};
	struct mx_store *st;
	struct mx_error err;
	char *refresh = NULL;
	int rc = 0, r;

	if (argc < 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (disabled < 0 && (strcmp(a, "--imap") == 0 ||
				      strcmp(a, "--pop3") == 0) && i + 1 < argc) {
			/* The option names the protocol, as in add: an
			 * IMAP account becomes POP3 only by --pop3. */
			bool pop = strcmp(a, "--pop3") == 0;

			e.imap_url = argv[++i];
			if (pop != (strncmp(e.imap_url, "pop3", 4) == 0)) {
				fprintf(stderr, "mxsync: account edit: %s takes "
						"a%s URL\n", a, pop ? " pop3s:// or "
						"pop3://" : "n imaps:// or imap://");
				rc = MX_EXIT_USAGE;
				goto out;
			}
		} else if (cli_is_help(a)) {
			fputs(usage, stdout);
			goto out;
		}
		else if (disabled < 0 && strcmp(a, "--password-file") == 0 && i + 1 < argc)
			e.password_file = argv[++i];
		else if (disabled < 0 && strcmp(a, "--ca-file") == 0 && i + 1 < argc)
			e.ca_file = argv[++i];
		else if (disabled < 0 && strcmp(a, "--display-name") == 0 && i + 1 < argc)
			e.display_name = argv[++i];
		else if (disabled < 0 && strcmp(a, "--refresh-token-file") == 0 && i + 1 < argc) {
			free(refresh);
			if ((refresh = read_secret_file(argv[++i])) == NULL) {
				rc = MX_EXIT_USAGE;
				goto out;
			}
			e.refresh_token = refresh;
		} else if (disabled >= 0 ||
			   (r = settings_opt(argc, argv, &i, &sa)) != 1) {
			if (disabled >= 0 || r == 0)
				fprintf(stderr, "mxsync: account: bad argument "
						"'%s'\n%s", a, usage);
			rc = MX_EXIT_USAGE;
			goto out;
		}
	}
	e.settings = &sa.s;
	st = cli_open(c, &rc);
	if (st != NULL) {
		if (mx_account_edit(st, argv[1], mx_account_apply_change, &e,
				    &err) != MX_OK)
			rc = cli_fail(&err);
		else
			printf("account %s %s\n", argv[1],
			       disabled == 1 ? "disabled"
			       : disabled == 0 ? "enabled" : "updated");
		mx_store_close(&st);
	}
out:
	settings_args_free(&sa);
	mx_secret_free(refresh);
	return rc;
}

static int account_remove(struct cli *c, int argc, char **argv)
{
	struct mx_store *st;
	struct mx_error err;
	bool purge = false;
	int rc = 0;

	if (argc < 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--purge") == 0) {
			purge = true;
		} else {
			fprintf(stderr, "mxsync: account remove: bad argument "
					"'%s'\n", argv[i]);
			return MX_EXIT_USAGE;
		}
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	/* The outbox (send, above the account module) cancels the queued
	 * mail of the removed account in the same transaction. */
	if (mx_account_remove(st, argv[1], purge, mx_outbox_account_removed,
			      &err) != MX_OK)
		rc = cli_fail(&err);
	else
		printf("account %s removed%s\n", argv[1],
		       purge ? " with its stored mail"
			     : " (stored mail kept; --purge deletes it)");
	mx_store_close(&st);
	return rc;
}

static int account_list(struct cli *c, int argc, char **argv)
{
	bool json = false;
	struct mx_store *st;
	struct mx_error err;
	char *out = NULL;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		} else {
			fprintf(stderr, "mxsync: account list: bad argument '%s'\n",
				argv[i]);
			return MX_EXIT_USAGE;
		}
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_account_list_json(st, &out, &err) != MX_OK) {
		rc = cli_fail(&err);
	} else if (json) {
		cli_print_json_text(out);
	} else {
		json_t *a = json_loads(out, 0, NULL), *o;
		size_t i;

		json_array_foreach(a, i, o)
			printf("%-16s %s (%s)\n",
			       json_string_value(json_object_get(o, "name")),
			       json_string_value(json_object_get(o, "imap")),
			       json_string_value(json_object_get(o, "tls")));
		if (json_array_size(a) == 0)
			printf("no accounts; add one with 'mxsync account add'\n");
		json_decref(a);
	}
	mx_free(out);
	mx_store_close(&st);
	return rc;
}

int cli_account(struct cli *c, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "add") == 0)
		return account_add(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return account_list(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "edit") == 0)
		return account_edit(c, argc - 1, argv + 1, -1);
	if (argc >= 2 && strcmp(argv[1], "disable") == 0)
		return account_edit(c, argc - 1, argv + 1, 1);
	if (argc >= 2 && strcmp(argv[1], "enable") == 0)
		return account_edit(c, argc - 1, argv + 1, 0);
	if (argc >= 2 && strcmp(argv[1], "remove") == 0)
		return account_remove(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "oauth") == 0)
		return account_oauth(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "reauth") == 0)
		return account_reauth(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "discover") == 0)
		return cli_account_discover(c, argc - 1, argv + 1);
	if (argc >= 2 && cli_is_help(argv[1])) {
		fputs(usage, stdout);
		return MX_EXIT_OK;
	}
	fputs(usage, stderr);
	return MX_EXIT_USAGE;
}
