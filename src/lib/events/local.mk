MX_EVENTS_SOURCES = src/lib/events/events.h src/lib/events/events_int.h \
	src/lib/events/types.h src/lib/events/types.c \
	src/lib/events/acctstate.c \
	src/lib/events/feed.c \
	src/lib/events/webhook.c \
	src/lib/events/endpoints.c
libmxsync_internal_la_SOURCES += $(MX_EVENTS_SOURCES)
