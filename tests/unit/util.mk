check_PROGRAMS += tests/unit/test_util
tests_unit_test_util_SOURCES = tests/unit/test_util.c
tests_unit_test_util_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_util_LDADD = $(MX_UNIT_LDADD)
TESTS += tests/unit/test_util

check_PROGRAMS += tests/unit/test_presets
tests_unit_test_presets_SOURCES = tests/unit/test_presets.c
tests_unit_test_presets_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_presets_LDADD = $(MX_UNIT_LDADD)
TESTS += tests/unit/test_presets
