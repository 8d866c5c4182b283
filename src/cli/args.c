/* Helpers every subcommand shares: numeric option values and terminal-safe
 * printing of text that came from a server or a message. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "util/util.h"

bool cli_number(const char *cmd, const char *opt, const char *val,
		uint64_t lo, uint64_t hi, uint64_t *v_r)
{
	if (mx_parse_u64(val, lo, hi, v_r) == 0)
		return true;
	fprintf(stderr, "mxsync: %s: %s: '%s' is not a number from %" PRIu64
		" to %" PRIu64 "\n", cmd, opt, cli_safe(val), lo, hi);
	return false;
}

const char *cli_safe(const char *s)
{
	/* Rotating buffers, so that one printf() can take several. */
	static struct mx_buf slot[8];
	static unsigned next;
	struct mx_buf *b = &slot[next++ % MX_ARRAY_SIZE(slot)];

	if (s == NULL)
		return "";
	mx_buf_reset(b);
	if (mx_term_escape(b, s, strlen(s), false) < 0)
		return "?";
	return b->data;
}

void cli_put_text(FILE *f, const char *s, size_t n)
{
	struct mx_buf b = {0};

	if (mx_term_escape(&b, s, n, true) == 0)
		fwrite(b.data, 1, b.len, f);
	mx_buf_free(&b);
}
