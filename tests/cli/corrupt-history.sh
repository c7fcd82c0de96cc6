#!/usr/bin/env bash
# Proves that a flipped bit in the data of a record that later records of
# the same writer chain onto (one `import` of 1.5 MiB writes versions 1 and
# 2 before it flushes) is reported as corruption of that record, and that
# neither check nor check --repair takes it for a torn tail: --repair must
# not cut versions 1 to 3 off the image to hide one bad block.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

MiB=$((1024 * 1024))
cfs create d.cfs 4M >/dev/null
put a.raw 0 $((3 * MiB / 2))
cfs import d.cfs a.raw                       # versions 1 and 2, one session
put b.raw 0 $((MiB / 4))
cfs import d.cfs b.raw                       # version 3
expect_status 0 "$CLOUDFS" check d.cfs
check_flipped_block d.cfs
echo "corrupt-history: ok"
