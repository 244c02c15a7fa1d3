"""The tests' journal reader is strict: a torn journal fails, except in a poll.

Settled-state assertions ("the journal is never torn") rely on it.
"""

from __future__ import annotations

import pytest
from conftest import journal_events

WHOLE = '{"event": "attempt", "check": "web"}\n'
TORN = '{"event": "action_end", "check": "w'


def test_a_torn_last_line_fails_a_settled_read(tmp_path):
    (tmp_path / "journal.jsonl").write_text(WHOLE + TORN)
    with pytest.raises(AssertionError, match="torn last journal line"):
        journal_events(tmp_path)
    # Whole JSON without its newline is torn too: every event is one line with its newline.
    (tmp_path / "journal.jsonl").write_text(WHOLE + WHOLE.rstrip("\n"))
    with pytest.raises(AssertionError, match="torn"):
        journal_events(tmp_path, "attempt")


def test_a_poll_leaves_out_a_line_still_being_written(tmp_path):
    (tmp_path / "journal.jsonl").write_text(WHOLE + TORN)
    assert journal_events(tmp_path, in_flight=True) == [{"event": "attempt", "check": "web"}]


def test_a_torn_line_inside_the_journal_fails_even_a_poll(tmp_path):
    (tmp_path / "journal.jsonl").write_text(WHOLE + TORN + "\n" + WHOLE)
    with pytest.raises(ValueError):
        journal_events(tmp_path, in_flight=True)
