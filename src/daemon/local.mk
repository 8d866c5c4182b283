sbin_PROGRAMS = src/daemon/mxsyncd
src_daemon_mxsyncd_SOURCES = src/daemon/daemon.h src/daemon/main.c \
	src/daemon/config.c
src_daemon_mxsyncd_LDADD = libmxsync-internal.la
