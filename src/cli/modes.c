/*
 * `mxsync modes [--json]`: the ways mxsync can reach a mailbox, side by
 * side.  Everything shown comes from the backends' tables (registry:
 * mx_backend_next()): the yes/no facts from the capability bits, the rest
 * from the tables' mode_* phrases.  Nothing here names a backend, so a new
 * backend gets its column by being registered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "backends/backend.h"
#include "cli/cli.h"

/* Text width of one mode's column and of the row labels. */
#define COL_W 30
#define LABEL_W 14

static const char usage[] = "usage: mxsync modes [--json]\n";

static const struct {
	unsigned bit;
	const char *name;
} cap_names[] = {
	{MX_CAP_IDLE, "idle"},
	{MX_CAP_CONDSTORE, "condstore"},
	{MX_CAP_QRESYNC, "qresync"},
	{MX_CAP_MOVE, "move"},
	{MX_CAP_UIDPLUS, "uidplus"},
	{MX_CAP_LABELS, "labels"},
	{MX_CAP_STORES_BODIES, "stores_bodies"},
	{MX_CAP_TWO_WAY_FLAGS, "two_way_flags"},
	{MX_CAP_STORE_FLAGS, "store_flags"},
	{MX_CAP_APPEND, "append"},
	{MX_CAP_SEARCH, "search"},
	{MX_CAP_MODEL_UID, "model_uid"},
	{MX_CAP_MODEL_DROP, "model_drop"},
	{MX_CAP_MODEL_CHANGES, "model_changes"},
	{MX_CAP_FETCH_LIVE, "fetch_live"},
	{MX_CAP_SEND, "send"},
	{MX_CAP_FLAGS_BY_ID, "flags_by_id"},
	{MX_CAP_REMOVE, "remove"},
};

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

/* How a sent message gets to the account's Sent folder: the same rule
 * the outbox applies (doc/internals/backends.md). */
static const char *sent_copy(unsigned caps)
{
	if (caps & MX_CAP_SEND)
		return "filed by the provider";
	if ((caps & (MX_CAP_MODEL_UID | MX_CAP_SEARCH | MX_CAP_APPEND)) ==
	    (MX_CAP_MODEL_UID | MX_CAP_SEARCH | MX_CAP_APPEND))
		return "APPENDed once (unless the provider saves it)";
	return "none";
}

static json_t *mode_json(const struct mx_backend_ops *b)
{
	json_t *o = json_object(), *caps = json_array();
	bool push = (b->caps & MX_CAP_IDLE) != 0;

	for (size_t i = 0; i < MX_ARRAY_SIZE(cap_names); i++)
		if (b->caps & cap_names[i].bit)
			json_array_append_new(caps,
					      json_string(cap_names[i].name));
	json_object_set_new(o, "name", json_string(b->name));
	json_object_set_new(o, "title", json_string(b->title));
	json_object_set_new(o, "description", json_string(or_dash(b->description)));
	json_object_set_new(o, "push", json_boolean(push));
	json_object_set_new(o, "new_mail", json_sprintf("%s: %s",
			    push ? "push" : "poll", or_dash(b->mode_new_mail)));
	json_object_set_new(o, "two_way_flags",
			    json_boolean(b->caps & MX_CAP_TWO_WAY_FLAGS));
	json_object_set_new(o, "folders", json_string(or_dash(b->mode_folders)));
	json_object_set_new(o, "sends_by", json_string(
			    b->caps & MX_CAP_SEND ? "the backend" : "SMTP"));
	json_object_set_new(o, "sent_copy", json_string(sent_copy(b->caps)));
	json_object_set_new(o, "stores_bodies",
			    json_boolean(b->caps & MX_CAP_STORES_BODIES));
	json_object_set_new(o, "stored", json_string(or_dash(b->mode_stored)));
	json_object_set_new(o, "offline", json_string(or_dash(b->mode_offline)));
	json_object_set_new(o, "limits", json_string(or_dash(b->mode_limits)));
	json_object_set_new(o, "caps", caps);
	return o;
}

/* Copies into OUT (COL_W + 1 bytes) the next piece of *S that fits in
 * COL_W columns, broken at a space when there is one; advances *S. */
static void next_piece(const char **s, char *out)
{
	const char *p = *s;
	size_t n = strlen(p), cut = n;

	if (n > COL_W) {
		cut = COL_W;
		while (cut > 0 && p[cut] != ' ')
			cut--;
		if (cut == 0)
			cut = COL_W;
	}
	memcpy(out, p, cut);
	out[cut] = '\0';
	p += cut;
	while (*p == ' ')
		p++;
	*s = p;
}

/* Prints LINE (an mx_buf of fixed-width cells) without its trailing
 * blanks, and empties it. */
static void flush_line(struct mx_buf *line)
{
	size_t n = line->len;

	while (n > 0 && line->data[n - 1] == ' ')
		n--;
	printf("%.*s\n", (int)n, line->data ? line->data : "");
	mx_buf_reset(line);
}

/* One row: LABEL, then the field KEY (a string or a yes/no) of each mode
 * in ARR, each wrapped in its column. */
static int print_row(json_t *arr, const char *label, const char *key)
{
	size_t n = json_array_size(arr);
	const char **rest = calloc(n ? n : 1, sizeof(*rest));
	struct mx_buf line = {0};
	char piece[COL_W + 1];
	bool more = true;
	int rc = -1;

	if (rest == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_object_get(json_array_get(arr, i), key);

		rest[i] = json_is_boolean(v) ? (json_is_true(v) ? "yes" : "no")
					     : or_dash(json_string_value(v));
	}
	for (bool first = true; more; first = false) {
		more = false;
		if (mx_buf_printf(&line, "%-*s", LABEL_W, first ? label : ""))
			goto out;
		for (size_t i = 0; i < n; i++) {
			next_piece(&rest[i], piece);
			if (mx_buf_printf(&line, "  %-*s", COL_W, piece))
				goto out;
			if (*rest[i])
				more = true;
		}
		flush_line(&line);
	}
	rc = 0;
out:
	mx_buf_free(&line);
	free(rest);
	return rc;
}

int cli_modes(struct cli *c, int argc, char **argv)
{
	static const struct {
		const char *label, *key;
	} rows[] = {
		{"new mail", "new_mail"},   {"two-way flags", "two_way_flags"},
		{"folders", "folders"},     {"sends by", "sends_by"},
		{"sent copy", "sent_copy"}, {"stored", "stored"},
		{"offline", "offline"},     {"limits", "limits"},
	};
	const struct mx_backend_ops *b = NULL;
	struct mx_buf line = {0};
	bool json = false;
	int rc = MX_EXIT_FAIL;
	json_t *arr;

	(void)c;
	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			fputs(usage, stdout);
			return MX_EXIT_OK;
		}
		if (strcmp(argv[i], "--json") != 0) {
			fprintf(stderr, "mxsync: modes: unknown option '%s'\n%s",
				argv[i], usage);
			return MX_EXIT_USAGE;
		}
		json = true;
	}
	arr = json_array();
	if (arr == NULL)
		goto out;
	while ((b = mx_backend_next(b)) != NULL)
		json_array_append_new(arr, mode_json(b));
	if (json) {
		cli_print_json(arr, "[]");
		rc = MX_EXIT_OK;
		goto out;
	}
	if (mx_buf_printf(&line, "%-*s", LABEL_W, ""))
		goto out;
	for (size_t i = 0; i < json_array_size(arr); i++)
		if (mx_buf_printf(&line, "  %-*s", COL_W,
				  json_string_value(json_object_get(
					  json_array_get(arr, i), "title"))))
			goto out;
	flush_line(&line);
	for (size_t i = 0; i < MX_ARRAY_SIZE(rows); i++)
		if (print_row(arr, rows[i].label, rows[i].key))
			goto out;
	rc = MX_EXIT_OK;
out:
	if (rc != MX_EXIT_OK)
		fputs("mxsync: modes: out of memory\n", stderr);
	mx_buf_free(&line);
	json_decref(arr);
	return rc;
}
