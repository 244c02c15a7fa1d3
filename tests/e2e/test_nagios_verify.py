"""verify and report_to under a real Nagios Core 4: the recovery shows at once, a failed heal pages at once.

The service's ``retry_interval`` is 30 s (``interval_length=1``): without
the report, Nagios would learn of the recovery, or of the failed heal, at
the next active check, 30 s after the self-healing WARNING. With
``--verify`` and ``--nagios-cmd $HOSTNAME$/$SERVICEDESC$``, the heal's
runner writes the re-check's result to Nagios's command file (its FIFO) as
soon as it has one. The two bounds are the issue's: OK within the heal
time plus 3 s, HARD CRITICAL within the heal time plus grace plus 3 s.
"""

from __future__ import annotations

import calendar
import shlex
import time
from pathlib import Path

import pytest
from conftest import journal_events

from e2e.daemons import Deployment, Nagios, give_to_nagios, service
from e2e.toy import ToyService

GRACE = 10.0
#: The pager: a contact whose notifications append to a file (besides Nagios's own log).
PAGER = """
define command {{
    command_name    notify-by-file
    command_line    /bin/sh -c 'echo "$NOTIFICATIONTYPE$ $SERVICESTATE$ $SERVICESTATETYPE$" >> {path}'
}}
define contact {{
    contact_name                    pager
    alias                           pager
    host_notification_period        24x7
    service_notification_period     24x7
    host_notification_options       n
    service_notification_options    w,u,c,r
    host_notification_commands      notify-by-file
    service_notification_commands   notify-by-file
}}
"""


@pytest.fixture
def toy(workdir: Path, deployment: Deployment) -> ToyService:
    return ToyService(workdir, deployment.python)


def verified_service(deployment: Deployment, nagios_root: Path, state: Path, heal: Path, port: int) -> str:
    line = (
        f"{deployment.selfheal} wrap --name web --heal {shlex.quote(str(heal))} --state-dir {state} "
        f"--cooldown 5m --grace {GRACE:g}s --action-timeout 20s --verify "
        f"--nagios-cmd {nagios_root / 'rw' / 'nagios.cmd'} --nagios-host $HOSTNAME$ --nagios-service $SERVICEDESC$ "
        f"-- $USER1$/check_http -H 127.0.0.1 -p {port} -t 5"
    )
    return service(
        "web", line, check_interval=2, retry_interval=30, max_check_attempts=2, contacts="oncall,pager"
    )


def start(workdir: Path, nagios_factory, objects: str) -> Nagios:  # type: ignore[no-untyped-def]
    # nagios_factory names its Nagios's dir nagios0 for the first: the command file is known before it starts.
    return nagios_factory(objects, accept_passive_service_checks=1, check_external_commands=1)  # type: ignore[no-any-return]


def heal_span(state: Path) -> tuple[float, float]:
    """When the heal started (its attempt's journal time) and how long the action ran."""
    (attempt,) = journal_events(state, "attempt")
    (end,) = journal_events(state, "action_end")
    return iso(str(attempt["ts"])), float(end["duration"])  # type: ignore[arg-type]


def iso(text: str) -> float:
    whole, _, fraction = text.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")


def first_ok(nagios: Nagios) -> None:
    nagios.wait(
        lambda: (
            nagios.service("web").get("has_been_checked") == "1"
            and nagios.service("web")["current_state"] == "0"
        ),
        30,
        "the first OK",
    )


def kill_under_nagios(  # type: ignore[no-untyped-def]
    deployment: Deployment, workdir: Path, toy: ToyService, nagios_factory, heal: Path
) -> tuple[Path, Path, Nagios, float]:
    """The toy service OK under Nagios with ``heal`` verified, then killed: state, pager file, Nagios, when."""
    state, notified = workdir / "state", workdir / "notified"
    notified.touch()
    give_to_nagios(notified)
    toy.start()
    objects = verified_service(deployment, workdir / "nagios0", state, heal, toy.port)
    nagios = start(workdir, nagios_factory, PAGER.format(path=notified) + objects)
    first_ok(nagios)
    return state, notified, nagios, toy.kill()


def test_a_verified_heal_shows_ok_in_nagios_at_once_and_pages_nobody(
    deployment: Deployment, workdir: Path, toy: ToyService, nagios_factory
) -> None:
    state, notified, nagios, killed = kill_under_nagios(
        deployment, workdir, toy, nagios_factory, toy.start_script
    )

    def warned_then_ok() -> float | None:
        warned = [a[0] for a in nagios.alerts("web") if a[0] >= int(killed) and a[1] == "WARNING"]
        status = nagios.service("web")
        if warned and status.get("current_state") == "0" and int(status["last_check"]) >= warned[0]:
            return time.time()
        return None

    seen_ok = nagios.wait(warned_then_ok, 60, "WARNING, then OK in status.dat")
    started, duration = heal_span(state)
    print(f"\nkill -> OK in Nagios: {seen_ok - killed:.1f}s; heal start -> OK: {seen_ok - started:.1f}s")
    # The bound: OK in Nagios within the heal time plus 3 s (not the 30 s retry_interval).
    assert seen_ok - started <= duration + 3.0
    status = nagios.service("web")
    assert "(healed by selfheal: " in status["plugin_output"], status
    assert status["plugin_output"].startswith("WEB OK - HTTP OK"), status
    assert status["check_type"] == "1"  # passive: the runner's report, not the next active check
    (verified,) = journal_events(state, "verified")
    (reported,) = journal_events(state, "reported")
    assert reported["to"] == "nagios" and reported["state"] == 0 and "reason" not in reported
    assert verified["time_to_recover"] >= duration
    assert any("PROCESS_SERVICE_CHECK_RESULT;localhost;web;0;" in line for line in nagios.log())
    alerts = [a for a in nagios.alerts("web") if a[0] >= int(killed)]
    assert [a[1:3] for a in alerts] == [("WARNING", "SOFT"), ("OK", "SOFT")], alerts
    assert nagios.notifications() == []
    assert notified.read_text() == ""


def test_a_failed_heal_pages_hard_critical_at_once(
    deployment: Deployment, workdir: Path, toy: ToyService, nagios_factory
) -> None:
    state, notified, nagios, killed = kill_under_nagios(
        deployment, workdir, toy, nagios_factory, toy.broken_script
    )

    def paged() -> float | None:
        hard = [a for a in nagios.alerts("web") if a[0] >= int(killed) and a[1:3] == ("CRITICAL", "HARD")]
        return time.time() if hard and "PROBLEM CRITICAL HARD" in notified.read_text() else None

    seen = nagios.wait(paged, 90, "a HARD CRITICAL and its notification")
    started, duration = heal_span(state)
    print(f"\nkill -> paged: {seen - killed:.1f}s; heal start -> paged: {seen - started:.1f}s")
    # The bound: the page within the heal time plus grace plus 3 s.
    assert seen - started <= duration + GRACE + 3.0
    (not_recovered,) = journal_events(state, "not_recovered")
    assert not_recovered["checks"] == 1  # a failed action: one re-check, no wait for grace
    alerts = [a for a in nagios.alerts("web") if a[0] >= int(killed)]
    hard = next(a for a in alerts if a[1:3] == ("CRITICAL", "HARD"))
    assert "self-healing did not help: " in hard[3], alerts
    assert any(";CRITICAL;notify-by-log;" in line for line in nagios.notifications())
