/*
 * The daemon's state record of an account (MX_DB_ACCTSTATE): encoded and
 * decoded here only, so that mxsyncd, which writes it, and the CLI, which
 * asks it to reauthorize an account through it, agree on one format.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "events/events.h"
#include "events/types.h"

static int put_int(json_t *o, const char *key, int64_t v)
{
	if (v == 0)
		return 0;
	return json_object_set_new(o, key, json_integer((json_int_t)v));
}

int mx_acctstate_put(struct mx_txn *t, uint32_t account_id,
		     const struct mx_acctstate *s, struct mx_error *err)
{
	json_t *o = NULL;
	char *text = NULL;
	uint8_t k[4];
	int rc;

	if (s->state[0] == '\0' ||
	    strnlen(s->state, sizeof(s->state)) == sizeof(s->state))
		return mx_error_set(err, MX_ERR_INVAL, "daemon state of account "
				    "%u: empty or too long state name",
				    account_id);
	o = json_object();
	if (o == NULL ||
	    json_object_set_new(o, "state", json_string(s->state)) != 0 ||
	    json_object_set_new(o, "since", json_integer(s->since)) != 0 ||
	    put_int(o, "pid", s->pid) != 0 ||
	    put_int(o, "last_success", s->last_success) != 0 ||
	    (s->last_error[0] &&
	     json_object_set_new(o, "last_error",
				 json_string(s->last_error)) != 0) ||
	    put_int(o, "next_attempt", s->next_attempt) != 0) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	mx_put_be32(k, account_id);
	rc = mx_db_put(t, MX_DB_ACCTSTATE, k, 4, text, strlen(text), 0, err);
out:
	free(text);
	json_decref(o);
	return rc;
}

static int64_t get_int(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int mx_acctstate_get(struct mx_txn *t, uint32_t account_id,
		     struct mx_acctstate *s_r, struct mx_error *err)
{
	const char *state, *last_error;
	json_t *o;
	uint8_t k[4];
	MDB_val v;
	int rc;

	memset(s_r, 0, sizeof(*s_r));
	mx_put_be32(k, account_id);
	rc = mx_db_get(t, MX_DB_ACCTSTATE, k, 4, &v, err);
	if (rc)
		return rc;
	o = json_loadb(v.mv_data, v.mv_size, 0, NULL);
	state = json_string_value(json_object_get(o, "state"));
	if (state == NULL || state[0] == '\0' ||
	    strlen(state) >= sizeof(s_r->state)) {
		json_decref(o);
		return mx_error_set(err, MX_ERR_STORE, "daemon state of account "
				    "%u: corrupt record", account_id);
	}
	snprintf(s_r->state, sizeof(s_r->state), "%s", state);
	s_r->since = get_int(o, "since");
	s_r->pid = get_int(o, "pid");
	s_r->last_success = get_int(o, "last_success");
	last_error = json_string_value(json_object_get(o, "last_error"));
	if (last_error)
		snprintf(s_r->last_error, sizeof(s_r->last_error), "%s",
			 last_error);
	s_r->next_attempt = get_int(o, "next_attempt");
	json_decref(o);
	return MX_OK;
}

int mx_acctstate_request_reauth(struct mx_txn *t, uint32_t account_id,
				struct mx_error *err)
{
	struct mx_acctstate s = {.state = MX_ACCTSTATE_REAUTH};
	int rc;

	s.since = mx_wall_s();
	rc = mx_acctstate_put(t, account_id, &s, err);
	if (rc == MX_OK)
		rc = mx_event_account_reauth(t, account_id, err);
	return rc;
}

bool mx_acctstate_reauth_requested(struct mx_txn *t, uint32_t account_id)
{
	struct mx_acctstate s;

	return mx_acctstate_get(t, account_id, &s, NULL) == MX_OK &&
	       strcmp(s.state, MX_ACCTSTATE_REAUTH) == 0;
}
