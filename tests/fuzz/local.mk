# libFuzzer targets (clang, --enable-fuzz).  The library objects of the
# convenience library are built with MX_CFLAGS only, which would leave
# libFuzzer blind to them; so the sources under test are compiled again
# into the target with the fuzzer instrumentation (per-target flags give
# them their own object names).  The rest comes from libmxsync-internal.la.
# Run: tests/fuzz/smoke.sh tests/fuzz/fuzz_mime CORPUS_DIR
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_mime
tests_fuzz_fuzz_mime_SOURCES = tests/fuzz/fuzz_mime.c $(MX_MIME_SOURCES) \
	src/lib/util/mutf7.c
tests_fuzz_fuzz_mime_CFLAGS = $(AM_CFLAGS) -g \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
tests_fuzz_fuzz_mime_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_mime_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
# tests/fuzz/smoke.sh tests/fuzz/fuzz_autoconfig tests/fuzz/autoconfig
noinst_PROGRAMS += tests/fuzz/fuzz_autoconfig
tests_fuzz_fuzz_autoconfig_SOURCES = tests/fuzz/fuzz_autoconfig.c \
	$(MX_DISCOVER_SOURCES)
tests_fuzz_fuzz_autoconfig_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_autoconfig_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_autoconfig_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/autoconfig
# The composer's JSON front end (src/lib/send/compose*.c); seeds in
# tests/fuzz/compose_json/.
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_compose_json
tests_fuzz_fuzz_compose_json_SOURCES = tests/fuzz/fuzz_compose_json.c \
	src/lib/send/compose.c src/lib/send/compose_json.c
tests_fuzz_fuzz_compose_json_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_compose_json_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_compose_json_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/smoke.sh tests/fuzz/compose_json/full.json \
	tests/fuzz/compose_json/minimal.json
# Protocol clients over the in-memory transport of fake_net.c, which
# replaces src/lib/net/tls.c at link time (see its header).  Each target
# reads what the server says; seeds in tests/fuzz/<name>/.
MX_FUZZ_NET = tests/fuzz/fake_net.c tests/fuzz/fake_net.h
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_pop3
tests_fuzz_fuzz_pop3_SOURCES = tests/fuzz/fuzz_pop3.c $(MX_FUZZ_NET) \
	src/backends/pop3.c
tests_fuzz_fuzz_pop3_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_pop3_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_pop3_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/pop3
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_smtp
tests_fuzz_fuzz_smtp_SOURCES = tests/fuzz/fuzz_smtp.c $(MX_FUZZ_NET) \
	src/lib/send/smtp.c
tests_fuzz_fuzz_smtp_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_smtp_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_smtp_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/smtp
# mxsyncd's configuration file (src/daemon/config.c).
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_config
tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz_config.c \
	src/daemon/config.c
tests_fuzz_fuzz_config_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_config_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_config_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/config
# The store's record decoders (src/lib/store/record.c; the target includes
# src/lib/send/outbox_entry.c for the outbox entries).
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_record
tests_fuzz_fuzz_record_SOURCES = tests/fuzz/fuzz_record.c \
	src/lib/store/record.c
tests_fuzz_fuzz_record_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_record_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_record_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/record
# What OAuth2 servers and webhook endpoints send back; the targets include
# src/lib/auth/oauth.c and src/lib/events/webhook.c to reach their static
# parsers.
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_oauth tests/fuzz/fuzz_webhook
tests_fuzz_fuzz_oauth_SOURCES = tests/fuzz/fuzz_oauth.c
tests_fuzz_fuzz_oauth_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_oauth_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_oauth_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
tests_fuzz_fuzz_webhook_SOURCES = tests/fuzz/fuzz_webhook.c
tests_fuzz_fuzz_webhook_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_webhook_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_webhook_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/oauth tests/fuzz/webhook
# The IMAP backend as it drives libetpan (src/backends/imap.c), over
# fake_net.c like POP3 and SMTP.
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_imap
tests_fuzz_fuzz_imap_SOURCES = tests/fuzz/fuzz_imap.c $(MX_FUZZ_NET) \
	src/backends/imap.c
tests_fuzz_fuzz_imap_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_imap_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_imap_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/imap
# What the Gmail API answers (src/backends/gmail_json.c: list, message,
# raw, history, labels, error bodies, Retry-After); seeds in
# tests/fuzz/gmail/.
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_gmail_json
tests_fuzz_fuzz_gmail_json_SOURCES = tests/fuzz/fuzz_gmail_json.c \
	src/backends/gmail_json.c
tests_fuzz_fuzz_gmail_json_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_gmail_json_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_gmail_json_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/gmail
# The HTTP API's request decoders (src/api/: query, router, ids, the
# values of parameters); seeds in tests/fuzz/api/.  The API is built in,
# as for mxsyncd.
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_api
tests_fuzz_fuzz_api_SOURCES = tests/fuzz/fuzz_api.c $(MX_API_SOURCES)
tests_fuzz_fuzz_api_CPPFLAGS = $(MX_API_CPPFLAGS)
tests_fuzz_fuzz_api_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_api_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_api_LDADD = libmxsync-internal.la $(MX_DEPLIBS) \
	$(LIBMICROHTTPD_LIBS)
endif
EXTRA_DIST += tests/fuzz/api/list.txt tests/fuzz/api/raw.txt \
	tests/fuzz/api/bad.txt tests/fuzz/api/events.txt \
	tests/fuzz/api/traversal.txt
# POST /v1/send's multipart/form-data parser (src/api/multipart.c); seeds
# in tests/fuzz/multipart/.
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_multipart
tests_fuzz_fuzz_multipart_SOURCES = tests/fuzz/fuzz_multipart.c \
	src/api/multipart.c src/api/multipart.h
tests_fuzz_fuzz_multipart_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_multipart_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_multipart_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/multipart/two-parts.txt \
	tests/fuzz/multipart/quoted-boundary.txt
# The CRM's contacts as they are imported and PUT (src/lib/crm/
# contacts.c); seeds in tests/fuzz/contacts/.
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_contacts
tests_fuzz_fuzz_contacts_SOURCES = tests/fuzz/fuzz_contacts.c \
	src/lib/crm/contacts.c src/lib/mime/addr.c
tests_fuzz_fuzz_contacts_CFLAGS = $(tests_fuzz_fuzz_mime_CFLAGS)
tests_fuzz_fuzz_contacts_LDFLAGS = $(tests_fuzz_fuzz_mime_LDFLAGS)
tests_fuzz_fuzz_contacts_LDADD = libmxsync-internal.la $(MX_DEPLIBS)
endif
EXTRA_DIST += tests/fuzz/contacts/full.jsonl tests/fuzz/contacts/idn.jsonl
