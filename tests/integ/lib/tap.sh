# tests/integ/lib/tap.sh -- TAP helpers for integration tests (POSIX sh/dash).
#
# Usage (at the top of a test script):
#   : "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
#   . "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
#
# Do NOT use `set -e` in tests: failed checks must not abort the script.
# See tests/integ/lib/README.md for the reference.

MX_PY=${MX_PY:-/usr/bin/python3}
MX_INTEG_DIR="${MX_TOP_SRCDIR:?MX_TOP_SRCDIR must be set}/tests/integ"
MX_TOOLS="$MX_INTEG_DIR/tools"
export MX_PY MX_INTEG_DIR MX_TOOLS

_tap_n=0
_tap_failed=0
_tap_planned=
_tap_exit_cmds=

# ---------------------------------------------------------------- output
diag() {
    # every line of every argument gets a "# " prefix
    printf '%s\n' "$*" | sed 's/^/# /'
}

_tap_result() { # STATUS DESC
    _tap_n=$((_tap_n + 1))
    if [ "$1" -eq 0 ] 2>/dev/null; then
        printf 'ok %d - %s\n' "$_tap_n" "$2"
        return 0
    fi
    _tap_failed=$((_tap_failed + 1))
    printf 'not ok %d - %s\n' "$_tap_n" "$2"
    return 1
}

# ok STATUS DESC   -- STATUS 0 = pass, anything else (incl. non-numbers) = fail
ok() {
    _tap_result "$1" "$2"
}

# is GOT WANT DESC
is() {
    if [ "x$1" = "x$2" ]; then
        _tap_result 0 "$3"
    else
        _tap_result 1 "$3"
        diag "got:  $1"
        diag "want: $2"
        return 1
    fi
}

# isnt GOT UNWANTED DESC
isnt() {
    if [ "x$1" != "x$2" ]; then
        _tap_result 0 "$3"
    else
        _tap_result 1 "$3"
        diag "got (unwanted): $1"
        return 1
    fi
}

# like STRING ERE DESC  -- passes if any line of STRING matches the ERE
like() {
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then
        _tap_result 0 "$3"
    else
        _tap_result 1 "$3"
        diag "string: $1"
        diag "does not match: $2"
        return 1
    fi
}

# unlike STRING ERE DESC -- passes if no line of STRING matches
unlike() {
    if printf '%s\n' "$1" | grep -Eq -- "$2"; then
        _tap_result 1 "$3"
        diag "string: $1"
        diag "matches (unwanted): $2"
        return 1
    else
        _tap_result 0 "$3"
    fi
}

# run_ok DESC CMD [ARGS...] -- ok if CMD exits 0. stdout+stderr is kept in
# $MX_OUT (and file $MX_OUT_FILE) for later checks; shown as diag on failure.
run_ok() {
    _tap_desc=$1; shift
    _tap_run "$@"
    if [ "$MX_RC" -eq 0 ]; then
        _tap_result 0 "$_tap_desc"
    else
        _tap_result 1 "$_tap_desc"
        diag "command: $*"
        diag "exit status: $MX_RC"
        [ -n "$MX_OUT" ] && diag "$MX_OUT"
        return 1
    fi
}

# run_fails DESC CMD [ARGS...] -- ok if CMD exits non-zero (output in $MX_OUT)
run_fails() {
    _tap_desc=$1; shift
    _tap_run "$@"
    if [ "$MX_RC" -ne 0 ]; then
        _tap_result 0 "$_tap_desc"
    else
        _tap_result 1 "$_tap_desc"
        diag "command unexpectedly succeeded: $*"
        [ -n "$MX_OUT" ] && diag "$MX_OUT"
        return 1
    fi
}

_tap_run() {
    if [ -z "$MX_OUT_FILE" ]; then
        MX_OUT_FILE=$(mktemp "${TMPDIR:-/tmp}/mx-out.XXXXXX") || return 1
        at_exit "rm -f '$MX_OUT_FILE'"
    fi
    "$@" >"$MX_OUT_FILE" 2>&1 </dev/null
    MX_RC=$?
    MX_OUT=$(cat "$MX_OUT_FILE")
}

pass() { _tap_result 0 "$1"; }
fail() { _tap_result 1 "$1"; }

# skip DESC -- records a skipped test ("ok N # SKIP DESC")
skip() {
    _tap_n=$((_tap_n + 1))
    printf 'ok %d # SKIP %s\n' "$_tap_n" "$1"
}

# skip_all REASON -- whole script skipped; call before any test
skip_all() {
    printf '1..0 # SKIP %s\n' "$1"
    _tap_planned=done
    exit 0
}

# bail_out REASON -- abort the whole run (tap-driver marks it as an error)
bail_out() {
    printf 'Bail out! %s\n' "$1"
    _tap_planned=done
    exit 255
}

# done_testing -- prints the plan "1..N"; exits 1 if any test failed
done_testing() {
    printf '1..%d\n' "$_tap_n"
    _tap_planned=done
    if [ "$_tap_failed" -gt 0 ]; then
        diag "$_tap_failed of $_tap_n tests failed"
        exit 1
    fi
    exit 0
}

# ---------------------------------------------------------------- cleanup
# at_exit CMD -- run CMD (a shell string, eval'ed) when the script exits,
# also on failure/INT/TERM. Commands run in reverse order of registration
# (last registered first), so servers stop before their tmpdir is removed.
at_exit() {
    _tap_exit_cmds="$1
$_tap_exit_cmds"
}

_tap_on_exit() {
    _rc=$?
    trap - EXIT
    _cmds=$_tap_exit_cmds
    _tap_exit_cmds=
    while IFS= read -r _c; do
        [ -n "$_c" ] && { eval "$_c" >&2 || :; }
    done <<_MX_EOF_
$_cmds
_MX_EOF_
    if [ -z "$_tap_planned" ] && [ "$_tap_n" -gt 0 ] && [ "$_rc" -eq 0 ]; then
        # script ended without done_testing: make it visible
        printf '# script exited without done_testing\n'
        _rc=1
    fi
    exit "$_rc"
}
trap _tap_on_exit EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# mx_tmpdir [NAME] -- prints a fresh scratch dir under ${TMPDIR:-/tmp}; it is
# removed at exit unless MX_KEEP_TMP=1. Use as:  T=$(mx_tmpdir) ; but since
# that runs in a subshell the at_exit registration would be lost -- so use
#     mx_tmpdir; T=$MX_TMP
# (sets MX_TMP) instead.  World-traversable (0755) so Dovecot children
# running as `nobody` can enter it.
mx_tmpdir() {
    MX_TMP=$(mktemp -d "${TMPDIR:-/tmp}/mx-${1:-$(basename "$0" .sh)}.XXXXXX") || {
        diag "mktemp failed"; return 1; }
    chmod 755 "$MX_TMP"
    if [ "${MX_KEEP_TMP:-0}" = 1 ]; then
        at_exit "echo '# kept scratch dir: $MX_TMP' >&2"
    else
        at_exit "rm -rf '$MX_TMP'"
    fi
    export MX_TMP
}
