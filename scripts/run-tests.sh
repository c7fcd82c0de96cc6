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

# qemu-iotests through QEMU's own ./check, in TAP mode
iotests=build/qemu-build/tests/qemu-iotests
# the CLI, for the iotests that run it beside QEMU
export CLOUDFS_CLI=$top/build/main/tools/cloudfs
run_iotests() {  # description, test names...
    local what=$1
    shift
    echo "=== $what"
    local out
    out=$(cd "$iotests" && ./check -tap -cloudfs "$@" 2>&1)
    echo "$out" | grep -E '^(not )?ok ' || true
    local n=0
    while read -r line; do
        n=$((n + 1))
        case $line in
            "ok "*"# SKIP"*) skipped=$((skipped + 1)) ;;
            "ok "*) passed=$((passed + 1)) ;;
            "not ok "*) failed=$((failed + 1)); failures+=("$what: ${line#not ok }") ;;
        esac
    done < <(echo "$out" | grep -E '^(not )?ok ')
    if [ "$n" -eq 0 ]; then
        echo "$out" | tail -20
        failed=$((failed + 1)); failures+=("$what: ./check ran no test")
    fi
}

named_iotests() {
    ls tests/qemu-iotests/tests | grep -v '\.out$'
}

# QEMU's generic iotests, less those listed (with the reason) in
# tests/qemu-iotests/generic-excluded.txt
generic_iotests() {
    local src=build/qemu-src/tests/qemu-iotests
    grep -lE "_supported_fmt.*generic|supported_fmts=\['generic'\]" \
        "$src"/[0-9]* "$src"/tests/* 2>/dev/null | xargs -n1 basename |
        grep -vxF -f <(sed -e 's/[[:space:]]*#.*//' -e '/^$/d' \
                       tests/qemu-iotests/generic-excluded.txt)
}

run_suite build/main "plain build: unit and CLI tests"
run_suite build/asan "ASan+UBSan build: unit and CLI tests"
run_suite build/fuzz "libFuzzer run" --suite fuzz
run_iotests "cloudfs iotests" $(named_iotests)
echo "=== VM test: a guest on cloudfs"
if tests/vm/boot-cloudfs.sh build; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); failures+=("VM test: tests/vm/boot-cloudfs.sh")
fi
run_iotests "QEMU's generic iotests on cloudfs" $(generic_iotests)

# the demo of README's first set-up command (make demo), which checks
# what it shows (the revert, the branch's content, the guest's writes)
echo "=== demo (scripts/demo.sh)"
demo_dir=$(mktemp -d /tmp/cloudfs-demo-test.XXXXXX)
trap 'rm -rf "$demo_dir"' EXIT
if DEMO_DIR=$demo_dir scripts/demo.sh > build/demo.log 2>&1; then
    passed=$((passed + 1))
else
    tail -20 build/demo.log
    failed=$((failed + 1)); failures+=("demo (build/demo.log)")
fi
rm -rf "$demo_dir"
trap - EXIT

# a smoke pass of the benchmarks (tiny sizes), only to keep them working
echo "=== benchmark smoke pass"
if scripts/install-deps.sh bench &&
   /usr/bin/python3 bench/run.py --smoke --out build/bench-smoke.json > build/bench-smoke.log 2>&1; then
    passed=$((passed + 1))
else
    tail -20 build/bench-smoke.log
    failed=$((failed + 1)); failures+=("benchmark smoke pass (build/bench-smoke.log)")
fi

# clang's thread-safety analysis over the driver (graph lock, coroutines)
echo "=== clang -Wthread-safety over the cloudfs driver"
if scripts/check-thread-safety.sh; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); failures+=("clang -Wthread-safety over block/cloudfs*.c")
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
