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
from contextlib import contextmanager

from selfheal.commands import common as ops
from selfheal.core.argv import HELP_OPTIONS, Option
from selfheal.core.events import describe
from selfheal.core.journal_line import parse_ts
from selfheal.core.states import Usage
from selfheal.edges import journals

__all__ = ["JOURNALS_OPTION", "Journals", "Listing", "event_time", "main", "parse_ts"]

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import Any, TextIO

    #: What a reading command runs over a group of journals (see ``Journals.read``).
    Work = Callable[[list[journals.Source], journals.Reading], Iterable[object]]

#: ``--journal`` for the reading commands: repeatable, a file, a directory or a glob.
JOURNALS_OPTION = Option(
    ("--journal",),
    "journal",
    "append",
    "PATH",
    "a journal file, a directory of journals, or a quoted glob; repeat for more "
    "(default: STATE_DIR/journal.jsonl)",
)
#: ``--jobs``: how many processes read a fleet's journals.
JOBS_OPTION = Option(
    ("--jobs",),
    "jobs",
    "value",
    "N",
    "read the journals in N processes (default: one per CPU, plus one, for large journals)",
)
READING_OPTIONS = [ops.CONFIG_OPTION, ops.STATE_DIR_OPTION, JOURNALS_OPTION, JOBS_OPTION]
#: The text table's columns are as wide as these first rows need; later rows stream through.
WIDTH_ROWS = 1000
#: Most processes ``--jobs`` may ask for.
MAX_JOBS = 64


class Journals:
    """The journals a reading command was given (or this host's), and what reading them found."""

    def __init__(self, values: Mapping[str, object], env: Mapping[str, str]) -> None:
        self.reading = journals.Reading()
        self.jobs = jobs(values.get("jobs"))
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

    @contextmanager
    def read(self, work: Work) -> Iterator[list[Iterator[Any]]]:
        """``work`` run over the journals: in this process, or over groups of them in workers.

        The streams are the groups' in the journals' order, each the items
        its ``work`` yielded; what reading found is in ``self.reading`` once
        every stream has ended.
        """
        from selfheal.edges import workers

        count = self.jobs if self.jobs is not None else workers.default_count(self.sources)
        running = None
        if count > 1 and len(self.sources) > 1:
            try:
                running = workers.Workers(workers.split(self.sources, count), work, self.reading)
            except OSError:
                pass  # no fork (a limit on processes or memory): the same reading, here
        if running is None:
            yield [iter(work(self.sources, self.reading))]
            return
        with running:
            yield running.streams()


def jobs(value: object) -> int | None:
    """``--jobs N`` as a number of processes; None when not given (the size decides)."""
    if value is None:
        return None
    text = str(value)
    # Leading zeros allowed; at most two digits after them go to int(), which
    # refuses a number of thousands of digits.
    digits = text.lstrip("0")
    if not (text.isascii() and text.isdigit() and len(digits) <= 2) or not 1 <= int(digits or 0) <= MAX_JOBS:
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise Usage(f"bad --jobs: {shown!r} (a number of processes, 1 to {MAX_JOBS})")
    return int(digits)


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
    as_json = bool(values["json"])
    listing = Listing(since, name, as_json, given.fleet, journals.window(len(given.sources)))
    try:
        with given.read(listing) as streams:
            items = journals.merged(streams)
            if as_json:
                write_json(given, items, out)
                return 0
            shown = write_table(given, items, out)
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


class Listing:
    """What ``history`` reads from a group of journals: its events by time, as rows or JSON lines.

    The rows are ``(time, TIME, HOST, CHECK, EVENT, DETAILS)``, without
    HOST for one journal, the cells already printable; the JSON lines are
    ``(time, text)``. Either is made
    where the journal is read, in a worker when there are workers: the
    command only merges and prints.
    """

    def __init__(
        self, since: float | None, name: str | None, as_json: bool, fleet: bool, window: int
    ) -> None:
        self.now = time.time()  # one "today" for every worker's times
        self.fleet = fleet
        self.since = since
        self.name = name
        self.as_json = as_json
        self.window = window

    def __call__(self, group: list[journals.Source], reading: journals.Reading) -> Iterator[tuple[Any, ...]]:
        shape = self.lines if self.as_json else self.rows
        # Each journal's own reading, added in the journals' order: what was
        # found does not depend on how the merge interleaved the reads.
        found = [reading.part() for _ in group]
        streams = [
            journals.ordered(shape(journals.events(source, own, self.as_json)), self.window)
            for source, own in zip(group, found)
        ]
        yield from journals.merged(streams)
        for own in found:
            reading.add(own)

    def wanted(self, events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        if self.since is None and self.name is None:
            return events
        since = self.since
        name = self.name
        return (
            event
            for event in events
            if (since is None or event_time(event) >= since) and (name is None or event["check"] == name)
        )

    def rows(self, events: Iterator[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
        stamp = LocalTimes(self.now)
        fleet = self.fleet
        for event in self.wanted(events):
            when = event["_t"]
            # Text, as parse_line and journals.events leave them.
            host, check, kind = event["host"], event["check"], event["event"]
            details = describe(event)
            if not f"{host}{check}{kind}{details}".isprintable():  # one test for the usual row
                host, check, kind, details = (
                    ops.printable(str(cell)) for cell in (host, check, kind, details)
                )
            if fleet:
                yield when, stamp(when), host, check, kind, details
            else:
                yield when, stamp(when), check, kind, details

    def lines(self, events: Iterator[dict[str, object]]) -> Iterator[tuple[float, str]]:
        import json

        dumps = json.dumps
        for event in self.wanted(events):
            when = event_time(event)
            del event["_t"]
            raw = event.pop("_raw", None)
            # A line that is exactly its event is printed as it was written (strict JSON: parse_line
            # refused NaN and control characters, and would have dropped an odd field).
            text = raw.decode("utf-8", "replace").strip() if isinstance(raw, bytes) else dumps(event)
            yield when, text


def reader_left(out: TextIO) -> int:
    """The reader went away (``| head``): stop quietly, not with a traceback."""
    try:
        # What is still buffered goes nowhere when the interpreter flushes it at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (a test's StringIO): nothing is flushed at exit
    return 0


def write_table(given: Journals, rows: Iterator[tuple[Any, ...]], out: TextIO) -> int:
    """The rows (``Listing.rows``) as a table, streamed; how many were shown."""
    first = [
        ["TIME", "HOST", "CHECK", "EVENT", "DETAILS"]
        if given.fleet
        else ["TIME", "CHECK", "EVENT", "DETAILS"]
    ]
    shown = 0
    layout = ""
    lines: list[str] = []
    for row in rows:
        shown += 1
        if layout:
            # The row as ops.table lays it out with these widths (its cells are printable already).
            lines.append((layout % row[1:]).rstrip())
            if len(lines) == 256:  # written in batches: one write per row costs more than the row
                out.write("\n".join(lines) + "\n")
                lines.clear()
            continue
        first.append(list(row[1:]))
        if len(first) > WIDTH_ROWS:
            widths = [max(len(cells[i]) for cells in first) for i in range(len(first[0]) - 1)]
            layout = "".join(f"%-{width}s  " for width in widths) + "%s"
            out.write(ops.table(first, widths=widths))
    if lines:
        out.write("\n".join(lines) + "\n")
    if not layout and shown:
        out.write(ops.table(first))
    return shown


#: Each minute of a day as a clock shows it (``03:07``), and the seconds.
_TWO_DIGITS = [f"{n:02d}" for n in range(60)]
_CLOCK = [f"{h}:{m}" for h in _TWO_DIGITS[:24] for m in _TWO_DIGITS]


class LocalTimes:
    """``ops.local`` for a stream of times, by arithmetic rather than three ``localtime`` per event.

    Within a UTC hour whose offset from UTC is the same at its start and
    its end, and which stays within one local day, local time is the
    time plus that offset: the hour's date and where it starts in the day
    are worked out once, and each event's clock is one addition. An hour
    that crosses local midnight (a zone half an hour off) is worked out
    event by event with the same arithmetic; one with a change of offset
    in it (a zone's summer time starts or ends) goes to ``ops.local``. A
    fleet's events are sparse (an hour holds few), so the cache is by
    hour, not by minute.
    """

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now
        today = int(self.now)
        self.today = (today + time.localtime(today).tm_gmtoff) // 86400
        #: UTC hour: (seconds to add to a time in it for its local clock in the day, its date and
        #: a space, or "" for today); (offset, None) when it crosses local midnight; (None, None)
        #: when its offset changes within it.
        self.hours: dict[int, tuple[int | None, str | None]] = {}
        self.days: dict[int, str] = {}  # local day number: its date and a space (hours across midnight)

    def __call__(self, timestamp: float) -> str:
        second = int(timestamp)
        hour = second // 3600
        known = self.hours.get(hour)
        if known is None:
            known = self._hour(hour)
        shift, date = known
        if date is None:
            if shift is None:
                return ops.local(timestamp, self.now)
            # The hour crosses local midnight: its date is worked out per event.
            day, clock = divmod(second + shift, 86400)
            date = "" if day == self.today else self.days.get(day) or self._date(day)
        else:
            clock = second + shift  # type: ignore[operator]  # an int whenever date is not None
        if date:
            return date + _CLOCK[clock // 60]
        return f"{_CLOCK[clock // 60]}:{_TWO_DIGITS[clock % 60]}"

    def _hour(self, hour: int) -> tuple[int | None, str | None]:
        start = hour * 3600
        offset = time.localtime(start).tm_gmtoff
        known: tuple[int | None, str | None] = (None, None)
        if time.localtime(start + 3599).tm_gmtoff == offset:
            day, clock = divmod(start + offset, 86400)
            if clock + 3599 < 86400:
                known = (clock - start, "" if day == self.today else self._date(day))
            else:
                known = (offset, None)
        if len(self.hours) >= 4096:  # a journal of months: keep the cache small
            self.hours.clear()
        self.hours[hour] = known
        return known

    def _date(self, day: int) -> str:
        """Local day number ``day`` as the table shows it before the clock."""
        if len(self.days) >= 4096:
            self.days.clear()
        date = self.days[day] = time.strftime("%Y-%m-%d ", time.gmtime(day * 86400))
        return date


def write_json(given: Journals, lines: Iterator[tuple[float, str]], out: TextIO) -> None:
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
    batch: list[str] = []
    for _, text in lines:
        batch.append(text)
        if len(batch) == 256:  # written in batches: one write per event costs more than the event
            out.write(separator + ",\n".join(f"    {line}" for line in batch))
            separator = ",\n"
            batch.clear()
    if batch:
        out.write(separator + ",\n".join(f"    {line}" for line in batch))
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
