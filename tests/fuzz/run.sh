#!/bin/sh
# make fuzz: runs every libFuzzer target in build/fuzz for SECONDS each
# (default 30) on a copy of its seed corpus (tests/fuzz/corpus/NAME), with
# ASan and UBSan. A crash leaves its input in build/fuzz/crashes/ and makes
# this exit 1. Prints the executions each target ran.
set -u
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-30}
FB=build/fuzz
mkdir -p "$FB/crashes"
status=0
for bin in "$FB"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin" | sed 's/^fuzz_//')
	seed=tests/fuzz/corpus/$name
	work=$FB/corpus/$name
	mkdir -p "$work"
	[ -d "$seed" ] && cp -n "$seed"/* "$work"/ 2>/dev/null
	log=$FB/$name.log
	if "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$FB/crashes/$name-" -print_final_stats=1 \
		"$work" >"$log" 2>&1; then
		execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
		echo "fuzz $name: ${execs:-?} executions in ${SECONDS_EACH}s, no crash"
	else
		echo "fuzz $name: CRASH (see $log and $FB/crashes/)"
		tail -30 "$log"
		status=1
	fi
done
exit $status
