MX_CRM_SOURCES = src/lib/crm/link.h src/lib/crm/link.c
libmxsync_internal_la_SOURCES += $(MX_CRM_SOURCES)
