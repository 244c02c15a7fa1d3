"""The fleet budget's rows (8a, 8b, and unreachable), without etcd.

``selfheal.core.fleet_rows.apply`` is pure: each row is driven by a
hand-made ``FleetAnswer``. The engine's side (acquire under the lock, the
record without the attempt, the slot given back when the spawn fails, a
dry run that only peeks) runs a real ``Healer`` on a real state dir with a
budget gate whose etcd answers are fixed: the etcd side has its own tests
against a real etcd (tests/e2e/test_fleet_budget.py, test_fleet_heal.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from selfheal.budget_gate import BudgetGate
from selfheal.core import states
from selfheal.core.actions import Command
from selfheal.core.decision import decide
from selfheal.core.fleet_rows import AVAILABLE, DEFERRED, GRANTED, HELD, UNREACHABLE, FleetAnswer, apply
from selfheal.core.policy import Policy
from selfheal.core.record import Record
from selfheal.edges.spawner import Spawner
from selfheal.edges.store import StateDir
from selfheal.edges.transient import SETSID, RunnerStart
from selfheal.engine import Healer

T0 = time.mktime((2024, 5, 15, 9, 0, 0, 0, 0, -1))
POLICY = Policy(cooldown="10m", max_attempts=3, grace="30s", action_timeout="2m")
CRITICAL = states.CRITICAL


def row9(record: Record | None = None) -> object:
    decision = decide(
        CRITICAL, record or Record(check="web"), POLICY, T0, action="restart web", argv=["true"]
    )
    assert decision.row == 9 and decision.heal is not None
    return decision


def deferred() -> FleetAnswer:
    return FleetAnswer(
        DEFERRED, "web", "fleet budget web 2/2 in use (hosts a, b)", limit=2, in_use=2, heals=3
    )


def held() -> FleetAnswer:
    return FleetAnswer(HELD, "web", "10 heals in group web within 1h", limit=2, in_use=1, heals=10)


# -- the pure rows ------------------------------------------------------------


def test_granted_is_row_9_holding_its_slot() -> None:
    decision = row9()
    answer = FleetAnswer(GRANTED, "web", "fleet budget web slot 1, 2/2 in use", limit=2, in_use=2,
                         heals=4, slot=1, lease=77, ticket=3, ttl=130)  # fmt: skip
    final = apply(decision, answer, CRITICAL, "web")  # type: ignore[arg-type]
    assert final.row == 9 and final.state == states.WARNING
    assert final.note == "self-healing: started restart web (attempt 1/3)"
    assert final.heal is not None and final.heal.fleet == {
        "group": "web", "slot": 1, "lease": 77, "ticket": 3, "ttl": 130,
    }  # fmt: skip
    assert final.record is not None and final.record.attempts[-1].fleet == final.heal.fleet
    assert [e["event"] for e in final.events] == ["attempt", "fleet_acquired"]
    acquired = final.events[1]
    assert (acquired["group"], acquired["slot"], acquired["lease"], acquired["in_use"]) == ("web", 1, 77, 2)


def test_deferred_is_row_8a_critical_with_no_attempt_recorded() -> None:
    decision = row9()
    final = apply(decision, deferred(), CRITICAL, "web")  # type: ignore[arg-type]
    assert final.row == "8a" and final.state == CRITICAL and final.heal is None
    assert final.note == "self-healing deferred: fleet budget web 2/2 in use (hosts a, b)"
    assert final.record is not None  # the CRITICAL itself is recorded (last_state)...
    assert final.record.attempts == [] and final.record.streak == 0 and final.record.heals_total == 0
    assert final.record.last_state == CRITICAL
    assert [e["event"] for e in final.events] == ["fleet_deferred"]  # ...not the attempt
    assert final.events[0]["group"] == "web" and final.events[0]["in_use"] == 2


def test_held_is_row_8b_critical_and_says_a_human_should_look() -> None:
    final = apply(row9(), held(), CRITICAL, "web")  # type: ignore[arg-type]
    assert final.row == "8b" and final.state == CRITICAL and final.heal is None
    assert final.note == "self-healing held fleet-wide: 10 heals in group web within 1h"
    assert final.record is not None and final.record.attempts == []
    event = final.events[-1]
    assert event["event"] == "fleet_held" and event["heals_in_window"] == 10 and event["group"] == "web"


def test_deferred_after_a_lost_runner_keeps_the_bookkeeping_but_not_the_attempt() -> None:
    # The lost attempt is closed (journaled, counted) whether or not the fleet lets the next one start.
    policy = Policy(cooldown=0, grace=0, max_attempts=3)
    record = decide(CRITICAL, Record(check="web"), policy, T0 - 3600, action="a", argv=["true"]).record
    assert record is not None
    decision = decide(CRITICAL, record, policy, T0, action="a", argv=["true"], runner_alive=False)
    assert decision.row == 9
    final = apply(decision, deferred(), CRITICAL, "web")
    assert [e["event"] for e in final.events] == ["action_lost", "fleet_deferred"]
    assert final.record is not None and len(final.record.attempts) == 1
    assert final.record.attempts[0].error == "runner lost before the action ended"
    assert final.record.streak == 1 and final.record.heals_failed == 1


def test_unchanged_record_stays_unwritten_when_deferred() -> None:
    # A record already CRITICAL with nothing new: deferring writes nothing.
    record = Record(check="web", last_state=CRITICAL, last_change=T0 - 60)
    final = apply(row9(record), deferred(), CRITICAL, "web")  # type: ignore[arg-type]
    assert final.row == "8a" and final.record is None


@pytest.mark.parametrize("mode", ["heal", "hold"])
def test_unreachable_follows_on_unreachable(mode: str) -> None:
    answer = FleetAnswer(UNREACHABLE, "web", "no etcd endpoint answered", on_unreachable=mode)
    final = apply(row9(), answer, CRITICAL, "web")  # type: ignore[arg-type]
    events = [e["event"] for e in final.events]
    if mode == "heal":
        assert final.row == 9 and final.heal is not None and final.heal.fleet is None
        assert final.note == (
            "self-healing: started restart web (attempt 1/3); fleet budget web unreachable, local limits only"
        )
        assert events == ["attempt", "fleet_unreachable"]
    else:
        assert final.row == "8c" and final.state == CRITICAL and final.heal is None
        assert "unreachable (no etcd endpoint answered); on_unreachable: hold" in final.note
        assert final.record is not None and final.record.attempts == []
        assert events == ["fleet_unreachable"]
    assert final.events[-1]["on_unreachable"] == mode


def test_a_dry_run_peek_says_a_slot_is_free() -> None:
    decision = decide(CRITICAL, Record(check="web"), POLICY, T0, action="a", argv=["true"], dry_run=True)
    answer = FleetAnswer(AVAILABLE, "web", "fleet budget web 1/2 in use, a slot is free", limit=2, in_use=1)
    final = apply(decision, answer, CRITICAL, "web")
    assert final.row == 9 and final.note.endswith("; fleet budget web 1/2 in use, a slot is free")
    assert final.heal is not None and final.heal.fleet is None


def test_only_row_9_asks_the_fleet() -> None:
    decision = decide(states.OK, Record(check="web"), POLICY, T0)
    with pytest.raises(ValueError):
        apply(decision, deferred(), states.OK, "web")


# -- the engine, with fixed fleet answers -------------------------------------------


class FixedGate(BudgetGate):
    """The gate with etcd's answers fixed: what it was asked, and what it gave back."""

    def __init__(self, answer: FleetAnswer) -> None:
        super().__init__({"endpoints": ["http://127.0.0.1:9"], "timeout": 1.0}, {"group": "web"})
        self.fixed = answer
        self.calls: list[str] = []

    def peek(self, check: str) -> FleetAnswer:
        self.calls.append("peek")
        return self.fixed

    def acquire(self, check: str, ttl: float) -> FleetAnswer:
        self.calls.append(f"acquire {ttl:g}")
        return self.fixed

    def release(self, lease: int) -> bool:
        self.calls.append(f"release {lease}")
        return True


class NoSpawn(Spawner):
    def spawn_runner(self, spec: dict[str, object], log_fd: int) -> RunnerStart:
        raise OSError(11, "Resource temporarily unavailable")


class Recording(Spawner):
    specs: list[dict[str, object]] = []

    def spawn_runner(self, spec: dict[str, object], log_fd: int) -> RunnerStart:
        self.specs.append(spec)
        return RunnerStart(999_999, None, SETSID)


def journal(state: Path) -> list[dict[str, object]]:
    path = state / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def record_of(state: Path) -> Record | None:
    with StateDir.open(str(state), create=False) as opened:
        return opened.peek("web")


def healer(state: Path, gate: BudgetGate, spawner: Spawner | None = None) -> Healer:
    return Healer("web", Command(["true"]), POLICY, str(state), spawner=spawner or Recording(), budget=gate)


def granted() -> FleetAnswer:
    return FleetAnswer(GRANTED, "web", "fleet budget web slot 0, 1/2 in use", limit=2, in_use=1, heals=1,
                       slot=0, lease=4242, ticket=0, ttl=130)  # fmt: skip


def test_engine_granted_records_the_slot_and_hands_the_runner_its_lease(tmp_path: Path) -> None:
    gate = FixedGate(granted())
    Recording.specs = []
    outcome = healer(tmp_path, gate).handle(CRITICAL)
    assert outcome.decision.row == 9 and outcome.state == states.WARNING
    assert gate.calls == [f"acquire {POLICY.running_limit():g}"]  # the TTL is the runner's lifetime limit
    record = record_of(tmp_path)
    assert record is not None and record.attempts[-1].fleet == {
        "group": "web", "slot": 0, "lease": 4242, "ticket": 0, "ttl": 130,
    }  # fmt: skip
    spec = Recording.specs[-1]["fleet"]
    assert spec["lease"] == 4242 and spec["settings"]["endpoints"] == ["http://127.0.0.1:9"]  # type: ignore[index]
    assert [e["event"] for e in journal(tmp_path)] == ["attempt", "fleet_acquired"]


@pytest.mark.parametrize(
    ("answer", "row", "event"), [(deferred, "8a", "fleet_deferred"), (held, "8b", "fleet_held")]
)
def test_engine_deferred_or_held_records_no_attempt(tmp_path: Path, answer, row, event) -> None:  # type: ignore[no-untyped-def]
    gate = FixedGate(answer())
    outcome = healer(tmp_path, gate).handle(CRITICAL)
    assert outcome.decision.row == row and outcome.state == CRITICAL
    record = record_of(tmp_path)
    assert record is not None and record.attempts == [] and record.last_state == CRITICAL
    assert [e["event"] for e in journal(tmp_path)] == [event]
    assert outcome.attempts == 0 and outcome.heals_total == 0


def test_engine_gives_the_slot_back_when_the_spawn_fails(tmp_path: Path) -> None:
    gate = FixedGate(granted())
    outcome = healer(tmp_path, gate, NoSpawn()).handle(CRITICAL)
    assert outcome.note.startswith("self-healing failed: could not start the heal runner")
    assert gate.calls[-1] == "release 4242"
    assert any("slot 0 given back" in detail for detail in outcome.details), outcome.details


def test_engine_gives_the_slot_back_when_the_record_cannot_be_written(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from selfheal.core.states import StateError

    gate = FixedGate(granted())
    subject = healer(tmp_path, gate)
    (tmp_path / "x").write_text("")  # the state dir exists, owned by us

    def refuse(self: object, name: str, record: object, durable: bool = True) -> None:
        raise StateError("disk full")

    monkeypatch.setattr(StateDir, "write", refuse)
    outcome = subject.handle(CRITICAL)
    assert outcome.decision.row == 4, outcome.note
    assert gate.calls == [f"acquire {POLICY.running_limit():g}", "release 4242"]


def test_engine_dry_run_only_peeks(tmp_path: Path) -> None:
    gate = FixedGate(deferred())
    outcome = healer(tmp_path / "none", gate).handle(CRITICAL, dry_run=True)
    assert outcome.decision.row == "8a" and gate.calls == ["peek"]
    assert not (tmp_path / "none").exists()
    gate = FixedGate(FleetAnswer(AVAILABLE, "web", "fleet budget web 0/2 in use, a slot is free", limit=2))
    outcome = healer(tmp_path, gate).handle(CRITICAL, dry_run=True)
    assert outcome.decision.row == 9 and "would start" in outcome.note and "a slot is free" in outcome.note
    assert gate.calls == ["peek"] and journal(tmp_path) == []


def test_engine_healthy_never_asks_the_fleet(tmp_path: Path) -> None:
    gate = FixedGate(granted())
    healer(tmp_path, gate).handle(CRITICAL)
    outcome = healer(tmp_path, gate).handle(states.OK)
    assert outcome.decision.row == 1 and gate.calls == [f"acquire {POLICY.running_limit():g}"]


def test_history_describes_a_fleet_event_by_its_group_and_slot() -> None:
    from selfheal.core.events import describe

    final = apply(row9(), deferred(), CRITICAL, "web")  # type: ignore[arg-type]
    assert describe(final.events[-1]) == "group web, 2/2 in use"
    released = {"event": "fleet_released", "group": "web", "slot": 1, "holder": "web-17", "by": "alice"}
    assert describe(released) == "group web slot 1, held by web-17, by alice"
