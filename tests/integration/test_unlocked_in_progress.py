"""A CRITICAL run that would change nothing does not queue for the lock.

While a heal runs, every CRITICAL run of the check answers "in progress"
(row 5) and writes nothing. Those runs read the record without the lock;
any decision that writes, journals or heals still takes it. The lock is
spied on (the real StateDir.lock, wrapped) to see which path was taken.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from selfheal.core import states
from selfheal.core.actions import Command
from selfheal.core.policy import Policy
from selfheal.core.record import Attempt, Record
from selfheal.edges.spawner import Spawner
from selfheal.edges.store import StateDir
from selfheal.engine import Healer


@pytest.fixture
def lock_calls(monkeypatch):
    calls: list[str] = []
    real = StateDir.lock

    def spy(self, name, *args, **kwargs):
        calls.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(StateDir, "lock", spy)
    return calls


def record_with_attempt(state_dir, pid, create_time, ended=None):
    now = time.time()
    attempt = Attempt(
        id="a1", number=1, started=now - 2, action="true", argv=["true"], pid=pid, create_time=create_time,
        ended=ended,
    )  # fmt: skip
    record = Record(check="web", last_state=states.CRITICAL, last_change=now - 2, open_since=now - 2,
                    streak=1, attempts=[attempt], heals_total=1)  # fmt: skip
    with StateDir.open(str(state_dir)) as opened:
        opened.write("web", record)
    return (state_dir / "web.json").read_bytes()


def healer(state_dir):
    return Healer("web", Command(["true"]), Policy(), str(state_dir))


def test_in_progress_is_answered_without_the_lock(tmp_path, lock_calls):
    # This test process stands in for the running heal's runner.
    me = os.getpid()
    before = record_with_attempt(tmp_path / "s", me, Spawner().create_time(me))
    outcome = healer(tmp_path / "s").handle(states.CRITICAL)
    assert outcome.decision.row == 5 and outcome.state == states.WARNING
    assert "in progress" in outcome.note
    assert lock_calls == []
    assert (tmp_path / "s" / "web.json").read_bytes() == before  # nothing written


def test_a_lost_runner_is_closed_under_the_lock(tmp_path, lock_calls):
    # A dead runner (no such pid) changes the record: that takes the lock.
    record_with_attempt(tmp_path / "s", 2**22 + 12345, 1.0)
    outcome = healer(tmp_path / "s").handle(states.CRITICAL)
    assert lock_calls == ["web"]
    assert outcome.decision.row != 5


def test_a_run_waiting_for_the_lock_answers_once_the_heal_is_recorded(tmp_path, monkeypatch):
    # Another run holds the lock (a child process), and records its heal
    # while this run waits: this run reads it and answers "in progress"
    # without ever getting the lock, and without giving up on it first.
    state = tmp_path / "s"
    StateDir.open(str(state)).close()
    ready, release = tmp_path / "ready", tmp_path / "release"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os, time
                from selfheal.edges.store import StateDir
                with StateDir.open({str(state)!r}) as d, d.lock("web"):
                    open({str(ready)!r}, "w").close()
                    while not os.path.exists({str(release)!r}):
                        time.sleep(0.01)
                """
            ),
        ]
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        gave_up: list[object] = []
        real_contended = Healer._contended
        monkeypatch.setattr(
            Healer, "_contended", lambda self, *args: gave_up.append(args) or real_contended(self, *args)
        )
        me = os.getpid()
        writer = threading.Timer(0.3, record_with_attempt, (state, me, Spawner().create_time(me)))
        writer.start()
        outcome = healer(state).handle(states.CRITICAL)
        writer.join()
        assert outcome.decision.row == 5 and "in progress" in outcome.note
        assert gave_up == []  # answered from the record, not after the lock timed out
        assert holder.poll() is None  # and the other run still held the lock
    finally:
        release.touch()
        holder.wait(30)
