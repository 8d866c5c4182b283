/*
 * The backend seam: one table of operations per backend, filled with
 * designated initializers (src/backends/imap.c, src/backends/pop3.c), and
 * a registry (src/backends/backend.c) that is the only way the rest of
 * mxsync reaches a backend: mx_backend_for(), mx_backend_for_account(),
 * mx_backend_next(), mx_backend_connect().  The tables the registry hands
 * out trace every slot call (-D backend) and then call the backend's own.
 * Callers decide by the static capability bits (ops->caps), never by the
 * protocol.  The contract of each slot and how to add a backend:
 * doc/internals/backends.md.  libetpan types stay inside src/backends/.
 *
 * All memory handed to a backend stays the caller's; everything a backend
 * returns through an out-parameter belongs to the caller and is released
 * with the free function named in the comment.  Callbacks receive
 * borrowed pointers valid only during the call.
 */
#ifndef MX_BACKEND_H
#define MX_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/util.h"

/*
 * Capability bits.  In ops->caps: what the backend's table fills (a slot
 * group is non-NULL exactly when its bit is set) and how it behaves; from
 * server_caps(): what the connected server offers.  The sync model is a
 * group of its own: exactly one of the MX_CAP_MODEL_* bits is set in
 * ops->caps, and the sync layer picks its driver from it.
 */
#define MX_CAP_IDLE 0x001u /* idle_* slots (push) */
#define MX_CAP_CONDSTORE 0x002u
#define MX_CAP_QRESYNC 0x004u
#define MX_CAP_MOVE 0x008u
#define MX_CAP_UIDPLUS 0x010u
#define MX_CAP_LABELS 0x020u        /* Gmail X-GM-LABELS */
#define MX_CAP_STORES_BODIES 0x040u /* bodies are kept in the store */
#define MX_CAP_TWO_WAY_FLAGS 0x080u /* local flag changes go back */
#define MX_CAP_STORE_FLAGS 0x100u   /* store_flags */
#define MX_CAP_APPEND 0x200u        /* append (the copy in Sent) */
#define MX_CAP_SEARCH 0x400u        /* search_header */
/* UID-per-folder model: select, fetch, uids; driven by src/lib/sync/sync.c
 * over a connection the caller may keep (the daemon does). */
#define MX_CAP_MODEL_UID 0x800u
/* Maildrop model: drop_list, drop_retr, drop_remove, drop_commit; driven
 * by src/lib/sync/pop3sync.c.  One session per sync: the server locks the
 * maildrop for the session, so nobody keeps the connection (the daemon
 * polls). */
#define MX_CAP_MODEL_DROP 0x1000u
/* Change-log model: changes; driven by src/lib/sync/changes.c.  The
 * server answers "what changed since cursor C" (an opaque string) with
 * message metadata; bodies are not stored (no MX_CAP_STORES_BODIES). */
#define MX_CAP_MODEL_CHANGES 0x2000u
/* fetch_live: a message's bytes fetched from the server on demand (show). */
#define MX_CAP_FETCH_LIVE 0x4000u
/* send: the outbox sends through the backend (Gmail: messages.send). */
#define MX_CAP_SEND 0x8000u
/* store_flags_id: \Seen and \Flagged of a message named by the server's
 * id (change-log model; Gmail: the UNREAD and STARRED labels). */
#define MX_CAP_FLAGS_BY_ID 0x10000u
/* move_uid, expunge_uid: a message leaves a folder (move, delete). */
#define MX_CAP_REMOVE 0x20000u

/* A connection.  Callers hold the registry's handle (backend.c); each
 * backend has its own struct mx_conn, private to its file, that only it
 * and the registry see. */
struct mx_conn;

struct mx_remote_folder {
	char *name;      /* UTF-8 (decoded from modified UTF-7) */
	char *wire;      /* as sent by the server */
	char delim;
	unsigned special; /* MX_SU_* */
	bool noselect;
};

void mx_remote_folders_free(struct mx_remote_folder *v, size_t n);

struct mx_uid_range {
	uint32_t lo, hi; /* inclusive */
};

struct mx_flag_change {
	uint32_t uid;
	uint32_t flags;   /* MX_FL_* */
	char *keywords;   /* owned, NULL if none */
	uint64_t modseq;
};

struct mx_select_result {
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t exists;
	uint64_t highestmodseq; /* 0 when the server has no CONDSTORE */
	/* Filled only when QRESYNC parameters were given and honoured: */
	bool qresync;
	struct mx_uid_range *vanished; /* owned */
	size_t nvanished;
	struct mx_flag_change *changes; /* owned */
	size_t nchanges;
};

void mx_select_result_free(struct mx_select_result *r);

/* One message (or part of one) as FETCHed. */
struct mx_fetched {
	uint32_t uid;
	uint32_t flags;
	const char *keywords; /* NULL if none */
	int64_t internaldate; /* Unix time, 0 if not fetched */
	uint64_t size;        /* RFC822.SIZE */
	uint64_t modseq;
	const char *body;     /* BODY.PEEK[] or header fields; NULL if not */
	size_t body_len;
};

/* Returns MX_OK to continue; an error stops processing (the command is
 * still read to its end so the connection stays usable). */
typedef int mx_fetch_cb(const struct mx_fetched *m, void *ctx,
			struct mx_error *err);

enum mx_fetch_what {
	MX_FETCH_FULL = 1,    /* UID FLAGS INTERNALDATE RFC822.SIZE MODSEQ BODY.PEEK[] */
	MX_FETCH_SIZES = 2,   /* UID RFC822.SIZE */
	MX_FETCH_FLAGS = 3,   /* UID FLAGS MODSEQ */
	MX_FETCH_IDENTITY = 4 /* UID FLAGS RFC822.SIZE MODSEQ + identity header fields */
};

/* Longest message id of a maildrop (POP3 unique-id, RFC 1939 7). */
#define MX_DROP_ID_MAX 70

/* One message of a maildrop, as listed. */
struct mx_drop_msg {
	uint32_t num;                   /* message number, this session */
	uint64_t size;                  /* as listed (may be approximate) */
	char id[MX_DROP_ID_MAX + 1];    /* unique id, NUL-terminated */
};

/* Receives message bytes in order; DATA is borrowed for the call.  A
 * non-zero return stops the transfer with that error. */
typedef int mx_data_cb(const char *data, size_t len, void *ctx,
		       struct mx_error *err);

/* One message as the change-log model reports it: present (new, or
 * its labels changed: the whole current state) or removed.  Borrowed for
 * the call. */
struct mx_change {
	bool removed;       /* gone from the server: only ID is set */
	const char *id;     /* the server's message id (checked: [0-9A-Za-z_-]) */
	const char *thread; /* its thread id */
	const char *from;   /* the sender's address, NULL if none */
	int64_t date;       /* internal date, Unix time */
	const char *labels; /* label ids, space separated, "" if none */
};

/* Receives N changes in the server's order; a non-zero return stops the
 * listing with that error. */
typedef int mx_changes_cb(const struct mx_change *v, size_t n, void *ctx,
			  struct mx_error *err);

struct mx_backend_ops {
	/* ---- what the registry and `mxsync modes` show ---- */
	const char *name;          /* "imap", "pop3": -D backend */
	const char *title;         /* "IMAP", "POP3": in messages */
	enum mx_proto proto;       /* the account protocol it serves */
	unsigned caps;             /* static MX_CAP_* (see above) */
	const char *description;   /* what it stores, how it is pushed */
	/* What `mxsync modes` shows beside the caps: static, declarative
	 * facts, one short phrase each.  A backend may leave any of them
	 * NULL: the table then prints "-" (not stated), never a guess.
	 * Push or poll, two-way flags and how a Sent copy is made come from
	 * .caps, not from here. */
	const char *mode_new_mail; /* how new mail is noticed and how fast */
	const char *mode_folders;  /* what of the mailbox is seen: folders,
				      labels, INBOX only */
	const char *mode_stored;   /* what the store keeps of a message */
	const char *mode_offline;  /* what stays readable with the server
				      unreachable */
	const char *mode_limits;   /* provider connection / quota limits */

	/* ---- core: every backend fills these ---- */

	/* Connects, secures and authenticates.  Errors: MX_ERR_NET,
	 * MX_ERR_TIMEOUT, MX_ERR_TLS(_VERIFY), MX_ERR_INSECURE, MX_ERR_AUTH,
	 * MX_ERR_PROTOCOL, MX_ERR_UNSUPPORTED. */
	int (*connect)(const struct mx_account *acct, struct mx_conn **conn_r,
		       struct mx_error *err);
	/* Logs out (best effort) and frees; sets *CONN to NULL. */
	void (*disconnect)(struct mx_conn **conn);
	/* Capabilities of the connected server (MX_CAP_*). */
	unsigned (*server_caps)(struct mx_conn *conn);
	/* All folders.  Free with mx_remote_folders_free(). */
	int (*list)(struct mx_conn *conn, struct mx_remote_folder **v_r,
		    size_t *n_r, struct mx_error *err);
	/* ---- MX_CAP_MODEL_UID ---- */
	/* Selects WIRE.  With QRESYNC available and KNOWN_UIDVALIDITY and
	 * KNOWN_MODSEQ non-zero, asks for changes since then (RFC 7162).
	 * Free OUT with mx_select_result_free(). */
	int (*select)(struct mx_conn *conn, const char *wire,
		      uint32_t known_uidvalidity, uint64_t known_modseq,
		      struct mx_select_result *out, struct mx_error *err);
	/* UID FETCH on the selected folder.  UIDS are UID ranges (sorted,
	 * merged by the caller or not).  CHANGEDSINCE 0 = all. */
	int (*fetch)(struct mx_conn *conn, const struct mx_uid_range *uids,
		     size_t nuids, enum mx_fetch_what what,
		     uint64_t changedsince, mx_fetch_cb *cb, void *ctx,
		     struct mx_error *err);
	/* UID SEARCH ALL: every UID of the selected folder (malloc()ed). */
	int (*uids)(struct mx_conn *conn, uint32_t **uids_r, size_t *n_r,
		    struct mx_error *err);
	/* ---- MX_CAP_STORE_FLAGS ---- */
	/* UID STORE +FLAGS.SILENT / -FLAGS.SILENT on the selected folder. */
	int (*store_flags)(struct mx_conn *conn, uint32_t uid, uint32_t add,
			   uint32_t remove, struct mx_error *err);
	/* ---- MX_CAP_APPEND ---- */
	/* APPEND DATA (LEN bytes, CRLF lines) to folder WIRE with FLAGS
	 * (MX_FL_*); *UID_R (may be NULL) gets the new UID when the server
	 * has UIDPLUS, else 0.  No folder needs to be selected. */
	int (*append)(struct mx_conn *conn, const char *wire, uint32_t flags,
		      const char *data, size_t len, uint32_t *uid_r,
		      struct mx_error *err);
	/* ---- MX_CAP_SEARCH ---- */
	/* UID SEARCH HEADER FIELD VALUE on the selected folder (substring
	 * match, RFC 3501 6.4.4): the UIDs, malloc()ed. */
	int (*search_header)(struct mx_conn *conn, const char *field,
			     const char *value, uint32_t **uids_r,
			     size_t *n_r, struct mx_error *err);
	/* ---- MX_CAP_SEND ---- */
	/* The outbox (src/lib/send/outbox.c) sends an account's personal
	 * mail through this slot instead of SMTP.  Sends the LEN bytes at
	 * RAW (RFC 5322, CRLF lines) through the provider to exactly the
	 * NRCPTS envelope addresses RCPTS (the backend names those the
	 * header does not, e.g. Bcc), in the provider's thread THREAD
	 * (NULL: none known).  The provider files the message in Sent
	 * itself.  *ID_R (may be NULL) gets the provider's id of the sent
	 * message (malloc()ed, free()).  On an error *MAYBE_SENT_R says
	 * whether the request may have reached the provider (an answer
	 * lost or unreadable, a 5xx): then the outcome is unknown and the
	 * caller must not send it again blindly; false means certainly not
	 * sent (refused, or it never left). */
	int (*send)(struct mx_conn *conn, const char *raw, size_t len,
		    const char *const *rcpts, size_t nrcpts,
		    const char *thread, char **id_r, bool *maybe_sent_r,
		    struct mx_error *err);

	/* ---- MX_CAP_REMOVE ---- */
	/* Moves UID of the selected folder to folder WIRE: UID MOVE (RFC
	 * 6851) when the server offers MOVE, else UID COPY, \Deleted and
	 * UID EXPUNGE (RFC 4315) of that UID alone -- never a bare EXPUNGE,
	 * which would also remove every other message marked \Deleted.
	 * *UIDVALIDITY_R and *UID_R get the message's UIDVALIDITY and UID
	 * in WIRE when the server told them (COPYUID), else 0.
	 * MX_ERR_UNSUPPORTED: the server has neither MOVE nor UIDPLUS. */
	int (*move_uid)(struct mx_conn *conn, uint32_t uid, const char *wire,
			uint32_t *uidvalidity_r, uint32_t *uid_r,
			struct mx_error *err);
	/* Removes UID of the selected folder for good: \Deleted, then UID
	 * EXPUNGE of that UID alone.  MX_ERR_UNSUPPORTED: no UIDPLUS. */
	int (*expunge_uid)(struct mx_conn *conn, uint32_t uid,
			   struct mx_error *err);

	/* ---- MX_CAP_IDLE ---- */
	/*
	 * Push (RFC 2177).  idle_start selects WIRE and enters IDLE; the
	 * caller then waits for idle_fd() to become readable -- but first
	 * checks idle_pending(), since libetpan and OpenSSL may already hold
	 * bytes that poll() cannot see.  Any data means "something may have
	 * changed" (or a keepalive): the caller ends IDLE with idle_done()
	 * and syncs.  idle_done() must be called before any other command.
	 * Errors: MX_ERR_UNSUPPORTED (no IDLE), network/protocol errors.
	 */
	int (*idle_start)(struct mx_conn *conn, const char *wire,
			  struct mx_error *err);
	int (*idle_fd)(struct mx_conn *conn);
	/* Reads what the server sent during IDLE (call only when idle_fd()
	 * is readable or idle_pending()): *CHANGED_R is false when it was
	 * only keepalives ("* OK Still here"), so the caller can keep
	 * idling without a sync.  A BYE or a closed connection is an
	 * error. */
	int (*idle_check)(struct mx_conn *conn, bool *changed_r,
			  struct mx_error *err);
	bool (*idle_pending)(struct mx_conn *conn);
	int (*idle_done)(struct mx_conn *conn, struct mx_error *err);

	/* ---- MX_CAP_MODEL_DROP ---- */
	/* Every message of the maildrop, ascending number, in *V_R
	 * (malloc()ed, free()).  Unique ids are checked (printable, at most
	 * MX_DROP_ID_MAX, no duplicate).  MX_ERR_UNSUPPORTED: the server
	 * cannot tell messages apart. */
	int (*drop_list)(struct mx_conn *conn, struct mx_drop_msg **v_r,
			 size_t *n_r, struct mx_error *err);
	/* Message NUM streamed to CB in order.  An error in the middle means
	 * the message is incomplete: the caller discards what it got. */
	int (*drop_retr)(struct mx_conn *conn, uint32_t num, mx_data_cb *cb,
			 void *ctx, struct mx_error *err);
	/* Marks NUM for removal; only drop_commit() applies it. */
	int (*drop_remove)(struct mx_conn *conn, uint32_t num,
			   struct mx_error *err);
	/* Ends the session: removals take effect.  disconnect() without it
	 * discards them. */
	int (*drop_commit)(struct mx_conn *conn, struct mx_error *err);

	/* ---- MX_CAP_MODEL_CHANGES ---- */
	/* Changes since CURSOR to CB, in batches, then the cursor to give
	 * next time in *NEXT_R (malloc()ed; NULL when the server gave none:
	 * list in full again).  CURSOR NULL: a full listing, every message
	 * reported as present.  MX_ERR_EXPIRED: the server no longer knows
	 * CURSOR; list in full. */
	int (*changes)(struct mx_conn *conn, const char *cursor,
		       mx_changes_cb *cb, void *ctx, char **next_r,
		       struct mx_error *err);

	/* ---- MX_CAP_FETCH_LIVE ---- */
	/* The RFC 5322 bytes of message ID (an id from changes()) streamed
	 * to CB.  MX_ERR_NOTFOUND: gone from the server. */
	int (*fetch_live)(struct mx_conn *conn, const char *id, mx_data_cb *cb,
			  void *ctx, struct mx_error *err);

	/* ---- MX_CAP_FLAGS_BY_ID ---- */
	/* Adds and removes MX_FL_SEEN / MX_FL_FLAGGED (others:
	 * MX_ERR_UNSUPPORTED) on message ID.  MX_ERR_NOTFOUND: gone. */
	int (*store_flags_id)(struct mx_conn *conn, const char *id,
			      uint32_t add, uint32_t remove,
			      struct mx_error *err);
};

/* ---- the registry (backend.c) ---- */

/* The table for PROTO, or NULL if no backend serves it. */
const struct mx_backend_ops *mx_backend_for(enum mx_proto proto);
/* The table for account A (its protocol), or NULL. */
const struct mx_backend_ops *
mx_backend_for_account(const struct mx_account *a);
/* Iterates over every backend: PREV NULL gives the first; NULL after the
 * last. */
const struct mx_backend_ops *
mx_backend_next(const struct mx_backend_ops *prev);

/*
 * Connects account A through its backend: refuses a disabled account
 * (MX_ERR_CONFIG), makes sure an OAuth2 access token is fresh (saved to
 * ST, may be NULL), connects; when the server still refuses the token,
 * one forced refresh and one more try -- then the error stands (no loop).
 * *BE_R (may be NULL) gets the table; *CONN_R the connection, to be closed
 * with (*BE_R)->disconnect().  Errors: the backend's connect errors,
 * those of mx_account_fresh_token(), MX_ERR_UNSUPPORTED (no backend for
 * the account's protocol).
 */
int mx_backend_connect(struct mx_store *st, struct mx_account *a,
		       const struct mx_backend_ops **be_r,
		       struct mx_conn **conn_r, struct mx_error *err);

/* The backends' own tables: only backend.c (and the backends' unit tests)
 * may name them; everyone else goes through the registry. */
extern const struct mx_backend_ops mx_backend_imap;
extern const struct mx_backend_ops mx_backend_pop3;
extern const struct mx_backend_ops mx_backend_gmail;

/* The header fields MX_FETCH_IDENTITY asks for (see mx_mime_identity). */
#define MX_IDENTITY_FIELDS "MESSAGE-ID", "DATE", "FROM", "SUBJECT", "TO"

#endif
