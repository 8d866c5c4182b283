/*
 * Unit tests of the MIME module: encoded words, charsets, RFC 2231
 * parameters, addresses, structure, broken input, identity, dates and
 * subjects.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "mime/mime_int.h"

/* Checks every string a parse produced is valid UTF-8. */
static void check_parsed_utf8(const struct mx_parsed *p, size_t len)
{
	const struct mx_addr_list *lists[] = {
		&p->from, &p->sender, &p->reply_to, &p->to, &p->cc, &p->bcc,
	};
	size_t i, j;

#define U(s) ck_assert((s) == NULL || mx_utf8_valid((s), strlen(s)))
	U(p->message_id);
	U(p->in_reply_to);
	U(p->subject);
	U(p->snippet);
	U(p->error);
	for (i = 0; i < p->nreferences; i++)
		U(p->references[i]);
	for (i = 0; i < MX_ARRAY_SIZE(lists); i++) {
		for (j = 0; j < lists[i]->n; j++) {
			U(lists[i]->v[j].name);
			U(lists[i]->v[j].email);
		}
	}
	for (i = 0; i < p->nparts; i++) {
		U(p->parts[i].part_id);
		U(p->parts[i].content_type);
		U(p->parts[i].charset);
		U(p->parts[i].filename);
		U(p->parts[i].content_id);
		U(p->parts[i].disposition);
		ck_assert_ptr_nonnull(p->parts[i].part_id);
		ck_assert_ptr_nonnull(p->parts[i].content_type);
		ck_assert_uint_le(p->parts[i].size, len);
	}
#undef U
	ck_assert(p->flags & MX_PARSED_BROKEN ? p->error != NULL :
						 p->error == NULL);
}

static void parse(const char *raw, size_t len, struct mx_parsed *p)
{
	struct mx_error err;

	ck_assert_int_eq(mx_mime_parse(raw, len, p, &err), MX_OK);
	check_parsed_utf8(p, len);
}

static void parse_str(const char *raw, struct mx_parsed *p)
{
	parse(raw, strlen(raw), p);
}

/* Decodes a header value and compares with EXPECT. */
static void dec_eq(const char *in, const char *expect)
{
	char *s = mx_mime_decode_header(in, strlen(in));

	ck_assert_ptr_nonnull(s);
	ck_assert_msg(mx_utf8_valid(s, strlen(s)), "invalid UTF-8 for %s", in);
	ck_assert_msg(strcmp(s, expect) == 0, "decode(%s) = \"%s\", want \"%s\"",
		      in, s, expect);
	free(s);
}

START_TEST(test_encoded_words)
{
	dec_eq("=?ISO-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème");
	dec_eq("=?utf-8?B?w5xiZXJncsO2w59lIPCfmIA=?=", "Übergröße 😀");
	dec_eq("=?utf-8?q?a?= =?utf-8?q?b?=", "ab");
	dec_eq("=?utf-8?q?a?=\r\n =?utf-8?q?b?=", "ab");
	/* A character split across two words is joined before decoding. */
	dec_eq("=?UTF-8?B?ww==?= =?UTF-8?B?qcOo?=", "éè");
	dec_eq("x =?utf-8?q?a?= y", "x a y");
	dec_eq("=?utf-8?q?a?= b =?utf-8?q?c?=", "a b c");
	dec_eq("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore");
	dec_eq("=?iso-8859-1?q?a?= =?utf-8?q?=C3=A9?=", "aé");
	/* Malformed words stay text. */
	dec_eq("=?utf-8?X?abc?=", "=?utf-8?X?abc?=");
	dec_eq("=?utf-8?Q?unterminated", "=?utf-8?Q?unterminated");
	dec_eq("=??Q?x?=", "=??Q?x?=");
	dec_eq("=?utf-8?Q?=ZZ?=", "=ZZ");
	dec_eq("=?", "=?");
	dec_eq("", "");
	/* Unknown charset: bytes taken as UTF-8 or windows-1252. */
	dec_eq("=?x-nonesuch?Q?caf=E9?=", "café");
	dec_eq("=?NONE?B?VEVTVA==?=", "TEST");
	/* Raw 8-bit text: UTF-8 when valid, else windows-1252. */
	dec_eq("caf\xc3\xa9", "café");
	dec_eq("caf\xe9 \x93x\x94", "café “x”");
	dec_eq("a\r\n\tb", "a\tb");
	dec_eq("  padded  ", "padded");
}
END_TEST

START_TEST(test_encoded_word_charsets)
{
	dec_eq("=?ISO-2022-JP?B?GyRCRnxLXDhsJE43b0w+GyhC?=", "日本語の件名");
	dec_eq("=?KOI8-R?Q?=F0=D2=C9=D7=C5=D4_=CD=C9=D2?=", "Привет мир");
	dec_eq("=?Big5?B?pKSk5atI?=", "中文信");
	dec_eq("=?GB2312?B?1tDOxNPKvP4=?=", "中文邮件");
	dec_eq("=?windows-1252?Q?=93Smart=94_=96_quotes?=",
	       "“Smart” – quotes");
	dec_eq("=?utf-7?Q?Hi_+AOk-?=", "Hi é");
	dec_eq("=?ks_c_5601-1987?B?x9GxucfR?=", "한국한");
}
END_TEST

static const struct {
	const char *charset;
	const char *in;
	size_t len;
	const char *out;
} cs_table[] = {
	{"us-ascii", "\x68\x65\x6c\x6c\x6f", 5, "\x68\x65\x6c\x6c\x6f"},
	{"iso-8859-1", "\x63\x61\x66\xe9\x20\xfc\x62\x65\x72", 9, "\x63\x61\x66\xc3\xa9\x20\xc3\xbc\x62\x65\x72"},
	{"latin1", "\xc5\x6e\x67\x73\x74\x72\xf6\x6d", 8, "\xc3\x85\x6e\x67\x73\x74\x72\xc3\xb6\x6d"},
	{"iso-8859-2", "\xaf\xf3\xb3\x77", 4, "\xc5\xbb\xc3\xb3\xc5\x82\x77"},
	{"iso-8859-5", "\xbc\xd8\xe0", 3, "\xd0\x9c\xd0\xb8\xd1\x80"},
	{"iso-8859-7", "\xc1\xe8\xde\xed\xe1", 5, "\xce\x91\xce\xb8\xce\xae\xce\xbd\xce\xb1"},
	{"iso-8859-15", "\xa4\x35", 2, "\xe2\x82\xac\x35"},
	{"windows-1250", "\x8a\x6b\x6f\x64\x61", 5, "\xc5\xa0\x6b\x6f\x64\x61"},
	{"windows-1251", "\xcf\xf0\xe8\xe2\xe5\xf2", 6, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"},
	{"windows-1252", "\x93\x71\x75\x6f\x74\x65\x64\x94\x20\x96\x20\x80", 12, "\xe2\x80\x9c\x71\x75\x6f\x74\x65\x64\xe2\x80\x9d\x20\xe2\x80\x93\x20\xe2\x82\xac"},
	{"cp1252", "\x80", 1, "\xe2\x82\xac"},
	{"windows-1253", "\xc1\xe8", 2, "\xce\x91\xce\xb8"},
	{"windows-1254", "\xf0\xdd", 2, "\xc4\x9f\xc4\xb0"},
	{"windows-1255", "\xf9\xec\xe5\xed", 4, "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d"},
	{"windows-1256", "\xd3\xe1\xc7\xe3", 4, "\xd8\xb3\xd9\x84\xd8\xa7\xd9\x85"},
	{"windows-1257", "\xe2\xe8", 2, "\xc4\x81\xc4\x8d"},
	{"windows-1258", "\xf0\xf5", 2, "\xc4\x91\xc6\xa1"},
	{"koi8-r", "\xf0\xd2\xc9\xd7\xc5\xd4", 6, "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"},
	{"KOI8-U", "\xb7\xd6\xc1\xcb", 4, "\xd0\x87\xd0\xb6\xd0\xb0\xd0\xba"},
	{"iso-2022-jp", "\x1b\x24\x42\x46\x7c\x4b\x5c\x38\x6c\x1b\x28\x42", 12, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
	{"shift_jis", "\x93\xfa\x96\x7b\x8c\xea", 6, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
	{"euc-jp", "\xc6\xfc\xcb\xdc\xb8\xec", 6, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"},
	{"gb2312", "\xd6\xd0\xce\xc4", 4, "\xe4\xb8\xad\xe6\x96\x87"},
	{"gbk", "\xd6\xd0\xce\xc4", 4, "\xe4\xb8\xad\xe6\x96\x87"},
	{"gb18030", "\xd6\xd0\xce\xc4\x94\x39\xfc\x36", 8, "\xe4\xb8\xad\xe6\x96\x87\xf0\x9f\x98\x80"},
	{"big5", "\xa4\xa4\xa4\xe5", 4, "\xe4\xb8\xad\xe6\x96\x87"},
	{"euc-kr", "\xc7\xd1\xb1\xb9\xbe\xee", 6, "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4"},
	{"ks_c_5601-1987", "\xc7\xd1\xb1\xb9\xbe\xee", 6, "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4"},
	{"utf-7", "\x48\x69\x20\x2b\x41\x4f\x6c\x4f\x4c\x51\x2d", 11, "\x48\x69\x20\xc3\xa9\xe4\xb8\xad"},
	{"unicode-1-1-utf-7", "\x2b\x41\x4f\x6b\x2d", 5, "\xc3\xa9"},
	{"utf-16", "\xfe\xff\x00\x41\x00\xe9", 6, "\x41\xc3\xa9"},
	{"utf-16le", "\x41\x00\xe9\x00", 4, "\x41\xc3\xa9"},
	{"utf-16be", "\x00\x41\x00\xe9", 4, "\x41\xc3\xa9"},
	{"utf-8", "\xc3\xa9\xf0\x9f\x98\x80", 6, "\xc3\xa9\xf0\x9f\x98\x80"},
	{"utf8", "\xc3\xa9", 2, "\xc3\xa9"},
	{"\"UTF-8\"", "\xc3\xa9", 2, "\xc3\xa9"},
};

START_TEST(test_charset_table)
{
	size_t i;
	char *out;

	for (i = 0; i < MX_ARRAY_SIZE(cs_table); i++) {
		ck_assert_int_eq(mx_charset_to_utf8(cs_table[i].charset,
						    cs_table[i].in,
						    cs_table[i].len, &out),
				 MX_OK);
		ck_assert_msg(strcmp(out, cs_table[i].out) == 0,
			      "%s: got \"%s\"", cs_table[i].charset, out);
		ck_assert(mx_utf8_valid(out, strlen(out)));
		free(out);
	}
}
END_TEST

START_TEST(test_charset_invalid)
{
	static const struct {
		const char *charset;
		const char *in;
		size_t len;
		const char *out;
	} bad[] = {
		/* Invalid bytes become U+FFFD; nothing is dropped. */
		{"utf-8", "a\xff" "b", 3, "a\xef\xbf\xbd" "b"},
		{"utf-8", "\xc3", 1, "\xef\xbf\xbd"},
		{"utf-8", "a\0b", 3, "a\xef\xbf\xbd" "b"},
		{"utf-8", "\xed\xa0\x80", 3,
		 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
		{"shift_jis", "\x93\xfa\x96", 3, "日\xef\xbf\xbd"},
		{"euc-kr", "\xc7", 1, "\xef\xbf\xbd"},
		{"utf-16le", "A\0B", 3, "A\xef\xbf\xbd"},
		{"utf-16be", "\xd8\x00\x00" "A", 4, NULL},
		{"windows-1252", "\x81", 1, "\xef\xbf\xbd"},
		{"us-ascii", "caf\xe9", 4, "café"},
		{"iso-2022-jp", "\x1b$B\xff\xff\x1b(B", 8, NULL},
		{"big5", "\xff\xff", 2, NULL},
		{"gb2312", "\xff", 1, NULL},
	};
	size_t i;
	char *out;

	for (i = 0; i < MX_ARRAY_SIZE(bad); i++) {
		ck_assert_int_eq(mx_charset_to_utf8(bad[i].charset, bad[i].in,
						    bad[i].len, &out),
				 MX_OK);
		ck_assert_msg(mx_utf8_valid(out, strlen(out)), "%s",
			      bad[i].charset);
		if (bad[i].out)
			ck_assert_msg(strcmp(out, bad[i].out) == 0,
				      "%zu %s: got \"%s\"", i, bad[i].charset,
				      out);
		else
			ck_assert_msg(strstr(out, "\xef\xbf\xbd") != NULL,
				      "%s: no U+FFFD in \"%s\"", bad[i].charset,
				      out);
		free(out);
	}
	/* Unknown charsets: an error code, but still a usable result. */
	ck_assert_int_eq(mx_charset_to_utf8("x-klingon", "caf\xe9", 4, &out),
			 MX_ERR_CHARSET);
	ck_assert_str_eq(out, "café");
	free(out);
	ck_assert_int_eq(mx_charset_to_utf8("../../etc/passwd", "ok", 2, &out),
			 MX_ERR_CHARSET);
	ck_assert_str_eq(out, "ok");
	free(out);
	ck_assert_int_eq(mx_charset_to_utf8("unknown-8bit", "\xc3\xa9", 2,
					    &out), MX_ERR_CHARSET);
	ck_assert_str_eq(out, "é");
	free(out);
}
END_TEST

/* Finds a part by section number. */
static const struct mx_part *part(const struct mx_parsed *p, const char *id)
{
	size_t i;

	for (i = 0; i < p->nparts; i++)
		if (strcmp(p->parts[i].part_id, id) == 0)
			return &p->parts[i];
	ck_abort_msg("no part %s", id);
	return NULL;
}

START_TEST(test_rfc2231)
{
	static const char msg[] =
		"From: a@example.com\r\n"
		"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
		"\r\n"
		"--b1\r\n"
		"Content-Type: application/octet-stream\r\n"
		"Content-Disposition: attachment;\r\n"
		" filename*0*=utf-8''%E6%97%A5%E6%9C%AC;\r\n"
		" filename*1*=%E8%AA%9E.txt\r\n"
		"\r\n"
		"x\r\n"
		"--b1\r\n"
		"Content-Type: text/plain; name*=iso-8859-1'fr'caf%E9.txt\r\n"
		"\r\n"
		"y\r\n"
		"--b1\r\n"
		"Content-Type: application/pdf\r\n"
		"Content-Disposition: attachment; filename*0=\"long \";\r\n"
		" filename*1=\"name.pdf\"\r\n"
		"\r\n"
		"z\r\n"
		"--b1\r\n"
		"Content-Type: application/pdf; name=\"=?utf-8?B?w6kucGRm?=\"\r\n"
		"\r\n"
		"w\r\n"
		"--b1\r\n"
		"Content-Type: application/pdf\r\n"
		"Content-Disposition: attachment; filename=\"na\\\"me.pdf\"\r\n"
		"\r\n"
		"v\r\n"
		"--b1--\r\n";
	struct mx_parsed p;

	parse_str(msg, &p);
	ck_assert_uint_eq(p.nparts, 5);
	ck_assert_str_eq(part(&p, "1")->filename, "日本語.txt");
	ck_assert_str_eq(part(&p, "2")->filename, "café.txt");
	ck_assert_str_eq(part(&p, "3")->filename, "long name.pdf");
	ck_assert_str_eq(part(&p, "4")->filename, "é.pdf");
	ck_assert_str_eq(part(&p, "5")->filename, "na\"me.pdf");
	ck_assert(part(&p, "1")->attachment);
	ck_assert_uint_eq(p.flags & MX_PARSED_BROKEN, 0);
	mx_parsed_free(&p);
}
END_TEST

/* A boundary given with RFC 2231 syntax: libetpan cannot split it. */
START_TEST(test_rfc2231_boundary)
{
	static const char msg[] =
		"Content-Type: multipart/mixed;\n"
		"\tboundary*=\"us-ascii''XyZ\"\n"
		"\n"
		"--XyZ\n"
		"Content-Type: text/plain\n"
		"\n"
		"one\n"
		"--XyZ\n"
		"Content-Type: text/html\n"
		"\n"
		"<b>two</b>\n"
		"--XyZ--\n";
	struct mx_parsed p;

	parse_str(msg, &p);
	ck_assert_uint_eq(p.nparts, 2);
	ck_assert_str_eq(p.parts[0].content_type, "text/plain");
	ck_assert_str_eq(p.parts[1].content_type, "text/html");
	ck_assert_str_eq(p.parts[1].part_id, "2");
	ck_assert_uint_eq(p.parts[0].size, 3);
	ck_assert_str_eq(p.snippet, "one");
	mx_parsed_free(&p);
}
END_TEST

START_TEST(test_addr_normalize)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{"  <John.Doe@Example.COM>  ", "John.Doe@example.com"},
		{"a@xn--mnchen-3ya.de", "a@münchen.de"},
		{"a@XN--MNCHEN-3YA.DE", "a@münchen.de"},
		{"a@MÜNCHEN.DE", "a@münchen.de"},
		{"a@xn--bcher-kva.example", "a@bücher.example"},
		{"a@xn--fsqu00a.xn--55qx5d", "a@例子.公司"},
		{"a@xn--invalid-!!", "a@xn--invalid-!!"},
		{"\"john doe\"@Example.org", "\"john doe\"@example.org"},
		{"x@y@Z.com", "x@y@z.com"},
		/* an IDN label that decodes to controls, a dot or an '@'
		 * stays as written: the result must read back the same */
		{"a@Client.xn--EXAMPL{n-3faya.de", "a@client.xn--exampl{n-3faya.de"},
		{"a@xn--@x-uia.example", "a@xn--@x-uia.example"},
		{"a@xn---zfa.example", "a@xn---zfa.example"},
		{"a@xn--x-zfa0037a.example", "a@xn--x-zfa0037a.example"},
		{"a@xn--a-uga.example", "a@óa.example"},
	};
	size_t i;
	char *s, *again;

	for (i = 0; i < MX_ARRAY_SIZE(t); i++) {
		s = mx_addr_normalize(t[i].in);
		ck_assert_ptr_nonnull(s);
		ck_assert_msg(strcmp(s, t[i].out) == 0, "%s -> %s", t[i].in, s);
		/* normalizing is idempotent */
		again = mx_addr_normalize(s);
		ck_assert_msg(again && strcmp(again, s) == 0, "%s -> %s -> %s",
			      t[i].in, s, again ? again : "(null)");
		free(again);
		free(s);
	}
	ck_assert_ptr_null(mx_addr_normalize("no-at-sign"));
	ck_assert_ptr_null(mx_addr_normalize(""));
	ck_assert_ptr_null(mx_addr_normalize(NULL));
}
END_TEST

static void addr_eq(const struct mx_addr_list *l, size_t i, const char *name,
		    const char *email)
{
	ck_assert_uint_lt(i, l->n);
	if (name == NULL)
		ck_assert_ptr_null(l->v[i].name);
	else
		ck_assert_str_eq(l->v[i].name, name);
	if (email == NULL)
		ck_assert_ptr_null(l->v[i].email);
	else
		ck_assert_str_eq(l->v[i].email, email);
}

START_TEST(test_addr_lists)
{
	static const char msg[] =
		"From: =?utf-8?q?J=C3=BCrgen?= Smith <JS@Example.COM>\n"
		"Sender: sender@EXAMPLE.net (The Sender)\n"
		"Reply-To: \"Doe, John\" <john@xn--mnchen-3ya.de>, plain@x.org\n"
		"To: undisclosed-recipients:;\n"
		"Cc: Team: a@b.example, \"Q. User\" <q@b.example>;, last@c.example,\n"
		" broken entry without address, <@route,@r2:real@host.example>\n"
		"Bcc: \"very.(),:;<>[]\\\".VERY.\\\"very@\\\\ \\\"very\\\".unusual\"@strange.EXAMPLE.com\n"
		"\n"
		"body\n";
	struct mx_parsed p;

	parse_str(msg, &p);
	ck_assert_uint_eq(p.from.n, 1);
	addr_eq(&p.from, 0, "Jürgen Smith", "JS@example.com");
	addr_eq(&p.sender, 0, "The Sender", "sender@example.net");
	ck_assert_uint_eq(p.reply_to.n, 2);
	addr_eq(&p.reply_to, 0, "Doe, John", "john@münchen.de");
	addr_eq(&p.reply_to, 1, NULL, "plain@x.org");
	ck_assert_uint_eq(p.to.n, 1);
	addr_eq(&p.to, 0, "undisclosed-recipients", NULL);
	ck_assert_uint_eq(p.cc.n, 6);
	addr_eq(&p.cc, 0, "Team", NULL);
	addr_eq(&p.cc, 1, NULL, "a@b.example");
	addr_eq(&p.cc, 2, "Q. User", "q@b.example");
	addr_eq(&p.cc, 3, NULL, "last@c.example");
	addr_eq(&p.cc, 4, "broken entry without address", NULL);
	addr_eq(&p.cc, 5, NULL, "real@host.example");
	ck_assert_uint_eq(p.bcc.n, 1);
	addr_eq(&p.bcc, 0, NULL,
		"\"very.(),:;<>[]\\\".VERY.\\\"very@\\\\ \\\"very\\\".unusual\"@strange.example.com");
	mx_parsed_free(&p);
}
END_TEST

/* RFC 5322 appendix A: every address example, including A.5's comments
 * inside addr-specs and A.6's obsolete routes and spacing. */
START_TEST(test_addr_rfc5322_appendix_a)
{
	static const char msg[] =
		/* A.1.2 */
		"From: \"Joe Q. Public\" <john.q.public@example.com>\n"
		"Reply-To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\n"
		"Sender: <boss@nil.test>\n"
		"Resent-To: x@y\n"
		/* A.5 */
		"To:A Group(Some people)\n"
		"     :Chris Jones <c@(Chris's host.)public.example>,\n"
		"         joe@example.org,\n"
		"  John <jdoe@one.test> (my dear friend); (the end of the group)\n"
		"Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;\n"
		/* A.6.1 */
		"Bcc: Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example\n"
		"\n"
		"body\n";
	static const char msg2[] =
		/* A.5 */
		"From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\n"
		/* A.6.3 */
		"To: John Doe <jdoe@machine(comment).  example>\n"
		"Cc: Mary Smith\n"
		"  \n"
		"     <mary@example.net>\n"
		/* A.1.2, A.1.3 */
		"Bcc: \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>, Undisclosed recipients:;\n"
		"Reply-To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\n"
		/* a quoted local part keeps its quotes; a '>' inside it or in a
		 * comment does not end the angle-addr */
		"Sender: <\"a>b\"@q.example (x>y)>\n"
		"\n"
		"body\n";
	struct mx_parsed p;

	parse_str(msg, &p);
	addr_eq(&p.from, 0, "Joe Q. Public", "john.q.public@example.com");
	ck_assert_uint_eq(p.reply_to.n, 3);
	addr_eq(&p.reply_to, 0, "Mary Smith", "mary@x.test");
	addr_eq(&p.reply_to, 1, NULL, "jdoe@example.org");
	addr_eq(&p.reply_to, 2, "Who?", "one@y.test");
	addr_eq(&p.sender, 0, NULL, "boss@nil.test");
	ck_assert_uint_eq(p.to.n, 4);
	addr_eq(&p.to, 0, "A Group", NULL);
	addr_eq(&p.to, 1, "Chris Jones", "c@public.example");
	addr_eq(&p.to, 2, NULL, "joe@example.org");
	addr_eq(&p.to, 3, "John", "jdoe@one.test");
	ck_assert_uint_eq(p.cc.n, 1);
	addr_eq(&p.cc, 0, "Hidden recipients", NULL);
	ck_assert_uint_eq(p.bcc.n, 2);
	addr_eq(&p.bcc, 0, "Mary Smith", "mary@example.net");
	addr_eq(&p.bcc, 1, NULL, "jdoe@test.example");
	mx_parsed_free(&p);

	parse_str(msg2, &p);
	addr_eq(&p.from, 0, "Pete", "pete@silly.test");
	addr_eq(&p.to, 0, "John Doe", "jdoe@machine.example");
	addr_eq(&p.cc, 0, "Mary Smith", "mary@example.net");
	ck_assert_uint_eq(p.bcc.n, 2);
	addr_eq(&p.bcc, 0, "Giant; \"Big\" Box", "sysservices@example.net");
	addr_eq(&p.bcc, 1, "Undisclosed recipients", NULL);
	ck_assert_uint_eq(p.reply_to.n, 4);
	addr_eq(&p.reply_to, 0, "A Group", NULL);
	addr_eq(&p.reply_to, 1, "Ed Jones", "c@a.test");
	addr_eq(&p.reply_to, 2, NULL, "joe@where.test");
	addr_eq(&p.reply_to, 3, "John", "jdoe@one.test");
	addr_eq(&p.sender, 0, NULL, "\"a>b\"@q.example");
	mx_parsed_free(&p);
}
END_TEST

/* MX_PARSED_BULK: list and automatic mail says so in its header. */
START_TEST(test_bulk_flag)
{
	static const char *const bulk[] = {
		"List-Id: Dev <dev.lists.example>\n",
		"List-Unsubscribe: <mailto:u@lists.example>\n",
		"Precedence: bulk\n",
		"Precedence:\n list\n",
		"Auto-Submitted: auto-replied\n",
	};
	static const char *const personal[] = {
		"", "Auto-Submitted: no\n", "Auto-Submitted: No (a person)\n",
		"Precedence: first-class\n", "X-List-Id: x\n",
	};
	char msg[256];
	struct mx_parsed p;

	for (size_t i = 0; i < sizeof(bulk) / sizeof(bulk[0]); i++) {
		snprintf(msg, sizeof(msg), "From: a@b.example\n%s\nbody\n",
			 bulk[i]);
		parse_str(msg, &p);
		ck_assert_msg(p.flags & MX_PARSED_BULK, "not bulk: %s", bulk[i]);
		mx_parsed_free(&p);
	}
	for (size_t i = 0; i < sizeof(personal) / sizeof(personal[0]); i++) {
		snprintf(msg, sizeof(msg), "From: a@b.example\n%s\nbody\n",
			 personal[i]);
		parse_str(msg, &p);
		ck_assert_msg(!(p.flags & MX_PARSED_BULK), "bulk: %s",
			      personal[i]);
		mx_parsed_free(&p);
	}
}
END_TEST

START_TEST(test_addr_list_truncated)
{
	struct mx_buf b = {0};
	struct mx_parsed p;

	/* Exactly the limit, with a trailing comma: whole. */
	mx_buf_puts(&b, "From: a@x.example\nTo: ");
	for (int i = 0; i < MX_MAX_ADDRS; i++)
		mx_buf_printf(&b, "u%d@x.example, ", i);
	mx_buf_puts(&b, "\nSubject: s\n\nbody\n");
	parse(b.data, b.len, &p);
	ck_assert_uint_eq(p.to.n, MX_MAX_ADDRS);
	ck_assert(!p.to.truncated);
	ck_assert_uint_eq(p.flags & MX_PARSED_ADDRS_TRUNCATED, 0);
	mx_parsed_free(&p);

	/* One more (in Cc): cut, and the message says so. */
	mx_buf_reset(&b);
	mx_buf_puts(&b, "From: a@x.example\nCc: ");
	for (int i = 0; i <= MX_MAX_ADDRS; i++)
		mx_buf_printf(&b, "%su%d@x.example", i ? ", " : "", i);
	mx_buf_puts(&b, "\nSubject: s\n\nbody\n");
	parse(b.data, b.len, &p);
	ck_assert_uint_eq(p.cc.n, MX_MAX_ADDRS);
	ck_assert(p.cc.truncated);
	ck_assert(!p.to.truncated);
	ck_assert_uint_ne(p.flags & MX_PARSED_ADDRS_TRUNCATED, 0);
	ck_assert_uint_eq(p.flags & MX_PARSED_BROKEN, 0);
	mx_parsed_free(&p);
	mx_buf_free(&b);
}
END_TEST

static const char structured[] =
	"From: Alice <alice@example.com>\r\n"
	"To: bob@example.com\r\n"
	"Subject: =?utf-8?q?Structure_=E2=9C=93?=\r\n"
	"Date: Tue, 1 Jul 2003 10:52:37 +0200\r\n"
	"Message-ID: <m1@example.com>\r\n"
	"MIME-Version: 1.0\r\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
	"\r\n"
	"preamble\r\n"
	"--outer\r\n"
	"Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
	"\r\n"
	"--alt\r\n"
	"Content-Type: text/plain; charset=ISO-8859-1\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"Caf=E9   au\r\n"
	"  lait =\r\n"
	"soft\r\n"
	"--alt\r\n"
	"Content-Type: multipart/related; boundary=\"rel\"\r\n"
	"\r\n"
	"--rel\r\n"
	"Content-Type: text/html; charset=utf-8\r\n"
	"\r\n"
	"<p>Caf&eacute; <img src=\"cid:img1@x\"></p>\r\n"
	"--rel\r\n"
	"Content-Type: image/png\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-ID: <img1@x>\r\n"
	"Content-Disposition: inline\r\n"
	"\r\n"
	"iVBORw0KGgo=\r\n"
	"--rel--\r\n"
	"--alt--\r\n"
	"--outer\r\n"
	"Content-Type: APPLICATION/PDF; name=\"report.pdf\"\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"Content-Disposition: attachment\r\n"
	"\r\n"
	"JVBERi0xLjQK\r\n"
	"--outer\r\n"
	"Content-Type: text/calendar; method=REQUEST; charset=utf-8\r\n"
	"\r\n"
	"BEGIN:VCALENDAR\r\n"
	"END:VCALENDAR\r\n"
	"--outer\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: inner\r\n"
	"Content-Type: multipart/mixed; boundary=\"in\"\r\n"
	"\r\n"
	"--in\r\n"
	"\r\n"
	"inner text\r\n"
	"--in--\r\n"
	"--outer--\r\n"
	"epilogue\r\n";

START_TEST(test_structure)
{
	struct mx_parsed p;
	const struct mx_part *q;

	parse(structured, sizeof(structured) - 1, &p);
	ck_assert_uint_eq(p.flags, MX_PARSED_CALENDAR);
	ck_assert_str_eq(p.subject, "Structure ✓");
	ck_assert_str_eq(p.message_id, "m1@example.com");
	ck_assert_int_eq(p.date, 1057049557);
	ck_assert_uint_eq(p.nparts, 6);
	q = &p.parts[0];
	ck_assert_str_eq(q->part_id, "1.1");
	ck_assert_str_eq(q->content_type, "text/plain");
	ck_assert_str_eq(q->charset, "iso-8859-1");
	ck_assert_uint_eq(q->size, strlen("Caf\xe9   au\r\n  lait soft"));
	ck_assert(!q->attachment);
	q = &p.parts[1];
	ck_assert_str_eq(q->part_id, "1.2.1");
	ck_assert_str_eq(q->content_type, "text/html");
	q = &p.parts[2];
	ck_assert_str_eq(q->part_id, "1.2.2");
	ck_assert_str_eq(q->content_type, "image/png");
	ck_assert_str_eq(q->content_id, "img1@x");
	ck_assert_str_eq(q->disposition, "inline");
	ck_assert_uint_eq(q->size, 8);
	ck_assert(!q->attachment);
	q = &p.parts[3];
	ck_assert_str_eq(q->part_id, "2");
	ck_assert_str_eq(q->content_type, "application/pdf");
	ck_assert_str_eq(q->filename, "report.pdf");
	ck_assert_str_eq(q->disposition, "attachment");
	ck_assert_uint_eq(q->size, 9);
	ck_assert(q->attachment);
	q = &p.parts[4];
	ck_assert_str_eq(q->part_id, "3");
	ck_assert_str_eq(q->content_type, "text/calendar");
	ck_assert(!q->attachment);
	/* An attached message is one leaf; its parts are not listed. */
	q = &p.parts[5];
	ck_assert_str_eq(q->part_id, "4");
	ck_assert_str_eq(q->content_type, "message/rfc822");
	ck_assert_str_eq(p.snippet, "Café au lait soft");
	mx_parsed_free(&p);
}
END_TEST

START_TEST(test_bodies)
{
	char *text, *html;

	ck_assert_int_eq(mx_mime_bodies(structured, sizeof(structured) - 1,
					&text, &html, NULL), MX_OK);
	ck_assert_str_eq(text, "Café   au\r\n  lait soft");
	ck_assert_str_eq(html, "<p>Caf&eacute; <img src=\"cid:img1@x\"></p>");
	free(text);
	free(html);
	ck_assert_int_eq(mx_mime_bodies("Subject: x\n\nplain", 17, &text,
					&html, NULL), MX_OK);
	ck_assert_str_eq(text, "plain");
	ck_assert_ptr_null(html);
	free(text);
}
END_TEST

START_TEST(test_snippet_html)
{
	struct mx_buf b = {0};
	struct mx_parsed p;
	size_t i, chars;
	int k;

	parse_str("Content-Type: text/html; charset=windows-1252\n\n"
		  "<html><head><title>T</title><style>p{}</style></head>"
		  "<body><!-- c --><script>var x;</script>"
		  "<p>Hello&nbsp;&amp;\n\n <b>w\x92orld</b> &#233;&#x263A;</p>",
		  &p);
	ck_assert_str_eq(p.snippet, "Hello & w’orld é☺");
	mx_parsed_free(&p);
	/* The cut is on a character boundary, at 200 characters. */
	mx_buf_puts(&b, "Content-Type: text/plain; charset=utf-8\n\n");
	for (k = 0; k < 300; k++)
		mx_buf_puts(&b, "é ");
	parse(b.data, b.len, &p);
	for (i = 0, chars = 0; p.snippet[i]; i++)
		if (((unsigned char)p.snippet[i] & 0xc0) != 0x80)
			chars++;
	/* No trailing blank: 199 or 200 characters. */
	ck_assert_uint_le(chars, 200);
	ck_assert_uint_ge(chars, 199);
	mx_parsed_free(&p);
	mx_buf_free(&b);
}
END_TEST

START_TEST(test_broken_inputs)
{
	static const char *const broken[] = {
		/* boundary declared, never used */
		"Content-Type: multipart/mixed; boundary=zz\n\nno parts here\n",
		/* no boundary parameter */
		"Content-Type: multipart/mixed\n\n--zz\n\ntext\n--zz--\n",
		/* closing boundary missing */
		"Content-Type: multipart/mixed; boundary=zz\n\n--zz\n\nx\n",
		/* no header/body separator */
		"From: a@b.c\nSubject: s\nthis is body text\nmore\n",
		/* header only junk */
		"\x01\x02\x03\xff\xfe garbage",
		/* NUL bytes */
		"Subject: a\0b\nFrom: x\0@y\n\nbody\0body\n",
		/* bare CR and mixed line ends */
		"Subject: a\rb\r\nFrom: x@y\n\r\n\rbody\r\r\n",
		"Content-Type: multipart/mixed; boundary=\"\"\n\n--\n\nx\n",
		"Content-Type: multipart/mixed; boundary=a\n\n--a\n"
		"Content-Type: multipart/mixed; boundary=a\n\n--a\n--a\n",
		"Content-Type: message/rfc822\n\n",
		"Content-Type: multipart/digest; boundary=d\n\n--d\n\n"
		"Subject: in digest\n\nx\n--d--\n",
		":\n:\n: \n",
		"",
		"\n",
		"From ",
		"From x\n",
	};
	static const size_t lens[] = {0, 0, 0, 0, 0, 35, 0};
	struct mx_parsed p;
	size_t i, len;

	for (i = 0; i < MX_ARRAY_SIZE(broken); i++) {
		len = i < MX_ARRAY_SIZE(lens) && lens[i] ? lens[i] :
							    strlen(broken[i]);
		parse(broken[i], len, &p);
		if (i < 6)
			ck_assert_msg(p.flags & MX_PARSED_BROKEN,
				      "case %zu not flagged", i);
		ck_assert_uint_ge(p.nparts, 1);
		mx_parsed_free(&p);
	}
	parse(NULL, 0, &p);
	mx_parsed_free(&p);
}
END_TEST

START_TEST(test_pathological)
{
	struct mx_buf b = {0};
	struct mx_parsed p;
	int k;

	/* Deep nesting of multiparts. */
	for (k = 0; k < 500; k++)
		mx_buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\n"
			      "\n--b%d\n", k, k);
	mx_buf_puts(&b, "\nleaf\n");
	parse(b.data, b.len, &p);
	ck_assert(p.flags & MX_PARSED_BROKEN);
	mx_parsed_free(&p);
	/* Deep nesting of messages. */
	mx_buf_reset(&b);
	for (k = 0; k < 5000; k++)
		mx_buf_puts(&b, "Content-Type: message/rfc822\n\n");
	parse(b.data, b.len, &p);
	mx_parsed_free(&p);
	/* Many header fields. */
	mx_buf_reset(&b);
	for (k = 0; k < 20000; k++)
		mx_buf_printf(&b, "X-H%d: v\n", k);
	mx_buf_puts(&b, "Subject: late\n\nbody\n");
	parse(b.data, b.len, &p);
	ck_assert(p.flags & MX_PARSED_BROKEN);
	mx_parsed_free(&p);
	/* Very long lines, in the header and the body. */
	mx_buf_reset(&b);
	mx_buf_puts(&b, "Subject: ");
	for (k = 0; k < 100000; k++)
		mx_buf_puts(&b, "=?");
	mx_buf_puts(&b, "\nTo: ");
	for (k = 0; k < 20000; k++)
		mx_buf_puts(&b, "a@b, ");
	mx_buf_puts(&b, "\n\n");
	for (k = 0; k < 100000; k++)
		mx_buf_puts(&b, "x");
	parse(b.data, b.len, &p);
	ck_assert_ptr_nonnull(p.snippet);
	mx_parsed_free(&p);
	mx_buf_free(&b);
}
END_TEST

static bool same_parts(const struct mx_parsed *a, const struct mx_parsed *b)
{
	size_t i;

	if (a->nparts != b->nparts)
		return false;
	for (i = 0; i < a->nparts; i++)
		if (strcmp(a->parts[i].part_id, b->parts[i].part_id) ||
		    strcmp(a->parts[i].content_type,
			   b->parts[i].content_type) ||
		    a->parts[i].size != b->parts[i].size)
			return false;
	return true;
}

/* Every prefix of a multipart message parses; the whole one completely. */
START_TEST(test_prefixes)
{
	size_t len = sizeof(structured) - 1, n;
	struct mx_parsed full, p;
	char *copy;

	parse(structured, len, &full);
	for (n = 0; n <= len; n++) {
		/* An exact-size heap copy lets ASan see any overread. */
		copy = malloc(n ? n : 1);
		memcpy(copy, structured, n);
		parse(copy, n, &p);
		ck_assert_uint_ge(p.nparts, 1);
		if (n == len)
			ck_assert(same_parts(&p, &full));
		mx_parsed_free(&p);
		free(copy);
	}
	mx_parsed_free(&full);
}
END_TEST

START_TEST(test_identity)
{
	static const char full[] =
		"From \"mbox\" line\r\n"
		"Received: from x\r\n"
		"Message-Id: <id1@example.com>\r\n"
		"Date: Tue, 1 Jul 2003\r\n"
		"  10:52:37 +0200\r\n"
		"From: Alice <alice@example.com>\r\n"
		"subject:   Hello there  \r\n"
		"To: bob@example.com,\r\n"
		"\tcarol@example.com\r\n"
		"Subject: second subject is ignored\r\n"
		"\r\n"
		"Subject: not a header\r\n";
	static const char fetched[] =
		"To: bob@example.com,\r\n"
		"\tcarol@example.com\r\n"
		"SUBJECT: Hello there\r\n"
		"From: Alice <alice@example.com>\r\n"
		"Message-Id: <id1@example.com>\r\n"
		"Date: Tue, 1 Jul 2003\r\n"
		"  10:52:37 +0200\r\n"
		"Subject: second subject is ignored\r\n"
		"\r\n";
	uint8_t a[32], b[32], c[32];
	struct mx_buf lf = {0};
	size_t i;

	mx_mime_identity(full, sizeof(full) - 1, a);
	mx_mime_identity(fetched, sizeof(fetched) - 1, b);
	ck_assert(memcmp(a, b, 32) == 0);
	/* The same with LF-only line ends. */
	for (i = 0; i < sizeof(full) - 1; i++)
		if (full[i] != '\r')
			mx_buf_append(&lf, full + i, 1);
	mx_mime_identity(lf.data, lf.len, c);
	ck_assert(memcmp(a, c, 32) == 0);
	/* Without the trailing empty line too. */
	mx_mime_identity(fetched, sizeof(fetched) - 3, c);
	ck_assert(memcmp(a, c, 32) == 0);
	/* A different subject is a different message. */
	mx_mime_identity("Subject: other\r\n\r\n", 18, c);
	ck_assert(memcmp(a, c, 32) != 0);
	/* A missing header is an empty value, not the next field's. */
	mx_mime_identity("Date: x\r\n\r\n", 11, b);
	mx_mime_identity("From: x\r\n\r\n", 11, c);
	ck_assert(memcmp(b, c, 32) != 0);
	mx_mime_identity(NULL, 0, c);
	mx_buf_free(&lf);
}
END_TEST

static int64_t date_of(const char *v)
{
	struct mx_buf b = {0};
	struct mx_parsed p;
	int64_t t;

	mx_buf_printf(&b, "Date: %s\n\n", v);
	parse(b.data, b.len, &p);
	t = p.date;
	mx_parsed_free(&p);
	mx_buf_free(&b);
	return t;
}

START_TEST(test_dates)
{
	ck_assert_int_eq(date_of("Thu, 01 Jan 1970 00:00:00 +0000"), 0);
	ck_assert_int_eq(date_of("Tue, 1 Jul 2003 10:52:37 +0200"), 1057049557);
	ck_assert_int_eq(date_of("1 Jul 2003 10:52:37 +0200"), 1057049557);
	ck_assert_int_eq(date_of("Tue, 1 Jul 2003 03:52:37 -0500 (CDT)"),
			 1057049557);
	ck_assert_int_eq(date_of("Tue, 1 Jul 03 08:52:37 GMT"), 1057049557);
	ck_assert_int_eq(date_of("Tue, 1 Jul 2003 01:52:37 PDT"), 1057049557);
	ck_assert_int_eq(date_of("Tue, 1 Jul 2003 04:52:37 EDT"), 1057049557);
	ck_assert_int_eq(date_of("Tue, 1 Jul 2003 08:52 UT"), 1057049520);
	ck_assert_int_eq(date_of("Tue Jul  1 08:52:37 2003"), 1057049557);
	ck_assert_int_eq(date_of("Fri, 21 Nov 1997 09:55:06 -0600"), 880127706);
	ck_assert_int_eq(date_of("21 Nov 97 09:55:06 GMT"), 880106106);
	ck_assert_int_eq(date_of("Sat, 29 Feb 2020 23:59:60 +0000"),
			 1583020800);
	ck_assert_int_eq(date_of("Wed, 31 Dec 1969 23:59:59 +0000"), -1);
	ck_assert_int_eq(date_of("not a date"), -1);
	ck_assert_int_eq(date_of("Tue, 1 Jul 2003 25:00:00 +0000"), -1);
	ck_assert_int_eq(date_of(""), -1);
}
END_TEST

START_TEST(test_ids)
{
	struct mx_parsed p;

	parse_str("Message-ID:  <a1@x.org> \n"
		  "In-Reply-To: Your message of Monday <b2@y.org> (junk)\n"
		  "References: <r1@x> junk <r2@x>,<r3@x>\n\t<r4@x>\n\n", &p);
	ck_assert_str_eq(p.message_id, "a1@x.org");
	ck_assert_str_eq(p.in_reply_to, "b2@y.org");
	ck_assert_uint_eq(p.nreferences, 4);
	ck_assert_str_eq(p.references[0], "r1@x");
	ck_assert_str_eq(p.references[3], "r4@x");
	ck_assert_int_eq(p.date, -1);
	mx_parsed_free(&p);
	parse_str("Message-ID: bare@id.example\nReferences: r1@x r2@x\n\n", &p);
	ck_assert_str_eq(p.message_id, "bare@id.example");
	ck_assert_uint_eq(p.nreferences, 2);
	ck_assert_ptr_null(p.in_reply_to);
	mx_parsed_free(&p);
}
END_TEST

START_TEST(test_subject_normalize)
{
	static const struct {
		const char *in, *out;
		bool reply;
	} t[] = {
		{"Hello", "hello", false},
		{"Re: Hello", "hello", true},
		{"RE: Fwd: re:  Hello   World ", "hello world", true},
		{"[list] Re: [other] AW: Hello", "hello", true},
		{"Re[2]: Hello", "hello", true},
		{"Fw : Hello", "hello", true},
		{"SV: Hej", "hej", true},
		{"[list] Hello", "hello", false},
		{"=?utf-8?q?Re=3A_=C3=84rger?=", "ärger", true},
		{"Regarding: x", "regarding: x", false},
		{"Re:", "", true},
		{"", "", false},
		{"ПРИВЕТ", "привет", false},
	};
	size_t i;
	bool reply;
	char *s;

	for (i = 0; i < MX_ARRAY_SIZE(t); i++) {
		s = mx_subject_normalize(t[i].in, &reply);
		ck_assert_ptr_nonnull(s);
		ck_assert_msg(strcmp(s, t[i].out) == 0, "%s -> \"%s\"",
			      t[i].in, s);
		ck_assert_msg(reply == t[i].reply, "%s: reply flag", t[i].in);
		free(s);
	}
	s = mx_subject_normalize(NULL, NULL);
	ck_assert_str_eq(s, "");
	free(s);
}
END_TEST

START_TEST(test_charset_flag)
{
	struct mx_parsed p;

	parse_str("Subject: =?x-bogus?q?hi?=\n"
		  "Content-Type: text/plain; charset=\"x-klingon\"\n\nqapla'\n",
		  &p);
	ck_assert(p.flags & MX_PARSED_CHARSET);
	ck_assert_str_eq(p.parts[0].charset, "x-klingon");
	ck_assert_str_eq(p.snippet, "qapla'");
	mx_parsed_free(&p);
	parse_str("Content-Type: text/plain; charset=UTF-8\n\nok\n", &p);
	ck_assert_uint_eq(p.flags, 0);
	ck_assert_str_eq(p.parts[0].charset, "utf-8");
	ck_assert_str_eq(p.parts[0].part_id, "1");
	ck_assert_ptr_null(p.error);
	mx_parsed_free(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mime");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_encoded_words);
	tcase_add_test(tc, test_addr_list_truncated);
	tcase_add_test(tc, test_encoded_word_charsets);
	tcase_add_test(tc, test_charset_table);
	tcase_add_test(tc, test_charset_invalid);
	tcase_add_test(tc, test_rfc2231);
	tcase_add_test(tc, test_rfc2231_boundary);
	tcase_add_test(tc, test_addr_normalize);
	tcase_add_test(tc, test_addr_lists);
	tcase_add_test(tc, test_addr_rfc5322_appendix_a);
	tcase_add_test(tc, test_bulk_flag);
	tcase_add_test(tc, test_structure);
	tcase_add_test(tc, test_bodies);
	tcase_add_test(tc, test_snippet_html);
	tcase_add_test(tc, test_broken_inputs);
	tcase_add_test(tc, test_pathological);
	tcase_add_test(tc, test_prefixes);
	tcase_add_test(tc, test_identity);
	tcase_add_test(tc, test_dates);
	tcase_add_test(tc, test_ids);
	tcase_add_test(tc, test_subject_normalize);
	tcase_add_test(tc, test_charset_flag);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
