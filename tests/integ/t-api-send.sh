#!/bin/sh
# POST /v1/send and /v1/outbox (src/api/send.c, outbox.c) against the real
# daemon and a real Dovecot: submission relays through tools/smtpsink.py
# to LMTP, so a message sent through the API is checked in the recipient's
# INBOX and the sender's Sent folder over IMAP.  Requests go through
# `prism proxy --errors` (doc/openapi.yaml checks each request and answer)
# except the hostile ones prism would refuse itself, which go to the
# daemon directly.  Checked: JSON and multipart/form-data sends (the
# attachment's bytes arrive unchanged), Idempotency-Key (a repeat gets the
# same entry and queues nothing, another body under the key is 409),
# every shape error (400), the composer's refusals (422: header injection,
# bad address, path attachments), the permission matrix, and that no
# refused request queues anything; the outbox list (filters, pages),
# get, retry and cancel with their 409s.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
api_tools_check || bail_out "the contract tools are missing (scripts/npm-tools.sh)"

mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log
D=$T/dc
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
. "$D/env"
sink_start "$T/sink-relay" --port "$DC_RELAY_PORT" --relay-lmtp "$DC_LMTP_PORT" ||
    bail_out "smtpsink did not start"

SUB="smtp://alice@example.test@127.0.0.1:$DC_SUBMISSION_PORT"
run_ok "account a (alice, SMTP through submission, owner alice)" \
    mx_add a "$D" alice@example.test imaps --smtp "$SUB" --owner alice
# Account h: alice's too, disabled, so that its mail stays queued (the
# sender leaves a disabled account's mail alone) for retry and cancel.
run_ok "account h (disabled)" mx_add h "$D" alice@example.test imaps --smtp "$SUB" --owner alice
run_ok "disable h" mx account disable h
acct_id() {
    mx account list --json | "$MX_PY" -c '
import json,sys; print([a["id"] for a in json.load(sys.stdin) if a["name"]==sys.argv[1]][0])' "$1"
}
A=$(acct_id a); H=$(acct_id h)
printf '[daemon]\nworkers = 2\n' > "$MXD/mxsync.conf"
api_conf || bail_out "api_conf"
api_token admin --admin >/dev/null || bail_out "token admin"; ADM=$API_TOKEN
api_token alice >/dev/null || bail_out "token alice"; ALICE=$API_TOKEN
api_token bob >/dev/null || bail_out "token bob"; BOB=$API_TOKEN
api_daemon_start || bail_out "mxsyncd with [api] did not answer /v1/health"
api_prism_start "$T/prism" || bail_out "prism proxy did not start"
API_BASE=$PRISM_URL

# post PATH TOKEN FILE [CURL ARGS...]: a JSON body through API_BASE
post() {
    _pp=$1 _pk=$2 _pf=$3; shift 3
    api_req POST "$API_BASE$_pp" "$_pk" -H 'Content-Type: application/json' \
        --data-binary "@$_pf" "$@"
}
# valid DESC: prism saw no violation in the last exchange
valid() {
    _vv=$(api_header sl-violations)
    is "$_vv" "" "$1: valid against the spec"
}
count_mid() {
    dc_imap "$D" "$1" search-header "$2" Message-ID "$3" 2>/dev/null | grep -c .
}
# the outbox as the store has it: entries of all accounts
ob_count() { mx outbox --json | "$MX_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# wait_state ID STATE: polls GET /v1/outbox/ID (<= 30 s) until STATE and,
# for sent, its copy in Sent
wait_state() {
    _wi=0
    while [ $_wi -lt 300 ]; do
        api_get "/v1/outbox/$1" "$ALICE"
        _ws=$(api_json 'j["state"] + ("/" + str(j["appended"]).lower() if j["state"] == "sent" else "")')
        [ "$_ws" = "$2" ] && return 0
        sleep 0.1; _wi=$((_wi + 1))
    done
    diag "outbox entry $1: $_ws (want $2)"
    return 1
}

# ---- 1. a JSON send: 202 queued, then delivered once and filed in Sent
cat > "$T/m1.json" <<EOF
{"account": $A, "to": ["Bob <bob@example.test>"], "subject": "t-api-send json",
 "text": "Hello Bob,\nfrom the API.\n"}
EOF
post /v1/send "$ALICE" "$T/m1.json"
is "$API_STATUS" 202 "POST /v1/send (JSON): 202"
valid "POST /v1/send (JSON)"
ID1=$(api_json 'j["id"]')
is "$(api_json '[j["state"], j["account"], j["account_name"], j["rcpts"]]')" \
    "[\"queued\", $A, \"a\", [\"bob@example.test\"]]" "the answer is the queued entry"
is "$(api_header location)" "/v1/outbox/$ID1" "Location: /v1/outbox/$ID1"
MID1=$(api_json 'j["message_id"]')
wait_state "$ID1" sent/true; ok $? "entry $ID1 sent and copied to Sent"
valid "GET /v1/outbox/{id}"
is "$(count_mid bob@example.test INBOX "$MID1")" 1 "delivered once to bob's INBOX"
is "$(count_mid alice@example.test Sent "$MID1")" 1 "one copy in alice's Sent"

# ---- 2. Idempotency-Key: the same request again is the same entry; another
# request under the key is 409; nothing is queued twice
cat > "$T/m2.json" <<EOF
{"account": $A, "to": "bob@example.test", "subject": "t-api-send idem", "text": "once"}
EOF
# the same document with other member order and blanks
cat > "$T/m2b.json" <<EOF
{ "text": "once",  "subject": "t-api-send idem", "to": "bob@example.test", "account": $A }
EOF
post /v1/send "$ALICE" "$T/m2.json" -H 'Idempotency-Key: order-4711'
is "$API_STATUS" 202 "with Idempotency-Key: 202"
ID2=$(api_json 'j["id"]'); MID2=$(api_json 'j["message_id"]')
n0=$(ob_count)
post /v1/send "$ALICE" "$T/m2b.json" -H 'Idempotency-Key: order-4711'
is "$API_STATUS" 202 "the same request again: 202"
valid "repeated Idempotency-Key"
is "$(api_json 'j["id"]')" "$ID2" "the repeat answers the first entry ($ID2)"
sed 's/"once"/"twice"/' "$T/m2.json" > "$T/m2c.json"
post /v1/send "$ALICE" "$T/m2c.json" -H 'Idempotency-Key: order-4711'
is "$API_STATUS $(api_code)" "409 idempotency_conflict" "another body under the key: 409 idempotency_conflict"
valid "409 idempotency_conflict"
is "$(ob_count)" "$n0" "no entry queued by the repeat or the conflict"
# five at once with one key (to the daemon directly): one entry
n0=$(ob_count)
sed 's/"once"/"concurrent"/' "$T/m2.json" > "$T/m5.json"
pids=
for i in 1 2 3 4 5; do
    curl -s -o "$T/c$i.out" -H "Authorization: Bearer $ALICE" -H 'Content-Type: application/json' \
        -H 'Idempotency-Key: burst-1' --data-binary "@$T/m5.json" "$API_URL/v1/send" &
    pids="$pids $!"
done
for p in $pids; do wait "$p"; done
ids=$(for i in 1 2 3 4 5; do "$MX_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/c$i.out"; done | sort -u)
is "$(printf '%s\n' "$ids" | wc -l | tr -d ' ')" 1 "five concurrent requests with one key: one entry ($ids)"
is "$(ob_count)" "$((n0 + 1))" "and one entry queued"
IDC=$ids
wait_state "$ID2" sent/true; ok $? "entry $ID2 sent"
is "$(count_mid bob@example.test INBOX "$MID2")" 1 "the idempotent message is delivered once"

# ---- 3. multipart/form-data: the message part and file parts.  Through
# prism with a text file (prism re-encodes a forwarded form as UTF-8, which
# would mangle binary parts), then directly with a binary one, whose bytes
# must arrive unchanged.
printf 'notes\r\n' > "$T/notes.txt"
cat > "$T/m3.json" <<EOF
{"account": $A, "to": "bob@example.test", "subject": "t-api-send multipart", "text": "see attached"}
EOF
api_req POST "$API_BASE/v1/send" "$ALICE" -F "message=<$T/m3.json;type=application/json" \
    -F "notes=@$T/notes.txt;type=text/plain"
is "$API_STATUS" 202 "POST /v1/send (multipart/form-data): 202"
[ "$API_STATUS" = 202 ] || diag "$(head -c 2000 "$API_BODYF")"
valid "POST /v1/send (multipart)"
IDM=$(api_json 'j["id"]')
"$MX_PY" -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) * 64 + b"\r\n--x\r\n")' > "$T/blob.bin"
sed 's/t-api-send multipart/t-api-send binary/' "$T/m3.json" > "$T/m4.json"
api_req POST "$API_URL/v1/send" "$ALICE" -F "message=<$T/m4.json;type=application/json" \
    -F "report=@$T/blob.bin;filename=rep ört.bin;type=application/octet-stream"
is "$API_STATUS" 202 "multipart with a binary file part (direct): 202"
ID3=$(api_json 'j["id"]'); MID3=$(api_json 'j["message_id"]')
wait_state "$ID3" sent/true; ok $? "entry $ID3 sent"
uid=$(dc_imap "$D" bob@example.test search-header INBOX Message-ID "$MID3" | head -n 1)
dc_imap "$D" bob@example.test fetch INBOX "$uid" > "$T/m3.eml"
got=$("$MX_PY" -c '
import email, email.policy, hashlib, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
for p in m.iter_attachments():
    print(p.get_filename(), hashlib.sha256(p.get_payload(decode=True)).hexdigest())' "$T/m3.eml")
want=$(sha256sum "$T/blob.bin" | cut -d' ' -f1)
is "$got" "rep ört.bin $want" "the file part arrives as an attachment, name and bytes unchanged"

# ---- 4. refused requests change nothing: shape errors (400, to the daemon
# directly: prism refuses them itself), the composer's (422), permissions
n0=$(ob_count)
e0=$(mx events --json 2>/dev/null | grep -c 'message.queued')
API_BASE=$API_URL
# bad ARGS... : expects STATUS CODE for a JSON body given inline
bad() {
    _bs=$1 _bc=$2 _bd=$3 _bb=$4; shift 4
    printf '%s' "$_bb" > "$T/bad.json"
    post /v1/send "${BADTOK:-$ALICE}" "$T/bad.json" "$@"
    is "$API_STATUS $(api_code)" "$_bs $_bc" "$_bd: $_bs $_bc"
}
bad 400 bad_json "not JSON" '{"account": '
like "$(api_json 'j["error"]["message"]')" 'line 1' "bad_json names the line"
bad 400 bad_request "not an object" '[1]'
bad 400 unknown_field "unknown member" "{\"account\": $A, \"to\": \"bob@example.test\", \"from\": \"evil@example.test\"}"
is "$(api_json 'j["error"]["details"]["field"]')" from "details.field names it"
bad 400 unknown_field "unknown attachment member" "{\"account\": $A, \"to\": \"bob@example.test\", \"attachments\": [{\"filename\": \"a\", \"content_base64\": \"\", \"mode\": 1}]}"
is "$(api_json 'j["error"]["details"]["field"]')" "attachments[0].mode" "details.field names the nested member"
bad 400 invalid_field "to as a number" "{\"account\": $A, \"to\": 5}"
bad 400 invalid_field "to with a number" "{\"account\": $A, \"to\": [\"bob@example.test\", 5]}"
bad 400 invalid_field "subject as an array" "{\"account\": $A, \"to\": \"bob@example.test\", \"subject\": []}"
bad 400 invalid_field "account as a string" "{\"account\": \"a\", \"to\": \"bob@example.test\"}"
bad 400 invalid_field "an attachment's filename as a number" "{\"account\": $A, \"to\": \"bob@example.test\", \"attachments\": [{\"filename\": 5, \"content_base64\": \"\"}]}"
is "$(api_json 'j["error"]["details"]["field"]')" "attachments[0].filename" "details.field names it"
bad 400 missing_field "no account" '{"to": "bob@example.test"}'
bad 400 invalid_field "attachments not an array" "{\"account\": $A, \"to\": \"bob@example.test\", \"attachments\": {}}"
bad 400 bad_request "Idempotency-Key with a blank" "{\"account\": $A, \"to\": \"bob@example.test\"}" -H 'Idempotency-Key: a b'
bad 400 bad_request "Idempotency-Key of 201 characters" "{\"account\": $A, \"to\": \"bob@example.test\"}" \
    -H "Idempotency-Key: $(printf '%0201d' 0)"
bad 422 invalid_value "a path attachment" "{\"account\": $A, \"to\": \"bob@example.test\", \"attachments\": [{\"path\": \"/etc/passwd\"}]}"
bad 422 invalid_value "header injection in the subject" "{\"account\": $A, \"to\": \"bob@example.test\", \"subject\": \"hi\\r\\nBcc: evil@example.test\"}"
bad 422 invalid_value "a bad address" "{\"account\": $A, \"to\": \"bob@\"}"
bad 422 invalid_value "no recipient" "{\"account\": $A, \"subject\": \"x\"}"
bad 422 invalid_value "bad base64" "{\"account\": $A, \"to\": \"bob@example.test\", \"attachments\": [{\"filename\": \"a\", \"content_base64\": \"!!\"}]}"
bad 422 invalid_value "reply to an unknown message" "{\"account\": $A, \"to\": \"bob@example.test\", \"reply_to_message\": \"<nope@example.test>\"}"
bad 404 not_found "an account that does not exist" '{"account": 4000000000, "to": "bob@example.test"}'
BADTOK=$BOB bad 404 not_found "bob: alice's account (owner only)" "{\"account\": $A, \"to\": \"bob@example.test\"}"
BADTOK=mxs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA bad 401 unauthorized "no valid token" "{\"account\": $A, \"to\": \"bob@example.test\"}"
printf '{"account": %s, "to": "bob@example.test"}' "$A" > "$T/ok.json"
api_req POST "$API_URL/v1/send" "$ALICE" -H 'Content-Type: text/plain' --data-binary "@$T/ok.json"
is "$API_STATUS $(api_code)" "415 unsupported_media_type" "text/plain body: 415"
# multipart shapes
api_req POST "$API_URL/v1/send" "$ALICE" -F "report=@$T/blob.bin"
is "$API_STATUS $(api_code)" "400 missing_field" "a form without a message part: 400 missing_field"
api_req POST "$API_URL/v1/send" "$ALICE" -F "message=@$T/ok.json;type=application/json" -F "note=hello"
is "$API_STATUS $(api_code)" "400 unknown_field" "a form with a non-file part besides message: 400 unknown_field"
printf -- '--XX\r\nContent-Disposition: form-data; name="message"\r\n\r\n{"account": %s, "to": "bob@example.test"}\r\n' "$A" > "$T/cut.form"
api_req POST "$API_URL/v1/send" "$ALICE" -H 'Content-Type: multipart/form-data; boundary=XX' --data-binary "@$T/cut.form"
is "$API_STATUS $(api_code)" "400 bad_request" "a form cut short: 400 bad_request"
like "$(api_json 'j["error"]["message"]')" 'no boundary after' "the message says what is wrong"
printf -- '--XX\r\nContent-Disposition: form-data; name="message"\r\nX-Injected: 1\r\n\r\n{}\r\n--XX--\r\n' > "$T/hdr.form"
api_req POST "$API_URL/v1/send" "$ALICE" -H 'Content-Type: multipart/form-data; boundary=XX' --data-binary "@$T/hdr.form"
is "$API_STATUS $(api_code)" "400 bad_request" "a part header the form does not allow: 400 bad_request"
api_req POST "$API_URL/v1/send" "$ALICE" -H 'Content-Type: multipart/form-data' --data-binary "@$T/hdr.form"
is "$API_STATUS $(api_code)" "400 bad_request" "multipart without a boundary: 400 bad_request"
printf -- '--XX\r\nContent-Disposition: form-data; name="message"\r\nContent-Type: application/json\r\n\r\n{"account": 1,\r\n--XX--\r\n' > "$T/badjson.form"
api_req POST "$API_URL/v1/send" "$ALICE" -H 'Content-Type: multipart/form-data; boundary=XX' --data-binary "@$T/badjson.form"
is "$API_STATUS $(api_code)" "400 bad_json" "a message part that is not JSON: 400 bad_json"
api_req POST "$API_URL/v1/send" "$ALICE" -F "message=<$T/ok.json;type=application/jsonp"
is "$API_STATUS $(api_code)" "415 unsupported_media_type" "a message part of another type: 415"
is "$(ob_count)" "$n0" "none of the refused requests queued anything"
is "$(mx events --json 2>/dev/null | grep -c 'message.queued')" "$e0" "and no message.queued event was written"
API_BASE=$PRISM_URL
# the refusals prism lets through are valid against the spec too
printf '{"account": %s, "to": "bob@example.test", "subject": "a\\r\\nBcc: evil@example.test"}' "$A" > "$T/inj.json"
post /v1/send "$ALICE" "$T/inj.json"
is "$API_STATUS $(api_code)" "422 invalid_value" "header injection through prism: 422"
valid "422 invalid_value"
post /v1/send "$BOB" "$T/ok.json"
is "$API_STATUS $(api_code)" "404 not_found" "bob through prism: 404"
valid "404 on send"

# ---- 5. the outbox: list, filters, pages, get; who sees what
api_get "/v1/outbox?account=$A" "$ALICE"
is "$API_STATUS" 200 "GET /v1/outbox: 200"
valid "GET /v1/outbox"
is "$(api_json '[e["id"] for e in j["entries"]]')" "[$ID3, $IDM, $IDC, $ID2, $ID1]" "newest first, the five entries"
wait_state "$IDM" sent/true; ok $? "entry $IDM sent"
wait_state "$IDC" sent/true; ok $? "entry $IDC sent"
api_get "/v1/outbox?state=queued&account=$A" "$ALICE"
is "$(api_json 'len(j["entries"])')" 0 "state=queued: none left for account a"
api_get "/v1/outbox?state=sent" "$ALICE"
is "$(api_json 'len(j["entries"])')" 5 "state=sent: the five"
seen= cur= pages=0
while [ $pages -lt 7 ]; do
    q="/v1/outbox?account=$A&limit=1"; [ -n "$cur" ] && q="$q&cursor=$cur"
    api_get "$q" "$ALICE"
    [ "$API_STATUS" = 200 ] && [ -z "$(api_header sl-violations)" ] || break
    seen="$seen $(api_json 'j["entries"][0]["id"]')"; pages=$((pages + 1))
    cur=$(api_json 'j["next_cursor"] or ""'); [ -n "$cur" ] || break
done
is "$seen" " $ID3 $IDM $IDC $ID2 $ID1" "limit=1 pages visit each entry once"
api_get "/v1/outbox" "$BOB"
is "$API_STATUS $(api_json 'len(j["entries"])')" "200 0" "bob lists none of alice's entries"
api_get "/v1/outbox/$ID1" "$BOB"
is "$API_STATUS $(api_code)" "404 not_found" "bob: alice's entry is 404"
valid "404 on an entry"
api_get "/v1/outbox/$ID1" "$ADM"
is "$API_STATUS" 200 "admin: any entry"
api_get "/v1/outbox/999999999" "$ALICE"
is "$API_STATUS $(api_code)" "404 not_found" "an unknown entry: 404"
API_BASE=$API_URL
api_get "/v1/outbox?state=lost" "$ALICE"
is "$API_STATUS $(api_code)" "400 invalid_parameter" "state=lost: 400 invalid_parameter"
api_get "/v1/outbox?cursor=x" "$ALICE"
is "$API_STATUS $(api_code)" "400 invalid_parameter" "a bad cursor: 400"
api_get "/v1/outbox/0" "$ALICE"
is "$API_STATUS $(api_code)" "400 invalid_id" "id 0: 400 invalid_id"
api_get "/v1/outbox/..%2f1" "$ALICE"
is "$API_STATUS" 400 "a traversal id: 400"
API_BASE=$PRISM_URL

# ---- 6. retry and cancel: on a queued entry (account h is disabled, so its
# mail waits), then the 409s
printf '{"account": %s, "to": "bob@example.test", "subject": "t-api-send held", "text": "wait"}' "$H" > "$T/h.json"
post /v1/send "$ALICE" "$T/h.json"
is "$API_STATUS" 202 "send from the disabled account: 202 (queued)"
IDH=$(api_json 'j["id"]')
api_req POST "$API_BASE/v1/outbox/$IDH/retry" "$BOB"
is "$API_STATUS $(api_code)" "404 not_found" "bob: retry of alice's entry is 404"
api_req POST "$API_BASE/v1/outbox/$IDH/cancel" "$BOB"
is "$API_STATUS $(api_code)" "404 not_found" "bob: cancel of alice's entry is 404"
api_req POST "$API_BASE/v1/outbox/$IDH/retry" "$ALICE"
is "$API_STATUS $(api_json 'j["state"]')" "202 queued" "retry of a queued entry: 202 queued"
valid "POST /v1/outbox/{id}/retry"
api_req POST "$API_BASE/v1/outbox/$IDH/cancel" "$ALICE"
is "$API_STATUS $(api_json 'j["state"]')" "200 cancelled" "cancel: 200 cancelled"
valid "POST /v1/outbox/{id}/cancel"
api_req POST "$API_BASE/v1/outbox/$IDH/cancel" "$ALICE"
is "$API_STATUS $(api_code)" "409 conflict" "cancel again: 409 conflict"
valid "409 on cancel"
api_req POST "$API_BASE/v1/outbox/$IDH/retry" "$ALICE"
is "$API_STATUS $(api_code)" "409 conflict" "retry of a cancelled entry: 409 conflict"
api_req POST "$API_BASE/v1/outbox/$ID1/retry" "$ALICE"
is "$API_STATUS $(api_code)" "409 conflict" "retry of a sent entry: 409 conflict"
valid "409 on retry"
api_req POST "$API_URL/v1/outbox/$ID1/cancel" "$ALICE" -H 'Content-Type: application/json' --data-binary '{}'
is "$API_STATUS" 400 "cancel with a body: 400 (the route takes none)"
api_get "/v1/outbox/$ID1" "$ALICE"
is "$(api_json 'j["state"]')" sent "the sent entry is unchanged"
is "$(count_mid bob@example.test INBOX "$MID1")" 1 "still delivered exactly once"

d_alive; ok $? "mxsyncd still running"
done_testing
