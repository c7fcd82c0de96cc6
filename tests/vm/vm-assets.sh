#!/bin/bash
# Prepare what the VM test boots: Debian 12's kernel and busybox-static,
# fetched as .deb files with apt-get download and unpacked (nothing is
# installed on the host), and an initramfs made of busybox, the virtio and
# ext4 modules, and tests/vm/init.
#
# Usage: tests/vm/vm-assets.sh OUTDIR
# Leaves OUTDIR/vmlinuz and OUTDIR/initramfs.cpio; cached between runs.
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -s "$out/vmlinuz" ] && [ -s "$out/initramfs.cpio" ] &&
   [ "$out/initramfs.cpio" -nt "$here/init" ]; then
    exit 0
fi

work=$out/unpack
rm -rf "$work"
mkdir -p "$work/debs" "$work/root"
kernel_pkg=$(apt-cache depends linux-image-amd64 |
             awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kernel_pkg" ] || { echo "vm-assets: cannot find Debian's kernel package" >&2; exit 1; }
(cd "$work/debs" && apt-get download "$kernel_pkg" busybox-static >/dev/null 2>&1) ||
    { echo "vm-assets: apt-get download $kernel_pkg busybox-static failed" >&2; exit 1; }
for deb in "$work"/debs/*.deb; do
    dpkg-deb -x "$deb" "$work/root"
done
cp "$work"/root/boot/vmlinuz-* "$out/vmlinuz"
kver=$(ls "$work/root/lib/modules")
kmod=$work/root/lib/modules/$kver/kernel

# the initramfs: busybox, its applets, the modules in load order, /init
ird=$work/initramfs
mkdir -p "$ird"/{bin,dev,proc,sys,mnt,modules}
cp "$work/root/bin/busybox" "$ird/bin/busybox"
for applet in $("$ird/bin/busybox" --list); do
    [ -e "$ird/bin/$applet" ] || ln -s busybox "$ird/bin/$applet"
done
n=0
for m in drivers/virtio/virtio_ring drivers/virtio/virtio \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci drivers/block/virtio_blk \
         lib/crc16 fs/mbcache fs/jbd2/jbd2 crypto/crc32c_generic fs/ext4/ext4; do
    n=$((n + 1))
    cp "$kmod/$m.ko" "$ird/modules/$(printf %02d $n)-$(basename "$m").ko"
done
cp "$here/init" "$ird/init"
chmod +x "$ird/init"
(cd "$ird" && find . | "$ird/bin/busybox" cpio -o -H newc > "$out/initramfs.cpio" 2>/dev/null)
rm -rf "$work"
