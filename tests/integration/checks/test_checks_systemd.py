"""The ``systemd`` check and its restart heal.

systemd is not PID 1 here, so most tests put a fake ``systemctl`` first on
PATH. It answers ``systemctl show -p ...`` as the real one does (only the
asked properties, as ``Key=Value`` lines, in systemd's own order rather
than the order asked, ``LoadState=not-found`` for an unknown unit) and
refuses to restart a unit that hit its start limit until
``reset-failed``. One test runs against the real systemd and is skipped
with the reason when systemd is not running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from checks_support import BIN, check, clean_env, script
from conftest import journal_events, selfheal_argv, wait_for

FAKE = """
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
units_file = os.path.join(here, "units.json")
with open(os.path.join(here, "calls.log"), "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
units = json.load(open(units_file)) if os.path.exists(units_file) else {}
args = [a for a in sys.argv[1:] if a != "--no-pager"]
verb, unit = args[0], args[-1]
# systemd prints Service properties before Unit properties.
ORDER = ["Result", "NRestarts", "Id", "LoadState", "ActiveState", "SubState"]
missing = {"Id": unit, "LoadState": "not-found", "ActiveState": "inactive", "SubState": "dead",
           "Result": "success", "NRestarts": "0"}
props = units.get(unit, missing)
if verb == "show":
    wanted = args[args.index("-p") + 1].split(",")
    for key in ORDER:
        if key in wanted:
            print(f"{key}={props.get(key, '')}")
elif verb == "reset-failed":
    if props.get("Result") != "success":
        props.update(Result="success", ActiveState="inactive", SubState="dead")
elif verb == "restart":
    if unit not in units:
        sys.exit(f"Failed to restart {unit}: Unit {unit} not found.")
    if props.get("Result") == "start-limit-hit":
        sys.exit(f"Job for {unit} failed.\\nSee \\"systemctl status {unit}\\" and \\"journalctl -xeu {unit}\\" for details.")
    props.update(ActiveState="active", SubState="running", Result="success")
else:
    sys.exit(f"fake systemctl: unknown verb {verb}")
json.dump(units, open(units_file, "w"))
"""

UNIT = {"Id": "web.service", "LoadState": "loaded", "Result": "success", "NRestarts": "0"}


class FakeSystemd:
    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir()
        tool = directory / "systemctl"
        tool.write_text(f"#!{sys.executable}\n{FAKE}")
        tool.chmod(0o755)
        self.units: dict[str, dict[str, str]] = {}

    def set(self, unit: str, active: str, sub: str, **extra: str) -> None:
        self.units[unit] = {**UNIT, "Id": unit, "ActiveState": active, "SubState": sub, **extra}
        (self.dir / "units.json").write_text(json.dumps(self.units))

    def state(self, unit: str) -> dict[str, str]:
        return json.loads((self.dir / "units.json").read_text())[unit]  # type: ignore[no-any-return]

    @property
    def calls(self) -> list[str]:
        log = self.dir / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    @property
    def env(self) -> dict[str, str]:
        return clean_env(PATH=f"{self.dir}:{os.environ.get('PATH', '/usr/bin:/bin')}")


@pytest.fixture
def fake(tmp_path: Path) -> FakeSystemd:
    return FakeSystemd(tmp_path / "fakebin")


def test_fake_systemctl_answers_like_the_real_one(fake: FakeSystemd) -> None:
    fake.set("web.service", "active", "running")
    done = subprocess.run(
        ["systemctl", "show", "-p", "SubState,ActiveState", "web.service"],
        env=fake.env,
        capture_output=True,
        text=True,
    )
    assert done.stdout == "ActiveState=active\nSubState=running\n"


@pytest.mark.parametrize(
    ("active", "sub", "extra", "code", "text"),
    [
        ("active", "running", {}, 0, "web.service is active (running)"),
        ("activating", "auto-restart", {}, 1, "web.service is activating (auto-restart)"),
        ("reloading", "reload", {}, 1, "web.service is reloading (reload)"),
        ("deactivating", "stop-sigterm", {}, 1, "web.service is deactivating (stop-sigterm)"),
        ("inactive", "dead", {}, 2, "web.service is inactive (dead)"),
        ("failed", "failed", {"Result": "exit-code"}, 2, "web.service is failed (failed), result exit-code"),
        (
            "failed",
            "failed",
            {"Result": "start-limit-hit"},
            2,
            "web.service is failed (failed), result start-limit-hit: start limit hit, "
            "a restart needs 'systemctl reset-failed' first",
        ),
    ],
)
def test_states(
    fake: FakeSystemd, active: str, sub: str, extra: dict[str, str], code: int, text: str
) -> None:
    fake.set("web.service", active, sub, **extra)
    run = check("systemd", "-u", "web.service", env=fake.env)
    assert run.code == code, run.out
    assert run.line.startswith(f"SYSTEMD {('OK', 'WARNING', 'CRITICAL')[code]} - {text}")


def test_expected_states_for_a_oneshot_unit(fake: FakeSystemd) -> None:
    fake.set("backup.service", "inactive", "dead")
    assert check("systemd", "-u", "backup.service", "-s", "active,inactive", env=fake.env).code == 0
    assert check("systemd", "-u", "backup.service", "-s", "activ", env=fake.env).out == (
        "SYSTEMD UNKNOWN - bad --expect: 'activ' is not one of active, reloading, activating, deactivating, inactive, failed\n"
    )


def test_unknown_unit_is_unknown(fake: FakeSystemd) -> None:
    run = check("systemd", "-u", "nope.service", env=fake.env)
    assert (run.code, run.out) == (3, "SYSTEMD UNKNOWN - unit nope.service not found\n")


@pytest.mark.parametrize(("restarts", "code"), [("1", 0), ("2", 0), ("3", 1), ("5", 2)])
def test_restart_count_thresholds(fake: FakeSystemd, restarts: str, code: int) -> None:
    fake.set("web.service", "active", "running", NRestarts=restarts)
    run = check("systemd", "-u", "web.service", "-w", "2", "-c", "4", env=fake.env)
    assert run.code == code, run.out
    assert run.perfdata["restarts"] == f"{restarts};2;4;0"


def test_no_systemctl_or_no_systemd_is_unknown(fake: FakeSystemd, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    run = check("systemd", "-u", "web.service", env=clean_env(PATH=str(empty)))
    assert (run.code, run.out) == (3, "SYSTEMD UNKNOWN - systemctl not found: is this a systemd host?\n")
    if not os.path.isdir("/run/systemd/system"):
        # The real systemctl, without systemd running: its own complaint, one line.
        real = check("systemd", "-u", "web.service")
        assert real.code == 3 and real.out.startswith("SYSTEMD UNKNOWN - systemctl show web.service failed: ")
        assert real.out.count("\n") == 1


# -- the restart heal ------------------------------------------------------------------


def test_restart_resets_the_start_limit_first(fake: FakeSystemd) -> None:
    fake.set("web.service", "failed", "failed", Result="start-limit-hit")
    # A plain restart is refused, as systemd refuses it.
    assert (
        subprocess.run(["systemctl", "restart", "web.service"], env=fake.env, capture_output=True).returncode
        == 1
    )
    run = script("systemd", "--restart", "-u", "web.service", env=fake.env)
    assert run.code == 0, run.out
    assert fake.calls[-3:] == [
        "show --no-pager -p Id,LoadState,ActiveState,SubState,Result,NRestarts web.service",
        "reset-failed web.service",
        "restart web.service",
    ]
    assert fake.state("web.service")["ActiveState"] == "active"


def test_restart_without_start_limit_just_restarts(fake: FakeSystemd) -> None:
    fake.set("web.service", "failed", "failed", Result="exit-code")
    run = script("systemd", "--restart", "-u", "web.service", env=fake.env)
    assert run.code == 0, run.out
    assert "reset-failed web.service" not in fake.calls
    assert fake.calls[-1] == "restart web.service"


def test_restart_dry_run_says_what_it_would_run(fake: FakeSystemd) -> None:
    fake.set("web.service", "failed", "failed", Result="start-limit-hit")
    run = script("systemd", "--restart", "-u", "web.service", "--dry-run", env=fake.env)
    assert run == (
        0,
        "would run systemctl reset-failed web.service (web.service hit its start limit)\n"
        "would run systemctl restart web.service\n",
    )
    assert [c.split()[0] for c in fake.calls] == ["show"]
    assert fake.state("web.service")["Result"] == "start-limit-hit"


def test_restart_failure_is_the_heals_exit_code(fake: FakeSystemd) -> None:
    run = script("systemd", "--restart", "-u", "ghost.service", env=fake.env)
    assert run.code == 1


def test_selfheal_run_restarts_a_failed_unit(fake: FakeSystemd, tmp_path: Path) -> None:
    fake.set("web.service", "failed", "failed", Result="start-limit-hit")
    state = tmp_path / "state"
    config = tmp_path / "selfheal.yaml"
    heal = [str(BIN / "check_selfheal_systemd"), "--restart", "-u", "web.service"]
    checks = {"web": {"check": "systemd", "args": {"unit": "web.service"}, "heal": heal}}
    config.write_text(json.dumps({"state_dir": str(state), "checks": checks}, indent=2))

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            selfheal_argv("run", "web", "-c", config), env=fake.env, capture_output=True, text=True
        )

    first = run()
    assert first.returncode == 1, first.stdout
    assert first.stdout.startswith("WEB WARNING - web.service is failed (failed), result start-limit-hit")
    assert "; self-healing: started " in first.stdout
    wait_for(lambda: journal_events(state, "action_end", in_flight=True), timeout=15, what="the restart")
    assert journal_events(state, "action_end")[0]["exit_code"] == 0
    second = run()
    assert second.returncode == 0, second.stdout
    assert second.stdout.startswith("WEB OK - web.service is active (running)")


@pytest.mark.skipif(
    not os.path.isdir("/run/systemd/system"), reason="systemd is not running (not PID 1) on this host"
)
def test_real_systemd() -> None:
    # Every systemd host has these units.
    run = check("systemd", "-u", "basic.target")
    assert run.code == 0, run.out
    assert run.line.startswith("SYSTEMD OK - basic.target is active (active)")
    assert check("systemd", "-u", "no-such-unit-selfheal.service").code == 3
