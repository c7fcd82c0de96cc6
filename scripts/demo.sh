#!/bin/bash
# The cloudfs demo: a disk's life in versions.  Creates a disk, imports
# data, snapshots it, branches the snapshot into a second disk, writes
# more, reverts, and replicates it with deltas to a third disk, showing
# the version ids as they go; then QEMU: a disk
# made in a store and seen by qemu-img, and a guest that boots from
# cloudfs:ID, writes, is snapshotted, changes its disks and is reverted.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cfs=$top/build/bin/cloudfs
work=${DEMO_DIR:-$(mktemp -d /tmp/cloudfs-demo.XXXXXX)}
mkdir -p "$work"
cd "$work"
rm -f disk.cfs replica.cfs branch.cfs golden.raw now.raw
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }
fail() { echo "demo: FAIL: $*" >&2; exit 1; }

step "Create a 64 MiB disk"
run "$cfs" create disk.cfs 64M

step "Import 8 MiB of data (a raw image with a hole in the middle)"
head -c 4M /dev/urandom > golden.raw
truncate -s 6M golden.raw
head -c 2M /dev/urandom >> golden.raw
run "$cfs" import disk.cfs golden.raw
run "$cfs" info disk.cfs

step "Snapshot it as 'golden' (O(1): a named version)"
run "$cfs" snapshot create disk.cfs golden

step "Branch 'golden' into a new disk (an instant clone: no data copied)"
run "$cfs" create --parent disk.cfs@golden branch.cfs
run "$top/build/bin/qemu-io" -f cloudfs -c "write -P 0x62 2M 64K" branch.cfs
run "$cfs" info branch.cfs
"$cfs" export branch.cfs branch.raw
cp golden.raw expect.raw
head -c 64K /dev/zero | tr '\0' 'b' |
    dd of=expect.raw bs=64K seek=32 conv=notrunc status=none
truncate -s 8M branch.raw
cmp expect.raw branch.raw || fail "the branch does not read as expected"
echo "branch.cfs == golden.raw with its own 64 KiB at 2 MiB"
ls -ls disk.cfs branch.cfs

step "Replicate: a full delta creates a replica with the same version id"
"$cfs" export-delta disk.cfs 0 > full.delta
printf '$ cloudfs export-delta disk.cfs 0 > full.delta   (%s bytes)\n' \
    "$(stat -c %s full.delta)"
printf '$ cloudfs apply-delta replica.cfs < full.delta\n'
"$cfs" apply-delta replica.cfs < full.delta

step "Write more: 1 MiB of new data over the start"
head -c 1M /dev/urandom > patch.raw
cp golden.raw now.raw
dd if=patch.raw of=now.raw conv=notrunc status=none
run "$cfs" import disk.cfs now.raw
run "$cfs" versions disk.cfs

step "Catch the replica up with only what it lacks"
from=$("$cfs" info --json replica.cfs | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
"$cfs" export-delta disk.cfs "$from" > inc.delta
printf '$ cloudfs export-delta disk.cfs %s > inc.delta   (%s bytes)\n' \
    "$from" "$(stat -c %s inc.delta)"
printf '$ cloudfs apply-delta replica.cfs < inc.delta\n'
"$cfs" apply-delta replica.cfs < inc.delta

step "Revert the disk to 'golden' (the abandoned head stays readable)"
run "$cfs" snapshot revert disk.cfs golden
run "$cfs" export disk.cfs back.raw
truncate -s 8M back.raw
run cmp golden.raw back.raw || fail "the reverted disk is not golden.raw"
echo "reverted content == golden.raw"

step "Version ids: primary and replica"
id_of() { "$cfs" info --json "$1" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["version"], j["version-id"])'; }
echo "disk.cfs     $(id_of disk.cfs)   (after the revert)"
echo "replica.cfs  $(id_of replica.cfs)   (before the revert)"
"$cfs" export-delta disk.cfs "$from" | "$cfs" apply-delta replica.cfs
replica=$(id_of replica.cfs)
echo "replica.cfs  $replica   (caught up)"
[ -n "$replica" ] && [ "$replica" = "$(id_of disk.cfs)" ] ||
    fail "the replica did not catch up with the disk"
run "$cfs" check replica.cfs

step "QEMU: a disk in the store, by id"
export CLOUDFS_STORE=$work/store
id=$("$top/build/bin/qemu-img" create -f cloudfs cloudfs:NEW 1G | tail -1)
echo "\$ qemu-img create -f cloudfs cloudfs:NEW 1G"
echo "$id"
run "$top/build/bin/qemu-io" -c "write -P 0x42 0 4M" "cloudfs:${id:0:8}"
run "$top/build/bin/qemu-img" snapshot -c first "cloudfs:${id:0:8}"
run "$top/build/bin/qemu-img" info --output=json "cloudfs:${id:0:8}"

step "QEMU: a guest boots from cloudfs:ID, writes, is snapshotted, changes, reverts"
run "$top/tests/vm/boot-cloudfs.sh" "$top/build"

echo
echo "demo files are in $work"
