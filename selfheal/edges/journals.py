"""Many journals at once: finding them, and streaming their events.

``selfheal history`` and ``selfheal report`` read one journal, or a fleet's
journals collected on one host (rsync, a log shipper). Each ``--journal``
is a file, a directory or a glob (expanded here, so a quoted pattern works
the same from a shell, cron or a config management tool):

- a **file** is read with its rotated copies beside it (``NAME.1``,
  ``NAME.2.gz``, logrotate's ``NAME-20261128[.gz]``), oldest first;
- a **directory** is searched (subdirectories too, symlinks not followed)
  for journal files: ``*.jsonl`` and their rotated copies, even when only
  rotated copies are left;
- a **glob** (``hosts/*/journal.jsonl``) stands for each file or directory
  it matches, as if each were given.

A file reached twice (``--journal hosts --journal hosts/web1/journal.jsonl``)
is read once.

**The host of an event** is the ``host`` of its line, which selfheal writes
on every line. A line without one (another tool, an old version) gets the
host its path names: the file's name before ``.jsonl`` unless that is
``journal`` (``web1.jsonl`` is web1), else the directory holding it
(``hosts/web1/journal.jsonl`` is web1, as ``rsync`` lays a fleet out). The
local journal (no ``--journal``) is this host's.

Events are streamed, never all held: a million events take the memory of
one line plus the figures. ``events`` gives a journal's events in the order
they were appended (what the report's episodes follow); ``merged`` merges
journals by time (what ``history`` lists), each first put in order within a
bounded window (``ordered``), which absorbs the small disorder of concurrent
writers. Over a
fleet's journals, both run in worker processes (``selfheal.edges.workers``).
"""

from __future__ import annotations

import os
import stat

from selfheal.core.journal_line import parse_line
from selfheal.core.states import SelfhealError, StateError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from io import BufferedIOBase
    from typing import Any, TypeVar

    #: An item that ``merged`` orders: its first element is its time.
    Timed = TypeVar("Timed", bound=tuple[Any, ...])

#: A journal line longer than this is corrupt (ours are well under 64 KiB).
MAX_LINE = 1 << 20
#: How far out of time order one journal's events may be and still be listed in order;
#: with many journals, each gets its share of ORDER_EVENTS (and at least ORDER_MIN).
#: Each journal holds twice its window while it is sorted (``ordered``).
ORDER_WINDOW = 256
ORDER_EVENTS = 4096
ORDER_MIN = 32
GLOB_CHARS = frozenset("*?[")


class NoJournal(SelfhealError):
    """A ``--journal`` that names nothing to read: a typo, for a person (exit 1)."""

    exit_code = 1


class Source:
    """One journal and its rotated copies: the files, oldest first, and the host its path names."""

    __slots__ = ("files", "host", "path")

    def __init__(self, path: str, files: list[str], host: str) -> None:
        self.path = path
        self.files = files
        self.host = host


class Reading:
    """What reading found besides events: corrupt lines, odd fields, the files read and not read."""

    def __init__(self) -> None:
        self.skipped = 0
        # Odd fields dropped from events that were kept (see journal_line).
        self.dropped = 0
        self.files: list[str] = []
        # Files that could not be read (not a regular file, gone), and why.
        self.unreadable: list[str] = []
        self._seen: set[tuple[int, int]] = set()

    def part(self) -> Reading:
        """A reading of some of the journals, to be ``add``-ed later: it knows the files already read."""
        part = Reading()
        part._seen = self._seen
        return part

    def add(self, other: Reading) -> None:
        """What the reading of other journals found (a ``part``, or a worker's)."""
        self.skipped += other.skipped
        self.dropped += other.dropped
        self.files.extend(other.files)
        self.unreadable.extend(other.unreadable)


def rotation(name: str, base: str | None = None) -> tuple[str, tuple[int, int]] | None:
    """The journal a file name belongs to, and its place among the copies (older sorts first).

    With ``base``, only that journal's copies; without, any ``*.jsonl``.
    None for a name that is neither.
    """
    if base is None:
        stem, dot, _ = name.partition(".jsonl")
        if not dot or not stem:
            return None
        base = stem + ".jsonl"
    if name == base:
        return base, (1, 0)
    if not name.startswith(base):
        return None
    suffix = name[len(base) :]
    plain = suffix[:-3] if suffix.endswith(".gz") else suffix
    number = plain[1:]
    if not (number.isascii() and number.isdigit()):
        return None
    if plain[:1] == ".":
        return base, (0, -int(number))  # .3 is older than .1
    if plain[:1] == "-":
        return base, (0, int(number))  # dateext: -20261128
    return None


def path_host(path: str) -> str:
    """The host a journal's path names (see the module's rule)."""
    name = os.path.basename(path)
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    if stem and stem != "journal":
        return stem
    return os.path.basename(os.path.dirname(os.path.abspath(path))) or "-"


def family(path: str, host: str | None = None) -> Source:
    """The journal at ``path`` and its rotated copies beside it, oldest first."""
    directory, base = os.path.split(path)
    try:
        entries = os.listdir(directory or ".")
    except FileNotFoundError:
        entries = []
    except OSError as exc:
        raise SelfhealError(f"cannot list {directory}: {exc.strerror}") from None
    rotated = []
    for entry in entries:
        place = rotation(entry, base)
        if place is not None and entry != base:
            rotated.append((place[1], entry))
    files = [os.path.join(directory, entry) for _, entry in sorted(rotated)]
    if os.path.lexists(path):
        files.append(path)
    return Source(path, files, host or path_host(path))


def find(specs: Iterable[str], problems: list[str] | None = None) -> list[Source]:
    """The journals that ``--journal`` values name; NoJournal for one that names none.

    A directory that cannot be searched below one that can is not fatal:
    it goes to ``problems``, for the reader to name.
    """
    import glob

    problems = [] if problems is None else problems
    sources: dict[tuple[str, str], Source] = {}
    for spec in specs:
        if not spec:
            raise NoJournal("--journal needs a file, a directory or a pattern")
        literal = os.path.lexists(spec) or not GLOB_CHARS & set(spec)
        found = 0
        for match in [spec] if literal else sorted(glob.glob(spec, recursive=True)):
            for source in _found(match, spec, literal, problems):
                key = (os.path.realpath(os.path.dirname(source.path) or "."), os.path.basename(source.path))
                sources.setdefault(key, source)
                found += 1
        if not found and not literal:
            raise NoJournal(f"no journal matches {spec!r}")
    return distinct(list(sources.values()))


def distinct(sources: list[Source]) -> list[Source]:
    """Each file in one source only: a file two journals reach (a hard link) is read with the first.

    So that journals read in different processes never read a file twice;
    reading checks it again as it opens each file (``_lines``).
    """
    seen: set[tuple[int, int]] = set()
    for source in sources:
        kept = []
        for file in source.files:
            try:
                identity = os.lstat(file)
            except OSError:
                kept.append(file)  # reading names what is wrong with it
                continue
            key = (identity.st_dev, identity.st_ino)
            if key not in seen:
                seen.add(key)
                kept.append(file)
        source.files = kept
    return sources


def _found(match: str, spec: str, literal: bool, problems: list[str]) -> list[Source]:
    """The journals at one path: a directory's, or a file's with its rotated copies.

    A path named literally must hold a journal; one a glob matched may
    hold none (``hosts/*`` may match a README).
    """
    if os.path.isdir(match) and not os.path.islink(match):
        found = _walk(match, problems)
        if not found and literal:
            raise NoJournal(f"no journal files (*.jsonl, rotated or gzipped) in {match}")
        return found
    place = rotation(os.path.basename(match))
    try:
        mode: int | None = os.lstat(match).st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        if literal:
            raise NoJournal(f"{match} is not a regular file (a FIFO, a device or a symlink is not read)")
        if place is None:
            return []  # matched by a glob, and not a journal: its journal, if any, is named when read
    path = match
    if place is not None and place[0] != os.path.basename(match):
        path = os.path.join(os.path.dirname(match), place[0])  # a rotated copy: its whole journal
    source = family(path)
    if not source.files:
        if literal:
            raise NoJournal(f"no journal at {spec}")
        return []
    return [source]


def _walk(top: str, problems: list[str]) -> list[Source]:
    found: dict[str, Source] = {}
    errors: list[OSError] = []
    for directory, subdirs, names in os.walk(top, onerror=errors.append):
        subdirs.sort()
        for name in sorted(names):
            place = rotation(name)
            if place is not None:
                path = os.path.join(directory, place[0])
                if path not in found:
                    found[path] = family(path)
    if errors and not found:
        raise NoJournal(f"cannot read {errors[0].filename or top}: {errors[0].strerror}")
    problems.extend(f"{exc.filename}: {exc.strerror} (not searched)" for exc in errors)
    return list(found.values())


def local(path: str) -> list[Source]:
    """This host's own journal (no ``--journal``): missing is no events, not an error."""
    return [family(path, os.uname().nodename)]


# -- reading ---------------------------------------------------------------


def events(source: Source, reading: Reading, raw: bool = False) -> Iterator[dict[str, object]]:
    """The source's events in the order they were appended, with ``host`` and ``_t`` set.

    With ``raw``, an event that is exactly its line (no field dropped, its
    own host) also carries the line as ``_raw``: ``history --json`` prints
    it as it is instead of encoding the event again.
    """
    host = source.host
    for file in source.files:
        opened = False
        try:
            for line in _lines(file, reading):
                if not opened:
                    opened = True
                    reading.files.append(file)
                if line[:1] != b"{" and not line.strip():
                    continue
                event, dropped = parse_line(line)
                if event is None:
                    reading.skipped += 1
                    continue
                if dropped:
                    reading.dropped += dropped
                if type(event.get("host")) is not str:
                    event["host"] = host
                elif raw and not dropped:
                    event["_raw"] = line
                yield event
        except (OSError, StateError) as exc:
            # Not a regular file, gone since the listing, or a read error:
            # named, and what was read before the error still counts.
            why = str(exc) if isinstance(exc, StateError) else f"journal {file}: {exc.strerror}"
            reading.unreadable.append(why)


def window(count: int) -> int:
    """How far out of order each of ``count`` journals may be and still be listed in order."""
    return max(ORDER_MIN, min(ORDER_WINDOW, ORDER_EVENTS // max(1, count)))


def ordered(stream: Iterator[Timed], window: int) -> Iterator[Timed]:
    """One journal's items by time (each item's first element), holding at most ``2 * window``.

    Concurrent writers leave a journal's lines a little out of order. The
    items are sorted ``window`` at a time together with the ``window``
    before them, so every item less than ``window`` places from its place
    in time comes out in order; one further out comes out late, never lost.
    The sort is stable: ties keep the journal's order. A journal in order
    costs two sorts of a sorted run per item, in C.
    """
    import itertools
    from operator import itemgetter

    key = itemgetter(0)
    held = list(itertools.islice(stream, window))
    held.sort(key=key)
    while True:
        more = list(itertools.islice(stream, window))
        if not more:
            yield from held
            return
        held += more
        held.sort(key=key)
        yield from held[: len(more)]
        del held[: len(more)]


def merged(streams: list[Iterator[Timed]]) -> Iterator[Timed]:
    """Streams each in time order, merged by time; ties go to the earlier stream.

    So merging groups of streams, then the groups in order (the workers of
    ``selfheal.edges.workers``), gives what merging them all at once gives.
    """
    if len(streams) == 1:
        return streams[0]
    import heapq
    from operator import itemgetter

    return heapq.merge(*streams, key=itemgetter(0))


def _lines(path: str, reading: Reading) -> Iterator[bytes]:
    """The file's lines; OSError or StateError when it cannot be opened."""
    from selfheal.edges.files import open_regular

    fd = open_regular(path, os.O_RDONLY, shown=f"journal {path}")
    with open(fd, "rb") as raw:
        identity = os.fstat(raw.fileno())
        key = (identity.st_dev, identity.st_ino)
        if key in reading._seen:
            return  # the same file reached twice
        reading._seen.add(key)
        yield b""  # opened: the file counts as read, even when empty
        if path.endswith(".gz"):
            import gzip
            import zlib

            stream = gzip.GzipFile(fileobj=raw)
            try:
                yield from _bounded(stream)
            except (OSError, EOFError, ValueError, zlib.error):
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
