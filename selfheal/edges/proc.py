"""What the system says about processes: ``/proc``, psutil, cgroups.

Finding a process, its tree, its cgroup and its start time. Starting processes is the spawner's alone, and
signalling them the spawner's and ``selfheal.edges.kill``'s.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from psutil import Process


NO_PROC = ("", 0.0)  # /proc is not there: ask psutil


_boot_time: list[float] = []


def proc_stat(pid: int) -> tuple[str, float] | None:
    """A process's state letter and start time, read from ``/proc``.

    The start time is computed as psutil computes ``create_time()`` on
    Linux (boot time plus start ticks), so records written either way
    compare equal; reading it here spares a heal the import of psutil.
    None when there is no such process; ``NO_PROC`` without ``/proc``.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            data = stream.read()
    except FileNotFoundError:
        return None if os.path.isdir("/proc/self") else NO_PROC
    if not _boot_time:
        with open("/proc/stat", "rb") as stream:
            btime = [line for line in stream if line.startswith(b"btime ")]
        if not btime:
            return NO_PROC
        _boot_time.append(float(btime[0].split()[1]))
    # The command name (field 2) may hold spaces and parentheses: split
    # after its last ')'. Field 3 is the state, field 22 the start ticks.
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode("ascii", "replace"), int(fields[19]) / os.sysconf("SC_CLK_TCK") + _boot_time[0]


def tree_of(process: Process) -> list[Process]:
    """The process and all its descendants; [] when it is already gone."""
    import psutil

    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return []


def descendants(pid: int) -> list[Process]:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def wait_gone(processes: list[Process], timeout: float) -> list[Process]:
    """The processes still alive after up to ``timeout`` seconds.

    A zombie counts as gone: it has exited, and reaping it is its
    parent's business (which psutil.wait_procs would wait for).
    """
    import psutil

    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
            except psutil.Error:
                continue
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def create_time(pid: int) -> float | None:
    """The process's start time; with the pid, it names one process."""
    try:
        found = proc_stat(pid)
    except OSError:
        found = NO_PROC
    if found is not NO_PROC:
        return None if found is None else found[1]
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def alive_since(pid: int, create_time: float | None) -> bool:
    """True if ``pid`` is still the process started at ``create_time``.

    The pid alone could have been reused by an unrelated process since.
    """
    try:
        found = proc_stat(pid)
    except OSError:
        # /proc/PID/stat exists but cannot be read: assume it is ours
        # and alive, so we never start a second action beside it.
        return True
    if found is not NO_PROC:
        if found is None:
            return False
        state, started = found
        return create_time is not None and abs(started - create_time) < 0.05 and state != "Z"
    import psutil

    try:
        process = psutil.Process(pid)
        same = create_time is not None and abs(process.create_time() - create_time) < 0.05
        return same and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        # Exists but cannot be inspected: assume it is ours and alive, so
        # we never start a second action beside it.
        return True


#: Where systemd says it booted the system as PID 1 (sd_booted(3)).
SYSTEMD_BOOTED = "/run/systemd/system"


def systemd_booted(marker: str | None = None) -> bool:
    """True where systemd is PID 1: ``systemctl`` and ``systemd-run`` can work."""
    return os.path.isdir(marker or SYSTEMD_BOOTED)


def own_unit_cgroup(unit: str) -> str | None:
    """This process's cgroup (v2) directory when it is the cgroup of ``unit``, else None.

    A runner started as a transient unit owns its cgroup: every process of
    its heal is in there, even one that left the tree with setsid. A runner
    started any other way shares its caller's cgroup (NRPE's, say), which
    is none of its business: then None.
    """
    try:
        with open("/proc/self/cgroup") as lines:
            path = next((line[3:].strip() for line in lines if line.startswith("0::")), None)
    except OSError:
        return None
    if not path or os.path.basename(path) != unit:
        return None
    # The cgroup is the one under a cgroup2 mount that lists this process:
    # mountinfo may still list mounts a later one hides (a hybrid host's
    # /sys/fs/cgroup/unified under a container's fresh /sys), so the last
    # mount that holds us wins.
    for base in reversed(_cgroup2_mounts()):
        directory = os.path.join(base, path.lstrip("/"))
        if str(os.getpid()) in cgroup_pids_of(directory):
            return directory
    return None


def cgroup_pids_of(directory: str) -> list[str]:
    try:
        with open(os.path.join(directory, "cgroup.procs")) as procs:
            return procs.read().split()
    except OSError:
        return []


def cgroup_pids(directory: str) -> list[int]:
    """Every process in the cgroup ``directory`` and the cgroups below it."""
    return [int(pid) for current, _, _ in os.walk(directory) for pid in cgroup_pids_of(current)]


def _cgroup2_mounts() -> list[str]:
    mounts = []
    try:
        with open("/proc/self/mountinfo") as lines:
            for line in lines:
                fields, _, rest = line.partition(" - ")
                if rest.split()[:1] == ["cgroup2"]:
                    mounts.append(fields.split()[4])
    except OSError:
        pass
    return mounts
