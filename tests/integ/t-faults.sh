#!/bin/sh
# Transport faults injected between mxsync and a real Dovecot by
# tools/faultproxy.py (scheduled, so every case is deterministic): for IMAP
# (IMAPS, and plain IMAP for the mid-literal reset), POP3S and submission
# (STARTTLS), each fault kind once on the first connection: close after N
# bytes either way, RST, a stall shorter and one longer than the timeout, a
# delay on every chunk, 1-byte segments, a reset in the middle of a FETCH
# literal.  After the fault the next run recovers: the store equals the
# server (sha256 of every message), and a send is delivered exactly once
# with exactly one copy in Sent.
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
. "$D/env"
U=alice@example.test
dc_password "$D" $U > "$T/pw"
N=24
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed faults $N "$T/gen" >/dev/null
is "$(dc_deliver "$D" $U "$T/gen")" $N "$N messages delivered"
dc_imap "$D" $U flag INBOX 3 '+\Seen' '+\Flagged' >/dev/null
dc_imap "$D" $U move INBOX 5 Archive >/dev/null
SERVER=$(dc_digest "$D" $U)

# fp NAME UPSTREAM_PORT SPEC: a proxy whose first connection gets SPEC, the
# later ones none; sets FP_PORT and FP_LOG
fp() {
    tool_start "$T/fp-$1" faultproxy.py --mode schedule --to "127.0.0.1:$2" \
        --log "$T/fp-$1/log" --fault "1=$3" || bail_out "faultproxy did not start"
    FP_PORT=$TOOL_PORT; FP_LOG=$T/fp-$1/log
}
# fired NAME KIND: the proxy log says the fault of connection 1 fired
fired() {
    like "$(cat "$T/fp-$1/log")" "^fault 1 $2 " "$1: the $2 fault fired"
}
# imap_case NAME SCHEME UPSTREAM SPEC TIMEOUT RC: a sync through the fault
# exits RC; the next one completes and the store equals the server
imap_case() {
    fp "$1" "$3" "$4"
    ex=
    [ "$2" = imap ] && ex=--insecure-plaintext
    mx account add "$1" --imap "$2://$U@127.0.0.1:$FP_PORT" $ex \
        --password-file "$T/pw" --ca-file "$DC_CA" --timeout "$5" >/dev/null ||
        fail "$1: account add"
    mx sync "$1" --batch 4 >"$T/$1.out" 2>&1; rc=$?
    is "$rc" "$6" "$1: sync through '$4' exits $6"
    [ "$rc" = "$6" ] || diag "$(tail -3 "$T/$1.out")"
    [ "$rc" = 0 ] || like "$(cat "$T/$1.out")" \
        "closed|reset|timed out|stream|connection" "$1: the error names the transport failure"
    mx sync "$1" >"$T/$1.out2" 2>&1; rc=$?
    is "$rc" 0 "$1: the next sync completes"
    [ "$rc" = 0 ] || diag "$(tail -3 "$T/$1.out2")"
    is "$(mx_export_digest "$1")" "$SERVER" "$1: store == server"
    is "$(mx_count "$1")" $N "$1: $N messages, none twice"
}

# ---- IMAP ------------------------------------------------------------------
imap_case i-drop-s2c  imaps "$DC_IMAPS_PORT" drop:s2c:60000 5 4
fired i-drop-s2c drop
imap_case i-drop-c2s  imaps "$DC_IMAPS_PORT" drop:c2s:1500 5 4
fired i-drop-c2s drop
imap_case i-rst       imaps "$DC_IMAPS_PORT" rst:s2c:150000 5 4
fired i-rst rst
imap_case i-stall     imaps "$DC_IMAPS_PORT" stall:s2c:40000:1500 5 0
fired i-stall stall
imap_case i-stall-to  imaps "$DC_IMAPS_PORT" stall:s2c:40000:6000 2 4
fired i-stall-to stall
imap_case i-delay     imaps "$DC_IMAPS_PORT" delay:3 5 0
imap_case i-split     imaps "$DC_IMAPS_PORT" split:both:-1 10 0
imap_case i-midlit    imap  "$DC_IMAP_PORT"  midlit:1000 5 4
fired i-midlit midlit
like "$(cat "$T/fp-i-midlit/log")" "^fault 1 midlit s2c at [0-9]+ literal [0-9]{4,}" \
    "i-midlit: reset inside a message literal"

# ---- POP3 (POP3S) ----------------------------------------------------------
SERVER_INBOX=$(printf '%s\n' "$SERVER" | grep '^INBOX	')
pop_case() { # NAME SPEC TIMEOUT RC
    fp "$1" "$DC_POP3S_PORT" "$2"
    mx account add "$1" --pop3 "pop3s://$U@127.0.0.1:$FP_PORT" \
        --password-file "$T/pw" --ca-file "$DC_CA" --timeout "$3" >/dev/null ||
        fail "$1: account add"
    mx sync "$1" >"$T/$1.out" 2>&1; rc=$?
    is "$rc" "$4" "$1: POP3 sync through '$2' exits $4"
    [ "$rc" = "$4" ] || diag "$(tail -3 "$T/$1.out")"
    mx sync "$1" >"$T/$1.out2" 2>&1; rc=$?
    is "$rc" 0 "$1: the next POP3 sync completes"
    [ "$rc" = 0 ] || diag "$(tail -3 "$T/$1.out2")"
    is "$(mx_export_digest "$1")" "$SERVER_INBOX" "$1: store == server INBOX"
}
pop_case p-drop   drop:s2c:50000 5 4;          fired p-drop drop
pop_case p-drop-c rst:c2s:800 5 4;             fired p-drop-c rst
pop_case p-rst    rst:s2c:120000 5 4;          fired p-rst rst
pop_case p-stall  stall:s2c:30000:1500 5 0;    fired p-stall stall
pop_case p-stallt stall:s2c:30000:6000 2 4;    fired p-stallt stall
pop_case p-delay  delay:3 5 0
pop_case p-split  split:both:-1 10 0

# ---- submission (STARTTLS) -------------------------------------------------
sink_start "$T/sink-relay" --port "$DC_RELAY_PORT" --relay-lmtp "$DC_LMTP_PORT" ||
    bail_out "smtpsink did not start"
head -c 300000 /dev/urandom > "$T/att.bin"
count_mid() {
    dc_imap "$D" "$1" search-header "$2" Message-ID "$3" 2>/dev/null | grep -c .
}
# send_case NAME SPEC RC: a send through the fault exits RC; `outbox run
# --now` finishes it; exactly one delivery to bob, one copy in Sent
send_case() {
    fp "$1" "$DC_SUBMISSION_PORT" "$2"
    mx account add "$1" --imap "imaps://$U@127.0.0.1:$DC_IMAPS_PORT" \
        --smtp "smtp://$U@127.0.0.1:$FP_PORT" --timeout 3 \
        --password-file "$T/pw" --ca-file "$DC_CA" >/dev/null || fail "$1: account add"
    mx send "$1" --to bob@example.test --subject "t-faults $1" --body "fault $2" \
        --attach "$T/att.bin" >"$T/$1.out" 2>&1; rc=$?
    is "$rc" "$3" "$1: send through '$2' exits $3"
    [ "$rc" = "$3" ] || diag "$(tail -3 "$T/$1.out")"
    m=$(mx outbox "$1" --json | "$MX_PY" -c 'import json,sys
print([e["message_id"] for e in json.load(sys.stdin) if e.get("subject")==sys.argv[1]][0])' "t-faults $1")
    if [ "$rc" != 0 ]; then
        run_ok "$1: outbox run after the fault" mx outbox run "$1" --now
        like "$MX_OUT" 'sent 1' "$1: sent on the retry"
    fi
    is "$(count_mid bob@example.test INBOX "$m")" 1 "$1: exactly one delivery"
    is "$(count_mid $U Sent "$m")" 1 "$1: exactly one copy in Sent"
}
send_case s-drop   drop:s2c:200 4;         fired s-drop drop
send_case s-dropc  drop:c2s:150000 4;      fired s-dropc drop
send_case s-rst    rst:c2s:250000 4;       fired s-rst rst
send_case s-stall  stall:s2c:600:1000 0;   fired s-stall stall
send_case s-stallt stall:s2c:600:5000 4;   fired s-stallt stall
send_case s-delay  delay:3 0
send_case s-split  split:both:-1 0

# the same without the proxy, independent of how fast 1-byte segments flow:
# a server that answers the final dot after 5 s, a client with --timeout 2
sink_start "$T/sink-slow" --offer-auth --delay-data 5 || bail_out "smtpsink did not start"
mx account add s-slowdot --imap "imaps://$U@127.0.0.1:$DC_IMAPS_PORT" \
    --smtp "smtp+plain://127.0.0.1:$SINK_PORT" --timeout 2 --saves-sent yes \
    --password-file "$T/pw" --ca-file "$DC_CA" >/dev/null || fail "s-slowdot: account add"
run_ok "s-slowdot: the reply to the final dot is waited for beyond --timeout" \
    mx send s-slowdot --to bob@example.test --subject "t-faults slowdot" --body x
like "$MX_OUT" '^sent ' "s-slowdot: reported sent"
mx outbox run s-slowdot --now >/dev/null 2>&1
# every message the sink received (a "data" log line) is stored 5 s later
i=0
while [ "$(ls "$T/sink-slow/mail" 2>/dev/null | grep -c '\.eml$')" -lt \
        "$(grep -c '^data ' "$T/sink-slow/log")" ] && [ $i -lt 150 ]; do
    sleep 0.1; i=$((i + 1))
done
is "$(ls "$T/sink-slow/mail" | grep -c '\.eml$')" 1 "s-slowdot: delivered exactly once"
done_testing
