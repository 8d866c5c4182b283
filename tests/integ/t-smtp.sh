#!/bin/sh
# SMTP client (src/lib/send/smtp.c) through its test driver mx-smtp-send:
# against a real Dovecot submission service (STARTTLS; AUTH PLAIN, LOGIN,
# XOAUTH2, OAUTHBEARER; wrong password, expired token; a message relayed
# through submission -> tools/smtpsink.py --relay-lmtp -> LMTP -> INBOX,
# byte-exact after dot-stuffing), and against smtpsink for what a real
# server will not do on demand (pipelining seen on the wire, SIZE limit,
# partial acceptance, 451/550 classes, RSET, a drop mid-DATA, hostile
# replies, STARTTLS refused, implicit TLS and a wrong CA, 8-bit content).
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
SEND=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/tests/integ/mx-smtp-send

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$SEND" ] || skip_all "mx-smtp-send not built ($SEND)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
. "$D/env"


# Dovecot submission relays to DC_RELAY_PORT: a sink there forwards to LMTP.
sink_start "$T/sink-relay" --port "$DC_RELAY_PORT" --relay-lmtp "$DC_LMTP_PORT" ||
    bail_out "smtpsink did not start"
RELAY_DIR=$SINK_DIR

PW=$(dc_password "$D" alice@example.test)
printf '%s\n' "$PW" > "$T/pw"
dc_token "$D" alice@example.test > "$T/tok"
dc_token "$D" alice@example.test -5 > "$T/tok-expired"
TOK=$(cat "$T/tok")

printf 'From: alice@example.test\r\nTo: bob@example.test\r\nSubject: t-smtp %s\r\n\r\nhello\r\n' \
    plain > "$T/m-plain.eml"
sub() { # ARGS...: submission as alice with STARTTLS and the test CA
    "$SEND" --port "$DC_SUBMISSION_PORT" --tls starttls --ca "$DC_CA" \
        --user alice@example.test --from alice@example.test "$@"
}

# --- Dovecot submission: mechanisms ---------------------------------------
run_ok "PLAIN (default for a password)" sub --password-file "$T/pw" \
    --rcpt bob@example.test --file "$T/m-plain.eml"
like "$MX_OUT" '^mechanism PLAIN$' "PLAIN chosen"
like "$MX_OUT" '^ext .*PIPELINING.*' "EHLO after STARTTLS parsed (PIPELINING)"
unlike "$MX_OUT" '^ext .*STARTTLS' "STARTTLS no longer offered after TLS"
like "$MX_OUT" '^rcpt bob@example.test 250 2\.1\.5 ' "recipient accepted, enhanced code"
like "$MX_OUT" '^data 250 2\.0\.0 ' "message accepted"
run_ok "LOGIN (forced)" sub --password-file "$T/pw" --mechanism LOGIN \
    --rcpt bob@example.test --file "$T/m-plain.eml"
like "$MX_OUT" '^mechanism LOGIN$' "LOGIN used"
run_ok "XOAUTH2 (forced)" sub --token-file "$T/tok" --mechanism XOAUTH2 \
    --rcpt bob@example.test --file "$T/m-plain.eml"
like "$MX_OUT" '^mechanism XOAUTH2$' "XOAUTH2 used"
run_ok "OAUTHBEARER (forced)" sub --token-file "$T/tok" --mechanism OAUTHBEARER \
    --rcpt bob@example.test --file "$T/m-plain.eml"
like "$MX_OUT" '^mechanism OAUTHBEARER$' "OAUTHBEARER used"
"$SEND" --port "$DC_SUBMISSION_PORT" --tls starttls --ca "$DC_CA" --trace \
    --user alice@example.test --token-file "$T/tok" --from alice@example.test \
    --rcpt bob@example.test --file "$T/m-plain.eml" >"$T/tr.out" 2>"$T/tr.err"
is "$?" 0 "token, default choice, traced"
like "$(cat "$T/tr.out")" '^mechanism OAUTHBEARER$' "a token picks OAUTHBEARER first"
like "$(cat "$T/tr.err")" 'C: AUTH OAUTHBEARER <redacted>' "AUTH line redacted in the trace"
like "$(cat "$T/tr.err")" 'C: STARTTLS' "trace shows STARTTLS"
like "$(cat "$T/tr.err")" 'S: 354 ' "trace shows replies"
unlike "$(cat "$T/tr.err")" "$(cut -c1-40 "$T/tok")" "no token in the trace"
unlike "$(cat "$T/tr.err")" 'Subject: t-smtp' "no message content in the trace"

run_fails "wrong password" sub --password wrongpw --rcpt bob@example.test \
    --file "$T/m-plain.eml"
like "$MX_OUT" '^error auth retry=final .*535 5\.7\.8 ' "535 -> auth error, final, server text"
is "$MX_RC" 4 "exit status: final"
for m in XOAUTH2 OAUTHBEARER; do
    run_fails "expired token ($m)" sub --token-file "$T/tok-expired" --mechanism $m \
        --rcpt bob@example.test --file "$T/m-plain.eml"
    like "$MX_OUT" "^error auth retry=final .*AUTH $m: 535 5\.7\.8 Authentication failed" \
        "$m: challenge answered, 535 reported"
    unlike "$MX_OUT" "$(cut -c1-40 "$T/tok-expired")" "$m: token not in the error"
done

# --- relay through submission into bob's INBOX, byte-exact ----------------
printf 'From: alice@example.test\nTo: bob@example.test\nSubject: t-smtp dots\n\n.leading dot\n..two dots\n.\nbare LF above, CRLF here\r\nbare CR\rend' \
    > "$T/m-dots.eml"
"$MX_PY" -c 'import sys
d = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
open(sys.argv[2], "wb").write(d + (b"" if d.endswith(b"\r\n") else b"\r\n"))' \
    "$T/m-dots.eml" "$T/m-dots.want"
run_ok "submit a dot-stuffed message (no pipelining)" sub --password-file "$T/pw" \
    --no-pipelining --rcpt bob@example.test --file "$T/m-dots.eml"
uid=$(dc_imap "$D" bob@example.test search-header INBOX Subject "t-smtp dots" | tail -n 1)
isnt "$uid" "" "delivered into bob's INBOX"
dc_imap "$D" bob@example.test fetch INBOX "$uid" > "$T/m-dots.got"
"$MX_PY" -c 'import sys
got, want = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
sys.exit(0 if got.endswith(b"\r\n\r\n" + want.split(b"\r\n\r\n", 1)[1]) and b"\r\nSubject: t-smtp dots\r\n" in got else 1)' \
    "$T/m-dots.got" "$T/m-dots.want"
ok $? "INBOX copy: body byte-exact (dots unstuffed, LF/CR -> CRLF)"
relayed=$(grep -l 'Subject: t-smtp dots' "$RELAY_DIR"/*.eml | head -n 1)
"$MX_PY" -c 'import sys
got, want = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
sys.exit(0 if got.endswith(want) else 1)' "$relayed" "$T/m-dots.want"
ok $? "relay copy ends with the exact normalised message"

# --- smtpsink: pipelining --------------------------------------------------
sink_start "$T/sink-pipe" || bail_out "smtpsink did not start"
printf 'Subject: p\r\n\r\nbody\r\n' > "$T/m-small.eml"
run_ok "pipelined send" "$SEND" --port "$SINK_PORT" --tls none \
    --from a@x.test --rcpt b@x.test --rcpt c@x.test --file "$T/m-small.eml"
like "$(cat "$SINK_LOG")" '^batch [0-9]+ MAIL,RCPT,RCPT,DATA$' \
    "MAIL, RCPTs and DATA reached the server before any reply"
like "$(cat "$SINK_LOG")" '^C [0-9]+ MAIL FROM:<a@x.test>$' \
    "7-bit message, no SIZE offered: no MAIL parameters"
run_ok "no-pipelining switch" "$SEND" --port "$SINK_PORT" --tls none --no-pipelining \
    --from a@x.test --rcpt b@x.test --rcpt c@x.test --file "$T/m-small.eml"
n=$(grep -c '^batch [0-9]* RCPT$' "$SINK_LOG")
is "$n" 2 "without pipelining each RCPT travels alone"
sink_stop "$T/sink-pipe"
sink_start "$T/sink-nopipe" --no-pipelining || bail_out "smtpsink did not start"
run_ok "server without PIPELINING" "$SEND" --port "$SINK_PORT" --tls none \
    --from a@x.test --rcpt b@x.test --file "$T/m-small.eml"
unlike "$(cat "$SINK_LOG")" '^batch [0-9]+ MAIL,' "no pipelining when not offered"
like "$(cat "$SINK_LOG")" '^batch [0-9]+ DATA$' "DATA alone"
sink_stop "$T/sink-nopipe"

# --- SIZE, 8BITMIME ---------------------------------------------------------
sink_start "$T/sink-size" --size 100 --no-8bitmime || bail_out "smtpsink did not start"
head -c 500 /dev/zero | tr '\0' 'x' > "$T/m-500.eml"
run_fails "message above SIZE refused" "$SEND" --port "$SINK_PORT" --tls none \
    --from a@x.test --rcpt b@x.test --file "$T/m-500.eml"
like "$MX_OUT" '^size_limit 100$' "SIZE 100 parsed"
like "$MX_OUT" '^error invalid .*500 bytes exceeds the 100-byte limit' "clear SIZE message"
unlike "$(cat "$SINK_LOG")" '^C [0-9]+ MAIL' "nothing sent for a too-large message"
run_ok "small message carries SIZE=" "$SEND" --port "$SINK_PORT" --tls none \
    --from a@x.test --rcpt b@x.test --file "$T/m-small.eml"
like "$(cat "$SINK_LOG")" '^C [0-9]+ MAIL FROM:<a@x.test> SIZE=20$' "SIZE=20, no BODY for 7-bit"
printf 'Subject: caf\303\251\r\n\r\nd\303\251j\303\240\r\n' > "$T/m-8bit.eml"
run_fails "8-bit message to a server without 8BITMIME" "$SEND" --port "$SINK_PORT" \
    --tls none --from a@x.test --rcpt b@x.test --file "$T/m-8bit.eml"
like "$MX_OUT" '^error invalid .*8-bit bytes .*lacks 8BITMIME' "clear 8BITMIME message"
is "$(grep -c '^C [0-9]* MAIL' "$SINK_LOG")" 1 "nothing sent for it"
run_fails "undeclared 8-bit content found while streaming" "$SEND" --port "$SINK_PORT" \
    --tls none --unknown-body --from a@x.test --rcpt b@x.test --file "$T/m-8bit.eml"
like "$MX_OUT" '^error invalid .*connection dropped, nothing delivered' "dropped before the dot"
is "$(ls "$SINK_DIR" | grep -c 'eml$')" 1 "the sink stored only the 7-bit message"
sink_stop "$T/sink-size"
sink_start "$T/sink-eight" || bail_out "smtpsink did not start"
run_ok "8-bit message with 8BITMIME" "$SEND" --port "$SINK_PORT" --tls none \
    --from a@x.test --rcpt b@x.test --file "$T/m-8bit.eml"
like "$(cat "$SINK_LOG")" '^C [0-9]+ MAIL FROM:<a@x.test> BODY=8BITMIME$' "BODY=8BITMIME declared"
cmp -s "$SINK_DIR/0001.eml" "$T/m-8bit.eml"; ok $? "8-bit bytes intact"
run_fails "message source failing mid-way" "$SEND" --port "$SINK_PORT" --tls none \
    --fail-after 5 --from a@x.test --rcpt b@x.test --file "$T/m-8bit.eml"
like "$MX_OUT" '^error io .*nothing delivered' "source error: nothing delivered"
is "$(ls "$SINK_DIR" | grep -c 'eml$')" 1 "no truncated message stored"
sink_stop "$T/sink-eight"

# --- recipients, reply classes, RSET ---------------------------------------
sink_start "$T/sink-rcpt" --reply-rcpt 'bad@x.test=550 5.1.1 <bad@x.test>: Recipient address rejected' \
    --reply-rcpt 'busy@x.test=451 4.3.0 mailbox busy' --fail-data-once 451 ||
    bail_out "smtpsink did not start"
run_fails "first message: DATA 451" "$SEND" --port "$SINK_PORT" --tls none \
    --from a@x.test --rcpt good@x.test --file "$T/m-small.eml"
like "$MX_OUT" '^error server retry=temp .*451 4\.3\.0 try again later' "451 -> temporary"
like "$MX_OUT" '^data 451 4\.3\.0 ' "DATA reply recorded"
is "$MX_RC" 3 "exit status: temporary"
"$SEND" --port "$SINK_PORT" --tls none --from a@x.test --rcpt good@x.test \
    --rcpt bad@x.test --file "$T/m-small.eml" > "$T/partial.out" 2>&1
is "$?" 2 "partial acceptance: exit status 'sent to some'"
MX_OUT=$(cat "$T/partial.out")
like "$MX_OUT" '^rcpt bad@x.test 550 5\.1\.1 <bad@x.test>: Recipient address rejected$' \
    "the refusal is reported with its enhanced code"
like "$MX_OUT" '^accepted 1/2$' "1 of 2 accepted"
like "$(cat "$SINK_DIR/0001.env")" '^RCPT TO:<good@x.test>$' "stored for the good recipient"
run_fails "all recipients refused, one temporarily" "$SEND" --port "$SINK_PORT" --tls none \
    --from a@x.test --rcpt bad@x.test --rcpt busy@x.test --count 2 --file "$T/m-small.eml"
like "$MX_OUT" '^error server retry=temp .*no recipient accepted.*550 5\.1\.1' "temp if any 4xx; first refusal quoted"
run_fails "all recipients refused for good" "$SEND" --port "$SINK_PORT" --tls none \
    --from a@x.test --rcpt bad@x.test --file "$T/m-small.eml"
like "$MX_OUT" '^error server retry=final .*no recipient accepted' "550 -> final"
is "$MX_RC" 4 "exit status: final"
is "$(grep -c '^data ' "$SINK_LOG")" 2 "no message content when no recipient was accepted"
like "$(cat "$SINK_LOG")" '^batch [0-9]+ MAIL,RCPT,RCPT,DATA$' "(pipelined: DATA went out, the server refused it)"
like "$(cat "$SINK_LOG")" '^C [0-9]+ RSET$' "RSET before the transaction after a failed one"
sink_stop "$T/sink-rcpt"

# --- connection dropped mid-DATA -------------------------------------------
sink_start "$T/sink-drop" --drop-mid-data 2000 || bail_out "smtpsink did not start"
"$MX_PY" -c 'import sys; sys.stdout.write("Subject: big\r\n\r\n" + ("x" * 76 + "\r\n") * 20000)' > "$T/m-big.eml"
run_fails "server drops the connection mid-DATA" "$SEND" --port "$SINK_PORT" --tls none \
    --from a@x.test --rcpt b@x.test --file "$T/m-big.eml"
like "$MX_OUT" '^error (network|tls) retry=temp ' "network error, temporary"
is "$MX_RC" 3 "exit status: temporary"
sink_stop "$T/sink-drop"

# --- hostile servers --------------------------------------------------------
for mode in garbage mismatch longline badcode; do
    sink_start "$T/sink-h-$mode" --hostile "$mode" || bail_out "smtpsink did not start"
    run_fails "hostile EHLO reply: $mode" "$SEND" --port "$SINK_PORT" --tls none \
        --from a@x.test --rcpt b@x.test --file "$T/m-small.eml"
    like "$MX_OUT" '^error protocol retry=temp .*(malformed reply|inconsistent multi-line|longer than 4096)' \
        "$mode: protocol error with a clear detail"
    sink_stop "$T/sink-h-$mode"
done

# --- TLS --------------------------------------------------------------------
sink_start "$T/sink-notls" --offer-auth || bail_out "smtpsink did not start"
run_fails "STARTTLS required, not offered" "$SEND" --port "$SINK_PORT" --tls starttls \
    --ca "$DC_CA" --user u --password sekritpw --from a@x.test --rcpt b@x.test \
    --file "$T/m-small.eml"
like "$MX_OUT" '^error insecure .*does not offer STARTTLS' "refused without STARTTLS"
unlike "$(cat "$SINK_LOG")" 'CREDENTIALS|AUTH' "no credentials sent"
sink_stop "$T/sink-notls"
sink_start "$T/sink-refuse" --tls "$D/ssl/cert.pem" "$D/ssl/key.pem" --refuse-starttls --auth sekritpw ||
    bail_out "smtpsink did not start"
run_fails "STARTTLS refused by the server" "$SEND" --port "$SINK_PORT" --tls starttls \
    --ca "$DC_CA" --user u --password sekritpw --from a@x.test --rcpt b@x.test \
    --file "$T/m-small.eml"
like "$MX_OUT" '^error insecure .*454 4\.7\.0' "refusal reported"
unlike "$(cat "$SINK_LOG")" 'CREDENTIALS|sekritpw' "no credentials sent"
sink_stop "$T/sink-refuse"
sink_start "$T/sink-stls" --tls "$D/ssl/cert.pem" "$D/ssl/key.pem" --auth sekritpw ||
    bail_out "smtpsink did not start"
run_ok "STARTTLS + AUTH PLAIN to the sink" "$SEND" --port "$SINK_PORT" --tls starttls \
    --ca "$DC_CA" --user u --password sekritpw --from a@x.test --rcpt b@x.test \
    --file "$T/m-small.eml"
is "$(grep -c '^C [0-9]* EHLO' "$SINK_LOG")" 2 "EHLO again after TLS"
sink_stop "$T/sink-stls"
sink_start "$T/sink-implicit" --tls "$D/ssl/cert.pem" "$D/ssl/key.pem" --implicit-tls --auth sekritpw ||
    bail_out "smtpsink did not start"
run_ok "implicit TLS with the test CA" "$SEND" --port "$SINK_PORT" --tls implicit \
    --ca "$DC_CA" --user u --password sekritpw --from a@x.test --rcpt b@x.test \
    --file "$T/m-small.eml"
like "$MX_OUT" '^data 250 ' "sent over implicit TLS"
run_fails "implicit TLS, wrong CA" "$SEND" --port "$SINK_PORT" --tls implicit \
    --ca "$DC_WRONG_CA" --user u --password sekritpw --from a@x.test --rcpt b@x.test \
    --file "$T/m-small.eml"
like "$MX_OUT" '^error tls_verify ' "certificate verify failure"
run_fails "wrong password over TLS" "$SEND" --port "$SINK_PORT" --tls implicit \
    --ca "$DC_CA" --user u --password nope --from a@x.test --rcpt b@x.test \
    --file "$T/m-small.eml"
like "$MX_OUT" '^error auth retry=final .*535 5\.7\.8' "535 from the sink -> auth"
sink_stop "$T/sink-implicit"

done_testing
