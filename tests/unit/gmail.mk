# Gmail API client (src/backends/gmail_api.c, gmail_json.c): every decoder
# with valid and hostile answers, quota and retry arithmetic, and the
# retry rules against a scripted HTTP server thread on loopback.
check_PROGRAMS += tests/unit/test_gmail
tests_unit_test_gmail_SOURCES = tests/unit/test_gmail.c
tests_unit_test_gmail_CFLAGS = $(MX_UNIT_CFLAGS) -pthread
tests_unit_test_gmail_LDADD = $(MX_UNIT_LDADD) $(LIBCURL_LIBS) \
	$(JANSSON_LIBS) $(OPENSSL_LIBS) $(LIBETPAN_LIBS) -lpthread
TESTS += tests/unit/test_gmail
