#!/bin/sh
# Fault soak: one mxsyncd with 50 IMAPS accounts, all reaching Dovecot through
# tools/faultproxy.py in random mode (a seeded fault on ~50% of connections:
# close or RST after N bytes either way or after T ms, stalls, delays,
# 1-byte segments) while mail is delivered, flags change, messages move to
# Archive, and the daemon is killed with SIGKILL and restarted at random points.  At the end
# (faults off, the daemon restarted for one last sync and stopped) every
# account's store equals its server byte for byte, every stored message has
# exactly one message.new, no event id repeats, and the daemon's RSS stayed
# flat.  The seed is printed; MX_SOAK_SEED=S repeats a plan (the proxy's
# faults follow accept order, which the scheduler decides: the same seed
# gives the same plan of actions and the same fault sequence, not the same
# interleaving).  MX_SOAK_PLAIN=1 uses plaintext IMAP, adding resets in the
# middle of literals.  MX_SOAK_SECONDS (default 60) is the length of the faulted
# phase; bench/soak runs the same script longer.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"
command -v dovecot >/dev/null || skip_all "dovecot not installed"
[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
[ -x "$MXSYNCD" ] || skip_all "mxsyncd not built ($MXSYNCD)"
SEED=${MX_SOAK_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
DUR=${MX_SOAK_SECONDS:-60}
NACC=${MX_SOAK_ACCOUNTS:-50}
# MX_SOAK_PLAIN=1: plaintext IMAP, so the proxy can also reset mid-literal
if [ "${MX_SOAK_PLAIN:-0}" = 1 ]; then
    SCHEME=imap; KINDS=drop,rst,stall,delay,split,age,midlit; PLAIN=--insecure-plaintext
else
    SCHEME=imaps; KINDS=drop,rst,stall,delay,split,age; PLAIN=
fi
diag "seed $SEED (MX_SOAK_SEED=$SEED repeats it), $DUR s of faults, $NACC accounts over $SCHEME"
mx_tmpdir; T=$MX_TMP
D=$T/dc
mx_init "$T"
dc_setup "$D" >/dev/null || bail_out "dc_setup failed"
dc_add_users "$D" "$NACC" || bail_out "dc_add_users"
dc_start "$D" >/dev/null || bail_out "dovecot did not start"
at_exit "dc_stop '$D' >/dev/null"
. "$D/env"
DLOG=$T/mxsyncd.log

# ---- the daemon, stopped at exit by PID
DPID=
d_start() { "$MXSYNCD" -d "$MXD" </dev/null >>"$DLOG" 2>&1 & DPID=$!; }
d_alive() {
    [ -n "$DPID" ] && [ -r "/proc/$DPID/status" ] &&
        [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$DPID/status")" != Z ]
}
d_stop() {
    [ -n "$DPID" ] || return 0
    kill -TERM "$DPID" 2>/dev/null
    dsi=0
    while d_alive && [ $dsi -lt 150 ]; do sleep 0.1; dsi=$((dsi + 1)); done
    d_alive && { echo "# mxsyncd $DPID ignored SIGTERM for 15 s: SIGKILL" >&2; kill -KILL "$DPID"; }
    wait "$DPID" 2>/dev/null; drc=$?
    DPID=
    return $drc
}
at_exit d_stop

# ---- mail: 3 messages per account first, the rest delivered during the run
NPRE=3
NPOOL=$((NACC * NPRE + DUR * 2 + 20))
"$MX_PY" "$MX_TOP_SRCDIR/bench/gen-mail.py" --seed "soak-$SEED" $NPOOL "$T/gen" >/dev/null
ls "$T/gen" > "$T/pool"
poolfile() { echo "$T/gen/$(sed -n "${1}p" "$T/pool")"; }
i=1; pre=0
while [ $i -le "$NACC" ]; do
    mkdir -p "$T/pre$i"
    j=0
    while [ $j -lt $NPRE ]; do
        ln -s "$(poolfile $(( (i - 1) * NPRE + j + 1)))" "$T/pre$i/"; j=$((j + 1))
    done
    pre=$((pre + $(dc_deliver "$D" "user$i@example.test" "$T/pre$i" 2>>"$T/deliver.err")))
    i=$((i + 1))
done
is "$pre" $((NACC * NPRE)) "$NPRE messages delivered to each of $NACC accounts"
NEXT=$((NACC * NPRE + 1))

UP=$DC_IMAPS_PORT; [ $SCHEME = imap ] && UP=$DC_IMAP_PORT
tool_start "$T/fp" faultproxy.py --mode random --seed "$SEED" --rate 0.5 \
    --kinds "$KINDS" --max-bytes 1048576 --max-stall 4000 --to "127.0.0.1:$UP" \
    --log "$T/fp/log" || bail_out "faultproxy did not start"
FP_PORT=$TOOL_PORT; FP_PID=$TOOL_PID
i=1; added=0
while [ $i -le "$NACC" ]; do
    printf 'user%dpw\n' $i > "$MX_SCRATCH/s$i.pw"
    mx account add "s$i" --imap "$SCHEME://user$i@example.test@127.0.0.1:$FP_PORT" $PLAIN \
        --password-file "$MX_SCRATCH/s$i.pw" --ca-file "$DC_CA" --timeout 3 \
        >/dev/null 2>>"$T/add.err" && added=$((added + 1))
    i=$((i + 1))
done
is "$added" "$NACC" "$NACC accounts through the fault proxy"
cat > "$MXD/mxsync.conf" <<EOF
# t-soak.sh
[daemon]
workers = 4
poll_interval = 5
folder_interval = 10
backoff_min = 1
backoff_max = 4
EOF

# ---- the plan, from the seed: SIGKILL at 3 random seconds in the first 60%
# of the run (so the last incarnation runs long enough for its memory to be
# judged), and a list of actions done one after the other until the time is up
"$MX_PY" - "$SEED" "$DUR" "$NACC" > "$T/plan" <<'EOF'
import random, sys
r = random.Random(sys.argv[1]); dur = int(sys.argv[2]); n = int(sys.argv[3])
print('kills', *sorted(r.sample(range(max(1, dur // 10), max(4, dur * 6 // 10)), 3)))
for s in range(dur * 4):
    a = r.choices(['deliver', 'flag', 'move', 'none'], [4, 3, 2, 1])[0]
    print(a, r.randint(1, n), r.randint(0, 1 << 30))
EOF
KILLS=$(sed -n '1s/^kills //p' "$T/plan")
diag "kills at $KILLS s; actions: $(sed 1d "$T/plan" | cut -d' ' -f1 | sort | uniq -c | tr '\n' ' ')"

: > "$T/rss"   # "INCARNATION KB" per step
INC=1
d_start
kills=0; delivered=$pre; flagged=0; moved=0
t_start=$(date +%s); t_end=$((t_start + DUR))
sed 1d "$T/plan" > "$T/actions"
while read -r act u rnd; do
    now=$(date +%s)
    [ "$now" -ge "$t_end" ] && break
    next=$(echo "$KILLS" | cut -d' ' -f$((kills + 1)))
    if [ -n "$next" ] && [ $((now - t_start)) -ge "$next" ]; then
        kill -KILL "$DPID"; wait "$DPID" 2>/dev/null
        kills=$((kills + 1)); INC=$((INC + 1))
        d_start
    fi
    case $act in
    deliver)
        f=$(poolfile $NEXT); NEXT=$((NEXT + 1))
        [ "$(dc_deliver "$D" "user$u@example.test" "$f" 2>>"$T/deliver.err")" = 1 ] &&
            delivered=$((delivered + 1)) ;;
    flag|move)
        uids=$(dc_imap "$D" "user$u@example.test" uids INBOX 2>/dev/null)
        c=$(printf '%s\n' "$uids" | grep -c .)
        [ "$c" -gt 0 ] || continue
        uid=$(printf '%s\n' "$uids" | sed -n "$((rnd % c + 1))p")
        if [ $act = flag ]; then
            case $((rnd % 3)) in
            0) fl='+\Seen' ;; 1) fl='+\Flagged' ;; *) fl='-\Seen' ;;
            esac
            dc_imap "$D" "user$u@example.test" flag INBOX "$uid" "$fl" >/dev/null 2>&1 &&
                flagged=$((flagged + 1))
        else
            dc_imap "$D" "user$u@example.test" move INBOX "$uid" Archive >/dev/null 2>&1 &&
                moved=$((moved + 1))
        fi ;;
    esac
    d_alive && echo "$INC $(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$DPID/status")" >> "$T/rss"
    sleep 0.2
done < "$T/actions"
diag "faulted phase: $delivered delivered, $flagged flag changes, $moved moves, $kills kills"
diag "proxy: $(grep -c '^plan ' "$T/fp/log") connections, $(grep -c '^fault ' "$T/fp/log") faults fired: $(sed -n 's/^fault [0-9]* \([a-z]*\) .*/\1/p' "$T/fp/log" | sort | uniq -c | tr '\n' ' ')"
is "$kills" 3 "the daemon was killed with SIGKILL and restarted 3 times"
ok $([ "$(grep -c '^fault ' "$T/fp/log")" -ge 10 ]; echo $?) "faults fired during the run"
d_alive; ok $? "the daemon is still running after the faulted phase"

# ---- memory: the last incarnation's RSS, first third vs last third
rssr=$("$MX_PY" - "$T/rss" "$INC" "${MX_SANITIZED:-0}" <<'EOF'
import sys
inc = sys.argv[2]
v = [int(l.split()[1]) for l in open(sys.argv[1]) if l.split()[0] == inc and len(l.split()) == 2]
if len(v) < 9:
    print('too few samples (%d)' % len(v)); sys.exit()
k = len(v) // 3
first, last = max(v[:k]), max(v[-k:])
# Flat = the last third's peak below 1.5x the first third's peak + 8 MiB:
# room for allocator arenas settling and the event feed's growth, while a
# leak per sync, per reconnect or per fault (50 accounts, a sync every few
# seconds) would pass it within the run.  Under ASan freed memory sits in
# a quarantine (256 MiB by default), so the slack there is 300 MiB.
slack = 300 * 1024 if sys.argv[3] == '1' else 8 * 1024
bound = first * 3 // 2 + slack
print('%s first-third max %d KB, last-third max %d KB, bound %d KB, %d samples'
      % ('ok' if last < bound else 'GREW', first, last, bound, len(v)))
EOF
)
diag "RSS: $rssr"
like "$rssr" '^ok ' "the daemon's memory is flat"

# ---- final: faults off, the daemon restarted for one last sync
kill -USR1 "$FP_PID"
d_stop; diag "daemon stopped (status $?)"
d_start
i=0
while [ $i -lt 600 ]; do
    n_idle=$(mx status --json 2>/dev/null | "$MX_PY" -c '
import json,sys
print(sum(1 for a in json.load(sys.stdin) if (a.get("daemon") or {}).get("state") == "idle"))' 2>/dev/null)
    [ "${n_idle:-0}" -ge "$NACC" ] && break
    sleep 0.2; i=$((i + 1))
done
is "$n_idle" "$NACC" "after the faults: every account reaches idle"
sleep 3    # a delivery of the last step may still be on its way in IDLE
d_stop; ok $? "the daemon exits on SIGTERM"

bad=0; i=1
while [ $i -le "$NACC" ]; do
    if [ "$(mx_export_digest "s$i")" != "$(dc_digest "$D" "user$i@example.test")" ]; then
        bad=$((bad + 1)); diag "s$i: store differs from the server"
    fi
    i=$((i + 1))
done
is "$bad" 0 "every account's store equals its server (sha256 of every message, all folders)"

mx events --json > "$T/feed"
i=1; : > "$T/ls"
while [ $i -le "$NACC" ]; do
    mx ls "s$i" --json | "$MX_PY" -c '
import json,sys
for m in json.load(sys.stdin): print(sys.argv[1], m["id"], m.get("message_id") or "")' "s$i" >> "$T/ls"
    i=$((i + 1))
done
r=$("$MX_PY" - "$T/feed" "$T/ls" <<'EOF'
import collections, json, sys
feed = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ids = [e['id'] for e in feed]
probs = []
if len(set(ids)) != len(ids):
    probs.append('repeated event ids: %s' % [i for i, c in collections.Counter(ids).items() if c > 1][:10])
if ids != sorted(ids):
    probs.append('event ids not increasing')
news = collections.Counter(e['message'] for e in feed if e['type'] == 'message.new')
recs = [l.split() for l in open(sys.argv[2]) if l.strip()]
for rec in recs:
    if news[rec[1]] != 1:
        probs.append('%s record %s (%s): %d message.new' % (rec[0], rec[1], rec[2:], news[rec[1]]))
dup = collections.Counter((r[0], r[2]) for r in recs if len(r) > 2)
probs += ['%s: Message-ID %s stored %d times' % (k[0], k[1], c) for k, c in dup.items() if c > 1]
for p in probs[:20]:
    print(p)
print('ok %d records, %d events' % (len(recs), len(ids)) if not probs else '%d problems' % len(probs))
EOF
)
like "$r" '^ok ' "every stored message has exactly one message.new; no event id repeats"
[ "${r#ok }" = "$r" ] && diag "$r"
diag "$(printf '%s\n' "$r" | tail -1)"
is "$(wc -l < "$T/ls" | tr -d ' ')" "$delivered" "as many messages stored as delivered ($delivered)"
done_testing
