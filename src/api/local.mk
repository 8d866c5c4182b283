# The HTTP API (src/api/), linked into mxsyncd only: the library knows
# nothing of HTTP.  Unit tests and the fuzz target compile the pieces
# they test.
MX_API_SOURCES = src/api/api.h src/api/api_int.h src/api/server.c \
	src/api/router.c src/api/http.c src/api/auth.c src/api/meta.c \
	src/api/accounts.c src/api/messages.c src/api/events.c \
	src/api/metrics.c
# POST /v1/send and /v1/outbox (issue 10, write side).
MX_API_SOURCES += src/api/send.c src/api/outbox.c src/api/multipart.c \
	src/api/multipart.h
MX_API_SOURCES += src/api/oauth.c src/api/contacts.c
MX_API_SOURCES += src/api/webhooks.c
MX_API_CPPFLAGS = $(AM_CPPFLAGS) $(LIBMICROHTTPD_CFLAGS)
