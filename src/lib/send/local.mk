# Sending (src/lib/send): SMTP client, message composition, outbox.
# Each part appends its sources here.
MX_SEND_SOURCES =
libmxsync_internal_la_SOURCES += $(MX_SEND_SOURCES)
