/* mxsync export NAME --format maildir|mbox --out PATH */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] =
	"usage: mxsync export NAME --format maildir|mbox --out PATH\n"
	"Writes every stored message with its original bytes: a Maildir per\n"
	"folder (PATH/FOLDER/cur/...) or an mboxrd file per folder\n"
	"(PATH/FOLDER.mbox).\n";

int cli_export(struct cli *c, int argc, char **argv)
{
	const char *name = NULL, *out = NULL, *format = NULL;
	enum mx_export_format fmt;
	struct mx_store *st;
	struct mx_error err;
	uint64_t n = 0;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--format") == 0 && i + 1 < argc)
			format = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		} else if (argv[i][0] != '-' && name == NULL)
			name = argv[i];
		else {
			fprintf(stderr, "mxsync: export: bad argument '%s'\n%s",
				argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	if (name == NULL || out == NULL || format == NULL) {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	if (strcmp(format, "maildir") == 0)
		fmt = MX_EXPORT_MAILDIR;
	else if (strcmp(format, "mbox") == 0)
		fmt = MX_EXPORT_MBOX;
	else {
		fprintf(stderr, "mxsync: export: --format must be maildir or mbox\n");
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_export(st, name, fmt, out, &n, &err) != MX_OK)
		rc = cli_fail(&err);
	else
		printf("exported %" PRIu64 " messages to %s\n", n, out);
	mx_store_close(&st);
	return rc;
}
