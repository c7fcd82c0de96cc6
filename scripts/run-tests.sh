#!/bin/bash
# Run every test suite of every build and print one summary line:
#   N passed, N failed[, N skipped]
# Builds: build/main (plain), build/asan (ASan+UBSan: core, tools, tests),
# build/fuzz (clang, libFuzzer target run for a bounded time).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

passed=0 failed=0 skipped=0
failures=()

run_suite() {   # build-dir, description, meson test args...
    local dir=$1 what=$2
    shift 2
    echo "=== $what"
    rm -f "$dir/meson-logs/testlog.json"
    meson test -C "$dir" --print-errorlogs "$@"
    local log="$dir/meson-logs/testlog.json"
    if [ ! -s "$log" ]; then
        failed=$((failed + 1))
        failures+=("$what: no test ran")
        return
    fi
    while read -r result name; do
        case $result in
            OK|EXPECTEDFAIL) passed=$((passed + 1)) ;;
            SKIP) skipped=$((skipped + 1)) ;;
            *) failed=$((failed + 1)); failures+=("$what: $name ($result)") ;;
        esac
    done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    print(t["result"], t["name"])
' "$log")
}

run_suite build/main "plain build: unit and CLI tests"
run_suite build/asan "ASan+UBSan build: unit and CLI tests"
run_suite build/fuzz "libFuzzer run" --suite fuzz

if ! python3 -m docutils --halt=warning docs/format.rst /dev/null; then
    failed=$((failed + 1)); failures+=("docs/format.rst does not render cleanly")
else
    passed=$((passed + 1))
fi

echo
for f in "${failures[@]}"; do
    echo "FAILED: $f"
done
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
