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
    try:
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    except (ValueError, OverflowError):
        return None
    when = seconds + (float(f"0.{fraction}") if fraction else 0.0)
    return when if 0 <= when <= MAX_TIME else None


def parse_line(line: bytes) -> tuple[dict[str, object] | None, int]:
    """The event on ``line`` with ``_t`` (its time) added, and how many fields were dropped.

    (None, 0) for a corrupt line. Never raises for any input.
    """
    from selfheal.core import jsonio

    try:
        event = jsonio.loads(line.decode("utf-8", "replace"), max_depth=MAX_DEPTH)
    except ValueError:
        return None, 0
    if not isinstance(event, dict):
        return None, 0
    when = parse_ts(event.get("ts"))
    if when is None or not isinstance(event.get("event"), str) or not isinstance(event.get("check"), str):
        return None, 0
    dropped = [key for key, value in event.items() if not _plausible(key, value)]
    for key in dropped:
        del event[key]
    event["_t"] = when
    return event, len(dropped)


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
