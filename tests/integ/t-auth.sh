#!/bin/sh
# Login mechanisms across IMAP, POP3 and SMTP through mxsync accounts, with
# a real Dovecot validating OAuth2 bearer tokens (JWT, oauth2 passdb) and
# the fake token endpoint (tools/fake_idp.py, RFC 6749):
#   - the strongest mechanism the server offers is chosen: OAUTHBEARER, and
#     XOAUTH2 from a server that offers only that; AUTHENTICATE PLAIN for a
#     password, LOGIN from a server without AUTH=PLAIN;
#   - an access token that expires between runs is refreshed ahead of use
#     for IMAP, POP3 and SMTP alike;
#   - a revoked refresh token (invalid_grant) stops sending without a
#     request loop, and the mail stays queued;
#   - no password or token in the data directory, the CLI's outputs or the
#     traces.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
ALL=$T/all.out   # every CLI output of this test, grepped for secrets at the end
: > "$ALL"
# m ARGS...: mx with stdout+stderr in $MX_OUT (and $ALL), status in $MX_RC
m() {
    MX_OUT=$(mx "$@" 2>&1); MX_RC=$?
    printf '%s\n' "$MX_OUT" >> "$ALL"
    return $MX_RC
}

# Two Dovecots: B offers only PLAIN and XOAUTH2 (Dovecot needs PLAIN for
# password logins at all).
D=$T/dc; B=$T/dcb
dc_setup "$D" >/dev/null && dc_setup "$B" >/dev/null || bail_out "dc_setup failed"
printf 'auth_mechanisms = plain xoauth2\n' > "$B/local.conf"
# B's JWT key must accept the same tokens as A's: the same HMAC secret.
cp "$D/keys/secret.raw" "$B/keys/secret.raw"
cp "$D/keys/default/HS256/default" "$B/keys/default/HS256/default"
dc_start "$D" >/dev/null || bail_out "dovecot A did not start"
at_exit "dc_stop '$D' >/dev/null"
dc_start "$B" >/dev/null || bail_out "dovecot B did not start"
at_exit "dc_stop '$B' >/dev/null"
. "$B/env"; B_IMAPS=$DC_IMAPS_PORT; B_POP3S=$DC_POP3S_PORT; B_SUB=$DC_SUBMISSION_PORT
B_RELAY=$DC_RELAY_PORT; B_LMTP=$DC_LMTP_PORT
B_CA=$B/ssl/ca.pem  # each instance has its own test CA
. "$D/env"
diag "A: imaps $DC_IMAPS_PORT, B: imaps $B_IMAPS"

launch() { # NAME ARGS...: background python tool; its first stdout line -> $PORT
    _n=$1; shift
    : > "$T/$_n.port"
    ( "$MX_PY" "$@" </dev/null >"$T/$_n.port" 2>"$T/$_n.err" & echo $! > "$T/$_n.pid" )
    at_exit "kill \$(cat '$T/$_n.pid') 2>/dev/null"
    _i=0
    while [ ! -s "$T/$_n.port" ] && [ $_i -lt 200 ]; do sleep 0.025; _i=$((_i + 1)); done
    PORT=$(head -n 1 "$T/$_n.port")
    [ -n "$PORT" ] || bail_out "$_n did not start: $(cat "$T/$_n.err")"
}
# Submission relays through a sink into LMTP, for each Dovecot.
launch relayA "$MX_TOOLS/smtpsink.py" --port "$DC_RELAY_PORT" --relay-lmtp "$DC_LMTP_PORT" --dir "$T/ra"
launch relayB "$MX_TOOLS/smtpsink.py" --port "$B_RELAY" --relay-lmtp "$B_LMTP" --dir "$T/rb"
# Access tokens live 8 s: long enough for one command, short enough to
# expire between two.
launch idp "$MX_TOOLS/fake_idp.py" --secret-file "$D/keys/secret.raw" --log "$T/idp.log" \
    --lifetime 8 --refresh refresh-alice=alice@example.test \
    --refresh refresh-alice2=alice@example.test --refresh refresh-bob=bob@example.test
IDP=http://127.0.0.1:$PORT/token
refreshes() { grep -c '"grant_type": "refresh_token"' "$T/idp.log" 2>/dev/null || echo 0; }
printf 'refresh-alice\n' > "$T/rt"
printf 'refresh-bob\n' > "$T/rt-bob"
printf 'test-secret\n' > "$T/cs"
oauth() { # ARGS... : the OAuth2 options of account add
    printf '%s\n' --oauth-token-url "$IDP" --oauth-client-id test-client \
        --oauth-client-secret-file "$T/cs"
}
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 3 "$T/gen" >/dev/null
dc_deliver "$D" alice@example.test "$T/gen" >/dev/null
dc_deliver "$B" alice@example.test "$T/gen" >/dev/null
. "$D/env"   # the dc_* functions load the instance's env into this shell

# --- A: everything offered -> OAUTHBEARER / AUTHENTICATE PLAIN -------------
run_ok "OAuth2 account on A (IMAP + SMTP)" mx account add oa \
    --imap "imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT" --ca-file "$DC_CA" \
    $(oauth) --refresh-token-file "$T/rt" \
    --smtp "smtp://alice@example.test@127.0.0.1:$DC_SUBMISSION_PORT"
m -D imap sync oa; ok $? "IMAP sync with a token"
like "$MX_OUT" 'AUTHENTICATE OAUTHBEARER <redacted>' "IMAP: OAUTHBEARER chosen"
m -D smtp send oa --to bob@example.test --subject "auth A bearer" --body x
ok $? "SMTP send with a token"
like "$MX_OUT" 'C: AUTH OAUTHBEARER <redacted>' "SMTP: OAUTHBEARER chosen"
run_ok "OAuth2 POP3 account on A" mx account add pa \
    --pop3 "pop3s://alice@example.test@127.0.0.1:$DC_POP3S_PORT" --ca-file "$DC_CA" \
    $(oauth) --refresh-token-file "$T/rt"
m -D pop3 sync pa; ok $? "POP3 sync with a token"
like "$MX_OUT" 'AUTH OAUTHBEARER' "POP3: OAUTHBEARER chosen"
is "$(mx ls pa --json | "$MX_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" 3 \
    "POP3 downloaded the mail"
dc_password "$D" alice@example.test > "$T/pw"
run_ok "password account on A" mx account add wa \
    --imap "imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT" --ca-file "$DC_CA" \
    --password-file "$T/pw"
m -D imap sync wa; ok $? "IMAP sync with a password"
like "$MX_OUT" 'AUTHENTICATE PLAIN <redacted>' "IMAP: AUTHENTICATE PLAIN chosen over LOGIN"

# --- B: no OAUTHBEARER -> XOAUTH2 ------------------------------------------
run_ok "OAuth2 account on B" mx account add ob \
    --imap "imaps://alice@example.test@127.0.0.1:$B_IMAPS" --ca-file "$B_CA" \
    $(oauth) --refresh-token-file "$T/rt" \
    --smtp "smtp://alice@example.test@127.0.0.1:$B_SUB"
m -D imap sync ob; ok $? "IMAP sync on B"
like "$MX_OUT" 'AUTHENTICATE XOAUTH2 <redacted>' "IMAP: XOAUTH2 when it is all the server offers"
m -D smtp send ob --to bob@example.test --subject "auth B xoauth2" --body x
ok $? "SMTP send on B"
like "$MX_OUT" 'C: AUTH XOAUTH2 <redacted>' "SMTP: XOAUTH2 when it is all the server offers"
XMID=$(printf '%s\n' "$MX_OUT" | sed -n 's/^sent [0-9]* \(<[^>]*>\).*/\1/p')
is "$(dc_imap "$B" bob@example.test search-header INBOX Message-ID "$XMID" | grep -c .)" 1 \
    "XOAUTH2: delivered to bob's INBOX once"
is "$(dc_imap "$B" alice@example.test search-header Sent Message-ID "$XMID" | grep -c .)" 1 \
    "XOAUTH2: once in alice's Sent, same Message-ID"
. "$D/env"
run_ok "OAuth2 POP3 account on B" mx account add pb \
    --pop3 "pop3s://alice@example.test@127.0.0.1:$B_POP3S" --ca-file "$B_CA" \
    $(oauth) --refresh-token-file "$T/rt"
m -D pop3 sync pb; ok $? "POP3 sync on B"
like "$MX_OUT" 'AUTH XOAUTH2' "POP3: XOAUTH2 when it is all the server offers"
# --- the access token expires between runs: refreshed ahead of use --------
sleep 9
r0=$(refreshes)
m sync oa; ok $? "IMAP sync after the token expired"
m send oa --to bob@example.test --subject "auth after expiry" --body x
ok $? "SMTP send after the token expired"
like "$MX_OUT" '^sent ' "sent"
m sync pa; ok $? "POP3 sync after the token expired"
r1=$(refreshes)
[ "$r1" -gt "$r0" ]; ok $? "tokens were refreshed ($r0 -> $r1 requests)"
is "$(dc_imap "$D" bob@example.test search-header INBOX Subject "auth after expiry" | grep -c .)" 1 \
    "the mail sent after the refresh arrived"

# --- revoked refresh token: no loop, mail stays queued --------------------
run_ok "account with a refresh token about to be revoked" mx account add rv \
    --imap "imaps://bob@example.test@127.0.0.1:$DC_IMAPS_PORT" --ca-file "$DC_CA" \
    $(oauth) --refresh-token-file "$T/rt-bob" \
    --smtp "smtp://bob@example.test@127.0.0.1:$DC_SUBMISSION_PORT"
"$MX_PY" -c 'import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"{\"revoke\": \"refresh-bob\"}", method="POST")).read()' \
    "http://127.0.0.1:$(head -n 1 "$T/idp.port")/control"
r0=$(refreshes)
m send rv --to alice@example.test --subject "auth revoked" --body x
is "$MX_RC" 4 "revoked: not sent, exit 4 (queued)"
like "$MX_OUT" 'invalid_grant' "the token endpoint's answer is shown"
r1=$(refreshes)
is "$((r1 - r0))" 1 "one token request for the attempt, no loop"
m outbox run rv
r2=$(refreshes)
is "$((r2 - r1))" 0 "not due yet: no further token request"
like "$(mx outbox rv)" 'queued .*auth revoked' "the mail is still queued"

# --- secrets: nowhere in clear text ---------------------------------------
PW=$(cat "$T/pw")
found=0
for f in "$MXD"/*; do
    if grep -a -q -e "$PW" -e refresh-alice -e refresh-bob -e 'eyJ' "$f"; then
        diag "secret in clear text in $f"; found=1
    fi
done
is "$found" 0 "no password, refresh token or access token in the data directory"
grep -a -q -e "$PW" -e refresh-alice -e refresh-bob -e 'eyJ' "$ALL"
is "$?" 1 "none in any CLI output or trace of this test"
m account list --json
unlike "$MX_OUT" 'refresh-|eyJ|alicepw' "account list shows no secrets"
done_testing
