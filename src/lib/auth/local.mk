MX_AUTH_SOURCES = src/lib/auth/oauth.h src/lib/auth/oauth.c
libmxsync_internal_la_SOURCES += $(MX_AUTH_SOURCES)
