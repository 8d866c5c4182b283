#!/bin/sh
# A full disk during a sync: the sync fails with a clear error and a
# non-crash exit code, the store stays consistent (every stored message is
# complete, nothing half-written), and once there is room again the next
# run finishes the job with exactly the server's bytes.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ "$(id -u)" = 0 ] || skip_all "needs root to mount a small tmpfs"
mx_tmpdir; T=$MX_TMP
mkdir -p "$T/small"
mount -t tmpfs -o size=3m,mode=0755 tmpfs "$T/small" 2>"$T/mount.err" ||
    skip_all "cannot mount a tmpfs here: $(cat "$T/mount.err")"
at_exit "umount '$T/small' 2>/dev/null"
D=$T/dc
mx_init "$T"
MXD=$T/small/data
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 200 "$T/gen" >/dev/null
is "$(dc_deliver "$D" $U "$T/gen")" 200 "200 messages (about 6 MB) delivered"
run_ok "account add on a 3 MB file system" mx_add a "$D" $U imaps

mx sync a --batch 20 >"$T/so" 2>"$T/se"; rc=$?
ok $([ "$rc" -ne 0 ] && [ "$rc" -lt 128 ]; echo $?) "sync fails without crashing (exit $rc)"
is "$rc" 6 "exit code 6 (local store or disk)"
like "$(cat "$T/se")" "no space left on device|store is full" "the error says the disk is full"
diag "$(tail -1 "$T/se")"
n=$(mx ls a --json | "$MX_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
recs=$(mdb_stat -s messages "$MXD" | sed -n 's/.*Entries: //p')
diag "stored before the disk filled up: $n"
is "$recs" "$n" "store consistent: every record is listed"
ok $([ "$n" -lt 200 ]; echo $?) "and not everything was stored"
bad=0
for id in $(mx ls a --json | "$MX_PY" -c 'import json,sys; print(" ".join(m["id"] for m in json.load(sys.stdin)))'); do
    mx show "$id" --raw >/dev/null 2>&1 || bad=$((bad + 1))
done
is "$bad" 0 "every stored message has its complete bytes"

mount -o remount,size=64m "$T/small" || bail_out "remount failed"
run_ok "with room again the next sync finishes" mx sync a
is "$(mx_count a)" 200 "all 200 messages, none twice"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "export == server"
done_testing
