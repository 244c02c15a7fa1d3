"""selfheal against a real systemd: PID 1 of private namespaces (``e2e.sysns``).

The ``systemd`` check reads what the real systemd reports (states, start
limit, ``NRestarts``), its ``--restart`` heal clears a start limit, and a
``{systemd: UNIT}`` heal brings back a killed unit. Everything runs inside
the namespace: the check, selfheal, the detached runner and the heal's
``systemctl``. The work dir is the same path inside and out, so the state
dir and the journal are read from here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from conftest import journal_events, process_gone, wait_for

from e2e.conftest import need, need_executable
from e2e.daemons import PLUGIN_DIR
from e2e.sysns import PATH as SYSNS_PATH
from e2e.sysns import PREFIX, SystemdNamespace, Unavailable, sweep_stale

Boot = Callable[[Mapping[str, str]], SystemdNamespace]

#: selfheal and the built-in checks, as installed in this test's virtualenv.
BIN = Path(sys.executable).parent
CHECK_SYSTEMD = BIN / "check_selfheal_systemd"
CHECK_TCP = f"{PLUGIN_DIR}/check_tcp"
#: The namespace has a network of its own: any port is free there.
PORT = 8080

# Stopped with the namespace's shutdown.target, never pulled in by anything else.
HEAD = "[Unit]\nDefaultDependencies=no\nConflicts=shutdown.target\nBefore=shutdown.target\n"


def unit(service: str, **unit_keys: object) -> str:
    extra = "".join(f"{k}={v}\n" for k, v in unit_keys.items())
    return f"{HEAD}{extra}[Service]\n{service}"


#: Up until killed; at most two starts a minute, as a crash-looping daemon's unit would allow.
SLEEPER = unit("ExecStart=/bin/sleep infinity\n", StartLimitIntervalSec=60, StartLimitBurst=2)
#: Fails at once, no Restart=.
FAILS = unit("ExecStart=/bin/sh -c 'exit 3'\n")
#: Crashes twice, then stays up: systemd restarted it twice by itself.
FLAKY = unit(
    "ExecStart=/bin/sh -c 'n=$(cat /run/flaky 2>/dev/null || echo 0); echo $((n+1)) >/run/flaky;"
    " [ $n -ge 2 ] && exec sleep infinity; exit 3'\n"
    "Restart=on-failure\nRestartSec=50ms\n",
    StartLimitBurst=10,
)
#: A web server on the namespace's own loopback (this virtualenv's Python is visible inside).
WEB = unit(
    f"WorkingDirectory=/run\nExecStart={sys.executable} -m http.server {PORT} --bind 127.0.0.1\n",
    StartLimitIntervalSec=60,
    StartLimitBurst=2,
)


@pytest.fixture(autouse=True)
def _visible_inside() -> None:
    # Everything runs from this virtualenv inside the namespace, where /run
    # and /dev are private (a checkout under /tmp is kept visible: sysns).
    hidden = [p for p in ("/run", "/dev") if Path(sys.prefix).resolve().is_relative_to(p)]
    need(not hidden, f"the virtualenv {sys.prefix} is under {hidden}, which the namespace hides")


def check(ns: SystemdNamespace, *args: str) -> subprocess.CompletedProcess[str]:
    """``check_selfheal_systemd`` inside the namespace, as a plugin runs."""
    done = ns.exec([CHECK_SYSTEMD, *args])
    assert "Traceback" not in done.stdout + done.stderr, done
    return done


def hit_start_limit(ns: SystemdNamespace, name: str) -> None:
    """Restart ``name`` until systemd refuses: its state after a crash loop."""
    assert ns.systemctl("start", name).returncode == 0
    refused = ns.systemctl("restart", name)
    for _ in range(3):
        if refused.returncode != 0:
            break
        refused = ns.systemctl("restart", name)
    assert refused.returncode == 1, refused
    assert "start of the service was attempted too often" in refused.stderr, refused.stderr
    assert ns.show(name, "ActiveState", "Result") == {"ActiveState": "failed", "Result": "start-limit-hit"}


# -- the namespace itself ----------------------------------------------------------------


def test_the_namespace_is_private_and_the_host_untouched(systemd_namespace: Boot) -> None:
    ns = systemd_namespace({"sleeper.service": SLEEPER})
    assert ns.exec(["systemctl", "is-system-running"]).stdout == "running\n"
    assert ns.exec(["cat", "/proc/1/comm"]).stdout == "systemd\n"
    # Nothing of the host's units runs in there: only what the test started.
    assert ns.systemctl("start", "sleeper.service").returncode == 0
    services = ns.systemctl("list-units", "--type=service", "--state=running", "--no-legend", "--plain")
    assert [line.split()[0] for line in services.stdout.splitlines()] == ["sleeper.service"]
    # / is read-only inside only; the work dir is writable, and the same path outside.
    assert ns.exec(["touch", "/var/lib/selfheal-sysns-probe"]).returncode != 0
    assert not Path("/var/lib/selfheal-sysns-probe").exists()
    assert ns.exec(["touch", str(ns.workdir / "probe")]).returncode == 0
    assert (ns.workdir / "probe").exists()
    # A network of its own: the loopback is up, and a port here is not the host's.
    assert ns.exec(["readlink", "/proc/self/ns/net"]).stdout.strip() != os.readlink("/proc/self/ns/net")


def test_the_namespace_dies_with_its_test_process() -> None:
    """A test process killed mid-test leaves no systemd behind (the pty hangup kills it)."""
    try:
        SystemdNamespace.preflight()
    except Unavailable as exc:
        need(False, str(exc))
    owner_code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from sysns import SystemdNamespace;"
        "ns = SystemdNamespace().start(); print(ns.pid, ns.cgroup, ns.workdir, flush=True); time.sleep(120)"
    )
    with subprocess.Popen(
        [sys.executable, "-c", owner_code, str(Path(__file__).parent)], stdout=subprocess.PIPE, text=True
    ) as owner:
        try:
            assert owner.stdout is not None
            booted = owner.stdout.readline().split()
            assert len(booted) == 3, "the test process could not boot its namespace"
            pid, cgroup, workdir = int(booted[0]), Path(booted[1]), Path(booted[2])
            assert not process_gone(pid)
        finally:
            owner.kill()
    wait_for(lambda: process_gone(pid), timeout=10, what="the orphaned namespace's systemd to die")

    # Nobody removed its cgroup and work dir: the next namespace's start does.
    assert cgroup.name.startswith(PREFIX) and workdir.exists()

    def swept() -> bool:
        sweep_stale(str(workdir.parent), cgroup.parent)
        return not cgroup.exists() and not workdir.exists()

    wait_for(swept, timeout=10, what="the dead namespace's cgroup and work dir to be removed")


def test_the_namespace_ends_at_its_max_life() -> None:
    """A hung test process cannot keep a namespace forever: timeout(1) kills it."""
    try:
        SystemdNamespace.preflight()
    except Unavailable as exc:
        need(False, str(exc))
    ns = SystemdNamespace(max_life=3).start()
    try:
        assert ns.pid is not None and not process_gone(ns.pid)
        pid = ns.pid
        wait_for(lambda: process_gone(pid), timeout=10, what="the namespace to end after 3s")
    finally:
        # Nothing is left to kill; its cgroup and work dir still go.
        ns.stop()
    assert ns.cgroup is None and not ns.workdir.exists()


# -- check_selfheal_systemd reads the real systemd ------------------------------------


@pytest.mark.parametrize(
    ("name", "substate", "code", "line"),
    [
        (
            "sleeper.service",
            "running",
            0,
            "SYSTEMD OK - sleeper.service is active (running), 0 automatic restarts | restarts=0;;;0",
        ),
        (
            "fails.service",
            "failed",
            2,
            "SYSTEMD CRITICAL - fails.service is failed (failed), result exit-code | restarts=0;;;0",
        ),
        (
            "sleeper.service",
            None,
            2,
            "SYSTEMD CRITICAL - sleeper.service is inactive (dead) | restarts=0;;;0",
        ),
        ("nothere.service", None, 3, "SYSTEMD UNKNOWN - unit nothere.service not found"),
    ],
    ids=["active", "failed", "inactive", "unknown"],
)
def test_check_reads_the_state(
    systemd_namespace: Boot, name: str, substate: str | None, code: int, line: str
) -> None:
    ns = systemd_namespace({"sleeper.service": SLEEPER, "fails.service": FAILS})
    if substate is not None:
        ns.systemctl("start", name)
        ns.wait_unit(name, SubState=substate)
    done = check(ns, "-u", name)
    assert (done.returncode, done.stdout) == (code, line + "\n")


def test_check_reads_start_limit_hit(systemd_namespace: Boot) -> None:
    ns = systemd_namespace({"sleeper.service": SLEEPER})
    hit_start_limit(ns, "sleeper.service")
    done = check(ns, "-u", "sleeper.service")
    assert (done.returncode, done.stdout) == (
        2,
        "SYSTEMD CRITICAL - sleeper.service is failed (failed), result start-limit-hit: start limit hit,"
        " a restart needs 'systemctl reset-failed' first | restarts=0;;;0\n",
    )


def test_check_reads_nrestarts(systemd_namespace: Boot) -> None:
    ns = systemd_namespace({"flaky.service": FLAKY})
    ns.systemctl("start", "flaky.service")
    ns.wait_unit("flaky.service", ActiveState="active", NRestarts="2")
    warned = check(ns, "-u", "flaky.service", "-w", "1", "-c", "3")
    assert (warned.returncode, warned.stdout) == (
        1,
        "SYSTEMD WARNING - 2 automatic restarts (outside range 0:1) | restarts=2;1;3;0\n",
    )
    fine = check(ns, "-u", "flaky.service", "-w", "3", "-c", "5")
    assert (fine.returncode, fine.stdout) == (
        0,
        "SYSTEMD OK - flaky.service is active (running), 2 automatic restarts | restarts=2;3;5;0\n",
    )


def test_restart_heal_resets_the_start_limit(systemd_namespace: Boot) -> None:
    ns = systemd_namespace({"sleeper.service": SLEEPER})
    hit_start_limit(ns, "sleeper.service")
    # What the {systemd: UNIT} heal runs today is refused here, as on a real host.
    assert ns.systemctl("restart", "sleeper.service").returncode == 1
    healed = ns.exec([CHECK_SYSTEMD, "--restart", "-u", "sleeper.service"])
    assert (healed.returncode, healed.stdout) == (
        0,
        "sleeper.service hit its start limit: systemctl reset-failed sleeper.service\n"
        "systemctl restart sleeper.service\n",
    )
    assert ns.show("sleeper.service", "ActiveState", "SubState", "Result") == {
        "ActiveState": "active",
        "SubState": "running",
        "Result": "success",
    }
    assert check(ns, "-u", "sleeper.service").returncode == 0


# -- selfheal heals a unit of the real systemd -------------------------------------------


def write_config(workdir: Path, **checks: dict[str, object]) -> tuple[Path, Path]:
    """A selfheal config with its state dir, both in the work dir (/tmp is private inside)."""
    state = workdir / "state"
    config = workdir / "selfheal.yaml"
    config.write_text(json.dumps({"state_dir": str(state), "checks": checks}, indent=2))
    return config, state


def web_check() -> dict[str, object]:
    return {"plugin": [CHECK_TCP, "-H", "127.0.0.1", "-p", str(PORT)], "heal": {"systemd": "web.service"}}


def listening(ns: SystemdNamespace) -> bool:
    return ns.exec([CHECK_TCP, "-H", "127.0.0.1", "-p", str(PORT)]).returncode == 0


def test_systemd_heal_restarts_a_killed_unit(systemd_namespace: Boot) -> None:
    need_executable(CHECK_TCP, "monitoring-plugins-basic")
    ns = systemd_namespace({"web.service": WEB})
    config, state = write_config(ns.workdir, web=web_check())
    run = [BIN / "selfheal", "run", "web", "-c", config]
    doctor = ns.exec([BIN / "selfheal", "doctor", "-c", config]).stdout
    assert "PASS  runner: heals start as transient systemd units (/usr/bin/systemd-run)" in doctor, doctor
    assert "PASS  web: systemd: systemd is PID 1: systemctl can reach it" in doctor, doctor

    ns.systemctl("start", "web.service")
    # Polled with the plugin alone: selfheal would heal the server that is still starting.
    wait_for(lambda: listening(ns), timeout=10, what="the web server")
    healthy = ns.exec(run)
    assert (healthy.returncode, healthy.stdout[:15]) == (0, "WEB OK - TCP OK"), healthy
    ns.systemctl("kill", "--signal=KILL", "web.service")
    ns.wait_unit("web.service", ActiveState="failed", Result="signal")

    critical = ns.exec(run)
    assert critical.returncode == 1, critical
    assert critical.stdout.startswith("WEB WARNING - "), critical.stdout
    assert "; self-healing: started systemctl restart web.service (attempt 1/3)" in critical.stdout
    (attempt,) = journal_events(state, "attempt")
    assert attempt["argv"] == ["systemctl", "restart", "web.service"]
    # systemd is PID 1 here: the runner is a transient unit of its own.
    assert attempt["runner"] == "systemd-run" and "fallback_reason" not in attempt, attempt
    assert str(attempt["unit"]).startswith("selfheal-heal-web-"), attempt

    # The runner is detached: it finishes after selfheal returned.
    (end,) = wait_for(
        lambda: journal_events(state, "action_end", in_flight=True), timeout=15, what="the heal's action_end"
    )
    assert (end["exit_code"], end["pid"], end["unit"]) == (0, attempt["pid"], attempt["unit"]), end
    # Failed by a signal, not at its start limit: a plain restart.
    assert "reset_failed" not in end, end
    assert ns.show("web.service", "ActiveState", "Result") == {"ActiveState": "active", "Result": "success"}

    # Type=simple: the unit is active before the server listens.
    wait_for(lambda: listening(ns), timeout=10, what="the web server to listen again")
    healed = ns.exec(run)
    assert (healed.returncode, healed.stdout[:15]) == (0, "WEB OK - TCP OK"), healed
    (event,) = journal_events(state, "recovered")
    assert event["check"] == "web"


def test_systemd_heal_clears_a_start_limit(systemd_namespace: Boot) -> None:
    need_executable(CHECK_TCP, "monitoring-plugins-basic")
    ns = systemd_namespace({"web.service": WEB})
    config, state = write_config(ns.workdir, web=web_check())
    hit_start_limit(ns, "web.service")
    critical = ns.exec([BIN / "selfheal", "run", "web", "-c", config])
    assert "; self-healing: started systemctl restart web.service (attempt 1/3)" in critical.stdout, critical
    (end,) = wait_for(
        lambda: journal_events(state, "action_end", in_flight=True), timeout=15, what="the heal's action_end"
    )
    # What systemd refused before (issue 12, defect 2) now works, and the journal says how.
    assert end["exit_code"] == 0, end
    assert end["reset_failed"] == {
        "unit": "web.service",
        "argv": ["systemctl", "reset-failed", "web.service"],
        "exit_code": 0,
    }, end
    ns.wait_unit("web.service", ActiveState="active", Result="success")
    history = ns.exec([BIN / "selfheal", "history", "web", "-c", config])
    assert "reset-failed web.service first" in history.stdout, history


# -- defect 1 of issue 12: a heal dies with the unit that ran the check -----------------

#: The agent (NRPE, say) runs the check once, then idles, as a daemon does.
AGENT = unit(
    "ExecStart=/bin/sh -c '{selfheal} run web -c {config}; exec sleep infinity'\nKillMode=control-group\n"
)
#: A unit that takes its time to start: the heal's systemctl waits for it.
SLOW_WEB = unit(
    f"ExecStartPre=/bin/sleep 2\nWorkingDirectory=/run\n"
    f"ExecStart={sys.executable} -m http.server {PORT} --bind 127.0.0.1\n"
)


class HealKilled(AssertionError):
    """The heal's runner died before journaling its action_end: defect 1 itself."""


@pytest.mark.parametrize("verb", ["stop", "restart"])
def test_heal_survives_the_agent_unit(systemd_namespace: Boot, verb: str) -> None:
    need_executable(CHECK_TCP, "monitoring-plugins-basic")
    ns = systemd_namespace({"web.service": SLOW_WEB})
    config, state = write_config(ns.workdir, web=web_check())
    ns.install({"agent.service": AGENT.format(selfheal=BIN / "selfheal", config=config)})
    ns.systemctl("start", "agent.service")
    (attempt,) = wait_for(
        lambda: journal_events(state, "attempt", in_flight=True), timeout=15, what="the agent's heal"
    )
    # The heal's `systemctl restart` now waits for the slow start.
    ns.wait_unit("web.service", ActiveState="activating")
    assert ns.alive(attempt["pid"]), "the runner is not running before the agent unit is stopped"
    # The runner is its unit's main process, in its own cgroup, not the agent's.
    runner_unit = str(attempt["unit"])
    assert ns.show(runner_unit, "MainPID", "KillMode") == {
        "MainPID": str(attempt["pid"]),
        "KillMode": "control-group",
    }
    cgroups = ns.exec(["cat", f"/proc/{attempt['pid']}/cgroup"]).stdout.splitlines()
    assert f"0::/system.slice/{runner_unit}" in cgroups, cgroups
    status = ns.exec([BIN / "selfheal", "status", "web", "-c", config, "--json"])
    (row,) = json.loads(status.stdout)["checks"]
    assert row["running"]["unit"] == runner_unit and row["running"]["pid"] == attempt["pid"], row
    assert runner_unit in ns.exec([BIN / "selfheal", "status", "web", "-c", config]).stdout
    assert ns.systemctl(verb, "agent.service").returncode == 0

    def ended() -> list[dict[str, object]]:
        return [e for e in journal_events(state, "action_end", in_flight=True) if e["attempt"] == 1]

    def ended_or_killed() -> list[dict[str, object]]:
        if ended():
            return ended()
        # No runner, no action_end: say so now rather than at the timeout.
        if not ns.alive(attempt["pid"]) and not ended():
            raise HealKilled(f"the heal's runner (pid {attempt['pid']}) died with agent.service ({verb})")
        return []

    (end,) = wait_for(ended_or_killed, timeout=15, what="the heal's action_end")
    assert end["exit_code"] == 0, end
    ns.wait_unit("web.service", ActiveState="active")


# -- the runner's transient unit: its timeout, and the fallback to a new session ---------


def test_action_timeout_kills_the_whole_unit(systemd_namespace: Boot) -> None:
    """A heal that hangs, with a grandchild that left its tree: nothing of it survives the timeout.

    The grandchild calls setsid and its parent exits: no process group and
    no parent link lead to it any more, only the unit's cgroup does.
    """
    ns = systemd_namespace({})
    escaped = ns.workdir / "escaped.pid"
    hang = ns.workdir / "hang.pid"
    # $! and $$ are the shell's: the command line reaches the heal unexpanded by systemd.
    heal = f"(setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! >{escaped}); echo $$ >{hang}; sleep 1000"
    config, state = write_config(
        ns.workdir,
        hang={
            "plugin": ["/bin/sh", "-c", "echo 'HANG CRITICAL - down'; exit 2"],
            "heal": {"command": heal, "shell": True},
            "action_timeout": "3s",
        },
    )
    critical = ns.exec([BIN / "selfheal", "run", "hang", "-c", config])
    assert "self-healing: started" in critical.stdout, critical
    (attempt,) = journal_events(state, "attempt")
    assert attempt["runner"] == "systemd-run", attempt
    wait_for(lambda: escaped.exists() and hang.exists(), timeout=10, what="the heal to fork its grandchild")
    grandchild, shell = int(escaped.read_text()), int(hang.read_text())
    assert ns.alive(grandchild) and ns.alive(shell)
    # Out of the heal's tree and session, still in the runner's unit.
    assert ns.exec(["ps", "-o", "ppid=,sid=", "-p", str(grandchild)]).stdout.split() == [
        "1",
        str(grandchild),
    ]
    (end,) = wait_for(
        lambda: journal_events(state, "action_end", in_flight=True),
        timeout=20,
        what="the timeout's action_end",
    )
    assert (end["timed_out"], end["exit_code"], end["unit"]) == (True, None, attempt["unit"]), end
    assert "timed out after 3s" in str(end["reason"])
    assert not ns.alive(grandchild) and not ns.alive(shell)
    # The runner killed them through its cgroup before journaling; systemd's
    # own kill of what a unit leaves behind comes only after the runner exits.
    (log,) = state.glob("hang.heal-*.log")
    assert f"running as unit {attempt['unit']}\n" in log.read_text(), log.read_text()
    # The runner exited after journaling; --collect leaves no unit behind.
    wait_for(
        lambda: ns.show(str(attempt["unit"]), "LoadState") == {"LoadState": "not-found"},
        timeout=10,
        what="the runner's unit to be collected",
    )


def test_runner_falls_back_to_a_new_session_without_systemd_run(systemd_namespace: Boot) -> None:
    need_executable(CHECK_TCP, "monitoring-plugins-basic")
    ns = systemd_namespace({"web.service": WEB})
    config, state = write_config(ns.workdir, web=web_check())
    # A PATH with systemctl (the heal needs it) but no systemd-run.
    tools = ns.workdir / "bin"
    tools.mkdir()
    (tools / "systemctl").symlink_to(shutil.which("systemctl", path=SYSNS_PATH) or "/bin/systemctl")
    ns.systemctl("start", "web.service")
    wait_for(lambda: listening(ns), timeout=10, what="the web server")
    ns.systemctl("kill", "--signal=KILL", "web.service")
    ns.wait_unit("web.service", ActiveState="failed", Result="signal")

    critical = ns.exec([BIN / "selfheal", "run", "web", "-c", config], env={"PATH": str(tools)})
    assert "; self-healing: started systemctl restart web.service (attempt 1/3)" in critical.stdout, critical
    (attempt,) = journal_events(state, "attempt")
    assert attempt["runner"] == "setsid" and "unit" not in attempt, attempt
    assert attempt["fallback_reason"] == f"systemd-run not found on PATH ({tools})", attempt
    (end,) = wait_for(
        lambda: journal_events(state, "action_end", in_flight=True), timeout=15, what="the heal's action_end"
    )
    assert (end["exit_code"], end["pid"]) == (0, attempt["pid"]) and "unit" not in end, end
    ns.wait_unit("web.service", ActiveState="active", Result="success")
    history = ns.exec([BIN / "selfheal", "history", "web", "-c", config])
    assert "new session: systemd-run not found" in history.stdout, history
