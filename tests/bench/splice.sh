#!/usr/bin/env bash
# Puts one benchmark's report into docs/benchmarks.md, between its markers, leaving the other
# benchmarks' sections as they are.
#
# Usage: tests/bench/splice.sh NAME REPORT_FILE OUT_FILE
#   NAME         section name (markers `<!-- NAME:begin -->` / `<!-- NAME:end -->`)
#   REPORT_FILE  the new section's Markdown
#   OUT_FILE     the combined file (created with a title when missing; the section is appended
#                when its markers are not there yet)
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 NAME REPORT_FILE OUT_FILE" >&2; exit 64; }
name=$1 report=$2 out=$3
[[ -r $report ]] || { echo "splice.sh: cannot read $report" >&2; exit 66; }
begin="<!-- $name:begin -->"
end="<!-- $name:end -->"
if [[ ! -e $out ]]; then
    mkdir -p "$(dirname "$out")"
    printf '# Benchmarks\n\nEach section is written by its script under `tests/bench/`; re-run the script rather than\nediting a section by hand. None of them is part of CI.\n' >"$out"
fi
tmp=$(mktemp "$out.XXXXXX")
if grep -qxF "$begin" "$out" && grep -qxF "$end" "$out"; then
    awk -v begin="$begin" -v end="$end" -v report="$report" '
        $0 == begin { print; while ((getline line < report) > 0) print line; skipping = 1; next }
        $0 == end { skipping = 0 }
        !skipping { print }
    ' "$out" >"$tmp"
else
    { cat "$out"; printf '\n%s\n' "$begin"; cat "$report"; printf '%s\n' "$end"; } >"$tmp"
fi
mv "$tmp" "$out"
