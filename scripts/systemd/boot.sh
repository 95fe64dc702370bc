#!/usr/bin/env bash
# Boots a throwaway systemd container made from this host's own /usr
# (docs/testing.md, "test/system"), waits until it is up, prints how to reach it,
# and then stays in the foreground for as long as the container lives:
# the container is powered off (and systemd-nspawn killed by its pid if it
# does not go) when this script ends, however it ends: SIGTERM, SIGINT, a
# failed boot, or the container stopping by itself.
#
# Once the container is up, stdout gets one shell assignment a line:
#
#   NSPAWN_PID=1234        the systemd-nspawn process
#   LEADER_PID=1236        the container's PID 1, for nsenter (exec.sh)
#   MACHINE=vigil-test-99
#   LOG=/tmp/vigil-nspawn.XXXX/console.log   the container's console
#   READY=1
#
# usage: bash scripts/systemd/boot.sh [REPO]   (REPO is bound at /src; default: this repository)
# env:   VIGIL_BOOT_TIMEOUT  seconds to wait for the boot (default 60)
#        VIGIL_CONTAINER_ROOT
#          volatile (default): an empty root in memory with this host's /usr
#            read-only and a writable, throwaway /usr/local (for make install);
#          overlay: also /usr, /etc and /var (apt and dpkg state),
#            this host's, writable through throwaway layers in memory, so apt
#            and dpkg work as on this host (for the .deb's test).
#            The host's own services (postgresql, prometheus, apt's timers)
#            are masked there: they have no part in a test.
#
# Stop it with `kill -TERM <pid of this script>` (or teardown.sh, which
# powers the container off; this script then ends by itself).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "${1:-$HERE/../..}" && pwd)
TIMEOUT=${VIGIL_BOOT_TIMEOUT:-60}
MACHINE="vigil-test-$$"

log() { printf 'systemd harness: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "must run as root (systemd-nspawn)"; exit 2; }
command -v systemd-nspawn >/dev/null || { log "systemd-nspawn is missing: apt-get install systemd-container"; exit 2; }
command -v nsenter >/dev/null || { log "nsenter is missing: apt-get install util-linux"; exit 2; }

WORK=$(mktemp -d /tmp/vigil-nspawn.XXXXXX)
LOG="$WORK/console.log"
NSPAWN_PID=""
LEADER_PID=""
booted=0

cleanup() {
  local status=$?
  trap - EXIT INT TERM HUP
  if [ -n "$NSPAWN_PID" ]; then
    if [ "$booted" -ne 1 ]; then
      log "boot failed; console log $LOG:"
      tail -n 40 "$LOG" >&2 || true
    fi
    bash "$HERE/teardown.sh" "$NSPAWN_PID" "$LEADER_PID" >&2 || true
    # Reap it: this script is its parent.
    wait "$NSPAWN_PID" 2>/dev/null || true
    log "container $MACHINE is gone"
  fi
  # The console log is kept when the boot failed, for a look afterwards.
  if [ "$booted" -eq 1 ] || [ -z "$NSPAWN_PID" ]; then rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
trap 'exit 129' HUP

# setsid: a terminal's Ctrl-C reaches this script (which powers the container
# off cleanly), not systemd-nspawn directly. No stream is shared with the
# caller but stderr of this script.
case ${VIGIL_CONTAINER_ROOT:-volatile} in
  volatile) root=(--volatile=yes --overlay=/usr/local::/usr/local); init_args=() ;;
  overlay)
    # (--volatile=overlay would do it all, but nspawn refuses it for -D /.)
    root=(--volatile=yes)
    for dir in /usr /etc /var; do
      [ -d "$dir" ] && root+=("--overlay=$dir::$dir")
    done
    # systemd in a container reads these from its own command line.
    init_args=()
    for unit in postgresql.service prometheus.service apt-daily.timer apt-daily-upgrade.timer \
      man-db.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer; do
      init_args+=("systemd.mask=$unit")
    done ;;
  *) log "VIGIL_CONTAINER_ROOT must be volatile or overlay"; exit 2 ;;
esac
setsid systemd-nspawn -D / "${root[@]}" \
  --bind="$REPO":/src --register=no --keep-unit -b --console=pipe \
  --machine="$MACHINE" "${init_args[@]}" </dev/null >"$LOG" 2>&1 &
NSPAWN_PID=$!
log "systemd-nspawn pid $NSPAWN_PID, machine $MACHINE, console $LOG"

deadline=$((SECONDS + TIMEOUT))
# PID 1 of the container is the nspawn process's child.
while [ -z "$LEADER_PID" ]; do
  kill -0 "$NSPAWN_PID" 2>/dev/null || { log "systemd-nspawn exited during boot"; exit 1; }
  [ "$SECONDS" -lt "$deadline" ] || { log "no container PID 1 after ${TIMEOUT}s"; exit 1; }
  LEADER_PID=$(pgrep -P "$NSPAWN_PID" | head -n 1 || true)
  [ -n "$LEADER_PID" ] || sleep 0.1
done

in_container() { bash "$HERE/exec.sh" "$LEADER_PID" "$@"; }

state=""
while :; do
  kill -0 "$NSPAWN_PID" 2>/dev/null || { log "systemd-nspawn exited during boot"; exit 1; }
  state=$(timeout 10 bash "$HERE/exec.sh" "$LEADER_PID" systemctl is-system-running 2>/dev/null || true)
  case "$state" in
    running|degraded) break ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] || { log "system state '$state' after ${TIMEOUT}s"; exit 1; }
  sleep 0.2
done
log "container PID 1 is $LEADER_PID; system $state after ${SECONDS}s"

# The volatile /etc has no /etc/dbus-1/system.d when dbus starts, so a policy
# installed later would be ignored: create it and have dbus look again.
in_container mkdir -p /etc/dbus-1/system.d
if in_container systemctl -q is-active dbus.service; then
  in_container systemctl reload dbus.service
fi

# man-db's configuration is a conffile in /etc, which the volatile /etc lacks:
# without it `man` fails, and so does systemd-analyze verify's check of the
# unit's Documentation=man:... entries. Give the container the host's.
if [ -f /etc/manpath.config ]; then
  in_container sh -c 'cat > /etc/manpath.config' </etc/manpath.config
fi

booted=1
printf 'NSPAWN_PID=%s\nLEADER_PID=%s\nMACHINE=%s\nLOG=%s\nREADY=1\n' "$NSPAWN_PID" "$LEADER_PID" "$MACHINE" "$LOG"

# Stay with the container for as long as it and the caller live: should the
# caller die without stopping it (even by SIGKILL), this script is reparented
# and powers the container off. `wait` returns early on a trapped signal,
# whose trap then exits through cleanup.
parent=$PPID
set +e
while :; do
  if ! kill -0 "$NSPAWN_PID" 2>/dev/null; then
    wait "$NSPAWN_PID"
    status=$?
    NSPAWN_PID=""
    log "systemd-nspawn exited with status $status"
    exit 0
  fi
  ppid_now=$(awk '{print $4}' "/proc/$$/stat" 2>/dev/null)
  if [ "$ppid_now" != "$parent" ]; then
    log "the caller (pid $parent) is gone; powering the container off"
    exit 1
  fi
  sleep 1 &
  wait $!
done
