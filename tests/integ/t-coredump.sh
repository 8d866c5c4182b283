#!/bin/sh
# No core dump may hold a secret (issue 12, finding 2): mxsyncd and mxsync
# set RLIMIT_CORE to 0 and make themselves non-dumpable before any secret is
# in memory, even when started with `ulimit -c unlimited`.  The machine's
# core_pattern is not ours to change (and may discard cores anyway), so the
# test reads from /proc what the kernel will do on a crash:
#   - /proc/PID/limits says "Max core file size 0 0";
#   - /proc/PID/mem belongs to root: the kernel's mark of a non-dumpable
#     process (a dumpable one's belongs to its user).  As root, the
#     programs run as nobody (setpriv) so that the two can be told apart;
#     a control process under the same conditions shows the other owner.
# Then the crash signal is sent and the process must die of it.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
: "${MX_BIN:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/cli/mxsync}"
: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"

[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
[ -x "$MX_PY" ] || skip_all "no $MX_PY"
if [ "$(id -u)" = 0 ]; then
    command -v setpriv >/dev/null || skip_all "root without setpriv"
    RUNAS="setpriv --reuid=65534 --regid=65534 --clear-groups"
    UID_RUN=65534
else
    RUNAS=
    UID_RUN=$(id -u)
fi
mx_tmpdir core; T=$MX_TMP
MXSYNC_KEY=$("$MX_PY" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
export MXSYNC_KEY
MXSYNC_TEST_MARK=1; export MXSYNC_TEST_MARK
mkdir "$T/data" "$T/ddata" && chown "$UID_RUN" "$T/data" "$T/ddata" ||
    bail_out "data dirs"
echo 'core-test-password' > "$T/pw"
chmod 644 "$T/pw"

# Every process started here is stopped by PID at exit.
PIDS=
stop_all() {
    for p in $PIDS; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
at_exit stop_all

# start_bg LOG CMD...: CMD in the background with cores unlimited; sets BG
start_bg() {
    _log=$1; shift
    (ulimit -c unlimited && exec "$@" </dev/null >"$_log" 2>&1) &
    BG=$!
    PIDS="$PIDS $BG"
}
# wait_for FILE ERE: until a line of FILE matches (at most 10 s)
wait_for() {
    _w=0
    while ! grep -qE "$2" "$1" 2>/dev/null && [ $_w -lt 200 ]; do
        sleep 0.05; _w=$((_w + 1))
    done
    grep -qE "$2" "$1" 2>/dev/null
}
core_limit() { # PID -> "SOFT HARD"
    sed -n 's/^Max core file size[[:space:]]*\([^[:space:]]*\)[[:space:]]*\([^[:space:]]*\).*/\1 \2/p' "/proc/$1/limits"
}
mem_owner() { stat -c %u "/proc/$1/mem"; }
# crash PID SIG: sends SIG, sets RC to the exit status (not in $(...):
# only this shell can wait for its child)
crash() {
    kill "-$2" "$1"
    wait "$1"
    RC=$?
}

# ---- the control: the same start without mxsync
start_bg "$T/ctl.log" $RUNAS sleep 60
CTL=$BG
wait_for "/proc/$CTL/limits" 'Max core file size +unlimited' ||
    bail_out "control did not start"
is "$(core_limit "$CTL")" "unlimited unlimited" "control: cores unlimited"
is "$(mem_owner "$CTL")" "$UID_RUN" "control: dumpable (/proc/PID/mem is its user's)"
crash "$CTL" SEGV
is "$RC" 139 "control: died of SIGSEGV"

# ---- mxsyncd
start_bg "$T/d.log" $RUNAS "$MXSYNCD" -d "$T/ddata"
D=$BG
wait_for "$T/d.log" 'mxsyncd: info: mxsyncd .*data dir' ||
    bail_out "mxsyncd did not start: $(cat "$T/d.log")"
is "$(core_limit "$D")" "0 0" "mxsyncd: core file size 0 (soft and hard)"
is "$(mem_owner "$D")" 0 "mxsyncd: not dumpable (/proc/PID/mem is root's)"
# /proc/PID/environ shows the environment block as the process holds it:
# the key's bytes must be gone from it (and from what children inherit)
is "$(tr '\0' '\n' < "/proc/$D/environ" | grep -cF -- "$MXSYNC_KEY")" 0 \
    "mxsyncd: the MXSYNC_KEY value is wiped from its environment"
like "$(tr '\0' '\n' < "/proc/$D/environ")" '^MXSYNC_TEST_MARK=' \
    "mxsyncd: control: the rest of its environment is readable"
unlike "$(cat "$T/d.log")" 'cannot disable core dumps' "mxsyncd: no warning"
crash "$D" SEGV
# ASan's SEGV handler reports and aborts (abort_on_error=1): 134 there
[ -n "${MX_SANITIZED:-}" ] && [ "$RC" = 134 ] && RC=139
is "$RC" 139 "mxsyncd: died of SIGSEGV (no core: limit 0, not dumpable)"

# ---- mxsync blocked on a silent server, with the account's password
# unsealed in memory
fake_start "$T/f" --mode greet-only || bail_out "fakeimap"
run_ok "account added" $RUNAS "$MX_BIN" -d "$T/data" account add silent \
    --imap "imap://u@127.0.0.1:$FAKE_PORT" --password-file "$T/pw" \
    --insecure-plaintext --timeout 60
start_bg "$T/c.log" $RUNAS "$MX_BIN" -d "$T/data" sync silent
C=$BG
wait_for "$FAKE_LOG" '^C [0-9]+ ' || bail_out "mxsync sync sent nothing"
is "$(core_limit "$C")" "0 0" "mxsync: core file size 0 (soft and hard)"
is "$(mem_owner "$C")" 0 "mxsync: not dumpable (/proc/PID/mem is root's)"
crash "$C" ABRT
is "$RC" 134 "mxsync: died of SIGABRT (no core: limit 0, not dumpable)"
unlike "$(cat "$T/c.log")" 'cannot disable core dumps' "mxsync: no warning"

done_testing
