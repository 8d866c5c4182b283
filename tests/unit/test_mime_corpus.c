/*
 * Parses every message of the real-world corpus (MX_CORPUS_DIR, default
 * $MX_TOP_SRCDIR/../shared/corpus/real): mbox files are split into their
 * messages.  Checks that nothing crashes, every string is valid UTF-8 and
 * part sizes are sane.  Without the corpus the test is skipped.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mime/mime.h"
#include "mime/mime_int.h"

static char corpus[4096];
static size_t nfiles, nmessages, nparts;

static bool utf8_ok(const char *s)
{
	return s == NULL || mx_utf8_valid(s, strlen(s));
}

static void check_list(const struct mx_addr_list *l, const char *what)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		ck_assert_msg(utf8_ok(l->v[i].name) && utf8_ok(l->v[i].email),
			      "%s: invalid UTF-8 address", what);
}

static void check_message(const char *raw, size_t len, const char *what)
{
	struct mx_parsed p;
	char *text, *html, *s;
	uint8_t id[32];
	size_t i;

	ck_assert_int_eq(mx_mime_parse(raw, len, &p, NULL), MX_OK);
	nmessages++;
	ck_assert_msg(utf8_ok(p.subject) && utf8_ok(p.snippet) &&
		      utf8_ok(p.message_id) && utf8_ok(p.in_reply_to) &&
		      utf8_ok(p.error), "%s: invalid UTF-8", what);
	for (i = 0; i < p.nreferences; i++)
		ck_assert_msg(utf8_ok(p.references[i]), "%s: reference", what);
	check_list(&p.from, what);
	check_list(&p.sender, what);
	check_list(&p.reply_to, what);
	check_list(&p.to, what);
	check_list(&p.cc, what);
	check_list(&p.bcc, what);
	ck_assert_msg(p.nparts >= 1, "%s: no part", what);
	for (i = 0; i < p.nparts; i++) {
		const struct mx_part *q = &p.parts[i];

		nparts++;
		ck_assert_msg(q->part_id && q->part_id[0] &&
			      q->content_type && strchr(q->content_type, '/'),
			      "%s: part %zu incomplete", what, i);
		ck_assert_msg(utf8_ok(q->content_type) && utf8_ok(q->charset) &&
			      utf8_ok(q->filename) && utf8_ok(q->content_id),
			      "%s: part %s invalid UTF-8", what, q->part_id);
		ck_assert_msg(q->size <= len, "%s: part %s size %llu > %zu",
			      what, q->part_id, (unsigned long long)q->size,
			      len);
	}
	if (p.flags & MX_PARSED_BROKEN)
		ck_assert_msg(p.error != NULL, "%s: broken without reason",
			      what);
	s = mx_subject_normalize(p.subject, NULL);
	ck_assert_msg(s && utf8_ok(s), "%s: subject", what);
	free(s);
	mx_parsed_free(&p);
	ck_assert_int_eq(mx_mime_bodies(raw, len, &text, &html, NULL), MX_OK);
	ck_assert_msg(utf8_ok(text) && utf8_ok(html), "%s: bodies", what);
	free(text);
	free(html);
	mx_mime_identity(raw, len, id);
}

/* mbox: messages start at "From " lines at the beginning of a line. */
static void check_file(const char *path)
{
	char *data, what[4200];
	size_t len, start, i, k = 0;
	struct mx_error err;

	ck_assert_msg(mx_read_file(path, 64u << 20, &data, &len, &err) ==
		      MX_OK, "%s: %s", path, err.detail);
	nfiles++;
	if (len < 5 || memcmp(data, "From ", 5) != 0) {
		check_message(data, len, path);
		free(data);
		return;
	}
	for (start = 0, i = 1; i <= len; i++) {
		if (i < len && !(data[i - 1] == '\n' && len - i >= 5 &&
				 memcmp(data + i, "From ", 5) == 0))
			continue;
		snprintf(what, sizeof(what), "%s#%zu", path, ++k);
		check_message(data + start, i - start, what);
		start = i;
	}
	free(data);
}

static void walk(const char *dir)
{
	struct dirent **names;
	char path[4096];
	struct stat st;
	int n, k;

	n = scandir(dir, &names, NULL, alphasort);
	ck_assert_msg(n >= 0, "scandir %s", dir);
	for (k = 0; k < n; k++) {
		if (names[k]->d_name[0] != '.' &&
		    (size_t)snprintf(path, sizeof(path), "%s/%s", dir,
				     names[k]->d_name) < sizeof(path) &&
		    stat(path, &st) == 0) {
			if (S_ISDIR(st.st_mode))
				walk(path);
			else if (S_ISREG(st.st_mode))
				check_file(path);
		}
		free(names[k]);
	}
	free(names);
}

START_TEST(test_corpus)
{
	walk(corpus);
	ck_assert_uint_gt(nfiles, 0);
	fprintf(stderr, "# corpus: %zu files, %zu messages, %zu parts\n",
		nfiles, nmessages, nparts);
}
END_TEST

int main(void)
{
	const char *dir = getenv("MX_CORPUS_DIR");
	const char *top = getenv("MX_TOP_SRCDIR");
	struct stat st;
	Suite *s;
	TCase *tc;
	SRunner *sr;
	int nf;

	if (dir && *dir)
		snprintf(corpus, sizeof(corpus), "%s", dir);
	else
		snprintf(corpus, sizeof(corpus), "%s/../shared/corpus/real",
			 top && *top ? top : ".");
	if (stat(corpus, &st) != 0 || !S_ISDIR(st.st_mode)) {
		printf("1..0 # SKIP corpus absent: %s\n", corpus);
		return 0;
	}
	s = suite_create("mime_corpus");
	tc = tcase_create("corpus");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_corpus);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
