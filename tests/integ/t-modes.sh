#!/bin/sh
# `mxsync modes`: the table of modes is generated from the backends'
# tables, so what it says must agree with their capability bits: a POP3
# row with two-way flags or an IMAP row without push by IDLE is a lie to
# the user choosing a mode.  Also: every registered backend states every
# fact (no "-"), --json and the text table show the same backends, and a
# bad option is a usage error.  No server needed.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
mx_init "$T"

run_ok "modes --json" mx modes --json
mx modes --json > "$T/modes.json" 2>"$T/err"
mx modes > "$T/modes.txt" 2>>"$T/err"
is "$(cat "$T/err")" "" "nothing on stderr"

# Per backend, the facts the caps decide, and that nothing is unstated.
# An API-mode backend (no bodies stored) is checked once it is registered.
"$MX_PY" - "$T/modes.json" > "$T/check" <<'PY'
import json, sys
modes = json.load(open(sys.argv[1]))
names = [m["name"] for m in modes]
print("names " + ",".join(names))
for m in modes:
    caps = set(m["caps"])
    bad = []
    if m["push"] != ("idle" in caps): bad.append("push")
    if not m["new_mail"].startswith("push: " if m["push"] else "poll: "):
        bad.append("new_mail")
    if m["two_way_flags"] != ("two_way_flags" in caps): bad.append("two_way_flags")
    if m["stores_bodies"] != ("stores_bodies" in caps): bad.append("stores_bodies")
    if m["sends_by"] != ("the backend" if "send" in caps else "SMTP"):
        bad.append("sends_by")
    want_copy = ("filed by the provider" if "send" in caps else
                 "APPENDed once (unless the provider saves it)"
                 if {"model_uid", "search", "append"} <= caps else "none")
    if m["sent_copy"] != want_copy: bad.append("sent_copy")
    for k in ("title", "description", "new_mail", "folders", "stored",
              "offline", "limits"):
        if not m[k] or m[k] == "-" or m[k].endswith(": -"): bad.append(k)
    models = caps & {"model_uid", "model_drop", "model_changes"}
    if len(models) != 1: bad.append("model")
    print("%s %s" % (m["name"], ",".join(bad) or "consistent"))
    print("%s push=%s flags=%s copy=%s bodies=%s folders=%s" % (
        m["name"], m["push"], m["two_way_flags"], m["sent_copy"],
        m["stores_bodies"], m["folders"]))
    if not m["stores_bodies"]:
        print("api %s" % ("ok" if m["sends_by"] == "the backend" and
                          not m["push"] and "body" in m["offline"]
                          else "wrong"))
PY
like "$(grep '^names ' "$T/check")" '^names imap,pop3' "IMAP and POP3 are listed first"
is "$(grep '^imap ' "$T/check" | head -1)" "imap consistent" "IMAP row agrees with its caps"
is "$(grep '^pop3 ' "$T/check" | head -1)" "pop3 consistent" "POP3 row agrees with its caps"
is "$(grep -c ' consistent$' "$T/check")" "$(grep -c '^[a-z0-9]* push=' "$T/check")" \
   "every backend's row agrees with its caps"
like "$(grep '^imap push=' "$T/check")" 'push=True flags=True copy=APPENDed' \
     "IMAP: push, two-way flags, APPENDed Sent copy"
like "$(grep '^pop3 push=' "$T/check")" 'push=False flags=False copy=none bodies=True folders=INBOX only' \
     "POP3: polled, no two-way flags, no Sent copy, INBOX only"
if grep -q '^api ' "$T/check"; then
    is "$(grep '^api ' "$T/check")" "api ok" \
       "API mode: polled, sends itself, says the body is not kept offline"
else
    pass "no API-mode backend registered yet"
fi

# The text table: one column per backend, the same facts.
hdr=$(head -1 "$T/modes.txt")
missing=$("$MX_PY" -c 'import json,sys
h=sys.argv[2]
print(",".join(m["title"] for m in json.load(open(sys.argv[1])) if m["title"] not in h))' "$T/modes.json" "$hdr")
is "$missing" "" "text header names every backend"
like "$hdr" '^ *IMAP +POP3' "text header: IMAP then POP3"
like "$(grep '^two-way flags' "$T/modes.txt")" '^two-way flags +yes +no' \
     "text: two-way flags yes for IMAP, no for POP3"
like "$(grep '^new mail' "$T/modes.txt")" '^new mail +push: .*poll: ' \
     "text: IMAP pushed, POP3 polled"
grep -q 'IDLE' "$T/modes.txt" && pass "text: IMAP says IDLE" || fail "text: IMAP says IDLE"
unlike "$(cat "$T/modes.txt")" ' $' "text: no trailing blanks"

run_fails "modes --bogus fails" mx modes --bogus
mx modes --bogus >/dev/null 2>"$T/err"; rc=$?
is "$rc" 2 "bad option: exit 2"
like "$(cat "$T/err")" "unknown option '--bogus'" "bad option named"
like "$(mx modes --help)" 'usage: mxsync modes' "--help prints usage"
like "$(mx --help)" 'modes \[--json\]' "modes is in the main usage"

done_testing
