"""Killing processes: whole trees, process groups, pids. Every kill goes through here.

With ``selfheal.edges.spawner`` (which starts them) the only code that
signals a process: two small modules to audit. psutil checks each
process's create time before a signal, so a reused pid is left alone.
Loaded only when something is killed: never on a healthy run.
"""

from __future__ import annotations

import os

from selfheal.edges.proc import tree_of, wait_gone

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from psutil import Process

# The C module, as in the spawner: the ``signal`` wrapper imports enum.
if TYPE_CHECKING:
    import signal as signals
else:
    try:
        import _signal as signals
    except ImportError:  # pragma: no cover - other interpreters
        import signal as signals


def kill_trees(roots: Iterable[int | Process], wait: float) -> tuple[int, list[Process]]:
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
    signal_each(members, signals.SIGTERM)
    alive = wait_gone(members, wait)
    signal_each(alive, signals.SIGKILL)
    return len(members), wait_gone(alive, 5)


def signal_each(processes: list[Process], signal: int) -> None:
    import psutil

    for process in processes:
        try:
            # psutil checks the create time first: a reused pid is left alone.
            process.send_signal(signal)
        except psutil.Error:
            pass


def kill_pid(pid: int, signal: int) -> None:
    try:
        os.kill(pid, signal)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(pgid: int, signal: int) -> None:
    try:
        os.killpg(pgid, signal)
    except (ProcessLookupError, PermissionError):
        pass
