# Unit tests for send (appended by that module).

# SMTP client (src/lib/send/smtp.c): encoder, reply parser, scripted
# sessions (tests/unit/test_smtp.c); against Dovecot submission and
# tests/integ/tools/smtpsink.py through the driver mx-smtp-send
check_PROGRAMS += tests/unit/test_smtp
tests_unit_test_smtp_SOURCES = tests/unit/test_smtp.c
tests_unit_test_smtp_CFLAGS = $(MX_UNIT_CFLAGS) -pthread
tests_unit_test_smtp_LDADD = $(MX_UNIT_LDADD) -lpthread
TESTS += tests/unit/test_smtp
check_PROGRAMS += tests/integ/mx-smtp-send
tests_integ_mx_smtp_send_SOURCES = tests/integ/mx-smtp-send.c
tests_integ_mx_smtp_send_LDADD = libmxsync-internal.la
