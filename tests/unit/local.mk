if HAVE_CHECK
MX_UNIT_LDADD = libmxsync-internal.la $(CHECK_LIBS)
MX_UNIT_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
# Each module adds its test program here:
#   check_PROGRAMS += tests/unit/test_X
#   tests_unit_test_X_SOURCES = tests/unit/test_X.c
#   tests_unit_test_X_CFLAGS = $(MX_UNIT_CFLAGS)
#   tests_unit_test_X_LDADD = $(MX_UNIT_LDADD)
#   TESTS += tests/unit/test_X
include tests/unit/util.mk
include tests/unit/mime.mk
include tests/unit/net.mk
include tests/unit/store.mk
include tests/unit/events.mk
include tests/unit/auth.mk
include tests/unit/secrets.mk
include tests/unit/send.mk
include tests/unit/discover.mk
include tests/unit/pop3.mk
include tests/unit/config.mk
include tests/unit/imap_guard.mk
include tests/unit/imap_replies.mk
include tests/unit/gmail.mk
include tests/unit/api.mk
include tests/unit/crm.mk
endif
