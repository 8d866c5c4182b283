# Events (src/lib/events): feed, retention, webhook signing and control,
# each test on a fresh LMDB store in a mkdtemp() directory.
check_PROGRAMS += tests/unit/test_events
tests_unit_test_events_SOURCES = tests/unit/test_events.c
tests_unit_test_events_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_events_LDADD = $(MX_UNIT_LDADD) $(LMDB_LIBS) $(JANSSON_LIBS) \
	$(OPENSSL_LIBS)
TESTS += tests/unit/test_events

# Webhook delivery end to end (tests/integ/t-webhook.sh): a helper that runs
# endpoints from the command line against a store.  Built for the tests
# only, never installed.
check_PROGRAMS += tests/integ/mx-webhook-run
tests_integ_mx_webhook_run_SOURCES = tests/integ/mx-webhook-run.c
tests_integ_mx_webhook_run_LDADD = libmxsync-internal.la $(LMDB_LIBS) \
	$(JANSSON_LIBS)
TESTS += tests/integ/t-webhook.sh
EXTRA_DIST += tests/integ/t-webhook.sh tests/integ/tools/webhook_rx.py
