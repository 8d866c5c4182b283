/* mxsync account discover EMAIL: which servers serve an address */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "discover/discover.h"
#include "account/presets.h"

static const char usage[] =
	"usage: mxsync account discover EMAIL [--json] [--verbose]\n"
	"                 [--dns-server IPV4:PORT] [--ca-file FILE]\n"
	"                 [--timeout SECONDS] [--no-srv] [--no-autoconfig]\n"
	"\n"
	"Looks up the IMAP, POP3 and SMTP servers of EMAIL's domain: DNS SRV\n"
	"records (RFC 6186, RFC 8314), then the autoconfig document\n"
	"(https://autoconfig.DOMAIN/mail/config-v1.1.xml, then\n"
	"https://DOMAIN/.well-known/autoconfig/mail/config-v1.1.xml).\n"
	"Servers outside the domain that came from DNS are printed with a\n"
	"warning: DNS answers are not authenticated.\n"
	"Environment: MXSYNC_DNS_SERVER (like --dns-server),\n"
	"MXSYNC_DISCOVER_CONNECT_TO=HOST:PORT (tests: every HTTPS connection\n"
	"goes there, certificate still checked for the real name).\n";

static const char *tls_name(enum mx_tls_mode t)
{
	return t == MX_TLS_IMPLICIT ? "implicit" : "starttls";
}

/* "password,xoauth2" or "-" into BUF. */
static const char *auth_names(unsigned auth, char *buf, size_t sz)
{
	snprintf(buf, sz, "%s%s%s", auth & MX_AUTH_PLAIN ? ",password" : "",
		 auth & MX_AUTH_XOAUTH2 ? ",xoauth2" : "",
		 auth & MX_AUTH_OAUTHBEARER ? ",oauthbearer" : "");
	return buf[0] ? buf + 1 : "-";
}

static json_t *to_json(const char *email, const struct mx_discovery *d,
		       const struct mx_error *err)
{
	json_t *root = json_object(), *arr = json_array(), *log = json_array();
	char *lines = mx_strdup(d->log ? d->log : ""), *save = NULL;

	for (size_t i = 0; i < d->n; i++) {
		const struct mx_disc_server *s = &d->v[i];
		json_t *o = json_object(), *au = json_array();

		if (s->auth & MX_AUTH_PLAIN)
			json_array_append_new(au, json_string("password"));
		if (s->auth & MX_AUTH_XOAUTH2)
			json_array_append_new(au, json_string("xoauth2"));
		if (s->auth & MX_AUTH_OAUTHBEARER)
			json_array_append_new(au, json_string("oauthbearer"));
		json_object_set_new(o, "proto", json_string(s->proto));
		json_object_set_new(o, "host", json_string(s->host));
		json_object_set_new(o, "port", json_integer(s->port));
		json_object_set_new(o, "tls", json_string(tls_name(s->tls)));
		json_object_set_new(o, "user", s->user ? json_string(s->user)
						       : json_null());
		json_object_set_new(o, "auth", au);
		json_object_set_new(o, "source", json_string(s->source));
		json_object_set_new(o, "priority", json_integer(s->priority));
		json_object_set_new(o, "weight", json_integer(s->weight));
		json_object_set_new(o, "foreign_domain",
				    json_boolean(s->foreign_domain));
		json_array_append_new(arr, o);
	}
	for (char *l = lines ? strtok_r(lines, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save))
		json_array_append_new(log, json_string(l));
	free(lines);
	json_object_set_new(root, "email", json_string(email));
	json_object_set_new(root, "servers", arr);
	if (err)
		json_object_set_new(root, "error", json_string(err->detail));
	json_object_set_new(root, "log", log);
	return root;
}

int cli_account_discover(struct cli *c, int argc, char **argv)
{
	struct mx_discover_opts o = {
		.dns_server = getenv("MXSYNC_DNS_SERVER"),
		.connect_to = getenv("MXSYNC_DISCOVER_CONNECT_TO"),
	};
	struct mx_discovery d;
	struct mx_error err;
	const char *email = NULL;
	bool json = false, verbose = false;
	int rc;

	(void)c;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--json") == 0)
			json = true;
		else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0)
			verbose = true;
		else if (strcmp(a, "--dns-server") == 0 && i + 1 < argc)
			o.dns_server = argv[++i];
		else if (strcmp(a, "--ca-file") == 0 && i + 1 < argc)
			o.ca_file = argv[++i];
		else if (strcmp(a, "--timeout") == 0 && i + 1 < argc) {
			uint64_t v;

			if (!cli_number("account discover", "--timeout",
					argv[++i], 1, CLI_TIMEOUT_MAX, &v))
				return MX_EXIT_USAGE;
			o.timeout_s = (int)v;
		} else if (strcmp(a, "--no-srv") == 0)
			o.no_srv = true;
		else if (strcmp(a, "--no-autoconfig") == 0)
			o.no_autoconfig = true;
		else if (cli_is_help(a)) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		} else if (a[0] != '-' && email == NULL)
			email = a;
		else {
			fprintf(stderr, "mxsync: account discover: bad argument "
					"'%s'\n%s", a, usage);
			return MX_EXIT_USAGE;
		}
	}
	if (email == NULL) {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	if (o.dns_server && o.dns_server[0] == '\0')
		o.dns_server = NULL;
	if (o.connect_to && o.connect_to[0] == '\0')
		o.connect_to = NULL;
	rc = mx_discover(email, &o, &d, &err);
	/* Host names and the log come from DNS and autoconfig documents:
	 * escaped for the terminal. */
	if (verbose && d.log && d.log[0])
		cli_put_text(stderr, d.log, strlen(d.log));
	for (size_t i = 0; i < d.n; i++)
		if (d.v[i].foreign_domain)
			fprintf(stderr, "mxsync: warning: %s (%s) is outside "
					"the domain of %s; DNS is not "
					"authenticated, so make sure this is "
					"really your provider before giving it "
					"a password\n",
				cli_safe(d.v[i].host), d.v[i].source, email);
	if (json) {
		json_t *j = to_json(email, &d, rc == MX_OK ? NULL : &err);
		char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(j);
	} else {
		for (size_t i = 0; i < d.n; i++) {
			const struct mx_disc_server *s = &d.v[i];
			char au[64];

			printf("%-4s %s:%u %s user=%s auth=%s priority=%d "
			       "(%s)%s\n", s->proto, cli_safe(s->host), s->port,
			       tls_name(s->tls), s->user ? cli_safe(s->user) : "-",
			       auth_names(s->auth, au, sizeof(au)), s->priority,
			       s->source,
			       s->foreign_domain ? " [outside the domain]" : "");
		}
	}
	mx_discovery_free(&d);
	if (rc != MX_OK)
		return cli_fail(&err);
	return MX_EXIT_OK;
}
