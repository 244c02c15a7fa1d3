"""The transient unit's name and the environment it gets (selfheal.edges.spawner)."""

from __future__ import annotations

import pytest

from selfheal.core.actions import Command, Systemd
from selfheal.edges.transient import _passable, unit_name


@pytest.mark.parametrize(
    ("check", "expected"),
    [
        ("web", "selfheal-heal-web-0a1b.service"),
        ("db:main/replica", "selfheal-heal-db_main_replica-0a1b.service"),
        ("café x", "selfheal-heal-caf__x-0a1b.service"),
        ("n" * 300, f"selfheal-heal-{'n' * 100}-0a1b.service"),
    ],
)
def test_unit_name_keeps_to_what_systemd_allows(check: str, expected: str) -> None:
    assert unit_name(check, "0a1b") == expected


@pytest.mark.parametrize(
    ("key", "value", "passed"),
    [
        ("PATH", "/usr/bin:/bin", True),
        ("NAGIOS_SERVICEOUTPUT", "multi\nline\tok", True),
        ("INVOCATION_ID", "abc", False),
        ("NOTIFY_SOCKET", "/run/systemd/notify", False),
        ("1BAD", "x", False),
        ("BAD-NAME", "x", False),
        ("CONTROL", "bell\x07", False),
        ("UNDECODABLE", "\udcff", False),
    ],
)
def test_only_variables_systemd_accepts_and_not_the_callers_units_own(
    key: str, value: str, passed: bool
) -> None:
    assert _passable(key, value) is passed


def test_a_systemd_heal_resets_its_start_limit_through_the_same_sudo() -> None:
    assert Systemd("web.service", sudo=True).start_limit() == {
        "unit": "web.service",
        "show": ["systemctl", "show", "-p", "ActiveState", "-p", "Result", "web.service"],
        "reset": ["sudo", "-n", "--", "systemctl", "reset-failed", "web.service"],
    }
    assert Systemd("web.service").start_limit()["reset"] == ["systemctl", "reset-failed", "web.service"]  # type: ignore[index]
    # A stop is never refused by a start limit; a command is the operator's own.
    assert Systemd("web.service", "stop").start_limit() is None
    assert Command("systemctl restart web.service").start_limit() is None


def test_a_runner_outside_its_own_unit_has_no_cgroup_to_kill() -> None:
    """In a new session the runner shares its caller's cgroup (NRPE's, say): never its to kill."""
    from selfheal.edges.proc import own_unit_cgroup

    assert own_unit_cgroup("selfheal-heal-nosuch-0.service") is None
