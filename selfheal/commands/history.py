"""``selfheal history``: the journals' events, oldest first.

The reading itself (many journals, rotated and gzipped files, corrupt
lines, the host of each event, streaming) is ``selfheal.edges.journals``;
each line goes through ``selfheal.core.journal_line``. Events are printed
as they are read, never all held: the table's columns are as wide as the
first ``WIDTH_ROWS`` rows need.
"""

from __future__ import annotations

import os
import time

from selfheal.commands import common as ops
from selfheal.core.argv import HELP_OPTIONS, Option
from selfheal.core.events import describe
from selfheal.core.journal_line import parse_ts
from selfheal.core.states import Usage
from selfheal.edges import journals

__all__ = ["JOURNALS_OPTION", "Journals", "event_time", "main", "parse_ts"]

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import TextIO

#: ``--journal`` for the reading commands: repeatable, a file, a directory or a glob.
JOURNALS_OPTION = Option(
    ("--journal",),
    "journal",
    "append",
    "PATH",
    "a journal file, a directory of journals, or a quoted glob; repeat for more "
    "(default: STATE_DIR/journal.jsonl)",
)
READING_OPTIONS = [ops.CONFIG_OPTION, ops.STATE_DIR_OPTION, JOURNALS_OPTION]
#: The text table's columns are as wide as these first rows need; later rows stream through.
WIDTH_ROWS = 1000


class Journals:
    """The journals a reading command was given (or this host's), and what reading them found."""

    def __init__(self, values: Mapping[str, object], env: Mapping[str, str]) -> None:
        self.reading = journals.Reading()
        specs = values.get("journal")
        if isinstance(specs, list) and specs:
            self.labels = [str(spec) for spec in specs]
            self.sources = journals.find(self.labels, self.reading.unreadable)
        else:
            site = ops.Site({**values, "journal": None}, env)
            self.labels = [site.journal]
            self.sources = journals.local(site.journal)

    @property
    def label(self) -> str:
        return ", ".join(self.labels)

    @property
    def fleet(self) -> bool:
        """More than one journal: events then say their host."""
        return len(self.sources) > 1

    def in_file_order(self) -> Iterator[dict[str, object]]:
        return journals.in_file_order(self.sources, self.reading)

    def in_time_order(self, raw: bool = False) -> Iterator[dict[str, object]]:
        return journals.in_time_order(self.sources, self.reading, raw)


def wanted(event: Mapping[str, object], since: float | None, check: str | None) -> bool:
    return (since is None or event_time(event) >= since) and (check is None or event["check"] == check)


def event_time(event: Mapping[str, object]) -> float:
    """The event's time in seconds, which ``parse_line`` put into ``_t``."""
    when = event["_t"]
    assert isinstance(when, (int, float))
    return when


# -- selfheal history -----------------------------------------------------

OPTIONS = [
    Option(("--since",), "since", "value", "DURATION", "only events newer than this, e.g. 7d (default: all)"),
    ops.JSON_OPTION,
    *READING_OPTIONS,
    *HELP_OPTIONS,
]


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, name = ops.parse_name(command, args, OPTIONS, out)
    if name is not None:
        from selfheal.edges.store import check_name

        try:
            check_name(name)
        except ValueError as exc:
            raise Usage(str(exc)) from None
    since = ops.since(values, None)
    given = Journals(values, env)
    events = given.in_time_order(raw=bool(values["json"]))
    if since is not None or name is not None:
        events = (event for event in events if wanted(event, since, name))
    try:
        if values["json"]:
            write_json(given, events, out)
            return 0
        shown = write_table(given, events, out)
    except BrokenPipeError:
        return reader_left(out)
    reading = given.reading
    if not shown:
        out.write(f"no events in {given.label}" + (" for that period" if values["since"] else "") + "\n")
    if reading.skipped:
        out.write(f"({reading.skipped} corrupt journal line{'s' if reading.skipped != 1 else ''} skipped)\n")
    if reading.dropped:
        plural = "s" if reading.dropped != 1 else ""
        out.write(f"({reading.dropped} odd value{plural} in journal lines not shown)\n")
    for problem in reading.unreadable:
        out.write(f"(skipped {ops.printable(problem)})\n")
    return 0


def reader_left(out: TextIO) -> int:
    """The reader went away (``| head``): stop quietly, not with a traceback."""
    try:
        # What is still buffered goes nowhere when the interpreter flushes it at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's StringIO): nothing is flushed at exit
    return 0


def write_table(given: Journals, events: Iterator[dict[str, object]], out: TextIO) -> int:
    """The events as a table, streamed; how many were shown."""
    header = (
        ["TIME", "HOST", "CHECK", "EVENT", "DETAILS"]
        if given.fleet
        else ["TIME", "CHECK", "EVENT", "DETAILS"]
    )
    first: list[list[str]] = [header]
    shown = 0
    widths: list[int] | None = None
    fleet = given.fleet
    printable = ops.printable
    stamp = LocalTimes()
    for event in events:
        row = [stamp(event_time(event)), str(event["check"]), str(event["event"]), describe(event)]
        if fleet:
            row.insert(1, str(event["host"]))
        shown += 1
        if widths is not None:
            # The row as ops.table lays it out with these widths, without its per-table work.
            cells = [printable(cell) for cell in row]
            line = "  ".join([c.ljust(w) for c, w in zip(cells[:-1], widths)] + [cells[-1]])
            out.write(line.rstrip() + "\n")
            continue
        first.append(row)
        if len(first) > WIDTH_ROWS:
            widths = table_widths(first)
            out.write(ops.table(first, widths=widths))
    if widths is None and shown:
        out.write(ops.table(first))
    return shown


class LocalTimes:
    """``ops.local`` for a stream of times, one ``localtime`` per minute rather than three per event.

    A minute's text is the same for all its events, and the seconds follow
    from the time itself (where the zone's offset from UTC is whole minutes,
    as every zone's is today; a minute where they do not is not kept).
    """

    def __init__(self) -> None:
        self.now = time.time()
        self.minutes: dict[int, tuple[str, bool]] = {}

    def __call__(self, timestamp: float) -> str:
        second = int(timestamp)
        known = self.minutes.get(second // 60)
        if known is None:
            text = ops.local(timestamp, self.now)
            if len(self.minutes) >= 4096:  # a journal of months: keep the cache small
                self.minutes.clear()
            if time.localtime(timestamp).tm_sec != second % 60:
                return text
            with_seconds = len(text) == 8  # today's: HH:MM:SS; older: YYYY-MM-DD HH:MM
            known = self.minutes[second // 60] = (text[:5] if with_seconds else text, with_seconds)
        text, with_seconds = known
        return f"{text}:{second % 60:02d}" if with_seconds else text


def table_widths(rows: list[list[str]]) -> list[int]:
    return [max(len(ops.printable(row[i])) for row in rows) for i in range(len(rows[0]))]


def write_json(given: Journals, events: Iterator[dict[str, object]], out: TextIO) -> None:
    """The JSON document, its events written as they are read (the counts come after them).

    One event per line: ``indent`` would take ``json``'s pure-Python
    encoder, several times slower than the C one over a fleet's journals.
    """
    import json

    out.write("{\n")
    out.write(f'  "journal": {json.dumps(given.labels[0] if len(given.labels) == 1 else None)},\n')
    out.write(f'  "journals": {json.dumps(given.labels)},\n')
    out.write('  "events": [')
    separator = "\n"
    dumps = json.dumps
    lines: list[str] = []
    for event in events:
        del event["_t"]
        raw = event.pop("_raw", None)
        # A line that is exactly its event is printed as it was written (strict JSON: parse_line
        # refused NaN and control characters, and would have dropped an odd field).
        lines.append(raw.decode("utf-8", "replace").strip() if isinstance(raw, bytes) else dumps(event))
        if len(lines) == 256:  # written in batches: one write per event costs more than the event
            out.write(separator + ",\n".join(f"    {line}" for line in lines))
            separator = ",\n"
            lines.clear()
    if lines:
        out.write(separator + ",\n".join(f"    {line}" for line in lines))
        separator = ",\n"
    out.write("\n  ],\n" if separator != "\n" else "],\n")
    reading = given.reading
    tail = {
        "files": reading.files,
        "unreadable": reading.unreadable,
        "skipped": reading.skipped,
        "dropped_fields": reading.dropped,
    }
    out.write(json.dumps(tail, indent=2)[2:] + "\n")
