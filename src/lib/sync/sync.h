/* Sync engine internals shared by sync.c, pop3sync.c, api.c and export.c. */
#ifndef MX_SYNC_H
#define MX_SYNC_H

#include "backends/backend.h"
#include "store/store.h"

/*
 * Syncs ACCT over an already connected CONN (both borrowed), like mx_sync().
 * Used by the daemon, which keeps one connection per account.
 */
int mx_sync_conn(struct mx_store *st, const struct mx_account *acct,
		 struct mx_conn *conn, const struct mx_sync_opts *opts,
		 struct mx_sync_stats *stats_r, struct mx_error *err);

/*
 * mx_sync_conn() of the folders OPTS names (required) as the store knows
 * them, without asking the server for its folder list first: one round
 * trip less on the daemon's IDLE push of INBOX (bench/push-latency).  A
 * folder the store does not know (never listed) is MX_ERR_NOTFOUND: the
 * caller then runs mx_sync_conn().  Renamed and deleted folders are
 * noticed by the next full sync.
 */
int mx_sync_conn_known(struct mx_store *st, const struct mx_account *acct,
		       struct mx_conn *conn, const struct mx_sync_opts *opts,
		       struct mx_sync_stats *stats_r, struct mx_error *err);

/* MX_ERR_INVAL unless the batch limits of OPTS (may be NULL) are within
 * MX_SYNC_BATCH_MSGS_MAX and MX_SYNC_BATCH_BYTES_MAX: the batch arrays are
 * sized from them, so a huge count would wrap the allocation size. */
int mx_sync_opts_check(const struct mx_sync_opts *opts, struct mx_error *err);

/* ---- the maildrop model: POP3 (pop3sync.c) ---- */

/*
 * Syncs account A whose backend has the maildrop model (MX_CAP_MODEL_DROP:
 * POP3) through its backend table: connects (a fresh OAuth2
 * token first, one forced refresh if the server refuses it), lists the
 * maildrop by UIDL, downloads every message whose unique-id is not yet
 * recorded for A into A's folder "INBOX" (stored, indexed, a message.new
 * event each, the unique-id recorded, one write transaction per batch),
 * then with A->pop3_delete marks stored messages for deletion, and QUITs.
 * OPTS as for mx_sync() (folders: only "INBOX" exists; cancel stops after
 * committing what was downloaded).  STATS_R (may be NULL): folders = 1,
 * new_msgs, new_bytes, remapped (a new unique-id for a message already
 * stored: the server renumbered), parse_errors, expunged (messages
 * deleted on the server).  A->access_token and its expiry may be
 * refreshed and saved.  Errors: those of mx_backend_connect() and the
 * drop_* slots (src/backends/backend.h), MX_ERR_NOTFOUND
 * (a folder other than INBOX asked for), MX_ERR_STORE, MX_ERR_STORE_FULL,
 * MX_ERR_CANCELLED, MX_ERR_CONFIG (disabled account), MX_ERR_UNSUPPORTED
 * (A's backend has no maildrop).
 */
int mx_drop_sync(struct mx_store *st, struct mx_account *a,
		 const struct mx_sync_opts *opts,
		 struct mx_sync_stats *stats_r, struct mx_error *err);

/* ---- the change-log model: Gmail API mode (changes.c) ---- */

/*
 * Syncs account A (whose backend has MX_CAP_MODEL_CHANGES): connects,
 * applies the changes since the stored cursor (a full listing the first
 * time or when the server forgot the cursor), stores the new cursor.
 * Metadata only.  Errors: those of mx_backend_connect() and the store,
 * MX_ERR_PROTOCOL, MX_ERR_SERVER, MX_ERR_CANCELLED.
 */
int mx_changes_sync(struct mx_store *st, struct mx_account *a,
		    const struct mx_sync_opts *opts,
		    struct mx_sync_stats *stats_r, struct mx_error *err);

/* The server's id of record MSG of account ACCOUNT_ID (malloc()ed in
 * *ID_R); MX_ERR_NOTFOUND when it is not a change-log model message. */
int mx_changes_remote_id(struct mx_txn *t, uint32_t account_id, uint64_t msg,
			 char **id_r, struct mx_error *err);

/* Whether a sync without a list of folders syncs folder F: selectable,
 * still on the server, not Junk or Trash (SPECIAL-USE). */
bool mx_sync_follows(const struct mx_folder *f);
/* Adds the flags ADD and removes REMOVE (MX_FL_SEEN, MX_FL_FLAGGED) of
 * message ID, on the server and then in the store (mx_message_flag() in
 * mxsync.h; the API's PATCH /v1/messages/{id}). */
int mx_msg_flags(struct mx_store *st, uint64_t id, uint32_t add,
		 uint32_t remove, struct mx_error *err);
/*
 * Moves message ID to folder FOLDER_ID (or, 0, the folder named
 * FOLDER_NAME) of its account on the server, then the store follows
 * (mx_message_move() in mxsync.h; the API's POST /v1/messages/{id}/move).
 * MX_ERR_INVAL: no such folder in the account, or one that cannot hold
 * messages; MX_ERR_NOTFOUND: no such message or none left on the server;
 * MX_ERR_UNSUPPORTED: the account's backend cannot move (POP3).
 */
int mx_msg_move(struct mx_store *st, uint64_t id, uint32_t folder_id,
		const char *folder_name, struct mx_error *err);
/* Deletes message ID (mx_message_delete() in mxsync.h).  Errors as for
 * mx_msg_move(). */
int mx_msg_delete(struct mx_store *st, uint64_t id, bool permanent,
		  struct mx_error *err);

#endif
