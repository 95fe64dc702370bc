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

# The container's PID 1: the child of systemd-nspawn that lives in a PID
# namespace of its own and is not a zombie. nspawn first forks a helper in
# the host's PID namespace, which exits once PID 1 is cloned; a leader taken
# from a bare `pgrep -P` could be that helper, and every nsenter into it
# would then fail until the boot timed out.
find_leader() {
  local host_ns pid
  host_ns=$(readlink "/proc/$NSPAWN_PID/ns/pid" 2>/dev/null) || return 1
  for pid in $(pgrep -P "$NSPAWN_PID" || true); do
    [ "$(readlink "/proc/$pid/ns/pid" 2>/dev/null)" != "$host_ns" ] || continue
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || continue
    echo "$pid"
    return 0
  done
  return 1
}

# What a failed boot leaves for a look: the console is usually silent (systemd
# in a container logs to its journal), so ask the container itself.
diagnose() {
  log "processes under systemd-nspawn:"
  ps -o pid,ppid,stat,etimes,args --forest -g "$(ps -o sid= -p "$NSPAWN_PID" | tr -d ' ')" >&2 || true
  [ -n "$LEADER_PID" ] || return 0
  log "last systemctl is-system-running: '${state:-}' ${state_err:-}"
  log "jobs in the container:"
  timeout 10 bash "$HERE/exec.sh" "$LEADER_PID" systemctl list-jobs --no-pager >&2 || true
  log "the container's journal, last 30 lines:"
  timeout 10 bash "$HERE/exec.sh" "$LEADER_PID" journalctl -b --no-pager -n 30 >&2 || true
}

fail_boot() {
  log "$*"
  diagnose
  exit 1
}

state=""
state_err=""
while :; do
  kill -0 "$NSPAWN_PID" 2>/dev/null || fail_boot "systemd-nspawn exited during boot"
  [ "$SECONDS" -lt "$deadline" ] || fail_boot "no usable container PID 1 (or system state '$state') after ${TIMEOUT}s"
  # Taken again whenever the one we had is gone.
  if [ -z "$LEADER_PID" ] || ! kill -0 "$LEADER_PID" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$LEADER_PID/stat" 2>/dev/null)" = Z ]; then
    LEADER_PID=$(find_leader || true)
    [ -n "$LEADER_PID" ] || { sleep 0.1; continue; }
  fi
  errfile="$WORK/is-system-running.err"
  state=$(timeout 10 bash "$HERE/exec.sh" "$LEADER_PID" systemctl is-system-running 2>"$errfile" || true)
  state_err=$(tr '\n' ' ' <"$errfile" 2>/dev/null || true)
  case "$state" in
    running|degraded) break ;;
  esac
  sleep 0.2
done

in_container() { bash "$HERE/exec.sh" "$LEADER_PID" "$@"; }
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
