# Network transport (src/lib/net): real TLS servers on 127.0.0.1 in threads.
check_PROGRAMS += tests/unit/test_net
tests_unit_test_net_SOURCES = tests/unit/test_net.c
tests_unit_test_net_CFLAGS = $(MX_UNIT_CFLAGS) -pthread
tests_unit_test_net_LDADD = $(MX_UNIT_LDADD) $(OPENSSL_LIBS) $(LIBETPAN_LIBS) -lpthread
TESTS += tests/unit/test_net
