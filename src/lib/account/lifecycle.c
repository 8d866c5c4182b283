/* The end of an account: removal (kept mail or purge), the generation
 * check every commit for an account makes, the removals counter mxsyncd
 * polls (doc/internals/accounts.md, "Removing"). */
#include <stdlib.h>
#include <string.h>

#include "account/account.h"
#include "events/types.h"

int mx_account_check_current(struct mx_txn *t, const struct mx_account *a,
			     struct mx_error *err)
{
	struct mx_account cur;
	uint64_t gen;
	uint8_t k[4];
	MDB_val v;
	int rc;

	mx_put_be32(k, a->id);
	rc = mx_db_get(t, MX_DB_ACCOUNTS, k, 4, &v, err);
	if (rc && rc != MX_ERR_NOTFOUND)
		return rc;
	if (rc == MX_OK) {
		rc = mx_account_decode(v.mv_data, v.mv_size, &cur, err);
		if (rc)
			return rc;
		gen = cur.generation;
		mx_account_free(&cur);
		if (gen == a->generation)
			return MX_OK;
	}
	rc = mx_error_set(err, MX_ERR_CANCELLED, "account %s was removed while "
			  "this ran (or removed and added again); nothing more "
			  "is stored for it", a->name ? a->name : "?");
	mx_error_scope(err, MX_SCOPE_ACCOUNT);
	return rc;
}

/* The change-log model's message map and cursor (sync/changes.c). */
static int purge_api_meta(struct mx_txn *t, const uint8_t id[4],
			  struct mx_error *err)
{
	static const char *const prefixes[] = {"apiid", "apimsg",
					       "apicursor"};
	uint8_t k[16];
	int rc = MX_OK;

	for (size_t i = 0; rc == MX_OK && i < 3; i++) {
		size_t pl = strlen(prefixes[i]);

		memcpy(k, prefixes[i], pl);
		memcpy(k + pl, id, 4);
		rc = mx_store_del_prefix(t, MX_DB_META, k, pl + 4, err);
	}
	return rc;
}

/* Deletes everything the store holds for account ID except its record
 * and what modules above keep (the outbox, through ON_REMOVED): locations, folders,
 * message records and their blob references, the indexes keyed by the
 * account, POP3 unique-ids, daemon state, its events, a kept record. */
static int purge_data(struct mx_txn *t, uint32_t id, struct mx_error *err)
{
	static const enum mx_dbi by_account[] = {
		MX_DB_FOLDER_NAMES, MX_DB_IDENTITY, MX_DB_MSGID,
		MX_DB_THREADREFS, MX_DB_THREADSUBJ, MX_DB_BYDATE, MX_DB_SENDLOG,
	};
	uint8_t k[4], uidl[sizeof("pop3uidl") - 1 + 4];
	struct mx_folder *f = NULL;
	uint64_t *ids = NULL;
	size_t nf = 0, n = 0;
	int rc;

	mx_put_be32(k, id);
	rc = mx_store_folder_list(t, id, &f, &nf, err);
	for (size_t i = 0; rc == MX_OK && i < nf; i++) {
		struct mx_loc *locs = NULL;
		size_t nl = 0;
		uint8_t fk[4];

		rc = mx_store_folder_locs(t, f[i].id, &locs, &nl, err);
		for (size_t j = 0; rc == MX_OK && j < nl; j++)
			rc = mx_store_loc_del(t, f[i].id, locs[j].uid, err);
		mx_locs_free(locs, nl);
		mx_put_be32(fk, f[i].id);
		if (rc == MX_OK)
			rc = mx_db_del(t, MX_DB_FOLDERS, fk, 4, NULL, 0, err);
	}
	mx_folders_free(f, nf);
	if (rc == MX_OK)
		rc = mx_store_account_msgs(t, id, &ids, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n; i++) {
		rc = mx_store_msg_del(t, ids[i], err);
		if (rc == MX_OK)
			rc = mx_store_orphan_del(t, ids[i], err);
		if (rc == MX_ERR_NOTFOUND) /* was not an orphan */
			rc = MX_OK;
	}
	free(ids);
	/* What no message or folder deletion reached (references to mail
	 * that never arrived, entries of records that did not decode). */
	for (size_t i = 0; rc == MX_OK && i < sizeof(by_account) /
						  sizeof(by_account[0]); i++)
		rc = mx_store_del_prefix(t, by_account[i], k, 4, err);
	memcpy(uidl, "pop3uidl", sizeof("pop3uidl") - 1);
	memcpy(uidl + sizeof("pop3uidl") - 1, k, 4);
	if (rc == MX_OK)
		rc = mx_store_del_prefix(t, MX_DB_META, uidl, sizeof(uidl), err);
	if (rc == MX_OK)
		rc = purge_api_meta(t, k, err);
	if (rc == MX_OK)
		rc = mx_store_del_prefix(t, MX_DB_ACCTSTATE, k, 4, err);
	if (rc == MX_OK)
		rc = mx_store_account_events_del(t, id, err);
	if (rc == MX_OK)
		rc = mx_store_kept_del(t, id, err);
	return rc;
}

/* Purges the kept mail of removed accounts named NAME; *N_R: how many. */
static int purge_kept(struct mx_txn *t, const char *name,
		      mx_account_removed_fn on_removed, size_t *n_r,
		      struct mx_error *err)
{
	struct mx_account *v = NULL;
	size_t n = 0;
	int rc;

	rc = mx_store_kept_list(t, name, &v, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n; i++) {
		rc = on_removed ? on_removed(t, v[i].id, true, err) : MX_OK;
		if (rc == MX_OK)
			rc = purge_data(t, v[i].id, err);
		if (rc == MX_OK)
			rc = mx_event_account_removed(t, v[i].id, name, true,
						      err);
	}
	mx_accounts_free(v, n);
	*n_r = n;
	return rc;
}

struct remove_ctx {
	const char *name;
	bool purge;
	mx_account_removed_fn on_removed;
};

static int remove_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	const struct remove_ctx *rx = ctx;
	const char *name = rx->name;
	bool purge = rx->purge;
	struct mx_account a;
	size_t nkept = 0;
	uint64_t removals;
	uint8_t k[4];
	int rc;

	/* mxsyncd polls this counter to drop a removed account at once. */
	rc = mx_db_next_id(t, MX_ACCOUNT_REMOVALS_KEY, &removals, err);
	if (rc)
		return rc;
	rc = mx_store_account_get(t, name, &a, err);
	if (rc == MX_ERR_NOTFOUND && purge) {
		/* Removed earlier without --purge: its kept mail. */
		mx_error_clear(err);
		rc = purge_kept(t, name, rx->on_removed, &nkept, err);
		if (rc == MX_OK && nkept == 0)
			rc = mx_error_set(err, MX_ERR_NOTFOUND, "no account "
					  "and no kept mail named '%s'", name);
		return rc;
	}
	if (rc)
		return rc;
	/* Its queued mail has nobody to send it any more. */
	if (rx->on_removed) {
		rc = rx->on_removed(t, a.id, purge, err);
		if (rc)
			goto out;
	}
	/* Purge: also what earlier accounts of this name left behind.
	 * Keep: remember where the mail came from, for a re-add. */
	if (purge)
		rc = purge_data(t, a.id, err);
	if (purge && rc == MX_OK)
		rc = purge_kept(t, name, rx->on_removed, &nkept, err);
	if (!purge)
		rc = mx_store_kept_put(t, &a, err);
	if (rc)
		goto out;
	mx_put_be32(k, a.id);
	rc = mx_db_del(t, MX_DB_ACCOUNTS, k, 4, NULL, 0, err);
	if (rc == MX_OK)
		rc = mx_db_del(t, MX_DB_ACCOUNT_NAMES, a.name, strlen(a.name),
			       NULL, 0, err);
	if (rc == MX_OK) {
		int r2 = mx_db_del(t, MX_DB_ACCTSTATE, k, 4, NULL, 0, NULL);

		(void)r2; /* absent unless a daemon ran */
		rc = mx_event_account_removed(t, a.id, a.name, purge, err);
	}
out:
	mx_account_free(&a);
	return rc;
}

int mx_account_remove(struct mx_store *st, const char *name, bool purge,
		      mx_account_removed_fn on_removed, struct mx_error *err)
{
	struct remove_ctx rx = {name, purge, on_removed};

	return mx_store_write(st, remove_fn, &rx, err);
}

int mx_account_removals(struct mx_store *st, uint64_t *n_r,
			struct mx_error *err)
{
	struct mx_txn t;
	MDB_val v;
	int rc;

	*n_r = 0;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_db_get(&t, MX_DB_META, MX_ACCOUNT_REMOVALS_KEY,
		       strlen(MX_ACCOUNT_REMOVALS_KEY), &v, err);
	if (rc == MX_OK && v.mv_size == 8)
		*n_r = mx_get_be64(v.mv_data);
	else if (rc == MX_OK)
		rc = mx_error_set(err, MX_ERR_STORE, "corrupt counter %s",
				  MX_ACCOUNT_REMOVALS_KEY);
	else if (rc == MX_ERR_NOTFOUND)
		rc = MX_OK;
	mx_txn_abort(&t);
	return rc;
}
