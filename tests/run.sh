#!/usr/bin/env bash
# The whole test suite from a fresh machine: installs the Debian packages
# the end-to-end tests use (when run as root), a virtualenv with selfheal
# and its test dependencies, then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# From build-essential on: what tests/e2e/test_debian_package.py needs to
# build (debian/control's Build-Depends), check and install the package.
debs="nagios4-core nagios-nrpe-server nagios-nrpe-plugin monitoring-plugins-basic sudo icinga2-bin openssl chromium etcd-server systemd build-essential debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools python3-wheel python3-nagiosplugin python3-psutil python3-yaml lintian logrotate"
missing=""
for deb in $debs; do
    dpkg-query -W -f='${Status}\n' "$deb" 2>/dev/null | grep -q "install ok installed" || missing="$missing $deb"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "tests/run.sh: missing Debian packages:$missing (install them as root; the tests that run real plugins will fail without them)" >&2
    fi
fi

python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
