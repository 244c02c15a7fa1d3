"""``selfheal report [--since 30d] [--format text|json|html] [-o FILE] [--journal PATH ...] [--jobs N]``.

The options and the output; what each figure means (episodes, the rate),
and how heals are ranked, is in ``selfheal.commands.report.figures``. The
journals (one, or a fleet's: ``--journal`` files, directories, globs) are
streamed through the figures, never held; a fleet's are folded in worker
processes (``Fold``), whose figures are then added up. The page or the text goes to
stdout, or atomically to ``-o FILE``.
"""

from __future__ import annotations

import time

from selfheal.commands import common as ops
from selfheal.commands.history import READING_OPTIONS, Journals
from selfheal.commands.report.figures import Report
from selfheal.commands.report.text import render_text
from selfheal.core.argv import HELP_OPTIONS, Option
from selfheal.core.states import Usage
from selfheal.edges.journals import Reading, Source, events

#: Its usage line, for its -h and for ``selfheal -h`` (the table is in common).
USAGE = ops.USAGE
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import TextIO

FORMATS = ("text", "json", "html")
OPTIONS = [
    Option(
        ("--since",), "since", "value", "DURATION", "the period, e.g. 7d (default 30d; 'all' for everything)"
    ),
    Option(("--format",), "format", "value", "FORMAT", "text (default), json or html"),
    Option(("-o", "--output"), "output", "value", "FILE", "write to FILE instead of stdout (atomically)"),
    ops.JSON_OPTION,
    *READING_OPTIONS,
    *HELP_OPTIONS,
]


def main(command: str, args: list[str], env: Mapping[str, str], out: TextIO) -> int:
    values, _ = ops.parse(command, args, OPTIONS, out, no_name="it covers every check")
    form = "json" if values["json"] else str(values["format"] or "text")
    if form not in FORMATS:
        raise Usage(f"bad --format: {form!r} (use text, json or html)")
    since = ops.since(values, "30d")
    given = Journals(values, env)
    now = time.time()
    report = Report(since)
    with given.read(Fold(since)) as streams:
        for stream in streams:
            for part in stream:
                report.add(part)
    data = report.to_json(given.labels, given.reading, now)
    if form == "json":
        import json

        text = json.dumps(data, indent=2) + "\n"
    elif form == "html":
        from selfheal.commands.report.html import render_html

        text = render_html(data)
    else:
        text = render_text(data, values.get("since") or "30d")
    if values["output"]:
        write_atomically(str(values["output"]), text)
    else:
        out.write(text)
        out.flush()
    return 0


class Fold:
    """What ``report`` reads from a group of journals: one ``Report`` of their events."""

    def __init__(self, since: float | None) -> None:
        self.since = since

    def __call__(self, group: list[Source], reading: Reading) -> Iterator[Report]:
        report = Report(self.since)
        for source in group:
            report.consume(events(source, reading), source.path)
        yield report


def write_atomically(path: str, text: str) -> None:
    """Temp file in the same dir, then rename: a reader never sees half a page."""
    from selfheal.core.states import SelfhealError
    from selfheal.edges.files import replace_file

    try:
        replace_file(path, text.encode("utf-8"))
    except OSError as exc:
        raise SelfhealError(f"cannot write {path}: {exc.strerror}") from None
