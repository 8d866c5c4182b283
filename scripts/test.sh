#!/bin/sh
# The whole test suite: installs missing packages, builds (warnings are
# errors), runs unit + integration tests, make distcheck, then the same
# suite under ASan+UBSan, builds every libFuzzer target and smoke-runs each
# over its seeds.  Last line: "N passed, N failed, N skipped".
#
# Every process the suite starts must be gone at the end: each survivor is
# reported with its command line, stopped by PID and counted as a failure.
# A survivor is a process that carries this run's MX_SUITE_ID in its
# environment (every child inherits it) or that lives in one of the
# sessions the checks ran in (setsid; this catches programs that clean
# their environment, like Dovecot).  Other users' processes carry neither.
#
# usage: scripts/test.sh [--quick]   (--quick: skip the sanitizer pass)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=0 && quick=1
"$top/scripts/deps.sh" || { echo "deps: install failed"; echo "0 passed, 1 failed"; exit 1; }
# The contract tools deps.sh installed (npm-tools.sh); exported so that
# distcheck's copy of the tree, which has no node_modules, finds them too.
MX_CONTRACT_TOOLS=$top/tests/contract/node_modules
export MX_CONTRACT_TOOLS

out=${MX_BUILD_ROOT:-$top/_build}
pass=0 fail=0 skip=0
mkdir -p "$out"
MX_SUITE_ID=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
export MX_SUITE_ID
sids=$out/suite-sessions.$MX_SUITE_ID
: > "$sids"

# in_session DIR CMD...: runs CMD in DIR in a session of its own and
# records the session id; INT/TERM stop the session's process group.
in_session() {
	if ! command -v setsid >/dev/null; then # the environment marker only
		(cd "$1" && shift && "$@")
		return
	fi
	setsid -w sh -c 'echo $$ >>"$1"; cd "$2" && shift 2 && exec "$@"' \
		sh "$sids" "$@" &
	sess_pid=$!
	trap 'kill -TERM -- -$(tail -n 1 "$sids") 2>/dev/null; exit 130' INT TERM
	wait "$sess_pid"
	sess_rc=$?
	trap - INT TERM
	return $sess_rc
}

# survivors: reports, stops (by PID) and counts the processes this run
# left behind.  Runs without MX_SUITE_ID itself, so that it and its own
# children do not count.
survivors() {
	env -u MX_SUITE_ID sh -c '
		id=$1; sids=$2; self=$3; n=0; left=
		for d in /proc/[0-9]*; do
			p=${d#/proc/}
			[ "$p" = "$self" ] && continue
			st=$(cat "$d/stat" 2>/dev/null) || continue
			set -- ${st##*) }   # state ppid pgrp session ...
			[ "$1" = Z ] && continue
			if grep -qx "$4" "$sids" ||
			   { tr "\0" "\n" <"$d/environ"; } 2>/dev/null |
			   grep -qx "MX_SUITE_ID=$id"; then
				echo "LEFT RUNNING: pid $p:" \
				     "$({ tr "\0" " " <"$d/cmdline"; } 2>/dev/null)" >&2
				kill -TERM "$p" 2>/dev/null
				n=$((n + 1)); left="$left $p"
			fi
		done
		[ "$n" -gt 0 ] && sleep 2
		for p in $left; do kill -KILL "$p" 2>/dev/null; done
		echo "$n"
	' sh "$MX_SUITE_ID" "$sids" "$$"
}

# count_log DIR: adds the automake test-suite.log summary of DIR to the totals
count_log() {
	f="$1/test-suite.log"
	if [ ! -f "$f" ]; then fail=$((fail + 1)); return; fi
	p=$(sed -n 's/^# PASS: *//p' "$f" | head -1)
	x=$(sed -n 's/^# FAIL: *//p' "$f" | head -1)
	e=$(sed -n 's/^# ERROR: *//p' "$f" | head -1)
	xp=$(sed -n 's/^# XPASS: *//p' "$f" | head -1)
	s=$(sed -n 's/^# SKIP: *//p' "$f" | head -1)
	pass=$((pass + ${p:-0})); fail=$((fail + ${x:-0} + ${e:-0} + ${xp:-0}))
	skip=$((skip + ${s:-0}))
}

run_suite() { # NAME BUILDDIR CONFIGURE-ARGS...
	name=$1; b=$2; shift 2
	echo "== $name: build ($b)"
	if ! "$top/scripts/build.sh" "$b" "$@"; then
		echo "== $name: BUILD FAILED"; fail=$((fail + 1)); return
	fi
	echo "== $name: make check"
	in_session "$b" make -s -j"$(nproc)" check >/dev/null 2>&1
	# show failures with their logs
	if [ -f "$b/test-suite.log" ]; then
		grep -E '^(FAIL|ERROR|XPASS)' "$b/test-suite.log" | head -40
		sed -n '/^# PASS/,/^# ERROR/p' "$b/test-suite.log"
	fi
	count_log "$b"
	if grep -qE '^# (FAIL|ERROR): *[1-9]' "$b/test-suite.log" 2>/dev/null; then
		sed -n '/^\.\. contents::/,$p' "$b/test-suite.log" | head -300
	fi
}

run_suite default "$out/default" --enable-werror
# distcheck builds, installs and checks the tarball.  Its "make check" runs
# every test but the longest ones (slow_tests), which the default pass above
# and the sanitizer pass below run in full; that the tarball holds every
# tracked file under src/ include/ tests/ doc/ is checked directly instead.
slow_tests="tests/integ/t-soak.sh tests/integ/t-faults.sh tests/integ/t-purge.sh tests/integ/t-deadline.sh"
all_tests=$(printf 'print-tests:\n\t@echo $(TESTS)\n' |
	make -s -C "$out/default" -f Makefile -f - print-tests 2>/dev/null)
dist_tests=
for t in $all_tests; do
	case " $slow_tests " in *" $t "*) ;; *) dist_tests="$dist_tests $t" ;; esac
done
echo "== distcheck"
if [ -z "$dist_tests" ]; then
	fail=$((fail + 1)); echo "FAIL: make distcheck (no test list from $out/default)"
elif in_session "$out/default" make -s distcheck TESTS="$dist_tests" >"$out/distcheck.log" 2>&1; then
	pass=$((pass + 1)); echo "PASS: make distcheck"
else
	fail=$((fail + 1)); echo "FAIL: make distcheck (log: $out/distcheck.log)"
	tail -30 "$out/distcheck.log"
fi
missing=$(cd "$top" && git ls-files src include tests doc 2>/dev/null | sort |
	comm -23 - "$(cd "$out/default" && tar tzf mxsync-*.tar.gz 2>/dev/null |
		sed 's|^[^/]*/||' | sort >"$out/dist.lst" && echo "$out/dist.lst")")
if [ ! -s "$out/dist.lst" ]; then
	fail=$((fail + 1)); echo "FAIL: the tarball's contents (no tarball in $out/default)"
elif [ -n "$missing" ]; then
	fail=$((fail + 1)); echo "FAIL: tracked files missing from the tarball:"; echo "$missing"
else
	pass=$((pass + 1)); echo "PASS: the tarball holds every tracked file of src include tests doc"
fi
if [ "$quick" = 0 ]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	MX_SANITIZED=1 run_suite sanitizers "$out/asan" --enable-werror --enable-sanitizers
	# Every libFuzzer target: its seeds once, then a few seconds of
	# fuzzing from them (tests/fuzz/smoke.sh); one result per target.
	echo "== fuzz: build + smoke"
	fuzz_targets="mime autoconfig compose_json pop3 smtp imap config record oauth webhook gmail_json api multipart contacts"
	if "$top/scripts/build.sh" "$out/fuzz" --enable-werror --enable-fuzz CC=clang >/dev/null &&
	   (cd "$out/fuzz" && make -s $(printf 'tests/fuzz/fuzz_%s ' $fuzz_targets) >/dev/null); then
		for t in $fuzz_targets; do
			seeds=$top/tests/fuzz/$t
			[ "$t" = mime ] && seeds=$top/../shared/corpus/real
			[ "$t" = gmail_json ] && seeds=$top/tests/fuzz/gmail
			if [ ! -d "$seeds" ]; then
				skip=$((skip + 1)); echo "SKIP: fuzz smoke $t ($seeds absent)"
			elif MX_FUZZ_SECONDS=${MX_FUZZ_SECONDS:-3} "$top/tests/fuzz/smoke.sh" \
				"$out/fuzz/tests/fuzz/fuzz_$t" "$seeds" >"$out/fuzz/smoke-$t.log" 2>&1; then
				pass=$((pass + 1)); echo "PASS: fuzz smoke $t"
			else
				fail=$((fail + 1)); echo "FAIL: fuzz smoke $t"
				tail -40 "$out/fuzz/smoke-$t.log"
			fi
		done
	else
		fail=$((fail + 1)); echo "FAIL: fuzz build"
	fi
fi
left=$(survivors)
if [ "${left:-0}" -gt 0 ]; then
	echo "FAIL: $left process(es) started by the suite still running (stopped now)"
	fail=$((fail + left))
fi
rm -f "$sids"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
