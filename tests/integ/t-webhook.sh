#!/bin/sh
# Webhooks and the event feed end to end: events produced by a real
# `mxsync sync` against Dovecot are listed by `mxsync events` and delivered
# by the webhook module (driven by tests/integ/mx-webhook-run) to a local
# receiver (tools/webhook_rx.py): in order, each exactly once, signed;
# through receiver failures (500, 503 + Retry-After, 400), past a hanging
# endpoint, across a restart, live while another process syncs, and after
# retention pruned what a cursor still wanted.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

RUN=${MX_WEBHOOK_RUN:-${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/tests/integ/mx-webhook-run}
command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$RUN" ] || skip_all "mx-webhook-run not built ($RUN)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
SECRET='whsec_t3st-secret'

# rx_start NAME [webhook_rx.py args...]: a receiver logging to $T/NAME.log;
# sets RX_URL.
rx_start() {
    rxn=$1; shift
    : > "$T/$rxn.port"; : > "$T/$rxn.log"
    ( "$MX_PY" "$MX_TOOLS/webhook_rx.py" --log "$T/$rxn.log" "$@" \
          </dev/null >"$T/$rxn.port" 2>"$T/$rxn.err" &
      echo $! > "$T/$rxn.pid" )
    at_exit "kill \$(cat '$T/$rxn.pid') 2>/dev/null"
    rxi=0
    while [ $rxi -lt 200 ]; do
        rxp=$(head -n 1 "$T/$rxn.port")
        if [ -n "$rxp" ]; then
            RX_URL="http://127.0.0.1:$rxp/hook"
            return 0
        fi
        sleep 0.025; rxi=$((rxi + 1))
    done
    bail_out "webhook_rx.py did not start: $(cat "$T/$rxn.err")"
}
acked() { "$MX_PY" "$MX_TOOLS/webhook_rx.py" --acked "$T/$1.log" | tr '\n' ' '; }
# field of the request log: all values, space separated
reqs() {
    "$MX_PY" -c '
import json,sys
print(" ".join(str(json.loads(l)[sys.argv[2]]) for l in open(sys.argv[1]) if l.strip()))' "$T/$1.log" "$2"
}
ids_of() { "$MX_PY" -c '
import json,sys
print(" ".join(str(json.loads(l)["id"]) for l in sys.stdin if l.strip()))'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
run() { "$RUN" -d "$MXD" "$@"; }

# ---- events from a real sync
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 25 "$T/gen" >/dev/null
is "$(dc_deliver "$D" $U "$T/gen" 2>"$T/deliver.err")" 25 "25 messages delivered"
run_ok "account add" mx_add a "$D" $U imaps
run_ok "mxsync events on a store without events" mx events
is "$MX_OUT" "" "no events yet: prints nothing"
run_ok "sync" mx sync a
dc_imap "$D" $U flag INBOX 2 '+\Flagged' >/dev/null
run_ok "resync after a server-side flag change" mx sync a

run_ok "mxsync events --json" mx events --json
ALL=$(printf '%s\n' "$MX_OUT" | ids_of)
N=$(mdb_stat -s events "$MXD" | sed -n 's/.*Entries: //p')
ok $([ "${N:-0}" -ge 26 ]; echo $?) "the sync logged events ($N)"
is "$ALL" "$(seq -s ' ' 1 "$N")" "events --json: every stored id, oldest first"
is "$(printf '%s\n' "$MX_OUT" | grep -c '"type":"message.new"')" 25 "one message.new per message"
is "$(printf '%s\n' "$MX_OUT" | grep -c '"type":"message.updated"')" 1 "one message.updated for the flag change"
run_ok "events --after 20 (text)" mx events --after 20
is "$(printf '%s\n' "$MX_OUT" | cut -d' ' -f1 | tr '\n' ' ')" "$(seq -s ' ' 21 "$N") " "--after 20 starts at 21"
like "$MX_OUT" '^21 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z message\.new account=1 folder=[0-9]+ message=[0-9a-f]{16}' "readable line: id, time, type, account, folder, message"
like "$MX_OUT" "^$N .* message\\.updated account=1 folder=[0-9]+ message=[0-9a-f]{16} uid=2 flags=[0-9]+\$" "message.updated line carries its extra fields"
run_ok "events --json --limit 3 --after 5" mx events --json --limit 3 --after 5
is "$(printf '%s\n' "$MX_OUT" | ids_of)" "6 7 8" "--limit 3 --after 5"
run_fails "events --after x is a usage error" mx events --after x
is "$MX_RC" 2 "usage error exit status"
run_ok "events --help" mx events --help
like "$MX_OUT" "usage: mxsync events" "--help prints the usage"

# ---- delivery: all events, in order, each once, signed
rx_start main
run_ok "set main's cursor to 0" run --set-cursor main=0
t0=$(now_ms)
run_ok "deliver everything to main" run --secret "$SECRET" --endpoint main "$RX_URL" --until main=last --seconds 60
diag "delivered $N events in $(($(now_ms) - t0)) ms"
like "$MX_OUT" "^main cursor=$N delivered=$N failures=0 next_attempt=0 error=\$" "status: cursor $N, $N delivered, no failure"
is "$(acked main)" "$ALL " "every event delivered once, in order"
is "$(reqs main n | wc -w)" "$N" "no request beyond one per event"
run_ok "signatures, event id headers and content type verify (hmac.compare_digest)" \
    "$MX_PY" "$MX_TOOLS/webhook_rx.py" --verify "$T/main.log" --secret "$SECRET"
run_fails "and do not verify with another secret" \
    "$MX_PY" "$MX_TOOLS/webhook_rx.py" --verify "$T/main.log" --secret wrong
bodies=$("$MX_PY" -c '
import json,sys,base64
for l in open(sys.argv[1]):
    print(base64.b64decode(json.loads(l)["body_b64"]).decode())' "$T/main.log")
is "$bodies" "$(mx events --json)" "each body is the event object as the feed has it"
is "$(reqs main path | tr ' ' '\n' | sort -u)" "/hook" "POSTed to the URL's path"
run_ok "second run: nothing left to send" run --secret "$SECRET" --endpoint main "$RX_URL" --seconds 1
is "$(reqs main n | wc -w)" "$N" "no re-delivery after the cursor"

# ---- the first start of an endpoint begins after the newest event
rx_start late
run_ok "first start without a cursor" run --secret "$SECRET" --endpoint late "$RX_URL" --seconds 1
like "$MX_OUT" "^late cursor=$N delivered=0 " "starts from the newest event: nothing old sent"

# ---- receiver failing: 500 for the first 3 requests
rx_start flaky --fail-first 3
run --set-cursor flaky=0
run_ok "deliver through three 500s" run --secret "$SECRET" --max-backoff 1 --endpoint flaky "$RX_URL" --until flaky=last --seconds 60
like "$MX_OUT" "^flaky cursor=$N delivered=$N failures=3 " "status counts 3 failures"
is "$(reqs flaky status | cut -d' ' -f1-4)" "500 500 500 200" "three 500s, then success"
is "$(reqs flaky event_id | cut -d' ' -f1-4)" "1 1 1 1" "the same event retried, not skipped"
is "$(acked flaky)" "$ALL " "acknowledged ids strictly increasing, no gap, none twice"
run_ok "retried requests are signed too" \
    "$MX_PY" "$MX_TOOLS/webhook_rx.py" --verify "$T/flaky.log" --secret "$SECRET"

# ---- 503 with Retry-After
rx_start ra --fail-first 1 --retry-after 2
run --set-cursor ra=$((N - 1))
run_ok "deliver through a 503 with Retry-After: 2" run --secret "$SECRET" --max-backoff 10 --endpoint ra "$RX_URL" --until ra=last --seconds 30
gap=$("$MX_PY" -c '
import json,sys
r=[json.loads(l) for l in open(sys.argv[1])]
print(int((r[1]["t"]-r[0]["t"])*1000))' "$T/ra.log")
diag "retry after ${gap} ms"
ok $([ "$gap" -ge 1900 ] && [ "$gap" -lt 4000 ]; echo $?) "Retry-After honoured: retried after 2 s, not the 1 s backoff ($gap ms)"
is "$(acked ra)" "$N " "then delivered"

# ---- 400: the receiver refuses one event; it is skipped, the rest delivered
rx_start picky --reject-id 4
run --set-cursor picky=0
run_ok "deliver with event 4 refused (400)" run --secret "$SECRET" --endpoint picky "$RX_URL" --until picky=last --seconds 60
like "$MX_OUT" "^picky cursor=$N delivered=$((N - 1)) failures=1 .*error=event 4: HTTP 400" "refused event counted as a failure and skipped"
is "$(reqs picky event_id | tr ' ' '\n' | grep -c '^4$')" 1 "a refused event is not retried"
is "$(acked picky)" "$(echo "$ALL" | tr ' ' '\n' | grep -v '^4$' | tr '\n' ' ')" "all the others delivered in order"

# ---- event type filter
rx_start upd
run --set-cursor upd=0
run_ok "endpoint for message.updated only" run --secret "$SECRET" --types message.updated,folder.reset --endpoint upd "$RX_URL" --until upd=last --seconds 30
like "$MX_OUT" "^upd cursor=$N delivered=1 failures=0" "filtered events advance the cursor without being sent"
is "$(acked upd)" "$N " "only the message.updated event sent"

# ---- a hanging endpoint does not delay another one in the same process
rx_start fast
FAST_URL=$RX_URL
rx_start stuck --hang
run --set-cursor fast=0
run --set-cursor stuck=0
t0=$(now_ms)
run_ok "two endpoints, one hangs" run --secret "$SECRET" --timeout 30 --endpoint fast "$FAST_URL" --endpoint stuck "$RX_URL" --until fast=last --seconds 60
el=$(($(now_ms) - t0))
diag "fast endpoint done and runner stopped after $el ms"
like "$MX_OUT" "^fast cursor=$N delivered=$N failures=0" "the healthy endpoint got everything"
like "$MX_OUT" "^stuck cursor=0 delivered=0 failures=0" "the hanging one is still on its first event"
is "$(acked fast)" "$ALL " "in order, once"
ok $([ "$el" -lt 8000 ]; echo $?) "not held up by the 30 s timeout of the other, and stop aborted its request ($el ms)"
is "$(reqs stuck event_id)" "1" "the hanging receiver saw event 1 once"

# ---- restart resumes from the persisted cursor
rx_start resume
run --set-cursor resume=0
run_ok "first run stops at 10" run --secret "$SECRET" --endpoint resume "$RX_URL" --until resume=10 --seconds 30
c1=$(printf '%s\n' "$MX_OUT" | sed -n 's/^resume cursor=\([0-9]*\) .*/\1/p')
ok $([ "${c1:-0}" -ge 10 ]; echo $?) "cursor after the first run: $c1"
n1=$(reqs resume n | wc -w)
run_ok "second run" run --secret "$SECRET" --endpoint resume "$RX_URL" --until resume=last --seconds 30
first2=$(reqs resume event_id | cut -d' ' -f$((n1 + 1)))
is "$first2" $((c1 + 1)) "the restart resumes after the persisted cursor"
"$MX_PY" - "$T/resume.log" "$N" > "$T/resume.chk" <<'EOF'
import json, sys
acked = [r["event_id"] for r in map(json.loads, open(sys.argv[1]))
         if r["status"] == 200]
n = int(sys.argv[2])
dups = len(acked) - len(set(acked))
ok = sorted(set(acked)) == list(range(1, n + 1)) and \
    all(a <= b for a, b in zip(acked, acked[1:])) and dups <= 1
print("ok" if ok else "bad: %s" % acked)
EOF
is "$(cat "$T/resume.chk")" ok "all delivered, in order, at most the in-flight one twice"

# ---- live: events committed by another process while the runner waits
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 5 "$T/gen2" --seed 11 >/dev/null 2>&1 ||
    "$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" 5 "$T/gen2" >/dev/null
rx_start live
( "$RUN" -d "$MXD" --secret "$SECRET" --endpoint live "$RX_URL" --seconds 60 \
      >"$T/live.out" 2>"$T/live.err" </dev/null & echo $! > "$T/live-run.pid" )
at_exit "kill \$(cat '$T/live-run.pid') 2>/dev/null"
( "$MX_BIN" -d "$MXD" events --follow --json >"$T/follow.out" 2>"$T/follow.err" </dev/null &
  echo $! > "$T/follow.pid" )
at_exit "kill \$(cat '$T/follow.pid') 2>/dev/null"
sleep 0.5
is "$(dc_deliver "$D" $U "$T/gen2" 2>>"$T/deliver.err")" 5 "5 more messages delivered"
run_ok "sync in another process" mx sync a
N2=$(mdb_stat -s events "$MXD" | sed -n 's/.*Entries: //p')
t0=$(now_ms)
while [ "$(acked live | wc -w)" -lt 5 ] && [ $(($(now_ms) - t0)) -lt 10000 ]; do sleep 0.05; done
diag "live delivery of 5 events took up to $(($(now_ms) - t0)) ms after the sync returned"
is "$(acked live)" "$(seq -s ' ' $((N + 1)) "$N2") " "new events delivered while running, in order"
while [ "$(wc -l < "$T/follow.out")" -lt "$N2" ] && [ $(($(now_ms) - t0)) -lt 10000 ]; do sleep 0.05; done
kill -INT "$(cat "$T/follow.pid")"
kill -TERM "$(cat "$T/live-run.pid")"
fi=0; while kill -0 "$(cat "$T/follow.pid")" 2>/dev/null && [ $fi -lt 100 ]; do sleep 0.05; fi=$((fi + 1)); done
ok $([ $fi -lt 100 ]; echo $?) "events --follow exits on SIGINT"
is "$(ids_of < "$T/follow.out")" "$(seq -s ' ' 1 "$N2")" "events --follow printed the old and the new events, once each"
is "$(cat "$T/follow.err")" "" "no error from --follow"
sleep 0.3
like "$(cat "$T/live.out")" "^live cursor=$N2 delivered=5 failures=0" "runner stopped on SIGTERM with its status"
unlike "$(cat "$T/live.err" "$T"/*.out "$T"/*.err 2>/dev/null)" "$SECRET" "the secret is never printed"
unlike "$(cat "$T/live.err")" "Sanitizer|runtime error" "the background runner exited cleanly"

# ---- retention: an expired cursor
# "stuck" still sits at 0; the count limit 5 holds back for it until twice
# the limit: everything but the newest 10 goes.
run_ok "prune to 5 events" run --prune 0 5
is "$MX_OUT" "pruned $((N2 - 10))" "pruned all but twice the limit (an endpoint is behind)"
run_fails "events --after 0 after the prune" mx events --after 0
like "$MX_OUT" "cursor 0 is older than the retained feed \\(oldest $((N2 - 9))\\): resync" "clear expired-cursor message"
is "$MX_RC" 9 "exit status 9 (cursor expired: resync)"
run_ok "events without --after lists what is retained" mx events --json
is "$(printf '%s\n' "$MX_OUT" | ids_of)" "$(seq -s ' ' $((N2 - 9)) "$N2")" "the newest 10"
run_ok "the behind endpoint, now on a working receiver" run --secret "$SECRET" --endpoint stuck "$FAST_URL" --until stuck=last --seconds 30
like "$MX_OUT" "^stuck cursor=$N2 delivered=10 failures=1 .*older than the retained feed" "expired cursor: a failure in status, then continues from the oldest retained"
is "$(acked fast | tr ' ' '\n' | tail -n 10 | tr '\n' ' ')" "$(seq -s ' ' $((N2 - 9)) "$N2") " "the retained events delivered"

done_testing
