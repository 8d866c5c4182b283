/* Error codes, their names and the per-call error detail. */
#include <stdio.h>
#include <string.h>

#include "util.h"

static const struct {
	const char *name;
	const char *text;
} err_table[] = {
	[MX_OK] = {"ok", "success"},
	[MX_ERR_NOMEM] = {"nomem", "out of memory"},
	[MX_ERR_INVAL] = {"invalid", "invalid argument"},
	[MX_ERR_IO] = {"io", "local I/O error"},
	[MX_ERR_NOTFOUND] = {"not_found", "not found"},
	[MX_ERR_EXISTS] = {"exists", "already exists"},
	[MX_ERR_STORE] = {"store", "store (LMDB) error"},
	[MX_ERR_STORE_FULL] = {"store_full", "store is full"},
	[MX_ERR_SCHEMA] = {"schema", "unsupported store schema version"},
	[MX_ERR_NET] = {"network", "network error"},
	[MX_ERR_TIMEOUT] = {"timeout", "timed out"},
	[MX_ERR_TLS] = {"tls", "TLS error"},
	[MX_ERR_TLS_VERIFY] = {"tls_verify", "TLS peer verification failed"},
	[MX_ERR_AUTH] = {"auth", "authentication failed"},
	[MX_ERR_PROTOCOL] = {"protocol", "protocol error"},
	[MX_ERR_SERVER] = {"server", "server refused the command"},
	[MX_ERR_PARSE] = {"parse", "malformed input"},
	[MX_ERR_UNSUPPORTED] = {"unsupported", "not supported by the server"},
	[MX_ERR_INSECURE] = {"insecure", "refusing insecure connection"},
	[MX_ERR_CANCELLED] = {"cancelled", "cancelled"},
	[MX_ERR_CONFIG] = {"config", "configuration error"},
	[MX_ERR_CHARSET] = {"charset", "charset conversion error"},
	[MX_ERR_EXPIRED] = {"expired", "cursor too old: resync"},
};

const char *mx_strerror(enum mx_err code)
{
	if ((unsigned)code < MX_ARRAY_SIZE(err_table) && err_table[code].text)
		return err_table[code].text;
	return "unknown error";
}

const char *mx_err_name(enum mx_err code)
{
	if ((unsigned)code < MX_ARRAY_SIZE(err_table) && err_table[code].name)
		return err_table[code].name;
	return "unknown";
}

enum mx_err_retry mx_error_default_retry(enum mx_err code)
{
	switch (code) {
	case MX_OK:
		return MX_RETRY_NONE;
	case MX_ERR_NET:
	case MX_ERR_TIMEOUT:
	case MX_ERR_TLS:
	case MX_ERR_PROTOCOL:
		return MX_RETRY_TEMP;
	case MX_ERR_SERVER:
	case MX_ERR_STORE_FULL:
	case MX_ERR_IO:
	case MX_ERR_NOMEM:
		return MX_RETRY_WAIT;
	default:
		return MX_RETRY_FINAL;
	}
}

enum mx_err mx_error_set(struct mx_error *err, enum mx_err code,
			 const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return code;
	err->code = code;
	err->retry = mx_error_default_retry(code);
	if (err->scope == MX_SCOPE_NONE)
		err->scope = MX_SCOPE_ACCOUNT;
	if (fmt != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
		va_end(ap);
	} else {
		snprintf(err->detail, sizeof(err->detail), "%s",
			 mx_strerror(code));
	}
	return code;
}

void mx_error_prefix(struct mx_error *err, const char *fmt, ...)
{
	char pre[MX_ERROR_DETAIL], old[MX_ERROR_DETAIL];
	va_list ap;

	if (err == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, err->detail, sizeof(old));
	snprintf(err->detail, sizeof(err->detail), "%.200s: %.300s", pre, old);
}

void mx_error_scope(struct mx_error *err, enum mx_err_scope scope)
{
	if (err != NULL)
		err->scope = scope;
}

void mx_error_clear(struct mx_error *err)
{
	if (err == NULL)
		return;
	err->code = MX_OK;
	err->scope = MX_SCOPE_NONE;
	err->retry = MX_RETRY_NONE;
	err->detail[0] = '\0';
}
