"""Concurrency: a heal storm never happens (issue 6, item 1).

- 100 simultaneous invocations of one failing check start exactly one
  action, and every invocation answers WARNING or CRITICAL in time.
- 20 different checks at once each heal once, independently.
- Both again with the state dir shared by two users: the ``nagios`` user
  (who runs Nagios and NRPE checks) and root (an operator, cron, a
  ``selfheal run`` by hand), alternating.

Every invocation is a real ``python -m selfheal`` process; a starting gate
in the plugin makes all of them reach the lock at the same moment.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CHECK_DUMMY, assert_no_traceback, journal_events, read_record, wait_for
from harness import (
    SERVICE_USER,
    Gate,
    SharedDir,
    figure,
    heal_counter,
    lines,
    run_as,
    selfheal_as,
    uid_of,
)

#: Each invocation's own deadline (``-t``), well inside Nagios's 60 s.
TIMEOUT = 20
STATUS = re.compile(r"^(\S+) (WARNING|CRITICAL) - CRITICAL: down; self-healing[: ]")


@pytest.fixture
def shared():
    where = SharedDir()
    yield where
    where.remove()


def storm(
    where: Path, state: Path, names: list[str], users: list[str | None], heal_seconds: float = 2
) -> tuple[list[tuple[str, int, str, str]], Path, float]:
    """Start one invocation per (name, user), all held at the gate, then open it.

    Returns (name, exit code, stdout, stderr) per invocation, the heal
    counter file, and how long the last one took after the gate opened.
    """
    gate = Gate(where)
    heal, counter = heal_counter(where, heal_seconds)
    counter.touch()
    counter.chmod(0o666)  # heals run as whichever user invoked them
    runs = []
    for index, name in enumerate(names):
        user = users[index % len(users)]
        argv = selfheal_as(
            user, "wrap", "--name", name, "-t", TIMEOUT, "--heal", heal, "--state-dir", state, "--",
            gate.plugin, gate.dir,
        )  # fmt: skip
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        runs.append((name, proc))
    try:
        wait_for(lambda: gate.ready() == len(runs), timeout=60, what=f"{len(runs)} plugins at the gate")
    finally:
        gate.open()
    opened = time.monotonic()
    results = []
    for name, proc in runs:
        out, err = proc.communicate(timeout=TIMEOUT + 30)
        results.append((name, proc.returncode, out.decode(), err.decode()))
    return results, counter, time.monotonic() - opened


def assert_sane(results: list[tuple[str, int, str, str]], took: float) -> None:
    # Every invocation answered within its own timeout (all had ended by then).
    assert took < TIMEOUT, f"the last invocation ended {took:.1f}s after the gate opened"
    for name, code, out, err in results:
        assert_no_traceback(out, err)
        assert code in (1, 2), (name, code, out, err)
        (line,) = out.splitlines()
        match = STATUS.match(line)
        assert match, line
        assert match.group(1) == name.upper()
        assert (match.group(2) == "WARNING") == (code == 1), line


def assert_one_heal_each(state: Path, counter: Path, names: set[str]) -> tuple[int, int]:
    """Every check healed exactly once and kept its record: (lost, double)."""
    for name in names:
        wait_for(
            lambda name=name: [
                e for e in journal_events(state, "action_end", in_flight=True) if e["check"] == name
            ],
            timeout=30,
            what=f"action_end of {name}",
        )
    attempts = journal_events(state, "attempt")
    double = sum(1 for name in names if sum(a["check"] == name for a in attempts) > 1)
    assert double == 0, attempts
    assert sorted(a["check"] for a in attempts) == sorted(names)
    assert len(lines(counter)) == len(names), lines(counter)
    lost = 0
    for name in names:
        record = read_record(state, name)
        if record["heals_total"] != 1 or len(record["attempts"]) != 1:  # type: ignore[arg-type]
            lost += 1
        assert record["attempts"][0]["exit_code"] == 0  # type: ignore[index]
    assert lost == 0
    assert journal_events(state, "state_error") == [], [
        e["reason"] for e in journal_events(state, "state_error")
    ]
    return lost, double


def test_hundred_simultaneous_invocations_start_one_action(shared: SharedDir) -> None:
    state = shared.state_dir()
    results, counter, took = storm(shared.path, state, ["storm"] * 100, [None])
    assert_sane(results, took)
    started = [out for _, _, out, _ in results if "self-healing: started" in out]
    assert len(started) == 1, started
    assert "(attempt 1/3)" in started[0]
    lost, double = assert_one_heal_each(state, counter, {"storm"})
    figure("100 simultaneous invocations of one check", 100, lost, double, took=round(took, 1))


def test_twenty_checks_at_once_heal_independently(shared: SharedDir) -> None:
    state = shared.state_dir()
    names = [f"svc{i:02d}" for i in range(20)] * 3
    results, counter, took = storm(shared.path, state, names, [None], heal_seconds=1)
    assert_sane(results, took)
    for name in set(names):
        started = [out for n, _, out, _ in results if n == name and "self-healing: started" in out]
        assert len(started) == 1, (name, started)
    lost, double = assert_one_heal_each(state, counter, set(names))
    figure("20 checks at once, 3 invocations each", 60, lost, double, took=round(took, 1))


def test_two_users_share_a_state_dir_in_a_storm(shared: SharedDir) -> None:
    state = shared.state_dir(owner=SERVICE_USER)
    results, counter, took = storm(shared.path, state, ["storm"] * 100, [SERVICE_USER, None])
    assert_sane(results, took)
    assert sum("self-healing: started" in out for _, _, out, _ in results) == 1
    lost, double = assert_one_heal_each(state, counter, {"storm"})
    figure("100 invocations of one check by nagios and root, one state dir", 100, lost, double)
    assert_owned_by_service_user(state)


def test_two_users_twenty_checks_at_once(shared: SharedDir) -> None:
    state = shared.state_dir(owner=SERVICE_USER)
    names = [f"svc{i:02d}" for i in range(20)] * 2
    results, counter, took = storm(shared.path, state, names, [SERVICE_USER, None], heal_seconds=1)
    assert_sane(results, took)
    lost, double = assert_one_heal_each(state, counter, set(names))
    figure("20 checks at once by nagios and root, one state dir", 40, lost, double)
    assert_owned_by_service_user(state)


def assert_owned_by_service_user(state: Path) -> None:
    """Root left nothing in the nagios user's dir that nagios cannot replace."""
    uid = uid_of(SERVICE_USER)
    for path in state.iterdir():
        assert path.lstat().st_uid == uid, f"{path.name} is owned by uid {path.lstat().st_uid}"


def test_root_first_then_the_service_user_can_still_heal(shared: SharedDir) -> None:
    """Root heals one check first (creating the journal), then nagios heals another.

    The journal, the records, the locks and the logs root created must all
    stay usable by the dir's owner: otherwise the nagios user's next heal
    would be refused (row 4) because it cannot append to the journal.
    """
    state = shared.state_dir(owner=SERVICE_USER)
    heal, counter = heal_counter(shared.path)
    counter.touch()
    counter.chmod(0o666)
    for user, name in ((None, "by-root"), (SERVICE_USER, "by-nagios"), (None, "by-nagios")):
        result = run_as(
            user, "wrap", "--name", name, "--grace", "0", "--heal", heal, "--state-dir", state, "--",
            CHECK_DUMMY, "2", "down",
        )  # fmt: skip
        assert_no_traceback(result.stdout, result.stderr)
        assert result.returncode in (1, 2), result.stdout
        assert "self-healing disabled" not in result.stdout, result.stdout
        wait_for(
            lambda name=name: [
                e for e in journal_events(state, "action_end", in_flight=True) if e["check"] == name
            ],
            timeout=15,
            what=f"action_end of {name}",
        )
    ids = sorted(line.split()[1] for line in lines(counter))
    assert ids == sorted([str(uid_of(SERVICE_USER)), "0"]), lines(counter)
    assert_owned_by_service_user(state)


def held_lock_run(tmp_path: Path, record: dict[str, object]) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One invocation while another process holds the check's lock throughout."""
    import json

    from conftest import CHECK_DUMMY, run_selfheal

    from selfheal.edges.store import StateDir

    state = tmp_path / "state"
    marker = tmp_path / "healed"
    with StateDir.open(str(state)) as state_dir:
        (state / "held.json").write_text(json.dumps(record))
        # A second process (filelock is re-entrant within one) holds the lock.
        holder = subprocess.Popen(
            [
                sys.executable, "-c",
                "import sys, time\nfrom selfheal.edges.store import StateDir\n"
                "with StateDir.open(sys.argv[1]) as d, d.lock('held'):\n"
                "    print('held', flush=True); time.sleep(60)\n",
                str(state),
            ],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
            result = run_selfheal(
                "wrap", "--name", "held", "--heal", f"touch {marker}", "--state-dir", state_dir.path, "--",
                CHECK_DUMMY, "2", "down",
            )  # fmt: skip
        finally:
            holder.kill()
            holder.wait()
            holder.stdout.close()  # type: ignore[union-attr]
    assert_no_traceback(result.stdout, result.stderr)
    return result, state


def attempt_record(ended_ago: float) -> dict[str, object]:
    now = time.time()
    attempt = {
        "id": "a1", "number": 1, "started": now - ended_ago - 1, "action": "touch", "argv": ["touch"],
        "pid": 1, "create_time": 0.0, "ended": now - ended_ago, "exit_code": 0, "duration": 1.0,
    }  # fmt: skip
    return {
        "version": 1,
        "check": "held",
        "last_state": 2,
        "streak": 1,
        "heals_total": 1,
        "attempts": [attempt],
    }


@pytest.mark.parametrize(
    ("ended_ago", "code", "note"),
    [
        (1, 1, "self-healing: waiting for recovery after touch"),
        (60, 2, "self-healing did not help: attempt 1"),
    ],
    ids=["grace", "cooldown"],
)
def test_lock_held_too_long_still_reports_what_the_record_says(
    tmp_path: Path, ended_ago: float, code: int, note: str
) -> None:
    """Stuck behind the lock, an invocation reports the record's row, not "disabled".

    The heal ended a second ago: "waiting for recovery" (row 6, WARNING);
    a minute ago: "did not help" (row 8), whose first report would also
    journal a skipped_cooldown, so it needs the lock it cannot get. Either
    way, paging "self-healing disabled" (row 4) for mere contention would
    wake someone for nothing.
    """
    result, state = held_lock_run(tmp_path, attempt_record(ended_ago=ended_ago))
    assert result.returncode == code, result.stdout
    assert note in result.stdout, result.stdout
    assert "selfheal_attempts=1;;;0 selfheal_heals_total=1c;;;0" in result.stdout, result.stdout
    assert journal_events(state, "state_error") == []
    figure("lock held by another run past the lock timeout", 1)


def test_lock_held_too_long_never_heals_unrecorded(tmp_path: Path) -> None:
    """When the record would allow a heal, contention is row 4: no record, no heal."""
    result, state = held_lock_run(tmp_path, attempt_record(ended_ago=7 * 3600))
    assert result.returncode == 2, result.stdout
    assert "self-healing disabled: state is locked by another selfheal run" in result.stdout
    assert not (tmp_path / "healed").exists()
    (event,) = journal_events(state, "state_error")
    assert "locked" in event["reason"]
    figure("lock held by another run past the lock timeout", 1)
