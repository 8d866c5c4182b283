/*
 * Message composition for `mxsync send` and the outbox: builds an RFC 5322
 * / MIME message from a few fields and writes it with CRLF line endings to
 * a FILE (the spool file).  See doc/internals/send.md, "Composition".
 *
 * What it guarantees:
 *  - Validation first: every field, every address, the attachments (opened,
 *    sized, summed against the limit) are checked before the first byte is
 *    written.  On a validation error OUT is untouched.
 *  - No header injection: CR, LF, NUL, any other C0 control or DEL in a
 *    header value (names, addresses, subject, file names, content types,
 *    message ids) is refused with MX_ERR_INVAL naming the field.
 *  - Non-ASCII subject and display names become RFC 2047 encoded words
 *    (UTF-8, B or Q, each word at most 75 characters, lines at most 76);
 *    attachment names use RFC 2231 (name*=, filename*= with continuations)
 *    plus a plain ASCII fallback.
 *  - The output is 7-bit: text parts are 7bit, quoted-printable or base64
 *    (charset=utf-8), attachments are base64.  Every line ends in CRLF and
 *    is at most 78 characters, except plain ASCII header tokens that cannot
 *    be split (never over 998).
 *  - Attachments given by path are streamed from their file in 57 KB
 *    chunks: memory does not grow with their size.
 *
 * libetpan types do not appear here (DESIGN.md: confined to src/lib/send/
 * and src/backends/), and in fact compose.c does not need them.
 */
#ifndef MX_SEND_COMPOSE_H
#define MX_SEND_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/util.h"

/* Default limit on the sum of the attachment sizes: 25 MiB. */
#define MX_COMPOSE_MAX_ATTACH_DEFAULT ((uint64_t)25 * 1024 * 1024)
/* At most this many attachments per message. */
#define MX_COMPOSE_MAX_ATT 100
/* Display names, file names and the subject are capped (bytes of UTF-8). */
#define MX_COMPOSE_MAX_NAME 256
#define MX_COMPOSE_MAX_FILENAME 1000
#define MX_COMPOSE_MAX_SUBJECT 4000
/* Recipients (To + Cc + Bcc, after removing duplicates). */
#define MX_COMPOSE_MAX_RCPTS 1000

/* One attachment: a file (PATH) or bytes in memory (DATA, LEN). */
struct mx_compose_att {
	const char *path;         /* read at write time; NULL if DATA is used */
	const char *filename;     /* UTF-8; NULL = basename(PATH) (required
				     with DATA) */
	const char *content_type; /* "type/subtype"; NULL = guessed from the
				     file name's extension, else
				     application/octet-stream */
	const void *data;         /* foreign; used when PATH is NULL */
	size_t len;
};

/* Everything is foreign (owned by the caller) and only read. */
struct mx_compose {
	const char *from_addr; /* account address, addr-spec "a@b" (required) */
	const char *from_name; /* sender display name, UTF-8, may be NULL */
	/* Address lists, RFC 5322 style: "Name <a@b>, \"Doe, J\" <c@d>, e@f".
	 * Display names may be UTF-8.  Group syntax and comments are refused.
	 * Addresses must be ASCII (IDN domains in their xn-- form). */
	const char *to, *cc, *bcc;
	const char *subject;   /* UTF-8, may be NULL */
	/* Bodies, UTF-8 (validated), any of LF/CRLF/CR line ends; NULL if
	 * absent.  Both → multipart/alternative. */
	const char *text;
	size_t text_len;
	const char *html;
	size_t html_len;
	const struct mx_compose_att *att;
	size_t natt;
	/* "<id@host>" of the message replied to, and its References plus that
	 * id (msg-ids separated by blanks), as the caller found them in the
	 * store.  NULL if not a reply.  More than 40 references are trimmed
	 * to the first and the last 39. */
	const char *in_reply_to;
	const char *references;
	/* Not a header: the provider's thread of the message replied to
	 * (mx_outbox_reply_headers(), API mode), which the outbox keeps with
	 * the entry for the backend's send slot.  NULL if none. */
	const char *thread;
	const char *message_id; /* "<...@...>"; NULL = generated */
	int64_t date;           /* unix time; 0 = now */
	uint64_t max_attach_bytes; /* 0 = MX_COMPOSE_MAX_ATTACH_DEFAULT */
	bool bulk;              /* adds "Precedence: bulk" (RFC 3834 2) */
};

struct mx_compose_out {
	char *message_id; /* owned: "<...>" as written */
	char **rcpts;     /* owned: envelope recipients (To, Cc, Bcc addr-specs,
			     domains lower-cased, duplicates removed, in order) */
	size_t nrcpts;
	uint64_t size;    /* bytes written */
	bool has_8bit;    /* the message needs 8BITMIME: never true today (all
			     parts are 7bit, QP or base64; addresses ASCII) */
};

/*
 * Validates C, then writes the message to OUT (CRLF line endings) and
 * fills RES (may be NULL; free it with mx_compose_out_free()).
 * Errors:
 *  MX_ERR_INVAL  a bad field, each naming it: control characters or line
 *                breaks in a header value, invalid UTF-8, an invalid
 *                address ("to: invalid address 'x@': ..."), no recipient,
 *                a bad message id, attachments over the limit ("attachments
 *                total 26.2 MB, over the 25 MB limit"), too many of
 *                something.  Nothing written.
 *  MX_ERR_IO     an attachment cannot be opened or read (names the file;
 *                nothing written when found before writing, else the
 *                output is incomplete and must be discarded), or writing
 *                OUT failed.
 *  MX_ERR_NOMEM
 * The attachment files are opened during validation and read while
 * writing; a file that changes size in between is an MX_ERR_IO.
 */
int mx_compose_write(const struct mx_compose *c, FILE *out,
		     struct mx_compose_out *res, struct mx_error *err);

/* Frees what RES owns and zeroes it.  NULL-safe. */
void mx_compose_out_free(struct mx_compose_out *res);

/*
 * JSON front end (for programs: `mxsync send --json`, the HTTP API).
 * Accepts one object:
 *   {"to": "a@b, C <c@d>" | ["a@b", "C <c@d>"], "cc": ..., "bcc": ...,
 *    "subject": "...", "text": "...", "html": "...",
 *    "attachments": [{"path": "/f.pdf", "filename"?, "content_type"?} |
 *                    {"filename": "x.bin", "content_type"?,
 *                     "content_base64": "..."}],
 *    "reply_to_message": "<id@host>", "idempotency_key": "...",
 *    "bulk": true|false}
 * Types are strict (a number where a string belongs is an error), unknown
 * and duplicate keys are refused, sizes are capped (see compose_json.c:
 * the whole document 48 MB, text and html 16 MB each, an address list 64 KB,
 * 100 attachments, an idempotency key 1..200 printable ASCII characters).
 * Field contents are checked by mx_compose_write(); this only checks the
 * shape.  The sender, date and reply headers are the caller's:
 * REQ->c.from_addr/from_name/date are left zero, and for
 * REPLY_TO_MESSAGE the caller looks the original up and sets
 * c.in_reply_to and c.references.
 * Security: a "path" attachment is a local file read with the caller's
 * rights when the message is composed.  A front end serving remote
 * clients (the HTTP API) must refuse requests with one (any
 * REQ->atts[i].path != NULL) or confine the paths itself.
 */
struct mx_compose_req {
	struct mx_compose c;       /* points into the storage below */
	char *reply_to_message;    /* owned, NULL if absent */
	char *idempotency_key;     /* owned, NULL if absent */
	/* private: the storage behind c */
	void *doc;                   /* the parsed document (strings point
					into it) */
	char *joined[3];             /* to, cc, bcc given as arrays */
	struct mx_compose_att *atts; /* owned */
	void **att_data;             /* owned decoded content_base64 */
};

/*
 * Parses JSON (LEN bytes) into a new request, *REQ_R (free with
 * mx_compose_req_free()).  Errors: MX_ERR_PARSE (not JSON, wrong type,
 * unknown key, bad base64: the detail names the key), MX_ERR_INVAL (a value
 * over its cap), MX_ERR_NOMEM.
 */
int mx_compose_req_from_json(const char *json, size_t len,
			     struct mx_compose_req **req_r,
			     struct mx_error *err);

/* The same for a document already parsed: DOC is a json_t (an object,
 * else MX_ERR_PARSE); the request holds a reference of its own. */
int mx_compose_req_from_value(void *doc, struct mx_compose_req **req_r,
			      struct mx_error *err);

/* Frees the request and sets *REQ to NULL.  NULL-safe. */
void mx_compose_req_free(struct mx_compose_req **req);

#endif
