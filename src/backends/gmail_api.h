/*
 * Client for the Gmail REST API v1 (users.messages, users.history,
 * users.labels), private to src/backends/: the Gmail API backend is its
 * only caller.  libcurl (through util/http.h) + jansson.
 *
 * Contract:
 *  - One struct mx_gmail per account and per thread; calls on it are
 *    sequential.  It owns a quota token bucket for that account, so every
 *    call waits (interruptibly) rather than overrun Google's per-user
 *    limit, and it retries by itself what Google says to retry: 429 and
 *    403 rateLimitExceeded/userRateLimitExceeded (honouring Retry-After,
 *    capped, with jitter), 5xx (bounded exponential backoff), 401 (the
 *    token getter is called once with FORCE, and the call retried once).
 *    What is left after the retries is the caller's error.
 *  - Every answer is decoded into the structs below before it leaves this
 *    module; nothing points into a response.  Every id that comes back
 *    (message, thread, label) has been checked with mx_gmail_id_valid(),
 *    every history id is a decimal number, and every label name is UTF-8
 *    without control characters, so callers may put them in URLs, keys
 *    and terminals.  Whatever breaks that (malformed JSON, a wrong type, a
 *    missing field, an oversized body, a repeated page token, a history id
 *    that goes backwards) is MX_ERR_PROTOCOL naming the call and the
 *    field, never a crash and never a partial result.
 *  - Errors (struct mx_error): MX_ERR_NET / MX_ERR_TIMEOUT / MX_ERR_TLS /
 *    MX_ERR_TLS_VERIFY for the transport; MX_ERR_AUTH for a token Google
 *    refuses after one refresh, or a scope the token lacks (the detail
 *    names the scope to grant); MX_ERR_NOTFOUND for a message or label
 *    that is gone; MX_ERR_EXPIRED from mx_gmail_history_list() when the
 *    start history id is too old (HTTP 404): the caller does a full
 *    resync; MX_ERR_SERVER for other refusals and for rate limits or 5xx
 *    that outlast the retries (retry class WAIT); MX_ERR_CANCELLED when
 *    mx_net_interrupt() was called or *CFG->CANCEL became non-zero.  The
 *    detail carries Google's error "message" and "reason", never a token.
 *  - Memory: the out-structs are the caller's; each has a free function
 *    that leaves it zeroed, safe to call on a zeroed or half-filled one.
 *
 * The pure pieces (decoders, base64url, quota arithmetic, Retry-After,
 * error mapping, id checks) are declared at the end; they do no I/O and
 * are what tests/unit/test_gmail.c and tests/fuzz/fuzz_gmail_json.c drive.
 */
#ifndef MX_GMAIL_API_H
#define MX_GMAIL_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define MX_GMAIL_DEFAULT_URL "https://gmail.googleapis.com"

/* Longest message, thread or label id accepted (Gmail's are 16 hex digits
 * for messages and threads, "Label_<n>" or a system name for labels). */
#define MX_GMAIL_ID_MAX 64
/* Longest label name accepted, in bytes. */
#define MX_GMAIL_LABEL_NAME_MAX 1024
/* Cap on a JSON answer (a list page, a history page, a label list). */
#define MX_GMAIL_JSON_MAX (10u * 1024 * 1024)
/* messages.list maxResults and messages.batchModify ids, per Google. */
#define MX_GMAIL_LIST_MAX 500
#define MX_GMAIL_BATCH_MODIFY_MAX 1000
/* Pages one listing may take before it is called a loop. */
#define MX_GMAIL_MAX_PAGES 100000

/* The methods, for quota costs and for error messages. */
enum mx_gmail_method {
	MX_GMAIL_MESSAGES_LIST,
	MX_GMAIL_MESSAGES_GET,     /* format=metadata */
	MX_GMAIL_MESSAGES_GET_RAW, /* format=raw; same cost as GET */
	MX_GMAIL_HISTORY_LIST,
	MX_GMAIL_MESSAGES_SEND,
	MX_GMAIL_MESSAGES_MODIFY,
	MX_GMAIL_MESSAGES_BATCH_MODIFY,
	MX_GMAIL_LABELS_LIST,
	MX_GMAIL_LABELS_CREATE,
	MX_GMAIL_METHOD_COUNT
};

/* Quota units METHOD costs (Gmail API "Usage limits": list/get 5,
 * history.list 2, send 100, modify 5, batchModify 50, labels.list 1,
 * labels.create 5). */
unsigned mx_gmail_cost(enum mx_gmail_method method);
/* "users.messages.list" ...; "?" for an unknown value. */
const char *mx_gmail_method_name(enum mx_gmail_method method);
/* The OAuth2 scope METHOD needs at least, as Google spells it
 * ("https://www.googleapis.com/auth/gmail.readonly" ...). */
const char *mx_gmail_scope(enum mx_gmail_method method);

/*
 * Returns in *TOKEN_R a malloc()ed access token (the client wipes and
 * frees it).  FORCE: the last one was refused (401), get a new one even if
 * it looks valid.  Returns MX_OK or an error filled in ERR (it is the
 * call's error).
 */
typedef int (*mx_gmail_token_fn)(void *ctx, bool force, char **token_r,
				 struct mx_error *err);

struct mx_gmail_cfg {
	const char *base_url;   /* NULL: MX_GMAIL_DEFAULT_URL; https://, or
				   http:// to a loopback host only */
	const char *ca_file;    /* NULL: the system store */
	int timeout_s;          /* per request; 0: 30 */
	uint64_t max_raw;       /* cap on a format=raw message, bytes; 0:
				   50 MB */
	mx_gmail_token_fn get_token; /* required */
	void *token_ctx;
	volatile int *cancel;   /* may be NULL; non-zero stops waits and
				   transfers with MX_ERR_CANCELLED */
	unsigned max_retries;   /* per call, for 429/403 rate/5xx; 0: 5 */
	uint64_t max_backoff_ms; /* cap on one wait; 0: 64000 */
	unsigned quota_per_min; /* 0: 15000 (Google's per-user limit) */
	unsigned quota_burst;   /* 0: 250 (one second at 250 units/s) */
};

struct mx_gmail;

/* Checks CFG (the URL rule, a token getter) and makes a client.  Errors:
 * MX_ERR_CONFIG, MX_ERR_INSECURE (http:// to a non-loopback host),
 * MX_ERR_NOMEM.  CFG's strings are copied. */
int mx_gmail_open(const struct mx_gmail_cfg *cfg, struct mx_gmail **g_r,
		  struct mx_error *err);
/* Frees *G and sets it to NULL; NULL-safe. */
void mx_gmail_close(struct mx_gmail **g);
/* HTTP requests made and quota units charged since mx_gmail_open(). */
void mx_gmail_stats(const struct mx_gmail *g, uint64_t *requests_r,
		    uint64_t *units_r);

/* ---- results ---- */

struct mx_gmail_ref {
	char id[MX_GMAIL_ID_MAX + 1];
	char thread_id[MX_GMAIL_ID_MAX + 1];
};

struct mx_gmail_list_page {
	struct mx_gmail_ref *v; /* owned */
	size_t n;
	char *next_page_token;  /* owned; NULL on the last page */
	uint64_t result_size_estimate;
};
void mx_gmail_list_page_free(struct mx_gmail_list_page *p);

struct mx_gmail_labels_of {
	char (*v)[MX_GMAIL_ID_MAX + 1]; /* owned */
	size_t n;
};

/* What API mode keeps of a message (format=metadata). */
struct mx_gmail_msg {
	char id[MX_GMAIL_ID_MAX + 1];
	char thread_id[MX_GMAIL_ID_MAX + 1];
	struct mx_gmail_labels_of labels;
	int64_t internal_date_ms; /* "internalDate" */
	uint64_t history_id;
	char *from;             /* owned; the first address of From, NULL
				   when absent or unparsable */
	uint64_t size_estimate;
};
void mx_gmail_msg_free(struct mx_gmail_msg *m);

enum mx_gmail_change_kind {
	MX_GMAIL_ADDED,
	MX_GMAIL_DELETED,
	MX_GMAIL_LABELS_ADDED,
	MX_GMAIL_LABELS_REMOVED
};
/* Bits for mx_gmail_history_list()'s TYPES (0: all four). */
#define MX_GMAIL_H_ADDED (1u << MX_GMAIL_ADDED)
#define MX_GMAIL_H_DELETED (1u << MX_GMAIL_DELETED)
#define MX_GMAIL_H_LABELS_ADDED (1u << MX_GMAIL_LABELS_ADDED)
#define MX_GMAIL_H_LABELS_REMOVED (1u << MX_GMAIL_LABELS_REMOVED)

struct mx_gmail_change {
	enum mx_gmail_change_kind kind;
	struct mx_gmail_ref msg;
	/* ADDED: the message's labels; LABELS_*: the labels added/removed;
	 * DELETED: empty. */
	struct mx_gmail_labels_of labels;
	uint64_t history_id;    /* of the history record it came in */
};

struct mx_gmail_history_page {
	struct mx_gmail_change *v; /* owned, in the server's order */
	size_t n;
	char *next_page_token;     /* owned; NULL on the last page */
	uint64_t history_id;       /* the mailbox's current one: store the
				      one of the last page */
};
void mx_gmail_history_page_free(struct mx_gmail_history_page *p);

struct mx_gmail_label {
	char id[MX_GMAIL_ID_MAX + 1];
	char *name;  /* owned */
	bool system; /* "type": "system" */
};
struct mx_gmail_label_list {
	struct mx_gmail_label *v; /* owned */
	size_t n;
};
void mx_gmail_label_list_free(struct mx_gmail_label_list *l);

/* ---- calls (each charges its quota units before it is sent) ---- */

/* users.messages.list: one page of MAX_RESULTS (1..500) ids, newest
 * first, from PAGE_TOKEN (NULL: the first), restricted to the NLABELS
 * label ids LABEL_IDS (may be 0). */
int mx_gmail_messages_list(struct mx_gmail *g, const char *page_token,
			   unsigned max_results,
			   const char *const *label_ids, size_t nlabels,
			   struct mx_gmail_list_page *out,
			   struct mx_error *err);

/* users.messages.get?format=metadata&metadataHeaders=From&...=Date. */
int mx_gmail_message_get(struct mx_gmail *g, const char *id,
			 struct mx_gmail_msg *out, struct mx_error *err);

/* Calls one batch request may carry (Google's limit). */
#define MX_GMAIL_BATCH_MAX 100

/* One answer of a batch: RC is MX_OK with MSG filled, or an error code
 * with ERR (MX_ERR_NOTFOUND for a message that is gone, MX_ERR_SERVER
 * for a rate limit or a server error inside the batch, which
 * mx_gmail_message_get_batch() has already asked again). */
struct mx_gmail_batch_item {
	int rc;
	struct mx_gmail_msg msg;
	struct mx_error err;
	/* Set by mx_gmail_parse_batch() for an answer that may succeed if
	 * asked again: RETRY for a rate limit (429, 403 rate reasons; RATE
	 * too) or a 5xx; RETRY_AFTER is that part's Retry-After header ("" if
	 * none or too long). */
	bool retry, rate;
	char retry_after[64];
};
/* Frees the messages of the N ITEMS (not the array) and zeroes them. */
void mx_gmail_batch_free(struct mx_gmail_batch_item *items, size_t n);

/* mx_gmail_message_get() for NIDS (1..MX_GMAIL_BATCH_MAX) ids in one
 * request to /batch/gmail/v1 (multipart/mixed).  ITEMS[i] (NIDS of them,
 * the caller's) answers IDS[i].  Charges 5 units per id.  Items answered
 * with a rate limit or a 5xx are asked again, only they, in a new batch
 * after the backoff of the client's retry rules (the part's Retry-After,
 * the quota bucket emptied for a rate limit), up to the client's retry
 * count; an item still refused then keeps its error.  MX_OK when the
 * batches were answered (then every item has its own RC), else the
 * batch's error with every item zeroed. */
int mx_gmail_message_get_batch(struct mx_gmail *g, const char *const *ids,
			       size_t nids, struct mx_gmail_batch_item *items,
			       struct mx_error *err);

/* users.messages.get?format=raw: the RFC 5322 bytes into RAW (appended;
 * the caller's), at most CFG->MAX_RAW of them (else MX_ERR_PROTOCOL). */
int mx_gmail_message_get_raw(struct mx_gmail *g, const char *id,
			     struct mx_buf *raw, struct mx_error *err);

/* users.history.list from START_HISTORY_ID (and PAGE_TOKEN, NULL for the
 * first page), TYPES a mask of MX_GMAIL_H_* (0: all).  MX_ERR_EXPIRED
 * when Google no longer has that history (404): resync in full.  A
 * history id in the answer below START is MX_ERR_PROTOCOL. */
int mx_gmail_history_list(struct mx_gmail *g, uint64_t start_history_id,
			  const char *page_token, unsigned types,
			  struct mx_gmail_history_page *out,
			  struct mx_error *err);

/* users.messages.send of the LEN bytes at RAW (RFC 5322), in THREAD_ID
 * (NULL: a new thread).  *SENT_R (may be NULL) gets the new message's
 * ids.  Not retried after the request may have reached Google (a 5xx or
 * a transport error after sending): the caller's outbox decides. */
int mx_gmail_message_send(struct mx_gmail *g, const void *raw, size_t len,
			  const char *thread_id, struct mx_gmail_ref *sent_r,
			  struct mx_error *err);

/* users.messages.modify: adds and removes label ids on one message. */
int mx_gmail_message_modify(struct mx_gmail *g, const char *id,
			    const char *const *add, size_t nadd,
			    const char *const *remove, size_t nremove,
			    struct mx_error *err);

/* users.messages.batchModify: the same on NIDS (1..1000) messages. */
int mx_gmail_batch_modify(struct mx_gmail *g, const char *const *ids,
			  size_t nids, const char *const *add, size_t nadd,
			  const char *const *remove, size_t nremove,
			  struct mx_error *err);

/* users.labels.list and users.labels.create (a user label NAME, shown in
 * the label list and the message list). */
int mx_gmail_labels_list(struct mx_gmail *g, struct mx_gmail_label_list *out,
			 struct mx_error *err);
int mx_gmail_label_create(struct mx_gmail *g, const char *name,
			  struct mx_gmail_label *out, struct mx_error *err);

/* ---- pure pieces (gmail_json.c) ---- */

/* True if S is 1..MX_GMAIL_ID_MAX characters of [0-9A-Za-z_-]: what an
 * id must be before it goes into a URL path ("/" and ".." cannot). */
bool mx_gmail_id_valid(const char *s);
/* True if S (LEN bytes) is a label name: 1..MX_GMAIL_LABEL_NAME_MAX
 * bytes of valid UTF-8 without C0/C1 controls or DEL. */
bool mx_gmail_label_name_valid(const char *s, size_t len);

/* base64url (RFC 4648 section 5), padded or not: decodes the N
 * characters at S into OUT (appended), refusing more than MAX bytes.
 * Returns 0, or -1 on a character outside the alphabet, a bad length,
 * too much output or no memory (*TOO_BIG_R, may be NULL, says which). */
int mx_gmail_b64url_decode(const char *s, size_t n, size_t max,
			   struct mx_buf *out, bool *too_big_r);
/* Encodes N bytes as unpadded base64url; malloc()ed, NULL on ENOMEM. */
char *mx_gmail_b64url_encode(const void *in, size_t n);

/*
 * Token bucket in integer arithmetic: LEVEL and CAP are in units times
 * 60000, and a millisecond adds PER_MIN - BURST of them, so that any
 * minute sees at most BURST + (PER_MIN - BURST) = PER_MIN units and any
 * second about BURST.  The clock is the caller's (milliseconds).
 */
struct mx_gmail_bucket {
	uint64_t level;
	uint64_t cap;
	uint64_t rate; /* scaled units per millisecond */
	uint64_t last_ms;
};
/* Full bucket at NOW_MS.  PER_MIN > BURST > 0 (else the defaults). */
void mx_gmail_bucket_init(struct mx_gmail_bucket *b, unsigned per_min,
			  unsigned burst, uint64_t now_ms);
/* Takes COST units at NOW_MS and returns 0, or takes nothing and returns
 * the milliseconds to wait before they are there (then call again).  A
 * COST above the burst is charged as the burst (it could never fit). */
uint64_t mx_gmail_bucket_take(struct mx_gmail_bucket *b, unsigned cost,
			      uint64_t now_ms);
/* Empties the bucket at NOW_MS (Google said slow down). */
void mx_gmail_bucket_drain(struct mx_gmail_bucket *b, uint64_t now_ms);

/* Retry-After (RFC 9110 10.2.3): delay-seconds or an HTTP-date, against
 * the wall clock NOW_S.  0 and *MS_R set, or -1 if V is neither (a date
 * in the past is 0 ms). */
int mx_gmail_retry_after(const char *v, int64_t now_s, uint64_t *ms_r);
/* The wait before retry ATTEMPT (0 = first retry): RETRY_AFTER_MS when
 * the server gave one (>= 0), else 1 s doubled per attempt; capped at
 * CAP_MS; plus JITTER modulo min(CAP_MS, 1000) + 1 ms. */
uint64_t mx_gmail_backoff_ms(unsigned attempt, int64_t retry_after_ms,
			     uint64_t cap_ms, uint32_t jitter);

/* Loop detection for one paged listing: remembers the tokens seen. */
struct mx_gmail_pager {
	uint8_t (*seen)[16]; /* owned: truncated SHA-256 of each token */
	size_t n, cap;
};
/* MX_OK if TOKEN (the next page's) was not seen before in this listing
 * and the listing has fewer than MX_GMAIL_MAX_PAGES pages; else
 * MX_ERR_PROTOCOL naming WHAT. */
int mx_gmail_pager_next(struct mx_gmail_pager *p, const char *what,
			const char *token, struct mx_error *err);
void mx_gmail_pager_free(struct mx_gmail_pager *p);

/* Decoders of the LEN bytes at BODY (JSON, no NUL needed).  MX_OK and
 * OUT filled, or MX_ERR_PROTOCOL / MX_ERR_NOMEM with OUT zeroed. */
int mx_gmail_parse_list(const char *body, size_t len,
			struct mx_gmail_list_page *out, struct mx_error *err);
int mx_gmail_parse_msg(const char *body, size_t len, struct mx_gmail_msg *out,
		       struct mx_error *err);
/* A Message resource reduced to its id and threadId (send's answer). */
int mx_gmail_parse_ref(const char *body, size_t len, struct mx_gmail_ref *out,
		       struct mx_error *err);
/* format=raw: the decoded "raw" field into RAW (at most MAX bytes). */
int mx_gmail_parse_raw(const char *body, size_t len, size_t max,
		       struct mx_buf *raw, struct mx_error *err);
/* A history page asked from START (its historyId must not be below). */
int mx_gmail_parse_history(const char *body, size_t len, uint64_t start,
			   struct mx_gmail_history_page *out,
			   struct mx_error *err);
int mx_gmail_parse_labels(const char *body, size_t len,
			  struct mx_gmail_label_list *out,
			  struct mx_error *err);
int mx_gmail_parse_label(const char *body, size_t len,
			 struct mx_gmail_label *out, struct mx_error *err);
void mx_gmail_label_free(struct mx_gmail_label *l);

/* The body of a batch of messages.get (metadata) for the N ids, parts
 * separated by BOUNDARY, Content-ID <item-I> for IDS[I - 1]; appended
 * to OUT.  -1 on ENOMEM. */
int mx_gmail_batch_body(const char *const *ids, size_t n,
			const char *boundary, struct mx_buf *out);
/* Decodes the answer to that batch: CONTENT_TYPE is the response's
 * header (multipart/mixed; boundary=...), BODY the LEN bytes.  Fills
 * ITEMS[0..N-1] as mx_gmail_message_get_batch() says (an item with no
 * answer gets MX_ERR_PROTOCOL).  A broken multipart, an unknown or
 * repeated Content-ID, or an answer about another message id is
 * MX_ERR_PROTOCOL for the whole batch, items zeroed. */
int mx_gmail_parse_batch(const char *content_type, const char *body,
			 size_t len, const char *const *ids, size_t n,
			 struct mx_gmail_batch_item *items,
			 struct mx_error *err);

/* What the client does about a failed answer. */
enum mx_gmail_action {
	MX_GMAIL_FAIL,       /* give ERR to the caller */
	MX_GMAIL_REFRESH,    /* 401: new token, once */
	MX_GMAIL_RATE,       /* 429, 403 rate limits: Retry-After/backoff */
	MX_GMAIL_BACKOFF     /* 5xx: backoff */
};
/*
 * Maps an HTTP STATUS (not 2xx) with Google's error BODY (LEN bytes, may
 * be anything) of a METHOD call to ERR and returns what to do.  ERR gets
 * "<method>: HTTP <status> <reason>: <message>"; a 403 for a missing
 * scope is MX_ERR_AUTH naming the scope; a 404 from history.list is
 * MX_ERR_EXPIRED.
 */
enum mx_gmail_action mx_gmail_map_error(enum mx_gmail_method method,
					long status, const char *body,
					size_t len, struct mx_error *err);

#endif
