# tests/integ/lib/fake.sh -- start/stop tools/fakeimap.py servers (POSIX sh).
# Source tap.sh first (uses at_exit). Reference: tests/integ/lib/README.md
#
#   fake_start DIR [fakeimap.py ARGS...]    e.g. fake_start "$T/f1" --mode nostarttls
#     -> sets FAKE_PORT, FAKE_PID, FAKE_LOG (=DIR/fake.log, passed as --log)
#        and registers fake_stop at exit. DIR is created; DIR/fake.pid, DIR/port.
#   fake_stop DIR                           SIGTERM by PID, waits (<= 3 s)

: "${MX_PY:=/usr/bin/python3}"
: "${MX_TOOLS:=${MX_TOP_SRCDIR:?MX_TOP_SRCDIR must be set}/tests/integ/tools}"

fake_start() {
    _fd=$1; shift
    mkdir -p "$_fd" || return 1
    _fd=$(cd "$_fd" && pwd)
    : > "$_fd/port"; : > "$_fd/fake.log"
    ( "$MX_PY" "$MX_TOOLS/fakeimap.py" --log "$_fd/fake.log" "$@" \
          </dev/null >"$_fd/port" 2>"$_fd/stderr" &
      echo $! > "$_fd/fake.pid" )
    FAKE_PID=$(cat "$_fd/fake.pid")
    FAKE_LOG=$_fd/fake.log
    command -v at_exit >/dev/null 2>&1 && at_exit "fake_stop '$_fd' >/dev/null"
    _i=0
    while [ $_i -lt 200 ]; do
        FAKE_PORT=$(head -n 1 "$_fd/port")
        [ -n "$FAKE_PORT" ] && return 0
        kill -0 "$FAKE_PID" 2>/dev/null || break
        sleep 0.025; _i=$((_i + 1))
    done
    printf 'fake.sh: fakeimap did not start: %s\n' "$(cat "$_fd/stderr")" >&2
    return 1
}

fake_stop() {
    _p=$(cat "$1/fake.pid" 2>/dev/null) || return 0
    [ -n "$_p" ] || return 0
    kill -TERM "$_p" 2>/dev/null
    _i=0
    while kill -0 "$_p" 2>/dev/null && [ $_i -lt 60 ]; do
        [ "$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$_p/status" 2>/dev/null)" = Z ] && break
        sleep 0.05; _i=$((_i + 1))
    done
    rm -f "$1/fake.pid"
    echo "stopped $_p"
}
