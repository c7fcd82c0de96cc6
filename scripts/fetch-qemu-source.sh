#!/usr/bin/env bash
# fetch-qemu-source.sh - get the QEMU 10.0.2 source tarball cloudfs builds against.
#
# Usage:
#   scripts/fetch-qemu-source.sh [CACHE_DIR]      download (if needed) + verify, print path
#   scripts/fetch-qemu-source.sh --apt-setup-only  only add the bookworm-backports apt
#                                                  entries (deb + deb-src) and apt-get update
#
# CACHE_DIR defaults to $QEMU_CACHE_DIR, else <repo>/build/qemu-cache.
#
# The source is Debian's orig tarball of the bookworm-backports `qemu` source
# package (the full `apt-get source` does not work on every mirror, and we only need
# the orig tarball):
#     apt-get source --tar-only qemu=1:10.0.2+ds-2+deb13u1~bpo12+1
# -> qemu_10.0.2+ds.orig.tar.xz, whose sha256 is checked below.  If that exact Debian
# revision has left the archive, any revision of the same upstream version carries the
# byte-identical orig tarball, so we fall back to the candidate in bookworm-backports
# and rely on the sha256 check.
#
# Needs root (it edits /etc/apt/sources.list.d and runs apt-get update) unless the
# tarball is already cached.  The last line printed on stdout is the tarball path;
# all messages go to stderr.
#
# Environment:
#   QEMU_CACHE_DIR       cache directory (overridden by the CACHE_DIR argument)
#   QEMU_DEB_VERSION     Debian source version to fetch (default below)
#   DEBIAN_MIRROR        mirror URI for bookworm-backports (default: the one the
#                        machine's existing Debian entry uses, else deb.debian.org)

set -euo pipefail

QEMU_DEB_VERSION="${QEMU_DEB_VERSION:-1:10.0.2+ds-2+deb13u1~bpo12+1}"
QEMU_ORIG_TARBALL="qemu_10.0.2+ds.orig.tar.xz"
QEMU_ORIG_SHA256="0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1"
BACKPORTS_SOURCES=/etc/apt/sources.list.d/cloudfs-bookworm-backports.sources

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

log()  { printf 'fetch-qemu-source: %s\n' "$*" >&2; }
die()  { printf 'fetch-qemu-source: ERROR: %s\n' "$*" >&2; exit 1; }

sha_ok() {
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$QEMU_ORIG_SHA256" ]
}

# The mirror the machine already uses for Debian main (deb822 or one-line format).
detect_mirror() {
    local m=""
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        m="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' \
                /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; exit } }' \
                /etc/apt/sources.list | head -n1)"
    fi
    printf '%s\n' "${m:-http://deb.debian.org/debian}"
}

# Is a deb-src (and deb) entry for bookworm-backports configured anywhere?
have_backports_entry() {
    local kind="$1"   # deb or deb-src
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        grep -Eq "^[[:space:]]*${kind}[[:space:]].*[[:space:]]bookworm-backports([[:space:]]|$)" "$f" && return 0
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: a stanza whose Types has $kind and whose Suites has bookworm-backports
        awk -v kind="$kind" '
            BEGIN { RS = ""; found = 1 }
            {
                t = 0; s = 0; en = 1
                n = split($0, lines, "\n")
                for (i = 1; i <= n; i++) {
                    if (lines[i] ~ /^Types:/)   { if ((" " lines[i] " ") ~ (" " kind " ")) t = 1 }
                    if (lines[i] ~ /^Suites:/)  { if (lines[i] ~ /bookworm-backports/) s = 1 }
                    if (lines[i] ~ /^Enabled:[[:space:]]*no/) en = 0
                }
                if (t && s && en) found = 0
            }
            END { exit found }' "$f" && return 0
    done
    return 1
}

apt_setup() {
    [ "$(id -u)" -eq 0 ] || die "need root to configure apt (or put the tarball in the cache / set QEMU_TARBALL)"
    if ! grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
        log "WARNING: this is not Debian 12 (bookworm); adding bookworm-backports anyway"
    fi
    if have_backports_entry deb && have_backports_entry deb-src; then
        log "bookworm-backports deb + deb-src entries already present"
    else
        local mirror
        mirror="${DEBIAN_MIRROR:-$(detect_mirror)}"
        log "adding bookworm-backports (deb, deb-src) from $mirror to $BACKPORTS_SOURCES"
        cat > "$BACKPORTS_SOURCES" <<EOF
# Added by cloudfs scripts/fetch-qemu-source.sh: QEMU 10.0.2 source, meson 1.7,
# python3-pycotap, seabios and qemu-system-data for building/running QEMU.
Types: deb deb-src
URIs: $mirror
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    log "apt-get update"
    apt-get update -qq >&2 || die "apt-get update failed"
}

if [ "${1:-}" = "--apt-setup-only" ]; then
    apt_setup
    exit 0
fi
case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac

CACHE_DIR="${1:-${QEMU_CACHE_DIR:-$REPO_ROOT/build/qemu-cache}}"
mkdir -p "$CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd)"
TARBALL="$CACHE_DIR/$QEMU_ORIG_TARBALL"

if sha_ok "$TARBALL"; then
    log "cached: $TARBALL (sha256 ok)"
    printf '%s\n' "$TARBALL"
    exit 0
fi
[ -e "$TARBALL" ] && { log "cached $TARBALL has a wrong sha256; re-fetching"; rm -f "$TARBALL"; }

command -v apt-get >/dev/null || die "apt-get not found: set QEMU_TARBALL or QEMU_SRC instead"
# Make sure the source index knows the version; configure apt if it does not.
# (Capture first: `apt-cache ... | grep -q` would SIGPIPE apt-cache under pipefail.)
have_version() {
    local out
    out="$(apt-cache showsrc qemu 2>/dev/null || true)"
    grep -qxF "Version: $QEMU_DEB_VERSION" <<<"$out"
}
have_version || apt_setup

cd "$CACHE_DIR"
# apt's _apt sandbox user cannot write to root-owned dirs: harmless warning, hide it.
if have_version; then
    log "apt-get source --tar-only qemu=$QEMU_DEB_VERSION into $CACHE_DIR"
    apt-get source -qq --tar-only "qemu=$QEMU_DEB_VERSION" 2>&1 \
        | grep -v 'unsandboxed as root' >&2 || true
else
    log "WARNING: qemu $QEMU_DEB_VERSION is no longer in the archive;"
    log "         trying the current bookworm-backports candidate (same orig tarball expected)"
    apt-get source -qq --tar-only qemu/bookworm-backports 2>&1 \
        | grep -v 'unsandboxed as root' >&2 || true
fi

[ -f "$TARBALL" ] || die "apt-get source did not produce $TARBALL
  (set QEMU_TARBALL=/path/to/$QEMU_ORIG_TARBALL or QEMU_SRC=/path/to/qemu-10.0.2 instead)"
if ! sha_ok "$TARBALL"; then
    mv -f "$TARBALL" "$TARBALL.bad"
    die "sha256 mismatch for $QEMU_ORIG_TARBALL (kept as $TARBALL.bad); expected $QEMU_ORIG_SHA256"
fi
log "ok: $TARBALL (sha256 verified)"
printf '%s\n' "$TARBALL"
