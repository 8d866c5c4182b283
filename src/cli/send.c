/* mxsync send, mxsync outbox */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "cli/cli.h"
#include "net/interrupt.h"
#include "send/outbox.h"
#include "account/account.h"

static const char send_usage[] =
	"usage: mxsync send NAME --to ADDR [--to ADDR]... [--cc ADDR]...\n"
	"                 [--bcc ADDR]... [--subject TEXT]\n"
	"                 [--text FILE|-] [--body TEXT] [--html FILE]\n"
	"                 [--attach FILE]... [--reply-to-message ID]\n"
	"                 [--idempotency-key KEY] [--bulk] [--queue-only]\n"
	"       mxsync send NAME --json [--queue-only] < message.json\n"
	"\n"
	"Composes the message, queues it in the store's outbox, and sends it\n"
	"at once unless --queue-only (a running mxsyncd sends queued mail).\n"
	"ADDR may be a list: 'Ann <ann@example.org>, bob@example.org'.\n"
	"--reply-to-message takes a stored message's id or <Message-ID>: the\n"
	"reply gets In-Reply-To, References and \"Re: subject\" and joins its\n"
	"thread.  --bulk mail goes only through the account's fallback relay.\n"
	"With --queue-only a running mxsyncd sends it within a second or two.\n"
	"The same --idempotency-key again returns the queued entry instead of\n"
	"sending a second message.  Exit status: 0 sent, 4 queued for a later\n"
	"attempt (temporary failure or daily limit; 0 with --queue-only),\n"
	"1 failed or not sendable from this account (no From address, no SMTP\n"
	"server, --bulk without a relay: nothing queued), 2 bad input (nothing\n"
	"queued), 3 no such account or message, 6 a file that cannot be read\n"
	"or a store problem.\n";

static const char outbox_usage[] =
	"usage: mxsync outbox [NAME] [--json]       queued, sent and failed mail\n"
	"       mxsync outbox show ID                one entry as JSON\n"
	"       mxsync outbox run [NAME] [--now]     send what is due (--now:\n"
	"                                            ignore retry back-off)\n"
	"       mxsync outbox retry ID               queue a failed entry again\n"
	"       mxsync outbox cancel ID              drop a queued or failed one\n";

static volatile int send_cancel;

static void on_signal(int sig)
{
	(void)sig;
	send_cancel = 1;
	/* Also end a read or connect blocked on a slow server. */
	mx_net_interrupt();
}

/* Appends V to the comma-separated list *L. */
static int list_add(char **l, const char *v)
{
	char *n;

	if (*l == NULL)
		n = strdup(v);
	else if (asprintf(&n, "%s, %s", *l, v) < 0)
		n = NULL;
	if (n == NULL)
		return -1;
	free(*l);
	*l = n;
	return 0;
}

/* PATH ("-": standard input) up to MAX bytes. */
static int read_input(const char *path, size_t max, char **data_r,
		      size_t *len_r, struct mx_error *err)
{
	if (strcmp(path, "-") == 0) {
		struct mx_buf b = {0};
		char buf[65536];
		size_t n;

		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
			if (b.len + n > max || mx_buf_append(&b, buf, n)) {
				mx_buf_free(&b);
				return mx_error_set(err, MX_ERR_INVAL, "standard "
						    "input: over %zu MB",
						    max >> 20);
			}
		*len_r = b.len;
		*data_r = b.data ? mx_buf_steal(&b) : strdup("");
		return *data_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	return mx_read_file(path, max, data_r, len_r, err);
}

/* Text and HTML bodies: 16 MB, as the JSON front end allows. */
static int read_text(const char *path, char **data_r, size_t *len_r,
		     struct mx_error *err)
{
	return read_input(path, (size_t)16 << 20, data_r, len_r, err);
}

static const char *fmt_time(int64_t t, char *buf, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		snprintf(buf, n, "-");
	else
		strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* The outcome of entry ID, as one line, and the exit code for it. */
static int report(struct mx_store *st, uint64_t id)
{
	struct mx_ob_entry e = {0};
	struct mx_error err;
	char when[32];
	int rc;

	if (mx_outbox_get(st, id, &e, &err) != MX_OK)
		return cli_fail(&err);
	/* Replies and errors quote the SMTP server: escaped. */
	switch (e.state) {
	case MX_OB_SENT:
		printf("sent %llu %s via %s: %s\n", (unsigned long long)e.id,
		       e.message_id, e.relay ? "the relay" : "the account",
		       cli_safe(e.data_reply));
		for (size_t i = 0; i < e.nresults; i++)
			if (e.results[i].code < 200 || e.results[i].code > 299)
				printf("  not accepted: %s: %s\n",
				       cli_safe(e.results[i].addr),
				       cli_safe(e.results[i].reply));
		if (!e.appended)
			printf("  not yet in Sent: %s\n",
			       e.last_error ? cli_safe(e.last_error) : "pending");
		rc = MX_EXIT_OK;
		break;
	case MX_OB_QUEUED:
		printf("queued %llu %s: next attempt %s%s%s\n",
		       (unsigned long long)e.id, e.message_id,
		       fmt_time(e.next_attempt, when, sizeof(when)),
		       e.last_error ? "; " : "", cli_safe(e.last_error));
		rc = MX_EXIT_TEMP;
		break;
	case MX_OB_FAILED:
		printf("failed %llu %s: %s\n", (unsigned long long)e.id,
		       e.message_id, cli_safe(e.last_error));
		rc = MX_EXIT_FAIL;
		break;
	default:
		printf("%s %llu %s\n", mx_ob_state_name(e.state),
		       (unsigned long long)e.id, e.message_id);
		rc = e.state == MX_OB_SENDING ? MX_EXIT_TEMP : MX_EXIT_FAIL;
		break;
	}
	mx_ob_entry_free(&e);
	return rc;
}

int cli_send(struct cli *c, int argc, char **argv)
{
	struct mx_compose comp = {0};
	struct mx_compose_req *req = NULL;
	struct mx_compose_att att[MX_COMPOSE_MAX_ATT];
	struct mx_account a = {0};
	struct mx_store *st = NULL;
	struct mx_error err;
	char *to = NULL, *cc = NULL, *bcc = NULL, *text = NULL, *html = NULL;
	char *irt = NULL, *refs = NULL, *re_subject = NULL, *json = NULL;
	char *thread = NULL;
	const char *reply = NULL, *key = NULL;
	bool bulk = false, queue_only = false, use_json = false, existing;
	size_t natt = 0, len;
	uint64_t id = 0;
	int rc = MX_EXIT_OK;

	if (argc < 2 || argv[1][0] == '-') {
		fputs(send_usage, cli_is_help(argc > 1 ? argv[1] : "") ? stdout
								      : stderr);
		return argc > 1 && cli_is_help(argv[1]) ? MX_EXIT_OK
							: MX_EXIT_USAGE;
	}
	memset(att, 0, sizeof(att));
	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];
		bool v = i + 1 < argc;

		if (strcmp(o, "--to") == 0 && v) {
			if (list_add(&to, argv[++i]) < 0)
				goto nomem;
		} else if (strcmp(o, "--cc") == 0 && v) {
			if (list_add(&cc, argv[++i]) < 0)
				goto nomem;
		} else if (strcmp(o, "--bcc") == 0 && v) {
			if (list_add(&bcc, argv[++i]) < 0)
				goto nomem;
		} else if (strcmp(o, "--subject") == 0 && v) {
			comp.subject = argv[++i];
		} else if (strcmp(o, "--text") == 0 && v) {
			free(text);
			if (read_text(argv[++i], &text, &comp.text_len, &err)) {
				rc = cli_fail(&err);
				goto out;
			}
			comp.text = text;
		} else if (strcmp(o, "--body") == 0 && v) {
			comp.text = argv[++i];
			comp.text_len = strlen(comp.text);
		} else if (strcmp(o, "--html") == 0 && v) {
			free(html);
			if (read_text(argv[++i], &html, &comp.html_len, &err)) {
				rc = cli_fail(&err);
				goto out;
			}
			comp.html = html;
		} else if (strcmp(o, "--attach") == 0 && v) {
			if (natt == MX_COMPOSE_MAX_ATT) {
				fprintf(stderr, "mxsync: send: at most %d "
						"attachments\n", MX_COMPOSE_MAX_ATT);
				rc = MX_EXIT_USAGE;
				goto out;
			}
			att[natt++].path = argv[++i];
		} else if (strcmp(o, "--reply-to-message") == 0 && v) {
			reply = argv[++i];
		} else if (strcmp(o, "--idempotency-key") == 0 && v) {
			key = argv[++i];
		} else if (strcmp(o, "--bulk") == 0) {
			bulk = true;
		} else if (strcmp(o, "--queue-only") == 0) {
			queue_only = true;
		} else if (strcmp(o, "--json") == 0) {
			use_json = true;
		} else if (cli_is_help(o)) {
			fputs(send_usage, stdout);
			goto out;
		} else {
			fprintf(stderr, "mxsync: send: bad argument '%s'\n%s", o,
				send_usage);
			rc = MX_EXIT_USAGE;
			goto out;
		}
	}
	if (use_json) {
		if (to || cc || bcc || comp.subject || comp.text || comp.html ||
		    natt || reply || key || bulk) {
			fprintf(stderr, "mxsync: send: --json takes the whole "
					"message from standard input; no other "
					"message options\n");
			rc = MX_EXIT_USAGE;
			goto out;
		}
		/* The JSON front end's own cap is 48 MB. */
		if (read_input("-", (size_t)48 << 20, &json, &len, &err) != MX_OK ||
		    mx_compose_req_from_json(json, len, &req, &err) != MX_OK) {
			rc = cli_fail(&err);
			goto out;
		}
		comp = req->c;
		reply = req->reply_to_message;
		key = req->idempotency_key;
		bulk = req->c.bulk;
	} else {
		comp.to = to;
		comp.cc = cc;
		comp.bcc = bcc;
		comp.att = att;
		comp.natt = natt;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		goto out;
	if (mx_account_load(st, argv[1], &a, &err) != MX_OK) {
		rc = cli_fail(&err);
		goto out;
	}
	if (reply) {
		if (mx_outbox_reply_headers(st, &a, reply, &irt, &refs,
					    &re_subject, &thread,
					    &err) != MX_OK) {
			rc = cli_fail(&err);
			goto out;
		}
		comp.in_reply_to = irt;
		comp.references = refs;
		comp.thread = thread;
		if (comp.subject == NULL)
			comp.subject = re_subject;
	}
	if (mx_outbox_enqueue(st, &a, &comp, key, bulk, &id, &existing,
			      &err) != MX_OK) {
		rc = cli_fail(&err);
		goto out;
	}
	if (existing) {
		printf("already queued as %llu (same idempotency key)\n",
		       (unsigned long long)id);
	} else if (!queue_only) {
		struct mx_ob_run_opts ro = {a.id, id, true, &send_cancel, NULL,
					    NULL};

		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		if (mx_outbox_run(st, &ro, NULL, &err) != MX_OK) {
			rc = cli_fail(&err);
			goto out;
		}
	}
	rc = report(st, id);
	/* Queued is what --queue-only asked for. */
	if (queue_only && rc == MX_EXIT_TEMP)
		rc = MX_EXIT_OK;
	goto out;
nomem:
	fprintf(stderr, "mxsync: out of memory\n");
	rc = MX_EXIT_FAIL;
out:
	mx_account_free(&a);
	mx_store_close(&st);
	mx_compose_req_free(&req);
	free(to);
	free(cc);
	free(bcc);
	free(text);
	free(html);
	free(irt);
	free(refs);
	free(re_subject);
	free(thread);
	free(json);
	return rc;
}

/* ---- outbox ---- */

static int parse_id(const char *s, uint64_t *id)
{
	return mx_parse_u64(s, 1, UINT64_MAX, id);
}

static int account_id_of(struct mx_store *st, const char *name, uint32_t *id)
{
	struct mx_account a = {0};
	struct mx_error err;

	if (mx_account_load(st, name, &a, &err) != MX_OK)
		return cli_fail(&err);
	*id = a.id;
	mx_account_free(&a);
	return MX_EXIT_OK;
}

static int outbox_list(struct mx_store *st, const char *name, bool json)
{
	struct mx_account *accts = NULL;
	struct mx_ob_entry *v = NULL;
	struct mx_error err;
	size_t n = 0, na = 0;
	uint32_t acct = 0;
	json_t *arr = json_array();
	int rc = MX_EXIT_OK;

	if (name && (rc = account_id_of(st, name, &acct)) != MX_EXIT_OK)
		goto out;
	if (mx_account_list_all(st, &accts, &na, &err) != MX_OK) {
		rc = cli_fail(&err);
		goto out;
	}
	if (mx_outbox_list(st, acct, &v, &n, &err) != MX_OK) {
		rc = cli_fail(&err);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *an = NULL;

		for (size_t k = 0; k < na; k++)
			if (accts[k].id == v[i].account_id)
				an = accts[k].name;
		json_array_append_new(arr, mx_ob_entry_json(&v[i], an));
	}
	if (json) {
		cli_print_json(arr, "[]");
	} else {
		size_t i;
		json_t *o;

		json_array_foreach(arr, i, o) {
			char when[32];

			printf("%-6lld %-9s %-12s %-20s %s%s%s\n",
			       (long long)json_integer_value(json_object_get(o, "id")),
			       json_string_value(json_object_get(o, "state")),
			       json_string_value(json_object_get(o, "account_name"))
				       ? json_string_value(json_object_get(o, "account_name"))
				       : "?",
			       fmt_time(json_integer_value(json_object_get(
						o, v[i].state == MX_OB_SENT
							   ? "sent_at" : "next_attempt")),
					when, sizeof(when)),
			       json_string_value(json_object_get(o, "subject"))
				       ? cli_safe(json_string_value(json_object_get(o, "subject")))
				       : "(no subject)",
			       v[i].last_error ? " -- " : "",
			       cli_safe(v[i].last_error));
		}
		if (n == 0)
			printf("outbox empty\n");
	}
out:
	json_decref(arr);
	mx_ob_entries_free(v, n);
	mx_accounts_free(accts, na);
	return rc;
}

int cli_outbox(struct cli *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	struct mx_store *st;
	struct mx_error err;
	uint64_t id = 0;
	int rc = MX_EXIT_OK;

	if (sub && cli_is_help(sub)) {
		fputs(outbox_usage, stdout);
		return MX_EXIT_OK;
	}
	if (sub && (strcmp(sub, "show") == 0 || strcmp(sub, "retry") == 0 ||
		    strcmp(sub, "cancel") == 0) &&
	    (argc != 3 || parse_id(argv[2], &id) < 0)) {
		fprintf(stderr, "mxsync: outbox %s: give one entry id\n%s", sub,
			outbox_usage);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (sub && strcmp(sub, "show") == 0) {
		struct mx_ob_entry e = {0};

		if (mx_outbox_get(st, id, &e, &err) != MX_OK) {
			rc = cli_fail(&err);
		} else {
			json_t *o = mx_ob_entry_json(&e, NULL);

			cli_print_json(o, "{}");
			json_decref(o);
		}
		mx_ob_entry_free(&e);
	} else if (sub && strcmp(sub, "retry") == 0) {
		if (mx_outbox_retry(st, id, &err) != MX_OK)
			rc = cli_fail(&err);
		else
			printf("outbox entry %llu queued again\n",
			       (unsigned long long)id);
	} else if (sub && strcmp(sub, "cancel") == 0) {
		if (mx_outbox_cancel(st, id, &err) != MX_OK)
			rc = cli_fail(&err);
		else
			printf("outbox entry %llu cancelled\n",
			       (unsigned long long)id);
	} else if (sub && strcmp(sub, "run") == 0) {
		struct mx_ob_run_opts ro = {0, 0, false, &send_cancel, NULL,
					    NULL};
		struct mx_ob_run_stats s;

		for (int i = 2; i < argc && rc == MX_EXIT_OK; i++) {
			if (strcmp(argv[i], "--now") == 0)
				ro.now = true;
			else if (argv[i][0] != '-' && ro.account_id == 0)
				rc = account_id_of(st, argv[i], &ro.account_id);
			else {
				fprintf(stderr, "mxsync: outbox run: bad argument "
						"'%s'\n", argv[i]);
				rc = MX_EXIT_USAGE;
			}
		}
		signal(SIGINT, on_signal);
		signal(SIGTERM, on_signal);
		if (rc == MX_EXIT_OK) {
			if (mx_outbox_run(st, &ro, &s, &err) != MX_OK)
				rc = cli_fail(&err);
			else
				printf("sent %u (relay %u), failed %u, deferred %u, "
				       "held %u, copied to Sent %u, recovered %u\n",
				       s.sent, s.relayed, s.failed, s.deferred,
				       s.held, s.appended, s.recovered);
		}
	} else {
		const char *name = NULL;
		bool json = false;

		for (int i = 1; i < argc && rc == MX_EXIT_OK; i++) {
			if (strcmp(argv[i], "--json") == 0)
				json = true;
			else if (argv[i][0] != '-' && name == NULL)
				name = argv[i];
			else {
				fprintf(stderr, "mxsync: outbox: bad argument "
						"'%s'\n%s", argv[i], outbox_usage);
				rc = MX_EXIT_USAGE;
			}
		}
		if (rc == MX_EXIT_OK)
			rc = outbox_list(st, name, json);
	}
	mx_store_close(&st);
	return rc;
}
