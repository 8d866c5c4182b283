#!/bin/sh
# The HTTP API against its contract, doc/openapi.yaml, with the two npm
# tools scripts/npm-tools.sh installs (tests/contract): `redocly lint`
# passes; the routes of the spec and of the router (`mxsyncd --api-routes`)
# are the same set; every route of the spec answers through `prism proxy
# --errors` (which checks each request and each answer against the spec and
# answers an error of its own on a violation), success and error answers
# alike (404, 401, 429, and 410 once retention pruned the feed: about a
# minute after a restart).  Missing tools are a failure naming the setup command, never a
# skip.  The daemon's behaviour (permissions, hostile input, long-poll,
# SSE, pagination) is t-api.sh.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
if ! api_tools_check 2>"${TMPDIR:-/tmp}/t-api-contract.$$"; then
    diag "$(cat "${TMPDIR:-/tmp}/t-api-contract.$$")"
    rm -f "${TMPDIR:-/tmp}/t-api-contract.$$"
    fail "the contract tools are installed (run scripts/npm-tools.sh)"
    done_testing
fi
rm -f "${TMPDIR:-/tmp}/t-api-contract.$$"
pass "the contract tools are installed"
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true NO_COLOR=1

mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log

# ---- 1. the spec lints clean
run_ok "redocly lint doc/openapi.yaml" "$MX_CONTRACT_TOOLS/.bin/redocly" lint "$API_SPEC"
[ "$MX_RC" = 0 ] || diag "$(printf '%s\n' "$MX_OUT" | tail -n 40)"

# ---- 2. spec routes == router routes
# "METHOD /path" lines of the spec (every HTTP method of every path)
spec_routes() {
    "$MX_PY" -c '
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
for p, ops in (d.get("paths") or {}).items():
    for m in ops:
        if m in ("get","put","post","delete","patch","head","options","trace"):
            print(m.upper(), p)' "$API_SPEC" | LC_ALL=C sort
}
SPEC=$(spec_routes)
ok $? "the spec's paths parse"
run_ok "mxsyncd --api-routes" "$MXSYNCD" --api-routes
ROUTER=$(printf '%s\n' "$MX_OUT" | grep -E '^[A-Z]+ /' | LC_ALL=C sort)
isnt "$ROUTER" "" "the router has routes"
missing=$(printf '%s\n' "$ROUTER" | LC_ALL=C comm -23 - "$(printf '%s\n' "$SPEC" > "$T/spec.lst"; echo "$T/spec.lst")")
is "$missing" "" "every route of the router is in the spec"
absent=$(printf '%s\n' "$SPEC" | LC_ALL=C comm -23 - "$(printf '%s\n' "$ROUTER" > "$T/router.lst"; echo "$T/router.lst")")
is "$absent" "" "every route of the spec is in the router"

# ---- 3. the proxy does validate: an upstream answering what the spec does
# not allow gets prism's own error
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
tool_start "$T/bad" api_check.py badserver || bail_out "api_check.py badserver"
api_prism_start "$T/prism-bad" "http://127.0.0.1:$TOOL_PORT" || bail_out "prism proxy (bad upstream) did not start"
api_req GET "$PRISM_URL/v1/version"
is "$API_STATUS" 500 "prism --errors: an answer against the spec becomes a 500"
like "$(api_body)" 'prism/errors#VIOLATIONS' "prism --errors: the 500 names the violations"
isnt "$(api_header sl-violations)" "" "prism --errors: sl-violations header set"
api_prism_stop "$T/prism-bad"; tool_stop "$T/bad" >/dev/null

# ---- the daemon: Dovecot, one account with mail, [api] on a free port
D=$T/dc
dc_setup "$D" alice@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed contract 12 "$T/gen" >/dev/null ||
    bail_out "gen-mail.py"
is "$(dc_deliver "$D" alice@example.test "$T/gen" 2>>"$T/deliver.err")" 12 "12 messages delivered"
run_ok "account a (alice's mailbox, owner alice)" mx_add a "$D" alice@example.test imaps --owner alice
A=$(mx account list --json | "$MX_PY" -c '
import json,sys; print([a["id"] for a in json.load(sys.stdin) if a["name"]=="a"][0])')
# accounts the write samples change (y) and remove (z); c is created by
# the POST /v1/accounts sample
mx_add y "$D" alice@example.test imaps >/dev/null || bail_out "account y"
mx_add z "$D" alice@example.test imaps >/dev/null || bail_out "account z"
acct_id() { mx account list --json | "$MX_PY" -c 'import json,sys; print([a["id"] for a in json.load(sys.stdin) if a["name"]==sys.argv[1]][0])' "$1"; }
Y=$(acct_id y) Z=$(acct_id z)
ACCT_C=$(printf '{"name":"c","url":"imaps://alice@example.test@127.0.0.1:%s","password":"%s","ca_file":"%s"}' \
    "$DC_IMAPS_PORT" "$(dc_password "$D" alice@example.test)" "$DC_CA")
printf '[daemon]\nworkers = 2\n' > "$MXD/mxsync.conf"
api_conf || bail_out "api_conf"
api_token admin --admin >/dev/null || bail_out "token create --admin"
ADM=$API_TOKEN
api_token alice >/dev/null || bail_out "token create alice"
ALICE=$API_TOKEN
api_daemon_start || bail_out "mxsyncd with [api] did not answer /v1/health"
pass "mxsyncd answers /v1/health on $API_URL"

# ---- 4. from here on every request goes through prism --errors (but the
# event stream's, see below)
api_prism_start "$T/prism" || bail_out "prism proxy did not start"
pass "prism proxy on $PRISM_URL validates against doc/openapi.yaml"
API_BASE=$PRISM_URL
i=0; n=0
while [ $i -lt 300 ]; do
    api_get "/v1/messages?account=$A&limit=100" "$ADM"
    n=$(api_json 'len(j["messages"])' 2>/dev/null)
    [ "$n" = 12 ] && break
    sleep 0.1; i=$((i + 1))
done
is "$n" 12 "the account's 12 messages are listed (synced)"
MSG=$(api_json 'j["messages"][0]["id"]')
MSG_MV=$(api_json 'j["messages"][1]["id"]') MSG_DEL=$(api_json 'j["messages"][2]["id"]')
THREAD=$(api_json 'j["messages"][0]["thread"]')

# every route of the spec answers through prism --errors
# through PATH TOKEN WANT_STATUS DESC [CURL ARGS...]: one request through
# prism; the status is WANT_STATUS and prism saw no violation
through() {
    vp=$1 vk=$2 vw=$3 vd=$4; shift 4
    api_get "$vp" "$vk" "$@"
    vv=$(api_header sl-violations)
    if [ "$API_STATUS" = "$vw" ] && [ -z "$vv" ]; then
        pass "$vd: $vw, valid against the spec"
    else
        fail "$vd: $vw, valid against the spec"
        diag "GET $vp: status $API_STATUS (want $vw)"
        [ -n "$vv" ] && diag "sl-violations: $vv"
        diag "body: $(head -c 2000 "$API_BODYF")"
    fi
}
# through_write DESC METHOD PATH WANT_STATUS [JSON BODY...]: a write
# request (admin token) through prism, checked as through does (curl's
# last -X wins)
through_write() {
    vd=$1 vm=$2 vp=$3 vw=$4; shift 4
    if [ $# -gt 0 ]; then
        through "$vp" "$ADM" "$vw" "$vd" -X "$vm" -H 'Content-Type: application/json' --data-binary "$*"
    else
        through "$vp" "$ADM" "$vw" "$vd" -X "$vm"
    fi
}
# a sample request of each route of the spec (a route without one fails:
# add it here when adding the route)
sample() {
    case "$1" in
    "GET /v1/version") echo "/v1/version" ;;
    "GET /v1/health") echo "/v1/health" ;;
    "GET /v1/metrics") echo "/v1/metrics" ;;
    "GET /v1/accounts") echo "/v1/accounts" ;;
    "GET /v1/accounts/{id}") echo "/v1/accounts/$A" ;;
    "GET /v1/accounts/{id}/state") echo "/v1/accounts/$A/state" ;;
    "GET /v1/accounts/{id}/folders") echo "/v1/accounts/$A/folders" ;;
    "GET /v1/messages") echo "/v1/messages?account=$A&limit=5" ;;
    "GET /v1/messages/{id}") echo "/v1/messages/$MSG" ;;
    "GET /v1/messages/{id}/raw") echo "/v1/messages/$MSG/raw" ;;
    "GET /v1/events") echo "/v1/events?limit=10" ;;
    "GET /v1/events/stream") echo STREAM ;;
    "GET /v1/threads/{id}") echo "/v1/threads/$THREAD" ;;
    "GET /v1/messages/{id}/parts/{part}") echo "/v1/messages/$MSG/parts/1" ;;
    # write routes: "METHOD PATH STATUS [JSON BODY]" (through_write)
    "POST /v1/accounts") echo "POST /v1/accounts 201 $ACCT_C" ;;
    "PATCH /v1/accounts/{id}") echo "PATCH /v1/accounts/$Y 200 {\"display_name\":\"Y\",\"daily_limit\":5}" ;;
    "DELETE /v1/accounts/{id}") echo "DELETE /v1/accounts/$Z 204" ;;
    "POST /v1/accounts/{id}/disable") echo "POST /v1/accounts/$Y/disable 200" ;;
    "POST /v1/accounts/{id}/enable") echo "POST /v1/accounts/$Y/enable 200" ;;
    "POST /v1/accounts/{id}/reconnect") echo "POST /v1/accounts/$Y/reconnect 202" ;;
    "POST /v1/accounts/{id}/sync") echo "POST /v1/accounts/$Y/sync 202" ;;
    "GET /v1/accounts/{id}/permissions") echo "/v1/accounts/$Y/permissions" ;;
    "PUT /v1/accounts/{id}/permissions") echo "PUT /v1/accounts/$Y/permissions 200 {\"owner\":\"alice\",\"access\":\"all\"}" ;;
    # send and outbox: their requests need bodies and queued mail; each
    # goes through prism in t-api-send.sh
    "GET /v1/outbox") echo "/v1/outbox?limit=5" ;;
    "POST /v1/send"|"GET /v1/outbox/{id}"|"POST /v1/outbox/{id}/retry"|\
    "POST /v1/outbox/{id}/cancel") echo "SEE t-api-send.sh" ;;
    "POST /v1/accounts/{id}/oauth/start"|"GET /v1/oauth/callback") echo OAUTH ;;
    "GET /v1/contacts") echo "/v1/contacts?limit=5" ;;
    "GET /v1/contacts/{id}") echo "/v1/contacts/c-contract" ;;
    "GET /v1/contacts/{id}/timeline") echo "/v1/contacts/c-contract/timeline" ;;
    "PUT /v1/contacts/{id}"|"DELETE /v1/contacts/{id}"|"POST /v1/crm/relink") echo WRITE ;;
    # webhooks: a disabled endpoint (no delivery) to GET by id; the
    # writes through write_sample (t-api-webhooks.sh has their behaviour)
    "GET /v1/webhooks") echo "/v1/webhooks" ;;
    "GET /v1/webhooks/{id}") echo "/v1/webhooks/$(new_webhook)" ;;
    "POST /v1/webhooks"|"PATCH /v1/webhooks/{id}"|"DELETE /v1/webhooks/{id}") echo WRITE ;;
    # a write route's sample: PATH STATUS [JSON BODY]
    "PATCH /v1/messages/{id}") echo "/v1/messages/$MSG 200 {\"seen\":true,\"flagged\":true}" ;;
    "POST /v1/messages/{id}/move") echo "/v1/messages/$MSG_MV/move 200 {\"folder\":\"Archive\"}" ;;
    "DELETE /v1/messages/{id}") echo "/v1/messages/$MSG_DEL 204" ;;
    *) return 1 ;;
    esac
}
# the browser OAuth flow (t-api-oauth.sh has its behaviour): account o
# (alice's mailbox again) connected through prism against the fake IdP,
# whose tokens Dovecot accepts
idp_start "$T/idp" "$D" || bail_out "fake_idp did not start"
run_ok "account o (for the OAuth flow)" mx_add o "$D" alice@example.test imaps --owner alice
OA=$(mx account list --json | "$MX_PY" -c '
import json,sys; print([a["id"] for a in json.load(sys.stdin) if a["name"]=="o"][0])')
OAUTH_BODY="{\"auth_url\":\"http://127.0.0.1:$IDP_PORT/authorize\",\"token_url\":\"http://127.0.0.1:$IDP_PORT/token\",\"client_id\":\"public-client\"}"
oauth_sample() { # "METHOD PATH": its request through prism, 200 and no violation
    case "$1" in
    POST*) api_req POST "$PRISM_URL/v1/accounts/$OA/oauth/start" "$ALICE" \
               -H 'Content-Type: application/json' --data-binary "$OAUTH_BODY" ;;
    GET*) api_req POST "$API_URL/v1/accounts/$OA/oauth/start" "$ALICE" \
              -H 'Content-Type: application/json' --data-binary "$OAUTH_BODY"
          _ol=$(curl -s -o /dev/null -w '%{redirect_url}' --max-time 10 "$(api_json 'j["authorize_url"]')")
          api_req GET "$PRISM_URL${_ol#"$API_URL"}" - ;;
    esac
    if [ "$API_STATUS" = 200 ] && [ -z "$(api_header sl-violations)" ]; then
        pass "$1: 200, valid against the spec"
    else
        fail "$1: 200, valid against the spec"
        diag "status $API_STATUS; sl-violations: $(api_header sl-violations)"
        diag "body: $(head -c 2000 "$API_BODYF")"
    fi
}
# the write routes of the contacts: one request each through prism, the
# status wanted and no violation
# a disabled webhook endpoint (nothing is delivered): its id
new_webhook() {
    curl -s -H "Authorization: Bearer $ADM" -H 'Content-Type: application/json' \
        -d '{"url":"http://127.0.0.1:9/","enabled":false}' "$API_URL/v1/webhooks" |
        "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
write_sample() { # "METHOD PATH"
    case "$1" in
    "POST /v1/webhooks") vw=201
        api_req POST "$PRISM_URL/v1/webhooks" "$ADM" -H 'Content-Type: application/json' \
            --data-binary '{"url":"http://127.0.0.1:9/","enabled":false,"events":["message.new"]}' ;;
    "PATCH /v1/webhooks/{id}") vw=200
        api_req PATCH "$PRISM_URL/v1/webhooks/$(new_webhook)" "$ADM" -H 'Content-Type: application/json' \
            --data-binary '{"events":null,"enabled":false}' ;;
    "DELETE /v1/webhooks/{id}") vw=204
        api_req DELETE "$PRISM_URL/v1/webhooks/$(new_webhook)" "$ADM" ;;
    "PUT /v1/contacts/{id}") vw=201
        api_req PUT "$PRISM_URL/v1/contacts/c-put" "$ADM" -H 'Content-Type: application/json' \
            --data-binary '{"email":"put@client.example","emails":["p2@client.example"],"categories":["lead"]}' ;;
    "DELETE /v1/contacts/{id}") vw=204
        api_req DELETE "$PRISM_URL/v1/contacts/c-del?hard=true" "$ADM" ;;
    "POST /v1/crm/relink") vw=200
        api_req POST "$PRISM_URL/v1/crm/relink" "$ADM" -H 'Content-Type: application/json' \
            --data-binary '{"history":true}' ;;
    esac
    if [ "$API_STATUS" = "$vw" ] && [ -z "$(api_header sl-violations)" ]; then
        pass "$1: $vw, valid against the spec"
    else
        fail "$1: $vw, valid against the spec"
        diag "status $API_STATUS; sl-violations: $(api_header sl-violations)"
        diag "body: $(head -c 2000 "$API_BODYF")"
    fi
}
api_req PUT "$API_URL/v1/contacts/c-contract" "$ADM" -H 'Content-Type: application/json' \
    --data-binary '{"email":"c@client.example"}'
is "$API_STATUS" 201 "a contact for the samples"
api_req PUT "$API_URL/v1/contacts/c-del" "$ADM" -H 'Content-Type: application/json' \
    --data-binary '{"email":"del@client.example"}'
is "$API_STATUS" 201 "a contact for the DELETE sample"
printf '%s\n' "$SPEC" > "$T/spec.lst"
while read -r m p; do
    s=$(sample "$m $p") || { fail "$m $p has a sample request in t-api-contract.sh"; continue; }
    case $s in "SEE "*) continue ;; esac
    [ "$s" = OAUTH ] && { oauth_sample "$m $p"; continue; }
    [ "$s" = WRITE ] && { write_sample "$m $p"; continue; }
    if [ "$s" = STREAM ]; then
        # an event stream never ends, and prism forwards an answer only
        # once it is complete: checked directly (status, media type, the
        # first event's framing)
        API_MAXTIME=3 api_req GET "$API_URL/v1/events/stream?after=0" "$ADM" -N
        is "$API_STATUS" 200 "$m $p (direct): 200"
        like "$(api_header content-type)" '^text/event-stream' "$m $p: text/event-stream"
        like "$(api_body)" '^id: [0-9]+$' "$m $p: events carry id: lines"
        continue
    fi
    case $s in
    [A-Z]*" /"*) through_write "$m $p" $s; continue ;;
    esac
    if [ "$m" = GET ]; then
        through "$s" "$ADM" 200 "$m $p"
        continue
    fi
    # "PATH STATUS [JSON BODY]" for a write route of the messages
    vs=${s%% *} vr=${s#* }; vw=${vr%% *} vb=${vr#"$vw"}; vb=${vb# }
    if [ -n "$vb" ]; then
        through "$vs" "$ADM" "$vw" "$m $p" -X "$m" -H 'Content-Type: application/json' --data "$vb"
    else
        through "$vs" "$ADM" "$vw" "$m $p" -X "$m"
    fi
done < "$T/spec.lst"

# ---- 5. error answers are in the spec too
through "/v1/accounts/999999" "$ADM" 404 "unknown account"
is "$(api_code)" not_found "unknown account: not_found"
through "/v1/messages/ffffffffffffff00" "$ADM" 404 "unknown message"
is "$(api_code)" not_found "unknown message: not_found"
through "/v1/threads/4000000000" "$ADM" 404 "unknown thread"
is "$(api_code)" not_found "unknown thread: not_found"
through "/v1/messages/$MSG/parts/99" "$ADM" 404 "unknown part"
is "$(api_code)" not_found "unknown part: not_found"
through "/v1/accounts" "mxs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" 401 "unknown token"
is "$(api_code)" unauthorized "unknown token: unauthorized"
like "$(api_header www-authenticate)" '^Bearer' "unknown token: WWW-Authenticate: Bearer"
through "/v1/metrics" "$ALICE" 403 "metrics with a user token"
is "$(api_code)" forbidden "metrics with a user token: forbidden"
through "/v1/messages?account=$A&limit=5" "$ALICE" 200 "owner's token"
through "/v1/messages?account=$A&limit=5&unread=true&subject=e" "$ALICE" 200 "filters"
through "/v1/events?after=0&limit=1" "$ALICE" 200 "events after 0"
# pages through prism: each page's shape is checked
cur= pages=0 seen=0
while [ $pages -lt 10 ]; do
    q="/v1/messages?account=$A&limit=5"
    [ -n "$cur" ] && q="$q&cursor=$cur"
    api_get "$q" "$ALICE"
    [ "$API_STATUS" = 200 ] && [ -z "$(api_header sl-violations)" ] || break
    seen=$((seen + $(api_json 'len(j["messages"])')))
    pages=$((pages + 1))
    cur=$(api_json 'j["next_cursor"] or ""')
    [ -n "$cur" ] || break
done
is "$seen/$pages" "11/3" "3 pages of 5 through prism, 11 messages (the DELETE sample took one)"

d_alive; ok $? "mxsyncd still running"

# ---- 6. 429 rate_limited with Retry-After, as the spec has it: the daemon
# again with rate_limit = 1 (burst 2) on the same port, a fresh token,
# 8 requests in a row through prism
d_stop_at_exit
sed -i '/^rate_limit/d' "$MXD/mxsync.conf"
printf 'rate_limit = 1\n\n[events]\nretention_count = 2\n' >> "$MXD/mxsync.conf"
api_token ratelimited >/dev/null || bail_out "token create ratelimited"
api_daemon_start || bail_out "mxsyncd (rate_limit = 1) did not answer /v1/health"
n429=0 nviol=0 ra=
for i in 1 2 3 4 5 6 7 8; do
    api_get /v1/accounts "$API_TOKEN"
    [ -n "$(api_header sl-violations)" ] && { nviol=$((nviol + 1)); diag "sl-violations: $(api_header sl-violations)"; }
    if [ "$API_STATUS" = 429 ]; then
        n429=$((n429 + 1)); ra=$(api_header retry-after); rc=$(api_code)
    fi
done
isnt "$n429" 0 "rate_limit = 1: $n429 of 8 requests in a row are 429"
is "$nviol" 0 "the 429 answers are valid against the spec"
is "$rc" rate_limited "429: rate_limited"
like "$ra" '^[1-9][0-9]*$' "429: Retry-After: $ra"
api_get /v1/accounts "$ALICE"; is "$API_STATUS" 200 "another token is not limited"

# ---- 7. 410 cursor_expired once retention has pruned the feed: the
# restarted daemon keeps 2 events ([events] retention_count = 2) and prunes
# a minute after its start
i=0
while [ $i -lt 60 ]; do
    api_get "/v1/events?after=1" "$ALICE"
    [ "$API_STATUS" = 200 ] || break
    sleep 2; i=$((i + 1))
done
is "$API_STATUS $(api_code)" "410 cursor_expired" "a cursor older than the retained feed: 410 cursor_expired"
is "$(api_header sl-violations)" "" "the 410 answer is valid against the spec"
like "$(cat "$DLOG")" "event retention: [0-9]+ events pruned" "the daemon pruned the feed"
sleep 2 # rate_limit = 1: a token's bucket refills
API_MAXTIME=5 api_req GET "$API_URL/v1/events/stream?after=1" "$ALICE" -N
is "$API_STATUS $(api_code)" "410 cursor_expired" "the stream (direct) too: 410 before it starts"
sleep 2
api_get "/v1/events" "$ALICE"
is "$API_STATUS" 200 "no cursor: from the oldest retained event, 200"

# ---- the daemon is still there, and nothing is left running (at_exit)
d_alive; ok $? "mxsyncd still running"
done_testing
