#!/bin/sh
# t-harness.sh -- proves the integration-test harness itself (TAP).
# usage: MX_TOP_SRCDIR=/path/to/src sh tests/integ/t-harness.sh

: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"

command -v dovecot >/dev/null 2>&1 || skip_all "dovecot not installed"
command -v openssl >/dev/null 2>&1 || skip_all "openssl not installed"
[ -x "$MX_PY" ] || skip_all "$MX_PY not found"

now() { date +%s.%N; }
since() { echo "$(now) $1" | awk '{printf "%.3f", $1 - $2}'; }

mx_tmpdir harness
T=$MX_TMP
D=$T/dc
A=alice@example.test

# ------------------------------------------------------------ setup/start
run_ok "dc_setup creates the instance" dc_setup "$D"
. "$D/env"
for f in "$DC_CA" "$DC_WRONG_CA" "$D/ssl/cert.pem" "$D/ssl/key.pem" \
         "$D/ssl/wrongname-cert.pem" "$D/ssl/wrongname-key.pem"; do
    test -s "$f"; ok $? "exists: ${f#$D/}"
done
run_ok "server cert verifies against the test CA" openssl verify -CAfile "$DC_CA" "$D/ssl/cert.pem"
like "$(openssl x509 -in "$D/ssl/cert.pem" -noout -ext subjectAltName 2>&1)" \
    'DNS:localhost, IP Address:127.0.0.1' "server cert SAN has localhost + 127.0.0.1"
run_fails "server cert does not verify against the wrong CA" \
    openssl verify -CAfile "$DC_WRONG_CA" "$D/ssl/cert.pem"
ports="$DC_IMAP_PORT $DC_IMAPS_PORT $DC_POP3_PORT $DC_POP3S_PORT $DC_LMTP_PORT $DC_SUBMISSION_PORT"
is "$(printf '%s\n' $ports | sort -u | wc -l)" 6 "six distinct ports: $ports"

t0=$(now)
run_ok "dc_start" dc_start "$D"
diag "dovecot start: $(since "$t0") s"
at_exit "dc_stop '$D' >/dev/null"
PID=$(dc_pid "$D")
like "$PID" '^[0-9]+$' "master PID recorded ($PID)"

# ------------------------------------------------------------ delivery
t0=$(now)
run_ok "gen-mail.py 5 messages" "$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --quiet 5 "$T/gen"
diag "gen-mail (5): $(since "$t0") s"
is "$(ls "$T/gen" | wc -l)" 5 "5 .eml files generated"
run_ok "gen-mail.py is deterministic" sh -c \
    "'$MX_PY' '$MX_TOP_SRCDIR/bench/gen-mail.py' --quiet 5 '$T/gen2' && diff -r '$T/gen' '$T/gen2'"
is "$(dc_deliver "$D" "$A" "$T/gen")" 5 "dc_deliver: 5 generated messages accepted"
want=5

CORPUS="$MX_TOP_SRCDIR/../shared/corpus/real"
if [ -d "$CORPUS" ]; then
    set -- "$CORPUS/cpython-test-email/msg_02.txt" \
           "$CORPUS/mailgun-flanker/enclosed-broken.eml" \
           "$CORPUS/spamassassin-public-corpus"
    c1=$1; c2=$2
    c3=$(find "$3" -type f 2>/dev/null | sort | head -n 1)
    if [ -f "$c1" ] && [ -f "$c2" ] && [ -n "$c3" ]; then
        n=$(dc_deliver "$D" "$A" "$c1" "$c2" "$c3")
        is "$n" 3 "dc_deliver: 3 corpus files accepted"
        want=$((5 + n))
    else
        skip "corpus files not found"
    fi
else
    skip "corpus not found at $CORPUS"
fi

# ------------------------------------------------------------ imaptool
run_ok "digest over IMAPS with the test CA" dc_imap "$D" "$A" digest
DIG=$MX_OUT
is "$(printf '%s\n' "$DIG" | grep -c '^INBOX	')" "$want" "digest lists $want INBOX messages"
like "$DIG" '^INBOX	1	[0-9a-f]{64}	-$' "digest line format FOLDER\\tUID\\tSHA256\\tFLAGS"
h1=$(dc_imap "$D" "$A" fetch INBOX 1 | sha256sum | cut -d' ' -f1)
is "$(printf '%s\n' "$DIG" | awk -F'\t' '$1=="INBOX" && $2==1 {print $3}')" "$h1" \
    "digest hash = sha256 of the exact fetched bytes"
run_ok "STARTTLS on the plain port" dc_imap "$D" "$A" --starttls count INBOX
is "$MX_OUT" "$want" "count over STARTTLS"
run_ok "capability after login" dc_imap "$D" "$A" capability
for cap in CONDSTORE QRESYNC IDLE MOVE UIDPLUS SPECIAL-USE; do
    like "$MX_OUT" "(^| )$cap( |\$)" "server advertises $cap"
done
run_fails "wrong CA is rejected" dc_imap "$D" "$A" --ca "$DC_WRONG_CA" count INBOX
like "$MX_OUT" 'CERTIFICATE_VERIFY_FAILED' "... with a certificate error"
run_fails "wrong password is rejected" dc_imap "$D" "$A" --password wrong count INBOX
like "$MX_OUT" 'AUTHENTICATIONFAILED' "... with AUTHENTICATIONFAILED"
run_ok "XOAUTH2 with a minted token" dc_imap "$D" "$A" --xoauth2 "$(dc_token "$D" "$A")" login
run_fails "XOAUTH2 with an expired token fails" dc_imap "$D" "$A" --xoauth2 "$(dc_token "$D" "$A" -60)" login

run_ok "folders" dc_imap "$D" "$A" folders
for f in 'Archive	\\Archive' 'Junk	\\Junk' 'Drafts	\\Drafts' 'Sent	\\Sent' 'Trash	\\Trash' 'INBOX	-'; do
    like "$MX_OUT" "^$f	[0-9]+	[0-9]+	[0-9]+	[0-9]+\$" "folders: $(printf '%s' "$f" | tr '\t' ' ')"
done

run_ok "flag +\\Seen +\\Flagged" dc_imap "$D" "$A" flag INBOX 2 '+\Seen' '+\Flagged'
is "$(dc_imap "$D" "$A" flags INBOX 2)" '\Flagged \Seen' "flags shows them"
run_ok "flag -\\Flagged" dc_imap "$D" "$A" flag INBOX 2 '-\Flagged'
is "$(dc_imap "$D" "$A" flags INBOX 2)" '\Seen' "flag removed"
like "$(dc_imap "$D" "$A" digest --folder INBOX)" '^INBOX	2	[0-9a-f]{64}	\\Seen$' "digest shows flags"

h3=$(printf '%s\n' "$DIG" | awk -F'\t' '$1=="INBOX" && $2==3 {print $3}')
run_ok "move INBOX 3 -> Archive" dc_imap "$D" "$A" move INBOX 3 Archive
is "$MX_OUT" 1 "move prints the new UID (COPYUID)"
like "$(dc_imap "$D" "$A" digest --folder Archive)" "^Archive	1	$h3	-\$" "moved message is in Archive, same bytes"
is "$(dc_imap "$D" "$A" count INBOX)" $((want - 1)) "INBOX count after move"
run_ok "expunge INBOX 4" dc_imap "$D" "$A" expunge INBOX 4
is "$(dc_imap "$D" "$A" uids INBOX | tr '\n' ' ')" "$(seq 1 "$want" | grep -vx 3 | grep -vx 4 | tr '\n' ' ')" "UIDs after expunge"
run_fails "expunge of a missing UID fails" dc_imap "$D" "$A" expunge INBOX 999

run_ok "append a file" dc_imap "$D" "$A" append Junk "$T/gen/000001.eml" --flags '\Seen'
is "$MX_OUT" 1 "append prints the new UID (APPENDUID)"
subj=$(sed -n 's/^Subject: //p' "$T/gen/000001.eml" | head -n 1 | tr -d '\r')
case $subj in =\?*) subj= ;; esac
if [ -n "$subj" ]; then
    is "$(dc_imap "$D" "$A" search-header Junk Subject "$subj")" 1 "search-header finds it"
else
    skip "generated subject is encoded"
fi
is "$(dc_deliver "$D" "$A" --folder Archive "$T/gen/000002.eml")" 1 "dc_deliver --folder Archive"
is "$(dc_imap "$D" "$A" count Archive)" 2 "Archive has 2 messages"

is "$(dc_bulk_load "$D" bob@example.test --folder Sent "$T/gen")" 5 "dc_bulk_load: 5 messages into bob's Sent"
is "$(dc_imap "$D" bob@example.test uids Sent | tr '\n' ' ')" "1 2 3 4 5 " "bulk-loaded UIDs 1..5"
dc_imap "$D" bob@example.test fetch Sent 5 | cmp -s - "$T/gen/000005.eml"
ok $? "bulk-loaded UID 5 = 000005.eml byte for byte"

# ------------------------------------------------------------ UIDVALIDITY
before=$(dc_imap "$D" "$A" folders | awk -F'\t' '$1=="INBOX"')
cnt=$(dc_imap "$D" "$A" count INBOX)
nouid=$(dc_imap "$D" "$A" digest --no-uid --folder INBOX)
uv0=$(dc_uidvalidity "$D" "$A" INBOX)
uv1=$(dc_uidvalidity_reset "$D" "$A" INBOX)
ok $? "dc_uidvalidity_reset INBOX"
isnt "$uv1" "$uv0" "new UIDVALIDITY ($uv0 -> $uv1)"
is "$(dc_imap "$D" "$A" folders | awk -F'\t' '$1=="INBOX" {print $3}')" "$uv1" "IMAP STATUS shows the new UIDVALIDITY"
is "$(dc_imap "$D" "$A" count INBOX)" "$cnt" "message count unchanged"
is "$(dc_imap "$D" "$A" digest --no-uid --folder INBOX)" "$nouid" "contents and flags unchanged"
uv2=$(dc_uidvalidity_reset "$D" "$A" INBOX --renumber)
ok $? "dc_uidvalidity_reset --renumber"
isnt "$uv2" "$uv1" "new UIDVALIDITY again ($uv1 -> $uv2)"
is "$(dc_imap "$D" "$A" uids INBOX | tr '\n' ' ')" "$(seq 1 "$cnt" | tr '\n' ' ')" "UIDs renumbered 1..$cnt"
is "$(dc_imap "$D" "$A" digest --no-uid --folder INBOX)" "$nouid" "contents and flags unchanged after renumber"

# ------------------------------------------------------------ fakeimap
fake_start "$T/proxy" --mode proxy --to "127.0.0.1:$DC_IMAPS_PORT" --cut-after 5000
ok $? "fakeimap proxy started on port $FAKE_PORT"
run_fails "digest through the proxy is cut (first connection)" \
    dc_imap "$D" "$A" --port "$FAKE_PORT" --timeout 10 digest
like "$(cat "$FAKE_LOG")" '^cut 1 after 5000 bytes$' "proxy log: cut 1 after 5000 bytes"
run_ok "second connection through the proxy is not cut" \
    dc_imap "$D" "$A" --port "$FAKE_PORT" digest
is "$MX_OUT" "$(dc_imap "$D" "$A" digest)" "same digest through the proxy"
run_ok "fake_stop proxy" fake_stop "$T/proxy"

fake_start "$T/nostls" --mode nostarttls
ok $? "fakeimap nostarttls started on port $FAKE_PORT"
run_fails "--starttls against a server without STARTTLS fails" \
    "$MX_PY" "$MX_TOOLS/imaptool.py" --port "$FAKE_PORT" --starttls --ca "$DC_CA" \
    --user u --password secret-pw login
unlike "$(cat "$FAKE_LOG")" 'CREDENTIALS|secret-pw' "no credentials were sent"
like "$MX_OUT" 'TLS not supported|STARTTLS' "... with a STARTTLS error"
run_ok "--plain LOGIN is accepted (and logged)" \
    "$MX_PY" "$MX_TOOLS/imaptool.py" --port "$FAKE_PORT" --plain --user u --password secret-pw login
like "$(cat "$FAKE_LOG")" '^CREDENTIALS [0-9]+ LOGIN$' "log records CREDENTIALS"

fake_start "$T/garbage" --mode garbage
ok $? "fakeimap garbage started on port $FAKE_PORT"
t0=$(now)
run_fails "imaptool fails against garbage" \
    "$MX_PY" "$MX_TOOLS/imaptool.py" --port "$FAKE_PORT" --plain --timeout 2 --user u --password p count INBOX
diag "garbage run: $(since "$t0") s"

# ------------------------------------------------------------ wrong name
run_ok "dc_use_cert wrongname" dc_use_cert "$D" wrongname
t0=$(now)
run_ok "dc_restart" dc_restart "$D"
diag "dovecot restart: $(since "$t0") s"
isnt "$(dc_pid "$D")" "$PID" "new master PID after restart"
PID=$(dc_pid "$D")
run_fails "cert for the wrong name is rejected" dc_imap "$D" "$A" login
like "$MX_OUT" "Hostname mismatch|doesn't match|CERTIFICATE_VERIFY_FAILED" "... with a hostname error"
run_ok "... but accepted for --servername wrong.example.test" \
    dc_imap "$D" "$A" --servername wrong.example.test login

# ------------------------------------------------------------ stop
t0=$(now)
run_ok "dc_stop" dc_stop "$D"
diag "dovecot stop: $(since "$t0") s"
like "$MX_OUT" "^stopped $PID\$" "dc_stop reports the master PID"
if kill -0 "$PID" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$PID/status" 2>/dev/null; then
    fail "master PID $PID is gone"
else
    pass "master PID $PID is gone"
fi
is "$(ps -o pid= --ppid "$PID" 2>/dev/null | wc -l)" 0 "no children of $PID left"
run_fails "IMAPS port is closed" "$MX_PY" "$MX_TOOLS/imaptool.py" --port "$DC_IMAPS_PORT" \
    --ca "$DC_CA" --user "$A" --password x --timeout 2 login

done_testing
