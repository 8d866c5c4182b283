#!/bin/sh
# /v1/webhooks end to end (real mxsyncd, real Dovecot, a local receiver,
# tools/webhook_rx.py), requests through the validating proxy (prism
# --errors against doc/openapi.yaml) and, for hostile bodies prism refuses
# itself, straight to the daemon: admin only (403 for a user token, 401
# without); mxsync.conf's endpoint listed read-only (409, never its
# secret); create with a generated secret shown once; mxsyncd starts
# delivering at once (event filter honoured, signature checked with
# webhook_rx.py and with the shell and Python examples of doc/api.md);
# status (running, cursor, last_delivery, delivered); invalid input is
# 4xx and changes nothing; disable keeps the cursor and enable delivers what
# was missed, signed with the new secret; endpoints survive a restart;
# delete stops delivery and drops the cursor.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
command -v mdb_dump >/dev/null || skip_all "mdb_dump not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
api_tools_check || bail_out "the contract tools are not installed (scripts/npm-tools.sh)"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log
D=$T/dc
U=alice@example.test
dc_setup "$D" $U >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed t-api-webhooks 6 "$T/gen" >/dev/null ||
    bail_out "gen-mail.py"
ls "$T/gen" > "$T/gen.lst"
gen() { sed -n "$1p" "$T/gen.lst" | sed "s|^|$T/gen/|"; }
is "$(dc_deliver "$D" $U $(gen 1) 2>>"$T/deliver.err")" 1 "1 message for alice"
run_ok "account a" mx_add a "$D" $U imaps --owner alice

# rx_start NAME: a receiver logging to $T/NAME.log; sets RX_URL
rx_start() {
    : > "$T/$1.port"; : > "$T/$1.log"
    ( "$MX_PY" "$MX_TOOLS/webhook_rx.py" --log "$T/$1.log" </dev/null \
          >"$T/$1.port" 2>"$T/$1.err" &
      echo $! > "$T/$1.pid" )
    at_exit "kill \$(cat '$T/$1.pid') 2>/dev/null"
    rxi=0
    while [ $rxi -lt 200 ]; do
        rxp=$(head -n 1 "$T/$1.port")
        [ -n "$rxp" ] && { RX_URL="http://127.0.0.1:$rxp/hook"; return 0; }
        sleep 0.025; rxi=$((rxi + 1))
    done
    bail_out "webhook_rx.py did not start: $(cat "$T/$1.err")"
}
rx_start cfg; CFG_URL=$RX_URL
rx_start rx; RX1=$RX_URL
CFG_SECRET='whsec_config-secret-do-not-show'

printf '[daemon]\nworkers = 2\n\n[webhook crm-conf]\nurl = %s\nsecret = %s\n' \
    "$CFG_URL" "$CFG_SECRET" > "$MXD/mxsync.conf"
api_conf "rate_limit=100000" || bail_out "api_conf"
api_token admin --admin >/dev/null || bail_out "token admin"; ADM=$API_TOKEN
api_token alice >/dev/null || bail_out "token alice"; ALICE=$API_TOKEN
api_daemon_start || bail_out "mxsyncd with [api] did not answer /v1/health"
api_prism_start "$T/prism" || bail_out "prism proxy did not start"
API_BASE=$PRISM_URL

# wreq METHOD PATH TOKEN [JSON]: one request to $API_BASE (a JSON body
# when given)
wreq() {
    wm=$1 wp=$2 wk=$3; shift 3
    if [ $# -gt 0 ]; then
        api_req "$wm" "$API_BASE$wp" "$wk" -H 'Content-Type: application/json' --data-binary "$1"
    else
        api_req "$wm" "$API_BASE$wp" "$wk"
    fi
}
# valid WANT DESC: the last answer had status WANT and prism found no
# violation of the spec
valid() {
    vv=$(api_header sl-violations)
    if [ "$API_STATUS" = "$1" ] && [ -z "$vv" ]; then
        pass "$2: $1, valid against the spec"
    else
        fail "$2: $1, valid against the spec"
        diag "status $API_STATUS (want $1)"; [ -n "$vv" ] && diag "sl-violations: $vv"
        diag "body: $(head -c 1500 "$API_BODYF")"
    fi
}
# the endpoints without their status (what a refused request must not change)
snapshot() {
    curl -s -H "Authorization: Bearer $ADM" "$API_URL/v1/webhooks" | "$MX_PY" -c '
import json,sys
for w in json.load(sys.stdin)["webhooks"]:
    w.pop("status"); print(json.dumps(w, sort_keys=True))'
}
# wait_for PATH EXPR: polls GET PATH (admin, direct) until the Python
# EXPR over j is true, at most 20 s; false if it never was
wait_for() {
    wi=0
    while [ $wi -lt 200 ]; do
        API_BASE=$API_URL wreq GET "$1" "$ADM"
        [ "$(api_json "bool($2)")" = true ] && return 0
        sleep 0.1; wi=$((wi + 1))
    done
    return 1
}
# rx_wait NAME N: the receiver NAME got at least N requests (<= 30 s)
rx_wait() {
    wi=0
    while [ $wi -lt 300 ]; do
        [ "$(grep -c . "$T/$1.log")" -ge "$2" ] && return 0
        sleep 0.1; wi=$((wi + 1))
    done
    return 1
}
# rx_req NAME N FIELD: body (raw bytes) or signature of the Nth request
rx_body() { "$MX_PY" -c '
import base64,json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()][int(sys.argv[2])-1]
sys.stdout.buffer.write(base64.b64decode(r["body_b64"]))' "$T/$1.log" "$2"; }
rx_sig() { "$MX_PY" -c '
import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if l.strip()][int(sys.argv[2])-1]
print(r["headers"]["x-mxsync-signature"])' "$T/$1.log" "$2"; }

# ---- mxsync.conf's endpoint: listed, read-only, no secret
wreq GET /v1/webhooks "$ADM"
valid 200 "GET /v1/webhooks (admin)"
is "$(api_json '[(w["name"], w["source"], w["url"]) for w in j["webhooks"]]')" \
   "[[\"crm-conf\", \"config\", \"$CFG_URL\"]]" "the mxsync.conf endpoint is listed as source config"
CFG_ID=$(api_json 'j["webhooks"][0]["id"]')
unlike "$(api_body)" "config-secret" "its secret is not shown"
wreq PATCH "/v1/webhooks/$CFG_ID" "$ADM" '{"enabled":false}'
valid 409 "PATCH a config endpoint"
is "$(api_code)" conflict "PATCH a config endpoint: conflict"
like "$(api_json 'j["error"]["message"]')" "mxsync.conf" "the message says where to change it"
wreq DELETE "/v1/webhooks/$CFG_ID" "$ADM"
valid 409 "DELETE a config endpoint"

# ---- permissions: admin only
for r in "GET /v1/webhooks" "POST /v1/webhooks" "GET /v1/webhooks/$CFG_ID" \
         "PATCH /v1/webhooks/$CFG_ID" "DELETE /v1/webhooks/$CFG_ID"; do
    set -- $r
    if [ "$1" = POST ] || [ "$1" = PATCH ]; then
        wreq "$1" "$2" "$ALICE" "{\"url\":\"$RX1\"}"
    else
        wreq "$1" "$2" "$ALICE"
    fi
    valid 403 "$r with a user token"
    is "$(api_code)" forbidden "$r with a user token: forbidden"
    api_req "$1" "$API_BASE$2" -
    valid 401 "$r without a token"
done
is "$(snapshot | wc -l)" 1 "a user's POST created nothing"

# ---- create: generated secret, shown once; delivery starts at once
wreq POST /v1/webhooks "$ADM" "{\"url\":\"$RX1\",\"events\":[\"message.new\"]}"
valid 201 "POST /v1/webhooks"
WH=$(api_json 'j["id"]')
SECRET=$(api_json 'j["secret"]')
like "$SECRET" '^whsec_[0-9a-f]{48}$' "a secret was generated and is shown in the 201"
is "$(api_header location)" "/v1/webhooks/$WH" "Location names it"
is "$(api_json '[j["source"], j["name"], j["events"], j["enabled"]]')" \
   "[\"api\", \"#$WH\", [\"message.new\"], true]" "source api, name #ID, the filter, enabled"
wreq GET "/v1/webhooks/$WH" "$ADM"
valid 200 "GET /v1/webhooks/{id}"
is "$(api_json '"secret" in j')" false "the secret is never shown again"
wait_for "/v1/webhooks/$WH" 'j["status"]["running"]'
ok $? "mxsyncd started delivering to it (status.running)"

is "$(dc_deliver "$D" $U $(gen 2) 2>>"$T/deliver.err")" 1 "a new message for alice"
rx_wait rx 1; ok $? "the receiver got the message.new event"
run_ok "webhook_rx.py --verify: signed with the generated secret" \
    "$MX_PY" "$MX_TOOLS/webhook_rx.py" --verify "$T/rx.log" --secret "$SECRET"
is "$("$MX_PY" -c '
import base64,json,sys
print(sorted({json.loads(base64.b64decode(json.loads(l)["body_b64"]))["type"] for l in open(sys.argv[1]) if l.strip()}))' "$T/rx.log")" \
   "['message.new']" "only the filtered type was delivered"
EV1=$("$MX_PY" "$MX_TOOLS/webhook_rx.py" --acked "$T/rx.log" | tail -n 1)
wait_for "/v1/webhooks/$WH" "j['status']['delivered'] >= 1 and j['status']['cursor'] >= $EV1"
ok $? "status: delivered and cursor follow the delivery"
is "$(api_json '[j["status"]["consecutive_failures"], j["status"]["last_error"], j["status"]["last_delivery"] is not None]')" \
   "[0, null, true]" "status: no failure, last_delivery set"
rx_wait cfg 1; ok $? "the mxsync.conf endpoint delivers as before"

# ---- the verification examples of doc/api.md, run on that delivery
doc_block() { # the fenced block after the marker line $1
    awk -v m="<!-- t-api-webhooks.sh: $1 -->" '
        $0 == m { f = 1; next }
        f == 1 && /^```/ { f = 2; next }
        f == 2 && /^```/ { exit }
        f == 2 { print }' "$MX_TOP_SRCDIR/doc/api.md"
}
doc_block verify-sh > "$T/verify.sh"; doc_block verify-py > "$T/verify.py"
isnt "$(cat "$T/verify.sh")" "" "doc/api.md has the shell example"
isnt "$(cat "$T/verify.py")" "" "doc/api.md has the Python example"
rx_body rx 1 > "$T/body1"
SIG1=$(rx_sig rx 1)
is "$(BODY_FILE=$T/body1 SIG=$SIG1 SECRET=$SECRET sh "$T/verify.sh")" valid "the shell example accepts the delivery"
{ cat "$T/body1"; printf ' '; } > "$T/body1x"
is "$(BODY_FILE=$T/body1x SIG=$SIG1 SECRET=$SECRET sh "$T/verify.sh")" "" "the shell example refuses a changed body"
is "$(BODY_FILE=$T/body1 SIG=$SIG1 SECRET=whsec_wrong-secret-0000 sh "$T/verify.sh")" "" "the shell example refuses another secret"
cat >> "$T/verify.py" <<'EOF'

import sys
body = open(sys.argv[1], "rb").read()
print(valid(sys.argv[2].encode(), sys.argv[3], body),
      valid(sys.argv[2].encode(), sys.argv[3], body + b" "),
      valid(b"whsec_wrong-secret-0000", sys.argv[3], body))
EOF
is "$("$MX_PY" "$T/verify.py" "$T/body1" "$SECRET" "$SIG1")" "True False False" \
   "the Python example accepts the delivery, refuses a changed body and another secret"

# ---- refused requests change nothing
BEFORE=$(snapshot)
bad() { # WANT_STATUS WANT_CODE DESC JSON: through prism
    wreq POST /v1/webhooks "$ADM" "$4"
    valid "$1" "$3"; is "$(api_code)" "$2" "$3: $2"
}
bad 422 invalid_value "plain http:// to another host" '{"url":"http://crm.example/hook"}'
like "$(api_json 'j["error"]["message"]')" "loopback" "the message says http:// is for loopback only"
bad 422 invalid_value "a file:// URL" '{"url":"file:///etc/passwd"}'
bad 422 invalid_value "a short secret" "{\"url\":\"$RX1\",\"secret\":\"short\"}"
bad 422 invalid_value "a secret with a space" "{\"url\":\"$RX1\",\"secret\":\"sixteen chars ok\"}"
bad 422 invalid_value "an unknown event type" "{\"url\":\"$RX1\",\"events\":[\"message.nope\"]}"
like "$(api_json 'j["error"]["message"]')" 'message\.nope' "the message names the unknown type"
wreq PATCH "/v1/webhooks/$WH" "$ADM" '{"url":"http://crm.example/"}'
valid 422 "PATCH to a plain http:// URL"
wreq GET /v1/webhooks/999999 "$ADM"
valid 404 "GET an unknown webhook"
wreq DELETE /v1/webhooks/999999 "$ADM"
valid 404 "DELETE an unknown webhook"
# what prism refuses itself goes straight to the daemon
direct() { # WANT_STATUS WANT_CODE DESC METHOD PATH [CURL ARGS...]
    dw=$1 dc=$2 dd=$3 dm=$4 dp=$5; shift 5
    api_req "$dm" "$API_URL$dp" "$ADM" "$@"
    is "$API_STATUS/$(api_code)" "$dw/$dc" "$dd (direct)"
}
J='Content-Type: application/json'
direct 400 unknown_field "an unknown field" POST /v1/webhooks -H "$J" --data-binary "{\"url\":\"$RX1\",\"name\":\"x\"}"
is "$(api_json 'j["error"]["details"]["field"]')" name "unknown_field names it"
direct 400 invalid_field "url of the wrong type" POST /v1/webhooks -H "$J" --data-binary '{"url":5}'
direct 400 invalid_field "events not strings" POST /v1/webhooks -H "$J" --data-binary "{\"url\":\"$RX1\",\"events\":[1]}"
direct 400 invalid_field "enabled not a boolean" PATCH "/v1/webhooks/$WH" -H "$J" --data-binary '{"enabled":"no"}'
direct 400 missing_field "no url" POST /v1/webhooks -H "$J" --data-binary '{"events":null}'
direct 400 bad_json "not JSON" POST /v1/webhooks -H "$J" --data-binary '{"url":'
direct 400 bad_request "not an object" POST /v1/webhooks -H "$J" --data-binary '[]'
direct 415 unsupported_media_type "text/plain" POST /v1/webhooks -H 'Content-Type: text/plain' --data-binary "{\"url\":\"$RX1\"}"
direct 400 invalid_id "id 0" GET /v1/webhooks/0
direct 400 invalid_id "id with dots" GET /v1/webhooks/1..2
direct 400 invalid_id "id past 2^63-1" GET /v1/webhooks/9223372036854775808
direct 400 bad_request "a body on DELETE" DELETE "/v1/webhooks/$WH" -H "$J" --data-binary '{}'
is "$(snapshot)" "$BEFORE" "no refused request changed an endpoint"
d_alive; ok $? "mxsyncd still running"

# ---- disable keeps the cursor; enable (with a new secret) delivers the
# event missed meanwhile, signed with the new secret
wreq PATCH "/v1/webhooks/$WH" "$ADM" '{"enabled":false}'
valid 200 "PATCH enabled false"
is "$(api_json 'j["enabled"]')" false "disabled"
wait_for "/v1/webhooks/$WH" 'not j["status"]["running"]'
ok $? "mxsyncd stopped delivering to it"
N1=$(grep -c . "$T/rx.log")
is "$(dc_deliver "$D" $U $(gen 3) 2>>"$T/deliver.err")" 1 "another message while it is disabled"
api_req GET "$API_URL/v1/events?after=$EV1&limit=100" "$ADM"
wi=0
while [ "$(api_json 'len([e for e in j["events"] if e["type"] == "message.new"])')" != 1 ] && [ $wi -lt 300 ]; do
    sleep 0.1; wi=$((wi + 1)); api_req GET "$API_URL/v1/events?after=$EV1&limit=100" "$ADM"
done
EV2=$(api_json '[e["id"] for e in j["events"] if e["type"] == "message.new"][0]')
like "$EV2" '^[0-9]+$' "the daemon synced it (message.new $EV2)"
SECRET2='whsec_new-secret-from-the-patch'
wreq PATCH "/v1/webhooks/$WH" "$ADM" "{\"enabled\":true,\"secret\":\"$SECRET2\",\"events\":null}"
valid 200 "PATCH enabled true, a new secret, every type"
is "$(api_json '[j["enabled"], j["events"], "secret" in j]')" "[true, null, false]" "enabled, no filter, secret not echoed"
rx_wait rx $((N1 + 1)); ok $? "the missed event arrives after enable"
is "$("$MX_PY" "$MX_TOOLS/webhook_rx.py" --acked "$T/rx.log" | grep -cx "$EV2")" 1 "event $EV2 delivered once"
rx_body rx $((N1 + 1)) > "$T/body2"
is "$(BODY_FILE=$T/body2 SIG=$(rx_sig rx $((N1 + 1))) SECRET=$SECRET2 sh "$T/verify.sh")" valid "signed with the new secret"

# ---- a restart: the endpoint is still there and delivers
d_stop_at_exit
api_daemon_start || bail_out "mxsyncd did not restart"
wait_for "/v1/webhooks/$WH" 'j["status"]["running"]'
ok $? "after a restart mxsyncd delivers to the API's endpoint again"
wreq GET /v1/webhooks "$ADM"
valid 200 "GET /v1/webhooks after the restart"
is "$(api_json 'sorted(w["source"] for w in j["webhooks"])')" '["api", "config"]' "both endpoints listed"

# ---- delete: gone, cursor dropped
wreq DELETE "/v1/webhooks/$WH" "$ADM"
valid 204 "DELETE /v1/webhooks/{id}"
is "$(api_body)" "" "204 has no body"
wreq GET "/v1/webhooks/$WH" "$ADM"
valid 404 "GET a deleted webhook"
wi=0
while mdb_dump -s webhooks -p "$MXD" 2>/dev/null | grep -q "^ #$WH\$" && [ $wi -lt 100 ]; do
    sleep 0.1; wi=$((wi + 1))
done
mdb_dump -s webhooks -p "$MXD" > "$T/cursors" 2>&1
unlike "$(cat "$T/cursors")" "^ #$WH\$" "its cursor is gone (retention is not held back)"
like "$(cat "$T/cursors")" "^ crm-conf\$" "the mxsync.conf endpoint's cursor stays"
is "$(snapshot | wc -l)" 1 "one endpoint left"
like "$(cat "$DLOG")" "webhook #$WH: stopped" "the daemon log says the delivery stopped"
d_alive; ok $? "mxsyncd still running"
done_testing
