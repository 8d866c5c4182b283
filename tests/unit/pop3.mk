# Unit tests for pop3 (appended by that module).
# POP3 client (src/backends/pop3.c): parsers, and sessions against a
# scripted server thread that sends its replies one byte per write.
check_PROGRAMS += tests/unit/test_pop3
tests_unit_test_pop3_SOURCES = tests/unit/test_pop3.c
tests_unit_test_pop3_CFLAGS = $(MX_UNIT_CFLAGS) -pthread
tests_unit_test_pop3_LDADD = $(MX_UNIT_LDADD) $(OPENSSL_LIBS) \
	$(LIBETPAN_LIBS) -lpthread
TESTS += tests/unit/test_pop3
