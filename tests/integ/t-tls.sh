#!/bin/sh
# Transport security: certificate and host name verification, STARTTLS
# required, no credentials in clear text without the explicit opt-in, and a
# hostile server that talks garbage.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
. "$D/env"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 3 "$T/gen" >/dev/null
dc_deliver "$D" $U "$T/gen" >/dev/null
dc_password "$D" $U > "$T/pw"

# sync_rc NAME -> runs a sync, leaves stderr in $T/err, prints the exit code
sync_rc() { mx sync "$1" >"$T/so" 2>"$T/se"; echo $?; }

# 1. implicit TLS with the test CA
mx account add good --imap "imaps://$U@127.0.0.1:$DC_IMAPS_PORT" \
    --password-file "$T/pw" --ca-file "$DC_CA" >/dev/null
is "$(sync_rc good)" 0 "imaps:// with the right CA syncs"
like "$(cat "$T/so")" " 3 new messages" "and fetched the mail"

# 2. STARTTLS on the plain port
mx account add st --imap "imap://$U@localhost:$DC_IMAP_PORT" \
    --password-file "$T/pw" --ca-file "$DC_CA" >/dev/null
is "$(sync_rc st)" 0 "imap:// upgrades with STARTTLS and syncs (host name localhost)"

# 3. wrong CA
mx account add wrongca --imap "imaps://$U@127.0.0.1:$DC_IMAPS_PORT" \
    --password-file "$T/pw" --ca-file "$DC_WRONG_CA" >/dev/null
is "$(sync_rc wrongca)" 8 "wrong CA: exit code 8 (security refusal)"
like "$(cat "$T/se")" "certificate verify failed" "wrong CA: clear message"
diag "$(cat "$T/se")"

# 4. system CA store (the test CA is not in it)
mx account add sysca --imap "imaps://$U@127.0.0.1:$DC_IMAPS_PORT" \
    --password-file "$T/pw" >/dev/null
is "$(sync_rc sysca)" 8 "unknown issuer with the system CA store is refused"

# 5. certificate for another host name
dc_use_cert "$D" wrongname
dc_restart "$D" >/dev/null || bail_out "restart failed"
. "$D/env"
is "$(sync_rc good)" 8 "certificate for another name: refused"
like "$(cat "$T/se")" "host name mismatch" "host mismatch: clear message"
diag "$(cat "$T/se")"
dc_use_cert "$D" good
dc_restart "$D" >/dev/null || bail_out "restart failed"
. "$D/env"

# 6. STARTTLS stripped by the server (or a man in the middle)
fake_start "$T/f1" --mode nostarttls || bail_out "fakeimap failed"
mx account add stripped --imap "imap://$U@127.0.0.1:$FAKE_PORT" \
    --password-file "$T/pw" --ca-file "$DC_CA" >/dev/null
is "$(sync_rc stripped)" 8 "no STARTTLS offered: refused (exit 8)"
like "$(cat "$T/se")" "does not offer STARTTLS" "STARTTLS stripped: clear message"
unlike "$(cat "$FAKE_LOG")" "LOGIN|AUTHENTICATE" "no credentials were sent to it"
unlike "$(cat "$FAKE_LOG")" "alicepw" "the password never crossed the wire"

# 7. plaintext only with the explicit opt-in
mx account add plain --imap "imap://$U@127.0.0.1:$DC_IMAP_PORT" \
    --password-file "$T/pw" --insecure-plaintext >/dev/null 2>&1
is "$(sync_rc plain)" 0 "--insecure-plaintext: logs in without TLS"
like "$(cat "$T/se")" "without TLS|unencrypted" "and warns about it"

# 8. a server that sends garbage: clean error, no crash, store intact
fake_start "$T/f2" --mode garbage || bail_out "fakeimap failed"
mx account add junk --imap "imap://$U@127.0.0.1:$FAKE_PORT" \
    --password-file "$T/pw" --insecure-plaintext --timeout 5 >/dev/null 2>&1
rc=$(sync_rc junk)
ok $([ "$rc" -ne 0 ] && [ "$rc" -lt 128 ]; echo $?) "garbage server: error exit $rc, no crash"
diag "$(cat "$T/se")"
is "$(sync_rc good)" 0 "store still usable afterwards"

# 9. connection refused and wrong password
mx account add refused --imap "imaps://$U@127.0.0.1:1" --password-file "$T/pw" >/dev/null
is "$(sync_rc refused)" 4 "connection refused: exit 4 (temporary)"
like "$(cat "$T/se")" "refused" "connection refused: clear message"
echo wrongpw > "$T/badpw"
mx account add badpw --imap "imaps://$U@127.0.0.1:$DC_IMAPS_PORT" \
    --password-file "$T/badpw" --ca-file "$DC_CA" >/dev/null
is "$(sync_rc badpw)" 5 "wrong password: exit 5"
like "$(cat "$T/se")" "AUTHENTICATIONFAILED|[Aa]uthentication failed" "wrong password: server's reason shown"
unlike "$(cat "$T/se" "$T/so")" "wrongpw" "the password is not printed"
done_testing
