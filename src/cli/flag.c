/* mxsync flag MESSAGE_ID --seen|--unseen|--flagged|--unflagged */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char usage[] =
	"usage: mxsync flag MESSAGE_ID --seen|--unseen|--flagged|--unflagged\n"
	"Changes the flag on the server (every folder holding the message),\n"
	"then in the store.\n";

int cli_flag(struct cli *c, int argc, char **argv)
{
	const char *id = NULL;
	enum mx_flag_op op = 0;
	struct mx_store *st;
	struct mx_error err;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seen") == 0)
			op = MX_FLAG_SEEN;
		else if (strcmp(argv[i], "--unseen") == 0)
			op = MX_FLAG_UNSEEN;
		else if (strcmp(argv[i], "--flagged") == 0)
			op = MX_FLAG_FLAGGED;
		else if (strcmp(argv[i], "--unflagged") == 0)
			op = MX_FLAG_UNFLAGGED;
		else if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		} else if (argv[i][0] != '-' && id == NULL)
			id = argv[i];
		else {
			fprintf(stderr, "mxsync: flag: bad argument '%s'\n%s",
				argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	if (id == NULL || op == 0) {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_message_flag(st, id, op, &err) != MX_OK)
		rc = cli_fail(&err);
	mx_store_close(&st);
	return rc;
}

/* mxsync move MESSAGE_ID FOLDER; mxsync delete MESSAGE_ID [--permanent] */
static const char move_usage[] =
	"usage: mxsync move MESSAGE_ID FOLDER\n"
	"       mxsync delete MESSAGE_ID [--permanent]\n"
	"move: to FOLDER of its account, on the server, then in the store.\n"
	"delete: to the account's Trash, or for good with --permanent, when\n"
	"there is no Trash or the message is in Trash only.\n";

int cli_move(struct cli *c, int argc, char **argv)
{
	bool del = strcmp(argv[0], "delete") == 0, permanent = false;
	const char *arg[2] = {NULL, NULL};
	size_t narg = 0, want = del ? 1 : 2;
	struct mx_store *st;
	struct mx_error err;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(move_usage, stdout);
			return MX_EXIT_OK;
		} else if (del && strcmp(argv[i], "--permanent") == 0) {
			permanent = true;
		} else if (argv[i][0] != '-' && narg < want) {
			arg[narg++] = argv[i];
		} else {
			fprintf(stderr, "mxsync: %s: bad argument '%s'\n%s",
				argv[0], argv[i], move_usage);
			return MX_EXIT_USAGE;
		}
	}
	if (narg != want) {
		fputs(move_usage, stderr);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if ((del ? mx_message_delete(st, arg[0], permanent, &err)
		 : mx_message_move(st, arg[0], arg[1], &err)) != MX_OK)
		rc = cli_fail(&err);
	mx_store_close(&st);
	return rc;
}
