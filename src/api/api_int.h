/*
 * Internals of the HTTP API (src/api/): the request, the route table and
 * the helpers every handler uses.  doc/internals/api.md.
 */
#ifndef MX_API_INT_H
#define MX_API_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <microhttpd.h>

#include "api/api.h"
#include "users/tokens.h"

struct mx_api {
	struct MHD_Daemon *mhd;
	struct mx_store *st;          /* foreign: the daemon's */
	struct mx_api_cfg cfg;        /* copy; strings owned */
	struct mx_api_hooks hooks;    /* copy; all NULL when not given */
	int workers;
	int lfd;                      /* listening socket */
	char addr[160];
	char *unix_path;              /* owned: unlinked at stop */
	char *tls_cert_pem, *tls_key_pem; /* owned */
	atomic_bool stopping;
	/* Event wake-ups: gen counts mx_api_notify() calls. */
	pthread_mutex_t ev_mu;
	pthread_cond_t ev_cv;
	uint64_t ev_gen;
	/* Slow clients: every open connection, so that a watchdog can cut
	 * one whose request (headers and body) is not complete within
	 * cfg.timeout_s of its start (server.c). */
	pthread_mutex_t conn_mu;
	pthread_cond_t conn_cv;
	struct api_conn *conns;
	pthread_t watchdog;
	bool watchdog_running;
	/* Rate limit: one token bucket a token id. */
	pthread_mutex_t rl_mu;
	struct api_bucket *buckets;
	size_t nbuckets, capbuckets;
	/* GET /v1/metrics: one slot a route of mx_api_routes (metrics.c). */
	pthread_mutex_t m_mu;
	struct api_route_stats *rstats;
};

#define API_LAT_BUCKETS 8

/* Requests of one route: per status class (index 1..5 for 1xx..5xx) and
 * their latency (per bucket, not cumulative; sum in seconds). */
struct api_route_stats {
	uint64_t codes[6];
	uint64_t bucket[API_LAT_BUCKETS];
	uint64_t count;
	double sum;
};

/* An open connection: since when it has waited for a request to arrive
 * whole (START_MS) or, HANDLING, that a handler runs one (a long-poll or a
 * stream may take long). */
struct api_conn {
	struct api_conn *next, *prev;
	int fd;
	uint64_t start_ms;
	bool handling;
	bool cut;
};

struct api_bucket {
	uint64_t token_id;
	double tokens;
	uint64_t last_ms;
};

#define API_MAX_PARAMS 2
#define API_MAX_QUERY 32

/* What an id in a path must look like (anything else: 400 invalid_id). */
enum api_idkind {
	API_ID_NONE = 0,
	API_ID_DEC,    /* account, thread: decimal 1..2^32-1 */
	API_ID_HEX16,  /* message: 16 hex digits */
	API_ID_DEC64,  /* outbox entry, webhook: decimal 1..2^63-1 */
	API_ID_TEXT,   /* contact: the CRM's id, 1..128 bytes of printable
			  UTF-8 (the decoded path segment) */
};

/* struct api_route's flags */
#define API_R_ADMIN 0x1u   /* admin tokens only (403 forbidden for others) */
#define API_R_BODY 0x2u    /* reads a request body (others: a body is 400) */

struct api_req;
typedef void api_handler_fn(struct api_req *r);

struct api_route {
	const char *method;
	const char *path;           /* "/v1/accounts/{id}/state" */
	api_handler_fn *fn;
	bool auth;                  /* needs a bearer token */
	enum api_idkind idkind;     /* of the path's {param} */
	const char *const *params;  /* accepted query parameters, NULL-ended */
	unsigned flags;             /* API_R_* */
};

/* One request (MHD's per-connection-request context). */
struct api_req {
	struct mx_api *api;
	struct MHD_Connection *conn;
	const char *method, *url;
	const struct api_route *route;
	const char *pv[API_MAX_PARAMS]; /* path parameters (into pathbuf) */
	char pathbuf[512];
	uint64_t id;                /* the path id, parsed per idkind */
	/* query, as MHD decoded it */
	size_t nq;
	char *qk[API_MAX_QUERY], *qv[API_MAX_QUERY]; /* owned */
	bool q_bad;                 /* too many, NUL or bad UTF-8 */
	char *q_bad_name;           /* owned, may be NULL */
	/* body: kept in BODY for an API_R_BODY route, else only counted */
	uint64_t body_len;
	struct mx_buf body;
	bool keep_body;
	bool too_large, started;
	struct timespec t0;         /* when it arrived whole (metrics) */
	/* the caller */
	struct mx_apitoken tok;     /* valid when authed */
	bool authed;
	/* the answer */
	unsigned status;
	struct MHD_Response *resp;
};

/* ---- router.c ---- */
extern const struct api_route mx_api_routes[];
extern const size_t mx_api_nroutes;
/*
 * Finds the route of METHOD and PATH.  Returns the route, or NULL with
 * *STATUS_R 404 (no path matches) or 405 (the path exists for other
 * methods, listed in ALLOW, "GET, POST").  Path parameters are copied to
 * R->pathbuf and pointed at by R->pv.
 */
const struct api_route *mx_api_route_find(const char *method,
					  const char *path, struct api_req *r,
					  unsigned *status_r, char *allow,
					  size_t allow_cap);
/*
 * For a PATH no route matches: the route whose path up to its {param} is
 * a prefix of PATH while the segment in the parameter's place is not an
 * id of the route's kind ("/v1/messages/../../x"); *SEG_R and *N_R are
 * that segment.  NULL if there is none (then it is simply not found).
 */
const struct api_route *mx_api_bad_id_route(const char *path,
					    const char **seg_r, size_t *n_r);
/* Parses S as the id of KIND into *ID_R; false if it is not one. */
bool mx_api_id_parse(enum api_idkind kind, const char *s, uint64_t *id_r);

/* ---- http.c: answers and the query ---- */
/* Answers STATUS with the JSON value BODY (stolen). */
void api_reply_json(struct api_req *r, unsigned status, json_t *body);
/* The same for a body already encoded: S (malloc()ed JSON text, taken;
 * NULL: out of memory, answered 500). */
void api_reply_json_text(struct api_req *r, unsigned status, char *s);
/* Answers STATUS with the error shape {"error":{"code","message",
 * "details"}}; DETAILS (stolen) may be NULL ({}). */
void api_error(struct api_req *r, unsigned status, const char *code,
	       json_t *details, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* 400 invalid_parameter naming NAME. */
void api_bad_param(struct api_req *r, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Maps a library error to an answer (NOTFOUND 404, EXPIRED 410, ...). */
void api_fail(struct api_req *r, const struct mx_error *err);
/* 204 No Content: no body, no Content-Type. */
void api_reply_no_content(struct api_req *r);
/* A read transaction on the store, or an answer (api_fail) and false. */
bool api_read_begin(struct api_req *r, struct mx_txn *t);
/* Adds a header to the answer (after the reply call). */
void api_header(struct api_req *r, const char *name, const char *value);

/*
 * Query parameters.  api_query_check answers 400 invalid_parameter for a
 * parameter not in ALLOWED (NULL-ended), given twice, or not valid UTF-8,
 * and returns false.  The getters return true when the value is absent
 * (leaving the default) or good, else answer 400 naming it and return
 * false.
 */
bool api_query_check(struct api_req *r, const char *const *allowed);
const char *api_query(struct api_req *r, const char *name);
bool api_q_u64(struct api_req *r, const char *name, uint64_t lo,
	       uint64_t hi, uint64_t *v);
bool api_q_bool(struct api_req *r, const char *name, int *v); /* -1 absent */
bool api_q_time(struct api_req *r, const char *name, int64_t *v,
		bool *set);
/* Parses an RFC 3339 date-time ("2026-12-07T10:00:00Z", offsets, an
 * optional fraction) into unix time; false if it is not one. */
bool mx_api_parse_time(const char *s, int64_t *t_r);
/*
 * Decodes the N bytes of a URL's query string (after '?') into at most
 * CAP key/value pairs (malloc()ed; '+' is a space).  False on a bad
 * percent escape, a NUL byte, invalid UTF-8 or more than CAP pairs; then
 * nothing is left allocated except *BAD_R, the decoded name of the
 * offending parameter when it has one (else NULL; the caller frees it).
 */
bool mx_api_query_decode(const char *qs, size_t n, char **keys,
			 char **vals, size_t cap, size_t *n_r, char **bad_r);

/* Whether S is a part id as a message's parts[].part ("2", "1.2"):
 * digits and dots, no empty section, at most 64 bytes. */
bool mx_api_part_id_ok(const char *s);
/* The Content-Disposition value of a part named FILENAME (UTF-8, may be
 * NULL): "attachment; filename*=UTF-8''<RFC 5987 percent-encoding>"
 * (malloc()ed; NULL on ENOMEM). */
char *mx_api_disposition(const char *filename);

/* ---- http.c: the request body ----
 *
 * Each of these answers the request and returns false when the input is
 * not what it must be; a handler then returns at once, having changed
 * nothing (doc/api.md, "Request bodies").
 */
/* The body as a JSON object (a new reference in *OBJ_R): 415
 * unsupported_media_type unless Content-Type is application/json
 * (charset utf-8 or none); 400 bad_json for an empty body, invalid JSON
 * or UTF-8 (the message names line and column); 400 bad_request when it
 * is not an object. */
bool api_body_json(struct api_req *r, json_t **obj_r);
/* 400 unknown_field (details.field) for a member of OBJ not in ALLOWED
 * (NULL-ended).  WHERE prefixes the field's name for a nested object
 * ("oauth." -> "oauth.client_id"; NULL for the top level). */
bool api_fields_check(struct api_req *r, json_t *obj,
		      const char *const *allowed, const char *where);
/*
 * Typed members of OBJ.  A wrong type is 400 invalid_field naming the
 * field and the type expected; a missing REQUIRED one 400 missing_field.
 * An absent optional one leaves *V as it was (api_j_bool: -1) and
 * returns true.  Strings are borrowed from OBJ; one with a NUL byte is
 * invalid.  api_j_u64 also refuses a number outside LO..HI (400
 * invalid_field); *SET_R (may be NULL) says whether it was there.
 * api_j_strv: an array of strings, the vector malloc()ed (free() it),
 * the strings borrowed.
 */
bool api_j_str(struct api_req *r, json_t *obj, const char *name,
	       bool required, const char **v);
bool api_j_bool(struct api_req *r, json_t *obj, const char *name,
		bool required, int *v);
bool api_j_u64(struct api_req *r, json_t *obj, const char *name,
	       bool required, uint64_t lo, uint64_t hi, uint64_t *v,
	       bool *set_r);
bool api_j_strv(struct api_req *r, json_t *obj, const char *name,
		bool required, const char ***v, size_t *n);
/* The raw body (NUL-terminated after its LEN bytes; "" when none) and
 * the request's Content-Type (NULL when none): multipart parsing is the
 * route's. */
const char *api_body_raw(struct api_req *r, size_t *len_r);
const char *api_content_type(struct api_req *r);
/* Whether the caller is an admin token (else 403 forbidden answered). */
bool api_require_admin(struct api_req *r);
/* Asks the daemon to act (mx_api_hooks); returns at once. */
void api_kick(struct api_req *r, enum mx_api_kick what, uint32_t account_id);

/* ---- auth.c ---- */
/* Checks the bearer token (401 answered, false, when it is missing or
 * bad) and the token's rate (429 answered, false). */
bool api_authenticate(struct api_req *r);
/* Whether the caller may use account A (else it is 404 to them). */
bool api_may_use(struct api_req *r, const struct mx_account *a);
/* The ids of the accounts the caller may use (malloc()ed), or an answer
 * and false. */
bool api_visible_accounts(struct api_req *r, uint32_t **ids_r, size_t *n_r);
/* The same for token TOK, without answering (event streams). */
int api_visible_ids(struct mx_api *api, const struct mx_apitoken *tok,
		    uint32_t **ids_r, size_t *n_r, struct mx_error *err);
/* The rate limiter's bucket check: true if a request of TOKEN_ID may go
 * now; else *RETRY_S_R is when to retry (whole seconds, >= 1). */
bool mx_api_rate_take(struct mx_api *api, uint64_t token_id, uint64_t now_ms,
		      unsigned *retry_s_r);

/* ---- metrics.c ---- */
int mx_api_metrics_init(struct mx_api *api); /* 0, or -1 out of memory */
void mx_api_metrics_free(struct mx_api *api);
/* Counts an answer STATUS of route RT that took SECS to make. */
void mx_api_metrics_record(struct mx_api *api, const struct api_route *rt,
			   unsigned status, double secs);
/* Appends label value V to B: backslash, double quote and line feed
 * escaped (the text format's three escapes), other bytes as they are. */
void mx_api_prom_label(struct mx_buf *b, const char *v);

/* ---- handlers ---- */
/* contacts.c */
void api_contacts_list(struct api_req *r);
void api_contact_get(struct api_req *r);
void api_contact_put(struct api_req *r);
void api_contact_delete(struct api_req *r);
void api_contact_timeline(struct api_req *r);
void api_contacts_link(struct api_req *r);
void api_version(struct api_req *r);
void api_health(struct api_req *r);
void api_accounts_list(struct api_req *r);
void api_account_get(struct api_req *r);
void api_account_state(struct api_req *r);
void api_account_folders(struct api_req *r);
void api_messages_list(struct api_req *r);
void api_message_get(struct api_req *r);
void api_message_raw(struct api_req *r);
void api_events(struct api_req *r);
void api_events_stream(struct api_req *r);
void api_thread_get(struct api_req *r);
void api_message_part(struct api_req *r);
void api_metrics(struct api_req *r);
/* accounts.c: the write side of /v1/accounts */
void api_account_create(struct api_req *r);
void api_account_update(struct api_req *r);
void api_account_delete(struct api_req *r);
void api_account_enable(struct api_req *r);
void api_account_disable(struct api_req *r);
void api_account_reconnect(struct api_req *r);
void api_account_sync(struct api_req *r);
void api_account_permissions_get(struct api_req *r);
void api_account_permissions_put(struct api_req *r);
/* send.c, outbox.c */
struct mx_ob_entry;
/* An outbox entry as the API shows it (mx_ob_entry_json() with the
 * stored message as its 16-hex "message", without the holder's pid). */
json_t *api_outbox_json(const struct mx_ob_entry *e, const char *account);
void api_send(struct api_req *r);
void api_outbox_list(struct api_req *r);
void api_outbox_get(struct api_req *r);
void api_outbox_retry(struct api_req *r);
void api_outbox_cancel(struct api_req *r);
/* oauth.c: the browser OAuth flow */
void api_oauth_start(struct api_req *r);
void api_oauth_callback(struct api_req *r);
/* webhooks.c */
void api_webhooks_list(struct api_req *r);
void api_webhook_create(struct api_req *r);
void api_webhook_get(struct api_req *r);
void api_webhook_update(struct api_req *r);
void api_webhook_delete(struct api_req *r);
/* messages.c: writes */
void api_message_patch(struct api_req *r);
void api_message_move(struct api_req *r);
void api_message_delete(struct api_req *r);


#endif
