#!/usr/bin/env bash
# Proves that every subcommand has a man-style --help (NAME, SYNOPSIS with
# its exact synopsis, DESCRIPTION, EXIT STATUS, EXAMPLES) that `cloudfs help
# SUBCOMMAND` prints too, that the top-level help lists every subcommand,
# and that asking for help about nothing known is a usage error.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$1"

declare -A synopsis=(
    [create]="cloudfs create [--block-size N] [--parent PATH[@VERSION|@TAG]] PATH [SIZE]"
    [info]="cloudfs info [--json] PATH[@VERSION|@TAG]"
    [import]="cloudfs import PATH RAWFILE"
    [export]="cloudfs export PATH[@VERSION|@TAG] RAWFILE"
    [snapshot]="cloudfs snapshot create|list|revert|delete PATH [NAME]"
    [versions]="cloudfs versions PATH"
    [log]="cloudfs log PATH"
    [check]="cloudfs check [--repair] [--json] PATH"
    [export-delta]="cloudfs export-delta PATH FROM [TO] > DELTA"
    [apply-delta]="cloudfs apply-delta PATH < DELTA"
)

for cmd in "${!synopsis[@]}"; do
    expect_status 0 "$CLOUDFS" "$cmd" --help
    help=$out
    for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
        grep -qx "$section" <<<"$help" ||
            fail "$cmd --help has no $section section"
    done
    grep -qxF "  ${synopsis[$cmd]}" <<<"$help" ||
        fail "$cmd --help does not show its synopsis: $help"
    grep -qE "^  cloudfs $cmd - " <<<"$help" ||
        fail "$cmd --help has no NAME line"
    grep -qE "^  0  " <<<"$help" || fail "$cmd --help lists no exit status 0"
    grep -qE "^  2  usage error" <<<"$help" ||
        fail "$cmd --help does not document exit status 2"
    expect_status 0 "$CLOUDFS" help "$cmd"
    expect_eq "$out" "$help" "cloudfs help $cmd vs $cmd --help"
done

# check documents its own exit status for a repair
expect_status 0 "$CLOUDFS" help check
expect_contains "$out" "  3  --repair found problems and repaired all of them" \
    "check's exit status 3"

# The top-level help lists every subcommand; `cloudfs help` is the same
expect_status 0 "$CLOUDFS" --help
top=$out
for cmd in "${!synopsis[@]}"; do
    grep -qE "^  $cmd +[a-z]" <<<"$top" || fail "--help does not list $cmd"
done
expect_contains "$top" "EXIT STATUS" "top-level help"
expect_status 0 "$CLOUDFS" help
expect_eq "$out" "$top" "cloudfs help vs cloudfs --help"
expect_status 0 "$CLOUDFS" --version
[[ $out =~ ^cloudfs\ [0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "--version: $out"

expect_status 2 "$CLOUDFS" help frobnicate
expect_contains "$err" "unknown subcommand 'frobnicate'" "help on nothing"
expect_status 2 "$CLOUDFS" help info create
echo "help: ok"
