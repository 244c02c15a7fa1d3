"""The pure parts of verify and report_to: the external command line, the messages, the targets."""

from __future__ import annotations

import pytest

from selfheal.core.record import Attempt, CorruptRecord
from selfheal.edges import targets
from selfheal.edges.nagios_cmd import LINE_MAX, NagiosTarget, command_line
from selfheal.report_back import message
from selfheal.verify import Recheck, healthy

TARGET = NagiosTarget("/var/lib/nagios4/rw/nagios.cmd", "web1", "HTTP")
GOOD = {"command_file": "/var/lib/nagios4/rw/nagios.cmd", "host": "web1", "service": "HTTP"}


def fields(line: bytes) -> list[str]:
    """The command's fields, as Nagios splits one line: the output is the rest of the line."""
    text = line.decode()
    assert text.endswith("\n") and text.count("\n") == 1, text
    head, _, rest = text[:-1].partition("] ")
    assert head.startswith("[") and head[1:].isdigit()
    return rest.split(";", 4)


def test_the_command_line_is_one_passive_result() -> None:
    line = command_line(TARGET, 0, "WEB OK - HTTP OK: 200 | time=0.1s", 1_700_000_000.7)
    assert (
        line == b"[1700000000] PROCESS_SERVICE_CHECK_RESULT;web1;HTTP;0;WEB OK - HTTP OK: 200 | time=0.1s\n"
    )


@pytest.mark.parametrize(
    "hostile",
    [
        "down\n[1] DISABLE_NOTIFICATIONS",
        "down\r\n[1] SHUTDOWN_PROGRAM\n",
        "down;x;y\n[1] PROCESS_SERVICE_CHECK_RESULT;web1;HTTP;0;all fine",
        "nul\0[1] SHUTDOWN_PROGRAM",
        "\x0b\x0c\x1b[31m\x7f",
    ],
)
def test_hostile_output_stays_in_the_output_field(hostile: str) -> None:
    line = command_line(TARGET, 2, hostile, 1_700_000_000)
    command, host, service, code, output = fields(line)
    assert (command, host, service, code) == ("PROCESS_SERVICE_CHECK_RESULT", "web1", "HTTP", "2")
    assert not any(ord(c) < 32 or ord(c) == 127 for c in output)
    # The semicolons are kept as text: Nagios reads the output to the end of the line.
    assert output.count(";") == hostile.count(";")


def test_long_output_is_cut_to_one_atomic_write_on_a_character_boundary() -> None:
    line = command_line(TARGET, 0, "é" * 10_000, 1_700_000_000)
    assert len(line) <= LINE_MAX
    line.decode("utf-8")  # not cut inside a character
    assert fields(line)[4].startswith("éé")


def test_a_state_outside_0_to_3_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Nagios state"):
        command_line(TARGET, 4, "x", 0)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"host": "web1;web2"}, "host"),
        ({"service": "HTTP\n[1] SHUTDOWN_PROGRAM"}, "service"),
        ({"service": ""}, "service"),
        ({"host": "$HOSTNAME$"}, "host"),
        ({"command_file": "rw/nagios.cmd"}, "command_file"),
        ({"command_file": 5}, "command_file"),
        ({"extra": "x"}, "extra"),
    ],
)
def test_a_bad_nagios_target_names_its_key(change: dict[str, object], key: str) -> None:
    with pytest.raises(ValueError) as caught:
        NagiosTarget.from_json({**GOOD, **change})
    assert str(caught.value).startswith(f"{key}:"), caught.value


def test_a_missing_key_is_named() -> None:
    with pytest.raises(ValueError, match=r"^service: missing"):
        NagiosTarget.from_json({"command_file": "/x", "host": "h"})


def test_the_target_round_trips_through_json() -> None:
    assert NagiosTarget.from_json(GOOD).to_json() == GOOD
    assert targets.target("nagios", GOOD).to_json() == GOOD


def test_an_unknown_kind_is_refused_and_not_sent() -> None:
    with pytest.raises(ValueError, match="unknown target 'pager'"):
        targets.target("pager", {})
    assert targets.send("pager", {}, 0, "x", None) == "bad report_to pager: 'pager'"
    assert targets.send("nagios", {"host": "h"}, 0, "x", None).startswith("bad report_to nagios: ")


def test_a_re_check_that_never_saw_ok_makes_the_attempt_failed() -> None:
    done = Attempt(id="a", number=1, started=10.0, ended=20.0, exit_code=0)
    assert not done.failed()
    done.verified = True
    assert not done.failed()
    done.verified = False
    assert done.failed()
    assert "had not recovered" in done.outcome()
    assert Attempt(id="b", ended=20.0, exit_code=1).failed()
    assert Attempt(id="c", ended=20.0, exit_code=None, timed_out=True).failed()
    assert Attempt(id="d", ended=20.0, exit_code=0, error="cannot execute").failed()
    assert not Attempt(id="e").failed()  # still running


def test_the_verification_fields_are_checked_like_the_others() -> None:
    base = Attempt(id="a", ended=20.0, exit_code=0, verified=True, recovered_in=3.5).to_json()
    assert Attempt.from_json(base).recovered_in == 3.5
    for bad in ({"verified": "yes"}, {"verified": 1}, {"recovered_in": -1}, {"recovered_in": float("nan")}):
        with pytest.raises(CorruptRecord):
            Attempt.from_json({**base, **bad})


def test_healthy_is_ok_or_a_state_the_check_does_not_heal_on() -> None:
    assert healthy(0, [2]) and healthy(1, [2])
    assert not healthy(2, [2]) and not healthy(3, [2])
    assert not healthy(1, [1, 2])


def test_the_verified_message_keeps_the_check_output_and_names_the_heal() -> None:
    seen = Recheck(True, 0, "HTTP OK: 200", ["time=0.1s"], 100.0, 1)
    state, text, comment = message("web", seen, "systemctl restart nginx", {"number": 1}, 4.2)
    assert state == 0
    assert (
        text
        == "WEB OK - HTTP OK: 200 (healed by selfheal: systemctl restart nginx, recovered in 4s) | time=0.1s"
    )
    assert comment == "healed by selfheal: systemctl restart nginx, recovered in 4s"


def test_the_not_recovered_message_is_critical_did_not_help() -> None:
    seen = Recheck(False, 2, "connection refused", [], 100.0, 5)
    state, text, _ = message("web", seen, "start-web", {"number": 2, "exit_code": 0}, None)
    assert state == 2
    assert text == (
        "WEB CRITICAL - self-healing did not help: start-web (attempt 2); "
        "the check still says CRITICAL: connection refused"
    )
    _, failed, _ = message("web", seen, "start-web", {"number": 1, "exit_code": 1}, None)
    assert "start-web (attempt 1) exited 1; the check still says" in failed


def test_a_verifying_runner_unit_may_run_through_its_re_checks() -> None:
    from selfheal.edges.transient import unit_command

    spec = {"check": "web", "attempt": "a1", "log": "/x.log", "timeout": 120, "kill_grace": 5, "splay": 0}
    limits = []
    reports = {"icinga": {"url": "https://i:5665", "timeout": 20}, "nagios": {"command_file": "/x"}}
    verify = {"grace": 600, "timeout": 30}
    for extra in ({}, {"verify": verify}, {"verify": {**verify, "report_to": reports}}):
        _, argv = unit_command("/usr/bin/systemd-run", {**spec, **extra}, {})
        limits.append(next(a for a in argv if a.startswith("--property=RuntimeMaxSec=")))
    # The action's limit and slack as before, plus the grace, two plugin timeouts, the lock
    # wait for the verdict (40 s with its journal), and each report's timeout (5 s by default).
    assert limits == [
        "--property=RuntimeMaxSec=185s",
        "--property=RuntimeMaxSec=885s",
        "--property=RuntimeMaxSec=910s",
    ]


def test_a_heal_with_a_pipe_in_its_text_does_not_start_the_perfdata() -> None:
    healed = Recheck(True, 0, "up", ["up=1"], 100.0, 1)
    _, text, _ = message("web", healed, "sh -c 'pgrep x | xargs kill'", {"number": 1, "exit_code": 0}, 4.0)
    assert text.count("|") == 1 and text.endswith("| up=1"), text
    failed = Recheck(False, 2, "down", [], 100.0, 1)
    _, text, _ = message("web", failed, "a | b", {"number": 1, "exit_code": 0}, None)
    assert "|" not in text, text


def test_a_re_check_that_ended_unknown_is_reported_unknown_not_critical() -> None:
    seen = Recheck(False, 3, "plugin timed out", [], 100.0, 5)
    state, text, _ = message("web", seen, "start-web", {"number": 1, "exit_code": 0}, None)
    assert state == 3 and text.startswith("WEB UNKNOWN - self-healing did not help: start-web (attempt 1); ")
