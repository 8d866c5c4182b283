#!/bin/sh
# Moving and deleting messages (issue 10, the write side of the HTTP API):
# the library (mx_message_move, mx_message_delete) through `mxsync move` and
# `mxsync delete`, against a real Dovecot: UID MOVE when the server offers
# MOVE, else UID COPY + \Deleted + UID EXPUNGE of that UID alone (a server
# without MOVE: Dovecot with imap_capability overridden); another message
# marked \Deleted is never expunged; delete goes to Trash (SPECIAL-USE),
# --permanent and a delete in Trash remove for good; the store follows
# (location, message.moved / message.deleted events); bad requests (no such
# folder, no such message, POP3) change nothing.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log
D=$T/dc
dc_setup "$D" alice@example.test bob@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"

"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed t-api-msg 12 "$T/gen" >/dev/null || bail_out "gen-mail.py"
ls "$T/gen" > "$T/gen.lst"
gen() { sed -n "$1,$2p" "$T/gen.lst" | sed "s|^|$T/gen/|"; }
is "$(dc_deliver "$D" alice@example.test $(gen 1 8) 2>>"$T/deliver.err")" 8 "8 messages for alice"
run_ok "account a (alice)" mx_add a "$D" alice@example.test imaps --owner u1
run_ok "account a syncs" mx sync a

# the id of the stored message whose INBOX UID is $1
id_of_uid() {
    mx ls a --json | "$MX_PY" -c '
import json,sys
for m in json.load(sys.stdin):
    for l in m.get("locations", []):
        if l["folder"] == "INBOX" and l["uid"] == int(sys.argv[1]):
            print(m["id"])' "$1"
}
# "FOLDER:UID" of each location of message $1, sorted ("-" when it is gone)
locs_of() {
    mx show "$1" --json 2>/dev/null | "$MX_PY" -c '
import json,sys
try:
    m = json.load(sys.stdin)
except Exception:
    print("-"); sys.exit(0)
print(" ".join(sorted("%s:%s" % (l["folder"], l["uid"]) for l in m["locations"])))'
}
# the server's view: "FOLDER<TAB>SHA" of every message, sorted
server() { dc_imap "$D" alice@example.test digest | awk -F'\t' '{print $1 "\t" $3}' | LC_ALL=C sort; }
sha_of() { dc_imap "$D" alice@example.test fetch "$1" "$2" | sha256sum | cut -d' ' -f1; }
events() { mx events --json | "$MX_PY" -c '
import json,sys
for l in sys.stdin:
    e = json.loads(l)
    if e["type"] in ("message.moved", "message.deleted"):
        print(e["type"], e.get("message", ""), e.get("folder", ""))'; }
I1=$(id_of_uid 1) I2=$(id_of_uid 2) I3=$(id_of_uid 3) I4=$(id_of_uid 4)
I5=$(id_of_uid 5) I6=$(id_of_uid 6)
like "$I1 $I6" '^[0-9a-f]{16} [0-9a-f]{16}$' "ids of INBOX UIDs 1..6"
S1=$(sha_of INBOX 1) S2=$(sha_of INBOX 2) S3=$(sha_of INBOX 3) S4=$(sha_of INBOX 4)

# ---- library through the CLI: move
run_ok "mxsync move ID Archive" mx move "$I1" Archive
is "$(locs_of "$I1")" "Archive:1" "the store: the message keeps its id, now in Archive UID 1"
is "$(server | grep -c "$S1")" 1 "the server: the message once"
is "$(server | grep "$S1" | cut -f1)" Archive "the server: in Archive"
like "$(events)" "^message.moved $I1 " "event message.moved"

# bad requests change nothing
before=$(server); bstore=$(mx ls a --json)
run_fails "move to a folder the account does not have" mx move "$I2" Nope
like "$MX_OUT" "no folder 'Nope' in account a" "the error names the folder"
run_fails "move of an unknown message" mx move ffffffffffffff00 Archive
like "$MX_OUT" "no message ffffffffffffff00" "the error names the message"
run_fails "move of a bad id" mx move 12zz Archive
like "$MX_OUT" "bad message id '12zz'" "the error names the id"
run_fails "move without a folder" mx move "$I2"
is "$(server)" "$before" "the server is unchanged"
is "$(mx ls a --json)" "$bstore" "the store is unchanged"

# ---- delete --permanent: UID EXPUNGE of that UID alone, never another
# message marked \Deleted
run_ok "mark INBOX UID 2 \\Deleted (another client)" dc_imap "$D" alice@example.test flag INBOX 2 '+\Deleted'
run_ok "mxsync delete ID --permanent" mx delete "$I3" --permanent
is "$(server | grep -c "$S3")" 0 "the server: the message is gone"
is "$(server | grep -c "$S2")" 1 "the server: the other \\Deleted message is still there"
is "$(locs_of "$I3")" - "the store: the record is gone"
like "$(events)" "^message.deleted $I3" "event message.deleted"
is "$(locs_of "$I2")" "INBOX:2" "the store: the other message is untouched"

# ---- delete: to Trash (not synced by default: the message leaves the
# store, as a sync would have it)
run_ok "mxsync delete ID" mx delete "$I4"
is "$(server | grep "$S4" | cut -f1)" Trash "the server: the message is in Trash"
is "$(locs_of "$I4")" - "the store: Trash is not followed, the record is gone"
like "$(events)" "^message.deleted $I4" "event message.deleted"

# ---- with Trash followed: the record moves to Trash; deleting it there
# removes it for good
run_ok "sync a's Trash" mx sync a --folder Trash
S5=$(sha_of INBOX 5)
run_ok "mxsync delete ID (Trash followed)" mx delete "$I5"
like "$(locs_of "$I5")" '^Trash:[0-9]+$' "the store: the message is in Trash, same id"
is "$(server | grep "$S5" | cut -f1)" Trash "the server: in Trash"
run_ok "mxsync delete ID again (in Trash only)" mx delete "$I5"
is "$(server | grep -c "$S5")" 0 "the server: removed for good"
is "$(locs_of "$I5")" - "the store: the record is gone"

# ---- a server without MOVE: UID COPY + \Deleted + UID EXPUNGE of that UID
caps=$(dc_imap "$D" alice@example.test capability)
like "$caps" 'MOVE' "Dovecot offers MOVE"
nomove=$(printf '%s\n' "$caps" | tr ' ' '\n' | grep -v -e '^MOVE$' -e '^IMAP4rev1$' -e '^$' | tr '\n' ' ')
printf 'protocol imap {\n  imap_capability = IMAP4rev1 %s\n}\n' "$nomove" > "$D/local.conf"
dc_restart "$D" >/dev/null || bail_out "dovecot restart"
. "$D/env"
unlike "$(dc_imap "$D" alice@example.test capability | tr ' ' '\n')" '^MOVE$' "Dovecot now without MOVE"
run_ok "account a follows Dovecot (same or new port)" mx account edit a --imap "imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT"
S6=$(sha_of INBOX 6)
run_ok "mxsync move ID Archive (no MOVE)" mx -D imap move "$I6" Archive
like "$MX_OUT" 'UID COPY' "UID COPY sent"
like "$MX_OUT" 'UID EXPUNGE' "UID EXPUNGE sent"
unlike "$MX_OUT" 'UID MOVE' "no UID MOVE"
unlike "$MX_OUT" '[0-9] EXPUNGE' "no bare EXPUNGE"
is "$(server | grep "$S6" | cut -f1)" Archive "the server: the message is in Archive only"
like "$(locs_of "$I6")" '^Archive:[0-9]+$' "the store: in Archive, same id"
is "$(server | grep -c "$S2")" 1 "the other \\Deleted message is still there"
done_testing
