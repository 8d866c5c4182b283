# Secrets at rest (src/lib/secrets): sealing, the key file and $MXSYNC_KEY,
# and sealed account records in the store, each test in a mkdtemp()
# directory.
check_PROGRAMS += tests/unit/test_secrets
tests_unit_test_secrets_SOURCES = tests/unit/test_secrets.c
tests_unit_test_secrets_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_secrets_LDADD = $(MX_UNIT_LDADD) $(LMDB_LIBS) $(JANSSON_LIBS) \
	$(OPENSSL_LIBS)
TESTS += tests/unit/test_secrets
