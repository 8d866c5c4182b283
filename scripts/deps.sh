#!/bin/sh
# Installs the Debian 12 packages mxsync needs to build, test and run its
# demo, if any is missing, then the npm tools of the API contract test
# (scripts/npm-tools.sh: quick when they are current).  Needs root (or sudo)
# only when a package is missing.
set -e
PKGS="build-essential autoconf automake libtool pkg-config
 libetpan-dev liblmdb-dev lmdb-utils libssl-dev openssl libcurl4-gnutls-dev libjansson-dev
 check libmicrohttpd-dev
 dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-submissiond
 python3 python3-aiosmtpd isync clang libclang-rt-14-dev ca-certificates
 wrk python3-yaml"
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exec "$(dirname "$0")/npm-tools.sh"
echo "deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d keeps the packaged dovecot service from starting: mxsync's
# tests and demo run their own instances on loopback.
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends $missing
"$(dirname "$0")/npm-tools.sh"
