#!/bin/bash
# Run the fuzz target for a bounded time from fresh seeds; fails when the
# fuzzer finds a crash, a leak or undefined behaviour.
set -euo pipefail
fuzzer=$1 seeds=$2 seconds=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$seeds" "$work/corpus"
cd "$work"
"$fuzzer" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 corpus 2>&1 | tail -20
