#!/usr/bin/env bash
# make test: types, then every mocha suite. The reporter ends with the line
# CI reads: "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

echo "== type check"
if ! npx tsc -p . --noEmit; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "== tests"
npx mocha "$@"
