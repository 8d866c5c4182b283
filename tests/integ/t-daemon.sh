#!/bin/sh
# mxsyncd end to end against a real Dovecot: IDLE push to the event feed and
# to webhooks (latency measured), flag changes and expunges; Dovecot going
# away and coming back (backoff -> idle, nothing duplicated); kill -9 while
# mail keeps arriving (every message exactly one message.new); a failing and
# a hanging webhook endpoint; a wrong password (auth_failed, no retry loop);
# a connection dropped mid-IDLE, cut during login, a garbage-talking server;
# SIGHUP adding an account without touching the others; SIGTERM.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"
command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" alice@example.test bob@example.test carol@example.test \
    dave@example.test erin@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
SECRET='whsec-daemon-t3st'
CHK="$MX_TOOLS/daemon_check.py"
DLOG=$T/mxsyncd.log
T_BEGIN=$(date +%s)

now_ms() { echo $(($(date +%s%N) / 1000000)); }
chk() { "$MX_PY" "$CHK" "$@"; }
# newest event id in the feed (0 if none)
last_eid() {
    mx events --json | "$MX_PY" -c '
import json,sys
ids=[json.loads(l)["id"] for l in sys.stdin if l.strip()]
print(ids[-1] if ids else 0)'
}
# account.state events of account number $1 after event $2: "state state ..."
states_of() {
    mx events --json --after "${2:-0}" | "$MX_PY" -c '
import json,sys
print(" ".join(e["state"] for e in map(json.loads, filter(str.strip, sys.stdin))
               if e["type"]=="account.state" and e["account"]==int(sys.argv[1])))' "$1"
}
# the numeric id of account NAME (from its account.state events)
acct_id() {
    mx events --json | "$MX_PY" -c '
import json,sys
for e in map(json.loads, filter(str.strip, sys.stdin)):
    if e["type"]=="account.state" and e.get("account_name")==sys.argv[1]:
        print(e["account"]); break' "$1"
}
# daemon.FIELD of account NAME in status --json
dfield() {
    mx status --json | "$MX_PY" -c '
import json,sys
for a in json.load(sys.stdin):
    if a["account"]==sys.argv[1]: print((a.get("daemon") or {}).get(sys.argv[2], ""))' "$1" "$2"
}
wait_state() { # NAME STATES TIMEOUT -> ok/fail; output in $WS
    WS=$(chk wait-state --mx "$MX_BIN" --dir "$MXD" --account "$1" --state "$2" --timeout "$3")
}
msgid_of() { sed -n 's/^[Mm][Ee][Ss][Ss][Aa][Gg][Ee]-[Ii][Dd]:[[:space:]]*//p' "$1" | head -n 1 | tr -d '\r<>'; }

# ---- the daemon (d_start, d_alive, d_stop_at_exit: lib/mx.sh), always stopped
at_exit d_stop_at_exit

# ---- webhook receivers (tools/webhook_rx.py)
rx_start() { # NAME ARGS... -> RX_URL
    rxn=$1; shift
    : > "$T/$rxn.port"; : > "$T/$rxn.log"
    ( "$MX_PY" "$MX_TOOLS/webhook_rx.py" --log "$T/$rxn.log" "$@" \
          </dev/null >"$T/$rxn.port" 2>"$T/$rxn.err" &
      echo $! > "$T/$rxn.pid" )
    at_exit "kill \$(cat '$T/$rxn.pid') 2>/dev/null"
    rxi=0
    while [ $rxi -lt 200 ]; do
        rxp=$(head -n 1 "$T/$rxn.port")
        if [ -n "$rxp" ]; then RX_URL="http://127.0.0.1:$rxp/hook"; return 0; fi
        sleep 0.025; rxi=$((rxi + 1))
    done
    bail_out "webhook_rx.py did not start: $(cat "$T/$rxn.err")"
}
rx_start main;                  URL_MAIN=$RX_URL
rx_start flaky --fail-first 4;  URL_FLAKY=$RX_URL
rx_start hang --hang;           URL_HANG=$RX_URL

# ---- mail and accounts
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed daemon 60 "$T/gen" >/dev/null
GEN=$(ls "$T/gen")
genfile() { echo "$T/gen/$(echo "$GEN" | sed -n "${1}p")"; }
for i in 1 2 3; do dc_deliver "$D" $U "$(genfile $i)" >/dev/null 2>>"$T/deliver.err"; done
# erin: a mailbox big enough for an initial sync to take a while (scenario 9)
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed erin 3000 "$T/gen-e" >/dev/null
dc_bulk_load "$D" erin@example.test "$T/gen-e" >/dev/null 2>>"$T/deliver.err"
run_ok "account a (alice, imaps)" mx_add a "$D" $U imaps
printf 'not-carols-password\n' > "$MX_SCRATCH/w.pw"
run_ok "account w (carol, wrong password)" mx account add w \
    --imap "imaps://carol@example.test@127.0.0.1:$DC_IMAPS_PORT" \
    --password-file "$MX_SCRATCH/w.pw" --ca-file "$DC_CA"
# g reaches Dovecot's plain port through fakeimap on port G: first a
# transparent proxy, later a cutting proxy and a garbage server
fake_start "$T/p1" --mode proxy --to "127.0.0.1:$DC_IMAP_PORT" || bail_out "proxy"
G=$FAKE_PORT
dc_password "$D" dave@example.test > "$MX_SCRATCH/g.pw"
run_ok "account g (dave, plain imap through a proxy)" mx account add g \
    --imap "imap://dave@example.test@127.0.0.1:$G" --insecure-plaintext \
    --timeout 3 --password-file "$MX_SCRATCH/g.pw" --ca-file "$DC_CA"

cat > "$MXD/mxsync.conf" <<EOF
# t-daemon.sh: short intervals
[daemon]
workers = 4
poll_interval = 5
folder_interval = 10
backoff_min = 1
backoff_max = 4

[account e]
folders = INBOX, Archive

[webhook main]
url = $URL_MAIN
secret = $SECRET

[webhook flaky]
url = $URL_FLAKY
secret = $SECRET
max_backoff = 2

[webhook hang]
url = $URL_HANG
secret = $SECRET
timeout = 60
EOF

# ======== start
t_start=$(now_ms)
d_start
wait_state a idle 30; ok $? "daemon: account a reaches idle"
diag "a idle after $(($(now_ms) - t_start)) ms: $WS"
wait_state g idle 20; ok $? "daemon: account g (through the proxy) reaches idle"
A=$(acct_id a); G_ID=$(acct_id g)
is "$A" 1 "account a is account 1 in the feed"
is "$(mx events --json | grep -c "\"type\":\"message.new\",[^}]*\"account\":$A,")" 3 "initial sync: one message.new per message"

# ======== 5. wrong password: auth_failed, the server's reason, no loop
wait_state w auth_failed 20; ok $? "5: wrong password -> auth_failed"
t_authfail=$(now_ms)
le=$(dfield w last_error)
diag "w last_error: $le"
like "$le" "AUTHENTICATIONFAILED|[Aa]uthentication failed" "5: last_error carries the server's reason"
is "$(dfield w next_attempt)" "" "5: no next_attempt while auth_failed"

# ======== 1. push: LMTP -> message.new in the feed and at the webhook
lat_feed=""; lat_hook=""
for i in 4 5 6; do
    f=$(genfile $i); mid=$(msgid_of "$f")
    before=$(last_eid)
    n=$(dc_deliver "$D" $U "$f" 2>>"$T/deliver.err")
    t0=$(now_ms)
    r=$(chk wait-event --mx "$MX_BIN" --dir "$MXD" --after "$before" --type message.new --account "$A" --t0-ms "$t0" --timeout 15)
    st=$?
    ok $st "1: delivery $i (msgid $mid): message.new in the feed"
    [ $st -eq 0 ] || { diag "$r"; continue; }
    lf=${r%% *}; ev=${r#* }
    eid=$(echo "$ev" | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
    rec=$(echo "$ev" | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)["message"])')
    got=$(mx show "$rec" --json | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)["message_id"])')
    is "$got" "$mid" "1: event $eid names message $rec, the delivered Message-ID"
    lh=$(chk wait-hook --log "$T/main.log" --event-id "$eid" --t0-ms "$t0" --timeout 15)
    ok $? "1: webhook main received event $eid"
    is "$(chk sig --log "$T/main.log" --event-id "$eid" --secret "$SECRET")" ok \
        "1: X-Mxsync-Signature of event $eid verifies (HMAC-SHA256 in Python)"
    diag "push latency (LMTP done -> seen): feed ${lf} ms, webhook ${lh} ms"
    lat_feed="$lat_feed $lf"; lat_hook="$lat_hook $lh"
done
all_below() { # LIMIT VALUES...: 0 if there are 3 values, all numbers < LIMIT
    al_l=$1; shift; [ $# -eq 3 ] || { echo 1; return; }
    for al_x; do [ "$al_x" -ge 0 ] 2>/dev/null && [ "$al_x" -lt "$al_l" ] || { echo 1; return; }; done
    echo 0
}
ok "$(all_below 3000 $lat_feed)" "1: every push reached the feed in < 3 s ($lat_feed ms)"
ok "$(all_below 3000 $lat_hook)" "1: and the webhook in < 3 s ($lat_hook ms) while the 'hang' endpoint hangs"

# flag change by another client -> message.updated
id_uid() { mx ls a --json | "$MX_PY" -c '
import json,sys
for m in json.load(sys.stdin):
    for l in m["locations"]:
        if l["folder"]=="INBOX" and l["uid"]==int(sys.argv[1]): print(m["id"])' "$1"; }
rec1=$(id_uid 1); rec2=$(id_uid 2)
before=$(last_eid)
dc_imap "$D" $U flag INBOX 1 '+\Flagged' >/dev/null
t0=$(now_ms)
r=$(chk wait-event --mx "$MX_BIN" --dir "$MXD" --after "$before" --type message.updated --account "$A" --field "message=$rec1" --t0-ms "$t0" --timeout 15)
ok $? "1: flag change by another IMAP client -> message.updated for $rec1"
diag "flag push latency: ${r%% *} ms"
# expunge -> message.deleted (after the next full refresh at the latest)
before=$(last_eid)
dc_imap "$D" $U expunge INBOX 2 >/dev/null
t0=$(now_ms)
r=$(chk wait-event --mx "$MX_BIN" --dir "$MXD" --after "$before" --type message.deleted --account "$A" --field "message=$rec2" --t0-ms "$t0" --timeout 25)
ok $? "1: expunge by another client -> message.deleted for $rec2"
diag "expunge -> message.deleted: ${r%% *} ms (folder_interval 10 s)"
run_fails "1: the expunged message is gone from the store" mx show "$rec2"

# ---- 5 (cont.): count LOGIN attempts of carol over >= 10 s
el=$(($(now_ms) - t_authfail))
[ $el -lt 10000 ] && sleep "$(( (10000 - el) / 1000 + 1 ))"
nfail=$(chk auth-fails --log "$DC_LOG" --user carol@example.test)
diag "carol: $nfail failed LOGIN attempt(s) in $(( ($(now_ms) - t_start) / 1000 )) s of daemon uptime"
ok $([ "${nfail:-0}" -ge 1 ] && [ "$nfail" -le 2 ]; echo $?) "5: no retry loop: $nfail failed login(s) (at most 2)"
is "$(dfield w state)" auth_failed "5: w is still auth_failed"

# ======== 6. connection dropped mid-IDLE, cut during login, garbage
m6=$(last_eid)
is "$(dfield g state)" idle "6: g idles through the proxy"
fake_stop "$T/p1" >/dev/null                     # drops g's IDLE connection
wait_state g backoff 15; ok $? "6: connection dropped mid-IDLE -> backoff"
le=$(dfield g last_error); diag "g last_error: $le"
isnt "$le" "" "6: with a last_error"
fake_start "$T/p2" --mode proxy --to "127.0.0.1:$DC_IMAP_PORT" --port "$G" \
    --cut-after 300 --cut-count 2 || bail_out "proxy 2"
wait_state g idle 30; ok $? "6: proxy back (first 2 connections cut after 300 bytes) -> idle again"
diag "$(grep -c 'open' "$T/p2/fake.log") connection(s) to the cutting proxy; $(grep -c '^cut' "$T/p2/fake.log") cut"
ok $([ "$(grep -c '^cut' "$T/p2/fake.log")" -ge 1 ]; echo $?) "6: at least one connection was cut during the handshake"
ok $(d_alive; echo $?) "6: daemon still running"
fake_stop "$T/p2" >/dev/null
fake_start "$T/garb" --mode garbage --port "$G" || bail_out "garbage"
gi=0
while [ "$(grep -c 'open' "$T/garb/fake.log")" -lt 2 ] && [ $gi -lt 200 ]; do sleep 0.1; gi=$((gi + 1)); done
ok $([ "$(grep -c 'open' "$T/garb/fake.log")" -ge 2 ]; echo $?) "6: garbage server: the daemon reconnected and got garbage at least twice"
wait_state g backoff 15; ok $? "6: garbage -> backoff"
le=$(dfield g last_error); diag "g last_error after garbage: $le"
ok $(d_alive; echo $?) "6: daemon survived the garbage"
fake_stop "$T/garb" >/dev/null
fake_start "$T/p3" --mode proxy --to "127.0.0.1:$DC_IMAP_PORT" --port "$G" || bail_out "proxy 3"
wait_state g idle 30; ok $? "6: a sane server again -> idle"
like "$(cat "$DLOG")" "account g: .*-> backoff" "6: the daemon logged g's failures"
st6=$(states_of "$G_ID" "$m6")
diag "g account.state events: $st6"
like "$st6" "backoff" "6: account.state events report the trouble"
like "$st6" "idle\$" "6: the last account.state event of g says idle (recovery reported)"
is "$(dfield g state)" idle "6: status: g idle"

# ======== 7. SIGHUP: a new account, the others keep their connections
s_before=$(chk sessions --log "$DC_LOG" --user $U)
open_before=${s_before#* }
# two: the sync connection and the one that stays in IDLE (idle_connection)
is "$(echo "$open_before" | wc -w)" 2 "7: exactly two open IMAP sessions of alice (the daemon's): $open_before"
g_conns=$(grep -c 'open' "$T/p3/fake.log")
run_ok "7: account add b while the daemon runs" mx_add b "$D" bob@example.test imaps
m7=$(last_eid); L7=$(wc -l < "$DC_LOG")
t0=$(now_ms)
kill -HUP "$DPID"
wait_state b idle 20; ok $? "7: after SIGHUP the new account b reaches idle"
diag "b idle $(($(now_ms) - t0)) ms after SIGHUP"
like "$(cat "$DLOG")" "configuration reloaded" "7: reload logged"
s_after=$(chk sessions --log "$DC_LOG" --user $U --from-line "$L7")
is "${s_after%% *}" 0 "7: no new login of alice after SIGHUP"
s_now=$(chk sessions --log "$DC_LOG" --user $U)
ok $(case " ${s_now#* } " in *" $open_before "*) echo 0 ;; *) echo 1 ;; esac) "7: a's IMAP sessions $open_before are still open"
is "$(states_of "$A" "$m7")" "" "7: no account.state event for a"
is "$(grep -c 'open' "$T/p3/fake.log")" "$g_conns" "7: g did not reconnect"
is "$(dfield a state)" idle "7: a still idle"
B=$(acct_id b)

# ======== 2. Dovecot stops and comes back on the same ports
ports_before="$DC_IMAP_PORT $DC_IMAPS_PORT $DC_LMTP_PORT"
m2=$(last_eid)
# dc_stop returns when the master is gone, but its imap and imap-login
# processes keep serving open sessions (orphaned) for 8-20 s more, so the
# daemon would see no outage: end this instance's children too, by PID.
dkids=$(ps -o pid= --ppid "$(dc_pid "$D")" 2>/dev/null)
dc_stop "$D" >/dev/null
t0=$(now_ms)
for k in $dkids; do kill -TERM "$k" 2>/dev/null; done
wait_state a backoff 20; ok $? "2: Dovecot stopped -> a in backoff"
diag "a in backoff after $(($(now_ms) - t0)) ms: $WS"
wait_state b backoff 20; ok $? "2: b in backoff"
wait_state g backoff 20; ok $? "2: g in backoff"
diag "all in backoff after $(($(now_ms) - t0)) ms"
le=$(dfield a last_error); diag "a last_error: $le"
isnt "$le" "" "2: with a last_error"
isnt "$(dfield a next_attempt)" "" "2: and a next_attempt"
sleep 1     # a retry against the closed port
ok $(d_alive; echo $?) "2: daemon running"
dc_start "$D" >/dev/null || bail_out "dovecot did not restart"
. "$D/env"
is "$DC_IMAP_PORT $DC_IMAPS_PORT $DC_LMTP_PORT" "$ports_before" "2: dc_stop + dc_start kept the ports"
f=$(genfile 7); msgid_of "$f" > "$T/s2.ids"
is "$(dc_deliver "$D" $U "$f" 2>>"$T/deliver.err")" 1 "2: delivered one message after the restart"
wait_state a idle 20; ok $? "2: a back to idle"
r=$(chk wait-event --mx "$MX_BIN" --dir "$MXD" --after "$m2" --type message.new --account "$A" --timeout 20)
ok $? "2: its message.new arrived"
sleep 1
mx events --json > "$T/feed2"
r=$(chk exactly-once --mx "$MX_BIN" --dir "$MXD" --feed "$T/feed2" --account "$A" --msgids "$T/s2.ids")
is "$r" "ok 1" "2: the message arrived exactly once"
is "$(dfield a last_error)" "" "2: last_error cleared"
st2=$(states_of "$A" "$m2"); diag "a account.state events: $st2"
like "$st2" "^backoff" "2: account.state: backoff reported"
like "$st2" "idle\$" "2: account.state: the last one says idle"
wait_state b idle 15; ok $? "2: b back to idle too"
wait_state g idle 15; ok $? "2: g back to idle too"

# ======== 3. kill -9 while mail keeps arriving
: > "$T/s3.ids"
m3=$(last_eid)
(
    for i in $(seq 8 57); do
        f=$(genfile $i)
        if [ "$(dc_deliver "$D" $U "$f" 2>>"$T/deliver.err")" = 1 ]; then
            msgid_of "$f" >> "$T/s3.ids"
        fi
    done
) &
LOOP=$!
at_exit "kill $LOOP 2>/dev/null"
i=0
while [ "$(wc -l < "$T/s3.ids")" -lt 15 ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i + 1)); done
k1=$(wc -l < "$T/s3.ids")
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null; rc=$?
is "$rc" 137 "3: mxsyncd killed with SIGKILL after $k1 deliveries"
DPID=
sleep 1     # deliveries go on while it is down
k2=$(wc -l < "$T/s3.ids")
d_start
diag "restarted after $k2 deliveries"
wait "$LOOP"
is "$(wc -l < "$T/s3.ids")" 50 "3: 50 messages delivered"
count_new() {
    mx events --json --after "$m3" | grep -c "\"type\":\"message.new\",[^}]*\"account\":$A,"
}
i=0
while [ "$(count_new)" -lt 50 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sleep 1     # room for a late duplicate
is "$(count_new)" 50 "3: 50 message.new events after the kill"
mx events --json > "$T/feed3"
r=$(chk exactly-once --mx "$MX_BIN" --dir "$MXD" --feed "$T/feed3" --account "$A" --msgids "$T/s3.ids")
is "$r" "ok 50" "3: every delivered Message-ID has exactly one message.new (none lost, no duplicate)"
[ "$r" = "ok 50" ] || diag "$r"
is "$(mx_count a INBOX)" "$(dc_imap "$D" $U count INBOX)" "3: INBOX: as many messages stored as on the server"
ids=$(mx events --json | "$MX_PY" -c '
import json,sys
print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin if l.strip()))')
is "$ids" "$(seq -s ' ' 1 "$(last_eid)")" "3: event ids are dense: 1..$(last_eid)"

# ======== 4. webhooks: failing then OK, hanging, all in order, signed
mx events --json > "$T/feed4"
last=$(last_eid)
r=$(chk wait-hook --log "$T/main.log" --event-id "$last" --timeout 30); ok $? "4: main got the last event ($last)"
r=$(chk wait-hook --log "$T/flaky.log" --event-id "$last" --timeout 30); ok $? "4: flaky got the last event ($last)"
r=$(chk hook-order --log "$T/main.log" --feed "$T/feed4"); diag "main: $r"
like "$r" "^ok" "4: main: every event 1..$last acknowledged, in order"
r=$(chk hook-order --log "$T/flaky.log" --feed "$T/feed4"); diag "flaky: $r"
like "$r" "^ok" "4: flaky (500 x4 first): every event acknowledged, in order"
is "$("$MX_PY" -c '
import json,sys
print(" ".join([str(json.loads(l)["status"]) for l in open(sys.argv[1]) if l.strip()][:5]))' "$T/flaky.log")" \
    "500 500 500 500 200" "4: flaky answered 500 four times, then 200"
run_ok "4: every request to main verifies (webhook_rx.py --verify)" "$MX_PY" "$MX_TOOLS/webhook_rx.py" --verify "$T/main.log" --secret "$SECRET"
run_ok "4: every request to flaky verifies" "$MX_PY" "$MX_TOOLS/webhook_rx.py" --verify "$T/flaky.log" --secret "$SECRET"
is "$(chk sig --log "$T/flaky.log" --event-id "$last" --secret "$SECRET")" ok "4: my own check of flaky's last signature"
nh=$(grep -c . "$T/hang.log")
ok $([ "$nh" -ge 1 ]; echo $?) "4: the hanging endpoint was tried ($nh request(s))"
is "$(grep -c '"status": 200' "$T/hang.log")" 0 "4: and acknowledged nothing"

# ======== 9. SIGHUP while an account with [account] folders is syncing
# (reload frees the old configuration; a worker's sync must not be using it)
dc_password "$D" erin@example.test > "$MX_SCRATCH/e.pw"
run_ok "9: account e (3000 messages, folders = INBOX, Archive)" mx account add e \
    --imap "imaps://erin@example.test@127.0.0.1:$DC_IMAPS_PORT" \
    --password-file "$MX_SCRATCH/e.pw" --ca-file "$DC_CA"
t0=$(now_ms); nhup=0
while d_alive && [ "$(dfield e state)" != idle ] && [ $nhup -lt 100 ]; do
    kill -HUP "$DPID"; nhup=$((nhup + 1)); sleep 0.3
done
diag "$nhup SIGHUP(s) during e's initial sync ($(($(now_ms) - t0)) ms)"
ok $(d_alive; echo $?) "9: daemon survived SIGHUPs during a sync"
if ! d_alive; then
    wait "$DPID"; diag "mxsyncd died, exit status $?; log tail:"
    diag "$(grep -v '^mxsyncd: info' "$DLOG" | tail -n 25)"
    d_start; wait_state a idle 20
fi
wait_state e idle 30; ok $? "9: e reaches idle"
is "$(mx_count e INBOX)" 3000 "9: e: 3000 messages in INBOX"

# ======== 8. SIGTERM
t0=$(now_ms)
kill -TERM "$DPID"
i=0
while d_alive && [ $i -lt 150 ]; do sleep 0.05; i=$((i + 1)); done
el=$(($(now_ms) - t0))
alive=0; d_alive && alive=1
[ $alive = 1 ] && { diag "still running after 7.5 s"; kill -KILL "$DPID"; }
wait "$DPID"; rc=$?
DPID=
diag "SIGTERM -> exit in $el ms"
ok $([ $alive = 0 ] && [ $el -le 5000 ]; echo $?) "8: SIGTERM: exit within 5 s ($el ms, a webhook request hanging)"
is "$rc" 0 "8: exit status 0"
like "$(mx status a)" "daemon: stopped" "8: mxsync status shows stopped"
is "$(mx status --json | "$MX_PY" -c '
import json,sys
print(" ".join(sorted(set(a["daemon"]["state"] for a in json.load(sys.stdin)))))')" stopped "8: every account stopped"
unlike "$(cat "$DLOG")" "AddressSanitizer|LeakSanitizer|runtime error|SUMMARY:" "no sanitizer report in the daemon's log"
diag "total $(( $(date +%s) - T_BEGIN )) s; daemon log $(wc -l < "$DLOG") lines"
[ -n "$MX_DAEMON_LOG" ] && cp "$DLOG" "$MX_DAEMON_LOG"
done_testing
