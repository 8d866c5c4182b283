# tests/integ/lib/api.sh -- helpers for tests of mxsyncd's HTTP API
# (doc/openapi.yaml).  Source tap.sh, dovecot.sh and mx.sh first and call
# mx_init.  Every process started here is stopped by PID at exit.
#
#   api_conf [KEY=VALUE...]    appends an [api] section to $MXD/mxsync.conf:
#                              listen = 127.0.0.1:<free port>, then the
#                              given keys; sets API_PORT, API_URL
#   api_daemon_start           d_start (lib/mx.sh, stopped at exit), then
#                              waits <= 30 s for GET $API_URL/v1/health = 200
#                              (curl gets $API_CURL_OPTS too: e.g.
#                              "--unix-socket PATH", "--cacert CA")
#   api_token USER [ARGS...]   mxsync token create --user USER --json ARGS;
#                              sets API_TOKEN, API_TOKEN_ID, prints the token
#   api_tools_check            the npm contract tools are installed
#                              (scripts/npm-tools.sh); else a message naming
#                              the setup command on stderr, return 1
#   api_prism_start DIR [UPSTREAM]
#                              prism proxy doc/openapi.yaml UPSTREAM (default
#                              $API_URL) --errors on a free port (log
#                              DIR/log); sets PRISM_URL
#   api_prism_stop DIR         stops it (also done at exit)
#   api_req METHOD URL [TOKEN|-] [CURL ARGS...]
#                              one request (TOKEN: Authorization: Bearer);
#                              sets API_STATUS (000: no HTTP answer),
#                              API_BODYF / API_HDRF (files of the answer)
#   api_get PATH [TOKEN|-] [CURL ARGS...]
#                              api_req GET "$API_BASE$PATH" ... (API_BASE:
#                              $API_URL, or $PRISM_URL to go through prism)
#   api_body                   the last answer's body
#   api_header NAME            the value of header NAME of the last answer
#   api_json EXPR              Python EXPR over the last body parsed as JSON
#                              (j); strings printed as they are, the rest
#                              as JSON; "<...>" when it is not JSON or EXPR
#                              fails
#   api_code                   the last answer's error.code (or "<...>")
#   api_now_ms                 milliseconds since the epoch

: "${MXSYNCD:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/daemon/mxsyncd}"
# scripts/test.sh exports MX_CONTRACT_TOOLS (distcheck's copy of the tree
# has no node_modules of its own)
: "${MX_CONTRACT_TOOLS:=$MX_TOP_SRCDIR/tests/contract/node_modules}"
API_SPEC=$MX_TOP_SRCDIR/doc/openapi.yaml
API_PORT= API_URL= API_BASE= PRISM_URL= API_TOKEN= API_TOKEN_ID=
API_STATUS= API_BODYF= API_HDRF=
_api_stopreg=

api_now_ms() { echo $(($(date +%s%N) / 1000000)); }

api_conf() {
    API_PORT=$(_dc_free_ports | cut -d' ' -f1)
    [ -n "$API_PORT" ] || return 1
    API_URL=http://127.0.0.1:$API_PORT
    API_BASE=$API_URL
    { printf '\n[api]\nlisten = 127.0.0.1:%s\n' "$API_PORT"
      for _a in "$@"; do printf '%s = %s\n' "${_a%%=*}" "${_a#*=}"; done
    } >> "$MXD/mxsync.conf"
}

api_daemon_start() {
    [ -n "$_api_stopreg" ] || { at_exit d_stop_at_exit; _api_stopreg=1; }
    d_start
    _ai=0
    while [ $_ai -lt 300 ]; do
        d_alive || { echo "api.sh: mxsyncd exited; log tail:" >&2; tail -n 20 "$DLOG" >&2; return 1; }
        # shellcheck disable=SC2086 # API_CURL_OPTS: several words
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 ${API_CURL_OPTS:-} "$API_URL/v1/health")" = 200 ] &&
            return 0
        sleep 0.1; _ai=$((_ai + 1))
    done
    echo "api.sh: /v1/health not 200 after 30 s; log tail:" >&2
    tail -n 20 "$DLOG" >&2
    return 1
}

api_token() {
    _au=$1; shift
    _aj=$("$MX_BIN" -d "$MXD" token create --user "$_au" --json "$@") || return 1
    API_TOKEN=$(printf '%s' "$_aj" | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)["token"])') || return 1
    API_TOKEN_ID=$(printf '%s' "$_aj" | "$MX_PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])') || return 1
    printf '%s\n' "$API_TOKEN"
}

api_tools_check() {
    for _at in prism redocly; do
        [ -x "$MX_CONTRACT_TOOLS/.bin/$_at" ] && continue
        echo "api.sh: $_at not installed in $MX_CONTRACT_TOOLS: run scripts/npm-tools.sh (scripts/deps.sh and scripts/test.sh run it)" >&2
        return 1
    done
    command -v node >/dev/null || { echo "api.sh: node not found: install Node.js, then run scripts/npm-tools.sh" >&2; return 1; }
}

api_prism_start() {
    api_tools_check || return 1
    mkdir -p "$1"
    _ap=$(_dc_free_ports | cut -d' ' -f1)
    "$MX_CONTRACT_TOOLS/.bin/prism" proxy "$API_SPEC" "${2:-$API_URL}" --errors \
        --host 127.0.0.1 --port "$_ap" </dev/null >"$1/log" 2>&1 &
    echo $! > "$1/pid"
    at_exit "api_prism_stop '$1'"
    PRISM_URL=http://127.0.0.1:$_ap
    _ai=0
    while [ $_ai -lt 300 ]; do
        kill -0 "$(cat "$1/pid")" 2>/dev/null ||
            { echo "api.sh: prism exited; log:" >&2; tail -n 20 "$1/log" >&2; return 1; }
        # any HTTP answer: prism is up (its own 500 when the upstream
        # answers what the spec does not allow)
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$PRISM_URL/v1/version")" != 000 ] &&
            return 0
        sleep 0.1; _ai=$((_ai + 1))
    done
    echo "api.sh: prism not answering after 30 s; log:" >&2
    tail -n 20 "$1/log" >&2
    return 1
}
api_prism_stop() {
    _apid=$(cat "$1/pid" 2>/dev/null) || return 0
    kill -TERM "$_apid" 2>/dev/null
    _ai=0
    while kill -0 "$_apid" 2>/dev/null && [ $_ai -lt 50 ]; do sleep 0.1; _ai=$((_ai + 1)); done
    kill -KILL "$_apid" 2>/dev/null
    wait "$_apid" 2>/dev/null
    rm -f "$1/pid"
}

api_req() {
    _am=$1; _aurl=$2; _atok=${3:--}; shift 2; [ $# -gt 0 ] && shift
    : "${API_TMPD:=${MX_TMP:?call mx_tmpdir first}/api}"
    mkdir -p "$API_TMPD"
    API_BODYF=$API_TMPD/body API_HDRF=$API_TMPD/headers
    if [ "$_atok" = - ]; then
        API_STATUS=$(curl -sS -X "$_am" -o "$API_BODYF" -D "$API_HDRF" -w '%{http_code}' \
            --max-time "${API_MAXTIME:-30}" "$@" "$_aurl" 2>"$API_TMPD/curl.err")
    else
        API_STATUS=$(curl -sS -X "$_am" -o "$API_BODYF" -D "$API_HDRF" -w '%{http_code}' \
            --max-time "${API_MAXTIME:-30}" -H "Authorization: Bearer $_atok" "$@" "$_aurl" \
            2>"$API_TMPD/curl.err")
    fi
}

api_get() {
    _apth=$1; shift
    api_req GET "$API_BASE$_apth" "$@"
}

api_body() { cat "$API_BODYF"; }

api_header() {
    tr -d '\r' < "$API_HDRF" | awk -v n="$1" '
        BEGIN { n = tolower(n) }
        { i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v } }'
}

api_json() {
    "$MX_PY" -c '
import json,sys
try:
    j = json.load(open(sys.argv[1], "rb"))
except Exception as e:
    print("<not JSON: %s>" % e); sys.exit(1)
try:
    v = eval(sys.argv[2])
except Exception as e:
    print("<%s: %r>" % (type(e).__name__, e)); sys.exit(1)
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True))' "$API_BODYF" "$1"
}

api_code() { api_json 'j["error"]["code"]'; }
