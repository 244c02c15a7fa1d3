"""The README's list of Debian packages is the one ``tests/run.sh`` installs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_names_every_debian_package_run_sh_installs() -> None:
    debs = re.search(r'^debs="([^"]*)"', (ROOT / "tests" / "run.sh").read_text(), re.MULTILINE)
    assert debs, "tests/run.sh has no debs= line"
    readme = " ".join((ROOT / "README.md").read_text().split())
    listed = re.search(r"the `debs=` list in `tests/run.sh`: (.*?)\)", readme)
    assert listed, "README.md does not list the packages of tests/run.sh"
    assert re.findall(r"`([^`]+)`", listed.group(1)) == debs.group(1).split()
