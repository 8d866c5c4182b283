#!/bin/sh
# The fake Gmail API server (tools/fakegmail.py) against its own contract,
# with curl over TLS (the test CA): messages list/get (every format),
# history (types, paging, expiry -> 404), send, modify, batchModify, labels,
# the batch endpoint, 401 for a missing/forged/expired token, 403 for a
# missing scope (tokens from the fake IdP, tools/fake_idp.py, which serves
# Dovecot too), quota (403 and 429 with Retry-After), injectable faults, and
# real messages from the corpus.  The C client is tested elsewhere.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"

command -v curl >/dev/null 2>&1 || skip_all "curl not installed"
command -v openssl >/dev/null 2>&1 || skip_all "openssl not installed"
[ -x "$MX_PY" ] || skip_all "$MX_PY not found"
mx_tmpdir fakegmail; T=$MX_TMP
D=$T/dc
# the test PKI and the OAuth2 signing key; Dovecot is started only to show
# that it accepts the same tokens
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
. "$D/env"
A=alice@example.test
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --quiet 12 "$T/gen" >/dev/null ||
    bail_out "gen-mail.py failed"

idp_start "$T/idp" "$D" --refresh refresh-alice=$A \
    --refresh refresh-carol=carol@example.test \
    --refresh refresh-dave=dave@example.test || bail_out "fake_idp did not start"
idp_control() {
    "$MX_PY" -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), method="POST")).read()' \
        "http://127.0.0.1:$IDP_PORT/control" "$1"
}
# token USER: an access token from the fake IdP's refresh grant
token() {
    curl -s -u test-client:test-secret -d grant_type=refresh_token \
        -d "refresh_token=refresh-${1%@*}" "http://127.0.0.1:$IDP_PORT/token" |
        "$MX_PY" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}

CORPUS=${MX_CORPUS_DIR:-$MX_TOP_SRCDIR/../shared/corpus/real}
carol=carol@example.test=
[ -d "$CORPUS" ] && carol=carol@example.test=$CORPUS
tool_start "$T/g" fakegmail.py --secret-file "$D/keys/secret.raw" \
    --mailbox "$A=$T/gen" --mailbox "$carol" --mailbox "dave@example.test=$T/gen" \
    --cert "$D/ssl/cert.pem" --key "$D/ssl/key.pem" --log "$T/g/log" ||
    bail_out "fakegmail did not start"
G=$TOOL_PORT; GPID=$TOOL_PID
BASE=https://127.0.0.1:$G
U=$BASE/gmail/v1/users/me
TOK=$(token $A)
like "$TOK" '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' "the fake IdP issues a JWT access token"

# call [-t TOKEN] [-n] METHOD URL [curl args]: body in $T/body, status in
# $ST, response headers in $T/hdr (-n: no Authorization header)
call() {
    _tok=$TOK; _noauth=
    while :; do
        case $1 in
        -t) _tok=$2; shift 2 ;;
        -n) _noauth=1; shift ;;
        *) break ;;
        esac
    done
    _m=$1; _u=$2; shift 2
    if [ -n "$_noauth" ]; then
        ST=$(curl -s --cacert "$DC_CA" -X "$_m" -D "$T/hdr" -o "$T/body" \
            -w '%{http_code}' "$_u" "$@")
    else
        ST=$(curl -s --cacert "$DC_CA" -X "$_m" -D "$T/hdr" -o "$T/body" \
            -w '%{http_code}' -H "Authorization: Bearer $_tok" "$_u" "$@")
    fi
}
# j EXPR: EXPR evaluated with d = the JSON of $T/body
j() {
    "$MX_PY" -c 'import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8"))
r = eval(sys.argv[2])
print(json.dumps(r) if isinstance(r, (list, dict)) else r)' "$T/body" "$1"
}
# err: "CODE REASON STATUS" of a Google error body
err() { j '"%s %s %s" % (d["error"]["code"], d["error"]["errors"][0]["reason"], d["error"]["status"])'; }
ctl() { # METHOD PATH [JSON]
    curl -s --cacert "$DC_CA" -X "$1" "$BASE$2" ${3:+-d "$3"}
}

# ------------------------------------------------------------ profile, list
call GET "$U/profile"
is "$ST" 200 "getProfile: 200 over TLS"
is "$(j 'd["emailAddress"], d["messagesTotal"], type(d["historyId"]).__name__')" \
    "('alice@example.test', 12, 'str')" "getProfile: the user, 12 messages, historyId a string"
H0=$(j 'd["historyId"]')

call GET "$U/messages?maxResults=5"
is "$ST" 200 "messages.list: 200"
is "$(j 'len(d["messages"]), d["resultSizeEstimate"], "nextPageToken" in d')" \
    "(5, 12, True)" "messages.list maxResults=5: 5 of 12 and a nextPageToken"
j '"\n".join(m["id"] + " " + m["threadId"] for m in d["messages"])' > "$T/ids"
while tk=$(j 'd.get("nextPageToken", "")') && [ -n "$tk" ]; do
    call GET "$U/messages?maxResults=5&pageToken=$tk"
    j '"\n".join(m["id"] + " " + m["threadId"] for m in d["messages"])' >> "$T/ids"
done
is "$(cut -d' ' -f1 "$T/ids" | sort -u | wc -l)" 12 "paging with pageToken: 12 distinct ids"
is "$(grep -cE '^[0-9a-f]{16} [0-9a-f]{16}$' "$T/ids")" 12 "ids and threadIds are 16 hex digits"
call GET "$U/messages?maxResults=100000"
is "$(j 'len(d["messages"]), "nextPageToken" in d')" "(12, False)" "maxResults above 500 is capped, one page"
call GET "$U/messages?pageToken=garbage!"
is "$ST $(err)" "400 400 badRequest INVALID_ARGUMENT" "a bad pageToken: 400"
call GET "$U/messages?labelIds=Label_404"
is "$ST" 400 "labelIds with an unknown label: 400"
# paging while the mailbox changes (tokens name a position, not an offset):
# dpage CHANGE runs CHANGE after the first page, prints how many ids were
# listed and how many distinct
DTOK=$(token dave@example.test)
dpage() {
    call -t "$DTOK" GET "$U/messages?maxResults=5"
    j '"\n".join(m["id"] for m in d["messages"])' > "$T/dids"
    tk=$(j 'd["nextPageToken"]')
    "$@"
    while [ -n "$tk" ]; do
        call -t "$DTOK" GET "$U/messages?maxResults=5&pageToken=$tk"
        j '"\n".join(m["id"] for m in d["messages"])' >> "$T/dids"
        tk=$(j 'd.get("nextPageToken", "")')
    done
    echo "$(wc -l < "$T/dids") $(sort -u "$T/dids" | wc -l)"
}
add_newest() {
    printf 'From: x@example.test\r\nTo: dave@example.test\r\nDate: %s\r\nSubject: new\r\n\r\nnew\r\n' \
        "$(date -R)" > "$T/new.eml"      # newest: sorts before the first page
    curl -s --cacert "$DC_CA" --data-binary "@$T/new.eml" "$BASE/_fake/deliver?user=dave@example.test" >/dev/null
}
del_first() {
    ctl POST /_fake/delete '{"user": "dave@example.test", "id": "'"$(sed -n 1p "$T/dids")"'"}' >/dev/null
}
is "$(dpage add_newest)" "12 12" "a message added before the first page between two pages: the 12 others listed once each"
is "$(dpage del_first)" "13 13" "a listed message deleted between two pages: none of the other 12 hidden"
call GET "$U/messages?labelIds=STARRED"
is "$(j 'd["resultSizeEstimate"], "messages" in d')" "(0, False)" "labelIds filter: no STARRED message yet"

ID1=$(sed -n 1p "$T/ids" | cut -d' ' -f1)
ID2=$(sed -n 2p "$T/ids" | cut -d' ' -f1)

# ------------------------------------------------------------ get
call GET "$U/messages/$ID1?format=minimal"
is "$ST" 200 "messages.get minimal: 200"
is "$(j '"payload" in d, "raw" in d, d["id"] == "'$ID1'", d["labelIds"]')" \
    "(False, False, True, ['INBOX', 'UNREAD'])" "minimal: no payload or raw, labelIds INBOX UNREAD"
like "$(j 'd["internalDate"], d["historyId"], d["sizeEstimate"]')" \
    "^\('[0-9]{13}', '[0-9]+', [0-9]+\)$" "internalDate (ms) and historyId are strings, sizeEstimate a number"
call GET "$U/messages/$ID1?format=metadata&metadataHeaders=From&metadataHeaders=subject"
is "$(j 'sorted({h["name"] for h in d["payload"]["headers"]})')" '["From", "Subject"]' \
    "metadata with metadataHeaders From, subject: only those headers"
call GET "$U/messages/$ID1?format=metadata"
like "$(j '[h["name"] for h in d["payload"]["headers"]]')" '"Message-ID"' "metadata without metadataHeaders: all headers"
call GET "$U/messages/$ID1?format=raw"
j 'd["raw"]' > "$T/raw.b64"
"$MX_PY" -c 'import base64, sys, os
raw = base64.urlsafe_b64decode(open(sys.argv[1]).read().strip())
files = [open(os.path.join(sys.argv[2], f), "rb").read() for f in os.listdir(sys.argv[2])]
sys.exit(0 if raw in files else 1)' "$T/raw.b64" "$T/gen"
ok $? "format=raw: base64url of the exact bytes of one of the delivered files"
call GET "$U/messages/$ID1?format=full"
like "$(j 'd["payload"]["partId"] == "", d["payload"]["mimeType"], "headers" in d["payload"]')" \
    "^\(True, '(text|multipart)/[a-z]+', True\)" "format=full: payload with partId, mimeType, headers"
call GET "$U/messages/$ID1?format=bogus"
is "$ST" 400 "an unknown format: 400"
call GET "$U/messages/0000000000000000"
is "$ST $(err)" "404 404 notFound NOT_FOUND" "an unknown id: 404 notFound"
call GET "$BASE/gmail/v1/users/bob@example.test/messages"
is "$ST $(err)" "403 403 forbidden PERMISSION_DENIED" "another user's userId: 403"
call GET "$BASE/gmail/v1/users/$A/messages?maxResults=1"
is "$ST" 200 "the token's own address as userId: 200"

# ------------------------------------------------------------ labels, modify
call GET "$U/labels"
is "$(j '[l["type"] for l in d["labels"] if l["id"] in ("INBOX", "SENT", "UNREAD")]')" \
    '["system", "system", "system"]' "labels.list: INBOX, SENT, UNREAD are system labels"
call POST "$U/labels" -H 'Content-Type: application/json' -d '{"name": "Projects"}'
is "$ST" 200 "labels.create: 200"
L1=$(j 'd["id"]')
is "$(j 'd["name"], d["type"]')" "('Projects', 'user')" "labels.create: a user label ($L1)"
call POST "$U/labels" -H 'Transfer-Encoding: chunked' -d '{"name": "Chunked"}'
is "$ST $(j 'd["name"]')" "200 Chunked" "a chunked request body is read"
call POST "$U/labels" -d '{"name": "projects"}'
is "$ST $(err)" "409 409 alreadyExists ALREADY_EXISTS" "labels.create with an existing name: 409"
call POST "$U/labels" -d '{"name": "bad\u0007name"}'
is "$ST" 400 "labels.create with a control character in the name: 400"

call POST "$U/messages/$ID1/modify" -d '{"addLabelIds": ["'$L1'"], "removeLabelIds": ["UNREAD"]}'
is "$ST" 200 "messages.modify: 200"
is "$(j 'd["labelIds"]')" '["INBOX", "'$L1'"]' "modify: UNREAD removed, $L1 added"
call POST "$U/messages/$ID1/modify" -d '{"addLabelIds": ["Label_404"]}'
is "$ST" 400 "modify with an unknown label: 400"
call POST "$U/messages/$ID1/modify" -d '{"addLabelIds": "STARRED"}'
is "$ST" 400 "modify with a wrongly typed body: 400"
call POST "$U/messages/batchModify" -d '{"ids": ["'$ID1'", "'$ID2'"], "addLabelIds": ["STARRED"]}'
is "$ST" 204 "messages.batchModify: 204, no body"
call GET "$U/messages?labelIds=STARRED&labelIds=INBOX"
is "$(j 'sorted(m["id"] for m in d["messages"])')" "$(printf '%s\n' "$ID1" "$ID2" | sort |
    "$MX_PY" -c 'import json, sys; print(json.dumps(sys.stdin.read().split()))')" \
    "both messages now STARRED (labelIds filter)"

# ------------------------------------------------------------ history
call GET "$U/history?startHistoryId=$H0"
is "$ST" 200 "history.list: 200"
is "$(j '[sorted(k for k in h if k not in ("id", "messages")) for h in d["history"]]')" \
    '[["labelsAdded"], ["labelsRemoved"], ["labelsAdded"], ["labelsAdded"]]' \
    "history since the profile: label added, removed, and two by batchModify"
is "$(j 'd["history"][0]["labelsAdded"][0]["labelIds"], d["history"][1]["labelsRemoved"][0]["labelIds"]')" \
    "(['$L1'], ['UNREAD'])" "with the label ids added and removed"
is "$(j 'all(type(h["id"]) is str for h in d["history"]) and [int(h["id"]) for h in d["history"]] == sorted({int(h["id"]) for h in d["history"]})')" \
    True "record ids are strings, strictly increasing"
like "$(j '[int(b["id"]) - int(a["id"]) for a, b in zip(d["history"], d["history"][1:])]')" \
    '[2-9]|[1-9][0-9]' "and not contiguous (gaps above 1)"
H1=$(j 'd["historyId"]')
call GET "$U/profile"
is "$(j 'd["historyId"]')" "$H1" "history.list's historyId is the mailbox's current one"
call GET "$U/history?startHistoryId=$H0&historyTypes=labelRemoved"
is "$(j '[list(h) for h in d["history"]]')" '[["id", "messages", "labelsRemoved"]]' "historyTypes=labelRemoved: only that record"
call GET "$U/history?startHistoryId=$H0&maxResults=3"
is "$(j 'len(d["history"]), "nextPageToken" in d')" "(3, True)" "history maxResults=3: a page and a nextPageToken"
call GET "$U/history?startHistoryId=$H0&maxResults=3&pageToken=$(j 'd["nextPageToken"]')"
is "$(j 'len(d["history"]), "nextPageToken" in d')" "(1, False)" "the next page: the last record"
call GET "$U/history?startHistoryId=$H1"
is "$(j 'sorted(d)')" '["historyId"]' "nothing new since the current historyId: no history field"
call GET "$U/history"
is "$ST" 400 "history.list without startHistoryId: 400"

out=$(curl -s --cacert "$DC_CA" --data-binary "@$T/gen/000003.eml" "$BASE/_fake/deliver?user=$A")
NEW=$(echo "$out" | "$MX_PY" -c 'import json, sys; print(json.load(sys.stdin)["id"])')
like "$NEW" '^[0-9a-f]{16}$' "control: /_fake/deliver adds a message ($NEW)"
is "$(expr "$NEW" \> "$ID1")$(expr "$NEW" \> "$ID2")" 11 "a later message gets a greater id"
ctl POST /_fake/delete '{"user": "'$A'", "id": "'$ID2'"}' >/dev/null
ctl POST /_fake/label '{"user": "'$A'", "id": "'$NEW'", "add": ["TRASH"]}' >/dev/null
call GET "$U/history?startHistoryId=$H1"
is "$(j '[(sorted(k for k in h if k not in ("id", "messages")), h["messages"][0]["id"]) for h in d["history"]]')" \
    '[[["messagesAdded"], "'$NEW'"], [["messagesDeleted"], "'$ID2'"], [["labelsAdded"], "'$NEW'"]]' \
    "history: messagesAdded, messagesDeleted, labelsAdded from the control API"
call GET "$U/history?startHistoryId=$H1&labelId=TRASH"
is "$(j '[list(h)[2] for h in d["history"]]')" '["labelsAdded"]' "history labelId=TRASH: only the record with TRASH"
call GET "$U/messages/$ID2?format=minimal"
is "$ST" 404 "the deleted message is gone"
call GET "$U/messages"
is "$(j 'd["resultSizeEstimate"]')" 11 "list leaves out TRASH (includeSpamTrash=false) and the deleted one"

ctl POST /_fake/history '{"user": "'$A'", "expire": true}' >/dev/null
call GET "$U/history?startHistoryId=$H1"
is "$ST $(err)" "404 404 notFound NOT_FOUND" "history older than the server keeps: 404 notFound"
call GET "$U/profile"
H2=$(j 'd["historyId"]')
call GET "$U/history?startHistoryId=$H2"
is "$ST" 200 "the current historyId is still accepted after expiry"

# ------------------------------------------------------------ send
mkmsg() { # TO SUBJECT [EXTRA-HEADER]
    printf 'From: Alice <%s>\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s@example.test>\r\n%s\r\nhello\r\n' \
        "$A" "$1" "$2" "$(echo "$2" | tr -cd 'a-z')" "${3:+$3
}" | sed 's/$/\r/; s/\r\r$/\r/' | "$MX_PY" -c 'import base64, sys; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).decode().rstrip("="))'
}
call POST "$U/messages/send" -H 'Content-Type: application/json' \
    -d '{"raw": "'"$(mkmsg bob@example.test 'first post')"'"}'
is "$ST" 200 "messages.send: 200"
S1=$(j 'd["id"]'); TS1=$(j 'd["threadId"]')
is "$(j 'd["labelIds"], d["threadId"] == d["id"]')" "(['SENT'], True)" "sent: label SENT only, a new thread"
# users.messages (threadId): a sent message joins a thread only with the
# threadId AND In-Reply-To/References AND a matching Subject
call POST "$U/messages/send" -d '{"raw": "'"$(mkmsg bob@example.test 'Re: first post' 'In-Reply-To: <firstpost@example.test>')"'"}'
isnt "$(j 'd["threadId"]')" "$TS1" "a reply without threadId starts a thread of its own"
call POST "$U/messages/send" -d '{"raw": "'"$(mkmsg bob@example.test 'other')"'", "threadId": "'$TS1'"}'
isnt "$(j 'd["threadId"]')" "$TS1" "threadId without the reply headers and subject: a thread of its own"
call POST "$U/messages/send" -d '{"raw": "'"$(mkmsg bob@example.test 'Re: first post' 'In-Reply-To: <firstpost@example.test>')"'", "threadId": "'$TS1'"}'
is "$(j 'd["threadId"]')" "$TS1" "send with threadId, In-Reply-To and the subject: in that thread"
call POST "$U/messages/send" -d '{"raw": "'"$(mkmsg "$A" 'to myself')"'"}'
is "$(j 'd["labelIds"]')" '["SENT", "INBOX", "UNREAD"]' "sent to oneself: SENT, INBOX, UNREAD"
call POST "$U/messages/send" -d '{"raw": "'"$(mkmsg bob@example.test 'x')"'", "threadId": "ffffffffffffffff"}'
is "$ST" 404 "send with an unknown threadId: 404"
call POST "$U/messages/send" -d '{}'
is "$ST" 400 "send without raw: 400"
call POST "$U/messages/send" -d '{"raw": "***"}'
is "$ST" 400 "send with raw that is not base64url: 400"
printf 'From: %s\r\nTo: bob@example.test\r\nSubject: upload\r\n\r\nbody\r\n' "$A" > "$T/up.eml"
call POST "$BASE/upload/gmail/v1/users/me/messages/send?uploadType=media" \
    -H 'Content-Type: message/rfc822' --data-binary "@$T/up.eml"
is "$(j 'd["labelIds"]')" '["SENT"]' "media upload send (message/rfc822): SENT"
call GET "$U/messages/$S1?format=raw"
is "$(j '__import__("base64").urlsafe_b64decode(d["raw"]).split(b"\r\n")[3]')" \
    "b'Message-ID: <firstpost@example.test>'" "the sent message is stored as given"
like "$(ctl GET /_fake/stats)" "\"sent\": \[\{\"user\": \"$A\", \"id\": \"$S1\"" "stats list the sent messages"

# ------------------------------------------------------------ batch
ID3=$(sed -n 3p "$T/ids" | cut -d' ' -f1)
{
    printf -- '--b_1\r\nContent-Type: application/http\r\nContent-ID: <item1>\r\n\r\nGET /gmail/v1/users/me/messages/%s?format=metadata&metadataHeaders=Subject\r\n\r\n' "$ID1"
    printf -- '--b_1\r\nContent-Type: application/http\r\nContent-ID: <item2>\r\n\r\nGET /gmail/v1/users/me/messages/%s?format=minimal HTTP/1.1\r\n\r\n' "$ID3"
    printf -- '--b_1\r\nContent-Type: application/http\r\nContent-ID: <item3>\r\n\r\nGET /gmail/v1/users/me/messages/%s\r\n\r\n' "$ID2"
    printf -- '--b_1\r\nContent-Type: application/http\r\nContent-ID: <item4>\r\n\r\nPOST /gmail/v1/users/me/messages/%s/modify\r\nContent-Type: application/json\r\n\r\n{"removeLabelIds": ["STARRED"]}\r\n' "$ID1"
    printf -- '--b_1--\r\n'
} > "$T/batch"
call POST "$BASE/batch/gmail/v1" -H 'Content-Type: multipart/mixed; boundary=b_1' --data-binary "@$T/batch"
is "$ST" 200 "batch: 200"
like "$(cat "$T/hdr")" '^[Cc]ontent-[Tt]ype: multipart/mixed; boundary=batch_' "batch: multipart/mixed response"
bparse() {
    "$MX_PY" -c 'import email, email.policy, json, sys
h = open(sys.argv[1], "rb").read().split(b"\r\n\r\n")[0]
ct = [l.split(b":", 1)[1].strip() for l in h.split(b"\r\n") if l.lower().startswith(b"content-type:")][0]
m = email.message_from_bytes(b"Content-Type: " + ct + b"\r\n\r\n" + open(sys.argv[2], "rb").read(), policy=email.policy.compat32)
for p in m.get_payload():
    inner = p.get_payload(decode=True)
    head, _, body = inner.partition(b"\r\n\r\n")
    st = head.split(b"\r\n")[0].decode()
    d = json.loads(body)
    print(p["Content-Type"], p["Content-ID"], st, d.get("id") or d["error"]["code"], len(d.get("payload", {}).get("headers", [])), d.get("labelIds"))' "$T/hdr" "$T/body"
}
bparse > "$T/bout" 2>&1
is "$(cat "$T/bout")" "application/http <response-item1> HTTP/1.1 200 OK $ID1 1 ['INBOX', '$L1', 'STARRED']
application/http <response-item2> HTTP/1.1 200 OK $ID3 0 ['INBOX', 'UNREAD']
application/http <response-item3> HTTP/1.1 404 Not Found 404 0 None
application/http <response-item4> HTTP/1.1 200 OK $ID1 0 ['INBOX', '$L1']" \
    "batch: one application/http part per call, Content-ID response-..., 200 200 404 200"
"$MX_PY" -c 'import sys
sys.stdout.write("".join("--b_1\r\nContent-Type: application/http\r\n\r\nGET /gmail/v1/users/me/labels\r\n\r\n" for _ in range(101)) + "--b_1--\r\n")' > "$T/batch101"
call POST "$BASE/batch/gmail/v1" -H 'Content-Type: multipart/mixed; boundary=b_1' --data-binary "@$T/batch101"
is "$ST" 400 "batch of 101 calls: 400"
like "$(j 'd["error"]["message"]')" "at most 100" "saying at most 100"
call POST "$BASE/batch/gmail/v1" -H 'Content-Type: application/json' -d '{}'
is "$ST" 400 "batch that is not multipart/mixed: 400"

# ------------------------------------------------------------ auth: 401
call -n GET "$U/messages"
is "$ST $(err)" "401 401 required UNAUTHENTICATED" "no Authorization: 401 required"
like "$(cat "$T/hdr")" '^[Ww][Ww][Ww]-[Aa]uthenticate: Bearer' "with WWW-Authenticate: Bearer"
is "$(j 'd["error"]["errors"][0]["locationType"], d["error"]["errors"][0]["location"]')" \
    "('header', 'Authorization')" "and location header Authorization"
sig=${TOK##*.}
case $sig in A*) c=B ;; *) c=A ;; esac
call -t "${TOK%.*}.$c${sig#?}" GET "$U/messages"
is "$ST $(err)" "401 401 authError UNAUTHENTICATED" "a forged signature: 401 authError"
# the last character of a 32-byte signature carries 4 bits and 2 unused ones
nc=$("$MX_PY" -c 'import sys
t, a = sys.argv[1], "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
print(t[:-1] + a[a.index(t[-1]) ^ 1])' "$TOK")
call -t "$nc" GET "$U/messages"
is "$ST" 401 "the signature's unused bits changed (same bytes decoded): 401"
call -t "$(dc_token "$D" "$A" -60)" GET "$U/messages"
is "$ST $(err)" "401 401 authError UNAUTHENTICATED" "an expired token: 401"
call -t "$(dc_token "$D" "$A" 600)" GET "$U/messages?maxResults=1"
is "$ST" 200 "a token minted with the Dovecot instance's key (dc_token): 200"

# ------------------------------------------------------------ scopes: 403
idp_control '{"scope": "https://www.googleapis.com/auth/gmail.metadata"}'
MTOK=$(token $A)
call -t "$MTOK" GET "$U/messages?maxResults=2"
is "$ST" 200 "gmail.metadata: messages.list 200"
call -t "$MTOK" GET "$U/messages/$ID1?format=metadata"
is "$ST" 200 "gmail.metadata: format=metadata 200"
call -t "$MTOK" GET "$U/messages/$ID1?format=raw"
is "$ST $(err)" "403 403 insufficientPermissions PERMISSION_DENIED" "gmail.metadata: format=raw 403 insufficientPermissions"
like "$(j 'd["error"]["message"]')" "Metadata scope" "saying the metadata scope does not allow it"
call -t "$MTOK" GET "$U/messages/$ID1"
is "$ST" 403 "gmail.metadata: format=full (the default) 403"
call -t "$MTOK" GET "$U/messages?q=is:unread"
is "$ST $(err)" "403 403 insufficientPermissions PERMISSION_DENIED" "gmail.metadata: q 403"
call -t "$MTOK" POST "$U/messages/$ID1/modify" -d '{"addLabelIds": ["STARRED"]}'
is "$ST" 403 "gmail.metadata: modify 403"
call -t "$MTOK" POST "$U/messages/send" -d '{"raw": "'"$(mkmsg bob@example.test 'nope')"'"}'
is "$ST" 403 "gmail.metadata: send 403"
if command -v dovecot >/dev/null 2>&1 && dc_start "$D" >/dev/null; then
    at_exit "dc_stop '$D' >/dev/null"
    run_ok "the same scoped token logs in to Dovecot over IMAP (XOAUTH2)" \
        dc_imap "$D" "$A" --xoauth2 "$MTOK" login
    dc_stop "$D" >/dev/null
else
    skip "dovecot not available"
fi
idp_control '{"scope": "https://www.googleapis.com/auth/gmail.send"}'
STOK=$(token $A)
call -t "$STOK" POST "$U/messages/send" -d '{"raw": "'"$(mkmsg bob@example.test 'send scope')"'"}'
is "$ST" 200 "gmail.send: send 200"
call -t "$STOK" GET "$U/messages"
is "$ST" 403 "gmail.send: list 403"
idp_control '{"scope": "https://www.googleapis.com/auth/gmail.readonly"}'
call -t "$(token $A)" GET "$U/messages?q=subject:%22first%20post%22"
is "$(j 'sorted(m["id"] for m in d["messages"])[0]')" "$S1" "gmail.readonly: q=subject:\"first post\" finds the sent message"
idp_control '{"scope": ""}'

# ------------------------------------------------------------ faults
ctl POST /_fake/fault '{"kind": "backend", "count": 2, "method": "messages.list"}' >/dev/null
call GET "$U/labels"
is "$ST" 200 "a fault for messages.list leaves labels.list alone"
call GET "$U/messages"
is "$ST $(err)" "500 500 backendError INTERNAL" "fault backend: 500 backendError"
call GET "$U/messages"; s2=$ST
call GET "$U/messages"
is "$s2 $ST" "500 200" "for exactly 2 calls"
ctl POST /_fake/fault '{"kind": "malformed"}' >/dev/null
call GET "$U/labels"
"$MX_PY" -c 'import json, sys; json.load(open(sys.argv[1]))' "$T/body" 2>/dev/null
is "$ST $?" "200 1" "fault malformed: 200 with a body that is not JSON"
ctl POST /_fake/fault '{"kind": "pagetoken_loop"}' >/dev/null
call GET "$U/messages?maxResults=2"
tk=$(j 'd["nextPageToken"]')
ctl POST /_fake/fault '{"kind": "pagetoken_loop"}' >/dev/null
call GET "$U/messages?maxResults=2&pageToken=$tk"
is "$(j 'd["nextPageToken"]')" "$tk" "fault pagetoken_loop: the page points to itself"
ctl POST /_fake/fault '{"kind": "history_backwards"}' >/dev/null
call GET "$U/history?startHistoryId=$H2"
is "$(j 'int(d["historyId"]) < '$H2)" True "fault history_backwards: historyId below startHistoryId"
ctl POST /_fake/fault '{"kind": "bad_id"}' >/dev/null
call GET "$U/messages"
is "$(j 'd["messages"][0]["id"], d["messages"][1]["id"]')" "('../../etc/passwd', 'a/b')" "fault bad_id: ids with .. and /"
ctl POST /_fake/fault '{"kind": "bad_label"}' >/dev/null
call GET "$U/labels"
is "$(j 'any(any(ord(c) < 32 for c in l["name"]) for l in d["labels"])')" True "fault bad_label: a label name with control characters"
ctl POST /_fake/fault '{"kind": "wrong_types", "method": "messages.get"}' >/dev/null
call GET "$U/messages/$ID1?format=minimal"
is "$(j 'type(d["internalDate"]).__name__, type(d["labelIds"]).__name__')" "('int', 'str')" "fault wrong_types: internalDate a number, labelIds a string"
ctl POST /_fake/fault '{"kind": "huge"}' >/dev/null
call GET "$U/profile"
is "$(( $(wc -c < "$T/body") >= 10485760 ))" 1 "fault huge: a body of 10 MB or more"
ctl POST /_fake/fault '{"kind": "close"}' >/dev/null
curl -s --cacert "$DC_CA" -H "Authorization: Bearer $TOK" -o /dev/null "$U/profile"
is "$?" 52 "fault close: the connection closes without an answer (curl: empty reply)"
call GET "$U/profile"
is "$ST" 200 "then normal again"
like "$(ctl POST /_fake/fault '{"kind": "nonsense"}')" "unknown fault kind" "an unknown fault kind is refused"
like "$(ctl POST /_fake/quota '{"per_minute": "lots"}')" '"code": 400' "a bad /_fake/quota body is refused"
like "$(ctl POST /_fake/history '{"keep": -1}')" '"code": 400' "a bad /_fake/history body is refused"

# ------------------------------------------------------------ the corpus
if [ -d "$CORPUS" ]; then
    CTOK=$(token carol@example.test)
    : > "$T/cids"; tk=
    while :; do
        call -t "$CTOK" GET "$U/messages?maxResults=500${tk:+&pageToken=$tk}"
        j '"\n".join(m["id"] for m in d["messages"])' >> "$T/cids"
        tk=$(j 'd.get("nextPageToken", "")'); [ -n "$tk" ] || break
    done
    n=$(sort -u "$T/cids" | wc -l)
    ok $([ "$n" -gt 500 ]; echo $?) "corpus: every message listed once over 500-id pages ($n)"
    call -t "$CTOK" GET "$U/profile"
    is "$(j 'd["messagesTotal"]')" "$n" "corpus: as many as getProfile says"
    : > "$T/cb"
    for id in $(head -n 100 "$T/cids"); do
        printf -- '--cb\r\nContent-Type: application/http\r\nContent-ID: <%s>\r\n\r\nGET /gmail/v1/users/me/messages/%s?format=metadata&metadataHeaders=From&metadataHeaders=Date\r\n\r\n' "$id" "$id"
    done > "$T/cb"; printf -- '--cb--\r\n' >> "$T/cb"
    call -t "$CTOK" POST "$BASE/batch/gmail/v1" -H 'Content-Type: multipart/mixed; boundary=cb' --data-binary "@$T/cb"
    is "$(bparse | grep -c 'HTTP/1.1 200 OK')" 100 "corpus: a batch of 100 metadata gets, all 200"
    bad=0
    for id in $(sed -n '1p;50p;100p;200p;400p' "$T/cids"); do
        call -t "$CTOK" GET "$U/messages/$id?format=full"
        [ "$ST" = 200 ] || bad=$((bad + 1))
    done
    is "$bad" 0 "corpus: format=full parses real messages"
else
    skip "corpus not found at $CORPUS"
    skip "corpus not found"; skip "corpus not found"; skip "corpus not found"
fi

# ------------------------------------------------------------ quota
tool_start "$T/q" fakegmail.py --secret-file "$D/keys/secret.raw" \
    --mailbox "$A=$T/gen" --quota-per-minute 12 --quota-error 403 --log "$T/q/log" \
    --history-keep 2 --fault backend:1:getProfile ||
    bail_out "second fakegmail did not start"
Q=http://127.0.0.1:$TOOL_PORT
call GET "$Q/gmail/v1/users/me/messages"; a=$ST
call GET "$Q/gmail/v1/users/me/messages"; b=$ST
call GET "$Q/gmail/v1/users/me/messages"
is "$a $b $ST $(err)" "200 200 403 403 userRateLimitExceeded PERMISSION_DENIED" \
    "quota 12 units/min: two lists (5 each), the third 403 userRateLimitExceeded"
like "$(j 'd["error"]["errors"][0]["domain"]')" '^usageLimits$' "domain usageLimits"
like "$(cat "$T/hdr")" '^[Rr]etry-[Aa]fter: [1-9][0-9]*' "with Retry-After"
call GET "$Q/gmail/v1/users/me/labels"
is "$ST" 200 "a labels.list (1 unit) still fits"
curl -s -X POST -d '{"error": "429", "retry_after": 7}' "$Q/_fake/quota" >/dev/null
call GET "$Q/gmail/v1/users/me/history?startHistoryId=1"
is "$ST $(err)" "429 429 rateLimitExceeded RESOURCE_EXHAUSTED" "switched to 429: history.list (2 units) 429 rateLimitExceeded"
like "$(cat "$T/hdr")" '^[Rr]etry-[Aa]fter: 7' "Retry-After as set"
st=$(curl -s "$Q/_fake/stats")
like "$st" '"units": \{"alice@example.test": 11\}' "stats: 11 units charged (rejected calls are free)"
like "$st" '"rejected": \{"alice@example.test": 2\}' "stats: 2 rejected"
curl -s -X POST -d '{"reset": true}' "$Q/_fake/quota" >/dev/null
call GET "$Q/gmail/v1/users/me/messages"
is "$ST" 200 "after a quota reset: 200 again"
call GET "$Q/gmail/v1/users/me/profile"; a=$ST
call GET "$Q/gmail/v1/users/me/profile"
is "$a $ST" "500 200" "--fault backend:1:getProfile: the first getProfile 500, then 200"
fl=$(curl -s "$Q/_fake/stats" | "$MX_PY" -c 'import json, sys; print(json.load(sys.stdin)["users"]["alice@example.test"]["floor"])')
call GET "$Q/gmail/v1/users/me/history?startHistoryId=$fl"
is "$ST $(j 'len(d["history"])')" "200 2" "--history-keep 2: from the oldest kept position, 2 records"
call GET "$Q/gmail/v1/users/me/history?startHistoryId=$((fl - 1))"
is "$ST" 404 "and one before it: 404"
like "$(cat "$T/q/log")" '"api": "messages.list", "user": "alice@example.test", "status": 403, "units": 0' "the log has one JSON line per call"
unlike "$(cat "$T/q/log" "$T/g/log")" "$(echo "$TOK" | cut -c1-40)" "no token in the logs"

# ------------------------------------------------------------ bad start, stop
"$MX_PY" "$MX_TOOLS/fakegmail.py" --secret-file "$D/keys/secret.raw" \
    --mailbox "$A=$T/nonexistent" >/dev/null 2>"$T/bad.err"
rc=$?
is "$rc:$(cat "$T/bad.err")" "1:fakegmail: --mailbox '$A=$T/nonexistent': USER=PATH with an existing PATH expected" \
    "a missing mailbox path: exit 1 and a message naming it"
tool_stop "$T/g" >/dev/null
is "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$GPID/status" 2>/dev/null | tr -d Z)" "" \
    "SIGTERM stops the server (gone or a zombie)"
done_testing
