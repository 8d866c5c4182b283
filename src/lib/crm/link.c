/*
 * The linking rules (link.h; the rules' text is doc/crm.md, "Linking
 * rules", numbered as there).
 */
#include <string.h>
#include <strings.h>

#include "crm/link.h"

const char *const mx_crm_public_domains[] = {
	"gmail.com", "googlemail.com", "outlook.com", "hotmail.*", "live.*",
	"msn.com", "yahoo.*", "ymail.com", "icloud.com", "me.com", "mac.com",
	"aol.com", "gmx.*", "web.de", "mail.ru", "yandex.*", "proton.me",
	"protonmail.com", "zoho.com", "fastmail.com", "t-online.de",
	"orange.fr", "free.fr", "qq.com", "163.com",
};
const size_t mx_crm_npublic_domains =
	sizeof(mx_crm_public_domains) / sizeof(mx_crm_public_domains[0]);

const char *const mx_crm_impersonal[] = {
	"noreply", "no-reply", "no_reply", "donotreply", "do-not-reply",
	"do_not_reply", "mailer-daemon", "postmaster", "bounce*",
	"bounces*", "notifications", "notification",
};
const size_t mx_crm_nimpersonal =
	sizeof(mx_crm_impersonal) / sizeof(mx_crm_impersonal[0]);

const char *const mx_crm_roles[] = {
	"team", "support", "info", "sales", "hello", "contact", "admin",
	"office", "help", "billing",
};
const size_t mx_crm_nroles = sizeof(mx_crm_roles) / sizeof(mx_crm_roles[0]);

static const char *domain_of(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	return at ? at + 1 : "";
}

/* Whether the local part of ADDR (before any "+tag") matches PAT: equal
 * ignoring ASCII case, or a prefix of it when PAT ends in '*'. */
static bool local_matches(const char *addr, const char *pat)
{
	const char *at = strrchr(addr, '@');
	size_t n = at ? (size_t)(at - addr) : strlen(addr);
	size_t pl = strlen(pat);
	const char *plus = memchr(addr, '+', n);

	if (plus)
		n = (size_t)(plus - addr);
	if (pl && pat[pl - 1] == '*')
		return n >= pl - 1 && strncasecmp(addr, pat, pl - 1) == 0;
	return n == pl && strncasecmp(addr, pat, n) == 0;
}

static bool list_has(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

bool mx_crm_public_domain(const struct mx_crm_policy *p, const char *domain)
{
	const char *const *v = p->public_domains ? p->public_domains
						 : mx_crm_public_domains;
	size_t n = p->public_domains ? p->npublic : mx_crm_npublic_domains;

	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(v[i]);

		if (l >= 2 && v[i][l - 1] == '*' && v[i][l - 2] == '.') {
			/* "hotmail.*": hotmail.com, hotmail.co.uk */
			if (strncasecmp(domain, v[i], l - 1) == 0 &&
			    domain[l - 1] != '\0')
				return true;
		} else if (strcasecmp(domain, v[i]) == 0) {
			return true;
		}
	}
	return false;
}

bool mx_crm_impersonal_addr(const struct mx_crm_policy *p, const char *addr)
{
	const char *const *v = p->impersonal ? p->impersonal : mx_crm_impersonal;
	size_t n = p->impersonal ? p->nimpersonal : mx_crm_nimpersonal;

	for (size_t i = 0; i < n; i++)
		if (local_matches(addr, v[i]))
			return true;
	if (p->roles_off)
		return false;
	v = p->roles ? p->roles : mx_crm_roles;
	n = p->roles ? p->nroles : mx_crm_nroles;
	for (size_t i = 0; i < n; i++)
		if (local_matches(addr, v[i]))
			return true;
	return false;
}

bool mx_crm_blocked(const struct mx_crm_policy *p, const char *addr)
{
	const char *dom = domain_of(addr);
	size_t dl = strlen(dom);

	if (addr == NULL || list_has(p->own, p->nown, addr))
		return false;
	for (size_t i = 0; i < p->nblock; i++) {
		const char *b = p->blocklist[i];

		if (b[0] == '@') {
			size_t bl = strlen(b + 1);

			/* the domain itself, or a subdomain of it */
			if (strcasecmp(dom, b + 1) == 0 ||
			    (dl > bl && dom[dl - bl - 1] == '.' &&
			     strcasecmp(dom + dl - bl, b + 1) == 0))
				return true;
		} else if (strcmp(addr, b) == 0) {
			return true;
		}
	}
	return false;
}

const struct mx_crm_contact *mx_crm_resolve(const struct mx_crm_hit *v,
					    size_t n)
{
	const struct mx_crm_contact *best = NULL;
	enum mx_crm_how best_how = 0;

	for (size_t i = 0; i < n; i++) {
		const struct mx_crm_contact *c = v[i].c;

		if (v[i].how == MX_CRM_TOMBSTONE || c == NULL)
			continue;
		if (best == NULL ||
		    /* rule 2: primary beats additional */
		    (v[i].how == MX_CRM_PRIMARY && best_how != MX_CRM_PRIMARY) ||
		    /* rules 3, 4: of the same kind, the first created */
		    (v[i].how == best_how &&
		     (c->created < best->created ||
		      (c->created == best->created &&
		       strcmp(c->id, best->id) < 0)))) {
			best = c;
			best_how = v[i].how;
		}
	}
	return best;
}

/* The effective organisation domain list (rule 10): P's, or the domains
 * of P's own addresses; public domains never count. */
static bool org_domain(const struct mx_crm_policy *p, const char *dom)
{
	if (*dom == '\0' || mx_crm_public_domain(p, dom))
		return false;
	if (p->norg) {
		for (size_t i = 0; i < p->norg; i++)
			if (strcasecmp(p->org_domains[i], dom) == 0)
				return true;
		return false;
	}
	for (size_t i = 0; i < p->nown; i++)
		if (strcasecmp(domain_of(p->own[i]), dom) == 0)
			return true;
	return false;
}

/* Calls FN for every participant of M (From, To, Cc, Bcc, in order);
 * stops at the first true and returns it. */
static bool any_participant(const struct mx_crm_policy *p,
			    const struct mx_crm_msg *m,
			    bool (*fn)(const struct mx_crm_policy *,
				       const char *))
{
	if (m->from && fn(p, m->from))
		return true;
	for (size_t i = 0; i < m->nto; i++)
		if (m->to[i] && fn(p, m->to[i]))
			return true;
	for (size_t i = 0; i < m->ncc; i++)
		if (m->cc[i] && fn(p, m->cc[i]))
			return true;
	for (size_t i = 0; i < m->nbcc; i++)
		if (m->bcc[i] && fn(p, m->bcc[i]))
			return true;
	return false;
}

static bool external(const struct mx_crm_policy *p, const char *a)
{
	return !org_domain(p, domain_of(a));
}

static bool is_own(const struct mx_crm_policy *p, const char *a)
{
	return list_has(p->own, p->nown, a);
}

/* Whether ADDR has a tombstone (a contact the CRM deleted). */
static bool tombstoned(const struct mx_crm_hit *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].how == MX_CRM_TOMBSTONE)
			return true;
	return false;
}

/* Looks ADDR up and resolves it; *TOMB_R (may be NULL) whether it has a
 * tombstone.  -1 on a lookup error. */
static int resolve_addr(mx_crm_lookup_fn *lookup, void *ctx, const char *addr,
			const struct mx_crm_contact **c_r, bool *tomb_r)
{
	const struct mx_crm_hit *v = NULL;
	size_t n = 0;

	*c_r = NULL;
	if (lookup(ctx, addr, &v, &n) != 0)
		return -1;
	*c_r = mx_crm_resolve(v, n);
	if (tomb_r)
		*tomb_r = tombstoned(v, n);
	return 0;
}

static int mention(struct mx_crm_result *r, mx_crm_lookup_fn *lookup,
		   void *ctx, const struct mx_crm_policy *p, const char *addr)
{
	const struct mx_crm_contact *c;

	if (addr == NULL || is_own(p, addr))
		return 0;
	if (resolve_addr(lookup, ctx, addr, &c, NULL) != 0)
		return -1;
	if (c == NULL || (r->contact && strcmp(c->id, r->contact) == 0))
		return 0;
	for (size_t i = 0; i < r->nmentions; i++)
		if (strcmp(r->mentions[i], c->id) == 0)
			return 0;
	if (r->nmentions < MX_CRM_MAX_MENTIONS)
		r->mentions[r->nmentions++] = c->id;
	return 0;
}

/* The address of a new contact, or NULL: an external, personal party
 * without a tombstone (rules 10, 11 and the tombstones). */
static int creatable(const struct mx_crm_policy *p, mx_crm_lookup_fn *lookup,
		     void *ctx, const char *addr, const char **out)
{
	const struct mx_crm_contact *c;
	bool tomb;

	*out = NULL;
	if (!p->auto_create || addr == NULL || is_own(p, addr) ||
	    !external(p, addr) || mx_crm_impersonal_addr(p, addr) ||
	    mx_crm_blocked(p, addr))
		return 0;
	if (resolve_addr(lookup, ctx, addr, &c, &tomb) != 0)
		return -1;
	if (c == NULL && !tomb)
		*out = addr;
	return 0;
}

static bool blocked_fn(const struct mx_crm_policy *p, const char *a)
{
	return mx_crm_blocked(p, a);
}

static bool other_party_fn(const struct mx_crm_policy *p, const char *a)
{
	return !is_own(p, a);
}

int mx_crm_decide(const struct mx_crm_policy *p, const struct mx_crm_msg *m,
		  mx_crm_lookup_fn *lookup, void *ctx,
		  struct mx_crm_result *r)
{
	const struct mx_crm_contact *c = NULL;

	memset(r, 0, sizeof(*r));
	r->sent = m->from && is_own(p, m->from);
	if (!any_participant(p, m, other_party_fn)) {
		r->outcome = MX_CRM_NO_PARTY;
		return 0;
	}
	/* rule 8 */
	if (p->connected && m->date < p->connected && !p->history) {
		r->outcome = MX_CRM_BEFORE_CONNECT;
		return 0;
	}
	/* rule 10: every participant in the organisation */
	if (!any_participant(p, m, external)) {
		r->outcome = MX_CRM_INTERNAL;
		return 0;
	}
	/* rule 12 */
	if (any_participant(p, m, blocked_fn)) {
		r->outcome = MX_CRM_BLOCKED;
		return 0;
	}
	if (!r->sent) {
		/* rules 1 and 11: received mail belongs to its sender */
		r->party = m->from;
		if (m->from == NULL || m->bulk ||
		    mx_crm_impersonal_addr(p, m->from)) {
			r->outcome = MX_CRM_IMPERSONAL;
			return 0;
		}
		if (resolve_addr(lookup, ctx, m->from, &c, NULL) != 0)
			return -1;
	} else {
		/* rules 1, 6, 7: sent mail (a forward too) belongs to the
		 * first To that is a known contact */
		bool personal = false;

		for (size_t i = 0; i < m->nto && c == NULL; i++) {
			const char *a = m->to[i];

			if (a == NULL || is_own(p, a) ||
			    mx_crm_impersonal_addr(p, a))
				continue;
			personal = true;
			if (resolve_addr(lookup, ctx, a, &c, NULL) != 0)
				return -1;
			if (c)
				r->party = a;
		}
		if (!personal && m->thread_contact == NULL) {
			/* only impersonal or own addresses in To: nothing to
			 * link by (rule 5: never by Cc) */
			r->outcome = m->nto ? MX_CRM_IMPERSONAL
					    : MX_CRM_NO_CONTACT;
			goto mentions;
		}
	}
	/* rule 6: a thread already linked stays in its conversation */
	if (m->thread_contact) {
		r->outcome = MX_CRM_LINKED;
		r->contact = m->thread_contact;
	} else if (c) {
		r->outcome = MX_CRM_LINKED;
		r->contact = c->id;
	} else {
		r->outcome = MX_CRM_NO_CONTACT;
		if (!r->sent) {
			if (creatable(p, lookup, ctx, m->from, &r->create) != 0)
				return -1;
		} else {
			for (size_t i = 0; i < m->nto && r->create == NULL; i++) {
				if (m->to[i] == NULL || is_own(p, m->to[i]) ||
				    mx_crm_impersonal_addr(p, m->to[i]))
					continue;
				if (creatable(p, lookup, ctx, m->to[i],
					      &r->create) != 0)
					return -1;
				if (r->create)
					r->party = r->create;
				break; /* only the first personal To */
			}
		}
	}
mentions:
	/* rule 5: everyone else who is a contact is mentioned */
	if (r->sent && m->from == NULL)
		return 0;
	if (!r->sent && mention(r, lookup, ctx, p, m->from) != 0)
		return -1;
	for (size_t i = 0; i < m->nto; i++)
		if (mention(r, lookup, ctx, p, m->to[i]) != 0)
			return -1;
	for (size_t i = 0; i < m->ncc; i++)
		if (mention(r, lookup, ctx, p, m->cc[i]) != 0)
			return -1;
	for (size_t i = 0; i < m->nbcc; i++)
		if (mention(r, lookup, ctx, p, m->bcc[i]) != 0)
			return -1;
	return 0;
}
