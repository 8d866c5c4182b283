/*
 * Unit tests: the strict multipart/form-data parser of POST /v1/send
 * (src/api/multipart.c): the boundary parameter, a well-formed body as
 * curl sends it (binary content with CRLF and dashes kept byte for byte),
 * every truncation of it refused, and each hostile shape refused with a
 * message naming it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"

#define B "------------------------d74496d66958873e"

static const char good[] =
	"--" B "\r\n"
	"Content-Disposition: form-data; name=\"message\"\r\n"
	"Content-Type: application/json\r\n"
	"\r\n"
	"{\"account\":1}\r\n"
	"--" B "\r\n"
	"Content-Disposition: form-data; name=\"file\"; "
	"filename=\"r\\\"\xc3\xa9sum\xc3\xa9.bin\"\r\n"
	"content-type: application/octet-stream\r\n"
	"\r\n"
	"\x00\x01\r\n--" "\r\n-" B "\r\n"
	"--" B "--\r\n";

static bool parse(const char *body, size_t len, struct mx_api_part **v,
		  size_t *n, char *msg)
{
	return mx_api_multipart_parse(B, body, len, 8, v, n, msg, 256);
}

START_TEST(boundary_parameter)
{
	char b[71];

	ck_assert(mx_api_multipart_boundary("multipart/form-data; boundary=" B,
					    b));
	ck_assert_str_eq(b, B);
	ck_assert(mx_api_multipart_boundary("Multipart/Form-Data;BOUNDARY="
					    "\"a b:c\"", b));
	ck_assert_str_eq(b, "a b:c");
	ck_assert(!mx_api_multipart_boundary("multipart/form-data", b));
	ck_assert(!mx_api_multipart_boundary("multipart/mixed; boundary=x", b));
	ck_assert(!mx_api_multipart_boundary("multipart/form-data; boundary=",
					     b));
	ck_assert(!mx_api_multipart_boundary("multipart/form-data; boundary="
					     "\"a \"", b));
	ck_assert(!mx_api_multipart_boundary("multipart/form-data; boundary=x;"
					     " boundary=y", b));
	ck_assert(!mx_api_multipart_boundary("multipart/form-data; boundary=x;"
					     " charset=utf-8", b));
	ck_assert(!mx_api_multipart_boundary("multipart/form-data; boundary="
					     "\"x", b));
	ck_assert(!mx_api_multipart_boundary(
		"multipart/form-data; boundary=0123456789012345678901234567890"
		"1234567890123456789012345678901234567890", b));
}
END_TEST

START_TEST(well_formed_body)
{
	struct mx_api_part *v;
	size_t n;
	char msg[256];
	static const char data[] = "\x00\x01\r\n--\r\n-" B;

	ck_assert_msg(parse(good, sizeof(good) - 1, &v, &n, msg), "%s", msg);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].name, "message");
	ck_assert_ptr_null(v[0].filename);
	ck_assert_str_eq(v[0].content_type, "application/json");
	ck_assert_uint_eq(v[0].len, 13);
	ck_assert(memcmp(v[0].data, "{\"account\":1}", 13) == 0);
	ck_assert_str_eq(v[1].name, "file");
	ck_assert_str_eq(v[1].filename, "r\"\xc3\xa9sum\xc3\xa9.bin");
	ck_assert_str_eq(v[1].content_type, "application/octet-stream");
	ck_assert_uint_eq(v[1].len, sizeof(data) - 1);
	ck_assert(memcmp(v[1].data, data, sizeof(data) - 1) == 0);
	mx_api_parts_free(v, n);
	/* Without the final CRLF too. */
	ck_assert(parse(good, sizeof(good) - 3, &v, &n, msg));
	mx_api_parts_free(v, n);
}
END_TEST

/* Every body cut short is refused (and read within its bounds: the
 * sanitizer build checks that on a copy of exactly that size). */
START_TEST(every_truncation_refused)
{
	struct mx_api_part *v;
	size_t n;
	char msg[256];

	for (size_t len = 0; len < sizeof(good) - 3; len++) {
		char *cut = malloc(len ? len : 1);

		memcpy(cut, good, len);
		ck_assert_msg(!parse(cut, len, &v, &n, msg), "len %zu", len);
		ck_assert(msg[0] != '\0');
		free(cut);
	}
}
END_TEST

static const struct {
	const char *body, *msg;
} bad[] = {
	{"preamble\r\n--" B "\r\nContent-Disposition: form-data; name=a\r\n"
	 "\r\nx\r\n--" B "--", "must start with the boundary"},
	{"--" B "--\r\n", "no parts"},
	{"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--"
	 B "--\r\nepilogue", "data after the closing boundary"},
	{"--" B "\r\nContent-Disposition: form-data; name=a\r\n more\r\n\r\n"
	 "x\r\n--" B "--", "folded"},
	{"--" B "\r\nContent-Disposition: form-data; name=a\r\nX-Evil: 1\r\n"
	 "\r\nx\r\n--" B "--", "'X-Evil' is not accepted"},
	{"--" B "\r\nContent-Disposition: form-data; name=a; "
	 "filename*=UTF-8''x\r\n\r\nx\r\n--" B "--", "filename*"},
	{"--" B "\r\nContent-Disposition: form-data; filename=x\r\n\r\nx\r\n"
	 "--" B "--", "has no name"},
	{"--" B "\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\n"
	 "x\r\n--" B "--", "name given twice"},
	{"--" B "\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--"
	 B "--", "must be form-data"},
	{"--" B "\r\nContent-Disposition: form-data; name=a\r\n"
	 "Content-Transfer-Encoding: base64\r\n\r\nx\r\n--" B "--",
	 "7bit, 8bit or binary"},
	{"--" B "\r\nContent-Type: text/plain\r\n\r\nx\r\n--" B "--",
	 "no Content-Disposition"},
	{"--" B "\r\nContent-Disposition: form-data; name=a\r\n"
	 "Content-Disposition: form-data; name=b\r\n\r\nx\r\n--" B "--",
	 "given twice"},
	{"--" B "\r\nContent-Disposition: form-data; name=\"a\x01\"\r\n\r\nx"
	 "\r\n--" B "--", "control character"},
	{"--" B "\r\nContent-Disposition: form-data; name=a; filename=\""
	 "\xc3(\"\r\n\r\nx\r\n--" B "--", "not valid UTF-8"},
	{"--" B "\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--"
	 B "--", "unterminated"},
	{"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n--"
	 B "junk\r\n", "must end in CRLF"},
	{"--" B "\nContent-Disposition: form-data; name=a\n\nx\n--" B "--",
	 "must end in CRLF"},
	{"--" B "\r\nContent-Disposition: form-data; name=a; size=3\r\n\r\nx"
	 "\r\n--" B "--", "unknown parameter 'size'"},
};

START_TEST(hostile_shapes_refused)
{
	struct mx_api_part *v = NULL;
	size_t n = 0;
	char msg[256];

	msg[0] = '\0';
	ck_assert_msg(!parse(bad[_i].body, strlen(bad[_i].body), &v, &n, msg),
		      "case %d accepted", _i);
	ck_assert_ptr_null(v);
	ck_assert_msg(strstr(msg, bad[_i].msg) != NULL, "case %d: '%s' lacks '%s'", _i, msg, bad[_i].msg);
}
END_TEST

START_TEST(limits)
{
	struct mx_api_part *v;
	size_t n, k;
	char msg[256], *big;
	static const char two[] =
		"--" B "\r\nContent-Disposition: form-data; name=a\r\n\r\nx\r\n"
		"--" B "\r\nContent-Disposition: form-data; name=b\r\n\r\ny\r\n"
		"--" B "--";

	ck_assert(!mx_api_multipart_parse(B, two, sizeof(two) - 1, 1, &v, &n,
					  msg, sizeof(msg)));
	ck_assert_ptr_nonnull(strstr(msg, "more than 1 parts"));
	ck_assert(mx_api_multipart_parse(B, two, sizeof(two) - 1, 2, &v, &n,
					 msg, sizeof(msg)));
	mx_api_parts_free(v, n);
	/* A header section over 8 KB. */
	big = malloc(10000);
	k = (size_t)sprintf(big, "--" B "\r\nContent-Disposition: form-data; "
			    "name=a\r\nContent-Type: ");
	memset(big + k, 'x', 8500);
	strcpy(big + k + 8500, "\r\n\r\nx\r\n--" B "--");
	ck_assert(!parse(big, strlen(big), &v, &n, msg));
	ck_assert_ptr_nonnull(strstr(msg, "within 8192 bytes"));
	free(big);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("multipart");
	TCase *tc = tcase_create("multipart");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, boundary_parameter);
	tcase_add_test(tc, well_formed_body);
	tcase_add_test(tc, every_truncation_refused);
	tcase_add_loop_test(tc, hostile_shapes_refused, 0,
			    (int)(sizeof(bad) / sizeof(bad[0])));
	tcase_add_test(tc, limits);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
