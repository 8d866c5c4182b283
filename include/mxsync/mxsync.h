/*
 * mxsync — provider-agnostic mail sync engine.
 *
 * Public API of libmxsync.  Everything not declared here is internal.
 *
 * Conventions
 *  - Every function that can fail returns an enum mx_err (MX_OK == 0) and,
 *    when given a non-NULL struct mx_error *, fills it with the code, a
 *    human-readable detail, the scope of the failure and its retry class.
 *  - Strings are UTF-8.  Out-parameters end in _r.  Memory returned through
 *    an out-parameter belongs to the caller and is released with the free
 *    function named in the comment (mx_free() for plain strings).
 *  - Handles are opaque.  One struct mx_store may be used by one thread at
 *    a time.
 */
#ifndef MXSYNC_MXSYNC_H
#define MXSYNC_MXSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MX_VERSION_STRING "0.1.0"

/*
 * Error codes.  Values are explicit and are never renumbered; retired codes
 * stay reserved.
 */
enum mx_err {
	MX_OK = 0,
	MX_ERR_NOMEM = 1,        /* out of memory */
	MX_ERR_INVAL = 2,        /* invalid argument or usage */
	MX_ERR_IO = 3,           /* local I/O error (files, directories) */
	MX_ERR_NOTFOUND = 4,     /* no such account, folder or message */
	MX_ERR_EXISTS = 5,       /* already exists */
	MX_ERR_STORE = 6,        /* LMDB error */
	MX_ERR_STORE_FULL = 7,   /* store map full and could not grow */
	MX_ERR_SCHEMA = 8,       /* store schema version not supported */
	MX_ERR_NET = 9,          /* connection refused, reset, DNS failure */
	MX_ERR_TIMEOUT = 10,     /* network timeout */
	MX_ERR_TLS = 11,         /* TLS handshake or I/O failure */
	MX_ERR_TLS_VERIFY = 12,  /* peer certificate or host name not verified */
	MX_ERR_AUTH = 13,        /* server rejected the credentials */
	MX_ERR_PROTOCOL = 14,    /* server reply we could not parse / hostile */
	MX_ERR_SERVER = 15,      /* server answered NO/BAD to a command */
	MX_ERR_PARSE = 16,       /* malformed local input (file, URL, JSON) */
	MX_ERR_UNSUPPORTED = 17, /* the server lacks a required capability */
	MX_ERR_INSECURE = 18,    /* refusing to send credentials in clear text */
	MX_ERR_CANCELLED = 19,   /* interrupted by a signal or the caller */
	MX_ERR_CONFIG = 20,      /* bad configuration */
	MX_ERR_CHARSET = 21,     /* unknown or unconvertible charset */
	MX_ERR_EXPIRED = 22      /* event cursor older than the retained feed */
};

/* How much a failure affects (isync's DRV_MSG_BAD / DRV_BOX_BAD / ...). */
enum mx_err_scope {
	MX_SCOPE_NONE = 0,
	MX_SCOPE_MESSAGE = 1,
	MX_SCOPE_FOLDER = 2,
	MX_SCOPE_ACCOUNT = 3,
	MX_SCOPE_STORE = 4
};

/* What the scheduler should do about it. */
enum mx_err_retry {
	MX_RETRY_NONE = 0,  /* not applicable (success) */
	MX_RETRY_TEMP = 1,  /* try again soon (network blip) */
	MX_RETRY_WAIT = 2,  /* try again after backoff (server busy, auth unavailable) */
	MX_RETRY_FINAL = 3  /* do not retry until something changes (bad password) */
};

#define MX_ERROR_DETAIL 512

struct mx_error {
	enum mx_err code;
	enum mx_err_scope scope;
	enum mx_err_retry retry;
	char detail[MX_ERROR_DETAIL]; /* "" when no detail was recorded */
};

/* Static English description of CODE ("unknown error" for unknown values). */
const char *mx_strerror(enum mx_err code);

/* Short stable name of CODE, e.g. "tls_verify", used in JSON output. */
const char *mx_err_name(enum mx_err code);

/* Frees memory returned by libmxsync as a plain string or buffer. */
void mx_free(void *p);

/* ------------------------------------------------------------------ */
/* Store                                                                */

struct mx_store;

/*
 * Opens (creating if needed, mode 0700) the data directory DIR and the LMDB
 * store inside it.  DIR NULL means the default: $MXSYNC_DATA_DIR, else
 * $XDG_DATA_HOME/mxsync, else ~/.local/share/mxsync.
 * Errors: MX_ERR_INVAL (empty DIR), MX_ERR_IO (directory), MX_ERR_STORE
 * (also: data.mdb empty or truncated, checked before it is mapped; lock.mdb
 * replaced under a running mxsyncd), MX_ERR_SCHEMA (store written by a
 * newer mxsync), MX_ERR_NOMEM.
 */
enum mx_err mx_store_open(const char *dir, struct mx_store **store_r,
			  struct mx_error *err);

/* Like mx_store_open, but creates nothing: MX_ERR_NOTFOUND ("no store in
 * DIR") when DIR holds no data.mdb. */
enum mx_err mx_store_open_existing(const char *dir, struct mx_store **store_r,
				   struct mx_error *err);

/* Closes the store and sets *STORE to NULL.  NULL-safe. */
void mx_store_close(struct mx_store **store);

/* The data directory in use (owned by the store). */
const char *mx_store_dir(const struct mx_store *store);

/* ------------------------------------------------------------------ */
/* Accounts                                                             */

struct mx_account_params {
	const char *name;          /* [A-Za-z0-9._-]{1,64} */
	const char *imap_url;      /* imaps://USER@HOST[:PORT] or imap://... (STARTTLS) */
	const char *password;      /* may be NULL (then password_file is read at sync time) */
	const char *password_file; /* path, read at sync time; may be NULL */
	const char *ca_file;       /* PEM CA bundle; NULL = system store */
	bool insecure_plaintext;   /* allow imap+plain:// style plaintext login */
	int timeout_s;             /* network timeout, 0 = default (60 s) */
	/* OAuth2 instead of a password (all optional; refresh_token and
	 * oauth_token_url together select AUTHENTICATE OAUTHBEARER/XOAUTH2). */
	const char *refresh_token;
	const char *oauth_token_url;
	const char *oauth_client_id;
	const char *oauth_client_secret;
	const char *oauth_scope;
	const char *display_name;  /* sender display name */
};

/*
 * Adds an account.  Errors: MX_ERR_INVAL (bad name), MX_ERR_PARSE (bad URL),
 * MX_ERR_EXISTS, MX_ERR_STORE.
 */
enum mx_err mx_account_add(struct mx_store *store,
			   const struct mx_account_params *params,
			   struct mx_error *err);

/*
 * Lists accounts as a JSON array (UTF-8, NUL-terminated), without secrets.
 * Free *JSON_R with mx_free().
 */
enum mx_err mx_account_list_json(struct mx_store *store, char **json_r,
				 struct mx_error *err);

/* ------------------------------------------------------------------ */
/* Sync                                                                 */

struct mx_sync_progress {
	const char *account;
	const char *folder;      /* current folder (UTF-8) */
	uint64_t msgs_done;      /* messages stored in this folder so far */
	uint64_t msgs_total;     /* messages to fetch in this folder */
	uint64_t bytes_done;
	uint64_t bytes_total;
};

typedef void mx_progress_fn(const struct mx_sync_progress *p, void *ctx);

struct mx_sync_opts {
	const char *const *folders; /* NULL-terminated list, NULL = default set */
	size_t nfolders;
	mx_progress_fn *progress;   /* may be NULL */
	void *progress_ctx;
	/* Set to non-zero (e.g. from a signal handler) to stop after the
	 * current batch has been committed. */
	volatile int *cancel;
	/* Messages per FETCH batch (0 = default 256, at most
	 * MX_SYNC_BATCH_MSGS_MAX) and bytes per batch (0 = default 16 MiB,
	 * at most MX_SYNC_BATCH_BYTES_MAX).  Larger values are refused with
	 * MX_ERR_INVAL before anything is fetched. */
	unsigned batch_msgs;
	uint64_t batch_bytes;
};

#define MX_SYNC_BATCH_MSGS_MAX 10000u
#define MX_SYNC_BATCH_BYTES_MAX ((uint64_t)1 << 30)

struct mx_sync_stats {
	uint64_t folders;
	uint64_t new_msgs;       /* records created */
	uint64_t new_bytes;
	uint64_t updated;        /* flag changes applied */
	uint64_t expunged;       /* locations removed */
	uint64_t remapped;       /* locations re-attached after UIDVALIDITY/move */
	uint64_t deleted;        /* records deleted (no location left) */
	uint64_t parse_errors;   /* stored but flagged as unparsable */
	uint64_t folder_errors;  /* folders skipped because of an error */
	uint64_t missing;        /* requested but not returned by the server
				    (asked for again on the next run) */
};

/*
 * Synchronizes account NAME: full sync of folders never synced, incremental
 * (QRESYNC, CONDSTORE or UID diff) otherwise.  Commits batch by batch; an
 * interrupted sync resumes where the last commit ended.
 * Errors: MX_ERR_INVAL (batch size out of range), MX_ERR_NOTFOUND,
 * MX_ERR_NET, MX_ERR_TIMEOUT, MX_ERR_TLS,
 * MX_ERR_TLS_VERIFY, MX_ERR_AUTH, MX_ERR_INSECURE, MX_ERR_PROTOCOL,
 * MX_ERR_SERVER, MX_ERR_STORE, MX_ERR_STORE_FULL, MX_ERR_CANCELLED.
 * STATS_R may be NULL.
 */
enum mx_err mx_sync(struct mx_store *store, const char *name,
		    const struct mx_sync_opts *opts,
		    struct mx_sync_stats *stats_r, struct mx_error *err);

/* ------------------------------------------------------------------ */
/* Messages                                                             */

/*
 * Status of one account (or all, NAME NULL) as JSON: per folder counts,
 * UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, last sync time.  Free with mx_free().
 * A folder (or an account's folder list) the store cannot read has an
 * "error" string instead of its counts, and its account no "messages".
 */
enum mx_err mx_status_json(struct mx_store *store, const char *name,
			   char **json_r, struct mx_error *err);

/*
 * Lists the messages of account NAME (optionally one FOLDER) as a JSON
 * array, newest first.  Free with mx_free().  MX_ERR_STORE when the store
 * cannot list them all (never a shorter list).  A message record that
 * cannot be decoded (corrupt) is left out with a warning naming its id
 * (mx_log, "message ID: unreadable record skipped").
 */
enum mx_err mx_list_json(struct mx_store *store, const char *name,
			 const char *folder, char **json_r,
			 struct mx_error *err);

struct mx_list_opts {
	const char *folder; /* only messages in this folder; NULL = all */
	uint64_t limit;     /* at most this many, the newest; 0 = all */
};

/*
 * mx_list_json() with options (OPTS may be NULL).  With a limit, only the
 * messages listed are read from the store: the cost follows the limit,
 * not the size of the account.
 */
enum mx_err mx_list_json_opts(struct mx_store *store, const char *name,
			      const struct mx_list_opts *opts, char **json_r,
			      struct mx_error *err);

/*
 * One message record as JSON (headers, addresses, thread, parts, locations,
 * flags).  ID is the stable message id as printed by `mxsync ls`.
 * "addresses_truncated": true when an address header had more entries
 * than are kept (2000): the lists hold the first ones.
 * MX_ERR_STORE when the store cannot list its locations.
 */
enum mx_err mx_message_json(struct mx_store *store, const char *id,
			    char **json_r, struct mx_error *err);

/* The original RFC 5322 bytes of message ID.  Free *DATA_R with mx_free(). */
enum mx_err mx_message_raw(struct mx_store *store, const char *id,
			   char **data_r, size_t *len_r, struct mx_error *err);

/* Decoded text/plain (or text from HTML) body of message ID, UTF-8. */
enum mx_err mx_message_text(struct mx_store *store, const char *id,
			    char **text_r, struct mx_error *err);

enum mx_flag_op {
	MX_FLAG_SEEN = 1,
	MX_FLAG_UNSEEN = 2,
	MX_FLAG_FLAGGED = 3,
	MX_FLAG_UNFLAGGED = 4
};

/*
 * Changes a flag on message ID on the server (every folder holding it) and
 * in the store.  The store is updated only after the server accepted it.
 */
enum mx_err mx_message_flag(struct mx_store *store, const char *id,
			    enum mx_flag_op op, struct mx_error *err);

/*
 * Moves message ID to FOLDER (a folder name of its account, as `mxsync
 * folders` shows it) on the server, then in the store: IMAP UID MOVE (RFC
 * 6851) when the server offers it, else UID COPY, \Deleted and UID
 * EXPUNGE (RFC 4315) of that message alone.  The message ends up once in
 * FOLDER: copies of it in other folders go too.  It keeps its id; the
 * store writes message.moved.  MX_ERR_INVAL: no such folder;
 * MX_ERR_UNSUPPORTED: the account's server has no folders (POP3) or can
 * move only by expunging other messages (neither MOVE nor UIDPLUS).
 */
enum mx_err mx_message_move(struct mx_store *store, const char *id,
			    const char *folder, struct mx_error *err);

/*
 * Deletes message ID: moves it to its account's Trash folder (SPECIAL-USE
 * \Trash, RFC 6154) as mx_message_move() does, or, when PERMANENT, when
 * the account has no Trash or the message is only in Trash, removes it
 * for good (\Deleted and UID EXPUNGE of that message alone) and deletes
 * the record (message.deleted).  Errors as for mx_message_move().
 */
enum mx_err mx_message_delete(struct mx_store *store, const char *id,
			      bool permanent, struct mx_error *err);

enum mx_export_format { MX_EXPORT_MAILDIR = 1, MX_EXPORT_MBOX = 2 };

/*
 * Exports every stored message of account NAME with its original bytes:
 * a Maildir per folder (OUT/<folder>/{cur,new,tmp}) or one mboxrd file per
 * folder (OUT/<folder>.mbox).  *COUNT_R (may be NULL) receives the number
 * of messages written.
 */
enum mx_err mx_export(struct mx_store *store, const char *name,
		      enum mx_export_format fmt, const char *out_dir,
		      uint64_t *count_r, struct mx_error *err);

#ifdef __cplusplus
}
#endif

#endif /* MXSYNC_MXSYNC_H */
