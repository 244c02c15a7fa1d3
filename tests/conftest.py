"""Shared helpers for the tests that run ``selfheal`` as real processes.

The tests mirror the package: ``unit/`` (pure logic, with fakes; no plugin,
no process), ``integration/`` (real processes and files: the commands, the
built-in checks in ``integration/checks/``), ``reliability/`` (hostile
input, storms, kills, fuzzing) and ``e2e/`` (Nagios, NRPE, Icinga 2, etcd,
systemd and the Debian package, started by the tests themselves).


Every helper starts the command line as Nagios or NRPE would: a separate
``python -m selfheal`` process, its stdout read to EOF, its exit code
taken as the Nagios state. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

PLUGINS = Path("/usr/lib/nagios/plugins")
CHECK_DUMMY = str(PLUGINS / "check_dummy")

#: One status line as the Nagios plugin guidelines want it.
UNKNOWN_LINE = re.compile(r"^\S+ UNKNOWN - ")
#: A problem in one line: as Nagios reads it from a plugin command, or as a
#: person reads it from a command for people ("selfheal pause: ...").
PROBLEM_LINE = re.compile(r"^(\S+ UNKNOWN - |selfheal [a-z]+: )")


@pytest.fixture(autouse=True)
def _need_check_dummy(request: pytest.FixtureRequest) -> None:
    # tests/unit/ is pure logic with fakes: it needs no plugin at all.
    if Path(str(request.node.fspath)).parent.name == "unit":
        return
    # Not a skip: the other tests are meaningless without the Debian plugins.
    assert os.access(CHECK_DUMMY, os.X_OK), (
        f"{CHECK_DUMMY} is missing: apt-get install monitoring-plugins-basic"
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any selfheal settings of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SELFHEAL_")}
    env.update(extra)
    return env


def selfheal_argv(*args: object) -> list[str]:
    return [sys.executable, "-m", "selfheal", *(str(a) for a in args)]


def run_selfheal(
    *args: object, cwd: Path | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion; stdout and stderr as text."""
    return subprocess.run(
        selfheal_argv(*args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(),
        timeout=timeout,
        check=False,
    )


def popen_selfheal(*args: object, cwd: Path | None = None, **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        selfheal_argv(*args), stdin=subprocess.DEVNULL, cwd=cwd, env=clean_env(), **kwargs
    )


def write_script(path: Path, body: str, shebang: str = "#!/bin/sh") -> Path:
    """An executable script file; ``body`` is dedented by the caller."""
    path.write_text(f"{shebang}\n{body}")
    path.chmod(0o755)
    return path


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def journal_events(
    state_dir: Path, event: str | None = None, *, in_flight: bool = False
) -> list[dict[str, object]]:
    """The journal's events (all, or those of one type); [] if there is none.

    Strict: every line must be whole JSON ending in a newline, so a torn
    journal fails the test. Only a poll that may read while a runner is
    appending passes ``in_flight=True``: a last line without its newline
    is then left out (a reader may see part of a concurrent write) and
    read on the next poll.
    """
    path = state_dir / "journal.jsonl"
    if not path.exists():
        return []
    text = path.read_text()
    if in_flight:
        text = text[: text.rfind("\n") + 1]
    else:
        assert not text or text.endswith("\n"), f"torn last journal line: {text.splitlines()[-1]!r}"
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [e for e in events if event is None or e["event"] == event]


def read_record(state_dir: Path, name: str) -> dict[str, object]:
    return json.loads((state_dir / f"{name}.json").read_text())  # type: ignore[no-any-return]


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs.

    A zombie counts as gone: it has exited and only waits to be reaped.
    Orphans are reparented to PID 1, and not every container init reaps
    them, so a dead orphan may linger as a zombie there.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def assert_no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text
