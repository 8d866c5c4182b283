#!/bin/sh
# Hostile and broken IMAP servers (tools/hostileimap.py): unsolicited and
# UID-less FETCH responses, missing answers, truncated and huge literals,
# UIDVALIDITY 0 or missing, a lying EXISTS, folder names built to escape an
# export, BYE in the middle of a FETCH, a folder that cannot be selected.
# For each: no crash (exit < 128, no sanitizer report), a clear message,
# nothing half-written, and the store stays usable (status, a real sync).
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
echo hostilepw > "$T/pw"

# hostile_start NAME SCENARIO [--first-only] -> HPORT, HLOG; stopped at exit
hostile_start() {
    hd=$T/h.$1; shift
    mkdir -p "$hd"; : > "$hd/port"
    ( "$MX_PY" "$MX_TOOLS/hostileimap.py" --log "$hd/log" --scenario "$@" \
          </dev/null >"$hd/port" 2>"$hd/stderr" &
      echo $! > "$hd/pid" )
    at_exit "hostile_stop '$hd' >/dev/null"
    HLOG=$hd/log
    hi=0
    while [ $hi -lt 200 ]; do
        HPORT=$(head -n 1 "$hd/port" 2>/dev/null)
        [ -n "$HPORT" ] && return 0
        sleep 0.025; hi=$((hi + 1))
    done
    return 1
}
hostile_stop() {
    hp=$(cat "$1/pid" 2>/dev/null) || return 0
    kill -TERM "$hp" 2>/dev/null
    hi=0
    while kill -0 "$hp" 2>/dev/null && [ $hi -lt 60 ]; do
        sleep 0.05; hi=$((hi + 1))
    done
    rm -f "$1/pid"
}

# acct NAME SCENARIO [--first-only] [--timeout S]: server + account NAME
acct() {
    an=$1; asc=$2; shift 2
    ato=5
    afo=
    for aa in "$@"; do
        case $aa in
        --first-only) afo=--first-only ;;
        *) ato=$aa ;;
        esac
    done
    hostile_start "$an" "$asc" $afo || bail_out "hostileimap ($asc) did not start"
    mx account add "$an" --imap "imap://u@127.0.0.1:$HPORT" --password-file "$T/pw" \
        --insecure-plaintext --timeout "$ato" >/dev/null 2>&1 ||
        bail_out "account add $an"
}

# sync_rc NAME -> exit code; stdout in $T/so, stderr in $T/se
sync_rc() { mx sync "$@" >"$T/so" 2>"$T/se"; echo $?; }

# clean_exit RC DESC: a non-signal exit and no sanitizer report
clean_exit() {
    if [ "$1" -lt 128 ] && ! grep -q 'Sanitizer' "$T/se"; then
        pass "$2 (exit $1, no crash)"
    else
        fail "$2 (exit $1, no crash)"
        diag "$(head -40 "$T/se")"
    fi
}

count() { mx_count "$@" 2>/dev/null || echo error; }
subjects() {
    mx ls "$1" --json | "$MX_PY" -c '
import json, sys
for m in json.load(sys.stdin):
    print(m["subject"])' | LC_ALL=C sort
}
all5=$(printf '%s\n' 'Archive message 1' 'Archive message 2' 'INBOX message 1' \
    'INBOX message 2' 'INBOX message 3')

# 1. baseline: the fake server itself is well-behaved in "normal"
acct normal normal
rc=$(sync_rc normal); is "$rc" 0 "normal: syncs"
is "$(subjects normal)" "$all5" "normal: the 5 messages, once each"
rc=$(sync_rc normal); is "$rc" 0 "normal: second sync"
is "$(count normal)" 5 "normal: still 5"

# 2. FETCH answers for a UID never requested (999) and without any UID
acct unsol unsolicited
rc=$(sync_rc unsol); clean_exit "$rc" "unsolicited FETCH"
is "$rc" 0 "unsolicited FETCH responses are ignored, the sync succeeds"
is "$(subjects unsol)" "$all5" "unsolicited: exactly the requested messages are stored"

# 3. an unsolicited flag update during a body FETCH (legal: RFC 3501 7.4.2)
acct uflags flags-unsolicited
rc=$(sync_rc uflags); clean_exit "$rc" "unsolicited FLAGS during UID FETCH"
is "$rc" 0 "unsolicited FLAGS update does not fail the sync"
is "$(count uflags)" 5 "unsolicited FLAGS: all 5 messages stored"

# 4./5. a requested message answered without UID, or not answered at all:
# the next run against a well-behaved server must still fetch it
for sc in nouid omit; do
    acct "$sc" "$sc" --first-only
    rc=$(sync_rc "$sc"); clean_exit "$rc" "$sc: first sync"
    got=$(count "$sc")
    ok $([ "$got" -le 5 ]; echo $?) "$sc: nothing invented ($got stored)"
    rc=$(sync_rc "$sc"); is "$rc" 0 "$sc: re-run against the repaired server"
    is "$(subjects "$sc")" "$all5" "$sc: INBOX message 2 is not skipped for good"
done

# 6. literal shorter than announced, then close
acct short short-literal --first-only
rc=$(sync_rc short); clean_exit "$rc" "short literal + close"
is "$rc" 4 "short literal: temporary error (exit 4)"
like "$(cat "$T/se")" "connection closed" "short literal: says the connection closed"
is "$(count short)" 0 "short literal: nothing half-written"
like "$(mx status short --json)" '"state": "partial"' "short literal: INBOX left partial"
rc=$(sync_rc short); is "$rc" 0 "short literal: re-run completes"
is "$(subjects short)" "$all5" "short literal: all messages once after the re-run"

# 7. 300 MiB announced, 64 KiB sent, then silence; and the same with close
acct huge huge 3
"$MX_PY" -c '
import resource, subprocess, sys
with open(sys.argv[1], "w") as so, open(sys.argv[2], "w") as se:
    rc = subprocess.call(sys.argv[4:], stdout=so, stderr=se)
open(sys.argv[3], "w").write("%d %d\n" % (rc if rc >= 0 else 128 - rc,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
' "$T/so" "$T/se" "$T/rss" "$MX_BIN" -d "$MXD" sync huge
read -r rc rss < "$T/rss"
clean_exit "$rc" "300 MiB literal announced, then stall"
is "$rc" 4 "huge literal + stall: times out (exit 4)"
like "$(cat "$T/se")" "timed out" "huge literal: says it timed out"
ok $([ "$rss" -lt 150000 ]; echo $?) "huge literal: not allocated (max RSS ${rss} KB)"
is "$(count huge)" 0 "huge literal: nothing stored"
acct hugec huge-close
rc=$(sync_rc hugec); clean_exit "$rc" "300 MiB literal announced, 1 MiB sent, close"
is "$rc" 4 "huge literal + close: exit 4"
is "$(count hugec)" 0 "huge literal + close: nothing stored"

# 8. UIDVALIDITY 0 / missing
for sc in uidvalidity0 nouidvalidity; do
    acct "$sc" "$sc" --first-only
    rc=$(sync_rc "$sc"); clean_exit "$rc" "$sc"
    ok $([ "$rc" -ne 0 ]; echo $?) "$sc: refused (exit $rc)"
    like "$(cat "$T/se")" "UIDVALIDITY" "$sc: the message names UIDVALIDITY"
    unlike "$(mx status "$sc" --json)" '"state": "(partial|synced)"' "$sc: no folder state recorded"
    rc=$(sync_rc "$sc"); is "$rc" 0 "$sc: a correct server afterwards syncs"
    is "$(subjects "$sc")" "$all5" "$sc: and all messages arrive once"
done

# 9. EXISTS says 1000, SEARCH tells the truth
acct exists exists-lie
rc=$(sync_rc exists); clean_exit "$rc" "lying EXISTS"
is "$rc" 0 "lying EXISTS: sync succeeds"
rc=$(sync_rc exists); is "$rc" 0 "lying EXISTS: second sync (SEARCH diff) succeeds"
is "$(subjects exists)" "$all5" "lying EXISTS: nothing expunged, nothing duplicated"

# 10. folder names that try to leave the export directory
acct evil evil-names
rc=$(sync_rc evil); clean_exit "$rc" "evil folder names"
is "$rc" 0 "evil names: sync succeeds"
is "$(count evil)" 12 "evil names: 12 messages"
mkdir -p "$T/ev/a/b/c"
touch "$T/ev/marker"
sleep 1
mx export evil --format maildir --out "$T/ev/a/b/c/md" >"$T/so" 2>"$T/se"; rc=$?
is "$rc" 0 "evil names: maildir export"
mx export evil --format mbox --out "$T/ev/a/b/c/mb" >"$T/so" 2>"$T/se"; rc=$?
is "$rc" 0 "evil names: mbox export"
outside=$(find "$T/ev" -newer "$T/ev/marker" ! -path "$T/ev/a/b/c/md*" \
    ! -path "$T/ev/a/b/c/mb*" ! -path "$T/ev/a/b/c" ! -path "$T/ev/a/b" \
    ! -path "$T/ev/a" ! -path "$T/ev")
is "$outside" "" "evil names: export wrote nothing outside --out"
ok $([ ! -e "$T/ev/a/b/etc" ] && [ ! -e "$T/ev/a/b/c/b" ] && [ ! -e /etc/cur ] && [ ! -e /abs ]; echo $?) \
    "evil names: no etc/, b/, /etc/cur or /abs created"
is "$(find "$T/ev/a/b/c/md" -path '*/cur/*' -type f | wc -l)" 12 "evil names: 12 maildir files"
is "$(find "$T/ev/a/b/c/mb" -name '*.mbox' -type f -exec cat {} + | grep -c '^From ')" 12 \
    "evil names: 12 messages in the mbox files"

# 11. BYE in the middle of a FETCH
acct bye bye-fetch --first-only
rc=$(sync_rc bye); clean_exit "$rc" "BYE mid-FETCH"
is "$rc" 4 "BYE mid-FETCH: temporary error (exit 4)"
like "$(cat "$T/se")" "closed|BYE|going away" "BYE mid-FETCH: clear message"
is "$(count bye)" 0 "BYE mid-FETCH: the interrupted batch is not half-written"
rc=$(sync_rc bye); is "$rc" 0 "BYE mid-FETCH: re-run completes"
is "$(subjects bye)" "$all5" "BYE mid-FETCH: all messages once"

# 12. SELECT of one folder answered NO
acct selno select-no
rc=$(sync_rc selno); clean_exit "$rc" "SELECT NO"
is "$rc" 7 "SELECT NO on one folder: partial (exit 7)"
like "$(cat "$T/se")" "Broken" "SELECT NO: names the folder"
is "$(count selno INBOX)" 3 "SELECT NO: INBOX synced"
is "$(count selno Archive)" 2 "SELECT NO: Archive synced"
rc=$(sync_rc selno); is "$rc" 7 "SELECT NO: second run still partial"
is "$(count selno)" 5 "SELECT NO: nothing lost on the second run"

# 13. odd flag lists
acct gflags garbage-flags
rc=$(sync_rc gflags); clean_exit "$rc" "garbage flags"
if [ "$rc" -eq 0 ]; then
    is "$(count gflags)" 5 "garbage flags: all 5 messages"
    like "$(mx ls gflags --folder INBOX --json)" '"\\\\Seen"' "garbage flags: \\Seen kept"
else
    like "$(cat "$T/se")" "unparsable|protocol|FETCH" "garbage flags: refused with a clear message"
fi

# 14. the store is still usable: status, and a real sync against Dovecot
mx status --json >"$T/so" 2>"$T/se"; rc=$?
is "$rc" 0 "status works after all of it"
"$MX_PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/so"
ok $? "status prints valid JSON"
D=$T/dc
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 5 "$T/gen" >/dev/null 2>&1
dc_deliver "$D" $U "$T/gen" >/dev/null
mx_add real "$D" $U imaps >/dev/null 2>&1
rc=$(sync_rc real); clean_exit "$rc" "real sync"
is "$rc" 0 "a real sync into the same store works"
is "$(mx_export_digest real)" "$(dc_digest "$D" $U)" "and its export equals the server"
done_testing
