"""history's per-minute local times say exactly what ``ops.local`` says, for each event."""

from __future__ import annotations

import time

from selfheal.commands import common as ops
from selfheal.commands.history import LocalTimes


def test_local_times_match_ops_local_today_and_on_other_days() -> None:
    stamp = LocalTimes()
    now = stamp.now
    # Today (to the second), yesterday and last year; minute edges; the same minute twice.
    times = [now - 3600 * k - s for k in (0, 1, 30, 24 * 400) for s in (0, 0.4, 59, 60, 61, 3599.9)]
    for moment in [*times, *times]:
        assert stamp(moment) == ops.local(moment, now), moment


def test_the_cache_stays_small_over_a_long_journal() -> None:
    stamp = LocalTimes()
    start = time.time() - 86400 * 30
    for minute in range(10_000):
        stamp(start + minute * 60 + 7)
    assert len(stamp.minutes) <= 4096
