# IMAP lexical guard (src/backends/imap_guard.c): every bound at and past
# its limit, fed whole and byte by byte.
check_PROGRAMS += tests/unit/test_imap_guard
tests_unit_test_imap_guard_SOURCES = tests/unit/test_imap_guard.c
tests_unit_test_imap_guard_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_imap_guard_LDADD = $(MX_UNIT_LDADD) $(OPENSSL_LIBS) \
	$(LIBETPAN_LIBS)
TESTS += tests/unit/test_imap_guard
