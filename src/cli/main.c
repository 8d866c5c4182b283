/* mxsync: entry point, global options and subcommand dispatch. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli/cli.h"
#include "net/interrupt.h"
#include "secrets/secrets.h"
#include "util/util.h"

static const char usage[] =
	"usage: mxsync [-d DATA_DIR] [-v|-q] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  account add NAME --imap imaps://USER@HOST[:PORT] [--password-file F]\n"
	"                   [--ca-file F] [--insecure-plaintext] [--timeout S]\n"
	"  account list [--json]\n"
	"  sync NAME [--folder F]...      one-shot sync, full or incremental\n"
	"  status [NAME] [--json]         per folder: counts, state, last sync\n"
	"  ls NAME [--folder F] [--json]  messages, newest first\n"
	"  show MESSAGE_ID [--raw|--json] one message\n"
	"  flag MESSAGE_ID --seen|--unseen|--flagged|--unflagged\n"
	"  move MESSAGE_ID FOLDER | delete MESSAGE_ID [--permanent]\n"
	"  export NAME --format maildir|mbox --out PATH\n"
	"  providers [--json]             provider presets for account add\n"
	"  modes [--json]                 IMAP, POP3, API mode side by side\n"
	"  events [--after ID] [--follow] [--json] [--limit N]\n"
	"                                 the event feed, oldest first\n"
	"  send NAME --to ADDR --subject S [--text F] [--attach F]...\n"
	"                                 compose, queue and send a message\n"
	"  outbox [NAME] [--json] | run | retry ID | cancel ID\n"
	"                                 the durable outbox\n"
	"  token create --user U [--admin] [--expires DAYS] | list | revoke ID\n"
	"                                 HTTP API bearer tokens\n"
	"  contact add|edit|rm|list|show|import\n"
	"                                 the CRM's contacts (doc/crm.md)\n"
	"\n"
	"options:\n"
	"  -d DIR     data directory (default: $MXSYNC_DATA_DIR, else\n"
	"             $XDG_DATA_HOME/mxsync, else ~/.local/share/mxsync)\n"
	"  -v         more log output (repeat for debug)\n"
	"  -q         errors only\n"
	"  -D CATS    trace categories: imap,sync,store,webhook,smtp,pop3,all (credentials are\n"
	"             never printed); also MXSYNC_TRACE\n"
	"  --version  print the version\n"
	"\n"
	"Run 'mxsync COMMAND --help' for a command's options; see mxsync(1).\n";

void cli_print_json(const void *v, const char *fallback)
{
	char *enc = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	cli_print_json_text(enc ? enc : fallback);
	free(enc);
}

void cli_print_json_text(const char *enc)
{
	char *s = mx_json_term_safe(enc);

	printf("%s\n", s ? s : enc);
	free(s);
}

bool cli_is_help(const char *arg)
{
	return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int cli_exit_code(enum mx_err code)
{
	switch (code) {
	case MX_OK:
		return MX_EXIT_OK;
	case MX_ERR_INVAL:
	case MX_ERR_PARSE:
		return MX_EXIT_USAGE;
	case MX_ERR_NOTFOUND:
		return MX_EXIT_NOTFOUND;
	case MX_ERR_NET:
	case MX_ERR_TIMEOUT:
	case MX_ERR_TLS:
	case MX_ERR_PROTOCOL:
	case MX_ERR_SERVER:
		return MX_EXIT_TEMP;
	case MX_ERR_AUTH:
		return MX_EXIT_AUTH;
	case MX_ERR_STORE:
	case MX_ERR_STORE_FULL:
	case MX_ERR_SCHEMA:
	case MX_ERR_IO:
		return MX_EXIT_STORE;
	case MX_ERR_TLS_VERIFY:
	case MX_ERR_INSECURE:
		return MX_EXIT_SECURITY;
	case MX_ERR_CANCELLED:
		return MX_EXIT_INTERRUPTED;
	case MX_ERR_EXPIRED:
		return MX_EXIT_EXPIRED;
	default:
		return MX_EXIT_FAIL;
	}
}

int cli_fail(const struct mx_error *err)
{
	/* Details quote server replies and names: escaped. */
	fprintf(stderr, "mxsync: %s\n",
		err->detail[0] ? cli_safe(err->detail) : mx_strerror(err->code));
	return cli_exit_code(err->code);
}

struct mx_store *cli_open(struct cli *c, int *exit_r)
{
	struct mx_store *st = NULL;
	struct mx_error err;

	/* Only `account` may create a store: any other command on a
	 * directory without one is a mistyped -d, not a new store. */
	if ((c->may_create ? mx_store_open(c->data_dir, &st, &err)
			   : mx_store_open_existing(c->data_dir, &st, &err)) !=
	    MX_OK) {
		*exit_r = cli_fail(&err);
		return NULL;
	}
	return st;
}

static const struct {
	const char *name;
	int (*fn)(struct cli *, int, char **);
} commands[] = {
	{"account", cli_account}, {"sync", cli_sync},   {"status", cli_status},
	{"ls", cli_ls},           {"show", cli_show},   {"flag", cli_flag},
	{"export", cli_export},   {"providers", cli_providers},   {"events", cli_events},
	{"send", cli_send},       {"outbox", cli_outbox},
	{"modes", cli_modes},
	{"move", cli_move},       {"delete", cli_move},
	{"token", cli_token},
	{"contact", cli_contact},
};

/*
 * SIGINT/SIGTERM for commands without a handler of their own: a command
 * blocked on a server (flag, account add) must not wait for its timeout,
 * so the signal interrupts the network wait and the command fails with
 * "interrupted" (exit 130).  With no connection open the default action
 * ends the process as it always did.
 */
static void on_signal(int sig)
{
	if (mx_net_active()) {
		mx_net_interrupt();
		return;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

int main(int argc, char **argv)
{
	struct cli c = {NULL, "mxsync", false};
	int i;

	/* Before any secret is unsealed: no core dump may hold one. */
	if (mx_secrets_protect_process() != 0)
		fprintf(stderr, "mxsync: warning: cannot disable core dumps: "
			"%s\n", strerror(errno));
	/* libetpan and OpenSSL write to sockets without MSG_NOSIGNAL. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (getenv("MXSYNC_TRACE"))
		mx_trace_parse(getenv("MXSYNC_TRACE"), &mx_trace_mask);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-d") == 0 && i + 1 < argc) {
			c.data_dir = argv[++i];
			if (*c.data_dir == '\0') {
				fprintf(stderr, "mxsync: -d: empty data "
						"directory path\n");
				return MX_EXIT_USAGE;
			}
		} else if (strcmp(argv[i], "-D") == 0 && i + 1 < argc) {
			if (mx_trace_parse(argv[++i], &mx_trace_mask) < 0) {
				fprintf(stderr, "mxsync: -D: categories are "
						"imap,sync,store,webhook,smtp,pop3,all\n");
				return MX_EXIT_USAGE;
			}
		} else if (strcmp(argv[i], "-v") == 0) {
			mx_log_level++;
		} else if (strcmp(argv[i], "-vv") == 0) {
			mx_log_level += 2;
		} else if (strcmp(argv[i], "-q") == 0) {
			mx_log_level = MX_LOG_ERROR;
		} else if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("mxsync %s\n", MX_VERSION_STRING);
			return MX_EXIT_OK;
		} else {
			fprintf(stderr, "mxsync: unknown option '%s'\n%s",
				argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	if (i >= argc) {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(argv[i], commands[k].name) == 0) {
			c.may_create = commands[k].fn == cli_account ||
					commands[k].fn == cli_contact;
			return commands[k].fn(&c, argc - i, argv + i);
		}
	fprintf(stderr, "mxsync: unknown command '%s'\n%s", argv[i], usage);
	return MX_EXIT_USAGE;
}
