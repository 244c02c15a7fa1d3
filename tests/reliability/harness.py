"""What the adversarial tests share: other users, gates, figures.

- ``as_user``: an argv prefix that runs a command as another user (the
  ``nagios`` user Nagios and NRPE run checks as), through ``setpriv``.
- ``SharedDir``: a temporary directory other users can reach, removed
  afterwards.
- ``Gate``: holds many plugin runs at one point so that all of them reach
  the decision at the same moment rather than spread over Python's
  start-up.
- ``figure``: one line of the reliability table (cases tried, records
  lost, double heals); ``docs/reliability.md`` is built from these lines.
"""

from __future__ import annotations

import functools
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import CHECK_DUMMY, clean_env, selfheal_argv, write_script

#: The user Nagios and NRPE run checks as on Debian.
SERVICE_USER = "nagios"


def uid_of(user: str) -> int:
    return pwd.getpwnam(user).pw_uid


def gid_of(user: str) -> int:
    return pwd.getpwnam(user).pw_gid


@functools.cache
def as_user(user: str = SERVICE_USER) -> tuple[str, ...]:
    """An argv prefix that runs the rest as ``user``, with its own uid and gid.

    Where this interpreter lives in a directory ``user`` may not enter (a
    Python under root's home, as on the CI machine), the process also gets
    CAP_DAC_READ_SEARCH: it may *read* any file (to load Python) but
    every write, chown and permission decision is still ``user``'s.
    """
    assert os.geteuid() == 0, "running as another user needs root"
    base = ("setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups")
    # The probe starts this interpreter again, as the heal runner will: the
    # first exec alone can succeed where a second one is refused.
    code = "import os, sys; os.execv(sys.executable, [sys.executable, '-c', 'import selfheal.cli, psutil, yaml'])"
    probe = [sys.executable, "-c", code]
    plain = subprocess.run([*base, *probe], capture_output=True, cwd="/", check=False, timeout=60)
    if plain.returncode == 0:
        return base
    caps = ("--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search")
    result = subprocess.run([*base, *caps, *probe], capture_output=True, cwd="/", check=False, timeout=60)
    assert result.returncode == 0, result.stderr.decode()
    return (*base, *caps)


def selfheal_as(user: str | None, *args: object) -> list[str]:
    """The ``python -m selfheal ARGS`` argv, as ``user`` (None: as we are)."""
    return [*(as_user(user) if user else ()), *selfheal_argv(*args)]


def run_as(user: str | None, *args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        selfheal_as(user, *args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd="/",
        env=clean_env(),
        timeout=timeout,
        check=False,
    )


class SharedDir:
    """A 0755 temporary directory that other users can enter."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="selfheal-rel-"))
        self.path.chmod(0o755)

    def state_dir(self, owner: str | None = None, mode: int = 0o700) -> Path:
        """A state dir, created ahead for ``owner`` as an administrator would."""
        path = self.path / f"state-{owner or 'root'}"
        path.mkdir(mode=mode)
        path.chmod(mode)
        if owner:
            os.chown(path, uid_of(owner), gid_of(owner))
        return path

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


#: check_dummy behind a starting gate: each plugin run says it is ready,
#: then waits for the gate to open before it answers CRITICAL.
GATED_PLUGIN = f"""\
touch "$1/ready.$$"
while [ ! -e "$1/go" ]; do sleep 0.01; done
exec {CHECK_DUMMY} 2 down
"""


class Gate:
    """A directory-based starting gate for plugin runs."""

    def __init__(self, where: Path) -> None:
        self.dir = where / "gate"
        self.dir.mkdir()
        self.dir.chmod(0o777)  # every user's plugin leaves its ready file here
        self.plugin = write_script(where / "check_gated", GATED_PLUGIN)

    def ready(self) -> int:
        return len(list(self.dir.glob("ready.*")))

    def open(self) -> None:
        (self.dir / "go").touch()


def heal_counter(where: Path, seconds: float = 0) -> tuple[str, Path]:
    """A heal command that appends one line per run to a counter file."""
    counter = where / "heals"
    script = write_script(where / "heal", f'echo "$$ $(id -u)" >> "$1"\nsleep {seconds}\n')
    return f"{script} {counter}", counter


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def figure(kind: str, tried: int, lost: int = 0, double: int = 0, **detail: object) -> None:
    """Report one row of the reliability table.

    Printed (``pytest -s`` shows it) and, when ``SELFHEAL_FIGURES`` names a
    file, appended to it as JSON; ``python tests/reliability/figures.py
    FILE`` turns those lines into the table of ``docs/reliability.md``.
    """
    row = {"kind": kind, "tried": tried, "lost": lost, "double": double, **detail}
    print(f"figure: {json.dumps(row)}")
    target = os.environ.get("SELFHEAL_FIGURES")
    if target:
        with open(target, "a") as stream:
            stream.write(json.dumps(row) + "\n")
