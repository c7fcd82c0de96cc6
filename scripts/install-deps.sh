#!/bin/bash
# Install, with apt, the Debian 12 packages needed to build and test the
# cloudfs core, tools and tests.  Does nothing when they are all present.
set -euo pipefail

packages=(
    build-essential ninja-build pkg-config git
    libglib2.0-dev libxxhash-dev libssl-dev libjson-glib-dev
    clang libclang-rt-14-dev        # fuzzing and sanitizers
    clang-16                        # QEMU's -Wthread-safety needs clang >= 15
    python3 python3-docutils        # docs checks
    e2fsprogs                       # the VM test checks the guest's file system
)

# `install-deps.sh bench` adds what the benchmarks need
if [ "${1:-}" = bench ]; then
    packages+=(fio python3-matplotlib time)
fi

# meson from bookworm-backports (1.7), as QEMU's build needs it: a build
# directory that bookworm's 1.0 set up is refused by 1.7 later on
meson_version=$(meson --version 2>/dev/null || echo 0)
case $meson_version in
    0|0.*|1.[0-4]|1.[0-4].*)
        if [ "$(id -u)" -ne 0 ]; then
            echo "install-deps: meson $meson_version is older than QEMU" \
                 "needs (1.5); run as root to install it" >&2
        else
            "$(dirname "$0")/fetch-qemu-source.sh" --apt-setup-only
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
                --no-install-recommends -t bookworm-backports meson >/dev/null
        fi
        ;;
esac

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run as root" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
