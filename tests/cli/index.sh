#!/usr/bin/env bash
# Proves that a damaged node of the extent index (which checkpoints write
# into the log) never turns into wrong data: export fails instead of
# writing the disk out; `check` reports it as an index corruption (exit 1);
# `check --repair` rebuilds the index from the log (exit 3, then a clean
# check), after which export writes exactly the original bytes and the
# snapshot still exports.  Also that `log` shows how many nodes each
# checkpoint wrote, and that a checkpoint writes only the nodes that
# changed (none after a snapshot).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

KiB=1024

# Every other 4 KiB block holds data: 512 extents, more than one leaf
cfs create d.cfs 4M >/dev/null
: >a.raw
for i in $(seq 0 511); do
    put a.raw $((i * 8 * KiB)) $((4 * KiB))
done
truncate -s 4M a.raw
cfs import d.cfs a.raw

# checkpoints LOG: "offset header-bytes nodes" of each checkpoint record
checkpoints() {
    "$CLOUDFS" log "$1" | awk '
        /^record at / { sub(",", "", $3); offset = $3; type = $6 }
        /^    header / { header = $2 }
        /^    checkpoint / && type == "checkpoint" {
            for (i = 1; i <= NF; i++) if ($i == "nodes") n = $(i + 1)
            sub(",", "", n); print offset, header, n }'
}
read -r ck1 _ nodes1 < <(checkpoints d.cfs | tail -1)
[ "$nodes1" -ge 6 ] || fail "a 512-extent index in $nodes1 nodes"
echo "first checkpoint at $ck1 wrote $nodes1 nodes"

# A snapshot changes no mapping: its checkpoint writes no node, and its
# tree is the first checkpoint's
cfs snapshot create d.cfs s1 >/dev/null
read -r ck2 _ nodes2 < <(checkpoints d.cfs | tail -1)
[ "$ck2" -gt "$ck1" ] || fail "no second checkpoint"
expect_eq "$nodes2" 0 "nodes written by the snapshot's checkpoint"
expect_status 0 "$CLOUDFS" check d.cfs
head_version=$(info_field d.cfs version)

# Damage the first node the first checkpoint wrote (a leaf: children are
# written before their parents), which the newest tree uses
read -r _ header1 _ < <(checkpoints d.cfs | head -1)
leaf=$((ck1 + (header1 + 4095) / 4096 * 4096 + 4096))
printf '\xff\xff\xff\xff' | dd of=d.cfs bs=1 seek=$((leaf + 64)) \
    conv=notrunc status=none
expect_status 1 "$CLOUDFS" export d.cfs out.raw
expect_contains "$err" "index node at offset $leaf is corrupt" \
    "export through a damaged node"
expect_status 1 "$CLOUDFS" check d.cfs
grep -qxE "index corruptions: [1-9][0-9]*" <<<"$out" ||
    fail "check does not report the damaged node: $out"
expect_contains "$out" "index node at offset $leaf is corrupt" "check output"

expect_status 3 "$CLOUDFS" check --repair d.cfs
expect_contains "$out" "rebuilt the index from the log" "repair output"
expect_status 0 "$CLOUDFS" check d.cfs
expect_eq "$(info_field d.cfs version)" "$head_version" "version after repair"
cfs export d.cfs out.raw
expect_same_file out.raw a.raw "head after repair"
cfs export d.cfs@s1 s1.raw
expect_same_file s1.raw a.raw "snapshot after repair"
