"""A journal line nested deeper than any event is corrupt, wherever the nesting is.

``jsonio.loads_line`` no longer counts brackets on every line: ``parse_line``
measures the containers it walks anyway. These hold the bound where it was.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfheal.core.journal_line import MAX_DEPTH, parse_line

BASE = {"ts": "2026-11-28T03:10:06.123Z", "event": "attempt", "check": "web", "attempt": 1}


def nested(levels: int, leaf: object = "x", as_object: bool = False) -> object:
    """A value ``levels`` containers deep (a scalar is 0)."""
    value = leaf
    for _ in range(levels):
        value = {"k": value} if as_object else [value]
    return value


def line(**fields: object) -> bytes:
    return (json.dumps({**BASE, **fields}) + "\n").encode()


@pytest.mark.parametrize("key", ["argv", "reset_failed", "extra", "host", "attempt"])
@pytest.mark.parametrize("as_object", [False, True])
def test_the_deepest_allowed_field_is_read_and_one_level_more_is_corrupt(key: str, as_object: bool) -> None:
    # The line itself is one level: a field may hold MAX_DEPTH - 1 more.
    event, _ = parse_line(line(**{key: nested(MAX_DEPTH - 1, as_object=as_object)}))
    assert event is not None
    assert parse_line(line(**{key: nested(MAX_DEPTH, as_object=as_object)})) == (None, 0)


@given(levels=st.integers(min_value=0, max_value=2000), key=st.sampled_from(["argv", "reason", "x"]))
def test_any_nesting_is_read_or_corrupt_by_its_depth_alone(levels: int, key: str) -> None:
    event, _ = parse_line(line(**{key: nested(levels, leaf=1)}) if levels < 900 else deep_text(key, levels))
    assert (event is None) == (levels > MAX_DEPTH - 1)


def deep_text(key: str, levels: int) -> bytes:
    """A line too deep for ``json.dumps`` to write, written by hand."""
    head = json.dumps(BASE)[:-1]
    return f'{head}, "{key}": {"[" * levels}1{"]" * levels}}}\n'.encode()
