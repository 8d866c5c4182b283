# tests/integ/lib/fake.sh -- start/stop the local fake servers of
# tests/integ/tools (POSIX sh). Source tap.sh first (uses at_exit).
# Reference: tests/integ/lib/README.md
#
#   tool_start DIR TOOL [ARGS...]           any tool that prints its port first
#     -> runs $MX_PY $MX_TOOLS/TOOL ARGS... (stdout DIR/port, stderr DIR/err,
#        PID in DIR/pid), registers tool_stop at exit, waits (<= 5 s) for the
#        port. Sets TOOL_PORT, TOOL_PID; returns 1 if the tool did not start.
#   tool_stop DIR                           SIGTERM by PID, waits (<= 3 s)
#   fake_start DIR [fakeimap.py ARGS...]    e.g. fake_start "$T/f1" --mode nostarttls
#     -> sets FAKE_PORT, FAKE_PID, FAKE_LOG (=DIR/fake.log, passed as --log)
#   fake_stop DIR
#   idp_start DIR DCDIR [fake_idp.py ARGS...]  OAuth2 token endpoint, tokens
#     signed with the key of the Dovecot instance DCDIR; on $IDP_PORT if set
#     -> sets IDP_PORT, IDP_LOG (=DIR/log)
#   idp_stop DIR
#   sink_start DIR [smtpsink.py ARGS...]    SMTP sink storing into DIR/mail
#     -> sets SINK_PORT, SINK_LOG (=DIR/log), SINK_DIR (=DIR/mail)
#   sink_stop DIR
# Every *_start returns 1 with the tool's stderr on stderr if it did not
# start (tests: `... || bail_out "..."`); tool_stop and fake_stop print
# "stopped PID", idp_stop and sink_stop nothing.

: "${MX_PY:=/usr/bin/python3}"
: "${MX_TOOLS:=${MX_TOP_SRCDIR:?MX_TOP_SRCDIR must be set}/tests/integ/tools}"

# _fk_dir DIR: creates DIR, sets _fk to its absolute path
_fk_dir() {
    mkdir -p "$1" && _fk=$(cd "$1" && pwd)
}

tool_start() {
    _fk_dir "$1" || return 1
    _tt=$2; shift 2
    : > "$_fk/port"
    ( "$MX_PY" "$MX_TOOLS/$_tt" "$@" </dev/null >"$_fk/port" 2>"$_fk/err" &
      echo $! > "$_fk/pid" )
    TOOL_PID=$(cat "$_fk/pid")
    command -v at_exit >/dev/null 2>&1 && at_exit "tool_stop '$_fk' >/dev/null"
    _i=0
    while [ $_i -lt 200 ]; do
        TOOL_PORT=$(head -n 1 "$_fk/port")
        [ -n "$TOOL_PORT" ] && return 0
        kill -0 "$TOOL_PID" 2>/dev/null || break
        sleep 0.025; _i=$((_i + 1))
    done
    printf 'fake.sh: %s did not start: %s\n' "$_tt" "$(cat "$_fk/err")" >&2
    return 1
}

tool_stop() {
    _p=$(cat "$1/pid" 2>/dev/null) || return 0
    [ -n "$_p" ] || return 0
    kill -TERM "$_p" 2>/dev/null
    _i=0
    while kill -0 "$_p" 2>/dev/null && [ $_i -lt 60 ]; do
        [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$_p/status" 2>/dev/null)" = Z ] && break
        sleep 0.05; _i=$((_i + 1))
    done
    rm -f "$1/pid"
    echo "stopped $_p"
}

fake_start() {
    _fk_dir "$1" || return 1
    shift
    : > "$_fk/fake.log"
    FAKE_LOG=$_fk/fake.log
    tool_start "$_fk" fakeimap.py --log "$_fk/fake.log" "$@"; _rc=$?
    FAKE_PORT=$TOOL_PORT; FAKE_PID=$TOOL_PID
    return $_rc
}
fake_stop() { tool_stop "$1"; }

idp_start() {
    _fk_dir "$1" || return 1
    _ik=$2/keys/secret.raw; shift 2
    IDP_LOG=$_fk/log
    tool_start "$_fk" fake_idp.py --secret-file "$_ik" --log "$_fk/log" \
        --port "${IDP_PORT:-0}" "$@"; _rc=$?
    IDP_PORT=$TOOL_PORT
    return $_rc
}
idp_stop() { tool_stop "$1" >/dev/null; }

sink_start() {
    _fk_dir "$1" || return 1
    shift
    SINK_LOG=$_fk/log; SINK_DIR=$_fk/mail
    tool_start "$_fk" smtpsink.py --dir "$_fk/mail" --log "$_fk/log" "$@"; _rc=$?
    SINK_PORT=$TOOL_PORT
    return $_rc
}
sink_stop() { tool_stop "$1" >/dev/null; }
