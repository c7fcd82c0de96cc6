#!/usr/bin/env bash
# Proves that `create --parent` makes a branch that records its parent (id,
# version, version id, and a hint relative to the branch's directory), that
# reads of a branch show the parent's data at the branch's version where
# the branch has not written (also after the parent moves on, through
# chains of branches, and from another working directory), that importing
# into a branch hides the parent where the raw file has holes, and that a
# missing or wrong parent is a clear error.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

MiB=$((1024 * 1024))
SIZE=$((4 * MiB))

cfs create base.cfs 4M >/dev/null
put p.raw 0 $SIZE
cfs import base.cfs p.raw
cfs snapshot create base.cfs t0 >/dev/null
t0=$(info_field base.cfs@t0 version)
base_version=$(info_field base.cfs version)
base_version_id=$(info_field base.cfs version-id)
base_id=$(info_field base.cfs disk-id)

# A branch of the head, its size taken from the parent
expect_status 0 "$CLOUDFS" create --parent base.cfs br.cfs
br_id=$out
[[ $br_id =~ ^[0-9a-f]{40}$ && $br_id != "$base_id" ]] ||
    fail "branch id '$br_id'"
"$CLOUDFS" info --json br.cfs >br.json
expect_eq "$(json br.json "j['virtual-size']")" $SIZE "branch size"
expect_eq "$(json br.json "j['version']")" 0 "branch version"
expect_eq "$(json br.json "j['parent']['disk-id']")" "$base_id" "parent id"
expect_eq "$(json br.json "j['parent']['version']")" "$base_version" "parent version"
expect_eq "$(json br.json "j['parent']['version-id']")" "$base_version_id" \
    "parent version id"
expect_eq "$(json br.json "j['parent']['hint']")" base.cfs "parent hint"
expect_status 0 "$CLOUDFS" info br.cfs
expect_contains "$out" "parent:
    disk id: $base_id
    version: $base_version
    version id: $base_version_id
    hint: base.cfs" "info text of a branch"

# Unwritten, the branch reads as its parent
cfs export br.cfs out.raw
expect_same_file out.raw p.raw "unwritten branch"

# Write part of it: [1M, 1M + 256K) new data, [0, 1M) a hole in the raw
# file, so it reads as zeros; the rest shows the parent through
put w.raw $MiB $((MiB / 4))
cfs import br.cfs w.raw
cp p.raw expected.raw
dd if=w.raw of=expected.raw conv=notrunc status=none
cfs export br.cfs out.raw
expect_same_file out.raw expected.raw "partly written branch"
expect_eq "$(info_field br.cfs live-bytes)" $((MiB / 4)) "branch live bytes"

# The parent moves on; the branch still reads the version it came from
put q.raw 0 $SIZE
cfs import base.cfs q.raw
cfs export br.cfs out.raw
expect_same_file out.raw expected.raw "branch after its parent moved on"
cfs export br.cfs@0 out.raw
expect_same_file out.raw p.raw "version 0 of the branch"

# A branch of a tag, with its own size; a branch of a branch
expect_status 0 "$CLOUDFS" create --parent base.cfs@t0 br2.cfs 8M
expect_eq "$(info_field br2.cfs parent)" \
    "{\"disk-id\": \"$base_id\", \"version\": $t0, \"version-id\": \"$(info_field base.cfs@t0 version-id)\", \"hint\": \"base.cfs\"}" \
    "parent of a branch of a tag"
cfs export br2.cfs out.raw
padded p.raw $((8 * MiB)) p8.raw
expect_same_file out.raw p8.raw "branch of a tag, larger than its parent"
cfs create --parent br.cfs br3.cfs >/dev/null
cfs export br3.cfs out.raw
expect_same_file out.raw expected.raw "branch of a branch"

# Hints are relative to the branch's directory and work from anywhere
mkdir -p sub/deeper
cfs create --parent base.cfs@t0 sub/deeper/br4.cfs >/dev/null
expect_eq "$(info_field sub/deeper/br4.cfs parent | python3 -c 'import json,sys; print(json.load(sys.stdin)["hint"])')" \
    ../../base.cfs "hint of a branch in a subdirectory"
(cd sub && cfs export deeper/br4.cfs ../out.raw)
expect_same_file out.raw p.raw "branch read from another directory"
cfs create --parent "$TMP/br.cfs" sub/br5.cfs >/dev/null
expect_eq "$(info_field sub/br5.cfs parent | python3 -c 'import json,sys; print(json.load(sys.stdin)["hint"])')" \
    "$TMP/br.cfs" "absolute hint"
cfs export sub/br5.cfs out.raw
expect_same_file out.raw expected.raw "branch with an absolute hint"

# A missing parent, and another disk where the parent should be
mv base.cfs base.moved
expect_status 1 "$CLOUDFS" export br.cfs out.raw
expect_contains "$err" "cloudfs: export: cannot open the parent of 'br.cfs' (disk $base_id, version $base_version): cannot open './base.cfs': No such file or directory" \
    "missing parent"
expect_status 1 "$CLOUDFS" export br3.cfs out.raw
expect_contains "$err" "cannot open the parent of './br.cfs'" "missing grandparent"
# info does not need the parent
expect_status 0 "$CLOUDFS" info br.cfs
cfs create base.cfs 4M >/dev/null
expect_status 1 "$CLOUDFS" export br.cfs out.raw
expect_contains "$err" "'./base.cfs' is not the parent of 'br.cfs'" "wrong parent"
# A parent whose history differs at the branch's version: a replica of
# base.moved up to the branch's parent version, then written differently
rm base.cfs
cfs export-delta base.moved 0 $((base_version - 1)) >part.delta
cfs apply-delta base.cfs <part.delta >/dev/null
put other.raw 0 4096
cfs import base.cfs other.raw
expect_eq "$(info_field base.cfs version)" "$base_version" "version of the impostor"
expect_status 1 "$CLOUDFS" export br.cfs out.raw
expect_contains "$err" "version $base_version of parent './base.cfs' has id" \
    "parent with another history"
mv -f base.moved base.cfs
cfs export br.cfs out.raw
expect_same_file out.raw expected.raw "branch with its parent back"

# Parents that do not exist, or at versions that do not exist
expect_status 1 "$CLOUDFS" create --parent nosuch.cfs x.cfs
expect_contains "$err" "cannot use 'nosuch.cfs' as parent" "missing parent"
expect_status 1 "$CLOUDFS" create --parent base.cfs@99 x.cfs
expect_contains "$err" "version 99 does not exist" "parent at a missing version"
[[ ! -e x.cfs ]] || fail "a failed branch create left x.cfs"
echo "branch: ok"
