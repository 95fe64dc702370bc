#!/usr/bin/env bash
# vigil's benchmark: `make bench` runs this (`make bench QUICK=1` for the quick mode).
#
# It raises the descriptor limit (as LimitNOFILE= does for vigil.service),
# installs the peers it compares with where it can (PM2 from the npm registry
# into bench/.peers, never a dependency of vigil; Debian's supervisor when
# root, without ever starting its system service), then runs bench/bench.mjs,
# which prints the table and writes bench/results/<timestamp>.json.
# A peer that cannot be installed is skipped with the reason printed.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK="${QUICK:-0}"
export QUICK
PEERS=1
if [ "$QUICK" = 1 ] && [ "${BENCH_PEERS:-0}" != 1 ]; then PEERS=0; fi

if [ ! -f dist/daemon/main.js ]; then
  echo "bench: dist/daemon/main.js is missing; build first (make build, or npx tsc -p .)" >&2
  exit 2
fi

# The vigild under test: a copy of dist/ as it is now (with package.json, which
# vigild reads its version from), so a rebuild during the run changes nothing.
snap=bench/.snapshot
rm -rf "$snap"
mkdir -p "$snap"
cp -r dist "$snap/dist"
cp package.json "$snap/package.json"
export BENCH_VIGILD="$PWD/$snap/dist/daemon/main.js"

# 2,000 workers hold ~3 descriptors each in vigild.
hard="$(ulimit -Hn)"
if [ "$hard" = unlimited ] || [ "$hard" -ge 65536 ]; then
  ulimit -n 65536
else
  ulimit -n "$hard"
  if [ "$hard" -lt 8192 ]; then
    echo "# bench: RLIMIT_NOFILE hard limit is only $hard; the 2,000-worker scenario may hit it" >&2
  fi
fi

# wrk is the load of the web scenarios (QUICK too); Debian's package, as for the socket tests.
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "# bench: installing Debian's wrk (apt-get install -y wrk)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null 2>&1 ||
      echo "# bench: wrk cannot be installed; the web scenarios will fail"
  else
    echo "# bench: wrk is not installed (apt-get install wrk); the web scenarios will fail"
  fi
fi

if [ "$PEERS" = 1 ]; then
  # PM2, into a scratch folder that git ignores (bench/.peers/).
  if [ ! -f bench/.peers/node_modules/pm2/bin/pm2 ]; then
    echo "# bench: installing PM2 into bench/.peers (npm install --prefix bench/.peers pm2@latest)"
    mkdir -p bench/.peers
    if ! npm install --prefix bench/.peers --no-audit --no-fund --loglevel=error pm2@latest >bench/.peers/install.log 2>&1; then
      echo "# bench: PM2 cannot be installed (see bench/.peers/install.log); it will be skipped"
    fi
  fi
  # supervisord, Debian's package; started by the bench with its own config, never as a service.
  if ! command -v supervisord >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "# bench: installing Debian's supervisor (apt-get install -y supervisor)"
      # Keep the package's init script from starting a system supervisord.
      made_policy=0
      if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        made_policy=1
      fi
      if ! apt-cache policy supervisor 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        apt-get update -qq >/dev/null 2>&1 || true
      fi
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq supervisor >/dev/null 2>&1 ||
        echo "# bench: supervisor cannot be installed with apt-get; supervisord will be skipped"
      if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
    else
      echo "# bench: supervisord is not installed and this is not root (apt-get install supervisor); it will be skipped"
    fi
  fi
fi

exec node bench/bench.mjs
