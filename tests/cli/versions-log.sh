#!/usr/bin/env bash
# Proves that `versions` lists every version once, in order, with the
# version ids info reports, the record type that made it and the snapshots
# naming it, and that `log` dumps every record back to back from the log
# start, chained by their ids, with their bodies decoded (data and zero
# extents, tag, revert, untag, checkpoint).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

MiB=$((1024 * 1024))
cfs create d.cfs 4M >/dev/null
disk_id=$(info_field d.cfs disk-id)
# a.raw: 1 MiB of data, then 8 KiB of zeros and 4 KiB of data
put a.raw 0 $MiB
put a.raw $MiB 8192 /dev/zero
put a.raw $((MiB + 8192)) 4096
cfs import d.cfs a.raw                       # versions 1 and 2
cfs snapshot create d.cfs t >/dev/null       # 3: tag t -> 2
put b.raw 0 4096
cfs import d.cfs b.raw                       # 4
cfs snapshot revert d.cfs t >/dev/null       # 5: revert to 2

ids=("$disk_id")
for v in 1 2 3 4 5; do
    ids[v]=$(info_field d.cfs@$v version-id)
done

expect_status 0 "$CLOUDFS" versions d.cfs
expect_eq "$(head -1 <<<"$out" | tr -s ' ')" \
    " VERSION VERSION ID TYPE TIME BYTES" "versions header"
expect_eq "$(wc -l <<<"$out")" 7 "versions lines"
expect_eq "$(awk 'NR > 1 { printf "%s:%s:%s ", $1, $2, $3 }' <<<"$out")" \
    "0:${ids[0]}:base 1:${ids[1]}:write 2:${ids[2]}:write 3:${ids[3]}:tag 4:${ids[4]}:write 5:${ids[5]}:revert " \
    "versions: numbers, ids and types"
expect_eq "$(grep -c "tagged" <<<"$out")" 1 "tagged versions"
grep -qE "^ +2  ${ids[2]}  write .*  tagged 't'$" <<<"$out" ||
    fail "version 2 is not marked as tagged 't': $out"
today=$(date -u +%Y-%m-%d)
expect_eq "$(awk -v d="$today" 'NR > 2 && index($4, d "T") == 1' <<<"$out" | wc -l)" \
    5 "versions written today"
# Record bytes: whole blocks; the two writes hold their data
awk 'NR > 2 && ($5 % 4096 || $5 == 0) { exit 1 }' <<<"$out" ||
    fail "record sizes are not whole blocks: $out"
(($(awk 'NR == 3 { print $5 }' <<<"$out") > MiB)) ||
    fail "version 1 record smaller than its 1 MiB of data"

cfs snapshot delete d.cfs t >/dev/null       # 6: untag t
expect_status 0 "$CLOUDFS" versions d.cfs
expect_eq "$(awk 'NR == 8 { print $1, $3 }' <<<"$out")" "6 untag" "untag version"
expect_not_contains "$out" "tagged" "versions after the tag is deleted"
ids[6]=$(info_field d.cfs version-id)

expect_status 0 "$CLOUDFS" log d.cfs
log=$out
# Records lie back to back from the log start (12288 with 4K blocks)
awk '/^record at / {
        sub(",", "", $3); offset = $3; len = $4
        if (offset != expect) { print "record at " offset ", expected " expect; exit 1 }
        expect = offset + len
     }
     /^[0-9]+ records, log ends at / { if ($6 != expect) { print "log end " $6 ", expected " expect; exit 1 } }
    ' expect=12288 <<<"$log" || fail "records are not contiguous: $log"
log_end=$(awk '/^[0-9]+ records, log ends at / { print $6 }' <<<"$log")
expect_eq "$log_end" $((12288 + $(info_field d.cfs log-bytes))) \
    "log end vs info log-bytes"
expect_eq "$(grep -c '^record at ' <<<"$log")" \
    "$(awk '/^[0-9]+ records, log ends at / { print $1 }' <<<"$log")" \
    "record count"
# The chain records, in order, each naming the previous version's id
expect_eq "$(awk '/^record at / { type = $6 }
                  /^    version / && type != "checkpoint" { sub(",", "", $2); v = $2; printf "%s:%s ", v, type }' <<<"$log")" \
    "1:write 2:write 3:tag 4:write 5:revert 6:untag " "chain records"
for v in 1 2 3 4 5 6; do
    grep -qxF "    id   ${ids[v]}" <<<"$log" || fail "log lacks the id of version $v"
    awk -v id="${ids[v]}" -v prev="${ids[v - 1]}" '
        $1 == "id" && $2 == id { getline; if ($1 == "prev" && $2 == prev) found = 1 }
        END { exit !found }' <<<"$log" || fail "version $v does not chain to $((v - 1))"
done
# Bodies
expect_contains "$log" "    header " "header sizes"
expect_contains "$log" "    extent guest 0+1048576 data" "version 1 extent"
expect_contains "$log" "    extent guest 1048576+8192 zero" "zero extent"
expect_contains "$log" "    extent guest 1056768+4096 data" "data after zeros"
expect_contains "$log" "    tag 't' -> version 2 id ${ids[2]}" "tag body"
expect_contains "$log" "    revert to version 2 id ${ids[2]}" "revert body"
expect_contains "$log" "    untag 't'" "untag body"
grep -qE "^    checkpoint tags [01] roots 1 state [0-9]+ bytes" <<<"$log" ||
    fail "no checkpoint decoded: $log"
echo "versions-log: ok"
