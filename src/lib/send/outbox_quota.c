/* The outbox: the daily sending quota (a log of sends per account). */
#include "send/outbox_int.h"

/* ---- the daily quota ---- */

size_t sendlog_key(uint8_t *k, uint32_t account, int64_t when,
		   uint64_t id)
{
	mx_put_be32(k, account);
	mx_put_be64(k + 4, (uint64_t)when);
	mx_put_be64(k + 12, id);
	return 20;
}

struct sendlog_ctx {
	uint32_t account_id;
	int64_t upto;
	bool del;
	unsigned n;
	int64_t *oldest_r;
};

static int sendlog_one(struct mx_txn *t, const MDB_val *key,
		       const MDB_val *val, void *ctx, struct mx_error *err)
{
	struct sendlog_ctx *sc = ctx;
	int64_t when;

	(void)t;
	(void)val;
	if (key->mv_size != 20)
		return mx_error_set(err, MX_ERR_STORE, "send log of account "
				    "%u: corrupt entry (%zu-byte key)",
				    sc->account_id, key->mv_size);
	when = (int64_t)mx_get_be64((const uint8_t *)key->mv_data + 4);
	if (when >= sc->upto)
		return MX_WALK_STOP;
	if (sc->n++ == 0 && sc->oldest_r)
		*sc->oldest_r = when;
	return sc->del ? MX_WALK_DELETE : MX_OK;
}

/*
 * Walks ACCOUNT_ID's send-log records with times in [FROM, UPTO): counts
 * them into *N_R and the first time into *OLDEST_R, and deletes them with
 * DEL.  A malformed key inside the account's range is an error: a short
 * count would let mail past the quota.
 */
static int sendlog_walk(struct mx_txn *t, uint32_t account_id, int64_t from,
			int64_t upto, bool del, unsigned *n_r,
			int64_t *oldest_r, struct mx_error *err)
{
	struct sendlog_ctx sc = {account_id, upto, del, 0, oldest_r};
	uint8_t k[20];
	size_t nk = sendlog_key(k, account_id, from, 0);
	int rc;

	/* The range is the account's (the first 4 bytes of K). */
	rc = mx_store_walk(t, MX_DB_SENDLOG, k, 4, k, nk, 0, "sendlog",
			   sendlog_one, &sc, err);
	if (rc)
		return rc;
	if (n_r)
		*n_r = sc.n;
	return MX_OK;
}

int mx_outbox_sent_24h(struct mx_txn *t, uint32_t account_id, int64_t now,
		       unsigned *n_r, int64_t *oldest_r, struct mx_error *err)
{
	if (oldest_r)
		*oldest_r = 0;
	return sendlog_walk(t, account_id, now - OB_WINDOW, INT64_MAX, false,
			    n_r, oldest_r, err);
}

/* Drops send-log records older than the window (they count for nothing). */
int sendlog_trim(struct mx_txn *t, uint32_t account_id, int64_t now,
		 struct mx_error *err)
{
	return sendlog_walk(t, account_id, 0, now - OB_WINDOW, true, NULL, NULL,
			    err);
}
