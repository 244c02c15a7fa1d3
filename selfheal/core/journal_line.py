"""One journal line, checked: the only way a journal event enters the program.

``history``, ``report`` and the demo read events through ``parse_line``.
The journal is ours, but logrotate, an editor, a torn write on a full disk
or another tool may have left anything in it, and a line that parses can
still hold ``"argv": 5``, a NaN, or a date in the year 9999.

Two outcomes, and why:

- **A corrupt line** (None): not UTF-8 JSON, not an object, nested deeper
  than any event, or without the three fields that place an event at all:
  ``ts`` (ISO 8601 UTC, 1970 to 9999), ``event`` and ``check`` (strings).
  The caller counts it and skips it.
- **A dropped field**: the event is placed, but one of its figures is odd
  (a string where a number belongs, a number that is not finite or out of
  range, an argv that is not a list of strings). That field alone is
  dropped from what is shown and counted, and the rest of the event stands:
  the attempt still happened, and losing it from ``history`` or from the
  report's count would lose recorded data for one bad figure. The line in
  the file is never changed.

So every event that leaves here is plain JSON with finite numbers: ``report
--json`` never prints ``NaN`` or ``Infinity``, and the report's sums stay
finite.
"""

from __future__ import annotations

import calendar
import math
import time

from selfheal.core import jsonio
from selfheal.core.record import MAX_COUNT, MAX_PID, MAX_SPAN, MAX_TIME

#: A real event nests one level below the line (argv); other tools may add
#: a little more. Anything deeper is refused before it is walked.
MAX_DEPTH = 8

_FIGURES: dict[str, tuple[float, float]] = {
    "attempt": (0, MAX_COUNT),
    "pid": (1, MAX_PID),
    "exit_code": (-255, 255),
    "duration": (0.0, MAX_SPAN),
    "time_to_recover": (0.0, MAX_SPAN),
}
_INTEGERS = ("attempt", "pid", "exit_code")
_TEXTS = ("host", "reason", "by", "until", "action", "log", "error")
#: The fields that must not be text.
_NOT_TEXT = frozenset([*_FIGURES, "argv", "timed_out"])


def parse_ts(text: object) -> float | None:
    """The journal's ``2026-11-28T03:10:06.123Z`` as an epoch timestamp; None if not one.

    Only times from 1970 to the end of 9999: everything that shows or
    charts a time can then format it.
    """
    if not isinstance(text, str) or not text.endswith("Z") or len(text) > 40:
        return None
    whole, _, fraction = text[:-1].partition(".")
    if fraction and not (fraction.isascii() and fraction.isdigit()):
        return None
    seconds = _fast_seconds(whole)
    if seconds is None:
        try:
            seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        except (ValueError, OverflowError):
            return None
    when = seconds + (float(f"0.{fraction}") if fraction else 0.0)
    return when if 0 <= when <= MAX_TIME else None


#: Midnight of each date seen, by its text: ``strptime`` costs more than the
#: rest of a line's checks together, and a journal holds few distinct dates.
_DAYS: dict[str, int | None] = {}


def _fast_seconds(whole: str) -> int | None:
    """``YYYY-MM-DDTHH:MM:SS`` in exactly the form the journal writes; None for anything else.

    Anything else (one-digit fields, odd separators) goes to ``strptime``,
    which then decides exactly as before.
    """
    if len(whole) != 19 or whole[10] != "T" or whole[13] != ":" or whole[16] != ":":
        return None
    clock = whole[11:13] + whole[14:16] + whole[17:19]
    if not (clock.isascii() and clock.isdigit()):
        return None
    hours, minutes, seconds = int(clock[0:2]), int(clock[2:4]), int(clock[4:6])
    if hours > 23 or minutes > 59 or seconds > 61:  # strptime's own bounds (61: leap seconds)
        return None
    date = whole[:10]
    midnight = _DAYS.get(date, -1)
    if midnight == -1:
        try:
            midnight = calendar.timegm(time.strptime(date, "%Y-%m-%d"))
        except (ValueError, OverflowError):
            midnight = None
        if len(_DAYS) >= 4096:
            _DAYS.clear()
        _DAYS[date] = midnight
    if midnight is None:
        return None
    return midnight + hours * 3600 + minutes * 60 + seconds


def parse_line(line: bytes) -> tuple[dict[str, object] | None, int]:
    """The event on ``line`` with ``_t`` (its time) added, and how many fields were dropped.

    (None, 0) for a corrupt line. Never raises for any input.

    A report reads a million of these: the common case (text where text
    belongs, figures in range, the time as the journal writes it) is
    decided inline, and anything else goes to the general checks, which
    alone decide what is odd.
    """
    try:
        event = jsonio.loads_line(line.decode("utf-8", "replace"))
    except ValueError:
        return None, 0
    if type(event) is not dict:
        return None, 0
    ts = event.get("ts")
    when = _journal_ts(ts) if type(ts) is str and len(ts) == 24 else None
    if when is None:
        when = parse_ts(ts)
    if when is None or not isinstance(event.get("event"), str) or not isinstance(event.get("check"), str):
        return None, 0
    dropped = None
    for key, value in event.items():
        kind = type(value)
        if kind is str:
            if key not in _NOT_TEXT:
                continue
        elif kind is int or kind is float:
            bounds = _FIGURES.get(key)
            if (
                bounds is not None
                and (kind is int or key not in _INTEGERS)
                and bounds[0] <= value <= bounds[1]
            ):
                continue
        elif kind is list and key == "argv":
            try:
                "".join(value)  # in C: TypeError for a word that is not text
                continue
            except TypeError:
                pass
        elif kind is bool and key == "timed_out":
            continue
        if (kind is list or kind is dict) and jsonio.deeper_than(value, MAX_DEPTH - 1):
            return None, 0  # deeper than any event (the line itself is one level)
        if not _plausible(key, value):
            dropped = [key] if dropped is None else [*dropped, key]
    event["_t"] = when
    if dropped is None:
        return event, 0
    for key in dropped:
        del event[key]
    return event, len(dropped)


#: The clock as the journal writes it, with the separators after each part, in seconds: one
#: lookup checks and converts each part (``T03:10:``, ``06.``, ``123Z``). Seconds go to 61,
#: strptime's own bound (leap seconds).
_HOURS_MINUTES = {f"T{h:02d}:{m:02d}:": h * 3600 + m * 60 for h in range(24) for m in range(60)}
_SECONDS = {f"{n:02d}.": n for n in range(62)}
_FRACTIONS = {f"{n:03d}Z": n / 1000 for n in range(1000)}
#: Midnight of each date seen (``2026-11-28``), or None for one that is not a date.
_MIDNIGHTS: dict[str, float | None] = {}


def _journal_ts(ts: str) -> float | None:
    """``2026-11-28T03:10:06.123Z``, exactly as the journal writes it, as ``parse_ts`` reads it; else None.

    ``ts`` has 24 characters. Only the date goes through ``strptime``, once per date.
    """
    clock = _HOURS_MINUTES.get(ts[10:17])
    seconds = _SECONDS.get(ts[17:20])
    fraction = _FRACTIONS.get(ts[20:24])
    if clock is None or seconds is None or fraction is None:
        return None
    date = ts[:10]
    midnight = _MIDNIGHTS.get(date, -1.0)
    if midnight == -1.0:
        midnight = parse_ts(date + "T00:00:00Z")
        if len(_MIDNIGHTS) >= 4096:
            _MIDNIGHTS.clear()  # a journal goes forward in time: the dates to come are new ones
        _MIDNIGHTS[date] = midnight
    if midnight is None:
        return None
    when = midnight + (clock + seconds) + fraction
    return when if when <= MAX_TIME else None


def _plausible(key: str, value: object) -> bool:
    if key in _FIGURES:
        if value is None:
            return True
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if key in _INTEGERS and not isinstance(value, int):
            return False
        low, high = _FIGURES[key]
        return low <= value <= high  # NaN fails both comparisons
    if key == "argv":
        return isinstance(value, list) and all(isinstance(word, str) for word in value)
    if key == "timed_out":
        return isinstance(value, bool)
    if key in _TEXTS:
        return value is None or isinstance(value, str)
    return _finite(value)


def _finite(value: object) -> bool:
    """No NaN or infinity anywhere in a field we do not know (it is shown as JSON)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
