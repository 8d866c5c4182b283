/*
 * Unit tests: the CRM linking rules (src/lib/crm/link.c), one test a rule
 * of doc/crm.md "Linking rules", numbered as there, against a small
 * contact table; then the contact store (src/lib/crm/contacts.c) on a
 * real LMDB store, its address index and its lookup for the rules.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crm/contacts.h"
#include "crm/link.h"
#include "crm/timeline.h"
#include "mime/mime.h"

/* ---- a contact table ---- */

struct row {
	const char *addr;
	struct mx_crm_hit hit;
};

#define MAXROWS 32
static struct row g_rows[MAXROWS];
static size_t g_nrows;
static struct mx_crm_hit g_out[MAXROWS];
static int g_lookups;

static struct mx_crm_contact C_ANNA = {"anna", 100, false};
static struct mx_crm_contact C_BOB = {"bob", 200, false};
static struct mx_crm_contact C_CARL = {"carl", 300, false};
static struct mx_crm_contact C_DORA = {"dora", 50, false};
static struct mx_crm_contact C_OLD = {"old", 10, true}; /* soft-deleted */

static void add(const char *addr, struct mx_crm_contact *c,
		enum mx_crm_how how)
{
	ck_assert_uint_lt(g_nrows, MAXROWS);
	g_rows[g_nrows].addr = addr;
	g_rows[g_nrows].hit.c = c;
	g_rows[g_nrows].hit.how = how;
	g_nrows++;
}

static int lookup(void *ctx, const char *addr, const struct mx_crm_hit **v,
		  size_t *n)
{
	size_t k = 0;

	(void)ctx;
	g_lookups++;
	for (size_t i = 0; i < g_nrows; i++)
		if (strcmp(g_rows[i].addr, addr) == 0)
			g_out[k++] = g_rows[i].hit;
	*v = g_out;
	*n = k;
	return 0;
}

static int failing_lookup(void *ctx, const char *addr,
			  const struct mx_crm_hit **v, size_t *n)
{
	(void)ctx;
	(void)addr;
	*v = NULL;
	*n = 0;
	return -1;
}

static const char *const g_own[] = {"me@acme.example"};
static struct mx_crm_policy g_p;

static void setup(void)
{
	g_nrows = 0;
	g_lookups = 0;
	memset(&g_p, 0, sizeof(g_p));
	g_p.own = g_own;
	g_p.nown = 1;
	g_p.auto_create = true;
	add("anna@client.example", &C_ANNA, MX_CRM_PRIMARY);
	add("bob@other.example", &C_BOB, MX_CRM_PRIMARY);
	add("carl@third.example", &C_CARL, MX_CRM_PRIMARY);
}

static struct mx_crm_result decide(const struct mx_crm_msg *m)
{
	struct mx_crm_result r;

	ck_assert_int_eq(mx_crm_decide(&g_p, m, lookup, NULL, &r), 0);
	return r;
}

#define V(...) ((const char *const[]){__VA_ARGS__})
#define N(...) (sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *))

static bool mentions(const struct mx_crm_result *r, const char *id)
{
	for (size_t i = 0; i < r->nmentions; i++)
		if (strcmp(r->mentions[i], id) == 0)
			return true;
	return false;
}

/* Rule 1: received mail links by From, sent mail by To; additional
 * addresses link like primary ones. */
START_TEST(rule1_direction)
{
	struct mx_crm_msg in = {.from = "anna@client.example",
				.to = V("me@acme.example"), .nto = 1};
	struct mx_crm_msg out = {.from = "me@acme.example",
				 .to = V("bob@other.example"), .nto = 1};
	struct mx_crm_msg add_in = {.from = "anna.private@home.example",
				    .to = V("me@acme.example"), .nto = 1};
	struct mx_crm_result r;

	r = decide(&in);
	ck_assert_int_eq(r.outcome, MX_CRM_LINKED);
	ck_assert(!r.sent);
	ck_assert_str_eq(r.contact, "anna");
	ck_assert_str_eq(r.party, "anna@client.example");
	r = decide(&out);
	ck_assert_int_eq(r.outcome, MX_CRM_LINKED);
	ck_assert(r.sent);
	ck_assert_str_eq(r.contact, "bob");
	add("anna.private@home.example", &C_ANNA, MX_CRM_ADDITIONAL);
	r = decide(&add_in);
	ck_assert_int_eq(r.outcome, MX_CRM_LINKED);
	ck_assert_str_eq(r.contact, "anna");
}
END_TEST

/* Rule 2: primary for one contact, additional for another: the primary. */
START_TEST(rule2_primary_wins)
{
	struct mx_crm_msg m = {.from = "shared@client.example",
			       .to = V("me@acme.example"), .nto = 1};

	/* DORA is older, but only has it as an additional address */
	add("shared@client.example", &C_DORA, MX_CRM_ADDITIONAL);
	add("shared@client.example", &C_BOB, MX_CRM_PRIMARY);
	ck_assert_str_eq(decide(&m).contact, "bob");
}
END_TEST

/* Rule 3: additional for two contacts: the oldest contact. */
START_TEST(rule3_additional_oldest)
{
	struct mx_crm_msg m = {.from = "desk@client.example",
			       .to = V("me@acme.example"), .nto = 1};

	add("desk@client.example", &C_CARL, MX_CRM_ADDITIONAL);
	add("desk@client.example", &C_ANNA, MX_CRM_ADDITIONAL);
	ck_assert_str_eq(decide(&m).contact, "anna");
}
END_TEST

/* Rule 4: two contacts with the same primary: the first created (equal
 * times: the smaller id, so the answer never depends on order). */
START_TEST(rule4_first_created)
{
	static struct mx_crm_contact twin_b = {"twin-b", 500, false};
	static struct mx_crm_contact twin_a = {"twin-a", 500, false};
	struct mx_crm_msg m = {.from = "dup@client.example",
			       .to = V("me@acme.example"), .nto = 1};
	struct mx_crm_msg t = {.from = "twin@client.example",
			       .to = V("me@acme.example"), .nto = 1};

	add("dup@client.example", &C_CARL, MX_CRM_PRIMARY);
	add("dup@client.example", &C_BOB, MX_CRM_PRIMARY);
	ck_assert_str_eq(decide(&m).contact, "bob");
	add("twin@client.example", &twin_b, MX_CRM_PRIMARY);
	add("twin@client.example", &twin_a, MX_CRM_PRIMARY);
	ck_assert_str_eq(decide(&t).contact, "twin-a");
}
END_TEST

/* Rule 5: one contact a message; Cc and Bcc contacts are mentioned, and
 * no contact is created for a Cc/Bcc address. */
START_TEST(rule5_cc_mentioned_not_created)
{
	struct mx_crm_msg m = {.from = "anna@client.example",
			       .to = V("me@acme.example"), .nto = 1,
			       .cc = V("bob@other.example", "new@cc.example"),
			       .ncc = 2, .bcc = V("carl@third.example"),
			       .nbcc = 1};
	struct mx_crm_msg s = {.from = "me@acme.example",
			       .to = V("me@acme.example"), .nto = 1,
			       .cc = V("stranger@cc.example"), .ncc = 1};
	struct mx_crm_result r = decide(&m);

	ck_assert_int_eq(r.outcome, MX_CRM_LINKED);
	ck_assert_str_eq(r.contact, "anna");
	ck_assert_uint_eq(r.nmentions, 2);
	ck_assert(mentions(&r, "bob") && mentions(&r, "carl"));
	ck_assert_ptr_null(r.create);
	/* sent with the stranger only in Cc: nothing to link, no contact */
	r = decide(&s);
	ck_assert_int_ne(r.outcome, MX_CRM_LINKED);
	ck_assert_ptr_null(r.create);
}
END_TEST

/* Rule 6: several To: the first To that is a known contact; later
 * messages of the thread stay in its conversation. */
START_TEST(rule6_first_known_to_and_thread)
{
	struct mx_crm_msg m = {.from = "me@acme.example",
			       .to = V("unknown@x.example", "carl@third.example",
				       "bob@other.example"), .nto = 3};
	struct mx_crm_msg later = {.from = "bob@other.example",
				   .to = V("me@acme.example"), .nto = 1,
				   .thread_contact = "carl"};
	struct mx_crm_result r = decide(&m);

	ck_assert_int_eq(r.outcome, MX_CRM_LINKED);
	ck_assert_str_eq(r.contact, "carl");
	ck_assert_str_eq(r.party, "carl@third.example");
	ck_assert(mentions(&r, "bob"));
	r = decide(&later);
	ck_assert_int_eq(r.outcome, MX_CRM_LINKED);
	ck_assert_str_eq(r.contact, "carl");
	ck_assert(mentions(&r, "bob"));
}
END_TEST

/* Rule 7: a forward to a known contact counts as sent mail to it (the
 * original sender quoted inside does not matter). */
START_TEST(rule7_forward_is_sent)
{
	struct mx_crm_msg fwd = {.from = "me@acme.example",
				 .to = V("anna@client.example"), .nto = 1};
	struct mx_crm_result r = decide(&fwd);

	ck_assert(r.sent);
	ck_assert_int_eq(r.outcome, MX_CRM_LINKED);
	ck_assert_str_eq(r.contact, "anna");
}
END_TEST

/* Rule 8: mail from before the account was connected is not linked,
 * unless a history import was asked for. */
START_TEST(rule8_before_connect)
{
	struct mx_crm_msg m = {.from = "anna@client.example",
			       .to = V("me@acme.example"), .nto = 1,
			       .date = 1000};

	g_p.connected = 2000;
	ck_assert_int_eq(decide(&m).outcome, MX_CRM_BEFORE_CONNECT);
	g_p.history = true;
	ck_assert_int_eq(decide(&m).outcome, MX_CRM_LINKED);
	g_p.history = false;
	m.date = 2000;
	ck_assert_int_eq(decide(&m).outcome, MX_CRM_LINKED);
}
END_TEST

/* Rule 9: soft-deleted contacts stay linked; after a hard delete (only
 * a tombstone left) the address links by the other rules or not at all,
 * and is never made a contact again. */
START_TEST(rule9_deleted_contacts)
{
	struct mx_crm_msg m = {.from = "gone@client.example",
			       .to = V("me@acme.example"), .nto = 1};
	struct mx_crm_result r;

	add("gone@client.example", &C_OLD, MX_CRM_PRIMARY);
	ck_assert_str_eq(decide(&m).contact, "old");
	/* hard delete: the row becomes a tombstone */
	g_rows[g_nrows - 1].hit.c = NULL;
	g_rows[g_nrows - 1].hit.how = MX_CRM_TOMBSTONE;
	r = decide(&m);
	ck_assert_int_eq(r.outcome, MX_CRM_NO_CONTACT);
	ck_assert_ptr_null(r.create);
	/* another contact has it as an additional address: re-linked */
	add("gone@client.example", &C_CARL, MX_CRM_ADDITIONAL);
	ck_assert_str_eq(decide(&m).contact, "carl");
}
END_TEST

/* Rule 10: internal mail (every participant in the organisation) is not
 * linked and creates nothing; public domains never count as one
 * organisation. */
START_TEST(rule10_internal)
{
	static const char *const own_gmail[] = {"me@gmail.com"};
	struct mx_crm_msg m = {.from = "colleague@acme.example",
			       .to = V("me@acme.example"), .nto = 1,
			       .cc = V("boss@acme.example"), .ncc = 1};
	struct mx_crm_msg ext = {.from = "colleague@acme.example",
				 .to = V("me@acme.example"), .nto = 1,
				 .cc = V("anna@client.example"), .ncc = 1};
	struct mx_crm_msg pub = {.from = "friend@gmail.com",
				 .to = V("me@gmail.com"), .nto = 1};
	struct mx_crm_result r;

	r = decide(&m);
	ck_assert_int_eq(r.outcome, MX_CRM_INTERNAL);
	ck_assert_ptr_null(r.create);
	/* one external participant: not internal */
	ck_assert_int_ne(decide(&ext).outcome, MX_CRM_INTERNAL);
	/* a gmail.com mailbox: gmail.com is no organisation */
	g_p.own = own_gmail;
	r = decide(&pub);
	ck_assert_int_eq(r.outcome, MX_CRM_NO_CONTACT);
	ck_assert_str_eq(r.create, "friend@gmail.com");
	/* an explicit organisation list with a public domain in it */
	g_p.org_domains = V("gmail.com", "acme.example");
	g_p.norg = 2;
	ck_assert_int_ne(decide(&pub).outcome, MX_CRM_INTERNAL);
	ck_assert(mx_crm_public_domain(&g_p, "hotmail.co.uk"));
	ck_assert(mx_crm_public_domain(&g_p, "yahoo.fr"));
	ck_assert(!mx_crm_public_domain(&g_p, "hotmail"));
	ck_assert(!mx_crm_public_domain(&g_p, "nothotmail.com"));
}
END_TEST

/* Rule 11: impersonal senders by local part (with "+tags"), roles unless
 * turned off, and bulk headers: not linked, no contact. */
START_TEST(rule11_impersonal)
{
	struct mx_crm_msg m = {.from = "NoReply+x1@shop.example",
			       .to = V("me@acme.example"), .nto = 1};
	struct mx_crm_msg role = {.from = "support@vendor.example",
				  .to = V("me@acme.example"), .nto = 1};
	struct mx_crm_msg list = {.from = "anna@client.example",
				  .to = V("me@acme.example"), .nto = 1,
				  .bulk = true};
	struct mx_crm_result r;

	r = decide(&m);
	ck_assert_int_eq(r.outcome, MX_CRM_IMPERSONAL);
	ck_assert_ptr_null(r.create);
	ck_assert(mx_crm_impersonal_addr(&g_p, "bounces-123@lists.example"));
	ck_assert(mx_crm_impersonal_addr(&g_p, "MAILER-DAEMON@x.example"));
	ck_assert(!mx_crm_impersonal_addr(&g_p, "noreplyjoe@x.example"));
	ck_assert_int_eq(decide(&role).outcome, MX_CRM_IMPERSONAL);
	g_p.roles_off = true;
	r = decide(&role);
	ck_assert_int_eq(r.outcome, MX_CRM_NO_CONTACT);
	ck_assert_str_eq(r.create, "support@vendor.example");
	/* a list message from a known contact is still not linked */
	ck_assert_int_eq(decide(&list).outcome, MX_CRM_IMPERSONAL);
	ck_assert(mx_mime_bulk("<l.example>", NULL, NULL, NULL));
	ck_assert(mx_mime_bulk(NULL, "<mailto:u@x>", NULL, NULL));
	ck_assert(mx_mime_bulk(NULL, NULL, " Bulk", NULL));
	ck_assert(mx_mime_bulk(NULL, NULL, "junk", NULL));
	ck_assert(mx_mime_bulk(NULL, NULL, NULL, "auto-replied"));
	ck_assert(!mx_mime_bulk(NULL, NULL, NULL, "no"));
	ck_assert(!mx_mime_bulk(NULL, NULL, NULL, "no (comment)"));
	ck_assert(!mx_mime_bulk(NULL, NULL, "first-class", NULL));
	ck_assert(!mx_mime_bulk(NULL, NULL, NULL, NULL));
}
END_TEST

/* Rule 12: a blocklisted participant (exact, or @domain with its
 * subdomains) means no link; the mailbox's own addresses never count. */
START_TEST(rule12_blocklist)
{
	struct mx_crm_msg m = {.from = "anna@client.example",
			       .to = V("me@acme.example"), .nto = 1,
			       .cc = V("x@mail.blocked.example"), .ncc = 1};
	struct mx_crm_msg exact = {.from = "bob@other.example",
				   .to = V("me@acme.example"), .nto = 1};
	struct mx_crm_msg own = {.from = "anna@client.example",
				 .to = V("me@acme.example"), .nto = 1};

	g_p.blocklist = V("@blocked.example", "bob@other.example",
			  "me@acme.example", "@acme.example");
	g_p.nblock = 4;
	ck_assert_int_eq(decide(&m).outcome, MX_CRM_BLOCKED);
	ck_assert_int_eq(decide(&exact).outcome, MX_CRM_BLOCKED);
	/* own address (even if its domain is listed): not blocked */
	ck_assert_int_eq(decide(&own).outcome, MX_CRM_LINKED);
	ck_assert(!mx_crm_blocked(&g_p, "x@notblocked.example"));
	ck_assert(mx_crm_blocked(&g_p, "x@BLOCKED.example"));
}
END_TEST

/* Auto-creation: an unknown external party of received (From) or sent
 * (first personal To) mail; off per mailbox. */
START_TEST(auto_create)
{
	struct mx_crm_msg in = {.from = "new@prospect.example",
				.to = V("me@acme.example"), .nto = 1};
	struct mx_crm_msg out = {.from = "me@acme.example",
				 .to = V("noreply@x.example",
					 "first@prospect.example",
					 "second@prospect.example"), .nto = 3};
	struct mx_crm_result r;

	r = decide(&in);
	ck_assert_int_eq(r.outcome, MX_CRM_NO_CONTACT);
	ck_assert_str_eq(r.create, "new@prospect.example");
	r = decide(&out);
	ck_assert_str_eq(r.create, "first@prospect.example");
	g_p.auto_create = false;
	ck_assert_ptr_null(decide(&in).create);
}
END_TEST

START_TEST(no_party_and_errors)
{
	struct mx_crm_msg self = {.from = "me@acme.example",
				  .to = V("me@acme.example"), .nto = 1};
	struct mx_crm_msg m = {.from = "anna@client.example",
			       .to = V("me@acme.example"), .nto = 1};
	struct mx_crm_result r;

	ck_assert_int_eq(decide(&self).outcome, MX_CRM_NO_PARTY);
	ck_assert_int_eq(mx_crm_decide(&g_p, &m, failing_lookup, NULL, &r), -1);
}
END_TEST

/* ---- the contact store ---- */

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

static void store_setup(void)
{
	char dir[96];
	struct mx_error e;

	strcpy(g_top, "/tmp/mx-test-crm.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	snprintf(dir, sizeof(dir), "%s/data", g_top);
	g_st = NULL;
	ck_assert_msg(mx_store_open(dir, &g_st, &e) == MX_OK, "%s", e.detail);
}

static void store_teardown(void)
{
	mx_store_close(&g_st);
	nftw(g_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void upsert(const char *json)
{
	json_t *c = json_loads(json, 0, NULL);
	struct mx_error e;

	ck_assert_ptr_nonnull(c);
	ck_assert_msg(mx_contact_upsert(g_st, c, NULL, &e) == MX_OK, "%s",
		      e.detail);
	json_decref(c);
}

/* The contact ADDR links to through the store's lookup ("" if none). */
static const char *resolve_in_store(const char *addr, char *out, size_t cap,
				    bool *soft_r)
{
	struct mx_contact_lookup l = {0};
	struct mx_error e;
	const struct mx_crm_hit *v;
	const struct mx_crm_contact *c;
	struct mx_txn t;
	size_t n;

	ck_assert_int_eq(mx_txn_begin(g_st, false, &t, &e), MX_OK);
	l.t = &t;
	l.err = &e;
	ck_assert_int_eq(mx_contact_lookup_fn(&l, addr, &v, &n), 0);
	c = mx_crm_resolve(v, n);
	snprintf(out, cap, "%s", c ? c->id : "");
	if (soft_r)
		*soft_r = c && c->soft_deleted;
	mx_contact_lookup_free(&l);
	mx_txn_abort(&t);
	return out;
}

START_TEST(store_index_and_lookup)
{
	char b[64];
	bool soft;
	struct mx_error e;
	json_t *bad;

	upsert("{\"id\":\"c1\",\"email\":\"A@X.Example\","
	       "\"emails\":[\"b@x.example\",\"A@x.example\"],\"created\":100}");
	upsert("{\"id\":\"c2\",\"email\":\"b@x.example\",\"created\":200}");
	/* the domain is compared without case, the local part as written */
	ck_assert_str_eq(resolve_in_store("A@x.example", b, sizeof(b), NULL), "c1");
	ck_assert_str_eq(resolve_in_store("a@x.example", b, sizeof(b), NULL), "");
	/* rule 2 through the store: b@ is c2's primary, c1's additional */
	ck_assert_str_eq(resolve_in_store("b@x.example", b, sizeof(b), NULL), "c2");
	/* soft delete: still linked (rule 9) */
	ck_assert_int_eq(mx_contact_delete(g_st, "c2", false, &e), MX_OK);
	ck_assert_str_eq(resolve_in_store("b@x.example", b, sizeof(b), &soft), "c2");
	ck_assert(soft);
	/* hard delete: a tombstone, and c1's additional address takes over */
	ck_assert_int_eq(mx_contact_delete(g_st, "c2", true, &e), MX_OK);
	ck_assert_str_eq(resolve_in_store("b@x.example", b, sizeof(b), NULL), "c1");
	ck_assert_int_eq(mx_contact_delete(g_st, "c2", true, &e), MX_ERR_NOTFOUND);
	/* an edit moves the index: c1 drops b@ */
	upsert("{\"id\":\"c1\",\"email\":\"A@x.example\"}");
	ck_assert_str_eq(resolve_in_store("b@x.example", b, sizeof(b), NULL), "");
	/* the CRM adds b@ again on purpose: the tombstone is lifted */
	upsert("{\"id\":\"c3\",\"email\":\"b@x.example\"}");
	ck_assert_str_eq(resolve_in_store("b@x.example", b, sizeof(b), NULL), "c3");
	/* a bad contact changes nothing */
	bad = json_loads("{\"id\":\"c3\",\"email\":\"nope\"}", 0, NULL);
	ck_assert_int_eq(mx_contact_upsert(g_st, bad, NULL, &e), MX_ERR_INVAL);
	json_decref(bad);
	ck_assert_str_eq(resolve_in_store("b@x.example", b, sizeof(b), NULL), "c3");
}
END_TEST

START_TEST(store_check_rejects)
{
	static const char *const bad[] = {
		"[]",
		"{\"email\":\"a@b.example\"}",
		"{\"id\":\"\",\"email\":\"a@b.example\"}",
		"{\"id\":\"x\"}",
		"{\"id\":\"x\",\"email\":\"a@b.example\",\"color\":\"red\"}",
		"{\"id\":\"x\",\"email\":\"a@b.example\",\"emails\":\"c@d\"}",
		"{\"id\":\"x\",\"email\":\"a@b.example\",\"emails\":[\"@d\"]}",
		"{\"id\":\"x\",\"email\":\"a@b.example\",\"created\":-1}",
		"{\"id\":\"x\",\"email\":\"a@b.example\",\"assigned\":[1]}",
		"{\"id\":\"x\",\"email\":\"a <b@c>\"}",
		"{\"id\":\"x\\n\",\"email\":\"a@b.example\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *c = json_loads(bad[i], 0, NULL), *out = NULL;
		struct mx_error e;

		ck_assert_ptr_nonnull(c);
		ck_assert_msg(mx_contact_check(c, 1, &out, &e) == MX_ERR_INVAL,
			      "accepted %s", bad[i]);
		ck_assert_ptr_null(out);
		json_decref(c);
	}
}
END_TEST

/* What mx_contact_check stores passes it again unchanged (found by
 * fuzz_contacts: an IDN label decoding to C1 controls, one decoding to
 * more than 320 bytes). */
START_TEST(store_check_idempotent)
{
	static const char *const in[] = {
		"{\"id\":\"c1\",\"email\":\"Anna@Client.xn--EXAMPL{n-3faya.de\"}",
		"{\"id\":\"x\",\"email\":\"\\\"ql\\\"@xn--mnc22n-emZZemail"
		"ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"
		"ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ"
		"ZZZZZZZZZZZZZZZZZZZ\"}",
		"{\"id\":\"c2\",\"email\":\"a@xn--mnchen-3ya.de\",\"emails\":[\"B@X.Example\"]}",
	};

	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		json_t *c = json_loads(in[i], 0, NULL), *out = NULL, *again = NULL;
		struct mx_error e;

		ck_assert_msg(c != NULL, "bad test input %zu", i);
		if (mx_contact_check(c, 1, &out, &e) == MX_OK) {
			ck_assert_msg(mx_contact_check(out, 1, &again, &e) == MX_OK,
				      "%zu: stored form refused: %s", i, e.detail);
			ck_assert(json_equal(out, again));
		}
		json_decref(again);
		json_decref(out);
		json_decref(c);
	}
}
END_TEST

/* One message through mx_crm_link_msg on a real store: RAW is parsed and
 * stored for an account of alice@example.test; the link's outcome. */
static char *link_one(const char *raw, struct mx_crm_opts *o)
{
	struct mx_account a = {0};
	struct mx_msg m = {0};
	struct mx_error e;
	struct mx_txn t;
	json_t *l = NULL;
	char *out;

	a.name = "a";
	a.user = "alice@example.test";
	a.created = 1000;
	ck_assert_int_eq(mx_txn_begin(g_st, true, &t, &e), MX_OK);
	{
		struct mx_account old = {0};

		if (mx_store_account_get(&t, "a", &old, &e) == MX_OK)
			a.id = old.id;
		else
			ck_assert_msg(mx_store_account_put(&t, &a, &e) == MX_OK,
				      "%s", e.detail);
		mx_account_free(&old);
	}
	ck_assert_int_eq(mx_mime_parse(raw, strlen(raw), &m.p, &e), MX_OK);
	m.account_id = a.id;
	m.internaldate = 2000;
	ck_assert_msg(mx_store_msg_add(&t, &m, raw, &e) == MX_OK, "%s", e.detail);
	ck_assert_msg(mx_crm_link_msg(&t, &a, &m, o, NULL, &e) == MX_OK, "%s",
		      e.detail);
	ck_assert_int_eq(mx_crm_link_get(&t, m.id, &l, &e), MX_OK);
	out = json_dumps(l, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(l);
	mx_parsed_free(&m.p);
	ck_assert_int_eq(mx_txn_commit(&t, &e), MX_OK);
	return out;
}

START_TEST(store_link_message)
{
	struct mx_crm_opts o = {0};
	char *s;

	upsert("{\"id\":\"anna\",\"email\":\"anna@client.example\"}");
	s = link_one("From: anna@client.example\r\nTo: alice@example.test\r\n"
		     "Date: Thu, 1 Jan 1970 00:50:00 +0000\r\n\r\nx\r\n", &o);
	ck_assert_msg(strstr(s, "\"contact\":\"anna\"") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "\"outcome\":\"linked\"") != NULL, "%s", s);
	free(s);
	/* the lookups for the Cc'd contacts run after the decision: the
	 * linked contact's id must survive them (it was freed by the next
	 * lookup, and the stored link named whatever the memory held) */
	upsert("{\"id\":\"bob\",\"email\":\"bob@other.example\"}");
	upsert("{\"id\":\"carl\",\"email\":\"carl@third.example\"}");
	s = link_one("From: anna@client.example\r\nTo: alice@example.test\r\n"
		     "Cc: bob@other.example, x@y.example, carl@third.example\r\n"
		     "Date: Thu, 1 Jan 1970 00:50:00 +0000\r\n\r\nx\r\n", &o);
	ck_assert_msg(strstr(s, "\"contact\":\"anna\"") != NULL, "%s", s);
	ck_assert_msg(strstr(s, "\"mentions\":[\"bob\",\"carl\"]") != NULL,
		      "%s", s);
	free(s);
	s = link_one("From: anna@client.example\r\nTo: alice@example.test\r\n"
		     "Date: Thu, 1 Jan 1970 00:01:00 +0000\r\n\r\nx\r\n", &o);
	ck_assert_msg(strstr(s, "before_connect") != NULL, "%s", s);
	free(s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crm");
	TCase *tc = tcase_create("rules"), *ts;
	SRunner *sr;
	int nf;

	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_test(tc, rule1_direction);
	tcase_add_test(tc, rule2_primary_wins);
	tcase_add_test(tc, rule3_additional_oldest);
	tcase_add_test(tc, rule4_first_created);
	tcase_add_test(tc, rule5_cc_mentioned_not_created);
	tcase_add_test(tc, rule6_first_known_to_and_thread);
	tcase_add_test(tc, rule7_forward_is_sent);
	tcase_add_test(tc, rule8_before_connect);
	tcase_add_test(tc, rule9_deleted_contacts);
	tcase_add_test(tc, rule10_internal);
	tcase_add_test(tc, rule11_impersonal);
	tcase_add_test(tc, rule12_blocklist);
	tcase_add_test(tc, auto_create);
	tcase_add_test(tc, no_party_and_errors);
	suite_add_tcase(s, tc);
	ts = tcase_create("store");
	tcase_add_checked_fixture(ts, store_setup, store_teardown);
	tcase_add_test(ts, store_index_and_lookup);
	tcase_add_test(ts, store_check_rejects);
	tcase_add_test(ts, store_link_message);
	tcase_add_test(ts, store_check_idempotent);
	suite_add_tcase(s, ts);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
