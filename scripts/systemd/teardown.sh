#!/usr/bin/env bash
# Stops a container started by boot.sh: `systemctl poweroff` inside, a
# bounded wait, then SIGTERM and SIGKILL to the systemd-nspawn process by its
# pid (never by name). Safe to call twice; checks that the pid still is a
# systemd-nspawn before signalling it.
#
# usage: bash scripts/systemd/teardown.sh NSPAWN_PID [LEADER_PID]
set -uo pipefail
nspawn=${1:?usage: teardown.sh NSPAWN_PID [LEADER_PID]}
leader=${2:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

is_nspawn() {
  [ "$(cat "/proc/$nspawn/comm" 2>/dev/null)" = "systemd-nspawn" ] &&
    ! grep -q '^State:[[:space:]]*Z' "/proc/$nspawn/status" 2>/dev/null
}

wait_gone() { # seconds
  local until=$((SECONDS + $1))
  while is_nspawn; do
    [ "$SECONDS" -lt "$until" ] || return 1
    sleep 0.1
  done
  return 0
}

is_nspawn || exit 0
if [ -n "$leader" ] && [ -d "/proc/$leader" ]; then
  timeout 10 bash "$HERE/exec.sh" "$leader" systemctl poweroff --no-block >/dev/null 2>&1 || true
fi
wait_gone 20 && exit 0
echo "systemd harness: container did not power off; SIGTERM to systemd-nspawn $nspawn" >&2
kill -TERM "$nspawn" 2>/dev/null || true
wait_gone 10 && exit 0
echo "systemd harness: SIGKILL to systemd-nspawn $nspawn" >&2
kill -KILL "$nspawn" 2>/dev/null || true
wait_gone 5
