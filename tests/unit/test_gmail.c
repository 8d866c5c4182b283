/*
 * Unit tests of the Gmail API client (src/backends/gmail_api.c,
 * gmail_json.c): every decoder with a valid answer and each hostile one,
 * base64url, the quota bucket on an injected clock, Retry-After, backoff,
 * page-loop detection, id and label-name checks, error mapping; and the
 * retry rules end to end against a scripted HTTP server thread on
 * loopback that plays canned answers in order.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backends/gmail_api.h"
#include "backends/gmail_send.h"

#define ck_protocol(rc, e, needle)                                        \
	do {                                                              \
		ck_assert_int_eq((rc), MX_ERR_PROTOCOL);                  \
		ck_assert_msg(strstr((e).detail, (needle)) != NULL,       \
			      "detail '%s' lacks '%s'", (e).detail,       \
			      (needle));                                  \
	} while (0)

/* ---- ids, names, base64url ---- */

START_TEST(ids)
{
	char long_id[MX_GMAIL_ID_MAX + 2];

	ck_assert(mx_gmail_id_valid("18c2f5a1b2c3d4e5"));
	ck_assert(mx_gmail_id_valid("Label_12"));
	ck_assert(mx_gmail_id_valid("a-b_C9"));
	ck_assert(!mx_gmail_id_valid(NULL));
	ck_assert(!mx_gmail_id_valid(""));
	ck_assert(!mx_gmail_id_valid("a/b"));
	ck_assert(!mx_gmail_id_valid(".."));
	ck_assert(!mx_gmail_id_valid("a.b"));
	ck_assert(!mx_gmail_id_valid("a b"));
	ck_assert(!mx_gmail_id_valid("a%2F"));
	ck_assert(!mx_gmail_id_valid("\xc3\xa9"));
	memset(long_id, 'a', MX_GMAIL_ID_MAX);
	long_id[MX_GMAIL_ID_MAX] = '\0';
	ck_assert(mx_gmail_id_valid(long_id));
	long_id[MX_GMAIL_ID_MAX] = 'a';
	long_id[MX_GMAIL_ID_MAX + 1] = '\0';
	ck_assert(!mx_gmail_id_valid(long_id));
}
END_TEST

START_TEST(label_names)
{
#define NAME_OK(s) ck_assert(mx_gmail_label_name_valid(s, strlen(s)))
#define NAME_BAD(s) ck_assert(!mx_gmail_label_name_valid(s, sizeof(s) - 1))
	NAME_OK("Work/Clients");
	NAME_OK("\xc3\x9c" "bersicht 2024");
	NAME_BAD("");
	NAME_BAD("a\x01" "b");
	NAME_BAD("a\nb");
	NAME_BAD("a\x7f");
	NAME_BAD("a\xc2\x85"); /* U+0085, a C1 control */
	NAME_BAD("a\xff");
	NAME_BAD("a\0b");
#undef NAME_OK
#undef NAME_BAD
}
END_TEST

START_TEST(base64url)
{
	unsigned char bytes[256];
	struct mx_buf out = {0};
	bool big;
	char *s;
	size_t i;

	for (i = 0; i < sizeof(bytes); i++)
		bytes[i] = (unsigned char)i;
	for (size_t n = 0; n <= sizeof(bytes); n += 37) {
		s = mx_gmail_b64url_encode(bytes, n);
		ck_assert_ptr_nonnull(s);
		ck_assert(strpbrk(s, "+/=") == NULL);
		mx_buf_reset(&out);
		ck_assert_int_eq(mx_gmail_b64url_decode(s, strlen(s), n, &out,
							&big), 0);
		ck_assert_uint_eq(out.len, n);
		ck_assert(n == 0 || memcmp(out.data, bytes, n) == 0);
		if (n > 0) {
			mx_buf_reset(&out);
			ck_assert_int_eq(mx_gmail_b64url_decode(
						 s, strlen(s), n - 1, &out, &big),
					 -1);
			ck_assert(big);
		}
		free(s);
	}
	/* Padded is fine too; the standard alphabet is not. */
	mx_buf_reset(&out);
	ck_assert_int_eq(mx_gmail_b64url_decode("_-8=", 4, 10, &out, &big), 0);
	ck_assert_uint_eq(out.len, 2);
	ck_assert_int_eq((unsigned char)out.data[0], 0xff);
	ck_assert_int_eq((unsigned char)out.data[1], 0xef);
	ck_assert_int_eq(mx_gmail_b64url_decode("/+8=", 4, 10, &out, &big), -1);
	ck_assert(!big);
	ck_assert_int_eq(mx_gmail_b64url_decode("QUJDR", 5, 10, &out, &big),
			 -1);
	ck_assert_int_eq(mx_gmail_b64url_decode("QU=J", 4, 10, &out, &big), -1);
	ck_assert_int_eq(mx_gmail_b64url_decode("QU\nJD", 5, 10, &out, &big),
			 -1);
	mx_buf_free(&out);
}
END_TEST

/* ---- quota, retries ---- */

START_TEST(bucket)
{
	struct mx_gmail_bucket b;
	uint64_t t, used = 0, w;

	ck_assert_uint_eq(mx_gmail_cost(MX_GMAIL_MESSAGES_LIST), 5);
	ck_assert_uint_eq(mx_gmail_cost(MX_GMAIL_MESSAGES_GET), 5);
	ck_assert_uint_eq(mx_gmail_cost(MX_GMAIL_HISTORY_LIST), 2);
	ck_assert_uint_eq(mx_gmail_cost(MX_GMAIL_MESSAGES_SEND), 100);
	ck_assert_uint_eq(mx_gmail_cost(MX_GMAIL_MESSAGES_MODIFY), 5);
	ck_assert_uint_eq(mx_gmail_cost(MX_GMAIL_MESSAGES_BATCH_MODIFY), 50);
	ck_assert_uint_eq(mx_gmail_cost(MX_GMAIL_LABELS_LIST), 1);
	ck_assert_uint_eq(mx_gmail_cost(MX_GMAIL_LABELS_CREATE), 5);

	/* A full bucket holds one second's burst: 50 gets at once. */
	mx_gmail_bucket_init(&b, 15000, 250, 1000);
	for (int i = 0; i < 50; i++)
		ck_assert_uint_eq(mx_gmail_bucket_take(&b, 5, 1000), 0);
	/* Then 5 units come back in 5 * 60000 / 14750 ms, rounded up. */
	w = mx_gmail_bucket_take(&b, 5, 1000);
	ck_assert_uint_eq(w, 21);
	ck_assert_uint_ne(mx_gmail_bucket_take(&b, 5, 1020), 0);
	ck_assert_uint_eq(mx_gmail_bucket_take(&b, 5, 1021), 0);
	/* A clock that goes back gives nothing. */
	ck_assert_uint_ne(mx_gmail_bucket_take(&b, 5, 500), 0);

	/* Greedy use for a minute from a full bucket stays within
	 * 15,000 units. */
	mx_gmail_bucket_init(&b, 15000, 250, 0);
	for (t = 0; t < 60000;) {
		w = mx_gmail_bucket_take(&b, 5, t);
		if (w == 0)
			used += 5;
		else
			t += w;
	}
	ck_assert_uint_le(used, 15000);
	ck_assert_uint_ge(used, 14900);

	/* A cost above the burst is charged as the burst. */
	mx_gmail_bucket_init(&b, 600, 50, 0);
	ck_assert_uint_eq(mx_gmail_bucket_take(&b, 100, 0), 0);
	ck_assert_uint_eq(mx_gmail_bucket_take(&b, 1, 0),
			  (60000 + 549) / 550);
	/* Draining: everything must be earned again. */
	mx_gmail_bucket_init(&b, 15000, 250, 0);
	mx_gmail_bucket_drain(&b, 0);
	ck_assert_uint_eq(mx_gmail_bucket_take(&b, 2, 0), 9);
	/* Nonsense settings fall back to Google's limits. */
	mx_gmail_bucket_init(&b, 10, 20, 0);
	ck_assert_uint_eq(b.cap, 250u * 60000);
}
END_TEST

START_TEST(retry_after)
{
	uint64_t ms = 7;
	/* Sun, 06 Nov 1994 08:49:37 GMT */
	const int64_t when = 784111777;

	ck_assert_int_eq(mx_gmail_retry_after("120", 0, &ms), 0);
	ck_assert_uint_eq(ms, 120000);
	ck_assert_int_eq(mx_gmail_retry_after(" 0 ", 0, &ms), 0);
	ck_assert_uint_eq(ms, 0);
	ck_assert_int_eq(mx_gmail_retry_after("99999999999999999999999", 0,
					      &ms), 0);
	ck_assert_uint_eq(ms, 86400000);
	ck_assert_int_eq(mx_gmail_retry_after("999999999999999999999999", 0,
					      &ms), -1);
	ck_assert_int_eq(mx_gmail_retry_after("9999999", 0, &ms), 0);
	ck_assert_uint_eq(ms, 86400000);
	ck_assert_int_eq(mx_gmail_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
					      when - 30, &ms), 0);
	ck_assert_uint_eq(ms, 30000);
	ck_assert_int_eq(mx_gmail_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
					      when + 30, &ms), 0);
	ck_assert_uint_eq(ms, 0);
	ms = 7;
	ck_assert_int_eq(mx_gmail_retry_after("", 0, &ms), -1);
	ck_assert_int_eq(mx_gmail_retry_after("soon", 0, &ms), -1);
	ck_assert_int_eq(mx_gmail_retry_after("-1", 0, &ms), -1);
	ck_assert_int_eq(mx_gmail_retry_after("5x", 0, &ms), -1);
	ck_assert_int_eq(mx_gmail_retry_after(NULL, 0, &ms), -1);
	ck_assert_uint_eq(ms, 7);

	ck_assert_uint_eq(mx_gmail_backoff_ms(0, -1, 64000, 0), 1000);
	ck_assert_uint_eq(mx_gmail_backoff_ms(3, -1, 64000, 0), 8000);
	ck_assert_uint_eq(mx_gmail_backoff_ms(10, -1, 64000, 0), 64000);
	ck_assert_uint_eq(mx_gmail_backoff_ms(99, -1, 64000, 0), 64000);
	ck_assert_uint_eq(mx_gmail_backoff_ms(0, 5000, 64000, 0), 5000);
	ck_assert_uint_eq(mx_gmail_backoff_ms(0, 0, 64000, 0), 0);
	ck_assert_uint_eq(mx_gmail_backoff_ms(0, 999999, 64000, 0), 64000);
	ck_assert_uint_eq(mx_gmail_backoff_ms(0, 5000, 64000, 1000), 6000);
	ck_assert_uint_eq(mx_gmail_backoff_ms(0, 5000, 64000, 1001), 5000);
	ck_assert_uint_le(mx_gmail_backoff_ms(5, -1, 3, 0xffffffffu), 6);
}
END_TEST

START_TEST(pager)
{
	struct mx_gmail_pager p = {0};
	struct mx_error e = {0};
	char tok[32];

	for (int i = 0; i < 100; i++) {
		snprintf(tok, sizeof(tok), "tok%d", i);
		ck_assert_int_eq(mx_gmail_pager_next(&p, "list", tok, &e),
				 MX_OK);
	}
	ck_assert_int_eq(mx_gmail_pager_next(&p, "users.messages.list",
					     "tok42", &e),
			 MX_ERR_PROTOCOL);
	ck_assert(strstr(e.detail, "page loop") != NULL);
	ck_assert(strstr(e.detail, "users.messages.list") != NULL);
	mx_gmail_pager_free(&p);
	ck_assert_ptr_null(p.seen);
}
END_TEST

/* ---- decoders ---- */

#define J(s) s, sizeof(s) - 1

START_TEST(list_page)
{
	struct mx_gmail_list_page p;
	struct mx_error e = {0};
	int rc;

	rc = mx_gmail_parse_list(J("{\"messages\":[{\"id\":\"18c1\","
				   "\"threadId\":\"18c0\"},{\"id\":\"18c2\","
				   "\"threadId\":\"18c2\"}],"
				   "\"nextPageToken\":\"0912-x_y\","
				   "\"resultSizeEstimate\":201}"),
				 &p, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_uint_eq(p.n, 2);
	ck_assert_str_eq(p.v[0].id, "18c1");
	ck_assert_str_eq(p.v[0].thread_id, "18c0");
	ck_assert_str_eq(p.v[1].id, "18c2");
	ck_assert_str_eq(p.next_page_token, "0912-x_y");
	ck_assert_uint_eq(p.result_size_estimate, 201);
	mx_gmail_list_page_free(&p);

	/* An empty mailbox has no "messages" at all. */
	ck_assert_int_eq(mx_gmail_parse_list(J("{\"resultSizeEstimate\":0}"),
					     &p, &e), MX_OK);
	ck_assert_uint_eq(p.n, 0);
	ck_assert_ptr_null(p.next_page_token);
	mx_gmail_list_page_free(&p);

#define LIST_BAD(body, needle)                                            \
	do {                                                              \
		rc = mx_gmail_parse_list(J(body), &p, &e);                \
		ck_protocol(rc, e, needle);                               \
		ck_assert_ptr_null(p.v);                                  \
		ck_assert_ptr_null(p.next_page_token);                    \
	} while (0)
	LIST_BAD("", "malformed JSON");
	LIST_BAD("{\"messages\":[", "malformed JSON");
	LIST_BAD("[]", "not a JSON object");
	LIST_BAD("{\"a\":1,\"a\":2}", "malformed JSON");
	LIST_BAD("{\"messages\":{}}", "messages is not an array");
	LIST_BAD("{\"messages\":[1]}", "not an object");
	LIST_BAD("{\"messages\":[{\"id\":\"../x\",\"threadId\":\"1\"}]}",
		 "id is not an id");
	LIST_BAD("{\"messages\":[{\"id\":\"a/b\",\"threadId\":\"1\"}]}",
		 "id is not an id");
	LIST_BAD("{\"messages\":[{\"id\":\"a\\u0000\",\"threadId\":\"1\"}]}",
		 "malformed JSON");
	/* jansson quotes the bytes near the fault: they come escaped. */
	LIST_BAD("{\"messages\":\x1b[2J\x07", "malformed JSON");
	ck_assert(strchr(e.detail, 0x1b) == NULL);
	LIST_BAD("{\"messages\":[{\"id\":12,\"threadId\":\"1\"}]}",
		 "id is not a string");
	LIST_BAD("{\"messages\":[{\"id\":\"1\",\"threadId\":\"1\"},"
		 "{\"id\":\"2\"}]}", "threadId missing");
	LIST_BAD("{\"nextPageToken\":7}", "nextPageToken is not a string");
	LIST_BAD("{\"nextPageToken\":\"a b\"}", "nextPageToken has a");
	LIST_BAD("{\"nextPageToken\":\"\"}", "nextPageToken is empty");
	LIST_BAD("{\"resultSizeEstimate\":\"x\"}", "resultSizeEstimate");
	LIST_BAD("{\"resultSizeEstimate\":-1}", "resultSizeEstimate");
#undef LIST_BAD
}
END_TEST

START_TEST(message)
{
	struct mx_gmail_msg m;
	struct mx_error e = {0};
	int rc;

	rc = mx_gmail_parse_msg(
		J("{\"id\":\"18c1\",\"threadId\":\"18c0\","
		  "\"labelIds\":[\"INBOX\",\"UNREAD\",\"Label_7\"],"
		  "\"snippet\":\"ignored\",\"historyId\":\"987654\","
		  "\"internalDate\":\"1700000000123\",\"sizeEstimate\":4321,"
		  "\"payload\":{\"mimeType\":\"text/plain\",\"headers\":["
		  "{\"name\":\"Date\",\"value\":\"Tue, 14 Nov 2023 22:13:20 "
		  "+0000\"},{\"name\":\"from\",\"value\":\"=?UTF-8?Q?Ann?= "
		  "<Ann.Lee@Example.COM>, bob@example.org\"}]}}"),
		&m, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_str_eq(m.id, "18c1");
	ck_assert_str_eq(m.thread_id, "18c0");
	ck_assert_uint_eq(m.labels.n, 3);
	ck_assert_str_eq(m.labels.v[2], "Label_7");
	ck_assert_int_eq(m.internal_date_ms, 1700000000123LL);
	ck_assert_uint_eq(m.history_id, 987654);
	ck_assert_uint_eq(m.size_estimate, 4321);
	ck_assert_str_eq(m.from, "Ann.Lee@example.com");
	mx_gmail_msg_free(&m);

	/* No From (or an unparsable one) is no sender, not an error. */
	rc = mx_gmail_parse_msg(J("{\"id\":\"1\",\"threadId\":\"1\","
				  "\"historyId\":2,\"internalDate\":\"0\","
				  "\"payload\":{\"headers\":[{\"name\":"
				  "\"From\",\"value\":\"undisclosed\"}]}}"),
				&m, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_ptr_null(m.from);
	ck_assert_uint_eq(m.labels.n, 0);
	mx_gmail_msg_free(&m);

	/* A NUL in a header value (real mail has them, Gmail sends them as
	 * \u0000): the message is still read; a From with one is no
	 * sender, a NUL elsewhere does not matter. */
	rc = mx_gmail_parse_msg(J("{\"id\":\"1\",\"threadId\":\"1\","
				  "\"historyId\":2,\"internalDate\":\"0\","
				  "\"payload\":{\"headers\":[{\"name\":"
				  "\"From\",\"value\":\"a@b.c\\u0000x\"}]}}"),
				&m, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_ptr_null(m.from);
	mx_gmail_msg_free(&m);
	rc = mx_gmail_parse_msg(J("{\"id\":\"1\",\"threadId\":\"1\","
				  "\"historyId\":2,\"internalDate\":\"0\","
				  "\"payload\":{\"headers\":[{\"name\":"
				  "\"Date\",\"value\":\"\\u0000\"},{\"name\":"
				  "\"From\",\"value\":\"a@b.example\"}]}}"),
				&m, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_str_eq(m.from, "a@b.example");
	mx_gmail_msg_free(&m);

#define MSG_BAD(body, needle)                                             \
	do {                                                              \
		rc = mx_gmail_parse_msg(J(body), &m, &e);                 \
		ck_protocol(rc, e, needle);                               \
		ck_assert_ptr_null(m.from);                               \
		ck_assert_ptr_null(m.labels.v);                           \
	} while (0)
#define HEAD "{\"id\":\"1\",\"threadId\":\"1\",\"historyId\":\"5\","
	MSG_BAD(HEAD "\"labelIds\":[\"INBOX\"]}", "internalDate missing");
	MSG_BAD(HEAD "\"internalDate\":\"-5\"}", "internalDate");
	MSG_BAD(HEAD "\"internalDate\":\"9223372036854775808\"}",
		"internalDate");
	MSG_BAD(HEAD "\"internalDate\":1.5}", "internalDate");
	MSG_BAD(HEAD "\"internalDate\":\"1\",\"labelIds\":[\"INBOX\","
		     "\"../../x\"]}", "labelIds is not an id");
	MSG_BAD(HEAD "\"internalDate\":\"1\",\"labelIds\":\"INBOX\"}",
		"labelIds is not an array");
	MSG_BAD(HEAD "\"internalDate\":\"1\",\"payload\":[]}",
		"payload is not an object");
	MSG_BAD(HEAD "\"internalDate\":\"1\",\"payload\":{\"headers\":{}}}",
		"payload.headers is not an array");
	MSG_BAD(HEAD "\"internalDate\":\"1\",\"payload\":{\"headers\":"
		     "[{\"name\":\"From\",\"value\":null}]}}",
		"payload.headers has an entry");
	MSG_BAD("{\"id\":\"1\",\"threadId\":\"1\",\"internalDate\":\"1\"}",
		"historyId missing");
	MSG_BAD("{\"id\":\"1\",\"threadId\":\"1\",\"historyId\":\"x\","
		"\"internalDate\":\"1\"}", "historyId");
#undef HEAD
#undef MSG_BAD
}
END_TEST

START_TEST(raw_message)
{
	static const char msg[] = "From: a@example.com\r\n\r\nhello \xff\r\n";
	struct mx_buf out = {0}, body = {0};
	struct mx_error e = {0};
	char *b64 = mx_gmail_b64url_encode(msg, sizeof(msg) - 1);
	int rc;

	ck_assert_ptr_nonnull(b64);
	ck_assert_int_eq(mx_buf_printf(&body, "{\"id\":\"1\",\"raw\":\"%s\"}",
				       b64), 0);
	rc = mx_gmail_parse_raw(body.data, body.len, sizeof(msg) - 1, &out, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_uint_eq(out.len, sizeof(msg) - 1);
	ck_assert(memcmp(out.data, msg, out.len) == 0);
	/* One byte over the cap: refused, and OUT keeps what it had. */
	rc = mx_gmail_parse_raw(body.data, body.len, sizeof(msg) - 2, &out, &e);
	ck_protocol(rc, e, "byte limit");
	ck_assert_uint_eq(out.len, sizeof(msg) - 1);
	mx_buf_reset(&out);
	rc = mx_gmail_parse_raw(J("{\"raw\":\"QUJD+A\"}"), 100, &out, &e);
	ck_protocol(rc, e, "raw is not base64url");
	rc = mx_gmail_parse_raw(J("{\"raw\":7}"), 100, &out, &e);
	ck_protocol(rc, e, "raw is not a string");
	rc = mx_gmail_parse_raw(J("{\"id\":\"1\"}"), 100, &out, &e);
	ck_protocol(rc, e, "raw missing");
	ck_assert_uint_eq(out.len, 0);
	free(b64);
	mx_buf_free(&body);
	mx_buf_free(&out);
}
END_TEST

START_TEST(history)
{
	struct mx_gmail_history_page h;
	struct mx_error e = {0};
	int rc;

	rc = mx_gmail_parse_history(
		J("{\"history\":[{\"id\":\"101\",\"messages\":[],"
		  "\"messagesAdded\":[{\"message\":{\"id\":\"a1\","
		  "\"threadId\":\"t1\",\"labelIds\":[\"INBOX\"]}}]},"
		  "{\"id\":\"105\",\"labelsAdded\":[{\"message\":{\"id\":"
		  "\"a1\",\"threadId\":\"t1\"},\"labelIds\":[\"STARRED\"]}],"
		  "\"labelsRemoved\":[{\"message\":{\"id\":\"a1\","
		  "\"threadId\":\"t1\"},\"labelIds\":[\"UNREAD\"]}]},"
		  "{\"id\":\"107\",\"messagesDeleted\":[{\"message\":{\"id\":"
		  "\"a0\",\"threadId\":\"t0\"}}]}],"
		  "\"historyId\":\"110\",\"nextPageToken\":\"p2\"}"),
		100, &h, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_uint_eq(h.history_id, 110);
	ck_assert_str_eq(h.next_page_token, "p2");
	ck_assert_uint_eq(h.n, 4);
	ck_assert_int_eq(h.v[0].kind, MX_GMAIL_ADDED);
	ck_assert_str_eq(h.v[0].msg.id, "a1");
	ck_assert_str_eq(h.v[0].labels.v[0], "INBOX");
	ck_assert_uint_eq(h.v[0].history_id, 101);
	ck_assert_int_eq(h.v[1].kind, MX_GMAIL_LABELS_ADDED);
	ck_assert_str_eq(h.v[1].labels.v[0], "STARRED");
	ck_assert_int_eq(h.v[2].kind, MX_GMAIL_LABELS_REMOVED);
	ck_assert_str_eq(h.v[2].labels.v[0], "UNREAD");
	ck_assert_int_eq(h.v[3].kind, MX_GMAIL_DELETED);
	ck_assert_str_eq(h.v[3].msg.id, "a0");
	ck_assert_uint_eq(h.v[3].labels.n, 0);
	mx_gmail_history_page_free(&h);

	/* Nothing new: no "history"; the id may equal the start. */
	ck_assert_int_eq(mx_gmail_parse_history(J("{\"historyId\":\"100\"}"),
						100, &h, &e), MX_OK);
	ck_assert_uint_eq(h.n, 0);
	mx_gmail_history_page_free(&h);

#define HIST_BAD(body, needle)                                            \
	do {                                                              \
		rc = mx_gmail_parse_history(J(body), 100, &h, &e);        \
		ck_protocol(rc, e, needle);                               \
		ck_assert_ptr_null(h.v);                                  \
		ck_assert_ptr_null(h.next_page_token);                    \
	} while (0)
	HIST_BAD("{\"historyId\":\"99\"}", "went backwards");
	HIST_BAD("{\"history\":[]}", "historyId missing");
	HIST_BAD("{\"historyId\":\"100\",\"history\":{}}",
		 "history is not an array");
	HIST_BAD("{\"historyId\":\"100\",\"history\":[7]}", "not an object");
	HIST_BAD("{\"historyId\":\"100\",\"history\":[{\"messagesAdded\":"
		 "[{\"message\":{\"id\":\"1\",\"threadId\":\"1\"}}]}]}",
		 "id missing");
	HIST_BAD("{\"historyId\":\"100\",\"history\":[{\"id\":\"1\","
		 "\"messagesAdded\":{}}]}", "messagesAdded is not an array");
	HIST_BAD("{\"historyId\":\"100\",\"history\":[{\"id\":\"1\","
		 "\"messagesDeleted\":[{\"msg\":{}}]}]}",
		 "message is not an object");
	HIST_BAD("{\"historyId\":\"100\",\"history\":[{\"id\":\"1\","
		 "\"labelsAdded\":[{\"message\":{\"id\":\"1\",\"threadId\":"
		 "\"1\"},\"labelIds\":[\"a\",\"..\"]}]}]}",
		 "labelIds is not an id");
	HIST_BAD("{\"historyId\":\"100\",\"nextPageToken\":\"a\\u0000b\"}",
		 "malformed JSON");
#undef HIST_BAD
}
END_TEST

START_TEST(label_lists)
{
	struct mx_gmail_label_list l;
	struct mx_gmail_label one;
	struct mx_error e = {0};
	int rc;

	rc = mx_gmail_parse_labels(
		J("{\"labels\":[{\"id\":\"INBOX\",\"name\":\"INBOX\","
		  "\"type\":\"system\"},{\"id\":\"Label_3\",\"name\":"
		  "\"Clients/\xc3\x9c" "ber\",\"type\":\"user\"}]}"),
		&l, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_uint_eq(l.n, 2);
	ck_assert(l.v[0].system);
	ck_assert(!l.v[1].system);
	ck_assert_str_eq(l.v[1].name, "Clients/\xc3\x9c" "ber");
	mx_gmail_label_list_free(&l);

	rc = mx_gmail_parse_labels(J("{\"labels\":[{\"id\":\"Label_1\","
				     "\"name\":\"ok\"},{\"id\":\"Label_2\","
				     "\"name\":\"evil\\u001b[2J\"}]}"),
				   &l, &e);
	ck_protocol(rc, e, "control characters");
	ck_assert_ptr_null(l.v);
	rc = mx_gmail_parse_labels(J("{\"labels\":[{\"id\":\"Label_2\","
				     "\"name\":\"a\\u0085\"}]}"), &l, &e);
	ck_protocol(rc, e, "Label_2");
	rc = mx_gmail_parse_labels(J("{\"labels\":[{\"id\":\"L/1\","
				     "\"name\":\"a\"}]}"), &l, &e);
	ck_protocol(rc, e, "id is not an id");
	rc = mx_gmail_parse_labels(J("{\"labels\":[{\"id\":\"L1\"}]}"), &l, &e);
	ck_protocol(rc, e, "label name");
	rc = mx_gmail_parse_labels(J("{\"labels\":[{\"id\":\"L1\",\"name\":"
				     "\"a\",\"type\":1}]}"), &l, &e);
	ck_protocol(rc, e, "label type");

	rc = mx_gmail_parse_label(J("{\"id\":\"Label_9\",\"name\":\"New\"}"),
				  &one, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_str_eq(one.id, "Label_9");
	ck_assert_str_eq(one.name, "New");
	mx_gmail_label_free(&one);
	rc = mx_gmail_parse_label(J("{\"id\":\"Label_9\",\"name\":\"\"}"),
				  &one, &e);
	ck_protocol(rc, e, "name is empty");
	ck_assert_ptr_null(one.name);
}
END_TEST

START_TEST(error_mapping)
{
	struct mx_error e = {0};
	enum mx_gmail_action a;

	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_LIST, 401,
			       J("{\"error\":{\"code\":401,\"message\":"
				 "\"Invalid Credentials\",\"errors\":[{"
				 "\"domain\":\"global\",\"reason\":"
				 "\"authError\"}],\"status\":"
				 "\"UNAUTHENTICATED\"}}"), &e);
	ck_assert_int_eq(a, MX_GMAIL_REFRESH);
	ck_assert_int_eq(e.code, MX_ERR_AUTH);
	ck_assert(strstr(e.detail, "Invalid Credentials") != NULL);

	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_GET_RAW, 403,
			       J("{\"error\":{\"code\":403,\"message\":"
				 "\"Request had insufficient authentication "
				 "scopes.\",\"errors\":[{\"message\":\"x\","
				 "\"domain\":\"global\",\"reason\":"
				 "\"insufficientPermissions\"}],\"status\":"
				 "\"PERMISSION_DENIED\"}}"), &e);
	ck_assert_int_eq(a, MX_GMAIL_FAIL);
	ck_assert_int_eq(e.code, MX_ERR_AUTH);
	ck_assert_msg(strstr(e.detail, "auth/gmail.readonly") != NULL, "%s",
		      e.detail);
	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_MODIFY, 403,
			       J("{\"error\":{\"code\":403,\"status\":"
				 "\"PERMISSION_DENIED\",\"details\":[{"
				 "\"@type\":\"type.googleapis.com/google.rpc."
				 "ErrorInfo\",\"reason\":"
				 "\"ACCESS_TOKEN_SCOPE_INSUFFICIENT\"}]}}"), &e);
	ck_assert_int_eq(e.code, MX_ERR_AUTH);
	ck_assert(strstr(e.detail, "auth/gmail.modify") != NULL);
	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_SEND, 403,
			       J("{\"error\":{\"errors\":[{\"reason\":"
				 "\"insufficientPermissions\"}]}}"), &e);
	ck_assert(strstr(e.detail, "auth/gmail.send") != NULL);

	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_GET, 403,
			       J("{\"error\":{\"code\":403,\"errors\":[{"
				 "\"domain\":\"usageLimits\",\"reason\":"
				 "\"userRateLimitExceeded\"}],\"message\":"
				 "\"User Rate Limit Exceeded\"}}"), &e);
	ck_assert_int_eq(a, MX_GMAIL_RATE);
	ck_assert_int_eq(e.code, MX_ERR_SERVER);
	ck_assert_int_eq(e.retry, MX_RETRY_WAIT);
	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_GET, 403,
			       J("{\"error\":{\"errors\":[{\"reason\":"
				 "\"rateLimitExceeded\"}]}}"), &e);
	ck_assert_int_eq(a, MX_GMAIL_RATE);
	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_GET, 429, J("<html>"), &e);
	ck_assert_int_eq(a, MX_GMAIL_RATE);
	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_LIST, 500,
			       J("{\"error\":{\"errors\":[{\"reason\":"
				 "\"backendError\"}]}}"), &e);
	ck_assert_int_eq(a, MX_GMAIL_BACKOFF);
	ck_assert(strstr(e.detail, "backendError") != NULL);
	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_LIST, 503, J("{\"error\":7}"),
			       &e);
	ck_assert_int_eq(a, MX_GMAIL_BACKOFF);

	/* An expired history id is its own code: the caller resyncs. */
	a = mx_gmail_map_error(MX_GMAIL_HISTORY_LIST, 404,
			       J("{\"error\":{\"code\":404,\"message\":"
				 "\"Requested entity was not found.\"}}"), &e);
	ck_assert_int_eq(a, MX_GMAIL_FAIL);
	ck_assert_int_eq(e.code, MX_ERR_EXPIRED);
	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_GET, 404, J(""), &e);
	ck_assert_int_eq(e.code, MX_ERR_NOTFOUND);
	a = mx_gmail_map_error(MX_GMAIL_MESSAGES_GET, 403, J("{}"), &e);
	ck_assert_int_eq(a, MX_GMAIL_FAIL);
	ck_assert_int_eq(e.code, MX_ERR_AUTH);
	a = mx_gmail_map_error(MX_GMAIL_LABELS_CREATE, 400, J("{}"), &e);
	ck_assert_int_eq(e.code, MX_ERR_SERVER);

	/* Server text reaches terminals escaped. */
	a = mx_gmail_map_error(MX_GMAIL_LABELS_LIST, 400,
			       J("{\"error\":{\"message\":\"bad\\u001b]0;"
				 "x\\u0007\",\"errors\":[{\"reason\":"
				 "\"a\\u001bb\"}]}}"), &e);
	ck_assert(strchr(e.detail, 0x1b) == NULL);
	ck_assert(strchr(e.detail, 0x07) == NULL);
	ck_assert(strstr(e.detail, "\\x1b") != NULL);
}
END_TEST

/* ---- batch ---- */

#define MSG_JSON(id)                                                      \
	"{\"id\":\"" id "\",\"threadId\":\"t\",\"historyId\":\"9\","    \
	"\"internalDate\":\"1000\",\"payload\":{\"headers\":[{\"name\":"  \
	"\"From\",\"value\":\"x@example.com\"}]}}"

static const char *const batch_ids[] = {"m1", "m2", "m3"};

START_TEST(batch_body)
{
	struct mx_buf b = {0};

	ck_assert_int_eq(mx_gmail_batch_body(batch_ids, 2, "BND", &b), 0);
	ck_assert_str_eq(b.data,
			 "--BND\r\nContent-Type: application/http\r\n"
			 "Content-ID: <item-1>\r\n\r\n"
			 "GET /gmail/v1/users/me/messages/m1?format=metadata"
			 "&metadataHeaders=From&metadataHeaders=Date\r\n\r\n"
			 "--BND\r\nContent-Type: application/http\r\n"
			 "Content-ID: <item-2>\r\n\r\n"
			 "GET /gmail/v1/users/me/messages/m2?format=metadata"
			 "&metadataHeaders=From&metadataHeaders=Date\r\n\r\n"
			 "--BND--\r\n");
	mx_buf_free(&b);
}
END_TEST

START_TEST(batch_answers)
{
	struct mx_gmail_batch_item it[3];
	struct mx_error e = {0};
	int rc;

	/* Out of order, one 404, one missing; a preamble is ignored. */
	rc = mx_gmail_parse_batch(
		"multipart/mixed; boundary=batch_X1",
		J("preamble\r\n--batch_X1\r\n"
		  "Content-Type: application/http\r\n"
		  "Content-ID: <response-item-2>\r\n\r\n"
		  "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		  "\r\n" MSG_JSON("m2") "\r\n"
		  "--batch_X1\r\nContent-Type: application/http\r\n"
		  "Content-ID: <response-item-1>\r\n\r\n"
		  "HTTP/1.1 404 Not Found\r\n\r\n"
		  "{\"error\":{\"code\":404,\"message\":\"Not Found\"}}\r\n"
		  "--batch_X1--\r\n"),
		batch_ids, 3, it, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_int_eq(it[0].rc, MX_ERR_NOTFOUND);
	ck_assert_int_eq(it[1].rc, MX_OK);
	ck_assert_str_eq(it[1].msg.id, "m2");
	ck_assert_str_eq(it[1].msg.from, "x@example.com");
	ck_assert_int_eq(it[2].rc, MX_ERR_PROTOCOL);
	ck_assert(strstr(it[2].err.detail, "no answer for message m3"));
	mx_gmail_batch_free(it, 3);
	ck_assert_ptr_null(it[1].msg.from);

	/* A quoted boundary, LF line ends, a rate limit inside. */
	rc = mx_gmail_parse_batch(
		"multipart/mixed; charset=x; boundary=\"b b\"",
		J("--b b\nContent-ID: <response-item-1>\n\n"
		  "HTTP/1.1 429 Too Many Requests\n\n{}\n--b b--\n"),
		batch_ids, 1, it, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert_int_eq(it[0].rc, MX_ERR_SERVER);
	ck_assert(it[0].retry && it[0].rate);
	ck_assert_str_eq(it[0].retry_after, "");
	mx_gmail_batch_free(it, 1);

	/* What may be asked again: a 429 with its Retry-After, a 503; not
	 * a 404. */
	rc = mx_gmail_parse_batch(
		"multipart/mixed; boundary=B",
		J("--B\r\nContent-ID: <response-item-1>\r\n\r\n"
		  "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n\r\n"
		  "{}\r\n--B\r\nContent-ID: <response-item-2>\r\n\r\n"
		  "HTTP/1.1 503 Service Unavailable\r\n\r\n{}\r\n"
		  "--B\r\nContent-ID: <response-item-3>\r\n\r\n"
		  "HTTP/1.1 404 Not Found\r\n\r\n{}\r\n--B--\r\n"),
		batch_ids, 3, it, &e);
	ck_assert_int_eq(rc, MX_OK);
	ck_assert(it[0].retry && it[0].rate);
	ck_assert_str_eq(it[0].retry_after, "7");
	ck_assert(it[1].retry && !it[1].rate);
	ck_assert_int_eq(it[2].rc, MX_ERR_NOTFOUND);
	ck_assert(!it[2].retry);
	mx_gmail_batch_free(it, 3);

#define BATCH_BAD(ct, body, n, needle)                                    \
	do {                                                              \
		rc = mx_gmail_parse_batch(ct, J(body), batch_ids, n, it,  \
					  &e);                            \
		ck_protocol(rc, e, needle);                               \
		ck_assert_ptr_null(it[0].msg.from);                       \
		ck_assert_int_eq(it[0].rc, 0);                            \
	} while (0)
#define PART(n, status, json)                                             \
	"--B\r\nContent-ID: <response-item-" #n ">\r\n\r\nHTTP/1.1 "       \
	status "\r\n\r\n" json "\r\n"
	BATCH_BAD("application/json", "{}", 1, "not multipart/mixed");
	BATCH_BAD(NULL, "{}", 1, "not multipart/mixed");
	BATCH_BAD("multipart/mixed", "--B--", 1, "not multipart/mixed");
	BATCH_BAD("multipart/mixed; boundary=", "--B--", 1,
		  "not multipart/mixed");
	BATCH_BAD("multipart/mixed; boundary=B", "no parts at all", 1,
		  "no parts");
	BATCH_BAD("multipart/mixed; boundary=B",
		  PART(1, "200 OK", MSG_JSON("m1")), 1, "cut short");
	BATCH_BAD("multipart/mixed; boundary=B",
		  PART(1, "200 OK", MSG_JSON("m1")) PART(3, "200 OK", "{}")
			  "--B--", 2, "unknown Content-ID");
	BATCH_BAD("multipart/mixed; boundary=B",
		  PART(0, "200 OK", "{}") "--B--", 2, "unknown Content-ID");
	BATCH_BAD("multipart/mixed; boundary=B",
		  "--B\r\nContent-ID: <item-1>\r\n\r\nHTTP/1.1 200 OK\r\n"
		  "\r\n{}\r\n--B--", 2, "unknown Content-ID");
	BATCH_BAD("multipart/mixed; boundary=B",
		  PART(1, "200 OK", MSG_JSON("m1"))
			  PART(1, "200 OK", MSG_JSON("m1")) "--B--",
		  2, "two answers for item 1");
	BATCH_BAD("multipart/mixed; boundary=B",
		  PART(1, "200 OK", MSG_JSON("m2")) "--B--", 2,
		  "another message");
	BATCH_BAD("multipart/mixed; boundary=B",
		  PART(2, "OK", "{}") "--B--", 2, "no HTTP status line");
	BATCH_BAD("multipart/mixed; boundary=B",
		  "--B\r\nContent-ID: <response-item-1>\r\n--B--", 1,
		  "without headers");
#undef PART
#undef BATCH_BAD
}
END_TEST

/* ---- end to end against a scripted server ---- */

#define MAX_REPLIES 8

struct script {
	int lfd;
	int port;
	const char *replies[MAX_REPLIES]; /* full HTTP answers, in order */
	int nreplies;
	int served;
	char requests[MAX_REPLIES][4096]; /* what came, head and body */
	pthread_t th;
};

static void *serve(void *ud)
{
	struct script *s = ud;

	while (s->served < s->nreplies) {
		char *req = s->requests[s->served];
		size_t len = 0, want = 0;
		const char *r = s->replies[s->served];
		int fd = accept(s->lfd, NULL, NULL);

		if (fd < 0)
			break;
		for (;;) {
			ssize_t n = read(fd, req + len, 4095 - len);
			char *end, *cl;

			if (n <= 0)
				break;
			len += (size_t)n;
			req[len] = '\0';
			end = strstr(req, "\r\n\r\n");
			if (end == NULL)
				continue;
			cl = strstr(req, "\r\nContent-Length:");
			want = (size_t)(end + 4 - req) +
			       (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
			if (len >= want || len == 4095)
				break;
		}
		if (write(fd, r, strlen(r)) < 0)
			perror("write");
		shutdown(fd, SHUT_WR);
		close(fd);
		s->served++;
	}
	return NULL;
}

static void script_start(struct script *s)
{
	struct sockaddr_in a = {0};
	socklen_t al = sizeof(a);

	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(s->lfd, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(listen(s->lfd, 8), 0);
	ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	ck_assert_int_eq(pthread_create(&s->th, NULL, serve, s), 0);
}

/* Waits for the thread: every scripted answer must have been asked for
 * (else the client made fewer requests than the test says). */
static void script_end(struct script *s, int expect_served)
{
	if (s->served < s->nreplies) {
		/* Unblock accept() for the answers nobody asked for. */
		shutdown(s->lfd, SHUT_RDWR);
	}
	pthread_join(s->th, NULL);
	close(s->lfd);
	ck_assert_int_eq(s->served, expect_served);
}

struct tokens {
	int calls, forced;
};

static int get_token(void *ctx, bool force, char **token_r,
		     struct mx_error *err)
{
	struct tokens *t = ctx;
	char buf[32];

	(void)err;
	t->calls++;
	t->forced += force;
	snprintf(buf, sizeof(buf), "tok%d", t->calls);
	*token_r = strdup(buf);
	return *token_r ? MX_OK : MX_ERR_NOMEM;
}

static const char list_ok[] =
	"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	"Connection: close\r\n\r\n"
	"{\"messages\":[{\"id\":\"m1\",\"threadId\":\"t1\"}],"
	"\"resultSizeEstimate\":1}";
static const char unauth[] =
	"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n"
	"{\"error\":{\"code\":401,\"message\":\"Invalid Credentials\","
	"\"errors\":[{\"reason\":\"authError\"}]}}";

static struct mx_gmail *open_client(struct script *s, struct tokens *t,
				    volatile int *cancel, uint64_t max_raw)
{
	struct mx_gmail_cfg cfg = {0};
	struct mx_gmail *g = NULL;
	struct mx_error e = {0};
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->port);
	cfg.base_url = url;
	cfg.timeout_s = 10;
	cfg.get_token = get_token;
	cfg.token_ctx = t;
	cfg.cancel = cancel;
	cfg.max_backoff_ms = 5; /* the retries, not the waits, are tested */
	cfg.max_raw = max_raw;
	ck_assert_int_eq(mx_gmail_open(&cfg, &g, &e), MX_OK);
	return g;
}

START_TEST(open_checks_url)
{
	struct mx_gmail_cfg cfg = {0};
	struct mx_gmail *g = NULL;
	struct mx_error e = {0};
	struct tokens t = {0};

	cfg.get_token = get_token;
	cfg.token_ctx = &t;
	cfg.base_url = "http://gmail.example.com";
	ck_assert_int_eq(mx_gmail_open(&cfg, &g, &e), MX_ERR_INSECURE);
	ck_assert(strstr(e.detail, "loopback") != NULL);
	cfg.base_url = "ftp://127.0.0.1";
	ck_assert_int_eq(mx_gmail_open(&cfg, &g, &e), MX_ERR_CONFIG);
	cfg.base_url = NULL;
	cfg.get_token = NULL;
	ck_assert_int_eq(mx_gmail_open(&cfg, &g, &e), MX_ERR_CONFIG);
	ck_assert_ptr_null(g);
	cfg.get_token = get_token;
	ck_assert_int_eq(mx_gmail_open(&cfg, &g, &e), MX_OK);
	mx_gmail_close(&g);
	ck_assert_ptr_null(g);
}
END_TEST

START_TEST(refresh_once)
{
	struct script s = {.replies = {unauth, list_ok}, .nreplies = 2};
	struct mx_gmail_list_page p;
	struct mx_error e = {0};
	struct tokens t = {0};
	const char *labels[] = {"INBOX"};
	struct mx_gmail *g;
	uint64_t req, units;

	script_start(&s);
	g = open_client(&s, &t, NULL, 0);
	ck_assert_int_eq(mx_gmail_messages_list(g, "pt 1", 500, labels, 1, &p,
						&e), MX_OK);
	script_end(&s, 2);
	ck_assert_uint_eq(p.n, 1);
	ck_assert_str_eq(p.v[0].id, "m1");
	mx_gmail_list_page_free(&p);
	ck_assert_int_eq(t.calls, 2);
	ck_assert_int_eq(t.forced, 1);
	ck_assert(strstr(s.requests[0], "Authorization: Bearer tok1\r\n"));
	ck_assert(strstr(s.requests[1], "Authorization: Bearer tok2\r\n"));
	ck_assert_msg(strstr(s.requests[1],
			     "GET /gmail/v1/users/me/messages?maxResults=500"
			     "&pageToken=pt%201&labelIds=INBOX HTTP/1.1\r\n") ==
			      s.requests[1], "%s", s.requests[1]);
	mx_gmail_stats(g, &req, &units);
	ck_assert_uint_eq(req, 2);
	ck_assert_uint_eq(units, 10);
	mx_gmail_close(&g);
}
END_TEST

START_TEST(refresh_not_twice)
{
	struct script s = {.replies = {unauth, unauth, list_ok},
			   .nreplies = 3};
	struct mx_gmail_list_page p;
	struct mx_error e = {0};
	struct tokens t = {0};
	struct mx_gmail *g;

	script_start(&s);
	g = open_client(&s, &t, NULL, 0);
	ck_assert_int_eq(mx_gmail_messages_list(g, NULL, 10, NULL, 0, &p, &e),
			 MX_ERR_AUTH);
	script_end(&s, 2);
	ck_assert(strstr(e.detail, "Invalid Credentials") != NULL);
	ck_assert_int_eq(t.forced, 1);
	mx_gmail_close(&g);
}
END_TEST

START_TEST(rate_then_5xx_then_ok)
{
	struct script s = {
		.replies = {"HTTP/1.1 429 Too Many Requests\r\nRetry-After: "
			    "0\r\nConnection: close\r\n\r\n{}",
			    "HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n"
			    "{\"error\":{\"errors\":[{\"reason\":"
			    "\"userRateLimitExceeded\"}]}}",
			    "HTTP/1.1 503 Unavailable\r\nConnection: close\r\n"
			    "\r\n{\"error\":{\"errors\":[{\"reason\":"
			    "\"backendError\"}]}}",
			    list_ok},
		.nreplies = 4};
	struct mx_gmail_list_page p;
	struct mx_error e = {0};
	struct tokens t = {0};
	struct mx_gmail *g;

	script_start(&s);
	g = open_client(&s, &t, NULL, 0);
	ck_assert_int_eq(mx_gmail_messages_list(g, NULL, 10, NULL, 0, &p, &e),
			 MX_OK);
	script_end(&s, 4);
	ck_assert_uint_eq(p.n, 1);
	ck_assert_int_eq(t.forced, 0);
	mx_gmail_list_page_free(&p);
	mx_gmail_close(&g);
}
END_TEST

START_TEST(history_expired_and_send)
{
	struct script s = {
		.replies = {"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n"
			    "{\"error\":{\"code\":404,\"message\":\"Requested "
			    "entity was not found.\"}}",
			    "HTTP/1.1 500 Internal\r\nConnection: close\r\n\r\n"
			    "{\"error\":{\"errors\":[{\"reason\":"
			    "\"backendError\"}]}}",
			    list_ok},
		.nreplies = 3};
	struct mx_gmail_history_page h;
	struct mx_gmail_ref ref;
	struct mx_error e = {0};
	struct tokens t = {0};
	struct mx_gmail *g;

	script_start(&s);
	g = open_client(&s, &t, NULL, 0);
	ck_assert_int_eq(mx_gmail_history_list(g, 4242, NULL,
					       MX_GMAIL_H_ADDED |
						       MX_GMAIL_H_DELETED,
					       &h, &e), MX_ERR_EXPIRED);
	ck_assert(strstr(s.requests[0], "/history?startHistoryId=4242"
			 "&historyTypes=messageAdded"
			 "&historyTypes=messageDeleted ") != NULL);
	/* A send that may have reached Google is not sent again. */
	ck_assert_int_eq(mx_gmail_message_send(g, "Subject: x\r\n\r\nhi", 16,
					       "t1", &ref, &e), MX_ERR_SERVER);
	script_end(&s, 2);
	ck_assert(strstr(s.requests[1], "POST /gmail/v1/users/me/messages/"
			 "send ") != NULL);
	ck_assert(strstr(s.requests[1], "\"threadId\":\"t1\"") != NULL);
	ck_assert(strstr(s.requests[1], "\"raw\":\"U3ViamVjdDogeA0KDQpoaQ\"")
		  != NULL);
	/* Bad ids are refused before anything is sent. */
	ck_assert_int_eq(mx_gmail_message_get_raw(g, "../x", &(struct mx_buf){0},
						  &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_gmail_message_send(g, "x", 1, "a/b", NULL, &e),
			 MX_ERR_INVAL);
	mx_gmail_close(&g);
}
END_TEST

START_TEST(scope_and_caps)
{
	struct script s = {
		.replies = {"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n"
			    "{\"error\":{\"code\":403,\"errors\":[{\"reason\":"
			    "\"insufficientPermissions\"}],\"status\":"
			    "\"PERMISSION_DENIED\"}}",
			    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
			    "{\"id\":\"m1\",\"raw\":\"QUJDREVGR0g\"}",
			    "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
			    "{\"id\":\"m1\",\"raw\":\"QUJDREVGRw\"}"},
		.nreplies = 3};
	struct mx_buf raw = {0};
	struct mx_error e = {0};
	struct tokens t = {0};
	struct mx_gmail *g;

	script_start(&s);
	g = open_client(&s, &t, NULL, 7);
	ck_assert_int_eq(mx_gmail_message_get_raw(g, "m1", &raw, &e),
			 MX_ERR_AUTH);
	ck_assert_msg(strstr(e.detail, "gmail.readonly") != NULL, "%s",
		      e.detail);
	ck_assert_int_eq(mx_gmail_message_get_raw(g, "m1", &raw, &e),
			 MX_ERR_PROTOCOL);
	ck_assert(strstr(e.detail, "byte limit") != NULL);
	ck_assert_uint_eq(raw.len, 0);
	ck_assert_int_eq(mx_gmail_message_get_raw(g, "m1", &raw, &e), MX_OK);
	script_end(&s, 3);
	ck_assert_uint_eq(raw.len, 7);
	ck_assert(memcmp(raw.data, "ABCDEFG", 7) == 0);
	ck_assert(strstr(s.requests[2], "/messages/m1?format=raw ") != NULL);
	mx_buf_free(&raw);
	mx_gmail_close(&g);
}
END_TEST

START_TEST(quota_wait_cancels)
{
	struct script s = {.replies = {list_ok}, .nreplies = 1};
	struct mx_gmail_cfg cfg = {0};
	struct mx_gmail_list_page p;
	struct mx_error e = {0};
	struct tokens t = {0};
	volatile int cancel = 0;
	struct mx_gmail *g = NULL;
	char url[64];
	uint64_t t0;

	script_start(&s);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
	cfg.base_url = url;
	cfg.get_token = get_token;
	cfg.token_ctx = &t;
	cfg.cancel = &cancel;
	cfg.quota_per_min = 6; /* 5 units a burst, then 1 a minute */
	cfg.quota_burst = 5;
	ck_assert_int_eq(mx_gmail_open(&cfg, &g, &e), MX_OK);
	ck_assert_int_eq(mx_gmail_messages_list(g, NULL, 1, NULL, 0, &p, &e),
			 MX_OK);
	mx_gmail_list_page_free(&p);
	script_end(&s, 1);
	/* The next call would wait five minutes for its quota. */
	cancel = 1;
	t0 = mx_now_ms();
	ck_assert_int_eq(mx_gmail_messages_list(g, NULL, 1, NULL, 0, &p, &e),
			 MX_ERR_CANCELLED);
	ck_assert(strstr(e.detail, "quota") != NULL);
	ck_assert_uint_lt(mx_now_ms() - t0, 5000);
	mx_gmail_close(&g);
}
END_TEST

START_TEST(batch_end_to_end)
{
	struct script s = {
		.replies = {"HTTP/1.1 200 OK\r\nConnection: close\r\n"
			    "Content-Type: multipart/mixed; boundary=batch_Z\r\n"
			    "\r\n--batch_Z\r\nContent-Type: application/http"
			    "\r\nContent-ID: <response-item-1>\r\n\r\n"
			    "HTTP/1.1 200 OK\r\n\r\n" MSG_JSON("m1") "\r\n"
			    "--batch_Z\r\nContent-Type: application/http\r\n"
			    "Content-ID: <response-item-2>\r\n\r\n"
			    "HTTP/1.1 200 OK\r\n\r\n" MSG_JSON("m2") "\r\n"
			    "--batch_Z--\r\n"},
		.nreplies = 1};
	struct mx_gmail_batch_item it[2];
	struct mx_error e = {0};
	struct tokens t = {0};
	struct mx_gmail *g;
	uint64_t req, units;

	script_start(&s);
	g = open_client(&s, &t, NULL, 0);
	ck_assert_int_eq(mx_gmail_message_get_batch(g, batch_ids, 2, it, &e),
			 MX_OK);
	script_end(&s, 1);
	ck_assert_int_eq(it[0].rc, MX_OK);
	ck_assert_int_eq(it[1].rc, MX_OK);
	ck_assert_str_eq(it[1].msg.id, "m2");
	mx_gmail_batch_free(it, 2);
	ck_assert(strstr(s.requests[0], "POST /batch/gmail/v1 HTTP/1.1\r\n") ==
		  s.requests[0]);
	ck_assert(strstr(s.requests[0], "Content-Type: multipart/mixed; "
			 "boundary=mxsync_batch_") != NULL);
	ck_assert(strstr(s.requests[0], "Content-ID: <item-2>\r\n\r\n"
			 "GET /gmail/v1/users/me/messages/m2?") != NULL);
	mx_gmail_stats(g, &req, &units);
	ck_assert_uint_eq(req, 1);
	ck_assert_uint_eq(units, 10);
	ck_assert_int_eq(mx_gmail_message_get_batch(g, (const char *[]){"a/b"},
						    1, it, &e), MX_ERR_INVAL);
	ck_assert_int_eq(mx_gmail_message_get_batch(g, batch_ids, 0, it, &e),
			 MX_ERR_INVAL);
	mx_gmail_close(&g);
}
END_TEST

/* The API-mode sender: the envelope becomes the header's recipients
 * (Bcc in front for those the header does not name), a header naming a
 * non-recipient is refused before anything goes out, and an error says
 * whether Google may have the message (5xx: yes, 4xx: no). */
static bool raw_sent(const char *req, const char *bytes)
{
	char *b64 = mx_gmail_b64url_encode(bytes, strlen(bytes));
	char want[2048];
	bool found;

	ck_assert_ptr_nonnull(b64);
	snprintf(want, sizeof(want), "\"raw\":\"%s\"", b64);
	found = strstr(req, want) != NULL;
	free(b64);
	return found;
}

START_TEST(send_envelope)
{
	static const char msg[] = "From: a@x.test\r\nTo: B@X.test\r\n"
				  "Cc: Carol <c@x.test>,\r\n d@x.test\r\n"
				  "Subject: s\r\n\r\nhi\r\n";
	const char *rcpts[] = {"b@x.test", "c@x.test", "d@x.test",
			       "e@x.test", "f@x.test"};
	struct script s = {
		.replies = {"HTTP/1.1 200 OK\r\nContent-Type: application/json"
			    "\r\nConnection: close\r\n\r\n"
			    "{\"id\":\"s1\",\"threadId\":\"t9\"}",
			    "HTTP/1.1 200 OK\r\nContent-Type: application/json"
			    "\r\nConnection: close\r\n\r\n"
			    "{\"id\":\"s2\",\"threadId\":\"t9\"}",
			    "HTTP/1.1 500 Internal\r\nConnection: close\r\n\r\n"
			    "{\"error\":{\"errors\":[{\"reason\":"
			    "\"backendError\"}]}}",
			    "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
			    "\r\n{\"error\":{\"code\":400,\"message\":"
			    "\"Invalid To header\",\"errors\":[{\"reason\":"
			    "\"invalidArgument\"}]}}"},
		.nreplies = 4};
	struct mx_error e = {0};
	struct tokens t = {0};
	struct mx_gmail *g;
	bool maybe = true;
	char *id = NULL;

	script_start(&s);
	g = open_client(&s, &t, NULL, 0);
	/* e and f only in the envelope: named in a Bcc field in front. */
	ck_assert_int_eq(mx_gmail_send_envelope(g, msg, strlen(msg), rcpts, 5,
						"t9", &id, &maybe, &e), MX_OK);
	ck_assert_str_eq(id, "s1");
	free(id);
	ck_assert(!maybe);
	/* Every recipient in the header: the bytes as they are. */
	ck_assert_int_eq(mx_gmail_send_envelope(g, msg, strlen(msg), rcpts, 3,
						NULL, NULL, &maybe, &e), MX_OK);
	/* The header names someone the entry does not send to, or brings
	 * its own Bcc: refused, nothing sent, certainly not sent. */
	maybe = true;
	ck_assert_int_eq(mx_gmail_send_envelope(g, msg, strlen(msg), rcpts, 2,
						NULL, NULL, &maybe, &e),
			 MX_ERR_INVAL);
	ck_assert(!maybe);
	ck_assert(strstr(e.detail, "d@x.test") != NULL);
	ck_assert_int_eq(mx_gmail_send_envelope(g, "Bcc: z@x.test\r\n\r\nx", 18,
						rcpts, 1, NULL, NULL, &maybe,
						&e), MX_ERR_INVAL);
	ck_assert(strstr(e.detail, "Bcc") != NULL);
	/* A 5xx may have been sent; a 4xx was not. */
	ck_assert_int_eq(mx_gmail_send_envelope(g, msg, strlen(msg), rcpts, 3,
						NULL, NULL, &maybe, &e),
			 MX_ERR_SERVER);
	ck_assert(maybe);
	ck_assert_int_eq(mx_gmail_send_envelope(g, msg, strlen(msg), rcpts, 3,
						NULL, NULL, &maybe, &e),
			 MX_ERR_SERVER);
	ck_assert(!maybe);
	ck_assert(strstr(e.detail, "HTTP 400") != NULL);
	script_end(&s, 4);
	ck_assert(raw_sent(s.requests[0], "Bcc: e@x.test,\r\n f@x.test\r\n"
			   "From: a@x.test\r\nTo: B@X.test\r\n"
			   "Cc: Carol <c@x.test>,\r\n d@x.test\r\n"
			   "Subject: s\r\n\r\nhi\r\n"));
	ck_assert(strstr(s.requests[0], "\"threadId\":\"t9\"") != NULL);
	ck_assert(raw_sent(s.requests[1], msg));
	ck_assert(strstr(s.requests[1], "threadId") == NULL);
	mx_gmail_close(&g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gmail");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	signal(SIGPIPE, SIG_IGN);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, ids);
	tcase_add_test(tc, label_names);
	tcase_add_test(tc, base64url);
	tcase_add_test(tc, bucket);
	tcase_add_test(tc, retry_after);
	tcase_add_test(tc, pager);
	tcase_add_test(tc, list_page);
	tcase_add_test(tc, message);
	tcase_add_test(tc, raw_message);
	tcase_add_test(tc, history);
	tcase_add_test(tc, label_lists);
	tcase_add_test(tc, error_mapping);
	tcase_add_test(tc, batch_body);
	tcase_add_test(tc, batch_answers);
	tcase_add_test(tc, open_checks_url);
	tcase_add_test(tc, refresh_once);
	tcase_add_test(tc, refresh_not_twice);
	tcase_add_test(tc, rate_then_5xx_then_ok);
	tcase_add_test(tc, history_expired_and_send);
	tcase_add_test(tc, scope_and_caps);
	tcase_add_test(tc, quota_wait_cancels);
	tcase_add_test(tc, batch_end_to_end);
	tcase_add_test(tc, send_envelope);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
