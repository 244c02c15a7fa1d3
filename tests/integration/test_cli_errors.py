"""Bad input is one UNKNOWN line on stdout and exit 3, never a traceback.

DESIGN.md section 5: "Any internal error, bad config or bad argument is
UNKNOWN, with a one-line reason on stdout and no traceback". Config errors
name the file and the line as ``PATH:LINE:``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY, UNKNOWN_LINE, assert_no_traceback, run_selfheal, write_script

import selfheal

VALID_CHECK = """\
checks:
  web:
    plugin: check_dummy 0 fine
    heal: "true"
"""

# name -> (config text, line the error must point at, text the message must contain)
CONFIG_ERRORS = {
    "invalid_yaml": (
        """\
checks:
  web:
    plugin: check_dummy 2 down
    heal: [true
    cooldown: 5m
""",
        5,
        "invalid YAML",
    ),
    "unknown_key": (
        """\
checks:
  web:
    plugin: check_dummy 2 down
    heal: "true"

    coldown: 5m
""",
        6,
        "coldown",
    ),
    "wrong_type": (
        """\
state_dir: /nonexistent/state
checks:
  web:
    plugin: check_dummy 2 down
    heal: "true"
    cooldown: 1m
    max_attempts: "three"
""",
        7,
        "max_attempts",
    ),
    "bad_duration": (
        """\
defaults:
  grace: 10s
checks:
  web:
    plugin: check_dummy 2 down
    heal: "true"
    cooldown: 5x
""",
        7,
        "5x",
    ),
    "unknown_top_level_key": (
        """\
statedir: /tmp
checks:
  web:
    plugin: check_dummy 2 down
    heal: "true"
""",
        1,
        "statedir",
    ),
    "missing_plugin": (
        """\
checks:
  other:
    plugin: check_dummy 0 fine
    heal: "true"
  web:
    heal: "true"
    plugin: /nonexistent/check_nope -H localhost
""",
        7,
        "/nonexistent/check_nope",
    ),
}


def assert_one_unknown_line(result) -> str:  # type: ignore[no-untyped-def]
    """The single status line of an UNKNOWN result."""
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 3, (result.returncode, result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert result.stdout.endswith("\n")
    assert UNKNOWN_LINE.match(lines[0]), lines[0]
    return lines[0]


# -- selfheal run NAME -c CONFIG ------------------------------------------


@pytest.mark.parametrize("case", sorted(CONFIG_ERRORS))
def test_config_error_names_file_and_line(tmp_path: Path, case: str) -> None:
    text, line, needle = CONFIG_ERRORS[case]
    config = tmp_path / "selfheal.yaml"
    config.write_text(text)
    result = run_selfheal("run", "web", "-c", config, cwd=tmp_path)
    status = assert_one_unknown_line(result)
    assert f" UNKNOWN - {config}:{line}: " in status, status
    assert needle in status, status
    assert not (tmp_path / "state").exists()


def test_missing_config_file(tmp_path: Path) -> None:
    config = tmp_path / "nope.yaml"
    status = assert_one_unknown_line(run_selfheal("run", "web", "-c", config, cwd=tmp_path))
    assert f" UNKNOWN - {config}: " in status, status
    assert "not found" in status


def test_unknown_check_name(tmp_path: Path) -> None:
    config = tmp_path / "selfheal.yaml"
    config.write_text(VALID_CHECK)
    status = assert_one_unknown_line(run_selfheal("run", "nosuch", "-c", config, cwd=tmp_path))
    assert str(config) in status
    assert "'nosuch'" in status
    assert "web" in status  # the checks that do exist


def test_valid_config_is_not_an_error(tmp_path: Path) -> None:
    # The counterpart of the error cases: the same file without the mistake.
    config = tmp_path / "selfheal.yaml"
    config.write_text(f"state_dir: {tmp_path / 'state'}\n{VALID_CHECK}")
    result = run_selfheal("run", "web", "-c", config, cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout == "WEB OK - OK: fine | selfheal_attempts=0;;;0 selfheal_heals_total=0c;;;0\n"


# -- command line ---------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["wrap", "--bogus", "--heal", "true", "--", CHECK_DUMMY, "2", "x"], "--bogus"),
        (["run", "web", "--bogus"], "--bogus"),
        (["bogus"], "bogus"),
        (["wrap", "--", CHECK_DUMMY, "2", "x"], "--heal"),
        (["wrap", "--heal", "  ", "--", CHECK_DUMMY, "2", "x"], "--heal"),
        (["wrap", "--heal", "true"], "PLUGIN"),
        (["wrap", "--heal", "true", "--cooldown", "bogus", "--", CHECK_DUMMY, "2", "x"], "--cooldown"),
        (
            ["wrap", "--heal", "true", "--max-attempts", "three", "--", CHECK_DUMMY, "2", "x"],
            "--max-attempts",
        ),
        (["wrap", "--heal", "true", "--name", "../etc", "--", CHECK_DUMMY, "2", "x"], "--name"),
        (["wrap", "--heal", "'unterminated", "--", CHECK_DUMMY, "2", "x"], "--heal"),
        (["wrap", "--heal", "true", "--cooldown"], "--cooldown"),
        (["run"], "NAME"),
    ],
    ids=[
        "wrap-unknown-option",
        "run-unknown-option",
        "unknown-command",
        "wrap-without-heal",
        "wrap-blank-heal",
        "wrap-without-plugin",
        "bad-cooldown",
        "bad-max-attempts",
        "name-with-slash",
        "heal-unbalanced-quote",
        "option-without-value",
        "run-without-name",
    ],
)
def test_bad_arguments(tmp_path: Path, args: list[str], needle: str) -> None:
    state = tmp_path / "state"
    result = run_selfheal(args[0], "--state-dir", state, *args[1:], cwd=tmp_path)
    status = assert_one_unknown_line(result)
    assert needle in status, status
    assert not state.exists()
    assert not (tmp_path / "etc.json").exists()


def test_wrap_with_missing_plugin_binary(tmp_path: Path) -> None:
    state = tmp_path / "state"
    marker = tmp_path / "healed"
    result = run_selfheal(
        "wrap",
        "--heal",
        f"touch {marker}",
        "--state-dir",
        state,
        "--",
        "/nonexistent/check_nope",
        "-H",
        "x",
        cwd=tmp_path,
    )
    status = assert_one_unknown_line(result)
    assert status.startswith("CHECK_NOPE UNKNOWN - "), status
    assert "/nonexistent/check_nope" in status
    assert not marker.exists()  # UNKNOWN never heals by default


def test_version(tmp_path: Path) -> None:
    for flag in ("-V", "--version"):
        result = run_selfheal(flag, cwd=tmp_path)
        assert result.returncode == 0
        assert result.stdout == f"selfheal {selfheal.__version__}\n"
        assert result.stderr == ""


def test_wrap_help(tmp_path: Path) -> None:
    result = run_selfheal("wrap", "-h", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert_no_traceback(result.stdout, result.stderr)
    for option in ("--heal", "--cooldown", "--max-attempts", "--window", "--action-timeout", "--state-dir"):
        assert option in result.stdout, option
    run_help = run_selfheal("run", "--help", cwd=tmp_path)
    assert run_help.returncode == 0
    assert run_help.stdout.startswith("usage: selfheal run NAME"), run_help.stdout
    assert "-c, --config CONFIG" in run_help.stdout


def test_top_level_help_lists_every_command_and_its_usage(tmp_path: Path) -> None:
    # The router loads command modules lazily; a module that lost its usage
    # or its main would only show here (click warns of the same with LazyGroup).
    from selfheal.cli import COMMANDS

    result = run_selfheal("-h", cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert_no_traceback(result.stdout, result.stderr)
    usage, _, listing = result.stdout.partition("\ncommands:\n")
    for command in COMMANDS:
        assert f"selfheal {command}" in usage, command
        assert any(line.split()[:1] == [command] for line in listing.splitlines()), command
    for command in COMMANDS:
        sub = run_selfheal(command, "-h", cwd=tmp_path)
        assert sub.returncode == 0, (command, sub.stdout)
        assert sub.stdout.startswith(f"usage: selfheal {command}"), (command, sub.stdout)


def test_wrap_help_starts_with_usage(tmp_path: Path) -> None:
    result = run_selfheal("wrap", "-h", cwd=tmp_path)
    assert result.stdout.startswith("usage: selfheal wrap "), result.stdout


def test_no_command_is_one_unknown_line(tmp_path: Path) -> None:
    status = assert_one_unknown_line(run_selfheal(cwd=tmp_path))
    assert status == "SELFHEAL UNKNOWN - no command given; try 'selfheal -h'"


# -- misbehaving plugins --------------------------------------------------


def test_plugin_exiting_7_is_unknown(tmp_path: Path) -> None:
    plugin = write_script(tmp_path / "check_seven", 'echo "OK - fine"\nexit 7\n')
    status = assert_one_unknown_line(
        run_selfheal("wrap", "--heal", "true", "--state-dir", tmp_path / "state", "--", plugin, cwd=tmp_path)
    )
    assert status.startswith("CHECK_SEVEN UNKNOWN - "), status
    assert re.search(r"\bexited 7\b", status), status


@pytest.mark.parametrize(("signal_name", "number"), [("KILL", 9), ("TERM", 15)])
def test_plugin_killed_by_signal_is_unknown(tmp_path: Path, signal_name: str, number: int) -> None:
    plugin = write_script(tmp_path / "check_dies", f'echo "OK - fine"\nkill -{signal_name} $$\n')
    status = assert_one_unknown_line(
        run_selfheal("wrap", "--heal", "true", "--state-dir", tmp_path / "state", "--", plugin, cwd=tmp_path)
    )
    assert status.startswith("CHECK_DIES UNKNOWN - "), status
    assert re.search(rf"\bsignal {number}\b", status), status
