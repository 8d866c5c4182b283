#!/bin/sh
# POP3 accounts against a real Dovecot (POP3 with STLS on DC_POP3_PORT, POP3S
# on DC_POP3S_PORT): login by AUTH PLAIN, USER/PASS, OAUTHBEARER and XOAUTH2
# (token from the fake IdP), wrong password / expired token, STLS required;
# download by UIDL byte-exact, no re-download, only new mail, --pop3-delete
# only after commit, kill -9 mid-download then resume (each message once),
# the daemon polling a POP3 account; and a scripted hostile server
# (tools/fakepop3.py): overlong lines, bad/duplicate UIDLs, a missing
# terminating ".", STLS stripping and injection, temporary failures.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" alice@example.test bob@example.test carol@example.test \
    dave@example.test erin@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
. "$D/env"

# pop_add NAME USER pop3s|pop3 [account add args...]
pop_add() {
    _pn=$1; _pu=$2; _ps=$3; shift 3
    dc_password "$D" "$_pu" > "$MX_SCRATCH/$_pn.pw"
    if [ "$_ps" = pop3s ]; then _pp=$DC_POP3S_PORT; else _pp=$DC_POP3_PORT; fi
    mx account add "$_pn" --pop3 "$_ps://$_pu@127.0.0.1:$_pp" \
        --password-file "$MX_SCRATCH/$_pn.pw" --ca-file "$DC_CA" "$@"
}
new_of() { sed -n 's/^[^:]*: [0-9]* folders, \([0-9]*\) new messages.*/\1/p' "$1"; }
server_count() { dc_imap "$D" "$1" count INBOX; }

"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed 7 8 "$T/gen" >/dev/null
mkdir -p "$T/first" "$T/later"
mv "$T/gen/000001.eml" "$T/gen/000002.eml" "$T/gen/000003.eml" \
   "$T/gen/000004.eml" "$T/gen/000005.eml" "$T/first/"
mv "$T/gen/"*.eml "$T/later/"
is "$(dc_deliver "$D" alice@example.test "$T/first")" 5 "5 messages delivered to alice"

# ---- 1. password login (AUTH PLAIN over POP3S), byte-exact download
run_ok "add a POP3S account" pop_add p alice@example.test pop3s
like "$(mx account list --json)" '"pop3s://alice@example.test@' "account list shows the POP3 URL"
mx -D pop3 sync p >"$T/p1.out" 2>"$T/p1.err"; rc=$?
is "$rc" 0 "first sync succeeds"
is "$(new_of "$T/p1.out")" 5 "5 new messages"
like "$(cat "$T/p1.err")" '^mxsync: trace: C: AUTH PLAIN <redacted>$' "AUTH PLAIN chosen (SASL PLAIN offered)"
unlike "$(cat "$T/p1.out" "$T/p1.err")" 'alicepw|AGFsaWNl' "no password in any output or trace"
is "$(mx_export_digest p)" "$(dc_digest "$D" alice@example.test)" "stored bytes equal the server's (sha256 each)"
is "$(mx_count p INBOX)" 5 "5 messages in INBOX"
like "$(mx status p --json)" '"folder": "INBOX"' "status shows INBOX"
id=$(mx ls p --json | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
run_ok "show works for POP3 mail" mx show "$id"
run_fails "flag on POP3 mail is refused (no flags on a POP3 server)" mx flag "$id" --seen
like "$MX_OUT" 'is POP3' "says why"
# reauth logs in through the account's backend: POP3, not IMAP
mx -D pop3 account reauth p >"$T/ra.out" 2>"$T/ra.err"; rc=$?
is "$rc" 0 "account reauth on a POP3 account logs in"
like "$(cat "$T/ra.out")" 'login OK' "reauth says the login worked"
like "$(cat "$T/ra.err")" '^mxsync: trace: C: AUTH PLAIN <redacted>$' "reauth spoke POP3 (AUTH PLAIN)"
unlike "$(cat "$T/ra.out" "$T/ra.err")" 'greeting|alicepw' "no IMAP greeting error, no password"
is "$(mx events --json | grep -c '"message.new"')" 5 "5 message.new events"

mx sync p >"$T/p2.out" 2>&1
is "$(new_of "$T/p2.out")" 0 "re-run downloads nothing"
is "$(mx_count p)" 5 "still 5 messages"

is "$(dc_deliver "$D" alice@example.test "$T/later")" 3 "3 more delivered"
mx -D pop3 sync p >"$T/p3.out" 2>"$T/p3.err"
is "$(new_of "$T/p3.out")" 3 "only the 3 new ones downloaded"
is "$(grep -c 'C: RETR' "$T/p3.err")" 3 "3 RETR commands, no more"
is "$(mx_export_digest p)" "$(dc_digest "$D" alice@example.test)" "store equals server after new mail"
is "$(server_count alice@example.test)" 8 "without --pop3-delete the mail stays on the server"
# -D backend: the POP3 driver goes through the backend table
mx -D backend sync p >"$T/pb.out" 2>"$T/pb.err"
is "$(new_of "$T/pb.out")" 0 "traced re-run downloads nothing"
like "$(cat "$T/pb.err")" '^mxsync: trace: pop3 p: connect -> ok \([0-9]+ ms\)$' "-D backend traces the POP3 connect"
like "$(cat "$T/pb.err")" '^mxsync: trace: pop3 p: drop_list -> ok \([0-9]+ ms\)$' "-D backend traces the listing"
like "$(cat "$T/pb.err")" '^mxsync: trace: pop3 p: drop_commit -> ok \([0-9]+ ms\)$' "-D backend traces the QUIT"

# ---- 2. USER/PASS forced, over STLS
run_ok "add a pop3:// (STLS) account" pop_add pu alice@example.test pop3
MXSYNC_POP3_MECH=USER mx -D pop3 sync pu >"$T/pu.out" 2>"$T/pu.err"; rc=$?
is "$rc" 0 "USER/PASS login over STLS works"
like "$(cat "$T/pu.err")" 'C: STLS$' "STLS issued"
like "$(cat "$T/pu.err")" 'C: PASS <redacted>$' "PASS redacted in the trace"
unlike "$(cat "$T/pu.err")" 'alicepw' "no password in the trace"
is "$(new_of "$T/pu.out")" 8 "8 messages downloaded by the second account"

# ---- 3. wrong password
printf 'wrongpw\n' > "$MX_SCRATCH/bad.pw"
run_ok "add an account with a wrong password" mx account add bad \
    --pop3 "pop3s://alice@example.test@127.0.0.1:$DC_POP3S_PORT" \
    --password-file "$MX_SCRATCH/bad.pw" --ca-file "$DC_CA"
run_fails "wrong password fails" mx sync bad
is "$MX_RC" 5 "exit status 5 (credentials rejected)"
like "$MX_OUT" 'AUTH PLAIN rejected by server: \[AUTH\]' "the server's [AUTH] reply is reported"
MXSYNC_POP3_MECH=USER run_fails "wrong password fails with USER/PASS too" mx sync bad
is "$MX_RC" 5 "exit status 5"
run_fails "account reauth with a wrong password fails" mx account reauth bad
is "$MX_RC" 5 "reauth: exit status 5 (credentials rejected over POP3)"
like "$MX_OUT" 'AUTH PLAIN rejected by server: \[AUTH\]' "reauth reports the POP3 server's [AUTH] reply"

# ---- 4. OAuth2: OAUTHBEARER (default) and XOAUTH2, refresh, expired token
idp_start "$T/idp" "$D" --refresh refresh-alice=alice@example.test ||
    bail_out "fake_idp did not start"
printf 'refresh-alice\n' > "$T/rt"
printf 'test-secret\n' > "$T/cs"
oauth_add() { # NAME
    mx account add "$1" --pop3 "pop3s://alice@example.test@127.0.0.1:$DC_POP3S_PORT" \
        --ca-file "$DC_CA" --oauth-token-url "http://127.0.0.1:$IDP_PORT/token" \
        --oauth-client-id test-client --oauth-client-secret-file "$T/cs" \
        --refresh-token-file "$T/rt"
}
run_ok "add an OAuth2 POP3 account" oauth_add o
mx -D pop3 sync o >"$T/o.out" 2>"$T/o.err"; rc=$?
is "$rc" 0 "OAuth2 login works"
like "$(cat "$T/o.err")" 'C: AUTH OAUTHBEARER' "OAUTHBEARER chosen (strongest offered)"
is "$(new_of "$T/o.out")" 8 "8 messages downloaded with OAuth2"
unlike "$(cat "$T/o.out" "$T/o.err")" 'eyJ|refresh-alice' "no token in any output or trace"
run_ok "add a second OAuth2 POP3 account" oauth_add ox
MXSYNC_POP3_MECH=XOAUTH2 mx -D pop3 sync ox >"$T/ox.out" 2>"$T/ox.err"; rc=$?
is "$rc" 0 "XOAUTH2 login works"
like "$(cat "$T/ox.err")" 'C: AUTH XOAUTH2' "XOAUTH2 used"
unlike "$(cat "$T/ox.err")" 'eyJ' "no token in the XOAUTH2 trace"
# Tokens that Dovecot refuses: expired as soon as issued.  The client
# refreshes once after the refusal, then gives up (no loop).
idp_stop "$T/idp" >/dev/null
idp_start "$T/idp" "$D" --refresh refresh-alice=alice@example.test --lifetime -60 ||
    bail_out "fake_idp did not restart"
run_ok "add an OAuth2 account whose tokens come expired" oauth_add oe
n0=$(grep -c '"grant_type": "refresh_token"' "$IDP_LOG")
run_fails "expired token: login fails" mx sync oe
is "$MX_RC" 5 "exit status 5 (credentials rejected)"
like "$MX_OUT" 'AUTH OAUTHBEARER rejected by server: \[AUTH\]' "the [AUTH] reply after the failure challenge"
n1=$(grep -c '"grant_type": "refresh_token"' "$IDP_LOG")
is "$((n1 - n0))" 2 "one refresh ahead, one forced after the refusal, then stop"
MXSYNC_POP3_MECH=XOAUTH2 run_fails "expired token: XOAUTH2 fails too" mx sync oe
is "$MX_RC" 5 "exit status 5"

# ---- 5. --pop3-delete: removed from the server only after the commit
is "$(dc_deliver "$D" bob@example.test "$T/first")" 5 "5 messages delivered to bob"
run_ok "add a --pop3-delete account" pop_add pd bob@example.test pop3s --pop3-delete
mx -D pop3,sync sync pd >"$T/pd.out" 2>"$T/pd.err"; rc=$?
is "$rc" 0 "sync with --pop3-delete"
is "$(new_of "$T/pd.out")" 5 "5 new"
is "$(mx_count pd)" 5 "5 stored"
is "$(server_count bob@example.test)" 0 "and gone from the server"
"$MX_PY" - "$T/pd.err" <<'EOF'
import sys
lines = [l for l in open(sys.argv[1]) if 'trace: ' in l]
cmds = [l.split('trace: ', 1)[1].strip() for l in lines]
commit = next(i for i, c in enumerate(cmds) if 'committed' in c)
dele = [i for i, c in enumerate(cmds) if c.startswith('C: DELE')]
quit_ = [i for i, c in enumerate(cmds) if c == 'C: QUIT']
sys.exit(0 if dele and min(dele) > commit and quit_ and quit_[-1] > max(dele) else 1)
EOF
ok $? "DELE only after the commit, QUIT after the DELEs"
is "$(dc_deliver "$D" bob@example.test "$T/later")" 3 "3 more to bob"
mx sync pd >"$T/pd2.out" 2>&1
is "$(new_of "$T/pd2.out")" 3 "only the 3 new ones"
is "$(mx_count pd)" 8 "8 stored: deleted mail stays in the store"
is "$(server_count bob@example.test)" 0 "server empty again"

# ---- 6. kill -9 mid-download, then resume: each message exactly once
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed 11 400 "$T/big" >/dev/null
dc_bulk_load "$D" carol@example.test "$T/big" >/dev/null || bail_out "bulk load carol"
dc_bulk_load "$D" dave@example.test "$T/big" >/dev/null || bail_out "bulk load dave"
# kill_mid NAME: starts a sync with small batches, SIGKILLs it once at least
# one batch is committed; prints the count stored at the kill (or "done")
kill_mid() {
    # not the mx function: $! must be mxsync itself, not a subshell
    "$MX_BIN" -d "$MXD" sync "$1" --batch 4 >/dev/null 2>&1 &
    _kp=$!
    _i=0; _c=0
    while [ $_i -lt 1200 ]; do
        _c=$(mx_count "$1" 2>/dev/null || echo 0)
        [ "${_c:-0}" -ge 4 ] && break
        kill -0 $_kp 2>/dev/null || break
        sleep 0.025; _i=$((_i + 1))
    done
    if kill -KILL $_kp 2>/dev/null; then wait $_kp 2>/dev/null; echo "$_c"; else wait $_kp; echo done; fi
}
run_ok "add carol (keep on server)" pop_add k carol@example.test pop3s
at_kill=$(kill_mid k)
if [ "$at_kill" = done ] || [ "$(mx_count k)" -ge 400 ]; then
    skip "sync finished before the kill (machine too fast); resume not exercised"
else
    pass "killed with $(mx_count k) of 400 stored"
fi
run_ok "resume after kill -9" mx sync k
is "$(mx_count k)" 400 "400 messages: nothing lost, nothing twice"
is "$(mx_export_digest k | cut -f2 | sort -u | wc -l | tr -d ' ')" 400 "400 distinct blobs"
is "$(mx_export_digest k)" "$(dc_digest "$D" carol@example.test)" "store equals server"

# two syncs of one account at once (a CLI run while the daemon polls)
run_ok "add a second account on carol's maildrop" pop_add k2 carol@example.test pop3s
"$MX_BIN" -d "$MXD" sync k2 --batch 8 >"$T/c1.out" 2>&1 &
c1=$!
"$MX_BIN" -d "$MXD" sync k2 --batch 8 >"$T/c2.out" 2>&1
wait $c1
is "$(mx_count k2)" 400 "two concurrent syncs: 400 messages, none twice"
is "$(mx_export_digest k2)" "$(dc_digest "$D" carol@example.test)" "store equals server"

run_ok "add dave (--pop3-delete)" pop_add kd dave@example.test pop3s --pop3-delete
at_kill=$(kill_mid kd)
if [ "$at_kill" = done ]; then
    skip "sync finished before the kill; nothing to check"
else
    is "$(server_count dave@example.test)" 400 "killed before QUIT: nothing deleted on the server"
fi
run_ok "resume with --pop3-delete" mx sync kd
is "$(mx_count kd)" 400 "400 stored exactly once"
is "$(server_count dave@example.test)" 0 "all deleted on the server after the commit"

# ---- 7. the daemon polls POP3 accounts (no IDLE)
if [ -x "$MXSYNCD" ]; then
    is "$(dc_deliver "$D" erin@example.test "$T/first")" 5 "5 messages to erin"
    # only erin's account in the daemon's data dir: a separate one
    MXD_ALL=$MXD; MXD=$T/mxd2; mkdir -p "$MXD"
    printf '[daemon]\npoll_interval = 5\nworkers = 2\n' > "$MXD/mxsync.conf"
    run_ok "add erin to the daemon's store" pop_add e erin@example.test pop3s
    "$MXSYNCD" -d "$MXD" </dev/null >"$T/d.log" 2>&1 &
    DPID=$!
    at_exit "kill -TERM $DPID 2>/dev/null"
    wait_count() { # NAME N: up to 60 s
        _i=0
        while [ $_i -lt 600 ]; do
            [ "$(mx_count "$1" 2>/dev/null)" = "$2" ] && return 0
            sleep 0.1; _i=$((_i + 1))
        done
        return 1
    }
    wait_count e 5; ok $? "daemon: first sync stored 5"
    _i=0
    until mx status e --json 2>/dev/null | grep -q '"polling"'; do
        _i=$((_i + 1)); [ $_i -gt 300 ] && break; sleep 0.1
    done
    like "$(mx status e --json)" '"state": "polling"' "daemon: POP3 account is polling (no IDLE)"
    is "$(dc_deliver "$D" erin@example.test "$T/later")" 3 "3 more to erin"
    wait_count e 8; ok $? "daemon: the next poll downloaded them"
    kill -TERM $DPID; wait $DPID; is "$?" 0 "daemon stops cleanly"
    unlike "$(cat "$T/d.log")" 'erinpw' "no password in the daemon log"
    MXD=$MXD_ALL
else
    skip "mxsyncd not built"
fi

# ---- 8. STLS required, and a hostile POP3 server
# fake MODE: starts tools/fakepop3.py; sets FP_PORT, FP_LOG
fake() {
    tool_start "$T/fake-$1" fakepop3.py --mode "$1" --log "$T/fake-$1/log" ||
        bail_out "fakepop3 did not start"
    FP_PORT=$TOOL_PORT; FP_LOG=$T/fake-$1/log
}
printf 'secret\n' > "$MX_SCRATCH/f.pw"
# hostile MODE [--insecure-plaintext]: an account h-MODE on that server
hostile() {
    fake "$1"
    mx account add "h-$1" --pop3 "pop3://u@127.0.0.1:$FP_PORT" \
        --password-file "$MX_SCRATCH/f.pw" $2 >/dev/null
}

hostile nostls
run_fails "no STLS offered: refused" mx sync h-nostls
is "$MX_RC" 8 "exit status 8 (security)"
like "$MX_OUT" 'does not offer STLS' "says why"
unlike "$(cat "$FP_LOG")" '^CREDENTIALS' "no credentials sent"

hostile stlsinject
run_fails "bytes injected after the STLS answer: refused" mx sync h-stlsinject
like "$MX_OUT" 'before the TLS handshake' "says why"
unlike "$(cat "$FP_LOG")" '^CREDENTIALS' "no credentials sent"

hostile good --insecure-plaintext
run_ok "control: the scripted server syncs" mx sync h-good
is "$(mx_count h-good)" 2 "2 messages stored"
want=$("$MX_PY" -c 'import hashlib,sys
sys.path.insert(0, sys.argv[1]); import fakepop3
print("\n".join(sorted("INBOX\t" + hashlib.sha256(b).hexdigest() for _, b in fakepop3.MSGS)))' "$MX_TOOLS")
is "$(mx_export_digest h-good)" "$want" "dot-stuffed lines come back unstuffed, byte-exact"
like "$(cat "$FP_LOG")" '^QUIT [0-9]+ 0 deleted' "nothing deleted without --pop3-delete"

for m in overlong baduidl longuidl dupuidl listmismatch noterm; do
    hostile $m --insecure-plaintext
    run_fails "$m: sync fails" mx sync h-$m
    is "$MX_RC" 4 "$m: temporary error (exit 4), no crash"
    is "$(mx_count h-$m)" 0 "$m: nothing stored"
done
like "$(mx sync h-overlong 2>&1)" 'longer than 4096' "overlong: says the line was too long"
like "$(mx sync h-baduidl 2>&1)" 'character 0x01 in unique-id' "bad UIDL: names the bad byte"
like "$(mx sync h-longuidl 2>&1)" '71 characters' "long UIDL: gives the length"
like "$(mx sync h-dupuidl 2>&1)" 'same unique-id' "duplicate UIDL: says so"
like "$(mx sync h-noterm 2>&1)" 'no terminating' "missing terminator: says so"

hostile nouidl --insecure-plaintext
run_fails "no UIDL: refused" mx sync h-nouidl
like "$MX_OUT" 'does not support UIDL' "says UIDL is needed"
hostile tempfail --insecure-plaintext
run_fails "[SYS/TEMP]: fails" mx sync h-tempfail
is "$MX_RC" 4 "[SYS/TEMP] is temporary (exit 4), not an auth failure"
hostile inuse --insecure-plaintext
run_fails "[IN-USE]: fails" mx sync h-inuse
is "$MX_RC" 4 "[IN-USE] is temporary (exit 4)"
hostile badpass --insecure-plaintext
run_fails "[AUTH]: fails" mx sync h-badpass
is "$MX_RC" 5 "[AUTH] is an authentication failure (exit 5)"

done_testing
