MX_USERS_SOURCES = src/lib/users/tokens.h src/lib/users/tokens.c
libmxsync_internal_la_SOURCES += $(MX_USERS_SOURCES)
