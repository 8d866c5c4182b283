MX_SYNC_SOURCES = src/lib/sync/sync.h src/lib/sync/sync.c \
	src/lib/sync/api.c src/lib/sync/export.c \
	src/lib/sync/pop3sync.c src/lib/sync/changes.c \
	src/lib/sync/ingest.h src/lib/sync/ingest.c \
	src/lib/sync/query.h src/lib/sync/query.c
libmxsync_internal_la_SOURCES += $(MX_SYNC_SOURCES)
