/*
 * Unit tests: the LMDB store (src/lib/store): open and schema version,
 * record codecs, accounts, folders, messages and blobs, threads,
 * locations, orphans, events, map growth and a full map; the guards on
 * the files (truncated data.mdb, replaced lock.mdb, the daemon lock).
 *
 * Every test runs on a fresh store in its own mkdtemp() directory, removed
 * afterwards (checked fixture: runs in the forked test process).
 */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "store/store.h"

#define MIB ((size_t)1 << 20)

static char g_top[64];   /* mkdtemp() directory */
static char g_dir[128];  /* the store directory inside it */
static struct mx_store *g_st;

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void open_store(void)
{
	struct mx_error e;
	int rc;

	mx_error_clear(&e);
	rc = mx_store_open(g_dir, &g_st, &e);
	ck_assert_msg(rc == MX_OK, "open %s: %s", g_dir, e.detail);
}

static void setup(void)
{
	strcpy(g_top, "/tmp/mx-test-store.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	snprintf(g_dir, sizeof(g_dir), "%s/data", g_top);
	g_st = NULL;
}

static void teardown(void)
{
	mx_store_close(&g_st);
	nftw(g_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---- */

static void wbegin(struct mx_txn *t)
{
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_msg(mx_txn_begin(g_st, true, t, &e) == MX_OK, "%s", e.detail);
}

static void rbegin(struct mx_txn *t)
{
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_msg(mx_txn_begin(g_st, false, t, &e) == MX_OK, "%s", e.detail);
}

static void commit(struct mx_txn *t)
{
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_msg(mx_txn_commit(t, &e) == MX_OK, "%s", e.detail);
}

static size_t db_entries(struct mx_txn *t, enum mx_dbi db)
{
	MDB_stat ms;

	ck_assert_int_eq(mdb_stat(t->txn, t->st->dbi[db], &ms), 0);
	return ms.ms_entries;
}

/* A message record for RAW; identity from IDENT (or from RAW). */
static void msg_init(struct mx_msg *m, uint32_t acct, const char *raw,
		     const char *ident, const char *mid, const char *irt,
		     const char *subject, int64_t idate)
{
	memset(m, 0, sizeof(*m));
	m->account_id = acct;
	mx_sha256(raw, strlen(raw), m->sha256);
	m->size = strlen(raw);
	m->internaldate = idate;
	m->added = 1700000000;
	ident = ident ? ident : raw;
	mx_sha256(ident, strlen(ident), m->identity);
	m->p.message_id = mx_strdup(mid);
	m->p.in_reply_to = mx_strdup(irt);
	m->p.subject = mx_strdup(subject);
	m->p.date = -1;
}

static void msg_set_refs(struct mx_msg *m, const char *const *refs, size_t n)
{
	m->p.references = calloc(n, sizeof(char *));
	ck_assert_ptr_nonnull(m->p.references);
	for (size_t i = 0; i < n; i++)
		m->p.references[i] = strdup(refs[i]);
	m->p.nreferences = n;
}

/* Adds M with RAW in its own write transaction; returns the id. */
static uint64_t msg_commit(struct mx_msg *m, const char *raw)
{
	struct mx_txn t;
	struct mx_error e;
	int rc;

	wbegin(&t);
	mx_error_clear(&e);
	rc = mx_store_msg_add(&t, m, raw, &e);
	if (rc)
		mx_txn_abort(&t);
	ck_assert_msg(rc == MX_OK, "msg_add: %s", e.detail);
	commit(&t);
	ck_assert_uint_ne(m->id, 0);
	return m->id;
}

/* Adds a plain message; returns its id and *THREAD_R. */
static uint64_t add_simple(uint32_t acct, const char *raw, const char *mid,
			   const char *irt, const char *const *refs,
			   size_t nrefs, const char *subject, int64_t idate,
			   uint64_t *thread_r)
{
	struct mx_msg m;
	uint64_t id;

	msg_init(&m, acct, raw, NULL, mid, irt, subject, idate);
	if (nrefs)
		msg_set_refs(&m, refs, nrefs);
	id = msg_commit(&m, raw);
	if (thread_r)
		*thread_r = m.thread_id;
	mx_msg_free(&m);
	return id;
}

static uint32_t add_account(const char *name)
{
	struct mx_account a = {0};
	struct mx_txn t;
	struct mx_error e;
	uint32_t id;

	a.name = strdup(name);
	a.host = strdup("imap.example.test");
	a.user = strdup("u");
	a.port = 993;
	wbegin(&t);
	mx_error_clear(&e);
	ck_assert_msg(mx_store_account_put(&t, &a, &e) == MX_OK, "%s",
		      e.detail);
	commit(&t);
	id = a.id;
	mx_account_free(&a);
	return id;
}

static uint32_t add_folder(uint32_t acct, const char *name)
{
	struct mx_folder f = {0};
	struct mx_txn t;
	struct mx_error e;
	uint32_t id;

	f.account_id = acct;
	f.name = strdup(name);
	f.wire = strdup(name);
	f.delim = '/';
	wbegin(&t);
	mx_error_clear(&e);
	ck_assert_msg(mx_store_folder_put(&t, &f, &e) == MX_OK, "%s",
		      e.detail);
	commit(&t);
	id = f.id;
	mx_folder_free(&f);
	return id;
}

/* ---- open, schema ---- */

START_TEST(test_open_creates_dir_and_files)
{
	struct stat sb;
	char path[256];
	struct mx_txn t;
	struct mx_error e;
	MDB_val v;

	open_store();
	ck_assert_int_eq(stat(g_dir, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));
	ck_assert_msg((sb.st_mode & 0777) == 0700, "dir mode %o",
		      (unsigned)(sb.st_mode & 0777));
	snprintf(path, sizeof(path), "%s/data.mdb", g_dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_msg((sb.st_mode & 077) == 0, "data.mdb mode %o",
		      (unsigned)(sb.st_mode & 0777));
	snprintf(path, sizeof(path), "%s/lock.mdb", g_dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_str_eq(mx_store_dir(g_st), g_dir);

	rbegin(&t);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_db_get(&t, MX_DB_META, "schema_version", 14, &v,
				   &e), MX_OK);
	ck_assert_uint_eq(v.mv_size, 4);
	ck_assert_uint_eq(mx_get_be32(v.mv_data), 1);
	ck_assert_uint_eq(MX_SCHEMA_VERSION, 1);
	mx_txn_abort(&t);

	/* Reopen: the data is kept. */
	add_account("keep");
	mx_store_close(&g_st);
	ck_assert_ptr_null(g_st);
	open_store();
	{
		struct mx_account a;

		rbegin(&t);
		ck_assert_int_eq(mx_store_account_get(&t, "keep", &a, &e),
				 MX_OK);
		ck_assert_str_eq(a.name, "keep");
		mx_account_free(&a);
		mx_txn_abort(&t);
	}
	mx_store_close(&g_st);
	mx_store_close(&g_st); /* NULL-safe */
	mx_store_close(NULL);
}
END_TEST

START_TEST(test_schema_newer_refused)
{
	struct mx_txn t;
	struct mx_error e;
	uint8_t be[4];
	int rc;

	open_store();
	wbegin(&t);
	mx_put_be32(be, 99);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_db_put(&t, MX_DB_META, "schema_version", 14, be,
				   4, 0, &e), MX_OK);
	commit(&t);
	mx_store_close(&g_st);

	mx_error_clear(&e);
	rc = mx_store_open(g_dir, &g_st, &e);
	ck_assert_int_eq(rc, MX_ERR_SCHEMA);
	ck_assert_ptr_null(g_st);
	ck_assert_msg(strstr(e.detail, "99") != NULL, "detail: %s", e.detail);
	ck_assert_msg(strstr(e.detail, "schema") != NULL, "detail: %s",
		      e.detail);
}
END_TEST

/* ---- record codecs ---- */

static void addr_set(struct mx_addr_list *l, const char *name,
		     const char *email)
{
	l->v = calloc(1, sizeof(*l->v));
	ck_assert_ptr_nonnull(l->v);
	l->v[0].name = mx_strdup(name);
	l->v[0].email = mx_strdup(email);
	l->n = 1;
}

static void addr_eq(const struct mx_addr_list *a, const char *name,
		    const char *email)
{
	ck_assert_uint_eq(a->n, 1);
	if (name)
		ck_assert_str_eq(a->v[0].name, name);
	else
		ck_assert_ptr_null(a->v[0].name);
	ck_assert_str_eq(a->v[0].email, email);
}

START_TEST(test_msg_codec_roundtrip)
{
	static const char *const refs[] = {"root@x.test", "mid@x.test"};
	struct mx_msg m, d;
	struct mx_error e;
	char *s;
	size_t len = 0;

	msg_init(&m, 7, "raw bytes", "ident", "m1@x.test", "mid@x.test",
		 "Grüße — 日本語 ✓", -12345);
	m.id = UINT64_C(0x0123456789abcdef);
	m.thread_id = UINT64_C(0xfedcba9876543210); /* > INT64_MAX */
	m.size = UINT64_C(5000000000);
	m.added = 1700000001;
	msg_set_refs(&m, refs, 2);
	m.p.date = 1699999999;
	addr_set(&m.p.from, "Jörg Müller", "joerg@example.test");
	addr_set(&m.p.sender, NULL, "sender@example.test");
	addr_set(&m.p.reply_to, "R", "r@example.test");
	addr_set(&m.p.to, "To Person", "to@example.test");
	addr_set(&m.p.cc, "Cc", "cc@example.test");
	addr_set(&m.p.bcc, "Bcc", "bcc@example.test");
	m.p.snippet = strdup("Hello — snippet");
	m.p.parts = calloc(2, sizeof(*m.p.parts));
	m.p.nparts = 2;
	m.p.parts[0].part_id = strdup("1");
	m.p.parts[0].content_type = strdup("text/plain");
	m.p.parts[0].charset = strdup("utf-8");
	m.p.parts[0].size = 42;
	m.p.parts[1].part_id = strdup("2");
	m.p.parts[1].content_type = strdup("application/pdf");
	m.p.parts[1].filename = strdup("Rechnung ä.pdf");
	m.p.parts[1].content_id = strdup("cid1@x");
	m.p.parts[1].disposition = strdup("attachment");
	m.p.parts[1].size = 123456;
	m.p.parts[1].attachment = true;
	m.p.flags = MX_PARSED_CHARSET | MX_PARSED_BROKEN;
	m.p.error = strdup("broken multipart");

	s = mx_msg_encode(&m, &len);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(len, strlen(s));
	mx_error_clear(&e);
	ck_assert_int_eq(mx_msg_decode(s, len, &d, &e), MX_OK);
	free(s);

	ck_assert(d.id == m.id);
	ck_assert_uint_eq(d.account_id, 7);
	ck_assert(memcmp(d.sha256, m.sha256, 32) == 0);
	ck_assert(memcmp(d.identity, m.identity, 32) == 0);
	ck_assert(d.size == m.size);
	ck_assert(d.internaldate == -12345);
	ck_assert(d.added == 1700000001);
	ck_assert(d.thread_id == m.thread_id);
	ck_assert_str_eq(d.p.message_id, "m1@x.test");
	ck_assert_str_eq(d.p.in_reply_to, "mid@x.test");
	ck_assert_uint_eq(d.p.nreferences, 2);
	ck_assert_str_eq(d.p.references[0], "root@x.test");
	ck_assert_str_eq(d.p.references[1], "mid@x.test");
	ck_assert_str_eq(d.p.subject, "Grüße — 日本語 ✓");
	ck_assert(d.p.date == 1699999999);
	addr_eq(&d.p.from, "Jörg Müller", "joerg@example.test");
	addr_eq(&d.p.sender, NULL, "sender@example.test");
	addr_eq(&d.p.reply_to, "R", "r@example.test");
	addr_eq(&d.p.to, "To Person", "to@example.test");
	addr_eq(&d.p.cc, "Cc", "cc@example.test");
	addr_eq(&d.p.bcc, "Bcc", "bcc@example.test");
	ck_assert_str_eq(d.p.snippet, "Hello — snippet");
	ck_assert_uint_eq(d.p.nparts, 2);
	ck_assert_str_eq(d.p.parts[0].part_id, "1");
	ck_assert_str_eq(d.p.parts[0].content_type, "text/plain");
	ck_assert_str_eq(d.p.parts[0].charset, "utf-8");
	ck_assert_ptr_null(d.p.parts[0].filename);
	ck_assert_uint_eq(d.p.parts[0].size, 42);
	ck_assert(!d.p.parts[0].attachment);
	ck_assert_str_eq(d.p.parts[1].filename, "Rechnung ä.pdf");
	ck_assert_str_eq(d.p.parts[1].content_id, "cid1@x");
	ck_assert_str_eq(d.p.parts[1].disposition, "attachment");
	ck_assert_uint_eq(d.p.parts[1].size, 123456);
	ck_assert(d.p.parts[1].attachment);
	ck_assert_uint_eq(d.p.flags, MX_PARSED_CHARSET | MX_PARSED_BROKEN);
	ck_assert_str_eq(d.p.error, "broken multipart");

	/* The display form uses the hex id. */
	s = mx_msg_to_json(&m, 2);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_nonnull(strstr(s, "\"0123456789abcdef\""));
	free(s);
	mx_msg_free(&d);
	mx_msg_free(&m);
}
END_TEST

START_TEST(test_msg_codec_minimal)
{
	struct mx_msg m, d;
	struct mx_error e;
	char *s;
	size_t len;

	msg_init(&m, 1, "x", NULL, NULL, NULL, NULL, 0);
	s = mx_msg_encode(&m, &len);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(mx_msg_decode(s, len, &d, &e), MX_OK);
	free(s);
	ck_assert_ptr_null(d.p.message_id);
	ck_assert_ptr_null(d.p.subject);
	ck_assert_uint_eq(d.p.nreferences, 0);
	ck_assert_uint_eq(d.p.nparts, 0);
	ck_assert_uint_eq(d.p.from.n, 0);
	ck_assert(d.p.date == -1);
	mx_msg_free(&d);
	mx_msg_free(&m);
}
END_TEST

START_TEST(test_corrupt_records)
{
	static const char *const bad[] = {
		"", "{", "{not json", "[1,2,3]", "\"str\"", "42", "null",
		"{\"id\":1}",                         /* no sha256 */
		"{\"id\":1,\"sha256\":\"zz\"}",         /* bad sha256 */
		"{\"sha256\":\"00112233445566778899aabbccddeeff00112233"
		"445566778899aabbccddeeXX\"}",
	};
	struct mx_msg m;
	struct mx_folder f;
	struct mx_account a;
	struct mx_error e;

	for (size_t i = 0; i < MX_ARRAY_SIZE(bad); i++) {
		mx_error_clear(&e);
		ck_assert_msg(mx_msg_decode(bad[i], strlen(bad[i]), &m, &e) ==
			      MX_ERR_STORE, "msg '%s' accepted", bad[i]);
		ck_assert_str_ne(e.detail, "");
		mx_msg_free(&m);
	}
	for (size_t i = 0; i < 7; i++) {
		mx_error_clear(&e);
		ck_assert_msg(mx_folder_decode(bad[i], strlen(bad[i]), &f, &e) ==
			      MX_ERR_STORE, "folder '%s' accepted", bad[i]);
		mx_folder_free(&f);
		mx_error_clear(&e);
		ck_assert_msg(mx_account_decode(bad[i], strlen(bad[i]), &a,
						&e) == MX_ERR_STORE,
			      "account '%s' accepted", bad[i]);
		mx_account_free(&a);
	}
	/* Wrong types inside an object are tolerated, not crashed on. */
	{
		const char *w = "{\"sha256\":\"00112233445566778899aabbccddeeff"
				"00112233445566778899aabbccddeeff\",\"subject\":5,"
				"\"references\":[1,null,\"a\"],\"from\":[5,"
				"{\"email\":3}],\"parts\":[7]}";

		ck_assert_int_eq(mx_msg_decode(w, strlen(w), &m, &e), MX_OK);
		ck_assert_ptr_null(m.p.subject);
		ck_assert_uint_eq(m.p.nreferences, 3);
		ck_assert_str_eq(m.p.references[2], "a");
		mx_msg_free(&m);
	}
	/* Not NUL-terminated input: only LEN bytes are read. */
	{
		char buf[4] = {'{', '}', 'x', 'x'};

		ck_assert_int_eq(mx_folder_decode(buf, 2, &f, &e), MX_OK);
		mx_folder_free(&f);
	}
}
END_TEST

START_TEST(test_folder_account_codec)
{
	struct mx_folder f = {0}, fd;
	struct mx_account a = {0}, ad;
	struct mx_error e;
	char *s;
	size_t len;

	f.id = 3;
	f.account_id = 9;
	f.name = strdup("Entwürfe/Ärger");
	f.wire = strdup("Entw&APw-rfe/&AMQ-rger");
	f.delim = '/';
	f.special = MX_SU_DRAFTS | MX_SU_INBOX;
	f.noselect = true;
	f.gone = true;
	f.uidvalidity = 4000000000u;
	f.uidnext = 4294967295u;
	f.highestmodseq = UINT64_C(0x7fffffffffffffff);
	f.initial_top = 100;
	f.initial_low = 5;
	f.initial_done = true;
	f.last_sync = 1700000000;
	f.server_exists = 77;
	s = mx_folder_encode(&f, &len);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(mx_folder_decode(s, len, &fd, &e), MX_OK);
	free(s);
	ck_assert_uint_eq(fd.id, 3);
	ck_assert_uint_eq(fd.account_id, 9);
	ck_assert_str_eq(fd.name, f.name);
	ck_assert_str_eq(fd.wire, f.wire);
	ck_assert_int_eq(fd.delim, '/');
	ck_assert_uint_eq(fd.special, MX_SU_DRAFTS | MX_SU_INBOX);
	ck_assert(fd.noselect && fd.gone && fd.initial_done);
	ck_assert_uint_eq(fd.uidvalidity, 4000000000u);
	ck_assert_uint_eq(fd.uidnext, 4294967295u);
	ck_assert(fd.highestmodseq == f.highestmodseq);
	ck_assert_uint_eq(fd.initial_top, 100);
	ck_assert_uint_eq(fd.initial_low, 5);
	ck_assert(fd.last_sync == 1700000000);
	ck_assert_uint_eq(fd.server_exists, 77);
	mx_folder_free(&fd);
	/* No delimiter (flat namespace). */
	f.delim = 0;
	s = mx_folder_encode(&f, &len);
	ck_assert_int_eq(mx_folder_decode(s, len, &fd, &e), MX_OK);
	free(s);
	ck_assert_int_eq(fd.delim, 0);
	mx_folder_free(&fd);
	mx_folder_free(&f);

	a.id = 5;
	a.name = strdup("work");
	a.imap_url = strdup("imaps://u@h:994");
	a.host = strdup("h");
	a.port = 994;
	a.tls = MX_TLS_STARTTLS;
	a.user = strdup("ü@x");
	a.password = strdup("pw");
	a.password_file = strdup("/p");
	a.ca_file = strdup("/ca.pem");
	a.insecure_plaintext = true;
	a.timeout_s = 30;
	a.created = 1600000000;
	s = mx_account_encode(&a, &len);
	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(mx_account_decode(s, len, &ad, &e), MX_OK);
	free(s);
	ck_assert_uint_eq(ad.id, 5);
	ck_assert_str_eq(ad.name, "work");
	ck_assert_str_eq(ad.imap_url, "imaps://u@h:994");
	ck_assert_str_eq(ad.host, "h");
	ck_assert_uint_eq(ad.port, 994);
	ck_assert_int_eq(ad.tls, MX_TLS_STARTTLS);
	ck_assert_str_eq(ad.user, "ü@x");
	ck_assert_str_eq(ad.password, "pw");
	ck_assert_str_eq(ad.password_file, "/p");
	ck_assert_str_eq(ad.ca_file, "/ca.pem");
	ck_assert(ad.insecure_plaintext);
	ck_assert_int_eq(ad.timeout_s, 30);
	ck_assert(ad.created == 1600000000);
	mx_account_free(&ad);
	mx_account_free(&a);
}
END_TEST

/*
 * A field that is not valid UTF-8 must not vanish silently from the
 * record: jansson's json_string() refuses it and set_str() ignores the
 * failure, so the account is stored without its password.
 */
START_TEST(test_account_codec_non_utf8_password)
{
	struct mx_account a = {0}, ad;
	struct mx_error e;
	char *s;
	size_t len;

	a.id = 1;
	a.name = strdup("latin1");
	a.user = strdup("u");
	a.password = strdup("caf\xe9-pw"); /* ISO-8859-1 "café-pw" */
	s = mx_account_encode(&a, &len);
	if (s != NULL) {
		ck_assert_int_eq(mx_account_decode(s, len, &ad, &e), MX_OK);
		free(s);
		ck_assert_msg(ad.password != NULL &&
			      strcmp(ad.password, a.password) == 0,
			      "password not kept by the account codec");
		mx_account_free(&ad);
	}
	/* else: refusing to encode is an acceptable answer too. */
	mx_account_free(&a);
}
END_TEST

START_TEST(test_loc_codec)
{
	struct mx_loc l = {1, 2, UINT64_C(0x1122334455667788),
			   UINT64_C(0x8000000000000001), MX_FL_SEEN | MX_FL_DRAFT,
			   NULL}, d;
	uint8_t buf[64];
	size_t n;

	n = mx_loc_encode(&l, buf, sizeof(buf));
	ck_assert_uint_eq(n, 20);
	memset(&d, 0, sizeof(d));
	ck_assert_int_eq(mx_loc_decode(buf, n, &d), 0);
	ck_assert(d.msg_id == l.msg_id);
	ck_assert(d.modseq == l.modseq);
	ck_assert_uint_eq(d.flags, MX_FL_SEEN | MX_FL_DRAFT);
	ck_assert_ptr_null(d.keywords);

	l.keywords = (char *)(uintptr_t)"$Forwarded Junk $label1";
	n = mx_loc_encode(&l, buf, sizeof(buf));
	ck_assert_uint_eq(n, 20 + strlen(l.keywords));
	ck_assert_int_eq(mx_loc_decode(buf, n, &d), 0);
	ck_assert_str_eq(d.keywords, "$Forwarded Junk $label1");
	free(d.keywords);

	ck_assert_uint_eq(mx_loc_encode(&l, buf, 25), 0); /* too small */
	ck_assert_int_eq(mx_loc_decode(buf, 19, &d), -1);
}
END_TEST

START_TEST(test_msg_id_text)
{
	char s[17];
	uint64_t id = 0;

	mx_msg_id_str(UINT64_C(0x0123456789abcdef), s);
	ck_assert_str_eq(s, "0123456789abcdef");
	mx_msg_id_str(1, s);
	ck_assert_str_eq(s, "0000000000000001");
	mx_msg_id_str(UINT64_MAX, s);
	ck_assert_str_eq(s, "ffffffffffffffff");
	ck_assert_int_eq(mx_msg_id_parse("ffffffffffffffff", &id), 0);
	ck_assert(id == UINT64_MAX);
	ck_assert_int_eq(mx_msg_id_parse("0123456789abcdef", &id), 0);
	ck_assert(id == UINT64_C(0x0123456789abcdef));
	ck_assert_int_eq(mx_msg_id_parse("0123456789ABCDEF", &id), 0);
	ck_assert(id == UINT64_C(0x0123456789abcdef));
	ck_assert_int_eq(mx_msg_id_parse("2a", &id), 0);
	ck_assert(id == 42);
	ck_assert_int_eq(mx_msg_id_parse("0", &id), -1);
	ck_assert_int_eq(mx_msg_id_parse("0000000000000000", &id), -1);
	ck_assert_int_eq(mx_msg_id_parse("", &id), -1);
	ck_assert_int_eq(mx_msg_id_parse("10000000000000000", &id), -1);
	ck_assert_int_eq(mx_msg_id_parse("12345g", &id), -1);
	ck_assert_int_eq(mx_msg_id_parse("-1", &id), -1);
	ck_assert_int_eq(mx_msg_id_parse(" 1", &id), -1);
	ck_assert_int_eq(mx_msg_id_parse("0x1", &id), -1);
}
END_TEST

/* ---- accounts ---- */

START_TEST(test_accounts)
{
	struct mx_account a = {0}, g, *v = NULL;
	struct mx_txn t;
	struct mx_error e;
	size_t n = 0;

	open_store();
	ck_assert_uint_eq(add_account("alpha"), 1);
	ck_assert_uint_eq(add_account("beta"), 2);

	wbegin(&t);
	a.name = strdup("alpha");
	mx_error_clear(&e);
	ck_assert_int_eq(mx_store_account_put(&t, &a, &e), MX_ERR_EXISTS);
	ck_assert_ptr_nonnull(strstr(e.detail, "alpha"));
	mx_txn_abort(&t);
	mx_account_free(&a);

	rbegin(&t);
	ck_assert_int_eq(mx_store_account_get(&t, "beta", &g, &e), MX_OK);
	ck_assert_uint_eq(g.id, 2);
	ck_assert_str_eq(g.name, "beta");
	ck_assert_str_eq(g.host, "imap.example.test");
	ck_assert_uint_eq(g.port, 993);
	mx_account_free(&g);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_store_account_get(&t, "gamma", &g, &e),
			 MX_ERR_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(e.detail, "gamma"));
	ck_assert_int_eq(mx_store_account_list(&t, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].name, "alpha");
	ck_assert_str_eq(v[1].name, "beta");
	for (size_t i = 0; i < n; i++)
		mx_account_free(&v[i]);
	free(v);
	mx_txn_abort(&t);
}
END_TEST

/* ---- folders ---- */

START_TEST(test_folders)
{
	struct mx_folder f, *v = NULL;
	struct mx_txn t;
	struct mx_error e;
	size_t n = 0;
	uint32_t a1, a2, in1, ar1, in2, lng;
	char longname[700];

	open_store();
	a1 = add_account("one");
	a2 = add_account("two");
	in1 = add_folder(a1, "INBOX");
	ar1 = add_folder(a1, "Archive/2024");
	in2 = add_folder(a2, "INBOX");
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	lng = add_folder(a2, longname);
	ck_assert(in1 != ar1 && in1 != in2 && in2 != lng);

	rbegin(&t);
	ck_assert_int_eq(mx_store_folder_find(&t, a1, "INBOX", &f, &e), MX_OK);
	ck_assert_uint_eq(f.id, in1);
	ck_assert_uint_eq(f.account_id, a1);
	mx_folder_free(&f);
	ck_assert_int_eq(mx_store_folder_find(&t, a2, "INBOX", &f, &e), MX_OK);
	ck_assert_uint_eq(f.id, in2);
	ck_assert_uint_eq(f.account_id, a2);
	mx_folder_free(&f);
	ck_assert_int_eq(mx_store_folder_find(&t, a2, longname, &f, &e),
			 MX_OK);
	ck_assert_uint_eq(f.id, lng);
	ck_assert_str_eq(f.name, longname);
	mx_folder_free(&f);
	ck_assert_int_eq(mx_store_folder_find(&t, a2, "Archive/2024", &f, &e),
			 MX_ERR_NOTFOUND);
	ck_assert_int_eq(mx_store_folder_get(&t, ar1, &f, &e), MX_OK);
	ck_assert_str_eq(f.name, "Archive/2024");
	mx_folder_free(&f);
	ck_assert_int_eq(mx_store_folder_get(&t, 999, &f, &e),
			 MX_ERR_NOTFOUND);

	ck_assert_int_eq(mx_store_folder_list(&t, a1, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(v[i].account_id, a1);
	mx_folders_free(v, n);
	ck_assert_int_eq(mx_store_folder_list(&t, a2, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(v[i].account_id, a2);
	mx_folders_free(v, n);
	ck_assert_int_eq(mx_store_folder_list(&t, 77, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 0);
	mx_folders_free(v, n);
	mx_txn_abort(&t);

	/* Update in place keeps the id. */
	wbegin(&t);
	ck_assert_int_eq(mx_store_folder_find(&t, a1, "INBOX", &f, &e), MX_OK);
	f.uidnext = 55;
	ck_assert_int_eq(mx_store_folder_put(&t, &f, &e), MX_OK);
	ck_assert_uint_eq(f.id, in1);
	mx_folder_free(&f);
	commit(&t);
	rbegin(&t);
	ck_assert_int_eq(mx_store_folder_find(&t, a1, "INBOX", &f, &e), MX_OK);
	ck_assert_uint_eq(f.uidnext, 55);
	mx_folder_free(&f);
	mx_txn_abort(&t);
}
END_TEST

/* ---- messages and blobs ---- */

START_TEST(test_messages_blobs)
{
	const char *raw = "Message-ID: <same@x>\r\nSubject: hi\r\n\r\nbody\r\n";
	struct mx_msg m1, m2, g;
	struct mx_txn t;
	struct mx_error e;
	uint64_t id1, id2, *ids = NULL;
	size_t n = 0, len = 0;
	const char *data = NULL;
	MDB_val v;

	open_store();
	msg_init(&m1, 1, raw, "ID", "same@x", NULL, "hi", 10);
	msg_init(&m2, 1, raw, "ID", "same@x", NULL, "hi", 20);
	id1 = msg_commit(&m1, raw);
	id2 = msg_commit(&m2, raw);
	ck_assert(id1 != id2);

	rbegin(&t);
	ck_assert_uint_eq(db_entries(&t, MX_DB_BLOBS), 1);
	ck_assert_uint_eq(db_entries(&t, MX_DB_MESSAGES), 2);
	ck_assert_int_eq(mx_db_get(&t, MX_DB_BLOBREFS, m1.sha256, 32, &v, &e),
			 MX_OK);
	ck_assert_uint_eq(v.mv_size, 4);
	ck_assert_uint_eq(mx_get_be32(v.mv_data), 2);
	ck_assert_int_eq(mx_store_blob_get(&t, m1.sha256, &data, &len, &e),
			 MX_OK);
	ck_assert_uint_eq(len, strlen(raw));
	ck_assert(memcmp(data, raw, len) == 0);
	ck_assert_int_eq(mx_store_msg_get(&t, id1, &g, &e), MX_OK);
	ck_assert(g.id == id1);
	ck_assert_str_eq(g.p.message_id, "same@x");
	ck_assert(memcmp(g.sha256, m1.sha256, 32) == 0);
	ck_assert(g.thread_id != 0);
	mx_msg_free(&g);
	ck_assert_int_eq(mx_store_identity_find(&t, 1, m1.identity, &ids, &n,
						&e), MX_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert((ids[0] == id1 && ids[1] == id2) ||
		  (ids[0] == id2 && ids[1] == id1));
	free(ids);
	ck_assert_int_eq(mx_store_identity_find(&t, 2, m1.identity, &ids, &n,
						&e), MX_OK);
	ck_assert_uint_eq(n, 0);
	free(ids);
	ck_assert_uint_eq(db_entries(&t, MX_DB_MSGID), 2);
	mx_txn_abort(&t);

	wbegin(&t);
	ck_assert_int_eq(mx_store_msg_del(&t, id1, &e), MX_OK);
	commit(&t);
	rbegin(&t);
	ck_assert_uint_eq(db_entries(&t, MX_DB_BLOBS), 1);
	ck_assert_int_eq(mx_db_get(&t, MX_DB_BLOBREFS, m1.sha256, 32, &v, &e),
			 MX_OK);
	ck_assert_uint_eq(mx_get_be32(v.mv_data), 1);
	ck_assert_int_eq(mx_store_msg_get(&t, id1, &g, &e), MX_ERR_NOTFOUND);
	ck_assert_int_eq(mx_store_identity_find(&t, 1, m1.identity, &ids, &n,
						&e), MX_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert(ids[0] == id2);
	free(ids);
	mx_txn_abort(&t);

	wbegin(&t);
	ck_assert_int_eq(mx_store_msg_del(&t, id2, &e), MX_OK);
	ck_assert_int_eq(mx_store_msg_del(&t, id2, &e), MX_ERR_NOTFOUND);
	commit(&t);
	rbegin(&t);
	ck_assert_uint_eq(db_entries(&t, MX_DB_BLOBS), 0);
	ck_assert_uint_eq(db_entries(&t, MX_DB_BLOBREFS), 0);
	ck_assert_uint_eq(db_entries(&t, MX_DB_MESSAGES), 0);
	ck_assert_uint_eq(db_entries(&t, MX_DB_IDENTITY), 0);
	ck_assert_uint_eq(db_entries(&t, MX_DB_MSGID), 0);
	ck_assert_uint_eq(db_entries(&t, MX_DB_BYDATE), 0);
	ck_assert_uint_eq(db_entries(&t, MX_DB_THREADS), 0);
	ck_assert_int_eq(mx_store_blob_get(&t, m1.sha256, &data, &len, &e),
			 MX_ERR_NOTFOUND);
	mx_txn_abort(&t);
	mx_msg_free(&m1);
	mx_msg_free(&m2);
}
END_TEST

START_TEST(test_account_msgs_order)
{
	struct mx_txn t;
	struct mx_error e;
	uint64_t *ids = NULL, a, b, c, d, x, y;
	size_t n = 0;

	open_store();
	a = add_simple(1, "a", NULL, NULL, NULL, 0, NULL, 100, NULL);
	b = add_simple(1, "b", NULL, NULL, NULL, 0, NULL, 300, NULL);
	x = add_simple(2, "x", NULL, NULL, NULL, 0, NULL, 250, NULL);
	c = add_simple(1, "c", NULL, NULL, NULL, 0, NULL, 200, NULL);
	d = add_simple(1, "d", NULL, NULL, NULL, 0, NULL, -50, NULL);
	y = add_simple(3, "y", NULL, NULL, NULL, 0, NULL, 1000, NULL);

	rbegin(&t);
	ck_assert_int_eq(mx_store_account_msgs(&t, 1, &ids, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 4);
	ck_assert(ids[0] == b && ids[1] == c && ids[2] == a && ids[3] == d);
	free(ids);
	ck_assert_int_eq(mx_store_account_msgs(&t, 2, &ids, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert(ids[0] == x);
	free(ids);
	ck_assert_int_eq(mx_store_account_msgs(&t, 3, &ids, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 1);
	ck_assert(ids[0] == y);
	free(ids);
	ck_assert_int_eq(mx_store_account_msgs(&t, 4, &ids, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 0);
	free(ids);
	mx_txn_abort(&t);
}
END_TEST

/* ---- threads ---- */

START_TEST(test_threads)
{
	static const char *const refs_p[] = {"root@t"};
	uint64_t t_root, t_reply, t_late_child, t_late_parent, t_subj1,
		t_subj2, t_other, t_plain_same;

	open_store();
	/* Reply with In-Reply-To joins the parent's thread. */
	add_simple(1, "r1", "root@t", NULL, NULL, 0, "Plan", 1, &t_root);
	add_simple(1, "r2", "reply@t", "root@t", refs_p, 1, "Re: Plan", 2,
		   &t_reply);
	ck_assert(t_root != 0);
	ck_assert(t_reply == t_root);

	/* The parent arriving after its reply joins the reply's thread. */
	add_simple(1, "l1", "child@t", "parent@t", NULL, 0, "Re: Budget", 3,
		   &t_late_child);
	add_simple(1, "l2", "parent@t", NULL, NULL, 0, "Budget", 4,
		   &t_late_parent);
	ck_assert(t_late_child != t_root);
	ck_assert(t_late_parent == t_late_child);

	/* "Re: subject" without references joins the subject's thread. */
	add_simple(1, "s1", "s1@t", NULL, NULL, 0, "Quarterly numbers", 5,
		   &t_subj1);
	add_simple(1, "s2", "s2@t", NULL, NULL, 0, "RE: Quarterly  Numbers",
		   6, &t_subj2);
	ck_assert(t_subj1 != t_root && t_subj1 != t_late_child);
	ck_assert(t_subj2 == t_subj1);

	/* Same subject without a reply prefix does not join. */
	add_simple(1, "s3", "s3@t", NULL, NULL, 0, "Quarterly numbers", 7,
		   &t_plain_same);
	ck_assert(t_plain_same != t_subj1);

	/* Unrelated: a new thread. */
	add_simple(1, "u1", "u1@t", NULL, NULL, 0, "Lunch?", 8, &t_other);
	ck_assert(t_other != t_root && t_other != t_late_child &&
		  t_other != t_subj1 && t_other != t_plain_same);

	/* Threads are per account: same ids in another account. */
	{
		uint64_t t_a2;

		add_simple(2, "o1", "reply2@t", "root@t", NULL, 0, "Re: Plan", 9,
			   &t_a2);
		ck_assert(t_a2 != t_root);
	}
}
END_TEST

/* ---- locations ---- */

static void loc_put(uint32_t folder, uint32_t uid, uint64_t msg,
		    uint32_t flags, const char *kw)
{
	struct mx_loc l = {folder, uid, msg, 7, flags, (char *)(uintptr_t)kw};
	struct mx_txn t;
	struct mx_error e;

	wbegin(&t);
	mx_error_clear(&e);
	ck_assert_msg(mx_store_loc_put(&t, &l, &e) == MX_OK, "%s", e.detail);
	commit(&t);
}

START_TEST(test_locations)
{
	struct mx_txn t;
	struct mx_error e;
	struct mx_loc l, *v = NULL;
	size_t n = 0;
	uint64_t m1, m2;

	open_store();
	m1 = add_simple(1, "m1", NULL, NULL, NULL, 0, NULL, 1, NULL);
	m2 = add_simple(1, "m2", NULL, NULL, NULL, 0, NULL, 2, NULL);
	loc_put(5, 300, m1, MX_FL_SEEN, "$Forwarded Work");
	loc_put(5, 20, m2, 0, NULL);
	loc_put(5, 4000000000u, m1, MX_FL_FLAGGED, NULL);
	loc_put(6, 1, m1, MX_FL_ANSWERED, NULL);
	loc_put(4, 9, m2, 0, NULL);

	rbegin(&t);
	ck_assert_int_eq(mx_store_loc_get(&t, 5, 300, &l, &e), MX_OK);
	ck_assert(l.msg_id == m1);
	ck_assert_uint_eq(l.folder_id, 5);
	ck_assert_uint_eq(l.uid, 300);
	ck_assert_uint_eq(l.flags, MX_FL_SEEN);
	ck_assert(l.modseq == 7);
	ck_assert_str_eq(l.keywords, "$Forwarded Work");
	free(l.keywords);
	ck_assert_int_eq(mx_store_loc_get(&t, 5, 301, &l, &e),
			 MX_ERR_NOTFOUND);

	ck_assert_int_eq(mx_store_folder_locs(&t, 5, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(v[0].uid, 20);
	ck_assert_uint_eq(v[1].uid, 300);
	ck_assert_uint_eq(v[2].uid, 4000000000u);
	ck_assert(v[0].msg_id == m2 && v[1].msg_id == m1);
	ck_assert_str_eq(v[1].keywords, "$Forwarded Work");
	ck_assert_ptr_null(v[0].keywords);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(v[i].folder_id, 5);
	mx_locs_free(v, n);

	ck_assert_int_eq(mx_store_msg_locs(&t, m1, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 3);
	for (size_t i = 0; i < n; i++)
		ck_assert(v[i].msg_id == m1);
	mx_locs_free(v, n);
	mx_txn_abort(&t);

	wbegin(&t);
	ck_assert_int_eq(mx_store_loc_del(&t, 5, 300, &e), MX_OK);
	ck_assert_int_eq(mx_store_loc_del(&t, 5, 300, &e), MX_ERR_NOTFOUND);
	commit(&t);
	rbegin(&t);
	ck_assert_int_eq(mx_store_folder_locs(&t, 5, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 2);
	mx_locs_free(v, n);
	ck_assert_int_eq(mx_store_msg_locs(&t, m1, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 2);
	mx_locs_free(v, n);
	ck_assert_int_eq(mx_store_folder_locs(&t, 7, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 0);
	mx_locs_free(v, n);
	mx_txn_abort(&t);

	/* Replacing flags/keywords in place. */
	loc_put(5, 20, m2, MX_FL_SEEN | MX_FL_DELETED, "a b");
	rbegin(&t);
	ck_assert_int_eq(mx_store_loc_get(&t, 5, 20, &l, &e), MX_OK);
	ck_assert_uint_eq(l.flags, MX_FL_SEEN | MX_FL_DELETED);
	ck_assert_str_eq(l.keywords, "a b");
	free(l.keywords);
	ck_assert_int_eq(mx_store_msg_locs(&t, m2, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 2);
	mx_locs_free(v, n);
	mx_txn_abort(&t);
}
END_TEST

/*
 * loc_put "creates or replaces; maintains MSGLOCS": when a (folder, uid)
 * is re-pointed to another message, the old message must no longer list
 * that location.
 */
START_TEST(test_loc_replace_other_msg)
{
	struct mx_txn t;
	struct mx_error e;
	struct mx_loc *v = NULL;
	size_t n = 0;
	uint64_t m1, m2;

	open_store();
	m1 = add_simple(1, "m1", NULL, NULL, NULL, 0, NULL, 1, NULL);
	m2 = add_simple(1, "m2", NULL, NULL, NULL, 0, NULL, 2, NULL);
	loc_put(5, 10, m1, 0, NULL);
	loc_put(5, 10, m2, 0, NULL);

	rbegin(&t);
	ck_assert_int_eq(mx_store_msg_locs(&t, m2, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 1);
	mx_locs_free(v, n);
	ck_assert_int_eq(mx_store_msg_locs(&t, m1, &v, &n, &e), MX_OK);
	ck_assert_msg(n == 0,
		      "message %llu still lists location 5/10 (now message "
		      "%llu's): %zu location(s)", (unsigned long long)m1,
		      (unsigned long long)m2, n);
	mx_locs_free(v, n);
	ck_assert_uint_eq(db_entries(&t, MX_DB_MSGLOCS), 1);
	mx_txn_abort(&t);
}
END_TEST

/* ---- orphans ---- */

START_TEST(test_orphans)
{
	struct mx_txn t;
	struct mx_error e;
	uint64_t *ids = NULL;
	size_t n = 0;

	open_store();
	wbegin(&t);
	ck_assert_int_eq(mx_store_orphan_add(&t, 30, &e), MX_OK);
	ck_assert_int_eq(mx_store_orphan_add(&t, 2, &e), MX_OK);
	ck_assert_int_eq(mx_store_orphan_add(&t, UINT64_C(1) << 40, &e), MX_OK);
	ck_assert_int_eq(mx_store_orphan_add(&t, 2, &e), MX_OK); /* again */
	commit(&t);

	rbegin(&t);
	ck_assert(mx_store_is_orphan(&t, 2));
	ck_assert(mx_store_is_orphan(&t, 30));
	ck_assert(!mx_store_is_orphan(&t, 3));
	ck_assert_int_eq(mx_store_orphans(&t, &ids, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 3);
	ck_assert(ids[0] == 2 && ids[1] == 30 && ids[2] == UINT64_C(1) << 40);
	free(ids);
	mx_txn_abort(&t);

	wbegin(&t);
	ck_assert_int_eq(mx_store_orphan_del(&t, 30, &e), MX_OK);
	ck_assert_int_eq(mx_store_orphan_del(&t, 31, &e), MX_OK); /* absent */
	commit(&t);
	rbegin(&t);
	ck_assert(!mx_store_is_orphan(&t, 30));
	ck_assert_int_eq(mx_store_orphans(&t, &ids, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 2);
	free(ids);
	mx_txn_abort(&t);
}
END_TEST

/* ---- events ---- */

START_TEST(test_events)
{
	struct mx_txn t;
	struct mx_error e;
	MDB_cursor *c;
	MDB_val k, d;
	json_t *extra = json_pack("{s:i}", "count", 3);
	uint64_t last = 0;
	int n = 0, rc;

	open_store();
	wbegin(&t);
	ck_assert_int_eq(mx_store_event(&t, "message.new", 4, 9,
					UINT64_C(0xab), NULL, &e), MX_OK);
	ck_assert_int_eq(mx_store_event(&t, "folder.reset", 4, 9, 0, extra,
					&e), MX_OK);
	commit(&t);
	wbegin(&t);
	ck_assert_int_eq(mx_store_event(&t, "message.deleted", 5, 0, 1, NULL,
					&e), MX_OK);
	commit(&t);
	json_decref(extra);

	rbegin(&t);
	ck_assert_int_eq(mdb_cursor_open(t.txn, g_st->dbi[MX_DB_EVENTS], &c),
			 0);
	for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		json_error_t je;
		json_t *o = json_loadb(d.mv_data, d.mv_size, 0, &je);
		uint64_t seq;

		ck_assert_uint_eq(k.mv_size, 8);
		seq = mx_get_be64(k.mv_data);
		ck_assert(seq > last);
		last = seq;
		ck_assert_msg(json_is_object(o), "event %d: %s", n, je.text);
		ck_assert(json_integer_value(json_object_get(o, "id")) ==
			  (json_int_t)seq);
		ck_assert(json_is_integer(json_object_get(o, "time")));
		switch (n) {
		case 0:
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "type")), "message.new");
			ck_assert_int_eq(json_integer_value(json_object_get(
						 o, "account")), 4);
			ck_assert_int_eq(json_integer_value(json_object_get(
						 o, "folder")), 9);
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "message")),
					 "00000000000000ab");
			break;
		case 1:
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "type")), "folder.reset");
			ck_assert_ptr_null(json_object_get(o, "message"));
			ck_assert_int_eq(json_integer_value(json_object_get(
						 o, "count")), 3);
			break;
		case 2:
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "type")), "message.deleted");
			ck_assert_int_eq(json_integer_value(json_object_get(
						 o, "account")), 5);
			ck_assert_ptr_null(json_object_get(o, "folder"));
			ck_assert_str_eq(json_string_value(json_object_get(
						 o, "message")),
					 "0000000000000001");
			break;
		}
		json_decref(o);
		n++;
	}
	ck_assert_int_eq(rc, MDB_NOTFOUND);
	mdb_cursor_close(c);
	mx_txn_abort(&t);
	ck_assert_int_eq(n, 3);
}
END_TEST

/* ---- map growth and a full map ---- */

struct fill_ctx {
	int calls;       /* callback invocations */
	int per_batch;   /* messages per transaction */
	int next;        /* index of the next message to write */
	size_t size;     /* bytes per message */
};

/* Message I of the fill: SIZE bytes, distinct per I. */
static char *fill_raw(int i, size_t size)
{
	char *raw = malloc(size + 1);
	int h;

	ck_assert_ptr_nonnull(raw);
	h = snprintf(raw, size + 1, "Message-ID: <fill%d@x>\r\n\r\n", i);
	for (size_t j = (size_t)h; j < size; j++)
		raw[j] = (char)('a' + (j * 7 + (size_t)i) % 26);
	raw[size] = '\0';
	return raw;
}

static int fill_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct fill_ctx *f = ctx;
	int rc = MX_OK;

	f->calls++;
	for (int i = f->next; rc == MX_OK && i < f->next + f->per_batch; i++) {
		char *raw = fill_raw(i, f->size);
		struct mx_msg m;
		char mid[32];

		snprintf(mid, sizeof(mid), "fill%d@x", i);
		msg_init(&m, 1, raw, NULL, mid, NULL, "fill", i);
		rc = mx_store_msg_add(t, &m, raw, err);
		mx_msg_free(&m);
		free(raw);
	}
	return rc;
}

static void check_fill(int count, size_t size)
{
	struct mx_txn t;
	struct mx_error e;
	uint64_t *ids = NULL;
	size_t n = 0;

	rbegin(&t);
	ck_assert_int_eq(mx_store_account_msgs(&t, 1, &ids, &n, &e), MX_OK);
	ck_assert_uint_eq(n, (size_t)count);
	ck_assert_uint_eq(db_entries(&t, MX_DB_MESSAGES), (size_t)count);
	ck_assert_uint_eq(db_entries(&t, MX_DB_BLOBS), (size_t)count);
	for (size_t i = 0; i < n; i++) {
		struct mx_msg m;
		const char *data;
		size_t len;
		char *raw;
		int idx;

		ck_assert_int_eq(mx_store_msg_get(&t, ids[i], &m, &e), MX_OK);
		idx = (int)m.internaldate;
		ck_assert_int_eq(mx_store_blob_get(&t, m.sha256, &data, &len,
						   &e), MX_OK);
		ck_assert_uint_eq(len, size);
		raw = fill_raw(idx, size);
		ck_assert(memcmp(raw, data, size) == 0);
		free(raw);
		mx_msg_free(&m);
	}
	free(ids);
	mx_txn_abort(&t);
}

START_TEST(test_map_growth)
{
	struct fill_ctx f = {0, 1, 0, 20 * 1000};
	struct mx_error e;

	ck_assert_int_eq(mx_store_open_ex(g_dir, MIB, 64 * MIB, &g_st, &e),
			 MX_OK);
	for (int i = 0; i < 300; i++) {
		mx_error_clear(&e);
		ck_assert_msg(mx_store_write(g_st, fill_fn, &f, &e) == MX_OK,
			      "message %d: %s", i, e.detail);
		f.next++;
	}
	ck_assert_msg(g_st->map_size > MIB, "map did not grow");
	ck_assert_msg(f.calls > 300, "no retry happened (%d calls)", f.calls);
	ck_assert(g_st->map_size <= 64 * MIB);
	check_fill(300, f.size);
	mx_store_close(&g_st);
	/* Reopen with the default map: everything is there. */
	open_store();
	check_fill(300, f.size);
}
END_TEST

START_TEST(test_map_full)
{
	struct fill_ctx f = {0, 5, 0, 20 * 1000};
	struct mx_error e;
	int rc = MX_OK, committed = 0;

	ck_assert_int_eq(mx_store_open_ex(g_dir, MIB, MIB, &g_st, &e), MX_OK);
	for (int i = 0; i < 1000 && rc == MX_OK; i++) {
		mx_error_clear(&e);
		rc = mx_store_write(g_st, fill_fn, &f, &e);
		if (rc == MX_OK) {
			f.next += f.per_batch;
			committed = f.next;
		}
	}
	ck_assert_int_eq(rc, MX_ERR_STORE_FULL);
	ck_assert_int_eq(e.code, MX_ERR_STORE_FULL);
	ck_assert_msg(strstr(e.detail, "limit") != NULL, "detail: %s",
		      e.detail);
	ck_assert_msg(strstr(e.detail, "1 MiB") != NULL, "detail: %s",
		      e.detail);
	ck_assert(committed > 0);
	ck_assert_uint_eq(g_st->map_size, MIB);
	/* Everything committed is there, nothing of the failed batch. */
	check_fill(committed, f.size);
	mx_store_close(&g_st);
	ck_assert_int_eq(mx_store_open_ex(g_dir, MIB, MIB, &g_st, &e), MX_OK);
	check_fill(committed, f.size);
	{
		struct mx_txn t;
		MDB_val v;

		/* The failed batch did not consume message ids either. */
		rbegin(&t);
		ck_assert_int_eq(mx_db_get(&t, MX_DB_META, "next_msg", 8, &v,
					   &e), MX_OK);
		ck_assert(mx_get_be64(v.mv_data) == (uint64_t)committed + 1);
		mx_txn_abort(&t);
	}
}
END_TEST

struct big_ctx {
	int calls;
	size_t size;
	int fail_with; /* return this after the put (0: none) */
};

static int big_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct big_ctx *b = ctx;
	char *buf = calloc(1, b->size);
	int rc;

	b->calls++;
	ck_assert_ptr_nonnull(buf);
	rc = mx_db_put(t, MX_DB_META, "big", 3, buf, b->size, 0, err);
	free(buf);
	if (rc == MX_OK && b->fail_with)
		rc = mx_error_set(err, (enum mx_err)b->fail_with, "cb failed");
	return rc;
}

START_TEST(test_write_retries)
{
	struct big_ctx b = {0, 3 * MIB, 0};
	struct mx_txn t;
	struct mx_error e;
	MDB_val v;

	ck_assert_int_eq(mx_store_open_ex(g_dir, MIB, 64 * MIB, &g_st, &e),
			 MX_OK);
	mx_error_clear(&e);
	ck_assert_msg(mx_store_write(g_st, big_fn, &b, &e) == MX_OK, "%s",
		      e.detail);
	/* 1 MiB and 2 MiB are too small for 3 MiB: three runs. */
	ck_assert_int_eq(b.calls, 3);
	ck_assert_uint_eq(g_st->map_size, 4 * MIB);
	rbegin(&t);
	ck_assert_int_eq(mx_db_get(&t, MX_DB_META, "big", 3, &v, &e), MX_OK);
	ck_assert_uint_eq(v.mv_size, 3 * MIB);
	mx_txn_abort(&t);

	/* Another error: one run, nothing written. */
	b.calls = 0;
	b.size = 10;
	b.fail_with = MX_ERR_PARSE;
	ck_assert_int_eq(mx_store_write(g_st, big_fn, &b, &e), MX_ERR_PARSE);
	ck_assert_int_eq(b.calls, 1);
	rbegin(&t);
	ck_assert_int_eq(mx_db_get(&t, MX_DB_META, "big", 3, &v, &e), MX_OK);
	ck_assert_uint_eq(v.mv_size, 3 * MIB);
	mx_txn_abort(&t);
}
END_TEST

/*
 * A write callback may run more than once (store.h).  The id an
 * account/folder put records in the caller's struct on the aborted run
 * must not survive into the re-run (the counter was rolled back), or the
 * next record gets the same id.  store.h: reset the id in the callback.
 */
struct acct_batch {
	struct mx_account *a;
	struct mx_folder *f;
	size_t pad;
};

static int acct_batch_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct acct_batch *b = ctx;
	char *buf;
	int rc;

	/* The contract of store.h: ids are assigned again on every run. */
	if (b->a)
		b->a->id = 0;
	else
		b->f->id = 0;
	rc = b->a ? mx_store_account_put(t, b->a, err)
		  : mx_store_folder_put(t, b->f, err);
	if (rc || b->pad == 0)
		return rc;
	/* The rest of the batch does not fit the initial map. */
	buf = calloc(1, b->pad);
	ck_assert_ptr_nonnull(buf);
	rc = mx_db_put(t, MX_DB_META, "pad", 3, buf, b->pad, 0, err);
	free(buf);
	return rc;
}

START_TEST(test_write_retry_account_ids)
{
	struct mx_account a1 = {0}, a2 = {0}, g, *v = NULL;
	struct acct_batch b = {&a1, NULL, 2 * MIB};
	struct mx_txn t;
	struct mx_error e;
	size_t n = 0;

	ck_assert_int_eq(mx_store_open_ex(g_dir, MIB, 64 * MIB, &g_st, &e),
			 MX_OK);
	a1.name = strdup("first");
	a2.name = strdup("second");
	ck_assert_int_eq(mx_store_write(g_st, acct_batch_fn, &b, &e), MX_OK);
	ck_assert(g_st->map_size > MIB); /* precondition: it was re-run */
	b.a = &a2;
	b.pad = 0;
	ck_assert_int_eq(mx_store_write(g_st, acct_batch_fn, &b, &e), MX_OK);
	ck_assert_msg(a1.id != a2.id, "both accounts got id %u", a1.id);

	rbegin(&t);
	ck_assert_int_eq(mx_store_account_get(&t, "first", &g, &e), MX_OK);
	ck_assert_str_eq(g.name, "first");
	mx_account_free(&g);
	ck_assert_int_eq(mx_store_account_list(&t, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++)
		mx_account_free(&v[i]);
	free(v);
	mx_txn_abort(&t);
	mx_account_free(&a1);
	mx_account_free(&a2);
}
END_TEST

START_TEST(test_write_retry_folder_ids)
{
	struct mx_folder f1 = {0}, f2 = {0}, g;
	struct acct_batch b = {NULL, &f1, 2 * MIB};
	struct mx_txn t;
	struct mx_error e;

	ck_assert_int_eq(mx_store_open_ex(g_dir, MIB, 64 * MIB, &g_st, &e),
			 MX_OK);
	f1.account_id = f2.account_id = 1;
	f1.name = strdup("INBOX");
	f2.name = strdup("Sent");
	ck_assert_int_eq(mx_store_write(g_st, acct_batch_fn, &b, &e), MX_OK);
	ck_assert(g_st->map_size > MIB); /* precondition: it was re-run */
	b.f = &f2;
	b.pad = 0;
	ck_assert_int_eq(mx_store_write(g_st, acct_batch_fn, &b, &e), MX_OK);
	ck_assert_msg(f1.id != f2.id, "both folders got id %u", f1.id);

	rbegin(&t);
	ck_assert_int_eq(mx_store_folder_find(&t, 1, "INBOX", &g, &e), MX_OK);
	ck_assert_str_eq(g.name, "INBOX");
	mx_folder_free(&g);
	mx_txn_abort(&t);
	mx_folder_free(&f1);
	mx_folder_free(&f2);
}
END_TEST

/*
 * store_trim() madvise(MADV_DONTNEED)s [map_addr, map_addr + map_len).
 * When another process grows the map, mx_txn_begin() adopts the new size
 * (MDB_MAP_RESIZED: LMDB unmaps and maps the file again, possibly
 * elsewhere) but map_addr/map_len keep describing the old mapping: the
 * next trim then hits memory that is no longer the LMDB map (heap, if it
 * was reused: MADV_DONTNEED zeroes private anonymous pages).
 */
static bool range_is_store_map(const void *addr, size_t len)
{
	struct stat sb;
	char path[256], line[4096];
	FILE *fp;
	bool ok = false;

	snprintf(path, sizeof(path), "%s/data.mdb", g_dir);
	ck_assert_int_eq(stat(path, &sb), 0);
	fp = fopen("/proc/self/maps", "r");
	ck_assert_ptr_nonnull(fp);
	while (fgets(line, sizeof(line), fp)) {
		unsigned long lo, hi, ino;

		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &ino) != 3)
			continue;
		if (ino == (unsigned long)sb.st_ino &&
		    lo == (unsigned long)(uintptr_t)addr && hi - lo == len)
			ok = true;
	}
	fclose(fp);
	return ok;
}

START_TEST(test_trim_map_after_foreign_growth)
{
	struct big_ctx b = {0, 3 * MIB, 0};
	struct mx_error e;
	int status;
	pid_t pid;

	ck_assert_int_eq(mx_store_open_ex(g_dir, MIB, 64 * MIB, &g_st, &e),
			 MX_OK);
	add_account("before");
	if (g_st->map_addr == NULL)
		return; /* no /proc: trimming is off, nothing to check */
	ck_assert(range_is_store_map(g_st->map_addr, g_st->map_len));

	/* Another process grows the map to 4 MiB. */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct mx_store *other = NULL;
		int rc = mx_store_open_ex(g_dir, MIB, 64 * MIB, &other, NULL);

		if (rc == MX_OK)
			rc = mx_store_write(other, big_fn, &b, NULL);
		mx_store_close(&other);
		_exit(rc == MX_OK ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* Our next transaction meets MDB_MAP_RESIZED and remaps. */
	add_account("after");
	ck_assert_msg(range_is_store_map(g_st->map_addr, g_st->map_len),
		      "trim range %p+%zu is not the current map of data.mdb",
		      g_st->map_addr, g_st->map_len);
}
END_TEST

/* ---- walks: an error in the middle is an error, never a short list ---- */

/* Writes one raw entry in its own transaction (VL 0: the value ""). */
static void put_raw(enum mx_dbi db, const void *k, size_t kl, const void *v,
		    size_t vl)
{
	struct mx_txn t;
	struct mx_error e;

	wbegin(&t);
	mx_error_clear(&e);
	ck_assert_msg(mx_db_put(&t, db, k, kl, vl ? v : "", vl, 0, &e) == MX_OK,
		      "%s", e.detail);
	commit(&t);
}

/* Asserts that a walk's result is the error a store fault must give:
 * MX_ERR_STORE naming WHAT and containing WHY, nothing handed out. */
#define ck_walk_failed(rc, e, v, n, what, why)                               \
	do {                                                                 \
		ck_assert_int_eq((rc), MX_ERR_STORE);                        \
		ck_assert_msg(strstr((e).detail, (what)) &&                  \
				      strstr((e).detail, (why)),             \
			      "detail: %s", (e).detail);                     \
		ck_assert_ptr_null((v));                                     \
		ck_assert_uint_eq((n), 0);                                   \
	} while (0)

/*
 * An entry inside a walk's range that does not have its table's shape
 * (a key of another length, a value that does not decode) stops the walk
 * with an error.  Before, such an entry ended the walk early or was
 * skipped: a short list that looked complete.  Each bad entry sorts in
 * the middle of good ones, so the walk has collected some when it meets
 * it.
 */
START_TEST(test_walk_corrupt_entries)
{
	struct mx_txn t;
	struct mx_error e;
	struct mx_loc *locs = (void *)1;
	struct mx_folder *f = (void *)1;
	uint64_t *ids = (void *)1, m1;
	size_t n = 99;
	uint8_t k[40], v[8];
	uint32_t acct;

	open_store();
	acct = add_account("a");
	m1 = add_simple(acct, "m1", NULL, NULL, NULL, 0, NULL, 100, NULL);
	add_simple(acct, "m2", NULL, NULL, NULL, 0, NULL, 300, NULL);
	loc_put(5, 10, m1, 0, NULL);
	loc_put(5, 30, m1, 0, NULL);
	add_folder(acct, "INBOX");
	add_folder(acct, "Sent");
	wbegin(&t);
	ck_assert_int_eq(mx_store_orphan_add(&t, 10, &e), MX_OK);
	ck_assert_int_eq(mx_store_orphan_add(&t, 30, &e), MX_OK);
	commit(&t);

	/* locs: a 9-byte key of folder 5 between UIDs 10 and 30 ... */
	mx_put_be32(k, 5);
	mx_put_be32(k + 4, 10);
	k[8] = 0;
	put_raw(MX_DB_LOCS, k, 9, NULL, 0);
	rbegin(&t);
	mx_error_clear(&e);
	ck_walk_failed(mx_store_folder_locs(&t, 5, &locs, &n, &e), e, locs, n,
		       "locations of folder #5", "corrupt locs entry");
	mx_txn_abort(&t);
	wbegin(&t);
	ck_assert_int_eq(mx_db_del(&t, MX_DB_LOCS, k, 9, NULL, 0, &e), MX_OK);
	commit(&t);
	/* ... and a location value too short to decode. */
	mx_put_be32(k + 4, 20);
	put_raw(MX_DB_LOCS, k, 8, "abc", 3);
	rbegin(&t);
	locs = (void *)1;
	n = 99;
	ck_walk_failed(mx_store_folder_locs(&t, 5, &locs, &n, &e), e, locs, n,
		       "locations of folder #5", "corrupt locs entry");
	mx_txn_abort(&t);

	/* msglocs: a 17-byte key of message m1 between its two entries. */
	mx_put_be64(k, m1);
	mx_put_be32(k + 8, 5);
	mx_put_be32(k + 12, 10);
	k[16] = 0;
	put_raw(MX_DB_MSGLOCS, k, 17, NULL, 0);
	rbegin(&t);
	locs = (void *)1;
	n = 99;
	ck_walk_failed(mx_store_msg_locs(&t, m1, &locs, &n, &e), e, locs, n,
		       "locations of message", "corrupt msglocs entry");
	mx_txn_abort(&t);

	/* bydate: a 10-byte key of the account, met after its two messages
	 * (the walk goes backwards, newest first). */
	mx_put_be32(k, acct);
	mx_put_be32(k + 4, 0x80000000u);
	k[8] = k[9] = 0;
	put_raw(MX_DB_BYDATE, k, 10, NULL, 0);
	rbegin(&t);
	n = 99;
	ck_walk_failed(mx_store_account_msgs(&t, acct, &ids, &n, &e), e, ids, n,
		       "messages of account #1", "corrupt bydate entry");
	mx_txn_abort(&t);

	/* folder_names: a name whose folder id is 2 bytes long. */
	mx_put_be32(k, acct);
	memcpy(k + 4, "Junk", 4);
	put_raw(MX_DB_FOLDER_NAMES, k, 8, "\0\1", 2);
	rbegin(&t);
	n = 99;
	ck_walk_failed(mx_store_folder_list(&t, acct, &f, &n, &e), e, f, n,
		       "folders of account #1", "corrupt folder_names entry");
	mx_txn_abort(&t);

	/* orphans: a 9-byte key between ids 10 and 30. */
	mx_put_be64(k, 10);
	k[8] = 0;
	put_raw(MX_DB_ORPHANS, k, 9, NULL, 0);
	rbegin(&t);
	ids = (void *)1;
	n = 99;
	ck_walk_failed(mx_store_orphans(&t, &ids, &n, &e), e, ids, n,
		       "orphan list", "corrupt orphans entry");
	mx_txn_abort(&t);

	/* identity: a duplicate of m1's identity whose value is 4 bytes. */
	{
		struct mx_msg m;

		rbegin(&t);
		ck_assert_int_eq(mx_store_msg_get(&t, m1, &m, &e), MX_OK);
		mx_txn_abort(&t);
		mx_put_be32(k, acct);
		memcpy(k + 4, m.identity, 32);
		mx_put_be32(v, 7);
		put_raw(MX_DB_IDENTITY, k, 36, v, 4);
		rbegin(&t);
		ids = (void *)1;
		n = 99;
		ck_walk_failed(mx_store_identity_find(&t, acct, m.identity, &ids,
						      &n, &e),
			       e, ids, n, "identity index",
			       "corrupt identity entry");
		mx_txn_abort(&t);
		mx_msg_free(&m);
	}
}
END_TEST

/*
 * LMDB page layout (lmdb 0.9, 64-bit: pgno_t and size_t are 8 bytes),
 * just what corrupt_child() needs.  A page starts with a 16-byte header:
 * pgno, pad u16, flags u16 (1 branch, 2 leaf), lower u16 (end of the
 * offset array), upper u16; then u16 offsets of its nodes from the page
 * start.  A node is lo u16, hi u16, flags u16, ksize u16, the key, then
 * (leaf) the data; a branch node's child page number is lo | hi << 16 |
 * flags << 32.  Meta pages 0 and 1 hold after the header: magic u32,
 * version u32, address, mapsize, then two 48-byte MDB_db (free, main):
 * pad u32 (free db: the page size), flags u16, depth u16, branch, leaf
 * and overflow page counts, entries, root pgno; then last pgno, txnid.
 */
#define PG_HDR 16
#define META_DBS (PG_HDR + 24)
#define DB_ROOT 40
#define META_TXNID (META_DBS + 2 * 48 + 8)

static uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8); /* the file is in host order (x86: little) */
	return v;
}

static uint16_t le16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static void read_page(int fd, size_t psize, uint64_t pgno, uint8_t *pg)
{
	ck_assert_int_eq(pread(fd, pg, psize, (off_t)(pgno * psize)),
			 (ssize_t)psize);
}

/*
 * Points the second child of named database NAME's root (a branch page
 * with at least three children) at a page past the end of the file.  A
 * walk that starts in the first child (or the last, walking backwards)
 * reads that leaf, then fails with MDB_PAGE_NOTFOUND when it steps to
 * the next leaf: a real LMDB error in the middle of the walk.  The store
 * must be closed.
 */
static void corrupt_child(const char *name)
{
	char path[256];
	uint8_t m0[4096], *pg;
	uint64_t root = 0;
	size_t psize, nk;
	int fd;

	snprintf(path, sizeof(path), "%s/data.mdb", g_dir);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, m0, sizeof(m0), 0), (ssize_t)sizeof(m0));
	ck_assert_uint_eq(le16(m0 + PG_HDR) | (uint32_t)le16(m0 + PG_HDR + 2) << 16,
			  0xBEEFC0DEu);
	memcpy(&psize, m0 + META_DBS, 4);
	psize &= 0xffffffffu;
	ck_assert(psize >= 1024 && psize <= 65536);
	pg = malloc(psize);
	ck_assert_ptr_nonnull(pg);
	{
		/* The newer of the two meta pages holds the main db root. */
		uint8_t *m1 = malloc(psize);
		const uint8_t *m;

		ck_assert_ptr_nonnull(m1);
		read_page(fd, psize, 0, pg);
		read_page(fd, psize, 1, m1);
		m = le64(m1 + META_TXNID) > le64(pg + META_TXNID) ? m1 : pg;
		root = le64(m + META_DBS + 48 + DB_ROOT);
		free(m1);
	}
	/* The main db (a handful of names) is one leaf: find NAME's db. */
	read_page(fd, psize, root, pg);
	ck_assert_uint_eq(le16(pg + 10) & 3, 2);
	nk = (le16(pg + 12) - PG_HDR) / 2;
	root = 0;
	for (size_t i = 0; i < nk; i++) {
		const uint8_t *nd = pg + le16(pg + PG_HDR + 2 * i);
		size_t ks = le16(nd + 6);

		if (ks == strlen(name) && memcmp(nd + 8, name, ks) == 0)
			root = le64(nd + 8 + ks + DB_ROOT);
	}
	ck_assert_msg(root != 0, "no database %s", name);
	read_page(fd, psize, root, pg);
	ck_assert_msg((le16(pg + 10) & 3) == 1, "root of %s is no branch", name);
	nk = (le16(pg + 12) - PG_HDR) / 2;
	ck_assert_msg(nk >= 3, "root of %s has %zu children", name, nk);
	{
		uint8_t *nd = pg + le16(pg + PG_HDR + 2);

		memset(nd, 0xff, 4);  /* lo, hi */
		nd[4] = 0xff;         /* flags: pgno bits 32-39 */
		nd[5] = 0;
	}
	ck_assert_int_eq(pwrite(fd, pg, psize, (off_t)(root * psize)),
			 (ssize_t)psize);
	ck_assert_int_eq(close(fd), 0);
	free(pg);
}

struct fill {
	uint32_t acct;
	size_t n;
};

/* Enough entries in every walked table for a root branch page over
 * several leaves: locations of folder 5 (all of message 42, so also its
 * reverse entries), folders of ACCT with long names, orphans, and the
 * date index of ACCT. */
static int fill_walked_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct fill *c = ctx;
	int rc = MX_OK;

	for (size_t i = 0; rc == MX_OK && i < c->n; i++) {
		struct mx_loc l = {5, (uint32_t)i + 1, 42, 7, 0, NULL};
		uint8_t bk[20];

		rc = mx_store_loc_put(t, &l, err);
		if (rc == MX_OK)
			rc = mx_store_orphan_add(t, i + 1, err);
		mx_put_be32(bk, c->acct);
		mx_put_be64(bk + 4, i);
		mx_put_be64(bk + 12, i + 1);
		if (rc == MX_OK)
			rc = mx_db_put(t, MX_DB_BYDATE, bk, 20, "", 0, 0, err);
	}
	for (size_t i = 0; rc == MX_OK && i < c->n / 4; i++) {
		struct mx_folder f = {0};
		char name[128];

		snprintf(name, sizeof(name), "%04zu-%0100d", i, 0);
		f.account_id = c->acct;
		f.name = name;
		f.wire = name;
		f.delim = '/';
		rc = mx_store_folder_put(t, &f, err);
	}
	return rc;
}

START_TEST(test_walk_lmdb_error_midway)
{
	static const char *const dbs[] = {"locs", "msglocs", "folder_names",
					  "orphans", "bydate"};
	struct fill c = {0, 3000};
	struct mx_txn t;
	struct mx_error e;
	struct mx_loc *locs = NULL, l;
	struct mx_folder *f = NULL;
	uint64_t *ids = NULL;
	size_t n = 0;

	open_store();
	c.acct = add_account("a");
	mx_error_clear(&e);
	ck_assert_msg(mx_store_write(g_st, fill_walked_fn, &c, &e) == MX_OK, "%s",
		      e.detail);
	/* Complete before: every list is whole. */
	rbegin(&t);
	ck_assert_int_eq(mx_store_folder_locs(&t, 5, &locs, &n, &e), MX_OK);
	ck_assert_uint_eq(n, c.n);
	mx_locs_free(locs, n);
	ck_assert_int_eq(mx_store_msg_locs(&t, 42, &locs, &n, &e), MX_OK);
	ck_assert_uint_eq(n, c.n);
	mx_locs_free(locs, n);
	ck_assert_int_eq(mx_store_folder_list(&t, c.acct, &f, &n, &e), MX_OK);
	ck_assert_uint_eq(n, c.n / 4);
	mx_folders_free(f, n);
	ck_assert_int_eq(mx_store_orphans(&t, &ids, &n, &e), MX_OK);
	ck_assert_uint_eq(n, c.n);
	free(ids);
	ck_assert_int_eq(mx_store_account_msgs(&t, c.acct, &ids, &n, &e), MX_OK);
	ck_assert_uint_eq(n, c.n);
	free(ids);
	mx_txn_abort(&t);
	mx_store_close(&g_st);

	for (size_t i = 0; i < MX_ARRAY_SIZE(dbs); i++)
		corrupt_child(dbs[i]);
	open_store();

	/* The first leaf still reads: the walks fail on the way, not at
	 * their start. */
	rbegin(&t);
	ck_assert_int_eq(mx_store_loc_get(&t, 5, 1, &l, &e), MX_OK);
	ck_assert_int_eq(mx_store_loc_get(&t, 5, (uint32_t)c.n, &l, &e), MX_OK);
	mx_txn_abort(&t);

#define WALK_FAILS(call, v, what)                                            \
	do {                                                                 \
		rbegin(&t);                                                  \
		mx_error_clear(&e);                                          \
		n = 99;                                                      \
		ck_walk_failed(call, e, v, n, what, "MDB_PAGE_NOTFOUND");    \
		mx_txn_abort(&t);                                            \
	} while (0)
	WALK_FAILS(mx_store_folder_locs(&t, 5, &locs, &n, &e), locs,
		   "locations of folder #5");
	WALK_FAILS(mx_store_msg_locs(&t, 42, &locs, &n, &e), locs,
		   "locations of message 000000000000002a");
	WALK_FAILS(mx_store_folder_list(&t, c.acct, &f, &n, &e), f,
		   "folders of account #1");
	WALK_FAILS(mx_store_orphans(&t, &ids, &n, &e), ids, "orphan list");
	WALK_FAILS(mx_store_account_msgs(&t, c.acct, &ids, &n, &e), ids,
		   "messages of account #1");
#undef WALK_FAILS
}
END_TEST

/* ---- guarding the files (guard.c) ---- */

static char *slurp(const char *path, size_t *len_r)
{
	struct stat sb;
	char *buf;
	int fd = open(path, O_RDONLY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &sb), 0);
	buf = malloc((size_t)sb.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(fd, buf, (size_t)sb.st_size, 0), sb.st_size);
	close(fd);
	*len_r = (size_t)sb.st_size;
	return buf;
}

/* A store with some data, closed; its data.mdb path in PATH. */
static void closed_store(char *path, size_t n)
{
	open_store();
	for (int i = 0; i < 40; i++) {
		char name[32];

		snprintf(name, sizeof(name), "acct%d", i);
		add_account(name);
	}
	{
		/* ~1 MB more, so the file is far longer than the slack of
		 * LM_SLACK_PAGES (64) pages that guard.c allows. */
		static char big[1 << 20];
		struct mx_txn t;
		struct mx_error e;

		memset(big, 'x', sizeof(big));
		ck_assert_int_eq(mx_txn_begin(g_st, true, &t, &e), MX_OK);
		ck_assert_int_eq(mx_db_put(&t, MX_DB_META, "test-big", 8, big,
					   sizeof(big), 0, &e), MX_OK);
		ck_assert_int_eq(mx_txn_commit(&t, &e), MX_OK);
	}
	mx_store_close(&g_st);
	snprintf(path, n, "%s/data.mdb", g_dir);
}

/* Truncates data.mdb to LEN; the check and the open both refuse it with
 * MX_ERR_STORE and a message containing WANT, and leave the file as it
 * was (no SIGBUS: this runs in the forked test process). */
static void refused_at(const char *path, off_t len, const char *want)
{
	struct mx_error e;
	struct stat sb;
	size_t n0, n1;
	char *before, *after;

	ck_assert_int_eq(truncate(path, len), 0);
	before = slurp(path, &n0);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_store_check_file(path, &e), MX_ERR_STORE);
	ck_assert_msg(strstr(e.detail, want) != NULL, "%s", e.detail);
	ck_assert_msg(strstr(e.detail, path) != NULL, "%s", e.detail);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_store_open(g_dir, &g_st, &e), MX_ERR_STORE);
	ck_assert_ptr_null(g_st);
	ck_assert_msg(strstr(e.detail, want) != NULL, "%s", e.detail);
	ck_assert_int_eq(stat(path, &sb), 0);
	ck_assert_int_eq(sb.st_size, len);
	after = slurp(path, &n1);
	ck_assert_uint_eq(n0, n1);
	ck_assert(memcmp(before, after, n0) == 0);
	free(before);
	free(after);
}

START_TEST(test_check_file_truncated)
{
	struct mx_error e;
	struct stat sb;
	char path[256];
	off_t full;

	closed_store(path, sizeof(path));
	mx_error_clear(&e);
	ck_assert_msg(mx_store_check_file(path, &e) == MX_OK, "%s", e.detail);
	ck_assert_int_eq(stat(path, &sb), 0);
	full = sb.st_size;
	ck_assert_int_gt(full, 200 * 4096);
	/* 65 pages short, half, one page, a few bytes, empty. */
	refused_at(path, full - 65 * 4096, "is truncated");
	refused_at(path, full / 2, "is truncated");
	refused_at(path, 4096, "shorter than its two meta pages");
	refused_at(path, 100, "not even one meta page");
	refused_at(path, 0, "is empty (0 bytes)");
}
END_TEST

/* Adds ADD to the last page number of both meta pages of PATH. */
static void bump_last_pg(const char *path, size_t add)
{
	/* Page header, magic + version, address, mapsize, two MDB_db
	 * (u32 + two u16 + five size_t each): see guard.c. */
	const off_t off = (off_t)(sizeof(size_t) + 8 + 8 + 2 * sizeof(size_t) +
				  2 * (8 + 5 * sizeof(size_t)));
	int fd = open(path, O_RDWR);

	ck_assert_int_ge(fd, 0);
	for (off_t page = 0; page < 2; page++) {
		size_t last;

		ck_assert_int_eq(pread(fd, &last, sizeof(last),
				       page * 4096 + off), sizeof(last));
		last += add;
		ck_assert_int_eq(pwrite(fd, &last, sizeof(last),
					page * 4096 + off), sizeof(last));
	}
	close(fd);
}

/* What a crash between a commit and store_cover_last_page() leaves: the
 * last few pages (freed again in that commit) never written.  That file
 * is accepted; one that misses more than the slack is not. */
START_TEST(test_check_file_short_by_a_commit)
{
	struct mx_error e;
	char path[256];

	closed_store(path, sizeof(path));
	bump_last_pg(path, 3);
	mx_error_clear(&e);
	ck_assert_msg(mx_store_check_file(path, &e) == MX_OK, "%s", e.detail);
	ck_assert_msg(mx_store_open(g_dir, &g_st, &e) == MX_OK, "%s",
		      e.detail);
	mx_store_close(&g_st);
	bump_last_pg(path, 80);
	ck_assert_int_eq(mx_store_check_file(path, &e), MX_ERR_STORE);
	ck_assert_msg(strstr(e.detail, "is truncated") != NULL, "%s",
		      e.detail);
}
END_TEST

START_TEST(test_check_file_not_lmdb)
{
	struct mx_error e;
	char path[256], junk[8192];
	int fd;

	ck_assert_int_eq(mkdir(g_dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/data.mdb", g_dir);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_store_check_file(path, &e), MX_ERR_NOTFOUND);
	memset(junk, 'j', sizeof(junk));
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	ck_assert_int_eq(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_store_check_file(path, &e), MX_ERR_STORE);
	ck_assert_msg(strstr(e.detail, "not an LMDB file"), "%s", e.detail);
}
END_TEST

START_TEST(test_open_nocreate)
{
	struct mx_error e;
	struct stat sb;

	/* No directory: nothing is created. */
	mx_error_clear(&e);
	ck_assert_int_eq(mx_store_open_flags(g_dir, 0, 0, MX_STORE_NOCREATE,
					     &g_st, &e), MX_ERR_NOTFOUND);
	ck_assert_msg(strstr(e.detail, "no store in"), "%s", e.detail);
	ck_assert_int_ne(stat(g_dir, &sb), 0);
	/* An empty directory: no files appear in it. */
	ck_assert_int_eq(mkdir(g_dir, 0700), 0);
	ck_assert_int_eq(mx_store_open_flags(g_dir, 0, 0, MX_STORE_NOCREATE,
					     &g_st, &e), MX_ERR_NOTFOUND);
	{
		char path[256];

		snprintf(path, sizeof(path), "%s/lock.mdb", g_dir);
		ck_assert_int_ne(stat(path, &sb), 0);
		snprintf(path, sizeof(path), "%s/data.mdb", g_dir);
		ck_assert_int_ne(stat(path, &sb), 0);
	}
	/* An existing store opens. */
	open_store();
	mx_store_close(&g_st);
	mx_error_clear(&e);
	ck_assert_msg(mx_store_open_flags(g_dir, 0, 0, MX_STORE_NOCREATE,
					  &g_st, &e) == MX_OK, "%s", e.detail);
	/* An empty path is refused, not read past its end. */
	mx_store_close(&g_st);
	ck_assert_int_eq(mx_store_open_ex("", 0, 0, &g_st, &e), MX_ERR_INVAL);
}
END_TEST

START_TEST(test_lock_file_replaced)
{
	struct mx_error e;
	struct mx_txn t;
	char path[256], moved[256];

	open_store();
	add_account("before");
	snprintf(path, sizeof(path), "%s/lock.mdb", g_dir);
	ck_assert_int_eq(mx_store_check_lock(g_st, &e), MX_OK);
	/* Deleted: no more writes, a clear error, and it stays so. */
	snprintf(moved, sizeof(moved), "%s/lock.moved", g_top);
	ck_assert_int_eq(rename(path, moved), 0);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_txn_begin(g_st, true, &t, &e), MX_ERR_STORE);
	ck_assert_msg(strstr(e.detail, "deleted or replaced"), "%s", e.detail);
	ck_assert_msg(strstr(e.detail, path), "%s", e.detail);
	/* Put back (the same file): still refused, the loss was seen. */
	ck_assert_int_eq(rename(moved, path), 0);
	ck_assert_int_eq(mx_store_check_lock(g_st, &e), MX_ERR_STORE);
	/* Reads go on. */
	rbegin(&t);
	mx_txn_abort(&t);
	mx_store_close(&g_st);

	/* Replaced in the middle of a write transaction: no commit. */
	open_store();
	wbegin(&t);
	{
		struct mx_account a = {0};

		a.name = (char *)"during";
		a.imap_url = (char *)"imaps://u@h";
		a.host = (char *)"h";
		a.user = (char *)"u";
		ck_assert_int_eq(mx_store_account_put(&t, &a, &e), MX_OK);
	}
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(close(open(path, O_RDWR | O_CREAT, 0600)), 0);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_txn_commit(&t, &e), MX_ERR_STORE);
	ck_assert_ptr_null(t.txn);
	mx_store_close(&g_st);
	open_store();
	rbegin(&t);
	{
		struct mx_account a;

		ck_assert_int_eq(mx_store_account_get(&t, "during", &a, &e),
				 MX_ERR_NOTFOUND);
		ck_assert_int_eq(mx_store_account_get(&t, "before", &a, &e),
				 MX_OK);
		mx_account_free(&a);
	}
	mx_txn_abort(&t);
}
END_TEST

START_TEST(test_daemon_lock)
{
	struct mx_store *other = NULL;
	struct mx_error e;
	char path[256], want[64];

	open_store();
	ck_assert_int_eq(mx_store_daemon_pid(g_dir), 0);
	mx_error_clear(&e);
	ck_assert_msg(mx_store_daemon_lock(g_st, &e) == MX_OK, "%s", e.detail);
	ck_assert_int_eq(mx_store_daemon_pid(g_dir), getpid());
	/* A second daemon (here: a second handle) is refused, naming the
	 * holder; the check above did not drop the lock. */
	ck_assert_int_eq(mx_store_open(g_dir, &other, &e), MX_OK);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_store_daemon_lock(other, &e), MX_ERR_EXISTS);
	snprintf(want, sizeof(want), "mxsyncd (pid %ld) is already running",
		 (long)getpid());
	ck_assert_msg(strstr(e.detail, want), "%s", e.detail);
	mx_store_close(&other);
	ck_assert_int_eq(mx_store_daemon_pid(g_dir), getpid());

	/* lock.mdb deleted under the daemon: a new opener would create
	 * another one and write beside the daemon; it is refused. */
	snprintf(path, sizeof(path), "%s/lock.mdb", g_dir);
	ck_assert_int_eq(unlink(path), 0);
	mx_error_clear(&e);
	ck_assert_int_eq(mx_store_open(g_dir, &other, &e), MX_ERR_STORE);
	ck_assert_ptr_null(other);
	ck_assert_msg(strstr(e.detail, "stop mxsyncd first"), "%s", e.detail);

	/* Closing releases the lock. */
	mx_store_close(&g_st);
	ck_assert_int_eq(mx_store_daemon_pid(g_dir), 0);
	open_store();
	ck_assert_msg(mx_store_daemon_lock(g_st, &e) == MX_OK, "%s", e.detail);
}
END_TEST

/* ---- mx_store_walk ---- */

/* Keys of the walk tests: group (be32) + number (be32). */
static void walk_put(struct mx_txn *t, uint32_t g, uint32_t i)
{
	struct mx_error e;
	uint8_t k[8];

	mx_put_be32(k, g);
	mx_put_be32(k + 4, i);
	mx_error_clear(&e);
	ck_assert_msg(mx_db_put(t, MX_DB_SENDLOG, k, 8, "", 0, 0, &e) == MX_OK,
		      "%s", e.detail);
}

struct walk_rec {
	uint32_t seen[4096]; /* numbers in visiting order */
	size_t n;
	uint32_t stop_at;    /* MX_WALK_STOP at this number (0: never) */
	uint32_t fail_at;    /* MX_ERR_PARSE at this number (0: never) */
	bool del_odd;        /* MX_WALK_DELETE odd numbers */
};

static int walk_rec_fn(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		       void *ctx, struct mx_error *err)
{
	struct walk_rec *r = ctx;
	uint32_t i;

	(void)t;
	(void)v;
	ck_assert_uint_eq(k->mv_size, 8);
	i = mx_get_be32((const uint8_t *)k->mv_data + 4);
	ck_assert_uint_lt(r->n, 4096);
	r->seen[r->n++] = i;
	if (i == r->fail_at)
		return mx_error_set(err, MX_ERR_PARSE, "mine at %u", i);
	if (i == r->stop_at)
		return MX_WALK_STOP;
	return r->del_odd && (i & 1) ? MX_WALK_DELETE : MX_OK;
}

static int walk_run(struct mx_txn *t, uint32_t g, size_t npre, uint32_t from,
		    unsigned flags, struct walk_rec *r, struct mx_error *e)
{
	uint8_t pre[4], start[8];

	mx_put_be32(pre, g);
	mx_put_be32(start, g);
	mx_put_be32(start + 4, from);
	r->n = 0;
	mx_error_clear(e);
	return mx_store_walk(t, MX_DB_SENDLOG, pre, npre, start,
			     from ? 8 : 0, flags, "walk test", walk_rec_fn, r,
			     e);
}

START_TEST(test_store_walk)
{
	struct walk_rec *r = calloc(1, sizeof(*r));
	struct mx_error e;
	struct mx_txn t;

	ck_assert_ptr_nonnull(r);
	open_store();
	/* An empty table: no call, MX_OK, either way. */
	rbegin(&t);
	ck_assert_int_eq(walk_run(&t, 2, 4, 0, 0, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 0);
	ck_assert_int_eq(walk_run(&t, 2, 4, 0, MX_WALK_REVERSE, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 0);
	mx_txn_abort(&t);

	/* Groups 1, 2, 3 and 0xffffffff; group 2 holds 1..3000 (several
	 * pages, so that deletes cross page boundaries). */
	wbegin(&t);
	walk_put(&t, 1, 7);
	walk_put(&t, 3, 9);
	walk_put(&t, 0xffffffffu, 11);
	walk_put(&t, 0xffffffffu, 12);
	for (uint32_t i = 1; i <= 3000; i++)
		walk_put(&t, 2, i);
	commit(&t);

	rbegin(&t);
	/* Forward over the prefix: all of group 2, in order. */
	ck_assert_int_eq(walk_run(&t, 2, 4, 0, 0, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 3000);
	ck_assert_uint_eq(r->seen[0], 1);
	ck_assert_uint_eq(r->seen[2999], 3000);
	/* From START (inclusive), stopped by the callback: MX_OK. */
	r->stop_at = 103;
	ck_assert_int_eq(walk_run(&t, 2, 4, 100, 0, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 4);
	ck_assert_uint_eq(r->seen[0], 100);
	ck_assert_uint_eq(r->seen[3], 103);
	r->stop_at = 0;
	/* Reverse without START: from the last key of the range. */
	ck_assert_int_eq(walk_run(&t, 2, 4, 0, MX_WALK_REVERSE, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 3000);
	ck_assert_uint_eq(r->seen[0], 3000);
	ck_assert_uint_eq(r->seen[2999], 1);
	/* Reverse from START: exclusive, the last key before it. */
	ck_assert_int_eq(walk_run(&t, 2, 4, 100, MX_WALK_REVERSE, r, &e),
			 MX_OK);
	ck_assert_uint_eq(r->n, 99);
	ck_assert_uint_eq(r->seen[0], 99);
	ck_assert_uint_eq(r->seen[98], 1);
	/* A prefix of 0xff bytes, and no prefix at all (reverse: the last
	 * entry of the table first). */
	ck_assert_int_eq(walk_run(&t, 0xffffffffu, 4, 0, MX_WALK_REVERSE, r,
				  &e), MX_OK);
	ck_assert_uint_eq(r->n, 2);
	ck_assert_uint_eq(r->seen[0], 12);
	ck_assert_uint_eq(r->seen[1], 11);
	ck_assert_int_eq(walk_run(&t, 0, 0, 0, MX_WALK_REVERSE, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 3004);
	ck_assert_uint_eq(r->seen[0], 12);
	ck_assert_uint_eq(r->seen[3003], 7);
	ck_assert_int_eq(walk_run(&t, 0, 0, 0, 0, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 3004);
	ck_assert_uint_eq(r->seen[0], 7);
	ck_assert_uint_eq(r->seen[1], 1);
	/* The callback's error ends the walk and comes back as it made it. */
	r->fail_at = 5;
	ck_assert_int_eq(walk_run(&t, 2, 4, 0, 0, r, &e), MX_ERR_PARSE);
	ck_assert_uint_eq(r->n, 5);
	ck_assert_str_eq(e.detail, "mine at 5");
	r->fail_at = 0;
	mx_txn_abort(&t);

	/* Deleting the current entry goes on with the next one: forward
	 * over 1..1500, then in reverse over the rest. */
	wbegin(&t);
	r->del_odd = true;
	r->stop_at = 1500;
	ck_assert_int_eq(walk_run(&t, 2, 4, 0, 0, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 1500);
	for (size_t i = 0; i < r->n; i++)
		ck_assert_uint_eq(r->seen[i], i + 1);
	r->stop_at = 0;
	ck_assert_int_eq(walk_run(&t, 2, 4, 0, MX_WALK_REVERSE, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 1500 + 750);
	for (size_t i = 0; i < 1500; i++)
		ck_assert_uint_eq(r->seen[i], 3000 - i);
	commit(&t);
	r->del_odd = false;

	rbegin(&t);
	ck_assert_int_eq(walk_run(&t, 2, 4, 0, 0, r, &e), MX_OK);
	ck_assert_uint_eq(r->n, 1500);
	for (size_t i = 0; i < r->n; i++)
		ck_assert_uint_eq(r->seen[i], 2 * (i + 1));
	/* The other groups were left alone. */
	ck_assert_uint_eq(db_entries(&t, MX_DB_SENDLOG), 1500 + 4);
	mx_txn_abort(&t);
	free(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("store");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_open_creates_dir_and_files);
	tcase_add_test(tc, test_schema_newer_refused);
	tcase_add_test(tc, test_msg_codec_roundtrip);
	tcase_add_test(tc, test_msg_codec_minimal);
	tcase_add_test(tc, test_corrupt_records);
	tcase_add_test(tc, test_folder_account_codec);
	tcase_add_test(tc, test_account_codec_non_utf8_password);
	tcase_add_test(tc, test_loc_codec);
	tcase_add_test(tc, test_msg_id_text);
	tcase_add_test(tc, test_accounts);
	tcase_add_test(tc, test_folders);
	tcase_add_test(tc, test_messages_blobs);
	tcase_add_test(tc, test_account_msgs_order);
	tcase_add_test(tc, test_threads);
	tcase_add_test(tc, test_locations);
	tcase_add_test(tc, test_loc_replace_other_msg);
	tcase_add_test(tc, test_orphans);
	tcase_add_test(tc, test_events);
	tcase_add_test(tc, test_map_growth);
	tcase_add_test(tc, test_map_full);
	tcase_add_test(tc, test_write_retries);
	tcase_add_test(tc, test_write_retry_account_ids);
	tcase_add_test(tc, test_write_retry_folder_ids);
	tcase_add_test(tc, test_trim_map_after_foreign_growth);
	tcase_add_test(tc, test_walk_corrupt_entries);
	tcase_add_test(tc, test_walk_lmdb_error_midway);
	tcase_add_test(tc, test_store_walk);
	tcase_add_test(tc, test_check_file_truncated);
	tcase_add_test(tc, test_check_file_short_by_a_commit);
	tcase_add_test(tc, test_check_file_not_lmdb);
	tcase_add_test(tc, test_open_nocreate);
	tcase_add_test(tc, test_lock_file_replaced);
	tcase_add_test(tc, test_daemon_lock);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
