"""Journals read in worker processes: a fleet's million events on every core.

Reading and checking a journal line costs some microseconds of Python
(``selfheal.core.journal_line``), one core at a time: a monthly review of
a fleet's journals, a million events, would take half a minute on one
core. ``history`` and ``report`` hand their journals to workers instead.
Each worker is a fork of the command: it reads its group of journals with
the same function the command would run itself (``work``) and sends back
what that function yields, in batches, through its own pipe. The command
then takes the workers' streams as it would take its own.

What keeps this as safe as reading in one process, and its output the same:

- **A worker only reads.** It writes nothing but its pipe, and it ends with
  ``os._exit``: no inherited output buffer is flushed twice and no exit
  handler of the command runs in it.
- **Memory stays bounded.** A pipe holds a few batches; a worker whose
  batches are not taken waits.
- **The command ends its workers.** When it stops reading (``| head``, an
  error, Ctrl-C), ``close`` kills and reaps every worker. A worker whose
  command died finds its pipe closed and ends at its next write.
- **The same answer whatever the timing.** What a worker found besides its
  items (corrupt lines, unreadable files) is added to the command's
  ``Reading`` in the workers' order, never in the order they finished.
- **Nothing is lost silently.** A worker that dies (killed, out of memory)
  is named among the journals not read, after what it sent. An error
  raised in a worker is raised again in the command, as it would have been
  in one process.

Pickle carries the batches: both ends are this program, over a pipe no
one else holds.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import time

from selfheal.core.states import SelfhealError
from selfheal.edges.journals import Reading, Source

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from typing import BinaryIO, NoReturn

#: Items per message: enough that a message's cost per item is small, few enough to stream.
BATCH = 512
#: A compressed journal holds about this many times its size in lines (JSON lines compress well).
GZIP_RATIO = 10
#: Each worker's pipe, in bytes: Linux's default limit for a user (/proc/sys/fs/pipe-max-size).
PIPE_SIZE = 1 << 20
#: How long a worker that stopped sending has to end before it is killed, in seconds.
END_WAIT = 5.0


class Failed:
    """An error raised in a worker, to be raised again in the command."""

    def __init__(self, exc: BaseException) -> None:
        self.kind = type(exc).__name__
        self.text = str(exc)
        self.exit_code = exc.exit_code if isinstance(exc, SelfhealError) else None

    def error(self) -> Exception:
        if self.exit_code is None:
            return RuntimeError(f"{self.kind} in a journal reader: {self.text}")
        error = SelfhealError(self.text)
        error.exit_code = self.exit_code
        return error


def size(source: Source) -> int:
    """About how much reading ``source`` is: its bytes, a compressed file counted as unpacked."""
    total = 0
    for file in source.files:
        try:
            length = os.lstat(file).st_size
        except OSError:
            continue  # reading it will say why
        total += length * GZIP_RATIO if file.endswith(".gz") else length
    return total


def split(sources: list[Source], count: int) -> list[list[Source]]:
    """At most ``count`` groups of about equal size, each a run of consecutive sources.

    Consecutive, so that a worker's ties in time are broken in the sources'
    order, as one process breaks them (``journals.merged``).
    """
    sizes = [max(1, size(source)) for source in sources]
    count = max(1, min(count, len(sources)))
    groups: list[list[Source]] = []
    left = sum(sizes)
    start = 0
    for index in range(count):
        share = left / (count - index)  # what each remaining group should read
        end = start + 1
        taken = sizes[start]
        # Take the next source while that brings the group closer to its share,
        # leaving at least one for each group still to come.
        while end < len(sources) - (count - index - 1):
            if abs(taken + sizes[end] - share) > abs(taken - share):
                break
            taken += sizes[end]
            end += 1
        if index == count - 1:
            end = len(sources)
        groups.append(sources[start:end])
        left -= sum(sizes[start:end])
        start = end
    return groups


class Workers:
    """One worker per group, each running ``work(group, reading)``; ``streams`` are their items.

    Use it as a context manager: leaving it ends and reaps every worker.
    """

    def __init__(
        self,
        groups: list[list[Source]],
        work: Callable[[list[Source], Reading], Iterable[object]],
        reading: Reading,
    ) -> None:
        self.reading = reading
        self.pids: list[int] = []
        self.labels: list[str] = []
        self.inputs: list[BinaryIO] = []
        self.results: list[Reading | None] = []
        try:
            for group in groups:
                self._start(group, work)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def streams(self) -> list[Iterator[object]]:
        """Each worker's items in the order it yielded them."""
        return [self._receive(index) for index in range(len(self.pids))]

    def _start(self, group: list[Source], work: Callable[[list[Source], Reading], Iterable[object]]) -> None:
        from selfheal.edges.spawner import fork_worker

        # A worker holds no other worker's pipe: when the command stops
        # reading, each pipe's only reader is gone and its worker ends.
        earlier = [source.fileno() for source in self.inputs]
        pid, read_end = fork_worker(lambda fd: _serve(group, work, fd), earlier)
        try:
            # With room for a few batches, a worker runs ahead while the command
            # is not scheduled, rather than waiting for it (a quarter faster here).
            fcntl.fcntl(read_end, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
        except OSError:
            pass  # above the system's limit for this user: the default 64 KiB
        self.pids.append(pid)
        self.labels.append(", ".join(source.path for source in group))
        self.inputs.append(open(read_end, "rb", buffering=1 << 16))  # noqa: SIM115 - closed in close()
        self.results.append(None)

    def _receive(self, index: int) -> Iterator[object]:
        source = self.inputs[index]
        message: object = []
        while type(message) is list:
            yield from message
            try:
                message = pickle.load(source)
            except (EOFError, pickle.UnpicklingError):
                message = None  # the worker died, perhaps in the middle of a message
        if isinstance(message, Failed):
            raise message.error()
        if not isinstance(message, Reading):
            message = Reading()
            message.unreadable.append(f"{self.labels[index]}: reading stopped early ({self._end(index)})")
        self.results[index] = message
        if all(result is not None for result in self.results):
            for result in self.results:
                assert result is not None
                self.reading.add(result)

    def _end(self, index: int) -> str:
        """How worker ``index`` ended, in words, once it has."""
        status = self._reap(index)
        if status is None:
            return "its reader did not end"
        if os.WIFSIGNALED(status):
            import signal

            return f"its reader was killed by {signal.Signals(os.WTERMSIG(status)).name}"
        return f"its reader exited {os.waitstatus_to_exitcode(status)}"

    def _reap(self, index: int, kill: bool = False) -> int | None:
        """Worker ``index``'s raw status once it has ended; with ``kill``, ended first."""
        import signal

        from selfheal.edges.kill import kill_pid
        from selfheal.edges.spawner import wait_exit

        pid, self.pids[index] = self.pids[index], 0
        if not pid:
            return None
        if kill:
            kill_pid(pid, signal.SIGKILL)  # ours and not reaped yet, so the pid still names it
        status = wait_exit(pid, time.monotonic() + END_WAIT)
        if status is None and not kill:
            kill_pid(pid, signal.SIGKILL)
            status = wait_exit(pid, time.monotonic() + END_WAIT)
        return status

    def close(self) -> None:
        """Close the pipes, end every worker still running, and reap them all.

        A worker only reads: ending it leaves nothing half done.
        """
        for source in self.inputs:
            source.close()
        for index in range(len(self.pids)):
            self._reap(index, kill=True)


def _serve(
    group: list[Source], work: Callable[[list[Source], Reading], Iterable[object]], fd: int
) -> NoReturn:
    """The worker: ``work``'s items down the pipe in batches, then its ``Reading``; never returns."""
    code = 0
    try:
        import gc

        gc.disable()  # items stream through and hold no cycles
        with open(fd, "wb", buffering=1 << 16) as out:
            reading = Reading()
            try:
                batch: list[object] = []
                for item in work(group, reading):
                    batch.append(item)
                    if len(batch) == BATCH:
                        pickle.dump(batch, out, pickle.HIGHEST_PROTOCOL)
                        batch = []
                if batch:
                    pickle.dump(batch, out, pickle.HIGHEST_PROTOCOL)
                pickle.dump(reading, out, pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                code = 1
                pickle.dump(Failed(exc), out, pickle.HIGHEST_PROTOCOL)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


#: Below this much to read (about 60,000 events), one process reads faster than it starts workers.
LARGE = 16 << 20


def default_count(sources: list[Source]) -> int:
    """How many workers read ``sources`` when ``--jobs`` does not say: one per CPU, and one more.

    One more, because the command itself, taking the workers' items, is
    busy too; none for small journals, and none for one journal.
    """
    if len(sources) < 2 or sum(size(source) for source in sources) < LARGE:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return min(len(sources), cpus + 1)
