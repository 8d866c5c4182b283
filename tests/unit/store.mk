# Store (src/lib/store) and account URL parsing (src/lib/account/account.c):
# each test works on a fresh LMDB store in a mkdtemp() directory.
check_PROGRAMS += tests/unit/test_store
tests_unit_test_store_SOURCES = tests/unit/test_store.c
tests_unit_test_store_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_store_LDADD = $(MX_UNIT_LDADD) $(LMDB_LIBS) $(JANSSON_LIBS)
TESTS += tests/unit/test_store

check_PROGRAMS += tests/unit/test_account
tests_unit_test_account_SOURCES = tests/unit/test_account.c
tests_unit_test_account_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_account_LDADD = $(MX_UNIT_LDADD) $(LMDB_LIBS) $(JANSSON_LIBS)
TESTS += tests/unit/test_account

# The message summaries in the date index and the listing that reads
# them (src/lib/store/record.c, src/lib/sync/query.c).
check_PROGRAMS += tests/unit/test_query
tests_unit_test_query_SOURCES = tests/unit/test_query.c
tests_unit_test_query_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_query_LDADD = $(MX_UNIT_LDADD) $(LMDB_LIBS) $(JANSSON_LIBS)
TESTS += tests/unit/test_query
