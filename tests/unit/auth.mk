# OAuth2 client (src/lib/auth): SASL known answers, and the HTTP grants
# against tests/integ/tools/fake_idp.py, which the test starts itself.
check_PROGRAMS += tests/unit/test_oauth
tests_unit_test_oauth_SOURCES = tests/unit/test_oauth.c
tests_unit_test_oauth_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_oauth_LDADD = $(MX_UNIT_LDADD) $(LIBCURL_LIBS) \
	$(JANSSON_LIBS) $(OPENSSL_LIBS) -lpthread
TESTS += tests/unit/test_oauth
EXTRA_DIST += tests/integ/tools/fake_idp.py
