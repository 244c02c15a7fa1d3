"""Simultaneous invocations of one check spawn at most one action (DESIGN.md section 2)."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path

from conftest import (
    CHECK_DUMMY,
    assert_no_traceback,
    journal_events,
    popen_selfheal,
    read_record,
    wait_for,
    write_script,
)

COUNT = 30
STATUS = re.compile(r"^SAME (WARNING|CRITICAL) - CRITICAL: down; self-healing[: ]")


#: check_dummy behind a starting gate: every invocation's plugin says it is
#: ready, then waits for the gate, so all of them reach the decision at the
#: same moment rather than spread over Python's start-up times.
GATED_PLUGIN = f"""\
touch "$1/ready.$$"
while [ ! -e "$1/go" ]; do sleep 0.01; done
exec {CHECK_DUMMY} 2 down
"""


def test_thirty_simultaneous_runs_start_one_action(tmp_path: Path) -> None:
    state = tmp_path / "state"
    counter = tmp_path / "counter"
    gate = tmp_path / "gate"
    gate.mkdir()
    heal = write_script(tmp_path / "heal", 'echo "$$" >> "$1"\nsleep 2\n')
    plugin = write_script(tmp_path / "check_gated", GATED_PLUGIN)
    heal_command = f"{shlex.quote(str(heal))} {shlex.quote(str(counter))}"
    argv = ("wrap", "--name", "same", "--heal", heal_command, "--state-dir", state, "--", plugin, gate)

    procs = [
        popen_selfheal(*argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(COUNT)
    ]
    try:
        wait_for(
            lambda: len(list(gate.glob("ready.*"))) == COUNT, timeout=20, what=f"{COUNT} plugins at the gate"
        )
    finally:
        (gate / "go").touch()
        started = time.monotonic()
        outputs = [proc.communicate(timeout=30) for proc in procs]
        took = time.monotonic() - started
    results = [(proc.returncode, out.decode(), err.decode()) for proc, (out, err) in zip(procs, outputs)]
    # Nobody waited on the lock until Nagios would have killed it (the
    # lock wait is a few seconds at most; 30 runs share two CPUs here).
    assert took < 10, f"the last of {COUNT} runs ended {took:.1f}s after the gate opened"

    for code, out, err in results:
        assert_no_traceback(out, err)
        assert code in (1, 2), (code, out, err)
        lines = out.splitlines()
        assert len(lines) == 1, out
        assert STATUS.match(lines[0]), out
        assert lines[0].startswith("SAME WARNING") == (code == 1), out
    started_lines = [out for _, out, _ in results if "self-healing: started" in out]
    assert len(started_lines) == 1, started_lines
    assert "(attempt 1/3)" in started_lines[0]

    (end,) = wait_for(lambda: journal_events(state, "action_end"), timeout=15, what="action_end")
    assert end["exit_code"] == 0
    assert counter.read_text().count("\n") == 1
    assert len(journal_events(state, "attempt")) == 1
    record = read_record(state, "same")
    assert record["heals_total"] == 1
    assert len(record["attempts"]) == 1  # type: ignore[arg-type]
