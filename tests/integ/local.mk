# Integration tests: TAP shell scripts against a real Dovecot they start on
# loopback (tests/integ/lib/), run by automake's tap-driver.
MX_INTEG_TESTS = \
	tests/integ/t-harness.sh \
	tests/integ/t-sync.sh \
	tests/integ/t-tls.sh \
	tests/integ/t-crash.sh \
	tests/integ/t-drop.sh
TESTS += $(MX_INTEG_TESTS)
EXTRA_DIST += tests/integ
