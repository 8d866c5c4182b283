/*
 * libFuzzer target for the IMAP response path as mxsync drives libetpan
 * (src/backends/imap.c): the input is everything the server says, played
 * over the in-memory transport of fake_net.c while the real backend runs
 * what a sync and the daemon do: greeting, CAPABILITY, STARTTLS, login
 * (AUTH=PLAIN, LOGIN or OAUTHBEARER/XOAUTH2), ENABLE QRESYNC, LIST,
 * SELECT with QRESYNC (VANISHED (EARLIER), FETCH ... MODSEQ), UID FETCH of
 * bodies (literals), flags and identity headers, UID SEARCH, UID STORE,
 * APPEND, IDLE with its untagged lines, and DONE.  A command answered NO
 * or BAD goes on to the next one; a broken session stops.
 *
 * The first byte chooses the session:
 *   bit 0     STARTTLS (imap://) instead of implicit TLS
 *   bit 1     an access token instead of a password
 *   bits 4-6  the server's writes (see fake_net.h)
 *
 * Every byte passes the IMAP input guard (src/backends/imap_guard.c) as
 * in tls.c: fake_net.c applies the read filter the backend installs.  So
 * what the guard refuses (nesting deeper than 256 levels, which overflows
 * libetpan's recursive parser; a malformed PERMANENTFLAGS list, on which
 * libetpan 1.9.4 frees a NULL list) is fuzzed too and must end the
 * session cleanly (seed crash-permanentflags-libetpan).
 *
 * MX_FUZZ_TRACE=1 in the environment prints the protocol trace (to write
 * seeds).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/backend.h"
#include "fake_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/*
 * libetpan 1.9.4's parser leaks parts of responses it gives up on (the
 * objects never reach mxsync; fixed upstream after 1.9.4, e.g. libetpan
 * ddf1d98 "Fix section parse cleanup leak").  Leaks of memory allocated
 * inside libetpan are therefore not reported here, which also hides a
 * libetpan result mxsync would forget to free: the sanitizer runs of the
 * unit and integration tests watch those.  mxsync's own allocations are
 * still checked.
 */
const char *__lsan_default_suppressions(void)
{
	return "leak:libetpan.so\n";
}

struct fetch_stats {
	uint64_t bytes;
	size_t n;
};

static int on_msg(const struct mx_fetched *m, void *ctx, struct mx_error *err)
{
	struct fetch_stats *st = ctx;

	(void)err;
	st->n++;
	if (m->keywords != NULL)
		st->bytes += strlen(m->keywords);
	/* Touch every byte: ASan sees a bad length at once. */
	for (size_t i = 0; m->body != NULL && i < m->body_len; i++)
		st->bytes += (unsigned char)m->body[i];
	return MX_OK;
}

/* Goes on after a refusal; stops when the session is gone. */
static bool go_on(int rc)
{
	return rc == MX_OK || rc == MX_ERR_SERVER || rc == MX_ERR_UNSUPPORTED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct mx_uid_range all = {1, UINT32_MAX};
	static const char msg[] = "From: a@example.org\r\nSubject: x\r\n\r\nhi\r\n";
	const struct mx_backend_ops *ops = &mx_backend_imap;
	struct mx_account a = {0};
	struct mx_conn *c = NULL;
	struct mx_remote_folder *fv = NULL;
	struct mx_select_result sel = {0};
	struct mx_error err = {0};
	struct fetch_stats st = {0};
	uint32_t *uids = NULL, uid = 0;
	size_t nf = 0, nu = 0;
	bool changed;
	int opt, rc = MX_OK;

	if (getenv("MX_FUZZ_TRACE") != NULL)
		mx_trace_mask = ~0u;
	if ((opt = mx_fuzz_net_feed(data, size)) < 0)
		return 0;
	a.name = "fuzz";
	a.host = "imap.example.test";
	a.tls = opt & 1 ? MX_TLS_STARTTLS : MX_TLS_IMPLICIT;
	a.port = opt & 1 ? 143 : 993;
	a.user = "fuzz@example.test";
	if (opt & 2)
		a.access_token = "ya29.fuzz-token";
	else
		a.password = "secret";
	a.timeout_s = 5;
	rc = ops->connect(&a, &c, &err);
	if (rc != MX_OK)
		goto out;
	(void)ops->server_caps(c);
	rc = ops->list(c, &fv, &nf, &err);
	if (!go_on(rc))
		goto out;
	for (size_t i = 0; i < nf; i++)
		if (fv[i].name == NULL || fv[i].wire == NULL)
			abort();
	rc = ops->select(c, "INBOX", 1700000001, 100, &sel, &err);
	if (!go_on(rc))
		goto out;
	for (size_t i = 0; i < sel.nvanished; i++)
		if (sel.vanished[i].lo > sel.vanished[i].hi)
			abort();
	rc = ops->fetch(c, &all, 1, MX_FETCH_FULL, 0, on_msg, &st, &err);
	if (!go_on(rc))
		goto out;
	rc = ops->fetch(c, &all, 1, MX_FETCH_FLAGS, 100, on_msg, &st, &err);
	if (!go_on(rc))
		goto out;
	rc = ops->fetch(c, &all, 1, MX_FETCH_IDENTITY, 0, on_msg, &st, &err);
	if (!go_on(rc))
		goto out;
	rc = ops->uids(c, &uids, &nu, &err);
	if (!go_on(rc))
		goto out;
	rc = ops->store_flags(c, 1, MX_FL_SEEN, MX_FL_FLAGGED, &err);
	if (!go_on(rc))
		goto out;
	rc = ops->append(c, "Sent", MX_FL_SEEN, msg, sizeof(msg) - 1, &uid,
			 &err);
	if (!go_on(rc))
		goto out;
	free(uids);
	uids = NULL;
	rc = ops->search_header(c, "Message-ID", "<1@example.org>", &uids, &nu,
				&err);
	if (!go_on(rc))
		goto out;
	rc = ops->idle_start(c, "INBOX", &err);
	if (rc != MX_OK)
		goto out;
	/* As the daemon does: read what arrives until something changed,
	 * then DONE.  With small server writes (bits 4-6), the tagged end of
	 * IDLE stays unread until then. */
	changed = false;
	for (int i = 0; i < 64 && !changed && ops->idle_pending(c); i++)
		if ((rc = ops->idle_check(c, &changed, &err)) != MX_OK)
			goto out;
	rc = ops->idle_done(c, &err);
out:
	if (getenv("MX_FUZZ_TRACE") != NULL)
		fprintf(stderr, "fuzz_imap: %zu folders, uidvalidity %u, "
			"%zu vanished, %zu changes, %zu fetched, %zu uids, "
			"appended uid %u, last: %d %s\n", nf, sel.uidvalidity,
			sel.nvanished, sel.nchanges, st.n, nu, uid, rc,
			err.detail);
	free(uids);
	mx_remote_folders_free(fv, nf);
	mx_select_result_free(&sel);
	ops->disconnect(&c);
	return 0;
}
