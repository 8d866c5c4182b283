#!/bin/sh
# mxsyncd's HTTP API end to end (real daemon, real Dovecot, requests straight
# to the daemon; t-api-contract.sh sends its requests through the validating
# proxy, which refuses hostile requests itself): bearer auth (missing,
# unknown, revoked, expired: 401); the permission matrix owner / selected /
# other user / admin over accounts, messages and events (an account a user
# may not use is 404 and invisible); hostile input (ids with "..", bad
# numbers, huge limit, unknown and invalid UTF-8 parameters, a 100 MB body,
# a slow client, 1,000 connections: clear 4xx, the daemon unaffected);
# long-poll and SSE deliver a new message after an LMTP delivery (latency
# measured and reported); SSE resume with Last-Event-ID repeats and loses
# nothing; pagination visits every message exactly once while mail arrives;
# listen = unix:PATH and HTTPS (tls_cert/tls_key).
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
command -v mdb_load >/dev/null || skip_all "mdb_load not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log
D=$T/dc
CHK="$MX_TOOLS/api_check.py"
chk() { "$MX_PY" "$CHK" "$@"; }
dc_setup "$D" alice@example.test bob@example.test carol@example.test >/dev/null ||
    bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"

# mail: 4 messages for alice, 3 for bob, 2 for carol; more later
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed t-api 60 "$T/gen" >/dev/null || bail_out "gen-mail.py"
ls "$T/gen" > "$T/gen.lst"
gen() { sed -n "$1,$2p" "$T/gen.lst" | sed "s|^|$T/gen/|"; }
is "$(dc_deliver "$D" alice@example.test $(gen 1 4) 2>>"$T/deliver.err")" 4 "4 messages for alice"
is "$(dc_deliver "$D" bob@example.test $(gen 5 7) 2>>"$T/deliver.err")" 3 "3 messages for bob"
is "$(dc_deliver "$D" carol@example.test $(gen 8 9) 2>>"$T/deliver.err")" 2 "2 messages for carol"

# accounts: o (owner u1), s (owner u2, selected: u3), all (owner u2, every user)
run_ok "account o: access owner, owner u1" mx_add o "$D" alice@example.test imaps --owner u1 --access owner
run_ok "account s: access selected, owner u2, allow u3" mx_add s "$D" bob@example.test imaps \
    --owner u2 --access selected --allow u3
run_ok "account all: access all, owner u2" mx_add all "$D" carol@example.test imaps --owner u2 --access all
acct_id() {
    mx account list --json | "$MX_PY" -c '
import json,sys; print([a["id"] for a in json.load(sys.stdin) if a["name"]==sys.argv[1]][0])' "$1"
}
O=$(acct_id o); S=$(acct_id s); L=$(acct_id all)

# tokens: u1 u2 u3 u4 (no account of its own), admin, one revoked, one expired
api_token u1 >/dev/null || bail_out "token u1"; K1=$API_TOKEN
api_token u2 >/dev/null || bail_out "token u2"; K2=$API_TOKEN
api_token u3 >/dev/null || bail_out "token u3"; K3=$API_TOKEN
api_token u4 >/dev/null || bail_out "token u4"; K4=$API_TOKEN
api_token admin --admin >/dev/null || bail_out "token admin"; KA=$API_TOKEN
api_token u1 --name revoked >/dev/null || bail_out "token revoked"; KR=$API_TOKEN; KR_ID=$API_TOKEN_ID
api_token u1 --name expired --expires 1 >/dev/null || bail_out "token expired"; KX=$API_TOKEN; KX_ID=$API_TOKEN_ID

cat > "$MXD/mxsync.conf" <<EOF
[daemon]
workers = 2
poll_interval = 5
EOF
api_conf "max_body=1048576" "timeout=3" "max_connections=1100" "rate_limit=100000" || bail_out "api_conf"
api_daemon_start || bail_out "mxsyncd with [api] did not answer /v1/health"
pass "mxsyncd answers /v1/health on $API_URL"
like "$(cat "$DLOG")" "127\.0\.0\.1:$API_PORT" "mxsyncd logs the address it listens on"

# the messages of account $1 (ids, one a line), as the admin sees them
ids_of() {
    api_get "/v1/messages?account=$1&limit=500" "$KA"
    api_json '"\n".join(m["id"] for m in j["messages"])'
}
wait_count() { # ACCOUNT N: waits <= 30 s until the API lists N messages of it
    vw=0
    while [ $vw -lt 300 ]; do
        [ "$(ids_of "$1" | grep -c .)" = "$2" ] && return 0
        sleep 0.1; vw=$((vw + 1))
    done
    return 1
}
wait_count "$O" 4; ok $? "account o: 4 messages synced and listed"
wait_count "$S" 3; ok $? "account s: 3 messages synced and listed"
wait_count "$L" 2; ok $? "account all: 2 messages synced and listed"
MO=$(ids_of "$O" | head -n 1); MS=$(ids_of "$S" | head -n 1); ML=$(ids_of "$L" | head -n 1)

# ======== 1. auth
api_get /v1/version; is "$API_STATUS" 200 "version: no token needed"
like "$(api_json 'j["api"]')" '^v1$' "version: api v1"
api_get /v1/health; is "$API_STATUS" 200 "health: no token needed"
is "$(api_json 'j["status"]')" ok "health: status ok"
api_get /v1/accounts; is "$API_STATUS" 401 "no token: 401"
is "$(api_code)" unauthorized "no token: unauthorized"
like "$(api_header www-authenticate)" '^Bearer' "no token: WWW-Authenticate: Bearer"
api_get /v1/accounts "mxs_notavalidtoken"; is "$API_STATUS" 401 "malformed token: 401"
api_get /v1/accounts "mxs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"; is "$API_STATUS" 401 "unknown token: 401"
api_req GET "$API_URL/v1/accounts" - -H "Authorization: Basic dTE6cHc="
is "$API_STATUS" 401 "Basic auth: 401"
api_get /v1/accounts "$KR"; is "$API_STATUS" 200 "token to revoke works before"
run_ok "mxsync token revoke $KR_ID" mx token revoke "$KR_ID"
api_get /v1/accounts "$KR"; is "$API_STATUS" 401 "revoked token: 401 at once"
is "$(api_code)" unauthorized "revoked token: unauthorized"
api_get /v1/accounts "$KX"; is "$API_STATUS" 200 "token valid for a day works"
run_ok "make token $KX_ID expired (store record rewritten)" chk expire-token --dir "$MXD" --id "$KX_ID"
api_get /v1/accounts "$KX"; is "$API_STATUS" 401 "expired token: 401"
is "$(api_code)" unauthorized "expired token: unauthorized"
run_ok "token list" mx token list
unlike "$MX_OUT" "mxs_" "token list never shows a token"

# ======== 1b. GET /v1/metrics (Prometheus text, admin only)
cat > "$T/prom.py" <<'EOF'
# prom.py FILE check | FILE get NAME [LABEL=VALUE...] | FILE hist
# check: every non-comment line is NAME{LABELS} VALUE ("ok" or the bad line)
import re, sys
NAME = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
LBL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
LINE = re.compile(r'^(%s)(?:\{((?:%s)(?:,%s)*)?\})? (\S+)$' % (NAME, LBL, LBL))
series = []
text = open(sys.argv[1], encoding="utf-8").read()
if not text.endswith("\n"):
    print("no final line feed"); sys.exit(1)
for ln in text.split("\n")[:-1]:
    if ln.startswith("#"):
        continue
    m = LINE.match(ln)
    if not m:
        print("bad line: %r" % ln); sys.exit(1)
    float(m.group(3))
    labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
    series.append((m.group(1), labels, float(m.group(3))))
op = sys.argv[2]
if op == "check":
    print("ok" if series else "no samples")
elif op == "get":  # the sum over the series that have these labels (0 if none)
    want = dict(a.split("=", 1) for a in sys.argv[4:])
    print("%g" % sum(v for n, l, v in series if n == sys.argv[3] and
                     all(l.get(k) == x for k, x in want.items())))
elif op == "hist":  # per route: cumulative buckets, +Inf == _count
    b = {}
    for n, l, v in series:
        if n == "mxsync_api_request_duration_seconds_bucket":
            b.setdefault(l["route"], []).append((float(l["le"]), v))
    cnt = {l["route"]: v for n, l, v in series if n == "mxsync_api_request_duration_seconds_count"}
    bad = [r for r, bs in b.items() if [v for _, v in sorted(bs)] != sorted(v for _, v in bs)
           or dict(bs).get(float("inf")) != cnt.get(r) or len(bs) != 9]
    print("routes=%d bad=%s" % (len(b), bad))
EOF
scrape() { api_get /v1/metrics "$KA" && cp "$API_BODYF" "$T/metrics.txt"; }
prom() { "$MX_PY" "$T/prom.py" "$T/metrics.txt" "$@"; }
api_get /v1/metrics; is "$API_STATUS" 401 "metrics: no token: 401"
api_get /v1/metrics "$K1"; is "$API_STATUS" 403 "metrics: a user token: 403"
is "$(api_code)" forbidden "metrics: a user token: forbidden"
scrape; is "$API_STATUS" 200 "metrics: the admin token: 200"
like "$(api_header content-type)" '^text/plain; version=0\.0\.4' "metrics: text/plain; version=0.0.4"
is "$(prom check)" ok "metrics: every sample line is NAME{LABELS} VALUE"
like "$(cat "$T/metrics.txt")" "# TYPE mxsync_api_request_duration_seconds histogram" \
    "metrics: HELP/TYPE lines"
is "$(prom get mxsync_accounts)" 3 "metrics: the state gauges add up to the 3 accounts"
# the gauge of account o's state counts the accounts in that state (read
# again until no state changed during the scrape)
states() { for a in "$O" "$S" "$L"; do api_get "/v1/accounts/$a/state" "$KA"; api_json 'j["state"]'; done; }
n=0; while [ $n -lt 20 ]; do
    st0=$(states); scrape; st1=$(states)
    [ "$st0" = "$st1" ] && break
    n=$((n + 1))
done
ostate=$(printf '%s\n' "$st0" | head -n 1)
is "$(prom get mxsync_accounts "state=$ostate")" "$(printf '%s\n' "$st0" | grep -cx "$ostate")" \
    "metrics: mxsync_accounts{state=\"$ostate\"} (account o's state) counts the accounts in it"
is "$(prom get mxsync_account_messages account=o)" 4 "metrics: account o stores 4 messages"
like "$(prom get mxsync_events_written_total)" '^[1-9]' "metrics: events written"
v0=$(prom get mxsync_api_requests_total route=/v1/version code=2xx)
for n in 1 2 3; do api_get /v1/version; done
api_get "/v1/messages/$MO" "$KA"
scrape
is "$(prom get mxsync_api_requests_total route=/v1/version code=2xx)" "$((v0 + 3))" \
    "metrics: the /v1/version counter grew by exactly the 3 requests made"
is "$(prom get mxsync_api_requests_total route=/v1/metrics code=4xx)" 2 \
    "metrics: the 401 and the 403 of /v1/metrics counted as 4xx"
like "$(prom get mxsync_api_requests_total "route=/v1/messages/{id}")" '^[1-9]' \
    "metrics: a message request counted under its route template"
unlike "$(cat "$T/metrics.txt")" "$MO" "metrics: no raw path (message id) in a label"
like "$(prom hist)" '^routes=[1-9][0-9]* bad=\[\]$' \
    "metrics: latency buckets cumulative, 9 of them, +Inf == _count"

# ======== 2. permission matrix
# visible USER-TOKEN: the account ids the user's list shows, sorted
visible() {
    api_get /v1/accounts "$1"
    api_json '" ".join(str(i) for i in sorted(a["id"] for a in j["accounts"]))'
}
sorted_ids() { printf '%s\n' "$@" | sort -n | tr '\n' ' ' | sed 's/ $//'; }
is "$(visible "$K1")" "$(sorted_ids "$O" "$L")" "u1 (owner of o) lists o and all"
is "$(visible "$K2")" "$(sorted_ids "$S" "$L")" "u2 (owner of s) lists s and all"
is "$(visible "$K3")" "$(sorted_ids "$S" "$L")" "u3 (allowed on s) lists s and all"
is "$(visible "$K4")" "$L" "u4 (other) lists only all"
is "$(visible "$KA")" "$(sorted_ids "$O" "$S" "$L")" "admin lists every account"
# matrix USER TOKEN ACCOUNT MSG WANT(200|404)
matrix() {
    vr=
    for vp in "/v1/accounts/$3" "/v1/accounts/$3/state" "/v1/accounts/$3/folders" \
              "/v1/messages?account=$3" "/v1/messages/$4" "/v1/messages/$4/raw"; do
        api_get "$vp" "$2"
        if [ "$5" = 404 ] && [ "$vp" = "/v1/messages?account=$3" ]; then
            # the spec: an account the caller may not use lists nothing
            [ "$API_STATUS" = 200 ] && [ "$(api_json 'len(j["messages"])')" = 0 ] ||
                vr="$vr $vp=$API_STATUS:$(api_json 'len(j["messages"])')"
        elif [ "$5" = 404 ]; then
            [ "$API_STATUS" = 404 ] && [ "$(api_code)" = not_found ] || vr="$vr $vp=$API_STATUS"
        else
            [ "$API_STATUS" = 200 ] || vr="$vr $vp=$API_STATUS"
        fi
    done
    is "$vr" "" "$1 on account $3: $5 on every route"
}
matrix u1 "$K1" "$O" "$MO" 200; matrix u1 "$K1" "$S" "$MS" 404; matrix u1 "$K1" "$L" "$ML" 200
matrix u2 "$K2" "$O" "$MO" 404; matrix u2 "$K2" "$S" "$MS" 200; matrix u2 "$K2" "$L" "$ML" 200
matrix u3 "$K3" "$O" "$MO" 404; matrix u3 "$K3" "$S" "$MS" 200; matrix u3 "$K3" "$L" "$ML" 200
matrix u4 "$K4" "$O" "$MO" 404; matrix u4 "$K4" "$S" "$MS" 404; matrix u4 "$K4" "$L" "$ML" 200
matrix admin "$KA" "$O" "$MO" 200; matrix admin "$KA" "$S" "$MS" 200; matrix admin "$KA" "$L" "$ML" 200
# unfiltered lists and the event feed hold only usable accounts
accts_in() { # PATH TOKEN KEY: the distinct account ids in j[KEY]
    api_get "$1" "$2"
    api_json "' '.join(str(i) for i in sorted({x['account'] for x in j['$3'] if x.get('account')}))"
}
is "$(accts_in "/v1/messages?limit=500" "$K1" messages)" "$(sorted_ids "$O" "$L")" "u1: /v1/messages has o and all"
is "$(accts_in "/v1/messages?limit=500" "$K4" messages)" "$L" "u4: /v1/messages has only all"
is "$(accts_in "/v1/messages?limit=500" "$KA" messages)" "$(sorted_ids "$O" "$S" "$L")" "admin: /v1/messages has every account"
is "$(accts_in "/v1/events?limit=500" "$K1" events)" "$(sorted_ids "$O" "$L")" "u1: /v1/events has events of o and all only"
is "$(accts_in "/v1/events?limit=500" "$K3" events)" "$(sorted_ids "$S" "$L")" "u3: /v1/events has events of s and all only"
is "$(accts_in "/v1/events?limit=500" "$K4" events)" "$L" "u4: /v1/events has events of all only"
api_get "/v1/accounts/$O" "$K1"
# (password_file is the path of the file, not a secret)
is "$(api_json '[k for k in j if any(w in k.lower() for w in ("password", "secret", "token")) and not k.endswith("_file")]')" "[]" \
    "an account has no password, secret or token field"
unlike "$(api_body)" "$(dc_password "$D" alice@example.test)" "an account does not carry the password"

# ======== 2b. reading: one message, its raw bytes, folders, filters
api_get "/v1/messages/$MO" "$K1"
is "$API_STATUS" 200 "message $MO: 200"
is "$(api_json 'j["id"] + " " + str(j["account"])')" "$MO $O" "message: its id and account"
is "$(api_json '[l["folder_name"] for l in j["locations"]]')" '["INBOX"]' "message: located in INBOX"
FROM=$(api_json 'j["from"][0]["address"]'); SUBJ=$(api_json 'j["subject"]')
api_get "/v1/messages/$MO/raw" "$K1"
like "$(api_header content-type)" '^message/rfc822' "raw: message/rfc822"
is "$(sha256sum < "$API_BODYF" | cut -d' ' -f1)" "$(mx show "$MO" --raw | sha256sum | cut -d' ' -f1)" \
    "raw: the stored bytes (as mxsync show --raw)"
api_get "/v1/accounts/$O/folders" "$K1"
INBOX=$(api_json '[f["id"] for f in j["folders"] if f["name"] == "INBOX"][0]')
is "$(api_json '[(f["messages"], f["unread"]) for f in j["folders"] if f["name"] == "INBOX"][0]')" "[4, 4]" \
    "folders: INBOX has 4 messages, 4 unread"
# list_ids QUERY: the ids /v1/messages lists for u1, sorted, space separated
list_ids() {
    api_get "/v1/messages?$1" "$K1"
    api_json '" ".join(sorted(m["id"] for m in j["messages"]))'
}
ALL_O=$(ids_of "$O" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')
is "$(list_ids "folder=$INBOX")" "$ALL_O" "filter folder=INBOX: the 4 messages of o"
FROM_UC=$(printf '%s' "$FROM" | tr 'a-z' 'A-Z')
like " $(list_ids "account=$O&from=$FROM_UC") " " $MO " "filter from=$FROM_UC (case-insensitive) finds $MO"
api_get "/v1/messages?account=$O&from=$FROM_UC" "$K1"
is "$(api_json 'sorted({a["address"].lower() for m in j["messages"] for a in m["from"]})')" \
    "$(printf '["%s"]' "$(printf '%s' "$FROM" | tr 'A-Z' 'a-z')")" "filter from: only messages from $FROM"
SUBJ_ENC=$("$MX_PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1][:6]))' "$SUBJ")
like " $(list_ids "account=$O&subject=$SUBJ_ENC") " " $MO " "filter subject (a substring) finds $MO"
is "$(list_ids "account=$O&since=2099-01-01T00:00:00Z")" "" "filter since=2099: nothing"
is "$(list_ids "account=$O&until=2000-01-01T00:00:00Z")" "" "filter until=2000: nothing"
is "$(list_ids "account=$O&unread=true")" "$ALL_O" "filter unread=true: all 4"
run_ok "mxsync flag $MO --seen" mx flag "$MO" --seen
run_ok "mxsync flag $MO --flagged" mx flag "$MO" --flagged
is "$(list_ids "account=$O&unread=false")" "$MO" "filter unread=false: the one seen"
is "$(list_ids "account=$O&flagged=true")" "$MO" "filter flagged=true: the one flagged"
api_get "/v1/messages/$MO" "$K1"
is "$(api_json 'sorted(j["flags"])')" '["flagged", "seen"]' "message: flags seen, flagged"
api_get "/v1/accounts/$O/state" "$K1"
is "$(api_json 'j["messages"]')" 4 "state: 4 messages stored"
# last_success: set once the first sync job has ended (read again for a
# while: the messages are committed before the job reports its end)
i=0
while [ $i -lt 100 ]; do
    api_get "/v1/accounts/$O/state" "$K1"
    case $(api_json 'j["last_success"]') in 20*) break ;; esac
    sleep 0.1; i=$((i + 1))
done
diag "state of account o: $(api_body)"
like "$(api_json 'j["last_success"]')" '^20[0-9][0-9]-' "state: last_success is set once the account has synced"

# ======== 3. hostile input: clear 4xx, nothing served, the daemon unaffected
# bad400 DESC CODE PATH [CURL ARGS...]
bad400() {
    vd=$1 vc=$2 vp=$3; shift 3
    api_req GET "$API_URL$vp" "$KA" --path-as-is "$@"
    is "$API_STATUS $(api_code)" "400 $vc" "$vd: 400 $vc"
}
bad400 "account id .." invalid_id "/v1/accounts/.."
bad400 "account id %2e%2e" invalid_id "/v1/accounts/%2e%2e"
bad400 "account id 007 (one spelling per id)" invalid_id "/v1/accounts/007"
bad400 "account id 1abc" invalid_id "/v1/accounts/1abc"
bad400 "account id -1" invalid_id "/v1/accounts/-1"
bad400 "account id of 30 digits" invalid_id "/v1/accounts/123456789012345678901234567890"
bad400 "message id .." invalid_id "/v1/messages/.."
# an encoded "/" is a "/" once the path is decoded: not an id any more
for p in "/v1/accounts/..%2f..%2fetc" "/v1/messages/..%2F..%2Fetc%2Fpasswd"; do
    api_req GET "$API_URL$p" "$KA" --path-as-is
    like "$API_STATUS $(api_code)" '^(400 invalid_id|404 not_found)$' "$p: 400 invalid_id or 404 ($API_STATUS)"
done
bad400 "message id of 15 hex digits" invalid_id "/v1/messages/000000000000001"
bad400 "message id with a NUL" invalid_id "/v1/messages/00000000%0000000001"
api_req GET "$API_URL/v1/messages/../../../etc/passwd" "$KA" --path-as-is
like "$API_STATUS" '^4[0-9][0-9]$' "/v1/messages/../../../etc/passwd: 4xx ($API_STATUS)"
unlike "$(api_body)" "root:" "/etc/passwd not served"
bad400 "limit=100000" invalid_parameter "/v1/messages?limit=100000"
is "$(api_json 'j["error"]["details"]["parameter"]')" limit "limit=100000: details.parameter = limit"
bad400 "limit=0" invalid_parameter "/v1/messages?limit=0"
bad400 "limit=abc" invalid_parameter "/v1/messages?limit=abc"
bad400 "limit=18446744073709551617" invalid_parameter "/v1/messages?limit=18446744073709551617"
bad400 "unknown parameter" invalid_parameter "/v1/messages?colour=red"
is "$(api_json 'j["error"]["details"]["parameter"]')" colour "unknown parameter: details.parameter names it"
bad400 "unread=maybe" invalid_parameter "/v1/messages?unread=maybe"
bad400 "since=yesterday" invalid_parameter "/v1/messages?since=yesterday"
bad400 "account=abc" invalid_parameter "/v1/messages?account=abc"
bad400 "wait=61" invalid_parameter "/v1/events?wait=61"
api_req GET "$API_URL/v1/messages?subject=%ff%fe" "$KA"
like "$API_STATUS $(api_code)" '^400 (invalid_parameter|bad_request)$' "invalid UTF-8 in a parameter: 400 ($API_STATUS $(api_code))"
api_req GET "$API_URL/v1/events?after=garbage%00" "$KA"
like "$API_STATUS $(api_code)" '^400 (invalid_parameter|bad_request)$' "garbage cursor: 400 ($API_STATUS $(api_code))"
api_req GET "$API_URL/v1/nowhere" "$KA"
is "$API_STATUS $(api_code)" "404 not_found" "unknown route: 404 not_found"
api_req POST "$API_URL/v1/messages" "$KA" -H "Content-Type: application/json" --data-binary '{"x": '
is "$API_STATUS $(api_code)" "405 method_not_allowed" "POST with malformed JSON to a GET route: 405"
like "$(api_header allow)" 'GET' "405 names the allowed methods (Allow: $(api_header allow))"
api_req GET "$API_URL/v1/accounts/$O" "$KA" -H "Content-Type: application/json" --data-binary '{"name":"x"}' -X GET
is "$API_STATUS $(api_code)" "400 bad_request" "a body sent to a route that reads none: 400 bad_request"
api_req PUT "$API_URL/v1/accounts/$O" "$KA"
is "$API_STATUS" 405 "PUT an account (PATCH changes it): 405"
wait_count "$O" 4; ok $? "account o still has its 4 messages"
# 100 MB body: refused once max_body (1 MiB here) is passed, not read to the end
head -c 104857600 /dev/zero > "$T/big.bin"
t0=$(api_now_ms)
api_req POST "$API_URL/v1/messages" "$KA" -H "Content-Type: application/json" --data-binary "@$T/big.bin"
rm -f "$T/big.bin"
like "$API_STATUS $(api_code)" '^(413 payload_too_large|405 method_not_allowed)$' "100 MB body: 413 or 405 ($API_STATUS $(api_code))"
diag "100 MB body answered after $(($(api_now_ms) - t0)) ms"
api_req GET "$API_URL/v1/version"; is "$API_STATUS" 200 "daemon answers after the 100 MB body"
# a slow client (a header byte a second) is cut off by [api] timeout = 3
r=$(chk slow --port "$API_PORT" --interval 1 --max 30)
diag "slow client: $r"
like "$r" '"closed_after_s": [0-9]' "slow client: connection closed by the server within 30 s"
# 1,000 connections open at once; a new request is still answered
r=$(chk conns --port "$API_PORT" --n 1000 --hold 1)
diag "1000 connections: $r"
like "$r" '"probe_status": (200|503)' "1000 open connections: a new request gets an HTTP answer"
api_get /v1/version; is "$API_STATUS" 200 "after the 1000 connections: 200"
# 1,000 long-polls at once (each a connection and a thread in the daemon,
# none answered before its wait of 3 s): every one is answered 200
C0=$(api_get "/v1/events?limit=500" "$K4"; api_json 'j["next_cursor"]')
r=$(chk many --url "$API_URL/v1/events?after=$C0&wait=3" --token "$K4" --n 1000)
diag "1000 long-polls at once: $r"
is "$(printf '%s' "$r" | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)["statuses"])')" \
    "{'200': 1000}" "1000 concurrent long-polls: all 200"
d_alive; ok $? "mxsyncd survived the hostile input"

# ======== 4. long-poll: answered by a new message's event
last_cursor() { # TOKEN: next_cursor after the whole retained feed
    vc=
    while :; do
        api_get "/v1/events?limit=500${vc:+&after=$vc}" "$1"
        vn=$(api_json 'j["next_cursor"] or ""')
        [ "$(api_json 'len(j["events"])')" = 0 ] && break
        [ -n "$vn" ] || break
        vc=$vn
    done
    printf '%s\n' "${vn:-$vc}"
}
C=$(last_cursor "$K1")
isnt "$C" "" "events: a cursor after the retained feed ($C)"
t0=$(api_now_ms)
api_get "/v1/events?after=$C&wait=1" "$K1"
is "$API_STATUS $(api_json 'len(j["events"])')" "200 0" "long-poll with nothing new: 200, no events, after the wait"
diag "wait=1 with nothing new answered after $(($(api_now_ms) - t0)) ms"
rm -f "$T/lp.json"
# (an answer with other events only, e.g. an account.state, polls again)
"$MX_PY" "$CHK" longpoll --url "$API_URL/v1/events?after=$C&wait=30" --token "$K1" \
    --until-type message.new --out "$T/lp.json" &
LP=$!
at_exit "kill $LP 2>/dev/null"
sleep 1
[ -e "$T/lp.json" ]; ok $((!$?)) "long-poll waits while nothing happens"
t0=$(api_now_ms)
is "$(dc_deliver "$D" alice@example.test $(gen 10 10) 2>>"$T/deliver.err")" 1 "long-poll: 1 message delivered to alice"
wait "$LP"
lp=$("$MX_PY" -c '
import json,sys
r = json.load(open(sys.argv[1])); b = json.loads(r["body"])
ev = [e for e in b["events"] if e["type"] == "message.new" and e["account"] == int(sys.argv[2])]
print(r["status"], len(ev), r["t_ms"] - int(sys.argv[3]), r["polls"])' "$T/lp.json" "$O" "$t0")
set -- $lp
is "$1 $2" "200 1" "long-poll answered with the new message's message.new"
diag "long-poll latency delivery -> answer: ${3} ms (issue bound: 1000 ms; wait=30 s; polls: $4)"
[ "${3:-99999}" -lt 30000 ]; ok $? "long-poll woke before its wait ran out"

# ======== 5. SSE: a new message, then resume after a drop
C=$(last_cursor "$K1")
"$MX_PY" "$CHK" sse --url "$API_URL/v1/events/stream?after=$C" --token "$K1" --out "$T/sse1" --seconds 60 &
SP=$!
at_exit "kill $SP 2>/dev/null"
i=0; while [ ! -s "$T/sse1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
like "$(head -n 1 "$T/sse1")" '"status": 200, "content_type": "text/event-stream' "SSE: 200 text/event-stream"
t0=$(api_now_ms)
is "$(dc_deliver "$D" alice@example.test $(gen 11 11) 2>>"$T/deliver.err")" 1 "SSE: 1 message delivered to alice"
i=0
while ! grep -q '"event": "message.new"' "$T/sse1" && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
sse=$("$MX_PY" -c '
import json,sys
ev = [json.loads(l) for l in open(sys.argv[1]) if "\"event\"" in l]
nw = [e for e in ev if e["event"] == "message.new"]
print(len(nw), (nw[0]["t_ms"] - int(sys.argv[2])) if nw else -1, ev[-1]["id"] if ev else "")' "$T/sse1" "$t0")
set -- $sse
is "$1" 1 "SSE delivered the new message's message.new"
diag "SSE latency delivery -> event: ${2} ms (issue bound: 1000 ms)"
LAST=$3
kill "$SP" 2>/dev/null; wait "$SP" 2>/dev/null
pass "SSE connection dropped after event $LAST"
is "$(dc_deliver "$D" alice@example.test $(gen 12 14) 2>>"$T/deliver.err")" 3 "3 messages delivered while disconnected"
wait_count "$O" 9; ok $? "account o: 9 messages synced"
# what the feed holds after LAST for u1 (long-poll endpoint, no wait)
api_get "/v1/events?after=$LAST&limit=500" "$K1"
WANT=$(api_json '" ".join(str(e["id"]) for e in j["events"])')
"$MX_PY" "$CHK" sse --url "$API_URL/v1/events/stream" --token "$K1" --last-event-id "$LAST" \
    --out "$T/sse2" --seconds 3
GOT=$("$MX_PY" -c '
import json,sys
print(" ".join(json.loads(l)["id"] for l in open(sys.argv[1]) if "\"event\"" in l))' "$T/sse2")
# what the feed holds now (an event committed while the stream was read
# may be in GOT: GOT is a prefix of WANT2 that holds at least WANT)
api_get "/v1/events?after=$LAST&limit=500" "$K1"
WANT2=$(api_json '" ".join(str(e["id"]) for e in j["events"])')
isnt "$WANT" "" "events after $LAST exist ($WANT)"
case "$WANT2 " in
"$GOT "*) pfx=0 ;;
*) pfx=1 ;;
esac
case "$GOT " in
"$WANT "*) pfx2=0 ;;
*) pfx2=1 ;;
esac
[ $pfx = 0 ] && [ $pfx2 = 0 ]
ok $? "SSE resume with Last-Event-ID $LAST: exactly the events after it, in order"
[ $pfx = 0 ] && [ $pfx2 = 0 ] || diag "got: $GOT / feed before: $WANT / feed after: $WANT2"
is "$("$MX_PY" -c '
import json,sys
print(len([1 for l in open(sys.argv[1]) if "\"message.new\"" in l]))' "$T/sse2")" 3 \
    "SSE resume: the 3 messages delivered while disconnected, once each"

# ======== 6. pagination: every message exactly once while mail arrives
is "$(dc_deliver "$D" bob@example.test $(gen 15 40) 2>>"$T/deliver.err")" 26 "26 more messages for bob"
wait_count "$S" 29; ok $? "account s: 29 messages synced"
BEFORE=$(ids_of "$S" | LC_ALL=C sort)
cur= pages=0 k=41
: > "$T/paged"
while [ $pages -lt 40 ]; do
    api_get "/v1/messages?account=$S&limit=4${cur:+&cursor=$cur}" "$K3"
    [ "$API_STATUS" = 200 ] || { diag "page $pages: $API_STATUS $(api_body)"; break; }
    api_json '"\n".join(m["id"] for m in j["messages"])' | grep . >> "$T/paged"
    pages=$((pages + 1))
    cur=$(api_json 'j["next_cursor"] or ""')
    [ -n "$cur" ] || break
    # new mail between pages (newest first: it lands before the cursor)
    [ $k -le 50 ] && { dc_deliver "$D" bob@example.test $(gen $k $k) >/dev/null 2>>"$T/deliver.err"; k=$((k + 1)); }
done
diag "paged $(grep -c . "$T/paged") ids in $pages pages while $((k - 41)) messages arrived"
is "$(LC_ALL=C sort "$T/paged" | uniq -d)" "" "pagination: no message twice"
is "$(printf '%s\n' "$BEFORE" | LC_ALL=C comm -23 - "$(LC_ALL=C sort "$T/paged" > "$T/paged.s"; echo "$T/paged.s")")" "" \
    "pagination: every message there before paging was visited"

d_alive; ok $? "mxsyncd still running"

# ======== 6b. threads: a reply (In-Reply-To) joins its original's thread
api_get "/v1/messages/$MS" "$K3"
MS_MID=$(api_json 'j["message_id"]'); MS_SUBJ=$(api_json 'j["subject"]')
TH=$(api_json 'j["thread"]')
cat > "$T/reply.eml" <<EOF
From: U3 <u3@example.test>
To: bob@example.test
Subject: Re: $MS_SUBJ
Date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S +0000')
Message-ID: <thread-reply-1@example.test>
In-Reply-To: <$MS_MID>
References: <$MS_MID>

the reply
EOF
is "$(dc_deliver "$D" bob@example.test "$T/reply.eml" 2>>"$T/deliver.err")" 1 "a reply to $MS delivered to bob"
vw=0 RID=
while [ $vw -lt 300 ] && [ -z "$RID" ]; do
    api_get "/v1/messages?account=$S&limit=500" "$K3"
    RID=$(api_json '" ".join(m["id"] for m in j["messages"] if m["thread"] == '"$TH"' and m["id"] != "'"$MS"'")')
    [ -n "$RID" ] || { sleep 0.1; vw=$((vw + 1)); }
done
isnt "$RID" "" "the reply is synced into thread $TH"
api_get "/v1/threads/$TH" "$K3"
is "$API_STATUS" 200 "GET /v1/threads/$TH (u3, allowed on s): 200"
is "$(api_json 'j["thread"]')" "$TH" "thread: its id"
is "$(api_json 'sorted(m["id"] for m in j["messages"])')" \
    "$("$MX_PY" -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' "$MS" $RID)" \
    "thread: the original $MS and the reply, nothing else"
is "$(api_json 'j["messages"][-1]["id"]')" "$RID" "thread: the reply last (oldest first)"
is "$(api_json '[m["date"] for m in j["messages"]] == sorted(m["date"] for m in j["messages"])')" true \
    "thread: oldest first"
api_get "/v1/threads/$TH" "$KA"; is "$API_STATUS" 200 "thread: admin 200"
for k in "u1:$K1" "u4:$K4"; do
    api_get "/v1/threads/$TH" "${k#*:}"
    is "$API_STATUS $(api_code)" "404 not_found" "thread of account s for ${k%%:*} (may not use it): 404 not_found"
done
api_get "/v1/threads/4000000000" "$KA"
is "$API_STATUS $(api_code)" "404 not_found" "unknown thread: 404 not_found"
bad400 "thread id abc" invalid_id "/v1/threads/abc"
bad400 "thread id 0" invalid_id "/v1/threads/0"
bad400 "thread id .." invalid_id "/v1/threads/.."

# ======== 6c. a part, decoded: byte-identical to the attached file
head -c 5000 /dev/urandom > "$T/att.bin"
"$MX_PY" - "$T/att.bin" "$T/att.eml" <<'EOF'
import sys
from email.message import EmailMessage
m = EmailMessage()
m["From"] = "u3@example.test"; m["To"] = "bob@example.test"
m["Subject"] = "apithreads-attach"; m["Message-ID"] = "<apithreads-attach@example.test>"
m.set_content("see the attachment\n")
m.add_attachment(open(sys.argv[1], "rb").read(), maintype="application",
                 subtype="octet-stream", filename='na"me;\u00fc\r\nX-Injected: 1.bin')
open(sys.argv[2], "wb").write(bytes(m))
EOF
is "$(dc_deliver "$D" bob@example.test "$T/att.eml" 2>>"$T/deliver.err")" 1 "a mail with an attachment delivered to bob"
vw=0 AID=
while [ $vw -lt 300 ] && [ -z "$AID" ]; do
    api_get "/v1/messages?account=$S&subject=apithreads-attach" "$K3"
    AID=$(api_json '" ".join(m["id"] for m in j["messages"])')
    [ -n "$AID" ] || { sleep 0.1; vw=$((vw + 1)); }
done
isnt "$AID" "" "the mail with the attachment is synced"
api_get "/v1/messages/$AID" "$K3"
APART=$(api_json '[p["part"] for p in j["parts"] if p["filename"]][0]')
AFN=$(api_json '[p["filename"] for p in j["parts"] if p["filename"]][0]')
is "$(api_json '[p["filename"] for p in j["parts"] if p["filename"]][0]' | "$MX_PY" -c '
import sys; f = sys.stdin.read()[:-1]
print(f.startswith("na\"me;\u00fc") and "\n" in f and f.endswith("X-Injected: 1.bin"))')" True \
    "the part's file name as the message lists it (a quote, CR/LF, non-ASCII)"
WANT_DISP=$("$MX_PY" -c 'import sys,urllib.parse; print("attachment; filename*=UTF-8\x27\x27" + urllib.parse.quote(sys.argv[1].encode(), safe="!#$&+-.^_`|~"))' "$AFN")
api_get "/v1/messages/$AID/parts/$APART" "$K3"
is "$API_STATUS" 200 "GET /v1/messages/$AID/parts/$APART: 200"
is "$(sha256sum < "$API_BODYF" | cut -d' ' -f1)" "$(sha256sum < "$T/att.bin" | cut -d' ' -f1)" \
    "the part decoded (base64 undone): byte-identical to the attached file"
like "$(api_header content-type)" '^application/octet-stream$' "the part's Content-Type"
is "$(api_header content-disposition)" "$WANT_DISP" \
    "Content-Disposition: the file name RFC 5987-encoded (no quote, CR/LF or raw UTF-8 in the header)"
is "$(api_header x-injected)" "" "no header injected from the file name"
api_get "/v1/messages/$AID/parts/1" "$K3"
is "$API_STATUS $(api_header content-type)" "200 text/plain; charset=utf-8" "the text part: 200, text/plain with its charset"
like "$(api_body)" "see the attachment" "the text part's text"
api_get "/v1/messages/$AID/parts/9.9" "$K3"
is "$API_STATUS $(api_code)" "404 not_found" "an unknown part: 404 not_found"
for k in "u1:$K1" "u4:$K4"; do
    api_get "/v1/messages/$AID/parts/$APART" "${k#*:}"
    is "$API_STATUS $(api_code)" "404 not_found" "a part of account s for ${k%%:*} (may not use it): 404 not_found"
done
bad400 "part id 1;x" invalid_id "/v1/messages/$AID/parts/1;x"
bad400 "part id .." invalid_id "/v1/messages/$AID/parts/.."
bad400 "part id 1." invalid_id "/v1/messages/$AID/parts/1."
bad400 "part id abc" invalid_id "/v1/messages/$AID/parts/abc"
d_alive; ok $? "mxsyncd still running"

# ======== 7. listen = unix:PATH, and HTTPS with tls_cert/tls_key
d_stop_at_exit
sed -i '/^\[api\]/,$d' "$MXD/mxsync.conf"
printf '[api]\nlisten = unix:%s\n' "$T/api.sock" >> "$MXD/mxsync.conf"
API_URL=http://localhost API_CURL_OPTS="--unix-socket $T/api.sock"
api_daemon_start; ok $? "listen = unix:$T/api.sock: /v1/health answers on the socket"
api_req GET "$API_URL/v1/accounts" "$K1" --unix-socket "$T/api.sock"
is "$API_STATUS" 200 "unix socket: GET /v1/accounts with a token"
d_stop_at_exit
sed -i '/^\[api\]/,$d' "$MXD/mxsync.conf"
api_conf "tls_cert=$D/ssl/cert.pem" "tls_key=$D/ssl/key.pem" || bail_out "api_conf"
API_URL=https://127.0.0.1:$API_PORT API_CURL_OPTS="--cacert $DC_CA"
api_daemon_start; ok $? "tls_cert/tls_key: /v1/health answers over HTTPS (test CA)"
api_req GET "$API_URL/v1/accounts" "$K1" --cacert "$DC_CA"
is "$API_STATUS" 200 "HTTPS: GET /v1/accounts with a token"
api_req GET "http://127.0.0.1:$API_PORT/v1/version"
isnt "$API_STATUS" 200 "HTTPS: plain HTTP gets no answer ($API_STATUS)"
d_alive; ok $? "mxsyncd still running"
done_testing
