"""What a group holds in etcd, read back: holders, grants and the verdict.

A *holder* is one key of a group: a slot (a heal running now) or a heal
ticket (a heal started within the window). ``parse_holders`` reads them
from etcd's range answer; ``decide`` says, from them alone, whether a
budget has a free slot (row 8a) and a free ticket (row 8b). Pure: no
network, no clock.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from selfheal.fleet.settings import Budget, format_seconds

GRANTED = "granted"
#: peek() found a free slot (and ticket): acquire() would grant now.
AVAILABLE = "available"
#: Decision row 8a: every slot of the group is in use.
DEFERRED = "deferred"
#: Decision row 8b: max_per_window heals started in the group within the window.
HELD = "held"


@dataclass(frozen=True)
class Holder:
    """One key of a group: a slot (a heal running) or a heal ticket (a heal started within the window)."""

    group: str
    kind: str  # "slot" or "heal"
    index: int
    host: str
    check: str
    since: float  # the holder's wall clock: display only
    lease: int
    ttl: int  # as granted
    ttl_left: float | None = None  # filled by status(); None: not asked, or the lease is gone

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "kind": self.kind,
            "index": self.index,
            "host": self.host,
            "check": self.check,
            "since": self.since,
            "lease": self.lease,
            "ttl": self.ttl,
            "ttl_left": self.ttl_left,
        }


@dataclass(frozen=True)
class Grant:
    """What acquire() or peek() found. ``lease`` is the release handle when granted."""

    outcome: str  # GRANTED, AVAILABLE (peek), DEFERRED (row 8a) or HELD (row 8b)
    budget: Budget
    slots: tuple[Holder, ...]  # the group's slots after the call, ours included
    heals: tuple[Holder, ...]  # heal tickets in the window, ours included
    slot: int | None = None
    lease: int | None = None
    ttl: int | None = None
    ticket: int | None = None

    @property
    def granted(self) -> bool:
        return self.outcome == GRANTED

    @property
    def in_use(self) -> tuple[Holder, ...]:
        """The slots this budget counts (another host may be configured with more)."""
        return tuple(s for s in self.slots if s.index < self.budget.max_concurrent)

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(s.host for s in self.in_use)

    def note(self) -> str:
        """The decision note, without the ``self-healing ...:`` head the engine adds."""
        budget = self.budget
        if self.outcome == HELD:
            window = format_seconds(budget.window or 0)
            return f"{len(self.heals)} heals in group {budget.group} within {window}"
        used = f"{len(self.in_use)}/{budget.max_concurrent}"
        if self.outcome == DEFERRED:
            return f"fleet budget {budget.group} {used} in use (hosts {', '.join(self.hosts)})"
        if self.outcome == GRANTED:
            return f"fleet budget {budget.group} slot {self.slot}, {used} in use"
        return f"fleet budget {budget.group} {used} in use, a slot is free"


@dataclass(frozen=True)
class GroupStatus:
    group: str
    slots: tuple[Holder, ...]
    heals: tuple[Holder, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "slots": [s.as_dict() for s in self.slots],
            "heals_in_window": len(self.heals),
            "heals": [h.as_dict() for h in self.heals],
        }


def parse_holders(kvs: list[dict[str, Any]], root: str) -> list[Holder]:
    """The holders in etcd's range answer (``kvs``) under the prefix ``root``.

    A key that is not ``<root>GROUP/slots|heals/N`` is skipped; a value
    that is not a JSON object still counts (its key is what holds the
    slot), shown with ``?`` for its host and check.
    """
    holders = []
    for kv in kvs:
        key = base64.b64decode(kv["key"]).decode("utf-8", "replace")
        parts = key[len(root) :].split("/")
        if not key.startswith(root) or len(parts) != 3 or parts[1] not in ("slots", "heals"):
            continue
        group, kind, index = parts
        if not index.isdigit():
            continue
        try:
            value = json.loads(base64.b64decode(kv.get("value", "")))
            if not isinstance(value, dict):
                value = {}
        except ValueError:
            value = {}
        holders.append(
            Holder(
                group=group,
                kind="slot" if kind == "slots" else "heal",
                index=int(index),
                host=str(value.get("host", "?")),
                check=str(value.get("check", "?")),
                since=float(value.get("since", 0) or 0),
                lease=int(kv.get("lease", 0) or 0),
                ttl=int(value.get("ttl", 0) or 0),
            )
        )
    holders.sort(key=lambda h: (h.group, h.kind, h.index))
    return holders


def decide(budget: Budget, holders: list[Holder], granted: str) -> tuple[Grant, int | None, int | None]:
    """The outcome for ``budget`` over a group's ``holders``, and the lowest free slot and ticket.

    ``granted`` is the outcome when both are free: GRANTED for acquire(),
    AVAILABLE for peek().
    """
    slots = tuple(h for h in holders if h.kind == "slot")
    heals = tuple(h for h in holders if h.kind == "heal")
    taken = {h.index for h in slots}
    free_slot = next((i for i in range(budget.max_concurrent) if i not in taken), None)
    free_ticket = None
    if budget.max_per_window is not None:
        tickets = {h.index for h in heals}
        free_ticket = next((j for j in range(budget.max_per_window) if j not in tickets), None)
    # Row 8a before 8b, as in the decision table: a full budget is what the host meets first.
    if free_slot is None:
        outcome = DEFERRED
    elif budget.max_per_window is not None and free_ticket is None:
        outcome = HELD
    else:
        outcome = granted
    return Grant(outcome, budget, slots, heals), free_slot, free_ticket
