dist_man_MANS += doc/mxsync.1
EXTRA_DIST += doc/internals/store.md doc/internals/sync.md
