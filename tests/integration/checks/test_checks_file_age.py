"""The ``file_age`` check on real files with set mtimes, and against ``check_file_age``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from checks_support import c_plugin, check, script


def aged(path: Path, seconds: float, size: int = 10) -> Path:
    path.write_bytes(b"x" * size)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_fresh_file_is_ok_with_age_and_size_perfdata(tmp_path: Path) -> None:
    path = aged(tmp_path / "heartbeat", 5, size=42)
    run = check("file_age", "-f", path)
    assert run.code == 0, run.out
    assert run.line.startswith(f"FILE_AGE OK - {path} is ")
    assert run.perfdata["size"] == "42B;;;0"
    age, warn, crit = run.perfdata["age"].split(";")
    assert 5 <= int(age.rstrip("s")) <= 15 and (warn, crit) == ("240", "600")  # check_file_age's defaults


@pytest.mark.parametrize(
    ("age", "code"),
    [(200, 0), (300, 1), (700, 2)],  # well inside, past -w 240, past -c 600 (margins: the clock moves)
)
def test_default_age_thresholds(tmp_path: Path, age: int, code: int) -> None:
    assert check("file_age", "-f", aged(tmp_path / "f", age)).code == code


@pytest.mark.parametrize(
    ("size", "warning", "critical", "code"),
    [
        (99, "100:", "50:", 1),  # just below the warning bound
        (100, "100:", "50:", 0),  # at it: inside the range is fine
        (101, "100:", "50:", 0),
        (49, "100:", "50:", 2),
        (50, "100:", "50:", 1),  # at the critical bound: only WARNING
        (0, "~:0", "1:", 2),  # empty file: -C 1:
        (15, "@10:20", "1000", 1),  # inside an @ range alerts
        (10, "@10:20", "1000", 1),  # the @ range's ends are inside
        (21, "@10:20", "1000", 0),  # outside it does not
        (9, "@10:20", "1000", 0),
    ],
)
def test_size_threshold_edges(tmp_path: Path, size: int, warning: str, critical: str, code: int) -> None:
    path = aged(tmp_path / "f", 1, size=size)
    run = check("file_age", "-f", path, "-W", warning, "-C", critical)
    assert run.code == code, run.out
    if code:
        assert f"{size} bytes (outside range" in run.line or f"{size} bytes (inside range" in run.line


def test_age_edges_with_margins(tmp_path: Path) -> None:
    path = aged(tmp_path / "f", 1000)
    assert check("file_age", "-f", path, "-w", "1100", "-c", "1200").code == 0
    assert check("file_age", "-f", path, "-w", "900", "-c", "1200").code == 1
    assert check("file_age", "-f", path, "-w", "900", "-c", "950").code == 2
    assert check("file_age", "-f", path, "-w", "@900:1100", "-c", "5000").code == 1
    assert check("file_age", "-f", path, "-w", "1100:", "-c", "5000").code == 1  # younger than 1100s warns


def test_missing_file_is_critical_or_ok_with_ignore_missing(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    run = check("file_age", "-f", missing)
    assert (run.code, run.out) == (2, f"FILE_AGE CRITICAL - {missing} does not exist\n")
    assert check("file_age", "-f", missing, "-i").code == 0


def test_a_file_that_cannot_be_examined_is_unknown(tmp_path: Path) -> None:
    # A symlink loop: stat fails with ELOOP, even for root. Not CRITICAL:
    # nothing says the file is stale, and no heal should start on it.
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    run = check("file_age", "-f", loop)
    assert (run.code, run.out) == (
        3,
        f"FILE_AGE UNKNOWN - cannot stat {loop}: Too many levels of symbolic links\n",
    )


# -- the same state as monitoring-plugins' check_file_age --------------------------


@pytest.mark.parametrize(
    ("age", "size", "ours", "theirs", "expected"),
    [
        (30, 10, [], [], 0),  # the defaults: -w 240 -c 600
        (300, 10, [], [], 1),
        (700, 10, [], [], 2),
        (30, 10, ["-w", "10", "-c", "20"], ["-w", "10", "-c", "20"], 2),
        (30, 10, ["-W", "100:"], ["-W", "100"], 1),
        (30, 10, ["-W", "100:", "-C", "50:"], ["-W", "100", "-C", "50"], 2),
        (30, 500, ["-W", "100:", "-C", "50:"], ["-W", "100", "-C", "50"], 0),
    ],
)
def test_same_state_as_check_file_age(
    tmp_path: Path, age: int, size: int, ours: list[str], theirs: list[str], expected: int
) -> None:
    """Both say the expected state: agreeing on UNKNOWN (a bad option, say) is no pass."""
    path = aged(tmp_path / "f", age, size=size)
    mine = script("file_age", "-f", path, *ours)
    c = c_plugin("check_file_age", "-f", path, *theirs)
    assert (mine.code, c.code) == (expected, expected), (mine.out, c.out)


def test_same_state_as_check_file_age_for_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    assert script("file_age", "-f", missing).code == c_plugin("check_file_age", "-f", missing).code == 2
    assert (
        script("file_age", "-f", missing, "-i").code
        == c_plugin("check_file_age", "-f", missing, "-i").code
        == 0
    )
