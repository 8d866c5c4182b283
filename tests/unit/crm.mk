# The CRM layer's linking rules (src/lib/crm/link.c): one test a rule of
# doc/crm.md.
check_PROGRAMS += tests/unit/test_crm
tests_unit_test_crm_SOURCES = tests/unit/test_crm.c
tests_unit_test_crm_CFLAGS = $(MX_UNIT_CFLAGS)
tests_unit_test_crm_LDADD = $(MX_UNIT_LDADD) $(LMDB_LIBS) $(JANSSON_LIBS)
TESTS += tests/unit/test_crm
