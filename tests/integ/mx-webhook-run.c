/*
 * mx-webhook-run: test driver for webhook delivery (tests/integ/t-webhook.sh).
 * Runs one or more endpoints of src/lib/events/webhook.c against a store,
 * the way the daemon will, until each --until condition holds or
 * --seconds pass, then stops them and prints their status.
 *
 * usage: mx-webhook-run -d DIR [ENDPOINT OPTIONS] --endpoint NAME URL ...
 *                       [--until NAME=ID|last]... [--seconds N]
 *        mx-webhook-run -d DIR --set-cursor NAME=ID
 *        mx-webhook-run -d DIR --prune MAX_AGE_S MAX_COUNT
 *
 * Endpoint options apply to the --endpoint options after them:
 *   --secret S  --types T1,T2  --ca FILE  --timeout S  --max-backoff S
 * --until NAME=last waits for the newest event id, read again each time.
 * Output, one line per endpoint after it stopped (cursor: as persisted):
 *   NAME cursor=N delivered=N failures=N next_attempt=T error=TEXT
 * Exit status: 0 conditions met (or SIGINT/SIGTERM), 1 error, 2 time out.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events/events.h"
#include "store/store.h"

#define MAX_EP 8

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

struct ep {
	struct mx_webhook_cfg cfg;
	struct mx_webhook *wh;
	const char *types_buf[16];
	bool until;
	bool until_last;
	uint64_t until_id;
};

static int usage(void)
{
	fputs("usage: mx-webhook-run -d DIR [--secret S] [--types A,B] "
	      "[--ca F] [--timeout S]\n"
	      "         [--max-backoff S] --endpoint NAME URL ... "
	      "[--until NAME=ID|last]... [--seconds N]\n"
	      "       mx-webhook-run -d DIR --set-cursor NAME=ID\n"
	      "       mx-webhook-run -d DIR --prune MAX_AGE_S MAX_COUNT\n",
	      stderr);
	return 1;
}

static int split_types(char *list, const char **v, size_t cap)
{
	size_t n = 0;

	for (char *tok = strtok(list, ","); tok && n < cap;
	     tok = strtok(NULL, ","))
		v[n++] = tok;
	return (int)n;
}

static int cursor_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	char *arg = ctx, *eq = strchr(arg, '=');
	uint8_t be[8];

	mx_put_be64(be, strtoull(eq + 1, NULL, 10));
	return mx_db_put(t, MX_DB_WEBHOOKS, arg, (size_t)(eq - arg), be, 8, 0,
			 err);
}

static uint64_t saved_cursor(struct mx_store *st, const char *name,
			     uint64_t dflt)
{
	struct mx_txn t;
	MDB_val v;

	if (mx_txn_begin(st, false, &t, NULL) != MX_OK)
		return dflt;
	if (mx_db_get(&t, MX_DB_WEBHOOKS, name, strlen(name), &v, NULL) ==
	    MX_OK && v.mv_size == 8)
		dflt = mx_get_be64(v.mv_data);
	mx_txn_abort(&t);
	return dflt;
}

int main(int argc, char **argv)
{
	struct ep eps[MAX_EP];
	size_t nep = 0;
	const char *dir = NULL, *secret = "test-secret", *ca = NULL;
	char *types = NULL, *set_cursor = NULL;
	int timeout_s = 10, max_backoff_s = 0, seconds = 60, rc = 0;
	bool prune = false, any_until = false;
	int64_t prune_age = 0;
	uint64_t prune_count = 0, t0;
	struct mx_store *st = NULL;
	struct mx_error err;
	struct sigaction sa;

	memset(eps, 0, sizeof(eps));
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool more = i + 1 < argc;

		if (strcmp(a, "-d") == 0 && more) {
			dir = argv[++i];
		} else if (strcmp(a, "-v") == 0) {
			mx_log_level = MX_LOG_DEBUG;
		} else if (strcmp(a, "--secret") == 0 && more) {
			secret = argv[++i];
		} else if (strcmp(a, "--types") == 0 && more) {
			types = argv[++i];
		} else if (strcmp(a, "--ca") == 0 && more) {
			ca = argv[++i];
		} else if (strcmp(a, "--timeout") == 0 && more) {
			timeout_s = atoi(argv[++i]);
		} else if (strcmp(a, "--max-backoff") == 0 && more) {
			max_backoff_s = atoi(argv[++i]);
		} else if (strcmp(a, "--seconds") == 0 && more) {
			seconds = atoi(argv[++i]);
		} else if (strcmp(a, "--endpoint") == 0 && i + 2 < argc &&
			   nep < MAX_EP) {
			struct ep *e = &eps[nep++];

			e->cfg.name = argv[++i];
			e->cfg.url = argv[++i];
			e->cfg.secret = secret;
			e->cfg.ca_file = ca;
			e->cfg.timeout_s = timeout_s;
			e->cfg.max_backoff_s = max_backoff_s;
			if (types) {
				char *copy = strdup(types);

				/* leaked on purpose: lives as long as the
				 * endpoint, i.e. the process */
				e->cfg.ntypes = (size_t)split_types(
					copy, e->types_buf,
					MX_ARRAY_SIZE(e->types_buf));
				e->cfg.types = e->types_buf;
				types = NULL;
			}
		} else if (strcmp(a, "--until") == 0 && more) {
			char *arg = argv[++i], *eq = strchr(arg, '=');
			size_t k;

			if (eq == NULL)
				return usage();
			for (k = 0; k < nep; k++)
				if (strlen(eps[k].cfg.name) == (size_t)(eq - arg) &&
				    strncmp(eps[k].cfg.name, arg,
					    (size_t)(eq - arg)) == 0)
					break;
			if (k == nep)
				return usage();
			eps[k].until = true;
			if (strcmp(eq + 1, "last") == 0)
				eps[k].until_last = true;
			else
				eps[k].until_id = strtoull(eq + 1, NULL, 10);
		} else if (strcmp(a, "--set-cursor") == 0 && more &&
			   strchr(argv[i + 1], '=')) {
			set_cursor = argv[++i];
		} else if (strcmp(a, "--prune") == 0 && i + 2 < argc) {
			prune = true;
			prune_age = strtoll(argv[++i], NULL, 10);
			prune_count = strtoull(argv[++i], NULL, 10);
		} else {
			return usage();
		}
	}
	if (dir == NULL || (nep == 0 && !prune && !set_cursor))
		return usage();
	signal(SIGPIPE, SIG_IGN);
	mx_error_clear(&err);
	if (mx_store_open(dir, &st, &err) != MX_OK) {
		fprintf(stderr, "mx-webhook-run: %s\n", err.detail);
		return 1;
	}
	if (set_cursor) {
		rc = mx_store_write(st, cursor_fn, set_cursor, &err);
		goto out;
	}
	if (prune) {
		uint64_t n = 0;

		rc = mx_events_prune(st, prune_age, prune_count, &n, &err);
		if (rc == MX_OK)
			printf("pruned %" PRIu64 "\n", n);
		goto out;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	for (size_t k = 0; k < nep; k++) {
		rc = mx_webhook_start(st, &eps[k].cfg, &eps[k].wh, &err);
		if (rc)
			goto stop;
	}
	for (size_t k = 0; k < nep; k++)
		any_until = any_until || eps[k].until;
	t0 = mx_now_ms();
	for (;;) {
		bool done = true;
		uint64_t last = 0;

		if (stop_flag)
			break;
		if (mx_events_last_id(st, &last, &err) != MX_OK) {
			rc = err.code;
			break;
		}
		for (size_t k = 0; k < nep; k++) {
			struct mx_webhook_status s;
			uint64_t want;

			if (!eps[k].until)
				continue;
			mx_webhook_status(eps[k].wh, &s);
			want = eps[k].until_last ? last : eps[k].until_id;
			if (s.cursor < want)
				done = false;
		}
		if (any_until && done)
			break;
		if (mx_now_ms() - t0 >= (uint64_t)seconds * 1000) {
			rc = any_until ? -2 : 0;
			break;
		}
		usleep(20000);
	}
stop:
	for (size_t k = 0; k < nep; k++) {
		struct mx_webhook_status s;

		if (eps[k].wh == NULL)
			continue;
		mx_webhook_status(eps[k].wh, &s);
		mx_webhook_stop(&eps[k].wh);
		/* What a restart will resume from: the request in flight
		 * when the snapshot was taken may have completed since. */
		s.cursor = saved_cursor(st, eps[k].cfg.name, s.cursor);
		printf("%s cursor=%" PRIu64 " delivered=%" PRIu64
		       " failures=%" PRIu64 " next_attempt=%" PRId64
		       " error=%s\n", eps[k].cfg.name, s.cursor, s.delivered,
		       s.failures, s.next_attempt, s.last_error);
	}
	fflush(stdout);
out:
	if (rc > 0)
		fprintf(stderr, "mx-webhook-run: %s\n", err.detail);
	mx_store_close(&st);
	return rc == -2 ? 2 : rc ? 1 : 0;
}
