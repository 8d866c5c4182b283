/*
 * The LMDB store: the single source of truth.  Schema: doc/internals/store.md.
 *
 * Memory: values returned by LMDB are valid only until the next update or
 * the end of the transaction; every getter here copies into mxsync structs
 * (released with the matching _free function) unless its comment says the
 * pointer is borrowed.
 *
 * Writes: use mx_store_write(), which runs a callback inside one write
 * transaction and, when LMDB reports MDB_MAP_FULL, aborts, grows the map
 * and runs the callback again.  The callback must therefore not change
 * state outside the transaction that a second run would trip over.
 */
#ifndef MX_STORE_H
#define MX_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "mime/mime.h"
#include "util/util.h"

#define MX_SCHEMA_VERSION 1

/* Read transactions open at once across every process of a store
 * (LMDB's reader table, in lock.mdb; the first process to open the store
 * sizes it). */
#define MX_STORE_MAX_READERS 2048

enum mx_dbi {
	MX_DB_META,          /* "schema_version", counters */
	MX_DB_ACCOUNTS,      /* u32 account id -> JSON */
	MX_DB_ACCOUNT_NAMES, /* name -> u32 account id */
	MX_DB_FOLDERS,       /* u32 folder id -> JSON */
	MX_DB_FOLDER_NAMES,  /* u32 account id + UTF-8 name -> u32 folder id */
	MX_DB_MESSAGES,      /* u64 message id -> JSON record */
	MX_DB_BLOBS,         /* sha256 -> raw RFC 5322 bytes */
	MX_DB_BLOBREFS,      /* sha256 -> u32 reference count */
	MX_DB_LOCS,          /* u32 folder id + u32 uid -> location value */
	MX_DB_MSGLOCS,       /* u64 msg id + u32 folder + u32 uid -> "" */
	MX_DB_IDENTITY,      /* u32 account + identity[32] -> u64 msg id (dup) */
	MX_DB_MSGID,         /* u32 account + Message-ID -> u64 msg id (dup) */
	MX_DB_THREADREFS,    /* u32 account + Message-ID -> u64 thread id */
	MX_DB_THREADSUBJ,    /* u32 account + normalized subject -> u64 thread */
	MX_DB_THREADS,       /* u64 thread id + u64 msg id -> "" */
	MX_DB_EVENTS,        /* u64 sequence -> JSON event */
	MX_DB_BYDATE,        /* u32 account + u64 date + u64 id -> summary
				(mx_msg_summary_encode; "" before them) */
	MX_DB_ORPHANS,       /* u64 msg id -> "": records with no location */
	MX_DB_WEBHOOKS,      /* endpoint name -> u64 last delivered event id */
	MX_DB_ACCTSTATE,     /* u32 account id -> JSON daemon state */
	MX_DB_OUTBOX,        /* u64 outbox id -> JSON entry (src/lib/send) */
	MX_DB_OUTBOX_KEYS,   /* u32 account + idempotency key -> u64 id */
	MX_DB_SENDLOG,       /* u32 account + u64 time + u64 outbox id -> "" */
	MX_DB_OUTBOX_PENDING, /* u64 outbox id -> "": entries with work left */
	MX_DB_APITOKENS,     /* 'h' + sha256(token) -> JSON; 'i' + u64 id ->
				sha256 (src/lib/users/tokens.c) */
	MX_DB_API_IDEM,      /* API user + '\0' + Idempotency-Key -> u64
				created, u64 outbox id, sha256 of the
				request (src/lib/send/outbox_idem.c) */
	MX_DB_CONTACTS,      /* CRM contact id -> JSON (src/lib/crm) */
	MX_DB_CONTACT_ADDRS, /* address NUL contact id -> 'p'|'a'|'t' */
	MX_DB_LINKS,         /* u64 msg id -> JSON link (src/lib/crm) */
	MX_DB_TIMELINE,      /* contact id NUL u64 date u64 msg -> 'l'|'m' */
	MX_DB_WEBHOOK_EPS,   /* u64 endpoint id -> JSON (src/lib/events/
				endpoints.c) */
	MX_DB_COUNT
};

struct mx_secrets;

struct mx_store {
	MDB_env *env;
	MDB_dbi dbi[MX_DB_COUNT];
	char *dir;          /* owned */
	size_t map_size;    /* current */
	size_t map_max;     /* growth limit */
	void *map_addr;     /* where data.mdb is mapped (for trimming) */
	size_t map_len;
	pthread_mutex_t trim_mu; /* several threads write (daemon) */
	/* The key that seals account secrets (src/lib/secrets): owned, opened
	 * on the first account put/get that needs it, from $MXSYNC_KEY, else
	 * $MXSYNC_KEY_FILE, else DIR/secret.key.  secrets_mu guards the
	 * lazy open (the daemon's workers share the store). */
	struct mx_secrets *secrets;
	pthread_mutex_t secrets_mu;
	/* lock.mdb as LMDB opened it: a write transaction on a deleted or
	 * replaced lock file would race writers that use the new one, so
	 * every write first checks that the path still names this file.
	 * lock_lost is sticky once that check failed. */
	dev_t lock_dev;
	ino_t lock_ino;
	atomic_bool lock_lost;
	int daemon_fd; /* DIR/mxsync.lock held by mxsyncd, else -1 */
};

struct mx_txn {
	struct mx_store *st; /* foreign */
	MDB_txn *txn;
	bool write;
};

/* Internal open with an explicit initial map size and limit (tests). */
int mx_store_open_ex(const char *dir, size_t map_size, size_t map_max,
		     struct mx_store **store_r, struct mx_error *err);

/* mx_store_open_flags: fail with MX_ERR_NOTFOUND ("no store in DIR")
 * instead of creating the directory and a new store (read-only
 * commands, so that a mistyped data directory is not a new store). */
#define MX_STORE_NOCREATE 0x1u
int mx_store_open_flags(const char *dir, size_t map_size, size_t map_max,
			unsigned flags, struct mx_store **store_r,
			struct mx_error *err);

/*
 * Checks the LMDB data file PATH (DIR/data.mdb) before LMDB maps it: a
 * file shorter than its last used page makes every read of a page past
 * the end a SIGBUS, and an empty one would silently become a new store.
 * Reads the two meta pages (page size, last page, transaction id) with
 * pread and compares the newer one's last page with the file size.
 * Errors: MX_ERR_NOTFOUND (no such file), MX_ERR_STORE naming what is
 * wrong (empty, shorter than its meta pages, not an LMDB file, truncated
 * before its last page), MX_ERR_IO (cannot open or read it).
 */
int mx_store_check_file(const char *path, struct mx_error *err);

/*
 * MX_OK while DIR/lock.mdb is still the file this store opened, else
 * MX_ERR_STORE saying it was deleted or replaced (then for good: every
 * later write transaction fails the same way).  mx_txn_begin and
 * mx_txn_commit run it for write transactions; mxsyncd also polls it.
 */
int mx_store_check_lock(struct mx_store *st, struct mx_error *err);

/*
 * mxsyncd's lock on the data directory: an exclusive fcntl() lock on
 * DIR/mxsync.lock, held until mx_store_close(), whose contents name the
 * holder's pid and the lock.mdb it uses.  MX_ERR_EXISTS "mxsyncd (pid N)
 * is already running on DIR" if another process holds it; MX_ERR_IO.
 */
int mx_store_daemon_lock(struct mx_store *st, struct mx_error *err);

/* The pid of the mxsyncd holding DIR's lock, 0 if none does (-1 if one
 * does but has not written its pid yet). */
pid_t mx_store_daemon_pid(const char *dir);

/*
 * Watches DIR/data.mdb for commits, also by other processes (guard.c):
 * an inotify descriptor (non-blocking, close-on-exec) that becomes
 * readable on IN_MODIFY.  LMDB maps the file read-only (no MDB_WRITEMAP)
 * and writes every commit through it with pwrite(), the meta page last;
 * so a change seen as IN_MODIFY and drained (mx_store_watch_drain)
 * before a read is either in that read or followed by another IN_MODIFY.
 * -1 when the file cannot be watched (no inotify, a network file system,
 * out of watches): then poll.
 */
int mx_store_watch(const struct mx_store *st);
void mx_store_watch_drain(int fd);

/* Part of the open (guard.c): remembers lock.mdb, refuses a lock.mdb that
 * a running mxsyncd does not use, warns about modes open to others. */
int mx_store_guard_open(struct mx_store *st, struct mx_error *err);

int mx_txn_begin(struct mx_store *st, bool write, struct mx_txn *t,
		 struct mx_error *err);
int mx_txn_commit(struct mx_txn *t, struct mx_error *err);
void mx_txn_abort(struct mx_txn *t);

/* Maps an LMDB return code to MX_ERR_STORE / MX_ERR_STORE_FULL / NOTFOUND. */
int mx_store_err(struct mx_error *err, int mdb_rc, const char *what);

typedef int mx_store_write_fn(struct mx_txn *t, void *ctx,
			      struct mx_error *err);

/*
 * Runs FN in a write transaction and commits it.  On MX_ERR_STORE_FULL
 * the transaction is aborted, the map doubled (up to map_max) and FN run
 * again.  Any other error aborts: nothing of FN's writes remains.
 */
int mx_store_write(struct mx_store *st, mx_store_write_fn *fn, void *ctx,
		   struct mx_error *err);

/* Raw key/value helpers. */
int mx_db_get(struct mx_txn *t, enum mx_dbi db, const void *k, size_t klen,
	      MDB_val *v, struct mx_error *err); /* MX_ERR_NOTFOUND if absent */
int mx_db_put(struct mx_txn *t, enum mx_dbi db, const void *k, size_t klen,
	      const void *v, size_t vlen, unsigned flags, struct mx_error *err);
int mx_db_del(struct mx_txn *t, enum mx_dbi db, const void *k, size_t klen,
	      const void *v, size_t vlen, struct mx_error *err);
/*
 * Walks the entries of one table in key order, for code outside the store
 * that reads or prunes a table of its own (the outbox, the event feed):
 * no one else opens an LMDB cursor.
 *
 * Range: the keys that begin with the NPRE bytes of PRE (NPRE 0: every
 * key).  Forward, the walk starts at the first such key >= START; in
 * reverse (MX_WALK_REVERSE), at the last such key < START (an exclusive
 * upper bound).  NSTART 0: at the first (last) key of the range.  It ends
 * at the end of the range.
 *
 * FN gets each entry (K and V borrowed until the next step) and returns
 * MX_OK to go on, MX_WALK_STOP to end the walk with MX_OK,
 * MX_WALK_DELETE to delete this entry and go on to the one after it (in
 * walk order), or an error, which ends the walk and is returned as it is.
 * FN may write to other tables and put the current key of this one in T.
 * A failing LMDB call is an error "WHAT: ..." (MX_ERR_STORE, or
 * MX_ERR_STORE_FULL for a delete), never an early end: a caller never
 * takes a partial walk for a complete one.
 */
#define MX_WALK_REVERSE 0x1u
#define MX_WALK_STOP (-1)
#define MX_WALK_DELETE (-2)
typedef int mx_store_walk_fn(struct mx_txn *t, const MDB_val *k,
			     const MDB_val *v, void *ctx, struct mx_error *err);
int mx_store_walk(struct mx_txn *t, enum mx_dbi db, const void *pre,
		  size_t npre, const void *start, size_t nstart, unsigned flags,
		  const char *what, mx_store_walk_fn *fn, void *ctx,
		  struct mx_error *err);

/* Next value of counter NAME in META (starting at 1). */
int mx_db_next_id(struct mx_txn *t, const char *name, uint64_t *id_r,
		  struct mx_error *err);

/*
 * Seals the clear text PLAIN with the store's key (opened, or created, as
 * for account secrets), bound to AAD ("webhook:7:secret"); *SEALED_R is
 * malloc()ed.  mx_store_unseal() opens it again (*PLAIN_R: free it with
 * mx_secret_free()); a missing key file is then an error, never a new
 * key.  WHAT names the owner in errors.
 */
int mx_store_seal(struct mx_store *st, const char *what, const char *aad,
		  const char *plain, char **sealed_r, struct mx_error *err);
int mx_store_unseal(struct mx_store *st, const char *what, const char *aad,
		    const char *sealed, char **plain_r, struct mx_error *err);

/* ---- accounts ---- */

enum mx_tls_mode { MX_TLS_IMPLICIT = 0, MX_TLS_STARTTLS = 1, MX_TLS_NONE = 2 };

/* How mail comes in: IMAP (two-way) or POP3 (download by UIDL). */
enum mx_proto { MX_PROTO_IMAP = 0, MX_PROTO_POP3 = 1, MX_PROTO_GMAIL = 2 };

/* Who may see an account's mail through the HTTP API (stored here,
 * enforced by the API): only its owner, the owner and listed users, or
 * every API user. */
enum mx_access { MX_ACCESS_OWNER = 0, MX_ACCESS_SELECTED = 1, MX_ACCESS_ALL = 2 };

/* What happens to mail over the daily quota: wait for the rolling window,
 * or go out through the fallback relay. */
enum mx_quota_policy { MX_QUOTA_HOLD = 0, MX_QUOTA_RELAY = 1 };

/* An SMTP endpoint: the account's submission server, or the operator's
 * fallback relay. */
struct mx_smtp_server {
	char *url;      /* as given: smtps://[USER@]HOST[:465], smtp://...[:587]
			 * (STARTTLS required), smtp+plain://... (no TLS) */
	char *host;     /* NULL: not configured */
	uint16_t port;
	enum mx_tls_mode tls;
	char *user;     /* NULL: no AUTH (relay) / the account's user (smtp) */
	char *password; /* sealed at rest; NULL: the account's credentials
			 * (smtp) or none (relay) */
	char *mechanism; /* AUTH mechanism to use; NULL: the strongest one
			  * offered */
};

struct mx_account {
	uint32_t id;
	char *name;
	char *imap_url;
	char *host;
	uint16_t port;
	enum mx_tls_mode tls;
	char *user;
	char *password;      /* sealed at rest (src/lib/secrets) */
	char *refresh_token; /* OAuth2; sealed at rest */
	char *access_token;  /* OAuth2; sealed at rest */
	char *client_secret; /* OAuth2; sealed at rest */
	char *password_file;
	char *ca_file;
	bool insecure_plaintext;
	int timeout_s;
	int64_t created;
	/* Which incarnation of the account this is: a fresh value from the
	 * "next_account_generation" counter at every `account add`, so a
	 * sync that started before the account was removed (and maybe added
	 * again under the same name, or re-attached to the same id) can tell
	 * that its record is gone.  0 in records from before generations. */
	uint64_t generation;
	/* OAuth2 (access_token set = AUTHENTICATE OAUTHBEARER/XOAUTH2). */
	char *oauth_token_url;
	char *oauth_client_id;
	char *oauth_scope;
	int64_t token_expires;  /* unix time, 0 = unknown */
	int64_t token_refreshed; /* unix time of the last refresh */
	/* Lifecycle. */
	char *display_name;     /* sender display name */
	bool disabled;          /* `mxsync account disable` */
	/* Incoming protocol (the URL's scheme). */
	enum mx_proto proto;
	bool pop3_delete;       /* POP3: delete on the server once stored */
	/* Sending. */
	char *email;            /* From address; NULL: user if it has an @ */
	char *provider;         /* preset name, NULL if none */
	struct mx_smtp_server smtp;
	struct mx_smtp_server relay;  /* fallback relay (quota, bulk mail) */
	bool saves_sent;        /* the server files SMTP-sent mail in Sent */
	int daily_limit;        /* messages per rolling 24 h; 0 = no limit */
	enum mx_quota_policy quota_policy;
	uint64_t max_attach;    /* total attachment bytes; 0 = 25 MB */
	/* Access permissions (enforced by the HTTP API). */
	enum mx_access access;
	char *owner;            /* API user who owns the account, or NULL */
	char **allowed;         /* owned; MX_ACCESS_SELECTED: these users */
	size_t nallowed;
};

/* The From address of A: a->email, else a->user when it contains '@',
 * else NULL. */
const char *mx_account_from(const struct mx_account *a);

/* A's password: the stored one, else the first line of its password file
 * (read now, so a changed file takes effect at the next login).  *PW_R is
 * malloc()ed; wipe and free it.  Errors: MX_ERR_CONFIG (neither),
 * MX_ERR_IO (file), MX_ERR_NOMEM. */
int mx_account_password(const struct mx_account *a, char **pw_r,
			struct mx_error *err);

/* Wipes the secrets (password, tokens, client secret) and frees. */
void mx_account_free(struct mx_account *a);
void mx_smtp_server_free(struct mx_smtp_server *s);
/*
 * Secrets at rest: put stores password, refresh_token, access_token and
 * client_secret sealed (AES-256-GCM, AAD "account:ID:FIELD"); get and list
 * return them in clear text.  A record from before sealing (clear text)
 * still loads and is sealed by the next put.  Get/list errors besides the
 * usual: MX_ERR_CONFIG "cannot decrypt account NAME's secrets: wrong key
 * ..." or "... key file ... is missing" (never garbage), and the key
 * errors of mx_secrets_open().
 */
/* Assigns a->id when 0.  Inside an mx_store_write() callback, reset the id
 * to 0 at the start of the callback: a MAP_FULL retry rolls the counter
 * back, so an id kept from the aborted run would be handed out twice. */
int mx_store_account_put(struct mx_txn *t, struct mx_account *a,
			 struct mx_error *err);
int mx_store_account_get(struct mx_txn *t, const char *name,
			 struct mx_account *a, struct mx_error *err);
/*
 * Lists (reads) return complete results or an error, never a short list:
 * every LMDB failure during the cursor walk is MX_ERR_STORE with a detail
 * naming the list ("locations of folder #5: MDB_...: ..."), and so is an
 * entry of the listed range that has the wrong shape ("...: corrupt locs
 * entry (key ..., N bytes)").  MX_ERR_NOMEM when out of memory.  On error
 * nothing is handed out: *V_R is NULL and *N_R 0.  An LMDB failure also
 * leaves T unusable for writes (LMDB rejects them): abort it.
 */
/* All accounts, by id (free each with mx_account_free, then the array).
 * An undecodable record is skipped; one whose secrets do not open fails
 * the list (see above).  Errors: as for lists above. */
int mx_store_account_list(struct mx_txn *t, struct mx_account **v_r,
			  size_t *n_r, struct mx_error *err);

/*
 * Account lifecycle (record.c).  mx_store_del_prefix deletes every entry
 * of DB whose key begins with the NPRE bytes of PRE (all duplicates too).
 * mx_store_account_events_del deletes the events of ACCOUNT_ID from the
 * feed (a purge: they name its folders and messages).
 *
 * Kept mail: `account remove` without purge leaves the account's mail in
 * the store under its id and records the account there ("kept"): id,
 * name and server (URL, host, port, user, protocol), no secrets, CREATED
 * = when it was removed.  Re-adding the same name and server re-attaches
 * it; a purge by name deletes it.  mx_store_kept_list returns the kept
 * accounts named NAME (NULL: all), by id; free each with
 * mx_account_free, then the array.  Errors: MX_ERR_STORE, MX_ERR_NOMEM.
 */
int mx_store_del_prefix(struct mx_txn *t, enum mx_dbi db, const void *pre,
			size_t npre, struct mx_error *err);
int mx_store_account_events_del(struct mx_txn *t, uint32_t account_id,
				 struct mx_error *err);
int mx_store_kept_put(struct mx_txn *t, const struct mx_account *a,
		      struct mx_error *err);
int mx_store_kept_del(struct mx_txn *t, uint32_t id, struct mx_error *err);
int mx_store_kept_list(struct mx_txn *t, const char *name,
		       struct mx_account **v_r, size_t *n_r,
		       struct mx_error *err);

/* ---- folders ---- */

/* Special-use bits (RFC 6154). */
#define MX_SU_ALL 0x01u
#define MX_SU_ARCHIVE 0x02u
#define MX_SU_DRAFTS 0x04u
#define MX_SU_FLAGGED 0x08u
#define MX_SU_JUNK 0x10u
#define MX_SU_SENT 0x20u
#define MX_SU_TRASH 0x40u
#define MX_SU_INBOX 0x80u

struct mx_folder {
	uint32_t id;
	uint32_t account_id;
	char *name;          /* UTF-8 */
	char *wire;          /* as on the wire (modified UTF-7) */
	char delim;
	unsigned special;    /* MX_SU_* */
	bool noselect;
	bool gone;           /* no longer listed by the server */
	uint32_t uidvalidity;
	uint32_t uidnext;        /* server's UIDNEXT covered by the store */
	uint64_t highestmodseq;  /* covered by the store */
	uint32_t initial_top;    /* UIDNEXT when the initial sync started */
	uint32_t initial_low;    /* lowest UID committed by the initial
				    sync; 0 = not started */
	bool initial_done;
	int64_t last_sync;
	uint32_t server_exists;
};

void mx_folder_free(struct mx_folder *f);
void mx_folders_free(struct mx_folder *v, size_t n);
/* Assigns f->id when 0; same retry rule as mx_store_account_put(). */
int mx_store_folder_put(struct mx_txn *t, struct mx_folder *f,
			struct mx_error *err);
int mx_store_folder_get(struct mx_txn *t, uint32_t id, struct mx_folder *f,
			struct mx_error *err);
int mx_store_folder_find(struct mx_txn *t, uint32_t account_id,
			 const char *name, struct mx_folder *f,
			 struct mx_error *err);
/* Folders of ACCOUNT_ID by name (free with mx_folders_free).  Errors:
 * as for lists (see mx_store_account_list), also a name entry whose
 * folder record is missing or corrupt (that of mx_store_folder_get). */
int mx_store_folder_list(struct mx_txn *t, uint32_t account_id,
			 struct mx_folder **v_r, size_t *n_r,
			 struct mx_error *err);

/* ---- locations: where a message lives on the server ---- */

struct mx_loc {
	uint32_t folder_id;
	uint32_t uid;
	uint64_t msg_id;
	uint64_t modseq;
	uint32_t flags;     /* MX_FL_* */
	char *keywords;     /* space separated, NULL if none */
};

#define MX_FL_SEEN 0x01u
#define MX_FL_ANSWERED 0x02u
#define MX_FL_FLAGGED 0x04u
#define MX_FL_DELETED 0x08u
#define MX_FL_DRAFT 0x10u

int mx_store_loc_get(struct mx_txn *t, uint32_t folder_id, uint32_t uid,
		     struct mx_loc *l, struct mx_error *err);
/* Creates or replaces; maintains MSGLOCS. */
int mx_store_loc_put(struct mx_txn *t, const struct mx_loc *l,
		     struct mx_error *err);
int mx_store_loc_del(struct mx_txn *t, uint32_t folder_id, uint32_t uid,
		     struct mx_error *err);
/* All locations of a folder, ascending UID.  Free with mx_locs_free.
 * Errors: as for lists (see mx_store_account_list), also a location value
 * that does not decode. */
int mx_store_folder_locs(struct mx_txn *t, uint32_t folder_id,
			 struct mx_loc **v_r, size_t *n_r,
			 struct mx_error *err);
/* All locations of a message (free with mx_locs_free).  A reverse entry
 * whose location is gone or holds another message is stale and skipped.
 * Errors: as for lists (see mx_store_account_list), also those of
 * mx_store_loc_get (a corrupt location). */
int mx_store_msg_locs(struct mx_txn *t, uint64_t msg_id, struct mx_loc **v_r,
		      size_t *n_r, struct mx_error *err);
void mx_locs_free(struct mx_loc *v, size_t n);

/* ---- messages ---- */

struct mx_msg {
	uint64_t id;
	uint32_t account_id;
	uint8_t sha256[32];
	uint64_t size;
	int64_t internaldate;
	int64_t added;
	uint8_t identity[32];
	uint64_t thread_id;
	struct mx_parsed p;
};

void mx_msg_free(struct mx_msg *m);

/*
 * Stores a new message: assigns m->id and m->thread_id, stores the blob
 * (deduplicated, refcounted), the identity, Message-ID and thread indexes.
 */
int mx_store_msg_add(struct mx_txn *t, struct mx_msg *m, const char *raw,
		     struct mx_error *err);
int mx_store_msg_get(struct mx_txn *t, uint64_t id, struct mx_msg *m,
		     struct mx_error *err);
/* Deletes a message record, its indexes and its blob reference. */
int mx_store_msg_del(struct mx_txn *t, uint64_t id, struct mx_error *err);
/* Message ids with IDENTITY in ACCOUNT (malloc()ed array; none: MX_OK
 * with *N_R 0).  Errors: as for lists (see mx_store_account_list). */
int mx_store_identity_find(struct mx_txn *t, uint32_t account_id,
			   const uint8_t identity[32], uint64_t **ids_r,
			   size_t *n_r, struct mx_error *err);
/*
 * The change-log model's map (API mode; written by src/lib/sync/changes.c,
 * doc/internals/backends.md), in META: "apiid" + u32 account + the
 * server's message id -> u64 record + u32 UID + the server's thread id;
 * "apimsg" + u32 account + u64 record -> the server's message id.  The
 * keys of both; an id longer than 256 bytes is cut (ids are checked far
 * shorter before they get here).
 */
#define MX_STORE_REMOTE_KEY_MAX (sizeof("apiid") - 1 + 4 + 256)
#define MX_STORE_REMOTE_REV_KEY (sizeof("apimsg") - 1 + 12)
size_t mx_store_remote_key(uint32_t account_id, const char *id,
			   uint8_t out[MX_STORE_REMOTE_KEY_MAX]);
void mx_store_remote_rev_key(uint32_t account_id, uint64_t msg,
			     uint8_t out[MX_STORE_REMOTE_REV_KEY]);
/* Record MSG of ACCOUNT in that map: the server's message id into *ID_R
 * and its thread id into *THREAD_R (either may be NULL; malloc()ed).
 * MX_ERR_NOTFOUND (no detail set) when MSG is not an API-mode message;
 * MX_ERR_STORE for a damaged entry, MX_ERR_NOMEM. */
int mx_store_remote_get(struct mx_txn *t, uint32_t account_id, uint64_t msg,
			char **id_r, char **thread_r, struct mx_error *err);
/* Message ids with MESSAGE_ID (without <>) in ACCOUNT (malloc()ed array;
 * none: MX_OK with *N_R 0).  Errors: as for lists (see
 * mx_store_account_list). */
int mx_store_msgid_find(struct mx_txn *t, uint32_t account_id,
			const char *message_id, uint64_t **ids_r, size_t *n_r,
			struct mx_error *err);
/* Borrowed pointer to the raw bytes, valid until the transaction ends. */
int mx_store_blob_get(struct mx_txn *t, const uint8_t sha[32],
		      const char **data_r, size_t *len_r,
		      struct mx_error *err);

/*
 * Blob references held by something other than a message record (the
 * outbox).  mx_store_blob_reserve adds a reference to SHA; if the blob is
 * new it reserves LEN bytes and sets *DST_R to where the caller writes
 * them (valid until the next write in T; the caller must fill them all),
 * else *DST_R is NULL: the bytes are stored already.  mx_store_blob_ref
 * references an existing blob (MX_ERR_NOTFOUND if there is none; the
 * transaction must then be aborted).  mx_store_blob_unref drops one and
 * deletes the bytes with the last.
 */
int mx_store_blob_reserve(struct mx_txn *t, const uint8_t sha[32],
			  size_t len, void **dst_r, struct mx_error *err);
int mx_store_blob_ref(struct mx_txn *t, const uint8_t sha[32],
		      struct mx_error *err);
int mx_store_blob_unref(struct mx_txn *t, const uint8_t sha[32],
			struct mx_error *err);

/* Orphans: records whose last location went away.  They are deleted by
 * the garbage collection at the end of a complete account sync unless a
 * location was re-attached meanwhile (a move). */
int mx_store_orphan_add(struct mx_txn *t, uint64_t id, struct mx_error *err);
int mx_store_orphan_del(struct mx_txn *t, uint64_t id, struct mx_error *err);
bool mx_store_is_orphan(struct mx_txn *t, uint64_t id);
/* All orphans' ids, ascending (malloc()ed array).  Errors: as for lists
 * (see mx_store_account_list). */
int mx_store_orphans(struct mx_txn *t, uint64_t **ids_r, size_t *n_r,
		     struct mx_error *err);

/* Messages of an account, newest first (by Date:, else INTERNALDATE);
 * malloc()ed array.  Errors: as for lists (see mx_store_account_list). */
int mx_store_account_msgs(struct mx_txn *t, uint32_t account_id,
			  uint64_t **ids_r, size_t *n_r, struct mx_error *err);

/* ---- events ---- */

/*
 * Appends an event to the log in this transaction.  TYPE e.g.
 * "message.new"; FOLDER_ID/MSG_ID 0 when not applicable.  EXTRA is a
 * jansson object (json_t *) merged into the payload, or NULL; not stolen.
 */
int mx_store_event(struct mx_txn *t, const char *type, uint32_t account_id,
		   uint32_t folder_id, uint64_t msg_id, const void *extra,
		   struct mx_error *err);

/* Encodes the record as JSON text (for the CLI and the API). */
char *mx_msg_to_json(const struct mx_msg *m, int indent);

/* Record codec (record.c), exposed for unit tests. */
char *mx_msg_encode(const struct mx_msg *m, size_t *len_r);
int mx_msg_decode(const char *data, size_t len, struct mx_msg *m,
		  struct mx_error *err);
char *mx_folder_encode(const struct mx_folder *f, size_t *len_r);
int mx_folder_decode(const char *data, size_t len, struct mx_folder *f,
		     struct mx_error *err);
char *mx_account_encode(const struct mx_account *a, size_t *len_r);
int mx_account_decode(const char *data, size_t len, struct mx_account *a,
		      struct mx_error *err);
/* Location value: u64 msg id, u64 modseq, u32 flags, keywords bytes. */
size_t mx_loc_encode(const struct mx_loc *l, uint8_t *buf, size_t cap);
int mx_loc_decode(const void *data, size_t len, struct mx_loc *l);

/*
 * The summary a listing shows and filters on, kept as the value of the
 * message's bydate entry (mx_store_msg_add writes it), so that a page of
 * GET /v1/messages decodes no full record: thread id, size, the number of
 * attachments, subject, snippet, From and To.  Encode: malloc()ed, NULL
 * when out of memory.  Decode fills those fields of *M (the rest zero,
 * p.date -1; free with mx_msg_free) and *ATTACHMENTS_R; its strings are
 * valid UTF-8.  Errors: MX_ERR_STORE for an empty value (a store from
 * before summaries), an unknown version or a corrupt one (bad lengths,
 * invalid UTF-8: then read the full record), MX_ERR_NOMEM.
 */
void *mx_msg_summary_encode(const struct mx_msg *m, size_t *len_r);
/*
 * Stores from before summaries: writes the summary of up to MAX messages
 * whose date index entry has none, from their records, in one write
 * transaction, walking the index from POS (20 zero bytes to begin; moved
 * on for the next call).  *DONE_R: how many; *MORE_R: whether the walk
 * stopped at MAX (call again).  A record that does not decode keeps its
 * empty value.  Errors: the store's (nothing written).
 */
int mx_store_summaries_fill(struct mx_store *st, uint8_t pos[20],
			    size_t max, size_t *done_r, bool *more_r,
			    struct mx_error *err);
int mx_msg_summary_decode(const void *data, size_t len, struct mx_msg *m,
			  uint32_t *attachments_r, struct mx_error *err);

/* Message id as text: 16 lower-case hex digits. */
void mx_msg_id_str(uint64_t id, char out[17]);
int mx_msg_id_parse(const char *s, uint64_t *id_r);

#endif
