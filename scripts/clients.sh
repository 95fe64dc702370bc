#!/usr/bin/env bash
# Builds the worker clients as packages for applications; `make clients` runs
# it into dist/clients/, and scripts/install.sh lays that under
# $PREFIX/share/vigil/:
#
#   bash scripts/clients.sh python OUTDIR   the wheel and sdist, vigil-VERSION*
#   bash scripts/clients.sh node OUTDIR     the npm tarball, vigil-worker-VERSION.tgz
#
# VERSION is the one in vigil's package.json, stamped into each package. Both
# build in a temporary directory: lib/ is only read. No network:
# the wheel comes from Debian's python3-build and python3-setuptools
# (--no-isolation), the tarball from the repository's own tsc and `npm pack`
# (nothing to fetch: the package has no dependencies). OUTDIR is replaced
# whole, so an older version's files never linger beside the new ones (a
# `pip install vigil-*.whl` must match one file).
set -euo pipefail

what=${1:-}
out=${2:-}
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { printf 'vigil clients: error: %s\n' "$*" >&2; exit 1; }
[ -n "$what" ] && [ -n "$out" ] || { echo "usage: bash scripts/clients.sh python|node OUTDIR" >&2; exit 64; }
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

VERSION=$(node -p 'require(process.argv[1]).version' "$SRC/package.json")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vigil-clients.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Replaces OUTDIR with what was built in $1, in one rename where possible.
publish() {
  local built=$1
  mkdir -p "$(dirname "$out")"
  rm -rf "$out.new.$$"
  cp -R "$built" "$out.new.$$"
  chmod 0755 "$out.new.$$"
  find "$out.new.$$" -type f -exec chmod 0644 {} +
  rm -rf "$out"
  mv "$out.new.$$" "$out"
}

build_python() {
  # Debian's own interpreter: python3-build and python3-setuptools are its modules.
  local py=/usr/bin/python3
  [ -x "$py" ] || die "$py is missing (apt-get install python3)"
  "$py" -c 'import build, setuptools, wheel' 2>/dev/null \
    || die "building the Python client needs Debian's python3-build, python3-setuptools and python3-wheel (bash scripts/deps.sh run installs them)"
  local stage="$WORK/python"
  mkdir -p "$stage/vigil" "$WORK/python-out"
  cp "$SRC/lib/python/pyproject.toml" "$SRC/lib/python/README.md" "$stage/"
  cp "$SRC/lib/python/vigil/py.typed" "$stage/vigil/"
  # The one source of the version: package.json.
  sed -E "s/^__version__ = \".*\"$/__version__ = \"$VERSION\"/" "$SRC/lib/python/vigil/__init__.py" > "$stage/vigil/__init__.py"
  grep -q "^__version__ = \"$VERSION\"$" "$stage/vigil/__init__.py" || die "no __version__ line to stamp in lib/python/vigil/__init__.py"
  # sdist first, then the wheel built from that sdist: proves the sdist is whole.
  (cd "$stage" && "$py" -m build --no-isolation --outdir "$WORK/python-out" . ) > "$WORK/python-build.log" 2>&1 \
    || { cat "$WORK/python-build.log" >&2; die "python3 -m build failed"; }
  ls "$WORK/python-out"/vigil-"$VERSION"-py3-none-any.whl "$WORK/python-out"/vigil-"$VERSION".tar.gz >/dev/null \
    || die "python3 -m build did not produce vigil-$VERSION's wheel and sdist"
  publish "$WORK/python-out"
  printf 'vigil clients: Python %s\n' "$(cd "$out" && echo *)"
}

build_node() {
  local tsc="$SRC/node_modules/.bin/tsc"
  [ -x "$tsc" ] || die "$tsc is missing: run npm ci first (make deps)"
  local stage="$WORK/node"
  mkdir -p "$stage" "$WORK/node-out"
  "$tsc" -p "$SRC/lib/node/tsconfig.esm.json" --outDir "$stage/esm"
  "$tsc" -p "$SRC/lib/node/tsconfig.cjs.json" --outDir "$stage/cjs"
  # The package is "type": "module"; the CommonJS tree says otherwise for itself.
  printf '{\n  "type": "commonjs"\n}\n' > "$stage/cjs/package.json"
  cp "$SRC/lib/node/README.md" "$stage/"
  if [ -f "$SRC/LICENSE" ]; then cp "$SRC/LICENSE" "$stage/"; fi
  node -e '
    const fs = require("node:fs");
    const [src, dest, version] = process.argv.slice(1);
    const manifest = JSON.parse(fs.readFileSync(src, "utf8"));
    manifest.version = version;
    fs.writeFileSync(dest, JSON.stringify(manifest, null, 2) + "\n");
  ' "$SRC/lib/node/package.json" "$stage/package.json" "$VERSION"
  (cd "$stage" && npm pack --silent --offline --pack-destination "$WORK/node-out" >/dev/null) \
    || die "npm pack failed"
  ls "$WORK/node-out"/vigil-worker-"$VERSION".tgz >/dev/null || die "npm pack did not produce vigil-worker-$VERSION.tgz"
  publish "$WORK/node-out"
  printf 'vigil clients: Node %s\n' "$(cd "$out" && echo *)"
}

case "$what" in
  python) build_python ;;
  node) build_node ;;
  *) die "unknown client '$what' (python or node)" ;;
esac
