"""The state dir: atomic records, refusal of unsafe dirs, corrupt records moved aside."""

import json
import os

import pytest

from selfheal.core.record import Attempt, Record
from selfheal.core.states import StateError
from selfheal.edges.store import StateDir, check_name, resolve_state_dir


def test_created_0700_and_record_round_trip(tmp_path):
    path = str(tmp_path / "state")
    with StateDir.open(path) as state_dir:
        record = Record(check="web", streak=2, attempts=[Attempt(id="a1", number=2, started=5.0, argv=["x"])])
        state_dir.write("web", record)
        assert state_dir.read("web") == (record, None)
    assert os.stat(path).st_mode & 0o777 == 0o700
    assert sorted(os.listdir(path)) == ["web.json"]  # no temp file left behind


def test_missing_record_is_empty(tmp_path):
    with StateDir.open(str(tmp_path / "s")) as state_dir:
        assert state_dir.read("web") == (Record(check="web"), None)
        assert state_dir.peek("web") is None


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"version": 1, "check": "web", "str',
        b"not json",
        b"[1, 2]",
        b'{"version": 1, "check": "web", "streak": "x"}',
        b"\xff\xfe",
    ],
    ids=["empty", "truncated", "not-json", "wrong-shape", "wrong-type", "not-utf8"],
)
def test_corrupt_record_is_moved_aside_not_lost(tmp_path, content):
    path = tmp_path / "s"
    with StateDir.open(str(path)) as state_dir:
        (path / "web.json").write_bytes(content)
        record, moved = state_dir.read("web")
        assert record == Record(check="web")
        assert "moved aside" in moved
        aside = [name for name in os.listdir(path) if name.startswith("web.json.corrupt-")]
        assert len(aside) == 1
        assert (path / aside[0]).read_bytes() == content


def test_symlinked_record_is_refused_and_target_untouched(tmp_path):
    path = tmp_path / "s"
    target = tmp_path / "passwd"
    target.write_text("root:x:0:0\n")
    with StateDir.open(str(path)) as state_dir:
        os.symlink(target, path / "web.json")
        with pytest.raises(StateError, match="symlink"):
            state_dir.read("web")
        state_dir.write("web", Record(check="web"))  # replaces the link, never writes through it
    assert target.read_text() == "root:x:0:0\n"
    assert not os.path.islink(path / "web.json")


def test_symlinked_lock_file_is_refused(tmp_path):
    path = tmp_path / "s"
    target = tmp_path / "victim"
    target.write_text("keep me")
    with StateDir.open(str(path)) as state_dir:
        os.symlink(target, path / "web.lock")
        with pytest.raises(StateError, match="symlink"), state_dir.lock("web"):
            pass
    assert target.read_text() == "keep me"


def test_symlinked_state_dir_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    os.symlink(real, tmp_path / "link")
    with pytest.raises(StateError, match="symlink"):
        StateDir.open(str(tmp_path / "link"))


def test_world_writable_state_dir_is_refused(tmp_path):
    path = tmp_path / "s"
    path.mkdir()
    os.chmod(path, 0o777)
    with pytest.raises(StateError, match="writable by everyone"):
        StateDir.open(str(path))


def test_lock_times_out_with_a_state_error(tmp_path):
    with StateDir.open(str(tmp_path / "s")) as state_dir, state_dir.lock("web"):
        # filelock is reentrant within one process; a second StateDir in a
        # child process is what really contends, so use a fresh process.
        import subprocess
        import sys

        code = (
            "from selfheal.edges.store import StateDir\n"
            "from selfheal.core.states import StateError\n"
            f"d = StateDir.open({str(tmp_path / 's')!r})\n"
            "try:\n"
            "    d.lock('web', 0.3).__enter__()\n"
            "except StateError as e:\n"
            "    print('refused:', e)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
        assert result.stdout.startswith("refused: state is locked by another selfheal run"), result


@pytest.mark.parametrize("name", ["", "a/b", "..", ".hidden", "a\nb", "a\0b", "x" * 101, "-rf", "a b"])
def test_hostile_check_names_are_rejected(name):
    with pytest.raises(ValueError):
        check_name(name)


def test_state_dir_precedence():
    env = {"SELFHEAL_STATE_DIR": "/env", "HOME": "/home/x"}
    assert resolve_state_dir("/opt", env, "/cfg") == "/opt"
    assert resolve_state_dir(None, env, "/cfg") == "/env"
    assert resolve_state_dir(None, {"HOME": "/home/x"}, "/cfg") == "/cfg"


def test_record_file_is_json_readable_by_operators(tmp_path):
    with StateDir.open(str(tmp_path / "s")) as state_dir:
        state_dir.write("web", Record(check="web", heals_total=3))
    data = json.loads((tmp_path / "s" / "web.json").read_text())
    assert data["heals_total"] == 3 and data["check"] == "web"
