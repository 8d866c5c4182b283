#!/bin/sh
# The HTTP API's browser OAuth flow (src/api/oauth.c, issue 10): POST
# /v1/accounts/{id}/oauth/start and GET /v1/oauth/callback, end to end
# against the fake IdP (tools/fake_idp.py: its /authorize redirects back
# with a code, its token endpoint checks the PKCE code_verifier) and a real
# Dovecot whose oauth2 passdb accepts the IdP's tokens.  An account whose
# password is wrong sits in auth_failed; connecting it with OAuth through
# the API takes it out and it syncs.  Every request of the flow goes
# through prism --errors (doc/openapi.yaml); hostile input that prism
# itself refuses goes to the daemon directly.  Permissions (owner, admin,
# a user who may use the account, one who may not), return_to, reused,
# unknown and malformed states, access_denied, a refused code; each
# refused request leaves the account as it was.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
if ! api_tools_check 2>"${TMPDIR:-/tmp}/t-api-oauth.$$"; then
    diag "$(cat "${TMPDIR:-/tmp}/t-api-oauth.$$")"
    rm -f "${TMPDIR:-/tmp}/t-api-oauth.$$"
    fail "the contract tools are installed (run scripts/npm-tools.sh)"
    done_testing
fi
rm -f "${TMPDIR:-/tmp}/t-api-oauth.$$"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log
D=$T/dc
dc_setup "$D" alice@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
. "$D/env"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed t-api-oauth 3 "$T/gen" >/dev/null || bail_out "gen-mail.py"
is "$(dc_deliver "$D" alice@example.test "$T/gen" 2>>"$T/deliver.err")" 3 "3 messages for alice"

# the fake IdP signs with Dovecot's key: its tokens log alice in
idp_start "$T/idp" "$D" || bail_out "fake_idp did not start"
IDP=http://127.0.0.1:$IDP_PORT
idp_control() {
    "$MX_PY" -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST")).read()' \
        "$IDP/control" "$1"
}

# account o: alice with a wrong password (the daemon puts it in
# auth_failed), owned by alice, usable by carol too
printf 'not-the-password\n' > "$T/wrong.pw"
run_ok "account o: a wrong password, owner alice, allow carol" \
    mx account add o --imap "imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT" \
    --password-file "$T/wrong.pw" --ca-file "$DC_CA" \
    --owner alice --access selected --allow carol
O=$(mx account list --json | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')

printf '[daemon]\nworkers = 2\nbackoff_min = 1\nbackoff_max = 2\n' > "$MXD/mxsync.conf"
RET_OK=http://127.0.0.1:9
api_conf "oauth_return=$RET_OK" || bail_out "api_conf"
api_token admin --admin >/dev/null || bail_out "token admin"; KA=$API_TOKEN
api_token alice >/dev/null || bail_out "token alice"; KO=$API_TOKEN
api_token carol >/dev/null || bail_out "token carol"; KC=$API_TOKEN
api_token dave >/dev/null || bail_out "token dave"; KD=$API_TOKEN
api_daemon_start || bail_out "mxsyncd with [api] did not answer /v1/health"
api_prism_start "$T/prism" || bail_out "prism proxy did not start"

state_of() {
    api_req GET "$API_URL/v1/accounts/$O/state" "$KA"
    api_json 'j["state"]'
}
wait_state() { # STATE: up to 30 s
    _w=0
    while [ "$(state_of)" != "$1" ] && [ $_w -lt 300 ]; do sleep 0.1; _w=$((_w + 1)); done
    state_of
}
is "$(wait_state auth_failed)" auth_failed "account o is in auth_failed (wrong password)"
record() { mx account list --json; }
BEFORE=$(record)

# through STATUS DESC METHOD PATH TOKEN [CURL ARGS...]: one request through
# prism --errors; the status is STATUS and prism saw no violation
through() {
    _ts=$1 _td=$2 _tm=$3 _tp=$4 _tk=$5; shift 5
    api_req "$_tm" "$PRISM_URL$_tp" "$_tk" "$@"
    _tv=$(api_header sl-violations)
    if [ "$API_STATUS" = "$_ts" ] && [ -z "$_tv" ]; then
        pass "$_td: $_ts, valid against the spec"
    else
        fail "$_td: $_ts, valid against the spec"
        diag "$_tm $_tp: status $API_STATUS (want $_ts)"
        [ -n "$_tv" ] && diag "sl-violations: $_tv"
        diag "body: $(head -c 2000 "$API_BODYF")"
    fi
}
JSON='Content-Type: application/json'
CLIENT="\"auth_url\":\"$IDP/authorize\",\"token_url\":\"$IDP/token\",\"client_id\":\"public-client\""
start() { # STATUS DESC TOKEN [BODY]: POST .../oauth/start through prism
    _ss=$1 _sd=$2 _sk=$3
    if [ $# -ge 4 ]; then
        through "$_ss" "$_sd" POST "/v1/accounts/$O/oauth/start" "$_sk" -H "$JSON" --data-binary "$4"
    else
        through "$_ss" "$_sd" POST "/v1/accounts/$O/oauth/start" "$_sk"
    fi
}
# authorize: the user's browser at the IdP; sets CB to the callback URL
# it is sent back to (through prism) and prints it
authorize() {
    _loc=$(curl -s -o /dev/null -w '%{redirect_url}' --max-time 10 "$1")
    CB=$PRISM_URL${_loc#"$API_URL"}
}
callback() { # STATUS DESC URL (of prism): the browser back at the API
    through "$1" "$2" GET "${3#"$PRISM_URL"}" -
}
unchanged() { is "$(record)" "$BEFORE" "$1: the account is unchanged"; }

# ---- start: permissions and bad requests change nothing
start 401 "start without a token" -
start 404 "start by dave, who may not use the account" "$KD" "{$CLIENT}"
is "$(api_code)" not_found "dave: not_found"
start 403 "start by carol, who may use the account but does not own it" "$KC" "{$CLIENT}"
is "$(api_code)" forbidden "carol: forbidden"
start 422 "start without an OAuth client (the account has none, no preset)" "$KO"
is "$(api_code)/$(api_json 'j["error"]["details"]["field"]')" invalid_value/client_id "no client: invalid_value naming client_id"
start 422 "start with plain http:// to a remote authorization endpoint" "$KO" \
    "{\"auth_url\":\"http://idp.example.test/authorize\",\"token_url\":\"$IDP/token\",\"client_id\":\"public-client\"}"
is "$(api_code)" invalid_value "remote http:// endpoint: invalid_value"
like "$(api_body)" 'loopback' "remote http:// endpoint: the message says why"
start 422 "start with a return_to on another origin" "$KO" "{$CLIENT,\"return_to\":\"https://evil.example/x\"}"
is "$(api_code)/$(api_json 'j["error"]["details"]["field"]')" invalid_value/return_to "foreign return_to: invalid_value naming return_to"
start 422 "start with a return_to with user info" "$KO" "{$CLIENT,\"return_to\":\"http://127.0.0.1:9@evil.example/\"}"
# what prism refuses before the daemon sees it: to the daemon directly
api_req POST "$API_URL/v1/accounts/$O/oauth/start" "$KO" -H "$JSON" --data-binary "{$CLIENT,\"extra\":1}"
is "$API_STATUS/$(api_code)/$(api_json 'j["error"]["details"]["field"]')" 400/unknown_field/extra "unknown field: 400 unknown_field naming it"
api_req POST "$API_URL/v1/accounts/$O/oauth/start" "$KO" -H "$JSON" --data-binary '{"return_to":'
is "$API_STATUS/$(api_code)" 400/bad_json "truncated JSON: 400 bad_json"
api_req POST "$API_URL/v1/accounts/$O/oauth/start" "$KO" -H "$JSON" --data-binary '{"client_id":7}'
is "$API_STATUS/$(api_code)" 400/invalid_field "client_id a number: 400 invalid_field"
api_req POST "$API_URL/v1/accounts/$O/oauth/start" "$KO" -H 'Content-Type: text/plain' --data-binary "{$CLIENT}"
is "$API_STATUS/$(api_code)" 415/unsupported_media_type "text/plain body: 415"
api_req POST "$API_URL/v1/accounts/0$O/oauth/start" "$KO" -H "$JSON" --data-binary "{$CLIENT}"
is "$API_STATUS/$(api_code)" 400/invalid_id "a leading zero in the id: 400 invalid_id"
unchanged "refused starts"

# ---- callback: hostile or stale input changes nothing
callback 400 "callback without a state" "$PRISM_URL/v1/oauth/callback?code=x"
like "$(api_header content-type)" '^text/html' "the callback answers HTML"
like "$(api_body)" 'no valid state' "no state: the page says so"
callback 400 "callback with a malformed state" "$PRISM_URL/v1/oauth/callback?code=x&state=..%2F..%2Fetc"
callback 400 "callback with an unknown state" \
    "$PRISM_URL/v1/oauth/callback?code=x&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
like "$(api_body)" 'unknown or was already used' "unknown state: the page says so"
api_req GET "$API_URL/v1/oauth/callback?code=x&state=y&utm=1" -
is "$API_STATUS/$(api_code)" 400/invalid_parameter "an unknown query parameter: 400 invalid_parameter"
unchanged "refused callbacks"

# ---- the user refuses at the provider: 403, nothing stored, state spent
idp_control '{"deny": true}'
start 200 "start by the owner" "$KO" "{$CLIENT}"
authorize "$(api_json 'j["authorize_url"]')"
like "$CB" 'error=access_denied' "the IdP sends the browser back with error=access_denied"
callback 403 "callback with access_denied" "$CB"
like "$(api_body)" 'refused access' "access_denied: the page says so"
callback 400 "the same answer again" "$CB"
unchanged "access_denied"
idp_control '{"deny": false}'

# ---- a code the token endpoint refuses (wrong verifier, as a stolen
# code would be): 502, nothing stored
start 200 "start by an admin" "$KA" "{$CLIENT}"
STATE=$(api_json 'j["state"]')
authorize "$(api_json 'j["authorize_url"]')"
callback 502 "callback with a code the token endpoint refuses" \
    "$PRISM_URL/v1/oauth/callback?code=not-the-code&state=$STATE"
like "$(api_body)" 'invalid_grant' "refused code: the page gives the endpoint's words"
like "$(cat "$IDP_LOG")" '"grant_type": "authorization_code".*"status": 400' "the token endpoint was asked and said 400"
callback 400 "the real code after the state was spent" "$CB"
unchanged "refused code"

# ---- hostile text from the provider is escaped in the page
start 200 "start (hostile error text)" "$KO" "{$CLIENT}"
STATE=$(api_json 'j["state"]')
callback 400 "callback with an error that is markup" \
    "$PRISM_URL/v1/oauth/callback?state=$STATE&error=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
unlike "$(api_body)" '<script>' "the provider's error is escaped, not markup"
like "$(api_header content-security-policy)" "default-src 'none'" "the page forbids scripts"
is "$(api_header referrer-policy)" no-referrer "the page sends no referrer (its URL holds the code)"
unchanged "hostile error"

# ---- success: the owner connects the account; the daemon takes it out of
# auth_failed and it syncs with the IdP's tokens
start 200 "start by the owner" "$KO" "{$CLIENT}"
AU=$(api_json 'j["authorize_url"]')
STATE=$(api_json 'j["state"]')
# the pending flow is stored under a hash of its state
grep -q "$IDP/token" "$MXD/data.mdb"; ok $? "the flow's record is in $MXD/data.mdb (the search sees it)"
if grep -q "$STATE" "$MXD/data.mdb"; then fail "the pending flow's state is not stored in clear"; else pass "the pending flow's state is not stored in clear"; fi
like "$AU" "^$IDP/authorize\\?response_type=code&client_id=public-client&" "the authorize URL is the IdP's, for the client"
like "$AU" "&redirect_uri=http%3A%2F%2F127.0.0.1%3A$API_PORT%2Fv1%2Foauth%2Fcallback&" "redirect_uri: the API's callback (default public URL)"
like "$AU" "&state=$STATE&code_challenge=[A-Za-z0-9_-]{43}&code_challenge_method=S256\$" "state and an S256 challenge"
like "$(api_json 'j["expires_at"]')" '^20[0-9][0-9]-[0-9][0-9]-[0-9][0-9]T' "expires_at is a date-time"
authorize "$AU"
like "$CB" "code=.*state=$STATE" "the IdP sends the browser back with a code and the state"
callback 200 "callback with the code" "$CB"
like "$(api_body)" 'Account o is connected' "the page says connected"
like "$(grep '"grant_type": "authorization_code"' "$IDP_LOG" | tail -n 1)" '"client_id": "public-client", "status": 200' \
    "the code was exchanged with the verifier (the IdP checks it)"
AFTER=$(record)
like "$AFTER" '"credentials": "oauth2"' "the account now logs in with OAuth2"
unlike "$AFTER" 'refresh-' "no token in the account listing"
is "$(wait_state idle)" idle "the daemon takes the account out of auth_failed and syncs"
api_req GET "$API_URL/v1/messages?account=$O" "$KO"
is "$(api_json 'len(j["messages"])')" 3 "alice's 3 messages are synced with the IdP's token"
api_req GET "$API_URL/v1/events?after=0&limit=500" "$KA"
like "$(api_body)" '"account.reauth"' "an account.reauth event was written"
callback 400 "the same callback again (the state is single use)" "$CB"
is "$(record)" "$AFTER" "a reused state changes nothing"

# ---- return_to: the API's own origin and an [api] oauth_return origin.
# The 303 goes to the daemon directly: prism follows redirects itself.
start 200 "start with return_to on the API's origin" "$KA" "{$CLIENT,\"return_to\":\"$API_URL/done?x=1\"}"
authorize "$(api_json 'j["authorize_url"]')"
api_req GET "$API_URL${CB#"$PRISM_URL"}" -
is "$API_STATUS" 303 "callback with return_to: 303"
is "$(api_header location)" "$API_URL/done?x=1" "303 to return_to"
start 200 "start by an admin with an oauth_return origin" "$KA" "{$CLIENT,\"return_to\":\"$RET_OK/crm/accounts\"}"
authorize "$(api_json 'j["authorize_url"]')"
api_req GET "$API_URL${CB#"$PRISM_URL"}" -
is "$API_STATUS" 303 "callback with an oauth_return origin: 303"
is "$(api_header location)" "$RET_OK/crm/accounts" "303 to the listed origin"
is "$(wait_state idle)" idle "the account is still idle"

d_alive; ok $? "mxsyncd still running"

# ---- the account's client secret goes only to its own client: account c
# has a confidential client (test-client, secret) at the IdP
printf 'test-secret\n' > "$T/client-secret"
printf 'refresh-alice\n' > "$T/rt"
run_ok "account c: OAuth2 with a confidential client, owner alice" \
    mx account add c --imap "imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT" --ca-file "$DC_CA" \
    --oauth-token-url "$IDP/token" --oauth-client-id test-client \
    --oauth-client-secret-file "$T/client-secret" --refresh-token-file "$T/rt" --owner alice
C=$(mx account list --json | "$MX_PY" -c '
import json,sys; print([a["id"] for a in json.load(sys.stdin) if a["name"]=="c"][0])')
last_code_grant() { grep '"grant_type": "authorization_code"' "$IDP_LOG" | tail -n 1; }
through 200 "start for c with its own client" POST "/v1/accounts/$C/oauth/start" "$KO" \
    -H "$JSON" --data-binary "{\"auth_url\":\"$IDP/authorize\"}"
authorize "$(api_json 'j["authorize_url"]')"
callback 200 "callback for c" "$CB"
like "$(last_code_grant)" '"client_auth": "basic", "client_id": "test-client", "status": 200' \
    "its own client: the code exchange authenticates with the account's secret"
through 200 "start for c naming another client" POST "/v1/accounts/$C/oauth/start" "$KO" \
    -H "$JSON" --data-binary "{$CLIENT}"
authorize "$(api_json 'j["authorize_url"]')"
callback 200 "callback for c with the other client" "$CB"
like "$(last_code_grant)" '"client_auth": "none", "client_id": "public-client", "status": 200' \
    "another client: the account's secret is not sent"
through 200 "start for c with the other client, now its own" POST "/v1/accounts/$C/oauth/start" "$KO" \
    -H "$JSON" --data-binary "{\"auth_url\":\"$IDP/authorize\"}"
authorize "$(api_json 'j["authorize_url"]')"
callback 200 "callback for c again" "$CB"
like "$(last_code_grant)" '"client_auth": "none", "client_id": "public-client", "status": 200' \
    "the old secret was dropped with the client it belonged to"

# ---- [api] public_url: the redirect URI browsers come back to (here:
# prism, so the provider's redirect itself is checked against the spec)
d_stop_at_exit
printf 'public_url = %s/\n' "$PRISM_URL" >> "$MXD/mxsync.conf"
api_daemon_start || bail_out "mxsyncd with public_url did not answer /v1/health"
start 200 "start with [api] public_url set" "$KO" "{$CLIENT}"
AU=$(api_json 'j["authorize_url"]')
like "$AU" "&redirect_uri=http%3A%2F%2F127.0.0.1%3A${PRISM_URL##*:}%2Fv1%2Foauth%2Fcallback&" \
    "redirect_uri: public_url (its trailing slash dropped) + /v1/oauth/callback"
_loc=$(curl -s -o /dev/null -w '%{redirect_url}' --max-time 10 "$AU")
like "$_loc" "^$PRISM_URL/v1/oauth/callback\\?code=" "the IdP sends the browser to public_url"
callback 200 "callback at public_url" "$_loc"
d_alive; ok $? "mxsyncd still running"
done_testing
