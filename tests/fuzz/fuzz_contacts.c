/*
 * libFuzzer target for what the CRM's contacts are read from (mxsync
 * contact import, PUT /v1/contacts/{id}): each line of the input as a
 * JSON document through mx_contact_check(), which validates and
 * normalizes it (addresses through mx_addr_normalize()).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "crm/contacts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		json_t *c = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
		json_t *out = NULL;
		struct mx_error err;

		if (c && mx_contact_check(c, 1, &out, &err) == MX_OK) {
			/* the stored form checks again as it is */
			json_t *again = NULL;

			if (mx_contact_check(out, 1, &again, &err) != MX_OK)
				__builtin_trap();
			json_decref(again);
		}
		json_decref(out);
		json_decref(c);
		p += n + 1;
	}
	return 0;
}
