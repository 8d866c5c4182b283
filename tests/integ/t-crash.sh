#!/bin/sh
# Crash safety: kill -9 the sync again and again during a large initial sync
# (and once during an incremental one); after every kill the store opens,
# holds no duplicate, and the final state equals the server's.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
N=${MX_CRASH_MSGS:-1500}
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" $N "$T/gen" >/dev/null
is "$(dc_deliver "$D" $U "$T/gen")" $N "$N messages delivered"
mx_add a "$D" $U imaps >/dev/null

records() { mdb_stat -s messages "$MXD" 2>/dev/null | sed -n 's/.*Entries: //p'; }

# crash_loop BATCH: kill -9 after growing delays until a run finishes
crash_loop() {
    kills=0; delay_ms=60; done_ok=1; prev=0; mono=0
    while [ $kills -lt 12 ]; do
        "$MX_BIN" -d "$MXD" sync a --batch "$1" >"$T/so" 2>"$T/se" &
        pid=$!
        sleep "$(echo "$delay_ms" | awk '{printf "%.3f", $1/1000}')"
        if kill -9 $pid 2>/dev/null; then
            wait $pid 2>/dev/null
            kills=$((kills + 1))
            n=$(mx_count a 2>/dev/null)
            [ -n "$n" ] || { mono=1; diag "store unreadable after kill $kills"; }
            [ "${n:-0}" -ge "$prev" ] || mono=1
            [ "${n:-0}" -le $N ] || mono=1
            [ "$(records)" = "${n:-x}" ] || { mono=1; diag "records $(records) != listed $n"; }
            diag "kill $kills after ${delay_ms} ms: $n stored"
            prev=${n:-0}
            delay_ms=$((delay_ms + 70))
        else
            wait $pid; done_ok=$?
            break
        fi
    done
}

crash_loop 25
ok $([ $kills -ge 3 ]; echo $?) "sync was killed $kills times mid-way"
ok $mono "after every kill: store readable, counts only grow, never above $N, no stray records"
if [ $done_ok -ne 0 ]; then
    mx sync a >"$T/so" 2>"$T/se"; done_ok=$?
fi
is $done_ok 0 "a run completes after the kills"
run_ok "a further sync succeeds" mx sync a
is "$(mx_count a)" $N "exactly $N messages: nothing lost, nothing duplicated"
is "$(records)" $N "exactly $N records in LMDB"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "export == server"

# events: exactly one message.new per message
newev=$(mdb_dump -p -s events "$MXD" | grep -c '"type":"message.new"')
is "$newev" $N "exactly one message.new event per message"

# incremental: new mail arriving, killed mid-way again
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 300 "$T/gen2" --seed 2 >/dev/null 2>&1 ||
    "$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 300 "$T/gen2" >/dev/null
dc_deliver "$D" $U "$T/gen2" >/dev/null
N=$((N + 300))
crash_loop 10
[ $done_ok -eq 0 ] || { mx sync a >/dev/null 2>&1; }
is "$(mx_count a)" $N "incremental after kills: exactly $N messages"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "export == server after incremental crashes"
done_testing
