#!/usr/bin/env bash
# Builds the man pages from their markdown sources (man/*.md) with go-md2man
# (Debian's go-md2man): vigild(8), vigilctl(1), and vigil.yaml(5), whose body
# is docs/configuration.md itself, so the reference and the man page cannot
# differ. The roff goes to OUT (default dist/man/manN/); it is never committed.
#
#   bash scripts/man.sh [OUT]
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$SRC/dist/man}
command -v go-md2man >/dev/null || { echo "man.sh: go-md2man is missing: apt-get install go-md2man (make deps does it)" >&2; exit 1; }
VERSION=$(node -p 'require(process.argv[1]).version' "$SRC/package.json")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The reference without its own title and the line that points at this page.
sed -e '1{/^# /d}' -e '/`man vigil.yaml` is this page\./s/ *`man vigil.yaml` is this page\.//' \
  "$SRC/docs/configuration.md" > "$tmp/reference.md"

for src in "$SRC"/man/*.md; do
  page=$(basename "$src" .md)          # vigild.8
  section=${page##*.}
  mkdir -p "$OUT/man$section"
  # @REFERENCE@ stands alone on its line; the rest is a plain substitution.
  awk -v ref="$tmp/reference.md" '
    $0 == "@REFERENCE@" { while ((getline line < ref) > 0) print line; next }
    { print }
  ' "$src" | sed -e "s/@VERSION@/$VERSION/g" > "$tmp/$page.md"
  go-md2man -in "$tmp/$page.md" -out "$OUT/man$section/$page"
done
echo "man pages in $OUT: $(cd "$OUT" && ls man*/* | tr '\n' ' ')"
