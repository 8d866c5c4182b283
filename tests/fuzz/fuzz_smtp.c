/*
 * libFuzzer target for the SMTP client's reply parser and the session
 * around it (src/lib/send/smtp.c): the input is everything the server
 * says, played over the in-memory transport of fake_net.c while the real
 * client greets, says EHLO, authenticates and sends two transactions (the
 * second after the first one's result, whatever it was).  The first byte
 * chooses the session:
 *   bits 0-1  login: 0 none, 1 password (PLAIN or LOGIN), 2 access token
 *             (OAUTHBEARER or XOAUTH2), 3 password with LOGIN forced
 *   bit 2     STARTTLS (587) instead of implicit TLS
 *   bit 3     no PIPELINING
 *   bits 4-6  the server's writes (see fake_net.h)
 * so seeds are real server transcripts behind one option byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fake_net.h"
#include "send/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct body {
	const char *p;
	size_t left;
};

static ssize_t body_read(void *ctx, char *buf, size_t cap)
{
	struct body *b = ctx;
	size_t n = b->left < cap ? b->left : cap;

	memcpy(buf, b->p, n);
	b->p += n;
	b->left -= n;
	return (ssize_t)n;
}

static void check_result(const struct mx_smtp_result *r, size_t nrcpt)
{
	size_t ok = 0;

	if (r->rcpt != NULL && r->nrcpt != nrcpt)
		abort();
	for (size_t i = 0; r->rcpt != NULL && i < r->nrcpt; i++) {
		if (r->rcpt[i].code / 100 == 2)
			ok++;
		if (r->rcpt[i].reply != NULL)
			(void)strlen(r->rcpt[i].reply);
		if (strlen(r->rcpt[i].enh) >= sizeof(r->rcpt[i].enh))
			abort();
	}
	if (ok != r->accepted)
		abort();
	if (r->data_reply != NULL)
		(void)strlen(r->data_reply);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char msg[] =
		"From: Fuzz <fuzz@example.test>\r\nTo: a@example.org\r\n"
		"Subject: hi\r\n\r\nHello.\r\n.dot line\r\n";
	static const char *const rcpts[] = {"a@example.org", "b@example.org",
					    "c@example.net"};
	struct mx_smtp_cfg cfg = {0};
	struct mx_smtp *s = NULL;
	struct mx_error err = {0};
	int opt;

	if ((opt = mx_fuzz_net_feed(data, size)) < 0)
		return 0;
	cfg.host = "smtp.example.test";
	cfg.tls = opt & 4 ? MX_TLS_STARTTLS : MX_TLS_IMPLICIT;
	cfg.port = opt & 4 ? 587 : 465;
	cfg.timeout_s = 5;
	cfg.no_pipelining = (opt & 8) != 0;
	switch (opt & 3) {
	case 1:
		cfg.user = "fuzz@example.test";
		cfg.password = "secret";
		break;
	case 2:
		cfg.user = "fuzz@example.test";
		cfg.access_token = "ya29.fuzz-token";
		break;
	case 3:
		cfg.user = "fuzz@example.test";
		cfg.password = "secret";
		cfg.mechanism = "LOGIN";
		break;
	}
	if (mx_smtp_open(&cfg, &s, &err) != MX_OK)
		return 0;
	(void)mx_smtp_size_limit(s);
	(void)mx_smtp_ext(s);
	(void)mx_smtp_mechanism(s);
	for (int t = 0; t < 2; t++) {
		struct mx_smtp_result res = {0};
		struct body b = {msg, sizeof(msg) - 1};
		size_t nr = t == 0 ? 3 : 1;

		(void)mx_smtp_send(s, t == 0 ? "fuzz@example.test" : "", rcpts,
				   nr, body_read, &b, sizeof(msg) - 1,
				   t == 0 ? MX_SMTP_7BIT : 0, &res, &err);
		check_result(&res, nr);
		mx_smtp_result_free(&res);
	}
	mx_smtp_close(&s);
	return 0;
}
