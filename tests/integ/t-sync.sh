#!/bin/sh
# End to end against a real Dovecot: full sync of real-world mail, byte-exact
# export, then incremental changes on both sides, a MOVE and a forced
# UIDVALIDITY change, each checked against the server.
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

CORPUS=${MX_CORPUS_DIR:-$MX_TOP_SRCDIR/../shared/corpus/real}
if [ -d "$CORPUS" ]; then
    n=$(dc_deliver "$D" $U "$CORPUS" 2>"$T/deliver.err")
    diag "corpus: $n messages delivered from $CORPUS"
    ok $([ "${n:-0}" -gt 500 ]; echo $?) "corpus delivered via LMTP ($n)"
else
    diag "corpus absent ($CORPUS): using generated mail only"
fi
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 60 "$T/gen" >/dev/null
n=$(dc_deliver "$D" $U "$T/gen" 2>>"$T/deliver.err")
is "$n" 60 "generated mail delivered"
n=$(dc_deliver "$D" $U --folder Archive "$T/gen" 2>>"$T/deliver.err")
is "$n" 60 "same generated mail delivered to Archive"

# a folder whose name needs modified UTF-7 on the wire
dc_imap "$D" $U create "Entwürfe/Café 日本" >/dev/null
dc_imap "$D" $U append "Entwürfe/Café 日本" "$T/gen/$(ls "$T/gen" | head -1)" >/dev/null

run_ok "account add (imaps, test CA)" mx_add a "$D" $U imaps
run_ok "initial sync" mx sync a
server=$(dc_digest "$D" $U)
mine=$(mx_export_digest a)
is "$(echo "$mine" | wc -l)" "$(echo "$server" | wc -l)" "export has as many messages as the server"
ok $([ "$mine" = "$server" ]; echo $?) "maildir export == server bytes (SHA-256 per folder)"
[ "$mine" = "$server" ] || diag "$(printf '%s\n' "$server" > "$T/s"; printf '%s\n' "$mine" > "$T/m"; diff "$T/s" "$T/m" | head -20)"
blobs=$(mdb_stat -s blobs "$MXD" | sed -n 's/.*Entries: //p')
msgs=$(mdb_stat -s messages "$MXD" | sed -n 's/.*Entries: //p')
diag "records: $msgs, blobs: $blobs"
# identical bytes in a second account: a second record, no second blob
F1="$T/gen/$(ls "$T/gen" | head -1)"
dc_imap "$D" bob@example.test append INBOX "$F1" >/dev/null
mx_add b "$D" bob@example.test imaps >/dev/null
run_ok "second account syncs" mx sync b
is "$(mdb_stat -s messages "$MXD" | sed -n 's/.*Entries: //p')" $((msgs + 1)) "bob's copy is its own record"
is "$(mdb_stat -s blobs "$MXD" | sed -n 's/.*Entries: //p')" "$blobs" "identical bytes in two accounts are stored once"

like "$(mx status a)" "Entwürfe/Café 日本 +synced +1 " "modified UTF-7 folder name decoded and synced"
ok $([ -d "$T/exp-utf7" ] || mx export a --format maildir --out "$T/exp-utf7" >/dev/null; [ -d "$T/exp-utf7/Entwürfe/Café 日本/cur" ]; echo $?) "exported under its UTF-8 name"
out=$(mx -D backend sync a 2>"$T/be.err")
like "$out" " 0 new messages" "no-change resync fetches nothing"
like "$out" " 0 flag updates, 0 expunged" "no-change resync changes nothing"
# -D backend: every call into the backend, in one place (backend.c)
like "$(cat "$T/be.err")" '^mxsync: trace: imap a: connect -> ok \([0-9]+ ms\)$' "-D backend traces connect with its time"
like "$(cat "$T/be.err")" '^mxsync: trace: imap a: list -> ok \([0-9]+ ms\)$' "-D backend traces list"
like "$(cat "$T/be.err")" '^mxsync: trace: imap a: select -> ok \([0-9]+ ms\)$' "-D backend traces select"
like "$(cat "$T/be.err")" '^mxsync: trace: imap a: disconnect -> ok' "-D backend traces disconnect"

# new deliveries
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 5 "$T/gen2" --seed 7 >/dev/null 2>&1 ||
    "$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 5 "$T/gen2" >/dev/null
dc_deliver "$D" $U "$T/gen2" >/dev/null 2>&1
out=$(mx sync a)
like "$out" " 5 new messages" "5 new deliveries picked up"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "export == server after new mail"

# helpers: message id for FOLDER UID, UID of an id in FOLDER
id_of() {
    mx ls a --json | "$MX_PY" -c '
import json,sys
f,u=sys.argv[1],int(sys.argv[2])
for m in json.load(sys.stdin):
    for l in m["locations"]:
        if l["folder"]==f and l["uid"]==u: print(m["id"])' "$1" "$2"
}
flags_of() { mx show "$1" --json | "$MX_PY" -c '
import json,sys; m=json.load(sys.stdin)
print(" ".join(sorted(f for l in m["locations"] for f in l["flags"])))'; }
locs_of() { mx show "$1" --json | "$MX_PY" -c '
import json,sys; m=json.load(sys.stdin)
print(" ".join(sorted("%s:%d" % (l["folder"], l["uid"]) for l in m["locations"])))'; }

# flag change on the server
dc_imap "$D" $U flag INBOX 3 '+\Seen' '+\Flagged' >/dev/null
id3=$(id_of INBOX 3)
ok $([ -n "$id3" ]; echo $?) "INBOX UID 3 is message $id3"
out=$(mx sync a)
like "$out" " 1 flag updates" "server-side flag change applied"
is "$(flags_of "$id3")" '\Flagged \Seen' "stored flags follow the server"

# flag change from mxsync
id4=$(id_of INBOX 4)
run_ok "mxsync flag --flagged" mx flag "$id4" --flagged
like "$(dc_imap "$D" $U flags INBOX 4)" 'Flagged' "server has \\Flagged on UID 4"
run_ok "mxsync flag --unflagged on $id3" mx flag "$id3" --unflagged
unlike "$(dc_imap "$D" $U flags INBOX 3)" 'Flagged' "server lost \\Flagged on UID 3"
like "$(dc_imap "$D" $U flags INBOX 3)" 'Seen' "server kept \\Seen on UID 3"
is "$(flags_of "$id3")" '\Seen' "store agrees"

# expunge on the server
before=$(mx_count a INBOX)
id5=$(id_of INBOX 5)
dc_imap "$D" $U expunge INBOX 5 >/dev/null
out=$(mx sync a)
like "$out" " 1 expunged" "expunge seen"
is "$(mx_count a INBOX)" $((before - 1)) "INBOX count down by one"
run_fails "expunged message is gone from the store" mx show "$id5"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "export == server after expunge"

# MOVE to another folder keeps the id, no duplicate
total=$(mx_count a)
id6=$(id_of INBOX 6)
dc_imap "$D" $U move INBOX 6 Drafts >/dev/null
out=$(mx sync a)
is "$(mx_count a)" "$total" "no duplicate after MOVE"
like "$(locs_of "$id6")" '^Drafts:' "moved message keeps its id $id6, now in Drafts"
like "$(mdb_dump -p -s events "$MXD")" '"type":"message.moved"' "message.moved event written"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "export == server after MOVE"

# forced UIDVALIDITY change with renumbered UIDs
ids_before=$(mx ls a --json | "$MX_PY" -c 'import json,sys; print(" ".join(sorted(m["id"] for m in json.load(sys.stdin))))')
uv=$(dc_uidvalidity_reset "$D" $U INBOX --renumber)
ok $([ -n "$uv" ]; echo $?) "INBOX has a new UIDVALIDITY ($uv)"
out=$(mx sync a 2>"$T/uv.err")
diag "$out"
like "$out" " 0 new messages" "UIDVALIDITY change downloads nothing again"
ids_after=$(mx ls a --json | "$MX_PY" -c 'import json,sys; print(" ".join(sorted(m["id"] for m in json.load(sys.stdin))))')
ok $([ "$ids_before" = "$ids_after" ]; echo $?) "every message keeps its id across the UIDVALIDITY change"
like "$(mdb_dump -p -s events "$MXD")" '"type":"folder.reset"' "folder.reset event written"
like "$(mx status a --json)" "\"uidvalidity\": $uv" "status shows the new UIDVALIDITY"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "export == server after UIDVALIDITY change"
id_new=$(id_of INBOX 1)
ok $([ -n "$id_new" ]; echo $?) "new UIDs are mapped (INBOX UID 1 -> $id_new)"

# mbox export: one file per folder with every message
run_ok "export --format mbox" mx export a --format mbox --out "$T/mbox"
is "$(grep -c '^From ' "$T/mbox/INBOX.mbox")" "$(mx_count a INBOX)" "mbox has one From_ line per INBOX message"

# show --raw gives the original bytes
raw_sha=$(mx show "$id4" --raw | sha256sum | cut -d' ' -f1)
like "$(dc_digest "$D" $U)" "$raw_sha" "show --raw bytes match the server's"
done_testing
