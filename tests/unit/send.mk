# Unit tests for send (appended by that module).

# SMTP client (src/lib/send/smtp.c): encoder, reply parser, scripted
# sessions (tests/unit/test_smtp.c); against Dovecot submission and
# tests/integ/tools/smtpsink.py through the driver mx-smtp-send
# (tests/integ/t-smtp.sh).  The driver is built for the tests only.
check_PROGRAMS += tests/unit/test_smtp
tests_unit_test_smtp_SOURCES = tests/unit/test_smtp.c
tests_unit_test_smtp_CFLAGS = $(MX_UNIT_CFLAGS) -pthread
tests_unit_test_smtp_LDADD = $(MX_UNIT_LDADD) -lpthread
TESTS += tests/unit/test_smtp
check_PROGRAMS += tests/integ/mx-smtp-send
tests_integ_mx_smtp_send_SOURCES = tests/integ/mx-smtp-send.c
tests_integ_mx_smtp_send_LDADD = libmxsync-internal.la
TESTS += tests/integ/t-smtp.sh
EXTRA_DIST += tests/integ/t-smtp.sh tests/integ/tools/smtpsink.py

# Composer (src/lib/send/compose.c, compose_json.c): output read back by
# src/lib/mime and by Python's email package (tests/unit/compose_check.py).
check_PROGRAMS += tests/unit/test_compose
tests_unit_test_compose_SOURCES = tests/unit/test_compose.c
tests_unit_test_compose_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_compose_LDADD = $(MX_UNIT_LDADD) $(JANSSON_LIBS) \
	$(OPENSSL_LIBS)
TESTS += tests/unit/test_compose
EXTRA_DIST += tests/unit/compose_check.py

# Outbox bookkeeping (src/lib/send/outbox_*.c) on a real store; sending is
# tested end to end by tests/integ/t-send.sh.
check_PROGRAMS += tests/unit/test_outbox
tests_unit_test_outbox_SOURCES = tests/unit/test_outbox.c
tests_unit_test_outbox_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_outbox_LDADD = $(MX_UNIT_LDADD) $(JANSSON_LIBS) \
	$(OPENSSL_LIBS) $(LMDB_LIBS)
TESTS += tests/unit/test_outbox
