MX_SECRETS_SOURCES = src/lib/secrets/secrets.h src/lib/secrets/secrets.c
libmxsync_internal_la_SOURCES += $(MX_SECRETS_SOURCES)
