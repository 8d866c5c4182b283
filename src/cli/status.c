/* mxsync status [NAME] [--json] */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "cli/cli.h"
#include "store/store.h"

static const char usage[] = "usage: mxsync status [NAME] [--json]\n";

static void fmt_time(json_int_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0) {
		snprintf(buf, n, "never");
		return;
	}
	localtime_r(&tt, &tm);
	strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Adds "running" to each account's daemon state: whether an mxsyncd holds
 * the data directory's lock now, so a state left by a daemon that was
 * killed is not shown as current. */
static void mark_running(json_t *arr, bool running)
{
	json_t *acct, *ds;
	size_t i;

	json_array_foreach(arr, i, acct) {
		ds = json_object_get(acct, "daemon");
		if (json_is_object(ds))
			json_object_set_new(ds, "running", json_boolean(running));
	}
}

int cli_status(struct cli *c, int argc, char **argv)
{
	const char *name = NULL;
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
		} else if (argv[i][0] != '-' && name == NULL)
			name = argv[i];
		else {
			fprintf(stderr, "mxsync: status: bad argument '%s'\n%s",
				argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_status_json(st, name, &out, &err) != MX_OK) {
		rc = cli_fail(&err);
	} else if (json) {
		json_t *arr = json_loads(out, 0, NULL);

		mark_running(arr, mx_store_daemon_pid(mx_store_dir(st)) != 0);
		cli_print_json(arr, out);
		json_decref(arr);
	} else {
		json_t *arr = json_loads(out, 0, NULL), *acct, *f;
		size_t i, j;
		char when[64];

		mark_running(arr, mx_store_daemon_pid(mx_store_dir(st)) != 0);
		json_array_foreach(arr, i, acct) {
			fmt_time(json_integer_value(json_object_get(acct, "last_sync")),
				 when, sizeof(when));
			/* No count where the store could not read it all. */
			if (json_object_get(acct, "messages"))
				printf("%s: %lld messages, last sync %s\n",
				       json_string_value(json_object_get(acct, "account")),
				       (long long)json_integer_value(json_object_get(acct, "messages")),
				       when);
			else
				printf("%s: ? messages, last sync %s\n",
				       json_string_value(json_object_get(acct, "account")),
				       when);
			if (json_object_get(acct, "error"))
				printf("  error: %s\n", cli_safe(json_string_value(
					json_object_get(acct, "error"))));
			{
				json_t *ds = json_object_get(acct, "daemon");
				const char *dst = json_string_value(json_object_get(ds, "state"));
				const char *le = json_string_value(json_object_get(ds, "last_error"));
				json_int_t ls = json_integer_value(json_object_get(ds, "last_success"));
				json_int_t na = json_integer_value(json_object_get(ds, "next_attempt"));
				char b2[64];

				if (dst && strcmp(dst, "stopped") != 0 &&
				    !json_is_true(json_object_get(ds, "running"))) {
					/* A state a daemon wrote before it was
					 * killed: it is not current. */
					json_int_t seen = json_integer_value(json_object_get(ds, "since"));

					if (ls > seen)
						seen = ls;
					fmt_time(seen, b2, sizeof(b2));
					printf("  daemon: not running (last seen %s)\n", b2);
					if (le)
						printf("  last error: %s\n", le);
				} else if (dst) {
					fmt_time(json_integer_value(json_object_get(ds, "since")),
						 b2, sizeof(b2));
					printf("  daemon: %s since %s", dst, b2);
					if (ls)
						printf(", lag %llds",
						       (long long)(time(NULL) - ls));
					if (na) {
						fmt_time(na, b2, sizeof(b2));
						printf(", next attempt %s", b2);
					}
					printf("\n");
					if (le)
						printf("  last error: %s\n", cli_safe(le));
				}
			}
			{
				json_t *ob = json_object_get(acct, "outbox");

				if (ob)
					printf("  outbox: %lld queued, %lld sending, "
					       "%lld failed, %lld sent\n",
					       (long long)json_integer_value(json_object_get(ob, "queued")),
					       (long long)json_integer_value(json_object_get(ob, "sending")),
					       (long long)json_integer_value(json_object_get(ob, "failed")),
					       (long long)json_integer_value(json_object_get(ob, "sent")));
			}
			printf("  %-24s %-8s %8s %8s %8s %12s %8s\n", "FOLDER",
			       "STATE", "MSGS", "UNSEEN", "SERVER", "UIDVALIDITY",
			       "MODSEQ");
			json_array_foreach(json_object_get(acct, "folders"), j, f) {
				const char *fe = json_string_value(json_object_get(f, "error"));

				if (fe) {
					printf("  %-24s error: %s\n",
					       cli_safe(json_string_value(json_object_get(f, "folder"))),
					       cli_safe(fe));
					continue;
				}
				/* Folder names come from the server: escaped. */
				printf("  %-24s %-8s %8lld %8lld %8lld %12lld %8lld\n",
				       cli_safe(json_string_value(json_object_get(f, "folder"))),
				       json_string_value(json_object_get(f, "state")),
				       (long long)json_integer_value(json_object_get(f, "messages")),
				       (long long)json_integer_value(json_object_get(f, "unseen")),
				       (long long)json_integer_value(json_object_get(f, "server_messages")),
				       (long long)json_integer_value(json_object_get(f, "uidvalidity")),
				       (long long)json_integer_value(json_object_get(f, "highestmodseq")));
			}
		}
		if (json_array_size(arr) == 0)
			printf("no accounts\n");
		json_decref(arr);
	}
	mx_free(out);
	mx_store_close(&st);
	return rc;
}
