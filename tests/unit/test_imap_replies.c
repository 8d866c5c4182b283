/*
 * Unit tests of the IMAP backend (src/backends/imap.c) against canned
 * server replies: the transport is the in-memory one of the fuzz targets
 * (tests/fuzz/fake_net.c, linked instead of src/lib/net/tls.c), so a
 * test is a transcript of what the server says.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "fake_net.h"

/* Option byte of fake_net.h: one line per read. */
#define LINES "\x70"

#define LOGIN                                                               \
	"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN IDLE] ready\r\n"     \
	"* CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN IDLE\r\n1 OK done\r\n"   \
	"2 OK Logged in\r\n"                                                \
	"* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n3 OK done\r\n"
#define SELECT                                                              \
	"* 2 EXISTS\r\n* OK [UIDVALIDITY 5] ok\r\n* OK [UIDNEXT 9] ok\r\n"  \
	"4 OK [READ-WRITE] Select completed.\r\n"

static int count_cb(const struct mx_fetched *m, void *ctx,
		    struct mx_error *err)
{
	(void)m;
	(void)err;
	++*(int *)ctx;
	return MX_OK;
}

static struct mx_conn *connect_to(const char *transcript)
{
	struct mx_account a = {0};
	struct mx_conn *c = NULL;
	struct mx_error err;

	mx_fuzz_net_feed((const uint8_t *)transcript, strlen(transcript));
	a.name = "t";
	a.host = "imap.example.test";
	a.port = 993;
	a.tls = MX_TLS_IMPLICIT;
	a.user = "u@example.test";
	a.password = "pw";
	a.timeout_s = 5;
	ck_assert_int_eq(mx_backend_imap.connect(&a, &c, &err), MX_OK);
	return c;
}

/* A UID FETCH answered NO: libetpan frees its result list but leaves the
 * pointer set; freeing it again crashed mxsync (found by
 * tests/fuzz/fuzz_imap).  The refusal is an error and the session goes
 * on. */
START_TEST(fetch_refused)
{
	static const char t[] = LINES LOGIN SELECT
		"5 NO [UNAVAILABLE] Temporary System Error\r\n"
		"* 1 FETCH (UID 7 FLAGS (\\Seen))\r\n6 OK Fetch completed.\r\n"
		"7 BAD Could not parse command\r\n";
	const struct mx_uid_range all = {1, UINT32_MAX};
	struct mx_select_result sel = {0};
	struct mx_conn *c = connect_to(t);
	struct mx_error err;
	int n = 0;

	ck_assert_int_eq(mx_backend_imap.select(c, "INBOX", 0, 0, &sel, &err),
			 MX_OK);
	ck_assert_uint_eq(sel.uidvalidity, 5);
	ck_assert_int_eq(mx_backend_imap.fetch(c, &all, 1, MX_FETCH_FULL, 0,
					       count_cb, &n, &err),
			 MX_ERR_SERVER);
	ck_assert_ptr_nonnull(strstr(err.detail, "Temporary System Error"));
	ck_assert_int_eq(mx_backend_imap.fetch(c, &all, 1, MX_FETCH_FLAGS, 0,
					       count_cb, &n, &err),
			 MX_OK);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(mx_backend_imap.fetch(c, &all, 1, MX_FETCH_SIZES, 0,
					       count_cb, &n, &err),
			 MX_ERR_SERVER);
	ck_assert_ptr_nonnull(strstr(err.detail, "Could not parse command"));
	mx_select_result_free(&sel);
	mx_backend_imap.disconnect(&c);
}
END_TEST

/* CAPABILITY answered OK without a "* CAPABILITY" line: libetpan copied
 * a capability list that did not exist (SIGSEGV, found by
 * tests/fuzz/fuzz_imap).  The server then has no capabilities, also none
 * it announced before: LOGIN, no IDLE. */
START_TEST(capability_without_list)
{
	static const char *const t[] = {
		LINES "* OK ready\r\n1 OK Capability completed.\r\n"
		"2 OK LOGIN completed.\r\n3 OK Capability completed.\r\n",
		LINES "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN IDLE] ready\r\n"
		"1 OK Capability completed.\r\n"
		"2 OK LOGIN completed.\r\n"
		"3 OK Capability completed.\r\n"};

	for (size_t i = 0; i < MX_ARRAY_SIZE(t); i++) {
		struct mx_conn *c = connect_to(t[i]);

		ck_assert_uint_eq(mx_backend_imap.server_caps(c) &
				  (MX_CAP_IDLE | MX_CAP_CONDSTORE |
				   MX_CAP_QRESYNC), 0);
		mx_backend_imap.disconnect(&c);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("imap_replies");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_test(tc, fetch_refused);
	tcase_add_test(tc, capability_without_list);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
