/*
 * Unit tests of the POP3 client (src/backends/pop3.c): the UIDL and LIST
 * line parsers, and whole sessions against a scripted server in a thread
 * on 127.0.0.1 that sends its replies one byte per write, so every reply
 * reaches the client split at every possible place.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/pop3.h"

/* ---- parsers ---- */

START_TEST(uidl_lines)
{
	static const struct {
		const char *line;
		int rc;
		uint32_t num;
		const char *uidl;
	} t[] = {
		{"1 abc", MX_OK, 1, "abc"},
		{"42 000000016b03f572", MX_OK, 42, "000000016b03f572"},
		{"7 !~", MX_OK, 7, "!~"},
		{"0 abc", MX_ERR_PROTOCOL, 0, NULL},      /* numbers start at 1 */
		{"1  abc", MX_ERR_PROTOCOL, 0, NULL},     /* space in the id */
		{"1 abc ", MX_ERR_PROTOCOL, 0, NULL},
		{"1 a\tb", MX_ERR_PROTOCOL, 0, NULL},
		{"1 a\x7f", MX_ERR_PROTOCOL, 0, NULL},
		{"1 \xc3\xa9", MX_ERR_PROTOCOL, 0, NULL}, /* 8-bit */
		{"1", MX_ERR_PROTOCOL, 0, NULL},
		{"1 ", MX_ERR_PROTOCOL, 0, NULL},
		{"x abc", MX_ERR_PROTOCOL, 0, NULL},
		{"-1 abc", MX_ERR_PROTOCOL, 0, NULL},
		{"9999999999 abc", MX_ERR_PROTOCOL, 0, NULL}, /* > 9 digits */
		{"", MX_ERR_PROTOCOL, 0, NULL},
	};
	char id[MX_POP3_UIDL_MAX + 1], line[100];
	struct mx_error err;
	uint32_t num;

	for (size_t i = 0; i < MX_ARRAY_SIZE(t); i++) {
		int rc = mx_pop3_parse_uidl(t[i].line, &num, id, &err);

		ck_assert_msg(rc == t[i].rc, "'%s': %d", t[i].line, rc);
		if (rc == MX_OK) {
			ck_assert_uint_eq(num, t[i].num);
			ck_assert_str_eq(id, t[i].uidl);
		} else {
			ck_assert_int_eq(err.code, MX_ERR_PROTOCOL);
		}
	}
	/* 70 characters is the limit (RFC 1939 7). */
	memset(line, 'u', sizeof(line));
	line[0] = '3';
	line[1] = ' ';
	line[72] = '\0';
	ck_assert_int_eq(mx_pop3_parse_uidl(line, &num, id, &err), MX_OK);
	ck_assert_uint_eq(strlen(id), 70);
	line[72] = 'u';
	line[73] = '\0';
	ck_assert_int_eq(mx_pop3_parse_uidl(line, &num, id, &err),
			 MX_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(err.detail, "71 characters"));
}
END_TEST

START_TEST(list_lines)
{
	struct mx_error err;
	uint32_t num;
	uint64_t size;

	ck_assert_int_eq(mx_pop3_parse_list("1 120", &num, &size, &err), MX_OK);
	ck_assert_uint_eq(num, 1);
	ck_assert_uint_eq(size, 120);
	/* RFC 1939 allows more after the size. */
	ck_assert_int_eq(mx_pop3_parse_list("2 0 extra", &num, &size, &err),
			 MX_OK);
	ck_assert_uint_eq(size, 0);
	ck_assert_int_eq(mx_pop3_parse_list("2", &num, &size, &err),
			 MX_ERR_PROTOCOL);
	ck_assert_int_eq(mx_pop3_parse_list("2 12x", &num, &size, &err),
			 MX_ERR_PROTOCOL);
	ck_assert_int_eq(mx_pop3_parse_list("2 -5", &num, &size, &err),
			 MX_ERR_PROTOCOL);
	ck_assert_int_eq(mx_pop3_parse_list("2 99999999999999999999", &num,
					    &size, &err), MX_ERR_PROTOCOL);
}
END_TEST

/* ---- scripted server ---- */

/* One step: wait for a client line starting with EXPECT (NULL: send at
 * once), then send REPLY one byte per write. */
struct step {
	const char *expect;
	const char *reply;
};

struct script {
	const struct step *steps;
	int listen_fd;
	uint16_t port;
	char got[4096]; /* client lines, '|' separated */
	int mismatch;
};

static int read_line(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	char ch;

	while (n + 1 < cap && read(fd, &ch, 1) == 1) {
		if (ch == '\n') {
			if (n > 0 && buf[n - 1] == '\r')
				n--;
			buf[n] = '\0';
			return 0;
		}
		buf[n++] = ch;
	}
	return -1;
}

static void *serve(void *arg)
{
	struct script *sc = arg;
	int fd = accept(sc->listen_fd, NULL, NULL), one = 1;
	char line[2048];

	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (const struct step *s = sc->steps; s->reply || s->expect; s++) {
		if (s->expect) {
			if (read_line(fd, line, sizeof(line)) < 0)
				break;
			strncat(sc->got, line, sizeof(sc->got) - strlen(sc->got) - 2);
			strcat(sc->got, "|");
			if (strncmp(line, s->expect, strlen(s->expect)) != 0) {
				sc->mismatch = 1;
				break;
			}
		}
		for (const char *r = s->reply; r && *r; r++)
			if (write(fd, r, 1) != 1)
				break;
	}
	close(fd);
	return NULL;
}

static void script_start(struct script *sc, const struct step *steps,
			 pthread_t *tid)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);

	memset(sc, 0, sizeof(*sc));
	sc->steps = steps;
	sc->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(sc->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(sc->listen_fd, 1), 0);
	getsockname(sc->listen_fd, (struct sockaddr *)&sa, &sl);
	sc->port = ntohs(sa.sin_port);
	ck_assert_int_eq(pthread_create(tid, NULL, serve, sc), 0);
}

static void script_end(struct script *sc, pthread_t tid)
{
	pthread_join(tid, NULL);
	close(sc->listen_fd);
}

static struct mx_pop3_cfg cfg_for(const struct script *sc)
{
	struct mx_pop3_cfg c = {0};

	c.host = "127.0.0.1";
	c.port = sc->port;
	c.tls = MX_TLS_NONE;
	c.insecure_plaintext = true;
	c.timeout_s = 10;
	c.user = "u@example.test";
	c.password = "pw";
	return c;
}

struct sink {
	struct mx_buf b;
	size_t calls;
};

static int sink_cb(const char *data, size_t len, void *ctx,
		   struct mx_error *err)
{
	struct sink *s = ctx;

	(void)err;
	s->calls++;
	return mx_buf_append(&s->b, data, len) < 0 ? MX_ERR_NOMEM : MX_OK;
}

#define GREET {NULL, "+OK ready\r\n"}
#define CAPA {"CAPA", "+OK\r\nUIDL\r\nUSER\r\nSASL PLAIN XOAUTH2\r\n.\r\n"}
/* base64("\0u@example.test\0pw") */
#define PLAIN_OK {"AUTH PLAIN AHVAZXhhbXBsZS50ZXN0AHB3", "+OK in\r\n"}

START_TEST(session)
{
	static const struct step steps[] = {
		GREET, CAPA, PLAIN_OK,
		{"UIDL", "+OK\r\n1 aaa\r\n2 bbb\r\n.\r\n"},
		{"LIST", "+OK 2 messages\r\n1 30\r\n2 10\r\n.\r\n"},
		/* Dot-stuffed lines, a "." alone inside is "..". */
		{"RETR 1", "+OK\r\nA: b\r\n\r\n..x\r\n..\r\n...y\r\nz.\r\n.\r\n"},
		/* A bare-LF server. */
		{"RETR 2", "+OK\r\nhi\n..\n.\n"},
		{"DELE 1", "+OK marked\r\n"},
		{"QUIT", "+OK bye\r\n"},
		{NULL, NULL}};
	struct script sc;
	pthread_t tid;
	struct mx_pop3_cfg cfg;
	struct mx_pop3 *p = NULL;
	struct mx_pop3_msg *v = NULL;
	struct sink s = {{0}, 0};
	struct mx_error err;
	size_t n = 0;

	script_start(&sc, steps, &tid);
	cfg = cfg_for(&sc);
	ck_assert_int_eq(mx_pop3_connect(&cfg, &p, &err), MX_OK);
	ck_assert_str_eq(mx_pop3_mech(p), "PLAIN");
	ck_assert(mx_pop3_caps(p) & MX_POP3_CAP_UIDL);
	ck_assert_int_eq(mx_pop3_list(p, &v, &n, &err), MX_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].uidl, "aaa");
	ck_assert_uint_eq(v[0].size, 30);
	ck_assert_str_eq(v[1].uidl, "bbb");
	ck_assert_int_eq(mx_pop3_retr(p, 1, sink_cb, &s, &err), MX_OK);
	ck_assert_str_eq(s.b.data, "A: b\r\n\r\n.x\r\n.\r\n..y\r\nz.\r\n");
	mx_buf_reset(&s.b);
	ck_assert_int_eq(mx_pop3_retr(p, 2, sink_cb, &s, &err), MX_OK);
	ck_assert_str_eq(s.b.data, "hi\n.\n");
	ck_assert_int_eq(mx_pop3_dele(p, 1, &err), MX_OK);
	ck_assert_int_eq(mx_pop3_quit(p, &err), MX_OK);
	mx_pop3_close(&p);
	ck_assert_ptr_null(p);
	script_end(&sc, tid);
	ck_assert_int_eq(sc.mismatch, 0);
	free(v);
	mx_buf_free(&s.b);
}
END_TEST

/* Runs STEPS up to the login and returns mx_pop3_connect()'s code. */
static int login_with(const struct step *steps, const char *mech,
		      const char *token, struct mx_error *err,
		      struct script *sc)
{
	pthread_t tid;
	struct mx_pop3_cfg cfg;
	struct mx_pop3 *p = NULL;
	int rc;

	script_start(sc, steps, &tid);
	cfg = cfg_for(sc);
	cfg.mech = mech;
	cfg.access_token = token;
	rc = mx_pop3_connect(&cfg, &p, err);
	mx_pop3_close(&p);
	script_end(sc, tid);
	return rc;
}

START_TEST(login_errors)
{
	static const struct step temp[] = {
		GREET, CAPA, {"AUTH PLAIN", "-ERR [SYS/TEMP] later\r\n"},
		{NULL, NULL}};
	static const struct step inuse[] = {
		GREET, CAPA, {"USER", "+OK\r\n"},
		{"PASS pw", "-ERR [IN-USE] locked\r\n"}, {NULL, NULL}};
	static const struct step plain_no[] = {
		GREET, CAPA, {"AUTH PLAIN", "-ERR no\r\n"}, {NULL, NULL}};
	/* The OAuth2 failure: a challenge, our empty answer, then -ERR. */
	static const struct step xo[] = {
		GREET, CAPA,
		{"AUTH XOAUTH2 ", "+ eyJzdGF0dXMiOiI0MDEifQ==\r\n"},
		{"", "-ERR [AUTH] Authentication failed.\r\n"}, {NULL, NULL}};
	static const struct step nostls[] = {GREET, CAPA, {NULL, NULL}};
	struct script sc;
	struct mx_error err;

	ck_assert_int_eq(login_with(temp, NULL, NULL, &err, &sc), MX_ERR_SERVER);
	ck_assert_int_eq(err.retry, MX_RETRY_TEMP);
	ck_assert_int_eq(login_with(inuse, "USER", NULL, &err, &sc),
			 MX_ERR_SERVER);
	ck_assert_int_eq(err.retry, MX_RETRY_WAIT);
	ck_assert_int_eq(login_with(plain_no, NULL, NULL, &err, &sc), MX_ERR_AUTH);
	ck_assert_int_eq(login_with(xo, NULL, "tok", &err, &sc), MX_ERR_AUTH);
	ck_assert_ptr_nonnull(strstr(err.detail, "{\"status\":\"401\"}"));
	ck_assert_int_eq(sc.mismatch, 0);
	ck_assert_ptr_nonnull(strstr(sc.got, "|AUTH XOAUTH2 "));
	/* STLS required but not offered: nothing after CAPA is sent. */
	{
		pthread_t tid;
		struct mx_pop3_cfg cfg;
		struct mx_pop3 *p = NULL;

		script_start(&sc, nostls, &tid);
		cfg = cfg_for(&sc);
		cfg.tls = MX_TLS_STARTTLS;
		ck_assert_int_eq(mx_pop3_connect(&cfg, &p, &err), MX_ERR_INSECURE);
		script_end(&sc, tid);
		ck_assert_str_eq(sc.got, "CAPA|");
	}
}
END_TEST

START_TEST(long_initial_response)
{
	/* A 300-character token makes "AUTH XOAUTH2 <ir>" longer than 255
	 * octets: the response must follow the server's "+ " instead. */
	static const struct step steps[] = {
		GREET, CAPA, {"AUTH XOAUTH2", "+ \r\n"}, {"dXNlcj1", "+OK\r\n"},
		{NULL, NULL}};
	char tok[301];
	struct script sc;
	struct mx_error err;

	memset(tok, 't', 300);
	tok[300] = '\0';
	ck_assert_int_eq(login_with(steps, "XOAUTH2", tok, &err, &sc), MX_OK);
	ck_assert_int_eq(sc.mismatch, 0);
	ck_assert_ptr_nonnull(strstr(sc.got, "|AUTH XOAUTH2|"));
}
END_TEST

START_TEST(hostile_listings)
{
	static const struct step dup[] = {
		GREET, CAPA, PLAIN_OK, {"UIDL", "+OK\r\n1 a\r\n2 a\r\n.\r\n"},
		{NULL, NULL}};
	static const struct step nouidl[] = {
		GREET, CAPA, PLAIN_OK, {"UIDL", "-ERR no\r\n"}, {NULL, NULL}};
	static const struct step cut[] = {
		GREET, CAPA, PLAIN_OK, {"RETR 1", "+OK\r\npartial\r\n"},
		{NULL, NULL}};
	static const struct step junk[] = {
		GREET, CAPA, PLAIN_OK, {"DELE 1", "hello\r\n"}, {"NOOP", ""},
		{NULL, NULL}};
	/* An empty maildrop has no message array: neither sorting it nor
	 * looking a LIST line up in it may touch a NULL pointer (found by
	 * tests/fuzz/fuzz_pop3; UBSan: nonnull attribute). */
	static const struct step empty[] = {
		GREET, CAPA, PLAIN_OK, {"UIDL", "+OK\r\n.\r\n"},
		{"LIST", "+OK 0 messages\r\n.\r\n"}, {NULL, NULL}};
	static const struct step stray[] = {
		GREET, CAPA, PLAIN_OK, {"UIDL", "+OK\r\n.\r\n"},
		{"LIST", "+OK\r\n1 20\r\n.\r\n"}, {NULL, NULL}};
	const struct step *const all[] = {dup, nouidl, empty, stray, cut,
					  junk};
	const int want[] = {MX_ERR_PROTOCOL, MX_ERR_UNSUPPORTED, MX_OK,
			    MX_ERR_PROTOCOL, MX_ERR_PROTOCOL, MX_ERR_PROTOCOL};

	for (size_t i = 0; i < MX_ARRAY_SIZE(all); i++) {
		struct script sc;
		pthread_t tid;
		struct mx_pop3_cfg cfg;
		struct mx_pop3 *p = NULL;
		struct mx_pop3_msg *v = NULL;
		struct sink s = {{0}, 0};
		struct mx_error err;
		size_t n = 0;
		int rc;

		script_start(&sc, all[i], &tid);
		cfg = cfg_for(&sc);
		ck_assert_int_eq(mx_pop3_connect(&cfg, &p, &err), MX_OK);
		if (i < 4)
			rc = mx_pop3_list(p, &v, &n, &err);
		else if (i == 4)
			rc = mx_pop3_retr(p, 1, sink_cb, &s, &err);
		else
			rc = mx_pop3_dele(p, 1, &err);
		ck_assert_msg(rc == want[i], "case %zu: %d (%s)", i, rc,
			      err.detail);
		ck_assert_ptr_null(v);
		ck_assert_uint_eq(n, 0);
		if (i == 3)
			ck_assert_ptr_nonnull(strstr(err.detail, "not in UIDL"));
		if (i == 5) /* desynchronized: no more commands */
			ck_assert_int_eq(mx_pop3_dele(p, 2, &err),
					 MX_ERR_PROTOCOL);
		mx_pop3_close(&p);
		script_end(&sc, tid);
		ck_assert_int_eq(sc.mismatch, 0);
		mx_buf_free(&s.b);
	}
}
END_TEST

/* More than 1000 capability lines end the session; what the SASL lines
 * among them said is freed (found by tests/fuzz/fuzz_pop3: LeakSanitizer). */
START_TEST(endless_capa)
{
	struct step steps[] = {GREET, {"CAPA", NULL}, {NULL, NULL}};
	struct script sc;
	struct mx_error err;
	struct mx_buf b = {0};

	ck_assert_int_eq(mx_buf_puts(&b, "+OK\r\n"), 0);
	for (int i = 0; i < 1002; i++)
		ck_assert_int_eq(mx_buf_puts(&b, "SASL PLAIN\r\n"), 0);
	steps[1].reply = b.data;
	ck_assert_int_eq(login_with(steps, NULL, NULL, &err, &sc),
			 MX_ERR_PROTOCOL);
	ck_assert_ptr_nonnull(strstr(err.detail, "endless capability list"));
	mx_buf_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pop3");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	signal(SIGPIPE, SIG_IGN);
	tcase_add_test(tc, uidl_lines);
	tcase_add_test(tc, list_lines);
	tcase_add_test(tc, session);
	tcase_add_test(tc, login_errors);
	tcase_add_test(tc, long_initial_response);
	tcase_add_test(tc, hostile_listings);
	tcase_add_test(tc, endless_capa);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
