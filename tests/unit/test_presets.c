/* Unit tests: the provider presets table is complete and consistent. */
#include <check.h>
#include <string.h>

#include "account/presets.h"

START_TEST(test_every_preset_complete)
{
	size_t n = 0;

	for (const struct mx_preset *p = mx_presets(); p->name; p++, n++) {
		bool generic = strcmp(p->name, "generic") == 0;

		ck_assert_msg(p->imap_port > 0 && p->imap_port < 65536, "%s imap port", p->name);
		ck_assert_msg(p->smtp_port > 0 && p->smtp_port < 65536, "%s smtp port", p->name);
		ck_assert_msg(generic || (p->imap_host && p->smtp_host), "%s hosts", p->name);
		ck_assert_msg(p->auth != 0, "%s has no auth mechanism", p->name);
		ck_assert_msg(p->daily_limit >= 0, "%s limit", p->name);
		ck_assert_msg(generic || p->daily_limit > 0, "%s has no daily limit", p->name);
		/* OAuth-capable presets must say where tokens come from. */
		if ((p->auth & (MX_AUTH_XOAUTH2 | MX_AUTH_OAUTHBEARER)) && !generic) {
			ck_assert_msg(p->token_url && strncmp(p->token_url, "https://", 8) == 0,
				      "%s token url", p->name);
			ck_assert_msg(p->scope && *p->scope, "%s scope", p->name);
		}
		/* Implicit TLS on 993/465, STARTTLS on 143/587. */
		ck_assert_msg(p->imap_implicit_tls == (p->imap_port == 993), "%s imap tls", p->name);
		ck_assert_msg(p->smtp_implicit_tls == (p->smtp_port == 465), "%s smtp tls", p->name);
	}
	ck_assert_uint_eq(n, 6);
}
END_TEST

START_TEST(test_find)
{
	const char *names[] = {"gmail", "outlook", "yahoo", "icloud", "fastmail", "generic"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		ck_assert_ptr_nonnull(mx_preset_find(names[i]));
	ck_assert_ptr_nonnull(mx_preset_find("Gmail"));
	ck_assert_ptr_null(mx_preset_find("aol"));
	ck_assert(mx_preset_find("gmail")->saves_sent);
	ck_assert(!(mx_preset_find("gmail")->auth & MX_AUTH_PLAIN));
	ck_assert_int_eq(mx_preset_find("gmail")->daily_limit, 500);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("presets");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, test_every_preset_complete);
	tcase_add_test(tc, test_find);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
