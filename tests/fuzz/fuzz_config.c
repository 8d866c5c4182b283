/*
 * libFuzzer target for mxsyncd's configuration parser (src/daemon/
 * config.c, mxsync.conf(5)): the input is the file.  mx_config_load()
 * reads a path, so each input is written to one temporary file made at
 * start-up (removed at exit).  Whatever loads must be consistent.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[4096];

static void cleanup(void)
{
	if (path[0] != '\0')
		unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mx_config cfg;
	struct mx_error err = {0};
	FILE *fp;

	if (path[0] == '\0') {
		const char *tmp = getenv("TMPDIR");
		int fd;

		snprintf(path, sizeof(path), "%s/mx-fuzz-conf.XXXXXX",
			 tmp && *tmp ? tmp : "/tmp");
		if ((fd = mkstemp(path)) < 0)
			abort();
		close(fd);
		atexit(cleanup);
	}
	fp = fopen(path, "w");
	if (fp == NULL || fwrite(data, 1, size, fp) != size || fclose(fp))
		abort();
	if (mx_config_load(path, &cfg, &err) != MX_OK) {
		/* The parser must say what and where. */
		if (err.detail[0] == '\0')
			abort();
		return 0;
	}
	if (cfg.workers < 1 || cfg.nwebhooks > MX_MAX_WEBHOOKS ||
	    cfg.naccts > MX_MAX_ACCT_CFG)
		abort();
	for (size_t i = 0; i < cfg.nwebhooks; i++) {
		const struct mx_webhook_cfg *w = &cfg.webhooks[i];

		if (w->name == NULL || w->url == NULL || w->secret == NULL ||
		    *w->secret == '\0')
			abort();
		for (size_t j = 0; j < w->ntypes; j++)
			if (w->types[j] == NULL || *w->types[j] == '\0')
				abort();
	}
	for (size_t i = 0; i < cfg.naccts; i++) {
		const struct mx_acct_cfg *a = &cfg.accts[i];

		if (mx_config_account(&cfg, a->name) == NULL)
			abort();
		for (size_t j = 0; j < a->nfolders; j++)
			if (a->folders[j] == NULL || *a->folders[j] == '\0')
				abort();
	}
	mx_config_free(&cfg);
	return 0;
}
