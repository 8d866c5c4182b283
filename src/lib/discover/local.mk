# Server discovery from an e-mail address (RFC 6186 SRV, autoconfig XML).
MX_DISCOVER_SOURCES =
libmxsync_internal_la_SOURCES += $(MX_DISCOVER_SOURCES)
