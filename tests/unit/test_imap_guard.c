/*
 * Unit tests of the IMAP lexical guard (src/backends/imap_guard.c): each
 * bound at its limit and one past it, fed whole and one byte at a time,
 * and the lexical cases that must not count (parentheses and braces in
 * quoted strings and literals, streamed literals).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/imap_guard.h"

/* Feeds S whole, then (fresh guard) one byte at a time; both must agree. */
static int feed_both(const char *s, size_t n, struct mx_error *err)
{
	struct mx_imap_guard g1, g2;
	struct mx_error e2;
	int rc1, rc2 = MX_OK;

	mx_imap_guard_init(&g1);
	mx_imap_guard_init(&g2);
	rc1 = mx_imap_guard_feed(&g1, s, n, err);
	for (size_t i = 0; i < n && rc2 == MX_OK; i++)
		rc2 = mx_imap_guard_feed(&g2, s + i, 1, &e2);
	ck_assert_int_eq(rc1, rc2);
	if (rc1 != MX_OK)
		ck_assert_str_eq(err->detail, e2.detail);
	return rc1;
}

static int feed_str(const char *s, struct mx_error *err)
{
	return feed_both(s, strlen(s), err);
}

/* "* 1 FETCH (BODYSTRUCTURE " + N "(" + N ")" + ")\r\n" */
static char *nested(unsigned n)
{
	const char *head = "* 1 FETCH (BODYSTRUCTURE ";
	size_t hl = strlen(head);
	char *s = malloc(hl + 2 * n + 4);

	memcpy(s, head, hl);
	memset(s + hl, '(', n);
	memset(s + hl + n, ')', n);
	strcpy(s + hl + 2 * n, ")\r\n");
	return s;
}

START_TEST(normal_session)
{
	static const char s[] =
		"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n"
		"a1 OK done\r\n"
		"* LIST (\\HasNoChildren) \"/\" \"a (b {5}\\\" c\"\r\n"
		"* LIST (\\HasNoChildren) \"/\" {8}\r\n((({9}\r\n\r\n"
		"a2 OK LIST completed\r\n"
		"* 1 FETCH (UID 1 BODY[] {12}\r\n)))\r\n{999}\r\n FLAGS (\\Seen))\r\n"
		"a3 OK FETCH completed\r\n";
	struct mx_error err;

	ck_assert_int_eq(feed_str(s, &err), MX_OK);
}
END_TEST

START_TEST(nesting)
{
	struct mx_error err;
	char *s;

	s = nested(MX_IMAP_GUARD_MAX_DEPTH - 1); /* + FETCH's own list */
	ck_assert_int_eq(feed_str(s, &err), MX_OK);
	free(s);
	s = nested(MX_IMAP_GUARD_MAX_DEPTH);
	ck_assert_int_eq(feed_str(s, &err), MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail,
			 "server response nested deeper than 256 levels");
	free(s);
	s = nested(30000);
	ck_assert_int_eq(feed_str(s, &err), MX_ERR_PROTOCOL);
	free(s);
	/* Depth is per response: many shallow lists in a row are fine. */
	{
		struct mx_imap_guard g;

		mx_imap_guard_init(&g);
		for (int i = 0; i < 1000; i++)
			ck_assert_int_eq(mx_imap_guard_feed(&g,
				"* 1 FETCH (FLAGS (\\Seen))\r\n", 27, &err),
				MX_OK);
	}
}
END_TEST

START_TEST(literal_sizes)
{
	static const struct {
		const char *s;
		int rc;
		const char *detail;
	} t[] = {
		{"* 1 FETCH (BODY[] {268435456}\r\n", MX_OK, NULL},
		{"* 1 FETCH (BODY[] {268435457}\r\n", MX_ERR_PROTOCOL,
		 "server announced a literal of 268435457 bytes (limit 256 MiB)"},
		/* libetpan reads the size into 32 bits: this would be 1. */
		{"* 1 FETCH (BODY[] {4294967297}\r\n", MX_ERR_PROTOCOL,
		 "server announced a literal of 4294967297 bytes (limit 256 MiB)"},
		{"* 1 FETCH (BODY[] {999999999999}\r\n", MX_ERR_PROTOCOL,
		 "server announced a literal of 999999999999 bytes (limit 256 MiB)"},
		{"* 1 FETCH (BODY[] {99999999999999999999999}\r\n", MX_ERR_PROTOCOL,
		 "server announced a literal of more than 18446744073709551615 "
		 "bytes (limit 256 MiB)"},
		{"* 1 FETCH (BODY[] {999999999999+}\r\n", MX_ERR_PROTOCOL,
		 "server announced a literal of 999999999999 bytes (limit 256 MiB)"},
		{"* 1 FETCH (BODY[] {999999999999}\n", MX_ERR_PROTOCOL,
		 "server announced a literal of 999999999999 bytes (limit 256 MiB)"},
		/* Not literal announcements: not at the end of the line, or
		 * inside a quoted string. */
		{"* OK {999999999999} x\r\n", MX_OK, NULL},
		{"* OK \"{999999999999}\r\n", MX_OK, NULL},
		{"* OK {99x}\r\n", MX_OK, NULL},
	};
	struct mx_error err;

	for (size_t i = 0; i < MX_ARRAY_SIZE(t); i++) {
		int rc = feed_str(t[i].s, &err);

		ck_assert_msg(rc == t[i].rc, "%s: %d", t[i].s, rc);
		if (t[i].detail)
			ck_assert_str_eq(err.detail, t[i].detail);
	}
}
END_TEST

/* Feeds N bytes of untagged "* OK xxx...\r\n" lines of length L. */
static int flood(struct mx_imap_guard *g, uint64_t n, size_t l,
		 struct mx_error *err)
{
	char *line = malloc(l);
	int rc = MX_OK;

	memset(line, 'x', l);
	memcpy(line, "* OK ", 5);
	line[l - 2] = '\r';
	line[l - 1] = '\n';
	for (uint64_t done = 0; done < n && rc == MX_OK; done += l)
		rc = mx_imap_guard_feed(g, line, l, err);
	free(line);
	return rc;
}

START_TEST(untagged_text)
{
	struct mx_imap_guard g;
	struct mx_error err;

	/* 40 MiB, a tagged reply, 40 MiB: fine. */
	mx_imap_guard_init(&g);
	ck_assert_int_eq(flood(&g, 40 << 20, 4096, &err), MX_OK);
	ck_assert_int_eq(mx_imap_guard_feed(&g, "a1 OK done\r\n", 12, &err),
			 MX_OK);
	ck_assert_int_eq(flood(&g, 40 << 20, 4096, &err), MX_OK);
	/* Without a tagged reply the next 40 MiB cross the limit. */
	ck_assert_int_eq(flood(&g, 40 << 20, 4096, &err), MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail, "server sent more than 64 MiB of "
				     "responses without completing the command");
	/* And the guard stays failed. */
	ck_assert_int_eq(mx_imap_guard_feed(&g, "a2 OK\r\n", 7, &err),
			 MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail, "server sent more than 64 MiB of "
				     "responses without completing the command");
}
END_TEST

START_TEST(long_line)
{
	struct mx_imap_guard g;
	struct mx_error err;
	char *chunk = malloc(1 << 20);
	int rc = MX_OK;

	memset(chunk, 'x', 1 << 20);
	mx_imap_guard_init(&g);
	ck_assert_int_eq(mx_imap_guard_feed(&g, "* OK ", 5, &err), MX_OK);
	for (int i = 0; i < 31 && rc == MX_OK; i++)
		rc = mx_imap_guard_feed(&g, chunk, 1 << 20, &err);
	ck_assert_int_eq(rc, MX_OK);
	/* Literals continue the line but do not count as its text. */
	ck_assert_int_eq(mx_imap_guard_feed(&g, "{3000000}\r\n", 11, &err),
			 MX_OK);
	for (int i = 0; i < 2 && rc == MX_OK; i++)
		rc = mx_imap_guard_feed(&g, chunk, 1500000, &err);
	ck_assert_int_eq(rc, MX_OK);
	for (int i = 0; i < 2 && rc == MX_OK; i++)
		rc = mx_imap_guard_feed(&g, chunk, 1 << 20, &err);
	ck_assert_int_eq(rc, MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail, "server response line longer than 32 MiB");
	free(chunk);
}
END_TEST

START_TEST(response_count)
{
	struct mx_imap_guard g;
	struct mx_error err;
	int rc = MX_OK;
	unsigned i;

	mx_imap_guard_init(&g);
	for (i = 0; i < MX_IMAP_GUARD_MAX_RESPONSES && rc == MX_OK; i++)
		rc = mx_imap_guard_feed(&g, "* 1 EXISTS\r\n", 12, &err);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_int_eq(mx_imap_guard_feed(&g, "* 2 EXISTS\r\n", 12, &err),
			 MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail, "server sent more than 250000 untagged "
				     "responses without completing the command");
	/* A tagged reply in between resets the count. */
	mx_imap_guard_init(&g);
	for (i = 0; i < 2 * MX_IMAP_GUARD_MAX_RESPONSES && rc == MX_OK; i++) {
		rc = mx_imap_guard_feed(&g, "* 1 EXISTS\r\n", 12, &err);
		if (i == MX_IMAP_GUARD_MAX_RESPONSES - 1 && rc == MX_OK)
			rc = mx_imap_guard_feed(&g, "a1 OK\r\n", 7, &err);
	}
	ck_assert_int_eq(rc, MX_OK);
	/* FETCH responses of a streamed FETCH are not kept: not counted. */
	mx_imap_guard_init(&g);
	mx_imap_guard_stream_literals(&g, true);
	for (i = 0; i < 2 * MX_IMAP_GUARD_MAX_RESPONSES && rc == MX_OK; i++)
		rc = mx_imap_guard_feed(&g, "* 12 fetch (FLAGS ())\r\n", 23,
					&err);
	ck_assert_int_eq(rc, MX_OK);
	/* Other responses are, and so are FETCH responses otherwise. */
	ck_assert_int_eq(flood(&g, 12 * (MX_IMAP_GUARD_MAX_RESPONSES + 1), 12,
			       &err), MX_ERR_PROTOCOL);
	mx_imap_guard_init(&g);
	for (i = 0; i < MX_IMAP_GUARD_MAX_RESPONSES + 1 && rc == MX_OK; i++)
		rc = mx_imap_guard_feed(&g, "* 12 FETCH (FLAGS ())\r\n", 23,
					&err);
	ck_assert_int_eq(rc, MX_ERR_PROTOCOL);
}
END_TEST

START_TEST(literals_kept_or_streamed)
{
	static const char head[] = "* 1 FETCH (UID 1 BODY[] {104857600}\r\n";
	struct mx_imap_guard g;
	struct mx_error err;
	char *chunk = malloc(1 << 20);
	int rc = MX_OK;

	memset(chunk, 'y', 1 << 20);
	/* Streamed by the FETCH body handler: not held, not counted. */
	mx_imap_guard_init(&g);
	mx_imap_guard_stream_literals(&g, true);
	ck_assert_int_eq(mx_imap_guard_feed(&g, head, strlen(head), &err), MX_OK);
	for (int i = 0; i < 100 && rc == MX_OK; i++)
		rc = mx_imap_guard_feed(&g, chunk, 1 << 20, &err);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_int_eq(mx_imap_guard_feed(&g, ")\r\na1 OK\r\n", 10, &err),
			 MX_OK);
	/* Kept by the parser: counted. */
	mx_imap_guard_init(&g);
	ck_assert_int_eq(mx_imap_guard_feed(&g, head, strlen(head), &err), MX_OK);
	for (int i = 0; i < 100 && rc == MX_OK; i++)
		rc = mx_imap_guard_feed(&g, chunk, 1 << 20, &err);
	ck_assert_int_eq(rc, MX_ERR_PROTOCOL);
	free(chunk);
}
END_TEST

/* Feeds a greeting, then LINE (as feed_str). */
static int feed_greeted(const char *line, struct mx_error *err)
{
	char buf[512];

	ck_assert_int_lt(snprintf(buf, sizeof(buf), "* OK ready\r\n%s", line),
			 (int)sizeof(buf));
	return feed_str(buf, err);
}

/*
 * Status lines with a PERMANENTFLAGS response code.  Each "crashes" line,
 * played to libetpan 1.9.4 as the reply to a NOOP, killed it with SIGSEGV
 * (a NULL list freed, fixed upstream in 266d59f); each "safe" line parsed.
 * The guard must refuse the first and pass the second.
 */
static const char *const permflags_crashes[] = {
	"* OK [PERMANENTFLAGS (\r\n",
	"* OK [PERMANENTFLAGS (%)] x\r\n",
	"* OK [PERMANENTFLAGS (*)] x\r\n",
	"* OK [PERMANENTFLAGS (\\)] x\r\n",
	"* OK [PERMANENTFLAGS (\\ )] x\r\n",
	"* OK [PERMANENTFLAGS (\\%)] x\r\n",
	"* OK [PERMANENTFLAGS (\\\\)] x\r\n",
	"* OK [PERMANENTFLAGS (\x01)] x\r\n",
	"* OK [PERMANENTFLAGS (\"a)] x\r\n",
	"* OK [PERMANENTFLAGS ( %)] x\r\n",
	"* OK [PERMANENTFLAGS (\t%)] x\r\n",
	"* OK [PERMANENTFLAGS ( \\%)] x\r\n",
	"* OK [PERMANENTFLAGS  (%)] x\r\n",
	"* OK [PERMANENTFLAGS\t(%)] x\r\n",
	"* OK [ PERMANENTFLAGS (%)] x\r\n",
	"* OK  [PERMANENTFLAGS (%)] x\r\n",
	"* OK\t[PERMANENTFLAGS (%)] x\r\n",
	"*  OK [PERMANENTFLAGS (%)] x\r\n",
	"*\tOK [PERMANENTFLAGS (%)] x\r\n",
	" * OK [PERMANENTFLAGS (%)] x\r\n",
	"* ok [permanentflags (%)] x\r\n",
	"* NO [PERMANENTFLAGS (%)] x\r\n",
	"* BAD [PERMANENTFLAGS (%)] x\r\n",
	"* BYE [PERMANENTFLAGS (%)] x\r\n",
	"1 OK [PERMANENTFLAGS (%)] x\r\n",
	"1 OK  [PERMANENTFLAGS (%)] x\r\n",
	"1  OK [PERMANENTFLAGS (%)] x\r\n",
	"abcdefghijklmnopqrstuvwxyzabcdefghijklmn OK [PERMANENTFLAGS (%)] x\r\n",
	"+ [PERMANENTFLAGS (%)] x\r\n",
	"+  [PERMANENTFLAGS (%)] x\r\n",
	"+[PERMANENTFLAGS (%)] x\r\n",
};

static const char *const permflags_safe[] = {
	"* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft "
	"$Forwarded \\*)] Flags permitted.\r\n",
	"* OK [PERMANENTFLAGS ()] x\r\n",
	"* OK [PERMANENTFLAGS ( )] x\r\n",
	"* OK [PERMANENTFLAGS (  )] x\r\n",
	"* OK [PERMANENTFLAGS (\t)] x\r\n",
	"* OK [PERMANENTFLAGS ()\r\n",
	"* OK [PERMANENTFLAGS ( \\Seen)] x\r\n",
	"* OK [PERMANENTFLAGS (  \\Seen)] x\r\n",
	"* OK [PERMANENTFLAGS (\\*)] x\r\n",
	"* OK [PERMANENTFLAGS (\\* %)] x\r\n",
	"* OK [PERMANENTFLAGS (\\Seen %)] x\r\n",
	"* OK [PERMANENTFLAGS (/)] x\r\n",
	"* OK [PERMANENTFLAGS (]%)] x\r\n",
	"* OK [PERMANENTFLAGS (a%)] x\r\n",
	"* OK [PERMANENTFLAGS (\x7f)] x\r\n",
	"* OK [PERMANENTFLAGS (\xff)] x\r\n",
	"* OK [PERMANENTFLAGS (\\\xff)] x\r\n",
	"* OK [PERMANENTFLAGS (\\a\r\n",
	"* OK [PERMANENTFLAGS\r\n",
	"* OK [PERMANENTFLAGS(%)] x\r\n",
	"* OK[PERMANENTFLAGS (%)] x\r\n",
	"*OK [PERMANENTFLAGS (%)] x\r\n",
	"* 1 OK [PERMANENTFLAGS (%)] x\r\n",
	/* not status responses: no response code there */
	"* FLAGS (%)\r\n",
	"* OK PERMANENTFLAGS (%)\r\n",
	"* LIST () \"/\" \"OK [PERMANENTFLAGS (%\"\r\n",
	/* inside a literal, the same bytes are message data */
	"* 1 FETCH (BODY[] {29}\r\n* OK [PERMANENTFLAGS (%)] x\r\n)\r\n",
};

START_TEST(permanentflags)
{
	struct mx_error err;

	for (size_t i = 0; i < sizeof(permflags_crashes) /
			   sizeof(*permflags_crashes); i++) {
		if (feed_greeted(permflags_crashes[i], &err) != MX_ERR_PROTOCOL)
			ck_abort_msg("passed: %s", permflags_crashes[i]);
		ck_assert_ptr_nonnull(strstr(err.detail, "PERMANENTFLAGS"));
	}
	for (size_t i = 0; i < sizeof(permflags_safe) / sizeof(*permflags_safe);
	     i++)
		if (feed_greeted(permflags_safe[i], &err) != MX_OK)
			ck_abort_msg("refused: %s: %s", permflags_safe[i],
				     err.detail);
	/* The messages name what the server sent. */
	ck_assert_int_eq(feed_greeted("* OK [PERMANENTFLAGS (%)] x\r\n", &err),
			 MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail, "server sent a PERMANENTFLAGS list whose "
			 "first flag is malformed (it starts with '%')");
	ck_assert_int_eq(feed_greeted("* OK [PERMANENTFLAGS (\r\n", &err),
			 MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail, "server sent a PERMANENTFLAGS list whose "
			 "first flag is malformed (it starts with byte 0x0d)");
	ck_assert_int_eq(feed_greeted("a2 OK [PERMANENTFLAGS (\\ )] x\r\n", &err),
			 MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail, "server sent a PERMANENTFLAGS list whose "
			 "first flag is malformed (it starts with '\\' and "
			 "byte 0x20)");
	/* Refused although libetpan gets through it: flags are atoms. */
	ck_assert_int_eq(feed_greeted("* OK [PERMANENTFLAGS (\"a\")] x\r\n", &err),
			 MX_ERR_PROTOCOL);
	/* The matcher starts again on every line, also after a literal. */
	ck_assert_int_eq(feed_greeted("* OK [PERMANENTFLAGS ()] x\r\n"
				  "* 1 FETCH (BODY[] {2}\r\nab)\r\n"
				  "* OK [PERMANENTFLAGS (%)] x\r\n", &err),
			 MX_ERR_PROTOCOL);
}
END_TEST

/*
 * The same for CAPABILITY: each "crashes" line, played to libetpan 1.9.4
 * as part of the reply to CAPABILITY (after an empty list was set, as
 * imap.c does), killed it in mailimap_capability() (a NULL list copied);
 * each "safe" line did not.
 */
static const char *const cap_crashes[] = {
	"* CAPABILITY\r\n",
	"* CAPABILITY\n",
	"* CAPABILITY \r\n",
	"* capability\t\r\n",
	"*  CAPABILITY\r\n",
	" * CAPABILITY\r\n",
	"* OK [CAPABILITY] x\r\n",
	"* OK [CAPABILITY ] x\r\n",
	"* OK [ capability] x\r\n",
	"1 OK [CAPABILITY] done\r\n",
};

static const char *const cap_safe[] = {
	"* CAPABILITY IMAP4rev1 IDLE AUTH=PLAIN\r\n",
	"* CAPABILITY  IMAP4rev1\r\n",
	"* CAPABILITY AUTH=\r\n",
	"* CAPABILITYX\r\n",
	"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n",
	"* OK [CAPABILITY AUTH=] x\r\n",
	"* OK [CAPABILITYX] x\r\n",
	"* OK CAPABILITY\r\n",
	"1 CAPABILITY\r\n",
};

START_TEST(capability_without_list)
{
	struct mx_error err;

	for (size_t i = 0; i < sizeof(cap_crashes) / sizeof(*cap_crashes);
	     i++) {
		if (feed_greeted(cap_crashes[i], &err) != MX_ERR_PROTOCOL)
			ck_abort_msg("passed: %s", cap_crashes[i]);
		ck_assert_ptr_nonnull(strstr(err.detail, "CAPABILITY"));
	}
	for (size_t i = 0; i < sizeof(cap_safe) / sizeof(*cap_safe); i++)
		if (feed_greeted(cap_safe[i], &err) != MX_OK)
			ck_abort_msg("refused: %s: %s", cap_safe[i],
				     err.detail);
	ck_assert_int_eq(feed_greeted("* CAPABILITY\r\n", &err), MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail, "server sent a CAPABILITY response "
			 "without a capability (byte 0x0d)");
	ck_assert_int_eq(feed_greeted("* OK [CAPABILITY] x\r\n", &err),
			 MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail, "server sent a CAPABILITY response "
			 "without a capability (']')");
}
END_TEST

/*
 * In the greeting libetpan 1.9.4 has no parser context yet, and its string
 * parser dereferences it: any PERMANENTFLAGS or BADCHARSET list there
 * crashed it (each line below, played as a greeting to mailimap_connect()),
 * valid or not.  The same lines after the greeting are fine.
 */
START_TEST(greeting_lists)
{
	static const char *const crashes[] = {
		"* OK [PERMANENTFLAGS (\\*)] x\r\n",
		"* OK [PERMANENTFLAGS (\\Seen)] x\r\n",
		"* OK [PERMANENTFLAGS (\\A\"\r\n",
		"* PREAUTH [PERMANENTFLAGS (\\*)] x\r\n",
		"* BYE [PERMANENTFLAGS ()] x\r\n",
		"* OK [BADCHARSET (UTF-8)] x\r\n",
		"* OK [badcharset  (\"a\")] x\r\n",
	};
	static const char *const safe[] = {
		"* OK [PERMANENTFLAGS] x\r\n",
		"* OK [CAPABILITY IMAP4rev1] x\r\n",
		"* OK [BADCHARSET] x\r\n",
		"* OK [X-FOO bar] x\r\n",
	};
	struct mx_error err;

	for (size_t i = 0; i < sizeof(crashes) / sizeof(*crashes); i++) {
		if (feed_str(crashes[i], &err) != MX_ERR_PROTOCOL)
			ck_abort_msg("passed: %s", crashes[i]);
		ck_assert_ptr_nonnull(strstr(err.detail, "in its greeting"));
		if (i != 2 && feed_greeted(crashes[i], &err) != MX_OK)
			ck_abort_msg("refused after the greeting: %s: %s",
				     crashes[i], err.detail);
	}
	for (size_t i = 0; i < sizeof(safe) / sizeof(*safe); i++)
		if (feed_str(safe[i], &err) != MX_OK)
			ck_abort_msg("refused: %s: %s", safe[i], err.detail);
	ck_assert_int_eq(feed_str(crashes[5], &err), MX_ERR_PROTOCOL);
	ck_assert_str_eq(err.detail,
			 "server sent a BADCHARSET list in its greeting");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("imap_guard");
	TCase *tc = tcase_create("guard");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, normal_session);
	tcase_add_test(tc, nesting);
	tcase_add_test(tc, literal_sizes);
	tcase_add_test(tc, untagged_text);
	tcase_add_test(tc, long_line);
	tcase_add_test(tc, response_count);
	tcase_add_test(tc, literals_kept_or_streamed);
	tcase_add_test(tc, permanentflags);
	tcase_add_test(tc, capability_without_list);
	tcase_add_test(tc, greeting_lists);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
