/*
 * Unit tests: the daemon's configuration file (src/daemon/config.c):
 * what it refuses and how the error names it -- a directory as the file,
 * a section given twice, webhook URLs that are not https:// or loopback
 * http://, unknown event types -- and that a good file still loads.
 * mxsyncd's refusal at start and on SIGHUP is tested end to end by
 * tests/integ/t-config.sh.
 *
 * Each test writes its file into its own mkdtemp() directory.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

static char g_dir[64];
static char g_path[128];

static void setup(void)
{
	strcpy(g_dir, "/tmp/mx-test-config.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
	snprintf(g_path, sizeof(g_path), "%s/mxsync.conf", g_dir);
}

static void teardown(void)
{
	unlink(g_path);
	rmdir(g_dir);
}

/* Writes TEXT to the config file. */
static void write_conf(const char *text)
{
	FILE *fp = fopen(g_path, "w");

	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
}

/* Writes TEXT to the config file and loads it; returns the error code,
 * the detail in ERR. */
static int load(const char *text, struct mx_config *cfg, struct mx_error *err)
{
	int rc;

	write_conf(text);
	mx_error_clear(err);
	rc = mx_config_load(g_path, cfg, err);
	if (rc == MX_OK)
		mx_config_free(cfg);
	return rc;
}

#define REFUSED(text, want)                                                \
	do {                                                               \
		struct mx_config c_;                                       \
		struct mx_error e_;                                        \
		ck_assert_int_eq(load(text, &c_, &e_), MX_ERR_CONFIG);     \
		ck_assert_msg(strstr(e_.detail, want) != NULL,             \
			      "detail \"%s\" lacks \"%s\"", e_.detail, want); \
	} while (0)

START_TEST(test_good_file_loads)
{
	struct mx_config c;
	struct mx_error e;

	ck_assert_int_eq(load("[account a]\nfolders = INBOX\n"
			      "[account b]\nenabled = no\n"
			      "[webhook w]\nurl = https://example.com/h\n"
			      "secret = s\nevents = message.new, account.state,"
			      " message.sent\n"
			      "[webhook local]\nurl = http://127.0.0.1:9/h\n"
			      "secret = s\n", &c, &e), MX_OK);
}
END_TEST

/* API mode's poll interval: a [daemon] default of 30 s, set globally and
 * per account, range-checked. */
START_TEST(test_api_poll_interval)
{
	struct mx_config c;
	struct mx_error e;
	FILE *fp;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_config_load(g_path, &c, &e), MX_OK);
	ck_assert_int_eq(c.api_poll_interval_s, 30);
	mx_config_free(&c);
	fp = fopen(g_path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs("[daemon]\napi_poll_interval = 45\n"
	      "[account g]\napi_poll_interval = 2\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(mx_config_load(g_path, &c, &e), MX_OK);
	ck_assert_int_eq(c.api_poll_interval_s, 45);
	ck_assert_int_eq(mx_config_account(&c, "g")->api_poll_interval_s, 2);
	mx_config_free(&c);
	REFUSED("[daemon]\napi_poll_interval = 0\n", "api_poll_interval");
	REFUSED("[account g]\napi_poll_interval = x\n", "api_poll_interval");
}
END_TEST

/* [api]: no section, no listener; the section alone listens on the
 * default address with the default limits; each key range-checked. */
START_TEST(test_api_section)
{
	struct mx_config c;
	struct mx_error e;

	write_conf("[daemon]\nworkers = 2\n");
	ck_assert_int_eq(mx_config_load(g_path, &c, &e), MX_OK);
	ck_assert(!c.api_enabled);
	mx_config_free(&c);
	write_conf("[api]\n");
	ck_assert_int_eq(mx_config_load(g_path, &c, &e), MX_OK);
	ck_assert(c.api_enabled);
	ck_assert_str_eq(c.api.listen, "127.0.0.1:7780");
	ck_assert_uint_eq(c.api.max_body, 64u << 20);
	ck_assert_uint_eq(c.api.max_connections, 1000);
	ck_assert_uint_eq(c.api.timeout_s, 30);
	ck_assert_uint_eq(c.api.rate_limit, 100);
	ck_assert_ptr_null(c.api.tls_cert);
	mx_config_free(&c);
	write_conf("[api]\nlisten = unix:/run/mx/api.sock\nmax_body = 2048\n"
		   "max_connections = 5\ntimeout = 7\nrate_limit = 0\n"
		   "tls_cert = /c.pem\ntls_key = /k.pem\n");
	ck_assert_int_eq(mx_config_load(g_path, &c, &e), MX_OK);
	ck_assert_str_eq(c.api.listen, "unix:/run/mx/api.sock");
	ck_assert_uint_eq(c.api.max_body, 2048);
	ck_assert_uint_eq(c.api.max_connections, 5);
	ck_assert_uint_eq(c.api.timeout_s, 7);
	ck_assert_uint_eq(c.api.rate_limit, 0);
	ck_assert_str_eq(c.api.tls_key, "/k.pem");
	mx_config_free(&c);
	write_conf("[api]\nlisten = [::1]:0\n");
	ck_assert_int_eq(mx_config_load(g_path, &c, &e), MX_OK);
	ck_assert_str_eq(c.api.listen, "[::1]:0");
	mx_config_free(&c);
	REFUSED("[api]\nlisten = 127.0.0.1\n", "bad [api] setting 'listen");
	REFUSED("[api]\nlisten = 127.0.0.1:99999\n", "listen");
	REFUSED("[api]\nlisten = unix:relative.sock\n", "listen");
	REFUSED("[api]\nmax_body = -1\n", "max_body");
	REFUSED("[api]\nmax_connections = 0\n", "max_connections");
	REFUSED("[api]\ntimeout = 0\n", "timeout");
	REFUSED("[api]\nport = 80\n", "bad [api] setting 'port");
	REFUSED("[api]\ntls_cert = /c.pem\n", "tls_cert and tls_key go together");
	REFUSED("[api x]\n", "unknown section [api x]");
}
END_TEST

/* [api] public_url and oauth_return (the browser OAuth flow): http(s)
 * URLs only, without user info, query, fragment or spaces; oauth_return
 * a list of origins. */
START_TEST(test_api_oauth_keys)
{
	struct mx_config c;
	struct mx_error e;

	write_conf("[api]\n");
	ck_assert_int_eq(mx_config_load(g_path, &c, &e), MX_OK);
	ck_assert_ptr_null(c.api.public_url);
	ck_assert_ptr_null(c.api.oauth_return);
	mx_config_free(&c);
	write_conf("[api]\npublic_url = https://mx.example:8443/mxsync/\n"
		   "oauth_return = https://crm.example  http://127.0.0.1:3000/\n");
	ck_assert_msg(mx_config_load(g_path, &c, &e) == MX_OK, "%s", e.detail);
	ck_assert_str_eq(c.api.public_url, "https://mx.example:8443/mxsync/");
	ck_assert_str_eq(c.api.oauth_return,
			 "https://crm.example  http://127.0.0.1:3000/");
	mx_config_free(&c);
	REFUSED("[api]\npublic_url = mx.example\n", "public_url");
	REFUSED("[api]\npublic_url = ftp://mx.example\n", "public_url");
	REFUSED("[api]\npublic_url = https://u@mx.example\n", "public_url");
	REFUSED("[api]\npublic_url = https://mx.example/?x=1\n", "public_url");
	REFUSED("[api]\npublic_url = https://\n", "public_url");
	REFUSED("[api]\noauth_return = https://crm.example/path\n",
		"oauth_return");
	REFUSED("[api]\noauth_return = crm.example\n", "oauth_return");
	REFUSED("[api]\noauth_return =\n", "oauth_return");
}
END_TEST

START_TEST(test_directory_refused)
{
	struct mx_config c;
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_config_load(g_dir, &c, &e), MX_ERR_CONFIG);
	ck_assert_msg(strstr(e.detail, g_dir) &&
		      strstr(e.detail, "not a regular file") &&
		      strstr(e.detail, "directory"), "%s", e.detail);
	/* A missing file still means the defaults. */
	ck_assert_int_eq(mx_config_load(g_path, &c, &e), MX_OK);
	ck_assert_int_eq(c.workers, 4);
	mx_config_free(&c);
}
END_TEST

START_TEST(test_duplicate_account_refused)
{
	REFUSED("[account a]\nfolders = INBOX\n\n[account b]\n[account a]\n"
		"enabled = no\n", "account a defined twice (lines 1 and 5)");
	REFUSED("[webhook w]\nurl = https://x.test/\nsecret = s\n"
		"[webhook w]\n", "webhook w defined twice (lines 1 and 4)");
}
END_TEST

START_TEST(test_webhook_url_refused)
{
	REFUSED("[webhook w]\nurl = file:///etc/passwd\nsecret = s\n",
		":1: webhook w: URL scheme must be https:// (or http:// to a "
		"loopback address), not file://");
	REFUSED("[daemon]\nworkers = 2\n[webhook w]\n"
		"url = http://example.com/h\nsecret = s\n",
		":3: webhook w: refusing plain http:// to example.com");
	REFUSED("[webhook w]\nurl = not a url\nsecret = s\n",
		"webhook w: malformed URL");
}
END_TEST

START_TEST(test_webhook_url_message_once)
{
	struct mx_config c;
	struct mx_error e;
	const char *p;

	ck_assert_int_eq(load("[webhook w]\nurl = ftp://x.test/\nsecret = s\n",
			      &c, &e), MX_ERR_CONFIG);
	/* One "webhook w:" prefix, not two. */
	p = strstr(e.detail, "webhook w:");
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_null(strstr(p + 1, "webhook w:"));
}
END_TEST

START_TEST(test_unknown_event_type_refused)
{
	REFUSED("[webhook w]\nurl = https://x.test/\nsecret = s\n"
		"events = message.new, mesage.updated\n",
		"webhook w: unknown event type \"mesage.updated\" (valid: "
		"message.new, message.updated, ");
	REFUSED("[webhook w]\nurl = https://x.test/\nsecret = s\n"
		"events = *\n", "unknown event type \"*\"");
}
END_TEST

/* A list key given twice in a section: the last one wins and the earlier
 * list is freed (found by tests/fuzz/fuzz_config: LeakSanitizer); after a
 * later error everything is freed once. */
START_TEST(test_repeated_list_keys)
{
	struct mx_config cfg;
	struct mx_error err;
	const struct mx_acct_cfg *a;
	FILE *fp = fopen(g_path, "w");

	ck_assert_ptr_nonnull(fp);
	fputs("[account a]\nfolders = INBOX\nfolders = Sent, Drafts\n"
	      "[webhook w]\nurl = https://h.example/x\nsecret = k\n"
	      "events = message.new\n"
	      "events = account.state,,message.deleted\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(mx_config_load(g_path, &cfg, &err), MX_OK);
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
	REFUSED("[account a]\nfolders = INBOX\nfolders = Sent\nbogus = 1\n",
		":4: bad [account] setting 'bogus'");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("load");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_good_file_loads);
	tcase_add_test(tc, test_directory_refused);
	tcase_add_test(tc, test_api_poll_interval);
	tcase_add_test(tc, test_api_section);
	tcase_add_test(tc, test_api_oauth_keys);
	tcase_add_test(tc, test_duplicate_account_refused);
	tcase_add_test(tc, test_webhook_url_refused);
	tcase_add_test(tc, test_webhook_url_message_once);
	tcase_add_test(tc, test_unknown_event_type_refused);
	tcase_add_test(tc, test_repeated_list_keys);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
