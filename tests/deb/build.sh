#!/usr/bin/env bash
# Build the Debian package from this tree into OUTDIR:
#     bash tests/deb/build.sh OUTDIR   # OUTDIR/selfheal_VERSION_all.deb, .changes, .buildinfo
# dpkg-buildpackage writes into the parent of the source dir and leaves
# build output in it, so it builds a copy in a temp dir: the tree stays
# clean. Needs the Build-Depends of debian/control (tests/run.sh installs
# them as root; or: apt-get build-dep ./).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
[ $# = 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
mkdir -p "$1"
out="$(cd "$1" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
tar -C "$root" \
    --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist --exclude=./.pybuild \
    --exclude='*.egg-info' --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ruff_cache \
    -cf - . | tar -C "$work/src" -xf -
cd "$work/src"
dpkg-buildpackage -us -uc -b
mv "$work"/selfheal_*.deb "$work"/selfheal_*.changes "$work"/selfheal_*.buildinfo "$out"/
