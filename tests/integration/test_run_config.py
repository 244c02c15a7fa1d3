"""``selfheal run NAME -c CONFIG`` end to end, with real plugins and real heals.

The sequence test walks the decision table as Nagios would see it run
after run: heal (row 9), wait for recovery (row 6), did not help (row 8),
heal again (row 9), gave up (row 7).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from conftest import CHECK_DUMMY, assert_no_traceback, journal_events, run_selfheal, wait_for, write_script

CLOCK = r"\d\d:\d\d:\d\d"


def make_config(tmp_path: Path, checks: dict[str, dict[str, object]]) -> tuple[Path, Path]:
    """A config with ``state_dir`` in tmp_path; returns (config, state dir)."""
    state = tmp_path / "state"
    config = tmp_path / "selfheal.yaml"
    # JSON is YAML: no quoting surprises for paths.
    config.write_text(json.dumps({"state_dir": str(state), "checks": checks}, indent=2) + "\n")
    return config, state


def heal_script(tmp_path: Path) -> tuple[list[str], Path]:
    """A heal argv that appends one line to a marker file per run."""
    marker = tmp_path / "heals"
    script = write_script(tmp_path / "heal", 'echo healed >> "$1"\n')
    return [str(script), str(marker)], marker


def heals(marker: Path) -> int:
    return marker.read_text().count("\n") if marker.exists() else 0


def run(config: Path, name: str) -> subprocess.CompletedProcess[str]:
    result = run_selfheal("run", name, "-c", config, cwd=config.parent)
    assert_no_traceback(result.stdout, result.stderr)
    return result


def run_until(
    config: Path,
    name: str,
    until: Callable[[subprocess.CompletedProcess[str]], bool],
    allowed: Callable[[subprocess.CompletedProcess[str]], bool],
    timeout: float = 10.0,
) -> subprocess.CompletedProcess[str]:
    """Run the check repeatedly, as Nagios would, until ``until`` holds.

    Every run before that must satisfy ``allowed``: the checks in between
    are part of what is tested.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = run(config, name)
        if until(result):
            return result
        assert allowed(result), f"unexpected result {result.returncode}: {result.stdout}"
        assert time.monotonic() < deadline, f"still {result.stdout!r} after {timeout}s"
        time.sleep(0.1)


def has(text: str, code: int) -> Callable[[subprocess.CompletedProcess[str]], bool]:
    return lambda result: text in result.stdout and result.returncode == code


def test_ok_warning_and_unknown_pass_through_unchanged(tmp_path: Path) -> None:
    argv, marker = heal_script(tmp_path)
    config, state = make_config(
        tmp_path,
        {
            "healthy": {"plugin": f"{CHECK_DUMMY} 0 'all good'", "heal": argv},
            "meh": {"plugin": [CHECK_DUMMY, "1", "slow"], "heal": argv},
            "confused": {"plugin": [CHECK_DUMMY, "3", "no idea"], "heal": argv},
        },
    )
    ok = run(config, "healthy")
    assert ok.returncode == 0
    assert ok.stdout == "HEALTHY OK - OK: all good | selfheal_attempts=0;;;0 selfheal_heals_total=0c;;;0\n"
    warning = run(config, "meh")
    assert warning.returncode == 1
    assert (
        warning.stdout
        == "MEH WARNING - WARNING: slow | selfheal_attempts=0;;;0 selfheal_heals_total=0c;;;0\n"
    )
    unknown = run(config, "confused")
    assert unknown.returncode == 3
    assert (
        unknown.stdout
        == "CONFUSED UNKNOWN - UNKNOWN: no idea | selfheal_attempts=0;;;0 selfheal_heals_total=0c;;;0\n"
    )
    time.sleep(0.3)
    assert heals(marker) == 0
    assert journal_events(state) == []


def test_critical_heals_then_did_not_help_then_gives_up(tmp_path: Path) -> None:
    argv, marker = heal_script(tmp_path)
    config, state = make_config(
        tmp_path,
        {
            "web": {
                "plugin": "check_dummy 2 down",
                "heal": argv,
                "cooldown": "2s",
                "backoff": 1,
                "grace": "1s",
                "max_attempts": 2,
                "window": "1h",
            }
        },
    )
    action = shlex.join(argv)

    # Row 9: the first CRITICAL heals and says WARNING.
    first = run(config, "web")
    assert first.returncode == 1, first.stdout
    assert first.stdout == (
        f"WEB WARNING - CRITICAL: down; self-healing: started {action} (attempt 1/2) | selfheal_attempts=1;;;0 selfheal_heals_total=1c;;;0\n"
    )
    wait_for(
        lambda: journal_events(state, "action_end", in_flight=True), timeout=10, what="the first action_end"
    )
    assert heals(marker) == 1
    record = json.loads((state / "web.json").read_text())
    assert record["attempts"][-1]["exit_code"] == 0

    # Row 6 for up to 1s (grace), then row 8: still CRITICAL, pages a human.
    waiting = "self-healing: waiting for recovery after"
    result = run_until(config, "web", until=has("did not help", 2), allowed=has(waiting, 1))
    status = result.stdout.splitlines()
    assert len(status) == 1
    assert re.fullmatch(
        rf"WEB CRITICAL - CRITICAL: down; self-healing did not help: attempt 1 at {CLOCK} exited 0; "
        rf"next attempt after {CLOCK} \| selfheal_attempts=1;;;0 selfheal_heals_total=1c;;;0",
        status[0],
    ), status[0]
    assert heals(marker) == 1
    assert len(journal_events(state, "skipped_cooldown")) == 1

    # After the cooldown: the second and last attempt, a retry after "did not help"
    # was shown: it stays CRITICAL (retry_state), so it does not page again.
    result = run_until(
        config, "web", until=has("self-healing: retrying", 2), allowed=has("did not help", 2), timeout=8
    )
    assert result.stdout == (
        f"WEB CRITICAL - CRITICAL: down; self-healing: retrying {action} (attempt 2/2) | selfheal_attempts=2;;;0 selfheal_heals_total=2c;;;0\n"
    )
    wait_for(
        lambda: len(journal_events(state, "action_end", in_flight=True)) == 2,
        timeout=10,
        what="the second action_end",
    )
    assert heals(marker) == 2

    # Row 7: max_attempts reached within the window (grace before it stays CRITICAL during a retry).
    result = run_until(config, "web", until=has("gave up", 2), allowed=has(waiting, 2))
    assert re.fullmatch(
        rf"WEB CRITICAL - CRITICAL: down; self-healing gave up: 2 attempts since {CLOCK}; "
        r"run 'selfheal reset web' \| selfheal_attempts=2;;;0 selfheal_heals_total=2c;;;0\n",
        result.stdout,
    ), result.stdout
    again = run(config, "web")
    assert again.returncode == 2
    assert again.stdout == result.stdout
    time.sleep(0.3)
    assert heals(marker) == 2
    assert len(journal_events(state, "gave_up")) == 1
    assert len(journal_events(state, "attempt")) == 2


def test_perfdata_and_long_output_are_kept(tmp_path: Path) -> None:
    argv, marker = heal_script(tmp_path)
    critical = write_script(
        tmp_path / "check_load",
        'echo "CRITICAL - down | load=5;1;2;0;"\necho "detail one"\necho "detail two: 3 of 4"\nexit 2\n',
    )
    healthy = write_script(
        tmp_path / "check_fine",
        'echo "OK - fine | load=0.5;1;2;0; users=3;;;0"\necho "all disks mounted"\necho "all daemons up"\n',
    )
    config, state = make_config(
        tmp_path,
        {"load": {"plugin": str(critical), "heal": argv}, "fine": {"plugin": str(healthy), "heal": argv}},
    )

    result = run(config, "load")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"LOAD WARNING - CRITICAL - down; self-healing: started {shlex.join(argv)} (attempt 1/3) "
        "| load=5;1;2;0; selfheal_attempts=1;;;0 selfheal_heals_total=1c;;;0"
    )
    assert lines[1:] == ["detail one", "detail two: 3 of 4"]

    ok = run(config, "fine")
    assert ok.returncode == 0
    assert ok.stdout == (
        "FINE OK - OK - fine | load=0.5;1;2;0; users=3;;;0 selfheal_attempts=0;;;0 selfheal_heals_total=0c;;;0\n"
        "all disks mounted\n"
        "all daemons up\n"
    )
    wait_for(lambda: journal_events(state, "action_end", in_flight=True), timeout=10, what="action_end")
    assert heals(marker) == 1
