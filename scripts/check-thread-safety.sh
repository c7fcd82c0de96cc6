#!/bin/bash
# Clang's thread-safety analysis over the cloudfs driver's files in QEMU
# (graph lock, coroutine annotations), as a QEMU maintainer's clang build
# would do it.  QEMU turns -Wthread-safety on only for clangs whose
# analysis understands the cleanup attribute (newer than Debian 12's), so
# this compiles our files alone with clang-16 -Wthread-safety -Werror,
# using a QEMU build configured with clang-16 for the exact flags.
#
# Usage: scripts/check-thread-safety.sh    (after make qemu; as root it
# installs clang-16 and builds build/tsa the first time)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tsa=$top/build/tsa
if ! command -v clang-16 > /dev/null; then
    "$top/scripts/install-deps.sh"
fi
if [ ! -f "$tsa/qemu-build/compile_commands.json" ] ||
   [ -n "$(find "$top/block" -name 'cloudfs*' -newer "$tsa/qemu-build/compile_commands.json")" ]; then
    CLOUDFS_BUILD_DIR=$tsa QEMU_CACHE_DIR=$top/build/qemu-cache \
        QEMU_TOOLS_ONLY=1 QEMU_SMOKE=0 QEMU_CONFIGURE_EXTRA="--cc=clang-16" \
        "$top/scripts/build-qemu.sh" > "$tsa.log" 2>&1 ||
        { tail -30 "$tsa.log"; exit 1; }
fi
python3 - "$tsa/qemu-build/compile_commands.json" <<'PY'
import json, os, subprocess, sys
checked, bad = 0, 0
for c in json.load(open(sys.argv[1])):
    path = c["file"]
    if (os.path.basename(os.path.dirname(path)) != "block" or
            not os.path.basename(path).startswith("cloudfs")):
        continue
    cmd = c["command"] + " -Wthread-safety -Werror -fsyntax-only"
    r = subprocess.run(cmd, shell=True, cwd=c["directory"],
                       capture_output=True, text=True)
    checked += 1
    if r.returncode or r.stderr.strip():
        bad += 1
        print(r.stderr)
print("thread-safety: %d files checked, %d with findings" % (checked, bad))
sys.exit(1 if bad or not checked else 0)
PY
