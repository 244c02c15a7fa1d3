"""Putting a fleet's journals in time order, and splitting them among workers (issue 15, point 7).

``journals.ordered`` sorts one journal within a window, ``journals.merged``
merges journals by their heads, and ``workers.split`` cuts the journals into
runs of consecutive ones. Together they promise that the order ``history``
prints does not depend on how many workers read: merging groups, then the
groups, is merging all at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from selfheal.edges.journals import Source, merged, ordered
from selfheal.edges.workers import split

#: (time, journal, position in it): the position tells which of two equal times came first.
Item = tuple[float, int, int]

times = st.integers(min_value=0, max_value=40).map(float)  # few values: many ties


def journal(number: int, values: list[float]) -> list[Item]:
    return [(value, number, position) for position, value in enumerate(values)]


def flat(journals: list[list[Item]], window: int) -> list[Item]:
    return list(merged([ordered(iter(items), window) for items in journals]))


@given(values=st.lists(times, max_size=200), window=st.integers(min_value=1, max_value=16))
def test_ordered_keeps_every_item_and_is_stable(values: list[float], window: int) -> None:
    items = journal(0, values)
    out = list(ordered(iter(items), window))
    assert sorted(out) == sorted(items)
    for earlier, later in itertools.combinations(out, 2):
        if earlier[0] == later[0]:
            assert earlier[2] < later[2], "a tie left the journal's order"


@given(data=st.data(), window=st.integers(min_value=1, max_value=16))
def test_ordered_sorts_what_is_less_than_a_window_out_of_place(data: st.DataObject, window: int) -> None:
    """Concurrent writers' disorder: each item is fewer than ``window`` places from its sorted place."""
    values = sorted(data.draw(st.lists(times, max_size=150)))
    # Shuffle within blocks of ``window`` that start anywhere (not where ``ordered``
    # cuts its chunks): no item moves ``window`` places or more.
    offset = data.draw(st.integers(min_value=0, max_value=window - 1))
    starts = [0, *range(offset or window, len(values), window)]
    shuffled: list[float] = []
    for start, end in zip(starts, [*starts[1:], len(values)]):
        shuffled += data.draw(st.permutations(values[start:end]))
    out = list(ordered(iter(journal(0, shuffled)), window))
    assert [item[0] for item in out] == values


@given(
    journals=st.lists(st.lists(times, max_size=40), min_size=1, max_size=6),
    window=st.integers(min_value=1, max_value=8),
    data=st.data(),
)
def test_merging_in_groups_is_merging_all_at_once(
    journals: list[list[float]], window: int, data: st.DataObject
) -> None:
    """Whatever runs of consecutive journals the workers get, the printed order is the same."""
    items = [journal(number, values) for number, values in enumerate(journals)]
    cuts = sorted(data.draw(st.sets(st.integers(min_value=1, max_value=max(1, len(items) - 1)))))
    bounds = [0, *[cut for cut in cuts if cut < len(items)], len(items)]
    groups = [items[a:b] for a, b in zip(bounds, bounds[1:]) if a < b]
    in_groups = list(merged([iter(flat(group, window)) for group in groups]))
    assert in_groups == flat(items, window)


def test_ties_go_to_the_earlier_journal_then_to_the_journal_s_own_order() -> None:
    a = journal(0, [1.0, 2.0, 2.0])
    b = journal(1, [2.0, 2.0, 3.0])
    assert flat([a, b], 4) == [(1.0, 0, 0), (2.0, 0, 1), (2.0, 0, 2), (2.0, 1, 0), (2.0, 1, 1), (3.0, 1, 2)]


def test_an_endless_journal_is_held_two_windows_deep() -> None:
    def endless() -> Iterator[tuple[float]]:
        return ((float(n),) for n in itertools.count())

    assert list(itertools.islice(ordered(endless(), 8), 20)) == [(float(n),) for n in range(20)]


def sources(sizes: list[int], tmp: object) -> list[Source]:
    """Journals of the given sizes in bytes, as files (split reads their sizes)."""
    from pathlib import Path

    root = Path(str(tmp))
    found = []
    for number, size in enumerate(sizes):
        path = root / f"h{number}.jsonl"
        path.write_bytes(b"x" * size)
        found.append(Source(str(path), [str(path)], f"h{number}"))
    return found


def test_split_gives_runs_of_consecutive_journals_of_about_equal_size(tmp_path: object) -> None:
    journals = sources([100, 100, 100, 100, 100, 100], tmp_path)
    groups = split(journals, 3)
    assert [[s.host for s in group] for group in groups] == [["h0", "h1"], ["h2", "h3"], ["h4", "h5"]]
    big_first = sources([500, 100, 100, 100, 100, 100], tmp_path)
    assert [[s.host for s in g] for g in split(big_first, 2)] == [["h0"], ["h1", "h2", "h3", "h4", "h5"]]


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=1000), min_size=1, max_size=12),
    count=st.integers(1, 14),
)
def test_split_keeps_every_journal_once_in_order(sizes: list[int], count: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        journals = sources(sizes, tmp)
        groups = split(journals, count)
        assert [s for group in groups for s in group] == journals
        assert all(groups) and len(groups) == min(count, len(journals))
