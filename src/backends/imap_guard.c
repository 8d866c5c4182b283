/*
 * IMAP lexical guard (imap_guard.h, doc/internals/imap-guard.md).
 *
 * A byte-at-a-time state machine over the server's side of RFC 3501's
 * grammar, reduced to what bounds libetpan: a response is a line that
 * may be continued after literals ("{N}" CRLF, then N bytes); quoted
 * strings hide parentheses and braces; a line starting with "*" or "+"
 * is untagged, any other line is the tagged reply that ends a command.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "backends/imap_guard.h"

enum {
	LIT_NONE,   /* not in a literal announcement */
	LIT_OPEN,   /* after "{" */
	LIT_DIGITS, /* after "{1" */
	LIT_PLUS,   /* after "{1+" */
	LIT_CLOSE,  /* after "{1}" */
	LIT_CR,     /* after "{1}\r" */
};

void mx_imap_guard_init(struct mx_imap_guard *g)
{
	memset(g, 0, sizeof(*g));
	g->at_line_start = true;
}

void mx_imap_guard_stream_literals(struct mx_imap_guard *g, bool on)
{
	g->stream_literals = on;
}

static int guard_fail(struct mx_imap_guard *g, struct mx_error *err,
		      const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int guard_fail(struct mx_imap_guard *g, struct mx_error *err,
		      const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	g->failed = true;
	mx_error_set(&g->fail, MX_ERR_PROTOCOL, "%s", detail);
	return mx_error_set(err, MX_ERR_PROTOCOL, "%s", detail);
}

/* Counts N bytes of response text against the bounds. */
static int count_text(struct mx_imap_guard *g, uint64_t n, bool literal,
		      struct mx_error *err)
{
	g->text += n;
	if (!literal)
		g->line += n;
	if (g->line > MX_IMAP_GUARD_MAX_LINE)
		return guard_fail(g, err,
				  "server response line longer than %" PRIu64
				  " MiB", MX_IMAP_GUARD_MAX_LINE >> 20);
	if (g->text <= MX_IMAP_GUARD_MAX_TEXT)
		return MX_OK;
	return guard_fail(g, err,
			  "server sent more than %" PRIu64 " MiB of responses "
			  "without completing the command",
			  MX_IMAP_GUARD_MAX_TEXT >> 20);
}

/* True if the response started "* <number> FETCH". */
static bool is_fetch(const struct mx_imap_guard *g)
{
	size_t i = 2;

	if (g->head_len < 2 || memcmp(g->head, "* ", 2) != 0)
		return false;
	while (i < g->head_len && g->head[i] >= '0' && g->head[i] <= '9')
		i++;
	return i > 2 && g->head_len - i >= 6 &&
	       strncasecmp(g->head + i, " FETCH", 6) == 0;
}

/* A line feed outside a quoted string and outside a literal. */
static int end_of_line(struct mx_imap_guard *g, struct mx_error *err)
{
	bool announced = g->lit_state == LIT_CLOSE || g->lit_state == LIT_CR;

	g->lit_state = LIT_NONE;
	if (announced) {
		/* "{N}" CRLF: N bytes follow, then the same response goes on. */
		if (g->lit_overflow)
			return guard_fail(g, err,
					  "server announced a literal of more "
					  "than %" PRIu64 " bytes (limit %"
					  PRIu64 " MiB)", UINT64_MAX,
					  MX_IMAP_GUARD_MAX_LITERAL >> 20);
		if (g->lit_value > MX_IMAP_GUARD_MAX_LITERAL)
			return guard_fail(g, err,
					  "server announced a literal of %"
					  PRIu64 " bytes (limit %" PRIu64
					  " MiB)", g->lit_value,
					  MX_IMAP_GUARD_MAX_LITERAL >> 20);
		g->literal_left = g->lit_value;
		return MX_OK;
	}
	/* The response is complete; a tagged one completes the command. */
	if (g->untagged && !(g->stream_literals && is_fetch(g)) &&
	    ++g->responses > MX_IMAP_GUARD_MAX_RESPONSES)
		return guard_fail(g, err,
				  "server sent more than %d untagged responses "
				  "without completing the command",
				  MX_IMAP_GUARD_MAX_RESPONSES);
	if (g->tagged) {
		g->text = 0;
		g->responses = 0;
	}
	g->line = 0;
	g->head_len = 0;
	g->depth = 0;
	g->in_quote = g->quote_escape = false;
	g->at_line_start = true;
	return MX_OK;
}

/* Tracks "{N}" / "{N+}" announcements; C is outside any quoted string. */
static void literal_announcement(struct mx_imap_guard *g, unsigned char c)
{
	switch (g->lit_state) {
	case LIT_OPEN:
	case LIT_DIGITS:
		if (c >= '0' && c <= '9') {
			unsigned d = c - '0';

			if (g->lit_value > (UINT64_MAX - d) / 10)
				g->lit_overflow = true;
			else
				g->lit_value = g->lit_value * 10 + d;
			g->lit_state = LIT_DIGITS;
			return;
		}
		if (g->lit_state == LIT_DIGITS && c == '+') {
			g->lit_state = LIT_PLUS;
			return;
		}
		if (g->lit_state == LIT_DIGITS && c == '}') {
			g->lit_state = LIT_CLOSE;
			return;
		}
		break;
	case LIT_PLUS:
		if (c == '}') {
			g->lit_state = LIT_CLOSE;
			return;
		}
		break;
	case LIT_CLOSE:
		if (c == '\r') {
			g->lit_state = LIT_CR;
			return;
		}
		break;
	default:
		break;
	}
	g->lit_state = LIT_NONE;
	if (c == '{') {
		g->lit_state = LIT_OPEN;
		g->lit_value = 0;
		g->lit_overflow = false;
	}
}

int mx_imap_guard_feed(struct mx_imap_guard *g, const void *buf, size_t len,
		       struct mx_error *err)
{
	const unsigned char *p = buf, *end = p + len;
	int rc;

	if (g->failed)
		return mx_error_set(err, g->fail.code, "%s", g->fail.detail);
	while (p < end) {
		unsigned char c;

		if (g->literal_left > 0) {
			uint64_t n = (uint64_t)(end - p);

			if (n > g->literal_left)
				n = g->literal_left;
			g->literal_left -= n;
			p += n;
			if (!g->stream_literals &&
			    (rc = count_text(g, n, true, err)) != MX_OK)
				return rc;
			continue;
		}
		c = *p++;
		if ((rc = count_text(g, 1, false, err)) != MX_OK)
			return rc;
		if (g->at_line_start) {
			g->at_line_start = false;
			g->untagged = c == '*' || c == '+';
			g->tagged = !g->untagged;
		}
		if (g->head_len < sizeof(g->head))
			g->head[g->head_len++] = (char)c;
		if (c == '\n') {
			/* A quoted string cannot hold a line feed: the line
			 * ends here whatever the quoting says. */
			g->in_quote = false;
			if ((rc = end_of_line(g, err)) != MX_OK)
				return rc;
			continue;
		}
		if (g->in_quote) {
			if (g->quote_escape)
				g->quote_escape = false;
			else if (c == '\\')
				g->quote_escape = true;
			else if (c == '"')
				g->in_quote = false;
			continue;
		}
		literal_announcement(g, c);
		if (c == '"') {
			g->in_quote = true;
		} else if (c == '(') {
			if (++g->depth > MX_IMAP_GUARD_MAX_DEPTH)
				return guard_fail(g, err,
						  "server response nested deeper "
						  "than %d levels",
						  MX_IMAP_GUARD_MAX_DEPTH);
		} else if (c == ')') {
			if (g->depth > 0)
				g->depth--;
		}
	}
	return MX_OK;
}
