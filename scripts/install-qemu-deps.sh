#!/usr/bin/env bash
# install-qemu-deps.sh - install (as root, with apt) everything needed to build QEMU
# 10.0.2 with cloudfs via scripts/build-qemu.sh and to run the resulting
# qemu-system-x86_64 from the build tree, on a fresh Debian 12 (bookworm).
#
# Usage:  scripts/install-qemu-deps.sh            (as root)
#
# It adds deb + deb-src entries for bookworm-backports (via fetch-qemu-source.sh
# --apt-setup-only), runs apt-get update, and installs:
#   from bookworm-backports: meson (1.7; QEMU 10 needs >= 1.5 and the +ds tarball has
#       no bundled meson wheel), python3-pycotap (for `make check`/meson test TAP),
#       seabios and qemu-system-data (firmware matching QEMU 10.0)
#   from bookworm: the compiler, ninja, pkgconf, python3-venv (configure builds a venv),
#       glib/zlib/pixman headers (required), gnutls, fuse3/aio/io_uring/slirp headers
#       (optional features we want), libxxhash/libssl headers (cloudfs core), ccache,
#       patch, rsync, xz-utils, ipxe-qemu.
#
# Environment:
#   QEMU_DEPS_EXTRA   extra Debian package names to install in the same apt run
#
# Idempotent: packages already at the wanted version are left alone.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'install-qemu-deps: %s\n' "$*" >&2; }
die() { printf 'install-qemu-deps: ERROR: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac

[ "$(id -u)" -eq 0 ] || die "must run as root (apt-get install)"
command -v apt-get >/dev/null || die "apt-get not found: this script is for Debian 12"

# Packages taken from bookworm-backports (pinned with -t).
BACKPORTS_PKGS=(
    meson             # 1.7.0-1~bpo12+1; bookworm's 1.0.1 is too old for QEMU 10
    python3-pycotap   # QEMU's pythondeps.toml [meson] group
    seabios           # bios-256k.bin, vgabios-*.bin for qemu-system-x86_64
    qemu-system-data  # linuxboot_dma.bin, kvmvapic.bin, pvh.bin, keymaps, ...
)
# Packages from bookworm proper.
BOOKWORM_PKGS=(
    gcc libc6-dev make
    ninja-build pkgconf
    python3 python3-venv
    libglib2.0-dev zlib1g-dev libpixman-1-dev
    libgnutls28-dev   # QEMU's crypto backend (LUKS, TLS); configure picks it up when
                      # present, so installing it keeps every machine's build alike
    libxxhash-dev libssl-dev  # the cloudfs core (XXH3-64, SHA-256/HMAC) once compiled in
    libfuse3-dev      # --enable-fuse: FUSE block exports (qemu-storage-daemon)
    fuse3             # fusermount3, so the cloudfs-exports iotest mounts one
    libaio-dev        # aio=native
    liburing-dev      # aio=io_uring
    libslirp-dev      # -netdev user (handy for guests; optional)
    ccache
    xz-utils patch rsync
    ipxe-qemu         # NIC option ROMs (efi-*.rom) for qemu-system-x86_64
)

"$SCRIPT_DIR/fetch-qemu-source.sh" --apt-setup-only

export DEBIAN_FRONTEND=noninteractive
log "installing from bookworm-backports: ${BACKPORTS_PKGS[*]}"
apt-get install -y -q --no-install-recommends -t bookworm-backports "${BACKPORTS_PKGS[@]}" >&2 \
    || die "apt-get install (bookworm-backports) failed"

# shellcheck disable=SC2206
extra=( ${QEMU_DEPS_EXTRA:-} )
log "installing from bookworm: ${BOOKWORM_PKGS[*]} ${extra[*]}"
apt-get install -y -q --no-install-recommends "${BOOKWORM_PKGS[@]}" "${extra[@]}" >&2 \
    || die "apt-get install failed"

mv="$(meson --version 2>/dev/null || echo 0)"
case "$mv" in
    0|0.*|1.[0-4]|1.[0-4].*) die "meson $mv is too old (need >= 1.5 from bookworm-backports)" ;;
esac
log "done (meson $mv)"
