# Accounts: settings, URLs, loading and saving, token refresh, lifecycle;
# the provider presets.
MX_ACCOUNT_SOURCES = src/lib/account/account.h src/lib/account/account.c \
	src/lib/account/presets.h src/lib/account/presets.c
libmxsync_internal_la_SOURCES += $(MX_ACCOUNT_SOURCES)
