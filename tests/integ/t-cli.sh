#!/bin/sh
# The CLI against bad input: numeric options (strict, with their range),
# control characters from servers and messages (escaped on the terminal),
# export file modes, FIFOs as attachments, corrupt records named by ls and
# export, and cut address lists.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
command -v mdb_load >/dev/null || skip_all "mdb_load not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
ESC=$(printf '\033')

"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 8 "$T/gen" >/dev/null
is "$(dc_deliver "$D" $U "$T/gen")" 8 "generated mail delivered"
# ESC sequences in the subject (RFC 2047, as a sender would hide them) and
# raw in the body: retitle the terminal, clear the screen.
mkdir "$T/evil"
printf 'From: Mallory <m@example.test>\r\nTo: alice@example.test\r\nSubject: =?utf-8?q?=1B]0;pwned=07_=1B[31mred=1B[0m=7Fdel=C2=9Bcsi?=\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <evil@example.test>\r\n\r\nline one\r\n\033[2Jcleared\r\n' > "$T/evil/1.eml"
# 2,500 To recipients, folded: more than the parser keeps.
"$MX_PY" - "$T/evil/2.eml" <<'PY'
import sys
rc = ",\r\n ".join("u%d@example.test" % i for i in range(2500))
open(sys.argv[1], "wb").write((
    "From: big@example.test\r\nTo: " + rc + "\r\nSubject: many\r\n"
    "Date: Mon, 1 Jan 2024 09:00:00 +0000\r\nMessage-ID: <many@example.test>\r\n"
    "\r\nbody\r\n").encode())
PY
is "$(dc_deliver "$D" $U "$T/evil")" 2 "hostile messages delivered"
# Dovecot refuses control characters in folder names; a scripted server
# has one with an ESC sequence, BEL and a C1 control (CSI).
tool_start "$T/h" hostileimap.py --scenario control-names || bail_out "hostileimap"
printf 'pw\n' > "$T/h.pw"

run_ok "account add" mx_add a "$D" $U imaps
run_ok "account add (scripted server)" mx account add h --imap "imap://u@127.0.0.1:$TOOL_PORT" \
    --password-file "$T/h.pw" --insecure-plaintext --timeout 10

# ---- numeric options: strict, named, with their range; nothing written
for v in -1 4294967295 18446744073709551617 abc 0 10001 "" " 5" "+5" 5x; do
    run_fails "sync --batch '$v' refused" mx sync a --batch "$v"
    is "$MX_RC" 2 "sync --batch '$v': usage exit status"
    like "$MX_OUT" "^mxsync: sync: --batch: '$(printf %s "$v" | sed 's/[+]/[+]/')' is not a number from 1 to 10000\$" \
        "sync --batch '$v': the message names the option and its range"
done
is "$(mx_count a)" 0 "refused syncs stored nothing"
is "$(mdb_stat -s messages "$MXD" 2>/dev/null | sed -n 's/.*Entries: //p')" 0 \
    "no message record written"
run_fails "account add --timeout abc refused" mx_add b "$D" $U imaps --timeout abc
like "$MX_OUT" "account add: --timeout: 'abc' is not a number from 1 to 3600" "--timeout abc named"
run_fails "account add --timeout -5 refused" mx_add b "$D" $U imaps --timeout -5
run_fails "account b was not created" mx status b
is "$MX_RC" 3 "status b: no such account"
run_fails "account discover --timeout abc refused" mx account discover x@example.test --timeout abc
like "$MX_OUT" "discover: --timeout: 'abc' is not a number" "discover --timeout named"
for v in abc -1 0 99999999999999999999; do
    run_fails "ls --limit '$v' refused" mx ls a --limit "$v"
    is "$MX_RC" 2 "ls --limit '$v': usage exit status"
    like "$MX_OUT" "^mxsync: ls: --limit: '$v' is not a number from 1 to " "ls --limit '$v' named"
done
run_fails "events --limit abc refused" mx events --limit abc
like "$MX_OUT" "events: --limit: 'abc' is not a number from 1 to " "events --limit named"
run_fails "events --after -1 refused" mx events --after -1

# the daemon's configuration uses the same parser: no sign
: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"
for v in +4 -1 4x 99999999999999999999; do
    printf '[daemon]\nworkers = %s\n' "$v" > "$T/d.conf"
    run_fails "mxsyncd refuses workers = $v" timeout 20 "$MXSYNCD" -d "$MXD" -c "$T/d.conf"
    isnt "$MX_RC" 124 "mxsyncd with workers = $v did not start"
    like "$MX_OUT" "d.conf:2: bad \\[daemon\\] setting 'workers = " "workers = $v: file, line and setting named"
done

run_ok "sync in batches of 3" mx sync a --batch 3
is "$(mx_count a)" 10 "every message stored"
run_ok "sync of control-character folder names" mx sync h
case $MX_OUT in *"$ESC"*) fail "sync prints no raw ESC";; *) pass "sync prints no raw ESC";; esac

# ---- ls --limit
run_ok "ls --limit 5" mx ls a --limit 5
is "$(printf '%s\n' "$MX_OUT" | wc -l)" 5 "ls --limit 5 prints 5 lines"
is "$(mx ls a --json --limit 2 | "$MX_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')" 2 \
    "ls --json --limit 2 lists 2"

# ---- control characters escaped in every human-readable output
run_ok "ls" mx ls a
case $MX_OUT in *"$ESC"*) fail "ls prints no raw ESC";; *) pass "ls prints no raw ESC";; esac
like "$MX_OUT" '\\x1b\]0;pwned\\x07 \\x1b\[31mred\\x1b\[0m' "ls shows the subject escaped"
run_ok "ls (scripted server)" mx ls h
case $MX_OUT in *"$ESC"*) fail "ls prints no raw ESC";; *) pass "ls prints no raw ESC";; esac
like "$MX_OUT" 'Bad\\x1b\[31mBox  .*Bad\\x1b\[31mBox\\x07&AJs-X message 1$' \
    "ls shows folder and subject escaped"
like "$MX_OUT" '  Csi\\u009b31m  ' "ls shows a C1 control in a folder name escaped"
EVIL=$(mx ls a --json | "$MX_PY" -c 'import json,sys
print([m["id"] for m in json.load(sys.stdin) if m.get("message_id") == "evil@example.test"][0])')
MANY=$(mx ls a --json | "$MX_PY" -c 'import json,sys
print([m["id"] for m in json.load(sys.stdin) if m.get("message_id") == "many@example.test"][0])')
run_ok "show" mx show "$EVIL"
case $MX_OUT in *"$ESC"*) fail "show prints no raw ESC";; *) pass "show prints no raw ESC";; esac
like "$MX_OUT" '^Subject: \\x1b\]0;pwned\\x07 \\x1b\[31mred\\x1b\[0m\\x7fdel\\u009bcsi$' "show: subject escaped"
like "$MX_OUT" '^\\x1b\[2Jcleared' "show: body text escaped"
like "$MX_OUT" '^line one' "show: body lines kept"
unlike "$MX_OUT" 'x0d' "show: CRLF kept as a line end"
mx show "$EVIL" --raw > "$T/raw.eml"
ok $(grep -q "$ESC\[2Jcleared" "$T/raw.eml"; echo $?) "show --raw gives the bytes as stored"
run_ok "status" mx status h
case $MX_OUT in *"$ESC"*) fail "status prints no raw ESC";; *) pass "status prints no raw ESC";; esac
like "$MX_OUT" '^  Bad\\x1b\[31mBox\\x07&AJs-X ' "status shows the folder escaped"
like "$MX_OUT" '^  Csi\\u009b31m ' "status shows a C1 control escaped"
run_ok "show --json" mx show "$EVIL" --json
like "$MX_OUT" '\\u001[bB]\[31mred' "show --json: JSON-escaped"
case $MX_OUT in *"$ESC"*) fail "show --json prints no raw ESC";; *) pass "show --json prints no raw ESC";; esac
# JSON allows DEL and C1 controls raw; some terminals obey C1 (CSI)
like "$MX_OUT" '\\u007fdel\\u009bcsi' "show --json: DEL and C1 escaped as \\u"
is "$(printf '%s' "$MX_OUT" | LC_ALL=C grep -c "$(printf '\177\\|\302\233')")" 0 \
    "show --json prints no raw DEL or C1"
is "$(printf '%s' "$MX_OUT" | "$MX_PY" -c 'import json,sys; print(ascii(json.load(sys.stdin)["subject"][-8:]))')" \
    "'\\x7fdel\\x9bcsi'" "show --json: the same subject, decoded"

# ---- a To list cut at 2000 says so
run_ok "show --json of 2,500 recipients" mx show "$MANY" --json
like "$MX_OUT" '"addresses_truncated": true' "show --json: addresses_truncated"
is "$(printf '%s' "$MX_OUT" | "$MX_PY" -c 'import json,sys; print(len(json.load(sys.stdin)["to"]))')" 2000 \
    "the first 2000 recipients kept"
run_ok "show of 2,500 recipients" mx show "$MANY"
like "$MX_OUT" '^Warning: an address list was cut at its first 2000 entries$' "show warns"
run_ok "show --json of an ordinary message" mx show "$EVIL" --json
unlike "$MX_OUT" 'addresses_truncated' "no flag on a whole list"

# ---- export file modes
run_ok "mbox export" mx export a --format mbox --out "$T/mbox"
is "$(find "$T/mbox" -type f -name '*.mbox' ! -perm 0600 | wc -l)" 0 "mbox files are 0600"
ok $([ "$(find "$T/mbox" -type f -name '*.mbox' | wc -l)" -ge 2 ]; echo $?) "mbox files written"
run_ok "maildir export" mx export a --format maildir --out "$T/md"
is "$(find "$T/md" -type f ! -perm 0600 | wc -l)" 0 "maildir files are 0600"

# ---- a FIFO as an attachment is refused at once
mkfifo "$T/fifo"
run_ok "account with SMTP" mx_add s "$D" $U imaps --smtp "smtp+plain://127.0.0.1:1" --email $U
run_fails "send --attach FIFO refused" timeout 20 "$MX_BIN" -d "$MXD" send s --to bob@example.test \
    --subject fifo --body x --attach "$T/fifo" --queue-only
isnt "$MX_RC" 124 "send --attach FIFO did not hang"
like "$MX_OUT" "attachment $T/fifo: not a regular file" "the FIFO is named"
is "$(mx outbox list s 2>/dev/null | grep -c fifo)" 0 "nothing queued"

# ---- one corrupt message record: named by ls and export, the rest go on
mdb_dump -s messages "$MXD" > "$T/messages.dump" || bail_out "mdb_dump failed"
sed '/^HEADER=END$/q' "$T/messages.dump" > "$T/corrupt.dump"
K=$(mx ls a --json | "$MX_PY" -c 'import json,sys
print([m["id"] for m in json.load(sys.stdin) if m.get("subject") == "many"][0])')
printf ' %s\n 7b\nDATA=END\n' "$K" >> "$T/corrupt.dump"
mdb_load -s messages -f "$T/corrupt.dump" "$MXD" 2>/dev/null || bail_out "mdb_load failed"
run_ok "ls with a corrupt record" mx ls a
like "$MX_OUT" "message $K: unreadable record skipped" "ls names the corrupt record"
is "$(printf '%s\n' "$MX_OUT" | grep -vc 'unreadable record')" 9 "ls lists the other 9"
"$MX_BIN" -d "$MXD" export a --format maildir --out "$T/md2" > "$T/exp.out" 2> "$T/exp.err"
rc=$?
isnt "$rc" 0 "export with a corrupt record exits non-zero"
like "$(cat "$T/exp.err")" "message $K \(INBOX UID [0-9]+\): unreadable record skipped" \
    "export names the corrupt record"
like "$(cat "$T/exp.err")" "1 message\(s\) not exported" "export says how many were skipped"
is "$(find "$T/md2" -path '*/cur/*' -type f | wc -l)" 9 "export wrote the other 9"

done_testing
