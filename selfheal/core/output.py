"""The Nagios plugin output format, read and written.

A plugin prints ``TEXT | PERFDATA`` on its first line, optionally long
output on later lines, and more perfdata after a ``|`` in the long output
(Nagios plugin development guidelines, "Plugin Output"). selfheal reads a
wrapped plugin's output that way and writes its own as::

    NAME STATE - summary; self-healing note | perfdata selfheal_attempts=N;;;0
    long output...
"""

from __future__ import annotations

import os

from selfheal.core import states

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO


MAX_LINE = 4096
#: The most selfheal prints, in bytes: what NRPE (protocol 3, NRPE 3.0 and
#: later) carries in one response. Nagios Core 4 reads more; a longer
#: output would be cut by NRPE at an arbitrary byte instead of by us.
MAX_OUTPUT = 64 * 1024
TRUNCATED = "(output truncated by selfheal)"

#: C0 controls and DEL, as spaces: a NUL or an escape sequence (from a
#: plugin's stderr, say) has no place in a status line.
_CONTROLS = dict.fromkeys([*range(32), 127], " ")
_UNITS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ%"
_NUMBER = frozenset("0123456789.-")
_RANGE = frozenset("0123456789.-:~@")


class PluginRun:
    """How a wrapped plugin ended and what it printed (``selfheal.edges.spawner`` runs it)."""

    __slots__ = ("error", "exit_status", "signal", "stderr", "stdout", "timed_out")

    def __init__(
        self,
        exit_status: int | None = None,
        stdout: bytes = b"",
        stderr: bytes = b"",
        *,
        signal: int | None = None,
        timed_out: bool = False,
        error: str | None = None,
    ) -> None:
        self.exit_status = exit_status
        self.stdout = stdout
        self.stderr = stderr
        self.signal = signal
        self.timed_out = timed_out
        self.error = error


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
    perfdata = split_perfdata(perf)
    long: list[str] = []
    rest = lines[1:]
    for index, line in enumerate(rest):
        if "|" in line:
            before, _, after = line.partition("|")
            if before.strip():
                long.append(before.rstrip())
            for more in [after, *rest[index + 1 :]]:
                perfdata.extend(split_perfdata(more))
            break
        long.append(line.rstrip())
    while long and not long[-1]:
        long.pop()
    return PluginOutput(text.strip()[:MAX_LINE], long, [item for item in perfdata if well_formed(item)])


def interpret(
    run: PluginRun, plugin: list[str], timeout: float, timeout_state: int
) -> tuple[int, PluginOutput]:
    """A plugin's state and parsed output, UNKNOWN when it did not behave.

    The plugin command reads its plugin this way, and the heal's runner its
    re-checks (``selfheal.verify``), so both say the same of the same run.
    """
    parsed = parse(run.stdout.decode("utf-8", "replace"))
    program = os.path.basename(plugin[0])
    if run.error:
        return states.UNKNOWN, PluginOutput(f"plugin {run.error}")
    if run.timed_out:
        text = f"plugin {program} timed out after {timeout:g}s"
        return timeout_state, PluginOutput(text, parsed.long, parsed.perfdata)
    if run.signal is not None:
        return states.UNKNOWN, PluginOutput(f"plugin {program} was killed by signal {run.signal}")
    code = run.exit_status
    if not parsed.text:
        stderr = run.stderr.decode("utf-8", "replace").strip().splitlines()
        parsed.text = f"(no output from {program})" + (f" stderr: {stderr[0]}" if stderr else "")
    if code not in (0, 1, 2, 3):
        parsed.text = f"plugin {program} exited {code}: {parsed.text}"
        return states.UNKNOWN, parsed
    return int(code or 0), parsed


def split_perfdata(text: str) -> list[str]:
    """Perfdata items, split on white space outside quoted labels ('a b'=1)."""
    items = []
    index, end = 0, len(text)
    while index < end:
        if text[index].isspace():
            index += 1
            continue
        start = index
        if text[index] == "'":
            close = text.find("'=", index + 1)
            index = close + 1 if close > 0 else end  # an unclosed quote takes the rest
        while index < end and not text[index].isspace():
            index += 1
        items.append(text[start:index])
    return items


def well_formed(item: str) -> bool:
    """``'label'=value[UOM];[warn];[crit];[min];[max]``, as the guidelines define it.

    A malformed item is dropped rather than passed on: graphing add-ons
    split perfdata on spaces and quotes, so one bad item (an unclosed
    quote) can swallow the items after it, ``selfheal_attempts`` included.
    """
    if item.startswith("'"):
        close = item.find("'=", 1)
        label, rest = item[1:close], item[close + 2 :]
        if close < 0 or "'" in label.replace("''", ""):  # a quote inside is doubled
            return False
    else:
        label, equals, rest = item.partition("=")
        if not equals or "'" in label:
            return False
    fields = rest.split(";")
    value = fields[0]
    number = value.rstrip(_UNITS)
    if not label or len(fields) > 5 or not (value == "U" or _is_number(number)):
        return False
    return all(set(field) <= _RANGE for field in fields[1:])


def _is_number(text: str) -> bool:
    if not text or not set(text) <= _NUMBER:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def clean(text: str) -> str:
    """One line with no ``|``: anything else would corrupt the status line."""
    return encodable(" ".join(text.replace("|", "/").translate(_CONTROLS).split())[:MAX_LINE])


def encodable(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, so that it can be written as UTF-8.

    Bytes that are not UTF-8 reach us as surrogate escapes (Python's way
    with argv, the environment and file names): a pause reason, a heal's
    argv, a plugin path. Writing one raises UnicodeEncodeError, which
    would turn the status line into an internal error.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in text)
    return text


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
    """The full plugin output, ending in a newline, at most MAX_OUTPUT bytes."""
    perfdata = list(perfdata or [])
    if len(" ".join(perfdata)) > MAX_LINE:
        # Keep selfheal's own items (last) and as many of the plugin's as fit.
        own = [item for item in perfdata if item.startswith("selfheal_")]
        room = MAX_LINE - len(" ".join(own))
        kept = []
        for item in perfdata:
            if not item.startswith("selfheal_") and len(item) < room:
                kept.append(item)
                room -= len(item) + 1
        perfdata = kept + own
    lines = [encodable(status_line(name, state, text, note, perfdata))]
    size = len(lines[0].encode()) + 1
    for line in long or []:
        # A "|" in long output would start perfdata for Nagios.
        line = encodable(line.replace("|", "/"))
        size += len(line.encode()) + 1
        if size > MAX_OUTPUT - len(TRUNCATED) - 1:
            lines.append(TRUNCATED)
            break
        lines.append(line)
    return "\n".join(lines) + "\n"


def attempts_perfdata(count: int) -> str:
    return f"selfheal_attempts={count};;;0"


def heals_perfdata(total: int) -> str:
    """Heals ever started: a counter (``c``), for graphing beside the service."""
    return f"selfheal_heals_total={total}c;;;0"


def internal_error(
    out: TextIO,
    name: str,
    exc: Exception,
    verbose: int,
    speak: Callable[[TextIO, str, str], int] | None = None,
) -> int:
    """A bug reported as one line (UNKNOWN by default); the traceback only with -vvv."""
    if verbose >= 3:
        import traceback

        traceback.print_exc(file=out)
    message = f"internal error: {type(exc).__name__}: {exc} (run with -vvv for a traceback)"
    return (speak or unknown)(out, name, message)


def unknown(out: TextIO, name: str, message: str) -> int:
    """A problem the operator can fix, as one UNKNOWN line."""
    out.write(f"{encodable(name.upper())} UNKNOWN - {clean(message)}\n")
    return states.UNKNOWN


def to_person(out: TextIO, name: str, message: str) -> int:
    """The same problem said to a person at a terminal: ``selfheal pause: ...``."""
    out.write(f"{name}: {clean(message)}\n")
    return states.UNKNOWN
