"""Time to recover as Nagios sees it, with and without ``--verify``, in the same run.

    sudo .venv/bin/python benchmarks/mttr.py [ROUNDS]

Starts a real Nagios 4 the way the end-to-end tests do (tests/e2e/daemons.py:
``interval_length=1``, plugins run as ``nagios``) with two services, each
``selfheal wrap`` around ``check_http`` against its own toy HTTP service
(tests/e2e/toy.py), healed by the toy's start script:

- ``verify``: ``--verify --nagios-cmd ... $HOSTNAME$ $SERVICEDESC$``;
- ``plain``: the same without them.

Both have ``check_interval 2`` and ``retry_interval 30`` (seconds here).
Each round kills both toys at the same moment and measures, for each, the
time from the kill to the first ``status.dat`` that shows the service OK
again after its self-healing WARNING. ROUNDS rounds (3 by default); the
medians, and each round's figures, are printed as a Markdown table. Root
only (Nagios runs the checks as ``nagios``).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from e2e.daemons import Deployment, Nagios, make_workdir, reap, service  # noqa: E402
from e2e.toy import ToyService  # noqa: E402

MODES = ("verify", "plain")
#: A heal may start again one second after the last ended, as often as the rounds need.
POLICY = "--cooldown 1s --max-cooldown 1s --max-attempts 100 --window 1h --grace 10s --action-timeout 20s"


def command_line(deployment: Deployment, root: Path, mode: str, toy: ToyService) -> str:
    report = ""
    if mode == "verify":
        command_file = root / "nagios" / "rw" / "nagios.cmd"
        report = (
            f"--verify --nagios-cmd {command_file} --nagios-host $HOSTNAME$ --nagios-service $SERVICEDESC$ "
        )
    return (
        f"{deployment.selfheal} wrap --name {mode} --heal {toy.start_script} --state-dir {root / 'state'} "
        f"{POLICY} {report}-- $USER1$/check_http -H 127.0.0.1 -p {toy.port} -t 5"
    )


def recovered(nagios: Nagios, mode: str, killed: float) -> bool:
    """OK in status.dat, from a check after the self-healing WARNING that followed the kill."""
    warned = [a[0] for a in nagios.alerts(mode) if a[0] >= int(killed) and a[1] == "WARNING"]
    status = nagios.service(mode)
    return bool(warned) and status.get("current_state") == "0" and int(status["last_check"]) >= warned[0]


def settled(nagios: Nagios, mode: str) -> bool:
    """OK from an active check, and checked every check_interval again (after a recovery Nagios keeps
    the retry schedule for one more check): each round starts from the same place."""
    status = nagios.service(mode)
    if status.get("current_state") != "0" or status.get("check_type") != "0":
        return False
    return int(status["next_check"]) - int(status["last_check"]) <= 2


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if os.geteuid() != 0:
        print("mttr.py runs as root: Nagios runs the checks as the nagios user", file=sys.stderr)
        return 2
    install = make_workdir("selfheal-mttr-install-")
    root = make_workdir("selfheal-mttr-")
    nagios = None
    try:
        deployment = Deployment(install)
        toys = {}
        for mode in MODES:
            (root / mode).mkdir()
            os.chown(root / mode, os.stat(root).st_uid, os.stat(root).st_gid)
            toys[mode] = ToyService(root / mode, deployment.python)
            toys[mode].start()
        (root / "nagios").mkdir()
        os.chown(root / "nagios", os.stat(root).st_uid, os.stat(root).st_gid)
        objects = "".join(
            service(
                mode, command_line(deployment, root, mode, toys[mode]), check_interval=2, retry_interval=30
            )
            for mode in MODES
        )
        nagios = Nagios(root / "nagios", objects, accept_passive_service_checks=1)
        nagios.start()
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        for number in range(1, rounds + 1):
            for mode in MODES:
                nagios.wait(
                    lambda mode=mode: settled(nagios, mode), 120, f"{mode} back on its check_interval"
                )
            killed = {}
            for mode in MODES:
                killed[mode] = toys[mode].kill()
            pending = set(MODES)
            deadline = time.monotonic() + 120
            while pending and time.monotonic() < deadline:
                for mode in sorted(pending):
                    if recovered(nagios, mode, killed[mode]):
                        times[mode].append(time.time() - killed[mode])
                        pending.discard(mode)
                time.sleep(0.05)
            if pending:
                raise SystemExit(f"round {number}: {', '.join(pending)} did not recover within 120s")
            print(f"round {number}: " + ", ".join(f"{m} {times[m][-1]:.1f}s" for m in MODES), flush=True)
        print()
        print("| kill → OK in Nagios | median | rounds |")
        print("|---|---|---|")
        for mode in MODES:
            each = ", ".join(f"{t:.1f}" for t in times[mode])
            print(f"| {mode} | {statistics.median(times[mode]):.1f} s | {each} |")
        return 0
    finally:
        if nagios is not None:
            nagios.stop()
        for path in (root, install):
            reap(str(path))
            shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
