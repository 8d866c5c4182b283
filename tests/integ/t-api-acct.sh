#!/bin/sh
# The write side of /v1/accounts (issue 10): create (url, provider preset,
# discovery refused, credentials), update, enable/disable, delete (kept and
# purged mail), reconnect and sync now (the daemon's side of api_kick),
# permissions; the permission matrix (admin / owner / selected user / other
# user); bad requests change nothing.  Requests go through `prism proxy
# --errors` (each request and answer checked against doc/openapi.yaml)
# except hostile input prism refuses itself, which goes to the daemon
# directly.  Against a real Dovecot and mxsyncd.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
api_tools_check || bail_out "the contract tools are installed (run scripts/npm-tools.sh)"

mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log

D=$T/dc
dc_setup "$D" alice@example.test bob@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
. "$D/env"
APW=$(dc_password "$D" alice@example.test)
BPW=$(dc_password "$D" bob@example.test)
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed acct 3 "$T/gen" >/dev/null || bail_out "gen-mail.py"
is "$(dc_deliver "$D" alice@example.test "$T/gen" 2>>"$T/deliver.err")" 3 "3 messages delivered to alice"

# discovery: the DNS fixture answers SRV for example.test with the test's
# Dovecot (localhost is in its certificate); every HTTPS fetch goes to a
# closed loopback port.  The daemon inherits both (as account add does).
printf '{"_imaps._tcp.example.test": {"srv": [[0, 0, %s, "localhost"]]}}\n' "$DC_IMAPS_PORT" > "$T/zone.json"
tool_start "$T/dns" dnsfixture.py --zone "$T/zone.json" --log "$T/dns.log" ||
    bail_out "dnsfixture did not start"
MXSYNC_DNS_SERVER=127.0.0.1:$TOOL_PORT
MXSYNC_DISCOVER_CONNECT_TO=127.0.0.1:$(_dc_free_ports | cut -d' ' -f1)
export MXSYNC_DNS_SERVER MXSYNC_DISCOVER_CONNECT_TO
run_ok "an empty store (mxsync account list)" mx account list
# Folders other than INBOX are synced every hour only: "sync now" is what
# brings mail delivered there.  One connection per account (IDLE shared).
printf '[daemon]\nworkers = 2\nfolder_interval = 3600\nidle_connection = shared\n' > "$MXD/mxsync.conf"
api_conf || bail_out "api_conf"
api_token admin --admin >/dev/null || bail_out "token create --admin"; ADM=$API_TOKEN
api_token alice >/dev/null || bail_out "token alice"; ALICE=$API_TOKEN
api_token bob >/dev/null || bail_out "token bob"; BOB=$API_TOKEN
api_token carol >/dev/null || bail_out "token carol"; CAROL=$API_TOKEN
api_daemon_start || bail_out "mxsyncd with [api] did not answer /v1/health"
api_prism_start "$T/prism" || bail_out "prism proxy did not start"
API_BASE=$PRISM_URL

JSON='Content-Type: application/json'
# req METHOD PATH TOKEN [JSON BODY]: one request through prism
req() {
    _m=$1 _p=$2 _k=$3
    if [ $# -ge 4 ]; then
        api_req "$_m" "$API_BASE$_p" "$_k" -H "$JSON" --data-binary "$4"
    else
        api_req "$_m" "$API_BASE$_p" "$_k"
    fi
}
# direct METHOD PATH TOKEN [CURL ARGS]: to the daemon (hostile input)
direct() { _m=$1 _p=$2 _k=$3; shift 3; api_req "$_m" "$API_URL$_p" "$_k" "$@"; }
# valid DESC: the last answer passed prism's checks
valid() { is "$(api_header sl-violations)" "" "$1: valid against the spec"; }
# accounts: the sorted names in the store (the CLI's view)
accounts() { mx account list --json | "$MX_PY" -c 'import json,sys; print(" ".join(sorted(a["name"] for a in json.load(sys.stdin))))'; }
# record NAME: the stored record as account list --json shows it
record() { mx account list --json | "$MX_PY" -c 'import json,sys; print(json.dumps([a for a in json.load(sys.stdin) if a["name"]==sys.argv[1]], sort_keys=True))' "$1"; }
# wait_state ID STATE / wait_msgs ID N: GET .../state until its state is
# STATE / it has N messages stored (<= 30 s)
wait_field() {
    _w=0
    while [ $_w -lt 150 ]; do
        api_req GET "$API_URL/v1/accounts/$1/state" "$ADM"
        [ "$(api_json "j[\"$2\"]")" = "$3" ] && return 0
        sleep 0.2; _w=$((_w + 1))
    done
    diag "account $1: state $(api_body), want $2 $3"
    return 1
}
wait_state() { wait_field "$1" state "$2"; }
wait_msgs() { wait_field "$1" messages "$2"; }
imaps() { echo "imaps://$1@127.0.0.1:$DC_IMAPS_PORT"; }

# ---- create
BODY_A=$(printf '{"name":"a","url":"%s","password":"%s","ca_file":"%s","display_name":"Alice","owner":"alice","access":"selected","allow":["bob"],"daily_limit":100}' \
    "$(imaps alice@example.test)" "$APW" "$DC_CA")
req POST /v1/accounts "$ALICE" "$BODY_A"
is "$API_STATUS $(api_code)" "403 forbidden" "create with a user token: 403 forbidden"; valid "create, user token"
is "$(accounts)" "" "  ... and no account was added"
req POST /v1/accounts "$ADM" "$BODY_A"
is "$API_STATUS" 201 "create (admin): 201"; valid "create"
A=$(api_json 'j["id"]')
is "$(api_header location)" "/v1/accounts/$A" "create: Location is the new account"
is "$(api_json '[j["name"], j["credentials"], j["owner"], j["access"], j["allowed"], j["display_name"], j["daily_limit"]]')" \
    '["a", "stored", "alice", "selected", ["bob"], "Alice", 100]' "create: the answer is the stored account"
unlike "$(api_body)" "$APW" "create: the password is not in the answer"
unlike "$(mx account list --json)" "$APW" "create: the password is not in the listing"
wait_msgs "$A" 3; ok $? "the daemon syncs the new account at once: 3 messages"

req POST /v1/accounts "$ADM" "$BODY_A"
is "$API_STATUS $(api_code)" "409 conflict" "the same name again: 409 conflict"; valid "create conflict"
req POST /v1/accounts "$ADM" '{"name":"bad","url":"ftp://x@127.0.0.1","password":"p"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "a URL that is not imap/pop3: 422 invalid_value"; valid "bad URL"
like "$(api_json 'j["error"]["message"]')" 'URL|url' "  ... the message names the URL"
req POST /v1/accounts "$ADM" '{"name":"bad","provider":"nosuch","email":"x@example.test","password":"p"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "an unknown provider: 422 invalid_value"; valid "unknown provider"
req POST /v1/accounts "$ADM" '{"name":"bad","provider":"fastmail","password":"p"}'
is "$API_STATUS $(api_code) $(api_json 'j["error"]["details"]["field"]')" "400 missing_field email" \
    "provider without email: 400 missing_field email"; valid "provider without email"
req POST /v1/accounts "$ADM" '{"name":"bad","url":"imaps://x@127.0.0.1","provider":"fastmail","discover":true,"email":"x@example.test","password":"p"}'
is "$API_STATUS $(api_code)" "400 bad_request" "url and discover together: 400"; valid "url and discover"
req POST /v1/accounts "$ADM" "$(printf '{"name":"bad","url":"%s"}' "$(imaps x@example.test)")"
is "$API_STATUS $(api_code)" "400 bad_request" "no credentials (and no auth: oauth_pending): 400"; valid "no credentials"
req POST /v1/accounts "$ADM" "$(printf '{"name":"bad","url":"%s","password":"p","access":"selected"}' "$(imaps x@example.test)")"
is "$API_STATUS $(api_code)" "422 invalid_value" "access selected without allow: 422"; valid "selected without allow"
req POST /v1/accounts "$ADM" "$(printf '{"name":"bad","url":"%s","password":"p","smtp":"http://x"}' "$(imaps x@example.test)")"
is "$API_STATUS $(api_code)" "422 invalid_value" "a bad SMTP URL: 422"; valid "bad smtp"
req POST /v1/accounts "$ADM" '{"name":"bad","email":"nobody@none.test","discover":true,"password":"p","owner":"bad user"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "a bad owner name is refused before any discovery: 422"; valid "bad owner"
# hostile input prism refuses itself: to the daemon directly
direct POST /v1/accounts "$ADM" -H "$JSON" --data-binary '{"name":"bad","url":"imaps://x@h","password":"p","pasword":"q"}'
is "$API_STATUS $(api_code) $(api_json 'j["error"]["details"]["field"]')" "400 unknown_field pasword" "an unknown member: 400 unknown_field"
direct POST /v1/accounts "$ADM" -H "$JSON" --data-binary '{"name":"bad","url":"imaps://x@h","password":"p","oauth":{"refresh_token":"r","client":"c"}}'
is "$API_STATUS $(api_code) $(api_json 'j["error"]["details"]["field"]')" "400 unknown_field oauth.client" "an unknown member of oauth: 400 unknown_field oauth.client"
direct POST /v1/accounts "$ADM" -H "$JSON" --data-binary '{"name":"bad","url":"imaps://x@h","password":"p","daily_limit":"10"}'
is "$API_STATUS $(api_code) $(api_json 'j["error"]["details"]["field"]')" "400 invalid_field daily_limit" "a number as a string: 400 invalid_field"
direct POST /v1/accounts "$ADM" -H "$JSON" --data-binary '{"name":"bad","url":"imaps://x@h","password":"p","saves_sent":"yes"}'
is "$API_STATUS $(api_code)" "400 invalid_field" "yes for a boolean: 400 invalid_field"
direct POST /v1/accounts "$ADM" -H "$JSON" --data-binary '{"name":"bad/../x","url":"imaps://x@h","password":"p"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "a name with a slash: 422 invalid_value"
direct POST /v1/accounts "$ADM" -H "$JSON" --data-binary '{"name":"bad","url":"imaps://x@h","password":"p\u0000x"}'
is "$API_STATUS" 400 "a NUL byte in the password: 400"
direct POST /v1/accounts "$ADM" -H "$JSON" --data-binary '{"name":"bad","url":"imaps://x@h","password":""}'
is "$API_STATUS $(api_code) $(api_json 'j["error"]["details"]["field"]')" "400 invalid_field password" "an empty password: 400 invalid_field"
direct POST /v1/accounts "$ADM" -H 'Content-Type: text/plain' --data-binary '{"name":"bad"}'
is "$API_STATUS $(api_code)" "415 unsupported_media_type" "text/plain: 415"
direct POST /v1/accounts "$ADM" -H "$JSON" --data-binary '{"name":"bad",'
is "$API_STATUS $(api_code)" "400 bad_json" "truncated JSON: 400 bad_json"
is "$(accounts)" "a" "none of the refused requests added an account"

# a provider preset fills in what the request leaves out (the incoming URL
# given explicitly points at the test's Dovecot)
req POST /v1/accounts "$ADM" "$(printf '{"name":"p","provider":"fastmail","email":"bob@example.test","url":"%s","password":"%s","ca_file":"%s","owner":"bob"}' \
    "$(imaps bob@example.test)" "$BPW" "$DC_CA")"
is "$API_STATUS" 201 "create with provider fastmail: 201"; valid "create with provider"
P=$(api_json 'j["id"]')
is "$(api_json '[j["provider"], j["smtp"]["host"], j["smtp"]["port"], j["daily_limit"], j["saves_sent"], j["host"]]')" \
    '["fastmail", "smtp.fastmail.com", 465, 1000, false, "127.0.0.1"]' "the preset filled SMTP, daily limit and Sent; the given URL won"
wait_state "$P" idle; ok $? "account p syncs (idle)"

# discovery: SRV gives the server; nothing found is 422 and adds nothing
req POST /v1/accounts "$ADM" '{"name":"n","email":"nobody@none.test","discover":true,"password":"p"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "discover, nothing found: 422 invalid_value"; valid "discover nothing"
like "$(api_json 'j["error"]["message"]')" 'no mail servers found for none\.test' "  ... the message says what was tried"
req POST /v1/accounts "$ADM" "$(printf '{"name":"d","email":"alice@example.test","discover":true,"password":"%s","ca_file":"%s"}' "$APW" "$DC_CA")"
is "$API_STATUS" 201 "discover (SRV): 201"; valid "discover"
DI=$(api_json 'j["id"]')
is "$(api_json 'j["imap"]')" "imaps://alice@example.test@localhost:$DC_IMAPS_PORT" "discover: the SRV record's server and port"
wait_msgs "$DI" 3; ok $? "the discovered account syncs: 3 messages"
req DELETE "/v1/accounts/$DI?purge=true" "$ADM"
is "$API_STATUS" 204 "discovered account removed with its mail"

# OAuth2: a refresh token, or none yet (auth: oauth_pending, for the
# browser flow); the secrets are never answered
req POST /v1/accounts "$ADM" "$(printf '{"name":"o1","url":"%s","oauth":{"refresh_token":"rt-secret-1","client_id":"cid","client_secret":"cs-secret-1","token_url":"http://127.0.0.1:1/token"},"ca_file":"%s"}' "$(imaps o1@example.test)" "$DC_CA")"
is "$API_STATUS $(api_json 'j["credentials"]')" "201 oauth2" "create with an OAuth2 refresh token: 201, credentials oauth2"; valid "create oauth"
O1=$(api_json 'j["id"]')
unlike "$(api_body)$(mx account list --json)" 'secret-1' "  ... neither the refresh token nor the client secret is shown"
req POST /v1/accounts "$ADM" "$(printf '{"name":"o2","url":"%s","auth":"oauth_pending","oauth":{"client_id":"cid","token_url":"http://127.0.0.1:1/token"}}' "$(imaps o2@example.test)")"
is "$API_STATUS $(api_json 'j["credentials"]')" "201 none" "create oauth_pending: 201, no credentials yet"; valid "create oauth_pending"
O2=$(api_json 'j["id"]')
req POST /v1/accounts "$ADM" "$(printf '{"name":"o4","url":"%s","auth":"oauth_pending"}' "$(imaps o4@example.test)")"
is "$API_STATUS $(api_json 'j["credentials"]')" "201 none" "oauth_pending with no endpoint yet (oauth/start may name them): 201"; valid "oauth_pending bare"
O4=$(api_json 'j["id"]')
req POST /v1/accounts "$ADM" "$(printf '{"name":"o3","url":"%s","password":"p","oauth":{"refresh_token":"r","token_url":"http://127.0.0.1:1/token"}}' "$(imaps o3@example.test)")"
is "$API_STATUS $(api_code)" "400 bad_request" "a password and a refresh token: 400"; valid "password and oauth"
req POST /v1/accounts "$ADM" "$(printf '{"name":"o3","url":"%s","oauth":{"refresh_token":"r","token_url":"http://idp.example.org/token"}}' "$(imaps o3@example.test)")"
is "$API_STATUS $(api_code)" "422 invalid_value" "a token endpoint over plain http to a non-loopback host: 422"; valid "insecure token url"
for id in "$O1" "$O2" "$O4"; do req DELETE "/v1/accounts/$id" "$ADM"; is "$API_STATUS" 204 "account $id removed"; done

# ---- permission matrix on account a (owner alice, selected: bob)
# who: admin alice bob carol; each line: METHOD PATH BODY STATUSES
matrix() {
    _m=$1 _p=$2 _b=$3; shift 3
    for _who in admin alice bob carol; do
        case $_who in admin) _k=$ADM ;; alice) _k=$ALICE ;; bob) _k=$BOB ;; carol) _k=$CAROL ;; esac
        if [ -n "$_b" ]; then req "$_m" "$_p" "$_k" "$_b"; else req "$_m" "$_p" "$_k"; fi
        is "$API_STATUS" "$1" "$_m $_p as $_who: $1"
        [ -z "$(api_header sl-violations)" ] || fail "$_m $_p as $_who: valid against the spec ($(api_header sl-violations))"
        shift
    done
}
#      method path                           body                          admin alice bob carol
matrix GET   "/v1/accounts/$A/permissions"   ""                            200   200   200 404
matrix PATCH "/v1/accounts/$A"               '{"display_name":"Alice A"}'  200   200   403 404
matrix PATCH "/v1/accounts/$A"               '{"access":"selected"}'       200   403   403 404
matrix PUT   "/v1/accounts/$A/permissions"   '{"owner":"alice","access":"selected","allow":["bob"]}' 200 403 403 404
matrix POST  "/v1/accounts/$A/sync"          ""                            202   202   202 404
matrix POST  "/v1/accounts/$A/enable"        ""                            200   200   403 404
matrix POST  "/v1/accounts/$A/disable"       ""                            200   200   403 404
wait_state "$A" disabled; ok $? "disable: the daemon stops the account (state disabled)"
matrix POST  "/v1/accounts/$A/enable"        ""                            200   200   403 404
wait_state "$A" idle; ok $? "enable: the daemon starts it again (idle)"
for who in alice bob carol; do
    case $who in alice) k=$ALICE w=403 ;; bob) k=$BOB w=403 ;; carol) k=$CAROL w=404 ;; esac
    req DELETE "/v1/accounts/$A" "$k"
    is "$API_STATUS" "$w" "DELETE /v1/accounts/$A as $who: $w"; valid "DELETE as $who"
    req POST "/v1/accounts/$A/reconnect" "$k"
    [ $who = carol ] || w=202
    is "$API_STATUS" "$w" "POST /v1/accounts/$A/reconnect as $who: $w"; valid "reconnect as $who"
    req PUT "/v1/accounts/$A/permissions" "$k" '{"access":"all"}'
    [ $who = carol ] || w=403
    is "$API_STATUS" "$w" "PUT permissions as $who: $w"; valid "PUT permissions as $who"
done
is "$(accounts)" "a p" "the refused deletes removed nothing"
api_req GET "$API_URL/v1/accounts/$A/permissions" "$ADM"
is "$(api_body)" '{"owner":"alice","access":"selected","allow":["bob"]}' "the refused permission changes changed nothing"

# ---- update: what changes, and a bad request changes nothing
before=$(record a)
req PATCH "/v1/accounts/$A" "$ALICE" '{"display_name":"Alice B","daily_limit":7,"smtp":"smtp://alice@127.0.0.1:1"}'
is "$API_STATUS" 200 "PATCH display name, daily limit, SMTP (owner): 200"; valid "PATCH"
is "$(api_json '[j["display_name"], j["daily_limit"], j["smtp"]["port"]]')" '["Alice B", 7, 1]' "PATCH: the answer has the new values"
before=$(record a)
req PATCH "/v1/accounts/$A" "$ALICE" '{"display_name":"Alice C","smtp":"gopher://x"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "PATCH with a bad SMTP URL: 422"; valid "PATCH bad smtp"
req PATCH "/v1/accounts/$A" "$ALICE" '{"display_name":"Alice C","quota_policy":"relay"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "PATCH quota_policy relay without a relay: 422"; valid "PATCH relay"
direct PATCH "/v1/accounts/$A" "$ALICE" -H "$JSON" --data-binary '{"display_name":"Alice\r\nBcc: x@example.org"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "PATCH a display name with CR LF: 422"
direct PATCH "/v1/accounts/$A" "$ALICE" -H "$JSON" --data-binary '{"display_name":"Alice C","url":"imaps://x@h"}'
is "$API_STATUS $(api_code)" "400 unknown_field" "PATCH an unknown member: 400 unknown_field"
direct PATCH "/v1/accounts/$A" "$ALICE" -H "$JSON" --data-binary '{"display_name":"Alice C","disabled":1}'
is "$API_STATUS $(api_code)" "400 invalid_field" "PATCH disabled: 1: 400 invalid_field"
direct PATCH "/v1/accounts/$A" "$ALICE" -H "$JSON" --data-binary '{"display_name":"Alice C","password":""}'
is "$API_STATUS $(api_code)" "400 invalid_field" "PATCH an empty password: 400 invalid_field"
direct PATCH "/v1/accounts/$A" "$ALICE" -H "$JSON" --data-binary '[]'
is "$API_STATUS $(api_code)" "400 bad_request" "PATCH with an array: 400"
direct PATCH "/v1/accounts/$A" "$ALICE" -H "$JSON" --data-binary "$(printf '{"display_name":"\377"}')"
is "$API_STATUS $(api_code)" "400 bad_json" "PATCH with invalid UTF-8: 400 bad_json"
is "$(record a)" "$before" "none of the refused PATCHes changed the record"
api_req GET "$API_URL/v1/accounts/$A/state" "$ADM"
is "$(api_json 'j["state"]')" idle "  ... and the account still runs (idle)"

# ---- the password: a wrong one ends in auth_failed; PATCH password
# restarts the account with the new one
req POST /v1/accounts "$ADM" "$(printf '{"name":"b","url":"%s","password":"wrong","ca_file":"%s","owner":"bob"}'     "$(imaps bob@example.test)" "$DC_CA")"
is "$API_STATUS" 201 "create b with a wrong password: 201"; valid "create b"
B=$(api_json 'j["id"]')
wait_state "$B" auth_failed; ok $? "b: auth_failed"
req PATCH "/v1/accounts/$B" "$BOB" "$(printf '{"password":"%s"}' "$BPW")"
is "$API_STATUS" 200 "PATCH password (owner bob): 200"; valid "PATCH password"
unlike "$(api_body)" "$BPW" "  ... the password is not in the answer"
wait_state "$B" idle; ok $? "b: the daemon reconnects with the new password (idle)"

# ---- reconnect: the connection goes and a new login is made
logins() { grep -c 'imap-login: .*Login: user=<alice@example.test>' "$DC_LOG"; }
n0=$(logins)
req POST "/v1/accounts/$A/reconnect" "$BOB"
is "$API_STATUS" 202 "reconnect (bob, selected): 202"; valid "reconnect"
is "$(api_body)" "{\"account\":$A,\"action\":\"reconnect\"}" "reconnect: the answer names the account and the action"
i=0; while [ "$(logins)" -le "$n0" ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
isnt "$(logins)" "$n0" "reconnect: Dovecot saw a new login of alice"
like "$(cat "$DLOG")" "account a \\(#$A\\): reconnect asked through the API" "reconnect: the daemon logged why"
wait_state "$A" idle; ok $? "reconnect: idle again"

# ---- sync now: mail delivered to a folder other than INBOX arrives at
# once (the next scheduled folder sync is an hour away)
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed acct2 1 "$T/gen2" >/dev/null || bail_out "gen-mail.py"
"$MX_PY" "$MX_TOOLS/deliver.py" --port "$DC_LMTP_PORT" --rcpt alice@example.test --folder Archive "$T/gen2" >/dev/null 2>>"$T/deliver.err"
sleep 2
api_req GET "$API_URL/v1/accounts/$A/state" "$ADM"
is "$(api_json 'j["messages"]')" 3 "mail delivered to Archive is not synced by itself"
req POST "/v1/accounts/$A/sync" "$ALICE"
is "$API_STATUS" 202 "sync now: 202"; valid "sync"
wait_msgs "$A" 4; ok $? "sync now: the message in Archive is stored"

# ---- permissions
req PUT "/v1/accounts/$A/permissions" "$ADM" '{"access":"selected","allow":[]}'
is "$API_STATUS $(api_code)" "422 invalid_value" "PUT selected with nobody allowed: 422"; valid "PUT selected empty"
req PUT "/v1/accounts/$A/permissions" "$ADM" '{"access":"all"}'
is "$API_STATUS $(api_body)" '200 {"owner":null,"access":"all","allow":[]}' "PUT the whole set (access all, no owner, nobody listed): 200"
valid "PUT permissions"
req GET "/v1/accounts/$A" "$CAROL"
is "$API_STATUS" 200 "access all: carol may use it now"
req PATCH "/v1/accounts/$A" "$ALICE" '{"display_name":"x"}'
is "$API_STATUS" 403 "alice is not its owner any more: PATCH 403"
req PUT "/v1/accounts/$A/permissions" "$ADM" '{"owner":"alice","access":"owner"}'
is "$API_STATUS $(api_body)" '200 {"owner":"alice","access":"owner","allow":[]}' "PUT owner alice, access owner: 200"
req GET "/v1/accounts/$A" "$BOB"
is "$API_STATUS" 404 "bob may not use it any more: 404"

# ---- sync and reconnect of a disabled account: 409
req POST "/v1/accounts/$P/disable" "$ADM"
is "$API_STATUS" 200 "disable p: 200"
req POST "/v1/accounts/$P/sync" "$BOB"
is "$API_STATUS $(api_code)" "409 conflict" "sync a disabled account: 409 conflict"; valid "sync disabled"

# ---- delete: kept mail, purge, bad parameter
direct DELETE "/v1/accounts/$A?purge=maybe" "$ADM"
is "$API_STATUS $(api_code)" "400 invalid_parameter" "DELETE ?purge=maybe (direct: prism refuses it too): 400"
is "$(accounts)" "a b p" "  ... nothing removed"
req DELETE "/v1/accounts/$A" "$ADM"
is "$API_STATUS" 204 "DELETE a (admin): 204"; valid "DELETE"
is "$(api_body)" "" "204: no body"
req GET "/v1/accounts/$A" "$ADM"
is "$API_STATUS" 404 "a is gone: 404"
i=0; while ! grep -q "account a (#$A): stopped, connection closed" "$DLOG" && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
like "$(cat "$DLOG")" "account a \\(#$A\\): stopped, connection closed" "the daemon stopped a at once"
# kept: re-adding a with the same server re-attaches its 4 messages
req POST /v1/accounts "$ADM" "$BODY_A"
is "$API_STATUS $(api_json 'j["id"]')" "201 $A" "a added again: the same id (its kept mail)"
req DELETE "/v1/accounts/$A?purge=true" "$ADM"
is "$API_STATUS" 204 "DELETE a ?purge=true: 204"; valid "DELETE purge"
req DELETE "/v1/accounts/$P?purge=false" "$ADM"
is "$API_STATUS" 204 "DELETE p ?purge=false: 204"
is "$(accounts)" "b" "only b is left"
run_ok "mxsync ls b still works" mx ls b

d_alive; ok $? "mxsyncd still running"
# stopped here so that a sanitizer's report at exit (leaks) is in its log
d_stop_at_exit
unlike "$(cat "$DLOG")" 'Sanitizer|runtime error' "mxsyncd stopped with no sanitizer report"
done_testing
