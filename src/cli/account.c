/* mxsync account add|list */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"

static const char usage[] =
	"usage: mxsync account add NAME --imap imaps://USER@HOST[:PORT]\n"
	"                 [--password-file FILE] [--ca-file FILE]\n"
	"                 [--insecure-plaintext] [--timeout SECONDS]\n"
	"       mxsync account list [--json]\n"
	"\n"
	"imaps:// is implicit TLS (port 993), imap:// is STARTTLS (port 143,\n"
	"required).  --insecure-plaintext allows an imap:// account to log in\n"
	"without TLS (e.g. a loopback test server).  The password is read from\n"
	"--password-file at each sync (first line), or, without it, from the\n"
	"MXSYNC_PASSWORD environment variable at 'account add' time.\n";

static int account_add(struct cli *c, int argc, char **argv)
{
	struct mx_account_params p = {0};
	struct mx_store *st;
	struct mx_error err;
	int rc = 0;

	if (argc < 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	p.name = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--imap") == 0 && i + 1 < argc)
			p.imap_url = argv[++i];
		else if (strcmp(a, "--password-file") == 0 && i + 1 < argc)
			p.password_file = argv[++i];
		else if (strcmp(a, "--ca-file") == 0 && i + 1 < argc)
			p.ca_file = argv[++i];
		else if (strcmp(a, "--insecure-plaintext") == 0)
			p.insecure_plaintext = true;
		else if (strcmp(a, "--timeout") == 0 && i + 1 < argc)
			p.timeout_s = atoi(argv[++i]);
		else if (cli_is_help(a)) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		} else {
			fprintf(stderr, "mxsync: account add: bad argument '%s'\n%s",
				a, usage);
			return MX_EXIT_USAGE;
		}
	}
	if (p.imap_url == NULL) {
		fprintf(stderr, "mxsync: account add: --imap URL is required\n");
		return MX_EXIT_USAGE;
	}
	if (p.password_file == NULL)
		p.password = getenv("MXSYNC_PASSWORD");
	if (p.password_file == NULL && p.password == NULL) {
		fprintf(stderr, "mxsync: account add: give --password-file or "
				"set MXSYNC_PASSWORD\n");
		return MX_EXIT_USAGE;
	}
	if (p.insecure_plaintext)
		fprintf(stderr, "mxsync: warning: account %s will log in "
				"without TLS (--insecure-plaintext)\n", p.name);
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_account_add(st, &p, &err) != MX_OK)
		rc = cli_fail(&err);
	else
		printf("account %s added\n", p.name);
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
		printf("%s\n", out);
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
	if (argc >= 2 && cli_is_help(argv[1])) {
		fputs(usage, stdout);
		return MX_EXIT_OK;
	}
	fputs(usage, stderr);
	return MX_EXIT_USAGE;
}
