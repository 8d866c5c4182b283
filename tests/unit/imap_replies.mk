# The IMAP backend against canned server replies, over the in-memory
# transport of the fuzz targets (which replaces src/lib/net/tls.c).
check_PROGRAMS += tests/unit/test_imap_replies
tests_unit_test_imap_replies_SOURCES = tests/unit/test_imap_replies.c \
	tests/fuzz/fake_net.c tests/fuzz/fake_net.h
tests_unit_test_imap_replies_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/fuzz
tests_unit_test_imap_replies_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_imap_replies_LDADD = $(MX_UNIT_LDADD) $(MX_DEPLIBS)
TESTS += tests/unit/test_imap_replies
