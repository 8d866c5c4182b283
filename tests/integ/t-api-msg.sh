#!/bin/sh
# Moving and deleting messages (issue 10, the write side of the HTTP API):
# the library (mx_message_move, mx_message_delete) through `mxsync move` and
# `mxsync delete`, against a real Dovecot: UID MOVE when the server offers
# MOVE, else UID COPY + \Deleted + UID EXPUNGE of that UID alone (a server
# without MOVE: Dovecot with imap_capability overridden); another message
# marked \Deleted is never expunged; delete goes to Trash (SPECIAL-USE),
# --permanent and a delete in Trash remove for good; the store follows
# (location, message.moved / message.deleted events); bad requests (no such
# folder, no such message, POP3) change nothing.  Then the HTTP API's
# PATCH /v1/messages/{id}, POST /v1/messages/{id}/move and DELETE
# /v1/messages/{id} against the real daemon, through the validating proxy
# (prism, doc/openapi.yaml): success and error paths, the permission matrix
# (owner / selected / other user / admin), POP3 422 unsupported, Dovecot
# down 502 upstream; hostile bodies prism refuses itself go straight to the
# daemon (415, bad_json, unknown_field, invalid_field, missing_field, a
# body on DELETE); no refused request changes the server or the store.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log
D=$T/dc
dc_setup "$D" alice@example.test bob@example.test carol@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"

"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed t-api-msg 20 "$T/gen" >/dev/null || bail_out "gen-mail.py"
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
I6=$(id_of_uid 6)
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

# ---- a message in Trash only: removed for good.  The store has one
# there only after a sync of Trash named explicitly.
run_ok "sync a's Trash" mx sync a --folder Trash
IT=$(mx ls a --json | "$MX_PY" -c '
import json,sys
print(" ".join(m["id"] for m in json.load(sys.stdin)
               if [l["folder"] for l in m["locations"]] == ["Trash"]))')
like "$IT" '^[0-9a-f]{16}$' "the store: one message in Trash ($IT)"
run_ok "mxsync delete ID (in Trash only)" mx delete "$IT"
is "$(server | grep -c "$S4")" 0 "the server: removed for good"
is "$(locs_of "$IT")" - "the store: the record is gone"
like "$(events)" "^message.deleted $IT" "event message.deleted"

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

# ==== the HTTP API ====
# Dovecot with MOVE again
rm -f "$D/local.conf"
dc_restart "$D" >/dev/null || bail_out "dovecot restart"
. "$D/env"
run_ok "account a follows Dovecot again" mx account edit a --imap "imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT"
is "$(dc_deliver "$D" alice@example.test $(gen 9 14) 2>>"$T/deliver.err")" 6 "6 more messages for alice"
is "$(dc_deliver "$D" bob@example.test $(gen 15 17) 2>>"$T/deliver.err")" 3 "3 messages for bob"
is "$(dc_deliver "$D" carol@example.test $(gen 18 19) 2>>"$T/deliver.err")" 2 "2 messages for carol"
# a: owner u1 (access owner); b: owner u2, selected, allow u3; p: POP3, owner u1
run_ok "account b (bob): owner u2, selected, allow u3" mx_add b "$D" bob@example.test imaps \
    --owner u2 --access selected --allow u3
dc_password "$D" carol@example.test > "$MX_SCRATCH/p.pw"
run_ok "account p (carol, POP3S): owner u1" mx account add p --pop3 \
    "pop3s://carol@example.test@127.0.0.1:$DC_POP3S_PORT" --password-file "$MX_SCRATCH/p.pw" \
    --ca-file "$DC_CA" --owner u1
# g: Gmail API mode (tools/fakegmail.py, tools/fake_idp.py), owner u1
mkdir -p "$T/gm" && cp $(gen 20 20) "$T/gm/" || bail_out "gmail mailbox"
idp_start "$T/idp" "$D" --refresh refresh-alice=alice@example.test || bail_out "fake_idp did not start"
tool_start "$T/g" fakegmail.py --secret-file "$D/keys/secret.raw" --mailbox "alice@example.test=$T/gm" \
    --cert "$D/ssl/cert.pem" --key "$D/ssl/key.pem" || bail_out "fakegmail did not start"
printf 'refresh-alice\n' > "$T/rt-alice"; printf 'test-secret\n' > "$T/client-secret"
run_ok "account g (Gmail API mode): owner u1" mx account add g --provider gmail --email alice@example.test \
    --mode api --api-url "https://127.0.0.1:$TOOL_PORT" --ca-file "$DC_CA" \
    --oauth-token-url "http://127.0.0.1:$IDP_PORT/token" --oauth-client-id test-client \
    --oauth-client-secret-file "$T/client-secret" --refresh-token-file "$T/rt-alice" --owner u1
acct_id() {
    mx account list --json | "$MX_PY" -c '
import json,sys; print([a["id"] for a in json.load(sys.stdin) if a["name"]==sys.argv[1]][0])' "$1"
}
A=$(acct_id a) B=$(acct_id b) P=$(acct_id p) G=$(acct_id g)
api_token u1 >/dev/null || bail_out "token u1"; K1=$API_TOKEN
api_token u2 >/dev/null || bail_out "token u2"; K2=$API_TOKEN
api_token u3 >/dev/null || bail_out "token u3"; K3=$API_TOKEN
api_token u4 >/dev/null || bail_out "token u4"; K4=$API_TOKEN
api_token admin --admin >/dev/null || bail_out "token admin"; KA=$API_TOKEN
printf '[daemon]\nworkers = 2\npoll_interval = 5\n' > "$MXD/mxsync.conf"
api_conf "rate_limit=100000" || bail_out "api_conf"
api_daemon_start || bail_out "mxsyncd with [api] did not answer /v1/health"
api_prism_start "$T/prism" || bail_out "prism proxy did not start"
API_BASE=$PRISM_URL
pass "mxsyncd's API through prism on $PRISM_URL"

# waits <= 30 s until account $1 lists $2 messages
wait_count() {
    vi=0 vn=
    while [ $vi -lt 300 ]; do
        api_req GET "$API_URL/v1/messages?account=$1&limit=500" "$KA"
        vn=$(api_json 'len(j["messages"])')
        [ "$vn" = "$2" ] && return 0
        sleep 0.1; vi=$((vi + 1))
    done
    diag "account $1: $vn messages listed, want $2"
    return 1
}
# a: INBOX 2 5 7 8 9..14, Archive 2 (UID 1 and the one moved without MOVE)
wait_count "$A" 12; ok $? "account a: 12 messages synced"
wait_count "$B" 3; ok $? "account b: 3 messages synced"
wait_count "$P" 2; ok $? "account p: 2 messages synced"
wait_count "$G" 1; ok $? "account g: 1 message synced"
# the stored id of INBOX UID $2 of account $1 (as the admin sees it)
id_in() {
    api_req GET "$API_URL/v1/messages?account=$1&limit=500" "$KA"
    for vm in $(api_json '" ".join(m["id"] for m in j["messages"])'); do
        api_req GET "$API_URL/v1/messages/$vm" "$KA"
        [ "$(api_json '" ".join("%s:%d" % (l["folder_name"], l["uid"]) for l in j["locations"])')" = "INBOX:$2" ] &&
            { echo "$vm"; return 0; }
    done
    return 1
}
M9=$(id_in "$A" 9) M10=$(id_in "$A" 10) M11=$(id_in "$A" 11) M12=$(id_in "$A" 12)
M13=$(id_in "$A" 13) MB=$(id_in "$B" 1) MP=$(api_json 'j["id"]' >/dev/null; id_in "$P" 1)
like "$M9 $M13 $MB" '^[0-9a-f]{16} [0-9a-f]{16} [0-9a-f]{16}$' "message ids found"
api_req GET "$API_URL/v1/messages?account=$P&limit=1" "$KA"; MP=$(api_json 'j["messages"][0]["id"]')
api_req GET "$API_URL/v1/messages?account=$G&limit=1" "$KA"; MG=$(api_json 'j["messages"][0]["id"]')

# w METHOD PATH TOKEN WANT DESC [JSON BODY]: through prism; the status is
# WANT and prism saw no violation of the spec
w() {
    vmeth=$1 vpath=$2 vtok=$3 vwant=$4 vdesc=$5
    if [ $# -ge 6 ]; then
        api_req "$vmeth" "$API_BASE$vpath" "$vtok" -H 'Content-Type: application/json' --data "$6"
    else
        api_req "$vmeth" "$API_BASE$vpath" "$vtok"
    fi
    vv=$(api_header sl-violations)
    if [ "$API_STATUS" = "$vwant" ] && [ -z "$vv" ]; then
        pass "$vdesc: $vwant"
    else
        fail "$vdesc: $vwant"
        diag "$vmeth $vpath: $API_STATUS (want $vwant) ${vv:+sl-violations: $vv}"
        diag "body: $(head -c 1000 "$API_BODYF")"
    fi
}
# x METHOD PATH TOKEN WANT CODE DESC [CURL ARGS]: straight to the daemon
# (prism refuses such requests itself); the status and error code
x() {
    vmeth=$1 vpath=$2 vtok=$3 vwant=$4 vcode=$5 vdesc=$6; shift 6
    api_req "$vmeth" "$API_URL$vpath" "$vtok" "$@"
    is "$API_STATUS $(api_code)" "$vwant $vcode" "$vdesc: $vwant $vcode"
}
JSON='Content-Type: application/json'
flags_json() { api_json '" ".join(sorted(j["flags"]))'; }
locs_json() { api_json '" ".join("%s:%d" % (l["folder_name"], l["uid"]) for l in j["locations"])'; }
# the state of everything: alice's and bob's server mailboxes with flags,
# and every message record of the store as the admin reads it
state() {
    dc_imap "$D" alice@example.test digest; dc_imap "$D" bob@example.test digest
    for va in "$A" "$B" "$P"; do
        api_req GET "$API_URL/v1/messages?account=$va&limit=500" "$KA"
        for vm in $(api_json '" ".join(m["id"] for m in j["messages"])'); do
            api_req GET "$API_URL/v1/messages/$vm" "$KA"; api_body; echo
        done
    done
}

# ---- PATCH /v1/messages/{id}
w PATCH "/v1/messages/$M9" "$K1" 200 "owner: PATCH seen" '{"seen":true}'
is "$(flags_json)" "seen" "the answer: the message is seen"
is "$(dc_imap "$D" alice@example.test flags INBOX 9)" '\Seen' "the server: \\Seen"
w PATCH "/v1/messages/$M9" "$K1" 200 "owner: PATCH seen false, flagged true" '{"seen":false,"flagged":true}'
is "$(flags_json)" "flagged" "the answer: flagged, not seen"
is "$(dc_imap "$D" alice@example.test flags INBOX 9)" '\Flagged' "the server: \\Flagged only"
like "$(mx events --json)" "\"type\":\"message.updated\".*\"message\":\"$M9\".*\"origin\":\"local\"" "event message.updated (origin local)"
w PATCH "/v1/messages/$M9" "$KA" 200 "admin: PATCH" '{"flagged":false}'
is "$(dc_imap "$D" alice@example.test flags INBOX 9)" '-' "the server: no flags"
w PATCH "/v1/messages/$MB" "$K3" 200 "selected user u3 on b: PATCH" '{"seen":true}'
is "$(dc_imap "$D" bob@example.test flags INBOX 1)" '\Seen' "b's server: \\Seen"
# API mode: both flags in one request, the labels follow both in the store
glabels() { mx show "$MG" --json | "$MX_PY" -c '
import json,sys; print(" ".join(sorted(json.load(sys.stdin)["locations"][0]["flags"])))'; }
like "$(glabels)" 'UNREAD' "g's message: UNREAD before"
w PATCH "/v1/messages/$MG" "$K1" 200 "API mode: PATCH seen and flagged" '{"seen":true,"flagged":true}'
is "$(flags_json)" "flagged seen" "the answer: flagged and seen"
labels=$(glabels)
like "$labels" 'STARRED' "the store: STARRED"
unlike "$labels" 'UNREAD' "the store: no UNREAD"
w POST "/v1/messages/$MG/move" "$K1" 422 "API mode: move (not yet)" '{"folder":"INBOX"}'
is "$(api_code)" unsupported "API mode move: unsupported"
w DELETE "/v1/messages/$MG" "$K1" 422 "API mode: DELETE (not yet)"
w PATCH "/v1/messages/$MP" "$K1" 422 "POP3 account: PATCH" '{"seen":true}'
is "$(api_code)" unsupported "POP3: unsupported"

before=$(state)
w PATCH "/v1/messages/$M10" "$K2" 404 "another user (u2) on a: PATCH" '{"seen":true}'
is "$(api_code)" not_found "u2: not_found (may not know it exists)"
w PATCH "/v1/messages/$MB" "$K4" 404 "a user with no access (u4) on b: PATCH" '{"seen":true}'
w PATCH "/v1/messages/ffffffffffffff00" "$K1" 404 "unknown message: PATCH" '{"seen":true}'
w PATCH "/v1/messages/$M10" - 401 "no token: PATCH" '{"seen":true}'
x PATCH "/v1/messages/$M10" "$K1" 400 missing_field "{}" -H "$JSON" --data '{}'
x PATCH "/v1/messages/$M10" "$K1" 400 invalid_field '{"seen":"yes"}' -H "$JSON" --data '{"seen":"yes"}'
is "$(api_json 'j["error"]["details"]["field"]')" seen "invalid_field names 'seen'"
x PATCH "/v1/messages/$M10" "$K1" 400 unknown_field '{"seen":true,"deleted":true}' -H "$JSON" --data '{"seen":true,"deleted":true}'
is "$(api_json 'j["error"]["details"]["field"]')" deleted "unknown_field names 'deleted'"
x PATCH "/v1/messages/$M10" "$K1" 400 bad_json "not JSON" -H "$JSON" --data '{"seen":tru'
x PATCH "/v1/messages/$M10" "$K1" 400 bad_json "invalid UTF-8" -H "$JSON" --data-binary "$(printf '{"seen":true,"\377":1}')"
x PATCH "/v1/messages/$M10" "$K1" 400 bad_json "no body" -H "$JSON"
x PATCH "/v1/messages/$M10" "$K1" 400 bad_request "an array" -H "$JSON" --data '[true]'
x PATCH "/v1/messages/$M10" "$K1" 415 unsupported_media_type "text/plain" -H 'Content-Type: text/plain' --data '{"seen":true}'
x PATCH "/v1/messages/..%2F..%2Fx" "$K1" 400 invalid_id "a '..' id" -H "$JSON" --data '{"seen":true}'
x PATCH "/v1/messages/$M10" "$K2" 404 not_found "u2 with a bad body: 404 or 400, never a change" -H "$JSON" --data '{"seen":true}'

# ---- POST /v1/messages/{id}/move
x POST "/v1/messages/$M10/move" "$K1" 400 missing_field "move without folder" -H "$JSON" --data '{}'
x POST "/v1/messages/$M10/move" "$K1" 400 invalid_field "folder: true" -H "$JSON" --data '{"folder":true}'
x POST "/v1/messages/$M10/move" "$K1" 400 invalid_field "folder: 0" -H "$JSON" --data '{"folder":0}'
x POST "/v1/messages/$M10/move" "$K1" 400 invalid_field 'folder: ""' -H "$JSON" --data '{"folder":""}'
x POST "/v1/messages/$M10/move" "$K1" 400 unknown_field "an unknown member" -H "$JSON" --data '{"folder":"Archive","copy":true}'
w POST "/v1/messages/$M10/move" "$K1" 422 "move to a folder a does not have" '{"folder":"Nope"}'
is "$(api_code) $(api_json 'j["error"]["details"]["field"]')" "invalid_value folder" "invalid_value, details.field folder"
like "$(api_json 'j["error"]["message"]')" "Nope" "the message names the folder"
api_req GET "$API_URL/v1/accounts/$B/folders" "$KA"
BINBOX=$(api_json '[f["id"] for f in j["folders"] if f["name"]=="INBOX"][0]')
w POST "/v1/messages/$M10/move" "$K1" 422 "move to a folder of another account (id)" "{\"folder\":$BINBOX}"
w POST "/v1/messages/$M10/move" "$K2" 404 "another user (u2) on a: move" '{"folder":"Archive"}'
w POST "/v1/messages/$MB/move" "$K4" 404 "u4 on b: move" '{"folder":"Archive"}'
w POST "/v1/messages/$MP/move" "$K1" 422 "POP3 account: move" '{"folder":"INBOX"}'
is "$(api_code)" unsupported "POP3 move: unsupported"

# ---- DELETE /v1/messages/{id}: the refused ones
w DELETE "/v1/messages/$M10" "$K2" 404 "another user (u2) on a: DELETE"
w DELETE "/v1/messages/$MB" "$K4" 404 "u4 on b: DELETE"
w DELETE "/v1/messages/$MP" "$K1" 422 "POP3 account: DELETE"
x DELETE "/v1/messages/$M10?permanent=maybe" "$K1" 400 invalid_parameter "permanent=maybe"
x DELETE "/v1/messages/$M10?purge=true" "$K1" 400 invalid_parameter "an unknown parameter"
x DELETE "/v1/messages/$M10" "$K1" 400 bad_request "DELETE with a body" -H "$JSON" --data '{"permanent":true}'
is "$(state)" "$before" "no refused request changed the server or the store"

# ---- moves
S10=$(sha_of INBOX 10)
w POST "/v1/messages/$M10/move" "$K1" 200 "owner: move to Archive (by name)" '{"folder":"Archive"}'
is "$(api_json 'j["id"]')" "$M10" "the answer: the same id"
like "$(locs_json)" '^Archive:[0-9]+$' "the answer: in Archive"
is "$(server | grep "$S10" | cut -f1)" Archive "the server: in Archive only"
like "$(mx events --json)" "\"type\":\"message.moved\".*\"message\":\"$M10\".*\"folder_name\":\"Archive\"" "event message.moved"
api_req GET "$API_URL/v1/accounts/$A/folders" "$KA"
AINBOX=$(api_json '[f["id"] for f in j["folders"] if f["name"]=="INBOX"][0]')
w POST "/v1/messages/$M10/move" "$KA" 200 "admin: move back to INBOX (by id)" "{\"folder\":$AINBOX}"
like "$(locs_json)" '^INBOX:[0-9]+$' "the answer: in INBOX"
is "$(server | grep "$S10" | cut -f1)" INBOX "the server: in INBOX only"
w POST "/v1/messages/$M10/move" "$K1" 200 "move to where it is: nothing to do" "{\"folder\":$AINBOX}"
is "$(server | grep "$S10" | cut -f1)" INBOX "the server: still in INBOX"
S11=$(sha_of INBOX 11)
w POST "/v1/messages/$M11/move" "$K1" 200 "move to Junk (not followed)" '{"folder":"Junk"}'
is "$(locs_json)" "" "the answer: no location left in the store"
is "$(server | grep "$S11" | cut -f1)" Junk "the server: in Junk"
api_get "/v1/messages/$M11" "$K1"; is "$API_STATUS" 404 "the record is gone (GET 404)"
SB=$(dc_imap "$D" bob@example.test fetch INBOX 1 | sha256sum | cut -d' ' -f1)
w POST "/v1/messages/$MB/move" "$K3" 200 "selected user u3 on b: move" '{"folder":"Archive"}'
is "$(dc_imap "$D" bob@example.test digest | grep "$SB" | cut -f1)" Archive "b's server: in Archive"

# ---- deletes
S12=$(sha_of INBOX 12) S13=$(sha_of INBOX 13)
run_ok "mark INBOX UID 14 \\Deleted (another client)" dc_imap "$D" alice@example.test flag INBOX 14 '+\Deleted'
w DELETE "/v1/messages/$M12" "$K1" 204 "owner: DELETE (to Trash)"
is "$(server | grep "$S12" | cut -f1)" Trash "the server: in Trash"
api_get "/v1/messages/$M12" "$K1"; is "$API_STATUS" 404 "GET after DELETE: 404"
like "$(mx events --json)" "\"type\":\"message.deleted\".*\"message\":\"$M12\"" "event message.deleted"
w DELETE "/v1/messages/$M12" "$K1" 404 "DELETE again: 404"
w DELETE "/v1/messages/$M13?permanent=true" "$K1" 204 "owner: DELETE ?permanent=true"
is "$(server | grep -c "$S13")" 0 "the server: gone for good"
is "$(dc_imap "$D" alice@example.test uids INBOX | grep -c '^14$')" 1 "the other \\Deleted message is still there"
w DELETE "/v1/messages/$M9?permanent=false" "$KA" 204 "admin: DELETE ?permanent=false"

# ---- the server down: 502 upstream, nothing changed in the store
M7=$(id_in "$A" 7)
api_req GET "$API_URL/v1/messages/$M7" "$KA"; before=$(api_body)
dc_stop "$D" >/dev/null
w PATCH "/v1/messages/$M7" "$K1" 502 "Dovecot down: PATCH" '{"seen":true}'
is "$(api_code)" upstream "upstream"
w POST "/v1/messages/$M7/move" "$K1" 502 "Dovecot down: move" '{"folder":"Archive"}'
w DELETE "/v1/messages/$M7" "$K1" 502 "Dovecot down: DELETE"
api_req GET "$API_URL/v1/messages/$M7" "$KA"
is "$(api_body)" "$before" "the store is unchanged"
d_alive; ok $? "mxsyncd still running"
done_testing
