/* mxsync token create|list|revoke: bearer tokens of the HTTP API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "users/tokens.h"

static const char usage[] =
	"usage: mxsync token create --user USER [--admin] [--expires DAYS]\n"
	"                           [--name NAME] [--json]\n"
	"       mxsync token list [--json]\n"
	"       mxsync token revoke ID\n"
	"A token authenticates HTTP API requests (Authorization: Bearer ...)\n"
	"as USER, a user id of your CRM; --admin tokens may use every account.\n"
	"The token is printed once, by create; only its hash is stored.\n";

static void fmt_day(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%d %H:%M", &tm);
}

static int create(struct cli *c, int argc, char **argv)
{
	const char *user = NULL, *name = NULL;
	uint64_t days = 0;
	bool admin = false, json = false;
	char tok[MX_APITOKEN_LEN + 1];
	struct mx_apitoken info;
	struct mx_store *st;
	struct mx_error err;
	int rc = MX_EXIT_OK;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--user") == 0 && i + 1 < argc)
			user = argv[++i];
		else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--admin") == 0)
			admin = true;
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--expires") == 0 && i + 1 < argc) {
			if (!cli_number("token create", "--expires", argv[++i], 1,
					MX_APITOKEN_MAX_DAYS, &days))
				return MX_EXIT_USAGE;
		} else {
			fprintf(stderr, "mxsync: token create: bad argument "
				"'%s'\n%s", argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	if (user == NULL) {
		fprintf(stderr, "mxsync: token create: --user is required\n%s",
			usage);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_apitoken_create(st, user, admin, days, name, tok, &info,
			       &err) != MX_OK) {
		rc = cli_fail(&err);
	} else if (json) {
		json_t *o = json_pack("{s:I,s:s,s:s,s:b,s:o}", "id",
				      (json_int_t)info.id, "token", tok, "user",
				      info.user, "admin", info.admin, "expires",
				      info.expires ? json_integer(info.expires)
						   : json_null());

		cli_print_json(o, "{}");
		json_decref(o);
	} else {
		/* The token alone on stdout, for $(...); the rest to stderr. */
		printf("%s\n", tok);
		fprintf(stderr, "token %llu for user %s%s created; it is shown "
			"only now\n", (unsigned long long)info.id,
			cli_safe(info.user), info.admin ? " (admin)" : "");
	}
	OPENSSL_cleanse(tok, sizeof(tok));
	mx_apitoken_free(&info);
	mx_store_close(&st);
	return rc;
}

static int list(struct cli *c, int argc, char **argv)
{
	struct mx_apitoken *v = NULL;
	struct mx_store *st;
	struct mx_error err;
	size_t n = 0;
	bool json = false;
	int rc = MX_EXIT_OK;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else {
			fprintf(stderr, "mxsync: token list: bad argument "
				"'%s'\n%s", argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_apitoken_list(st, &v, &n, &err) != MX_OK) {
		rc = cli_fail(&err);
	} else if (json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, mx_apitoken_json(&v[i]));
		cli_print_json(arr, "[]");
		json_decref(arr);
	} else {
		for (size_t i = 0; i < n; i++) {
			char cr[32], ex[32] = "never";

			fmt_day(v[i].created, cr);
			if (v[i].expires)
				fmt_day(v[i].expires, ex);
			printf("%-4llu %-20s %-6s created %s  expires %s  %s\n",
			       (unsigned long long)v[i].id, cli_safe(v[i].user),
			       v[i].admin ? "admin" : "-", cr, ex,
			       cli_safe(v[i].name));
		}
	}
	mx_apitokens_free(v, n);
	mx_store_close(&st);
	return rc;
}

static int revoke(struct cli *c, int argc, char **argv)
{
	struct mx_store *st;
	struct mx_error err;
	uint64_t id;
	int rc = MX_EXIT_OK;

	if (argc != 3) {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	if (!cli_number("token revoke", "ID", argv[2], 1, UINT64_MAX, &id))
		return MX_EXIT_USAGE;
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_apitoken_revoke(st, id, &err) != MX_OK)
		rc = cli_fail(&err);
	else
		fprintf(stderr, "token %llu revoked\n", (unsigned long long)id);
	mx_store_close(&st);
	return rc;
}

int cli_token(struct cli *c, int argc, char **argv)
{
	if (argc >= 2 && cli_is_help(argv[1])) {
		fputs(usage, stdout);
		return MX_EXIT_OK;
	}
	if (argc >= 2 && strcmp(argv[1], "create") == 0)
		return create(c, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return list(c, argc, argv);
	if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
		return revoke(c, argc, argv);
	fputs(usage, stderr);
	return MX_EXIT_USAGE;
}
