"""Runner identity from /proc: the same start time psutil reports.

Records store the runner's pid and start time together, so a reused pid
never passes for a running heal. selfheal reads the start time from
/proc (psutil's import would cost every heal); these tests hold it to
psutil's figure and check the alive / dead / zombie / reused cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from selfheal.edges.proc import proc_stat
from selfheal.edges.spawner import Spawner


def test_start_time_equals_psutils():
    spawner = Spawner()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        ours = spawner.create_time(child.pid)
        assert ours == psutil.Process(child.pid).create_time()
        assert spawner.runner_alive(child.pid, ours)
        # Same pid, other start time: a reused pid is not our runner.
        assert not spawner.runner_alive(child.pid, ours - 1)
        assert not spawner.runner_alive(child.pid, None)
    finally:
        child.kill()
        child.wait()
    assert spawner.create_time(child.pid) is None
    assert not spawner.runner_alive(child.pid, ours)


def test_a_zombie_is_not_alive():
    spawner = Spawner()
    pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ)
    deadline = time.monotonic() + 10
    while (proc_stat(pid) or ("",))[0] != "Z":  # exited, not yet reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        assert not spawner.runner_alive(pid, spawner.create_time(pid))
    finally:
        os.waitpid(pid, 0)


def test_a_command_name_with_spaces_and_parentheses(tmp_path):
    # The name field of /proc/PID/stat is free text; the fields after it
    # must still be found.
    odd = tmp_path / "odd) (name"
    odd.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(odd), "30"])
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(child.pid).name() != "odd) (name":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        state, started = proc_stat(child.pid)
        assert state in "RS"
        assert started == psutil.Process(child.pid).create_time()
    finally:
        child.kill()
        child.wait()
