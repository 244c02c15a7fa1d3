"""selfheal behind a real NRPE: check_nrpe is not held by the heal.

NRPE reads the plugin's stdout until EOF. A heal that kept that pipe open
would hold ``check_nrpe`` until the heal ended (here 15 s) or NRPE's
timeout. selfheal detaches it, so NRPE answers at once and moves on, and
the heal still completes.
"""

from __future__ import annotations

from pathlib import Path

from conftest import journal_events, wait_for

from e2e.conftest import need_executable
from e2e.daemons import CHECK_NRPE, NRPE, PLUGIN_DIR, Deployment, Nrpe, run_as_ids
from e2e.toy import ToyService

HEAL_SECONDS = 15


def test_check_nrpe_returns_at_once_and_the_slow_heal_completes(
    deployment: Deployment, workdir: Path
) -> None:
    need_executable(NRPE, "nagios-nrpe-server")
    need_executable(CHECK_NRPE, "nagios-nrpe-plugin")
    toy = ToyService(workdir, deployment.python)
    slow_heal = workdir / "slow-start-web"
    slow_heal.write_text(f"#!/bin/sh\nsleep {HEAL_SECONDS}\nexec '{toy.start_script}'\n")
    slow_heal.chmod(0o755)
    state = workdir / "state"
    nrpe = Nrpe(
        workdir,
        {
            "check_web": f"{deployment.selfheal} wrap --name web --heal {slow_heal} --state-dir {state} "
            f"--action-timeout 60s -- {PLUGIN_DIR}/check_http -H 127.0.0.1 -p {toy.port} -t 5"
        },
    )
    toy.start()
    nrpe.start()
    try:
        result, took = nrpe.check("check_web")
        print(f"\ncheck_nrpe, healthy: {took:.2f}s")
        assert result.returncode == 0, result
        assert result.stdout.startswith("WEB OK - HTTP OK"), result.stdout

        toy.kill()
        result, took = nrpe.check("check_web")
        print(
            f"\nscenario 3: check_nrpe with a {HEAL_SECONDS}s heal returned in {took:.2f}s: {result.stdout.strip()}"
        )
        assert took < 2.0, f"check_nrpe took {took:.2f}s"
        assert result.returncode == 1, result
        assert result.stdout.startswith("WEB WARNING - "), result.stdout
        assert f"self-healing: started {slow_heal} (attempt 1/3)" in result.stdout, result.stdout
        (attempt,) = journal_events(state, "attempt")
        assert journal_events(state, "action_end") == []

        # NRPE has moved on: it answers the next check while the heal runs.
        result, took = nrpe.check("check_web")
        assert took < 2.0, f"check_nrpe took {took:.2f}s"
        assert result.returncode == 1 and "self-healing in progress" in result.stdout, result.stdout

        # The heal completes on its own, as the nagios user NRPE runs it as.
        (end,) = wait_for(
            lambda: journal_events(state, "action_end", in_flight=True),
            HEAL_SECONDS + 20,
            interval=0.2,
            what="the heal's action_end",
        )
        assert end["exit_code"] == 0 and end["pid"] == attempt["pid"], end
        assert end["duration"] >= HEAL_SECONDS
        assert state.stat().st_uid == run_as_ids()[0]
        result, _ = nrpe.check("check_web")
        assert result.returncode == 0 and result.stdout.startswith("WEB OK - "), result.stdout
        assert nrpe.process is not None and nrpe.process.poll() is None
    finally:
        nrpe.stop()
