/*
 * mx_mime_parse() and friends: the structure (boundaries, nesting) of a
 * well-formed multipart is found by our own splitter, of anything else by
 * libetpan's mailmime (walk_message() says when); everything a caller sees
 * (header values, part types, parameters, decoded sizes) comes from our
 * own tolerant parsers in header.c and addr.c, so broken input degrades
 * instead of failing.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libetpan/libetpan.h>

#include "mime_int.h"

/* Parts nested deeper than this are not looked into. */
#define MX_MAX_DEPTH 64
/*
 * libetpan recurses once per nesting level without a limit of its own, so
 * a message with more container types than this is not given to it.
 */
#define MX_MAX_CONTAINERS 256
#define MX_MAX_PARTS 10000
#define MX_MAX_REFERENCES 1000
#define MX_SNIPPET_CHARS 200
/* Only the start of a body is decoded for the snippet. */
#define MX_SNIPPET_INPUT (256 * 1024)

enum cte { CTE_IDENTITY, CTE_BASE64, CTE_QP };

struct leaf {
	struct mx_part part; /* owned strings, moved into mx_parsed */
	const char *body;    /* foreign: encoded body in the caller's bytes */
	size_t body_len;
	enum cte cte;
};

struct walk {
	const char *base; /* the caller's bytes libetpan parsed (foreign) */
	size_t len;
	const struct mx_hdrs *root_hdrs;
	struct leaf *v;
	size_t n;
	size_t cap;
	unsigned flags;
	const char *error; /* static text for MX_PARSED_BROKEN */
	bool nomem;
	bool doubt; /* our splitter met what libetpan may split otherwise */
};

static void set_broken(struct walk *w, const char *why)
{
	w->flags |= MX_PARSED_BROKEN;
	if (w->error == NULL)
		w->error = why;
}

static void part_free(struct mx_part *p)
{
	free(p->part_id);
	free(p->content_type);
	free(p->charset);
	free(p->filename);
	free(p->content_id);
	free(p->disposition);
	memset(p, 0, sizeof(*p));
}

static void walk_free(struct walk *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		part_free(&w->v[i].part);
	free(w->v);
	w->v = NULL;
	w->n = w->cap = 0;
}

/* Unfolded, trimmed, lower-cased value of header NAME, or NULL. */
static char *hdr_lower(const struct mx_hdrs *h, const char *name, bool *nomem)
{
	const struct mx_hdr *f = mx_hdrs_get(h, name);
	struct mx_buf u = {0}, b = {0};

	if (f == NULL)
		return NULL;
	if (mx_unfold_append(&u, f->value, f->value_len) < 0 ||
	    mx_buf_reserve(&b, 0) < 0 ||
	    mx_utf8_lower_append(&b, u.data, u.len) < 0) {
		*nomem = true;
		mx_buf_free(&u);
		mx_buf_free(&b);
		return NULL;
	}
	mx_buf_free(&u);
	return mx_buf_steal(&b);
}

static size_t decoded_size(const char *body, size_t len, enum cte cte,
			   bool *nomem)
{
	struct mx_buf b = {0};
	size_t n = len;
	int rc = 0;

	if (cte == CTE_BASE64)
		return mx_base64_decoded_len(body, len);
	if (cte == CTE_QP)
		rc = mx_qp_append(&b, body, len, false);
	if (rc < 0)
		*nomem = true;
	else if (cte != CTE_IDENTITY)
		n = b.len;
	mx_buf_free(&b);
	return n;
}

/* The value of Content-ID / Message-ID without <> and blanks. */
static char *strip_id(const char *v, size_t len, bool *nomem)
{
	struct mx_buf u = {0}, b = {0};
	size_t s = 0, e;
	char *r = NULL;

	if (mx_unfold_append(&u, v, len) < 0)
		goto fail;
	e = u.len;
	if (s < e && u.data[s] == '<')
		s++;
	if (e > s && u.data[e - 1] == '>')
		e--;
	while (s < e && (u.data[s] == ' ' || u.data[s] == '\t'))
		s++;
	while (e > s && (u.data[e - 1] == ' ' || u.data[e - 1] == '\t'))
		e--;
	if (s == e) {
		mx_buf_free(&u);
		return NULL;
	}
	if (mx_utf8_sanitize_append(&b, u.data + s, e - s) < 0)
		goto fail;
	r = mx_buf_steal(&b);
	if (r == NULL)
		goto fail;
	mx_buf_free(&u);
	return r;
fail:
	*nomem = true;
	mx_buf_free(&u);
	mx_buf_free(&b);
	return NULL;
}

/*
 * Adds a leaf described by header block H with BODY.  DEFAULT_TYPE is the
 * type when Content-Type is absent (message/rfc822 in a digest).
 */
static void add_leaf(struct walk *w, const struct mx_hdrs *h,
		     const char *section, const char *body, size_t body_len,
		     const char *default_type)
{
	struct mx_params ct = {0}, cd = {0};
	const struct mx_hdr *f;
	struct leaf *lf, *v;
	char *cte = NULL;
	bool unknown = false, is_text, disp_inline;
	struct mx_buf probe = {0};

	if (w->nomem)
		return;
	if (w->n >= MX_MAX_PARTS) {
		set_broken(w, "too many parts");
		return;
	}
	if (w->n == w->cap) {
		size_t ncap = w->cap ? w->cap * 2 : 8;

		v = realloc(w->v, ncap * sizeof(*v));
		if (v == NULL) {
			w->nomem = true;
			return;
		}
		w->v = v;
		w->cap = ncap;
	}
	lf = &w->v[w->n];
	memset(lf, 0, sizeof(*lf));
	lf->body = body;
	lf->body_len = body_len;
	w->n++;

	lf->part.part_id = mx_strdup(section);
	if (lf->part.part_id == NULL)
		goto nomem;
	f = mx_hdrs_get(h, "Content-Type");
	if (f && mx_params_parse(f->value, f->value_len, &ct) < 0)
		goto nomem;
	if (ct.token == NULL || ct.token[0] == '\0')
		lf->part.content_type = mx_strdup(default_type);
	else if (strcmp(ct.token, "text") == 0)
		lf->part.content_type = mx_strdup("text/plain");
	else if (strchr(ct.token, '/') == NULL)
		lf->part.content_type = mx_strdup("application/octet-stream");
	else
		lf->part.content_type = mx_strdup(ct.token);
	if (lf->part.content_type == NULL)
		goto nomem;
	is_text = strncmp(lf->part.content_type, "text/", 5) == 0;
	if (strcmp(lf->part.content_type, "text/calendar") == 0)
		w->flags |= MX_PARSED_CALENDAR;
	if (strncmp(lf->part.content_type, "multipart/", 10) == 0)
		set_broken(w, "multipart part without usable boundary");

	if (ct.n > 0) {
		char *cs = NULL;

		if (mx_param_get(&ct, "charset", &cs, NULL) < 0)
			goto nomem;
		if (cs != NULL && cs[0] != '\0') {
			struct mx_buf lb = {0};

			if (mx_buf_reserve(&lb, 0) < 0 ||
			    mx_utf8_lower_append(&lb, cs, strlen(cs)) < 0) {
				free(cs);
				mx_buf_free(&lb);
				goto nomem;
			}
			lf->part.charset = mx_buf_steal(&lb);
		}
		free(cs);
		if (lf->part.charset && is_text) {
			if (mx_charset_append(&probe, lf->part.charset, "", 0,
					      &unknown) < 0)
				goto nomem;
			if (unknown)
				w->flags |= MX_PARSED_CHARSET;
		}
	}

	f = mx_hdrs_get(h, "Content-Disposition");
	if (f && mx_params_parse(f->value, f->value_len, &cd) < 0)
		goto nomem;
	if (cd.token && cd.token[0]) {
		/* RFC 2183: unknown dispositions are treated as attachment. */
		lf->part.disposition = mx_strdup(
			strcmp(cd.token, "inline") == 0 ? "inline" :
							  "attachment");
		if (lf->part.disposition == NULL)
			goto nomem;
	}
	unknown = false;
	if (mx_param_get(&cd, "filename", &lf->part.filename, &unknown) < 0)
		goto nomem;
	if (lf->part.filename == NULL &&
	    mx_param_get(&ct, "name", &lf->part.filename, &unknown) < 0)
		goto nomem;
	if (lf->part.filename && lf->part.filename[0] == '\0') {
		free(lf->part.filename);
		lf->part.filename = NULL;
	}
	if (unknown)
		w->flags |= MX_PARSED_CHARSET;

	f = mx_hdrs_get(h, "Content-ID");
	if (f)
		lf->part.content_id = strip_id(f->value, f->value_len,
					       &w->nomem);

	cte = hdr_lower(h, "Content-Transfer-Encoding", &w->nomem);
	if (cte && strcmp(cte, "base64") == 0)
		lf->cte = CTE_BASE64;
	else if (cte && strcmp(cte, "quoted-printable") == 0)
		lf->cte = CTE_QP;
	lf->part.size = decoded_size(body, body_len, lf->cte, &w->nomem);

	/*
	 * An attachment: disposition says so; or a named part not marked
	 * inline; or a non-text part, unless it is an inline part that HTML
	 * refers to by Content-ID (an embedded image).
	 */
	disp_inline = lf->part.disposition &&
		      strcmp(lf->part.disposition, "inline") == 0;
	lf->part.attachment =
		(lf->part.disposition && !disp_inline) ||
		(lf->part.filename && !disp_inline) ||
		(!is_text && !(disp_inline && lf->part.content_id) &&
		 !(disp_inline && !lf->part.filename));
	goto out;
nomem:
	w->nomem = true;
out:
	free(cte);
	mx_buf_free(&probe);
	mx_params_free(&ct);
	mx_params_free(&cd);
}

static bool in_copy(const struct walk *w, const char *p, size_t n)
{
	return p != NULL && p >= w->base && n <= w->len &&
	       (size_t)(p - w->base) <= w->len - n;
}

/* Headers of a part libetpan found: from its start up to its body. */
static int part_hdrs(const struct walk *w, const struct mailmime *m,
		     const char *body, struct mx_hdrs *h)
{
	size_t n;

	memset(h, 0, sizeof(*h));
	if (m->mm_mime_start == NULL || body == NULL ||
	    body < m->mm_mime_start)
		return 0;
	n = (size_t)(body - m->mm_mime_start);
	if (!in_copy(w, m->mm_mime_start, n))
		return 0;
	return mx_hdrs_parse(m->mm_mime_start, n, h);
}

static void body_of(const struct walk *w, const struct mailmime_data *d,
		    const char **body_r, size_t *len_r)
{
	*body_r = NULL;
	*len_r = 0;
	if (d == NULL || d->dt_type != MAILMIME_DATA_TEXT)
		return;
	if (!in_copy(w, d->dt_data.dt_text.dt_data, d->dt_data.dt_text.dt_length))
		return;
	*body_r = d->dt_data.dt_text.dt_data;
	*len_r = d->dt_data.dt_text.dt_length;
}

/* True when the body of multipart M holds its closing boundary. */
static bool has_close_boundary(const struct mailmime *m, const char *body,
			       size_t len)
{
	struct mailmime_parameter *pa;
	char tag[80];
	clistiter *it;
	size_t n;

	if (m->mm_content_type == NULL ||
	    m->mm_content_type->ct_parameters == NULL)
		return true;
	for (it = clist_begin(m->mm_content_type->ct_parameters); it;
	     it = clist_next(it)) {
		pa = clist_content(it);
		if (pa->pa_name && pa->pa_value &&
		    strcasecmp(pa->pa_name, "boundary") == 0) {
			n = strlen(pa->pa_value);
			if (n + 5 > sizeof(tag) || body == NULL)
				return true;
			memcpy(tag, "--", 2);
			memcpy(tag + 2, pa->pa_value, n);
			memcpy(tag + 2 + n, "--", 3);
			return memmem(body, len, tag, n + 4) != NULL;
		}
	}
	return true;
}

static void handle_part(struct walk *w, const struct mx_hdrs *h,
			const char *section, const char *body, size_t len,
			int depth, const char *default_type);

/*
 * Where the delimiter line "--BOUNDARY" starts at or after FROM, or LEN.
 * Sets *CLOSE for "--BOUNDARY--" and *NEXT to the start of the next line,
 * and *ODD when a line starting with "--BOUNDARY" was passed over for what
 * follows the boundary on it (libetpan may take it as a delimiter).
 */
static size_t find_delim(const char *s, size_t len, size_t from,
			 const char *bnd, size_t blen, bool *close,
			 size_t *next, bool *odd)
{
	const char *p;
	size_t at, j;

	while (from < len) {
		p = memmem(s + from, len - from, bnd, blen);
		if (p == NULL)
			break;
		at = (size_t)(p - s);
		from = at + 1;
		if (at > 0 && s[at - 1] != '\n')
			continue;
		j = at + blen;
		*close = j + 2 <= len && s[j] == '-' && s[j + 1] == '-';
		if (*close)
			j += 2;
		while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r'))
			j++;
		if (j < len && s[j] != '\n') {
			*odd = true;
			continue;
		}
		*next = j < len ? j + 1 : len;
		return at;
	}
	*close = false;
	*next = len;
	return len;
}

/*
 * Our own multipart splitter, for what libetpan left as one part: RFC 2231
 * boundary*= parameters, odd Content-Type syntax, or a message libetpan
 * refused altogether.
 */
static bool split_multipart(struct walk *w, const char *section,
			    const char *body, size_t len, const char *boundary,
			    int depth, bool digest)
{
	char *bnd, sec[512];
	size_t blen, at, next, start, end, k = 0;
	struct mx_hdrs ph;
	bool close = false;

	blen = strlen(boundary);
	bnd = malloc(blen + 3);
	if (bnd == NULL) {
		w->nomem = true;
		return true;
	}
	memcpy(bnd, "--", 2);
	memcpy(bnd + 2, boundary, blen + 1);
	blen += 2;
	at = find_delim(body, len, 0, bnd, blen, &close, &next, &w->doubt);
	if (digest || close)
		w->doubt = true;
	if (at == len) {
		set_broken(w, "multipart boundary never found");
		free(bnd);
		return false;
	}
	while (!close && !w->nomem) {
		start = next;
		at = find_delim(body, len, start, bnd, blen, &close, &next,
				&w->doubt);
		/* The line end before a delimiter belongs to it. */
		end = at;
		if (at < len && end > start && body[end - 1] == '\n')
			end--;
		if (at < len && end > start && body[end - 1] == '\r')
			end--;
		if (at == len)
			set_broken(w, "multipart closing boundary missing");
		k++;
		if (section[0] == '\0')
			snprintf(sec, sizeof(sec), "%zu", k);
		else if ((size_t)snprintf(sec, sizeof(sec), "%s.%zu", section,
					  k) >= sizeof(sec))
			break;
		if (mx_hdrs_parse(body + start, end - start, &ph) < 0) {
			w->nomem = true;
			break;
		}
		/* libetpan runs an empty part into the next delimiter and
		   has its own idea of a part without a header. */
		if (end - start <= ph.body_off || ph.junk ||
		    ph.no_separator || ph.truncated ||
		    (start < len && (body[start] == '\r' || body[start] == '\n')))
			w->doubt = true;
		handle_part(w, &ph, sec, body + start + ph.body_off,
			    end - start - ph.body_off, depth + 1,
			    digest ? "message/rfc822" : "text/plain");
		mx_hdrs_free(&ph);
		if (at == len)
			break;
	}
	/* libetpan reads on past a closing delimiter that another
	   delimiter follows. */
	if (close && find_delim(body, len, next, bnd, blen, &close, &next,
				&w->doubt) < len)
		w->doubt = true;
	free(bnd);
	return true;
}

/* A part we delimited ourselves: split it further or add it as a leaf. */
static void handle_part(struct walk *w, const struct mx_hdrs *h,
			const char *section, const char *body, size_t len,
			int depth, const char *default_type)
{
	const struct mx_hdr *f = mx_hdrs_get(h, "Content-Type");
	struct mx_params ct = {0};
	char *bnd = NULL;

	if (depth > MX_MAX_DEPTH) {
		set_broken(w, "parts nested too deeply");
		return;
	}
	if (f != NULL) {
		if (mx_params_parse(f->value, f->value_len, &ct) < 0 ||
		    (strncmp(ct.token, "multipart/", 10) == 0 &&
		     mx_param_get(&ct, "boundary", &bnd, NULL) < 0)) {
			w->nomem = true;
			goto out;
		}
	}
	if (bnd == NULL || bnd[0] == '\0' ||
	    !split_multipart(w, section, body, len, bnd, depth,
			     strcmp(ct.token, "multipart/digest") == 0))
		add_leaf(w, h, section[0] ? section : "1", body, len,
			 default_type);
out:
	free(bnd);
	mx_params_free(&ct);
}

static void walk_mime(struct walk *w, const struct mailmime *m, int depth,
		      const char *section, bool root, const char *default_type)
{
	struct mx_hdrs h = {0};
	const char *body, *subtype;
	size_t len, k;
	char sec[512];
	clistiter *it;
	bool digest;

	if (w->nomem)
		return;
	if (depth > MX_MAX_DEPTH) {
		set_broken(w, "parts nested too deeply");
		return;
	}
	switch (m->mm_type) {
	case MAILMIME_SINGLE:
		body_of(w, m->mm_data.mm_single, &body, &len);
		/* libetpan leaves a multipart it could not split as a
		   single part; handle_part() retries with our splitter. */
		if (root) {
			handle_part(w, w->root_hdrs, "", body, len, depth,
				    default_type);
			break;
		}
		if (part_hdrs(w, m, body, &h) < 0) {
			w->nomem = true;
			break;
		}
		handle_part(w, &h, section, body, len, depth, default_type);
		break;
	case MAILMIME_MULTIPLE:
		body_of(w, m->mm_body, &body, &len);
		if (!has_close_boundary(m, body, len))
			set_broken(w, "multipart closing boundary missing");
		subtype = m->mm_content_type ? m->mm_content_type->ct_subtype :
					       NULL;
		digest = subtype && strcasecmp(subtype, "digest") == 0;
		if (clist_isempty(m->mm_data.mm_multipart.mm_mp_list))
			set_broken(w, "multipart without parts");
		k = 0;
		for (it = clist_begin(m->mm_data.mm_multipart.mm_mp_list); it;
		     it = clist_next(it)) {
			k++;
			if (root || section[0] == '\0')
				snprintf(sec, sizeof(sec), "%zu", k);
			else if ((size_t)snprintf(sec, sizeof(sec), "%s.%zu",
						  section, k) >= sizeof(sec))
				continue;
			walk_mime(w, clist_content(it), depth + 1, sec, false,
				  digest ? "message/rfc822" : "text/plain");
		}
		break;
	case MAILMIME_MESSAGE:
		if (root) {
			if (m->mm_data.mm_message.mm_msg_mime)
				walk_mime(w, m->mm_data.mm_message.mm_msg_mime,
					  depth, "", true, "text/plain");
			break;
		}
		/* An attached message is a leaf: its own parts are the
		   business of whoever opens it. */
		body_of(w, m->mm_body, &body, &len);
		if (part_hdrs(w, m, body, &h) < 0) {
			w->nomem = true;
			break;
		}
		add_leaf(w, &h, section, body, len, "message/rfc822");
		break;
	default:
		set_broken(w, "unknown MIME node");
		break;
	}
	mx_hdrs_free(&h);
}

/*
 * Counts Content-Type fields naming a container (multipart/, message/): a
 * cheap bound on how deep libetpan would have to recurse.
 */
static size_t count_containers(const char *s, size_t len)
{
	size_t i, j, n = 0;

	/* Header fields start lines: jump from line to line instead of
	   comparing at every byte of (mostly base64) bodies. */
	for (i = 0; i + 12 < len; i++) {
		if (i > 0) {
			const char *nl = memchr(s + i - 1, '\n', len - i + 1);

			if (nl == NULL)
				break;
			i = (size_t)(nl - s) + 1;
			if (i + 12 >= len)
				break;
		}
		if ((s[i] != 'c' && s[i] != 'C') ||
		    strncasecmp(s + i, "content-type", 12) != 0)
			continue;
		j = i + 12;
		while (j < len && (s[j] == ' ' || s[j] == '\t' || s[j] == ':' ||
				   s[j] == '\r' || s[j] == '\n'))
			j++;
		if ((j + 10 <= len && strncasecmp(s + j, "multipart/", 10) == 0) ||
		    (j + 8 <= len && strncasecmp(s + j, "message/", 8) == 0))
			n++;
	}
	return n;
}

/*
 * Finds the leaves of RAW into W.  ROOT_HDRS is the header block parsed by
 * mx_hdrs_parse().  The leaves point into RAW, which must outlive W.
 *
 * RAW is parsed in place, not copied: libetpan's mailmime_parse() reads
 * only within the length it is given (checked with every corpus message
 * and every truncation of its last 64 bytes placed against a PROT_NONE
 * guard page; the fuzz targets run on exact-size buffers under ASan), so a
 * 30 MB message costs no second 30 MB -- the outbox parses the message it
 * has just sent straight from the store's map.
 */
/* True when the top-level Content-Type starts with TYPE ("multipart/"). */
static bool root_type_is(const struct mx_hdrs *h, const char *type)
{
	const struct mx_hdr *f = mx_hdrs_get(h, "Content-Type");
	size_t tlen = strlen(type);
	const char *v;
	size_t n;

	if (f == NULL)
		return false;
	v = f->value;
	n = f->value_len;
	while (n > 0 && (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')) {
		v++;
		n--;
	}
	return n >= tlen && strncasecmp(v, type, tlen) == 0;
}

/* True when the top-level Content-Type is multipart/... or message/...
 * (the only types libetpan's parser gives structure to). */
static bool root_is_container(const struct mx_hdrs *h)
{
	return root_type_is(h, "multipart/") || root_type_is(h, "message/");
}

static void walk_message(struct walk *w, const char *raw, size_t len,
			 const struct mx_hdrs *root_hdrs)
{
	struct mailmime *mime = NULL;
	size_t idx = 0, skip = 0, containers;
	const char *copy = raw; /* the bytes the leaves point into */
	int r;

	w->root_hdrs = root_hdrs;
	w->base = raw;
	w->len = len;
	/* libetpan does not know mbox separators. */
	if (len >= 5 && memcmp(raw, "From ", 5) == 0) {
		const char *lf = memchr(raw, '\n', len);

		skip = lf ? (size_t)(lf - raw) + 1 : len;
	}
	if (!root_is_container(root_hdrs) && !root_hdrs->junk &&
	    !root_hdrs->no_separator && !root_hdrs->truncated) {
		/* A well-formed single-part message has no structure to
		   find: skip libetpan's parse (a fifth of a sync's CPU) and
		   take the body as the one leaf, exactly as walk_mime()
		   would.  Malformed headers still go through libetpan,
		   whose idea of where the body starts we keep. */
		size_t off = root_hdrs->body_off <= len ? root_hdrs->body_off :
							 len;

		handle_part(w, root_hdrs, "", copy + off, len - off, 0,
			    "text/plain");
		return;
	}
	containers = count_containers(raw, len);
	if (root_type_is(root_hdrs, "multipart/") && !root_hdrs->junk &&
	    !root_hdrs->no_separator && !root_hdrs->truncated &&
	    containers <= MX_MAX_CONTAINERS) {
		/*
		 * libetpan's boundary scan goes byte by byte through every
		 * body (an eighth of an initial sync's CPU); our splitter
		 * finds delimiters with memmem().  Both agree on well-formed
		 * multiparts (every message of the real-world corpus and of
		 * bench/gen-mail.py, and thousands of mutations of them);
		 * whatever our splitter finds odd (broken, digest, an empty
		 * or header-less part, a line that only starts like a
		 * delimiter, delimiters after the closing one) is parsed by
		 * libetpan as before, so results on malformed mail are
		 * unchanged.
		 */
		size_t off = root_hdrs->body_off <= len ? root_hdrs->body_off :
							 len;

		handle_part(w, root_hdrs, "", copy + off, len - off, 0,
			    "text/plain");
		if (w->nomem || (!(w->flags & MX_PARSED_BROKEN) &&
				 !w->doubt && w->n > 0))
			return;
		walk_free(w);
		w->flags = 0;
		w->error = NULL;
		w->doubt = false;
	}
	if (containers > MX_MAX_CONTAINERS) {
		set_broken(w, "too many nested containers");
		r = -1;
	} else {
		r = mailmime_parse(copy + skip, len - skip, &idx, &mime);
		if (r == MAILIMF_ERROR_MEMORY)
			w->nomem = true;
		else if (r != MAILIMF_NO_ERROR)
			set_broken(w, "MIME structure not parsable");
	}
	if (r == MAILIMF_NO_ERROR && mime != NULL) {
		walk_mime(w, mime, 0, "", true, "text/plain");
		mailmime_free(mime);
	}
	if (r != MAILIMF_NO_ERROR && !w->nomem) {
		size_t off = root_hdrs->body_off <= len ? root_hdrs->body_off :
							 len;

		handle_part(w, root_hdrs, "", copy + off, len - off, 0,
			    "text/plain");
	}
	if (w->n == 0 && !w->nomem) {
		/* Whatever happened, the body is still one text. */
		size_t off = root_hdrs->body_off <= len ? root_hdrs->body_off :
							 len;

		add_leaf(w, root_hdrs, "1", copy + off, len - off,
			 "text/plain");
	}
}

/* Decoded text of a leaf, as UTF-8, at most MAX input bytes of it. */
static int leaf_text(const struct leaf *lf, size_t max, struct mx_buf *out,
		     bool *unknown_r)
{
	struct mx_buf d = {0};
	size_t n = lf->body_len < max ? lf->body_len : max;
	const char *p = lf->body ? lf->body : "";
	int rc = -1;

	if (lf->cte == CTE_BASE64) {
		if (mx_base64_append(&d, p, n) < 0)
			goto out;
		p = d.data;
		n = d.len;
	} else if (lf->cte == CTE_QP) {
		if (mx_qp_append(&d, p, n, false) < 0)
			goto out;
		p = d.data;
		n = d.len;
	}
	if (mx_buf_reserve(out, n) < 0 ||
	    mx_charset_append(out, lf->part.charset, p, n, unknown_r) < 0)
		goto out;
	rc = 0;
out:
	mx_buf_free(&d);
	return rc;
}

static const struct leaf *find_text(const struct walk *w, const char *type)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (!w->v[i].part.attachment &&
		    strcmp(w->v[i].part.content_type, type) == 0)
			return &w->v[i];
	return NULL;
}

/* HTML to text for the snippet: tags dropped, a few entities decoded. */
static const struct {
	const char *name;
	uint32_t cp;
} entities[] = {
	{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'},
	{"apos", '\''}, {"nbsp", ' '}, {"copy", 0xa9}, {"reg", 0xae},
	{"mdash", 0x2014}, {"ndash", 0x2013}, {"hellip", 0x2026},
	{"rsquo", 0x2019}, {"lsquo", 0x2018}, {"ldquo", 0x201c},
	{"rdquo", 0x201d}, {"euro", 0x20ac},
};

static const char *skip_past(const char *p, const char *e, const char *needle)
{
	size_t n = strlen(needle);
	const char *q;

	for (q = p; q + n <= e; q++)
		if (strncasecmp(q, needle, n) == 0)
			return q + n;
	return e;
}

static int html_to_text(struct mx_buf *out, const char *s, size_t len)
{
	const char *p = s, *e = s + len, *q;
	size_t i, n;
	uint32_t cp;
	char *end;

	while (p < e) {
		if (*p == '<') {
			if (e - p >= 4 && strncmp(p, "<!--", 4) == 0)
				p = skip_past(p + 4, e, "-->");
			else if (e - p >= 7 && strncasecmp(p, "<script", 7) == 0)
				p = skip_past(skip_past(p, e, "</script"), e, ">");
			else if (e - p >= 6 && strncasecmp(p, "<style", 6) == 0)
				p = skip_past(skip_past(p, e, "</style"), e, ">");
			else if (e - p >= 5 && strncasecmp(p, "<head", 5) == 0 &&
				 (p[5] == '>' || p[5] == ' '))
				p = skip_past(skip_past(p, e, "</head"), e, ">");
			else
				p = skip_past(p, e, ">");
			if (mx_buf_append(out, " ", 1) < 0)
				return -1;
			continue;
		}
		if (*p == '&') {
			q = p + 1;
			cp = 0;
			if (q < e && *q == '#') {
				char num[12];

				q++;
				for (n = 0; q + n < e && n < sizeof(num) - 1 &&
					    (q[n] == 'x' || q[n] == 'X' ||
					     (q[n] >= '0' && q[n] <= '9') ||
					     (q[n] >= 'a' && q[n] <= 'f') ||
					     (q[n] >= 'A' && q[n] <= 'F'));
				     n++)
					num[n] = q[n];
				num[n] = '\0';
				if (num[0] == 'x' || num[0] == 'X')
					cp = (uint32_t)strtoul(num + 1, &end, 16);
				else
					cp = (uint32_t)strtoul(num, &end, 10);
				if (n > 0 && *end == '\0' && q + n < e &&
				    q[n] == ';') {
					p = q + n + 1;
					if (mx_utf8_put(out, cp) < 0)
						return -1;
					continue;
				}
			} else {
				for (i = 0; i < MX_ARRAY_SIZE(entities); i++) {
					n = strlen(entities[i].name);
					if (q + n < e &&
					    strncmp(q, entities[i].name, n) == 0 &&
					    q[n] == ';') {
						p = q + n + 1;
						if (mx_utf8_put(out, entities[i].cp) < 0)
							return -1;
						break;
					}
				}
				if (i < MX_ARRAY_SIZE(entities))
					continue;
			}
		}
		if (mx_buf_append(out, p, 1) < 0)
			return -1;
		p++;
	}
	return 0;
}

/*
 * Collapses blanks (ASCII and U+00A0) and keeps at most MAX characters.
 * *OUT_R is NULL when nothing but blanks was there; -1 on ENOMEM.
 */
static int collapse(const char *s, size_t len, size_t max, char **out_r)
{
	const unsigned char *p = (const unsigned char *)s;
	struct mx_buf b = {0};
	size_t i = 0, n, chars = 0;
	bool space = false;
	uint32_t cp;

	*out_r = NULL;
	while (i < len && chars < max) {
		n = mx_utf8_decode1(p + i, len - i, &cp);
		if (n == 0) {
			n = 1;
			cp = MX_REPLACEMENT;
		}
		i += n;
		if (cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' ||
		    cp == '\f' || cp == '\v' || cp == 0xa0) {
			space = b.len > 0;
			continue;
		}
		if (space) {
			if (chars + 1 >= max)
				break;
			if (mx_buf_append(&b, " ", 1) < 0)
				goto fail;
			chars++;
			space = false;
		}
		if (mx_utf8_put(&b, cp) < 0)
			goto fail;
		chars++;
	}
	if (b.len > 0 && (*out_r = mx_buf_steal(&b)) == NULL)
		goto fail;
	return 0;
fail:
	mx_buf_free(&b);
	return -1;
}

static char *make_snippet(const struct walk *w, bool *unknown_r, bool *nomem)
{
	const struct leaf *lf;
	struct mx_buf t = {0}, h = {0};
	char *r = NULL;
	bool html = false;

	lf = find_text(w, "text/plain");
	if (lf == NULL) {
		lf = find_text(w, "text/html");
		html = true;
	}
	if (lf == NULL)
		return NULL;
	if (leaf_text(lf, MX_SNIPPET_INPUT, &t, unknown_r) < 0)
		goto fail;
	if (html) {
		if (mx_buf_reserve(&h, t.len) < 0 ||
		    html_to_text(&h, t.data, t.len) < 0)
			goto fail;
		mx_buf_free(&t);
		t = h;
		memset(&h, 0, sizeof(h));
	}
	if (collapse(t.data, t.len, MX_SNIPPET_CHARS, &r) < 0)
		goto fail;
	mx_buf_free(&t);
	return r;
fail:
	*nomem = true;
	mx_buf_free(&t);
	mx_buf_free(&h);
	return NULL;
}

/* Dates. */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static const char months[12][4] = {
	"jan", "feb", "mar", "apr", "may", "jun",
	"jul", "aug", "sep", "oct", "nov", "dec",
};

static const struct {
	const char *name;
	int minutes;
} zones[] = {
	{"ut", 0}, {"utc", 0}, {"gmt", 0}, {"z", 0},
	{"est", -300}, {"edt", -240}, {"cst", -360}, {"cdt", -300},
	{"mst", -420}, {"mdt", -360}, {"pst", -480}, {"pdt", -420},
	{"cet", 60}, {"cest", 120}, {"bst", 60}, {"met", 60},
	{"mest", 120}, {"eet", 120}, {"eest", 180}, {"jst", 540},
};

/*
 * RFC 5322 date-time and the obsolete forms met in old mail: two- and
 * three-digit years, named zones, asctime() order, missing seconds or zone.
 * Tokens are recognised by their shape rather than their position.
 */
static int64_t parse_date(const char *s, size_t len)
{
	int day = -1, mon = -1, hour = -1, min = 0, sec = 0, zone = 0;
	int64_t year = -1, t;
	size_t i = 0, j, k, n;
	char tok[32];
	int depth;

	while (i < len) {
		if (s[i] == '(') {
			for (depth = 0; i < len; i++) {
				if (s[i] == '(')
					depth++;
				else if (s[i] == ')' && --depth == 0)
					break;
			}
			i++;
			continue;
		}
		if (strchr(" \t\r\n,", s[i])) {
			i++;
			continue;
		}
		for (j = i; j < len && !strchr(" \t\r\n,(", s[j]); j++)
			;
		n = j - i;
		if (n >= sizeof(tok)) {
			i = j;
			continue;
		}
		for (k = 0; k < n; k++)
			tok[k] = (s[i + k] >= 'A' && s[i + k] <= 'Z') ?
					 (char)(s[i + k] + 32) :
					 s[i + k];
		tok[n] = '\0';
		i = j;
		if (strchr(tok, ':')) {
			int hh, mm, ss = 0;

			if (sscanf(tok, "%2d:%2d:%2d", &hh, &mm, &ss) >= 2 &&
			    hour < 0) {
				hour = hh;
				min = mm;
				sec = ss;
			}
		} else if ((tok[0] == '+' || tok[0] == '-') && n == 5 &&
			   strspn(tok + 1, "0123456789") == 4) {
			int v = atoi(tok + 1);

			zone = (v / 100 * 60 + v % 100) * (tok[0] == '-' ? -1 : 1);
		} else if (strspn(tok, "0123456789") == n) {
			if (day < 0 && n <= 2)
				day = atoi(tok);
			else if (year < 0 && n <= 4)
				year = atoi(tok);
		} else if (tok[0] >= 'a' && tok[0] <= 'z') {
			for (k = 0; k < 12; k++)
				if (strncmp(tok, months[k], 3) == 0 && mon < 0)
					mon = (int)k;
			for (k = 0; k < MX_ARRAY_SIZE(zones); k++)
				if (strcmp(tok, zones[k].name) == 0)
					zone = zones[k].minutes;
		}
	}
	if (day < 1 || day > 31 || mon < 0 || year < 0)
		return -1;
	if (year < 50)
		year += 2000;
	else if (year < 1000)
		year += 1900;
	if (hour < 0)
		hour = min = sec = 0;
	if (hour > 23 || min > 59 || sec > 60)
		return -1;
	t = days_from_civil(year, (unsigned)mon + 1, (unsigned)day) * 86400 +
	    hour * 3600 + min * 60 + sec;
	return t - (int64_t)zone * 60;
}

/* Message ids: every <...>, or the blank-separated words with an '@'. */
static int parse_ids(const char *v, size_t len, char ***ids_r, size_t *n_r)
{
	struct mx_buf u = {0};
	char **ids = NULL, **nv, *id;
	size_t i = 0, s, e, n = 0;
	bool brackets, nomem = false;
	int rc = -1;

	*ids_r = NULL;
	*n_r = 0;
	if (mx_unfold_append(&u, v, len) < 0)
		goto out;
	brackets = memchr(u.data, '<', u.len) != NULL;
	while (i < u.len && n < MX_MAX_REFERENCES) {
		if (brackets) {
			if (u.data[i] != '<') {
				i++;
				continue;
			}
			s = ++i;
			while (i < u.len && u.data[i] != '>' && u.data[i] != '<')
				i++;
			e = i;
			if (i < u.len && u.data[i] == '>')
				i++;
		} else {
			if (strchr(" \t,", u.data[i])) {
				i++;
				continue;
			}
			s = i;
			while (i < u.len && !strchr(" \t,", u.data[i]))
				i++;
			e = i;
			if (!memchr(u.data + s, '@', e - s))
				continue;
		}
		id = strip_id(u.data + s, e - s, &nomem);
		if (nomem)
			goto out;
		if (id == NULL)
			continue;
		nv = realloc(ids, (n + 1) * sizeof(*ids));
		if (nv == NULL) {
			free(id);
			goto out;
		}
		ids = nv;
		ids[n++] = id;
	}
	rc = 0;
out:
	if (rc < 0) {
		while (n > 0)
			free(ids[--n]);
		free(ids);
		ids = NULL;
	}
	*ids_r = ids;
	*n_r = n;
	mx_buf_free(&u);
	return rc;
}

void mx_parsed_free(struct mx_parsed *p)
{
	size_t i;

	if (p == NULL)
		return;
	free(p->message_id);
	free(p->in_reply_to);
	for (i = 0; i < p->nreferences; i++)
		free(p->references[i]);
	free(p->references);
	free(p->subject);
	mx_addr_list_free(&p->from);
	mx_addr_list_free(&p->sender);
	mx_addr_list_free(&p->reply_to);
	mx_addr_list_free(&p->to);
	mx_addr_list_free(&p->cc);
	mx_addr_list_free(&p->bcc);
	free(p->snippet);
	for (i = 0; i < p->nparts; i++)
		part_free(&p->parts[i]);
	free(p->parts);
	free(p->error);
	memset(p, 0, sizeof(*p));
	p->date = -1;
}

static int parse_addrs(const struct mx_hdrs *h, const char *name,
		       struct mx_addr_list *l, bool *unknown)
{
	const struct mx_hdr *f = mx_hdrs_get(h, name);

	if (f == NULL)
		return 0;
	return mx_addr_list_parse(f->value, f->value_len, l, unknown);
}

static int parse_header_fields(const struct mx_hdrs *h, struct mx_parsed *out,
			       bool *unknown)
{
	const struct mx_hdr *f;
	struct mx_buf b = {0};
	char **ids;
	size_t n;

	if ((f = mx_hdrs_get(h, "Subject")) != NULL) {
		if (mx_decode_header_append(&b, f->value, f->value_len,
					    unknown) < 0 ||
		    (out->subject = mx_buf_steal(&b)) == NULL) {
			mx_buf_free(&b);
			return -1;
		}
	}
	if ((f = mx_hdrs_get(h, "Date")) != NULL) {
		if (mx_unfold_append(&b, f->value, f->value_len) < 0) {
			mx_buf_free(&b);
			return -1;
		}
		out->date = parse_date(b.data, b.len);
		mx_buf_free(&b);
	}
	if ((f = mx_hdrs_get(h, "Message-ID")) != NULL) {
		if (parse_ids(f->value, f->value_len, &ids, &n) < 0)
			return -1;
		if (n > 0) {
			out->message_id = ids[0];
			while (n > 1)
				free(ids[--n]);
		} else {
			/* No '@' and no brackets: keep what is there. */
			bool nomem = false;

			out->message_id = strip_id(f->value, f->value_len,
						   &nomem);
			if (nomem) {
				free(ids);
				return -1;
			}
		}
		free(ids);
	}
	if ((f = mx_hdrs_get(h, "In-Reply-To")) != NULL) {
		if (parse_ids(f->value, f->value_len, &ids, &n) < 0)
			return -1;
		if (n > 0) {
			out->in_reply_to = ids[0];
			while (n > 1)
				free(ids[--n]);
		}
		free(ids);
	}
	if ((f = mx_hdrs_get(h, "References")) != NULL &&
	    parse_ids(f->value, f->value_len, &out->references,
		      &out->nreferences) < 0)
		return -1;
	if (parse_addrs(h, "From", &out->from, unknown) < 0 ||
	    parse_addrs(h, "Sender", &out->sender, unknown) < 0 ||
	    parse_addrs(h, "Reply-To", &out->reply_to, unknown) < 0 ||
	    parse_addrs(h, "To", &out->to, unknown) < 0 ||
	    parse_addrs(h, "Cc", &out->cc, unknown) < 0 ||
	    parse_addrs(h, "Bcc", &out->bcc, unknown) < 0)
		return -1;
	return 0;
}

bool mx_mime_bulk(const char *list_id, const char *list_unsub,
		  const char *precedence, const char *auto_submitted)
{
	if (list_id || list_unsub)
		return true;
	if (precedence) {
		while (*precedence == ' ' || *precedence == '\t')
			precedence++;
		if (strncasecmp(precedence, "bulk", 4) == 0 ||
		    strncasecmp(precedence, "list", 4) == 0 ||
		    strncasecmp(precedence, "junk", 4) == 0)
			return true;
	}
	if (auto_submitted) {
		/* RFC 3834: "no", optionally with comments or parameters */
		while (*auto_submitted == ' ' || *auto_submitted == '\t')
			auto_submitted++;
		if (!(strncasecmp(auto_submitted, "no", 2) == 0 &&
		      strchr(" \t;(", auto_submitted[2]) != NULL))
			return true;
	}
	return false;
}

/* The first field NAME of H, unfolded (malloc()ed), or NULL; *NOMEM_R
 * on ENOMEM. */
static char *field_text(const struct mx_hdrs *h, const char *name,
			bool *nomem_r)
{
	const struct mx_hdr *f = mx_hdrs_get(h, name);
	struct mx_buf b = {0};

	if (f == NULL)
		return NULL;
	if (mx_unfold_append(&b, f->value, f->value_len) < 0 ||
	    mx_buf_reserve(&b, 1) < 0) {
		mx_buf_free(&b);
		*nomem_r = true;
		return NULL;
	}
	b.data[b.len] = '\0';
	return mx_buf_steal(&b);
}

static int bulk_flag(const struct mx_hdrs *h, unsigned *flags)
{
	bool nomem = false;
	char *prec = field_text(h, "Precedence", &nomem);
	char *auto_sub = field_text(h, "Auto-Submitted", &nomem);

	if (!nomem && mx_mime_bulk(mx_hdrs_get(h, "List-Id") ? "" : NULL,
				   mx_hdrs_get(h, "List-Unsubscribe") ? "" : NULL,
				   prec, auto_sub))
		*flags |= MX_PARSED_BULK;
	free(prec);
	free(auto_sub);
	return nomem ? -1 : 0;
}

int mx_mime_parse(const char *raw, size_t len, struct mx_parsed *out,
		  struct mx_error *err)
{
	struct mx_hdrs h = {0};
	struct walk w = {0};
	bool unknown = false;
	size_t i;
	int rc = MX_OK;

	memset(out, 0, sizeof(*out));
	out->date = -1;
	if (raw == NULL)
		len = 0;
	if (mx_hdrs_parse(raw ? raw : "", len, &h) < 0)
		goto nomem;
	if (parse_header_fields(&h, out, &unknown) < 0)
		goto nomem;
	if (h.n == 0)
		set_broken(&w, "no header fields");
	if (h.junk)
		set_broken(&w, "header lines without field name");
	if (h.truncated)
		set_broken(&w, "too many header fields");
	for (i = 0; i < h.n; i++)
		if (memchr(h.v[i].value, '\0', h.v[i].value_len))
			set_broken(&w, "NUL byte in header");
	walk_message(&w, raw ? raw : "", len, &h);
	if (w.nomem)
		goto nomem;
	out->snippet = make_snippet(&w, &unknown, &w.nomem);
	if (w.nomem)
		goto nomem;
	out->parts = calloc(w.n ? w.n : 1, sizeof(*out->parts));
	if (out->parts == NULL)
		goto nomem;
	for (i = 0; i < w.n; i++) {
		out->parts[i] = w.v[i].part;
		memset(&w.v[i].part, 0, sizeof(w.v[i].part));
	}
	out->nparts = w.n;
	out->flags = w.flags | (unknown ? MX_PARSED_CHARSET : 0);
	if (out->from.truncated || out->sender.truncated ||
	    out->reply_to.truncated || out->to.truncated ||
	    out->cc.truncated || out->bcc.truncated)
		out->flags |= MX_PARSED_ADDRS_TRUNCATED;
	if (bulk_flag(&h, &out->flags) < 0)
		goto nomem;
	if (w.error != NULL && (out->error = strdup(w.error)) == NULL)
		goto nomem;
	goto out;
nomem:
	mx_parsed_free(out);
	rc = mx_error_set(err, MX_ERR_NOMEM, "parsing a message");
out:
	walk_free(&w);
	mx_hdrs_free(&h);
	return rc;
}

int mx_mime_bodies(const char *raw, size_t len, char **text_r, char **html_r,
		   struct mx_error *err)
{
	struct mx_hdrs h = {0};
	struct walk w = {0};
	const struct leaf *lf;
	struct mx_buf b = {0};
	int rc = MX_OK;

	if (text_r)
		*text_r = NULL;
	if (html_r)
		*html_r = NULL;
	if (raw == NULL)
		len = 0;
	if (mx_hdrs_parse(raw ? raw : "", len, &h) < 0)
		goto nomem;
	walk_message(&w, raw ? raw : "", len, &h);
	if (w.nomem)
		goto nomem;
	if (text_r && (lf = find_text(&w, "text/plain")) != NULL) {
		if (leaf_text(lf, SIZE_MAX, &b, NULL) < 0 ||
		    mx_buf_reserve(&b, 0) < 0 ||
		    (*text_r = mx_buf_steal(&b)) == NULL)
			goto nomem;
	}
	if (html_r && (lf = find_text(&w, "text/html")) != NULL) {
		if (leaf_text(lf, SIZE_MAX, &b, NULL) < 0 ||
		    mx_buf_reserve(&b, 0) < 0 ||
		    (*html_r = mx_buf_steal(&b)) == NULL)
			goto nomem;
	}
	goto out;
nomem:
	if (text_r) {
		free(*text_r);
		*text_r = NULL;
	}
	rc = mx_error_set(err, MX_ERR_NOMEM, "decoding bodies");
out:
	mx_buf_free(&b);
	walk_free(&w);
	mx_hdrs_free(&h);
	return rc;
}

int mx_mime_part(const char *raw, size_t len, const char *part_id,
		 char **data_r, size_t *len_r, struct mx_error *err)
{
	struct mx_hdrs h = {0};
	struct walk w = {0};
	const struct leaf *lf = NULL;
	struct mx_buf b = {0};
	int rc = MX_OK;

	*data_r = NULL;
	*len_r = 0;
	if (raw == NULL)
		len = 0;
	if (mx_hdrs_parse(raw ? raw : "", len, &h) < 0)
		goto nomem;
	/* The same walk as mx_mime_parse(): its part ids are these. */
	walk_message(&w, raw ? raw : "", len, &h);
	if (w.nomem)
		goto nomem;
	for (size_t i = 0; i < w.n && lf == NULL; i++)
		if (w.v[i].part.part_id &&
		    strcmp(w.v[i].part.part_id, part_id) == 0)
			lf = &w.v[i];
	if (lf == NULL) {
		rc = mx_error_set(err, MX_ERR_NOTFOUND, "no part %s", part_id);
		goto out;
	}
	if (lf->cte == CTE_BASE64) {
		if (mx_base64_append(&b, lf->body ? lf->body : "", lf->body_len) < 0)
			goto nomem;
	} else if (lf->cte == CTE_QP) {
		if (mx_qp_append(&b, lf->body ? lf->body : "", lf->body_len,
				 false) < 0)
			goto nomem;
	} else if (mx_buf_append(&b, lf->body ? lf->body : "", lf->body_len) < 0) {
		goto nomem;
	}
	*len_r = b.len;
	if (mx_buf_reserve(&b, 1) < 0 || (*data_r = mx_buf_steal(&b)) == NULL)
		goto nomem;
	goto out;
nomem:
	*len_r = 0;
	rc = mx_error_set(err, MX_ERR_NOMEM, "decoding part %s", part_id);
out:
	mx_buf_free(&b);
	walk_free(&w);
	mx_hdrs_free(&h);
	return rc;
}

void mx_mime_identity(const char *raw, size_t len, uint8_t out[32])
{
	static const char *const names[] = {
		"Message-ID", "Date", "From", "Subject", "To",
	};
	struct mx_hdrs h = {0};
	const struct mx_hdr *f;
	struct mx_buf b = {0};
	size_t i;
	bool ok;

	/*
	 * Out of memory there is no sensible identity; the digest of the
	 * empty string keeps the function total and the caller's retry
	 * will do better.
	 */
	ok = mx_hdrs_parse(raw ? raw : "", raw ? len : 0, &h) == 0;
	for (i = 0; ok && i < MX_ARRAY_SIZE(names); i++) {
		f = mx_hdrs_get(&h, names[i]);
		ok = mx_buf_puts(&b, names[i]) == 0 &&
		     mx_buf_append(&b, ":", 1) == 0 &&
		     (f == NULL ||
		      mx_unfold_append(&b, f->value, f->value_len) == 0) &&
		     mx_buf_append(&b, "", 1) == 0;
	}
	mx_sha256(ok ? b.data : "", ok ? b.len : 0, out);
	mx_buf_free(&b);
	mx_hdrs_free(&h);
}

/* Subjects. */

static const char *const reply_prefixes[] = {
	"re", "fwd", "fw", "aw", "sv", "wg", "vs", "antw", "ref", "rif",
	"tr", "odp", "res", "enc",
};

/*
 * Length of a reply/forward prefix ("Re:", "Re[2]:", "Fwd :") at S, or 0.
 */
static size_t reply_prefix(const char *s, size_t len)
{
	size_t i, k, n;

	for (k = 0; k < MX_ARRAY_SIZE(reply_prefixes); k++) {
		n = strlen(reply_prefixes[k]);
		if (len <= n || strncasecmp(s, reply_prefixes[k], n) != 0)
			continue;
		i = n;
		if (i < len && (s[i] == '[' || s[i] == '(')) {
			char close = s[i] == '[' ? ']' : ')';

			i++;
			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
			if (i >= len || s[i] != close)
				continue;
			i++;
		}
		while (i < len && (s[i] == ' ' || s[i] == '\t'))
			i++;
		if (i < len && s[i] == ':')
			return i + 1;
		/* The full-width colon of CJK mailers. */
		if (i + 3 <= len && memcmp(s + i, "\xef\xbc\x9a", 3) == 0)
			return i + 3;
	}
	return 0;
}

char *mx_subject_normalize(const char *subject, bool *is_reply_r)
{
	struct mx_buf d = {0}, l = {0};
	const char *s, *e, *close;
	char *r = NULL;
	bool reply = false;
	size_t n;

	if (is_reply_r)
		*is_reply_r = false;
	if (subject == NULL)
		subject = "";
	if (mx_decode_header_append(&d, subject, strlen(subject), NULL) < 0 ||
	    mx_buf_reserve(&d, 0) < 0)
		goto out;
	s = d.data;
	e = d.data + d.len;
	for (;;) {
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (s < e && *s == '[' &&
		    (close = memchr(s, ']', (size_t)(e - s))) != NULL &&
		    close - s <= 64) {
			s = close + 1;
			continue;
		}
		n = reply_prefix(s, (size_t)(e - s));
		if (n == 0)
			break;
		s += n;
		reply = true;
	}
	if (mx_buf_reserve(&l, (size_t)(e - s)) < 0 ||
	    mx_utf8_lower_append(&l, s, (size_t)(e - s)) < 0)
		goto out;
	if (collapse(l.data, l.len, SIZE_MAX, &r) < 0)
		goto out;
	/* An empty subject normalizes to "". */
	if (r == NULL && (r = strdup("")) == NULL)
		goto out;
	if (is_reply_r)
		*is_reply_r = reply;
out:
	mx_buf_free(&d);
	mx_buf_free(&l);
	return r;
}
