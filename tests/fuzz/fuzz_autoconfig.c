/*
 * libFuzzer target for the autoconfig parser (src/lib/discover/
 * autoconfig.c) and the SRV answer parser (discover.c): both read bytes
 * from the network.  Whatever is accepted must be a usable server.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "discover/discover.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mx_discovery d = {0};
	struct mx_buf log = {0};
	struct mx_error err;

	if (mx_autoconfig_parse((const char *)data, size, "a.b@example.org",
				"fuzz", 0, &d, &log, &err) == MX_OK) {
		for (size_t i = 0; i < d.n; i++)
			if (!mx_disc_valid_host(d.v[i].host) ||
			    d.v[i].port == 0 || d.v[i].tls == MX_TLS_NONE)
				abort();
	}
	(void)mx_srv_parse(data, size, "_imaps._tcp.example.org", "imap",
			   MX_TLS_IMPLICIT, "example.org", &d, &log);
	mx_discovery_sort(&d);
	mx_discovery_free(&d);
	mx_buf_free(&log);
	return 0;
}
