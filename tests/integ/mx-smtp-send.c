/*
 * mx-smtp-send: test driver for the SMTP client (tests/integ/t-smtp.sh).
 * Opens one session with src/lib/send/smtp.c and sends FILE in COUNT
 * transactions on it.  Built for the tests only, never installed.
 *
 * usage: mx-smtp-send [--host H] --port N [--tls implicit|starttls|none]
 *          [--insecure] [--ca FILE] [--timeout S] [--helo NAME]
 *          [--user U] [--password P | --password-file F]
 *          [--token T | --token-file F] [--mechanism M] [--no-pipelining]
 *          [--from ADDR] --rcpt ADDR... [--file F] [--size N]
 *          [--8bit | --7bit | --unknown-body] [--count N]
 *          [--fail-after BYTES] [--trace]
 *
 * --file defaults to stdin ("-").  --size defaults to the file's size
 * (0 for stdin).  Without --8bit/--7bit/--unknown-body the file is
 * scanned and MX_SMTP_8BIT or MX_SMTP_7BIT passed.  --fail-after makes
 * the message source fail after that many bytes.  --trace: -D smtp.
 * Output on stdout:
 *   mechanism NAME|-            ext NAME...      size_limit N
 *   rcpt ADDR CODE ENH|- TEXT   (per recipient, per transaction)
 *   data CODE TEXT|-            accepted N/M
 *   error NAME retry=temp|wait|final DETAIL   (on failure)
 * Exit status: 0 sent to every recipient, 2 sent to some, 3 temporary
 * error (retry temp or wait), 4 final error, 1 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "send/smtp.h"

#define MAX_RCPT 64

struct source {
	FILE *f;
	uint64_t done;
	uint64_t fail_after; /* 0 = never */
};

static ssize_t source_read(void *ctx, char *buf, size_t cap)
{
	struct source *src = ctx;
	size_t n;

	if (src->fail_after && src->done + cap > src->fail_after) {
		if (src->done >= src->fail_after)
			return -1;
		cap = (size_t)(src->fail_after - src->done);
	}
	n = fread(buf, 1, cap, src->f);
	if (n == 0 && ferror(src->f))
		return -1;
	src->done += n;
	return (ssize_t)n;
}

static int usage(void)
{
	fputs("usage: mx-smtp-send [--host H] --port N "
	      "[--tls implicit|starttls|none] [--insecure]\n"
	      "  [--ca F] [--timeout S] [--helo NAME] [--user U] "
	      "[--password P|--password-file F]\n"
	      "  [--token T|--token-file F] [--mechanism M] [--no-pipelining] "
	      "[--from A]\n"
	      "  --rcpt A... [--file F] [--size N] [--8bit|--7bit|"
	      "--unknown-body] [--count N]\n"
	      "  [--fail-after BYTES] [--trace]\n", stderr);
	return 1;
}

static char *slurp_line(const char *path)
{
	char *data;
	size_t len;
	struct mx_error err = {0};

	if (mx_read_file(path, 65536, &data, &len, &err)) {
		fprintf(stderr, "mx-smtp-send: %s\n", err.detail);
		exit(1);
	}
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	return data;
}

static unsigned scan_8bit(FILE *f)
{
	int c;

	while ((c = getc(f)) != EOF)
		if (c >= 0x80) {
			rewind(f);
			return MX_SMTP_8BIT;
		}
	rewind(f);
	return MX_SMTP_7BIT;
}

static const char *retry_name(enum mx_err_retry r)
{
	return r == MX_RETRY_TEMP ? "temp" : r == MX_RETRY_WAIT ? "wait"
		: r == MX_RETRY_FINAL ? "final" : "none";
}

static int fail(const struct mx_error *err)
{
	printf("error %s retry=%s %s\n", mx_err_name(err->code),
	       retry_name(err->retry), err->detail);
	return err->retry == MX_RETRY_TEMP || err->retry == MX_RETRY_WAIT ? 3
									  : 4;
}

static void print_session(struct mx_smtp *s)
{
	static const struct {
		unsigned bit;
		const char *name;
	} exts[] = {
		{MX_SMTP_EXT_PIPELINING, "PIPELINING"},
		{MX_SMTP_EXT_SIZE, "SIZE"},
		{MX_SMTP_EXT_8BITMIME, "8BITMIME"},
		{MX_SMTP_EXT_SMTPUTF8, "SMTPUTF8"},
		{MX_SMTP_EXT_STARTTLS, "STARTTLS"},
		{MX_SMTP_EXT_ENHANCEDSTATUSCODES, "ENHANCEDSTATUSCODES"},
		{MX_SMTP_EXT_AUTH, "AUTH"},
		{MX_SMTP_EXT_CHUNKING, "CHUNKING"},
		{MX_SMTP_EXT_DSN, "DSN"},
	};
	const char *m = mx_smtp_mechanism(s);

	printf("mechanism %s\next", m ? m : "-");
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (mx_smtp_ext(s) & exts[i].bit)
			printf(" %s", exts[i].name);
	printf("\nsize_limit %" PRIu64 "\n", mx_smtp_size_limit(s));
}

/* "550 5.1.1 text" -> "text" after the code (the enhanced code is
 * printed on its own). */
static const char *text_of(const char *reply, const char *enh)
{
	if (reply == NULL)
		return "-";
	reply += strlen(reply) >= 4 ? 4 : strlen(reply);
	if (*enh && strncmp(reply, enh, strlen(enh)) == 0)
		reply += strlen(enh) + (reply[strlen(enh)] == ' ');
	return reply;
}

static void print_result(const struct mx_smtp_result *res)
{
	for (size_t i = 0; i < res->nrcpt; i++)
		printf("rcpt %s %d %s %s\n", res->rcpt[i].addr,
		       res->rcpt[i].code,
		       res->rcpt[i].enh[0] ? res->rcpt[i].enh : "-",
		       text_of(res->rcpt[i].reply, res->rcpt[i].enh));
	printf("data %d %s\naccepted %zu/%zu\n", res->data_code,
	       text_of(res->data_reply, ""), res->accepted, res->nrcpt);
}

int main(int argc, char **argv)
{
	struct mx_smtp_cfg cfg = {0};
	const char *rcpts[MAX_RCPT], *from = "", *file = "-";
	char *password = NULL, *token = NULL;
	size_t nrcpt = 0;
	long count = 1;
	int64_t size = -1;
	int flags = -1, rc = 0;
	struct source src = {0};
	struct mx_smtp *s = NULL;
	struct mx_error err = {0};

	signal(SIGPIPE, SIG_IGN);
	cfg.host = "127.0.0.1";
	cfg.tls = MX_TLS_STARTTLS;
	cfg.timeout_s = 20;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
		if (ARG("--host"))
			cfg.host = v;
		else if (ARG("--port"))
			cfg.port = (uint16_t)atoi(v);
		else if (ARG("--tls"))
			cfg.tls = strcmp(v, "implicit") == 0 ? MX_TLS_IMPLICIT
				  : strcmp(v, "none") == 0 ? MX_TLS_NONE
							  : MX_TLS_STARTTLS;
		else if (strcmp(a, "--insecure") == 0)
			cfg.insecure_plaintext = true;
		else if (ARG("--ca"))
			cfg.ca_file = v;
		else if (ARG("--timeout"))
			cfg.timeout_s = atoi(v);
		else if (ARG("--helo"))
			cfg.helo_name = v;
		else if (ARG("--user"))
			cfg.user = v;
		else if (ARG("--password"))
			password = strdup(v);
		else if (ARG("--password-file"))
			password = slurp_line(v);
		else if (ARG("--token"))
			token = strdup(v);
		else if (ARG("--token-file"))
			token = slurp_line(v);
		else if (ARG("--mechanism"))
			cfg.mechanism = v;
		else if (strcmp(a, "--no-pipelining") == 0)
			cfg.no_pipelining = true;
		else if (ARG("--from"))
			from = v;
		else if (ARG("--rcpt") && nrcpt < MAX_RCPT)
			rcpts[nrcpt++] = v;
		else if (ARG("--file"))
			file = v;
		else if (ARG("--size"))
			size = strtoll(v, NULL, 10);
		else if (strcmp(a, "--8bit") == 0)
			flags = MX_SMTP_8BIT;
		else if (strcmp(a, "--7bit") == 0)
			flags = MX_SMTP_7BIT;
		else if (strcmp(a, "--unknown-body") == 0)
			flags = 0;
		else if (ARG("--count"))
			count = atol(v);
		else if (ARG("--fail-after"))
			src.fail_after = strtoull(v, NULL, 10);
		else if (strcmp(a, "--trace") == 0)
			mx_trace_mask |= MX_TRACE_SMTP;
		else
			return usage();
#undef ARG
	}
	if (cfg.port == 0 || nrcpt == 0 || count < 1)
		return usage();
	cfg.password = password;
	cfg.access_token = token;
	src.f = strcmp(file, "-") == 0 ? stdin : fopen(file, "rb");
	if (src.f == NULL) {
		fprintf(stderr, "mx-smtp-send: %s: %s\n", file, strerror(errno));
		return 1;
	}
	if (size < 0) {
		struct stat st;

		size = src.f != stdin && fstat(fileno(src.f), &st) == 0
			       ? st.st_size : 0;
	}
	if (flags < 0)
		flags = src.f != stdin ? (int)scan_8bit(src.f) : 0;

	if (mx_smtp_open(&cfg, &s, &err)) {
		rc = fail(&err);
		goto out;
	}
	print_session(s);
	for (long n = 0; n < count; n++) {
		struct mx_smtp_result res;
		size_t accepted;
		int r;

		if (src.f != stdin)
			rewind(src.f);
		src.done = 0;
		r = mx_smtp_send(s, from, rcpts, nrcpt, source_read, &src,
				 (uint64_t)size, (unsigned)flags, &res, &err);
		print_result(&res);
		accepted = res.accepted;
		mx_smtp_result_free(&res);
		if (r) {
			rc = fail(&err);
			/* later transactions show RSET at work */
			continue;
		}
		if (rc == 0 && accepted < nrcpt)
			rc = 2;
	}
	fflush(stdout);
out:
	mx_smtp_close(&s);
	if (src.f && src.f != stdin)
		fclose(src.f);
	free(password);
	free(token);
	return rc;
}
