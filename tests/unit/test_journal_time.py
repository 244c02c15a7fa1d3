"""The journal's time read fast (``_journal_ts``) is the time ``parse_ts`` reads, or none at all.

``parse_line`` tries the fast reading first and falls back to ``parse_ts``
when it gives none: so the fast one may refuse anything, but must never
read a different time.
"""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from selfheal.core.journal_line import _journal_ts, parse_ts
from selfheal.core.record import MAX_TIME

stamps = st.floats(min_value=0, max_value=MAX_TIME, allow_nan=False).map(
    lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"
)
#: Characters a mutation puts into a time: digits, its own separators, and some that are neither.
noise = st.sampled_from("0123456789T:.Z-+ 9\u0663x")


@given(stamps)
def test_every_time_as_the_journal_writes_it_is_read_fast_and_the_same(ts: str) -> None:
    assert _journal_ts(ts) is not None and _journal_ts(ts) == parse_ts(ts)


@settings(max_examples=2000)
@given(stamps, st.lists(st.tuples(st.integers(0, 23), noise), min_size=1, max_size=3))
def test_a_changed_time_is_read_the_same_or_not_at_all(ts: str, changes: list[tuple[int, str]]) -> None:
    for at, char in changes:
        ts = ts[:at] + char + ts[at + 1 :]
    fast = _journal_ts(ts)
    assert fast is None or fast == parse_ts(ts), ts


def test_edges() -> None:
    assert _journal_ts("2026-11-28T23:59:61.999Z") == parse_ts("2026-11-28T23:59:61.999Z")  # a leap second
    for bad in ("2026-11-28T24:00:00.000Z", "2026-11-28T03:60:00.000Z", "2026-11-28T03:10:62.000Z",
                "2026-11-28 03:10:06.123Z", "2026-11-28T03-10:06.123Z", "2026-11-28T03:10:06,123Z",
                "2026-11-28T03:10:06.123+", "2026-02-30T03:10:06.123Z", "9999-12-31T23:59:59.999Z"):  # fmt: skip
        assert _journal_ts(bad) is None or _journal_ts(bad) == parse_ts(bad), bad
    assert _journal_ts("2026-02-30T03:10:06.123Z") is None
