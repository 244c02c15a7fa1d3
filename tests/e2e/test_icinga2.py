"""selfheal under a real Icinga 2 daemon, through the shipped CheckCommand.

``icinga2 daemon`` runs (as ``nagios``) the ``selfheal-wrap`` CheckCommand
of ``examples/icinga2/selfheal.conf`` around ``check_http`` against the
toy HTTP service. The service is killed; Icinga 2 must see a soft WARNING
from the heal, then OK, and never a hard CRITICAL. The outcome is read
from Icinga 2's own log (state changes) and the state file it writes at
shutdown (the last check result, with the command line it ran).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from conftest import journal_events

from e2e.conftest import need_executable
from e2e.daemons import ICINGA2, PLUGIN_DIR, Deployment, give_to_nagios, stop_daemon
from e2e.test_examples import EXAMPLES, icinga2_dirs
from e2e.toy import ToyService

STATE_CHANGE = re.compile(
    r"State Change: Checkable 'localhost!web' (soft|hard) state change from (\w+) to (\w+)"
)


def netstrings(text: str) -> list[dict[str, object]]:
    """Icinga 2's state file: ``LENGTH:JSON,`` records."""
    records, index = [], 0
    while index < len(text):
        colon = text.index(":", index)
        length = int(text[index:colon])
        records.append(json.loads(text[colon + 1 : colon + 1 + length]))
        index = colon + 1 + length + 1
    return records


def test_icinga2_runs_the_example_checkcommand_and_the_heal_recovers_softly(
    deployment: Deployment, workdir: Path
) -> None:
    need_executable(ICINGA2, "icinga2-bin")
    toy = ToyService(workdir, deployment.python)
    state = workdir / "state"
    root = workdir / "icinga2"
    root.mkdir()
    example = (EXAMPLES / "icinga2" / "selfheal.conf").read_text()
    (root / "selfheal.conf").write_text(example.replace("/usr/local/bin/selfheal", str(deployment.selfheal)))
    log = root / "icinga2.log"
    (root / "icinga2.conf").write_text(
        f"""
include <itl>
include <plugins>
const PluginDir = "{PLUGIN_DIR}"
const NodeName = "localhost"
object CheckerComponent "checker" {{ }}
object FileLogger "main-log" {{
  severity = "notice"
  path = "{log}"
}}
object Host "localhost" {{
  check_command = "dummy"
  check_interval = 5m
}}
include "{root / "selfheal.conf"}"
object Service "web" {{
  host_name = "localhost"
  check_command = "selfheal-wrap"
  vars.selfheal_name = "web"
  vars.selfheal_heal = "{toy.start_script}"
  vars.selfheal_state_dir = "{state}"
  vars.selfheal_cooldown = "30s"
  vars.selfheal_grace = "3s"
  vars.selfheal_plugin = [ PluginDir + "/check_http", "-H", "127.0.0.1", "-p", "{toy.port}", "-t", "5" ]
  check_interval = 2s
  retry_interval = 1s
  max_check_attempts = 3
}}
"""
    )
    dirs = icinga2_dirs(root, user="nagios")
    give_to_nagios(
        root, *(root / name for name in ("datadir", "logdir", "cachedir", "spooldir", "initrundir"))
    )
    toy.start()
    with (root / "daemon.out").open("wb") as out:
        daemon = subprocess.Popen(
            [ICINGA2, "daemon", "-c", str(root / "icinga2.conf"), *dirs],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def changes() -> list[tuple[str, str, str]]:
            return STATE_CHANGE.findall(log.read_text()) if log.exists() else []

        def wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
            deadline = time.monotonic() + timeout
            while not (value := predicate()):
                assert daemon.poll() is None, (root / "daemon.out").read_text()
                assert time.monotonic() < deadline, f"no {what} after {timeout}s: {changes()}"
                time.sleep(0.1)
            return value

        wait(lambda: ("hard", "UNKNOWN", "OK") in changes(), 30, "first OK")
        seen = len(changes())
        killed = toy.kill()
        wait(lambda: [c for c in changes()[seen:] if c[2] == "OK"], 30, "OK after the kill")
        took = time.time() - killed
        after_kill = changes()[seen:]
        print(
            f"\nIcinga 2: kill -> OK seen in its log {took:.1f}s after the kill; state changes {after_kill}"
        )
        assert after_kill[0] == ("soft", "OK", "WARNING"), after_kill
        assert not [c for c in after_kill if c[0] == "hard" and c[2] == "CRITICAL"], after_kill
    finally:
        # Icinga 2 writes its state file when it is stopped with TERM.
        stop_daemon(daemon, root)

    # The heal ran once, as the nagios user Icinga 2 runs checks as, and worked.
    (attempt,) = journal_events(state, "attempt")
    assert attempt["argv"] == [str(toy.start_script)]
    (end,) = journal_events(state, "action_end")
    assert end["exit_code"] == 0
    assert journal_events(state, "recovered")
    # What Icinga 2 itself recorded: the last result, and the command line
    # the example's CheckCommand built.
    records = netstrings((root / "datadir" / "icinga2.state").read_text())
    (web,) = [r for r in records if r.get("name") == "localhost!web"]
    result = web["update"]["last_check_result"]  # type: ignore[index]
    assert result["state"] == 0, result
    assert result["output"].startswith("WEB OK - HTTP OK"), result
    command = result["command"]
    assert command[:2] == [str(deployment.selfheal), "wrap"], command
    assert command[command.index("--heal") + 1] == str(toy.start_script), command
    assert command[command.index("--downtime") + 1] == "0", command
    separator = command.index("--")
    assert command[separator + 1 :] == [
        f"{PLUGIN_DIR}/check_http",
        "-H",
        "127.0.0.1",
        "-p",
        str(toy.port),
        "-t",
        "5",
    ]
