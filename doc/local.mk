dist_man_MANS += doc/mxsync.1 doc/mxsyncd.8 doc/mxsync.conf.5
EXTRA_DIST += doc/internals/store.md doc/internals/sync.md \
	doc/internals/accounts.md doc/internals/discovery.md \
	doc/internals/send.md doc/internals/pop3.md doc/internals/net.md \
	doc/internals/push.md doc/internals/imap-guard.md \
	doc/internals/layers.md \
	doc/internals/backends.md doc/internals/events.md \
	doc/internals/api.md doc/openapi.yaml \
	contrib/mxsyncd.service
EXTRA_DIST += doc/api.md doc/crm.md
