"""The decision table (DESIGN.md section 2), row by row, with a fake clock.

``decide`` is pure: every test passes plain float ``now`` values and
hand-built records, and chains ``decision.record`` into the next call to
simulate a sequence of plugin runs.
"""

from __future__ import annotations

import copy
import json
import time

import pytest

from selfheal.core import states
from selfheal.core.decision import SPAWN_LIMIT, decide
from selfheal.core.policy import Policy
from selfheal.core.record import RECORD_VERSION, Attempt, CorruptRecord, Record

NAME = "nginx"
ACTION = "systemctl restart nginx"
ARGV = ["systemctl", "restart", "nginx"]
PID = 4242

#: 09:00 local time, so every offset used below stays on the same local day
#: and notes show ``HH:MM:SS``.
T0 = time.mktime((2024, 5, 15, 9, 0, 0, 0, 0, -1))

OK, WARNING, CRITICAL, UNKNOWN = states.OK, states.WARNING, states.CRITICAL, states.UNKNOWN

LOST = "runner lost before the action ended"


def make_policy(**settings: object) -> Policy:
    values: dict[str, object] = {
        "cooldown": "10m",
        "backoff": 2,
        "max_cooldown": "25m",
        "max_attempts": 3,
        "window": "6h",
        "reset_after": "1h",
        "action_timeout": "2m",
        "grace": "30s",
    }
    values.update(settings)
    return Policy(**values)


POLICY = make_policy()


def hms(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))


def make_attempt(
    id: str,
    number: int,
    started: float,
    ended: float | None = None,
    exit_code: int | None = None,
    pid: int | None = PID,
    **fields: object,
) -> Attempt:
    values: dict[str, object] = {
        "id": id,
        "number": number,
        "started": started,
        "action": ACTION,
        "argv": list(ARGV),
        "pid": pid,
        "create_time": None if pid is None else started + 0.1,
        "ended": ended,
        "exit_code": exit_code,
        "duration": None if ended is None else ended - started,
    }
    values.update(fields)
    return Attempt(**values)


def run(check_state: int, record: Record, now: float, policy: Policy = POLICY, **kwargs: object):
    """One plugin run; also checks that ``decide`` never mutates its input."""
    kwargs.setdefault("action", ACTION)
    kwargs.setdefault("argv", list(ARGV))
    before = copy.deepcopy(record.to_json())
    decision = decide(check_state, record, policy, now, **kwargs)
    assert record.to_json() == before, "decide() mutated the record it was given"
    return decision


def kinds(decision) -> list[object]:
    return [event["event"] for event in decision.events]


def spawned(record: Record, pid: int = PID) -> Record:
    """What the engine does after row 9: record the runner's pid."""
    record = record.copy()
    record.attempts[-1].pid = pid
    record.attempts[-1].create_time = record.attempts[-1].started + 0.1
    return record


def finished(record: Record, ended: float, exit_code: int = 0, timed_out: bool = False) -> Record:
    """What the runner does when the action ends."""
    record = record.copy()
    last = record.attempts[-1]
    last.ended = ended
    last.exit_code = exit_code
    last.timed_out = timed_out
    last.duration = ended - last.started
    return record


def record_with(*attempts: Attempt, **fields: object) -> Record:
    values: dict[str, object] = {
        "check": NAME,
        "attempts": list(attempts),
        "streak": max((a.number for a in attempts), default=0),
        "heals_total": len(attempts),
        "last_state": CRITICAL,
        "last_change": attempts[0].started if attempts else None,
        "open_since": attempts[0].started if attempts else None,
    }
    values.update(fields)
    return Record(**values)


# ---------------------------------------------------------------------------
# Row 1: OK or WARNING -> unchanged; recovered; reset_after
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("check_state", [OK, WARNING])
def test_row1_healthy_is_unchanged(check_state: int) -> None:
    decision = run(check_state, Record(check=NAME), T0)
    assert decision.row == 1
    assert decision.state == check_state
    assert decision.note == ""
    assert decision.heal is None
    assert decision.events == []
    assert decision.record is not None
    assert decision.record.ok_since == T0
    assert decision.record.last_state == check_state
    assert decision.record.last_change == T0
    assert decision.record.attempts == []
    assert decision.record.streak == 0


def test_row1_nothing_changed_gives_no_record() -> None:
    first = run(OK, Record(check=NAME), T0)
    second = run(OK, first.record, T0 + 60)
    assert second.row == 1
    assert second.state == OK
    assert second.record is None
    assert second.events == []


def test_row1_recovered_event_carries_time_to_recover() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0), open_since=T0)
    decision = run(OK, rec, T0 + 45.5)
    assert decision.row == 1
    assert decision.state == OK
    assert decision.heal is None
    assert kinds(decision) == ["recovered"]
    assert decision.events[0] == {
        "event": "recovered",
        "check": NAME,
        "attempt": 1,
        "argv": ARGV,
        "pid": PID,
        "exit_code": 0,
        "duration": 10,
        "timed_out": False,
        "time_to_recover": 45.5,
    }
    new = decision.record
    assert new.open_since is None
    assert new.gave_up_at is None
    assert new.ok_since == T0 + 45.5
    assert new.last_state == OK
    assert new.last_change == T0 + 45.5
    assert new.streak == 1  # the streak only resets after reset_after
    # recovered is journaled once per episode
    again = run(OK, new, T0 + 60)
    assert again.events == []
    assert again.record is None


def test_row1_warning_also_recovers() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0), open_since=T0)
    decision = run(WARNING, rec, T0 + 100)
    assert decision.row == 1
    assert decision.state == WARNING
    assert kinds(decision) == ["recovered"]
    assert decision.events[0]["time_to_recover"] == 100.0


def test_row1_no_recovered_event_without_open_attempt() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0), open_since=None)
    decision = run(OK, rec, T0 + 100)
    assert decision.row == 1
    assert decision.events == []


def test_row1_reset_after_healthy_stretch() -> None:
    rec = record_with(
        make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0),
        open_since=None,
        ok_since=T0 + 20,
        last_state=OK,
        cooldown_noted="a1",
    )
    just_before = run(OK, rec, T0 + 20 + 3599)
    assert just_before.row == 1
    assert just_before.events == []
    assert just_before.record is None

    decision = run(OK, rec, T0 + 20 + 3600)
    assert decision.row == 1
    assert decision.state == OK
    assert kinds(decision) == ["reset"]
    assert decision.events[0]["reason"] == "healthy for 1h"
    assert decision.events[0]["attempt"] == 1
    new = decision.record
    assert new.streak == 0
    assert new.reset_at == T0 + 20 + 3600
    assert new.cooldown_noted is None
    assert new.ok_since == T0 + 20
    # The reset happens once.
    again = run(OK, new, T0 + 20 + 7200)
    assert again.events == []
    assert again.record is None


def test_row1_no_reset_event_when_streak_is_zero() -> None:
    rec = Record(check=NAME, ok_since=T0, last_state=OK)
    decision = run(OK, rec, T0 + 86400)
    assert decision.events == []
    assert decision.record is None


def test_row1_reset_after_needs_an_unbroken_healthy_stretch() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0), open_since=None)
    ok1 = run(OK, rec, T0 + 100)
    assert ok1.record.ok_since == T0 + 100
    # CRITICAL breaks the healthy stretch (still in cooldown: row 8).
    crit = run(CRITICAL, ok1.record, T0 + 200)
    assert crit.row == 8
    assert crit.record.ok_since is None
    ok2 = run(OK, crit.record, T0 + 300)
    assert ok2.record.ok_since == T0 + 300
    # 1h after the first OK, but only 59m40s after the second: no reset.
    not_yet = run(OK, ok2.record, T0 + 100 + 3600)
    assert not_yet.events == []
    assert not_yet.record is None
    reset = run(OK, ok2.record, T0 + 300 + 3600)
    assert kinds(reset) == ["reset"]
    assert reset.record.streak == 0


def test_row1_reset_then_critical_heals_at_once() -> None:
    policy = make_policy(cooldown="2h", max_cooldown="4h", reset_after="1h")
    rec = record_with(
        make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0),
        make_attempt("a2", 2, T0 + 100, ended=T0 + 110, exit_code=0),
        make_attempt("a3", 3, T0 + 200, ended=T0 + 210, exit_code=0),
        gave_up_at=T0 + 300,
    )
    # Without the reset this is row 7 (3 attempts in the window).
    assert run(CRITICAL, rec, T0 + 3900, policy).row == 7
    ok = run(OK, rec, T0 + 300, policy)
    reset = run(OK, ok.record, T0 + 3900, policy)
    assert kinds(reset) == ["reset"]
    assert reset.record.streak == 0
    decision = run(CRITICAL, reset.record, T0 + 3960, policy, attempt_id="b1")
    assert decision.row == 9
    assert decision.state == WARNING
    assert decision.note == f"self-healing: started {ACTION} (attempt 1/3)"
    assert decision.heal is not None
    assert decision.heal.number == 1
    assert decision.record.streak == 1
    assert decision.record.heals_total == 4
    assert kinds(decision) == ["attempt"]


def test_row1_reset_clears_the_cooldown_of_the_last_attempt() -> None:
    policy = make_policy(cooldown="2h", max_cooldown="4h", reset_after="1h")
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0), open_since=None)
    # Still within the 2h cooldown: row 8 unless reset.
    assert run(CRITICAL, rec, T0 + 3700, policy).row == 8
    ok = run(OK, rec, T0 + 60, policy)
    reset = run(OK, ok.record, T0 + 3660, policy)
    assert kinds(reset) == ["reset"]
    decision = run(CRITICAL, reset.record, T0 + 3700, policy)
    assert decision.row == 9
    assert decision.heal.number == 1


def test_row1_ok_since_in_the_future_is_pulled_back() -> None:
    # The clock was stepped back: ok_since lies ahead of now.
    rec = record_with(
        make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0),
        open_since=None,
        ok_since=T0 + 5 * 3600,
        last_state=OK,
    )
    decision = run(OK, rec, T0 + 100)
    assert decision.events == []
    assert decision.record.ok_since == T0 + 100
    reset = run(OK, decision.record, T0 + 100 + 3600)
    assert kinds(reset) == ["reset"]


# ---------------------------------------------------------------------------
# Row 2: UNKNOWN
# ---------------------------------------------------------------------------


def test_row2_unknown_is_unchanged() -> None:
    decision = run(UNKNOWN, Record(check=NAME), T0)
    assert decision.row == 2
    assert decision.state == UNKNOWN
    assert decision.note == ""
    assert decision.heal is None
    assert decision.events == []
    assert decision.record.last_state == UNKNOWN
    assert decision.record.last_change == T0
    assert decision.record.attempts == []


def test_row2_unknown_does_not_recover_or_touch_attempts() -> None:
    rec = record_with(make_attempt("a1", 1, T0, pid=PID), open_since=T0)
    decision = run(UNKNOWN, rec, T0 + 5000, runner_alive=False)
    assert decision.row == 2
    assert decision.state == UNKNOWN
    assert decision.heal is None
    assert decision.events == []
    new = decision.record
    assert new.open_since == T0
    assert new.streak == 1
    assert new.attempts[-1].ended is None
    assert new.attempts[-1].error is None
    again = run(UNKNOWN, new, T0 + 5060, runner_alive=False)
    assert again.row == 2
    assert again.record is None


def test_row2_unknown_heals_when_heal_on_includes_unknown() -> None:
    policy = make_policy(heal_on=["critical", "unknown"])
    decision = run(UNKNOWN, Record(check=NAME), T0, policy, attempt_id="u1")
    assert decision.row == 9
    assert decision.state == WARNING
    assert decision.note == f"self-healing: started {ACTION} (attempt 1/3)"
    assert decision.heal is not None
    assert decision.heal.id == "u1"
    assert kinds(decision) == ["attempt"]
    assert decision.record.last_state == UNKNOWN


def test_row2_critical_still_heals_when_heal_on_includes_unknown() -> None:
    policy = make_policy(heal_on=["critical", "unknown"])
    decision = run(CRITICAL, Record(check=NAME), T0, policy)
    assert decision.row == 9
    assert decision.heal is not None


def test_row2_critical_outside_heal_on_is_not_healthy() -> None:
    # heal_on without critical is accepted by Policy; a CRITICAL result is
    # then not healed, but it is not a recovery either (row 1 is OK or WARNING).
    policy = make_policy(heal_on=["unknown"])
    rec = record_with(
        make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0), open_since=T0, last_state=OK, ok_since=None
    )
    decision = run(CRITICAL, rec, T0 + 100, policy)
    assert decision.row == 2
    assert decision.state == CRITICAL
    assert decision.note == ""
    assert decision.heal is None
    assert decision.events == []
    new = decision.record
    assert new.last_state == CRITICAL
    assert new.open_since == T0
    assert new.ok_since is None
    assert new.streak == 1


# ---------------------------------------------------------------------------
# Row 3: paused or Nagios downtime
# ---------------------------------------------------------------------------


def test_row3_paused_until_with_reason() -> None:
    rec = Record(check=NAME, paused_until=T0 + 3600, pause_reason="maintenance", ok_since=T0 - 10)
    decision = run(CRITICAL, rec, T0)
    assert decision.row == 3
    assert decision.state == CRITICAL
    assert decision.note == f"self-healing paused until {hms(T0 + 3600)} (maintenance)"
    assert decision.heal is None
    assert decision.events == []
    assert decision.record.ok_since is None
    assert decision.record.attempts == []
    assert decision.record.heals_total == 0


def test_row3_paused_without_reason() -> None:
    rec = Record(check=NAME, paused_until=T0 + 60, last_state=CRITICAL)
    decision = run(CRITICAL, rec, T0)
    assert decision.row == 3
    assert decision.note == f"self-healing paused until {hms(T0 + 60)}"
    assert decision.record is None


def test_row3_pause_on_another_day_shows_the_date() -> None:
    until = T0 + 2 * 86400
    rec = Record(check=NAME, paused_until=until, pause_reason="migration")
    decision = run(CRITICAL, rec, T0)
    assert decision.row == 3
    expected = time.strftime("%Y-%m-%d %H:%M", time.localtime(until))
    assert decision.note == f"self-healing paused until {expected} (migration)"


@pytest.mark.parametrize("offset", [0.0, -1.0, -3600.0])
def test_row3_pause_in_the_past_is_not_paused(offset: float) -> None:
    rec = Record(check=NAME, paused_until=T0 + offset, pause_reason="old")
    decision = run(CRITICAL, rec, T0)
    assert decision.row == 9
    assert decision.state == WARNING
    assert decision.heal is not None
    assert "paused" not in decision.note


def test_row3_downtime() -> None:
    decision = run(CRITICAL, Record(check=NAME), T0, downtime=True)
    assert decision.row == 3
    assert decision.state == CRITICAL
    assert decision.note.startswith("self-healing paused")
    assert "downtime" in decision.note
    assert decision.heal is None
    assert decision.events == []
    assert decision.record.attempts == []


def test_row3_precedes_running_attempt_and_state_error() -> None:
    rec = record_with(make_attempt("a1", 1, T0), paused_until=T0 + 600)
    decision = run(CRITICAL, rec, T0 + 5, runner_alive=True, state_error="locked")
    assert decision.row == 3
    assert decision.state == CRITICAL
    decision = run(CRITICAL, rec, T0 + 5, runner_alive=False, downtime=True)
    assert decision.row == 3
    assert decision.events == []  # no action_lost while paused


# ---------------------------------------------------------------------------
# Row 4: the state cannot be read, locked or written
# ---------------------------------------------------------------------------


def test_row4_state_error_disables_healing() -> None:
    why = "state dir /var/lib/selfheal is world-writable"
    decision = run(CRITICAL, Record(check=NAME), T0, state_error=why)
    assert decision.row == 4
    assert decision.state == CRITICAL
    assert decision.note == f"self-healing disabled: {why}"
    assert decision.heal is None
    assert decision.record is None
    assert decision.events == []


def test_row4_state_error_with_dead_runner_closes_nothing() -> None:
    rec = record_with(make_attempt("a1", 1, T0))
    decision = run(CRITICAL, rec, T0 + 60, runner_alive=False, state_error="lock timeout")
    assert decision.row == 4
    assert decision.state == CRITICAL
    assert decision.note == "self-healing disabled: lock timeout"
    assert decision.record is None
    assert decision.events == []
    assert decision.heal is None


def test_row4_state_error_with_live_runner_is_row5() -> None:
    rec = record_with(make_attempt("a1", 1, T0))
    decision = run(CRITICAL, rec, T0 + 7, runner_alive=True, state_error="lock timeout")
    assert decision.row == 5
    assert decision.state == WARNING
    assert decision.note == f"self-healing in progress: {ACTION}, attempt 1/3, started 7s ago"
    assert decision.heal is None
    assert decision.events == []


def test_row4_state_error_with_attempt_being_spawned_is_row5() -> None:
    rec = record_with(make_attempt("a1", 1, T0, pid=None))
    decision = run(CRITICAL, rec, T0 + 2, state_error="lock timeout")
    assert decision.row == 5
    assert decision.state == WARNING
    assert decision.heal is None


def test_row4_state_error_never_heals_even_when_allowed() -> None:
    rec = record_with(make_attempt("a1", 1, T0 - 86400, ended=T0 - 86390, exit_code=0), open_since=None)
    assert run(CRITICAL, rec, T0).row == 9
    decision = run(CRITICAL, rec, T0, state_error="read-only file system")
    assert decision.row == 4
    assert decision.heal is None
    assert decision.record is None


# ---------------------------------------------------------------------------
# Row 5: an attempt is running
# ---------------------------------------------------------------------------


def test_row5_in_progress_with_live_runner() -> None:
    rec = record_with(
        make_attempt("a0", 1, T0 - 3000, ended=T0 - 2990, exit_code=1),
        make_attempt("a1", 2, T0),
    )
    decision = run(CRITICAL, rec, T0 + 75, runner_alive=True)
    assert decision.row == 5
    assert decision.state == WARNING
    assert decision.note == f"self-healing in progress: {ACTION}, attempt 2/3, started 1m15s ago"
    assert decision.heal is None
    assert decision.events == []
    assert decision.record is None  # last_state was already CRITICAL


def test_row5_attempt_without_pid_is_being_spawned() -> None:
    rec = record_with(make_attempt("a1", 1, T0, pid=None))
    decision = run(CRITICAL, rec, T0 + 3, runner_alive=None)
    assert decision.row == 5
    assert decision.state == WARNING
    assert decision.note == f"self-healing in progress: {ACTION}, attempt 1/3, started 3s ago"
    assert decision.heal is None
    assert decision.events == []
    assert decision.record is None

    just_before = run(CRITICAL, rec, T0 + SPAWN_LIMIT - 0.01)
    assert just_before.row == 5


def test_row5_attempt_without_pid_is_lost_after_spawn_limit() -> None:
    rec = record_with(make_attempt("a1", 1, T0, pid=None))
    now = T0 + SPAWN_LIMIT
    decision = run(CRITICAL, rec, now, runner_alive=None)
    assert kinds(decision) == ["action_lost", "skipped_cooldown"]
    assert decision.events[0]["reason"] == LOST
    lost = decision.record.attempts[-1]
    assert lost.ended == now
    assert lost.error == LOST
    # A lost runner is a failed attempt: no grace, "did not help" at once.
    assert decision.row == 8
    assert decision.state == CRITICAL
    assert decision.heal is None


def test_row5_in_progress_up_to_running_limit() -> None:
    limit = POLICY.running_limit()
    assert limit >= POLICY.action_timeout
    rec = record_with(make_attempt("a1", 1, T0))
    decision = run(CRITICAL, rec, T0 + limit, runner_alive=True)
    assert decision.row == 5
    assert decision.state == WARNING
    assert decision.note.startswith(f"self-healing in progress: {ACTION}, attempt 1/3, started ")


def test_row5_stuck_runner_beyond_running_limit() -> None:
    limit = POLICY.running_limit()
    rec = record_with(make_attempt("a1", 1, T0))
    decision = run(CRITICAL, rec, T0 + limit + 1, runner_alive=True)
    assert decision.row == 5
    assert decision.state == CRITICAL
    assert decision.note.startswith(f"self-healing stuck: {ACTION} still running after ")
    assert decision.note.endswith(f"(pid {PID})")
    assert "stuck" in decision.note
    assert decision.heal is None
    assert decision.events == []
    assert decision.record is None
    # Long after, and still alive: still no second action beside it.
    later = run(CRITICAL, rec, T0 + 86400, runner_alive=True)
    assert later.row == 5
    assert later.heal is None
    assert "stuck" in later.note


def test_row5_splay_extends_the_running_limit() -> None:
    policy = make_policy(splay="1m")
    assert policy.running_limit() == POLICY.running_limit() + 60
    rec = record_with(make_attempt("a1", 1, T0))
    decision = run(CRITICAL, rec, T0 + POLICY.running_limit() + 30, policy, runner_alive=True)
    assert decision.row == 5
    assert decision.state == WARNING


def test_row5_dead_runner_is_action_lost_then_did_not_help() -> None:
    rec = record_with(make_attempt("a1", 1, T0))
    now = T0 + 50
    decision = run(CRITICAL, rec, now, runner_alive=False)
    assert kinds(decision) == ["action_lost", "skipped_cooldown"]
    event = decision.events[0]
    assert event["event"] == "action_lost"
    assert event["check"] == NAME
    assert event["attempt"] == 1
    assert event["argv"] == ARGV
    assert event["pid"] == PID
    assert event["reason"] == LOST
    lost = decision.record.attempts[-1]
    assert lost.id == "a1"
    assert lost.ended == now
    assert lost.error == LOST
    assert lost.outcome() == f"failed: {LOST}"
    # The runner was lost: the attempt failed, so no grace (row 6) applies.
    assert decision.row == 8
    assert decision.state == CRITICAL
    assert decision.note == (
        f"self-healing did not help: attempt 1 at {hms(T0)} failed: {LOST}; next attempt after {hms(now + 600)}"
    )
    assert decision.heal is None
    # The next run sees a closed attempt: no second action_lost.
    again = run(CRITICAL, decision.record, now + 10)
    assert again.row == 8
    assert again.events == []


def test_row5_dead_runner_without_grace_goes_to_cooldown() -> None:
    policy = make_policy(grace=0)
    rec = record_with(make_attempt("a1", 1, T0))
    now = T0 + 50
    decision = run(CRITICAL, rec, now, policy, runner_alive=False)
    assert decision.row == 8
    assert decision.state == CRITICAL
    assert kinds(decision) == ["action_lost", "skipped_cooldown"]
    assert decision.note == (
        f"self-healing did not help: attempt 1 at {hms(T0)} failed: {LOST}; "
        f"next attempt after {hms(now + 600)}"
    )
    assert decision.heal is None


# ---------------------------------------------------------------------------
# Row 6: grace after the last attempt ended
# ---------------------------------------------------------------------------


def test_row6_waiting_for_recovery_within_grace() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0))
    decision = run(CRITICAL, rec, T0 + 10 + 29.9)
    assert decision.row == 6
    assert decision.state == WARNING
    assert decision.note == f"self-healing: waiting for recovery after {ACTION}"
    assert decision.heal is None
    assert decision.events == []
    assert decision.record is None

    after = run(CRITICAL, rec, T0 + 10 + 30)
    assert after.row == 8
    assert after.state == CRITICAL


def test_row6_no_grace_when_grace_is_zero() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=0))
    decision = run(CRITICAL, rec, T0 + 10, make_policy(grace=0))
    assert decision.row == 8


def test_row6_grace_precedes_gave_up() -> None:
    rec = record_with(
        make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=1),
        make_attempt("a2", 2, T0 + 700, ended=T0 + 710, exit_code=1),
        make_attempt("a3", 3, T0 + 2000, ended=T0 + 2010, exit_code=0),
    )
    decision = run(CRITICAL, rec, T0 + 2020)
    assert decision.row == 6
    assert decision.state == WARNING
    assert decision.events == []
    assert run(CRITICAL, rec, T0 + 2040).row == 7


def test_row6_no_grace_after_a_failed_last_attempt_gave_up_at_once() -> None:
    rec = record_with(
        make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=1),
        make_attempt("a2", 2, T0 + 700, ended=T0 + 710, exit_code=1),
        make_attempt("a3", 3, T0 + 2000, ended=T0 + 2010, exit_code=1),
    )
    decision = run(CRITICAL, rec, T0 + 2020)
    assert (decision.row, decision.state) == (7, CRITICAL)
    assert kinds(decision) == ["gave_up"]


# ---------------------------------------------------------------------------
# Row 7: max_attempts within window -> gave up
# ---------------------------------------------------------------------------


def three_attempts() -> Record:
    return record_with(
        make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=1),
        make_attempt("a2", 2, T0 + 3600, ended=T0 + 3610, exit_code=1),
        make_attempt("a3", 3, T0 + 7200, ended=T0 + 7210, exit_code=1),
    )


def test_row7_gave_up() -> None:
    now = T0 + 7200 + 1500 + 100  # well past the last cooldown
    decision = run(CRITICAL, three_attempts(), now)
    assert decision.row == 7
    assert decision.state == CRITICAL
    assert decision.note == f"self-healing gave up: 3 attempts since {hms(T0)}; run 'selfheal reset {NAME}'"
    assert "gave up" in decision.note
    assert f"run 'selfheal reset {NAME}'" in decision.note
    assert decision.heal is None
    assert kinds(decision) == ["gave_up"]
    assert decision.events[0]["reason"] == "3 attempts within 6h"
    assert decision.events[0]["attempt"] == 3
    assert decision.events[0]["exit_code"] == 1
    assert decision.record.gave_up_at == now
    assert len(decision.record.attempts) == 3
    # gave_up is journaled once.
    again = run(CRITICAL, decision.record, now + 300)
    assert again.row == 7
    assert again.events == []
    assert again.record is None


def test_row7_precedes_cooldown() -> None:
    decision = run(CRITICAL, three_attempts(), T0 + 7210 + 60)
    assert decision.row == 7
    assert kinds(decision) == ["gave_up"]


def test_row7_sliding_window() -> None:
    rec = three_attempts()
    # The first attempt is still (just) inside the 6h window.
    assert run(CRITICAL, rec, T0 + 21600 - 1).row == 7
    gave_up = run(CRITICAL, rec, T0 + 21600 - 1)
    # Exactly one window after the first attempt it no longer counts.
    now = T0 + 21600
    decision = run(CRITICAL, gave_up.record, now, attempt_id="a4")
    assert decision.row == 9
    # "Gave up" paged for this incident: the retry stays CRITICAL (retry_state).
    assert decision.state == CRITICAL
    assert decision.note == f"self-healing: retrying {ACTION} (attempt 3/3)"
    assert decision.heal.number == 4  # the backoff streak goes on
    assert decision.heal.id == "a4"
    assert [a.id for a in decision.record.attempts] == ["a2", "a3", "a4"]  # a1 pruned
    assert decision.record.gave_up_at is None
    assert decision.record.streak == 4
    assert decision.record.heals_total == 4
    assert kinds(decision) == ["attempt"]


def test_row7_max_attempts_one() -> None:
    policy = make_policy(max_attempts=1)
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=1))
    decision = run(CRITICAL, rec, T0 + 60, policy)
    assert decision.row == 7
    assert decision.note == f"self-healing gave up: 1 attempts since {hms(T0)}; run 'selfheal reset {NAME}'"


def test_row7_attempts_before_reset_do_not_count() -> None:
    rec = three_attempts()
    rec.reset_at = T0 + 3600  # a1 started before the reset, a2 and a3 count
    rec.streak = 2
    decision = run(CRITICAL, rec, T0 + 7210 + 1500)
    assert decision.row == 9
    assert decision.note == f"self-healing: started {ACTION} (attempt 3/3)"
    assert decision.heal.number == 3


# ---------------------------------------------------------------------------
# Row 8: within the cooldown -> did not help; exact backoff numbers
# ---------------------------------------------------------------------------


def test_policy_backoff_numbers() -> None:
    assert POLICY.cooldown_after(1) == 600
    assert POLICY.cooldown_after(2) == 1200
    assert POLICY.cooldown_after(3) == 1500
    assert POLICY.cooldown_after(4) == 1500
    assert POLICY.cooldown_after(10_000) == 1500
    no_backoff = make_policy(backoff=1)
    assert no_backoff.cooldown_after(5) == 600


@pytest.mark.parametrize(("number", "cooldown"), [(1, 600), (2, 1200), (3, 1500), (4, 1500)])
def test_row8_cooldown_then_row9(number: int, cooldown: int) -> None:
    policy = make_policy(max_attempts=10)
    ended = T0 + 40
    rec = record_with(make_attempt(f"a{number}", number, T0, ended=ended, exit_code=3))
    before = run(CRITICAL, rec, ended + cooldown - 0.001, policy)
    assert before.row == 8
    assert before.state == CRITICAL
    assert before.note == (
        f"self-healing did not help: attempt {number} at {hms(T0)} exited 3; "
        f"next attempt after {hms(ended + cooldown)}"
    )
    assert before.heal is None

    at = run(CRITICAL, rec, ended + cooldown, policy, attempt_id="next")
    assert at.row == 9
    assert at.state == WARNING
    assert at.heal is not None
    assert at.heal.number == number + 1
    assert at.heal.started == ended + cooldown
    assert at.record.streak == number + 1

    after = run(CRITICAL, rec, ended + cooldown + 3600, policy)
    assert after.row == 9


def test_row8_skipped_cooldown_journaled_once_per_attempt() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=1))
    first = run(CRITICAL, rec, T0 + 100)
    assert first.row == 8
    assert kinds(first) == ["skipped_cooldown"]
    assert first.events[0] == {
        "event": "skipped_cooldown",
        "check": NAME,
        "attempt": 1,
        "argv": ARGV,
        "pid": PID,
        "exit_code": 1,
        "duration": 10,
        "timed_out": False,
        "reason": f"next attempt after {hms(T0 + 610)}",
    }
    assert first.record.cooldown_noted == "a1"
    second = run(CRITICAL, first.record, T0 + 160)
    assert second.row == 8
    assert second.events == []
    assert second.record is None
    third = run(CRITICAL, first.record, T0 + 220)
    assert third.events == []


def test_row8_timed_out_attempt() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 130, exit_code=None, timed_out=True))
    decision = run(CRITICAL, rec, T0 + 200)
    assert decision.row == 8
    assert decision.note == (
        f"self-healing did not help: attempt 1 at {hms(T0)} timed out after 2m10s; "
        f"next attempt after {hms(T0 + 730)}"
    )
    assert decision.events[0]["timed_out"] is True


# ---------------------------------------------------------------------------
# Row 9: heal
# ---------------------------------------------------------------------------


def test_row9_heals_when_allowed() -> None:
    decision = run(CRITICAL, Record(check=NAME), T0, attempt_id="a1")
    assert decision.row == 9
    assert decision.state == WARNING
    assert decision.note == f"self-healing: started {ACTION} (attempt 1/3)"
    heal = decision.heal
    assert heal is not None
    assert heal.id == "a1"
    assert heal.number == 1
    assert heal.started == T0
    assert heal.action == ACTION
    assert heal.argv == ARGV
    assert heal.pid is None
    assert heal.ended is None
    assert decision.events == [{"event": "attempt", "check": NAME, "attempt": 1, "argv": ARGV, "pid": None}]
    new = decision.record
    assert new is not None
    assert new.attempts == [heal]  # recorded before it is spawned
    assert new.streak == 1
    assert new.heals_total == 1
    assert new.open_since == T0
    assert new.gave_up_at is None
    assert new.ok_since is None
    assert new.last_state == CRITICAL
    assert new.last_change == T0
    assert new.check == NAME


def test_row9_random_attempt_id() -> None:
    first = run(CRITICAL, Record(check=NAME), T0)
    second = run(CRITICAL, Record(check=NAME), T0)
    assert len(first.heal.id) == 12
    int(first.heal.id, 16)
    assert first.heal.id != second.heal.id


def test_row9_argv_is_copied() -> None:
    argv = list(ARGV)
    decision = decide(CRITICAL, Record(check=NAME), POLICY, T0, action=ACTION, argv=argv)
    argv.append("--oops")
    assert decision.heal.argv == ARGV


def test_row9_dry_run_would_start() -> None:
    decision = run(CRITICAL, Record(check=NAME), T0, dry_run=True)
    assert decision.row == 9
    assert decision.state == WARNING
    assert decision.note == f"self-healing: would start {ACTION} (attempt 1/3)"
    assert "started" not in decision.note


def test_row9_dry_run_evaluates_the_other_rows() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=1))
    decision = run(CRITICAL, rec, T0 + 100, dry_run=True)
    assert decision.row == 8
    assert decision.state == CRITICAL


# ---------------------------------------------------------------------------
# A whole episode, one plugin run after the other
# ---------------------------------------------------------------------------


def test_sequence_heal_progress_grace_did_not_help_gave_up_recover_reset() -> None:
    t = T0
    # Run 1: CRITICAL, nothing recorded -> heal (attempt 1/3).
    d = run(CRITICAL, Record(check=NAME), t, attempt_id="a1")
    assert (d.row, d.state) == (9, WARNING)
    assert d.note == f"self-healing: started {ACTION} (attempt 1/3)"
    assert kinds(d) == ["attempt"]
    rec = spawned(d.record)

    # Run 2: the runner is alive -> in progress.
    d = run(CRITICAL, rec, t + 5, runner_alive=True)
    assert (d.row, d.state) == (5, WARNING)
    assert d.note == f"self-healing in progress: {ACTION}, attempt 1/3, started 5s ago"
    assert d.record is None
    assert d.events == []

    # The action ends (exit 0) at t+12.
    rec = finished(rec, t + 12, exit_code=0)

    # Run 3: within grace -> waiting for recovery.
    d = run(CRITICAL, rec, t + 20)
    assert (d.row, d.state) == (6, WARNING)
    assert "waiting for recovery" in d.note
    assert d.record is None

    # Run 4: grace over, still CRITICAL -> did not help (cooldown 600s).
    d = run(CRITICAL, rec, t + 42)
    assert (d.row, d.state) == (8, CRITICAL)
    assert d.note == (
        f"self-healing did not help: attempt 1 at {hms(t)} exited 0; next attempt after {hms(t + 612)}"
    )
    assert kinds(d) == ["skipped_cooldown"]
    rec = d.record
    assert rec.cooldown_noted == "a1"

    # Run 5: still in cooldown, nothing new to journal or write.
    d = run(CRITICAL, rec, t + 611.999)
    assert (d.row, d.state) == (8, CRITICAL)
    assert d.events == []
    assert d.record is None

    # Run 6: cooldown over -> heal 2, a retry after "did not help": it stays
    # CRITICAL, so Nagios sees no WARNING between two CRITICALs (one page).
    assert rec.did_not_help_shown
    d = run(CRITICAL, rec, t + 612, attempt_id="a2")
    assert (d.row, d.state) == (9, CRITICAL)
    assert d.note == f"self-healing: retrying {ACTION} (attempt 2/3)"
    assert d.heal.number == 2
    assert d.record.open_since == t  # same episode
    assert d.record.streak == 2
    rec = finished(spawned(d.record), t + 620, exit_code=1)

    # Run 7: did not help, cooldown doubled to 1200s.
    d = run(CRITICAL, rec, t + 700)
    assert (d.row, d.state) == (8, CRITICAL)
    assert d.note == (
        f"self-healing did not help: attempt 2 at {hms(t + 612)} exited 1; next attempt after {hms(t + 1820)}"
    )
    assert kinds(d) == ["skipped_cooldown"]
    rec = d.record
    assert rec.cooldown_noted == "a2"
    d = run(CRITICAL, rec, t + 1819.5)
    assert (d.row, d.events, d.record) == (8, [], None)

    # Run 8: heal 3, still a retry: CRITICAL.
    d = run(CRITICAL, rec, t + 1820, attempt_id="a3")
    assert (d.row, d.state) == (9, CRITICAL)
    assert d.note == f"self-healing: retrying {ACTION} (attempt 3/3)"
    assert d.heal.number == 3
    rec = finished(spawned(d.record), t + 1830, exit_code=1)

    # Run 9: heal 3 exited 1, so no grace: 3 attempts in the window -> gave
    # up at once, pages a human.
    d = run(CRITICAL, rec, t + 1845)
    assert (d.row, d.state) == (7, CRITICAL)
    assert d.note == f"self-healing gave up: 3 attempts since {hms(t)}; run 'selfheal reset {NAME}'"
    assert kinds(d) == ["gave_up"]
    assert d.heal is None
    rec = d.record
    assert rec.gave_up_at == t + 1845
    assert rec.off_since == t + 1845
    d = run(CRITICAL, rec, t + 3000)
    assert (d.row, d.events, d.record) == (7, [], None)

    # Run 11: a human fixed it -> recovered, with the time to recover; the
    # OK line says healing is still off.
    d = run(OK, rec, t + 4000)
    assert (d.row, d.state) == (1, OK)
    assert kinds(d) == ["recovered"]
    assert d.events[0]["time_to_recover"] == 4000.0
    assert d.note == f"self-healing off since {hms(t + 1845)} (gave up); run 'selfheal reset {NAME}'"
    rec = d.record
    assert rec.open_since is None
    assert rec.gave_up_at is None
    assert rec.off_since == t + 1845
    assert not rec.did_not_help_shown
    assert rec.streak == 3

    # Healthy for reset_after -> reset, and healing is on again.
    d = run(OK, rec, t + 4000 + 3599)
    assert (d.events, d.record) == ([], None)
    assert d.note.startswith("self-healing off since ")
    d = run(OK, rec, t + 4000 + 3600)
    assert kinds(d) == ["reset"]
    assert d.note == ""
    rec = d.record
    assert rec.streak == 0
    assert rec.off_since is None

    # A new CRITICAL heals at once, numbering from 1 again.
    d = run(CRITICAL, rec, t + 7700, attempt_id="b1")
    assert (d.row, d.state) == (9, WARNING)
    assert d.note == f"self-healing: started {ACTION} (attempt 1/3)"
    assert d.heal.number == 1
    assert d.record.open_since == t + 7700
    assert d.record.heals_total == 4
    rec = finished(spawned(d.record), t + 7710, exit_code=1)
    d = run(CRITICAL, rec, t + 7800)
    assert d.row == 8
    assert d.note.endswith(f"next attempt after {hms(t + 7710 + 600)}")


# ---------------------------------------------------------------------------
# The clock stepped backwards: timestamps in the future
# ---------------------------------------------------------------------------

STEP = 86400.0  # the clock went back one day


def test_clock_step_back_grace_is_not_endless() -> None:
    rec = record_with(make_attempt("a1", 1, T0 + STEP - 10, ended=T0 + STEP, exit_code=0))
    d = run(CRITICAL, rec, T0)
    assert d.row == 6
    assert d.state == WARNING
    # The future timestamps are pulled back to now and written back.
    assert d.record is not None
    assert d.record.attempts[-1].ended == T0
    assert d.record.attempts[-1].started == T0
    assert d.record.open_since == T0
    assert d.record.last_change == T0
    rec = d.record
    assert run(CRITICAL, rec, T0 + POLICY.grace - 0.001).row == 6
    later = run(CRITICAL, rec, T0 + POLICY.grace)
    assert later.row == 8
    assert later.state == CRITICAL


def test_clock_step_back_cooldown_is_not_endless() -> None:
    policy = make_policy(grace=0)
    rec = record_with(make_attempt("a1", 1, T0 + STEP - 10, ended=T0 + STEP, exit_code=0))
    d = run(CRITICAL, rec, T0, policy)
    assert d.row == 8
    assert d.note.endswith(f"next attempt after {hms(T0 + 600)}")
    rec = d.record
    assert rec.attempts[-1].ended == T0
    assert run(CRITICAL, rec, T0 + 599.999, policy).row == 8
    later = run(CRITICAL, rec, T0 + policy.cooldown_after(1), policy)
    assert later.row == 9
    assert later.heal is not None
    assert later.heal.number == 2


def test_clock_step_back_spawning_attempt_is_not_endless() -> None:
    rec = record_with(make_attempt("a1", 1, T0 + STEP, pid=None))
    d = run(CRITICAL, rec, T0)
    assert d.row == 5
    assert d.state == WARNING
    rec = d.record
    assert rec.attempts[-1].started == T0
    later = run(CRITICAL, rec, T0 + SPAWN_LIMIT + 1)
    assert later.row == 8  # lost: failed, so "did not help" at once
    assert kinds(later) == ["action_lost", "skipped_cooldown"]
    assert later.record.attempts[-1].ended == T0 + SPAWN_LIMIT + 1


def test_clock_step_back_window_is_not_endless() -> None:
    rec = record_with(
        make_attempt("a1", 1, T0 + STEP, ended=T0 + STEP + 5, exit_code=1),
        make_attempt("a2", 2, T0 + STEP + 10, ended=T0 + STEP + 15, exit_code=1),
        make_attempt("a3", 3, T0 + STEP + 20, ended=T0 + STEP + 25, exit_code=0),
    )
    d = run(CRITICAL, rec, T0)
    assert d.row == 6
    gave_up = run(CRITICAL, d.record, T0 + 30)
    assert gave_up.row == 7
    assert kinds(gave_up) == ["gave_up"]
    # One window after the step, none of the three counts any more.
    later = run(CRITICAL, gave_up.record, T0 + 21600)
    assert later.row == 9
    assert later.note == f"self-healing: retrying {ACTION} (attempt 1/3)"
    assert later.heal.number == 4


def test_clock_step_back_keeps_a_pause() -> None:
    rec = Record(check=NAME, paused_until=T0 + STEP, pause_reason="maintenance", last_state=CRITICAL)
    d = run(CRITICAL, rec, T0)
    assert d.row == 3
    assert d.record is None  # paused_until is meant to be in the future


def test_clock_step_back_cooldown_starts_now_not_in_the_future() -> None:
    # Within one run, a future 'ended' counts as "just now".
    policy = make_policy(grace=0)
    rec = record_with(make_attempt("a1", 1, T0 + STEP - 10, ended=T0 + STEP, exit_code=0))
    d = run(CRITICAL, rec, T0, policy)
    assert d.row == 8
    assert d.note.endswith(f"next attempt after {hms(T0 + 600)}")


# ---------------------------------------------------------------------------
# The record: JSON round trip and strict shape checks
# ---------------------------------------------------------------------------


def full_record() -> Record:
    return Record(
        check=NAME,
        last_state=CRITICAL,
        last_change=T0 + 1.5,
        ok_since=None,
        open_since=T0,
        streak=2,
        reset_at=T0 - 86400,
        attempts=[
            make_attempt("a1", 1, T0, ended=T0 + 10, exit_code=1, log="/var/lib/selfheal/nginx.a1.log"),
            make_attempt("a2", 2, T0 + 700, pid=None, error="sudo: a password is required"),
            make_attempt("a3", 3, T0 + 2000, ended=T0 + 2130, timed_out=True),
        ],
        gave_up_at=T0 + 5000,
        cooldown_noted="a2",
        paused_until=T0 + 9000,
        pause_reason="maintenance",
        heals_total=7,
    )


def test_record_round_trip() -> None:
    rec = full_record()
    data = json.loads(json.dumps(rec.to_json()))
    back = Record.from_json(data)
    assert back == rec
    assert back.to_json() == rec.to_json()
    assert all(isinstance(a, Attempt) for a in back.attempts)
    assert back.attempts[2].timed_out is True
    assert back.attempts[1].error == "sudo: a password is required"
    assert back.version == RECORD_VERSION


def test_record_round_trip_of_defaults_and_decision_output() -> None:
    assert Record.from_json(Record().to_json()) == Record()
    assert Record.from_json({}) == Record()
    d = run(CRITICAL, Record(check=NAME), T0)
    back = Record.from_json(json.loads(json.dumps(d.record.to_json())))
    assert back == d.record


def test_record_accepts_int_timestamps() -> None:
    data = full_record().to_json()
    data["last_change"] = 1700000000
    data["attempts"][0]["started"] = 1700000000
    back = Record.from_json(data)
    assert back.last_change == 1700000000
    assert back.attempts[0].started == 1700000000


def test_record_copy_is_deep() -> None:
    rec = full_record()
    dup = rec.copy()
    dup.attempts[0].ended = 1.0
    dup.attempts[0].argv.append("x")
    assert rec.attempts[0].ended == T0 + 10
    assert rec.attempts[0].argv == ARGV


def test_record_rejects_unknown_constructor_field() -> None:
    with pytest.raises(TypeError):
        Record(check=NAME, bogus=1)


@pytest.mark.parametrize("data", [[], "{}", None, 3, 1.5, True])
def test_record_rejects_non_dict(data: object) -> None:
    with pytest.raises(CorruptRecord):
        Record.from_json(data)


def _set(path: tuple[object, ...], value: object):
    def mutate(data: dict) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


CORRUPTIONS = {
    "version 2": _set(("version",), 2),
    "version 0": _set(("version",), 0),
    "version str": _set(("version",), "1"),
    "version bool": _set(("version",), True),
    "version float": _set(("version",), 1.0),
    "check None": _set(("check",), None),
    "check int": _set(("check",), 5),
    "streak str": _set(("streak",), "3"),
    "streak bool": _set(("streak",), True),
    "streak float": _set(("streak",), 1.5),
    "heals_total bool": _set(("heals_total",), False),
    "last_state bool": _set(("last_state",), True),
    "last_state str": _set(("last_state",), "2"),
    "last_change bool": _set(("last_change",), True),
    "ok_since str": _set(("ok_since",), "now"),
    "paused_until bool": _set(("paused_until",), True),
    "pause_reason int": _set(("pause_reason",), 5),
    "cooldown_noted int": _set(("cooldown_noted",), 5),
    "attempts dict": _set(("attempts",), {}),
    "attempts str": _set(("attempts",), "a1"),
    "attempts None": _set(("attempts",), None),
    "attempt int": _set(("attempts", 0), 5),
    "attempt list": _set(("attempts", 0), []),
    "attempt id None": _set(("attempts", 0, "id"), None),
    "attempt number bool": _set(("attempts", 0, "number"), True),
    "attempt number str": _set(("attempts", 0, "number"), "1"),
    "attempt number float": _set(("attempts", 0, "number"), 1.0),
    "attempt started bool": _set(("attempts", 0, "started"), True),
    "attempt started None": _set(("attempts", 0, "started"), None),
    "attempt argv str": _set(("attempts", 0, "argv"), "systemctl restart nginx"),
    "attempt argv int item": _set(("attempts", 0, "argv"), ["systemctl", 1]),
    "attempt argv None item": _set(("attempts", 0, "argv"), ["systemctl", None]),
    "attempt pid bool": _set(("attempts", 0, "pid"), True),
    "attempt pid str": _set(("attempts", 0, "pid"), "4242"),
    "attempt pid float": _set(("attempts", 0, "pid"), 4242.0),
    "attempt create_time bool": _set(("attempts", 0, "create_time"), False),
    "attempt ended bool": _set(("attempts", 0, "ended"), True),
    "attempt exit_code bool": _set(("attempts", 0, "exit_code"), False),
    "attempt exit_code float": _set(("attempts", 0, "exit_code"), 0.0),
    "attempt timed_out int": _set(("attempts", 0, "timed_out"), 1),
    "attempt timed_out None": _set(("attempts", 0, "timed_out"), None),
    "attempt duration bool": _set(("attempts", 0, "duration"), True),
    "attempt error int": _set(("attempts", 0, "error"), 1),
    "attempt log list": _set(("attempts", 0, "log"), []),
    "second attempt broken": _set(("attempts", 2, "number"), None),
}


@pytest.mark.parametrize("mutate", list(CORRUPTIONS.values()), ids=list(CORRUPTIONS))
def test_record_rejects_wrong_shapes(mutate) -> None:
    data = json.loads(json.dumps(full_record().to_json()))
    Record.from_json(copy.deepcopy(data))  # valid before the corruption
    mutate(data)
    with pytest.raises(CorruptRecord):
        Record.from_json(data)


def test_corrupt_record_is_a_value_error() -> None:
    assert issubclass(CorruptRecord, ValueError)
