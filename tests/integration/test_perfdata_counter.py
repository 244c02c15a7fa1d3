"""``selfheal_heals_total`` is a counter: it never drops to 0 because a lock is held.

Graphers read a counter that falls as a reset. A run that cannot take
the check's lock still knows what the record says, and reports it. (A
CRITICAL run behind a held lock: tests/reliability/test_concurrency_storm.py.)
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from conftest import CHECK_DUMMY, assert_no_traceback, run_selfheal

from selfheal.core.record import Attempt, Record
from selfheal.edges.store import StateDir

HOLDER = (
    "import sys, time\nfrom selfheal.edges.store import StateDir\n"
    "with StateDir.open(sys.argv[1]) as d, d.lock('web'):\n"
    "    print('held', flush=True); time.sleep(60)\n"
)


def heal_ended_a_minute_ago() -> Record:
    now = time.time()
    attempt = Attempt(
        id="a1", number=1, started=now - 61, action="true", argv=["true"], pid=1,
        create_time=0.0, ended=now - 60, exit_code=0, duration=1.0,
    )  # fmt: skip
    return Record(check="web", last_state=2, streak=1, heals_total=1, attempts=[attempt])


def run_behind_held_lock(tmp_path: Path, *plugin_args: str) -> subprocess.CompletedProcess[str]:
    state = tmp_path / "state"
    with StateDir.open(str(state)) as state_dir:
        state_dir.write("web", heal_ended_a_minute_ago())
    # Another process holds the lock throughout (a lock is re-entrant within one).
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(state)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        args = ("wrap", "--name", "web", "--heal", "true", "--state-dir", state, "--", CHECK_DUMMY)
        result = run_selfheal(*args, *plugin_args)
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]
    assert_no_traceback(result.stdout, result.stderr)
    return result


def test_a_recovery_that_cannot_be_recorded_still_reports_the_heals_total(tmp_path):
    # OK after a heal: the recovery must be written under the lock, which is held.
    result = run_behind_held_lock(tmp_path, "0", "fine")
    assert result.returncode == 0, result.stdout
    assert "selfheal_heals_total=1c;;;0" in result.stdout, result.stdout
