"""Local times as ``history`` lists them, a fleet's million at a time.

``decision.when`` (the check's notes, the tables) asks ``localtime`` three
times per time; a listing of a million events would spend seconds on it.
``LocalTimes`` gives the same text by arithmetic (held to ``when`` in six
zones by ``tests/unit/test_history_times.py``).
"""

from __future__ import annotations

import time

from selfheal.core.decision import when

#: Each minute of a day as a clock shows it (``03:07``), and the seconds.
_TWO_DIGITS = [f"{n:02d}" for n in range(60)]
_CLOCK = [f"{h}:{m}" for h in _TWO_DIGITS[:24] for m in _TWO_DIGITS]


class LocalTimes:
    """``decision.when`` for a stream of times, by arithmetic rather than three ``localtime`` per event.

    Within a UTC hour whose offset from UTC is the same at its start and
    its end, and which stays within one local day, local time is the
    time plus that offset: the hour's date and where it starts in the day
    are worked out once, and each event's clock is one addition. An hour
    that crosses local midnight (a zone half an hour off) is worked out
    event by event with the same arithmetic; one with a change of offset
    in it (a zone's summer time starts or ends), or whose clock is not
    the offset alone (a zone that counts leap seconds), goes to ``when``. A
    fleet's events are sparse (an hour holds few), so the cache is by
    hour, not by minute.
    """

    def __init__(self, now: float) -> None:
        self.now = now
        today = int(self.now)
        self.today = (today + time.localtime(today).tm_gmtoff) // 86400
        #: UTC hour: (seconds to add to a time in it for its local clock in the day, its date and
        #: a space, or "" for today); (offset, None) when it crosses local midnight; (None, None)
        #: when its offset changes within it.
        self.hours: dict[int, tuple[int | None, str | None]] = {}
        self.days: dict[int, str] = {}  # local day number: its date and a space (hours across midnight)

    def __call__(self, timestamp: float) -> str:
        second = int(timestamp)
        hour = second // 3600
        known = self.hours.get(hour)
        if known is None:
            known = self._hour(hour)
        shift, date = known
        if date is None:
            if shift is None:
                return when(timestamp, self.now)
            # The hour crosses local midnight: its date is worked out per event.
            day, clock = divmod(second + shift, 86400)
            date = "" if day == self.today else self.days.get(day) or self._date(day)
        else:
            clock = second + shift  # type: ignore[operator]  # an int whenever date is not None
        if date:
            return date + _CLOCK[clock // 60]
        return f"{_CLOCK[clock // 60]}:{_TWO_DIGITS[clock % 60]}"

    def _hour(self, hour: int) -> tuple[int | None, str | None]:
        start = hour * 3600
        first, last = time.localtime(start), time.localtime(start + 3599)
        offset = first.tm_gmtoff
        known: tuple[int | None, str | None] = (None, None)
        # The arithmetic is trusted for the hour only where localtime agrees with
        # it at both ends: not across a change of offset, nor in a zone that
        # counts leap seconds ("right/..."), whose clock is not the offset alone.
        if (
            last.tm_gmtoff == offset
            and _seconds(first) == (start + offset) % 86400 == (_seconds(last) - 3599) % 86400
        ):
            day, clock = divmod(start + offset, 86400)
            if clock + 3599 < 86400:
                known = (clock - start, "" if day == self.today else self._date(day))
            else:
                known = (offset, None)
        if len(self.hours) >= 4096:  # a journal of months: keep the cache small
            self.hours.clear()
        self.hours[hour] = known
        return known

    def _date(self, day: int) -> str:
        """Local day number ``day`` as the table shows it before the clock."""
        if len(self.days) >= 4096:
            self.days.clear()
        date = self.days[day] = time.strftime("%Y-%m-%d ", time.gmtime(day * 86400))
        return date


def _seconds(moment: time.struct_time) -> int:
    """The second of its day that ``moment`` shows."""
    return moment.tm_hour * 3600 + moment.tm_min * 60 + moment.tm_sec
