/*
 * The durable outbox: mail queued for sending lives in the LMDB store
 * (MX_DB_OUTBOX) with its bytes as a blob, and moves
 *
 *     queued -> sending -> sent | failed        (or cancelled by the user)
 *
 * with every step committed before the next network action, so that a
 * crash at any point loses nothing and sends nothing twice:
 *
 *  - "sending" is committed before MAIL FROM.  An entry found in "sending"
 *    at start-up was interrupted: its Message-ID is looked up in the
 *    account's Sent folder first (present: it went out; mark it sent),
 *    otherwise it is sent again.  An SMTP transaction cut before the final
 *    dot delivers nothing (RFC 5321 4.1.1.4), so this cannot duplicate.
 *  - "sent" is committed as soon as the server says 250, before the copy
 *    is APPENDed to Sent; "appended" is a separate, later step, retried on
 *    its own and guarded by a Message-ID search, so a crash between the
 *    two gives exactly one delivery and exactly one copy in Sent.
 *  The one window left is between the server's 250 and our commit (one
 *    local write; QUIT comes after it); doc/internals/send.md discusses it.
 *  - Several senders (mxsyncd and `mxsync send`, or two CLIs) may work on
 *    one store: an entry is claimed in the write transaction that moves it
 *    to "sending" (or starts its copy to Sent), with the claimant's pid
 *    and process start time; an entry held by a live process is left
 *    alone, one held by a dead one is recovered as above.
 *
 * Routing: mail marked bulk always goes through the account's fallback
 * relay; personal mail goes through the account's SMTP server until its
 * daily quota (rolling 24 h, MX_DB_SENDLOG) is used up, then waits or
 * goes to the relay, per the account's quota policy.  At 80% of the quota
 * an "account.quota" event warns once per crossing.
 *
 * Events (same transaction as the change): message.queued, message.sent,
 * message.failed, account.quota.
 */
#ifndef MX_SEND_OUTBOX_H
#define MX_SEND_OUTBOX_H

#include <stdbool.h>
#include <stdint.h>

#include "send/compose.h"
#include "store/store.h"

enum mx_ob_state {
	MX_OB_QUEUED = 0,
	MX_OB_SENDING = 1,
	MX_OB_SENT = 2,
	MX_OB_FAILED = 3,
	MX_OB_CANCELLED = 4,
};

/* "queued", "sending", ... */
const char *mx_ob_state_name(enum mx_ob_state s);

struct mx_ob_rcpt {
	char *addr;  /* owned */
	int code;    /* 0: not tried */
	char *reply; /* owned, NULL if none */
};

struct mx_ob_entry {
	uint64_t id;
	uint32_t account_id;
	enum mx_ob_state state;
	bool bulk;
	bool relay;            /* goes (went) through the fallback relay */
	char *message_id;      /* "<...>" */
	char *from;            /* envelope sender */
	char *subject;         /* for listings, UTF-8, may be NULL */
	char **rcpts;          /* envelope recipients */
	size_t nrcpts;
	uint8_t sha256[32];    /* the message bytes (a store blob) */
	uint64_t size;
	char *idem_key;        /* caller's idempotency key, or NULL */
	char *thread;          /* the provider's thread (API mode: a reply
				* goes into its original's), or NULL */
	int64_t created;
	int64_t next_attempt;  /* queued: not before this time */
	int64_t sent_at;
	unsigned attempts;
	char *last_error;      /* why the last attempt did not send */
	bool appended;         /* a copy is in the Sent folder */
	unsigned append_attempts;
	uint64_t msg_id;       /* store record of the sent message, or 0 */
	struct mx_ob_rcpt *results; /* per recipient, after an attempt */
	size_t nresults;
	char *data_reply;      /* the server's reply to the message */
	uint64_t parent;       /* entry whose deferred (4xx) recipients this
				* one retries, or 0; the parent made the copy
				* in Sent */
	uint64_t retry_entry;  /* the entry retrying this one's deferred
				* recipients, or 0 */
	/* The process working on the entry (sending, or copying it to
	 * Sent): its pid and start time, so that a live sender's entry is
	 * never taken for a crashed one.  0 when nobody holds it. */
	int owner_pid;
	uint64_t owner_start;
	int64_t first_try;    /* first SMTP attempt (the age limit counts
			       * from here, not from time spent held) */
	int64_t finished_at;  /* when it became sent-and-copied, failed or
			       * cancelled (retention counts from here) */
};

void mx_ob_entry_free(struct mx_ob_entry *e);
/* JSON object for `mxsync outbox --json` and the API (json_t *). */
void *mx_ob_entry_json(const struct mx_ob_entry *e, const char *account);

/*
 * Queues C for account A: fills the sender (A's address and display
 * name), the attachment limit and the bulk flag, composes the message
 * into a temporary file, and stores it with a new entry in one write
 * transaction (the bytes are copied once, into the store).  With IDEM_KEY
 * set and an entry with that key already queued for A, nothing is
 * composed and that entry's id is returned with *EXISTING_R true.
 * Errors: MX_ERR_CONFIG (the account has no From address or, for BULK,
 * no relay; no SMTP server), the errors of mx_compose_write() (nothing
 * queued), MX_ERR_STORE, MX_ERR_STORE_FULL, MX_ERR_IO, MX_ERR_NOMEM.
 */
int mx_outbox_enqueue(struct mx_store *st, const struct mx_account *a,
		      struct mx_compose *c, const char *idem_key, bool bulk,
		      uint64_t *id_r, bool *existing_r, struct mx_error *err);

/*
 * The HTTP API's idempotency keys (POST /v1/send's Idempotency-Key): one
 * API user's key stands for one request for MX_OB_IDEM_TTL seconds from
 * the first.  DIGEST is the caller's SHA-256 of the request, so that a
 * repeat (same digest) gets the entry the first one queued and a
 * different request under the same key is refused.
 */
#define MX_OB_IDEM_TTL 86400
#define MX_OB_IDEM_MAX 200
struct mx_ob_idem {
	const char *user;    /* API user id (1..128 bytes) */
	const char *key;     /* 1..MX_OB_IDEM_MAX printable ASCII, no space */
	uint8_t digest[32];
};

/* MX_OK with *ID_R: the entry queued for this request.  MX_ERR_EXISTS:
 * the key was used for a different request (*ID_R its entry).
 * MX_ERR_NOTFOUND: unused or expired.  MX_ERR_INVAL (a bad key or user),
 * MX_ERR_STORE. */
int mx_outbox_idem_find(struct mx_store *st, const struct mx_ob_idem *idem,
			uint64_t *id_r, struct mx_error *err);

/*
 * mx_outbox_enqueue() for the HTTP API: IDEM's record is written in the
 * transaction that queues the entry, and looked up there again, so of
 * two concurrent requests with one key only one queues: the other gets
 * its entry with *EXISTING_R true (same digest) or MX_ERR_EXISTS.
 */
int mx_outbox_enqueue_idem(struct mx_store *st, const struct mx_account *a,
			   struct mx_compose *c, const struct mx_ob_idem *idem,
			   bool bulk, uint64_t *id_r, bool *existing_r,
			   struct mx_error *err);

/*
 * Reply headers for a reply to stored message REF (16-hex record id or a
 * "<Message-ID>") of account A: *IRT_R its Message-ID, *REFS_R its
 * References plus that id; *SUBJECT_R "Re: " + its subject unless it
 * starts with "Re:" already; *THREAD_R (may be NULL) the provider's
 * thread id of an API-mode original (for mx_compose.thread), else NULL.
 * All malloc()ed.  API mode stores no Message-ID, References or Subject:
 * for an API-mode original they are read from the provider (the
 * backend's fetch_live, one connection).  Errors: MX_ERR_NOTFOUND,
 * MX_ERR_INVAL (the original has no Message-ID), MX_ERR_STORE, and for an
 * API-mode original those of mx_backend_connect() and fetch_live.
 */
int mx_outbox_reply_headers(struct mx_store *st, struct mx_account *a,
			    const char *ref, char **irt_r, char **refs_r,
			    char **subject_r, char **thread_r,
			    struct mx_error *err);

struct mx_ob_run_opts {
	uint32_t account_id;  /* 0: every account */
	uint64_t only_id;     /* 0: every due entry */
	bool now;             /* ignore retry back-off (not quota holds) */
	volatile int *cancel; /* stop between entries when non-zero */
	/* May be NULL: true if the caller has ACCOUNT disabled besides its
	 * stored flag (mxsyncd: `enabled = no` in mxsync.conf); its mail then
	 * waits as for a disabled account. */
	bool (*disabled)(const struct mx_account *account, void *ctx);
	void *ctx;
};

struct mx_ob_run_stats {
	unsigned sent;      /* accepted by a server */
	unsigned relayed;   /* of which through the fallback relay */
	unsigned failed;    /* final failures */
	unsigned deferred;  /* temporary failures, retried later */
	unsigned held;      /* waiting for the daily quota */
	unsigned appended;  /* copies put into Sent */
	unsigned recovered; /* interrupted sends found already in Sent */
};

/*
 * Works through the due entries (queued and due, left in sending by a
 * crash, or sent but not yet in Sent).  Per-entry outcomes are recorded in
 * the entries and counted in STATS (may be NULL); the return value is an
 * error only when the store fails (MX_ERR_STORE, MX_ERR_STORE_FULL,
 * MX_ERR_IO) or on cancel (MX_ERR_CANCELLED).
 */
int mx_outbox_run(struct mx_store *st, const struct mx_ob_run_opts *o,
		  struct mx_ob_run_stats *stats, struct mx_error *err);

/* Earliest next_attempt of a queued entry (unix time), 0 if none: when the
 * daemon should run the outbox again. */
int64_t mx_outbox_next_due(struct mx_store *st);

/* Entries of account ACCOUNT_ID per state (COUNTS indexed by enum
 * mx_ob_state), in T (for `mxsync status`).  Errors: MX_ERR_STORE. */
int mx_outbox_counts(struct mx_txn *t, uint32_t account_id,
		     unsigned counts[MX_OB_CANCELLED + 1], struct mx_error *err);

/* All entries of account ACCOUNT_ID (0: all), oldest first. */
int mx_outbox_list(struct mx_store *st, uint32_t account_id,
		   struct mx_ob_entry **v_r, size_t *n_r, struct mx_error *err);
void mx_ob_entries_free(struct mx_ob_entry *v, size_t n);
int mx_outbox_get(struct mx_store *st, uint64_t id, struct mx_ob_entry *e,
		  struct mx_error *err);

/* `outbox retry ID`: a failed or queued entry becomes queued and due now
 * (attempts reset).  `outbox cancel ID`: a queued or failed entry becomes
 * cancelled and its bytes are released.  MX_ERR_INVAL for an entry in
 * another state (a sent message cannot be unsent). */
int mx_outbox_retry(struct mx_store *st, uint64_t id, struct mx_error *err);
int mx_outbox_cancel(struct mx_store *st, uint64_t id, struct mx_error *err);

/*
 * Retention: deletes finished entries (sent and copied to Sent, failed,
 * cancelled) whose last activity is older than MAX_AGE_S, with their
 * idempotency keys and any bytes they still hold; *N_R (may be NULL) gets
 * the count.  An idempotency key is therefore remembered as long as its
 * entry is kept; the API's keys (mx_outbox_enqueue_idem) expire after
 * MX_OB_IDEM_TTL and are deleted here too.  Errors: MX_ERR_STORE, MX_ERR_STORE_FULL.
 */
int mx_outbox_prune(struct mx_store *st, int64_t max_age_s, uint64_t *n_r,
		    struct mx_error *err);

/*
 * Inside the write transaction that removes account ACCOUNT_ID: its
 * queued and failed entries are cancelled (bytes released, event
 * message.failed "account removed"); with PURGE every entry of the
 * account, its idempotency keys and its send log go too.
 */
int mx_outbox_account_removed(struct mx_txn *t, uint32_t account_id,
			      bool purge, struct mx_error *err);

/* Messages sent by account ACCOUNT_ID through its own server in the 24 h
 * before NOW. */
int mx_outbox_sent_24h(struct mx_txn *t, uint32_t account_id, int64_t now,
		       unsigned *n_r, int64_t *oldest_r, struct mx_error *err);

#endif
