/*
 * The fast paths of the MIME parser: well-formed multiparts are split by
 * our own memmem()-based splitter instead of libetpan's byte-by-byte scan,
 * and base64 parts are sized without decoding.  Every multipart our
 * splitter finds odd must still go through libetpan (mailmime_parse() is
 * wrapped with -Wl,--wrap to count the calls) and come out exactly as
 * libetpan splits it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libetpan/libetpan.h>

#include "mime/mime.h"
#include "mime/mime_int.h"

int __real_mailmime_parse(const char *message, size_t length, size_t *indx,
			  struct mailmime **result);
int __wrap_mailmime_parse(const char *message, size_t length, size_t *indx,
			  struct mailmime **result);

static int etpan_calls;

int __wrap_mailmime_parse(const char *message, size_t length, size_t *indx,
			  struct mailmime **result)
{
	etpan_calls++;
	return __real_mailmime_parse(message, length, indx, result);
}

#define HDR "From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"

/* "ID TYPE SIZE[ att];..." of the parts of RAW, and libetpan's calls. */
static void parts_of(const char *raw, char *out, size_t cap, int *calls)
{
	struct mx_parsed p;
	size_t i, o = 0;

	etpan_calls = 0;
	ck_assert_int_eq(mx_mime_parse(raw, strlen(raw), &p, NULL), MX_OK);
	*calls = etpan_calls;
	out[0] = '\0';
	for (i = 0; i < p.nparts && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s %s %llu%s;",
				      p.parts[i].part_id,
				      p.parts[i].content_type,
				      (unsigned long long)p.parts[i].size,
				      p.parts[i].attachment ? " att" : "");
	if (o < cap)
		snprintf(out + o, cap - o, "flags=%u", p.flags);
	mx_parsed_free(&p);
}

START_TEST(test_wellformed_without_libetpan)
{
	static const char msg[] =
		HDR "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
		"\r\npreamble\r\n--outer\r\n"
		"Content-Type: multipart/alternative; boundary=inner\r\n"
		"\r\n--inner\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: quoted-printable\r\n"
		"\r\nHell=C3=B6 world=\r\n!\r\n--inner\r\n"
		"Content-Type: text/html\r\n\r\n<p>Hi</p>\r\n--inner--\r\n"
		"\r\n--outer \r\n"
		"Content-Type: application/pdf; name=\"a.pdf\"\r\n"
		"Content-Transfer-Encoding: base64\r\n"
		"\r\nJVBERi0xLjQK\r\nAAECAwQF\r\nBg==\r\n--outer--\r\n"
		"epilogue\r\n";
	char got[512];
	int calls;

	parts_of(msg, got, sizeof(got), &calls);
	ck_assert_str_eq(got, "1.1 text/plain 13;1.2 text/html 9;"
			      "2 application/pdf 16 att;flags=0");
	ck_assert_int_eq(calls, 0);
}
END_TEST

/* Multiparts libetpan splits its own way (found by comparing both over
   the real-world corpus and mutations of it): results as before. */
START_TEST(test_odd_multiparts_via_libetpan)
{
	static const struct {
		const char *raw, *want;
	} cases[] = {
		/* an empty part: libetpan runs it into the close delimiter */
		{ HDR "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
		      "--b\r\n\r\n\r\n--b--\r\n",
		  "1 text/plain 5;flags=0" },
		/* a line "--b----": a delimiter to libetpan */
		{ HDR "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
		      "--b\r\nContent-Type: text/plain\r\n\r\none\r\n"
		      "--b----\r\ntwo\r\n--b\r\nContent-Type: text/html\r\n"
		      "\r\nthree\r\n--b--\r\n",
		  "1 text/plain 17;2 text/html 5;flags=0" },
		/* a part starting with an empty line */
		{ HDR "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
		      "--b\r\nContent-Type: text/plain\r\n\r\none\r\n"
		      "--b\n\nContent-Type: text/x-two\r\n\r\ntwo\r\n--b--\r\n",
		  "1 text/plain 3;2 text/x-two 3;flags=0" },
		/* a digest */
		{ HDR "Content-Type: multipart/digest; boundary=\"b\"\r\n\r\n"
		      "--b\r\n\r\nFrom: x@example.com\r\n\r\nm1\r\n--b\r\n\r\n"
		      "From: y@example.com\r\n\r\nm2\r\n--b--\r\n",
		  "1 message/rfc822 2 att;2 message/rfc822 2 att;flags=0" },
		/* delimiters after the closing one */
		{ HDR "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
		      "--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b--\r\n"
		      "--b\r\nContent-Type: text/html\r\n\r\ntwo\r\n--b--\r\n",
		  "1 text/plain 10;2 text/html 3;flags=0" },
		/* part headers that are not headers */
		{ HDR "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
		      "--b\r\nContent-Type: text/plain\r\n\r\none\r\n--b\r\n"
		      "Content-Typ\r\nnot a header\r\n\r\ntwo\r\n--b--\r\n",
		  "1 text/plain 3;2 text/plain 32;flags=0" },
	};
	char got[512];
	int calls;
	size_t i;

	for (i = 0; i < MX_ARRAY_SIZE(cases); i++) {
		parts_of(cases[i].raw, got, sizeof(got), &calls);
		ck_assert_msg(strcmp(got, cases[i].want) == 0,
			      "case %zu: got \"%s\", want \"%s\"", i, got,
			      cases[i].want);
		ck_assert_msg(calls == 1, "case %zu: libetpan called %d times",
			      i, calls);
	}
}
END_TEST

/* What the sizing loop must count: exactly what the decoder produces. */
START_TEST(test_base64_len_matches_decoder)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		"0123456789+/\r\n =-_.@[`{\x80\xff\t:";
	char in[300];
	unsigned seed = 12345;
	int c, k;

	for (c = 0; c < 256; c++) {
		struct mx_buf b = {0};

		for (k = 0; k < 200; k++)
			in[k] = (char)(k % 7 == 3 ? c : 'A' + k % 26);
		ck_assert_int_eq(mx_base64_append(&b, in, 200), 0);
		ck_assert_uint_eq(mx_base64_decoded_len(in, 200), b.len);
		mx_buf_free(&b);
	}
	for (k = 0; k < 20000; k++) {
		struct mx_buf b = {0};
		size_t n, i;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 8) % sizeof(in);
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			/* mostly alphabet, sometimes anything else */
			in[i] = (seed >> 24) % 8 ?
					alpha[(seed >> 8) % 64] :
					alpha[(seed >> 8) % (sizeof(alpha) - 1)];
		}
		ck_assert_int_eq(mx_base64_append(&b, in, n), 0);
		ck_assert_msg(mx_base64_decoded_len(in, n) == b.len,
			      "input %d (%zu bytes)", k, n);
		mx_buf_free(&b);
	}
	ck_assert_uint_eq(mx_base64_decoded_len(NULL, 0), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mime_split");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_wellformed_without_libetpan);
	tcase_add_test(tc, test_odd_multiparts_via_libetpan);
	tcase_add_test(tc, test_base64_len_matches_decoder);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
