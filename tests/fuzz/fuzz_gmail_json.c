/*
 * libFuzzer target for what the Gmail API sends to src/backends/
 * gmail_json.c: the decoders of users.messages.list/get (metadata and
 * raw), users.messages.send's answer, users.history.list, users.labels
 * list/create, Google's error bodies, and a Retry-After header.  The
 * first byte chooses:
 *   bits 0-2  the decoder (7: the error mapper)
 *   bits 3-5  for the error mapper, the HTTP status (401 403 404 429 500
 *             503 400 409); for history, the start id (0 or 2^bit);
 *             for raw, the cap (16 << n bytes); for a batch, N - 1
 *   bit 6     a batch answer (multipart/mixed, boundary "B") for N calls
 *             on the ids m1..mN instead of all the above
 * then comes the body.  Whatever comes back must keep the contract of
 * gmail_api.h: on success every id is valid and every label name clean;
 * on failure the output is empty and the error has a detail.
 */
#include <stdlib.h>
#include <string.h>

#include "backends/gmail_api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_labels(const struct mx_gmail_labels_of *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (!mx_gmail_id_valid(l->v[i]))
			abort();
}

static void check_ref(const struct mx_gmail_ref *r)
{
	if (!mx_gmail_id_valid(r->id) || !mx_gmail_id_valid(r->thread_id))
		abort();
}

static void check_err(int rc, const struct mx_error *err)
{
	if (rc == MX_OK || err->detail[0] == '\0' ||
	    (rc == MX_ERR_PROTOCOL && !mx_term_safe(err->detail)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = {401, 403, 404, 429, 500, 503, 400, 409};
	const char *body = (const char *)data + 1;
	struct mx_error err = {0};
	unsigned opt, arg;
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	opt = data[0] & 7;
	arg = (data[0] >> 3) & 7;
	len = size - 1;
	if (data[0] & 0x40) {
		static const char *const ids[] = {"m1", "m2", "m3", "m4",
						  "m5", "m6", "m7", "m8"};
		struct mx_gmail_batch_item it[8];

		rc = mx_gmail_parse_batch("multipart/mixed; boundary=B", body,
					  len, ids, arg + 1, it, &err);
		for (size_t i = 0; i <= arg; i++) {
			if (rc != MX_OK && (it[i].rc != 0 ||
					    it[i].msg.from != NULL))
				abort();
			if (rc == MX_OK && it[i].rc == MX_OK &&
			    strcmp(it[i].msg.id, ids[i]) != 0)
				abort();
			if (rc == MX_OK && it[i].rc != MX_OK &&
			    it[i].err.detail[0] == '\0')
				abort();
		}
		if (rc != MX_OK)
			check_err(rc, &err);
		mx_gmail_batch_free(it, arg + 1);
		return 0;
	}
	switch (opt) {
	case 0: {
		struct mx_gmail_list_page p;

		rc = mx_gmail_parse_list(body, len, &p, &err);
		if (rc == MX_OK) {
			for (size_t i = 0; i < p.n; i++)
				check_ref(&p.v[i]);
			if (p.next_page_token && !mx_term_safe(p.next_page_token))
				abort();
		} else {
			check_err(rc, &err);
			if (p.v != NULL || p.next_page_token != NULL)
				abort();
		}
		mx_gmail_list_page_free(&p);
		break;
	}
	case 1: {
		struct mx_gmail_msg m;

		rc = mx_gmail_parse_msg(body, len, &m, &err);
		if (rc == MX_OK) {
			if (!mx_gmail_id_valid(m.id) ||
			    !mx_gmail_id_valid(m.thread_id) ||
			    m.internal_date_ms < 0 ||
			    (m.from != NULL && !mx_term_safe(m.from)))
				abort();
			check_labels(&m.labels);
		} else {
			check_err(rc, &err);
			if (m.from != NULL || m.labels.v != NULL)
				abort();
		}
		mx_gmail_msg_free(&m);
		break;
	}
	case 2: {
		struct mx_gmail_ref r;

		rc = mx_gmail_parse_ref(body, len, &r, &err);
		if (rc == MX_OK)
			check_ref(&r);
		else
			check_err(rc, &err);
		break;
	}
	case 3: {
		struct mx_buf raw = {0};
		size_t max = (size_t)16 << arg;

		rc = mx_gmail_parse_raw(body, len, max, &raw, &err);
		if (rc == MX_OK ? raw.len > max : raw.len != 0)
			abort();
		if (rc != MX_OK)
			check_err(rc, &err);
		mx_buf_free(&raw);
		break;
	}
	case 4: {
		struct mx_gmail_history_page h;
		uint64_t start = arg ? (uint64_t)1 << (arg * 9) : 0;

		rc = mx_gmail_parse_history(body, len, start, &h, &err);
		if (rc == MX_OK) {
			if (h.history_id < start)
				abort();
			for (size_t i = 0; i < h.n; i++) {
				check_ref(&h.v[i].msg);
				check_labels(&h.v[i].labels);
			}
		} else {
			check_err(rc, &err);
			if (h.v != NULL || h.next_page_token != NULL)
				abort();
		}
		mx_gmail_history_page_free(&h);
		break;
	}
	case 5: {
		struct mx_gmail_label_list l;

		rc = mx_gmail_parse_labels(body, len, &l, &err);
		if (rc == MX_OK) {
			for (size_t i = 0; i < l.n; i++)
				if (!mx_gmail_id_valid(l.v[i].id) ||
				    !mx_term_safe(l.v[i].name))
					abort();
		} else {
			check_err(rc, &err);
			if (l.v != NULL)
				abort();
		}
		mx_gmail_label_list_free(&l);
		break;
	}
	case 6: {
		struct mx_gmail_label one;
		uint64_t ms;
		char *z;

		rc = mx_gmail_parse_label(body, len, &one, &err);
		if (rc == MX_OK ? !mx_term_safe(one.name) : one.name != NULL)
			abort();
		mx_gmail_label_free(&one);
		z = malloc(len + 1);
		if (z == NULL)
			return 0;
		memcpy(z, body, len);
		z[len] = '\0';
		if (mx_gmail_retry_after(z, 784111777, &ms) == 0 &&
		    ms > 86400000)
			abort();
		free(z);
		break;
	}
	default: {
		enum mx_gmail_method m =
			(enum mx_gmail_method)(len % MX_GMAIL_METHOD_COUNT);
		enum mx_gmail_action a;

		a = mx_gmail_map_error(m, statuses[arg], body, len, &err);
		if (err.code == MX_OK || err.detail[0] == '\0' ||
		    !mx_term_safe(err.detail) ||
		    (a == MX_GMAIL_REFRESH && statuses[arg] != 401))
			abort();
		break;
	}
	}
	return 0;
}
