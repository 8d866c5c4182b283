/*
 * Sending through the Gmail API (users.messages.send), private to
 * src/backends/: the Gmail API backend's `send` slot (MX_CAP_SEND,
 * backend.h) is this function on its connection's client.
 */
#ifndef MX_BACKENDS_GMAIL_SEND_H
#define MX_BACKENDS_GMAIL_SEND_H

#include <stdbool.h>
#include <stddef.h>

#include "backends/gmail_api.h"

/*
 * Sends the LEN bytes at RAW to exactly the NRCPTS addresses RCPTS, as
 * the `send` slot promises: Gmail sends to the To, Cc and Bcc header
 * fields of the message, so envelope recipients the header does not name
 * (Bcc: compose keeps them out of the bytes) are named in a Bcc field
 * put in front, which Gmail removes; a header naming an address that is
 * not a recipient, or a Bcc field of its own, is refused (MX_ERR_INVAL,
 * nothing sent).  THREAD (NULL: none) is the Gmail thread id.  *ID_R (may
 * be NULL) gets the sent message's id, malloc()ed.  *MAYBE_SENT_R: see
 * the slot (a transport error, a 5xx or an unreadable answer: true).
 */
int mx_gmail_send_envelope(struct mx_gmail *g, const char *raw, size_t len,
			   const char *const *rcpts, size_t nrcpts,
			   const char *thread, char **id_r, bool *maybe_sent_r,
			   struct mx_error *err);

#endif
