"""The package type-checks: mypy, at the strictness pyproject.toml sets and justifies.

The package ships ``py.typed``, so its annotations are a promise to every
caller's type checker; this keeps them true. A ``type: ignore`` is the
exception: few, each narrowed to its error code, each with its reason.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: selfheal/ and checks/, which installs as selfheal.checks.
PACKAGE_DIRS = (ROOT / "selfheal", ROOT / "checks")
MAX_IGNORES = 10
#: ``# type: ignore[code, ...]  # why``: a bare ignore hides every error on its line.
IGNORE = re.compile(r"#\s*type:\s*ignore\b")
EXPLAINED = re.compile(r"#\s*type:\s*ignore\[[a-z-]+(,\s*[a-z-]+)*\]\s+#\s*\S")


def sources() -> list[Path]:
    return sorted(path for base in PACKAGE_DIRS for path in base.rglob("*.py"))


def test_mypy_passes() -> None:
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is missing: pip install -e '.[test]'", pytrace=False)
    # The selfheal.checks link: how mypy finds checks/ under its installed name.
    link = ROOT / ".typecheck" / "selfheal" / "checks"
    assert link.is_symlink() and link.resolve() == ROOT / "checks"
    # Flags and files come from [tool.mypy]; the environment's MYPYPATH must not add to them.
    env = {key: value for key, value in os.environ.items() if key != "MYPYPATH"}
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=110
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every module was checked, those of checks/ too, not just those reached by an import.
    found = re.search(r"no issues found in (\d+) source files", result.stdout)
    assert found is not None, result.stdout
    assert int(found.group(1)) == len(sources())


def test_type_ignores_are_few_and_explained() -> None:
    ignores = []
    for path in sources():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if IGNORE.search(line):
                ignores.append((f"{path.relative_to(ROOT)}:{number}", line.strip()))
    unexplained = [where for where, line in ignores if not EXPLAINED.search(line)]
    assert not unexplained, f"type: ignore without [code] and a '# reason' after it: {unexplained}"
    assert len(ignores) <= MAX_IGNORES, "\n".join(f"{where}: {line}" for where, line in ignores)
