MX_CRM_SOURCES = src/lib/crm/link.h src/lib/crm/link.c \
	src/lib/crm/contacts.h src/lib/crm/contacts.c \
	src/lib/crm/timeline.h src/lib/crm/timeline.c
libmxsync_internal_la_SOURCES += $(MX_CRM_SOURCES)
