"""The report's figures, per check, from the journal.

Per check, over the period, from the journal: heals started, heals that
led to recovery and the success rate, the median and worst time to
recover, how often it gave up, and the busiest day. Checks are ranked by
how often they healed: the list to hand to the developers, because the
more often the automatic fix runs, the worse the underlying bug.

Definitions (the figures must agree with ``history``):

- a heal *led to recovery* when the check's next ``recovered`` event came
  before any ``gave_up``; a recovery after giving up was a human's work and
  is counted apart (``recovered_after_gave_up``);
- *time to recover* is the ``recovered`` event's ``time_to_recover``: from
  the episode's first heal to the first healthy result;
- days are UTC dates, as in the journal.
"""

from __future__ import annotations

import time

from selfheal.commands import common as ops
from selfheal.commands.history import event_time, read_journal


def day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


class CheckFigures:
    """The report's figures for one check, built event by event."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = 0
        self.recovered = 0
        self.recovered_after_gave_up = 0
        self.gave_up = 0
        self.times: list[float] = []
        self.actions = {"succeeded": 0, "failed": 0, "timed_out": 0, "lost": 0}
        self.per_day: dict[str, int] = {}
        self.resets = 0
        self.pauses = 0
        self._gave_up_since_heal = False
        self.events = 0  # events in the period: a check with none is left out

    def add(self, event: dict[str, object], counted: bool = True) -> None:
        """Count the event if it is in the period; follow the episode anyway."""
        kind = event["event"]
        if not counted:
            if kind in ("attempt", "recovered"):
                self._gave_up_since_heal = False
            elif kind == "gave_up":
                self._gave_up_since_heal = True
            return
        self.events += 1
        if kind == "attempt":
            self.started += 1
            date = day(event_time(event))
            self.per_day[date] = self.per_day.get(date, 0) + 1
            self._gave_up_since_heal = False
        elif kind == "recovered":
            if self._gave_up_since_heal:
                self.recovered_after_gave_up += 1
            else:
                self.recovered += 1
                ttr = event.get("time_to_recover")
                if isinstance(ttr, (int, float)) and not isinstance(ttr, bool):
                    self.times.append(float(ttr))
            self._gave_up_since_heal = False
        elif kind == "gave_up":
            self.gave_up += 1
            self._gave_up_since_heal = True
        elif kind == "action_end":
            if event.get("timed_out"):
                self.actions["timed_out"] += 1
            elif event.get("exit_code") == 0:
                self.actions["succeeded"] += 1
            else:
                self.actions["failed"] += 1
        elif kind == "action_lost":
            self.actions["lost"] += 1
        elif kind == "reset" and event.get("by"):
            self.resets += 1  # by hand; automatic resets after reset_after are routine
        elif kind == "paused":
            self.pauses += 1

    def to_json(self, rank: int) -> dict[str, object]:
        busiest = None
        if self.per_day:
            date = min(self.per_day, key=lambda d: (-self.per_day[d], d))  # ties: the earliest
            busiest = {"date": date, "heals": self.per_day[date]}
        return {
            "rank": rank,
            "name": self.name,
            "heals_started": self.started,
            "heals_recovered": self.recovered,
            "success_rate": round(self.recovered / self.started, 4) if self.started else None,
            "recovered_after_gave_up": self.recovered_after_gave_up,
            "time_to_recover": {
                "count": len(self.times),
                "median": median(self.times),
                "worst": max(self.times) if self.times else None,
            },
            "gave_up": self.gave_up,
            "actions": dict(self.actions),
            "busiest_day": busiest,
            "per_day": dict(sorted(self.per_day.items())),
            "resets": self.resets,
            "pauses": self.pauses,
        }


def build(journal: str, since: float | None, now: float) -> dict[str, object]:
    # Read from the beginning: whether a recovery in the period followed a
    # "gave up" before it depends on events before the period.
    reading = read_journal(journal)
    figures: dict[str, CheckFigures] = {}
    for event in reading.events:
        name = str(event["check"])
        counted = since is None or event_time(event) >= since
        figures.setdefault(name, CheckFigures(name)).add(event, counted)
    ranked = sorted((f for f in figures.values() if f.events), key=lambda f: (-f.started, -f.gave_up, f.name))
    checks = [f.to_json(rank) for rank, f in enumerate(ranked, 1)]
    started = sum(f.started for f in ranked)
    recovered = sum(f.recovered for f in ranked)
    days = sorted({d for f in ranked for d in f.per_day})
    return {
        "since": ops.iso(since),
        "until": ops.iso(now),
        "journal": journal,
        "skipped": reading.skipped,
        "days": days,
        "checks": checks,
        "totals": {
            "heals_started": started,
            "heals_recovered": recovered,
            "success_rate": round(recovered / started, 4) if started else None,
            "gave_up": sum(f.gave_up for f in ranked),
        },
    }
