"""history's local times say exactly what ``ops.local`` says, for any time, in any zone.

``LocalTimes`` works local time out by arithmetic within hours whose
offset from UTC does not change; these tests hold it to ``ops.local`` (three
``localtime`` calls per event) in zones with summer time, a half-hour
change (Lord Howe Island) and an offset in seconds (Monrovia before 1972).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfheal.commands import common as ops
from selfheal.core.local_time import LocalTimes

ZONES = [
    "UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Africa/Monrovia", "Asia/Kolkata",
    "right/Europe/Berlin",  # counts leap seconds: its clock is not UTC plus an offset
]  # fmt: skip


@pytest.fixture(params=ZONES)
def zone(request: pytest.FixtureRequest) -> Iterator[str]:
    if not os.path.exists(f"/usr/share/zoneinfo/{request.param}"):
        pytest.fail(f"no zoneinfo for {request.param}: install tzdata")
    before = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


def test_local_times_match_ops_local_today_and_on_other_days(zone: str) -> None:
    stamp = LocalTimes(time.time())
    now = stamp.now
    # Today (to the second), yesterday and last year; minute edges; the same minute twice.
    times = [now - 3600 * k - s for k in (0, 1, 30, 24 * 400) for s in (0, 0.4, 59, 60, 61, 3599.9)]
    for moment in [*times, *times]:
        assert stamp(moment) == ops.local(moment, now), (zone, moment)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    moments=st.lists(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False), max_size=20),
    now=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False),
)
def test_any_time_in_any_zone_reads_as_ops_local(zone: str, moments: list[float], now: float) -> None:
    stamp = LocalTimes(now)
    for moment in moments:
        assert stamp(moment) == ops.local(moment, now), (zone, moment, now)


def test_summer_time_changes_read_as_ops_local(zone: str) -> None:
    """Every minute around this year's and 1971's changes of offset, where they fall within an hour."""
    stamp = LocalTimes(time.time())
    for year_start in (time.mktime((time.localtime().tm_year, 1, 1, 0, 0, 0, 0, 0, -1)), 31_536_000.0):
        offsets = {}
        for day in range(366):
            moment = year_start + day * 86400
            offsets[moment] = time.localtime(moment).tm_gmtoff
        moments = sorted(offsets)
        changes = [b for a, b in zip(moments, moments[1:]) if offsets[a] != offsets[b]]
        for day_after in changes:
            for minute in range(-26 * 60, 60, 7):
                moment = day_after + minute * 60 + 13.5
                assert stamp(moment) == ops.local(moment, stamp.now), (zone, moment)


def test_the_caches_stay_small_over_a_long_journal() -> None:
    stamp = LocalTimes(time.time())
    start = time.time() - 86400 * 3000
    for hour in range(50_000):
        stamp(start + hour * 3600 + 7)
    assert len(stamp.hours) <= 4096 and len(stamp.days) <= 4096


def test_every_few_minutes_of_yesterday_today_and_tomorrow_read_as_ops_local(zone: str) -> None:
    """Local midnights, today's and the days' around it, also inside a UTC hour (Kolkata, Monrovia)."""
    stamp = LocalTimes(time.time())
    for minutes in range(-48 * 60, 48 * 60, 7):
        moment = stamp.now + minutes * 60 + 0.25
        assert stamp(moment) == ops.local(moment, stamp.now), (zone, moment)
