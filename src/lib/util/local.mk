MX_UTIL_SOURCES = src/lib/util/util.h src/lib/util/err.c src/lib/util/util.c \
	src/lib/util/mutf7.h src/lib/util/mutf7.c \
	src/lib/util/http.h src/lib/util/http.c
libmxsync_internal_la_SOURCES += $(MX_UTIL_SOURCES)
