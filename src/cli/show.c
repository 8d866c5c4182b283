/* mxsync show MESSAGE_ID [--raw|--json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "mime/mime.h"

static const char usage[] =
	"usage: mxsync show MESSAGE_ID [--raw | --json]\n"
	"  --raw   the original RFC 5322 bytes, unchanged\n"
	"  --json  the stored record (headers, addresses, parts, locations)\n"
	"An API-mode message (account add --mode api) has no stored body: show\n"
	"and --raw fetch it live from the server and fail, saying so, when the\n"
	"server cannot be reached.\n";

static void print_addrs(const char *label, json_t *a)
{
	size_t i;
	json_t *o;

	if (json_array_size(a) == 0)
		return;
	printf("%s: ", label);
	json_array_foreach(a, i, o) {
		const char *n = json_string_value(json_object_get(o, "name"));
		const char *e = json_string_value(json_object_get(o, "email"));

		printf("%s%s%s%s%s", i ? ", " : "", cli_safe(n), n ? " <" : "",
		       cli_safe(e), n ? ">" : "");
	}
	printf("\n");
}

int cli_show(struct cli *c, int argc, char **argv)
{
	const char *id = NULL;
	bool raw = false, json = false;
	struct mx_store *st;
	struct mx_error err;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--raw") == 0)
			raw = true;
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		} else if (argv[i][0] != '-' && id == NULL)
			id = argv[i];
		else {
			fprintf(stderr, "mxsync: show: bad argument '%s'\n%s",
				argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	if (id == NULL || (raw && json)) {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (raw) {
		char *data = NULL;
		size_t len = 0;

		if (mx_message_raw(st, id, &data, &len, &err) != MX_OK)
			rc = cli_fail(&err);
		else if (fwrite(data, 1, len, stdout) != len)
			rc = MX_EXIT_FAIL;
		mx_free(data);
	} else {
		char *out = NULL, *text = NULL;

		if (mx_message_json(st, id, &out, &err) != MX_OK) {
			rc = cli_fail(&err);
		} else if (json) {
			cli_print_json_text(out);
		} else {
			json_t *m = json_loads(out, 0, NULL), *p, *l;
			const char *live;
			size_t i;

			printf("Id: %s\n", json_string_value(json_object_get(m, "id")));
			print_addrs("From", json_object_get(m, "from"));
			print_addrs("To", json_object_get(m, "to"));
			print_addrs("Cc", json_object_get(m, "cc"));
			/* Everything below comes from the message or the
			 * server: escaped for the terminal (--raw is not). */
			live = json_string_value(json_object_get(m, "remote_id"));
			if (live)
				printf("Subject: (not stored in API mode)\n");
			else
				printf("Subject: %s\n", cli_safe(json_string_value(json_object_get(m, "subject"))));
			printf("Message-ID: %s\n", json_string_value(json_object_get(m, "message_id"))
							   ? cli_safe(json_string_value(json_object_get(m, "message_id"))) : "-");
			printf("Thread: %lld\n", (long long)json_integer_value(json_object_get(m, "thread")));
			json_array_foreach(json_object_get(m, "locations"), i, l) {
				char *f = json_dumps(json_object_get(l, "flags"), JSON_COMPACT);

				printf("Location: %s UID %lld %s\n",
				       cli_safe(json_string_value(json_object_get(l, "folder"))),
				       (long long)json_integer_value(json_object_get(l, "uid")),
				       cli_safe(f));
				free(f);
			}
			json_array_foreach(json_object_get(m, "parts"), i, p) {
				if (!json_is_true(json_object_get(p, "attachment")))
					continue;
				printf("Attachment: %s (%s, %lld bytes)\n",
				       json_string_value(json_object_get(p, "filename"))
					       ? cli_safe(json_string_value(json_object_get(p, "filename"))) : "(unnamed)",
				       cli_safe(json_string_value(json_object_get(p, "type"))),
				       (long long)json_integer_value(json_object_get(p, "size")));
			}
			if (json_is_true(json_object_get(m, "addresses_truncated")))
				printf("Warning: an address list was cut at its "
				       "first %d entries\n", MX_MAX_ADDRS);
			if (json_string_value(json_object_get(m, "parse_error")))
				printf("Warning: message is malformed: %s\n",
				       cli_safe(json_string_value(json_object_get(m, "parse_error"))));
			/* API mode: the store has no body, it is asked
			 * from the server now. */
			if (live)
				printf("Remote-Id: %s (API mode: only the "
				       "sender, date and labels are stored)\n",
				       cli_safe(live));
			printf("\n");
			if (mx_message_text(st, id, &text, &err) == MX_OK) {
				if (live)
					printf("[body fetched live from the "
					       "server]\n");
				cli_put_text(stdout, text, strlen(text));
				printf("\n");
			} else if (live) {
				fflush(stdout);
				rc = cli_fail(&err);
			}
			mx_free(text);
			json_decref(m);
		}
		mx_free(out);
	}
	mx_store_close(&st);
	return rc;
}
