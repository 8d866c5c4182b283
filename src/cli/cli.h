/* mxsync command-line interface: one file per subcommand. */
#ifndef MX_CLI_H
#define MX_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mxsync/mxsync.h"

/* Exit codes (documented in doc/mxsync.1). */
enum {
	MX_EXIT_OK = 0,
	MX_EXIT_FAIL = 1,       /* other failure */
	MX_EXIT_USAGE = 2,      /* bad command line */
	MX_EXIT_NOTFOUND = 3,   /* no such account, folder or message */
	MX_EXIT_TEMP = 4,       /* network / server trouble: retry later */
	MX_EXIT_AUTH = 5,       /* credentials rejected */
	MX_EXIT_STORE = 6,      /* local store or disk problem */
	MX_EXIT_PARTIAL = 7,    /* some folders failed, the rest synced */
	MX_EXIT_SECURITY = 8,   /* TLS verification or plaintext refused */
	MX_EXIT_EXPIRED = 9,    /* event cursor older than the retained feed */
	MX_EXIT_INTERRUPTED = 130
};

struct cli {
	const char *data_dir; /* -d, NULL = default */
	const char *prog;
	bool may_create;      /* cli_open may create the store (account) */
};

int cli_account(struct cli *c, int argc, char **argv);
int cli_account_discover(struct cli *c, int argc, char **argv); /* discover.c */
int cli_providers(struct cli *c, int argc, char **argv);
int cli_sync(struct cli *c, int argc, char **argv);
int cli_status(struct cli *c, int argc, char **argv);
int cli_ls(struct cli *c, int argc, char **argv);
int cli_show(struct cli *c, int argc, char **argv);
int cli_flag(struct cli *c, int argc, char **argv);
int cli_move(struct cli *c, int argc, char **argv);
int cli_export(struct cli *c, int argc, char **argv);
int cli_events(struct cli *c, int argc, char **argv);
int cli_send(struct cli *c, int argc, char **argv);   /* send.c */
int cli_outbox(struct cli *c, int argc, char **argv); /* send.c */
int cli_modes(struct cli *c, int argc, char **argv);  /* modes.c */
int cli_token(struct cli *c, int argc, char **argv);  /* token.c */
int cli_contact(struct cli *c, int argc, char **argv); /* contact.c */

/* Prints "mxsync: <detail>" and returns the exit code for ERR. */
int cli_fail(const struct mx_error *err);
int cli_exit_code(enum mx_err code);
/* Opens the store or prints the error; returns NULL on failure. */
struct mx_store *cli_open(struct cli *c, int *exit_r);
/* Prints V (a json_t *) indented, with a newline, or FALLBACK if it
 * cannot be encoded. */
void cli_print_json(const void *v, const char *fallback);
/* Prints the JSON text ENC and a newline, with DEL and C1 controls
 * escaped (mx_json_term_safe()); ENC as is when memory runs out. */
void cli_print_json_text(const char *enc);
/* True if ARG is -h or --help. */
bool cli_is_help(const char *arg);

/* args.c */
/* The largest --timeout in seconds any subcommand takes (an hour). */
#define CLI_TIMEOUT_MAX 3600

/* Parses VAL, the value of option OPT of subcommand CMD, as a decimal
 * number from LO to HI (mx_parse_u64()); on anything else prints
 * "mxsync: CMD: OPT: 'VAL' is not a number from LO to HI" and returns
 * false. */
bool cli_number(const char *cmd, const char *opt, const char *val,
		uint64_t lo, uint64_t hi, uint64_t *v_r);
/* S escaped for a terminal by mx_term_escape() (one line: newlines
 * escaped too), "" for NULL.  The result lives in one of 8 rotating static
 * buffers: valid until 8 more calls, enough for one printf(). */
const char *cli_safe(const char *s);
/* Writes the N bytes at S to F escaped for a terminal, keeping newlines
 * and tabs (message text, logs). */
void cli_put_text(FILE *f, const char *s, size_t n);

#endif
