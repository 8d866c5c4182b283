/*
 * Unit tests: the message summaries kept in the date index
 * (mx_msg_summary_encode/decode, src/lib/store/record.c) and the listing
 * that reads them (mx_msg_query, src/lib/sync/query.c): a page decodes no
 * full record, and a store from before summaries (empty index values)
 * lists the same summaries from the full records.
 *
 * Every test runs on a fresh store in its own mkdtemp() directory, removed
 * afterwards (checked fixture: runs in the forked test process).
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "store/store.h"
#include "sync/query.h"

#define DATE_BIAS (UINT64_C(1) << 63)

static char g_top[64];
static char g_dir[128];
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

	strcpy(g_top, "/tmp/mx-test-query.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	snprintf(g_dir, sizeof(g_dir), "%s/data", g_top);
	mx_error_clear(&e);
	ck_assert_msg(mx_store_open(g_dir, &g_st, &e) == MX_OK, "%s", e.detail);
}

static void teardown(void)
{
	mx_store_close(&g_st);
	nftw(g_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void addr_add(struct mx_addr_list *l, const char *name,
		     const char *email)
{
	l->v = realloc(l->v, (l->n + 1) * sizeof(*l->v));
	ck_assert_ptr_nonnull(l->v);
	l->v[l->n].name = name ? strdup(name) : NULL;
	l->v[l->n].email = email ? strdup(email) : NULL;
	l->n++;
}

/* A message of account ACCT: subject, From, To, snippet, DATE (-1: none,
 * then IDATE sorts), NATT attachments among NATT + 1 parts. */
static void msg_fill(struct mx_msg *m, uint32_t acct, int i,
		     const char *subject, const char *from, const char *to,
		     int64_t date, int64_t idate, size_t natt)
{
	char raw[64];

	memset(m, 0, sizeof(*m));
	snprintf(raw, sizeof(raw), "Subject: %d\r\n\r\nbody %d\r\n", i, i);
	m->account_id = acct;
	mx_sha256(raw, strlen(raw), m->sha256);
	mx_sha256(raw, strlen(raw) - 2, m->identity);
	m->size = 1000 + (uint64_t)i;
	m->internaldate = idate;
	m->added = 1700000000;
	m->p.date = date;
	m->p.subject = subject ? strdup(subject) : NULL;
	m->p.snippet = i % 2 ? strdup("a snippet \xc3\xa9") : NULL;
	snprintf(raw, sizeof(raw), "m%d@example.test", i);
	m->p.message_id = strdup(raw);
	addr_add(&m->p.from, i % 3 ? "Ann \"A\" B" : NULL, from);
	addr_add(&m->p.to, NULL, to);
	if (i % 2)
		addr_add(&m->p.to, "Group", NULL);
	addr_add(&m->p.cc, "Cc", "cc@example.test");
	m->p.nparts = natt + 1;
	m->p.parts = calloc(m->p.nparts, sizeof(*m->p.parts));
	ck_assert_ptr_nonnull(m->p.parts);
	for (size_t k = 0; k < m->p.nparts; k++) {
		m->p.parts[k].part_id = strdup(k ? "2" : "1");
		m->p.parts[k].content_type = strdup(k ? "image/png"
						      : "text/plain");
		m->p.parts[k].attachment = k > 0;
	}
}

/* Adds 6 messages to account 1 (folder 5) and 2 to account 2 (folder 6),
 * with flags on some locations; their ids in IDS. */
static void fill(uint64_t ids[8])
{
	static const char *const subj[] = {"Hello", NULL, "Re: Hello",
					   "Invoice 42", "",
					   "we\"ek\\ly\x01\x1f\n\t\r \xc3\xa9 </b>",
					   "other", "Re: other"};
	static char raw[2048];
	struct mx_txn t;
	struct mx_error e;

	memset(raw, 'x', sizeof(raw));
	mx_error_clear(&e);
	ck_assert_msg(mx_txn_begin(g_st, true, &t, &e) == MX_OK, "%s",
		      e.detail);
	for (int i = 0; i < 8; i++) {
		uint32_t acct = i < 6 ? 1 : 2;
		struct mx_msg m;
		struct mx_loc l = {acct == 1 ? 5 : 6, (uint32_t)i + 1, 0, 1,
				   i % 2 ? MX_FL_SEEN : MX_FL_FLAGGED, NULL};

		msg_fill(&m, acct, i, subj[i],
			 i % 2 ? "bob@example.test" : "ann@example.test",
			 i == 3 ? "carol@example.test" : "me@example.test",
			 i == 4 ? -1 : 1700000000 + 3600 * (int64_t)i,
			 1600000000 + (int64_t)i, (size_t)(i % 3));
		ck_assert_msg(mx_store_msg_add(&t, &m, raw, &e) == MX_OK,
			      "%s", e.detail);
		ids[i] = m.id;
		l.msg_id = m.id;
		ck_assert_msg(mx_store_loc_put(&t, &l, &e) == MX_OK, "%s",
			      e.detail);
		if (i == 2) { /* a second location, in another folder */
			l.folder_id = 7;
			l.flags = MX_FL_SEEN;
			ck_assert_msg(mx_store_loc_put(&t, &l, &e) == MX_OK,
				      "%s", e.detail);
		}
		mx_msg_free(&m);
	}
	ck_assert_msg(mx_txn_commit(&t, &e) == MX_OK, "%s", e.detail);
}

/* Every page of F, LIMIT at a time, concatenated. */
static json_t *list_all(const struct mx_msg_filter *f, size_t limit)
{
	struct mx_msg_cursor next = {0, 0};
	json_t *all = json_array(), *msgs;
	struct mx_error e;
	bool more = true, first = true;

	while (more) {
		mx_error_clear(&e);
		ck_assert_msg(mx_msg_query(g_st, f, first ? NULL : &next, limit,
					   &msgs, &more, &next, &e) == MX_OK,
			      "%s", e.detail);
		json_array_extend(all, msgs);
		json_decref(msgs);
		first = false;
	}
	return all;
}

/* Sets every value of the date index to V (LEN bytes): "" is what a
 * store from before summaries holds. */
static void bydate_set_all(const void *v, size_t len)
{
	struct mx_txn t;
	struct mx_error e;
	MDB_cursor *c;
	MDB_val k, d;
	uint8_t keys[16][20];
	size_t n = 0;

	mx_error_clear(&e);
	ck_assert(mx_txn_begin(g_st, true, &t, &e) == MX_OK);
	ck_assert_int_eq(mdb_cursor_open(t.txn, g_st->dbi[MX_DB_BYDATE], &c),
			 0);
	for (int op = MDB_FIRST; mdb_cursor_get(c, &k, &d, op) == 0;
	     op = MDB_NEXT) {
		ck_assert_uint_eq(k.mv_size, 20);
		ck_assert_uint_lt(n, 16);
		memcpy(keys[n++], k.mv_data, 20);
	}
	mdb_cursor_close(c);
	ck_assert_uint_eq(n, 8);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(mx_db_put(&t, MX_DB_BYDATE, keys[i], 20, v, len,
					0, &e) == MX_OK, "%s", e.detail);
	ck_assert(mx_txn_commit(&t, &e) == MX_OK);
}

/* Replaces the records of the 8 messages IDS by junk. */
static void records_junk(const uint64_t ids[8])
{
	struct mx_txn t;
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert(mx_txn_begin(g_st, true, &t, &e) == MX_OK);
	for (int i = 0; i < 8; i++) {
		uint8_t k[8];

		mx_put_be64(k, ids[i]);
		ck_assert(mx_db_put(&t, MX_DB_MESSAGES, k, 8, "{", 1, 0, &e) ==
			  MX_OK);
	}
	ck_assert(mx_txn_commit(&t, &e) == MX_OK);
}

static const uint32_t g_accts[] = {1, 2};

/* The filters the API offers, each over both accounts. */
static void filters(struct mx_msg_filter *v, size_t *n_r)
{
	struct mx_msg_filter base = {g_accts, 2, 0, 0, -1, -1, NULL, NULL,
				     NULL, false, false, 0, 0};
	size_t n = 0;

	v[n++] = base;
	v[n] = base, v[n].naccounts = 1, n++;
	v[n] = base, v[n].folder = 7, n++;
	v[n] = base, v[n].unread = 1, n++;
	v[n] = base, v[n].flagged = 1, n++;
	v[n] = base, v[n].from = "BOB@example.test", n++;
	v[n] = base, v[n].to = "carol@example.test", n++;
	v[n] = base, v[n].subject = "hello", n++;
	v[n] = base, v[n].has_since = true, v[n].since = 1700003600, n++;
	v[n] = base, v[n].has_until = true, v[n].until = 1700007200, n++;
	*n_r = n;
}

/* The listing's summaries (written as text) agree with the message's
 * record as jansson builds it, for every field they share: escapes,
 * nulls and UTF-8 included. */
START_TEST(query_text_matches_record)
{
	static const char *const keys[] = {"id", "account", "thread",
					   "subject", "from", "to", "date",
					   "snippet", "flags", "size"};
	struct mx_msg_filter f[16];
	uint64_t ids[8];
	json_t *all, *m, *rec;
	struct mx_error e;
	size_t nf, i;

	fill(ids);
	filters(f, &nf);
	all = list_all(&f[0], 3);
	ck_assert_uint_eq(json_array_size(all), 8);
	json_array_foreach(all, i, m) {
		uint64_t id;

		ck_assert_int_eq(mx_msg_id_parse(json_string_value(
					 json_object_get(m, "id")), &id), 0);
		mx_error_clear(&e);
		ck_assert_msg(mx_msg_get_json(g_st, id, g_accts, 2, &rec, &e) ==
			      MX_OK, "%s", e.detail);
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			ck_assert_msg(json_equal(json_object_get(m, keys[k]),
						 json_object_get(rec, keys[k])),
				      "message %zu: %s differs", i, keys[k]);
		json_decref(rec);
	}
	/* The text form is that array, and valid JSON. */
	{
		struct mx_msg_cursor next;
		json_error_t je;
		json_t *parsed;
		char *text;
		size_t len;
		bool more;

		ck_assert(mx_msg_query_text(g_st, &f[0], NULL, 8, &text, &len,
					    &more, &next, &e) == MX_OK);
		ck_assert_uint_eq(len, strlen(text));
		parsed = json_loadb(text, len, 0, &je);
		ck_assert_msg(parsed != NULL, "%s", je.text);
		ck_assert(json_equal(parsed, all));
		ck_assert(!more);
		ck_assert_ptr_nonnull(strstr(text, "\"we\\\"ek\\\\ly\\u0001"
						    "\\u001f\\n\\t\\r \xc3\xa9 </b>\""));
		json_decref(parsed);
		free(text);
		f[0].naccounts = 0; /* nothing to search: an empty array */
		ck_assert(mx_msg_query_text(g_st, &f[0], NULL, 8, &text, &len,
					    &more, &next, &e) == MX_OK);
		ck_assert_str_eq(text, "[]");
		free(text);
	}
	json_decref(all);
}
END_TEST

START_TEST(summary_roundtrip)
{
	struct mx_msg m, d;
	struct mx_error e;
	uint32_t natt = 99;
	uint8_t *buf;
	size_t len;

	msg_fill(&m, 3, 1, "S\xc3\xbc" "bject", "x@example.test",
		 "y@example.test", 5, 6, 2);
	m.thread_id = 77;
	buf = mx_msg_summary_encode(&m, &len);
	ck_assert_ptr_nonnull(buf);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_msg_summary_decode(buf, len, &d, &natt, &e), MX_OK);
	ck_assert_uint_eq(d.thread_id, 77);
	ck_assert_uint_eq(d.size, m.size);
	ck_assert_uint_eq(natt, 2);
	ck_assert_str_eq(d.p.subject, m.p.subject);
	ck_assert_str_eq(d.p.snippet, m.p.snippet);
	ck_assert_uint_eq(d.p.from.n, 1);
	ck_assert_str_eq(d.p.from.v[0].name, "Ann \"A\" B");
	ck_assert_str_eq(d.p.from.v[0].email, "x@example.test");
	ck_assert_uint_eq(d.p.to.n, 2);
	ck_assert_ptr_null(d.p.to.v[0].name);
	ck_assert_str_eq(d.p.to.v[0].email, "y@example.test");
	ck_assert_str_eq(d.p.to.v[1].name, "Group");
	ck_assert_ptr_null(d.p.to.v[1].email);
	ck_assert_uint_eq(d.p.cc.n, 0); /* not in a summary */
	ck_assert_uint_eq(d.p.nparts, 0);
	mx_msg_free(&d);

	/* Every truncation, an extra byte and an unknown version are
	 * refused (MX_ERR_STORE: the listing then reads the record). */
	for (size_t cut = 0; cut < len; cut++) {
		mx_error_clear(&e);
		ck_assert_int_eq(mx_msg_summary_decode(buf, cut, &d, &natt, &e),
				 MX_ERR_STORE);
		ck_assert_ptr_nonnull(strstr(e.detail, "message summary"));
	}
	{
		uint8_t *big = malloc(len + 1);

		ck_assert_ptr_nonnull(big);
		memcpy(big, buf, len);
		big[len] = 0;
		ck_assert_int_eq(mx_msg_summary_decode(big, len + 1, &d, &natt,
						       &e), MX_ERR_STORE);
		free(big);
	}
	buf[0] = 2;
	ck_assert_int_eq(mx_msg_summary_decode(buf, len, &d, &natt, &e),
			 MX_ERR_STORE);
	buf[0] = 1;
	/* Invalid UTF-8 (it would go into the JSON as it is): refused. */
	buf[21 + 4 + 1] = (uint8_t)0xff;
	ck_assert_int_eq(mx_msg_summary_decode(buf, len, &d, &natt, &e),
			 MX_ERR_STORE);
	buf[21 + 4 + 1] = 0xc3;
	/* An address count far beyond the bytes left is no allocation. */
	{
		size_t at = 21 + 4 + strlen(m.p.subject) + 4 +
			    strlen(m.p.snippet);

		mx_put_be32(buf + at, 1999);
		ck_assert_int_eq(mx_msg_summary_decode(buf, len, &d, &natt,
						       &e), MX_ERR_STORE);
	}
	free(buf);
	mx_msg_free(&m);
}
END_TEST

/* The date index holds a summary of each message. */
START_TEST(summary_stored)
{
	uint64_t ids[8];
	struct mx_txn t;
	struct mx_error e;
	struct mx_msg d;
	uint32_t natt;
	uint8_t k[20];
	MDB_val v;

	fill(ids);
	mx_error_clear(&e);
	ck_assert(mx_txn_begin(g_st, false, &t, &e) == MX_OK);
	mx_put_be32(k, 1);
	mx_put_be64(k + 4, (uint64_t)(1700000000 + 3 * 3600) ^ DATE_BIAS);
	mx_put_be64(k + 12, ids[3]);
	ck_assert_int_eq(mx_db_get(&t, MX_DB_BYDATE, k, 20, &v, &e), MX_OK);
	ck_assert_int_eq(mx_msg_summary_decode(v.mv_data, v.mv_size, &d, &natt,
					       &e), MX_OK);
	ck_assert_str_eq(d.p.subject, "Invoice 42");
	ck_assert_str_eq(d.p.to.v[0].email, "carol@example.test");
	ck_assert_uint_eq(natt, 0);
	mx_msg_free(&d);
	mx_txn_abort(&t);
}
END_TEST

/* A page reads the summaries, not the full records: with every record
 * replaced by junk the listing still shows every message in full. */
START_TEST(query_reads_no_record)
{
	struct mx_msg_filter f[16];
	json_t *before[16] = {NULL}, *after;
	uint64_t ids[8];
	size_t nf;

	fill(ids);
	filters(f, &nf);
	for (size_t i = 0; i < nf; i++)
		before[i] = list_all(&f[i], 2);
	ck_assert_uint_eq(json_array_size(before[0]), 8);
	records_junk(ids);
	for (size_t i = 0; i < nf; i++) {
		after = list_all(&f[i], 2);
		ck_assert_msg(json_equal(before[i], after), "filter %zu", i);
		json_decref(after);
		json_decref(before[i]);
	}
}
END_TEST

/* A store from before summaries (empty values) and one whose summaries
 * do not decode list exactly what the summaries give, under every
 * filter and page size. */
START_TEST(query_without_summaries)
{
	struct mx_msg_filter f[16];
	json_t *want[16][2], *got;
	static const size_t limits[] = {1, 3};
	uint64_t ids[8];
	size_t nf;

	fill(ids);
	filters(f, &nf);
	for (size_t i = 0; i < nf; i++)
		for (size_t j = 0; j < 2; j++)
			want[i][j] = list_all(&f[i], limits[j]);
	/* Spot checks of the summaries themselves. */
	{
		json_t *m = json_array_get(want[0][0], 0);
		char id[17];

		mx_msg_id_str(ids[7], id);
		ck_assert_str_eq(json_string_value(json_object_get(m, "id")),
				 id);
		ck_assert_str_eq(json_string_value(json_object_get(m, "subject")),
				 "Re: other");
		ck_assert_int_eq(json_integer_value(json_object_get(m, "attachments")),
				 1);
		ck_assert_int_eq(json_array_size(want[7][0]), 2);
		ck_assert_int_eq(json_array_size(want[2][0]), 1);
		ck_assert_int_eq(json_array_size(want[6][0]), 1);
	}
	for (int round = 0; round < 2; round++) {
		if (round == 0)
			bydate_set_all("", 0);
		else
			bydate_set_all("\x01junk", 5);
		for (size_t i = 0; i < nf; i++)
			for (size_t j = 0; j < 2; j++) {
				got = list_all(&f[i], limits[j]);
				ck_assert_msg(json_equal(want[i][j], got),
					      "round %d filter %zu limit %zu",
					      round, i, limits[j]);
				json_decref(got);
			}
	}
	for (size_t i = 0; i < nf; i++)
		for (size_t j = 0; j < 2; j++)
			json_decref(want[i][j]);
}
END_TEST

/* A store from before summaries gets them, a batch at a time: then a
 * listing reads no record (junk records list the same). */
START_TEST(summaries_fill)
{
	struct mx_msg_filter f[16];
	json_t *want, *got;
	uint64_t ids[8];
	uint8_t pos[20] = {0};
	struct mx_error e;
	size_t nf, done, total = 0, calls = 0;
	bool more = true;

	fill(ids);
	filters(f, &nf);
	want = list_all(&f[0], 3);
	bydate_set_all("", 0);
	while (more) {
		mx_error_clear(&e);
		ck_assert_msg(mx_store_summaries_fill(g_st, pos, 3, &done, &more,
						      &e) == MX_OK, "%s", e.detail);
		total += done;
		ck_assert_uint_lt(++calls, 10);
	}
	ck_assert_uint_eq(total, 8);
	ck_assert_uint_eq(calls, 3); /* 3 + 3 + 2 */
	/* Nothing left: a new walk fills nothing. */
	memset(pos, 0, sizeof(pos));
	ck_assert(mx_store_summaries_fill(g_st, pos, 3, &done, &more, &e) ==
		  MX_OK);
	ck_assert_uint_eq(done, 0);
	ck_assert(!more);
	records_junk(ids);
	got = list_all(&f[0], 3);
	ck_assert(json_equal(want, got));
	json_decref(got);
	json_decref(want);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("query");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, summary_roundtrip);
	tcase_add_test(tc, summary_stored);
	tcase_add_test(tc, query_reads_no_record);
	tcase_add_test(tc, query_without_summaries);
	tcase_add_test(tc, query_text_matches_record);
	tcase_add_test(tc, summaries_fill);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
