/*
 * The one way a message enters the store, for every sync driver (the UID
 * model in sync.c, the maildrop model in pop3sync.c, the change-log model
 * in changes.c, which stores metadata only): its hash, identity
 * and MIME parse, the search for a stored record it is another copy of,
 * and the new record with its location and its message.new event.
 * Private to src/lib/sync/.
 */
#ifndef MX_SYNC_INGEST_H
#define MX_SYNC_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime/mime.h"
#include "store/store.h"

/* SHA-256, identity (mx_mime_identity) and MIME parse of RAW (LEN bytes)
 * into SHA_R, IDENTITY_R and PARSED_R (free with mx_parsed_free()).  A
 * broken message is parsed as far as it goes (MX_PARSED_BROKEN); errors:
 * those of mx_mime_parse(). */
int mx_ingest_prepare(const char *raw, size_t len, uint8_t sha_r[32],
		      uint8_t identity_r[32], struct mx_parsed *parsed_r,
		      struct mx_error *err);

/* The metadata-only counterpart (change-log model): the hash of no
 * bytes, an identity derived from the server's message id REMOTE_ID (so
 * the same id is the same message), and a parse holding only FROM (an
 * address, may be NULL) -- no subject, no Message-ID, no other header.
 * PARSED_R is freed with mx_parsed_free(). */
int mx_ingest_prepare_meta(const char *remote_id, const char *from,
			   uint8_t sha_r[32], uint8_t identity_r[32],
			   struct mx_parsed *parsed_r, struct mx_error *err);

/* Called for each stored record that is the same message; *STOP_R true
 * ends the search.  An error ends it too and is returned. */
typedef int mx_ingest_match_cb(struct mx_txn *t, uint64_t msg_id, void *ctx,
			       bool *stop_r, struct mx_error *err);

/*
 * Records of ACCOUNT_ID with IDENTITY and the same bytes (SHA; SHA NULL:
 * the same SIZE, when only the header fields were fetched), in index
 * order, each handed to CB.  A store error is returned, not taken for
 * "none": that would store a second copy.
 */
int mx_ingest_find(struct mx_txn *t, uint32_t account_id,
		   const uint8_t identity[32], const uint8_t *sha,
		   uint64_t size, mx_ingest_match_cb *cb, void *ctx,
		   struct mx_error *err);

/* A message that is not in the store yet, and where it is. */
struct mx_ingest_new {
	uint32_t account_id;
	uint32_t folder_id;
	const char *folder_name;
	uint32_t uid;
	uint32_t flags;           /* MX_FL_* */
	const char *keywords;     /* NULL if none */
	uint64_t modseq;
	int64_t internaldate;
	const char *raw;
	size_t len;
	const uint8_t *sha;       /* 32 bytes, from mx_ingest_prepare() */
	const uint8_t *identity;  /* 32 bytes */
	const struct mx_parsed *parsed;
	const char *drop_id;      /* the maildrop's unique id, or NULL */
	/* Change-log model (changes.c): the server's message id, or NULL.
	 * RAW is then empty (LEN 0): only metadata is stored. */
	const char *remote_id;
};

/* Stores N as a new record with its location and a message.new event
 * (uid, folder_name, the maildrop's "uidl" or the change-log model's
 * "remote_id" if any, message_id, thread),
 * in T.  *ID_R gets the record's id. */
int mx_ingest_store(struct mx_txn *t, const struct mx_ingest_new *n,
		    uint64_t *id_r, struct mx_error *err);

#endif
