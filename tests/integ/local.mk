# Integration tests: TAP shell scripts against a real Dovecot they start on
# loopback (tests/integ/lib/), run by automake's tap-driver.  The longest
# come first, so that make -j runs the short ones beside them.
MX_INTEG_TESTS = \
	tests/integ/t-soak.sh \
	tests/integ/t-faults.sh \
	tests/integ/t-purge.sh \
	tests/integ/t-hostile.sh \
	tests/integ/t-harness.sh \
	tests/integ/t-sync.sh \
	tests/integ/t-tls.sh \
	tests/integ/t-crash.sh \
	tests/integ/t-drop.sh \
	tests/integ/t-daemon.sh \
	tests/integ/t-secrets.sh \
	tests/integ/t-oauth.sh \
	tests/integ/t-fulldisk.sh \
	tests/integ/t-pop3.sh \
	tests/integ/t-fakegmail.sh \
	tests/integ/t-gmail-api.sh \
	tests/integ/t-discover.sh \
	tests/integ/t-send.sh \
	tests/integ/t-auth.sh \
	tests/integ/t-coredump.sh \
	tests/integ/t-config.sh \
	tests/integ/t-cli.sh \
	tests/integ/t-deadline.sh \
	tests/integ/t-store.sh \
	tests/integ/t-cases.sh \
	tests/integ/t-push.sh \
	tests/integ/t-modes.sh \
	tests/integ/t-gmail-send.sh \
	tests/integ/t-layers.sh \
	tests/integ/t-contacts.sh \
	tests/integ/t-crm-link.sh \
	tests/integ/t-api.sh \
	tests/integ/t-api-oauth.sh \
	tests/integ/t-api-contract.sh \
	tests/integ/t-api-contacts.sh \
	tests/integ/t-api-msg.sh \
	tests/integ/t-api-acct.sh \
	tests/integ/t-api-wake.sh
# POST /v1/send and /v1/outbox (issue 10, write side)
MX_INTEG_TESTS += tests/integ/t-api-send.sh tests/integ/t-api-stop.sh
MX_INTEG_TESTS += tests/integ/t-api-webhooks.sh
TESTS += $(MX_INTEG_TESTS)
EXTRA_DIST += $(MX_INTEG_TESTS) \
	tests/integ/lib/README.md tests/integ/lib/dovecot.sh \
	tests/integ/lib/fake.sh tests/integ/lib/mx.sh tests/integ/lib/tap.sh \
	tests/integ/lib/api.sh tests/integ/tools/api_check.py \
	tests/integ/tools/dcwait.py tests/integ/tools/deliver.py \
	tests/integ/tools/fakeimap.py tests/integ/tools/imaptool.py \
	tests/integ/tools/mint.py tests/integ/tools/hostileimap.py \
	tests/integ/tools/daemon_check.py tests/integ/tools/fakepop3.py \
	tests/integ/tools/dnsfixture.py tests/integ/tools/httpsfixture.py \
	tests/integ/tools/fakeserver.py tests/integ/tools/scriptserver.py \
	tests/integ/tools/fakegmail.py tests/integ/tools/fake_idp.py \
	tests/integ/tools/faultproxy.py \
	tests/contract/package.json tests/contract/package-lock.json \
	scripts/npm-tools.sh \
	$(MX_CASE_FILES)
# Case files of t-cases.sh (format: tests/data/cases/README.md)
MX_CASE_FILES = \
	tests/data/cases/README.md tests/data/cases/lsan.supp \
	tests/data/cases/imap-bye-mid-fetch.case \
	tests/data/cases/imap-drip.case \
	tests/data/cases/imap-exists-lie.case \
	tests/data/cases/imap-expunge-during-fetch.case \
	tests/data/cases/imap-fetch-no-uid.case \
	tests/data/cases/imap-fetch-omitted.case \
	tests/data/cases/imap-garbage-flags.case \
	tests/data/cases/imap-greeting-bye.case \
	tests/data/cases/imap-greeting-half.case \
	tests/data/cases/imap-list-literal.case \
	tests/data/cases/imap-logindisabled.case \
	tests/data/cases/imap-select-no-alert.case \
	tests/data/cases/imap-select-no.case \
	tests/data/cases/imap-short-literal.case \
	tests/data/cases/imap-starttls-injection.case \
	tests/data/cases/imap-starttls.case \
	tests/data/cases/imap-uidvalidity-missing.case \
	tests/data/cases/imap-uidvalidity-zero.case \
	tests/data/cases/imap-unsolicited-fetch.case \
	tests/data/cases/imap-unsolicited-flags.case \
	tests/data/cases/imap-vanished-earlier.case \
	tests/data/cases/pop3-dot-stuffing.case \
	tests/data/cases/pop3-greeting-err.case \
	tests/data/cases/pop3-lone-dot-inside.case \
	tests/data/cases/pop3-lone-dot-late.case \
	tests/data/cases/pop3-retr-err.case \
	tests/data/cases/smtp-421-after-mail.case \
	tests/data/cases/smtp-421-after-rcpt.case \
	tests/data/cases/smtp-ehlo-bare-lines.case \
	tests/data/cases/smtp-greeting-554.case
