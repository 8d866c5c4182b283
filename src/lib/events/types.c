/* Event types and their payloads (types.h): the one place where an
 * event's type name and its type-specific fields are written.  Needs only
 * the store and util (it sits below the account module). */
#include <jansson.h>

#include "events/types.h"

const char *const mx_event_types[MX_EVENT_NTYPES] = {
	"message.new", "message.updated", "message.copied", "message.moved",
	"message.deleted", "folder.reset", "account.state", "account.reauth",
	"account.removed", "message.queued", "message.sent", "message.failed",
	"account.quota", "message.linked", "message.unlinked",
	"contact.created",
};

/* Appends TYPE with the fields of X (may be NULL) and drops X. */
static int emit(struct mx_txn *t, const char *type, uint32_t account_id,
		uint32_t folder_id, uint64_t msg_id, json_t *x,
		struct mx_error *err)
{
	int rc = mx_store_event(t, type, account_id, folder_id, msg_id, x, err);

	json_decref(x);
	return rc;
}

int mx_event_message_new(struct mx_txn *t, uint32_t account_id,
			 uint32_t folder_id, uint64_t msg_id,
			 const struct mx_event_new *n, struct mx_error *err)
{
	json_t *x = json_object();

	json_object_set_new(x, "uid", json_integer(n->uid));
	json_object_set_new(x, "folder_name", json_string(n->folder_name));
	if (n->uidl)
		json_object_set_new(x, "uidl", json_string(n->uidl));
	if (n->remote_id)
		json_object_set_new(x, "remote_id", json_string(n->remote_id));
	/* Lets a consumer match the event without a lookup. */
	if (n->message_id)
		json_object_set_new(x, "message_id",
				    json_string(n->message_id));
	json_object_set_new(x, "thread", json_integer((json_int_t)n->thread));
	return emit(t, "message.new", account_id, folder_id, msg_id, x, err);
}

int mx_event_message_updated(struct mx_txn *t, uint32_t account_id,
			     uint32_t folder_id, uint64_t msg_id, uint32_t uid,
			     uint32_t flags, bool local, struct mx_error *err)
{
	json_t *x = json_object();

	json_object_set_new(x, "uid", json_integer(uid));
	json_object_set_new(x, "flags", json_integer(flags));
	if (local)
		json_object_set_new(x, "origin", json_string("local"));
	return emit(t, "message.updated", account_id, folder_id, msg_id, x,
		    err);
}

int mx_event_message_labels(struct mx_txn *t, uint32_t account_id,
			    uint32_t folder_id, uint64_t msg_id, uint32_t uid,
			    uint32_t flags, const char *labels,
			    struct mx_error *err)
{
	json_t *x = json_object();

	json_object_set_new(x, "uid", json_integer(uid));
	json_object_set_new(x, "flags", json_integer(flags));
	json_object_set_new(x, "labels", json_string(labels ? labels : ""));
	return emit(t, "message.updated", account_id, folder_id, msg_id, x,
		    err);
}

int mx_event_message_placed(struct mx_txn *t, uint32_t account_id,
			    uint32_t folder_id, uint64_t msg_id, uint32_t uid,
			    const char *folder_name, bool moved,
			    struct mx_error *err)
{
	json_t *x = json_object();

	json_object_set_new(x, "uid", json_integer(uid));
	json_object_set_new(x, "folder_name", json_string(folder_name));
	return emit(t, moved ? "message.moved" : "message.copied", account_id,
		    folder_id, msg_id, x, err);
}

int mx_event_message_deleted(struct mx_txn *t, uint32_t account_id,
			     uint64_t msg_id, struct mx_error *err)
{
	return emit(t, "message.deleted", account_id, 0, msg_id, NULL, err);
}

int mx_event_folder_reset(struct mx_txn *t, uint32_t account_id,
			  uint32_t folder_id, const char *folder_name,
			  uint32_t old_uidvalidity, uint32_t uidvalidity,
			  uint64_t remapped, struct mx_error *err)
{
	json_t *x = json_object();

	json_object_set_new(x, "old_uidvalidity",
			    json_integer(old_uidvalidity));
	json_object_set_new(x, "uidvalidity", json_integer(uidvalidity));
	json_object_set_new(x, "remapped", json_integer((json_int_t)remapped));
	json_object_set_new(x, "folder_name", json_string(folder_name));
	return emit(t, "folder.reset", account_id, folder_id, 0, x, err);
}

int mx_event_account_removed(struct mx_txn *t, uint32_t account_id,
			     const char *name, bool purged,
			     struct mx_error *err)
{
	json_t *x = json_object();

	json_object_set_new(x, "account_name", json_string(name));
	if (purged)
		json_object_set_new(x, "purged", json_true());
	return emit(t, "account.removed", account_id, 0, 0, x, err);
}

int mx_event_account_reauth(struct mx_txn *t, uint32_t account_id,
			    struct mx_error *err)
{
	return emit(t, "account.reauth", account_id, 0, 0, NULL, err);
}
