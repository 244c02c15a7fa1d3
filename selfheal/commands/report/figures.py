"""The report's figures: per check, per host and per episode, from the journals.

An **episode** is one incident of one check on one host: from the first
heal after the check was healthy to ``recovered`` or ``gave_up``. The
success rate is counted by episode: the episodes that healing recovered,
divided by the episodes that ended (recovered or gave up). An episode
still open at the end of the journal (a heal in progress, a cooldown) is
counted apart and left out of the rate. Three heals that end in one
recovery are one episode recovered, not a rate of 1/3.

Definitions (the figures must agree with ``history``):

- an episode *recovered* when its ``recovered`` event came before any
  ``gave_up``; a recovery after giving up was a human's work and is
  counted apart (``recovered_after_gave_up``);
- an episode counts in the period when its first heal does; heals, gave
  up events and days count by their own time;
- *time to recover* is the ``recovered`` event's ``time_to_recover`` (from
  the episode's first heal to the first healthy result); an episode whose
  figure is missing or odd has none, rather than a guessed one;
- an episode's *reason* is the last line its heal printed when it failed,
  the journal's ``reason`` (the last one, when several attempts failed);
- days are UTC dates, as in the journal.

Events are consumed as they stream by (``add``): only the figures are kept,
one set per host and check, and the newest ``MAX_LISTED`` episodes.
Checks are ranked by how often they healed: the list to hand to the
developers, because the more often the automatic fix runs, the worse the
underlying bug.
"""

from __future__ import annotations

import time
from array import array

from selfheal.commands import common as ops

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

#: Episodes listed one by one (the newest); the figures count them all.
MAX_LISTED = 500
#: Time to recover, as the report's distribution groups it: (upper bound in seconds, label).
TTR_BUCKETS = [
    (60.0, "< 1m"),
    (300.0, "1-5m"),
    (900.0, "5-15m"),
    (1800.0, "15-30m"),
    (3600.0, "30m-1h"),
    (21600.0, "1-6h"),
    (float("inf"), "> 6h"),
]
RATE_BASIS = "episodes recovered by healing / episodes that ended (recovered or gave up)"


_DAYS: dict[int, str] = {}


def day(timestamp: float) -> str:
    """The UTC date; a report asks for a few dates a million times."""
    number = int(timestamp // 86400)
    text = _DAYS.get(number)
    if text is None:
        text = _DAYS[number] = time.strftime("%Y-%m-%d", time.gmtime(number * 86400))
    return text


def median(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def number(event: dict[str, object], key: str) -> float | None:
    value = event.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class Episode:
    """One incident: its heals, how they ended, and how the incident ended."""

    __slots__ = (
        "attempts",
        "check",
        "end",
        "exit_codes",
        "host",
        "numbers",
        "outcome",
        "reason",
        "start",
        "ttr",
    )

    def __init__(self, host: str, check: str, start: float) -> None:
        self.host = host
        self.check = check
        self.start = start
        self.end: float | None = None
        self.attempts = 0
        # Per heal, in order: its exit code, "timeout", "lost", or None before it ended.
        self.exit_codes: list[int | str | None] = []
        self.numbers: list[object] = []  # each heal's attempt number, as journaled: its end names it
        self.reason: str | None = None
        self.ttr: float | None = None
        self.outcome = "open"  # then "recovered" or "gave_up"

    def to_json(self) -> dict[str, object]:
        return {
            "start": ops.iso(self.start),
            "end": ops.iso(self.end),
            "host": self.host,
            "check": self.check,
            "attempts": self.attempts,
            "exit_codes": list(self.exit_codes),
            "reason": self.reason,
            "time_to_recover": self.ttr,
            "outcome": self.outcome,
        }


class Figures:
    """The figures of one check on one host, or of several added together (``merge``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = 0
        self.recovered = 0
        self.recovered_after_gave_up = 0
        self.gave_up = 0
        self.episodes = {"total": 0, "recovered": 0, "gave_up": 0, "open": 0}
        self.times = array("d")
        self.actions = {"succeeded": 0, "failed": 0, "timed_out": 0, "lost": 0}
        self.per_day: dict[str, int] = {}
        self.resets = 0
        self.pauses = 0
        self.events = 0  # events in the period: a check with none is left out
        self.members: set[str] = set()  # the hosts of a check, the checks of a host

    def merge(self, other: Figures, member: str) -> None:
        for name in (
            "started",
            "recovered",
            "recovered_after_gave_up",
            "gave_up",
            "resets",
            "pauses",
            "events",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for key, value in other.episodes.items():
            self.episodes[key] += value
        for key, value in other.actions.items():
            self.actions[key] += value
        for date, heals in other.per_day.items():
            self.per_day[date] = self.per_day.get(date, 0) + heals
        self.times.extend(other.times)
        if other.events:
            self.members.add(member)

    def to_json(self, rank: int, members: str) -> dict[str, object]:
        busiest = None
        if self.per_day:
            date = min(self.per_day, key=lambda d: (-self.per_day[d], d))  # ties: the earliest
            busiest = {"date": date, "heals": self.per_day[date]}
        ended = self.episodes["recovered"] + self.episodes["gave_up"]
        return {
            "rank": rank,
            "name": self.name,
            "heals_started": self.started,
            "heals_recovered": self.recovered,
            "success_rate": round(self.recovered / ended, 4) if ended else None,
            "episodes": dict(self.episodes),
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
            members: len(self.members),
        }


class Tracker:
    """One check on one host, followed event by event: its figures and its open episode."""

    __slots__ = ("after_gave_up", "check", "figures", "host", "last", "open", "since")

    def __init__(self, host: str, check: str, since: float | None) -> None:
        self.host = host
        self.check = check
        self.since = since
        self.figures = Figures(check)
        self.open: Episode | None = None
        self.last: Episode | None = None  # the episode that ended last: a late action_end belongs to it
        self.after_gave_up = False  # gave up, and neither a heal nor a recovery since

    def add(self, event: dict[str, object], when: float, report: Report) -> None:
        """Count the event if it is in the period; follow the episode anyway."""
        counted = self.since is None or when >= self.since
        figures = self.figures
        kind = event["event"]
        if counted:
            figures.events += 1
        if kind == "attempt":
            self.after_gave_up = False
            if self.open is None:
                self.open = Episode(self.host, self.check, when)
            self.open.attempts += 1
            self.open.exit_codes.append(None)
            self.open.numbers.append(event.get("attempt"))
            if counted:
                figures.started += 1
                date = day(when)
                figures.per_day[date] = figures.per_day.get(date, 0) + 1
        elif kind in ("action_end", "action_lost"):
            self._ended_heal(event, kind)
            if counted:
                actions = figures.actions
                if kind == "action_lost":
                    actions["lost"] += 1
                elif event.get("timed_out"):
                    actions["timed_out"] += 1
                elif event.get("exit_code") == 0:
                    actions["succeeded"] += 1
                else:
                    actions["failed"] += 1
        elif kind == "recovered":
            episode = self.open
            if episode is not None:
                self._close(episode, "recovered", when, report, number(event, "time_to_recover"))
            elif counted and self.after_gave_up:
                figures.recovered_after_gave_up += 1
            self.open = None
            self.after_gave_up = False
        elif kind == "gave_up":
            if counted:
                figures.gave_up += 1
            if self.open is not None:
                self._close(self.open, "gave_up", when, report, None)
            self.open = None
            self.after_gave_up = True
        elif counted and kind == "reset" and event.get("by"):
            figures.resets += 1  # by hand; automatic resets after reset_after are routine
        elif counted and kind == "paused":
            figures.pauses += 1

    def _ended_heal(self, event: dict[str, object], kind: str) -> None:
        episode = self.open or self.last
        if episode is None or not episode.exit_codes:
            return
        code: int | str | None
        if kind == "action_lost":
            code = "lost"
        elif event.get("timed_out"):
            code = "timeout"
        else:
            exit_code = event.get("exit_code")
            code = exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None
        # Which heal of the episode: the one with its attempt number, else the first still running.
        codes = episode.exit_codes
        attempt = event.get("attempt")
        index = len(codes) - 1
        if codes[index] is not None or episode.numbers[index] != attempt:
            running = [i for i, c in enumerate(codes) if c is None]
            named = [i for i in running if attempt is not None and episode.numbers[i] == attempt]
            index = (named or running or [index])[0]
        codes[index] = code
        reason = event.get("reason")
        if code != 0 and isinstance(reason, str) and reason:
            episode.reason = reason

    def _close(self, episode: Episode, outcome: str, when: float, report: Report, ttr: float | None) -> None:
        episode.outcome = outcome
        episode.end = when
        episode.ttr = ttr
        self.last = episode
        if self.since is not None and episode.start < self.since:
            return  # an incident of the period before
        counts = self.figures.episodes
        counts["total"] += 1
        counts[outcome] += 1
        if outcome == "recovered":
            self.figures.recovered += 1
            if ttr is not None:
                self.figures.times.append(ttr)
                report.ttr_counts[bucket(ttr)] += 1
        report.keep(episode)


def bucket(seconds: float) -> int:
    return next(i for i, (upper, _) in enumerate(TTR_BUCKETS) if seconds < upper)


class Report:
    """Every host's and check's figures, built from streams of events, one per journal."""

    def __init__(self, since: float | None) -> None:
        self.since = since
        # One tracker per journal, host and check: an episode never spans two journals.
        self.trackers: dict[tuple[str, object, object], Tracker] = {}
        self.listed: list[Episode] = []  # the newest MAX_LISTED ended episodes, and a few more
        self.ttr_counts = [0] * len(TTR_BUCKETS)

    def consume(self, stream: Iterable[dict[str, object]], journal: str = "") -> Report:
        """Count each event of one journal as it comes, keeping none of them.

        Read from the beginning of the journals, not from ``since``: whether
        a recovery in the period followed a "gave up" before it depends on
        events before the period.
        """
        trackers = self.trackers
        for event in stream:
            key = (journal, event.get("host", "-"), event["check"])  # strings: see journals.events
            tracker = trackers.get(key)
            if tracker is None:
                tracker = trackers[key] = Tracker(str(key[1]), str(key[2]), self.since)
            when = event["_t"]
            assert isinstance(when, float)  # parse_line set it
            tracker.add(event, when, self)
        return self

    def keep(self, episode: Episode) -> None:
        """Keep an ended episode for the list, if it is among the newest."""
        self.listed.append(episode)
        if len(self.listed) >= 2 * MAX_LISTED:
            self.listed = newest(self.listed)

    def add(self, other: Report) -> None:
        """The figures of other journals (a worker's: ``selfheal.edges.workers``)."""
        self.trackers.update(other.trackers)  # keys name their journal: none is in both
        self.listed = newest([*self.listed, *other.listed])
        self.ttr_counts = [mine + theirs for mine, theirs in zip(self.ttr_counts, other.ttr_counts)]

    def to_json(self, journals: list[str], reading: object, now: float) -> dict[str, object]:
        checks: dict[str, Figures] = {}
        hosts: dict[str, Figures] = {}
        still_open: list[Episode] = []
        for _, tracker in sorted(
            self.trackers.items(), key=lambda item: (item[1].host, item[1].check, item[0])
        ):
            host, check = tracker.host, tracker.check
            episode = tracker.open
            if episode is not None and (self.since is None or episode.start >= self.since):
                tracker.figures.episodes["total"] += 1
                tracker.figures.episodes["open"] += 1
                still_open.append(episode)
            checks.setdefault(check, Figures(check)).merge(tracker.figures, host)
            hosts.setdefault(host, Figures(host)).merge(tracker.figures, check)
        ranked = ranking(checks.values())
        ended = sum(f.episodes["recovered"] + f.episodes["gave_up"] for f in ranked)
        recovered = sum(f.recovered for f in ranked)
        total_episodes = sum(f.episodes["total"] for f in ranked)
        shown = newest([*self.listed, *still_open])
        return {
            "since": ops.iso(self.since),
            "until": ops.iso(now),
            "journal": journals[0] if len(journals) == 1 else None,
            "journals": journals,
            "skipped": getattr(reading, "skipped", 0),
            "unreadable": list(getattr(reading, "unreadable", [])),
            "rate_basis": RATE_BASIS,
            "days": sorted({d for f in ranked for d in f.per_day}),
            "checks": [f.to_json(rank, "hosts") for rank, f in enumerate(ranked, 1)],
            "hosts": [f.to_json(rank, "checks") for rank, f in enumerate(ranking(hosts.values()), 1)],
            "episodes": [e.to_json() for e in shown],
            "episodes_not_listed": total_episodes - len(shown),
            "time_to_recover_distribution": [
                {"label": label, "below": None if upper == float("inf") else upper, "episodes": count}
                for (upper, label), count in zip(TTR_BUCKETS, self.ttr_counts)
            ],
            "totals": {
                "heals_started": sum(f.started for f in ranked),
                "heals_recovered": recovered,
                "success_rate": round(recovered / ended, 4) if ended else None,
                "episodes": total_episodes,
                "episodes_gave_up": sum(f.episodes["gave_up"] for f in ranked),
                "episodes_open": sum(f.episodes["open"] for f in ranked),
                "gave_up": sum(f.gave_up for f in ranked),
            },
        }


def ranking(figures: Iterable[Figures]) -> list[Figures]:
    return sorted((f for f in figures if f.events), key=lambda f: (-f.started, -f.gave_up, f.name))


def newest(episodes: list[Episode]) -> list[Episode]:
    """The newest MAX_LISTED episodes, newest first; ties in a fixed order, whatever read them first."""
    return sorted(episodes, key=lambda e: (e.start, e.host, e.check, e.end or 0.0), reverse=True)[:MAX_LISTED]
