"""Reading the journal, and ``selfheal history``.

The journal may have been rotated by logrotate: ``journal.jsonl.1``,
``journal.jsonl.2.gz`` and so on hold older events (with ``dateext``,
``journal.jsonl-20261128`` too). They are read oldest first, so events come
out newest last. A line that is not a JSON event (a torn write from a full
disk, an editor's stray keystroke) is skipped and counted, never fatal: an
operator reading history at 3 a.m. needs the rest of it. Each line goes
through ``selfheal.core.journal_line``, which drops an odd field (counted)
rather than the event. A rotated name that is not a regular file (a FIFO,
a directory, a symlink) is skipped and named, not read and not fatal.
Lines are read in bounded pieces: an endless line is one corrupt line, not
all of memory.
"""

from __future__ import annotations

import os

from selfheal.commands import common as ops
from selfheal.core.argv import HELP_OPTIONS, Option
from selfheal.core.events import describe
from selfheal.core.journal_line import parse_line, parse_ts
from selfheal.core.states import SelfhealError, Usage

__all__ = ["JournalReading", "journal_files", "main", "parse_ts", "read_journal"]

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from io import BufferedIOBase
    from typing import TextIO


class JournalReading:
    """The events read (oldest first), the corrupt lines skipped, the files."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self.skipped = 0
        # Odd fields dropped from events that were kept (see journal_line).
        self.dropped = 0
        self.files: list[str] = []
        # Files that could not be read (not a regular file, gone), and why.
        self.unreadable: list[str] = []


def journal_files(path: str) -> list[str]:
    """The journal and its rotated copies, oldest first."""
    directory, base = os.path.split(path)
    try:
        entries = os.listdir(directory or ".")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SelfhealError(f"cannot list {directory}: {exc.strerror}") from None
    rotated = []
    for entry in entries:
        if not entry.startswith(base) or entry == base:
            continue
        suffix = entry[len(base) :]
        plain = suffix[:-3] if suffix.endswith(".gz") else suffix
        if plain[:1] == "." and plain[1:].isdigit():
            rotated.append((0, -int(plain[1:]), entry))  # .3 is older than .1
        elif plain[:1] == "-" and plain[1:].isdigit():
            rotated.append((0, int(plain[1:]), entry))  # dateext: -20261128
    files = [os.path.join(directory, entry) for _, _, entry in sorted(rotated)]
    if os.path.exists(path):
        files.append(path)
    return files


#: A journal line longer than this is corrupt (ours are well under 64 KiB).
MAX_LINE = 1 << 20


def _lines(path: str) -> Iterator[bytes]:
    """The file's lines; OSError or StateError when it cannot be opened."""
    from selfheal.edges.files import open_regular

    fd = open_regular(path, os.O_RDONLY, shown=f"journal {path}")
    with open(fd, "rb") as raw:
        if path.endswith(".gz"):
            import gzip

            stream = gzip.GzipFile(fileobj=raw)
            try:
                yield from _bounded(stream)
            except (OSError, EOFError, ValueError):
                # A truncated or damaged .gz: what was read stands; the rest is one bad "line".
                yield b"\0"
        else:
            yield from _bounded(raw)


def _bounded(stream: BufferedIOBase) -> Iterator[bytes]:
    """Lines of at most MAX_LINE bytes; a longer one is read through and becomes one bad line."""
    readline = stream.readline
    while True:
        line = readline(MAX_LINE + 1)
        if not line:
            return
        if len(line) > MAX_LINE:
            while line and not line.endswith(b"\n"):
                line = readline(MAX_LINE + 1)
            yield b"\0"
            continue
        yield line


def read_journal(path: str, since: float | None = None, check: str | None = None) -> JournalReading:
    """Every event from ``since`` on (of one check, or all), oldest first."""
    from selfheal.core.states import StateError

    reading = JournalReading()
    for file in journal_files(path):
        events: list[dict[str, object]] = []
        try:
            for event in _read_file(file, reading):
                events.append(event)
        except (OSError, StateError) as exc:
            # Not a regular file, gone since the listing, or a read error:
            # named, and what was read before the error still counts.
            why = str(exc) if isinstance(exc, StateError) else f"journal {file}: {exc.strerror}"
            reading.unreadable.append(why)
            if not events:
                continue
        reading.files.append(file)
        for event in events:
            if (since is not None and event_time(event) < since) or (
                check is not None and event["check"] != check
            ):
                continue
            reading.events.append(event)
    reading.events.sort(key=event_time)
    return reading


def event_time(event: Mapping[str, object]) -> float:
    """The event's time in seconds, which ``read_journal`` parsed into ``_t``."""
    when = event["_t"]
    assert isinstance(when, (int, float))
    return when


def _read_file(file: str, reading: JournalReading) -> Iterator[dict[str, object]]:
    for line in _lines(file):
        if not line.strip():
            continue
        event, dropped = parse_line(line)
        if event is None:
            reading.skipped += 1
            continue
        reading.dropped += dropped
        yield event


# -- selfheal history -----------------------------------------------------

OPTIONS = [
    Option(("--since",), "since", "value", "DURATION", "only events newer than this, e.g. 7d (default: all)"),
    ops.JSON_OPTION,
    *ops.SITE_OPTIONS,
    *HELP_OPTIONS,
]


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, name = ops.parse_name(command, args, OPTIONS, out)
    site = ops.Site(values, env)
    if name is not None:
        from selfheal.edges.store import check_name

        try:
            check_name(name)
        except ValueError as exc:
            raise Usage(str(exc)) from None
    reading = read_journal(site.journal, ops.since(values, None), name)
    if values["json"]:
        events = [{k: v for k, v in event.items() if k != "_t"} for event in reading.events]
        ops.dump_json(
            {
                "journal": site.journal,
                "files": reading.files,
                "unreadable": reading.unreadable,
                "skipped": reading.skipped,
                "dropped_fields": reading.dropped,
                "events": events,
            },
            out,
        )
        return 0
    rows = [["TIME", "CHECK", "EVENT", "DETAILS"]]
    for event in reading.events:
        rows.append([ops.local(event_time(event)), str(event["check"]), str(event["event"]), describe(event)])
    if len(rows) > 1:
        out.write(ops.table(rows))
    else:
        out.write(f"no events in {site.journal}" + (" for that period" if values["since"] else "") + "\n")
    if reading.skipped:
        out.write(f"({reading.skipped} corrupt journal line{'s' if reading.skipped != 1 else ''} skipped)\n")
    if reading.dropped:
        plural = "s" if reading.dropped != 1 else ""
        out.write(f"({reading.dropped} odd value{plural} in journal lines not shown)\n")
    for problem in reading.unreadable:
        out.write(f"(skipped {ops.printable(problem)})\n")
    return 0
