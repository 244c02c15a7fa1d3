"""A toy HTTP service with a start script that writes a pidfile.

The same service the ``selfheal demo`` heals (its source is reused from
``selfheal.commands.demo``), laid out as an operator's service would be: a start
script that starts the daemon detached and returns once it answers, and a
pidfile. It runs as the ``nagios`` user, which is the user the heal runs
as under Nagios.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import process_gone, wait_for

from e2e.daemons import RUN_AS, RUNUSER, free_port, give_to_nagios
from selfheal.commands.demo import SERVICE, START


class ToyService:
    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.port = free_port()
        self.pidfile = root / "web.pid"
        (root / "service.py").write_text(SERVICE)
        (root / "start.py").write_text(START)
        #: The heal that works: start the service, wait until it answers.
        self.start_script = self._script(
            "start-web", f"exec '{python}' '{root}/start.py' {self.port} '{self.pidfile}' '{root}/service.py'"
        )
        #: The heal that cannot help: a start script that fails.
        self.broken_script = self._script(
            "start-web-broken", "echo 'start-web: port already in use' >&2; exit 1"
        )

    def _script(self, name: str, body: str) -> Path:
        path = self.root / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
        return path

    def start(self) -> None:
        """Start it as the nagios user, as the heal will."""
        give_to_nagios(self.root)
        subprocess.run([RUNUSER, "-u", RUN_AS, "--", str(self.start_script)], check=True, capture_output=True)

    def pid(self) -> int:
        return int(self.pidfile.read_text().strip())

    def kill(self) -> float:
        """SIGKILL the service; the time it died."""
        pid = self.pid()
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: process_gone(pid), timeout=5, what=f"the service (pid {pid}) to die")
        return time.time()
