#!/bin/sh
# The whole test suite: installs missing packages, builds (warnings are
# errors), runs unit + integration tests, then the same suite under
# ASan+UBSan, builds the libFuzzer target and runs a short smoke over the
# corpus.  Last line: "N passed, N failed, N skipped".
#
# usage: scripts/test.sh [--quick]   (--quick: skip the sanitizer pass)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=0 && quick=1
"$top/scripts/deps.sh" || { echo "deps: install failed"; echo "0 passed, 1 failed"; exit 1; }

out=${MX_BUILD_ROOT:-$top/_build}
pass=0 fail=0 skip=0

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
	(cd "$b" && make -s -j"$(nproc)" check >/dev/null 2>&1)
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
echo "== distcheck"
if (cd "$out/default" && make -s distcheck >"$out/distcheck.log" 2>&1); then
	pass=$((pass + 1)); echo "PASS: make distcheck"
else
	fail=$((fail + 1)); echo "FAIL: make distcheck (log: $out/distcheck.log)"
	tail -30 "$out/distcheck.log"
fi
if [ "$quick" = 0 ]; then
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	MX_SANITIZED=1 run_suite sanitizers "$out/asan" --enable-werror --enable-sanitizers
	echo "== fuzz: build + smoke"
	if "$top/scripts/build.sh" "$out/fuzz" --enable-werror --enable-fuzz CC=clang >/dev/null &&
	   (cd "$out/fuzz" && make -s tests/fuzz/fuzz_mime >/dev/null); then
		if [ -d "$top/../shared/corpus/real" ]; then
			if "$top/tests/fuzz/smoke.sh" "$out/fuzz/tests/fuzz/fuzz_mime" "$top/../shared/corpus/real"; then
				pass=$((pass + 1)); echo "PASS: fuzz smoke"
			else
				fail=$((fail + 1)); echo "FAIL: fuzz smoke"
			fi
		else
			skip=$((skip + 1)); echo "SKIP: fuzz smoke (../shared/corpus absent)"
		fi
	else
		fail=$((fail + 1)); echo "FAIL: fuzz build"
	fi
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
