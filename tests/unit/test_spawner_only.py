"""Only ``selfheal/edges/spawner.py`` starts processes, and only it and ``selfheal/edges/kill.py`` signal them.

Two small modules to audit for how children are started (no shell, restored
signals, process groups) and killed (whole trees, pid reuse checked by
psutil). ``os.exec*`` is allowed: it replaces the process, starting none.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*(ROOT / "selfheal").rglob("*.py"), *(ROOT / "checks").rglob("*.py")])
ALLOWED = {"selfheal/edges/spawner.py", "selfheal/edges/kill.py"}
OS_CALLS = {
    "kill",
    "killpg",
    "fork",
    "forkpty",
    "system",
    "popen",
    "spawnv",
    "spawnvp",
    "posix_spawn",
    "posix_spawnp",
}
METHODS = {"terminate", "kill", "send_signal"}


def offences(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"line {node.lineno}: imports {n}" for n in names if n.split(".")[0] == "subprocess"]
        elif isinstance(node, ast.Attribute):
            owner = node.value.id if isinstance(node.value, ast.Name) else None
            if owner == "os" and node.attr in OS_CALLS:
                found.append(f"line {node.lineno}: os.{node.attr}")
            elif owner != "os" and node.attr in METHODS and owner not in ("signal", "signals"):
                found.append(f"line {node.lineno}: .{node.attr}()")
    return found


def test_the_rule_sees_what_it_forbids() -> None:
    bad = "import subprocess\nimport os\nos.kill(1, 9)\np.terminate()\nq.kill()\nr.send_signal(2)\n"
    assert len(offences(bad)) == 5


@pytest.mark.parametrize(
    "path",
    [p for p in SOURCES if str(p.relative_to(ROOT)) not in ALLOWED],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_only_the_spawner_starts_or_kills_processes(path: Path) -> None:
    assert offences(path.read_text()) == []
