# Sending (src/lib/send): SMTP client, message composition, outbox.
# Each part appends its sources here.
MX_SEND_SOURCES =
MX_SEND_SOURCES += src/lib/send/smtp.h src/lib/send/smtp.c
MX_SEND_SOURCES += src/lib/send/compose.h src/lib/send/compose.c \
	src/lib/send/compose_json.c
MX_SEND_SOURCES += src/lib/send/outbox.h src/lib/send/outbox_int.h \
	src/lib/send/outbox_entry.c src/lib/send/outbox_quota.c \
	src/lib/send/outbox_enqueue.c src/lib/send/outbox_run.c \
	src/lib/send/outbox_admin.c src/lib/send/outbox_idem.c
libmxsync_internal_la_SOURCES += $(MX_SEND_SOURCES)
