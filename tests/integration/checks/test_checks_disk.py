"""The ``disk`` check on a real tmpfs the test mounts, against ``check_disk``, and its clean-up heal.

A fresh 8 MiB tmpfs with a 4 MiB file is exactly 50% used, with 4 MiB
free: static, exact values for the threshold edges.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from checks_support import BIN, c_plugin, check, script
from conftest import journal_events, run_selfheal, wait_for
from e2e.conftest import need

MIB = 2**20


@pytest.fixture
def mount(tmp_path: Path):  # type: ignore[no-untyped-def]
    """An 8 MiB tmpfs with 100 inodes, half full; unmounted afterwards."""
    # Not a plain skip: CI runs as root with SELFHEAL_E2E=require, and a
    # mount that fails there must fail these tests, not hide them. (An
    # existing tmpfs such as /dev/shm is no stand-in: its fill level is
    # shared and moving, and these tests assert exact sizes.)
    need(os.geteuid() == 0, "mounting a tmpfs needs root")
    point = tmp_path / "mnt"
    point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,nr_inodes=100,mode=0755", "tmpfs", str(point)],
        capture_output=True,
        text=True,
    )
    need(done.returncode == 0, f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        (point / "half").write_bytes(b"\0" * 4 * MIB)
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_used_free_and_inodes_with_perfdata(mount: Path) -> None:
    run = check("disk", "-p", mount)
    assert run.code == 0, run.out
    inodes = os.statvfs(mount)
    inode_pct = round(100 * (inodes.f_files - inodes.f_ffree) / inodes.f_files, 2)
    assert run.line == (
        f"DISK OK - {mount}: 50% used, 4 MiB free, {inode_pct:g}% inodes used | "
        f"free=4MB;;;0;8 inodes_used_pct={inode_pct:g}%;;;0;100 used_pct=50%;80;90;0;100"
    )


@pytest.mark.parametrize(
    ("warning", "critical", "code"),
    [
        ("49.9", "90", 1),  # just below the value: above the bound, WARNING
        ("50", "90", 0),  # at the bound: inside 0..50, OK
        ("50.1", "90", 0),
        ("40", "49.9", 2),
        ("40", "50", 1),
        ("@45:55", "90", 1),  # inside an @ range alerts
        ("@50:55", "90", 1),  # its ends count as inside
        ("@50.1:55", "90", 0),
        ("60:", "90", 1),  # less than 60% used warns (a range works both ways)
    ],
)
def test_used_percent_edges(mount: Path, warning: str, critical: str, code: int) -> None:
    run = check("disk", "-p", mount, "-w", warning, "-c", critical)
    assert run.code == code, run.out


@pytest.mark.parametrize(
    ("warning", "critical", "code"),
    [("4:", "2:", 0), ("4.01:", "2:", 1), ("5:", "4:", 1), ("5:", "4.01:", 2)],
)
def test_free_space_edges(mount: Path, warning: str, critical: str, code: int) -> None:
    run = check(
        "disk", "-p", mount, "-w", "100", "-c", "100", "--free-warning", warning, "--free-critical", critical
    )
    assert run.code == code, run.out
    if code:
        assert "4 MiB free (outside range" in run.line


def test_inode_edges(mount: Path) -> None:
    fs = os.statvfs(mount)
    used = round(100 * (fs.f_files - fs.f_ffree) / fs.f_files, 2)
    assert check("disk", "-p", mount, "--inodes-warning", f"{used}").code == 0  # at
    assert check("disk", "-p", mount, "--inodes-warning", f"{used - 0.5}").code == 1  # above
    for n in range(60):  # use up inodes, not space
        (mount / f"empty{n}").touch()
    run = check("disk", "-p", mount, "--inodes-warning", "50", "--inodes-critical", "60")
    assert run.code == 2 and "% inodes used (outside range 0:60)" in run.line, run.out


def test_any_path_on_the_filesystem_counts(mount: Path) -> None:
    (mount / "sub").mkdir()
    assert check("disk", "-p", mount / "sub").perfdata["used_pct"].startswith("50%")


def test_missing_path_is_unknown(tmp_path: Path) -> None:
    run = check("disk", "-p", tmp_path / "nope")
    assert run.code == 3
    assert (
        run.out
        == f"DISK UNKNOWN - cannot read the filesystem of {tmp_path / 'nope'}: No such file or directory\n"
    )


# -- the same state as monitoring-plugins' check_disk ----------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        (["-w", "60", "-c", "70"], ["-w", "40%", "-c", "30%"], 0),  # 50% used
        (["-w", "40", "-c", "70"], ["-w", "60%", "-c", "30%"], 1),
        (["-w", "40", "-c", "45"], ["-w", "60%", "-c", "55%"], 2),
        (
            ["-w", "100", "-c", "100", "--free-warning", "3:", "--free-critical", "1:"],
            ["-w", "3", "-c", "1", "-u", "MiB"],
            0,  # 4 MiB free
        ),
        (
            ["-w", "100", "-c", "100", "--free-warning", "5:", "--free-critical", "1:"],
            ["-w", "5", "-c", "1", "-u", "MiB"],
            1,
        ),
        (
            ["-w", "100", "-c", "100", "--free-warning", "6:", "--free-critical", "5:"],
            ["-w", "6", "-c", "5", "-u", "MiB"],
            2,
        ),
        (["-w", "100", "-c", "100", "--inodes-warning", "1"], ["-w", "0%", "-c", "0%", "-W", "99%"], 1),
        (["-w", "100", "-c", "100", "--inodes-warning", "50"], ["-w", "0%", "-c", "0%", "-W", "50%"], 0),
    ],
)
def test_same_state_as_check_disk(mount: Path, ours: list[str], theirs: list[str], expected: int) -> None:
    """Both say the expected state: agreeing on UNKNOWN (a bad option, say) is no pass."""
    mine = script("disk", "-p", mount, *ours)
    c = c_plugin("check_disk", *theirs, "-p", mount)  # check_disk wants thresholds before -p
    assert (mine.code, c.code) == (expected, expected), (mine.out, c.out)


# -- the clean-up heal --------------------------------------------------------------------


def old(path: Path, days: float, size: int = MIB) -> Path:
    path.write_bytes(b"\0" * size)
    then = time.time() - days * 86400
    os.utime(path, (then, then))
    return path


def log_tree(tmp_path: Path) -> tuple[Path, list[Path], list[Path]]:
    """logs/ with two stale rotated logs, and what must survive: a fresh
    one, an old file that does not match, an old file outside reached by a
    symlink (the link itself old too)."""
    logs = tmp_path / "logs"
    (logs / "deep").mkdir(parents=True)
    stale = [old(logs / "a.log.1", 10, 5), old(logs / "deep" / "b.log.2", 8, 7)]
    outside = old(tmp_path / "outside.log.1", 30, 3)
    keep = [old(logs / "c.log.1", 1, 3), old(logs / "keep.txt", 30, 3), outside]
    (logs / "link.log.9").symlink_to(outside)
    os.utime(logs / "link.log.9", (0, 0), follow_symlinks=False)
    return logs, stale, keep


def test_clean_dry_run_lists_and_deletes_nothing(tmp_path: Path) -> None:
    logs, stale, keep = log_tree(tmp_path)
    run = script("disk", "--clean", logs, "--older-than", "7d", "--match", "*.log.*", "--dry-run")
    assert run.code == 0, run.out
    assert run.out.splitlines() == [
        f"would delete {stale[0]} (5 bytes)",
        f"would delete {stale[1]} (7 bytes)",
        f"dry run: 2 files (12 bytes) under {logs} would be deleted",
    ]
    assert all(p.exists() for p in [*stale, *keep])


def test_clean_deletes_old_matching_regular_files_only(tmp_path: Path) -> None:
    logs, stale, keep = log_tree(tmp_path)
    run = script("disk", "--clean", logs, "--older-than", "7d", "--match", "*.log.*")
    assert run.code == 0, run.out
    assert run.out == f"deleted 2 files (12 bytes) under {logs}\n"
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in keep) and (logs / "link.log.9").is_symlink()


def test_clean_refuses_root_and_needs_an_age(tmp_path: Path) -> None:
    assert (
        script("disk", "--clean", "/", "--older-than", "7d").out
        == "DISK UNKNOWN - bad --clean: refusing to clean up /\n"
    )
    run = script("disk", "--clean", tmp_path)
    assert run.code == 3 and "--older-than: is required with --clean" in run.out


def test_selfheal_run_cleans_up_and_recovers(mount: Path, tmp_path: Path) -> None:
    """The whole loop: disk CRITICAL, the clean-up heal runs detached, then OK."""
    logs = mount / "logs"
    logs.mkdir()
    for n in range(3):
        old(logs / f"app.log.{n}", 10)
    heal = [str(BIN / "check_selfheal_disk"), "--clean", str(logs), "--older-than", "7d"]
    config = tmp_path / "selfheal.yaml"
    state = tmp_path / "state"
    checks = {
        "data": {"check": "disk", "args": {"path": str(mount), "warning": 70, "critical": 80}, "heal": heal}
    }
    config.write_text(json.dumps({"state_dir": str(state), "checks": checks}, indent=2))
    first = run_selfheal("run", "data", "-c", config)
    assert first.returncode == 1, first.stdout  # 7 of 8 MiB used: CRITICAL, healing: WARNING
    assert first.stdout.startswith(
        f"DATA WARNING - {mount}: 87.5% used (outside range 0:80); self-healing: started "
    )
    wait_for(
        lambda: journal_events(state, "action_end", in_flight=True), timeout=15, what="the clean-up to finish"
    )
    assert journal_events(state, "action_end")[0]["exit_code"] == 0
    assert list(logs.iterdir()) == []
    after = run_selfheal("run", "data", "-c", config)
    assert after.returncode == 0, after.stdout
    assert after.stdout.startswith(f"DATA OK - {mount}: 50% used")


def test_selfheal_run_dry_run_lists_what_the_clean_up_would_delete(mount: Path, tmp_path: Path) -> None:
    logs = mount / "logs"
    logs.mkdir()
    stale = [old(logs / f"app.log.{n}", 10) for n in range(3)]
    heal = [str(BIN / "check_selfheal_disk"), "--clean", str(logs), "--older-than", "7d"]
    config = tmp_path / "selfheal.yaml"
    state = tmp_path / "state"
    checks = {"data": {"check": "disk", "args": {"path": str(mount), "critical": 80}, "heal": heal}}
    config.write_text(json.dumps({"state_dir": str(state), "checks": checks}, indent=2))
    result = run_selfheal("run", "data", "-c", config, "--dry-run")
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert "self-healing: would start" in lines[0]
    assert lines[1:] == [
        *(f"check_selfheal_disk: would delete {p} ({MIB} bytes)" for p in stale),
        f"check_selfheal_disk: dry run: 3 files ({3 * MIB} bytes) under {logs} would be deleted",
        "selfheal: dry run, nothing was started or recorded",
    ]
    assert all(p.exists() for p in stale)
    assert journal_events(state) == []


def test_clean_never_leaves_its_filesystem(mount: Path, tmp_path: Path) -> None:
    # tmp_path holds the tmpfs at mnt/: an old file inside it is not ours to delete.
    inside = old(mount / "old-inside.log", 30, 3)
    outside = old(tmp_path / "old-outside.log", 30, 3)
    run = script("disk", "--clean", tmp_path, "--older-than", "1d", "--match", "old-*")
    assert run == (0, f"deleted 1 files (3 bytes) under {tmp_path}\n")
    assert inside.exists() and not outside.exists()


def test_clean_refuses_an_age_of_zero(tmp_path: Path) -> None:
    run = script("disk", "--clean", tmp_path, "--older-than", "0")
    assert run == (3, "DISK UNKNOWN - bad --older-than: must be longer than 0s: 0 would delete every file\n")
