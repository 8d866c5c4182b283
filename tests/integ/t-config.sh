#!/bin/sh
# mxsyncd and a bad mxsync.conf (issue 12, minor findings): the daemon
# refuses to start, with one message that names the file, the line and
# what is wrong, for a directory given as the file, a section given twice,
# a webhook URL that is neither https:// nor loopback http://, and an
# unknown event type; on SIGHUP it keeps the old configuration and says
# so.  The parser's details are unit-tested in tests/unit/test_config.c.
# No server is needed: the daemon has no account.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"

[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
mx_tmpdir config; T=$MX_TMP
D=$T/data
C=$T/mxsync.conf

# A daemon that accepts the file runs until stopped: `timeout` (by PID)
# turns that into a failure (status 124) instead of a hung test.
# refused DESC ERE CONFIG-TEXT: mxsyncd -c $C exits 2 naming the problem once
refused() {
    printf '%s' "$3" > "$C"
    run_fails "$1: refused" timeout 20 "$MXSYNCD" -d "$D" -c "$C"
    is "$MX_RC" 2 "$1: exit status 2"
    like "$MX_OUT" "$2" "$1: the message names it"
    is "$(printf '%s\n' "$MX_OUT" | grep -c .)" 1 "$1: one message"
}

run_fails "-c DIR: refused" timeout 20 "$MXSYNCD" -d "$D" -c "$T"
is "$MX_RC" 2 "-c DIR: exit status 2"
like "$MX_OUT" "^mxsyncd: $T: not a regular file \\(a directory" "-c DIR: says it is a directory"

refused "duplicate account" \
    '^mxsyncd: .*mxsync\.conf:4: account sales defined twice \(lines 1 and 4\)$' \
    '[account sales]
folders = INBOX
# again:
[account sales]
enabled = no
'
refused "file:// webhook" \
    '^mxsyncd: .*mxsync\.conf:2: webhook crm: URL scheme must be https:// \(or http:// to a loopback address\), not file://$' \
    '[daemon]
[webhook crm]
url = file:///etc/passwd
secret = s3cret
'
refused "non-loopback http:// webhook" \
    '^mxsyncd: .*mxsync\.conf:1: webhook crm: refusing plain http:// to crm\.example\.com: use https://' \
    '[webhook crm]
url = http://crm.example.com/hook
secret = s3cret
'
refused "unknown event type" \
    '^mxsyncd: .*mxsync\.conf:1: webhook crm: unknown event type "message\.nwe" \(valid: message\.new, .*account\.quota, message\.linked, message\.unlinked, contact\.created\)$' \
    '[webhook crm]
url = https://crm.example.com/hook
secret = s3cret
events = message.new, message.nwe
'

# ---- SIGHUP with a bad file: the old configuration stays
printf '[webhook local]\nurl = http://127.0.0.1:9/hook\nsecret = s3cret\n' > "$C"
"$MXSYNCD" -d "$D" -c "$C" </dev/null >"$T/d.log" 2>&1 &
DPID=$!
at_exit '[ -z "$DPID" ] || kill -KILL "$DPID" 2>/dev/null'

# wait_log ERE: until the daemon's log has a matching line (at most 10 s)
wait_log() {
    i=0
    while ! grep -qE "$1" "$T/d.log" && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
    grep -qE "$1" "$T/d.log"
}
wait_log 'mxsyncd: info: mxsyncd .*data dir' || bail_out "mxsyncd did not start: $(cat "$T/d.log")"
printf '[webhook local]\nurl = file:///etc/passwd\nsecret = s3cret\n' > "$C"
kill -HUP "$DPID"
wait_log 'reload: '
like "$(cat "$T/d.log")" '^mxsyncd: error: reload: .*mxsync\.conf:1: webhook local: URL scheme must be https:// .*not file://; keeping the old configuration$' \
    "SIGHUP, bad file: refused, old configuration kept"
unlike "$(cat "$T/d.log")" 'webhook local: webhook local' "SIGHUP, bad file: the prefix is not doubled"
kill -0 "$DPID" 2>/dev/null; ok $? "SIGHUP, bad file: still running"
printf '[webhook local]\nurl = http://127.0.0.1:9/hook\nsecret = s3cret\n' > "$C"
kill -HUP "$DPID"
wait_log 'configuration reloaded'
like "$(cat "$T/d.log")" 'configuration reloaded' "SIGHUP, good file: reloaded"
kill -TERM "$DPID"
wait "$DPID"
is "$?" 0 "clean exit on SIGTERM"
DPID=

done_testing
