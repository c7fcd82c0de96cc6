#!/usr/bin/env bash
# Proves the snapshot subcommands: create names the current version (and
# refuses a duplicate), list shows name, version, version id and date,
# revert makes a snapshot's content current again as a new version while
# the abandoned head stays exportable by its number, revert also takes a
# version number, and delete drops the name (and only the name).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

MiB=$((1024 * 1024))
cfs create d.cfs 4M >/dev/null
put a.raw 0 $((3 * MiB / 2))
put b.raw $MiB $MiB
padded a.raw $((4 * MiB)) a.pad
cp a.pad b.pad
dd if=b.raw of=b.pad conv=notrunc status=none  # b.raw's hole imports as zeros

cfs import d.cfs a.raw
base_version=$(info_field d.cfs version)
base_id=$(info_field d.cfs version-id)
expect_status 0 "$CLOUDFS" snapshot create d.cfs base
expect_eq "$out" "created snapshot 'base' of version $base_version; new version $((base_version + 1))" \
    "snapshot create"
expect_status 1 "$CLOUDFS" snapshot create d.cfs base
expect_contains "$err" "a snapshot named 'base' already exists" "duplicate tag"
expect_eq "$(info_field d.cfs version)" $((base_version + 1)) \
    "version after a refused duplicate"

expect_status 0 "$CLOUDFS" snapshot list d.cfs
expect_eq "$(head -1 <<<"$out" | tr -s ' ')" "NAME VERSION VERSION ID DATE" \
    "snapshot list header"
today=$(date -u +%Y-%m-%d)
grep -qE "^base +$base_version  $base_id  ${today}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$" \
    <<<"$out" || fail "snapshot list does not show base with its date: $out"
expect_eq "$(wc -l <<<"$out")" 2 "snapshot list lines"

# Write b.raw, then revert to base: a.raw's content is current again
cfs import d.cfs b.raw
abandoned=$(info_field d.cfs version)
cfs export d.cfs now.raw
expect_same_file now.raw b.pad "export after the second import"
expect_status 0 "$CLOUDFS" snapshot revert d.cfs base
expect_eq "$out" "reverted to 'base' (version $base_version); new version $((abandoned + 1))" \
    "snapshot revert"
cfs export d.cfs now.raw
expect_same_file now.raw a.pad "export after revert"
# The abandoned head is still there, by its number
cfs export d.cfs@$abandoned old.raw
expect_same_file old.raw b.pad "export of the abandoned head"

# Revert by version number, to the abandoned head
expect_status 0 "$CLOUDFS" snapshot revert d.cfs $abandoned
expect_eq "$out" "reverted to version $abandoned; new version $((abandoned + 2))" \
    "revert by number"
cfs export d.cfs now.raw
expect_same_file now.raw b.pad "export after revert by number"
expect_status 1 "$CLOUDFS" snapshot revert d.cfs nosuch
expect_contains "$err" "no snapshot named 'nosuch'" "revert to a missing tag"
expect_status 1 "$CLOUDFS" snapshot revert d.cfs 999
expect_contains "$err" "version 999 does not exist" "revert to a missing version"

# Several snapshots list in version order
cfs snapshot create d.cfs later >/dev/null
expect_status 0 "$CLOUDFS" snapshot list d.cfs
expect_eq "$(awk 'NR > 1 { print $1 }' <<<"$out" | tr '\n' ' ')" "base later " \
    "snapshot list order"

# Delete drops the name; the version it named stays readable by number
expect_status 0 "$CLOUDFS" snapshot delete d.cfs base
expect_eq "$out" "deleted snapshot 'base' of version $base_version; new version $((abandoned + 4))" \
    "snapshot delete"
expect_status 0 "$CLOUDFS" snapshot list d.cfs
expect_not_contains "$out" "base" "snapshot list after delete"
expect_contains "$out" "later" "snapshot list after delete"
expect_status 1 "$CLOUDFS" snapshot delete d.cfs base
expect_contains "$err" "no snapshot named 'base'" "deleting a missing tag"
expect_status 1 "$CLOUDFS" export d.cfs@base x.raw
cfs export d.cfs@$base_version old.raw
expect_same_file old.raw a.pad "export of a version whose tag was deleted"
expect_status 1 "$CLOUDFS" snapshot revert d.cfs base
echo "snapshot: ok"
