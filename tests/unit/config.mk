# The daemon's configuration file (src/daemon/config.c, built in here: it
# is part of mxsyncd, not of the library), each test in a mkdtemp()
# directory.
check_PROGRAMS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c src/daemon/config.c
tests_unit_test_config_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_config_LDADD = $(MX_UNIT_LDADD) $(LMDB_LIBS) $(JANSSON_LIBS) \
	$(OPENSSL_LIBS)
TESTS += tests/unit/test_config
