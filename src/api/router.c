/*
 * The route table and the matcher: METHOD + path -> handler.  The table
 * is the one list of what the API serves: the dispatcher uses it, and
 * `mxsyncd --api-routes` prints it for the contract test, which compares
 * it with doc/openapi.yaml both ways.  To add a route: a line here, its
 * handler in the resource's file, its entry in doc/openapi.yaml.
 */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"

static const char *const no_params[] = {NULL};
static const char *const msg_list_params[] = {
	"account", "folder", "thread", "unread", "flagged", "from", "to",
	"since", "until", "subject", "limit", "cursor", NULL};
static const char *const events_params[] = {"after", "limit", "wait", NULL};
static const char *const stream_params[] = {"after", NULL};
static const char *const acct_delete_params[] = {"purge", NULL};
static const char *const outbox_params[] = {"account", "state", "limit",
					    "cursor", NULL};
/* What providers put on the redirect: RFC 6749 4.1.2 and 4.1.2.1, RFC
 * 9207's iss, and the extras of Google and Microsoft. */
static const char *const oauth_cb_params[] = {
	"code", "state", "error", "error_description", "error_uri", "scope",
	"iss", "authuser", "hd", "prompt", "session_state", NULL};

static const char *const page_params[] = {"limit", "cursor", NULL};
static const char *const hard_params[] = {"hard", NULL};
static const char *const delete_params[] = {"permanent", NULL};

const struct api_route mx_api_routes[] = {
	{"GET", "/v1/version", api_version, false, API_ID_NONE, no_params, 0},
	{"GET", "/v1/health", api_health, false, API_ID_NONE, no_params, 0},
	{"GET", "/v1/metrics", api_metrics, true, API_ID_NONE, no_params, 0},
	{"GET", "/v1/accounts", api_accounts_list, true, API_ID_NONE, no_params, 0},
	{"GET", "/v1/accounts/{id}", api_account_get, true, API_ID_DEC, no_params, 0},
	{"GET", "/v1/accounts/{id}/state", api_account_state, true, API_ID_DEC,
	 no_params, 0},
	{"GET", "/v1/accounts/{id}/folders", api_account_folders, true,
	 API_ID_DEC, no_params, 0},
	{"GET", "/v1/messages", api_messages_list, true, API_ID_NONE,
	 msg_list_params, 0},
	{"GET", "/v1/messages/{id}", api_message_get, true, API_ID_HEX16,
	 no_params, 0},
	{"GET", "/v1/messages/{id}/raw", api_message_raw, true, API_ID_HEX16,
	 no_params, 0},
	{"GET", "/v1/events", api_events, true, API_ID_NONE, events_params, 0},
	{"GET", "/v1/events/stream", api_events_stream, true, API_ID_NONE,
	 stream_params, 0},
	{"GET", "/v1/threads/{id}", api_thread_get, true, API_ID_DEC,
	 no_params, 0},
	{"GET", "/v1/messages/{id}/parts/{part}", api_message_part, true,
	 API_ID_HEX16, no_params, 0},
	/* contacts (contacts.c) */
	{"GET", "/v1/contacts", api_contacts_list, true, API_ID_NONE,
	 page_params, 0},
	{"GET", "/v1/contacts/{id}", api_contact_get, true, API_ID_TEXT,
	 no_params, 0},
	{"PUT", "/v1/contacts/{id}", api_contact_put, true, API_ID_TEXT,
	 no_params, API_R_BODY | API_R_ADMIN},
	{"DELETE", "/v1/contacts/{id}", api_contact_delete, true, API_ID_TEXT,
	 hard_params, API_R_ADMIN},
	{"GET", "/v1/contacts/{id}/timeline", api_contact_timeline, true,
	 API_ID_TEXT, page_params, 0},
	{"POST", "/v1/crm/relink", api_contacts_link, true, API_ID_NONE,
	 no_params, API_R_BODY | API_R_ADMIN},
	/* Write routes: one block a resource (accounts, oauth, messages,
	 * send and outbox, webhooks), flags API_R_BODY when they read a
	 * body, API_R_ADMIN when only admins may call them. */
	/* accounts (accounts.c): DELETE and PUT permissions are admin-only
	 * but check it themselves, after the 404 of an account the caller
	 * may not use. */
	{"POST", "/v1/accounts", api_account_create, true, API_ID_NONE,
	 no_params, API_R_BODY | API_R_ADMIN},
	{"PATCH", "/v1/accounts/{id}", api_account_update, true, API_ID_DEC,
	 no_params, API_R_BODY},
	{"DELETE", "/v1/accounts/{id}", api_account_delete, true, API_ID_DEC,
	 acct_delete_params, 0},
	{"POST", "/v1/accounts/{id}/enable", api_account_enable, true,
	 API_ID_DEC, no_params, 0},
	{"POST", "/v1/accounts/{id}/disable", api_account_disable, true,
	 API_ID_DEC, no_params, 0},
	{"POST", "/v1/accounts/{id}/reconnect", api_account_reconnect, true,
	 API_ID_DEC, no_params, 0},
	{"POST", "/v1/accounts/{id}/sync", api_account_sync, true, API_ID_DEC,
	 no_params, 0},
	{"GET", "/v1/accounts/{id}/permissions", api_account_permissions_get,
	 true, API_ID_DEC, no_params, 0},
	{"PUT", "/v1/accounts/{id}/permissions", api_account_permissions_put,
	 true, API_ID_DEC, no_params, API_R_BODY},
	/* send and outbox (send.c, outbox.c) */
	{"POST", "/v1/send", api_send, true, API_ID_NONE, no_params,
	 API_R_BODY},
	{"GET", "/v1/outbox", api_outbox_list, true, API_ID_NONE,
	 outbox_params, 0},
	{"GET", "/v1/outbox/{id}", api_outbox_get, true, API_ID_DEC64,
	 no_params, 0},
	{"POST", "/v1/outbox/{id}/retry", api_outbox_retry, true, API_ID_DEC64,
	 no_params, 0},
	{"POST", "/v1/outbox/{id}/cancel", api_outbox_cancel, true,
	 API_ID_DEC64, no_params, 0},
	/* oauth (oauth.c) */
	{"POST", "/v1/accounts/{id}/oauth/start", api_oauth_start, true,
	 API_ID_DEC, no_params, API_R_BODY},
	{"GET", "/v1/oauth/callback", api_oauth_callback, false, API_ID_NONE,
	 oauth_cb_params, 0},
	{"GET", "/v1/webhooks", api_webhooks_list, true, API_ID_NONE, no_params,
	 API_R_ADMIN},
	{"POST", "/v1/webhooks", api_webhook_create, true, API_ID_NONE,
	 no_params, API_R_ADMIN | API_R_BODY},
	{"GET", "/v1/webhooks/{id}", api_webhook_get, true, API_ID_DEC64,
	 no_params, API_R_ADMIN},
	{"PATCH", "/v1/webhooks/{id}", api_webhook_update, true, API_ID_DEC64,
	 no_params, API_R_ADMIN | API_R_BODY},
	{"DELETE", "/v1/webhooks/{id}", api_webhook_delete, true, API_ID_DEC64,
	 no_params, API_R_ADMIN},
	/* messages (messages.c) */
	{"PATCH", "/v1/messages/{id}", api_message_patch, true, API_ID_HEX16,
	 no_params, API_R_BODY},
	{"POST", "/v1/messages/{id}/move", api_message_move, true,
	 API_ID_HEX16, no_params, API_R_BODY},
	{"DELETE", "/v1/messages/{id}", api_message_delete, true,
	 API_ID_HEX16, delete_params, 0},
};
const size_t mx_api_nroutes = sizeof(mx_api_routes) / sizeof(mx_api_routes[0]);

void mx_api_print_routes(FILE *fp)
{
	for (size_t i = 0; i < mx_api_nroutes; i++)
		fprintf(fp, "%s %s\n", mx_api_routes[i].method,
			mx_api_routes[i].path);
}

bool mx_api_id_parse(enum api_idkind kind, const char *s, uint64_t *id_r)
{
	switch (kind) {
	case API_ID_DEC:
		/* No leading zeros: one spelling per id. */
		return s[0] != '0' && mx_parse_u64(s, 1, UINT32_MAX, id_r) == 0;
	case API_ID_TEXT:
		*id_r = 0;
		return strlen(s) >= 1 && strlen(s) <= 128 &&
		       mx_utf8_valid_str(s) && mx_term_safe(s);
	case API_ID_DEC64:
		return s[0] != '0' && mx_parse_u64(s, 1, INT64_MAX, id_r) == 0;
	case API_ID_HEX16:
		if (strlen(s) != 16)
			return false;
		for (const char *p = s; *p; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
				return false;
		return mx_msg_id_parse(s, id_r) == 0 && *id_r != 0;
	case API_ID_NONE:
		break;
	}
	return false;
}

/*
 * Whether PATH matches PATTERN segment by segment: "{x}" takes one
 * non-empty segment (copied to R's path parameters), anything else must
 * be equal.  A trailing slash or an empty segment never matches.
 */
static bool match(const char *pattern, const char *path, struct api_req *r)
{
	const char *p = pattern, *s = path;
	size_t np = 0, used = 0;

	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		if (*p == '{') {
			size_t n = strcspn(s, "/");

			if (n == 0 || np == API_MAX_PARAMS ||
			    used + n + 1 > sizeof(r->pathbuf))
				return false;
			memcpy(r->pathbuf + used, s, n);
			r->pathbuf[used + n] = '\0';
			r->pv[np++] = r->pathbuf + used;
			used += n + 1;
			s += n;
			p = strchr(p, '}');
			if (p == NULL)
				return false;
			p++;
		} else {
			size_t n = strcspn(p, "/");

			if (n == 0 || strncmp(p, s, n) != 0 ||
			    (s[n] != '/' && s[n] != '\0'))
				return false;
			p += n;
			s += n;
		}
	}
	return *p == '\0' && *s == '\0';
}

const struct api_route *mx_api_route_find(const char *method,
					  const char *path, struct api_req *r,
					  unsigned *status_r, char *allow,
					  size_t allow_cap)
{
	const struct api_route *found = NULL;
	bool path_known = false;

	if (allow_cap)
		allow[0] = '\0';
	for (size_t i = 0; i < mx_api_nroutes; i++) {
		const struct api_route *rt = &mx_api_routes[i];

		if (!match(rt->path, path, r))
			continue;
		path_known = true;
		if (strcmp(rt->method, method) == 0) {
			found = rt;
			break;
		}
		if (allow_cap && !strstr(allow, rt->method)) {
			size_t l = strlen(allow);

			snprintf(allow + l, allow_cap - l, "%s%s", l ? ", " : "",
				 rt->method);
		}
	}
	if (found) {
		/* Matching again fills the parameters of this route. */
		match(found->path, path, r);
		return found;
	}
	*status_r = path_known ? 405 : 404;
	return NULL;
}

const struct api_route *mx_api_bad_id_route(const char *path,
					    const char **seg_r, size_t *n_r)
{
	for (size_t i = 0; i < mx_api_nroutes; i++) {
		const struct api_route *rt = &mx_api_routes[i];
		const char *brace = strchr(rt->path, '{'), *seg;
		size_t pre, n;
		char id[32];
		uint64_t v;

		if (brace == NULL)
			continue;
		pre = (size_t)(brace - rt->path);
		if (strncmp(path, rt->path, pre) != 0)
			continue;
		seg = path + pre;
		n = strcspn(seg, "/");
		if (n == 0)
			continue;
		if (n < sizeof(id)) {
			memcpy(id, seg, n);
			id[n] = '\0';
			if (mx_api_id_parse(rt->idkind, id, &v))
				continue;
		}
		*seg_r = seg;
		*n_r = n;
		return rt;
	}
	return NULL;
}
