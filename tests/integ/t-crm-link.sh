#!/bin/sh
# The CRM linking rules over a real Dovecot mailbox (doc/crm.md): mail is
# synced, contacts are added, `mxsync contact link` decides every stored
# message and `mxsync contact timeline` shows each contact's mail.  The
# scenario: a contact with an additional address, two colleagues in the
# mailbox's domain (internal mail), a Cc'd contact (mentioned, rule 5), a
# noreply sender and a mailing-list message (rule 11), a gmail.com contact
# (public domains are no organisation), mail from before the account was
# connected (rule 8, then --history), sent mail and a reply in its thread
# from someone else (rules 1, 6), a hard delete (rule 9, tombstone), and a
# second run that changes nothing.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
D=$T/dc
dc_setup "$D" alice@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"

run_ok "account a (alice@example.test)" mx_add a "$D" alice@example.test imaps
NOW=$(date -u -R)
n=0
msg() { # N HEADERS... (one argument a header line): writes $T/mN.eml
    n=$1; shift; f=$T/m$n.eml; : > "$f"
    for h in "$@"; do printf '%s\r\n' "$h" >> "$f"; done
    printf 'Date: %s\r\nMessage-ID: <m%d@t.example>\r\n\r\nbody %d\r\n' "${DATE:-$NOW}" "$n" "$n" >> "$f"
    echo "$f"
}
S="Subject:"
m1=$(msg 1 "From: Anna <anna@client.example>" "To: alice@example.test" "$S one")
m2=$(msg 2 "From: anna.home@home.example" "To: alice@example.test" "$S two")
m3=$(msg 3 "From: bob@example.test" "To: alice@example.test" "Cc: anna@client.example" "$S three")
m4=$(msg 4 "From: bob@example.test" "To: alice@example.test" "Cc: carol@example.test" "$S internal")
m5=$(msg 5 "From: NoReply@shop.example" "To: alice@example.test" "$S receipt")
m6=$(msg 6 "From: anna@client.example" "To: dev@lists.example" "List-Id: <dev.lists.example>" "$S list")
m7=$(msg 7 "From: friend@gmail.com" "To: alice@example.test" "$S gmail")
m8=$(DATE="Mon, 01 Jan 2001 10:00:00 +0000" msg 8 "From: anna@client.example" "To: alice@example.test" "$S old")
m9=$(msg 9 "From: alice@example.test" "To: dora@partner.example" "$S proposal")
m10=$(msg 10 "From: eve@partner.example" "To: alice@example.test" "In-Reply-To: <m9@t.example>" "References: <m9@t.example>" "$S Re: proposal")
is "$(dc_deliver "$D" alice@example.test $m1 $m2 $m3 $m4 $m5 $m6 $m7 $m8 $m9 $m10 2>"$T/deliver.err")" 10 "10 messages delivered"
run_ok "sync" mx sync a

run_ok "contact anna (additional anna.home@)" mx contact add anna --email anna@client.example --also anna.home@home.example
run_ok "contact gmail friend" mx contact add friend --email friend@gmail.com
run_ok "contact dora" mx contact add dora --email dora@partner.example
run_ok "contact link" mx contact link
like "$MX_OUT" "^10 messages decided, 5 linked" "10 decided, 5 linked (m1 m2 m7 m9 m10)"
tl() { mx contact timeline "$1" --json | "$MX_PY" -c '
import json,sys; d=json.load(sys.stdin)
print(" ".join("%s:%s" % (e["subject"], e["role"][0]) for e in sorted(d["timeline"], key=lambda e: e["subject"])))'; }
is "$(tl anna)" "one:l three:m two:l" "anna: by primary and additional address, mentioned in Cc of m3 (rules 1, 5); not the list mail or the old one"
is "$(tl friend)" "gmail:l" "a gmail.com contact links (public domain, rule 10)"
is "$(tl dora)" "Re: proposal:l proposal:l" "sent mail to dora (rule 1) and a reply from eve in its thread (rule 6)"
is "$(mx contact list | wc -l)" 3 "still 3 contacts (no auto-creation without --create)"

run_ok "a second run" mx contact link
like "$MX_OUT" "10 messages decided, 5 linked, 0 changed" "a second run changes nothing"
run_ok "history import" mx contact link --history
like "$MX_OUT" "6 linked, 1 changed" "--history links the mail from before the account was added (rule 8)"
is "$(tl anna)" "old:l one:l three:m two:l" "anna's timeline has the old message now"

run_ok "hard delete of anna" mx contact rm anna --hard
run_ok "link after the delete" mx contact link --history --create
like "$MX_OUT" "changed" "the delete changed links"
run_fails "anna has no timeline" mx contact timeline anna
is "$(mx contact list --json | "$MX_PY" -c 'import json,sys; print(sorted(c["email"] for c in json.load(sys.stdin)))')" \
    "['dora@partner.example', 'friend@gmail.com']" \
    "--create made no contact of anna's addresses (tombstones), noreply, the list, or colleagues"
mx events --json > "$T/events.json" 2>/dev/null
is "$("$MX_PY" -c 'import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.strip()] if open(sys.argv[1]).read(1)!="[" else json.load(open(sys.argv[1]))
print(sum(1 for e in ev if e["type"]=="message.unlinked"))' "$T/events.json")" 3 \
    "three message.unlinked events (m1, m2, m8)"
done_testing
