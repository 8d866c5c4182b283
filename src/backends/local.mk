MX_BACKEND_SOURCES = src/backends/backend.h src/backends/backend.c \
	src/backends/imap.c \
	src/backends/gmail_send.h src/backends/gmail_send.c \
	src/backends/imap_guard.h src/backends/imap_guard.c \
	src/backends/pop3.h src/backends/pop3.c \
	src/backends/gmail_api.h src/backends/gmail_api.c \
	src/backends/gmail_json.c \
	src/backends/gmail_conn.h src/backends/gmail.c
libmxsync_internal_la_SOURCES += $(MX_BACKEND_SOURCES)
