/*
 * Sending in API mode: users.messages.send with the message's bytes
 * (base64url "raw", by gmail_api.c) and the envelope honoured.  Gmail
 * takes the recipients from the header (To, Cc, Bcc), not from an
 * envelope, and files the message in Sent itself.  The outbox decides
 * what an error means for the entry from *maybe_sent (backend.h, `send`).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backends/gmail_send.h"
#include "mime/mime.h"

/* The recipients the header names (To, Cc) as normalized addresses in
 * *V_R (n in *N_R); *BCC_R true if it has a Bcc field. */
static int header_rcpts(const char *raw, size_t len, char ***v_r,
			size_t *n_r, bool *bcc_r, struct mx_error *err)
{
	const char *p = raw, *end = raw + len;
	char **v = NULL;
	size_t n = 0;
	int rc = MX_OK;

	*bcc_r = false;
	while (p < end && *p != '\r' && *p != '\n') {
		const char *line = p, *colon, *vend;
		size_t nl;

		/* The field and its continuation lines. */
		vend = p;
		do {
			const char *e = memchr(vend, '\n', (size_t)(end - vend));

			vend = e ? e + 1 : end;
		} while (vend < end && (*vend == ' ' || *vend == '\t'));
		p = vend;
		colon = memchr(line, ':', (size_t)(vend - line));
		if (colon == NULL)
			continue;
		nl = (size_t)(colon - line);
		if (nl == 3 && strncasecmp(line, "bcc", 3) == 0)
			*bcc_r = true;
		if (!((nl == 2 && strncasecmp(line, "to", 2) == 0) ||
		      (nl == 2 && strncasecmp(line, "cc", 2) == 0)))
			continue;
		{
			struct mx_addr_list l = {0};
			bool unknown = false;

			if (mx_addr_list_parse(colon + 1,
					       (size_t)(vend - colon - 1), &l,
					       &unknown) < 0) {
				rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
				goto out;
			}
			for (size_t i = 0; i < l.n; i++) {
				char **nv;

				if (l.v[i].email == NULL)
					continue;
				nv = realloc(v, (n + 1) * sizeof(*v));
				if (nv == NULL ||
				    (nv[n] = mx_addr_normalize(l.v[i].email)) ==
					    NULL) {
					v = nv ? nv : v;
					mx_addr_list_free(&l);
					rc = mx_error_set(err, MX_ERR_INVAL,
							  "users.messages.send: "
							  "unusable address in "
							  "the header");
					goto out;
				}
				v = nv;
				n++;
			}
			mx_addr_list_free(&l);
		}
	}
out:
	if (rc) {
		for (size_t i = 0; i < n; i++)
			free(v[i]);
		free(v);
		v = NULL;
		n = 0;
	}
	*v_r = v;
	*n_r = n;
	return rc;
}

/* Addresses compare without case: a local part is case-sensitive by the
 * letter of RFC 5321, but no provider treats it so, and a recipient must
 * neither get a second copy nor be refused over it. */
static bool in_list(char *const *v, size_t n, const char *addr)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(v[i], addr) == 0)
			return true;
	return false;
}

/* A transport error, a 5xx or an unreadable 2xx: Google may have the
 * message.  The error detail of a refusal is "<method>: HTTP <status>
 * ..." (gmail_api.h, mx_gmail_map_error()). */
static bool may_have_reached(int rc, const struct mx_error *e)
{
	switch (rc) {
	case MX_ERR_NET:
	case MX_ERR_TIMEOUT:
	case MX_ERR_TLS:
	case MX_ERR_IO:
	case MX_ERR_PROTOCOL:
	case MX_ERR_CANCELLED:
		return true;
	case MX_ERR_SERVER:
		return strstr(e->detail, ": HTTP 5") != NULL;
	default:
		return false;
	}
}

int mx_gmail_send_envelope(struct mx_gmail *g, const char *raw, size_t len,
			   const char *const *rcpts, size_t nrcpts,
			   const char *thread, char **id_r, bool *maybe_sent_r,
			   struct mx_error *err)
{
	struct mx_error local = {0};
	struct mx_buf msg = {0};
	struct mx_gmail_ref ref;
	char **hdr = NULL, **env = NULL;
	size_t nhdr = 0, nbcc = 0;
	bool has_bcc;
	int rc;

	if (err == NULL)
		err = &local;
	*maybe_sent_r = false;
	if (id_r)
		*id_r = NULL;
	if (nrcpts == 0)
		return mx_error_set(err, MX_ERR_INVAL,
				    "users.messages.send: no recipients");
	rc = header_rcpts(raw, len, &hdr, &nhdr, &has_bcc, err);
	if (rc)
		return rc;
	env = calloc(nrcpts, sizeof(*env));
	if (env == NULL) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	for (size_t i = 0; i < nrcpts; i++)
		if ((env[i] = mx_addr_normalize(rcpts[i])) == NULL) {
			rc = mx_error_set(err, MX_ERR_INVAL,
					  "users.messages.send: recipient "
					  "is not an address");
			goto out;
		}
	/* Gmail would send to every address the header names: each must be
	 * a recipient of this entry, and the message brings no Bcc field. */
	if (has_bcc) {
		rc = mx_error_set(err, MX_ERR_INVAL,
				  "users.messages.send: the message has a Bcc "
				  "field of its own; not sent");
		goto out;
	}
	for (size_t i = 0; i < nhdr; i++)
		if (!in_list(env, nrcpts, hdr[i])) {
			rc = mx_error_set(err, MX_ERR_INVAL,
					  "users.messages.send: the header "
					  "names %s, who is not a recipient "
					  "of this message; not sent", hdr[i]);
			goto out;
		}
	for (size_t i = 0; i < nrcpts; i++) {
		if (in_list(hdr, nhdr, env[i]) || in_list(env, i, env[i]))
			continue;
		if (mx_buf_puts(&msg, nbcc++ ? ",\r\n " : "Bcc: ") < 0 ||
		    mx_buf_puts(&msg, env[i]) < 0) {
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
			goto out;
		}
	}
	if ((nbcc && mx_buf_puts(&msg, "\r\n") < 0) ||
	    mx_buf_append(&msg, raw, len) < 0) {
		rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
		goto out;
	}
	rc = mx_gmail_message_send(g, msg.data, msg.len, thread, &ref, err);
	if (rc) {
		*maybe_sent_r = may_have_reached(rc, err);
		goto out;
	}
	if (id_r)
		*id_r = mx_strdup(ref.id); /* NULL on ENOMEM: sent all the same */
out:
	for (size_t i = 0; i < nhdr; i++)
		free(hdr[i]);
	free(hdr);
	for (size_t i = 0; env && i < nrcpts; i++)
		free(env[i]);
	free(env);
	mx_buf_free(&msg);
	return rc;
}
