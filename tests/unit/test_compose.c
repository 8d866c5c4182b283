/*
 * Unit tests of the composer (src/lib/send/compose.c, compose_json.c).
 * Every message written is read back twice: by our own parser
 * (src/lib/mime) and by Python's email package (policy=default) through
 * tests/unit/compose_check.py, and its lines are checked (CRLF only, at
 * most 998 characters).  Without /usr/bin/python3 or MX_TOP_SRCDIR the
 * Python half says so on stderr and the rest still runs.
 */
#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "mime/mime.h"
#include "send/compose.h"

#define PYTHON "/usr/bin/python3"

static char g_dir[] = "/tmp/mx-compose.XXXXXX";

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(g_dir));
	setenv("TZ", "UTC0", 1);
	tzset();
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_dir);
	memcpy(g_dir + strlen(g_dir) - 6, "XXXXXX", 6);
}

struct msg {
	char *data;
	size_t len;
	char path[256];
	struct mx_compose_out out;
};

static void msg_free(struct msg *m)
{
	free(m->data);
	mx_compose_out_free(&m->out);
}

/* Every line ends in CRLF, no bare CR or LF, none longer than 998.
 * (Plain tests: one ck_assert per byte would cost a write to Check's
 * pipe per byte.) */
static void check_lines(const char *s, size_t n, size_t *over78_r)
{
	size_t i, col = 0, over78 = 0;

	ck_assert_msg(n >= 2 && s[n - 2] == '\r' && s[n - 1] == '\n',
		      "message does not end in CRLF");
	for (i = 0; i < n; i++) {
		if (s[i] == '\r') {
			if (i + 1 == n || s[i + 1] != '\n')
				ck_abort_msg("bare CR at %zu", i);
			if (col > 78)
				over78++;
			if (col > 998)
				ck_abort_msg("line of %zu at %zu", col, i);
			col = 0;
			i++;
		} else if (s[i] == '\n' || s[i] == '\0' ||
			   (unsigned char)s[i] >= 0x80) {
			ck_abort_msg("bare LF, NUL or 8-bit byte at %zu", i);
		} else {
			col++;
		}
	}
	if (over78_r)
		*over78_r = over78;
}

/* Composes C into a file in g_dir and reads it back into M. */
static int compose(const struct mx_compose *c, struct msg *m,
		   struct mx_error *e)
{
	static int seq;
	FILE *f;
	long sz;
	int rc;

	memset(m, 0, sizeof(*m));
	snprintf(m->path, sizeof(m->path), "%s/msg%d.eml", g_dir, ++seq);
	f = fopen(m->path, "w+");
	ck_assert_ptr_nonnull(f);
	rc = mx_compose_write(c, f, &m->out, e);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	sz = ftell(f);
	if (rc != MX_OK) {
		ck_assert_msg(sz == 0, "%ld bytes written despite an error", sz);
		fclose(f);
		return rc;
	}
	ck_assert_uint_eq((uint64_t)sz, m->out.size);
	m->len = (size_t)sz;
	m->data = malloc(m->len + 1);
	ck_assert_ptr_nonnull(m->data);
	rewind(f);
	ck_assert_uint_eq(fread(m->data, 1, m->len, f), m->len);
	m->data[m->len] = '\0';
	fclose(f);
	check_lines(m->data, m->len, NULL);
	return rc;
}

static void compose_ok(const struct mx_compose *c, struct msg *m)
{
	struct mx_error e;
	int rc = compose(c, m, &e);

	ck_assert_msg(rc == MX_OK, "compose: %d %s", rc, e.detail);
}

static bool py_available(void)
{
	const char *top = getenv("MX_TOP_SRCDIR");

	if (access(PYTHON, X_OK) != 0 || top == NULL || *top == '\0') {
		fprintf(stderr, "SKIP python check: no %s or MX_TOP_SRCDIR\n",
			PYTHON);
		return false;
	}
	return true;
}

/* compose_check.py on PATH; NULL when Python is not there. */
static json_t *py_read(const char *path)
{
	char cmd[1024], *buf = NULL;
	size_t len = 0;
	FILE *p, *mem;
	json_t *j;
	json_error_t je;
	int c, st;

	if (!py_available())
		return NULL;
	snprintf(cmd, sizeof(cmd), "%s %s/tests/unit/compose_check.py '%s'",
		 PYTHON, getenv("MX_TOP_SRCDIR"), path);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	mem = open_memstream(&buf, &len);
	while ((c = fgetc(p)) != EOF)
		fputc(c, mem);
	fclose(mem);
	st = pclose(p);
	ck_assert_msg(st == 0, "compose_check.py failed (%d)", st);
	j = json_loads(buf, 0, &je);
	ck_assert_msg(j != NULL, "python output: %s", buf);
	free(buf);
	ck_assert_int_eq(json_array_size(json_object_get(j, "defects")), 0);
	return j;
}

static const char *jstr(json_t *j, const char *path)
{
	/* "a.b.0.c" */
	char key[64];
	const char *p = path, *dot;
	json_t *v = j;

	while (v != NULL && *p) {
		dot = strchr(p, '.');
		snprintf(key, sizeof(key), "%.*s",
			 (int)(dot ? (size_t)(dot - p) : strlen(p)), p);
		if (json_is_array(v))
			v = json_array_get(v, strtoul(key, NULL, 10));
		else
			v = json_object_get(v, key);
		p = dot ? dot + 1 : p + strlen(p);
	}
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* compose_check.py's reading of PATH has KEY, VALUE ... (NULL ends). */
static void py_expect(const char *path, const char *const *kv)
{
	json_t *j = py_read(path);

	for (; j != NULL && kv[0] != NULL; kv += 2)
		ck_assert_msg(jstr(j, kv[0]) && strcmp(jstr(j, kv[0]), kv[1]) == 0,
			      "python %s: %s, not %s", kv[0], jstr(j, kv[0]),
			      kv[1]);
	json_decref(j);
}

static const char *header(const struct msg *m, const char *name, char *buf,
			  size_t cap)
{
	/* Unfolded value of the first NAME in the header block. */
	char pat[64];
	const char *p, *end = strstr(m->data, "\r\n\r\n");
	size_t k = 0;

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	if (strncmp(m->data, pat + 2, strlen(pat) - 2) == 0)
		p = m->data + strlen(pat) - 2;
	else if ((p = strstr(m->data, pat)) != NULL && p < end)
		p += strlen(pat);
	else
		return NULL;
	for (; p < end && !(p[0] == '\r' && p[2] != ' ' && p[2] != '\t'); p++)
		if (*p != '\r' && *p != '\n' && k + 1 < cap)
			buf[k++] = *p;
	buf[k] = '\0';
	return buf;
}

static const struct mx_compose base = {
	.from_addr = "alice@example.test",
	.from_name = "Alice Example",
	.to = "bob@example.test",
	.subject = "hello",
	.text = "hi\n",
	.text_len = 3,
};

/* ------------------------------------------------------------------ */

START_TEST(test_simple)
{
	struct mx_compose c = base;
	struct msg m;
	struct mx_parsed p;
	char h[1024];

	c.date = 1700000000;
	compose_ok(&c, &m);
	ck_assert_str_eq(header(&m, "Date", h, sizeof(h)),
			 " Tue, 14 Nov 2023 22:13:20 +0000");
	ck_assert_str_eq(header(&m, "From", h, sizeof(h)),
			 " Alice Example <alice@example.test>");
	ck_assert_str_eq(header(&m, "MIME-Version", h, sizeof(h)), " 1.0");
	ck_assert_str_eq(header(&m, "Content-Type", h, sizeof(h)),
			 " text/plain; charset=utf-8");
	ck_assert_str_eq(header(&m, "Content-Transfer-Encoding", h, sizeof(h)),
			 " 7bit");
	ck_assert_ptr_nonnull(strstr(m.data, "\r\n\r\nhi\r\n"));
	ck_assert_uint_eq(m.out.nrcpts, 1);
	ck_assert_str_eq(m.out.rcpts[0], "bob@example.test");
	ck_assert(!m.out.has_8bit);
	ck_assert_int_eq(mx_mime_parse(m.data, m.len, &p, NULL), MX_OK);
	ck_assert_str_eq(p.subject, "hello");
	ck_assert_int_eq(p.date, 1700000000);
	ck_assert_str_eq(p.from.v[0].name, "Alice Example");
	ck_assert_uint_eq(p.flags & MX_PARSED_BROKEN, 0);
	ck_assert_uint_eq(strlen(m.out.message_id), strlen(p.message_id) + 2);
	ck_assert(strncmp(m.out.message_id + 1, p.message_id,
			  strlen(p.message_id)) == 0);
	mx_parsed_free(&p);
	py_expect(m.path, (const char *const[]){
		"subject", "hello",
		"parts.0.text", "hi\n",
		"structure", "text/plain",
		NULL });
	msg_free(&m);
}
END_TEST

START_TEST(test_unicode_headers)
{
	struct mx_compose c = base;
	struct msg m;
	struct mx_parsed p;
	const char *subj = "Grüße aus Köln – 日本語のテキストと絵文字 🎉🎉 "
			   "und ein ziemlich langer Betreff, damit gefaltet "
			   "werden muss: Ærø, Ωμέγα, Привет, 中文字符";
	const char *p1, *q;
	size_t n;

	c.from_name = "Zoë Ångström-Łukasiewicz";
	c.to = "Jürgen Groß <j@example.org>, \"Doe, John\" <john@Example.COM>,"
	       " plain@example.net, 山田太郎 <yamada@example.jp>";
	c.cc = "\"O'Brien \\\"Bob\\\"\" <ob@example.ie>";
	c.subject = subj;
	compose_ok(&c, &m);
	/* Each encoded word at most 75 characters, lines with one <= 76. */
	for (p1 = m.data; (p1 = strstr(p1, "=?UTF-8?")) != NULL; p1 = q) {
		q = strstr(p1 + 10, "?=");
		ck_assert_ptr_nonnull(q);
		q += 2;
		ck_assert_msg(q - p1 <= 75, "encoded word of %td", q - p1);
	}
	for (p1 = m.data; p1 < strstr(m.data, "\r\n\r\n"); p1 = q + 2) {
		q = strstr(p1, "\r\n");
		n = (size_t)(q - p1);
		if (memmem(p1, n, "=?", 2))
			ck_assert_msg(n <= 76, "line of %zu: %.*s", n, (int)n, p1);
		ck_assert_msg(n <= 78, "header line of %zu: %.*s", n, (int)n, p1);
	}
	ck_assert_int_eq(mx_mime_parse(m.data, m.len, &p, NULL), MX_OK);
	ck_assert_str_eq(p.subject, subj);
	ck_assert_str_eq(p.from.v[0].name, "Zoë Ångström-Łukasiewicz");
	ck_assert_uint_eq(p.to.n, 4);
	ck_assert_str_eq(p.to.v[0].name, "Jürgen Groß");
	ck_assert_str_eq(p.to.v[0].email, "j@example.org");
	ck_assert_str_eq(p.to.v[1].name, "Doe, John");
	ck_assert_str_eq(p.to.v[1].email, "john@example.com");
	ck_assert_str_eq(p.to.v[3].name, "山田太郎");
	ck_assert_str_eq(p.cc.v[0].name, "O'Brien \"Bob\"");
	mx_parsed_free(&p);
	ck_assert_uint_eq(m.out.nrcpts, 5);
	ck_assert_str_eq(m.out.rcpts[1], "john@example.com");
	py_expect(m.path, (const char *const[]){
		"subject", subj,
		"from.0.0", "Zoë Ångström-Łukasiewicz",
		"to.0.0", "Jürgen Groß",
		"to.1.0", "Doe, John",
		"to.2.1", "plain@example.net",
		"to.3.0", "山田太郎",
		"cc.0.0", "O'Brien \"Bob\"",
		NULL });
	msg_free(&m);
}
END_TEST

/* Text encodings chosen per content, and the text round-trips. */
START_TEST(test_text_encodings)
{
	static const struct {
		const char *text, *cte, *back;
	} t[] = {
		{ "plain ascii\nsecond line\n", "7bit",
		  "plain ascii\nsecond line\n" },
		{ "crlf\r\nand lone cr\rend", "7bit", "crlf\nand lone cr\nend\n" },
		{ "Grüße, café, naïve — mostly ASCII text here.\n",
		  "quoted-printable",
		  "Grüße, café, naïve — mostly ASCII text here.\n" },
		{ "Привет, как дела? Всё хорошо.\n", "base64",
		  "Привет, как дела? Всё хорошо.\n" },
		{ "From the start, = sign, trailing space \nend\t\n",
		  "quoted-printable",
		  "From the start, = sign, trailing space \nend\t\n" },
	};
	char longline[3000], h[256];
	struct mx_compose c = base;
	struct msg m;
	size_t i;
	json_t *j;

	for (i = 0; i <= MX_ARRAY_SIZE(t); i++) {
		const char *text, *cte, *back;

		if (i < MX_ARRAY_SIZE(t)) {
			text = t[i].text;
			cte = t[i].cte;
			back = t[i].back;
		} else { /* one 2,500 character line */
			memset(longline, 'x', 2500);
			memcpy(longline + 2500, "\n", 2);
			text = back = longline;
			cte = "quoted-printable";
			/* "From " at a line start is QP-escaped, so that
			 * case already went through QP above. */
		}
		c.text = text;
		c.text_len = strlen(text);
		compose_ok(&c, &m);
		header(&m, "Content-Transfer-Encoding", h, sizeof(h));
		ck_assert_msg(strcmp(h + 1, cte) == 0, "case %zu: %s", i, h);
		j = py_read(m.path);
		if (j != NULL) {
			ck_assert_msg(strcmp(jstr(j, "parts.0.text"), back) == 0,
				      "case %zu: %s", i, jstr(j, "parts.0.text"));
			json_decref(j);
		}
		msg_free(&m);
	}
}
END_TEST

START_TEST(test_alternative_and_mixed)
{
	struct mx_compose c = base;
	struct mx_compose_att a[1] = { {
		.filename = "report.pdf",
		.data = "%PDF-1.4 not really",
		.len = 19,
	} };
	struct msg m;
	struct mx_parsed p;

	c.html = "<p>hi <b>there</b></p>\n";
	c.html_len = strlen(c.html);
	compose_ok(&c, &m);
	ck_assert_int_eq(mx_mime_parse(m.data, m.len, &p, NULL), MX_OK);
	ck_assert_uint_eq(p.nparts, 2);
	ck_assert_str_eq(p.parts[0].content_type, "text/plain");
	ck_assert_str_eq(p.parts[1].content_type, "text/html");
	mx_parsed_free(&p);
	py_expect(m.path, (const char *const[]){
		"structure.0", "multipart/alternative",
		"structure.1", "text/plain",
		"structure.2", "text/html",
		"parts.1.text", c.html,
		NULL });
	msg_free(&m);

	c.att = a;
	c.natt = 1;
	compose_ok(&c, &m);
	ck_assert_int_eq(mx_mime_parse(m.data, m.len, &p, NULL), MX_OK);
	ck_assert_uint_eq(p.nparts, 3);
	ck_assert_str_eq(p.parts[2].content_type, "application/pdf");
	ck_assert_str_eq(p.parts[2].filename, "report.pdf");
	ck_assert(p.parts[2].attachment);
	ck_assert_uint_eq(p.parts[2].size, 19);
	mx_parsed_free(&p);
	py_expect(m.path, (const char *const[]){
		"structure.0", "multipart/mixed",
		"structure.1.0", "multipart/alternative",
		"structure.2", "application/pdf",
		"parts.2.filename", "report.pdf",
		"parts.2.disposition", "attachment",
		NULL });
	msg_free(&m);

	/* Attachments only: mixed with just them. */
	c.text = c.html = NULL;
	compose_ok(&c, &m);
	py_expect(m.path, (const char *const[]){
		"structure.0", "multipart/mixed",
		"structure.1", "application/pdf",
		NULL });
	msg_free(&m);
}
END_TEST

START_TEST(test_filenames_2231)
{
	char longname[1000] = "";
	const char *names[4];
	struct mx_compose_att a[4];
	struct mx_compose c = base;
	struct msg m;
	struct mx_parsed p;
	size_t i;
	json_t *j;
	char key[32];

	for (i = 0; i < 40; i++)
		strcat(longname, "日本語ファイル名");
	strcat(longname, " – Größe.pdf"); /* 40*24 + 14 bytes */
	names[0] = "résumé 2024.pdf";
	names[1] = longname;
	names[2] = "plain \"quoted\" name;x.txt";
	names[3] = "a-very-long-ascii-file-name-that-does-not-fit-on-one-"
		   "header-line-at-all-really.tar.gz";
	memset(a, 0, sizeof(a));
	for (i = 0; i < 4; i++) {
		a[i].filename = names[i];
		a[i].data = "data";
		a[i].len = 4;
	}
	c.att = a;
	c.natt = 4;
	compose_ok(&c, &m);
	ck_assert_ptr_nonnull(strstr(m.data, "filename*0*=utf-8''"));
	ck_assert_ptr_nonnull(strstr(m.data, "filename*=utf-8''r%C3%A9sum%C3%A9"));
	ck_assert_ptr_nonnull(strstr(m.data, "name*=utf-8''r%C3%A9sum%C3%A9"));
	ck_assert_ptr_nonnull(strstr(m.data, "filename=\"r_sum_ 2024.pdf\""));
	ck_assert_ptr_nonnull(strstr(m.data, "Content-Type: text/plain;"));
	ck_assert_ptr_nonnull(strstr(m.data, "Content-Type: application/gzip;"));
	ck_assert_int_eq(mx_mime_parse(m.data, m.len, &p, NULL), MX_OK);
	ck_assert_uint_eq(p.nparts, 5);
	for (i = 0; i < 4; i++)
		ck_assert_msg(p.parts[i + 1].filename &&
			      strcmp(p.parts[i + 1].filename, names[i]) == 0,
			      "ours %zu: %s", i, p.parts[i + 1].filename);
	mx_parsed_free(&p);
	j = py_read(m.path);
	if (j != NULL) {
		for (i = 0; i < 4; i++) {
			snprintf(key, sizeof(key), "parts.%zu.filename", i + 1);
			ck_assert_msg(jstr(j, key) &&
				      strcmp(jstr(j, key), names[i]) == 0,
				      "python %zu: %s", i, jstr(j, key));
		}
		json_decref(j);
	}
	msg_free(&m);
}
END_TEST

static void make_file(const char *path, size_t size, unsigned char *sha)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char buf[65536];
	size_t k;
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while (size > 0) {
		k = size < sizeof(buf) ? size : sizeof(buf);
		ck_assert_int_eq(RAND_bytes(buf, (int)k), 1);
		EVP_DigestUpdate(ctx, buf, k);
		ck_assert_uint_eq(fwrite(buf, 1, k, f), k);
		size -= k;
	}
	EVP_DigestFinal_ex(ctx, sha, NULL);
	EVP_MD_CTX_free(ctx);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_big_binary)
{
	char path[256], hex[65], name[64];
	unsigned char sha[32];
	struct mx_compose_att a = { 0 };
	struct mx_compose c = base;
	struct msg m;
	struct mx_parsed p;
	size_t over78;

	snprintf(path, sizeof(path), "%s/blob.bin", g_dir);
	make_file(path, 10 * 1024 * 1024 + 7, sha);
	mx_hex(sha, 32, hex);
	a.path = path;
	c.att = &a;
	c.natt = 1;
	compose_ok(&c, &m);
	check_lines(m.data, m.len, &over78);
	ck_assert_uint_eq(over78, 0);
	ck_assert_ptr_nonnull(strstr(m.data, "application/octet-stream;"));
	ck_assert_int_eq(mx_mime_parse(m.data, m.len, &p, NULL), MX_OK);
	ck_assert_uint_eq(p.nparts, 2);
	ck_assert_str_eq(p.parts[1].filename, "blob.bin");
	ck_assert_uint_eq(p.parts[1].size, 10 * 1024 * 1024 + 7);
	mx_parsed_free(&p);
	py_expect(m.path, (const char *const[]){
		"parts.1.sha256", hex,
		"parts.1.filename", "blob.bin",
		NULL });
	msg_free(&m);
	(void)name;
}
END_TEST

/* A 25 MB attachment: the composer's memory must not follow its size. */
START_TEST(test_rss_25mb)
{
	char path[256], out[256];
	unsigned char sha[32];
	struct mx_compose_att a = { 0 };
	struct mx_compose c = base;
	struct mx_compose_out o;
	struct mx_error e;
	struct rusage before, after;
	long growth;
	FILE *f;

	snprintf(path, sizeof(path), "%s/big.bin", g_dir);
	snprintf(out, sizeof(out), "%s/big.eml", g_dir);
	make_file(path, MX_COMPOSE_MAX_ATTACH_DEFAULT, sha);
	a.path = path;
	c.att = &a;
	c.natt = 1;
	f = fopen(out, "w");
	ck_assert_ptr_nonnull(f);
	getrusage(RUSAGE_SELF, &before);
	ck_assert_int_eq(mx_compose_write(&c, f, &o, &e), MX_OK);
	getrusage(RUSAGE_SELF, &after);
	fclose(f);
	growth = after.ru_maxrss - before.ru_maxrss;
	printf("# peak RSS before %ld KB, after %ld KB, growth %ld KB while "
	       "composing a %llu byte attachment (%llu bytes written)\n",
	       before.ru_maxrss, after.ru_maxrss, growth,
	       (unsigned long long)MX_COMPOSE_MAX_ATTACH_DEFAULT,
	       (unsigned long long)o.size);
	fflush(stdout);
	ck_assert_msg(growth < 4096, "peak RSS grew by %ld KB", growth);
	ck_assert_uint_gt(o.size, MX_COMPOSE_MAX_ATTACH_DEFAULT / 3 * 4);
	mx_compose_out_free(&o);
}
END_TEST

START_TEST(test_limits)
{
	char path[256];
	struct mx_compose_att a[2] = {
		{ .filename = "a.bin", .data = NULL, .len = 0 },
		{ .filename = "b.bin", .data = NULL, .len = 0 },
	};
	static char blob[600];
	struct mx_compose c = base;
	struct mx_error e;
	struct msg m;
	int fd;

	a[0].data = a[1].data = blob;
	a[0].len = a[1].len = sizeof(blob);
	c.att = a;
	c.natt = 2;
	c.max_attach_bytes = 1000;
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
	ck_assert_str_eq(e.detail, "attachments total 1200 bytes, over the "
			 "1000 bytes limit");
	/* The default limit, with a sparse 26.2 MB file. */
	snprintf(path, sizeof(path), "%s/sparse.bin", g_dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, 27500000), 0);
	close(fd);
	a[0].data = NULL;
	a[0].len = 0;
	a[0].path = path;
	c.natt = 1;
	c.max_attach_bytes = 0;
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
	ck_assert_str_eq(e.detail, "attachments total 26.2 MB, over the 25 MB "
			 "limit");
	/* A missing file: MX_ERR_IO naming it, nothing written. */
	snprintf(path, sizeof(path), "%s/missing.pdf", g_dir);
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_IO);
	ck_assert_ptr_nonnull(strstr(e.detail, "missing.pdf"));
	ck_assert_ptr_nonnull(strstr(e.detail, "No such file"));
	a[0].path = g_dir; /* a directory */
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_IO);
	ck_assert_ptr_nonnull(strstr(e.detail, "not a regular file"));
}
END_TEST

/* Every header field refuses CR/LF and controls, naming itself. */
START_TEST(test_injection)
{
	static const char *const bad[] = {
		"x\r\nBcc: evil@example.test", "x\nX-Evil: 1", "x\ry",
		"x\001y", "x\ty", "x\x7fy",
	};
	static const char *const field[] = {
		"from name", "from address", "to", "cc", "bcc", "subject",
		"attachment 1 file name", "attachment 1 content type",
		"message-id", "in-reply-to", "references",
	};
	struct mx_compose_att a = { .filename = "f.txt", .data = "x", .len = 1 };
	char val[128];
	struct mx_error e;
	struct msg m;
	size_t i, k;

	for (k = 0; k < MX_ARRAY_SIZE(bad); k++)
		for (i = 0; i < MX_ARRAY_SIZE(field); i++) {
			struct mx_compose c = base;
			struct mx_compose_att aa = a;

			c.att = &aa;
			c.natt = 1;
			/* A value valid but for the bad bytes. */
			snprintf(val, sizeof(val), "%s", bad[k]);
			switch (i) {
			case 0: c.from_name = val; break;
			case 1: snprintf(val, sizeof(val), "a%s@b.example",
					 bad[k]);
				c.from_addr = val; break;
			case 2: c.to = val; break;
			case 3: c.cc = val; break;
			case 4: c.bcc = val; break;
			case 5: c.subject = val; break;
			case 6: aa.filename = val; break;
			case 7: aa.content_type = val; break;
			case 8: c.message_id = val; break;
			case 9: c.in_reply_to = val; break;
			default: c.references = val; break;
			}
			ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
			ck_assert_msg(strncmp(e.detail, field[i],
					      strlen(field[i])) == 0,
				      "%s: %s", field[i], e.detail);
			if (strpbrk(bad[k], "\r\n"))
				ck_assert_msg(strstr(e.detail, "contains a line "
						     "break (CR/LF): refused"),
					      "%s", e.detail);
			else
				ck_assert_msg(strstr(e.detail, "control "
						     "character"), "%s",
					      e.detail);
		}
	{
		struct mx_compose c = base;

		c.subject = "subject\r\nBcc: x@y";
		ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
		ck_assert_str_eq(e.detail, "subject contains a line break "
				 "(CR/LF): refused");
	}
}
END_TEST

START_TEST(test_bad_values)
{
	static const struct {
		const char *to, *want;
	} addr[] = {
		{ "bob@", "empty domain" },
		{ "no-at-sign", "no '@'" },
		{ "a b@example.test", "invalid character in the local part" },
		{ "Name <x@example.test", "missing '>'" },
		{ "team: a@example.test;", "group syntax" },
		{ "(boss) a@example.test", "comments are not supported" },
		{ "jürgen@example.de", "non-ASCII addresses" },
		{ "a@exa_mple.test", "invalid character in the domain" },
		{ "a@-x.test", "begins or ends with '-'" },
		{ "a..b@example.test", "invalid character in the local part" },
		{ "<a@example.test> trailing", "text after '>'" },
		{ "\"unterminated <a@b.test>", "unterminated" },
	};
	struct mx_compose c = base;
	struct mx_error e;
	struct msg m;
	size_t i;

	for (i = 0; i < MX_ARRAY_SIZE(addr); i++) {
		c.to = addr[i].to;
		ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
		ck_assert_msg(strncmp(e.detail, "to: invalid address '", 21) == 0
			      && strstr(e.detail, addr[i].want),
			      "%s: %s", addr[i].to, e.detail);
	}
	c = base;
	c.to = " , ";
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
	ck_assert_str_eq(e.detail, "no recipients (to, cc and bcc are empty)");
	c = base;
	c.text = "caf\xe9 au lait";
	c.text_len = strlen(c.text);
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
	ck_assert_str_eq(e.detail, "text is not valid UTF-8 (at byte 3): "
			 "refused");
	c.text = "a\0b";
	c.text_len = 3;
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
	ck_assert_str_eq(e.detail, "text contains a NUL byte: refused");
	c = base;
	c.html = "\xc0\xaf overlong";
	c.html_len = strlen(c.html);
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(e.detail, "html is not valid UTF-8"));
	c = base;
	c.subject = "bad \xff subject";
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
	ck_assert_str_eq(e.detail, "subject is not valid UTF-8: refused");
	c = base;
	c.message_id = "no-brackets@example.test";
	ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(e.detail, "is not a message id"));
	c = base;
	{
		struct mx_compose_att a = { .filename = "x", .data = "x",
					    .len = 1,
					    .content_type = "multipart/mixed" };
		c.att = &a;
		c.natt = 1;
		ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
		ck_assert_ptr_nonnull(strstr(e.detail, "composite types"));
		a.content_type = "text";
		ck_assert_int_eq(compose(&c, &m, &e), MX_ERR_INVAL);
		ck_assert_ptr_nonnull(strstr(e.detail, "is not a type/subtype"));
	}
}
END_TEST

START_TEST(test_bcc_envelope)
{
	struct mx_compose c = base;
	struct msg m;
	struct mx_parsed p;
	json_t *j;

	c.to = "Bob <bob@Example.TEST>";
	c.cc = "carol@example.test, bob@example.test";
	c.bcc = "Secret Sam <sam@example.test>, carol@example.test";
	compose_ok(&c, &m);
	ck_assert_ptr_null(strstr(m.data, "Bcc"));
	ck_assert_ptr_null(strstr(m.data, "sam@"));
	ck_assert_uint_eq(m.out.nrcpts, 3);
	ck_assert_str_eq(m.out.rcpts[0], "bob@example.test");
	ck_assert_str_eq(m.out.rcpts[1], "carol@example.test");
	ck_assert_str_eq(m.out.rcpts[2], "sam@example.test");
	ck_assert_int_eq(mx_mime_parse(m.data, m.len, &p, NULL), MX_OK);
	ck_assert_uint_eq(p.bcc.n, 0);
	mx_parsed_free(&p);
	j = py_read(m.path);
	if (j != NULL) {
		ck_assert(json_is_false(json_object_get(j, "bcc")));
		json_decref(j);
	}
	msg_free(&m);
	/* Bcc only: an empty group stands in for To. */
	c.to = c.cc = NULL;
	compose_ok(&c, &m);
	ck_assert_ptr_nonnull(strstr(m.data, "To: undisclosed-recipients:;\r\n"));
	ck_assert_uint_eq(m.out.nrcpts, 2);
	msg_free(&m);
}
END_TEST

START_TEST(test_message_id)
{
	struct mx_compose c = base;
	struct msg m;
	char *ids[50], h[300];
	size_t i, k;

	for (i = 0; i < MX_ARRAY_SIZE(ids); i++) {
		compose_ok(&c, &m);
		ids[i] = strdup(m.out.message_id);
		ck_assert_str_eq(header(&m, "Message-ID", h, sizeof(h)) + 1,
				 ids[i]);
		ck_assert_uint_eq(strlen(ids[i]), 1 + 32 + 1 + 10 + 1 +
				  strlen("example.test") + 1);
		ck_assert_ptr_nonnull(strstr(ids[i], "@example.test>"));
		for (k = 0; k < i; k++)
			ck_assert_str_ne(ids[k], ids[i]);
		msg_free(&m);
	}
	for (i = 0; i < MX_ARRAY_SIZE(ids); i++)
		free(ids[i]);
	c.message_id = "<given@example.test>";
	compose_ok(&c, &m);
	ck_assert_str_eq(m.out.message_id, "<given@example.test>");
	msg_free(&m);
}
END_TEST

START_TEST(test_reply_headers)
{
	struct mx_compose c = base;
	struct msg m;
	struct mx_parsed p;
	struct mx_buf refs = {0};
	char h[8192];
	size_t i;

	c.in_reply_to = "<orig@example.test>";
	c.references = "<a@example.test>  <b@example.test> <orig@example.test>";
	c.subject = "Re: hello";
	compose_ok(&c, &m);
	ck_assert_str_eq(header(&m, "In-Reply-To", h, sizeof(h)),
			 " <orig@example.test>");
	ck_assert_int_eq(mx_mime_parse(m.data, m.len, &p, NULL), MX_OK);
	ck_assert_str_eq(p.in_reply_to, "orig@example.test");
	ck_assert_uint_eq(p.nreferences, 3);
	ck_assert_str_eq(p.references[2], "orig@example.test");
	mx_parsed_free(&p);
	py_expect(m.path, (const char *const[]){
		"in_reply_to", "<orig@example.test>",
		NULL });
	msg_free(&m);
	/* 60 references: folded, the first and the last 39 kept. */
	for (i = 0; i < 60; i++)
		mx_buf_printf(&refs, "<ref%zu.0123456789@example.test> ", i);
	c.references = refs.data;
	compose_ok(&c, &m);
	ck_assert_int_eq(mx_mime_parse(m.data, m.len, &p, NULL), MX_OK);
	ck_assert_uint_eq(p.nreferences, 40);
	ck_assert_str_eq(p.references[0], "ref0.0123456789@example.test");
	ck_assert_str_eq(p.references[1], "ref21.0123456789@example.test");
	ck_assert_str_eq(p.references[39], "ref59.0123456789@example.test");
	mx_parsed_free(&p);
	msg_free(&m);
	mx_buf_free(&refs);
}
END_TEST

/* ------------------------------------------------------------------ */
/* JSON front end                                                      */

static int from_json(const char *doc, struct mx_compose_req **r,
		     struct mx_error *e)
{
	return mx_compose_req_from_json(doc, strlen(doc), r, e);
}

START_TEST(test_json_ok)
{
	const char *doc =
		"{\"to\": [\"Bob <bob@example.test>\", \"carol@example.test\"],"
		" \"cc\": \"dave@example.test\", \"bcc\": [],"
		" \"subject\": \"Grüße\", \"text\": \"hello\\n\","
		" \"html\": \"<p>hello</p>\","
		" \"attachments\": [{\"filename\": \"x.bin\","
		"   \"content_base64\": \"AAEC\\r\\n/w==\"},"
		"  {\"filename\": \"n.txt\", \"content_type\": \"Text/Plain\","
		"   \"content_base64\": \"\"}],"
		" \"reply_to_message\": \"<orig@example.test>\","
		" \"idempotency_key\": \"k-123\", \"bulk\": true}";
	struct mx_compose_req *r;
	struct mx_error e;
	struct msg m;

	ck_assert_int_eq(from_json(doc, &r, &e), MX_OK);
	ck_assert_str_eq(r->c.to, "Bob <bob@example.test>, carol@example.test");
	ck_assert_str_eq(r->c.cc, "dave@example.test");
	ck_assert_str_eq(r->c.bcc, "");
	ck_assert_uint_eq(r->c.natt, 2);
	ck_assert_uint_eq(r->c.att[0].len, 4);
	ck_assert(memcmp(r->c.att[0].data, "\0\1\2\377", 4) == 0);
	ck_assert_uint_eq(r->c.att[1].len, 0);
	ck_assert_str_eq(r->reply_to_message, "<orig@example.test>");
	ck_assert_str_eq(r->idempotency_key, "k-123");
	ck_assert(r->c.bulk);
	r->c.from_addr = "alice@example.test";
	compose_ok(&r->c, &m);
	ck_assert_ptr_nonnull(strstr(m.data, "\r\nPrecedence: bulk\r\n"));
	ck_assert_ptr_nonnull(strstr(m.data, "Content-Type: text/plain;"
				     " name=\"n.txt\""));
	ck_assert_uint_eq(m.out.nrcpts, 3);
	py_expect(m.path, (const char *const[]){
		"subject", "Grüße",
		"parts.2.filename", "x.bin",
		NULL });
	msg_free(&m);
	mx_compose_req_free(&r);
	ck_assert_ptr_null(r);
}
END_TEST

START_TEST(test_json_bad)
{
	static const struct {
		const char *doc;
		int rc;
		const char *want;
	} t[] = {
		{ "", MX_ERR_PARSE, "JSON: " },
		{ "[1]", MX_ERR_PARSE, "must be an object" },
		{ "{\"to\": 5}", MX_ERR_PARSE, "to: must be a string or an array" },
		{ "{\"to\": [\"a@b.test\", 7]}", MX_ERR_PARSE,
		  "to[1]: must be a string" },
		{ "{\"subject\": [\"x\"]}", MX_ERR_PARSE,
		  "subject: must be a string" },
		{ "{\"bulk\": \"yes\"}", MX_ERR_PARSE, "bulk: must be true or false" },
		{ "{\"attachments\": {}}", MX_ERR_PARSE,
		  "attachments: must be an array" },
		{ "{\"attachments\": [\"x\"]}", MX_ERR_PARSE,
		  "attachments[0]: must be an object" },
		{ "{\"attachments\": [{\"path\": \"/x\", \"size\": 1}]}",
		  MX_ERR_PARSE, "attachments[0].size: unknown key" },
		{ "{\"attachments\": [{\"path\": \"/x\", \"filename\": \"y\","
		  " \"content_base64\": \"AA==\"}]}", MX_ERR_PARSE,
		  "either path or content_base64" },
		{ "{\"attachments\": [{\"content_base64\": \"AA==\"}]}",
		  MX_ERR_PARSE, "content_base64 needs a filename" },
		{ "{\"attachments\": [{\"filename\": \"y\", \"content_base64\":"
		  " \"AA=A\"}]}", MX_ERR_PARSE, "not valid base64" },
		{ "{\"attachments\": [{\"filename\": \"y\", \"content_base64\":"
		  " \"A-BC\"}]}", MX_ERR_PARSE, "not valid base64" },
		{ "{\"attachments\": [{\"filename\": \"y\", \"content_base64\":"
		  " \"ABC\"}]}", MX_ERR_PARSE, "not valid base64" },
		{ "{\"from\": \"x@y.test\"}", MX_ERR_PARSE, "unknown key 'from'" },
		{ "{\"to\": \"a@b.test\", \"to\": \"c@d.test\"}", MX_ERR_PARSE,
		  "duplicate" },
		{ "{\"subject\": \"a\\u0000b\"}", MX_ERR_PARSE, "JSON: " },
		{ "{\"idempotency_key\": \"\"}", MX_ERR_INVAL, "idempotency_key" },
		{ "{\"idempotency_key\": \"a b\"}", MX_ERR_INVAL,
		  "idempotency_key" },
		{ "{\"idempotency_key\": 12}", MX_ERR_PARSE,
		  "idempotency_key: must be a string" },
		{ "{\"reply_to_message\": null}", MX_ERR_PARSE,
		  "reply_to_message: must be a string" },
	};
	struct mx_compose_req *r = (struct mx_compose_req *)1;
	struct mx_error e;
	struct mx_buf b = {0};
	size_t i;

	for (i = 0; i < MX_ARRAY_SIZE(t); i++) {
		ck_assert_int_eq(from_json(t[i].doc, &r, &e), t[i].rc);
		ck_assert_ptr_null(r);
		ck_assert_msg(strstr(e.detail, t[i].want), "%s: %s", t[i].doc,
			      e.detail);
	}
	/* Huge values: a 5,000 byte subject, a 17 MB text, 101 attachments. */
	mx_buf_puts(&b, "{\"subject\": \"");
	for (i = 0; i < 5000; i++)
		mx_buf_puts(&b, "x");
	mx_buf_puts(&b, "\"}");
	ck_assert_int_eq(from_json(b.data, &r, &e), MX_ERR_INVAL);
	ck_assert_str_eq(e.detail, "subject: 5000 bytes, at most 4000");
	mx_buf_reset(&b);
	mx_buf_puts(&b, "{\"text\": \"");
	ck_assert_int_eq(mx_buf_reserve(&b, 17 << 20), 0);
	memset(b.data + b.len, 'y', 17 << 20);
	b.len += 17 << 20;
	mx_buf_puts(&b, "\"}");
	ck_assert_int_eq(from_json(b.data, &r, &e), MX_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(e.detail, "text: 17825792 bytes, at most"));
	mx_buf_reset(&b);
	mx_buf_puts(&b, "{\"attachments\": [");
	for (i = 0; i < 101; i++)
		mx_buf_printf(&b, "%s{\"path\": \"/x\"}", i ? "," : "");
	mx_buf_puts(&b, "]}");
	ck_assert_int_eq(from_json(b.data, &r, &e), MX_ERR_INVAL);
	ck_assert_str_eq(e.detail, "attachments: 101, at most 100");
	ck_assert_int_eq(mx_compose_req_from_json(b.data, (size_t)49 << 20, &r,
						  &e), MX_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(e.detail, "JSON document of"));
	mx_buf_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("compose");
	TCase *tc = tcase_create("compose");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_simple);
	tcase_add_test(tc, test_unicode_headers);
	tcase_add_test(tc, test_text_encodings);
	tcase_add_test(tc, test_alternative_and_mixed);
	tcase_add_test(tc, test_filenames_2231);
	tcase_add_test(tc, test_big_binary);
	tcase_add_test(tc, test_rss_25mb);
	tcase_add_test(tc, test_limits);
	tcase_add_test(tc, test_injection);
	tcase_add_test(tc, test_bad_values);
	tcase_add_test(tc, test_bcc_envelope);
	tcase_add_test(tc, test_message_id);
	tcase_add_test(tc, test_reply_headers);
	tcase_add_test(tc, test_json_ok);
	tcase_add_test(tc, test_json_bad);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
