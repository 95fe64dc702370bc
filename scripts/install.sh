#!/usr/bin/env bash
# make install / make uninstall (README "Run it under systemd").
#
#   bash scripts/install.sh install|uninstall
#
# Environment: PREFIX (default /usr/local), DESTDIR (default empty: the live
# system). Lays the package out as `npm install -g` would:
#
#   $PREFIX/lib/node_modules/vigil/   package.json, package-lock.json, dist/daemon,
#                                     dist/lib, lib/python, units, examples and the
#                                     production node_modules (from the built tree)
#   $PREFIX/bin/vigild, vigilctl      symlinks into it
#   /etc/systemd/system/vigil.service ExecStart rewritten for PREFIX
#   /etc/dbus-1/system.d/org.vigil.Supervisor1.conf
#   /etc/vigil/vigil.yaml             only when there is none
#   /etc/vigil/vigil.schema.json      its JSON Schema (always replaced)
#   $PREFIX/share/man/man{1,5,8}/     vigilctl(1), vigil.yaml(5), vigild(8)
#   vigil/ (the Python client)        where /usr/bin/python3 imports it
#   $PREFIX/share/vigil/python/       the Python client's wheel and sdist, for
#                                     `pip install` into an application's venv
#   $PREFIX/share/vigil/node/         the Node client's npm tarball, for
#                                     `npm install` into an application
#   $PREFIX/share/bash-completion/completions/vigilctl
#
# then `systemctl daemon-reload` (and `reload dbus`) when systemd runs and
# DESTDIR is empty. Nothing is built here: run `make build` (npx tsc -p .)
# first, and `make clients` for the client packages. The source tree is only
# read, never written. Idempotent.
set -euo pipefail

action=${1:-}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PKG_REL="lib/node_modules/vigil"
PKG="$DESTDIR$PREFIX/$PKG_REL"
BIN="$DESTDIR$PREFIX/bin"
UNIT_DIR="$DESTDIR/etc/systemd/system"
DBUS_DIR="$DESTDIR/etc/dbus-1/system.d"
CONF_DIR="$DESTDIR/etc/vigil"
UNIT_NAME="vigil.service"
SOCKET_NAME="vigil.socket"
DBUS_NAME="org.vigil.Supervisor1.conf"

say() { printf 'vigil %s: %s\n' "$action" "$*"; }
die() { printf 'vigil %s: error: %s\n' "$action" "$*" >&2; exit 1; }

usage() {
  echo "usage: [PREFIX=/usr/local] [DESTDIR=] bash scripts/install.sh install|uninstall" >&2
  exit 64
}

case "$PREFIX" in
  /*) ;;
  *) die "PREFIX must be an absolute path, got '$PREFIX'" ;;
esac
PREFIX=${PREFIX%/}
[ -n "$PREFIX" ] || die "PREFIX must not be /"

# Where Debian's /usr/bin/python3 imports modules from, under PREFIX:
# /usr -> /usr/lib/python3/dist-packages, /usr/local ->
# /usr/local/lib/python3.X/dist-packages (both on Debian's sys.path). For
# another PREFIX: $PREFIX/lib/python3/dist-packages, with a warning that
# python3 does not look there.
python_dir() {
  local py=/usr/bin/python3 dir
  if [ -x "$py" ]; then
    dir=$("$py" - "$PREFIX" <<'EOF'
import sys
prefix = sys.argv[1].rstrip("/") + "/lib/python3"
for entry in sys.path:
    if entry.startswith(prefix) and entry.endswith("dist-packages"):
        print(entry)
        break
EOF
)
    if [ -n "$dir" ]; then
      echo "$dir"
      return
    fi
  fi
  echo "$PREFIX/lib/python3/dist-packages"
}

# The production dependencies, as `npm prune --omit=dev` would keep them: the
# top-level entries of package-lock.json not marked dev (their nested
# node_modules come along), copied from the built tree so the native sd-notify
# addon is not rebuilt.
production_modules() {
  node -e '
    const lock = require(process.argv[1]);
    const names = new Set();
    for (const [key, meta] of Object.entries(lock.packages ?? {})) {
      if (!key.startsWith("node_modules/") || meta.dev) continue;
      const rest = key.slice("node_modules/".length);
      if (rest.includes("/node_modules/")) continue;
      names.add(rest);
    }
    console.log([...names].sort().join("\n"));
  ' "$SRC/package-lock.json"
}

install_package() {
  [ -f "$SRC/dist/daemon/main.js" ] || die "$SRC/dist/daemon/main.js is missing: build first (make build, or npx tsc -p .)"
  [ -d "$SRC/node_modules" ] || die "$SRC/node_modules is missing: run npm ci first (make deps)"
  command -v node >/dev/null || die "node is not on PATH"

  # Build the new tree next to the old one, then swap: a failed install leaves
  # the previous one in place.
  STAGE="$PKG.new.$$"
  local stage=$STAGE
  rm -rf "$stage"
  mkdir -p "$stage"
  trap 'rm -rf "$STAGE"' EXIT
  cp "$SRC/package.json" "$SRC/package-lock.json" "$stage/"
  for f in README.md LICENSE; do
    if [ -f "$SRC/$f" ]; then cp "$SRC/$f" "$stage/"; fi
  done
  mkdir -p "$stage/dist"
  cp -R "$SRC/dist/daemon" "$SRC/dist/lib" "$stage/dist/"
  mkdir -p "$stage/lib"
  cp -R "$SRC/lib/python" "$stage/lib/"
  cp -R "$SRC/units" "$SRC/examples" "$stage/"
  # Source maps are kept (stack traces); caches are not.
  find "$stage" -name __pycache__ -type d -prune -exec rm -rf {} +

  local n=0 missing=() name
  mkdir -p "$stage/node_modules"
  while IFS= read -r name; do
    [ -n "$name" ] || continue
    if [ -d "$SRC/node_modules/$name" ]; then
      mkdir -p "$stage/node_modules/$(dirname "$name")"
      cp -R "$SRC/node_modules/$name" "$stage/node_modules/$name"
      n=$((n + 1))
    else
      missing+=("$name")
    fi
  done < <(production_modules)
  # Optional dependencies may be absent; the required ones must be there.
  local dep
  for dep in $(node -e 'console.log(Object.keys(require(process.argv[1]).dependencies ?? {}).join(" "))' "$SRC/package.json"); do
    [ -d "$stage/node_modules/$dep" ] || die "dependency $dep is not in $SRC/node_modules: run npm ci first"
  done
  [ -e "$stage/node_modules/sd-notify/build/Release/notify.node" ] \
    || die "the native sd-notify addon is not built ($SRC/node_modules/sd-notify/build): run npm ci first"

  chmod 0755 "$stage/dist/daemon/main.js"
  if [ -f "$stage/dist/daemon/ctl/main.js" ]; then chmod 0755 "$stage/dist/daemon/ctl/main.js"; fi

  mkdir -p "$(dirname "$PKG")"
  rm -rf "$PKG.old.$$"
  if [ -e "$PKG" ]; then mv "$PKG" "$PKG.old.$$"; fi
  mv "$stage" "$PKG"
  rm -rf "$PKG.old.$$"
  trap - EXIT
  say "package in $PKG ($n production modules${missing[*]:+; absent optional: ${missing[*]}})"
}

link_bin() {
  local name=$1 target=$2
  mkdir -p "$BIN"
  if [ -f "$PKG/$target" ]; then
    ln -sfn "../$PKG_REL/$target" "$BIN/$name"
    say "$BIN/$name -> ../$PKG_REL/$target"
  else
    # vigilctl may not be built yet: install what exists, do not fail.
    rm -f "$BIN/$name"
    say "note: $target is not built; $BIN/$name not installed"
  fi
}

install_unit() {
  mkdir -p "$UNIT_DIR"
  local tmp
  tmp=$(mktemp "$UNIT_DIR/.$UNIT_NAME.XXXXXX")
  sed -e "s|/usr/local/bin/vigild|$PREFIX/bin/vigild|g" \
      -e "s|/usr/local/lib/node_modules/vigil|$PREFIX/$PKG_REL|g" \
      "$SRC/units/$UNIT_NAME" > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$UNIT_DIR/$UNIT_NAME"
  say "unit $UNIT_DIR/$UNIT_NAME (ExecStart=$PREFIX/bin/vigild)"

  # A template: not enabled (see its comments).
  install -m 0644 "$SRC/units/$SOCKET_NAME" "$UNIT_DIR/$SOCKET_NAME"
  say "socket unit template $UNIT_DIR/$SOCKET_NAME (not enabled)"

  mkdir -p "$DBUS_DIR"
  install -m 0644 "$SRC/units/$DBUS_NAME" "$DBUS_DIR/$DBUS_NAME"
  say "D-Bus policy $DBUS_DIR/$DBUS_NAME"
}

install_config() {
  mkdir -p "$CONF_DIR"
  chmod 0755 "$CONF_DIR"
  if [ -e "$CONF_DIR/vigil.yaml" ]; then
    say "keeping the existing $CONF_DIR/vigil.yaml"
  else
    install -m 0644 "$SRC/units/vigil.yaml" "$CONF_DIR/vigil.yaml"
    say "default configuration $CONF_DIR/vigil.yaml"
  fi
}

install_python() {
  local dir
  dir=$(python_dir)
  mkdir -p "$DESTDIR$dir/vigil"
  install -m 0644 "$SRC/lib/python/vigil/__init__.py" "$SRC/lib/python/vigil/py.typed" "$DESTDIR$dir/vigil/"
  # Before the client became a package it was one file; a stale vigil.py
  # beside the package would only confuse.
  rm -f "$DESTDIR$dir/vigil.py"
  say "Python client $DESTDIR$dir/vigil/"
  case "$dir" in
    /usr/lib/python3/dist-packages|/usr/local/lib/python3*/dist-packages) ;;
    *) say "warning: /usr/bin/python3 does not import from $dir; add it to PYTHONPATH" ;;
  esac
}

# ---- Client packages for applications (a venv, an npm project) -------------
# The wheel and sdist of the Python client and the npm tarball of the Node
# client, as `make clients` built them into dist/clients/ (scripts/clients.sh):
#   pip install $PREFIX/share/vigil/python/vigil-*.whl
#   npm install $PREFIX/share/vigil/node/vigil-worker-*.tgz
CLIENTS_DIR="$DESTDIR$PREFIX/share/vigil"

install_client_packages() {
  local sub built
  for sub in python node; do
    built="$SRC/dist/clients/$sub"
    [ -n "$(ls -A "$built" 2>/dev/null)" ] || die "$built is missing: build the client packages first (make clients)"
    # Replaced whole: an older version's files must not linger beside the new
    # ones (`pip install vigil-*.whl` must match one wheel).
    mkdir -p "$CLIENTS_DIR"
    rm -rf "$CLIENTS_DIR/$sub.new.$$"
    cp -R "$built" "$CLIENTS_DIR/$sub.new.$$"
    chmod 0755 "$CLIENTS_DIR/$sub.new.$$"
    find "$CLIENTS_DIR/$sub.new.$$" -type f -exec chmod 0644 {} +
    rm -rf "$CLIENTS_DIR/$sub"
    mv "$CLIENTS_DIR/$sub.new.$$" "$CLIENTS_DIR/$sub"
    say "$sub client package $CLIENTS_DIR/$sub/: $(cd "$CLIENTS_DIR/$sub" && echo *)"
  done
}

uninstall_client_packages() {
  remove "$CLIENTS_DIR/python"
  remove "$CLIENTS_DIR/node"
  # share/vigil may hold other things of vigil's; only an empty one goes.
  if [ -d "$CLIENTS_DIR" ]; then rmdir "$CLIENTS_DIR" 2>/dev/null || true; fi
}
# ---- end of client packages ------------------------------------------------

# --- vigilctl's shell completion ------------------------------------------
# bash-completion loads $PREFIX/share/bash-completion/completions/NAME the
# first time NAME is completed (/usr and /usr/local are both on its path).
COMPLETION_DIR="$DESTDIR$PREFIX/share/bash-completion/completions"

install_completion() {
  mkdir -p "$COMPLETION_DIR"
  install -m 0644 "$SRC/completions/vigilctl.bash" "$COMPLETION_DIR/vigilctl"
  say "bash completion $COMPLETION_DIR/vigilctl"
}

uninstall_completion() {
  remove "$COMPLETION_DIR/vigilctl"
}
# --- end of vigilctl's shell completion -------------------------------------

# --- documentation: man pages and the JSON Schema of vigil.yaml -------------
# Both are built by `make build` (scripts/man.sh, dist/scripts/json-schema.js)
# into dist/. The schema goes beside the configuration, where the modeline on
# the default vigil.yaml's first line names it, and into the package, where
# the examples' modeline (../dist/vigil.schema.json) finds it. Unlike
# vigil.yaml, both are replaced on every install: they describe this vigild.
MAN_DIR="$DESTDIR$PREFIX/share/man"
MAN_PAGES=(man1/vigilctl.1 man5/vigil.yaml.5 man8/vigild.8)
SCHEMA_NAME="vigil.schema.json"

install_docs() {
  local page
  for page in "${MAN_PAGES[@]}"; do
    [ -f "$SRC/dist/man/$page" ] || die "$SRC/dist/man/$page is missing: build first (make build)"
  done
  [ -f "$SRC/dist/$SCHEMA_NAME" ] || die "$SRC/dist/$SCHEMA_NAME is missing: build first (make build)"
  for page in "${MAN_PAGES[@]}"; do
    install -D -m 0644 "$SRC/dist/man/$page" "$MAN_DIR/$page"
  done
  say "man pages vigild(8), vigilctl(1), vigil.yaml(5) in $MAN_DIR"
  mkdir -p "$CONF_DIR"
  install -m 0644 "$SRC/dist/$SCHEMA_NAME" "$CONF_DIR/$SCHEMA_NAME"
  install -m 0644 "$SRC/dist/$SCHEMA_NAME" "$PKG/dist/$SCHEMA_NAME"
  say "JSON Schema $CONF_DIR/$SCHEMA_NAME"
}

uninstall_docs() {
  local page
  for page in "${MAN_PAGES[@]}"; do
    remove "$MAN_DIR/$page"
  done
  remove "$CONF_DIR/$SCHEMA_NAME"
}
# --- end of documentation -----------------------------------------------------

systemd_running() {
  [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null
}

reload_managers() {
  if ! systemd_running; then
    if [ -n "$DESTDIR" ]; then say "DESTDIR set: not running systemctl"; else say "systemd is not running: no daemon-reload"; fi
    return 0
  fi
  systemctl daemon-reload
  say "systemctl daemon-reload"
  # dbus-daemon reloads system.d on its own (inotify), but only for folders
  # that existed when it started; an explicit reload covers a new folder.
  if systemctl -q is-active dbus.service 2>/dev/null; then
    if systemctl reload dbus.service 2>/dev/null; then say "systemctl reload dbus"; else say "warning: could not reload dbus"; fi
  fi
}

do_install() {
  install_package
  link_bin vigild dist/daemon/main.js
  link_bin vigilctl dist/daemon/ctl/main.js
  install_unit
  install_config
  install_docs
  install_python
  install_client_packages
  install_completion
  reload_managers
  say "done. Start it with: systemctl enable --now vigil"
}

remove() {
  local path=$1
  if [ -e "$path" ] || [ -L "$path" ]; then
    rm -rf "$path"
    say "removed $path"
  fi
}

do_uninstall() {
  if systemd_running && systemctl -q is-active "$UNIT_NAME" 2>/dev/null; then
    say "stopping $UNIT_NAME"
    systemctl stop "$UNIT_NAME" || say "warning: could not stop $UNIT_NAME"
  fi
  if systemd_running && systemctl -q is-enabled "$UNIT_NAME" 2>/dev/null; then
    systemctl disable "$UNIT_NAME" 2>/dev/null || true
  fi
  remove "$BIN/vigild"
  remove "$BIN/vigilctl"
  remove "$PKG"
  if systemd_running && systemctl -q is-active "$SOCKET_NAME" 2>/dev/null; then
    systemctl stop "$SOCKET_NAME" || say "warning: could not stop $SOCKET_NAME"
  fi
  if systemd_running && systemctl -q is-enabled "$SOCKET_NAME" 2>/dev/null; then
    systemctl disable "$SOCKET_NAME" 2>/dev/null || true
  fi
  remove "$UNIT_DIR/$UNIT_NAME"
  remove "$UNIT_DIR/$SOCKET_NAME"
  remove "$UNIT_DIR/sockets.target.wants/$SOCKET_NAME"
  # What `systemctl enable` made, when systemctl could not undo it (DESTDIR, no systemd).
  remove "$UNIT_DIR/multi-user.target.wants/$UNIT_NAME"
  remove "$DBUS_DIR/$DBUS_NAME"
  uninstall_docs
  local dir
  dir=$(python_dir)
  remove "$DESTDIR$dir/vigil"
  remove "$DESTDIR$dir/vigil.py"
  find "$DESTDIR$dir/__pycache__" -maxdepth 1 -name 'vigil.*.pyc' -exec rm -f {} + 2>/dev/null || true
  uninstall_client_packages
  uninstall_completion
  reload_managers
  if [ -e "$CONF_DIR/vigil.yaml" ]; then say "kept the configuration $CONF_DIR/vigil.yaml (remove it by hand)"; fi
  say "done"
}

case "$action" in
  install) do_install ;;
  uninstall) do_uninstall ;;
  *) usage ;;
esac
