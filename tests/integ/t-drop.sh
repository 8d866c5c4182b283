#!/bin/sh
# A connection dropped in the middle of a FETCH: the sync reports it, keeps
# every committed batch, and the next run resumes where the last committed
# batch ended (nothing lost, nothing duplicated).
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
U=alice@example.test
. "$D/env"
N=200
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" $N "$T/gen" >/dev/null
is "$(dc_deliver "$D" $U "$T/gen")" $N "$N messages delivered"
bytes=$(du -sb "$T/gen" | cut -f1)
cut=$((bytes / 2))
diag "mailbox ~$bytes bytes; the proxy cuts the first connection after $cut bytes"

# the proxy forwards TLS untouched and drops the first connection mid-stream
fake_start "$T/proxy" --mode proxy --to "127.0.0.1:$DC_IMAPS_PORT" --cut-after $cut ||
    bail_out "proxy failed"
dc_password "$D" $U > "$T/pw"
mx account add a --imap "imaps://$U@127.0.0.1:$FAKE_PORT" \
    --password-file "$T/pw" --ca-file "$DC_CA" --timeout 10 >/dev/null

mx sync a --batch 20 >"$T/so" 2>"$T/se"; rc=$?
is "$rc" 4 "dropped connection: temporary error exit code"
like "$(cat "$T/se")" "connection closed|reset|stream" "the error says the connection dropped"
diag "$(tail -1 "$T/se")"
got=$(mx_count a)
diag "committed before the drop: $got"
ok $([ "$got" -gt 0 ] && [ "$got" -lt $N ]; echo $?) "some batches were committed before the drop ($got of $N)"
like "$(mx status a --json)" '"state": "partial"' "INBOX is marked partial"
ok $([ $((got % 20)) -eq 0 ] || [ "$got" -lt 20 ]; echo $?) "only whole batches were committed ($got)"

mx sync a --batch 20 >"$T/so" 2>"$T/se"; rc=$?
is "$rc" 0 "the next run completes"
like "$(cat "$T/so")" " $((N - got)) new messages" "and fetches only what was missing ($((N - got)))"
is "$(mx_count a)" $N "all $N messages stored once"
is "$(mx_export_digest a)" "$(dc_digest "$D" $U)" "export == server"
done_testing
