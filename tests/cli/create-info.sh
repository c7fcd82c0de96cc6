#!/usr/bin/env bash
# Proves that `cloudfs create` makes an empty disk of the asked size and
# block size, prints its id, refuses to overwrite a file, and that `cloudfs
# info` reports exactly that (text and --json), then the version, snapshots
# and space after writes, at the head and at past versions.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

# A new disk: the printed id is 40 hex digits, the base version id is it
expect_status 0 "$CLOUDFS" create d.cfs 64M
id=$out
[[ $id =~ ^[0-9a-f]{40}$ ]] || fail "create printed '$id', not a disk id"
expect_status 0 "$CLOUDFS" info d.cfs
expect_contains "$out" "image: d.cfs" "info text"
expect_contains "$out" "disk id: $id" "info text"
expect_contains "$out" "virtual size: 64.0 MiB (67108864 bytes)" "info text"
expect_contains "$out" "block size: 4096" "info text"
expect_contains "$out" "version: 0 (head)" "info text"
expect_contains "$out" "version id: $id" "info text"
expect_contains "$out" "log bytes: 0 " "info text"
expect_contains "$out" "extents: 0" "info text"
expect_contains "$out" "snapshots: none" "info text"
expect_not_contains "$out" "parent" "info text of a disk without parent"

expect_status 0 "$CLOUDFS" info --json d.cfs
echo "$out" >d.json
expect_eq "$(json d.json "j['disk-id']")" "$id" "json disk-id"
expect_eq "$(json d.json "j['version-id']")" "$id" "json version-id"
expect_eq "$(json d.json "j['virtual-size']")" 67108864 "json virtual-size"
expect_eq "$(json d.json "j['block-size']")" 4096 "json block-size"
expect_eq "$(json d.json "j['version']")" 0 "json version"
expect_eq "$(json d.json "j['head-version']")" 0 "json head-version"
expect_eq "$(json d.json "j['snapshots']")" "[]" "json snapshots"
expect_eq "$(json d.json "'parent' in j")" "false" "json parent"
expect_eq "$(json d.json "j['log-bytes']")" 0 "json log-bytes"
expect_eq "$(json d.json "j['live-bytes']")" 0 "json live-bytes"
expect_eq "$(json d.json "j['extent-count']")" 0 "json extent-count"
expect_eq "$(json d.json "j['file-size']")" "$(stat -c %s d.cfs)" \
    "json file-size"

# Sizes with suffixes and fractions; a size is rounded up to a whole block
cfs create --block-size 64K e.cfs 100000 >/dev/null
expect_eq "$(info_field e.cfs block-size)" 65536 "64K block size"
expect_eq "$(info_field e.cfs virtual-size)" 131072 "rounded-up size"
cfs create f.cfs 1.5G >/dev/null
expect_eq "$(info_field f.cfs virtual-size)" 1610612736 "size 1.5G"
cfs create g.cfs 4096 >/dev/null
expect_eq "$(info_field g.cfs virtual-size)" 4096 "size 4096"
expect_status 1 "$CLOUDFS" create --block-size 3000 h.cfs 1M
expect_contains "$err" "cloudfs: create: " "bad block size message"
[[ ! -e h.cfs ]] || fail "a failed create left h.cfs behind"

# Never overwrite: the existing image is left byte for byte as it was
cp d.cfs d.copy
expect_status 1 "$CLOUDFS" create d.cfs 1G
expect_contains "$err" "cloudfs: create: cannot create 'd.cfs': File exists" \
    "create over an existing file"
expect_same_file d.cfs d.copy "image after a refused create"
echo hello >plain.txt
expect_status 1 "$CLOUDFS" create plain.txt 1M
expect_eq "$(cat plain.txt)" hello "plain file after a refused create"

# After writes and a snapshot: version, version ids, snapshots and space
put one.raw 0 8192
cfs import d.cfs one.raw
v1_id=$(info_field d.cfs version-id)
expect_eq "$(info_field d.cfs version)" 1 "version after one import"
cfs snapshot create d.cfs first >/dev/null
put two.raw 0 4096
cfs import d.cfs two.raw
expect_status 0 "$CLOUDFS" info --json d.cfs
echo "$out" >d.json
expect_eq "$(json d.json "j['version']")" 3 "version after tag and import"
expect_eq "$(json d.json "[(s['name'], s['version'], s['version-id'])
                          for s in j['snapshots']]")" \
    "[[\"first\", 1, \"$v1_id\"]]" "json snapshots"
expect_eq "$(json d.json "j['live-bytes']")" 8192 "live bytes (2 blocks)"
expect_eq "$(json d.json "j['extent-count']")" 2 "extents (2 writes)"
log_end=$(json d.json "j['log-bytes']")
(( log_end > 8192 + 4096 )) || fail "log bytes $log_end too small"
(( log_end <= $(stat -c %s d.cfs) )) || fail "log bytes beyond the file"

# Past versions, by number and by tag
expect_status 0 "$CLOUDFS" info d.cfs@first
expect_contains "$out" "version: 1 (the head is version 3)" "info at a tag"
expect_contains "$out" "version id: $v1_id" "info at a tag"
# Snapshots are part of a version's state: the tag record made version 2
expect_contains "$out" "snapshots: none" "snapshots at version 1"
expect_status 0 "$CLOUDFS" info d.cfs@2
expect_contains "$out" "snapshots:
    NAME " "snapshots at version 2"
grep -qE "^    first +1  $v1_id  [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$" <<<"$out" ||
    fail "info at version 2 does not list snapshot 'first': $out"
expect_eq "$(info_field d.cfs@0 version-id)" "$id" "version 0 id"
expect_eq "$(info_field d.cfs@0 live-bytes)" 0 "version 0 live bytes"
expect_eq "$(info_field d.cfs@1 version-id)" "$v1_id" "version 1 id"
expect_eq "$(info_field d.cfs@1 head-version)" 3 "head version seen at @1"
expect_status 1 "$CLOUDFS" info d.cfs@4
expect_contains "$err" "version 4 does not exist" "info at a future version"
echo "create-info: ok"
