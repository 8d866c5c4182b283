/* HTTP API bearer tokens (tokens.h): hashed in MX_DB_APITOKENS. */
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "auth/oauth.h"
#include "users/tokens.h"

void mx_apitoken_free(struct mx_apitoken *t)
{
	if (t == NULL)
		return;
	free(t->name);
	free(t->user);
	memset(t, 0, sizeof(*t));
}

void mx_apitokens_free(struct mx_apitoken *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mx_apitoken_free(&v[i]);
	free(v);
}

/* Printable UTF-8 of 1 to MAX bytes. */
static bool printable(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max || !mx_utf8_valid_str(s))
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

bool mx_api_user_valid(const char *s)
{
	return printable(s, 128);
}

json_t *mx_apitoken_json(const struct mx_apitoken *t)
{
	return json_pack("{s:I,s:s,s:s,s:b,s:I,s:o}", "id", (json_int_t)t->id,
			 "name", t->name ? t->name : "", "user", t->user,
			 "admin", t->admin, "created", (json_int_t)t->created,
			 "expires", t->expires ? json_integer(t->expires)
					       : json_null());
}

static int decode(const MDB_val *v, struct mx_apitoken *t,
		  struct mx_error *err)
{
	json_t *o = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	json_int_t id = 0, created = 0;
	json_t *expires = NULL;
	const char *name = "", *user = NULL;
	int admin = 0;
	int rc = MX_OK;

	memset(t, 0, sizeof(*t));
	if (o == NULL ||
	    json_unpack(o, "{s:I,s?s,s:s,s:b,s:I,s?o}", "id", &id, "name",
			&name, "user", &user, "admin", &admin, "created",
			&created, "expires", &expires) != 0 ||
	    (expires && !json_is_null(expires) && !json_is_integer(expires))) {
		rc = mx_error_set(err, MX_ERR_STORE, "corrupt API token record");
		goto out;
	}
	t->id = (uint64_t)id;
	t->name = mx_strdup(name);
	t->user = mx_strdup(user);
	t->admin = admin;
	t->created = created;
	t->expires = json_integer_value(expires); /* null: 0, never */
	if (t->name == NULL || t->user == NULL) {
		mx_apitoken_free(t);
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
out:
	json_decref(o);
	return rc;
}

struct create_ctx {
	const uint8_t *hash;
	struct mx_apitoken *rec;
};

static int create_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct create_ctx *c = vctx;
	uint8_t hk[33], ik[9];
	json_t *o = NULL;
	char *s = NULL;
	int rc;

	/* A MAP_FULL retry rolls the counter back: take it afresh. */
	rc = mx_db_next_id(t, "next_apitoken_id", &c->rec->id, err);
	if (rc)
		return rc;
	o = mx_apitoken_json(c->rec);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	hk[0] = 'h';
	memcpy(hk + 1, c->hash, 32);
	ik[0] = 'i';
	mx_put_be64(ik + 1, c->rec->id);
	rc = mx_db_put(t, MX_DB_APITOKENS, hk, sizeof(hk), s, strlen(s), 0, err);
	if (rc == MX_OK)
		rc = mx_db_put(t, MX_DB_APITOKENS, ik, sizeof(ik), c->hash, 32,
			       0, err);
	free(s);
	return rc;
}

int mx_apitoken_create(struct mx_store *st, const char *user, bool admin,
		       uint64_t expires_days, const char *name,
		       char token_r[MX_APITOKEN_LEN + 1],
		       struct mx_apitoken *info_r, struct mx_error *err)
{
	struct mx_apitoken rec = {0};
	struct create_ctx c = {NULL, &rec};
	char tok[MX_APITOKEN_LEN + 8];
	uint8_t hash[32];
	int rc;

	mx_error_clear(err);
	if (!mx_api_user_valid(user))
		return mx_error_set(err, MX_ERR_INVAL, "bad user id: 1 to 128 "
				    "bytes of UTF-8 without control characters");
	if (name && *name && !printable(name, 64))
		return mx_error_set(err, MX_ERR_INVAL, "bad token name: at most "
				    "64 bytes of UTF-8 without control characters");
	if (expires_days > MX_APITOKEN_MAX_DAYS)
		return mx_error_set(err, MX_ERR_INVAL, "expiry of %llu days: at "
				    "most %d", (unsigned long long)expires_days,
				    MX_APITOKEN_MAX_DAYS);
	memcpy(tok, MX_APITOKEN_PREFIX, 4);
	if (!mx_random_b64url(32, tok + 4, sizeof(tok) - 4) ||
	    strlen(tok) != MX_APITOKEN_LEN)
		return mx_error_set(err, MX_ERR_IO, "no random bytes for a token");
	mx_sha256(tok, MX_APITOKEN_LEN, hash);
	c.hash = hash;
	rec.user = mx_strdup(user);
	rec.name = mx_strdup(name ? name : "");
	if (rec.user == NULL || rec.name == NULL) {
		mx_apitoken_free(&rec);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	rec.admin = admin;
	rec.created = mx_wall_s();
	rec.expires = expires_days ? rec.created + (int64_t)expires_days * 86400
				   : 0;
	rc = mx_store_write(st, create_fn, &c, err);
	if (rc == MX_OK) {
		memcpy(token_r, tok, MX_APITOKEN_LEN + 1);
		if (info_r) {
			*info_r = rec;
			memset(&rec, 0, sizeof(rec));
		}
	}
	mx_apitoken_free(&rec);
	OPENSSL_cleanse(tok, sizeof(tok));
	return rc;
}

/* The shape of a token, checked before any lookup. */
static bool token_shaped(const char *s)
{
	if (s == NULL || strlen(s) != MX_APITOKEN_LEN ||
	    strncmp(s, MX_APITOKEN_PREFIX, 4) != 0)
		return false;
	for (s += 4; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

int mx_apitoken_verify(struct mx_store *st, const char *token, int64_t now,
		       struct mx_apitoken *info_r, struct mx_error *err)
{
	struct mx_apitoken rec;
	struct mx_txn t;
	uint8_t hk[33];
	MDB_val v;
	int rc;

	mx_error_clear(err);
	memset(info_r, 0, sizeof(*info_r));
	if (!token_shaped(token))
		return mx_error_set(err, MX_ERR_AUTH, "unknown or revoked token");
	hk[0] = 'h';
	mx_sha256(token, MX_APITOKEN_LEN, hk + 1);
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_db_get(&t, MX_DB_APITOKENS, hk, sizeof(hk), &v, err);
	if (rc == MX_ERR_NOTFOUND)
		rc = mx_error_set(err, MX_ERR_AUTH, "unknown or revoked token");
	if (rc == MX_OK)
		rc = decode(&v, &rec, err);
	mx_txn_abort(&t);
	if (rc)
		return rc;
	if (rec.expires && rec.expires <= now) {
		mx_apitoken_free(&rec);
		return mx_error_set(err, MX_ERR_AUTH, "token expired");
	}
	*info_r = rec;
	return MX_OK;
}

struct list_ctx {
	struct mx_apitoken *v;
	size_t n, cap;
};

static int list_fn(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		   void *vctx, struct mx_error *err)
{
	struct list_ctx *c = vctx;
	uint8_t hk[33];
	MDB_val rv;
	int rc;

	if (k->mv_size != 9 || v->mv_size != 32)
		return mx_error_set(err, MX_ERR_STORE, "API tokens: corrupt "
				    "id entry (%zu bytes)", v->mv_size);
	hk[0] = 'h';
	memcpy(hk + 1, v->mv_data, 32);
	rc = mx_db_get(t, MX_DB_APITOKENS, hk, sizeof(hk), &rv, err);
	if (rc == MX_ERR_NOTFOUND)
		return MX_OK; /* half an entry: nothing to list */
	if (rc)
		return rc;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		struct mx_apitoken *nv = realloc(c->v, cap * sizeof(*nv));

		if (nv == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		c->v = nv;
		c->cap = cap;
	}
	rc = decode(&rv, &c->v[c->n], err);
	if (rc == MX_OK)
		c->n++;
	return rc;
}

int mx_apitoken_list(struct mx_store *st, struct mx_apitoken **v_r,
		     size_t *n_r, struct mx_error *err)
{
	struct list_ctx c = {0};
	struct mx_txn t;
	int rc;

	mx_error_clear(err);
	*v_r = NULL;
	*n_r = 0;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_walk(&t, MX_DB_APITOKENS, "i", 1, NULL, 0, 0,
			   "API tokens", list_fn, &c, err);
	mx_txn_abort(&t);
	if (rc) {
		mx_apitokens_free(c.v, c.n);
		return rc;
	}
	*v_r = c.v;
	*n_r = c.n;
	return MX_OK;
}

static int revoke_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	const uint64_t *id = vctx;
	uint8_t ik[9], hk[33];
	MDB_val v;
	int rc;

	ik[0] = 'i';
	mx_put_be64(ik + 1, *id);
	rc = mx_db_get(t, MX_DB_APITOKENS, ik, sizeof(ik), &v, err);
	if (rc == MX_ERR_NOTFOUND)
		return mx_error_set(err, MX_ERR_NOTFOUND, "no API token %llu",
				    (unsigned long long)*id);
	if (rc)
		return rc;
	if (v.mv_size != 32)
		return mx_error_set(err, MX_ERR_STORE, "API token %llu: corrupt "
				    "id entry", (unsigned long long)*id);
	hk[0] = 'h';
	memcpy(hk + 1, v.mv_data, 32);
	rc = mx_db_del(t, MX_DB_APITOKENS, hk, sizeof(hk), NULL, 0, err);
	if (rc == MX_ERR_NOTFOUND)
		rc = MX_OK;
	if (rc == MX_OK)
		rc = mx_db_del(t, MX_DB_APITOKENS, ik, sizeof(ik), NULL, 0, err);
	return rc;
}

int mx_apitoken_revoke(struct mx_store *st, uint64_t id, struct mx_error *err)
{
	mx_error_clear(err);
	return mx_store_write(st, revoke_fn, &id, err);
}

bool mx_api_may_use(const struct mx_account *a, const char *user, bool admin)
{
	if (admin)
		return true;
	if (a->access == MX_ACCESS_ALL)
		return true;
	if (user == NULL)
		return false;
	if (a->owner && strcmp(a->owner, user) == 0)
		return true;
	if (a->access == MX_ACCESS_SELECTED)
		for (size_t i = 0; i < a->nallowed; i++)
			if (a->allowed[i] && strcmp(a->allowed[i], user) == 0)
				return true;
	return false;
}
