#!/usr/bin/env bash
# Proves export-delta / apply-delta: a delta from 0 creates a replica with
# the same disk id, version id, snapshots and content; an incremental delta
# (from a number or a tag, up to a chosen version) brings it up to date;
# applying a delta twice changes nothing; and every delta that does not fit
# is refused with a clear error, exit 1 and the target unchanged: one from
# another disk, one starting after the target's head, one whose history
# diverged from the target's, an incremental one for a missing target, and
# input that is not a delta.  A truncated delta applies a valid prefix or
# nothing, and never leaves a broken image.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

MiB=$((1024 * 1024))

# same_disk A B: same disk id, version, version id and exported content
same_disk() {
    expect_eq "$(info_field "$2" disk-id)" "$(info_field "$1" disk-id)" "disk id of $2"
    expect_eq "$(info_field "$2" version)" "$(info_field "$1" version)" "version of $2"
    expect_eq "$(info_field "$2" version-id)" "$(info_field "$1" version-id)" \
        "version id of $2"
    cfs export "$1" same-a.raw
    cfs export "$2" same-b.raw
    expect_same_file same-a.raw same-b.raw "content of $2 vs $1"
}

cfs create a.cfs 4M >/dev/null
put a.raw 0 $((3 * MiB / 2))
put a.raw $((2 * MiB)) $MiB
cfs import a.cfs a.raw                       # versions 1 to 3
cfs snapshot create a.cfs s1 >/dev/null      # 4: tag s1 -> 3

# A full delta creates the replica
cfs export-delta a.cfs 0 >full.delta
expect_status 0 "$CLOUDFS" apply-delta r.cfs <full.delta
expect_eq "$out" "applied 4 records (0 already present); now at version 4, id $(info_field a.cfs version-id)" \
    "apply of a full delta"
same_disk a.cfs r.cfs
expect_eq "$("$CLOUDFS" snapshot list r.cfs | awk 'NR > 1 { print $1, $2, $3 }')" \
    "$("$CLOUDFS" snapshot list a.cfs | awk 'NR > 1 { print $1, $2, $3 }')" \
    "replica snapshots"
expect_status 0 "$CLOUDFS" check r.cfs

# The same delta again: everything skipped, nothing written
cp r.cfs r.before
expect_status 0 "$CLOUDFS" apply-delta r.cfs <full.delta
expect_eq "$out" "applied 0 records (4 already present); now at version 4, id $(info_field a.cfs version-id)" \
    "second apply of the same delta"
expect_same_file r.cfs r.before "replica after applying a delta twice"

# Incremental deltas: from a number, from a tag, up to a chosen version
put b.raw 0 $((MiB / 4))
cfs import a.cfs b.raw                       # 5
cfs import a.cfs a.raw                       # 6 to 8
cfs export-delta a.cfs 4 5 >inc.delta
expect_status 0 "$CLOUDFS" apply-delta r.cfs <inc.delta
expect_eq "$out" "applied 1 records (0 already present); now at version 5, id $(info_field a.cfs@5 version-id)" \
    "apply of the delta 4..5"
cfs export r.cfs r5.raw
cfs export a.cfs@5 a5.raw
expect_same_file r5.raw a5.raw "replica at version 5"
# From the tag s1 (version 3): 4 and 5 are already there
cfs export-delta a.cfs s1 >inc2.delta
expect_status 0 "$CLOUDFS" apply-delta r.cfs <inc2.delta
expect_eq "$out" "applied 3 records (2 already present); now at version 8, id $(info_field a.cfs version-id)" \
    "apply of the delta from s1"
same_disk a.cfs r.cfs

# A delta of another disk: refused, target unchanged
cfs create b.cfs 4M >/dev/null
cfs import b.cfs b.raw
cfs export-delta b.cfs 0 >other.delta
cp r.cfs r.before
expect_status 1 "$CLOUDFS" apply-delta r.cfs <other.delta
expect_contains "$err" "cloudfs: apply-delta: r.cfs: delta is for disk $(info_field b.cfs disk-id), not for this disk $(info_field r.cfs disk-id)" \
    "delta of another disk"
expect_same_file r.cfs r.before "target after a delta of another disk"

# A delta that starts after the target's head (the target lacks version 9)
cfs import a.cfs b.raw                       # 9
cfs import a.cfs b.raw                       # 10
cfs export-delta a.cfs 9 >gap.delta
expect_status 1 "$CLOUDFS" apply-delta r.cfs <gap.delta
expect_contains "$err" "delta starts at version 9 but the disk is at version 8" \
    "delta with a gap"
expect_same_file r.cfs r.before "target after a delta with a gap"

# Divergence: two copies of version 8 written differently
cp r.cfs x.cfs
put c.raw 0 8192
cfs import x.cfs c.raw                       # x: 9 differs from a's 9
cp x.cfs x.before
cfs export-delta a.cfs 8 >div.delta
expect_status 1 "$CLOUDFS" apply-delta x.cfs <div.delta
expect_contains "$err" "x.cfs: histories diverge at version 9" "divergence"
expect_contains "$err" "nothing from version 9 on was applied" "divergence"
expect_same_file x.cfs x.before "target after a divergent delta"

# A missing target: only a delta from the base creates one
expect_status 1 "$CLOUDFS" apply-delta new.cfs <gap.delta
expect_contains "$err" "'new.cfs' does not exist, and the delta starts at version 9, not at the base" \
    "incremental delta for a missing target"
[[ ! -e new.cfs ]] || fail "an incremental delta created new.cfs"
# Not a delta at all
head -c 5000 /dev/urandom >junk
expect_status 1 "$CLOUDFS" apply-delta new.cfs <junk
expect_contains "$err" "not a cloudfs delta" "junk delta"
[[ ! -e new.cfs ]] || fail "a junk delta created new.cfs"
expect_status 1 "$CLOUDFS" apply-delta r.cfs </dev/null
expect_same_file r.cfs r.before "target after junk deltas"

# Truncated deltas: a valid prefix or nothing, and a sound image if any
cfs export-delta a.cfs 0 >full.delta
full_size=$(stat -c %s full.delta)
for cut in 60 200 1500 $((full_size / 2)) $((full_size - 1)); do
    rm -f t.cfs
    run "$CLOUDFS" apply-delta t.cfs < <(head -c $cut full.delta)
    echo "delta cut at $cut of $full_size: exit $status, $err"
    if [[ ! -e t.cfs ]]; then
        [[ $status -eq 1 ]] || fail "cut at $cut: no image but exit $status"
        continue
    fi
    version=$(info_field t.cfs version)
    expect_eq "$(info_field t.cfs version-id)" "$(info_field a.cfs@$version version-id)" \
        "cut at $cut: version id of version $version"
    expect_status 0 "$CLOUDFS" check t.cfs
    cfs export t.cfs t.raw
    cfs export a.cfs@$version a-v.raw
    expect_same_file t.raw a-v.raw "cut at $cut: content of version $version"
    (( version < 10 )) || fail "cut at $cut: a truncated delta reached the head"
    # The rest comes with the next full delta
    cfs apply-delta t.cfs <full.delta >/dev/null
    same_disk a.cfs t.cfs
done
# Applying into an existing replica: a cut delta applies its whole records
cfs export-delta a.cfs 8 >tail.delta
head -c $(($(stat -c %s tail.delta) - 100)) tail.delta >cut.delta
cp r.cfs r2.cfs
expect_status 1 "$CLOUDFS" apply-delta r2.cfs <cut.delta
expect_contains "$err" "truncated" "cut incremental delta"
expect_eq "$(info_field r2.cfs version)" 9 "version after a cut incremental delta"
expect_status 0 "$CLOUDFS" check r2.cfs

# export-delta arguments
expect_status 1 "$CLOUDFS" export-delta a.cfs nosuchtag
expect_contains "$err" "no snapshot named 'nosuchtag'" "export-delta from a missing tag"
expect_status 1 "$CLOUDFS" export-delta a.cfs 0 99
expect_contains "$err" "version 99 does not exist" "export-delta to a missing version"
# Deltas are binary: never written to (or read from) a terminal
if command -v script >/dev/null; then
    run script -qec "'$CLOUDFS' export-delta a.cfs 0; echo status=\$?" /dev/null
    expect_contains "$out" "refusing to write a delta to a terminal" \
        "export-delta to a terminal"
    expect_contains "$out" "status=2" "export-delta to a terminal"
    run script -qec "'$CLOUDFS' apply-delta r.cfs; echo status=\$?" /dev/null
    expect_contains "$out" "refusing to read a delta from a terminal" \
        "apply-delta from a terminal"
    expect_contains "$out" "status=2" "apply-delta from a terminal"
fi
echo "delta: ok"
