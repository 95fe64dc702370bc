#!/usr/bin/env bash
# make test: types, lint (eslint.config.js), layers (scripts/check-layers.ts:
# imports only point down, no cycles), then the test tiers in one mocha run
# (unit: pure and fake-clock; integration: real processes; system: real
# systemd). The reporter ends with the line CI reads: "N passed, N failed,
# N skipped"; a failed check ends with "0 passed, 1 failed".
#   scripts/test.sh            every tier
#   scripts/test.sh unit       one tier (unit, integration or system)
set -uo pipefail
cd "$(dirname "$0")/.."

tiers=("$@")
[[ ${#tiers[@]} -eq 0 ]] && tiers=(unit integration system)

echo "== type check"
if ! npx tsc -p . --noEmit; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "== lint"
if ! npx eslint --max-warnings 0 daemon lib test scripts; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "== layers"
if ! node dist/scripts/check-layers.js; then
  echo "0 passed, 1 failed"
  exit 1
fi
echo "== tests: ${tiers[*]}"
specs=()
for tier in "${tiers[@]}"; do
  [[ -d dist/test/$tier ]] || { echo "no such tier: $tier"; echo "0 passed, 1 failed"; exit 1; }
  specs+=("dist/test/$tier/**/*.test.js")
done
# .mocharc.json holds the reporter and timeouts, no spec: the tiers are named here.
exec npx mocha "${specs[@]}"
