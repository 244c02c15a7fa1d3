"""``selfheal demo``: watch a service die and heal, then a heal that cannot help.

Everything lives in a temporary directory: a tiny HTTP service started by a
start script that writes a pidfile, a check plugin, and selfheal's own
state dir. Each check is a real ``selfheal wrap`` process, as Nagios would
run it. Needs no root and cleans up after itself.

The demo's checks never read the host's config file: a ``selfheal wrap``
that journals an event sends it to the config's ``syslog:`` and
``on_event:``, and the demo's throwaway heals must not page anyone. So its
checks run with ``SELFHEAL_CONFIG`` naming a file that does not exist.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import sys
import tempfile
import time

from selfheal.core import states
from selfheal.core.shellwords import join, quote
from selfheal.core.states import Usage
from selfheal.edges.kill import kill_trees
from selfheal.edges.spawner import Spawner

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import TextIO

SERVICE = """\
import http.server, os, sys
port, pidfile = int(sys.argv[1]), sys.argv[2]
server = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
with open(pidfile, "w") as f:
    f.write(str(os.getpid()))
server.serve_forever()
"""

# The heal: start the service detached, wait until it answers, exit 0.
START = """\
import os, socket, subprocess, sys, time
port, pidfile, service = sys.argv[1], sys.argv[2], sys.argv[3]
subprocess.Popen([sys.executable, service, port, pidfile], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(port)), 0.2).close()
        print("started on port", port); sys.exit(0)
    except OSError:
        time.sleep(0.05)
print("did not come up"); sys.exit(1)
"""

# The state is the exit code; selfheal's line puts it before the text
# ("WEB OK - port 8080 answers"), so the text does not repeat it.
CHECK = """\
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2).close()
except OSError as exc:
    print(f"port {sys.argv[1]} does not answer: {exc.strerror}"); sys.exit(2)
print(f"port {sys.argv[1]} answers"); sys.exit(0)
"""


USAGE = {"demo": "selfheal demo"}


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    if args and args[0] in ("-h", "--help"):
        out.write("usage: selfheal demo\n\n" + (__doc__ or "") + "\n")
        return 0
    if args:
        raise Usage("demo takes no arguments")
    work = tempfile.mkdtemp(prefix="selfheal-demo-")
    try:
        return _demo(work, out)
    finally:
        _stop_service(os.path.join(work, "service.pid"))
        shutil.rmtree(work, ignore_errors=True)


def _demo(work: str, out: TextIO) -> int:
    files = {}
    for name, text in (("service.py", SERVICE), ("start.py", START), ("check.py", CHECK)):
        files[name] = os.path.join(work, name)
        with open(files[name], "w") as f:
            f.write(text)
    port = _free_port()
    pidfile = os.path.join(work, "service.pid")
    state_dir = os.path.join(work, "state")
    heal = _script(
        work, "start-web", f"exec {sys.executable} {files['start.py']} {port} {pidfile} {files['service.py']}"
    )
    broken = _script(work, "start-broken", "echo 'start script failed: port in use'; exit 1")
    policy = ["--cooldown", "3s", "--grace", "1s", "--max-attempts", "2", "--action-timeout", "10s"]
    env = demo_env(work, os.environ)
    spawner = Spawner()

    def check(name: str, heal: str) -> int:
        argv = [sys.executable, "-m", "selfheal", "wrap", "--name", name, "--heal", heal,
                "--state-dir", state_dir, *policy, "--", sys.executable, files["check.py"], str(port)]  # fmt: skip
        result = spawner.run_plugin(argv, 60, env)
        code = result.exit_status if result.exit_status is not None else states.UNKNOWN
        # The whole command, as it ran: a reader can paste it into a shell.
        out.write(f"  $ SELFHEAL_CONFIG={quote(env['SELFHEAL_CONFIG'])} {join(argv)}\n")
        out.write(f"    {result.stdout.decode('utf-8', 'replace').strip()}\n    (exit {code})\n")
        out.flush()
        return code

    def say(text: str) -> None:
        out.write(f"\n{text}\n")
        out.flush()

    say(f"1. A throwaway HTTP service on 127.0.0.1:{port}, checked by a self-healing check.")
    started = spawner.run_plugin([heal], 30)
    if started.exit_status != 0:
        out.write(f"the demo service did not start: {started.stdout.decode('utf-8', 'replace').strip()}\n")
        return states.UNKNOWN
    check("web", heal)
    say("   The service is killed. The next check heals it:")
    _stop_service(pidfile)
    check("web", heal)
    _wait_for(lambda: _answers(port), 10)
    time.sleep(1.2)  # the grace period
    say("   The heal restarted it; the next check is OK again:")
    ok = check("web", heal) == 0

    say("2. The service dies again, but this time its start script is broken.")
    _stop_service(pidfile)
    check("broken", broken)
    time.sleep(1.5)  # the failing heal ends, then the grace period
    say("   The heal did not help: CRITICAL, and no new attempt during the cooldown:")
    check("broken", broken)
    time.sleep(3)
    say("   After the cooldown, attempt 2 of 2:")
    check("broken", broken)
    time.sleep(1.5)
    say("   Attempt 2 did not help either. It gives up and pages a human:")
    gave_up = check("broken", broken) == 2
    journal = os.path.join(state_dir, "journal.jsonl")
    say(f"The journal of all this is {journal}:")
    history = ["history", "--journal", journal]
    out.write(f"  $ {join([sys.executable, '-m', 'selfheal', *history])}\n")
    from selfheal.commands import history as listing

    listed = io.StringIO()
    listing.main("history", history[1:], env, listed)
    out.write("".join(f"    {line}\n" for line in listed.getvalue().splitlines()))
    say(f"Demo finished; {work} (the service, its state and journal) was removed.")
    return 0 if ok and gave_up else 1


def demo_env(work: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The demo checks' environment: no config file (so no syslog, hook or metrics) and no state dir."""
    env = {key: value for key, value in environ.items() if key != "SELFHEAL_STATE_DIR"}
    env["SELFHEAL_CONFIG"] = os.path.join(work, "no-config.yaml")  # never created
    return env


def _script(work: str, name: str, body: str) -> str:
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(f"#!/bin/sh\n{body}\n")
    os.chmod(path, 0o755)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def _wait_for(condition: Callable[[], object], limit: float) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _stop_service(pidfile: str) -> None:
    """Kill the service at once (no grace), and wait until it is gone."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return
    kill_trees([pid], 0)
