MX_CRM_SOURCES = src/lib/crm/link.h src/lib/crm/link.c \
	src/lib/crm/contacts.h src/lib/crm/contacts.c
libmxsync_internal_la_SOURCES += $(MX_CRM_SOURCES)
