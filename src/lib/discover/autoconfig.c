/*
 * Autoconfig documents (Thunderbird's config-v1.1.xml): a strict, small
 * XML parser written for this one format, and the mapping of its
 * incomingServer / outgoingServer entries to struct mx_disc_server.
 *
 * The document comes from the network, so the parser accepts less than
 * XML allows: no DOCTYPE and no entity declarations (nothing to expand,
 * no external entities), only the five predefined entities and numeric
 * character references, ASCII element names, bounded depth, element
 * count, attribute count and text size.  Anything else rejects the whole
 * document with the line number; a bad server entry rejects only itself.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "discover/discover.h"
#include "mime/mime.h"
#include "account/presets.h"

#define XML_MAX_DEPTH 16
#define XML_MAX_ELEMENTS 4096
#define XML_MAX_ATTRS 32
#define XML_MAX_NAME 64
#define XML_MAX_VALUE 1024 /* attribute values and captured texts */

/* ---- the semantic side: one server entry at a time ---- */

enum ac_field { F_NONE = -1, F_HOST, F_PORT, F_SOCKET, F_USER, F_AUTH, F_N };

static const char *const field_names[F_N] = {
	"hostname", "port", "socketType", "username", "authentication",
};

struct ac_entry {
	bool active;
	bool outgoing;
	int index;          /* 1-based, per kind */
	char type[33];
	bool type_too_long;
	bool seen[F_N];
	struct mx_buf val[F_N];
	bool too_long[F_N];
	unsigned auth;
	struct mx_buf auth_unknown; /* ", "-separated values we ignore */
};

struct ac {
	const char *email, *local, *domain; /* local/domain not NUL-ended */
	size_t local_len, domain_len;
	const char *source;
	int prio;
	int n_in, n_out;
	struct ac_entry e;
	enum ac_field cur;       /* field whose text is being captured */
	struct mx_discovery *out;
	struct mx_buf *log;
	bool nomem;
};

static void ac_log(struct ac *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void ac_log(struct ac *a, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (a->log && mx_buf_printf(a->log, "%s: %s\n", a->source, line) < 0)
		a->nomem = true;
}

static void entry_reset(struct ac_entry *e)
{
	for (int i = 0; i < F_N; i++)
		mx_buf_free(&e->val[i]);
	mx_buf_free(&e->auth_unknown);
	memset(e, 0, sizeof(*e));
}

/* Trims ASCII white space around S in place; returns S. */
static char *trim(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	while (*s && isspace((unsigned char)*s))
		s++;
	return s;
}

/*
 * Substitutes %EMAILADDRESS%, %EMAILLOCALPART% and %EMAILDOMAIN% in IN.
 * *OUT_R is malloc()ed.  Returns 0, 1 if another %PLACEHOLDER% is left
 * (*OUT_R is then NULL), -1 on ENOMEM.
 */
static int subst(const struct ac *a, const char *in, char **out_r)
{
	struct mx_buf b = {0};
	const char *p = in;

	*out_r = NULL;
	while (*p) {
		const char *pct = strchr(p, '%'), *close;
		size_t n;
		int r = 0;

		if (pct == NULL) {
			r = mx_buf_puts(&b, p);
			if (r < 0)
				goto nomem;
			break;
		}
		if (mx_buf_append(&b, p, (size_t)(pct - p)) < 0)
			goto nomem;
		close = strchr(pct + 1, '%');
		n = close ? (size_t)(close - pct - 1) : 0;
		if (close && n == 12 && strncmp(pct + 1, "EMAILADDRESS", n) == 0)
			r = mx_buf_puts(&b, a->email);
		else if (close && n == 14 &&
			 strncmp(pct + 1, "EMAILLOCALPART", n) == 0)
			r = mx_buf_append(&b, a->local, a->local_len);
		else if (close && n == 11 &&
			 strncmp(pct + 1, "EMAILDOMAIN", n) == 0)
			r = mx_buf_append(&b, a->domain, a->domain_len);
		else {
			mx_buf_free(&b);
			return 1;
		}
		if (r < 0)
			goto nomem;
		p = close + 1;
	}
	if (b.data == NULL && mx_buf_puts(&b, "") < 0)
		goto nomem;
	*out_r = mx_buf_steal(&b);
	return 0;
nomem:
	mx_buf_free(&b);
	return -1;
}

/* Maps one <authentication> value; 0 if we cannot use it. */
static unsigned auth_value(const char *v)
{
	/* password-encrypted means CRAM-MD5 and the like; the credential
	 * is still a password, and over TLS servers accept it for LOGIN /
	 * AUTH PLAIN as well in practice. */
	if (strcmp(v, "password-cleartext") == 0 ||
	    strcmp(v, "password-encrypted") == 0 ||
	    strcmp(v, "plain") == 0 || strcmp(v, "secure") == 0)
		return MX_AUTH_PLAIN;
	if (strcmp(v, "OAuth2") == 0)
		return MX_AUTH_XOAUTH2 | MX_AUTH_OAUTHBEARER;
	return 0;
}

/* Turns the finished entry into a server, or logs why not. */
static void entry_finish(struct ac *a)
{
	struct ac_entry *e = &a->e;
	const char *kind = e->outgoing ? "outgoingServer" : "incomingServer";
	struct mx_disc_server s = {0};
	char *host = NULL, *user = NULL, *port_s, *sock, *end;
	unsigned long port;
	int r;

	for (int i = 0; i < F_N; i++) {
		if (e->too_long[i]) {
			ac_log(a, "%s #%d: <%s> longer than %d bytes, entry "
				  "rejected", kind, e->index, field_names[i],
			       XML_MAX_VALUE);
			return;
		}
	}
	if (e->type_too_long || (!e->outgoing && strcmp(e->type, "imap") &&
				 strcmp(e->type, "pop3")) ||
	    (e->outgoing && strcmp(e->type, "smtp"))) {
		ac_log(a, "%s #%d: type \"%s\" not supported, entry skipped",
		       kind, e->index, e->type_too_long ? "(too long)" : e->type);
		return;
	}
	for (int i = F_HOST; i <= F_SOCKET; i++) {
		if (!e->seen[i] || trim(e->val[i].data)[0] == '\0') {
			ac_log(a, "%s #%d (%s): <%s> missing, entry rejected",
			       kind, e->index, e->type, field_names[i]);
			return;
		}
	}
	r = subst(a, trim(e->val[F_HOST].data), &host);
	if (r < 0)
		goto nomem;
	if (r > 0 || !mx_disc_valid_host(host)) {
		ac_log(a, "%s #%d (%s): hostname \"%.100s\" is not a valid "
			  "host name, entry rejected", kind, e->index, e->type,
		       trim(e->val[F_HOST].data));
		goto out;
	}
	port_s = trim(e->val[F_PORT].data);
	port = 0;
	if (strlen(port_s) <= 5 && port_s[strspn(port_s, "0123456789")] == '\0')
		port = strtoul(port_s, &end, 10);
	if (port < 1 || port > 65535) {
		ac_log(a, "%s #%d (%s): port \"%.40s\" is not a number "
			  "1-65535, entry rejected", kind, e->index, e->type,
		       port_s);
		goto out;
	}
	sock = trim(e->val[F_SOCKET].data);
	if (strcasecmp(sock, "SSL") == 0)
		s.tls = MX_TLS_IMPLICIT;
	else if (strcasecmp(sock, "STARTTLS") == 0)
		s.tls = MX_TLS_STARTTLS;
	else if (strcasecmp(sock, "plain") == 0) {
		ac_log(a, "%s #%d (%s %s:%lu): plain text only, dropped",
		       kind, e->index, e->type, host, port);
		goto out;
	} else {
		ac_log(a, "%s #%d (%s): socketType \"%.40s\" is not SSL, "
			  "STARTTLS or plain, entry rejected", kind, e->index,
		       e->type, sock);
		goto out;
	}
	if (e->seen[F_AUTH] && e->auth == 0) {
		ac_log(a, "%s #%d (%s %s:%lu): no supported authentication "
			  "(%s), entry rejected", kind, e->index, e->type,
		       host, port, e->auth_unknown.data ? e->auth_unknown.data
							: "empty");
		goto out;
	}
	if (e->seen[F_USER]) {
		const char *u = trim(e->val[F_USER].data);

		r = subst(a, u, &user);
		if (r < 0)
			goto nomem;
		if (r == 0 && (user[0] == '\0' || !mx_utf8_valid_str(user))) {
			free(user);
			user = NULL;
			r = 1;
		}
		if (r > 0)
			ac_log(a, "%s #%d (%s): username \"%.80s\" not usable, "
				  "left unknown", kind, e->index, e->type, u);
	}
	s.proto = e->type;
	s.host = host;
	s.port = (uint16_t)port;
	s.user = user;
	/* Thunderbird's default when a document names no method. */
	s.auth = e->seen[F_AUTH] ? e->auth : MX_AUTH_PLAIN;
	s.source = (char *)(uintptr_t)a->source;
	s.priority = a->prio++;
	if (mx_discovery_add(a->out, &s) < 0)
		goto nomem;
	goto out;
nomem:
	a->nomem = true;
out:
	free(host);
	free(user);
}

/* Element NAME opened at DEPTH (root = 1) with its "type" attribute. */
static void ac_start(struct ac *a, int depth, const char *name,
		     const char *type, bool type_too_long)
{
	a->cur = F_NONE;
	if (depth == 3 && (strcmp(name, "incomingServer") == 0 ||
			   strcmp(name, "outgoingServer") == 0)) {
		entry_reset(&a->e);
		a->e.active = true;
		a->e.outgoing = name[0] == 'o';
		a->e.index = a->e.outgoing ? ++a->n_out : ++a->n_in;
		snprintf(a->e.type, sizeof(a->e.type), "%.32s",
			 type ? type : "");
		a->e.type_too_long = type_too_long;
		return;
	}
	if (depth == 4 && a->e.active) {
		for (int i = 0; i < F_N; i++) {
			if (strcmp(name, field_names[i]) != 0)
				continue;
			/* The first of a field counts, except that every
			 * <authentication> adds a method. */
			if (a->e.seen[i] && i != F_AUTH)
				return;
			a->e.seen[i] = true;
			mx_buf_reset(&a->e.val[i]);
			if (mx_buf_puts(&a->e.val[i], "") < 0)
				a->nomem = true;
			a->cur = (enum ac_field)i;
			return;
		}
	}
}

static void ac_text(struct ac *a, int depth, const char *s, size_t n)
{
	struct mx_buf *b;

	if (a->cur == F_NONE || depth != 4)
		return;
	b = &a->e.val[a->cur];
	if (b->len + n > XML_MAX_VALUE) {
		a->e.too_long[a->cur] = true;
		return;
	}
	if (mx_buf_append(b, s, n) < 0)
		a->nomem = true;
}

static void ac_end(struct ac *a, int depth)
{
	if (depth == 4 && a->cur == F_AUTH) {
		char *v = trim(a->e.val[F_AUTH].data);
		unsigned m = auth_value(v);

		if (m == 0 && v[0] && !a->e.too_long[F_AUTH] &&
		    mx_buf_printf(&a->e.auth_unknown, "%s%.40s",
				  a->e.auth_unknown.len ? ", " : "", v) < 0)
			a->nomem = true;
		a->e.auth |= m;
	}
	if (depth == 4)
		a->cur = F_NONE;
	if (depth == 3 && a->e.active) {
		entry_finish(a);
		entry_reset(&a->e);
	}
}

/* ---- the XML side ---- */

struct xml {
	const char *start, *p, *end;
	int depth;
	unsigned elements;
	const char *names[XML_MAX_DEPTH];
	size_t name_lens[XML_MAX_DEPTH];
	bool root_done;
	char errbuf[160];
	struct mx_buf tmp;
	struct ac *ac;
};

static int xml_fail(struct xml *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int xml_fail(struct xml *x, const char *fmt, ...)
{
	unsigned line = 1;
	char msg[128];
	va_list ap;

	for (const char *q = x->start; q < x->p && q < x->end; q++)
		line += *q == '\n';
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(x->errbuf, sizeof(x->errbuf), "line %u: %s", line, msg);
	return -1;
}

static bool has(const struct xml *x, const char *lit)
{
	size_t n = strlen(lit);

	return (size_t)(x->end - x->p) >= n && memcmp(x->p, lit, n) == 0;
}

/* Position of LIT at or after P, or NULL. */
static const char *find(const struct xml *x, const char *p, const char *lit)
{
	size_t n = strlen(lit);

	for (; (size_t)(x->end - p) >= n; p++)
		if (memcmp(p, lit, n) == 0)
			return p;
	return NULL;
}

static bool is_name_start(int c)
{
	return isalpha(c) || c == '_' || c == ':';
}

static bool is_name_char(int c)
{
	return isalnum(c) || c == '_' || c == ':' || c == '.' || c == '-';
}

static void skip_ws(struct xml *x)
{
	while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' ||
				 *x->p == '\n' || *x->p == '\r'))
		x->p++;
}

static int read_name(struct xml *x, const char **name_r, size_t *len_r)
{
	const char *s = x->p;

	if (x->p >= x->end)
		return xml_fail(x, "truncated document");
	if (!is_name_start((unsigned char)*x->p))
		return xml_fail(x, "bad name character 0x%02x",
				(unsigned char)*x->p);
	while (x->p < x->end && is_name_char((unsigned char)*x->p))
		x->p++;
	if ((size_t)(x->p - s) > XML_MAX_NAME)
		return xml_fail(x, "name longer than %d bytes", XML_MAX_NAME);
	*name_r = s;
	*len_r = (size_t)(x->p - s);
	return 0;
}

/* Decodes the reference at x->p ('&') into B. */
static int read_ref(struct xml *x, struct mx_buf *b)
{
	static const struct { const char *name; char c; } predef[] = {
		{ "lt", '<' }, { "gt", '>' }, { "amp", '&' },
		{ "quot", '"' }, { "apos", '\'' },
	};
	const char *s = x->p + 1, *semi;
	size_t n;

	for (semi = s; semi < x->end && semi - s <= 10 && *semi != ';'; semi++)
		;
	if (semi >= x->end)
		return xml_fail(x, "truncated document (in a reference)");
	if (*semi != ';')
		return xml_fail(x, "bad reference (no ';')");
	n = (size_t)(semi - s);
	x->p = semi + 1;
	if (n >= 2 && s[0] == '#') {
		bool hex = s[1] == 'x';
		const char *d = s + 1 + hex, *q;
		unsigned long c = 0;

		if (d == semi)
			return xml_fail(x, "empty character reference");
		for (q = d; q < semi; q++) {
			int v;

			if (isdigit((unsigned char)*q))
				v = *q - '0';
			else if (hex && isxdigit((unsigned char)*q))
				v = tolower((unsigned char)*q) - 'a' + 10;
			else
				return xml_fail(x, "bad character reference");
			c = c * (hex ? 16 : 10) + (unsigned long)v;
			if (c > 0x10ffff)
				return xml_fail(x, "character reference out "
						   "of range");
		}
		/* XML 1.0 Char: tab, LF, CR, and no C0 control, surrogate
		 * or U+FFFE/FFFF. */
		if ((c < 0x20 && c != 0x9 && c != 0xa && c != 0xd) ||
		    (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff)
			return xml_fail(x, "character reference to a "
					   "forbidden character");
		if (mx_utf8_put(b, (uint32_t)c) < 0)
			return xml_fail(x, "out of memory");
		return 0;
	}
	for (size_t i = 0; i < MX_ARRAY_SIZE(predef); i++) {
		if (strlen(predef[i].name) == n &&
		    memcmp(predef[i].name, s, n) == 0) {
			if (mx_buf_append(b, &predef[i].c, 1) < 0)
				return xml_fail(x, "out of memory");
			return 0;
		}
	}
	return xml_fail(x, "unknown entity &%.*s; (only the predefined "
			   "ones are allowed)", (int)n, s);
}

/* Character data up to the next '<' (or the end). */
static int read_text(struct xml *x)
{
	mx_buf_reset(&x->tmp);
	while (x->p < x->end && *x->p != '<') {
		const char *s = x->p;

		if (*x->p == '&') {
			if (read_ref(x, &x->tmp) < 0)
				return -1;
			continue;
		}
		while (x->p < x->end && *x->p != '<' && *x->p != '&')
			x->p++;
		if (mx_buf_append(&x->tmp, s, (size_t)(x->p - s)) < 0)
			return xml_fail(x, "out of memory");
		if (x->tmp.len > MX_AUTOCONFIG_MAX)
			return xml_fail(x, "text too long");
	}
	if (x->depth == 0) {
		for (size_t i = 0; i < x->tmp.len; i++)
			if (!isspace((unsigned char)x->tmp.data[i]))
				return xml_fail(x, "text outside the root "
						   "element");
		return 0;
	}
	ac_text(x->ac, x->depth, x->tmp.data ? x->tmp.data : "",
		x->tmp.len);
	return 0;
}

/* <name attr="v" ...> or <name .../> at x->p ('<'). */
static int read_start_tag(struct xml *x)
{
	const char *name;
	size_t nlen;
	char ename[XML_MAX_NAME + 1];
	char type[XML_MAX_VALUE + 1];
	bool has_type = false, empty = false, type_long = false;
	int nattrs = 0;

	x->p++;
	if (read_name(x, &name, &nlen) < 0)
		return -1;
	if (x->root_done)
		return xml_fail(x, "content after the root element");
	if (x->depth == 0 && (nlen != 12 || memcmp(name, "clientConfig", 12)))
		return xml_fail(x, "root element is <%.*s>, not <clientConfig>",
				(int)nlen, name);
	if (x->depth >= XML_MAX_DEPTH)
		return xml_fail(x, "elements nested deeper than %d",
				XML_MAX_DEPTH);
	if (++x->elements > XML_MAX_ELEMENTS)
		return xml_fail(x, "more than %d elements", XML_MAX_ELEMENTS);
	for (;;) {
		const char *an, *vs;
		size_t alen;
		char q;

		const char *before = x->p;

		skip_ws(x);
		if (x->p >= x->end)
			return xml_fail(x, "truncated document (in <%.*s>)",
					(int)nlen, name);
		if (*x->p == '>') {
			x->p++;
			break;
		}
		if (*x->p == '/') {
			if (x->p + 1 >= x->end)
				return xml_fail(x, "truncated document");
			if (x->p[1] != '>')
				return xml_fail(x, "'/' not followed by '>'");
			x->p += 2;
			empty = true;
			break;
		}
		if (x->p == before)
			return xml_fail(x, "no space before an attribute");
		if (++nattrs > XML_MAX_ATTRS)
			return xml_fail(x, "more than %d attributes",
					XML_MAX_ATTRS);
		if (read_name(x, &an, &alen) < 0)
			return -1;
		skip_ws(x);
		if (x->p >= x->end)
			return xml_fail(x, "truncated document");
		if (*x->p != '=')
			return xml_fail(x, "attribute without a value");
		x->p++;
		skip_ws(x);
		if (x->p >= x->end)
			return xml_fail(x, "truncated document");
		q = *x->p;
		if (q != '"' && q != '\'')
			return xml_fail(x, "unquoted attribute value");
		x->p++;
		mx_buf_reset(&x->tmp);
		for (;;) {
			if (x->p >= x->end)
				return xml_fail(x, "truncated document (in an "
						   "attribute value)");
			if (*x->p == q)
				break;
			if (*x->p == '<')
				return xml_fail(x, "'<' in an attribute value");
			if (*x->p == '&') {
				if (read_ref(x, &x->tmp) < 0)
					return -1;
				continue;
			}
			vs = x->p++;
			if (mx_buf_append(&x->tmp, vs, 1) < 0)
				return xml_fail(x, "out of memory");
			if (x->tmp.len > XML_MAX_VALUE)
				return xml_fail(x, "attribute value longer "
						   "than %d bytes",
						XML_MAX_VALUE);
		}
		x->p++;
		if (alen == 4 && memcmp(an, "type", 4) == 0) {
			has_type = true;
			type_long = x->tmp.len >= 33;
			snprintf(type, sizeof(type), "%s",
				 x->tmp.data ? x->tmp.data : "");
		}
	}
	x->names[x->depth] = name;
	x->name_lens[x->depth] = nlen;
	x->depth++;
	memcpy(ename, name, nlen);
	ename[nlen] = '\0';
	ac_start(x->ac, x->depth, ename, has_type ? type : NULL, type_long);
	if (empty) {
		ac_end(x->ac, x->depth);
		if (--x->depth == 0)
			x->root_done = true;
	}
	return 0;
}

static int read_end_tag(struct xml *x)
{
	const char *name;
	size_t nlen;

	x->p += 2;
	if (read_name(x, &name, &nlen) < 0)
		return -1;
	skip_ws(x);
	if (x->p >= x->end)
		return xml_fail(x, "truncated document");
	if (*x->p != '>')
		return xml_fail(x, "junk in an end tag");
	x->p++;
	if (x->depth == 0)
		return xml_fail(x, "end tag </%.*s> without a start tag",
				(int)nlen, name);
	if (x->name_lens[x->depth - 1] != nlen ||
	    memcmp(x->names[x->depth - 1], name, nlen) != 0)
		return xml_fail(x, "</%.*s> does not close <%.*s>", (int)nlen,
				name, (int)x->name_lens[x->depth - 1],
				x->names[x->depth - 1]);
	ac_end(x->ac, x->depth);
	if (--x->depth == 0)
		x->root_done = true;
	return 0;
}

static int xml_run(struct xml *x)
{
	if (memchr(x->p, '\0', (size_t)(x->end - x->p)))
		return xml_fail(x, "NUL byte in the document");
	if (has(x, "\xef\xbb\xbf"))
		x->p += 3;
	while (x->p < x->end) {
		const char *e;

		if (x->ac->nomem)
			return xml_fail(x, "out of memory");
		if (*x->p != '<') {
			if (read_text(x) < 0)
				return -1;
			continue;
		}
		if (has(x, "<?")) {
			if ((e = find(x, x->p + 2, "?>")) == NULL)
				return xml_fail(x, "truncated document (in a "
						   "processing instruction)");
			x->p = e + 2;
		} else if (has(x, "<!--")) {
			if ((e = find(x, x->p + 4, "-->")) == NULL)
				return xml_fail(x, "truncated document (in a "
						   "comment)");
			x->p = e + 3;
		} else if (has(x, "<![CDATA[")) {
			if (x->depth == 0)
				return xml_fail(x, "CDATA outside the root "
						   "element");
			if ((e = find(x, x->p + 9, "]]>")) == NULL)
				return xml_fail(x, "truncated document (in "
						   "CDATA)");
			ac_text(x->ac, x->depth, x->p + 9,
				(size_t)(e - x->p - 9));
			x->p = e + 3;
		} else if (has(x, "<!")) {
			return xml_fail(x, "DOCTYPE / ENTITY declarations are "
					   "not allowed");
		} else if (has(x, "</")) {
			if (read_end_tag(x) < 0)
				return -1;
		} else if (read_start_tag(x) < 0) {
			return -1;
		}
	}
	if (x->depth > 0)
		return xml_fail(x, "truncated document (<%.*s> not closed)",
				(int)x->name_lens[x->depth - 1],
				x->names[x->depth - 1]);
	if (!x->root_done)
		return xml_fail(x, "no <clientConfig> element");
	return x->ac->nomem ? xml_fail(x, "out of memory") : 0;
}

int mx_autoconfig_parse(const char *doc, size_t len, const char *email,
			const char *source, int prio_base,
			struct mx_discovery *out, struct mx_buf *log,
			struct mx_error *err)
{
	struct mx_discovery tmp = {0};
	struct ac a = {0};
	struct xml x = {0};
	const char *at = email ? strrchr(email, '@') : NULL;
	int rc = MX_OK;

	if (at == NULL || doc == NULL || out == NULL)
		return mx_error_set(err, MX_ERR_INVAL,
				    "autoconfig: bad arguments");
	a.email = email;
	a.local = email;
	a.local_len = (size_t)(at - email);
	a.domain = at + 1;
	a.domain_len = strlen(at + 1);
	a.source = source ? source : "autoconfig";
	a.prio = prio_base;
	a.cur = F_NONE;
	a.out = &tmp;
	a.log = log;
	x.start = x.p = doc;
	x.end = doc + len;
	x.ac = &a;
	if (xml_run(&x) < 0) {
		rc = a.nomem ? mx_error_set(err, MX_ERR_NOMEM, NULL)
			     : mx_error_set(err, MX_ERR_PROTOCOL,
					    "malformed autoconfig document: %s",
					    x.errbuf);
		goto out;
	}
	if (tmp.n == 0) {
		rc = mx_error_set(err, MX_ERR_NOTFOUND,
				  "no usable server in autoconfig document");
		goto out;
	}
	for (size_t i = 0; i < tmp.n; i++) {
		if (mx_discovery_add(out, &tmp.v[i]) < 0) {
			/* Take back what was added so OUT is unchanged. */
			while (i-- > 0) {
				struct mx_disc_server *s = &out->v[--out->n];

				free(s->proto);
				free(s->host);
				free(s->user);
				free(s->source);
			}
			rc = mx_error_set(err, MX_ERR_NOMEM, NULL);
			goto out;
		}
	}
out:
	entry_reset(&a.e);
	mx_buf_free(&x.tmp);
	mx_discovery_free(&tmp);
	return rc;
}
