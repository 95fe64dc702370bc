#!/usr/bin/env bash
# Runs one command inside the container whose PID 1 is LEADER_PID (from
# boot.sh), in all its namespaces, as root, with a clean environment (the
# host's, e.g. CI=, NODE_OPTIONS=, must not leak in). stdin, stdout, stderr
# and the exit status are the command's.
#
# usage: bash scripts/systemd/exec.sh LEADER_PID COMMAND [ARG...]
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: exec.sh LEADER_PID COMMAND [ARG...]" >&2; exit 64; }
leader=$1
shift
exec nsenter -t "$leader" -a -- env -i \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 SYSTEMD_LESS= \
  "$@"
