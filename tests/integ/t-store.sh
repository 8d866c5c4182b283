#!/bin/sh
# The store's files against a real Dovecot: a truncated data.mdb (half, one
# page, empty) is refused by every command with exit 6 and left untouched
# (no SIGBUS, no new empty store); read-only commands on a mistyped data
# dir create nothing; a second mxsyncd on one data dir is refused; lock.mdb
# deleted under a syncing mxsyncd stops it with a clear error and refuses
# CLI writers, and a restart ends equal to the server; status after a
# kill -9 of the daemon says it is not running; a world-readable data.mdb
# is warned about.
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
mx_init "$T"
dc_setup "$D" alice@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
CHK="$MX_TOOLS/daemon_check.py"

"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed store 40 "$T/gen" >/dev/null
GEN=$(ls "$T/gen")
genfile() { echo "$T/gen/$(echo "$GEN" | sed -n "${1}p")"; }
deliver_range() { # FIRST LAST
    for n in $(seq "$1" "$2"); do
        dc_deliver "$D" $U "$(genfile "$n")" >/dev/null 2>>"$T/deliver.err"
    done
}
# sha256 and size of a file
fsum() { sha256sum < "$1" | cut -d' ' -f1; stat -c %s "$1"; }

# ---- the daemon: started in the background, PID kept, always stopped
DPID=
DLOG=$T/mxsyncd.log
d_start() {
    "$MXSYNCD" -d "$MXD" </dev/null >>"$DLOG" 2>&1 &
    DPID=$!
}
SPID=   # a second mxsyncd
# alive = exists and is not a zombie (it is our child until waited for)
p_alive() {
    [ -n "$1" ] && [ -r "/proc/$1/status" ] &&
        [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status")" != Z ]
}
d_alive() { p_alive "$DPID"; }
# waits (at most $2 tenths of a second) for process $1 to exit
p_wait_exit() {
    dwi=0
    while p_alive "$1" && [ $dwi -lt "$2" ]; do sleep 0.1; dwi=$((dwi + 1)); done
    ! p_alive "$1"
}
d_wait_exit() { p_wait_exit "$DPID" "$1"; }
d_stop_at_exit() {
    [ -n "$SPID" ] && { kill -KILL "$SPID" 2>/dev/null; wait "$SPID" 2>/dev/null; }
    [ -n "$DPID" ] || return 0
    kill -CONT "$DPID" 2>/dev/null; kill -TERM "$DPID" 2>/dev/null
    d_wait_exit 100 || kill -KILL "$DPID"
    wait "$DPID" 2>/dev/null
    DPID=
}
at_exit d_stop_at_exit
# Runs an mxsyncd on DIR that should refuse to start, in the background so
# that one that does not cannot hang the test: ok if it exited within 10 s
# (exit status in $SRC, output in $T/second.log), else stopped and fails.
d_refused() {
    "$MXSYNCD" -d "$1" </dev/null >"$T/second.log" 2>&1 &
    SPID=$!
    p_wait_exit "$SPID" 100; drc=$?
    p_alive "$SPID" && kill -TERM "$SPID"
    wait "$SPID"; SRC=$?
    SPID=
    return $drc
}
wait_state() { # NAME STATES TIMEOUT
    WS=$("$MX_PY" "$CHK" wait-state --mx "$MX_BIN" --dir "$MXD" --account "$1" \
        --state "$2" --timeout "$3")
}

deliver_range 1 20
run_ok "account a" mx_add a "$D" $U imaps
run_ok "first sync" mx sync a
is "$(mx_count a INBOX)" 20 "20 messages stored"
MID=$(mx ls a --json | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

# ======== 1. read-only commands on a mistyped data dir
TYPO=$T/mxdta
for cmd in "status" "ls a" "show $MID" "events" "export a --format mbox --out $T/x.mbox" \
           "flag $MID --seen" "sync a" "outbox"; do
    # shellcheck disable=SC2086
    run_fails "1: '$cmd' on a missing data dir fails" "$MX_BIN" -d "$TYPO" $cmd
    is "$MX_RC" 3 "1: '$cmd': exit 3"
    like "$MX_OUT" "no store in $TYPO" "1: '$cmd': says there is no store"
    ok $([ ! -e "$TYPO" ]; echo $?) "1: '$cmd': created nothing"
done
mkdir "$TYPO"
run_fails "1: status in an empty dir fails" "$MX_BIN" -d "$TYPO" status
is "$(ls -A "$TYPO")" "" "1: the empty dir stays empty"
run_fails "1: -d \"\" is refused" "$MX_BIN" -d "" status
is "$MX_RC" 2 "1: -d \"\": exit 2"
like "$MX_OUT" "empty data directory" "1: -d \"\": says why"
run_fails "1: export --out \"\" is refused" mx export a --format maildir --out ""
like "$MX_OUT" "empty" "1: export --out \"\": says why"
unlike "$MX_OUT" "AddressSanitizer|runtime error" "1: export --out \"\": no sanitizer report"

# ======== 2. truncated data.mdb
FULL=$(stat -c %s "$MXD/data.mdb")
for cut in half page zero; do
    TD=$T/trunc-$cut
    mkdir -m 700 "$TD"
    cp "$MXD/data.mdb" "$TD/data.mdb"
    case $cut in
        half) size=$((FULL / 2)); want="is truncated: $size bytes" ;;
        page) size=4096; want="is truncated \\(4096 bytes, shorter than its two meta pages" ;;
        zero) size=0; want="is empty \\(0 bytes\\)" ;;
    esac
    truncate -s "$size" "$TD/data.mdb"
    before=$(fsum "$TD/data.mdb")
    for cmd in "status" "ls a" "show $MID" "events" "account list" \
               "sync a" "export a --format maildir --out $T/exp-$cut" \
               "flag $MID --seen" "outbox"; do
        # shellcheck disable=SC2086
        run_fails "2 ($cut): '$cmd' fails" "$MX_BIN" -d "$TD" $cmd
        is "$MX_RC" 6 "2 ($cut): '$cmd': exit 6 (no SIGBUS)"
        like "$MX_OUT" "store file $TD/data.mdb $want" "2 ($cut): '$cmd': says what is wrong"
    done
    d_refused "$TD"; ok $? "2 ($cut): mxsyncd refuses to start"
    is "$SRC" 6 "2 ($cut): mxsyncd: exit 6"
    like "$(cat "$T/second.log")" "$want" "2 ($cut): mxsyncd says what is wrong"
    is "$(fsum "$TD/data.mdb")" "$before" "2 ($cut): data.mdb untouched"
done

# ======== 3. one mxsyncd per data dir
d_start
wait_state a idle 30; ok $? "3: daemon: a reaches idle"
d_refused "$MXD"; ok $? "3: a second mxsyncd is refused"
is "$SRC" 1 "3: second mxsyncd: exit 1"
like "$(cat "$T/second.log")" "mxsyncd \\(pid $DPID\\) is already running on $MXD" \
    "3: it names the running one"
ok $(d_alive; echo $?) "3: the first one still runs"
like "$(mx status a)" "daemon: idle since" "3: status: idle"

# ======== 4. lock.mdb deleted under the syncing daemon
# Paused (SIGSTOP: it keeps its files and locks) so that it cannot notice
# the deletion before the CLI below runs.
kill -STOP "$DPID"
rm "$MXD/lock.mdb"
deliver_range 21 30
# a CLI writer now would create a second lock table beside the daemon's
run_fails "4: mxsync sync refused while the daemon uses the deleted lock.mdb" mx sync a
is "$MX_RC" 6 "4: exit 6"
like "$MX_OUT" "mxsyncd \\(pid $DPID\\) uses a lock file that is no longer $MXD/lock.mdb" \
    "4: says why"
kill -CONT "$DPID"
d_wait_exit 300; ok $? "4: the daemon stops by itself"
d_alive && kill -TERM "$DPID"
wait "$DPID"; rc=$?
DPID=
is "$rc" 6 "4: daemon exit status 6"
like "$(cat "$DLOG")" "$MXD/lock.mdb was deleted or replaced while the store was open" \
    "4: the daemon's log says why"
deliver_range 31 35
d_start
wait_state a idle 30; ok $? "4: restarted daemon: a reaches idle"
i=0
while [ "$(mx_count a INBOX)" != 35 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
is "$(mx_count a INBOX)" 35 "4: after the restart: 35 messages"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "4: store equal to the server"
run_ok "4: a fresh sync finds the store consistent" mx sync a

# ======== 5. status after kill -9 of the daemon
kill -KILL "$DPID"; wait "$DPID" 2>/dev/null
DPID=
run_ok "5: status works" mx status a
like "$MX_OUT" "daemon: not running \\(last seen [0-9-]+ [0-9:]+\\)" "5: says the daemon is not running"
unlike "$MX_OUT" "daemon: idle" "5: not shown as idle"
is "$(mx status --json | "$MX_PY" -c '
import json,sys
print(json.load(sys.stdin)[0]["daemon"]["running"])')" False "5: --json: daemon.running false"

# ======== 6. modes that let others read the mail
chmod 644 "$MXD/data.mdb"
run_ok "6: status works with a world-readable data.mdb" mx status a
like "$MX_OUT" "data.mdb is mode 0644: other users can read" "6: warns naming the mode"
chmod 600 "$MXD/data.mdb"
run_ok "6: status" mx status a
unlike "$MX_OUT" "mode 0" "6: no warning at 0600"

unlike "$(cat "$DLOG")" "AddressSanitizer|LeakSanitizer|runtime error|SUMMARY:" \
    "no sanitizer report in the daemon's log"
done_testing
