/*
 * Unit tests: the event feed (src/lib/events/feed.c): reading by cursor,
 * the newest id, retention by count and by age with the expired-cursor
 * error, webhook cursors holding back retention; and the webhook module's
 * signature, configuration checks, failure status and prompt stop
 * (src/lib/events/webhook.c); the payload builders of
 * src/lib/events/types.c.  Delivery to a real receiver is tested end
 * to end by tests/integ/t-webhook.sh.
 *
 * Every test runs on a fresh store in its own mkdtemp() directory.
 */
#include <check.h>
#include <ftw.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "events/events.h"
#include "events/events_int.h"
#include "events/types.h"
#include "secrets/secrets.h"
#include "store/store.h"

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

	strcpy(g_top, "/tmp/mx-test-events.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	snprintf(g_dir, sizeof(g_dir), "%s/data", g_top);
	g_st = NULL;
	mx_error_clear(&e);
	ck_assert_msg(mx_store_open(g_dir, &g_st, &e) == MX_OK, "%s",
		      e.detail);
}

static void teardown(void)
{
	mx_store_close(&g_st);
	nftw(g_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---- */

struct append_ctx {
	unsigned n;
	const char *type;
};

static int append_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	const struct append_ctx *c = vctx;

	for (unsigned i = 0; i < c->n; i++) {
		int rc = mx_store_event(t, c->type, 1, 2, 0x100 + i, NULL,
					err);

		if (rc)
			return rc;
	}
	return MX_OK;
}

/* Appends N events of TYPE the way the sync engine does. */
static void append(unsigned n, const char *type)
{
	struct append_ctx c = {n, type};
	struct mx_error e;

	mx_error_clear(&e);
	ck_assert_msg(mx_store_write(g_st, append_fn, &c, &e) == MX_OK, "%s",
		      e.detail);
}

/* Writes event ID with time T straight into the log, in the format of
 * mx_store_event(), and moves the counter past it: how an old event
 * looks (mx_store_event() always stamps the current time). */
static void put_raw(uint64_t id, int64_t t)
{
	struct mx_txn txn;
	struct mx_error e;
	uint8_t k[8], next[8];
	char buf[160];
	int n;

	mx_error_clear(&e);
	n = snprintf(buf, sizeof(buf),
		     "{\"id\":%" PRIu64 ",\"type\":\"message.new\",\"time\":%"
		     PRId64 ",\"account\":1}", id, t);
	mx_put_be64(k, id);
	mx_put_be64(next, id + 1);
	ck_assert_int_eq(mx_txn_begin(g_st, true, &txn, &e), MX_OK);
	ck_assert_int_eq(mx_db_put(&txn, MX_DB_EVENTS, k, 8, buf, (size_t)n,
				   0, &e), MX_OK);
	ck_assert_int_eq(mx_db_put(&txn, MX_DB_META, "next_event", 10, next,
				   8, 0, &e), MX_OK);
	ck_assert_int_eq(mx_txn_commit(&txn, &e), MX_OK);
}

static void set_cursor(const char *name, uint64_t id)
{
	struct mx_txn txn;
	struct mx_error e;
	uint8_t v[8];

	mx_error_clear(&e);
	mx_put_be64(v, id);
	ck_assert_int_eq(mx_txn_begin(g_st, true, &txn, &e), MX_OK);
	ck_assert_int_eq(mx_db_put(&txn, MX_DB_WEBHOOKS, name, strlen(name),
				   v, 8, 0, &e), MX_OK);
	ck_assert_int_eq(mx_txn_commit(&txn, &e), MX_OK);
}

static uint64_t get_cursor(const char *name)
{
	struct mx_txn txn;
	struct mx_error e;
	MDB_val v;
	uint64_t id = UINT64_MAX;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_txn_begin(g_st, false, &txn, &e), MX_OK);
	if (mx_db_get(&txn, MX_DB_WEBHOOKS, name, strlen(name), &v, &e) ==
	    MX_OK && v.mv_size == 8)
		id = mx_get_be64(v.mv_data);
	mx_txn_abort(&txn);
	return id;
}

static uint64_t prune(int64_t age, uint64_t count)
{
	struct mx_error e;
	uint64_t n = 12345;

	mx_error_clear(&e);
	ck_assert_msg(mx_events_prune(g_st, age, count, &n, &e) == MX_OK,
		      "%s", e.detail);
	return n;
}

static uint64_t ev_id(json_t *arr, size_t i)
{
	return (uint64_t)json_integer_value(
		json_object_get(json_array_get(arr, i), "id"));
}

/* Reads after AFTER and checks the ids are FIRST..LAST in order. */
static void expect_read(uint64_t after, size_t max, uint64_t first,
			uint64_t last)
{
	struct mx_error e;
	json_t *arr = NULL;
	uint64_t got_last = 0;
	size_t n = last >= first ? (size_t)(last - first + 1) : 0;

	mx_error_clear(&e);
	ck_assert_msg(mx_events_read(g_st, after, max, &arr, &got_last, &e) ==
		      MX_OK, "read after %" PRIu64 ": %s", after, e.detail);
	ck_assert_uint_eq(json_array_size(arr), n);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(ev_id(arr, i), first + i);
	ck_assert_uint_eq(got_last, n ? last : after);
	json_decref(arr);
}

static void expect_expired(uint64_t after, uint64_t oldest)
{
	struct mx_error e;
	json_t *arr = (json_t *)1;
	char want[64];

	mx_error_clear(&e);
	ck_assert_int_eq(mx_events_read(g_st, after, 10, &arr, NULL, &e),
			 MX_ERR_EXPIRED);
	ck_assert_ptr_null(arr);
	snprintf(want, sizeof(want), "(oldest %" PRIu64 "): resync", oldest);
	ck_assert_msg(strstr(e.detail, want) != NULL, "detail: %s", e.detail);
}

static uint64_t last_id(void)
{
	struct mx_error e;
	uint64_t id = 999;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_events_last_id(g_st, &id, &e), MX_OK);
	return id;
}

/* ---- feed ---- */

START_TEST(test_read_empty)
{
	expect_read(0, 100, 1, 0);
	expect_read(7, 100, 1, 0);
	ck_assert_uint_eq(last_id(), 0);
	ck_assert_uint_eq(prune(3600, 10), 0);
	expect_read(0, 100, 1, 0);
}
END_TEST

START_TEST(test_read_cursor)
{
	struct mx_error e;
	json_t *arr, *ev;

	append(5, "message.new");
	append(2, "message.updated");
	ck_assert_uint_eq(last_id(), 7);
	expect_read(0, 100, 1, 7);
	expect_read(2, 2, 3, 4);
	expect_read(4, 1, 5, 5);
	expect_read(6, 100, 7, 7);
	expect_read(7, 100, 1, 0);
	expect_read(1000, 100, 1, 0); /* a cursor from the future: nothing */
	expect_read(0, 0, 1, 0);
	/* The objects are the stored events. */
	mx_error_clear(&e);
	ck_assert_int_eq(mx_events_read(g_st, 5, 10, &arr, NULL, &e), MX_OK);
	ev = json_array_get(arr, 0);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "type")),
			 "message.updated");
	ck_assert_int_eq(json_integer_value(json_object_get(ev, "account")), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(ev, "folder")), 2);
	ck_assert_str_eq(json_string_value(json_object_get(ev, "message")),
			 "0000000000000100");
	ck_assert_int_ge(json_integer_value(json_object_get(ev, "time")),
			 (json_int_t)time(NULL) - 60);
	json_decref(arr);
}
END_TEST

/* One event of every builder, in one transaction. */
static int build_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	const struct mx_event_new n = {7, "INBOX", "u-1", "m@example.test", 9,
				       "r-1"};
	const struct mx_event_new bare = {8, "Sent", NULL, NULL, 10, NULL};
	int rc;

	(void)ctx;
	rc = mx_event_message_new(t, 1, 2, 3, &n, err);
	if (rc == MX_OK)
		rc = mx_event_message_new(t, 1, 2, 4, &bare, err);
	if (rc == MX_OK)
		rc = mx_event_message_updated(t, 1, 2, 3, 7, 5, true, err);
	if (rc == MX_OK)
		rc = mx_event_message_updated(t, 1, 2, 3, 7, 6, false, err);
	if (rc == MX_OK)
		rc = mx_event_message_placed(t, 1, 5, 3, 11, "Archive", true,
					     err);
	if (rc == MX_OK)
		rc = mx_event_message_placed(t, 1, 6, 3, 12, "Copy", false, err);
	if (rc == MX_OK)
		rc = mx_event_message_deleted(t, 1, 3, err);
	if (rc == MX_OK)
		rc = mx_event_folder_reset(t, 1, 2, "INBOX", 100, 200, 42, err);
	if (rc == MX_OK)
		rc = mx_event_account_removed(t, 1, "alice", true, err);
	if (rc == MX_OK)
		rc = mx_event_account_removed(t, 4, "bob", false, err);
	if (rc == MX_OK)
		rc = mx_event_account_reauth(t, 4, err);
	if (rc == MX_OK)
		rc = mx_event_message_labels(t, 1, 2, 3, 7, 2, "STARRED INBOX",
					     err);
	return rc;
}

static const char *ev_str(json_t *arr, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(arr, i), key));
}

static json_int_t ev_int(json_t *arr, size_t i, const char *key)
{
	json_t *v = json_object_get(json_array_get(arr, i), key);

	ck_assert_msg(json_is_integer(v), "event %zu: no integer %s", i, key);
	return json_integer_value(v);
}

static bool ev_has(json_t *arr, size_t i, const char *key)
{
	return json_object_get(json_array_get(arr, i), key) != NULL;
}

/* The builders write the type, the ids and exactly the type's fields, and
 * every type they write is one mx_event_types lists (what webhook filters
 * are checked against). */
START_TEST(test_builders)
{
	static const char *const types[] = {
		"message.new", "message.new", "message.updated",
		"message.updated", "message.moved", "message.copied",
		"message.deleted", "folder.reset", "account.removed",
		"account.removed", "account.reauth", "message.updated",
	};
	struct mx_error e;
	json_t *arr = NULL;

	ck_assert_msg(mx_store_write(g_st, build_fn, NULL, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_int_eq(mx_events_read(g_st, 0, 100, &arr, NULL, &e), MX_OK);
	ck_assert_uint_eq(json_array_size(arr), MX_ARRAY_SIZE(types));
	for (size_t i = 0; i < MX_ARRAY_SIZE(types); i++) {
		size_t k;

		ck_assert_str_eq(ev_str(arr, i, "type"), types[i]);
		for (k = 0; k < MX_EVENT_NTYPES; k++)
			if (strcmp(types[i], mx_event_types[k]) == 0)
				break;
		ck_assert_msg(k < MX_EVENT_NTYPES, "%s not in mx_event_types",
			      types[i]);
	}
	/* message.new: ids, uid, folder, unique-id, Message-ID, thread. */
	ck_assert_int_eq(ev_int(arr, 0, "account"), 1);
	ck_assert_int_eq(ev_int(arr, 0, "folder"), 2);
	ck_assert_str_eq(ev_str(arr, 0, "message"), "0000000000000003");
	ck_assert_int_eq(ev_int(arr, 0, "uid"), 7);
	ck_assert_str_eq(ev_str(arr, 0, "folder_name"), "INBOX");
	ck_assert_str_eq(ev_str(arr, 0, "uidl"), "u-1");
	ck_assert_str_eq(ev_str(arr, 0, "message_id"), "m@example.test");
	ck_assert_int_eq(ev_int(arr, 0, "thread"), 9);
	ck_assert_str_eq(ev_str(arr, 0, "remote_id"), "r-1");
	ck_assert(!ev_has(arr, 1, "uidl") && !ev_has(arr, 1, "message_id"));
	ck_assert(!ev_has(arr, 1, "remote_id"));
	/* API mode's label change: the labels as the server lists them. */
	ck_assert_int_eq(ev_int(arr, 11, "flags"), 2);
	ck_assert_str_eq(ev_str(arr, 11, "labels"), "STARRED INBOX");
	ck_assert(!ev_has(arr, 11, "origin"));
	ck_assert_int_eq(ev_int(arr, 1, "thread"), 10);
	/* message.updated: origin only for a local change. */
	ck_assert_int_eq(ev_int(arr, 2, "flags"), 5);
	ck_assert_str_eq(ev_str(arr, 2, "origin"), "local");
	ck_assert_int_eq(ev_int(arr, 3, "flags"), 6);
	ck_assert(!ev_has(arr, 3, "origin"));
	ck_assert_int_eq(ev_int(arr, 4, "uid"), 11);
	ck_assert_str_eq(ev_str(arr, 4, "folder_name"), "Archive");
	ck_assert_str_eq(ev_str(arr, 5, "folder_name"), "Copy");
	ck_assert_str_eq(ev_str(arr, 6, "message"), "0000000000000003");
	ck_assert_int_eq(ev_int(arr, 7, "old_uidvalidity"), 100);
	ck_assert_int_eq(ev_int(arr, 7, "uidvalidity"), 200);
	ck_assert_int_eq(ev_int(arr, 7, "remapped"), 42);
	ck_assert_str_eq(ev_str(arr, 7, "folder_name"), "INBOX");
	/* account.removed: the name; "purged" only when purged. */
	ck_assert_str_eq(ev_str(arr, 8, "account_name"), "alice");
	ck_assert(json_is_true(json_object_get(json_array_get(arr, 8),
					       "purged")));
	ck_assert_int_eq(ev_int(arr, 9, "account"), 4);
	ck_assert_str_eq(ev_str(arr, 9, "account_name"), "bob");
	ck_assert(!ev_has(arr, 9, "purged"));
	ck_assert_int_eq(ev_int(arr, 10, "account"), 4);
	json_decref(arr);
}
END_TEST

START_TEST(test_prune_count)
{
	ck_assert_uint_eq(prune(0, 0), 0); /* no limits: nothing to do */
	append(20, "message.new");
	ck_assert_uint_eq(prune(0, 30), 0);
	ck_assert_uint_eq(prune(0, 5), 15);
	ck_assert_uint_eq(prune(0, 5), 0);
	expect_expired(0, 16);
	expect_expired(14, 16);
	expect_read(15, 100, 16, 20); /* the cursor just before is fine */
	expect_read(17, 100, 18, 20);
	ck_assert_uint_eq(last_id(), 20);
	append(1, "message.new");
	expect_read(15, 100, 16, 21); /* ids go on, never reused */
	ck_assert_uint_eq(last_id(), 21);
}
END_TEST

START_TEST(test_prune_age)
{
	int64_t now = time(NULL);

	for (uint64_t id = 1; id <= 10; id++)
		put_raw(id, id <= 6 ? now - 1000 : now - 10);
	ck_assert_uint_eq(prune(2000, 0), 0);
	ck_assert_uint_eq(prune(500, 0), 6);
	expect_expired(5, 7);
	expect_read(6, 100, 7, 10);
	/* Age and count together: whichever removes more. */
	ck_assert_uint_eq(prune(500, 2), 2);
	expect_read(8, 100, 9, 10);
	/* Everything too old: the log is empty, the ids are not reset. */
	ck_assert_uint_eq(prune(5, 0), 2);
	expect_expired(9, 11);
	expect_read(10, 100, 1, 0);
	ck_assert_uint_eq(last_id(), 10);
	append(1, "message.new");
	expect_read(10, 100, 11, 11);
}
END_TEST

/* Prune is a prefix: an old event behind a young one stays (with its
 * neighbours), so that one boundary describes what was removed. */
START_TEST(test_prune_age_prefix_only)
{
	int64_t now = time(NULL);

	put_raw(1, now - 1000);
	put_raw(2, now - 10);
	put_raw(3, now - 1000);
	ck_assert_uint_eq(prune(500, 0), 1);
	expect_read(1, 100, 2, 3);
}
END_TEST

START_TEST(test_prune_keeps_undelivered_count)
{
	append(20, "message.new");
	/* Soft limit 8 keeps 13..20; twice the limit keeps 5..20. */
	set_cursor("crm", 6);
	ck_assert_uint_eq(prune(0, 8), 6);
	expect_read(6, 100, 7, 20);
	set_cursor("crm", 20);
	set_cursor("slow", 8);
	ck_assert_uint_eq(prune(0, 8), 2); /* 7, 8: "slow" has them */
	expect_read(8, 100, 9, 20);
	set_cursor("slow", 0); /* has nothing at all: hard limit only */
	append(4, "message.new"); /* last = 24: hard limit keeps 9.. */
	ck_assert_uint_eq(prune(0, 8), 0);
	append(4, "message.new"); /* last = 28: hard limit keeps 13.. */
	ck_assert_uint_eq(prune(0, 8), 4);
	expect_expired(11, 13);
	expect_read(12, 100, 13, 28);
}
END_TEST

START_TEST(test_prune_keeps_undelivered_age)
{
	int64_t now = time(NULL);

	for (uint64_t id = 1; id <= 10; id++)
		put_raw(id, id <= 3 ? now - 3000 : id <= 6 ? now - 1500
							     : now);
	set_cursor("crm", 0);
	/* 1..3 are older than twice the limit: gone even undelivered. */
	ck_assert_uint_eq(prune(1000, 0), 3);
	set_cursor("crm", 5);
	ck_assert_uint_eq(prune(1000, 0), 2);
	expect_read(5, 100, 6, 10);
	set_cursor("crm", 10);
	ck_assert_uint_eq(prune(1000, 0), 1);
	expect_expired(5, 7);
}
END_TEST

/* Large prunes commit in bounded transactions. */
START_TEST(test_prune_batches)
{
	MDB_envinfo before, after;

	append(25000, "message.new");
	ck_assert_int_eq(mdb_env_info(g_st->env, &before), 0);
	ck_assert_uint_eq(prune(0, 10), 24990);
	ck_assert_int_eq(mdb_env_info(g_st->env, &after), 0);
	/* committed write transactions: 10,000 deletions at most each */
	ck_assert_uint_ge(after.me_last_txnid - before.me_last_txnid, 3);
	expect_expired(24989, 24991);
	expect_read(24990, 100, 24991, 25000);
}
END_TEST

/* ---- webhooks ---- */

START_TEST(test_sign_known_answer)
{
	const char *body = "{\"id\":1,\"type\":\"message.new\",\"time\":"
			   "1700000000,\"account\":1}";
	char out[65], hex[65], msg[256];
	unsigned char md[32];
	unsigned int mdlen = 0;
	int n;

	/* Verified with: printf '%s' '1700000000.<body>' |
	 *   openssl dgst -sha256 -hmac whsec_test */
	mx_webhook_sign("whsec_test", 1700000000, body, strlen(body), out);
	ck_assert_str_eq(out, "9781220c1d9164aab9a66f11fcf594db"
			      "07a53ca7b043f8b560121964a8408100");
	/* And against OpenSSL's one-shot HMAC() on "<t>.<body>". */
	n = snprintf(msg, sizeof(msg), "%d.%s", 1234567890, body);
	ck_assert_ptr_nonnull(HMAC(EVP_sha256(), "another key", 11,
				   (const unsigned char *)msg, (size_t)n, md,
				   &mdlen));
	ck_assert_uint_eq(mdlen, 32);
	mx_hex(md, 32, hex);
	mx_webhook_sign("another key", 1234567890, body, strlen(body), out);
	ck_assert_str_eq(out, hex);
	/* Only LEN bytes of the body count. */
	mx_webhook_sign("another key", 1234567890, msg, 0, out);
	ck_assert_str_ne(out, hex);
	ck_assert_uint_eq(strlen(out), 64);
}
END_TEST

static int try_start(const char *name, const char *url, const char *secret,
		     struct mx_error *e)
{
	struct mx_webhook_cfg cfg = {0};
	struct mx_webhook *wh = NULL;
	int rc;

	cfg.name = name;
	cfg.url = url;
	cfg.secret = secret;
	mx_error_clear(e);
	rc = mx_webhook_start(g_st, &cfg, &wh, e);
	ck_assert(rc == MX_OK ? wh != NULL : wh == NULL);
	mx_webhook_stop(&wh);
	ck_assert_ptr_null(wh);
	return rc;
}

START_TEST(test_webhook_config)
{
	struct mx_error e;

	ck_assert_int_eq(try_start("a b", "https://example.com/", "s", &e),
			 MX_ERR_INVAL);
	ck_assert_int_eq(try_start("", "https://example.com/", "s", &e),
			 MX_ERR_INVAL);
	/* "#ID" is the API's namespace (endpoints.c): digits, no zero lead */
	ck_assert(mx_webhook_api_name("#12"));
	ck_assert(!mx_webhook_api_name("#0") && !mx_webhook_api_name("#") &&
		  !mx_webhook_api_name("#01") && !mx_webhook_api_name("#1a") &&
		  !mx_webhook_api_name("12"));
	ck_assert_int_eq(try_start("#0", "https://example.com/", "s", &e),
			 MX_ERR_INVAL);
	ck_assert_int_eq(try_start("#x", "https://example.com/", "s", &e),
			 MX_ERR_INVAL);
	ck_assert_int_eq(try_start("#12", "https://example.com/", "s", &e),
			 MX_OK);
	ck_assert_int_eq(try_start("crm", "https://example.com/", "", &e),
			 MX_ERR_CONFIG);
	ck_assert_int_eq(try_start("crm", "http://example.com/hook", "s", &e),
			 MX_ERR_INSECURE);
	ck_assert_msg(strstr(e.detail, "refusing plain http://") &&
		      strstr(e.detail, "example.com"), "%s", e.detail);
	ck_assert_int_eq(try_start("crm", "http://127.0.0.1.example.com/",
				   "s", &e), MX_ERR_INSECURE);
	ck_assert_int_eq(try_start("crm", "ftp://127.0.0.1/", "s", &e),
			 MX_ERR_CONFIG);
	ck_assert_int_eq(try_start("crm", "not a url", "s", &e), MX_ERR_PARSE);
	ck_assert_uint_eq(get_cursor("crm"), UINT64_MAX); /* none written */
	append(3, "message.new");
	ck_assert_int_eq(try_start("crm", "http://127.0.0.1:9/", "s", &e),
			 MX_OK);
	/* The first start records the newest event as the cursor. */
	ck_assert_uint_eq(get_cursor("crm"), 3);
	ck_assert_int_eq(try_start("l6", "http://[::1]:9/x", "s", &e), MX_OK);
	ck_assert_int_eq(try_start("lh", "http://localhost:9/", "s", &e),
			 MX_OK);
	ck_assert_int_eq(try_start("tls", "https://example.com/", "s", &e),
			 MX_OK);
	append(1, "message.new");
	/* An existing cursor is kept. */
	ck_assert_int_eq(try_start("crm", "http://127.0.0.2:9/", "s", &e),
			 MX_OK);
	ck_assert_uint_eq(get_cursor("crm"), 3);
}
END_TEST

/* A loopback port with nothing listening. */
static int dead_port(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

START_TEST(test_webhook_failure_status)
{
	struct mx_webhook_cfg cfg = {0};
	struct mx_webhook_status s;
	struct mx_webhook *wh = NULL;
	struct mx_error e;
	char url[64];
	uint64_t t0;

	append(2, "message.new");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", dead_port());
	cfg.name = "dead";
	cfg.url = url;
	cfg.secret = "sekrit-value";
	cfg.max_backoff_s = 60;
	mx_error_clear(&e);
	ck_assert_int_eq(mx_webhook_start(g_st, &cfg, &wh, &e), MX_OK);
	mx_webhook_status(wh, &s);
	ck_assert_uint_eq(s.cursor, 2);
	ck_assert_uint_eq(s.failures, 0);
	append(1, "message.new");
	mx_webhook_notify(wh);
	t0 = ms_now();
	do {
		usleep(20000);
		mx_webhook_status(wh, &s);
	} while (s.failures < 2 && ms_now() - t0 < 10000);
	/* first attempt, then a retry after about 1 s */
	ck_assert_uint_eq(s.failures, 2);
	ck_assert_uint_eq(s.consecutive, 2);
	ck_assert_int_eq(s.last_delivery, 0);
	ck_assert_uint_eq(s.delivered, 0);
	ck_assert_uint_eq(s.cursor, 2);
	ck_assert_int_gt(s.next_attempt, (int64_t)time(NULL));
	ck_assert_msg(strstr(s.last_error, "event 3") != NULL, "%s",
		      s.last_error);
	ck_assert(strstr(s.last_error, "sekrit") == NULL);
	/* Stop ends the backoff wait (2 s here) at once. */
	t0 = ms_now();
	mx_webhook_stop(&wh);
	ck_assert_uint_lt(ms_now() - t0, 500);
	ck_assert_uint_eq(get_cursor("dead"), 2);
}
END_TEST

/* A receiver that accepts the connection and never answers: stop must
 * abort the request in flight (contract: within about a second). */
START_TEST(test_webhook_stop_aborts_request)
{
	struct mx_webhook_cfg cfg = {0};
	struct mx_webhook_status s;
	struct mx_webhook *wh = NULL;
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	struct mx_error e;
	char url[64];
	uint64_t t0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(fd, 8), 0); /* the kernel completes it */
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(a.sin_port));
	cfg.name = "hang";
	cfg.url = url;
	cfg.secret = "s";
	cfg.timeout_s = 60;
	mx_error_clear(&e);
	ck_assert_int_eq(mx_webhook_start(g_st, &cfg, &wh, &e), MX_OK);
	append(1, "message.new");
	mx_webhook_notify(wh);
	usleep(1500000);
	mx_webhook_status(wh, &s);
	ck_assert_uint_eq(s.failures, 0); /* still waiting for an answer */
	t0 = ms_now();
	mx_webhook_stop(&wh);
	ck_assert_uint_lt(ms_now() - t0, 1800);
	ck_assert_uint_eq(get_cursor("hang"), 0);
	close(fd);
}
END_TEST

/* ---- endpoints kept in the store (endpoints.c) ---- */

static json_t *ep_get(uint64_t id)
{
	struct mx_error e;
	json_t *v = NULL;

	mx_error_clear(&e);
	ck_assert_msg(mx_webhook_ep_get(g_st, id, &v, &e) == MX_OK, "%s",
		      e.detail);
	return v;
}

static char *ep_dump(void)
{
	struct mx_error e;
	json_t *a = NULL;
	char *s;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_webhook_ep_list(g_st, &a, &e), MX_OK);
	s = json_dumps(a, JSON_SORT_KEYS);
	json_decref(a);
	return s;
}

static const char *view_str(json_t *v, const char *k)
{
	return json_string_value(json_object_get(v, k));
}

START_TEST(test_webhook_endpoints)
{
	const char *types[] = {"message.new", "account.state"};
	const char *bad_types[] = {"message.nope"};
	struct mx_webhook_ep_in in = {.url = "https://crm.example/hook",
				      .enabled = 1};
	struct mx_error e;
	uint64_t id = 0, id2 = 0;
	char *secret = NULL, *before, *after;
	json_t *v;

	/* Generated secret, shown once, never in the view. */
	mx_error_clear(&e);
	ck_assert_msg(mx_webhook_ep_create(g_st, &in, &id, &secret, &e) ==
		      MX_OK, "%s", e.detail);
	ck_assert_uint_eq(id, 1);
	ck_assert_ptr_nonnull(secret);
	ck_assert_uint_eq(strlen(secret), 54);
	ck_assert(strncmp(secret, "whsec_", 6) == 0);
	v = ep_get(id);
	ck_assert_str_eq(view_str(v, "name"), "#1");
	ck_assert_str_eq(view_str(v, "source"), "api");
	ck_assert(json_is_null(json_object_get(v, "events")));
	ck_assert(json_object_get(v, "secret") == NULL);
	ck_assert(!json_is_true(json_object_get(json_object_get(v, "status"),
						"running")));
	json_decref(v);
	before = ep_dump();
	ck_assert(strstr(before, secret + 6) == NULL);
	mx_secret_free(secret);

	/* Every refusal leaves the table as it was. */
	in.url = "http://crm.example/hook";
	ck_assert_int_eq(mx_webhook_ep_create(g_st, &in, &id2, NULL, &e),
			 MX_ERR_INVAL);
	ck_assert_msg(strstr(e.detail, "refusing plain http://"), "%s",
		      e.detail);
	in.url = "https://crm.example/hook";
	in.secret = "short";
	ck_assert_int_eq(mx_webhook_ep_create(g_st, &in, &id2, NULL, &e),
			 MX_ERR_INVAL);
	ck_assert_msg(strstr(e.detail, "16 to 256"), "%s", e.detail);
	in.secret = "sixteen chars ok";
	ck_assert_int_eq(mx_webhook_ep_create(g_st, &in, &id2, NULL, &e),
			 MX_ERR_INVAL); /* a space */
	in.secret = NULL;
	in.types = bad_types;
	in.ntypes = 1;
	ck_assert_int_eq(mx_webhook_ep_create(g_st, &in, &id2, NULL, &e),
			 MX_ERR_INVAL);
	ck_assert_msg(strstr(e.detail, "message.nope"), "%s", e.detail);
	after = ep_dump();
	ck_assert_str_eq(before, after);
	free(after);

	/* A given secret and a filter; ids are not reused after a failed
	 * create either (the counter rolled back with it). */
	in.secret = "0123456789abcdef-given";
	in.types = types;
	in.ntypes = 2;
	ck_assert_int_eq(mx_webhook_ep_create(g_st, &in, &id2, &secret, &e),
			 MX_OK);
	ck_assert_uint_eq(id2, 2);
	ck_assert_ptr_null(secret);
	v = ep_get(id2);
	ck_assert_uint_eq(json_array_size(json_object_get(v, "events")), 2);
	json_decref(v);

	/* Update: a bad value changes nothing; a good one only what it
	 * names. */
	{
		struct mx_webhook_ep_in up = {.enabled = -1};

		up.types = bad_types;
		up.ntypes = 1;
		up.types_set = true;
		ck_assert_int_eq(mx_webhook_ep_update(g_st, id2, &up, &e),
				 MX_ERR_INVAL);
		after = ep_dump();
		ck_assert_str_ne(before, after); /* id2 is in it */
		free(before);
		before = after;
		up.types = NULL;
		up.ntypes = 0;
		up.enabled = 0;
		ck_assert_int_eq(mx_webhook_ep_update(g_st, id2, &up, &e),
				 MX_OK);
		v = ep_get(id2);
		ck_assert(json_is_null(json_object_get(v, "events")));
		ck_assert(json_is_false(json_object_get(v, "enabled")));
		ck_assert_str_eq(view_str(v, "url"), "https://crm.example/hook");
		json_decref(v);
		ck_assert_int_eq(mx_webhook_ep_update(g_st, 99, &up, &e),
				 MX_ERR_NOTFOUND);
	}
	free(before);

	/* Delete takes the cursor with it. */
	{
		struct mx_webhook_cfg cfg = {.name = "#1",
					     .url = "http://127.0.0.1:9/",
					     .secret = "s"};
		struct mx_webhook *wh = NULL;

		ck_assert_int_eq(mx_webhook_start(g_st, &cfg, &wh, &e), MX_OK);
		mx_webhook_stop(&wh);
		ck_assert_uint_ne(get_cursor("#1"), UINT64_MAX);
	}
	ck_assert_int_eq(mx_webhook_ep_delete(g_st, id, &e), MX_OK);
	ck_assert_uint_eq(get_cursor("#1"), UINT64_MAX);
	ck_assert_int_eq(mx_webhook_ep_delete(g_st, id, &e), MX_ERR_NOTFOUND);
	ck_assert_int_eq(mx_webhook_ep_get(g_st, id, &v, &e), MX_ERR_NOTFOUND);
}
END_TEST

START_TEST(test_webhook_endpoints_config)
{
	const char *types[] = {"message.new"};
	struct mx_webhook_cfg cfgs[2] = {
		{.name = "crm", .url = "https://a.example/", .secret = "s1"},
		{.name = "log", .url = "http://127.0.0.1:9/", .secret = "s2",
		 .types = types, .ntypes = 1},
	};
	struct mx_webhook_ep_in up = {.enabled = 0};
	struct mx_error e;
	json_t *a = NULL;
	char *s;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_webhook_ep_register_config(g_st, cfgs, 2, &e),
			 MX_OK);
	ck_assert_int_eq(mx_webhook_ep_list(g_st, &a, &e), MX_OK);
	ck_assert_uint_eq(json_array_size(a), 2);
	s = json_dumps(a, 0);
	ck_assert(strstr(s, "s1") == NULL && strstr(s, "s2") == NULL);
	free(s);
	ck_assert_str_eq(view_str(json_array_get(a, 0), "source"), "config");
	json_decref(a);
	/* Read-only through this module. */
	ck_assert_int_eq(mx_webhook_ep_update(g_st, 1, &up, &e), MX_ERR_EXISTS);
	ck_assert_msg(strstr(e.detail, "mxsync.conf"), "%s", e.detail);
	ck_assert_int_eq(mx_webhook_ep_delete(g_st, 2, &e), MX_ERR_EXISTS);
	/* A restart with one changed and one removed: ids stay. */
	cfgs[0].url = "https://b.example/";
	ck_assert_int_eq(mx_webhook_ep_register_config(g_st, cfgs, 1, &e),
			 MX_OK);
	ck_assert_int_eq(mx_webhook_ep_list(g_st, &a, &e), MX_OK);
	ck_assert_uint_eq(json_array_size(a), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(
				 json_array_get(a, 0), "id")), 1);
	ck_assert_str_eq(view_str(json_array_get(a, 0), "url"),
			 "https://b.example/");
	json_decref(a);
}
END_TEST

/* A bounded number of delivery threads: mxsync.conf's do not count. */
START_TEST(test_webhook_endpoints_max)
{
	struct mx_webhook_cfg cfg = {.name = "conf", .url = "https://a.example/",
				     .secret = "s"};
	struct mx_webhook_ep_in in = {.url = "https://crm.example/hook",
				      .enabled = 0};
	struct mx_error e;
	uint64_t id = 0, last = 0;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_webhook_ep_register_config(g_st, &cfg, 1, &e),
			 MX_OK);
	for (int i = 0; i < MX_WEBHOOK_EPS_MAX; i++)
		ck_assert_int_eq(mx_webhook_ep_create(g_st, &in, &last, NULL,
						      &e), MX_OK);
	ck_assert_int_eq(mx_webhook_ep_create(g_st, &in, &id, NULL, &e),
			 MX_ERR_INVAL);
	ck_assert_msg(strstr(e.detail, "delete one first"), "%s", e.detail);
	ck_assert_int_eq(mx_webhook_ep_delete(g_st, last, &e), MX_OK);
	ck_assert_int_eq(mx_webhook_ep_create(g_st, &in, &id, NULL, &e), MX_OK);
	ck_assert_uint_eq(id, MX_WEBHOOK_EPS_MAX + 2); /* ids never reused */
}
END_TEST

START_TEST(test_webhook_set)
{
	struct mx_webhook_ep_in in = {.url = "http://127.0.0.1:9/",
				      .secret = "0123456789abcdef",
				      .enabled = 1};
	struct mx_webhook_ep_in off = {.enabled = 0};
	struct mx_webhook_set *set = NULL;
	struct mx_webhook_status s;
	struct mx_error e;
	uint64_t id = 0;
	uint8_t be[8];
	struct mx_txn t;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_webhook_ep_create(g_st, &in, &id, NULL, &e), MX_OK);
	ck_assert_msg(mx_webhook_set_sync(&set, g_st, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert(mx_webhook_status_of(g_st, "#1", &s));
	ck_assert_uint_ne(get_cursor("#1"), UINT64_MAX);
	ck_assert_int_eq(mx_webhook_ep_update(g_st, id, &off, &e), MX_OK);
	ck_assert_int_eq(mx_webhook_set_sync(&set, g_st, &e), MX_OK);
	ck_assert(!mx_webhook_status_of(g_st, "#1", &s));
	/* A cursor left by an endpoint that is gone is swept. */
	ck_assert_int_eq(mx_webhook_ep_delete(g_st, id, &e), MX_OK);
	mx_put_be64(be, 5);
	ck_assert_int_eq(mx_txn_begin(g_st, true, &t, &e), MX_OK);
	ck_assert_int_eq(mx_db_put(&t, MX_DB_WEBHOOKS, "#1", 2, be, 8, 0, &e),
			 MX_OK);
	ck_assert_int_eq(mx_db_put(&t, MX_DB_WEBHOOKS, "crm", 3, be, 8, 0, &e),
			 MX_OK);
	ck_assert_int_eq(mx_txn_commit(&t, &e), MX_OK);
	ck_assert_int_eq(mx_webhook_set_sync(&set, g_st, &e), MX_OK);
	ck_assert_uint_eq(get_cursor("#1"), UINT64_MAX);
	ck_assert_uint_eq(get_cursor("crm"), 5);
	mx_webhook_set_stop(&set);
	ck_assert_ptr_null(set);
}
END_TEST

/* ---- the daemon's state record ---- */

START_TEST(test_acctstate_codec)
{
	struct mx_acctstate s = {.state = "backoff"}, g;
	struct mx_error e;
	struct mx_txn t;
	uint8_t k[4];
	MDB_val v;
	uint64_t last = 0;

	mx_error_clear(&e);
	ck_assert_int_eq(mx_txn_begin(g_st, true, &t, &e), MX_OK);
	ck_assert_int_eq(mx_acctstate_get(&t, 7, &g, &e), MX_ERR_NOTFOUND);
	ck_assert(!mx_acctstate_reauth_requested(&t, 7));

	/* What mxsyncd writes; `mxsync status` shows it as it is stored. */
	s.since = 1700000000;
	s.pid = 4242;
	s.last_success = 1690000000;
	snprintf(s.last_error, sizeof(s.last_error), "login: \"bad\"");
	s.next_attempt = 1700000060;
	ck_assert_int_eq(mx_acctstate_put(&t, 7, &s, &e), MX_OK);
	mx_put_be32(k, 7);
	ck_assert_int_eq(mx_db_get(&t, MX_DB_ACCTSTATE, k, 4, &v, &e), MX_OK);
	ck_assert_int_eq((int)v.mv_size,
			 (int)strlen("{\"state\":\"backoff\",\"since\":1700000000,"
				     "\"pid\":4242,\"last_success\":1690000000,"
				     "\"last_error\":\"login: \\\"bad\\\"\","
				     "\"next_attempt\":1700000060}"));
	ck_assert(memcmp(v.mv_data, "{\"state\":\"backoff\",\"since\":1700000000,"
			 "\"pid\":4242,\"last_success\":1690000000,"
			 "\"last_error\":\"login: \\\"bad\\\"\","
			 "\"next_attempt\":1700000060}", v.mv_size) == 0);
	ck_assert_int_eq(mx_acctstate_get(&t, 7, &g, &e), MX_OK);
	ck_assert_str_eq(g.state, "backoff");
	ck_assert_int_eq(g.since, 1700000000);
	ck_assert_int_eq(g.pid, 4242);
	ck_assert_int_eq(g.last_success, 1690000000);
	ck_assert_str_eq(g.last_error, "login: \"bad\"");
	ck_assert_int_eq(g.next_attempt, 1700000060);
	ck_assert(!mx_acctstate_reauth_requested(&t, 7));

	/* The CLI's request: state and time only, and an event. */
	ck_assert_int_eq(mx_acctstate_request_reauth(&t, 7, &e), MX_OK);
	ck_assert(mx_acctstate_reauth_requested(&t, 7));
	ck_assert(!mx_acctstate_reauth_requested(&t, 8));
	ck_assert_int_eq(mx_acctstate_get(&t, 7, &g, &e), MX_OK);
	ck_assert_str_eq(g.state, MX_ACCTSTATE_REAUTH);
	ck_assert_int_ge(g.since, 1700000000);
	ck_assert_int_eq(g.pid, 0);
	ck_assert_str_eq(g.last_error, "");
	ck_assert_int_eq(mx_db_get(&t, MX_DB_ACCTSTATE, k, 4, &v, &e), MX_OK);
	ck_assert(v.mv_size > 30 &&
		  memcmp(v.mv_data, "{\"state\":\"reauth\",\"since\":", 26) == 0);
	ck_assert(memchr(v.mv_data, ',', v.mv_size) ==
		  (char *)v.mv_data + 17); /* no field besides the two */
	ck_assert(memchr((char *)v.mv_data + 18, ',', v.mv_size - 18) == NULL);

	/* Bad records and names: clear errors, never a reauth. */
	ck_assert_int_eq(mx_db_put(&t, MX_DB_ACCTSTATE, k, 4, "{\"state\":3}",
				   11, 0, &e), MX_OK);
	ck_assert_int_eq(mx_acctstate_get(&t, 7, &g, &e), MX_ERR_STORE);
	ck_assert_str_eq(e.detail, "daemon state of account 7: corrupt record");
	ck_assert(!mx_acctstate_reauth_requested(&t, 7));
	memset(s.state, 'x', sizeof(s.state));
	ck_assert_int_eq(mx_acctstate_put(&t, 7, &s, &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_txn_commit(&t, &e), MX_OK);

	/* The request's event. */
	ck_assert_int_eq(mx_events_last_id(g_st, &last, &e), MX_OK);
	ck_assert_uint_eq(last, 1);
	{
		json_t *arr = NULL;

		ck_assert_int_eq(mx_events_read(g_st, 0, 10, &arr, NULL, &e),
				 MX_OK);
		ck_assert_uint_eq(json_array_size(arr), 1);
		ck_assert_str_eq(json_string_value(json_object_get(
					 json_array_get(arr, 0), "type")),
				 "account.reauth");
		ck_assert_int_eq(json_integer_value(json_object_get(
					 json_array_get(arr, 0), "account")), 7);
		json_decref(arr);
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("events");
	TCase *tc = tcase_create("feed");
	TCase *tw = tcase_create("webhook");
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_read_empty);
	tcase_add_test(tc, test_read_cursor);
	tcase_add_test(tc, test_builders);
	tcase_add_test(tc, test_prune_count);
	tcase_add_test(tc, test_prune_age);
	tcase_add_test(tc, test_prune_age_prefix_only);
	tcase_add_test(tc, test_prune_keeps_undelivered_count);
	tcase_add_test(tc, test_prune_keeps_undelivered_age);
	tcase_add_test(tc, test_prune_batches);
	tcase_add_test(tc, test_acctstate_codec);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(tw, setup, teardown);
	tcase_set_timeout(tw, 60);
	tcase_add_test(tw, test_sign_known_answer);
	tcase_add_test(tw, test_webhook_config);
	tcase_add_test(tw, test_webhook_failure_status);
	tcase_add_test(tw, test_webhook_stop_aborts_request);
	tcase_add_test(tw, test_webhook_endpoints);
	tcase_add_test(tw, test_webhook_endpoints_config);
	tcase_add_test(tw, test_webhook_endpoints_max);
	tcase_add_test(tw, test_webhook_set);
	suite_add_tcase(s, tw);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
