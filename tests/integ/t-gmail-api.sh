#!/bin/sh
# The Gmail API mode (account add --mode api) against the fake Gmail API
# server (tools/fakegmail.py) and the fake OAuth2 IdP (tools/fake_idp.py):
# initial sync of the real corpus, incremental sync (adds, deletes, label
# changes), an expired history id, a 429 storm, a refused token, a missing
# scope, kill -9 mid-sync, show live and offline, the daemon polling, and
# that the store holds only the allowed fields (a scan of data.mdb).
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"

command -v openssl >/dev/null 2>&1 || skip_all "openssl not installed"
[ -x "$MX_PY" ] || skip_all "$MX_PY not found"
CORPUS=${MX_CORPUS_DIR:-$MX_TOP_SRCDIR/../shared/corpus/real}
[ -d "$CORPUS" ] || skip_all "no corpus at $CORPUS (set MX_CORPUS_DIR)"
mx_tmpdir gmailapi; T=$MX_TMP
mx_init "$T"
D=$T/dc
# only the test PKI and the token signing key: no Dovecot is started
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
. "$D/env"
A=alice@example.test
idp_start "$T/idp" "$D" --refresh refresh-alice=$A \
    --refresh refresh-bob=bob@example.test || bail_out "fake_idp did not start"
at_exit "idp_stop '$T/idp'"
refreshes() { grep -c '"grant_type": "refresh_token"' "$IDP_LOG" 2>/dev/null || echo 0; }
idp_control() {
    "$MX_PY" -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST")).read()' \
        "http://127.0.0.1:$IDP_PORT/control" "$1"
}

# gstart: the fake Gmail server with the corpus as alice's mailbox, on
# $G (the same port again after a restart)
gstart() {
    tool_start "$T/g" fakegmail.py --port "${G:-0}" --secret-file "$D/keys/secret.raw" \
        --mailbox "$A=$CORPUS" --cert "$D/ssl/cert.pem" --key "$D/ssl/key.pem" \
        --log "$T/g/log" "$@" || return 1
    G=$TOOL_PORT
}
gstart || bail_out "fakegmail did not start"
at_exit "tool_stop '$T/g' >/dev/null"
BASE=https://127.0.0.1:$G
# ctl METHOD PATH [JSON]: the fake's control API
ctl() {
    "$MX_PY" - "$DC_CA" "$1" "$BASE$2" "${3:-}" <<'PY'
import ssl, sys, urllib.request
ca, m, url, body = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
r = urllib.request.Request(url, data=body.encode() if body else None, method=m)
sys.stdout.write(urllib.request.urlopen(r, context=ctx).read().decode())
PY
}
# stat EXPR: EXPR of d = GET /_fake/stats
stat() {
    ctl GET /_fake/stats | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}
deliver() { # FILE [LABELS]: prints the new message id
    "$MX_PY" - "$DC_CA" "$BASE/_fake/deliver?user=$A&labels=${2:-INBOX,UNREAD}" "$1" <<'PY'
import json, ssl, sys, urllib.request
ca, url, f = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca)
r = urllib.request.Request(url, data=open(f, 'rb').read(), method='POST')
print(json.load(urllib.request.urlopen(r, context=ctx))["id"])
PY
}
printf 'refresh-alice\n' > "$T/rt-alice"
printf 'test-secret\n' > "$T/client-secret"
add_api() { # NAME [extra args]
    _n=$1; shift
    mx account add "$_n" --provider gmail --email $A --mode api \
        --api-url "https://127.0.0.1:$G" --ca-file "$DC_CA" \
        --oauth-token-url "http://127.0.0.1:$IDP_PORT/token" \
        --oauth-client-id test-client --oauth-client-secret-file "$T/client-secret" \
        --refresh-token-file "$T/rt-alice" "$@"
}
# events TYPE: how many events of TYPE the store has
events() { mx events --json 2>/dev/null | "$MX_PY" -c 'import json, sys
n = 0
for line in sys.stdin:
    line = line.strip()
    if line:
        d = json.loads(line)
        for e in (d if isinstance(d, list) else d.get("events", [d])):
            n += e.get("type") == sys.argv[1]
print(n)' "$1"; }
count() { mx ls "${1:-g}" --json 2>/dev/null | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); print(len(d if isinstance(d, list) else d.get("messages", [])))'; }

# ------------------------------------------------------------ add, sync
run_fails "--mode api without --provider is refused" \
    mx account add x --email $A --mode api --refresh-token-file "$T/rt-alice"
like "$MX_OUT" "--mode" "the message names --mode"
run_fails "--api-url http:// to a non-loopback host is refused" add_api x --api-url http://example.com
like "$MX_OUT" "api-url" "the message names --api-url"
run_ok "account add --mode api" add_api g
N=$(stat 'd["users"]["'$A'"]["messages"]')
diag "the fake holds $N corpus messages"
# "http": HTTP requests by kind (a batch is one); "requests": API calls
HTTP0=$(stat 'sum(d["http"].values())'); GETS0=$(stat 'd["requests"].get("messages.get", 0)')
SINGLE0=$(stat 'd["http"].get("messages.get", 0)')
run_ok "initial sync" mx sync g
is "$(count)" "$N" "every message of the fake is stored"
HTTP1=$(stat 'sum(d["http"].values())')
diag "initial sync: $((HTTP1 - HTTP0)) HTTP requests for $N messages ($(stat 'd["http"]'))"
# metadata in batches of 100: ceil(N/100) + the list pages (500 a page)
# + labels.list at connect, a page boundary splitting one more batch
[ $((HTTP1 - HTTP0)) -le $(( (N + 99) / 100 + (N + 499) / 500 + 3 )) ]
ok $? "metadata comes in batches: at most ceil(N/100) + list pages + 3 requests"
is "$(stat 'd["http"].get("messages.get", 0)')" "$SINGLE0" "no single users.messages.get request"
is "$(( $(stat 'd["requests"].get("messages.get", 0)') - GETS0 ))" "$N" "each message's metadata asked for once"

# ls, status, show
mx ls g --json > "$T/ls.json" 2>&1
is "$("$MX_PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
d = d if isinstance(d, list) else d["messages"]
print(sum(1 for m in d if m.get("date")), sum(1 for m in d if m.get("subject")),
      sum(1 for m in d if m.get("from")) > len(d) // 2)' "$T/ls.json")" \
    "$N 0 True" "ls --json: every message has a date, most a sender, none a subject"
run_ok "status" mx status
like "$MX_OUT" "^g: $N messages" "status counts the account's messages"
run_ok "account reauth works in API mode" mx account reauth g
# a message of our own, with markers that must never reach the store
cat > "$T/secret.eml" <<'MAIL'
From: Sender Person <sender.marker@example.org>
To: to.marker.zq@example.net
Subject: subject marker zq7
Date: Mon, 07 Dec 2026 06:00:00 +0000
Message-ID: <msgid.marker.zq7@example.org>
X-Other: other header marker zq7

body marker zq7 -- never stored in API mode
MAIL
SID=$(deliver "$T/secret.eml") || bail_out "deliver failed"
run_ok "incremental sync after a new message" mx sync g
is "$(count)" "$((N + 1))" "the new message is stored"
is "$(events message.new)" "$((N + 1))" "one message.new per message"
MID=$(mx ls g --json | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); d = d if isinstance(d, list) else d["messages"]
print([m["id"] for m in d if m.get("from") == "sender.marker@example.org"][0])')
run_ok "show fetches the message live" mx show "$MID"
like "$MX_OUT" "body marker zq7" "show prints the body fetched from the server"
like "$MX_OUT" "fetched live" "show says the body was fetched live"
like "$MX_OUT" "Remote-Id: $SID" "show names the Gmail message id"
run_ok "show --raw fetches the raw message" mx show "$MID" --raw
like "$MX_OUT" "^Subject: subject marker zq7" "show --raw gives the original bytes"
mx show "$MID" --json > "$T/show.json"
like "$(cat "$T/show.json")" '"from"' "show --json has from"
like "$(cat "$T/show.json")" '"date"' "show --json has date"

# the store holds only the allowed fields: scan every byte of data.mdb
# for the markers and for the subjects of the corpus messages
scan() {
    "$MX_PY" - "$MXD/data.mdb" "$CORPUS" "$MX_TOOLS" <<'PY'
import email, email.policy, sys
sys.path.insert(0, sys.argv[3])
from deliver import messages
db = open(sys.argv[1], 'rb').read()
bad = [m for m in (b'subject marker zq7', b'body marker zq7', b'to.marker.zq',
                   b'msgid.marker.zq7', b'other header marker') if m in db]
n = 0
for _, raw in messages([sys.argv[2]]):
    try:
        subj = email.message_from_bytes(raw, policy=email.policy.compat32)['Subject']
    except Exception:
        continue
    if subj is None:
        continue
    subj = str(subj).strip().encode('utf-8', 'replace')
    # long, distinctive subjects only (short ones may be anywhere)
    if len(subj) < 24 or b'\n' in subj:
        continue
    n += 1
    if subj in db:
        bad.append(subj)
print('checked %d subjects; found: %r; sender: %s' % (n, bad[:5],
      b'sender.marker@example.org' in db))
PY
}
out=$(scan)
diag "$out"
like "$out" "found: \[\]; sender: True" "data.mdb holds no subject, body, To, Message-ID or other header; it holds the sender"

# ------------------------------------------------------------ incremental
# flags of message MID (show --json): "seen flagged" words present
flags_of() { mx show "$1" --json | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); f = d["locations"][0]["flags"]
print(" ".join(x for x in ("Seen", "Flagged") if any(x in str(y) for y in f)))'; }
is "$(flags_of "$MID")" "" "an UNREAD message is not \\Seen"
ctl POST /_fake/label "{\"user\": \"$A\", \"id\": \"$SID\", \"add\": [\"STARRED\"], \"remove\": [\"UNREAD\"]}" >/dev/null
run_ok "sync after a label change" mx sync g
is "$(flags_of "$MID")" "Seen Flagged" "-UNREAD +STARRED: \\Seen \\Flagged"
is "$(events message.updated)" 1 "one message.updated"
like "$(mx show "$MID" --json)" "STARRED" "the label ids are kept"
run_fails "export of an API-mode account is refused" mx export g --format maildir --out "$T/exp"
like "$MX_OUT" "no message bodies" "the refusal says the store has no bodies"
# flag: \Seen and \Flagged are the UNREAD and STARRED labels
run_ok "flag --unseen in API mode" mx -D backend flag "$MID" --unseen
like "$MX_OUT" "store_flags_id -> ok" "it goes to Gmail (messages.modify)"
is "$(flags_of "$MID")" "Flagged" "the store follows: not \\Seen"
is "$(events message.updated)" 2 "one message.updated for the local change"
run_ok "sync after the flag change" mx sync g
is "$(flags_of "$MID")" "Flagged" "Gmail has the UNREAD label again: the sync keeps the flags"
is "$(events message.updated)" 2 "and sees nothing to update (labels in another order are the same)"
# a corpus message deleted on the server
DID=$(mx ls g --json | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); d = d if isinstance(d, list) else d["messages"]
print([m["id"] for m in d if m["id"] != sys.argv[1]][0])' "$MID")
DRID=$(mx show "$DID" --json | "$MX_PY" -c 'import json, sys; print(json.load(sys.stdin)["remote_id"])')
ctl POST /_fake/delete "{\"user\": \"$A\", \"id\": \"$DRID\"}" >/dev/null
run_ok "sync after a deletion" mx sync g
is "$(count)" "$N" "the deleted message is gone from the store"
is "$(events message.deleted)" 1 "one message.deleted"
run_fails "show of the deleted message" mx show "$DID"

# ------------------------------------------------------------ expired history
cp "$T/secret.eml" "$T/m2.eml"; sed -i 's/zq7/zq8/; s/^Message-ID: .*/Message-ID: <m2.zq8@example.org>/' "$T/m2.eml"
S2=$(deliver "$T/m2.eml")
S3=$(mx ls g --json | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); d = d if isinstance(d, list) else d["messages"]
print([m["id"] for m in d if m["id"] not in sys.argv[1:]][0])' "$MID" "$DID")
S3R=$(mx show "$S3" --json | "$MX_PY" -c 'import json, sys; print(json.load(sys.stdin)["remote_id"])')
ctl POST /_fake/delete "{\"user\": \"$A\", \"id\": \"$S3R\"}" >/dev/null
ctl POST /_fake/history "{\"user\": \"$A\", \"expire\": true}" >/dev/null
mx sync g > "$T/exp.out" 2>&1; rc=$?
is "$rc" 0 "sync with an expired history id succeeds"
like "$(cat "$T/exp.out")" "listing every message again" "it says it lists everything again"
is "$(count)" "$N" "one new, one deleted: the count follows the server"
is "$(events message.new)" "$((N + 2))" "no duplicate message.new after the full relisting"
is "$(events message.deleted)" 2 "the message deleted meanwhile is removed by the relisting"
like "$(mx show "$MID" --json)" "\"remote_id\": \"$SID\"" "the old message keeps its record and Gmail id"

# ------------------------------------------------------------ 429 storm
for i in 1 2 3; do
    sed "s/zq7/storm$i/" "$T/secret.eml" > "$T/s$i.eml"; deliver "$T/s$i.eml" >/dev/null
done
r429=$(stat 'd["status"].get("429", 0)')
ctl POST /_fake/quota '{"per_minute": 1, "retry_after": 1, "reset": true}' >/dev/null
mx sync g > "$T/storm.out" 2>&1 &
SPID=$!
# killed at exit only while it may still run (never a reused PID)
at_exit '[ -z "$SPID" ] || kill -9 "$SPID" 2>/dev/null'
sleep 2
ctl POST /_fake/quota '{"per_minute": 15000, "retry_after": null, "reset": true}' >/dev/null
wait $SPID; rc=$?; SPID=
is "$rc" 0 "a 429 storm: the sync backs off and finishes"
[ "$(stat 'd["status"].get("429", 0)')" -gt "$r429" ]; ok $? "the fake answered 429 meanwhile"
is "$(count)" "$((N + 3))" "the messages of the storm are stored"

# ------------------------------------------------------------ missing scope
# tokens with too small a scope, for bob (an empty mailbox on the fake)
printf 'refresh-bob\n' > "$T/rt-bob"
add_bob() { # NAME
    mx account add "$1" --provider gmail --email bob@example.test --mode api \
        --api-url "https://127.0.0.1:$G" --ca-file "$DC_CA" \
        --oauth-token-url "http://127.0.0.1:$IDP_PORT/token" \
        --oauth-client-id test-client --oauth-client-secret-file "$T/client-secret" \
        --refresh-token-file "$T/rt-bob"
}
run_ok "add an account for bob (full scope)" add_bob r
run_ok "sync it (an empty mailbox)" mx sync r
unlike "$(mx status)" "^r: .*last sync never" "status shows when the empty mailbox was synced"
idp_control '{"scope": "https://www.googleapis.com/auth/gmail.send"}'
run_ok "add an account whose token has only gmail.send" add_bob s
run_fails "sync without a read scope fails" mx sync s
like "$MX_OUT" "gmail\.(metadata|readonly|labels|modify)" "the error names the scope to grant"
idp_control '{"scope": "https://www.googleapis.com/auth/gmail.metadata"}'
run_ok "add an account whose token has gmail.metadata" add_bob m
sed "s/zq7/bob1/" "$T/secret.eml" > "$T/b1.eml"
"$MX_PY" - "$DC_CA" "$BASE/_fake/deliver?user=bob@example.test&labels=INBOX" "$T/b1.eml" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[1])
urllib.request.urlopen(urllib.request.Request(sys.argv[2], data=open(sys.argv[3], 'rb').read(), method='POST'), context=ctx).read()
PY
run_ok "gmail.metadata is enough to sync" mx sync m
BID=$(mx ls m --json | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); d = d if isinstance(d, list) else d["messages"]; print(d[0]["id"])')
run_fails "show needs more than gmail.metadata" mx show "$BID"
like "$MX_OUT" "gmail\.readonly" "the error names gmail.readonly"
like "$MX_OUT" "not stored in API mode" "and says the body is not stored"
run_fails "flag needs more than gmail.metadata" mx flag "$BID" --flagged
like "$MX_OUT" "gmail\.modify" "the error names gmail.modify"
idp_control '{"scope": ""}'

# ------------------------------------------------------------ kill -9 mid-sync
# a second store; the fake's quota runs out part-way, so the sync waits
# there (Retry-After 60) with some batches committed: kill -9 then
MXD0=$MXD; MXD=$T/mx2; export MXD
run_ok "add the account to a second store" add_api k
ctl POST /_fake/quota '{"per_minute": 1500, "retry_after": 60, "reset": true}' >/dev/null
mx sync k > "$T/k.out" 2>&1 &
KPID=$!
at_exit '[ -z "$KPID" ] || kill -9 "$KPID" 2>/dev/null' 
i=0; c=0
while [ $i -lt 300 ]; do
    c=$(count k 2>/dev/null || echo 0)
    [ "${c:-0}" -gt 0 ] && break
    sleep 0.1; i=$((i + 1))
done
kill -9 $KPID; wait $KPID 2>/dev/null; KPID=
diag "killed with $c messages committed"
[ "${c:-0}" -gt 0 ] && [ "$c" -lt "$N" ]; ok $? "kill -9 came mid-sync, after a commit"
ctl POST /_fake/quota '{"per_minute": 15000, "retry_after": null, "reset": true}' >/dev/null
run_ok "the sync after kill -9" mx sync k
NK=$(stat 'd["users"]["'$A'"]["messages"]')
is "$(count k)" "$NK" "nothing lost: every message of the fake is stored"
is "$(events message.new)" "$NK" "nothing twice: one message.new per message"

# ------------------------------------------------------------ the daemon polls
if [ -x "$MXSYNCD" ]; then
    printf '[daemon]\napi_poll_interval = 60\nworkers = 1\n[account k]\napi_poll_interval = 1\n' > "$MXD/mxsync.conf"
    DLOG=$T/d.log
    d_start
    at_exit d_stop_at_exit
    sed "s/zq7/polled/" "$T/secret.eml" > "$T/p.eml"
    PID_G=$(deliver "$T/p.eml")
    i=0
    while [ $i -lt 150 ] && [ "$(count k)" != "$((NK + 1))" ]; do sleep 0.2; i=$((i + 1)); done
    is "$(count k)" "$((NK + 1))" "the daemon picks up a new message by polling history"
    like "$(grep -c history.list "$T/g/log")" "^[0-9]+$" "history.list was called"
    d_stop_at_exit; DPID=
fi
MXD=$MXD0

# ------------------------------------------------------------ batch items
# In a store of their own: a message deleted between the listing and its
# batch (its part answers 404), three parts refused with 429 (asked again
# in one smaller batch), a part whose JSON is cut short.  Last of the
# server-side steps: the deletion changes the fake's count.
# parts of batches the fake answered with 429 (its log)
part429() { "$MX_PY" -c 'import json, sys
print(sum(1 for j in map(json.loads, open(sys.argv[1]))
          if j["method"] == "BATCH-PART" and j["status"] == 429))' "$T/g/log"; }
MXD1=$MXD; MXD=$T/mx3; export MXD
run_ok "add the account to a third store" add_api b
NB=$(stat 'd["users"]["'$A'"]["messages"]')
H0=$(stat 'd["http"].get("batch", 0)'); S0=$(stat 'd["http"].get("messages.get", 0)')
G0=$(stat 'd["requests"].get("messages.get", 0)'); R0=$(part429)
ctl POST /_fake/fault '{"kind": "gone", "count": 1, "method": "messages.get"}' >/dev/null
ctl POST /_fake/fault '{"kind": "rate", "count": 3, "method": "messages.get"}' >/dev/null
run_ok "sync with a deleted item and three 429 parts" mx -vv sync b
is "$(stat 'd["users"]["'$A'"]["messages"]')" "$((NB - 1))" "the fake deleted one message meanwhile"
is "$(count b)" "$((NB - 1))" "every other message is stored, the deleted one skipped"
is "$(events message.new)" "$((NB - 1))" "one message.new each"
is "$(events message.deleted)" 0 "nothing deleted that was never stored"
is "$(( $(part429) - R0 ))" 3 "the fake answered three parts with 429"
# batches of 100 within list pages of 500
is "$(( $(stat 'd["http"].get("batch", 0)') - H0 ))" "$(( NB / 500 * 5 + (NB % 500 + 99) / 100 + 1 ))" \
    "one batch per hundred listed and one more for the three refused items"
is "$(stat 'd["http"].get("messages.get", 0)')" "$S0" "the refused items are not fetched singly"
is "$(( $(stat 'd["requests"].get("messages.get", 0)') - G0 ))" "$((NB + 3))" \
    "only the refused items are asked again"
like "$MX_OUT" "3 of [0-9]+ items refused \(rate limit\)" "the backoff is traced"
run_ok "the next sync sees the deletion in the history" mx sync b
is "$(count b)" "$((NB - 1))" "and changes nothing"
is "$(events message.deleted)" 0 "no message.deleted"
MXD=$T/mx4
run_ok "add the account to a fourth store" add_api f
ctl POST /_fake/fault '{"kind": "malformed", "count": 1, "method": "messages.get"}' >/dev/null
run_fails "a batch part with malformed JSON fails the sync" mx sync f
like "$MX_OUT" "message [0-9a-f]+: .*(JSON|json)" "the error names the message and the bad JSON"
is "$(count f)" 0 "nothing of that batch is stored"
is "$(events message.new)" 0 "no message.new"
run_ok "the sync after the fault" mx sync f
is "$(count f)" "$((NB - 1))" "every message stored"
is "$(events message.new)" "$((NB - 1))" "each once"
MXD=$MXD1

# ------------------------------------------------------------ offline show
tool_stop "$T/g" >/dev/null
run_fails "show with the server stopped fails" mx show "$MID"
like "$MX_OUT" "not stored in API mode" "and says plainly that the body is not stored in API mode"
like "$MX_OUT" "From: .*sender.marker@example.org" "the stored metadata is still shown"
like "$MX_OUT" "Subject: \(not stored in API mode\)" "show says the subject is not stored"
run_ok "ls works offline" mx ls g
like "$MX_OUT" "sender.marker@example.org" "ls shows the sender offline"
# ------------------------------------------------------------ 401: one refresh
# a new signing key for the IdP and the fake: the stored token is refused
# (account r: bob's mailbox, empty before and after the restart)
head -c 32 /dev/urandom > "$T/secret2.raw"
idp_stop "$T/idp"
tool_start "$T/idp" fake_idp.py --secret-file "$T/secret2.raw" --log "$T/idp/log2" \
    --port "$IDP_PORT" --refresh refresh-alice=$A --refresh refresh-bob=bob@example.test ||
    bail_out "fake_idp did not restart"
IDP_LOG=$T/idp/log2
gstart_secret() {
    tool_start "$T/g" fakegmail.py --port "$G" --secret-file "$T/secret2.raw" \
        --mailbox "$A=$CORPUS" --cert "$D/ssl/cert.pem" --key "$D/ssl/key.pem" \
        --log "$T/g/log" "$@"
}
gstart_secret || bail_out "fakegmail did not restart"
mx -D backend sync r > "$T/401.out" 2>&1; rc=$?
is "$rc" 0 "a refused token (401): sync refreshes it and succeeds"
is "$(refreshes)" 1 "exactly one refresh"
done_testing
