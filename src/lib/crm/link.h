/*
 * The CRM layer's linking rules (doc/crm.md, "Linking rules"): which
 * contact a message belongs to, which contacts it only mentions, and
 * which address may become a new contact.
 *
 * This is the rule engine alone: pure functions over a message's
 * participants, the policy of its mailbox and a lookup of contacts by
 * address.  It reads no store and keeps no state, so each rule is a unit
 * test (tests/unit/test_crm.c) and the same code decides at ingest and
 * when contacts change and past mail is linked again.
 *
 * Addresses are compared as mx_addr_normalize() leaves them: the domain
 * case-insensitively (lower-cased, IDN labels decoded to UTF-8), the
 * local part exactly as written (RFC 5321 2.4: only the receiving host
 * may treat it as case-insensitive).
 */
#ifndef MX_CRM_LINK_H
#define MX_CRM_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A contact as the rules see it. */
struct mx_crm_contact {
	const char *id;         /* the CRM's id */
	int64_t created;        /* unix time: rules 3 and 4 */
	bool soft_deleted;      /* rule 9: still links */
};

enum mx_crm_how {
	MX_CRM_PRIMARY = 1,     /* the contact's primary address */
	MX_CRM_ADDITIONAL,      /* one of its additional addresses */
	MX_CRM_TOMBSTONE,       /* the address of a contact the CRM deleted
				   (hard): never linked, never re-created */
};

struct mx_crm_hit {
	const struct mx_crm_contact *c; /* NULL for a tombstone */
	enum mx_crm_how how;
};

/*
 * Every contact that has ADDR (normalized) as a primary or an additional
 * address, and tombstones of ADDR: *V_R points at CTX's own array (not
 * freed by the caller), valid until the next lookup; the contacts' ids
 * must stay valid until the caller is done with the mx_crm_result (it
 * borrows them).  Returns 0, or -1 on an error (the rules then fail with
 * it).
 */
typedef int mx_crm_lookup_fn(void *ctx, const char *addr,
			     const struct mx_crm_hit **v_r, size_t *n_r);

/* The mailbox's policy (per account and workspace). */
struct mx_crm_policy {
	/* The mailbox's own addresses (normalized): never a contact, never
	 * blocked; From among them makes a message sent mail. */
	const char *const *own;
	size_t nown;
	/* The organisation's domains (rule 10); public mail domains in it
	 * are ignored.  When empty: the domains of OWN. */
	const char *const *org_domains;
	size_t norg;
	/* Public mail domains (rule 10); NULL = mx_crm_public_domains.
	 * "hotmail.*" covers every hotmail.TLD. */
	const char *const *public_domains;
	size_t npublic;
	/* Impersonal local parts (rule 11); NULL = mx_crm_impersonal.
	 * "bounce*" is a prefix; a "+tag" is ignored. */
	const char *const *impersonal;
	size_t nimpersonal;
	/* Role local parts (rule 11), used unless ROLES_OFF; NULL =
	 * mx_crm_roles. */
	const char *const *roles;
	size_t nroles;
	bool roles_off;
	/* The workspace's blocklist (rule 12): "a@b.example" or
	 * "@b.example" (also every subdomain of it). */
	const char *const *blocklist;
	size_t nblock;
	/* Rule 8: mail dated before CONNECTED (unix time) is not linked
	 * unless HISTORY (a history import was asked for).  0: no limit. */
	int64_t connected;
	bool history;
	bool auto_create;       /* unknown external parties become contacts */
};

extern const char *const mx_crm_public_domains[];
extern const size_t mx_crm_npublic_domains;
extern const char *const mx_crm_impersonal[];
extern const size_t mx_crm_nimpersonal;
extern const char *const mx_crm_roles[];
extern const size_t mx_crm_nroles;

/* A message as the rules see it (addresses normalized; NULL = none). */
struct mx_crm_msg {
	const char *from;
	const char *const *to;
	size_t nto;
	const char *const *cc;
	size_t ncc;
	const char *const *bcc;
	size_t nbcc;
	int64_t date;           /* unix time */
	/* It says it is bulk or automatic (MX_PARSED_BULK, mx_mime_bulk()). */
	bool bulk;
	/* Rule 6: the contact the message's thread already belongs to
	 * (an earlier message's link), or NULL. */
	const char *thread_contact;
};

enum mx_crm_outcome {
	MX_CRM_LINKED = 1,
	MX_CRM_NO_CONTACT,      /* nobody known (CREATE may say who to add) */
	MX_CRM_BEFORE_CONNECT,  /* rule 8 */
	MX_CRM_INTERNAL,        /* rule 10 */
	MX_CRM_IMPERSONAL,      /* rule 11 */
	MX_CRM_BLOCKED,         /* rule 12 */
	MX_CRM_NO_PARTY,        /* no other party at all (mail to oneself) */
};

#define MX_CRM_MAX_MENTIONS 64

struct mx_crm_result {
	enum mx_crm_outcome outcome;
	bool sent;              /* From is one of the mailbox's addresses */
	const char *contact;    /* LINKED: the contact's id (the lookup's) */
	const char *party;      /* the address it was decided by */
	const char *create;     /* NO_CONTACT with auto_create: the address
				   to make a contact of (rule 5: never Cc) */
	/* Rule 5: other contacts the message mentions (To after the
	 * first, Cc, Bcc), shown on their timelines, not linked. */
	const char *mentions[MX_CRM_MAX_MENTIONS];
	size_t nmentions;
};

/*
 * Decides message M for mailbox policy P (rules 1-12 of doc/crm.md).
 * Returns 0 with *R filled (pointers borrowed from M and the lookup), or
 * -1 when LOOKUP failed.
 */
int mx_crm_decide(const struct mx_crm_policy *p, const struct mx_crm_msg *m,
		  mx_crm_lookup_fn *lookup, void *ctx,
		  struct mx_crm_result *r);

/*
 * Rules 2-4 for the hits of one address: the contact it belongs to, or
 * NULL (no contact, or only a tombstone).  A primary address wins over an
 * additional one; among several, the contact created first (ties: the
 * smaller id).
 */
const struct mx_crm_contact *mx_crm_resolve(const struct mx_crm_hit *v,
					    size_t n);

/* Whether ADDR's local part is impersonal or a role under P. */
bool mx_crm_impersonal_addr(const struct mx_crm_policy *p, const char *addr);
/* Whether ADDR is on P's blocklist (never one of P's own addresses). */
bool mx_crm_blocked(const struct mx_crm_policy *p, const char *addr);
/* Whether DOMAIN is a public mail domain under P. */
bool mx_crm_public_domain(const struct mx_crm_policy *p, const char *domain);

#endif
