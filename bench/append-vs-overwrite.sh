#!/bin/bash
# What the file system charges a log for growing, against overwriting in
# place: 4 KiB O_DIRECT writes at QD1 on plain files, no QEMU involved.
#
#   bench/append-vs-overwrite.sh [DIR]     (default: build/bench-work)
#
# Prints IOPS of four fio jobs on the same file system:
#   extending   appending past the end of the file (a log's tail)
#   hole-fill   writing into a sparse file's holes (a fresh raw image)
#   fallocated  writing into fallocate()d, unwritten space
#   overwrite   rewriting blocks already written (qcow2/raw, written image)
# docs/performance.rst uses it to explain cloudfs at QD1 on a written image.
set -euo pipefail
dir=${1:-build/bench-work}
mkdir -p "$dir"
size=128M

iops() {    # fio args...: the job's write IOPS
    fio --name=job --rw=write --bs=4k --iodepth=1 --direct=1 \
        --ioengine=psync --size=$size --output-format=json "$@" 2>/dev/null |
        python3 -c 'import json, sys
print(round(json.load(sys.stdin)["jobs"][0]["write"]["iops"]))'
}

f="$dir/append-vs-overwrite.tmp"
trap 'rm -f "$f"' EXIT
rm -f "$f"
echo "extending  $(iops --filename="$f" --file_append=1)"
rm -f "$f"; truncate -s 1G "$f"
echo "hole-fill  $(iops --filename="$f")"
echo "overwrite  $(iops --filename="$f")"
rm -f "$f"; fallocate -l 1G "$f"
echo "fallocated $(iops --filename="$f")"
