/* mxsync sync NAME [--folder F]... */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "net/interrupt.h"
#include "util/util.h"

static const char usage[] =
	"usage: mxsync sync NAME [--folder FOLDER]... [--batch N]\n"
	"\n"
	"Synchronizes account NAME once: a full sync of folders never synced\n"
	"(newest mail first, resumable), an incremental one (QRESYNC,\n"
	"CONDSTORE or UID diff) otherwise.  Default folders: all but \\Junk and\n"
	"\\Trash.  SIGINT/SIGTERM stop at once (exit 130); committed batches\n"
	"are kept.\n";

static volatile int cancel_flag;

static void on_signal(int sig)
{
	(void)sig;
	cancel_flag = 1;
	/* Also end a read or connect blocked on a slow server. */
	mx_net_interrupt();
}

struct prog_state {
	bool tty;
	uint64_t t0, last;
	const char *folder;
};

static void progress(const struct mx_sync_progress *p, void *ctx)
{
	struct prog_state *ps = ctx;
	uint64_t now = mx_now_ms();
	double secs = (double)(now - ps->t0) / 1000.0;
	double mb = (double)p->bytes_done / 1e6, mbt = (double)p->bytes_total / 1e6;
	double rate = secs > 0 ? mb / secs : 0;
	double eta = rate > 0 ? (mbt - mb) / rate : 0;

	if (ps->folder != p->folder) {
		ps->folder = p->folder;
		ps->t0 = now;
		rate = eta = 0;
	}
	if (ps->tty) {
		fprintf(stderr, "\r\033[K%-20.20s %" PRIu64 "/%" PRIu64
			" msgs  %.1f/%.1f MB  %.1f MB/s  ETA %d:%02d",
			cli_safe(p->folder), p->msgs_done, p->msgs_total, mb, mbt, rate,
			(int)eta / 60, (int)eta % 60);
	} else if (now - ps->last >= 5000 || p->msgs_done == p->msgs_total) {
		if (p->msgs_total == 0)
			return;
		fprintf(stderr, "mxsync: %s/%s: %" PRIu64 "/%" PRIu64
			" messages, %.1f/%.1f MB\n", p->account, cli_safe(p->folder),
			p->msgs_done, p->msgs_total, mb, mbt);
		ps->last = now;
	}
}

int cli_sync(struct cli *c, int argc, char **argv)
{
	struct mx_sync_opts opts = {0};
	struct mx_sync_stats stats;
	struct prog_state ps = {0};
	struct sigaction sa;
	struct mx_store *st;
	struct mx_error err;
	const char **folders;
	const char *name = NULL;
	uint64_t t0;
	int rc = 0;

	folders = calloc((size_t)argc + 1, sizeof(*folders));
	if (folders == NULL)
		return MX_EXIT_FAIL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--folder") == 0 && i + 1 < argc)
			folders[opts.nfolders++] = argv[++i];
		else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
			uint64_t v;

			if (!cli_number("sync", "--batch", argv[++i], 1,
					MX_SYNC_BATCH_MSGS_MAX, &v)) {
				free(folders);
				return MX_EXIT_USAGE;
			}
			opts.batch_msgs = (unsigned)v;
		} else if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			free(folders);
			return MX_EXIT_OK;
		} else if (argv[i][0] != '-' && name == NULL)
			name = argv[i];
		else {
			fprintf(stderr, "mxsync: sync: bad argument '%s'\n%s",
				argv[i], usage);
			free(folders);
			return MX_EXIT_USAGE;
		}
	}
	if (name == NULL) {
		fputs(usage, stderr);
		free(folders);
		return MX_EXIT_USAGE;
	}
	if (opts.nfolders)
		opts.folders = folders;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	opts.cancel = &cancel_flag;
	ps.tty = isatty(STDERR_FILENO);
	ps.t0 = t0 = mx_now_ms();
	opts.progress = progress;
	opts.progress_ctx = &ps;
	st = cli_open(c, &rc);
	if (st == NULL) {
		free(folders);
		return rc;
	}
	rc = mx_sync(st, name, &opts, &stats, &err);
	if (ps.tty)
		fputs("\r\033[K", stderr);
	printf("%s: %" PRIu64 " folders, %" PRIu64 " new messages (%.1f MB), %"
	       PRIu64 " flag updates, %" PRIu64 " expunged, %" PRIu64
	       " re-mapped, %" PRIu64 " deleted, %" PRIu64
	       " unparsable, in %.2f s\n",
	       name, stats.folders, stats.new_msgs, (double)stats.new_bytes / 1e6,
	       stats.updated, stats.expunged, stats.remapped, stats.deleted,
	       stats.parse_errors, (double)(mx_now_ms() - t0) / 1000.0);
	if (stats.missing)
		fprintf(stderr, "mxsync: warning: %" PRIu64 " message(s) were "
				"not returned by the server; the next sync asks "
				"for them again\n", stats.missing);
	if (rc != MX_OK) {
		int code = cli_fail(&err);

		rc = (rc == MX_ERR_SERVER && stats.folder_errors) ? MX_EXIT_PARTIAL
								  : code;
	}
	mx_store_close(&st);
	free(folders);
	return rc;
}
