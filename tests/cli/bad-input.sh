#!/usr/bin/env bash
# Proves that bad input gets a clear "cloudfs: SUBCOMMAND: ..." error, the
# documented exit status (1 for a failed operation, 2 for a usage error) and
# changes nothing: files that are not cloudfs images, a truncated
# superblock, a SIZE that is not a size, unknown subcommands and options,
# missing or extra arguments, missing files, versions and tags that do not
# exist, writes to a past version, and exporting an image onto itself.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

cfs create d.cfs 1M >/dev/null
put data.raw 0 4096
cfs import d.cfs data.raw
cp d.cfs d.orig

# Not cloudfs images: every reading subcommand refuses them
head -c 65536 /dev/urandom >random.img
: >empty.img
head -c 100 d.cfs >short.img
for cmd in info versions log check; do
    expect_status 1 "$CLOUDFS" "$cmd" random.img
    expect_eq "$err" "cloudfs: $cmd: random.img: not a cloudfs image (bad magic)" \
        "$cmd of a random file"
done
expect_status 1 "$CLOUDFS" export random.img out.raw
expect_contains "$err" "cloudfs: export: random.img: not a cloudfs image" \
    "export of a random file"
[[ ! -e out.raw ]] || fail "export of a bad image created its output"
expect_status 1 "$CLOUDFS" info empty.img
expect_contains "$err" "cloudfs: info: empty.img: not a cloudfs image" \
    "info of an empty file"
expect_status 1 "$CLOUDFS" info short.img
expect_eq "$err" "cloudfs: info: short.img: image is truncated: the superblock needs 1024 bytes, the file has 100" \
    "info of a truncated superblock"
expect_status 1 "$CLOUDFS" import short.img data.raw
expect_eq "$(stat -c %s short.img)" 100 "truncated image after import"

# Sizes: "12X" is a usage error and creates nothing
expect_status 2 "$CLOUDFS" create x.cfs 12X
expect_contains "$err" "cloudfs: create: SIZE '12X' is not a size" "SIZE 12X"
[[ ! -e x.cfs ]] || fail "create with a bad size created x.cfs"
for size in "" -1 G 1Q 10GG 5KK 1.5; do
    expect_status 2 "$CLOUDFS" create x.cfs "$size"
    [[ ! -e x.cfs ]] || fail "create with size '$size' created x.cfs"
done
expect_status 2 "$CLOUDFS" create --block-size 4Z x.cfs 1M
expect_contains "$err" "block size '4Z' is not a size" "bad block size"

# Subcommands, options and arguments
expect_status 2 "$CLOUDFS" frobnicate d.cfs
expect_eq "$(head -1 <<<"$err")" "cloudfs: unknown subcommand 'frobnicate'" \
    "unknown subcommand"
expect_status 2 "$CLOUDFS"
expect_contains "$err" "missing subcommand" "no subcommand"
expect_status 2 "$CLOUDFS" --frobnicate
expect_status 2 "$CLOUDFS" info --frobnicate d.cfs
expect_contains "$err" "cloudfs: info: Unknown option --frobnicate" \
    "unknown option"
for args in "create" "create x.cfs" "info" "import d.cfs" "export d.cfs" \
            "snapshot" "snapshot create d.cfs" "snapshot list" \
            "versions" "log" "check" "export-delta d.cfs" "apply-delta"; do
    # shellcheck disable=SC2086
    expect_status 2 "$CLOUDFS" $args
    expect_contains "$err" "missing" "'cloudfs $args'"
done
[[ ! -e x.cfs ]] || fail "create without SIZE created x.cfs"
for args in "info d.cfs d.cfs" "versions d.cfs x" "import d.cfs a b" \
            "snapshot list d.cfs x" "snapshot create d.cfs a b"; do
    # shellcheck disable=SC2086
    expect_status 2 "$CLOUDFS" $args
done
expect_status 2 "$CLOUDFS" snapshot frob d.cfs x
expect_contains "$err" "unknown action 'frob'" "unknown snapshot action"

# Files, versions and tags that do not exist
expect_status 1 "$CLOUDFS" info nosuch.cfs
expect_eq "$err" "cloudfs: info: cannot open 'nosuch.cfs': No such file or directory" \
    "info of a missing file"
expect_status 1 "$CLOUDFS" import d.cfs nosuch.raw
expect_contains "$err" "cannot open 'nosuch.raw'" "import of a missing file"
expect_status 1 "$CLOUDFS" info d.cfs@7
expect_contains "$err" "version 7 does not exist" "missing version"
expect_status 1 "$CLOUDFS" export d.cfs@nosuchtag out.raw
expect_contains "$err" "no snapshot named 'nosuchtag'" "missing tag"
[[ ! -e out.raw ]] || fail "export of a missing version created its output"

# Only the head can be written; an image is never exported onto itself
expect_status 1 "$CLOUDFS" import d.cfs@0 data.raw
expect_contains "$err" "only the head of a disk can be changed" \
    "import into a past version"
expect_status 1 "$CLOUDFS" snapshot create d.cfs@0 x
expect_status 1 "$CLOUDFS" export d.cfs d.cfs
expect_contains "$err" "refusing to overwrite it" "export onto itself"
expect_same_file d.cfs d.orig "image after the refused commands"
echo "bad-input: ok"
