MX_MIME_SOURCES = src/lib/mime/mime.h src/lib/mime/mime_int.h \
	src/lib/mime/mime.c src/lib/mime/header.c \
	src/lib/mime/charset.c src/lib/mime/addr.c
libmxsync_internal_la_SOURCES += $(MX_MIME_SOURCES)
