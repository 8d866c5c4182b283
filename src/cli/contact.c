/* mxsync contact add|edit|rm|list|show|import: the CRM's contacts
 * (doc/crm.md, "Contacts"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "account/account.h"
#include "cli/cli.h"
#include "crm/contacts.h"
#include "crm/timeline.h"

static const char usage[] =
	"usage: mxsync contact add ID --email ADDR [--also ADDR]... [--owner USER]\n"
	"                          [--assign USER]... [--category TAG]...\n"
	"                          [--company DOMAIN] [--workspace WS]\n"
	"                          [--created UNIXTIME]\n"
	"       mxsync contact edit ID [the same options]\n"
	"       mxsync contact rm ID [--hard]\n"
	"       mxsync contact list [--json] [--after ID] [--limit N]\n"
	"       mxsync contact show ID\n"
	"       mxsync contact import FILE|-     (JSON Lines: one contact a line)\n"
	"       mxsync contact link [--account NAME] [--history] [--create]\n"
	"       mxsync contact timeline ID [--json] [--limit N] [--cursor C]\n"
	"Contacts are the CRM's: add creates or replaces ID, edit changes only\n"
	"the options given (--also, --assign and --category replace their\n"
	"lists).  rm keeps the contact, marked deleted, still linked; --hard\n"
	"removes it and keeps its addresses as tombstones, so mail never makes\n"
	"them contacts again.  link decides the links of stored mail again by\n"
	"the rules of doc/crm.md (after contacts changed; --history also links\n"
	"mail from before the account was added, --create makes contacts of\n"
	"unknown external parties).  timeline lists a contact's mail, newest\n"
	"first.\n";

/* Parses the options from ARGV[I..] into C (a JSON object). */
static int options(json_t *c, int i, int argc, char **argv, const char *cmd)
{
	json_t *also = NULL, *assign = NULL, *cats = NULL;

	for (; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		json_t **list = NULL;
		const char *key = NULL;

		if (v == NULL)
			goto bad;
		if (strcmp(o, "--email") == 0)
			key = "email";
		else if (strcmp(o, "--owner") == 0)
			key = "owner";
		else if (strcmp(o, "--company") == 0)
			key = "company";
		else if (strcmp(o, "--workspace") == 0)
			key = "workspace";
		else if (strcmp(o, "--also") == 0)
			list = &also;
		else if (strcmp(o, "--assign") == 0)
			list = &assign;
		else if (strcmp(o, "--category") == 0)
			list = &cats;
		else if (strcmp(o, "--created") == 0) {
			uint64_t t;

			if (!cli_number(cmd, "--created", v, 0, INT64_MAX, &t))
				return MX_EXIT_USAGE;
			json_object_set_new(c, "created", json_integer((json_int_t)t));
			i++;
			continue;
		} else
			goto bad;
		if (key) {
			json_object_set_new(c, key, json_string(v));
		} else {
			if (*list == NULL)
				*list = json_array();
			json_array_append_new(*list, json_string(v));
		}
		i++;
	}
	if (also)
		json_object_set_new(c, "emails", also);
	if (assign)
		json_object_set_new(c, "assigned", assign);
	if (cats)
		json_object_set_new(c, "categories", cats);
	return MX_EXIT_OK;
bad:
	json_decref(also);
	json_decref(assign);
	json_decref(cats);
	fprintf(stderr, "mxsync: %s: bad argument '%s'\n%s", cmd, argv[i],
		usage);
	return MX_EXIT_USAGE;
}

static int put(struct cli *c, int argc, char **argv, bool edit)
{
	const char *cmd = edit ? "contact edit" : "contact add";
	struct mx_store *st;
	struct mx_error err;
	json_t *o;
	bool created;
	int rc = MX_EXIT_OK;

	if (argc < 3 || argv[2][0] == '-') {
		fprintf(stderr, "mxsync: %s: ID is required\n%s", cmd, usage);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	o = json_object();
	if (edit) {
		struct mx_txn t;

		json_decref(o);
		o = NULL;
		rc = mx_txn_begin(st, false, &t, &err);
		if (rc == MX_OK) {
			rc = mx_contact_get(&t, argv[2], &o, &err);
			mx_txn_abort(&t);
		}
		if (rc != MX_OK) {
			rc = cli_fail(&err);
			goto out;
		}
		json_object_del(o, "deleted"); /* edit brings it back */
	}
	json_object_set_new(o, "id", json_string(argv[2]));
	rc = options(o, 3, argc, argv, cmd);
	if (rc != MX_EXIT_OK)
		goto out;
	if (!edit && json_object_get(o, "email") == NULL) {
		fprintf(stderr, "mxsync: %s: --email is required\n%s", cmd, usage);
		rc = MX_EXIT_USAGE;
		goto out;
	}
	if (mx_contact_upsert(st, o, &created, &err) != MX_OK)
		rc = cli_fail(&err);
	else
		fprintf(stderr, "contact %s %s\n", cli_safe(argv[2]),
			created ? "created" : "updated");
out:
	json_decref(o);
	mx_store_close(&st);
	return rc;
}

static int rm(struct cli *c, int argc, char **argv)
{
	struct mx_store *st;
	struct mx_error err;
	bool hard = false;
	const char *id = NULL;
	int rc = MX_EXIT_OK;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--hard") == 0)
			hard = true;
		else if (argv[i][0] != '-' && id == NULL)
			id = argv[i];
		else {
			fprintf(stderr, "mxsync: contact rm: bad argument '%s'\n%s",
				argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	if (id == NULL) {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (mx_contact_delete(st, id, hard, &err) != MX_OK)
		rc = cli_fail(&err);
	else
		fprintf(stderr, "contact %s %s\n", cli_safe(id),
			hard ? "removed (its addresses kept as tombstones)"
			     : "marked deleted (still linked)");
	mx_store_close(&st);
	return rc;
}

static int list_show(struct cli *c, int argc, char **argv, bool show)
{
	const char *after = NULL;
	bool json = show;
	uint64_t limit = 0;
	struct mx_store *st;
	struct mx_error err;
	struct mx_txn t;
	json_t *arr = json_array(), *one = NULL;
	int rc = MX_EXIT_OK;

	if (show && argc != 3) {
		fputs(usage, stderr);
		json_decref(arr);
		return MX_EXIT_USAGE;
	}
	for (int i = 2; !show && i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc)
			after = argv[++i];
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			if (!cli_number("contact list", "--limit", argv[++i], 1,
					1000000, &limit)) {
				json_decref(arr);
				return MX_EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "mxsync: contact list: bad argument "
				"'%s'\n%s", argv[i], usage);
			json_decref(arr);
			return MX_EXIT_USAGE;
		}
	}
	st = cli_open(c, &rc);
	if (st == NULL) {
		json_decref(arr);
		return rc;
	}
	rc = mx_txn_begin(st, false, &t, &err);
	if (rc == MX_OK) {
		rc = show ? mx_contact_get(&t, argv[2], &one, &err)
			  : mx_contact_list(&t, after, (size_t)limit, arr, &err);
		mx_txn_abort(&t);
	}
	if (rc != MX_OK) {
		rc = cli_fail(&err);
	} else if (show) {
		cli_print_json(one, "{}");
		rc = MX_EXIT_OK;
	} else if (json) {
		cli_print_json(arr, "[]");
		rc = MX_EXIT_OK;
	} else {
		json_t *e;
		size_t i;

		json_array_foreach(arr, i, e) {
			json_t *w = json_object_get(e, "workspace");

			printf("%-24s %-32s %s%s\n",
			       cli_safe(json_string_value(json_object_get(e, "id"))),
			       cli_safe(json_string_value(json_object_get(e, "email"))),
			       w ? cli_safe(json_string_value(w)) : "-",
			       json_is_true(json_object_get(e, "deleted"))
				       ? "  (deleted)" : "");
		}
		rc = MX_EXIT_OK;
	}
	json_decref(one);
	json_decref(arr);
	mx_store_close(&st);
	return rc;
}

static int import(struct cli *c, int argc, char **argv)
{
	struct mx_store *st;
	struct mx_error err;
	FILE *fp;
	size_t n = 0;
	int rc = MX_EXIT_OK;

	if (argc != 3) {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	fp = strcmp(argv[2], "-") == 0 ? stdin : fopen(argv[2], "r");
	if (fp == NULL) {
		fprintf(stderr, "mxsync: contact import: %s: %s\n",
			cli_safe(argv[2]), strerror(errno));
		return MX_EXIT_USAGE;
	}
	st = cli_open(c, &rc);
	if (st != NULL) {
		rc = mx_contact_import(st, fp, &n, &err);
		fprintf(stderr, "%zu contacts imported\n", n);
		rc = rc != MX_OK ? cli_fail(&err) : MX_EXIT_OK;
		mx_store_close(&st);
	}
	if (fp != stdin)
		fclose(fp);
	return rc;
}

static int link_cmd(struct cli *c, int argc, char **argv)
{
	struct mx_crm_opts o = {0};
	struct mx_crm_relink_stats s;
	const char *name = NULL;
	uint32_t account_id = 0;
	struct mx_store *st;
	struct mx_error err;
	int rc = MX_EXIT_OK;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--history") == 0)
			o.history = true;
		else if (strcmp(argv[i], "--create") == 0)
			o.auto_create = true;
		else if (strcmp(argv[i], "--account") == 0 && i + 1 < argc)
			name = argv[++i];
		else {
			fprintf(stderr, "mxsync: contact link: bad argument '%s'\n%s",
				argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	if (name) {
		struct mx_account a = {0};

		if (mx_account_load(st, name, &a, &err) != MX_OK) {
			rc = cli_fail(&err);
			goto out;
		}
		account_id = a.id;
		mx_account_free(&a);
	}
	if (mx_crm_relink(st, account_id, &o, &s, &err) != MX_OK)
		rc = cli_fail(&err);
	else {
		printf("%llu messages decided, %llu linked, %llu changed\n",
		       (unsigned long long)s.messages,
		       (unsigned long long)s.linked,
		       (unsigned long long)s.changed);
		for (int i = 1; i < 8; i++)
			if (s.outcomes[i])
				printf("  %-15s %llu\n", mx_crm_outcome_name(i),
				       (unsigned long long)s.outcomes[i]);
	}
out:
	mx_store_close(&st);
	return rc;
}

static int timeline_cmd(struct cli *c, int argc, char **argv)
{
	const char *cursor = NULL;
	uint64_t limit = 50;
	bool json = false;
	struct mx_store *st;
	struct mx_error err;
	struct mx_txn t;
	json_t *arr;
	char *next = NULL;
	int rc = MX_EXIT_OK;

	if (argc < 3 || argv[2][0] == '-') {
		fputs(usage, stderr);
		return MX_EXIT_USAGE;
	}
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--cursor") == 0 && i + 1 < argc)
			cursor = argv[++i];
		else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			if (!cli_number("contact timeline", "--limit", argv[++i], 1,
					10000, &limit))
				return MX_EXIT_USAGE;
		} else {
			fprintf(stderr, "mxsync: contact timeline: bad argument "
				"'%s'\n%s", argv[i], usage);
			return MX_EXIT_USAGE;
		}
	}
	st = cli_open(c, &rc);
	if (st == NULL)
		return rc;
	arr = json_array();
	rc = mx_txn_begin(st, false, &t, &err);
	if (rc == MX_OK) {
		json_t *ct = NULL;

		/* a contact that does not exist is an error, not an empty
		 * timeline (a hard-deleted one has none) */
		rc = mx_contact_get(&t, argv[2], &ct, &err);
		json_decref(ct);
		if (rc == MX_OK)
			rc = mx_crm_timeline(&t, argv[2], cursor, (size_t)limit,
					     arr, &next, &err);
		mx_txn_abort(&t);
	}
	if (rc != MX_OK) {
		rc = cli_fail(&err);
	} else if (json) {
		json_t *o = json_pack("{s:O,s:s?}", "timeline", arr,
				      "next_cursor", next);

		cli_print_json(o, "{}");
		json_decref(o);
	} else {
		json_t *e;
		size_t i;

		json_array_foreach(arr, i, e) {
			const char *subj = json_string_value(
				json_object_get(e, "subject"));

			printf("%s  %-9s %-28s %s\n",
			       json_string_value(json_object_get(e, "message")),
			       json_string_value(json_object_get(e, "role")),
			       cli_safe(json_string_value(json_object_get(e, "from"))),
			       cli_safe(subj ? subj : ""));
		}
		if (next)
			fprintf(stderr, "more: --cursor %s\n", next);
	}
	free(next);
	json_decref(arr);
	mx_store_close(&st);
	return rc;
}

int cli_contact(struct cli *c, int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (sub == NULL || cli_is_help(sub)) {
		fputs(usage, sub ? stdout : stderr);
		return sub ? MX_EXIT_OK : MX_EXIT_USAGE;
	}
	if (strcmp(sub, "add") == 0)
		return put(c, argc, argv, false);
	if (strcmp(sub, "edit") == 0)
		return put(c, argc, argv, true);
	if (strcmp(sub, "rm") == 0)
		return rm(c, argc, argv);
	if (strcmp(sub, "list") == 0)
		return list_show(c, argc, argv, false);
	if (strcmp(sub, "show") == 0)
		return list_show(c, argc, argv, true);
	if (strcmp(sub, "import") == 0)
		return import(c, argc, argv);
	if (strcmp(sub, "link") == 0)
		return link_cmd(c, argc, argv);
	if (strcmp(sub, "timeline") == 0)
		return timeline_cmd(c, argc, argv);
	fprintf(stderr, "mxsync: contact: unknown command '%s'\n%s",
		cli_safe(sub), usage);
	return MX_EXIT_USAGE;
}
