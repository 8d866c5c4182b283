#!/bin/sh
# Server discovery (mxsync account discover): RFC 6186 SRV records from a
# local DNS fixture (tools/dnsfixture.py) and autoconfig documents from a
# local HTTPS fixture (tools/httpsfixture.py) with a test CA made here.
# Every run points the resolver at the DNS fixture (MXSYNC_DNS_SERVER) and
# every HTTPS connection at the HTTPS fixture (MXSYNC_DISCOVER_CONNECT_TO):
# nothing leaves 127.0.0.1.
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"
. "$MX_TOP_SRCDIR/tests/integ/lib/fake.sh"
: "${MX_BIN:=${MX_TOP_BUILDDIR:-$MX_TOP_SRCDIR}/src/cli/mxsync}"

[ -x "$MX_BIN" ] || skip_all "mxsync not built ($MX_BIN)"
command -v openssl >/dev/null || skip_all "no openssl"
[ -x "$MX_PY" ] || skip_all "no $MX_PY"
mx_tmpdir discover; T=$MX_TMP

# ---- test PKI: a CA, a server certificate for every name below, and an
# unrelated CA
names="ac.test wk.test redir.test loop.test httpredir.test huge.test bad.test none.test hostile.test"
san="DNS:conf.provider.test"
for d in $names; do san="$san,DNS:$d,DNS:autoconfig.$d"; done
mkca() { # NAME
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$T/$1.key" -out "$T/$1.pem" -days 2 -subj "/CN=mxsync test $1" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
mkca ca && mkca wrongca || bail_out "openssl: CA"
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" > "$T/ext.cnf"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$T/key.pem" -out "$T/csr.pem" -subj "/CN=autoconfig.ac.test" 2>/dev/null &&
openssl x509 -req -in "$T/csr.pem" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
    -CAcreateserial -out "$T/cert.pem" -days 2 -extfile "$T/ext.cnf" 2>/dev/null ||
    bail_out "openssl: server certificate"

# ---- autoconfig documents
cat > "$T/good.xml" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- shaped like a Thunderbird ISPDB entry -->
<clientConfig version="1.1">
  <emailProvider id="ac.test">
    <domain>ac.test</domain>
    <displayName>AC Mail &amp; Co</displayName>
    <incomingServer type="imap">
      <hostname>imap.ac.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>OAuth2</authentication>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>pop.ac.test</hostname>
      <port>110</port>
      <socketType>plain</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.%EMAILDOMAIN%</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
EOF
cat > "$T/wk.xml" <<'EOF'
<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="wk.test">
<incomingServer type="imap"><hostname>mail.wk.test</hostname><port>143</port>
<socketType>STARTTLS</socketType><username>%EMAILLOCALPART%</username>
<authentication>password-encrypted</authentication></incomingServer>
</emailProvider></clientConfig>
EOF
cat > "$T/provider.xml" <<'EOF'
<clientConfig version="1.1"><emailProvider id="provider.test">
<incomingServer type="imap"><hostname>imap.provider.test</hostname><port>993</port>
<socketType>SSL</socketType><username>%EMAILLOCALPART%</username></incomingServer>
</emailProvider></clientConfig>
EOF
cat > "$T/wrongtypes.xml" <<'EOF'
<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="bad.test">
<incomingServer type="imap"><hostname>imap.bad.test</hostname><port>abc</port><socketType>SSL</socketType></incomingServer>
<incomingServer type="imap"><hostname>imap.bad.test</hostname><port>70000</port><socketType>SSL</socketType></incomingServer>
<incomingServer type="imap"><hostname>imap.bad.test</hostname><port>993</port><socketType>weird</socketType></incomingServer>
<incomingServer type="imap"><port>993</port><socketType>SSL</socketType></incomingServer>
<incomingServer type="exchange"><hostname>ews.bad.test</hostname><port>443</port><socketType>SSL</socketType></incomingServer>
<incomingServer type="imap"><hostname>-bad-.test</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
<outgoingServer type="smtp"><hostname>smtp.bad.test</hostname><port>465</port><socketType>SSL</socketType><authentication>NTLM</authentication></outgoingServer>
</emailProvider></clientConfig>
EOF
cat > "$T/doctype.xml" <<'EOF'
<?xml version="1.0"?>
<!DOCTYPE clientConfig [ <!ENTITY host SYSTEM "file:///etc/passwd"> ]>
<clientConfig version="1.1"><emailProvider id="bad.test">
<incomingServer type="imap"><hostname>&host;</hostname><port>993</port><socketType>SSL</socketType></incomingServer>
</emailProvider></clientConfig>
EOF

AC=/mail/config-v1.1.xml
WK=/.well-known/autoconfig/mail/config-v1.1.xml
cat > "$T/routes.json" <<EOF
{
 "autoconfig.ac.test$AC": {"file": "$T/good.xml"},
 "wk.test$WK": {"file": "$T/wk.xml", "type": "application/octet-stream"},
 "autoconfig.redir.test$AC": {"redirect": "https://conf.provider.test/redir/config.xml"},
 "conf.provider.test/redir/config.xml": {"file": "$T/provider.xml"},
 "autoconfig.loop.test$AC": {"redirect": "https://autoconfig.loop.test$AC", "status": 301},
 "autoconfig.httpredir.test$AC": {"redirect": "http://autoconfig.httpredir.test$AC"},
 "autoconfig.huge.test$AC": {"huge": 10000000},
 "huge.test$WK": {"huge": 200000, "length": true},
 "autoconfig.bad.test$AC": {"file": "$T/wrongtypes.xml"},
 "bad.test$WK": {"file": "$T/doctype.xml"}
}
EOF
cat > "$T/zone.json" <<'EOF'
{
 "_imaps._tcp.srv.test": {"srv": [[10, 0, 993, "imap-b.srv.test"], [5, 0, 9993, "imap-a.srv.test"], [10, 50, 993, "imap-c.srv.test"]]},
 "_imap._tcp.srv.test": {"srv": [[0, 0, 0, "."]]},
 "_pop3s._tcp.srv.test": {"hostile": "garbage"},
 "_pop3._tcp.srv.test": {"hostile": "loop"},
 "_submissions._tcp.srv.test": {"srv": [[0, 1, 465, "smtp.srv.test."]]},
 "_submission._tcp.srv.test": {"hostile": "badname"},
 "_imaps._tcp.hostile.test": {"hostile": "short"},
 "_imap._tcp.hostile.test": {"hostile": "rdlen"},
 "_pop3s._tcp.hostile.test": {"hostile": "servfail"},
 "_submissions._tcp.hostile.test": {"srv": [[1, 0, 465, "mail.hostile.test"]]},
 "_imaps._tcp.foreign.test": {"srv": [[0, 0, 993, "mail.other.test"]]},
 "_submission._tcp.foreign.test": {"srv": [[0, 0, 587, "smtp.foreign.test"]]}
}
EOF

# ---- fixtures
# tool_start (lib/fake.sh) runs in this shell, not in $(...), so the stop
# it registers with at_exit is kept and the fixtures end with the test.
tool_start "$T/dns" dnsfixture.py --zone "$T/zone.json" --log "$T/dns.log" ||
    bail_out "dnsfixture did not start"
DNS_PORT=$TOOL_PORT
tool_start "$T/https" httpsfixture.py --cert "$T/cert.pem" \
    --key "$T/key.pem" --routes "$T/routes.json" --log "$T/https.log" ||
    bail_out "httpsfixture did not start"
HTTPS_PORT=$TOOL_PORT
MXSYNC_DNS_SERVER=127.0.0.1:$DNS_PORT
MXSYNC_DISCOVER_CONNECT_TO=127.0.0.1:$HTTPS_PORT
export MXSYNC_DNS_SERVER MXSYNC_DISCOVER_CONNECT_TO
CA=$T/ca.pem

# disc ARGS...: discovery with stdout in $T/out, stderr in $T/err, status in $RC
disc() {
    "$MX_BIN" account discover "$@" --ca-file "$CA" --timeout 5 >"$T/out" 2>"$T/err"
    RC=$?
}
# field PROTO KEY: KEY of the first PROTO server in $T/out (JSON)
jfield() {
    "$MX_PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
s = [x for x in d["servers"] if x["proto"] == sys.argv[2]]
v = s[0][sys.argv[3]] if s else "none"
print(json.dumps(v) if not isinstance(v, str) else v)' "$T/out" "$1" "$2"
}

# ---- SRV found: order, "." target, hostile answers ignored
disc alice@srv.test -v
is "$RC" 0 "SRV: exit 0"
is "$(grep -c '^imap ' "$T/out")" 3 "SRV: three IMAP servers"
is "$(awk '$1 == "imap" { printf "%s ", $2 }' "$T/out")" \
   "imap-a.srv.test:9993 imap-c.srv.test:993 imap-b.srv.test:993 " \
   "SRV: ordered by priority, then weight (RFC 2782)"
like "$(cat "$T/out")" '^smtp smtp\.srv\.test:465 implicit ' "SRV: _submissions._tcp gives implicit-TLS SMTP (trailing dot dropped)"
unlike "$(cat "$T/out")" 'starttls' "SRV: the \".\" target of _imap._tcp offers nothing"
like "$(cat "$T/err")" '_imap\._tcp\.srv\.test: target "\.": service not offered' "SRV: \".\" logged as not offered"
like "$(cat "$T/err")" '_pop3s\._tcp\.srv\.test: malformed DNS answer' "SRV: garbage answer ignored with a log line"
like "$(cat "$T/err")" '_pop3\._tcp\.srv\.test: SRV record with a malformed target' "SRV: compression loop ignored"
like "$(cat "$T/err")" '_submission\._tcp\.srv\.test: target .* not a valid host name' "SRV: target with a space and a NUL ignored"
unlike "$(cat "$T/https.log")" 'srv\.test' "SRV: no autoconfig fetch when SRV gave an incoming server"
unlike "$(cat "$T/err")" 'warning' "SRV: no foreign-domain warning for in-domain targets"

disc alice@srv.test --json
is "$RC" 0 "--json: exit 0"
"$MX_PY" - "$T/out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["email"] == "alice@srv.test"
assert isinstance(d["log"], list) and all(isinstance(x, str) for x in d["log"])
assert "error" not in d
keys = {"proto", "host", "port", "tls", "user", "auth", "source", "priority", "weight", "foreign_domain"}
for s in d["servers"]:
    assert set(s) == keys, s
    assert s["proto"] in ("imap", "pop3", "smtp") and s["tls"] in ("implicit", "starttls")
    assert isinstance(s["port"], int) and 0 < s["port"] < 65536
    assert s["user"] is None and s["auth"] == [] and s["foreign_domain"] is False
imap = [s for s in d["servers"] if s["proto"] == "imap"]
assert imap[0]["source"] == "SRV _imaps._tcp.srv.test", imap[0]
EOF
ok $? "--json: servers with proto/host/port/tls/user/auth/source/priority/weight/foreign_domain, and the log"
is "$(jfield imap host)" "imap-a.srv.test" "--json: best IMAP server first"

# ---- hostile DNS answers only: no crash, the good record still found
disc bob@hostile.test -v
is "$RC" 0 "hostile DNS: exit 0 (the one good record)"
like "$(cat "$T/out")" '^smtp mail\.hostile\.test:465 implicit' "hostile DNS: good _submissions record kept"
like "$(cat "$T/err")" '_imaps\._tcp\.hostile\.test: SRV record too short' "hostile DNS: 4-byte SRV rdata ignored"
like "$(cat "$T/err")" '_imap\._tcp\.hostile\.test: (answer record 1 malformed|malformed DNS answer)' "hostile DNS: rdlength past the end ignored"
like "$(cat "$T/err")" '_pop3s\._tcp\.hostile\.test: no answer' "hostile DNS: SERVFAIL logged"

# ---- foreign-domain SRV target: usable, flagged, warned
disc carol@foreign.test --json
is "$RC" 0 "foreign SRV target: exit 0"
is "$(jfield imap host)" "mail.other.test" "foreign SRV target: still offered"
is "$(jfield imap foreign_domain)" "true" "foreign SRV target: flagged foreign_domain"
is "$(jfield smtp foreign_domain)" "false" "in-domain SRV target: not flagged"
like "$(cat "$T/err")" 'warning: mail\.other\.test .* outside the domain of carol@foreign\.test; DNS is not authenticated' "foreign SRV target: warning on stderr"
unlike "$(cat "$T/err")" 'warning: smtp\.foreign\.test' "no warning for the in-domain one"

# ---- no SRV, autoconfig found
: > "$T/https.log"
disc alice@ac.test --json
is "$RC" 0 "autoconfig: exit 0"
is "$(jfield imap host)" "imap.ac.test" "autoconfig: IMAP host"
is "$(jfield imap port)" "993" "autoconfig: IMAP port"
is "$(jfield imap tls)" "implicit" "autoconfig: socketType SSL is implicit TLS"
is "$(jfield imap user)" "alice@ac.test" "autoconfig: %EMAILADDRESS% substituted"
is "$(jfield imap auth)" '["password", "xoauth2", "oauthbearer"]' "autoconfig: OAuth2 + password-cleartext"
is "$(jfield smtp host)" "smtp.ac.test" "autoconfig: %EMAILDOMAIN% in the hostname"
is "$(jfield smtp tls)" "starttls" "autoconfig: STARTTLS"
is "$(jfield smtp user)" "alice" "autoconfig: %EMAILLOCALPART%"
is "$(jfield pop3 host)" "none" "autoconfig: plain-text POP3 entry never offered"
like "$(jfield imap source)" '^autoconfig https://autoconfig\.ac\.test/mail/config-v1\.1\.xml\?emailaddress=alice%40ac\.test$' "autoconfig: source names the URL"
like "$(cat "$T/https.log")" '^autoconfig\.ac\.test /mail/config-v1\.1\.xml\?emailaddress=alice%40ac\.test$' "autoconfig: fetched with Host autoconfig.ac.test and the address"
like "$(cat "$T/dns.log")" '^_imaps\._tcp\.ac\.test 33$' "autoconfig: SRV was asked first"

disc alice@wk.test --json
is "$RC" 0 "well-known fallback: exit 0"
is "$(jfield imap host):$(jfield imap port):$(jfield imap tls)" "mail.wk.test:143:starttls" "well-known fallback: found (Content-Type ignored)"

# ---- redirects
disc dave@redir.test --json
is "$RC" 0 "https -> https redirect followed"
is "$(jfield imap host)" "imap.provider.test" "redirect: the target's document used"
like "$(jfield imap source)" 'conf\.provider\.test/redir/config\.xml' "redirect: source is the final URL"
is "$(jfield imap user)" "dave" "redirect: username substituted"

disc x@loop.test
is "$RC" 3 "redirect loop: nothing found (exit 3)"
like "$(cat "$T/err")" 'more than 3 redirects' "redirect loop: at most 3 redirects"

: > "$T/https.log"
disc x@httpredir.test
is "$RC" 3 "redirect to http: refused (exit 3)"
like "$(cat "$T/err")" 'autoconfig\.httpredir\.test/mail/config-v1\.1\.xml[^;]*: redirect to a non-https URL refused' "redirect to http: said so"
is "$(grep -c 'autoconfig.httpredir.test' "$T/https.log")" 1 "redirect to http: the http URL never fetched"

# ---- huge documents
disc x@huge.test -v
is "$RC" 3 "huge documents: refused (exit 3)"
like "$(cat "$T/err")" 'autoconfig\.huge\.test[^ ]*: autoconfig document too large' "huge streamed document cut off at 64 KiB"
like "$(cat "$T/err")" 'https://huge\.test/\.well-known[^ ]*: autoconfig document too large' "huge announced document refused"

# ---- wrong types and DOCTYPE
disc x@bad.test -v
is "$RC" 3 "wrong types: nothing usable (exit 3)"
like "$(cat "$T/err")" 'port "abc" is not a number 1-65535' "wrong types: port abc"
like "$(cat "$T/err")" 'port "70000" is not a number 1-65535' "wrong types: port 70000"
like "$(cat "$T/err")" 'socketType "weird" is not SSL, STARTTLS or plain' "wrong types: socketType weird"
like "$(cat "$T/err")" 'incomingServer #4 \(imap\): <hostname> missing' "wrong types: missing hostname"
like "$(cat "$T/err")" 'type "exchange" not supported' "wrong types: unsupported server type"
like "$(cat "$T/err")" 'hostname "-bad-\.test" is not a valid host name' "wrong types: bad host name"
like "$(cat "$T/err")" 'no supported authentication \(NTLM\)' "wrong types: unsupported authentication"
like "$(cat "$T/err")" 'no usable server in autoconfig document' "wrong types: document rejected"
like "$(cat "$T/err")" 'well-known.*DOCTYPE / ENTITY declarations are not allowed' "DOCTYPE with an external entity rejected"

# ---- certificate verification
CA=$T/wrongca.pem disc alice@ac.test
is "$RC" 3 "untrusted autoconfig server: nothing found"
like "$(cat "$T/err")" 'certificate not verified' "untrusted autoconfig server: certificate not verified"

# ---- nothing found
disc nobody@none.test
is "$RC" 3 "nothing found: exit 3"
like "$(cat "$T/err")" '^mxsync: no mail servers found for none\.test: SRV _imaps\._tcp/_imap\._tcp/_pop3s\._tcp/_pop3\._tcp/_submissions\._tcp/_submission\._tcp: no records; https://autoconfig\.none\.test/mail/config-v1\.1\.xml\?emailaddress=nobody%40none\.test: HTTP 404; https://none\.test/\.well-known/autoconfig/mail/config-v1\.1\.xml: HTTP 404 — give --imap URL or --provider NAME$' \
    "nothing found: message lists what was tried"
disc nobody@none.test --json
is "$RC" 3 "nothing found --json: exit 3"
"$MX_PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert d["servers"] == [] and d["error"].startswith("no mail servers found") and len(d["log"]) >= 8, d' "$T/out"
ok $? "nothing found --json: servers [], error and log"

# ---- bad input
disc not-an-address
is "$RC" 2 "not an address: usage error"
MXSYNC_DNS_SERVER=nonsense disc a@srv.test
is "$RC" 2 "bad --dns-server: usage error"
like "$(cat "$T/err")" 'bad DNS server "nonsense"' "bad --dns-server: said so"

# ---- account add --email: the servers come from discovery
MXD=$T/mxdata
addd() { # NAME EMAIL: account add with discovery; output in $T/out, $RC
    MXSYNC_PASSWORD=pw "$MX_BIN" -d "$MXD" account add "$1" --email "$2" \
        --ca-file "$CA" --timeout 5 >"$T/out" 2>&1
    RC=$?
}
acct() { # NAME KEY: a field of the account listing
    "$MX_BIN" -d "$MXD" account list --json | "$MX_PY" -c 'import json, sys
a = [x for x in json.load(sys.stdin) if x["name"] == sys.argv[1]][0]
v = a.get(sys.argv[2])
print(v["url"] if isinstance(v, dict) else v)' "$1" "$2"
}
addd viaac alice@ac.test
is "$RC" 0 "account add --email (autoconfig): exit 0"
like "$(cat "$T/out")" '^discovered imaps://alice@ac\.test@imap\.ac\.test:993 \(autoconfig https://autoconfig\.ac\.test/' \
    "account add --email: says what it found and where"
is "$(acct viaac imap)" "imaps://alice@ac.test@imap.ac.test:993" "IMAP URL from the autoconfig document"
is "$(acct viaac smtp)" "smtp://alice@smtp.ac.test:587" "SMTP URL from it too (STARTTLS, local part as user)"
is "$(acct viaac email)" "alice@ac.test" "the address is the From address"
addd viasrv bob@srv.test
is "$RC" 0 "account add --email (SRV): exit 0"
is "$(acct viasrv imap)" "imaps://bob@srv.test@imap-a.srv.test:9993" "best SRV target, the address as user"
is "$(acct viasrv smtp)" "smtps://bob@srv.test@smtp.srv.test:465" "SMTP from _submissions._tcp"
addd viaforeign carol@foreign.test
is "$RC" 0 "account add --email (foreign SRV target): added"
like "$(cat "$T/out")" 'warning: mail\.other\.test is outside carol@foreign\.test.s domain' \
    "foreign SRV target: warned"
addd none nobody@none.test
is "$RC" 3 "account add --email, nothing found: exit 3"
like "$(cat "$T/out")" 'no mail servers found for none\.test' "nothing found: said so"
unlike "$("$MX_BIN" -d "$MXD" account list)" '^none ' "nothing found: no account added"

# ---- DNS traffic stayed on the fixture
like "$(cat "$T/dns.log")" '^_submission\._tcp\.none\.test 33$' "DNS queries went to the fixture"
done_testing
