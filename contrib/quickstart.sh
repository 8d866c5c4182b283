#!/bin/sh
# The demo: installs what is missing, builds, starts a sandbox Dovecot on
# loopback seeded with sample mail, adds it as an account, runs a full sync
# into LMDB and shows what was synced, then sends a message through the
# sandbox's submission service and shows it in the outbox and in Sent, and
# starts mxsyncd with its HTTP API for a few curl calls (accounts, messages,
# a CRM contact and its timeline).  Everything lives under
# ${MXSYNC_DEMO_DIR:-/tmp/mxsync-demo}; the sandbox server is stopped at the
# end (mxsyncd too, by its PID), the synced store is kept for you to explore.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
demo=${MXSYNC_DEMO_DIR:-/tmp/mxsync-demo}

"$top/scripts/deps.sh" || { echo "quickstart: could not install dependencies" >&2; exit 1; }
echo "== building mxsync"
"$top/scripts/build.sh" "$top/_build/default" >/dev/null || {
	echo "quickstart: build failed" >&2; exit 1; }
MX="$top/_build/default/src/cli/mxsync"
MXSYNCD="$top/_build/default/src/daemon/mxsyncd"

MX_TOP_SRCDIR=$top; export MX_TOP_SRCDIR
. "$top/tests/integ/lib/tap.sh"
. "$top/tests/integ/lib/dovecot.sh"
. "$top/tests/integ/lib/fake.sh"
trap - EXIT INT TERM

rm -rf "$demo"
mkdir -p "$demo" && chmod 755 "$demo"
echo "== starting a sandbox Dovecot on 127.0.0.1 (its own config, CA and ports)"
dc_setup "$demo/dovecot" >/dev/null || exit 1
dc_start "$demo/dovecot" >/dev/null || { dc_log "$demo/dovecot"; exit 1; }
dpid=
stop_daemon() {
	[ -n "$dpid" ] || return 0
	kill -TERM "$dpid" 2>/dev/null
	wait "$dpid" 2>/dev/null
	dpid=
}
trap 'stop_daemon; sink_stop "$demo/relay"; dc_stop "$demo/dovecot" >/dev/null' EXIT INT TERM
. "$demo/dovecot/env"

echo "== seeding alice@example.test with sample mail"
/usr/bin/python3 "$top/bench/gen-mail.py" 150 "$demo/mail/inbox" >/dev/null
/usr/bin/python3 "$top/bench/gen-mail.py" --seed 2 20 "$demo/mail/archive" >/dev/null
n1=$(dc_deliver "$demo/dovecot" alice@example.test "$demo/mail/inbox")
n2=$(dc_deliver "$demo/dovecot" alice@example.test --folder Archive "$demo/mail/archive")
echo "   $n1 messages in INBOX, $n2 in Archive"

data="$demo/data"
dc_password "$demo/dovecot" alice@example.test > "$demo/alice.pw"
chmod 600 "$demo/alice.pw"
echo
echo "\$ mxsync -d $data account add demo --imap imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT --password-file $demo/alice.pw --ca-file $DC_CA"
"$MX" -d "$data" account add demo \
	--imap "imaps://alice@example.test@127.0.0.1:$DC_IMAPS_PORT" \
	--password-file "$demo/alice.pw" --ca-file "$DC_CA" || exit 1
echo
echo "\$ mxsync -d $data sync demo"
"$MX" -d "$data" sync demo || exit 1
echo
echo "\$ mxsync -d $data status demo"
"$MX" -d "$data" status demo
echo
echo "\$ mxsync -d $data ls demo --limit 8"
"$MX" -d "$data" ls demo --limit 8
first=$("$MX" -d "$data" ls demo --limit 1 | cut -d' ' -f1)
echo
echo "\$ mxsync -d $data show $first"
"$MX" -d "$data" show "$first" | head -25
echo
echo "\$ mxsync -d $data sync demo      # again: incremental, nothing to fetch"
"$MX" -d "$data" sync demo
echo
echo "== sending: the sandbox's submission service relays through a local"
echo "   sink into its own mailboxes (nothing leaves 127.0.0.1)"
sink_start "$demo/relay" --port "$DC_RELAY_PORT" --relay-lmtp "$DC_LMTP_PORT" \
	--dir "$demo/relay/mail" || { echo "quickstart: relay did not start" >&2; exit 1; }
echo "\$ mxsync -d $data account edit demo --smtp smtp://alice@example.test@127.0.0.1:$DC_SUBMISSION_PORT --display-name 'Alice Demo'"
"$MX" -d "$data" account edit demo \
	--smtp "smtp://alice@example.test@127.0.0.1:$DC_SUBMISSION_PORT" \
	--display-name "Alice Demo" || exit 1
echo
echo "\$ mxsync -d $data send demo --to alice@example.test --subject 'Hello from mxsync' --body '...'"
"$MX" -d "$data" send demo --to alice@example.test --subject "Hello from mxsync" \
	--body "Queued in the outbox, sent over SMTP, filed in Sent." || exit 1
echo
echo "\$ mxsync -d $data outbox demo"
"$MX" -d "$data" outbox demo
echo
echo "\$ mxsync -d $data sync demo      # the copy in Sent and the delivery"
"$MX" -d "$data" sync demo
echo
echo "\$ mxsync -d $data ls demo --limit 3"
"$MX" -d "$data" ls demo --limit 3
echo
echo "== the HTTP API: mxsyncd with an [api] section (doc/api.md)"
api_port=$(_dc_free_ports | cut -d' ' -f1)
printf '[api]\nlisten = 127.0.0.1:%s\n' "$api_port" > "$data/mxsync.conf"
echo "\$ cat $data/mxsync.conf"
cat "$data/mxsync.conf"
echo "\$ mxsync -d $data token create --user demo-crm --admin --name quickstart"
token=$("$MX" -d "$data" token create --user demo-crm --admin --name quickstart --json |
	/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])') || exit 1
echo "$token"
echo "\$ mxsyncd -d $data &"
"$MXSYNCD" -d "$data" </dev/null >"$demo/mxsyncd.log" 2>&1 &
dpid=$!
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$api_port/v1/health")" = 200 ]; do
	i=$((i + 1))
	[ $i -lt 100 ] && kill -0 "$dpid" 2>/dev/null || {
		echo "quickstart: the API did not come up; $demo/mxsyncd.log:" >&2
		tail -n 20 "$demo/mxsyncd.log" >&2; exit 1; }
	sleep 0.1
done
echo
echo "\$ curl -s -H 'Authorization: Bearer $token' http://127.0.0.1:$api_port/v1/accounts"
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$api_port/v1/accounts" |
	/usr/bin/python3 -m json.tool
echo
echo "\$ curl -s -H 'Authorization: Bearer $token' 'http://127.0.0.1:$api_port/v1/messages?limit=2'"
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$api_port/v1/messages?limit=2" |
	/usr/bin/python3 -m json.tool
echo
echo "== the CRM layer (doc/crm.md): a contact, links of the stored mail, its timeline"
# the sender of the newest message that alice did not send herself
sender=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$api_port/v1/messages?limit=20" |
	/usr/bin/python3 -c 'import json,sys
print([f["address"] for m in json.load(sys.stdin)["messages"] for f in m["from"]
       if f["address"] != "alice@example.test"][0])')
echo "\$ curl -s -X PUT -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' http://127.0.0.1:$api_port/v1/contacts/crm-1 --data '{\"email\":\"$sender\"}'"
curl -s -X PUT -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
	"http://127.0.0.1:$api_port/v1/contacts/crm-1" --data "{\"email\":\"$sender\"}"
echo
echo "\$ curl -s -X POST -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' http://127.0.0.1:$api_port/v1/crm/relink --data '{\"history\":true}'"
curl -s -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
	"http://127.0.0.1:$api_port/v1/crm/relink" --data '{"history":true}'
echo
echo "\$ curl -s -H 'Authorization: Bearer $token' 'http://127.0.0.1:$api_port/v1/contacts/crm-1/timeline?limit=3'"
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$api_port/v1/contacts/crm-1/timeline?limit=3" |
	/usr/bin/python3 -m json.tool
stop_daemon
echo "(mxsyncd stopped)"
echo
echo "The store is in $data (LMDB). Explore it with:"
echo "  $MX -d $data ls demo"
echo "  $MX -d $data export demo --format maildir --out $demo/export"
echo "(the sandbox Dovecot is stopped now; rerun this script to start over)"
