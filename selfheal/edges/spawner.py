"""Every process selfheal starts or kills goes through this module.

Nothing else calls ``posix_spawn``, ``Popen`` or ``kill``. The engine gets
a ``Spawner`` as a parameter, so unit tests swap in a recording fake and
only a few real-process tests exercise this code (as supervisor does with
its ``options`` object).

Processes are started with ``os.posix_spawn`` rather than ``subprocess``:
a healthy plugin run must not pay the import of ``subprocess`` (threading,
selectors, signal, ...), and posix_spawn gives us the two things we need
directly: control of the wrapped plugin's process group and a new
session for the heal runner.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time

try:
    # The C module: the ``signal`` wrapper imports enum, milliseconds we
    # would pay on every plugin run just to name three signals.
    import _signal as signals
except ImportError:  # pragma: no cover - other interpreters
    import signal as signals  # type: ignore[no-redef]

from selfheal.edges.proc import alive_since, create_time, descendants, find_executable, tree_of, wait_gone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

#: More plugin output than this is read and dropped, so a plugin printing
#: megabytes neither blocks on a full pipe nor floods Nagios.
MAX_OUTPUT = 64 * 1024
#: Signals Python ignores that children must get back at their defaults,
#: as subprocess's restore_signals does (a shell pipeline in a heal would
#: otherwise never see SIGPIPE).
_RESTORE = tuple(getattr(signals, n) for n in ("SIGPIPE", "SIGXFSZ") if hasattr(signals, n))


class PluginRun:
    """How a wrapped plugin ended and what it printed."""

    __slots__ = ("error", "exit_status", "signal", "stderr", "stdout", "timed_out")

    def __init__(
        self,
        exit_status: int | None = None,
        stdout: bytes = b"",
        stderr: bytes = b"",
        *,
        signal: int | None = None,
        timed_out: bool = False,
        error: str | None = None,
    ) -> None:
        self.exit_status = exit_status
        self.stdout = stdout
        self.stderr = stderr
        self.signal = signal
        self.timed_out = timed_out
        self.error = error


class ActionRun:
    """How a heal action ended."""

    __slots__ = ("duration", "error", "exit_code", "timed_out")

    def __init__(
        self, exit_code: int | None, duration: float, timed_out: bool = False, error: str | None = None
    ) -> None:
        self.exit_code = exit_code
        self.duration = duration
        self.timed_out = timed_out
        self.error = error


class Spawner:
    """The real thing: starts, waits for and kills processes."""

    def __init__(self) -> None:
        # A parent that ignores SIGCHLD (some daemons do) would make the
        # kernel reap our children before we can read their exit status.
        signals.signal(signals.SIGCHLD, signals.SIG_DFL)

    def run_plugin(self, argv: list[str], timeout: float, env: Mapping[str, str] | None = None) -> PluginRun:
        """Run a Nagios plugin (or any short command), reading stdout/stderr until it exits.

        On a timeout the plugin is killed with every child it forked. A
        child that keeps stdout open after the plugin exits does not hold
        us: we stop reading shortly after the plugin itself is gone. With
        ``env``, the program is looked up on that environment's PATH and
        runs with that environment, as ``subprocess`` would do.
        """
        # Nagios and NRPE start us as the leader of a process group and kill
        # that group on their own timeout: the plugin stays in it, so that it
        # dies with us rather than linger. Started any other way, the plugin
        # gets a group of its own, so that our timeout kills its tree at once.
        own_group = os.getpgrp() == os.getpid()
        group = {} if own_group else {"setpgroup": 0}
        # A path goes to posix_spawn as it is, so its own errno is reported.
        program = (
            argv[0] if env is None or "/" in argv[0] else find_executable(argv[0], os.get_exec_path(env))
        )
        if program is None:
            return PluginRun(error=f"cannot execute {argv[0]}: {os.strerror(errno.ENOENT)}")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            pid = os.posix_spawnp(
                program,
                argv,
                os.environ if env is None else env,
                file_actions=[
                    (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                ],
                **group,
                setsigdef=_RESTORE,
            )
        except OSError as exc:
            for fd in (out_r, out_w, err_r, err_w):
                os.close(fd)
            return PluginRun(error=f"cannot execute {argv[0]}: {exc.strerror}")
        os.close(out_w)
        os.close(err_w)
        deadline = time.monotonic() + timeout
        buffers: dict[int, bytearray] = {out_r: bytearray(), err_r: bytearray()}
        status: int | None = None
        timed_out = False
        linger: float | None = None  # once the plugin exited: stop reading then
        poller = select.poll()
        for fd in buffers:
            poller.register(fd, select.POLLIN)
        open_fds = set(buffers)
        try:
            while open_fds:
                now = time.monotonic()
                stop = deadline if linger is None else min(deadline, linger)
                if now >= stop:
                    timed_out = linger is None
                    break
                for fd, _ in poller.poll(min(stop - now, 0.05) * 1000):
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        poller.unregister(fd)
                        open_fds.discard(fd)
                    elif len(buffers[fd]) < MAX_OUTPUT:
                        buffers[fd] += chunk[: MAX_OUTPUT - len(buffers[fd])]
                if status is None and open_fds:
                    status = _reap(pid, block=False)
                    if status is not None:
                        linger = time.monotonic() + 0.2
            if status is None and not timed_out:
                # Both pipes closed but the plugin lives on (it closed them
                # itself): its exit status is still its answer, up to -t.
                status = _reap(pid, block=True, limit=max(0.0, deadline - time.monotonic()))
                timed_out = status is None
            if timed_out:
                if own_group:
                    # The group is ours too: kill the plugin's tree, found first.
                    tree = descendants(pid)
                    _kill_pid(pid, signals.SIGKILL)
                    _signal_each(tree, signals.SIGKILL)
                else:
                    _kill_group(pid, signals.SIGKILL)
            if status is None:
                status = _reap(pid, block=True, limit=2.0)
        finally:
            for fd in buffers:
                os.close(fd)
        run = PluginRun(stdout=bytes(buffers[out_r]), stderr=bytes(buffers[err_r]), timed_out=timed_out)
        if status is not None:
            if os.WIFSIGNALED(status):
                run.signal = os.WTERMSIG(status)
            else:
                run.exit_status = os.waitstatus_to_exitcode(status)
        return run

    def spawn_runner(self, spec: dict[str, object], log_fd: int) -> tuple[int, float | None]:
        """Start the heal runner fully detached; return its pid and create time.

        New session: Nagios kills the plugin's process group on timeout and
        the heal must survive that. stdin is /dev/null and stdout/stderr go
        to the attempt's log, never to the plugin's pipes: NRPE reads the
        plugin's stdout until EOF, and an inherited pipe would hang it.
        """
        from selfheal.core import jsonio

        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        argv = [sys.executable, "-m", "selfheal.runner", jsonio.dumps(spec)]
        _keep_fds_from_children()
        pid = os.posix_spawn(
            sys.executable,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
            setsigdef=_RESTORE,
        )
        return pid, self.create_time(pid)

    def spawn_hook(self, argv: list[str], payload: bytes, env: dict[str, str], log_fd: int) -> int:
        """Start an ``on_event`` command detached, ``payload`` on its stdin.

        Detached as the runner is (new session, output to a log, never the
        plugin's pipes), and never waited for. The payload is one event,
        far below a pipe's buffer, so writing it cannot block.
        """
        read_end, write_end = os.pipe()
        _keep_fds_from_children()
        try:
            pid = os.posix_spawnp(
                argv[0],
                argv,
                env,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, read_end, 0),
                    (os.POSIX_SPAWN_DUP2, log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, log_fd, 2),
                ],
                setsid=True,
                setsigdef=_RESTORE,
            )
        finally:
            os.close(read_end)
        try:
            os.set_blocking(write_end, False)
            os.write(write_end, payload)
        except OSError:
            pass  # the hook exited already, or does not read stdin
        finally:
            os.close(write_end)
        return pid

    def run_action(
        self, argv: list[str], timeout: float, kill_grace: float, on_start: Callable[[], None] | None = None
    ) -> ActionRun:
        """Run the heal in its own session; kill its whole tree on timeout.

        Only the action's own exit is waited for: an init script that starts
        a daemon returns while the daemon lives on, and that daemon is the
        heal, so it is left alone unless the action overran its timeout.
        """
        started = time.monotonic()
        try:
            pid = os.posix_spawnp(
                argv[0],
                argv,
                os.environ,
                file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)],
                setsid=True,
                setsigdef=_RESTORE,
            )
        except OSError as exc:
            return ActionRun(
                None, time.monotonic() - started, error=f"cannot execute {argv[0]}: {exc.strerror}"
            )
        if on_start is not None:
            on_start()
        status = _reap(pid, block=True, limit=max(0.0, timeout - (time.monotonic() - started)))
        timed_out = status is None
        if timed_out:
            # The tree is listed before the first signal: once the action
            # dies, children that left its group (setsid) are re-parented
            # and out of reach. The group signal also reaches members whose
            # parent died before the timeout.
            tree = [pid, *descendants(pid)]
            _kill_group(pid, signals.SIGTERM)
            kill_trees(tree, kill_grace)
            _kill_group(pid, signals.SIGKILL)
            status = _reap(pid, block=True, limit=kill_grace)
        duration = time.monotonic() - started
        if status is None:
            return ActionRun(None, duration, timed_out, error="action did not die after SIGKILL")
        if os.WIFSIGNALED(status):
            code = None if timed_out else 128 + os.WTERMSIG(status)
            return ActionRun(code, duration, timed_out)
        return ActionRun(os.waitstatus_to_exitcode(status), duration, timed_out)

    def create_time(self, pid: int) -> float | None:
        """The process's start time; with the pid, it names one process."""
        return create_time(pid)

    def runner_alive(self, pid: int, create_time: float | None) -> bool:
        """True if ``pid`` is still the process started at ``create_time``."""
        return alive_since(pid, create_time)


def _keep_fds_from_children() -> None:
    """Mark every descriptor above stderr close-on-exec.

    The caller may have handed us more than stdio: NRPE's command child
    passes its own output pipe on as a descriptor above 2. A runner that
    inherited it would hold that pipe open for the whole heal, and NRPE
    (which reads it until EOF) would wait for it. posix_spawn, unlike
    subprocess, does not close such descriptors by itself. Close-on-exec is
    a flag of our descriptor only, so the caller's copy is unaffected.
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: try the usual range
        fds = list(range(3, 256))
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def _reap(pid: int, *, block: bool, limit: float = 0.0) -> int | None:
    """waitpid with an optional time limit; the raw status, or None."""
    deadline = time.monotonic() + limit
    delay = 0.001
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            # Reaped elsewhere (SIGCHLD was ignored): the status is lost.
            # Report exit 255, which every caller treats as a failure.
            return 255 << 8
        if done:
            return status
        if not block or time.monotonic() >= deadline:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def kill_trees(roots: list, wait: float) -> tuple[int, list]:  # roots: pids or psutil.Process
    """SIGTERM each root and its descendants, wait up to ``wait`` s, SIGKILL what is left.

    Used for a heal that overran its timeout and by the process check's
    ``--kill`` heal. The trees are collected before the first signal: once a
    parent dies its children are re-parented and can no longer be found
    from it. Returns how many processes were signalled and those still
    alive 5 s after SIGKILL (a process stuck in the kernel).
    """
    import psutil

    tree: dict[int, psutil.Process] = {}
    for root in roots:
        try:
            process = psutil.Process(root) if isinstance(root, int) else root
        except psutil.Error:
            continue  # gone already
        for member in tree_of(process):
            tree[member.pid] = member
    members = list(tree.values())
    _signal_each(members, signals.SIGTERM)
    alive = wait_gone(members, wait)
    _signal_each(alive, signals.SIGKILL)
    return len(members), wait_gone(alive, 5)


def _signal_each(processes: list, signal: int) -> None:
    import psutil

    for process in processes:
        try:
            # psutil checks the create time first: a reused pid is left alone.
            process.send_signal(signal)
        except psutil.Error:
            pass


def _kill_pid(pid: int, signal: int) -> None:
    try:
        os.kill(pid, signal)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(pgid: int, signal: int) -> None:
    try:
        os.killpg(pgid, signal)
    except (ProcessLookupError, PermissionError):
        pass
