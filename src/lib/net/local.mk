MX_NET_SOURCES = src/lib/net/net.h src/lib/net/interrupt.h \
	src/lib/net/tls.c
libmxsync_internal_la_SOURCES += $(MX_NET_SOURCES)
