#!/bin/sh
# Hostile and broken IMAP servers (tools/hostileimap.py) that need more
# than a server script and the CLI's exit status and output: a 300 MiB
# literal (peak RSS), folder names built to escape an export (files outside
# --out), what the IMAP guard bounds (src/backends/imap_guard.c; peak RSS,
# bytes the server got out): a BODYSTRUCTURE 30,000 levels deep, literals of
# 2^32+1 and 999999999999 bytes, untagged floods during FETCH and IDLE, an
# endless line; UIDNEXT going backwards, a non-UTF-8 folder name, BODY[] NIL
# and a lying RFC822.SIZE; the daemon beside a healthy account (its log,
# /proc, SIGTERM); a PERMANENTFLAGS list that crashed libetpan. For each: no crash (exit < 128, no sanitizer report), a
# clear message, nothing half-written, and the store stays usable (status,
# a real sync).
# The pure server-script cases that were sections 2-6, 8, 9 and 11-13
# (unsolicited FETCH and FLAGS, UID-less and missing answers, a short
# literal, UIDVALIDITY 0 or missing, a lying EXISTS, BYE mid-FETCH, SELECT NO,
# odd flags) are case files in tests/data/cases (t-cases.sh).
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
# sync_rss NAME -> "RC MAXRSS_KB" of one sync (stdout $T/so, stderr $T/se)
sync_rss() {
    "$MX_PY" -c '
import resource, subprocess, sys
with open(sys.argv[1], "w") as so, open(sys.argv[2], "w") as se:
    rc = subprocess.call(sys.argv[3:], stdout=so, stderr=se)
print(rc if rc >= 0 else 128 - rc,
      resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
' "$T/so" "$T/se" "$MX_BIN" -d "$MXD" sync "$@"
}

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

# 7. 300 MiB announced, 64 KiB sent, then silence; and the same with close:
# refused at the announcement (over the 256 MiB limit), nothing allocated
acct huge huge 3
set -- $(sync_rss huge); rc=$1; rss=$2
clean_exit "$rc" "300 MiB literal announced, then stall"
is "$rc" 4 "huge literal + stall: refused (exit 4)"
like "$(cat "$T/se")" "literal of 314572800 bytes \(limit 256 MiB\)" \
    "huge literal: refused at the announcement, no wait for the timeout"
ok $([ "$rss" -lt 150000 ]; echo $?) "huge literal: not allocated (max RSS ${rss} KB)"
is "$(count huge)" 0 "huge literal: nothing stored"
acct hugec huge-close
rc=$(sync_rc hugec); clean_exit "$rc" "300 MiB literal announced, 1 MiB sent, close"
is "$rc" 4 "huge literal + close: exit 4"
is "$(count hugec)" 0 "huge literal + close: nothing stored"

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

# rss_max KB: a peak-RSS bound, three times as much under the sanitizers
# (their shadow memory and quarantine; measured: about twice)
rss_max() { if [ "${MX_SANITIZED:-0}" = 1 ]; then echo $(($1 * 3)); else echo "$1"; fi; }
# flooded NAME -> bytes the server got out before the client closed
flooded() { sed -n 's/^S [0-9]* flooded \([0-9]*\) bytes$/\1/p' "$T/h.$1/log" | head -n 1; }

# 14. a BODYSTRUCTURE 30,000 levels deep in the SELECT reply: libetpan's
# recursive parser would overflow the stack; refused before it sees it
acct deep deep-nesting --first-only
rc=$(sync_rc deep); clean_exit "$rc" "deeply nested BODYSTRUCTURE"
is "$rc" 4 "deep nesting: temporary error (exit 4)"
like "$(cat "$T/se")" "nested deeper than 256 levels" "deep nesting: says what the server did"
rc=$(sync_rc deep); is "$rc" 0 "deep nesting: a correct server afterwards syncs"
is "$(subjects deep)" "$all5" "deep nesting: and all messages arrive once"

# 15. a literal of 2^32 + 1 bytes must not be read as 1 byte
acct wrap literal-wrap --first-only
rc=$(sync_rc wrap); clean_exit "$rc" "literal {4294967297}"
is "$rc" 4 "literal 2^32+1: refused (exit 4)"
like "$(cat "$T/se")" "literal of 4294967297 bytes \(limit 256 MiB\)" "literal 2^32+1: says so"
is "$(count wrap)" 0 "literal 2^32+1: no 1-byte message stored"
rc=$(sync_rc wrap); is "$rc" 0 "literal 2^32+1: re-run against a correct server"
is "$(subjects wrap)" "$all5" "literal 2^32+1: all messages once"

# 16. {999999999999}: refused at the announcement, not after reading
acct lhuge literal-huge
set -- $(sync_rss lhuge); rc=$1; rss=$2
clean_exit "$rc" "literal {999999999999} and data without end"
is "$rc" 4 "literal 999999999999: refused (exit 4)"
like "$(cat "$T/se")" "literal of 999999999999 bytes \(limit 256 MiB\)" "literal 999999999999: says so"
hostile_stop "$T/h.lhuge"
fb=$(flooded lhuge)
ok $([ -n "$fb" ] && [ "$fb" -lt 67108864 ]; echo $?) \
    "literal 999999999999: dropped before 64 MiB were read (server sent ${fb:-?} bytes)"
ok $([ "$rss" -lt "$(rss_max 100000)" ]; echo $?) "literal 999999999999: max RSS ${rss} KB"
is "$(count lhuge)" 0 "literal 999999999999: nothing stored"

# 17. untagged "* OK" lines without end instead of the FETCH answers
acct ffetch flood-fetch
set -- $(sync_rss ffetch); rc=$1; rss=$2
clean_exit "$rc" "untagged flood during FETCH"
is "$rc" 4 "FETCH flood: refused (exit 4)"
like "$(cat "$T/se")" "more than 250000 untagged responses" "FETCH flood: says so"
ok $([ "$rss" -lt "$(rss_max 150000)" ]; echo $?) "FETCH flood: max RSS ${rss} KB"
is "$(count ffetch)" 0 "FETCH flood: nothing stored"

# 18. one line without end in the SELECT reply
acct lline long-line
set -- $(sync_rss lline); rc=$1; rss=$2
clean_exit "$rc" "endless response line"
is "$rc" 4 "endless line: refused (exit 4)"
like "$(cat "$T/se")" "response line longer than 32 MiB" "endless line: says so"
ok $([ "$rss" -lt "$(rss_max 300000)" ]; echo $?) "endless line: max RSS ${rss} KB"

# 19. UIDNEXT going backwards (10, then 5 with a new UID 4)
acct uback uidnext-back
rc=$(sync_rc uback); is "$rc" 0 "UIDNEXT 10: first sync"
is "$(count uback INBOX)" 3 "UIDNEXT 10: 3 messages"
rc=$(sync_rc uback); is "$rc" 0 "UIDNEXT back to 5: second sync"
like "$(cat "$T/se")" "UIDNEXT went backwards \(5, was 10\)" "UIDNEXT back: warns"
is "$(count uback INBOX)" 4 "UIDNEXT back: the new UID 4 is fetched"
rc=$(sync_rc uback); is "$rc" 0 "UIDNEXT back: third sync"
is "$(count uback INBOX)" 4 "UIDNEXT back: nothing duplicated"

# 20. a raw 8-bit (not UTF-8) folder name: that folder is skipped, by name
acct b8 bad-utf8-name
rc=$(sync_rc b8); clean_exit "$rc" "non-UTF-8 folder name"
is "$rc" 7 "non-UTF-8 folder name: partial (exit 7), not a usage error"
like "$(cat "$T/se")" 'skipping folder "Caf\\xe9": its name is not valid UTF-8' \
    "non-UTF-8 folder name: named in escaped form"
is "$(subjects b8)" "$all5" "non-UTF-8 folder name: the other folders are synced"

# 21. BODY[] NIL, a lying RFC822.SIZE, an empty body: never stored as if
# it were the message
acct bnil body-nil
rc=$(sync_rc bnil); clean_exit "$rc" "BODY[] NIL"
is "$(count bnil INBOX)" 2 "BODY[] NIL: UID 2 not stored"
like "$(cat "$T/se")" "UID 2 was not returned" "BODY[] NIL: UID 2 reported missing"
acct slie size-lie
rc=$(sync_rc slie); clean_exit "$rc" "lying RFC822.SIZE"
like "$(cat "$T/se")" "UID 2: server sent [0-9]+ bytes for a message of 99999 bytes \(RFC822.SIZE\); stored as received" \
    "lying RFC822.SIZE: stored, with a warning"
like "$(cat "$T/se")" "UID 3: server sent an empty body for a message of [0-9]+ bytes \(RFC822.SIZE\); not stored" \
    "empty body: refused, with a warning"
is "$(count slie INBOX)" 2 \
    "lying RFC822.SIZE: UIDs 1 and 2 stored, not the empty UID 3"

# 22. the store is still usable: status, and a real sync against Dovecot
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

# 23. the daemon, with a healthy account beside: a BODYSTRUCTURE 30,000
# levels deep (it crashed the whole daemon), "* N EXISTS" without end
# during IDLE (memory grew to OOM, SIGTERM ignored) and a response line
# split across reads at IDLE DONE (it forced a reconnect)
: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"
mx_init "$T/dd"
acct dn normal
acct ddeep deep-nesting
acct dflood flood-idle
acct dsplit idle-split
# dsplit: the split line comes at DONE, which only a shared IDLE connection
# sends after each push (idle_connection in mxsync.conf(5))
printf '[daemon]\nworkers = 2\nbackoff_min = 1\nbackoff_max = 4\n\n[account dsplit]\nidle_connection = shared\n' > "$MXD/mxsync.conf"
DLOG=$T/mxsyncd.log
"$MXSYNCD" -d "$MXD" </dev/null >"$DLOG" 2>&1 &
DPID=$!
at_exit "kill -KILL $DPID 2>/dev/null"
d_alive() {
    [ -r "/proc/$DPID/status" ] &&
        [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$DPID/status")" != Z ]
}
dfield() {
    mx status --json | "$MX_PY" -c '
import json,sys
for a in json.load(sys.stdin):
    if a["account"]==sys.argv[1]: print((a.get("daemon") or {}).get(sys.argv[2], ""))' "$1" "$2"
}
# wait_log FILE ERE N: until FILE has N lines matching ERE (30 s at most)
wait_log() {
    wi=0
    while [ "$(grep -cE "$2" "$1" 2>/dev/null)" -lt "$3" ] && [ $wi -lt 300 ]; do
        sleep 0.1; wi=$((wi + 1))
    done
    [ "$(grep -cE "$2" "$1" 2>/dev/null)" -ge "$3" ]
}
wait_log "$T/h.dflood/log" '^S [0-9]+ flooded' 2
ok $? "daemon: the IDLE flood was cut off, twice (the second after a reconnect)"
wait_log "$T/h.dsplit/log" '^S 1 sent the other half after DONE' 2
ok $? "daemon: a line split at IDLE DONE is read whole, IDLE goes on"
unlike "$(cat "$T/h.dsplit/log")" '^conn 2 open' "daemon: split line: no reconnect"
"$MX_PY" "$MX_TOOLS/daemon_check.py" wait-state --mx "$MX_BIN" --dir "$MXD" \
    --account dn --state idle --timeout 30 >/dev/null
ok $? "daemon: the healthy account reaches IDLE"
"$MX_PY" "$MX_TOOLS/daemon_check.py" wait-state --mx "$MX_BIN" --dir "$MXD" \
    --account ddeep --state backoff --timeout 30 >/dev/null
ok $? "daemon: the deeply nested account is in backoff"
like "$(dfield ddeep last_error)" "nested deeper than 256 levels" "daemon: and says why"
ok $(d_alive; echo $?) "daemon: survived all of it"
hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$DPID/status")
ok $([ -n "$hwm" ] && [ "$hwm" -lt "$(rss_max 150000)" ]; echo $?) "daemon: peak RSS ${hwm:-?} KB under the IDLE flood"
like "$(cat "$DLOG")" "dflood.*untagged responses" "daemon: the flood is logged as what it is"
kill -TERM "$DPID"
wi=0
while d_alive && [ $wi -lt 100 ]; do sleep 0.1; wi=$((wi + 1)); done
ok $(! d_alive; echo $?) "daemon: SIGTERM honoured during the IDLE flood"
wait "$DPID"; is "$?" 0 "daemon: exit status 0"
if grep -q 'Sanitizer' "$DLOG"; then
    fail "daemon: no sanitizer report"; diag "$(grep -A20 Sanitizer "$DLOG" | head -40)"
else
    pass "daemon: no sanitizer report"
fi

# 24. "* OK [PERMANENTFLAGS (%Seen \*)]" in the SELECT reply: libetpan
# 1.9.4 frees a NULL list on a malformed first flag (SIGSEGV in the CLI
# and in the daemon with all its accounts); the IMAP guard refuses it
mx_init "$T/pf"
acct pf permflags --first-only
rc=$(sync_rc pf); clean_exit "$rc" "malformed PERMANENTFLAGS"
is "$rc" 4 "malformed PERMANENTFLAGS: exit 4"
like "$(cat "$T/se")" "PERMANENTFLAGS list whose first flag is malformed \(it starts with '%'\)" \
    "malformed PERMANENTFLAGS: the message says what the server sent"
rc=$(sync_rc pf); is "$rc" 0 "malformed PERMANENTFLAGS: a correct server afterwards syncs"
is "$(subjects pf)" "$all5" "malformed PERMANENTFLAGS: and all messages arrive once"
mx_init "$T/pd"
acct pdn normal
acct pdbad permflags
printf '[daemon]\nworkers = 2\nbackoff_min = 1\nbackoff_max = 4\n' > "$MXD/mxsync.conf"
DLOG=$T/mxsyncd-pf.log
"$MXSYNCD" -d "$MXD" </dev/null >"$DLOG" 2>&1 &
DPID=$!
at_exit "kill -KILL $DPID 2>/dev/null"
"$MX_PY" "$MX_TOOLS/daemon_check.py" wait-state --mx "$MX_BIN" --dir "$MXD" \
    --account pdbad --state backoff --timeout 30 >/dev/null
ok $? "daemon: the malformed PERMANENTFLAGS account is in backoff"
like "$(dfield pdbad last_error)" "PERMANENTFLAGS list whose first flag is malformed" \
    "daemon: and says why"
"$MX_PY" "$MX_TOOLS/daemon_check.py" wait-state --mx "$MX_BIN" --dir "$MXD" \
    --account pdn --state idle --timeout 30 >/dev/null
ok $? "daemon: the healthy account beside it reaches IDLE"
ok $(d_alive; echo $?) "daemon: survived the malformed PERMANENTFLAGS"
kill -TERM "$DPID"
wi=0
while d_alive && [ $wi -lt 100 ]; do sleep 0.1; wi=$((wi + 1)); done
wait "$DPID"; is "$?" 0 "daemon (PERMANENTFLAGS): exit status 0"
if grep -q 'Sanitizer' "$DLOG"; then
    fail "daemon (PERMANENTFLAGS): no sanitizer report"; diag "$(grep -A20 Sanitizer "$DLOG" | head -40)"
else
    pass "daemon (PERMANENTFLAGS): no sanitizer report"
fi
done_testing
