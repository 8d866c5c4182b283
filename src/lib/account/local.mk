# Accounts (doc/internals/accounts.md): account.c add, load, list, save,
# edit; url.c server URLs; settings.c the settings of add and edit;
# token.c OAuth2 token refresh; lifecycle.c removal, purge, generations;
# presets.c the provider presets; oauthflow.c the HTTP API's browser OAuth
# flow.
MX_ACCOUNT_SOURCES = src/lib/account/account.h src/lib/account/account.c \
	src/lib/account/url.c src/lib/account/settings.c \
	src/lib/account/token.c src/lib/account/lifecycle.c \
	src/lib/account/oauthflow.c \
	src/lib/account/presets.h src/lib/account/presets.c
libmxsync_internal_la_SOURCES += $(MX_ACCOUNT_SOURCES)
