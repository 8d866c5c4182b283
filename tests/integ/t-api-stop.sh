#!/bin/sh
# mxsyncd's HTTP API while the daemon stops: after SIGTERM, while a sync
# job is still stuck on a server that stalls mid-session (faultproxy.py in
# front of hostileimap.py), every request is answered 503 unavailable with
# Retry-After, /v1/health says 503 too, a long-poll in progress ends,
# and the daemon still exits within its shutdown deadline.  The 503
# answer is checked against the spec through prism.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"

[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
api_tools_check || skip_all "the contract tools are not installed"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log

tool_start "$T/h" hostileimap.py --scenario normal || bail_out "hostileimap"
HPORT=$TOOL_PORT
# every connection stalls after the server's first 400 bytes (mid-session)
tool_start "$T/fp" faultproxy.py --mode schedule --to "127.0.0.1:$HPORT" \
    --fault '*=stall:s2c:400:60000' --log "$T/fp.log" || bail_out "faultproxy"
printf 'pw\n' > "$T/h.pw"
run_ok "account h behind a proxy that stalls the server mid-session" mx account add h \
    --imap "imap://u@127.0.0.1:$TOOL_PORT" --password-file "$T/h.pw" --insecure-plaintext --timeout 60
api_conf || bail_out "api_conf"
api_token admin --admin >/dev/null || bail_out "token"; KA=$API_TOKEN
api_daemon_start || bail_out "mxsyncd did not start"
api_prism_start "$T/prism" || bail_out "prism did not start"
# the daemon's job is now stuck reading from the stalled server
i=0
while [ $i -lt 100 ] && ! grep -q stall "$T/fp.log" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
grep -q stall "$T/fp.log"; ok $? "the proxy stalls the daemon's session"
sleep 0.5
api_req GET "$API_URL/v1/health" -; is "$API_STATUS" 200 "before SIGTERM: health 200"
# a long-poll waiting when the signal comes
( curl -s -o "$T/lp.body" -w '%{http_code}' --max-time 40 -H "Authorization: Bearer $KA" \
      "$API_URL/v1/events?after=999999999&wait=30" > "$T/lp.code" 2>/dev/null ) &
LP=$!
sleep 0.5
t0=$(api_now_ms)
kill -TERM "$DPID"
sleep 0.3
api_req GET "$PRISM_URL/v1/accounts" "$KA"
is "$API_STATUS $(api_code)" "503 unavailable" "after SIGTERM: GET /v1/accounts 503 unavailable"
is "$(api_header sl-violations)" "" "the 503 is valid against the spec"
like "$(api_header retry-after)" '^[0-9]+$' "with Retry-After ($(api_header retry-after))"
api_req POST "$API_URL/v1/accounts/1/sync" "$KA"
is "$API_STATUS $(api_code)" "503 unavailable" "a write too: 503, nothing started"
api_req GET "$API_URL/v1/health" -
is "$API_STATUS" 503 "health: 503 while stopping"
wait "$LP"
lpc=$(cat "$T/lp.code")
lpt=$(($(api_now_ms) - t0))
like "$lpc" '^(200|503)$' "the waiting long-poll was answered ($lpc) when the daemon began to stop"
ok "$([ "$lpt" -lt 20000 ] && echo 0 || echo 1)" "and not held until its 30 s wait ran out (${lpt} ms)"
dsi=0
while d_alive && [ $dsi -lt 150 ]; do sleep 0.1; dsi=$((dsi + 1)); done
d_alive; isnt $? 0 "mxsyncd exited (after the stuck job was interrupted)"
wait "$DPID" 2>/dev/null; DPID=
like "$(cat "$DLOG")" 'shutting down' "the log says it shut down"
done_testing
