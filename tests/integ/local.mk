# Integration tests: shell scripts (TAP) against a real Dovecot they start.
EXTRA_DIST += tests/integ
