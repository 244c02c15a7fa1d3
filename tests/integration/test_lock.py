"""The record lock is the lock filelock.FileLock takes, without filelock.

DESIGN.md says the read-decide-write step is serialised by a
``filelock.FileLock``. selfheal takes the same ``flock`` on the same
``NAME.lock`` itself (importing filelock would cost a heal tens of
milliseconds), so these tests hold one side in another process and
prove the other side waits, both ways.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import filelock
import pytest

from selfheal.core.states import StateError
from selfheal.edges.store import StateDir


def hold_in_child(code: str, ready: Path) -> subprocess.Popen[bytes]:
    """Run ``code`` (which takes a lock and touches ``ready``) in a child."""
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)])
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert child.poll() is None, "the lock holder died"
        assert time.monotonic() < deadline, "the lock holder never got the lock"
        time.sleep(0.01)
    return child


def test_a_filelock_holder_keeps_selfheal_out(tmp_path):
    state = tmp_path / "s"
    with StateDir.open(str(state)) as state_dir:
        path = state_dir.lock_path("web")
        ready, release = tmp_path / "ready", tmp_path / "release"
        child = hold_in_child(
            f"""
            import os, time, filelock
            with filelock.FileLock({path!r}):
                open({str(ready)!r}, "w").close()
                while not os.path.exists({str(release)!r}):
                    time.sleep(0.01)
            """,
            ready,
        )
        try:
            with (
                pytest.raises(StateError, match="locked by another selfheal run"),
                state_dir.lock("web", 0.3),
            ):
                pass
        finally:
            release.touch()
            child.wait(30)
        with state_dir.lock("web", 5):  # free again once filelock let go
            pass


def test_selfheal_keeps_a_filelock_user_out(tmp_path):
    state = tmp_path / "s"
    with StateDir.open(str(state)) as state_dir, state_dir.lock("web"):
        code = textwrap.dedent(
            f"""
            import filelock
            try:
                filelock.FileLock({str(state / "web.lock")!r}, timeout=0.3).acquire()
                print("acquired")
            except filelock.Timeout:
                print("timeout")
            """
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert result.stdout.strip() == "timeout", result
    with filelock.FileLock(str(state / "web.lock"), timeout=5):
        pass  # and free after selfheal let go


def test_releasing_keeps_the_lock_file(tmp_path):
    # Deleting a lock file another process holds open breaks mutual exclusion.
    with StateDir.open(str(tmp_path / "s")) as state_dir:
        with state_dir.lock("web"):
            pass
        assert (tmp_path / "s" / "web.lock").is_file()
        with state_dir.lock("web", 0.1):  # and it can be taken again at once
            pass
