bin_PROGRAMS += src/cli/mxsync
src_cli_mxsync_SOURCES = src/cli/cli.h src/cli/main.c src/cli/account.c \
	src/cli/sync.c src/cli/status.c src/cli/ls.c src/cli/show.c \
	src/cli/flag.c src/cli/export.c src/cli/events.c \
	src/cli/discover.c src/cli/send.c src/cli/args.c \
	src/cli/modes.c src/cli/token.c \
	src/cli/contact.c
src_cli_mxsync_LDADD = libmxsync-internal.la
