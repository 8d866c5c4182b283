/*
 * Unit tests: the HTTP API's pieces that need no server (src/api/): the
 * router's path matching and id validation, the query decoder, RFC 3339
 * parsing, the rate limiter's buckets; the tokens and the permission rule
 * of src/lib/users/tokens.c (create, verify, revoke, expiry, list); the
 * message cursor of src/lib/sync/query.c.  Requests against the real
 * daemon are tested by tests/integ/t-api*.sh.
 *
 * Store tests run on a fresh store in their own mkdtemp() directory.
 */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api_int.h"
#include "util/http.h"
#include "store/store.h"
#include "sync/query.h"
#include "users/tokens.h"

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

	strcpy(g_top, "/tmp/mx-test-api.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(g_top));
	snprintf(g_dir, sizeof(g_dir), "%s/data", g_top);
	g_st = NULL;
	ck_assert_msg(mx_store_open(g_dir, &g_st, &e) == MX_OK, "%s", e.detail);
}

static void teardown(void)
{
	mx_store_close(&g_st);
	nftw(g_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- router ---- */

static const struct api_route *find(const char *method, const char *path,
				    struct api_req *r, unsigned *status,
				    char *allow)
{
	memset(r, 0, sizeof(*r));
	*status = 0;
	return mx_api_route_find(method, path, r, status, allow, 64);
}

START_TEST(router_matches)
{
	struct api_req r;
	unsigned st;
	char allow[64];
	const struct api_route *rt;

	rt = find("GET", "/v1/version", &r, &st, allow);
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->path, "/v1/version");
	rt = find("GET", "/v1/accounts/12/state", &r, &st, allow);
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->path, "/v1/accounts/{id}/state");
	ck_assert_str_eq(r.pv[0], "12");
	rt = find("GET", "/v1/messages/000000000000000a/raw", &r, &st, allow);
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->path, "/v1/messages/{id}/raw");
	ck_assert_str_eq(r.pv[0], "000000000000000a");
	rt = find("GET", "/v1/events/stream", &r, &st, allow);
	ck_assert_ptr_nonnull(rt);
	ck_assert_str_eq(rt->path, "/v1/events/stream");
}
END_TEST

START_TEST(router_misses)
{
	static const char *const nf[] = {
		"/", "", "/v1", "/v1/", "/v1/version/", "/v1//version",
		"/v1/accounts/", "/v1/accounts//state", "/v1/accounts/1/",
		"/v1/accounts/1/nope", "/v2/version", "/v1/versionx",
		"/v1/messages/a/b/c", "v1/version", "/v1/accounts/../etc",
	};
	struct api_req r;
	unsigned st;
	char allow[64];

	for (size_t i = 0; i < sizeof(nf) / sizeof(nf[0]); i++) {
		ck_assert_msg(find("GET", nf[i], &r, &st, allow) == NULL,
			      "'%s' matched", nf[i]);
		ck_assert_uint_eq(st, 404);
	}
	/* A known path with another method: 405 and what is allowed. */
	ck_assert_ptr_null(find("PUT", "/v1/accounts/3", &r, &st, allow));
	ck_assert_uint_eq(st, 405);
	ck_assert_str_eq(allow, "GET, PATCH, DELETE");
	ck_assert_ptr_null(find("HEAD", "/v1/events", &r, &st, allow));
	ck_assert_uint_eq(st, 405);
}
END_TEST

START_TEST(router_long_segment)
{
	char path[2048];
	struct api_req r;
	unsigned st;
	char allow[64];

	/* A parameter longer than the request's buffer never matches (and
	 * never overflows it). */
	strcpy(path, "/v1/accounts/");
	memset(path + 13, '7', 1500);
	path[1513] = '\0';
	ck_assert_ptr_null(find("GET", path, &r, &st, allow));
	ck_assert_uint_eq(st, 404);
}
END_TEST

/* A path no route matches but whose id position holds a non-id is a bad
 * id (400 invalid_id), not a missing resource. */
START_TEST(router_bad_id_positions)
{
	static const char *const bad[] = {
		"/v1/messages/../../etc/passwd", "/v1/messages/..",
		"/v1/accounts/../x", "/v1/accounts/1x/state/more",
		"/v1/messages/ZZ/raw/x",
	};
	static const char *const plain[] = {
		"/v1/accounts/1/nope", "/v1/messages/000000000000000a/x",
		"/v1/accounts/", "/v1/nope/1", "/v1/accounts//state",
	};
	const char *seg;
	size_t n;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(mx_api_bad_id_route(bad[i], &seg, &n) != NULL,
			      "'%s' not a bad id", bad[i]);
	ck_assert_ptr_nonnull(mx_api_bad_id_route("/v1/messages/../x", &seg, &n));
	ck_assert_uint_eq(n, 2);
	ck_assert(strncmp(seg, "..", 2) == 0);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		ck_assert_msg(mx_api_bad_id_route(plain[i], &seg, &n) == NULL,
			      "'%s' taken for a bad id", plain[i]);
}
END_TEST

START_TEST(ids)
{
	uint64_t v = 0;

	ck_assert(mx_api_id_parse(API_ID_DEC, "1", &v) && v == 1);
	ck_assert(mx_api_id_parse(API_ID_DEC, "4294967295", &v) && v == 4294967295u);
	ck_assert(!mx_api_id_parse(API_ID_DEC, "0", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC, "01", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC, "4294967296", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC, "-1", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC, "1a", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC, "..", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC, "", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC, " 1", &v));
	ck_assert(mx_api_id_parse(API_ID_DEC64, "4294967296", &v) && v == 4294967296u);
	ck_assert(mx_api_id_parse(API_ID_DEC64, "9223372036854775807", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC64, "9223372036854775808", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC64, "0", &v));
	ck_assert(!mx_api_id_parse(API_ID_DEC64, "007", &v));
	ck_assert(mx_api_id_parse(API_ID_HEX16, "00000000000000ff", &v) && v == 255);
	ck_assert(!mx_api_id_parse(API_ID_HEX16, "00000000000000FF", &v));
	ck_assert(!mx_api_id_parse(API_ID_HEX16, "0000000000000000", &v));
	ck_assert(!mx_api_id_parse(API_ID_HEX16, "ff", &v));
	ck_assert(!mx_api_id_parse(API_ID_HEX16, "00000000000000fff", &v));
	ck_assert(!mx_api_id_parse(API_ID_HEX16, "../../etc/passwd", &v));
	ck_assert(!mx_api_id_parse(API_ID_HEX16, "000000000000000g", &v));
}
END_TEST

START_TEST(part_ids)
{
	static const char *const good[] = {"1", "2", "1.2", "10.3.1", "0"};
	static const char *const bad[] = {"", ".", "1.", ".1", "1..2", "a",
					  "..", "1;x", "1/2", "1 ", "-1",
					  "1.2\r\n", "%31"};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ck_assert_msg(mx_api_part_id_ok(good[i]), "'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!mx_api_part_id_ok(bad[i]), "'%s' taken", bad[i]);
	ck_assert(!mx_api_part_id_ok(
		"1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1"));
}
END_TEST

START_TEST(disposition)
{
	static const struct {
		const char *name, *want;
	} v[] = {
		{NULL, "attachment"},
		{"", "attachment"},
		{"report.pdf", "attachment; filename*=UTF-8''report.pdf"},
		{"a\"b.txt", "attachment; filename*=UTF-8''a%22b.txt"},
		{"x\r\nSet-Cookie: a=b",
		 "attachment; filename*=UTF-8''x%0D%0ASet-Cookie%3A%20a%3Db"},
		{"na\xc3\xafve \xe2\x82\xac.txt",
		 "attachment; filename*=UTF-8''na%C3%AFve%20%E2%82%AC.txt"},
		{"a;b'c%d\\e", "attachment; filename*=UTF-8''a%3Bb%27c%25d%5Ce"},
		{"\xff\xfe", "attachment; filename*=UTF-8''%FF%FE"},
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *d = mx_api_disposition(v[i].name);

		ck_assert_ptr_nonnull(d);
		ck_assert_str_eq(d, v[i].want);
		/* Nothing a header could be broken with. */
		ck_assert(strpbrk(d, "\r\n\"") == NULL);
		for (const unsigned char *p = (const unsigned char *)d; *p; p++)
			ck_assert(*p >= 0x20 && *p < 0x7f);
		free(d);
	}
}
END_TEST

/* ---- query ---- */

static void freeq(char **k, char **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(k[i]);
		free(v[i]);
	}
}

START_TEST(query_decode)
{
	char *k[API_MAX_QUERY], *v[API_MAX_QUERY], *bad = NULL;
	const char *qs = "limit=5&subject=caf%C3%A9+au+lait&&flag&to=a%40b.c";
	size_t n = 0;

	ck_assert(mx_api_query_decode(qs, strlen(qs), k, v, API_MAX_QUERY,
				      &n, &bad));
	ck_assert_uint_eq(n, 4);
	ck_assert_str_eq(k[0], "limit");
	ck_assert_str_eq(v[0], "5");
	ck_assert_str_eq(v[1], "caf\xc3\xa9 au lait");
	ck_assert_str_eq(k[2], "flag");
	ck_assert_str_eq(v[2], "");
	ck_assert_str_eq(v[3], "a@b.c");
	freeq(k, v, n);
	ck_assert(mx_api_query_decode("", 0, k, v, API_MAX_QUERY, &n, &bad));
	ck_assert_uint_eq(n, 0);
}
END_TEST

START_TEST(query_bad)
{
	static const char *const bad_qs[] = {
		"subject=%ff",      /* invalid UTF-8 */
		"subject=%00",      /* NUL */
		"subject=%4",       /* short escape */
		"subject=%zz",      /* not hex */
		"a=1&b=%c3%28",     /* invalid UTF-8 in the second */
		"%ff=1",            /* in a name */
	};
	char *k[API_MAX_QUERY], *v[API_MAX_QUERY], *bad = NULL;
	char many[400] = "";
	size_t n = 99;

	for (size_t i = 0; i < sizeof(bad_qs) / sizeof(bad_qs[0]); i++) {
		ck_assert_msg(!mx_api_query_decode(bad_qs[i], strlen(bad_qs[i]),
						   k, v, API_MAX_QUERY, &n, &bad),
			      "'%s' decoded", bad_qs[i]);
		if (i < 5)
			ck_assert_msg(bad != NULL, "'%s': no name", bad_qs[i]);
		free(bad);
	}
	/* The offending parameter is named. */
	ck_assert(!mx_api_query_decode("a=1&b=%c3%28", 12, k, v, API_MAX_QUERY,
				       &n, &bad));
	ck_assert_str_eq(bad, "b");
	free(bad);
	/* More pairs than the request takes. */
	for (int i = 0; i <= API_MAX_QUERY; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many),
			 "%sp%d=1", i ? "&" : "", i);
	ck_assert(!mx_api_query_decode(many, strlen(many), k, v, API_MAX_QUERY,
				       &n, &bad));
	free(bad);
}
END_TEST

START_TEST(times)
{
	int64_t t = 0;

	ck_assert(mx_api_parse_time("2026-01-31T09:00:00Z", &t));
	ck_assert_int_eq(t, 1769850000);
	ck_assert(mx_api_parse_time("2026-01-31T10:30:00+01:30", &t));
	ck_assert_int_eq(t, 1769850000);
	ck_assert(mx_api_parse_time("2026-01-31t09:00:00.123456z", &t));
	ck_assert_int_eq(t, 1769850000);
	ck_assert(mx_api_parse_time("2026-01-31T04:00:00-05:00", &t));
	ck_assert_int_eq(t, 1769850000);
	ck_assert(!mx_api_parse_time("2026-01-31", &t));
	ck_assert(!mx_api_parse_time("2026-01-31T09:00:00", &t));
	ck_assert(!mx_api_parse_time("2026-13-01T09:00:00Z", &t));
	ck_assert(!mx_api_parse_time("2026-02-30T09:00:00Z", &t));
	ck_assert(!mx_api_parse_time("2026-01-32T09:00:00Z", &t));
	ck_assert(!mx_api_parse_time("2026-01-31T24:00:00Z", &t));
	ck_assert(!mx_api_parse_time("2026-01-31T09:00:00Zjunk", &t));
	ck_assert(!mx_api_parse_time("2026-01-31T09:00:00+0100", &t));
	/* Cut offsets: refused without reading past the end (fuzz_api). */
	ck_assert(!mx_api_parse_time("2026-01-31T09:00:00+1", &t));
	ck_assert(!mx_api_parse_time("2026-01-31T09:00:00+01:", &t));
	ck_assert(!mx_api_parse_time("2026-01-31T09:00:00+01:0", &t));
	ck_assert(!mx_api_parse_time("2026-01-31T09:00:00+01:000", &t));
	ck_assert(!mx_api_parse_time("2026-01-31T09:00:00.Z", &t));
	ck_assert(!mx_api_parse_time("yesterday", &t));
}
END_TEST

START_TEST(cursor)
{
	struct mx_msg_cursor c = {-5, 0x1234}, d;
	char s[48];

	mx_msg_cursor_str(&c, s);
	ck_assert(mx_msg_cursor_parse(s, &d));
	ck_assert_int_eq(d.date, -5);
	ck_assert_uint_eq(d.id, 0x1234);
	c.date = 1700000000;
	mx_msg_cursor_str(&c, s);
	ck_assert(mx_msg_cursor_parse(s, &d) && d.date == 1700000000);
	ck_assert(!mx_msg_cursor_parse("", &d));
	ck_assert(!mx_msg_cursor_parse("12", &d));
	ck_assert(!mx_msg_cursor_parse(".0000000000000001", &d));
	ck_assert(!mx_msg_cursor_parse("12.1", &d));
	ck_assert(!mx_msg_cursor_parse("12.0000000000000001x", &d));
	ck_assert(!mx_msg_cursor_parse("x2.0000000000000001", &d));
	ck_assert(!mx_msg_cursor_parse("99999999999999999999.0000000000000001", &d));
}
END_TEST

/* ---- rate limit ---- */

START_TEST(rate_limit)
{
	struct mx_api api;
	unsigned retry = 0;
	int ok = 0;

	memset(&api, 0, sizeof(api));
	pthread_mutex_init(&api.rl_mu, NULL);
	api.cfg.rate_limit = 10;
	/* A burst of twice the rate, then refusals with a retry time. */
	for (int i = 0; i < 25; i++)
		ok += mx_api_rate_take(&api, 7, 1000000, &retry);
	ck_assert_int_eq(ok, 20);
	ck_assert_uint_ge(retry, 1);
	/* Another token has its own bucket. */
	ck_assert(mx_api_rate_take(&api, 8, 1000000, &retry));
	/* 100 ms later one more request of token 7 may go (10 a second). */
	ck_assert(mx_api_rate_take(&api, 7, 1000100, &retry));
	ck_assert(!mx_api_rate_take(&api, 7, 1000100, &retry));
	/* After a long pause the bucket is full again, not fuller. */
	ok = 0;
	for (int i = 0; i < 30; i++)
		ok += mx_api_rate_take(&api, 7, 9000000, &retry);
	ck_assert_int_eq(ok, 20);
	/* rate_limit 0: no limit. */
	api.cfg.rate_limit = 0;
	ck_assert(mx_api_rate_take(&api, 7, 9000000, &retry));
	free(api.buckets);
	pthread_mutex_destroy(&api.rl_mu);
}
END_TEST

/* ---- tokens ---- */

START_TEST(token_lifecycle)
{
	char tok[MX_APITOKEN_LEN + 1], tok2[MX_APITOKEN_LEN + 1];
	struct mx_apitoken info, got, *v = NULL;
	struct mx_error e;
	size_t n = 0;
	int64_t now = mx_wall_s();

	ck_assert_int_eq(mx_apitoken_create(g_st, "crm-user-7", false, 0, "crm",
					    tok, &info, &e), MX_OK);
	ck_assert_uint_eq(strlen(tok), MX_APITOKEN_LEN);
	ck_assert(strncmp(tok, "mxs_", 4) == 0);
	ck_assert_uint_eq(info.id, 1);
	ck_assert_int_eq(info.expires, 0);
	ck_assert_int_eq(mx_apitoken_verify(g_st, tok, now, &got, &e), MX_OK);
	ck_assert_str_eq(got.user, "crm-user-7");
	ck_assert_str_eq(got.name, "crm");
	ck_assert(!got.admin);
	ck_assert_uint_eq(got.id, 1);
	mx_apitoken_free(&got);
	mx_apitoken_free(&info);
	/* A second token differs; an admin one says so. */
	ck_assert_int_eq(mx_apitoken_create(g_st, "root", true, 0, NULL, tok2,
					    NULL, &e), MX_OK);
	ck_assert_str_ne(tok, tok2);
	ck_assert_int_eq(mx_apitoken_verify(g_st, tok2, now, &got, &e), MX_OK);
	ck_assert(got.admin);
	mx_apitoken_free(&got);
	/* The store keeps no token, only records: list shows both. */
	ck_assert_int_eq(mx_apitoken_list(g_st, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(v[0].user, "crm-user-7");
	ck_assert_str_eq(v[1].user, "root");
	mx_apitokens_free(v, n);
	/* Revoked: 401 at once, and revoking again is not found. */
	ck_assert_int_eq(mx_apitoken_revoke(g_st, 1, &e), MX_OK);
	ck_assert_int_eq(mx_apitoken_verify(g_st, tok, now, &got, &e), MX_ERR_AUTH);
	ck_assert_int_eq(mx_apitoken_revoke(g_st, 1, &e), MX_ERR_NOTFOUND);
	ck_assert_int_eq(mx_apitoken_verify(g_st, tok2, now, &got, &e), MX_OK);
	mx_apitoken_free(&got);
	ck_assert_int_eq(mx_apitoken_list(g_st, &v, &n, &e), MX_OK);
	ck_assert_uint_eq(n, 1);
	mx_apitokens_free(v, n);
}
END_TEST

START_TEST(token_expiry)
{
	char tok[MX_APITOKEN_LEN + 1];
	struct mx_apitoken info, got;
	struct mx_error e;

	ck_assert_int_eq(mx_apitoken_create(g_st, "u", false, 2, NULL, tok,
					    &info, &e), MX_OK);
	ck_assert_int_eq(info.expires, info.created + 2 * 86400);
	ck_assert_int_eq(mx_apitoken_verify(g_st, tok, info.expires - 1, &got,
					    &e), MX_OK);
	mx_apitoken_free(&got);
	ck_assert_int_eq(mx_apitoken_verify(g_st, tok, info.expires, &got, &e),
			 MX_ERR_AUTH);
	ck_assert_str_eq(e.detail, "token expired");
	mx_apitoken_free(&info);
	ck_assert_int_eq(mx_apitoken_create(g_st, "u", false,
					    MX_APITOKEN_MAX_DAYS + 1, NULL, tok,
					    NULL, &e), MX_ERR_INVAL);
}
END_TEST

START_TEST(token_bad)
{
	char tok[MX_APITOKEN_LEN + 1];
	struct mx_apitoken got;
	struct mx_error e;
	char flipped[MX_APITOKEN_LEN + 1];

	ck_assert_int_eq(mx_apitoken_create(g_st, "", false, 0, NULL, tok, NULL,
					    &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_apitoken_create(g_st, "a\nb", false, 0, NULL, tok,
					    NULL, &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_apitoken_create(g_st, "\xff", false, 0, NULL, tok,
					    NULL, &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_apitoken_create(g_st, "u", false, 0, "x\x1b[2J",
					    tok, NULL, &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_apitoken_create(g_st, "u", false, 0, NULL, tok, NULL,
					    &e), MX_OK);
	/* One character changed, cut, extended, another prefix: unknown. */
	strcpy(flipped, tok);
	flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
	ck_assert_int_eq(mx_apitoken_verify(g_st, flipped, 0, &got, &e), MX_ERR_AUTH);
	flipped[10] = tok[10];
	flipped[MX_APITOKEN_LEN - 1] = '\0';
	ck_assert_int_eq(mx_apitoken_verify(g_st, flipped, 0, &got, &e), MX_ERR_AUTH);
	ck_assert_int_eq(mx_apitoken_verify(g_st, "", 0, &got, &e), MX_ERR_AUTH);
	ck_assert_int_eq(mx_apitoken_verify(g_st, NULL, 0, &got, &e), MX_ERR_AUTH);
	strcpy(flipped, tok);
	flipped[0] = 'M';
	ck_assert_int_eq(mx_apitoken_verify(g_st, flipped, 0, &got, &e), MX_ERR_AUTH);
	strcpy(flipped, tok);
	flipped[20] = '/';
	ck_assert_int_eq(mx_apitoken_verify(g_st, flipped, 0, &got, &e), MX_ERR_AUTH);
	ck_assert_int_eq(mx_apitoken_verify(g_st, tok, 0, &got, &e), MX_OK);
	mx_apitoken_free(&got);
}
END_TEST

/* A query that finds nothing: an empty page and no cursor (under UBSan it
 * once passed qsort() a NULL array). */
START_TEST(query_empty)
{
	static const uint32_t accts[] = {1, 2};
	struct mx_msg_filter f = {.unread = -1, .flagged = -1};
	struct mx_msg_cursor next = {0, 0};
	struct mx_error e;
	json_t *msgs = NULL;
	bool more = true;

	ck_assert_int_eq(mx_msg_query(g_st, &f, NULL, 50, &msgs, &more, &next,
				      &e), MX_OK);
	ck_assert_uint_eq(json_array_size(msgs), 0);
	ck_assert(!more);
	json_decref(msgs);
	f.accounts = accts;
	f.naccounts = 2;
	ck_assert_int_eq(mx_msg_query(g_st, &f, &next, 1, &msgs, &more, &next,
				      &e), MX_OK);
	ck_assert_uint_eq(json_array_size(msgs), 0);
	ck_assert(!more);
	json_decref(msgs);
	ck_assert_int_eq(mx_msg_get_json(g_st, 5, accts, 2, &msgs, &e),
			 MX_ERR_NOTFOUND);
}
END_TEST

/* Many requests read at once, each in a transaction of its own: far
 * more than LMDB's default 126 reader slots. */
START_TEST(many_readers)
{
	enum { N = 1000 };
	struct mx_txn *t = calloc(N, sizeof(*t));
	struct mx_error e;
	int i;

	ck_assert_ptr_nonnull(t);
	for (i = 0; i < N; i++)
		ck_assert_msg(mx_txn_begin(g_st, false, &t[i], &e) == MX_OK,
			      "read transaction %d: %s", i + 1, e.detail);
	while (i--)
		mx_txn_abort(&t[i]);
	free(t);
}
END_TEST

/* ---- permissions ---- */

/* Prometheus label values: the format's three escapes, nothing else. */
START_TEST(prom_label)
{
	struct mx_buf b = {0};
	char *s;

	mx_api_prom_label(&b, "we\"ird\\name\nx\xc3\xa9 {a=\"1\"}");
	s = mx_buf_steal(&b);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "we\\\"ird\\\\name\\nx\xc3\xa9 {a=\\\"1\\\"}");
	free(s);
}
END_TEST

START_TEST(permission_rule)
{
	char *allowed[] = {"carol", "dave"};
	struct mx_account a;

	memset(&a, 0, sizeof(a));
	a.owner = "bob";
	a.access = MX_ACCESS_OWNER;
	ck_assert(mx_api_may_use(&a, "bob", false));
	ck_assert(!mx_api_may_use(&a, "carol", false));
	ck_assert(!mx_api_may_use(&a, "Bob", false));
	ck_assert(mx_api_may_use(&a, "anyone", true));
	a.access = MX_ACCESS_SELECTED;
	a.allowed = allowed;
	a.nallowed = 2;
	ck_assert(mx_api_may_use(&a, "bob", false));
	ck_assert(mx_api_may_use(&a, "carol", false));
	ck_assert(mx_api_may_use(&a, "dave", false));
	ck_assert(!mx_api_may_use(&a, "eve", false));
	/* Owner access ignores a stale allow list. */
	a.access = MX_ACCESS_OWNER;
	ck_assert(!mx_api_may_use(&a, "carol", false));
	a.access = MX_ACCESS_ALL;
	ck_assert(mx_api_may_use(&a, "eve", false));
	/* No owner: only admins (and access all). */
	a.access = MX_ACCESS_OWNER;
	a.owner = NULL;
	ck_assert(!mx_api_may_use(&a, "bob", false));
	ck_assert(mx_api_may_use(&a, "bob", true));
}
END_TEST

/* The origin check behind return_to (mx_url_origin, util/http.c). */
START_TEST(url_origin)
{
	static const struct {
		const char *url, *origin; /* origin NULL: refused */
	} cases[] = {
		{"https://crm.example/done?x=1", "https://crm.example"},
		{"HTTPS://CRM.Example:8443", "https://crm.example:8443"},
		{"http://127.0.0.1:3000#f", "http://127.0.0.1:3000"},
		{"https://crm.example?next=/x", "https://crm.example"},
		{"https://evil.example@crm.example/", NULL},
		{"https://crm.example\\@evil.example/", NULL},
		{"https://crm.example/a b", NULL},
		{"https://crm.example/\r\nSet-Cookie:x", NULL},
		{"javascript:alert(1)", NULL},
		{"//crm.example/", NULL},
		{"/relative", NULL},
		{"https:///path", NULL},
		{"ftp://crm.example/", NULL},
	};
	char o[64];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = mx_url_origin(cases[i].url, o, sizeof(o), NULL);

		ck_assert_msg(ok == (cases[i].origin != NULL), "%s",
			      cases[i].url);
		if (ok)
			ck_assert_str_eq(o, cases[i].origin);
	}
	ck_assert(!mx_url_origin("https://a-rather-long-host-name.example"
				 ".test:1234/", o, 16, NULL));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("api");
	TCase *tp = tcase_create("pure");
	TCase *ts = tcase_create("store");
	SRunner *sr;
	int nf;

	tcase_add_test(tp, router_matches);
	tcase_add_test(tp, router_misses);
	tcase_add_test(tp, router_long_segment);
	tcase_add_test(tp, router_bad_id_positions);
	tcase_add_test(tp, ids);
	tcase_add_test(tp, part_ids);
	tcase_add_test(tp, disposition);
	tcase_add_test(tp, query_decode);
	tcase_add_test(tp, query_bad);
	tcase_add_test(tp, times);
	tcase_add_test(tp, cursor);
	tcase_add_test(tp, rate_limit);
	tcase_add_test(tp, permission_rule);
	tcase_add_test(tp, prom_label);
	tcase_add_test(tp, url_origin);
	suite_add_tcase(s, tp);
	tcase_add_checked_fixture(ts, setup, teardown);
	tcase_add_test(ts, token_lifecycle);
	tcase_add_test(ts, token_expiry);
	tcase_add_test(ts, token_bad);
	tcase_add_test(ts, query_empty);
	tcase_add_test(ts, many_readers);
	suite_add_tcase(s, ts);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_ENV);
	nf = srunner_ntests_failed(sr);
	srunner_free(sr);
	return nf == 0 ? 0 : 1;
}
