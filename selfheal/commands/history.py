"""``selfheal history``: the journals' events, oldest first.

The reading itself (many journals, rotated and gzipped files, corrupt
lines, the host of each event, streaming) is ``selfheal.edges.journals``;
each line goes through ``selfheal.core.journal_line``. Events are printed
as they are read, never all held: the table's columns are as wide as the
first ``WIDTH_ROWS`` rows need.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from selfheal.commands import common as ops
from selfheal.core.argv import HELP_OPTIONS, Option
from selfheal.core.events import describe
from selfheal.core.journal_line import parse_ts
from selfheal.core.local_time import LocalTimes
from selfheal.core.states import Usage
from selfheal.edges import journals

__all__ = ["JOURNALS_OPTION", "Journals", "Listing", "event_time", "main", "parse_ts"]

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
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
    if as_json:
        with given.read(listing) as streams:
            write_json(given, journals.merged(streams), out)
        return 0
    shown = write_table(given, listing, out)
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

    The rows are ``(time, cells)``, the cells ``(TIME, HOST, CHECK, EVENT,
    DETAILS)`` without HOST for one journal, already printable; with a
    ``layout``, ``(time, line)``, the cells laid out as the table's line.
    The JSON lines are ``(time, text)``. Either is made where the journal
    is read, in a worker when there are workers: the command only merges
    and prints.
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
        self.layout: str | None = None  # the table's line (``%`` format), once its widths are known

    def __call__(
        self, group: list[journals.Source], reading: journals.Reading
    ) -> Generator[tuple[Any, ...], None, None]:
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
        stamp = LocalTimes(self.now).__call__  # bound: calling the instance looks its method up each time
        fleet = self.fleet
        layout = self.layout
        for event in self.wanted(events):
            when = event["_t"]
            # Text, as parse_line and journals.events leave them.
            host, check, kind = event["host"], event["check"], event["event"]
            details = describe(event)
            if not f"{host}{check}{kind}{details}".isprintable():  # one test for the usual row
                host, check, kind, details = (
                    ops.printable(str(cell)) for cell in (host, check, kind, details)
                )
            cells = (
                (stamp(when), host, check, kind, details) if fleet else (stamp(when), check, kind, details)
            )
            # As ops.table lays out a row with these widths (rstrip: an empty last cell).
            yield (when, (layout % cells).rstrip()) if layout else (when, cells)

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


def write_table(given: Journals, listing: Listing, out: TextIO) -> int:
    """The events as a table, streamed; how many rows were shown.

    The columns are as wide as the first ``WIDTH_ROWS`` rows need. When
    every event is a row (no ``--since``, no check named), those rows are
    read here first, and every row is then laid out where it is read (in
    the workers): this process only merges lines. A filter may leave rows
    only far into the journals, and more journals than this process may
    open at once cannot all be read here: then the rows stream through
    this process, laid out here once the first of them set the widths.
    """
    header = (
        ("TIME", "HOST", "CHECK", "EVENT", "DETAILS")
        if given.fleet
        else ("TIME", "CHECK", "EVENT", "DETAILS")
    )
    first: list[tuple[str, ...]] = [header]
    if listing.since is None and listing.name is None and _all_open_at_once(given.sources):
        import itertools

        found = journals.Reading()
        rows = listing(given.sources, found)
        try:
            first.extend(cells for _, cells in itertools.islice(rows, WIDTH_ROWS + 1))
        finally:
            rows.close()
        if len(first) <= WIDTH_ROWS + 1:  # that was every row
            given.reading.add(found)
            return _whole_table(first, out)
        widths = _widths(first[: WIDTH_ROWS + 1])
        listing.layout = _layout(widths)
        out.write(ops.table([list(header)], widths=widths))
        with given.read(listing) as streams:
            return _write_lines((line for _, line in journals.merged(streams)), out)
    with given.read(listing) as streams:
        items = journals.merged(streams)
        for _, cells in items:
            first.append(cells)
            if len(first) > WIDTH_ROWS:
                break
        else:
            return _whole_table(first, out)
        widths = _widths(first)
        out.write(ops.table([list(cells) for cells in first], widths=widths))
        layout = _layout(widths)
        return len(first) - 1 + _write_lines(((layout % cells).rstrip() for _, cells in items), out)


def _all_open_at_once(sources: list[journals.Source]) -> bool:
    """Whether this process may hold a file of every journal open at once, well within its limit.

    The first rows are read here from every journal together; with too
    many journals, the files beyond the limit would be skipped there, and
    the widths set by the others.
    """
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft == resource.RLIM_INFINITY or 4 * len(sources) <= soft


def _whole_table(rows: list[tuple[str, ...]], out: TextIO) -> int:
    """The header and every row, as one table; how many rows."""
    if len(rows) > 1:
        out.write(ops.table([list(cells) for cells in rows]))
    return len(rows) - 1


def _widths(rows: list[tuple[str, ...]]) -> list[int]:
    """Each column's width but the last's, as ``ops.table`` sets them for these rows."""
    return [max(len(cells[i]) for cells in rows) for i in range(len(rows[0]) - 1)]


def _layout(widths: list[int]) -> str:
    """A row as ``ops.table`` lays it out with these widths, as a ``%`` format."""
    return "".join(f"%-{width}s  " for width in widths) + "%s"


def _write_lines(lines: Iterator[str], out: TextIO) -> int:
    """The lines written in batches (one write per line costs more than the line); how many."""
    count = 0
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) == 256:
            out.write("\n".join(batch) + "\n")
            count += 256
            batch.clear()
    if batch:
        out.write("\n".join(batch) + "\n")
    return count + len(batch)


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
