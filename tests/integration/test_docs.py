"""The documentation's examples work as printed.

- Every ```yaml block in ``docs/*.md`` and ``README.md``, and every
  ``examples/*.yaml``, is a complete ``selfheal.yaml`` that ``selfheal
  validate`` accepts. (A fragment that is not a whole config belongs in a
  ```text block.)
- Every ```python block in ``docs/*.md`` runs as a script. Every
  ``selfheal.Check`` it builds is forced into a dry run, so an example
  that would restart a real service decides and prints, but starts and
  records nothing (``SELFHEAL_STATE_DIR`` points at a directory that must
  not come into existence). A block that runs a ``selfheal.Check`` prints
  a Nagios plugin line and exits with its state; any other block exits 0.
  Where the text after a block says it ``prints`` the next block, the
  output is exactly that block.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import assert_no_traceback, clean_env, run_selfheal

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
PLUGIN_LINE = re.compile(r"^[A-Z0-9_.-]+ (OK|WARNING|CRITICAL|UNKNOWN) - ")


#: Runs a documentation example with every selfheal.Check in dry-run mode.
DRY_RUN_ALL = """
import runpy, sys
import selfheal.check

_init = selfheal.check.Check.__init__


def _dry_run_init(self, *args, **kwargs):
    kwargs["dry_run"] = True
    _init(self, *args, **kwargs)


selfheal.check.Check.__init__ = _dry_run_init
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


class Block:
    def __init__(
        self, path: Path, line: int, lang: str, text: str, after: str, next_text: str | None
    ) -> None:
        self.path = path
        self.line = line
        self.lang = lang
        self.text = text
        self.after = after  # the prose between this block and the next
        self.next_text = next_text

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    source = path.read_text()
    matches = list(FENCE.finditer(source))
    found = []
    for index, match in enumerate(matches):
        indent = len(match.group("indent"))
        body = textwrap.dedent(match.group("body")) if indent else match.group("body")
        following = matches[index + 1] if index + 1 < len(matches) else None
        after = source[match.end() : following.start() if following else len(source)]
        next_text = textwrap.dedent(following.group("body")) if following else None
        line = source.count("\n", 0, match.start()) + 1
        found.append(Block(path, line, match.group("lang"), body, after, next_text))
    return found


def all_blocks(lang: str, paths: list[Path]) -> list[Block]:
    return [block for path in paths for block in blocks(path) if block.lang == lang]


YAML_BLOCKS = all_blocks("yaml", [*DOCS, ROOT / "README.md"])
PYTHON_BLOCKS = all_blocks("python", DOCS)
EXAMPLE_CONFIGS = sorted((ROOT / "examples").glob("*.yaml"))


def test_the_docs_have_examples_to_check() -> None:
    # The fence pattern must keep finding them: a parser that found nothing
    # would pass every test below.
    assert len(YAML_BLOCKS) >= 6, [b.where for b in YAML_BLOCKS]
    assert len(PYTHON_BLOCKS) >= 3, [b.where for b in PYTHON_BLOCKS]
    assert any(b.path.name == "nrpe.md" for b in YAML_BLOCKS), "indented blocks are found too"
    assert EXAMPLE_CONFIGS


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: b.where)
def test_yaml_block_is_a_valid_config(block: Block, tmp_path: Path) -> None:
    config = tmp_path / "selfheal.yaml"
    config.write_text(block.text)
    result = run_selfheal("validate", "-c", config)
    assert result.returncode == 0, f"{block.where}: {result.stdout}{result.stderr}"
    assert_no_traceback(result.stdout, result.stderr)


@pytest.mark.parametrize("path", EXAMPLE_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_example_config_is_valid(path: Path) -> None:
    result = run_selfheal("validate", "-c", path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.where)
def test_python_block_runs(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.text)
    state_dir = tmp_path / "state"
    result = subprocess.run(
        [sys.executable, "-c", DRY_RUN_ALL, str(script)],
        cwd=tmp_path,
        env=clean_env(SELFHEAL_STATE_DIR=str(state_dir)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_no_traceback(result.stdout, result.stderr)
    if "selfheal.Check(" in block.text and "check.main(" in block.text:
        line = result.stdout.splitlines()[0] if result.stdout else ""
        match = PLUGIN_LINE.match(line)
        assert match, f"{block.where}: not a plugin line: {result.stdout!r} {result.stderr!r}"
        assert result.returncode == ["OK", "WARNING", "CRITICAL", "UNKNOWN"].index(match.group(1)), result
        assert "would start" in line or "self-healing" not in line, line
    else:
        assert result.returncode == 0, f"{block.where}: {result.stdout}{result.stderr}"
    if block.after.strip() == "prints":
        assert block.next_text is not None
        assert result.stdout == block.next_text, f"{block.where}: the docs say it prints something else"
    assert not state_dir.exists(), f"{block.where}: a documentation example wrote state"
