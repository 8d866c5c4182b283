/* Unit tests: error codes and mapping, buffers, hex, base64, big-endian
 * keys. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "util/http.h"
#include "util/util.h"

START_TEST(test_strerror_table)
{
	ck_assert_str_eq(mx_strerror(MX_OK), "success");
	ck_assert_str_eq(mx_err_name(MX_ERR_TLS_VERIFY), "tls_verify");
	ck_assert_str_eq(mx_strerror((enum mx_err)9999), "unknown error");
	/* values are a contract: never renumbered */
	ck_assert_int_eq(MX_ERR_AUTH, 13);
	ck_assert_int_eq(MX_ERR_CHARSET, 21);
	ck_assert_int_eq(MX_ERR_EXPIRED, 22);
	for (int i = 0; i <= MX_ERR_EXPIRED; i++)
		ck_assert_str_ne(mx_strerror((enum mx_err)i), "unknown error");
}
END_TEST

START_TEST(test_error_set_and_class)
{
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_error_set(&e, MX_ERR_NET, "connect %s: %s",
				      "h:1", "refused"), MX_ERR_NET);
	ck_assert_str_eq(e.detail, "connect h:1: refused");
	ck_assert_int_eq(e.retry, MX_RETRY_TEMP);
	mx_error_prefix(&e, "account %s", "a");
	ck_assert_str_eq(e.detail, "account a: connect h:1: refused");
	mx_error_set(&e, MX_ERR_AUTH, NULL);
	ck_assert_int_eq(e.retry, MX_RETRY_FINAL);
	ck_assert_int_eq(mx_error_set(NULL, MX_ERR_IO, "x"), MX_ERR_IO);
}
END_TEST

START_TEST(test_buf)
{
	struct mx_buf b = {0};
	char *s;

	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(mx_buf_printf(&b, "%d,", i), 0);
	ck_assert_uint_eq(strlen(b.data), b.len);
	ck_assert(strncmp(b.data, "0,1,2,", 6) == 0);
	mx_buf_reset(&b);
	ck_assert_uint_eq(b.len, 0);
	mx_buf_append(&b, "a\0b", 3);
	ck_assert_uint_eq(b.len, 3);
	s = mx_buf_steal(&b);
	ck_assert(memcmp(s, "a\0b", 4) == 0);
	ck_assert_ptr_null(b.data);
	free(s);
}
END_TEST

START_TEST(test_hex_be)
{
	uint8_t in[4] = {0x00, 0xab, 0x10, 0xff}, back[4], k[8];
	char hex[9];

	mx_hex(in, 4, hex);
	ck_assert_str_eq(hex, "00ab10ff");
	ck_assert_int_eq(mx_unhex(hex, back, 4), 0);
	ck_assert(memcmp(in, back, 4) == 0);
	ck_assert_int_eq(mx_unhex("zz", back, 1), -1);
	mx_put_be64(k, 0x0102030405060708ULL);
	ck_assert_uint_eq(k[0], 1);
	ck_assert_uint_eq(k[7], 8);
	ck_assert(mx_get_be64(k) == 0x0102030405060708ULL);
	mx_put_be32(k, 0xdeadbeef);
	ck_assert_uint_eq(mx_get_be32(k), 0xdeadbeef);
}
END_TEST

START_TEST(test_sha256)
{
	uint8_t d[32];
	char hex[65];

	mx_sha256("abc", 3, d);
	mx_hex(d, 32, hex);
	ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

/* RFC 4648 section 10 vectors, both ways. */
START_TEST(test_base64_rfc4648)
{
	static const char *const vec[][2] = {
		{ "", "" },		{ "f", "Zg==" },
		{ "fo", "Zm8=" },	{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};
	unsigned char out[16];

	for (size_t i = 0; i < MX_ARRAY_SIZE(vec); i++) {
		char *e = mx_base64_encode(vec[i][0], strlen(vec[i][0]));
		size_t len = 99;

		ck_assert_ptr_nonnull(e);
		ck_assert_str_eq(e, vec[i][1]);
		free(e);
		ck_assert_int_eq(mx_base64_decode(vec[i][1], strlen(vec[i][1]),
						  0, out, sizeof(out), &len), 0);
		ck_assert_uint_eq(len, strlen(vec[i][0]));
		ck_assert(memcmp(out, vec[i][0], len) == 0);
	}
}
END_TEST

/* Every length 0..300 of every byte value: the encoder agrees with
 * OpenSSL's EVP_EncodeBlock, the decoder gives the bytes back, and a
 * buffer one byte short is refused. */
START_TEST(test_base64_roundtrip)
{
	unsigned char in[300], back[300], ref[404];
	char *e;
	size_t len;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (unsigned char)(i * 7 + 3);
	for (size_t n = 0; n <= sizeof(in); n++) {
		EVP_EncodeBlock(ref, in, (int)n);
		e = mx_base64_encode(in, n);
		ck_assert_ptr_nonnull(e);
		ck_assert_str_eq(e, (char *)ref);
		len = 0;
		ck_assert_int_eq(mx_base64_decode(e, strlen(e), 0, back, n,
						  &len), 0);
		ck_assert_uint_eq(len, n);
		ck_assert(memcmp(back, in, n) == 0);
		if (n > 0)
			ck_assert_int_eq(mx_base64_decode(e, strlen(e), 0, back,
							  n - 1, &len), -1);
		free(e);
	}
}
END_TEST

START_TEST(test_base64_strict)
{
	static const char *const bad[] = {
		"Zg", "Zg=", "Zm9vY", "=", "==", "====", "Z===", "Zg=a",
		"Zg==Zg==", "Zg===", "Zm9v=", "Zm-v", "Zm_v", "Zm9v\n",
		" Zm9v", "Zm 9v", "Zm9v.", "Zg\0=",
		"Zh==", /* "f" with stray bits below the byte */
		"Zm9=", /* "fo" likewise */
	};
	unsigned char out[16];
	size_t len;

	for (size_t i = 0; i < MX_ARRAY_SIZE(bad); i++) {
		size_t n = strcmp(bad[i], "Zg\0=") == 0 ? 4 : strlen(bad[i]);

		len = 77;
		ck_assert_msg(mx_base64_decode(bad[i], n, 0, out, sizeof(out),
					       &len) == -1, "accepted %s",
			      bad[i]);
		ck_assert_uint_eq(len, 77);
	}
	/* N bounds the input, not a NUL. */
	ck_assert_int_eq(mx_base64_decode("Zm9vYmFy", 4, 0, out, sizeof(out),
					  &len), 0);
	ck_assert_uint_eq(len, 3);
	/* Stray tail bits only with MX_BASE64_ANY_TAIL. */
	ck_assert_int_eq(mx_base64_decode("Zh==", 4, MX_BASE64_ANY_TAIL, out,
					  sizeof(out), &len), 0);
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(out[0], 'f');
	ck_assert_int_eq(mx_base64_decode("Zm9=", 4, MX_BASE64_ANY_TAIL, out,
					  sizeof(out), &len), 0);
	ck_assert_uint_eq(len, 2);
	ck_assert(memcmp(out, "fo", 2) == 0);
}
END_TEST

START_TEST(test_base64_space)
{
	static const char wrapped[] = " Zm9v\r\nYm\tFy\n";
	unsigned char out[16];
	size_t len = 0;

	ck_assert_int_eq(mx_base64_decode(wrapped, strlen(wrapped), 0, out,
					  sizeof(out), &len), -1);
	ck_assert_int_eq(mx_base64_decode(wrapped, strlen(wrapped),
					  MX_BASE64_SKIP_SPACE, out,
					  sizeof(out), &len), 0);
	ck_assert_uint_eq(len, 6);
	ck_assert(memcmp(out, "foobar", 6) == 0);
	ck_assert_int_eq(mx_base64_decode("Zg=\r\n=  ", 8,
					  MX_BASE64_SKIP_SPACE, out,
					  sizeof(out), &len), 0);
	ck_assert_uint_eq(len, 1);
	ck_assert_int_eq(mx_base64_decode(" \n", 2, MX_BASE64_SKIP_SPACE, out,
					  sizeof(out), &len), 0);
	ck_assert_uint_eq(len, 0);
	/* Still strict about everything else. */
	ck_assert_int_eq(mx_base64_decode("Zg== Zg==", 9, MX_BASE64_SKIP_SPACE,
					  out, sizeof(out), &len), -1);
	ck_assert_int_eq(mx_base64_decode("Zm9v\fYmFy", 9,
					  MX_BASE64_SKIP_SPACE, out,
					  sizeof(out), &len), -1);
	ck_assert_int_eq(mx_base64_decode("Zm9 ", 4, MX_BASE64_SKIP_SPACE,
					  out, sizeof(out), &len), -1);
}
END_TEST

START_TEST(test_hexval)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		ck_assert_int_eq(mx_hexval(digits[i]), i);
		if (i >= 10)
			ck_assert_int_eq(mx_hexval(digits[i] - 'a' + 'A'), i);
	}
	for (int c = -128; c < 256; c++)
		if (strchr("0123456789abcdefABCDEF", c) == NULL || c == 0)
			ck_assert_int_eq(mx_hexval(c), -1);
}
END_TEST

START_TEST(test_name_valid)
{
	char long_name[66];

	ck_assert(mx_name_valid("a"));
	ck_assert(mx_name_valid("Work.mail_2-x"));
	ck_assert(!mx_name_valid(""));
	ck_assert(!mx_name_valid("a b"));
	ck_assert(!mx_name_valid("a/b"));
	ck_assert(!mx_name_valid("a]"));
	ck_assert(!mx_name_valid("caf\xc3\xa9")); /* ASCII only, any locale */
	memset(long_name, 'x', 64);
	long_name[64] = '\0';
	ck_assert(mx_name_valid(long_name));
	long_name[64] = 'x';
	long_name[65] = '\0';
	ck_assert(!mx_name_valid(long_name));
}
END_TEST

/* All bytes arrive through a pipe; a closed pipe is an error with errno
 * (EPIPE: the test ignores SIGPIPE). */
START_TEST(test_write_all)
{
	static char big[200000], back[sizeof(big)];
	int fds[2];
	pid_t pid;
	size_t got = 0;
	int status;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 31);
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) { /* more than a pipe buffer: short writes */
		close(fds[0]);
		_exit(mx_write_all(fds[1], big, sizeof(big)) == 0 ? 0 : 1);
	}
	close(fds[1]);
	for (;;) {
		ssize_t r = read(fds[0], back + got, sizeof(back) - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fds[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_uint_eq(got, sizeof(big));
	ck_assert(memcmp(back, big, sizeof(big)) == 0);

	signal(SIGPIPE, SIG_IGN);
	ck_assert_int_eq(pipe(fds), 0);
	close(fds[0]);
	errno = 0;
	ck_assert_int_eq(mx_write_all(fds[1], "x", 1), -1);
	ck_assert_int_eq(errno, EPIPE);
	close(fds[1]);
	ck_assert_int_eq(mx_write_all(-1, "x", 1), -1);
	ck_assert_int_eq(errno, EBADF);
	ck_assert_int_eq(mx_write_all(-1, "x", 0), 0);
}
END_TEST

/* The boundaries of each length (RFC 3629 3), checked byte by byte. */
START_TEST(test_utf8_encode)
{
	static const struct {
		uint32_t cp;
		const char *utf8;
		size_t n;
	} vec[] = {
		{ 0x0, "\0", 1 },	{ 0x41, "A", 1 },
		{ 0x7f, "\x7f", 1 },	{ 0x80, "\xc2\x80", 2 },
		{ 0xe9, "\xc3\xa9", 2 }, { 0x7ff, "\xdf\xbf", 2 },
		{ 0x800, "\xe0\xa0\x80", 3 },
		{ 0x20ac, "\xe2\x82\xac", 3 },
		{ 0xd800, "\xed\xa0\x80", 3 }, /* as it is: callers check */
		{ 0xfffd, "\xef\xbf\xbd", 3 },
		{ 0xffff, "\xef\xbf\xbf", 3 },
		{ 0x10000, "\xf0\x90\x80\x80", 4 },
		{ 0x1f600, "\xf0\x9f\x98\x80", 4 },
		{ 0x10ffff, "\xf4\x8f\xbf\xbf", 4 },
	};
	char out[5];

	for (size_t i = 0; i < MX_ARRAY_SIZE(vec); i++) {
		size_t n = mx_utf8_encode(vec[i].cp, out);

		ck_assert_uint_eq(n, vec[i].n);
		ck_assert_msg(memcmp(out, vec[i].utf8, n) == 0, "U+%04X",
			      (unsigned)vec[i].cp);
		out[n] = '\0';
		if (vec[i].cp != 0 && vec[i].cp != 0xd800)
			ck_assert(mx_utf8_valid_str(out));
	}
}
END_TEST

/* The libcurl write callback keeps at most MAX bytes and says so. */
START_TEST(test_mkdir_p)
{
	char top[64], path[128];
	struct mx_error e;
	struct stat sb;

	/* An empty path is refused; it used to be read past its end. */
	mx_error_clear(&e);
	ck_assert_int_eq(mx_mkdir_p("", 0700, &e), MX_ERR_INVAL);
	ck_assert_msg(strstr(e.detail, "empty"), "%s", e.detail);
	strcpy(top, "/tmp/mx-test-util.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(top));
	snprintf(path, sizeof(path), "%s/a/b/c", top);
	ck_assert_int_eq(mx_mkdir_p(path, 0700, &e), MX_OK);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));
	ck_assert_int_eq(mx_mkdir_p(path, 0700, &e), MX_OK); /* exists */
	rmdir(path);
	snprintf(path, sizeof(path), "%s/a/b", top);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/a", top);
	rmdir(path);
	rmdir(top);
}
END_TEST

START_TEST(test_http_sink)
{
	struct mx_http_sink s = { .max = 10 };
	char chunk[] = "abcdef";

	ck_assert_int_eq(mx_http_global_init(NULL), MX_OK);
	ck_assert_int_eq(mx_http_global_init(NULL), MX_OK); /* again: same */
	ck_assert_uint_eq(mx_http_sink_write(chunk, 1, 6, &s), 6);
	ck_assert_uint_eq(mx_http_sink_write(chunk, 1, 4, &s), 4); /* = MAX */
	ck_assert(!s.too_big);
	ck_assert_str_eq(s.body.data, "abcdefabcd");
	ck_assert_uint_eq(mx_http_sink_write(chunk, 1, 1, &s), 0);
	ck_assert(s.too_big);
	ck_assert_uint_eq(s.body.len, 10);
	mx_buf_free(&s.body);

	s = (struct mx_http_sink){ .max = 5 };
	ck_assert_uint_eq(mx_http_sink_write(chunk, 1, 6, &s), 0);
	ck_assert(s.too_big);
	ck_assert_uint_eq(s.body.len, 0);
	mx_buf_free(&s.body);
}
END_TEST

START_TEST(test_parse_u64)
{
	uint64_t v = 7;

	ck_assert_int_eq(mx_parse_u64("0", 0, 10, &v), 0);
	ck_assert_uint_eq(v, 0);
	ck_assert_int_eq(mx_parse_u64("10", 0, 10, &v), 0);
	ck_assert_uint_eq(v, 10);
	ck_assert_int_eq(mx_parse_u64("18446744073709551615", 0, UINT64_MAX,
				      &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
	v = 7;
	/* Signs, spaces, garbage and empty input: what atoi()/strtoul()
	 * took as 0 or as a wrapped huge count. */
	ck_assert_int_eq(mx_parse_u64("-1", 0, UINT64_MAX, &v), -1);
	ck_assert_int_eq(mx_parse_u64("+1", 0, 10, &v), -1);
	ck_assert_int_eq(mx_parse_u64(" 1", 0, 10, &v), -1);
	ck_assert_int_eq(mx_parse_u64("1 ", 0, 10, &v), -1);
	ck_assert_int_eq(mx_parse_u64("abc", 0, 10, &v), -1);
	ck_assert_int_eq(mx_parse_u64("5x", 0, 10, &v), -1);
	ck_assert_int_eq(mx_parse_u64("0x5", 0, 10, &v), -1);
	ck_assert_int_eq(mx_parse_u64("", 0, 10, &v), -1);
	ck_assert_int_eq(mx_parse_u64(NULL, 0, 10, &v), -1);
	/* Overflow, and out of range on either side. */
	ck_assert_int_eq(mx_parse_u64("18446744073709551616", 0, UINT64_MAX,
				      &v), -1);
	ck_assert_int_eq(mx_parse_u64("99999999999999999999999", 0,
				      UINT64_MAX, &v), -1);
	ck_assert_int_eq(mx_parse_u64("4294967295", 1, 10000, &v), -1);
	ck_assert_int_eq(mx_parse_u64("0", 1, 10000, &v), -1);
	ck_assert_int_eq(mx_parse_u64("11", 0, 10, &v), -1);
	ck_assert_uint_eq(v, 7); /* untouched on error */
}
END_TEST

static void check_esc(const char *in, size_t n, bool keep_nl,
		      const char *want)
{
	struct mx_buf b = {0};

	ck_assert_int_eq(mx_term_escape(&b, in, n, keep_nl), 0);
	ck_assert_str_eq(b.data, want);
	ck_assert_uint_eq(b.len, strlen(want));
	mx_buf_free(&b);
}

START_TEST(test_term_escape)
{
	check_esc("", 0, false, "");
	check_esc("plain \\ text", 12, false, "plain \\ text");
	/* ESC sequences (title, clear screen), BEL, DEL, CR and NL. */
	check_esc("\x1b]0;pwned\x07", 10, false, "\\x1b]0;pwned\\x07");
	check_esc("a\x1b[2Jb\x7f", 7, false, "a\\x1b[2Jb\\x7f");
	check_esc("l1\r\nl2\t.", 8, false, "l1\\x0d\\x0al2\\x09.");
	check_esc("l1\r\nl2\t.", 8, true, "l1\r\nl2\t.");
	check_esc("a\rb\r", 4, true, "a\\x0db\\x0d");
	/* NUL inside the given length. */
	check_esc("a\0b", 3, false, "a\\x00b");
	/* C1 controls (U+009B is CSI on some terminals) as \u. */
	check_esc("x\xc2\x9b" "31m", 6, false, "x\\u009b31m");
	check_esc("\xc2\x85", 2, true, "\\u0085");
	/* Valid UTF-8 stays: U+00E9, U+00A0, U+20AC, U+1F600. */
	check_esc("\xc3\xa9\xc2\xa0\xe2\x82\xac\xf0\x9f\x98\x80", 11, false,
		  "\xc3\xa9\xc2\xa0\xe2\x82\xac\xf0\x9f\x98\x80");
	/* Invalid UTF-8 byte by byte: stray continuation, overlong, a
	 * surrogate, a truncated sequence at the end, 0xff. */
	check_esc("\x80", 1, false, "\\x80");
	check_esc("\xc0\xaf", 2, false, "\\xc0\\xaf");
	check_esc("\xed\xa0\x80", 3, false, "\\xed\\xa0\\x80");
	check_esc("ok\xe2\x82", 4, false, "ok\\xe2\\x82");
	check_esc("\xff", 1, false, "\\xff");

	ck_assert(mx_term_safe("Caf\xc3\xa9 \\ ok"));
	ck_assert(!mx_term_safe("a\x1b[0m"));
	ck_assert(!mx_term_safe("tab\there"));
	ck_assert(!mx_term_safe("\x7f"));
	ck_assert(!mx_term_safe("\xc2\x9b"));
	ck_assert(!mx_term_safe("\xe2\x82"));
}
END_TEST

/* DEL and C1 controls, which JSON allows raw, leave as \u escapes; the
 * rest (other UTF-8, jansson's own escapes) is copied. */
/* A deadline on the monotonic clock, normalised, MS ahead; a condition
 * variable made for that clock times out at it (not at once, which is
 * what a realtime deadline on a monotonic cv would do). */
START_TEST(test_deadline_mono)
{
	static const uint64_t ms[] = {0, 1, 999, 1000, 1001, 2500};
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	struct timespec ts, now;
	uint64_t t0;

	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		int64_t d;

		clock_gettime(CLOCK_MONOTONIC, &now);
		mx_deadline_mono(ms[i], &ts);
		ck_assert(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000L);
		d = ((int64_t)ts.tv_sec - now.tv_sec) * 1000 +
		    (ts.tv_nsec - now.tv_nsec) / 1000000;
		ck_assert_int_ge(d, (int64_t)ms[i]);
		ck_assert_int_le(d, (int64_t)ms[i] + 1000);
	}
	ck_assert_int_eq(mx_cond_init_mono(&cv), 0);
	t0 = mx_now_ms();
	mx_deadline_mono(50, &ts);
	pthread_mutex_lock(&mu);
	ck_assert_int_eq(pthread_cond_timedwait(&cv, &mu, &ts), ETIMEDOUT);
	pthread_mutex_unlock(&mu);
	ck_assert_uint_ge(mx_now_ms() - t0, 49);
	pthread_cond_destroy(&cv);
}
END_TEST

START_TEST(test_json_term_safe)
{
	static const struct {
		const char *in, *want;
	} v[] = {
		{"{\"s\": \"a\x7f\"}", "{\"s\": \"a\\u007f\"}"},
		{"\"\xc2\x9b[2J\"", "\"\\u009b[2J\""},
		{"\"\xc2\x80\xc2\x9f\"", "\"\\u0080\\u009f\""},
		{"\"\xc2\xa0 caf\xc3\xa9 \\u001b\"", "\"\xc2\xa0 caf\xc3\xa9 \\u001b\""},
		{"", ""},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *s = mx_json_term_safe(v[i].in);

		ck_assert_ptr_nonnull(s);
		ck_assert_str_eq(s, v[i].want);
		free(s);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_strerror_table);
	tcase_add_test(tc, test_error_set_and_class);
	tcase_add_test(tc, test_buf);
	tcase_add_test(tc, test_hex_be);
	tcase_add_test(tc, test_sha256);
	tcase_add_test(tc, test_base64_rfc4648);
	tcase_add_test(tc, test_base64_roundtrip);
	tcase_add_test(tc, test_base64_strict);
	tcase_add_test(tc, test_base64_space);
	tcase_add_test(tc, test_http_sink);
	tcase_add_test(tc, test_hexval);
	tcase_add_test(tc, test_name_valid);
	tcase_add_test(tc, test_write_all);
	tcase_add_test(tc, test_utf8_encode);
	tcase_add_test(tc, test_parse_u64);
	tcase_add_test(tc, test_term_escape);
	tcase_add_test(tc, test_json_term_safe);
	tcase_add_test(tc, test_mkdir_p);
	tcase_add_test(tc, test_deadline_mono);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
