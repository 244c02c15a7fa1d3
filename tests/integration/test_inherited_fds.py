"""The heal runner does not keep descriptors its caller passed on.

NRPE's command child runs the plugin with NRPE's own output pipe open as a
descriptor above 2 and reads that pipe until EOF. A heal runner that
inherited it would hold NRPE for as long as the heal runs (newer NRPE
versions give up one second after the plugin exits; older ones wait).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from pathlib import Path

from conftest import CHECK_DUMMY, journal_events, popen_selfheal, wait_for, write_script
from test_detach import read_to_eof


def test_runner_does_not_inherit_the_callers_extra_pipe(tmp_path: Path) -> None:
    state = tmp_path / "state"
    heal = write_script(tmp_path / "slow heal", "sleep 5\n")
    extra_r, extra_w = os.pipe()  # what NRPE passes on besides stdout
    try:
        proc = popen_selfheal(
            "wrap",
            "--heal",
            shlex.quote(str(heal)),
            "--state-dir",
            state,
            "--",
            CHECK_DUMMY,
            "2",
            "down",
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(extra_w,),
        )
        os.close(extra_w)
        extra_w = -1
        assert proc.wait(timeout=10) == 1
        started = time.monotonic()
        # EOF once the plugin is gone: the detached runner does not hold it.
        _, took = read_to_eof(extra_r, limit=3.0)
        assert took < 1.0, f"EOF on the caller's pipe {took:.2f}s after the plugin exited"
        (attempt,) = journal_events(state, "attempt")
        runner = attempt["pid"]
        assert isinstance(runner, int)
        assert os.path.exists(f"/proc/{runner}"), "the runner should still be healing"
        assert time.monotonic() - started < 3
    finally:
        os.close(extra_r)
        if extra_w >= 0:
            os.close(extra_w)
    wait_for(lambda: journal_events(state, "action_end", in_flight=True), timeout=15, what="the heal to end")
