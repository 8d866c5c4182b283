/*
 * libFuzzer target for the POP3 client (src/backends/pop3.c): the input
 * is everything the server says, played over the in-memory transport of
 * fake_net.c while the real client logs in, lists (UIDL + LIST),
 * retrieves, deletes and quits.  The first byte chooses the session:
 *   bits 0-1  mechanism: 0 the best offered for a password, 1 USER,
 *             2 PLAIN, 3 an access token (OAUTHBEARER or XOAUTH2)
 *   bit 2     STLS (pop3://) instead of implicit TLS
 *   bits 4-6  the server's writes (see fake_net.h)
 * so seeds are real server transcripts behind one option byte.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backends/pop3.h"
#include "fake_net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
	uint64_t bytes;
};

static int sink_cb(const char *buf, size_t len, void *ctx,
		   struct mx_error *err)
{
	struct sink *s = ctx;

	(void)err;
	/* Touch every byte: ASan sees a bad length at once. */
	for (size_t i = 0; i < len; i++)
		s->bytes += (unsigned char)buf[i];
	return MX_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const mechs[] = {NULL, "USER", "PLAIN", NULL};
	struct mx_pop3_cfg cfg = {0};
	struct mx_pop3 *p = NULL;
	struct mx_pop3_msg *v = NULL;
	struct mx_error err = {0};
	struct sink sink = {0};
	size_t n = 0;
	int opt;

	if ((opt = mx_fuzz_net_feed(data, size)) < 0)
		return 0;
	cfg.host = "pop.example.test";
	cfg.port = 995;
	cfg.tls = opt & 4 ? MX_TLS_STARTTLS : MX_TLS_IMPLICIT;
	cfg.timeout_s = 5;
	cfg.user = "fuzz@example.test";
	if ((opt & 3) == 3)
		cfg.access_token = "ya29.fuzz-token";
	else
		cfg.password = "secret";
	cfg.mech = mechs[opt & 3];
	if (mx_pop3_connect(&cfg, &p, &err) != MX_OK)
		goto out;
	(void)mx_pop3_mech(p);
	(void)mx_pop3_caps(p);
	if (mx_pop3_list(p, &v, &n, &err) != MX_OK)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (strlen(v[i].uidl) > MX_POP3_UIDL_MAX || v[i].num == 0)
			abort();
		if (i < 4 && mx_pop3_retr(p, v[i].num, sink_cb, &sink,
					  &err) != MX_OK)
			goto out;
	}
	if (n > 0 && mx_pop3_dele(p, v[0].num, &err) != MX_OK)
		goto out;
	(void)mx_pop3_quit(p, &err);
out:
	free(v);
	mx_pop3_close(&p);
	return 0;
}
