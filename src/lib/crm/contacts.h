/*
 * Contacts: the CRM pushes them, mxsync stores and indexes them by
 * address so that the linking rules (crm/link.h) can find them
 * (doc/crm.md, "Contacts").
 *
 * A contact is a JSON object:
 *   {"id": "CRM id", "email": "primary", "emails": ["additional", ...],
 *    "created": unix time, "owner": "user", "assigned": ["user", ...],
 *    "categories": ["tag", ...], "company": "domain", "workspace": "ws",
 *    "deleted": true (soft-deleted; only when set)}
 * Only "id" and "email" are required.  Addresses are normalized as
 * mx_addr_normalize() does (domain lower-cased, local part as written).
 *
 * Tables (doc/internals/store.md): MX_DB_CONTACTS, id -> the JSON;
 * MX_DB_CONTACT_ADDRS, address NUL id -> one byte: 'p' primary, 'a'
 * additional, 't' tombstone (the contact was deleted for good: its
 * address is never linked to it or made a contact again by mail).
 */
#ifndef MX_CRM_CONTACTS_H
#define MX_CRM_CONTACTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "crm/link.h"
#include "store/store.h"

#define MX_CONTACT_ID_MAX 128
#define MX_CONTACT_MAX_EMAILS 32

/*
 * Checks contact C (a JSON object as above) and returns the stored form
 * in *OUT_R (a new reference): addresses normalized, duplicates and the
 * primary removed from "emails", "created" NOW when absent.  Errors:
 * MX_ERR_INVAL naming the member that is wrong (unknown members too).
 */
int mx_contact_check(json_t *c, int64_t now, json_t **out_r,
		     struct mx_error *err);

/*
 * Creates or replaces contact C (by its "id"), in T: its old addresses
 * leave the index, the new ones enter it, tombstones of its addresses
 * are lifted (the CRM added the address again on purpose).  A replaced
 * contact keeps its "created" unless C gives one.  *CREATED_R (may be
 * NULL): whether it is new.
 */
int mx_contact_put(struct mx_txn *t, json_t *c, int64_t now,
		   bool *created_r, struct mx_error *err);
/* The same in a transaction of its own. */
int mx_contact_upsert(struct mx_store *st, json_t *c, bool *created_r,
		      struct mx_error *err);

/*
 * Deletes contact ID.  Soft (HARD false): kept, marked "deleted", still
 * linked (rule 9).  Hard: the record goes, its addresses become
 * tombstones.  MX_ERR_NOTFOUND when there is no such contact.
 */
int mx_contact_delete(struct mx_store *st, const char *id, bool hard,
		      struct mx_error *err);

/* Contact ID (a new reference in *C_R); MX_ERR_NOTFOUND. */
int mx_contact_get(struct mx_txn *t, const char *id, json_t **c_r,
		   struct mx_error *err);

/* Every contact in id order, after AFTER (NULL: from the first), at most
 * LIMIT (0: all), appended to the array OUT. */
int mx_contact_list(struct mx_txn *t, const char *after, size_t limit,
		    json_t *out, struct mx_error *err);

/*
 * Imports contacts from FP, one JSON object a line (JSON Lines), in
 * transactions of 1,000.  A bad line stops the import with MX_ERR_INVAL
 * naming its number; the lines before it are stored.  *N_R: contacts
 * stored.
 */
int mx_contact_import(struct mx_store *st, FILE *fp, size_t *n_r,
		      struct mx_error *err);

/*
 * The rule engine's lookup (mx_crm_lookup_fn) over the store: a
 * mx_contact_lookup holds T and what one lookup found (freed by the next
 * lookup or mx_contact_lookup_free()).
 */
struct mx_contact_lookup {
	struct mx_txn *t;
	struct mx_error *err;         /* the last lookup's error */
	struct mx_crm_contact *c;     /* owned (ids too) */
	struct mx_crm_hit *hits;
	char **ids;                   /* owned: the contacts' ids */
	size_t n, cap;
	/* Ids of earlier lookups, kept until mx_contact_lookup_free(): a
	 * decision borrows them (mx_crm_result's contact and mentions)
	 * while later lookups run. */
	char **kept;
	size_t nkept, capkept;
};
int mx_contact_lookup_fn(void *ctx, const char *addr,
			 const struct mx_crm_hit **v_r, size_t *n_r);
void mx_contact_lookup_free(struct mx_contact_lookup *l);

#endif
