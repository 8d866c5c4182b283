#!/bin/sh
# OAuth2 accounts against a real Dovecot (oauth2 passdb validating JWTs
# locally) and a fake token endpoint (tools/fake_idp.py, RFC 6749): login by
# AUTHENTICATE OAUTHBEARER, refresh ahead of expiry, rotation, revoked
# refresh token (final, no retry loop in the daemon), token endpoint down
# (temporary), and no token in clear text on disk or in any output.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
. "$D/env"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 4 "$T/gen" >/dev/null
dc_deliver "$D" alice@example.test "$T/gen" >/dev/null

# the fake token endpoint (lib/fake.sh), on the same port when restarted
idp_control() {
    "$MX_PY" -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST")).read()' \
        "http://127.0.0.1:$IDP_PORT/control" "$1"
}
refreshes() { grep -c '"grant_type": "refresh_token"' "$IDP_LOG" 2>/dev/null || echo 0; }

idp_start "$T/idp" "$D" --rotate --lifetime 6 --revoke refresh-bob \
    --refresh refresh-alice=alice@example.test --refresh refresh-bob2=bob@example.test ||
    bail_out "fake_idp did not start"
printf 'refresh-alice\n' > "$T/rt-alice"
printf 'refresh-bob\n' > "$T/rt-bob"
printf 'test-secret\n' > "$T/client-secret"
add_oauth() { # NAME USER REFRESHFILE
    mx account add "$1" --imap "imaps://$2@127.0.0.1:$DC_IMAPS_PORT" \
        --ca-file "$DC_CA" --oauth-token-url "http://127.0.0.1:$IDP_PORT/token" \
        --oauth-client-id test-client --oauth-client-secret-file "$T/client-secret" \
        --refresh-token-file "$3"
}
run_ok "add an OAuth2 account" add_oauth o alice@example.test "$T/rt-alice"
like "$(mx account list --json)" '"credentials": "oauth2"' "account list says oauth2"

mx -D imap sync o >"$T/s1.out" 2>"$T/s1.err"; rc=$?
is "$rc" 0 "sync logs in with an access token from the refresh grant"
like "$(cat "$T/s1.out")" " 4 new messages" "and fetches the mail"
like "$(cat "$T/s1.err")" "AUTHENTICATE OAUTHBEARER <redacted>" "AUTHENTICATE OAUTHBEARER (trace redacted)"
is "$(refreshes)" 1 "one refresh request"
like "$(cat "$IDP_LOG")" '"client_auth": "basic"' "client credentials sent with HTTP Basic"

mx sync o >/dev/null 2>&1
is "$(refreshes)" 1 "a second sync within the token's lifetime does not refresh"
sleep 5
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed 9 2 "$T/gen2" >/dev/null
dc_deliver "$D" alice@example.test "$T/gen2" >/dev/null
out=$(mx sync o 2>&1); rc=$?
is "$rc" 0 "after the token's expiry the sync still works"
like "$out" " 2 new messages" "and picks up the new mail"
is "$(refreshes)" 2 "because the token was refreshed ahead of expiry"

# revoked refresh token: final
run_ok "add a second account with a revoked refresh token" add_oauth r bob@example.test "$T/rt-bob"
mx sync r >"$T/r.out" 2>"$T/r.err"; rc=$?
is "$rc" 5 "revoked refresh token: exit 5 (authentication)"
like "$(cat "$T/r.err")" "invalid_grant" "the endpoint's invalid_grant is shown"

# the daemon: revoked -> auth_failed without a retry loop; endpoint back -> idle
printf '[daemon]\nbackoff_min = 1\nbackoff_max = 2\n' > "$MXD/mxsync.conf"
"$MXSYNCD" -d "$MXD" </dev/null >"$T/daemon.log" 2>&1 &
dpid=$!
at_exit "kill -TERM $dpid 2>/dev/null; wait $dpid 2>/dev/null"
state_of() { mx status "$1" --json | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)[0].get("daemon",{}).get("state",""))'; }
i=0; while [ "$(state_of o)" != idle ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
is "$(state_of o)" idle "daemon: o idle"
# the endpoint answers 503 for a while, the token expires, Dovecot drops
# the session: o must back off (temporary), not fail for good
idp_control '{"fail": 1000}'
sleep 6
dc_stop "$D" >/dev/null; dc_start "$D" >/dev/null
i=0; while [ "$(state_of o)" != backoff ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
is "$(state_of o)" backoff "daemon: token endpoint failing (503) -> o in backoff, not auth_failed"
idp_control '{"fail": 0}'
i=0; while [ "$(state_of o)" != idle ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
is "$(state_of o)" idle "endpoint back -> o idle again (token refreshed)"
i=0; while [ "$(state_of r)" != auth_failed ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
is "$(state_of r)" auth_failed "revoked token -> r in auth_failed"
like "$(mx events --json | grep account.state)" '"state":"auth_failed".*invalid_grant' "account.state event with the reason"
n1=$(grep -c '"status": 400' "$IDP_LOG")
sleep 4
n2=$(grep -c '"status": 400' "$IDP_LOG")
is "$n2" "$n1" "no further requests for the revoked token"
# a new refresh token, then `account reauth`: the daemon takes it back
printf 'refresh-bob2\n' > "$T/rt-bob2"
run_ok "account edit with a new refresh token" mx account edit r --refresh-token-file "$T/rt-bob2"
run_ok "account reauth logs in once with it" mx account reauth r
i=0; while [ "$(state_of r)" != idle ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
is "$(state_of r)" idle "the daemon leaves auth_failed by itself after reauth"
kill -TERM $dpid; wait $dpid 2>/dev/null

# token endpoint down: temporary
idp_stop "$T/idp" >/dev/null
sleep 2   # let the access token of 'o' expire (lifetime 6 s, refreshed 120 s ahead)
mx sync o >"$T/d.out" 2>"$T/d.err"; rc=$?
is "$rc" 4 "token endpoint down: exit 4 (temporary)"
like "$(cat "$T/d.err")" "refused|connect" "the error says the endpoint is unreachable"

# the first token by the device grant (RFC 8628): an account added with a
# password is switched to OAuth2
idp_start "$T/idp" "$D" --lifetime 600 || bail_out "fake_idp did not restart"
MXSYNC_PASSWORD=alicepw mx account add dv --imap "imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT" \
    --ca-file "$DC_CA" >/dev/null
run_ok "account oauth --device" mx account oauth dv --device \
    --device-url "http://127.0.0.1:$IDP_PORT/device" \
    --token-url "http://127.0.0.1:$IDP_PORT/token" \
    --oauth-client-id test-client --oauth-client-secret-file "$T/client-secret"
like "$MX_OUT" "enter the code" "the user is told where to go and which code to enter"
is "$(mx account list --json | "$MX_PY" -c 'import json,sys; print([a["credentials"] for a in json.load(sys.stdin) if a["name"] == "dv"][0])')" oauth2 "dv now logs in with OAuth2"
mx -D imap sync dv >"$T/dv.out" 2>"$T/dv.err"; rc=$?
is "$rc" 0 "and syncs"
like "$(cat "$T/dv.err")" "AUTHENTICATE OAUTHBEARER" "with AUTHENTICATE OAUTHBEARER"

# lifecycle: disable, enable, edit, remove keeps the mail, --purge drops it
run_ok "account disable" mx account disable dv
run_fails "a disabled account does not sync" mx sync dv
like "$MX_OUT" "disabled" "and says why"
run_ok "account enable" mx account enable dv
run_ok "syncs again" mx sync dv
run_ok "account edit --display-name" mx account edit dv --display-name "Alice Support"
like "$(mx account list --json)" '"display_name": "Alice Support"' "display name stored"
id=$(mx ls dv --json | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
run_ok "account remove (keeps the mail)" mx account remove dv
run_ok "its messages are still readable by id" mx show "$id" --raw
run_fails "the account itself is gone" mx status dv
MXSYNC_PASSWORD=alicepw mx account add pg --imap "imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT" \
    --ca-file "$DC_CA" >/dev/null
mx sync pg >/dev/null 2>&1
n_before=$(mdb_stat -s messages "$MXD" | sed -n 's/.*Entries: //p')
run_ok "account remove --purge" mx account remove pg --purge
n_after=$(mdb_stat -s messages "$MXD" | sed -n 's/.*Entries: //p')
ok $([ "$n_after" -lt "$n_before" ]; echo $?) "purge deleted the account's messages ($n_before -> $n_after records)"

# no token or secret in clear text anywhere
leak=0
for s in refresh-alice refresh-bob2 test-secret alicepw; do
    if grep -a -q -- "$s" "$MXD"/*.mdb; then leak=1; diag "$s found in the store"; fi
done
is "$leak" 0 "refresh tokens and the client secret are not in the store in clear"
tok=$("$MX_PY" "$MX_TOOLS/mint.py" alice@example.test 60 "$D/keys/secret.raw" | cut -c1-20)
outs=$(cat "$T"/*.out "$T"/*.err "$T/daemon.log"; mx account list --json; mx status --json; mx events --json)
unlike "$outs" "refresh-alice|refresh-bob2|test-secret|eyJhbGciOi" "no token or secret in any output or log"
done_testing
