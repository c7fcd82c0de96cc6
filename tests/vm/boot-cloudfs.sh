#!/bin/bash
# A guest on cloudfs: qemu-system-x86_64 (TCG) boots Debian's kernel with a
# busybox initramfs from two cloudfs disks, -drive file=cloudfs:ID from a
# store directory; the guest writes a known pattern to one and builds an ext2 file system with files on the other,
# then powers off.  The host checks both with qemu-img, snapshots them,
# boots again to change both, checks the change, reverts to the snapshot,
# and checks that the original is back.
#
# Usage: tests/vm/boot-cloudfs.sh BUILD_DIR   (needs build/bin/qemu-*)
set -euo pipefail
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/bin
work=$(mktemp -d /tmp/cloudfs-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
export CLOUDFS_STORE=$work/store
fail() { echo "FAIL: $*" >&2; exit 1; }

"$here/vm-assets.sh" "$build/vm"

boot() {  # mode
    echo "-- boot: $1"
    timeout 300 "$bin/qemu-system-x86_64" -M pc -m 256 -nographic \
        -no-reboot -nodefaults -serial stdio \
        -kernel "$build/vm/vmlinuz" -initrd "$build/vm/initramfs.cpio" \
        -append "console=ttyS0 panic=-1 cloudfs.mode=$1" \
        -drive file="cloudfs:$vda",if=virtio,cache=writeback \
        -drive file="cloudfs:$vdb",if=virtio,cache=writeback \
        > "$work/console.log" 2>&1 || true
    grep -q "VM: mode $1 done" "$work/console.log" || {
        tail -30 "$work/console.log"
        fail "the guest did not finish mode $1"
    }
}

pattern() {
    # yes ends by SIGPIPE, which pipefail would count as a failure
    (yes "cloudfs $1 " || true) | head -c 1048576
}

expect_pattern() {  # letter
    "$bin/qemu-img" convert -O raw "cloudfs:$vda" "$work/vda.raw"
    cmp -n 1048576 "$work/vda.raw" <(pattern "$1") ||
        fail "vda does not hold pattern $1"
    echo "vda holds pattern $1"
}

expect_file() {  # expected hello.txt, whether big.bin exists
    "$bin/qemu-img" convert -O raw "cloudfs:$vdb" "$work/vdb.raw"
    e2fsck -fn "$work/vdb.raw" > "$work/fsck.log" 2>&1 ||
        { cat "$work/fsck.log"; fail "the file system on vdb is not clean"; }
    got=$(debugfs -R "cat /hello.txt" "$work/vdb.raw" 2>/dev/null)
    [ "$got" = "$1" ] || fail "hello.txt is '$got', expected '$1'"
    big=$(debugfs -R "cat /dir/big.bin" "$work/vdb.raw" 2>/dev/null | md5sum)
    want=$(pattern F | md5sum)
    if [ "$2" = yes ]; then
        [ "$big" = "$want" ] || fail "dir/big.bin is wrong"
    else
        [ "$big" != "$want" ] || fail "dir/big.bin should be gone"
    fi
    echo "vdb: hello.txt = '$got', big.bin present: $2"
}

vda=$("$bin/qemu-img" create -f cloudfs cloudfs:NEW 64M | tail -1)
vdb=$("$bin/qemu-img" create -f cloudfs cloudfs:NEW 64M | tail -1)
echo "disks: cloudfs:$vda cloudfs:$vdb"
# a unique prefix is enough
vda=${vda:0:12}

boot write
expect_pattern A
expect_file "hello from the guest" yes
"$bin/qemu-img" check -q "cloudfs:$vda"
"$bin/qemu-img" check -q "cloudfs:$vdb"

"$bin/qemu-img" snapshot -c before "cloudfs:$vda"
"$bin/qemu-img" snapshot -c before "cloudfs:$vdb"

boot change
expect_pattern B
expect_file "changed by the second boot" no

"$bin/qemu-img" snapshot -a before "cloudfs:$vda"
"$bin/qemu-img" snapshot -a before "cloudfs:$vdb"
expect_pattern A
expect_file "hello from the guest" yes
echo "PASS: guest on cloudfs, snapshot, change, revert"
