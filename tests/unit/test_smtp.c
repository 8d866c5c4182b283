/*
 * Unit tests for the SMTP client (src/lib/send/smtp.c): the DATA encoder
 * split at every byte, the reply line parser, and whole sessions against
 * a scripted server on 127.0.0.1 (a thread that checks each command
 * against a transcript and answers with the scripted reply, curl-style),
 * for the cases a real server will not produce on demand.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "send/smtp.h"

static size_t enc_all(const char *in, size_t n, size_t split, char *out)
{
	struct mx_smtp_enc e;
	size_t o;

	mx_smtp_enc_init(&e);
	o = mx_smtp_enc_chunk(&e, in, split, out);
	o += mx_smtp_enc_chunk(&e, in + split, n - split, out + o);
	o += mx_smtp_enc_end(&e, out + o);
	return o;
}

START_TEST(test_encoder)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"", ".\r\n"},
		{"a", "a\r\n.\r\n"},
		{"a\r\n", "a\r\n.\r\n"},
		{".\n..x\n", "..\r\n...x\r\n.\r\n"},
		{"a\nb\rc\r\n.d\r\r\n", "a\r\nb\r\nc\r\n..d\r\n\r\n.\r\n"},
		{"x\r", "x\r\n.\r\n"},
		{"x\n.", "x\r\n..\r\n.\r\n"},
		{"a.b\n\n.\n", "a.b\r\n\r\n..\r\n.\r\n"},
	};
	char out[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].in);

		for (size_t split = 0; split <= n; split++) {
			size_t o = enc_all(cases[i].in, n, split, out);

			out[o] = '\0';
			ck_assert_msg(strcmp(out, cases[i].want) == 0,
				      "case %zu split %zu: got \"%s\"", i,
				      split, out);
		}
	}
}
END_TEST

START_TEST(test_encoder_8bit)
{
	struct mx_smtp_enc e;
	char out[16];

	mx_smtp_enc_init(&e);
	mx_smtp_enc_chunk(&e, "abc", 3, out);
	ck_assert(!e.eight_bit);
	mx_smtp_enc_chunk(&e, "\xc3\xa9", 2, out);
	ck_assert(e.eight_bit);
}
END_TEST

START_TEST(test_parse_line)
{
	struct mx_error err = {0};
	const char *t;
	int code = 0;

	ck_assert_int_eq(mx_smtp_parse_line("250-a", 5, &code, &t, &err), 0);
	ck_assert_int_eq(code, 250);
	ck_assert_str_eq(t, "a");
	ck_assert_int_eq(mx_smtp_parse_line("250 b c", 7, &code, &t, &err), 1);
	ck_assert_str_eq(t, "b c");
	code = 0;
	ck_assert_int_eq(mx_smtp_parse_line("354", 3, &code, &t, &err), 1);
	ck_assert_str_eq(t, "");
	/* inconsistent codes across lines */
	code = 250;
	ck_assert_int_eq(mx_smtp_parse_line("251 x", 5, &code, &t, &err), -1);
	ck_assert_int_eq(err.code, MX_ERR_PROTOCOL);
	ck_assert(strstr(err.detail, "251 after 250"));
	/* garbage */
	static const char *bad[] = {"", "25", "2x0 a", "650 a", "250:a",
				    "hello", "\x01\x02\x03\x04"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		code = 0;
		ck_assert_int_eq(mx_smtp_parse_line(bad[i], strlen(bad[i]),
						    &code, &t, &err), -1);
		ck_assert_int_eq(err.code, MX_ERR_PROTOCOL);
	}
	ck_assert(strstr(err.detail, "malformed reply line"));
	ck_assert_ptr_null(strchr(err.detail, '\x01'));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Scripted server                                                      */

/* One step: the client line expected (prefix; NULL = none, just send)
 * and the reply sent back (NULL = close the connection). */
struct step {
	const char *expect;
	const char *reply;
};

struct server {
	int lfd;
	uint16_t port;
	const struct step *steps;
	pthread_t th;
	char log[8192];   /* client lines, '\n' terminated */
	char body[4096];  /* DATA content as received */
	int mismatch;     /* step index + 1 of the first wrong line */
};

static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	char c;

	while (n + 1 < cap && read(fd, &c, 1) == 1) {
		buf[n++] = c;
		if (c == '\n')
			break;
	}
	buf[n] = '\0';
	return (int)n;
}

static void say(int fd, const char *s)
{
	size_t n = strlen(s);

	while (n > 0) {
		ssize_t k = write(fd, s, n);

		if (k <= 0)
			return;
		s += k;
		n -= (size_t)k;
	}
}

static void *serve(void *arg)
{
	struct server *sv = arg;
	char line[1024];
	int fd = accept(sv->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	for (int i = 0; sv->steps[i].expect || sv->steps[i].reply; i++) {
		const struct step *st = &sv->steps[i];

		if (st->expect) {
			if (read_line(fd, line, sizeof(line)) == 0)
				break;
			strncat(sv->log, line,
				sizeof(sv->log) - strlen(sv->log) - 1);
			if (strncmp(line, st->expect, strlen(st->expect)) &&
			    !sv->mismatch)
				sv->mismatch = i + 1;
			if (strcmp(st->expect, "<body>") == 0) {
				/* the DATA content up to the lone dot */
				strncat(sv->body, line, sizeof(sv->body) -
					strlen(sv->body) - 1);
				while (strcmp(line, ".\r\n") &&
				       read_line(fd, line, sizeof(line)) > 0)
					strncat(sv->body, line,
						sizeof(sv->body) -
							strlen(sv->body) - 1);
				sv->mismatch = sv->mismatch == i + 1
						       ? 0 : sv->mismatch;
			}
		}
		if (st->reply == NULL)
			break;
		say(fd, st->reply);
	}
	close(fd);
	return NULL;
}

static void server_start(struct server *sv, const struct step *steps)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);

	memset(sv, 0, sizeof(*sv));
	sv->steps = steps;
	sv->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(sv->lfd, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(sv->lfd, 1), 0);
	getsockname(sv->lfd, (struct sockaddr *)&a, &len);
	sv->port = ntohs(a.sin_port);
	pthread_create(&sv->th, NULL, serve, sv);
}

static void server_join(struct server *sv)
{
	pthread_join(sv->th, NULL);
	close(sv->lfd);
	ck_assert_msg(sv->mismatch == 0, "client deviated at step %d:\n%s",
		      sv->mismatch, sv->log);
}

/* Starts the scripted server SV; a plain-text config for it. */
static struct mx_smtp_cfg start(struct server *sv, const struct step *steps)
{
	struct mx_smtp_cfg c = {0};

	server_start(sv, steps);
	c.host = "127.0.0.1";
	c.port = sv->port;
	c.tls = MX_TLS_NONE;
	c.timeout_s = 10;
	return c;
}

struct src {
	const char *p;
	size_t left;
};

static ssize_t src_read(void *ctx, char *buf, size_t cap)
{
	struct src *s = ctx;
	size_t n = s->left < cap ? s->left : cap;

	memcpy(buf, s->p, n);
	s->p += n;
	s->left -= n;
	return (ssize_t)n;
}

#define EHLO_PIPE "250-localhost\r\n250-PIPELINING\r\n250-SIZE 1000\r\n" \
		  "250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"

/* Pipelined: the commands arrive before any reply; partial acceptance. */
START_TEST(test_session_pipelined)
{
	/* The server answers only after all of MAIL, RCPT, RCPT, DATA. */
	static const struct step pipe_steps[] = {
		{NULL, "220 fake ESMTP\r\n"},
		{"EHLO [127.0.0.1]", EHLO_PIPE},
		{"AUTH PLAIN AHUAcHc=", "235 2.7.0 ok\r\n"},
		{"MAIL FROM:<a@x> SIZE=9 BODY=8BITMIME\r", ""},
		{"RCPT TO:<b@x>", ""},
		{"RCPT TO:<c@x>", ""},
		{"DATA", "250 2.1.0 ok\r\n250 2.1.5 ok\r\n"
			 "550-5.1.1 no such\r\n550 5.1.1 user\r\n354 go\r\n"},
		{"<body>", "250 2.0.0 queued as X\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct server sv;
	struct mx_smtp_cfg cfg;
	struct mx_smtp *s = NULL;
	struct mx_smtp_result res;
	struct mx_error err = {0};
	const char *rcpts[] = {"b@x", "c@x"};
	struct src src = {".hi\nyo\n", 8};

	cfg = start(&sv, pipe_steps);
	cfg.user = "u";
	cfg.password = "pw";
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_OK);
	ck_assert_str_eq(mx_smtp_mechanism(s), "PLAIN");
	ck_assert_uint_eq(mx_smtp_size_limit(s), 1000);
	ck_assert(mx_smtp_ext(s) & MX_SMTP_EXT_PIPELINING);
	ck_assert_int_eq(mx_smtp_send(s, "a@x", rcpts, 2, src_read, &src, 9, 0,
				      &res, &err), MX_OK);
	ck_assert_uint_eq(res.accepted, 1);
	ck_assert_int_eq(res.rcpt[1].code, 550);
	ck_assert_str_eq(res.rcpt[1].enh, "5.1.1");
	ck_assert_str_eq(res.rcpt[1].reply, "550 5.1.1 no such 5.1.1 user");
	ck_assert_int_eq(res.data_code, 250);
	ck_assert_str_eq(res.data_reply, "250 2.0.0 queued as X");
	mx_smtp_result_free(&res);
	mx_smtp_close(&s);
	ck_assert_ptr_null(s);
	server_join(&sv);
	ck_assert_str_eq(sv.body, "..hi\r\nyo\r\n.\r\n");
}
END_TEST

/* No PIPELINING: one by one; none accepted -> no DATA, then RSET. */
START_TEST(test_session_no_rcpt_then_rset)
{
	static const struct step steps[] = {
		{NULL, "220 fake\r\n"},
		{"EHLO", "250-localhost\r\n250 SIZE\r\n"},
		{"MAIL FROM:<> SIZE=3", "250 ok\r\n"},
		{"RCPT TO:<b@x>", "451 4.3.0 try later\r\n"},
		{"RCPT TO:<c@x>", "550 5.1.1 nope\r\n"},
		{"RSET", "250 ok\r\n"},
		{"MAIL FROM:<a@x>", "250 ok\r\n"},
		{"RCPT TO:<b@x>", "250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"<body>", "451 4.3.0 disk full\r\n"},
		{"RSET", "250 ok\r\n"},
		{"MAIL FROM:<a@x>", "250 ok\r\n"},
		{"RCPT TO:<b@x>", "250 ok\r\n"},
		{"DATA", "354 go\r\n"},
		{"<body>", "554 5.6.0 rejected\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct server sv;
	struct mx_smtp_cfg cfg;
	struct mx_smtp *s = NULL;
	struct mx_smtp_result res;
	struct mx_error err = {0};
	const char *rcpts[] = {"b@x", "c@x"};
	struct src src = {"x\r\n", 3};

	cfg = start(&sv, steps);
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_OK);
	ck_assert_ptr_null(mx_smtp_mechanism(s));
	ck_assert_int_eq(mx_smtp_send(s, "", rcpts, 2, src_read, &src, 3, 0,
				      &res, &err), MX_ERR_SERVER);
	ck_assert_int_eq(err.retry, MX_RETRY_TEMP); /* one 4xx among them */
	ck_assert(strstr(err.detail, "no recipient accepted"));
	ck_assert(strstr(err.detail, "451 4.3.0 try later"));
	ck_assert_int_eq(res.data_code, 0);
	mx_smtp_result_free(&res);
	src = (struct src){"x\r\n", 3};
	ck_assert_int_eq(mx_smtp_send(s, "a@x", rcpts, 1, src_read, &src, 3,
				      0, &res, &err), MX_ERR_SERVER);
	ck_assert_int_eq(err.retry, MX_RETRY_TEMP);
	ck_assert_int_eq(res.data_code, 451);
	mx_smtp_result_free(&res);
	src = (struct src){"x\r\n", 3};
	ck_assert_int_eq(mx_smtp_send(s, "a@x", rcpts, 1, src_read, &src, 3,
				      0, &res, &err), MX_ERR_SERVER);
	ck_assert_int_eq(err.retry, MX_RETRY_FINAL);
	ck_assert(strstr(err.detail, "554 5.6.0 rejected"));
	mx_smtp_result_free(&res);
	mx_smtp_close(&s);
	server_join(&sv);
}
END_TEST

/* EHLO refused -> HELO; no SIZE: the size is not checked. */
START_TEST(test_session_helo_fallback)
{
	static const struct step steps[] = {
		{NULL, "220 old\r\n"},
		{"EHLO mx.test", "502 what\r\n"},
		{"HELO mx.test", "250 hi\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct server sv;
	struct mx_smtp_cfg cfg;
	struct mx_smtp *s = NULL;
	struct mx_error err = {0};

	cfg = start(&sv, steps);
	cfg.helo_name = "mx.test";
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_OK);
	ck_assert_uint_eq(mx_smtp_ext(s), 0);
	mx_smtp_close(&s);
	server_join(&sv);
}
END_TEST

/* STARTTLS required but not offered: no credentials, no AUTH. */
START_TEST(test_session_no_starttls)
{
	static const struct step steps[] = {
		{NULL, "220 evil\r\n"},
		{"EHLO", "250-evil\r\n250 AUTH PLAIN\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct server sv;
	struct mx_smtp_cfg cfg;
	struct mx_smtp *s = NULL;
	struct mx_error err = {0};

	cfg = start(&sv, steps);
	cfg.tls = MX_TLS_STARTTLS;
	cfg.user = "u";
	cfg.password = "secret";
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_ERR_INSECURE);
	ck_assert_ptr_null(s);
	server_join(&sv);
	ck_assert_ptr_null(strstr(sv.log, "AUTH"));
}
END_TEST

/* LOGIN, then an OAuth-style failure challenge answered and 535. */
START_TEST(test_session_login_and_bearer_failure)
{
	static const struct step login[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 AUTH=LOGIN\r\n"},
		{"AUTH LOGIN\r", "334 VXNlcm5hbWU6\r\n"},
		{"dQ==", "334 UGFzc3dvcmQ6\r\n"},
		{"cHc=", "535 5.7.8 bad\r\n"},
		{NULL, NULL},
	};
	static const struct step bearer[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 AUTH PLAIN XOAUTH2\r\n"},
		{"AUTH XOAUTH2 ", "334 eyJzdGF0dXMiOiI0MDEifQ==\r\n"},
		{"\r\n", "535 5.7.8 Authentication failed.\r\n"},
		{NULL, NULL},
	};
	struct server sv;
	struct mx_smtp_cfg cfg;
	struct mx_smtp *s = NULL;
	struct mx_error err = {0};

	cfg = start(&sv, login);
	cfg.user = "u";
	cfg.password = "pw";
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_ERR_AUTH);
	ck_assert(strstr(err.detail, "535 5.7.8 bad"));
	ck_assert_int_eq(err.retry, MX_RETRY_FINAL);
	server_join(&sv);

	cfg = start(&sv, bearer);
	cfg.user = "u";
	cfg.access_token = "tok-SECRET";
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_ERR_AUTH);
	ck_assert(strstr(err.detail, "535 5.7.8 Authentication failed."));
	ck_assert_ptr_null(strstr(err.detail, "SECRET"));
	server_join(&sv);
}
END_TEST

/* Hostile replies: each is an error, never a crash. */
START_TEST(test_session_hostile)
{
	static const char *greetings[] = {
		"250-x\r\n251 y\r\n",   /* inconsistent codes */
		"hello there\r\n",      /* no code */
		"220",                  /* EOF inside the line */
		"554 5.7.1 go away\r\n", /* refused */
	};
	static const int want[] = {MX_ERR_PROTOCOL, MX_ERR_PROTOCOL,
				   MX_ERR_NET, MX_ERR_SERVER};

	for (size_t i = 0; i < 4; i++) {
		struct step steps[] = {{NULL, greetings[i]}, {NULL, NULL}};
		struct server sv;
		struct mx_smtp_cfg cfg;
		struct mx_smtp *s = NULL;
		struct mx_error err = {0};

		cfg = start(&sv, steps);
		ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), want[i]);
		ck_assert_ptr_null(s);
		server_join(&sv);
	}
}
END_TEST

/* Refusals before any traffic, and a server that stops answering. */
START_TEST(test_session_refusals_and_timeout)
{
	static const struct step silent[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", ""},
		{"never sent", NULL},
		{NULL, NULL},
	};
	struct mx_smtp_cfg cfg = {0};
	struct mx_smtp *s = NULL;
	struct mx_error err = {0};
	struct server sv;

	/* plaintext to a non-loopback host: refused before connecting */
	cfg.host = "192.0.2.1";
	cfg.port = 25;
	cfg.tls = MX_TLS_NONE;
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_ERR_INSECURE);
	cfg.tls = MX_TLS_STARTTLS;
	cfg.user = "u";
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_ERR_INVAL);
	cfg.password = "p";
	cfg.mechanism = "CRAM-MD5";
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_ERR_INVAL);
	cfg.mechanism = "XOAUTH2"; /* needs a token */
	cfg.helo_name = "bad name";
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_ERR_INVAL);
	ck_assert_ptr_null(s);

	cfg = start(&sv, silent);
	cfg.timeout_s = 1;
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_ERR_TIMEOUT);
	ck_assert_ptr_null(s);
	server_join(&sv);
}
END_TEST

/* Pipelined, MAIL refused although DATA gets 354: a lone dot ends it,
 * the MAIL refusal is the error, and the next transaction starts with
 * RSET. */
START_TEST(test_session_mail_refused_pipelined)
{
	static const struct step steps[] = {
		{NULL, "220 x\r\n"},
		{"EHLO", "250-x\r\n250 PIPELINING\r\n"},
		{"MAIL FROM:<a@x>", ""},
		{"RCPT TO:<b@x>", ""},
		{"DATA", "553 5.7.1 sender not yours\r\n503 5.5.1 no MAIL\r\n"
			 "354 go\r\n"},
		{".\r", "554 5.5.1 no valid recipients\r\n"},
		{"RSET", "250 ok\r\n"},
		{"MAIL FROM:<a@x>", ""},
		{"RCPT TO:<b@x>", ""},
		{"DATA", "250 ok\r\n250 ok\r\n354 go\r\n"},
		{"<body>", "250 queued\r\n"},
		{"QUIT", "221 bye\r\n"},
		{NULL, NULL},
	};
	struct server sv;
	struct mx_smtp_cfg cfg;
	struct mx_smtp *s = NULL;
	struct mx_smtp_result res;
	struct mx_error err = {0};
	const char *rcpts[] = {"b@x"};
	struct src src = {"x\r\n", 3};

	cfg = start(&sv, steps);
	ck_assert_int_eq(mx_smtp_open(&cfg, &s, &err), MX_OK);
	ck_assert_int_eq(mx_smtp_send(s, "a@x", rcpts, 1, src_read, &src, 3, 0,
				      &res, &err), MX_ERR_SERVER);
	ck_assert(strstr(err.detail, "MAIL FROM: 553 5.7.1 sender not yours"));
	ck_assert_int_eq(err.retry, MX_RETRY_FINAL);
	ck_assert_int_eq(res.rcpt[0].code, 503);
	mx_smtp_result_free(&res);
	/* bad input: refused before anything is sent */
	rcpts[0] = "b@x>\r\nRCPT TO:<evil@x";
	ck_assert_int_eq(mx_smtp_send(s, "a@x", rcpts, 1, src_read, &src, 3, 0,
				      &res, &err), MX_ERR_INVAL);
	rcpts[0] = "b@x";
	ck_assert_int_eq(mx_smtp_send(s, "a@x", rcpts, 0, src_read, &src, 3, 0,
				      &res, &err), MX_ERR_INVAL);
	ck_assert_int_eq(mx_smtp_send(s, "a@x", rcpts, 1, src_read, &src, 3, 0,
				      &res, &err), MX_OK);
	ck_assert_int_eq(res.data_code, 250);
	mx_smtp_result_free(&res);
	mx_smtp_close(&s);
	server_join(&sv);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("smtp");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_encoder);
	tcase_add_test(tc, test_encoder_8bit);
	tcase_add_test(tc, test_parse_line);
	tcase_add_test(tc, test_session_pipelined);
	tcase_add_test(tc, test_session_no_rcpt_then_rset);
	tcase_add_test(tc, test_session_helo_fallback);
	tcase_add_test(tc, test_session_no_starttls);
	tcase_add_test(tc, test_session_login_and_bearer_failure);
	tcase_add_test(tc, test_session_hostile);
	tcase_add_test(tc, test_session_refusals_and_timeout);
	tcase_add_test(tc, test_session_mail_refused_pipelined);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
