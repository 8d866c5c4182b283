/*
 * Message reads for the HTTP API (and any embedder that wants them as
 * JSON values): filtered, paginated listing across accounts, newest
 * first, and one message's parsed record.  Read-only: each call runs in
 * a read transaction of its own and never blocks the sync writer.
 */
#ifndef MX_SYNC_QUERY_H
#define MX_SYNC_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

/* A position in the newest-first order: the sort date (Date:, else the
 * INTERNALDATE) and the id of the last message of a page. */
struct mx_msg_cursor {
	int64_t date;
	uint64_t id;
};

struct mx_msg_filter {
	const uint32_t *accounts; /* the accounts to search (the caller's
				     permitted ones); none: nothing found */
	size_t naccounts;
	uint32_t folder;          /* 0 = any: a location in this folder */
	uint64_t thread;          /* 0 = any */
	int unread, flagged;      /* -1 = any; 1/0: some location is (not)
				     flagged; unread: no location \Seen */
	const char *from, *to;    /* an address, compared case-insensitively */
	const char *subject;      /* substring, ASCII case-insensitive */
	bool has_since, has_until;
	int64_t since, until;     /* sort date within [since, until] */
};

/*
 * Up to LIMIT (>= 1) messages matching F, newest first, after AFTER (NULL:
 * from the newest), as a JSON array of summaries in *MSGS_R
 * ({"id","account","thread","subject","from","to","date","snippet",
 * "flags","folders","attachments","size"}).  *MORE_R says whether another
 * page follows; *NEXT_R is then its cursor.  Errors: the store's.
 */
int mx_msg_query(struct mx_store *st, const struct mx_msg_filter *f,
		 const struct mx_msg_cursor *after, size_t limit,
		 json_t **msgs_r, bool *more_r, struct mx_msg_cursor *next_r,
		 struct mx_error *err);
/* The same page as JSON text (the array, malloc()ed and NUL-terminated,
 * in *TEXT_R, its length in *LEN_R), written straight from the stored
 * summaries: what the API sends, without building jansson values. */
int mx_msg_query_text(struct mx_store *st, const struct mx_msg_filter *f,
		       const struct mx_msg_cursor *after, size_t limit,
		       char **text_r, size_t *len_r, bool *more_r,
		       struct mx_msg_cursor *next_r, struct mx_error *err);

/*
 * Message ID's parsed record for the API ({"id","account","thread",
 * "message_id","from","to","cc","reply_to","subject","date",
 * "internal_date","snippet","flags","parts","locations","size"}) in *MSG_R,
 * when its account is one of ACCOUNTS (else MX_ERR_NOTFOUND, as for a
 * message that does not exist).
 */
int mx_msg_get_json(struct mx_store *st, uint64_t id,
		    const uint32_t *accounts, size_t naccounts,
		    json_t **msg_r, struct mx_error *err);

/*
 * The messages of thread THREAD in accounts ACCOUNTS, across folders,
 * oldest first, as a JSON array of summaries (as mx_msg_query's) in
 * *MSGS_R.  MX_ERR_NOTFOUND when the thread has no message in ACCOUNTS
 * (as for a thread that does not exist).
 */
int mx_thread_get_json(struct mx_store *st, uint64_t thread,
		       const uint32_t *accounts, size_t naccounts,
		       json_t **msgs_r, struct mx_error *err);

/* The cursor as opaque text ("DATE.ID") and back (false: not one). */
void mx_msg_cursor_str(const struct mx_msg_cursor *c, char out[48]);
bool mx_msg_cursor_parse(const char *s, struct mx_msg_cursor *c);

/* Unix time T as an RFC 3339 date-time in UTC ("2026-12-07T10:00:00Z"). */
void mx_fmt_rfc3339(int64_t t, char out[32]);

#endif
