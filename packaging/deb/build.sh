#!/usr/bin/env bash
# make deb: builds vigil_<version>_<arch>.deb with dpkg-deb, from the built
# tree, laid out by the same scripts/install.sh that `make install` runs
# (PREFIX=/usr, into a staging directory), then moved where a package's
# files belong:
#
#   /usr/lib/node_modules/vigil/              the package and its production node_modules
#   /usr/bin/vigild, /usr/bin/vigilctl        symlinks into it
#   /usr/lib/systemd/system/vigil.service     (make install: /etc/systemd/system, the admin's place)
#   /usr/lib/systemd/system/vigil.socket      the template, not enabled
#   /usr/share/dbus-1/system.d/org.vigil.Supervisor1.conf   (make install: /etc/dbus-1/system.d)
#   /usr/lib/python3/dist-packages/vigil/     the Python client, for /usr/bin/python3
#   /usr/share/vigil/{python,node}/           the clients as packages (pip install, npm install)
#   /usr/share/bash-completion/completions/vigilctl
#   /etc/vigil/...                            conffiles: every file under /etc
#
# usage: bash packaging/deb/build.sh [OUTDIR]    (default: the repository root)
# env:   DEB_VERSION   the package's version (default: package.json's version, revision 1,
#                      e.g. 0.1.0-1). An upstream part other than package.json's is
#                      written into the packaged package.json, so vigild reports it.
#        DEB_MAINTAINER
#        DEB_COMPRESSION   dpkg-deb -Z: xz (default, the smallest), gzip (faster to build), zstd, none
#
# The package is for this machine's architecture and Node.js major version:
# the native addons in node_modules (sd-notify; usocket, dbus-next's optional
# unix-socket helper) are compiled for this node's ABI, hence
# `Depends: nodejs (>= N), nodejs (<< N+1)`. Prints the .deb's path.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
OUT=${1:-$SRC}

die() { printf 'make deb: error: %s\n' "$*" >&2; exit 1; }
say() { printf 'make deb: %s\n' "$*" >&2; }

command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (apt-get install dpkg)"
command -v node >/dev/null || die "node is not on PATH"
[ -f "$SRC/dist/daemon/main.js" ] || die "build first: make build"

upstream=$(node -p 'require(process.argv[1]).version' "$SRC/package.json")
version=${DEB_VERSION:-$upstream-1}
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "DEB_VERSION '$version' is not a Debian version"
version_upstream=${version%-*}
[ "$version_upstream" != "$version" ] || version_upstream=$version
arch=$(dpkg --print-architecture)
node_major=$(node -p 'process.versions.node.split(".")[0]')
maintainer=${DEB_MAINTAINER:-vigil maintainers <maintainers@users.noreply.r-seed-12e3ec77.example>}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
STAGE=$(mktemp -d /tmp/vigil-deb.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
ROOT="$STAGE/root"

# The same layout as make install, for PREFIX=/usr.
DESTDIR="$ROOT" PREFIX=/usr bash "$SRC/scripts/install.sh" install >&2

move() { # FROM_DIR TO_DIR: every file of FROM_DIR into TO_DIR
  local from=$ROOT$1 to=$ROOT$2
  [ -d "$from" ] || return 0
  mkdir -p "$to"
  find "$from" -mindepth 1 -maxdepth 1 -exec mv -t "$to" {} +
  rmdir -p --ignore-fail-on-non-empty "$from"
}
# A package's units go under /usr/lib/systemd/system (the admin overrides them
# in /etc/systemd/system), its D-Bus policy under /usr/share/dbus-1/system.d.
move /etc/systemd/system /usr/lib/systemd/system
move /etc/dbus-1/system.d /usr/share/dbus-1/system.d
# The JSON Schema describes this vigild and changes with it: not a conffile.
# It lives in the package; the path the configuration's modeline names is a link.
if [ -f "$ROOT/etc/vigil/vigil.schema.json" ]; then
  install -D -m 0644 "$ROOT/etc/vigil/vigil.schema.json" "$ROOT/usr/share/vigil/vigil.schema.json"
  ln -sf /usr/share/vigil/vigil.schema.json "$ROOT/etc/vigil/vigil.schema.json"
fi
# Man pages are gzipped in a package (Debian policy 12.1).
if [ -d "$ROOT/usr/share/man" ]; then
  find "$ROOT/usr/share/man" -type f ! -name '*.gz' -exec gzip -9n {} +
fi
if [ "$version_upstream" != "$upstream" ]; then
  node -e '
    const fs = require("fs");
    const [file, v] = process.argv.slice(1);
    const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
    pkg.version = v;
    fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
  ' "$ROOT/usr/lib/node_modules/vigil/package.json" "$version_upstream"
fi
# Documentation where Debian looks for it.
mkdir -p "$ROOT/usr/share/doc/vigil"
cp "$SRC/README.md" "$ROOT/usr/share/doc/vigil/README.md"

DEB="$ROOT/DEBIAN"
mkdir -p "$DEB"
for script in postinst prerm postrm; do
  install -m 0755 "$HERE/$script" "$DEB/$script"
done
(cd "$ROOT" && find etc -type f -printf '/%p\n' | sort) > "$DEB/conffiles"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$DEB/md5sums"
installed_size=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)

sed -e "s|@VERSION@|$version|" \
    -e "s|@ARCH@|$arch|" \
    -e "s|@MAINTAINER@|$maintainer|" \
    -e "s|@INSTALLED_SIZE@|$installed_size|" \
    -e "s|@NODE_MAJOR@|$node_major|g" \
    -e "s|@NODE_NEXT@|$((node_major + 1))|g" \
    "$HERE/control.in" > "$DEB/control"

deb="$OUT/vigil_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"${DEB_COMPRESSION:-xz}" --build "$ROOT" "$deb" >&2
say "built $deb ($(du -h "$deb" | cut -f1); installed size ${installed_size} KiB; conffiles: $(tr '\n' ' ' < "$DEB/conffiles"))"
echo "$deb"
