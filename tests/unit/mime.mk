# Tests of the MIME module (src/lib/mime) and modified UTF-7.
check_PROGRAMS += tests/unit/test_mime tests/unit/test_mutf7 \
	tests/unit/test_mime_corpus tests/unit/test_mime_split
tests_unit_test_mime_SOURCES = tests/unit/test_mime.c
tests_unit_test_mime_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_mime_LDADD = $(MX_UNIT_LDADD)
tests_unit_test_mutf7_SOURCES = tests/unit/test_mutf7.c
tests_unit_test_mutf7_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_mutf7_LDADD = $(MX_UNIT_LDADD)
tests_unit_test_mime_corpus_SOURCES = tests/unit/test_mime_corpus.c
tests_unit_test_mime_corpus_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_mime_corpus_LDADD = $(MX_UNIT_LDADD)
tests_unit_test_mime_split_SOURCES = tests/unit/test_mime_split.c
tests_unit_test_mime_split_CFLAGS = $(MX_UNIT_CFLAGS)
# Counts libetpan's parses: which messages take the fast splitter.
tests_unit_test_mime_split_LDFLAGS = -Wl,--wrap=mailmime_parse
tests_unit_test_mime_split_LDADD = $(MX_UNIT_LDADD)
TESTS += tests/unit/test_mime tests/unit/test_mutf7 \
	tests/unit/test_mime_corpus tests/unit/test_mime_split
