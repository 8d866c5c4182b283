#!/bin/sh
# Sending in API mode (issue 9 section 2): an account whose backend has
# MX_CAP_SEND sends through users.messages.send of the fake Gmail API
# (tools/fakegmail.py), through the same durable outbox: one send per
# idempotency key, Bcc recipients honoured, 100 quota units, no APPEND,
# message.sent; a send whose outcome is unknown (500, connection closed
# without an answer, kill -9 before the request) is never sent again by
# the outbox; a reply to a stored API-mode message goes into its
# original's thread (threadId), a non-reply starts one.  Runs once a
# backend with the change-log model and a send slot is registered (the
# Gmail API backend); skipped before.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v openssl >/dev/null 2>&1 || skip_all "openssl not installed"
[ -x "$MX_PY" ] || skip_all "$MX_PY not found"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
"$MX_BIN" modes --json | "$MX_PY" -c 'import json, sys
sys.exit(0 if any({"model_changes", "send"} <= set(m["caps"])
                  for m in json.load(sys.stdin)) else 1)' ||
    skip_all "no API-mode backend with a send slot registered yet"
mx_tmpdir gmailsend; T=$MX_TMP
mx_init "$T"
D=$T/dc
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"   # PKI and keys only
. "$D/env"
A=alice@example.test
idp_start "$T/idp" "$D" --refresh refresh-alice=$A || bail_out "fake_idp did not start"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --quiet 3 "$T/gen" >/dev/null
tool_start "$T/g" fakegmail.py --secret-file "$D/keys/secret.raw" \
    --mailbox "$A=$T/gen" --cert "$D/ssl/cert.pem" --key "$D/ssl/key.pem" \
    --log "$T/g/log" || bail_out "fakegmail did not start"
BASE=https://127.0.0.1:$TOOL_PORT
ctl() { # METHOD PATH [JSON]
    "$MX_PY" - "$DC_CA" "$1" "$BASE$2" "${3:-}" <<'PY'
import ssl, sys, urllib.request
ca, m, url, body = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=ca)
r = urllib.request.Request(url, data=body.encode() if body else None, method=m)
sys.stdout.write(urllib.request.urlopen(r, context=ctx).read().decode())
PY
}
stat() { ctl GET /_fake/stats | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
sends() { stat 'd["requests"].get("messages.send", 0)'; }
send_units() { # quota units charged to messages.send calls (the fake's log)
    "$MX_PY" -c 'import json, sys
print(sum(j.get("units", 0) for j in map(json.loads, open(sys.argv[1]))
          if j.get("api") == "messages.send"))' "$T/g/log"
}
entry() { # SUBJECT: "state last_error" of the outbox entry
    mx outbox --json | "$MX_PY" -c 'import json, sys
e = [e for e in json.load(sys.stdin) if e.get("subject") == sys.argv[1]][0]
print(e["state"], e.get("last_error") or "")' "$1"
}
printf 'refresh-alice\n' > "$T/rt"
printf 'test-secret\n' > "$T/cs"
run_ok "add an API-mode account (no --smtp)" mx account add g --provider gmail \
    --email $A --mode api --api-url "$BASE" --ca-file "$DC_CA" \
    --oauth-token-url "http://127.0.0.1:$IDP_PORT/token" \
    --oauth-client-id test-client --oauth-client-secret-file "$T/cs" \
    --refresh-token-file "$T/rt"

# ---- one send, once per key
run_ok "send through the API" mx send g --to bob@example.test --cc carol@example.test \
    --bcc dave@example.test --subject "api one" --body hello --idempotency-key k1
is "$(sends)" 1 "one users.messages.send"
is "$(stat 'len(d["sent"])')" 1 "the fake has one sent message"
is "$(send_units)" 100 "the send cost 100 quota units"
like "$(entry "api one")" '^sent ' "the entry is sent"
like "$(mx outbox show "$(mx outbox --json | "$MX_PY" -c 'import json,sys
print([e["id"] for e in json.load(sys.stdin) if e.get("subject")=="api one"][0])')")" \
    '"data_reply": ".*sent as [0-9a-f]+"' "the entry names Gmail's message id"
like "$(mx events --json)" '"message.sent"' "message.sent emitted"
mx send g --to bob@example.test --cc carol@example.test --bcc dave@example.test \
    --subject "api one" --body hello --idempotency-key k1 >"$T/again.out" 2>&1
like "$(cat "$T/again.out")" 'already queued as' "the same key: no new entry"
is "$(sends)" 1 "and no second send"
# Gmail sends to the header's recipients: the Bcc recipient is named in a
# Bcc field (which Gmail removes), the others are in To/Cc.

# ---- outcome unknown: never sent again by the outbox
ctl POST /_fake/fault '{"kind": "backend", "count": 1, "method": "messages.send"}' >/dev/null
mx send g --to bob@example.test --subject "api 500" --body x >"$T/500.out" 2>&1
isnt "$?" 0 "a 500 to the send: not reported as sent"
like "$(entry "api 500")" '^failed outcome unknown' "failed at once: outcome unknown"
n=$(sends)
run_ok "outbox run --now" mx outbox run --now
is "$(sends)" "$n" "not sent again"
ctl POST /_fake/fault '{"kind": "close", "count": 1, "method": "messages.send"}' >/dev/null
mx send g --to bob@example.test --subject "api close" --body x >/dev/null 2>&1
like "$(entry "api close")" '^failed outcome unknown' "connection closed without an answer: outcome unknown"
n=$(sends)
MXSYNC_TEST_KILL_AT=data mx send g --to bob@example.test --subject "api kill" --body x \
    >/dev/null 2>&1
is "$?" 137 "killed before the request"
like "$(entry "api kill")" '^sending' "left in sending"
run_ok "outbox run after the crash" mx outbox run --now
like "$(entry "api kill")" '^failed interrupted while sending' "recovery fails it, says why"
is "$(sends)" "$n" "and does not send it"
# The user decides: retry sends it (once).
KID=$(mx outbox --json | "$MX_PY" -c 'import json,sys
print([e["id"] for e in json.load(sys.stdin) if e.get("subject")=="api kill"][0])')
run_ok "outbox retry" mx outbox retry "$KID"
run_ok "outbox run" mx outbox run --now
like "$(entry "api kill")" '^sent' "sent after the user's retry"
is "$(sends)" "$((n + 1))" "one send"

# ---- a reply goes into its original's thread (threadId), a non-reply not
# Gmail files a sent message in a thread only when messages.send names
# the threadId and In-Reply-To/References and Subject match; the fake
# does the same, so a Subject alone ("Re: ...") starts a new thread.
cat > "$T/orig.eml" <<'MAIL'
From: Bob <bob@example.test>
To: alice@example.test
Subject: thread question zq9
Date: Mon, 07 Dec 2026 06:00:00 +0000
Message-ID: <orig.zq9@example.test>

a question
MAIL
"$MX_PY" - "$DC_CA" "$BASE/_fake/deliver?user=$A&labels=INBOX" "$T/orig.eml" > "$T/orig.json" <<'PY'
import ssl, sys, urllib.request
ctx = ssl.create_default_context(cafile=sys.argv[1])
r = urllib.request.Request(sys.argv[2], data=open(sys.argv[3], 'rb').read(), method='POST')
sys.stdout.write(urllib.request.urlopen(r, context=ctx).read().decode())
PY
OID=$("$MX_PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$T/orig.json")
OTID=$("$MX_PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["threadId"])' "$T/orig.json")
run_ok "sync the API-mode account" mx sync g
RID=
for id in $(mx ls g --json | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); d = d if isinstance(d, list) else d["messages"]
print(" ".join(m["id"] for m in d))'); do
    mx show "$id" --json | grep -q "\"remote_id\": \"$OID\"" && RID=$id
done
isnt "$RID" "" "the original is stored (metadata only)"
count_g() { mx ls g --json | "$MX_PY" -c 'import json, sys
d = json.load(sys.stdin); d = d if isinstance(d, list) else d["messages"]
print(len(d))'; }
N0=$(count_g)
sent_last() { stat 'd["sent"][-1]["'$1'"]'; }
run_ok "reply to it" mx send g --to bob@example.test --reply-to-message "$RID" --body "an answer"
like "$(entry "Re: thread question zq9")" '^sent ' "the reply is sent, subject from the original"
is "$(sent_last threadId)" "$OTID" "the reply lands in the original's thread"
run_ok "a non-reply with the same subject" mx send g --to bob@example.test \
    --subject "Re: thread question zq9" --body "not a reply"
isnt "$(sent_last threadId)" "$OTID" "a non-reply starts a new thread"
is "$(sent_last threadId)" "$(sent_last id)" "its thread is its own"
# API mode keeps metadata only: the outbox adds no full record of what it
# sent; the next sync brings both from the change log, without bodies.
is "$(count_g)" "$N0" "sending in API mode stores no record with a body"
run_ok "sync after sending" mx sync g
is "$(count_g)" "$((N0 + 2))" "the sync brings the two sent messages (metadata)"

done_testing
