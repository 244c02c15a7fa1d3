"""The audit journal: JSON Lines, one event per line, appended atomically.

Each event is one ``write()`` on an O_APPEND descriptor, so concurrent
writers never interleave inside a line. Text from plugins goes through
JSON encoding (``jsonio``), which escapes newlines: a plugin cannot forge a line.
"""

from __future__ import annotations

import os
import stat
import time

from selfheal.core import jsonio
from selfheal.core.states import StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Protocol

    class Outputs(Protocol):
        """Where events also go: ``selfheal.hooks.Outputs``, a layer above this one."""

        def event(self, entry: Mapping[str, object]) -> None: ...

        def close(self) -> None: ...


EVENT_TYPES = (
    "attempt",
    "action_end",
    "action_lost",
    "recovered",
    "skipped_cooldown",
    "gave_up",
    "paused",
    "reset",
    "resumed",
    "state_error",
    "forgotten",
    # The fleet budget (docs/fleet.md), each with its group and slot.
    "fleet_acquired",
    "fleet_released",
    "fleet_deferred",
    "fleet_held",
    "fleet_unreachable",
)


def iso_utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}Z"


class Journal:
    """Appends events to one JSON Lines file."""

    def __init__(self, path: str, host: str | None = None, outputs: Outputs | None = None) -> None:
        self.path = path
        # os.uname() is gethostname() without importing socket (and enum).
        self.host = host or os.uname().nodename
        self.fd = -1
        # Where events also go (syslog, on_event, metrics): selfheal.hooks.Outputs.
        self.outputs = outputs
        self.written = 0

    def open(self) -> None:
        """Open now, so a heal is refused (row 4) if it could not be journaled."""
        if self.fd >= 0:
            return
        from selfheal.edges.files import open_regular

        self._vet_dir()
        owner = self._service_owner()
        if owner:
            self._create_owned(owner)
        try:
            # Never via a symlink, never a FIFO (which would block with the
            # record's lock held), and root never appends to a hard link.
            self.fd = open_regular(
                self.path,
                os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                0o640,
                shown=f"journal {self.path}",
                single_link=os.geteuid() == 0,
            )
        except FileNotFoundError as exc:
            raise StateError(f"journal {self.path} cannot be written: {exc.strerror}") from None
        if owner:
            try:
                if os.fstat(self.fd).st_uid == 0:  # made by an older version, or elsewhere
                    os.fchown(self.fd, owner, -1)
            except OSError:
                pass  # the journal still works for this run; doctor reports ownership

    def _vet_dir(self) -> None:
        """Refuse a journal dir where anyone may replace the journal.

        The state dir is vetted by StateDir.open; a journal elsewhere
        (``journal:``, ``--journal``) gets the same rule, except that a
        sticky dir such as /tmp is accepted: there, others cannot remove
        or rename our file.
        """
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            mode = os.stat(directory).st_mode
        except OSError:
            return  # the open that follows reports it
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            raise StateError(f"journal dir {directory} is writable by everyone; run: chmod o-w {directory}")

    def _service_owner(self) -> int:
        """The journal dir's owner when root writes in a service user's dir, else 0.

        Root appending to a service user's journal (an operator's run by
        hand, a cron job) must leave a file that user can still append to:
        otherwise every later heal by that user is refused (row 4), because
        nothing is started that could not be journaled.
        """
        if os.geteuid() != 0:
            return 0
        try:
            return os.stat(os.path.dirname(os.path.abspath(self.path))).st_uid
        except OSError:
            return 0

    def _create_owned(self, owner: int) -> None:
        # Created as that user's file from the start (see state.create_owned).
        from selfheal.edges.files import create_owned

        if os.path.lexists(self.path):
            return
        try:
            dir_fd = os.open(
                os.path.dirname(os.path.abspath(self.path)), os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
            )
            try:
                create_owned(dir_fd, os.path.basename(self.path), owner, 0o640)
            finally:
                os.close(dir_fd)
        except OSError:
            pass  # the open that follows reports what matters

    def write(self, event: dict[str, object], now: float | None = None) -> None:
        self.open()
        now = time.time() if now is None else now
        entry = {"ts": iso_utc(now), "host": self.host, **event}
        line = jsonio.dumps(entry, default=str) + "\n"
        try:
            os.write(self.fd, line.encode("utf-8", "replace"))
        except OSError as exc:
            raise StateError(f"journal {self.path} cannot be written: {exc.strerror}") from None
        self.written += 1
        if self.outputs is not None:
            self.outputs.event(entry)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.outputs is not None and self.written:
            self.outputs.close()
            self.written = 0
