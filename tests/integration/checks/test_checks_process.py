"""The ``process`` check on processes the test spawns, against ``check_procs``, and the kill heal.

Each test runs a private copy of ``sleep`` under a unique name, so the
counts are exact and no other process on this shared machine matches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from checks_support import c_plugin, check, script
from conftest import process_gone, wait_for


class Spawned:
    """Processes started by a test, all killed at the end."""

    def __init__(self, tmp_path: Path) -> None:
        self.name = "shp" + uuid.uuid4().hex[:8]  # under 15 characters: the kernel's comm
        self.binary = tmp_path / self.name
        shutil.copy("/bin/sleep", self.binary)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *argv: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            list(argv) or [str(self.binary), "300"], stdin=subprocess.DEVNULL, start_new_session=True
        )
        self.procs.append(proc)
        return proc

    def sleepers(self, count: int) -> list[subprocess.Popen[bytes]]:
        procs = [self.start() for _ in range(count)]
        wait_for(
            lambda: all(Path(f"/proc/{p.pid}/comm").read_text().strip() == self.name for p in procs),
            5,
            what="exec",
        )
        return procs

    def stop(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, 9)
            except ProcessLookupError:
                pass
            proc.wait()


@pytest.fixture
def spawned(tmp_path: Path):  # type: ignore[no-untyped-def]
    spawn = Spawned(tmp_path)
    yield spawn
    spawn.stop()


def test_count_by_name_with_perfdata(spawned: Spawned) -> None:
    spawned.sleepers(3)
    run = check("process", "-C", spawned.name)
    assert run.code == 0, run.out
    assert run.line.startswith(f"PROCESS OK - 3 processes named {spawned.name}, largest RSS ")
    assert run.perfdata["procs"] == "3;;1:;0"
    assert run.perfdata["zombies"] == "0;;;0" and run.perfdata["dstate"] == "0;;;0"
    assert run.perfdata["rss_max"].endswith("MB;;;0")


def test_nothing_running_is_critical_by_default(spawned: Spawned) -> None:
    run = check("process", "-C", spawned.name)
    assert run.code == 2
    assert run.line.startswith(f"PROCESS CRITICAL - 0 processes named {spawned.name} (outside range 1:)")


@pytest.mark.parametrize(
    ("warning", "critical", "code"),
    [
        ("2", "1:", 1),  # 3 is just above 0..2
        ("3", "1:", 0),  # at the bound
        ("4", "1:", 0),
        ("1:", "4:", 2),  # just below 4:
        ("1:", "3:", 0),  # at it
        ("@3:5", "1:", 1),  # inside an @ range
        ("@4:5", "1:", 0),
        ("~:2", "1:", 1),
        ("3:3", "3:3", 0),
    ],
)
def test_count_threshold_edges(spawned: Spawned, warning: str, critical: str, code: int) -> None:
    spawned.sleepers(3)
    run = check("process", "-C", spawned.name, "-w", warning, "-c", critical)
    assert run.code == code, run.out


def test_command_line_regex_and_user(spawned: Spawned) -> None:
    spawned.sleepers(2)
    spawned.start(str(spawned.binary), "300", "7")
    wait_for(
        lambda: (
            len(spawned.procs) == 3
            and check("process", "-C", spawned.name).perfdata["procs"].startswith("3;")
        ),
        5,
    )
    assert check("process", "-a", rf"{spawned.name} 300 7$").perfdata["procs"].startswith("1;")
    assert check("process", "-a", rf"{spawned.name} 300$").perfdata["procs"].startswith("2;")
    assert check("process", "-C", spawned.name, "-u", "root").perfdata["procs"].startswith("3;")
    assert check("process", "-C", spawned.name, "-u", "nagios").perfdata["procs"].startswith("0;")
    assert check("process", "-u", "no-such-user-here").out == (
        "PROCESS UNKNOWN - bad --user: no such user 'no-such-user-here'\n"
    )


def test_the_check_never_counts_itself(spawned: Spawned) -> None:
    # The console script's own command line matches the regex; it must not count.
    run = script("process", "-a", f"marker-{spawned.name}", "-c", "0")
    assert run.code == 0, run.out
    assert run.perfdata["procs"].startswith("0;")


def test_pidfile_running_stale_missing_and_garbage(spawned: Spawned, tmp_path: Path) -> None:
    first, _ = spawned.sleepers(2)
    pidfile = tmp_path / "d.pid"
    pidfile.write_text(f"{first.pid}\n")
    assert check("process", "-p", pidfile).perfdata["procs"].startswith("1;")
    reused = check("process", "-p", pidfile, "-C", "not-that")  # the pid now runs something else
    assert reused.perfdata["procs"].startswith("0;")
    assert f"(stale pidfile {pidfile}: pid {first.pid} is {spawned.name})" in reused.line
    gone = subprocess.Popen(["true"])
    gone.wait()
    pidfile.write_text(f"{gone.pid}\n")
    stale = check("process", "-p", pidfile)
    assert stale.code == 2
    assert f"(stale pidfile {pidfile} (no process {gone.pid}))" in stale.line
    missing = check("process", "-p", tmp_path / "none.pid")
    assert missing.code == 2 and f"(pidfile {tmp_path / 'none.pid'} is missing)" in missing.line
    pidfile.write_text("garbage\n")
    assert "holds no pid" in check("process", "-p", pidfile).line


def test_zombies_are_not_running_but_are_counted(spawned: Spawned) -> None:
    # The child exits at once; its parent exec'd into sleep, which never reaps it.
    binary = str(spawned.binary)
    parent = spawned.start("/bin/sh", "-c", '"$0" 0 & exec "$0" 300', binary)
    wait_for(
        lambda: check("process", "-C", spawned.name).perfdata["zombies"].startswith("1;"), 10, what="a zombie"
    )
    run = check("process", "-C", spawned.name, "--zombies-warning", "0")
    assert run.code == 1, run.out
    assert run.line.startswith(f"PROCESS WARNING - 1 zombies named {spawned.name} (outside range 0:0)")
    assert run.perfdata["procs"].startswith("1;")  # only the parent runs
    assert parent.poll() is None


VFORK_PARENT = """
import ctypes
libc = ctypes.CDLL(None)
# The parent of a vfork waits in uninterruptible sleep (state D) until its
# child execs or exits; this child just sleeps. A real D state, no root needed.
if libc.vfork() == 0:
    libc.sleep(300)
    libc._exit(0)
"""


def test_processes_stuck_in_d_state_are_counted(spawned: Spawned) -> None:
    marker = f"stuck-{spawned.name}"
    spawned.start(sys.executable, "-c", VFORK_PARENT, marker)
    wait_for(lambda: check("process", "-a", marker).perfdata["dstate"].startswith("1;"), 10, what="state D")
    run = check("process", "-a", marker, "--dstate-warning", "0", "--dstate-critical", "1")
    assert run.code == 1, run.out
    assert f"1 in uninterruptible sleep (D) matching '{marker}' (outside range 0:0)" in run.line
    assert run.perfdata["procs"].startswith("2;")  # the parent (D) and its child (S) both run
    assert check("process", "-a", marker, "--dstate-critical", "0").code == 2


def test_rss_and_cpu_of_the_largest_process(spawned: Spawned) -> None:
    marker = f"hog-{spawned.name}"
    spawned.start(sys.executable, "-c", "import time; x = bytearray(64 << 20); time.sleep(300)", marker)
    spawned.start(sys.executable, "-c", "while True: pass", marker)
    wait_for(
        lambda: float(check("process", "-a", marker).perfdata["rss_max"].split("MB")[0]) > 60,
        10,
        what="64 MiB",
    )
    time.sleep(0.5)
    assert check("process", "-a", marker, "--rss-warning", "1000").code == 0
    run = check("process", "-a", marker, "--rss-critical", "32")
    assert run.code == 2 and "largest RSS" in run.line and "(outside range 0:32)" in run.line
    busy = check("process", "-a", marker, "--cpu-warning", "1")  # the busy loop: well over 1% of its life
    assert busy.code == 1 and "highest CPU" in busy.line, busy.out


# -- the kill heal ------------------------------------------------------------------


def test_kill_terminates_the_whole_tree_then_restarts(spawned: Spawned, tmp_path: Path) -> None:
    marker = f"tree-{spawned.name}"
    # A parent that ignores SIGTERM (so SIGKILL is needed) with two children.
    # It blocks in the shell's own read on a FIFO: a polling loop would
    # start short-lived children of its own, and the count of the tree
    # would depend on whether one happened to be alive.
    fifo = tmp_path / "block"
    os.mkfifo(fifo)
    tree = spawned.start(
        "/bin/sh",
        "-c",
        f'trap "" TERM; "{spawned.binary}" 300 & "{spawned.binary}" 301 & exec 3<>"{fifo}"; read x <&3',
        marker,
    )
    wait_for(
        lambda: check("process", "-C", spawned.name).perfdata["procs"].startswith("2;"),
        5,
        what="the children",
    )
    import psutil

    members = [tree.pid, *(c.pid for c in psutil.Process(tree.pid).children(recursive=True))]
    restarted = tmp_path / "restarted"
    run = script("process", "--kill", "-a", marker, "--kill-wait", "1", "--", "touch", restarted)
    assert run.code == 0, run.out
    assert run.out.startswith(f"terminated {len(members)} processes matching '{marker}'")
    tree.wait(timeout=10)
    assert all(process_gone(pid) for pid in members)
    assert restarted.exists()


def test_kill_only_the_processes_over_the_threshold(spawned: Spawned) -> None:
    marker = f"rss-{spawned.name}"
    big = spawned.start(sys.executable, "-c", "import time; x = bytearray(64 << 20); time.sleep(300)", marker)
    small = spawned.start(sys.executable, "-c", "import time; time.sleep(300)", marker)
    wait_for(
        lambda: float(check("process", "-a", marker).perfdata["rss_max"].split("MB")[0]) > 60,
        10,
        what="64 MiB",
    )
    run = script("process", "--kill", "-a", marker, "--rss-critical", "32", "--kill-wait", "5")
    assert run.code == 0 and run.out.startswith("terminated 1 processes"), run.out
    big.wait(timeout=10)
    assert small.poll() is None


def test_kill_dry_run_lists_the_tree_and_kills_nothing(spawned: Spawned, tmp_path: Path) -> None:
    marker = f"dry-{spawned.name}"
    tree = spawned.start("/bin/sh", "-c", f'"{spawned.binary}" 300 & wait', marker)
    wait_for(
        lambda: check("process", "-C", spawned.name).perfdata["procs"].startswith("1;"), 5, what="the child"
    )
    restarted = tmp_path / "restarted"
    run = script("process", "--kill", "-a", marker, "--dry-run", "--", "touch", restarted)
    assert run.code == 0, run.out
    lines = run.out.splitlines()
    assert lines[0].startswith(f"would terminate {tree.pid} /bin/sh -c ")
    assert lines[1].startswith("would terminate ") and lines[1].endswith(f"{spawned.binary} 300")
    assert (
        lines[2]
        == f"dry run: 1 processes matching '{marker}' would be terminated with their children, then run touch {restarted}"
    )
    assert tree.poll() is None and not restarted.exists()


def test_kill_needs_a_filter() -> None:
    run = script("process", "--kill")
    assert run.code == 3
    assert run.out == "PROCESS UNKNOWN - bad --kill: needs -C, -a, -p or -u: it will not kill every process\n"


# -- the same state as monitoring-plugins' check_procs ------------------------------


@pytest.mark.parametrize(
    ("count", "args", "expected"),
    [
        (3, ["-w", "1:5", "-c", "1:10"], 0),
        (3, ["-w", "1:2", "-c", "1:10"], 1),
        (3, ["-w", "1:2", "-c", "1:2"], 2),
        (0, ["-w", "1:2", "-c", "1:2"], 2),
        (3, ["-w", "@3:3", "-c", "1:"], 1),
        (3, ["-w", "3", "-c", "3:"], 0),
        (2, ["-u", "root", "-c", "2:2"], 0),  # the sleepers are root's
        (2, ["-u", "nagios", "-c", "2:2"], 2),
    ],
)
def test_same_state_as_check_procs(spawned: Spawned, count: int, args: list[str], expected: int) -> None:
    """Both say the expected state: agreeing on UNKNOWN (a bad option, say) is no pass."""
    if count:
        spawned.sleepers(count)
    mine = script("process", "-C", spawned.name, *args)
    c = c_plugin("check_procs", "-C", spawned.name, *args)
    assert (mine.code, c.code) == (expected, expected), (mine.out, c.out)
