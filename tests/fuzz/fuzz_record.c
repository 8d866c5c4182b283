/*
 * libFuzzer target for the store's record decoders (src/lib/store/
 * record.c, and the outbox entries of src/lib/send/outbox_entry.c): the
 * input is a record's value as LMDB would hand it back, given to every
 * decoder (account, folder, message, location, outbox entry).  What
 * decodes must encode again, and that encoding must decode to the same
 * record (its encoding is byte for byte the same).  The outbox codec is
 * static, so outbox_entry.c is included here.
 */
#include "send/outbox_entry.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ENC, decoded with DECODE and encoded again, must give ENC back. */
#define ROUND_TRIP(type, decode, encode, free_fn, enc, len)                  \
	do {                                                                 \
		type r2;                                                     \
		size_t len2 = 0;                                             \
		char *enc2;                                                  \
                                                                             \
		if (decode(enc, len, &r2, &err) != MX_OK)                    \
			abort();                                             \
		enc2 = encode(&r2, &len2);                                   \
		if (enc2 == NULL || len2 != len || memcmp(enc, enc2, len))   \
			abort();                                             \
		free(enc2);                                                  \
		free_fn(&r2);                                                \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct mx_error err = {0};
	struct mx_account a;
	struct mx_folder f;
	struct mx_msg m;
	struct mx_loc l = {0};
	struct mx_ob_entry e;
	uint8_t lbuf[4096];
	char *enc, idstr[17];
	size_t len = 0, n;
	uint64_t id;

	if (mx_account_decode(s, size, &a, &err) == MX_OK) {
		(void)mx_account_from(&a);
		enc = mx_account_encode(&a, &len);
		if (enc == NULL)
			abort();
		ROUND_TRIP(struct mx_account, mx_account_decode,
			   mx_account_encode, mx_account_free, enc, len);
		free(enc);
		mx_account_free(&a);
	}
	if (mx_folder_decode(s, size, &f, &err) == MX_OK) {
		enc = mx_folder_encode(&f, &len);
		if (enc == NULL)
			abort();
		ROUND_TRIP(struct mx_folder, mx_folder_decode,
			   mx_folder_encode, mx_folder_free, enc, len);
		free(enc);
		mx_folder_free(&f);
	}
	if (mx_msg_decode(s, size, &m, &err) == MX_OK) {
		enc = mx_msg_encode(&m, &len);
		if (enc == NULL)
			abort();
		ROUND_TRIP(struct mx_msg, mx_msg_decode, mx_msg_encode,
			   mx_msg_free, enc, len);
		free(enc);
		free(mx_msg_to_json(&m, 2));
		mx_msg_free(&m);
	}
	if (entry_decode(data, size, &e, &err) == MX_OK) {
		bool ok;
		json_t *o = entry_to_json(&e, &ok);
		char *d1, *d2;

		/* A decoded entry must be storable again (outbox updates
		 * rewrite it). */
		if (!ok || (d1 = json_dumps(o, JSON_COMPACT)) == NULL)
			abort();
		json_decref(o);
		mx_ob_entry_free(&e);
		if (entry_decode(d1, strlen(d1), &e, &err) != MX_OK)
			abort();
		o = entry_to_json(&e, &ok);
		d2 = json_dumps(o, JSON_COMPACT);
		if (!ok || d2 == NULL || strcmp(d1, d2) != 0)
			abort();
		json_decref(o);
		free(d1);
		free(d2);
		mx_ob_entry_free(&e);
	}
	if (mx_loc_decode(data, size, &l) == 0) {
		n = mx_loc_encode(&l, lbuf, sizeof(lbuf));
		/* Keywords stop at a NUL byte; the rest must come back. */
		if (size <= sizeof(lbuf) &&
		    (n < 20 || n > size || memcmp(lbuf, data, n) != 0))
			abort();
		free(l.keywords);
	}
	/* Message ids as typed by users ("mxsync show ID"). */
	if (size <= 32) {
		char txt[33];

		memcpy(txt, data, size);
		txt[size] = '\0';
		if (mx_msg_id_parse(txt, &id) == 0) {
			mx_msg_id_str(id, idstr);
			if (mx_msg_id_parse(idstr, &id) != 0)
				abort();
		}
	}
	return 0;
}
