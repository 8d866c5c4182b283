#!/bin/sh
# Account removal while mxsyncd syncs it, against a real Dovecot:
#  1. `account remove --purge` in the middle of an initial sync: afterwards
#     the store holds nothing of the account (every per-account database
#     has the entry counts it had before the account was added; mdb_stat),
#     no event of it but account.removed, and the daemon goes on with the
#     other account (push still works).
#  2. remove + add again under the same name, pointing at another mailbox,
#     during a sync: the new account's store is exactly its server's.
#  4. without the daemon: `mxsync sync` of a POP3 account removed while it
#     downloads stores nothing more; its kept mail is then purged by name.
#     2b: the same with the same server: the kept mail is re-attached (same
#     id, a new generation) and the old sync's batches cannot land in it.
#  3. remove without --purge keeps the mail; re-adding the same name and
#     server re-attaches it (a sync remaps, no message.new, no duplicate);
#     `account remove --purge` on a name only kept mail has left purges it.
#  5. `account remove` cancels the account's queued mail (message.failed),
#     `account remove --purge` of its kept mail deletes the entries: the CLI
#     hands the outbox's step to the removal (send is above the account
#     module, doc/internals/accounts.md).
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"
command -v dovecot >/dev/null || skip_all "dovecot not installed"
command -v mdb_stat >/dev/null || skip_all "mdb_stat not installed (lmdb-utils)"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" alice@example.test bob@example.test carol@example.test \
    dave@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
DLOG=$T/mxsyncd.log
CHK="$MX_TOOLS/daemon_check.py"

# ---- mail: alice and carol big enough that an initial sync takes a while
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed purge-a 3000 "$T/gen-a" >/dev/null
dc_bulk_load "$D" alice@example.test "$T/gen-a" >/dev/null 2>>"$T/deliver.err"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed purge-c 2000 "$T/gen-c" >/dev/null
dc_bulk_load "$D" carol@example.test "$T/gen-c" >/dev/null 2>>"$T/deliver.err"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed purge-b 30 "$T/gen-b" >/dev/null
dc_bulk_load "$D" bob@example.test "$T/gen-b" >/dev/null 2>>"$T/deliver.err"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed purge-d 40 "$T/gen-d" >/dev/null
dc_bulk_load "$D" dave@example.test "$T/gen-d" >/dev/null 2>>"$T/deliver.err"

# ---- the daemon (d_start, d_alive, d_stop_at_exit: lib/mx.sh), always stopped
at_exit d_stop_at_exit

wait_state() { # NAME STATES TIMEOUT
    "$MX_PY" "$CHK" wait-state --mx "$MX_BIN" --dir "$MXD" --account "$1" \
        --state "$2" --timeout "$3" >/dev/null
}
# waits (<= 60 s) until the daemon's log has a line matching ERE $1
wait_log() {
    wli=0
    while ! grep -Eq "$1" "$DLOG" && [ $wli -lt 600 ]; do sleep 0.1; wli=$((wli + 1)); done
    grep -Eq "$1" "$DLOG"
}
# waits (<= 60 s) until the store holds more than $1 messages
wait_msgs() {
    wmi=0
    while [ "$(dbn messages)" -le "$1" ] && [ $wmi -lt 600 ]; do sleep 0.1; wmi=$((wmi + 1)); done
    [ "$(dbn messages)" -gt "$1" ]
}
# entries of the named database $1 (mdb_stat reads beside the daemon)
dbn() { mdb_stat -s "$1" "$MXD" | sed -n 's/^ *Entries: *//p'; }
# every database that holds per-account data, "name=entries ..."
PER_ACCOUNT="folders folder_names messages blobs blobrefs locs msglocs identity msgid threadrefs threadsubj threads bydate orphans acctstate sendlog"
counts() { for db in $PER_ACCOUNT; do printf '%s=%s ' "$db" "$(dbn $db)"; done; }
# events of account number $1 as "type:count ..."
events_of() {
    mx events --json --limit 10000000 | "$MX_PY" -c '
import collections,json,sys
c=collections.Counter(e["type"] for e in map(json.loads, filter(str.strip, sys.stdin))
                      if e.get("account")==int(sys.argv[1]))
print(" ".join("%s:%d" % kv for kv in sorted(c.items())))' "$1"
}
# the type of account $1's newest event
last_event_of() {
    mx events --json --limit 10000000 | "$MX_PY" -c '
import json,sys
t=[e["type"] for e in map(json.loads, filter(str.strip, sys.stdin)) if e.get("account")==int(sys.argv[1])]
print(t[-1] if t else "")' "$1"
}
# META keys still naming account $1 (POP3 unique-ids, kept records)
meta_of() {
    mdb_dump -s meta "$MXD" | "$MX_PY" -c '
import sys
n=int(sys.argv[1]).to_bytes(4,"big")
lines=[l.strip() for l in sys.stdin if l.startswith(" ")]
keys=[bytes.fromhex(l) for l in lines[0::2]]
print(sum(1 for k in keys if k[:8]==b"pop3uidl" and k[8:12]==n or k[:12]==b"kept_account" and k[12:16]==n))' "$1"
}
acct_id() {
    mx account list --json | "$MX_PY" -c '
import json,sys
for a in json.load(sys.stdin):
    if a["name"]==sys.argv[1]: print(a.get("id", ""))' "$1"
}
run_ok "account b (bob, 30 messages)" mx_add b "$D" bob@example.test imaps
d_start
wait_state b idle 60; ok $? "b reaches idle"
BASE=$(counts)
BASE_EVENTS=$(dbn events)

# ======== 1. remove --purge mid-sync
run_ok "1: account a (alice, 3000 messages)" mx_add a "$D" alice@example.test imaps
kill -HUP "$DPID"
wait_msgs 330; ok $? "1: a's initial sync is under way ($(dbn messages) messages)"
AID=$(acct_id a)
isnt "$AID" "" "1: a's account number from its events ($AID)"
run_ok "1: account remove a --purge while the daemon syncs it" mx account remove a --purge
like "$MX_OUT" "removed with its stored mail" "1: says so"
wait_log "account a \\(#$AID\\): stopped, connection closed"
ok $? "1: the daemon stopped a (log)"
ok $(d_alive; echo $?) "1: the daemon is still running"
is "$(counts)" "$BASE" "1: every per-account database is back to its count before a was added"
is "$(events_of "$AID")" "account.removed:1" "1: of a's events only account.removed is left"
is "$(meta_of "$AID")" 0 "1: no META key of a"
run_fails "1: a is gone" mx ls a
like "$MX_OUT" "a" "1: ls names the account"
# b still gets push mail
dc_deliver "$D" bob@example.test "$T/gen-d/000001.eml" >/dev/null
i=0; while [ "$(mx_count b INBOX)" -lt 31 ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
is "$(mx_count b INBOX)" 31 "1: b still syncs (push after the removal)"

# ======== 2. remove + add again (another mailbox) during a sync
run_ok "2: account c (carol, 2000 messages)" mx_add c "$D" carol@example.test imaps
kill -HUP "$DPID"
before=$(dbn messages)
wait_msgs $((before + 250)); ok $? "2: c's initial sync is under way"
CID=$(acct_id c)
run_ok "2: account remove c" mx account remove c
run_ok "2: account add c again, for dave's mailbox" mx_add c "$D" dave@example.test imaps
kill -HUP "$DPID"
wait_log "account c \\(#$CID\\): stopped, connection closed"
ok $? "2: the daemon stopped the old c"
wait_state c idle 60; ok $? "2: the new c reaches idle"
is "$(mx_export_digest c)" "$(dc_digest "$D" dave@example.test)" "2: c's store is exactly dave's mailbox"
is "$(mx_count c)" 40 "2: 40 messages, none of carol's"

# ======== 2b. remove + add again with the same server during a sync: the
# kept mail is re-attached (same id, new generation); the old sync stores
# nothing more, the new one (after SIGHUP, as for any added account) finishes
run_ok "2b: account a again (alice, 3000 messages)" mx_add a "$D" alice@example.test imaps
kill -HUP "$DPID"
before=$(dbn messages)
wait_msgs $((before + 250)); ok $? "2b: a's initial sync is under way"
AID=$(acct_id a)
run_ok "2b: account remove a (mail kept)" mx account remove a
run_ok "2b: account add a again, same server" mx_add a "$D" alice@example.test imaps
is "$(acct_id a)" "$AID" "2b: the kept mail's id again (#$AID)"
kill -HUP "$DPID"
wait_state a idle 120; ok $? "2b: a reaches idle"
is "$(mx_count a)" 3000 "2b: 3000 messages, no duplicate"
is "$(mx_export_digest a)" "$(dc_digest "$D" alice@example.test)" "2b: a's store is exactly alice's mailbox"

# ======== 4. POP3, and no daemon: `mxsync sync` of an account removed while
# it downloads (only the commit check can stop it here), then purged by name
BASE=$(counts)
dc_password "$D" carol@example.test > "$MX_SCRATCH/p.pw"
run_ok "4: account p (carol over POP3, 2000 messages)" mx account add p \
    --pop3 "pop3s://carol@example.test@127.0.0.1:$DC_POP3S_PORT" \
    --password-file "$MX_SCRATCH/p.pw" --ca-file "$DC_CA"
PAID=$(acct_id p)
before=$(dbn messages)
mx sync p >"$T/sync-p.out" 2>&1 </dev/null &
SPID=$!
at_exit "kill $SPID 2>/dev/null"
wait_msgs $((before + 250)); ok $? "4: mxsync sync p is under way"
run_ok "4: account remove p (mail kept) while it downloads" mx account remove p
n1=$(dbn messages)
wait "$SPID"; rc=$?
isnt "$rc" 0 "4: mxsync sync p fails"
like "$(cat "$T/sync-p.out")" "account p was removed while this ran" "4: and says why"
is "$(dbn messages)" "$n1" "4: not one message stored after the removal"
is "$(last_event_of "$PAID")" account.removed "4: p's last event is account.removed"
run_ok "4: account remove p --purge: purges the kept mail" mx account remove p --purge
is "$(counts)" "$BASE" "4: every per-account database is back to its count before p was added"
is "$(events_of "$PAID")" "account.removed:1" "4: of p's events only account.removed is left"
is "$(meta_of "$PAID")" 0 "4: no POP3 unique-id or kept record of p is left"

# ======== 3. kept mail: re-attached by a re-add, purged by name
d_stop_at_exit
nb=$(mx_count b)
run_ok "3: account remove b (mail kept)" mx account remove b
like "$MX_OUT" "stored mail kept" "3: says the mail is kept"
run_ok "3: account add b again, same server" mx_add b "$D" bob@example.test imaps
is "$(mx_count b)" "$nb" "3: b's kept mail is back ($nb messages)"
last=$(mx events --json --limit 10000000 | tail -n 1 | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
run_ok "3: mxsync sync b" mx sync b
is "$(mx_count b)" "$nb" "3: no duplicate after the sync"
is "$(mx events --json --after "$last" | grep -c '"message.new"')" 0 "3: no message.new: remapped, not downloaded again"
is "$(mx_export_digest b)" "$(dc_digest "$D" bob@example.test)" "3: b's store is exactly bob's mailbox"
BID=$(acct_id b)
run_ok "3: account remove b" mx account remove b
run_ok "3: account remove b --purge: purges the kept mail" mx account remove b --purge
run_fails "3: and again: nothing left" mx account remove b --purge
like "$MX_OUT" "no account and no kept mail named 'b'" "3: says so"
is "$(events_of "$BID")" "account.removed:1" "3: of b's events only account.removed is left"
is "$(meta_of "$BID")" 0 "3: no META key of b"

# ======== 5. queued mail of a removed account: cancelled, then purged
# "state ..." of the outbox entries of account id $1
ob_of() {
    mx outbox --json | "$MX_PY" -c '
import json,sys
print(" ".join(e["state"] for e in json.load(sys.stdin) if e["account"]==int(sys.argv[1])))' "$1"
}
# SMTP on port 1: --queue-only never connects.
run_ok "5: account q with SMTP" mx_add q "$D" dave@example.test imaps \
    --smtp "smtp://dave@example.test@127.0.0.1:1"
QID=$(acct_id q)
run_ok "5: mxsync send --queue-only" mx send q --to bob@example.test \
    --subject "t-purge queued" --body x --queue-only
is "$(ob_of "$QID")" queued "5: one queued entry"
run_ok "5: account remove q" mx account remove q
is "$(ob_of "$QID")" cancelled "5: the queued entry is cancelled"
like "$(events_of "$QID")" 'message\.failed:1' "5: a message.failed event for it"
run_ok "5: account remove q --purge (its kept mail)" mx account remove q --purge
is "$(ob_of "$QID")" "" "5: the purge deletes the entry"

diag "daemon log: $(wc -l < "$DLOG") lines"
unlike "$(cat "$DLOG")" "AddressSanitizer|LeakSanitizer|runtime error|SUMMARY:" "no sanitizer report in the daemon's log"
done_testing
