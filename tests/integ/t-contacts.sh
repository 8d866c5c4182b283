#!/bin/sh
# mxsync contact (doc/crm.md, "Contacts"), through the CLI on a real
# store: add, edit, show, list, soft and hard delete (tombstones), bulk
# import of 10,000 contacts from JSON Lines (time reported), and bad input
# refused with a message naming what is wrong, changing nothing.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
js() { "$MX_PY" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

run_ok "contact add creates the store and the contact" \
    mx contact add c1 --email Anna@Client.EXAMPLE --also anna@home.example \
    --also Anna@client.example --category customer --workspace w1 --owner u1
like "$MX_OUT" "contact c1 created" "add says created"
is "$(mx contact show c1 | js 'd["email"]')" "Anna@client.example" \
    "the domain is lower-cased, the local part kept as written"
is "$(mx contact show c1 | js 'd["emails"]')" "['anna@home.example']" \
    "additional addresses: normalized, the primary and duplicates dropped"
run_ok "contact edit changes only what is given" mx contact edit c1 --company client.example
is "$(mx contact show c1 | js 'd["company"], d["owner"], d["workspace"]')" \
    "client.example u1 w1" "edit kept owner and workspace"
run_ok "a second contact" mx contact add c2 --email bob@x.example
is "$(mx contact list | wc -l)" 2 "list: 2 contacts"
run_ok "soft delete" mx contact rm c2
is "$(mx contact show c2 | js 'd["deleted"]')" "True" "soft-deleted contact kept, marked deleted"
run_ok "hard delete" mx contact rm c2 --hard
run_fails "show after hard delete fails" mx contact show c2
like "$MX_OUT" "no contact c2" "it says there is no such contact"
run_fails "hard delete of a missing contact fails" mx contact rm c2 --hard

# bad input: refused, named, nothing changed
before=$(mx contact list --json)
run_fails "an address that is not one" mx contact add c3 --email 'not an address'
like "$MX_OUT" '"email" must be an address' "the error names the member"
run_fails "edit of a missing contact" mx contact edit nobody --owner u2
run_fails "an unknown option" mx contact add c3 --email c@x.example --colour red
is "$(mx contact list --json)" "$before" "the refused commands changed nothing"

# bulk import: 10,000 contacts, then a file with a bad line
"$MX_PY" -c '
import json
for i in range(10000):
    print(json.dumps({"id": "k%05d" % i, "email": "p%d@d%d.example" % (i, i % 300),
                      "emails": ["alt%d@d%d.example" % (i, i % 300)], "categories": ["lead"]}))
' > "$T/c.jsonl"
t0=$(date +%s%N)
run_ok "import of 10,000 contacts" mx contact import "$T/c.jsonl"
t1=$(date +%s%N)
like "$MX_OUT" "^10000 contacts imported" "import counts 10000"
diag "10,000 contacts imported in $(( (t1 - t0) / 1000000 )) ms"
is "$(mx contact list | wc -l)" 10001 "10,001 contacts stored"
is "$(mx contact list --after k09997 --json | js 'len(d)')" 2 "list --after pages on"
printf '%s\n' '{"id":"z1","email":"z1@z.example"}' '' '{"id":"z2","email":"nope"}' \
    '{"id":"z3","email":"z3@z.example"}' > "$T/bad.jsonl"
run_fails "import stops at a bad line" mx contact import "$T/bad.jsonl"
like "$MX_OUT" 'line 3: contact z2' "the error names the line"
like "$MX_OUT" '^1 contacts imported' "the lines before it are stored"
run_fails "z3 after the bad line was not stored" mx contact show z3
printf '{"id":"z4",\n' | mx contact import - > "$T/trunc.out" 2>&1
like "$(cat "$T/trunc.out")" 'line 1' "truncated JSON: the error names the line"
done_testing
