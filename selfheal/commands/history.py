"""Reading the journal, and ``selfheal history``.

The journal may have been rotated by logrotate: ``journal.jsonl.1``,
``journal.jsonl.2.gz`` and so on hold older events (with ``dateext``,
``journal.jsonl-20261128`` too). They are read oldest first, so events come
out newest last. A line that is not a JSON event (a torn write from a full
disk, an editor's stray keystroke) is skipped and counted, never fatal: an
operator reading history at 3 a.m. needs the rest of it.
"""

from __future__ import annotations

import calendar
import json
import os
import time

from selfheal.commands import common as ops
from selfheal.core.argv import HELP_OPTIONS, Option
from selfheal.core.errors import SelfhealError, Usage
from selfheal.core.events import describe

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import TextIO


class JournalReading:
    """The events read (oldest first), the corrupt lines skipped, the files."""

    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []
        self.skipped = 0
        self.files: list[str] = []


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


def _lines(path: str) -> Iterator[bytes]:
    from selfheal.edges.files import open_regular

    try:
        fd = open_regular(path, os.O_RDONLY, shown=f"journal {path}")
    except OSError as exc:
        raise SelfhealError(f"cannot read journal {path}: {exc.strerror}") from None
    with open(fd, "rb") as raw:
        if path.endswith(".gz"):
            import gzip

            stream = gzip.GzipFile(fileobj=raw)
            try:
                yield from stream
            except (OSError, EOFError):
                # A truncated .gz: what was read stands; the rest is one bad "line".
                yield b"\0"
        else:
            yield from raw


def parse_ts(text: object) -> float | None:
    """The journal's ``2026-11-28T03:10:06.123Z`` as an epoch timestamp."""
    if not isinstance(text, str) or not text.endswith("Z"):
        return None
    whole, _, fraction = text[:-1].partition(".")
    try:
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return seconds + (float(f"0.{fraction}") if fraction else 0.0)
    except ValueError:
        return None


def read_journal(path: str, since: float | None = None, check: str | None = None) -> JournalReading:
    """Every event from ``since`` on (of one check, or all), oldest first."""
    reading = JournalReading()
    for file in journal_files(path):
        reading.files.append(file)
        for line in _lines(file):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except ValueError:
                reading.skipped += 1
                continue
            when = parse_ts(event.get("ts")) if isinstance(event, dict) else None
            if (
                when is None
                or not isinstance(event.get("event"), str)
                or not isinstance(event.get("check"), str)
            ):
                reading.skipped += 1
                continue
            if (since is not None and when < since) or (check is not None and event["check"] != check):
                continue
            event["_t"] = when
            reading.events.append(event)
    reading.events.sort(key=event_time)
    return reading


def event_time(event: Mapping[str, object]) -> float:
    """The event's time in seconds, which ``read_journal`` parsed into ``_t``."""
    when = event["_t"]
    assert isinstance(when, (int, float))
    return when


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
            {"journal": site.journal, "files": reading.files, "skipped": reading.skipped, "events": events},
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
    return 0
