#!/bin/sh
# Push without the server's re-IDLE delay (doc/internals/push.md).
# idle_connection = separate (the default): mxsyncd keeps a second
# connection in IDLE on INBOX for the whole run and syncs on the first;
# Dovecot's rawlog shows that session sends IDLE once and never DONE while
# mail arrives, and each delivery gives exactly one message.new.
# idle_connection = shared: one connection, DONE / sync / IDLE per push,
# still one message.new per delivery.  `mxsync events --follow` wakes on
# the store's commit (inotify), not on its poll timer.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"
command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
U=alice@example.test
DLOG=$T/mxsyncd.log
CHK="$MX_TOOLS/daemon_check.py"
mx_init "$T"
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
# Every IMAP session's client bytes in $T/rawlog/*.in (written by the
# session's own process, which runs as nobody when we are root).
mkdir -m 0777 "$T/rawlog"
printf 'protocol imap {\n  rawlog_dir = %s/rawlog\n}\n' "$T" > "$D/local.conf"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
at_exit d_stop_at_exit

wait_state() { # NAME STATE TIMEOUT
    "$MX_PY" "$CHK" wait-state --mx "$MX_BIN" --dir "$MXD" --account "$1" \
        --state "$2" --timeout "$3" >/dev/null
}
n_new() { mx events --json | grep -c '"type":"message.new"'; }
# wait_new N DESC: until the feed holds N message.new (20 s at most)
wait_new() {
    wn=0
    while [ "$(n_new)" -lt "$1" ] && [ $wn -lt 200 ]; do sleep 0.1; wn=$((wn + 1)); done
    is "$(n_new)" "$1" "$2"
}
# one line per IMAP session (rawlog): "IDLE-commands DONE-lines", sorted
sessions() {
    for f in "$T"/rawlog/*.in; do
        [ -e "$f" ] || continue
        printf '%s %s\n' "$(grep -c ' IDLE' "$f")" "$(grep -c ' DONE' "$f")"
    done | LC_ALL=C sort
}

"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 6 "$T/gen" >/dev/null
set -- "$T"/gen/*
run_ok "account add" mx_add a "$D" $U imaps

# ---- events --follow: inotify wakes it, not its (here: hour-long) poll
( MX_EVENTS_POLL_MS=3600000 exec "$MX_BIN" -d "$MXD" events --follow \
      </dev/null >"$T/follow.out" 2>"$T/follow.err" &
  echo $! > "$T/follow.pid" )
FPID=$(cat "$T/follow.pid")
at_exit "kill $FPID 2>/dev/null"
csw() { sed -n 's/^voluntary_ctxt_switches:[[:space:]]*//p' "/proc/$FPID/status"; }
sleep 0.5
c0=$(csw); sleep 1; c1=$(csw)
is "$c1" "$c0" "events --follow sleeps while nothing commits (no polling)"

# ---- separate (the default)
printf '[daemon]\nworkers = 2\nfolder_interval = 3600\nidle_restart = 30\n' > "$MXD/mxsync.conf"
d_start
wait_state a idle 30; ok $? "separate: account a reaches idle"
i=0
for f in "$1" "$2" "$3"; do
    i=$((i + 1))
    is "$(dc_deliver "$D" $U "$f")" 1 "separate: delivery $i accepted"
    wait_new $i "separate: delivery $i -> exactly $i message.new"
done
is "$(sessions | tr '\n' ',')" "0 0,1 0," \
   "separate: two sessions; one sent IDLE once and never DONE, the other no IDLE"
# the sync session listed folders once, at start: a push syncs INBOX as
# the store knows it (one round trip less between EXISTS and the event)
for f in "$T"/rawlog/*.in; do
    grep -q ' IDLE' "$f" || lists=$(grep -c ' LIST ' "$f")
done
is "${lists:-none}" 1 "separate: 3 pushes synced INBOX without LIST"
fi=0
while [ "$(grep -c 'message\.new' "$T/follow.out")" -lt 3 ] && [ $fi -lt 100 ]; do
    sleep 0.1; fi=$((fi + 1))
done
is "$(grep -c 'message\.new' "$T/follow.out")" 3 \
   "events --follow printed the 3 message.new (woken by the commits)"
kill "$FPID"
# idle_restart = 30: the IDLE session re-issues IDLE (DONE, IDLE) on its own
ri=0
while [ "$(sessions | tr '\n' ',')" != "0 0,2 1," ] && [ $ri -lt 600 ]; do sleep 0.1; ri=$((ri + 1)); done
is "$(sessions | tr '\n' ',')" "0 0,2 1," "separate: after idle_restart the same session re-issued IDLE once"
i=$((i + 1))
is "$(dc_deliver "$D" $U "$6")" 1 "separate: delivery $i after the IDLE restart accepted"
wait_new $i "separate: delivery $i -> exactly $i message.new"
d_stop_at_exit
is "$(n_new)" $i "separate: still exactly $i message.new after the stop"

# ---- shared
rm -f "$T"/rawlog/*
printf '[daemon]\nworkers = 2\nfolder_interval = 3600\n\n[account a]\nidle_connection = shared\n' > "$MXD/mxsync.conf"
d_start
wait_state a idle 30; ok $? "shared: account a reaches idle"
for f in "$4" "$5"; do
    i=$((i + 1))
    is "$(dc_deliver "$D" $U "$f")" 1 "shared: delivery $i accepted"
    wait_new $i "shared: delivery $i -> exactly $i message.new"
done
# DONE, sync, IDLE again per push: one session, IDLE issued 3 times.
like "$(sessions)" '^3 2$' "shared: one session, IDLE re-issued after each push"
is "$(sessions | wc -l | tr -d ' ')" 1 "shared: a single session"
d_stop_at_exit

# ---- a bad value is refused, naming it
printf '[daemon]\nidle_connection = both\n' > "$MXD/mxsync.conf"
run_fails "idle_connection = both is refused" "$MXSYNCD" -d "$MXD"
like "$MX_OUT" "idle_connection = both" "the error names the setting"
is "$(n_new)" 6 "nothing lost or added: 6 message.new for 6 deliveries"
unlike "$(cat "$DLOG" "$T/follow.err")" "AddressSanitizer|LeakSanitizer|runtime error|SUMMARY:" \
       "no sanitizer report from the daemons or the follower"
done_testing
