/*
 * Links of stored mail to contacts, and contacts' timelines (doc/crm.md,
 * "Links and timelines").  The rules are crm/link.h's; this is where
 * their outcome is stored:
 *   MX_DB_LINKS     u64 message id -> JSON {"contact","party","sent",
 *                   "outcome","mentions":[...],"date"}
 *   MX_DB_TIMELINE  contact id NUL u64 date u64 message id -> 'l' (linked)
 *                   or 'm' (mentioned: Cc/Bcc, rule 5)
 */
#ifndef MX_CRM_TIMELINE_H
#define MX_CRM_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "store/store.h"

struct mx_crm_opts {
	bool history;       /* rule 8: link mail from before the connection */
	bool auto_create;   /* unknown external parties become contacts */
};

/* What linking one message changed. */
enum mx_crm_change {
	MX_CRM_SAME = 0,
	MX_CRM_CHANGED_LINK,  /* message.linked written */
	MX_CRM_CHANGED_UNLINK, /* message.unlinked written */
	MX_CRM_CHANGED_MENTIONS, /* only the mentioned contacts */
};

/*
 * Decides message M of account A by the rules and stores the outcome in
 * T, replacing what was stored for M before (its timeline entries too).
 * A changed link writes message.linked or message.unlinked; a contact
 * made by auto-creation writes contact.created.  *CHANGE_R (may be NULL)
 * says what changed.
 */
int mx_crm_link_msg(struct mx_txn *t, const struct mx_account *a,
		    const struct mx_msg *m, const struct mx_crm_opts *o,
		    enum mx_crm_change *change_r, struct mx_error *err);

struct mx_crm_relink_stats {
	uint64_t messages;   /* decided */
	uint64_t linked;     /* linked to a contact now */
	uint64_t changed;    /* whose link or mentions changed */
	uint64_t created;    /* contacts made by auto-creation */
	/* messages by outcome (enum mx_crm_outcome, index 1..7) */
	uint64_t outcomes[8];
};

/* The name of outcome O as stored ("linked", "internal", ...). */
const char *mx_crm_outcome_name(int o);

/*
 * Decides every stored message again (of account ACCOUNT_ID; 0: all), in
 * message id order, 1,000 a write transaction so that a sync is never
 * held up for long.  Used when contacts changed and for a history import.
 */
int mx_crm_relink(struct mx_store *st, uint32_t account_id,
		  const struct mx_crm_opts *o, struct mx_crm_relink_stats *s,
		  struct mx_error *err);

/* The link record of message ID (a new reference), or MX_ERR_NOTFOUND. */
int mx_crm_link_get(struct mx_txn *t, uint64_t id, json_t **link_r,
		    struct mx_error *err);

/*
 * Contact CONTACT's timeline, newest first: up to LIMIT entries
 * {"message","account","date","subject","from","role","sent"} appended
 * to OUT, starting after the entry CURSOR names (NULL: the newest);
 * *NEXT_R (malloc()ed, NULL on the last page) continues it.
 */
int mx_crm_timeline(struct mx_txn *t, const char *contact, const char *cursor,
		    size_t limit, json_t *out, char **next_r,
		    struct mx_error *err);
/* The same with only messages of the NIDS accounts IDS (the HTTP API's
 * permission rule: the accounts the caller may use). */
int mx_crm_timeline_of(struct mx_txn *t, const char *contact,
		       const uint32_t *ids, size_t nids, const char *cursor,
		       size_t limit, json_t *out, char **next_r,
		       struct mx_error *err);

#endif
