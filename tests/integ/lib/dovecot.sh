# tests/integ/lib/dovecot.sh -- a real Dovecot 2.3 per test on free loopback
# ports (POSIX sh). Source tap.sh first (it sets MX_PY / MX_TOOLS).
# Reference: tests/integ/lib/README.md

: "${MX_PY:=/usr/bin/python3}"
: "${MX_TOOLS:=${MX_TOP_SRCDIR:?MX_TOP_SRCDIR must be set}/tests/integ/tools}"

_dc_err() { printf 'dovecot.sh: %s\n' "$*" >&2; }

_dc_abs() { (cd "$1" && pwd); }

# prints 7 distinct free TCP ports on 127.0.0.1 (all bound at once, port 0)
_dc_free_ports() {
    "$MX_PY" -c '
import socket
ss = []
for _ in range(7):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); ss.append(s)
print(" ".join(str(s.getsockname()[1]) for s in ss))'
}

# _dc_pick_ports DIR -- (re)writes DIR/env with fresh ports and loads it
_dc_pick_ports() {
    set -- "$1" $(_dc_free_ports)
    [ $# -eq 8 ] || { _dc_err "could not pick ports"; return 1; }
    cat > "$1/env" <<EOF
DC_DIR='$1'
DC_IMAP_PORT=$2
DC_IMAPS_PORT=$3
DC_POP3_PORT=$4
DC_POP3S_PORT=$5
DC_LMTP_PORT=$6
DC_SUBMISSION_PORT=$7
DC_RELAY_PORT=$8
DC_CA='$1/ssl/ca.pem'
DC_WRONG_CA='$1/ssl/wrong-ca.pem'
DC_CONF='$1/dovecot.conf'
DC_LOG='$1/log/dovecot.log'
DC_USERS='$1/users'
export DC_DIR DC_IMAP_PORT DC_IMAPS_PORT DC_POP3_PORT DC_POP3S_PORT DC_LMTP_PORT DC_SUBMISSION_PORT DC_RELAY_PORT DC_CA DC_WRONG_CA DC_CONF DC_LOG DC_USERS
EOF
    . "$1/env"
}

# _dc_ssl DIR -- test PKI with the openssl CLI
_dc_ssl() {
    _s="$1/ssl"
    mkdir -p "$_s" || return 1
    (
    cd "$_s" || exit 1
    set -e
    # test CA
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem \
        -days 30 -subj "/CN=mxsync test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    # unrelated CA (for "wrong CA" tests)
    openssl req -x509 -newkey rsa:2048 -nodes -keyout wrong-ca.key -out wrong-ca.pem \
        -days 30 -subj "/CN=mxsync WRONG test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    _leaf() { # NAME CN SAN
        openssl req -new -newkey rsa:2048 -nodes -keyout "$1-key.pem" \
            -out "$1.csr" -subj "/CN=$2" 2>/dev/null
        printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
            "$3" > "$1.ext"
        openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key \
            -CAcreateserial -days 30 -extfile "$1.ext" -out "$1-cert.pem" 2>/dev/null
        rm -f "$1.csr" "$1.ext"
    }
    _leaf server localhost "DNS:localhost,IP:127.0.0.1"
    mv server-cert.pem cert.pem; mv server-key.pem key.pem
    _leaf wrongname wrong.example.test "DNS:wrong.example.test"
    # the JWT key for XOAUTH2/OAUTHBEARER (HS256, local validation)
    mkdir -p ../keys/default/HS256
    printf 'mxsync-test-hmac-secret-0123456789abcdef' > ../keys/secret.raw
    printf '%s' "$(base64 -w0 ../keys/secret.raw)" > ../keys/default/HS256/default
    ) || { _dc_err "openssl failed in $_s"; return 1; }
}

# dc_setup DIR [USER[:PASS]...]  (default users alice@example.test:alicepw,
# bob@example.test:bobpw; a USER without :PASS gets password <localpart>pw)
dc_setup() {
    [ -n "$1" ] || { _dc_err "usage: dc_setup DIR [USER[:PASS]...]"; return 1; }
    mkdir -p "$1" || return 1
    _d=$(_dc_abs "$1") || return 1
    shift
    mkdir -p "$_d/run" "$_d/state" "$_d/log" "$_d/mail" "$_d/pid" || return 1
    chmod 755 "$_d"
    _dc_ssl "$_d" || return 1
    : > "$_d/users"
    if [ $# -eq 0 ]; then
        set -- alice@example.test:alicepw bob@example.test:bobpw
    fi
    for _u in "$@"; do
        case $_u in
            *:*) dc_add_user "$_d" "${_u%%:*}" "${_u#*:}" ;;
            *)   dc_add_user "$_d" "$_u" "${_u%%@*}pw" ;;
        esac
    done
    echo good > "$_d/certsel"
    _dc_pick_ports "$_d" || return 1
    _dc_genconf "$_d" || return 1
    _dc_own "$_d"
}

# dc_add_user DIR USER PASS  (works while Dovecot runs: passwd-file is re-read)
dc_add_user() {
    case "$2$3" in *:*|*'
'*) _dc_err "user/password must not contain ':' or newlines"; return 1 ;; esac
    printf '%s:{PLAIN}%s::::::\n' "$2" "$3" >> "$1/users"
}

# dc_add_users DIR N [PREFIX] -- bulk: PREFIX1@example.test..PREFIXN (pw = localpart"pw")
dc_add_users() {
    "$MX_PY" -c '
import sys
n = int(sys.argv[2]); p = sys.argv[3]
with open(sys.argv[1] + "/users", "a") as f:
    for i in range(1, n + 1):
        f.write("%s%d@example.test:{PLAIN}%s%dpw::::::\n" % (p, i, p, i))
' "$1" "$2" "${3:-user}"
}

# dc_password DIR USER -> prints the password
dc_password() {
    awk -F: -v u="$2" '$1 == u { sub(/^\{PLAIN\}/, "", $2); print $2; exit }' "$1/users"
}

_dc_runas() {
    if [ "$(id -u)" = 0 ]; then
        DC_RUNUSER=${DOVECOT_USER:-nobody}
        DC_RUNGROUP=${DOVECOT_GROUP:-$(id -gn "$DC_RUNUSER")}
    else
        DC_RUNUSER=${DOVECOT_USER:-$(id -un)}
        DC_RUNGROUP=${DOVECOT_GROUP:-$(id -gn "$DC_RUNUSER")}
    fi
}

# when root: hand the tree to the unprivileged account (children run as it)
_dc_own() {
    _dc_runas
    if [ "$(id -u)" = 0 ]; then
        chown -R "$DC_RUNUSER:$DC_RUNGROUP" "$1" || return 1
        # the path to DIR must be traversable by that user
        if ! setpriv --reuid="$DC_RUNUSER" --regid="$DC_RUNGROUP" --clear-groups \
                test -w "$1/mail" 2>/dev/null; then
            _dc_err "$1 is not reachable for $DC_RUNUSER (parent dir permissions?)"
            return 1
        fi
    fi
}

# dc_use_cert DIR good|wrongname -- which server cert Dovecot presents
# (takes effect at the next dc_start/dc_restart)
dc_use_cert() {
    case $2 in good|wrongname) echo "$2" > "$1/certsel" ;;
        *) _dc_err "dc_use_cert: good|wrongname"; return 1 ;; esac
    _dc_genconf "$1"
}

_dc_genconf() {
    _d=$1
    . "$_d/env" || return 1
    _dc_runas
    if [ "$(cat "$_d/certsel" 2>/dev/null)" = wrongname ]; then
        _cert="$_d/ssl/wrongname-cert.pem"; _key="$_d/ssl/wrongname-key.pem"
    else
        _cert="$_d/ssl/cert.pem"; _key="$_d/ssl/key.pem"
    fi
    _dbg=no; [ "${DC_DEBUG:-0}" = 1 ] && _dbg=yes
    cat > "$_d/dovecot.conf" <<EOF
# generated by tests/integ/lib/dovecot.sh -- test-only Dovecot 2.3 config
instance_name = mxsync-test-$DC_IMAP_PORT
base_dir = $_d/run
state_dir = $_d/state
listen = 127.0.0.1
protocols = imap pop3 lmtp submission
hostname = localhost

log_path = $_d/log/dovecot.log
auth_verbose = yes
auth_debug = $_dbg
mail_debug = $_dbg

# children run unprivileged ($DC_RUNUSER); when started by root the master
# stays root (login processes refuse to run as root)
default_internal_user = $DC_RUNUSER
default_internal_group = $DC_RUNGROUP
default_login_user = $DC_RUNUSER
mail_uid = $DC_RUNUSER
mail_gid = $DC_RUNGROUP
first_valid_uid = 0
first_valid_gid = 0

ssl = yes
ssl_cert = <$_cert
ssl_key = <$_key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no

auth_mechanisms = plain login xoauth2 oauthbearer
# don't sleep before answering a failed auth (see also anvil below)
auth_failure_delay = 0

mail_location = maildir:~/Maildir
# test data is disposable: no fsync (much faster bulk delivery)
mail_fsync = never
mail_max_userip_connections = 1000
# Dovecot's default of 100 processes per service is below what t-soak needs
# (50 accounts, each with a sync and an IDLE connection, plus the test's
# own clients): past it, new connections are dropped.
default_process_limit = 400
default_client_limit = 2000
imap_max_line_length = 10M

namespace inbox {
  inbox = yes
  separator = /
  mailbox Drafts {
    special_use = \\Drafts
    auto = create
  }
  mailbox Sent {
    special_use = \\Sent
    auto = create
  }
  mailbox Trash {
    special_use = \\Trash
    auto = create
  }
  mailbox Junk {
    special_use = \\Junk
    auto = create
  }
  mailbox Archive {
    special_use = \\Archive
    auto = create
  }
}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $_d/users
  mechanisms = plain login
}
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $_d/oauth2.conf.ext
}
userdb {
  driver = passwd-file
  args = username_format=%u $_d/users
  default_fields = home=$_d/mail/%u
}

service imap-login {
  chroot =
  inet_listener imap {
    port = $DC_IMAP_PORT
  }
  inet_listener imaps {
    port = $DC_IMAPS_PORT
    ssl = yes
  }
}
service pop3-login {
  chroot =
  inet_listener pop3 {
    port = $DC_POP3_PORT
  }
  inet_listener pop3s {
    port = $DC_POP3S_PORT
    ssl = yes
  }
}
service submission-login {
  chroot =
  inet_listener submission {
    port = $DC_SUBMISSION_PORT
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $DC_LMTP_PORT
  }
  unix_listener lmtp {
    mode = 0666
  }
}
service anvil {
  chroot =
  # mode 0: auth can't reach anvil => no auth penalty for repeated failures
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

protocol lmtp {
  postmaster_address = postmaster@example.test
}
# LMTP to user+Folder@domain delivers into Folder (created if missing)
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
lda_mailbox_autocreate = yes

# submission needs an SMTP relay; nothing listens on DC_RELAY_PORT unless a
# test starts one there
submission_relay_host = 127.0.0.1
submission_relay_port = $DC_RELAY_PORT
submission_relay_ssl = no
submission_relay_trusted = no
# per-instance additions (benchmarks: process limits for many clients)
!include_try $_d/local.conf
EOF
    cat > "$_d/oauth2.conf.ext" <<EOF
# local JWT validation (no HTTP); key: keys/default/HS256/default
introspection_mode = local
local_validation_key_dict = fs:posix:prefix=$_d/keys/
username_attribute = email
debug = $_dbg
EOF
}

# _dc_alive PID -- true if PID exists and is not a zombie
_dc_alive() {
    [ -n "$1" ] || return 1
    kill -0 "$1" 2>/dev/null || return 1
    _st=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ "$_st" != Z ]
}

# dc_pid DIR -> prints the master PID (if running)
dc_pid() {
    _p=$(cat "$1/pid/dovecot.pid" 2>/dev/null) || return 1
    _dc_alive "$_p" && echo "$_p"
}

# dc_start DIR -- start and wait (<=10 s) for greetings on every port.
# (Re)loads DIR/env into the caller's shell. Retries with new ports if a
# port was taken meanwhile.
dc_start() {
    _d=$(_dc_abs "$1") || return 1
    if dc_pid "$_d" >/dev/null; then _dc_err "already running: $_d"; return 1; fi
    _try=1
    while :; do
        . "$_d/env"
        _dc_genconf "$_d" || return 1
        # fresh base_dir each start (stale sockets delay auth by 5 s)
        rm -rf "$_d/run" && mkdir -p "$_d/run" "$_d/pid" || return 1
        [ "$(id -u)" = 0 ] && chown "$DC_RUNUSER:$DC_RUNGROUP" "$_d/run" "$_d/log"
        : > "$_d/log/dovecot.log"
        _t0=$(date +%s.%N)
        # subshell: the master is not our child (no zombie to reap), and
        # it does not hold the test's stdout (the TAP pipe) open
        ( dovecot -c "$_d/dovecot.conf" -F </dev/null >>"$_d/log/dovecot.stdout" 2>&1 &
          echo $! > "$_d/pid/dovecot.pid" )
        if "$MX_PY" "$MX_TOOLS/dcwait.py" "$_d" 10 "$(cat "$_d/pid/dovecot.pid")"; then
            return 0
        fi
        if grep -q 'Address already in use' "$_d/log/dovecot.log" "$_d/log/dovecot.stdout" 2>/dev/null \
                && [ $_try -lt 4 ]; then
            _dc_err "port collision, retrying with new ports"
            dc_stop "$_d" >/dev/null 2>&1
            _dc_pick_ports "$_d" || return 1
            _try=$((_try + 1))
            continue
        fi
        _dc_err "Dovecot in $_d did not become ready; log tail:"
        tail -n 30 "$_d/log/dovecot.log" "$_d/log/dovecot.stdout" >&2
        dc_stop "$_d" >/dev/null 2>&1
        return 1
    done
}

# dc_stop DIR -- SIGTERM the master (by PID), wait until gone (<= ~6 s).
# Prints "stopped PID" (or nothing if it was not running).
dc_stop() {
    _p=$(cat "$1/pid/dovecot.pid" 2>/dev/null) || return 0
    [ -n "$_p" ] || return 0
    if ! _dc_alive "$_p"; then rm -f "$1/pid/dovecot.pid"; return 0; fi
    # the master's children (to clean up if the master must be SIGKILLed)
    _kids=$(ps -o pid= --ppid "$_p" 2>/dev/null)
    kill -TERM "$_p" 2>/dev/null
    _i=0
    while _dc_alive "$_p" && [ $_i -lt 120 ]; do sleep 0.05; _i=$((_i + 1)); done
    if _dc_alive "$_p"; then
        _dc_err "master $_p still running after 6 s; SIGKILL (and its children)"
        kill -KILL "$_p" $_kids 2>/dev/null
        sleep 0.2
    fi
    rm -f "$1/pid/dovecot.pid"
    echo "stopped $_p"
}

dc_restart() {
    dc_stop "$1" >/dev/null && dc_start "$1"
}

# dc_deliver DIR USER [--folder F] [--progress] FILE_OR_DIR...
#   LMTP delivery; prints the number accepted on stdout; rejections on stderr.
#   --folder F uses LMTP "user+F@domain" (lmtp_save_to_detail_mailbox,
#   autocreate). Only for names made of [A-Za-z0-9._/-]; for other names
#   use: dc_imap DIR USER append FOLDER FILE
dc_deliver() {
    _d=$1; _u=$2; shift 2
    . "$_d/env"
    "$MX_PY" "$MX_TOOLS/deliver.py" --port "$DC_LMTP_PORT" --rcpt "$_u" "$@"
}

# dc_bulk_load DIR USER [--folder F] [--progress] FILE_OR_DIR...
#   Fast bulk load for benchmarks (thousands of msgs/s): writes the messages
#   straight into the Maildir folder (no LMTP, so no Return-Path/Received
#   headers added; LF line endings like Dovecot stores them), then lets
#   Dovecot index them (doveadm force-resync): UIDs follow input order.
#   Dovecot must be running. Prints the number written.
dc_bulk_load() {
    _bd=$1; _bu=$2; shift 2
    _bf=INBOX
    if [ "$1" = --folder ]; then _bf=$2; shift 2; fi
    _dc_runas
    doveadm -c "$_bd/dovecot.conf" mailbox create -u "$_bu" "$_bf" 2>/dev/null
    # make sure the user's Maildir exists
    doveadm -c "$_bd/dovecot.conf" mailbox status -u "$_bu" messages "$_bf" >/dev/null || return 1
    _bp=$(doveadm -c "$_bd/dovecot.conf" mailbox path -u "$_bu" "$_bf") && [ -d "$_bp" ] ||
        { _dc_err "no Maildir path for $_bu $_bf"; return 1; }
    _bn=$("$MX_PY" "$MX_TOOLS/deliver.py" --port 0 --rcpt "$_bu" --maildir "$_bp" "$@") || return 1
    [ "$(id -u)" = 0 ] && chown -R "$DC_RUNUSER:$DC_RUNGROUP" "$_bp/cur"
    doveadm -c "$_bd/dovecot.conf" force-resync -u "$_bu" "$_bf" || return 1
    echo "$_bn"
}

# dc_imap DIR USER [CONN-OPTS] SUBCOMMAND ARGS...
#   tools/imaptool.py over IMAPS with the test CA and USER's password.
#   CONN-OPTS (before the subcommand) override: --starttls / --plain use the
#   plain port, --port N, --ca FILE, --password P, --host H.
dc_imap() {
    _d=$1; _u=$2; shift 2
    . "$_d/env"
    _port=$DC_IMAPS_PORT
    for _a in "$@"; do
        case $_a in --plain|--starttls) _port=$DC_IMAP_PORT ;; esac
    done
    "$MX_PY" "$MX_TOOLS/imaptool.py" --host 127.0.0.1 --port "$_port" --tls \
        --ca "$DC_CA" --user "$_u" --password "$(dc_password "$_d" "$_u")" "$@"
}

# dc_doveadm DIR ARGS... -- doveadm against this instance
dc_doveadm() {
    _d=$1; shift
    doveadm -c "$_d/dovecot.conf" "$@"
}

# dc_token DIR USER [LIFETIME_S] -- prints an HS256 JWT Dovecot accepts for
# XOAUTH2/OAUTHBEARER (negative lifetime = expired token)
dc_token() {
    "$MX_PY" "$MX_TOOLS/mint.py" "$2" "${3:-3600}" "$1/keys/secret.raw"
}

# dc_uidvalidity DIR USER FOLDER -> prints the current UIDVALIDITY
dc_uidvalidity() {
    doveadm -c "$1/dovecot.conf" -f flow mailbox status -u "$2" uidvalidity "$3" 2>/dev/null |
        sed -n 's/.*uidvalidity=\([0-9]*\).*/\1/p'
}

# dc_uidvalidity_reset DIR USER FOLDER [--renumber] -- give FOLDER a new
# UIDVALIDITY (old+1000, or higher); messages keep content and flags.
# Default: `doveadm mailbox update --uid-validity` -- the UIDs stay the same.
# --renumber: also deletes the folder's dovecot-uidlist + index files, so
# Dovecot assigns fresh UIDs (1..N, in directory order) -- the nastier case.
# Works with Dovecot running or stopped (doveadm needs the auth socket, so
# a stopped instance is started for the change and stopped again); no
# client should have the folder selected meanwhile. Prints the new value.
dc_uidvalidity_reset() {
    if ! dc_pid "$1" >/dev/null; then
        dc_start "$1" || return 1
        _dc_uvr "$@"; _rc=$?
        dc_stop "$1" >/dev/null
        return $_rc
    fi
    _dc_uvr "$@"
}

_dc_uvr() {
    _old=$(dc_uidvalidity "$1" "$2" "$3")
    [ -n "$_old" ] || { _dc_err "no uidvalidity for $2 $3"; return 1; }
    _new=$((_old + 1000))
    if [ "$4" = --renumber ]; then
        _mp=$(doveadm -c "$1/dovecot.conf" mailbox path -u "$2" "$3") &&
            [ -n "$_mp" ] && [ -d "$_mp" ] || { _dc_err "no path for $2 $3"; return 1; }
        _ip=$(doveadm -c "$1/dovecot.conf" mailbox path -u "$2" -t index "$3")
        rm -f "$_mp/dovecot-uidlist" "${_ip:-$_mp}"/dovecot.index \
              "${_ip:-$_mp}"/dovecot.index.log "${_ip:-$_mp}"/dovecot.index.log.2 \
              "${_ip:-$_mp}"/dovecot.index.cache
        # rescan (assigns new UIDs and a UIDVALIDITY = now)
        _now=$(dc_uidvalidity "$1" "$2" "$3")
        [ -n "$_now" ] && [ "$_now" -gt "$_new" ] && _new=$((_now + 1))
    fi
    doveadm -c "$1/dovecot.conf" mailbox update -u "$2" --uid-validity "$_new" "$3" || return 1
    _got=$(dc_uidvalidity "$1" "$2" "$3")
    if [ "$_got" != "$_new" ]; then
        _dc_err "uidvalidity is $_got, wanted $_new"; return 1
    fi
    echo "$_new"
}

# dc_log DIR [N] -- last N (default 40) lines of the Dovecot log
dc_log() { tail -n "${2:-40}" "$1/log/dovecot.log"; }
