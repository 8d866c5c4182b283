/*
 * Event types and their payloads, built in one place
 * (doc/internals/events.md).  The modules that write events (account,
 * sync, send, the daemon) call these builders inside the write
 * transaction of the change; each appends one event through
 * mx_store_event().  This file and types.c need only the store and util,
 * so they sit in the store's layer above it, below account
 * (tests/integ/t-layers.sh): the rest of src/lib/events/ (reading,
 * retention, webhooks) stands above sync and send.
 */
#ifndef MX_EVENT_TYPES_H
#define MX_EVENT_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* Every type an event is written with (the list in mxsync(1), "Events"):
 * MX_EVENT_NTYPES names; a webhook filter is checked against them. */
#define MX_EVENT_NTYPES 16
extern const char *const mx_event_types[MX_EVENT_NTYPES];

/* message.new of a message downloaded into a folder: FOLDER_NAME, UID,
 * the POP3 unique-id UIDL (NULL for IMAP), API mode's REMOTE_ID (the
 * server's message id, else NULL), the RFC 5322 MESSAGE_ID
 * without brackets (NULL: none) and its THREAD. */
struct mx_event_new {
	uint32_t uid;
	const char *folder_name;
	const char *uidl;
	const char *message_id;
	uint64_t thread;
	const char *remote_id; /* API mode: the server's message id */
};
int mx_event_message_new(struct mx_txn *t, uint32_t account_id,
			 uint32_t folder_id, uint64_t msg_id,
			 const struct mx_event_new *n, struct mx_error *err);

/* message.updated: the flags of UID changed; LOCAL: by `mxsync flag`
 * ("origin": "local"), else seen on the server. */
int mx_event_message_updated(struct mx_txn *t, uint32_t account_id,
			     uint32_t folder_id, uint64_t msg_id, uint32_t uid,
			     uint32_t flags, bool local, struct mx_error *err);

/* message.updated in API mode: the message's label ids changed on the
 * server; LABELS is the new space-separated list, FLAGS what it means
 * for \Seen and \Flagged. */
int mx_event_message_labels(struct mx_txn *t, uint32_t account_id,
			    uint32_t folder_id, uint64_t msg_id, uint32_t uid,
			    uint32_t flags, const char *labels,
			    struct mx_error *err);

/* message.copied (a second location of a stored message) or, MOVED,
 * message.moved (an orphan re-attached in another folder, or a message
 * moved by mx_message_move()). */
int mx_event_message_placed(struct mx_txn *t, uint32_t account_id,
			    uint32_t folder_id, uint64_t msg_id, uint32_t uid,
			    const char *folder_name, bool moved,
			    struct mx_error *err);

/* message.deleted: garbage-collected, no location left; or deleted (or
 * moved out of what the daemon syncs) by mx_message_delete()/_move(). */
int mx_event_message_deleted(struct mx_txn *t, uint32_t account_id,
			     uint64_t msg_id, struct mx_error *err);

/* folder.reset: UIDVALIDITY changed from OLD_UIDVALIDITY; REMAPPED
 * messages were found again by identity. */
int mx_event_folder_reset(struct mx_txn *t, uint32_t account_id,
			  uint32_t folder_id, const char *folder_name,
			  uint32_t old_uidvalidity, uint32_t uidvalidity,
			  uint64_t remapped, struct mx_error *err);

/* account.removed of account ACCOUNT_ID named NAME; PURGED: its stored
 * data went too ("purged": true). */
int mx_event_account_removed(struct mx_txn *t, uint32_t account_id,
			     const char *name, bool purged,
			     struct mx_error *err);

/* account.reauth: `mxsync account reauth` asked the daemon to log in
 * again (no fields). */
int mx_event_account_reauth(struct mx_txn *t, uint32_t account_id,
			    struct mx_error *err);

#endif
