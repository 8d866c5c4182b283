# mxsyncd's configuration parser (src/daemon/config.c), compiled into the
# test as it is not part of the library.
check_PROGRAMS += tests/unit/test_daemon_config
tests_unit_test_daemon_config_SOURCES = tests/unit/test_daemon_config.c \
	src/daemon/config.c
tests_unit_test_daemon_config_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_daemon_config_LDADD = $(MX_UNIT_LDADD) $(MX_DEPLIBS)
TESTS += tests/unit/test_daemon_config
