#!/bin/sh
# make fuzz: runs every libFuzzer target in $FB (default build/fuzz) for
# SECONDS each (default 30) on a working copy of its seed corpus
# (tests/fuzz/corpus/NAME; new inputs found stay in $FB/corpus/NAME for the
# next run), with ASan, UBSan (an undefined-behaviour report is a crash) and
# LeakSanitizer. A crash leaves its input in $FB/crashes/NAME-* and makes
# this exit 1. Prints, and appends to $FB/results.txt, the executions each
# target ran.
#
#   tests/fuzz/run.sh [SECONDS] [NAME...]     NAMEs: at pdu reasm ctl config
set -u
cd "$(dirname "$0")/../.." || exit 2
SECONDS_EACH=${1:-30}
[ $# -gt 0 ] && shift
FB=${FB:-build/fuzz}
ONLY="$*"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
mkdir -p "$FB/crashes"
status=0
ran=0
# count DIR PREFIX: files in DIR whose names start with PREFIX.
count() {
	n=0
	for f in "$1"/"$2"*; do
		[ -e "$f" ] && n=$((n + 1))
	done
	echo "$n"
}
for bin in "$FB"/fuzz_*; do
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
		continue
	fi
	name=$(basename "$bin" | sed 's/^fuzz_//')
	if [ -n "$ONLY" ]; then
		case " $ONLY " in *" $name "*) ;; *) continue ;; esac
	fi
	ran=$((ran + 1))
	seed=tests/fuzz/corpus/$name
	work=$FB/corpus/$name
	mkdir -p "$work"
	[ -d "$seed" ] && cp -n "$seed"/* "$work"/ 2>/dev/null
	log=$FB/$name.log
	before=$(count "$FB/crashes" "$name-")
	"$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$FB/crashes/$name-" -print_final_stats=1 \
		"$work" >"$log" 2>&1
	rc=$?
	execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" |
		grep -o '[0-9]*$')
	after=$(count "$FB/crashes" "$name-")
	if [ "$rc" -eq 0 ] && [ "$after" -eq "$before" ]; then
		line="fuzz $name: ${execs:-?} executions in ${SECONDS_EACH}s, corpus $(count "$work" "") inputs, no crash"
	else
		line="fuzz $name: CRASH after ${execs:-?} executions (rc $rc; see $log and $FB/crashes/$name-*)"
		status=1
	fi
	echo "$line"
	echo "$(date -u +%Y-%m-%dT%H:%MZ) $line" >>"$FB/results.txt"
	[ "$status" -eq 0 ] || tail -40 "$log"
done
if [ "$ran" -eq 0 ]; then
	echo "fuzz: no targets in $FB (run make fuzz-build first)" >&2
	exit 1
fi
exit $status
