# Server discovery from an e-mail address (RFC 6186 SRV, autoconfig XML).
MX_DISCOVER_SOURCES = src/lib/discover/discover.h \
	src/lib/discover/discover.c src/lib/discover/autoconfig.c
libmxsync_internal_la_SOURCES += $(MX_DISCOVER_SOURCES)
