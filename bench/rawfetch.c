/*
 * rawfetch -- the practical limit for bench/sync-vs-mbsync: an IMAP client
 * that logs in, SELECTs a folder and streams
 *   UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])
 * through libetpan's msg_att + body handlers over mxsync's own transport
 * (src/lib/net, OpenSSL, certificate verified), counting the body bytes and
 * discarding them.  No parsing, hashing or storing: whatever mxsync does on
 * top of this is its own cost.
 *
 *   rawfetch --port N (--tls --ca FILE | --plain) --user U --password-file F
 *            [--host 127.0.0.1] [--folder INBOX] [--select-only]
 *
 * Prints one line:
 *   messages=N bytes=B rfc822_size=S fetch_s=T total_s=T2
 * fetch_s is the UID FETCH command alone; total_s includes connect, TLS
 * handshake, LOGIN and SELECT.  --select-only stops after SELECT (then
 * LOGOUT): the floor of any resync, and a way to let Dovecot bring its
 * index up to date with its Maildir before a timed run.
 * Exit 0 on success, 1 on any error.
 *
 * Built by bench/sync-vs-mbsync with one cc command line (see there):
 *   cc -O2 -I include -I src/lib bench/rawfetch.c src/lib/net/tls.c
 *      src/lib/util/err.c src/lib/util/util.c $(pkg-config --cflags --libs
 *      libetpan openssl) -lpthread
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libetpan/libetpan.h>

#include "net/net.h"
#include "util/util.h"

struct counts {
	uint64_t messages;
	uint64_t bytes;
	uint64_t rfc822_size;
	uint32_t max_uid;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Body bytes in chunks: count, then let libetpan drop them (true). */
static bool body_handler(int type, struct mailimap_msg_att_body_section *sec,
			 const char *bytes, size_t len, void *ctx)
{
	struct counts *c = ctx;

	(void)type;
	(void)sec;
	(void)bytes;
	c->bytes += len;
	return true;
}

/* One FETCH response, as it is parsed; libetpan frees it afterwards. */
static void att_handler(struct mailimap_msg_att *att, void *ctx)
{
	struct counts *c = ctx;
	clistiter *it;

	for (it = clist_begin(att->att_list); it; it = clist_next(it)) {
		struct mailimap_msg_att_item *item = clist_content(it);
		struct mailimap_msg_att_static *s;

		if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC)
			continue;
		s = item->att_data.att_static;
		if (s->att_type == MAILIMAP_MSG_ATT_UID &&
		    s->att_data.att_uid > c->max_uid)
			c->max_uid = s->att_data.att_uid;
		else if (s->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE)
			c->rfc822_size += s->att_data.att_rfc822_size;
	}
	c->messages++;
}

/* libetpan 1.9.4 passes the msg_att handler to its parser only when a
 * progress callback is installed (see src/backends/imap.c). */
static void progress_noop(size_t current, size_t maximum, void *ctx)
{
	(void)current;
	(void)maximum;
	(void)ctx;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: rawfetch --port N (--tls --ca FILE | --plain) --user U "
		"--password-file F [--host H] [--folder F] [--select-only]\n");
	exit(2);
}

static char *read_password(const char *path)
{
	char buf[512];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return strdup(buf);
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1", *ca = NULL, *user = NULL;
	const char *pwfile = NULL, *folder = "INBOX";
	int port = 0, tls = -1;
	bool select_only = false;
	struct mx_net_opts opts = {0};
	struct mx_error err = {0};
	struct counts cnt = {0};
	mailstream *stream = NULL;
	mailimap *imap;
	struct mailimap_set *set;
	struct mailimap_fetch_type *ft;
	clist *res = NULL;
	double t0, t1, t2;
	char *pw;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--tls"))
			tls = 1;
		else if (!strcmp(a, "--plain"))
			tls = 0;
		else if (!strcmp(a, "--select-only"))
			select_only = true;
		else if (i + 1 >= argc)
			usage();
		else if (!strcmp(a, "--host"))
			host = argv[++i];
		else if (!strcmp(a, "--port"))
			port = atoi(argv[++i]);
		else if (!strcmp(a, "--ca"))
			ca = argv[++i];
		else if (!strcmp(a, "--user"))
			user = argv[++i];
		else if (!strcmp(a, "--password-file"))
			pwfile = argv[++i];
		else if (!strcmp(a, "--folder"))
			folder = argv[++i];
		else
			usage();
	}
	if (port <= 0 || port > 65535 || tls < 0 || user == NULL ||
	    pwfile == NULL || (tls && ca == NULL))
		usage();
	signal(SIGPIPE, SIG_IGN);
	pw = read_password(pwfile);
	opts.ca_file = ca;
	opts.timeout_s = 120;

	t0 = now_s();
	if (mx_net_connect(host, (uint16_t)port, tls == 1, &opts, &stream,
			   &err) != MX_OK) {
		fprintf(stderr, "rawfetch: connect: %s\n", err.detail);
		return 1;
	}
	imap = mailimap_new(0, NULL);
	if (imap == NULL)
		return 1;
	mailimap_set_timeout(imap, 120);
	r = mailimap_connect(imap, stream);
	if (r != MAILIMAP_NO_ERROR && r != MAILIMAP_NO_ERROR_AUTHENTICATED &&
	    r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED) {
		fprintf(stderr, "rawfetch: greeting failed (%d)\n", r);
		return 1;
	}
	r = mailimap_login(imap, user, pw);
	if (r != MAILIMAP_NO_ERROR) {
		fprintf(stderr, "rawfetch: LOGIN failed (%d): %s\n", r,
			imap->imap_response ? imap->imap_response : "");
		return 1;
	}
	r = mailimap_select(imap, folder);
	if (r != MAILIMAP_NO_ERROR) {
		fprintf(stderr, "rawfetch: SELECT %s failed (%d)\n", folder, r);
		return 1;
	}

	if (select_only) {
		uint32_t exists = imap->imap_selection_info ?
			imap->imap_selection_info->sel_exists : 0;

		t1 = now_s();
		mailimap_logout(imap);
		mailimap_free(imap);
		free(pw);
		printf("messages=0 select_only=1 exists=%u total_s=%.3f\n",
		       exists, t1 - t0);
		return 0;
	}

	set = mailimap_set_new_interval(1, 0); /* 1:* */
	ft = mailimap_fetch_type_new_fetch_att_list_empty();
	if (set == NULL || ft == NULL ||
	    mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_uid()) != MAILIMAP_NO_ERROR ||
	    mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_flags()) != MAILIMAP_NO_ERROR ||
	    mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_internaldate()) !=
		    MAILIMAP_NO_ERROR ||
	    mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_rfc822_size()) !=
		    MAILIMAP_NO_ERROR ||
	    mailimap_fetch_type_new_fetch_att_list_add(
		    ft, mailimap_fetch_att_new_body_peek_section(
				mailimap_section_new(NULL))) !=
		    MAILIMAP_NO_ERROR) {
		fprintf(stderr, "rawfetch: out of memory\n");
		return 1;
	}
	mailimap_set_progress_callback(imap, progress_noop, NULL, NULL);
	mailimap_set_msg_att_handler(imap, att_handler, &cnt);
	mailimap_set_msg_body_handler(imap, body_handler, &cnt);
	t1 = now_s();
	r = mailimap_uid_fetch(imap, set, ft, &res);
	t2 = now_s();
	if (res)
		mailimap_fetch_list_free(res);
	mailimap_fetch_type_free(ft);
	mailimap_set_free(set);
	if (r != MAILIMAP_NO_ERROR) {
		fprintf(stderr, "rawfetch: UID FETCH failed (%d) after %llu "
			"messages\n", r, (unsigned long long)cnt.messages);
		return 1;
	}
	mailimap_set_msg_att_handler(imap, NULL, NULL);
	mailimap_set_msg_body_handler(imap, NULL, NULL);
	mailimap_set_progress_callback(imap, NULL, NULL, NULL);
	mailimap_logout(imap);
	mailimap_free(imap);
	memset(pw, 0, strlen(pw));
	free(pw);
	printf("messages=%llu bytes=%llu rfc822_size=%llu max_uid=%u "
	       "fetch_s=%.3f total_s=%.3f\n",
	       (unsigned long long)cnt.messages, (unsigned long long)cnt.bytes,
	       (unsigned long long)cnt.rfc822_size, cnt.max_uid, t2 - t1,
	       now_s() - t0);
	return 0;
}
