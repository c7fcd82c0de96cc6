# Helpers shared by the CLI tests; sourced by each test, not a test itself.
# Usage: . lib.sh PATH-TO-cloudfs
# It makes a temporary directory, cds into it and removes it at exit.

CLOUDFS=$(realpath "${1:?usage: $0 PATH-TO-cloudfs}")
[[ -x $CLOUDFS ]] || { echo "not an executable: $CLOUDFS" >&2; exit 2; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cloudfs-cli.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# cfs ARGS...: run cloudfs, failing the test if it fails
cfs() {
    "$CLOUDFS" "$@" || fail "cloudfs $* exited $?"
}

# run CMD...: run a command that may fail; sets status, out and err
run() {
    status=0
    "$@" >run.out 2>run.err || status=$?
    out=$(<run.out)
    err=$(<run.err)
}

# expect_status N CMD...: run CMD (see run) and require exit status N
expect_status() {
    local want=$1
    shift
    run "$@"
    [[ $status -eq $want ]] ||
        fail "'$*' exited $status, expected $want; stdout: $out; stderr: $err"
}

expect_eq() {
    [[ $1 == "$2" ]] || fail "$3: got '$1', expected '$2'"
}

# expect_contains TEXT NEEDLE WHAT
expect_contains() {
    [[ $1 == *"$2"* ]] || fail "$3: '$2' not found in: $1"
}

expect_not_contains() {
    [[ $1 != *"$2"* ]] || fail "$3: '$2' unexpectedly found in: $1"
}

expect_same_file() {
    cmp "$1" "$2" >/dev/null || fail "$3: $1 and $2 differ"
}

# json FILE EXPR: evaluate a Python expression on the JSON document in FILE
# (bound to j), printing the result
json() {
    python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
v = eval(sys.argv[2])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)' "$1" "$2"
}

# info_field PATH[@VERSION] FIELD: one member of `cloudfs info --json`
info_field() {
    "$CLOUDFS" info --json "$1" >info.json || fail "info --json $1 failed"
    json info.json "j['$2']"
}

# put FILE OFFSET LENGTH [SOURCE]: write LENGTH bytes of SOURCE (default
# random) into FILE at byte OFFSET, keeping the rest of FILE
put() {
    head -c "$3" "${4:-/dev/urandom}" |
        dd of="$1" bs=64K seek="$2" oflag=seek_bytes conv=notrunc \
           iflag=fullblock status=none
}

# padded RAW SIZE OUT: RAW extended with zeros to SIZE bytes
padded() {
    cp "$1" "$3"
    truncate -s "$2" "$3"
}

# record_field IMAGE VERSION FIELD: offset, length or header length of the
# chain record that made VERSION, from `cloudfs log`
record_field() {
    "$CLOUDFS" log "$1" | awk -v v="$2" -v f="$3" '
        /^record at / { sub(",", "", $3); offset = $3; len = $4; type = $6 }
        /^    version / { sub(",", "", $2); version = $2 }
        /^    header / && type != "checkpoint" && version == v {
            print (f == "offset" ? offset : f == "length" ? len : $2); exit
        }'
}

# flip IMAGE VERSION PAYLOAD_OFFSET: flip a bit of the payload of the
# record that made VERSION, PAYLOAD_OFFSET bytes into its payload
flip() {
    local offset header at byte
    offset=$(record_field "$1" "$2" offset)
    header=$(record_field "$1" "$2" header)
    at=$((offset + (header + 4095) / 4096 * 4096 + $3))
    byte=$(od -An -tu1 -j $at -N1 "$1" | tr -d ' ')
    # shellcheck disable=SC2059
    printf "\\$(printf %o $((byte ^ 0x10)))" |
        dd of="$1" bs=1 seek=$at conv=notrunc status=none
}

# check_flipped_block IMAGE: flip a bit of version 1's data at 768 KiB,
# where the head still maps it (version 1 holds one data extent from guest
# offset 0), then require that check reports it without cutting anything,
# that export fails rather than writing wrong data, and that version 0
# still exports
check_flipped_block() {
    local image=$1 size version
    flip "$image" 1 $((3 * 1024 * 1024 / 4))
    size=$(stat -c %s "$image")
    version=$(info_field "$image" version)
    expect_status 1 "$CLOUDFS" check "$image"
    grep -qE "^corruptions: [1-9]" <<<"$out" ||
        fail "check of $image does not count the corruption: $out"
    grep -qE "^record at offset [0-9]+ \(version 1\): .*corrupt" <<<"$out" ||
        fail "check of $image does not name the corrupt record: $out"
    expect_contains "$err" "corruption" "check of $image: stderr"
    expect_status 1 "$CLOUDFS" export "$image" out.raw
    expect_contains "$err" "is corrupt (checksum mismatch)" "export of $image"
    [[ ! -e out.raw ]] || fail "a failed export of $image left out.raw"
    expect_status 1 "$CLOUDFS" export "$image@1" out.raw
    # --repair cannot fix a data block and must not cut history to hide it
    expect_status 1 "$CLOUDFS" check --repair "$image"
    expect_eq "$(stat -c %s "$image")" "$size" "$image size after --repair"
    expect_eq "$(info_field "$image" version)" "$version" \
        "$image version after --repair"
    # Version 0 does not read the bad block
    cfs export "$image@0" out.raw
}
