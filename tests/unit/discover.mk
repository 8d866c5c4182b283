# Unit tests for discover (src/lib/discover): the autoconfig XML parser
# and the SRV answer parser on hand-built input; no network.
check_PROGRAMS += tests/unit/test_discover
tests_unit_test_discover_SOURCES = tests/unit/test_discover.c
tests_unit_test_discover_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_discover_LDADD = $(MX_UNIT_LDADD) $(LMDB_LIBS)
TESTS += tests/unit/test_discover
