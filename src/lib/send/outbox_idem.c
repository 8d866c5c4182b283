/*
 * The HTTP API's idempotency keys (POST /v1/send, Idempotency-Key): per
 * API user, remembered for MX_OB_IDEM_TTL from the first request, with
 * the outbox entry that request queued and a digest of the request, so
 * that a repeat gets the same entry and a different request under the
 * same key is told apart.  Unlike the per-account keys of `mxsync send
 * --idempotency-key` (outbox_keys, kept as long as the entry), these
 * belong to the caller, not to an account: the account is part of the
 * request.  Record (api_idem): u64 created, u64 outbox id, sha256[32].
 */
#include <string.h>

#include "send/outbox_int.h"

#define IDEM_VLEN (8 + 8 + 32)

static size_t api_idem_key(uint8_t *k, const struct mx_ob_idem *idem)
{
	size_t nu = strlen(idem->user), nk = strlen(idem->key);

	memcpy(k, idem->user, nu);
	k[nu] = '\0';
	memcpy(k + nu + 1, idem->key, nk);
	return nu + 1 + nk;
}

/* Key sizes: a user id is at most 128 bytes (mx_api_user_valid), a key
 * 200, so the LMDB key stays under its 511-byte limit. */
static bool idem_valid(const struct mx_ob_idem *idem, struct mx_error *err)
{
	size_t nu = strlen(idem->user), nk = strlen(idem->key);

	if (nu == 0 || nu > 128)
		return mx_error_set(err, MX_ERR_INVAL, "idempotency: bad user "
				    "id") == MX_OK;
	for (size_t i = 0; i < nk; i++)
		if (idem->key[i] <= 0x20 || idem->key[i] >= 0x7f)
			nk = 0;
	if (nk == 0 || nk > MX_OB_IDEM_MAX)
		return mx_error_set(err, MX_ERR_INVAL, "idempotency key: 1 to "
				    "%d printable ASCII characters, no spaces",
				    MX_OB_IDEM_MAX) == MX_OK;
	return true;
}

int api_idem_lookup(struct mx_txn *t, const struct mx_ob_idem *idem,
		    int64_t now, uint64_t *id_r, struct mx_error *err)
{
	uint8_t k[130 + MX_OB_IDEM_MAX];
	MDB_val v;
	int rc;

	if (!idem_valid(idem, err))
		return MX_ERR_INVAL;
	rc = mx_db_get(t, MX_DB_API_IDEM, k, api_idem_key(k, idem), &v, err);
	if (rc)
		return rc;
	if (v.mv_size != IDEM_VLEN)
		return mx_error_set(err, MX_ERR_STORE, "corrupt idempotency "
				    "record");
	if ((int64_t)mx_get_be64(v.mv_data) + MX_OB_IDEM_TTL <= now)
		return mx_error_set(err, MX_ERR_NOTFOUND, "idempotency key "
				    "expired");
	*id_r = mx_get_be64((const uint8_t *)v.mv_data + 8);
	if (memcmp((const uint8_t *)v.mv_data + 16, idem->digest, 32) != 0)
		return mx_error_set(err, MX_ERR_EXISTS, "idempotency key '%s' "
				    "was used for a different request (outbox "
				    "entry %llu)", idem->key,
				    (unsigned long long)*id_r);
	return MX_OK;
}

int api_idem_put(struct mx_txn *t, const struct mx_ob_idem *idem,
		 uint64_t id, int64_t now, struct mx_error *err)
{
	uint8_t k[130 + MX_OB_IDEM_MAX], v[IDEM_VLEN];

	if (!idem_valid(idem, err))
		return MX_ERR_INVAL;
	mx_put_be64(v, (uint64_t)now);
	mx_put_be64(v + 8, id);
	memcpy(v + 16, idem->digest, 32);
	return mx_db_put(t, MX_DB_API_IDEM, k, api_idem_key(k, idem), v,
			 sizeof(v), 0, err);
}

static int prune_one(struct mx_txn *t, const MDB_val *key, const MDB_val *val,
		     void *ctx, struct mx_error *err)
{
	const int64_t *cutoff = ctx;

	(void)t;
	(void)key;
	(void)err;
	/* A record of another size is not ours to judge: it stays. */
	if (val->mv_size == IDEM_VLEN &&
	    (int64_t)mx_get_be64(val->mv_data) < *cutoff)
		return MX_WALK_DELETE;
	return MX_OK;
}

int api_idem_prune(struct mx_txn *t, int64_t now, struct mx_error *err)
{
	int64_t cutoff = now - MX_OB_IDEM_TTL;

	return mx_store_walk(t, MX_DB_API_IDEM, NULL, 0, NULL, 0, 0,
			     "idempotency keys", prune_one, &cutoff, err);
}

int mx_outbox_idem_find(struct mx_store *st, const struct mx_ob_idem *idem,
			uint64_t *id_r, struct mx_error *err)
{
	struct mx_txn t;
	int rc = mx_txn_begin(st, false, &t, err);

	if (rc)
		return rc;
	rc = api_idem_lookup(&t, idem, mx_wall_s(), id_r, err);
	mx_txn_abort(&t);
	return rc;
}
