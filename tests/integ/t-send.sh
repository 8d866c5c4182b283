#!/bin/sh
# Sending (src/lib/send/outbox_*.c, mxsync send / outbox) against a real
# Dovecot: submission (STARTTLS, AUTH PLAIN and, through an OAuth2 account,
# a bearer token) relaying through tools/smtpsink.py to LMTP, the recipient's
# INBOX and the sender's Sent folder over IMAP; and against smtpsink for what
# a real server will not do on demand (451 then 250, 550, a fallback relay).
# Checked: delivered once, one copy in Sent with the same Message-ID, one
# store record attached by the next sync, replies thread, Unicode and a 10 MB
# attachment survive, CR/LF injection and over-limit attachments refused
# before queueing, kill -9 during DATA and after the 250 (before APPEND) give
# exactly one delivery and one copy in Sent, the daily quota with its relay
# and hold policies, bulk mail to the relay, idempotency keys.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
mx_tmpdir; T=$MX_TMP
D=$T/dc
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
. "$D/env"
mx_init "$T"

sink_count() { ls "$T/sink-$1/mail" 2>/dev/null | grep -c '\.eml$'; }

# Dovecot submission relays to DC_RELAY_PORT; a sink there forwards to LMTP.
sink_start "$T/sink-relay" --port "$DC_RELAY_PORT" --relay-lmtp "$DC_LMTP_PORT" ||
    bail_out "smtpsink did not start"

# count_mid USER FOLDER MSGID: messages in FOLDER with that Message-ID
count_mid() {
    dc_imap "$D" "$1" search-header "$2" Message-ID "$3" 2>/dev/null | grep -c .
}
# mid_of OUTPUT: the <Message-ID> in mxsync send's output line
mid_of() { printf '%s\n' "$1" | sed -n 's/^[a-z]* [0-9]* \(<[^>]*>\).*/\1/p' | head -n 1; }
id_of() { printf '%s\n' "$1" | sed -n 's/^[a-z]* \([0-9]*\) <.*/\1/p' | head -n 1; }

SUB="smtp://alice@example.test@127.0.0.1:$DC_SUBMISSION_PORT"
run_ok "account with SMTP (submission, STARTTLS)" \
    mx_add a "$D" alice@example.test imaps --smtp "$SUB" --display-name "Alice Ämsel"
run_ok "initial sync" mx sync a

# --- PLAIN: delivered once, once in Sent, one record ----------------------
run_ok "send (password: AUTH PLAIN)" mx -D smtp send a --to 'Bob <bob@example.test>' \
    --subject "t-send plain" --body "hello bob"
like "$MX_OUT" 'C: AUTH PLAIN <redacted>' "AUTH PLAIN used, redacted in the trace"
like "$MX_OUT" '^sent [0-9]+ <[^>]+> via the account: 250' "reported sent with the server's 250"
MID1=$(mid_of "$MX_OUT")
is "$(count_mid bob@example.test INBOX "$MID1")" 1 "delivered once to bob's INBOX"
is "$(count_mid alice@example.test Sent "$MID1")" 1 "one copy in alice's Sent"
run_ok "sync after sending" mx sync a
n=$(mx ls a --json | "$MX_PY" -c 'import json,sys
m=sys.argv[1].strip("<>")
print(sum(1 for x in json.load(sys.stdin) if x.get("message_id")==m))' "$MID1")
is "$n" 1 "one store record for the sent message after the sync"
like "$(mx events)" 'message\.sent .*route=account' "message.sent event"

# --- a reply threads with its original ------------------------------------
printf 'From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: Quote request\r\nMessage-ID: <orig-1@example.test>\r\nDate: Mon, 23 Nov 2026 08:00:00 +0000\r\n\r\nPlease quote.\r\n' > "$T/orig.eml"
dc_deliver "$D" alice@example.test "$T/orig.eml" >/dev/null
mx sync a >/dev/null
run_ok "reply to a stored message" mx send a --to bob@example.test \
    --reply-to-message '<orig-1@example.test>' --body "Here is the quote."
MIDR=$(mid_of "$MX_OUT")
dc_imap "$D" bob@example.test search-header INBOX Message-ID "$MIDR" > "$T/r.uid"
dc_imap "$D" bob@example.test fetch INBOX "$(head -n 1 "$T/r.uid")" > "$T/reply.eml"
like "$(cat "$T/reply.eml")" '^In-Reply-To: <orig-1@example\.test>' "In-Reply-To set"
like "$(cat "$T/reply.eml")" '^References: <orig-1@example\.test>' "References set"
like "$(cat "$T/reply.eml")" '^Subject: Re: Quote request' "Re: subject"
mx sync a >/dev/null
threads=$(mx ls a --json | "$MX_PY" -c 'import json,sys
v={x.get("message_id"):x.get("thread") for x in json.load(sys.stdin)}
print(v.get("orig-1@example.test"), v.get(sys.argv[1].strip("<>")))' "$MIDR")
t1=${threads% *}; t2=${threads#* }
isnt "$t1" None "original stored with a thread"
is "$t2" "$t1" "the reply joins the original's thread"

# --- Unicode and a 10 MB attachment ----------------------------------------
head -c 10485760 /dev/urandom > "$T/Bericht_Übersicht_📎.bin"
run_ok "Unicode subject, names, file name; 10 MB attachment" mx send a \
    --to 'Jürgen Größ <bob@example.test>' --subject 'Grüße aus Köln — 東京 ✓' \
    --body 'Schöne Grüße' --attach "$T/Bericht_Übersicht_📎.bin"
MIDU=$(mid_of "$MX_OUT")
dc_imap "$D" bob@example.test fetch INBOX \
    "$(dc_imap "$D" bob@example.test search-header INBOX Message-ID "$MIDU" |
       head -n 1)" > "$T/u.eml"
"$MX_PY" - "$T/u.eml" "$T/Bericht_Übersicht_📎.bin" > "$T/u.check" <<'EOF'
import email, email.policy, hashlib, sys
m = email.message_from_binary_file(open(sys.argv[1], 'rb'), policy=email.policy.default)
want = hashlib.sha256(open(sys.argv[2], 'rb').read()).hexdigest()
print('subject', m['subject'])
print('to', m['to'])
print('from', m['from'])
for p in m.iter_attachments():
    print('att', p.get_filename(), hashlib.sha256(p.get_content()).hexdigest() == want)
EOF
like "$(cat "$T/u.check")" '^subject Grüße aus Köln — 東京 ✓$' "subject decoded intact"
like "$(cat "$T/u.check")" '^to Jürgen Größ <bob@example.test>$' "recipient name intact"
like "$(cat "$T/u.check")" '^from Alice Ämsel <alice@example.test>$' "sender display name intact"
like "$(cat "$T/u.check")" '^att Bericht_Übersicht_📎.bin True$' "file name and 10 MB content intact"
is "$(count_mid alice@example.test Sent "$MIDU")" 1 "the big one is in Sent once"

# --- the same as a JSON document on standard input --------------------------
printf '%s' '{"to": ["Bob <bob@example.test>"], "subject": "t-send json \u00e9",
  "text": "from a program", "html": "<p>from a program</p>",
  "attachments": [{"filename": "note.txt", "content_type": "text/plain",
                   "content_base64": "aGVsbG8="}],
  "reply_to_message": "<orig-1@example.test>", "idempotency_key": "json-1"}' > "$T/msg.json"
mx send a --json < "$T/msg.json" > "$T/j1.out" 2>&1
is "$?" 0 "send --json: sent"
JMID=$(mid_of "$(cat "$T/j1.out")")
dc_imap "$D" bob@example.test fetch INBOX \
    "$(dc_imap "$D" bob@example.test search-header INBOX Message-ID "$JMID" | head -n 1)" > "$T/j.eml"
like "$(cat "$T/j.eml")" '^In-Reply-To: <orig-1@example\.test>' "JSON reply_to_message threads"
like "$(cat "$T/j.eml")" 'multipart/alternative' "text and html as alternatives"
like "$(cat "$T/j.eml")" 'filename="?note\.txt' "inline attachment"
mx send a --json < "$T/msg.json" > "$T/j2.out" 2>&1
like "$(cat "$T/j2.out")" 'already queued as' "JSON idempotency_key honoured"
printf '{"to": 5, "subject": "x"}' | mx send a --json > "$T/j3.out" 2>&1
is "$?" 2 "wrong JSON type: usage error"
like "$(cat "$T/j3.out")" 'to' "names the key"

# --- refused before queueing -----------------------------------------------
before=$(mx outbox --json | "$MX_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
nl='
'
run_fails "CR/LF in the subject refused" mx send a --to bob@example.test \
    --subject "hi${nl}Bcc: victim@example.test" --body x
like "$MX_OUT" 'subject.*(line break|CR|LF)' "clear message names the subject"
run_fails "CR/LF in an address refused" mx send a \
    --to "bob@example.test${nl}Bcc: victim@example.test" --body x
run_ok "attachment limit 1M" mx account edit a --max-attachment 1M
head -c 2000000 /dev/urandom > "$T/two-mb.bin"
run_fails "attachment over the limit refused" mx send a --to bob@example.test \
    --subject big --body x --attach "$T/two-mb.bin"
like "$MX_OUT" 'over the .*limit' "clear message about the limit"
after=$(mx outbox --json | "$MX_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
is "$after" "$before" "nothing was queued"

# --- kill -9 during DATA, then after the 250 before APPEND ------------------
sent_before=$(dc_imap "$D" alice@example.test count Sent)
head -c 700000 /dev/urandom > "$T/700k.bin"
MXSYNC_TEST_KILL_AT=data mx send a --to bob@example.test --subject "t-send kill data" \
    --body "killed mid-DATA" --attach "$T/700k.bin" >"$T/k1.out" 2>&1
is "$?" 137 "killed with SIGKILL during DATA"
like "$(mx outbox)" 'sending .*t-send kill data' "entry left in sending"
run_ok "outbox run after the crash" mx outbox run
like "$MX_OUT" 'sent 1' "sent again (not in Sent, so it never went out)"
KMID=$(mx outbox --json | "$MX_PY" -c 'import json,sys
print([e["message_id"] for e in json.load(sys.stdin) if e.get("subject")=="t-send kill data"][0])')
is "$(count_mid bob@example.test INBOX "$KMID")" 1 "exactly one delivery"
is "$(count_mid alice@example.test Sent "$KMID")" 1 "exactly one copy in Sent"

MXSYNC_TEST_KILL_AT=sent mx send a --to bob@example.test --subject "t-send kill sent" \
    --body "killed after the 250" >"$T/k2.out" 2>&1
is "$?" 137 "killed with SIGKILL after the 250, before APPEND"
KMID2=$(mx outbox --json | "$MX_PY" -c 'import json,sys
e=[e for e in json.load(sys.stdin) if e.get("subject")=="t-send kill sent"][0]
print(e["message_id"], e["state"], e["appended"])')
like "$KMID2" ' sent False$' "entry is sent, not yet in Sent"
KMID2=${KMID2%% *}
is "$(count_mid alice@example.test Sent "$KMID2")" 0 "not in Sent yet"
run_ok "outbox run after the crash" mx outbox run
like "$MX_OUT" 'sent 0 .*copied to Sent 1' "only the copy to Sent is done"
is "$(count_mid bob@example.test INBOX "$KMID2")" 1 "exactly one delivery"
is "$(count_mid alice@example.test Sent "$KMID2")" 1 "exactly one copy in Sent"
run_ok "a second run does nothing" mx outbox run
is "$(count_mid alice@example.test Sent "$KMID2")" 1 "still one copy in Sent"

# --- 451 then 250, and 550 (smtpsink as the account's server) --------------
sink_start "$T/sink-flaky" --fail-data-once 451 --offer-auth || bail_out "smtpsink did not start"
run_ok "account on a flaky server" mx_add f "$D" alice@example.test imaps \
    --smtp "smtp+plain://127.0.0.1:$SINK_PORT"
mx send f --to bob@example.test --subject "t-send 451" --body x >"$T/f1.out" 2>&1
is "$?" 4 "451: exit 4, still queued"
like "$(cat "$T/f1.out")" '^queued [0-9]+ .*451' "queued with the 451 reply"
F1=$(id_of "$(cat "$T/f1.out")")
run_ok "retry the due entries now" mx outbox run f --now
like "$MX_OUT" 'sent 1' "sent on the second attempt"
is "$(sink_count flaky)" 1 "the sink has it exactly once"
like "$(mx outbox show "$F1")" '"attempts": 2' "two attempts recorded"
sink_start "$T/sink-reject" --offer-auth --reply-rcpt 'bob@example.test=550 5.1.1 <bob@example.test>: no such user' ||
    bail_out "smtpsink did not start"
run_ok "account on a rejecting server" mx_add r "$D" alice@example.test imaps \
    --smtp "smtp+plain://127.0.0.1:$SINK_PORT"
mx send r --to bob@example.test --subject "t-send 550" --body x >"$T/r1.out" 2>&1
is "$?" 1 "550: exit 1"
like "$(cat "$T/r1.out")" '^failed [0-9]+ .*550 5\.1\.1' "failed with the server's reply"
like "$(mx events)" 'message\.failed .*550' "message.failed event"
like "$(mx status r)" 'outbox: 0 queued, 0 sending, 1 failed, 0 sent' "status shows the outbox"
is "$(sink_count reject)" 0 "nothing delivered"

# --- some recipients deferred (4xx): retried on their own ------------------
sink_start "$T/sink-partial" --offer-auth --reply-rcpt 'carol@example.test=451 4.2.1 mailbox busy' ||
    bail_out "smtpsink did not start"
PPORT=$SINK_PORT
run_ok "account on a server deferring one recipient" mx_add pa "$D" alice@example.test \
    imaps --smtp "smtp+plain://127.0.0.1:$PPORT" --saves-sent yes
run_ok "send to two, one deferred" mx send pa --to bob@example.test \
    --to carol@example.test --subject "t-send partial" --body x
like "$MX_OUT" 'not accepted: carol@example.test: 451 4\.2\.1' "the deferral is reported"
like "$(mx events)" 'message\.sent .*retry_entry=' "message.sent names the retry entry"
sink_stop "$T/sink-partial"
sink_start "$T/sink-partial2" --offer-auth --port "$PPORT" || bail_out "smtpsink did not start"
run_ok "retry the deferred recipient" mx outbox run pa --now
like "$MX_OUT" 'sent 1' "sent to the deferred recipient"
is "$(grep -c 'carol@example.test' "$T/sink-partial2/mail"/*.env)" 1 "carol got it on the retry"
unlike "$(cat "$T/sink-partial2/mail"/*.env)" 'bob@example' "bob was not sent a second copy"

# --- one SMTP session for consecutive queued messages ---------------------
sink_start "$T/sink-reuse" --offer-auth || bail_out "smtpsink did not start"
run_ok "account for session reuse" mx_add ru "$D" alice@example.test imaps \
    --smtp "smtp+plain://127.0.0.1:$SINK_PORT" --saves-sent yes
for i in 1 2 3; do
    mx send ru --to bob@example.test --subject "t-send reuse $i" --body x \
        --queue-only >/dev/null 2>&1 || fail "queue reuse $i"
done
run_ok "send the three queued" mx outbox run ru
like "$MX_OUT" 'sent 3' "three sent"
is "$(sink_count reuse)" 3 "the server has three"
is "$(grep -c ' open$' "$T/sink-reuse/log")" 1 "over one connection"

# --- two senders at once: one delivery ------------------------------------
sink_start "$T/sink-slow" --offer-auth --delay-data 3 || bail_out "smtpsink did not start"
run_ok "account on a slow server" mx_add sl "$D" alice@example.test imaps \
    --smtp "smtp+plain://127.0.0.1:$SINK_PORT" --saves-sent yes
run_ok "queue one message" mx send sl --to bob@example.test --subject "t-send race" \
    --body x --queue-only
mx outbox run sl --now > "$T/race1.out" 2>&1 &
r1=$!
sleep 1
mx outbox run sl --now > "$T/race2.out" 2>&1
wait $r1
like "$(cat "$T/race1.out")" 'sent 1' "the first run sent it"
like "$(cat "$T/race2.out")" 'sent 0 .*recovered 0' "the second left the live sender's entry alone"
is "$(sink_count slow)" 1 "delivered exactly once"

# --- daily quota: relay policy, hold policy, bulk -------------------------
sink_start "$T/sink-own" --offer-auth || bail_out "smtpsink did not start"
OWN=$SINK_PORT
sink_start "$T/sink-fallback" || bail_out "smtpsink did not start"
FALL=$SINK_PORT
run_ok "account with a limit of 5 and a relay" mx_add q "$D" alice@example.test imaps \
    --smtp "smtp+plain://127.0.0.1:$OWN" --relay "smtp+plain://127.0.0.1:$FALL" \
    --daily-limit 5 --quota-policy relay
for i in 1 2 3 4 5 6; do
    mx send q --to bob@example.test --subject "t-send quota $i" --body x >/dev/null 2>&1 ||
        fail "quota send $i"
done
is "$(sink_count own)" 5 "five through the account's own server"
is "$(sink_count fallback)" 1 "the sixth through the fallback relay"
like "$(mx events)" 'account\.quota .*used=4 limit=5' "80% warning at the 4th"
run_ok "bulk mail" mx send q --to bob@example.test --subject "t-send bulk" --body x --bulk
like "$MX_OUT" 'via the relay' "bulk mail went to the relay"
is "$(sink_count fallback)" 2 "the relay has it"
is "$(sink_count own)" 5 "the personal server never saw it"
run_ok "hold policy" mx account edit q --quota-policy hold
mx send q --to bob@example.test --subject "t-send held" --body x >"$T/h.out" 2>&1
is "$?" 4 "over the limit with hold: exit 4"
like "$(cat "$T/h.out")" 'daily limit of 5 messages reached' "held, with the reason"
is "$(sink_count own)" 5 "not sent"

# --- idempotency -----------------------------------------------------------
run_ok "send with an idempotency key" mx send q --to bob@example.test \
    --subject "t-send idem" --body x --idempotency-key order-42 --bulk
run_ok "same key again" mx send q --to bob@example.test \
    --subject "t-send idem" --body x --idempotency-key order-42 --bulk
like "$MX_OUT" 'already queued as' "the existing entry is returned"
is "$(grep -l 't-send idem' "$T/sink-fallback/mail"/*.eml | grep -c .)" 1 "one message"

# --- mxsyncd sends queued mail and finishes interrupted work --------------
MXSYNCD=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd
MXSYNC_TEST_KILL_AT=sent mx send a --to bob@example.test --subject "t-send daemon recovers" \
    --body "the daemon puts this into Sent" >/dev/null 2>&1
DMID=$(mx outbox --json | "$MX_PY" -c 'import json,sys
print([e["message_id"] for e in json.load(sys.stdin) if e.get("subject")=="t-send daemon recovers"][0])')
sink_start "$T/sink-dq" --offer-auth || bail_out "smtpsink did not start"
run_ok "account for daemon sending" mx_add dq "$D" alice@example.test imaps \
    --smtp "smtp+plain://127.0.0.1:$SINK_PORT"
sink_start "$T/sink-cfgoff" --offer-auth || bail_out "smtpsink did not start"
run_ok "account disabled in mxsync.conf" mx_add cfgoff "$D" alice@example.test imaps \
    --smtp "smtp+plain://127.0.0.1:$SINK_PORT"
run_ok "queue for it" mx send cfgoff --to bob@example.test --subject "t-send cfgoff" \
    --body x --queue-only
printf '[daemon]\nworkers = 2\n\n[account cfgoff]\nenabled = no\n' > "$MXD/mxsync.conf"
"$MXSYNCD" -d "$MXD" </dev/null >>"$T/mxsyncd.log" 2>&1 &
DPID=$!
at_exit "kill -TERM $DPID 2>/dev/null"
wait_for() { # SECONDS CMD...: until CMD succeeds
    _w=$1; shift; _i=0
    while [ $_i -lt $((_w * 10)) ]; do "$@" && return 0; sleep 0.1; _i=$((_i + 1)); done
    return 1
}
sent_copy() { [ "$(count_mid alice@example.test Sent "$DMID")" = 1 ]; }
wait_for 20 sent_copy
ok $? "mxsyncd copied the interrupted send into Sent at start"
run_ok "queue only" mx send dq --to bob@example.test --subject "t-send via daemon" \
    --body x --queue-only
like "$MX_OUT" '^queued ' "left queued for the daemon"
has_one() { [ "$(sink_count dq)" = 1 ]; }
wait_for 20 has_one
ok $? "mxsyncd sent it"
sleep 2
is "$(sink_count dq)" 1 "exactly once"
like "$(mx outbox dq)" 'sent .*t-send via daemon' "the entry says sent"
is "$(sink_count cfgoff)" 0 "enabled = no in mxsync.conf: its mail is not sent"
like "$(mx outbox cfgoff)" 'queued .*account disabled' "it waits, saying why"
kill -TERM $DPID; wait $DPID
is "$?" 0 "mxsyncd stops cleanly"
is "$(count_mid bob@example.test INBOX "$DMID")" 1 "the interrupted one was delivered once"

# --- secrets never in outputs ---------------------------------------------
unlike "$(mx outbox --json) $(mx account list --json)" "$(dc_password "$D" alice@example.test)" \
    "no password in outbox or account listings"
done_testing
