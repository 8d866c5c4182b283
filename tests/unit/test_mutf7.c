/* Unit tests: modified UTF-7 mailbox names (RFC 3501 section 5.1.3). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "util/mutf7.h"

static const struct {
	const char *utf8, *wire;
} pairs[] = {
	{"INBOX", "INBOX"},
	{"Entwürfe", "Entw&APw-rfe"},
	{"&", "&-"},
	{"Tom & Jerry", "Tom &- Jerry"},
	{"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
	{"Gesendete Objekte", "Gesendete Objekte"},
	{"Корзина", "&BBoEPgRABDcEOAQ9BDA-"},
	{"📧 Mail", "&2D3c5w- Mail"},
	{"a😀b", "a&2D3eAA-b"},
	{"é&é", "&AOk-&-&AOk-"},
	{"", ""},
};

START_TEST(test_round_trips)
{
	size_t i;
	char *s;

	for (i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		s = mx_mutf7_encode(pairs[i].utf8);
		ck_assert_ptr_nonnull(s);
		ck_assert_msg(strcmp(s, pairs[i].wire) == 0, "encode %s: %s",
			      pairs[i].utf8, s);
		free(s);
		s = mx_mutf7_decode(pairs[i].wire);
		ck_assert_ptr_nonnull(s);
		ck_assert_msg(strcmp(s, pairs[i].utf8) == 0, "decode %s: %s",
			      pairs[i].wire, s);
		free(s);
	}
}
END_TEST

START_TEST(test_malformed)
{
	static const char *const bad_wire[] = {
		"&",            /* shift never ended */
		"&APw",         /* no closing '-' */
		"&AP w-",       /* blank inside base64 */
		"&A/w-",        /* '/' is not the modified alphabet */
		"&AGE-",        /* "a" must not be encoded */
		"&2D0-",        /* lone high surrogate */
		"&3gA-",        /* lone low surrogate */
		"&APx-",        /* non-zero leftover bits */
		"&AP-",         /* too few bits for a character */
		"Entw\xc3\xbc" "rfe", /* raw 8-bit */
		"tab\there",    /* control character */
	};
	static const char *const bad_utf8[] = {
		"\xff", "a\xc3", "\xed\xa0\x80", "\xc0\xaf",
	};
	size_t i;

	for (i = 0; i < sizeof(bad_wire) / sizeof(bad_wire[0]); i++)
		ck_assert_msg(mx_mutf7_decode(bad_wire[i]) == NULL, "%s",
			      bad_wire[i]);
	for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++)
		ck_assert_ptr_null(mx_mutf7_encode(bad_utf8[i]));
	ck_assert_ptr_null(mx_mutf7_decode(NULL));
	ck_assert_ptr_null(mx_mutf7_encode(NULL));
}
END_TEST

/* Every BMP character (minus surrogates) and a few astral ones survive. */
START_TEST(test_all_bmp)
{
	char in[8], *w, *back;
	uint32_t cp;

	for (cp = 1; cp < 0x110000; cp += (cp < 0x10000 ? 1 : 0x1001)) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		if (cp < 0x80) {
			in[0] = (char)cp;
			in[1] = '\0';
		} else if (cp < 0x800) {
			in[0] = (char)(0xc0 | cp >> 6);
			in[1] = (char)(0x80 | (cp & 0x3f));
			in[2] = '\0';
		} else if (cp < 0x10000) {
			in[0] = (char)(0xe0 | cp >> 12);
			in[1] = (char)(0x80 | (cp >> 6 & 0x3f));
			in[2] = (char)(0x80 | (cp & 0x3f));
			in[3] = '\0';
		} else {
			in[0] = (char)(0xf0 | cp >> 18);
			in[1] = (char)(0x80 | (cp >> 12 & 0x3f));
			in[2] = (char)(0x80 | (cp >> 6 & 0x3f));
			in[3] = (char)(0x80 | (cp & 0x3f));
			in[4] = '\0';
		}
		w = mx_mutf7_encode(in);
		ck_assert_ptr_nonnull(w);
		back = mx_mutf7_decode(w);
		ck_assert_msg(back && strcmp(back, in) == 0, "U+%04X", cp);
		free(w);
		free(back);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mutf7");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_round_trips);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_all_bmp);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
