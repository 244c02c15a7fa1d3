"""The detached heal runner: ``python -m selfheal.runner SPEC``.

Started by the plugin in a new session with stdio on the attempt's log
file. It outlives the plugin (and Nagios's kill of the plugin's process
group), runs the action with its timeout, and records how it ended in the
check's record and in the journal.
"""

from __future__ import annotations

import os
import sys
import time

from selfheal.core import jsonio, states
from selfheal.core.states import SelfhealError
from selfheal.edges.journal import iso_utc
from selfheal.edges.proc import own_unit_cgroup
from selfheal.edges.spawner import Spawner
from selfheal.edges.store import StateDir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from selfheal.edges.journal import Journal

#: The runner is in no hurry: it may wait this long for the record's lock.
RUNNER_LOCK_TIMEOUT = 30.0
LOG_KEEP = 5
#: For ``systemctl show`` and ``reset-failed``, which take milliseconds.
SHOW_TIMEOUT = 30.0


def log(message: str) -> None:
    print(f"{iso_utc(time.time())} selfheal runner[{os.getpid()}]: {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    spec = jsonio.loads(argv[1])
    assert isinstance(spec, dict)  # Healer._start wrote it: always an object
    os.chdir("/")
    spawner = Spawner()
    name = spec["check"]
    log(f"check {name}, attempt {spec['attempt']}: {spec['action']}")
    splay = float(spec.get("splay") or 0)
    if splay > 0:
        record_runner(spec, spawner)
        delay = splay * int.from_bytes(os.urandom(4), "big") / 2**32  # no `random`: it imports hashlib
        log(f"splay: waiting {delay:.1f}s")
        time.sleep(delay)
    started = time.time()
    unit = spec.get("unit")
    cgroup = own_unit_cgroup(unit) if isinstance(unit, str) else None
    if unit:
        log(f"running as unit {unit}" + ("" if cgroup else " (its cgroup not found: killing by tree only)"))
    timeout = float(spec["timeout"])
    reset = clear_start_limit(spec, spawner, timeout) if spec.get("start_limit") else None
    # The reset counts against action_timeout: the table's "stuck" is reckoned from the attempt's start.
    spent = time.time() - started
    result = spawner.run_action(
        spec["argv"],
        max(timeout - spent, 1.0),
        float(spec["kill_grace"]),
        on_start=None if splay > 0 else lambda: record_runner(spec, spawner),
        cgroup=cgroup,
    )
    result.duration += spent
    ended = started + result.duration
    released = None
    if spec.get("fleet"):
        # The fleet budget's slot, given back as soon as the action is over
        # (not after the record's lock): a runner killed before this leaves
        # the slot to expire at its TTL.
        from selfheal.budget_gate import release_after

        released = release_after(spec["fleet"], name)
        log(
            f"fleet budget slot {released.get('group')}/{released.get('slot')} released: {released['released']}"
        )
    reason = result.error
    if result.timed_out:
        reason = f"timed out after {spec['timeout']:g}s; process tree killed"
    elif reason is None and result.exit_code != 0 and isinstance(spec.get("log"), str):
        from selfheal.edges.files import last_line

        reason = last_line(spec["log"])
    log(
        f"action ended: exit {result.exit_code}, {result.duration:.2f}s"
        + (", timed out" if result.timed_out else "")
        + (f" ({reason})" if reason else "")
    )
    event = {
        "event": "action_end",
        "check": name,
        "argv": spec["argv"],
        "pid": os.getpid(),
        "exit_code": result.exit_code,
        "duration": round(result.duration, 3),
        "timed_out": result.timed_out,
    }
    if unit:
        event["unit"] = unit
    if reset is not None:
        event["reset_failed"] = reset
    if reason:
        event["reason"] = reason
    try:
        with StateDir.open(spec["state_dir"], create=False) as state_dir:
            with state_dir.lock(name, RUNNER_LOCK_TIMEOUT):
                record, _ = state_dir.read(name)
                attempt = record.find_attempt(spec["attempt"])
                if attempt is not None:
                    attempt.ended = ended
                    attempt.exit_code = result.exit_code
                    attempt.duration = round(result.duration, 3)
                    attempt.timed_out = result.timed_out
                    attempt.error = result.error
                    if result.exit_code not in (0, None) and reason:
                        attempt.reason = reason[:300]  # why it failed, for "did not help: ... exited 1 (why)"
                    record.count_end(attempt)
                    event["attempt"] = attempt.number
                    state_dir.write(name, record)
                else:
                    log("attempt no longer in the record (reset?); journaling only")
            prune_logs(state_dir, name)
        journal = open_journal(spec)
        journal.write(event, ended)
        if released is not None:
            journal.write(released, time.time())
        journal.close()
    except SelfhealError as exc:
        log(f"could not record the outcome: {exc}")
        return 1
    if isinstance(spec.get("verify"), dict):
        failed = result.exit_code != 0 or result.timed_out or result.error is not None
        verify_heal(spec, spawner, ended, failed)
    return 0 if result.exit_code == 0 else 1


def open_journal(spec: dict[str, object]) -> Journal:
    from selfheal.edges.journal import Journal

    outputs = None
    settings = spec.get("outputs")
    if isinstance(settings, dict) and settings:
        from selfheal.hooks import Outputs

        outputs = Outputs(settings, str(spec["state_dir"]))
    return Journal(str(spec["journal"]), outputs=outputs)


def verify_heal(spec: dict[str, object], spawner: Spawner, ended: float, failed: bool) -> None:
    """Re-check after the action (``selfheal.verify``), record and journal it, report it (``report_to:``)."""
    from selfheal import verify

    settings = spec["verify"]
    assert isinstance(settings, dict)  # the plugin command wrote it: always an object
    name = str(spec["check"])
    seen = verify.recheck(settings, spawner, ended, failed, log)
    event, attempt = verify.record(spec, seen, log)
    log(
        f"{event['event']} after {seen.checks} re-check(s)"
        + (f" ({event['reason']})" if "reason" in event else "")
    )
    # Journaled before the reports: a report that outlives the unit's time limit loses only itself.
    journal_each(spec, [(event, seen.when)])
    report_to = settings.get("report_to")
    if isinstance(report_to, dict) and report_to:
        from selfheal import report_back

        state, text, comment = report_back.message(
            name, seen, str(spec["action"]), attempt, event.get("time_to_recover")
        )
        sent_events = []
        for sent in report_back.report(name, report_to, state, text, comment):
            if "attempt" in event:
                sent["attempt"] = event["attempt"]
            log(f"reported {states.name(state)} to {sent['to']}: {sent.get('reason') or 'accepted'}")
            sent_events.append((sent, time.time()))
        journal_each(spec, sent_events)


def journal_each(spec: dict[str, object], events: list[tuple[dict[str, object], float]]) -> None:
    try:
        journal = open_journal(spec)
        for entry, when in events:
            journal.write(entry, when)
        journal.close()
    except SelfhealError as exc:
        log(f"could not journal the re-check: {exc}")


def clear_start_limit(spec: dict[str, object], spawner: Spawner, timeout: float) -> dict[str, object] | None:
    """``systemctl reset-failed UNIT`` if the unit is at its start limit; what was done, for action_end.

    systemd refuses ``restart`` while a unit is failed with
    ``Result=start-limit-hit``, the state a crash-looping service ends in.
    A state that cannot be read is logged and the restart tried as it is.
    """
    limit = spec["start_limit"]
    assert isinstance(limit, dict)  # Systemd.start_limit() made it
    show, reset = words(limit["show"]), words(limit["reset"])
    read = spawner.run_plugin(show, min(timeout, SHOW_TIMEOUT))
    if read.exit_status != 0:
        said = (read.stderr or read.stdout).decode("utf-8", "replace").strip()
        log(
            f"could not read {limit['unit']}'s state ({said or read.error or 'timed out'}); restarting as it is"
        )
        return None
    fields = dict(
        line.split("=", 1) for line in read.stdout.decode("utf-8", "replace").splitlines() if "=" in line
    )
    if (fields.get("ActiveState"), fields.get("Result")) != ("failed", "start-limit-hit"):
        return None
    log(f"{limit['unit']} hit its start limit: {' '.join(reset)}")
    done = spawner.run_action(reset, min(timeout, SHOW_TIMEOUT), 1.0)
    log(f"reset-failed: exit {done.exit_code}" + (f" ({done.error})" if done.error else ""))
    outcome: dict[str, object] = {"unit": limit["unit"], "argv": reset, "exit_code": done.exit_code}
    if done.error or done.timed_out:
        outcome["error"] = done.error or "timed out"
    return outcome


def words(value: object) -> list[str]:
    """An argv from the spec (the engine wrote a list of strings)."""
    return [str(word) for word in value] if isinstance(value, list) else []


def record_runner(spec: dict[str, object], spawner: Spawner) -> None:
    """Record this runner's pid if the plugin died before it could.

    Without it, the next check would take the attempt for lost and could
    start a second action beside this one.
    """
    name = str(spec["check"])
    try:
        with StateDir.open(str(spec["state_dir"]), create=False) as state_dir:
            record = state_dir.peek(name)
            attempt = record.find_attempt(str(spec["attempt"])) if record else None
            if attempt is None or attempt.pid is not None:
                return
            with state_dir.lock(name, RUNNER_LOCK_TIMEOUT):
                record, _ = state_dir.read(name)
                attempt = record.find_attempt(str(spec["attempt"]))
                if attempt is not None and attempt.pid is None:
                    attempt.pid = os.getpid()
                    attempt.create_time = spawner.create_time(os.getpid())
                    state_dir.write(name, record)
                    log("recorded own pid (the plugin did not)")
    except (SelfhealError, ValueError) as exc:
        log(f"could not record own pid: {exc}")


def prune_logs(state_dir: StateDir, name: str) -> None:
    """Keep the newest few attempt logs per check."""
    prefix = f"{name}.heal-"
    logs = []
    for entry in os.scandir(state_dir.fd):
        if (
            entry.name.startswith(prefix)
            and entry.name.endswith(".log")
            and entry.is_file(follow_symlinks=False)
        ):
            logs.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
    for _, old in sorted(logs)[:-LOG_KEEP]:
        try:
            os.unlink(old, dir_fd=state_dir.fd)
        except OSError:
            pass


if __name__ == "__main__":
    sys.exit(main())
