"""An action that overruns --action-timeout is killed with its whole process group."""

from __future__ import annotations

import shlex
from pathlib import Path

from conftest import (
    CHECK_DUMMY,
    assert_no_traceback,
    journal_events,
    process_gone,
    read_record,
    run_selfheal,
    wait_for,
    write_script,
)

# The background child ignores SIGTERM: only the SIGKILL that follows the
# TERM to the action's process group ends it.
HEAL = """\
echo $$ > "$1/script.pid"
(trap '' TERM; exec sleep 60) &
echo $! > "$1/child.pid"
sleep 60
echo survived > "$1/survived"
"""


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return int(text) if text.endswith("\n") else None


def test_action_timeout_kills_script_and_its_children(tmp_path: Path) -> None:
    state = tmp_path / "state"
    pids = tmp_path / "pids"
    pids.mkdir()
    heal = write_script(tmp_path / "hang", HEAL)

    result = run_selfheal(
        "wrap",
        "--name",
        "hung",
        "--action-timeout",
        "2s",
        "--heal",
        f"{shlex.quote(str(heal))} {shlex.quote(str(pids))}",
        "--state-dir",
        state,
        "--",
        CHECK_DUMMY,
        "2",
        "down",
        cwd=tmp_path,
    )
    assert_no_traceback(result.stdout, result.stderr)
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("HUNG WARNING - CRITICAL: down; self-healing: started "), result.stdout

    script_pid = wait_for(lambda: read_pid(pids / "script.pid"), timeout=5, what="the script's pid")
    child_pid = wait_for(lambda: read_pid(pids / "child.pid"), timeout=5, what="the child's pid")
    assert not process_gone(script_pid)
    assert not process_gone(child_pid)

    (end,) = wait_for(
        lambda: journal_events(state, "action_end", in_flight=True), timeout=12, what="action_end"
    )
    assert end["timed_out"] is True
    assert end["check"] == "hung"
    assert end["exit_code"] != 0
    assert 2.0 <= end["duration"] < 10.0  # type: ignore[operator]
    assert "timed out" in str(end["reason"])

    wait_for(lambda: process_gone(script_pid), timeout=3, what=f"the script (pid {script_pid}) to die")
    wait_for(lambda: process_gone(child_pid), timeout=3, what=f"the script's child (pid {child_pid}) to die")
    assert not (pids / "survived").exists()

    last = read_record(state, "hung")["attempts"][-1]  # type: ignore[index]
    assert last["timed_out"] is True
    assert last["ended"] is not None
    assert last["duration"] >= 2.0
