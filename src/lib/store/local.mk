MX_STORE_SOURCES = src/lib/store/store.h src/lib/store/store.c \
	src/lib/store/record.c src/lib/store/guard.c
libmxsync_internal_la_SOURCES += $(MX_STORE_SOURCES)
