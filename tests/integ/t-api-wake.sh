#!/bin/sh
# mxsyncd wakes long-polls and event streams on commits by other processes
# through its inotify watch on data.mdb (mx_store_watch), not at its next
# tick: with the API's own 1 s fallback re-read turned off
# (MX_API_POLL_MS=3600000), a long-poll (wait=60) is answered with the
# message.new events of an `mxsync sync` run by the CLI (an account the
# daemon does not run: nothing of the daemon's own wrote them); the
# latency is reported, not asserted.  Requests go through the validating
# proxy (prism).
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
api_tools_check || skip_all "prism not installed (scripts/npm-tools.sh)"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log
D=$T/dc
CHK="$MX_TOOLS/api_check.py"
dc_setup "$D" alice@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed t-api-wake 3 "$T/gen" >/dev/null || bail_out "gen-mail.py"
ls "$T/gen" | sed "s|^|$T/gen/|" > "$T/gen.lst"
is "$(dc_deliver "$D" alice@example.test $(sed -n 1,3p "$T/gen.lst") 2>>"$T/deliver.err")" 3 \
    "3 messages for alice"

# The daemon starts with no account, so its loop never commits anything
# of its own; the long-poll's only wake-up is the store watch.  (An
# account added and removed again makes the store.)
mx_add seed "$D" alice@example.test imaps >/dev/null &&
    mx account remove seed --purge >/dev/null
ok $? "a store: account added and removed"
api_token admin --admin >/dev/null || bail_out "token admin"; KA=$API_TOKEN
api_conf rate_limit=0 || bail_out "no free port"
MX_API_POLL_MS=3600000; export MX_API_POLL_MS
api_daemon_start || bail_out "mxsyncd did not start"
unset MX_API_POLL_MS
api_prism_start "$T/prism" || bail_out "prism did not start"

# A cursor after the whole (empty) feed.
api_req GET "$PRISM_URL/v1/events?limit=500" "$KA"
is "$API_STATUS $(api_json 'len(j["events"])')" "200 0" "GET /v1/events: 200, an empty feed"
C=$(api_json 'j["next_cursor"]')

tlp=$(api_now_ms)
"$MX_PY" "$CHK" longpoll --url "$PRISM_URL/v1/events?after=$C&wait=60" --token "$KA" \
    --out "$T/lp.json" &
LP=$!
at_exit "kill $LP 2>/dev/null"
sleep 2
[ -e "$T/lp.json" ]; ok $((!$?)) "long-poll waits while nothing happens (2 s)"

run_ok "mxsync account add a (not known to the running daemon)" mx_add a "$D" alice@example.test imaps
t0=$(api_now_ms)
run_ok "mxsync sync a: another process commits 3 message.new" mx sync a
wait "$LP"
lp=$("$MX_PY" -c '
import json,sys
r = json.load(open(sys.argv[1])); b = json.loads(r["body"])
ev = [e for e in b["events"] if e["type"] == "message.new"]
print(r["status"], len(ev), r["t_ms"] - int(sys.argv[2]), r["t_ms"] - int(sys.argv[3]))' \
    "$T/lp.json" "$t0" "$tlp")
set -- $lp
is "$1 $2" "200 3" "long-poll answered with the 3 message.new of the CLI's sync"
diag "long-poll: answered ${3} ms after the CLI sync started (wait=60 s, no fallback poll)"
# Not a latency bound: at the end of its wait a long-poll answers with
# what the feed holds too, so only this tells a wake-up from a timeout.
[ "${4:-99999}" -lt 50000 ]; ok $? "long-poll woke before its 60 s wait ran out (${4} ms)"

d_alive; ok $? "mxsyncd still running"
grep -q "cannot watch" "$DLOG"; ok $((!$?)) "no 'cannot watch' warning in the daemon's log"
done_testing
