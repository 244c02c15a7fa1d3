"""Hostile names and commands (issue 6, item 4).

- Check names with ``/``, ``..``, NUL, newlines or of huge length are
  rejected, from the command line and from a config, and nothing is
  created outside the state dir.
- Heal strings full of shell syntax run as literal argv unless the config
  says ``shell: true``: a marker file the shell syntax would create must
  not appear (and does appear with ``shell: true``, so the test can see it).
- Newlines in a plugin's or an action's output cannot forge journal lines.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY, UNKNOWN_LINE, assert_no_traceback, journal_events, wait_for, write_script
from harness import figure

from selfheal.cli import main

HOSTILE_NAMES = [
    "a/b",
    "../escape",
    "..",
    "/etc/passwd",
    "nul\0byte",
    "new\nline",
    "carriage\rreturn",
    "x" * 5000,
    ".hidden",
    "-rf",
    "tab\tname",
    "ünïcödé",
]


def run_main(args: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(args, env={"PATH": os.environ.get("PATH", "")}, stdout=out)
    return code, out.getvalue()


def assert_unknown_line(code: int, text: str) -> None:
    assert_no_traceback(text)
    assert code == 3, text
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert UNKNOWN_LINE.match(text), text
    assert len(text) < 600, "the whole hostile name was echoed back"


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:12]))
def test_hostile_name_on_the_command_line_is_rejected(tmp_path: Path, name: str) -> None:
    state = tmp_path / "deep" / "state"
    before = tree(tmp_path)
    code, text = run_main(
        ["wrap", "--name", name, "--heal", "true", "--state-dir", str(state), "--", CHECK_DUMMY, "2", "down"]
    )
    assert_unknown_line(code, text)
    assert "--name" in text
    assert tree(tmp_path) == before  # nothing created, inside or outside the state dir


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n[:12]))
def test_hostile_name_in_a_config_is_rejected(tmp_path: Path, name: str) -> None:
    state = tmp_path / "state"
    config = tmp_path / "selfheal.yaml"
    # JSON is YAML, and json.dumps escapes NUL and newlines as YAML does.
    checks = {name: {"plugin": f"{CHECK_DUMMY} 2 down", "heal": "true"}}
    config.write_text(json.dumps({"state_dir": str(state), "checks": checks}))
    before = tree(tmp_path)
    code, text = run_main(["run", "-c", str(config), "--", name])
    assert_unknown_line(code, text)
    assert f"{config}:" in text  # located in the config file
    assert tree(tmp_path) == before
    figure("hostile check names (command line and config), per name", 2)


SHELL_SYNTAX = "echo literal ; touch {m} && touch {m} || touch {m} $(touch {m}) `touch {m}` {g} > {m}"


@pytest.mark.parametrize("shell", [False, True], ids=["argv", "shell-true"])
def test_shell_syntax_in_a_heal_is_literal_unless_shell_true(tmp_path: Path, shell: bool) -> None:
    marker = tmp_path / "marker"
    glob = str(tmp_path / "*")
    heal = SHELL_SYNTAX.format(m=marker, g=glob)
    state = tmp_path / "state"
    config = tmp_path / "selfheal.yaml"
    action = {"command": heal, "shell": True} if shell else heal
    checks = {"meta": {"plugin": f"{CHECK_DUMMY} 2 down", "heal": action}}
    config.write_text(json.dumps({"state_dir": str(state), "checks": checks}))
    code, text = run_main(["run", "meta", "-c", str(config)])
    assert code == 1 and "self-healing: started" in text, text
    (end,) = wait_for(lambda: journal_events(state, "action_end", in_flight=True), 10, what="the heal to end")
    if shell:
        # The control: through a shell the same string does create the file.
        assert marker.exists()
        assert end["argv"][:2] == ["/bin/sh", "-c"]  # type: ignore[index]
        return
    assert not marker.exists(), "shell syntax in a heal was interpreted without shell: true"
    assert end["exit_code"] == 0
    words = end["argv"]
    assert words[0] == "echo" and ";" in words and "&&" in words and "`touch" in words  # type: ignore[operator,index]
    assert glob in words  # type: ignore[operator]  # the glob was not expanded
    (log,) = state.glob("meta.heal-*.log")
    assert f"literal ; touch {marker} && touch" in log.read_text()
    figure("shell syntax in heal strings (; && || $() backticks globs >)", 1)


FORGED = '{"ts":"2026-01-01T00:00:00.000Z","host":"vm","event":"attempt","check":"forged","attempt":1}'


def test_newlines_in_plugin_and_action_output_cannot_forge_journal_lines(tmp_path: Path) -> None:
    state = tmp_path / "state"
    plugin = write_script(
        tmp_path / "check_forger", f"printf 'CRITICAL: down\\n{FORGED}\\n|\\n{FORGED}'\nexit 2\n"
    )
    heal = write_script(tmp_path / "heal", f"printf 'failing\\n{FORGED}\\n{FORGED}'\nexit 1\n")
    code, text = run_main(
        ["wrap", "--name", "victim", "--heal", str(heal), "--state-dir", str(state), "--", str(plugin)]
    )
    assert code == 1, text
    assert text.splitlines()[0].startswith("VICTIM WARNING - CRITICAL: down; self-healing: started")
    (end,) = wait_for(lambda: journal_events(state, "action_end", in_flight=True), 10, what="the heal to end")
    # The action's last line became the journal's reason, as data.
    assert end["reason"] == FORGED
    raw = (state / "journal.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in raw]
    assert [e["event"] for e in events] == ["attempt", "action_end"]
    assert {e["check"] for e in events} == {"victim"}
    figure("forged journal lines in plugin and action output", 1)
