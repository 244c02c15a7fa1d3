"""The decision table (DESIGN.md section 2), as one pure function.

``decide`` takes the check's result, the state record, the policy and the
time, and returns the final result, the note, the new record and the
journal events. It opens no file, starts no process and reads no clock:
the caller does those things (see ``engine``) and tests drive it row by
row with a fake clock.
"""

from __future__ import annotations

import os
import time

from selfheal.core import states
from selfheal.core.record import Attempt, Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypedDict

    from selfheal.core.policy import Policy

    class Facts(TypedDict):
        """What every ``decide`` of one CRITICAL run is told besides the record."""

        action: str
        argv: list[str]
        downtime: bool
        dry_run: bool


#: A recorded attempt with no runner pid yet is being spawned right now by
#: another invocation; after this long without a pid it was lost.
SPAWN_LIMIT = 15.0


class Decision:
    """What to report and which side effects to carry out."""

    __slots__ = ("events", "heal", "note", "record", "row", "state", "unhealed")

    def __init__(
        self,
        row: int | str,
        state: int,
        note: str = "",
        record: Record | None = None,
        events: list[dict[str, object]] | None = None,
        heal: Attempt | None = None,
    ) -> None:
        self.row = row  # the table row that matched (an int, or "8a"/"8b" for the fleet), for -v and tests
        self.state = state  # the final state the plugin exits with
        self.note = note  # the self-healing note for the status line
        self.record = record  # the record to write, or None: nothing changed
        self.events = events or []  # journal events, in order
        self.heal = heal  # the attempt to start (row 9), already in record
        # Row 9 only: the record to write if the heal does not start after
        # all (the fleet budget's rows 8a/8b), or None when it is unchanged.
        self.unhealed: Record | None = None

    def __repr__(self) -> str:
        return f"Decision(row={self.row}, state={states.name(self.state)}, note={self.note!r})"

    def needs_no_lock(self) -> bool:
        """True when this decision, from an unlocked read, changes nothing: it may be answered as it is.

        While a heal runs, every CRITICAL run of the check says "in progress"
        and writes nothing; it need not queue for the lock behind all the
        others (a hundred at once on a busy machine did, for seconds). A
        decision that would write, journal or heal needs the lock: the caller
        takes it, reads again and decides again.
        """
        return self.heal is None and self.record is None and not self.events and self.row != 4

    def behind_the_lock(self) -> Decision | None:
        """The record's own answer while another run holds its lock; None when only the lock can answer.

        Waiting for recovery (6), gave up (7) or did not help (8) are as true
        without the lock; only a heal needs it (then row 4). The lock holder
        writes whatever bookkeeping the record needs, so this answer drops it.
        """
        if self.heal is not None or self.row == 4:
            return None
        self.record, self.events = None, []
        return self


def decide(
    check_state: int,
    record: Record,
    policy: Policy,
    now: float,
    *,
    action: str = "",
    argv: list[str] | None = None,
    downtime: bool = False,
    dry_run: bool = False,
    state_error: str | None = None,
    runner_alive: bool | None = None,
    attempt_id: str | None = None,
    reason: str | None = None,
) -> Decision:
    """Apply the decision table.

    ``action``/``argv`` describe the heal that row 9 would start.
    ``runner_alive`` says whether the last attempt's runner process is
    still alive (pid and create time both match); None when unknown.
    ``state_error`` is why the state could not be read, locked or written.
    ``reason`` is the last line a failed last attempt printed (the caller
    read its log); it is kept in the attempt, for the note and for status.
    """
    before = record.to_json()
    rec = record.copy()
    _clamp_future(rec, now)
    events: list[dict[str, object]] = []
    if rec.last_state != check_state:
        rec.last_state = check_state
        rec.last_change = now

    def done(row: int, state: int, note: str = "", heal: Attempt | None = None) -> Decision:
        changed = rec.to_json() != before
        return Decision(row, state, note, rec if changed else None, events, heal)

    if check_state not in policy.heal_on:
        if check_state not in (states.OK, states.WARNING):
            return done(2, check_state)  # not healthy, but not ours to heal
        _note_healthy(rec, policy, now, events)
        if rec.off_since is None:
            return done(1, check_state)
        off = f"self-healing off since {when(rec.off_since, now)} (gave up); run 'selfheal reset {rec.check}'"
        return done(1, check_state, off)

    rec.ok_since = None
    if downtime:
        return done(3, check_state, "self-healing paused (Nagios downtime)")
    if rec.paused_until is not None and now < rec.paused_until:
        reason_ = f" ({rec.pause_reason})" if rec.pause_reason else ""
        return done(3, check_state, f"self-healing paused until {when(rec.paused_until, now)}{reason_}")
    # Once "did not help" was shown, a retry stays CRITICAL (retry_state):
    # a WARNING in between would page again when CRITICAL returns.
    retry_state = policy.retry_state if rec.did_not_help_shown else states.WARNING

    last = rec.last_attempt
    running = last if last is not None and last.ended is None else None
    if running is not None:
        age = _age(running.started, now)
        # A recorded attempt without a pid is being spawned right now.
        if runner_alive or (running.pid is None and age < SPAWN_LIMIT):
            if age <= policy.running_limit():
                # A reset while the heal runs stops it counting toward
                # max_attempts, but it is still an attempt under way: never "0/N".
                counted = counted_attempts(rec, policy, now)
                shown = len(counted) + (0 if any(a is running for a in counted) else 1)
                note = (
                    f"self-healing in progress: {running.action}, "
                    f"attempt {shown}/{policy.max_attempts}, "
                    f"started {_took(age)} ago"
                )
                return done(5, retry_state, note)
            # Never start a second action beside one that will not die.
            note = (
                f"self-healing stuck: {running.action} still running after {_took(age)} (pid {running.pid})"
            )
            return done(5, check_state, note)
    if state_error is not None:
        return Decision(4, check_state, f"self-healing disabled: {state_error}")

    _note_shared(rec, last, action, argv, events)

    if running is not None:
        # The runner died without recording an end (killed, host rebooted,
        # nrpe restarted with KillMode=control-group): close the attempt.
        running.ended = now
        running.error = "runner lost before the action ended"
        rec.count_end(running)
        events.append(_event("action_lost", rec, running, reason=running.error))

    if (
        last is not None
        and last.exit_code not in (0, None)
        and not (last.reason or last.timed_out)
        and reason
    ):
        last.reason = reason[:300]
    # Grace is for a heal that succeeded: one that failed did not help, at once.
    if (
        last is not None
        and last.ended is not None
        and _age(last.ended, now) < policy.grace
        and not last.failed()
    ):
        return done(6, retry_state, f"self-healing: waiting for recovery after {last.action}")

    count = count_attempts(rec, policy, now)
    if count >= policy.max_attempts:
        first = min(a.started for a in counted_attempts(rec, policy, now))
        if rec.gave_up_at is None:
            rec.gave_up_at = now
            rec.gave_up_total += 1
            events.append(
                _event("gave_up", rec, last, reason=f"{count} attempts within {_took(policy.window)}")
            )
        if rec.off_since is None:
            rec.off_since = now
        rec.did_not_help_shown = True
        note = (
            f"self-healing gave up: {count} attempts since {when(first, now)}; "
            f"run 'selfheal reset {rec.check}'"
        )
        return done(7, check_state, note)

    if last is not None and _counts(last, rec):
        end = last.ended if last.ended is not None else last.started
        next_at = end + policy.cooldown_after(last.number)
        if now < next_at:
            if rec.cooldown_noted != last.id:
                rec.cooldown_noted = last.id
                events.append(
                    _event("skipped_cooldown", rec, last, reason=f"next attempt after {when(next_at, now)}")
                )
            rec.did_not_help_shown = True
            note = (
                f"self-healing did not help: attempt {last.number} at {when(last.started, now)} "
                f"{last.outcome()}; next attempt after {when(next_at, now)}"
            )
            return done(8, check_state, note)

    unhealed = rec.copy() if rec.to_json() != before else None
    attempt = Attempt(
        id=attempt_id or os.urandom(6).hex(),
        number=rec.streak + 1,
        started=now,
        action=action,
        argv=list(argv or []),
    )
    rec.streak += 1
    rec.attempts.append(attempt)
    rec.heals_total += 1
    rec.policy = policy.snapshot()
    rec.gave_up_at = rec.off_since = None
    if rec.open_since is None:
        rec.open_since = now
    _prune(rec, policy, now)
    retry = rec.did_not_help_shown
    verb = ("would retry" if retry else "would start") if dry_run else ("retrying" if retry else "started")
    note = f"self-healing: {verb} {action} (attempt {count_attempts(rec, policy, now)}/{policy.max_attempts})"
    events.append(_event("attempt", rec, attempt))
    decision = done(9, retry_state, note, heal=attempt)
    decision.unhealed = unhealed
    return decision


def start_failed(decision: Decision, error: str, now: float) -> Decision:
    """A row-9 decision whose runner could not be started: the attempt ended, and the check's own state.

    The attempt stays recorded (it was, before the spawn), ended at once
    with ``error``; ``action_end`` joins the journal events.
    """
    attempt, record = decision.heal, decision.record
    assert attempt is not None and record is not None  # row 9 always has both
    attempt.ended, attempt.duration, attempt.error = now, 0.0, error
    events: list[dict[str, object]] = [*decision.events, {"event": "action_end", "check": record.check}]
    for event in events:
        event.update(attempt=attempt.number, argv=attempt.argv, reason=error)
    # decide() set last_state to the check's own state (CRITICAL, or UNKNOWN with heal_on).
    state = record.last_state if record.last_state is not None else states.CRITICAL
    record.did_not_help_shown = True  # it pages: a retry stays CRITICAL
    return Decision(9, state, f"self-healing failed: {error}", record, events)


def _note_healthy(rec: Record, policy: Policy, now: float, events: list[dict[str, object]]) -> None:
    """Row 1 bookkeeping: recovery, and the reset after a healthy stretch."""
    last = rec.last_attempt
    if rec.open_since is not None:
        events.append(_event("recovered", rec, last, time_to_recover=round(_age(rec.open_since, now), 3)))
        rec.open_since = None
        rec.gave_up_at = None
    rec.did_not_help_shown = False  # the incident is over
    if rec.ok_since is None or rec.ok_since > now:
        rec.ok_since = now
    if rec.streak and now - rec.ok_since >= policy.reset_after:
        events.append(_event("reset", rec, last, reason=f"healthy for {_took(now - rec.ok_since)}"))
        rec.streak = 0
        rec.reset_at = now
        rec.cooldown_noted = None
    if rec.off_since is not None and count_attempts(rec, policy, now) < policy.max_attempts:
        rec.off_since = None  # the window passed, or a reset: healing is on again
    _prune(rec, policy, now)


def _note_shared(
    rec: Record, last: Attempt | None, action: str, argv: list[str] | None, events: list[dict[str, object]]
) -> None:
    """Journal once that another caller, with another heal, uses this record's name.

    ``wrap --name nginx`` and a configured ``nginx`` share one record (its
    cooldown and attempt count). ``heal_noted`` remembers the heal already
    journaled, so a check run every minute journals it once per change.
    """
    if last is None or argv is None or last.argv == argv or rec.heal_noted == action:
        return
    rec.heal_noted = action
    reason = f"record {rec.check} last healed with '{last.action}'; this caller heals with '{action}'"
    events.append(_event("heal_changed", rec, last, heal=action, reason=reason))


def _took(seconds: float) -> str:
    from selfheal.core.durations import format_duration  # for notes: a healthy run writes none

    return format_duration(seconds)


def _age(then: float, now: float) -> float:
    return max(0.0, now - then)


def _clamp_future(rec: Record, now: float) -> None:
    """Pull timestamps from the future back to now, and keep them there.

    A timestamp after ``now`` means the clock was stepped back. Left alone,
    a grace period or cooldown measured from it would last as long as the
    step; clamped (and written back), each lasts its own length from now.
    ``paused_until`` is meant to be in the future and is left as it is.
    """
    for key in ("last_change", "ok_since", "open_since", "reset_at", "gave_up_at", "off_since"):
        value = getattr(rec, key)
        if value is not None and value > now:
            setattr(rec, key, now)
    for attempt in rec.attempts:
        attempt.started = min(attempt.started, now)
        if attempt.ended is not None:
            attempt.ended = min(attempt.ended, now)


def _counts(attempt: Attempt, rec: Record) -> bool:
    return rec.reset_at is None or attempt.started >= rec.reset_at


def counted_attempts(rec: Record, policy: Policy, now: float) -> list[Attempt]:
    """Attempts that count toward ``max_attempts`` now, oldest first."""
    return [a for a in rec.attempts if _counts(a, rec) and _age(a.started, now) < policy.window]


def count_attempts(rec: Record, policy: Policy, now: float) -> int:
    """Attempts that count toward ``max_attempts`` now (the perfdata value)."""
    return len(counted_attempts(rec, policy, now))


def _prune(rec: Record, policy: Policy, now: float) -> None:
    """Forget attempts outside the window, but keep the latest for status."""
    keep = [a for a in rec.attempts[:-1] if _age(a.started, now) < policy.window]
    rec.attempts = keep + rec.attempts[-1:]


def when(timestamp: float, now: float) -> str:
    """Local wall-clock time, as the operator reads it: the time only if today.

    The check's notes and the operating commands' tables both use it.
    """
    same_day = time.localtime(timestamp)[:3] == time.localtime(now)[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M", time.localtime(timestamp))


def _event(kind: str, rec: Record, attempt: Attempt | None, **fields: object) -> dict[str, object]:
    event: dict[str, object] = {"event": kind, "check": rec.check}
    if attempt is not None:
        event.update(attempt=attempt.number, argv=attempt.argv, pid=attempt.pid)
        if attempt.ended is not None:
            event.update(exit_code=attempt.exit_code, duration=attempt.duration, timed_out=attempt.timed_out)
    event.update(fields)
    return event


class Outcome:
    """The decision plus what the caller prints: attempts and details."""

    __slots__ = ("attempts", "decision", "details", "heals_total", "last")

    def __init__(
        self,
        decision: Decision,
        attempts: int = 0,
        details: list[str] | None = None,
        heals_total: int = 0,
        last: Attempt | None = None,
    ) -> None:
        self.decision = decision
        self.attempts = attempts
        self.details = details or []
        self.heals_total = heals_total  # heals ever started, for the perfdata counter
        self.last = last  # the record's last attempt, for -v's explanation

    @property
    def state(self) -> int:
        return self.decision.state

    @property
    def note(self) -> str:
        return self.decision.note
