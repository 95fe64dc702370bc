#!/usr/bin/env bash
# Installs the Debian packages vigil needs for a purpose (run | test), or,
# when not root, prints the exact command that would. Idempotent and quiet
# when everything is there.
set -euo pipefail

purpose=${1:-run}
# libsystemd-dev: sd-notify is a native addon over libsystemd; g++/make/python3
# build it (node-gyp) and python3 runs the Python workers; gunicorn serves the
# example WSGI app of `make run` on a vigil socket; python3-build, -setuptools
# and -wheel build the Python client's wheel in `make install` (offline);
# go-md2man builds the man pages (make build).
run_pkgs=(libsystemd-dev g++ make python3 gunicorn python3-build python3-setuptools python3-wheel go-md2man)
# dbus: a private dbus-daemon for the D-Bus tests; systemd-container: a real
# systemd booted in a container; prometheus: promtool and a real scrape;
# wrk: the load generator of the socket tests; curl: requests on unix sockets;
# python3-venv: a fresh venv installs the client's wheel; python3-flask and
# python3-uvicorn: the README's framework recipes, run under vigild;
# man-db: `man vigild` after make install.
test_pkgs=(dbus systemd-container prometheus procps wrk curl python3-venv python3-flask python3-uvicorn man-db)

pkgs=("${run_pkgs[@]}")
[ "$purpose" = test ] && pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "vigil needs these Debian packages: ${missing[*]}" >&2
  echo "install them with:  sudo sh -c '$cmd'" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
