# tests/integ/lib/mx.sh -- helpers for tests that drive the mxsync CLI.
# Source tap.sh and dovecot.sh first.
#
#   mx_init TMPDIR            sets MXD (data dir) and MX_SCRATCH (scratch)
#   mx ARGS...                runs $MX_BIN -d $MXD ARGS...
#   mx_add NAME DCDIR USER [imaps|imap] [extra account-add args...]
#   mx_export_digest NAME     "FOLDER<TAB>SHA256" lines of a fresh maildir
#                             export, sorted
#   dc_digest DCDIR USER      the same from the server (imaptool digest)
#   mx_count NAME [FOLDER]    number of stored messages (ls --json)
#   d_start                   starts $MXSYNCD -d $MXD in the background,
#                             output appended to $DLOG, PID in $DPID
#   d_alive                   the daemon runs (and is not a zombie)
#   d_stop_at_exit            SIGTERM, waits <= 10 s (then SIGKILL), reaps;
#                             register it: at_exit d_stop_at_exit

: "${MX_BIN:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/cli/mxsync}"

mx_init() {
    MXD=$1/mxdata
    MX_SCRATCH=$1/out
    mkdir -p "$MX_SCRATCH"
    export MXD MX_SCRATCH
}

mx() {
    "$MX_BIN" -d "$MXD" "$@"
}

mx_add() {
    _n=$1; _dc=$2; _u=$3; _scheme=${4:-imaps}; shift 4 2>/dev/null || shift $#
    . "$_dc/env"
    dc_password "$_dc" "$_u" > "$MX_SCRATCH/$_n.pw"
    if [ "$_scheme" = imaps ]; then _port=$DC_IMAPS_PORT; else _port=$DC_IMAP_PORT; fi
    mx account add "$_n" --imap "$_scheme://$_u@127.0.0.1:$_port" \
        --password-file "$MX_SCRATCH/$_n.pw" --ca-file "$DC_CA" "$@"
}

mx_export_digest() {
    _e=$MX_SCRATCH/export.$$
    rm -rf "$_e"
    mx export "$1" --format maildir --out "$_e" >/dev/null || return 1
    (cd "$_e" && find . -path '*/cur/*' -type f | while read -r f; do
        d=${f#./}; d=${d%/cur/*}
        printf '%s\t%s\n' "$d" "$(sha256sum < "$f" | cut -d' ' -f1)"
    done) | LC_ALL=C sort
    rm -rf "$_e"
}

dc_digest() {
    dc_imap "$1" "$2" digest | awk -F'\t' '{print $1 "\t" $3}' | LC_ALL=C sort
}

mx_count() {
    if [ -n "$2" ]; then
        mx ls "$1" --folder "$2" --json | "$MX_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'
    else
        mx ls "$1" --json | "$MX_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'
    fi
}

DPID=
d_start() {
    "$MXSYNCD" -d "$MXD" </dev/null >>"$DLOG" 2>&1 &
    DPID=$!
}
# alive = exists and is not a zombie (it is our child until waited for)
d_alive() {
    [ -n "$DPID" ] && [ -r "/proc/$DPID/status" ] &&
        [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$DPID/status")" != Z ]
}
d_stop_at_exit() {
    [ -n "$DPID" ] || return 0
    kill -TERM "$DPID" 2>/dev/null
    dsi=0
    while d_alive && [ $dsi -lt 100 ]; do sleep 0.1; dsi=$((dsi + 1)); done
    d_alive && { echo "# mxsyncd $DPID ignored SIGTERM for 10 s: SIGKILL" >&2; kill -KILL "$DPID"; }
    wait "$DPID" 2>/dev/null
    DPID=
}
