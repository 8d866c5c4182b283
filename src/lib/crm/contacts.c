/*
 * The contact store (contacts.h): records by CRM id and an index by
 * address for the linking rules.
 */
#include <stdlib.h>
#include <string.h>

#include "crm/contacts.h"
#include "mime/mime.h"

static const char *const known_members[] = {
	"id", "email", "emails", "created", "owner", "assigned",
	"categories", "company", "workspace", "deleted", NULL,
};

static bool text_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	return n > 0 && n <= max && mx_utf8_valid_str(s) && mx_term_safe(s);
}

/* The normalized form of address S, or NULL (not an address). */
static char *norm_addr(const char *s)
{
	char *a;

	if (strlen(s) > 320 || !mx_utf8_valid_str(s) || !mx_term_safe(s) ||
	    strpbrk(s, " \t<>,;") != NULL)
		return NULL;
	a = mx_addr_normalize(s);
	/* The stored form must pass this check again: IDN labels decode to
	 * UTF-8, which may be longer than what was written. */
	if (a && (a[0] == '@' || a[strlen(a) - 1] == '@' || strlen(a) > 320 ||
		  !mx_term_safe(a))) {
		free(a);
		return NULL;
	}
	return a;
}

/* An array of short strings (users, categories) checked in place. */
static int check_strings(json_t *c, const char *name, struct mx_error *err)
{
	json_t *v = json_object_get(c, name), *e;
	size_t i;

	if (v == NULL)
		return MX_OK;
	if (!json_is_array(v) || json_array_size(v) > 256)
		return mx_error_set(err, MX_ERR_INVAL, "contact: \"%s\" must be "
				    "an array of at most 256 strings", name);
	json_array_foreach(v, i, e)
		if (!json_is_string(e) || !text_ok(json_string_value(e), 128))
			return mx_error_set(err, MX_ERR_INVAL, "contact: \"%s\"[%zu] "
					    "must be 1 to 128 bytes of printable "
					    "UTF-8", name, i);
	return MX_OK;
}

int mx_contact_check(json_t *c, int64_t now, json_t **out_r,
		     struct mx_error *err)
{
	const char *k, *id, *email;
	json_t *v, *o = NULL, *emails;
	char *primary = NULL;
	int rc;

	*out_r = NULL;
	if (!json_is_object(c))
		return mx_error_set(err, MX_ERR_INVAL, "contact: a JSON object "
				    "is expected");
	json_object_foreach(c, k, v) {
		size_t i;

		for (i = 0; known_members[i]; i++)
			if (strcmp(known_members[i], k) == 0)
				break;
		if (known_members[i] == NULL)
			return mx_error_set(err, MX_ERR_INVAL, "contact: unknown "
					    "member \"%.64s\"", k);
	}
	v = json_object_get(c, "id");
	if (!json_is_string(v) || !text_ok(id = json_string_value(v),
					   MX_CONTACT_ID_MAX))
		return mx_error_set(err, MX_ERR_INVAL, "contact: \"id\" must be "
				    "1 to %d bytes of printable UTF-8",
				    MX_CONTACT_ID_MAX);
	v = json_object_get(c, "email");
	if (!json_is_string(v) ||
	    (primary = norm_addr(email = json_string_value(v))) == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "contact %s: \"email\" "
				    "must be an address (local@domain)", id);
	for (const char *const *s = (const char *const[]){"owner", "company",
							  "workspace", NULL};
	     *s; s++) {
		v = json_object_get(c, *s);
		if (v && (!json_is_string(v) ||
			  !text_ok(json_string_value(v), 253))) {
			rc = mx_error_set(err, MX_ERR_INVAL, "contact %s: \"%s\" "
					  "must be 1 to 253 bytes of printable "
					  "UTF-8", id, *s);
			goto fail;
		}
	}
	if ((rc = check_strings(c, "assigned", err)) ||
	    (rc = check_strings(c, "categories", err)))
		goto fail;
	v = json_object_get(c, "created");
	if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
		rc = mx_error_set(err, MX_ERR_INVAL, "contact %s: \"created\" "
				  "must be a unix time", id);
		goto fail;
	}
	v = json_object_get(c, "deleted");
	if (v && !json_is_boolean(v)) {
		rc = mx_error_set(err, MX_ERR_INVAL, "contact %s: \"deleted\" "
				  "must be true or false", id);
		goto fail;
	}
	o = json_deep_copy(c);
	emails = json_array();
	if (o == NULL || emails == NULL) {
		json_decref(emails);
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto fail;
	}
	json_object_set_new(o, "email", json_string(primary));
	v = json_object_get(c, "emails");
	if (v) {
		json_t *e;
		size_t i;

		if (!json_is_array(v) ||
		    json_array_size(v) > MX_CONTACT_MAX_EMAILS) {
			json_decref(emails);
			rc = mx_error_set(err, MX_ERR_INVAL, "contact %s: \"emails\""
					  " must be an array of at most %d "
					  "addresses", id, MX_CONTACT_MAX_EMAILS);
			goto fail;
		}
		json_array_foreach(v, i, e) {
			char *a = json_is_string(e) ? norm_addr(json_string_value(e))
						    : NULL;
			bool dup = false;
			json_t *x;
			size_t j;

			if (a == NULL) {
				json_decref(emails);
				rc = mx_error_set(err, MX_ERR_INVAL, "contact %s: "
						  "\"emails\"[%zu] is not an "
						  "address", id, i);
				goto fail;
			}
			json_array_foreach(emails, j, x)
				dup = dup || strcmp(json_string_value(x), a) == 0;
			if (!dup && strcmp(a, primary) != 0)
				json_array_append_new(emails, json_string(a));
			free(a);
		}
	}
	json_object_set_new(o, "emails", emails);
	if (json_object_get(o, "created") == NULL)
		json_object_set_new(o, "created", json_integer(now));
	if (json_is_false(json_object_get(o, "deleted")))
		json_object_del(o, "deleted");
	free(primary);
	*out_r = o;
	return MX_OK;
fail:
	free(primary);
	json_decref(o);
	return rc;
}

/* ---- the address index ---- */

static int addr_key(const char *addr, const char *id, char *k, size_t cap,
		    size_t *n_r, struct mx_error *err)
{
	size_t al = strlen(addr), il = strlen(id);

	if (al + 1 + il > cap)
		return mx_error_set(err, MX_ERR_INVAL, "contact %s: address %s "
				    "too long", id, addr);
	memcpy(k, addr, al);
	k[al] = '\0';
	memcpy(k + al + 1, id, il);
	*n_r = al + 1 + il;
	return MX_OK;
}

static int index_put(struct mx_txn *t, const char *addr, const char *id,
		     char kind, struct mx_error *err)
{
	char k[480];
	size_t n;
	int rc = addr_key(addr, id, k, sizeof(k), &n, err);

	return rc ? rc : mx_db_put(t, MX_DB_CONTACT_ADDRS, k, n, &kind, 1, 0,
				   err);
}

static int index_del(struct mx_txn *t, const char *addr, const char *id,
		     struct mx_error *err)
{
	char k[480];
	size_t n;
	int rc = addr_key(addr, id, k, sizeof(k), &n, err);

	if (rc == MX_OK)
		rc = mx_db_del(t, MX_DB_CONTACT_ADDRS, k, n, NULL, 0, err);
	return rc == MX_ERR_NOTFOUND ? MX_OK : rc;
}

/* Calls FN(addr, kind) for the primary and every additional address. */
static int each_addr(json_t *c, const char *id, struct mx_txn *t,
		     int (*fn)(struct mx_txn *, const char *, const char *,
			       char, struct mx_error *),
		     struct mx_error *err)
{
	json_t *e;
	size_t i;
	int rc;

	rc = fn(t, json_string_value(json_object_get(c, "email")), id, 'p',
		err);
	json_array_foreach(json_object_get(c, "emails"), i, e)
		if (rc == MX_OK)
			rc = fn(t, json_string_value(e), id, 'a', err);
	return rc;
}

static int unindex_fn(struct mx_txn *t, const char *addr, const char *id,
		      char kind, struct mx_error *err)
{
	(void)kind;
	return index_del(t, addr, id, err);
}

static int tomb_fn(struct mx_txn *t, const char *addr, const char *id,
		   char kind, struct mx_error *err)
{
	(void)kind;
	return index_put(t, addr, id, 't', err);
}

/* Lifts every tombstone of ADDR (whoever's). */
static int untomb_walk(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		       void *ctx, struct mx_error *err)
{
	(void)t;
	(void)k;
	(void)ctx;
	(void)err;
	return v->mv_size == 1 && *(const char *)v->mv_data == 't'
		       ? MX_WALK_DELETE
		       : MX_OK;
}

static int index_fn(struct mx_txn *t, const char *addr, const char *id,
		    char kind, struct mx_error *err)
{
	size_t al = strlen(addr);
	char pre[330];
	int rc;

	if (al + 1 > sizeof(pre))
		return mx_error_set(err, MX_ERR_INVAL, "address too long");
	memcpy(pre, addr, al + 1);
	rc = mx_store_walk(t, MX_DB_CONTACT_ADDRS, pre, al + 1, NULL, 0, 0,
			   "contact addresses", untomb_walk, NULL, err);
	return rc ? rc : index_put(t, addr, id, kind, err);
}

int mx_contact_get(struct mx_txn *t, const char *id, json_t **c_r,
		   struct mx_error *err)
{
	MDB_val v;
	int rc;

	*c_r = NULL;
	rc = mx_db_get(t, MX_DB_CONTACTS, id, strlen(id), &v, err);
	if (rc == MX_ERR_NOTFOUND)
		return mx_error_set(err, MX_ERR_NOTFOUND, "no contact %s", id);
	if (rc)
		return rc;
	*c_r = json_loadb(v.mv_data, v.mv_size, 0, NULL);
	if (*c_r == NULL)
		return mx_error_set(err, MX_ERR_STORE, "corrupt contact record "
				    "%s", id);
	return MX_OK;
}

static int save(struct mx_txn *t, const char *id, json_t *c,
		struct mx_error *err)
{
	char *s = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS);
	int rc;

	if (s == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = mx_db_put(t, MX_DB_CONTACTS, id, strlen(id), s, strlen(s), 0, err);
	free(s);
	return rc;
}

int mx_contact_put(struct mx_txn *t, json_t *in, int64_t now,
		   bool *created_r, struct mx_error *err)
{
	json_t *c = NULL, *old = NULL;
	const char *id;
	int rc;

	if (created_r)
		*created_r = false;
	rc = mx_contact_check(in, now, &c, err);
	if (rc)
		return rc;
	id = json_string_value(json_object_get(c, "id"));
	rc = mx_contact_get(t, id, &old, err);
	if (rc == MX_OK) {
		if (json_object_get(in, "created") == NULL)
			json_object_set(c, "created",
					json_object_get(old, "created"));
		rc = each_addr(old, id, t, unindex_fn, err);
	} else if (rc == MX_ERR_NOTFOUND) {
		if (created_r)
			*created_r = true;
		rc = MX_OK;
	}
	if (rc == MX_OK)
		rc = each_addr(c, id, t, index_fn, err);
	if (rc == MX_OK)
		rc = save(t, id, c, err);
	json_decref(old);
	json_decref(c);
	return rc;
}

struct upsert_ctx {
	json_t *c;
	bool *created_r;
};

static int upsert_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct upsert_ctx *u = vctx;

	return mx_contact_put(t, u->c, mx_wall_s(), u->created_r, err);
}

int mx_contact_upsert(struct mx_store *st, json_t *c, bool *created_r,
		      struct mx_error *err)
{
	struct upsert_ctx u = {c, created_r};

	return mx_store_write(st, upsert_fn, &u, err);
}

struct del_ctx {
	const char *id;
	bool hard;
};

static int delete_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct del_ctx *d = vctx;
	json_t *c = NULL;
	int rc;

	rc = mx_contact_get(t, d->id, &c, err);
	if (rc)
		return rc;
	if (!d->hard) {
		json_object_set_new(c, "deleted", json_true());
		rc = save(t, d->id, c, err);
	} else {
		rc = each_addr(c, d->id, t, tomb_fn, err);
		if (rc == MX_OK)
			rc = mx_db_del(t, MX_DB_CONTACTS, d->id, strlen(d->id),
				       NULL, 0, err);
	}
	json_decref(c);
	return rc;
}

int mx_contact_delete(struct mx_store *st, const char *id, bool hard,
		      struct mx_error *err)
{
	struct del_ctx d = {id, hard};

	return mx_store_write(st, delete_fn, &d, err);
}

struct list_ctx {
	json_t *out;
	size_t limit;
	const char *after;
};

static int list_fn(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		   void *vctx, struct mx_error *err)
{
	struct list_ctx *l = vctx;
	json_t *c;

	(void)t;
	if (l->after && k->mv_size == strlen(l->after) &&
	    memcmp(k->mv_data, l->after, k->mv_size) == 0)
		return MX_OK; /* START is inclusive: skip AFTER itself */
	c = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	if (c == NULL)
		return mx_error_set(err, MX_ERR_STORE, "corrupt contact record");
	json_array_append_new(l->out, c);
	return l->limit && json_array_size(l->out) >= l->limit ? MX_WALK_STOP
							       : MX_OK;
}

int mx_contact_list(struct mx_txn *t, const char *after, size_t limit,
		    json_t *out, struct mx_error *err)
{
	struct list_ctx l = {out, limit ? json_array_size(out) + limit : 0,
			     after};

	return mx_store_walk(t, MX_DB_CONTACTS, NULL, 0, after,
			     after ? strlen(after) : 0, 0, "contacts", list_fn,
			     &l, err);
}

/* ---- import ---- */

struct import_ctx {
	json_t **v;
	size_t n;
	size_t first_line;
};

static int import_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct import_ctx *x = vctx;
	int64_t now = mx_wall_s();

	for (size_t i = 0; i < x->n; i++) {
		int rc = mx_contact_put(t, x->v[i], now, NULL, err);

		if (rc) {
			mx_error_prefix(err, "line %zu", x->first_line + i);
			return rc;
		}
	}
	return MX_OK;
}

int mx_contact_import(struct mx_store *st, FILE *fp, size_t *n_r,
		      struct mx_error *err)
{
	enum { BATCH = 1000 };
	json_t *v[BATCH];
	struct import_ctx x = {v, 0, 1};
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	int rc = MX_OK;

	*n_r = 0;
	for (;;) {
		json_error_t je;
		json_t *c, *checked = NULL;

		len = getline(&line, &cap, fp);
		if (len < 0 || x.n == BATCH) {
			rc = x.n ? mx_store_write(st, import_fn, &x, err) : MX_OK;
			for (size_t i = 0; i < x.n; i++)
				json_decref(v[i]);
			if (rc == MX_OK)
				*n_r += x.n;
			x.n = 0;
			x.first_line = lineno + 1;
			if (rc || len < 0)
				break;
		}
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0) {
			if (x.n == 0)
				x.first_line = lineno + 1;
			continue;
		}
		c = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &je);
		if (c == NULL)
			rc = mx_error_set(err, MX_ERR_INVAL, "line %zu: %s", lineno,
					  je.text);
		else if ((rc = mx_contact_check(c, 0, &checked, err)) != MX_OK)
			mx_error_prefix(err, "line %zu", lineno);
		json_decref(checked);
		checked = NULL;
		if (rc) {
			/* The lines before it are stored, then the error. */
			struct mx_error e2;

			json_decref(c);
			if (x.n && mx_store_write(st, import_fn, &x, &e2) == MX_OK)
				*n_r += x.n;
			break;
		}
		if (x.n == 0)
			x.first_line = lineno;
		v[x.n++] = c;
	}
	for (size_t i = 0; i < x.n; i++)
		json_decref(v[i]);
	if (rc == MX_OK && ferror(fp))
		rc = mx_error_set(err, MX_ERR_IO, "reading contacts: read error");
	free(line);
	return rc;
}

/* ---- the rule engine's lookup ---- */

/* Moves the last lookup's ids to KEPT; -1 on ENOMEM (then freed). */
static int lookup_clear(struct mx_contact_lookup *l)
{
	int rc = 0;

	if (l->nkept + l->n > l->capkept) {
		size_t cap = (l->capkept ? l->capkept : 8);
		char **v;

		while (cap < l->nkept + l->n)
			cap *= 2;
		v = realloc(l->kept, cap * sizeof(*v));
		if (v == NULL) {
			for (size_t i = 0; i < l->n; i++)
				free(l->ids[i]);
			l->n = 0;
			return -1;
		}
		l->kept = v;
		l->capkept = cap;
	}
	for (size_t i = 0; i < l->n; i++)
		l->kept[l->nkept++] = l->ids[i];
	l->n = 0;
	return rc;
}

void mx_contact_lookup_free(struct mx_contact_lookup *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ids[i]);
	l->n = 0;
	for (size_t i = 0; i < l->nkept; i++)
		free(l->kept[i]);
	free(l->kept);
	l->kept = NULL;
	l->nkept = l->capkept = 0;
	free(l->c);
	free(l->hits);
	free(l->ids);
	l->c = NULL;
	l->hits = NULL;
	l->ids = NULL;
	l->cap = 0;
}

static int lookup_walk(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		       void *vctx, struct mx_error *err)
{
	struct mx_contact_lookup *l = vctx;
	const char *key = k->mv_data, *nul = memchr(key, '\0', k->mv_size);
	char kind = v->mv_size == 1 ? *(const char *)v->mv_data : 0;
	struct mx_crm_contact *c;
	json_t *rec = NULL;
	char *id;
	int rc;

	if (nul == NULL || (kind != 'p' && kind != 'a' && kind != 't'))
		return mx_error_set(err, MX_ERR_STORE, "corrupt contact index");
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4;
		void *nc = realloc(l->c, cap * sizeof(*l->c));

		if (nc == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		l->c = nc;
		nc = realloc(l->hits, cap * sizeof(*l->hits));
		if (nc == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		l->hits = nc;
		nc = realloc(l->ids, cap * sizeof(*l->ids));
		if (nc == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		l->ids = nc;
		l->cap = cap;
	}
	id = mx_strndup(nul + 1, k->mv_size - (size_t)(nul + 1 - key));
	if (id == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	c = &l->c[l->n];
	memset(c, 0, sizeof(*c));
	c->id = id;
	l->ids[l->n] = id;
	l->n++;
	if (kind != 't') {
		rc = mx_contact_get(t, id, &rec, err);
		if (rc == MX_ERR_NOTFOUND)
			return mx_error_set(err, MX_ERR_STORE, "contact index "
					    "names missing contact %s", id);
		if (rc)
			return rc;
		c->created = json_integer_value(json_object_get(rec, "created"));
		c->soft_deleted = json_is_true(json_object_get(rec, "deleted"));
		json_decref(rec);
	}
	l->hits[l->n - 1].how = kind == 'p'   ? MX_CRM_PRIMARY
				: kind == 'a' ? MX_CRM_ADDITIONAL
					      : MX_CRM_TOMBSTONE;
	return MX_OK;
}

int mx_contact_lookup_fn(void *ctx, const char *addr,
			 const struct mx_crm_hit **v_r, size_t *n_r)
{
	struct mx_contact_lookup *l = ctx;
	size_t al = strlen(addr);
	struct mx_error e2;
	int rc;

	*v_r = NULL;
	*n_r = 0;
	if (lookup_clear(l) < 0)
		return -1;
	if (al >= 330)
		return 0; /* longer than any stored address */
	rc = mx_store_walk(l->t, MX_DB_CONTACT_ADDRS, addr, al + 1, NULL, 0,
			   0, "contact addresses", lookup_walk, l,
			   l->err ? l->err : &e2);
	if (rc)
		return -1;
	/* Hits point at the contacts now that the array will not move. */
	for (size_t i = 0; i < l->n; i++)
		l->hits[i].c = l->hits[i].how == MX_CRM_TOMBSTONE ? NULL
								   : &l->c[i];
	*v_r = l->hits;
	*n_r = l->n;
	return 0;
}
