/* The outbox: working it off (state steps, SMTP, through the backend, the
 * copy to Sent, recovery after a crash). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "mime/mime.h"
#include "send/outbox_int.h"
#include "send/smtp.h"

static int64_t backoff(unsigned attempts);

/* ---- running ---- */

/* A write step on one entry: load, APPLY, store (plus what APPLY adds to
 * the same transaction). */
struct step {
	uint64_t id;
	int (*apply)(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
		     struct mx_error *err);
	void *arg;
	struct mx_ob_entry out; /* the entry as stored by the step */
};

static int step_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct step *s = ctx;
	int rc;

	mx_ob_entry_free(&s->out);
	rc = entry_get(t, s->id, &s->out, err);
	if (rc == MX_OK)
		rc = s->apply(t, &s->out, s->arg, err);
	if (rc == MX_OK)
		rc = entry_put(t, &s->out, err);
	return rc;
}

int run_step(struct mx_store *st, struct mx_ob_entry *e,
	     int (*apply)(struct mx_txn *, struct mx_ob_entry *, void *,
			  struct mx_error *),
	     void *arg, struct mx_error *err)
{
	struct step s = {e->id, apply, arg, {0}};
	int rc = mx_store_write(st, step_fn, &s, err);

	if (rc == MX_OK) {
		mx_ob_entry_free(e);
		*e = s.out;
	} else {
		mx_ob_entry_free(&s.out);
	}
	return rc;
}

/* Another sender got there first (MX_ERR_EXISTS from a step): not an
 * error, the entry is simply not ours to work on. */
#define TAKEN MX_ERR_EXISTS

struct sending_arg {
	const struct mx_account *a;
	bool relay;  /* in: bulk or no own server; out: the route taken */
	bool held;   /* out: over the daily quota, held (not claimed) */
};

/*
 * Claims a queued entry for sending, deciding the route in the same
 * transaction: the daily quota is counted here, so two senders cannot
 * both take the last message of the day.
 */
static int apply_sending(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
			 struct mx_error *err)
{
	struct sending_arg *sa = arg;
	const struct mx_account *a = sa->a;
	int64_t now = mx_wall_s();

	sa->held = false;
	if (e->state != MX_OB_QUEUED || held_elsewhere(e))
		return mx_error_set(err, TAKEN, "outbox entry %llu is %s",
				    (unsigned long long)e->id,
				    mx_ob_state_name(e->state));
	if (!sa->relay && a->daily_limit > 0) {
		unsigned used = 0;
		int64_t oldest = 0;
		int rc = mx_outbox_sent_24h(t, a->id, now, &used, &oldest, err);

		if (rc)
			return rc;
		if (used >= (unsigned)a->daily_limit) {
			char msg[200];

			if (a->quota_policy == MX_QUOTA_RELAY && a->relay.host) {
				sa->relay = true;
			} else {
				snprintf(msg, sizeof(msg), "daily limit of %d "
					 "messages reached; held until the "
					 "rolling 24 h window allows it",
					 a->daily_limit);
				sa->held = true;
				e->next_attempt = oldest + OB_WINDOW + 1;
				release(e);
				return replace_str(&e->last_error, msg) < 0
					       ? mx_error_set(err, MX_ERR_NOMEM, NULL)
					       : MX_OK;
			}
		}
	}
	e->state = MX_OB_SENDING;
	e->relay = sa->relay;
	e->attempts++;
	if (e->first_try == 0)
		e->first_try = now;
	claim(e);
	return MX_OK;
}

/* An interrupted send (state sending, its process gone) goes back to the
 * queue; nobody else may have taken it meanwhile. */
static int apply_requeue(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
			 struct mx_error *err)
{
	(void)t;
	(void)arg;
	if (e->state != MX_OB_SENDING || !mine(e))
		return mx_error_set(err, TAKEN, "outbox entry %llu is taken",
				    (unsigned long long)e->id);
	e->state = MX_OB_QUEUED;
	e->next_attempt = mx_wall_s();
	release(e);
	return replace_str(&e->last_error, "interrupted; sending again") < 0
		       ? mx_error_set(err, MX_ERR_NOMEM, NULL) : MX_OK;
}

/* Claims a sent entry's copy to Sent (or an interrupted send's check of
 * Sent). */
static int apply_claim(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
		       struct mx_error *err)
{
	(void)t;
	(void)arg;
	if ((e->state != MX_OB_SENT || e->appended) &&
	    e->state != MX_OB_SENDING)
		return mx_error_set(err, TAKEN, "outbox entry %llu is %s",
				    (unsigned long long)e->id,
				    mx_ob_state_name(e->state));
	if (held_elsewhere(e))
		return mx_error_set(err, TAKEN, "outbox entry %llu is taken",
				    (unsigned long long)e->id);
	claim(e);
	return MX_OK;
}

/* An interrupted send whose Sent folder cannot be checked now: looked at
 * again later, released; after a day of that it fails (outbox retry sends
 * it again, outbox cancel drops it) rather than stay in limbo. */
static int apply_later(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
		       struct mx_error *err)
{
	const char *why = arg;
	int64_t now = mx_wall_s();
	int rc;

	if (e->state != MX_OB_SENDING || !mine(e))
		return mx_error_set(err, TAKEN, "outbox entry %llu is taken",
				    (unsigned long long)e->id);
	release(e);
	if (replace_str(&e->last_error, why) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (e->first_try && now - e->first_try > 86400) {
		json_t *x = json_object();

		e->state = MX_OB_FAILED;
		e->finished_at = now;
		json_object_set_new(x, "error", json_string(e->last_error));
		rc = entry_event(t, "message.failed", e, x, err);
		json_decref(x);
		return rc;
	}
	e->next_attempt = now + backoff(e->attempts + 1);
	return MX_OK;
}

struct defer_arg {
	const char *error;
	int64_t next;
	bool final;
	const struct mx_smtp_result *res;
};

static int set_results(struct mx_ob_entry *e, const struct mx_smtp_result *r)
{
	for (size_t i = 0; i < e->nresults; i++) {
		free(e->results[i].addr);
		free(e->results[i].reply);
	}
	free(e->results);
	e->results = NULL;
	e->nresults = 0;
	if (r == NULL)
		return 0;
	e->results = calloc(r->nrcpt + 1, sizeof(*e->results));
	if (e->results == NULL)
		return -1;
	for (size_t i = 0; i < r->nrcpt; i++) {
		e->results[i].addr = clean_dup(r->rcpt[i].addr);
		e->results[i].code = r->rcpt[i].code;
		e->results[i].reply = clean_dup(r->rcpt[i].reply);
		e->nresults++;
		if (e->results[i].addr == NULL ||
		    (r->rcpt[i].reply && e->results[i].reply == NULL))
			return -1;
	}
	return replace_str(&e->data_reply, r->data_reply);
}

static int apply_defer(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
		       struct mx_error *err)
{
	const struct defer_arg *d = arg;

	/* A queued entry nobody works on (quota hold, disabled account),
	 * or our own attempt that did not go out. */
	if (!(e->state == MX_OB_QUEUED && !held_elsewhere(e)) &&
	    !(e->state == MX_OB_SENDING && mine(e)))
		return mx_error_set(err, TAKEN, "outbox entry %llu is %s",
				    (unsigned long long)e->id,
				    mx_ob_state_name(e->state));
	if (replace_str(&e->last_error, d->error) < 0 ||
	    (d->res && set_results(e, d->res) < 0))
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	e->state = d->final ? MX_OB_FAILED : MX_OB_QUEUED;
	e->next_attempt = d->next;
	if (d->final)
		e->finished_at = mx_wall_s();
	release(e);
	if (d->final) {
		json_t *x = json_object();
		int rc;

		json_object_set_new(x, "error", json_string(e->last_error));
		json_object_set_new(x, "attempts", json_integer(e->attempts));
		/* The bytes stay until the entry is cancelled: a failed
		 * message can be retried once the cause is fixed. */
		rc = entry_event(t, "message.failed", e, x, err);
		json_decref(x);
		return rc;
	}
	return MX_OK;
}

/*
 * The sent message as a record of the store, in its thread: the record
 * the next sync of Sent attaches its UID to (same identity), so there is
 * one record, not two.  A record of the same identity already there (the
 * sync was quicker) is used as it is.
 */
static int sent_record(struct mx_txn *t, struct mx_ob_entry *e,
		       struct mx_error *err)
{
	struct mx_msg m = {0};
	const char *raw;
	uint64_t *ids = NULL;
	size_t len, n = 0;
	int rc;

	rc = mx_store_blob_get(t, e->sha256, &raw, &len, err);
	if (rc)
		return rc;
	mx_mime_identity(raw, len, m.identity);
	rc = mx_store_identity_find(t, e->account_id, m.identity, &ids, &n, err);
	if (rc == MX_OK && n > 0) {
		e->msg_id = ids[0];
		free(ids);
		return MX_OK;
	}
	free(ids);
	if (rc && rc != MX_ERR_NOTFOUND)
		return rc;
	rc = mx_mime_parse(raw, len, &m.p, err);
	if (rc)
		return rc;
	m.account_id = e->account_id;
	memcpy(m.sha256, e->sha256, 32);
	m.size = len;
	m.internaldate = m.added = mx_wall_s();
	rc = mx_store_msg_add(t, &m, raw, err);
	if (rc == MX_OK) {
		json_t *x = json_object();

		e->msg_id = m.id;
		json_object_set_new(x, "thread",
				    json_integer((json_int_t)m.thread_id));
		json_object_set_new(x, "origin", json_string("outbox"));
		if (m.p.message_id)
			json_object_set_new(x, "message_id",
					    json_string(m.p.message_id));
		rc = mx_store_event(t, "message.new", e->account_id, 0, m.id, x,
				    err);
		json_decref(x);
	}
	mx_msg_free(&m);
	return rc;
}

static bool stores_bodies(const struct mx_account *a)
{
	const struct mx_backend_ops *be = mx_backend_for_account(a);

	return be && (be->caps & MX_CAP_STORES_BODIES);
}

static bool deferred_code(int code)
{
	return code >= 400 && code < 500;
}

/*
 * Recipients the server deferred (4xx) while it accepted others: a new
 * entry retries just them later, sharing the bytes; the copy in Sent is
 * this entry's job, not the new one's.
 */
static int split_deferred(struct mx_txn *t, struct mx_ob_entry *e,
			  struct mx_error *err)
{
	struct mx_ob_entry c = {0};
	size_t nd = 0;
	int rc;

	for (size_t i = 0; i < e->nresults; i++)
		nd += deferred_code(e->results[i].code);
	if (nd == 0)
		return MX_OK;
	c.rcpts = calloc(nd, sizeof(char *));
	if (c.rcpts == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	for (size_t i = 0; i < e->nresults; i++)
		if (deferred_code(e->results[i].code))
			c.rcpts[c.nrcpts++] = e->results[i].addr; /* borrowed */
	rc = mx_db_next_id(t, "next_outbox", &c.id, err);
	if (rc == MX_OK)
		rc = mx_store_blob_ref(t, e->sha256, err);
	if (rc == MX_OK) {
		c.account_id = e->account_id;
		c.state = MX_OB_QUEUED;
		c.bulk = c.relay = e->bulk;
		c.message_id = e->message_id;
		c.from = e->from;
		c.subject = e->subject;
		memcpy(c.sha256, e->sha256, 32);
		c.size = e->size;
		c.created = mx_wall_s();
		c.next_attempt = c.created + backoff(1);
		c.parent = e->id;
		rc = entry_put(t, &c, err);
	}
	if (rc == MX_OK) {
		json_t *x = json_object();

		json_object_set_new(x, "rcpts", json_integer((json_int_t)c.nrcpts));
		json_object_set_new(x, "parent", json_integer((json_int_t)e->id));
		rc = entry_event(t, "message.queued", &c, x, err);
		json_decref(x);
		e->retry_entry = c.id;
	}
	free(c.rcpts);
	return rc;
}

struct sent_arg {
	const struct mx_smtp_result *res;
	const struct mx_account *a;
	bool needs_append;
};

static int apply_sent(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
		      struct mx_error *err)
{
	const struct sent_arg *s = arg;
	const struct mx_account *a = s->a;
	json_t *x, *rej;
	int64_t now = mx_wall_s();
	int rc;

	if (e->state != MX_OB_SENDING || !mine(e))
		return mx_error_set(err, TAKEN, "outbox entry %llu is %s",
				    (unsigned long long)e->id,
				    mx_ob_state_name(e->state));
	if (set_results(e, s->res) < 0)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	e->state = MX_OB_SENT;
	e->sent_at = now;
	free(e->last_error);
	e->last_error = NULL;
	e->appended = !s->needs_append;
	/* Still ours while we copy it to Sent; else done. */
	if (e->appended) {
		release(e);
		e->finished_at = now;
	}
	rc = split_deferred(t, e, err);
	/* A backend that keeps no bodies (API mode: metadata only) gets
	 * the sent message from its server's change log instead. */
	if (rc == MX_OK && stores_bodies(a))
		rc = sent_record(t, e, err);
	if (rc == MX_OK && e->appended)
		rc = mx_store_blob_unref(t, e->sha256, err);
	if (rc)
		return rc;
	if (!e->relay && a->daily_limit > 0) {
		uint8_t k[20];
		unsigned before = 0;

		rc = sendlog_trim(t, a->id, now, err);
		if (rc == MX_OK)
			rc = mx_outbox_sent_24h(t, a->id, now, &before, NULL, err);
		if (rc == MX_OK)
			rc = mx_db_put(t, MX_DB_SENDLOG, k,
				       sendlog_key(k, a->id, now, e->id), "", 0,
				       0, err);
		/* 80%: warn once, when this message crosses the mark. */
		if (rc == MX_OK && (before + 1) * 5 >= (unsigned)a->daily_limit * 4 &&
		    before * 5 < (unsigned)a->daily_limit * 4) {
			json_t *q = json_object();

			json_object_set_new(q, "used", json_integer(before + 1));
			json_object_set_new(q, "limit", json_integer(a->daily_limit));
			json_object_set_new(q, "window_s", json_integer(OB_WINDOW));
			rc = mx_store_event(t, "account.quota", a->id, 0, 0, q, err);
			json_decref(q);
		}
		if (rc)
			return rc;
	}
	x = json_object();
	rej = json_array();
	for (size_t i = 0; i < e->nresults; i++)
		if (e->results[i].code < 200 || e->results[i].code > 299) {
			json_t *r = json_object();

			json_object_set_new(r, "addr", json_string(e->results[i].addr));
			json_object_set_new(r, "code", json_integer(e->results[i].code));
			set_opt_str(r, "reply", e->results[i].reply);
			json_array_append_new(rej, r);
		}
	json_object_set_new(x, "accepted",
			    json_integer((json_int_t)(e->nresults -
						      json_array_size(rej))));
	json_object_set_new(x, "rejected", rej);
	if (e->retry_entry)
		json_object_set_new(x, "retry_entry",
				    json_integer((json_int_t)e->retry_entry));
	json_object_set_new(x, "route", json_string(e->relay ? "relay" : "account"));
	set_opt_str(x, "reply", e->data_reply);
	rc = entry_event(t, "message.sent", e, x, err);
	json_decref(x);
	return rc;
}

static int apply_appended(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
			  struct mx_error *err)
{
	const char *failure = arg;

	if (e->state != MX_OB_SENT || e->appended || !mine(e))
		return mx_error_set(err, TAKEN, "outbox entry %llu is taken",
				    (unsigned long long)e->id);
	release(e);
	if (failure) {
		e->append_attempts++;
		if (replace_str(&e->last_error, failure) < 0)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		if (e->append_attempts < OB_APPEND_MAX_ATTEMPTS) {
			e->next_attempt = mx_wall_s() +
					  backoff(e->append_attempts);
			return MX_OK;
		}
		/* Given up; the error stays in the entry. */
	} else {
		free(e->last_error);
		e->last_error = NULL;
	}
	e->appended = true;
	e->finished_at = mx_wall_s();
	/* Done with the bytes: the message record holds its own reference. */
	return mx_store_blob_unref(t, e->sha256, err);
}

static int apply_recovered(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
			   struct mx_error *err)
{
	struct sent_arg s = {NULL, arg, false};
	int rc;

	rc = apply_sent(t, e, &s, err); /* checks it is ours */

	if (rc == MX_OK && replace_str(&e->data_reply, "(found in Sent after "
				       "an interrupted attempt)") < 0)
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
	return rc;
}

/* ---- the Sent folder over IMAP ---- */

struct imap_session {
	const struct mx_backend_ops *be; /* once connected */
	struct mx_conn *conn;
	char *sent_wire;
};

/* A copy in Sent needs a folder to select, a search by Message-ID (so a
 * retry puts no second copy) and APPEND. */
#define SENT_COPY_CAPS (MX_CAP_MODEL_UID | MX_CAP_SEARCH | MX_CAP_APPEND)

static bool has_sent_folder(const struct mx_account *a)
{
	const struct mx_backend_ops *be = mx_backend_for_account(a);

	return be && (be->caps & SENT_COPY_CAPS) == SENT_COPY_CAPS;
}

static void imap_session_close(struct imap_session *s)
{
	if (s->conn)
		s->be->disconnect(&s->conn);
	free(s->sent_wire);
	s->sent_wire = NULL;
}

/* Connects and finds the Sent folder: \Sent (RFC 6154), else a folder
 * named like one. */
static int imap_sent_open(struct mx_store *st, struct mx_account *a,
			  struct imap_session *s, struct mx_error *err)
{
	static const char *const names[] = {"Sent", "Sent Items",
					    "Sent Messages", "Sent Mail"};
	const struct mx_backend_ops *be;
	struct mx_remote_folder *v = NULL;
	struct mx_select_result sel = {0};
	size_t n = 0;
	int rc;

	if (s->conn)
		return MX_OK;
	if (!has_sent_folder(a))
		return mx_error_set(err, MX_ERR_UNSUPPORTED, "account %s has no "
				    "IMAP server for a Sent folder", a->name);
	rc = mx_backend_connect(st, a, &s->be, &s->conn, err);
	be = s->be;
	if (rc == MX_OK)
		rc = be->list(s->conn, &v, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n && !s->sent_wire; i++)
		if (v[i].special & MX_SU_SENT)
			s->sent_wire = strdup(v[i].wire);
	for (size_t k = 0; rc == MX_OK && k < MX_ARRAY_SIZE(names) &&
			   !s->sent_wire; k++)
		for (size_t i = 0; i < n && !s->sent_wire; i++)
			if (!v[i].noselect && strcasecmp(v[i].name, names[k]) == 0)
				s->sent_wire = strdup(v[i].wire);
	mx_remote_folders_free(v, n);
	if (rc == MX_OK && s->sent_wire == NULL)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "account %s: no Sent "
				  "folder (no \\Sent special-use folder and "
				  "none named Sent)", a->name);
	if (rc == MX_OK)
		rc = be->select(s->conn, s->sent_wire, 0, 0, &sel, err);
	mx_select_result_free(&sel);
	if (rc)
		imap_session_close(s);
	return rc;
}

/* Whether a message with E's Message-ID is in Sent. */
static int in_sent(struct imap_session *s, const struct mx_ob_entry *e,
		   bool *found_r, struct mx_error *err)
{
	const struct mx_backend_ops *be = s->be;
	struct mx_select_result sel = {0};
	uint32_t *uids = NULL;
	size_t n = 0;
	int rc;

	/* Select again: a fresh view of the folder, for a copy the server
	 * filed a moment ago. */
	rc = be->select(s->conn, s->sent_wire, 0, 0, &sel, err);
	mx_select_result_free(&sel);
	if (rc == MX_OK)
		rc = be->search_header(s->conn, "Message-ID", e->message_id,
				       &uids, &n, err);
	free(uids);
	*found_r = n > 0;
	return rc;
}

static int append_to_sent(struct mx_store *st, struct imap_session *s,
			  const struct mx_ob_entry *e, struct mx_error *err)
{
	struct mx_txn t;
	const char *raw;
	size_t len;
	bool found = false;
	int rc;

	rc = in_sent(s, e, &found, err);
	if (rc || found)
		return rc;
	/* The bytes are read from the store's map: no copy. */
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_blob_get(&t, e->sha256, &raw, &len, err);
	if (rc == MX_OK)
		rc = s->be->append(s->conn, s->sent_wire, MX_FL_SEEN, raw,
				   len, NULL, err);
	mx_txn_abort(&t);
	return rc;
}

/* ---- SMTP ---- */

struct blob_reader {
	const char *p;
	size_t len, off;
};

static ssize_t blob_read(void *ctx, char *buf, size_t cap)
{
	struct blob_reader *r = ctx;
	size_t n = r->len - r->off < cap ? r->len - r->off : cap;

	if (r->off > 0)
		test_kill_at("data"); /* mid-DATA: some bytes went out */
	memcpy(buf, r->p + r->off, n);
	r->off += n;
	return (ssize_t)n;
}

/* The SMTP settings for A's own server (RELAY false) or its relay.
 * *PW_R holds a password read from a file (wipe and free). */
static int smtp_cfg(struct mx_store *st, struct mx_account *a, bool relay,
		    bool force_refresh, struct mx_smtp_cfg *cfg, char **pw_r,
		    struct mx_error *err)
{
	const struct mx_smtp_server *sv = relay ? &a->relay : &a->smtp;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	*pw_r = NULL;
	if (sv->host == NULL)
		return mx_error_set(err, MX_ERR_CONFIG, relay
				    ? "account %s has no fallback relay"
				    : "account %s has no SMTP server", a->name);
	cfg->host = sv->host;
	cfg->port = sv->port;
	cfg->tls = sv->tls;
	cfg->ca_file = a->ca_file;
	cfg->timeout_s = a->timeout_s;
	cfg->mechanism = sv->mechanism;
	if (relay) {
		cfg->user = sv->user;
		cfg->password = sv->password;
		/* smtp+plain:// to a relay without credentials is the
		 * operator's explicit choice (a LAN MTA on port 25). */
		cfg->insecure_plaintext = sv->tls == MX_TLS_NONE && !sv->user;
		return MX_OK;
	}
	cfg->user = sv->user ? sv->user : a->user;
	cfg->insecure_plaintext = a->insecure_plaintext;
	if (sv->password) {
		cfg->password = sv->password;
		return MX_OK;
	}
	if (a->refresh_token || a->access_token) {
		rc = mx_account_fresh_token(st, a, force_refresh, err);
		if (rc)
			return rc;
		cfg->access_token = a->access_token;
		return MX_OK;
	}
	rc = mx_account_password(a, pw_r, err);
	cfg->password = *pw_r;
	return rc;
}

static int64_t backoff(unsigned attempts)
{
	int64_t d = OB_BACKOFF_MIN;

	for (unsigned i = 1; i < attempts && d < OB_BACKOFF_MAX; i++)
		d *= 2;
	return d < OB_BACKOFF_MAX ? d : OB_BACKOFF_MAX;
}

/*
 * The SMTP session of a run, kept open for the next due entry of the same
 * account and route: a session costs a connection, a TLS handshake, EHLO
 * and AUTH (4-5 round trips to a real server), a transaction on an open
 * one 1-2.  Closed at the end of the run, so QUIT always comes after the
 * commits.
 */
struct smtp_cache {
	struct mx_smtp *s;
	uint32_t account;
	bool relay;
};

static void smtp_cache_close(struct smtp_cache *c)
{
	mx_smtp_close(&c->s);
}

/* The session cannot carry another transaction. */
static bool session_broken(int rc)
{
	return rc == MX_ERR_NET || rc == MX_ERR_TIMEOUT || rc == MX_ERR_TLS ||
	       rc == MX_ERR_PROTOCOL || rc == MX_ERR_IO || rc == MX_ERR_NOMEM;
}

/* The server answered nothing in this transaction: with or without
 * PIPELINING no message byte went out (the body waits for the 354), so
 * nothing can have been delivered. */
static bool no_reply_at_all(const struct mx_smtp_result *r)
{
	if (r->data_code != 0)
		return false;
	for (size_t i = 0; i < r->nrcpt; i++)
		if (r->rcpt[i].code != 0)
			return false;
	return true;
}

static int smtp_open_for(struct mx_store *st, struct mx_account *a,
			 bool relay, struct mx_smtp **s_r, struct mx_error *err)
{
	struct mx_smtp_cfg cfg;
	char *pw = NULL;
	int rc = MX_OK;

	for (int pass = 0; pass < 2; pass++) {
		rc = smtp_cfg(st, a, relay, pass == 1, &cfg, &pw, err);
		if (rc == MX_OK)
			rc = mx_smtp_open(&cfg, s_r, err);
		if (pw) {
			memset(pw, 0, strlen(pw));
			free(pw);
			pw = NULL;
		}
		/* A refused access token: refresh it once, then no more. */
		if (rc == MX_ERR_AUTH && cfg.access_token && pass == 0)
			continue;
		break;
	}
	return rc;
}

/* One SMTP transaction for E through A's server or relay, on the run's
 * session if it fits (C), else a new one.  *RES gets the server's
 * replies.  A kept session that turns out to be dead (the server closed
 * it while idle) is replaced once, if nothing can have been delivered. */
static int smtp_attempt(struct mx_store *st, struct mx_account *a,
			struct mx_ob_entry *e, struct smtp_cache *c,
			struct mx_smtp_result *res, struct mx_error *err)
{
	struct blob_reader br = {0};
	struct mx_txn t;
	int rc = MX_OK;

	if (c->s && (c->account != a->id || c->relay != e->relay))
		smtp_cache_close(c);
	for (int round = 0; round < 2; round++) {
		bool reused = c->s != NULL;

		if (!reused) {
			rc = smtp_open_for(st, a, e->relay, &c->s, err);
			if (rc)
				return rc;
			c->account = a->id;
			c->relay = e->relay;
		}
		rc = mx_txn_begin(st, false, &t, err);
		if (rc)
			return rc;
		br.off = 0;
		rc = mx_store_blob_get(&t, e->sha256, &br.p, &br.len, err);
		if (rc == MX_OK)
			rc = mx_smtp_send(c->s, e->from,
					  (const char *const *)e->rcpts,
					  e->nrcpts, blob_read, &br, br.len, 0,
					  res, err);
		mx_txn_abort(&t);
		if (rc == MX_OK || !session_broken(rc))
			return rc;
		smtp_cache_close(c);
		if (!reused || !no_reply_at_all(res))
			return rc;
		mx_smtp_result_free(res);
	}
	return rc;
}

/* ---- through the backend (MX_CAP_SEND) ---- */

/*
 * E through A's backend: one connection per message (a send costs 100
 * of Gmail's quota units, the connection little next to it).  On success
 * *RES reads as an SMTP transaction every recipient accepted, so the
 * entry, its events and the send log are what they are for SMTP.  On an
 * error *MAYBE_SENT_R says whether the provider may have it after all.
 */
static int backend_attempt(struct mx_store *st, struct mx_account *a,
			   const struct mx_ob_entry *e,
			   struct mx_smtp_result *res, bool *maybe_sent_r,
			   struct mx_error *err)
{
	const struct mx_backend_ops *be = NULL;
	struct mx_conn *conn = NULL;
	struct mx_buf reply = {0};
	const char *p;
	size_t len;
	char *id = NULL;
	struct mx_txn t;
	int rc;

	*maybe_sent_r = false;
	rc = mx_backend_connect(st, a, &be, &conn, err);
	if (rc)
		return rc;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		goto out;
	rc = mx_store_blob_get(&t, e->sha256, &p, &len, err);
	if (rc == MX_OK)
		test_kill_at("data"); /* the request about to leave */
	if (rc == MX_OK)
		rc = be->send(conn, p, len, (const char *const *)e->rcpts,
			      e->nrcpts, e->thread, &id, maybe_sent_r, err);
	mx_txn_abort(&t);
	if (rc)
		goto out;
	res->rcpt = calloc(e->nrcpts ? e->nrcpts : 1, sizeof(*res->rcpt));
	if (mx_buf_printf(&reply, "%s: sent as %s", be->title,
			  id ? id : "?") == 0)
		res->data_reply = mx_buf_steal(&reply);
	if (res->rcpt == NULL || res->data_reply == NULL) {
		/* It went out: say so rather than lose that. */
		mx_smtp_result_free(res);
		goto out;
	}
	for (size_t i = 0; i < e->nrcpts; i++) {
		res->rcpt[i].addr = e->rcpts[i];
		res->rcpt[i].code = 250;
	}
	res->nrcpt = res->accepted = e->nrcpts;
	res->data_code = 250;
out:
	mx_buf_free(&reply);
	free(id);
	if (conn)
		be->disconnect(&conn);
	return rc;
}

static bool needs_append(const struct mx_account *a,
			 const struct mx_ob_entry *e)
{
	/* Bulk mail is not the user's correspondence; mail that went
	 * through the relay was never seen by the provider; otherwise the
	 * provider files it itself when it says so (Gmail). */
	if (e->bulk || e->parent || !has_sent_folder(a))
		return false;
	return e->relay || !a->saves_sent;
}

/* Copies sent entry E into Sent, claimed so that no other sender does it
 * at the same time; failures are recorded for a later retry. */
static int copy_to_sent(struct mx_store *st, struct mx_account *a,
			struct mx_ob_entry *e, struct imap_session *is,
			struct mx_ob_run_stats *stats, struct mx_error *err)
{
	struct mx_error aerr = {0};
	int rc, r;

	rc = run_step(st, e, apply_claim, NULL, err);
	if (rc == TAKEN)
		return MX_OK;
	if (rc)
		return rc;
	r = imap_sent_open(st, a, is, &aerr);
	if (r == MX_OK)
		r = append_to_sent(st, is, e, &aerr);
	if (r != MX_OK)
		imap_session_close(is);
	rc = run_step(st, e, apply_appended, r == MX_OK ? NULL : aerr.detail,
		      err);
	if (rc == MX_OK && r == MX_OK && stats)
		stats->appended++;
	return rc;
}

/* Sends E (queued and due). */
static int send_entry(struct mx_store *st, struct mx_account *a,
		      struct mx_ob_entry *e, struct imap_session *is,
		      struct smtp_cache *sc, struct mx_ob_run_stats *stats,
		      struct mx_error *err)
{
	struct mx_smtp_result res = {0};
	struct mx_error serr = {0};
	int64_t now = mx_wall_s();
	bool maybe_sent = false;
	int rc;

	if (a->disabled) {
		/* Stays queued until the account is enabled; looked at again
		 * every few minutes, not at every wake-up. */
		struct defer_arg d = {"account disabled", now + 5 * OB_BACKOFF_MIN,
				      false, NULL};

		rc = run_step(st, e, apply_defer, &d, err);
		return rc == TAKEN ? MX_OK : rc;
	}
	{
		/* Bulk mail only ever goes through the relay, also for an
		 * account whose backend sends. */
		struct sending_arg sa = {a, e->bulk || (a->smtp.host == NULL &&
							!sending_backend(a)),
					 false};

		/* Claimed, with the route and the quota decided, in one
		 * transaction. */
		rc = run_step(st, e, apply_sending, &sa, err);
		if (rc == TAKEN)
			return MX_OK; /* another sender has it */
		if (rc)
			return rc;
		if (sa.held) {
			if (stats)
				stats->held++;
			return MX_OK;
		}
	}
	if (!e->relay && sending_backend(a))
		rc = backend_attempt(st, a, e, &res, &maybe_sent, &serr);
	else
		rc = smtp_attempt(st, a, e, sc, &res, &serr);
	if (rc == MX_OK) {
		struct sent_arg s = {&res, a, needs_append(a, e)};

		rc = run_step(st, e, apply_sent, &s, err);
		mx_smtp_result_free(&res);
		if (rc)
			return rc;
		if (stats) {
			stats->sent++;
			stats->relayed += e->relay;
		}
		test_kill_at("sent");
		if (!e->appended)
			rc = copy_to_sent(st, a, e, is, stats, err);
		return rc;
	}
	{
		/* Not sent: a final answer fails the entry, anything else is
		 * retried with back-off, up to a limit. */
		struct defer_arg d = {serr.detail, 0, false, &res};
		bool final = serr.retry == MX_RETRY_FINAL &&
			     (rc == MX_ERR_SERVER || rc == MX_ERR_INVAL ||
			      rc == MX_ERR_UNSUPPORTED || rc == MX_ERR_CONFIG ||
			      rc == MX_ERR_TLS_VERIFY || rc == MX_ERR_INSECURE);
		char msg[sizeof(serr.detail) + 200];

		if (maybe_sent) {
			/* The provider may have sent it: never a second send
			 * on our own (one key, one send).  The user looks in
			 * Sent and decides: outbox retry or cancel. */
			snprintf(msg, sizeof(msg), "outcome unknown, the "
				 "provider may have sent it (look in Sent, then "
				 "outbox retry or cancel): %s", serr.detail);
			d.error = msg;
			final = true;
		} else if (!final && (e->attempts >= OB_MAX_ATTEMPTS ||
			       now - e->first_try > OB_MAX_AGE)) {
			snprintf(msg, sizeof(msg), "gave up after %u attempts: %s",
				 e->attempts, serr.detail);
			d.error = msg;
			final = true;
		}
		d.final = final;
		d.next = now + backoff(e->attempts);
		rc = run_step(st, e, apply_defer, &d, err);
		mx_smtp_result_free(&res);
		if (stats) {
			if (final)
				stats->failed++;
			else
				stats->deferred++;
		}
		return rc;
	}
}

/*
 * An entry left in "sending" by a process that is gone: did it go out?
 * Only a provider that files submitted mail itself (saves_sent) can have
 * it in Sent at this point -- our own copy is made after the "sent"
 * commit -- so for everything else absence is certain and the entry is
 * simply queued again.
 */
static int recover_entry(struct mx_store *st, struct mx_account *a,
			 struct mx_ob_entry *e, struct imap_session *is,
			 struct mx_ob_run_stats *stats, struct mx_error *err)
{
	struct mx_error ierr = {0};
	bool found = false;
	int rc;

	/* Claimed first: the check and its outcome are ours alone. */
	rc = run_step(st, e, apply_claim, NULL, err);
	if (rc == TAKEN)
		return MX_OK; /* its sender is alive and at work */
	if (rc)
		return rc;
	if (!e->relay && sending_backend(a)) {
		/* Sent through the backend: whether the provider got it
		 * cannot be asked, so it is not sent again on our own. */
		struct defer_arg d = {"interrupted while sending through the "
				      "provider; outcome unknown (look in "
				      "Sent, then outbox retry or cancel)",
				      0, true, NULL};

		rc = run_step(st, e, apply_defer, &d, err);
		if (rc == MX_OK && stats)
			stats->failed++;
		return rc == TAKEN ? MX_OK : rc;
	}
	if (has_sent_folder(a) && a->saves_sent && !e->relay &&
	    !e->bulk) {
		rc = imap_sent_open(st, a, is, &ierr);
		if (rc == MX_OK)
			rc = in_sent(is, e, &found, &ierr);
		if (rc != MX_OK) {
			char why[sizeof(ierr.detail) + 64];

			/* Cannot tell now: look again later rather than risk
			 * a second delivery. */
			imap_session_close(is);
			snprintf(why, sizeof(why), "interrupted; cannot check "
				 "Sent yet: %s", ierr.detail);
			rc = run_step(st, e, apply_later, why, err);
			return rc == TAKEN ? MX_OK : rc;
		}
	}
	if (found) {
		rc = run_step(st, e, apply_recovered, a, err);
		if (rc == MX_OK && stats)
			stats->recovered++;
		return rc == TAKEN ? MX_OK : rc;
	}
	rc = run_step(st, e, apply_requeue, NULL, err);
	return rc == TAKEN ? MX_OK : rc;
}

struct scan_ctx {
	enum mx_dbi db;
	uint32_t account_id;
	struct mx_ob_entry *v;
	size_t n, cap;
};

static int scan_one(struct mx_txn *t, const MDB_val *key, const MDB_val *val,
		    void *ctx, struct mx_error *err)
{
	struct scan_ctx *sc = ctx;
	struct mx_ob_entry e;
	int rc;

	if (sc->db == MX_DB_OUTBOX)
		rc = entry_decode(val->mv_data, val->mv_size, &e, err);
	else if (key->mv_size == 8)
		rc = entry_get(t, mx_get_be64(key->mv_data), &e, err);
	else
		return MX_OK;
	if (rc == MX_ERR_NOTFOUND && sc->db != MX_DB_OUTBOX)
		return MX_OK; /* stale index entry: nothing to do */
	if (rc)
		return rc;
	if (sc->account_id && e.account_id != sc->account_id) {
		mx_ob_entry_free(&e);
		return MX_OK;
	}
	if (sc->n == sc->cap) {
		struct mx_ob_entry *nv;

		sc->cap = sc->cap ? sc->cap * 2 : 16;
		nv = realloc(sc->v, sc->cap * sizeof(*nv));
		if (nv == NULL) {
			mx_ob_entry_free(&e);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
		sc->v = nv;
	}
	sc->v[sc->n++] = e;
	return MX_OK;
}

/*
 * Entries in id order: every entry (DB MX_DB_OUTBOX) or those the pending
 * index names (MX_DB_OUTBOX_PENDING); ACCOUNT_ID 0 = all accounts.
 */
int scan_entries(struct mx_store *st, enum mx_dbi db,
		 uint32_t account_id, struct mx_ob_entry **v_r,
		 size_t *n_r, struct mx_error *err)
{
	struct scan_ctx sc = {db, account_id, NULL, 0, 0};
	struct mx_txn t;
	int rc;

	*v_r = NULL;
	*n_r = 0;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	rc = mx_store_walk(&t, db, NULL, 0, NULL, 0, 0, "outbox", scan_one,
			   &sc, err);
	mx_txn_abort(&t);
	if (rc) {
		mx_ob_entries_free(sc.v, sc.n);
		return rc;
	}
	*v_r = sc.v;
	*n_r = sc.n;
	return MX_OK;
}

struct due {
	uint64_t id;
	uint32_t account;
};

/* The pending entries (MX_DB_OUTBOX_PENDING), decoded. */
int pending_entries(struct mx_store *st, struct mx_ob_entry **v_r,
		    size_t *n_r, struct mx_error *err)
{
	return scan_entries(st, MX_DB_OUTBOX_PENDING, 0, v_r, n_r, err);
}

static int collect_due(struct mx_store *st, const struct mx_ob_run_opts *o,
		       struct due **v_r, size_t *n_r, struct mx_error *err)
{
	struct mx_ob_entry *v = NULL;
	struct due *d;
	size_t n = 0, k = 0;
	int64_t now = mx_wall_s();
	int rc;

	rc = pending_entries(st, &v, &n, err);
	if (rc)
		return rc;
	d = calloc(n + 1, sizeof(*d));
	if (d == NULL) {
		mx_ob_entries_free(v, n);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	for (size_t i = 0; i < n; i++) {
		const struct mx_ob_entry *e = &v[i];
		/* Another live process's entry is its business. */
		bool due = !held_elsewhere(e) &&
			   (e->next_attempt <= now || (o && o->now));

		if (o && o->only_id && e->id != o->only_id)
			continue;
		if (o && o->account_id && e->account_id != o->account_id)
			continue;
		if (due)
			d[k++] = (struct due){e->id, e->account_id};
	}
	mx_ob_entries_free(v, n);
	*v_r = d;
	*n_r = k;
	return MX_OK;
}

int mx_outbox_run(struct mx_store *st, const struct mx_ob_run_opts *o,
		  struct mx_ob_run_stats *stats, struct mx_error *err)
{
	struct imap_session is = {0};
	struct smtp_cache sc = {0};
	struct mx_account a = {0};
	struct due *d = NULL;
	size_t n = 0;
	int rc;

	if (stats)
		memset(stats, 0, sizeof(*stats));
	rc = collect_due(st, o, &d, &n, err);
	for (size_t i = 0; rc == MX_OK && i < n; i++) {
		struct mx_ob_entry e = {0};
		struct mx_txn t;

		if (o && o->cancel && *o->cancel) {
			rc = mx_error_set(err, MX_ERR_CANCELLED, "interrupted");
			break;
		}
		if (a.id != d[i].account) {
			imap_session_close(&is);
			smtp_cache_close(&sc);
			mx_account_free(&a);
			rc = mx_account_load_id(st, d[i].account, &a, err);
			if (rc == MX_ERR_NOTFOUND) {
				rc = MX_OK; /* removed account: left alone */
				continue;
			}
			if (rc)
				break;
			if (o && o->disabled && o->disabled(&a, o->ctx))
				a.disabled = true;
		}
		rc = mx_txn_begin(st, false, &t, err);
		if (rc)
			break;
		rc = entry_get(&t, d[i].id, &e, err);
		mx_txn_abort(&t);
		if (rc)
			break;
		switch (e.state) {
		case MX_OB_SENDING:
			rc = recover_entry(st, &a, &e, &is, stats, err);
			if (rc == MX_OK && e.state == MX_OB_QUEUED)
				rc = send_entry(st, &a, &e, &is, &sc, stats,
						err);
			break;
		case MX_OB_QUEUED:
			rc = send_entry(st, &a, &e, &is, &sc, stats, err);
			break;
		case MX_OB_SENT:
			if (!e.appended)
				rc = copy_to_sent(st, &a, &e, &is, stats, err);
			break;
		default:
			break;
		}
		mx_ob_entry_free(&e);
	}
	/* QUIT (SMTP) and LOGOUT after every commit of the run. */
	smtp_cache_close(&sc);
	imap_session_close(&is);
	mx_account_free(&a);
	free(d);
	return rc;
}
