/*
 * The backend interface: one table of operations per protocol, filled with
 * designated initializers (src/backends/imap.c: mx_backend_imap).  The sync
 * engine (src/lib/sync/) only sees these types; libetpan types stay inside
 * src/backends/.
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

/* Capability bits (what the connected server offers / the backend does). */
#define MX_CAP_IDLE 0x001u
#define MX_CAP_CONDSTORE 0x002u
#define MX_CAP_QRESYNC 0x004u
#define MX_CAP_MOVE 0x008u
#define MX_CAP_UIDPLUS 0x010u
#define MX_CAP_LABELS 0x020u        /* Gmail X-GM-LABELS */
#define MX_CAP_STORES_BODIES 0x040u /* bodies are kept in the store */
#define MX_CAP_TWO_WAY_FLAGS 0x080u /* local flag changes go back */

struct mx_conn; /* per backend */

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

struct mx_backend_ops {
	const char *name;
	unsigned caps; /* what the backend can do at most (MX_CAP_*) */

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
	/* UID STORE +FLAGS.SILENT / -FLAGS.SILENT on the selected folder. */
	int (*store_flags)(struct mx_conn *conn, uint32_t uid, uint32_t add,
			   uint32_t remove, struct mx_error *err);
	/* APPEND DATA (LEN bytes, CRLF lines) to folder WIRE with FLAGS
	 * (MX_FL_*); *UID_R (may be NULL) gets the new UID when the server
	 * has UIDPLUS, else 0.  No folder needs to be selected. */
	int (*append)(struct mx_conn *conn, const char *wire, uint32_t flags,
		      const char *data, size_t len, uint32_t *uid_r,
		      struct mx_error *err);
	/* UID SEARCH HEADER FIELD VALUE on the selected folder (substring
	 * match, RFC 3501 6.4.4): the UIDs, malloc()ed. */
	int (*search_header)(struct mx_conn *conn, const char *field,
			     const char *value, uint32_t **uids_r,
			     size_t *n_r, struct mx_error *err);

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
};

extern const struct mx_backend_ops mx_backend_imap;

/* The header fields MX_FETCH_IDENTITY asks for (see mx_mime_identity). */
#define MX_IDENTITY_FIELDS "MESSAGE-ID", "DATE", "FROM", "SUBJECT", "TO"

#endif
