/* mxsync ls NAME [--folder F] [--json] */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"

static const char usage[] =
	"usage: mxsync ls NAME [--folder FOLDER] [--json] [--limit N]\n";

int cli_ls(struct cli *c, int argc, char **argv)
{
	const char *name = NULL;
	bool json = false;
	struct mx_list_opts lo = {0};
	struct mx_store *st;
	struct mx_error err;
	char *out = NULL;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--folder") == 0 && i + 1 < argc)
			lo.folder = argv[++i];
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			if (!cli_number("ls", "--limit", argv[++i], 1,
					UINT32_MAX, &lo.limit))
				return MX_EXIT_USAGE;
		} else if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		} else if (argv[i][0] != '-' && name == NULL)
			name = argv[i];
		else {
			fprintf(stderr, "mxsync: ls: bad argument '%s'\n%s",
				argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	if (name == NULL) {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_list_json_opts(st, name, &lo, &out, &err) != MX_OK) {
		rc = cli_fail(&err);
	} else if (json) {
		cli_print_json_text(out);
	} else {
		json_t *arr = json_loads(out, 0, NULL), *m;
		size_t i;

		json_array_foreach(arr, i, m) {
			time_t t = (time_t)json_integer_value(json_object_get(m, "date"));
			json_t *l0 = json_array_get(json_object_get(m, "locations"), 0);
			struct tm tm;
			char when[32];

			gmtime_r(&t, &tm);
			strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
			/* Folder, sender and subject come from servers and
			 * messages: escaped for the terminal. */
			printf("%s  %s  %-14.14s  %-28.28s  %s%s\n",
			       json_string_value(json_object_get(m, "id")), when,
			       l0 ? cli_safe(json_string_value(json_object_get(l0, "folder"))) : "-",
			       cli_safe(json_string_value(json_object_get(m, "from"))),
			       cli_safe(json_string_value(json_object_get(m, "subject"))),
			       json_integer_value(json_object_get(m, "attachments"))
				       ? "  [att]" : "");
		}
		json_decref(arr);
	}
	mx_free(out);
	mx_store_close(&st);
	return rc;
}
