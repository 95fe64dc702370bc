#!/usr/bin/env bash
# Boot a throwaway systemd container (boot.sh), install vigil into it from the
# built tree (bash /src/scripts/install.sh install with PREFIX=/usr/local, on
# the container's writable /usr/local overlay), run a command in it, and
# always power it off afterwards.
#
#   bash scripts/systemd/run.sh                      # an interactive shell (on a terminal)
#   bash scripts/systemd/run.sh systemctl status vigil
#   bash scripts/systemd/run.sh sh -c 'systemctl start vigil && journalctl -u vigil'
#
# Build on the host first (make build): the container sees this work tree at
# /src and must not write build output into it.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
[ -f "$REPO/dist/daemon/main.js" ] || { echo "build first: make build" >&2; exit 1; }

INFO=$(mktemp /tmp/vigil-run.XXXXXX)
BOOT_PID=""
finish() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$BOOT_PID" ]; then
    kill -TERM "$BOOT_PID" 2>/dev/null || true
    wait "$BOOT_PID" 2>/dev/null || true
  fi
  rm -f "$INFO"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash "$HERE/boot.sh" "$REPO" >"$INFO" &
BOOT_PID=$!
until grep -q '^READY=1$' "$INFO"; do
  kill -0 "$BOOT_PID" 2>/dev/null || { BOOT_PID=""; echo "the container did not boot" >&2; exit 1; }
  sleep 0.2
done
# shellcheck disable=SC1090
. "$INFO"

in_container() { bash "$HERE/exec.sh" "$LEADER_PID" "$@"; }
in_container env PREFIX=/usr/local bash /src/scripts/install.sh install

if [ $# -gt 0 ]; then
  in_container "$@"
elif [ -t 0 ]; then
  echo "container $MACHINE (PID 1 = $LEADER_PID); leave the shell to power it off" >&2
  in_container bash -l
else
  in_container systemctl --no-pager status vigil || true
fi
