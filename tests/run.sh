#!/bin/sh
# Runs every test against the binaries in $B (default build/check):
#   tests: unit tests (cmocka, one binary per tests/unit/test_*.c)
#   tests/integration/test_*.py: the real daemon, simulator and socket
#   tests/integration/test_*.sh: shell-level checks (install tree, man pages)
# ONLY=substring runs the matching tests alone. Prints one closing summary
# line and exits 1 when anything failed.
set -u
cd "$(dirname "$0")/.."
B=${B:-build/check}
export SMSGW_BUILD="$PWD/$B"
export SMSGW_SRC="$PWD"
# Sanitizers: fail on the first report, detect leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
PYTHON=/usr/bin/python3

pass=0; fail=0; failed=""; start=$(date +%s)
run_one() {
	name=$1; shift
	case "$name" in *"${ONLY:-}"*) ;; *) return ;; esac
	t0=$(date +%s)
	printf '=== %s\n' "$name"
	if timeout "${TEST_TIMEOUT:-900}" "$@"; then
		pass=$((pass + 1)); printf -- '--- PASS %s (%ss)\n' "$name" $(($(date +%s) - t0))
	else
		fail=$((fail + 1)); failed="$failed $name"
		printf -- '--- FAIL %s (%ss)\n' "$name" $(($(date +%s) - t0))
	fi
}

for t in "$B"/tests/test_*; do
	[ -x "$t" ] || continue
	run_one "unit/$(basename "$t")" "$t"
done
for t in tests/integration/test_*.py; do
	[ -f "$t" ] || continue
	run_one "integration/$(basename "$t" .py)" "$PYTHON" "$t"
done
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	run_one "integration/$(basename "$t" .sh)" sh "$t"
done

total=$((pass + fail))
if [ "$fail" -eq 0 ]; then
	echo "check: all $total test programs passed in $(($(date +%s) - start))s"
	exit 0
fi
echo "check: $fail of $total test programs FAILED:$failed ($(($(date +%s) - start))s)"
exit 1
