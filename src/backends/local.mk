MX_BACKEND_SOURCES = src/backends/backend.h src/backends/imap.c
libmxsync_internal_la_SOURCES += $(MX_BACKEND_SOURCES)
