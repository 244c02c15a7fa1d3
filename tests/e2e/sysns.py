"""A real systemd as PID 1 in private namespaces, for the end-to-end tests.

``SystemdNamespace`` boots the host's own systemd (``/lib/systemd/systemd``)
as PID 1 of new pid, mount, net, uts, ipc and cgroup namespaces, with the
test's unit files and nothing of the host's: every unit an installed target
pulls in is masked, only the basic targets stay (``systemd-run`` needs
them). start() returns a running systemd in about 0.2 s, and ``systemctl``, ``systemd-run``,
start limits, ``Restart=`` and ``KillMode=`` behave as on a real host.
Root only. There is no D-Bus daemon and no journald inside: root's
``systemctl`` and ``systemd-run`` talk to PID 1 over its private socket,
but ``systemd-run --wait``/``--pipe`` and any non-root client need the bus,
and ``journalctl`` shows nothing (the console log has the units' output).

How it is launched (host side, then inside)::

    setsid --ctty  timeout -s KILL MAX_LIFE  unshare --pid --fork --kill-child ...
        python sysns.py inside   # PID 1: its own cgroup2 subtree and cgroup namespace,
                                 # private /proc, /sys, /run, /tmp, /dev, the units
        setpriv --bounding-set=... systemd --system

Its lifetime is bounded twice. The session's controlling terminal is a pty
whose master only the test process holds: when the test process dies, the
kernel closes the master, the session is hung up, ``unshare`` dies of the
SIGHUP, and its ``--kill-child`` SIGKILLs systemd, which takes the whole pid
namespace with it. ``timeout`` kills it all after ``max_life`` seconds in
any case, should the test process hang. The same pty is systemd's
``/dev/console``: its log and the units' output go to ``console.log``.

Inside, ``/`` is the host's root bind-remounted read-only (for this mount
namespace only), and ``/run``, ``/tmp`` and ``/dev`` are private tmpfs.
The work dir (under /var/tmp, on the root filesystem, never under /tmp)
stays writable at the same path inside and out, so a test puts its state
there. Nothing here imports anything but the standard library: this file
also runs as the namespace's first process, with ``python -I -S``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

SYSTEMD = "/lib/systemd/systemd"
#: A namespace never outlives this, even when its test process hangs.
MAX_LIFE = 900.0
BOOT_TIMEOUT = 30.0
#: The target the namespace boots into; it pulls in nothing by itself.
TARGET = "selfheal-test.target"
#: Where work dirs go: on the root filesystem, which the namespace sees.
WORK_BASE = "/var/tmp"
PREFIX = "selfheal-sysns-"
#: Inside, these are fresh tmpfs: nothing of the host under them is visible.
PRIVATE = ("/tmp", "/run", "/dev", "/proc", "/sys")
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system", "/etc/systemd/system")
GENERATOR_DIRS = (
    "/lib/systemd/system-generators",
    "/usr/lib/systemd/system-generators",
    "/usr/local/lib/systemd/system-generators",
    "/etc/systemd/system-generators",
)
#: The targets that stay: transient units (systemd-run) need sysinit and basic.
KEPT_TARGETS = {
    "sysinit.target",
    "basic.target",
    "sockets.target",
    "timers.target",
    "paths.target",
    "slices.target",
    "local-fs.target",
    "local-fs-pre.target",
    "swap.target",
}
#: Pulled in by PID 1 itself rather than by a target's .wants.
ALWAYS_MASKED = (
    "default.target",
    "multi-user.target",
    "getty.target",
    "systemd-journald.service",
    "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
    "systemd-remount-fs.service",
    "systemd-fsck-root.service",
    "systemd-tmpfiles-setup.service",
)
#: Capabilities systemd must not have even as PID 1 of its namespaces: they
#: act on the host (kernel modules, the clock, raw devices, the kernel log).
DROPPED_CAPS = (
    "sys_module",
    "sys_rawio",
    "sys_time",
    "sys_pacct",
    "mac_admin",
    "mac_override",
    "wake_alarm",
    "block_suspend",
    "syslog",
)
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}


class Unavailable(Exception):
    """A precondition is missing (root, systemd, a writable cgroup2, a tool)."""


class BootFailed(Exception):
    """systemd did not reach ``running``; the message ends with its console."""


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> Path:
    """The mount point of a cgroup2 hierarchy this process can create cgroups in.

    It is ``/sys/fs/cgroup`` on a host with only cgroup2 and
    ``/sys/fs/cgroup/unified`` on a hybrid one, and may be elsewhere.
    """
    with open(mountinfo) as lines:
        for line in lines:
            fields, _, rest = line.partition(" - ")
            mount_point, options = fields.split()[4:6]
            if rest.split()[:1] == ["cgroup2"] and "rw" in options.split(","):
                path = Path(mount_point.encode().decode("unicode_escape"))
                if os.access(path, os.W_OK):
                    return path
    raise Unavailable("no writable cgroup2 hierarchy is mounted (mount -t cgroup2)")


def masked_units(unit_dirs: Iterable[str] = UNIT_DIRS) -> list[str]:
    """Every unit an installed target or service wants or requires, but the basic targets."""
    names = set(ALWAYS_MASKED)
    for directory in unit_dirs:
        for wants in Path(directory).glob("*.*"):
            if wants.suffix in (".wants", ".requires") and wants.is_dir():
                names.update(entry.name for entry in wants.iterdir())
    return sorted(names - KEPT_TARGETS)


def generators(generator_dirs: Iterable[str] = GENERATOR_DIRS) -> list[str]:
    """The host's unit generators: from its fstab, crypttab, init scripts... none may run inside."""
    names: set[str] = set()
    for directory in generator_dirs:
        if os.path.isdir(directory):
            names.update(os.listdir(directory))
    return sorted(names)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie has exited: not alive)."""
    try:
        with open(f"/proc/{pid}/stat") as proc:
            return proc.read().rpartition(")")[2].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _ns_inode(kind: str, pid: int | str = "self") -> int:
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def _poll(predicate: Callable[[], object], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def sweep_stale(base: str = WORK_BASE, cgroup_root: Path | None = None) -> None:
    """Remove the work dirs and cgroups of namespaces whose test process died.

    Their systemd died with the test process (see the module doc), but
    nobody was left to remove its empty cgroups and its work dir. The test
    process's pid is part of both names; a live one is never touched, and a
    cgroup that still has processes cannot be removed anyway.
    """
    roots = [Path(base)] + ([cgroup_root] if cgroup_root is not None else [])
    for root in roots:
        for path in root.glob(f"{PREFIX}*"):
            owner = path.name[len(PREFIX) :].split("-")[0]
            if not owner.isdigit() or _alive(int(owner)):
                continue
            if root == Path(base):
                shutil.rmtree(path, ignore_errors=True)
            else:
                _remove_cgroup(path, timeout=0)


def _remove_cgroup(path: Path, timeout: float) -> bool:
    """rmdir a cgroup and its children, deepest first; False if one still has processes."""

    def attempt() -> bool:
        if not path.exists():
            return True
        for directory in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                directory.rmdir()
            except OSError:
                return False
        try:
            path.rmdir()
        except OSError:
            return False
        return True

    return _poll(attempt, timeout, interval=0.05)


class SystemdNamespace:
    """systemd as PID 1 of its own namespaces, with ``units`` installed.

    ``units`` maps a unit file name to its text; they are copied into the
    namespace's ``/run/systemd/system``. Give test units
    ``DefaultDependencies=no`` (or only basic dependencies) and start them
    with ``exec(["systemctl", "start", ...])``.
    """

    def __init__(
        self,
        units: Mapping[str, str] | None = None,
        *,
        base: str = WORK_BASE,
        max_life: float = MAX_LIFE,
        boot_timeout: float = BOOT_TIMEOUT,
    ) -> None:
        self.units = dict(units or {})
        self.base = base
        self.max_life = max_life
        self.boot_timeout = boot_timeout
        self._workdir: Path | None = None
        self.cgroup: Path | None = None
        #: systemd's pid as the host sees it.
        self.pid: int | None = None
        self.boot_seconds: float | None = None
        self._launcher: subprocess.Popen[bytes] | None = None
        self._console: threading.Thread | None = None
        self._master: int | None = None
        self._stopping = threading.Event()

    @property
    def workdir(self) -> Path:
        """The namespace's own dir: writable, and the same path inside and out."""
        if self._workdir is None:
            raise RuntimeError("the namespace was not started")
        return self._workdir

    # -- from the host ---------------------------------------------------------------

    @staticmethod
    def preflight() -> Path:
        """The cgroup2 mount to use; Unavailable with the reason when it cannot run here."""
        if os.geteuid() != 0:
            raise Unavailable("systemd in namespaces needs root")
        if not os.access(SYSTEMD, os.X_OK):
            raise Unavailable(f"{SYSTEMD} is missing (apt-get install systemd)")
        for tool, package in (
            ("unshare", "util-linux"),
            ("nsenter", "util-linux"),
            ("setpriv", "util-linux"),
            ("setsid", "util-linux"),
            ("timeout", "coreutils"),
            ("systemctl", "systemd"),
        ):
            if shutil.which(tool, path=PATH) is None:
                raise Unavailable(f"{tool} is missing (apt-get install {package})")
        return cgroup2_mount()

    def start(self) -> SystemdNamespace:
        """Boot; returns once ``systemctl is-system-running`` says ``running``."""
        cgroup_root = self.preflight()
        sweep_stale(self.base, cgroup_root)
        if any(Path(self.base).resolve().is_relative_to(p) for p in PRIVATE):
            raise Unavailable(
                f"{self.base} is hidden inside the namespace ({', '.join(PRIVATE)} are private)"
            )
        name = f"{PREFIX}{os.getpid()}-{os.urandom(4).hex()}"
        self._workdir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.base))
        unit_dir = self.workdir / "units"
        unit_dir.mkdir()
        units = {TARGET: "[Unit]\nDescription=selfheal test target\nDefaultDependencies=no\n", **self.units}
        for unit, text in units.items():
            (unit_dir / unit).write_text(text)
        self.cgroup = cgroup_root / name
        self.cgroup.mkdir()
        started = time.monotonic()
        self._launch()
        try:
            self._wait_running(started + self.boot_timeout)
        except BaseException:
            with contextlib.suppress(AssertionError):
                self.stop()
            raise
        self.boot_seconds = time.monotonic() - started
        return self

    def _launch(self) -> None:
        assert self.cgroup is not None
        master, slave = os.openpty()
        # No \n -> \r\n, no echo: console.log is what systemd wrote.
        tty.setraw(slave)
        inner = [
            sys.executable,
            "-I",
            "-S",
            os.path.abspath(__file__),
            "inside",
            str(self.workdir),
            str(self.cgroup),
            str(_ns_inode("mnt")),
            os.pathsep.join(kept_inside()),
        ]
        argv = [
            "setsid",
            "--ctty",
            "timeout",
            "-s",
            "KILL",
            f"{self.max_life:g}",
            "unshare",
            "--pid",
            "--fork",
            "--kill-child=SIGKILL",
            "--mount",
            "--propagation",
            "private",
            "--net",
            "--uts",
            "--ipc",
            *inner,
        ]
        try:
            self._launcher = subprocess.Popen(
                argv, stdin=slave, stdout=slave, stderr=slave, env={"PATH": PATH}, cwd="/"
            )
        finally:
            os.close(slave)
        self._master = master
        log = open(self.workdir / "console.log", "wb")  # noqa: SIM115 (closed by the thread)
        self._console = threading.Thread(target=_drain, args=(master, log, self._stopping), daemon=True)
        self._console.start()

    def _wait_running(self, deadline: float) -> None:
        assert self._launcher is not None
        pid_file = self.workdir / "pid"
        if not _poll(
            lambda: pid_file.exists() or self._launcher.poll() is not None, deadline - time.monotonic()
        ):
            raise BootFailed(f"the namespace did not start\n{self.console()}")
        if not pid_file.exists():
            raise BootFailed(f"the launcher exited {self._launcher.returncode}\n{self.console()}")
        self.pid = int(pid_file.read_text())
        state = ""
        while time.monotonic() < deadline:
            if not _alive(self.pid):
                break
            try:
                state = self.exec(
                    ["systemctl", "is-system-running", "--wait"],
                    timeout=max(0.1, deadline - time.monotonic()),
                ).stdout.strip()
            except subprocess.TimeoutExpired:
                break
            # Until PID 1 listens, systemctl says offline at once; after
            # that, --wait returns when the boot has ended either way.
            if state in ("running", "degraded", "maintenance", "stopping"):
                break
            time.sleep(0.01)
        if state != "running":
            failed = self.exec(["systemctl", "--failed", "--no-legend"]).stdout if _alive(self.pid) else ""
            raise BootFailed(f"systemd is {state or 'not running'}\n{failed}{self.console()}")

    def exec(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        timeout: float = 30,
        check: bool = False,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside every namespace of systemd, as root, in ``/``.

        It runs in no unit's cgroup (a process "in a unit" must be started by
        that unit), with a clean environment: PATH and whatever ``env`` adds.
        """
        if self.pid is None:
            raise RuntimeError("the namespace is not running")
        variables = {"PATH": PATH, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", **(env or {})}
        return subprocess.run(
            [
                "nsenter",
                "--target",
                str(self.pid),
                "--all",
                "env",
                "-i",
                *(f"{k}={v}" for k, v in variables.items()),
                *map(str, argv),
            ],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
            env={"PATH": PATH},
        )

    def systemctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return self.exec(["systemctl", *args], timeout=timeout)

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """``systemctl show -p ...`` as a dict."""
        props = properties or ("ActiveState", "SubState", "Result", "NRestarts", "MainPID")
        out = self.systemctl("show", "-p", ",".join(props), unit, timeout=10).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_unit(self, unit: str, timeout: float = 10, **expected: str) -> dict[str, str]:
        """Poll ``show`` until every given property has its value; the last ``show`` either way."""
        found: dict[str, str] = {}

        def done() -> bool:
            found.update(self.show(unit, *expected))
            return all(found.get(k) == v for k, v in expected.items())

        if not _poll(done, timeout, interval=0.05):
            raise AssertionError(f"{unit}: expected {expected}, still {found}")
        return found

    def install(self, units: Mapping[str, str]) -> None:
        """Add unit files after the boot (say, naming a file in the work dir), and reload."""
        for name, text in units.items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"{name!r} is not a unit file name")
            # rm first: a masked name is a symlink to /dev/null.
            write = 'rm -f "$1" && cat >"$1"'
            self.exec(["sh", "-c", write, "sh", f"/run/systemd/system/{name}"], input=text, check=True)
        self.systemctl("daemon-reload").check_returncode()

    def alive(self, pid: int | str) -> bool:
        """True while ``pid`` (a pid as seen inside) runs in the namespace."""
        proc = self.exec(["cat", f"/proc/{pid}/stat"], timeout=10)
        return proc.returncode == 0 and proc.stdout.rpartition(")")[2].split()[:1] != ["Z"]

    def console(self) -> str:
        """What systemd and the units wrote to the console so far."""
        if self._workdir is None or not (self._workdir / "console.log").exists():
            return ""
        return (self._workdir / "console.log").read_text(errors="replace")

    def stop(self, keep_workdir: bool = False) -> None:
        """Kill the namespace, remove its cgroup; AssertionError if anything is left.

        SIGKILL to PID 1 of a pid namespace kills every process in it: no
        unit's stop is waited for, and nothing can linger.
        """
        problems = []
        if self.pid is not None and _alive(self.pid):
            try:
                own = _ns_inode("pid", self.pid) != _ns_inode("pid")
            except OSError:
                own = False
            if own:
                os.kill(self.pid, signal.SIGKILL)
            pid = self.pid
            if not _poll(lambda: not _alive(pid), 10):
                problems.append(f"systemd (pid {self.pid}) survived SIGKILL")
        # Closing the pty hangs up what may be left of the launcher (a boot
        # that failed before systemd started): unshare dies of the SIGHUP.
        self._stopping.set()
        if self._console is not None:
            self._console.join(timeout=5)
            self._console = None
        if self._master is not None:
            os.close(self._master)
            self._master = None
        if self._launcher is not None:
            try:
                self._launcher.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._launcher.kill()
                self._launcher.wait()
                problems.append("the launcher outlived systemd")
        if self.cgroup is not None:
            if not _remove_cgroup(self.cgroup, timeout=10):
                procs = sorted(
                    {pid for f in self.cgroup.rglob("cgroup.procs") for pid in f.read_text().split()}
                )
                problems.append(f"cgroup {self.cgroup} still has processes {' '.join(procs)}")
            else:
                self.cgroup = None
        self.pid = None
        if self._workdir is not None and not keep_workdir and not problems:
            shutil.rmtree(self._workdir, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    def __enter__(self) -> SystemdNamespace:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _drain(master: int, log: BinaryIO, stopping: threading.Event) -> None:
    """Copy the console to its log until the pty's last writer is gone, or ``stopping``.

    Never blocked in read(): the master is closed only after this returns,
    so neither does a read hold it open nor can it read a reused fd number.
    """
    poller = select.poll()
    poller.register(master, select.POLLIN)
    with log:
        while not stopping.is_set():
            if not poller.poll(100):
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: no slave is open any more
                return
            if not chunk:
                return
            log.write(chunk)
            log.flush()


# -- inside the namespaces -------------------------------------------------------------


# mount(2) flags and unshare(2)'s CLONE_NEWCGROUP, from <sys/mount.h> and <sched.h>.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_BIND, MS_MOVE = 0x1000, 0x2000
CLONE_NEWCGROUP = 0x02000000


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
    libc.unshare.argtypes = [ctypes.c_int]
    return libc


def _mount(
    source: str | None, target: str, fstype: str | None = None, flags: int = 0, data: str = ""
) -> None:
    """mount(2) itself: a dozen mount(8) processes would double the boot time."""

    def b(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    if _libc().mount(b(source), target.encode(), b(fstype), flags, b(data or None)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} on {target} ({fstype or 'bind/move'}): {os.strerror(errno)}")


def _read_only(path: str) -> None:
    """Bind ``path`` to itself and make that mount read-only.

    MS_BIND on the remount: only this mount's flags change, not the
    filesystem's (without it, a remount of / would turn the host's root
    filesystem read-only too).
    """
    _mount(path, path, flags=MS_BIND)
    _mount(None, path, flags=MS_REMOUNT | MS_BIND | MS_RDONLY)


def kept_inside() -> list[str]:
    """This checkout and the Python running the tests, where the namespace's private /tmp would hide them.

    A CI clone may well live under /tmp: the tests run this checkout's
    selfheal and this virtualenv inside, so both stay visible, at the same
    paths, read-only.
    """
    here = Path(__file__).resolve().parents[2]
    paths = {str(here), str(Path(sys.prefix).resolve())}
    under_tmp = sorted(p for p in paths if Path(p).is_relative_to("/tmp"))
    # A path inside another kept one comes with it.
    return [p for p in under_tmp if not any(p != q and Path(p).is_relative_to(q) for q in under_tmp)]


def inside(workdir: str, cgroup: str, host_mnt_ns: str, kept: str = "") -> None:
    """PID 1 of the new namespaces: its cgroup, private mounts, the units; then exec systemd."""
    # Refuse to touch the mounts unless they are this namespace's own: a
    # remount of / in the host's mount namespace would make the host read-only.
    if os.getpid() != 1 or str(_ns_inode("mnt")) == host_mnt_ns:
        sys.exit("sysns: not in a private pid and mount namespace; refusing to mount")
    with open("/proc/self/status") as status:
        host_pid = next(line.split()[1] for line in status if line.startswith("NSpid:"))
    Path(cgroup, "cgroup.procs").write_text("0")
    # A cgroup namespace rooted in that cgroup: systemd sees its own subtree as /.
    if _libc().unshare(CLONE_NEWCGROUP) != 0:
        sys.exit(f"sysns: unshare(CLONE_NEWCGROUP): {os.strerror(ctypes.get_errno())}")
    console = os.ttyname(0) if os.isatty(0) else None

    # The work dir stays writable on a read-only /.
    _mount(workdir, workdir, flags=MS_BIND)
    _mount(None, "/", flags=MS_REMOUNT | MS_BIND | MS_RDONLY)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for path in ("/proc/sys", "/proc/sysrq-trigger"):
        if os.path.exists(path):
            _read_only(path)
    _mount("sysfs", "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
    # What must stay visible under /tmp is parked on /run while /tmp is
    # replaced, then moved back to its own path.
    keep = [path for path in kept.split(os.pathsep) if path]
    for index, path in enumerate(keep):
        os.mkdir(f"/run/.kept{index}")
        _mount(path, f"/run/.kept{index}", flags=MS_BIND)
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for index, path in enumerate(keep):
        os.makedirs(path)
        _mount(f"/run/.kept{index}", path, flags=MS_MOVE)
        os.rmdir(f"/run/.kept{index}")
    if console:
        # Parked on /run while /dev is replaced, then moved to /dev/console.
        Path("/run/.console").touch()
        _mount(console, "/run/.console", flags=MS_BIND)
    _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID, "mode=755")
    for name, (major, minor) in DEVICES.items():
        os.mknod(f"/dev/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(f"/dev/{name}", 0o666)
    for link, target in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ):
        os.symlink(target, f"/dev/{link}")
    if console:
        Path("/dev/console").touch()
        _mount("/run/.console", "/dev/console", flags=MS_MOVE)
        os.unlink("/run/.console")

    # /run comes first in systemd's search paths: a link to /dev/null there masks.
    masks = Path("/run/systemd/system-generators")
    masks.mkdir(parents=True)
    for name in generators():
        (masks / name).symlink_to("/dev/null")
    units = Path("/run/systemd/system")
    units.mkdir(parents=True)
    for name in masked_units():
        (units / name).symlink_to("/dev/null")
    for unit in Path(workdir, "units").iterdir():
        if (units / unit.name).is_symlink():
            (units / unit.name).unlink()
        shutil.copyfile(unit, units / unit.name)

    Path(workdir, "pid.tmp").write_text(host_pid)
    os.rename(Path(workdir, "pid.tmp"), Path(workdir, "pid"))
    setpriv = shutil.which("setpriv", path=PATH) or "setpriv"
    argv = [
        setpriv,
        "--bounding-set=" + ",".join(f"-{cap}" for cap in DROPPED_CAPS),
        SYSTEMD,
        "--system",
        f"--unit={TARGET}",
        "--log-target=console",
        "--log-level=info",
        "--default-standard-output=tty",
        "--default-standard-error=tty",
    ]
    os.execve(setpriv, argv, {"container": "selfheal-test", "PATH": PATH})


if __name__ == "__main__":
    if sys.argv[1:2] != ["inside"] or len(sys.argv) != 6:
        sys.exit(
            f"usage: {shlex.quote(sys.argv[0])} inside WORKDIR CGROUP MNT_NS KEPT (run by SystemdNamespace)"
        )
    inside(*sys.argv[2:])
