"""What a heal does while it holds the record's lock stays flat with the number of checks.

Every other run of the check waits behind that lock: rebuilding the
metrics textfile (which reads every check's record) waits until it is
released, and a record write looks only for its own leftover temp file
instead of listing the state dir.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from conftest import journal_events, wait_for

from selfheal import hooks
from selfheal.core.actions import Command
from selfheal.core.policy import Policy
from selfheal.core.record import Record
from selfheal.edges.store import StateDir
from selfheal.engine import Healer


def lock_is_free(state: Path, name: str) -> bool:
    """Whether another open of ``NAME.lock`` could take it right now."""
    fd = os.open(state / f"{name}.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases it, if it was taken
    return True


def test_metrics_are_written_after_the_lock_is_released(tmp_path, monkeypatch):
    state = tmp_path / "state"
    metrics = tmp_path / "selfheal.prom"
    seen: list[bool] = []
    real = hooks.write_metrics

    def observed(path: str, state_dir: str) -> None:
        seen.append(lock_is_free(state, "web"))
        real(path, state_dir)

    monkeypatch.setattr(hooks, "write_metrics", observed)
    healer = Healer("web", Command(["true"]), Policy(), str(state), outputs={"metrics": str(metrics)})
    outcome = healer.handle(2)
    assert outcome.note.startswith("self-healing: started"), outcome.note
    assert seen == [True], "the metrics textfile was rebuilt while the record's lock was held"
    assert 'selfheal_heals_started_total{check="web"} 1' in metrics.read_text()
    wait_for(lambda: journal_events(state, "action_end", in_flight=True), 10, what="the heal to end")


def test_a_record_write_does_not_list_the_state_dir(tmp_path, monkeypatch):
    with StateDir.open(str(tmp_path / "s")) as state_dir:
        leftover = tmp_path / "s" / ".web.json.tmp"  # a write of this record killed midway
        leftover.write_text('{"version": 1, "che')
        other = tmp_path / "s" / ".db.json.tmp"  # another record's: its own write clears it
        other.write_text("{")

        def listed(*args: object) -> None:
            raise AssertionError("a record write listed the whole state dir")

        monkeypatch.setattr(os, "scandir", listed)
        monkeypatch.setattr(os, "listdir", listed)
        state_dir.write("web", Record(check="web", heals_total=3))
        monkeypatch.undo()
        assert not leftover.exists() and other.exists()
        assert state_dir.peek("web").heals_total == 3  # type: ignore[union-attr]


def test_the_attempt_is_on_disk_before_the_runner_starts_and_only_the_pid_write_skips_the_dir_fsync(
    tmp_path, monkeypatch
):
    """Recorded first means durable first: the rename of the record holding
    the attempt is fsynced (the dir) before the runner is spawned. Only the
    second write, the runner's pid, skips that fsync, while Nagios waits."""
    from selfheal.edges.spawner import Spawner
    from selfheal.edges.transient import RunnerStart

    state = tmp_path / "state"
    steps: list[str] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        kind = "dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file"
        steps.append(f"fsync {kind}")
        real_fsync(fd)

    def rename(src: object, dst: object, **kw: object) -> None:
        if str(dst) == "web.json":
            steps.append("rename record")
        real_rename(src, dst, **kw)  # type: ignore[arg-type]

    class Recording(Spawner):
        def spawn_runner(self, spec: dict[str, object], log_fd: int) -> RunnerStart:
            steps.append("spawn")
            return super().spawn_runner(spec, log_fd)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    healer = Healer("web", Command(["true"]), Policy(), str(state), spawner=Recording())
    outcome = healer.handle(2)
    monkeypatch.undo()
    assert outcome.note.startswith("self-healing: started"), outcome.note
    spawn = steps.index("spawn")
    first = steps.index("rename record")
    assert first < spawn and "fsync dir" in steps[first:spawn], steps
    second = steps.index("rename record", spawn)
    assert "fsync dir" not in steps[second:], steps
    wait_for(lambda: journal_events(state, "action_end", in_flight=True), 10, what="the heal to end")
