#!/usr/bin/env bash
# Proves that `check` passes a good image (exit 0); that it reports an image
# cut at a random offset inside its last record as torn (exit 1), that
# --repair cuts the tail (exit 3, then a clean check), and that the image
# then opens at the previous version with exactly that version's content
# and takes writes again; and that a flipped bit in a data block is
# reported as corruption (exit 1, not repairable, nothing cut off), makes
# export fail instead of writing wrong data, and leaves other versions
# readable.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

MiB=$((1024 * 1024))

# A good image, written over several sessions
cfs create d.cfs 4M >/dev/null
put a.raw 0 $((3 * MiB / 2))
cfs import d.cfs a.raw                       # versions 1 and 2
put b.raw 0 $((MiB / 4))
cfs import d.cfs b.raw                       # version 3
expect_status 0 "$CLOUDFS" check d.cfs
size=$(stat -c %s d.cfs)
for line in "records: 5" "versions: 3" "log end: $size" "file size: $size" \
            "torn bytes: 0" "corruptions: 0" "repaired: no"; do
    grep -qxF "$line" <<<"$out" || fail "check of a good image lacks '$line': $out"
done
expect_eq "$err" "" "check of a good image: stderr"
expect_status 0 "$CLOUDFS" check --json d.cfs
echo "$out" >check.json
expect_eq "$(json check.json "j['status']")" clean "json status"
expect_eq "$(json check.json "j['check']['corruptions']")" 0 "json corruptions"
expect_eq "$(json check.json "j['check']['versions']")" 3 "json versions"
expect_eq "$(json check.json "'after-repair' in j")" false "json after-repair"
# --repair on a good image changes nothing
cp d.cfs good.cfs
expect_status 0 "$CLOUDFS" check --repair d.cfs
expect_same_file d.cfs good.cfs "good image after check --repair"

v2_id=$(info_field d.cfs@2 version-id)
cfs export d.cfs@2 v2.raw

# --- A torn tail: cut inside the record of version 3 --------------------
offset=$(record_field d.cfs 3 offset)
length=$(record_field d.cfs 3 length)
cut=$((offset + 1 + (RANDOM * 32768 + RANDOM) % (length - 1)))
truncate -s $cut d.cfs
echo "cut version 3's record ($offset+$length) at $cut"
# Read-only opens already see the longest valid prefix
expect_eq "$(info_field d.cfs version)" 2 "version of the torn image"
expect_status 1 "$CLOUDFS" check d.cfs
grep -qxF "torn bytes: $((cut - offset))" <<<"$out" ||
    fail "check does not count $((cut - offset)) torn bytes: $out"
grep -qxF "log end: $offset" <<<"$out" || fail "torn log end: $out"
expect_contains "$err" "torn tail of $((cut - offset)) bytes found" \
    "check of a torn image: stderr"
expect_eq "$(stat -c %s d.cfs)" $cut "size after a check without --repair"
expect_status 3 "$CLOUDFS" check --repair d.cfs
expect_contains "$out" "after repair:" "check --repair output"
expect_eq "$(sed -n '/^after repair:/,$p' <<<"$out" | grep -x 'torn bytes: 0')" \
    "torn bytes: 0" "torn bytes after repair"
expect_eq "$(stat -c %s d.cfs)" $offset "size after repair"
expect_status 0 "$CLOUDFS" check d.cfs
expect_eq "$(info_field d.cfs version)" 2 "version after repair"
expect_eq "$(info_field d.cfs version-id)" "$v2_id" "version id after repair"
cfs export d.cfs now.raw
expect_same_file now.raw v2.raw "content after repair"
# The repaired image takes writes again
cfs import d.cfs b.raw
expect_eq "$(info_field d.cfs version)" 3 "version after a new write"
expect_status 0 "$CLOUDFS" check d.cfs
cfs export d.cfs@2 now.raw
expect_same_file now.raw v2.raw "version 2 after a new write"

# --- A flipped bit in a data block that the head maps -------------------
# Version 1 is written by its own session, so its record is followed by
# the checkpoint its writer flushed (see corrupt-history.sh for a record
# followed by more records of the same session)
cfs create e.cfs 4M >/dev/null
put c.raw 0 $MiB
cfs import e.cfs c.raw
cfs import e.cfs b.raw
check_flipped_block e.cfs
echo "check: ok"
