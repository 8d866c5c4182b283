/*
 * The backend registry: which table serves which protocol, the tracing of
 * every slot call (-D backend), and connecting an account with its token
 * refresh.  Design: doc/internals/backends.md.
 *
 * The tables handed out here are copies of the backends' own tables whose
 * non-NULL slots are replaced by the shims below; a NULL slot stays NULL,
 * so the capability bits keep their meaning.  The connection the shims see
 * is a small wrapper (struct mx_conn in this file only) holding the
 * backend's own connection, its table and the account name for the trace:
 * the backends need to know nothing about tracing.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "account/account.h"

/* The wrapper; INNER is the backend's own struct mx_conn (a different
 * type in the backend's translation unit, only ever passed back to it). */
struct mx_conn {
	const struct mx_backend_ops *ops; /* the backend's own table */
	struct mx_conn *inner;            /* owned */
	char account[64];                 /* for the trace, truncated */
};

static const struct mx_backend_ops *const backends[] = {
	&mx_backend_imap,
	&mx_backend_pop3,
	&mx_backend_gmail,
};

static struct mx_backend_ops traced[MX_ARRAY_SIZE(backends)];
static pthread_once_t traced_once = PTHREAD_ONCE_INIT;

static bool tracing(void)
{
	return (mx_trace_mask & MX_TRACE_BACKEND) != 0;
}

static void trace_rc(const struct mx_conn *c, const char *slot, int rc,
		     uint64_t t0)
{
	mx_trace(MX_TRACE_BACKEND, "%s %s: %s -> %s (%" PRIu64 " ms)",
		 c->ops->name, c->account, slot,
		 rc ? mx_strerror((enum mx_err)rc) : "ok", mx_now_ms() - t0);
}

/* Runs CALL (an int expression) and traces it. */
#define TRACED(c, slot, call)                                              \
	do {                                                               \
		uint64_t t0_ = tracing() ? mx_now_ms() : 0;                \
		int rc_ = (call);                                          \
		if (tracing())                                             \
			trace_rc((c), (slot), rc_, t0_);                   \
		return rc_;                                                \
	} while (0)

/* ---- core ---- */

static int t_connect(const struct mx_account *a, struct mx_conn **conn_r,
		     struct mx_error *err)
{
	const struct mx_backend_ops *ops = NULL;
	struct mx_conn *c;
	uint64_t t0 = tracing() ? mx_now_ms() : 0;
	int rc;

	*conn_r = NULL;
	for (size_t i = 0; i < MX_ARRAY_SIZE(backends); i++)
		if (backends[i]->proto == a->proto)
			ops = backends[i];
	if (ops == NULL)
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "no backend for this account");
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	c->ops = ops;
	snprintf(c->account, sizeof(c->account), "%s",
		 a->name ? a->name : "-");
	rc = ops->connect(a, &c->inner, err);
	if (tracing())
		trace_rc(c, "connect", rc, t0);
	if (rc) {
		free(c);
		return rc;
	}
	*conn_r = c;
	return MX_OK;
}

static void t_disconnect(struct mx_conn **conn)
{
	struct mx_conn *c = *conn;
	uint64_t t0;

	if (c == NULL)
		return;
	t0 = tracing() ? mx_now_ms() : 0;
	c->ops->disconnect(&c->inner);
	if (tracing())
		trace_rc(c, "disconnect", MX_OK, t0);
	free(c);
	*conn = NULL;
}

static unsigned t_server_caps(struct mx_conn *c)
{
	unsigned caps = c->ops->server_caps(c->inner);

	mx_trace(MX_TRACE_BACKEND, "%s %s: server_caps -> 0x%x", c->ops->name,
		 c->account, caps);
	return caps;
}

static int t_list(struct mx_conn *c, struct mx_remote_folder **v_r,
		  size_t *n_r, struct mx_error *err)
{
	TRACED(c, "list", c->ops->list(c->inner, v_r, n_r, err));
}

/* ---- MX_CAP_MODEL_UID ---- */

static int t_select(struct mx_conn *c, const char *wire, uint32_t uv,
		    uint64_t modseq, struct mx_select_result *out,
		    struct mx_error *err)
{
	TRACED(c, "select",
	       c->ops->select(c->inner, wire, uv, modseq, out, err));
}

static int t_fetch(struct mx_conn *c, const struct mx_uid_range *uids,
		   size_t nuids, enum mx_fetch_what what, uint64_t since,
		   mx_fetch_cb *cb, void *ctx, struct mx_error *err)
{
	TRACED(c, "fetch",
	       c->ops->fetch(c->inner, uids, nuids, what, since, cb, ctx, err));
}

static int t_uids(struct mx_conn *c, uint32_t **uids_r, size_t *n_r,
		  struct mx_error *err)
{
	TRACED(c, "uids", c->ops->uids(c->inner, uids_r, n_r, err));
}

/* ---- optional ---- */

static int t_store_flags(struct mx_conn *c, uint32_t uid, uint32_t add,
			 uint32_t remove, struct mx_error *err)
{
	TRACED(c, "store_flags",
	       c->ops->store_flags(c->inner, uid, add, remove, err));
}

static int t_append(struct mx_conn *c, const char *wire, uint32_t flags,
		    const char *data, size_t len, uint32_t *uid_r,
		    struct mx_error *err)
{
	TRACED(c, "append",
	       c->ops->append(c->inner, wire, flags, data, len, uid_r, err));
}

static int t_search_header(struct mx_conn *c, const char *field,
			   const char *value, uint32_t **uids_r, size_t *n_r,
			   struct mx_error *err)
{
	TRACED(c, "search_header",
	       c->ops->search_header(c->inner, field, value, uids_r, n_r,
				     err));
}

static int t_move_uid(struct mx_conn *c, uint32_t uid, const char *wire,
		      uint32_t *uidvalidity_r, uint32_t *uid_r,
		      struct mx_error *err)
{
	TRACED(c, "move_uid",
	       c->ops->move_uid(c->inner, uid, wire, uidvalidity_r, uid_r,
				err));
}

static int t_expunge_uid(struct mx_conn *c, uint32_t uid,
			 struct mx_error *err)
{
	TRACED(c, "expunge_uid", c->ops->expunge_uid(c->inner, uid, err));
}

static int t_send(struct mx_conn *c, const char *raw, size_t len,
		  const char *const *rcpts, size_t nrcpts, const char *thread,
		  char **id_r, bool *maybe_sent_r, struct mx_error *err)
{
	TRACED(c, "send",
	       c->ops->send(c->inner, raw, len, rcpts, nrcpts, thread, id_r,
			    maybe_sent_r, err));
}

static int t_idle_start(struct mx_conn *c, const char *wire,
			struct mx_error *err)
{
	TRACED(c, "idle_start", c->ops->idle_start(c->inner, wire, err));
}

static int t_idle_fd(struct mx_conn *c)
{
	/* Not traced: a plain accessor, asked on every turn of a poll
	 * loop. */
	return c->ops->idle_fd(c->inner);
}

static int t_idle_check(struct mx_conn *c, bool *changed_r,
			struct mx_error *err)
{
	TRACED(c, "idle_check", c->ops->idle_check(c->inner, changed_r, err));
}

static bool t_idle_pending(struct mx_conn *c)
{
	/* Not traced: see t_idle_fd(). */
	return c->ops->idle_pending(c->inner);
}

static int t_idle_done(struct mx_conn *c, struct mx_error *err)
{
	TRACED(c, "idle_done", c->ops->idle_done(c->inner, err));
}

/* ---- MX_CAP_MODEL_DROP ---- */

static int t_drop_list(struct mx_conn *c, struct mx_drop_msg **v_r,
		       size_t *n_r, struct mx_error *err)
{
	TRACED(c, "drop_list", c->ops->drop_list(c->inner, v_r, n_r, err));
}

static int t_drop_retr(struct mx_conn *c, uint32_t num, mx_data_cb *cb,
		       void *ctx, struct mx_error *err)
{
	TRACED(c, "drop_retr", c->ops->drop_retr(c->inner, num, cb, ctx, err));
}

static int t_drop_remove(struct mx_conn *c, uint32_t num,
			 struct mx_error *err)
{
	TRACED(c, "drop_remove", c->ops->drop_remove(c->inner, num, err));
}

static int t_drop_commit(struct mx_conn *c, struct mx_error *err)
{
	TRACED(c, "drop_commit", c->ops->drop_commit(c->inner, err));
}

/* ---- MX_CAP_MODEL_CHANGES, MX_CAP_FETCH_LIVE ---- */

static int t_changes(struct mx_conn *c, const char *cursor, mx_changes_cb *cb,
		     void *ctx, char **next_r, struct mx_error *err)
{
	TRACED(c, "changes",
	       c->ops->changes(c->inner, cursor, cb, ctx, next_r, err));
}

static int t_fetch_live(struct mx_conn *c, const char *id, mx_data_cb *cb,
			void *ctx, struct mx_error *err)
{
	TRACED(c, "fetch_live", c->ops->fetch_live(c->inner, id, cb, ctx, err));
}

static int t_store_flags_id(struct mx_conn *c, const char *id, uint32_t add,
			    uint32_t remove, struct mx_error *err)
{
	TRACED(c, "store_flags_id",
	       c->ops->store_flags_id(c->inner, id, add, remove, err));
}

/* ---- the registry ---- */

#define WRAP(slot)                                                         \
	do {                                                               \
		if (t->slot)                                               \
			t->slot = t_##slot;                                \
	} while (0)

static void traced_init(void)
{
	for (size_t i = 0; i < MX_ARRAY_SIZE(backends); i++) {
		struct mx_backend_ops *t = &traced[i];

		*t = *backends[i];
		WRAP(connect);
		WRAP(disconnect);
		WRAP(server_caps);
		WRAP(list);
		WRAP(select);
		WRAP(fetch);
		WRAP(uids);
		WRAP(store_flags);
		WRAP(append);
		WRAP(search_header);
		WRAP(move_uid);
		WRAP(expunge_uid);
		WRAP(send);
		WRAP(idle_start);
		WRAP(idle_fd);
		WRAP(idle_check);
		WRAP(idle_pending);
		WRAP(idle_done);
		WRAP(drop_list);
		WRAP(drop_retr);
		WRAP(drop_remove);
		WRAP(drop_commit);
		WRAP(changes);
		WRAP(fetch_live);
		WRAP(store_flags_id);
	}
}

const struct mx_backend_ops *mx_backend_next(const struct mx_backend_ops *prev)
{
	size_t i = 0;

	pthread_once(&traced_once, traced_init);
	if (prev)
		i = (size_t)(prev - traced) + 1;
	return i < MX_ARRAY_SIZE(traced) ? &traced[i] : NULL;
}

const struct mx_backend_ops *mx_backend_for(enum mx_proto proto)
{
	const struct mx_backend_ops *b = NULL;

	while ((b = mx_backend_next(b)) != NULL)
		if (b->proto == proto)
			return b;
	return NULL;
}

const struct mx_backend_ops *
mx_backend_for_account(const struct mx_account *a)
{
	return mx_backend_for(a->proto);
}

int mx_backend_connect(struct mx_store *st, struct mx_account *a,
		       const struct mx_backend_ops **be_r,
		       struct mx_conn **conn_r, struct mx_error *err)
{
	const struct mx_backend_ops *be = mx_backend_for_account(a);
	int rc;

	*conn_r = NULL;
	if (be_r)
		*be_r = be;
	if (be == NULL)
		return mx_error_set(err, MX_ERR_UNSUPPORTED,
				    "account %s: no backend for its protocol",
				    a->name);
	if (a->disabled)
		return mx_error_set(err, MX_ERR_CONFIG,
				    "account %s is disabled", a->name);
	rc = mx_account_fresh_token(st, a, false, err);
	if (rc)
		return rc;
	rc = be->connect(a, conn_r, err);
	if (rc == MX_ERR_AUTH && a->refresh_token && a->oauth_token_url) {
		/* The server refused the token before we thought it expired
		 * (revoked, clock skew): refresh once, then stop. */
		struct mx_error first = err ? *err : (struct mx_error){0};

		rc = mx_account_fresh_token(st, a, true, err);
		if (rc == MX_OK)
			rc = be->connect(a, conn_r, err);
		else if (rc != MX_ERR_AUTH && err)
			mx_error_prefix(err, "after %s", first.detail);
	}
	return rc;
}
