#!/bin/sh
# /v1/contacts, /v1/contacts/{id}/timeline and /v1/crm/relink against the
# real daemon and Dovecot, through the validating proxy (prism --errors)
# except for requests prism refuses itself (sent straight to the daemon):
# an admin pushes contacts, relinks, and each user's timeline holds only
# mail of accounts that user may use; a user token may read but not write
# (403); bad input (bad JSON, unknown or mistyped fields, a bad address, an
# id in the body that is not the path's, a bad id or cursor) is a clear
# 4xx and changes nothing; soft and hard delete.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/api.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
api_tools_check || skip_all "the contract tools are not installed"
mx_tmpdir; T=$MX_TMP
mx_init "$T"
DLOG=$T/mxsyncd.log
D=$T/dc
dc_setup "$D" alice@example.test bob@example.test >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"

run_ok "account a (alice, owner u1)" mx_add a "$D" alice@example.test imaps --owner u1
run_ok "account b (bob, owner u2)" mx_add b "$D" bob@example.test imaps --owner u2
NOW=$(date -u -R)
mk() { # N FROM TO SUBJECT
    printf 'From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <c%s@t.example>\r\n\r\nbody\r\n' \
        "$2" "$3" "$4" "$NOW" "$1" > "$T/c$1.eml"; echo "$T/c$1.eml"; }
is "$(dc_deliver "$D" alice@example.test "$(mk 1 anna@client.example alice@example.test to-alice)" 2>>"$T/d.err")" 1 "anna writes to alice"
is "$(dc_deliver "$D" bob@example.test "$(mk 2 anna@client.example bob@example.test to-bob)" 2>>"$T/d.err")" 1 "anna writes to bob"
is "$(dc_deliver "$D" bob@example.test "$(mk 3 carl@client.example bob@example.test "cc-anna")" 2>>"$T/d.err")" 1 "carl writes to bob"
run_ok "sync a" mx sync a
run_ok "sync b" mx sync b
api_conf || bail_out "api_conf"
api_token admin --admin >/dev/null || bail_out "token admin"; KA=$API_TOKEN
api_token u1 >/dev/null || bail_out "token u1"; K1=$API_TOKEN
api_token u3 >/dev/null || bail_out "token u3"; K3=$API_TOKEN
api_daemon_start || bail_out "mxsyncd did not start"
api_prism_start "$T/prism" || bail_out "prism did not start"
P=$PRISM_URL
J='Content-Type: application/json'
ok_valid() { # WANT DESC: the last answer's status, and prism saw no violation
    if [ "$API_STATUS" = "$1" ] && [ -z "$(api_header sl-violations)" ]; then
        pass "$2: $1"
    else
        fail "$2: $1"; diag "status $API_STATUS; violations: $(api_header sl-violations)"
        diag "body: $(head -c 1000 "$API_BODYF")"
    fi
}

api_req PUT "$P/v1/contacts/anna" "$KA" -H "$J" --data-binary '{"email":"anna@client.example","emails":["Anna@Home.Example"],"categories":["customer"]}'
ok_valid 201 "PUT a new contact"
is "$(api_json 'j["emails"]')" '["Anna@home.example"]' "the answer is the stored contact (domain lower-cased)"
api_req PUT "$P/v1/contacts/anna" "$KA" -H "$J" --data-binary '{"id":"anna","email":"anna@client.example","owner":"u1"}'
ok_valid 200 "PUT again replaces"
api_req PUT "$P/v1/contacts/c%20arl" "$KA" -H "$J" --data-binary '{"email":"carl@client.example"}'
ok_valid 201 "an id with a space (percent-encoded)"
api_req GET "$P/v1/contacts/c%20arl" "$K1"; ok_valid 200 "a user token reads a contact"
api_req GET "$P/v1/contacts?limit=1" "$K1"; ok_valid 200 "list, a page of 1"
is "$(api_json 'len(j["contacts"]), j["next_cursor"]')" '[1, "anna"]' "the page has one contact and a cursor"
api_req GET "$P/v1/contacts?limit=1&cursor=anna" "$K1"; ok_valid 200 "the next page"
is "$(api_json 'j["contacts"][0]["id"], j["next_cursor"]')" '["c arl", null]' "the next page: the other contact, no more"

# writes are for admins; the state is the same after refused requests
before=$(curl -s -H "Authorization: Bearer $KA" "$API_URL/v1/contacts")
api_req PUT "$P/v1/contacts/x" "$K1" -H "$J" --data-binary '{"email":"x@client.example"}'
ok_valid 403 "PUT with a user token"
api_req DELETE "$P/v1/contacts/anna" "$K1"; ok_valid 403 "DELETE with a user token"
api_req POST "$P/v1/crm/relink" "$K1"; ok_valid 403 "relink with a user token"
api_req PUT "$API_URL/v1/contacts/x" "$KA" -H "$J" --data-binary '{"email":'
is "$API_STATUS $(api_code)" "400 bad_json" "bad JSON: 400 bad_json"
api_req PUT "$API_URL/v1/contacts/x" "$KA" -H "$J" --data-binary '{"email":"x@c.example","colour":"red"}'
is "$API_STATUS $(api_code) $(api_json 'j["error"]["details"]["field"]')" "400 unknown_field colour" "an unknown field: 400 naming it"
api_req PUT "$API_URL/v1/contacts/x" "$KA" -H "Content-Type: text/plain" --data-binary '{"email":"x@c.example"}'
is "$API_STATUS $(api_code)" "415 unsupported_media_type" "text/plain: 415"
api_req PUT "$P/v1/contacts/x" "$KA" -H "$J" --data-binary '{"email":"not an address"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "a bad address: 422 invalid_value"
api_req PUT "$P/v1/contacts/x" "$KA" -H "$J" --data-binary '{"id":"y","email":"x@c.example"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "an id in the body that is not the path's: 422"
api_req PUT "$API_URL/v1/contacts/x" "$KA" -H "$J" --data-binary '{"email":"x@c.example","emails":"y@c.example"}'
is "$API_STATUS $(api_code)" "422 invalid_value" "emails not an array: 422"
long=$(printf '%0129d' 0)
api_req GET "$API_URL/v1/contacts/$long" "$KA"
is "$API_STATUS $(api_code)" "400 invalid_id" "a 129-byte id: 400 invalid_id"
api_req GET "$API_URL/v1/contacts/a%01b" "$KA"
is "$API_STATUS $(api_code)" "400 invalid_id" "an id with a control character: 400 invalid_id"
api_req GET "$P/v1/contacts/nobody" "$KA"; ok_valid 404 "an unknown contact"
is "$(curl -s -H "Authorization: Bearer $KA" "$API_URL/v1/contacts")" "$before" "refused requests changed nothing"

# links and timelines: u1 may use only account a
api_req POST "$P/v1/crm/relink" "$KA" -H "$J" --data-binary '{}'
ok_valid 200 "relink"
is "$(api_json 'j["messages"], j["linked"]')" "[3, 3]" "3 messages decided, 3 linked (anna x2, carl)"
api_req GET "$P/v1/contacts/anna/timeline" "$KA"; ok_valid 200 "anna's timeline (admin)"
is "$(api_json 'sorted(e["subject"] for e in j["timeline"])')" '["to-alice", "to-bob"]' "admin: both accounts' mail"
api_req GET "$P/v1/contacts/anna/timeline" "$K1"; ok_valid 200 "anna's timeline (u1)"
is "$(api_json '[e["subject"] for e in j["timeline"]]')" '["to-alice"]' "u1: only account a's mail"
api_req GET "$P/v1/contacts/anna/timeline" "$K3"; ok_valid 200 "anna's timeline (u3, no account)"
is "$(api_json 'len(j["timeline"])')" 0 "u3: nothing"
api_req GET "$P/v1/contacts/anna/timeline?limit=1" "$KA"; ok_valid 200 "a timeline page of 1"
cur=$(api_json 'j["next_cursor"]')
api_req GET "$P/v1/contacts/anna/timeline?limit=1&cursor=$cur" "$KA"; ok_valid 200 "the next timeline page"
is "$(api_json 'len(j["timeline"]), j["next_cursor"]')" "[1, null]" "the second page: the other message, no more"
api_req GET "$API_URL/v1/contacts/anna/timeline?cursor=zz" "$KA"
is "$API_STATUS $(api_code)" "400 invalid_parameter" "a bad timeline cursor: 400"
api_req GET "$P/v1/contacts/nobody/timeline" "$KA"; ok_valid 404 "an unknown contact's timeline"

# delete: soft keeps it (linked), hard removes it
api_req DELETE "$P/v1/contacts/anna" "$KA"; ok_valid 204 "soft delete"
api_req GET "$P/v1/contacts/anna" "$KA"; ok_valid 200 "a soft-deleted contact is still there"
is "$(api_json 'j["deleted"]')" true "marked deleted"
api_req GET "$P/v1/contacts/anna/timeline" "$KA"
is "$(api_json 'len(j["timeline"])')" 2 "and still linked"
api_req DELETE "$P/v1/contacts/anna?hard=true" "$KA"; ok_valid 204 "hard delete"
api_req GET "$P/v1/contacts/anna" "$KA"; ok_valid 404 "gone"
api_req POST "$P/v1/crm/relink" "$KA"; ok_valid 200 "relink with no body"
is "$(api_json 'j["linked"], j["changed"]')" "[1, 2]" "anna's two messages unlinked"
d_alive; ok $? "mxsyncd still running"
done_testing
