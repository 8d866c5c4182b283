/*
 * Unit tests: the outbox's bookkeeping (src/lib/send/outbox_*.c) on a real
 * LMDB store: queueing (bytes, entry, event, pending index), idempotency
 * keys, refusals before anything is queued, cancel and retry rules, a
 * failed attempt's back-off against a closed port, the rolling 24 h
 * count, and retention.  Sending itself is tested end to end in
 * tests/integ/t-send.sh.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "events/events.h"
#include "send/outbox.h"
#include "account/account.h"

static char g_top[64];
static char g_dir[128];
static struct mx_store *g_st;
static struct mx_account g_a;

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* An account whose SMTP server is a closed loopback port. */
static void setup(void)
{
	struct mx_account_params p = {0};
	struct mx_account_settings s = {0};
	struct mx_error e;

	strcpy(g_top, "/tmp/mx-test-outbox.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	snprintf(g_dir, sizeof(g_dir), "%s/data", g_top);
	ck_assert_int_eq(mx_store_open(g_dir, &g_st, &e), MX_OK);
	p.name = "a";
	p.imap_url = "imaps://alice@example.test@127.0.0.1:1";
	p.password = "secret-pw";
	s.email = "alice@example.test";
	s.smtp_url = "smtp+plain://127.0.0.1:1";
	s.daily_limit = "3";
	ck_assert_msg(mx_account_add_with(g_st, &p, &s, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_int_eq(mx_account_load(g_st, "a", &g_a, &e), MX_OK);
	g_a.timeout_s = 2;
}

static void teardown(void)
{
	mx_account_free(&g_a);
	mx_store_close(&g_st);
	nftw(g_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int enqueue(const char *subject, const char *key, bool bulk,
		   uint64_t *id, bool *existing, struct mx_error *e)
{
	struct mx_compose c = {0};

	c.to = "Bob <bob@example.test>";
	c.subject = subject;
	c.text = "hello";
	c.text_len = 5;
	return mx_outbox_enqueue(g_st, &g_a, &c, key, bulk, id, existing, e);
}

static size_t count_entries(void)
{
	struct mx_ob_entry *v;
	size_t n;
	struct mx_error e;

	ck_assert_int_eq(mx_outbox_list(g_st, 0, &v, &n, &e), MX_OK);
	mx_ob_entries_free(v, n);
	return n;
}

static bool blob_present(const uint8_t sha[32])
{
	struct mx_txn t;
	struct mx_error e;
	const char *d;
	size_t len;
	int rc;

	ck_assert_int_eq(mx_txn_begin(g_st, false, &t, &e), MX_OK);
	rc = mx_store_blob_get(&t, sha, &d, &len, &e);
	mx_txn_abort(&t);
	return rc == MX_OK;
}

START_TEST(queue_stores_entry_bytes_and_event)
{
	struct mx_ob_entry ent = {0};
	struct mx_error e;
	uint64_t id = 0, last = 0;
	bool existing = true;
	json_t *feed = NULL;
	char *txt;

	ck_assert_int_eq(enqueue("first", NULL, false, &id, &existing, &e), MX_OK);
	ck_assert(!existing);
	ck_assert_int_eq(mx_outbox_get(g_st, id, &ent, &e), MX_OK);
	ck_assert_int_eq(ent.state, MX_OB_QUEUED);
	ck_assert_str_eq(ent.from, "alice@example.test");
	ck_assert_uint_eq(ent.nrcpts, 1);
	ck_assert_str_eq(ent.rcpts[0], "bob@example.test");
	ck_assert(ent.message_id[0] == '<');
	ck_assert(ent.size > 0);
	ck_assert(blob_present(ent.sha256));
	/* Due now: the daemon's next wake-up is immediate. */
	ck_assert(mx_outbox_next_due(g_st) <= mx_wall_s());
	ck_assert(mx_outbox_next_due(g_st) > 0);
	ck_assert_int_eq(mx_events_read(g_st, 0, 100, &feed, &last, &e), MX_OK);
	txt = json_dumps(feed, JSON_COMPACT);
	ck_assert_ptr_nonnull(strstr(txt, "\"message.queued\""));
	free(txt);
	json_decref(feed);
	mx_ob_entry_free(&ent);
}
END_TEST

START_TEST(idempotency_key_returns_the_entry)
{
	struct mx_error e;
	uint64_t id1 = 0, id2 = 0;
	bool ex1 = true, ex2 = false;

	ck_assert_int_eq(enqueue("once", "order-7", false, &id1, &ex1, &e), MX_OK);
	ck_assert_int_eq(enqueue("twice", "order-7", false, &id2, &ex2, &e), MX_OK);
	ck_assert(!ex1 && ex2);
	ck_assert_uint_eq(id1, id2);
	ck_assert_uint_eq(count_entries(), 1);
	/* Another key is another message. */
	ck_assert_int_eq(enqueue("other", "order-8", false, &id2, &ex2, &e), MX_OK);
	ck_assert(!ex2);
	ck_assert_uint_ne(id1, id2);
	ck_assert_int_eq(enqueue("bad key", "", false, &id2, &ex2, &e),
			 MX_ERR_INVAL);
}
END_TEST

START_TEST(refusals_queue_nothing)
{
	struct mx_error e;
	uint64_t id;
	bool ex;

	ck_assert_int_eq(enqueue("bulk", NULL, true, &id, &ex, &e), MX_ERR_CONFIG);
	ck_assert_ptr_nonnull(strstr(e.detail, "relay"));
	ck_assert_int_eq(enqueue("a\r\nBcc: x@y.test", NULL, false, &id, &ex, &e),
			 MX_ERR_INVAL);
	free(g_a.email);
	g_a.email = NULL;
	free(g_a.user);
	g_a.user = strdup("alice"); /* no '@': no From address */
	ck_assert_int_eq(enqueue("no from", NULL, false, &id, &ex, &e),
			 MX_ERR_CONFIG);
	ck_assert_uint_eq(count_entries(), 0);
	ck_assert_int_eq(mx_outbox_next_due(g_st), 0);
}
END_TEST

START_TEST(cancel_releases_bytes_and_rules_hold)
{
	struct mx_ob_entry ent = {0};
	struct mx_error e;
	uint64_t id;
	bool ex;

	ck_assert_int_eq(enqueue("to cancel", NULL, false, &id, &ex, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_get(g_st, id, &ent, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_cancel(g_st, id, &e), MX_OK);
	ck_assert(!blob_present(ent.sha256));
	ck_assert_int_eq(mx_outbox_next_due(g_st), 0);
	ck_assert_int_eq(mx_outbox_cancel(g_st, id, &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_outbox_retry(g_st, id, &e), MX_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(e.detail, "cancelled"));
	ck_assert_int_eq(mx_outbox_retry(g_st, 999, &e), MX_ERR_NOTFOUND);
	mx_ob_entry_free(&ent);
}
END_TEST

START_TEST(failed_attempt_backs_off_then_retry)
{
	struct mx_ob_run_opts o = {0};
	struct mx_ob_run_stats s;
	struct mx_ob_entry ent = {0};
	struct mx_error e;
	uint64_t id;
	bool ex;
	int64_t t0 = mx_wall_s();

	ck_assert_int_eq(enqueue("refused", NULL, false, &id, &ex, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_run(g_st, &o, &s, &e), MX_OK);
	ck_assert_uint_eq(s.deferred, 1);
	ck_assert_uint_eq(s.sent, 0);
	ck_assert_int_eq(mx_outbox_get(g_st, id, &ent, &e), MX_OK);
	ck_assert_int_eq(ent.state, MX_OB_QUEUED);
	ck_assert_uint_eq(ent.attempts, 1);
	ck_assert_ptr_nonnull(ent.last_error);
	ck_assert_msg(strstr(ent.last_error, "refused"), "%s", ent.last_error);
	ck_assert(ent.next_attempt >= t0 + 60);
	mx_ob_entry_free(&ent);
	/* Not due: a second run leaves it alone. */
	ck_assert_int_eq(mx_outbox_run(g_st, &o, &s, &e), MX_OK);
	ck_assert_uint_eq(s.deferred, 0);
	/* retry makes it due now with a fresh attempt count. */
	ck_assert_int_eq(mx_outbox_retry(g_st, id, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_get(g_st, id, &ent, &e), MX_OK);
	ck_assert_uint_eq(ent.attempts, 0);
	ck_assert(ent.next_attempt <= mx_wall_s());
	mx_ob_entry_free(&ent);
}
END_TEST

static int put_sendlog(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	const int64_t *when = ctx;
	uint8_t k[20];
	int rc = MX_OK;

	for (int i = 0; rc == MX_OK && when[i]; i++) {
		mx_put_be32(k, g_a.id);
		mx_put_be64(k + 4, (uint64_t)when[i]);
		mx_put_be64(k + 12, (uint64_t)i + 1);
		rc = mx_db_put(t, MX_DB_SENDLOG, k, 20, "", 0, 0, err);
	}
	return rc;
}

START_TEST(rolling_window_counts_24h)
{
	int64_t now = mx_wall_s();
	int64_t when[] = {now - 90000, now - 86000, now - 60, now - 1, 0};
	struct mx_txn t;
	struct mx_error e;
	unsigned n = 0;
	int64_t oldest = 0;

	ck_assert_int_eq(mx_store_write(g_st, put_sendlog, when, &e), MX_OK);
	ck_assert_int_eq(mx_txn_begin(g_st, false, &t, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_sent_24h(&t, g_a.id, now, &n, &oldest, &e),
			 MX_OK);
	ck_assert_uint_eq(n, 3); /* the one 25 h ago is out of the window */
	ck_assert_int_eq(oldest, now - 86000);
	ck_assert_int_eq(mx_outbox_sent_24h(&t, g_a.id + 1, now, &n, NULL, &e),
			 MX_OK);
	ck_assert_uint_eq(n, 0); /* another account */
	mx_txn_abort(&t);
}
END_TEST

static int put_bad_sendlog(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	uint8_t k[10] = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1};

	(void)ctx;
	mx_put_be32(k, g_a.id); /* then a time-like prefix, but too short */
	return mx_db_put(t, MX_DB_SENDLOG, k, sizeof(k), "", 0, 0, err);
}

/* A corrupt send-log key is an error, not a short count (which would let
 * mail past the quota). */
START_TEST(corrupt_sendlog_is_an_error)
{
	struct mx_txn t;
	struct mx_error e;
	unsigned n = 0;

	ck_assert_int_eq(mx_store_write(g_st, put_bad_sendlog, NULL, &e), MX_OK);
	ck_assert_int_eq(mx_txn_begin(g_st, false, &t, &e), MX_OK);
	/* The window starts at time 0: the corrupt key is inside it. */
	ck_assert_int_eq(mx_outbox_sent_24h(&t, g_a.id, 86400, &n, NULL, &e),
			 MX_ERR_STORE);
	ck_assert_ptr_nonnull(strstr(e.detail, "corrupt"));
	mx_txn_abort(&t);
}
END_TEST

START_TEST(quota_reached_holds)
{
	int64_t now = mx_wall_s();
	int64_t when[] = {now - 300, now - 200, now - 100, 0};
	struct mx_ob_run_opts o = {0};
	struct mx_ob_run_stats s;
	struct mx_ob_entry ent = {0};
	struct mx_error e;
	uint64_t id;
	bool ex;

	ck_assert_int_eq(mx_store_write(g_st, put_sendlog, when, &e), MX_OK);
	ck_assert_int_eq(enqueue("over quota", NULL, false, &id, &ex, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_run(g_st, &o, &s, &e), MX_OK);
	ck_assert_uint_eq(s.held, 1);
	ck_assert_int_eq(mx_outbox_get(g_st, id, &ent, &e), MX_OK);
	ck_assert_int_eq(ent.state, MX_OB_QUEUED);
	ck_assert_uint_eq(ent.attempts, 0); /* never tried */
	/* Held until the oldest send leaves the window. */
	ck_assert_int_eq(ent.next_attempt, now - 300 + 86400 + 1);
	ck_assert_ptr_nonnull(strstr(ent.last_error, "daily limit of 3"));
	mx_ob_entry_free(&ent);
}
END_TEST

START_TEST(prune_drops_finished_entries_and_keys)
{
	struct mx_error e;
	uint64_t id1, id2, n = 0;
	bool ex;

	ck_assert_int_eq(enqueue("old", "k-1", false, &id1, &ex, &e), MX_OK);
	ck_assert_int_eq(enqueue("pending", "k-2", false, &id2, &ex, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_cancel(g_st, id1, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_prune(g_st, 3600, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 0); /* too recent */
	ck_assert_int_eq(mx_outbox_prune(g_st, -10, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 1); /* the cancelled one; the queued one stays */
	ck_assert_uint_eq(count_entries(), 1);
	/* Its key is free again. */
	ck_assert_int_eq(enqueue("again", "k-1", false, &id1, &ex, &e), MX_OK);
	ck_assert(!ex);
	ck_assert_int_eq(enqueue("again", "k-2", false, &id1, &ex, &e), MX_OK);
	ck_assert(ex);
	ck_assert_uint_eq(id1, id2);
}
END_TEST

START_TEST(account_removal_cancels_or_purges)
{
	struct mx_ob_entry ent = {0};
	struct mx_error e;
	uint64_t id;
	bool ex;
	int purge = _i;

	ck_assert_int_eq(enqueue("orphaned", "k-9", false, &id, &ex, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_get(g_st, id, &ent, &e), MX_OK);
	ck_assert_int_eq(mx_account_remove(g_st, "a", purge,
					   mx_outbox_account_removed, &e),
			 MX_OK);
	ck_assert(!blob_present(ent.sha256));
	ck_assert_int_eq(mx_outbox_next_due(g_st), 0);
	mx_ob_entry_free(&ent);
	if (purge) {
		ck_assert_uint_eq(count_entries(), 0);
	} else {
		ck_assert_int_eq(mx_outbox_get(g_st, id, &ent, &e), MX_OK);
		ck_assert_int_eq(ent.state, MX_OB_CANCELLED);
		mx_ob_entry_free(&ent);
	}
}
END_TEST

/* Rewrites entry ID's record: STATE, and its owner PID with PID's real
 * start time (or a made-up one for a process that does not exist). */
struct forge {
	uint64_t id;
	const char *state;
	int pid;
	long long start;
};

static int forge_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	const struct forge *f = ctx;
	uint8_t k[8];
	MDB_val v;
	json_t *o;
	char *txt;
	int rc;

	mx_put_be64(k, f->id);
	rc = mx_db_get(t, MX_DB_OUTBOX, k, 8, &v, err);
	if (rc)
		return rc;
	o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
	json_object_set_new(o, "state", json_string(f->state));
	json_object_set_new(o, "owner_pid", json_integer(f->pid));
	json_object_set_new(o, "owner_start", json_integer(f->start));
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	rc = mx_db_put(t, MX_DB_OUTBOX, k, 8, txt, strlen(txt), 0, err);
	free(txt);
	return rc;
}

/* Field 22 of /proc/PID/stat. */
static long long start_of(int pid)
{
	char path[64], buf[1024], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')') + 2;
	for (int field = 3; field < 22; field++)
		p = strchr(p, ' ') + 1;
	return atoll(p);
}

/* A live sender's entry is left alone by runs, cancel, retry and account
 * removal; an entry whose sender died can be cancelled or retried. */
START_TEST(live_owner_is_respected)
{
	struct mx_ob_run_opts o = {0};
	struct mx_ob_run_stats s;
	struct mx_ob_entry ent = {0};
	struct mx_error e;
	uint64_t id;
	bool ex;
	int parent = (int)getppid();
	struct forge live = {0, "sending", parent, start_of(parent)};
	struct forge dead = {0, "sending", 999999, 12345};

	ck_assert_int_eq(enqueue("held", NULL, false, &id, &ex, &e), MX_OK);
	live.id = dead.id = id;
	ck_assert_int_eq(mx_store_write(g_st, forge_fn, &live, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_run(g_st, &o, &s, &e), MX_OK);
	ck_assert_uint_eq(s.deferred + s.sent + s.recovered, 0);
	ck_assert_int_eq(mx_outbox_cancel(g_st, id, &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_outbox_retry(g_st, id, &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_account_remove(g_st, "a", false,
					   mx_outbox_account_removed, &e),
			 MX_ERR_INVAL);
	ck_assert_ptr_nonnull(strstr(e.detail, "being sent right now"));
	/* Its next look is a minute away, not every second. */
	ck_assert(mx_outbox_next_due(g_st) >= mx_wall_s() + 30);
	/* The owner dies: the entry can be cancelled. */
	ck_assert_int_eq(mx_store_write(g_st, forge_fn, &dead, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_cancel(g_st, id, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_get(g_st, id, &ent, &e), MX_OK);
	ck_assert_int_eq(ent.state, MX_OB_CANCELLED);
	ck_assert(ent.finished_at > 0);
	mx_ob_entry_free(&ent);
}
END_TEST

START_TEST(idempotency_key_must_be_printable_ascii)
{
	struct mx_error e;
	uint64_t id;
	bool ex;

	ck_assert_int_eq(enqueue("k", "order-\xff", false, &id, &ex, &e),
			 MX_ERR_INVAL);
	ck_assert_int_eq(enqueue("k", "two words", false, &id, &ex, &e),
			 MX_ERR_INVAL);
	ck_assert_uint_eq(count_entries(), 0);
}
END_TEST

/* Results without an address (a corrupt record): dropped when the entry
 * is read, since such an entry could not be written back (every later
 * step on it failed) and a retry takes its recipients from the results
 * (found by tests/fuzz/fuzz_record). */
static int forge_results_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	uint8_t k[8];
	MDB_val v;
	json_t *o;
	char *txt;
	int rc;

	mx_put_be64(k, *(const uint64_t *)ctx);
	rc = mx_db_get(t, MX_DB_OUTBOX, k, 8, &v, err);
	if (rc)
		return rc;
	o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
	json_object_set_new(o, "results",
			    json_pack("[{s:i,s:s},i,{s:s,s:i}]", "code", 450,
				      "reply", "450 busy", 7, "addr",
				      "bob@example.test", "code", 250));
	txt = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	rc = mx_db_put(t, MX_DB_OUTBOX, k, 8, txt, strlen(txt), 0, err);
	free(txt);
	return rc;
}

START_TEST(results_without_address_are_dropped)
{
	struct mx_ob_entry ent;
	struct mx_error e;
	uint64_t id;
	bool ex;

	ck_assert_int_eq(enqueue("r", NULL, false, &id, &ex, &e), MX_OK);
	ck_assert_int_eq(mx_store_write(g_st, forge_results_fn, &id, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_get(g_st, id, &ent, &e), MX_OK);
	ck_assert_uint_eq(ent.nresults, 1);
	ck_assert_str_eq(ent.results[0].addr, "bob@example.test");
	mx_ob_entry_free(&ent);
	ck_assert_msg(mx_outbox_cancel(g_st, id, &e) == MX_OK, "%s", e.detail);
}
END_TEST

START_TEST(api_idempotency_per_user_and_request)
{
	struct mx_ob_idem k1 = {"crm-user-1", "send-42", {1}};
	struct mx_ob_idem k2 = {"crm-user-1", "send-42", {2}};
	struct mx_ob_idem k3 = {"crm-user-2", "send-42", {1}};
	struct mx_compose c = {0};
	struct mx_error e;
	struct mx_txn t;
	uint64_t id1 = 0, id2 = 0, id3 = 0, n = 0;
	uint8_t old[48];
	bool ex = true;

	c.to = "bob@example.test";
	c.text = "hi";
	c.text_len = 2;
	ck_assert_int_eq(mx_outbox_idem_find(g_st, &k1, &id1, &e),
			 MX_ERR_NOTFOUND);
	ck_assert_int_eq(mx_outbox_enqueue_idem(g_st, &g_a, &c, &k1, false,
						&id1, &ex, &e), MX_OK);
	ck_assert(!ex);
	/* The same request again: the same entry, nothing queued. */
	ck_assert_int_eq(mx_outbox_enqueue_idem(g_st, &g_a, &c, &k1, false,
						&id2, &ex, &e), MX_OK);
	ck_assert(ex);
	ck_assert_uint_eq(id1, id2);
	ck_assert_uint_eq(count_entries(), 1);
	/* Another request under the key: refused, nothing queued. */
	ck_assert_int_eq(mx_outbox_enqueue_idem(g_st, &g_a, &c, &k2, false,
						&id2, &ex, &e), MX_ERR_EXISTS);
	ck_assert_uint_eq(id2, id1);
	ck_assert_uint_eq(count_entries(), 1);
	/* Keys are per user. */
	ck_assert_int_eq(mx_outbox_enqueue_idem(g_st, &g_a, &c, &k3, false,
						&id3, &ex, &e), MX_OK);
	ck_assert(!ex);
	ck_assert_uint_ne(id3, id1);
	/* A record older than the TTL is as good as none, and pruned. */
	mx_put_be64(old, (uint64_t)(mx_wall_s() - MX_OB_IDEM_TTL - 1));
	mx_put_be64(old + 8, id1);
	memcpy(old + 16, k1.digest, 32);
	ck_assert_int_eq(mx_txn_begin(g_st, true, &t, &e), MX_OK);
	ck_assert_int_eq(mx_db_put(&t, MX_DB_API_IDEM, "crm-user-1\0send-42",
				   18, old, sizeof(old), 0, &e), MX_OK);
	ck_assert_int_eq(mx_txn_commit(&t, &e), MX_OK);
	ck_assert_int_eq(mx_outbox_idem_find(g_st, &k1, &id2, &e),
			 MX_ERR_NOTFOUND);
	ck_assert_int_eq(mx_outbox_prune(g_st, 3600, &n, &e), MX_OK);
	ck_assert_int_eq(mx_txn_begin(g_st, false, &t, &e), MX_OK);
	{
		MDB_val v;

		ck_assert_int_eq(mx_db_get(&t, MX_DB_API_IDEM,
					   "crm-user-1\0send-42", 18, &v, &e),
				 MX_ERR_NOTFOUND);
		ck_assert_int_eq(mx_db_get(&t, MX_DB_API_IDEM,
					   "crm-user-2\0send-42", 18, &v, &e),
				 MX_OK);
	}
	mx_txn_abort(&t);
	/* Bad keys never reach the store. */
	k1.key = "has space";
	ck_assert_int_eq(mx_outbox_idem_find(g_st, &k1, &id2, &e),
			 MX_ERR_INVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("outbox");
	TCase *tc = tcase_create("outbox");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, queue_stores_entry_bytes_and_event);
	tcase_add_test(tc, idempotency_key_returns_the_entry);
	tcase_add_test(tc, refusals_queue_nothing);
	tcase_add_test(tc, cancel_releases_bytes_and_rules_hold);
	tcase_add_test(tc, failed_attempt_backs_off_then_retry);
	tcase_add_test(tc, rolling_window_counts_24h);
	tcase_add_test(tc, quota_reached_holds);
	tcase_add_test(tc, corrupt_sendlog_is_an_error);
	tcase_add_test(tc, prune_drops_finished_entries_and_keys);
	tcase_add_loop_test(tc, account_removal_cancels_or_purges, 0, 2);
	tcase_add_test(tc, live_owner_is_respected);
	tcase_add_test(tc, idempotency_key_must_be_printable_ascii);
	tcase_add_test(tc, results_without_address_are_dropped);
	tcase_add_test(tc, api_idempotency_per_user_and_request);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
