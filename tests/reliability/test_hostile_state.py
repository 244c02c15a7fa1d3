"""Hostile and broken state (issue 6, item 3).

Each case ends in DESIGN.md row 4 ("self-healing disabled: <why>",
CRITICAL) or in a safe recovery (a corrupt record moved aside, journaled,
then a fresh record), and never in a heal without a record or a write
through a link. The unit tests of ``StateDir`` (tests/integration/test_state.py) check
the same rules one call at a time; here the whole command line runs.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY, assert_no_traceback, journal_events, read_record, wait_for, write_script
from harness import SERVICE_USER, SharedDir, figure, run_as

from selfheal.cli import main

NAME = "web"


def heal_marker(where: Path) -> tuple[str, Path]:
    marker = where / "healed"
    script = write_script(where / "heal", 'echo "$$" >> "$1"\n')
    script.parent.chmod(0o755)
    return f"{script} {marker}", marker


def invoke(state: Path, heal: str, *extra: str) -> tuple[int, str]:
    """One CRITICAL check run, in this process, through the real command line."""
    out = io.StringIO()
    code = main(
        [
            "wrap",
            "--name",
            NAME,
            *extra,
            "--heal",
            heal,
            "--state-dir",
            str(state),
            "--",
            CHECK_DUMMY,
            "2",
            "down",
        ],
        env={"PATH": os.environ.get("PATH", "")},
        stdout=out,
    )
    text = out.getvalue()
    assert_no_traceback(text)
    assert len(text.splitlines()) == 1, text
    assert text.startswith(f"{NAME.upper()} "), text
    return code, text


def assert_refused(code: int, text: str, why: str) -> None:
    assert code == 2, text
    assert "self-healing disabled: " in text, text
    assert why in text, text


def assert_never_healed(marker: Path) -> None:
    # Runners start within milliseconds; give a wrongly started one time to show.
    time.sleep(0.3)
    assert not marker.exists(), "a heal ran although the state was refused"


CORRUPT = {
    "truncated": b'{"version": 1, "check": "web", "streak": 1, "attempts": [{"id": "a1", "numb',
    "empty": b"",
    "not-json": b"<html>disk error</html>\n",
    "wrong-shape": b'{"version": 1, "check": "web", "attempts": {"id": "a1"}}',
    "wrong-check": b'{"version": 1, "check": "db"}',
    "huge": b"[" + b" " * (2 << 20) + b"]",
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_record_is_moved_aside_journaled_and_replaced(tmp_path: Path, case: str) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / f"{NAME}.json").write_bytes(CORRUPT[case])
    heal, marker = heal_marker(tmp_path)
    code, text = invoke(state, heal)
    # Safe recovery: the check heals as if it had no record, with a new one.
    assert code == 1 and "self-healing: started" in text, text
    (aside,) = state.glob(f"{NAME}.json.corrupt-*")
    assert aside.read_bytes() == CORRUPT[case]  # moved aside, never overwritten
    (error,) = journal_events(state, "state_error")
    assert "moved aside" in str(error["reason"]) and aside.name in str(error["reason"])
    record = read_record(state, NAME)
    assert len(record["attempts"]) == 1  # type: ignore[arg-type]
    wait_for(marker.exists, 10, what="the heal")
    figure(f"corrupt record: {case}", 1)


def test_symlinked_record_is_refused_and_never_written_through(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    passwd = tmp_path / "passwd"
    shutil.copyfile("/etc/passwd", passwd)
    before = passwd.read_bytes()
    os.symlink(passwd, state / f"{NAME}.json")
    heal, marker = heal_marker(tmp_path)
    for _ in range(2):  # and again: nothing was "repaired" through the link
        code, text = invoke(state, heal)
        assert_refused(code, text, "symlink")
    assert passwd.read_bytes() == before
    assert os.path.islink(state / f"{NAME}.json")
    assert_never_healed(marker)
    figure("record is a symlink (to a copy of /etc/passwd)", 2)


def test_symlinked_lock_and_journal_are_never_followed(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    os.symlink(victim, state / f"{NAME}.lock")
    heal, marker = heal_marker(tmp_path)
    code, text = invoke(state, heal)
    assert_refused(code, text, "symlink")
    os.unlink(state / f"{NAME}.lock")
    (state / "journal.jsonl").unlink()  # it journaled the refusal
    os.symlink(victim, state / "journal.jsonl")
    code, text = invoke(state, heal)
    assert_refused(code, text, "symlink")
    assert victim.read_text() == "keep"
    assert_never_healed(marker)
    figure("lock file or journal is a symlink", 2)


def test_symlinked_state_dir_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(real, tmp_path / "state")
    heal, marker = heal_marker(tmp_path)
    code, text = invoke(tmp_path / "state", heal)
    assert_refused(code, text, "symlink")
    assert os.listdir(real) == []
    assert_never_healed(marker)
    figure("state dir is a symlink", 1)


def test_world_writable_state_dir_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    heal, marker = heal_marker(tmp_path)
    code, text = invoke(state, heal)
    assert_refused(code, text, "writable by everyone")
    assert os.listdir(state) == []
    assert_never_healed(marker)
    figure("world-writable state dir", 1)


@pytest.fixture
def shared():
    where = SharedDir()
    yield where
    where.remove()


def assert_refused_to_service_user(shared: SharedDir, state: Path, why: str) -> None:
    """A CRITICAL run as the nagios user gets row 4, writes nothing, heals nothing."""
    heal, marker = heal_marker(shared.path)
    args = ("wrap", "--name", NAME, "--heal", heal, "--state-dir", state, "--", CHECK_DUMMY, "2", "down")
    result = run_as(SERVICE_USER, *args)
    assert_no_traceback(result.stdout, result.stderr)
    assert_refused(result.returncode, result.stdout, why)
    assert os.listdir(state) == []
    assert_never_healed(marker)


def test_state_dir_owned_by_another_user_is_refused(shared: SharedDir) -> None:
    state = shared.state_dir()  # root's, 0755 so that nagios may look in
    state.chmod(0o755)
    assert_refused_to_service_user(shared, state, "owned by uid 0")
    figure("state dir owned by another user", 1)


def test_unwritable_state_dir_is_refused(shared: SharedDir) -> None:
    state = shared.state_dir(owner=SERVICE_USER, mode=0o500)
    assert_refused_to_service_user(shared, state, "not writable")
    figure("unwritable state dir (as the nagios user)", 1)


def test_future_timestamps_do_not_make_an_endless_cooldown(tmp_path: Path) -> None:
    """The clock was stepped back a day: the cooldown lasts its own length, not a day."""
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    future = time.time() + 86400
    attempt = {
        "id": "a1", "number": 1, "started": future - 10, "action": "x", "argv": ["x"], "pid": 1,
        "create_time": 0.0, "ended": future, "exit_code": 1, "duration": 10.0,
    }  # fmt: skip
    record = {
        "version": 1, "check": NAME, "last_state": 2, "last_change": future, "streak": 1,
        "heals_total": 1, "open_since": future, "attempts": [attempt],
    }  # fmt: skip
    (state / f"{NAME}.json").write_text(json.dumps(record))
    heal, marker = heal_marker(tmp_path)
    policy = ("--cooldown", "2s", "--grace", "0")
    code, text = invoke(state, heal, *policy)
    assert code == 2 and "self-healing did not help: attempt 1" in text, text
    clamped = read_record(state, NAME)
    assert clamped["attempts"][0]["ended"] <= time.time()  # type: ignore[index]
    time.sleep(2.2)
    code, text = invoke(state, heal, *policy)
    # A retry after "did not help" was shown stays CRITICAL (retry_state).
    assert code == 2 and "self-healing: retrying" in text, text
    wait_for(marker.exists, 10, what="the heal after the cooldown")
    figure("timestamps a day in the future (clock stepped back)", 2)


# -- a full disk -------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A state dir on a full file system: a small tmpfs, else an injected ENOSPC.

    Yields (state dir, fill) where ``fill()`` makes the disk full. The
    state dir holds a record first, written while there was room.
    """
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    state = mount / "state"

    def fill() -> None:
        if mounted:
            fd = os.open(mount / "ballast", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while True:
                    os.write(fd, b"x" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
            finally:
                os.close(fd)
            return
        real_write = os.write

        def no_space(fd: int, data: bytes) -> int:
            if fd > 2:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", no_space)

    try:
        yield state, fill, "tmpfs" if mounted else "injected"
    finally:
        monkeypatch.undo()
        if mounted:
            subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_refuses_to_heal_and_keeps_the_old_record(tmp_path: Path, full_disk) -> None:  # type: ignore[no-untyped-def]
    state, fill, how = full_disk
    heal, marker = heal_marker(tmp_path)
    policy = ("--cooldown", "1", "--grace", "0")
    code, text = invoke(state, heal, *policy)
    assert code == 1 and "self-healing: started" in text, text
    wait_for(lambda: journal_events(state, "action_end", in_flight=True), 10, what="the first heal to end")
    before = (state / f"{NAME}.json").read_bytes()
    time.sleep(1.1)  # the cooldown is over: the next CRITICAL would heal
    fill()
    code, text = invoke(state, heal, *policy)
    assert_refused(code, text, "No space left on device")
    code, text = invoke(state, heal, *policy)  # and once more, still full
    assert_refused(code, text, "No space left on device")
    assert (state / f"{NAME}.json").read_bytes() == before  # the old record is whole
    assert json.loads(before)["heals_total"] == 1
    assert marker.read_text().count("\n") == 1  # no second heal without its record
    assert not list(state.glob(f".{NAME}.json*.tmp"))  # no half-written temp file left
    figure(f"full disk ({how})", 2)


def test_temp_files_left_by_a_killed_write_are_removed_by_the_next_one(tmp_path: Path) -> None:
    """A plugin killed mid-write leaves ``.web.json.tmp``; the next write replaces it.

    Record writes hold the record's lock, so the temp name is fixed and a
    leftover is found without listing the state dir.
    """
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    stale = [state / f".{NAME}.json.tmp"]
    for path in stale:
        path.write_text('{"version": 1, "check": "web", "stre')
    other = state / ".db.json.tmp"  # another check's: its own writes clean it
    other.write_text("{")
    heal, marker = heal_marker(tmp_path)
    code, text = invoke(state, heal)
    assert code == 1 and "self-healing: started" in text, text
    assert not any(path.exists() for path in stale)
    assert other.exists()
    assert read_record(state, NAME)["heals_total"] == 1
    wait_for(marker.exists, 10, what="the heal")
    figure("temp files of a killed record write", 1)
