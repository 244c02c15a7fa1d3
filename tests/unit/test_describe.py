"""``describe``: each kind's details in words, row by row, and any odd value shown or left out, never raised."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfheal.core.events import describe

ARGV = ["sudo", "-n", "--", "systemctl", "restart", "nginx"]

ROWS = [
    ({"event": "attempt", "attempt": 1, "argv": ARGV, "unit": "selfheal-heal-nginx-1.service"},
     "attempt 1, sudo -n -- systemctl restart nginx, unit selfheal-heal-nginx-1.service"),
    ({"event": "attempt", "attempt": 2, "argv": ARGV, "fallback_reason": "no systemd"},
     "attempt 2, sudo -n -- systemctl restart nginx, new session: no systemd"),
    ({"event": "attempt", "attempt": 150, "argv": ["a", 5]}, "attempt 150, a 5"),
    ({"event": "action_end", "attempt": 1, "exit_code": 0, "duration": 2.481}, "attempt 1, exited 0, after 2.481s"),
    ({"event": "action_end", "attempt": 2, "exit_code": -255, "duration": 0, "reason": "boom"},
     "attempt 2, exited -255, after 0s (boom)"),
    ({"event": "action_end", "exit_code": 300, "duration": 1e16}, "exited 300, after 1e+16s"),
    ({"event": "action_end", "exit_code": 1.5}, "exited 1.5"),
    ({"event": "action_lost", "attempt": 3, "timed_out": True, "exit_code": 1}, "attempt 3, timed out"),
    ({"event": "action_end", "exit_code": 1, "reset_failed": {"unit": "u.service", "exit_code": 0}},
     "exited 1, reset-failed u.service first"),
    ({"event": "action_end", "reset_failed": {"unit": "u.service", "exit_code": 5}},
     "reset-failed u.service first (exited 5)"),
    ({"event": "recovered", "attempt": 1, "time_to_recover": 60.0}, "attempt 1, 60.0s after the first heal"),
    ({"event": "verified", "time_to_recover": 7}, "7s after the first heal"),
    ({"event": "reported", "to": "nagios", "state": 2}, "CRITICAL to nagios, accepted"),
    ({"event": "reported", "to": "icinga", "state": 9, "reason": "refused"}, "? to icinga (refused)"),
    ({"event": "paused", "until": "2026-12-01T10:00:00Z", "by": "alice"}, "until 2026-12-01T10:00:00Z, by alice"),
    ({"event": "fleet_acquired", "group": "web", "slot": 1, "in_use": 2, "max_concurrent": 3, "holder": "h1"},
     "group web slot 1, 2/3 in use, held by h1"),
    ({"event": "fleet_someday", "group": "db"}, "group db"),
    ({"event": "skipped_cooldown", "attempt": 2, "reason": "next attempt after 15m"},
     "attempt 2 (next attempt after 15m)"),
    ({"event": "gave_up", "reason": "3 attempts within 6h"}, "(3 attempts within 6h)"),
    ({"event": "reset", "by": "bob"}, "by bob"),
    ({"event": "unknown_kind"}, ""),
    ({"event": "attempt", "argv": [""], "reason": "no heal command"}, "(no heal command)"),
    ({"event": 5, "attempt": True, "duration": "2s"}, ""),
]  # fmt: skip


@pytest.mark.parametrize(("event", "text"), ROWS)
def test_each_kind_in_words(event: dict[str, object], text: str) -> None:
    assert describe(event) == text


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5),
    st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3),
    st.dictionaries(st.sampled_from(["unit", "exit_code"]), st.one_of(st.integers(), st.text(max_size=3))),
)  # fmt: skip
kinds = st.one_of(
    st.sampled_from(["attempt", "action_end", "action_lost", "recovered", "verified", "reported", "paused",
                     "fleet_acquired", "skipped_cooldown", "gave_up"]),
    st.text(max_size=8), st.integers(), st.none(),
)  # fmt: skip
keys = st.sampled_from(["attempt", "argv", "timed_out", "exit_code", "duration", "reset_failed", "unit",
                        "fallback_reason", "time_to_recover", "to", "state", "reason", "group", "slot",
                        "in_use", "max_concurrent", "holder", "until", "by"])  # fmt: skip


@given(kind=kinds, fields=st.dictionaries(keys, values))
def test_any_values_are_described_without_raising_and_a_figure_only_when_a_number(
    kind: object, fields: dict[str, object]
) -> None:
    text = describe({"event": kind, **fields})
    attempt = fields.get("attempt")
    if isinstance(attempt, (int, float)) and not isinstance(attempt, bool):
        assert text.startswith(f"attempt {attempt}")
    elif fields.get("argv") is None and not fields.get("reason"):
        assert "attempt" not in text  # an odd attempt is left out
