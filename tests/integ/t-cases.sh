#!/bin/sh
# Protocol edge cases as data: every tests/data/cases/*.case is played by
# tools/scriptserver.py (the server side, line by line, checking what the
# client sends) while mxsync runs the case's commands; the case's expected
# outcomes (exit status, stderr/stdout patterns) become TAP tests, and one
# more per case checks that every server block was played to its end with
# no mismatch.  Format: tests/data/cases/README.md.
# MX_CASES='glob' runs only the cases whose name (without .case) matches.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/dovecot.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/mx.sh"

[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
# under the sanitizers: one leak inside libetpan that mxsync cannot free
# (why: tests/data/cases/lsan.supp); every other leak still fails
if [ "${MX_SANITIZED:-0}" = 1 ]; then
    LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$MX_TOP_SRCDIR/tests/data/cases/lsan.supp"
    export LSAN_OPTIONS
fi
CASES=$MX_TOP_SRCDIR/tests/data/cases
mx_tmpdir; T=$MX_TMP
PKI=

# subst WORDS: the placeholders of a case's command line replaced
subst() {
    printf '%s\n' "$1" | sed -e "s|@PORT@|$CPORT|g" -e "s|@CA@|$PKI/ssl/ca.pem|g" \
        -e "s|@PW@|$CT/pw|g" -e "s|@DIR@|$MXD|g" -e "s|@TMP@|$CT|g"
}

# check_out WHICH KIND ERE: an outcome line on stdout or stderr of the last
# command (KIND: has = a line matches, not = no line matches)
check_out() {
    if [ "$2" = has ]; then
        like "$(cat "$CT/$1")" "$3" "$CN: $1 matches /$3/"
    else
        unlike "$(cat "$CT/$1")" "$3" "$CN: $1 does not match /$3/"
    fi
}

# play CASEFILE
play() {
    CN=$(basename "$1" .case)
    CT=$T/$CN
    mkdir -p "$CT"
    echo casepw > "$CT/pw"
    mx_init "$CT"
    # a certificate for "tls implicit" and the "starttls" directive
    ctls=no
    grep -qE '^(tls implicit|[[:space:]]*starttls)[[:space:]]*$' "$1" && ctls=yes
    if [ $ctls = yes ] && [ -z "$PKI" ]; then
        PKI=$T/pki
        mkdir -p "$PKI"
        _dc_ssl "$PKI" >/dev/null 2>&1 || bail_out "test PKI (openssl) failed"
    fi
    if [ $ctls = yes ]; then
        set -- --cert "$PKI/ssl/cert.pem" --key "$PKI/ssl/key.pem"
    else
        set --
    fi
    tool_start "$CT/srv" scriptserver.py --case "$CASES/$CN.case" \
        --log "$CT/srv/log" "$@" || bail_out "scriptserver.py did not start ($CN)"
    CPORT=$TOOL_PORT
    blocks=$(grep -c '^server$' "$CASES/$CN.case")
    ran=0
    cblock=
    while IFS= read -r cl; do
        if [ -n "$cblock" ]; then
            [ "$cl" = end ] && cblock=
            continue
        fi
        cw=${cl%% *}; ca=${cl#* }
        case $cw in
        data|server) cblock=1 ;;
        mx)
            ran=$((ran + 1)); cmdl=$ca
            eval "set -- $(subst "$ca")"
            mx "$@" </dev/null >"$CT/stdout" 2>"$CT/stderr"
            crc=$?
            if grep -q Sanitizer "$CT/stderr"; then
                fail "$CN: no sanitizer report (mx $ca)"
                diag "$(head -40 "$CT/stderr")"
            fi ;;
        exit)
            if [ "$crc" = "$ca" ]; then
                pass "$CN: exit $ca (mx $cmdl)"
            else
                fail "$CN: exit $ca (mx $cmdl)"
                diag "got exit $crc; stderr:" "$(head -20 "$CT/stderr")"
            fi ;;
        stderr) check_out stderr has "$ca" ;;
        no-stderr) check_out stderr not "$ca" ;;
        stdout) check_out stdout has "$ca" ;;
        no-stdout) check_out stdout not "$ca" ;;
        lines)
            want=${ca%% *}; ere=${ca#* }
            is "$(grep -cE "$ere" "$CT/stdout")" "$want" "$CN: $want stdout lines match /$ere/" ;;
        ''|'#'*|desc|proto|tls) ;;
        *) bail_out "$CN.case: unknown line: $cl" ;;
        esac
    done < "$CASES/$CN.case"
    [ "$ran" -gt 0 ] || bail_out "$CN.case: no mx line"
    # the server may still be reading the client's last bytes: wait (<= 5 s)
    # until every connection it accepted is closed, then judge its log
    wi=0
    while [ "$(grep -c '^conn [0-9]* open' "$CT/srv/log")" != \
            "$(grep -c '^conn [0-9]* closed' "$CT/srv/log")" ] && [ $wi -lt 100 ]; do
        sleep 0.05; wi=$((wi + 1))
    done
    tool_stop "$CT/srv" >/dev/null
    done_n=$(grep -c '^S [0-9]* script done' "$CT/srv/log")
    if [ "$done_n" = "$blocks" ] && ! grep -q '^S [0-9]* MISMATCH' "$CT/srv/log"; then
        pass "$CN: the client's lines matched; $blocks server block(s) played to the end"
    else
        fail "$CN: the client's lines matched; $blocks server block(s) played to the end"
        diag "$(grep -E '^(C|S|conn) ' "$CT/srv/log" | tail -30)"
    fi
}

for cf in "$CASES"/*.case; do
    n=$(basename "$cf" .case)
    # shellcheck disable=SC2254
    case $n in ${MX_CASES:-*}) play "$cf" ;; esac
done
done_testing
