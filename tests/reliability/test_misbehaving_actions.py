"""Actions that misbehave (issue 6, item 6).

- An action that hangs is killed with its whole process tree at
  ``action_timeout``: its process group (tests/integration/test_action_timeout.py) and
  also children that left the group with ``setsid``.
- An action that needs sudo, run by a user sudo does not allow, fails at
  once (``sudo -n``), with sudo's reason journaled.
- An action that is not found is journaled as failed.
- An action that daemonises (double-forks) is not waited on: the runner
  ends when the action does, and the daemon, which is the heal, lives on.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
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
from harness import SERVICE_USER, SharedDir, figure, run_as


@pytest.fixture
def reaper():
    """Kill, at the end, any process a test left behind (by pid file)."""
    pid_files: list[Path] = []
    yield pid_files
    for path in pid_files:
        try:
            os.kill(int(path.read_text()), signal.SIGKILL)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            pass


def heal_once(where: Path, heal: str, *extra: str) -> dict[str, object]:
    state = where / "state"
    result = run_selfheal(
        "wrap", "--name", "act", *extra, "--heal", heal, "--state-dir", state, "--", CHECK_DUMMY, "2", "down"
    )
    assert_no_traceback(result.stdout, result.stderr)
    assert "self-healing: started" in result.stdout, result.stdout
    (end,) = wait_for(lambda: journal_events(state, "action_end", in_flight=True), 30, what="action_end")
    return end  # type: ignore[no-any-return]


TREE = """\
setsid sleep 60 &
echo $! > "$1/escaped.pid"
sh -c 'sleep 60 & echo $! > "$1/grandchild.pid"; wait' sh "$1" &
sleep 60
"""


def test_hung_action_is_killed_with_its_whole_tree(tmp_path: Path, reaper: list[Path]) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    reaper.extend([pids / "escaped.pid", pids / "grandchild.pid"])
    heal = write_script(tmp_path / "hang", TREE)
    end = heal_once(tmp_path, f"{heal} {pids}", "--action-timeout", "2s")
    assert end["timed_out"] is True
    assert "timed out after 2s" in str(end["reason"])
    for name in ("escaped.pid", "grandchild.pid"):
        pid = int((pids / name).read_text())
        # setsid left the action's process group, not its tree.
        wait_for(lambda pid=pid: process_gone(pid), 5, what=f"{name} ({pid}) to be killed")
    figure("action hangs past action_timeout (tree with a setsid child)", 1)


def test_action_not_found_is_journaled_as_failed(tmp_path: Path) -> None:
    end = heal_once(tmp_path, "/nonexistent/heal-me --now")
    assert end["exit_code"] is None
    assert end["reason"] == "cannot execute /nonexistent/heal-me: No such file or directory"
    record = read_record(tmp_path / "state", "act")
    assert "cannot execute" in str(record["attempts"][-1]["error"])  # type: ignore[index]
    # The next check says so instead of guessing.
    again = run_selfheal(
        "wrap", "--name", "act", "--grace", "0", "--heal", "/nonexistent/heal-me --now",
        "--state-dir", tmp_path / "state", "--", CHECK_DUMMY, "2", "down",
    )  # fmt: skip
    assert again.returncode == 2, again.stdout
    assert "failed: cannot execute /nonexistent/heal-me" in again.stdout, again.stdout
    figure("action not found", 1)


DAEMON = """\
# The classic double fork: the daemon's parent exits at once, the daemon
# lives on in a session of its own, still holding the action's stdout.
(setsid sleep 60 & echo $! > "$1") &
wait
echo started
"""


def test_daemonising_action_is_not_waited_on(tmp_path: Path, reaper: list[Path]) -> None:
    pid_file = tmp_path / "daemon.pid"
    reaper.append(pid_file)
    heal = write_script(tmp_path / "daemonise", DAEMON)
    end = heal_once(tmp_path, f"{heal} {pid_file}", "--action-timeout", "30s")
    assert end["exit_code"] == 0 and end["timed_out"] is False
    assert float(end["duration"]) < 10  # type: ignore[arg-type]
    daemon = int(pid_file.read_text())
    assert not process_gone(daemon), "the heal's daemon was killed although the action succeeded"
    runner = int(end["pid"])  # type: ignore[arg-type]
    wait_for(lambda: process_gone(runner), 5, what="the runner to exit")
    figure("action daemonises (double fork)", 1)


@pytest.fixture
def shared():
    where = SharedDir()
    yield where
    where.remove()


def test_sudo_without_a_sudo_rule_fails_fast_with_the_reason(shared: SharedDir) -> None:
    """The nagios user has no sudoers rule here: ``sudo -n`` refuses at once."""
    state = shared.state_dir(owner=SERVICE_USER)
    result = run_as(
        SERVICE_USER, "wrap", "--name", "act", "--sudo", "--heal", "systemctl restart nothing-here",
        "--state-dir", state, "--", CHECK_DUMMY, "2", "down",
    )  # fmt: skip
    assert_no_traceback(result.stdout, result.stderr)
    assert "self-healing: started sudo systemctl restart nothing-here" in result.stdout, result.stdout
    (end,) = wait_for(lambda: journal_events(state, "action_end", in_flight=True), 30, what="action_end")
    assert end["argv"] == ["sudo", "-n", "--", "systemctl", "restart", "nothing-here"]
    assert end["exit_code"] == 1
    assert float(end["duration"]) < 10  # type: ignore[arg-type]  # not action_timeout (2m)
    assert end["timed_out"] is False
    assert "sudo" in str(end["reason"]) and "password is required" in str(end["reason"]), end["reason"]
    figure("action needs sudo, no sudo rule (sudo -n)", 1)
