/* The outbox entries: who works on one, the record codec, the states
 * (see outbox.h for the state machine and routing). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mime/mime.h"
#include "send/outbox_int.h"

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
void test_kill_at(const char *point)
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

void claim(struct mx_ob_entry *e)
{
	e->owner_pid = (int)getpid();
	e->owner_start = proc_start(e->owner_pid);
}

void release(struct mx_ob_entry *e)
{
	e->owner_pid = 0;
	e->owner_start = 0;
}

bool mine(const struct mx_ob_entry *e)
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
bool held_elsewhere(const struct mx_ob_entry *e)
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
	free(e->thread);
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
bool set_opt_str(json_t *o, const char *k, const char *v)
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
	ok &= set_opt_str(o, "thread", e->thread);
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

int entry_decode(const void *data, size_t len, struct mx_ob_entry *e,
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
	e->thread = jstr(o, "thread");
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

int entry_get(struct mx_txn *t, uint64_t id, struct mx_ob_entry *e,
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
bool entry_pending(const struct mx_ob_entry *e)
{
	return e->state == MX_OB_QUEUED || e->state == MX_OB_SENDING ||
	       (e->state == MX_OB_SENT && !e->appended);
}

int entry_put(struct mx_txn *t, const struct mx_ob_entry *e,
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
char *clean_dup(const char *v)
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

int replace_str(char **f, const char *v)
{
	char *n = NULL;

	if (v && (n = clean_dup(v)) == NULL)
		return -1;
	free(*f);
	*f = n;
	return 0;
}

/* An outbox event with the entry's essentials. */
int entry_event(struct mx_txn *t, const char *type,
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
