/*
 * IMAP lexical guard (imap_guard.h, doc/internals/imap-guard.md).
 *
 * A byte-at-a-time state machine over the server's side of RFC 3501's
 * grammar, reduced to what bounds libetpan: a response is a line that
 * may be continued after literals ("{N}" CRLF, then N bytes); quoted
 * strings hide parentheses and braces; a line starting with "*" or "+"
 * is untagged, any other line is the tagged reply that ends a command.
 * Beside it runs a matcher of the start of status lines, for the two
 * responses libetpan 1.9.4 crashes on (screen_codes()): a malformed
 * PERMANENTFLAGS list and a CAPABILITY without a capability.
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

/*
 * Where in the start of a status response we are:
 *   SP* tag SP+ ("OK" / "NO" / "BAD" / "BYE" / "PREAUTH") SP+ "[" SP*
 *   "PERMANENTFLAGS" SP+ "(" SP* first-flag
 * or SP* "+" SP* "[" ... for a continuation request, and where
 *   SP* "*" SP+ "CAPABILITY" or "[" SP* "CAPABILITY" ends.  SP is a space or a tab,
 * as libetpan's lenient parser (UNSTRICT_SYNTAX) skips them there.
 */
enum {
	CODE_TAG,       /* the tag, "*" or "+"; the line start is here */
	CODE_SP1,       /* after the tag */
	CODE_WORD,      /* the status word */
	CODE_SP2,       /* after the status word, or after "+" */
	CODE_KEYWORD,   /* after "[" */
	CODE_SP3,       /* after "PERMANENTFLAGS" */
	CODE_FIRST,     /* after "(" */
	CODE_BACKSLASH, /* after "(\" */
	CODE_CAP_SP,    /* after "CAPABILITY" */
	CODE_DONE,      /* not such a line, or the list's start was fine */
};

static const char permanentflags[] = "PERMANENTFLAGS";
static const char capability[] = "CAPABILITY";
static const char badcharset[] = "BADCHARSET";

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

/*
 * An ATOM-CHAR as libetpan 1.9.4 reads one: any byte but the controls
 * 0x00-0x1f and the atom-specials (8-bit bytes and DEL pass, as it tests
 * a signed char).
 */
static bool libetpan_atom_char(unsigned char c)
{
	return c > 0x1f && strchr("(){ %*\"\\]", c) == NULL;
}

static bool is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* Names byte C for an error message: '%' or byte 0x0d. */
static const char *byte_name(unsigned char c, char buf[16])
{
	if (c > 0x20 && c < 0x7f)
		snprintf(buf, 16, "'%c'", c);
	else
		snprintf(buf, 16, "byte 0x%02x", c);
	return buf;
}

/*
 * libetpan 1.9.4 parses the response code "[PERMANENTFLAGS (" flag-perm
 * *(SP flag-perm) ")]" of any status response (tagged, untagged,
 * greeting, continuation) with a list parser that leaves the list NULL
 * when the first flag does not parse; if no ")" follows either, it frees
 * that NULL list and crashes (fixed upstream after 1.9.4, libetpan
 * 266d59f).  So after "(" and blanks the first byte must be ")" (an empty
 * list), an ASTRING-CHAR (a keyword; libetpan also takes "]"), or "\"
 * followed by "*" or an ATOM-CHAR (\* or a system flag).  Anything else
 * is refused, including a quoted or literal first flag: RFC 3501 flags
 * are atoms, and whether libetpan gets through a quoted one depends on
 * its quoting rules.  Real servers send e.g. "(\Answered \Seen $Forwarded
 * \*)" or "()".  Checked against libetpan 1.9.4 with one line per case
 * (tests/unit/test_imap_guard.c lists them).
 */
static int screen_codes(struct mx_imap_guard *g, unsigned char c,
				 struct mx_error *err)
{
	static const char *const words[] = {"OK", "NO", "BAD", "BYE",
					    "PREAUTH"};
	char name[16];

	switch (g->code_state) {
	case CODE_TAG:
		if (!is_blank(c))
			g->code_star = g->code_pos == 0 && c == '*';
		if (g->code_pos == 0 && c == '+') {
			g->code_state = CODE_SP2;
		} else if (is_blank(c)) {
			/* libetpan skips blanks before the tag, too */
			if (g->code_pos > 0)
				g->code_state = CODE_SP1;
		} else if (c > 0x20) {
			g->code_pos++;
		} else {
			g->code_state = CODE_DONE;
		}
		return MX_OK;
	case CODE_SP1:
		if (is_blank(c))
			return MX_OK;
		g->code_state = CODE_WORD;
		g->code_pos = 0;
		/* fall through */
	case CODE_WORD:
		if (g->code_star && g->code_pos == sizeof(capability) - 1 &&
		    strncasecmp(g->code_word, capability, g->code_pos) == 0 &&
		    !libetpan_atom_char(c)) {
			/* "* CAPABILITY" */
			g->code_state = CODE_CAP_SP;
			g->code_pos = 0;
			return screen_codes(g, c, err);
		}
		if (is_blank(c)) {
			g->code_state = CODE_DONE;
			for (size_t i = 0; i < sizeof(words) / sizeof(*words);
			     i++)
				if (strlen(words[i]) == g->code_pos &&
				    strncasecmp(g->code_word, words[i],
						g->code_pos) == 0)
					g->code_state = CODE_SP2;
		} else if (g->code_pos < sizeof(g->code_word)) {
			g->code_word[g->code_pos++] = (char)c;
		} else {
			g->code_state = CODE_DONE;
		}
		return MX_OK;
	case CODE_SP2:
		if (c == '[') {
			g->code_state = CODE_KEYWORD;
			g->code_pos = 0;
		} else if (!is_blank(c)) {
			g->code_state = CODE_DONE;
		}
		return MX_OK;
	case CODE_KEYWORD:
		if (is_blank(c) && g->code_pos == 0)
			return MX_OK;
		if (g->code_pos == 0)
			g->code_kw = (c & 0xdf) == 'C' ? capability
				     : (c & 0xdf) == 'B' ? badcharset
							 : permanentflags;
		/* & 0xdf: a lower-case letter as its upper case */
		if ((c & 0xdf) != (unsigned char)g->code_kw[g->code_pos]) {
			g->code_state = CODE_DONE;
		} else if (g->code_kw[++g->code_pos] == '\0') {
			g->code_state = g->code_kw == capability ? CODE_CAP_SP
								 : CODE_SP3;
			g->code_pos = 0;
		}
		return MX_OK;
	case CODE_SP3:
		/* code_pos is 1 after the first blank */
		if (is_blank(c)) {
			g->code_pos = 1;
			return MX_OK;
		}
		g->code_state = CODE_DONE;
		if (c != '(' || g->code_pos != 1)
			return MX_OK;
		/* libetpan parses the greeting without a parser context and
		 * the flags of PERMANENTFLAGS and the charsets of BADCHARSET
		 * with a string parser that dereferences it (SIGSEGV). */
		if (!g->greeted)
			return guard_fail(g, err, "server sent a %s list in "
					  "its greeting", g->code_kw);
		if (g->code_kw == permanentflags)
			g->code_state = CODE_FIRST;
		return MX_OK;
	case CODE_FIRST:
		if (is_blank(c))
			return MX_OK;
		if (c == '\\') {
			g->code_state = CODE_BACKSLASH;
			return MX_OK;
		}
		if (c == ')' || c == ']' || libetpan_atom_char(c)) {
			g->code_state = CODE_DONE;
			return MX_OK;
		}
		return guard_fail(g, err,
				  "server sent a PERMANENTFLAGS list whose "
				  "first flag is malformed (it starts with %s)",
				  byte_name(c, name));
	case CODE_BACKSLASH:
		if (c == '*' || libetpan_atom_char(c)) {
			g->code_state = CODE_DONE;
			return MX_OK;
		}
		return guard_fail(g, err,
				  "server sent a PERMANENTFLAGS list whose "
				  "first flag is malformed (it starts with "
				  "'\\' and %s)", byte_name(c, name));
	case CODE_CAP_SP:
		/* libetpan takes "CAPABILITY" as a prefix, skips blanks,
		 * and when no capability follows, ends the response at the
		 * line end (untagged) or "]" (response code) all the same */
		if (is_blank(c))
			return MX_OK;
		if (c != '\r' && c != '\n' && c != ']') {
			g->code_state = CODE_DONE;
			return MX_OK;
		}
		break;
	default:
		return MX_OK;
	}
	/* "* CAPABILITY" or "[CAPABILITY]" without a capability: libetpan
	 * 1.9.4 keeps it with a NULL list, which mailimap_capability() then
	 * copies (SIGSEGV). */
	return guard_fail(g, err,
			  "server sent a CAPABILITY response without a "
			  "capability (%s)", byte_name(c, name));
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
	g->greeted = true;
	if (g->tagged) {
		g->text = 0;
		g->responses = 0;
	}
	g->line = 0;
	g->head_len = 0;
	g->depth = 0;
	g->in_quote = g->quote_escape = false;
	g->at_line_start = true;
	g->code_state = CODE_TAG;
	g->code_pos = 0;
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
		if (g->code_state != CODE_DONE &&
		    (rc = screen_codes(g, c, err)) != MX_OK)
			return rc;
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
