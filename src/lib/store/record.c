/*
 * Record codecs.  Accounts, folders and messages are stored as compact JSON
 * (jansson): self-describing, so new fields can be added without a schema
 * migration, and readable with mdb_dump when debugging a customer's store.
 * Locations, the hot path of every flag resync, are a fixed binary layout.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "secrets/secrets.h"
#include "store/store.h"

/* Sets K to V (skipped when NULL).  -1 when V is not UTF-8: jansson
 * refuses such strings and a silently missing field would lose data. */
static int set_str(json_t *o, const char *k, const char *v)
{
	json_t *js;

	if (v == NULL)
		return 0;
	js = json_string(v);
	if (js == NULL)
		return -1;
	return json_object_set_new(o, k, js);
}

static char *get_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? strdup(s) : NULL;
}

static json_int_t get_int(json_t *o, const char *k, json_int_t def)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : def;
}

static char *dump(json_t *o, size_t *len_r, int indent)
{
	char *s;

	if (o == NULL)
		return NULL;
	s = json_dumps(o, indent ? JSON_INDENT(indent) | JSON_PRESERVE_ORDER
				 : JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s && len_r)
		*len_r = strlen(s);
	return s;
}

/* ---- accounts ---- */

/* An SMTP endpoint as PREFIX_url, PREFIX_host, ... (flat keys: the
 * secret sealing in store.c addresses PREFIX_password by name). */
static int smtp_encode(json_t *o, const char *prefix,
		       const struct mx_smtp_server *s)
{
	char k[32];
	int bad = 0;

	if (s->host == NULL)
		return 0;
	snprintf(k, sizeof(k), "%s_url", prefix);
	bad |= set_str(o, k, s->url);
	snprintf(k, sizeof(k), "%s_host", prefix);
	bad |= set_str(o, k, s->host);
	snprintf(k, sizeof(k), "%s_port", prefix);
	json_object_set_new(o, k, json_integer(s->port));
	snprintf(k, sizeof(k), "%s_tls", prefix);
	json_object_set_new(o, k, json_integer(s->tls));
	snprintf(k, sizeof(k), "%s_user", prefix);
	bad |= set_str(o, k, s->user);
	snprintf(k, sizeof(k), "%s_password", prefix);
	bad |= set_str(o, k, s->password);
	snprintf(k, sizeof(k), "%s_mechanism", prefix);
	bad |= set_str(o, k, s->mechanism);
	return bad;
}

static void smtp_decode(json_t *o, const char *prefix,
			struct mx_smtp_server *s)
{
	char k[32];

	snprintf(k, sizeof(k), "%s_url", prefix);
	s->url = get_str(o, k);
	snprintf(k, sizeof(k), "%s_host", prefix);
	s->host = get_str(o, k);
	snprintf(k, sizeof(k), "%s_port", prefix);
	s->port = (uint16_t)get_int(o, k, 0);
	snprintf(k, sizeof(k), "%s_tls", prefix);
	s->tls = (enum mx_tls_mode)get_int(o, k, MX_TLS_STARTTLS);
	snprintf(k, sizeof(k), "%s_user", prefix);
	s->user = get_str(o, k);
	snprintf(k, sizeof(k), "%s_password", prefix);
	s->password = get_str(o, k);
	snprintf(k, sizeof(k), "%s_mechanism", prefix);
	s->mechanism = get_str(o, k);
}

char *mx_account_encode(const struct mx_account *a, size_t *len_r)
{
	json_t *o = json_object();
	int bad = 0;

	json_object_set_new(o, "id", json_integer(a->id));
	bad |= set_str(o, "name", a->name);
	bad |= set_str(o, "imap_url", a->imap_url);
	bad |= set_str(o, "host", a->host);
	json_object_set_new(o, "port", json_integer(a->port));
	json_object_set_new(o, "tls", json_integer(a->tls));
	bad |= set_str(o, "user", a->user);
	bad |= set_str(o, "password", a->password);
	bad |= set_str(o, "refresh_token", a->refresh_token);
	bad |= set_str(o, "access_token", a->access_token);
	bad |= set_str(o, "client_secret", a->client_secret);
	bad |= set_str(o, "password_file", a->password_file);
	bad |= set_str(o, "ca_file", a->ca_file);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "insecure_plaintext",
			    json_boolean(a->insecure_plaintext));
	json_object_set_new(o, "timeout_s", json_integer(a->timeout_s));
	json_object_set_new(o, "created", json_integer(a->created));
	if (a->generation)
		json_object_set_new(o, "generation",
				    json_integer((json_int_t)a->generation));
	bad |= set_str(o, "oauth_token_url", a->oauth_token_url);
	bad |= set_str(o, "oauth_client_id", a->oauth_client_id);
	bad |= set_str(o, "oauth_scope", a->oauth_scope);
	if (a->token_expires)
		json_object_set_new(o, "token_expires",
				    json_integer(a->token_expires));
	if (a->token_refreshed)
		json_object_set_new(o, "token_refreshed",
				    json_integer(a->token_refreshed));
	bad |= set_str(o, "display_name", a->display_name);
	if (a->disabled)
		json_object_set_new(o, "disabled", json_true());
	if (a->proto != MX_PROTO_IMAP)
		json_object_set_new(o, "proto", json_integer(a->proto));
	if (a->pop3_delete)
		json_object_set_new(o, "pop3_delete", json_true());
	bad |= set_str(o, "email", a->email);
	bad |= set_str(o, "provider", a->provider);
	bad |= smtp_encode(o, "smtp", &a->smtp);
	bad |= smtp_encode(o, "relay", &a->relay);
	if (a->saves_sent)
		json_object_set_new(o, "saves_sent", json_true());
	if (a->daily_limit)
		json_object_set_new(o, "daily_limit",
				    json_integer(a->daily_limit));
	if (a->quota_policy != MX_QUOTA_HOLD)
		json_object_set_new(o, "quota_policy",
				    json_integer(a->quota_policy));
	if (a->max_attach)
		json_object_set_new(o, "max_attach",
				    json_integer((json_int_t)a->max_attach));
	json_object_set_new(o, "access", json_integer(a->access));
	bad |= set_str(o, "owner", a->owner);
	if (a->nallowed) {
		json_t *arr = json_array();

		json_object_set_new(o, "allowed", arr);
		for (size_t i = 0; i < a->nallowed; i++) {
			json_t *js = json_string(a->allowed[i]);

			if (js == NULL)
				bad = -1;
			else
				json_array_append_new(arr, js);
		}
	}
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return dump(o, len_r, 0);
}

int mx_account_decode(const char *data, size_t len, struct mx_account *a,
		      struct mx_error *err)
{
	json_error_t je;
	json_t *o;

	memset(a, 0, sizeof(*a));
	o = json_loadb(data, len, 0, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		return mx_error_set(err, MX_ERR_STORE,
				    "corrupt account record: %s", je.text);
	}
	a->id = (uint32_t)get_int(o, "id", 0);
	a->name = get_str(o, "name");
	a->imap_url = get_str(o, "imap_url");
	a->host = get_str(o, "host");
	a->port = (uint16_t)get_int(o, "port", 0);
	a->tls = (enum mx_tls_mode)get_int(o, "tls", MX_TLS_IMPLICIT);
	a->user = get_str(o, "user");
	a->password = get_str(o, "password");
	a->refresh_token = get_str(o, "refresh_token");
	a->access_token = get_str(o, "access_token");
	a->client_secret = get_str(o, "client_secret");
	a->password_file = get_str(o, "password_file");
	a->ca_file = get_str(o, "ca_file");
	a->insecure_plaintext =
		json_is_true(json_object_get(o, "insecure_plaintext"));
	a->timeout_s = (int)get_int(o, "timeout_s", 0);
	a->created = get_int(o, "created", 0);
	a->generation = (uint64_t)get_int(o, "generation", 0);
	a->oauth_token_url = get_str(o, "oauth_token_url");
	a->oauth_client_id = get_str(o, "oauth_client_id");
	a->oauth_scope = get_str(o, "oauth_scope");
	a->token_expires = get_int(o, "token_expires", 0);
	a->token_refreshed = get_int(o, "token_refreshed", 0);
	a->display_name = get_str(o, "display_name");
	a->disabled = json_is_true(json_object_get(o, "disabled"));
	switch (get_int(o, "proto", 0)) {
	case MX_PROTO_POP3:
		a->proto = MX_PROTO_POP3;
		break;
	case MX_PROTO_GMAIL:
		a->proto = MX_PROTO_GMAIL;
		break;
	default:
		a->proto = MX_PROTO_IMAP;
	}
	a->pop3_delete = json_is_true(json_object_get(o, "pop3_delete"));
	a->email = get_str(o, "email");
	a->provider = get_str(o, "provider");
	smtp_decode(o, "smtp", &a->smtp);
	smtp_decode(o, "relay", &a->relay);
	a->saves_sent = json_is_true(json_object_get(o, "saves_sent"));
	a->daily_limit = (int)get_int(o, "daily_limit", 0);
	a->quota_policy = get_int(o, "quota_policy", 0) == MX_QUOTA_RELAY
				  ? MX_QUOTA_RELAY : MX_QUOTA_HOLD;
	a->max_attach = (uint64_t)get_int(o, "max_attach", 0);
	/* Records from before permissions: owner-only is the safe default. */
	switch (get_int(o, "access", MX_ACCESS_OWNER)) {
	case MX_ACCESS_SELECTED: a->access = MX_ACCESS_SELECTED; break;
	case MX_ACCESS_ALL: a->access = MX_ACCESS_ALL; break;
	default: a->access = MX_ACCESS_OWNER; break;
	}
	a->owner = get_str(o, "owner");
	{
		json_t *arr = json_object_get(o, "allowed"), *v;
		size_t i;

		if (json_is_array(arr) && json_array_size(arr) > 0) {
			a->allowed = calloc(json_array_size(arr), sizeof(char *));
			if (a->allowed == NULL) {
				json_decref(o);
				mx_account_free(a);
				return mx_error_set(err, MX_ERR_NOMEM, NULL);
			}
			json_array_foreach(arr, i, v)
				if (json_is_string(v))
					a->allowed[a->nallowed++] =
						strdup(json_string_value(v));
		}
	}
	json_decref(o);
	return MX_OK;
}

void mx_account_free(struct mx_account *a)
{
	if (a == NULL)
		return;
	free(a->name);
	free(a->imap_url);
	free(a->host);
	free(a->user);
	mx_secret_free(a->password);
	mx_secret_free(a->refresh_token);
	mx_secret_free(a->access_token);
	mx_secret_free(a->client_secret);
	free(a->password_file);
	free(a->ca_file);
	free(a->oauth_token_url);
	free(a->oauth_client_id);
	free(a->oauth_scope);
	free(a->display_name);
	free(a->email);
	free(a->provider);
	mx_smtp_server_free(&a->smtp);
	mx_smtp_server_free(&a->relay);
	free(a->owner);
	for (size_t i = 0; i < a->nallowed; i++)
		free(a->allowed[i]);
	free(a->allowed);
	memset(a, 0, sizeof(*a));
}

void mx_smtp_server_free(struct mx_smtp_server *s)
{
	free(s->url);
	free(s->host);
	free(s->user);
	mx_secret_free(s->password);
	free(s->mechanism);
	memset(s, 0, sizeof(*s));
}

int mx_account_password(const struct mx_account *a, char **pw_r,
			struct mx_error *err)
{
	char *data;
	size_t len;
	int rc;

	if (a->password) {
		*pw_r = strdup(a->password);
		return *pw_r ? MX_OK : mx_error_set(err, MX_ERR_NOMEM, NULL);
	}
	if (a->password_file == NULL)
		return mx_error_set(err, MX_ERR_CONFIG,
				    "account %s has no password or "
				    "password file", a->name);
	rc = mx_read_file(a->password_file, 4096, &data, &len, err);
	if (rc)
		return rc;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	*pw_r = data;
	return MX_OK;
}

const char *mx_account_from(const struct mx_account *a)
{
	if (a->email)
		return a->email;
	if (a->user && strchr(a->user, '@'))
		return a->user;
	return NULL;
}

/* ---- folders ---- */

char *mx_folder_encode(const struct mx_folder *f, size_t *len_r)
{
	json_t *o = json_object();
	char d[2] = {f->delim, 0};

	json_object_set_new(o, "id", json_integer(f->id));
	json_object_set_new(o, "account", json_integer(f->account_id));
	if (set_str(o, "name", f->name) || set_str(o, "wire", f->wire) ||
	    set_str(o, "delim", (unsigned char)d[0] < 0x80 ? d : "?")) {
		json_decref(o);
		return NULL;
	}
	json_object_set_new(o, "special", json_integer(f->special));
	json_object_set_new(o, "noselect", json_boolean(f->noselect));
	json_object_set_new(o, "gone", json_boolean(f->gone));
	json_object_set_new(o, "uidvalidity", json_integer(f->uidvalidity));
	json_object_set_new(o, "uidnext", json_integer(f->uidnext));
	json_object_set_new(o, "highestmodseq",
			    json_integer((json_int_t)f->highestmodseq));
	json_object_set_new(o, "initial_top", json_integer(f->initial_top));
	json_object_set_new(o, "initial_low", json_integer(f->initial_low));
	json_object_set_new(o, "initial_done", json_boolean(f->initial_done));
	json_object_set_new(o, "last_sync", json_integer(f->last_sync));
	json_object_set_new(o, "server_exists",
			    json_integer(f->server_exists));
	return dump(o, len_r, 0);
}

int mx_folder_decode(const char *data, size_t len, struct mx_folder *f,
		     struct mx_error *err)
{
	json_error_t je;
	json_t *o;
	const char *d;

	memset(f, 0, sizeof(*f));
	o = json_loadb(data, len, 0, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		return mx_error_set(err, MX_ERR_STORE,
				    "corrupt folder record: %s", je.text);
	}
	f->id = (uint32_t)get_int(o, "id", 0);
	f->account_id = (uint32_t)get_int(o, "account", 0);
	f->name = get_str(o, "name");
	f->wire = get_str(o, "wire");
	d = json_string_value(json_object_get(o, "delim"));
	f->delim = d ? d[0] : 0;
	f->special = (unsigned)get_int(o, "special", 0);
	f->noselect = json_is_true(json_object_get(o, "noselect"));
	f->gone = json_is_true(json_object_get(o, "gone"));
	f->uidvalidity = (uint32_t)get_int(o, "uidvalidity", 0);
	f->uidnext = (uint32_t)get_int(o, "uidnext", 0);
	f->highestmodseq = (uint64_t)get_int(o, "highestmodseq", 0);
	f->initial_top = (uint32_t)get_int(o, "initial_top", 0);
	f->initial_low = (uint32_t)get_int(o, "initial_low", 0);
	f->initial_done = json_is_true(json_object_get(o, "initial_done"));
	f->last_sync = get_int(o, "last_sync", 0);
	f->server_exists = (uint32_t)get_int(o, "server_exists", 0);
	json_decref(o);
	return MX_OK;
}

void mx_folder_free(struct mx_folder *f)
{
	if (f == NULL)
		return;
	free(f->name);
	free(f->wire);
	memset(f, 0, sizeof(*f));
}

void mx_folders_free(struct mx_folder *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mx_folder_free(&v[i]);
	free(v);
}

/* ---- locations ---- */

size_t mx_loc_encode(const struct mx_loc *l, uint8_t *buf, size_t cap)
{
	size_t kw = l->keywords ? strlen(l->keywords) : 0;

	if (cap < 20 + kw)
		return 0;
	mx_put_be64(buf, l->msg_id);
	mx_put_be64(buf + 8, l->modseq);
	mx_put_be32(buf + 16, l->flags);
	if (kw)
		memcpy(buf + 20, l->keywords, kw);
	return 20 + kw;
}

int mx_loc_decode(const void *data, size_t len, struct mx_loc *l)
{
	const uint8_t *p = data;

	if (len < 20)
		return -1;
	l->msg_id = mx_get_be64(p);
	l->modseq = mx_get_be64(p + 8);
	l->flags = mx_get_be32(p + 16);
	l->keywords = len > 20 ? mx_strndup((const char *)p + 20, len - 20)
			       : NULL;
	return 0;
}

void mx_locs_free(struct mx_loc *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].keywords);
	free(v);
}

/* ---- messages ---- */

static json_t *addrs_json(const struct mx_addr_list *l)
{
	json_t *a = json_array();

	for (size_t i = 0; i < l->n; i++) {
		json_t *o = json_object();

		set_str(o, "name", l->v[i].name);
		set_str(o, "email", l->v[i].email);
		json_array_append_new(a, o);
	}
	return a;
}

static void addrs_parse(json_t *a, struct mx_addr_list *l)
{
	size_t n = json_array_size(a);

	l->v = NULL;
	l->n = 0;
	if (n == 0)
		return;
	l->v = calloc(n, sizeof(*l->v));
	if (l->v == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(a, i);

		l->v[i].name = get_str(o, "name");
		l->v[i].email = get_str(o, "email");
	}
	l->n = n;
}

static json_t *msg_json(const struct mx_msg *m, bool for_display)
{
	const struct mx_parsed *p = &m->p;
	json_t *o = json_object(), *refs, *parts;
	char hex[65], idstr[17];

	if (for_display) {
		mx_msg_id_str(m->id, idstr);
		set_str(o, "id", idstr);
	} else {
		json_object_set_new(o, "id", json_integer((json_int_t)m->id));
	}
	json_object_set_new(o, "account", json_integer(m->account_id));
	mx_hex(m->sha256, 32, hex);
	set_str(o, "sha256", hex);
	json_object_set_new(o, "size", json_integer((json_int_t)m->size));
	json_object_set_new(o, "internaldate", json_integer(m->internaldate));
	json_object_set_new(o, "added", json_integer(m->added));
	mx_hex(m->identity, 32, hex);
	set_str(o, "identity", hex);
	json_object_set_new(o, "thread", json_integer((json_int_t)m->thread_id));
	set_str(o, "message_id", p->message_id);
	set_str(o, "in_reply_to", p->in_reply_to);
	refs = json_array();
	for (size_t i = 0; i < p->nreferences; i++)
		json_array_append_new(refs, json_string(p->references[i]));
	json_object_set_new(o, "references", refs);
	set_str(o, "subject", p->subject);
	json_object_set_new(o, "date", json_integer(p->date));
	json_object_set_new(o, "from", addrs_json(&p->from));
	json_object_set_new(o, "sender", addrs_json(&p->sender));
	json_object_set_new(o, "reply_to", addrs_json(&p->reply_to));
	json_object_set_new(o, "to", addrs_json(&p->to));
	json_object_set_new(o, "cc", addrs_json(&p->cc));
	json_object_set_new(o, "bcc", addrs_json(&p->bcc));
	set_str(o, "snippet", p->snippet);
	parts = json_array();
	for (size_t i = 0; i < p->nparts; i++) {
		const struct mx_part *pt = &p->parts[i];
		json_t *po = json_object();

		set_str(po, "part", pt->part_id);
		set_str(po, "type", pt->content_type);
		set_str(po, "charset", pt->charset);
		set_str(po, "filename", pt->filename);
		set_str(po, "content_id", pt->content_id);
		set_str(po, "disposition", pt->disposition);
		json_object_set_new(po, "size",
				    json_integer((json_int_t)pt->size));
		json_object_set_new(po, "attachment",
				    json_boolean(pt->attachment));
		json_array_append_new(parts, po);
	}
	json_object_set_new(o, "parts", parts);
	json_object_set_new(o, "parse_flags", json_integer(p->flags));
	set_str(o, "parse_error", p->error);
	return o;
}

char *mx_msg_encode(const struct mx_msg *m, size_t *len_r)
{
	return dump(msg_json(m, false), len_r, 0);
}

char *mx_msg_to_json(const struct mx_msg *m, int indent)
{
	return dump(msg_json(m, true), NULL, indent);
}

int mx_msg_decode(const char *data, size_t len, struct mx_msg *m,
		  struct mx_error *err)
{
	struct mx_parsed *p = &m->p;
	json_error_t je;
	json_t *o, *a;
	const char *s;

	memset(m, 0, sizeof(*m));
	o = json_loadb(data, len, 0, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		return mx_error_set(err, MX_ERR_STORE,
				    "corrupt message record: %s", je.text);
	}
	m->id = (uint64_t)get_int(o, "id", 0);
	m->account_id = (uint32_t)get_int(o, "account", 0);
	s = json_string_value(json_object_get(o, "sha256"));
	if (s == NULL || strlen(s) != 64 || mx_unhex(s, m->sha256, 32) < 0) {
		json_decref(o);
		return mx_error_set(err, MX_ERR_STORE,
				    "corrupt message record: bad sha256");
	}
	s = json_string_value(json_object_get(o, "identity"));
	if (s && strlen(s) == 64)
		mx_unhex(s, m->identity, 32);
	m->size = (uint64_t)get_int(o, "size", 0);
	m->internaldate = get_int(o, "internaldate", 0);
	m->added = get_int(o, "added", 0);
	m->thread_id = (uint64_t)get_int(o, "thread", 0);
	p->message_id = get_str(o, "message_id");
	p->in_reply_to = get_str(o, "in_reply_to");
	a = json_object_get(o, "references");
	if (json_array_size(a) > 0) {
		p->references = calloc(json_array_size(a), sizeof(char *));
		for (size_t i = 0; p->references && i < json_array_size(a); i++) {
			const char *r = json_string_value(json_array_get(a, i));

			p->references[p->nreferences++] = strdup(r ? r : "");
		}
	}
	p->subject = get_str(o, "subject");
	p->date = get_int(o, "date", -1);
	addrs_parse(json_object_get(o, "from"), &p->from);
	addrs_parse(json_object_get(o, "sender"), &p->sender);
	addrs_parse(json_object_get(o, "reply_to"), &p->reply_to);
	addrs_parse(json_object_get(o, "to"), &p->to);
	addrs_parse(json_object_get(o, "cc"), &p->cc);
	addrs_parse(json_object_get(o, "bcc"), &p->bcc);
	p->snippet = get_str(o, "snippet");
	a = json_object_get(o, "parts");
	if (json_array_size(a) > 0) {
		p->parts = calloc(json_array_size(a), sizeof(*p->parts));
		for (size_t i = 0; p->parts && i < json_array_size(a); i++) {
			json_t *po = json_array_get(a, i);
			struct mx_part *pt = &p->parts[p->nparts++];

			pt->part_id = get_str(po, "part");
			pt->content_type = get_str(po, "type");
			pt->charset = get_str(po, "charset");
			pt->filename = get_str(po, "filename");
			pt->content_id = get_str(po, "content_id");
			pt->disposition = get_str(po, "disposition");
			pt->size = (uint64_t)get_int(po, "size", 0);
			pt->attachment =
				json_is_true(json_object_get(po, "attachment"));
		}
	}
	p->flags = (unsigned)get_int(o, "parse_flags", 0);
	p->error = get_str(o, "parse_error");
	json_decref(o);
	return MX_OK;
}

/* ---- message summaries (the bydate index's values) ---- */

/*
 * Binary, not JSON: a page of the API's listing reads 51 of them, and a
 * jansson decode of the full record cost ~80 us each (bench/README.md).
 * Layout: u8 version (1), u64 thread id, u64 size, u32 attachments, the
 * subject and snippet as strings, then From and To as a u32 count of
 * addresses, each a name and an email string.  A string is a u32 length
 * and its bytes, or the length MX_SUM_NULL for none.
 */
#define MX_SUM_V1 1
#define MX_SUM_NULL UINT32_MAX
#define MX_SUM_FIXED (1 + 8 + 8 + 4)

static size_t sum_str_len(const char *s)
{
	return 4 + (s ? strlen(s) : 0);
}

static uint8_t *sum_put_str(uint8_t *o, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	mx_put_be32(o, s ? (uint32_t)n : MX_SUM_NULL);
	if (n)
		memcpy(o + 4, s, n);
	return o + 4 + n;
}

static size_t sum_addrs_len(const struct mx_addr_list *l)
{
	size_t n = 4;

	for (size_t i = 0; i < l->n; i++)
		n += sum_str_len(l->v[i].name) + sum_str_len(l->v[i].email);
	return n;
}

static uint8_t *sum_put_addrs(uint8_t *o, const struct mx_addr_list *l)
{
	mx_put_be32(o, (uint32_t)l->n);
	o += 4;
	for (size_t i = 0; i < l->n; i++) {
		o = sum_put_str(o, l->v[i].name);
		o = sum_put_str(o, l->v[i].email);
	}
	return o;
}

void *mx_msg_summary_encode(const struct mx_msg *m, size_t *len_r)
{
	const struct mx_parsed *p = &m->p;
	uint32_t natt = 0;
	uint8_t *buf, *o;
	size_t len;

	for (size_t i = 0; i < p->nparts; i++)
		natt += p->parts[i].attachment;
	len = MX_SUM_FIXED + sum_str_len(p->subject) +
	      sum_str_len(p->snippet) + sum_addrs_len(&p->from) +
	      sum_addrs_len(&p->to);
	buf = malloc(len);
	if (buf == NULL)
		return NULL;
	buf[0] = MX_SUM_V1;
	mx_put_be64(buf + 1, m->thread_id);
	mx_put_be64(buf + 9, m->size);
	mx_put_be32(buf + 17, natt);
	o = sum_put_str(buf + MX_SUM_FIXED, p->subject);
	o = sum_put_str(o, p->snippet);
	o = sum_put_addrs(o, &p->from);
	sum_put_addrs(o, &p->to);
	*len_r = len;
	return buf;
}

struct sum_rd {
	const uint8_t *p;
	size_t left;
	bool bad, nomem;
};

static char *sum_get_str(struct sum_rd *r)
{
	uint32_t n;
	char *s;

	if (r->bad || r->left < 4) {
		r->bad = true;
		return NULL;
	}
	n = mx_get_be32(r->p);
	r->p += 4;
	r->left -= 4;
	if (n == MX_SUM_NULL)
		return NULL;
	if (n > r->left || memchr(r->p, '\0', n) != NULL) {
		r->bad = true;
		return NULL;
	}
	s = mx_strndup((const char *)r->p, n);
	if (s == NULL)
		r->nomem = r->bad = true;
	/* The listing writes these into JSON as they are. */
	else if (!mx_utf8_valid_str(s))
		r->bad = true;
	r->p += n;
	r->left -= n;
	return s;
}

static void sum_get_addrs(struct sum_rd *r, struct mx_addr_list *l)
{
	uint32_t n;

	if (r->bad || r->left < 4) {
		r->bad = true;
		return;
	}
	n = mx_get_be32(r->p);
	r->p += 4;
	r->left -= 4;
	/* Each address takes at least 8 bytes: a count beyond what is left
	 * is corruption, not an allocation to attempt. */
	if (n > MX_MAX_ADDRS || n > r->left / 8) {
		r->bad = true;
		return;
	}
	if (n == 0)
		return;
	l->v = calloc(n, sizeof(*l->v));
	if (l->v == NULL) {
		r->nomem = r->bad = true;
		return;
	}
	for (uint32_t i = 0; i < n && !r->bad; i++) {
		l->v[i].name = sum_get_str(r);
		l->v[i].email = sum_get_str(r);
		l->n = i + 1;
	}
}

int mx_msg_summary_decode(const void *data, size_t len, struct mx_msg *m,
			  uint32_t *attachments_r, struct mx_error *err)
{
	struct sum_rd r = {data, len, false, false};
	const uint8_t *b = data;

	memset(m, 0, sizeof(*m));
	m->p.date = -1;
	if (len < MX_SUM_FIXED || b[0] != MX_SUM_V1)
		return mx_error_set(err, MX_ERR_STORE, "message summary: "
				    "%s", len == 0 ? "none" :
				    "unknown version or too short");
	m->thread_id = mx_get_be64(b + 1);
	m->size = mx_get_be64(b + 9);
	*attachments_r = mx_get_be32(b + 17);
	r.p += MX_SUM_FIXED;
	r.left -= MX_SUM_FIXED;
	m->p.subject = sum_get_str(&r);
	m->p.snippet = sum_get_str(&r);
	sum_get_addrs(&r, &m->p.from);
	sum_get_addrs(&r, &m->p.to);
	if (r.bad || r.left != 0) {
		mx_msg_free(m);
		if (r.nomem)
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		return mx_error_set(err, MX_ERR_STORE, "message summary: "
				    "corrupt (%zu bytes)", len);
	}
	return MX_OK;
}

void mx_msg_free(struct mx_msg *m)
{
	if (m == NULL)
		return;
	mx_parsed_free(&m->p);
	memset(m, 0, sizeof(*m));
}

void mx_msg_id_str(uint64_t id, char out[17])
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 15; i >= 0; i--) {
		out[i] = digits[id & 15];
		id >>= 4;
	}
	out[16] = '\0';
}

int mx_msg_id_parse(const char *s, uint64_t *id_r)
{
	uint64_t v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 16)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		int d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*id_r = v;
	return v ? 0 : -1;
}

/* ---- account lifecycle: bulk deletes and kept mail ---- */

int mx_store_del_prefix(struct mx_txn *t, enum mx_dbi db, const void *pre,
			size_t npre, struct mx_error *err)
{
	MDB_cursor *c;
	MDB_val k = {npre, (void *)(uintptr_t)pre}, d;
	int mrc;

	mrc = mdb_cursor_open(t->txn, t->st->dbi[db], &c);
	if (mrc)
		return mx_store_err(err, mrc, "deleting by prefix");
	for (mrc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		if (k.mv_size < npre || memcmp(k.mv_data, pre, npre) != 0) {
			mrc = MDB_NOTFOUND;
			break;
		}
		/* With MDB_NODUPDATA every duplicate of the key goes.  After
		 * a delete, MDB_NEXT returns the entry that followed. */
		mrc = mdb_cursor_del(c, MDB_NODUPDATA);
		if (mrc)
			break;
	}
	mdb_cursor_close(c);
	return mrc == MDB_NOTFOUND ? MX_OK
				   : mx_store_err(err, mrc, "deleting by prefix");
}

int mx_store_account_events_del(struct mx_txn *t, uint32_t account_id,
				 struct mx_error *err)
{
	MDB_cursor *c;
	MDB_val k, d;
	int mrc;

	mrc = mdb_cursor_open(t->txn, t->st->dbi[MX_DB_EVENTS], &c);
	if (mrc)
		return mx_store_err(err, mrc, "events");
	for (mrc = mdb_cursor_get(c, &k, &d, MDB_FIRST); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		json_t *o = json_loadb(d.mv_data, d.mv_size, 0, NULL);
		bool mine = get_int(o, "account", 0) == (json_int_t)account_id;

		json_decref(o);
		if (mine && (mrc = mdb_cursor_del(c, 0)) != 0)
			break;
	}
	mdb_cursor_close(c);
	return mrc == MDB_NOTFOUND ? MX_OK : mx_store_err(err, mrc, "events");
}

#define KEPT_PREFIX "kept_account"

static size_t kept_key(uint32_t id, uint8_t k[sizeof(KEPT_PREFIX) - 1 + 4])
{
	memcpy(k, KEPT_PREFIX, sizeof(KEPT_PREFIX) - 1);
	mx_put_be32(k + sizeof(KEPT_PREFIX) - 1, id);
	return sizeof(KEPT_PREFIX) - 1 + 4;
}

int mx_store_kept_put(struct mx_txn *t, const struct mx_account *a,
		      struct mx_error *err)
{
	/* Only what re-attaching compares, never the secrets. */
	struct mx_account w = {0};
	uint8_t k[sizeof(KEPT_PREFIX) - 1 + 4];
	size_t len;
	char *json;
	int rc;

	w.id = a->id;
	w.name = a->name;
	w.imap_url = a->imap_url;
	w.host = a->host;
	w.port = a->port;
	w.tls = a->tls;
	w.user = a->user;
	w.proto = a->proto;
	w.created = mx_wall_s(); /* when it was removed */
	json = mx_account_encode(&w, &len);
	if (json == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	rc = mx_db_put(t, MX_DB_META, k, kept_key(a->id, k), json, len, 0, err);
	free(json);
	return rc;
}

int mx_store_kept_del(struct mx_txn *t, uint32_t id, struct mx_error *err)
{
	uint8_t k[sizeof(KEPT_PREFIX) - 1 + 4];
	int rc = mx_db_del(t, MX_DB_META, k, kept_key(id, k), NULL, 0, err);

	if (rc == MX_ERR_NOTFOUND) {
		mx_error_clear(err);
		rc = MX_OK;
	}
	return rc;
}

int mx_store_kept_list(struct mx_txn *t, const char *name,
		       struct mx_account **v_r, size_t *n_r,
		       struct mx_error *err)
{
	MDB_cursor *c;
	MDB_val k = {sizeof(KEPT_PREFIX) - 1, KEPT_PREFIX}, d;
	struct mx_account *v = NULL;
	size_t n = 0;
	int rc = MX_OK, mrc;

	*v_r = NULL;
	*n_r = 0;
	mrc = mdb_cursor_open(t->txn, t->st->dbi[MX_DB_META], &c);
	if (mrc)
		return mx_store_err(err, mrc, "kept accounts");
	for (mrc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); mrc == 0;
	     mrc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
		struct mx_account a, *nv;

		if (k.mv_size != sizeof(KEPT_PREFIX) - 1 + 4 ||
		    memcmp(k.mv_data, KEPT_PREFIX, sizeof(KEPT_PREFIX) - 1)) {
			mrc = MDB_NOTFOUND;
			break;
		}
		rc = mx_account_decode(d.mv_data, d.mv_size, &a, err);
		if (rc)
			break;
		if (name && (a.name == NULL || strcmp(a.name, name) != 0)) {
			mx_account_free(&a);
			continue;
		}
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (nv == NULL) {
			mx_account_free(&a);
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
			break;
		}
		v = nv;
		v[n++] = a;
	}
	mdb_cursor_close(c);
	if (rc == MX_OK && mrc != MDB_NOTFOUND)
		rc = mx_store_err(err, mrc, "kept accounts");
	if (rc) {
		for (size_t i = 0; i < n; i++)
			mx_account_free(&v[i]);
		free(v);
		return rc;
	}
	*v_r = v;
	*n_r = n;
	return MX_OK;
}

size_t mx_store_remote_key(uint32_t account_id, const char *id,
			   uint8_t out[MX_STORE_REMOTE_KEY_MAX])
{
	size_t pl = sizeof("apiid") - 1, il = strlen(id);

	if (il > MX_STORE_REMOTE_KEY_MAX - pl - 4)
		il = MX_STORE_REMOTE_KEY_MAX - pl - 4;
	memcpy(out, "apiid", pl);
	mx_put_be32(out + pl, account_id);
	memcpy(out + pl + 4, id, il);
	return pl + 4 + il;
}

void mx_store_remote_rev_key(uint32_t account_id, uint64_t msg,
			     uint8_t out[MX_STORE_REMOTE_REV_KEY])
{
	size_t pl = sizeof("apimsg") - 1;

	memcpy(out, "apimsg", pl);
	mx_put_be32(out + pl, account_id);
	mx_put_be64(out + pl + 4, msg);
}

int mx_store_remote_get(struct mx_txn *t, uint32_t account_id, uint64_t msg,
			char **id_r, char **thread_r, struct mx_error *err)
{
	uint8_t rk[MX_STORE_REMOTE_REV_KEY], k[MX_STORE_REMOTE_KEY_MAX];
	char *id = NULL, *thread = NULL;
	MDB_val v;
	size_t kl;
	int rc;

	if (id_r)
		*id_r = NULL;
	if (thread_r)
		*thread_r = NULL;
	mx_store_remote_rev_key(account_id, msg, rk);
	rc = mx_db_get(t, MX_DB_META, rk, sizeof(rk), &v, NULL);
	if (rc == MX_ERR_NOTFOUND)
		return rc;
	if (rc)
		return mx_error_set(err, rc, "message map");
	if ((id = mx_strndup(v.mv_data, v.mv_size)) == NULL)
		return mx_error_set(err, MX_ERR_NOMEM, NULL);
	if (thread_r) {
		kl = mx_store_remote_key(account_id, id, k);
		rc = mx_db_get(t, MX_DB_META, k, kl, &v, NULL);
		if (rc == MX_OK && v.mv_size < 12)
			rc = MX_ERR_STORE;
		if (rc) {
			free(id);
			return mx_error_set(err, rc == MX_ERR_NOTFOUND
					    ? MX_ERR_STORE : rc,
					    "message map entry of %llu is "
					    "damaged or missing",
					    (unsigned long long)msg);
		}
		thread = mx_strndup((const char *)v.mv_data + 12,
				    v.mv_size - 12);
		if (thread == NULL) {
			free(id);
			return mx_error_set(err, MX_ERR_NOMEM, NULL);
		}
		*thread_r = thread;
	}
	if (id_r)
		*id_r = id;
	else
		free(id);
	return MX_OK;
}
