#!/bin/sh
# usage: tests/fuzz/smoke.sh FUZZER CORPUS_DIR
# Runs FUZZER once over every file of CORPUS_DIR, then fuzzes for a short
# while from those seeds.  Exits non-zero on any crash, leak or timeout.
set -u
fuzzer=${1:?usage: smoke.sh FUZZER CORPUS_DIR}
corpus=${2:?usage: smoke.sh FUZZER CORPUS_DIR}
secs=${MX_FUZZ_SECONDS:-20}
[ -x "$fuzzer" ] || { echo "smoke: $fuzzer: not executable" >&2; exit 2; }
[ -d "$corpus" ] || { echo "smoke: $corpus: no such directory" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mx-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir "$tmp/seeds" "$tmp/new" "$tmp/art"
# Flat copies with unique names: the corpus has sub-directories and names
# with blanks.
n=0
find "$corpus" -type f | while IFS= read -r f; do
	n=$((n + 1))
	cp "$f" "$tmp/seeds/$n" || exit 2
done
count=$(ls "$tmp/seeds" | wc -l)
echo "smoke: $count seed files from $corpus"

export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:print_stacktrace=1:halt_on_error=1"
# Every seed once.
if ! "$fuzzer" -runs=0 -max_len=4194304 -rss_limit_mb=2048 -timeout=10 \
	-artifact_prefix="$tmp/art/" "$tmp/seeds" >"$tmp/run0.log" 2>&1; then
	tail -60 "$tmp/run0.log"
	echo "smoke: FAIL while running the seeds" >&2
	exit 1
fi
# A short session mutating them.
if ! "$fuzzer" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
	-timeout=10 -print_final_stats=1 -artifact_prefix="$tmp/art/" \
	"$tmp/new" "$tmp/seeds" >"$tmp/run1.log" 2>&1; then
	tail -60 "$tmp/run1.log"
	for a in "$tmp"/art/*; do
		[ -f "$a" ] && echo "smoke: crashing input: $(od -c "$a" | head -20)"
	done
	echo "smoke: FAIL while fuzzing" >&2
	exit 1
fi
grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$tmp/run1.log" | tail -2
echo "smoke: OK"
exit 0
