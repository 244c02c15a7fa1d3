"""Nagios's (or Naemon's) external command file: a passive check result, at once.

``PROCESS_SERVICE_CHECK_RESULT;host;service;code;output``, one line, written
to the command file Nagios reads (``command_file=`` in nagios.cfg: a FIFO
for Nagios 4, which Naemon and older Nagios read the same way). The line is
the whole command language: a newline in the output would end it and start
a second command of the writer's choosing, so the output is folded onto one
line and the host and service may not hold a ``;`` or a control character.

Never blocking: the file is opened with ``O_NONBLOCK``, so a FIFO nobody
reads (Nagios stopped) fails at once with ``ENXIO``; a full FIFO (Nagios
busy) is waited for up to a bound, then given up. One line is at most
``PIPE_BUF`` bytes, so a FIFO takes it whole or not at all, and other
writers' lines cannot be interleaved into it.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import time

#: The default bound on waiting for room in a full FIFO.
SEND_TIMEOUT = 2.0
#: Linux's PIPE_BUF: a write this size or smaller reaches a FIFO whole.
LINE_MAX = 4096
_KEYS = ("command_file", "host", "service")


class NagiosTarget:
    """Where to report: the command file, and the service as Nagios names it."""

    __slots__ = ("command_file", "host", "service")

    def __init__(self, command_file: str, host: str, service: str) -> None:
        self.command_file = command_file
        self.host = host
        self.service = service

    @classmethod
    def from_json(cls, data: object) -> NagiosTarget:
        """The target ``data`` describes; ValueError naming the key that is wrong."""
        if not isinstance(data, dict):
            raise ValueError("report_to nagios must be a mapping with command_file, host and service")
        for key in data:
            if key not in _KEYS:
                raise ValueError(f"{str(key)[:40]}: unknown key (allowed: {', '.join(_KEYS)})")
        for key in _KEYS:
            if key not in data:
                raise ValueError(f"{key}: missing")
            value = data[key]
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{key}: must be a non-empty string")
            if any(ord(c) < 32 or ord(c) == 127 for c in value):
                raise ValueError(f"{key}: must not hold a control character (a newline ends a command)")
        if not str(data["command_file"]).startswith("/"):
            raise ValueError("command_file: must be an absolute path (nagios.cfg's command_file)")
        for key in ("host", "service"):
            if ";" in str(data[key]):
                raise ValueError(f"{key}: must not hold ';', which separates a command's fields")
            if str(data[key]).startswith("$") and str(data[key]).endswith("$"):
                raise ValueError(f"{key}: {data[key]} is a Nagios macro that was not expanded")
        return cls(str(data["command_file"]), str(data["host"]), str(data["service"]))

    def to_json(self) -> dict[str, object]:
        return {"command_file": self.command_file, "host": self.host, "service": self.service}

    def __repr__(self) -> str:
        return f"NagiosTarget({self.to_json()!r})"


def one_line(text: str) -> str:
    """``text`` on one line: every control character (newline, CR, NUL, tab...) becomes a space."""
    return "".join(" " if ord(c) < 32 or ord(c) == 127 else c for c in text).strip()


def command_line(target: NagiosTarget, state: int, output: str, now: float) -> bytes:
    """The external command, newline-terminated, at most ``LINE_MAX`` bytes.

    The output is the command's last field: Nagios reads it up to the end
    of the line, so a ``;`` in it is text, while a newline would be a
    second command; it is folded onto one line and cut to fit.
    """
    if state not in (0, 1, 2, 3):
        raise ValueError(f"not a Nagios state: {state!r}")
    head = f"[{int(now)}] PROCESS_SERVICE_CHECK_RESULT;{one_line(target.host)};{one_line(target.service)};{state};"
    room = LINE_MAX - len(head.encode()) - 1
    if room <= 0:
        raise ValueError("host and service names are too long for one command")
    body = one_line(output).encode("utf-8", "replace")
    if len(body) > room:
        # Cut on a character boundary: Nagios logs the output as text.
        body = body[:room].decode("utf-8", "ignore").encode()
    return head.encode() + body + b"\n"


def send(target: NagiosTarget, state: int, output: str, comment: str | None = None) -> str | None:
    """Write one passive result to the command file; None when written, else why not. Never raises.

    ``comment`` is not sent: a command file has no comment to a passive
    result, and an ``ADD_SVC_COMMENT`` per heal would pile up in the UI;
    the note is in the output instead.
    """
    del comment
    try:
        line = command_line(target, state, output, time.time())
    except ValueError as exc:
        return str(exc)
    return write_line(target.command_file, line, SEND_TIMEOUT)


def write_line(path: str, line: bytes, timeout: float) -> str | None:
    """Append ``line`` to the FIFO or regular file at ``path``, waiting at most ``timeout``; why not, or None."""
    try:
        # Refused before opening: opening a device for writing can act on it.
        kind = os.stat(path).st_mode
    except OSError as exc:
        return f"command file {path}: {exc.strerror}"
    if not (stat.S_ISFIFO(kind) or stat.S_ISREG(kind)):
        return f"command file {path}: not a FIFO or a regular file"
    flags = os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return f"command file {path}: nobody is reading it (is Nagios running?)"
        return f"command file {path}: {exc.strerror}"
    try:
        kind = os.fstat(fd).st_mode  # the file opened, not the one stat() saw
        if not (stat.S_ISFIFO(kind) or stat.S_ISREG(kind)):
            return f"command file {path}: not a FIFO or a regular file"
        deadline = time.monotonic() + timeout
        while True:
            try:
                written = os.write(fd, line)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return f"command file {path}: full for {timeout:g}s (is Nagios reading it?)"
                select.select([], [fd], [], min(left, 0.1))
                continue
            except OSError as exc:
                if exc.errno == errno.EPIPE:
                    return f"command file {path}: its reader went away"
                return f"command file {path}: {exc.strerror}"
            if written != len(line):
                return f"command file {path}: only {written} of {len(line)} bytes written"
            return None
    finally:
        os.close(fd)
