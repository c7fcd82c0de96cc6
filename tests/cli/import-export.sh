#!/usr/bin/env bash
# Proves that import then export gives back the raw image byte for byte
# (random data, holes, explicit zero blocks, a size that is not a multiple
# of the block size), that zeros and holes take no space in the image or in
# the exported file, that importing over existing data replaces it (holes
# included) and keeps the disk's bytes after the raw file's end, that past
# versions and tags export as they were, and that a raw file larger than
# the disk is refused without writing anything.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

MiB=$((1024 * 1024))
DISK=$((16 * MiB))

# a.raw: 8 MiB + 1000 bytes, block size 4096:
#   [0, 1M) random | [1M, 3M) hole | [3M, 3.5M) random |
#   [3.5M, 4.5M) zeros written out | [5M+100, 5M+12445) random |
#   hole | [8M+500, 8M+1000) random, the file ending mid-block
put a.raw 0 $MiB
put a.raw $((3 * MiB)) $((MiB / 2))
put a.raw $((7 * MiB / 2)) $MiB /dev/zero
put a.raw $((5 * MiB + 100)) 12345
truncate -s $((8 * MiB + 500)) a.raw
put a.raw $((8 * MiB + 500)) 500
expect_eq "$(stat -c %s a.raw)" $((8 * MiB + 1000)) "a.raw size"
# 256 + 128 + 4 + 1 blocks hold data; the rest is holes or zeros
a_data=$(((256 + 128 + 4 + 1) * 4096))

cfs create d.cfs $DISK >/dev/null
expect_status 0 "$CLOUDFS" import d.cfs a.raw
expect_eq "$out" "" "import prints nothing"
expect_eq "$(info_field d.cfs live-bytes)" $a_data "live bytes after import"
a_version=$(info_field d.cfs version)
cfs export d.cfs out.raw
padded a.raw $DISK a.pad
expect_eq "$(stat -c %s out.raw)" $DISK "exported size"
expect_same_file out.raw a.pad "export after import"
# Holes and zeros stay holes: only the data blocks take space (+ slack)
allocated=$(($(stat -c %b out.raw) * $(stat -c %B out.raw)))
((allocated <= a_data + 256 * 1024)) ||
    fail "export allocated $allocated bytes for $a_data bytes of data"
# The image itself holds the data once, plus headers and a checkpoint
(($(stat -c %s d.cfs) < a_data + MiB)) || fail "image larger than expected"
cfs snapshot create d.cfs imported-a >/dev/null

# b.raw over it: its holes must read as zeros afterwards, and the bytes of
# the last block after b.raw's end (3M + 1000, inside a.raw's random data)
# keep a.raw's content
put b.raw $((2 * MiB)) $((MiB / 4))
truncate -s $((3 * MiB + 1000)) b.raw
cfs import d.cfs b.raw
cp a.pad expected.raw
dd if=b.raw of=expected.raw conv=notrunc status=none
cfs export d.cfs out.raw
expect_same_file out.raw expected.raw "export after importing b.raw over a.raw"

# Past versions: by number and by tag, a.raw's content is still there
cfs export d.cfs@$a_version old.raw
expect_same_file old.raw a.pad "export of version $a_version"
cfs export d.cfs@imported-a tag.raw
expect_same_file tag.raw a.pad "export of tag imported-a"
cfs export d.cfs@0 empty.raw
padded /dev/null $DISK zeros.raw
expect_same_file empty.raw zeros.raw "export of version 0"
# An existing output file is truncated, not merged into
head -c $((20 * MiB)) /dev/urandom >big.raw
cfs export d.cfs@imported-a big.raw
expect_same_file big.raw a.pad "export over a larger file"

# A block size other than 4K: 64K blocks, raw file ending mid-block
cfs create --block-size 64K e.cfs $((2 * MiB)) >/dev/null
put c.raw 0 $((MiB + 70000))
cfs import e.cfs c.raw
cfs export e.cfs c.out
padded c.raw $((2 * MiB)) c.pad
expect_same_file c.out c.pad "64K-block round trip"

# Too large for the disk: refused, and the disk is unchanged
cfs create small.cfs $MiB >/dev/null
expect_status 1 "$CLOUDFS" import small.cfs a.raw
expect_eq "$err" "cloudfs: import: 'a.raw' ($((8 * MiB + 1000)) bytes) does not fit in 'small.cfs' ($MiB bytes)" \
    "import of a raw file larger than the disk"
expect_eq "$(info_field small.cfs version)" 0 "version after a refused import"
echo "import-export: ok"
