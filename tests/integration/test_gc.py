"""The plugin commands run without the cycle collector; the commands for people with it."""

from __future__ import annotations

import ast
import gc
import io
from pathlib import Path

from conftest import CHECK_DUMMY

from selfheal.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_a_plugin_command_leaves_the_collector_off_and_a_command_for_people_turns_it_on(
    tmp_path: Path,
) -> None:
    env = {"SELFHEAL_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin"}
    gc.disable()  # as the script does before anything is imported
    try:
        out = io.StringIO()
        assert main(["wrap", "--name", "web", "--heal", "true", "--", CHECK_DUMMY, "0", "ok"], env, out) == 0
        assert out.getvalue().startswith("WEB OK"), out.getvalue()
        assert not gc.isenabled()
        assert main(["status"], env, io.StringIO()) == 0
        assert gc.isenabled()
    finally:
        gc.enable()


def test_both_entry_points_disable_the_collector_before_importing_selfheal() -> None:
    for path in (ROOT / "scripts" / "selfheal", ROOT / "selfheal" / "__main__.py"):
        body = ast.parse(path.read_text()).body
        calls = [
            i
            for i, node in enumerate(body)
            if isinstance(node, ast.Expr) and ast.unparse(node.value) == "gc.disable()"
        ]
        imports = [
            i
            for i, node in enumerate(body)
            if isinstance(node, ast.ImportFrom) and node.module == "selfheal.cli"
        ]
        assert calls and imports and calls[0] < imports[0], path
