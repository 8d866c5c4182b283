sbin_PROGRAMS = src/daemon/mxsyncd
src_daemon_mxsyncd_SOURCES = src/daemon/daemon.h src/daemon/main.c \
	src/daemon/config.c $(MX_API_SOURCES)
src_daemon_mxsyncd_CPPFLAGS = $(MX_API_CPPFLAGS)
src_daemon_mxsyncd_LDADD = libmxsync-internal.la $(LIBMICROHTTPD_LIBS)
