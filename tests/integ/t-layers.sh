#!/bin/sh
# The layering of src/ (doc/internals/layers.md), checked on every
# #include "..." and on the two libraries that must stay in one place:
#   - a module includes only its own headers and the public headers of
#     modules in lower layers (or of its own layer, where the layer joins
#     its modules with "+");
#   - libetpan headers only in src/backends/ and src/lib/send/;
#   - <lmdb.h> and mdb_*() calls only in src/lib/store/.
# A violation not in ALLOWLIST fails, naming file:line and both modules;
# an ALLOWLIST entry that no longer occurs fails too, so the list shrinks
# as the restructuring of issue 9 lands.  No Dovecot needed.
# MX_LAYERS_SRC=DIR checks another tree (default: $MX_TOP_SRCDIR/src).
: "${MX_TOP_SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"; export MX_TOP_SRCDIR
. "$MX_TOP_SRCDIR/tests/integ/lib/tap.sh"

# ---- the rules (data) ----
#
# Layers, lowest first.  The module of a file is its directory under
# src/lib/ (util, store, ...) or src/ (backends, cli, daemon); "mxsync"
# is include/mxsync/.  Modules joined by "+" form one layer and may
# include each other; modules separated by "|" are peers and may not
# (sync, send and events each stand on the layers below, not on each
# other).  Where the modules sit and why:
#   - net (our TLS transport), secrets (sealing), mime (parsing) and auth
#     (OAuth2 token requests over util/http.h) need only util and each
#     other, and the store needs secrets and mime: they are util's layer.
#     auth sits this low because accounts own token refresh
#     (mx_account_fresh_token() saves the new tokens in the record) and
#     the backends and SMTP log in with what it returns.
#   - discover (servers from an address) serves `account add` with the
#     account module's presets; it stands beside the backends.
#   - account is src/lib/account/.
#   - users (src/lib/users/: the HTTP API's tokens and permission rule)
#     stands on the store beside account.
#   - api (src/api/, the HTTP API in mxsyncd) is the CLI's peer; the
#     daemon sits above both so that it may start the API (api/api.h),
#     and nothing includes the daemon.
LAYERS='
mxsync + util + net + secrets + mime + auth
store
evtypes
account | users | crm
backends + discover
sync | send | events
cli | api
daemon
'

# Files that sit in another layer than their directory: "FILE = MODULE",
# FILE a source or header under src/ (an include of a header listed here
# counts as an include of MODULE).  evtypes is src/lib/events/types.{c,h},
# the event types and payload builders: account, sync and send write
# events, so their builders need only store and util and sit below account,
# while the rest of events/ (reading, retention, webhooks) stands above
# (doc/internals/events.md).
FILE_MODULES='
src/lib/events/types.h = evtypes
src/lib/events/types.c = evtypes
'

# Public headers: what other modules may include.  Every other header
# (*_int.h, imap_guard.h, pop3.h, cli.h, daemon.h, ...) is private to its
# module.  A new public header goes here.
PUBLIC='
mxsync/mxsync.h
util/util.h util/http.h util/mutf7.h
net/net.h net/interrupt.h
secrets/secrets.h
mime/mime.h
store/store.h
auth/oauth.h
backends/backend.h
discover/discover.h
account/account.h account/presets.h
users/tokens.h
crm/link.h crm/contacts.h crm/timeline.h
sync/sync.h sync/query.h
send/outbox.h send/compose.h send/smtp.h
events/events.h events/types.h
api/api.h
'

# Modules whose files may include libetpan (DESIGN.md: libetpan types
# stay in the backends and the SMTP client).
LIBETPAN_MODULES='backends send'

# Known violations, one a line: "FILE -> HEADER" (an include of HEADER, or
# of <libetpan/...>) or "FILE calls mdb_", each with its reason after
# "#".  Each must still occur (else: remove it here).
ALLOWLIST='
# By design, not removed by issue 9:
src/lib/net/net.h -> <libetpan/libetpan.h>  # the TLS transport is a libetpan mailstream driver (DESIGN.md, "TLS is ours")
src/lib/mime/mime.c -> <libetpan/libetpan.h>  # parses with mailmime_parse(); no libetpan type leaves mime.c
# Removed by issue 9 section 1 (the seam, the account module):
src/lib/sync/api.c -> send/outbox.h  # status counts the outbox (mx_outbox_counts): status belongs above sync and send
'

# ---- the check ----
SRC=${MX_LAYERS_SRC:-$MX_TOP_SRCDIR/src}
[ -d "$SRC" ] || bail_out "no source tree at $SRC"
cd "$SRC/.." || bail_out "cannot enter $SRC/.."
T=$(mktemp -d "${TMPDIR:-/tmp}/mx-layers.XXXXXX") || bail_out "mktemp"
at_exit "rm -rf '$T'"
export LC_ALL=C

find src -type f \( -name '*.c' -o -name '*.h' \) | sort >"$T/files"
nfiles=$(wc -l <"$T/files")
# FILE:LINE:TEXT of every include, and of every mdb_ call.
xargs grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' \
	<"$T/files" >"$T/includes"
xargs grep -nE '(^|[^A-Za-z0-9_])mdb_[a-z_]+[[:space:]]*\(' \
	<"$T/files" >"$T/mdb" || :
nincl=$(wc -l <"$T/includes")
ok "$([ "$nfiles" -ge 20 ] && [ "$nincl" -ge 100 ]; echo $?)" \
	"scanned $nfiles files of $SRC with $nincl includes"

# Prints one violation a line: "KEY<TAB>MESSAGE", KEY as in ALLOWLIST.
awk -v layers="$LAYERS" -v public="$PUBLIC" -v etpan="$LIBETPAN_MODULES" \
    -v filemods="$FILE_MODULES" '
function module_of(path,   p) {
	if (path in filemod) return filemod[path]
	if (path ~ /^src\/lib\//) { split(path, p, "/"); return p[3] }
	if (path ~ /^src\//) { split(path, p, "/"); return p[2] }
	return ""
}
function dir_of(path) { sub(/\/[^\/]*$/, "", path); return path }
BEGIN {
	nl = split(layers, lines, "\n")
	rank = 0
	for (i = 1; i <= nl; i++) {
		line = lines[i]
		if (line ~ /^[[:space:]]*$/) continue
		rank++
		peers = line ~ /\|/
		gsub(/[|+]/, " ", line)
		n = split(line, mods, " ")
		for (j = 1; j <= n; j++) {
			layer[mods[j]] = rank
			peer[mods[j]] = peers
			group[mods[j]] = lines[i]
		}
	}
	n = split(public, pubs, /[[:space:]]+/)
	for (i = 1; i <= n; i++) if (pubs[i] != "") pub[pubs[i]] = 1
	n = split(etpan, e, " ")
	for (i = 1; i <= n; i++) etpan_ok[e[i]] = 1
	# "src/lib/M/F = MOD": the file, and its include name "M/F".
	n = split(filemods, fl, "\n")
	for (i = 1; i <= n; i++) {
		if (split(fl[i], fm, /[[:space:]]*=[[:space:]]*/) != 2) continue
		filemod[fm[1]] = fm[2]
		inc = fm[1]; sub(/^src\/(lib\/)?/, "", inc)
		incmod[inc] = fm[2]
	}
}
FILENAME ~ /mdb$/ {
	split($0, f, ":")
	if (f[1] !~ /^src\/lib\/store\//)
		printf "%s calls mdb_\t%s:%s: %s calls LMDB (mdb_*) outside src/lib/store/\n",
		       f[1], f[1], f[2], module_of(f[1])
	next
}
{
	split($0, f, ":")
	file = f[1]; lineno = f[2]
	text = $0; sub(/^[^:]*:[^:]*:/, "", text)
	from = module_of(file)
	if (match(text, /<[^>]*>/)) {
		h = substr(text, RSTART + 1, RLENGTH - 2)
		if (h ~ /^libetpan\// && !(from in etpan_ok))
			printf "%s -> <%s>\t%s:%s: %s includes libetpan (<%s>): only %s may\n",
			       file, h, file, lineno, from, h, etpan
		if (h == "lmdb.h" && from != "store")
			printf "%s -> <%s>\t%s:%s: %s includes <lmdb.h>: only store may\n",
			       file, h, file, lineno, from
		next
	}
	if (!match(text, /"[^"]*"/)) next
	h = substr(text, RSTART + 1, RLENGTH - 2)
	if (h !~ /\//) {
		# Beside the file: its own module.
		next
	}
	to = h; sub(/\/.*/, "", to)
	if (h in incmod) to = incmod[h]
	if (!(from in layer)) {
		printf "%s -> %s\t%s:%s: module %s of %s is not in LAYERS\n",
		       file, h, file, lineno, from, file
		next
	}
	if (!(to in layer)) {
		printf "%s -> %s\t%s:%s: %s includes %s of module %s, which is not in LAYERS\n",
		       file, h, file, lineno, from, h, to
		next
	}
	if (to == from) next
	if (!(h in pub)) {
		printf "%s -> %s\t%s:%s: %s includes %s, a private header of %s\n",
		       file, h, file, lineno, from, h, to
		next
	}
	if (layer[to] > layer[from])
		printf "%s -> %s\t%s:%s: %s includes %s: %s is in a higher layer than %s\n",
		       file, h, file, lineno, from, h, to, from
	else if (layer[to] == layer[from] && peer[from])
		printf "%s -> %s\t%s:%s: %s includes %s: %s and %s are peers (%s)\n",
		       file, h, file, lineno, from, h, from, to, group[from]
}' "$T/includes" "$T/mdb" >"$T/found"

# The allowlist's keys, without comments and blank lines.
printf '%s\n' "$ALLOWLIST" | sed -e 's/[[:space:]]*#.*$//' -e '/^$/d' \
	| sort -u >"$T/allowed"

new=0
while IFS='	' read -r key msg; do
	if grep -qxF -- "$key" "$T/allowed"; then
		continue
	fi
	fail "$msg"
	new=$((new + 1))
done <"$T/found"
[ "$new" -eq 0 ] && pass "no include or LMDB call breaks the layers ($(wc -l <"$T/allowed") allowlisted)"

cut -f1 "$T/found" | sort -u >"$T/found-keys"
stale=0
while IFS= read -r key; do
	grep -qxF -- "$key" "$T/found-keys" && continue
	fail "allowlisted violation no longer occurs: $key (remove it from ALLOWLIST in tests/integ/t-layers.sh)"
	stale=$((stale + 1))
done <"$T/allowed"
[ "$stale" -eq 0 ] && pass "every allowlisted violation still occurs"

done_testing
