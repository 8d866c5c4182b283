/* Modified UTF-7 mailbox names (RFC 3501 section 5.1.3). */
#ifndef MX_MUTF7_H
#define MX_MUTF7_H

/*
 * Decodes an IMAP mailbox name to UTF-8.  Returns malloc()ed string, or NULL
 * on malformed input or ENOMEM (callers then keep the wire name as is).
 */
char *mx_mutf7_decode(const char *in);

/* Encodes a UTF-8 mailbox name to modified UTF-7; NULL on bad UTF-8/ENOMEM. */
char *mx_mutf7_encode(const char *in);

#endif
