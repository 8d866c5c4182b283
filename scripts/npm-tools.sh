#!/bin/sh
# Installs the npm tools the API contract test uses (tests/contract:
# @redocly/cli lints doc/openapi.yaml, @stoplight/prism-cli proxies the
# test's requests and validates them against it) with `npm ci` from the
# pinned package-lock.json into tests/contract/node_modules.  Idempotent:
# nothing is fetched when node_modules already matches the lock file (a
# stamp holds the lock's hash).  Needs node and npm (the machine's
# Node.js); fails with a message naming what is missing otherwise.
#
# usage: scripts/npm-tools.sh [--check]   (--check: only say whether the
#        tools are installed and current; exit 1 if not)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$top/tests/contract
stamp=$dir/node_modules/.mx-lock.sha256

want=$(sha256sum "$dir/package-lock.json" 2>/dev/null | cut -d' ' -f1)
[ -n "$want" ] || { echo "npm-tools: $dir/package-lock.json missing" >&2; exit 1; }
current() {
	[ -x "$dir/node_modules/.bin/prism" ] && [ -x "$dir/node_modules/.bin/redocly" ] &&
		[ "$(cat "$stamp" 2>/dev/null)" = "$want" ]
}
if current; then
	exit 0
fi
if [ "${1:-}" = "--check" ]; then
	echo "npm-tools: the contract tools in $dir/node_modules are missing or older than package-lock.json; run scripts/npm-tools.sh" >&2
	exit 1
fi
for t in node npm; do
	command -v "$t" >/dev/null || {
		echo "npm-tools: '$t' not found: install Node.js (with npm), then run scripts/npm-tools.sh" >&2
		exit 1
	}
done
echo "npm-tools: installing the contract tools into $dir/node_modules (npm ci)" >&2
# --ignore-scripts: the pinned tools need no install scripts (one
# dependency's postinstall only reports telemetry).
(cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || {
	echo "npm-tools: npm ci failed in $dir" >&2
	exit 1
}
echo "$want" > "$stamp"
current || { echo "npm-tools: prism or redocly missing after npm ci" >&2; exit 1; }
