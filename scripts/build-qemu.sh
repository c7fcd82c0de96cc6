#!/usr/bin/env bash
# build-qemu.sh - build QEMU 10.0.2 with the cloudfs driver(s) compiled in.
#
# Usage:
#   scripts/build-qemu.sh                    full build: tools + qemu-system-x86_64
#   QEMU_TOOLS_ONLY=1 scripts/build-qemu.sh  only qemu-img, qemu-io, qemu-nbd,
#                                            qemu-storage-daemon (much faster)
#   (qemu-iotests' `check` refuses to run without a qemu-system-* binary in the
#   build dir, so running iotests needs the full build once.)
#
# Where the QEMU source comes from (first that is set wins):
#   QEMU_SRC=/path/to/qemu-10.0.2    an unpacked QEMU 10.0.x source tree (not modified;
#                                    copied); a git checkout needs its subprojects
#   QEMU_TARBALL=/path/to/x.tar.xz   a QEMU 10.0.x source tarball (e.g. Debian's
#                                    qemu_10.0.2+ds.orig.tar.xz or upstream's)
#   (neither)                        Debian's orig tarball, fetched once with
#                                    `apt-get source --tar-only` into $QEMU_CACHE_DIR
#                                    by scripts/fetch-qemu-source.sh (sha256-checked)
#
# What it does, each step skipped when there is nothing to do:
#   1. checks the build dependencies; if some are missing and we are root, runs
#      scripts/install-qemu-deps.sh (set QEMU_NO_INSTALL_DEPS=1 to fail instead);
#   2. prepares $BUILD/qemu-src: unpack/copy the pristine source into a staging dir,
#      apply patches/qemu-10.0/*.patch in order (patch -p1 --forward --fuzz=0: a hunk
#      that does not apply exactly is a hard error; a patch already present in a
#      QEMU_SRC tree is skipped), copy our files in, then sync the staging dir into
#      qemu-src by content (rsync -c) so unchanged files keep their mtimes and ninja
#      rebuilds only what really changed.  A stamp (source id + patch checksums + list
#      of our files) skips all of this when nothing changed; then only the contents of
#      our own files are refreshed (copied only if different).
#      Our files copied into the QEMU tree (same relative path), if they exist:
#        block/cloudfs.c, block/cloudfs-*.c, block/cloudfs*.h, qapi/cloudfs*.json,
#        block/cloudfs/**  (the format core), tests/qemu-iotests/** (mirrors QEMU's
#        tests/qemu-iotests/, so a named iotest lives at tests/qemu-iotests/tests/NAME).
#      They may only add files: replacing one of QEMU's own files (a path without
#      "cloudfs" in it that exists in the source) is an error: use a patch in
#      patches/qemu-10.0/ for that;
#   3. configures $BUILD/qemu-build once (again only if the configure arguments
#      change): --target-list=x86_64-softmmu --python=/usr/bin/python3
#      --disable-install-blobs --disable-docs --disable-download --enable-werror,
#      ccache, and
#      --enable-fuse / --enable-linux-aio / --enable-linux-io-uring when available;
#   4. builds the binaries with nice'd ninja and links them into $BUILD/bin/;
#   5. links Debian's firmware (seabios, qemu-system-data, ipxe-qemu) into
#      $BUILD/qemu-build/qemu-bundle/usr/local/share/qemu so a qemu-system-x86_64 run
#      from the build tree finds its PC BIOS, and smoke-tests the binaries.
#
# Layout (BUILD defaults to <repo>/build):
#   $BUILD/qemu-cache/   downloaded tarball        $BUILD/qemu-src/    patched source
#   $BUILD/qemu-build/   QEMU build dir (iotests:  $BUILD/qemu-build/tests/qemu-iotests/check)
#   $BUILD/bin/          qemu-img qemu-io qemu-nbd qemu-storage-daemon qemu-system-x86_64
#
# Environment:
#   CLOUDFS_BUILD_DIR     BUILD above
#   QEMU_CACHE_DIR        tarball cache (default $BUILD/qemu-cache)
#   QEMU_BUILD_DIR        QEMU build dir (default $BUILD/qemu-build)
#   QEMU_TOOLS_ONLY=1     build the tools only
#   QEMU_JOBS             ninja -j (default: nproc)
#   QEMU_NICE             nice level for configure/ninja (default 10)
#   QEMU_CCACHE=0         do not use ccache
#   QEMU_WERROR=0         do not configure with --enable-werror (default: on)
#   QEMU_CONFIGURE_EXTRA  extra arguments for QEMU's configure (word-split)
#   QEMU_NO_INSTALL_DEPS=1  never run apt; fail if a dependency is missing
#   QEMU_SMOKE=0          skip the smoke tests at the end
#
# Exit status is non-zero, with a message starting "build-qemu: ERROR:", on any failure.

set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"

STAMP_FORMAT=1                  # bump to force a re-sync of qemu-src
QEMU_SERIES="10.0"              # VERSION of the source must start with this
PATCH_DIR="$REPO_ROOT/patches/qemu-$QEMU_SERIES"

BUILD="${CLOUDFS_BUILD_DIR:-$REPO_ROOT/build}"
TOOLS_ONLY="${QEMU_TOOLS_ONLY:-0}"
JOBS="${QEMU_JOBS:-$(nproc 2>/dev/null || echo 2)}"
NICE="${QEMU_NICE:-10}"

log()  { printf 'build-qemu: %s\n' "$*" >&2; }
die()  { printf 'build-qemu: ERROR: %s\n' "$*" >&2; exit 1; }
step() { STEP_NAME="$1"; STEP_START=$SECONDS; log "== $1"; }
step_done() { log "   ${STEP_NAME} took $((SECONDS - STEP_START))s"; }
# shellcheck disable=SC2154
trap 'rc=$?; [ $rc -eq 0 ] || printf "build-qemu: ERROR: failed (exit %s) during: %s\n" "$rc" "${STEP_NAME:-startup}" >&2' EXIT

case "${1:-}" in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) die "unknown argument '$1' (configure with environment variables; see --help)" ;;
esac

mkdir -p "$BUILD"
BUILD="$(cd "$BUILD" && pwd)"
SRC="$BUILD/qemu-src"
STAGE="$BUILD/qemu-src.stage"
QBUILD="${QEMU_BUILD_DIR:-$BUILD/qemu-build}"
CACHE="${QEMU_CACHE_DIR:-$BUILD/qemu-cache}"
BIN="$BUILD/bin"
SRC_STAMP="$SRC/.cloudfs-stamp"
CONF_STAMP="$QBUILD/.cloudfs-configure-args"
TOTAL_START=$SECONDS

# One build at a time per build dir.
exec 9>"$BUILD/.build-qemu.lock"
if ! flock -n 9; then
    log "another build-qemu.sh is running on $BUILD; waiting for it"
    flock 9
fi

# ---------------------------------------------------------------- 1. dependencies
step "checking build dependencies"
missing_deps() {
    local m=()
    local t
    for t in gcc ninja pkg-config patch rsync xz tar sha256sum flock; do
        command -v "$t" >/dev/null 2>&1 || m+=("$t")
    done
    [ -x /usr/bin/python3 ] || m+=("/usr/bin/python3")
    /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || m+=("python3-venv")
    /usr/bin/python3 -c 'import pycotap' >/dev/null 2>&1 || m+=("python3-pycotap")
    local mv
    mv="$(meson --version 2>/dev/null || echo none)"
    case "$mv" in none|0.*|1.[0-4]|1.[0-4].*) m+=("meson>=1.5 (have $mv)") ;; esac
    for t in glib-2.0 zlib pixman-1; do
        pkg-config --exists "$t" 2>/dev/null || m+=("pkg-config:$t")
    done
    if [ "${QEMU_CCACHE:-1}" != 0 ]; then
        command -v ccache >/dev/null 2>&1 || m+=("ccache")
    fi
    if [ "$TOOLS_ONLY" != 1 ]; then
        [ -f /usr/share/seabios/bios-256k.bin ] || m+=("seabios")
        [ -f /usr/share/qemu/linuxboot_dma.bin ] || m+=("qemu-system-data")
    fi
    printf '%s\n' "${m[@]}"
}
missing="$(missing_deps)"
if [ -n "$missing" ]; then
    log "missing: $(echo $missing)"
    if [ "${QEMU_NO_INSTALL_DEPS:-0}" = 1 ] || [ "$(id -u)" -ne 0 ]; then
        die "build dependencies missing; run scripts/install-qemu-deps.sh as root"
    fi
    log "running scripts/install-qemu-deps.sh"
    "$SCRIPT_DIR/install-qemu-deps.sh"
    missing="$(missing_deps)"
    [ -z "$missing" ] || die "still missing after install-qemu-deps.sh: $(echo $missing)"
fi
step_done

# ---------------------------------------------------------------- 2. source tree
step "preparing QEMU source in $SRC"

if [ -n "${QEMU_SRC:-}" ]; then
    [ -d "$QEMU_SRC" ] || die "QEMU_SRC=$QEMU_SRC is not a directory"
    QEMU_SRC="$(cd "$QEMU_SRC" && pwd)"
    [ -f "$QEMU_SRC/VERSION" ] && [ -f "$QEMU_SRC/configure" ] \
        || die "QEMU_SRC=$QEMU_SRC does not look like a QEMU source tree (no VERSION/configure)"
    case "$QEMU_SRC/" in "$BUILD"/*) die "QEMU_SRC must not be inside $BUILD" ;; esac
    SOURCE_ID="dir:$QEMU_SRC"
    SOURCE_DESC="directory $QEMU_SRC"
else
    if [ -n "${QEMU_TARBALL:-}" ]; then
        [ -f "$QEMU_TARBALL" ] || die "QEMU_TARBALL=$QEMU_TARBALL does not exist"
        TARBALL="$(cd "$(dirname "$QEMU_TARBALL")" && pwd)/$(basename "$QEMU_TARBALL")"
    else
        TARBALL="$("$SCRIPT_DIR/fetch-qemu-source.sh" "$CACHE" | tail -n1)" \
            || die "could not fetch the QEMU source (set QEMU_SRC or QEMU_TARBALL)"
        [ -f "$TARBALL" ] || die "fetch-qemu-source.sh returned no tarball"
    fi
    SOURCE_ID="tar:$(sha256sum "$TARBALL" | cut -d' ' -f1)"
    SOURCE_DESC="tarball $TARBALL"
fi

# Our files that go into the QEMU tree, as paths relative to the repo (and tree).
overlay_files() {
    (
        cd "$REPO_ROOT"
        shopt -s nullglob
        local f
        for f in block/cloudfs.c block/cloudfs-*.c block/cloudfs*.h qapi/cloudfs*.json; do
            [ -f "$f" ] && printf '%s\n' "$f"
        done
        for d in block/cloudfs tests/qemu-iotests; do
            [ -d "$d" ] && find "$d" -type f ! -name '*~' ! -name '*.orig' ! -name '*.rej' \
                                 ! -name '.*.swp' ! -path '*/__pycache__/*' -print
        done
    ) | LC_ALL=C sort
}
mapfile -t OVERLAY < <(overlay_files)

shopt -s nullglob
PATCHES=("$PATCH_DIR"/*.patch)
shopt -u nullglob

compute_stamp() {
    {
        echo "format $STAMP_FORMAT"
        echo "source $SOURCE_ID"
        local p
        for p in "${PATCHES[@]}"; do
            echo "patch $(basename "$p") $(sha256sum "$p" | cut -d' ' -f1)"
        done
        printf 'file %s\n' "${OVERLAY[@]}"
    }
}
WANT_STAMP="$(compute_stamp)"

apply_patches() {
    local dir="$1" p out
    if [ ${#PATCHES[@]} -eq 0 ]; then
        log "no patches in $PATCH_DIR"
        return 0
    fi
    for p in "${PATCHES[@]}"; do
        if out="$(patch -d "$dir" -p1 --forward --batch --fuzz=0 --dry-run < "$p" 2>&1)"; then
            patch -d "$dir" -p1 --forward --batch --fuzz=0 --no-backup-if-mismatch --quiet < "$p" \
                || die "patch $(basename "$p") failed after a clean dry run?!"
            log "applied $(basename "$p")"
        elif patch -d "$dir" -p1 -R --batch --fuzz=0 --dry-run --force < "$p" >/dev/null 2>&1; then
            log "$(basename "$p") is already applied in the source; skipping"
        else
            printf '%s\n' "$out" >&2
            die "patch $p does not apply to the QEMU source ($SOURCE_DESC).
  The hunks above FAILED.  Rebase the patch onto QEMU $QEMU_SERIES (see patch's output)."
        fi
    done
}

copy_overlay_into() {          # $1 = tree; $2 = 1 to forbid overwriting QEMU's files
    local dir="$1" check="$2" f
    for f in "${OVERLAY[@]}"; do
        # A file of QEMU's own must not be shadowed by one of ours (that is what
        # patches are for).  Paths naming cloudfs are ours by definition, so a source
        # tree that already carries an (older) copy of them is simply refreshed.
        if [ "$check" = 1 ] && [ -e "$dir/$f" ] && [[ "$f" != *cloudfs* ]] \
                && ! cmp -s "$REPO_ROOT/$f" "$dir/$f"; then
            die "our file $f would overwrite QEMU's own $f; make that change a patch in patches/qemu-$QEMU_SERIES/"
        fi
        mkdir -p "$dir/$(dirname "$f")"
        cp -p "$REPO_ROOT/$f" "$dir/$f"
    done
}

# Fast path: only refresh contents of our files (copy only the ones that differ, so
# the rest keep their mtimes).
refresh_overlay() {
    local f n=0
    for f in "${OVERLAY[@]}"; do
        if ! cmp -s "$REPO_ROOT/$f" "$SRC/$f"; then
            mkdir -p "$SRC/$(dirname "$f")"
            cp "$REPO_ROOT/$f" "$SRC/$f"
            chmod --reference="$REPO_ROOT/$f" "$SRC/$f"
            n=$((n + 1))
        fi
    done
    log "our files: ${#OVERLAY[@]} in the tree, $n updated"
}

# The stamp's "file" lines are the list of our files; the rest identifies the
# pristine source and the patches.  A changed source or patch set means a full
# re-sync; a changed list of our files alone is handled in place when it can be.
base_of()  { grep -v '^file ' || true; }
files_of() { grep '^file ' | sed 's/^file //' || true; }
need_resync=1
if [ -f "$SRC_STAMP" ] && [ "$(base_of < "$SRC_STAMP")" = "$(base_of <<<"$WANT_STAMP")" ]; then
    need_resync=0
    if [ -n "${QEMU_SRC:-}" ] && [ -n "$(find "$QEMU_SRC" -newer "$SRC_STAMP" \
            -not -path "$QEMU_SRC/.git/*" -not -path "$QEMU_SRC/build/*" -print -quit)" ]; then
        log "files in $QEMU_SRC changed since the last sync"
        need_resync=1
    fi
fi
if [ "$need_resync" = 0 ]; then
    # Files of ours that were removed from the repo: delete them from the tree.
    # Only paths naming cloudfs can be deleted safely without the pristine tree.
    mapfile -t GONE < <(comm -23 <(files_of < "$SRC_STAMP" | LC_ALL=C sort) \
                                 <(printf '%s\n' "${OVERLAY[@]}" | LC_ALL=C sort))
    for f in "${GONE[@]}"; do
        [ -n "$f" ] || continue
        if [[ "$f" == *cloudfs* ]]; then
            log "removing $f from the tree (no longer in the repo)"
            rm -f "$SRC/$f"
        else
            log "$f is no longer in the repo: full re-sync"
            need_resync=1
        fi
    done
fi

if [ "$need_resync" = 0 ]; then
    log "source up to date ($SOURCE_DESC, ${#PATCHES[@]} patch(es))"
    if [ "$(files_of < "$SRC_STAMP")" != "$(files_of <<<"$WANT_STAMP")" ]; then
        # New files of ours: same check as on a full sync (no shadowing of QEMU's).
        for f in "${OVERLAY[@]}"; do
            if [ -e "$SRC/$f" ] && [[ "$f" != *cloudfs* ]] \
                    && ! grep -qxF "file $f" "$SRC_STAMP" && ! cmp -s "$REPO_ROOT/$f" "$SRC/$f"; then
                die "our file $f would overwrite QEMU's own $f; make that change a patch in patches/qemu-$QEMU_SERIES/"
            fi
        done
    fi
    refresh_overlay
    [ "$(cat "$SRC_STAMP")" = "$WANT_STAMP" ] || printf '%s\n' "$WANT_STAMP" > "$SRC_STAMP"
else
    rm -rf "$STAGE"
    mkdir -p "$STAGE"
    if [ -n "${QEMU_SRC:-}" ]; then
        log "copying $QEMU_SRC"
        rsync -a --exclude=/.git --exclude=/build "$QEMU_SRC"/ "$STAGE"/
    else
        log "unpacking $TARBALL"
        tar -xf "$TARBALL" -C "$STAGE" --strip-components=1 --no-same-owner \
            || die "could not unpack $TARBALL"
    fi
    [ -f "$STAGE/VERSION" ] || die "no VERSION file at the top of the source"
    version="$(cat "$STAGE/VERSION")"
    case "$version" in
        "$QEMU_SERIES".*) log "QEMU version $version" ;;
        *) die "QEMU source is version $version; cloudfs targets $QEMU_SERIES.x" ;;
    esac
    apply_patches "$STAGE"
    copy_overlay_into "$STAGE" 1
    if [ -d "$SRC" ]; then
        log "syncing changes into $SRC (by content)"
        rm -f "$SRC_STAMP"
        rsync -rlpc --delete "$STAGE"/ "$SRC"/ || die "rsync into $SRC failed"
        rm -rf "$STAGE"
    else
        mv "$STAGE" "$SRC"
        # A build dir from an older source tree would see old mtimes: start afresh.
        if [ -d "$QBUILD" ]; then
            log "removing $QBUILD (it was built from a source tree that is gone)"
            rm -rf "$QBUILD"
        fi
    fi
    printf '%s\n' "$WANT_STAMP" > "$SRC_STAMP"
fi
step_done

# ---------------------------------------------------------------- 3. configure
step "configuring in $QBUILD"
CONF_ARGS=(
    --target-list=x86_64-softmmu
    --python=/usr/bin/python3
    --disable-install-blobs
    --disable-docs
    --disable-download
)
if [ "${QEMU_CCACHE:-1}" != 0 ] && command -v ccache >/dev/null 2>&1; then
    CONF_ARGS+=("--cc=ccache gcc")
    # Let clones at other paths (CI) hit the same cache entries.
    export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$BUILD}"
    export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
fi
# Release tarballs build QEMU without -Werror; we want warnings in our glue (e.g. a
# BlockDriver callback with the wrong prototype) to stop the build.  QEMU 10.0.2
# itself builds warning-free with Debian 12's gcc 12.
[ "${QEMU_WERROR:-1}" = 1 ] && CONF_ARGS+=(--enable-werror)
pkg-config --exists fuse3 2>/dev/null && CONF_ARGS+=(--enable-fuse)
[ -f /usr/include/libaio.h ] && CONF_ARGS+=(--enable-linux-aio)
pkg-config --exists liburing 2>/dev/null && CONF_ARGS+=(--enable-linux-io-uring)
# shellcheck disable=SC2206
[ -n "${QEMU_CONFIGURE_EXTRA:-}" ] && CONF_ARGS+=(${QEMU_CONFIGURE_EXTRA})
WANT_CONF="$(printf '%s\n' "src=$SRC" "${CONF_ARGS[@]}")"

if [ -f "$QBUILD/build.ninja" ] && [ -f "$CONF_STAMP" ] && [ "$(cat "$CONF_STAMP")" = "$WANT_CONF" ]; then
    log "already configured (meson re-runs itself through ninja if meson.build files changed)"
else
    if [ -e "$QBUILD" ]; then
        log "configure arguments changed or last configure incomplete: wiping $QBUILD"
        rm -rf "$QBUILD"
    fi
    mkdir -p "$QBUILD"
    log "configure ${CONF_ARGS[*]}"
    if ! (cd "$QBUILD" && nice -n "$NICE" "$SRC/configure" "${CONF_ARGS[@]}") > "$QBUILD/cloudfs-configure.log" 2>&1; then
        tail -n 40 "$QBUILD/cloudfs-configure.log" >&2
        die "QEMU configure failed (full log: $QBUILD/cloudfs-configure.log)"
    fi
    printf '%s\n' "$WANT_CONF" > "$CONF_STAMP"
fi
step_done

# ---------------------------------------------------------------- 4. build
TOOLS=(qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon)
TARGETS=("${TOOLS[@]}")
[ "$TOOLS_ONLY" = 1 ] || TARGETS+=(qemu-system-x86_64)

step "building ${TARGETS[*]} (ninja -j$JOBS, nice $NICE)"
nice -n "$NICE" ninja -C "$QBUILD" -j "$JOBS" "${TARGETS[@]}" \
    || die "ninja failed (re-run: ninja -C $QBUILD ${TARGETS[*]})"
step_done

step "linking binaries into $BIN"
mkdir -p "$BIN"
relbuild="$(realpath --relative-to="$BIN" "$QBUILD")"
for t in "${TARGETS[@]}"; do
    [ -x "$QBUILD/$t" ] || die "expected binary $QBUILD/$t was not built"
    ln -sfn "$relbuild/$t" "$BIN/$(basename "$t")"
done
if [ "$TOOLS_ONLY" = 1 ] && [ -e "$QBUILD/qemu-system-x86_64" ] \
        && [ "$QBUILD/qemu-system-x86_64" -ot "$QBUILD/qemu-img" ]; then
    log "NOTE: qemu-system-x86_64 in $QBUILD is older than the tools (tools-only build);"
    log "      iotests that start a VM would use it: run without QEMU_TOOLS_ONLY to refresh"
fi
step_done

# ---------------------------------------------------------------- 5. firmware + smoke
step "linking Debian firmware into the build tree's qemu-bundle"
FWDIR="$QBUILD/qemu-bundle/usr/local/share/qemu"
mkdir -p "$FWDIR"
nfw=0
for src_dir in /usr/share/seabios /usr/share/qemu /usr/lib/ipxe/qemu; do
    [ -d "$src_dir" ] || continue
    for f in "$src_dir"/*; do
        [ -f "$f" ] || continue           # skip keymaps/, firmware/ directories
        name="$(basename "$f")"
        if [ ! -e "$FWDIR/$name" ] || [ -L "$FWDIR/$name" ]; then
            # Don't replace meson's own links (they point into the build/source tree).
            cur="$(readlink "$FWDIR/$name" 2>/dev/null || true)"
            [ "$cur" = "$f" ] && continue
            case "$cur" in ""|/usr/*) ln -sfn "$f" "$FWDIR/$name"; nfw=$((nfw + 1)) ;; esac
        fi
    done
done
if [ "$TOOLS_ONLY" != 1 ] && [ ! -e "$FWDIR/bios-256k.bin" ]; then
    die "no bios-256k.bin in $FWDIR: install Debian's seabios (scripts/install-qemu-deps.sh)"
fi
log "firmware: $nfw new link(s) in $FWDIR ($(ls "$FWDIR" | wc -l) entries)"
step_done

if [ "${QEMU_SMOKE:-1}" != 0 ]; then
    step "smoke tests"
    v="$("$BIN/qemu-img" --version | head -n1)" || die "$BIN/qemu-img --version failed"
    log "$v"
    for t in qemu-io qemu-nbd qemu-storage-daemon; do
        "$BIN/$t" --version >/dev/null || die "$BIN/$t --version failed"
    done
    if [ "$TOOLS_ONLY" != 1 ]; then
        # Boot nothing: SeaBIOS runs, logs to the debug console (port 0x402) and
        # ends with "No bootable device."; a missing BIOS makes QEMU exit at once.
        tmpd="$(mktemp -d)"
        "$BIN/qemu-system-x86_64" -M pc -accel tcg -nodefaults -display none \
            -monitor none -serial none -no-reboot \
            -chardev "file,id=dbg,path=$tmpd/bios.log" \
            -device isa-debugcon,iobase=0x402,chardev=dbg 2>"$tmpd/err" &
        qpid=$!
        ok=0
        for _ in $(seq 1 120); do               # up to 60 s under load
            if grep -q 'No bootable device' "$tmpd/bios.log" 2>/dev/null; then ok=1; break; fi
            kill -0 "$qpid" 2>/dev/null || break
            sleep 0.5
        done
        kill "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
        if [ "$ok" != 1 ]; then
            cat "$tmpd/err" >&2
            tail -n 5 "$tmpd/bios.log" >&2 2>/dev/null || true
            rm -rf "$tmpd"
            die "qemu-system-x86_64 did not run SeaBIOS (firmware in $FWDIR?)"
        fi
        log "$(head -n1 "$tmpd/bios.log") ran in qemu-system-x86_64"
        rm -rf "$tmpd"
    fi
    step_done
fi

STEP_NAME="done"
log "done in $((SECONDS - TOTAL_START))s; binaries in $BIN:"
ls "$BIN" | sed 's/^/build-qemu:   /' >&2
