"""The heal is detached as NRPE and Nagios Core need (DESIGN.md section 3).

NRPE reads the plugin's stdout until EOF, so the heal must not hold that
pipe; Nagios Core kills the plugin's whole process group on timeout, so
the heal must live in a session of its own and survive that kill.
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import subprocess
import time
from pathlib import Path

from conftest import (
    CHECK_DUMMY,
    assert_no_traceback,
    journal_events,
    popen_selfheal,
    process_gone,
    wait_for,
    write_script,
)


def read_to_eof(fd: int, limit: float) -> tuple[bytes, float]:
    """Everything until EOF and how long it took; fail rather than hang."""
    started = time.monotonic()
    data = bytearray()
    while True:
        left = started + limit - time.monotonic()
        assert left > 0, f"no EOF on the plugin's stdout after {limit}s (read so far: {bytes(data)!r})"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return bytes(data), time.monotonic() - started
            data += chunk


def wait_exited_unreaped(pid: int, limit: float) -> None:
    """Wait for ``pid`` to exit but leave it a zombie, so its group lives on."""
    deadline = time.monotonic() + limit
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        assert time.monotonic() < deadline, f"pid {pid} did not exit within {limit}s after EOF"
        time.sleep(0.01)


def test_plugin_returns_at_once_and_heal_survives_process_group_kill(tmp_path: Path) -> None:
    state = tmp_path / "state"
    marker = tmp_path / "healed"
    heal = write_script(tmp_path / "slow heal", 'sleep 5\necho healed > "$1"\n')
    stderr_file = tmp_path / "stderr"
    heal_command = f"{shlex.quote(str(heal))} {shlex.quote(str(marker))}"

    with stderr_file.open("wb") as stderr:
        started = time.monotonic()
        proc = popen_selfheal(
            "wrap",
            "--heal",
            heal_command,
            "--state-dir",
            state,
            "--",
            CHECK_DUMMY,
            "2",
            "down",
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        pgid = os.getpgid(proc.pid)
        assert pgid == proc.pid
        assert proc.stdout is not None
        output, _ = read_to_eof(proc.stdout.fileno(), limit=5.0)
        took = time.monotonic() - started
        # The plugin's whole run, Python's start-up included: NRPE sees EOF
        # long before the 5 s heal ends.
        assert took < 1.0, f"EOF after {took:.2f}s"

        # Nagios Core on a timeout: SIGKILL to the plugin's process group.
        # The plugin has exited (a zombie keeps the group alive) and any
        # process it left in its group dies now.
        wait_exited_unreaped(proc.pid, limit=2.0)
        os.killpg(pgid, signal.SIGKILL)
        code = proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    text = output.decode()
    assert text.startswith("CHECK_DUMMY WARNING - "), text
    assert "self-healing: started" in text, text
    assert len(text.splitlines()) == 1, text
    assert code == 1
    assert_no_traceback(text, stderr_file.read_text())

    # The runner is in its own session, not the plugin's group.
    (attempt,) = journal_events(state, "attempt")
    runner = attempt["pid"]
    assert isinstance(runner, int)
    assert not process_gone(runner), "the heal runner died with the plugin's process group"
    assert os.getsid(runner) == runner
    assert os.getpgid(runner) != pgid
    assert not marker.exists()

    wait_for(marker.exists, timeout=12, what="the heal's marker file")
    assert marker.read_text() == "healed\n"
    (end,) = wait_for(
        lambda: journal_events(state, "action_end", in_flight=True), timeout=5, what="action_end"
    )
    assert end["exit_code"] == 0
    assert end["timed_out"] is False
    assert end["attempt"] == 1
    assert end["check"] == "check_dummy"
    assert end["argv"] == [str(heal), str(marker)]
    assert isinstance(end["duration"], float)
    assert end["duration"] >= 5.0
    wait_for(lambda: process_gone(runner), timeout=5, what="the runner to exit")
