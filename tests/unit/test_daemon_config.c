/*
 * Unit tests of mxsyncd's configuration parser (src/daemon/config.c):
 * files written to a mkdtemp() directory and loaded.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

static char dir[64], path[128];

static void write_conf(const char *text)
{
	FILE *fp;

	if (dir[0] == '\0') {
		strcpy(dir, "/tmp/mx-conf.XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(dir));
		snprintf(path, sizeof(path), "%s/mxsync.conf", dir);
	}
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fputs(text, fp) >= 0, 1);
	ck_assert_int_eq(fclose(fp), 0);
}

static void remove_conf(void)
{
	unlink(path);
	rmdir(dir);
	dir[0] = '\0';
}

/* A key given twice in a section: the last one wins and the earlier list
 * is freed (found by tests/fuzz/fuzz_config: LeakSanitizer). */
START_TEST(repeated_list_keys)
{
	struct mx_config cfg;
	struct mx_error err;
	const struct mx_acct_cfg *a;

	write_conf("[account a]\nfolders = INBOX\nfolders = Sent, Drafts\n"
		   "[webhook w]\nurl = https://h.example/x\nsecret = k\n"
		   "events = message.new\n"
		   "events = account.state,,message.deleted\n");
	ck_assert_int_eq(mx_config_load(path, &cfg, &err), MX_OK);
	a = mx_config_account(&cfg, "a");
	ck_assert_ptr_nonnull(a);
	ck_assert_uint_eq(a->nfolders, 2);
	ck_assert_str_eq(a->folders[0], "Sent");
	ck_assert_str_eq(a->folders[1], "Drafts");
	ck_assert_ptr_null(a->folders[2]);
	ck_assert_uint_eq(cfg.nwebhooks, 1);
	ck_assert_uint_eq(cfg.webhooks[0].ntypes, 2);
	ck_assert_str_eq(cfg.webhooks[0].types[0], "account.state");
	ck_assert_str_eq(cfg.webhooks[0].types[1], "message.deleted");
	mx_config_free(&cfg);
	ck_assert_uint_eq(cfg.naccts, 0);
	/* The same after a later error: everything is freed once. */
	write_conf("[account a]\nfolders = INBOX\nfolders = Sent\n"
		   "bogus = 1\n");
	ck_assert_int_eq(mx_config_load(path, &cfg, &err), MX_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(err.detail, ":4: bad [account] "
					       "setting 'bogus'"));
	remove_conf();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("daemon_config");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, repeated_list_keys);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
