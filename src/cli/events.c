/* mxsync events [--after ID] [--follow] [--json] [--limit N] */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "events/events.h"

static const char usage[] =
	"usage: mxsync events [--after ID] [--follow] [--json] [--limit N]\n"
	"\n"
	"Prints the event feed, oldest first: the events after ID (default:\n"
	"every retained event).  --json prints one JSON object per line.\n"
	"--follow keeps printing events as other processes commit them,\n"
	"until SIGINT or SIGTERM.  --limit stops after N events.  A cursor\n"
	"older than the retained feed is an error: the consumer must resync.\n";

/* Events per read: bounds memory whatever the size of the feed. */
#define PAGE 1000
/* --follow: the fallback when inotify cannot watch the store (a network
 * file system, inotify disabled or out of watches).  MX_EVENTS_POLL_MS
 * overrides it, for the test that shows inotify alone wakes us. */
#define FOLLOW_POLL_MS 200

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

/* Plain words as they are; anything a shell user would misread, as JSON. */
static void print_value(json_t *v)
{
	const char *s = json_string_value(v);
	char *enc;

	if (s && s[0] && strcspn(s, " \t\r\n\"=\\") == strlen(s) &&
	    mx_term_safe(s)) {
		fputs(s, stdout);
		return;
	}
	/* JSON escapes C0 controls but leaves DEL and C1 controls as they
	 * are: through cli_safe() too. */
	enc = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (enc)
		fputs(cli_safe(enc), stdout);
	free(enc);
}

/* "ID TIME TYPE account=N folder=F message=M key=value..." */
static void print_line(json_t *ev)
{
	time_t t = (time_t)json_integer_value(json_object_get(ev, "time"));
	const char *key;
	json_t *v;
	struct tm tm;
	char when[32] = "-";

	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%" JSON_INTEGER_FORMAT " %s %s",
	       json_integer_value(json_object_get(ev, "id")), when,
	       json_string_value(json_object_get(ev, "type"))
		       ? json_string_value(json_object_get(ev, "type")) : "-");
	/* Stored order: id, type, time, account, folder, message, extras. */
	json_object_foreach(ev, key, v) {
		if (strcmp(key, "id") == 0 || strcmp(key, "type") == 0 ||
		    strcmp(key, "time") == 0)
			continue;
		printf(" %s=", key);
		print_value(v);
	}
	putchar('\n');
}

static int oldest_cursor(struct mx_store *st, uint64_t *after_r,
			 struct mx_error *err)
{
	struct mx_txn t;
	uint64_t oldest;
	int rc;

	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_events_oldest(&t, &oldest, err);
	mx_txn_abort(&t);
	if (rc == MX_OK)
		*after_r = oldest - 1;
	return rc;
}

/* Sleeps until the store changes (WFD readable, mx_store_watch) or
 * POLL_MS passed. */
static void follow_wait(int wfd, int poll_ms)
{
	if (wfd < 0) {
		struct timespec ts = {poll_ms / 1000,
				      (poll_ms % 1000) * 1000000L};

		nanosleep(&ts, NULL);
		return;
	}
	{
		struct pollfd pfd = {.fd = wfd, .events = POLLIN};

		poll(&pfd, 1, poll_ms);
	}
	/* Drain before the next read (see mx_store_watch). */
	mx_store_watch_drain(wfd);
}

int cli_events(struct cli *c, int argc, char **argv)
{
	bool json = false, follow = false, have_after = false;
	uint64_t after = 0, limit = 0, printed = 0;
	struct sigaction sa;
	struct mx_store *st;
	struct mx_error err;
	int rc = MX_EXIT_OK, wfd = -1, poll_ms = FOLLOW_POLL_MS;
	const char *pe = getenv("MX_EVENTS_POLL_MS");

	for (int i = 1; i < argc; i++) {
		int at = i; /* the option, for the error message */

		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--follow") == 0) {
			follow = true;
		} else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
			if (!cli_number("events", "--after", argv[++i], 0,
					UINT64_MAX, &after))
				return MX_EXIT_USAGE;
			have_after = true;
		} else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			if (!cli_number("events", "--limit", argv[++i], 1,
					UINT64_MAX, &limit))
				return MX_EXIT_USAGE;
		} else if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		} else {
			goto bad;
		}
		continue;
bad:
		fprintf(stderr, "mxsync: events: bad argument '%s%s%s'\n%s",
			argv[at], i > at ? " " : "", i > at ? argv[i] : "",
			usage);
		return MX_EXIT_USAGE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: end the sleep at once */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	mx_error_clear(&err);
	if (pe && atoi(pe) > 0)
		poll_ms = atoi(pe);
	/* Watch before the first read: nothing committed after it is missed. */
	if (follow)
		wfd = mx_store_watch(st);
	/* Without --after, start at the oldest retained event rather than at
	 * 0, which a prune has made an expired cursor. */
	if (!have_after && oldest_cursor(st, &after, &err) != MX_OK) {
		rc = cli_fail(&err);
		goto out;
	}
	while (!stop_flag) {
		size_t want = PAGE, got, i;
		json_t *arr, *ev;

		if (limit && limit - printed < want)
			want = (size_t)(limit - printed);
		if (mx_events_read(st, after, want, &arr, &after, &err) !=
		    MX_OK) {
			/* MX_ERR_EXPIRED maps to the generic failure status;
			 * the message says "resync". */
			rc = cli_fail(&err);
			goto out;
		}
		json_array_foreach(arr, i, ev) {
			if (json) {
				char *enc = json_dumps(ev, JSON_COMPACT |
							   JSON_PRESERVE_ORDER);
				char *s = enc ? mx_json_term_safe(enc) : NULL;

				if (s)
					puts(s);
				free(s);
				free(enc);
			} else {
				print_line(ev);
			}
		}
		got = json_array_size(arr);
		printed += got;
		json_decref(arr);
		/* Follow mode is read by pipes: hand each page over now. */
		if (fflush(stdout) != 0 || ferror(stdout)) {
			fprintf(stderr, "mxsync: events: writing output: %s\n",
				strerror(errno));
			rc = MX_EXIT_FAIL;
			goto out;
		}
		if (limit && printed >= limit)
			break;
		if (got == want) /* a full page: more may be waiting */
			continue;
		if (!follow)
			break;
		follow_wait(wfd, poll_ms);
	}
out:
	if (wfd >= 0)
		close(wfd);
	mx_store_close(&st);
	return rc;
}
