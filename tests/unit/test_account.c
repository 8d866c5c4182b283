/*
 * Unit tests: account URL parsing (mx_account_parse_url), account names
 * and the account list JSON (src/lib/sync/account.c), through a real
 * store in a mkdtemp() directory.
 */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "account/account.h"
#include "auth/oauth.h"
#include "sync/sync.h"

struct url_case {
	const char *url;
	int rc;            /* expected return */
	const char *user;  /* expected on success */
	const char *host;
	unsigned port;
	enum mx_tls_mode tls;
};

/* Designated: the expectations of a rejected URL stay zero. */
#define BAD(u) {.url = (u), .rc = MX_ERR_PARSE}

static const struct url_case url_cases[] = {
	{"imaps://u@h", MX_OK, "u", "h", 993, MX_TLS_IMPLICIT},
	{"imaps://u@h/", MX_OK, "u", "h", 993, MX_TLS_IMPLICIT},
	{"imap://u@h", MX_OK, "u", "h", 143, MX_TLS_STARTTLS},
	{"imap://u@h:1143", MX_OK, "u", "h", 1143, MX_TLS_STARTTLS},
	{"imaps://u@imap.example.test:65535", MX_OK, "u", "imap.example.test",
	 65535, MX_TLS_IMPLICIT},
	{"imaps://u@h:1", MX_OK, "u", "h", 1, MX_TLS_IMPLICIT},
	{"imaps://alice@example.test@127.0.0.1:993", MX_OK,
	 "alice@example.test", "127.0.0.1", 993, MX_TLS_IMPLICIT},
	{"imaps://alice%40example.test@mail.example.test", MX_OK,
	 "alice@example.test", "mail.example.test", 993, MX_TLS_IMPLICIT},
	{"imaps://a%2fb%2Fc@h", MX_OK, "a/b/c", "h", 993, MX_TLS_IMPLICIT},
	{"imaps://100%25@h", MX_OK, "100%", "h", 993, MX_TLS_IMPLICIT},
	{"imaps://u@[::1]:993", MX_OK, "u", "::1", 993, MX_TLS_IMPLICIT},
	{"imaps://u@[::1]", MX_OK, "u", "::1", 993, MX_TLS_IMPLICIT},
	{"imap://u@[2001:db8::7]:10143", MX_OK, "u", "2001:db8::7", 10143,
	 MX_TLS_STARTTLS},
	{"imaps://u@my_host-1.example", MX_OK, "u", "my_host-1.example", 993,
	 MX_TLS_IMPLICIT},
	/* schemes */
	BAD("http://u@h"),
	{"pop3://u@h", MX_OK, "u", "h", 110, MX_TLS_STARTTLS},
	{"pop3s://u@h", MX_OK, "u", "h", 995, MX_TLS_IMPLICIT},
	{"pop3s://u@h:10995", MX_OK, "u", "h", 10995, MX_TLS_IMPLICIT},
	BAD("pops://u@h"),
	BAD("smtps://u@h"),
	BAD("imaps:/u@h"),
	BAD("imapsx://u@h"),
	BAD("u@h"),
	BAD(""),
	/* user and host */
	BAD("imaps://"),
	BAD("imaps://h"),
	BAD("imaps://h:993"),
	BAD("imaps://@h"),
	BAD("imaps://u@"),
	BAD("imaps://u@:993"),
	BAD("imaps://u@[]:993"),
	BAD("imaps://u@[::1"),
	BAD("imaps://u@[::1]x"),
	BAD("imaps://u@[::1]993"),
	BAD("imaps://u@ho st"),
	BAD("imaps://u@h\tx"),
	BAD("imaps://u@h!x"),
	BAD("imaps://u@h;x"),
	BAD("imaps://u@h%41"),
	BAD("imaps://u@h\xc3\xa9"),
	BAD("imaps://u@[::1%eth0]"),
	BAD("imaps://%00@h"),
	BAD("imaps://a%00b@h"),
	/* ports */
	BAD("imaps://u@h:0"),
	BAD("imaps://u@h:00"),
	BAD("imaps://u@h:65536"),
	BAD("imaps://u@h:70000"),
	BAD("imaps://u@h:99999999999999999999999"),
	BAD("imaps://u@h:x"),
	BAD("imaps://u@h:993x"),
	BAD("imaps://u@h:"),
	BAD("imaps://u@h:993:1"),
	BAD("imaps://u@[::1]:"),
	BAD("imaps://u@[::1]:0"),
	/* path, query, fragment */
	BAD("imaps://u@h/INBOX"),
	BAD("imaps://u@h:993/INBOX"),
	BAD("imaps://u@h//"),
	BAD("imaps://u@h?x=1"),
	BAD("imaps://u@h/?x=1"),
	BAD("imaps://u@h#frag"),
	BAD("imaps://u@h:993?"),
};

static void check_case(const struct url_case *c)
{
	struct mx_account a = {0};
	struct mx_error e;
	int rc;

	mx_error_clear(&e);
	rc = mx_account_parse_url(c->url, &a, &e);
	ck_assert_msg(rc == c->rc, "'%s': got %d (%s), want %d", c->url, rc,
		      e.detail, c->rc);
	if (rc == MX_OK) {
		ck_assert_msg(a.user && strcmp(a.user, c->user) == 0,
			      "'%s': user '%s'", c->url, a.user ? a.user : "");
		ck_assert_msg(a.host && strcmp(a.host, c->host) == 0,
			      "'%s': host '%s'", c->url, a.host ? a.host : "");
		ck_assert_msg(a.port == c->port, "'%s': port %u", c->url,
			      (unsigned)a.port);
		ck_assert_msg(a.tls == c->tls, "'%s': tls %d", c->url,
			      (int)a.tls);
	} else {
		ck_assert_msg(e.code == MX_ERR_PARSE && e.detail[0] != '\0',
			      "'%s': no error detail", c->url);
	}
	mx_account_free(&a);
}

START_TEST(test_url_table)
{
	check_case(&url_cases[_i]);
}
END_TEST

/* Reusing the struct: old user/host are replaced, not leaked (ASan). */
START_TEST(test_url_reuse)
{
	struct mx_account a = {0};
	struct mx_error e;

	ck_assert_int_eq(mx_account_parse_url("imaps://a@h1", &a, &e), MX_OK);
	ck_assert_int_eq(mx_account_parse_url("imap://b@h2:144", &a, &e),
			 MX_OK);
	ck_assert_str_eq(a.user, "b");
	ck_assert_str_eq(a.host, "h2");
	ck_assert_uint_eq(a.port, 144);
	ck_assert_int_eq(mx_account_parse_url("imaps://c@h 3", &a, &e),
			 MX_ERR_PARSE);
	mx_account_free(&a);
}
END_TEST

/*
 * strtoul() skips white space and accepts a sign, and a negative number
 * wraps: "-18446744073709550623" is 993.  A port is digits only.
 */
START_TEST(test_url_port_digits_only)
{
	static const char *const bad[] = {
		"imaps://u@h:+993",
		"imaps://u@h: 993",
		"imaps://u@h:-993",
		"imaps://u@h:-18446744073709550623",
	};
	struct mx_account a = {0};
	struct mx_error e;

	for (size_t i = 0; i < MX_ARRAY_SIZE(bad); i++) {
		int rc = mx_account_parse_url(bad[i], &a, &e);

		ck_assert_msg(rc == MX_ERR_PARSE, "'%s' accepted (port %u)",
			      bad[i], (unsigned)a.port);
		mx_account_free(&a);
	}
}
END_TEST

/*
 * The decoded user name goes to IMAP LOGIN as a quoted string; CR/LF (or
 * any control character) would end the command line there.
 */
START_TEST(test_url_user_control_chars)
{
	static const char *const bad[] = {
		"imaps://u%0D%0AA1%20LOGOUT@h",
		"imaps://u%0a@h",
		"imaps://u%09x@h",
		"imaps://u%7F@h",
	};
	struct mx_account a = {0};
	struct mx_error e;

	for (size_t i = 0; i < MX_ARRAY_SIZE(bad); i++) {
		int rc = mx_account_parse_url(bad[i], &a, &e);

		ck_assert_msg(rc == MX_ERR_PARSE, "'%s' accepted", bad[i]);
		mx_account_free(&a);
	}
}
END_TEST

/*
 * "imaps://alice:secret@h" (RFC 3986 userinfo with a password) is taken
 * as the user name "alice:secret", and the URL, password included, is
 * printed by the account list.  It must be refused.
 */
START_TEST(test_url_password_in_userinfo)
{
	struct mx_account a = {0};
	struct mx_error e;
	int rc;

	rc = mx_account_parse_url("imaps://alice:s3cret-PW@h", &a, &e);
	ck_assert_msg(rc == MX_ERR_PARSE, "accepted, user '%s'",
		      a.user ? a.user : "");
	mx_account_free(&a);
	/* An escaped colon is part of the user name. */
	ck_assert_int_eq(mx_account_parse_url("imaps://a%3Ab@h", &a, &e),
			 MX_OK);
	ck_assert_str_eq(a.user, "a:b");
	mx_account_free(&a);
}
END_TEST

/* ---- through a store ---- */

static char g_top[64];
static struct mx_store *g_st;

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void setup(void)
{
	struct mx_error e;
	char dir[128];

	strcpy(g_top, "/tmp/mx-test-account.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	snprintf(dir, sizeof(dir), "%s/data", g_top);
	mx_error_clear(&e);
	ck_assert_msg(mx_store_open(dir, &g_st, &e) == MX_OK, "%s", e.detail);
}

static void teardown(void)
{
	mx_store_close(&g_st);
	nftw(g_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int add(const char *name, const char *url, const char *pw,
	       struct mx_error *e)
{
	struct mx_account_params p = {0};

	p.name = name;
	p.imap_url = url;
	p.password = pw;
	return mx_account_add(g_st, &p, e);
}

START_TEST(test_add_names)
{
	static const char *const bad[] = {
		"", "has space", "slash/x", "semi;colon", "ümlaut", "a\nb",
		"tab\t", "at@x", "colon:x",
		"x12345678901234567890123456789012345678901234567890123456789012"
		"34", /* 65 */
	};
	struct mx_error e;
	struct mx_account a;
	char name64[65];

	for (size_t i = 0; i < MX_ARRAY_SIZE(bad); i++) {
		mx_error_clear(&e);
		ck_assert_msg(add(bad[i], "imaps://u@h", NULL, &e) ==
			      MX_ERR_INVAL, "name '%s' accepted", bad[i]);
		ck_assert_str_ne(e.detail, "");
	}
	ck_assert_int_eq(strlen(bad[MX_ARRAY_SIZE(bad) - 1]), 65);
	{
		struct mx_account_params p = {0};

		p.imap_url = "imaps://u@h";
		ck_assert_int_eq(mx_account_add(g_st, &p, &e), MX_ERR_INVAL);
		p.name = "nourl";
		p.imap_url = NULL;
		ck_assert_int_eq(mx_account_add(g_st, &p, &e), MX_ERR_INVAL);
	}

	memset(name64, 'n', 64);
	name64[64] = '\0';
	mx_error_clear(&e);
	ck_assert_msg(add(name64, "imaps://u@h", NULL, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_msg(add("Work.mail_2-x", "imap://bob@h:1143", NULL, &e) ==
		      MX_OK, "%s", e.detail);
	ck_assert_int_eq(add("Work.mail_2-x", "imaps://u@h", NULL, &e),
			 MX_ERR_EXISTS);
	ck_assert_int_eq(add("badurl", "http://u@h", NULL, &e), MX_ERR_PARSE);
	ck_assert_int_eq(mx_account_load(g_st, "badurl", &a, &e),
			 MX_ERR_NOTFOUND);

	ck_assert_int_eq(mx_account_load(g_st, "Work.mail_2-x", &a, &e), MX_OK);
	ck_assert_str_eq(a.user, "bob");
	ck_assert_str_eq(a.host, "h");
	ck_assert_uint_eq(a.port, 1143);
	ck_assert_int_eq(a.tls, MX_TLS_STARTTLS);
	ck_assert_str_eq(a.imap_url, "imap://bob@h:1143");
	ck_assert(a.created > 0);
	mx_account_free(&a);
}
END_TEST

START_TEST(test_list_json_no_password)
{
	struct mx_error e;
	struct mx_account a;
	char *json = NULL;
	json_error_t je;
	json_t *arr;

	mx_error_clear(&e);
	ck_assert_msg(add("main", "imaps://alice@example.test@127.0.0.1:993",
			  "s3cret-PW", &e) == MX_OK, "%s", e.detail);
	{
		struct mx_account_params p = {0};

		p.name = "filepw";
		p.imap_url = "imap://bob@h";
		p.password_file = "/run/secrets/pw";
		p.insecure_plaintext = true;
		ck_assert_int_eq(mx_account_add(g_st, &p, &e), MX_OK);
	}
	/* The password is stored (it is needed to log in)... */
	ck_assert_int_eq(mx_account_load(g_st, "main", &a, &e), MX_OK);
	ck_assert_str_eq(a.password, "s3cret-PW");
	mx_account_free(&a);

	/* ...but never listed. */
	ck_assert_int_eq(mx_account_list_json(g_st, &json, &e), MX_OK);
	ck_assert_ptr_nonnull(json);
	ck_assert_msg(strstr(json, "s3cret-PW") == NULL, "%s", json);
	ck_assert_msg(strstr(json, "s3cret") == NULL, "%s", json);
	arr = json_loads(json, 0, &je);
	ck_assert_msg(json_is_array(arr), "%s", je.text);
	ck_assert_uint_eq(json_array_size(arr), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *o = json_array_get(arr, i);
		const char *name = json_string_value(json_object_get(o, "name"));

		ck_assert_ptr_null(json_object_get(o, "password"));
		ck_assert_ptr_nonnull(name);
		if (strcmp(name, "main") == 0) {
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "credentials")), "stored");
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "user")), "alice@example.test");
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "tls")), "implicit");
		} else {
			ck_assert_str_eq(name, "filepw");
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "credentials")), "file");
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "tls")), "none");
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "password_file")),
					 "/run/secrets/pw");
		}
	}
	json_decref(arr);
	mx_free(json);
}
END_TEST

/*
 * A password (or %XX-escaped user name) that is not UTF-8 must not be
 * dropped silently on the way into the store: the record codec passes it
 * to json_string(), which refuses it, and the account ends up without
 * credentials ("credentials": "none") or without a user.
 */
START_TEST(test_add_non_utf8_kept_or_refused)
{
	struct mx_error e;
	struct mx_account a;
	int rc;

	rc = add("latin1pw", "imaps://u@h", "caf\xe9", &e);
	if (rc == MX_OK) {
		ck_assert_int_eq(mx_account_load(g_st, "latin1pw", &a, &e),
				 MX_OK);
		ck_assert_msg(a.password != NULL &&
			      strcmp(a.password, "caf\xe9") == 0,
			      "password silently dropped");
		mx_account_free(&a);
	}
	/* Bytes a naive UTF-8 check lets through but JSON refuses:
	 * surrogate, above U+10FFFF, overlong. */
	{
		static const char *const pws[] = {"\xed\xa0\x80x",
						  "\xf4\x90\x80\x80",
						  "\xe0\x80\xaf"};

		for (size_t i = 0; i < MX_ARRAY_SIZE(pws); i++) {
			char name[16];

			snprintf(name, sizeof(name), "badpw%zu", i);
			if (add(name, "imaps://u@h", pws[i], &e) != MX_OK)
				continue;
			ck_assert_int_eq(mx_account_load(g_st, name, &a, &e),
					 MX_OK);
			ck_assert_msg(a.password != NULL,
				      "password %zu silently dropped", i);
			mx_account_free(&a);
		}
	}
	rc = add("latin1user", "imaps://j%E9r%F4me@h", "pw", &e);
	if (rc == MX_OK) {
		ck_assert_int_eq(mx_account_load(g_st, "latin1user", &a, &e),
				 MX_OK);
		ck_assert_msg(a.user != NULL, "user silently dropped");
		mx_account_free(&a);
	}
}
END_TEST

/* The scheme picks the protocol. */
START_TEST(test_url_proto)
{
	struct mx_account a = {0};
	struct mx_error e;

	ck_assert_int_eq(mx_account_parse_url("pop3s://u@h", &a, &e), MX_OK);
	ck_assert_int_eq(a.proto, MX_PROTO_POP3);
	ck_assert_int_eq(mx_account_parse_url("imaps://u@h", &a, &e), MX_OK);
	ck_assert_int_eq(a.proto, MX_PROTO_IMAP);
	mx_account_free(&a);
}
END_TEST

START_TEST(test_smtp_url)
{
	static const struct {
		const char *url;
		int rc;
		const char *user, *host;
		unsigned port;
		enum mx_tls_mode tls;
	} t[] = {
		{"smtps://h", MX_OK, NULL, "h", 465, MX_TLS_IMPLICIT},
		{"smtp://u@h", MX_OK, "u", "h", 587, MX_TLS_STARTTLS},
		{"smtp://a@b.test@127.0.0.1:2525", MX_OK, "a@b.test",
		 "127.0.0.1", 2525, MX_TLS_STARTTLS},
		{"smtp+plain://relay.lan", MX_OK, NULL, "relay.lan", 25,
		 MX_TLS_NONE},
		{"smtp://u:pw@h", MX_ERR_PARSE, NULL, NULL, 0, 0},
		{"smtpx://h", MX_ERR_PARSE, NULL, NULL, 0, 0},
		{"imaps://u@h", MX_ERR_PARSE, NULL, NULL, 0, 0},
		{"smtp://h/x", MX_ERR_PARSE, NULL, NULL, 0, 0},
		{"smtp://h:0", MX_ERR_PARSE, NULL, NULL, 0, 0},
		{"smtp://@h", MX_ERR_PARSE, NULL, NULL, 0, 0},
	};

	for (size_t i = 0; i < MX_ARRAY_SIZE(t); i++) {
		struct mx_smtp_server sv = {0};
		struct mx_error e;
		int rc = mx_smtp_url_parse(t[i].url, &sv, &e);

		ck_assert_msg(rc == t[i].rc, "%s: %d %s", t[i].url, rc, e.detail);
		if (rc == MX_OK) {
			ck_assert_str_eq(sv.url, t[i].url);
			ck_assert_str_eq(sv.host, t[i].host);
			ck_assert_uint_eq(sv.port, t[i].port);
			ck_assert_int_eq(sv.tls, t[i].tls);
			if (t[i].user)
				ck_assert_str_eq(sv.user, t[i].user);
			else
				ck_assert_ptr_null(sv.user);
		}
		mx_smtp_server_free(&sv);
	}
}
END_TEST

/* Settings: every bad value refused with nothing changed; good ones
 * applied; an SMTP password survives a new SMTP URL. */
START_TEST(test_settings)
{
	static const struct mx_account_settings bad[] = {
		{.email = "a@b\r\nBcc: x@y"},
		{.email = "no-at-sign"},
		{.email = "a@b, c@d"},
		{.provider = "nosuch"},
		{.saves_sent = "maybe"},
		{.daily_limit = "-1"},
		{.daily_limit = "10k"},
		{.daily_limit = "2000000"},
		{.quota_policy = "drop"},
		{.quota_policy = "relay"},          /* no relay configured */
		{.max_attach = "25Q"},
		{.max_attach = "0"},
		{.access = "everyone"},
		{.access = "selected"},             /* nobody allowed */
		{.owner = "bad owner"},
		{.smtp_url = "http://h"},
		{.relay_url = "smtp://u:p@h"},
		{.smtp_mechanism = "CRAM-MD5"},
		{.pop3_delete = "sometimes"},
	};
	const char *allow[] = {"bob", "carol@example.test"};
	struct mx_account_settings good = {
		.email = "alice@example.test", .smtp_url = "smtps://h",
		.smtp_password = "smtp-secret", .relay_url = "smtp+plain://relay",
		.saves_sent = "yes", .daily_limit = "500",
		.quota_policy = "relay", .max_attach = "10M",
		.access = "selected", .owner = "alice", .allow = allow,
		.nallow = 2, .smtp_mechanism = "XOAUTH2",
	};
	struct mx_account_settings again = {.smtp_url = "smtp://u@h2"};
	struct mx_account a = {0};
	struct mx_error e;

	for (size_t i = 0; i < MX_ARRAY_SIZE(bad); i++) {
		int rc = mx_account_apply_settings(&a, &bad[i], &e);

		ck_assert_msg(rc == MX_ERR_INVAL || rc == MX_ERR_PARSE,
			      "bad[%zu] accepted", i);
		ck_assert_msg(e.detail[0] != '\0', "bad[%zu]: no message", i);
		ck_assert(a.email == NULL && a.smtp.host == NULL &&
			  a.daily_limit == 0 && a.access == MX_ACCESS_OWNER);
	}
	ck_assert_int_eq(mx_account_apply_settings(&a, &good, &e), MX_OK);
	ck_assert_str_eq(a.email, "alice@example.test");
	ck_assert_str_eq(a.smtp.host, "h");
	ck_assert_str_eq(a.smtp.password, "smtp-secret");
	ck_assert_str_eq(a.smtp.mechanism, "XOAUTH2");
	ck_assert_int_eq(a.relay.tls, MX_TLS_NONE);
	ck_assert(a.saves_sent);
	ck_assert_int_eq(a.daily_limit, 500);
	ck_assert_int_eq(a.quota_policy, MX_QUOTA_RELAY);
	ck_assert_uint_eq(a.max_attach, 10u * 1024 * 1024);
	ck_assert_int_eq(a.access, MX_ACCESS_SELECTED);
	ck_assert_uint_eq(a.nallowed, 2);
	ck_assert_str_eq(a.allowed[1], "carol@example.test");
	ck_assert_int_eq(mx_account_apply_settings(&a, &again, &e), MX_OK);
	ck_assert_str_eq(a.smtp.host, "h2");
	ck_assert_str_eq(a.smtp.password, "smtp-secret");
	ck_assert_str_eq(a.smtp.mechanism, "XOAUTH2");
	mx_account_free(&a);
}
END_TEST

/* account edit to a new address: From and the SMTP user follow it when
 * they were the old address; an explicit different From stays. */
START_TEST(test_set_incoming)
{
	struct mx_account a = {0};
	struct mx_account_settings s = {.email = "old@example.test",
					.smtp_url = "smtps://old@example.test@smtp.example.test"};
	struct mx_error e;

	ck_assert_int_eq(mx_account_parse_url("imaps://old@example.test@imap.example.test",
					      &a, &e), MX_OK);
	ck_assert_int_eq(mx_account_apply_settings(&a, &s, &e), MX_OK);
	ck_assert_int_eq(mx_account_set_incoming(&a, "imaps://new@example.test@imap.example.test",
						 &e), MX_OK);
	ck_assert_str_eq(a.user, "new@example.test");
	ck_assert_str_eq(a.imap_url, "imaps://new@example.test@imap.example.test");
	ck_assert_str_eq(a.email, "new@example.test");
	ck_assert_str_eq(a.smtp.user, "new@example.test");
	ck_assert_str_eq(a.smtp.url, "smtps://new@example.test@smtp.example.test:465");
	ck_assert_str_eq(mx_account_from(&a), "new@example.test");
	/* A From that is not the login stays. */
	free(a.email);
	a.email = strdup("sales@example.test");
	ck_assert_int_eq(mx_account_set_incoming(&a, "imaps://third@example.test@imap.example.test",
						 &e), MX_OK);
	ck_assert_str_eq(a.email, "sales@example.test");
	ck_assert_str_eq(a.smtp.user, "third@example.test");
	/* A bad URL changes nothing. */
	ck_assert_int_eq(mx_account_set_incoming(&a, "imaps://nohost@", &e),
			 MX_ERR_PARSE);
	ck_assert_str_eq(a.user, "third@example.test");
	mx_account_free(&a);
}
END_TEST

/* ---- settings an operator types: display name, token URL, file names ---- */

static int add_p(struct mx_account_params *p, struct mx_error *e)
{
	mx_error_clear(e);
	if (p->imap_url == NULL)
		p->imap_url = "imaps://u@h";
	if (p->password == NULL && p->refresh_token == NULL &&
	    p->password_file == NULL)
		p->password = "pw";
	return mx_account_add_with(g_st, p, NULL, e);
}

static int set_display(struct mx_account *a, const void *arg,
		       struct mx_error *err)
{
	(void)err;
	free(a->display_name);
	a->display_name = strdup(arg);
	return MX_OK;
}

static int set_pwfile(struct mx_account *a, const void *arg,
		      struct mx_error *err)
{
	(void)err;
	free(a->password_file);
	a->password_file = strdup(arg);
	return MX_OK;
}

START_TEST(test_display_name_controls)
{
	static const char *const bad[] = {
		"Eve\r\nBcc: x@evil", "Eve\nX", "Eve\rX", "tab\there",
		"nul\x01", "del\x7f", "c1 \xc2\x85 NEL", "bad utf8 \xff",
	};
	struct mx_account_params p = {0};
	struct mx_account a;
	struct mx_error e;

	for (size_t i = 0; i < MX_ARRAY_SIZE(bad); i++) {
		memset(&p, 0, sizeof(p));
		p.name = "dn";
		p.display_name = bad[i];
		ck_assert_int_eq(add_p(&p, &e), MX_ERR_INVAL);
		ck_assert_msg(strstr(e.detail, "--display-name") != NULL, "%s",
			      e.detail);
	}
	memset(&p, 0, sizeof(p));
	p.name = "dn";
	p.display_name = "Zoë Ünïcode, \"Sales\"";
	ck_assert_msg(add_p(&p, &e) == MX_OK, "%s", e.detail);
	/* Edit: refused too, and the record stays as it was. */
	ck_assert_int_eq(mx_account_edit(g_st, "dn", set_display,
					 "Eve\r\nBcc: x@evil", &e),
			 MX_ERR_INVAL);
	ck_assert_int_eq(mx_account_load(g_st, "dn", &a, &e), MX_OK);
	ck_assert_str_eq(a.display_name, "Zoë Ünïcode, \"Sales\"");
	mx_account_free(&a);
}
END_TEST

START_TEST(test_token_url_rule)
{
	static const struct { const char *url; int rc; } cases[] = {
		{"file:///etc/passwd", MX_ERR_CONFIG},
		{"http://idp.example.com/token", MX_ERR_INSECURE},
		{"http://10.0.0.1/token", MX_ERR_INSECURE},
		{"ftp://idp.example.com/token", MX_ERR_CONFIG},
		{"not a url", MX_ERR_CONFIG},
		{"http://127.0.0.1:8080/token", MX_OK},
		{"http://[::1]/token", MX_OK},
		{"https://idp.example.com/token", MX_OK},
	};

	for (size_t i = 0; i < MX_ARRAY_SIZE(cases); i++) {
		struct mx_account_params p = {0};
		struct mx_error e;
		char name[16];

		snprintf(name, sizeof(name), "tok%zu", i);
		p.name = name;
		p.refresh_token = "rt";
		p.oauth_token_url = cases[i].url;
		ck_assert_msg(add_p(&p, &e) == cases[i].rc, "%s: %s",
			      cases[i].url, e.detail);
		if (cases[i].rc)
			ck_assert_msg(strstr(e.detail, "--oauth-token-url"),
				      "%s", e.detail);
	}
}
END_TEST

START_TEST(test_relative_files_made_absolute)
{
	struct mx_account_params p = {0};
	struct mx_account a;
	struct mx_error e;
	char cwd[4096], want[256], *real;
	FILE *f;

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(g_top), 0);
	f = fopen("pw.txt", "w");
	ck_assert_ptr_nonnull(f);
	fputs("secret\n", f);
	fclose(f);
	f = fopen("ca.pem", "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	real = realpath(g_top, NULL);
	ck_assert_ptr_nonnull(real);
	p.name = "rel";
	p.password_file = "pw.txt";
	p.ca_file = "./ca.pem";
	ck_assert_msg(add_p(&p, &e) == MX_OK, "%s", e.detail);
	p.name = "missing";
	p.password_file = "nosuch.txt";
	p.ca_file = NULL;
	ck_assert_int_eq(add_p(&p, &e), MX_ERR_INVAL);
	ck_assert_msg(strstr(e.detail, "--password-file 'nosuch.txt'"), "%s",
		      e.detail);
	ck_assert_int_eq(mx_account_edit(g_st, "rel", set_pwfile, "nosuch.txt",
					 &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_account_edit(g_st, "rel", set_pwfile, "./pw.txt",
					 &e), MX_OK);
	ck_assert_int_eq(chdir(cwd), 0);
	ck_assert_int_eq(mx_account_load(g_st, "rel", &a, &e), MX_OK);
	snprintf(want, sizeof(want), "%s/pw.txt", real);
	ck_assert_str_eq(a.password_file, want);
	snprintf(want, sizeof(want), "%s/ca.pem", real);
	ck_assert_str_eq(a.ca_file, want);
	mx_account_free(&a);
	free(real);
}
END_TEST

/* ---- removal: generations, purge, kept mail ---- */

static int check_current(const struct mx_account *a, struct mx_error *e)
{
	struct mx_txn t;
	int rc;

	ck_assert_int_eq(mx_txn_begin(g_st, true, &t, e), MX_OK);
	rc = mx_account_check_current(&t, a, e);
	mx_txn_abort(&t);
	return rc;
}

START_TEST(test_removed_account_generation)
{
	struct mx_account a, b, c;
	struct mx_error e;

	ck_assert_int_eq(add("gen", "imaps://u@h", "pw", &e), MX_OK);
	ck_assert_int_eq(mx_account_load(g_st, "gen", &a, &e), MX_OK);
	ck_assert_uint_ne(a.generation, 0);
	ck_assert_int_eq(check_current(&a, &e), MX_OK);
	/* A token refresh of a sync that outlived its account must not
	 * bring the record back. */
	ck_assert_int_eq(mx_account_remove(g_st, "gen", false, NULL, &e), MX_OK);
	ck_assert_int_eq(check_current(&a, &e), MX_ERR_CANCELLED);
	ck_assert_msg(strstr(e.detail, "account gen was removed"), "%s",
		      e.detail);
	ck_assert_int_eq(mx_account_save(g_st, &a, &e), MX_ERR_CANCELLED);
	ck_assert_int_eq(mx_account_load(g_st, "gen", &b, &e), MX_ERR_NOTFOUND);
	/* Same name and server: the kept mail's id again, a new generation;
	 * the old incarnation's sync still cannot commit. */
	ck_assert_int_eq(add("gen", "imaps://u@h", "pw", &e), MX_OK);
	ck_assert_int_eq(mx_account_load(g_st, "gen", &b, &e), MX_OK);
	ck_assert_uint_eq(b.id, a.id);
	ck_assert_uint_ne(b.generation, a.generation);
	ck_assert_int_eq(check_current(&a, &e), MX_ERR_CANCELLED);
	ck_assert_int_eq(check_current(&b, &e), MX_OK);
	/* Another server: a new id. */
	ck_assert_int_eq(mx_account_remove(g_st, "gen", false, NULL, &e), MX_OK);
	ck_assert_int_eq(add("gen", "imaps://other@h", "pw", &e), MX_OK);
	ck_assert_int_eq(mx_account_load(g_st, "gen", &c, &e), MX_OK);
	ck_assert_uint_ne(c.id, a.id);
	mx_account_free(&a);
	mx_account_free(&b);
	mx_account_free(&c);
}
END_TEST

static size_t entries(struct mx_txn *t, enum mx_dbi db)
{
	MDB_stat ms;

	ck_assert_int_eq(mdb_stat(t->txn, t->st->dbi[db], &ms), 0);
	return ms.ms_entries;
}

/* One folder, one message (blob, location, indexes, thread, event) of
 * account NAME, in its own write transaction. */
static void store_mail(const char *name, const char *raw)
{
	struct mx_account a;
	struct mx_folder f = {0};
	struct mx_msg m = {0};
	struct mx_txn t;
	struct mx_error e;
	uint8_t k[12];

	ck_assert_int_eq(mx_account_load(g_st, name, &a, &e), MX_OK);
	ck_assert_int_eq(mx_txn_begin(g_st, true, &t, &e), MX_OK);
	f.account_id = a.id;
	f.name = strdup("INBOX");
	f.wire = strdup("INBOX");
	f.uidvalidity = 7;
	ck_assert_int_eq(mx_store_folder_put(&t, &f, &e), MX_OK);
	m.account_id = a.id;
	mx_sha256(raw, strlen(raw), m.sha256);
	mx_sha256(name, strlen(name), m.identity);
	m.size = strlen(raw);
	m.p.message_id = strdup(name);
	m.p.subject = strdup("hello");
	m.p.date = -1;
	ck_assert_msg(mx_store_msg_add(&t, &m, raw, &e) == MX_OK, "%s",
		      e.detail);
	{
		struct mx_loc l = {f.id, 1, m.id, 0, 0, NULL};

		ck_assert_int_eq(mx_store_loc_put(&t, &l, &e), MX_OK);
	}
	ck_assert_int_eq(mx_store_event(&t, "message.new", a.id, f.id, m.id,
					NULL, &e), MX_OK);
	/* A POP3 unique-id and daemon state, as pop3sync.c and mxsyncd
	 * write them. */
	memcpy(k, "pop3uidl", 8);
	mx_put_be32(k + 8, a.id);
	ck_assert_int_eq(mx_db_put(&t, MX_DB_META, k, 12, "x", 1, 0, &e),
			 MX_OK);
	mx_put_be32(k, a.id);
	ck_assert_int_eq(mx_db_put(&t, MX_DB_ACCTSTATE, k, 4, "{}", 2, 0, &e),
			 MX_OK);
	ck_assert_int_eq(mx_txn_commit(&t, &e), MX_OK);
	mx_msg_free(&m);
	mx_folder_free(&f);
	mx_account_free(&a);
}

/* Entries of every per-account database (all but META, ACCOUNTS,
 * ACCOUNT_NAMES, EVENTS, WEBHOOKS and the outbox). */
static size_t data_entries(void)
{
	static const enum mx_dbi dbs[] = {
		MX_DB_FOLDERS, MX_DB_FOLDER_NAMES, MX_DB_MESSAGES, MX_DB_BLOBS,
		MX_DB_BLOBREFS, MX_DB_LOCS, MX_DB_MSGLOCS, MX_DB_IDENTITY,
		MX_DB_MSGID, MX_DB_THREADREFS, MX_DB_THREADSUBJ,
		MX_DB_THREADS, MX_DB_BYDATE, MX_DB_ORPHANS, MX_DB_ACCTSTATE,
	};
	struct mx_txn t;
	struct mx_error e;
	size_t n = 0;

	ck_assert_int_eq(mx_txn_begin(g_st, false, &t, &e), MX_OK);
	for (size_t i = 0; i < MX_ARRAY_SIZE(dbs); i++)
		n += entries(&t, dbs[i]);
	mx_txn_abort(&t);
	return n;
}

static size_t db_entries(enum mx_dbi db)
{
	struct mx_txn t;
	struct mx_error e;
	size_t n;

	ck_assert_int_eq(mx_txn_begin(g_st, false, &t, &e), MX_OK);
	n = entries(&t, db);
	mx_txn_abort(&t);
	return n;
}

START_TEST(test_purge_leaves_nothing)
{
	struct mx_error e;
	size_t other, meta, events;

	ck_assert_int_eq(add("other", "imaps://o@h", "pw", &e), MX_OK);
	store_mail("other", "Subject: other\r\n\r\nother\r\n");
	other = data_entries();
	meta = db_entries(MX_DB_META);
	events = db_entries(MX_DB_EVENTS);
	ck_assert_int_eq(add("gone", "imaps://g@h", "pw", &e), MX_OK);
	store_mail("gone", "Subject: gone\r\n\r\ngone\r\n");
	ck_assert_uint_gt(data_entries(), other);
	ck_assert_int_eq(mx_account_remove(g_st, "gone", true, NULL, &e), MX_OK);
	ck_assert_uint_eq(data_entries(), other);
	/* Counters may be new; the unique-id is not. */
	ck_assert_uint_le(db_entries(MX_DB_META), meta + 2);
	/* Its message.new went, account.removed came. */
	ck_assert_uint_eq(db_entries(MX_DB_EVENTS), events + 1);
}
END_TEST

START_TEST(test_kept_mail_reattach_and_purge)
{
	struct mx_account a;
	struct mx_error e;
	size_t none = data_entries(), one;

	ck_assert_int_eq(add("kept", "imaps://k@h", "pw", &e), MX_OK);
	store_mail("kept", "Subject: kept\r\n\r\nkept\r\n");
	one = data_entries();
	ck_assert_int_eq(mx_account_remove(g_st, "kept", false, NULL, &e), MX_OK);
	ck_assert_uint_eq(data_entries(), one - 1); /* daemon state went */
	/* Re-added with the same server: its folder is there again. */
	ck_assert_int_eq(add("kept", "imaps://k@h", "pw", &e), MX_OK);
	ck_assert_int_eq(mx_account_load(g_st, "kept", &a, &e), MX_OK);
	{
		struct mx_folder *f = NULL;
		size_t nf = 0;
		struct mx_txn t;

		ck_assert_int_eq(mx_txn_begin(g_st, false, &t, &e), MX_OK);
		ck_assert_int_eq(mx_store_folder_list(&t, a.id, &f, &nf, &e),
				 MX_OK);
		mx_txn_abort(&t);
		ck_assert_uint_eq(nf, 1);
		ck_assert_uint_eq(f[0].uidvalidity, 7);
		mx_folders_free(f, nf);
	}
	mx_account_free(&a);
	/* Removed again, re-added elsewhere: the kept mail stays kept
	 * until a purge by name. */
	ck_assert_int_eq(mx_account_remove(g_st, "kept", false, NULL, &e), MX_OK);
	ck_assert_int_eq(add("kept", "imaps://else@h", "pw", &e), MX_OK);
	ck_assert_uint_eq(data_entries(), one - 1);
	ck_assert_int_eq(mx_account_remove(g_st, "kept", false, NULL, &e), MX_OK);
	ck_assert_int_eq(mx_account_remove(g_st, "kept", true, NULL, &e), MX_OK);
	ck_assert_uint_eq(data_entries(), none);
	ck_assert_int_eq(mx_account_remove(g_st, "kept", true, NULL, &e),
			 MX_ERR_NOTFOUND);
	ck_assert_msg(strstr(e.detail, "no account and no kept mail"), "%s",
		      e.detail);
}
END_TEST

/* ---- the browser OAuth flow's records (oauthflow.c) ---- */

struct flow_walk {
	size_t n;
	bool expire; /* rewrite each record's "expires" into the past */
};

static int flow_walk_fn(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
			void *ctx, struct mx_error *err)
{
	struct flow_walk *fw = ctx;
	json_t *j;
	char *s;
	int rc;

	fw->n++;
	if (!fw->expire)
		return MX_OK;
	j = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	ck_assert_ptr_nonnull(j);
	json_object_set_new(j, "expires", json_integer(mx_wall_s() - 1));
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	rc = mx_db_put(t, MX_DB_META, k->mv_data, k->mv_size, s, strlen(s), 0,
		       err);
	free(s);
	return rc;
}

static int flow_walk_txn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	((struct flow_walk *)ctx)->n = 0;
	return mx_store_walk(t, MX_DB_META, "oauth_flow:", 11, NULL, 0, 0,
			     "flows", flow_walk_fn, ctx, err);
}

/* How many flow records the store holds (EXPIRE: expiring them all). */
static size_t flows(bool expire)
{
	struct flow_walk fw = {0, expire};
	struct mx_error e;

	ck_assert_msg(mx_store_write(g_st, flow_walk_txn, &fw, &e) == MX_OK,
		      "%s", e.detail);
	return fw.n;
}

START_TEST(test_oauth_flow_records)
{
	struct mx_oauth_cfg c = {
		.auth_url = "http://127.0.0.1:1/authorize?x=1",
		.token_url = "http://127.0.0.1:1/token",
		.client_id = "crm client",
		.scope = "mail offline",
	};
	struct mx_oauth_flow f;
	struct mx_account a;
	struct mx_error e;
	char state[MX_OAUTH_STATE_LEN + 1], state2[MX_OAUTH_STATE_LEN + 1];
	char *url = NULL, want[128];
	int64_t exp = 0;

	mx_error_clear(&e);
	ck_assert_msg(add("o", "imaps://alice@h", "pw", &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_int_eq(mx_account_load(g_st, "o", &a, &e), MX_OK);

	/* A client the flow cannot use stores nothing. */
	c.auth_url = NULL;
	ck_assert_int_eq(mx_account_oauth_begin(g_st, &a, &c, "http://x/cb",
						NULL, &url, state, &exp, &e),
			 MX_ERR_CONFIG);
	c.auth_url = "http://idp.example.test/authorize";
	ck_assert_int_eq(mx_account_oauth_begin(g_st, &a, &c, "http://x/cb",
						NULL, &url, state, &exp, &e),
			 MX_ERR_INSECURE);
	ck_assert_ptr_null(url);
	ck_assert_uint_eq(flows(false), 0);

	c.auth_url = "http://127.0.0.1:1/authorize?x=1";
	ck_assert_msg(mx_account_oauth_begin(g_st, &a, &c,
					     "http://127.0.0.1:7780/v1/oauth/callback",
					     "https://crm.example/done", &url,
					     state, &exp, &e) == MX_OK,
		      "%s", e.detail);
	ck_assert_uint_eq(strlen(state), MX_OAUTH_STATE_LEN);
	ck_assert_int_ge(exp, mx_wall_s() + MX_OAUTH_FLOW_TTL - 5);
	ck_assert_ptr_nonnull(strstr(url, "http://127.0.0.1:1/authorize?x=1&"
					  "response_type=code&"));
	ck_assert_ptr_nonnull(strstr(url, "&client_id=crm%20client&"));
	ck_assert_ptr_nonnull(strstr(url, "&redirect_uri=http%3A%2F%2F127.0.0.1"
					  "%3A7780%2Fv1%2Foauth%2Fcallback&"));
	snprintf(want, sizeof(want), "&state=%s&", state);
	ck_assert_ptr_nonnull(strstr(url, want));
	ck_assert_ptr_nonnull(strstr(url, "&code_challenge_method=S256"));
	free(url);
	ck_assert_uint_eq(flows(false), 1);

	/* Taken once, with what begin stored; then spent. */
	ck_assert_msg(mx_account_oauth_take(g_st, state, &f, &e) == MX_OK,
		      "%s", e.detail);
	ck_assert_uint_eq(f.account_id, a.id);
	ck_assert_str_eq(f.account, "o");
	ck_assert_uint_eq(strlen(f.verifier), 86);
	ck_assert_str_eq(f.return_to, "https://crm.example/done");
	ck_assert_str_eq(f.token_url, "http://127.0.0.1:1/token");
	ck_assert_str_eq(f.client_id, "crm client");
	ck_assert_str_eq(f.scope, "mail offline");
	mx_oauth_flow_free(&f);
	ck_assert_int_eq(mx_account_oauth_take(g_st, state, &f, &e),
			 MX_ERR_NOTFOUND);
	ck_assert_int_eq(mx_account_oauth_take(g_st, "nope", &f, &e),
			 MX_ERR_NOTFOUND);
	ck_assert_uint_eq(flows(false), 0);

	/* Expired: refused and spent; the next begin prunes the others. */
	ck_assert_int_eq(mx_account_oauth_begin(g_st, &a, &c, "http://x/cb",
						NULL, &url, state, &exp, &e),
			 MX_OK);
	free(url);
	ck_assert_int_eq(mx_account_oauth_begin(g_st, &a, &c, "http://x/cb",
						NULL, &url, state2, &exp, &e),
			 MX_OK);
	free(url);
	ck_assert_str_ne(state, state2);
	ck_assert_uint_eq(flows(true), 2);
	ck_assert_int_eq(mx_account_oauth_take(g_st, state, &f, &e),
			 MX_ERR_EXPIRED);
	ck_assert_ptr_null(f.verifier);
	ck_assert_int_eq(mx_account_oauth_take(g_st, state, &f, &e),
			 MX_ERR_NOTFOUND);
	ck_assert_int_eq(mx_account_oauth_begin(g_st, &a, &c, "http://x/cb",
						NULL, &url, state, &exp, &e),
			 MX_OK);
	free(url);
	ck_assert_uint_eq(flows(false), 1);

	/* The account went away meanwhile: nothing is exchanged or stored. */
	ck_assert_int_eq(mx_account_oauth_take(g_st, state, &f, &e), MX_OK);
	ck_assert_int_eq(mx_account_remove(g_st, "o", true, NULL, &e), MX_OK);
	ck_assert_int_eq(mx_account_oauth_finish(g_st, &f, "code", NULL, NULL,
						 &e),
			 MX_ERR_NOTFOUND);
	mx_oauth_flow_free(&f);
	mx_account_free(&a);
}
END_TEST

START_TEST(test_sync_batch_limits)
{
	/* Refused before any connection: port 1 on loopback would fail with
	 * MX_ERR_NET, so MX_ERR_INVAL shows the check came first.  A huge
	 * count once wrapped (count + 1) * size in the batch allocation. */
	static const char *const urls[] = {"imaps://u@127.0.0.1:1",
					   "pop3s://u@127.0.0.1:1"};
	struct mx_sync_opts o = {0};
	struct mx_error e;

	ck_assert_int_eq(add("imapb", urls[0], "pw", &e), MX_OK);
	ck_assert_int_eq(add("pop3b", urls[1], "pw", &e), MX_OK);
	for (int k = 0; k < 2; k++) {
		const char *name = k ? "pop3b" : "imapb";

		o.batch_msgs = UINT_MAX;
		o.batch_bytes = 0;
		mx_error_clear(&e);
		ck_assert_int_eq(mx_sync(g_st, name, &o, NULL, &e),
				 MX_ERR_INVAL);
		ck_assert_msg(strstr(e.detail, "at most 10000"), "%s",
			      e.detail);
		o.batch_msgs = MX_SYNC_BATCH_MSGS_MAX + 1;
		ck_assert_int_eq(mx_sync(g_st, name, &o, NULL, &e),
				 MX_ERR_INVAL);
		o.batch_msgs = 0;
		o.batch_bytes = MX_SYNC_BATCH_BYTES_MAX + 1;
		ck_assert_int_eq(mx_sync(g_st, name, &o, NULL, &e),
				 MX_ERR_INVAL);
		/* The largest allowed values get as far as connecting. */
		o.batch_msgs = MX_SYNC_BATCH_MSGS_MAX;
		o.batch_bytes = MX_SYNC_BATCH_BYTES_MAX;
		ck_assert_int_ne(mx_sync(g_st, name, &o, NULL, &e),
				 MX_ERR_INVAL);
	}
	/* The daemon's entry points check too (the connection is not
	 * touched first). */
	{
		struct mx_account a = {0};

		o.batch_msgs = UINT_MAX;
		o.batch_bytes = 0;
		ck_assert_int_eq(mx_account_load(g_st, "imapb", &a, &e), MX_OK);
		ck_assert_int_eq(mx_sync_conn(g_st, &a, NULL, &o, NULL, &e),
				 MX_ERR_INVAL);
		mx_account_free(&a);
		ck_assert_int_eq(mx_account_load(g_st, "pop3b", &a, &e), MX_OK);
		ck_assert_int_eq(mx_drop_sync(g_st, &a, &o, NULL, &e),
				 MX_ERR_INVAL);
		mx_account_free(&a);
	}
}
END_TEST

/* PUT /v1/accounts/{id}/permissions: ALLOW_SET replaces the list even
 * when empty; an empty list with access selected is refused and changes
 * nothing. */
START_TEST(test_settings_allow_set)
{
	const char *allow[] = {"bob"};
	struct mx_account_settings sel = {.access = "selected", .allow = allow,
					  .nallow = 1};
	struct mx_account_settings none = {.access = "all", .allow_set = true};
	struct mx_account_settings sel_none = {.access = "selected",
					       .allow_set = true};
	struct mx_account_settings keep = {.daily_limit = "3"};
	struct mx_account a = {0};
	struct mx_error e;

	ck_assert_int_eq(mx_account_apply_settings(&a, &sel, &e), MX_OK);
	ck_assert_uint_eq(a.nallowed, 1);
	ck_assert_int_eq(mx_account_apply_settings(&a, &keep, &e), MX_OK);
	ck_assert_uint_eq(a.nallowed, 1); /* not given: kept */
	ck_assert_int_eq(mx_account_apply_settings(&a, &sel_none, &e),
			 MX_ERR_INVAL);
	ck_assert_uint_eq(a.nallowed, 1);
	ck_assert_int_eq(a.access, MX_ACCESS_SELECTED);
	ck_assert_int_eq(mx_account_apply_settings(&a, &none, &e), MX_OK);
	ck_assert_uint_eq(a.nallowed, 0);
	ck_assert_int_eq(a.access, MX_ACCESS_ALL);
	mx_account_free(&a);
}
END_TEST

/* mx_account_apply_change: a password replaces a password file and the
 * other way round; the id guard; nothing else moves. */
START_TEST(test_apply_change)
{
	struct mx_account a = {0};
	struct mx_account_change pw = {.password = "s3cret", .disabled = -1};
	struct mx_account_change file = {.password_file = "/pw", .disabled = 1};
	struct mx_account_change other = {.id = 8, .display_name = "X",
					  .disabled = -1};
	struct mx_error e;

	a.id = 7;
	a.password_file = strdup("/old");
	ck_assert_int_eq(mx_account_apply_change(&a, &pw, &e), MX_OK);
	ck_assert_str_eq(a.password, "s3cret");
	ck_assert_ptr_null(a.password_file);
	ck_assert(!a.disabled);
	ck_assert_int_eq(mx_account_apply_change(&a, &file, &e), MX_OK);
	ck_assert_ptr_null(a.password);
	ck_assert_str_eq(a.password_file, "/pw");
	ck_assert(a.disabled);
	ck_assert_int_eq(mx_account_apply_change(&a, &other, &e),
			 MX_ERR_NOTFOUND);
	ck_assert_ptr_null(a.display_name);
	mx_account_free(&a);
}
END_TEST

/* What a provider preset fills in, and what it leaves to the caller. */
START_TEST(test_preset_fill)
{
	struct mx_account_params p = {.name = "g"};
	struct mx_account_settings s = {0};
	struct mx_preset_fill f;
	struct mx_error e;

	ck_assert_int_eq(mx_account_preset_fill("nosuch", "a@b.test", false,
						&p, &s, &f, &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_account_preset_fill("fastmail", "nodomain", false,
						&p, &s, &f, &e), MX_ERR_INVAL);
	/* gmail takes only OAuth2: no refresh token is refused, unless the
	 * browser flow is to bring one */
	ck_assert_int_eq(mx_account_preset_fill("gmail", "a@gmail.com", false,
						&p, &s, &f, &e), MX_ERR_INVAL);
	ck_assert_ptr_null(p.imap_url);
	ck_assert_int_eq(mx_account_preset_fill("gmail", "a@corp.test", true,
						&p, &s, &f, &e), MX_OK);
	ck_assert_str_eq(p.imap_url, "imaps://a@corp.test@imap.gmail.com:993");
	ck_assert_str_eq(s.smtp_url, "smtps://a@corp.test@smtp.gmail.com:465");
	ck_assert_str_eq(s.daily_limit, "2000"); /* Workspace */
	ck_assert_str_eq(s.saves_sent, "yes");
	ck_assert_str_eq(s.provider, "gmail");
	ck_assert_str_eq(p.oauth_token_url, "https://oauth2.googleapis.com/token");
	mx_preset_fill_free(&f);
	/* given values win; a password account gets no token URL */
	memset(&p, 0, sizeof(p));
	memset(&s, 0, sizeof(s));
	p.imap_url = "imaps://u@127.0.0.1:1993";
	s.daily_limit = "5";
	ck_assert_int_eq(mx_account_preset_fill("generic", "u@example.test",
						false, &p, &s, &f, &e), MX_OK);
	ck_assert_str_eq(p.imap_url, "imaps://u@127.0.0.1:1993");
	ck_assert_str_eq(s.smtp_url, "smtp://u@example.test@smtp.example.test:587");
	ck_assert_str_eq(s.daily_limit, "5");
	ck_assert_ptr_null(p.oauth_token_url);
	mx_preset_fill_free(&f);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("account");
	TCase *tc = tcase_create("url");
	TCase *ts = tcase_create("store");
	SRunner *sr;
	int nf;

	tcase_add_loop_test(tc, test_url_table, 0,
			    (int)MX_ARRAY_SIZE(url_cases));
	tcase_add_test(tc, test_url_reuse);
	tcase_add_test(tc, test_url_port_digits_only);
	tcase_add_test(tc, test_url_user_control_chars);
	tcase_add_test(tc, test_url_password_in_userinfo);
	tcase_add_test(tc, test_url_proto);
	tcase_add_test(tc, test_smtp_url);
	tcase_add_test(tc, test_settings);
	tcase_add_test(tc, test_settings_allow_set);
	tcase_add_test(tc, test_apply_change);
	tcase_add_test(tc, test_preset_fill);
	tcase_add_test(tc, test_set_incoming);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(ts, setup, teardown);
	tcase_add_test(ts, test_add_names);
	tcase_add_test(ts, test_list_json_no_password);
	tcase_add_test(ts, test_add_non_utf8_kept_or_refused);
	tcase_add_test(ts, test_display_name_controls);
	tcase_add_test(ts, test_token_url_rule);
	tcase_add_test(ts, test_relative_files_made_absolute);
	tcase_add_test(ts, test_removed_account_generation);
	tcase_add_test(ts, test_oauth_flow_records);
	tcase_add_test(ts, test_purge_leaves_nothing);
	tcase_add_test(ts, test_kept_mail_reattach_and_purge);
	tcase_add_test(ts, test_sync_batch_limits);
	suite_add_tcase(s, ts);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
