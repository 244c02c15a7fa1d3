"""Issue 15: one incident, one page. A failed heal says so at once, a retry
stays CRITICAL, a healthy line says when healing is off, and a record shared
by two heals is journaled once. Row by row, with a fake clock.
"""

from __future__ import annotations

import pytest
from test_decision import (
    ACTION,
    ARGV,
    NAME,
    POLICY,
    T0,
    finished,
    hms,
    kinds,
    make_attempt,
    make_policy,
    record_with,
    run,
    spawned,
)

from selfheal.core import states
from selfheal.core.explain import explain
from selfheal.core.policy import Policy
from selfheal.core.record import CorruptRecord, Record

OK, WARNING, CRITICAL = states.OK, states.WARNING, states.CRITICAL


def test_failed_attempt_reports_did_not_help_within_grace_with_its_reason() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 0.016, exit_code=1))
    d = run(CRITICAL, rec, T0 + 2, reason="nginx: [emerg] bind() failed")
    # Not row 6 ("waiting for recovery"): the heal already failed.
    assert (d.row, d.state) == (8, CRITICAL)
    assert d.note == (
        f"self-healing did not help: attempt 1 at {hms(T0)} exited 1 (nginx: [emerg] bind() failed); "
        f"next attempt after {hms(T0 + 0.016 + 600)}"
    )
    # The reason is kept in the attempt: the next run need not read the log.
    assert d.record.attempts[-1].reason == "nginx: [emerg] bind() failed"
    assert d.record.did_not_help_shown
    assert kinds(d) == ["skipped_cooldown"]
    again = run(CRITICAL, d.record, T0 + 3)
    assert (again.row, again.record, again.events) == (8, None, [])
    assert "(nginx: [emerg] bind() failed)" in again.note


def test_timed_out_attempt_within_grace_is_did_not_help() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 120, exit_code=None, timed_out=True))
    d = run(CRITICAL, rec, T0 + 121)
    assert (d.row, d.state) == (8, CRITICAL)
    assert f"attempt 1 at {hms(T0)} timed out after 2m;" in d.note


def test_successful_attempt_still_waits_out_grace() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 1, exit_code=0))
    d = run(CRITICAL, rec, T0 + 2, reason="ignored: it exited 0")
    assert (d.row, d.state) == (6, WARNING)
    assert d.record is None


@pytest.mark.parametrize(
    ("fields", "failed"),
    [
        ({"ended": T0 + 1, "exit_code": 0}, False),
        ({"ended": None, "exit_code": None}, False),
        ({"ended": T0 + 1, "exit_code": 1}, True),
        ({"ended": T0 + 1, "exit_code": -9}, True),
        ({"ended": T0 + 1, "exit_code": None, "timed_out": True}, True),
        ({"ended": T0 + 1, "exit_code": None, "error": "could not start the heal runner"}, True),
    ],
)
def test_attempt_failed(fields: dict[str, object], failed: bool) -> None:
    assert make_attempt("a1", 1, T0, **fields).failed() is failed


def test_failed_heal_incident_pages_once_retry_stays_critical() -> None:
    policy = make_policy(cooldown="3s", max_cooldown="3s", grace="1s", max_attempts=2)
    t = T0
    d = run(CRITICAL, Record(check=NAME), t, policy, attempt_id="a1")
    assert (d.row, d.state) == (9, WARNING)  # the first attempt: soft, no page
    rec = finished(spawned(d.record), t + 0.02, exit_code=1)
    d = run(CRITICAL, rec, t + 1, policy)
    assert (d.row, d.state) == (8, CRITICAL)  # the page
    rec = d.record
    d = run(CRITICAL, rec, t + 3.02, policy, attempt_id="a2")
    assert (d.row, d.state) == (9, CRITICAL)
    assert d.note == f"self-healing: retrying {ACTION} (attempt 2/2)"
    rec = spawned(d.record)
    # While the retry runs, and in its grace, still CRITICAL: no WARNING between.
    d = run(CRITICAL, rec, t + 3.5, policy, runner_alive=True)
    assert (d.row, d.state) == (5, CRITICAL)
    rec = finished(rec, t + 4, exit_code=0)
    d = run(CRITICAL, rec, t + 4.5, policy)
    assert (d.row, d.state) == (6, CRITICAL)
    d = run(CRITICAL, rec, t + 6, policy)
    assert (d.row, d.state) == (7, CRITICAL)
    # Recovery ends the incident: the next one starts with a WARNING again.
    d = run(OK, d.record, t + 60, policy)
    assert not d.record.did_not_help_shown


def test_retry_state_warning_restores_the_warning() -> None:
    policy = make_policy(retry_state="warning")
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 1, exit_code=1))
    d = run(CRITICAL, rec, T0 + 2, policy)
    assert (d.row, d.state) == (8, CRITICAL)
    d = run(CRITICAL, d.record, T0 + 700, policy, attempt_id="a2")
    assert (d.row, d.state) == (9, WARNING)
    assert d.note == f"self-healing: retrying {ACTION} (attempt 2/3)"
    d = run(CRITICAL, spawned(d.record), T0 + 701, policy, runner_alive=True)
    assert (d.row, d.state) == (5, WARNING)


def test_first_attempt_in_progress_stays_warning() -> None:
    rec = record_with(make_attempt("a1", 1, T0))
    d = run(CRITICAL, rec, T0 + 1, runner_alive=True)
    assert (d.row, d.state) == (5, WARNING)


def test_dry_run_retry_says_would_retry() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 1, exit_code=1), did_not_help_shown=True)
    d = run(CRITICAL, rec, T0 + 700, dry_run=True)
    assert (d.row, d.state) == (9, CRITICAL)
    assert d.note == f"self-healing: would retry {ACTION} (attempt 2/3)"


def test_failed_start_marks_the_incident_paged() -> None:
    from selfheal.core.decision import start_failed

    d = run(CRITICAL, Record(check=NAME), T0, attempt_id="a1")
    failed = start_failed(d, "could not start the heal runner: No such file", T0)
    assert failed.state == CRITICAL
    assert failed.record.did_not_help_shown
    assert failed.record.attempts[-1].failed()


def test_ok_line_says_healing_is_off_while_gave_up_holds() -> None:
    policy = make_policy(window="1h", max_attempts=2)
    rec = record_with(
        make_attempt("a1", 1, T0, ended=T0 + 1, exit_code=1),
        make_attempt("a2", 2, T0 + 700, ended=T0 + 701, exit_code=1),
    )
    gave_up = run(CRITICAL, rec, T0 + 705, policy)
    assert gave_up.row == 7
    d = run(OK, gave_up.record, T0 + 800, policy)
    assert (d.row, d.state) == (1, OK)
    assert d.note == f"self-healing off since {hms(T0 + 705)} (gave up); run 'selfheal reset {NAME}'"
    # Still off: the next CRITICAL gives up again, no heal.
    assert run(CRITICAL, d.record, T0 + 900, policy).row == 7
    # Once a window has passed since the attempts, healing is on again, and the OK line is plain.
    later = run(OK, d.record, T0 + 700 + 3600, policy)
    assert later.note == ""
    assert later.record.off_since is None


def test_heal_changed_is_journaled_once_per_change() -> None:
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 1, exit_code=0))
    other, other_argv = "systemctl restart nginx-debug", ["systemctl", "restart", "nginx-debug"]
    d = run(CRITICAL, rec, T0 + 100, action=other, argv=other_argv)
    assert "heal_changed" in kinds(d)
    event = next(e for e in d.events if e["event"] == "heal_changed")
    assert event["heal"] == other
    assert ACTION in event["reason"] and other in event["reason"]
    assert d.record.heal_noted == other
    # The next run of the same caller: nothing new.
    again = run(CRITICAL, d.record, T0 + 160, action=other, argv=other_argv)
    assert "heal_changed" not in kinds(again)
    # The record's own heal: nothing to note.
    same = run(CRITICAL, rec, T0 + 100)
    assert "heal_changed" not in kinds(same)


def test_healthy_run_never_compares_heals() -> None:
    rec = record_with(
        make_attempt("a1", 1, T0, ended=T0 + 1, exit_code=0), open_since=None, last_state=OK, ok_since=T0 + 2
    )
    d = run(OK, rec, T0 + 100, action="other", argv=["other"])
    assert d.events == [] and d.record is None


@pytest.mark.parametrize(
    "field, value",
    [
        ("did_not_help_shown", 1),
        ("did_not_help_shown", "yes"),
        ("off_since", -1),
        ("off_since", 1e300),
        ("heal_noted", 5),
    ],
)
def test_new_record_fields_are_validated(field: str, value: object) -> None:
    data = Record(check=NAME).to_json()
    data[field] = value
    with pytest.raises(CorruptRecord):
        Record.from_json(data)


def test_attempt_reason_is_validated() -> None:
    data = Record(check=NAME, attempts=[make_attempt("a1", 1, T0)]).to_json()
    data["attempts"][0]["reason"] = ["not", "a", "string"]
    with pytest.raises(CorruptRecord):
        Record.from_json(data)


@pytest.mark.parametrize("value", ["critical", "warning", "WARNING"])
def test_policy_retry_state(value: str) -> None:
    policy = Policy(retry_state=value)
    assert policy.retry_state == states.parse(value)
    assert Policy.from_json(policy.to_json()) == policy


@pytest.mark.parametrize("value", ["ok", "unknown", "", 2, None])
def test_policy_retry_state_refuses_other_states(value: object) -> None:
    with pytest.raises(ValueError, match=r"^retry_state: must be critical or warning"):
        Policy(retry_state=value)


def test_explain_in_words() -> None:
    policy = make_policy(window="1h")
    assert explain(run(OK, Record(check=NAME), T0), OK, NAME, policy, None, T0) == "healthy: nothing to do"
    rec = record_with(make_attempt("a1", 1, T0, ended=T0 + 1, exit_code=1))
    d = run(CRITICAL, rec, T0 + 2, policy)
    words = explain(d, CRITICAL, NAME, policy, d.record.attempts[-1], T0 + 2)
    assert words.startswith("the last attempt exited 1 within grace: did not help; next attempt after ")
    three = record_with(
        *(make_attempt(f"a{i}", i, T0 + 100 * i, ended=T0 + 100 * i + 1, exit_code=1) for i in (1, 2, 3))
    )
    d = run(CRITICAL, three, T0 + 400, policy)
    assert explain(d, CRITICAL, "web", policy, three.attempts[-1], T0 + 400) == (
        "gave up: 3 attempts within 1h; healing is off until 'selfheal reset web'"
    )
    assert "decision row" not in explain(d, CRITICAL, "web", POLICY, None, T0)


def test_argv_constant_is_the_records_heal() -> None:
    assert make_attempt("a1", 1, T0).argv == ARGV
