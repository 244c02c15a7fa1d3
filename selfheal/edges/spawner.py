"""Every process selfheal starts goes through this module; every kill, through ``edges.kill``.

Nothing else calls ``posix_spawn``, ``Popen`` or ``kill``. The engine gets a
``Spawner`` as a parameter, so unit tests swap in a recording fake (as
supervisor does with its ``options`` object). ``os.posix_spawn``, not
``subprocess``: a healthy plugin run must not pay for importing
``subprocess``, and posix_spawn gives what we need directly: control of the
wrapped plugin's process group, and a new session for the heal runner.
"""

from __future__ import annotations

import errno
import os
import select
import sys
import time

# Only what a healthy plugin run needs is imported here; finding and
# killing process trees (edges.proc, edges.kill) is loaded when it happens.
from selfheal.core.output import PluginRun
from selfheal.core.record import ActionRun
from selfheal.edges.files import keep_fds_from_children

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any, NoReturn

    from psutil import Process

    from selfheal.edges.transient import RunnerStart

# The C module: the ``signal`` wrapper imports enum, milliseconds we would
# pay on every plugin run just to name three signals. It has no stub: the
# type checker reads the wrapper, which has the same names.
if TYPE_CHECKING:
    import signal as signals
else:
    try:
        import _signal as signals
    except ImportError:  # pragma: no cover - other interpreters
        import signal as signals

#: More plugin output than this is read and dropped, so a plugin printing
#: megabytes neither blocks on a full pipe nor floods Nagios.
MAX_OUTPUT = 64 * 1024
#: Signals Python ignores that children must get back at their defaults,
#: as subprocess's restore_signals does (a shell pipeline in a heal would
#: otherwise never see SIGPIPE).
_RESTORE = tuple(getattr(signals, n) for n in ("SIGPIPE", "SIGXFSZ") if hasattr(signals, n))


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
        group: dict[str, Any] = {} if own_group else {"setpgroup": 0}
        # A path goes to posix_spawn as it is, so its own errno is reported.
        program: str | None = argv[0]
        if env is not None and "/" not in argv[0]:
            from selfheal.edges.files import find_executable

            program = find_executable(argv[0], os.get_exec_path(env))
        if program is None:
            return PluginRun(error=f"cannot execute {argv[0]}: {os.strerror(errno.ENOENT)}")
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        dup2 = os.POSIX_SPAWN_DUP2
        stdio = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0), (dup2, out_w, 1), (dup2, err_w, 2)]
        try:
            environ = os.environ if env is None else env
            pid = os.posix_spawnp(program, argv, environ, file_actions=stdio, **group, setsigdef=_RESTORE)
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
                    status = reap(pid)
                    if status is not None:
                        linger = time.monotonic() + 0.2
            if status is None and not timed_out:
                # Both pipes closed but the plugin lives on (it closed them
                # itself, or it is exiting right now: the kernel closes the
                # pipes a moment before the exit status can be read): its
                # exit status is still its answer, up to -t.
                status = wait_exit(pid, deadline)
                timed_out = status is None
            if timed_out:
                from selfheal.edges.kill import kill_group, kill_pid, signal_each
                from selfheal.edges.proc import descendants

                if own_group:
                    # The group is ours too: kill the plugin's tree, found first.
                    tree = descendants(pid)
                    kill_pid(pid, signals.SIGKILL)
                    signal_each(tree, signals.SIGKILL)
                else:
                    kill_group(pid, signals.SIGKILL)
            if status is None:
                status = wait_exit(pid, time.monotonic() + 2.0)
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

    def spawn_runner(self, spec: dict[str, object], log_fd: int) -> RunnerStart:
        """Start the heal runner fully detached; return its pid, create time and how.

        Where systemd is PID 1: a transient unit (``selfheal.edges.transient``
        says why). Elsewhere, or when that fails, a new session, and why.

        New session: Nagios kills the plugin's process group on timeout and
        the heal must survive that. stdin is /dev/null and stdout/stderr go
        to the attempt's log, never to the plugin's pipes: NRPE reads the
        plugin's stdout until EOF, and an inherited pipe would hang it.
        """
        # Only on the heal path: a healthy check never loads the unit's code.
        from selfheal.core import jsonio
        from selfheal.edges.transient import SETSID, RunnerStart, launcher

        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        keep_fds_from_children()
        systemd_run, reason = launcher(env)
        if systemd_run is not None:
            started = self._spawn_unit(systemd_run, spec, env)
            if isinstance(started, RunnerStart):
                return started
            reason = started
        stdin = (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)
        pid = _detached([sys.executable, "-m", "selfheal.runner", jsonio.dumps(spec)], env, stdin, log_fd)
        return RunnerStart(pid, self.create_time(pid), SETSID, fallback_reason=reason)

    def _spawn_unit(
        self, systemd_run: str, spec: dict[str, object], env: dict[str, str]
    ) -> RunnerStart | str:
        """``systemd-run`` the runner; its RunnerStart, or why it failed."""
        from selfheal.edges.transient import SYSTEMD_RUN, UNIT_TIMEOUT, RunnerStart, unit_command

        unit, argv = unit_command(systemd_run, spec, env)
        run = self.run_plugin(argv, UNIT_TIMEOUT, env=env)
        if run.error or run.timed_out or run.exit_status != 0:
            said = (run.stderr or run.stdout).decode("utf-8", "replace").strip().splitlines()
            why = run.error or ("timed out" if run.timed_out else f"exit {run.exit_status}")
            return f"systemd-run failed: {said[-1] if said else why}"
        pid = self.main_pid(systemd_run, unit, env)
        return RunnerStart(pid, self.create_time(pid) if pid else None, SYSTEMD_RUN, unit=unit)

    def main_pid(self, systemd_run: str, unit: str, env: Mapping[str, str]) -> int | None:
        """The unit's MainPID, from systemd itself; None when it cannot tell.

        The runner was exec'd before systemd-run returned, so this is the
        runner's pid, unless it is gone already (a heal that ended at once:
        then 0, and the runner has recorded how it ended).
        """
        from selfheal.edges.transient import UNIT_TIMEOUT

        systemctl = os.path.join(os.path.dirname(systemd_run), "systemctl")
        run = self.run_plugin(
            [systemctl, "show", "--property=MainPID", "--value", unit], UNIT_TIMEOUT, env=env
        )
        try:
            pid = int(run.stdout.strip() or b"0") if run.exit_status == 0 else 0
        except ValueError:
            pid = 0
        return pid or None

    def spawn_hook(self, argv: list[str], payload: bytes, env: dict[str, str], log_fd: int) -> int:
        """Start an ``on_event`` command detached, ``payload`` on its stdin.

        Detached as the runner is (new session, output to a log, never the
        plugin's pipes), and never waited for. The payload is one event,
        far below a pipe's buffer, so writing it cannot block.
        """
        read_end, write_end = os.pipe()
        keep_fds_from_children()
        try:
            pid = _detached(argv, env, (os.POSIX_SPAWN_DUP2, read_end, 0), log_fd)
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
        self,
        argv: list[str],
        timeout: float,
        kill_grace: float,
        on_start: Callable[[], None] | None = None,
        cgroup: str | None = None,
    ) -> ActionRun:
        """Run the heal in its own session; kill its whole tree on timeout.

        Only the action's own exit is waited for: an init script that starts
        a daemon returns while the daemon lives on, and that daemon is the
        heal, so it is left alone unless the action overran its timeout.
        ``cgroup`` is the runner's own unit's cgroup, if it has one: on
        timeout every other process in it is killed too, which catches what
        left the tree (setsid, then its parent exited).
        """
        from selfheal.edges.kill import kill_group, kill_trees
        from selfheal.edges.proc import cgroup_pids, descendants

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
        status = wait_exit(pid, started + timeout)
        timed_out = status is None
        if timed_out:
            # The tree is listed before the first signal: once the action
            # dies, children that left its group (setsid) are re-parented
            # and out of reach. The group signal also reaches members whose
            # parent died before the timeout.
            tree: list[int | Process] = [pid, *descendants(pid)]
            if cgroup is not None:
                tree += [member for member in cgroup_pids(cgroup) if member != os.getpid()]
            kill_group(pid, signals.SIGTERM)
            kill_trees(tree, kill_grace)
            kill_group(pid, signals.SIGKILL)
            status = wait_exit(pid, time.monotonic() + kill_grace)
            if cgroup is not None:
                # Forked while the rest was dying (a loaded host widens that
                # window): nothing of the heal may outlive its timeout.
                deadline = time.monotonic() + kill_grace
                while time.monotonic() < deadline:
                    rest = [member for member in cgroup_pids(cgroup) if member != os.getpid()]
                    if not rest:
                        break
                    kill_trees(rest, 0)
        duration = time.monotonic() - started
        if status is None:
            return ActionRun(None, duration, timed_out, error="action did not die after SIGKILL")
        if os.WIFSIGNALED(status):
            code = None if timed_out else 128 + os.WTERMSIG(status)
            return ActionRun(code, duration, timed_out)
        return ActionRun(os.waitstatus_to_exitcode(status), duration, timed_out)

    def create_time(self, pid: int) -> float | None:
        """The process's start time; with the pid, it names one process."""
        from selfheal.edges.proc import create_time

        return create_time(pid)

    def runner_alive(self, pid: int, create_time: float | None) -> bool:
        """True if ``pid`` is still the process started at ``create_time``."""
        from selfheal.edges.proc import alive_since

        return alive_since(pid, create_time)


def _detached(argv: list[str], env: Mapping[str, str], stdin: tuple[object, ...], log_fd: int) -> int:
    """Start ``argv`` in a new session, stdin as ``stdin`` says, stdout and stderr on the log."""
    dup2 = os.POSIX_SPAWN_DUP2
    actions = [stdin, (dup2, log_fd, 1), (dup2, log_fd, 2)]
    return os.posix_spawnp(argv[0], argv, env, file_actions=actions, setsid=True, setsigdef=_RESTORE)


def fork_worker(serve: Callable[[int], NoReturn], close: Iterable[int] = ()) -> tuple[int, int]:
    """A fork of this command that runs ``serve(fd)``, writing to a pipe; its pid and the pipe's read end.

    For the reading commands' workers (``selfheal.edges.workers``), nothing
    exec'd. The child closes ``close`` (earlier workers' pipes); Ctrl-C and a
    closed pipe end it quietly, and SIGINT is blocked until it is at its default.
    """
    read_end, write_end = os.pipe()
    interrupt = {signals.SIGINT}
    signals.pthread_sigmask(signals.SIG_BLOCK, interrupt)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                for number in (signals.SIGINT, *_RESTORE):
                    signals.signal(number, signals.SIG_DFL)
                signals.pthread_sigmask(signals.SIG_UNBLOCK, interrupt)
                for fd in (*close, read_end):
                    os.close(fd)
                serve(write_end)
            finally:
                os._exit(1)  # never back into the command's code
    finally:
        signals.pthread_sigmask(signals.SIG_UNBLOCK, interrupt)
    os.close(write_end)
    return pid, read_end


def wait_exit(pid: int, deadline: float) -> int | None:
    """The raw exit status of our child ``pid``, waiting until ``deadline`` (monotonic); None then.

    A pidfd becomes readable the moment the process exits, so this returns
    at once; polling ``waitpid`` would sleep first (a millisecond, on most
    healthy plugin runs: the pipes close just before the exit is visible).
    """
    status = reap(pid)
    if status is not None:
        return status
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # before Linux 5.3, not Linux, or reaped elsewhere
        delay = 0.001
        while status is None and time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
            status = reap(pid)
        return status
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.poll(max(0.0, deadline - time.monotonic()) * 1000)
    finally:
        os.close(pidfd)
    return reap(pid)


def reap(pid: int) -> int | None:
    """waitpid without waiting: the raw status, or None while ``pid`` runs."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        # Reaped elsewhere (SIGCHLD was ignored): the status is lost.
        # Report exit 255, which every caller treats as a failure.
        return 255 << 8
    return status if done else None
