"""The fleet budget's decision rows (8a, 8b), as one pure function.

``decide`` stops at row 9 ("healing allowed") on what this host knows.
When the check has a ``budget:``, the engine then asks the fleet (etcd,
``selfheal.budget_gate``) and ``apply`` turns the row-9 decision and the
fleet's answer into the final one:

- granted: row 9, the attempt holding its slot (``Attempt.fleet``) and a
  ``fleet_acquired`` event;
- available (a dry run's peek): row 9, its note saying a slot is free;
- deferred (8a) and held (8b): CRITICAL, no heal, the record *without*
  the attempt, a ``fleet_deferred`` or ``fleet_held`` event;
- unreachable: ``on_unreachable: heal`` is row 9 on local limits only,
  and the note says so; ``hold`` is CRITICAL with no heal (row "8c").

Standard library only; no clock, no file, no network.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from selfheal.core.decision import Decision

GRANTED = "granted"
AVAILABLE = "available"
DEFERRED = "deferred"
HELD = "held"
UNREACHABLE = "unreachable"
OUTCOMES = (GRANTED, AVAILABLE, DEFERRED, HELD, UNREACHABLE)


class FleetAnswer:
    """What the fleet said about one heal: plain data, made by the budget gate (or a test)."""

    __slots__ = (
        "group",
        "heals",
        "in_use",
        "lease",
        "limit",
        "on_unreachable",
        "outcome",
        "slot",
        "text",
        "ticket",
        "ttl",
    )

    def __init__(
        self,
        outcome: str,
        group: str,
        text: str,
        *,
        limit: int = 0,
        in_use: int = 0,
        heals: int = 0,
        slot: int | None = None,
        lease: int | None = None,
        ticket: int | None = None,
        ttl: int | None = None,
        on_unreachable: str = "heal",
    ) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"not a fleet outcome: {outcome!r}")
        self.outcome = outcome
        self.group = group
        #: The words after ``self-healing deferred:`` / ``held fleet-wide:``,
        #: or, when unreachable, why.
        self.text = text
        self.limit = limit  # max_concurrent
        self.in_use = in_use  # slots in use, ours included
        self.heals = heals  # heals started in the window, ours included
        self.slot = slot
        self.lease = lease
        self.ticket = ticket
        self.ttl = ttl
        self.on_unreachable = on_unreachable

    def slot_info(self) -> dict[str, object]:
        """The group and slot facts every fleet event carries."""
        info: dict[str, object] = {"group": self.group, "in_use": self.in_use, "max_concurrent": self.limit}
        if self.slot is not None:
            info.update(slot=self.slot, lease=self.lease, ticket=self.ticket, ttl=self.ttl)
        info["heals_in_window"] = self.heals
        return info

    def __repr__(self) -> str:
        return f"FleetAnswer({self.outcome!r}, {self.group!r}, {self.text!r})"


def apply(decision: Decision, answer: FleetAnswer, check_state: int, check: str) -> Decision:
    """The final decision for a row-9 ``decision`` once the fleet has answered."""
    from selfheal.core.decision import Decision

    attempt = decision.heal
    if attempt is None or decision.row != 9:
        raise ValueError("only a row-9 decision (a heal about to start) asks the fleet")
    outcome = answer.outcome
    if outcome == GRANTED:
        attempt.fleet = {
            "group": answer.group,
            "slot": answer.slot,
            "lease": answer.lease,
            "ticket": answer.ticket,
            "ttl": answer.ttl,
        }
        decision.events.append({"event": "fleet_acquired", "check": check, **answer.slot_info()})
        return decision
    if outcome == AVAILABLE:
        decision.note += f"; {answer.text}"
        return decision
    if outcome == UNREACHABLE and answer.on_unreachable == "heal":
        decision.note += f"; fleet budget {answer.group} unreachable, local limits only"
        decision.events.append(
            _event("fleet_unreachable", check, answer, reason=answer.text, on_unreachable="heal")
        )
        return decision
    # No heal: what decide() recorded up to row 9, without the attempt.
    events = [event for event in decision.events if event["event"] != "attempt"]
    if outcome == DEFERRED:
        row, note = "8a", f"self-healing deferred: {answer.text}"
        events.append(_event("fleet_deferred", check, answer))
    elif outcome == HELD:
        row, note = "8b", f"self-healing held fleet-wide: {answer.text}"
        events.append(_event("fleet_held", check, answer, reason="a human should look"))
    else:
        row = "8c"
        note = (
            f"self-healing held: fleet budget {answer.group} unreachable ({answer.text}); "
            "on_unreachable: hold"
        )
        events.append(_event("fleet_unreachable", check, answer, reason=answer.text, on_unreachable="hold"))
    # The check's own state (CRITICAL, or what heal_on names): no heal hides it.
    return Decision(row, check_state, note, decision.unhealed, events)


def _event(kind: str, check: str, answer: FleetAnswer, **fields: object) -> dict[str, object]:
    event: dict[str, object] = {"event": kind, "check": check, **answer.slot_info()}
    event.update(fields)
    return event
