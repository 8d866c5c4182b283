# The HTTP API (src/api/: router, query, rate limit; no server started),
# its tokens and permission rule (src/lib/users/) and the message cursor
# (src/lib/sync/query.c).  The API is part of mxsyncd, not of the
# library: its sources are built in here.
check_PROGRAMS += tests/unit/test_api
tests_unit_test_api_SOURCES = tests/unit/test_api.c $(MX_API_SOURCES)
tests_unit_test_api_CPPFLAGS = $(MX_API_CPPFLAGS)
tests_unit_test_api_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_api_LDADD = $(MX_UNIT_LDADD) $(LMDB_LIBS) $(JANSSON_LIBS) \
	$(LIBMICROHTTPD_LIBS)
TESTS += tests/unit/test_api
# POST /v1/send's multipart/form-data parser (src/api/multipart.c).
check_PROGRAMS += tests/unit/test_multipart
tests_unit_test_multipart_SOURCES = tests/unit/test_multipart.c \
	src/api/multipart.c src/api/multipart.h
tests_unit_test_multipart_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_multipart_LDADD = $(MX_UNIT_LDADD)
TESTS += tests/unit/test_multipart
