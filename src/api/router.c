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
	/* Write routes: one block a resource (accounts, oauth, messages,
	 * send and outbox, webhooks), flags API_R_BODY when they read a
	 * body, API_R_ADMIN when only admins may call them. */
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
