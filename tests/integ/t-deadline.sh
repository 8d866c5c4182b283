#!/bin/sh
# Deadlines and signals (doc/internals/net.md): --timeout bounds a whole
# protocol step, so a server dripping one byte a second cannot hold a
# command for ever; a silent server times out after the timeout, not
# twice it; SIGINT/SIGTERM end a command blocked on a server at once
# (exit 130, "interrupted", committed batches kept, the store opens).
# IMAP, POP3 and SMTP share the transport (src/lib/net/tls.c).
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir deadline; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
. "$D/env"
echo secret > "$T/pw"

# alive = exists and is not a zombie (a child until waited for)
alive() {
    [ -r "/proc/$1/status" ] &&
        [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)" != Z ]
}
# gone PID SECONDS: true once PID has exited, false if it still runs then
gone() {
    gi=0
    while alive "$1" && [ $gi -lt $(($2 * 10)) ]; do sleep 0.1; gi=$((gi + 1)); done
    ! alive "$1"
}
# wait_log FILE ERE SECONDS: true once a line of FILE matches
wait_log() {
    wl=0
    while ! grep -Eq "$2" "$1" 2>/dev/null && [ $wl -lt $(($3 * 10)) ]; do
        sleep 0.1; wl=$((wl + 1))
    done
    grep -Eq "$2" "$1" 2>/dev/null
}
# bg_start NAME ARGS...: mxsync ARGS in the background -> BG_PID (the
# program itself, not a subshell, which would also ignore SIGINT); killed at exit
bg_start() {
    bgn=$1; shift
    "$MX_BIN" -d "$MXD" "$@" >"$T/$bgn.out" 2>"$T/$bgn.err" &
    BG_PID=$!
    at_exit "kill -KILL $BG_PID 2>/dev/null"
}

fake_start "$T/drip" --mode drip --log "$T/drip/log" || bail_out "drip server"
DRIP=$FAKE_PORT
fake_start "$T/silent" --mode silent --log "$T/silent/log" || bail_out "silent server"
SILENT=$FAKE_PORT

# fails_in_time N WHAT CMD...: CMD fails with exit 4 and "greeting: timed
# out after 5 s", in about the timeout (the bound is loose: 3x)
fails_in_time() {
    ftn=$1; ftw=$2; shift 2
    t0=$(date +%s)
    "$@" >"$T/so" 2>"$T/se"; ftrc=$?
    el=$(($(date +%s) - t0))
    diag "$ftw: exit $ftrc after $el s: $(cat "$T/so" "$T/se")"
    is "$ftrc" 4 "$ftn: $ftw: fails with a temporary error (exit 4)"
    like "$(cat "$T/so" "$T/se")" "greeting: timed out after 5 s" "$ftn: $ftw: the greeting timed out"
    ok $([ $el -lt 15 ]; echo $?) "$ftn: $ftw: in about the timeout, not never ($el s < 15 s)"
}

# ======== 1. an IMAP greeting dripping one byte a second, --timeout 5
mx account add drip --imap "imap://u@127.0.0.1:$DRIP" --password-file "$T/pw" \
    --timeout 5 >/dev/null || bail_out "account drip"
fails_in_time 1 "IMAP drip" mx sync drip

# ======== 2. a silent server: timed out after the timeout, not twice it
mx account add silent --imap "imap://u@127.0.0.1:$SILENT" --password-file "$T/pw" \
    --timeout 5 >/dev/null || bail_out "account silent"
fails_in_time 2 "silent server" mx sync silent
# The doubling: after the timeout the client sent LOGOUT on the dead
# connection and waited for its answer for another timeout.
unlike "$(cat "$T/silent/log")" "LOGOUT" "2: nothing is sent on a timed-out connection (no second wait)"

# ======== 3. POP3 and SMTP share the transport: the same drip
mx account add pdrip --pop3 "pop3://u@127.0.0.1:$DRIP" --password-file "$T/pw" \
    --timeout 5 >/dev/null || bail_out "account pdrip"
fails_in_time 3 "POP3 drip" mx sync pdrip
mx_add s "$D" $U imaps --timeout 5 --smtp "smtp://$U@127.0.0.1:$DRIP" >/dev/null ||
    bail_out "account s"
# exit 4: the message stays queued for a later attempt
fails_in_time 3 "SMTP drip" mx send s --to bob@example.test --subject drip --body hello

# ======== 4. SIGTERM to a CLI blocked on a drip (timeout 60 s)
mx account add slow --imap "imap://u@127.0.0.1:$DRIP" --password-file "$T/pw" \
    --timeout 60 >/dev/null || bail_out "account slow"
n0=$(grep -c '^conn [0-9]* open' "$T/drip/log")
bg_start term sync slow
wait_log "$T/drip/log" "^conn $((n0 + 1)) open" 10 || diag "the sync did not connect"
sleep 1
kill -TERM "$BG_PID"
gone "$BG_PID" 5; ok $? "4: SIGTERM ends a sync blocked on a dripping server within 5 s"
wait "$BG_PID"; is $? 130 "4: exit status 130 (interrupted)"
like "$(cat "$T/term.err")" "interrupted" "4: the error says interrupted"
run_ok "4: the store opens afterwards" mx status slow

# ======== 5. SIGINT in the middle of a FETCH: the batch in flight is
# aborted, committed batches stay, the next run completes the mailbox.
# (Newest first: the 5 newest messages of this seed make 1.9 of 3.2 MB,
# so the stall at 3/4 of the bytes comes after several whole batches.)
N=120
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed deadline $N "$T/gen" >/dev/null
is "$(dc_deliver "$D" $U "$T/gen")" $N "5: $N messages delivered"
bytes=$(du -sb "$T/gen" | cut -f1)
fake_start "$T/stall" --mode proxy --to "127.0.0.1:$DC_IMAPS_PORT" \
    --cut-after $((bytes * 3 / 4)) --stall --log "$T/stall/log" || bail_out "stalling proxy"
dc_password "$D" $U > "$T/apw"
mx account add a --imap "imaps://$U@127.0.0.1:$FAKE_PORT" --password-file "$T/apw" \
    --ca-file "$DC_CA" --timeout 60 >/dev/null || bail_out "account a"
bg_start int sync a --batch 5
wait_log "$T/stall/log" "^stall 1 after" 30; ok $? "5: the proxy stalls the sync mid-mailbox"
sleep 1
kill -INT "$BG_PID"
gone "$BG_PID" 5; ok $? "5: SIGINT ends the stalled sync within 5 s"
wait "$BG_PID"; is $? 130 "5: exit status 130"
like "$(cat "$T/int.err")" "interrupted" "5: the error says interrupted"
got=$(mx_count a)
diag "committed before the signal: $got of $N"
ok $([ "$got" -gt 0 ] && [ "$got" -lt $N ] && [ $((got % 5)) -eq 0 ]; echo $?) \
    "5: whole batches were committed and kept ($got)"
mx sync a --batch 5 >"$T/so" 2>"$T/se"; rc=$?
is "$rc" 0 "5: the next run completes"
is "$(mx_count a)" $N "5: all $N messages stored once"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "5: export == server"

# ======== 5b. a command without a handler of its own (flag): SIGTERM
# interrupts its wait on the server and it reports it (main.c's handler)
mid=$(mx ls a --json | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
mx account edit a --imap "imap://$U@127.0.0.1:$DRIP" >/dev/null || bail_out "account edit a"
n0=$(grep -c '^conn [0-9]* open' "$T/drip/log")
bg_start flag flag "$mid" --seen
wait_log "$T/drip/log" "^conn $((n0 + 1)) open" 10 || diag "flag did not connect"
kill -TERM "$BG_PID"
gone "$BG_PID" 5; ok $? "5b: SIGTERM ends a flag blocked on a dripping server within 5 s"
wait "$BG_PID"; is $? 130 "5b: exit status 130, not death by the signal"
like "$(cat "$T/flag.err")" "interrupted" "5b: the error says interrupted"


# ======== 6. mxsyncd, 2 workers, 2 accounts on the drip, 1 healthy one:
# the healthy account syncs and gets its pushes; SIGTERM exits promptly
MXSYNCD=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd
MXD=$T/dd; export MXD
DLOG=$T/mxsyncd.log
for n in d1 d2; do
    mx account add $n --imap "imap://u@127.0.0.1:$DRIP" --password-file "$T/pw" \
        --timeout 5 >/dev/null || bail_out "account $n"
done
mx_add h "$D" bob@example.test imaps >/dev/null || bail_out "account h"
printf '[daemon]\nworkers = 2\nbackoff_min = 1\nbackoff_max = 2\n' > "$MXD/mxsync.conf"
n0=$(grep -c '^conn [0-9]* open' "$T/drip/log")
"$MXSYNCD" -d "$MXD" </dev/null >"$DLOG" 2>&1 &
DPID=$!
at_exit "kill -KILL $DPID 2>/dev/null"
chk() { "$MX_PY" "$MX_TOOLS/daemon_check.py" "$@"; }
r=$(chk wait-state --mx "$MX_BIN" --dir "$MXD" --account h --state idle --timeout 60)
ok $? "6: the healthy account reaches idle while two accounts drip"; diag "h: $r"
before=$(mx events --json | tail -n 1 | sed -n 's/^{"id":\([0-9]*\),.*/\1/p')
dc_deliver "$D" bob@example.test "$(ls "$T/gen/"* | head -n 1)" >/dev/null
r=$(chk wait-event --mx "$MX_BIN" --dir "$MXD" --after "${before:-0}" --type message.new --timeout 30)
ok $? "6: a delivered message becomes a message.new (IDLE push)"; diag "$r"
# Accounts in backoff never hold every worker: after the first two
# attempts, no drip connection opens while another one is still held.
wait_log "$T/drip/log" "^conn $((n0 + 6)) closed" 40 || diag "fewer drip retries than expected"
maxc=$(awk -v n0="$n0" '
    /^drip [0-9]+ open, [0-9]+ others live/ { if ($2 - n0 > 2 && $4 > max) max = $4 }
    END { print max + 0 }' "$T/drip/log")
retries=$(($(grep -c '^conn [0-9]* open' "$T/drip/log") - n0 - 2))
diag "drip retries since the first two attempts: $retries, others live at a connect: $maxc"
ok $([ "$retries" -ge 4 ]; echo $?) "6: the dripping accounts were retried ($retries)"
ok $([ "$maxc" -eq 0 ]; echo $?) "6: at most one dripping account held a worker at a time (others live: $maxc)"

# a blocked job with a long timeout: SIGTERM must not wait for it (d3 has
# a drip of its own, so its connection is told apart from d1's and d2's)
fake_start "$T/drip3" --mode drip --log "$T/drip3/log" || bail_out "drip server 3"
mx account add d3 --imap "imap://u@127.0.0.1:$FAKE_PORT" --password-file "$T/pw" \
    --timeout 120 >/dev/null || bail_out "account d3"
kill -HUP "$DPID"
wait_log "$T/drip3/log" "^conn 1 open" 20
ok $? "6: after SIGHUP the new account d3 connects to its drip (timeout 120 s)"
sleep 2
kill -TERM "$DPID"
gone "$DPID" 6; ok $? "6: SIGTERM stops mxsyncd within 6 s although a worker waits on a drip"
wait "$DPID"; is $? 0 "6: mxsyncd exit status 0"
unlike "$(cat "$DLOG")" "jobs still running" "6: no job was left running at exit"
like "$(cat "$DLOG")" "interrupting network waits" "6: the blocked network wait was interrupted"
run_ok "6: the store opens afterwards" mx status h

done_testing
