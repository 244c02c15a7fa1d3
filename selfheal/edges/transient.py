"""The heal runner as a transient systemd unit: its name, its command line, its environment.

Where systemd is PID 1, the runner starts with ``systemd-run`` as a unit of
its own, out of the caller's cgroup (restarting NRPE cannot kill it) and
with its whole tree in one cgroup to kill. This module only builds that
command line and says whether it can be used; the spawner runs it.
"""

from __future__ import annotations

import os
import sys

from selfheal.edges.files import find_executable
from selfheal.edges.proc import SYSTEMD_BOOTED, systemd_booted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping


#: How the runner was started, as the journal and ``status`` say it.
SYSTEMD_RUN = "systemd-run"
SETSID = "setsid"


#: systemd-run and systemctl answer in milliseconds; a systemd that does not
#: answer in this long gets the runner started without it.
UNIT_TIMEOUT = 5.0


#: Beyond splay + action_timeout + kill grace: the runner's wait for the lock, and its journal.
RUNNER_SLACK = 60.0


#: Set by systemd for one unit: passed on, they would describe the caller's unit.
SYSTEMD_OWN_VARIABLES = frozenset(
    (
        "INVOCATION_ID",
        "JOURNAL_STREAM",
        "NOTIFY_SOCKET",
        "LISTEN_PID",
        "LISTEN_FDS",
        "LISTEN_FDNAMES",
        "MAINPID",
        "MANAGERPID",
        "SYSTEMD_EXEC_PID",
        "WATCHDOG_PID",
        "WATCHDOG_USEC",
        "RUNTIME_DIRECTORY",
        "STATE_DIRECTORY",
        "CACHE_DIRECTORY",
        "LOGS_DIRECTORY",
        "CONFIGURATION_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
        "EXIT_CODE",
        "EXIT_STATUS",
        "SERVICE_RESULT",
    )
)


class RunnerStart:
    """The started runner: pid and create time (unpack as a pair), and how it was started."""

    __slots__ = ("create_time", "fallback_reason", "mode", "pid", "unit")

    def __init__(
        self,
        pid: int | None,
        create_time: float | None,
        mode: str,
        *,
        unit: str | None = None,
        fallback_reason: str | None = None,
    ) -> None:
        self.pid = pid
        self.create_time = create_time
        self.mode = mode
        self.unit = unit
        self.fallback_reason = fallback_reason

    def __iter__(self) -> Iterator[object]:
        return iter((self.pid, self.create_time))

    def journal_fields(self) -> dict[str, object]:
        fields: dict[str, object] = {"runner": self.mode}
        if self.unit:
            fields["unit"] = self.unit
        if self.fallback_reason:
            fields["fallback_reason"] = self.fallback_reason
        return fields


def unit_name(check: str, attempt: str) -> str:
    """``selfheal-heal-CHECK-ATTEMPT.service``, CHECK cut down to what a unit name allows."""
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "_.") else "_" for c in check)[:100]
    return f"selfheal-heal-{safe}-{attempt}.service"


def _passable(key: str, value: str) -> bool:
    """An environment variable systemd accepts and that is not the caller's unit's own."""
    if key in SYSTEMD_OWN_VARIABLES or not key or key[0].isdigit():
        return False
    if not all(c.isascii() and (c.isalnum() or c == "_") for c in key):
        return False
    # os.environ smuggles undecodable bytes as surrogates; systemd wants UTF-8 and no controls.
    return all(c in "\t\n" or (c >= " " and not "\ud800" <= c <= "\udfff") for c in value)


def launcher(env: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """``systemd-run``'s path if the runner can start as a transient unit, else why not.

    Only root starts system units without asking: for any other user
    ``systemd-run`` needs polkit's consent, and a polkit rule (or a sudo
    rule) that lets ``nagios`` start transient units lets it run anything
    as root. So a heal started as ``nagios`` keeps today's new session;
    its action still gets root through its own, narrow sudo rule.
    """
    if not systemd_booted():
        return None, f"systemd is not PID 1 ({SYSTEMD_BOOTED} does not exist)"
    if os.geteuid() != 0:
        return None, "not root: only root starts a transient system unit without polkit"
    path = (env or os.environ).get("PATH") or os.defpath
    found = find_executable("systemd-run", path.split(os.pathsep))
    if found is None:
        return None, f"systemd-run not found on PATH ({path})"
    return found, None


def seconds(spec: Mapping[str, object], key: str, default: float) -> float:
    """A duration from the runner's spec; ``default`` when it is missing or 0."""
    value = spec.get(key)
    return (
        float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value else default
    )


def unit_command(systemd_run: str, spec: dict[str, object], env: Mapping[str, str]) -> tuple[str, list[str]]:
    """The transient unit's name, and the ``systemd-run`` command line that starts the runner as it."""
    from selfheal.core import jsonio

    name = str(spec["check"])
    unit = unit_name(name, str(spec["attempt"]))
    spec = {**spec, "unit": unit}
    log = os.path.abspath(str(spec["log"]))
    timeout, grace, splay = (
        seconds(spec, "timeout", 0),
        seconds(spec, "kill_grace", 5),
        seconds(spec, "splay", 0),
    )
    passed = [key for key, value in env.items() if _passable(key, value)]
    command = [sys.executable, "-m", "selfheal.runner", jsonio.dumps(spec)]
    argv = [
        systemd_run,
        f"--unit={unit}",
        f"--description=selfheal heal of {name}, attempt {spec.get('attempt')}",
        "--collect",
        "--quiet",
        "--no-ask-password",
        # exec: systemd-run returns once the runner is executing (or says
        # why it could not be), so MainPID is the runner's pid right after.
        "--service-type=exec",
        "--property=KillMode=control-group",
        f"--property=TimeoutStopSec={grace:g}s",
        # A backstop should the runner itself hang: past the decision
        # table's "stuck" and the runner's wait for the record's lock.
        f"--property=RuntimeMaxSec={splay + timeout + grace + verify_span(spec) + RUNNER_SLACK:g}s",
        f"--property=StandardOutput=append:{log}",
        f"--property=StandardError=append:{log}",
        # The unit starts with PID 1's environment: pass the caller's
        # (the action sees what it saw in a new session), by name only.
        *(f"--setenv={key}" for key in passed),
        "--",
        # systemd expands $NAME and ${NAME} in a unit's command line; $$ is a $.
        *(word.replace("$", "$$") for word in command),
    ]
    return unit, argv


def verify_span(spec: Mapping[str, object]) -> float:
    """How long the runner's re-check after the action may take (``verify``): the grace, a last check, the report."""
    verify = spec.get("verify")
    if not isinstance(verify, dict):
        return 0.0
    # Each report target ends within its own timeout (5 s unless it says); the verdict
    # waits for the record's lock (selfheal.verify, 30 s) before it is written.
    reports = verify.get("report_to")
    targets = list(reports.values()) if isinstance(reports, dict) else []
    reporting = sum(seconds(t, "timeout", 5) if isinstance(t, dict) else 5.0 for t in targets)
    return seconds(verify, "grace", 0) + 2 * seconds(verify, "timeout", 0) + reporting + 40.0
