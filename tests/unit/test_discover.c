/*
 * Unit tests: server discovery (src/lib/discover): the autoconfig XML
 * parser on real-world shaped documents and on hostile ones (DOCTYPE,
 * entities, depth, element count, wrong types, every truncation, random
 * byte mutations), the SRV answer parser on hand-built DNS messages
 * (ordering, "." targets, malformed records, every truncation), and the
 * host name rules.  No network: mx_discover() is only called with both
 * sources disabled or with bad input.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "discover/discover.h"
#include "account/presets.h"

/* Fastmail-shaped (three protocols, implicit TLS, and STARTTLS
 * alternatives). */
static const char fastmail[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<clientConfig version=\"1.1\">\n"
	"  <emailProvider id=\"fastmail.example\">\n"
	"    <domain>fastmail.example</domain>\n"
	"    <displayName>Fastmail</displayName>\n"
	"    <displayShortName>Fastmail</displayShortName>\n"
	"    <incomingServer type=\"imap\">\n"
	"      <hostname>imap.fastmail.example</hostname>\n"
	"      <port>993</port>\n"
	"      <socketType>SSL</socketType>\n"
	"      <username>%EMAILADDRESS%</username>\n"
	"      <authentication>password-cleartext</authentication>\n"
	"    </incomingServer>\n"
	"    <incomingServer type='pop3'>\n"
	"      <hostname>pop.fastmail.example</hostname>\n"
	"      <port>995</port>\n"
	"      <socketType>SSL</socketType>\n"
	"      <username>%EMAILADDRESS%</username>\n"
	"      <authentication>password-cleartext</authentication>\n"
	"    </incomingServer>\n"
	"    <outgoingServer type=\"smtp\">\n"
	"      <hostname>smtp.fastmail.example</hostname>\n"
	"      <port>465</port>\n"
	"      <socketType>SSL</socketType>\n"
	"      <username>%EMAILADDRESS%</username>\n"
	"      <authentication>password-cleartext</authentication>\n"
	"    </outgoingServer>\n"
	"    <outgoingServer type=\"smtp\">\n"
	"      <hostname>smtp.fastmail.example</hostname>\n"
	"      <port>587</port>\n"
	"      <socketType>STARTTLS</socketType>\n"
	"      <username>%EMAILADDRESS%</username>\n"
	"      <authentication>password-cleartext</authentication>\n"
	"    </outgoingServer>\n"
	"    <documentation url=\"https://www.fastmail.example/help\">\n"
	"      <descr lang=\"en\">Server names &amp; ports</descr>\n"
	"    </documentation>\n"
	"  </emailProvider>\n"
	"</clientConfig>\n";

/* Thunderbird ISPDB shaped: OAuth2 block, a plain-text entry, an exchange
 * entry, comments, a BOM, CDATA, local-part user names. */
static const char ispdb[] =
	"\xef\xbb\xbf<?xml version=\"1.0\"?>\n"
	"<!-- ISPDB entry -->\n"
	"<clientConfig version=\"1.1\">\n"
	"<emailProvider id=\"mail.example\">\n"
	"<domain>mail.example</domain>\n"
	"<incomingServer type=\"imap\">\n"
	" <hostname>imap.%EMAILDOMAIN%</hostname><port> 143 </port>\n"
	" <socketType>STARTTLS</socketType>\n"
	" <username><![CDATA[%EMAILLOCALPART%]]></username>\n"
	" <authentication>OAuth2</authentication>\n"
	" <authentication>password-encrypted</authentication>\n"
	"</incomingServer>\n"
	"<incomingServer type=\"pop3\"><hostname>pop.mail.example</hostname>"
	"<port>110</port><socketType>plain</socketType>"
	"<username>%EMAILLOCALPART%</username></incomingServer>\n"
	"<incomingServer type=\"exchange\"><hostname>ews.mail.example"
	"</hostname><port>443</port><socketType>SSL</socketType>"
	"</incomingServer>\n"
	"<outgoingServer type=\"smtp\"><hostname>smtp.mail.example</hostname>"
	"<port>465</port><socketType>SSL</socketType>"
	"<username>%REALNAME%</username>"
	"<authentication>OAuth2</authentication></outgoingServer>\n"
	"</emailProvider>\n"
	"<oAuth2><issuer>login.mail.example</issuer>"
	"<scope>mail</scope></oAuth2>\n"
	"</clientConfig>";

static int parse(const char *doc, size_t len, struct mx_discovery *d,
		 struct mx_buf *log, struct mx_error *err)
{
	return mx_autoconfig_parse(doc, len, "ann.lee@mail.example", "test",
				   100, d, log, err);
}

static int parse_s(const char *doc, struct mx_discovery *d,
		   struct mx_error *err)
{
	struct mx_buf log = {0};
	int rc = parse(doc, strlen(doc), d, &log, err);

	mx_buf_free(&log);
	return rc;
}

START_TEST(t_fastmail)
{
	struct mx_discovery d = {0};
	struct mx_error err;
	const struct mx_disc_server *s;

	ck_assert_int_eq(parse_s(fastmail, &d, &err), MX_OK);
	ck_assert_uint_eq(d.n, 4);
	s = mx_discovery_best(&d, "imap");
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->host, "imap.fastmail.example");
	ck_assert_uint_eq(s->port, 993);
	ck_assert_int_eq(s->tls, MX_TLS_IMPLICIT);
	ck_assert_str_eq(s->user, "ann.lee@mail.example");
	ck_assert_uint_eq(s->auth, MX_AUTH_PLAIN);
	ck_assert_str_eq(s->source, "test");
	ck_assert_int_eq(s->priority, 100);
	ck_assert(!s->foreign_domain);
	s = mx_discovery_best(&d, "pop3");
	ck_assert_str_eq(s->host, "pop.fastmail.example");
	ck_assert_int_eq(s->priority, 101);
	s = mx_discovery_best(&d, "smtp");
	ck_assert_uint_eq(s->port, 465);
	ck_assert_int_eq(d.v[3].tls, MX_TLS_STARTTLS);
	ck_assert_uint_eq(d.v[3].port, 587);
	mx_discovery_free(&d);
	ck_assert_ptr_null(d.v);
}
END_TEST

START_TEST(t_ispdb)
{
	struct mx_discovery d = {0};
	struct mx_buf log = {0};
	struct mx_error err;
	const struct mx_disc_server *s;

	ck_assert_int_eq(parse(ispdb, strlen(ispdb), &d, &log, &err), MX_OK);
	ck_assert_uint_eq(d.n, 2);
	s = mx_discovery_best(&d, "imap");
	ck_assert_str_eq(s->host, "imap.mail.example");
	ck_assert_uint_eq(s->port, 143);
	ck_assert_int_eq(s->tls, MX_TLS_STARTTLS);
	ck_assert_str_eq(s->user, "ann.lee");
	ck_assert_uint_eq(s->auth, MX_AUTH_PLAIN | MX_AUTH_XOAUTH2 |
					   MX_AUTH_OAUTHBEARER);
	ck_assert_ptr_null(mx_discovery_best(&d, "pop3"));
	s = mx_discovery_best(&d, "smtp");
	ck_assert_ptr_null(s->user); /* %REALNAME% is not ours to fill */
	ck_assert_uint_eq(s->auth, MX_AUTH_XOAUTH2 | MX_AUTH_OAUTHBEARER);
	ck_assert_ptr_nonnull(strstr(log.data, "plain text only, dropped"));
	ck_assert_ptr_nonnull(strstr(log.data, "type \"exchange\" not supported"));
	ck_assert_ptr_nonnull(strstr(log.data, "username \"%REALNAME%\" not usable"));
	mx_buf_free(&log);
	mx_discovery_free(&d);
}
END_TEST

/* A document whose only server has FIELDS inside <incomingServer>. */
static int one(const char *fields, struct mx_discovery *d,
	       struct mx_buf *log, struct mx_error *err)
{
	char doc[4096];

	snprintf(doc, sizeof(doc),
		 "<clientConfig><emailProvider id=\"x\">"
		 "<incomingServer type=\"imap\">%s</incomingServer>"
		 "</emailProvider></clientConfig>", fields);
	return parse(doc, strlen(doc), d, log, err);
}

static void expect_rejected(const char *fields, const char *why)
{
	struct mx_discovery d = {0};
	struct mx_buf log = {0};
	struct mx_error err;

	ck_assert_int_eq(one(fields, &d, &log, &err), MX_ERR_NOTFOUND);
	ck_assert_str_eq(err.detail, "no usable server in autoconfig document");
	ck_assert_uint_eq(d.n, 0);
	ck_assert_msg(log.data && strstr(log.data, why), "log \"%s\" lacks "
		      "\"%s\"", log.data ? log.data : "", why);
	mx_buf_free(&log);
}

#define H "<hostname>imap.mail.example</hostname>"
#define P "<port>993</port>"
#define S "<socketType>SSL</socketType>"

START_TEST(t_wrong_types)
{
	expect_rejected(H "<port>abc</port>" S, "port \"abc\" is not a number");
	expect_rejected(H "<port>70000</port>" S, "port \"70000\"");
	expect_rejected(H "<port>0</port>" S, "port \"0\"");
	expect_rejected(H "<port>+993</port>" S, "port \"+993\"");
	expect_rejected(H "<port>-1</port>" S, "port \"-1\"");
	expect_rejected(H "<port>0000993</port>" S, "port \"0000993\"");
	expect_rejected(H P "<socketType>weird</socketType>",
			"socketType \"weird\" is not SSL, STARTTLS or plain");
	expect_rejected(P S, "<hostname> missing");
	expect_rejected(H S, "<port> missing");
	expect_rejected(H P, "<socketType> missing");
	expect_rejected("<hostname>  </hostname>" P S, "<hostname> missing");
	expect_rejected("<hostname>imap mail.example</hostname>" P S,
			"is not a valid host name");
	expect_rejected("<hostname>imap.%FOO%</hostname>" P S,
			"is not a valid host name");
	expect_rejected("<hostname>10.0.0.1</hostname>" P S,
			"is not a valid host name");
	expect_rejected(H P "<socketType>plain</socketType>",
			"plain text only, dropped");
	expect_rejected(H P S "<authentication>NTLM</authentication>"
			"<authentication>GSSAPI</authentication>",
			"no supported authentication (NTLM, GSSAPI)");
	expect_rejected(H P S "<authentication></authentication>",
			"no supported authentication (empty)");
}
END_TEST

START_TEST(t_wrong_kind)
{
	struct mx_discovery d = {0};
	struct mx_buf log = {0};
	struct mx_error err;
	static const char doc[] =
		"<clientConfig><emailProvider>"
		"<incomingServer type=\"smtp\">" H P S "</incomingServer>"
		"<outgoingServer type=\"imap\">" H P S "</outgoingServer>"
		"<incomingServer>" H P S "</incomingServer>"
		"</emailProvider></clientConfig>";

	ck_assert_int_eq(parse(doc, strlen(doc), &d, &log, &err),
			 MX_ERR_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(log.data, "incomingServer #1: type \"smtp\""));
	ck_assert_ptr_nonnull(strstr(log.data, "outgoingServer #1: type \"imap\""));
	ck_assert_ptr_nonnull(strstr(log.data, "incomingServer #2: type \"\""));
	mx_buf_free(&log);
}
END_TEST

START_TEST(t_placeholders_entities)
{
	static const char self_ref[] =
		"<clientConfig><emailProvider><incomingServer type=\"imap\">"
		H P S "<username>%EMAILADDRESS%</username></incomingServer>"
		"</emailProvider></clientConfig>";
	struct mx_discovery d = {0};
	struct mx_error err;

	ck_assert_int_eq(one(H P S "<username>%EMAILLOCALPART%+x&amp;&#x41;"
				   "&#66;&lt;&gt;&quot;&apos;@%EMAILDOMAIN%"
				   "</username>",
			     &d, NULL, &err), MX_OK);
	ck_assert_str_eq(d.v[0].user, "ann.lee+x&AB<>\"'@mail.example");
	mx_discovery_free(&d);
	/* A placeholder never expands twice, even if the address holds one. */
	ck_assert_int_eq(mx_autoconfig_parse(self_ref, sizeof(self_ref) - 1,
					     "%EMAILDOMAIN%@x.example", "t", 0,
					     &d, NULL, &err), MX_OK);
	ck_assert_str_eq(d.v[0].user, "%EMAILDOMAIN%@x.example");
	mx_discovery_free(&d);
	/* UTF-8 through a character reference */
	ck_assert_int_eq(one(H P S "<username>j&#xfc;rgen</username>", &d,
			     NULL, &err), MX_OK);
	ck_assert_str_eq(d.v[0].user, "j\xc3\xbcrgen");
	mx_discovery_free(&d);
}
END_TEST

static void expect_malformed(const char *doc, size_t len, const char *why)
{
	struct mx_discovery d = {0};
	struct mx_error err;

	ck_assert_int_eq(parse(doc, len, &d, NULL, &err), MX_ERR_PROTOCOL);
	ck_assert_msg(strstr(err.detail, why), "\"%s\" lacks \"%s\"",
		      err.detail, why);
	ck_assert_uint_eq(d.n, 0);
}

#define M(s, why) expect_malformed(s, sizeof(s) - 1, why)

START_TEST(t_malformed)
{
	M("<?xml version=\"1.0\"?>\n<!DOCTYPE clientConfig [\n"
	  "<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<clientConfig/>",
	  "line 2: DOCTYPE / ENTITY declarations are not allowed");
	M("<clientConfig><!ENTITY a \"b\"></clientConfig>", "DOCTYPE / ENTITY");
	M("<clientConfig>&xxe;</clientConfig>", "unknown entity &xxe;");
	M("<clientConfig>&#0;</clientConfig>", "forbidden character");
	M("<clientConfig>&#xD800;</clientConfig>", "forbidden character");
	M("<clientConfig>&#x110000;</clientConfig>", "out of range");
	M("<clientConfig>&#99999999999999999999;</clientConfig>", "bad reference");
	M("<clientConfig>&#x;</clientConfig>", "empty character reference");
	M("<clientConfig>&#12a;</clientConfig>", "bad character reference");
	M("<clientConfig>& amp;</clientConfig>", "unknown entity");
	M("<clientConfig>&amp</clientConfig>", "bad reference (no ';')");
	M("<clientConfig></clientconfig>", "does not close <clientConfig>");
	M("<clientConfig><a></b></clientConfig>", "</b> does not close <a>");
	M("<other/>", "root element is <other>");
	M("junk<clientConfig/>", "text outside the root element");
	M("<clientConfig/><clientConfig/>", "content after the root element");
	M("<clientConfig/>junk", "text outside the root element");
	M("", "no <clientConfig> element");
	M("<clientConfig a=b/>", "unquoted attribute value");
	M("<clientConfig a=\"<\"/>", "'<' in an attribute value");
	M("<clientConfig a/>", "attribute without a value");
	M("<clientConfig a=\"1\"b=\"2\"/>", "no space before an attribute");
	M("<clientConfig><1a/></clientConfig>", "bad name character");
	M("<clientConfig>\0</clientConfig>", "NUL byte");
	M("<clientConfig></clientConfig x>", "junk in an end tag");
	M("</clientConfig>", "without a start tag");
}
END_TEST

START_TEST(t_limits)
{
	struct mx_buf b = {0};

	/* depth */
	mx_buf_puts(&b, "<clientConfig>");
	for (int i = 0; i < 100; i++)
		mx_buf_puts(&b, "<a>");
	expect_malformed(b.data, b.len, "elements nested deeper than 16");
	/* 16 levels are fine */
	mx_buf_reset(&b);
	mx_buf_puts(&b, "<clientConfig>");
	for (int i = 0; i < 15; i++)
		mx_buf_puts(&b, "<a>");
	for (int i = 0; i < 15; i++)
		mx_buf_puts(&b, "</a>");
	mx_buf_puts(&b, "</clientConfig>");
	{
		struct mx_discovery d = {0};
		struct mx_error err;

		ck_assert_int_eq(parse(b.data, b.len, &d, NULL, &err),
				 MX_ERR_NOTFOUND);
	}
	/* element count */
	mx_buf_reset(&b);
	mx_buf_puts(&b, "<clientConfig>");
	for (int i = 0; i < 5000; i++)
		mx_buf_puts(&b, "<a/>");
	mx_buf_puts(&b, "</clientConfig>");
	expect_malformed(b.data, b.len, "more than 4096 elements");
	/* attribute count */
	mx_buf_reset(&b);
	mx_buf_puts(&b, "<clientConfig");
	for (int i = 0; i < 40; i++)
		mx_buf_printf(&b, " a%d=\"\"", i);
	mx_buf_puts(&b, "/>");
	expect_malformed(b.data, b.len, "more than 32 attributes");
	/* long name */
	mx_buf_reset(&b);
	mx_buf_puts(&b, "<clientConfig><");
	for (int i = 0; i < 100; i++)
		mx_buf_puts(&b, "n");
	mx_buf_puts(&b, "/></clientConfig>");
	expect_malformed(b.data, b.len, "name longer than 64 bytes");
	/* a long hostname rejects its entry only */
	mx_buf_reset(&b);
	mx_buf_puts(&b, "<clientConfig><emailProvider><incomingServer "
			"type=\"imap\"><hostname>");
	for (int i = 0; i < 2000; i++)
		mx_buf_puts(&b, "a");
	mx_buf_puts(&b, "</hostname>" P S "</incomingServer><incomingServer "
			"type=\"imap\">" H P S "</incomingServer></emailProvider>"
			"</clientConfig>");
	{
		struct mx_discovery d = {0};
		struct mx_buf log = {0};
		struct mx_error err;

		ck_assert_int_eq(parse(b.data, b.len, &d, &log, &err), MX_OK);
		ck_assert_uint_eq(d.n, 1);
		ck_assert_ptr_nonnull(strstr(log.data, "<hostname> longer than"));
		mx_buf_free(&log);
		mx_discovery_free(&d);
	}
	mx_buf_free(&b);
}
END_TEST

/* Every proper prefix of a good document is refused cleanly and leaves
 * OUT as it was; only the whole document is accepted. */
START_TEST(t_truncation)
{
	const char *docs[] = { fastmail, ispdb };

	for (size_t k = 0; k < MX_ARRAY_SIZE(docs); k++) {
		size_t n = strlen(docs[k]);

		for (size_t len = 0; len < n; len++) {
			struct mx_discovery d = {0};
			struct mx_error err;
			char *copy = malloc(len ? len : 1);
			int rc;

			/* exact-size copy so ASan sees any over-read */
			memcpy(copy, docs[k], len);
			rc = parse(copy, len, &d, NULL, &err);
			free(copy);
			/* a prefix cut in the trailing newline is complete */
			if (rc == MX_OK) {
				ck_assert_msg(strspn(docs[k] + len, "\n") ==
					      n - len, "prefix %zu accepted",
					      len);
				mx_discovery_free(&d);
				continue;
			}
			ck_assert_int_eq(rc, MX_ERR_PROTOCOL);
			ck_assert_uint_eq(d.n, 0);
		}
	}
}
END_TEST

/* Random byte mutations: never a crash, and whatever is accepted is
 * well-formed (valid host, port, TLS). */
START_TEST(t_mutations)
{
	unsigned seed = 6186;
	size_t n = strlen(fastmail);
	char *buf = malloc(n);
	unsigned accepted = 0;

	for (int round = 0; round < 3000; round++) {
		struct mx_discovery d = {0};
		struct mx_error err;
		size_t len = n;

		memcpy(buf, fastmail, n);
		for (int k = 0; k < 1 + round % 4; k++) {
			size_t at = (size_t)rand_r(&seed) % n;

			buf[at] = (char)"<>&;#x/\"'%! \0a9"[rand_r(&seed) % 15];
		}
		if (round % 3 == 0)
			len = (size_t)rand_r(&seed) % n;
		if (parse(buf, len, &d, NULL, &err) == MX_OK) {
			accepted++;
			for (size_t i = 0; i < d.n; i++) {
				ck_assert(mx_disc_valid_host(d.v[i].host));
				ck_assert_uint_gt(d.v[i].port, 0);
				ck_assert_int_ne(d.v[i].tls, MX_TLS_NONE);
			}
		}
		mx_discovery_free(&d);
	}
	free(buf);
	ck_assert_uint_gt(accepted, 0); /* the harmless mutations pass */
}
END_TEST

/* ---- SRV ---- */

struct dns {
	unsigned char b[1024];
	size_t n;
};

static void put(struct dns *m, const void *p, size_t n)
{
	ck_assert_uint_le(m->n + n, sizeof(m->b));
	memcpy(m->b + m->n, p, n);
	m->n += n;
}

static void put16(struct dns *m, unsigned v)
{
	unsigned char b[2] = { (unsigned char)(v >> 8), (unsigned char)v };

	put(m, b, 2);
}

static void put_name(struct dns *m, const char *name)
{
	while (*name) {
		size_t l = strcspn(name, ".");
		unsigned char c = (unsigned char)l;

		put(m, &c, 1);
		put(m, name, l);
		name += l + (name[l] == '.');
	}
	put(m, "", 1);
}

/* Header + question for QNAME type SRV with ANCOUNT answers. */
static void begin(struct dns *m, const char *qname, unsigned ancount)
{
	m->n = 0;
	put16(m, 0x1234);
	put16(m, 0x8580);
	put16(m, 1);
	put16(m, ancount);
	put16(m, 0);
	put16(m, 0);
	put_name(m, qname);
	put16(m, 33);
	put16(m, 1);
}

static void srv(struct dns *m, unsigned prio, unsigned weight, unsigned port,
		const char *target)
{
	struct dns rd = {0};

	put16(&rd, prio);
	put16(&rd, weight);
	put16(&rd, port);
	put_name(&rd, target);
	put16(m, 0xc00c); /* owner: the question's name */
	put16(m, 33);
	put16(m, 1);
	put16(m, 0);
	put16(m, 60);
	put16(m, (unsigned)rd.n);
	put(m, rd.b, rd.n);
}

#define Q "_imaps._tcp.example.org"

START_TEST(t_srv_order)
{
	struct mx_discovery d = {0};
	struct mx_buf log = {0};
	struct dns m;

	begin(&m, Q, 5);
	srv(&m, 10, 0, 993, "b.example.org");
	srv(&m, 5, 0, 993, "a.example.org");
	srv(&m, 10, 60, 993, "c.example.org");
	srv(&m, 0, 0, 0, "");   /* "." */
	srv(&m, 7, 0, 993, "mail.evil.example");
	ck_assert_int_eq(mx_srv_parse(m.b, m.n, Q, "imap", MX_TLS_IMPLICIT,
				      "example.org", &d, &log), 4);
	/* a STARTTLS record at the priority of an implicit one goes after
	 * it (RFC 8314) */
	begin(&m, "_imap._tcp.example.org", 1);
	srv(&m, 5, 100, 143, "s.example.org");
	ck_assert_int_eq(mx_srv_parse(m.b, m.n, "_imap._tcp.example.org",
				      "imap", MX_TLS_STARTTLS, "example.org",
				      &d, &log), 1);
	mx_discovery_sort(&d);
	ck_assert_uint_eq(d.n, 5);
	ck_assert_str_eq(d.v[0].host, "a.example.org");
	ck_assert_str_eq(d.v[1].host, "s.example.org");
	ck_assert_int_eq(d.v[1].tls, MX_TLS_STARTTLS);
	ck_assert_str_eq(d.v[2].host, "mail.evil.example");
	ck_assert(d.v[2].foreign_domain);
	ck_assert(!d.v[0].foreign_domain);
	ck_assert_str_eq(d.v[3].host, "c.example.org");
	ck_assert_str_eq(d.v[4].host, "b.example.org");
	ck_assert_str_eq(d.v[0].source, "SRV " Q);
	ck_assert_ptr_null(d.v[0].user);
	ck_assert_uint_eq(d.v[0].auth, 0);
	ck_assert_ptr_nonnull(strstr(log.data, "target \".\": service not offered"));
	ck_assert_str_eq(mx_discovery_best(&d, "imap")->host, "a.example.org");
	ck_assert_ptr_null(mx_discovery_best(&d, "smtp"));
	mx_buf_free(&log);
	mx_discovery_free(&d);
}
END_TEST

START_TEST(t_srv_hostile)
{
	struct mx_discovery d = {0};
	struct mx_buf log = {0};
	struct dns m, full;

	/* port 0, bad names, wrong owner, short rdata */
	begin(&m, Q, 4);
	srv(&m, 0, 0, 0, "a.example.org");
	srv(&m, 0, 0, 993, "-x.example.org");
	srv(&m, 0, 0, 993, "a..b");
	put16(&m, 0xc00c);
	put16(&m, 33);
	put16(&m, 1);
	put16(&m, 0);
	put16(&m, 60);
	put16(&m, 3);
	put(&m, "\0\0\0", 3);
	ck_assert_int_eq(mx_srv_parse(m.b, m.n, Q, "imap", MX_TLS_IMPLICIT,
				      "example.org", &d, &log), 0);
	ck_assert_ptr_nonnull(strstr(log.data, "with port 0"));
	ck_assert_ptr_nonnull(strstr(log.data, "not a valid host name"));
	ck_assert_ptr_nonnull(strstr(log.data, "too short"));
	/* wrong owner */
	begin(&m, "_imap._tcp.example.org", 1);
	srv(&m, 0, 0, 993, "a.example.org");
	ck_assert_int_eq(mx_srv_parse(m.b, m.n, Q, "imap", MX_TLS_IMPLICIT,
				      "example.org", &d, &log), 0);
	/* garbage */
	ck_assert_int_eq(mx_srv_parse((const unsigned char *)"\1\2\3", 3, Q,
				      "imap", MX_TLS_IMPLICIT, "example.org",
				      &d, &log), -1);
	ck_assert_uint_eq(d.n, 0);
	/* every truncation of a good answer: no crash, never more */
	begin(&full, Q, 2);
	srv(&full, 1, 0, 993, "a.example.org");
	srv(&full, 2, 0, 993, "b.example.org");
	for (size_t len = 0; len <= full.n; len++) {
		unsigned char *copy = malloc(len ? len : 1);
		int r;

		memcpy(copy, full.b, len);
		r = mx_srv_parse(copy, len, Q, "imap", MX_TLS_IMPLICIT,
				 "example.org", &d, &log);
		free(copy);
		ck_assert_int_le(r, len == full.n ? 2 : 1);
		if (len == full.n)
			ck_assert_int_eq(r, 2);
	}
	mx_buf_free(&log);
	mx_discovery_free(&d);
}
END_TEST

START_TEST(t_names)
{
	char long_label[80], long_name[300];

	ck_assert(mx_disc_valid_host("example.org"));
	ck_assert(mx_disc_valid_host("xn--bcher-kva.example"));
	ck_assert(mx_disc_valid_host("a-b.c1"));
	ck_assert(!mx_disc_valid_host(""));
	ck_assert(!mx_disc_valid_host("a..b"));
	ck_assert(!mx_disc_valid_host(".a"));
	ck_assert(!mx_disc_valid_host("a."));
	ck_assert(!mx_disc_valid_host("-a.b"));
	ck_assert(!mx_disc_valid_host("a-.b"));
	ck_assert(!mx_disc_valid_host("a_b.c"));
	ck_assert(!mx_disc_valid_host("1.2.3.4"));
	ck_assert(!mx_disc_valid_host("a b.c"));
	memset(long_label, 'a', 64);
	strcpy(long_label + 64, ".org");
	ck_assert(!mx_disc_valid_host(long_label));
	long_label[1] = '.';
	ck_assert(mx_disc_valid_host(long_label));
	for (int i = 0; i < 127; i++)
		memcpy(long_name + 2 * i, "a.", 2);
	strcpy(long_name + 254, "b");
	ck_assert(!mx_disc_valid_host(long_name));
	ck_assert(mx_disc_in_domain("mail.example.org", "example.org"));
	ck_assert(mx_disc_in_domain("EXAMPLE.org", "example.ORG"));
	ck_assert(!mx_disc_in_domain("badexample.org", "example.org"));
	ck_assert(!mx_disc_in_domain("example.org.evil", "example.org"));
	ck_assert(!mx_disc_in_domain("org", "example.org"));
}
END_TEST

START_TEST(t_discover_args)
{
	struct mx_discover_opts o = { .no_srv = true, .no_autoconfig = true };
	struct mx_discovery d;
	struct mx_error err;

	ck_assert_int_eq(mx_discover("nobody", &o, &d, &err), MX_ERR_INVAL);
	ck_assert_uint_eq(d.n, 0);
	mx_discovery_free(&d);
	ck_assert_int_eq(mx_discover("@example.org", &o, &d, &err), MX_ERR_INVAL);
	ck_assert_int_eq(mx_discover("a@localhost", &o, &d, &err), MX_ERR_INVAL);
	ck_assert_int_eq(mx_discover("a@exa mple.org", &o, &d, &err),
			 MX_ERR_INVAL);
	ck_assert_int_eq(mx_discover("a b@example.org", &o, &d, &err),
			 MX_ERR_INVAL);
	o.connect_to = "nonsense";
	ck_assert_int_eq(mx_discover("a@example.org", &o, &d, &err),
			 MX_ERR_INVAL);
	o.connect_to = NULL;
	ck_assert_int_eq(mx_discover("a@Example.ORG.", &o, &d, &err),
			 MX_ERR_NOTFOUND);
	ck_assert_str_eq(err.detail, "no mail servers found for example.org: "
				     "SRV and autoconfig disabled — give "
				     "--imap URL or --provider NAME");
	ck_assert_ptr_nonnull(d.log);
	mx_discovery_free(&d);
	mx_discovery_free(NULL);
	ck_assert_ptr_null(mx_discovery_best(NULL, "imap"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("discover");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, t_fastmail);
	tcase_add_test(tc, t_ispdb);
	tcase_add_test(tc, t_wrong_types);
	tcase_add_test(tc, t_wrong_kind);
	tcase_add_test(tc, t_placeholders_entities);
	tcase_add_test(tc, t_malformed);
	tcase_add_test(tc, t_limits);
	tcase_add_test(tc, t_truncation);
	tcase_add_test(tc, t_mutations);
	tcase_add_test(tc, t_srv_order);
	tcase_add_test(tc, t_srv_hostile);
	tcase_add_test(tc, t_names);
	tcase_add_test(tc, t_discover_args);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
