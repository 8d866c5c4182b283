/*
 * libFuzzer target for the composer's JSON front end and, through it, the
 * composer's validation and writers: any document that parses is composed
 * to /dev/null.  Attachments given by path are dropped (the fuzzer must
 * not read the file system); inline ones are kept.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "send/compose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	struct mx_compose_req *req = NULL;
	struct mx_compose_out out;
	size_t i;

	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		return 0;
	if (mx_compose_req_from_json((const char *)data, size, &req, NULL) !=
	    MX_OK)
		return 0;
	for (i = 0; i < req->c.natt; i++)
		if (req->atts[i].path != NULL) {
			req->atts[i].path = NULL;
			if (req->atts[i].filename == NULL)
				req->atts[i].filename = "x";
		}
	req->c.from_addr = "fuzz@example.test";
	req->c.from_name = "Fuzz Ünïcode";
	req->c.date = 1700000000;
	if (mx_compose_write(&req->c, devnull, &out, NULL) == MX_OK)
		mx_compose_out_free(&out);
	mx_compose_req_free(&req);
	return 0;
}
