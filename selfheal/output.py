"""The Nagios plugin output format, read and written.

A plugin prints ``TEXT | PERFDATA`` on its first line, optionally long
output on later lines, and more perfdata after a ``|`` in the long output
(Nagios plugin development guidelines, "Plugin Output"). selfheal reads a
wrapped plugin's output that way and writes its own as::

    NAME STATE - summary; self-healing note | perfdata selfheal_attempts=N;;;0
    long output...
"""

from __future__ import annotations

from selfheal import states

MAX_LINE = 4096


class PluginOutput:
    """A plugin's status text, long output lines and perfdata items."""

    __slots__ = ("long", "perfdata", "text")

    def __init__(self, text: str, long: list[str] | None = None, perfdata: list[str] | None = None) -> None:
        self.text = text
        self.long = long or []
        self.perfdata = perfdata or []


def parse(raw: str) -> PluginOutput:
    """Split plugin output into text, long output and perfdata."""
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "").split("\n")
    first = lines[0]
    text, _, perf = first.partition("|")
    perfdata = perf.split()
    long: list[str] = []
    rest = lines[1:]
    for index, line in enumerate(rest):
        if "|" in line:
            before, _, after = line.partition("|")
            if before.strip():
                long.append(before.rstrip())
            for more in [after, *rest[index + 1 :]]:
                perfdata.extend(more.split())
            break
        long.append(line.rstrip())
    while long and not long[-1]:
        long.pop()
    return PluginOutput(text.strip()[:MAX_LINE], long, perfdata)


def clean(text: str) -> str:
    """One line with no ``|``: anything else would corrupt the status line."""
    return " ".join(text.replace("|", "/").split())[:MAX_LINE]


def status_line(name: str, state: int, text: str, note: str = "", perfdata: list[str] | None = None) -> str:
    summary = "; ".join(part for part in (clean(text), clean(note)) if part)
    line = f"{name.upper()} {states.name(state)}"
    if summary:
        line += f" - {summary}"
    if perfdata:
        line += " | " + " ".join(perfdata)
    return line


def render(
    name: str,
    state: int,
    text: str,
    note: str = "",
    perfdata: list[str] | None = None,
    long: list[str] | None = None,
) -> str:
    """The full plugin output, ending in a newline."""
    lines = [status_line(name, state, text, note, perfdata)]
    # A "|" in long output would start perfdata for Nagios.
    lines.extend(line.replace("|", "/") for line in long or [])
    return "\n".join(lines) + "\n"


def attempts_perfdata(count: int) -> str:
    return f"selfheal_attempts={count};;;0"


def heals_perfdata(total: int) -> str:
    """Heals ever started: a counter (``c``), for graphing beside the service."""
    return f"selfheal_heals_total={total}c;;;0"
