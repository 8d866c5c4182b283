#!/bin/sh
# Secrets at rest end to end against a real Dovecot: a password given at
# 'account add' (MXSYNC_PASSWORD) is found neither in the store files nor
# in any output of the CLI (including the -D imap trace); the key file is
# 0600 in a 0700 data dir; without the key, with a wrong one or with a key
# file open to others, sync fails with a clear error (never garbage, never
# a new key); with the key restored it works again.  The same with the key
# in $MXSYNC_KEY.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
command -v openssl >/dev/null || skip_all "openssl not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
unset MXSYNC_KEY MXSYNC_KEY_FILE MXSYNC_PASSWORD MXSYNC_TRACE
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
U=carol@example.test
PW=Zq7-Quokka-Sekr1t-Xylophon-4242   # distinctive: any hit is a leak
dc_setup "$D" "$U:$PW" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
URL="imaps://$U@127.0.0.1:$DC_IMAPS_PORT"

# Every output of the CLI in this test goes to $OUTS as well.
OUTS=$T/outputs
: > "$OUTS"
keep() { printf '%s\n' "$MX_OUT" >> "$OUTS"; }
# no_leak DESC FILE... -- the password is in none of the files
no_leak() {
    _what=$1; shift
    if grep -a -F -l -- "$PW" "$@" >/dev/null 2>&1; then
        fail "$_what"
        diag "password found in: $(grep -a -F -l -- "$PW" "$@" 2>/dev/null)"
    else
        pass "$_what"
    fi
}

# the grep sees the password where it is expected (a positive control)
grep -a -F -q -- "$PW" "$D/users"
ok $? "control: grep finds the password in Dovecot's passwd-file"

"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 4 "$T/gen" >/dev/null
is "$(dc_deliver "$D" $U "$T/gen" 2>/dev/null)" 4 "4 messages delivered"

run_ok "account add with MXSYNC_PASSWORD" env MXSYNC_PASSWORD="$PW" \
    "$MX_BIN" -d "$MXD" account add s --imap "$URL" --ca-file "$DC_CA"
keep
is "$(stat -c %a "$MXD")" 700 "data dir is 0700"
is "$(stat -c %a "$MXD/secret.key" 2>&1)" 600 "key file created 0600"
is "$(stat -c %s "$MXD/secret.key" 2>&1)" 32 "key file holds 32 bytes"

run_ok "sync with the sealed password (-D imap trace)" mx -D imap sync s
keep
like "$MX_OUT" "4 new messages" "4 new messages synced"
like "$MX_OUT" "redacted" "the trace shows the login as redacted"
run_ok "second sync" mx -v sync s
keep

run_ok "account list" mx account list; keep
run_ok "account list --json" mx account list --json; keep
like "$MX_OUT" '"credentials": "stored"' "--json says the password is stored"
unlike "$MX_OUT" 'v1:' "--json shows no sealed value either"
run_ok "status" mx status; keep
run_ok "status --json" mx status --json; keep
run_ok "ls --json" mx ls s --json; keep
ID=$(printf '%s\n' "$MX_OUT" | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
run_ok "show --json" mx show "$ID" --json; keep
run_ok "events --json" mx events --json; keep
run_ok "export" mx export s --format maildir --out "$T/exp"; keep

no_leak "password not in data.mdb or lock.mdb" "$MXD/data.mdb" "$MXD/lock.mdb"
no_leak "password nowhere in the data dir" $(find "$MXD" -type f)
no_leak "password in no CLI output (list, status, ls, show, events, sync, trace)" "$OUTS"
ok $(grep -a -q 'v1:' "$MXD/data.mdb"; echo $?) "data.mdb holds a sealed value (v1:)"
ok $(grep -a -q '"password"' "$MXD/data.mdb"; echo $?) "the record still has its password field"

# ---- without the key
mv "$MXD/secret.key" "$T/saved.key"
run_fails "sync without the key file fails" mx sync s; keep
like "$MX_OUT" "cannot decrypt account s's secrets: key file .*secret.key is missing" \
    "clear error: key file missing"
ok $([ ! -e "$MXD/secret.key" ]; echo $?) "no new key was made in its place"
run_fails "status without the key fails too" mx status; keep
like "$MX_OUT" "secret.key is missing" "status says why"

# ---- a wrong key
head -c 32 /dev/urandom > "$MXD/secret.key"; chmod 600 "$MXD/secret.key"
run_fails "sync with a wrong key file fails" mx sync s; keep
like "$MX_OUT" "cannot decrypt account s's secrets: wrong key \(MXSYNC_KEY / .*secret.key\)" \
    "clear error: wrong key"
unlike "$MX_OUT" "login rejected|AUTHENTICATIONFAILED" "no login attempted with garbage"
run_fails "sync with a wrong MXSYNC_KEY fails" env MXSYNC_KEY="$(openssl rand -base64 32)" \
    "$MX_BIN" -d "$MXD" sync s; keep
like "$MX_OUT" "wrong key" "clear error: wrong key (MXSYNC_KEY)"
run_fails "a malformed MXSYNC_KEY is refused" env MXSYNC_KEY=not-a-key \
    "$MX_BIN" -d "$MXD" sync s; keep
like "$MX_OUT" "MXSYNC_KEY must be the base64 of exactly 32 bytes" "says what MXSYNC_KEY must be"

# ---- the right key, too open
cp "$T/saved.key" "$MXD/secret.key"; chmod 644 "$MXD/secret.key"
run_fails "a key file readable by others is refused" mx sync s; keep
like "$MX_OUT" "key file .*secret.key has mode 0644.*chmod 600" "names the file and the fix"

# ---- restored
chmod 600 "$MXD/secret.key"
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 1 "$T/gen2" >/dev/null
dc_deliver "$D" $U "$T/gen2" >/dev/null 2>&1
run_ok "with the key restored, sync works again" mx sync s; keep
like "$MX_OUT" " 1 new message" "and picks up the new message"
cmp -s "$T/saved.key" "$MXD/secret.key"
ok $? "the key file was not rewritten"

# ---- the key in $MXSYNC_KEY (no key file)
M2=$T/mx2
K=$(openssl rand -base64 32)
run_ok "account add with MXSYNC_KEY" env MXSYNC_KEY="$K" MXSYNC_PASSWORD="$PW" \
    "$MX_BIN" -d "$M2" account add e --imap "$URL" --ca-file "$DC_CA"; keep
ok $([ ! -e "$M2/secret.key" ]; echo $?) "no key file with MXSYNC_KEY"
run_ok "sync with MXSYNC_KEY" env MXSYNC_KEY="$K" "$MX_BIN" -d "$M2" sync e; keep
run_fails "sync without MXSYNC_KEY fails" "$MX_BIN" -d "$M2" sync e; keep
like "$MX_OUT" "cannot decrypt account e's secrets: key file .* is missing and MXSYNC_KEY is not set" \
    "clear error: no key"
run_ok "MXSYNC_KEY again: works" env MXSYNC_KEY="$K" "$MX_BIN" -d "$M2" sync e; keep
no_leak "password nowhere in the second data dir" $(find "$M2" -type f)

no_leak "password in no output of the whole test" "$OUTS"
done_testing
