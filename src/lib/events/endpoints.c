/*
 * Webhook endpoints as records in LMDB (MX_DB_WEBHOOK_EPS: u64 big-endian
 * id -> JSON), for the HTTP API's /v1/webhooks:
 *
 *   {"name","source":"api"|"config","url"[,"events":[...]],"enabled",
 *    "created","updated","rev"[,"secret":"v1:..."]}
 *
 * Endpoints made through the API ("api") are created, changed and deleted
 * here; their delivery name (the key of their cursor in MX_DB_WEBHOOKS) is
 * "#ID" and their secret is sealed with the store's key like an account's
 * password.  mxsync.conf's endpoints ("config") are registered by mxsyncd
 * at start so that the API lists them too: never their secret, and they
 * are changed in mxsync.conf only (MX_ERR_EXISTS here).  Ids come from
 * one counter and are never reused, so a new endpoint never inherits an
 * old cursor.  mxsyncd runs the API's endpoints through a mx_webhook_set.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/rand.h>

#include "events/events.h"
#include "events/types.h"
#include "secrets/secrets.h"

#define SECRET_MIN 16
#define SECRET_MAX 256
#define URL_MAX 2048

static void ep_key(uint64_t id, uint8_t k[8])
{
	mx_put_be64(k, id);
}

static void ep_name(uint64_t id, char *buf, size_t n)
{
	snprintf(buf, n, "#%" PRIu64, id);
}

static void ep_aad(uint64_t id, char *buf, size_t n)
{
	snprintf(buf, n, "webhook:%" PRIu64 ":secret", id);
}

static int ep_get(struct mx_txn *t, uint64_t id, json_t **rec_r,
		  struct mx_error *err)
{
	uint8_t k[8];
	MDB_val v;
	int rc;

	*rec_r = NULL;
	ep_key(id, k);
	rc = mx_db_get(t, MX_DB_WEBHOOK_EPS, k, 8, &v, err);
	if (rc == MX_ERR_NOTFOUND)
		return mx_error_set(err, MX_ERR_NOTFOUND, "no webhook %" PRIu64,
				    id);
	if (rc)
		return rc;
	*rec_r = json_loadb(v.mv_data, v.mv_size, 0, NULL);
	if (!json_is_object(*rec_r) ||
	    !json_is_string(json_object_get(*rec_r, "name"))) {
		json_decref(*rec_r);
		*rec_r = NULL;
		return mx_error_set(err, MX_ERR_STORE, "webhook %" PRIu64
				    ": corrupt record", id);
	}
	return MX_OK;
}

static int ep_put(struct mx_txn *t, uint64_t id, json_t *rec,
		  struct mx_error *err)
{
	char *s = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	uint8_t k[8];
	int rc;

	if (s == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "webhook %" PRIu64, id);
	ep_key(id, k);
	rc = mx_db_put(t, MX_DB_WEBHOOK_EPS, k, 8, s, strlen(s), 0, err);
	free(s);
	return rc;
}

static bool is_config(const json_t *rec)
{
	const char *src = json_string_value(json_object_get(rec, "source"));

	return src && strcmp(src, "config") == 0;
}

/* ---- checks ---- */

/* A secret is printable ASCII without spaces (it travels in shell
 * variables and headers of the receiver's framework), long enough not to
 * be guessed. */
static int check_secret(const char *s, struct mx_error *err)
{
	size_t n = strlen(s);

	if (n < SECRET_MIN || n > SECRET_MAX)
		return mx_error_set(err, MX_ERR_INVAL, "webhook secret must be "
				    "%d to %d characters, not %zu", SECRET_MIN,
				    SECRET_MAX, n);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return mx_error_set(err, MX_ERR_INVAL, "webhook secret "
					    "must be printable ASCII without "
					    "spaces");
	return MX_OK;
}

/*
 * The configuration checks of mx_webhook_check() for endpoint NAME with
 * URL and TYPES (what mxsync.conf's endpoints pass at daemon start), as
 * MX_ERR_INVAL: for the API these are values a caller sent.
 */
static int check_fields(const char *name, const char *url,
			const char *const *types, size_t ntypes,
			struct mx_error *err)
{
	struct mx_webhook_cfg cfg = {0};
	int rc;

	if (strlen(url) > URL_MAX)
		return mx_error_set(err, MX_ERR_INVAL, "webhook %s: URL longer "
				    "than %d bytes", name, URL_MAX);
	cfg.name = name;
	cfg.url = url;
	cfg.secret = "x"; /* checked by check_secret() */
	cfg.types = types;
	cfg.ntypes = ntypes;
	rc = mx_webhook_check(&cfg, err);
	if (rc && rc != MX_ERR_NOMEM)
		rc = err->code = MX_ERR_INVAL;
	return rc;
}

static json_t *types_json(const char *const *types, size_t ntypes)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < ntypes; i++)
		json_array_append_new(a, json_string(types[i]));
	return a;
}

/* The record's filter as a vector of borrowed strings (NULL: all). */
static const char **rec_types(json_t *rec, size_t *n_r)
{
	json_t *a = json_object_get(rec, "events"), *v;
	const char **out;
	size_t i;

	*n_r = 0;
	if (!json_is_array(a) || json_array_size(a) == 0)
		return NULL;
	out = calloc(json_array_size(a) + 1, sizeof(*out));
	if (out == NULL)
		return NULL;
	json_array_foreach(a, i, v)
		out[(*n_r)++] = json_string_value(v) ? json_string_value(v) : "";
	return out;
}

/* ---- create, update, delete ---- */

struct ep_write {
	const struct mx_webhook_ep_in *in;
	uint64_t id;
	char *gen_secret;  /* owned: generated on create */
};

static int count_api(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		     void *ctx, struct mx_error *err)
{
	size_t *n = ctx;

	(void)t;
	(void)k;
	(void)err;
	/* Cheaper than decoding: config records say so literally. */
	if (memmem(v->mv_data, v->mv_size, "\"source\":\"config\"", 17) == NULL)
		(*n)++;
	return MX_OK;
}

/* Seals SECRET into REC's "secret". */
static int put_secret(struct mx_txn *t, uint64_t id, json_t *rec,
		      const char *secret, struct mx_error *err)
{
	char aad[64], what[48], *sealed = NULL;
	int rc;

	ep_aad(id, aad, sizeof(aad));
	snprintf(what, sizeof(what), "webhook #%" PRIu64, id);
	rc = mx_store_seal(t->st, what, aad, secret, &sealed, err);
	if (rc)
		return rc;
	json_object_set_new(rec, "secret", json_string(sealed));
	free(sealed);
	return MX_OK;
}

static int create_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct ep_write *c = vctx;
	const struct mx_webhook_ep_in *in = c->in;
	const char *secret = in->secret;
	char name[32];
	size_t napi = 0;
	int64_t now = mx_wall_s();
	json_t *rec;
	int rc;

	rc = mx_store_walk(t, MX_DB_WEBHOOK_EPS, NULL, 0, NULL, 0, 0,
			   "webhook endpoints", count_api, &napi, err);
	if (rc)
		return rc;
	if (napi >= MX_WEBHOOK_EPS_MAX)
		return mx_error_set(err, MX_ERR_INVAL, "at most %d webhook "
				    "endpoints can be made through the API: "
				    "delete one first", MX_WEBHOOK_EPS_MAX);
	/* The id is taken before the checks so that their messages name
	 * the endpoint; a failed check aborts the transaction and the
	 * counter with it. */
	rc = mx_db_next_id(t, "next_webhook", &c->id, err);
	if (rc)
		return rc;
	ep_name(c->id, name, sizeof(name));
	if (in->url == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "webhook: a URL is "
				    "required");
	rc = check_fields(name, in->url, in->types, in->ntypes, err);
	if (rc)
		return rc;
	if (secret) {
		rc = check_secret(secret, err);
		if (rc)
			return rc;
	} else {
		unsigned char raw[24];
		char hex[49];

		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return mx_error_set(err, MX_ERR_NOMEM, "webhook: no "
					    "random bytes for a secret");
		mx_hex(raw, sizeof(raw), hex);
		if (c->gen_secret == NULL &&
		    (c->gen_secret = malloc(6 + sizeof(hex))) == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, "webhook");
		snprintf(c->gen_secret, 6 + sizeof(hex), "whsec_%s", hex);
		secret = c->gen_secret;
	}
	rec = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:I}", "name", name,
			"source", "api", "url", in->url, "enabled",
			in->enabled != 0, "created", (json_int_t)now,
			"updated", (json_int_t)now, "rev", (json_int_t)1);
	if (rec == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "webhook %s", name);
	if (in->types && in->ntypes)
		json_object_set_new(rec, "events",
				    types_json(in->types, in->ntypes));
	rc = put_secret(t, c->id, rec, secret, err);
	if (rc == MX_OK)
		rc = ep_put(t, c->id, rec, err);
	json_decref(rec);
	return rc;
}

int mx_webhook_ep_create(struct mx_store *st,
			 const struct mx_webhook_ep_in *in, uint64_t *id_r,
			 char **secret_r, struct mx_error *err)
{
	struct ep_write c = {in, 0, NULL};
	int rc;

	*id_r = 0;
	if (secret_r)
		*secret_r = NULL;
	rc = mx_store_write(st, create_fn, &c, err);
	if (rc == MX_OK) {
		*id_r = c.id;
		if (secret_r)
			*secret_r = c.gen_secret;
		else
			mx_secret_free(c.gen_secret);
		return MX_OK;
	}
	mx_secret_free(c.gen_secret);
	return rc;
}

static int update_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct ep_write *c = vctx;
	const struct mx_webhook_ep_in *in = c->in;
	json_t *rec = NULL, *rev;
	const char *const *types;
	const char **owned = NULL;
	size_t ntypes = 0;
	char name[32];
	int rc;

	rc = ep_get(t, c->id, &rec, err);
	if (rc)
		return rc;
	ep_name(c->id, name, sizeof(name));
	if (is_config(rec)) {
		rc = mx_error_set(err, MX_ERR_EXISTS, "webhook %s comes from "
				  "mxsync.conf: change it there",
				  json_string_value(json_object_get(rec,
								    "name")));
		goto out;
	}
	if (in->types_set) {
		types = in->types;
		ntypes = in->ntypes;
	} else {
		types = owned = rec_types(rec, &ntypes);
	}
	rc = check_fields(name, in->url ? in->url
				: json_string_value(json_object_get(rec, "url")),
			  types, ntypes, err);
	if (rc == MX_OK && in->secret)
		rc = check_secret(in->secret, err);
	free(owned);
	if (rc)
		goto out;
	if (in->url)
		json_object_set_new(rec, "url", json_string(in->url));
	if (in->types_set && in->types && in->ntypes)
		json_object_set_new(rec, "events",
				    types_json(in->types, in->ntypes));
	else if (in->types_set)
		json_object_del(rec, "events");
	if (in->enabled >= 0)
		json_object_set_new(rec, "enabled",
				    json_boolean(in->enabled != 0));
	if (in->secret) {
		rc = put_secret(t, c->id, rec, in->secret, err);
		if (rc)
			goto out;
	}
	rev = json_object_get(rec, "rev");
	json_object_set_new(rec, "rev", json_integer(
		json_is_integer(rev) ? json_integer_value(rev) + 1 : 1));
	json_object_set_new(rec, "updated", json_integer(mx_wall_s()));
	rc = ep_put(t, c->id, rec, err);
out:
	json_decref(rec);
	return rc;
}

int mx_webhook_ep_update(struct mx_store *st, uint64_t id,
			 const struct mx_webhook_ep_in *in,
			 struct mx_error *err)
{
	struct ep_write c = {in, id, NULL};

	return mx_store_write(st, update_fn, &c, err);
}

static int delete_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	uint64_t id = *(uint64_t *)vctx;
	json_t *rec = NULL;
	char name[32];
	uint8_t k[8];
	int rc;

	rc = ep_get(t, id, &rec, err);
	if (rc)
		return rc;
	if (is_config(rec)) {
		rc = mx_error_set(err, MX_ERR_EXISTS, "webhook %s comes from "
				  "mxsync.conf: remove it there",
				  json_string_value(json_object_get(rec,
								    "name")));
		goto out;
	}
	ep_key(id, k);
	rc = mx_db_del(t, MX_DB_WEBHOOK_EPS, k, 8, NULL, 0, err);
	if (rc)
		goto out;
	/* Its cursor would hold back retention for ever. */
	ep_name(id, name, sizeof(name));
	rc = mx_db_del(t, MX_DB_WEBHOOKS, name, strlen(name), NULL, 0, err);
	if (rc == MX_ERR_NOTFOUND)
		rc = MX_OK;
out:
	json_decref(rec);
	return rc;
}

int mx_webhook_ep_delete(struct mx_store *st, uint64_t id,
			 struct mx_error *err)
{
	return mx_store_write(st, delete_fn, &id, err);
}

/* ---- reading ---- */

/* Unix time, or null for none: the API writes it as RFC 3339. */
static json_t *time_or_null(int64_t t)
{
	return t > 0 ? json_integer(t) : json_null();
}

/* The persisted cursor of NAME, 0 when it has none yet. */
static uint64_t saved_cursor(struct mx_txn *t, const char *name)
{
	struct mx_error err;
	MDB_val v;

	if (mx_db_get(t, MX_DB_WEBHOOKS, name, strlen(name), &v, &err) ==
		    MX_OK && v.mv_size == 8)
		return mx_get_be64(v.mv_data);
	return 0;
}

/* The public view of record REC of endpoint ID (no secret). */
static json_t *ep_view(struct mx_txn *t, uint64_t id, json_t *rec)
{
	const char *name = json_string_value(json_object_get(rec, "name"));
	json_t *events = json_object_get(rec, "events");
	struct mx_webhook_status s;
	bool running = mx_webhook_status_of(t->st, name, &s);

	if (!running) {
		memset(&s, 0, sizeof(s));
		s.cursor = saved_cursor(t, name);
	}
	return json_pack(
		"{s:I, s:s, s:s, s:O, s:O, s:O, s:o, s:o,"
		" s:{s:b, s:I, s:o, s:o, s:I, s:I, s:I, s:o}}",
		"id", (json_int_t)id, "name", name,
		"source", is_config(rec) ? "config" : "api",
		"url", json_object_get(rec, "url"),
		"events", json_is_array(events) ? events : json_null(),
		"enabled", json_object_get(rec, "enabled"),
		"created", time_or_null(json_integer_value(
				   json_object_get(rec, "created"))),
		"updated", time_or_null(json_integer_value(
				   json_object_get(rec, "updated"))),
		"status",
		"running", running,
		"cursor", (json_int_t)s.cursor,
		"last_delivery", time_or_null(s.last_delivery),
		"last_error", s.last_error[0] ? json_string(s.last_error)
					      : json_null(),
		"consecutive_failures", (json_int_t)s.consecutive,
		"failures", (json_int_t)s.failures,
		"delivered", (json_int_t)s.delivered,
		"next_attempt", time_or_null(s.next_attempt));
}

int mx_webhook_ep_get(struct mx_store *st, uint64_t id, json_t **view_r,
		      struct mx_error *err)
{
	struct mx_txn t;
	json_t *rec = NULL;
	int rc;

	*view_r = NULL;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = ep_get(&t, id, &rec, err);
	if (rc == MX_OK && (*view_r = ep_view(&t, id, rec)) == NULL)
		rc = mx_error_set(err, MX_ERR_STORE, "webhook %" PRIu64
				  ": corrupt record", id);
	json_decref(rec);
	mx_txn_abort(&t);
	return rc;
}

struct list_ctx {
	json_t *arr;
};

static int list_one(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		    void *vctx, struct mx_error *err)
{
	struct list_ctx *c = vctx;
	uint64_t id;
	json_t *rec, *view;

	if (k->mv_size != 8)
		return MX_OK;
	id = mx_get_be64(k->mv_data);
	rec = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	view = json_is_string(json_object_get(rec, "name"))
		       ? ep_view(t, id, rec) : NULL;
	json_decref(rec);
	if (view == NULL)
		return mx_error_set(err, MX_ERR_STORE, "webhook %" PRIu64
				    ": corrupt record", id);
	json_array_append_new(c->arr, view);
	return MX_OK;
}

int mx_webhook_ep_list(struct mx_store *st, json_t **arr_r,
		       struct mx_error *err)
{
	struct list_ctx c = {json_array()};
	struct mx_txn t;
	int rc;

	*arr_r = NULL;
	if (c.arr == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "webhooks");
	rc = mx_txn_begin(st, false, &t, err);
	if (rc == MX_OK) {
		rc = mx_store_walk(&t, MX_DB_WEBHOOK_EPS, NULL, 0, NULL, 0, 0,
				   "webhook endpoints", list_one, &c, err);
		mx_txn_abort(&t);
	}
	if (rc) {
		json_decref(c.arr);
		return rc;
	}
	*arr_r = c.arr;
	return MX_OK;
}

/* ---- mxsync.conf's endpoints ---- */

struct reg_ctx {
	const struct mx_webhook_cfg *cfgs;
	size_t n;
	bool *seen; /* by cfgs index */
};

static bool same_types(json_t *rec, const struct mx_webhook_cfg *c)
{
	json_t *a = json_object_get(rec, "events");
	size_t n = json_is_array(a) ? json_array_size(a) : 0;

	if (n != (c->types ? c->ntypes : 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		const char *v = json_string_value(json_array_get(a, i));

		if (v == NULL || strcmp(v, c->types[i]) != 0)
			return false;
	}
	return true;
}

/* One record of the table: a config endpoint still configured is brought
 * up to date, one no longer configured goes. */
static int reg_one(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		   void *vctx, struct mx_error *err)
{
	struct reg_ctx *c = vctx;
	json_t *rec = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	const char *name = json_string_value(json_object_get(rec, "name"));
	const char *url;
	int rc = MX_OK;
	size_t i;

	if (k->mv_size != 8 || name == NULL || !is_config(rec))
		goto out;
	for (i = 0; i < c->n; i++)
		if (strcmp(c->cfgs[i].name, name) == 0)
			break;
	if (i == c->n) {
		rc = MX_WALK_DELETE;
		goto out;
	}
	c->seen[i] = true;
	url = json_string_value(json_object_get(rec, "url"));
	if (url && strcmp(url, c->cfgs[i].url) == 0 &&
	    same_types(rec, &c->cfgs[i]))
		goto out;
	json_object_set_new(rec, "url", json_string(c->cfgs[i].url));
	if (c->cfgs[i].types && c->cfgs[i].ntypes)
		json_object_set_new(rec, "events",
				    types_json(c->cfgs[i].types,
					       c->cfgs[i].ntypes));
	else
		json_object_del(rec, "events");
	json_object_set_new(rec, "updated", json_integer(mx_wall_s()));
	rc = ep_put(t, mx_get_be64(k->mv_data), rec, err);
out:
	json_decref(rec);
	return rc;
}

static int register_fn(struct mx_txn *t, void *vctx, struct mx_error *err)
{
	struct reg_ctx *c = vctx;
	int64_t now = mx_wall_s();
	int rc;

	memset(c->seen, 0, c->n * sizeof(*c->seen));
	rc = mx_store_walk(t, MX_DB_WEBHOOK_EPS, NULL, 0, NULL, 0, 0,
			   "webhook endpoints", reg_one, c, err);
	for (size_t i = 0; rc == MX_OK && i < c->n; i++) {
		uint64_t id;
		json_t *rec;

		if (c->seen[i])
			continue;
		rc = mx_db_next_id(t, "next_webhook", &id, err);
		if (rc)
			break;
		rec = json_pack("{s:s, s:s, s:s, s:b, s:I, s:I}", "name",
				c->cfgs[i].name, "source", "config", "url",
				c->cfgs[i].url, "enabled", 1, "created",
				(json_int_t)now, "updated", (json_int_t)now);
		if (rec == NULL)
			return mx_error_set(err, MX_ERR_NOMEM, "webhooks");
		if (c->cfgs[i].types && c->cfgs[i].ntypes)
			json_object_set_new(rec, "events",
					    types_json(c->cfgs[i].types,
						       c->cfgs[i].ntypes));
		rc = ep_put(t, id, rec, err);
		json_decref(rec);
	}
	return rc;
}

int mx_webhook_ep_register_config(struct mx_store *st,
				  const struct mx_webhook_cfg *cfgs, size_t n,
				  struct mx_error *err)
{
	struct reg_ctx c = {cfgs, n, calloc(n + 1, sizeof(bool))};
	int rc;

	if (c.seen == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "webhooks");
	rc = mx_store_write(st, register_fn, &c, err);
	free(c.seen);
	return rc;
}

/* ---- the daemon's running set ---- */

struct set_ep {
	uint64_t id, rev;
	struct mx_webhook *wh;
};

struct mx_webhook_set {
	struct mx_store *st;   /* foreign */
	struct set_ep v[MX_WEBHOOK_EPS_MAX];
	size_t n;
};

/* An enabled API endpoint as the record says. */
struct want {
	uint64_t id, rev;
	json_t *rec;           /* owned */
};

struct want_ctx {
	struct want v[MX_WEBHOOK_EPS_MAX];
	size_t n;
};

static int want_one(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		    void *vctx, struct mx_error *err)
{
	struct want_ctx *c = vctx;
	json_t *rec;

	(void)t;
	(void)err;
	if (k->mv_size != 8 || c->n == MX_WEBHOOK_EPS_MAX)
		return MX_OK;
	rec = json_loadb(v->mv_data, v->mv_size, 0, NULL);
	if (!json_is_object(rec) || is_config(rec) ||
	    !json_is_true(json_object_get(rec, "enabled"))) {
		json_decref(rec);
		return MX_OK;
	}
	c->v[c->n].id = mx_get_be64(k->mv_data);
	c->v[c->n].rev = (uint64_t)json_integer_value(json_object_get(rec,
								      "rev"));
	c->v[c->n].rec = rec;
	c->n++;
	return MX_OK;
}

/* Cursors "#ID" of endpoints that are gone: a delivery thread stopped
 * after the delete may have saved its cursor once more. */
static int sweep_one(struct mx_txn *t, const MDB_val *k, const MDB_val *v,
		     void *vctx, struct mx_error *err)
{
	char name[32];
	uint64_t id;
	uint8_t key[8];
	MDB_val rv;
	int rc;

	(void)v;
	(void)vctx;
	if (k->mv_size < 2 || k->mv_size >= sizeof(name))
		return MX_OK;
	memcpy(name, k->mv_data, k->mv_size);
	name[k->mv_size] = '\0';
	if (!mx_webhook_api_name(name) ||
	    mx_parse_u64(name + 1, 1, UINT64_MAX, &id) != 0)
		return MX_OK;
	ep_key(id, key);
	rc = mx_db_get(t, MX_DB_WEBHOOK_EPS, key, 8, &rv, err);
	if (rc == MX_ERR_NOTFOUND)
		return MX_WALK_DELETE;
	return rc;
}

static int sweep_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	(void)ctx;
	return mx_store_walk(t, MX_DB_WEBHOOKS, "#", 1, NULL, 0, 0,
			     "webhook cursors", sweep_one, NULL, err);
}

static int start_one(struct mx_webhook_set *set, const struct want *w,
		     struct mx_webhook **wh_r, struct mx_error *err)
{
	struct mx_webhook_cfg cfg = {0};
	const char **types = NULL;
	const char *sealed = json_string_value(json_object_get(w->rec,
							       "secret"));
	char name[32], aad[64], *secret = NULL;
	int rc;

	ep_name(w->id, name, sizeof(name));
	ep_aad(w->id, aad, sizeof(aad));
	rc = mx_store_unseal(set->st, name, aad, sealed ? sealed : "",
			     &secret, err);
	if (rc)
		return rc;
	types = rec_types(w->rec, &cfg.ntypes);
	cfg.name = name;
	cfg.url = json_string_value(json_object_get(w->rec, "url"));
	cfg.secret = secret;
	cfg.types = types;
	rc = mx_webhook_start(set->st, &cfg, wh_r, err);
	free(types);
	mx_secret_free(secret);
	return rc;
}

int mx_webhook_set_sync(struct mx_webhook_set **setp, struct mx_store *st,
			struct mx_error *err)
{
	struct mx_webhook_set *set = *setp;
	struct want_ctx *w = calloc(1, sizeof(*w));
	struct mx_txn t;
	size_t i, j;
	int rc;

	if (w == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, "webhooks");
	if (set == NULL) {
		if ((set = calloc(1, sizeof(*set))) == NULL) {
			free(w);
			return mx_error_set(err, MX_ERR_NOMEM, "webhooks");
		}
		set->st = st;
		*setp = set;
	}
	rc = mx_txn_begin(st, false, &t, err);
	if (rc == MX_OK) {
		rc = mx_store_walk(&t, MX_DB_WEBHOOK_EPS, NULL, 0, NULL, 0, 0,
				   "webhook endpoints", want_one, w, err);
		mx_txn_abort(&t);
	}
	if (rc)
		goto out;
	/* Stop what is gone, disabled or changed... */
	for (i = 0; i < set->n;) {
		for (j = 0; j < w->n; j++)
			if (w->v[j].id == set->v[i].id)
				break;
		if (j < w->n && w->v[j].rev == set->v[i].rev) {
			i++;
			continue;
		}
		mx_info("webhook #%" PRIu64 ": %s", set->v[i].id,
			j < w->n ? "changed, restarting" : "stopped");
		mx_webhook_stop(&set->v[i].wh);
		set->v[i] = set->v[--set->n];
	}
	rc = mx_store_write(st, sweep_fn, NULL, err);
	if (rc)
		goto out;
	/* ...and start what is new.  One endpoint that cannot start does not
	 * keep the others from running: it is logged and tried again at the
	 * next sync. */
	for (j = 0; j < w->n; j++) {
		struct mx_error e2;
		struct mx_webhook *wh = NULL;

		for (i = 0; i < set->n; i++)
			if (set->v[i].id == w->v[j].id)
				break;
		if (i < set->n || set->n == MX_WEBHOOK_EPS_MAX)
			continue;
		mx_error_clear(&e2);
		if (start_one(set, &w->v[j], &wh, &e2) != MX_OK) {
			mx_log(MX_LOG_ERROR, "webhook #%" PRIu64 ": not "
			       "started: %s", w->v[j].id, e2.detail);
			continue;
		}
		mx_info("webhook #%" PRIu64 ": delivering", w->v[j].id);
		set->v[set->n].id = w->v[j].id;
		set->v[set->n].rev = w->v[j].rev;
		set->v[set->n].wh = wh;
		set->n++;
	}
out:
	for (j = 0; j < w->n; j++)
		json_decref(w->v[j].rec);
	free(w);
	return rc;
}

void mx_webhook_set_notify(struct mx_webhook_set *set)
{
	for (size_t i = 0; set && i < set->n; i++)
		mx_webhook_notify(set->v[i].wh);
}

void mx_webhook_set_stop(struct mx_webhook_set **setp)
{
	struct mx_webhook_set *set;

	if (setp == NULL || *setp == NULL)
		return;
	set = *setp;
	for (size_t i = 0; i < set->n; i++)
		mx_webhook_stop(&set->v[i].wh);
	free(set);
	*setp = NULL;
}
