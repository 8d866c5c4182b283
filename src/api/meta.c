/* GET /v1/version and GET /v1/health: no token needed. */
#include "api/api_int.h"

void api_version(struct api_req *r)
{
	api_reply_json(r, 200, json_pack("{s:s,s:s}", "version",
					 MX_VERSION_STRING, "api", "v1"));
}

/* Readiness: the store answers a read and the daemon is not stopping
 * (its workers run for as long as the API does). */
void api_health(struct api_req *r)
{
	struct mx_error err;
	struct mx_txn t;

	if (atomic_load(&r->api->stopping)) {
		api_error(r, 503, "unavailable", NULL, "mxsyncd is stopping.");
		return;
	}
	if (mx_txn_begin(r->api->st, false, &t, &err) != MX_OK) {
		api_error(r, 503, "unavailable", NULL, "The store cannot be "
			  "read: %s.", err.detail);
		return;
	}
	mx_txn_abort(&t);
	api_reply_json(r, 200, json_pack("{s:s,s:s,s:i}", "status", "ok",
					 "store", "open", "workers",
					 r->api->workers));
}
