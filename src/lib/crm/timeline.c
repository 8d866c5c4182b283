/*
 * Links and timelines (timeline.h): the rule engine's outcome for a
 * stored message, kept with an index by contact.
 */
#include <stdlib.h>
#include <string.h>

#include "crm/contacts.h"
#include "crm/link.h"
#include "crm/timeline.h"
#include "events/types.h"
#include "mime/mime.h"

const char *mx_crm_outcome_name(int o)
{
	switch ((enum mx_crm_outcome)o) {
	case MX_CRM_LINKED: return "linked";
	case MX_CRM_NO_CONTACT: return "no_contact";
	case MX_CRM_BEFORE_CONNECT: return "before_connect";
	case MX_CRM_INTERNAL: return "internal";
	case MX_CRM_IMPERSONAL: return "impersonal";
	case MX_CRM_BLOCKED: return "blocked";
	case MX_CRM_NO_PARTY: return "no_party";
	}
	return "unknown";
}

/* ---- the timeline index ---- */

static int tl_key(const char *contact, int64_t date, uint64_t id, char *k,
		  size_t *n_r, struct mx_error *err)
{
	size_t cl = strlen(contact);

	if (cl + 17 > 480)
		return mx_error_set(err, MX_ERR_INVAL, "contact id too long");
	memcpy(k, contact, cl + 1);
	mx_put_be64((uint8_t *)k + cl + 1, (uint64_t)(date < 0 ? 0 : date));
	mx_put_be64((uint8_t *)k + cl + 9, id);
	*n_r = cl + 17;
	return MX_OK;
}

static int tl_put(struct mx_txn *t, const char *contact, int64_t date,
		  uint64_t id, char role, struct mx_error *err)
{
	char k[480];
	size_t n;
	int rc = tl_key(contact, date, id, k, &n, err);

	return rc ? rc : mx_db_put(t, MX_DB_TIMELINE, k, n, &role, 1, 0, err);
}

static int tl_del(struct mx_txn *t, const char *contact, int64_t date,
		  uint64_t id, struct mx_error *err)
{
	char k[480];
	size_t n;
	int rc = tl_key(contact, date, id, k, &n, err);

	if (rc == MX_OK)
		rc = mx_db_del(t, MX_DB_TIMELINE, k, n, NULL, 0, err);
	return rc == MX_ERR_NOTFOUND ? MX_OK : rc;
}

int mx_crm_link_get(struct mx_txn *t, uint64_t id, json_t **link_r,
		    struct mx_error *err)
{
	uint8_t k[8];
	MDB_val v;
	int rc;

	*link_r = NULL;
	mx_put_be64(k, id);
	rc = mx_db_get(t, MX_DB_LINKS, k, 8, &v, err);
	if (rc)
		return rc;
	*link_r = json_loadb(v.mv_data, v.mv_size, 0, NULL);
	return *link_r ? MX_OK
		       : mx_error_set(err, MX_ERR_STORE, "corrupt link record");
}

/* Removes the timeline entries of the link record OLD of message ID. */
static int unlink_old(struct mx_txn *t, uint64_t id, json_t *old,
		      struct mx_error *err)
{
	int64_t date = json_integer_value(json_object_get(old, "date"));
	const char *c = json_string_value(json_object_get(old, "contact"));
	json_t *e;
	size_t i;
	int rc = MX_OK;

	if (c)
		rc = tl_del(t, c, date, id, err);
	json_array_foreach(json_object_get(old, "mentions"), i, e)
		if (rc == MX_OK && json_is_string(e))
			rc = tl_del(t, json_string_value(e), date, id, err);
	return rc;
}

/* ---- rule 6: the contact of the thread's first linked message ---- */

struct thread_ctx {
	uint64_t before;
	char *contact; /* malloc()ed */
};

static int thread_walk(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		       void *vctx, struct mx_error *err)
{
	struct thread_ctx *c = vctx;
	uint64_t id;
	json_t *link;
	int rc;

	(void)v;
	if (k->mv_size != 16)
		return MX_OK;
	id = mx_get_be64((const uint8_t *)k->mv_data + 8);
	if (id >= c->before)
		return MX_WALK_STOP;
	rc = mx_crm_link_get(t, id, &link, err);
	if (rc == MX_ERR_NOTFOUND)
		return MX_OK;
	if (rc)
		return rc;
	/* Only a message linked on its own, not through its thread: the
	 * conversation belongs to whom its first linked message did. */
	if (json_is_string(json_object_get(link, "contact")) &&
	    !json_is_true(json_object_get(link, "by_thread")))
		c->contact = mx_strdup(
			json_string_value(json_object_get(link, "contact")));
	json_decref(link);
	return c->contact ? MX_WALK_STOP : MX_OK;
}

/* ---- one message ---- */

struct addrv {
	const char **v;
	size_t n;
};

static int addrs_of(const struct mx_addr_list *l, struct addrv *out)
{
	out->v = calloc(l->n + 1, sizeof(*out->v));
	out->n = 0;
	if (out->v == NULL)
		return -1;
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].email)
			out->v[out->n++] = l->v[i].email;
	return 0;
}

/* Makes a contact of ADDR (auto-creation): id "mx-" + the first 16 hex
 * digits of its SHA-256, so that making it twice is one contact. */
static int auto_contact(struct mx_txn *t, uint32_t account_id,
			const char *addr, char id[20], struct mx_error *err)
{
	uint8_t sha[32];
	json_t *c;
	int rc;
	bool created = false;

	mx_sha256(addr, strlen(addr), sha);
	memcpy(id, "mx-", 3);
	mx_hex(sha, 8, id + 3);
	c = json_pack("{s:s,s:s}", "id", id, "email", addr);
	if (c == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = mx_contact_put(t, c, mx_wall_s(), &created, err);
	json_decref(c);
	if (rc == MX_OK && created) {
		json_t *x = json_pack("{s:s,s:s,s:b}", "contact", id, "email",
				      addr, "auto", 1);

		rc = mx_store_event(t, "contact.created", account_id, 0, 0, x,
				    err);
		json_decref(x);
	}
	return rc;
}

int mx_crm_link_msg(struct mx_txn *t, const struct mx_account *a,
		    const struct mx_msg *m, const struct mx_crm_opts *o,
		    enum mx_crm_change *change_r, struct mx_error *err)
{
	struct addrv from = {0}, to = {0}, cc = {0}, bcc = {0};
	const char *own[2];
	struct mx_crm_policy p = {0};
	struct mx_crm_msg cm = {0};
	struct mx_crm_result r;
	struct mx_contact_lookup lk = {0};
	struct thread_ctx tc = {0};
	const char *old_contact, *contact;
	char *own0 = NULL, *own1 = NULL, made[20];
	json_t *old = NULL, *link = NULL, *mentions = NULL;
	bool by_thread = false;
	uint8_t mk[8];
	char *s = NULL;
	int64_t date;
	int rc;

	if (change_r)
		*change_r = MX_CRM_SAME;
	if (addrs_of(&m->p.from, &from) < 0 || addrs_of(&m->p.to, &to) < 0 ||
	    addrs_of(&m->p.cc, &cc) < 0 || addrs_of(&m->p.bcc, &bcc) < 0) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	/* the mailbox's own addresses: its From address, and its login
	 * when that is an address */
	if (a->email && (own0 = mx_addr_normalize(a->email)))
		own[p.nown++] = own0;
	if (a->user && strchr(a->user, '@') &&
	    (own1 = mx_addr_normalize(a->user)))
		own[p.nown++] = own1;
	p.own = own;
	p.connected = a->created;
	p.history = o->history;
	p.auto_create = o->auto_create;
	date = m->p.date > 0 ? m->p.date : m->internaldate;
	cm.from = from.n ? from.v[0] : NULL;
	cm.to = to.v;
	cm.nto = to.n;
	cm.cc = cc.v;
	cm.ncc = cc.n;
	cm.bcc = bcc.v;
	cm.nbcc = bcc.n;
	cm.date = date;
	cm.bulk = (m->p.flags & MX_PARSED_BULK) != 0;
	if (m->thread_id) {
		uint8_t pre[8];

		tc.before = m->id;
		mx_put_be64(pre, m->thread_id);
		rc = mx_store_walk(t, MX_DB_THREADS, pre, 8, NULL, 0, 0,
				   "threads", thread_walk, &tc, err);
		if (rc)
			goto out;
		cm.thread_contact = tc.contact;
	}
	lk.t = t;
	lk.err = err;
	if (mx_crm_decide(&p, &cm, mx_contact_lookup_fn, &lk, &r) != 0) {
		rc = err->code ? err->code : MX_ERR_STORE;
		goto out;
	}
	if (r.outcome == MX_CRM_NO_CONTACT && r.create) {
		rc = auto_contact(t, a->id, r.create, made, err);
		if (rc)
			goto out;
		r.outcome = MX_CRM_LINKED;
		r.contact = made;
	}
	by_thread = r.outcome == MX_CRM_LINKED && tc.contact &&
		    r.contact == tc.contact;
	/* the new record */
	mentions = json_array();
	for (size_t i = 0; i < r.nmentions; i++)
		json_array_append_new(mentions, json_string(r.mentions[i]));
	link = json_pack("{s:s,s:b,s:I,s:o}", "outcome", mx_crm_outcome_name(r.outcome),
			 "sent", r.sent, "date", (json_int_t)date, "mentions",
			 mentions);
	if (link == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	if (r.outcome == MX_CRM_LINKED)
		json_object_set_new(link, "contact", json_string(r.contact));
	if (r.party)
		json_object_set_new(link, "party", json_string(r.party));
	if (by_thread)
		json_object_set_new(link, "by_thread", json_true());
	/* what was there */
	rc = mx_crm_link_get(t, m->id, &old, err);
	if (rc == MX_ERR_NOTFOUND)
		rc = MX_OK;
	else if (rc == MX_OK)
		rc = unlink_old(t, m->id, old, err);
	if (rc)
		goto out;
	old_contact = old ? json_string_value(json_object_get(old, "contact"))
			  : NULL;
	contact = json_string_value(json_object_get(link, "contact"));
	/* the new timeline entries */
	if (contact)
		rc = tl_put(t, contact, date, m->id, 'l', err);
	for (size_t i = 0; rc == MX_OK && i < r.nmentions; i++)
		rc = tl_put(t, r.mentions[i], date, m->id, 'm', err);
	if (rc)
		goto out;
	s = json_dumps(link, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	mx_put_be64(mk, m->id);
	rc = mx_db_put(t, MX_DB_LINKS, mk, 8, s, strlen(s), 0, err);
	if (rc)
		goto out;
	/* events: only when the link moved */
	if (contact && (!old_contact || strcmp(contact, old_contact) != 0)) {
		json_t *x = json_pack("{s:s,s:b}", "contact", contact, "sent",
				      r.sent);

		if (old_contact)
			json_object_set_new(x, "previous", json_string(old_contact));
		rc = mx_store_event(t, "message.linked", m->account_id, 0, m->id,
				    x, err);
		json_decref(x);
		if (change_r)
			*change_r = MX_CRM_CHANGED_LINK;
	} else if (!contact && old_contact) {
		json_t *x = json_pack("{s:s,s:s}", "contact", old_contact,
				      "reason", mx_crm_outcome_name(r.outcome));

		rc = mx_store_event(t, "message.unlinked", m->account_id, 0,
				    m->id, x, err);
		json_decref(x);
		if (change_r)
			*change_r = MX_CRM_CHANGED_UNLINK;
	} else if (change_r && old &&
		   !json_equal(json_object_get(old, "mentions"),
			       json_object_get(link, "mentions"))) {
		*change_r = MX_CRM_CHANGED_MENTIONS;
	}
out:
	free(s);
	json_decref(old);
	json_decref(link);
	mx_contact_lookup_free(&lk);
	free(tc.contact);
	free(own0);
	free(own1);
	free(from.v);
	free(to.v);
	free(cc.v);
	free(bcc.v);
	return rc;
}

/* ---- every message again ---- */

struct relink_ctx {
	const struct mx_crm_opts *o;
	struct mx_crm_relink_stats *s;
	uint32_t account_id;
	struct mx_account *accts;
	size_t naccts;
	uint64_t next;       /* the message id to go on from */
	size_t batch;
	bool done;
};

static int relink_walk(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		       void *vctx, struct mx_error *err)
{
	struct relink_ctx *c = vctx;
	const struct mx_account *a = NULL;
	enum mx_crm_change ch;
	struct mx_msg m;
	int rc;

	if (k->mv_size != 8)
		return MX_OK;
	if (c->batch == 1000) {
		c->next = mx_get_be64(k->mv_data);
		return MX_WALK_STOP;
	}
	c->batch++;
	rc = mx_msg_decode(v->mv_data, v->mv_size, &m, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < c->naccts && a == NULL; i++)
		if (c->accts[i].id == m.account_id)
			a = &c->accts[i];
	/* mail of removed accounts (kept mail) and other accounts: left */
	if (a && (c->account_id == 0 || c->account_id == m.account_id)) {
		rc = mx_crm_link_msg(t, a, &m, c->o, &ch, err);
		if (rc == MX_OK) {
			json_t *l = NULL;

			c->s->messages++;
			if (ch != MX_CRM_SAME)
				c->s->changed++;
			if (mx_crm_link_get(t, m.id, &l, err) == MX_OK) {
				const char *oc = json_string_value(
					json_object_get(l, "outcome"));

				if (json_object_get(l, "contact"))
					c->s->linked++;
				for (int i = 1; oc && i < 8; i++)
					if (strcmp(oc, mx_crm_outcome_name(i)) == 0)
						c->s->outcomes[i]++;
			}
			json_decref(l);
		}
	}
	mx_msg_free(&m);
	return rc;
}

static int relink_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct relink_ctx *c = vctx;
	uint8_t start[8];
	uint64_t from = c->next;
	int rc;

	c->batch = 0;
	c->next = 0;
	mx_put_be64(start, from);
	rc = mx_store_walk(t, MX_DB_MESSAGES, NULL, 0, start, 8, 0, "messages",
			   relink_walk, c, err);
	if (rc == MX_OK && c->next == 0)
		c->done = true;
	else if (rc)
		c->next = from; /* a retry (map full) starts the batch again */
	return rc;
}

int mx_crm_relink(struct mx_store *st, uint32_t account_id,
		  const struct mx_crm_opts *o, struct mx_crm_relink_stats *s,
		  struct mx_error *err)
{
	struct relink_ctx c = {.o = o, .s = s, .account_id = account_id,
			       .next = 1};
	struct mx_txn t;
	int rc;

	memset(s, 0, sizeof(*s));
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_account_list(&t, &c.accts, &c.naccts, err);
	mx_txn_abort(&t);
	if (rc)
		return rc;
	while (rc == MX_OK && !c.done) {
		struct mx_crm_relink_stats before = *s;

		rc = mx_store_write(st, relink_fn, &c, err);
		if (rc)
			*s = before;
	}
	for (size_t i = 0; i < c.naccts; i++)
		mx_account_free(&c.accts[i]);
	free(c.accts);
	return rc;
}

/* ---- timelines ---- */

struct tl_ctx {
	const uint32_t *ids;  /* NULL: every account */
	size_t nids;
	json_t *out;
	size_t limit, n;
	size_t plen;
	char *next;
	bool more;
};

static int tl_walk(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		   void *vctx, struct mx_error *err)
{
	struct tl_ctx *c = vctx;
	const uint8_t *kp = k->mv_data;
	struct mx_msg m;
	char idstr[17];
	uint64_t id;
	json_t *e, *from = json_null();
	int rc;

	if (k->mv_size != c->plen + 16 || v->mv_size != 1)
		return mx_error_set(err, MX_ERR_STORE, "corrupt timeline entry");
	if (c->n == c->limit) {
		/* the cursor: this entry's date and id, in hex */
		c->next = malloc(33);
		if (c->next == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		mx_hex(kp + c->plen, 16, c->next);
		return MX_WALK_STOP;
	}
	id = mx_get_be64(kp + c->plen + 8);
	rc = mx_store_msg_get(t, id, &m, err);
	if (rc == MX_ERR_NOTFOUND)
		return MX_OK; /* deleted meanwhile */
	if (rc)
		return rc;
	if (c->ids) {
		bool ok = false;

		for (size_t i = 0; i < c->nids && !ok; i++)
			ok = c->ids[i] == m.account_id;
		if (!ok) {
			mx_msg_free(&m);
			return MX_OK;
		}
	}
	mx_msg_id_str(id, idstr);
	if (m.p.from.n && m.p.from.v[0].email)
		from = json_string(m.p.from.v[0].email);
	e = json_pack("{s:s,s:i,s:I,s:s?,s:o,s:s}", "message", idstr, "account",
		      (int)m.account_id, "date",
		      (json_int_t)mx_get_be64(kp + c->plen), "subject",
		      m.p.subject, "from", from, "role",
		      *(const char *)v->mv_data == 'l' ? "linked" : "mentioned");
	mx_msg_free(&m);
	if (e == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	json_array_append_new(c->out, e);
	c->n++;
	return MX_OK;
}

int mx_crm_timeline(struct mx_txn *t, const char *contact, const char *cursor,
		    size_t limit, json_t *out, char **next_r,
		    struct mx_error *err)
{
	return mx_crm_timeline_of(t, contact, NULL, 0, cursor, limit, out,
				  next_r, err);
}

int mx_crm_timeline_of(struct mx_txn *t, const char *contact,
		       const uint32_t *ids, size_t nids, const char *cursor,
		       size_t limit, json_t *out, char **next_r,
		       struct mx_error *err)
{
	size_t cl = strlen(contact);
	struct tl_ctx c = {.ids = ids, .nids = nids, .out = out,
			   .limit = limit ? limit : 50, .plen = cl + 1};
	char start[480];
	size_t nstart = 0;
	int rc;

	*next_r = NULL;
	if (cl + 18 > sizeof(start))
		return mx_error_set(err, MX_ERR_INVAL, "contact id too long");
	memcpy(start, contact, cl + 1);
	if (cursor) {
		/* resume at the entry the cursor names: reverse walks start
		 * before their START, so START is that entry plus one */
		uint8_t b[16];

		if (strlen(cursor) != 32 || mx_unhex(cursor, b, 16) < 0)
			return mx_error_set(err, MX_ERR_INVAL, "bad cursor");
		memcpy(start + cl + 1, b, 16);
		/* the key plus a NUL sorts right after the key itself */
		start[cl + 17] = '\0';
		nstart = cl + 18;
	}
	rc = mx_store_walk(t, MX_DB_TIMELINE, start, cl + 1, nstart ? start : NULL,
			   nstart, MX_WALK_REVERSE, "timeline", tl_walk, &c, err);
	if (rc) {
		free(c.next);
		return rc;
	}
	*next_r = c.next;
	return MX_OK;
}
