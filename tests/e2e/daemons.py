"""Real Nagios Core 4 and NRPE daemons in temporary directories.

- ``Deployment``: selfheal installed where the ``nagios`` user can run it:
  a copy of the package and its dependencies plus a ``bin/selfheal``
  launcher, as ``pip install`` would put them under /usr/local. The
  test's own virtualenv may live where ``nagios`` cannot read it. With
  ``SELFHEAL_E2E_DEB=1`` it is the installed Debian package instead:
  /usr/bin/selfheal on /usr/bin/python3, nothing copied.
- ``Nagios``: ``nagios4`` in the foreground with its own main config, all
  its files in one temp dir, ``interval_length=1`` so that "minutes" are
  seconds. Started as root, it runs the plugins as ``nagios``, as a
  packaged Nagios does. Outcomes are read from its ``status.dat`` and log.
- ``Nrpe``: ``nrpe -f`` with its own config on a free loopback port.
- ``reap``: stop every process a test left behind, found by its session
  or by the test's unique temp dir in its command line, never by name
  (other people's nagios4 and nrpe run on the same machine).
"""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib.metadata import entry_points
from pathlib import Path

import psutil

NAGIOS4 = "/usr/sbin/nagios4"
NRPE = "/usr/sbin/nrpe"
CHECK_NRPE = "/usr/lib/nagios/plugins/check_nrpe"
ICINGA2 = "/usr/sbin/icinga2"
PLUGIN_DIR = "/usr/lib/nagios/plugins"
#: util-linux: run one command as another user, without a login shell.
RUNUSER = shutil.which("runuser", path=os.pathsep.join((os.defpath, "/usr/sbin", "/sbin"))) or "runuser"
#: The user Debian's nagios4 and nrpe packages run plugins as.
RUN_AS = "nagios"

#: What a selfheal install needs at run time (``_yaml`` is optional).
MODULES = ("selfheal", "nagiosplugin", "psutil", "yaml", "_yaml")

#: SELFHEAL_E2E_DEB=1: the tests run the installed Debian package (built
#: from this tree: tests/deb/build.sh), as an admin's Nagios would.
FROM_DEB = os.environ.get("SELFHEAL_E2E_DEB") == "1"
DEB_SELFHEAL = "/usr/bin/selfheal"


class Unavailable(Exception):
    """A daemon or a precondition is missing: skip, or fail when required."""


def run_as_ids() -> tuple[int, int]:
    try:
        user = pwd.getpwnam(RUN_AS)
    except KeyError:
        raise Unavailable(f"no {RUN_AS!r} user (apt-get install nagios4-core creates it)") from None
    return user.pw_uid, grp.getgrgid(user.pw_gid).gr_gid


def make_workdir(prefix: str) -> Path:
    """A fresh temp dir owned by the ``nagios`` user, as its state dir would be."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    uid, gid = run_as_ids()
    os.chown(path, uid, gid)
    path.chmod(0o755)
    return path


def give_to_nagios(*paths: Path) -> None:
    uid, gid = run_as_ids()
    for path in paths:
        os.chown(path, uid, gid)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reap(marker: str, session: int | None = None) -> list[int]:
    """Kill what a test left: processes in ``session`` or naming ``marker``.

    ``marker`` is the test's own mkdtemp path, so nothing of anyone else's
    matches. Returns the pids killed.
    """
    killed = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if process.pid == os.getpid():
            continue
        try:
            ours = marker in " ".join(process.info["cmdline"] or ())
            if not ours and session is not None:
                ours = os.getsid(process.pid) == session
            if ours:
                process.kill()
                killed.append(process.pid)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return killed


def stop_daemon(process: subprocess.Popen[bytes], root: Path) -> None:
    """Stop a daemon started in a session of its own, and all it left in ``root``.

    TERM first, as its init script would; then KILL to its session (a
    daemon's workers, a hung plugin) and to anything naming ``root``
    (detached heals and the services they started).
    """
    session = process.pid
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:
        os.killpg(session, signal.SIGKILL)
    except ProcessLookupError:
        pass
    reap(str(root), session)


class Deployment:
    """selfheal installed for the ``nagios`` user, in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        if FROM_DEB:
            self._from_package()
            return
        self.lib = root / "lib"
        self.lib.mkdir(parents=True)
        for name in MODULES:
            spec = importlib.util.find_spec(name)
            if spec is None:
                if name == "_yaml":
                    continue
                raise Unavailable(f"python module {name} is not installed")
            if spec.submodule_search_locations:
                source = next(iter(spec.submodule_search_locations))
                shutil.copytree(
                    source, self.lib / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(str(spec.origin), self.lib)
        # The built-in checks install as selfheal.checks from their own
        # directory (package-dir in pyproject.toml).
        builtins = importlib.util.find_spec("selfheal.checks")
        if builtins is not None and builtins.submodule_search_locations:
            target = self.lib / "selfheal" / "checks"
            if not target.exists():
                shutil.copytree(
                    next(iter(builtins.submodule_search_locations)),
                    target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                )
        self.python = self._python()
        # Byte-compile now: the nagios user cannot write __pycache__ here,
        # and every plugin run would compile selfheal from source again.
        subprocess.run([self.python, "-m", "compileall", "-q", str(self.lib)], check=True)
        self.bin = root / "bin"
        self.bin.mkdir()
        self.selfheal = self._launcher("selfheal", "from selfheal.cli import main")
        #: The console scripts (check_selfheal_NAME) by name.
        self.scripts = {"selfheal": self.selfheal}
        for entry in entry_points(group="console_scripts"):
            if entry.value.startswith("selfheal.") and entry.name != "selfheal":
                module, _, function = entry.value.partition(":")
                self.scripts[entry.name] = self._launcher(
                    entry.name, f"from {module} import {function} as main"
                )
        root.chmod(0o755)

    def _from_package(self) -> None:
        """The installed package: its own files, run as they are installed.

        ``bin/`` holds links to them, for tests that put one directory where
        the examples say /usr/local/bin.
        """
        from importlib.metadata import version

        if not os.access(DEB_SELFHEAL, os.X_OK):
            raise Unavailable(
                f"SELFHEAL_E2E_DEB=1, but {DEB_SELFHEAL} is not installed "
                "(bash tests/deb/build.sh DIR && apt-get install DIR/selfheal_*.deb)"
            )
        self.python = "/usr/bin/python3"
        self.lib = Path("/usr/lib/python3/dist-packages")
        self.selfheal = Path(DEB_SELFHEAL)
        self.scripts = {"selfheal": self.selfheal}
        for entry in entry_points(group="console_scripts"):
            if entry.value.startswith("selfheal.") and entry.name != "selfheal":
                self.scripts[entry.name] = Path(PLUGIN_DIR) / entry.name
        result = subprocess.run(
            [RUNUSER, "-u", RUN_AS, "--", DEB_SELFHEAL, "--version"],
            env={"PATH": os.defpath},
            cwd="/",
            capture_output=True,
            text=True,
            check=False,
        )
        # The package under test is the one built from this tree.
        if result.stdout.split() != ["selfheal", version("selfheal")]:
            raise Unavailable(
                f"{RUN_AS} ran {DEB_SELFHEAL} --version: {(result.stdout + result.stderr).strip()!r}, "
                f"expected selfheal {version('selfheal')}"
            )
        missing = [str(path) for path in self.scripts.values() if not os.access(path, os.X_OK)]
        if missing:
            raise Unavailable(f"the installed package lacks {', '.join(missing)}")
        self.bin = self.root / "bin"
        self.bin.mkdir()
        for name, path in self.scripts.items():
            (self.bin / name).symlink_to(path)
        self.root.chmod(0o755)

    def _launcher(self, name: str, load: str) -> Path:
        """A console script, as pip would write it, with our PYTHONPATH."""
        path = self.bin / name
        path.write_text(
            "#!/bin/sh\n"
            "# installed for the nagios user by tests/e2e\n"
            f"PYTHONPATH='{self.lib}'\n"
            "export PYTHONPATH\n"
            f"exec '{self.python}' -s -c 'import sys; {load}; sys.exit(main())' \"$@\"\n"
        )
        path.chmod(0o755)
        return path

    def _python(self) -> str:
        """An interpreter of this Python version that ``nagios`` may run."""
        version = f"{sys.version_info[0]}.{sys.version_info[1]}"
        candidates = [sys.executable, getattr(sys, "_base_executable", ""), f"/usr/bin/python{version}"]
        probe = "import sys, selfheal, psutil, yaml, nagiosplugin; print('%d.%d' % sys.version_info[:2])"
        tried = []
        for python in dict.fromkeys(c for c in candidates if c):
            result = subprocess.run(
                [RUNUSER, "-u", RUN_AS, "--", python, "-s", "-c", probe],
                env={"PATH": os.defpath, "PYTHONPATH": str(self.lib)},
                cwd="/",
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode == 0 and result.stdout.strip() == version:
                return python
            tried.append(f"{python}: {(result.stderr or result.stdout).strip()[-200:]}")
        raise Unavailable(f"no Python {version} the {RUN_AS} user can run: " + "; ".join(tried))


# -- Nagios Core 4 ---------------------------------------------------------

#: Objects every test's Nagios needs: time, a contact whose notifications
#: are logged (so "no notification" means something), and one host.
BASE_OBJECTS = """
define timeperiod {
    timeperiod_name 24x7
    alias           always
    sunday          00:00-24:00
    monday          00:00-24:00
    tuesday         00:00-24:00
    wednesday       00:00-24:00
    thursday        00:00-24:00
    friday          00:00-24:00
    saturday        00:00-24:00
}
define command {
    command_name    notify-by-log
    command_line    /bin/true
}
define contact {
    contact_name                    oncall
    alias                           on call
    host_notification_period        24x7
    service_notification_period     24x7
    host_notification_options       d,u,r
    service_notification_options    w,u,c,r
    host_notification_commands      notify-by-log
    service_notification_commands   notify-by-log
}
define host {
    host_name               localhost
    alias                   localhost
    address                 127.0.0.1
    max_check_attempts      1
    check_period            24x7
    notification_period     24x7
    notification_interval   0
    contacts                oncall
    active_checks_enabled   0
}
"""


def service(description: str, command_line: str, **settings: object) -> str:
    """A service (and its command) on localhost, notifying ``oncall``."""
    fields = {
        "host_name": "localhost",
        "service_description": description,
        "check_command": f"cmd-{description}",
        "max_check_attempts": 3,
        "check_interval": 2,
        "retry_interval": 1,
        "check_period": "24x7",
        "notification_period": "24x7",
        "notification_interval": 0,
        "notification_options": "w,u,c,r",
        "contacts": "oncall",
        **settings,
    }
    body = "".join(f"    {key:<24}{value}\n" for key, value in fields.items())
    return (
        f"define command {{\n    command_name    cmd-{description}\n    command_line    {command_line}\n}}\n"
        f"define service {{\n{body}}}\n"
    )


class Nagios:
    """One ``nagios4`` in ``root``; ``start()``, then read its state, ``stop()``."""

    def __init__(self, root: Path, objects: str, **settings: object) -> None:
        self.root = root
        for sub in ("checkresults", "rw", "tmp"):
            (root / sub).mkdir()
            give_to_nagios(root / sub)
        (root / "objects.cfg").write_text(BASE_OBJECTS + objects)
        (root / "resource.cfg").write_text(f"$USER1$={PLUGIN_DIR}\n")
        main = {
            "log_file": root / "nagios.log",
            "cfg_file": root / "objects.cfg",
            "resource_file": root / "resource.cfg",
            "object_cache_file": root / "objects.cache",
            "precached_object_file": root / "objects.precache",
            "status_file": root / "status.dat",
            "status_update_interval": 1,
            "nagios_user": RUN_AS,
            "nagios_group": RUN_AS,
            "check_external_commands": 1,
            "command_file": root / "rw" / "nagios.cmd",
            "query_socket": root / "rw" / "nagios.qh",
            "lock_file": root / "nagios.pid",
            "temp_file": root / "nagios.tmp",
            "temp_path": root / "tmp",
            "check_result_path": root / "checkresults",
            "retain_state_information": 0,
            "state_retention_file": root / "retention.dat",
            "use_syslog": 0,
            "log_rotation_method": "n",
            "log_archive_path": root,
            "log_notifications": 1,
            "log_service_retries": 1,
            "log_initial_states": 1,
            "log_external_commands": 1,
            # A "minute" is one second: check_interval 2 checks every 2 s.
            "interval_length": 1,
            "check_result_reaper_frequency": 1,
            "service_inter_check_delay_method": "n",
            "host_inter_check_delay_method": "n",
            "max_service_check_spread": 1,
            "max_host_check_spread": 1,
            "service_check_timeout": 60,
            "service_check_timeout_state": "c",
            "enable_notifications": 1,
            "enable_flap_detection": 0,
            "check_for_updates": 0,
            "bare_update_check": 0,
            "check_for_orphaned_services": 0,
            "check_service_freshness": 0,
            "date_format": "iso8601",
            "illegal_macro_output_chars": "`~$&|'\"<>",
            **settings,
        }
        (root / "nagios.cfg").write_text("".join(f"{k}={v}\n" for k, v in main.items()))
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0

    @property
    def log_path(self) -> Path:
        return self.root / "nagios.log"

    def start(self, timeout: float = 30) -> None:
        with (self.root / "daemon.out").open("wb") as out:
            self.process = subprocess.Popen(
                [NAGIOS4, str(self.root / "nagios.cfg")],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )
        self.started = time.time()
        deadline = time.monotonic() + timeout
        while not (self.root / "status.dat").exists():
            if self.process.poll() is not None:
                raise AssertionError(f"nagios4 exited {self.process.returncode} at start:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"nagios4 wrote no status.dat within {timeout}s:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        parts = []
        for name in ("daemon.out", "nagios.log"):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop Nagios, its workers, and every plugin or heal still running."""
        if self.process is not None:
            stop_daemon(self.process, self.root)
            self.process = None

    def log(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text(errors="replace").splitlines()

    def alerts(self, description: str) -> list[tuple[int, str, str, str]]:
        """``SERVICE ALERT`` lines: (time, state, SOFT/HARD, plugin output)."""
        found = []
        for line in self.log():
            head, sep, rest = line.partition("] SERVICE ALERT: ")
            if not sep:
                continue
            host, name, state, kind, _attempt, text = rest.split(";", 5)
            if host == "localhost" and name == description:
                found.append((int(head.lstrip("[")), state, kind, text))
        return found

    def notifications(self) -> list[str]:
        return [line for line in self.log() if "NOTIFICATION: " in line]

    def services(self) -> dict[str, dict[str, str]]:
        """``servicestatus`` blocks of status.dat, by service description."""
        try:
            text = (self.root / "status.dat").read_text(errors="replace")
        except FileNotFoundError:
            return {}
        result = {}
        for block in text.split("servicestatus {")[1:]:
            fields = {}
            for line in block.split("}", 1)[0].splitlines():
                key, sep, value = line.strip().partition("=")
                if sep:
                    fields[key] = value
            result[fields.get("service_description", "")] = fields
        return result

    def service(self, description: str) -> dict[str, str]:
        return self.services().get(description, {})

    def command(self, text: str) -> None:
        """An external command, as the web UI would send it."""
        fd = os.open(self.root / "rw" / "nagios.cmd", os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, f"[{int(time.time())}] {text}\n".encode())
        finally:
            os.close(fd)

    def wait(self, predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
        """Poll until ``predicate()`` is truthy; fail with Nagios's log if not."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"nagios4 died while waiting for {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.output()}")
            time.sleep(0.1)


# -- NRPE --------------------------------------------------------------------


class Nrpe:
    """``nrpe -f`` on 127.0.0.1 and a free port, with ``commands``."""

    def __init__(
        self, root: Path, commands: dict[str, str], command_timeout: int = 30, include_dir: Path | None = None
    ) -> None:
        self.root = root
        self.port = free_port()
        lines = [
            f"pid_file={root / 'nrpe.pid'}",
            f"server_port={self.port}",
            "server_address=127.0.0.1",
            f"nrpe_user={RUN_AS}",
            f"nrpe_group={RUN_AS}",
            "allowed_hosts=127.0.0.1",
            "dont_blame_nrpe=0",
            "debug=0",
            f"command_timeout={command_timeout}",
            "connection_timeout=30",
            "disable_syslog=1",
            *(f"command[{name}]={line}" for name, line in commands.items()),
            *([f"include_dir={include_dir}"] if include_dir else []),
        ]
        self.config = root / "nrpe.cfg"
        self.config.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15, env: dict[str, str] | None = None) -> None:
        with (self.root / "nrpe.out").open("wb") as out:
            self.process = subprocess.Popen(
                [NRPE, "-c", str(self.config), "-f"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                out_text = (self.root / "nrpe.out").read_text(errors="replace")
                raise AssertionError(f"nrpe did not listen on port {self.port}: {out_text}")
            time.sleep(0.1)

    def check(self, command: str, timeout: int = 10) -> tuple[subprocess.CompletedProcess[str], float]:
        """``check_nrpe`` as the Nagios server runs it; the result and its duration."""
        started = time.monotonic()
        result = subprocess.run(
            [CHECK_NRPE, "-H", "127.0.0.1", "-p", str(self.port), "-t", str(timeout), "-c", command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout + 5,
            check=False,
        )
        return result, time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None:
            stop_daemon(self.process, self.root)
            self.process = None
