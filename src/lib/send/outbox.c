/* The durable outbox (see outbox.h for the state machine and routing). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "backends/backend.h"
#include "mime/mime.h"
#include "send/outbox.h"
#include "send/smtp.h"
#include "account/account.h"

#define OB_MAX_ATTEMPTS 12       /* then failed */
#define OB_MAX_AGE (2 * 86400)   /* queued longer than this: failed */
#define OB_BACKOFF_MIN 60
#define OB_BACKOFF_MAX 3600
#define OB_APPEND_MAX_ATTEMPTS 8 /* copies to Sent: then given up (logged) */
#define OB_WINDOW 86400          /* the daily quota's rolling window */

static int64_t backoff(unsigned attempts);

const char *mx_ob_state_name(enum mx_ob_state s)
{
	static const char *const n[] = {"queued", "sending", "sent", "failed",
					"cancelled"};

	return (unsigned)s < MX_ARRAY_SIZE(n) ? n[s] : "unknown";
}

static int state_from_name(const char *s)
{
	for (int i = 0; i <= MX_OB_CANCELLED; i++)
		if (s && strcmp(s, mx_ob_state_name((enum mx_ob_state)i)) == 0)
			return i;
	return -1;
}

/* Test hook: MXSYNC_TEST_KILL_AT=data|sent makes the process kill itself
 * with SIGKILL in the middle of DATA, or after "sent" is committed and
 * before the copy goes to Sent (tests/integ/t-send.sh). */
static void test_kill_at(const char *point)
{
	const char *v = getenv("MXSYNC_TEST_KILL_AT");

	if (v && strcmp(v, point) == 0)
		raise(SIGKILL);
}

/* ---- who works on an entry ---- */

/* Start time of process PID (clock ticks since boot, field 22 of
 * /proc/PID/stat), 0 if it does not exist. */
static uint64_t proc_start(int pid)
{
	char path[64], buf[1024], *p;
	uint64_t v = 0;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and ')': fields start after the
	 * last ')'.  Field 3 is the state; the start time is field 22. */
	p = strrchr(buf, ')');
	if (p == NULL)
		return 0;
	p++;
	for (int field = 3; field <= 22 && p; field++) {
		while (*p == ' ')
			p++;
		if (field == 22)
			v = strtoull(p, NULL, 10);
		p = strchr(p, ' ');
	}
	return v;
}

static void claim(struct mx_ob_entry *e)
{
	e->owner_pid = (int)getpid();
	e->owner_start = proc_start(e->owner_pid);
}

static void release(struct mx_ob_entry *e)
{
	e->owner_pid = 0;
	e->owner_start = 0;
}

static bool mine(const struct mx_ob_entry *e)
{
	return e->owner_pid == (int)getpid() &&
	       e->owner_start == proc_start(e->owner_pid);
}

/* Held by a process that is still running (this one included). */
static bool held(const struct mx_ob_entry *e)
{
	return e->owner_pid > 0 && proc_start(e->owner_pid) == e->owner_start &&
	       e->owner_start != 0;
}

/* Held by another live process.  A claim of this process outside a step
 * in progress is stale (a step that failed on a store error): one process
 * runs one outbox run at a time, so it may take its own claims back. */
static bool held_elsewhere(const struct mx_ob_entry *e)
{
	return held(e) && !mine(e);
}

/* ---- entries ---- */

void mx_ob_entry_free(struct mx_ob_entry *e)
{
	if (e == NULL)
		return;
	free(e->message_id);
	free(e->from);
	free(e->subject);
	for (size_t i = 0; i < e->nrcpts; i++)
		free(e->rcpts[i]);
	free(e->rcpts);
	free(e->idem_key);
	free(e->last_error);
	for (size_t i = 0; i < e->nresults; i++) {
		free(e->results[i].addr);
		free(e->results[i].reply);
	}
	free(e->results);
	free(e->data_reply);
	memset(e, 0, sizeof(*e));
}

void mx_ob_entries_free(struct mx_ob_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mx_ob_entry_free(&v[i]);
	free(v);
}

/* Sets K to V when V is set; false if V could not be stored (not UTF-8):
 * a field must never vanish from a record without an error. */
static bool set_opt_str(json_t *o, const char *k, const char *v)
{
	json_t *js;

	if (v == NULL)
		return true;
	js = json_string(v);
	if (js == NULL)
		return false;
	json_object_set_new(o, k, js);
	return true;
}

/* The entry as JSON; *OK_R false when a string field could not be
 * encoded (the caller must not store such a record). */
static json_t *entry_to_json(const struct mx_ob_entry *e, bool *ok_r)
{
	json_t *o = json_object(), *r = json_array(), *res = json_array();
	char hex[65];
	bool ok = true;

	json_object_set_new(o, "id", json_integer((json_int_t)e->id));
	json_object_set_new(o, "account", json_integer(e->account_id));
	json_object_set_new(o, "state", json_string(mx_ob_state_name(e->state)));
	if (e->bulk)
		json_object_set_new(o, "bulk", json_true());
	if (e->relay)
		json_object_set_new(o, "relay", json_true());
	ok &= set_opt_str(o, "message_id", e->message_id);
	ok &= set_opt_str(o, "from", e->from);
	ok &= set_opt_str(o, "subject", e->subject);
	for (size_t i = 0; i < e->nrcpts; i++)
		ok &= json_array_append_new(r, json_string(e->rcpts[i])) == 0;
	json_object_set_new(o, "rcpts", r);
	mx_hex(e->sha256, 32, hex);
	json_object_set_new(o, "sha256", json_string(hex));
	json_object_set_new(o, "size", json_integer((json_int_t)e->size));
	ok &= set_opt_str(o, "idempotency_key", e->idem_key);
	json_object_set_new(o, "created", json_integer(e->created));
	json_object_set_new(o, "next_attempt", json_integer(e->next_attempt));
	if (e->sent_at)
		json_object_set_new(o, "sent_at", json_integer(e->sent_at));
	json_object_set_new(o, "attempts", json_integer(e->attempts));
	ok &= set_opt_str(o, "last_error", e->last_error);
	json_object_set_new(o, "appended", json_boolean(e->appended));
	if (e->append_attempts)
		json_object_set_new(o, "append_attempts",
				    json_integer(e->append_attempts));
	if (e->msg_id)
		json_object_set_new(o, "msg", json_integer((json_int_t)e->msg_id));
	for (size_t i = 0; i < e->nresults; i++) {
		json_t *x = json_object();

		ok &= json_object_set_new(x, "addr",
					  json_string(e->results[i].addr)) == 0;
		json_object_set_new(x, "code", json_integer(e->results[i].code));
		ok &= set_opt_str(x, "reply", e->results[i].reply);
		json_array_append_new(res, x);
	}
	json_object_set_new(o, "results", res);
	ok &= set_opt_str(o, "data_reply", e->data_reply);
	if (e->parent)
		json_object_set_new(o, "parent", json_integer((json_int_t)e->parent));
	if (e->retry_entry)
		json_object_set_new(o, "retry_entry",
				    json_integer((json_int_t)e->retry_entry));
	if (e->first_try)
		json_object_set_new(o, "first_try", json_integer(e->first_try));
	if (e->finished_at)
		json_object_set_new(o, "finished_at",
				    json_integer(e->finished_at));
	if (e->owner_pid) {
		json_object_set_new(o, "owner_pid", json_integer(e->owner_pid));
		json_object_set_new(o, "owner_start",
				    json_integer((json_int_t)e->owner_start));
	}
	*ok_r = ok;
	return o;
}

static char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? strdup(s) : NULL;
}

static int64_t jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static int entry_decode(const void *data, size_t len, struct mx_ob_entry *e,
			struct mx_error *err)
{
	json_error_t je;
	json_t *o = json_loadb(data, len, 0, &je), *a, *v;
	const char *hex;
	size_t i;
	int st;

	memset(e, 0, sizeof(*e));
	if (!json_is_object(o)) {
		json_decref(o);
		return mx_error_set(err, MX_ERR_STORE, "corrupt outbox entry: %s",
				    je.text);
	}
	e->id = (uint64_t)jint(o, "id");
	e->account_id = (uint32_t)jint(o, "account");
	st = state_from_name(json_string_value(json_object_get(o, "state")));
	e->state = st < 0 ? MX_OB_FAILED : (enum mx_ob_state)st;
	e->bulk = json_is_true(json_object_get(o, "bulk"));
	e->relay = json_is_true(json_object_get(o, "relay"));
	e->message_id = jstr(o, "message_id");
	e->from = jstr(o, "from");
	e->subject = jstr(o, "subject");
	a = json_object_get(o, "rcpts");
	e->rcpts = calloc(json_array_size(a) + 1, sizeof(char *));
	json_array_foreach(a, i, v)
		if (e->rcpts && json_is_string(v))
			e->rcpts[e->nrcpts++] = strdup(json_string_value(v));
	hex = json_string_value(json_object_get(o, "sha256"));
	if (hex == NULL || strlen(hex) != 64 || mx_unhex(hex, e->sha256, 32) < 0) {
		json_decref(o);
		mx_ob_entry_free(e);
		return mx_error_set(err, MX_ERR_STORE,
				    "corrupt outbox entry: bad sha256");
	}
	e->size = (uint64_t)jint(o, "size");
	e->idem_key = jstr(o, "idempotency_key");
	e->created = jint(o, "created");
	e->next_attempt = jint(o, "next_attempt");
	e->sent_at = jint(o, "sent_at");
	e->attempts = (unsigned)jint(o, "attempts");
	e->last_error = jstr(o, "last_error");
	e->appended = json_is_true(json_object_get(o, "appended"));
	e->append_attempts = (unsigned)jint(o, "append_attempts");
	e->msg_id = (uint64_t)jint(o, "msg");
	a = json_object_get(o, "results");
	e->results = calloc(json_array_size(a) + 1, sizeof(*e->results));
	json_array_foreach(a, i, v) {
		if (e->results == NULL)
			break;
		/* Every writer gives a result its address; one without is
		 * corrupt, could not be stored again and would be a NULL
		 * recipient on retry: skip it. */
		if (!json_is_string(json_object_get(v, "addr")))
			continue;
		e->results[e->nresults].addr = jstr(v, "addr");
		e->results[e->nresults].code = (int)jint(v, "code");
		e->results[e->nresults].reply = jstr(v, "reply");
		e->nresults++;
	}
	e->data_reply = jstr(o, "data_reply");
	e->parent = (uint64_t)jint(o, "parent");
	e->retry_entry = (uint64_t)jint(o, "retry_entry");
	e->first_try = jint(o, "first_try");
	e->finished_at = jint(o, "finished_at");
	e->owner_pid = (int)jint(o, "owner_pid");
	e->owner_start = (uint64_t)jint(o, "owner_start");
	json_decref(o);
	if (e->rcpts == NULL || e->results == NULL) {
		mx_ob_entry_free(e);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	return MX_OK;
}

void *mx_ob_entry_json(const struct mx_ob_entry *e, const char *account)
{
	bool ok;
	json_t *o = entry_to_json(e, &ok);

	if (account)
		json_object_set_new(o, "account_name", json_string(account));
	return o;
}

static int entry_get(struct mx_txn *t, uint64_t id, struct mx_ob_entry *e,
		     struct mx_error *err)
{
	uint8_t k[8];
	MDB_val v;
	int rc;

	mx_put_be64(k, id);
	rc = mx_db_get(t, MX_DB_OUTBOX, k, 8, &v, err);
	if (rc == MX_ERR_NOTFOUND)
		return mx_error_set(err, rc, "no outbox entry %llu",
				    (unsigned long long)id);
	if (rc)
		return rc;
	return entry_decode(v.mv_data, v.mv_size, e, err);
}

/* Work left: to send, to recover, or to copy into Sent. */
static bool entry_pending(const struct mx_ob_entry *e)
{
	return e->state == MX_OB_QUEUED || e->state == MX_OB_SENDING ||
	       (e->state == MX_OB_SENT && !e->appended);
}

static int entry_put(struct mx_txn *t, const struct mx_ob_entry *e,
		     struct mx_error *err)
{
	bool ok;
	json_t *o = entry_to_json(e, &ok);
	char *s = ok ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	uint8_t k[8];
	int rc;

	json_decref(o);
	if (s == NULL)
		return mx_error_set(err, MX_ERR_INVAL, "outbox entry %llu: "
				    "fields must be UTF-8",
				    (unsigned long long)e->id);
	mx_put_be64(k, e->id);
	rc = mx_db_put(t, MX_DB_OUTBOX, k, 8, s, strlen(s), 0, err);
	free(s);
	/* The pending index keeps the daemon's scans proportional to the
	 * work left, not to the history. */
	if (rc == MX_OK && entry_pending(e))
		rc = mx_db_put(t, MX_DB_OUTBOX_PENDING, k, 8, "", 0, 0, err);
	else if (rc == MX_OK) {
		rc = mx_db_del(t, MX_DB_OUTBOX_PENDING, k, 8, NULL, 0, err);
		if (rc == MX_ERR_NOTFOUND)
			rc = MX_OK;
	}
	return rc;
}

/* A copy of V that is valid UTF-8 (invalid sequences become U+FFFD):
 * server replies may carry Latin-1, and JSON holds only UTF-8. */
static char *clean_dup(const char *v)
{
	struct mx_buf b = {0};

	if (v == NULL)
		return NULL;
	if (mx_utf8_sanitize_append(&b, v, strlen(v)) < 0 ||
	    mx_buf_reserve(&b, 1) < 0) {
		mx_buf_free(&b);
		return NULL;
	}
	return mx_buf_steal(&b);
}

static int replace_str(char **f, const char *v)
{
	char *n = NULL;

	if (v && (n = clean_dup(v)) == NULL)
		return -1;
	free(*f);
	*f = n;
	return 0;
}

/* An outbox event with the entry's essentials. */
static int entry_event(struct mx_txn *t, const char *type,
		       const struct mx_ob_entry *e, json_t *x,
		       struct mx_error *err)
{
	int rc;

	if (x == NULL)
		x = json_object();
	else
		json_incref(x);
	json_object_set_new(x, "outbox_id", json_integer((json_int_t)e->id));
	set_opt_str(x, "message_id", e->message_id);
	rc = mx_store_event(t, type, e->account_id, 0, e->msg_id, x, err);
	json_decref(x);
	return rc;
}

/* ---- the daily quota ---- */

static size_t sendlog_key(uint8_t *k, uint32_t account, int64_t when,
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
static int sendlog_trim(struct mx_txn *t, uint32_t account_id, int64_t now,
			struct mx_error *err)
{
	return sendlog_walk(t, account_id, 0, now - OB_WINDOW, true, NULL, NULL,
			    err);
}

/* ---- enqueue ---- */

struct enq_ctx {
	const struct mx_account *a;
	struct mx_compose *c;
	struct mx_compose_out *out;
	const char *idem_key;
	bool bulk;
	FILE *spool;
	uint8_t sha[32];
	uint64_t id;
	bool existing;
};

/* A's backend when it sends mail itself (the Gmail API mode), else NULL:
 * then personal mail goes through SMTP. */
static const struct mx_backend_ops *sending_backend(const struct mx_account *a)
{
	const struct mx_backend_ops *be = mx_backend_for_account(a);

	return be && (be->caps & MX_CAP_SEND) && be->send ? be : NULL;
}

static size_t idem_key(uint8_t *k, uint32_t account, const char *key)
{
	size_t n = strlen(key);

	mx_put_be32(k, account);
	memcpy(k + 4, key, n);
	return 4 + n;
}

static int idem_find(struct mx_txn *t, uint32_t account, const char *key,
		     uint64_t *id_r, struct mx_error *err)
{
	uint8_t k[4 + 256];
	MDB_val v;
	int rc;

	rc = mx_db_get(t, MX_DB_OUTBOX_KEYS, k, idem_key(k, account, key), &v,
		       err);
	if (rc)
		return rc;
	if (v.mv_size != 8)
		return mx_error_set(err, MX_ERR_STORE, "corrupt outbox key");
	*id_r = mx_get_be64(v.mv_data);
	return MX_OK;
}

static int enq_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct enq_ctx *q = ctx;
	struct mx_ob_entry e = {0};
	uint8_t k[4 + 256], idbe[8];
	void *dst;
	int rc;

	q->existing = false;
	if (q->idem_key) {
		rc = idem_find(t, q->a->id, q->idem_key, &q->id, err);
		if (rc == MX_OK) {
			q->existing = true;
			return MX_OK;
		}
		if (rc != MX_ERR_NOTFOUND)
			return rc;
	}
	rc = mx_db_next_id(t, "next_outbox", &q->id, err);
	if (rc)
		return rc;
	/* The bytes go straight from the spool file into the store. */
	rc = mx_store_blob_reserve(t, q->sha, q->out->size, &dst, err);
	if (rc)
		return rc;
	if (dst) {
		size_t got = 0;

		rewind(q->spool);
		while (got < q->out->size) {
			size_t r = fread((char *)dst + got, 1,
					 q->out->size - got, q->spool);

			if (r == 0)
				return mx_error_set(err, MX_ERR_IO, "reading "
						    "the composed message: %s",
						    strerror(errno));
			got += r;
		}
	}
	e.id = q->id;
	e.account_id = q->a->id;
	e.state = MX_OB_QUEUED;
	e.bulk = q->bulk;
	e.relay = q->bulk;
	e.message_id = q->out->message_id;
	e.from = (char *)(uintptr_t)q->c->from_addr;
	e.subject = (char *)(uintptr_t)q->c->subject;
	e.rcpts = q->out->rcpts;
	e.nrcpts = q->out->nrcpts;
	memcpy(e.sha256, q->sha, 32);
	e.size = q->out->size;
	e.idem_key = (char *)(uintptr_t)q->idem_key;
	e.created = e.next_attempt = mx_wall_s();
	rc = entry_put(t, &e, err);
	if (rc == MX_OK && q->idem_key) {
		mx_put_be64(idbe, q->id);
		rc = mx_db_put(t, MX_DB_OUTBOX_KEYS, k,
			       idem_key(k, q->a->id, q->idem_key), idbe, 8, 0,
			       err);
	}
	if (rc == MX_OK) {
		json_t *x = json_object();

		json_object_set_new(x, "rcpts", json_integer((json_int_t)e.nrcpts));
		json_object_set_new(x, "bulk", json_boolean(e.bulk));
		rc = entry_event(t, "message.queued", &e, x, err);
		json_decref(x);
	}
	return rc;
}

/* SHA-256 of the spool file, streamed. */
static int file_sha256(FILE *f, uint8_t out[32], struct mx_error *err)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char buf[65536];
	size_t n;
	unsigned len = 32;
	int rc = MX_OK;

	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	rewind(f);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		EVP_DigestUpdate(md, buf, n);
	if (ferror(f))
		rc = mx_error_set(err, MX_ERR_IO, "reading the composed "
				  "message: %s", strerror(errno));
	EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
	return rc;
}

int mx_outbox_enqueue(struct mx_store *st, const struct mx_account *a,
		      struct mx_compose *c, const char *idem_key, bool bulk,
		      uint64_t *id_r, bool *existing_r, struct mx_error *err)
{
	struct mx_compose_out out = {0};
	struct enq_ctx q = {a, c, &out, idem_key, bulk, NULL, {0}, 0, false};
	struct mx_txn t;
	int rc;

	*existing_r = false;
	if (idem_key) {
		size_t n = strlen(idem_key);
		bool printable = n > 0 && n <= 200;

		for (size_t i = 0; printable && i < n; i++)
			printable = idem_key[i] > 0x20 && idem_key[i] < 0x7f;
		if (!printable)
			return mx_error_set(err, MX_ERR_INVAL, "idempotency key: "
					    "1 to 200 printable ASCII "
					    "characters, no spaces");
	}
	if (idem_key) {
		rc = mx_txn_begin(st, false, &t, err);
		if (rc)
			return rc;
		rc = idem_find(&t, a->id, idem_key, id_r, err);
		mx_txn_abort(&t);
		if (rc == MX_OK) {
			*existing_r = true;
			return MX_OK;
		}
		if (rc != MX_ERR_NOTFOUND)
			return rc;
		mx_error_clear(err);
	}
	c->from_addr = mx_account_from(a);
	if (c->from_addr == NULL)
		return mx_error_set(err, MX_ERR_CONFIG, "account %s has no "
				    "From address: set one with 'mxsync "
				    "account edit %s --email ADDR'", a->name,
				    a->name);
	if (c->from_name == NULL)
		c->from_name = a->display_name;
	c->max_attach_bytes = mx_account_max_attach(a);
	c->bulk = bulk;
	if (bulk && a->relay.host == NULL)
		return mx_error_set(err, MX_ERR_CONFIG, "bulk mail goes only "
				    "through a fallback relay, and account %s "
				    "has none (--relay URL)", a->name);
	if (!bulk && a->smtp.host == NULL && a->relay.host == NULL &&
	    !sending_backend(a))
		return mx_error_set(err, MX_ERR_CONFIG, "account %s has no "
				    "SMTP server (account edit --smtp URL)",
				    a->name);
	q.spool = tmpfile();
	if (q.spool == NULL)
		return mx_error_set(err, MX_ERR_IO, "temporary file for the "
				    "message: %s", strerror(errno));
	rc = mx_compose_write(c, q.spool, &out, err);
	if (rc == MX_OK && fflush(q.spool) != 0)
		rc = mx_error_set(err, MX_ERR_IO, "writing the message: %s",
				  strerror(errno));
	if (rc == MX_OK)
		rc = file_sha256(q.spool, q.sha, err);
	if (rc == MX_OK)
		rc = mx_store_write(st, enq_fn, &q, err);
	if (rc == MX_OK) {
		*id_r = q.id;
		*existing_r = q.existing;
	}
	fclose(q.spool);
	mx_compose_out_free(&out);
	return rc;
}

/* ---- replies ---- */

int mx_outbox_reply_headers(struct mx_store *st, const struct mx_account *a,
			    const char *ref, char **irt_r, char **refs_r,
			    char **subject_r, struct mx_error *err)
{
	struct mx_msg m = {0};
	struct mx_buf refs = {0};
	struct mx_txn t;
	uint64_t id = 0;
	const char *subj;
	int rc;

	*irt_r = *refs_r = *subject_r = NULL;
	rc = mx_txn_begin(st, false, &t, err);
	if (rc)
		return rc;
	if (strlen(ref) == 16 && strspn(ref, "0123456789abcdef") == 16) {
		uint8_t b[8];

		mx_unhex(ref, b, 8);
		id = mx_get_be64(b);
	} else {
		char *mid = mx_strndup(ref + (ref[0] == '<'),
				       strlen(ref) - (ref[0] == '<') -
					       (ref[0] == '<' &&
						ref[strlen(ref) - 1] == '>'));
		uint64_t *ids = NULL;
		size_t n = 0;

		if (mid == NULL)
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		else
			rc = mx_store_msgid_find(&t, a->id, mid, &ids, &n, err);
		free(mid);
		if (rc == MX_OK && n > 0)
			id = ids[0];
		free(ids);
	}
	if (rc == MX_OK && id == 0)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "no stored message %s "
				  "in account %s", ref, a->name);
	if (rc == MX_OK)
		rc = mx_store_msg_get(&t, id, &m, err);
	mx_txn_abort(&t);
	if (rc == MX_OK && m.account_id != a->id)
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "message %s belongs to "
				  "another account", ref);
	if (rc == MX_OK && (m.p.message_id == NULL || !*m.p.message_id))
		rc = mx_error_set(err, MX_ERR_INVAL, "message %s has no "
				  "Message-ID to reply to", ref);
	if (rc) {
		mx_msg_free(&m);
		return rc;
	}
	for (size_t i = 0; i < m.p.nreferences; i++)
		mx_buf_printf(&refs, "<%s> ", m.p.references[i]);
	mx_buf_printf(&refs, "<%s>", m.p.message_id);
	subj = m.p.subject ? m.p.subject : "";
	if (strncasecmp(subj, "re:", 3) == 0)
		*subject_r = strdup(subj);
	else if (asprintf(subject_r, "Re: %s", subj) < 0)
		*subject_r = NULL;
	if (asprintf(irt_r, "<%s>", m.p.message_id) < 0)
		*irt_r = NULL;
	*refs_r = mx_buf_steal(&refs);
	mx_msg_free(&m);
	if (*irt_r == NULL || *refs_r == NULL || *subject_r == NULL) {
		free(*irt_r);
		free(*refs_r);
		free(*subject_r);
		*irt_r = *refs_r = *subject_r = NULL;
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	return MX_OK;
}

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

static int run_step(struct mx_store *st, struct mx_ob_entry *e,
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
	if (rc == MX_OK)
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
			      e->nrcpts, NULL, &id, maybe_sent_r, err);
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
static int scan_entries(struct mx_store *st, enum mx_dbi db,
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
static int pending_entries(struct mx_store *st, struct mx_ob_entry **v_r,
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

/* ---- listing and user actions ---- */

int mx_outbox_list(struct mx_store *st, uint32_t account_id,
		   struct mx_ob_entry **v_r, size_t *n_r, struct mx_error *err)
{
	return scan_entries(st, MX_DB_OUTBOX, account_id, v_r, n_r, err);
}

int mx_outbox_get(struct mx_store *st, uint64_t id, struct mx_ob_entry *e,
		  struct mx_error *err)
{
	struct mx_txn t;
	int rc = mx_txn_begin(st, false, &t, err);

	if (rc)
		return rc;
	rc = entry_get(&t, id, e, err);
	mx_txn_abort(&t);
	return rc;
}

int64_t mx_outbox_next_due(struct mx_store *st)
{
	struct mx_ob_entry *v = NULL;
	size_t n = 0;
	int64_t next = 0;

	if (pending_entries(st, &v, &n, NULL) != MX_OK)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int64_t when = v[i].next_attempt > 0 ? v[i].next_attempt : 1;

		/* Another process's entry: its commit wakes the daemon, but
		 * the process may die, so look again in a minute. */
		if (held_elsewhere(&v[i]))
			when = mx_wall_s() + OB_BACKOFF_MIN;
		if (next == 0 || when < next)
			next = when;
	}
	mx_ob_entries_free(v, n);
	return next;
}

/* What a user may retry or cancel: queued or failed mail, and an
 * interrupted send nobody is working on (its process is gone). */
static int user_may_touch(const struct mx_ob_entry *e, const char *what,
			  struct mx_error *err)
{
	if (e->state == MX_OB_QUEUED || e->state == MX_OB_FAILED ||
	    (e->state == MX_OB_SENDING && !held_elsewhere(e)))
		return MX_OK;
	return mx_error_set(err, MX_ERR_INVAL, "outbox entry %llu is %s%s: "
			    "only queued, failed or interrupted mail can be %s",
			    (unsigned long long)e->id,
			    mx_ob_state_name(e->state),
			    e->state == MX_OB_SENDING ? " right now" : "", what);
}

static int apply_retry(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
		       struct mx_error *err)
{
	int rc = user_may_touch(e, "retried", err);

	(void)t;
	(void)arg;
	if (rc)
		return rc;
	e->state = MX_OB_QUEUED;
	e->next_attempt = mx_wall_s();
	e->attempts = 0;
	e->first_try = 0; /* the age limit counts from the next attempt */
	e->finished_at = 0;
	release(e);
	return MX_OK;
}

static int apply_cancel(struct mx_txn *t, struct mx_ob_entry *e, void *arg,
			struct mx_error *err)
{
	int rc = user_may_touch(e, "cancelled", err);

	(void)arg;
	if (rc)
		return rc;
	e->state = MX_OB_CANCELLED;
	e->finished_at = mx_wall_s();
	release(e);
	return mx_store_blob_unref(t, e->sha256, err);
}

int mx_outbox_retry(struct mx_store *st, uint64_t id, struct mx_error *err)
{
	struct mx_ob_entry e = {.id = id};
	int rc = run_step(st, &e, apply_retry, NULL, err);

	mx_ob_entry_free(&e);
	return rc;
}

int mx_outbox_cancel(struct mx_store *st, uint64_t id, struct mx_error *err)
{
	struct mx_ob_entry e = {.id = id};
	int rc = run_step(st, &e, apply_cancel, NULL, err);

	mx_ob_entry_free(&e);
	return rc;
}

/* ---- retention ---- */

struct prune_ctx {
	int64_t cutoff;
	uint64_t n;
};

static int prune_one(struct mx_txn *t, const MDB_val *key,
		     const MDB_val *val, void *ctx, struct mx_error *err)
{
	struct prune_ctx *pc = ctx;
	struct mx_ob_entry e;
	int64_t last;
	uint8_t k[4 + 256];
	int rc = MX_OK;

	(void)key;
	if (entry_decode(val->mv_data, val->mv_size, &e, NULL) != MX_OK)
		return MX_OK; /* left for a human to look at */
	/* Entries from before finished_at: their last known time. */
	last = e.finished_at ? e.finished_at
	       : e.sent_at > e.next_attempt ? e.sent_at : e.next_attempt;
	if (entry_pending(&e) || last >= pc->cutoff) {
		mx_ob_entry_free(&e);
		return MX_OK;
	}
	/* Still holding bytes: failed and cancelled-before-release
	 * entries, and sent ones whose copy to Sent was given up. */
	if (e.state == MX_OB_FAILED)
		rc = mx_store_blob_unref(t, e.sha256, err);
	if (rc == MX_OK && e.idem_key)
		rc = mx_db_del(t, MX_DB_OUTBOX_KEYS, k,
			       idem_key(k, e.account_id, e.idem_key),
			       NULL, 0, err);
	if (rc == MX_ERR_NOTFOUND)
		rc = MX_OK;
	mx_ob_entry_free(&e);
	if (rc)
		return rc;
	pc->n++;
	return MX_WALK_DELETE;
}

static int prune_fn(struct mx_txn *t, void *ctx, struct mx_error *err)
{
	struct prune_ctx *pc = ctx;

	pc->n = 0;
	return mx_store_walk(t, MX_DB_OUTBOX, NULL, 0, NULL, 0, 0, "outbox",
			     prune_one, pc, err);
}

int mx_outbox_prune(struct mx_store *st, int64_t max_age_s, uint64_t *n_r,
		    struct mx_error *err)
{
	struct prune_ctx pc = {mx_wall_s() - max_age_s, 0};
	int rc = mx_store_write(st, prune_fn, &pc, err);

	if (n_r)
		*n_r = rc == MX_OK ? pc.n : 0;
	return rc;
}

/* ---- account removal ---- */

struct removed_ctx {
	uint32_t account_id;
	bool purge;
};

static int removed_one(struct mx_txn *t, const MDB_val *key,
		       const MDB_val *val, void *ctx, struct mx_error *err)
{
	const struct removed_ctx *rx = ctx;
	struct mx_ob_entry e;
	uint8_t k[4 + 256];
	bool holds;
	int rc = MX_OK;

	(void)key;
	if (entry_decode(val->mv_data, val->mv_size, &e, NULL) != MX_OK)
		return MX_OK;
	if (e.account_id != rx->account_id) {
		mx_ob_entry_free(&e);
		return MX_OK;
	}
	if (held_elsewhere(&e)) {
		rc = mx_error_set(err, MX_ERR_INVAL, "outbox entry %llu "
				  "of this account is being sent right "
				  "now (process %d); try again when it "
				  "is done", (unsigned long long)e.id,
				  e.owner_pid);
		mx_ob_entry_free(&e);
		return rc;
	}
	/* Entries that still hold their bytes. */
	holds = e.state == MX_OB_QUEUED || e.state == MX_OB_SENDING ||
		e.state == MX_OB_FAILED ||
		(e.state == MX_OB_SENT && !e.appended);
	if (holds)
		rc = mx_store_blob_unref(t, e.sha256, err);
	if (rc == MX_OK && (e.state == MX_OB_QUEUED ||
			    e.state == MX_OB_SENDING)) {
		json_t *x = json_object();

		json_object_set_new(x, "error", json_string("account removed"));
		rc = entry_event(t, "message.failed", &e, x, err);
		json_decref(x);
	}
	if (rc == MX_OK && rx->purge && e.idem_key) {
		rc = mx_db_del(t, MX_DB_OUTBOX_KEYS, k,
			       idem_key(k, e.account_id, e.idem_key),
			       NULL, 0, err);
		if (rc == MX_ERR_NOTFOUND)
			rc = MX_OK;
	}
	if (rc == MX_OK) {
		uint8_t ik[8];

		mx_put_be64(ik, e.id);
		rc = mx_db_del(t, MX_DB_OUTBOX_PENDING, ik, 8, NULL, 0, err);
		if (rc == MX_ERR_NOTFOUND)
			rc = MX_OK;
	}
	if (rc == MX_OK) {
		if (rx->purge) {
			rc = MX_WALK_DELETE;
		} else if (holds) {
			e.state = e.state == MX_OB_SENT ? MX_OB_SENT
							: MX_OB_CANCELLED;
			e.appended = true;
			e.finished_at = mx_wall_s();
			release(&e);
			rc = entry_put(t, &e, err);
		}
	}
	mx_ob_entry_free(&e);
	return rc;
}

int mx_outbox_account_removed(struct mx_txn *t, uint32_t account_id,
			      bool purge, struct mx_error *err)
{
	struct removed_ctx rctx = {account_id, purge};
	int rc;

	rc = mx_store_walk(t, MX_DB_OUTBOX, NULL, 0, NULL, 0, 0, "outbox",
			   removed_one, &rctx, err);
	if (rc == MX_OK && purge) {
		/* The send log of the account. */
		rc = sendlog_trim(t, account_id, INT64_MAX - OB_WINDOW, err);
	}
	return rc;
}

/* ---- counts for status ---- */

struct counts_ctx {
	uint32_t account_id;
	unsigned *counts;
};

static int count_one(struct mx_txn *t, const MDB_val *key, const MDB_val *val,
		     void *ctx, struct mx_error *err)
{
	const struct counts_ctx *cc = ctx;
	struct mx_ob_entry e;
	int rc = entry_decode(val->mv_data, val->mv_size, &e, err);

	(void)t;
	(void)key;
	if (rc)
		return rc;
	if (e.account_id == cc->account_id)
		cc->counts[e.state]++;
	mx_ob_entry_free(&e);
	return MX_OK;
}

int mx_outbox_counts(struct mx_txn *t, uint32_t account_id,
		     unsigned counts[MX_OB_CANCELLED + 1], struct mx_error *err)
{
	struct counts_ctx cc = {account_id, counts};

	memset(counts, 0, sizeof(unsigned) * (MX_OB_CANCELLED + 1));
	return mx_store_walk(t, MX_DB_OUTBOX, NULL, 0, NULL, 0, 0, "outbox",
			     count_one, &cc, err);
}
