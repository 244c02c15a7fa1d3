"""A wrapped plugin dies with selfheal when Nagios or NRPE kills its group.

Nagios Core 4 and NRPE start a check as the leader of a new process group
and, on their timeout, SIGKILL that group. selfheal cannot catch SIGKILL,
so a hung plugin it wrapped must be in that group to die too; a plugin in
a group of its own would linger (one more per check interval, for as long
as the hang lasts). selfheal's own timeout must still kill the plugin's
whole tree, but not selfheal.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import popen_selfheal, process_gone, wait_for, write_script


def hanging_plugin(tmp_path: Path) -> tuple[Path, Path]:
    """A plugin that forks a child and hangs; both pids land in a file."""
    pids = tmp_path / "pids"
    plugin = write_script(tmp_path / "check_hang", f"sleep 60 &\necho $$ $! > {pids}\nsleep 60\n")
    return plugin, pids


def started_pids(pids: Path) -> list[int]:
    text = wait_for(lambda: pids.exists() and pids.read_text().strip(), 10, what="the plugin to start")
    return [int(p) for p in text.split()]


def test_the_daemons_group_kill_takes_the_hung_plugin_with_it(tmp_path: Path) -> None:
    plugin, pids = hanging_plugin(tmp_path)
    proc = popen_selfheal(
        "wrap", "--name", "hang", "-t", "30", "--heal", "true", "--state-dir", tmp_path / "state", "--", plugin,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        plugin_pids = started_pids(pids)
        # Nagios's service_check_timeout: SIGKILL to the check's process group.
        os.killpg(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=5) == -signal.SIGKILL
        for pid in plugin_pids:
            wait_for(
                lambda pid=pid: process_gone(pid), 5, what=f"the plugin's process {pid} to die with selfheal"
            )
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pid in started_pids(pids) if pids.exists() else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_own_timeout_as_a_group_leader_kills_the_plugin_tree_and_reports(tmp_path: Path) -> None:
    plugin, pids = hanging_plugin(tmp_path)
    started = time.monotonic()
    proc = popen_selfheal(
        "wrap", "--name", "hang", "-t", "1", "--heal", "true", "--dry-run", "--state-dir", tmp_path / "state",
        "--", plugin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert time.monotonic() - started < 10
    text = out.decode()
    assert proc.returncode == 3, text
    assert text.startswith("HANG UNKNOWN - plugin check_hang timed out after 1s"), text
    for pid in started_pids(pids):
        wait_for(lambda pid=pid: process_gone(pid), 5, what=f"the plugin's process {pid} to be killed")
