"""selfheal under a real Nagios Core 4: soft and hard states, notifications.

Each test starts its own ``nagios4`` (``interval_length=1``: the
service's ``check_interval 2`` is two seconds), which runs ``selfheal
wrap`` as the ``nagios`` user around the real ``check_http`` against a toy
HTTP service. The outcome is read from Nagios's own log and status.dat.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import time
from pathlib import Path

import pytest
from conftest import journal_events, process_gone, wait_for

from e2e.daemons import PLUGIN_DIR, Deployment, Nagios, run_as_ids, service
from e2e.toy import ToyService


@pytest.fixture
def toy(workdir: Path, deployment: Deployment) -> ToyService:
    return ToyService(workdir, deployment.python)


def wrap_line(deployment: Deployment, state: Path, heal: Path, port: int, *policy: str) -> str:
    """A Nagios command_line: selfheal wrap around check_http, downtime passed in."""
    return (
        f"{deployment.selfheal} wrap --name web --heal {shlex.quote(str(heal))} --state-dir {state} "
        f"{' '.join(policy)} --downtime $SERVICEDOWNTIME$ "
        f"-- $USER1$/check_http -H 127.0.0.1 -p {port} -t 5"
    )


def first_ok(nagios: Nagios, description: str) -> dict[str, str]:
    def checked_ok() -> dict[str, str] | None:
        status = nagios.service(description)
        ok = status.get("has_been_checked") == "1" and status.get("current_state") == "0"
        return status if ok else None

    return nagios.wait(checked_ok, 30, f"the first OK of {description}")  # type: ignore[no-any-return]


def test_killed_service_is_healed_without_paging_anyone(
    deployment: Deployment, workdir: Path, toy: ToyService, nagios_factory
) -> None:
    state = workdir / "state"
    toy.start()
    policy = ("--cooldown", "30s", "--grace", "3s", "--action-timeout", "20s")
    nagios = nagios_factory(service("web", wrap_line(deployment, state, toy.start_script, toy.port, *policy)))
    first_ok(nagios, "web")

    killed = toy.kill()
    watch_started = time.monotonic()

    def recovered() -> list[tuple[int, str, str, str]] | None:
        alerts = [a for a in nagios.alerts("web") if a[0] >= int(killed)]
        states = [a[1] for a in alerts]
        if "WARNING" in states and "OK" in states[states.index("WARNING") :]:
            return alerts
        return None

    alerts = nagios.wait(recovered, 60, "WARNING then OK after the kill")
    seen_ok = time.monotonic() - watch_started
    ok_at = next(a[0] for a in alerts if a[1] == "OK")
    print(
        f"\nscenario 1: kill -> OK: the test saw Nagios log OK {seen_ok:.1f}s after the kill "
        f"(the log's own timestamp, whole seconds: {ok_at - killed:.1f}s)"
    )

    print("scenario 1, Nagios's alerts after the kill:", *(f"  {a}" for a in alerts), sep="\n")

    # The first alert after the kill is the self-healing WARNING, soft.
    _, first_state, kind, text = alerts[0]
    assert (first_state, kind) == ("WARNING", "SOFT"), alerts
    assert text.startswith("WEB WARNING - "), text
    assert f"self-healing: started {toy.start_script} (attempt 1/3)" in text, text
    # Never a hard CRITICAL, and nobody was notified.
    assert not [a for a in alerts if a[1] == "CRITICAL" and a[2] == "HARD"], alerts
    assert all(a[2] == "SOFT" for a in alerts), alerts
    assert nagios.notifications() == []
    # status.dat is written once a second: it catches up with the log.
    status = nagios.wait(
        lambda: nagios.service("web").get("current_state") == "0" and nagios.service("web"),
        5,
        "status.dat to show OK",
    )
    assert status["last_hard_state"] == "0"
    assert status["plugin_output"].startswith("WEB OK - HTTP OK: "), status
    assert status["current_notification_number"] == "0"

    # The heal ran as the nagios user, from the state dir selfheal created.
    assert state.stat().st_uid == run_as_ids()[0]
    assert state.stat().st_mode & 0o777 == 0o700
    (attempt,) = journal_events(state, "attempt")
    assert attempt["argv"] == [str(toy.start_script)]
    (end,) = journal_events(state, "action_end")
    assert end["exit_code"] == 0
    assert journal_events(state, "recovered")
    assert toy.pid() != 0 and os.path.exists(f"/proc/{toy.pid()}")
    record = json.loads((state / "web.json").read_text())
    assert record["attempts"][-1]["exit_code"] == 0


def failed_heal_incident(
    deployment: Deployment, workdir: Path, toy: ToyService, nagios_factory, retry_state: str
) -> tuple[Nagios, list[tuple[int, str, str, str]], Path]:
    """A heal that cannot help (the start script exits 1), until "gave up"."""
    state = workdir / "state"
    toy.start()
    policy = ("--cooldown", "3s", "--grace", "1s", "--max-attempts", "2", "--action-timeout", "10s")
    line = wrap_line(deployment, state, toy.broken_script, toy.port, *policy, "--retry-state", retry_state)
    nagios = nagios_factory(service("web", line))
    first_ok(nagios, "web")
    killed = toy.kill()

    def gave_up() -> list[tuple[int, str, str, str]] | None:
        alerts = [a for a in nagios.alerts("web") if a[0] >= int(killed)]
        # CRITICAL to CRITICAL is no state change and logs no alert: status.dat says it.
        done = "self-healing gave up" in nagios.service("web").get("plugin_output", "")
        return alerts if done or any("self-healing gave up" in a[3] for a in alerts) else None

    alerts = nagios.wait(gave_up, 60, "'gave up' in status.dat")
    print(
        f"\nretry_state {retry_state}, Nagios's alerts after the kill:", *(f"  {a}" for a in alerts), sep="\n"
    )
    return nagios, alerts, state


def problem_pages(nagios: Nagios) -> list[str]:
    return [line for line in nagios.notifications() if ";RECOVERY;" not in line and ";OK;" not in line]


def test_heal_that_cannot_help_pages_once_then_gives_up(
    deployment: Deployment, workdir: Path, toy: ToyService, nagios_factory
) -> None:
    nagios, alerts, state = failed_heal_incident(deployment, workdir, toy, nagios_factory, "critical")
    did_not_help = [a for a in alerts if "self-healing did not help" in a[3]]
    assert did_not_help, alerts
    # The heal exited 1: "did not help" at once, with its reason, no grace.
    assert "exited 1 (start-web: port already in use)" in did_not_help[0][3], did_not_help
    assert any(a[1:3] == ("CRITICAL", "HARD") for a in did_not_help), alerts
    output = nagios.service("web")["plugin_output"]
    assert "self-healing gave up: 2 attempts since" in output and "run 'selfheal reset web'" in output, output
    # Attempt 1 a soft WARNING; attempt 2, a retry after "did not help", stays
    # CRITICAL: no state change, so no alert after the hard CRITICAL.
    started = [a for a in alerts if "self-healing: started" in a[3]]
    assert [(a[1], "(attempt 1/2)" in a[3]) for a in started] == [("WARNING", True)], alerts
    assert alerts[-1][1:3] == ("CRITICAL", "HARD") and alerts[-1] in did_not_help, alerts
    # Give it more checks: no third attempt once it has given up.
    time.sleep(3)
    status = nagios.service("web")
    assert status["current_state"] == "2" and "gave up" in status["plugin_output"], status
    attempts = journal_events(state, "attempt")
    assert [e["attempt"] for e in attempts] == [1, 2]
    ends = journal_events(state, "action_end")
    assert [(e["attempt"], e["exit_code"]) for e in ends] == [(1, 1), (2, 1)]
    assert all(e["reason"] == "start-web: port already in use" for e in ends), ends
    assert len(journal_events(state, "gave_up")) == 1
    # One page for the incident; then the service is fixed: one recovery.
    pages = problem_pages(nagios)
    print("retry_state critical, notifications:", *nagios.notifications(), sep="\n  ")
    assert len(pages) == 1 and ";CRITICAL;" in pages[0], nagios.notifications()
    toy.start()
    nagios.wait(lambda: any(";RECOVERY;" in n or ";OK;" in n for n in nagios.notifications()), 30, "recovery")
    assert len(nagios.notifications()) == 2, nagios.notifications()


def test_retry_state_warning_pages_three_times(
    deployment: Deployment, workdir: Path, toy: ToyService, nagios_factory
) -> None:
    """The behaviour before retry_state: CRITICAL, WARNING (attempt 2), CRITICAL."""
    nagios, alerts, _ = failed_heal_incident(deployment, workdir, toy, nagios_factory, "warning")
    retried = [a for a in alerts if "self-healing: retrying" in a[3]]
    assert [a[1:3] for a in retried] == [("WARNING", "HARD")], alerts
    nagios.wait(lambda: len(problem_pages(nagios)) >= 3, 10, "the third page")
    print("retry_state warning, notifications:", *nagios.notifications(), sep="\n  ")
    assert [p.split(";")[3] for p in problem_pages(nagios)] == ["CRITICAL", "WARNING", "CRITICAL"]


def test_downtime_passed_in_by_nagios_pauses_healing(
    deployment: Deployment, workdir: Path, toy: ToyService, nagios_factory
) -> None:
    state = workdir / "state"
    toy.start()
    nagios = nagios_factory(service("web", wrap_line(deployment, state, toy.start_script, toy.port)))
    first_ok(nagios, "web")
    now = int(time.time())
    nagios.command(f"SCHEDULE_SVC_DOWNTIME;localhost;web;{now};{now + 600};1;0;0;tester;maintenance")
    nagios.wait(lambda: nagios.service("web").get("scheduled_downtime_depth") == "1", 10, "the downtime")
    killed = toy.kill()

    def critical() -> dict[str, str] | None:
        status = nagios.service("web")
        return status if status.get("current_state") == "2" and int(status["last_check"]) >= killed else None

    status = nagios.wait(critical, 30, "CRITICAL during the downtime")
    assert "self-healing paused" in status["plugin_output"], status
    assert journal_events(state, "attempt") == []
    assert nagios.notifications() == []


def test_nagios_timeout_kill_leaves_no_stale_lock_or_phantom_attempt(
    deployment: Deployment, workdir: Path, toy: ToyService, nagios_factory
) -> None:
    """Nagios kills the check's process group while a heal is under way."""
    state = workdir / "state"
    hang = workdir / "hang"  # present: the wrapped plugin hangs
    hung = workdir / "hung-pids"  # each hanging plugin and its child
    plugin = workdir / "check_web"
    plugin.write_text(
        f"#!/bin/sh\nif [ -e '{hang}' ]; then sleep 120 & echo $$ $! >> '{hung}'; wait; fi\n"
        f"exec {PLUGIN_DIR}/check_http -H 127.0.0.1 -p {toy.port} -t 5\n"
    )
    plugin.chmod(0o755)
    slow_heal = workdir / "slow-start-web"
    slow_heal.write_text(f"#!/bin/sh\nsleep 6\nexec '{toy.start_script}'\n")
    slow_heal.chmod(0o755)
    toy.start()
    line = (
        f"{deployment.selfheal} wrap --name web --heal {slow_heal} --state-dir {state} "
        f"--cooldown 5m --grace 2s --action-timeout 30s -t 30 -- {plugin}"
    )
    nagios = nagios_factory(
        service("web", line, max_check_attempts=10, check_interval=1), service_check_timeout=2
    )
    first_ok(nagios, "web")
    toy.kill()
    nagios.wait(lambda: journal_events(state, "attempt", in_flight=True), 20, "the heal to start")
    (attempt,) = journal_events(state, "attempt")
    # The plugin hangs; Nagios's service_check_timeout kills the check's
    # process group, selfheal with it, while the heal is running.
    hang.touch()
    nagios.wait(
        lambda: (
            any("timed out" in a[3] for a in nagios.alerts("web"))
            or "timed out" in nagios.service("web").get("plugin_output", "")
        ),
        20,
        "Nagios's timeout kill",
    )
    hang.unlink()
    timed_out_at = time.time()
    # The hung plugins died with selfheal, in the group Nagios killed.
    for pid in (int(p) for p in hung.read_text().split()):
        wait_for(lambda pid=pid: process_gone(pid), 5, what=f"the hung plugin's process {pid} to be gone")

    def ok_again() -> dict[str, str] | None:
        status = nagios.service("web")
        ok = status.get("current_state") == "0" and int(status.get("last_check", 0)) > timed_out_at
        return status if ok else None

    nagios.wait(ok_again, 40, "OK after the heal")
    # The heal survived the kill and finished; it was the only attempt.
    assert [e["attempt"] for e in journal_events(state, "attempt")] == [1]
    (end,) = journal_events(state, "action_end")
    assert end["exit_code"] == 0 and end["pid"] == attempt["pid"]
    assert journal_events(state, "state_error") == []
    assert journal_events(state, "action_lost") == []
    # Nobody holds the lock, and the record has no attempt left open.
    fd = os.open(state / "web.lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    record = json.loads((state / "web.json").read_text())
    assert all(a.get("ended") for a in record["attempts"]), record
    outputs = [a[3] for a in nagios.alerts("web")]
    assert not any("in progress" in text and "stuck" in text for text in outputs), outputs
    assert not any("self-healing disabled" in text for text in outputs), outputs
