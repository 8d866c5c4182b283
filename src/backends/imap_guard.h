/*
 * IMAP lexical guard: sees every byte the server sends before libetpan's
 * parser does, and refuses what would make that parser crash or buffer
 * without end (doc/internals/imap-guard.md).
 *
 * libetpan parses nested lists by recursion (a BODYSTRUCTURE 30,000
 * levels deep overflows the stack), accumulates every untagged response
 * of a command in memory until the tagged reply arrives, reads a literal's
 * size into a uint32_t (so {4294967297} is 1 byte) and keeps literals it
 * does not stream in one allocation.  The guard tracks just enough of the
 * lexical structure (lines, quoted strings, literals, parentheses) to put
 * a bound on each of these before the bytes reach the parser.  It also
 * refuses the one status line known to crash libetpan 1.9.4 outright: a
 * [PERMANENTFLAGS (...)] response code whose first flag does not parse
 * (libetpan then frees a NULL list; fixed upstream in 266d59f), and a
 * CAPABILITY response or response code without a capability (libetpan
 * keeps a NULL list that mailimap_capability() then copies), and in the
 * greeting a PERMANENTFLAGS or BADCHARSET list (parsed there without the
 * parser context libetpan dereferences).
 *
 * It knows nothing of libetpan: it is fed bytes and answers MX_OK or
 * MX_ERR_PROTOCOL with a detail that says what the server did.  After an
 * error the connection must be dropped (the guard stays failed).
 */
#ifndef MX_IMAP_GUARD_H
#define MX_IMAP_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* Parenthesis nesting; real responses stay far below (BODYSTRUCTURE of a
 * message nested 100 MIME levels deep is about 200). */
#define MX_IMAP_GUARD_MAX_DEPTH 256
/* Largest literal: the largest message we accept. */
#define MX_IMAP_GUARD_MAX_LITERAL ((uint64_t)256 << 20)
/* One response outside its literals: the longest real ones are SEARCH
 * results, about 8 MB for a million UIDs. */
#define MX_IMAP_GUARD_MAX_LINE ((uint64_t)32 << 20)
/* Response text (outside streamed literals) between two tagged replies:
 * what libetpan keeps in its line buffer until the command completes. */
#define MX_IMAP_GUARD_MAX_TEXT ((uint64_t)64 << 20)
/* Untagged responses between two tagged replies: libetpan keeps a parsed
 * structure (about 200 bytes) for each until the command completes.  Not
 * counted: FETCH responses while literals are streamed, which libetpan
 * hands to the msg_att handler and frees at once. */
#define MX_IMAP_GUARD_MAX_RESPONSES 250000

struct mx_imap_guard {
	uint64_t literal_left; /* bytes of the current literal still due */
	uint64_t text;         /* non-literal bytes since the last tagged reply */
	uint64_t line;         /* non-literal bytes of the current response */
	uint64_t responses;    /* untagged responses since the last tagged reply */
	uint64_t lit_value;    /* a literal size being read: {123 */
	unsigned depth;        /* parenthesis depth in the current response */
	char head[24];         /* the start of the current response */
	size_t head_len;
	int lit_state;         /* where in "{N}\r\n" we are (imap_guard.c) */
	int code_state;        /* where in "* OK [PERMANENTFLAGS (" or
				* "* CAPABILITY" we are */
	unsigned code_pos;     /* letters of the word or keyword matched */
	const char *code_kw;   /* the response code: PERMANENTFLAGS, CAPABILITY */
	bool code_star;        /* the tag is "*" */
	bool greeted;          /* the greeting (first response) is complete */
	char code_word[12];    /* the word after the tag: OK, CAPABILITY... */
	bool lit_overflow;     /* the size did not fit in 64 bits */
	bool at_line_start;
	bool in_quote, quote_escape;
	bool tagged;           /* the current response is a tagged reply */
	bool untagged;         /* it starts with "*" or "+" */
	bool stream_literals;  /* literals are streamed: not counted as text */
	bool failed;
	struct mx_error fail;  /* the violation, repeated on every later feed */
};

void mx_imap_guard_init(struct mx_imap_guard *g);

/*
 * Sets whether literal bytes are streamed away by the caller (FETCH with
 * a body handler) or kept by the parser (everything else): kept literals
 * count against MX_IMAP_GUARD_MAX_TEXT.
 */
void mx_imap_guard_stream_literals(struct mx_imap_guard *g, bool on);

/*
 * Feeds LEN bytes the server sent, in order.  Returns MX_OK, or
 * MX_ERR_PROTOCOL with ERR set when they break a bound, e.g.
 *   "server response nested deeper than 256 levels"
 *   "server announced a literal of 999999999999 bytes (limit 256 MiB)"
 *   "server response line longer than 32 MiB"
 *   "server sent a PERMANENTFLAGS list whose first flag is malformed
 *    (it starts with '%')"
 *   "server sent a CAPABILITY response without a capability (byte 0x0d)"
 *   "server sent a PERMANENTFLAGS list in its greeting"
 * Once failed, every later call fails with the same error.
 */
int mx_imap_guard_feed(struct mx_imap_guard *g, const void *buf, size_t len,
		       struct mx_error *err);

#endif
